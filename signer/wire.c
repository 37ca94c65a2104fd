/* SPDX-License-Identifier: MIT */
/*
 * The itl-signd wire protocol (docs/protocol.md): a 12-byte frame header, then fields
 * tag(1) | length(4, big-endian) | value. Strict: unknown tags, duplicates, strings without
 * their NUL or with one inside, and lengths past the payload are errors.
 */
#include "signer/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/common.h"
#include "format/itl.h"

enum field_tag {
    F_OP = 0x01,
    F_FILENAME = 0x02,
    F_DATA = 0x03,
    F_DIGEST = 0x04,
    F_TIMESTAMP = 0x05,
    F_OUT_FILENAME = 0x06,
    F_KEY = 0x07,
    F_CERT = 0x08,       /* u16 function + DER */
    F_CERT_LABEL = 0x09, /* u16 function + NUL-terminated label */
    F_PHONE_CERT = 0x0a,
    F_LAYOUT = 0x0b,
    F_KNOWN_ITL = 0x0c,
    /* op key (docs/protocol.md, "Key operations"); decoded in wire_key.c */
    F_KEY_OP = SGN_WIRE_KEY_OP,
    F_SUBJECT,
    F_BITS,
    F_DAYS,
    F_KEY_FLAGS,
    F_KEY_ID,
    F_DRY_RUN = 0x0e, /* u8 1: decide, sign nothing */

    F_STATUS = 0x41,
    F_MESSAGE = 0x42,
    F_WARNING = 0x43,
    F_SIGNER = 0x44,
    F_RULE = 0x45,
    F_OUT = 0x46,
    F_OUT_NAME = 0x47,
    F_OUT2 = 0x48,
    F_OUT2_NAME = 0x49,
    F_STATUS_JSON = 0x4a,
};

/* The op byte on the wire is the protocol's own number (docs/protocol.md, "Request fields"),
 * mapped to policy's ops here and only here: reordering enum pol_op must not change the
 * protocol. */
static const struct {
    uint8_t wire;
    enum pol_op op;
} wire_ops[] = {
    {0, POL_OP_RESET},  {1, POL_OP_BUILD}, {2, POL_OP_SIGN},   {3, POL_OP_ENCRYPT},
    {4, POL_OP_STATUS}, {5, POL_OP_KEY},   {6, POL_OP_UNLOCK},
};

int sgn_wire_op_number(enum pol_op op, uint8_t *wire)
{
    for (size_t i = 0; i < sizeof wire_ops / sizeof wire_ops[0]; i++)
        if (wire_ops[i].op == op) {
            *wire = wire_ops[i].wire;
            return 0;
        }
    return -1;
}

static int op_of_wire_number(uint8_t wire, enum pol_op *op)
{
    for (size_t i = 0; i < sizeof wire_ops / sizeof wire_ops[0]; i++)
        if (wire_ops[i].wire == wire) {
            *op = wire_ops[i].op;
            return 0;
        }
    return -1;
}

/* ---- Encoding: common's buffer, starting with room for the frame header ---- */

/* A payload length is a u32; the buffer stops at BUF_MAX first, so a frame that could be built
 * can be said on the wire (and any value too long for its u32 length fails the buffer). */
_Static_assert(BUF_MAX - SGN_WIRE_HEADER_LEN <= UINT32_MAX, "a frame's payload length is a u32");

/* tag | u32 length; the value follows. */
static void field_header(struct buf *f, uint8_t tag, size_t len)
{
    buf_put_u8(f, tag);
    buf_put_u32(f, (uint32_t)len);
}

static void frame_bytes(struct buf *f, uint8_t tag, const uint8_t *p, size_t n)
{
    if (!p)
        return;
    field_header(f, tag, n);
    buf_put(f, p, n);
}

static void frame_str(struct buf *f, uint8_t tag, const char *s)
{
    if (s && *s)
        frame_bytes(f, tag, (const uint8_t *)s, strlen(s) + 1);
}

static void frame_u8(struct buf *f, uint8_t tag, uint8_t v)
{
    field_header(f, tag, 1);
    buf_put_u8(f, v);
}

static void frame_u32(struct buf *f, uint8_t tag, uint32_t v)
{
    field_header(f, tag, 4);
    buf_put_u32(f, v);
}

/* u16 function, then the DER or the NUL-terminated token label. */
static void frame_cert(struct buf *f, const struct sgn_cert_arg *c)
{
    uint8_t tag = c->der ? F_CERT : F_CERT_LABEL;
    const void *value = c->der ? (const void *)c->der : c->token_label;
    size_t n = c->der ? c->der_len : strlen(c->token_label) + 1;

    field_header(f, tag, 2 + n);
    buf_put_u16(f, (uint16_t)c->function);
    buf_put(f, value, n);
}

/* secret: the frame carries a PIN (op unlock): wiped whenever it grows or is freed. */
static void frame_begin(struct buf *f, int secret)
{
    (secret ? buf_init_secret : buf_init)(f, 0);
    buf_append_space(f, SGN_WIRE_HEADER_LEN); /* filled in by frame_finish */
}

static int frame_finish(struct buf *f, enum sgn_frame_type type, uint8_t **out, size_t *out_len)
{
    uint32_t payload;

    if (f->failed) {
        buf_free(f);
        return -1;
    }
    payload = (uint32_t)(f->len - SGN_WIRE_HEADER_LEN);
    memcpy(f->data, SGN_WIRE_MAGIC, 4);
    f->data[4] = SGN_WIRE_VERSION;
    f->data[5] = (uint8_t)type;
    buf_patch_u16(f, 6, 0); /* reserved */
    /* The u32 payload length, big-endian, patched as its two u16 halves. */
    buf_patch_u16(f, 8, (uint16_t)(payload >> 16));
    buf_patch_u16(f, 10, (uint16_t)payload);
    *out = buf_take(f, out_len);
    return *out ? 0 : -1;
}

int sgn_wire_encode_request(const struct sgn_request *req, uint8_t **out, size_t *out_len)
{
    struct buf f;
    uint8_t op;

    if (sgn_wire_op_number(req->op, &op))
        return -1;
    frame_begin(&f, req->op == POL_OP_UNLOCK);
    frame_u8(&f, F_OP, op);
    frame_str(&f, F_FILENAME, req->filename);
    frame_bytes(&f, F_DATA, req->data ? req->data : (const uint8_t *)"", req->len);
    if (req->digest)
        frame_u8(&f, F_DIGEST, (uint8_t)req->digest);
    if (req->has_timestamp)
        frame_u32(&f, F_TIMESTAMP, req->timestamp);
    frame_str(&f, F_OUT_FILENAME, req->out_filename);
    frame_str(&f, F_KEY, req->key);
    for (size_t i = 0; i < req->n_certs; i++)
        if (req->certs[i].der || req->certs[i].token_label)
            frame_cert(&f, &req->certs[i]);
    frame_bytes(&f, F_PHONE_CERT, req->phone_cert, req->phone_cert_len);
    if (req->layout)
        frame_u8(&f, F_LAYOUT, (uint8_t)req->layout);
    frame_bytes(&f, F_KNOWN_ITL, req->known_itl, req->known_itl_len);
    if (req->op == POL_OP_KEY) {
        frame_u8(&f, F_KEY_OP, (uint8_t)req->key_op);
        frame_str(&f, F_SUBJECT, req->subject);
        if (req->bits)
            frame_u32(&f, F_BITS, req->bits);
        if (req->days)
            frame_u32(&f, F_DAYS, req->days);
        if (req->replace)
            frame_u8(&f, F_KEY_FLAGS, 1);
        frame_bytes(&f, F_KEY_ID, req->key_id, req->key_id_len);
    }
    if (req->dry_run)
        frame_u8(&f, F_DRY_RUN, 1);
    if (req->op == POL_OP_UNLOCK)
        sgn_wire_unlock_encode(&f, req);
    return frame_finish(&f, SGN_FRAME_REQUEST, out, out_len);
}

int sgn_wire_encode_reply(const struct sgn_result *r, const char *status_json, uint8_t **out,
                          size_t *out_len)
{
    struct buf f;

    frame_begin(&f, 0);
    frame_u8(&f, F_STATUS, (uint8_t)r->status);
    frame_str(&f, F_MESSAGE, r->message);
    frame_str(&f, F_WARNING, r->warning);
    frame_str(&f, F_SIGNER, r->signer);
    frame_str(&f, F_RULE, r->rule);
    frame_bytes(&f, F_OUT, r->out, r->out_len);
    frame_str(&f, F_OUT_NAME, r->out_name);
    frame_bytes(&f, F_OUT2, r->out2, r->out2_len);
    frame_str(&f, F_OUT2_NAME, r->out2_name);
    frame_str(&f, F_STATUS_JSON, status_json);
    return frame_finish(&f, SGN_FRAME_REPLY, out, out_len);
}

/* ---- Decoding ---- */

int sgn_wire_header(const uint8_t hdr[SGN_WIRE_HEADER_LEN], enum sgn_frame_type expect,
                    size_t max_payload, size_t *len, struct itl_error *err)
{
    uint32_t n;

    if (memcmp(hdr, SGN_WIRE_MAGIC, 4) != 0) {
        err_set(err, ITL_E_INPUT, "not an itl-sign frame (bad magic)");
        return -1;
    }
    if (hdr[4] != SGN_WIRE_VERSION) {
        err_set(err, ITL_E_INPUT, "protocol version %u is not supported (this side speaks %u)",
                hdr[4], SGN_WIRE_VERSION);
        return -1;
    }
    if (hdr[5] != expect) {
        err_set(err, ITL_E_INPUT, "frame type %u where %u was expected", hdr[5], expect);
        return -1;
    }
    if (load_u16(hdr + 6) != 0) {
        err_set(err, ITL_E_INPUT, "reserved header bits are set");
        return -1;
    }
    n = load_u32(hdr + 8);
    if (n > max_payload) {
        err_set(err, ITL_E_INPUT, "frame of %u bytes exceeds the limit of %zu bytes", n,
                max_payload);
        return -1;
    }
    *len = n;
    return 0;
}

struct field {
    uint8_t tag;
    const uint8_t *value;
    size_t len;
    size_t offset;
};

/* Next field of the payload; 1 when one was read, 0 at the end, -1 when malformed. */
static int next_field(const uint8_t *p, size_t len, size_t *pos, struct field *f,
                      struct itl_error *err)
{
    uint32_t n;

    if (*pos == len)
        return 0;
    if (len - *pos < 5) {
        err_set(err, ITL_E_INPUT, "payload offset %zu: field header truncated", *pos);
        return -1;
    }
    f->tag = p[*pos];
    n = load_u32(p + *pos + 1);
    if (n > len - *pos - 5) {
        err_set(err, ITL_E_INPUT, "payload offset %zu: field 0x%02x of %u bytes runs past the end",
                *pos, f->tag, n);
        return -1;
    }
    f->offset = *pos;
    f->value = p + *pos + 5;
    f->len = n;
    *pos += 5 + n;
    return 1;
}

static int field_str(const struct field *f, const char **out, struct itl_error *err)
{
    if (f->len == 0 || f->value[f->len - 1] != 0 || memchr(f->value, 0, f->len - 1)) {
        err_set(err, ITL_E_INPUT, "payload offset %zu: field 0x%02x is not a NUL-terminated string",
                f->offset, f->tag);
        return -1;
    }
    *out = (const char *)f->value;
    return 0;
}

static int field_u8(const struct field *f, uint8_t *out, struct itl_error *err)
{
    if (f->len != 1) {
        err_set(err, ITL_E_INPUT, "payload offset %zu: field 0x%02x must be 1 byte, not %zu",
                f->offset, f->tag, f->len);
        return -1;
    }
    *out = f->value[0];
    return 0;
}

/* Fields that may appear once: a bit each. */
static int seen_once(uint64_t *seen, const struct field *f, struct itl_error *err)
{
    uint64_t bit = 1ull << (f->tag & 63);
    if (*seen & bit) {
        err_set(err, ITL_E_INPUT, "payload offset %zu: field 0x%02x appears twice", f->offset,
                f->tag);
        return -1;
    }
    *seen |= bit;
    return 0;
}

static int decode_cert(const struct field *f, struct sgn_request *req, struct sgn_cert_arg *certs,
                       struct itl_error *err)
{
    struct sgn_cert_arg *c;
    struct field rest;

    if (req->n_certs >= SGN_MAX_BUILD_CERTS) {
        err_set(err, ITL_E_INPUT, "more than %d certificates in one build request",
                SGN_MAX_BUILD_CERTS);
        return -1;
    }
    if (f->len < 3) {
        err_set(err, ITL_E_INPUT, "payload offset %zu: certificate field too short", f->offset);
        return -1;
    }
    c = &certs[req->n_certs];
    memset(c, 0, sizeof *c);
    c->function = load_u16(f->value);
    rest = *f;
    rest.value += 2;
    rest.len -= 2;
    if (f->tag == F_CERT) {
        c->der = rest.value;
        c->der_len = rest.len;
    } else if (field_str(&rest, &c->token_label, err) != 0) {
        return -1;
    }
    req->n_certs++;
    req->certs = certs;
    return 0;
}

int sgn_wire_decode_request(const uint8_t *payload, size_t len, struct sgn_request *req,
                            struct sgn_cert_arg *certs, struct itl_error *err)
{
    size_t pos = 0;
    uint64_t seen = 0;
    struct field f;
    int rc;
    uint8_t v;

    memset(req, 0, sizeof *req);
    while ((rc = next_field(payload, len, &pos, &f, err)) == 1) {
        if (f.tag != F_CERT && f.tag != F_CERT_LABEL && seen_once(&seen, &f, err))
            return -1;
        switch (f.tag) {
        case F_OP:
            if (field_u8(&f, &v, err))
                return -1;
            if (op_of_wire_number(v, &req->op)) {
                err_set(err, ITL_E_INPUT, "unknown operation %u", v);
                return -1;
            }
            break;
        case F_FILENAME:
            if (field_str(&f, &req->filename, err))
                return -1;
            break;
        case F_DATA:
            req->data = f.value;
            req->len = f.len;
            break;
        case F_DIGEST:
            if (field_u8(&f, &v, err))
                return -1;
            req->digest = v;
            break;
        case F_TIMESTAMP:
            if (f.len != 4) {
                err_set(err, ITL_E_INPUT, "payload offset %zu: timestamp must be 4 bytes",
                        f.offset);
                return -1;
            }
            req->has_timestamp = 1;
            req->timestamp = load_u32(f.value);
            break;
        case F_OUT_FILENAME:
            if (field_str(&f, &req->out_filename, err))
                return -1;
            break;
        case F_KEY:
            if (field_str(&f, &req->key, err))
                return -1;
            break;
        case F_CERT:
        case F_CERT_LABEL:
            if (decode_cert(&f, req, certs, err))
                return -1;
            break;
        case F_PHONE_CERT:
            req->phone_cert = f.value;
            req->phone_cert_len = f.len;
            break;
        case F_KNOWN_ITL:
            req->known_itl = f.value;
            req->known_itl_len = f.len;
            break;
        case F_LAYOUT:
            if (field_u8(&f, &v, err))
                return -1;
            if (v > 1) {
                err_set(err, ITL_E_INPUT, "unknown ITL layout %u", v);
                return -1;
            }
            req->layout = v;
            break;
        case F_DRY_RUN:
            if (field_u8(&f, &v, err))
                return -1;
            if (v != 1) {
                err_set(err, ITL_E_INPUT, "dry-run field 0x0e must be 1, not %u", v);
                return -1;
            }
            req->dry_run = 1;
            break;
        default:
            if (f.tag >= F_KEY_OP && f.tag <= F_KEY_ID) { /* wire_key.c */
                if (sgn_wire_key_field(f.tag, f.value, f.len, f.offset, req, err))
                    return -1;
                break;
            }
            if (f.tag >= SGN_WIRE_UNLOCK_FIRST && f.tag <= SGN_WIRE_UNLOCK_LAST) {
                if (sgn_wire_unlock_field(f.tag, f.value, f.len, f.offset, req, err))
                    return -1;
                break;
            }
            err_set(err, ITL_E_INPUT, "payload offset %zu: unknown request field 0x%02x", f.offset,
                    f.tag);
            return -1;
        }
    }
    if (rc < 0)
        return -1;
    if (!(seen & (1ull << F_OP))) {
        err_set(err, ITL_E_INPUT, "request without an operation");
        return -1;
    }
    if (sgn_wire_unlock_check(req, err) != 0)
        return -1;
    if ((req->op == POL_OP_KEY) != !!(seen & (1ull << F_KEY_OP))) {
        err_set(err, ITL_E_INPUT,
                req->op == POL_OP_KEY ? "a key request without its key operation (field 0x10)"
                                      : "a key operation (field 0x10) in a request that is not "
                                        "op key");
        return -1;
    }
    return 0;
}

static int copy_str(const struct field *f, char *dst, size_t dst_size, struct itl_error *err)
{
    const char *s;
    if (field_str(f, &s, err))
        return -1;
    snprintf(dst, dst_size, "%s", s);
    return 0;
}

/* The client writes an output under the name the reply suggests, in a directory it chose: the
 * name must be a base name of a trust file (no '/', no "..", the kind's suffix), whoever
 * answered. */
static int copy_out_name(const struct field *f, char *dst, size_t dst_size, struct itl_error *err)
{
    const char *s;

    if (field_str(f, &s, err))
        return -1;
    if (itl_check_name(s, itl_name_kind(s, strlen(s)), 0, err) != 0)
        return err_prefix(err, "payload offset %zu: the reply's output name: ", f->offset);
    snprintf(dst, dst_size, "%s", s);
    return 0;
}

static int copy_bytes(const struct field *f, uint8_t **dst, size_t *dst_len, struct itl_error *err)
{
    *dst = malloc(f->len ? f->len : 1);
    if (!*dst) {
        err_set(err, ITL_E_INPUT, "out of memory for a reply of %zu bytes", f->len);
        return -1;
    }
    memcpy(*dst, f->value, f->len);
    *dst_len = f->len;
    return 0;
}

static int decode_reply_field(const struct field *f, struct sgn_result *r, char **status_json,
                              struct itl_error *err)
{
    uint8_t v;
    const char *s;

    switch (f->tag) {
    case F_STATUS:
        if (field_u8(f, &v, err))
            return -1;
        r->status = (enum sgn_status)v;
        return 0;
    case F_MESSAGE:
        return copy_str(f, r->message, sizeof r->message, err);
    case F_WARNING:
        return copy_str(f, r->warning, sizeof r->warning, err);
    case F_SIGNER:
        return copy_str(f, r->signer, sizeof r->signer, err);
    case F_RULE:
        return copy_str(f, r->rule, sizeof r->rule, err);
    case F_OUT:
        return copy_bytes(f, &r->out, &r->out_len, err);
    case F_OUT_NAME:
        return copy_out_name(f, r->out_name, sizeof r->out_name, err);
    case F_OUT2:
        return copy_bytes(f, &r->out2, &r->out2_len, err);
    case F_OUT2_NAME:
        return copy_out_name(f, r->out2_name, sizeof r->out2_name, err);
    case F_STATUS_JSON:
        if (field_str(f, &s, err))
            return -1;
        if (status_json && !(*status_json = strdup(s))) {
            err_set(err, ITL_E_INPUT, "out of memory");
            return -1;
        }
        return 0;
    default:
        err_set(err, ITL_E_INPUT, "payload offset %zu: unknown reply field 0x%02x", f->offset,
                f->tag);
        return -1;
    }
}

int sgn_wire_decode_reply(const uint8_t *payload, size_t len, struct sgn_result *r,
                          char **status_json, struct itl_error *err)
{
    size_t pos = 0;
    uint64_t seen = 0;
    struct field f;
    int rc;

    memset(r, 0, sizeof *r);
    if (status_json)
        *status_json = NULL;
    while ((rc = next_field(payload, len, &pos, &f, err)) == 1) {
        if (seen_once(&seen, &f, err) || decode_reply_field(&f, r, status_json, err))
            goto fail;
    }
    if (rc < 0)
        goto fail;
    if (!(seen & (1ull << (F_STATUS & 63)))) {
        err_set(err, ITL_E_INPUT, "reply without a status");
        goto fail;
    }
    return 0;
fail:
    sgn_result_free(r);
    if (status_json) {
        free(*status_json);
        *status_json = NULL;
    }
    return -1;
}
