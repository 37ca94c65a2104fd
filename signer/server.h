/* SPDX-License-Identifier: MIT */
/*
 * signer/ private: the itl-signd process around the engine. Logging (log.c), the ids and
 * directories it trusts (dirs.c), the listening socket (listen.c), and the serving loop (serve.c:
 * signals through a signalfd, one thread per connection in conn.c). itl-signd.c strings these
 * together in the order the man page documents.
 */
#ifndef ITL_SIGNER_SERVER_H
#define ITL_SIGNER_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

#include "policy/policy.h"
#include "signer/internal.h"

/* ---- Logging: stderr in the foreground, syslog (daemon facility) when detached ---- */

void srv_log_use_syslog(void);
/* priority: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO (syslog.h). One line, never a secret. */
void srv_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Who the service is, resolved once from the config ---- */

struct srv_ids {
    int drop;      /* run-as.user is set: switch to run_uid/run_gid (when root) */
    uid_t run_uid; /* the uid that will serve: run-as.user, or the current euid */
    gid_t run_gid; /* its group: run-as.group, the user's primary group, or the egid */
    char run_user[256];
    int has_sock_uid, has_sock_gid;
    uid_t sock_uid; /* socket.owner */
    gid_t sock_gid; /* socket.group */
};

/* User and group names or numeric ids of the config; an unknown name is an error naming the
 * config key. */
int srv_resolve_ids(const struct pol_config *cfg, struct srv_ids *ids, struct itl_error *err);

/* ---- Directories ---- */

/* A directory the service trusts must belong to root or the service user and must not be
 * writable by others, nor by a group other than the service's. err names the dir and the fix. */
int srv_check_dir(const char *what, const char *dir, const struct srv_ids *ids,
                  struct itl_error *err);
/* Create `dir` (one level, mode 0750, owned by uid:gid) when missing; *created says whether it
 * was made now. Owner and mode are set through a descriptor, never by name. */
int srv_make_dir(const char *what, const char *dir, uid_t uid, gid_t gid, int *created,
                 struct itl_error *err);
/* srv_make_dir for the service user and `gid`, then srv_check_dir. */
int srv_prepare_dir(const char *what, const char *dir, gid_t gid, const struct srv_ids *ids,
                    int *created, struct itl_error *err);
/* The directory part of a path ("/run/itl-sign/socket" -> "/run/itl-sign"). */
void srv_dirname(const char *path, char *out, size_t size);

/* ---- What the service user needs (usercheck.c) ---- */

/* As run-as.user (a forked child when root; in-process when already that user): the state and
 * audit log directories it writes, and the module's own config (SoftHSM2: SOFTHSM2_CONF or
 * /etc/softhsm/softhsm2.conf, its tokendir and token files). One line in out per problem, each
 * naming the user and the path; returns how many. A PIN file the user cannot read is a note
 * on stdout (root reads it before the drop). */
size_t srv_check_as_user(const struct pol_config *cfg, const struct srv_ids *ids, struct buf *out);
/* itl-signd --check-config after the config loaded: 0 ("config OK" on stdout) or -1 with each
 * problem on stderr (checkconfig.c). */
int srv_check_config(const struct pol_config *cfg, const struct srv_ids *ids);
/* The module part alone, as the current user (after the drop, when C_Initialize failed). */
size_t srv_module_access_problems(const char *module, const char *user, struct buf *out);

/* ---- The listening socket ---- */

struct srv_listener {
    int fd;
    int activated; /* handed over by systemd (LISTEN_FDS): not ours to unlink */
    char path[sizeof((struct sockaddr_un *)0)->sun_path];
    dev_t dev; /* the socket file we bound: unlink it only if it is still ours */
    ino_t ino;
};

/* A socket passed by systemd socket activation (LISTEN_PID/LISTEN_FDS, fd 3), without
 * libsystemd. Returns 1 when one was taken, 0 when none was passed, -1 on a bad one. */
int srv_listen_activated(struct srv_listener *l, struct itl_error *err);
/* Bind socket.path: the socket is bound in a private directory (root's, inside the socket
 * directory), given socket.mode and socket.owner/group there, and renamed to its name, over a
 * stale socket only when nothing listens on it. Nothing is done by a name the service user
 * could change. */
int srv_listen(const struct pol_config *cfg, const struct srv_ids *ids, struct srv_listener *l,
               struct itl_error *err);
/* Close; unlink the socket file when we bound it and it is still the same file. */
void srv_listener_close(struct srv_listener *l);

/* ---- Serving ---- */

/* The signals the service handles (TERM, INT, HUP); block them before any thread exists so
 * that only the serving loop sees them (through a signalfd). SIGPIPE is ignored. */
void srv_block_signals(void);

struct srv_params {
    const struct pol_config *cfg; /* as started: its path is reloaded on SIGHUP */
    struct sgn_engine *engine;
    struct pol_audit *audit; /* reopened on SIGHUP */
    struct srv_listener *listener;
};

/* SIGHUP (reload.c): reopen the audit log, load cfg->path again and make it the engine's
 * configuration for the requests that start from now on; one that does not load is logged and
 * the running one kept. Token, keys, socket, run-as, state-dir, audit-log keep their running
 * values (a change is logged as needing a restart). One audit record (op "reload"). */
void srv_reload(const struct srv_params *p);

/* Serve until SIGTERM/SIGINT: then stop accepting, close the socket, cut frames still arriving,
 * let requests being executed finish, join every connection thread. 0 on a clean stop, -1 when
 * serving could not start. */
int srv_run(const struct srv_params *p);

#endif
