/* SPDX-License-Identifier: MIT */
/* JSON strings with the audit log's rules: valid UTF-8 kept, every other byte escaped. */
#include "common/common.h"

#include <string.h>

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0: overlong forms,
 * surrogates (U+D800..U+DFFF) and code points above U+10FFFF are not valid. */
size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        unsigned lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
        return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        unsigned lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
        return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

static void escape_byte(struct buf *b, unsigned char c)
{
    char digits[3];
    buf_puts(b, "\\u00");
    buf_puts(b, hex_lower(&c, 1, 0, digits, sizeof digits));
}

void json_string(struct buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    buf_put_u8(b, '"');
    while (i < n) {
        unsigned char c = p[i];
        size_t len;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_put(b, esc, 2);
            i++;
        } else if (c == '\n') {
            buf_puts(b, "\\n");
            i++;
        } else if (c == '\t') {
            buf_puts(b, "\\t");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            escape_byte(b, c);
            i++;
        } else if ((len = utf8_sequence(p + i, n - i)) != 0) {
            buf_put(b, p + i, len);
            i += len;
        } else {
            escape_byte(b, c);
            i++;
        }
    }
    buf_put_u8(b, '"');
}

void json_cstring(struct buf *b, const char *s)
{
    if (!s) {
        buf_puts(b, "null");
        return;
    }
    json_string(b, s, strlen(s));
}

void json_hex(struct buf *b, const uint8_t *data, size_t n)
{
    if (!data) {
        buf_puts(b, "null");
        return;
    }
    buf_put_u8(b, '"');
    /* Hex in chunks through a small stack buffer: no second copy of the digit table. */
    for (size_t i = 0; i < n; i += 64) {
        char text[2 * 64 + 1];
        size_t chunk = n - i < 64 ? n - i : 64;
        buf_put(b, hex_lower(data + i, chunk, 0, text, sizeof text), 2 * chunk);
    }
    buf_put_u8(b, '"');
}
