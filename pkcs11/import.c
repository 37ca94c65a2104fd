/* SPDX-License-Identifier: MIT */
/*
 * Importing a key and its certificate from a PKCS#12 (the CUCM migration path).
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
static CK_BBOOL ck_true = CK_TRUE;
static CK_BBOOL ck_false = CK_FALSE;

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

/* A token that will not take a private key from outside (tpm2-pkcs11 refuses C_CreateObject of
 * CKO_PRIVATE_KEY; HSMs in FIPS mode often do) is told apart from other failures: the admin needs
 * the way that works on it, not the CKR alone. */
static int import_refused(struct tok *t, CK_RV rv, struct itl_error *err)
{
    char what[700];

    if (!tok_template_refused(rv) && rv != CKR_FUNCTION_NOT_SUPPORTED &&
        rv != CKR_ACTION_PROHIBITED)
        return tok_ckr_err(err, rv, "storing the private key (C_CreateObject)");
    snprintf(what, sizeof what,
             "token '%s' (module %s) does not accept a private key from outside (C_CreateObject "
             "of the private key refused): this token only holds keys made on it or put there "
             "with its own tool. Either make a new key on the token with `itl-sign key "
             "generate` (a new certificate for CUCM), or import the .p12 with the token's tool "
             "(tpm2-pkcs11: `tpm2_ptool import`) and store the certificate with the same "
             "CKA_ID (see docs/tokens.md)",
             t->label_str, t->module_name);
    tok_ckr_err(err, rv, what);
    if (err)
        err->cls = ITL_E_USAGE;
    return -1;
}

static int import_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct import_ctx *c = vctx;
    CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_OBJECT_HANDLE objs[3] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    CK_ATTRIBUTE priv[10 + 8 + 3], pub[10 + 2];
    CK_ULONG np = 0, nq = 0;
    struct rsa_parts rp;
    struct cert_attrs ca;
    int rc = -1;
    CK_RV rv;

    if (tok_refuse_existing(t, h, c->label, c->id, c->id_len, err) != 0)
        return -1;
    if (rsa_parts_get(c->pkey, &rp) != 0 || tok_cert_attrs_get(c->cert, &ca) != 0) {
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
    priv[np++] = (CK_ATTRIBUTE){CKA_ID, (void *)c->id, c->id_len};
    priv[np++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)c->label, strlen(c->label)};
    priv[np++] = (CK_ATTRIBUTE){CKA_SUBJECT, ca.subject, (CK_ULONG)ca.subject_len};
    for (int i = 0; i < 8; i++)
        if (rp.bytes[i])
            priv[np++] = (CK_ATTRIBUTE){rsa_param_attrs[i], rp.bytes[i], (CK_ULONG)rp.len[i]};
    /* Last, so that a token refusing them gets the template without them (as keypair.c). */
    priv[np++] = (CK_ATTRIBUTE){CKA_DECRYPT, &ck_false, sizeof ck_false};
    priv[np++] = (CK_ATTRIBUTE){CKA_UNWRAP, &ck_false, sizeof ck_false};
    priv[np++] = (CK_ATTRIBUTE){CKA_DERIVE, &ck_false, sizeof ck_false};

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
    pub[nq++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &ck_false, sizeof ck_false};
    pub[nq++] = (CK_ATTRIBUTE){CKA_WRAP, &ck_false, sizeof ck_false};

    rv = t->mod->C_CreateObject(h, priv, np, &objs[0]);
    if (tok_template_refused(rv))
        rv = t->mod->C_CreateObject(h, priv, np - 3, &objs[0]);
    if (rv != CKR_OK) {
        import_refused(t, rv, err);
        goto out;
    }
    rv = t->mod->C_CreateObject(h, pub, nq, &objs[1]);
    if (tok_template_refused(rv))
        rv = t->mod->C_CreateObject(h, pub, nq - 2, &objs[1]);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the public key (C_CreateObject)");
        goto out;
    }
    rv = tok_create_cert_object(t, h, &ca, c->label, c->id, c->id_len, &objs[2]);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the certificate (C_CreateObject)");
        goto out;
    }
    if (tok_check_protected(t, h, objs[0], err) != 0)
        goto out;
    c->report->always_sensitive = tok_get_bool(t, h, objs[0], CKA_ALWAYS_SENSITIVE);
    c->report->never_extractable = tok_get_bool(t, h, objs[0], CKA_NEVER_EXTRACTABLE);
    c->report->local = tok_get_bool(t, h, objs[0], CKA_LOCAL);
    tok_read_usage(t, h, objs[0], objs[1], &c->report->usage);
    rc = 0;
out:
    if (rc != 0)
        tok_destroy_objects(t, h, objs, 3);
    rsa_parts_free(&rp);
    tok_cert_attrs_free(&ca);
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
        return err_set(err, ITL_E_INPUT, "the file is not a PKCS#12 (.p12) file");
    }
    /* A wrong password is bad input (exit 3 in itl-sign(1)): the .p12 cannot be opened with
     * it. It is not the token's PIN, so not 4. */
    if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pass, -1) &&
        !(pass[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0))) {
        PKCS12_free(p12);
        ERR_clear_error();
        return err_set(err, ITL_E_INPUT,
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
        return err_set(err, ITL_E_INPUT, "cannot decrypt the .p12: %s", why);
    }
    if (!*pkey || !*cert) {
        EVP_PKEY_free(*pkey);
        X509_free(*cert);
        *pkey = NULL;
        *cert = NULL;
        return err_set(err, ITL_E_INPUT, "the .p12 must hold one private key and its certificate");
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
    if (tok_check_label_id(label, id, id_len, err) != 0)
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
