/* SPDX-License-Identifier: MIT */
/*
 * The audit log's group commit: every record is durable before its request is answered, and
 * requests in flight share one fdatasync.
 *
 * Group commit: a flush takes ~3 ms on a virtual disk, ten times a signature. Writers that
 * arrive while one thread is in fdatasync() wait for the next one, which covers all of them, so
 * parallel requests share a flush instead of queueing for one each. That alone merged little
 * (1.13 records a flush with 16 requests in flight: each writer found the disk idle and flushed
 * at once), so the engine also says when a request starts (pol_audit_expect): a writer about to
 * flush first waits until every request already in flight has written its record, and one
 * flush covers them all, as long as records keep arriving (a gap of AUDIT_GROUP_WAIT_MS
 * without one means a request stalls: flush without it), at most ten gaps in all. Pipelined
 * requests (itl-signd) write theirs without waiting (pol_audit_write_deferred) and one
 * pol_audit_sync covers the group.
 * A lone request has nobody to wait for and flushes at once.
 */
#include "policy/audit_internal.h"
#include "policy/internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct timespec after_ms(unsigned long long ms)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Before a flush: until the requests in flight have written their records (or none came for
 * group_wait_ms, or ten times that passed), so that one flush covers them. Under write_lock, with
 * `flushing` set: writers that come meanwhile wait for this flush. */
static void gather(struct pol_audit *a)
{
    struct timespec cap, gap;

    if (!a->expected)
        return;
    cap = after_ms(10ull * a->group_wait_ms);
    gap = after_ms(a->group_wait_ms);
    while (a->expected) {
        const struct timespec *until = before(&gap, &cap) ? &gap : &cap;
        unsigned long long seen = a->written;
        if (pthread_cond_timedwait(&a->arrived, &a->write_lock, until) == ETIMEDOUT) {
            if (until == &cap || a->written == seen)
                break; /* nothing arrived for a whole gap: a request stalls */
        }
        if (a->written != seen)
            gap = after_ms(a->group_wait_ms);
    }
}

/* Wait until line `seq` is durable, flushing when nobody else is. Called with write_lock held.
 * Returns 0, or the errno of the flush that covered it. */
int audit_wait_durable(struct pol_audit *a, unsigned long long seq)
{
    while (a->durable < seq) {
        if (a->failed_upto >= seq)
            return a->flush_errno;
        if (a->flushing) {
            pthread_cond_wait(&a->flushed, &a->write_lock);
            continue;
        }
        a->flushing = 1;
        gather(a);
        unsigned long long target = a->written;
        a->flushes++;
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

/* The record of an expected request is written (or held, or failed): one fewer to gather.
 * Under write_lock. */
void audit_arrived(struct pol_audit *a, int expected)
{
    if (expected && a->expected) {
        a->expected--;
        pthread_cond_broadcast(&a->arrived);
    }
}

void pol_audit_set_group_wait(struct pol_audit *a, unsigned ms)
{
    pthread_mutex_lock(&a->write_lock);
    a->group_wait_ms = ms;
    pthread_mutex_unlock(&a->write_lock);
}

int pol_audit_sync(struct pol_audit *a, unsigned long long seq, struct itl_error *err)
{
    int rc = 0, saved;

    if (!seq)
        return 0;
    pthread_rwlock_rdlock(&a->fd_lock);
    pthread_mutex_lock(&a->write_lock);
    if ((saved = audit_wait_durable(a, seq)) != 0)
        rc = err_set(err, ITL_E_IO, "%s: audit record not durable: %s", a->path, strerror(saved));
    pthread_mutex_unlock(&a->write_lock);
    pthread_rwlock_unlock(&a->fd_lock);
    return rc;
}

void pol_audit_expect(struct pol_audit *a)
{
    pthread_mutex_lock(&a->write_lock);
    a->expected++;
    pthread_mutex_unlock(&a->write_lock);
}

unsigned long long pol_audit_flushes(struct pol_audit *a)
{
    pthread_mutex_lock(&a->write_lock);
    unsigned long long n = a->flushes;
    pthread_mutex_unlock(&a->write_lock);
    return n;
}

/* ---- Intent records and the flush thread ----
 * A single request would wait for its signature and then for the flush of its record, one
 * after the other. Instead its first record (the intent: "result":"signing", written before the
 * token is asked) is flushed by this thread while the caller signs; the caller waits for it
 * (pol_audit_sync) before anything is released, so a released signature always has a durable
 * record of its request. The outcome record that follows is not waited for: the next flush
 * covers it, or this thread once the log has been idle for AUDIT_IDLE_FLUSH_MS. */
#define AUDIT_IDLE_FLUSH_MS 20

/* Under write_lock; returns with it held. fd_lock comes first in the lock order. */
static void flush_upto(struct pol_audit *a, unsigned long long want)
{
    pthread_mutex_unlock(&a->write_lock);
    pthread_rwlock_rdlock(&a->fd_lock);
    pthread_mutex_lock(&a->write_lock);
    (void)audit_wait_durable(a, want); /* a failure is in failed_upto, for the waiters */
    pthread_mutex_unlock(&a->write_lock);
    pthread_rwlock_unlock(&a->fd_lock);
    pthread_mutex_lock(&a->write_lock);
}

static void *flush_thread(void *arg)
{
    struct pol_audit *a = arg;

    pthread_mutex_lock(&a->write_lock);
    while (!a->flusher_stop) {
        unsigned long long seen = a->written;
        if (a->flush_wanted > a->durable && a->flush_wanted > a->failed_upto) {
            flush_upto(a, a->flush_wanted);
            continue;
        }
        if (a->written <= a->durable || a->written <= a->failed_upto) {
            pthread_cond_wait(&a->want_flush, &a->write_lock);
            continue;
        }
        /* Outcome records not durable yet: flush them once nothing arrives for a while. */
        struct timespec until = after_ms(AUDIT_IDLE_FLUSH_MS);
        if (pthread_cond_timedwait(&a->want_flush, &a->write_lock, &until) == ETIMEDOUT &&
            a->written == seen && !a->flusher_stop)
            flush_upto(a, seen);
    }
    pthread_mutex_unlock(&a->write_lock);
    return NULL;
}

/* An intent record was written: the flush thread (started now if need be) flushes up to seq at
 * once. Without the thread, pol_audit_sync flushes itself: the same rule, no overlap. */
void audit_flush_soon(struct pol_audit *a, unsigned long long seq)
{
    pthread_mutex_lock(&a->write_lock);
    if (!a->flusher_started && pthread_create(&a->flusher, NULL, flush_thread, a) == 0)
        a->flusher_started = 1;
    if (seq > a->flush_wanted)
        a->flush_wanted = seq;
    pthread_cond_signal(&a->want_flush);
    pthread_mutex_unlock(&a->write_lock);
}

/* A record written without a wait: the idle flush starts counting. */
void audit_flush_later(struct pol_audit *a)
{
    pthread_mutex_lock(&a->write_lock);
    pthread_cond_signal(&a->want_flush);
    pthread_mutex_unlock(&a->write_lock);
}

void audit_flusher_stop(struct pol_audit *a)
{
    pthread_mutex_lock(&a->write_lock);
    a->flusher_stop = 1;
    pthread_cond_signal(&a->want_flush);
    int started = a->flusher_started;
    pthread_mutex_unlock(&a->write_lock);
    if (started)
        pthread_join(a->flusher, NULL);
    pthread_rwlock_rdlock(&a->fd_lock);
    pthread_mutex_lock(&a->write_lock);
    (void)audit_wait_durable(a, a->written); /* outcome records still in the page cache */
    pthread_mutex_unlock(&a->write_lock);
    pthread_rwlock_unlock(&a->fd_lock);
}
