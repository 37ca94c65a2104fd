/* SPDX-License-Identifier: MIT */
/*
 * itl-signd's listening socket: taken from systemd (socket activation), or bound at
 * socket.path without following any name the service user could change, and unlinked at the
 * end only while it is still the file we bound.
 */
#include "signer/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#define SD_LISTEN_FDS_START 3

int srv_listen_activated(struct srv_listener *l, struct itl_error *err)
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
        err_set(err, ITL_E_IO, "systemd passed %ld sockets; itl-signd takes exactly one", n);
        return -1;
    }
    len = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    len = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    if (type != SOCK_STREAM || domain != AF_UNIX || !listening) {
        err_set(err, ITL_E_IO,
                "the socket passed by systemd is not a listening unix stream socket (check "
                "itl-signd.socket: ListenStream=/run/itl-sign/socket)");
        return -1;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        err_set(err, ITL_E_IO, "socket passed by systemd: %s", strerror(errno));
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
static int probe_existing(int dfd, const char *name, const struct sockaddr_un *addr,
                          struct itl_error *err)
{
    const char *path = addr->sun_path;
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        err_set(err, ITL_E_IO, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        err_set(err, ITL_E_IO, "%s exists and is not a socket (remove it, or change socket.path)",
                path);
        return -1;
    }
    switch (socket_in_use(addr)) {
    case 1:
        err_set(err, ITL_E_IO, "another itl-signd is already listening on %s", path);
        return -1;
    case 0:
        return 1;
    default:
        err_set(err, ITL_E_IO, "cannot probe the existing socket %s: %s", path, strerror(errno));
        return -1;
    }
}

/* The socket directory, opened once and checked through the descriptor: every later step is
 * relative to it, whatever its name points at meanwhile. */
static int open_socket_dir(const char *dir, const struct srv_ids *ids, struct itl_error *err)
{
    struct stat st;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
        return err_errno(err, errno, "socket directory %s", dir);
    }
    if (fstat(fd, &st) != 0 ||
        pol_check_trusted("socket directory", dir, &st, ids->run_uid, ids->run_gid, err) != 0) {
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
                        struct srv_listener *l, int dfd, const char *base, struct itl_error *err)
{
    static const char tmp[] = "socket";
    const char *path = cfg->socket.path;
    char priv[64];
    struct stat st;
    int pfd = make_private_dir(dfd, priv, sizeof priv), rc = -1;

    if (pfd < 0) {
        err_set(err, ITL_E_IO, "cannot make a private directory next to %s: %s", path,
                strerror(errno));
        return -1;
    }
    if (bind_in(l->fd, pfd, tmp) != 0) {
        err_set(err, ITL_E_IO, "cannot bind %s: %s", path, strerror(errno));
        goto out;
    }
    if ((ids->has_sock_uid || ids->has_sock_gid) &&
        fchownat(pfd, tmp, ids->has_sock_uid ? ids->sock_uid : (uid_t)-1,
                 ids->has_sock_gid ? ids->sock_gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) != 0) {
        err_set(err, ITL_E_IO, "cannot set socket.owner/socket.group on %s: %s", path,
                strerror(errno));
        goto out;
    }
    if (fchmodat(pfd, tmp, cfg->socket.mode, 0) != 0) {
        err_set(err, ITL_E_IO, "cannot set socket.mode %04o on %s: %s", cfg->socket.mode, path,
                strerror(errno));
        goto out;
    }
    if (fstatat(pfd, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0 || listen(l->fd, SOMAXCONN) != 0) {
        err_set(err, ITL_E_IO, "listen on %s: %s", path, strerror(errno));
        goto out;
    }
    /* Atomically over a stale socket: clients never see the name missing or unlistened. */
    if (renameat(pfd, tmp, dfd, base) != 0) {
        err_set(err, ITL_E_IO, "cannot move the socket to %s: %s", path, strerror(errno));
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
               struct itl_error *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *path = cfg->socket.path, *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[sizeof addr.sun_path];
    int dfd, stale;

    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (strlen(path) >= sizeof addr.sun_path) {
        err_set(err, ITL_E_IO, "socket.path %s is longer than %zu bytes (a unix socket limit)",
                path, sizeof addr.sun_path - 1);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    srv_dirname(path, dir, sizeof dir);
    dfd = open_socket_dir(dir, ids, err);
    if (dfd < 0)
        return -1;
    stale = probe_existing(dfd, base, &addr, err);
    if (stale < 0)
        goto fail;
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        err_set(err, ITL_E_IO, "socket: %s", strerror(errno));
        goto fail;
    }
    if (bind_private(cfg, ids, l, dfd, base, err) != 0)
        goto fail;
    memcpy(l->path, addr.sun_path, sizeof l->path); /* length checked above */
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
