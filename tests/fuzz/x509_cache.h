/* SPDX-License-Identifier: MIT */
/*
 * Fuzz harness only: d2i_X509 remembered per certificate. Every certificate the format layer
 * reads goes through cert_parse() -> d2i_X509(NULL, ...), and OpenSSL 3 decodes the public key
 * through its provider decoders there: ~0.5 ms a certificate under ASan, so a 10 KB ITL cost
 * 10 ms an execution and fuzz_tlv ran ~2,000 execs/s (i2d_PublicKey, the record check's
 * comparison with PUBLICKEY, encodes through the providers too). The fuzzer mutates one place at a
 * time: most certificates of an input are byte-identical to ones already parsed. This definition
 * takes precedence over libcrypto's (the executable's symbol wins) and hands out another
 * reference to the X509 parsed before; new bytes still go to OpenSSL. The format layer only
 * reads the X509 (no X509_set_*), so a shared object behaves exactly like a fresh one.
 * Include it in exactly one translation unit of a target.
 */
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#define X509_CACHE_SLOTS 64

static struct {
    unsigned char *der; /* the input bytes, `len` of them: the whole key */
    long len, used;     /* what d2i consumed */
    X509 *x;
    unsigned char *pub; /* i2d_PublicKey of its key, once asked for */
    int pub_len;
} x509_cache[X509_CACHE_SLOTS];
static unsigned x509_cache_next;

X509 *d2i_X509(X509 **a, const unsigned char **pp, long length)
{
    static X509 *(*real)(X509 **, const unsigned char **, long);
    const unsigned char *start = *pp;
    unsigned slot;
    X509 *x;

    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "d2i_X509");
    if (a || length <= 0)
        return real(a, pp, length);
    for (unsigned i = 0; i < X509_CACHE_SLOTS; i++)
        if (x509_cache[i].x && x509_cache[i].len == length &&
            memcmp(x509_cache[i].der, start, (size_t)length) == 0 && X509_up_ref(x509_cache[i].x)) {
            *pp = start + x509_cache[i].used;
            return x509_cache[i].x;
        }
    x = real(NULL, pp, length);
    if (!x)
        return NULL;
    slot = x509_cache_next++ % X509_CACHE_SLOTS;
    X509_free(x509_cache[slot].x);
    free(x509_cache[slot].der);
    OPENSSL_free(x509_cache[slot].pub);
    x509_cache[slot].x = NULL;
    x509_cache[slot].pub = NULL;
    x509_cache[slot].der = malloc((size_t)length);
    if (x509_cache[slot].der && X509_up_ref(x)) {
        memcpy(x509_cache[slot].der, start, (size_t)length);
        x509_cache[slot].len = length;
        x509_cache[slot].used = *pp - start;
        x509_cache[slot].x = x;
    }
    return x;
}

/* The key of a cached X509 stays alive (the cache holds a reference), so its address names it. */
int i2d_PublicKey(const EVP_PKEY *pk, unsigned char **pp)
{
    static int (*real)(const EVP_PKEY *, unsigned char **);
    unsigned i;

    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "i2d_PublicKey");
    for (i = 0; i < X509_CACHE_SLOTS; i++)
        if (x509_cache[i].x && X509_get0_pubkey(x509_cache[i].x) == pk)
            break;
    if (i == X509_CACHE_SLOTS || !pp)
        return real(pk, pp);
    if (!x509_cache[i].pub) {
        unsigned char *der = NULL;
        int n = real(pk, &der);
        if (n <= 0)
            return n;
        x509_cache[i].pub = der;
        x509_cache[i].pub_len = n;
    }
    if (!*pp) {
        *pp = OPENSSL_malloc((size_t)x509_cache[i].pub_len);
        if (!*pp)
            return -1;
        memcpy(*pp, x509_cache[i].pub, (size_t)x509_cache[i].pub_len);
    } else {
        memcpy(*pp, x509_cache[i].pub, (size_t)x509_cache[i].pub_len);
        *pp += x509_cache[i].pub_len;
    }
    return x509_cache[i].pub_len;
}
