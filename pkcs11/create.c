/* SPDX-License-Identifier: MIT */
/*
 * Shared by import and generate: label/id checks, refusing duplicates, creating the
 * certificate object, checking the key is sensitive and not extractable.
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

/* ---- Shared by import and generate ---- */

int tok_check_label_id(const char *label, const uint8_t *id, size_t id_len, struct itl_error *err)
{
    if (!label || !label[0] || strlen(label) >= sizeof((struct tok_key_info *)0)->label)
        return err_set(err, ITL_E_USAGE, "a key label of 1 to 127 bytes is needed");
    if (id && (id_len == 0 || id_len > sizeof((struct tok_key_info *)0)->id))
        return err_set(err, ITL_E_USAGE, "a key id of 1 to 64 bytes is needed");
    return 0;
}

/* Refuses a label or id that is taken: overwriting a key is never what the admin meant. A token
 * the module lost shows no objects at all, so its presence is checked first. */
int tok_refuse_existing(struct tok *t, CK_SESSION_HANDLE h, const char *label, const uint8_t *id,
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

void tok_destroy_objects(struct tok *t, CK_SESSION_HANDLE h, const CK_OBJECT_HANDLE *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (o[i] != CK_INVALID_HANDLE)
            (void)t->mod->C_DestroyObject(h, o[i]);
}

/* A DER encoding into a fresh buffer (i2d_* style functions). */
#define I2D(fn, obj, out, len) ((len) = fn((obj), &(out)), (len) > 0 ? 0 : -1)

int tok_cert_attrs_get(X509 *x, struct cert_attrs *ca)
{
    memset(ca, 0, sizeof *ca);
    if (I2D(i2d_X509, x, ca->value, ca->value_len) ||
        I2D(i2d_X509_NAME, X509_get_subject_name(x), ca->subject, ca->subject_len) ||
        I2D(i2d_X509_NAME, X509_get_issuer_name(x), ca->issuer, ca->issuer_len) ||
        I2D(i2d_ASN1_INTEGER, X509_get0_serialNumber(x), ca->serial, ca->serial_len))
        return -1;
    return 0;
}

void tok_cert_attrs_free(struct cert_attrs *ca)
{
    OPENSSL_free(ca->value);
    OPENSSL_free(ca->subject);
    OPENSSL_free(ca->issuer);
    OPENSSL_free(ca->serial);
}

int tok_cert_attrs_copy_der(const struct cert_attrs *ca, uint8_t **der, size_t *len,
                            struct itl_error *err)
{
    *der = malloc((size_t)ca->value_len);
    if (!*der)
        return err_set(err, ITL_E_DEVICE, "out of memory");
    memcpy(*der, ca->value, (size_t)ca->value_len);
    *len = (size_t)ca->value_len;
    return 0;
}

CK_RV tok_create_cert_object(struct tok *t, CK_SESSION_HANDLE h, const struct cert_attrs *ca,
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
int tok_check_protected(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv,
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
