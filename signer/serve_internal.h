/* SPDX-License-Identifier: MIT */
/*
 * signer/ private, shared by serve.c (the accept loop, slots, stopping) and conn.c (one
 * connection's thread: frames, budgets, replies). The rules both follow are in serve.c.
 */
#ifndef ITL_SIGNER_SERVE_INTERNAL_H
#define ITL_SIGNER_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "signer/server.h"

struct server;

/* Where a connection's thread is (under srv->lock). SIGTERM shuts the reading side of every
 * connection that is not RUNNING: a frame still arriving is never waited for, a request being
 * executed is completed and answered. */
enum conn_state { CONN_IDLE = 0, CONN_READING, CONN_RUNNING };

/* What one uid holds: connections and request bytes (under srv->lock). */
struct uid_use {
    uid_t uid;
    unsigned conns;
    size_t pending;
    struct uid_use *next;
};

/* At most this many replies (and bytes of them) held for one flush per connection. */
#define SRV_MAX_HELD 64
#define SRV_MAX_HELD_BYTES (2u << 20)

struct conn {
    struct server *srv;
    int fd;
    struct pol_peer peer; /* peer.access points at access */
    struct pol_access access;
    unsigned long access_generation; /* the configuration generation access was resolved under */
    struct uid_use *use;             /* the peer's uid; counted under srv->lock */
    size_t charged; /* request bytes this connection holds, in use->pending and srv->pending */
    pthread_t thread;
    enum conn_state state; /* under srv->lock */
    int done;              /* the thread has finished and closed fd; join it */
    /* Pipelined requests answered but held until their audit records are durable (one flush
     * for the group; conn.c, "Pipelining"). */
    uint8_t *held[SRV_MAX_HELD];
    size_t held_len[SRV_MAX_HELD], n_held, held_bytes;
    int held_ok[SRV_MAX_HELD];   /* counted as served: a failed flush makes it a failure */
    unsigned long long held_seq; /* the last audit record among them */
    struct conn *next;
};

struct server {
    const struct srv_params *p;
    pthread_mutex_t lock;
    struct conn *conns;   /* every thread not joined yet */
    struct uid_use *uids; /* every uid with a connection being served */
    unsigned live;        /* connections being served */
    size_t pending;       /* request bytes held by all connections */
    int stopping;
    struct timespec started;
    atomic_ulong requests_total, requests_failed;
};

static inline long long io_deadline(const struct server *s)
{
    return sgn_now_ms() + s->p->cfg->socket.timeout_ms;
}

static inline void count_reply(struct server *s, enum sgn_status st)
{
    atomic_fetch_add(&s->requests_total, 1);
    if (st != SGN_OK)
        atomic_fetch_add(&s->requests_failed, 1);
}

/* A reply that carries only a status and a message: protocol errors, busy, denied (conn.c). */
int srv_send_status(int fd, enum sgn_status st, const char *message, long long deadline);

/* A connection's thread: resolves the peer's rules, serves or denies it, closes, gives back
 * its slot and marks itself done (conn.c). */
void *srv_conn_main(void *arg);

/* Gives back a connection's slot; under s->lock (serve.c). */
void srv_release_slot(struct server *s, struct uid_use *use);

#endif
