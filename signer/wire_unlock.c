/* SPDX-License-Identifier: MIT */
/* The request fields of op unlock (docs/protocol.md, "Unlocking the recovery key"): 0x18
 * unlock-action, 0x19 unlock-seconds, 0x1a pin. The PIN is bytes, encoded into a buffer that is
 * wiped whenever it grows or is freed (buf_init_secret, wire.c), never NUL-terminated text. */
#include "signer/internal.h"

#include <stdio.h>
#include <string.h>

#include "common/common.h"

enum { UNLOCK_ACTION = SGN_WIRE_UNLOCK_FIRST, UNLOCK_SECONDS, PIN };

void sgn_wire_unlock_encode(struct buf *f, const struct sgn_request *req)
{
    if (req->lock) {
        buf_put_u8(f, UNLOCK_ACTION);
        buf_put_u32(f, 1);
        buf_put_u8(f, 1);
    }
    if (req->unlock_s) {
        buf_put_u8(f, UNLOCK_SECONDS);
        buf_put_u32(f, 4);
        buf_put_u32(f, req->unlock_s);
    }
    if (req->pin && req->pin_len) {
        buf_put_u8(f, PIN);
        buf_put_u32(f, (uint32_t)req->pin_len);
        buf_put(f, req->pin, req->pin_len);
    }
}

int sgn_wire_unlock_field(uint8_t tag, const uint8_t *value, size_t len, size_t offset,
                          struct sgn_request *req, struct itl_error *err)
{
    size_t want = tag == UNLOCK_ACTION ? 1 : 4;

    if (tag != PIN && len != want) {
        err_set(err, ITL_E_INPUT, "payload offset %zu: field 0x%02x must be %zu byte%s, not %zu",
                offset, tag, want, want == 1 ? "" : "s", len);
        return -1;
    }
    switch (tag) {
    case UNLOCK_ACTION:
        if (value[0] != 1) {
            err_set(err, ITL_E_INPUT,
                    "payload offset %zu: unlock-action 0x18 must be 1 (lock), not %u", offset,
                    value[0]);
            return -1;
        }
        req->lock = 1;
        return 0;
    case UNLOCK_SECONDS:
        req->unlock_s = load_u32(value);
        if (req->unlock_s == 0) {
            err_set(err, ITL_E_INPUT, "payload offset %zu: unlock-seconds 0x19 must not be 0",
                    offset);
            return -1;
        }
        return 0;
    case PIN:
        if (len == 0 || len > 256) {
            err_set(err, ITL_E_INPUT,
                    "payload offset %zu: pin 0x1a must be 1 to 256 bytes, not %zu", offset, len);
            return -1;
        }
        req->pin = value;
        req->pin_len = len;
        return 0;
    default:
        err_set(err, ITL_E_INPUT, "payload offset %zu: unknown request field 0x%02x", offset, tag);
        return -1;
    }
}

int sgn_wire_unlock_check(const struct sgn_request *req, struct itl_error *err)
{
    if (req->op == POL_OP_UNLOCK || !(req->lock || req->unlock_s || req->pin))
        return 0;
    err_set(err, ITL_E_INPUT, "unlock fields (0x18-0x1a) in a request that is not op unlock");
    return -1;
}
