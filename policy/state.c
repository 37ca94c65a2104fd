/* SPDX-License-Identifier: MIT */
/*
 * Persistent policy state: <state-dir>/state.json, guarded by flock on <state-dir>/state.lock.
 * Writers hold LOCK_EX across read-modify-write and replace the file atomically
 * (pol_write_file_at); readers hold LOCK_SH. The directory and both files must be ones only
 * root or the service user could have written (pol_check_trusted), in the service and in
 * direct mode alike. The parser accepts exactly what pol_state_format writes, in any key
 * order: a damaged file, or one missing after the first write, is an error, never an empty
 * state, so callers fail closed.
 */
#include "policy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FILE "state.json"
#define LOCK_FILE "state.lock"
#define STATE_VERSION 1
#define STATE_MAX_BYTES (1024 * 1024)

static const char *const attestation_kinds[] = {"token", "p12", NULL};

/* ---- format ---- */

static void format_regen(struct pol_buf *b, const struct pol_regen_event *ev)
{
    pol_buf_addf(b, "{\"key\": \"%s\", \"label\": ", pol_key_role_name(ev->key));
    pol_buf_json_string(b, ev->label);
    pol_buf_puts(b, ", \"cert_sha256\": ");
    pol_buf_json_hex(b, ev->cert_sha256, 32);
    pol_buf_addf(b, ", \"time\": %lld, \"uid\": %u}", (long long)ev->time, (unsigned)ev->uid);
}

static void format_attestation(struct pol_buf *b, const struct pol_attestation *a)
{
    pol_buf_addf(b, "{\"key\": \"%s\", \"cert_sha256\": ", pol_key_role_name(a->key));
    pol_buf_json_hex(b, a->cert_sha256, 32);
    pol_buf_puts(b, ", \"kind\": ");
    pol_buf_json_string(b, a->kind);
    pol_buf_puts(b, ", \"identity\": ");
    pol_buf_json_string(b, a->identity);
    pol_buf_addf(b, ", \"time\": %lld, \"uid\": %u}", (long long)a->time, (unsigned)a->uid);
}

int pol_state_format(const struct pol_state *st, char **out, size_t *out_len)
{
    struct pol_buf b = {0};

    pol_buf_addf(&b, "{\n  \"version\": %d,\n  \"generation\": %llu,\n", STATE_VERSION,
                 st->generation);
    pol_buf_addf(&b, "  \"last_backup_warning\": %lld,\n  \"last_regen\": ",
                 (long long)st->last_backup_warning);
    if (st->has_last_regen)
        format_regen(&b, &st->last_regen);
    else
        pol_buf_puts(&b, "null");
    pol_buf_puts(&b, ",\n  \"attestations\": [");
    for (size_t i = 0; i < st->n_attestations && i < POL_MAX_ATTESTATIONS; i++) {
        pol_buf_puts(&b, i ? ",\n    " : "\n    ");
        format_attestation(&b, &st->attestations[i]);
    }
    pol_buf_puts(&b, st->n_attestations ? "\n  ]\n}\n" : "]\n}\n");
    if (b.failed) {
        pol_buf_free(&b);
        return -1;
    }
    *out = b.data;
    *out_len = b.len;
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
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
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
        /* pol_utf8_sequence stops at a NUL; the text is not NUL-terminated, so copy first */
        unsigned char seq[5] = {0};
        size_t avail = r->len - r->pos < 4 ? r->len - r->pos : 4, k;
        memcpy(seq, r->s + r->pos, avail);
        if ((k = pol_utf8_sequence(seq)) == 0)
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
    if (pol_unhex(hex, out, 32) != 0)
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
        for (int i = 0; attestation_kinds[i]; i++)
            if (strcmp(a->kind, attestation_kinds[i]) == 0)
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

/* ---- whose state it is ---- */

/* Set once by pol_state_set_owner before threads start; read-only afterwards. */
static int owner_set;
static uid_t owner_uid;
static gid_t owner_gid;

static void state_owner(uid_t *uid, gid_t *gid)
{
    *uid = owner_set ? owner_uid : geteuid();
    *gid = owner_set ? owner_gid : getegid();
}

void pol_owner_ids(uid_t *uid, gid_t *gid)
{
    state_owner(uid, gid);
}

/* Root in direct mode writes the service's state: what it creates goes to the service user
 * (by descriptor), who must read and rewrite it. -1 ids mean "leave as created". */
static void new_file_owner(uid_t *uid, gid_t *gid)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (owner_set && geteuid() == 0 && owner_uid != 0) {
        *uid = owner_uid;
        *gid = owner_gid;
    }
}

static int give_to_owner(int fd)
{
    uid_t uid;
    gid_t gid;
    struct stat sb;

    new_file_owner(&uid, &gid);
    if (uid == (uid_t)-1 || fstat(fd, &sb) != 0 || sb.st_uid != 0)
        return 0;
    return fchown(fd, uid, gid);
}

/* A decimal id ("995"), as run-as accepts one; -1 otherwise. */
static int numeric_id(const char *text, unsigned long *id)
{
    char *end;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    *id = strtoul(text, &end, 10);
    return errno || *end || *id >= (unsigned long)(uid_t)-1 ? -1 : 0;
}

int pol_state_set_owner(const struct pol_config *cfg, struct itl_error *err)
{
    const char *where = cfg->path[0] ? cfg->path : "config";
    struct passwd *pw;
    struct group *gr;
    unsigned long id;
    uid_t uid = geteuid();
    gid_t gid = getegid();

    if (cfg->run_as.user[0]) {
        pw = getpwnam(cfg->run_as.user);
        if (!pw && numeric_id(cfg->run_as.user, &id) == 0)
            pw = getpwuid((uid_t)id);
        if (!pw)
            return err_set(err, ITL_E_IO, "%s: run-as.user: no such user '%s'", where,
                           cfg->run_as.user);
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        if (cfg->run_as.group[0]) {
            gr = getgrnam(cfg->run_as.group);
            if (gr)
                gid = gr->gr_gid;
            else if (numeric_id(cfg->run_as.group, &id) == 0)
                gid = (gid_t)id;
            else
                return err_set(err, ITL_E_IO, "%s: run-as.group: no such group '%s'", where,
                               cfg->run_as.group);
        }
    }
    owner_uid = uid;
    owner_gid = gid;
    owner_set = 1;
    return 0;
}

/* ---- the state directory, its lock and its file ---- */

/*
 * state.lock is empty until the first state write completes, then holds this line: from then
 * on a missing state.json means the state was lost (deleted, or a restore that forgot it),
 * never that there is none, so the regeneration hold and the attestations cannot be cleared by
 * removing one file. Whether role keys exist is the token's business, which a reader of the
 * state (the service at a signing request) does not ask; the first write is what a key command
 * with --config does when it makes a role key, so the mark records exactly that.
 */
#define WRITTEN_MARK "state.json has been written: a missing state.json is an error\n"

struct state_files {
    const char *dir;
    int dfd;  /* the state directory, checked; -1: it does not exist (nothing was written) */
    int lock; /* state.lock, locked; -1 when a reader finds none (nothing was written) */
};

static int state_path(const char *dir, const char *file, char *out, size_t size,
                      struct itl_error *err)
{
    int n = snprintf(out, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size)
        return err_set(err, ITL_E_IO, "%s: state directory path too long", dir);
    return 0;
}

/* A file of the state directory, opened as `fd`: a regular file only its owners could write. */
static int check_file(const struct state_files *sf, const char *what, const char *name, int fd,
                      struct itl_error *err)
{
    char path[4096];
    struct stat sb;
    uid_t uid;
    gid_t gid;

    if (state_path(sf->dir, name, path, sizeof path, err) != 0)
        return -1;
    if (fstat(fd, &sb) != 0)
        return err_set(err, ITL_E_IO, "%s %s: %s", what, path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return err_set(err, ITL_E_IO, "%s %s is not a regular file (move it away)", what, path);
    state_owner(&uid, &gid);
    return pol_check_trusted(what, path, &sb, uid, gid, err);
}

/* Opens and checks the state directory; a writer makes it when missing (one level: a typo in
 * state-dir should not grow a tree). */
static int open_state_dir(struct state_files *sf, int create, struct itl_error *err)
{
    struct stat sb;
    uid_t uid;
    gid_t gid;
    int made = 0;

    sf->dfd = open(sf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sf->dfd < 0 && errno == ENOENT && create && mkdir(sf->dir, 0750) == 0) {
        made = 1;
        sf->dfd = open(sf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (sf->dfd < 0) {
        if (errno == ENOENT && !create)
            return 0;
        return err_set(err, ITL_E_IO, "state directory %s: %s", sf->dir, strerror(errno));
    }
    if ((made && give_to_owner(sf->dfd) != 0) || fstat(sf->dfd, &sb) != 0)
        return err_set(err, ITL_E_IO, "state directory %s: %s", sf->dir, strerror(errno));
    state_owner(&uid, &gid);
    return pol_check_trusted("state directory", sf->dir, &sb, uid, gid, err);
}

/* Opens, checks and locks state.lock. */
static int lock_state(struct state_files *sf, int exclusive, struct itl_error *err)
{
    char path[4096];
    const char *how = exclusive ? "exclusive" : "shared";

    if (sf->dfd < 0)
        return 0;
    if (state_path(sf->dir, LOCK_FILE, path, sizeof path, err) != 0)
        return -1;
    sf->lock = openat(sf->dfd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (sf->lock < 0 && !exclusive && (errno == EACCES || errno == EROFS || errno == ENOENT))
        sf->lock = openat(sf->dfd, LOCK_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (sf->lock < 0) {
        if (!exclusive && errno == ENOENT)
            return 0; /* a reader that may not create it: nothing was ever written here */
        return err_set(err, ITL_E_IO, "%s: cannot open the state lock: %s", path, strerror(errno));
    }
    if (exclusive && give_to_owner(sf->lock) != 0)
        return err_set(err, ITL_E_IO, "%s: cannot give it to the service user: %s", path,
                       strerror(errno));
    if (check_file(sf, "state lock", LOCK_FILE, sf->lock, err) != 0)
        return -1;
    while (flock(sf->lock, exclusive ? LOCK_EX : LOCK_SH) != 0)
        if (errno != EINTR)
            return err_set(err, ITL_E_IO, "%s: cannot take the %s lock: %s", path, how,
                           strerror(errno));
    return 0;
}

static void close_state(struct state_files *sf)
{
    if (sf->lock >= 0)
        close(sf->lock); /* closing drops the flock */
    if (sf->dfd >= 0)
        close(sf->dfd);
    sf->lock = sf->dfd = -1;
}

static int state_was_written(const struct state_files *sf)
{
    struct stat sb;
    return sf->lock >= 0 && fstat(sf->lock, &sb) == 0 && sb.st_size > 0;
}

/* Under the exclusive lock, once the state file is durable. */
static int mark_written(const struct state_files *sf, struct itl_error *err)
{
    const size_t len = sizeof WRITTEN_MARK - 1;

    if (state_was_written(sf))
        return 0;
    if (pwrite(sf->lock, WRITTEN_MARK, len, 0) != (ssize_t)len || fsync(sf->lock) != 0)
        return err_set(err, ITL_E_IO, "%s/%s: cannot record the first state write: %s", sf->dir,
                       LOCK_FILE, strerror(errno));
    return 0;
}

static int read_state(const struct state_files *sf, struct pol_state *st, struct itl_error *err)
{
    char path[4096], lock[4096], *text;
    struct stat sb;
    size_t got = 0;
    ssize_t n;
    int fd, rc;

    memset(st, 0, sizeof *st);
    if (sf->dfd < 0)
        return 0;
    if (state_path(sf->dir, STATE_FILE, path, sizeof path, err) != 0 ||
        state_path(sf->dir, LOCK_FILE, lock, sizeof lock, err) != 0)
        return -1;
    /* O_NONBLOCK: a FIFO planted there must not hang the service (it is refused below). */
    fd = openat(sf->dfd, STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && !state_was_written(sf))
        return 0;
    if (fd < 0 && errno == ENOENT)
        return err_set(err, ITL_E_IO,
                       "%s is missing, but the state was written before (%s records it): "
                       "refusing to continue with an empty state, which would clear the "
                       "regeneration hold and the backup attestations (restore %s from a "
                       "backup; to start over on purpose, remove %s as well)",
                       path, lock, path, lock);
    if (fd < 0)
        return err_set(err, ITL_E_IO, "%s: cannot read the policy state: %s", path,
                       strerror(errno));
    if (check_file(sf, "state file", STATE_FILE, fd, err) != 0) {
        close(fd);
        return -1;
    }
    if (fstat(fd, &sb) != 0 || sb.st_size > STATE_MAX_BYTES) {
        close(fd);
        return err_set(err, ITL_E_IO, "%s: not a regular file of at most %d bytes", path,
                       STATE_MAX_BYTES);
    }
    text = malloc((size_t)sb.st_size + 1);
    if (!text) {
        close(fd);
        return err_set(err, ITL_E_IO, "%s: out of memory", path);
    }
    while (got < (size_t)sb.st_size &&
           ((n = read(fd, text + got, (size_t)sb.st_size - got)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            got += (size_t)n;
    close(fd);
    if (got != (size_t)sb.st_size) {
        free(text);
        return err_set(err, ITL_E_IO, "%s: read failed", path);
    }
    struct itl_error why;
    rc = pol_state_parse(text, got, st, &why);
    free(text);
    if (rc != 0)
        return err_set(err, ITL_E_IO,
                       "%s: corrupt policy state: %s (refusing to continue; restore the file "
                       "or move it away after checking it)",
                       path, why.msg);
    return 0;
}

/* Never write what the reader would refuse: that would stop signing at the next load. */
static int reads_back(const char *text, size_t len, struct itl_error *err, const char *path)
{
    struct pol_state *check = malloc(sizeof *check);
    struct itl_error why;
    int ok;

    if (!check) {
        err_set(err, ITL_E_IO, "%s: out of memory", path);
        return 0;
    }
    ok = pol_state_parse(text, len, check, &why) == 0;
    free(check);
    if (!ok)
        err_set(err, ITL_E_IO, "%s: refusing to write a state that would not read back: %s", path,
                why.msg);
    return ok;
}

static int write_state(const struct state_files *sf, const struct pol_state *st,
                       struct itl_error *err)
{
    char path[4096], *text = NULL;
    size_t len;
    uid_t uid;
    gid_t gid;
    int rc;

    if (state_path(sf->dir, STATE_FILE, path, sizeof path, err) != 0)
        return -1;
    if (pol_state_format(st, &text, &len) != 0)
        return err_set(err, ITL_E_IO, "%s: out of memory", path);
    if (!reads_back(text, len, err, path)) {
        free(text);
        return -1;
    }
    new_file_owner(&uid, &gid);
    rc = pol_write_file_at(sf->dfd, sf->dir, STATE_FILE, text, len, 0640, uid, gid, 1, err);
    free(text);
    return rc == 0 ? mark_written(sf, err) : -1;
}

int pol_state_load(const char *state_dir, struct pol_state *st, struct itl_error *err)
{
    struct state_files sf = {.dir = state_dir, .dfd = -1, .lock = -1};
    int rc = -1;

    memset(st, 0, sizeof *st);
    if (open_state_dir(&sf, 0, err) == 0 && lock_state(&sf, 0, err) == 0)
        rc = read_state(&sf, st, err);
    close_state(&sf);
    return rc;
}

/* Read-modify-write under the exclusive lock; change() returns -1 (err set) to write nothing. */
typedef int (*change_fn)(struct pol_state *st, const void *arg, struct itl_error *err);

static int update_state(const char *state_dir, change_fn change, const void *arg,
                        struct itl_error *err)
{
    struct state_files sf = {.dir = state_dir, .dfd = -1, .lock = -1};
    struct pol_state *st;
    int rc = -1;

    /* What another user wrote would be refused at the next read: do not write it. */
    if (owner_set && geteuid() != 0 && geteuid() != owner_uid)
        return err_set(err, ITL_E_IO,
                       "%s: the policy state is written only by root or the service user (uid "
                       "%u); run this as one of them",
                       state_dir, (unsigned)owner_uid);
    st = malloc(sizeof *st);
    if (!st)
        return err_set(err, ITL_E_IO, "%s: out of memory", state_dir);
    if (open_state_dir(&sf, 1, err) == 0 && lock_state(&sf, 1, err) == 0 &&
        read_state(&sf, st, err) == 0 && change(st, arg, err) == 0) {
        st->generation++;
        rc = write_state(&sf, st, err);
    }
    close_state(&sf);
    free(st);
    return rc;
}

/* Text the state file can hold: set, UTF-8, no control characters. */
static int text_ok(const char *s, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;

    if (!memchr(s, '\0', size) || !*s)
        return 0;
    for (; *p; p += n)
        if (*p < 0x20 || *p == 0x7f || (n = pol_utf8_sequence(p)) == 0)
            return 0;
    return 1;
}

static int time_ok(time_t t)
{
    return t >= 0 && (long long)t <= INT64_MAX / 2;
}

struct regen_change {
    const struct pol_config *cfg;
    const struct pol_regen_event *ev;
    struct pol_decision *d;
};

static int apply_regen(struct pol_state *st, const void *arg, struct itl_error *err)
{
    const struct regen_change *c = arg;
    size_t kept = 0;

    if ((unsigned)c->ev->key >= POL_KEY_COUNT)
        return err_set(err, ITL_E_IO, "regeneration: unknown key role %d", (int)c->ev->key);
    if (!text_ok(c->ev->label, sizeof c->ev->label))
        return err_set(err, ITL_E_IO,
                       "regeneration: label must be set, UTF-8, without control "
                       "characters");
    if (!time_ok(c->ev->time) || c->ev->uid == (uid_t)-1)
        return err_set(err, ITL_E_IO, "regeneration: time or uid out of range");
    if (pol_check_hold(c->cfg, st, c->ev->key, c->ev->time, c->d) != 0)
        return err_set(err, ITL_E_IO, "%s", c->d->message);
    st->has_last_regen = 1;
    st->last_regen = *c->ev;
    for (size_t i = 0; i < st->n_attestations; i++)
        if (st->attestations[i].key != c->ev->key)
            st->attestations[kept++] = st->attestations[i];
    st->n_attestations = kept;
    return 0;
}

int pol_state_record_regen(const char *state_dir, const struct pol_config *cfg,
                           const struct pol_regen_event *ev, struct pol_decision *d,
                           struct itl_error *err)
{
    struct pol_decision unused;
    struct regen_change c;

    if (!d)
        d = &unused;
    c = (struct regen_change){cfg, ev, d};
    memset(d, 0, sizeof *d);
    d->allow = 1;
    snprintf(d->rule, sizeof d->rule, "ok");
    return update_state(state_dir, apply_regen, &c, err);
}

static int same_attestation(const struct pol_attestation *a, const struct pol_attestation *b)
{
    return a->key == b->key && memcmp(a->cert_sha256, b->cert_sha256, 32) == 0 &&
           strcmp(a->kind, b->kind) == 0 && strcmp(a->identity, b->identity) == 0;
}

static int valid_attestation(const struct pol_attestation *a, struct itl_error *err)
{
    int kind_ok = 0;

    if ((unsigned)a->key >= POL_KEY_COUNT)
        return err_set(err, ITL_E_IO, "attestation: unknown key role %d", (int)a->key);
    for (int i = 0; attestation_kinds[i]; i++)
        kind_ok |= strncmp(a->kind, attestation_kinds[i], sizeof a->kind) == 0;
    if (!kind_ok)
        return err_set(err, ITL_E_IO, "attestation: kind must be token or p12");
    if (!text_ok(a->identity, sizeof a->identity))
        return err_set(err, ITL_E_IO,
                       "attestation: identity must be set, UTF-8, without control "
                       "characters");
    if (!time_ok(a->time) || a->uid == (uid_t)-1)
        return err_set(err, ITL_E_IO, "attestation: time or uid out of range");
    return 0;
}

static int apply_attestation(struct pol_state *st, const void *arg, struct itl_error *err)
{
    const struct pol_attestation *a = arg;
    size_t slot = st->n_attestations;

    (void)err;
    for (size_t i = 0; i < st->n_attestations; i++)
        if (same_attestation(&st->attestations[i], a))
            slot = i;
    if (slot == POL_MAX_ATTESTATIONS) {
        slot = 0;
        for (size_t i = 1; i < st->n_attestations; i++)
            if (st->attestations[i].time < st->attestations[slot].time)
                slot = i;
    }
    st->attestations[slot] = *a;
    if (slot == st->n_attestations)
        st->n_attestations++;
    return 0;
}

int pol_state_record_attestation(const char *state_dir, const struct pol_attestation *a,
                                 struct itl_error *err)
{
    if (valid_attestation(a, err) != 0)
        return -1;
    return update_state(state_dir, apply_attestation, a, err);
}

static int apply_backup_warning(struct pol_state *st, const void *arg, struct itl_error *err)
{
    if (!time_ok(*(const time_t *)arg))
        return err_set(err, ITL_E_IO, "backup warning: time out of range");
    st->last_backup_warning = *(const time_t *)arg;
    return 0;
}

int pol_state_record_backup_warning(const char *state_dir, time_t when, struct itl_error *err)
{
    return update_state(state_dir, apply_backup_warning, &when, err);
}

const struct pol_attestation *pol_state_find_attestation(const struct pol_state *st,
                                                         enum pol_key_role key,
                                                         const uint8_t cert_sha256[32])
{
    for (size_t i = 0; st && cert_sha256 && i < st->n_attestations; i++)
        if (st->attestations[i].key == key &&
            memcmp(st->attestations[i].cert_sha256, cert_sha256, 32) == 0)
            return &st->attestations[i];
    return NULL;
}
