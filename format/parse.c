/* SPDX-License-Identifier: MIT */
/*
 * format: the parser. One pass over the header (a TLV walk that steps into containers and
 * checks each nested TLV against its parent's end), then the records (records.c) or the
 * payload. Every length is checked before it is used; every error names the offset and the
 * field.
 */
#include "format/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 4

struct frame {
    uint8_t tag;
    size_t end;
};

struct hdr_walk {
    const uint8_t *d;
    size_t len; /* file length */
    size_t hl;  /* header length */
    struct itl_header *h;
    uint32_t seen; /* one bit per known tag (all below 32) */
    struct frame stack[MAX_DEPTH];
    int depth;
    struct itl_error *err;
};

static int is_container(uint8_t tag)
{
    return tag == HDR_SIGNER_INFO || tag == HDR_SIGNATURE_INFO || tag == HDR_ALGO_INFO ||
           tag == HDR_ENC_INFO || tag == HDR_ENC_IV_INFO || tag == HDR_ENC_KEY_INFO;
}

static int is_known_header_tag(uint8_t tag)
{
    return tag >= HDR_VERSION && tag <= HDR_SIGNER_VERSION && tag != HDR_PADDING;
}

/* "the header (388 bytes)" or "its SIGNERID container (which ends at 0x59)". */
static void where(const struct hdr_walk *w, char *out, size_t size)
{
    if (w->depth > 0) {
        const struct frame *f = &w->stack[w->depth - 1];
        snprintf(out, size, "its %s container (which ends at 0x%zx)", itl_header_tag_name(f->tag),
                 f->end);
    } else {
        snprintf(out, size, "the header (%zu bytes)", w->hl);
    }
}

static int want_len(struct hdr_walk *w, uint8_t tag, size_t at, size_t n, size_t want)
{
    if (n == want)
        return 0;
    err_set(w->err, ITL_E_INPUT, "offset 0x%zx: %s has length %zu, expected %zu", at,
            itl_header_tag_name(tag), n, want);
    return -1;
}

static int not_empty(struct hdr_walk *w, uint8_t tag, size_t at, size_t n)
{
    if (n > 0)
        return 0;
    err_set(w->err, ITL_E_INPUT, "offset 0x%zx: %s is empty", at, itl_header_tag_name(tag));
    return -1;
}

static int add_tlv(struct hdr_walk *w, uint8_t tag, size_t at, const uint8_t *v, size_t n)
{
    struct itl_header *h = w->h;

    if (h->n_tlvs == ITL_MAX_HEADER_TLVS) {
        err_set(w->err, ITL_E_INPUT, "offset 0x%zx: the header has more than %d TLVs", at,
                ITL_MAX_HEADER_TLVS);
        return -1;
    }
    h->tlvs[h->n_tlvs++] = (struct itl_tlv){tag, (uint8_t)w->depth, at, bytes_view(v, n)};
    return 0;
}

/* One value TLV (not a container) of the header. */
static int header_field(struct hdr_walk *w, uint8_t tag, size_t at, const uint8_t *v, size_t n)
{
    struct itl_header *h = w->h;
    struct itl_enc_info *e = &h->enc;

    if (tag >= HDR_ENC_INFO && tag <= HDR_ENC_HASH)
        e->present = 1;
    switch (tag) {
    case HDR_SIGNER_NAME:
        h->signer_name = string_view(v, n);
        return 0;
    case HDR_SERIAL: /* empty is serial number 0 as certutils writes it (minimal big-endian) */
        h->signer_serial = bytes_view(v, n);
        return 0;
    case HDR_CA_NAME:
        h->signer_issuer = string_view(v, n);
        if (!(w->seen & (1u << HDR_SERIAL)))
            h->signer_order = ITL_ORDER_NAME_ISSUER_SERIAL;
        return 0;
    case HDR_DIGEST:
        if (want_len(w, tag, at, n, 1))
            return -1;
        h->digest = v[0];
        return 0;
    case HDR_SIG_ALGORITHM:
        if (want_len(w, tag, at, n, 1))
            return -1;
        h->sig_algorithm = v[0];
        return 0;
    case HDR_SIG_MODULUS:
        if (want_len(w, tag, at, n, 1))
            return -1;
        h->sig_modulus = v[0];
        return 0;
    case HDR_SIGNATURE:
        if (not_empty(w, tag, at, n))
            return -1;
        if (w->depth > 0) { /* the signed bytes are the file without it: it must stand alone */
            err_set(w->err, ITL_E_INPUT, "offset 0x%zx: SIGNATURE is inside the %s container", at,
                    itl_header_tag_name(w->stack[w->depth - 1].tag));
            return -1;
        }
        h->sig_offset = at;
        h->signature = bytes_view(v, n);
        return 0;
    case HDR_FILENAME:
        h->filename = string_view(v, n);
        return 0;
    case HDR_TIMESTAMP:
        if (want_len(w, tag, at, n, 4))
            return -1;
        h->has_timestamp = 1;
        h->timestamp = load_u32(v);
        return 0;
    case HDR_SIGNER_VERSION:
        if (want_len(w, tag, at, n, 2))
            return -1;
        h->has_signer_version = 1;
        memcpy(h->signer_version, v, 2);
        return 0;
    case HDR_ENC_UNKNOWN1:
    case HDR_ENC_UNKNOWN2:
    case HDR_ENC_KEY_ALGORITHM:
    case HDR_ENC_HASH_ALGORITHM:
        if (want_len(w, tag, at, n, 1))
            return -1;
        if (tag == HDR_ENC_UNKNOWN1)
            e->unknown1 = v[0];
        else if (tag == HDR_ENC_UNKNOWN2)
            e->unknown2 = v[0];
        else if (tag == HDR_ENC_KEY_ALGORITHM)
            e->key_algorithm = v[0];
        else
            e->hash_algorithm = v[0];
        return 0;
    case HDR_ENC_IV:
        if (want_len(w, tag, at, n, 16))
            return -1;
        e->iv = bytes_view(v, n);
        return 0;
    case HDR_ENC_PADDING:
    case HDR_ENC_KEY_SIZE:
        if (want_len(w, tag, at, n, 2))
            return -1;
        if (tag == HDR_ENC_PADDING)
            e->padding = load_u16(v);
        else
            e->key_size_bits = load_u16(v);
        return 0;
    case HDR_ENC_KEY:
        if (not_empty(w, tag, at, n))
            return -1;
        e->wrapped_key = bytes_view(v, n);
        return 0;
    case HDR_ENC_HASH:
        if (not_empty(w, tag, at, n))
            return -1;
        e->hash = bytes_view(v, n);
        return 0;
    default:
        if (h->n_extra == ITL_MAX_EXTRA_TLVS) {
            err_set(w->err, ITL_E_INPUT, "offset 0x%zx: more than %d unknown tags in the header",
                    at, ITL_MAX_EXTRA_TLVS);
            return -1;
        }
        h->extra[h->n_extra++] = (struct itl_tlv){tag, (uint8_t)w->depth, at, bytes_view(v, n)};
        return 0;
    }
}

/* VERSION and HEADERLENGTH open every file, in this order (CUCM and certutils alike). */
static int header_start(struct hdr_walk *w)
{
    const uint8_t *d = w->d;

    if (w->len < 10) {
        err_set(w->err, ITL_E_INPUT,
                "the file is %zu bytes, too short for a header (VERSION and HEADERLENGTH "
                "alone take 10 bytes)",
                w->len);
        return -1;
    }
    if (d[0] != HDR_VERSION) {
        err_set(w->err, ITL_E_INPUT,
                "offset 0x0: expected VERSION (tag 1), found tag %u: not a Cisco ITL/CTL or "
                "signed file",
                d[0]);
        return -1;
    }
    if (want_len(w, HDR_VERSION, 0, load_u16(d + 1), 2))
        return -1;
    if (d[5] != HDR_LENGTH) {
        err_set(w->err, ITL_E_INPUT, "offset 0x5: expected HEADERLENGTH (tag 2), found tag %u",
                d[5]);
        return -1;
    }
    if (want_len(w, HDR_LENGTH, 5, load_u16(d + 6), 2))
        return -1;
    w->h->version_major = d[3];
    w->h->version_minor = d[4];
    w->h->header_length = load_u16(d + 8);
    w->hl = w->h->header_length;
    if (w->hl > w->len) {
        err_set(w->err, ITL_E_INPUT,
                "offset 0x5: HEADERLENGTH %zu runs past the end of the file (%zu bytes)", w->hl,
                w->len);
        return -1;
    }
    if (w->hl < 10) {
        err_set(w->err, ITL_E_INPUT,
                "offset 0x5: HEADERLENGTH %zu is shorter than VERSION and HEADERLENGTH "
                "themselves (10 bytes)",
                w->hl);
        return -1;
    }
    w->seen = (1u << HDR_VERSION) | (1u << HDR_LENGTH);
    if (add_tlv(w, HDR_VERSION, 0, d + 3, 2) || add_tlv(w, HDR_LENGTH, 5, d + 8, 2))
        return -1;
    return 0;
}

static int walk_header(struct hdr_walk *w)
{
    size_t pos = 10;
    char at_end[96];

    if (header_start(w) != 0)
        return -1;
    while (pos < w->hl) {
        struct reader r; /* the bytes this TLV may take: up to its container's end */
        const uint8_t *v;
        uint16_t n;
        uint8_t tag;

        while (w->depth > 0 && w->stack[w->depth - 1].end == pos)
            w->depth--;
        rd_init(&r, w->d + pos, (w->depth > 0 ? w->stack[w->depth - 1].end : w->hl) - pos);
        rd_u8(&r, &tag);          /* pos is before the end: there is a byte */
        if (tag == HDR_PADDING) { /* one byte, no length */
            w->h->padding++;
            pos++;
            continue;
        }
        if (rd_u16(&r, &n) != 0) {
            where(w, at_end, sizeof at_end);
            err_set(w->err, ITL_E_INPUT,
                    "offset 0x%zx: the tag and length of %s (tag %u) run past the end of %s", pos,
                    itl_header_tag_name(tag), tag, at_end);
            return -1;
        }
        if (rd_bytes(&r, n, &v) != 0) {
            where(w, at_end, sizeof at_end);
            err_set(w->err, ITL_E_INPUT, "offset 0x%zx: %s length %u runs past the end of %s", pos,
                    itl_header_tag_name(tag), n, at_end);
            return -1;
        }
        if (is_known_header_tag(tag)) {
            if (w->seen & (1u << tag)) {
                err_set(w->err, ITL_E_INPUT, "offset 0x%zx: a second %s (tag %u) in the header",
                        pos, itl_header_tag_name(tag), tag);
                return -1;
            }
            w->seen |= 1u << tag;
        }
        if (add_tlv(w, tag, pos, v, n) != 0)
            return -1;
        if (is_container(tag)) {
            if (w->depth == MAX_DEPTH) {
                err_set(w->err, ITL_E_INPUT, "offset 0x%zx: containers nested more than %d deep",
                        pos, MAX_DEPTH);
                return -1;
            }
            w->stack[w->depth++] = (struct frame){tag, pos + 3 + n};
            if (tag >= HDR_ENC_INFO)
                w->h->enc.present = 1;
            pos += 3; /* its contents are the next TLVs */
            continue;
        }
        if (header_field(w, tag, pos, v, n) != 0)
            return -1;
        pos += 3 + n;
    }
    if (!(w->seen & (1u << HDR_SIGNATURE))) {
        err_set(w->err, ITL_E_INPUT,
                "the header (%zu bytes) has no SIGNATURE (tag 12): the file is not signed", w->hl);
        return -1;
    }
    if (!(w->seen & (1u << HDR_DIGEST))) {
        err_set(w->err, ITL_E_INPUT, "the header (%zu bytes) has no DIGESTALGORITHM (tag 8)",
                w->hl);
        return -1;
    }
    return 0;
}

static int ends_with(struct itl_bytes s, const char *suffix)
{
    size_t n = strlen(suffix);
    return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

static int decide_kind(const struct itl_header *h, enum itl_kind hint, enum itl_kind *kind,
                       struct itl_error *err)
{
    if (hint == ITL_KIND_AUTO) {
        if (h->enc.present)
            *kind = ITL_KIND_ENC_SGN;
        else if (h->has_signer_version || ends_with(h->filename, ".tlv"))
            *kind = ITL_KIND_TLV;
        else
            *kind = ITL_KIND_SGN;
        return 0;
    }
    if (hint == ITL_KIND_TLV && h->enc.present) {
        err_set(err, ITL_E_INPUT,
                "the header has encryption fields (tags 16-27): a .enc.sgn, not an ITL/CTL");
        return -1;
    }
    if (hint == ITL_KIND_ENC_SGN && !h->enc.present) {
        err_set(err, ITL_E_INPUT,
                "the header has no encryption fields (tags 16-27): not a .enc.sgn");
        return -1;
    }
    /* A .sgn hint still yields ENC_SGN when the header says the payload is encrypted. */
    *kind = h->enc.present ? ITL_KIND_ENC_SGN : hint;
    return 0;
}

static int check_enc(const struct itl_file *f, struct itl_error *err)
{
    const struct itl_enc_info *e = &f->hdr.enc;
    const char *missing = !e->iv.ptr            ? "ENCRYPTIONIV (tag 19)"
                          : !e->wrapped_key.ptr ? "ENCRYPTIONKEY (tag 25)"
                                                : NULL;

    if (missing) {
        err_set(err, ITL_E_INPUT, "the encrypted file's header has no %s", missing);
        return -1;
    }
    if (f->payload.len == 0 || f->payload.len % 16 != 0) {
        err_set(err, ITL_E_INPUT,
                "offset 0x%x: the ciphertext is %zu bytes, not a positive multiple of the AES "
                "block size (16)",
                f->hdr.header_length, f->payload.len);
        return -1;
    }
    return 0;
}

int itl_parse(const uint8_t *data, size_t len, enum itl_kind hint, struct itl_file *out,
              struct itl_error *err)
{
    struct hdr_walk w = {.d = data, .len = len, .h = &out->hdr, .err = err};

    memset(out, 0, sizeof *out);
    out->data = data;
    out->len = len;
    if (!data && len > 0) {
        err_set(err, ITL_E_INPUT, "no data");
        return -1;
    }
    if (walk_header(&w) != 0 || decide_kind(&out->hdr, hint, &out->kind, err) != 0)
        goto fail;
    if (out->kind == ITL_KIND_TLV) {
        if (parse_records(out, err) != 0)
            goto fail;
        return 0;
    }
    out->payload = bytes_view(data + out->hdr.header_length, len - out->hdr.header_length);
    if (out->kind == ITL_KIND_ENC_SGN && check_enc(out, err) != 0)
        goto fail;
    return 0;
fail:
    itl_file_free(out);
    return -1;
}

void itl_file_free(struct itl_file *f)
{
    if (!f)
        return;
    free(f->records);
    f->records = NULL;
    f->n_records = 0;
}
