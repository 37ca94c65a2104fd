/* SPDX-License-Identifier: MIT */
/*
 * The few raw PKCS#11 steps the reference programs (ceiling.c, oneshot.c) share: load a module
 * with p11-kit, find the one token a URI names (by label, never by slot number), log in with a
 * PIN read from a file, find a private key by label, build a SHA-1 DigestInfo.
 *
 * Deliberately not the token layer (pkcs11/): these programs measure what the token allows
 * without any of our code, so their figures are the yardstick for ours. Every failure exits
 * with a message naming the step and the CKR value.
 */
#ifndef ITL_BENCH_P11_H
#define ITL_BENCH_P11_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

/* SHA-1 DigestInfo prefix (RFC 8017 9.2 note 1): what CKM_RSA_PKCS signs, as our code does. */
static const unsigned char bench_sha1_prefix[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                                  0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
#define BENCH_DIGEST_INFO_LEN (sizeof bench_sha1_prefix + 20)

static inline void bench_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static inline void bench_check(CK_RV rv, const char *what)
{
    if (rv != CKR_OK)
        bench_die("%s: CKR 0x%lx (%s)", what, (unsigned long)rv, p11_kit_strerror(rv));
}

static inline double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline CK_FUNCTION_LIST *bench_load_module(const char *path)
{
    CK_FUNCTION_LIST *m = p11_kit_module_load(path, 0);

    if (!m)
        bench_die("cannot load module %s: %s", path, p11_kit_message());
    bench_check(p11_kit_module_initialize(m), "C_Initialize");
    return m;
}

static inline void bench_unload_module(CK_FUNCTION_LIST *m)
{
    p11_kit_module_finalize(m);
    p11_kit_module_release(m);
}

/* The one slot whose token matches `uri` ("pkcs11:token=LABEL"). */
static inline CK_SLOT_ID bench_find_token(CK_FUNCTION_LIST *m, const char *uri_text)
{
    P11KitUri *uri = p11_kit_uri_new();
    CK_SLOT_ID slots[64], found = 0;
    CK_ULONG n = 64;
    int matches = 0;

    if (p11_kit_uri_parse(uri_text, P11_KIT_URI_FOR_TOKEN, uri) != P11_KIT_URI_OK)
        bench_die("'%s' is not a PKCS#11 token URI", uri_text);
    bench_check(m->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList");
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (m->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if (p11_kit_uri_match_token_info(uri, &info)) {
            found = slots[i];
            matches++;
        }
    }
    p11_kit_uri_free(uri);
    if (matches != 1)
        bench_die("%d tokens match %s (want exactly one)", matches, uri_text);
    return found;
}

/* The PIN file's bytes without trailing CR/LF; the PIN never goes through argv. */
static inline void bench_login(CK_FUNCTION_LIST *m, CK_SESSION_HANDLE s, const char *pin_file)
{
    unsigned char pin[256];
    size_t len;
    FILE *f = fopen(pin_file, "rb");

    if (!f)
        bench_die("cannot open PIN file %s", pin_file);
    len = fread(pin, 1, sizeof pin, f);
    fclose(f);
    while (len > 0 && (pin[len - 1] == '\n' || pin[len - 1] == '\r'))
        len--;
    bench_check(m->C_Login(s, CKU_USER, pin, len), "C_Login");
    OPENSSL_cleanse(pin, sizeof pin);
}

static inline CK_OBJECT_HANDLE bench_find_key(CK_FUNCTION_LIST *m, CK_SESSION_HANDLE s,
                                              const char *label)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE keys[2];
    CK_ULONG n = 0;

    bench_check(m->C_FindObjectsInit(s, tmpl, 2), "C_FindObjectsInit");
    bench_check(m->C_FindObjects(s, keys, 2, &n), "C_FindObjects");
    bench_check(m->C_FindObjectsFinal(s), "C_FindObjectsFinal");
    if (n != 1)
        bench_die("%lu private keys labelled '%s' (want exactly one)", (unsigned long)n, label);
    return keys[0];
}

static inline void bench_digest_info(const void *data, size_t len,
                                     unsigned char out[BENCH_DIGEST_INFO_LEN])
{
    memcpy(out, bench_sha1_prefix, sizeof bench_sha1_prefix);
    if (!EVP_Digest(data, len, out + sizeof bench_sha1_prefix, NULL, EVP_sha1(), NULL))
        bench_die("SHA-1 failed");
}

#endif
