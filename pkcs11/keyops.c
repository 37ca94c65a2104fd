/* SPDX-License-Identifier: MIT */
/*
 * Keys that a vendor tool put on the token (tpm2_ptool import, a token that refuses
 * C_CreateObject of a private key): give them a certificate, make a PKCS#10 request signed by
 * them, or delete a key with its public half and certificates.
 */
#include "pkcs11/internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

/* The private key labelled `label`, its CKA_ID and its public key (from the public key object
 * with that CKA_ID, or from the private key's own CKA_MODULUS where there is none). */
struct token_key {
    CK_OBJECT_HANDLE priv;
    uint8_t *id;
    size_t id_len;
    EVP_PKEY *pub;
};

static void token_key_free(struct token_key *k)
{
    free(k->id);
    EVP_PKEY_free(k->pub);
    memset(k, 0, sizeof *k);
}

static int find_token_key(struct tok *t, CK_SESSION_HANDLE h, const char *label, int want_pub,
                          struct token_key *k, struct itl_error *err)
{
    CK_OBJECT_HANDLE pub_obj;
    struct itl_error ignored;

    memset(k, 0, sizeof *k);
    if (tok_check_label_id(label, NULL, 0, err) != 0 ||
        tok_find_one(t, h, CKO_PRIVATE_KEY, label, NULL, 0, &k->priv, err) != 0)
        return -1;
    if (tok_get_attr(t, h, k->priv, CKA_ID, &k->id, &k->id_len, &ignored) != 0)
        k->id_len = 0;
    if (!want_pub)
        return 0;
    if (k->id_len &&
        tok_find_one(t, h, CKO_PUBLIC_KEY, NULL, k->id, k->id_len, &pub_obj, &ignored) == 0)
        k->pub = tok_rsa_public(t, h, pub_obj, err);
    if (!k->pub)
        k->pub = tok_rsa_public(t, h, k->priv, err);
    if (!k->pub) {
        err_prefix(err, "key '%s' (an RSA key is needed)", label);
        token_key_free(k);
        return -1;
    }
    return 0;
}

/* The objects of class cls with the key's CKA_ID (or its label when it has none). */
static int find_related(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                        const struct token_key *k, CK_OBJECT_HANDLE **found, size_t *n,
                        struct itl_error *err)
{
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}};

    if (k->id_len)
        tmpl[1] = (CK_ATTRIBUTE){CKA_ID, k->id, k->id_len};
    else
        tmpl[1] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    return tok_find_objects(t, h, tmpl, 2, found, n, err);
}

/* ---- attach-cert ---- */

struct attach_ctx {
    const struct tok_attach_opts *o;
    X509_NAME *name;
    uint8_t *der;
    size_t der_len;
};

static X509 *given_cert(const struct tok_attach_opts *o, EVP_PKEY *pub, struct itl_error *err)
{
    const unsigned char *p = o->cert_der;
    X509 *x = d2i_X509(NULL, &p, (long)o->cert_len);

    if (!x || p != o->cert_der + o->cert_len) {
        ERR_clear_error();
        X509_free(x);
        err_set(err, ITL_E_USAGE, "the certificate is not one DER or PEM X.509 certificate");
        return NULL;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) != 1) {
        ERR_clear_error();
        X509_free(x);
        err_set(err, ITL_E_USAGE,
                "the certificate's public key is not the one of key '%s' on the token: it "
                "belongs to another key",
                o->label);
        return NULL;
    }
    return x;
}

static int attach_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct attach_ctx *c = vctx;
    const struct tok_attach_opts *o = c->o;
    struct token_key k;
    CK_OBJECT_HANDLE *old = NULL, created = CK_INVALID_HANDLE;
    size_t n_old = 0;
    struct cert_attrs ca = {0};
    X509 *x = NULL;
    int rc = -1;
    CK_RV rv;

    if (find_token_key(t, h, o->label, 1, &k, err) != 0)
        return -1;
    if (find_related(t, h, CKO_CERTIFICATE, o->label, &k, &old, &n_old, err) != 0)
        goto out;
    if (n_old && !o->replace) {
        err_set(err, ITL_E_USAGE,
                "key '%s' on token '%s' already has a certificate: give --replace to store a "
                "new one in its place",
                o->label, t->label_str);
        goto out;
    }
    x = o->cert_der
            ? given_cert(o, k.pub, err)
            : tok_self_signed_cert(t, h, k.priv, k.pub, c->name,
                                   &(struct tok_generate_opts){.days = o->days, .now = o->now},
                                   err);
    if (!x)
        goto out;
    if (tok_cert_attrs_get(x, &ca) != 0) {
        err_set(err, ITL_E_DEVICE, "cannot encode the certificate (OpenSSL)");
        goto out;
    }
    rv = tok_create_cert_object(t, h, &ca, o->label, k.id, k.id_len, &created);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the certificate (C_CreateObject)");
        goto out;
    }
    tok_destroy_objects(t, h, old, n_old);
    if (tok_cert_attrs_copy_der(&ca, &c->der, &c->der_len, err) != 0)
        goto out;
    rc = 0;
out:
    tok_cert_attrs_free(&ca);
    X509_free(x);
    free(old);
    token_key_free(&k);
    return rc;
}

int tok_attach_cert(struct tok *t, const struct tok_attach_opts *o, uint8_t **out_der,
                    size_t *out_len, struct itl_error *err)
{
    struct attach_ctx c = {.o = o};
    int rc;

    if (err)
        memset(err, 0, sizeof *err);
    if (out_der)
        *out_der = NULL;
    if (!o->cert_der && tok_parse_subject(o->subject, &c.name, err) != 0)
        return -1;
    if (o->days > 36500) {
        X509_NAME_free(c.name);
        return err_set(err, ITL_E_USAGE, "validity of %u days: at most 36500", o->days);
    }
    rc = tok_run(t, 1, attach_in_session, &c, err);
    X509_NAME_free(c.name);
    if (rc == 0 && out_der) {
        *out_der = c.der;
        *out_len = c.der_len;
    } else {
        free(c.der);
    }
    return rc;
}

/* ---- csr ---- */

struct csr_ctx {
    const char *label;
    X509_NAME *name;
    uint8_t *der;
    size_t der_len;
};

/* CertificationRequestInfo from OpenSSL's X509_REQ, signed by the token key. */
static X509_REQ *signed_request(struct tok *t, CK_SESSION_HANDLE h, const struct token_key *k,
                                X509_NAME *name, struct itl_error *err)
{
    X509_REQ *req = X509_REQ_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    uint8_t *tbs = NULL, sig[1024];
    size_t sig_len = sizeof sig;
    int tbs_len, ok = 0;

    if (!req || !alg || !bits || !X509_REQ_set_version(req, 0) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, k->pub) ||
        (tbs_len = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
        err_set(err, ITL_E_DEVICE, "cannot build the certificate request (OpenSSL)");
        goto out;
    }
    if (tok_sign_sha256_in_session(t, h, k->priv, tbs, (size_t)tbs_len, sig, &sig_len, err) != 0)
        goto out;
    if (!X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL) ||
        !ASN1_BIT_STRING_set(bits, sig, (int)sig_len)) {
        err_set(err, ITL_E_DEVICE, "cannot build the certificate request (OpenSSL)");
        goto out;
    }
    bits->flags &= ~0x07L; /* all bits used */
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    if (!X509_REQ_set1_signature_algo(req, alg) || X509_REQ_verify(req, k->pub) != 1) {
        err_set(err, ITL_E_VERIFY,
                "the certificate request signed by the key on token '%s' does not verify with "
                "the key's public half",
                t->label_str);
        goto out;
    }
    ok = 1;
out:
    ERR_clear_error();
    OPENSSL_free(tbs);
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(bits);
    if (!ok) {
        X509_REQ_free(req);
        req = NULL;
    }
    return req;
}

static int csr_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct csr_ctx *c = vctx;
    struct token_key k;
    X509_REQ *req;
    uint8_t *der = NULL;
    int len, rc = -1;

    if (find_token_key(t, h, c->label, 1, &k, err) != 0)
        return -1;
    req = signed_request(t, h, &k, c->name, err);
    if (req) {
        len = i2d_X509_REQ(req, &der);
        if (len > 0 && (c->der = malloc((size_t)len)) != NULL) {
            memcpy(c->der, der, (size_t)len);
            c->der_len = (size_t)len;
            rc = 0;
        } else {
            err_set(err, ITL_E_DEVICE, "cannot encode the certificate request (OpenSSL)");
        }
    }
    OPENSSL_free(der);
    X509_REQ_free(req);
    token_key_free(&k);
    return rc;
}

int tok_make_csr(struct tok *t, const char *label, const char *subject, uint8_t **der, size_t *len,
                 struct itl_error *err)
{
    struct csr_ctx c = {.label = label};
    int rc;

    if (err)
        memset(err, 0, sizeof *err);
    *der = NULL;
    *len = 0;
    if (tok_parse_subject(subject, &c.name, err) != 0)
        return -1;
    rc = tok_run(t, 1, csr_in_session, &c, err);
    X509_NAME_free(c.name);
    if (rc == 0) {
        *der = c.der;
        *len = c.der_len;
    }
    return rc;
}

/* ---- delete ---- */

struct delete_ctx {
    const char *label;
    struct tok_delete_report *r;
};

static int destroy_class(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                         const struct token_key *k, unsigned *count, struct itl_error *err)
{
    CK_OBJECT_HANDLE *found = NULL;
    size_t n = 0;
    CK_RV rv = CKR_OK;

    if (find_related(t, h, cls, label, k, &found, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n && rv == CKR_OK; i++) {
        rv = t->mod->C_DestroyObject(h, found[i]);
        if (rv == CKR_OK)
            (*count)++;
    }
    free(found);
    if (rv != CKR_OK)
        return tok_ckr_err(err, rv, "deleting an object of the key (C_DestroyObject)");
    return 0;
}

static int delete_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct delete_ctx *c = vctx;
    struct token_key k;
    CK_RV rv;
    int rc = -1;

    if (find_token_key(t, h, c->label, 0, &k, err) != 0)
        return -1;
    /* The certificate and public key first: a failure half way leaves a key that can still
     * sign, never a certificate without its key. */
    if (destroy_class(t, h, CKO_CERTIFICATE, c->label, &k, &c->r->certificates, err) != 0 ||
        destroy_class(t, h, CKO_PUBLIC_KEY, c->label, &k, &c->r->public_keys, err) != 0)
        goto out;
    rv = t->mod->C_DestroyObject(h, k.priv);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "deleting the private key (C_DestroyObject)");
        goto out;
    }
    c->r->private_keys++;
    rc = 0;
out:
    token_key_free(&k);
    return rc;
}

int tok_delete_key(struct tok *t, const char *label, struct tok_delete_report *r,
                   struct itl_error *err)
{
    struct delete_ctx c = {.label = label, .r = r};

    if (err)
        memset(err, 0, sizeof *err);
    memset(r, 0, sizeof *r);
    return tok_run(t, 1, delete_in_session, &c, err);
}
