/* SPDX-License-Identifier: MIT */
/*
 * Who itl-signd is and where it keeps its files: the run-as user and the socket's owner and
 * group resolved from the config, and the directories it creates and trusts.
 */
#include "signer/server.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

/* ---- Users and groups ---- */

/* The name passwd knows a run-as user by, for initgroups(): the configured name, unless it was
 * a number (ids_user() looks a name up first, and a number only when no user has that name). */
static void canonical_user(const char *name, uid_t uid, char *out, size_t size)
{
    const char *p = name;

    while (isdigit((unsigned char)*p))
        p++;
    if (*p)
        snprintf(out, size, "%s", name);
    else
        ids_user_name(uid, out, size);
}

/* ids_user()/ids_group() failures, named after the config key; `hint` follows "no such". */
static void id_error(struct itl_error *err, const char *where, const char *key, const char *kind,
                     const char *name, const char *hint, const struct itl_error *ie)
{
    if (ie->cls == ITL_E_USAGE)
        err_set(err, ITL_E_IO, "%s: %s: no such %s '%s'%s", where, key, kind, name, hint);
    else
        err_set(err, ITL_E_IO, "%s: %s: %s", where, key, ie->msg);
}

int srv_resolve_ids(const struct pol_config *cfg, struct srv_ids *ids, struct itl_error *err)
{
    const char *where = cfg->path[0] ? cfg->path : "config";
    struct itl_error ie;

    memset(ids, 0, sizeof *ids);
    ids->run_uid = geteuid();
    ids->run_gid = getegid();
    if (cfg->run_as.group[0] && !cfg->run_as.user[0]) {
        err_set(err, ITL_E_USAGE, "%s: run-as.group needs run-as.user (the user to switch to)",
                where);
        return -1;
    }
    if (cfg->run_as.user[0]) {
        if (ids_user(cfg->run_as.user, &ids->run_uid, &ids->run_gid, &ie) != 0) {
            id_error(err, where, "run-as.user", "user", cfg->run_as.user,
                     " (create it: useradd --system itl-sign)", &ie);
            return -1;
        }
        canonical_user(cfg->run_as.user, ids->run_uid, ids->run_user, sizeof ids->run_user);
        ids->drop = 1;
    }
    if (cfg->run_as.group[0] && ids_group(cfg->run_as.group, &ids->run_gid, &ie) != 0) {
        id_error(err, where, "run-as.group", "group", cfg->run_as.group, "", &ie);
        return -1;
    }
    if (cfg->socket.owner[0]) {
        if (ids_user(cfg->socket.owner, &ids->sock_uid, NULL, &ie) != 0) {
            id_error(err, where, "socket.owner", "user", cfg->socket.owner, "", &ie);
            return -1;
        }
        ids->has_sock_uid = 1;
    }
    if (cfg->socket.group[0]) {
        if (ids_group(cfg->socket.group, &ids->sock_gid, &ie) != 0) {
            id_error(err, where, "socket.group", "group", cfg->socket.group, "", &ie);
            return -1;
        }
        ids->has_sock_gid = 1;
    }
    return 0;
}

/* ---- Directories ---- */

int srv_check_dir(const char *what, const char *dir, const struct srv_ids *ids,
                  struct itl_error *err)
{
    /* The same rule direct mode applies to the state directory (policy/files.c). */
    return pol_check_dir(what, dir, ids->run_uid, ids->run_gid, err);
}

int srv_make_dir(const char *what, const char *dir, uid_t uid, gid_t gid, int *created,
                 struct itl_error *err)
{
    struct stat st;
    int fd, rc = -1;

    *created = 0;
    if (mkdir(dir, 0750) != 0) {
        if (errno == EEXIST)
            return 0;
        err_set(err, ITL_E_IO,
                "cannot create %s %s: %s (create its parent, or install signer/tmpfiles.conf)",
                what, dir, strerror(errno));
        return -1;
    }
    *created = 1;
    /* Owner and mode through a descriptor of what we made, never by name: whoever can write
     * the parent could swap the new name for a link to a file of root's. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
        err_set(err, ITL_E_IO, "%s %s was replaced while it was being created; refusing it", what,
                dir);
        goto out;
    }
    /* chown first: chmod after it keeps the mode exact whatever the umask was. */
    if (fchown(fd, uid, gid) != 0 || fchmod(fd, 0750) != 0) {
        err_set(err, ITL_E_IO, "%s %s: cannot set owner and mode: %s", what, dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int srv_prepare_dir(const char *what, const char *dir, gid_t gid, const struct srv_ids *ids,
                    int *created, struct itl_error *err)
{
    if (srv_make_dir(what, dir, ids->run_uid, gid, created, err) != 0)
        return -1;
    return srv_check_dir(what, dir, ids, err);
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
