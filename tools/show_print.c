/* SPDX-License-Identifier: MIT */
/*
 * The readable printer of show (and the words verify shares): CUCM's `show itl` layout, tag
 * numbers and names, one TLV a line with its value decoded, or the same as one JSON object.
 * CUCM's exact form (`show --cucm`, to diff against a CUCM) is show_cucm.c's.
 */
#include "tools/show.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

const char *show_short_role(unsigned function)
{
    return function == ITL_ROLE_SAST ? "SAST" : itl_role_name(function);
}

/* "ITL" or "CTL" for trust lists, by FILENAME (CTLFile.tlv, CTLSEP<MAC>.tlv). */
const char *show_list_word(const struct itl_file *f)
{
    const struct itl_bytes *n = &f->hdr.filename;
    return n->len >= 3 && memcmp(n->ptr, "CTL", 3) == 0 ? "CTL" : "ITL";
}

const char *show_file_word(const struct itl_file *f)
{
    switch (f->kind) {
    case ITL_KIND_TLV:
        return show_list_word(f);
    case ITL_KIND_ENC_SGN:
        return "encrypted";
    default:
        return "signed";
    }
}

/* ---- printing helpers ---- */

/* Text from the file, with control characters escaped: a name must not drive the terminal. */
void show_text(FILE *out, struct itl_bytes b)
{
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = b.ptr[i];
        if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

void show_hex(FILE *out, const uint8_t *p, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%02X", i ? sep : "", p[i]);
}

static void print_time(FILE *out, uint32_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[64];

    if (gmtime_r(&tt, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm))
        fputs(buf, out);
    else
        fprintf(out, "%u", t);
}

static void print_ip(FILE *out, struct itl_bytes b)
{
    char text[INET6_ADDRSTRLEN];

    if ((b.len == 4 && inet_ntop(AF_INET, b.ptr, text, sizeof text)) ||
        (b.len == 16 && inet_ntop(AF_INET6, b.ptr, text, sizeof text)))
        fputs(text, out);
    else
        show_hex(out, b.ptr, b.len, " ");
}

static void print_digest_code(FILE *out, int code)
{
    const char *name = itl_digest_name(code);
    if (name)
        fputs(name, out);
    else
        fprintf(out, "UNKNOWN (%d)", code);
}

/* " VALUE" of a string field: its one terminating NUL is not part of the text. */
static void print_string_value(FILE *out, struct itl_bytes b)
{
    if (b.len > 0 && b.ptr[b.len - 1] == 0)
        b.len--;
    fputc(' ', out);
    show_text(out, b);
}

/* " VALUE" of a field with no known meaning: its first 32 bytes, "..." if there are more. */
static void print_hex_prefix(FILE *out, struct itl_bytes b)
{
    fputc(' ', out);
    show_hex(out, b.ptr, b.len > 32 ? 32 : b.len, " ");
    if (b.len > 32)
        fputs(" ...", out);
}

static int is_container(uint8_t tag)
{
    return tag == 3 || tag == 7 || tag == 9 || tag == 16 || tag == 17 || tag == 21;
}

static void print_signature_block(FILE *out, struct itl_bytes sig)
{
    for (size_t i = 0; i < sig.len; i++)
        fprintf(out, "%02x%s", sig.ptr[i], (i % 8 == 7 || i + 1 == sig.len) ? "\n" : " ");
}

/* One header TLV: "TAG NAME LENGTH VALUE" as CUCM prints it (containers: "2 <length>"). */
static void print_header_tlv(FILE *out, const struct itl_tlv *t)
{
    const uint8_t *v = t->value.ptr;
    size_t n = t->value.len;

    if (is_container(t->tag)) {
        fprintf(out, "%u %s 2 %zu\n", t->tag, itl_header_tag_name(t->tag), n);
        return;
    }
    fprintf(out, "%u %s %zu", t->tag, itl_header_tag_name(t->tag), n);
    switch (t->tag) {
    case 4:
    case 6:
    case 14:
        print_string_value(out, t->value);
        break;
    case 5:
        fputc(' ', out);
        show_hex(out, v, n, ":");
        break;
    case 8:
    case 26:
        fputc(' ', out);
        print_digest_code(out, v[0]);
        break;
    case 10:
        fprintf(out, " %s", v[0] == 0 ? "RSA" : "UNKNOWN");
        break;
    case 11:
        if (v[0] <= 3)
            fprintf(out, " %u (%u-byte modulus)", v[0], 64u << v[0]);
        else
            fprintf(out, " %u (unknown)", v[0]);
        break;
    case 12:
        fputc('\n', out);
        print_signature_block(out, t->value);
        return;
    case 15:
        fputc(' ', out);
        print_time(out,
                   ((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) | ((uint32_t)v[2] << 8) | v[3]);
        break;
    case 1:
    case 28:
        fprintf(out, " %u.%u", v[0], v[1]);
        break;
    case 18:
    case 22:
    case 24:
        fprintf(out, " %u", v[0]);
        break;
    case 20:
    case 23:
        fprintf(out, " %u", (unsigned)(v[0] << 8 | v[1]));
        break;
    case 25:
        break; /* the wrapped key: its length is enough */
    default:
        print_hex_prefix(out, t->value);
        break;
    }
    fputc('\n', out);
}

static void print_sha1_of(FILE *out, struct itl_bytes der)
{
    uint8_t md[20];

    EVP_Digest(der.ptr, der.len, md, NULL, EVP_sha1(), NULL);
    show_hex(out, md, sizeof md, " ");
    fputs(" (SHA1 Hash HEX)", out);
}

static void print_record_tlv(FILE *out, const struct itl_tlv *t)
{
    const uint8_t *v = t->value.ptr;
    size_t n = t->value.len;

    fprintf(out, "%u %s %zu", t->tag, itl_record_tag_name(t->tag), n);
    switch (t->tag) {
    case 1:
        fprintf(out, " %u", (unsigned)(v[0] << 8 | v[1]));
        break;
    case 2:
    case 3:
    case 5:
        print_string_value(out, t->value);
        break;
    case 4: {
        unsigned fn = (unsigned)(v[0] << 8 | v[1]);
        if (strcmp(itl_role_name(fn), "UNKNOWN") == 0)
            fprintf(out, " UNKNOWN (%u)", fn);
        else
            fprintf(out, " %s", itl_role_name(fn));
        break;
    }
    case 6:
        fputc(' ', out);
        show_hex(out, v, n, ":");
        break;
    case 7:
    case 8:
        break;
    case 9:
        fputc(' ', out);
        print_sha1_of(out, t->value);
        break;
    case 10:
        fputc(' ', out);
        print_ip(out, t->value);
        break;
    case 11:
        fputc(' ', out);
        show_hex(out, v, n, " ");
        break;
    case 12:
        fputc(' ', out);
        print_digest_code(out, v[0]);
        break;
    default:
        print_hex_prefix(out, t->value);
        break;
    }
    fputc('\n', out);
}

static const char rule[] = "-----------------------------------------";

void show_print_header(FILE *out, const struct itl_file *f)
{
    const struct itl_header *h = &f->hdr;

    show_print_checksum(out, f);
    fprintf(out, "Length of %s file: %zu\n\n", show_file_word(f), f->len);
    fprintf(out, "Parse %s File\n%s\n\n", show_file_word(f), rule);
    fprintf(out, "Version: %u.%u\n", h->version_major, h->version_minor);
    fprintf(out, "HeaderLength: %u (BYTES)\n\n", h->header_length);
    fprintf(out, "BYTEPOS TAG LENGTH VALUE\n%s\n", rule);
    for (size_t i = 2; i < h->n_tlvs; i++) /* VERSION and HEADERLENGTH are above */
        print_header_tlv(out, &h->tlvs[i]);
    if (h->padding)
        fprintf(out, "13 PADDING %zu\n", h->padding);
}

/* Returns the number of records that do not match their certificate. */
int show_print_records(FILE *out, const struct itl_file *f, long signer)
{
    struct itl_error err;
    int bad = 0;

    for (size_t i = 0; i < f->n_records; i++) {
        const struct itl_record *r = &f->records[i];
        fprintf(out, "\n%s Record #:%zu\n%s\nBYTEPOS TAG LENGTH VALUE\n%s\n", show_list_word(f),
                i + 1, rule, rule);
        for (size_t j = 0; j < r->n_tlvs; j++)
            print_record_tlv(out, &r->tlvs[j]);
        if (itl_record_check(r, &err) != 0) {
            fprintf(out, "\nThis record does not match its certificate: %s\n", err.msg);
            bad++;
        }
        if (r->function == ITL_ROLE_SAST)
            fprintf(out, "\nThis etoken was %sused to sign the %s file.\n",
                    (long)i == signer ? "" : "not ", show_list_word(f));
    }
    return bad;
}

void show_print_verdict(FILE *out, const struct itl_file *f, const struct verdict *v,
                        const struct itl_file *trust)
{
    const char *word = show_file_word(f);

    fputc('\n', out);
    if (f->len > 65535 && f->kind == ITL_KIND_TLV)
        fprintf(out,
                "Warning: the %s file is %zu bytes; phones fail to load files larger than "
                "about 64 KB.\n",
                word, f->len);
    switch (v->outcome) {
    case VERIFIED:
        fprintf(out, "The %s file was verified successfully", word);
        if (v->source && v->record >= 0 && trust)
            fprintf(out, " with record #%ld (%s) of %s", v->record + 1,
                    show_short_role(trust->records[v->record].function), v->source);
        else if (v->source)
            fprintf(out, " with %s", v->source);
        fputs(".\n", out);
        break;
    case UNCHECKABLE:
        fprintf(out, "The signature was not checked: %s.\n", v->why);
        break;
    default:
        fprintf(out, "The %s file could not be verified: %s.\n", word, v->why);
        break;
    }
}

int show_count_bad_records(const struct itl_file *f)
{
    int bad = 0;

    for (size_t i = 0; i < f->n_records; i++) {
        struct itl_error err;
        bad += itl_record_check(&f->records[i], &err) != 0;
    }
    return bad;
}

/* ---- JSON ---- */

static void json_bytes_str(FILE *out, struct itl_bytes b)
{
    if (!b.ptr)
        fputs("null", out);
    else
        cli_json_string(out, (const char *)b.ptr, b.len);
}

static void show_json_hex(FILE *out, struct itl_bytes b, const char *sep)
{
    if (!b.ptr) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    show_hex(out, b.ptr, b.len, sep);
    fputc('"', out);
}

static void json_record(FILE *out, const struct itl_record *r, size_t i, long signer)
{
    struct itl_error err = {0};
    int ok = itl_record_check(r, &err) == 0;

    fprintf(out, "{\"index\":%zu,\"offset\":%zu,\"length\":%u,\"function\":%u,\"role\":", i + 1,
            r->offset, r->length, r->function);
    cli_json_string(out, itl_role_name(r->function), strlen(itl_role_name(r->function)));
    fputs(",\"dnsname\":", out);
    json_bytes_str(out, r->dnsname);
    fputs(",\"subject\":", out);
    json_bytes_str(out, r->subject);
    fputs(",\"issuer\":", out);
    json_bytes_str(out, r->issuer);
    fputs(",\"serial\":", out);
    show_json_hex(out, r->serial, ":");
    fprintf(out, ",\"public_key_length\":%zu,\"signature_length\":%zu", r->public_key.len,
            r->signature.len);
    if (r->certificate.ptr) {
        uint8_t md[20];
        EVP_Digest(r->certificate.ptr, r->certificate.len, md, NULL, EVP_sha1(), NULL);
        fprintf(out, ",\"certificate_length\":%zu,\"certificate_sha1\":\"", r->certificate.len);
        show_hex(out, md, 20, "");
        fputc('"', out);
    } else {
        fputs(",\"certificate_length\":null,\"certificate_sha1\":null", out);
    }
    fputs(",\"ipaddress\":", out);
    show_json_hex(out, r->ipaddress, "");
    fputs(",\"certhash\":", out);
    show_json_hex(out, r->certhash, "");
    if (r->has_hash_algorithm)
        fprintf(out, ",\"hash_algorithm\":%u", r->hash_algorithm);
    else
        fputs(",\"hash_algorithm\":null", out);
    fprintf(out,
            ",\"signer\":%s,\"consistent\":%s,\"problem\":", (long)i == signer ? "true" : "false",
            ok ? "true" : "false");
    if (ok)
        fputs("null", out);
    else
        cli_json_string(out, err.msg, strlen(err.msg));
    fputc('}', out);
}

static void json_enc(FILE *out, const struct itl_enc_info *e)
{
    fprintf(out, ",\"encryption\":{\"iv\":");
    show_json_hex(out, e->iv, "");
    fprintf(out,
            ",\"padding\":%u,\"key_size_bits\":%u,\"key_algorithm\":%u,"
            "\"wrapped_key_length\":%zu,\"hash_algorithm\":%d,\"hash\":",
            e->padding, e->key_size_bits, e->key_algorithm, e->wrapped_key.len, e->hash_algorithm);
    show_json_hex(out, e->hash, "");
    fputc('}', out);
}

/* "checksum":{"md5":..,"sha1":..} of the whole file, as CUCM's checksum block; null when this
 * OpenSSL cannot compute them. */
static void json_checksum(FILE *out, const struct itl_file *f)
{
    struct show_checksums c;

    if (show_file_checksums(f->data, f->len, &c) == 0)
        fprintf(out, ",\"checksum\":{\"md5\":\"%s\",\"sha1\":\"%s\"}", c.md5, c.sha1);
    else
        fputs(",\"checksum\":null", out);
}

static void json_str_or_null(FILE *out, const char *s)
{
    if (s && *s)
        cli_json_string(out, s, strlen(s));
    else
        fputs("null", out);
}

/* ,"trust":{...}: the phone model's verdict (--trust), or null when none was asked for. The
 * record numbers count from 1, as the records array's "index". */
static void json_trust(FILE *out, const struct verdict *v)
{
    static const char *const paths[] = {"none", "direct", "tvs"};

    if (!v->phone_model) {
        fputs(",\"trust\":null", out);
        return;
    }
    fputs(",\"trust\":{\"installed\":", out);
    json_str_or_null(out, v->source);
    fprintf(out, ",\"path\":\"%s\",\"accepted\":%s",
            (unsigned)v->path < 3 ? paths[v->path] : "none",
            v->path != ITL_TRUST_NONE ? "true" : "false");
    if (v->record >= 0)
        fprintf(out, ",\"record\":%ld", v->record + 1);
    else
        fputs(",\"record\":null", out);
    if (v->tvs_record >= 0)
        fprintf(out, ",\"tvs_record\":%ld", v->tvs_record + 1);
    else
        fputs(",\"tvs_record\":null", out);
    fputs(",\"rule\":", out);
    json_str_or_null(out, v->rule);
    fputs(",\"note\":", out);
    json_str_or_null(out, v->note);
    fputs(",\"reason\":", out);
    json_str_or_null(out, v->path != ITL_TRUST_NONE ? NULL : v->why);
    fputc('}', out);
}

void show_print_json(FILE *out, const struct input *in, const struct verdict *v, long signer,
                     int bad)
{
    const struct itl_file *f = &in->f;
    const struct itl_header *h = &f->hdr;
    const char *digest = itl_digest_name(h->digest);
    static const char *const outcomes[] = {"verified", "invalid", "malformed", "unchecked"};

    fputs("{\"file\":", out);
    cli_json_string(out, in->path, strlen(in->path));
    fprintf(out, ",\"kind\":\"%s\",\"length\":%zu", itl_kind_name(f->kind), f->len);
    json_checksum(out, f);
    fprintf(out, ",\"version\":\"%u.%u\",\"header_length\":%u", h->version_major, h->version_minor,
            h->header_length);
    if (h->has_signer_version)
        fprintf(out, ",\"signer_version\":\"%u.%u\"", h->signer_version[0], h->signer_version[1]);
    else
        fputs(",\"signer_version\":null", out);
    fputs(",\"signer\":{\"name\":", out);
    json_bytes_str(out, h->signer_name);
    fputs(",\"serial\":", out);
    show_json_hex(out, h->signer_serial, ":");
    fputs(",\"issuer\":", out);
    json_bytes_str(out, h->signer_issuer);
    fprintf(out, ",\"order\":\"%s\"}",
            h->signer_order == ITL_ORDER_NAME_ISSUER_SERIAL ? "name,issuer,serial"
                                                            : "name,serial,issuer");
    fprintf(out, ",\"digest\":%d,\"digest_name\":", h->digest);
    if (digest)
        cli_json_string(out, digest, strlen(digest));
    else
        fputs("null", out);
    fprintf(out, ",\"signature_algorithm\":%u,\"signature_modulus\":%u,\"signature_length\":%zu",
            h->sig_algorithm, h->sig_modulus, h->signature.len);
    fputs(",\"filename\":", out);
    json_bytes_str(out, h->filename);
    if (h->has_timestamp)
        fprintf(out, ",\"timestamp\":%u", h->timestamp);
    else
        fputs(",\"timestamp\":null", out);
    fprintf(out, ",\"padding\":%zu,\"unknown_header_tags\":[", h->padding);
    for (size_t i = 0; i < h->n_extra; i++)
        fprintf(out, "%s%u", i ? "," : "", h->extra[i].tag);
    fputc(']', out);
    if (f->kind == ITL_KIND_ENC_SGN)
        json_enc(out, &h->enc);
    if (f->kind == ITL_KIND_TLV) {
        fputs(",\"records\":[", out);
        for (size_t i = 0; i < f->n_records; i++) {
            if (i)
                fputc(',', out);
            json_record(out, &f->records[i], i, signer);
        }
        fputc(']', out);
    } else {
        fprintf(out, ",\"payload_length\":%zu", f->payload.len);
    }
    fprintf(out, ",\"inconsistent_records\":%d,\"verification\":\"%s\",\"verified\":%s", bad,
            outcomes[v->outcome], v->outcome == VERIFIED ? "true" : "false");
    if (v->record >= 0)
        fprintf(out, ",\"signer_record\":%ld", v->record + 1);
    else
        fputs(",\"signer_record\":null", out);
    fputs(",\"reason\":", out);
    if (v->outcome == VERIFIED)
        fputs("null", out);
    else
        cli_json_string(out, v->why, strlen(v->why));
    json_trust(out, v);
    fputs("}\n", out);
}
