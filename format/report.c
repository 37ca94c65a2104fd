/* SPDX-License-Identifier: MIT */
/*
 * Phone reports (issue 15): the DeviceTLInfo alarm phones send, a dump of many, or a CSV.
 * XML goes through expat, never by hand: a document is the text from "<x-cisco-alarm" to its
 * "</x-cisco-alarm>", so syslog prefixes and RTMT's text between documents are ignored.
 */
#include "format/internal.h"

#include <ctype.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char ALARM_OPEN[] = "<x-cisco-alarm";
static const char ALARM_CLOSE[] = "</x-cisco-alarm>";

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

int itl_report_sha1(const char *s, size_t n, uint8_t out[ITL_SHA1_LEN])
{
    size_t got = 0, i = 0;

    trim(&s, &n);
    if (n == strlen("Not Installed") && strncasecmp(s, "Not Installed", n) == 0)
        return 0;
    while (i < n) {
        int hi, lo;
        if (got == ITL_SHA1_LEN || i + 2 > n)
            return -1;
        hi = hex_digit((unsigned char)s[i]);
        lo = hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[got++] = (uint8_t)(hi << 4 | lo);
        i += 2;
        if (i < n && s[i] != ' ')
            return -1;
        while (i < n && s[i] == ' ')
            i++;
    }
    return got == ITL_SHA1_LEN ? 1 : -1;
}

static void copy_text(char *dst, size_t cap, const char *s, size_t n)
{
    trim(&s, &n);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* One named value of a report, from XML or CSV; 0, or -1 with msg. */
static int set_field(struct itl_report *r, const char *name, const char *v, size_t n,
                     const char **msg)
{
    if (strcmp(name, "DeviceName") == 0) {
        copy_text(r->device, sizeof r->device, v, n);
    } else if (strcmp(name, "ITL_Signature") == 0) {
        int k = itl_report_sha1(v, n, r->itl_sha1);
        if (k < 0)
            return *msg = "ITL_Signature is not 20 hex bytes separated by spaces", -1;
        r->has_itl = k;
    } else if (strcmp(name, "CTL_Signature") == 0) {
        int k = itl_report_sha1(v, n, r->ctl_sha1);
        if (k < 0)
            return *msg = "CTL_Signature is not 20 hex bytes separated by spaces", -1;
        r->has_ctl = k;
    } else if (strcmp(name, "ITL_TFTP_Server") == 0) {
        copy_text(r->itl_tftp, sizeof r->itl_tftp, v, n);
    } else if (strcmp(name, "CTL_TFTP_Server") == 0) {
        copy_text(r->ctl_tftp, sizeof r->ctl_tftp, v, n);
    } else if (strcmp(name, "StatusCode") == 0) {
        char buf[16];
        copy_text(buf, sizeof buf, v, n);
        r->status_code = atoi(buf);
    }
    return 0;
}

/* ---- XML ---- */

struct xml_state {
    XML_Parser p;
    struct itl_report r;
    char name[32]; /* the <String name="..."> being read, "" outside one */
    char text[512];
    size_t text_len;
    int too_long, seen_device, seen_itl;
    const char *bad;
};

static void XMLCALL on_start(void *ud, const XML_Char *el, const XML_Char **attr)
{
    struct xml_state *st = ud;

    st->name[0] = '\0';
    if (strcmp(el, "String") != 0)
        return;
    for (size_t i = 0; attr[i]; i += 2)
        if (strcmp(attr[i], "name") == 0)
            snprintf(st->name, sizeof st->name, "%s", attr[i + 1]);
    st->text_len = 0;
    st->too_long = 0;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct xml_state *st = ud;

    if (!st->name[0])
        return;
    if (st->text_len + (size_t)len >= sizeof st->text) {
        st->too_long = 1;
        return;
    }
    memcpy(st->text + st->text_len, s, (size_t)len);
    st->text_len += (size_t)len;
}

static void XMLCALL on_end(void *ud, const XML_Char *el)
{
    struct xml_state *st = ud;

    if (strcmp(el, "String") != 0 || !st->name[0])
        return;
    if (st->too_long && !st->bad)
        st->bad = "a String value is longer than 511 bytes";
    else if (!st->bad && set_field(&st->r, st->name, st->text, st->text_len, &st->bad) == 0) {
        st->seen_device |= strcmp(st->name, "DeviceName") == 0;
        st->seen_itl |= strcmp(st->name, "ITL_Signature") == 0;
    }
    st->name[0] = '\0';
}

static long line_of(const char *at, const char **from, long *line)
{
    for (const char *q = *from; q < at; q++)
        *line += *q == '\n';
    *from = at;
    return *line;
}

/* One document; 1 a report, 0 skipped (warned), -1 out of memory. */
static int parse_alarm(const char *doc, size_t n, long line, struct itl_report *out,
                       itl_report_warn_fn warn, void *ctx)
{
    struct xml_state st = {0};
    char msg[256];

    st.p = XML_ParserCreate("UTF-8");
    if (!st.p)
        return -1;
    st.r.line = line;
    st.r.status_code = -1;
    XML_SetUserData(st.p, &st);
    XML_SetElementHandler(st.p, on_start, on_end);
    XML_SetCharacterDataHandler(st.p, on_text);
    if (XML_Parse(st.p, doc, (int)n, 1) == XML_STATUS_ERROR) {
        snprintf(msg, sizeof msg, "not well-formed XML at line %lu: %s",
                 (unsigned long)(line - 1 + (long)XML_GetCurrentLineNumber(st.p)),
                 XML_ErrorString(XML_GetErrorCode(st.p)));
        XML_ParserFree(st.p);
        warn(ctx, line, msg);
        return 0;
    }
    XML_ParserFree(st.p);
    if (!st.bad && (!st.seen_device || !st.r.device[0]))
        st.bad = "no DeviceName";
    if (!st.bad && !st.seen_itl)
        st.bad = "no ITL_Signature";
    if (st.bad) {
        warn(ctx, line, st.bad);
        return 0;
    }
    *out = st.r;
    return 1;
}

static long parse_xml(const char *data, size_t len, itl_report_fn on_report,
                      itl_report_warn_fn warn, void *ctx, struct itl_error *err)
{
    const char *p = data, *end = data + len, *counted = data;
    long line = 1, count = 0;
    struct itl_report r;

    while ((p = memmem(p, (size_t)(end - p), ALARM_OPEN, strlen(ALARM_OPEN))) != NULL) {
        const char *close = memmem(p, (size_t)(end - p), ALARM_CLOSE, strlen(ALARM_CLOSE));
        const char *next = memmem(p + 1, (size_t)(end - p - 1), ALARM_OPEN, strlen(ALARM_OPEN));
        long at = line_of(p, &counted, &line);
        if (!close || (next && next < close)) {
            warn(ctx, at,
                 "truncated alarm: no </x-cisco-alarm> before the next document or "
                 "the end");
            p = next ? next : end;
            continue;
        }
        close += strlen(ALARM_CLOSE);
        int k = parse_alarm(p, (size_t)(close - p), at, &r, warn, ctx);
        if (k < 0)
            return err_set(err, ITL_E_INTERNAL, "out of memory parsing alarms");
        if (k > 0) {
            if (on_report(ctx, &r) != 0)
                return err_set(err, ITL_E_INPUT, "stopped at the report of line %ld", at);
            count++;
        }
        p = close;
    }
    return count;
}

/* ---- CSV ---- */

#define CSV_MAX_COLS 16

/* Split a line at commas (no quoting: the fields have no commas); number of fields. */
static size_t csv_split(const char *s, size_t n, const char **f, size_t *fl)
{
    size_t k = 0;
    const char *start = s;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            if (k == CSV_MAX_COLS)
                return k + 1;
            f[k] = start;
            fl[k] = (size_t)(s + i - start);
            trim(&f[k], &fl[k]);
            if (fl[k] >= 2 && f[k][0] == '"' && f[k][fl[k] - 1] == '"') {
                f[k]++;
                fl[k] -= 2;
            }
            k++;
            start = s + i + 1;
        }
    }
    return k;
}

static long parse_csv(const char *data, size_t len, itl_report_fn on_report,
                      itl_report_warn_fn warn, void *ctx, struct itl_error *err)
{
    char names[CSV_MAX_COLS][32];
    const char *f[CSV_MAX_COLS];
    size_t fl[CSV_MAX_COLS], ncols = 0;
    long line = 0, count = 0;
    int have_device = 0, have_itl = 0;
    const char *p = data, *end = data + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        const char *s = p;
        line++;
        p = nl ? nl + 1 : end;
        trim(&s, &n);
        if (n == 0)
            continue;
        size_t k = csv_split(s, n, f, fl);
        if (ncols == 0) {
            if (k > CSV_MAX_COLS)
                return err_set(err, ITL_E_INPUT,
                               "CSV header (line %ld) has more than %d "
                               "columns",
                               line, CSV_MAX_COLS);
            for (size_t i = 0; i < k; i++) {
                copy_text(names[i], sizeof names[i], f[i], fl[i]);
                have_device |= strcmp(names[i], "DeviceName") == 0;
                have_itl |= strcmp(names[i], "ITL_Signature") == 0;
            }
            if (!have_device || !have_itl)
                return err_set(err, ITL_E_INPUT,
                               "CSV header (line %ld) must name DeviceName "
                               "and ITL_Signature",
                               line);
            ncols = k;
            continue;
        }
        if (k != ncols) {
            char msg[96];
            snprintf(msg, sizeof msg, "%zu fields where the header has %zu", k, ncols);
            warn(ctx, line, msg);
            continue;
        }
        struct itl_report r = {.line = line, .status_code = -1};
        const char *bad = NULL;
        for (size_t i = 0; i < k && !bad; i++)
            set_field(&r, names[i], f[i], fl[i], &bad);
        if (!bad && !r.device[0])
            bad = "empty DeviceName";
        if (bad) {
            warn(ctx, line, bad);
            continue;
        }
        if (on_report(ctx, &r) != 0)
            return err_set(err, ITL_E_INPUT, "stopped at the report of line %ld", line);
        count++;
    }
    return count;
}

long itl_reports_parse(const char *data, size_t len, itl_report_fn on_report,
                       itl_report_warn_fn warn, void *ctx, struct itl_error *err)
{
    size_t i = 0;

    while (i < len && isspace((unsigned char)data[i]))
        i++;
    if ((i < len && data[i] == '<') || memmem(data, len, ALARM_OPEN, strlen(ALARM_OPEN)))
        return parse_xml(data, len, on_report, warn, ctx, err);
    return parse_csv(data, len, on_report, warn, ctx, err);
}
