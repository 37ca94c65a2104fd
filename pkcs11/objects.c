/* SPDX-License-Identifier: MIT */
/* Finding objects and reading their attributes. */
#include "pkcs11/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tok_find_objects(struct tok *t, CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                     CK_OBJECT_HANDLE **out, size_t *count, struct itl_error *err)
{
    CK_OBJECT_HANDLE *found = NULL;
    size_t used = 0, cap = 0;
    CK_RV rv;

    *out = NULL;
    *count = 0;
    rv = t->mod->C_FindObjectsInit(h, tmpl, n);
    if (rv != CKR_OK)
        return tok_ckr_err(err, rv, "searching objects (C_FindObjectsInit)");
    for (;;) {
        CK_ULONG got = 0;
        if (used == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            CK_OBJECT_HANDLE *grown = realloc(found, ncap * sizeof *found);
            if (!grown) {
                (void)t->mod->C_FindObjectsFinal(h);
                free(found);
                return err_set(err, ITL_E_DEVICE, "out of memory");
            }
            found = grown;
            cap = ncap;
        }
        rv = t->mod->C_FindObjects(h, found + used, (CK_ULONG)(cap - used), &got);
        if (rv != CKR_OK) {
            (void)t->mod->C_FindObjectsFinal(h);
            free(found);
            return tok_ckr_err(err, rv, "searching objects (C_FindObjects)");
        }
        if (got == 0)
            break;
        used += got;
    }
    rv = t->mod->C_FindObjectsFinal(h);
    if (rv != CKR_OK) {
        free(found);
        return tok_ckr_err(err, rv, "searching objects (C_FindObjectsFinal)");
    }
    if (used == 0) {
        free(found);
        found = NULL;
    }
    *out = found;
    *count = used;
    return 0;
}

/* A first try with a buffer that fits every value we read (certificates, ids, moduli): one
 * C_GetAttributeValue instead of a length query and a read. A value that does not fit gets
 * CKR_BUFFER_TOO_SMALL (PKCS#11 2.40 5.7), and then the length query and the read follow. */
#define ATTR_GUESS_BYTES 4096

int tok_get_attr(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                 uint8_t **value, size_t *len, struct itl_error *err)
{
    CK_ATTRIBUTE a = {type, NULL, ATTR_GUESS_BYTES};
    uint8_t *v;
    CK_RV rv;

    *value = NULL;
    *len = 0;
    a.pValue = malloc(ATTR_GUESS_BYTES + 1);
    if (!a.pValue)
        return err_set(err, ITL_E_DEVICE, "out of memory");
    rv = t->mod->C_GetAttributeValue(h, o, &a, 1);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        free(a.pValue);
        a.pValue = NULL;
        a.ulValueLen = 0;
        rv = t->mod->C_GetAttributeValue(h, o, &a, 1);
        if (rv == CKR_OK && a.ulValueLen != CK_UNAVAILABLE_INFORMATION) {
            a.pValue = malloc(a.ulValueLen + 1);
            if (!a.pValue)
                return err_set(err, ITL_E_DEVICE, "out of memory");
            rv = t->mod->C_GetAttributeValue(h, o, &a, 1);
        }
    }
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION)) {
        free(a.pValue);
        return 1;
    }
    if (rv != CKR_OK) {
        free(a.pValue);
        return tok_ckr_err(err, rv, "reading an attribute (C_GetAttributeValue)");
    }
    v = realloc(a.pValue, a.ulValueLen + 1); /* give back the rest of the guess */
    if (v)
        a.pValue = v;
    ((uint8_t *)a.pValue)[a.ulValueLen] = 0;
    *value = a.pValue;
    *len = a.ulValueLen;
    return 0;
}

/* Fixed buffers for the one-call read: ids (k->id holds 64 bytes) and moduli up to 16384 bits.
 * Anything larger takes the attribute-by-attribute path. */
#define KEY_ID_MAX 64
#define KEY_MODULUS_MAX 2048

static int dup_value(const CK_ATTRIBUTE *a, uint8_t **out, size_t *len)
{
    *out = malloc(a->ulValueLen + 1);
    if (!*out)
        return -1;
    memcpy(*out, a->pValue, a->ulValueLen);
    (*out)[a->ulValueLen] = 0;
    *len = a->ulValueLen;
    return 0;
}

/* All four in one call. 1: the token did not answer the template whole (an attribute it does
 * not have, a sensitive one, a value larger than our buffer): the caller reads them one by one,
 * because not every token fills in the other attributes of a template it refuses. */
static int key_attrs_at_once(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                             struct tok_key_attrs *ka, struct itl_error *err)
{
    uint8_t id[KEY_ID_MAX], modulus[KEY_MODULUS_MAX];
    CK_KEY_TYPE type = 0;
    CK_BBOOL always = CK_FALSE;
    CK_ATTRIBUTE a[] = {{CKA_KEY_TYPE, &type, sizeof type},
                        {CKA_ID, id, sizeof id},
                        {CKA_MODULUS, modulus, sizeof modulus},
                        {CKA_ALWAYS_AUTHENTICATE, &always, sizeof always}};

    if (t->mod->C_GetAttributeValue(h, o, a, 4) != CKR_OK || a[0].ulValueLen != sizeof type ||
        a[3].ulValueLen != sizeof always || a[1].ulValueLen > sizeof id ||
        a[2].ulValueLen > sizeof modulus)
        return 1;
    ka->have_type = 1;
    ka->type = type;
    ka->always_authenticate = always == CK_TRUE;
    if (dup_value(&a[1], &ka->id, &ka->id_len) != 0 ||
        dup_value(&a[2], &ka->modulus, &ka->mod_len) != 0) {
        tok_key_attrs_free(ka);
        return err_set(err, ITL_E_DEVICE, "out of memory");
    }
    return 0;
}

int tok_read_key_attrs(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                       struct tok_key_attrs *ka, struct itl_error *err)
{
    CK_ATTRIBUTE ta = {CKA_KEY_TYPE, &ka->type, sizeof ka->type};
    int rc;

    memset(ka, 0, sizeof *ka);
    rc = key_attrs_at_once(t, h, o, ka, err);
    if (rc <= 0)
        return rc;
    ka->have_type = t->mod->C_GetAttributeValue(h, o, &ta, 1) == CKR_OK;
    if (!ka->have_type || ka->type != CKK_RSA)
        return 0; /* the caller refuses it; nothing else is needed */
    if (tok_get_attr(t, h, o, CKA_ID, &ka->id, &ka->id_len, err) < 0 ||
        tok_get_attr(t, h, o, CKA_MODULUS, &ka->modulus, &ka->mod_len, err) < 0) {
        tok_key_attrs_free(ka);
        return -1;
    }
    ka->always_authenticate = tok_get_bool(t, h, o, CKA_ALWAYS_AUTHENTICATE) == 1;
    return 0;
}

void tok_key_attrs_free(struct tok_key_attrs *ka)
{
    free(ka->id);
    free(ka->modulus);
    ka->id = ka->modulus = NULL;
    ka->id_len = ka->mod_len = 0;
}

int tok_get_bool(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL b = CK_FALSE;
    CK_ATTRIBUTE a = {type, &b, sizeof b};

    if (t->mod->C_GetAttributeValue(h, o, &a, 1) != CKR_OK || a.ulValueLen != sizeof b)
        return -1;
    return b ? 1 : 0;
}

static const char *class_name(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return "private key";
    case CKO_PUBLIC_KEY:
        return "public key";
    case CKO_CERTIFICATE:
        return "certificate";
    default:
        return "object";
    }
}

/* "0a0b, 0c0d": the CKA_IDs of these objects, for an error that must let the admin choose. */
static void list_ids(struct tok *t, CK_SESSION_HANDLE h, const CK_OBJECT_HANDLE *o, size_t n,
                     char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < size; i++) {
        uint8_t *id = NULL;
        size_t len = 0;
        char hex[2 * 64 + 1] = "none";
        int w;
        if (tok_get_attr(t, h, o[i], CKA_ID, &id, &len, NULL) == 0 && id && len > 0)
            hex_lower(id, len < 64 ? len : 64, 0, hex, sizeof hex);
        free(id);
        w = snprintf(out + used, size - used, "%s%s", i ? ", " : "", hex);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
}

int tok_find_one(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                 const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *o, struct itl_error *err)
{
    CK_ATTRIBUTE tmpl[3];
    CK_ULONG n = 0;
    CK_OBJECT_HANDLE *found;
    size_t count;

    tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
    if (label)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    if (id)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
    if (tok_find_objects(t, h, tmpl, n, &found, &count, err) != 0)
        return -1;
    if (count > 1) {
        char ids[400];
        list_ids(t, h, found, count, ids, sizeof ids);
        free(found);
        return err_set(err, ITL_E_AMBIGUOUS,
                       "%zu %ss %s%s%s on token '%s' (CKA_ID %s): refusing to guess; give them "
                       "distinct labels, or choose one by id (config keys.<role>.id)",
                       count, class_name(cls), label ? "labelled '" : "with the same CKA_ID",
                       label ? label : "", label ? "'" : "", t->label_str, ids);
    }
    if (count == 0) {
        free(found);
        return err_set(err, ITL_E_NO_KEY, "no %s %s%s%s%s on token '%s'%s", class_name(cls),
                       label ? "labelled '" : "with the key's CKA_ID", label ? label : "",
                       label ? "'" : "", label && id ? " with the configured CKA_ID" : "",
                       t->label_str,
                       t->logged_in ? "" : " (not logged in: private objects are hidden)");
    }
    *o = found[0];
    free(found);
    return 0;
}
