/* SPDX-License-Identifier: MIT */
/*
 * Files: read a whole regular file with a limit, write-all, and the one atomic, durable
 * replace every layer uses (the content is complete and synced before it has its name, so a
 * reader sees the old file or the new one, never a part; a crash leaves the old one).
 */
#include "common/common.h"
#include "common/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define NAME_MAX_BYTES FILE_NAME_MAX_BYTES

/* ---- reading ---- */

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISLNK(mode)  ? "a symbolic link"
                            : "a device";
}

/* O_NONBLOCK: opening a FIFO must not hang before we can see it is one. */
int file_open_regular(const char *path, unsigned flags, struct stat *stp, struct itl_error *err)
{
    int nofollow = (flags & FILE_NOFOLLOW) != 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
    struct stat mine, *st = stp ? stp : &mine;

    if (fd < 0) {
        int saved = errno;
        if (saved == ELOOP && nofollow && lstat(path, st) == 0 && S_ISLNK(st->st_mode))
            return err_set(err, ITL_E_INPUT,
                           "%s is a symbolic link, which is not followed (give the file it "
                           "points to)",
                           path);
        return err_errno(err, saved, "cannot open %s", path);
    }
    if (fstat(fd, st) != 0) {
        int saved = errno;
        close(fd);
        return err_errno(err, saved, "cannot stat %s", path);
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return err_set(err, ITL_E_INPUT, "%s is %s, not a regular file", path,
                       file_kind(st->st_mode));
    }
    /* Regular files ignore O_NONBLOCK; clear it all the same, reads must block. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int file_read(const char *path, unsigned flags, size_t limit, uint8_t **out, size_t *len,
              struct itl_error *err)
{
    int fd = file_open_regular(path, flags, NULL, err);

    if (fd < 0)
        return -1;
    int rc = file_read_fd(fd, path, limit, out, len, err);
    close(fd);
    return rc;
}

static int too_large(const char *name, size_t limit, struct itl_error *err)
{
    return err_set(err, ITL_E_INPUT, "%s is larger than the limit of %zu bytes", name, limit);
}

int file_read_fd(int fd, const char *name, size_t limit, uint8_t **out, size_t *len,
                 struct itl_error *err)
{
    /* Room for one byte past the limit tells "exactly the limit" from "more". */
    size_t most = limit < BUF_MAX ? limit + 1 : BUF_MAX, used = 0, cap = 0;
    uint8_t *data = NULL;

    for (;;) {
        if (used == cap) {
            if (cap >= most) {
                free(data);
                return too_large(name, limit, err);
            }
            size_t ncap = cap ? cap * 2 : READ_CHUNK;
            if (ncap > most)
                ncap = most;
            uint8_t *bigger = realloc(data, ncap + 1);
            if (!bigger) {
                free(data);
                return err_set(err, ITL_E_INTERNAL, "out of memory reading %s", name);
            }
            data = bigger;
            cap = ncap;
        }
        ssize_t n = read(fd, data + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            free(data);
            return err_errno(err, saved, "cannot read %s", name);
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > limit) {
            free(data);
            return too_large(name, limit, err);
        }
    }
    data[used] = '\0'; /* for text parsed in place; not counted */
    *out = data;
    *len = used;
    return 0;
}

int file_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;

    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the atomic writer ---- */

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
int file_open_unnamed(int dirfd, mode_t mode)
{
#ifdef O_TMPFILE
    return openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
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
int file_open_named_temp(int dirfd, const char *name, mode_t mode, char *tmp, size_t tmp_size)
{
    for (int tries = 0; tries < 100; tries++) {
        if (temp_name(name, tmp, tmp_size) != 0)
            return -1;
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* The complete, synced file `fd` gets the name `name`: linked straight to it when it is free;
 * else linked to a hidden temporary renamed over it (a link cannot replace a file). */
int file_publish_unnamed(int fd, int dirfd, const char *name, char *tmp, size_t tmp_size)
{
    if (link_unnamed(fd, dirfd, name) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    for (int tries = 0;; tries++) {
        if (tries == 100) {
            errno = EEXIST;
            return -1;
        }
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

static int replace_failed(const struct file_target *t, int errnum, const char *what,
                          struct itl_error *err)
{
    if (t->dir)
        return err_errno(err, errnum, "%s %s/%s", what, t->dir, t->name);
    return err_errno(err, errnum, "%s %s", what, t->name);
}

/* Content, owner and sync by descriptor, before the file has a name: nothing another user
 * renames is followed, and the file never appears half-written or with the wrong owner.
 * fsync rather than fdatasync: the owner must be as durable as the bytes. */
static int fill(int fd, const struct file_target *t, const void *data, size_t n)
{
    if ((t->uid != (uid_t)-1 || t->gid != (gid_t)-1) && fchown(fd, t->uid, t->gid) != 0)
        return -1;
    if (file_write_all(fd, data, n) != 0 || fsync(fd) != 0)
        return -1;
    return 0;
}

int file_replace_in(const struct file_target *t, const void *data, size_t n, struct itl_error *err)
{
    char tmp[FILE_TMP_NAME_SIZE] = "";
    int unnamed = 1;

    if (!t->name[0] || strchr(t->name, '/') || strlen(t->name) > NAME_MAX_BYTES)
        return err_set(err, ITL_E_USAGE, "%s%s%s: not a file name of at most %d bytes",
                       t->dir ? t->dir : "", t->dir ? "/" : "", t->name, NAME_MAX_BYTES);
    int fd = file_open_unnamed(t->dirfd, t->mode);
    if (fd < 0) {
        unnamed = 0;
        fd = file_open_named_temp(t->dirfd, t->name, t->mode, tmp, sizeof tmp);
    }
    if (fd < 0)
        return replace_failed(t, errno, "cannot create a file for", err);
    if (fill(fd, t, data, n) != 0 ||
        (unnamed ? file_publish_unnamed(fd, t->dirfd, t->name, tmp, sizeof tmp)
                 : renameat(t->dirfd, tmp, t->dirfd, t->name)) != 0) {
        int saved = errno;
        close(fd);
        if (!unnamed)
            unlinkat(t->dirfd, tmp, 0);
        return replace_failed(t, saved, "cannot write", err);
    }
    if (close(fd) != 0)
        return replace_failed(t, errno, "cannot write", err);
    if (!t->no_dir_sync && fsync(t->dirfd) != 0)
        return replace_failed(t, errno, "wrote but could not sync the directory of", err);
    return 0;
}

int file_replace_at(int dirfd, const char *name, const void *data, size_t n, mode_t mode, uid_t uid,
                    gid_t gid, struct itl_error *err)
{
    struct file_target t = {.dirfd = dirfd, .name = name, .mode = mode, .uid = uid, .gid = gid};
    return file_replace_in(&t, data, n, err);
}

/* "a/b/c" into "a/b" and "c"; -1 for a path that names a directory ("", "x/"). */
int file_split_path(const char *path, char *dir, size_t dir_size, char *name, size_t name_size)
{
    size_t n = strlen(path);

    if (n == 0 || path[n - 1] == '/' || n >= dir_size)
        return -1;
    memcpy(dir, path, n + 1);
    snprintf(name, name_size, "%s", basename(dir));
    memcpy(dir, path, n + 1);
    /* dirname() may return a static "." rather than change dir (a bare name). */
    const char *parent = dirname(dir);
    if (parent != dir)
        memmove(dir, parent, strlen(parent) + 1);
    return 0;
}

static int replace_path(const char *path, const void *data, size_t n, mode_t mode, int sync_dir,
                        struct itl_error *err)
{
    char dir[PATH_MAX], name[PATH_MAX];

    if (file_split_path(path, dir, sizeof dir, name, sizeof name) != 0)
        return err_set(err, ITL_E_USAGE, "output %s names a directory, not a file", path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return err_errno(err, errno, "cannot write %s: directory %s", path, dir);
    struct file_target t = {.dirfd = dfd,
                            .dir = dir,
                            .name = name,
                            .mode = mode,
                            .uid = (uid_t)-1,
                            .gid = (gid_t)-1,
                            .no_dir_sync = !sync_dir};
    int rc = file_replace_in(&t, data, n, err);
    close(dfd);
    return rc;
}

int file_replace(const char *path, const void *data, size_t n, mode_t mode, struct itl_error *err)
{
    return replace_path(path, data, n, mode, 1, err);
}

int file_replace_no_dir_sync(const char *path, const void *data, size_t n, mode_t mode,
                             struct itl_error *err)
{
    return replace_path(path, data, n, mode, 0, err);
}

int file_sync_dir_of(const char *path, struct itl_error *err)
{
    char dir[PATH_MAX];

    if (strlen(path) >= sizeof dir)
        return err_set(err, ITL_E_USAGE, "path too long: %s", path);
    memcpy(dir, path, strlen(path) + 1);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        err_errno(err, saved, "cannot open the directory of %s", path);
        errno = saved;
        return -1;
    }
    int rc = fsync(fd), saved = errno;
    close(fd);
    if (rc != 0) {
        err_errno(err, saved, "cannot sync the directory of %s", path);
        errno = saved;
        return -1;
    }
    return 0;
}
