/* SPDX-License-Identifier: MIT */
/*
 * format: the records of an ITL/CTL, after the header. Each starts with its RECORDLENGTH and
 * holds TLVs that must end where it ends; every error names the offset, the record and the
 * field.
 */
#include "format/internal.h"

#include <stdlib.h>
#include <string.h>

static int record_err_len(struct itl_error *err, size_t at, size_t index, uint8_t tag, size_t n,
                          size_t want)
{
    err_set(err, ITL_E_INPUT, "offset 0x%zx: record #%zu: %s has length %zu, expected %zu", at,
            index, itl_record_tag_name(tag), n, want);
    return -1;
}

static int record_field(struct itl_record *r, size_t index, uint8_t tag, size_t at,
                        const uint8_t *v, size_t n, struct itl_error *err)
{
    switch (tag) {
    case REC_DNSNAME:
        r->dnsname = string_view(v, n);
        return 0;
    case REC_SUBJECT:
        r->subject = string_view(v, n);
        return 0;
    case REC_FUNCTION:
        if (n != 2)
            return record_err_len(err, at, index, tag, n, 2);
        r->has_function = 1;
        r->function = load_u16(v);
        return 0;
    case REC_ISSUER:
        r->issuer = string_view(v, n);
        return 0;
    case REC_SERIAL: /* empty is serial number 0 as certutils writes it (minimal big-endian) */
        r->serial = bytes_view(v, n);
        return 0;
    case REC_PUBLIC_KEY:
        r->public_key = bytes_view(v, n);
        return 0;
    case REC_SIGNATURE:
        r->signature = bytes_view(v, n);
        return 0;
    case REC_CERTIFICATE:
        r->certificate = bytes_view(v, n);
        return 0;
    case REC_IPADDRESS:
        r->ipaddress = bytes_view(v, n);
        return 0;
    case REC_CERTHASH:
        r->certhash = bytes_view(v, n);
        return 0;
    case REC_HASH_ALGORITHM:
        if (n != 1)
            return record_err_len(err, at, index, tag, n, 1);
        r->has_hash_algorithm = 1;
        r->hash_algorithm = v[0];
        return 0;
    default:
        return 0; /* kept in tlvs[] only */
    }
}

static int add_record_tlv(struct itl_record *r, size_t index, uint8_t tag, size_t at,
                          const uint8_t *v, size_t n, struct itl_error *err)
{
    if (r->n_tlvs == ITL_MAX_RECORD_TLVS) {
        err_set(err, ITL_E_INPUT, "offset 0x%zx: record #%zu has more than %d fields", at, index,
                ITL_MAX_RECORD_TLVS);
        return -1;
    }
    r->tlvs[r->n_tlvs++] = (struct itl_tlv){tag, 0, at, bytes_view(v, n)};
    return 0;
}

/* The record starting at pos; index is 1-based for messages. */
static int parse_record(const uint8_t *d, size_t len, size_t pos, size_t index,
                        struct itl_record *r, struct itl_error *err)
{
    struct reader rd; /* over the record, RECORDLENGTH included */
    size_t end;
    uint32_t seen = 1u << REC_LENGTH;

    memset(r, 0, sizeof *r);
    r->offset = pos;
    if (len - pos < 5) {
        err_set(err, ITL_E_INPUT,
                "offset 0x%zx: record #%zu: the %zu bytes left are too short for a "
                "RECORDLENGTH field (5 bytes)",
                pos, index, len - pos);
        return -1;
    }
    if (d[pos] != REC_LENGTH) {
        err_set(err, ITL_E_INPUT,
                "offset 0x%zx: record #%zu starts with tag %u, expected RECORDLENGTH (1)", pos,
                index, d[pos]);
        return -1;
    }
    if (load_u16(d + pos + 1) != 2)
        return record_err_len(err, pos, index, REC_LENGTH, load_u16(d + pos + 1), 2);
    r->length = load_u16(d + pos + 3);
    if (r->length < 5) {
        err_set(err, ITL_E_INPUT,
                "offset 0x%zx: record #%zu: RECORDLENGTH %u is less than the 5 bytes of the "
                "RECORDLENGTH field itself",
                pos, index, r->length);
        return -1;
    }
    if (r->length > len - pos) {
        err_set(err, ITL_E_INPUT,
                "offset 0x%zx: record #%zu: RECORDLENGTH %u runs past the end of the file (%zu "
                "bytes%s)",
                pos, index, r->length, len,
                len > TLV_MAX ? "; lengths are u16, so no record can reach past 64 KB" : "");
        return -1;
    }
    end = pos + r->length;
    if (add_record_tlv(r, index, REC_LENGTH, pos, d + pos + 3, 2, err) != 0)
        return -1;
    rd_init(&rd, d + pos, r->length);
    rd_skip(&rd, 5);
    while (rd_left(&rd) > 0) {
        size_t p = pos + rd.pos;
        const uint8_t *v;
        uint16_t n;
        uint8_t tag;

        rd_u8(&rd, &tag);
        if (rd_u16(&rd, &n) != 0) {
            err_set(err, ITL_E_INPUT,
                    "offset 0x%zx: record #%zu: the tag and length of %s run past the end of "
                    "the record (which ends at 0x%zx)",
                    p, index, itl_record_tag_name(tag), end);
            return -1;
        }
        if (rd_bytes(&rd, n, &v) != 0) {
            err_set(err, ITL_E_INPUT,
                    "offset 0x%zx: record #%zu: %s length %u runs past the end of the record "
                    "(which ends at 0x%zx)",
                    p, index, itl_record_tag_name(tag), n, end);
            return -1;
        }
        if (tag >= REC_LENGTH && tag <= REC_HASH_ALGORITHM) {
            if (seen & (1u << tag)) {
                err_set(err, ITL_E_INPUT, "offset 0x%zx: record #%zu: a second %s (tag %u)", p,
                        index, itl_record_tag_name(tag), tag);
                return -1;
            }
            seen |= 1u << tag;
        }
        if (add_record_tlv(r, index, tag, p, v, n, err) != 0 ||
            record_field(r, index, tag, p, v, n, err) != 0)
            return -1;
    }
    if (!r->has_function) {
        err_set(err, ITL_E_INPUT, "offset 0x%zx: record #%zu has no FUNCTION (tag 4)", pos, index);
        return -1;
    }
    return 0;
}

int parse_records(struct itl_file *f, struct itl_error *err)
{
    size_t pos = f->hdr.header_length, cap = 0;

    if (pos == f->len) {
        err_set(err, ITL_E_INPUT, "the ITL/CTL has no records after its %zu-byte header", pos);
        return -1;
    }
    while (pos < f->len) {
        if (f->n_records == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct itl_record *nr = realloc(f->records, ncap * sizeof *nr);
            if (!nr) {
                err_set(err, ITL_E_INPUT, "out of memory parsing record #%zu", f->n_records + 1);
                return -1;
            }
            f->records = nr;
            cap = ncap;
        }
        if (parse_record(f->data, f->len, pos, f->n_records + 1, &f->records[f->n_records], err) !=
            0)
            return -1;
        pos += f->records[f->n_records++].length;
    }
    return 0;
}
