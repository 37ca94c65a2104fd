/* SPDX-License-Identifier: MIT */
/* format: what the trust files say about a certificate (names, serial, key), and digests. */
#include "format/internal.h"

#include <openssl/bn.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

X509 *cert_parse(const uint8_t *der, size_t len, const char *what, struct itl_error *err)
{
    const unsigned char *p = der;
    X509 *x;

    if (!der || len == 0 || len > 0x7fffffff) {
        err_set(err, ITL_E_INPUT, "%s is empty", what);
        return NULL;
    }
    x = d2i_X509(NULL, &p, (long)len);
    if (!x) {
        err_set(err, ITL_E_INPUT, "%s (%zu bytes) is not a DER X.509 certificate", what, len);
        return NULL;
    }
    if (p != der + len) {
        err_set(err, ITL_E_INPUT, "%s has %zu bytes after the end of its DER certificate", what,
                (size_t)(der + len - p));
        X509_free(x);
        return NULL;
    }
    return x;
}

int cert_public_key_der(X509 *x, uint8_t **out, size_t *out_len)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    unsigned char *der = NULL;
    int n;

    *out = NULL;
    if (!pk)
        return -1;
    n = i2d_PublicKey(pk, &der);
    if (n <= 0)
        return -1;
    *out = der;
    *out_len = (size_t)n;
    return 0;
}

void cert_signature_value(X509 *x, const uint8_t **p, size_t *n)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;

    X509_get0_signature(&sig, &alg, x);
    *p = sig ? ASN1_STRING_get0_data(sig) : NULL;
    *n = sig ? (size_t)ASN1_STRING_length(sig) : 0;
}

/* The attribute names of Python cryptography's rfc4514_string(), which certutils uses. */
static const char *certutils_key(int nid)
{
    switch (nid) {
    case NID_commonName:
        return "CN";
    case NID_localityName:
        return "L";
    case NID_stateOrProvinceName:
        return "ST";
    case NID_organizationName:
        return "O";
    case NID_organizationalUnitName:
        return "OU";
    case NID_countryName:
        return "C";
    case NID_streetAddress:
        return "STREET";
    case NID_domainComponent:
        return "DC";
    case NID_userId:
        return "UID";
    default:
        return NULL;
    }
}

struct sbuf {
    char *p;
    size_t size, len;
    int overflow;
};

static void sb_put(struct sbuf *s, const char *str, size_t n)
{
    if (s->overflow || n >= s->size - s->len) {
        s->overflow = 1;
        return;
    }
    memcpy(s->p + s->len, str, n);
    s->len += n;
    s->p[s->len] = 0;
}

static void sb_putc(struct sbuf *s, char c)
{
    sb_put(s, &c, 1);
}

/* RFC 4514 escaping as certutils writes it (cryptography's _escape_dn_value). */
static void put_escaped(struct sbuf *s, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == 0) {
            sb_put(s, "\\00", 3);
            continue;
        }
        if (strchr("\\\"+,;<>", c) || (i == 0 && (c == '#' || c == ' ')) ||
            (i == n - 1 && c == ' '))
            sb_putc(s, '\\');
        sb_putc(s, c);
    }
}

static int name_str(const X509_NAME *nm, int issuer, enum itl_name_style style, char *out,
                    size_t out_size, struct itl_error *err)
{
    struct sbuf s = {out, out_size, 0, 0};
    char sep = style == ITL_NAMES_CERTUTILS ? ',' : ';';

    if (out_size == 0)
        return -1;
    out[0] = 0;
    int count = X509_NAME_entry_count(nm);

    /* Both walk the certificate's own (DER) order: CUCM's certificates are encoded CN first and
     * its ITLs and `show itl` dumps hold "CN=..;OU=..;C=US" (docs/format.md "Name strings");
     * certutils writes the same order ','-joined. */
    for (int k = 0; k < count; k++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, k);
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
        int nid = OBJ_obj2nid(obj);
        const char *key = style == ITL_NAMES_CERTUTILS ? certutils_key(nid)
                          : nid != NID_undef           ? OBJ_nid2sn(nid)
                                                       : NULL;
        char dotted[80];
        unsigned char *utf8 = NULL;
        int n;

        if (!key) {
            OBJ_obj2txt(dotted, sizeof dotted, obj, 1);
            key = dotted;
        }
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        if (n < 0) {
            err_set(err, ITL_E_INPUT, "the %s name's attribute %s is not a readable string",
                    issuer ? "issuer" : "subject", key);
            return -1;
        }
        if (k > 0)
            sb_putc(&s, sep);
        sb_put(&s, key, strlen(key));
        sb_putc(&s, '=');
        if (style == ITL_NAMES_CERTUTILS)
            put_escaped(&s, (const char *)utf8, (size_t)n);
        else
            sb_put(&s, (const char *)utf8, (size_t)n);
        OPENSSL_free(utf8);
    }
    if (s.overflow) {
        err_set(err, ITL_E_INPUT, "the certificate's %s name is longer than %zu bytes",
                issuer ? "issuer" : "subject", out_size - 1);
        return -1;
    }
    return 0;
}

int cert_serial_bytes(X509 *x, uint8_t *out, size_t out_size, size_t *out_len,
                      struct itl_error *err)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    int n;

    if (!bn) {
        err_set(err, ITL_E_INPUT, "the certificate's serial number cannot be read");
        return -1;
    }
    n = BN_num_bytes(bn);
    if ((size_t)(n ? n : 1) > out_size) {
        err_set(err, ITL_E_INPUT, "the certificate's serial number is %d bytes, more than %zu", n,
                out_size);
        BN_free(bn);
        return -1;
    }
    if (n == 0) { /* serial 0: one zero byte, never an empty field */
        out[0] = 0;
        n = 1;
    } else {
        BN_bn2bin(bn, out); /* unsigned, minimal, no DER sign byte */
    }
    *out_len = (size_t)n;
    BN_free(bn);
    return 0;
}

int itl_cert_name(const uint8_t *der, size_t len, int issuer, enum itl_name_style style, char *out,
                  size_t out_size, struct itl_error *err)
{
    X509 *x = cert_parse(der, len, "the certificate", err);
    int rc;

    if (!x)
        return -1;
    rc = cert_name_str(x, issuer, style, out, out_size, err);
    X509_free(x);
    return rc;
}

int itl_x509_name(const void *x509, int issuer, enum itl_name_style style, char *out,
                  size_t out_size, struct itl_error *err)
{
    return cert_name_str((X509 *)x509, issuer, style, out, out_size, err);
}

int cert_name_str(X509 *x, int issuer, enum itl_name_style style, char *out, size_t out_size,
                  struct itl_error *err)
{
    return name_str(issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), issuer, style, out,
                    out_size, err);
}

int itl_name_der_str(const uint8_t *der, size_t len, enum itl_name_style style, char *out,
                     size_t out_size, struct itl_error *err)
{
    const unsigned char *p = der;
    X509_NAME *nm = len <= LONG_MAX ? d2i_X509_NAME(NULL, &p, (long)len) : NULL;
    int rc;

    if (!nm || p != der + len) {
        X509_NAME_free(nm);
        err_set(err, ITL_E_INPUT, "the name is not a DER distinguished name");
        return -1;
    }
    rc = name_str(nm, 0, style, out, out_size, err);
    X509_NAME_free(nm);
    return rc;
}

int itl_cert_serial(const uint8_t *der, size_t len, uint8_t *out, size_t out_size, size_t *out_len,
                    struct itl_error *err)
{
    X509 *x = cert_parse(der, len, "the certificate", err);
    int rc;

    if (!x)
        return -1;
    rc = cert_serial_bytes(x, out, out_size, out_len, err);
    X509_free(x);
    return rc;
}

int itl_cert_rsa_bytes(const uint8_t *der, size_t len, size_t *bytes, struct itl_error *err)
{
    X509 *x = cert_parse(der, len, "the certificate", err);
    EVP_PKEY *pk;
    int rc = -1;

    if (!x)
        return -1;
    pk = X509_get0_pubkey(x);
    if (!pk || !EVP_PKEY_is_a(pk, "RSA"))
        err_set(err, ITL_E_INPUT, "the certificate's key is not RSA (%s)",
                pk ? EVP_PKEY_get0_type_name(pk) : "unreadable");
    else if (EVP_PKEY_get_size(pk) <= 0)
        err_set(err, ITL_E_INPUT, "the certificate's RSA key has no usable size");
    else {
        *bytes = (size_t)EVP_PKEY_get_size(pk);
        rc = 0;
    }
    X509_free(x);
    return rc;
}

int serial_equal(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    while (an > 0 && *a == 0)
        a++, an--;
    while (bn > 0 && *b == 0)
        b++, bn--;
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

const EVP_MD *digest_md(int digest, struct itl_error *err)
{
    switch (digest) {
    case ITL_DIGEST_SHA1:
        return EVP_sha1();
    case ITL_DIGEST_SHA256:
        return EVP_sha256();
    case ITL_DIGEST_SHA512:
        return EVP_sha512();
    default:
        err_set(err, ITL_E_INPUT, "digest code %d is unknown (1 = SHA-1, 2 = SHA-256, 3 = SHA-512)",
                digest);
        return NULL;
    }
}

int digest_two(const EVP_MD *md, const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2,
               uint8_t *out, size_t *out_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, p1, n1) &&
             EVP_DigestUpdate(ctx, p2, n2) && EVP_DigestFinal_ex(ctx, out, &n);

    EVP_MD_CTX_free(ctx);
    *out_len = n;
    return ok ? 0 : -1;
}

int itl_digest_info(int digest, const uint8_t *md, size_t md_len, uint8_t *out, size_t out_size,
                    size_t *out_len, struct itl_error *err)
{
    const EVP_MD *evp = digest_md(digest, err);
    X509_SIG *sig;
    X509_ALGOR *alg;
    ASN1_OCTET_STRING *os;
    unsigned char *p = out;
    int n, rc = -1;

    if (!evp)
        return -1;
    if (md_len != (size_t)EVP_MD_get_size(evp)) {
        err_set(err, ITL_E_INPUT, "a %s digest is %d bytes, not %zu", itl_digest_name(digest),
                EVP_MD_get_size(evp), md_len);
        return -1;
    }
    sig = X509_SIG_new();
    if (!sig) {
        err_set(err, ITL_E_INPUT, "out of memory building a DigestInfo");
        return -1;
    }
    X509_SIG_getm(sig, &alg, &os);
    if (!X509_ALGOR_set0(alg, OBJ_nid2obj(itl_digest_nid(digest)), V_ASN1_NULL, NULL) ||
        !ASN1_OCTET_STRING_set(os, md, (int)md_len)) {
        err_set(err, ITL_E_INPUT, "cannot build the DigestInfo");
        goto out;
    }
    n = i2d_X509_SIG(sig, NULL);
    if (n <= 0 || (size_t)n > out_size) {
        err_set(err, ITL_E_INPUT, "the DigestInfo (%d bytes) does not fit in %zu bytes", n,
                out_size);
        goto out;
    }
    i2d_X509_SIG(sig, &p);
    *out_len = (size_t)n;
    rc = 0;
out:
    X509_SIG_free(sig);
    return rc;
}
