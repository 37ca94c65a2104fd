/* SPDX-License-Identifier: MIT */
/* format: writing TLVs (tag | u16 length | value) into common's growable buffer. */
#include "format/internal.h"

#include <string.h>

/* A value longer than a u16 length can say is cut and remembered: finish_signed reports it
 * apart from running out of memory. */
void tlv_put(struct tlv_out *o, uint8_t tag, const void *value, size_t n)
{
    if (n > TLV_MAX) {
        o->too_long = 1;
        n = TLV_MAX;
    }
    buf_put_u8(&o->buf, tag);
    buf_put_u16(&o->buf, (uint16_t)n);
    buf_put(&o->buf, value, n);
}

void tlv_put_u8(struct tlv_out *o, uint8_t tag, uint8_t v)
{
    tlv_put(o, tag, &v, 1);
}

void tlv_put_u16(struct tlv_out *o, uint8_t tag, uint16_t v)
{
    buf_put_u8(&o->buf, tag);
    buf_put_u16(&o->buf, 2);
    buf_put_u16(&o->buf, v);
}

void tlv_put_u32(struct tlv_out *o, uint8_t tag, uint32_t v)
{
    buf_put_u8(&o->buf, tag);
    buf_put_u16(&o->buf, 4);
    buf_put_u32(&o->buf, v);
}

/* A string that does not fit is left out entirely rather than cut: a name without its NUL
 * would read as a different name. */
void tlv_put_str(struct tlv_out *o, uint8_t tag, const char *s)
{
    size_t n = strlen(s);

    if (n + 1 > TLV_MAX) {
        o->too_long = 1;
        return;
    }
    buf_put_u8(&o->buf, tag);
    buf_put_u16(&o->buf, (uint16_t)(n + 1));
    buf_put(&o->buf, s, n + 1);
}

size_t tlv_open(struct tlv_out *o, uint8_t tag)
{
    size_t at = o->buf.len;

    buf_put_u8(&o->buf, tag);
    buf_put_u16(&o->buf, 0);
    return at;
}

void tlv_close(struct tlv_out *o, size_t at)
{
    size_t n;

    if (o->buf.failed)
        return;
    n = o->buf.len - at - 3;
    if (n > TLV_MAX) {
        o->too_long = 1;
        n = TLV_MAX;
    }
    buf_patch_u16(&o->buf, at + 1, (uint16_t)n);
}
