/* SPDX-License-Identifier: MIT */
/*
 * The audit log: one JSON object per line. A line is written with one write() on an O_APPEND
 * descriptor, so lines from threads and processes never interleave, and fsync'd before the
 * caller replies: a request whose record is not durable fails. A short write is cut off again:
 * a record is whole or absent.
 *
 * The log is opened in a directory only root and its owner can write, without following a
 * link, and its owner and mode are set through the descriptor: root may open it (itl-signd
 * before it drops to run-as) in a directory the service user owns.
 *
 * Group commit: audit_commit.c.
 */
#include "policy/audit_internal.h"
#include "policy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Repeated denials and malformed requests from one uid: the first DENIAL_BURST of an interval
 * (one a second on average: ~30 MB a day at most, against ~11 GB unlimited) are recorded one by
 * one, the rest are counted and summed up in one record at the end of the interval (or at close). A
 * peer that only gets refused cannot fill the disk with fsync'd lines, and every refusal is still
 * accounted for. */
#define DENIAL_BURST 60
#define DENIAL_INTERVAL_S 60

static void path_split(const char *path, char *dir, size_t size, const char **base)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        snprintf(dir, size, ".");
        *base = path;
    } else {
        snprintf(dir, size, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        *base = slash + 1;
    }
}

/* Anyone who can write the directory can replace the log: it is held to the rules of the
 * service's other directories. */
static int check_dir(const struct pol_audit *a, int dfd, const char *dir, struct itl_error *err)
{
    struct stat st;

    if (fstat(dfd, &st) != 0)
        return err_set(err, ITL_E_IO, "%s: cannot open the audit log: %s", a->path,
                       strerror(errno));
    return pol_check_trusted("audit log directory", dir, &st, a->owner, a->group, err);
}

/* The opened log itself: a regular file with one name, owned by root or its owner (another
 * user's file is refused rather than taken over: whoever owned it could have rewritten what it
 * holds), handed to the owner and narrowed to 0640 (a wider mode is the admin's slip, fixed
 * without loss). Everything goes through the descriptor: the name may point elsewhere by now. */
static int check_log(const struct pol_audit *a, int fd, struct itl_error *err)
{
    struct stat st, narrowed;

    if (fstat(fd, &st) != 0)
        return err_set(err, ITL_E_IO, "%s: cannot open the audit log: %s", a->path,
                       strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(err, ITL_E_IO, "%s: the audit log is not a regular file", a->path);
    if (st.st_nlink != 1)
        return err_set(err, ITL_E_IO,
                       "%s: the audit log has %lu names (hard links), so it may be another "
                       "file; refusing it (fix: give it one name)",
                       a->path, (unsigned long)st.st_nlink);
    narrowed = st;
    narrowed.st_mode &= S_IFMT | 0640;
    if (pol_check_trusted("audit log", a->path, &narrowed, a->owner, a->group, err) != 0)
        return -1;
    if (geteuid() == 0 && (st.st_uid != a->owner || st.st_gid != a->group) &&
        fchown(fd, a->owner, a->group) != 0)
        return err_set(err, ITL_E_IO, "%s: cannot give the audit log to uid %u: %s", a->path,
                       (unsigned)a->owner, strerror(errno));
    if (narrowed.st_mode != st.st_mode && fchmod(fd, narrowed.st_mode & 07777) != 0)
        return err_set(err, ITL_E_IO,
                       "%s: the audit log has mode %04o and cannot be narrowed to 0640: %s (fix: "
                       "chmod 0640 %s)",
                       a->path, (unsigned)(st.st_mode & 07777), strerror(errno), a->path);
    return 0;
}

static int open_log(const struct pol_audit *a, struct itl_error *err)
{
    char dir[sizeof a->path];
    const char *base;
    int dfd, fd;

    path_split(a->path, dir, sizeof dir, &base);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return err_set(err, ITL_E_IO, "%s: cannot open the audit log: %s", a->path,
                       strerror(errno));
    if (check_dir(a, dfd, dir, err) != 0) {
        close(dfd);
        return -1;
    }
    /* O_NONBLOCK: a FIFO planted as the log must not hang the start (it is refused below). */
    fd = openat(dfd, base,
                /* O_RDWR: a torn last line is found by reading it (ends_torn). */
                O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0640);
    close(dfd);
    if (fd < 0)
        return err_set(err, ITL_E_IO, "%s: cannot open the audit log: %s", a->path,
                       strerror(errno));
    if (check_log(a, fd, err) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int pol_audit_open_as(const char *path, uid_t owner, gid_t group, struct pol_audit **out,
                      struct itl_error *err)
{
    struct pol_audit *a;

    *out = NULL;
    if (strlen(path) >= sizeof a->path)
        return err_set(err, ITL_E_IO, "%s: audit log path too long", path);
    a = calloc(1, sizeof *a);
    if (!a)
        return err_set(err, ITL_E_IO, "%s: out of memory", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    a->owner = owner;
    a->group = group;
    a->burst = DENIAL_BURST;
    a->interval = DENIAL_INTERVAL_S;
    a->group_wait_ms = AUDIT_GROUP_WAIT_MS;
    if ((a->fd = open_log(a, err)) < 0) {
        free(a);
        return -1;
    }
    pthread_rwlock_init(&a->fd_lock, NULL);
    pthread_mutex_init(&a->write_lock, NULL);
    pthread_cond_init(&a->flushed, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->arrived, &ca);
    pthread_cond_init(&a->want_flush, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&a->denial_lock, NULL);
    *out = a;
    return 0;
}

int pol_audit_open(const char *path, struct pol_audit **out, struct itl_error *err)
{
    uid_t uid;
    gid_t gid;

    pol_owner_ids(&uid, &gid);
    return pol_audit_open_as(path, uid, gid, out, err);
}

void pol_audit_set_denial_limit(struct pol_audit *a, unsigned burst, unsigned interval_s)
{
    pthread_mutex_lock(&a->denial_lock);
    a->burst = burst;
    a->interval = interval_s;
    pthread_mutex_unlock(&a->denial_lock);
}

static int flush_held(struct pol_audit *a, struct itl_error *err);

int pol_audit_reopen(struct pol_audit *a, struct itl_error *err)
{
    struct itl_error held_err;
    int fd = open_log(a, err);

    /* On failure keep the old descriptor: records still land (in the rotated file). */
    if (fd < 0)
        return -1;
    /* The counted denials belong with the records before them, in the rotated file. */
    flush_held(a, &held_err);
    pthread_rwlock_wrlock(&a->fd_lock);
    /* Records written but not yet waited for (deferred) are on the old descriptor: flushed
     * here, since a flush of the new one would not cover them. */
    pthread_mutex_lock(&a->write_lock);
    if (a->durable < a->written) {
        a->flushes++;
        if (fdatasync(a->fd) == 0) {
            a->durable = a->written;
        } else {
            a->failed_upto = a->written;
            a->flush_errno = errno;
        }
    }
    pthread_mutex_unlock(&a->write_lock);
    close(a->fd);
    a->fd = fd;
    pthread_rwlock_unlock(&a->fd_lock);
    return 0;
}

void pol_audit_close(struct pol_audit *a)
{
    struct itl_error held_err;

    if (!a)
        return;
    flush_held(a, &held_err);
    audit_flusher_stop(a);
    close(a->fd);
    pthread_rwlock_destroy(&a->fd_lock);
    pthread_mutex_destroy(&a->write_lock);
    pthread_cond_destroy(&a->flushed);
    pthread_cond_destroy(&a->arrived);
    pthread_cond_destroy(&a->want_flush);
    pthread_mutex_destroy(&a->denial_lock);
    free(a);
}

static void field_string(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, ",\"%s\":", name);
    json_cstring(b, value);
}

/* Every field but the closing brace, so that a summary can add its count. */
static void format_fields(struct buf *b, const struct pol_audit_record *r)
{
    char when[TIME_ISO_LEN];

    time_iso(r->time, when);
    buf_printf(b, "{\"time\":\"%s\"", when);
    if (r->peer)
        buf_printf(b, ",\"uid\":%u,\"gid\":%u,\"pid\":%ld", (unsigned)r->peer->uid,
                   (unsigned)r->peer->gid, (long)r->peer->pid);
    else
        buf_printf(b, ",\"uid\":null,\"gid\":null,\"pid\":null");
    field_string(b, "op", r->op);
    field_string(b, "file", r->file);
    buf_printf(b, ",\"in_sha256\":");
    json_hex(b, r->in_sha256, 32);
    buf_printf(b, ",\"out_sha256\":");
    json_hex(b, r->out_sha256, 32);
    field_string(b, "key", r->key);
    field_string(b, "result", r->result);
    field_string(b, "rule", r->rule);
    field_string(b, "message", r->message);
}

/* ---- Denial aggregation ---- */

/* A refusal any peer can repeat at will and that says nothing about a file: denied by the
 * access rules (no right for the operation), a malformed frame, a refused connection. A policy
 * refusal (output-kind, key-role, sast-signer, ...) of a peer that holds the right is evidence
 * of what it tried to get signed, and is always recorded whole; so are served requests. */
static int is_denial(const struct pol_audit_record *r)
{
    if (!r->peer || !r->result || !r->op)
        return 0;
    if (strcmp(r->op, "protocol") == 0 || strcmp(r->op, "connection") == 0)
        return strcmp(r->result, "error") == 0 || strcmp(r->result, "denied") == 0;
    return strcmp(r->result, "denied") == 0 && r->rule && strcmp(r->rule, "access") == 0;
}

/* One "denied-summary" record per uid with held denials; the interval is closed. Under
 * denial_lock. */
static void take_summaries(struct pol_audit *a, struct buf *b)
{
    for (size_t i = 0; i < a->n_denials; i++) {
        const struct denial_count *d = &a->denials[i];
        struct pol_peer peer = {.uid = d->uid, .gid = d->gid, .pid = d->pid};
        char since[TIME_ISO_LEN], message[160];

        if (!d->held)
            continue;
        time_iso(d->first_held, since);
        snprintf(message, sizeof message,
                 "%llu more denied or malformed requests since %s, counted, not recorded one by "
                 "one (more than %u in %u s)",
                 d->held, since, a->burst, a->interval);
        struct pol_audit_record r = {.time = d->last,
                                     .peer = &peer,
                                     .op = "denied-summary",
                                     .result = "denied",
                                     .message = message};
        format_fields(b, &r);
        buf_printf(b, ",\"count\":%llu}\n", d->held);
    }
    a->n_denials = 0;
    a->window = 0;
}

/* Accounts for r: 1 when it is only counted (not recorded by itself). Summaries that are due
 * are added to b, ahead of r. */
static int hold_denial(struct pol_audit *a, const struct pol_audit_record *r, struct buf *b)
{
    struct denial_count *d = NULL;
    int held = 0;

    pthread_mutex_lock(&a->denial_lock);
    /* An interval ends with the first record after it (any record), or when the clock moved
     * back. */
    if (a->window && (r->time >= a->window + (time_t)a->interval || r->time < a->window))
        take_summaries(a, b);
    if (!a->interval || !is_denial(r))
        goto out;
    if (!a->window)
        a->window = r->time;
    for (size_t i = 0; i < a->n_denials && !d; i++)
        if (a->denials[i].uid == r->peer->uid)
            d = &a->denials[i];
    if (!d && a->n_denials < DENIAL_UIDS) {
        d = &a->denials[a->n_denials++];
        *d = (struct denial_count){.uid = r->peer->uid};
    }
    if (!d || ++d->seen <= a->burst)
        goto out; /* too many uids to track: recorded one by one, as before */
    if (!d->held++)
        d->first_held = r->time;
    d->gid = r->peer->gid;
    d->pid = r->peer->pid;
    d->last = r->time;
    held = 1;
out:
    pthread_mutex_unlock(&a->denial_lock);
    return held;
}

/* ---- Writing ---- */

/* Does the log end in the middle of a line? A record torn by a crash (SIGKILL between a short
 * write and its cut), by a cut that failed, or by another writer must not swallow ours. */
static int ends_torn(int fd, off_t size)
{
    char last;

    return size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n';
}

/* Appends all of data[0..len), or cuts the file back to `size` and returns -1 with errno. */
static int append_or_cut(int fd, const uint8_t *data, size_t len, off_t size)
{
    ssize_t n;
    int saved;

    /* One write() normally; after a short one, the rest is tried to learn why it stopped. */
    for (size_t done = 0; done < len; done += (size_t)n) {
        n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n > 0)
            continue;
        saved = n < 0 ? errno : ENOSPC;
        /* If even the cut fails, the next record sees the torn line (ends_torn). */
        if (done)
            (void)!ftruncate(fd, size);
        errno = saved;
        return -1;
    }
    return 0;
}

/* One write() of whole lines, under write_lock. A record is whole or absent: a short write
 * (disk full, RLIMIT_FSIZE) is cut off again, under an flock so that no other process (direct
 * mode writes the same log) appends behind it; a line left torn before (a crash, a cut that
 * failed) is ended first, so no record is ever glued onto it. Returns 0 or -1 with errno. */
static int write_whole(struct pol_audit *a, const struct buf *b)
{
    static const uint8_t newline = '\n';
    struct stat st;
    off_t size;
    int rc = -1, saved;

    while (flock(a->fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return -1;
    if (fstat(a->fd, &st) != 0)
        goto out;
    size = st.st_size;
    if (ends_torn(a->fd, size)) {
        if (append_or_cut(a->fd, &newline, 1, size) != 0)
            goto out;
        size++;
    }
    rc = append_or_cut(a->fd, b->data, b->len, size);
out:
    saved = errno;
    flock(a->fd, LOCK_UN);
    errno = saved;
    return rc;
}

static int audit_write(struct pol_audit *a, const struct pol_audit_record *r, int expected,
                       unsigned long long *seq, struct itl_error *err);

/* A record written but not waited for: its sequence number (0 when it was only counted). */
int pol_audit_write_deferred(struct pol_audit *a, const struct pol_audit_record *r,
                             unsigned long long *seq, struct itl_error *err)
{
    *seq = 0;
    return audit_write(a, r, 2, seq, err);
}

/* Writes b and waits until it is durable; with `seq` (deferred), only writes it and returns
 * its sequence number for pol_audit_sync. */
static int write_durable(struct pol_audit *a, const struct buf *b, int expected,
                         unsigned long long *seq_out, struct itl_error *err)
{
    int rc = 0, saved;

    pthread_rwlock_rdlock(&a->fd_lock);
    pthread_mutex_lock(&a->write_lock);
    if (b->failed) {
        audit_arrived(a, expected);
        rc = err_set(err, ITL_E_IO, "%s: out of memory for an audit record", a->path);
    } else if (write_whole(a, b) != 0) {
        saved = errno;
        audit_arrived(a, expected);
        rc = err_set(err, ITL_E_IO, "%s: audit record not written: %s", a->path, strerror(saved));
    } else {
        unsigned long long seq = ++a->written;
        audit_arrived(a, expected);
        if (seq_out)
            *seq_out = seq;
        else if ((saved = audit_wait_durable(a, seq)) != 0)
            rc = err_set(err, ITL_E_IO, "%s: audit record not durable: %s", a->path,
                         strerror(saved));
    }
    pthread_mutex_unlock(&a->write_lock);
    pthread_rwlock_unlock(&a->fd_lock);
    return rc;
}

static int audit_write(struct pol_audit *a, const struct pol_audit_record *r, int expected,
                       unsigned long long *seq, struct itl_error *err)
{
    struct buf line = {0};
    int rc = 0;

    if (!hold_denial(a, r, &line)) {
        format_fields(&line, r);
        buf_put(&line, "}\n", 2);
    }
    if (line.len || line.failed) {
        rc = write_durable(a, &line, expected, seq, err);
    } else if (expected) {
        pthread_mutex_lock(&a->write_lock);
        audit_arrived(a, expected);
        pthread_mutex_unlock(&a->write_lock);
    }
    buf_free(&line);
    return rc;
}

int pol_audit_write(struct pol_audit *a, const struct pol_audit_record *r, struct itl_error *err)
{
    return audit_write(a, r, 0, NULL, err);
}

int pol_audit_write_expected(struct pol_audit *a, const struct pol_audit_record *r,
                             struct itl_error *err)
{
    return audit_write(a, r, 1, NULL, err);
}

int pol_audit_write_intent(struct pol_audit *a, const struct pol_audit_record *r,
                           unsigned long long *seq, struct itl_error *err)
{
    *seq = 0;
    if (audit_write(a, r, 1, seq, err) != 0)
        return -1;
    audit_flush_soon(a, *seq);
    return 0;
}

int pol_audit_write_after(struct pol_audit *a, const struct pol_audit_record *r,
                          struct itl_error *err)
{
    unsigned long long seq = 0;

    if (audit_write(a, r, 0, &seq, err) != 0)
        return -1;
    audit_flush_later(a);
    return 0;
}

/* The summaries of an interval still open (close, reopen). */
static int flush_held(struct pol_audit *a, struct itl_error *err)
{
    struct buf b = {0};
    int rc = 0;

    pthread_mutex_lock(&a->denial_lock);
    take_summaries(a, &b);
    pthread_mutex_unlock(&a->denial_lock);
    if (b.len || b.failed)
        rc = write_durable(a, &b, 0, NULL, err);
    buf_free(&b);
    return rc;
}
