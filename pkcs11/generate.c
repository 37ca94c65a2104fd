/* SPDX-License-Identifier: MIT */
/*
 * Generating a sign-only, sensitive, non-extractable RSA key pair on the token, with a
 * self-signed certificate made by the token key.
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

/* A DER encoding into a fresh buffer (i2d_* style functions). */
#define I2D(fn, obj, out, len) ((len) = fn((obj), &(out)), (len) > 0 ? 0 : -1)

/* ---- Generate ---- */

/* "CN=ITLRECOVERY_pub,OU=VTG,O=Cisco,C=US" encoded in the order given: the first component is
 * the first in the DER (CN first). CUCM's certificates are CN first (the TVS certificate decoded
 * in seed 001, the certutils sample's own certificates), and ITLs print names in the DER order,
 * so a generated key's names read CN=…;OU=…;C=US as CUCM's do. A ',' inside a value is "\,". */
int tok_parse_subject(const char *text, X509_NAME **out, struct itl_error *err)
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
    for (size_t i = 0; i < n; i++) {
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

EVP_PKEY *tok_rsa_public(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub,
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
        err_set(err, ITL_E_DEVICE, "cannot read the public key (CKA_MODULUS) from token '%s'",
                t->label_str);
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
        err_set(err, ITL_E_DEVICE, "the public key from token '%s' is not a valid RSA key",
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
    struct tok_generate_report report;
};

int tok_sign_sha256_in_session(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv,
                               const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len,
                               struct itl_error *err)
{
    uint8_t md[32], di[19 + 32];
    size_t prefix_len, md_len;
    const uint8_t *prefix = tok_digestinfo_prefix(NID_sha256, &prefix_len, &md_len);
    int always_auth = tok_get_bool(t, h, priv, CKA_ALWAYS_AUTHENTICATE) == 1;
    CK_RV rv;

    if (EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) != 1)
        return err_set(err, ITL_E_DEVICE, "cannot hash the data to sign (OpenSSL)");
    memcpy(di, prefix, prefix_len);
    memcpy(di + prefix_len, md, md_len);
    rv = tok_sign_in_session(t, h, priv, CKM_RSA_PKCS, always_auth, NULL, di, prefix_len + md_len,
                             sig, sig_len);
    if (rv != CKR_OK)
        return tok_ckr_err(err, rv, "signing with the token key (C_Sign)");
    return 0;
}

X509 *tok_self_signed_cert(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv, EVP_PKEY *pub,
                           X509_NAME *name, const struct tok_generate_opts *o,
                           struct itl_error *err)
{
    X509 *x = unsigned_cert(name, pub, o), *signed_x = NULL;
    uint8_t *tbs = NULL, sig[1024];
    size_t sig_len = sizeof sig;
    int tbs_len;

    if (!x) {
        err_set(err, ITL_E_DEVICE, "cannot build the certificate (OpenSSL)");
        return NULL;
    }
    tbs_len = i2d_re_X509_tbs(x, &tbs);
    if (tbs_len <= 0) {
        err_set(err, ITL_E_DEVICE, "cannot encode the certificate (OpenSSL)");
        goto out;
    }
    if (tok_sign_sha256_in_session(t, h, priv, tbs, (size_t)tbs_len, sig, &sig_len, err) != 0)
        goto out;
    signed_x = assemble_cert(tbs, tbs_len, sig, sig_len);
    if (!signed_x || X509_verify(signed_x, pub) != 1) {
        ERR_clear_error();
        X509_free(signed_x);
        signed_x = NULL;
        err_set(err, ITL_E_VERIFY,
                "the certificate signed by the key on token '%s' does not verify with the "
                "key's public half",
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
    CK_ULONG bits = c->o->bits ? c->o->bits : 2048;
    const char *label = c->o->label;
    CK_OBJECT_HANDLE objs[3] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    EVP_PKEY *pub = NULL;
    X509 *x = NULL;
    struct cert_attrs ca = {0};
    int rc = -1;
    CK_RV rv;

    if (tok_refuse_existing(t, h, label, c->id, c->id_len, err) != 0)
        return -1;
    if (tok_generate_pair(t, h, bits, c->id, c->id_len, label, &objs[0], &objs[1], &c->report,
                          err) != 0)
        return -1;
    if (tok_check_protected(t, h, objs[0], err) != 0)
        goto out;
    pub = tok_rsa_public(t, h, objs[1], err);
    if (!pub)
        goto out;
    x = tok_self_signed_cert(t, h, objs[0], pub, c->name, c->o, err);
    if (!x)
        goto out;
    if (tok_cert_attrs_get(x, &ca) != 0) {
        err_set(err, ITL_E_DEVICE, "cannot encode the certificate (OpenSSL)");
        goto out;
    }
    rv = tok_create_cert_object(t, h, &ca, label, c->id, c->id_len, &objs[2]);
    if (rv != CKR_OK) {
        tok_ckr_err(err, rv, "storing the certificate (C_CreateObject)");
        goto out;
    }
    if (tok_cert_attrs_copy_der(&ca, &c->der, &c->der_len, err) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        tok_destroy_objects(t, h, objs, 3);
    tok_cert_attrs_free(&ca);
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
    if (tok_check_label_id(opts->label, opts->id, opts->id_len, err) != 0)
        return -1;
    if (opts->bits && opts->bits != 2048 && opts->bits != 3072 && opts->bits != 4096)
        return err_set(err, ITL_E_USAGE, "key size %u: use 2048, 3072 or 4096 bits", opts->bits);
    if (opts->days > 36500)
        return err_set(err, ITL_E_USAGE, "validity of %u days: at most 36500", opts->days);
    if (tok_parse_subject(opts->subject, &c.name, err) != 0)
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
        if (opts->report)
            *opts->report = c.report;
    }
    return rc;
}
