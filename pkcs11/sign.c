/* SPDX-License-Identifier: MIT */
/*
 * Keys and signatures. RSA PKCS#1 v1.5 as CKM_RSA_PKCS over a DigestInfo built here (works for
 * SHA-1, SHA-256 and SHA-512 on every token), or CKM_SHAx_RSA_PKCS when asked. Every signature
 * is checked against the certificate's public key before it leaves this file.
 */
#include "pkcs11/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* ---- DigestInfo (RFC 8017 section 9.2, note 1) ---- */

static const uint8_t di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                  0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

#define DI_MAX (sizeof di_sha512 + 64)

static const struct digest {
    int nid;
    const uint8_t *prefix;
    size_t prefix_len, md_len;
    CK_MECHANISM_TYPE hash_mech;
} digests[] = {
    {NID_sha1, di_sha1, sizeof di_sha1, 20, CKM_SHA1_RSA_PKCS},
    {NID_sha256, di_sha256, sizeof di_sha256, 32, CKM_SHA256_RSA_PKCS},
    {NID_sha512, di_sha512, sizeof di_sha512, 64, CKM_SHA512_RSA_PKCS},
};

static const struct digest *digest_for(int nid)
{
    for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++)
        if (digests[i].nid == nid)
            return &digests[i];
    return NULL;
}

const uint8_t *tok_digestinfo_prefix(int nid, size_t *len, size_t *md_len)
{
    const struct digest *d = digest_for(nid);
    if (!d)
        return NULL;
    *len = d->prefix_len;
    *md_len = d->md_len;
    return d->prefix;
}

static size_t build_digestinfo(const struct digest *d, const uint8_t *md, uint8_t out[DI_MAX])
{
    memcpy(out, d->prefix, d->prefix_len);
    memcpy(out + d->prefix_len, md, d->md_len);
    return d->prefix_len + d->md_len;
}

/* ---- Verification ---- */

EVP_PKEY_CTX *tok_new_verify_ctx(EVP_PKEY *pub)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);

    if (!ctx)
        return NULL;
    /* No digest set: the provider compares the whole decrypted DigestInfo with ours, byte for
     * byte, which is stricter than parsing it. */
    if (EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tok_verify_digestinfo(EVP_PKEY_CTX *vctx, int nid, const uint8_t *md, size_t md_len,
                          const uint8_t *sig, size_t sig_len)
{
    const struct digest *d = digest_for(nid);
    uint8_t di[DI_MAX];
    size_t di_len;

    if (!d || md_len != d->md_len)
        return -1;
    di_len = build_digestinfo(d, md, di);
    return EVP_PKEY_verify(vctx, sig, sig_len, di, di_len) == 1 ? 0 : -1;
}

static EVP_PKEY_CTX *vctx_take(struct tok_key *k)
{
    EVP_PKEY_CTX *ctx = NULL;

    pthread_mutex_lock(&k->lock);
    if (k->n_vctx > 0)
        ctx = k->vctx[--k->n_vctx];
    pthread_mutex_unlock(&k->lock);
    return ctx ? ctx : tok_new_verify_ctx(k->pub);
}

static void vctx_give_back(struct tok_key *k, EVP_PKEY_CTX *ctx)
{
    pthread_mutex_lock(&k->lock);
    if (k->n_vctx < TOK_VCTX_CACHE) {
        k->vctx[k->n_vctx++] = ctx;
        ctx = NULL;
    }
    pthread_mutex_unlock(&k->lock);
    EVP_PKEY_CTX_free(ctx);
}

/* ---- Keys ---- */

struct find_key_ctx {
    const char *label;
    const uint8_t *id; /* NULL: by label alone */
    size_t id_len;
    struct tok_key *k;
};

static int rsa_modulus_matches(EVP_PKEY *pub, const uint8_t *mod, size_t mod_len)
{
    BIGNUM *n = NULL, *m = BN_bin2bn(mod, (int)mod_len, NULL);
    int same = 0;

    if (m && EVP_PKEY_get_bn_param(pub, "n", &n) == 1)
        same = BN_cmp(n, m) == 0;
    BN_free(n);
    BN_free(m);
    return same;
}

/* The private key, its CKA_ID, and the certificate with that CKA_ID; they must agree. */
static int find_key_in_session(struct tok *t, CK_SESSION_HANDLE h, void *vctx,
                               struct itl_error *err)
{
    struct find_key_ctx *c = vctx;
    struct tok_key *k = c->k;
    CK_OBJECT_HANDLE priv, cert;
    struct tok_key_attrs ka = {0};
    uint8_t *value = NULL;
    size_t value_len = 0;
    unsigned long gen = tok_generation(t);
    const unsigned char *p;
    X509 *x = NULL;
    int rc = -1;

    if (tok_find_one(t, h, CKO_PRIVATE_KEY, c->label, c->id, c->id_len, &priv, err) != 0)
        return -1;
    if (tok_read_key_attrs(t, h, priv, &ka, err) != 0) {
        err_prefix(err, "cannot read the attributes of key '%s': ", c->label);
        return -1;
    }
    if (!ka.have_type || ka.type != CKK_RSA) {
        err_set(err, ITL_E_MECHANISM, "key '%s' is not an RSA key: itl-sign signs with RSA",
                c->label);
        goto out;
    }
    if (ka.id_len == 0 || ka.id_len > sizeof k->id) {
        err_set(err, ITL_E_NO_KEY,
                "key '%s' has %s CKA_ID: its certificate cannot be paired with it", c->label,
                ka.id_len ? "an over-long" : "no");
        goto out;
    }
    if (tok_find_one(t, h, CKO_CERTIFICATE, NULL, ka.id, ka.id_len, &cert, err) != 0) {
        if (err && err->cls == ITL_E_NO_KEY)
            err_set(err, ITL_E_NO_KEY,
                    "key '%s' has no certificate with the same CKA_ID on token '%s' (import or "
                    "generate it with itl-sign key)",
                    c->label, t->label_str);
        goto out;
    }
    if (tok_get_attr(t, h, cert, CKA_VALUE, &value, &value_len, err) != 0) {
        err_set(err, ITL_E_NO_KEY, "cannot read the certificate of key '%s'", c->label);
        goto out;
    }
    p = value;
    x = d2i_X509(NULL, &p, (long)value_len);
    if (!x || p != value + value_len) {
        err_set(err, ITL_E_NO_KEY, "the certificate of key '%s' on the token is not valid DER",
                c->label);
        goto out;
    }
    k->pub = X509_get_pubkey(x);
    if (!k->pub || EVP_PKEY_get_base_id(k->pub) != EVP_PKEY_RSA) {
        err_set(err, ITL_E_NO_KEY, "the certificate of key '%s' does not hold an RSA key",
                c->label);
        goto out;
    }
    if (ka.modulus && !rsa_modulus_matches(k->pub, ka.modulus, ka.mod_len)) {
        err_set(err, ITL_E_NO_KEY,
                "the certificate with the CKA_ID of key '%s' belongs to another key (its "
                "modulus differs)",
                c->label);
        goto out;
    }
    memcpy(k->id, ka.id, ka.id_len);
    k->id_len = ka.id_len;
    k->cert = value;
    k->cert_len = value_len;
    value = NULL;
    k->x509 = x;
    x = NULL;
    k->sig_len = (size_t)EVP_PKEY_get_size(k->pub);
    k->always_authenticate = ka.always_authenticate;
    k->handle = priv;
    k->generation = gen;
    rc = 0;
out:
    X509_free(x);
    tok_key_attrs_free(&ka);
    free(value);
    return rc;
}

int tok_find_key(struct tok *t, const char *label, struct tok_key **out, struct itl_error *err)
{
    return tok_find_key_id(t, label, NULL, 0, out, err);
}

int tok_find_key_id(struct tok *t, const char *label, const uint8_t *id, size_t id_len,
                    struct tok_key **out, struct itl_error *err)
{
    struct find_key_ctx c = {.label = label, .id = id, .id_len = id_len};
    struct tok_key *k;

    *out = NULL;
    if (id && (id_len == 0 || id_len > sizeof k->id))
        return err_set(err, ITL_E_USAGE, "a key id of 1 to %zu bytes is needed", sizeof k->id);
    if (!label || !label[0] || strlen(label) >= sizeof k->label)
        return err_set(err, ITL_E_USAGE, "a key label of 1 to %zu bytes is needed",
                       sizeof k->label - 1);
    k = calloc(1, sizeof *k);
    if (!k)
        return err_set(err, ITL_E_DEVICE, "out of memory");
    k->t = t;
    snprintf(k->label, sizeof k->label, "%s", label);
    pthread_mutex_init(&k->lock, NULL);
    pthread_mutex_init(&k->pin_lock, NULL);
    c.k = k;
    if (tok_run(t, 0, find_key_in_session, &c, err) != 0) {
        tok_key_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

void tok_key_free(struct tok_key *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n_vctx; i++)
        EVP_PKEY_CTX_free(k->vctx[i]);
    EVP_PKEY_free(k->pub);
    X509_free(k->x509);
    free(k->cert);
    tok_pin_wipe(&k->context_pin);
    pthread_mutex_destroy(&k->pin_lock);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

int tok_key_always_authenticate(const struct tok_key *k)
{
    return k->always_authenticate;
}

int tok_key_set_context_pin(struct tok_key *k, const struct tok_pin *pin, struct itl_error *err)
{
    int rc = 0;

    pthread_mutex_lock(&k->pin_lock);
    tok_pin_wipe(&k->context_pin);
    k->own_pin = 1;
    if (pin && pin->bytes)
        rc = tok_pin_copy(&k->context_pin, pin, err);
    pthread_mutex_unlock(&k->pin_lock);
    return rc;
}

const void *tok_key_x509(const struct tok_key *k)
{
    return k->x509;
}

const uint8_t *tok_key_cert(const struct tok_key *k, size_t *len)
{
    *len = k->cert_len;
    return k->cert;
}

const char *tok_key_label(const struct tok_key *k)
{
    return k->label;
}

size_t tok_key_sig_len(const struct tok_key *k)
{
    return k->sig_len;
}

/* The key's handle valid in sessions of generation `gen`, found again after a rebuild. */
static int key_handle(struct tok_key *k, CK_SESSION_HANDLE h, unsigned long gen,
                      CK_OBJECT_HANDLE *out, struct itl_error *err)
{
    struct tok *t = k->t;
    CK_OBJECT_HANDLE o;

    pthread_mutex_lock(&k->lock);
    if (k->generation == gen) {
        *out = k->handle;
        pthread_mutex_unlock(&k->lock);
        return 0;
    }
    pthread_mutex_unlock(&k->lock);
    if (tok_find_one(t, h, CKO_PRIVATE_KEY, k->label, k->id, k->id_len, &o, err) != 0)
        return -1;
    pthread_mutex_lock(&k->lock);
    k->handle = o;
    k->generation = gen;
    pthread_mutex_unlock(&k->lock);
    *out = o;
    return 0;
}

static void key_handle_forget(struct tok_key *k)
{
    pthread_mutex_lock(&k->lock);
    k->generation = (unsigned long)-1;
    pthread_mutex_unlock(&k->lock);
}

/* A context-specific login (CKA_ALWAYS_AUTHENTICATE keys) right after C_SignInit. */
static CK_RV context_login(struct tok *t, CK_SESSION_HANDLE h)
{
    struct itl_error ignored;
    if (tok_do_login(t, h, CKU_CONTEXT_SPECIFIC, &ignored) == 0)
        return CKR_OK;
    return ignored.ckr ? ignored.ckr : CKR_PIN_INCORRECT;
}

/* The key's own PIN: held under its lock for the login; wiped the moment the token rejects it,
 * so it is never sent again. Without one, nothing is sent. */
static CK_RV key_context_login(struct tok *t, CK_SESSION_HANDLE h, struct tok_key *k)
{
    CK_RV rv = CKR_USER_NOT_LOGGED_IN;

    pthread_mutex_lock(&k->pin_lock);
    if (k->context_pin.bytes) {
        rv = t->mod->C_Login(h, CKU_CONTEXT_SPECIFIC, k->context_pin.bytes,
                             (CK_ULONG)k->context_pin.len);
        if (tok_rv_rejects_pin(rv))
            tok_pin_wipe(&k->context_pin);
    }
    pthread_mutex_unlock(&k->pin_lock);
    return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

CK_RV tok_sign_in_session(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key,
                          CK_MECHANISM_TYPE mech, int always_authenticate, struct tok_key *own,
                          const uint8_t *in, size_t in_len, uint8_t *sig, size_t *sig_len)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ULONG len = (CK_ULONG)*sig_len;
    CK_RV rv;

    rv = t->mod->C_SignInit(h, &m, key);
    if (rv != CKR_OK)
        return rv;
    if (always_authenticate) {
        rv = own && own->own_pin ? key_context_login(t, h, own) : context_login(t, h);
        if (rv != CKR_OK) {
            /* The operation is still active in this session: drop the session with it. */
            (void)t->mod->C_CloseSession(h);
            return rv;
        }
    }
    rv = t->mod->C_Sign(h, (CK_BYTE_PTR)in, (CK_ULONG)in_len, sig, &len);
    *sig_len = len;
    return rv;
}

static int sign_error(struct tok *t, struct tok_key *k, CK_MECHANISM_TYPE mech, CK_RV rv,
                      const char *extra, struct itl_error *err)
{
    char what[300], buf[40];

    snprintf(what, sizeof what, "signing with key '%s' on token '%s' (%s%s)", k->label,
             t->label_str, tok_mech_name(mech, buf, sizeof buf), extra);
    return tok_ckr_err(err, rv, what);
}

/* One signing, as the common retry loop sees it. */
struct sign_ctx {
    struct tok_key *k;
    CK_MECHANISM_TYPE mech;
    const uint8_t *in;
    size_t in_len;
    uint8_t *sig;
    size_t sig_cap, out_len;
    unsigned long generation; /* of the session the attempt runs on */
    int in_sign;              /* the failure came from C_SignInit / C_Sign, not the key lookup */
    int always_auth;
    int refound; /* the key handle was looked up again once already */
};

static void sign_session_taken(void *vctx, unsigned long generation)
{
    struct sign_ctx *c = vctx;
    c->generation = generation;
    c->in_sign = 0;
}

static int sign_attempt(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct sign_ctx *c = vctx;
    CK_OBJECT_HANDLE key;
    CK_RV rv;

    if (key_handle(c->k, h, c->generation, &key, err) != 0) {
        tok_explain_failure(t, h, err);
        return -1;
    }
    c->in_sign = 1;
    c->out_len = c->sig_cap;
    c->always_auth = c->k->always_authenticate;
    rv = tok_sign_in_session(t, h, key, c->mech, c->always_auth, c->k, c->in, c->in_len, c->sig,
                             &c->out_len);
    /* SoftHSM2 answers a lost login or a lost token with "no such key" */
    rv = tok_failure_cause(t, h, rv);
    if (rv == CKR_OK)
        return 0;
    return sign_error(t, c->k, c->mech, rv, "", err);
}

/* A context-specific login leaves the session in a state we do not reuse. */
static int sign_session_spoiled(void *vctx, const struct itl_error *err)
{
    const struct sign_ctx *c = vctx;
    (void)err;
    return c->in_sign && c->always_auth;
}

/* Key handles may not survive a re-login on some tokens: look the key up again, once. */
static int sign_retry_at_once(void *vctx, int in_fn, const struct itl_error *err)
{
    struct sign_ctx *c = vctx;

    if (c->refound || (in_fn && !c->in_sign))
        return 0;
    if (err->ckr != CKR_KEY_HANDLE_INVALID && err->ckr != CKR_OBJECT_HANDLE_INVALID)
        return 0;
    c->refound = 1;
    key_handle_forget(c->k);
    return 1;
}

/* A failed key lookup keeps its own message unless the budget ran out. */
static int sign_give_up(void *vctx, int in_fn, int after_rebuild, struct itl_error *err)
{
    struct sign_ctx *c = vctx;

    if (in_fn && !c->in_sign && !after_rebuild)
        return -1;
    return sign_error(c->k->t, c->k, c->mech, err->ckr,
                      after_rebuild ? ", gave up after rebuilding" : "", err);
}

static const struct tok_retry_rules sign_retry_rules = {
    .fn_explains_failure = 1,
    .session_taken = sign_session_taken,
    .retry_at_once = sign_retry_at_once,
    .session_spoiled = sign_session_spoiled,
    .give_up = sign_give_up,
};

/* token.mechanism: raw, hash, or (auto) raw when the token offers it. A missing mechanism names
 * the setting that reaches the other one. */
static int choose_mechanism(struct tok *t, const struct digest *d, int have_msg,
                            CK_MECHANISM_TYPE *mech, struct itl_error *err)
{
    enum tok_mechanism how = t->opts.mechanism;

    if (how == TOK_MECH_AUTO)
        how = tok_check_mechanism(t, CKM_RSA_PKCS, NULL) == 0 ? TOK_MECH_RAW : TOK_MECH_HASH;
    *mech = how == TOK_MECH_RAW ? CKM_RSA_PKCS : d->hash_mech;
    if (how == TOK_MECH_HASH && !have_msg)
        return err_set(err, ITL_E_USAGE,
                       "hash mechanisms (CKM_SHAx_RSA_PKCS) need the message, not a digest");
    return tok_check_mechanism(t, *mech, err);
}

int tok_sign(struct tok *t, struct tok_key *k, int nid, const uint8_t *msg, size_t msg_len,
             const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len, struct itl_error *err)
{
    struct itl_error scratch;
    const struct digest *d = digest_for(nid);
    uint8_t mdbuf[64], di[DI_MAX];
    const uint8_t *in;
    size_t in_len, out_len = 0;
    CK_MECHANISM_TYPE mech;
    struct sign_ctx sc;
    EVP_PKEY_CTX *vctx;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    if (!d)
        return err_set(err, ITL_E_USAGE,
                       "digest NID %d: only SHA-1, SHA-256 and SHA-512 are "
                       "supported",
                       nid);
    if (md && md_len != d->md_len)
        return err_set(err, ITL_E_USAGE, "a %s digest has %zu bytes, not %zu", OBJ_nid2sn(nid),
                       d->md_len, md_len);
    if (!md) {
        if (!msg || EVP_Digest(msg, msg_len, mdbuf, NULL, EVP_get_digestbynid(nid), NULL) != 1)
            return err_set(err, ITL_E_USAGE, "nothing to sign: neither a digest nor a message");
        md = mdbuf;
    }
    if (*sig_len < k->sig_len)
        return err_set(err, ITL_E_USAGE, "signature buffer of %zu bytes; key '%s' needs %zu",
                       *sig_len, k->label, k->sig_len);
    if (choose_mechanism(t, d, msg != NULL, &mech, err) != 0)
        return -1;
    if (mech == CKM_RSA_PKCS) {
        in_len = build_digestinfo(d, md, di);
        in = di;
    } else {
        in = msg;
        in_len = msg_len;
    }

    sc = (struct sign_ctx){
        .k = k, .mech = mech, .in = in, .in_len = in_len, .sig = sig, .sig_cap = *sig_len};
    if (tok_run_with(t, 0, sign_attempt, &sc, &sign_retry_rules, err) != 0)
        return -1;
    out_len = sc.out_len;

    vctx = vctx_take(k);
    if (!vctx)
        return err_set(err, ITL_E_DEVICE, "out of memory for signature verification");
    if (tok_verify_digestinfo(vctx, nid, md, d->md_len, sig, out_len) != 0) {
        vctx_give_back(k, vctx);
        return err_set(err, ITL_E_VERIFY,
                       "the signature key '%s' made on token '%s' does not verify with its "
                       "certificate: the certificate on the token does not belong to the key, "
                       "or the token is faulty; nothing was signed",
                       k->label, t->label_str);
    }
    vctx_give_back(k, vctx);
    *sig_len = out_len;
    return 0;
}

int tok_sign_data(struct tok *t, struct tok_key *k, int nid, const uint8_t *data, size_t len,
                  uint8_t *sig, size_t *sig_len, struct itl_error *err)
{
    uint8_t md[64];
    unsigned md_len = 0;
    const EVP_MD *type = EVP_get_digestbynid(nid);

    if (!type || !digest_for(nid))
        return err_set(err, ITL_E_USAGE,
                       "digest NID %d: only SHA-1, SHA-256 and SHA-512 are supported", nid);
    if (EVP_Digest(data, len, md, &md_len, type, NULL) != 1)
        return err_set(err, ITL_E_DEVICE, "hashing failed");
    return tok_sign(t, k, nid, data, len, md, md_len, sig, sig_len, err);
}
