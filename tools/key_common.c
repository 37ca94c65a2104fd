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

/* -1 unknown (the token did not say): null. */
static void json_tristate(struct cli_json *j, const char *name, int v)
{
    cli_json_raw(j, name, key_json_bool(v));
}

void key_add_info_json(struct cli_json *j, const struct tok_key_info *k)
{
    char id[129], sha[65], from[32], to[32];

    hex_lower(k->id, k->id_len, 0, id, sizeof id);
    cli_json_str(j, "label", k->label);
    cli_json_str(j, "id", id);
    cli_json_str(j, "key_type", k->key_type);
    cli_json_int(j, "bits", k->bits);
    cli_json_bool(j, "has_private", k->has_private);
    cli_json_bool(j, "has_public", k->has_public);
    cli_json_bool(j, "has_cert", k->has_cert);
    if (k->has_cert) {
        char subject[1024];
        iso_time(k->not_before, from);
        iso_time(k->not_after, to);
        hex_lower(k->cert_sha256, 32, 0, sha, sizeof sha);
        subject_text(k, subject, sizeof subject);
        cli_json_str(j, "subject", subject);
        cli_json_str(j, "serial", k->serial_hex);
        cli_json_str(j, "not_before", from);
        cli_json_str(j, "not_after", to);
        cli_json_str(j, "cert_sha256", sha);
    }
    char priv[64], pub[64];
    tok_usage_text(&k->usage, 1, priv, sizeof priv);
    tok_usage_text(&k->usage, 0, pub, sizeof pub);
    cli_json_open(j, "usage", '{');
    cli_json_str(j, "private", k->has_private ? priv : "");
    cli_json_str(j, "public", k->has_public ? pub : "");
    cli_json_bool(j, "sign_only", tok_usage_sign_only(&k->usage));
    cli_json_close(j, '}');
    cli_json_open(j, "uri", '{');
    cli_json_str(j, "private", k->uri_private);
    cli_json_str(j, "public", k->uri_public);
    cli_json_str(j, "cert", k->uri_cert);
    cli_json_close(j, '}');
    cli_json_str(j, "origin", origin_word(k->origin));
    cli_json_str(j, "origin_basis", basis_word(k->origin_basis));
    json_tristate(j, "local", k->local);
    json_tristate(j, "always_sensitive", k->always_sensitive);
    json_tristate(j, "never_extractable", k->never_extractable);
    json_tristate(j, "extractable", k->extractable);
    json_tristate(j, "sensitive", k->sensitive);
    json_tristate(j, "always_authenticate", k->always_authenticate);
}

void key_print_info_json(const struct tok_key_info *k)
{
    struct cli_json j;

    cli_json_begin(&j);
    key_add_info_json(&j, k);
    cli_json_print(&j);
}
