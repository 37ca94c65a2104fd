/* SPDX-License-Identifier: MIT */
/*
 * Hex text of bytes and back. Plain C rather than OPENSSL_buf2hexstr: that one allocates, has
 * upper case only and always a separator, and the callers want fixed buffers in both cases.
 */
#include "common/common.h"

#include <string.h>

/* Whole bytes only: a buffer that is too small gets as many as fit, always NUL-terminated. */
static char *hex_encode(const char *digits, const uint8_t *data, size_t n, char sep, char *out,
                        size_t out_size)
{
    size_t o = 0;

    if (out_size == 0)
        return out;
    for (size_t i = 0; i < n; i++) {
        size_t need = (sep && i) ? 3 : 2;
        if (out_size - o < need + 1)
            break;
        if (sep && i)
            out[o++] = sep;
        out[o++] = digits[data[i] >> 4];
        out[o++] = digits[data[i] & 15];
    }
    out[o] = '\0';
    return out;
}

char *hex_lower(const uint8_t *data, size_t n, char sep, char *out, size_t out_size)
{
    return hex_encode("0123456789abcdef", data, n, sep, out, out_size);
}

char *hex_upper(const uint8_t *data, size_t n, char sep, char *out, size_t out_size)
{
    return hex_encode("0123456789ABCDEF", data, n, sep, out, out_size);
}

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strnlen(hex, 2 * n + 1) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
