/* SPDX-License-Identifier: MIT */
/*
 * itl-signd's process machinery: logging, the directories it trusts, the listening socket, and
 * the serving loop. The loop owns the listening socket and a signalfd; every connection gets a
 * thread that reads frames, runs them through sgn_execute() and answers, one at a time.
 *
 * Stopping: SIGTERM closes the listening socket, then every connection that is between two
 * requests is shut down for reading (its thread sees EOF and ends); a connection in the middle
 * of a request finishes it, replies, and ends. Then every thread is joined.
 */
#include "signer/server.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* ---- Logging ---- */

static int log_to_syslog;

void srv_log_use_syslog(void)
{
    openlog("itl-signd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_to_syslog = 1;
}

void srv_log(int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Messages can quote peer-supplied text: one line, no terminal control characters. */
    for (char *p = line; *p; p++)
        if (iscntrl((unsigned char)*p))
            *p = '?';
    if (log_to_syslog)
        syslog(priority, "%s", line);
    else
        fprintf(stderr, "itl-signd: %s\n", line);
}

/* ---- Users and groups ---- */

static int parse_id(const char *text, unsigned long *id)
{
    char *end;

    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    *id = strtoul(text, &end, 10);
    return errno || *end || *id >= (unsigned long)(uid_t)-1 ? -1 : 0;
}

static int lookup_user(const char *name, uid_t *uid, gid_t *gid, char *canonical, size_t size)
{
    struct passwd *pw = getpwnam(name);
    unsigned long id;

    if (!pw && parse_id(name, &id) == 0)
        pw = getpwuid((uid_t)id);
    if (!pw)
        return -1;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    snprintf(canonical, size, "%s", pw->pw_name);
    return 0;
}

static int lookup_group(const char *name, gid_t *gid)
{
    struct group *gr = getgrnam(name);
    unsigned long id;

    if (gr) {
        *gid = gr->gr_gid;
        return 0;
    }
    if (parse_id(name, &id) != 0)
        return -1;
    *gid = (gid_t)id; /* a numeric group needs no entry in /etc/group */
    return 0;
}

int srv_resolve_ids(const struct pol_config *cfg, struct srv_ids *ids, char *err, size_t err_size)
{
    const char *where = cfg->path[0] ? cfg->path : "config";
    gid_t unused;

    memset(ids, 0, sizeof *ids);
    ids->run_uid = geteuid();
    ids->run_gid = getegid();
    if (cfg->run_as.group[0] && !cfg->run_as.user[0]) {
        sgn_set_err(err, err_size, "%s: run-as.group needs run-as.user (the user to switch to)",
                    where);
        return -1;
    }
    if (cfg->run_as.user[0]) {
        if (lookup_user(cfg->run_as.user, &ids->run_uid, &ids->run_gid, ids->run_user,
                        sizeof ids->run_user) != 0) {
            sgn_set_err(err, err_size,
                        "%s: run-as.user: no such user '%s' (create it: useradd "
                        "--system itl-sign)",
                        where, cfg->run_as.user);
            return -1;
        }
        ids->drop = 1;
    }
    if (cfg->run_as.group[0] && lookup_group(cfg->run_as.group, &ids->run_gid) != 0) {
        sgn_set_err(err, err_size, "%s: run-as.group: no such group '%s'", where,
                    cfg->run_as.group);
        return -1;
    }
    if (cfg->socket.owner[0]) {
        char name[256];
        if (lookup_user(cfg->socket.owner, &ids->sock_uid, &unused, name, sizeof name) != 0) {
            sgn_set_err(err, err_size, "%s: socket.owner: no such user '%s'", where,
                        cfg->socket.owner);
            return -1;
        }
        ids->has_sock_uid = 1;
    }
    if (cfg->socket.group[0]) {
        if (lookup_group(cfg->socket.group, &ids->sock_gid) != 0) {
            sgn_set_err(err, err_size, "%s: socket.group: no such group '%s'", where,
                        cfg->socket.group);
            return -1;
        }
        ids->has_sock_gid = 1;
    }
    return 0;
}

/* ---- Directories ---- */

static void group_text(gid_t gid, char *out, size_t size)
{
    struct group *gr = getgrgid(gid);
    if (gr)
        snprintf(out, size, "%s", gr->gr_name);
    else
        snprintf(out, size, "%u", (unsigned)gid);
}

static void user_text(uid_t uid, char *out, size_t size)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(out, size, "%s", pw->pw_name);
    else
        snprintf(out, size, "%u", (unsigned)uid);
}

int srv_check_dir(const char *what, const char *dir, const struct srv_ids *ids, char *err,
                  size_t err_size)
{
    struct stat st;
    char who[256], service_user[256];

    if (stat(dir, &st) != 0) {
        sgn_set_err(err, err_size, "%s %s: %s", what, dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        sgn_set_err(err, err_size, "%s %s is not a directory", what, dir);
        return -1;
    }
    user_text(ids->run_uid, service_user, sizeof service_user);
    if (st.st_uid != 0 && st.st_uid != ids->run_uid) {
        user_text(st.st_uid, who, sizeof who);
        sgn_set_err(err, err_size,
                    "%s %s belongs to user %s; it must belong to root or the service user %s "
                    "(fix: chown %s %s)",
                    what, dir, who, service_user, service_user, dir);
        return -1;
    }
    if (st.st_mode & S_IWOTH) {
        sgn_set_err(err, err_size,
                    "%s %s is writable by others (mode %04o): any local user could replace what "
                    "the service keeps there; refusing to start (fix: chmod o-w %s)",
                    what, dir, (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && st.st_gid != ids->run_gid) {
        group_text(st.st_gid, who, sizeof who);
        sgn_set_err(err, err_size,
                    "%s %s is writable by group %s, which is not the service's group (mode %04o); "
                    "refusing to start (fix: chmod g-w %s)",
                    what, dir, who, (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

int srv_prepare_dir(const char *what, const char *dir, gid_t gid, const struct srv_ids *ids,
                    int *created, char *err, size_t err_size)
{
    *created = 0;
    if (mkdir(dir, 0750) == 0) {
        *created = 1;
        /* chown first: chmod after it keeps the mode exact whatever the umask was. */
        if (chown(dir, ids->run_uid, gid) != 0 || chmod(dir, 0750) != 0) {
            sgn_set_err(err, err_size, "%s %s: cannot set owner and mode: %s", what, dir,
                        strerror(errno));
            return -1;
        }
    } else if (errno != EEXIST) {
        sgn_set_err(err, err_size,
                    "cannot create %s %s: %s (create its parent, or install signer/tmpfiles.conf)",
                    what, dir, strerror(errno));
        return -1;
    }
    return srv_check_dir(what, dir, ids, err, err_size);
}

void srv_dirname(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(out, size, ".");
    else if (slash == path)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(slash - path), path);
}

/* ---- The listening socket ---- */

#define SD_LISTEN_FDS_START 3

int srv_listen_activated(struct srv_listener *l, char *err, size_t err_size)
{
    const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
    struct sockaddr_un addr;
    socklen_t len;
    int type = 0, domain = 0, listening = 0, fd = SD_LISTEN_FDS_START;
    long pid, n;

    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (!pid_text || !fds_text)
        return 0;
    pid = strtol(pid_text, NULL, 10);
    n = strtol(fds_text, NULL, 10);
    if (pid != (long)getpid())
        return 0; /* meant for another process */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n != 1) {
        sgn_set_err(err, err_size, "systemd passed %ld sockets; itl-signd takes exactly one", n);
        return -1;
    }
    len = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    len = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    if (type != SOCK_STREAM || domain != AF_UNIX || !listening) {
        sgn_set_err(err, err_size,
                    "the socket passed by systemd is not a listening unix stream socket (check "
                    "itl-signd.socket: ListenStream=/run/itl-sign/socket)");
        return -1;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        sgn_set_err(err, err_size, "socket passed by systemd: %s", strerror(errno));
        return -1;
    }
    len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        snprintf(l->path, sizeof l->path, "%s", addr.sun_path);
    l->fd = fd;
    l->activated = 1;
    return 1;
}

/* Something still answers on `path`: another itl-signd. 1 yes, 0 no, -1 error. */
static int socket_in_use(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc;

    if (fd < 0)
        return -1;
    rc = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS)
        rc = 1;
    else if (errno == ECONNREFUSED)
        rc = 0;
    else
        rc = -1;
    close(fd);
    return rc;
}

static int remove_stale_socket(const struct sockaddr_un *addr, char *err, size_t err_size)
{
    const char *path = addr->sun_path;
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0
                               : (sgn_set_err(err, err_size, "%s: %s", path, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        sgn_set_err(err, err_size,
                    "%s exists and is not a socket (remove it, or change socket.path)", path);
        return -1;
    }
    switch (socket_in_use(addr)) {
    case 1:
        sgn_set_err(err, err_size, "another itl-signd is already listening on %s", path);
        return -1;
    case 0:
        if (unlink(path) != 0) {
            sgn_set_err(err, err_size, "cannot remove the stale socket %s: %s", path,
                        strerror(errno));
            return -1;
        }
        srv_log(LOG_NOTICE, "removed stale socket %s (nothing listened on it)", path);
        return 0;
    default:
        sgn_set_err(err, err_size, "cannot probe the existing socket %s: %s", path,
                    strerror(errno));
        return -1;
    }
}

int srv_listen(const struct pol_config *cfg, const struct srv_ids *ids, struct srv_listener *l,
               char *err, size_t err_size)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *path = cfg->socket.path;
    struct stat st;
    mode_t old_umask;
    int rc;

    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (strlen(path) >= sizeof addr.sun_path) {
        sgn_set_err(err, err_size, "socket.path %s is longer than %zu bytes (a unix socket limit)",
                    path, sizeof addr.sun_path - 1);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (remove_stale_socket(&addr, err, err_size) != 0)
        return -1;
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        sgn_set_err(err, err_size, "socket: %s", strerror(errno));
        return -1;
    }
    /* Born private; opened to socket.mode only once owner and group are right. */
    old_umask = umask(0177);
    rc = bind(l->fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old_umask);
    if (rc != 0) {
        sgn_set_err(err, err_size, "cannot bind %s: %s", path, strerror(errno));
        goto fail;
    }
    snprintf(l->path, sizeof l->path, "%s", path);
    if (stat(path, &st) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    if ((ids->has_sock_uid || ids->has_sock_gid) &&
        chown(path, ids->has_sock_uid ? ids->sock_uid : (uid_t)-1,
              ids->has_sock_gid ? ids->sock_gid : (gid_t)-1) != 0) {
        sgn_set_err(err, err_size, "cannot set socket.owner/socket.group on %s: %s", path,
                    strerror(errno));
        goto fail;
    }
    if (chmod(path, cfg->socket.mode) != 0) {
        sgn_set_err(err, err_size, "cannot set socket.mode %04o on %s: %s", cfg->socket.mode, path,
                    strerror(errno));
        goto fail;
    }
    if (listen(l->fd, SOMAXCONN) != 0) {
        sgn_set_err(err, err_size, "listen on %s: %s", path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    srv_listener_close(l);
    return -1;
}

void srv_listener_close(struct srv_listener *l)
{
    struct stat st;

    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->activated || !l->path[0])
        return;
    /* Only our own socket file: a second instance may have replaced it meanwhile. */
    if (stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->path);
    l->path[0] = 0;
}

/* ---- Serving ---- */

void srv_block_signals(void)
{
    sigset_t set;
    struct sigaction ign = {.sa_handler = SIG_IGN};

    sigaction(SIGPIPE, &ign, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

struct server;

struct conn {
    struct server *srv;
    int fd;
    struct pol_peer peer; /* peer.access points at access */
    struct pol_access access;
    pthread_t thread;
    int busy; /* reading or answering a request; under srv->lock */
    int done; /* the thread has finished and closed fd; join it */
    struct conn *next;
};

struct server {
    const struct srv_params *p;
    pthread_mutex_t lock;
    struct conn *conns; /* every thread not joined yet */
    unsigned live;      /* connections being served */
    int stopping;
    struct timespec started;
    atomic_ulong requests_total, requests_failed;
};

enum recv_end { RECV_OK = 0, RECV_EOF, RECV_TIMEOUT, RECV_ERROR };

/* Reads exactly n bytes; *got says how many arrived before EOF, the timeout or an error. */
static enum recv_end recv_all(int fd, uint8_t *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = recv(fd, p + *got, n - *got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return RECV_EOF;
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? RECV_TIMEOUT : RECV_ERROR;
        *got += (size_t)r;
    }
    return RECV_OK;
}

static const char *recv_end_text(enum recv_end e)
{
    switch (e) {
    case RECV_EOF:
        return "the client closed the connection";
    case RECV_TIMEOUT:
        return "the connection timed out";
    case RECV_ERROR:
        return "the connection failed";
    default:
        return "";
    }
}

static void count_reply(struct server *s, enum sgn_status st)
{
    atomic_fetch_add(&s->requests_total, 1);
    if (st != SGN_OK)
        atomic_fetch_add(&s->requests_failed, 1);
}

/* A reply that carries only a status and a message (protocol errors, busy). */
static int send_status(int fd, enum sgn_status st, const char *message)
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
    rc = sgn_send_all(fd, frame, len);
    free(frame);
    return rc;
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
    send_status(c->fd, SGN_E_PROTOCOL, msg);
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

/* Run one decoded request and send its reply. -1 when the reply could not be sent. */
static int answer(struct conn *c, const struct sgn_request *req)
{
    struct server *s = c->srv;
    struct sgn_result r;
    char *status_json = NULL, extra[512];
    uint8_t *frame = NULL;
    size_t len;
    int rc;

    sgn_execute(s->p->engine, &c->peer, req, &r);
    count_reply(s, r.status);
    if (req->op == POL_OP_STATUS && r.status == SGN_OK) {
        service_fields(s, extra, sizeof extra);
        if (sgn_status_json(s->p->engine, extra, &status_json) != 0) {
            r.status = SGN_E_INTERNAL;
            snprintf(r.message, sizeof r.message, "out of memory while building the status");
        }
    }
    rc = sgn_wire_encode_reply(&r, status_json, &frame, &len);
    free(status_json);
    sgn_result_free(&r);
    if (rc != 0) {
        srv_log(LOG_ERR, "cannot encode a reply for uid %u (out of memory)", (unsigned)c->peer.uid);
        return send_status(c->fd, SGN_E_INTERNAL, "the reply could not be encoded");
    }
    rc = sgn_send_all(c->fd, frame, len);
    free(frame);
    if (rc != 0)
        srv_log(LOG_NOTICE, "uid %u pid %d went away before its reply (%s)", (unsigned)c->peer.uid,
                (int)c->peer.pid, errno == EAGAIN ? "send timed out" : strerror(errno));
    return rc;
}

/* One frame: 0 to read the next one, -1 to close the connection. */
static int handle_frame(struct conn *c)
{
    const struct pol_config *cfg = c->srv->p->cfg;
    uint8_t hdr[SGN_WIRE_HEADER_LEN], *payload;
    struct sgn_cert_arg certs[SGN_MAX_BUILD_CERTS];
    struct sgn_request req;
    char err[512];
    size_t len, got;
    enum recv_end end;
    int rc;

    end = recv_all(c->fd, hdr, sizeof hdr, &got);
    if (end != RECV_OK) {
        if (got == 0 && end != RECV_TIMEOUT)
            return -1; /* closed between requests: the normal end */
        protocol_error(c, "truncated frame header: %zu of %d bytes, then %s", got,
                       SGN_WIRE_HEADER_LEN, recv_end_text(end));
        return -1;
    }
    if (sgn_wire_header(hdr, SGN_FRAME_REQUEST, cfg->socket.max_request_bytes, &len, err,
                        sizeof err) != 0) {
        protocol_error(c, "%s", err);
        return -1;
    }
    payload = malloc(len ? len : 1);
    if (!payload) {
        protocol_error(c, "no memory for a frame of %zu bytes", len);
        return -1;
    }
    end = recv_all(c->fd, payload, len, &got);
    if (end != RECV_OK) {
        protocol_error(c, "truncated frame: %zu of %zu payload bytes, then %s", got, len,
                       recv_end_text(end));
        free(payload);
        return -1;
    }
    if (sgn_wire_decode_request(payload, len, &req, certs, err, sizeof err) != 0) {
        protocol_error(c, "%s", err);
        free(payload);
        return -1;
    }
    rc = answer(c, &req);
    free(payload);
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

/* A request that will not be served (the service is stopping): answered busy, audited. */
static void refuse_request(struct conn *c, const char *why)
{
    count_reply(c->srv, SGN_E_BUSY);
    sgn_audit_event(c->srv->p->engine, &c->peer, "connection", "error", NULL, why);
    send_status(c->fd, SGN_E_BUSY, why);
}

/* 1 when bytes of a request are waiting (not just EOF). */
static int request_pending(int fd)
{
    uint8_t b;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->srv;

    /* Here, not in the accept loop: NSS lookups may be slow (LDAP), and only this peer waits. */
    pol_access_resolve(sgn_engine_config(s->p->engine), &c->peer, &c->access);
    c->peer.access = &c->access;
    for (;;) {
        int stopping;

        if (wait_request(c) <= 0)
            break; /* idle too long, or the socket failed */
        pthread_mutex_lock(&s->lock);
        stopping = s->stopping;
        c->busy = !stopping;
        pthread_mutex_unlock(&s->lock);
        if (stopping) {
            if (request_pending(c->fd))
                refuse_request(c, "itl-signd is stopping; retry when it is back");
            break;
        }
        int rc = handle_frame(c);
        pthread_mutex_lock(&s->lock);
        c->busy = 0;
        stopping = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (rc != 0 || stopping)
            break;
    }
    pthread_mutex_lock(&s->lock);
    close(c->fd);
    c->fd = -1;
    c->done = 1;
    s->live--;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

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

static void set_timeouts(int fd, unsigned timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void refuse(struct server *s, int fd, const struct pol_peer *peer, const char *why)
{
    count_reply(s, SGN_E_BUSY);
    sgn_audit_event(s->p->engine, peer, "connection", "error", NULL, why);
    srv_log(LOG_WARNING, "refused a connection from uid %u pid %d: %s", (unsigned)peer->uid,
            (int)peer->pid, why);
    send_status(fd, SGN_E_BUSY, why);
    close(fd);
}

static void accept_one(struct server *s)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    struct pol_peer peer = {0};
    struct conn *c;
    unsigned live;
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
    set_timeouts(fd, s->p->cfg->socket.timeout_ms);

    pthread_mutex_lock(&s->lock);
    live = s->live;
    pthread_mutex_unlock(&s->lock);
    if (live >= s->p->cfg->socket.max_connections) {
        char why[128];
        snprintf(why, sizeof why, "too many connections (socket.max-connections is %u)",
                 s->p->cfg->socket.max_connections);
        refuse(s, fd, &peer, why);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        refuse(s, fd, &peer, "out of memory for a new connection");
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->peer = peer;
    pthread_mutex_lock(&s->lock);
    s->live++;
    pthread_mutex_unlock(&s->lock);
    if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
        pthread_mutex_lock(&s->lock);
        s->live--;
        pthread_mutex_unlock(&s->lock);
        free(c);
        refuse(s, fd, &peer, "cannot start a thread for the connection");
        return;
    }
    c->next = s->conns;
    s->conns = c;
}

/* 1 when the signal asks to stop. */
static int handle_signal(struct server *s, int sfd)
{
    struct signalfd_siginfo si;
    struct pol_err pe;

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
        if (c->busy)
            waiting++;
        else
            shutdown(c->fd, SHUT_RD); /* between requests: its thread sees EOF */
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

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
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
        char reminder[POL_ERR_LEN + 64];
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
