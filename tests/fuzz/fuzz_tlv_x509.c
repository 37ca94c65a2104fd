/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what reads the certificates of a parsed trust file: self-verification,
 * record checks (PUBLICKEY, SIGNATURE, SERIALNUMBER against the certificate), role lookup and
 * re-signing's header walk (with a signer that never signs). The parser itself under every
 * hint is fuzz_tlv; here the file is parsed once, as a reader would (ITL_KIND_AUTO).
 * OpenSSL's provider decoders, not our code, were 90 % of the time (~0.5 ms a certificate
 * under ASan): certificates are parsed through a cache (x509_cache.h), and the mutator below
 * changes a certificate's bytes in one input of 32 only, the fields around them otherwise, so
 * most inputs hit the cache. Mutated certificates still reach OpenSSL and our checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/itl.h"
#include "tests/fuzz/x509_cache.h"

#define X509_FUZZ_MAX_LEN 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static int no_sign(void *ctx, int digest, const uint8_t *msg, size_t msg_len, const uint8_t *md,
                   size_t md_len, uint8_t *sig, size_t *sig_len, struct itl_error *err)
{
    (void)ctx, (void)digest, (void)msg, (void)msg_len, (void)md, (void)md_len, (void)sig;
    (void)sig_len;
    memcpy(err->msg, "no", 3);
    return -1;
}

static void walk(const struct itl_file *f)
{
    struct itl_error err;
    uint8_t *out = NULL;
    size_t out_len;
    long idx;

    itl_verify_self(f, &idx, &err);
    for (size_t i = 0; i < f->n_records; i++) {
        const struct itl_record *r = &f->records[i];
        itl_record_check(r, &err);
        if (r->certificate.ptr) {
            struct itl_signer s = {.cert_der = r->certificate.ptr,
                                   .cert_len = r->certificate.len,
                                   .digest = 1,
                                   .sign = no_sign};
            itl_has_cert_with_role(f, r->certificate.ptr, r->certificate.len, r->function);
            if (itl_resign_tlv(f, i, 0, &s, &out, &out_len, &err) == 0)
                abort(); /* the signer refuses: re-signing cannot succeed */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes: any read past it is caught by ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    struct itl_file f;
    struct itl_error err = {0};

    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    if (itl_parse(copy, size, ITL_KIND_AUTO, &f, &err) == 0)
        walk(&f);
    itl_file_free(&f);
    free(copy);
    return 0;
}

/* Standalone replays (standalone.c) link no libFuzzer: the mutator is never called there. */
__attribute__((weak)) size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size)
{
    (void)data, (void)max_size;
    return size;
}

/* Mutates one stretch between certificates (headers, record fields, lengths), or in one call
 * of 32, or when nothing parses, anywhere. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    struct itl_file f;
    struct itl_error err;
    size_t from = 0, to = size, total = 0, pick, at = 0, tail, n;

    /* The certificate consumers need no larger files than CUCM's (the sample ITL is 10 KB);
     * the parser's size limits are fuzz_tlv's. Small inputs keep the target fast. */
    if (max_size > X509_FUZZ_MAX_LEN && size <= X509_FUZZ_MAX_LEN)
        max_size = X509_FUZZ_MAX_LEN;
    if (seed % 32 == 0 || itl_parse(data, size, ITL_KIND_AUTO, &f, &err) != 0)
        return LLVMFuzzerMutate(data, size, max_size);
    /* The gaps between the certificates, by length: pick one byte of them, take its gap. */
    for (size_t i = 0; i < f.n_records; i++)
        total += f.records[i].certificate.len;
    total = size - total;
    pick = total ? (seed / 32) % total : 0;
    for (size_t i = 0; i <= f.n_records; i++) {
        const struct itl_bytes *c = i < f.n_records ? &f.records[i].certificate : NULL;
        size_t end = c && c->ptr ? (size_t)(c->ptr - data) : size;
        if (c && !c->ptr)
            continue;
        if (pick < end - at) {
            from = at, to = end;
            break;
        }
        pick -= end - at;
        at = c ? end + c->len : size;
    }
    itl_file_free(&f);
    if (to <= from)
        return LLVMFuzzerMutate(data, size, max_size);
    /* Mutate the gap in place: the bytes after it move with its new length. */
    tail = size - to;
    {
        uint8_t *rest = malloc(tail ? tail : 1);
        if (!rest)
            return size;
        memcpy(rest, data + to, tail);
        n = LLVMFuzzerMutate(data + from, to - from, max_size - from - tail);
        memcpy(data + from + n, rest, tail);
        free(rest);
    }
    return from + n + tail;
}
