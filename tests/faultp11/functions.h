/* SPDX-License-Identifier: MIT */
/*
 * The PKCS#11 2.40 functions the fault module wraps, as X-macro tables.
 *
 * FP_SPECIAL_FUNCTIONS are written by hand in module.c (they load the real module, filter the
 * slot list or record PINs). FP_FORWARDED_FUNCTIONS get a generated wrapper:
 *   X(name, what "absent" does to it, parameter list, argument list)
 * C_GetFunctionList is not in either table: it is never forwarded and cannot be faulted.
 */
#ifndef FAULTP11_FUNCTIONS_H
#define FAULTP11_FUNCTIONS_H

#define FP_SPECIAL_FUNCTIONS(X)                                                                    \
    X(C_Initialize)                                                                                \
    X(C_Finalize)                                                                                  \
    X(C_GetSlotList)                                                                               \
    X(C_GetSlotInfo)                                                                               \
    X(C_Login)

/* Classes: IGNORED (works without a token), NO_TOKEN (names a slot: TOKEN_NOT_PRESENT while the
 * token is absent), REMOVED (names a session: DEVICE_REMOVED while absent), OPERATION (like
 * REMOVED, and part of a crypto operation: a fault injected into it still runs the real call, so
 * that the operation ends on the token as a real error would end it). Session functions take
 * the session as their first argument. */
#define FP_FORWARDED_FUNCTIONS(X)                                                                  \
    X(C_GetInfo, IGNORED, (CK_INFO_PTR info), (info))                                              \
    X(C_WaitForSlotEvent, IGNORED, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved),    \
      (flags, slot, reserved))                                                                     \
    X(C_CloseSession, IGNORED, (CK_SESSION_HANDLE s), (s))                                         \
    X(C_CloseAllSessions, IGNORED, (CK_SLOT_ID slot), (slot))                                      \
    X(C_GetTokenInfo, NO_TOKEN, (CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info), (slot, info))           \
    X(C_GetMechanismList, NO_TOKEN,                                                                \
      (CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count), (slot, list, count))      \
    X(C_GetMechanismInfo, NO_TOKEN,                                                                \
      (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info), (slot, type, info))   \
    X(C_InitToken, NO_TOKEN,                                                                       \
      (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label),             \
      (slot, pin, pin_len, label))                                                                 \
    X(C_OpenSession, NO_TOKEN,                                                                     \
      (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,                         \
       CK_SESSION_HANDLE_PTR s),                                                                   \
      (slot, flags, app, notify, s))                                                               \
    X(C_InitPIN, REMOVED, (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len),            \
      (s, pin, pin_len))                                                                           \
    X(C_SetPIN, REMOVED,                                                                           \
      (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len, CK_UTF8CHAR_PTR new_pin,    \
       CK_ULONG new_len),                                                                          \
      (s, old_pin, old_len, new_pin, new_len))                                                     \
    X(C_GetSessionInfo, REMOVED, (CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info), (s, info))       \
    X(C_GetOperationState, REMOVED,                                                                \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR state, CK_ULONG_PTR state_len), (s, state, state_len))     \
    X(C_SetOperationState, REMOVED,                                                                \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR state, CK_ULONG state_len, CK_OBJECT_HANDLE enc_key,       \
       CK_OBJECT_HANDLE auth_key),                                                                 \
      (s, state, state_len, enc_key, auth_key))                                                    \
    X(C_Logout, REMOVED, (CK_SESSION_HANDLE s), (s))                                               \
    X(C_CreateObject, REMOVED,                                                                     \
      (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR obj),      \
      (s, tmpl, count, obj))                                                                       \
    X(C_CopyObject, REMOVED,                                                                       \
      (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,           \
       CK_OBJECT_HANDLE_PTR new_obj),                                                              \
      (s, obj, tmpl, count, new_obj))                                                              \
    X(C_DestroyObject, REMOVED, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj), (s, obj))             \
    X(C_GetObjectSize, REMOVED, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size),    \
      (s, obj, size))                                                                              \
    X(C_GetAttributeValue, REMOVED,                                                                \
      (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count),          \
      (s, obj, tmpl, count))                                                                       \
    X(C_SetAttributeValue, REMOVED,                                                                \
      (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count),          \
      (s, obj, tmpl, count))                                                                       \
    X(C_FindObjectsInit, REMOVED, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count),    \
      (s, tmpl, count))                                                                            \
    X(C_FindObjects, REMOVED,                                                                      \
      (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max, CK_ULONG_PTR count),          \
      (s, objs, max, count))                                                                       \
    X(C_FindObjectsFinal, REMOVED, (CK_SESSION_HANDLE s), (s))                                     \
    X(C_EncryptInit, REMOVED, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key),  \
      (s, mech, key))                                                                              \
    X(C_Encrypt, OPERATION,                                                                        \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_EncryptUpdate, OPERATION,                                                                  \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_EncryptFinal, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len),     \
      (s, out, out_len))                                                                           \
    X(C_DecryptInit, REMOVED, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key),  \
      (s, mech, key))                                                                              \
    X(C_Decrypt, OPERATION,                                                                        \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_DecryptUpdate, OPERATION,                                                                  \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_DecryptFinal, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len),     \
      (s, out, out_len))                                                                           \
    X(C_DigestInit, REMOVED, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech), (s, mech))              \
    X(C_Digest, OPERATION,                                                                         \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_DigestUpdate, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len),           \
      (s, in, in_len))                                                                             \
    X(C_DigestKey, OPERATION, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key), (s, key))               \
    X(C_DigestFinal, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len),      \
      (s, out, out_len))                                                                           \
    X(C_SignInit, REMOVED, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key),     \
      (s, mech, key))                                                                              \
    X(C_Sign, OPERATION,                                                                           \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,                      \
       CK_ULONG_PTR sig_len),                                                                      \
      (s, in, in_len, sig, sig_len))                                                               \
    X(C_SignUpdate, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len),             \
      (s, in, in_len))                                                                             \
    X(C_SignFinal, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len),        \
      (s, sig, sig_len))                                                                           \
    X(C_SignRecoverInit, REMOVED,                                                                  \
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key), (s, mech, key))          \
    X(C_SignRecover, OPERATION,                                                                    \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,                      \
       CK_ULONG_PTR sig_len),                                                                      \
      (s, in, in_len, sig, sig_len))                                                               \
    X(C_VerifyInit, REMOVED, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key),   \
      (s, mech, key))                                                                              \
    X(C_Verify, OPERATION,                                                                         \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig, CK_ULONG sig_len),   \
      (s, in, in_len, sig, sig_len))                                                               \
    X(C_VerifyUpdate, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len),           \
      (s, in, in_len))                                                                             \
    X(C_VerifyFinal, OPERATION, (CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sig_len),          \
      (s, sig, sig_len))                                                                           \
    X(C_VerifyRecoverInit, REMOVED,                                                                \
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key), (s, mech, key))          \
    X(C_VerifyRecover, OPERATION,                                                                  \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sig_len, CK_BYTE_PTR out,                    \
       CK_ULONG_PTR out_len),                                                                      \
      (s, sig, sig_len, out, out_len))                                                             \
    X(C_DigestEncryptUpdate, OPERATION,                                                            \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_DecryptDigestUpdate, OPERATION,                                                            \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_SignEncryptUpdate, OPERATION,                                                              \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_DecryptVerifyUpdate, OPERATION,                                                            \
      (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,                      \
       CK_ULONG_PTR out_len),                                                                      \
      (s, in, in_len, out, out_len))                                                               \
    X(C_GenerateKey, REMOVED,                                                                      \
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,          \
       CK_OBJECT_HANDLE_PTR key),                                                                  \
      (s, mech, tmpl, count, key))                                                                 \
    X(C_GenerateKeyPair, REMOVED,                                                                  \
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count,  \
       CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub,                  \
       CK_OBJECT_HANDLE_PTR priv),                                                                 \
      (s, mech, pub_tmpl, pub_count, priv_tmpl, priv_count, pub, priv))                            \
    X(C_WrapKey, REMOVED,                                                                          \
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE wrapping,                      \
       CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR out_len),                               \
      (s, mech, wrapping, key, out, out_len))                                                      \
    X(C_UnwrapKey, REMOVED,                                                                        \
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE unwrapping, CK_BYTE_PTR in,    \
       CK_ULONG in_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR key),          \
      (s, mech, unwrapping, in, in_len, tmpl, count, key))                                         \
    X(C_DeriveKey, REMOVED,                                                                        \
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR tmpl,   \
       CK_ULONG count, CK_OBJECT_HANDLE_PTR key),                                                  \
      (s, mech, base, tmpl, count, key))                                                           \
    X(C_SeedRandom, REMOVED, (CK_SESSION_HANDLE s, CK_BYTE_PTR seed, CK_ULONG len),                \
      (s, seed, len))                                                                              \
    X(C_GenerateRandom, REMOVED, (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len),             \
      (s, out, len))                                                                               \
    X(C_GetFunctionStatus, REMOVED, (CK_SESSION_HANDLE s), (s))                                    \
    X(C_CancelFunction, REMOVED, (CK_SESSION_HANDLE s), (s))

#endif
