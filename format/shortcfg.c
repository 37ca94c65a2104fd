/* SPDX-License-Identifier: MIT */
/*
 * format: the short SEP<MAC>.cnf.xml that goes beside an encrypted configuration (format.md
 * section 9). A small scanner finds the children of <device> and copies the few the phone
 * needs before it can decrypt, verbatim; it is not an XML parser and does not need to be.
 */
#include "format/internal.h"

#include <openssl/md5.h>
#include <stdlib.h>
#include <string.h>

static const char *const copied[] = {"loadInformation", "ipAddressMode", "capfAuthMode",
                                     "capfList"};
#define N_COPIED (sizeof copied / sizeof copied[0])

struct span {
    size_t start, end;
};

struct scan {
    const char *x;
    size_t len;
    struct span found[N_COPIED];
    int have[N_COPIED];
    struct itl_error *err;
};

static const char *find(const char *x, size_t len, size_t from, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = from; i + n <= len; i++)
        if (memcmp(x + i, needle, n) == 0)
            return x + i;
    return NULL;
}

/* The '>' that closes the tag starting at pos, skipping quoted attribute values. */
static long tag_end(const char *x, size_t len, size_t pos)
{
    char quote = 0;

    for (size_t i = pos + 1; i < len; i++) {
        if (quote) {
            if (x[i] == quote)
                quote = 0;
        } else if (x[i] == '"' || x[i] == '\'') {
            quote = x[i];
        } else if (x[i] == '>') {
            return (long)i;
        }
    }
    return -1;
}

static size_t name_len(const char *x, size_t len, size_t pos)
{
    size_t i = pos;

    while (i < len && !strchr(" \t\r\n/>", x[i]))
        i++;
    return i - pos;
}

static int is_copied(const char *name, size_t n)
{
    for (size_t i = 0; i < N_COPIED; i++)
        if (strlen(copied[i]) == n && memcmp(copied[i], name, n) == 0)
            return (int)i;
    return -1;
}

/* Skips <?...?>, <!--...-->, <![CDATA[...]]> and <!...>; returns the offset after it. */
static long skip_special(const char *x, size_t len, size_t pos)
{
    static const struct {
        const char *open, *close;
    } kinds[] = {{"<?", "?>"}, {"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<!", ">"}};

    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t n = strlen(kinds[k].open);
        const char *end;
        if (len - pos < n || memcmp(x + pos, kinds[k].open, n) != 0)
            continue;
        end = find(x, len, pos + n, kinds[k].close);
        return end ? (long)(end - x + strlen(kinds[k].close)) : -1;
    }
    return 0; /* not special */
}

static int scan_children(struct scan *s)
{
    size_t pos = 0;
    int depth = 0, root_seen = 0, current = -1;
    size_t current_start = 0;

    while (pos < s->len) {
        long end, skip;
        size_t n;
        int closing, self_closing;

        if (s->x[pos] != '<') {
            pos++;
            continue;
        }
        skip = skip_special(s->x, s->len, pos);
        if (skip < 0) {
            err_set(s->err, ITL_E_INPUT,
                    "offset %zu of the configuration: unterminated '<!' or '<?'", pos);
            return -1;
        }
        if (skip > 0) {
            pos = (size_t)skip;
            continue;
        }
        end = tag_end(s->x, s->len, pos);
        if (end < 0) {
            err_set(s->err, ITL_E_INPUT, "offset %zu of the configuration: unterminated tag", pos);
            return -1;
        }
        closing = s->x[pos + 1] == '/';
        self_closing = s->x[end - 1] == '/';
        n = name_len(s->x, s->len, pos + 1 + closing);
        if (!closing && depth == 0) {
            if (root_seen || n != 6 || memcmp(s->x + pos + 1, "device", 6) != 0) {
                err_set(s->err, ITL_E_INPUT,
                        "offset %zu of the configuration: the root element is not "
                        "<device>",
                        pos);
                return -1;
            }
            root_seen = 1;
        }
        if (!closing && depth == 1) {
            current = is_copied(s->x + pos + 1, n);
            current_start = pos;
        }
        if (closing) {
            if (--depth < 0) {
                err_set(s->err, ITL_E_INPUT,
                        "offset %zu of the configuration: a closing tag without "
                        "its opening tag",
                        pos);
                return -1;
            }
        } else if (!self_closing) {
            depth++;
        }
        if (depth == 1 && current >= 0 && (closing || self_closing)) {
            if (!s->have[current]) {
                s->found[current] = (struct span){current_start, (size_t)end + 1};
                s->have[current] = 1;
            }
            current = -1;
        }
        pos = (size_t)end + 1;
    }
    if (!root_seen) {
        err_set(s->err, ITL_E_INPUT, "the configuration has no <device> element");
        return -1;
    }
    return 0;
}

int itl_short_config(const uint8_t *xml, size_t xml_len, const uint8_t *phone_cert_der,
                     size_t phone_cert_len, char **out, size_t *out_len, struct itl_error *err)
{
    struct scan s = {.x = (const char *)xml, .len = xml_len, .err = err};
    struct buf b = {0};
    uint8_t md5[EVP_MAX_MD_SIZE];
    size_t md5_len, text_len;
    uint8_t *text;
    char hex[2 * MD5_DIGEST_LENGTH + 1];
    X509 *phone;
    int order[N_COPIED], n = 0;

    if (!xml && xml_len) {
        err_set(err, ITL_E_INPUT, "no configuration given");
        return -1;
    }
    phone = cert_parse(phone_cert_der, phone_cert_len, "the phone certificate", err);
    if (!phone)
        return -1;
    X509_free(phone);
    if (scan_children(&s) != 0)
        return -1;
    if (digest_two(EVP_md5(), phone_cert_der, phone_cert_len, NULL, 0, md5, &md5_len) != 0) {
        err_set(err, ITL_E_INPUT, "cannot compute the MD5 certHash of the phone certificate");
        return -1;
    }
    hex_lower(md5, md5_len, 0, hex, sizeof hex);

    for (size_t i = 0; i < N_COPIED; i++) /* in document order */
        if (s.have[i]) {
            int j = n++;
            while (j > 0 && s.found[order[j - 1]].start > s.found[i].start) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = (int)i;
        }
    buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<device>\n");
    buf_puts(&b, "  <fullConfig>false</fullConfig>\n");
    for (int i = 0; i < n; i++) {
        const struct span *sp = &s.found[order[i]];
        buf_puts(&b, "  ");
        buf_put(&b, xml + sp->start, sp->end - sp->start);
        buf_puts(&b, "\n");
    }
    buf_puts(&b, "  <certHash>");
    buf_puts(&b, hex);
    buf_puts(&b, "</certHash>\n  <encrConfig>true</encrConfig>\n</device>\n");
    text = buf_take(&b, &text_len); /* NUL-terminated beyond text_len */
    if (!text) {
        err_set(err, ITL_E_INPUT, "out of memory writing the short configuration");
        return -1;
    }
    *out = (char *)text;
    *out_len = text_len;
    return 0;
}
