/* SPDX-License-Identifier: MIT */
/* What the audit log's files share (audit.c: opening, records, writing; audit_commit.c: the
 * group commit). */
#ifndef ITL_POLICY_AUDIT_INTERNAL_H
#define ITL_POLICY_AUDIT_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "policy/policy.h"

#define DENIAL_UIDS 64 /* uids tracked per interval; more are recorded one by one */
/* The longest a flush waits for the next record of a request in flight (ten times that in all):
 * a bound for a request that stalls (a token retry), not a pace; requests that sign normally
 * write long before it. */
#define AUDIT_GROUP_WAIT_MS 10

struct denial_count {
    uid_t uid;
    gid_t gid;
    pid_t pid;               /* of the last one */
    unsigned seen;           /* this interval */
    unsigned long long held; /* not recorded one by one: the summary's count */
    time_t first_held, last;
};

struct pol_audit {
    char path[4096];
    /* Who the log must belong to besides root; root gives it to them (the run-as user). */
    uid_t owner;
    gid_t group;
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
    /* Under write_lock: requests started (pol_audit_expect) whose record is not written yet;
     * `arrived` is signalled when one is. */
    unsigned long long expected;
    pthread_cond_t arrived;
    unsigned long long flushes; /* fdatasync calls: for tests and the bench */
    /* The flush thread (audit_commit.c), started by the first intent record: under write_lock,
     * the line it must make durable now (want_flush signalled), and its stop flag. Lines written
     * after the last flush and not waited for are flushed once the log is idle. */
    pthread_t flusher;
    int flusher_started, flusher_stop;
    unsigned long long flush_wanted;
    pthread_cond_t want_flush;
    unsigned group_wait_ms;
    /* Denial aggregation, under denial_lock. window == 0: no interval open. */
    pthread_mutex_t denial_lock;
    unsigned burst, interval;
    time_t window;
    struct denial_count denials[DENIAL_UIDS];
    size_t n_denials;
};

/* Wait until line `seq` is durable, flushing when nobody else is. Called with write_lock held.
 * Returns 0, or the errno of the flush that covered it. */
int audit_wait_durable(struct pol_audit *a, unsigned long long seq);
/* The record of an expected request is written (or held, or failed). Under write_lock. */
void audit_arrived(struct pol_audit *a, int expected);
/* The flush thread: flush up to seq now (an intent record), or once the log is idle. */
void audit_flush_soon(struct pol_audit *a, unsigned long long seq);
void audit_flush_later(struct pol_audit *a);
/* Close: stops the flush thread, and flushes what is not durable yet. */
void audit_flusher_stop(struct pol_audit *a);

#endif
