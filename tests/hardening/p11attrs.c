/* SPDX-License-Identifier: MIT */
/*
 * p11attrs MODULE TOKEN-LABEL: for every private key on the token, what C_GetAttributeValue
 * says about it, one line per key:
 *
 *   LABEL sensitive=1 extractable=0 private_exponent=CKR_ATTRIBUTE_SENSITIVE prime_1=CKR_...
 *
 * The PIN comes from the environment (P11PIN), never from argv. Independent of itl-sign's
 * token layer on purpose: tests/integration/test_secrets.sh asks the module itself.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static const char *rv_text(CK_RV rv)
{
    static char buf[32];

    switch (rv) {
    case CKR_OK:
        return "CKR_OK";
    case CKR_ATTRIBUTE_SENSITIVE:
        return "CKR_ATTRIBUTE_SENSITIVE";
    case CKR_ATTRIBUTE_TYPE_INVALID:
        return "CKR_ATTRIBUTE_TYPE_INVALID";
    default:
        snprintf(buf, sizeof buf, "0x%lx", (unsigned long)rv);
        return buf;
    }
}

static int die(const char *what, CK_RV rv)
{
    fprintf(stderr, "p11attrs: %s: %s\n", what, rv_text(rv));
    return 1;
}

/* A token whose label (blank padded to 32) is LABEL, or -1. */
static int find_slot(CK_FUNCTION_LIST *f, const char *label, CK_SLOT_ID *out)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    char want[32];
    size_t len = strlen(label);

    if (len > sizeof want || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return -1;
    memset(want, ' ', sizeof want);
    memcpy(want, label, len);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, want, 32) == 0) {
            *out = slots[i];
            return 0;
        }
    }
    return -1;
}

static void report_key(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    char label[129] = "";
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
    CK_ATTRIBUTE flags[] = {
        {CKA_LABEL, label, sizeof label - 1},
        {CKA_SENSITIVE, &sensitive, sizeof sensitive},
        {CKA_EXTRACTABLE, &extractable, sizeof extractable},
    };
    CK_ATTRIBUTE secret_d = {CKA_PRIVATE_EXPONENT, NULL, 0};
    CK_ATTRIBUTE secret_p = {CKA_PRIME_1, NULL, 0};
    CK_RV rv = f->C_GetAttributeValue(s, key, flags, 3);

    if (rv != CKR_OK) {
        printf("? attributes: %s\n", rv_text(rv));
        return;
    }
    label[flags[0].ulValueLen < sizeof label ? flags[0].ulValueLen : 0] = '\0';
    /* A length query is enough: a sensitive attribute must refuse even that. */
    CK_RV rv_d = f->C_GetAttributeValue(s, key, &secret_d, 1);
    CK_RV rv_p = f->C_GetAttributeValue(s, key, &secret_p, 1);
    printf("%s sensitive=%d extractable=%d private_exponent=%s", label, sensitive == CK_TRUE,
           extractable == CK_TRUE, rv_text(rv_d));
    printf(" prime_1=%s\n", rv_text(rv_p));
}

int main(int argc, char **argv)
{
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl = {CKA_CLASS, &cls, sizeof cls};
    CK_OBJECT_HANDLE keys[256];
    CK_ULONG n = 0;
    const char *pin = getenv("P11PIN");
    void *lib;
    CK_RV rv;

    if (argc != 3 || pin == NULL) {
        fprintf(stderr, "usage: P11PIN=... p11attrs MODULE TOKEN-LABEL\n");
        return 2;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "p11attrs: %s\n", dlerror());
        return 1;
    }
    *(void **)&get_list = dlsym(lib, "C_GetFunctionList");
    if (get_list == NULL || get_list(&f) != CKR_OK)
        return die("C_GetFunctionList", CKR_GENERAL_ERROR);
    if ((rv = f->C_Initialize(NULL)) != CKR_OK)
        return die("C_Initialize", rv);
    if (find_slot(f, argv[2], &slot) != 0)
        return die("no token with that label", CKR_TOKEN_NOT_PRESENT);
    if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK)
        return die("C_OpenSession", rv);
    if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK)
        return die("C_Login", rv);
    if ((rv = f->C_FindObjectsInit(s, &tmpl, 1)) != CKR_OK ||
        (rv = f->C_FindObjects(s, keys, 256, &n)) != CKR_OK ||
        (rv = f->C_FindObjectsFinal(s)) != CKR_OK)
        return die("finding the private keys", rv);
    for (CK_ULONG i = 0; i < n; i++)
        report_key(f, s, keys[i]);
    f->C_Logout(s);
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    return n > 0 ? 0 : die("no private key on the token", CKR_OK);
}
