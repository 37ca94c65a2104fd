/* SPDX-License-Identifier: MIT */
/* The request fields of op key (docs/protocol.md, "Key operations"): 0x10 key-op, 0x11
 * subject, 0x12 bits, 0x13 days, 0x14 key-flags, 0x15 key-id. Their ranges beyond the wire
 * format are the engine's to check (engine_keyops.c). */
#include "signer/internal.h"

#include <stdio.h>
#include <string.h>

enum { KEY_OP = SGN_WIRE_KEY_OP, SUBJECT, BITS, DAYS, KEY_FLAGS, KEY_ID };

static int need_len(uint8_t tag, size_t len, size_t want, size_t offset, struct itl_error *err)
{
    if (len == want)
        return 0;
    err_set(err, ITL_E_INPUT, "payload offset %zu: field 0x%02x must be %zu byte%s, not %zu",
            offset, tag, want, want == 1 ? "" : "s", len);
    return -1;
}

int sgn_wire_key_field(uint8_t tag, const uint8_t *value, size_t len, size_t offset,
                       struct sgn_request *req, struct itl_error *err)
{
    switch (tag) {
    case KEY_OP:
        if (need_len(tag, len, 1, offset, err))
            return -1;
        if (value[0] >= SGN_KEY_OP_COUNT) {
            err_set(err, ITL_E_INPUT, "unknown key operation %u", value[0]);
            return -1;
        }
        req->key_op = (enum sgn_key_op)value[0];
        return 0;
    case SUBJECT:
        if (len == 0 || value[len - 1] != 0 || memchr(value, 0, len - 1)) {
            err_set(err, ITL_E_INPUT,
                    "payload offset %zu: field 0x%02x is not a NUL-terminated string", offset, tag);
            return -1;
        }
        req->subject = (const char *)value;
        return 0;
    case BITS:
    case DAYS:
        if (need_len(tag, len, 4, offset, err))
            return -1;
        *(tag == BITS ? &req->bits : &req->days) = load_u32(value);
        return 0;
    case KEY_FLAGS:
        if (need_len(tag, len, 1, offset, err))
            return -1;
        if (value[0] > 1) {
            err_set(err, ITL_E_INPUT, "unknown key flags 0x%02x", value[0]);
            return -1;
        }
        req->replace = value[0] & 1;
        return 0;
    case KEY_ID:
        req->key_id = value;
        req->key_id_len = len;
        return 0;
    default:
        err_set(err, ITL_E_INPUT, "payload offset %zu: unknown request field 0x%02x", offset, tag);
        return -1;
    }
}
