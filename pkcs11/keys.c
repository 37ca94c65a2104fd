/* SPDX-License-Identifier: MIT */
/*
 * Key management: import a PKCS#12 (the CUCM migration path), generate a key pair on the token
 * with a self-signed certificate made by the token key, list keys, export certificates.
 * Templates are explicit: SoftHSM2 (and others) default CKA_TOKEN / SENSITIVE / EXTRACTABLE to
 * values nobody wants for a signing key.
 *
 * Here: describing and listing keys, exporting certificates.
 */
#include "pkcs11/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- Key information ---- */

static const char *key_type_name(CK_KEY_TYPE type)
{
    switch (type) {
    case CKK_RSA:
        return "RSA";
    case CKK_EC:
        return "EC";
    case CKK_DSA:
        return "DSA";
    case CKK_EC_EDWARDS:
        return "EdDSA";
    default:
        return "other";
    }
}

static void cert_details(const uint8_t *der, size_t len, struct tok_key_info *info)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIGNUM *bn;
    struct tm tm;

    info->has_cert = 1;
    if (EVP_Digest(der, len, info->cert_sha256, NULL, EVP_sha256(), NULL) == 1)
        info->has_cert_sha256 = 1;
    if (!x)
        return; /* subject_der_len 0: printed as not valid DER */
    int n = i2d_X509_NAME(X509_get_subject_name(x), NULL);
    if (n > 0 && (size_t)n <= sizeof info->subject_der) {
        unsigned char *w = info->subject_der;
        info->subject_der_len = (size_t)i2d_X509_NAME(X509_get_subject_name(x), &w);
    }
    {
        uint8_t sha1[20];
        unsigned sha1_len = 0;
        info->id_is_pubkey_sha1 = X509_pubkey_digest(x, EVP_sha1(), sha1, &sha1_len) == 1 &&
                                  sha1_len == info->id_len && memcmp(sha1, info->id, sha1_len) == 0;
    }
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (bn) {
        char *hex = BN_bn2hex(bn);
        if (hex)
            snprintf(info->serial_hex, sizeof info->serial_hex, "%s", hex);
        OPENSSL_free(hex);
        BN_free(bn);
    }
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm))
        info->not_before = timegm(&tm);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        info->not_after = timegm(&tm);
    if (!info->bits) {
        EVP_PKEY *pk = X509_get0_pubkey(x);
        if (pk) {
            info->bits = (unsigned)EVP_PKEY_get_bits(pk);
            if (!info->key_type[0])
                snprintf(info->key_type, sizeof info->key_type, "%s",
                         EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA ? "RSA" : "other");
        }
    }
    X509_free(x);
}

static unsigned modulus_bits(const uint8_t *m, size_t len)
{
    BIGNUM *bn = BN_bin2bn(m, (int)len, NULL);
    unsigned bits = bn ? (unsigned)BN_num_bits(bn) : 0;
    BN_free(bn);
    return bits;
}

/* OBJ's CKA_LABEL into OUT ("" when it has none). */
static void read_label(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, char *out,
                       size_t size)
{
    uint8_t *v;
    size_t vlen;

    out[0] = '\0';
    if (tok_get_attr(t, h, obj, CKA_LABEL, &v, &vlen, NULL) == 0) {
        snprintf(out, size, "%.*s", (int)vlen, (char *)v);
        free(v);
    }
}

/* Everything we say about the key with this CKA_ID (priv may be 0: a lone certificate). */
static int describe_key(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv, int has_priv,
                        const uint8_t *id, size_t id_len, struct tok_key_info *info,
                        struct itl_error *err)
{
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, (void *)id, id_len}};
    CK_OBJECT_HANDLE *found;
    size_t n;
    uint8_t *v;
    size_t vlen;

    memset(info, 0, sizeof *info);
    info->local = info->always_sensitive = info->never_extractable = -1;
    info->extractable = info->sensitive = info->always_authenticate = -1;
    tok_read_usage(t, h, CK_INVALID_HANDLE, CK_INVALID_HANDLE, &info->usage);
    memcpy(info->id, id, id_len < sizeof info->id ? id_len : sizeof info->id);
    info->id_len = id_len < sizeof info->id ? id_len : sizeof info->id;
    if (has_priv) {
        CK_KEY_TYPE type = 0;
        CK_ATTRIBUTE ta = {CKA_KEY_TYPE, &type, sizeof type};
        info->has_private = 1;
        if (t->mod->C_GetAttributeValue(h, priv, &ta, 1) == CKR_OK)
            snprintf(info->key_type, sizeof info->key_type, "%s", key_type_name(type));
        if (tok_get_attr(t, h, priv, CKA_LABEL, &v, &vlen, err) == 0) {
            snprintf(info->label, sizeof info->label, "%.*s", (int)vlen, (char *)v);
            free(v);
        }
        if (type == CKK_RSA && tok_get_attr(t, h, priv, CKA_MODULUS, &v, &vlen, err) == 0) {
            info->bits = modulus_bits(v, vlen);
            free(v);
        }
        info->local = tok_get_bool(t, h, priv, CKA_LOCAL);
        info->always_sensitive = tok_get_bool(t, h, priv, CKA_ALWAYS_SENSITIVE);
        info->never_extractable = tok_get_bool(t, h, priv, CKA_NEVER_EXTRACTABLE);
        info->extractable = tok_get_bool(t, h, priv, CKA_EXTRACTABLE);
        info->sensitive = tok_get_bool(t, h, priv, CKA_SENSITIVE);
        info->always_authenticate = tok_get_bool(t, h, priv, CKA_ALWAYS_AUTHENTICATE);
    }
    cls = CKO_PUBLIC_KEY;
    if (tok_find_objects(t, h, tmpl, 2, &found, &n, err) != 0)
        return -1;
    info->has_public = n > 0;
    if (n > 0)
        read_label(t, h, found[0], info->public_label, sizeof info->public_label);
    tok_read_usage(t, h, has_priv ? priv : CK_INVALID_HANDLE, n > 0 ? found[0] : CK_INVALID_HANDLE,
                   &info->usage);
    free(found);
    cls = CKO_CERTIFICATE;
    if (tok_find_objects(t, h, tmpl, 2, &found, &n, err) != 0)
        return -1;
    if (n > 0 && tok_get_attr(t, h, found[0], CKA_VALUE, &v, &vlen, err) == 0) {
        read_label(t, h, found[0], info->cert_label, sizeof info->cert_label);
        if (!info->label[0])
            snprintf(info->label, sizeof info->label, "%s", info->cert_label);
        cert_details(v, vlen, info);
        free(v);
    }
    free(found);
    tok_key_describe_origin(info);
    return 0;
}

/* The objects' URIs need the token's info: asked outside the session (URIs stay "" if the
 * token does not answer now; the listing itself succeeded). */
static void with_uris(struct tok *t, struct tok_key_info *keys, size_t n)
{
    CK_TOKEN_INFO ti;
    struct itl_error ignored;

    if (n > 0 && tok_token_info(t, &ti, &ignored) == 0)
        tok_key_fill_uris(&ti, keys, n);
}

struct attrs_ctx {
    const char *label;
    struct tok_key_info *info;
};

static int attributes_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx,
                                 struct itl_error *err)
{
    struct attrs_ctx *c = vctx;
    CK_OBJECT_HANDLE priv;
    uint8_t *id;
    size_t id_len;
    int rc;

    if (tok_find_one(t, h, CKO_PRIVATE_KEY, c->label, NULL, 0, &priv, err) != 0)
        return -1;
    if (tok_get_attr(t, h, priv, CKA_ID, &id, &id_len, err) < 0)
        return -1;
    rc = describe_key(t, h, priv, 1, id ? id : (const uint8_t *)"", id_len, c->info, err);
    free(id);
    return rc;
}

int tok_key_attributes(struct tok *t, const char *label, struct tok_key_info *info,
                       struct itl_error *err)
{
    struct attrs_ctx c = {label, info};

    if (tok_run(t, 0, attributes_in_session, &c, err) != 0)
        return -1;
    with_uris(t, info, 1);
    return 0;
}

struct list_ctx {
    struct tok_key_info *keys;
    size_t n;
};

static int list_has_id(const struct list_ctx *c, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->keys[i].id_len == len && memcmp(c->keys[i].id, id, len) == 0)
            return 1;
    return 0;
}

/* Lists the private keys (and certificates without one) of class `cls`. */
static int list_class(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, struct list_ctx *c,
                      struct itl_error *err)
{
    CK_ATTRIBUTE tmpl = {CKA_CLASS, &cls, sizeof cls};
    CK_OBJECT_HANDLE *found;
    size_t n;
    int rc = 0;

    if (tok_find_objects(t, h, &tmpl, 1, &found, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t *id = NULL;
        size_t id_len = 0;
        struct tok_key_info *grown;
        if (tok_get_attr(t, h, found[i], CKA_ID, &id, &id_len, err) < 0) {
            rc = -1;
            break;
        }
        if (!id)
            id = (uint8_t *)calloc(1, 1);
        if (cls == CKO_CERTIFICATE && list_has_id(c, id, id_len)) {
            free(id);
            continue;
        }
        grown = realloc(c->keys, (c->n + 1) * sizeof *c->keys);
        if (!grown || !id) {
            free(id);
            rc = err_set(err, ITL_E_DEVICE, "out of memory");
            break;
        }
        c->keys = grown;
        rc = describe_key(t, h, found[i], cls == CKO_PRIVATE_KEY, id, id_len, &c->keys[c->n], err);
        if (rc == 0)
            c->n++;
        free(id);
    }
    free(found);
    return rc;
}

static int list_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct list_ctx *c = vctx;

    free(c->keys);
    c->keys = NULL;
    c->n = 0;
    if (list_class(t, h, CKO_PRIVATE_KEY, c, err) != 0 ||
        list_class(t, h, CKO_CERTIFICATE, c, err) != 0)
        return -1;
    /* An object= / id= in the token URI narrows the list. */
    for (size_t i = 0; i < c->n;) {
        CK_ATTRIBUTE a[2] = {{CKA_LABEL, c->keys[i].label, strlen(c->keys[i].label)},
                             {CKA_ID, c->keys[i].id, c->keys[i].id_len}};
        if (p11_kit_uri_match_attributes(t->uri, a, 2)) {
            i++;
            continue;
        }
        memmove(&c->keys[i], &c->keys[i + 1], (c->n - i - 1) * sizeof *c->keys);
        c->n--;
    }
    /* An empty list from a token the module lost is not "no keys" */
    return c->n == 0 ? tok_check_present(t, err) : 0;
}

static int by_label(const void *a, const void *b)
{
    return strcmp(((const struct tok_key_info *)a)->label, ((const struct tok_key_info *)b)->label);
}

int tok_list_keys(struct tok *t, struct tok_key_info **out, size_t *n, struct itl_error *err)
{
    struct list_ctx c = {0};

    *out = NULL;
    *n = 0;
    if (tok_run(t, 0, list_in_session, &c, err) != 0) {
        free(c.keys);
        return -1;
    }
    if (c.n > 1)
        qsort(c.keys, c.n, sizeof *c.keys, by_label);
    with_uris(t, c.keys, c.n);
    *out = c.keys;
    *n = c.n;
    return 0;
}

/* ---- Export ---- */

struct export_ctx {
    const char *label;
    uint8_t *der;
    size_t len;
};

static int export_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct export_ctx *c = vctx;
    CK_OBJECT_HANDLE cert, priv;
    uint8_t *id = NULL;
    size_t id_len = 0;
    int rc;

    rc = tok_find_one(t, h, CKO_CERTIFICATE, c->label, NULL, 0, &cert, err);
    if (rc != 0 && err->cls == ITL_E_NO_KEY) {
        /* The certificate may carry another label: pair through the private key's CKA_ID. */
        struct itl_error first = *err;
        if (tok_find_one(t, h, CKO_PRIVATE_KEY, c->label, NULL, 0, &priv, NULL) != 0 ||
            tok_get_attr(t, h, priv, CKA_ID, &id, &id_len, NULL) != 0 ||
            tok_find_one(t, h, CKO_CERTIFICATE, NULL, id, id_len, &cert, NULL) != 0) {
            free(id);
            *err = first;
            return -1;
        }
        free(id);
        rc = 0;
    }
    if (rc != 0)
        return -1;
    rc = tok_get_attr(t, h, cert, CKA_VALUE, &c->der, &c->len, err);
    if (rc > 0)
        return err_set(err, ITL_E_NO_KEY, "the certificate '%s' has no value", c->label);
    return rc;
}

int tok_export_cert(struct tok *t, const char *label, uint8_t **der, size_t *der_len,
                    struct itl_error *err)
{
    struct export_ctx c = {label, NULL, 0};

    *der = NULL;
    *der_len = 0;
    if (tok_run(t, 0, export_in_session, &c, err) != 0) {
        free(c.der);
        return -1;
    }
    *der = c.der;
    *der_len = c.len;
    return 0;
}
