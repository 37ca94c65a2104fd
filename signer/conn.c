/* SPDX-License-Identifier: MIT */
/*
 * One connection's thread: a peer's rules first, then frames, each whole within socket.timeout
 * of its first byte, into buffers that grow as bytes arrive and are charged to the uid and to
 * the service; each request run through sgn_execute() and answered (serve.c says why).
 */
#include "signer/serve_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* A payload buffer starts this small and doubles as bytes arrive, up to the announced length:
 * a peer that announces 4 MiB and sends 10 bytes holds 64 KiB, not 4 MiB. */
#define FRAME_FIRST_CHUNK (64 * 1024)

/* One uid may hold this share of socket.max-pending-bytes (at least one whole request), so
 * that a peer with a rule cannot take the whole budget from the others. */
#define PENDING_SHARE_DIVISOR 4

static size_t uid_pending_limit(const struct pol_config *cfg)
{
    size_t share = cfg->socket.max_pending_bytes / PENDING_SHARE_DIVISOR;

    return share > cfg->socket.max_request_bytes ? share : cfg->socket.max_request_bytes;
}

static const char *recv_end_text(enum sgn_recv_end e, const struct pol_config *cfg, char *buf,
                                 size_t size)
{
    switch (e) {
    case SGN_RECV_EOF:
        return "the client closed the connection";
    case SGN_RECV_TIMEOUT:
        snprintf(buf, size, "the frame was not complete within socket.timeout (%u ms)",
                 cfg->socket.timeout_ms);
        return buf;
    case SGN_RECV_ERROR:
        return "the connection failed";
    default:
        return "";
    }
}

int srv_send_status(int fd, enum sgn_status st, const char *message, long long deadline)
{
    struct sgn_result r;
    uint8_t *frame;
    size_t len;
    int rc;

    memset(&r, 0, sizeof r);
    r.status = st;
    snprintf(r.message, sizeof r.message, "%s", message);
    if (sgn_wire_encode_reply(&r, NULL, &frame, &len) != 0)
        return -1;
    rc = sgn_send_until(fd, frame, len, deadline);
    free(frame);
    return rc;
}

/* ---- Pipelining ----
 * A client may send requests without waiting for each reply (docs/protocol.md). While the
 * next request is already waiting on the socket, a reply is held, and its request's audit
 * record is written but not flushed; the first request with nothing behind it waits for its
 * own record to be durable, which covers every held one (the log is flushed in order), and
 * then the held replies go out, in order, before its own. A group of requests costs one
 * flush, and nothing is released before its record is durable. */

/* Sends the held replies once their records are durable; when the flush failed, each is
 * replaced by an `audit` status (nothing released). -1 when the peer cannot be sent to. */
static int release_held(struct conn *c)
{
    struct itl_error audit_err;
    int rc = 0, durable;

    if (!c->n_held)
        return 0;
    durable = sgn_audit_sync(c->srv->p->engine, c->held_seq, &audit_err) == 0;
    for (size_t i = 0; i < c->n_held; i++) {
        if (rc == 0 && !durable) {
            if (c->held_ok[i]) /* counted already, as served */
                atomic_fetch_add(&c->srv->requests_failed, 1);
            rc = srv_send_status(c->fd, SGN_E_AUDIT, audit_err.msg, io_deadline(c->srv));
        } else if (rc == 0) {
            rc = sgn_send_until(c->fd, c->held[i], c->held_len[i], io_deadline(c->srv));
        }
        free(c->held[i]);
    }
    c->n_held = c->held_bytes = 0;
    c->held_seq = 0;
    return rc;
}

/* 1 when bytes of a request are waiting (not just EOF). */
static int request_pending(int fd)
{
    uint8_t b;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Hold this request's reply? Only while another request is already waiting, and within the
 * bounds: a status is never held (it reports the moment it is asked). */
static int may_hold(const struct conn *c, const struct sgn_request *req)
{
    return req->op != POL_OP_STATUS && c->n_held < SRV_MAX_HELD &&
           c->held_bytes < SRV_MAX_HELD_BYTES && request_pending(c->fd);
}

/* A frame we cannot use: answer, audit, log; the caller closes the connection, since the
 * stream is no longer in step with frame boundaries. */
static void protocol_error(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void protocol_error(struct conn *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    count_reply(c->srv, SGN_E_PROTOCOL);
    sgn_audit_event(c->srv->p->engine, &c->peer, "protocol", "error", NULL, msg);
    srv_log(LOG_WARNING, "protocol error from uid %u pid %d: %s", (unsigned)c->peer.uid,
            (int)c->peer.pid, msg);
    release_held(c); /* the replies before it, in order */
    srv_send_status(c->fd, SGN_E_PROTOCOL, msg, io_deadline(c->srv));
}

/* A request that will not be served (the service is stopping, or has no room for its bytes):
 * answered busy, audited. */
static void refuse_request(struct conn *c, const char *why)
{
    count_reply(c->srv, SGN_E_BUSY);
    sgn_audit_event(c->srv->p->engine, &c->peer, "connection", "error", NULL, why);
    release_held(c);
    srv_send_status(c->fd, SGN_E_BUSY, why, io_deadline(c->srv));
}

#define STOPPING_TEXT "itl-signd is stopping; retry when it is back"

static int is_stopping(struct server *s)
{
    int stopping;

    pthread_mutex_lock(&s->lock);
    stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stopping;
}

/* Moves the connection to `st` unless the service is stopping: 0, or -1 when it is. */
static int enter_state(struct conn *c, enum conn_state st)
{
    struct server *s = c->srv;
    int stopping;

    pthread_mutex_lock(&s->lock);
    stopping = s->stopping;
    if (!stopping)
        c->state = st;
    pthread_mutex_unlock(&s->lock);
    return stopping ? -1 : 0;
}

/* Counts `more` request bytes against the connection's uid and the whole service: 0, or -1
 * when either budget is spent. */
static int charge(struct conn *c, size_t more)
{
    struct server *s = c->srv;
    const struct pol_config *cfg = s->p->cfg;
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    if (s->pending + more <= cfg->socket.max_pending_bytes &&
        c->use->pending + more <= uid_pending_limit(cfg)) {
        s->pending += more;
        c->use->pending += more;
        c->charged += more;
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void uncharge(struct conn *c)
{
    struct server *s = c->srv;

    pthread_mutex_lock(&s->lock);
    s->pending -= c->charged;
    c->use->pending -= c->charged;
    c->charged = 0;
    pthread_mutex_unlock(&s->lock);
}

/* A frame that stopped arriving: answered unless the client closed before its first byte.
 * A frame cut by SIGTERM (its reading side was shut down) is answered busy. */
static void frame_cut(struct conn *c, const char *what, size_t got, size_t total,
                      enum sgn_recv_end end)
{
    char why[128];

    if (is_stopping(c->srv)) {
        if (got > 0 || strcmp(what, "header") != 0)
            refuse_request(c, STOPPING_TEXT);
        return;
    }
    if (got == 0 && end != SGN_RECV_TIMEOUT && strcmp(what, "header") == 0)
        return; /* closed between requests: the normal end */
    protocol_error(c, "truncated frame %s: %zu of %zu bytes, then %s", what, got, total,
                   recv_end_text(end, c->srv->p->cfg, why, sizeof why));
}

/* The payload, received by the frame's deadline into a buffer that grows as bytes arrive,
 * each growth charged first. 0 with *out (malloc'd, charged) or -1 (answered). */
static int recv_payload(struct conn *c, size_t len, long long deadline, uint8_t **out)
{
    uint8_t *buf = NULL;
    size_t cap = 0, got = 0;

    while (got < len || !buf) {
        if (got == cap) {
            size_t want = cap ? cap * 2 : FRAME_FIRST_CHUNK, n;
            uint8_t *bigger;
            enum sgn_recv_end end;

            want = want < len ? want : len;
            if (charge(c, (want ? want : 1) - cap) != 0) {
                char why[256];
                snprintf(why, sizeof why,
                         "too many request bytes are arriving at once (socket.max-pending-bytes "
                         "is %zu, at most %zu per uid); retry",
                         c->srv->p->cfg->socket.max_pending_bytes,
                         uid_pending_limit(c->srv->p->cfg));
                refuse_request(c, why);
                free(buf);
                return -1;
            }
            bigger = realloc(buf, want ? want : 1);
            if (!bigger) {
                protocol_error(c, "no memory for a frame of %zu bytes", len);
                free(buf);
                return -1;
            }
            buf = bigger;
            cap = want;
            if (len == 0)
                break;
            end = sgn_recv_until(c->fd, buf + got, cap - got, deadline, &n);
            got += n;
            if (end != SGN_RECV_OK) {
                frame_cut(c, "payload", got, len, end);
                free(buf);
                return -1;
            }
        }
    }
    *out = buf;
    return 0;
}

static void service_fields(struct server *s, char *out, size_t size)
{
    struct timespec now;
    unsigned live;

    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&s->lock);
    live = s->live;
    pthread_mutex_unlock(&s->lock);
    snprintf(out, size,
             "\"service\":\"itl-signd\",\"pid\":%d,\"uptime_s\":%lld,\"connections\":%u,"
             "\"requests_total\":%lu,\"requests_failed\":%lu",
             (int)getpid(), (long long)(now.tv_sec - s->started.tv_sec), live,
             atomic_load(&s->requests_total), atomic_load(&s->requests_failed));
}

/* Run one decoded request and send its reply, by socket.timeout from now (a peer that reads
 * one byte at a time cannot hold the thread). -1 when the reply could not be sent. */
static int answer(struct conn *c, const struct sgn_request *req)
{
    struct server *s = c->srv;
    struct sgn_result r;
    char *status_json = NULL, extra[512];
    uint8_t *frame = NULL;
    size_t len;
    unsigned long long seq = 0;
    unsigned long generation;
    int rc, hold = may_hold(c, req);
    /* The request runs under one configuration generation from access check to audit record;
     * after a reload the peer's rules are resolved again, under the new one. */
    const struct pol_config *cfg = sgn_config_hold(s->p->engine, &generation);

    if (generation != c->access_generation) {
        pol_access_resolve(cfg, &c->peer, &c->access);
        c->access_generation = generation;
    }
    /* held: written, flushed with its group; the end of a group: its flush covers the held
     * records; alone: a sign's intent record is flushed while the token signs. */
    eng_execute(s->p->engine, cfg, &c->peer, req, &r, hold ? &seq : NULL, !hold && !c->n_held);
    sgn_config_release(s->p->engine, cfg);
    count_reply(s, r.status);
    if (req->op == POL_OP_STATUS && r.status == SGN_OK) {
        service_fields(s, extra, sizeof extra);
        if (sgn_status_json(s->p->engine, extra, &status_json) != 0) {
            r.status = SGN_E_INTERNAL;
            snprintf(r.message, sizeof r.message, "out of memory while building the status");
        }
    }
    int ok = r.status == SGN_OK;
    rc = sgn_wire_encode_reply(&r, status_json, &frame, &len);
    free(status_json);
    sgn_result_free(&r);
    if (rc == 0 && hold) {
        c->held_ok[c->n_held] = ok;
        c->held[c->n_held] = frame;
        c->held_len[c->n_held++] = len;
        c->held_bytes += len;
        if (seq)
            c->held_seq = seq;
        return 0;
    }
    if (hold && seq)
        c->held_seq = seq; /* its reply is replaced below, but its record must be waited for */
    if (release_held(c) != 0) {
        free(frame);
        return -1;
    }
    if (rc != 0) {
        srv_log(LOG_ERR, "cannot encode a reply for uid %u (out of memory)", (unsigned)c->peer.uid);
        return srv_send_status(c->fd, SGN_E_INTERNAL, "the reply could not be encoded",
                               io_deadline(s));
    }
    rc = sgn_send_until(c->fd, frame, len, io_deadline(s));
    free(frame);
    if (rc != 0)
        srv_log(LOG_NOTICE, "uid %u pid %d went away before its reply (%s)", (unsigned)c->peer.uid,
                (int)c->peer.pid,
                errno == ETIMEDOUT ? "not read within socket.timeout" : strerror(errno));
    return rc;
}

/* One frame, which must arrive whole within socket.timeout of its first byte: 0 to read the
 * next one, -1 to close the connection. */
static int handle_frame(struct conn *c)
{
    const struct pol_config *cfg = c->srv->p->cfg;
    long long deadline = io_deadline(c->srv);
    uint8_t hdr[SGN_WIRE_HEADER_LEN], *payload;
    struct sgn_cert_arg certs[SGN_MAX_BUILD_CERTS];
    struct sgn_request req;
    struct itl_error err;
    size_t len, got;
    enum sgn_recv_end end;
    int rc = -1;

    end = sgn_recv_until(c->fd, hdr, sizeof hdr, deadline, &got);
    if (end != SGN_RECV_OK) {
        frame_cut(c, "header", got, SGN_WIRE_HEADER_LEN, end);
        return -1;
    }
    if (sgn_wire_header(hdr, SGN_FRAME_REQUEST, cfg->socket.max_request_bytes, &len, &err) != 0) {
        protocol_error(c, "%s", err.msg);
        return -1;
    }
    if (recv_payload(c, len, deadline, &payload) != 0)
        goto out;
    if (sgn_wire_decode_request(payload, len, &req, certs, &err) != 0)
        protocol_error(c, "%s", err.msg);
    else if (enter_state(c, CONN_RUNNING) != 0)
        refuse_request(c, STOPPING_TEXT); /* arrived whole after the stop began */
    else
        rc = answer(c, &req);
    /* op unlock carries a PIN (the engine wiped its field); a small frame that failed to decode
     * may have carried one too */
    if (req.op == POL_OP_UNLOCK || len <= 4096)
        OPENSSL_cleanse(payload, len);
    free(payload);
out:
    uncharge(c);
    return rc;
}

/* Wait for the next request. 1 readable, 0 idle timeout, -1 error. */
static int wait_request(struct conn *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int n;

    do
        n = poll(&pfd, 1, (int)c->srv->p->cfg->socket.timeout_ms);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : n > 0;
}

/* A peer that no access rule names may ask for nothing: one `denied` reply, before anything
 * of it is read, and the connection is closed (it holds no slot, no buffer). */
static void deny_peer(struct conn *c)
{
    struct server *s = c->srv;
    struct pol_decision d;
    const struct pol_config *cfg = sgn_config_hold(s->p->engine, NULL);

    pol_check_access(cfg, &c->peer, POL_OP_STATUS, &d);
    sgn_config_release(s->p->engine, cfg);
    count_reply(s, SGN_E_DENIED);
    sgn_audit_event(s->p->engine, &c->peer, "connection", "denied", "access", d.message);
    srv_send_status(c->fd, SGN_E_DENIED, d.message, io_deadline(s));
}

static void serve(struct conn *c)
{
    for (;;) {
        int rc;

        if (wait_request(c) <= 0)
            break; /* idle too long, or the socket failed */
        if (enter_state(c, CONN_READING) != 0) {
            if (request_pending(c->fd))
                refuse_request(c, STOPPING_TEXT);
            break;
        }
        rc = handle_frame(c);
        if (enter_state(c, CONN_IDLE) != 0 || rc != 0)
            break;
    }
    release_held(c); /* the peer went away mid-group: whatever it still reads */
}

/* The uid's entry goes with its last connection. */
void srv_release_slot(struct server *s, struct uid_use *use)
{
    s->live--;
    if (--use->conns > 0)
        return;
    for (struct uid_use **pp = &s->uids; *pp; pp = &(*pp)->next)
        if (*pp == use) {
            *pp = use->next;
            break;
        }
    free(use);
}

void *srv_conn_main(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->srv;
    const struct pol_config *cfg = sgn_config_hold(s->p->engine, &c->access_generation);

    /* Here, not in the accept loop: NSS lookups may be slow (LDAP), and only this peer waits.
     * Nothing of the peer is read before its rules are known. */
    pol_access_resolve(cfg, &c->peer, &c->access);
    sgn_config_release(s->p->engine, cfg);
    c->peer.access = &c->access;
    if (c->access.matched)
        serve(c);
    else
        deny_peer(c);
    pthread_mutex_lock(&s->lock);
    close(c->fd);
    c->fd = -1;
    c->done = 1;
    srv_release_slot(s, c->use);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
