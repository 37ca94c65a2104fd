/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the trust-file parser (.tlv, .sgn, .enc.sgn) and everything that walks a
 * parsed file: signed bytes and digest, signer lookup, self-verification, record checks.
 * Whatever parses must also re-sign's header walk safely (with a signer that never signs).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/itl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_sign(void *ctx, int digest, const uint8_t *msg, size_t msg_len, const uint8_t *md,
                   size_t md_len, uint8_t *sig, size_t *sig_len, struct itl_err *err)
{
    (void)ctx, (void)digest, (void)msg, (void)msg_len, (void)md, (void)md_len, (void)sig;
    (void)sig_len;
    memcpy(err->msg, "no", 3);
    return -1;
}

static void walk(const struct itl_file *f)
{
    struct itl_err err;
    uint8_t md[64], *bytes = NULL, *out = NULL;
    size_t md_len, n, out_len;
    long idx;

    itl_signed_digest(f, md, &md_len, &err);
    if (itl_signed_bytes(f, &bytes, &n, &err) == 0)
        free(bytes);
    itl_find_signer_record(f);
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
    static const enum itl_kind kinds[] = {ITL_KIND_AUTO, ITL_KIND_TLV, ITL_KIND_SGN,
                                          ITL_KIND_ENC_SGN};
    /* A copy of exactly `size` bytes: any read past it is caught by ASan. */
    uint8_t *copy = malloc(size ? size : 1);

    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct itl_file f;
        struct itl_err err = {{0}};
        if (itl_parse(copy, size, kinds[k], &f, &err) == 0)
            walk(&f);
        else if (err.msg[0] == 0)
            abort(); /* every failure explains itself */
        itl_file_free(&f);
    }
    free(copy);
    return 0;
}
