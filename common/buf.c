/* SPDX-License-Identifier: MIT */
/* The growable buffer (limit, sticky failure, optional wiping) and the bounds-checked reader. */
#include "common/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t buf_limit(const struct buf *b)
{
    return b->limit && b->limit < BUF_MAX ? b->limit : BUF_MAX;
}

void buf_init(struct buf *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void buf_init_secret(struct buf *b, size_t limit)
{
    buf_init(b, limit);
    b->wipe = 1;
}

/* A secret must not be left behind in memory realloc() would free unwiped: copy, then wipe. */
static uint8_t *resize(struct buf *b, size_t cap)
{
    if (!b->wipe)
        return realloc(b->data, cap);
    uint8_t *p = malloc(cap);
    if (!p)
        return NULL;
    if (b->data) {
        memcpy(p, b->data, b->len);
        explicit_bzero(b->data, b->cap);
        free(b->data);
    }
    return p;
}

/* Room for n more bytes and a NUL after them (buf_str, buf_take); fails the buffer past its
 * limit or out of memory. */
static int reserve(struct buf *b, size_t n)
{
    size_t limit = buf_limit(b);

    if (b->failed)
        return -1;
    if (n > limit || b->len > limit - n) {
        b->failed = 1;
        return -1;
    }
    if (b->data && b->len + n < b->cap)
        return 0;
    size_t want = b->len + n + 1, cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > limit + 1)
        cap = limit + 1;
    uint8_t *p = resize(b, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

uint8_t *buf_append_space(struct buf *b, size_t n)
{
    if (reserve(b, n) != 0)
        return NULL;
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

void buf_put(struct buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    uint8_t *p = buf_append_space(b, n);
    if (p)
        memcpy(p, data, n);
}

void buf_put_u8(struct buf *b, uint8_t v)
{
    buf_put(b, &v, 1);
}

void buf_put_u16(struct buf *b, uint16_t v)
{
    uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, be, sizeof be);
}

void buf_put_u32(struct buf *b, uint32_t v)
{
    uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, be, sizeof be);
}

void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    /* reserve() keeps a byte for the NUL vsnprintf writes after the text. */
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Patching bytes that were never written is a broken invariant: the buffer fails. */
void buf_patch_u16(struct buf *b, size_t at, uint16_t v)
{
    if (b->failed)
        return;
    if (at > b->len || b->len - at < 2) {
        b->failed = 1;
        return;
    }
    b->data[at] = (uint8_t)(v >> 8);
    b->data[at + 1] = (uint8_t)v;
}

const char *buf_str(struct buf *b)
{
    if (reserve(b, 0) != 0)
        return NULL;
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

static void release(struct buf *b)
{
    if (b->data && b->wipe)
        explicit_bzero(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint8_t *buf_take(struct buf *b, size_t *len)
{
    if (reserve(b, 0) != 0) {
        release(b);
        return NULL;
    }
    uint8_t *p = b->data;
    p[b->len] = '\0';
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_reset(struct buf *b)
{
    if (b->data && b->wipe)
        explicit_bzero(b->data, b->cap);
    b->len = 0;
    b->failed = 0;
}

void buf_free(struct buf *b)
{
    release(b);
    b->failed = 0;
}

/* ---- reader ---- */

void rd_init(struct reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = data ? len : 0;
    r->pos = 0;
    r->failed = 0;
}

size_t rd_left(const struct reader *r)
{
    return r->failed ? 0 : r->len - r->pos;
}

int rd_bytes(struct reader *r, size_t n, const uint8_t **p)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = 1;
        if (p)
            *p = NULL;
        return -1;
    }
    if (p)
        *p = r->data + r->pos;
    r->pos += n;
    return 0;
}

int rd_skip(struct reader *r, size_t n)
{
    return rd_bytes(r, n, NULL);
}

int rd_u8(struct reader *r, uint8_t *v)
{
    const uint8_t *p;
    *v = 0;
    if (rd_bytes(r, 1, &p) != 0)
        return -1;
    *v = p[0];
    return 0;
}

int rd_u16(struct reader *r, uint16_t *v)
{
    const uint8_t *p;
    *v = 0;
    if (rd_bytes(r, 2, &p) != 0)
        return -1;
    *v = load_u16(p);
    return 0;
}

int rd_u32(struct reader *r, uint32_t *v)
{
    const uint8_t *p;
    *v = 0;
    if (rd_bytes(r, 4, &p) != 0)
        return -1;
    *v = load_u32(p);
    return 0;
}

uint16_t load_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t load_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
