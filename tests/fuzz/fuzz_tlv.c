/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the trust-file parser (.tlv, .sgn, .enc.sgn) under every hint, and what
 * walks a parsed file without X.509: signed bytes and digest, signer lookup, and the output-kind
 * checks a signer makes before it releases a file (itl_kind_of, itl_name_kind, itl_check_name,
 * itl_check_kind). No certificate is parsed here: OpenSSL's decoders cost ~0.5 ms a certificate
 * and made this target ~2,000 execs/s; the certificate consumers are fuzz_tlv_x509.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/itl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum itl_kind kinds[] = {ITL_KIND_AUTO, ITL_KIND_TLV, ITL_KIND_SGN, ITL_KIND_ENC_SGN};

static void walk(const struct itl_file *f)
{
    struct itl_error err;
    uint8_t md[64], *bytes = NULL;
    size_t md_len, n;

    itl_signed_digest(f, md, &md_len, &err);
    if (itl_signed_bytes(f, &bytes, &n, &err) == 0)
        free(bytes);
    itl_find_signer_record(f);
    /* the distinguished-name reader of the phone model, on every name the file holds */
    for (size_t i = 0; i < f->n_records; i++) {
        itl_same_dn(f->records[i].issuer, f->hdr.signer_issuer);
        itl_same_dn(f->records[i].subject, f->records[i].issuer);
    }
}

/* The header's FILENAME as the service judges a client's --filename (a C string). */
static void check_filename(const struct itl_file *f)
{
    char name[ITL_MAX_NAME + 2];
    size_t len = f->hdr.filename.len < sizeof name - 1 ? f->hdr.filename.len : sizeof name - 1;
    enum itl_kind by_name;

    memcpy(name, f->hdr.filename.ptr, len);
    name[len] = 0;
    itl_name_kind((const char *)f->hdr.filename.ptr, f->hdr.filename.len);
    by_name = itl_name_kind(name, strlen(name));
    /* The kind the name says and one other (by the name's length): fit for at most the one. */
    for (int i = 0; i < 2; i++) {
        enum itl_kind k = i == 0 && by_name != ITL_KIND_AUTO ? by_name : kinds[1 + (len + i) % 3];
        struct itl_error err = {0};
        if (itl_check_name(name, k, (int)(len & 1), &err) == 0) {
            if (by_name != k)
                abort(); /* a name fit for a kind says that kind */
        } else if (err.msg[0] == 0) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes: any read past it is caught by ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    struct itl_error err = {0};
    enum itl_kind want, detected = ITL_KIND_AUTO;
    int named = 0;

    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    /* Every hint; one that names the kind ITL_KIND_AUTO detected takes the same path again,
     * so it is skipped. */
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct itl_file f;
        if (k > 0 && kinds[k] == detected)
            continue;
        err.msg[0] = 0;
        if (itl_parse(copy, size, kinds[k], &f, &err) == 0) {
            if (k == 0)
                detected = f.kind;
            walk(&f);
            if (!named++ && f.hdr.filename.ptr)
                check_filename(&f);
        } else if (err.msg[0] == 0) {
            abort(); /* every failure explains itself */
        }
        itl_file_free(&f);
    }
    /* The output-kind check a signer makes before release: a file passes for at most one kind,
     * the one itl_kind_of sees (never an ITL as a config, or the reverse). One kind an input,
     * by its length, keeps the parses per input few (itl_check_kind runs itl_kind_of first). */
    want = kinds[1 + size % 3];
    err.msg[0] = 0;
    if (itl_check_kind(copy, size, want, &err) == 0) {
        if (itl_kind_of(copy, size) != want)
            abort();
    } else if (err.msg[0] == 0) {
        abort();
    }
    free(copy);
    return 0;
}
