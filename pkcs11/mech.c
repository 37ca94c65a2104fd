/* SPDX-License-Identifier: MIT */
/*
 * Which signing mechanisms a token offers: asked once per mechanism (C_GetMechanismInfo) and
 * cached in tok.mech[], so a signature costs no extra call; a missing one is refused with the
 * token.mechanism setting that reaches one the token has.
 */
#include "pkcs11/internal.h"

#include <stdio.h>

/* ---- Mechanisms ---- */

static int mech_cache_slot(CK_MECHANISM_TYPE mech, CK_FLAGS flag)
{
    if (flag != CKF_SIGN)
        return -1;
    switch (mech) {
    case CKM_RSA_PKCS:
        return 0;
    case CKM_SHA1_RSA_PKCS:
        return 1;
    case CKM_SHA256_RSA_PKCS:
        return 2;
    case CKM_SHA512_RSA_PKCS:
        return 3;
    default:
        return -1;
    }
}

static const char *mech_advice(CK_MECHANISM_TYPE mech)
{
    if (mech == CKM_RSA_PKCS)
        return "the token (or its policy) does not allow raw RSA PKCS#1 v1.5 signing; set "
               "token.mechanism: hash (or auto) to sign with CKM_SHAx_RSA_PKCS";
    if (mech == CKM_SHA1_RSA_PKCS || mech == CKM_SHA256_RSA_PKCS || mech == CKM_SHA512_RSA_PKCS)
        return "set token.mechanism: raw (or auto) to sign with CKM_RSA_PKCS over a DigestInfo";
    return "choose a mechanism the token lists (pkcs11-tool -M)";
}

int tok_check_mechanism_flag(struct tok *t, CK_MECHANISM_TYPE mech, CK_FLAGS flag,
                             struct itl_error *err)
{
    int slot = mech_cache_slot(mech, flag);
    enum tok_mech_state state = MECH_UNCHECKED;
    CK_MECHANISM_INFO info;
    char buf[40], what[200];
    const char *name = tok_mech_name(mech, buf, sizeof buf);
    CK_RV rv;

    if (slot >= 0) {
        pthread_mutex_lock(&t->lock);
        state = t->mech[slot];
        pthread_mutex_unlock(&t->lock);
    }
    if (state == MECH_OK)
        return 0;
    if (state == MECH_UNCHECKED) {
        pthread_rwlock_rdlock(&t->module_lock);
        rv = t->mod->C_GetMechanismInfo(t->slot, mech, &info);
        pthread_rwlock_unlock(&t->module_lock);
        if (rv != CKR_OK && rv != CKR_MECHANISM_INVALID) {
            if (tok_check_present(t, err) != 0)
                return -1;
            snprintf(what, sizeof what, "asking token '%s' about %s (C_GetMechanismInfo)",
                     t->label_str, name);
            return tok_ckr_err(err, rv, what);
        }
        state = rv == CKR_OK && (info.flags & flag) ? MECH_OK : MECH_MISSING;
        if (slot >= 0) {
            pthread_mutex_lock(&t->lock);
            t->mech[slot] = state;
            pthread_mutex_unlock(&t->lock);
        }
    }
    if (state == MECH_OK)
        return 0;
    err_set(err, ITL_E_MECHANISM, "token '%s' does not offer %s for %s; %s", t->label_str, name,
            flag == CKF_SIGN ? "signing" : "this operation", mech_advice(mech));
    if (err)
        err->ckr = CKR_MECHANISM_INVALID;
    return -1;
}

int tok_check_mechanism(struct tok *t, CK_MECHANISM_TYPE mech, struct itl_error *err)
{
    return tok_check_mechanism_flag(t, mech, CKF_SIGN, err);
}
