/* SPDX-License-Identifier: MIT */
/*
 * The audit log: one JSON object per line. A line is written with one write() on an O_APPEND
 * descriptor, so lines from threads and processes never interleave, and fsync'd before the
 * caller replies: a request whose record is not durable fails.
 *
 * Group commit: a flush takes ~3 ms on a virtual disk, ten times a signature. Writers that
 * arrive while one thread is in fdatasync() wait for the next one, which covers all of them, so
 * parallel requests share a flush instead of queueing for one each.
 */
#include "policy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pol_audit {
    char path[4096];
    int fd;
    /* Writers hold `fd_lock` shared while they use fd (write, fsync) so that a reopen, which
     * holds it exclusively, never closes a descriptor under them; `write_lock` orders the
     * write() calls themselves. */
    pthread_rwlock_t fd_lock;
    pthread_mutex_t write_lock;
    /* Under write_lock: lines written, lines known durable, a flush in progress, and the
     * last failed flush (every line up to failed_upto shares its error). */
    pthread_cond_t flushed;
    unsigned long long written, durable, failed_upto;
    int flushing, flush_errno;
};

static int open_log(const char *path, struct pol_err *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
    if (fd < 0)
        return pol_errf(err, "%s: cannot open the audit log: %s", path, strerror(errno));
    return fd;
}

int pol_audit_open(const char *path, struct pol_audit **out, struct pol_err *err)
{
    struct pol_audit *a;

    *out = NULL;
    if (strlen(path) >= sizeof a->path)
        return pol_errf(err, "%s: audit log path too long", path);
    a = calloc(1, sizeof *a);
    if (!a)
        return pol_errf(err, "%s: out of memory", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    if ((a->fd = open_log(path, err)) < 0) {
        free(a);
        return -1;
    }
    pthread_rwlock_init(&a->fd_lock, NULL);
    pthread_mutex_init(&a->write_lock, NULL);
    pthread_cond_init(&a->flushed, NULL);
    *out = a;
    return 0;
}

int pol_audit_reopen(struct pol_audit *a, struct pol_err *err)
{
    int fd = open_log(a->path, err);

    /* On failure keep the old descriptor: records still land (in the rotated file). */
    if (fd < 0)
        return -1;
    pthread_rwlock_wrlock(&a->fd_lock);
    close(a->fd);
    a->fd = fd;
    pthread_rwlock_unlock(&a->fd_lock);
    return 0;
}

void pol_audit_close(struct pol_audit *a)
{
    if (!a)
        return;
    close(a->fd);
    pthread_rwlock_destroy(&a->fd_lock);
    pthread_mutex_destroy(&a->write_lock);
    pthread_cond_destroy(&a->flushed);
    free(a);
}

static void field_string(struct pol_buf *b, const char *name, const char *value)
{
    pol_buf_addf(b, ",\"%s\":", name);
    pol_buf_json_string(b, value);
}

static void format_record(struct pol_buf *b, const struct pol_audit_record *r)
{
    char when[POL_TIME_LEN];

    pol_time_iso(r->time, when);
    pol_buf_addf(b, "{\"time\":\"%s\"", when);
    if (r->peer)
        pol_buf_addf(b, ",\"uid\":%u,\"gid\":%u,\"pid\":%ld", (unsigned)r->peer->uid,
                     (unsigned)r->peer->gid, (long)r->peer->pid);
    else
        pol_buf_addf(b, ",\"uid\":null,\"gid\":null,\"pid\":null");
    field_string(b, "op", r->op);
    field_string(b, "file", r->file);
    pol_buf_addf(b, ",\"in_sha256\":");
    pol_buf_json_hex(b, r->in_sha256, 32);
    pol_buf_addf(b, ",\"out_sha256\":");
    pol_buf_json_hex(b, r->out_sha256, 32);
    field_string(b, "key", r->key);
    field_string(b, "result", r->result);
    field_string(b, "rule", r->rule);
    field_string(b, "message", r->message);
    pol_buf_add(b, "}\n", 2);
}

/* Wait until line `seq` is durable, flushing when nobody else is. Called with write_lock held.
 * Returns 0, or the errno of the flush that covered it. */
static int wait_durable(struct pol_audit *a, unsigned long long seq)
{
    while (a->durable < seq) {
        if (a->failed_upto >= seq)
            return a->flush_errno;
        if (a->flushing) {
            pthread_cond_wait(&a->flushed, &a->write_lock);
            continue;
        }
        unsigned long long target = a->written;
        a->flushing = 1;
        pthread_mutex_unlock(&a->write_lock);
        int rc = fdatasync(a->fd) == 0 ? 0 : errno;
        pthread_mutex_lock(&a->write_lock);
        a->flushing = 0;
        if (rc == 0) {
            if (target > a->durable)
                a->durable = target;
        } else {
            a->failed_upto = target;
            a->flush_errno = rc;
        }
        pthread_cond_broadcast(&a->flushed);
    }
    return 0;
}

int pol_audit_write(struct pol_audit *a, const struct pol_audit_record *r, struct pol_err *err)
{
    struct pol_buf line = {0};
    ssize_t n;
    int saved = 0, rc = 0;

    format_record(&line, r);
    if (line.failed) {
        pol_buf_free(&line);
        return pol_errf(err, "%s: out of memory for an audit record", a->path);
    }
    pthread_rwlock_rdlock(&a->fd_lock);
    pthread_mutex_lock(&a->write_lock);
    do
        n = write(a->fd, line.data, line.len);
    while (n < 0 && errno == EINTR);
    saved = errno;
    if (n != (ssize_t)line.len) {
        rc = pol_errf(err, "%s: audit record not written: %s", a->path,
                      n < 0 ? strerror(saved) : "short write");
    } else if ((saved = wait_durable(a, ++a->written)) != 0) {
        rc = pol_errf(err, "%s: audit record not durable: %s", a->path, strerror(saved));
    }
    pthread_mutex_unlock(&a->write_lock);
    pthread_rwlock_unlock(&a->fd_lock);
    pol_buf_free(&line);
    return rc;
}
