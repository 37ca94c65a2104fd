/* SPDX-License-Identifier: MIT */
/*
 * Key management: import a PKCS#12 (the CUCM migration path), generate a key pair on the token
 * with a self-signed certificate made by the token key, list keys, export certificates.
 * Templates are explicit: SoftHSM2 (and others) default CKA_TOKEN / SENSITIVE / EXTRACTABLE to
 * values nobody wants for a signing key.
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

static CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

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
    BIO *bio;
    BIGNUM *bn;
    struct tm tm;

    info->has_cert = 1;
    if (EVP_Digest(der, len, info->cert_sha256, NULL, EVP_sha256(), NULL) == 1)
        info->has_cert_sha256 = 1;
    if (!x) {
        snprintf(info->subject, sizeof info->subject, "(certificate is not valid DER)");
        return;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, info->subject, (int)sizeof info->subject - 1);
        info->subject[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
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
    info->extractable = info->sensitive = -1;
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
    }
    cls = CKO_PUBLIC_KEY;
    if (tok_find_objects(t, h, tmpl, 2, &found, &n, err) != 0)
        return -1;
    info->has_public = n > 0;
    free(found);
    cls = CKO_CERTIFICATE;
    if (tok_find_objects(t, h, tmpl, 2, &found, &n, err) != 0)
        return -1;
    if (n > 0 && tok_get_attr(t, h, found[0], CKA_VALUE, &v, &vlen, err) == 0) {
        if (!info->label[0]) {
            uint8_t *l;
            size_t llen;
            if (tok_get_attr(t, h, found[0], CKA_LABEL, &l, &llen, err) == 0) {
                snprintf(info->label, sizeof info->label, "%.*s", (int)llen, (char *)l);
                free(l);
            }
        }
        cert_details(v, vlen, info);
        free(v);
    }
    free(found);
    return 0;
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
    return tok_run(t, 0, attributes_in_session, &c, err);
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

/* ---- Shared by import and generate ---- */

static int check_label_id(const char *label, const uint8_t *id, size_t id_len,
                          struct itl_error *err)
{
    if (!label || !label[0] || strlen(label) >= sizeof((struct tok_key_info *)0)->label)
        return err_set(err, ITL_E_USAGE, "a key label of 1 to 127 bytes is needed");
    if (id && (id_len == 0 || id_len > sizeof((struct tok_key_info *)0)->id))
        return err_set(err, ITL_E_USAGE, "a key id of 1 to 64 bytes is needed");
    return 0;
}

/* Refuses a label or id that is taken: overwriting a key is never what the admin meant. A token
 * the module lost shows no objects at all, so its presence is checked first. */
static int refuse_existing(struct tok *t, CK_SESSION_HANDLE h, const char *label, const uint8_t *id,
                           size_t id_len, struct itl_error *err)
{
    CK_ATTRIBUTE by_label = {CKA_LABEL, (void *)label, strlen(label)};
    CK_ATTRIBUTE by_id = {CKA_ID, (void *)id, id_len};
    CK_OBJECT_HANDLE *found;
    size_t n;
    char hex[2 * 64 + 1];

    if (tok_check_present(t, err) != 0)
        return -1;
    if (tok_find_objects(t, h, &by_label, 1, &found, &n, err) != 0)
        return -1;
    free(found);
    if (n > 0)
        return err_set(err, ITL_E_USAGE,
                       "token '%s' already has %zu object(s) labelled '%s': refusing to "
                       "overwrite; choose another --label (or delete the old key first)",
                       t->label_str, n, label);
    if (tok_find_objects(t, h, &by_id, 1, &found, &n, err) != 0)
        return -1;
    free(found);
    for (size_t i = 0; i < id_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    if (n > 0)
        return err_set(err, ITL_E_USAGE,
                       "token '%s' already has %zu object(s) with id %s: refusing to "
                       "overwrite; choose another --id",
                       t->label_str, n, hex);
    return 0;
}

static void destroy_objects(struct tok *t, CK_SESSION_HANDLE h, const CK_OBJECT_HANDLE *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (o[i] != CK_INVALID_HANDLE)
            (void)t->mod->C_DestroyObject(h, o[i]);
}

/* A DER encoding into a fresh buffer (i2d_* style functions). */
#define I2D(fn, obj, out, len) ((len) = fn((obj), &(out)), (len) > 0 ? 0 : -1)

struct cert_attrs {
    uint8_t *value, *subject, *issuer, *serial;
    int value_len, subject_len, issuer_len, serial_len;
};

static int cert_attrs_get(X509 *x, struct cert_attrs *ca)
{
    memset(ca, 0, sizeof *ca);
    if (I2D(i2d_X509, x, ca->value, ca->value_len) ||
        I2D(i2d_X509_NAME, X509_get_subject_name(x), ca->subject, ca->subject_len) ||
        I2D(i2d_X509_NAME, X509_get_issuer_name(x), ca->issuer, ca->issuer_len) ||
        I2D(i2d_ASN1_INTEGER, X509_get0_serialNumber(x), ca->serial, ca->serial_len))
        return -1;
    return 0;
}

static void cert_attrs_free(struct cert_attrs *ca)
{
    OPENSSL_free(ca->value);
    OPENSSL_free(ca->subject);
    OPENSSL_free(ca->issuer);
    OPENSSL_free(ca->serial);
}

static CK_RV create_cert_object(struct tok *t, CK_SESSION_HANDLE h, const struct cert_attrs *ca,
                                const char *label, const uint8_t *id, size_t id_len,
                                CK_OBJECT_HANDLE *o)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_CERTIFICATE_TYPE, &type, sizeof type},
        {CKA_TOKEN, &ck_true, sizeof ck_true},
        {CKA_PRIVATE, &ck_false, sizeof ck_false},
        {CKA_ID, (void *)id, id_len},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_SUBJECT, ca->subject, (CK_ULONG)ca->subject_len},
        {CKA_ISSUER, ca->issuer, (CK_ULONG)ca->issuer_len},
        {CKA_SERIAL_NUMBER, ca->serial, (CK_ULONG)ca->serial_len},
        {CKA_VALUE, ca->value, (CK_ULONG)ca->value_len},
    };
    return t->mod->C_CreateObject(h, tmpl, sizeof tmpl / sizeof tmpl[0], o);
}

/* The private key must have come out sensitive and not extractable, whatever we asked for. */
static int check_protected(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv,
                           struct itl_error *err)
{
    if (tok_get_bool(t, h, priv, CKA_SENSITIVE) != 1 ||
        tok_get_bool(t, h, priv, CKA_EXTRACTABLE) != 0)
        return err_set(err, ITL_E_DEVICE,
                       "token '%s' did not keep the new private key sensitive and "
                       "non-extractable as asked; the key was removed again",
                       t->label_str);
    return 0;
}

/* ---- Import ---- */

struct rsa_parts {
    BIGNUM *bn[8];
    uint8_t *bytes[8];
    int len[8];
};

static const char *const rsa_param_names[8] = {
    OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
    OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
    OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
};
static const CK_ATTRIBUTE_TYPE rsa_param_attrs[8] = {
    CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
    CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT,
};

static void rsa_parts_free(struct rsa_parts *rp)
{
    for (int i = 0; i < 8; i++) {
        if (rp->bytes[i])
            OPENSSL_clear_free(rp->bytes[i], (size_t)rp->len[i]);
        BN_clear_free(rp->bn[i]);
    }
}

/* n, e, d are required; the CRT parts are passed when the key has them. */
static int rsa_parts_get(EVP_PKEY *pkey, struct rsa_parts *rp)
{
    memset(rp, 0, sizeof *rp);
    for (int i = 0; i < 8; i++) {
        if (EVP_PKEY_get_bn_param(pkey, rsa_param_names[i], &rp->bn[i]) != 1) {
            if (i < 3)
                return -1;
            continue;
        }
        rp->len[i] = BN_num_bytes(rp->bn[i]);
        rp->bytes[i] = OPENSSL_malloc(rp->len[i] ? (size_t)rp->len[i] : 1);
        if (!rp->bytes[i] || BN_bn2bin(rp->bn[i], rp->bytes[i]) != rp->len[i])
            return -1;
    }
    return 0;
}

struct import_ctx {
    EVP_PKEY *pkey;
    X509 *cert;
    const char *label;
    const uint8_t *id;
    size_t id_len;
    struct tok_import_report *report;
};

static int import_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct import_ctx *c = vctx;
    CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_OBJECT_HANDLE objs[3] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    CK_ATTRIBUTE priv[8 + 12], pub[10];
    CK_ULONG np = 0, nq = 0;
    struct rsa_parts rp;
    struct cert_attrs ca;
    int rc = -1;
    CK_RV rv;

    if (refuse_existing(t, h, c->label, c->id, c->id_len, err) != 0)
        return -1;
    if (rsa_parts_get(c->pkey, &rp) != 0 || cert_attrs_get(c->cert, &ca) != 0) {
        err_set(err, ITL_E_USAGE, "cannot read the RSA key or certificate from the .p12");
        goto out;
    }
    priv[np++] = (CK_ATTRIBUTE){CKA_CLASS, &priv_cls, sizeof priv_cls};
    priv[np++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &rsa, sizeof rsa};
    priv[np++] = (CK_ATTRIBUTE){CKA_TOKEN, &ck_true, sizeof ck_true};
    priv[np++] = (CK_ATTRIBUTE){CKA_PRIVATE, &ck_true, sizeof ck_true};
    priv[np++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &ck_true, sizeof ck_true};
    priv[np++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &ck_false, sizeof ck_false};
    priv[np++] = (CK_ATTRIBUTE){CKA_SIGN, &ck_true, sizeof ck_true};
    priv[np++] = (CK_ATTRIBUTE){CKA_DECRYPT, &ck_false, sizeof ck_false};
    priv[np++] = (CK_ATTRIBUTE){CKA_ID, (void *)c->id, c->id_len};
    priv[np++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)c->label, strlen(c->label)};
    priv[np++] = (CK_ATTRIBUTE){CKA_SUBJECT, ca.subject, (CK_ULONG)ca.subject_len};
    for (int i = 0; i < 8; i++)
        if (rp.bytes[i])
            priv[np++] = (CK_ATTRIBUTE){rsa_param_attrs[i], rp.bytes[i], (CK_ULONG)rp.len[i]};

    pub[nq++] = (CK_ATTRIBUTE){CKA_CLASS, &pub_cls, sizeof pub_cls};
    pub[nq++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &rsa, sizeof rsa};
    pub[nq++] = (CK_ATTRIBUTE){CKA_TOKEN, &ck_true, sizeof ck_true};
    pub[nq++] = (CK_ATTRIBUTE){CKA_PRIVATE, &ck_false, sizeof ck_false};
    pub[nq++] = (CK_ATTRIBUTE){CKA_VERIFY, &ck_true, sizeof ck_true};
    pub[nq++] = (CK_ATTRIBUTE){CKA_ID, (void *)c->id, c->id_len};
    pub[nq++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)c->label, strlen(c->label)};
    pub[nq++] = (CK_ATTRIBUTE){CKA_SUBJECT, ca.subject, (CK_ULONG)ca.subject_len};
    pub[nq++] = (CK_ATTRIBUTE){CKA_MODULUS, rp.bytes[0], (CK_ULONG)rp.len[0]};
    pub[nq++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, rp.bytes[1], (CK_ULONG)rp.len[1]};

    rv = t->mod->C_CreateObject(h, priv, np, &objs[0]);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the private key (C_CreateObject)");
        goto out;
    }
    rv = t->mod->C_CreateObject(h, pub, nq, &objs[1]);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the public key (C_CreateObject)");
        goto out;
    }
    rv = create_cert_object(t, h, &ca, c->label, c->id, c->id_len, &objs[2]);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the certificate (C_CreateObject)");
        goto out;
    }
    if (check_protected(t, h, objs[0], err) != 0)
        goto out;
    c->report->always_sensitive = tok_get_bool(t, h, objs[0], CKA_ALWAYS_SENSITIVE);
    c->report->never_extractable = tok_get_bool(t, h, objs[0], CKA_NEVER_EXTRACTABLE);
    c->report->local = tok_get_bool(t, h, objs[0], CKA_LOCAL);
    rc = 0;
out:
    if (rc != 0)
        destroy_objects(t, h, objs, 3);
    rsa_parts_free(&rp);
    cert_attrs_free(&ca);
    return rc;
}

static void openssl_reason(char *out, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    snprintf(out, size, "%s", e ? ERR_reason_error_string(e) : "unknown reason");
    if (!e || !ERR_reason_error_string(e))
        snprintf(out, size, "unknown reason");
    ERR_clear_error();
}

/* CUCM and Java keystores may still use RC2 / 40-bit PBEs, which OpenSSL 3 keeps in the legacy
 * provider: loaded into a library context of our own, only when the first attempt failed, and
 * kept until the key from it is freed. */
struct legacy_ctx {
    OSSL_LIB_CTX *lib;
    OSSL_PROVIDER *legacy, *deflt;
};

static int parse_legacy(PKCS12 *p12, const char *pass, EVP_PKEY **pkey, X509 **cert,
                        STACK_OF(X509) * *ca, struct legacy_ctx *l)
{
    OSSL_LIB_CTX *prev;
    int ok;

    l->lib = OSSL_LIB_CTX_new();
    if (!l->lib || !(l->legacy = OSSL_PROVIDER_load(l->lib, "legacy")) ||
        !(l->deflt = OSSL_PROVIDER_load(l->lib, "default")))
        return 0;
    prev = OSSL_LIB_CTX_set0_default(l->lib); /* this thread only */
    ok = PKCS12_parse(p12, pass, pkey, cert, ca);
    OSSL_LIB_CTX_set0_default(prev);
    return ok;
}

static void legacy_free(struct legacy_ctx *l)
{
    if (l->legacy)
        OSSL_PROVIDER_unload(l->legacy);
    if (l->deflt)
        OSSL_PROVIDER_unload(l->deflt);
    OSSL_LIB_CTX_free(l->lib);
}

static int parse_p12(const uint8_t *der, size_t len, const struct tok_pin *password,
                     EVP_PKEY **pkey, X509 **cert, struct legacy_ctx *legacy, struct itl_error *err)
{
    const unsigned char *p = der;
    const char *pass = password && password->bytes ? (const char *)password->bytes : "";
    STACK_OF(X509) *ca = NULL;
    PKCS12 *p12;
    char why[160];
    int ok;

    if (password && password->bytes && memchr(password->bytes, 0, password->len))
        return err_set(err, ITL_E_USAGE, "the .p12 password contains a NUL byte");
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (!p12) {
        ERR_clear_error();
        return err_set(err, ITL_E_USAGE, "the file is not a PKCS#12 (.p12) file");
    }
    if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pass, -1) &&
        !(pass[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0))) {
        PKCS12_free(p12);
        ERR_clear_error();
        return err_set(err, ITL_E_USAGE,
                       "wrong password for the .p12 (its integrity check failed)");
    }
    ok = PKCS12_parse(p12, pass, pkey, cert, &ca);
    if (!ok) {
        ERR_clear_error();
        ok = parse_legacy(p12, pass, pkey, cert, &ca, legacy);
    }
    PKCS12_free(p12);
    sk_X509_pop_free(ca, X509_free);
    if (!ok) {
        openssl_reason(why, sizeof why);
        return err_set(err, ITL_E_USAGE, "cannot decrypt the .p12: %s", why);
    }
    if (!*pkey || !*cert) {
        EVP_PKEY_free(*pkey);
        X509_free(*cert);
        *pkey = NULL;
        *cert = NULL;
        return err_set(err, ITL_E_USAGE, "the .p12 must hold one private key and its certificate");
    }
    return 0;
}

int tok_import_p12(struct tok *t, const uint8_t *p12, size_t p12_len,
                   const struct tok_pin *password, const char *label, const uint8_t *id,
                   size_t id_len, struct tok_import_report *report, struct itl_error *err)
{
    struct import_ctx c = {.label = label, .report = report};
    struct legacy_ctx legacy = {0};
    uint8_t derived[20];
    unsigned derived_len = 0;
    int rc = -1;

    if (err)
        memset(err, 0, sizeof *err);
    memset(report, 0, sizeof *report);
    if (check_label_id(label, id, id_len, err) != 0)
        return -1;
    if (parse_p12(p12, p12_len, password, &c.pkey, &c.cert, &legacy, err) != 0) {
        legacy_free(&legacy);
        return -1;
    }
    if (EVP_PKEY_get_base_id(c.pkey) != EVP_PKEY_RSA) {
        err_set(err, ITL_E_USAGE, "the .p12 holds a %s key; itl-sign imports RSA keys",
                OBJ_nid2sn(EVP_PKEY_get_base_id(c.pkey)));
        goto out;
    }
    if (X509_check_private_key(c.cert, c.pkey) != 1) {
        ERR_clear_error();
        err_set(err, ITL_E_USAGE, "the .p12's certificate does not belong to its private key");
        goto out;
    }
    if (!id) {
        /* RFC 5280 key identifier: SHA-1 of the subjectPublicKey bits. */
        if (X509_pubkey_digest(c.cert, EVP_sha1(), derived, &derived_len) != 1)
            goto out;
        id = derived;
        id_len = derived_len;
    }
    c.id = id;
    c.id_len = id_len;
    rc = tok_run(t, 1, import_in_session, &c, err);
    if (rc == 0) {
        uint8_t *der = NULL;
        int der_len = i2d_X509(c.cert, &der);
        memcpy(report->id, id, id_len);
        report->id_len = id_len;
        report->bits = (unsigned)EVP_PKEY_get_bits(c.pkey);
        if (der_len > 0)
            EVP_Digest(der, (size_t)der_len, report->cert_sha256, NULL, EVP_sha256(), NULL);
        OPENSSL_free(der);
    }
out:
    EVP_PKEY_free(c.pkey);
    X509_free(c.cert);
    legacy_free(&legacy);
    return rc;
}

/* The .p12 holds the private key of `cert_der` when its public key is the certificate's and a
 * signature of a fresh challenge by its private key verifies with the certificate. */
int tok_p12_holds_key(const uint8_t *p12, size_t p12_len, const struct tok_pin *password,
                      const uint8_t *cert_der, size_t cert_len, struct itl_error *err)
{
    struct legacy_ctx legacy = {0};
    EVP_PKEY *pkey = NULL, *pub = NULL;
    X509 *cert = NULL, *want = NULL;
    EVP_MD_CTX *ctx = NULL;
    const unsigned char *p = cert_der;
    uint8_t challenge[32], sig[1024];
    size_t sig_len = sizeof sig;
    int rc = -1;

    if (err)
        memset(err, 0, sizeof *err);
    if (parse_p12(p12, p12_len, password, &pkey, &cert, &legacy, err) != 0)
        goto out;
    want = d2i_X509(NULL, &p, (long)cert_len);
    pub = want ? X509_get_pubkey(want) : NULL;
    if (!pub) {
        err_set(err, ITL_E_USAGE, "the certificate to compare with is not valid X.509");
        goto out;
    }
    if (EVP_PKEY_eq(pkey, pub) != 1) {
        err_set(err, ITL_E_VERIFY, "the .p12 holds a different key");
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (RAND_bytes(challenge, sizeof challenge) != 1 || !ctx ||
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, challenge, sizeof challenge) != 1 ||
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) != 1 ||
        EVP_DigestVerify(ctx, sig, sig_len, challenge, sizeof challenge) != 1) {
        err_set(err, ITL_E_VERIFY,
                "a test signature by the .p12's key does not verify with the certificate");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    EVP_PKEY_free(pub);
    X509_free(cert);
    X509_free(want);
    legacy_free(&legacy);
    return rc;
}

/* ---- Generate ---- */

/* "CN=ITLRECOVERY_pub,OU=VTG,O=Cisco,C=US" read as RFC 4514: the first component is the most
 * specific one and ends up last in the DER (C first), as Java and CUCM encode their names.
 * A ',' inside a value is written "\,". */
static int parse_subject(const char *text, X509_NAME **out, struct itl_error *err)
{
    char *copy = strdup(text ? text : ""), *parts[32];
    size_t n = 0;
    X509_NAME *name = X509_NAME_new();
    char *s, *start;

    *out = NULL;
    if (!copy || !name) {
        free(copy);
        X509_NAME_free(name);
        return err_set(err, ITL_E_USAGE, "out of memory");
    }
    for (s = start = copy;; s++) {
        if (*s == '\\' && s[1]) {
            memmove(s, s + 1, strlen(s)); /* keep the escaped character */
            continue;
        }
        if (*s != ',' && *s != '\0')
            continue;
        if (n == sizeof parts / sizeof parts[0])
            break;
        parts[n++] = start;
        if (*s == '\0')
            break;
        *s = '\0';
        start = s + 1;
    }
    for (size_t i = n; i-- > 0;) {
        char *eq, *key = parts[i], *value;
        while (*key == ' ')
            key++;
        eq = strchr(key, '=');
        if (!eq || eq == key || !eq[1]) {
            err_set(err, ITL_E_USAGE,
                    "subject component %zu ('%s') is not KEY=VALUE (e.g. "
                    "\"CN=ITLRECOVERY_pub,OU=VTG,O=Cisco,C=US\")",
                    i + 1, key);
            goto fail;
        }
        *eq = '\0';
        value = eq + 1;
        if (OBJ_txt2nid(key) == NID_undef ||
            !X509_NAME_add_entry_by_txt(name, key, MBSTRING_UTF8, (unsigned char *)value, -1, -1,
                                        0)) {
            ERR_clear_error();
            err_set(err, ITL_E_USAGE,
                    "subject component %zu: '%s' is not a name attribute OpenSSL knows "
                    "(CN, OU, O, L, ST, C, emailAddress, ...) or its value is invalid",
                    i + 1, key);
            goto fail;
        }
    }
    if (X509_NAME_entry_count(name) == 0) {
        err_set(err, ITL_E_USAGE, "the subject is empty (e.g. \"CN=ITLRECOVERY_pub,O=Cisco\")");
        goto fail;
    }
    free(copy);
    *out = name;
    return 0;
fail:
    free(copy);
    X509_NAME_free(name);
    return -1;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static EVP_PKEY *rsa_public_from_token(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub,
                                       struct itl_error *err)
{
    uint8_t *n = NULL, *e = NULL;
    size_t n_len, e_len;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (tok_get_attr(t, h, pub, CKA_MODULUS, &n, &n_len, err) != 0 ||
        tok_get_attr(t, h, pub, CKA_PUBLIC_EXPONENT, &e, &e_len, err) != 0) {
        err_set(err, ITL_E_DEVICE, "cannot read the new public key from token '%s'", t->label_str);
        goto out;
    }
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ERR_clear_error();
        err_set(err, ITL_E_DEVICE, "the new public key from token '%s' is not a valid RSA key",
                t->label_str);
    }
out:
    free(n);
    free(e);
    BN_free(bn_n);
    BN_free(bn_e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* Everything of the certificate except its signature; the TBS part names sha256WithRSA. */
static X509 *unsigned_cert(X509_NAME *name, EVP_PKEY *pub, const struct tok_generate_opts *o)
{
    X509 *x = X509_new();
    X509V3_CTX v3;
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    time_t now = o->now ? o->now : time(NULL);
    /* OpenSSL 3.0 offers no setter for the TBS signature algorithm of an X509 that OpenSSL
     * does not sign itself; the object is ours and not shared, so we fill it in place. */
    X509_ALGOR *tbs_alg;
    int ok;

    if (!x)
        return NULL;
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40); /* positive, exactly 16 bytes */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    ok = bn && X509_set_version(x, X509_VERSION_3) &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) && X509_set_issuer_name(x, name) &&
         X509_set_subject_name(x, name) && X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &now) &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int)(o->days ? o->days : 1825), 0, &now) &&
         X509_set_pubkey(x, pub);
    BN_free(bn);
    if (!ok)
        goto fail;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    /* CUCM's self-signed ITLRecovery certificate is a CA-style certificate. */
    if (add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE") ||
        add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
        add_ext(x, &v3, NID_subject_key_identifier, "hash"))
        goto fail;
    tbs_alg = (X509_ALGOR *)X509_get0_tbs_sigalg(x);
    if (!X509_ALGOR_set0(tbs_alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL))
        goto fail;
    return x;
fail:
    ERR_clear_error();
    X509_free(x);
    return NULL;
}

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } */
static X509 *assemble_cert(const uint8_t *tbs, int tbs_len, const uint8_t *sig, size_t sig_len)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    uint8_t *alg_der = NULL, *bits_der = NULL, *der = NULL, *p;
    const unsigned char *cp;
    int alg_len = 0, bits_len = 0, body, total;
    X509 *x = NULL;

    if (!alg || !bits ||
        !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL) ||
        !ASN1_BIT_STRING_set(bits, (unsigned char *)sig, (int)sig_len))
        goto out;
    /* All bits used: without this, i2d drops trailing zero bits of the signature. */
    bits->flags &= ~0x07L;
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    if (I2D(i2d_X509_ALGOR, alg, alg_der, alg_len) ||
        I2D(i2d_ASN1_BIT_STRING, bits, bits_der, bits_len))
        goto out;
    body = tbs_len + alg_len + bits_len;
    total = ASN1_object_size(1, body, V_ASN1_SEQUENCE);
    if (total <= 0 || !(der = OPENSSL_malloc((size_t)total)))
        goto out;
    p = der;
    ASN1_put_object(&p, 1, body, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, tbs, (size_t)tbs_len);
    memcpy(p + tbs_len, alg_der, (size_t)alg_len);
    memcpy(p + tbs_len + alg_len, bits_der, (size_t)bits_len);
    cp = der;
    x = d2i_X509(NULL, &cp, total);
out:
    ERR_clear_error();
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(bits);
    OPENSSL_free(alg_der);
    OPENSSL_free(bits_der);
    OPENSSL_free(der);
    return x;
}

struct generate_ctx {
    const struct tok_generate_opts *o;
    X509_NAME *name;
    const uint8_t *id;
    size_t id_len;
    uint8_t *der;
    size_t der_len;
};

/* The self-signed certificate, signed on the token with CKM_RSA_PKCS over our DigestInfo. */
static X509 *self_signed_cert(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv,
                              EVP_PKEY *pub, struct generate_ctx *c, struct itl_error *err)
{
    X509 *x = unsigned_cert(c->name, pub, c->o), *signed_x = NULL;
    uint8_t *tbs = NULL, md[32], di[19 + 32], sig[1024];
    size_t prefix_len, md_len, sig_len = sizeof sig;
    const uint8_t *prefix = tok_digestinfo_prefix(NID_sha256, &prefix_len, &md_len);
    int tbs_len;
    CK_RV rv;

    if (!x) {
        err_set(err, ITL_E_DEVICE, "cannot build the certificate (OpenSSL)");
        return NULL;
    }
    tbs_len = i2d_re_X509_tbs(x, &tbs);
    if (tbs_len <= 0 || EVP_Digest(tbs, (size_t)tbs_len, md, NULL, EVP_sha256(), NULL) != 1) {
        err_set(err, ITL_E_DEVICE, "cannot encode the certificate (OpenSSL)");
        goto out;
    }
    memcpy(di, prefix, prefix_len);
    memcpy(di + prefix_len, md, md_len);
    rv = tok_sign_in_session(t, h, priv, CKM_RSA_PKCS, 0, di, prefix_len + md_len, sig, &sig_len);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "signing the certificate with the new key (C_Sign)");
        goto out;
    }
    signed_x = assemble_cert(tbs, tbs_len, sig, sig_len);
    if (!signed_x || X509_verify(signed_x, pub) != 1) {
        ERR_clear_error();
        X509_free(signed_x);
        signed_x = NULL;
        err_set(err, ITL_E_VERIFY,
                "the certificate signed by the new key on token '%s' does not verify with the "
                "key's public half; the key was removed again",
                t->label_str);
    }
out:
    OPENSSL_free(tbs);
    X509_free(x);
    return signed_x;
}

static int generate_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx,
                               struct itl_error *err)
{
    struct generate_ctx *c = vctx;
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = c->o->bits ? c->o->bits : 2048;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    const char *label = c->o->label;
    CK_ATTRIBUTE pub_tmpl[] = {
        {CKA_TOKEN, &ck_true, sizeof ck_true},  {CKA_PRIVATE, &ck_false, sizeof ck_false},
        {CKA_VERIFY, &ck_true, sizeof ck_true}, {CKA_ENCRYPT, &ck_false, sizeof ck_false},
        {CKA_MODULUS_BITS, &bits, sizeof bits}, {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent},
        {CKA_ID, (void *)c->id, c->id_len},     {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_ATTRIBUTE priv_tmpl[] = {
        {CKA_TOKEN, &ck_true, sizeof ck_true},     {CKA_PRIVATE, &ck_true, sizeof ck_true},
        {CKA_SENSITIVE, &ck_true, sizeof ck_true}, {CKA_EXTRACTABLE, &ck_false, sizeof ck_false},
        {CKA_SIGN, &ck_true, sizeof ck_true},      {CKA_DECRYPT, &ck_false, sizeof ck_false},
        {CKA_ID, (void *)c->id, c->id_len},        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE objs[3] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    EVP_PKEY *pub = NULL;
    X509 *x = NULL;
    struct cert_attrs ca = {0};
    int rc = -1;
    CK_RV rv;

    if (refuse_existing(t, h, label, c->id, c->id_len, err) != 0)
        return -1;
    rv = t->mod->C_GenerateKeyPair(h, &mech, pub_tmpl, sizeof pub_tmpl / sizeof pub_tmpl[0],
                                   priv_tmpl, sizeof priv_tmpl / sizeof priv_tmpl[0], &objs[1],
                                   &objs[0]);
    if (rv != CKR_OK)
        return tok_ckr_err(err, rv, "generating the RSA key pair (C_GenerateKeyPair)");
    if (check_protected(t, h, objs[0], err) != 0)
        goto out;
    pub = rsa_public_from_token(t, h, objs[1], err);
    if (!pub)
        goto out;
    x = self_signed_cert(t, h, objs[0], pub, c, err);
    if (!x)
        goto out;
    if (cert_attrs_get(x, &ca) != 0) {
        err_set(err, ITL_E_DEVICE, "cannot encode the certificate (OpenSSL)");
        goto out;
    }
    rv = create_cert_object(t, h, &ca, label, c->id, c->id_len, &objs[2]);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the certificate (C_CreateObject)");
        goto out;
    }
    c->der = malloc((size_t)ca.value_len);
    if (!c->der) {
        err_set(err, ITL_E_DEVICE, "out of memory");
        goto out;
    }
    memcpy(c->der, ca.value, (size_t)ca.value_len);
    c->der_len = (size_t)ca.value_len;
    rc = 0;
out:
    if (rc != 0)
        destroy_objects(t, h, objs, 3);
    cert_attrs_free(&ca);
    X509_free(x);
    EVP_PKEY_free(pub);
    return rc;
}

int tok_generate(struct tok *t, const struct tok_generate_opts *opts, uint8_t **cert_der,
                 size_t *cert_len, struct itl_error *err)
{
    struct generate_ctx c = {.o = opts};
    uint8_t random_id[16];
    int rc;

    if (err)
        memset(err, 0, sizeof *err);
    *cert_der = NULL;
    *cert_len = 0;
    if (check_label_id(opts->label, opts->id, opts->id_len, err) != 0)
        return -1;
    if (opts->bits && opts->bits != 2048 && opts->bits != 3072 && opts->bits != 4096)
        return err_set(err, ITL_E_USAGE, "key size %u: use 2048, 3072 or 4096 bits", opts->bits);
    if (opts->days > 36500)
        return err_set(err, ITL_E_USAGE, "validity of %u days: at most 36500", opts->days);
    if (parse_subject(opts->subject, &c.name, err) != 0)
        return -1;
    c.id = opts->id;
    c.id_len = opts->id_len;
    if (!c.id) {
        if (RAND_bytes(random_id, sizeof random_id) != 1) {
            X509_NAME_free(c.name);
            return err_set(err, ITL_E_DEVICE, "no random bytes for the key id");
        }
        c.id = random_id;
        c.id_len = sizeof random_id;
    }
    if (tok_check_mechanism_flag(t, CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, err) != 0 ||
        tok_check_mechanism(t, CKM_RSA_PKCS, err) != 0) {
        X509_NAME_free(c.name);
        return -1;
    }
    rc = tok_run(t, 1, generate_in_session, &c, err);
    X509_NAME_free(c.name);
    if (rc == 0) {
        *cert_der = c.der;
        *cert_len = c.der_len;
    }
    return rc;
}
