/* SPDX-License-Identifier: MIT */
/*
 * Files the service and the CLI trust or publish: who may have written a directory or file
 * (pol_check_trusted, pol_check_dir), and the one atomic, durable writer both use
 * (pol_write_file_at).
 */
#include "policy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- who may have written it ---- */

static void user_text(uid_t uid, char *out, size_t size)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(out, size, "%s", pw->pw_name);
    else
        snprintf(out, size, "%u", (unsigned)uid);
}

static void group_text(gid_t gid, char *out, size_t size)
{
    struct group *gr = getgrgid(gid);
    if (gr)
        snprintf(out, size, "%s", gr->gr_name);
    else
        snprintf(out, size, "%u", (unsigned)gid);
}

int pol_check_trusted(const char *what, const char *path, const struct stat *st, uid_t uid,
                      gid_t gid, struct itl_error *err)
{
    char who[256], owner[256];

    user_text(uid, owner, sizeof owner);
    if (st->st_uid != 0 && st->st_uid != uid) {
        user_text(st->st_uid, who, sizeof who);
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
        group_text(st->st_gid, who, sizeof who);
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

/* ---- the atomic writer ---- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ".NAME.tmp.XXXXXX" with six random characters: hidden from `ls` and TFTP listings, and
 * recognisable as a temporary should a kill leave one behind. */
static int temp_name(const char *name, char *out, size_t size)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[6];
    char suffix[7];

    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return -1;
    for (size_t i = 0; i < sizeof rnd; i++)
        suffix[i] = chars[rnd[i] % (sizeof chars - 1)];
    suffix[6] = '\0';
    int n = snprintf(out, size, ".%s.tmp.%s", name, suffix);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* A file with no name in the directory (O_TMPFILE): killed or stopped by RLIMIT_FSIZE while
 * writing, it vanishes with the process. -1 when the filesystem or kernel has none. */
static int open_unnamed(int dirfd, unsigned mode)
{
#ifdef O_TMPFILE
    return openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
#else
    (void)dirfd;
    (void)mode;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

/* Gives the unnamed file `fd` the name `name`; EEXIST when it is taken. AT_EMPTY_PATH needs
 * CAP_DAC_READ_SEARCH; /proc/self/fd works for everyone where /proc is mounted. */
static int link_unnamed(int fd, int dirfd, const char *name)
{
    char proc[64];

    if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno == EEXIST)
        return -1;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
}

/* A named temporary created exclusively: the fallback where O_TMPFILE is not available. */
static int open_named(int dirfd, const char *name, unsigned mode, char *tmp, size_t tmp_size)
{
    for (int tries = 0; tries < 100; tries++) {
        if (temp_name(name, tmp, tmp_size) != 0)
            return -1;
        int fd =
            openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* The complete, synced file `fd` gets the name `name`: linked straight to it when it is free;
 * else linked to a hidden temporary renamed over it (a link cannot replace a file). */
static int publish_unnamed(int fd, int dirfd, const char *name, char *tmp, size_t tmp_size)
{
    if (link_unnamed(fd, dirfd, name) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    for (int tries = 0; tries < 100; tries++) {
        if (temp_name(name, tmp, tmp_size) != 0)
            return -1;
        if (link_unnamed(fd, dirfd, tmp) == 0)
            break;
        if (errno != EEXIST)
            return -1;
    }
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        int saved = errno;
        unlinkat(dirfd, tmp, 0);
        errno = saved;
        return -1;
    }
    return 0;
}

int pol_write_file_at(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                      unsigned mode, uid_t owner, gid_t group, int sync_dir, struct itl_error *err)
{
    char tmp[512] = "";
    int fd, unnamed = 1, saved;

    if (strchr(name, '/') || !name[0] || strlen(name) > 200)
        return err_set(err, ITL_E_IO, "%s/%s: not a file name of at most 200 bytes", dir, name);
    fd = open_unnamed(dirfd, mode);
    if (fd < 0) {
        unnamed = 0;
        fd = open_named(dirfd, name, mode, tmp, sizeof tmp);
    }
    if (fd < 0)
        return err_set(err, ITL_E_IO, "cannot create a file in %s for %s: %s", dir, name,
                       strerror(errno));
    /* By descriptor, before the file has a name: nothing another user renames is followed. */
    if ((owner != (uid_t)-1 || group != (gid_t)-1) && fchown(fd, owner, group) != 0)
        goto fail;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto fail;
    if (unnamed ? publish_unnamed(fd, dirfd, name, tmp, sizeof tmp) != 0
                : renameat(dirfd, tmp, dirfd, name) != 0)
        goto fail;
    tmp[0] = '\0'; /* it has its final name now */
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    if (sync_dir && fsync(dirfd) != 0)
        return err_set(err, ITL_E_IO, "wrote %s/%s but could not sync the directory: %s", dir, name,
                       strerror(errno));
    return 0;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    if (!unnamed && tmp[0])
        unlinkat(dirfd, tmp, 0);
    return err_set(err, ITL_E_IO, "cannot write %s/%s: %s", dir, name, strerror(saved));
}
