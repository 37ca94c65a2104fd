/* SPDX-License-Identifier: MIT */
/*
 * itl-signd's serving loop (logging, directories and the listening socket are in log.c, dirs.c
 * and listen.c; a connection's thread in conn.c). The loop owns the listening socket and a
 * signalfd; every connection gets a thread that reads frames, runs them through sgn_execute() and
 * answers, one at a time.
 *
 * Slow and greedy peers: a peer that no access rule names is answered `denied` before anything
 * of it is read, and closed. One uid holds at most socket.max-connections-per-uid slots. A
 * frame must arrive whole within socket.timeout of its first byte (a deadline, not a timeout
 * per read), and a reply must be taken within socket.timeout. Request buffers grow as bytes
 * arrive and are charged to the uid and to the service (socket.max-pending-bytes), never
 * allocated from the announced length.
 *
 * Stopping: SIGTERM closes the listening socket, then every connection that is between two
 * requests or still receiving a frame is shut down for reading (its thread sees EOF; a frame
 * cut short is answered busy); a connection whose request is executing finishes it, replies
 * (within socket.timeout), and ends. Then every thread is joined.
 */
#include "signer/serve_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

/* ---- Signals ---- */

/* TERM and INT stop the service, HUP reopens the audit log. */
static void service_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

void srv_block_signals(void)
{
    sigset_t set;
    struct sigaction ign = {.sa_handler = SIG_IGN};

    sigaction(SIGPIPE, &ign, NULL);
    service_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* ---- Connections: slots, threads, refusals ---- */

static void reap(struct server *s, int all)
{
    struct conn **pp = &s->conns;

    while (*pp) {
        struct conn *c = *pp;
        int done;

        pthread_mutex_lock(&s->lock);
        done = c->done;
        pthread_mutex_unlock(&s->lock);
        if (!done && !all) {
            pp = &c->next;
            continue;
        }
        pthread_join(c->thread, NULL);
        *pp = c->next;
        free(c);
    }
}

static void refuse(struct server *s, int fd, const struct pol_peer *peer, const char *why)
{
    count_reply(s, SGN_E_BUSY);
    sgn_audit_event(s->p->engine, peer, "connection", "error", NULL, why);
    srv_log(LOG_WARNING, "refused a connection from uid %u pid %d: %s", (unsigned)peer->uid,
            (int)peer->pid, why);
    srv_send_status(fd, SGN_E_BUSY, why, io_deadline(s));
    close(fd);
}

/* A slot for a new connection of `uid`, within socket.max-connections and
 * socket.max-connections-per-uid (so one uid, even one with rules, cannot take every slot).
 * NULL with `why` when there is none. */
static struct uid_use *take_slot(struct server *s, uid_t uid, struct itl_error *why)
{
    const struct pol_config *cfg = s->p->cfg;
    struct uid_use *use;

    pthread_mutex_lock(&s->lock);
    for (use = s->uids; use && use->uid != uid; use = use->next)
        ;
    if (s->live >= cfg->socket.max_connections) {
        err_set(why, ITL_E_DENIED, "too many connections (socket.max-connections is %u)",
                cfg->socket.max_connections);
        use = NULL;
    } else if (use && use->conns >= cfg->socket.max_connections_per_uid) {
        err_set(why, ITL_E_DENIED,
                "too many connections from uid %u (socket.max-connections-per-uid is %u)",
                (unsigned)uid, cfg->socket.max_connections_per_uid);
        use = NULL;
    } else if (!use && !(use = calloc(1, sizeof *use))) {
        err_set(why, ITL_E_INTERNAL, "out of memory for a new connection");
    } else {
        if (!use->conns) {
            use->uid = uid;
            use->next = s->uids;
            s->uids = use;
        }
        use->conns++;
        s->live++;
    }
    pthread_mutex_unlock(&s->lock);
    return use;
}

static void accept_one(struct server *s)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    struct pol_peer peer = {0};
    struct uid_use *use;
    struct conn *c;
    struct itl_error why;
    int fd;

    fd = accept4(s->p->listener->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            srv_log(LOG_ERR, "accept: %s; pausing for 100 ms", strerror(errno));
            nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
        }
        return; /* EAGAIN, ECONNABORTED, EINTR: the client is gone */
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        srv_log(LOG_ERR, "SO_PEERCRED: %s; connection closed", strerror(errno));
        close(fd);
        return;
    }
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.pid = cred.pid;
    use = take_slot(s, peer.uid, &why);
    if (!use) {
        refuse(s, fd, &peer, why.msg);
        return;
    }
    c = calloc(1, sizeof *c);
    if (c) {
        c->srv = s;
        c->fd = fd;
        c->peer = peer;
        c->use = use;
    }
    if (!c || pthread_create(&c->thread, NULL, srv_conn_main, c) != 0) {
        pthread_mutex_lock(&s->lock);
        srv_release_slot(s, use);
        pthread_mutex_unlock(&s->lock);
        refuse(s, fd, &peer,
               c ? "cannot start a thread for the connection"
                 : "out of memory for a new "
                   "connection");
        free(c);
        return;
    }
    c->next = s->conns;
    s->conns = c;
}

/* ---- The loop ---- */

/* 1 when the signal asks to stop. */
static int handle_signal(struct server *s, int sfd)
{
    struct signalfd_siginfo si;
    struct itl_error pe;

    if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
        return 0;
    if (si.ssi_signo == SIGHUP) {
        if (pol_audit_reopen(s->p->audit, &pe) == 0)
            srv_log(LOG_NOTICE, "SIGHUP: audit log %s reopened", s->p->cfg->audit_log);
        else
            srv_log(LOG_ERR, "SIGHUP: cannot reopen the audit log: %s", pe.msg);
        return 0;
    }
    srv_log(LOG_NOTICE, "%s from pid %u: stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM",
            (unsigned)si.ssi_pid);
    return 1;
}

static void stop_connections(struct server *s)
{
    unsigned waiting = 0;

    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->done)
            continue;
        if (c->state == CONN_RUNNING)
            waiting++;
        else
            shutdown(c->fd, SHUT_RD); /* idle, or a frame still arriving: its thread sees EOF */
    }
    pthread_mutex_unlock(&s->lock);
    if (waiting)
        srv_log(LOG_NOTICE, "waiting for %u request%s in progress", waiting,
                waiting == 1 ? "" : "s");
    reap(s, 1);
}

/* How often the accept loop wakes up to see whether the daily backup line is due. */
#define BACKUP_REMINDER_CHECK_MS (10 * 60 * 1000)

int srv_run(const struct srv_params *p)
{
    struct server s = {.p = p};
    struct pollfd fds[2];
    sigset_t set;
    int sfd, stop = 0;
    time_t next_reminder_check = 0;

    service_signals(&set);
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        srv_log(LOG_ERR, "signalfd: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_init(&s.lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &s.started);
    fds[0] = (struct pollfd){.fd = p->listener->fd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = sfd, .events = POLLIN};

    while (!stop) {
        char reminder[ITL_ERROR_LEN + 64];
        time_t now = time(NULL);
        reap(&s, 0);
        /* CUCM raises its ITLRecoveryCertBackup alert once a day until the key is backed up;
         * the state says when it was last given, so a restart does not repeat it. */
        if (now >= next_reminder_check) {
            next_reminder_check = now + BACKUP_REMINDER_CHECK_MS / 1000;
            if (sgn_backup_reminder(p->engine, now, reminder, sizeof reminder))
                srv_log(LOG_WARNING, "%s", reminder);
        }
        if (poll(fds, 2, BACKUP_REMINDER_CHECK_MS) < 0) {
            if (errno == EINTR)
                continue;
            srv_log(LOG_ERR, "poll: %s; stopping", strerror(errno));
            break;
        }
        if (fds[1].revents & POLLIN)
            stop = handle_signal(&s, sfd);
        if (!stop && (fds[0].revents & POLLIN))
            accept_one(&s);
    }

    srv_listener_close(p->listener);
    stop_connections(&s);
    close(sfd);
    pthread_mutex_destroy(&s.lock);
    srv_log(LOG_NOTICE, "stopped after %lu request%s (%lu failed)", atomic_load(&s.requests_total),
            atomic_load(&s.requests_total) == 1 ? "" : "s", atomic_load(&s.requests_failed));
    return 0;
}
