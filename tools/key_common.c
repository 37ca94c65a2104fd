/* SPDX-License-Identifier: MIT */
/* What the key subcommands share: option values, printing a key, PEM. */
#include "tools/key_common.h"

#include "format/itl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

int key_parse_hex_id(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = 0;

    for (const char *p = hex; *p;) {
        unsigned v;
        if (*p == ':') {
            p++;
            continue;
        }
        if (n == 64 || sscanf(p, "%2x", &v) != 1 || !p[1] || p[1] == ':' ||
            strspn(p, "0123456789abcdefABCDEF") < 2)
            return -1;
        out[n++] = (uint8_t)v;
        p += 2;
    }
    *len = n;
    return n ? 0 : -1;
}

int key_parse_uint(const char *opt, const char *arg, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);

    if (!*arg || *end || v == 0 || v > max) {
        cli_error("%s: '%s' is not a number from 1 to %u", opt, arg, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    if (!t || !gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "unknown");
}

const char *key_yes_no(int v)
{
    return v < 0 ? "unknown" : v ? "yes" : "no";
}

const char *key_json_bool(int v)
{
    return v < 0 ? "null" : v ? "true" : "false";
}

void key_json_str(const char *key, const char *value, int comma)
{
    printf("\"%s\":", key);
    cli_json_string(stdout, value, strlen(value));
    if (comma)
        putchar(',');
}

int key_cert_pem(const uint8_t *der, size_t len, uint8_t **pem, size_t *pem_len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int rc = -1;

    if (x && bio && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0 &&
        (*pem = malloc((size_t)n))) {
        memcpy(*pem, data, (size_t)n);
        *pem_len = (size_t)n;
        rc = 0;
    }
    X509_free(x);
    BIO_free(bio);
    return rc;
}

/* The subject as ITLs and every message spell it: the certificate's own (DER) order, CUCM's
 * "CN=..;OU=..;C=US" (itl_name_der_str, format/). */
static void subject_text(const struct tok_key_info *k, char *out, size_t out_size)
{
    struct itl_error e;

    if (!k->subject_der_len || itl_name_der_str(k->subject_der, k->subject_der_len, ITL_NAMES_CUCM,
                                                out, out_size, &e) != 0)
        snprintf(out, out_size, "(certificate is not valid DER)");
}

/* What says where the key came from, for people. */
static const char *origin_text(const struct tok_key_info *k)
{
    switch (k->origin_basis) {
    case TOK_BASIS_ID_RULE:
        return k->always_sensitive == 1
                   ? "imported (CKA_ID is the SHA-1 of its public key: itl-sign key import's "
                     "rule); "
                     "it existed outside the token, whatever always_sensitive says"
                   : "imported (CKA_ID is the SHA-1 of its public key: itl-sign key import's rule)";
    case TOK_BASIS_CKA_LOCAL:
        return k->origin == TOK_ORIGIN_GENERATED
                   ? "generated on the token (CKA_LOCAL)"
                   : "imported (CKA_LOCAL false; NSS softokn reads false on generated keys too)";
    default:
        return "unknown (the token does not report CKA_LOCAL)";
    }
}

static const char *origin_word(enum tok_key_origin o)
{
    return o == TOK_ORIGIN_GENERATED  ? "generated"
           : o == TOK_ORIGIN_IMPORTED ? "imported"
                                      : "unknown";
}

static const char *basis_word(enum tok_key_origin_basis b)
{
    return b == TOK_BASIS_ID_RULE ? "cka_id_rule" : b == TOK_BASIS_CKA_LOCAL ? "cka_local" : "none";
}

static void print_uris_text(const struct tok_key_info *k)
{
    const char *lead = "  uri:      ";
    const struct {
        const char *kind, *uri;
    } objs[] = {{"private", k->uri_private}, {"public", k->uri_public}, {"cert", k->uri_cert}};

    for (size_t i = 0; i < 3; i++) {
        if (!objs[i].uri[0])
            continue;
        printf("%s%-8s %s\n", lead, objs[i].kind, objs[i].uri);
        lead = "            ";
    }
}

void key_print_info_text(const struct tok_key_info *k)
{
    char id[129], sha[65], from[32], to[32];

    hex_lower(k->id, k->id_len, 0, id, sizeof id);
    printf("%s\n", k->label[0] ? k->label : "(no label)");
    printf("  id:       %s\n", id);
    if (k->key_type[0])
        printf("  key:      %s %u%s\n", k->key_type, k->bits,
               k->has_private ? (k->has_public ? " (private + public key)" : " (private key)")
                              : " (certificate only, no private key)");
    if (k->has_cert) {
        iso_time(k->not_before, from);
        iso_time(k->not_after, to);
        hex_lower(k->cert_sha256, 32, 0, sha, sizeof sha);
        char subject[1024];
        subject_text(k, subject, sizeof subject);
        printf("  subject:  %s\n", subject);
        printf("  serial:   %s\n", k->serial_hex);
        printf("  valid:    %s .. %s\n", from, to);
        printf("  cert SHA-256: %s\n", sha);
    } else {
        printf("  certificate: none (signing needs one with the same CKA_ID)\n");
    }
    if (k->has_private) {
        printf("  origin:   %s\n", origin_text(k));
        printf("  local=%s always_sensitive=%s never_extractable=%s extractable=%s "
               "sensitive=%s always_authenticate=%s\n",
               key_yes_no(k->local), key_yes_no(k->always_sensitive),
               key_yes_no(k->never_extractable), key_yes_no(k->extractable),
               key_yes_no(k->sensitive), key_yes_no(k->always_authenticate));
    }
    if (k->has_private || k->has_public) {
        char priv[64], pub[64];
        tok_usage_text(&k->usage, 1, priv, sizeof priv);
        tok_usage_text(&k->usage, 0, pub, sizeof pub);
        printf("  usage:    private=%s public=%s (%s)\n", k->has_private ? priv : "-",
               k->has_public ? pub : "-",
               tok_usage_sign_only(&k->usage) ? "sign-only"
                                              : "NOT sign-only: the token allows more");
    }
    print_uris_text(k);
}

void key_print_result_json(const char *command, const char *label, const char *message)
{
    struct cli_json j;

    cli_json_begin(&j);
    cli_json_str(&j, "command", command);
    cli_json_str(&j, "status", "ok");
    cli_json_str(&j, "label", label);
    cli_json_str(&j, "message", message);
    cli_json_print(&j);
}

void key_print_info_json(const struct tok_key_info *k)
{
    char id[129], sha[65], from[32], to[32];

    hex_lower(k->id, k->id_len, 0, id, sizeof id);
    printf("{");
    key_json_str("label", k->label, 1);
    key_json_str("id", id, 1);
    key_json_str("key_type", k->key_type, 0);
    printf(",\"bits\":%u,\"has_private\":%s,\"has_public\":%s,\"has_cert\":%s,", k->bits,
           key_json_bool(k->has_private), key_json_bool(k->has_public), key_json_bool(k->has_cert));
    if (k->has_cert) {
        iso_time(k->not_before, from);
        iso_time(k->not_after, to);
        hex_lower(k->cert_sha256, 32, 0, sha, sizeof sha);
        char subject[1024];
        subject_text(k, subject, sizeof subject);
        key_json_str("subject", subject, 1);
        key_json_str("serial", k->serial_hex, 1);
        key_json_str("not_before", from, 1);
        key_json_str("not_after", to, 1);
        key_json_str("cert_sha256", sha, 1);
    }
    {
        char priv[64], pub[64];
        tok_usage_text(&k->usage, 1, priv, sizeof priv);
        tok_usage_text(&k->usage, 0, pub, sizeof pub);
        printf("\"usage\":{");
        key_json_str("private", k->has_private ? priv : "", 1);
        key_json_str("public", k->has_public ? pub : "", 1);
        printf("\"sign_only\":%s},", tok_usage_sign_only(&k->usage) ? "true" : "false");
    }
    printf("\"uri\":{");
    key_json_str("private", k->uri_private, 1);
    key_json_str("public", k->uri_public, 1);
    key_json_str("cert", k->uri_cert, 0);
    printf("},");
    key_json_str("origin", origin_word(k->origin), 1);
    key_json_str("origin_basis", basis_word(k->origin_basis), 1);
    printf("\"local\":%s,\"always_sensitive\":%s,\"never_extractable\":%s,\"extractable\":%s,"
           "\"sensitive\":%s,\"always_authenticate\":%s}",
           key_json_bool(k->local), key_json_bool(k->always_sensitive),
           key_json_bool(k->never_extractable), key_json_bool(k->extractable),
           key_json_bool(k->sensitive), key_json_bool(k->always_authenticate));
}
