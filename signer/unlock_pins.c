/* SPDX-License-Identifier: MIT */
/*
 * The PINs a token rejected at an unlock (unlock.c), so that none is sent to it again: pkcs11/
 * never resends a rejected login PIN (tok_do_login), but each unlock is a new login, so the
 * engine remembers them. Only a salted SHA-256 is kept (the salt random, of this process, in
 * memory only), the last ENG_REJECTED_MAX of them.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pkcs11/token.h"
#include "signer/internal.h"

int eng_rejected_init(struct eng_rejected_pins *p, struct itl_error *err)
{
    memset(p, 0, sizeof *p);
    if (RAND_bytes(p->salt, sizeof p->salt) != 1)
        return err_set(err, ITL_E_INTERNAL, "no random bytes for the rejected-PIN memory");
    pthread_mutex_init(&p->mu, NULL);
    return 0;
}

void eng_rejected_free(struct eng_rejected_pins *p)
{
    pthread_mutex_destroy(&p->mu);
    OPENSSL_cleanse(p, sizeof *p);
}

void eng_rejected_digest(const struct eng_rejected_pins *p, const struct tok_pin *pin,
                         uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    memset(out, 0, 32);
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(c, p->salt, sizeof p->salt) == 1 &&
        EVP_DigestUpdate(c, pin->bytes, pin->len) == 1)
        EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
}

int eng_rejected_has(struct eng_rejected_pins *p, const uint8_t digest[32])
{
    int found = 0;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n && !found; i++)
        found = CRYPTO_memcmp(p->digests[i], digest, 32) == 0;
    pthread_mutex_unlock(&p->mu);
    return found;
}

void eng_rejected_add(struct eng_rejected_pins *p, const uint8_t digest[32])
{
    pthread_mutex_lock(&p->mu);
    memcpy(p->digests[p->next], digest, 32);
    p->next = (p->next + 1) % ENG_REJECTED_MAX;
    if (p->n < ENG_REJECTED_MAX)
        p->n++;
    pthread_mutex_unlock(&p->mu);
}
