/* SPDX-License-Identifier: MIT */
/*
 * What `key list` says about a key beyond its attributes: the pkcs11: URI of each of its objects
 * (formatted by p11-kit, so that what a user pastes into `openssl -engine pkcs11` or p11tool
 * is escaped as RFC 7512 wants), and where the key came from. A token's CKA_ALWAYS_SENSITIVE
 * is its own claim; a key that `key import` put there existed outside the token, and its CKA_ID
 * (the SHA-1 of the public key) says so whatever the token claims.
 */
#include "pkcs11/internal.h"

#include <stdlib.h>
#include <string.h>

void tok_key_describe_origin(struct tok_key_info *k)
{
    if (k->has_private && k->id_is_pubkey_sha1) {
        k->origin = TOK_ORIGIN_IMPORTED;
        k->origin_basis = TOK_BASIS_ID_RULE;
    } else if (k->has_private && k->local >= 0) {
        k->origin = k->local ? TOK_ORIGIN_GENERATED : TOK_ORIGIN_IMPORTED;
        k->origin_basis = TOK_BASIS_CKA_LOCAL;
    } else {
        k->origin = TOK_ORIGIN_UNKNOWN;
        k->origin_basis = TOK_BASIS_NONE;
    }
}

/* CK_TOKEN_INFO strings are blank-padded; tpm2-pkcs11 1.9 pads its model with NULs ("SW   TPM"
 * then 8 NULs), which p11-kit would format as %00. The field ends at its first NUL: blanks from
 * there on. */
static void blank_from_nul(CK_UTF8CHAR *field, size_t size)
{
    CK_UTF8CHAR *nul = memchr(field, '\0', size);

    if (nul != NULL)
        memset(nul, ' ', size - (size_t)(nul - field));
}

void tok_blank_pad_token_info(CK_TOKEN_INFO *info)
{
    blank_from_nul(info->label, sizeof info->label);
    blank_from_nul(info->manufacturerID, sizeof info->manufacturerID);
    blank_from_nul(info->model, sizeof info->model);
    blank_from_nul((CK_UTF8CHAR *)info->serialNumber, sizeof info->serialNumber);
}

/* Removes the component NAME ("model") from the formatted URI TEXT (values are percent-encoded,
 * so ';' only separates components). */
static void drop_component(char *text, const char *name)
{
    size_t n = strlen(name);
    char *p = text + strlen("pkcs11:");

    while (*p != '\0' && *p != '?') {
        char *end = p + strcspn(p, ";?");
        if ((size_t)(end - p) > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            if (*end == ';')
                end++;
            else if (p > text + strlen("pkcs11:"))
                p--; /* the last component: drop the ';' before it */
            memmove(p, end, strlen(end) + 1);
            return;
        }
        p = *end == ';' ? end + 1 : end;
    }
}

static void format_uri(const CK_TOKEN_INFO *ti, const char *label, const uint8_t *id, size_t id_len,
                       CK_OBJECT_CLASS cls, char *out)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_ATTRIBUTE a[3] = {{CKA_CLASS, &cls, sizeof cls},
                         {CKA_ID, (void *)id, id_len},
                         {CKA_LABEL, (void *)label, strlen(label)}};
    CK_TOKEN_INFO *info;
    char *text = NULL;

    out[0] = '\0';
    if (u == NULL)
        return;
    info = p11_kit_uri_get_token_info(u);
    *info = *ti;
    tok_blank_pad_token_info(info);
    for (size_t i = 0; i < 3; i++)
        if (i != 2 || label[0] != '\0') /* a label-less object: no object= */
            p11_kit_uri_set_attribute(u, &a[i]);
    if (p11_kit_uri_format(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &text) == P11_KIT_URI_OK &&
        strlen(text) < TOK_URI_MAX) {
        /* A NUL-padded field would match only after our own blank-padding (find.c): p11tool
         * and libp11 compare it as the token pads it. The other fields name the token. */
        if (memchr(ti->model, '\0', sizeof ti->model))
            drop_component(text, "model");
        if (memchr(ti->manufacturerID, '\0', sizeof ti->manufacturerID))
            drop_component(text, "manufacturer");
        if (memchr(ti->serialNumber, '\0', sizeof ti->serialNumber))
            drop_component(text, "serial");
        memcpy(out, text, strlen(text) + 1);
    }
    free(text);
    p11_kit_uri_free(u);
}

void tok_key_fill_uris(const CK_TOKEN_INFO *ti, struct tok_key_info *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct tok_key_info *k = &keys[i];
        if (k->has_private)
            format_uri(ti, k->label, k->id, k->id_len, CKO_PRIVATE_KEY, k->uri_private);
        if (k->has_public)
            format_uri(ti, k->public_label, k->id, k->id_len, CKO_PUBLIC_KEY, k->uri_public);
        if (k->has_cert)
            format_uri(ti, k->cert_label, k->id, k->id_len, CKO_CERTIFICATE, k->uri_cert);
    }
}
