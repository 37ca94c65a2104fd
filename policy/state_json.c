/* SPDX-License-Identifier: MIT */
/*
 * The text of state.json: pol_state_format writes it, and a strict reader accepts exactly what
 * it writes, in any key order. Anything else (a damaged file, an unknown key, a second copy of
 * one) is an error, never an empty state, so callers fail closed.
 */
#include "policy/internal.h"

#include <stdio.h>
#include <string.h>

#define STATE_VERSION 1

int pol_attestation_kind_known(const char *kind, size_t size)
{
    static const char *const kinds[] = {"token", "p12", NULL};

    for (int i = 0; kinds[i]; i++)
        if (strncmp(kind, kinds[i], size) == 0)
            return 1;
    return 0;
}

/* ---- format ---- */

static void format_regen(struct buf *b, const struct pol_regen_event *ev)
{
    buf_printf(b, "{\"key\": \"%s\", \"label\": ", pol_key_role_name(ev->key));
    json_cstring(b, ev->label);
    buf_puts(b, ", \"cert_sha256\": ");
    json_hex(b, ev->cert_sha256, 32);
    buf_printf(b, ", \"time\": %lld, \"uid\": %u}", (long long)ev->time, (unsigned)ev->uid);
}

static void format_attestation(struct buf *b, const struct pol_attestation *a)
{
    buf_printf(b, "{\"key\": \"%s\", \"cert_sha256\": ", pol_key_role_name(a->key));
    json_hex(b, a->cert_sha256, 32);
    buf_puts(b, ", \"kind\": ");
    json_cstring(b, a->kind);
    buf_puts(b, ", \"identity\": ");
    json_cstring(b, a->identity);
    buf_printf(b, ", \"time\": %lld, \"uid\": %u}", (long long)a->time, (unsigned)a->uid);
}

int pol_state_format(const struct pol_state *st, char **out, size_t *out_len)
{
    struct buf b = {0};

    buf_printf(&b, "{\n  \"version\": %d,\n  \"generation\": %llu,\n", STATE_VERSION,
               st->generation);
    buf_printf(&b, "  \"last_backup_warning\": %lld,\n  \"last_regen\": ",
               (long long)st->last_backup_warning);
    if (st->has_last_regen)
        format_regen(&b, &st->last_regen);
    else
        buf_puts(&b, "null");
    buf_puts(&b, ",\n  \"attestations\": [");
    for (size_t i = 0; i < st->n_attestations && i < POL_MAX_ATTESTATIONS; i++) {
        buf_puts(&b, i ? ",\n    " : "\n    ");
        format_attestation(&b, &st->attestations[i]);
    }
    buf_puts(&b, st->n_attestations ? "\n  ]\n}\n" : "]\n}\n");
    if (b.failed) {
        buf_free(&b);
        return -1;
    }
    *out = (char *)buf_take(&b, out_len);
    return 0;
}

/* ---- a strict reader for that format ---- */

struct state_reader {
    const char *s;
    size_t len, pos;
    struct itl_error *err;
    int failed;
};

static int rfail(struct state_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int rfail(struct state_reader *r, const char *fmt, ...)
{
    char msg[ITL_ERROR_LEN];
    size_t line = 1;
    va_list ap;

    if (r->failed)
        return -1;
    r->failed = 1;
    for (size_t i = 0; i < r->pos && i < r->len; i++)
        line += r->s[i] == '\n';
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(r->err, ITL_E_IO, "line %zu (byte %zu): %s", line, r->pos, msg);
}

static void skip_space(struct state_reader *r)
{
    while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\n' ||
                               r->s[r->pos] == '\t' || r->s[r->pos] == '\r'))
        r->pos++;
}

static int peek(struct state_reader *r)
{
    skip_space(r);
    return r->pos < r->len ? (unsigned char)r->s[r->pos] : -1;
}

static int expect(struct state_reader *r, char c)
{
    if (peek(r) != (unsigned char)c)
        return r->pos < r->len ? rfail(r, "expected '%c'", c)
                               : rfail(r, "expected '%c', found the end of the file", c);
    r->pos++;
    return 0;
}

static int literal(struct state_reader *r, const char *word)
{
    size_t n = strlen(word);
    peek(r);
    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
        return -1;
    r->pos += n;
    return 0;
}

static int hex4(struct state_reader *r, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->pos < r->len ? r->s[r->pos++] : 0;
        int v = hex_digit(c);
        if (v < 0)
            return rfail(r, "bad \\u escape");
        *out = *out << 4 | (unsigned)v;
    }
    return 0;
}

static int put(struct state_reader *r, char *out, size_t size, size_t *n, const char *bytes,
               size_t k)
{
    if (*n + k >= size)
        return rfail(r, "string too long (at most %zu bytes)", size - 1);
    memcpy(out + *n, bytes, k);
    *n += k;
    return 0;
}

/* Decodes one escape after the backslash into UTF-8. No NUL, no surrogates. */
static int escape(struct state_reader *r, char *out, size_t size, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    char c = r->pos < r->len ? r->s[r->pos++] : 0;
    const char *hit = c ? strchr(from, c) : NULL;
    unsigned u;
    char utf8[3];

    if (hit)
        return put(r, out, size, n, &to[hit - from], 1);
    if (c != 'u')
        return rfail(r, "bad escape in string");
    if (hex4(r, &u) != 0)
        return -1;
    if (u == 0 || (u >= 0xd800 && u <= 0xdfff))
        return rfail(r, "\\u%04x is not allowed in a string", u);
    if (u < 0x80) {
        utf8[0] = (char)u;
        return put(r, out, size, n, utf8, 1);
    }
    if (u < 0x800) {
        utf8[0] = (char)(0xc0 | u >> 6);
        utf8[1] = (char)(0x80 | (u & 0x3f));
        return put(r, out, size, n, utf8, 2);
    }
    utf8[0] = (char)(0xe0 | u >> 12);
    utf8[1] = (char)(0x80 | ((u >> 6) & 0x3f));
    utf8[2] = (char)(0x80 | (u & 0x3f));
    return put(r, out, size, n, utf8, 3);
}

static int string(struct state_reader *r, char *out, size_t size)
{
    size_t n = 0;

    if (expect(r, '"') != 0)
        return -1;
    for (;;) {
        if (r->pos >= r->len)
            return rfail(r, "unterminated string");
        unsigned char c = (unsigned char)r->s[r->pos];
        if (c == '"') {
            r->pos++;
            break;
        }
        if (c == '\\') {
            r->pos++;
            if (escape(r, out, size, &n) != 0)
                return -1;
            continue;
        }
        if (c < 0x20)
            return rfail(r, "control character in string");
        size_t k = utf8_sequence((const unsigned char *)r->s + r->pos, r->len - r->pos);
        if (k == 0)
            return rfail(r, "invalid UTF-8 in string");
        if (put(r, out, size, &n, r->s + r->pos, k) != 0)
            return -1;
        r->pos += k;
    }
    out[n] = '\0';
    return 0;
}

static int integer(struct state_reader *r, long long min, long long max, long long *out)
{
    int negative = 0;
    unsigned long long v = 0, limit;
    size_t start;

    peek(r);
    if (r->pos < r->len && r->s[r->pos] == '-') {
        if (min >= 0)
            return rfail(r, "negative number");
        negative = 1;
        r->pos++;
    }
    start = r->pos;
    limit = negative ? (unsigned long long)(-(min + 1)) + 1 : (unsigned long long)max;
    while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9') {
        unsigned d = (unsigned)(r->s[r->pos] - '0');
        if (v > (limit - d) / 10)
            return rfail(r, "number out of range");
        v = v * 10 + d;
        r->pos++;
    }
    if (r->pos == start)
        return rfail(r, "expected a number");
    if (r->pos - start > 1 && r->s[start] == '0')
        return rfail(r, "leading zero in number");
    *out = negative ? (long long)(0 - v) : (long long)v;
    if (*out < min || *out > max)
        return rfail(r, "number out of range");
    return 0;
}

/* A string value; *at = where it starts, so a bad value can be pointed at. */
static int string_at(struct state_reader *r, char *out, size_t size, size_t *at)
{
    peek(r);
    *at = r->pos;
    return string(r, out, size);
}

static int fail_at(struct state_reader *r, size_t at, const char *what)
{
    r->pos = at;
    return rfail(r, "%s", what);
}

static int hash_string(struct state_reader *r, uint8_t out[32])
{
    char hex[80];
    size_t at;
    if (string_at(r, hex, sizeof hex, &at) != 0)
        return -1;
    if (hex_decode(hex, out, 32) != 0)
        return fail_at(r, at, "cert_sha256 must be 64 hex digits");
    return 0;
}

static int key_role(struct state_reader *r, enum pol_key_role *out)
{
    char name[32];
    size_t at;
    int role;
    if (string_at(r, name, sizeof name, &at) != 0)
        return -1;
    if ((role = pol_key_role_from_name(name)) < 0)
        return fail_at(r, at, "unknown key role (recovery or tftp)");
    *out = (enum pol_key_role)role;
    return 0;
}

/*
 * Walks an object: for each member, `member(r, index_of_key, ctx)` reads the value. Every key
 * in `keys` must appear exactly once, and no other.
 */
typedef int (*member_fn)(struct state_reader *r, int which, void *ctx);

static int object(struct state_reader *r, const char *what, const char *const *keys,
                  member_fn member, void *ctx)
{
    unsigned seen = 0;
    char key[32];
    int n_keys = 0;

    while (keys[n_keys])
        n_keys++;
    if (expect(r, '{') != 0)
        return -1;
    if (peek(r) == '}') {
        r->pos++;
    } else {
        for (;;) {
            int which = -1;
            size_t at;
            peek(r);
            at = r->pos;
            if (string(r, key, sizeof key) != 0)
                return -1;
            for (int i = 0; i < n_keys; i++)
                if (strcmp(key, keys[i]) == 0)
                    which = i;
            if (which >= 0 && !(seen & (1u << which))) {
                seen |= 1u << which;
            } else {
                r->pos = at; /* point at the key, not past it */
                return rfail(r, "%s key '%s' in %s", which < 0 ? "unknown" : "duplicate", key,
                             what);
            }
            if (expect(r, ':') != 0 || member(r, which, ctx) != 0)
                return -1;
            if (peek(r) == ',') {
                r->pos++;
                continue;
            }
            if (expect(r, '}') != 0)
                return -1;
            break;
        }
    }
    for (int i = 0; i < n_keys; i++)
        if (!(seen & (1u << i)))
            return rfail(r, "%s lacks '%s'", what, keys[i]);
    return 0;
}

static const char *const regen_keys[] = {"key", "label", "cert_sha256", "time", "uid", NULL};

static int regen_member(struct state_reader *r, int which, void *ctx)
{
    struct pol_regen_event *ev = ctx;
    long long v;

    switch (which) {
    case 0:
        return key_role(r, &ev->key);
    case 1:
        return string(r, ev->label, sizeof ev->label);
    case 2:
        return hash_string(r, ev->cert_sha256);
    case 3:
        if (integer(r, 0, INT64_MAX / 2, &v) != 0)
            return -1;
        ev->time = (time_t)v;
        return 0;
    default:
        if (integer(r, 0, UINT32_MAX - 1, &v) != 0)
            return -1;
        ev->uid = (uid_t)v;
        return 0;
    }
}

static const char *const attestation_keys[] = {"key",  "cert_sha256", "kind", "identity",
                                               "time", "uid",         NULL};

static int attestation_member(struct state_reader *r, int which, void *ctx)
{
    struct pol_attestation *a = ctx;
    long long v;
    size_t at;

    switch (which) {
    case 0:
        return key_role(r, &a->key);
    case 1:
        return hash_string(r, a->cert_sha256);
    case 2:
        if (string_at(r, a->kind, sizeof a->kind, &at) != 0)
            return -1;
        if (pol_attestation_kind_known(a->kind, sizeof a->kind))
            return 0;
        return fail_at(r, at, "attestation kind must be token or p12");
    case 3:
        return string(r, a->identity, sizeof a->identity);
    case 4:
        if (integer(r, 0, INT64_MAX / 2, &v) != 0)
            return -1;
        a->time = (time_t)v;
        return 0;
    default:
        if (integer(r, 0, UINT32_MAX - 1, &v) != 0)
            return -1;
        a->uid = (uid_t)v;
        return 0;
    }
}

static int attestation_list(struct state_reader *r, struct pol_state *st)
{
    if (expect(r, '[') != 0)
        return -1;
    if (peek(r) == ']') {
        r->pos++;
        return 0;
    }
    for (;;) {
        if (st->n_attestations == POL_MAX_ATTESTATIONS)
            return rfail(r, "more than %d attestations", POL_MAX_ATTESTATIONS);
        if (object(r, "an attestation", attestation_keys, attestation_member,
                   &st->attestations[st->n_attestations]) != 0)
            return -1;
        st->n_attestations++;
        if (peek(r) == ',') {
            r->pos++;
            continue;
        }
        return expect(r, ']');
    }
}

static const char *const state_keys[] = {"version",    "generation",   "last_backup_warning",
                                         "last_regen", "attestations", NULL};

static int state_member(struct state_reader *r, int which, void *ctx)
{
    struct pol_state *st = ctx;
    long long v;

    switch (which) {
    case 0:
        if (integer(r, 0, 1000, &v) != 0)
            return -1;
        if (v != STATE_VERSION)
            return rfail(r, "state version %lld is not supported (this is version %d)", v,
                         STATE_VERSION);
        return 0;
    case 1:
        if (integer(r, 0, INT64_MAX, &v) != 0)
            return -1;
        st->generation = (unsigned long long)v;
        return 0;
    case 2:
        if (integer(r, 0, INT64_MAX / 2, &v) != 0)
            return -1;
        st->last_backup_warning = (time_t)v;
        return 0;
    case 3:
        if (literal(r, "null") == 0) {
            st->has_last_regen = 0;
            return 0;
        }
        st->has_last_regen = 1;
        return object(r, "last_regen", regen_keys, regen_member, &st->last_regen);
    default:
        return attestation_list(r, st);
    }
}

int pol_state_parse(const char *text, size_t len, struct pol_state *st, struct itl_error *err)
{
    struct state_reader r = {.s = text, .len = len, .err = err};

    memset(st, 0, sizeof *st);
    if (len == 0)
        return err_set(err, ITL_E_IO,
                       "empty file (a state file is never empty; it may have been "
                       "truncated)");
    if (object(&r, "the state", state_keys, state_member, st) != 0)
        goto bad;
    if (peek(&r) != -1) {
        rfail(&r, "trailing data after the state object");
        goto bad;
    }
    return 0;
bad:
    memset(st, 0, sizeof *st);
    return -1;
}
