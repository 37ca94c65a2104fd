/* SPDX-License-Identifier: MIT */
/*
 * Files the service and the CLI trust or publish: who may have written a directory or file
 * (pol_check_trusted, pol_check_dir). Writing them is common/file.c's file_replace_in.
 */
#include "policy/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ---- who may have written it ---- */

int pol_check_trusted(const char *what, const char *path, const struct stat *st, uid_t uid,
                      gid_t gid, struct itl_error *err)
{
    char who[256], owner[256];

    ids_user_name(uid, owner, sizeof owner);
    if (st->st_uid != 0 && st->st_uid != uid) {
        ids_user_name(st->st_uid, who, sizeof who);
        return err_set(err, ITL_E_IO,
                       "%s %s belongs to user %s; it must belong to root or the service user "
                       "%s (fix: chown %s %s)",
                       what, path, who, owner, owner, path);
    }
    if (st->st_mode & S_IWOTH)
        return err_set(err, ITL_E_IO,
                       "%s %s is writable by others (mode %04o): any local user could replace "
                       "what the service keeps there; refusing it (fix: chmod o-w %s)",
                       what, path, (unsigned)(st->st_mode & 07777), path);
    if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && st->st_gid != gid) {
        ids_group_name(st->st_gid, who, sizeof who);
        return err_set(err, ITL_E_IO,
                       "%s %s is writable by group %s, which is not the service's group (mode "
                       "%04o); refusing it (fix: chmod g-w %s)",
                       what, path, who, (unsigned)(st->st_mode & 07777), path);
    }
    return 0;
}

int pol_check_dir(const char *what, const char *dir, uid_t uid, gid_t gid, struct itl_error *err)
{
    struct stat st;

    if (stat(dir, &st) != 0)
        return err_set(err, ITL_E_IO, "%s %s: %s", what, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set(err, ITL_E_IO, "%s %s is not a directory", what, dir);
    return pol_check_trusted(what, dir, &st, uid, gid, err);
}
