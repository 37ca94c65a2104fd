/* SPDX-License-Identifier: MIT */
/*
 * The staged batch writer: N outputs made durable with a constant number of device flushes.
 *
 * file_replace pays two flushes per file (the file, then its directory). A batch of 1,000
 * signed configs paid 1,000 of them, each as long as a signature. Here every output is
 * written to an unnamed file in its directory first, unsynced; the commit then syncs each
 * file system once (syncfs: every dirty inode of it, the unnamed ones included, and the
 * journal), links or renames every file into place, and fsyncs each directory once. The
 * order is what makes it crash-safe: no file has a name before its bytes are durable, and a
 * rename replaces an old file atomically, so a crash or kill leaves each output old or new.
 */
#include "common/common.h"
#include "common/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct stage_dir {
    struct stage_dir *next;
    int fd;
    dev_t dev;
    int flush; /* this commit: 1 to fsync, 0 not, -1 it failed (errno in flush_errno) */
    int flush_errno;
    char path[];
};

struct stage_entry {
    struct stage_dir *dir;
    int fd;
    int unnamed; /* 0: a hidden temporary named tmp, renamed at commit */
    void *tag;
    char *path;
    char name[FILE_NAME_MAX_BYTES + 1];
    char tmp[FILE_TMP_NAME_SIZE];
    struct itl_error err; /* this commit */
    int failed;
};

struct file_stage {
    pthread_mutex_t lock;
    pthread_mutex_t commit_lock; /* one commit at a time; adds go on meanwhile */
    struct stage_dir *dirs;      /* kept open for the life of the stage */
    struct stage_entry *entries;
    size_t n, cap;
    unsigned long flushes;
};

struct file_stage *file_stage_new(void)
{
    struct file_stage *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->commit_lock, NULL);
    return s;
}

/* The directory's descriptor, opened once per stage. Under s->lock. */
static struct stage_dir *stage_dir(struct file_stage *s, const char *path, const char *file,
                                   struct itl_error *err)
{
    struct stat st;

    for (struct stage_dir *d = s->dirs; d; d = d->next)
        if (strcmp(d->path, path) == 0)
            return d;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        err_errno(err, errno, "cannot write %s: directory %s", file, path);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct stage_dir *d = calloc(1, sizeof *d + strlen(path) + 1);
    if (!d) {
        close(fd);
        err_set(err, ITL_E_INTERNAL, "out of memory staging %s", file);
        return NULL;
    }
    d->fd = fd;
    d->dev = st.st_dev;
    memcpy(d->path, path, strlen(path) + 1);
    d->next = s->dirs;
    s->dirs = d;
    return d;
}

static int stage_append(struct file_stage *s, const struct stage_entry *e)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        struct stage_entry *bigger = realloc(s->entries, ncap * sizeof *bigger);
        if (!bigger)
            return -1;
        s->entries = bigger;
        s->cap = ncap;
    }
    s->entries[s->n++] = *e;
    return 0;
}

static void discard(struct stage_entry *e)
{
    if (e->fd >= 0)
        close(e->fd);
    if (!e->unnamed && e->tmp[0])
        unlinkat(e->dir->fd, e->tmp, 0);
    free(e->path);
    e->fd = -1;
    e->path = NULL;
}

int file_stage_add(struct file_stage *s, const char *path, const void *data, size_t n, mode_t mode,
                   void *tag, struct itl_error *err)
{
    char dir[PATH_MAX];
    struct stage_entry e = {.fd = -1, .unnamed = 1, .tag = tag};

    if (file_split_path(path, dir, sizeof dir, e.name, sizeof e.name) != 0 ||
        strlen(e.name) > FILE_NAME_MAX_BYTES)
        return err_set(err, ITL_E_USAGE, "output %s: not a file name of at most %d bytes", path,
                       FILE_NAME_MAX_BYTES);
    pthread_mutex_lock(&s->lock);
    e.dir = stage_dir(s, dir, path, err);
    pthread_mutex_unlock(&s->lock);
    if (!e.dir)
        return -1;
    e.fd = file_open_unnamed(e.dir->fd, mode);
    if (e.fd < 0) {
        e.unnamed = 0;
        e.fd = file_open_named_temp(e.dir->fd, e.name, mode, e.tmp, sizeof e.tmp);
    }
    if (e.fd < 0)
        return err_errno(err, errno, "cannot create a file for %s", path);
    e.path = strdup(path);
    if (!e.path || file_write_all(e.fd, data, n) != 0) {
        int saved = e.path ? errno : ENOMEM;
        discard(&e);
        return err_errno(err, saved, "cannot write %s", path);
    }
    pthread_mutex_lock(&s->lock);
    int rc = stage_append(s, &e);
    pthread_mutex_unlock(&s->lock);
    if (rc != 0) {
        discard(&e);
        return err_set(err, ITL_E_INTERNAL, "out of memory staging %s", path);
    }
    return 0;
}

size_t file_stage_pending(struct file_stage *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

unsigned long file_stage_flushes(struct file_stage *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned long n = s->flushes;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* How many entries after v[i] (itself included) live on its file system and are still good. */
static size_t entries_on_fs(const struct stage_entry *v, size_t n, size_t i)
{
    size_t count = 0;
    for (size_t j = i; j < n; j++)
        count += v[j].dir->dev == v[i].dir->dev && !v[j].failed;
    return count;
}

/* Makes the bytes of every entry durable: one syncfs per file system. Where syncfs cannot
 * be used on it (ENOSYS, EINVAL), each of its files is fsync'd instead. A file system with a
 * single entry gets an fsync of that file: the same one flush, without writing back what other
 * processes left dirty on it (a one-file sign on a busy machine). */
static void sync_contents(struct stage_entry *v, size_t n, unsigned long *flushes)
{
    for (size_t i = 0; i < n; i++) {
        int done = 0;
        for (size_t j = 0; j < i && !done; j++)
            done = v[j].dir->dev == v[i].dir->dev && !v[j].failed;
        if (done || v[i].failed)
            continue;
        (*flushes)++;
        int single = entries_on_fs(v, n, i) == 1;
        int rc = single ? fsync(v[i].fd) : syncfs(v[i].fd), saved = errno;
        for (size_t j = i; j < n; j++) {
            if (v[j].dir->dev != v[i].dir->dev || v[j].failed)
                continue;
            if (rc != 0 && (saved == ENOSYS || saved == EINVAL)) {
                (*flushes)++;
                if (fsync(v[j].fd) == 0)
                    continue;
                saved = errno;
            } else if (rc == 0) {
                continue;
            }
            v[j].failed = 1;
            err_errno(&v[j].err, saved, "cannot write %s: cannot sync it", v[j].path);
        }
    }
}

static void publish(struct stage_entry *e)
{
    char scratch[FILE_TMP_NAME_SIZE];
    int rc = e->unnamed ? file_publish_unnamed(e->fd, e->dir->fd, e->name, scratch, sizeof scratch)
                        : renameat(e->dir->fd, e->tmp, e->dir->fd, e->name);

    if (rc != 0) {
        e->failed = 1;
        err_errno(&e->err, errno, "cannot write %s", e->path);
        return;
    }
    e->tmp[0] = '\0'; /* it has its name now: nothing to clean up */
    e->dir->flush = 1;
}

/* A directory an add opens meanwhile is put at the head: the list from here on is stable. */
static void sync_dirs(struct file_stage *s, unsigned long *flushes)
{
    pthread_mutex_lock(&s->lock);
    struct stage_dir *head = s->dirs;
    pthread_mutex_unlock(&s->lock);
    for (struct stage_dir *d = head; d; d = d->next) {
        if (d->flush != 1)
            continue;
        (*flushes)++;
        if (fsync(d->fd) != 0) {
            d->flush = -1;
            d->flush_errno = errno;
        }
    }
}

size_t file_stage_commit(struct file_stage *s, file_stage_done_fn done, void *ctx)
{
    unsigned long flushes = 0;
    size_t failed = 0;

    pthread_mutex_lock(&s->commit_lock);
    pthread_mutex_lock(&s->lock);
    struct stage_entry *v = s->entries;
    size_t n = s->n;
    s->entries = NULL;
    s->n = s->cap = 0;
    for (struct stage_dir *d = s->dirs; d; d = d->next)
        d->flush = 0;
    pthread_mutex_unlock(&s->lock);

    sync_contents(v, n, &flushes);
    for (size_t i = 0; i < n; i++)
        if (!v[i].failed)
            publish(&v[i]);
    sync_dirs(s, &flushes);
    for (size_t i = 0; i < n; i++) {
        struct stage_entry *e = &v[i];
        if (!e->failed && e->dir->flush == -1) {
            e->failed = 1;
            err_errno(&e->err, e->dir->flush_errno,
                      "wrote %s but could not sync its directory (it may not survive a crash)",
                      e->path);
        }
        failed += e->failed != 0;
        if (done)
            done(ctx, e->tag, e->path, e->failed ? &e->err : NULL);
        discard(e);
    }
    free(v);
    pthread_mutex_lock(&s->lock);
    s->flushes += flushes;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->commit_lock);
    return failed;
}

void file_stage_free(struct file_stage *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        discard(&s->entries[i]);
    free(s->entries);
    for (struct stage_dir *d = s->dirs; d;) {
        struct stage_dir *next = d->next;
        close(d->fd);
        free(d);
        d = next;
    }
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->commit_lock);
    free(s);
}
