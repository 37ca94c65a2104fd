/* SPDX-License-Identifier: MIT */
/* Names of operations and roles, time and duration text, message buffers, JSON strings. */
#include "policy/internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[POL_OP_COUNT] = {
    [POL_OP_RESET] = "reset",     [POL_OP_BUILD] = "build",   [POL_OP_SIGN] = "sign",
    [POL_OP_ENCRYPT] = "encrypt", [POL_OP_STATUS] = "status", [POL_OP_KEY] = "key",
};

static const char *const key_role_names[POL_KEY_COUNT] = {
    [POL_KEY_RECOVERY] = "recovery",
    [POL_KEY_TFTP] = "tftp",
};

const char *pol_op_name(enum pol_op op)
{
    if ((unsigned)op >= POL_OP_COUNT)
        return "?";
    return op_names[op];
}

int pol_op_from_name(const char *name)
{
    for (int i = 0; name && i < POL_OP_COUNT; i++)
        if (strcmp(name, op_names[i]) == 0)
            return i;
    return -1;
}

const char *pol_key_role_name(enum pol_key_role role)
{
    if ((unsigned)role >= POL_KEY_COUNT)
        return "?";
    return key_role_names[role];
}

int pol_key_role_from_name(const char *name)
{
    for (int i = 0; name && i < POL_KEY_COUNT; i++)
        if (strcmp(name, key_role_names[i]) == 0)
            return i;
    return -1;
}

long pol_parse_duration(const char *text)
{
    long value = 0, unit = 1;
    const char *p = text;

    if (!text || !isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (value > (LONG_MAX - (*p - '0')) / 10)
            return -1;
        value = value * 10 + (*p - '0');
    }
    switch (*p) {
    case '\0':
        return value;
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (p[1] != '\0' || value > LONG_MAX / unit)
        return -1;
    return value * unit;
}

void pol_time_iso(time_t t, char out[POL_TIME_LEN])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, POL_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, POL_TIME_LEN, "@%lld", (long long)t);
}

void pol_duration_words(long seconds, char *out, size_t size)
{
    static const struct {
        long seconds;
        const char *name;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (seconds != 0 && seconds % units[i].seconds != 0)
            continue;
        long n = seconds / units[i].seconds;
        if (seconds == 0 && units[i].seconds != 1)
            continue;
        snprintf(out, size, "%ld %s%s", n, units[i].name, n == 1 ? "" : "s");
        return;
    }
}

void pol_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pol_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void pol_strlcatf(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strnlen(buf, size);
    va_list ap;
    int n;

    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= size - used && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

void pol_printable(const char *in, size_t max, char *out, size_t size)
{
    size_t i = 0;
    if (size == 0)
        return;
    for (; in && in[i] && i < max && i + 1 < size; i++)
        out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
    if (in && in[i] && i >= max && size > i + 3)
        memcpy(out + i, "...", 4);
}

/* ---- growing buffer ---- */

void pol_buf_add(struct pol_buf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (len >= SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void pol_buf_puts(struct pol_buf *b, const char *s)
{
    pol_buf_add(b, s, strlen(s));
}

void pol_buf_addf(struct pol_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        pol_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pol_buf_add(b, big, (size_t)n);
    free(big);
}

size_t pol_utf8_sequence(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        unsigned lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
        return (s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80) ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        unsigned lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
        return (s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) ? 4 : 0;
    }
    return 0;
}

void pol_buf_json_string(struct pol_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (!s) {
        pol_buf_puts(b, "null");
        return;
    }
    pol_buf_add(b, "\"", 1);
    while (*p) {
        size_t n;
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            pol_buf_add(b, esc, 2);
            p++;
        } else if (*p == '\n') {
            pol_buf_add(b, "\\n", 2);
            p++;
        } else if (*p == '\t') {
            pol_buf_add(b, "\\t", 2);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            pol_buf_addf(b, "\\u%04x", *p);
            p++;
        } else if ((n = pol_utf8_sequence(p)) != 0) {
            pol_buf_add(b, p, n);
            p += n;
        } else {
            pol_buf_add(b, "\\ufffd", 6);
            p++;
        }
    }
    pol_buf_add(b, "\"", 1);
}

void pol_buf_json_hex(struct pol_buf *b, const uint8_t *in, size_t n)
{
    char hex[2 * 64 + 1];
    if (!in || n > 64) {
        pol_buf_puts(b, "null");
        return;
    }
    pol_hex(in, n, hex);
    pol_buf_addf(b, "\"%s\"", hex);
}

void pol_buf_free(struct pol_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
