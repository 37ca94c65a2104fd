/* SPDX-License-Identifier: MIT */
/*
 * itl-sign show | verify | strip: read-only commands over trust files. `show` prints what
 * CUCM's `show itl` prints (same tag names and numbers, one TLV a line), `verify` answers
 * "is it valid" or, with --trust, "would a phone holding this ITL accept it".
 */
#include "tools/cli.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "format/itl.h"

/* Firmware .sgn files can be large; trust files and configs are small. */
#define MAX_INPUT_BYTES (256u << 20)

enum {
    OPT_CERT = OPT_FIRST_COMMAND_OPTION,
    OPT_TRUST,
};

struct input {
    const char *path;
    uint8_t *data;
    size_t len;
    unsigned mode; /* of the file: what strip writes from it is never wider */
    struct itl_file f;
};

/* What is known about the signature after checking it. */
enum outcome {
    VERIFIED,
    INVALID,     /* exit 1 */
    MALFORMED,   /* exit 3 */
    UNCHECKABLE, /* a .sgn without a certificate to check it with */
};

struct verdict {
    enum outcome outcome;
    long record;        /* the record that verified it (self or trust file), or -1 */
    const char *source; /* where that record is: NULL for the file itself */
    char why[ITL_ERROR_LEN + 256];
};

struct show_opts {
    const char *cert;
    const char *trust;
};

/* ---- input ---- */

static int load_input(const char *path, enum itl_kind hint, struct input *in)
{
    char msg[512];
    struct itl_error err = {0};

    memset(in, 0, sizeof *in);
    in->path = path;
    if (cli_read_input(path, MAX_INPUT_BYTES, &in->data, &in->len, &in->mode, msg, sizeof msg) !=
        0) {
        cli_error("%s", msg);
        return EXIT_INPUT;
    }
    if (itl_parse(in->data, in->len, hint, &in->f, &err) != 0) {
        cli_error("%s: %s", path, err.msg);
        free(in->data);
        in->data = NULL;
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

static void free_input(struct input *in)
{
    itl_file_free(&in->f);
    free(in->data);
    in->data = NULL;
}

static const char *short_role(unsigned function)
{
    return function == ITL_ROLE_SAST ? "SAST" : itl_role_name(function);
}

/* "ITL" or "CTL" for trust lists, by FILENAME (CTLFile.tlv, CTLSEP<MAC>.tlv). */
static const char *list_word(const struct itl_file *f)
{
    const struct itl_bytes *n = &f->hdr.filename;
    return n->len >= 3 && memcmp(n->ptr, "CTL", 3) == 0 ? "CTL" : "ITL";
}

static const char *file_word(const struct itl_file *f)
{
    switch (f->kind) {
    case ITL_KIND_TLV:
        return list_word(f);
    case ITL_KIND_ENC_SGN:
        return "encrypted";
    default:
        return "signed";
    }
}

/* ---- verification ---- */

static int same_bytes(struct itl_bytes a, struct itl_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Equal as unsigned integers. */
static int same_serial(struct itl_bytes a, struct itl_bytes b)
{
    while (a.len > 0 && a.ptr[0] == 0)
        a.ptr++, a.len--;
    while (b.len > 0 && b.ptr[0] == 0)
        b.ptr++, b.len--;
    return same_bytes(a, b);
}

static int role_allowed(const struct itl_file *f, unsigned function)
{
    if (f->kind == ITL_KIND_TLV)
        return function == ITL_ROLE_SAST;
    return function == ITL_ROLE_TFTP || function == ITL_ROLE_CCM || function == ITL_ROLE_CCM_TFTP;
}

static const char *allowed_roles(const struct itl_file *f)
{
    return f->kind == ITL_KIND_TLV ? "SAST" : "TFTP, CCM or CCM+TFTP";
}

static enum outcome failure_kind(const struct itl_file *f)
{
    return itl_digest_nid(f->hdr.digest) == 0 ? MALFORMED : INVALID;
}

/*
 * As a phone holding `trust` would: the signer named in f's header must be a record of trust
 * with an allowed role (matched by serial and, when both name it, issuer), and its
 * certificate must verify the signature.
 */
static void verify_against(const struct itl_file *f, const struct itl_file *trust,
                           const char *trust_path, struct verdict *v)
{
    struct itl_error err = {0};
    long named = -1;

    if (!f->hdr.signer_serial.ptr) {
        v->outcome = INVALID;
        v->source = trust_path;
        snprintf(v->why, sizeof v->why, "the header names no signer serial number");
        return;
    }
    for (size_t i = 0; i < trust->n_records; i++) {
        const struct itl_record *r = &trust->records[i];
        if (!r->has_function || !role_allowed(f, r->function) || !r->serial.ptr ||
            !same_serial(r->serial, f->hdr.signer_serial))
            continue;
        if (f->hdr.signer_issuer.len && r->issuer.len &&
            !same_bytes(f->hdr.signer_issuer, r->issuer))
            continue;
        if (named < 0)
            named = (long)i;
        if (r->certificate.ptr &&
            itl_verify_with_cert(f, r->certificate.ptr, r->certificate.len, &err) == 0) {
            v->outcome = VERIFIED;
            v->record = (long)i;
            v->source = trust_path;
            return;
        }
    }
    v->source = trust_path;
    v->record = named;
    if (named < 0) {
        v->outcome = INVALID;
        snprintf(v->why, sizeof v->why, "the signer %.*s is not a %s record of %s",
                 (int)f->hdr.signer_name.len, (const char *)f->hdr.signer_name.ptr,
                 allowed_roles(f), trust_path);
        return;
    }
    v->outcome = failure_kind(f);
    snprintf(
        v->why, sizeof v->why, "record #%ld of %s names the signer but %s", named + 1, trust_path,
        trust->records[named].certificate.ptr ? err.msg : "holds no certificate to check with");
}

static void verify_file(const struct itl_file *f, const struct show_opts *o, const uint8_t *cert,
                        size_t cert_len, const struct itl_file *trust, struct verdict *v)
{
    struct itl_error err = {0};

    memset(v, 0, sizeof *v);
    v->record = -1;
    if (cert) {
        if (itl_verify_with_cert(f, cert, cert_len, &err) == 0) {
            v->outcome = VERIFIED;
            v->source = o->cert;
        } else {
            v->outcome = failure_kind(f);
            snprintf(v->why, sizeof v->why, "%s", err.msg);
        }
    } else if (trust) {
        verify_against(f, trust, o->trust, v);
    } else if (f->kind == ITL_KIND_TLV) {
        if (itl_verify_self(f, &v->record, &err) == 0) {
            v->outcome = VERIFIED;
        } else {
            v->outcome = failure_kind(f);
            snprintf(v->why, sizeof v->why, "%s", err.msg);
        }
    } else {
        v->outcome = UNCHECKABLE;
        snprintf(v->why, sizeof v->why,
                 "a %s file names its signer but carries no certificate: give --cert PEM or "
                 "--trust ITL",
                 file_word(f));
    }
}

static int exit_code(enum outcome o)
{
    return o == VERIFIED || o == UNCHECKABLE ? EXIT_OK : o == INVALID ? EXIT_INVALID : EXIT_INPUT;
}

/* ---- printing helpers ---- */

/* Text from the file, with control characters escaped: a name must not drive the terminal. */
static void print_text(FILE *out, struct itl_bytes b)
{
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = b.ptr[i];
        if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

static void print_hex(FILE *out, const uint8_t *p, size_t n, const char *sep)
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
        print_hex(out, b.ptr, b.len, " ");
}

static void print_digest_code(FILE *out, int code)
{
    const char *name = itl_digest_name(code);
    if (name)
        fputs(name, out);
    else
        fprintf(out, "UNKNOWN (%d)", code);
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
    case 14: {
        struct itl_bytes s = {v, n > 0 && v[n - 1] == 0 ? n - 1 : n};
        fputc(' ', out);
        print_text(out, s);
        break;
    }
    case 5:
        fputc(' ', out);
        print_hex(out, v, n, ":");
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
        fputc(' ', out);
        print_hex(out, v, n > 32 ? 32 : n, " ");
        if (n > 32)
            fputs(" ...", out);
        break;
    }
    fputc('\n', out);
}

static void print_sha1_of(FILE *out, struct itl_bytes der)
{
    uint8_t md[20];

    EVP_Digest(der.ptr, der.len, md, NULL, EVP_sha1(), NULL);
    print_hex(out, md, sizeof md, " ");
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
    case 5: {
        struct itl_bytes s = {v, n > 0 && v[n - 1] == 0 ? n - 1 : n};
        fputc(' ', out);
        print_text(out, s);
        break;
    }
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
        print_hex(out, v, n, ":");
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
        print_hex(out, v, n, " ");
        break;
    case 12:
        fputc(' ', out);
        print_digest_code(out, v[0]);
        break;
    default:
        fputc(' ', out);
        print_hex(out, v, n > 32 ? 32 : n, " ");
        if (n > 32)
            fputs(" ...", out);
        break;
    }
    fputc('\n', out);
}

static const char rule[] = "-----------------------------------------";

static void print_header(FILE *out, const struct itl_file *f)
{
    const struct itl_header *h = &f->hdr;

    fprintf(out, "Length of %s file: %zu\n\n", file_word(f), f->len);
    fprintf(out, "Parse %s File\n%s\n\n", file_word(f), rule);
    fprintf(out, "Version: %u.%u\n", h->version_major, h->version_minor);
    fprintf(out, "HeaderLength: %u (BYTES)\n\n", h->header_length);
    fprintf(out, "BYTEPOS TAG LENGTH VALUE\n%s\n", rule);
    for (size_t i = 2; i < h->n_tlvs; i++) /* VERSION and HEADERLENGTH are above */
        print_header_tlv(out, &h->tlvs[i]);
    if (h->padding)
        fprintf(out, "13 PADDING %zu\n", h->padding);
}

/* Returns the number of records that do not match their certificate. */
static int print_records(FILE *out, const struct itl_file *f, long signer)
{
    struct itl_error err;
    int bad = 0;

    for (size_t i = 0; i < f->n_records; i++) {
        const struct itl_record *r = &f->records[i];
        fprintf(out, "\n%s Record #:%zu\n%s\nBYTEPOS TAG LENGTH VALUE\n%s\n", list_word(f), i + 1,
                rule, rule);
        for (size_t j = 0; j < r->n_tlvs; j++)
            print_record_tlv(out, &r->tlvs[j]);
        if (itl_record_check(r, &err) != 0) {
            fprintf(out, "\nThis record does not match its certificate: %s\n", err.msg);
            bad++;
        }
        if (r->function == ITL_ROLE_SAST)
            fprintf(out, "\nThis etoken was %sused to sign the %s file.\n",
                    (long)i == signer ? "" : "not ", list_word(f));
    }
    return bad;
}

static void print_verdict(FILE *out, const struct itl_file *f, const struct verdict *v,
                          const struct itl_file *trust)
{
    const char *word = file_word(f);

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
                    short_role(trust->records[v->record].function), v->source);
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
    print_hex(out, b.ptr, b.len, sep);
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
        print_hex(out, md, 20, "");
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

static void json_show(FILE *out, const struct input *in, const struct verdict *v, long signer,
                      int bad)
{
    const struct itl_file *f = &in->f;
    const struct itl_header *h = &f->hdr;
    const char *digest = itl_digest_name(h->digest);
    static const char *const outcomes[] = {"verified", "invalid", "malformed", "unchecked"};

    fputs("{\"file\":", out);
    cli_json_string(out, in->path, strlen(in->path));
    fprintf(out, ",\"kind\":\"%s\",\"length\":%zu,\"version\":\"%u.%u\",\"header_length\":%u",
            itl_kind_name(f->kind), f->len, h->version_major, h->version_minor, h->header_length);
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
    fputs("}\n", out);
}

/* ---- option parsing shared by the three commands ---- */

static int parse_common(int argc, char **argv, struct cli_global *g, const char *shortopts,
                        const struct option *longopts, void (*usage)(FILE *), struct show_opts *o,
                        const char **out)
{
    int opt;

    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int r = cli_global_option(g, opt, optarg);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        switch (opt) {
        case 'h':
        case OPT_HELP:
            usage(stdout);
            return -1;
        case OPT_CERT:
            o->cert = optarg;
            break;
        case OPT_TRUST:
            o->trust = optarg;
            break;
        case 'o':
            *out = optarg;
            break;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (o->cert && o->trust) {
        cli_error("%s: --cert and --trust are alternatives; give one", argv[0]);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The certificate or trust list to check with, as the options name them. */
struct checker {
    uint8_t *cert;
    size_t cert_len;
    struct input trust;
    int have_trust;
};

static int load_checker(const struct show_opts *o, struct checker *c)
{
    char msg[512];

    memset(c, 0, sizeof *c);
    if (o->cert && cli_read_cert(o->cert, &c->cert, &c->cert_len, msg, sizeof msg) != 0) {
        cli_error("%s", msg);
        return EXIT_INPUT;
    }
    if (o->trust) {
        int rc = load_input(o->trust, ITL_KIND_TLV, &c->trust);
        if (rc != EXIT_OK)
            return rc;
        c->have_trust = 1;
    }
    return EXIT_OK;
}

static void free_checker(struct checker *c)
{
    OPENSSL_free(c->cert);
    if (c->have_trust)
        free_input(&c->trust);
}

/* ---- show ---- */

static void show_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign show FILE [--json] [--cert PEM | --trust ITL]\n"
            "  Print a .tlv (ITL/CTL), .sgn or .enc.sgn as CUCM's 'show itl' does and check its\n"
            "  signature: an ITL/CTL with its own signer record; a .sgn/.enc.sgn with --cert\n"
            "  (the signer certificate) or --trust (an ITL whose TFTP, CCM or CCM+TFTP record\n"
            "  names the signer).\n"
            "exit: 0 shown and verified (or not checkable without a certificate), 1 signature\n"
            "  invalid, 3 unreadable or malformed file\n");
}

/* What show and verify both do first: options, the file, the certificate or ITL to check it
 * with, and the verdict. EXIT_OK with everything loaded (the caller frees in and c), -1 after
 * --help, or an exit code. */
static int load_and_verify(int argc, char **argv, struct cli_global *g,
                           const struct option *longopts, void (*usage)(FILE *),
                           struct show_opts *o, struct input *in, struct checker *c,
                           struct verdict *v)
{
    const char *unused = NULL;
    int rc = parse_common(argc, argv, g, "h", longopts, usage, o, &unused);

    if (rc != EXIT_OK)
        return rc;
    rc = load_input(argv[optind], ITL_KIND_AUTO, in);
    if (rc != EXIT_OK)
        return rc;
    rc = load_checker(o, c);
    if (rc != EXIT_OK) {
        free_input(in);
        return rc;
    }
    verify_file(&in->f, o, c->cert, c->cert_len, c->have_trust ? &c->trust.f : NULL, v);
    return EXIT_OK;
}

int cmd_show(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"cert", required_argument, NULL, OPT_CERT},
                                             {"trust", required_argument, NULL, OPT_TRUST},
                                             {NULL, 0, NULL, 0}};
    struct show_opts o = {0};
    struct checker c;
    struct input in;
    struct verdict v;
    long signer;
    int rc, bad = 0;

    rc = load_and_verify(argc, argv, g, longopts, show_usage, &o, &in, &c, &v);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    /* The record the header names as signer ("This etoken was used ..."). */
    signer = itl_find_signer_record(&in.f);
    if (g->json) {
        for (size_t i = 0; i < in.f.n_records; i++) {
            struct itl_error err;
            bad += itl_record_check(&in.f.records[i], &err) != 0;
        }
        json_show(stdout, &in, &v, signer, bad);
    } else {
        print_header(stdout, &in.f);
        if (in.f.kind == ITL_KIND_TLV)
            bad = print_records(stdout, &in.f, signer);
        else {
            fprintf(stdout, "\nPayload: %zu bytes%s\n", in.f.payload.len,
                    in.f.kind == ITL_KIND_ENC_SGN ? " of AES-128-CBC ciphertext" : "");
        }
        print_verdict(stdout, &in.f, &v, c.have_trust ? &c.trust.f : NULL);
    }
    rc = exit_code(v.outcome);
    if (rc == EXIT_OK && bad > 0)
        rc = EXIT_INPUT;
    if (fflush(stdout) != 0)
        rc = EXIT_OUTPUT;
    free_checker(&c);
    free_input(&in);
    return rc;
}

/* ---- verify ---- */

static void verify_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign verify FILE [--trust INSTALLED.tlv | --cert PEM]\n"
               "  Exit 0 when FILE's signature is valid. An ITL/CTL is checked with its own SAST\n"
               "  signer record, a .sgn/.enc.sgn needs --cert or --trust.\n"
               "  --trust INSTALLED.tlv  answer as a phone holding that ITL: an ITL/CTL must be\n"
               "                         signed by one of its SAST certificates, a .sgn/.enc.sgn\n"
               "                         by its TFTP, CCM or CCM+TFTP certificate\n"
               "  --cert PEM             check with this certificate\n"
               "exit: 0 valid, 1 invalid or rejected, 2 usage, 3 unreadable or malformed file\n");
}

static void describe_record(char *out, size_t size, const struct itl_file *f, long i)
{
    const struct itl_record *r = &f->records[i];
    snprintf(out, size, "record #%ld (%s %.*s)", i + 1, short_role(r->function),
             (int)r->subject.len, r->subject.ptr ? (const char *)r->subject.ptr : "");
}

int cmd_verify(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"cert", required_argument, NULL, OPT_CERT},
                                             {"trust", required_argument, NULL, OPT_TRUST},
                                             {NULL, 0, NULL, 0}};
    struct show_opts o = {0};
    struct checker c;
    struct input in;
    struct verdict v;
    char who[1024];
    int rc;

    rc = load_and_verify(argc, argv, g, longopts, verify_usage, &o, &in, &c, &v);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    switch (v.outcome) {
    case VERIFIED:
        if (c.have_trust) {
            describe_record(who, sizeof who, &c.trust.f, v.record);
            printf("accepted: signed by %s of %s\n", who, o.trust);
        } else if (o.cert) {
            printf("%s: verified with %s\n", in.path, o.cert);
        } else {
            describe_record(who, sizeof who, &in.f, v.record);
            printf("%s: verified: signed by %s\n", in.path, who);
        }
        rc = EXIT_OK;
        break;
    case UNCHECKABLE:
        cli_error("%s: %s", in.path, v.why);
        rc = EXIT_USAGE;
        break;
    default:
        if (c.have_trust)
            printf("rejected: %s\n", v.why);
        else
            printf("%s: invalid: %s\n", in.path, v.why);
        rc = exit_code(v.outcome);
        break;
    }
    free_checker(&c);
    free_input(&in);
    return rc;
}

/* ---- strip ---- */

static void strip_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign strip FILE.sgn [-o OUT]\n"
               "  Write the original bytes of a .sgn (the file after its header) to OUT, or to\n"
               "  standard output. The signature is not checked: use verify for that.\n");
}

static int write_stdout(const uint8_t *p, size_t n)
{
    return (n == 0 || fwrite(p, 1, n, stdout) == n) && fflush(stdout) == 0 ? 0 : -1;
}

int cmd_strip(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS, {"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
    struct show_opts o = {0};
    const char *out = NULL;
    struct input in;
    char msg[512];
    int rc;

    rc = parse_common(argc, argv, g, "ho:", longopts, strip_usage, &o, &out);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (o.cert || o.trust) {
        strip_usage(stderr);
        return EXIT_USAGE;
    }
    rc = load_input(argv[optind], ITL_KIND_AUTO, &in);
    if (rc != EXIT_OK)
        return rc;
    if (in.f.kind != ITL_KIND_SGN) {
        cli_error("%s is %s, not a .sgn: there is nothing to strip", in.path,
                  in.f.kind == ITL_KIND_TLV ? "an ITL/CTL (.tlv)"
                                            : "encrypted (.enc.sgn; itl-sign decrypt reads it)");
        rc = EXIT_INPUT;
    } else if (out) {
        if (cli_write_file_atomic(out, in.f.payload.ptr, in.f.payload.len, cli_output_mode(in.mode),
                                  msg, sizeof msg) != 0) {
            cli_error("%s", msg);
            rc = EXIT_OUTPUT;
        }
    } else if (write_stdout(in.f.payload.ptr, in.f.payload.len) != 0) {
        cli_error("cannot write to standard output");
        rc = EXIT_OUTPUT;
    }
    free_input(&in);
    return rc;
}
