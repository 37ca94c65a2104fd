/* SPDX-License-Identifier: MIT */
/*
 * itl-signd's process machinery: logging, the directories it trusts, the listening socket, and
 * the serving loop. The loop owns the listening socket and a signalfd; every connection gets a
 * thread that reads frames, runs them through sgn_execute() and answers, one at a time.
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
#include <sys/random.h>
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

int srv_check_dir(const char *what, const char *dir, const struct srv_ids *ids, char *err,
                  size_t err_size)
{
    struct itl_error pe;

    /* The same rule direct mode applies to the state directory (policy/files.c). */
    if (pol_check_dir(what, dir, ids->run_uid, ids->run_gid, &pe) != 0) {
        sgn_set_err(err, err_size, "%s", pe.msg);
        return -1;
    }
    return 0;
}

int srv_make_dir(const char *what, const char *dir, uid_t uid, gid_t gid, int *created, char *err,
                 size_t err_size)
{
    struct stat st;
    int fd, rc = -1;

    *created = 0;
    if (mkdir(dir, 0750) != 0) {
        if (errno == EEXIST)
            return 0;
        sgn_set_err(err, err_size,
                    "cannot create %s %s: %s (create its parent, or install signer/tmpfiles.conf)",
                    what, dir, strerror(errno));
        return -1;
    }
    *created = 1;
    /* Owner and mode through a descriptor of what we made, never by name: whoever can write
     * the parent could swap the new name for a link to a file of root's. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
        sgn_set_err(err, err_size, "%s %s was replaced while it was being created; refusing it",
                    what, dir);
        goto out;
    }
    /* chown first: chmod after it keeps the mode exact whatever the umask was. */
    if (fchown(fd, uid, gid) != 0 || fchmod(fd, 0750) != 0) {
        sgn_set_err(err, err_size, "%s %s: cannot set owner and mode: %s", what, dir,
                    strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int srv_prepare_dir(const char *what, const char *dir, gid_t gid, const struct srv_ids *ids,
                    int *created, char *err, size_t err_size)
{
    if (srv_make_dir(what, dir, ids->run_uid, gid, created, err, err_size) != 0)
        return -1;
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

/* What is at the socket's name: 0 nothing, 1 a stale socket (nothing listens on it), -1 an
 * error (another instance listens, or it is not a socket). */
static int probe_existing(int dfd, const char *name, const struct sockaddr_un *addr, char *err,
                          size_t err_size)
{
    const char *path = addr->sun_path;
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        sgn_set_err(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
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
        return 1;
    default:
        sgn_set_err(err, err_size, "cannot probe the existing socket %s: %s", path,
                    strerror(errno));
        return -1;
    }
}

/* The socket directory, opened once and checked through the descriptor: every later step is
 * relative to it, whatever its name points at meanwhile. */
static int open_socket_dir(const char *dir, const struct srv_ids *ids, char *err, size_t err_size)
{
    struct itl_error pe;
    struct stat st;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
        sgn_set_err(err, err_size, "socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 ||
        pol_check_trusted("socket directory", dir, &st, ids->run_uid, ids->run_gid, &pe) != 0) {
        sgn_set_err(err, err_size, "%s", pe.msg);
        close(fd);
        return -1;
    }
    return fd;
}

/* A directory only we can write, inside the socket directory (the final rename must not cross
 * filesystems): there the socket is bound and given its owner and mode, and nobody else can
 * swap its name for a link meanwhile. Returns its descriptor; its name in `name`. */
static int make_private_dir(int dfd, char *name, size_t size)
{
    for (int tries = 0; tries < 100; tries++) {
        unsigned char rnd[6];
        struct stat st;
        int fd;

        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            return -1;
        snprintf(name, size, ".itl-signd.bind.%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5]);
        if (mkdirat(dfd, name, 0700) != 0) {
            if (errno == EEXIST)
                continue;
            return -1;
        }
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & 077))
            return fd;
        if (fd >= 0)
            close(fd);
        errno = EEXIST; /* replaced by someone else between mkdir and open */
        return -1;
    }
    errno = EEXIST;
    return -1;
}

/* bind() takes a path: it is resolved from the private directory's descriptor (fchdir there
 * and back), so no name anyone else can change is followed. itl-signd has no threads yet. */
static int bind_in(int sfd, int pfd, const char *name)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC), rc = -1, saved;
    mode_t old_umask;

    if (cwd < 0)
        return -1;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", name);
    if (fchdir(pfd) == 0) {
        old_umask = umask(0177); /* born private; socket.mode once owner and group are right */
        rc = bind(sfd, (struct sockaddr *)&addr, sizeof addr);
        umask(old_umask);
        saved = errno;
        if (fchdir(cwd) != 0 && rc == 0) {
            saved = errno;
            rc = -1;
        }
        errno = saved;
    }
    saved = errno;
    close(cwd);
    errno = saved;
    return rc;
}

/* Bind in the private directory, set owner and mode there, listen, rename into place. */
static int bind_private(const struct pol_config *cfg, const struct srv_ids *ids,
                        struct srv_listener *l, int dfd, const char *base, char *err,
                        size_t err_size)
{
    static const char tmp[] = "socket";
    const char *path = cfg->socket.path;
    char priv[64];
    struct stat st;
    int pfd = make_private_dir(dfd, priv, sizeof priv), rc = -1;

    if (pfd < 0) {
        sgn_set_err(err, err_size, "cannot make a private directory next to %s: %s", path,
                    strerror(errno));
        return -1;
    }
    if (bind_in(l->fd, pfd, tmp) != 0) {
        sgn_set_err(err, err_size, "cannot bind %s: %s", path, strerror(errno));
        goto out;
    }
    if ((ids->has_sock_uid || ids->has_sock_gid) &&
        fchownat(pfd, tmp, ids->has_sock_uid ? ids->sock_uid : (uid_t)-1,
                 ids->has_sock_gid ? ids->sock_gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) != 0) {
        sgn_set_err(err, err_size, "cannot set socket.owner/socket.group on %s: %s", path,
                    strerror(errno));
        goto out;
    }
    if (fchmodat(pfd, tmp, cfg->socket.mode, 0) != 0) {
        sgn_set_err(err, err_size, "cannot set socket.mode %04o on %s: %s", cfg->socket.mode, path,
                    strerror(errno));
        goto out;
    }
    if (fstatat(pfd, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0 || listen(l->fd, SOMAXCONN) != 0) {
        sgn_set_err(err, err_size, "listen on %s: %s", path, strerror(errno));
        goto out;
    }
    /* Atomically over a stale socket: clients never see the name missing or unlistened. */
    if (renameat(pfd, tmp, dfd, base) != 0) {
        sgn_set_err(err, err_size, "cannot move the socket to %s: %s", path, strerror(errno));
        goto out;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    rc = 0;
out:
    unlinkat(pfd, tmp, 0); /* after a failure; gone already after the rename */
    close(pfd);
    unlinkat(dfd, priv, AT_REMOVEDIR);
    return rc;
}

int srv_listen(const struct pol_config *cfg, const struct srv_ids *ids, struct srv_listener *l,
               char *err, size_t err_size)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *path = cfg->socket.path, *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[sizeof addr.sun_path];
    int dfd, stale;

    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (strlen(path) >= sizeof addr.sun_path) {
        sgn_set_err(err, err_size, "socket.path %s is longer than %zu bytes (a unix socket limit)",
                    path, sizeof addr.sun_path - 1);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    srv_dirname(path, dir, sizeof dir);
    dfd = open_socket_dir(dir, ids, err, err_size);
    if (dfd < 0)
        return -1;
    stale = probe_existing(dfd, base, &addr, err, err_size);
    if (stale < 0)
        goto fail;
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        sgn_set_err(err, err_size, "socket: %s", strerror(errno));
        goto fail;
    }
    if (bind_private(cfg, ids, l, dfd, base, err, err_size) != 0)
        goto fail;
    snprintf(l->path, sizeof l->path, "%s", path);
    if (stale)
        srv_log(LOG_NOTICE, "removed stale socket %s (nothing listened on it)", path);
    close(dfd);
    return 0;
fail:
    close(dfd);
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

struct conn {
    struct server *srv;
    int fd;
    struct pol_peer peer; /* peer.access points at access */
    struct pol_access access;
    struct uid_use *use; /* the peer's uid; counted under srv->lock */
    size_t charged;      /* request bytes this connection holds, in use->pending and srv->pending */
    pthread_t thread;
    enum conn_state state; /* under srv->lock */
    int done;              /* the thread has finished and closed fd; join it */
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

static long long io_deadline(const struct server *s)
{
    return sgn_now_ms() + s->p->cfg->socket.timeout_ms;
}

static void count_reply(struct server *s, enum sgn_status st)
{
    atomic_fetch_add(&s->requests_total, 1);
    if (st != SGN_OK)
        atomic_fetch_add(&s->requests_failed, 1);
}

/* A reply that carries only a status and a message (protocol errors, busy, denied). */
static int send_status(int fd, enum sgn_status st, const char *message, long long deadline)
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
    send_status(c->fd, SGN_E_PROTOCOL, msg, io_deadline(c->srv));
}

/* A request that will not be served (the service is stopping, or has no room for its bytes):
 * answered busy, audited. */
static void refuse_request(struct conn *c, const char *why)
{
    count_reply(c->srv, SGN_E_BUSY);
    sgn_audit_event(c->srv->p->engine, &c->peer, "connection", "error", NULL, why);
    send_status(c->fd, SGN_E_BUSY, why, io_deadline(c->srv));
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
        return send_status(c->fd, SGN_E_INTERNAL, "the reply could not be encoded", io_deadline(s));
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
    char err[512];
    size_t len, got;
    enum sgn_recv_end end;
    int rc = -1;

    end = sgn_recv_until(c->fd, hdr, sizeof hdr, deadline, &got);
    if (end != SGN_RECV_OK) {
        frame_cut(c, "header", got, SGN_WIRE_HEADER_LEN, end);
        return -1;
    }
    if (sgn_wire_header(hdr, SGN_FRAME_REQUEST, cfg->socket.max_request_bytes, &len, err,
                        sizeof err) != 0) {
        protocol_error(c, "%s", err);
        return -1;
    }
    if (recv_payload(c, len, deadline, &payload) != 0)
        goto out;
    if (sgn_wire_decode_request(payload, len, &req, certs, err, sizeof err) != 0)
        protocol_error(c, "%s", err);
    else if (enter_state(c, CONN_RUNNING) != 0)
        refuse_request(c, STOPPING_TEXT); /* arrived whole after the stop began */
    else
        rc = answer(c, &req);
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

/* 1 when bytes of a request are waiting (not just EOF). */
static int request_pending(int fd)
{
    uint8_t b;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* A peer that no access rule names may ask for nothing: one `denied` reply, before anything
 * of it is read, and the connection is closed (it holds no slot, no buffer). */
static void deny_peer(struct conn *c)
{
    struct server *s = c->srv;
    struct pol_decision d;

    pol_check_access(sgn_engine_config(s->p->engine), &c->peer, POL_OP_STATUS, &d);
    count_reply(s, SGN_E_DENIED);
    sgn_audit_event(s->p->engine, &c->peer, "connection", "denied", "access", d.message);
    send_status(c->fd, SGN_E_DENIED, d.message, io_deadline(s));
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
}

/* Gives back the connection's slot; the uid's entry goes with its last connection. */
static void release_slot(struct server *s, struct uid_use *use)
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

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->srv;

    /* Here, not in the accept loop: NSS lookups may be slow (LDAP), and only this peer waits.
     * Nothing of the peer is read before its rules are known. */
    pol_access_resolve(sgn_engine_config(s->p->engine), &c->peer, &c->access);
    c->peer.access = &c->access;
    if (c->access.matched)
        serve(c);
    else
        deny_peer(c);
    pthread_mutex_lock(&s->lock);
    close(c->fd);
    c->fd = -1;
    c->done = 1;
    release_slot(s, c->use);
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

static void refuse(struct server *s, int fd, const struct pol_peer *peer, const char *why)
{
    count_reply(s, SGN_E_BUSY);
    sgn_audit_event(s->p->engine, peer, "connection", "error", NULL, why);
    srv_log(LOG_WARNING, "refused a connection from uid %u pid %d: %s", (unsigned)peer->uid,
            (int)peer->pid, why);
    send_status(fd, SGN_E_BUSY, why, io_deadline(s));
    close(fd);
}

/* A slot for a new connection of `uid`, within socket.max-connections and
 * socket.max-connections-per-uid (so one uid, even one with rules, cannot take every slot).
 * NULL with `why` when there is none. */
static struct uid_use *take_slot(struct server *s, uid_t uid, char *why, size_t size)
{
    const struct pol_config *cfg = s->p->cfg;
    struct uid_use *use;

    pthread_mutex_lock(&s->lock);
    for (use = s->uids; use && use->uid != uid; use = use->next)
        ;
    if (s->live >= cfg->socket.max_connections) {
        snprintf(why, size, "too many connections (socket.max-connections is %u)",
                 cfg->socket.max_connections);
        use = NULL;
    } else if (use && use->conns >= cfg->socket.max_connections_per_uid) {
        snprintf(why, size,
                 "too many connections from uid %u (socket.max-connections-per-uid is %u)",
                 (unsigned)uid, cfg->socket.max_connections_per_uid);
        use = NULL;
    } else if (!use && !(use = calloc(1, sizeof *use))) {
        snprintf(why, size, "out of memory for a new connection");
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
    char why[160];
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
    use = take_slot(s, peer.uid, why, sizeof why);
    if (!use) {
        refuse(s, fd, &peer, why);
        return;
    }
    c = calloc(1, sizeof *c);
    if (c) {
        c->srv = s;
        c->fd = fd;
        c->peer = peer;
        c->use = use;
    }
    if (!c || pthread_create(&c->thread, NULL, conn_main, c) != 0) {
        pthread_mutex_lock(&s->lock);
        release_slot(s, use);
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
