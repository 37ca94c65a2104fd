/* SPDX-License-Identifier: MIT */
/* format: error messages, big-endian reads and the output buffer of the builders. */
#include "format/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int wb_reserve(struct wbuf *b, size_t n)
{
    size_t cap;
    uint8_t *np;

    if (b->oom)
        return -1;
    if (n <= b->cap - b->len)
        return 0;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
    cap = b->cap ? b->cap : 1024;
    while (cap - b->len < n)
        cap *= 2;
    np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

void wb_put(struct wbuf *b, const void *data, size_t n)
{
    if (n == 0 || wb_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void wb_u8(struct wbuf *b, uint8_t v)
{
    wb_put(b, &v, 1);
}

void wb_u16(struct wbuf *b, uint16_t v)
{
    uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    wb_put(b, be, 2);
}

void wb_tlv(struct wbuf *b, uint8_t tag, const void *value, size_t n)
{
    if (n > TLV_MAX) {
        b->too_long = 1;
        n = TLV_MAX;
    }
    wb_u8(b, tag);
    wb_u16(b, (uint16_t)n);
    wb_put(b, value, n);
}

void wb_tlv_u8(struct wbuf *b, uint8_t tag, uint8_t v)
{
    wb_tlv(b, tag, &v, 1);
}

void wb_tlv_u16(struct wbuf *b, uint8_t tag, uint16_t v)
{
    uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    wb_tlv(b, tag, be, 2);
}

void wb_tlv_str(struct wbuf *b, uint8_t tag, const char *s)
{
    size_t n = strlen(s);

    if (n + 1 > TLV_MAX) {
        b->too_long = 1;
        return;
    }
    wb_u8(b, tag);
    wb_u16(b, (uint16_t)(n + 1));
    wb_put(b, s, n);
    wb_u8(b, 0);
}

size_t wb_open(struct wbuf *b, uint8_t tag)
{
    size_t at = b->len;

    wb_u8(b, tag);
    wb_u16(b, 0);
    return at;
}

void wb_patch_u16(struct wbuf *b, size_t at, uint16_t v)
{
    if (b->oom || at + 2 > b->len)
        return;
    b->p[at] = (uint8_t)(v >> 8);
    b->p[at + 1] = (uint8_t)v;
}

void wb_close(struct wbuf *b, size_t at)
{
    size_t n;

    if (b->oom)
        return;
    n = b->len - at - 3;
    if (n > TLV_MAX)
        b->too_long = 1;
    wb_patch_u16(b, at + 1, (uint16_t)(n > TLV_MAX ? TLV_MAX : n));
}

void wb_free(struct wbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int serial_equal(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    while (an > 0 && *a == 0)
        a++, an--;
    while (bn > 0 && *b == 0)
        b++, bn--;
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

int modulus_code(size_t bytes)
{
    switch (bytes) {
    case 64:
        return 0;
    case 128:
        return 1;
    case 256:
        return 2;
    case 512:
        return 3;
    default:
        return -1;
    }
}
