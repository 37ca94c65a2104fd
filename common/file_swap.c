/* SPDX-License-Identifier: MIT */
/*
 * Replace files in several directories all or none (common.h, "file_swap"), with a journal
 * in every directory so that a crash or kill at any point is repaired by the next run.
 *
 * Commit, in this order (a kill anywhere leaves what recovery needs):
 *   1. every directory: the journal ".itl-swap.journal" (batch id, every directory of the
 *      batch, the coordinator first, and per file whether an old one exists), fsync'd;
 *   2. every file: its bytes in ".NAME.swap-ID" (O_EXCL, O_NOFOLLOW), fsync'd; the old file
 *      kept as ".NAME.swap-ID.old", a hard link (linkat does not follow a symlink);
 *   3. every file: renameat into place (replacing a name never follows it); every directory
 *      fsync'd;
 *   4. the commit point: ".itl-swap-ID.ok" created in the coordinator, fsync'd;
 *   5. cleanup of every directory, the coordinator last, the marker removed last of all.
 * A failure in 1-4 rolls every directory back (the backups renamed over the names, names that
 * had no old file removed). Recovery reads a journal: with the marker the batch is rolled
 * forward (cleanup only), without it back; every directory of the batch at once.
 */
#include "common/common.h"
#include "common/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL ".itl-swap.journal"
#define SWAP_MAX_DIRS 32
#define SWAP_MAX_FILES 4096

struct swap_file {
    size_t dir;
    char name[FILE_NAME_MAX_BYTES + 1];
    const void *data;
    size_t n;
    mode_t mode;
    int had_old, staged, backed_up, renamed;
    struct stat old;
};

struct file_swap {
    char id[33];
    size_t n_dirs;
    char *dir[SWAP_MAX_DIRS]; /* absolute paths */
    int fd[SWAP_MAX_DIRS];
    int journal[SWAP_MAX_DIRS]; /* written */
    struct swap_file *f;
    size_t n;
};

struct file_swap *file_swap_new(void)
{
    struct file_swap *s = calloc(1, sizeof *s);
    uint8_t r[16];

    if (!s)
        return NULL;
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        free(s);
        return NULL;
    }
    hex_lower(r, sizeof r, 0, s->id, sizeof s->id);
    return s;
}

int file_swap_add_dir(struct file_swap *s, const char *dir, struct itl_error *err)
{
    char abs[PATH_MAX];
    int fd;

    if (s->n_dirs == SWAP_MAX_DIRS)
        return err_set(err, ITL_E_USAGE, "at most %d target directories", SWAP_MAX_DIRS);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return err_errno(err, errno, "target directory %s", dir);
    if (!realpath(dir, abs) || strchr(abs, '\n')) {
        int e = errno;
        close(fd);
        return err_errno(err, e, "target directory %s: no usable absolute path", dir);
    }
    for (size_t i = 0; i < s->n_dirs; i++)
        if (strcmp(s->dir[i], abs) == 0) {
            close(fd);
            return err_set(err, ITL_E_USAGE, "target directory %s is given twice", dir);
        }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return err_errno(err, e, "target directory %s%s", dir,
                         e == EWOULDBLOCK ? ": another publish is running there" : "");
    }
    s->dir[s->n_dirs] = strdup(abs);
    if (!s->dir[s->n_dirs]) {
        close(fd);
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    }
    s->fd[s->n_dirs++] = fd;
    return (int)(s->n_dirs - 1);
}

static int name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > FILE_NAME_MAX_BYTES || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] <= ' ' || name[i] == '/' || name[i] == 0x7f)
            return 0;
    return 1;
}

int file_swap_add(struct file_swap *s, size_t dir, const char *name, const void *data, size_t n,
                  mode_t mode, struct itl_error *err)
{
    struct swap_file *f;

    if (dir >= s->n_dirs || !name_ok(name))
        return err_set(err, ITL_E_USAGE, "%s: not a file name to publish", name);
    if (s->n == SWAP_MAX_FILES)
        return err_set(err, ITL_E_USAGE, "at most %d files in one batch", SWAP_MAX_FILES);
    f = realloc(s->f, (s->n + 1) * sizeof *f);
    if (!f)
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    s->f = f;
    f = &s->f[s->n++];
    memset(f, 0, sizeof *f);
    f->dir = dir;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->data = data;
    f->n = n;
    f->mode = mode;
    return 0;
}

static void tmp_name(const struct file_swap *s, const char *name, const char *suffix, char *out,
                     size_t size)
{
    snprintf(out, size, ".%s.swap-%s%s", name, s->id, suffix);
}

/* The state of the old file: none, or a regular file (its mode and owner are kept). */
static int look_at_old(struct file_swap *s, struct swap_file *f, struct itl_error *err)
{
    if (fstatat(s->fd[f->dir], f->name, &f->old, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            return err_errno(err, errno, "%s/%s", s->dir[f->dir], f->name);
        return 0;
    }
    if (!S_ISREG(f->old.st_mode))
        return err_set(err, ITL_E_IO,
                       "%s/%s is not a regular file (a symbolic link or other entry is never "
                       "replaced or followed): remove it",
                       s->dir[f->dir], f->name);
    f->had_old = 1;
    return 0;
}

static int write_journal(struct file_swap *s, size_t d, struct itl_error *err)
{
    struct buf b = {0};
    int fd, rc = -1;

    buf_printf(&b, "itl-swap 1 %s\n", s->id);
    for (size_t i = 0; i < s->n_dirs; i++)
        buf_printf(&b, "dir %s\n", s->dir[i]);
    for (size_t i = 0; i < s->n; i++)
        if (s->f[i].dir == d)
            buf_printf(&b, "file %c %s\n", s->f[i].had_old ? 'o' : 'n', s->f[i].name);
    if (b.failed)
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    fd = openat(s->fd[d], JOURNAL, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_errno(err, errno, "%s/%s%s", s->dir[d], JOURNAL,
                  errno == EEXIST ? " (an interrupted publish: recover it first)" : "");
        goto out;
    }
    s->journal[d] = 1;
    if (file_write_all(fd, b.data, b.len) != 0 || fsync(fd) != 0 || fsync(s->fd[d]) != 0)
        err_errno(err, errno, "cannot write %s/%s", s->dir[d], JOURNAL);
    else
        rc = 0;
    close(fd);
out:
    buf_free(&b);
    return rc;
}

static int stage_file(struct file_swap *s, struct swap_file *f, struct itl_error *err)
{
    char tmp[FILE_TMP_NAME_SIZE + 40], old[FILE_TMP_NAME_SIZE + 40];
    int dfd = s->fd[f->dir];
    mode_t mode = f->had_old ? (f->old.st_mode & 07777) : f->mode;
    int fd;

    tmp_name(s, f->name, "", tmp, sizeof tmp);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(err, errno, "cannot create %s/%s", s->dir[f->dir], tmp);
    f->staged = 1;
    if (file_write_all(fd, f->data, f->n) != 0 ||
        (f->had_old && geteuid() == 0 && fchown(fd, f->old.st_uid, f->old.st_gid) != 0) ||
        fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return err_errno(err, e, "cannot write %s/%s", s->dir[f->dir], tmp);
    }
    close(fd);
    if (!f->had_old)
        return 0;
    tmp_name(s, f->name, ".old", old, sizeof old);
    if (linkat(dfd, f->name, dfd, old, 0) != 0)
        return err_errno(err, errno, "cannot keep %s/%s as %s", s->dir[f->dir], f->name, old);
    f->backed_up = 1;
    return 0;
}

/* Back to every old file, in every directory; what cannot be undone is said in err. */
static void roll_back(struct file_swap *s, struct itl_error *err)
{
    char tmp[FILE_TMP_NAME_SIZE + 40];

    for (size_t i = s->n; i-- > 0;) {
        struct swap_file *f = &s->f[i];
        int dfd = s->fd[f->dir];
        if (f->renamed && f->backed_up) {
            tmp_name(s, f->name, ".old", tmp, sizeof tmp);
            /* the backup stays listed: clean_up removes it when the rename found both names
             * on one inode (a file not renamed yet), where rename(2) does nothing */
            if (renameat(dfd, tmp, dfd, f->name) != 0)
                err_errno(err, errno, "ROLLBACK FAILED: %s/%s is new; the old one is %s",
                          s->dir[f->dir], f->name, tmp);
        } else if (f->renamed && unlinkat(dfd, f->name, 0) != 0) {
            err_errno(err, errno, "ROLLBACK FAILED: cannot remove the new %s/%s", s->dir[f->dir],
                      f->name);
        }
        f->renamed = 0;
    }
}

/* Remove temporaries, backups and journals (coordinator last), then the marker. */
static void clean_up(struct file_swap *s, int remove_marker)
{
    char tmp[FILE_TMP_NAME_SIZE + 40];

    for (size_t d = s->n_dirs; d-- > 0;) {
        for (size_t i = 0; i < s->n; i++) {
            struct swap_file *f = &s->f[i];
            if (f->dir != d)
                continue;
            tmp_name(s, f->name, "", tmp, sizeof tmp);
            if (f->staged && !f->renamed)
                unlinkat(s->fd[d], tmp, 0);
            tmp_name(s, f->name, ".old", tmp, sizeof tmp);
            if (f->backed_up)
                unlinkat(s->fd[d], tmp, 0);
            f->staged = f->backed_up = 0;
        }
        if (s->journal[d]) {
            fsync(s->fd[d]);
            unlinkat(s->fd[d], JOURNAL, 0);
            fsync(s->fd[d]);
            s->journal[d] = 0;
        }
    }
    if (remove_marker) {
        snprintf(tmp, sizeof tmp, ".itl-swap-%s.ok", s->id);
        unlinkat(s->fd[0], tmp, 0);
        fsync(s->fd[0]);
    }
}

static int mark_committed(struct file_swap *s, struct itl_error *err)
{
    char marker[64];
    int fd;

    snprintf(marker, sizeof marker, ".itl-swap-%s.ok", s->id);
    fd = openat(s->fd[0], marker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fsync(fd) != 0 || fsync(s->fd[0]) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlinkat(s->fd[0], marker, 0);
        }
        return err_errno(err, e, "cannot record the commit in %s", s->dir[0]);
    }
    close(fd);
    return 0;
}

int file_swap_commit(struct file_swap *s, struct itl_error *err)
{
    char tmp[FILE_TMP_NAME_SIZE + 40];
    size_t i, d;

    if (s->n_dirs == 0)
        return err_set(err, ITL_E_USAGE, "no target directory");
    for (i = 0; i < s->n; i++)
        if (look_at_old(s, &s->f[i], err) != 0)
            return -1;
    for (d = 0; d < s->n_dirs; d++)
        if (write_journal(s, d, err) != 0)
            goto fail;
    for (i = 0; i < s->n; i++)
        if (stage_file(s, &s->f[i], err) != 0)
            goto fail;
    for (i = 0; i < s->n; i++) {
        struct swap_file *f = &s->f[i];
        tmp_name(s, f->name, "", tmp, sizeof tmp);
        if (renameat(s->fd[f->dir], tmp, s->fd[f->dir], f->name) != 0) {
            err_errno(err, errno, "cannot rename %s/%s into place", s->dir[f->dir], f->name);
            goto fail;
        }
        f->renamed = 1;
    }
    for (d = 0; d < s->n_dirs; d++)
        if (fsync(s->fd[d]) != 0) {
            err_errno(err, errno, "cannot sync directory %s", s->dir[d]);
            goto fail;
        }
    if (mark_committed(s, err) != 0)
        goto fail;
    clean_up(s, 1);
    return 0;
fail:
    roll_back(s, err);
    clean_up(s, 0);
    return -1;
}

void file_swap_free(struct file_swap *s)
{
    if (!s)
        return;
    clean_up(s, 0);
    for (size_t d = 0; d < s->n_dirs; d++) {
        close(s->fd[d]);
        free(s->dir[d]);
    }
    free(s->f);
    free(s);
}

size_t file_swap_dirs(const struct file_swap *s)
{
    return s->n_dirs;
}

/* ---- recovery of an interrupted batch ---- */

static int read_journal(int dfd, const char *dir, uint8_t **text, struct itl_error *err)
{
    struct stat st = {0};
    size_t len;
    int fd = openat(dfd, JOURNAL, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return err_errno(err, errno, "%s/%s", dir, JOURNAL);
    }
    /* a journal someone else could have written would have root rename and unlink what it
     * names: only our own is followed */
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
        close(fd);
        return err_set(err, ITL_E_DENIED,
                       "%s/%s is not a journal this user wrote (owner uid %u, mode %03o): "
                       "check it and remove it by hand",
                       dir, JOURNAL, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
    }
    if (file_read_fd(fd, JOURNAL, 1u << 20, text, &len, err) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return 1;
}

/* The files of one directory's journal, as they are on disk now. */
static int journal_files(struct file_swap *s, size_t d, char *text, struct itl_error *err)
{
    char tmp[FILE_TMP_NAME_SIZE + 40];
    struct stat st;

    char *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char flag;
        char name[FILE_NAME_MAX_BYTES + 1];
        struct swap_file *f;
        if (sscanf(line, "file %c %200s", &flag, name) != 2)
            continue;
        if (file_swap_add(s, d, name, NULL, 0, 0, err) != 0)
            return -1;
        f = &s->f[s->n - 1];
        f->had_old = flag == 'o';
        tmp_name(s, name, "", tmp, sizeof tmp);
        f->staged = fstatat(s->fd[d], tmp, &st, AT_SYMLINK_NOFOLLOW) == 0;
        tmp_name(s, name, ".old", tmp, sizeof tmp);
        f->backed_up = fstatat(s->fd[d], tmp, &st, AT_SYMLINK_NOFOLLOW) == 0;
        /* had an old file: renamed or not, its backup goes back over the name; had none:
         * renamed when the staged file is gone and the name is there */
        f->renamed = f->had_old
                         ? f->backed_up
                         : !f->staged && fstatat(s->fd[d], name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    }
    s->journal[d] = 1;
    return 0;
}

/* The batch the journal of `dir` names: its id and every directory, each of which must be one
 * of the `allowed` (the targets the user gave), so a journal never sends us elsewhere. */
static int load_batch(struct file_swap *s, char *first, const char *const *allowed,
                      size_t n_allowed, struct itl_error *err)
{
    char *save = NULL;

    for (char *line = strtok_r(first, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "itl-swap 1 ", 11) == 0) {
            snprintf(s->id, sizeof s->id, "%.32s", line + 11);
        } else if (strncmp(line, "dir ", 4) == 0) {
            char want[PATH_MAX], have[PATH_MAX];
            size_t i;
            for (i = 0; i < n_allowed; i++)
                if (realpath(allowed[i], have) && realpath(line + 4, want) &&
                    strcmp(want, have) == 0)
                    break;
            if (i == n_allowed)
                return err_set(err, ITL_E_USAGE,
                               "the interrupted publish also wrote %s: give every one of its "
                               "target directories to recover it",
                               line + 4);
            if (file_swap_add_dir(s, line + 4, err) < 0)
                return err_prefix(err, "recovering the interrupted publish: ");
        }
    }
    if (strlen(s->id) != 32 || s->n_dirs == 0)
        return err_set(err, ITL_E_INPUT, "%s: not a journal of this program", JOURNAL);
    return 0;
}

/* A coordinator without a journal: every directory of its batch is clean (it is cleaned
 * last), so a marker left by a kill before its removal is of no use any more. */
static void remove_markers(int dfd)
{
    int fd = dup(dfd);
    DIR *d;
    struct dirent *de;

    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, ".itl-swap-", 10) == 0 && n == 10 + 32 + 3 &&
            strcmp(de->d_name + n - 3, ".ok") == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

int file_swap_recover(const char *dir, const char *const *allowed, size_t n_allowed, int *outcome,
                      struct itl_error *err)
{
    struct file_swap *s;
    uint8_t *text = NULL;
    struct stat st;
    char marker[64];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;

    *outcome = FILE_SWAP_CLEAN;
    if (dfd < 0)
        return err_errno(err, errno, "target directory %s", dir);
    rc = read_journal(dfd, dir, &text, err);
    if (rc == 0)
        remove_markers(dfd);
    close(dfd);
    if (rc <= 0)
        return rc;
    s = calloc(1, sizeof *s);
    if (!s) {
        free(text);
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    }
    rc = load_batch(s, (char *)text, allowed, n_allowed, err);
    free(text);
    for (size_t d = 0; rc == 0 && d < s->n_dirs; d++) {
        uint8_t *t = NULL;
        int r = read_journal(s->fd[d], s->dir[d], &t, err);
        if (r < 0 || (r > 0 && strstr((char *)t, s->id) && journal_files(s, d, (char *)t, err)))
            rc = -1;
        free(t);
    }
    if (rc == 0) {
        snprintf(marker, sizeof marker, ".itl-swap-%s.ok", s->id);
        if (fstatat(s->fd[0], marker, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == geteuid()) {
            *outcome = FILE_SWAP_ROLLED_FORWARD;
            for (size_t i = 0; i < s->n; i++)
                s->f[i].renamed = 1; /* committed: every new file is in place */
        } else {
            struct itl_error e = {0};
            *outcome = FILE_SWAP_ROLLED_BACK;
            roll_back(s, &e);
            if (e.cls != ITL_E_NONE) {
                if (err)
                    *err = e;
                rc = -1;
            }
        }
        clean_up(s, *outcome == FILE_SWAP_ROLLED_FORWARD);
    }
    file_swap_free(s);
    return rc;
}
