/* SPDX-License-Identifier: MIT */
/*
 * What CUCM prints first (the checksum block) and `show --cucm`: an ITL/CTL dumped the way
 * CUCM's own `show itl` / `show ctl` prints it, so an admin can diff the two line by line.
 *
 * The layout is taken from the seed dumps (../shared/seeds: CUCM 10.0 `show itl`, CUCM 8.6)
 * and the CUCM 10.5 `show ctl` dumps of TAC 118893 / 118892 (docs/format.md, "show --cucm"):
 * CUCM's tag spellings (DIGESTALGORTITHM, SIGNATUREALGORTITHM), one "TAG\tNAME\tLENGTH\tVALUE"
 * line per TLV with names shorter than 8 characters followed by two tabs (the columns line up at
 * 8-column tab stops), no decoded value where CUCM prints none (algorithm codes, FILENAME,
 * TIMESTAMP, PUBLICKEY, SIGNATURE, IPADDRESS), the file's signature as bytes in "%x" (no leading
 * zero) eight to a line, no PADDING line.
 */
#include "tools/show.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

/* ---- the checksum block ---- */

static int digest_hex(const EVP_MD *md, const uint8_t *data, size_t len, char *out, size_t size)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (!md || EVP_Digest(data, len, d, &n, md, NULL) != 1 || 2 * (size_t)n + 1 > size)
        return -1;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    return 0;
}

int show_file_checksums(const uint8_t *data, size_t len, struct show_checksums *c)
{
    /* EVP_get_digestbyname: an OpenSSL without MD5 (a FIPS provider) fails cleanly here. */
    return digest_hex(EVP_get_digestbyname("MD5"), data, len, c->md5, sizeof c->md5) != 0 ||
                   digest_hex(EVP_sha1(), data, len, c->sha1, sizeof c->sha1) != 0
               ? -1
               : 0;
}

void show_print_checksum(FILE *out, const struct itl_file *f)
{
    struct show_checksums c;

    fprintf(out, "The checksum value of the %s file:\n", show_file_word(f));
    if (show_file_checksums(f->data, f->len, &c) == 0)
        fprintf(out, "%s(MD5)\n%s(SHA1)\n\n", c.md5, c.sha1);
    else
        fputs("(MD5 and SHA-1 not available from this OpenSSL)\n\n", out);
}

/* ---- show --cucm ---- */

/* CUCM's spelling of a header tag (its own typos included); ours for the rest. */
static const char *cucm_header_name(unsigned tag)
{
    switch (tag) {
    case 8:
        return "DIGESTALGORTITHM";
    case 10:
        return "SIGNATUREALGORTITHM";
    default:
        return itl_header_tag_name(tag);
    }
}

/* A string field: control characters escaped (a name must not drive the terminal), trailing
 * NULs dropped (CUCM's ITLs hold a 2-byte DNSNAME that prints blank). */
static void cucm_text(FILE *out, struct itl_bytes b)
{
    while (b.len > 0 && b.ptr[b.len - 1] == 0)
        b.len--;
    show_text(out, b);
}

/* "TAG\tNAME\tLENGTH\t": CUCM's columns; the value (possibly nothing) follows. */
static void cucm_columns(FILE *out, unsigned tag, const char *name, size_t length)
{
    fprintf(out, "%u\t%s%s%zu\t", tag, name, strlen(name) < 8 ? "\t\t" : "\t", length);
}

/* The signature, eight bytes a line, "%x" each, padded to four columns but the last. */
static void cucm_signature_rows(FILE *out, struct itl_bytes sig)
{
    for (size_t i = 0; i < sig.len; i++) {
        int last = i % 8 == 7 || i + 1 == sig.len;
        fprintf(out, last ? "%x\n" : "%-4x", sig.ptr[i]);
    }
}

static void cucm_header_tlv(FILE *out, const struct itl_tlv *t)
{
    const uint8_t *v = t->value.ptr;
    size_t n = t->value.len;

    switch (t->tag) {
    case 3: /* containers: CUCM prints a length of 2 and the container's length as value */
    case 7:
    case 9:
        cucm_columns(out, t->tag, cucm_header_name(t->tag), 2);
        fprintf(out, "%zu\n", n);
        return;
    default:
        break;
    }
    cucm_columns(out, t->tag, cucm_header_name(t->tag), n);
    switch (t->tag) {
    case 4:
    case 6:
        cucm_text(out, t->value);
        break;
    case 5:
        show_hex(out, v, n, ":");
        break;
    case 12:
        fputc('\n', out);
        cucm_signature_rows(out, t->value);
        return;
    default:
        break; /* 8, 10, 11, 14, 15 and tags CUCM does not know: the length only */
    }
    fputc('\n', out);
}

static void cucm_record_tlv(FILE *out, const struct itl_tlv *t)
{
    const uint8_t *v = t->value.ptr;
    size_t n = t->value.len;

    cucm_columns(out, t->tag, itl_record_tag_name(t->tag), n);
    switch (t->tag) {
    case 1:
        fprintf(out, "%u", (unsigned)(v[0] << 8 | v[1]));
        break;
    case 2:
    case 3:
    case 5:
        cucm_text(out, t->value);
        break;
    case 4: {
        unsigned fn = (unsigned)(v[0] << 8 | v[1]);
        const char *role = itl_role_name(fn);
        if (strcmp(role, "UNKNOWN") == 0)
            fprintf(out, "UNKNOWN (%u)", fn);
        else
            fputs(role, out);
        break;
    }
    case 6:
        show_hex(out, v, n, ":");
        break;
    case 9: {
        uint8_t md[20];
        if (EVP_Digest(v, n, md, NULL, EVP_sha1(), NULL) == 1) {
            show_hex(out, md, sizeof md, " ");
            fputs(" (SHA1 Hash HEX)", out);
        }
        break;
    }
    case 11:
        show_hex(out, v, n, " ");
        break;
    case 12: {
        const char *name = itl_digest_name(v[0]);
        if (name)
            fputs(name, out);
        else
            fprintf(out, "UNKNOWN (%u)", v[0]);
        break;
    }
    default:
        break; /* 7, 8, 10 and unknown tags: the length only */
    }
    fputc('\n', out);
}

static const char columns[] = "BYTEPOS\tTAG\t\tLENGTH\tVALUE\n-------\t---\t\t------\t-----\n";

static void cucm_header(FILE *out, const struct itl_file *f, const time_t *mtime)
{
    const struct itl_header *h = &f->hdr;
    const char *word = show_list_word(f);
    struct tm tm;
    char when[80];

    show_print_checksum(out, f);
    fprintf(out, "Length of %s file: %zu\n", word, f->len);
    /* CUCM's `date` form, in the local time zone (TZ), of the file's modification time. */
    if (mtime && localtime_r(mtime, &tm) && strftime(when, sizeof when, "%a %b %d %T %Z %Y", &tm))
        fprintf(out, "The %s File was last modified on %s\n", word, when);
    fprintf(out, "\nParse %s File\n----------------\n\n", word);
    fprintf(out, "Version:\t%u.%u\nHeaderLength:\t%u (BYTES)\n\n", h->version_major,
            h->version_minor, h->header_length);
    fputs(columns, out);
    for (size_t i = 2; i < h->n_tlvs; i++) /* VERSION and HEADERLENGTH are above */
        cucm_header_tlv(out, &h->tlvs[i]);
}

/* Returns the number of records that do not match their certificate (said on `err_out`, not in
 * the dump: CUCM prints no such line and the dump must diff clean). */
static int cucm_records(FILE *out, FILE *err_out, const struct itl_file *f, long signer)
{
    const char *word = show_list_word(f);
    struct itl_error err;
    int bad = 0;

    for (size_t i = 0; i < f->n_records; i++) {
        const struct itl_record *r = &f->records[i];
        fprintf(out, "\n%s Record #:%zu\n----\n%s", word, i + 1, columns);
        for (size_t j = 0; j < r->n_tlvs; j++)
            cucm_record_tlv(out, &r->tlvs[j]);
        if (r->function == ITL_ROLE_SAST)
            fprintf(out, "This etoken was %sused to sign the %s file.\n",
                    (long)i == signer ? "" : "not ", word);
        if (itl_record_check(r, &err) != 0) {
            fprintf(err_out, "itl-sign: %s record #%zu does not match its certificate: %s\n", word,
                    i + 1, err.msg);
            bad++;
        }
    }
    return bad;
}

int show_print_cucm(FILE *out, FILE *err_out, const struct itl_file *f, long signer,
                    const struct verdict *v, const time_t *mtime)
{
    const char *word = show_list_word(f);
    int bad;

    cucm_header(out, f, mtime);
    bad = cucm_records(out, err_out, f, signer);
    fputc('\n', out);
    if (v->outcome == VERIFIED)
        fprintf(out, "The %s file was verified successfully.\n", word);
    else
        fprintf(out, "The %s file could not be verified: %s.\n", word, v->why);
    if (f->len > 65535)
        fprintf(err_out,
                "itl-sign: warning: the %s file is %zu bytes; phones fail to load files larger "
                "than about 64 KB\n",
                word, f->len);
    return bad;
}
