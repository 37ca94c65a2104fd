/* SPDX-License-Identifier: MIT */
/*
 * format: what a byte string or a file name is to a reader of trust files. The parser decides
 * one way (parse.c, decide_kind); other readers decide others: certutils' tlvfile reads the
 * records after HEADERLENGTH whatever FILENAME says, phones fetch ITLFile.tlv by its TFTP name,
 * lenient code compares names without case or trailing dots. A signer must know the widest
 * reading, so these functions answer "could anyone take this for an ITL/CTL?" and the engine
 * releases a file only when the answer matches the operation (docs/format.md "Output kinds").
 */
#include "format/internal.h"

#include <stdio.h>
#include <string.h>

/* Tag 1 with length 2: VERSION, the start of every header, or RECORDLENGTH, the start of every
 * ITL/CTL record. No config, XML or text file starts with these three bytes. */
static int starts_like_tlv1(const uint8_t *d, size_t len)
{
    return len >= 3 && d[0] == HDR_VERSION && load_u16(d + 1) == 2;
}

enum itl_kind itl_kind_of(const uint8_t *data, size_t len)
{
    struct itl_file f;
    struct itl_error ie;
    enum itl_kind kind;

    if (!data || !starts_like_tlv1(data, len))
        return ITL_KIND_AUTO;
    /* The SGN hint reads the header alone; which kind it is is decided below. */
    if (itl_parse(data, len, ITL_KIND_SGN, &f, &ie) != 0)
        return ITL_KIND_TLV; /* bare records, or a header a more lenient reader may accept */
    if (f.hdr.has_signer_version ||
        itl_name_kind((const char *)f.hdr.filename.ptr, f.hdr.filename.len) == ITL_KIND_TLV)
        kind = ITL_KIND_TLV;
    else if (f.kind == ITL_KIND_SGN && starts_like_tlv1(f.payload.ptr, f.payload.len))
        kind = ITL_KIND_TLV; /* records (or a whole trust file) after the header */
    else
        kind = f.kind; /* a ciphertext is random bytes nobody chose: its start means nothing */
    itl_file_free(&f);
    return kind;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive: does s[0..n) contain `needle` (lowercase)? */
static int contains_ci(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && lower((unsigned char)s[i + j]) == needle[j])
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

static int starts_ci(const char *s, size_t n, const char *prefix)
{
    size_t m = strlen(prefix);
    return n >= m && contains_ci(s, m, prefix);
}

static int ends_ci(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && contains_ci(s + n - m, m, suffix);
}

/* What a lenient reader ignores at the end of a name: NUL, spaces, dots, control bytes. */
static int ignorable_tail(unsigned char c)
{
    return c <= ' ' || c == '.' || c == 0x7f;
}

static enum itl_kind name_kind(const char *s, size_t n)
{
    size_t base = n;

    while (base > 0 && s[base - 1] != '/' && s[base - 1] != '\\')
        base--;
    /* ITLFile, ITLSEP<MAC>, CTLFile, CTLSEP<MAC>: the names phones fetch trust lists under */
    if (contains_ci(s, n, ".tlv") || starts_ci(s + base, n - base, "itl") ||
        starts_ci(s + base, n - base, "ctl"))
        return ITL_KIND_TLV;
    while (n > 0 && ignorable_tail((unsigned char)s[n - 1]))
        n--;
    if (ends_ci(s, n, ".enc.sgn"))
        return ITL_KIND_ENC_SGN;
    if (ends_ci(s, n, ".sgn"))
        return ITL_KIND_SGN;
    return ITL_KIND_AUTO;
}

enum itl_kind itl_name_kind(const char *name, size_t len)
{
    const char *nul;
    enum itl_kind whole;

    if (!name)
        return ITL_KIND_AUTO;
    whole = name_kind(name, len);
    /* A C reader stops at the first NUL: "ITLFile.tlv\0.sgn" is ITLFile.tlv to it. */
    nul = len > 0 ? memchr(name, 0, len) : NULL;
    if (nul && whole != ITL_KIND_TLV && name_kind(name, (size_t)(nul - name)) == ITL_KIND_TLV)
        return ITL_KIND_TLV;
    return whole;
}

static const char *kind_suffix(enum itl_kind kind)
{
    switch (kind) {
    case ITL_KIND_TLV:
        return ".tlv";
    case ITL_KIND_SGN:
        return ".sgn";
    case ITL_KIND_ENC_SGN:
        return ".enc.sgn";
    default:
        return NULL;
    }
}

static const char *kind_words(enum itl_kind kind)
{
    switch (kind) {
    case ITL_KIND_TLV:
        return "an ITL/CTL";
    case ITL_KIND_SGN:
        return "a signed file (.sgn)";
    case ITL_KIND_ENC_SGN:
        return "an encrypted config (.enc.sgn)";
    default:
        return "not a trust file";
    }
}

/* Path components: relative, none empty, "." or "..". */
static int check_components(const char *name, size_t n, struct itl_error *err)
{
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        size_t clen;
        if (i < n && name[i] != '/')
            continue;
        clen = i - start;
        if (clen == 0 || (clen == 1 && name[start] == '.') ||
            (clen == 2 && name[start] == '.' && name[start + 1] == '.')) {
            err_set(err, ITL_E_INPUT,
                    "'%s' has an empty, '.' or '..' path component: a file name is relative "
                    "and stays in its directory",
                    name);
            return -1;
        }
        start = i + 1;
    }
    return 0;
}

int itl_check_name(const char *name, enum itl_kind kind, int allow_dirs, struct itl_error *err)
{
    const char *suffix = kind_suffix(kind);
    size_t n = name ? strlen(name) : 0;
    enum itl_kind said;

    if (!suffix) {
        err_set(err, ITL_E_INPUT, "no file kind to check a name against");
        return -1;
    }
    if (n == 0 || n > ITL_MAX_NAME) {
        err_set(err, ITL_E_INPUT, "a file name of %zu bytes: it must have 1 to %d", n,
                ITL_MAX_NAME);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c >= 0x7f || c == '\\' || (c == '/' && !allow_dirs)) {
            err_set(err, ITL_E_INPUT,
                    "'%s' has byte 0x%02x at offset %zu: a file name is printable ASCII "
                    "without spaces or backslashes%s",
                    name, c, i, allow_dirs ? "" : ", and without '/' (a base name)");
            return -1;
        }
    }
    if (check_components(name, n, err) != 0)
        return -1;
    said = itl_name_kind(name, n);
    /* The exact suffix too: "x.SGN" or "x.sgn." are .sgn to lenient readers only. */
    if (said != kind || n < strlen(suffix) || strcmp(name + n - strlen(suffix), suffix) != 0) {
        err_set(err, ITL_E_INPUT,
                "'%s' is not a name for %s: it must end in '%s'%s (a reader takes this name "
                "for %s)",
                name, kind_words(kind), suffix,
                kind == ITL_KIND_TLV ? "" : " and neither contain '.tlv' nor begin with ITL or CTL",
                kind_words(said));
        return -1;
    }
    return 0;
}

int itl_check_kind(const uint8_t *data, size_t len, enum itl_kind want, struct itl_error *err)
{
    struct itl_file f;
    struct itl_error ie;
    enum itl_kind seen = itl_kind_of(data, len);
    char name[ITL_MAX_NAME + 1];
    int rc;

    if (seen != want) {
        err_set(err, ITL_E_INPUT, "the file would be read as %s, not as %s", kind_words(seen),
                kind_words(want));
        return -1;
    }
    if (itl_parse(data, len, ITL_KIND_AUTO, &f, &ie) != 0) {
        err_set(err, ITL_E_INPUT, "the file does not parse as %s: %s", kind_words(want), ie.msg);
        return -1;
    }
    rc = f.kind == want ? 0 : -1;
    if (rc != 0)
        err_set(err, ITL_E_INPUT, "the file parses as %s, not as %s", kind_words(f.kind),
                kind_words(want));
    else if (f.hdr.filename.len > ITL_MAX_NAME ||
             (f.hdr.filename.len > 0 && memchr(f.hdr.filename.ptr, 0, f.hdr.filename.len))) {
        err_set(err, ITL_E_INPUT, "its FILENAME (%zu bytes) is longer than %d bytes or holds a NUL",
                f.hdr.filename.len, ITL_MAX_NAME);
        rc = -1;
    } else {
        snprintf(name, sizeof name, "%.*s", (int)f.hdr.filename.len,
                 (const char *)f.hdr.filename.ptr);
        if (itl_check_name(name, want, want == ITL_KIND_SGN, &ie) != 0) {
            err_set(err, ITL_E_INPUT, "its FILENAME %s", ie.msg);
            rc = -1;
        }
    }
    itl_file_free(&f);
    return rc;
}
