/* SPDX-License-Identifier: MIT */
/* Error text: CKR names, p11-kit's descriptions, and what to do about them. */
#include "pkcs11/internal.h"

#include <stdio.h>
#include <string.h>

#include <p11-kit/p11-kit.h>

#define CKR(x)                                                                                     \
    {                                                                                              \
        x, #x                                                                                      \
    }
static const struct {
    CK_RV rv;
    const char *name;
} ckr_names[] = {
    CKR(CKR_OK),
    CKR(CKR_CANCEL),
    CKR(CKR_HOST_MEMORY),
    CKR(CKR_SLOT_ID_INVALID),
    CKR(CKR_GENERAL_ERROR),
    CKR(CKR_FUNCTION_FAILED),
    CKR(CKR_ARGUMENTS_BAD),
    CKR(CKR_NO_EVENT),
    CKR(CKR_NEED_TO_CREATE_THREADS),
    CKR(CKR_CANT_LOCK),
    CKR(CKR_ATTRIBUTE_READ_ONLY),
    CKR(CKR_ATTRIBUTE_SENSITIVE),
    CKR(CKR_ATTRIBUTE_TYPE_INVALID),
    CKR(CKR_ATTRIBUTE_VALUE_INVALID),
    CKR(CKR_ACTION_PROHIBITED),
    CKR(CKR_DATA_INVALID),
    CKR(CKR_DATA_LEN_RANGE),
    CKR(CKR_DEVICE_ERROR),
    CKR(CKR_DEVICE_MEMORY),
    CKR(CKR_DEVICE_REMOVED),
    CKR(CKR_FUNCTION_CANCELED),
    CKR(CKR_FUNCTION_NOT_PARALLEL),
    CKR(CKR_FUNCTION_NOT_SUPPORTED),
    CKR(CKR_KEY_HANDLE_INVALID),
    CKR(CKR_KEY_SIZE_RANGE),
    CKR(CKR_KEY_TYPE_INCONSISTENT),
    CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CKR(CKR_MECHANISM_INVALID),
    CKR(CKR_MECHANISM_PARAM_INVALID),
    CKR(CKR_OBJECT_HANDLE_INVALID),
    CKR(CKR_OPERATION_ACTIVE),
    CKR(CKR_OPERATION_NOT_INITIALIZED),
    CKR(CKR_PIN_INCORRECT),
    CKR(CKR_PIN_INVALID),
    CKR(CKR_PIN_LEN_RANGE),
    CKR(CKR_PIN_EXPIRED),
    CKR(CKR_PIN_LOCKED),
    CKR(CKR_SESSION_CLOSED),
    CKR(CKR_SESSION_COUNT),
    CKR(CKR_SESSION_HANDLE_INVALID),
    CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    CKR(CKR_SESSION_READ_ONLY),
    CKR(CKR_SESSION_EXISTS),
    CKR(CKR_SESSION_READ_ONLY_EXISTS),
    CKR(CKR_SESSION_READ_WRITE_SO_EXISTS),
    CKR(CKR_SIGNATURE_INVALID),
    CKR(CKR_SIGNATURE_LEN_RANGE),
    CKR(CKR_TEMPLATE_INCOMPLETE),
    CKR(CKR_TEMPLATE_INCONSISTENT),
    CKR(CKR_TOKEN_NOT_PRESENT),
    CKR(CKR_TOKEN_NOT_RECOGNIZED),
    CKR(CKR_TOKEN_WRITE_PROTECTED),
    CKR(CKR_USER_ALREADY_LOGGED_IN),
    CKR(CKR_USER_NOT_LOGGED_IN),
    CKR(CKR_USER_PIN_NOT_INITIALIZED),
    CKR(CKR_USER_TYPE_INVALID),
    CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    CKR(CKR_USER_TOO_MANY_TYPES),
    CKR(CKR_DOMAIN_PARAMS_INVALID),
    CKR(CKR_CURVE_NOT_SUPPORTED),
    CKR(CKR_BUFFER_TOO_SMALL),
    CKR(CKR_SAVED_STATE_INVALID),
    CKR(CKR_INFORMATION_SENSITIVE),
    CKR(CKR_STATE_UNSAVEABLE),
    CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
    CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    CKR(CKR_MUTEX_BAD),
    CKR(CKR_MUTEX_NOT_LOCKED),
    CKR(CKR_FUNCTION_REJECTED),
};
#undef CKR

const char *tok_ckr_name(unsigned long rv)
{
    for (size_t i = 0; i < sizeof ckr_names / sizeof ckr_names[0]; i++)
        if (ckr_names[i].rv == rv)
            return ckr_names[i].name;
    return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_(unknown)";
}

#define CKM(x)                                                                                     \
    {                                                                                              \
        x, #x                                                                                      \
    }
static const struct {
    CK_MECHANISM_TYPE mech;
    const char *name;
} mech_names[] = {
    CKM(CKM_RSA_PKCS_KEY_PAIR_GEN),
    CKM(CKM_RSA_PKCS),
    CKM(CKM_RSA_9796),
    CKM(CKM_RSA_X_509),
    CKM(CKM_SHA1_RSA_PKCS),
    CKM(CKM_RSA_X9_31),
    CKM(CKM_SHA256_RSA_PKCS),
    CKM(CKM_SHA384_RSA_PKCS),
    CKM(CKM_SHA512_RSA_PKCS),
    CKM(CKM_SHA224_RSA_PKCS),
    CKM(CKM_RSA_PKCS_PSS),
    CKM(CKM_SHA_1),
    CKM(CKM_SHA256),
    CKM(CKM_SHA512),
    CKM(CKM_ECDSA),
};
#undef CKM

const char *tok_mech_name(CK_MECHANISM_TYPE mech, char *buf, size_t size)
{
    for (size_t i = 0; i < sizeof mech_names / sizeof mech_names[0]; i++)
        if (mech_names[i].mech == mech)
            return mech_names[i].name;
    snprintf(buf, size, "mechanism 0x%lx", (unsigned long)mech);
    return buf;
}

int tok_rv_needs_rebuild(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID: /* the slot went with the token (after C_Initialize again) */
    case CKR_USER_NOT_LOGGED_IN:
        return 1;
    default:
        return 0;
    }
}

enum itl_errclass tok_kind_for_rv(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_PIN_NOT_INITIALIZED:
        return ITL_E_PIN;
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SLOT_ID_INVALID:
        return ITL_E_NO_TOKEN;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_TYPE_INCONSISTENT:
        return ITL_E_MECHANISM;
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
        return ITL_E_NO_KEY;
    default:
        return ITL_E_DEVICE;
    }
}

const char *tok_ckr_hint(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
        return "check the PIN file (only a trailing newline is stripped); the PIN will not be "
               "sent again by this process, so a wrong PIN costs one try only";
    case CKR_PIN_LOCKED:
        return "the user PIN is locked: the security officer must unlock or re-set it";
    case CKR_PIN_EXPIRED:
        return "the PIN has expired: change it with the token's own tools";
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_INVALID:
        return "the PIN has a length or characters the token does not accept";
    case CKR_USER_PIN_NOT_INITIALIZED:
        return "the user PIN was never set: initialise it (pkcs11-tool --init-pin)";
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
        return "token not present: plug it in or check the HSM connection";
    case CKR_SESSION_COUNT:
        return "the token has no free sessions: lower the pool size or close other programs";
    case CKR_MECHANISM_INVALID:
        return "the token does not offer this mechanism (or its policy forbids it)";
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
        return "the key may not be used for this (check its CKA_SIGN attribute)";
    case CKR_TOKEN_WRITE_PROTECTED:
        return "the token is write protected";
    case CKR_DEVICE_MEMORY:
        return "the token is full";
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return "the module was finalised under us (another library in this process?)";
    default:
        return "for a trace of the PKCS#11 calls, run again with --module "
               "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so and PKCS11SPY=<the module>";
    }
}

int tok_ckr_err(struct itl_error *err, CK_RV rv, const char *what)
{
    if (!err)
        return -1;
    err_set(err, tok_kind_for_rv(rv), "%s: %s (0x%08lx: %s); %s", what, tok_ckr_name(rv),
            (unsigned long)rv, p11_kit_strerror(rv), tok_ckr_hint(rv));
    err->ckr = rv;
    return -1;
}

void tok_padded_to_str(const CK_UTF8CHAR *in, size_t n, char *out, size_t size)
{
    while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\0'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(out, in, n);
    out[n] = '\0';
}
