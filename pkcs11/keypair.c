/* SPDX-License-Identifier: MIT */
/*
 * The key pair template every token we test accepts, and reading back what a key may do.
 *
 * A signing key should sign and nothing else: private key CKA_SIGN only (CKA_DECRYPT,
 * CKA_UNWRAP, CKA_DERIVE false), public key CKA_VERIFY only (CKA_ENCRYPT, CKA_WRAP false).
 * Tokens differ in which of the "false" attributes they take: tpm2-pkcs11 answers
 * CKR_GENERAL_ERROR to CKA_ENCRYPT / CKA_DECRYPT = FALSE, others CKR_ATTRIBUTE_* or
 * CKR_TEMPLATE_*. Then we generate again without them, try to switch the unwanted uses off with
 * C_SetAttributeValue one by one (a token may refuse that too), and report the key's actual
 * usage: the caller prints it, never claims sign-only when it is not.
 */
#include "pkcs11/internal.h"

#include <stdio.h>
#include <string.h>

static CK_BBOOL ck_true = CK_TRUE;
static CK_BBOOL ck_false = CK_FALSE;

/* The uses a signing key must not have: asked false, and left out when the token refuses. */
static const CK_ATTRIBUTE_TYPE private_off[] = {CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE};
static const CK_ATTRIBUTE_TYPE public_off[] = {CKA_ENCRYPT, CKA_WRAP};
#define N_PRIVATE_OFF (sizeof private_off / sizeof private_off[0])
#define N_PUBLIC_OFF (sizeof public_off / sizeof public_off[0])

int tok_template_refused(CK_RV rv)
{
    switch (rv) {
    case CKR_ATTRIBUTE_READ_ONLY:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_TEMPLATE_INCOMPLETE:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_GENERAL_ERROR: /* tpm2-pkcs11 1.9 for CKA_DECRYPT = FALSE */
        return 1;
    default:
        return 0;
    }
}

void tok_read_usage(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
                    struct tok_key_usage *u)
{
    u->sign = u->decrypt = u->unwrap = u->derive = -1;
    u->verify = u->encrypt = u->wrap = -1;
    if (priv != CK_INVALID_HANDLE) {
        u->sign = tok_get_bool(t, h, priv, CKA_SIGN);
        u->decrypt = tok_get_bool(t, h, priv, CKA_DECRYPT);
        u->unwrap = tok_get_bool(t, h, priv, CKA_UNWRAP);
        u->derive = tok_get_bool(t, h, priv, CKA_DERIVE);
    }
    if (pub != CK_INVALID_HANDLE) {
        u->verify = tok_get_bool(t, h, pub, CKA_VERIFY);
        u->encrypt = tok_get_bool(t, h, pub, CKA_ENCRYPT);
        u->wrap = tok_get_bool(t, h, pub, CKA_WRAP);
    }
}

int tok_usage_sign_only(const struct tok_key_usage *u)
{
    return u->sign == 1 && u->decrypt != 1 && u->unwrap != 1 && u->derive != 1 && u->encrypt != 1 &&
           u->wrap != 1;
}

/* Switch the unwanted uses off after the fact, one by one; a refusal is not an error here
 * (the usage read back afterwards tells the truth). */
static void switch_off(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                       const CK_ATTRIBUTE_TYPE *types, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CK_ATTRIBUTE a = {types[i], &ck_false, sizeof ck_false};
        if (tok_get_bool(t, h, o, types[i]) == 1)
            (void)t->mod->C_SetAttributeValue(h, o, &a, 1);
    }
}

int tok_generate_pair(struct tok *t, CK_SESSION_HANDLE h, CK_ULONG bits, const uint8_t *id,
                      size_t id_len, const char *label, CK_OBJECT_HANDLE *priv,
                      CK_OBJECT_HANDLE *pub, struct tok_generate_report *report,
                      struct itl_error *err)
{
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    CK_ATTRIBUTE pub_tmpl[7 + N_PUBLIC_OFF] = {
        {CKA_TOKEN, &ck_true, sizeof ck_true},
        {CKA_PRIVATE, &ck_false, sizeof ck_false},
        {CKA_VERIFY, &ck_true, sizeof ck_true},
        {CKA_MODULUS_BITS, &bits, sizeof bits},
        {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent},
        {CKA_ID, (void *)id, id_len},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_ATTRIBUTE priv_tmpl[7 + N_PRIVATE_OFF] = {
        {CKA_TOKEN, &ck_true, sizeof ck_true},     {CKA_PRIVATE, &ck_true, sizeof ck_true},
        {CKA_SENSITIVE, &ck_true, sizeof ck_true}, {CKA_EXTRACTABLE, &ck_false, sizeof ck_false},
        {CKA_SIGN, &ck_true, sizeof ck_true},      {CKA_ID, (void *)id, id_len},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_RV rv;

    for (size_t i = 0; i < N_PUBLIC_OFF; i++)
        pub_tmpl[7 + i] = (CK_ATTRIBUTE){public_off[i], &ck_false, sizeof ck_false};
    for (size_t i = 0; i < N_PRIVATE_OFF; i++)
        priv_tmpl[7 + i] = (CK_ATTRIBUTE){private_off[i], &ck_false, sizeof ck_false};
    memset(report, 0, sizeof *report);
    *priv = *pub = CK_INVALID_HANDLE;
    rv = t->mod->C_GenerateKeyPair(h, &mech, pub_tmpl, 7 + N_PUBLIC_OFF, priv_tmpl,
                                   7 + N_PRIVATE_OFF, pub, priv);
    if (tok_template_refused(rv)) {
        /* Once more with only what a key pair needs; the token chooses the rest. */
        report->template_reduced = 1;
        report->refused_rv = rv;
        rv = t->mod->C_GenerateKeyPair(h, &mech, pub_tmpl, 7, priv_tmpl, 7, pub, priv);
        if (rv == CKR_OK) {
            switch_off(t, h, *priv, private_off, N_PRIVATE_OFF);
            switch_off(t, h, *pub, public_off, N_PUBLIC_OFF);
        }
    }
    if (rv != CKR_OK)
        return tok_ckr_err(err, rv,
                           report->template_reduced
                               ? "generating the RSA key pair (C_GenerateKeyPair; refused with "
                                 "the sign-only template and without it)"
                               : "generating the RSA key pair (C_GenerateKeyPair)");
    tok_read_usage(t, h, *priv, *pub, &report->usage);
    return 0;
}

/* "sign" / "sign,decrypt" / "verify,encrypt": the uses that are on (unknown ones as "?x"). */
void tok_usage_text(const struct tok_key_usage *u, int private_half, char *out, size_t size)
{
    struct {
        const char *name;
        int v;
    } priv_uses[] = {{"sign", u->sign},
                     {"decrypt", u->decrypt},
                     {"unwrap", u->unwrap},
                     {"derive", u->derive}},
      pub_uses[] = {{"verify", u->verify}, {"encrypt", u->encrypt}, {"wrap", u->wrap}};
    size_t n = private_half ? 4 : 3, used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name = private_half ? priv_uses[i].name : pub_uses[i].name;
        int v = private_half ? priv_uses[i].v : pub_uses[i].v;
        int w;
        if (v == 0)
            continue;
        w = snprintf(out + used, size - used, "%s%s%s", used ? "," : "", v < 0 ? "?" : "", name);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
    if (!out[0])
        snprintf(out, size, "none");
}
