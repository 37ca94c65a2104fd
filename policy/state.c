/* SPDX-License-Identifier: MIT */
/*
 * Persistent policy state: <state-dir>/state.json, guarded by flock on <state-dir>/state.lock.
 * Writers hold LOCK_EX across read-modify-write (pol_state_update) and replace the file
 * atomically (file_replace_in); readers hold LOCK_SH. The directory and both files must be
 * ones only root or the service user could have written (pol_check_trusted), in the service and
 * in direct mode alike. The text of the file is state_json.c; a damaged file, or one missing
 * after the first write, is an error, never an empty state, so callers fail closed.
 */
#include "policy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FILE "state.json"
#define LOCK_FILE "state.lock"
#define STATE_MAX_BYTES (1024 * 1024)

/* ---- whose state it is ---- */

/* Set once by pol_state_set_owner before threads start; read-only afterwards. */
static int owner_set;
static uid_t owner_uid;
static gid_t owner_gid;

static void state_owner(uid_t *uid, gid_t *gid)
{
    *uid = owner_set ? owner_uid : geteuid();
    *gid = owner_set ? owner_gid : getegid();
}

void pol_owner_ids(uid_t *uid, gid_t *gid)
{
    state_owner(uid, gid);
}

/* Root in direct mode writes the service's state: what it creates goes to the service user
 * (by descriptor), who must read and rewrite it. -1 ids mean "leave as created". */
static void new_file_owner(uid_t *uid, gid_t *gid)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (owner_set && geteuid() == 0 && owner_uid != 0) {
        *uid = owner_uid;
        *gid = owner_gid;
    }
}

static int give_to_owner(int fd)
{
    uid_t uid;
    gid_t gid;
    struct stat sb;

    new_file_owner(&uid, &gid);
    if (uid == (uid_t)-1 || fstat(fd, &sb) != 0 || sb.st_uid != 0)
        return 0;
    return fchown(fd, uid, gid);
}

/* A decimal id ("995"), as run-as accepts one; -1 otherwise. */
static int numeric_id(const char *text, unsigned long *id)
{
    char *end;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    *id = strtoul(text, &end, 10);
    return errno || *end || *id >= (unsigned long)(uid_t)-1 ? -1 : 0;
}

int pol_state_set_owner(const struct pol_config *cfg, struct itl_error *err)
{
    const char *where = cfg->path[0] ? cfg->path : "config";
    struct passwd *pw;
    struct group *gr;
    unsigned long id;
    uid_t uid = geteuid();
    gid_t gid = getegid();

    if (cfg->run_as.user[0]) {
        pw = getpwnam(cfg->run_as.user);
        if (!pw && numeric_id(cfg->run_as.user, &id) == 0)
            pw = getpwuid((uid_t)id);
        if (!pw)
            return err_set(err, ITL_E_IO, "%s: run-as.user: no such user '%s'", where,
                           cfg->run_as.user);
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        if (cfg->run_as.group[0]) {
            gr = getgrnam(cfg->run_as.group);
            if (gr)
                gid = gr->gr_gid;
            else if (numeric_id(cfg->run_as.group, &id) == 0)
                gid = (gid_t)id;
            else
                return err_set(err, ITL_E_IO, "%s: run-as.group: no such group '%s'", where,
                               cfg->run_as.group);
        }
    }
    owner_uid = uid;
    owner_gid = gid;
    owner_set = 1;
    return 0;
}

/* ---- the state directory, its lock and its file ---- */

/*
 * state.lock is empty until the first state write completes, then holds this line: from then
 * on a missing state.json means the state was lost (deleted, or a restore that forgot it),
 * never that there is none, so the regeneration hold and the attestations cannot be cleared by
 * removing one file. Whether role keys exist is the token's business, which a reader of the
 * state (the service at a signing request) does not ask; the first write is what a key command
 * with --config does when it makes a role key, so the mark records exactly that.
 */
#define WRITTEN_MARK "state.json has been written: a missing state.json is an error\n"

struct state_files {
    const char *dir;
    int dfd;  /* the state directory, checked; -1: it does not exist (nothing was written) */
    int lock; /* state.lock, locked; -1 when a reader finds none (nothing was written) */
};

static int state_path(const char *dir, const char *file, char *out, size_t size,
                      struct itl_error *err)
{
    int n = snprintf(out, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size)
        return err_set(err, ITL_E_IO, "%s: state directory path too long", dir);
    return 0;
}

/* A file of the state directory, opened as `fd`: a regular file only its owners could write. */
static int check_file(const struct state_files *sf, const char *what, const char *name, int fd,
                      struct itl_error *err)
{
    char path[4096];
    struct stat sb;
    uid_t uid;
    gid_t gid;

    if (state_path(sf->dir, name, path, sizeof path, err) != 0)
        return -1;
    if (fstat(fd, &sb) != 0)
        return err_set(err, ITL_E_IO, "%s %s: %s", what, path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return err_set(err, ITL_E_IO, "%s %s is not a regular file (move it away)", what, path);
    state_owner(&uid, &gid);
    return pol_check_trusted(what, path, &sb, uid, gid, err);
}

/* Opens and checks the state directory; a writer makes it when missing (one level: a typo in
 * state-dir should not grow a tree). */
static int open_state_dir(struct state_files *sf, int create, struct itl_error *err)
{
    struct stat sb;
    uid_t uid;
    gid_t gid;
    int made = 0;

    sf->dfd = open(sf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sf->dfd < 0 && errno == ENOENT && create && mkdir(sf->dir, 0750) == 0) {
        made = 1;
        sf->dfd = open(sf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (sf->dfd < 0) {
        if (errno == ENOENT && !create)
            return 0;
        return err_set(err, ITL_E_IO, "state directory %s: %s", sf->dir, strerror(errno));
    }
    if ((made && give_to_owner(sf->dfd) != 0) || fstat(sf->dfd, &sb) != 0)
        return err_set(err, ITL_E_IO, "state directory %s: %s", sf->dir, strerror(errno));
    state_owner(&uid, &gid);
    return pol_check_trusted("state directory", sf->dir, &sb, uid, gid, err);
}

/* Opens, checks and locks state.lock. */
static int lock_state(struct state_files *sf, int exclusive, struct itl_error *err)
{
    char path[4096];
    const char *how = exclusive ? "exclusive" : "shared";

    if (sf->dfd < 0)
        return 0;
    if (state_path(sf->dir, LOCK_FILE, path, sizeof path, err) != 0)
        return -1;
    sf->lock = openat(sf->dfd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (sf->lock < 0 && !exclusive && (errno == EACCES || errno == EROFS || errno == ENOENT))
        sf->lock = openat(sf->dfd, LOCK_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (sf->lock < 0) {
        if (!exclusive && errno == ENOENT)
            return 0; /* a reader that may not create it: nothing was ever written here */
        return err_set(err, ITL_E_IO, "%s: cannot open the state lock: %s", path, strerror(errno));
    }
    /* A reader may have created it too (root's `key delete` reads the state): root's lock would
     * keep the service from ever taking it exclusively. */
    if (give_to_owner(sf->lock) != 0)
        return err_set(err, ITL_E_IO, "%s: cannot give it to the service user: %s", path,
                       strerror(errno));
    if (check_file(sf, "state lock", LOCK_FILE, sf->lock, err) != 0)
        return -1;
    while (flock(sf->lock, exclusive ? LOCK_EX : LOCK_SH) != 0)
        if (errno != EINTR)
            return err_set(err, ITL_E_IO, "%s: cannot take the %s lock: %s", path, how,
                           strerror(errno));
    return 0;
}

static void close_state(struct state_files *sf)
{
    if (sf->lock >= 0)
        close(sf->lock); /* closing drops the flock */
    if (sf->dfd >= 0)
        close(sf->dfd);
    sf->lock = sf->dfd = -1;
}

static int state_was_written(const struct state_files *sf)
{
    struct stat sb;
    return sf->lock >= 0 && fstat(sf->lock, &sb) == 0 && sb.st_size > 0;
}

/* Under the exclusive lock, once the state file is durable. */
static int mark_written(const struct state_files *sf, struct itl_error *err)
{
    const size_t len = sizeof WRITTEN_MARK - 1;

    if (state_was_written(sf))
        return 0;
    if (pwrite(sf->lock, WRITTEN_MARK, len, 0) != (ssize_t)len || fsync(sf->lock) != 0)
        return err_set(err, ITL_E_IO, "%s/%s: cannot record the first state write: %s", sf->dir,
                       LOCK_FILE, strerror(errno));
    return 0;
}

static int read_state(const struct state_files *sf, struct pol_state *st, struct itl_error *err)
{
    char path[4096], lock[4096], *text;
    struct stat sb;
    size_t got = 0;
    ssize_t n;
    int fd, rc;

    memset(st, 0, sizeof *st);
    if (sf->dfd < 0)
        return 0;
    if (state_path(sf->dir, STATE_FILE, path, sizeof path, err) != 0 ||
        state_path(sf->dir, LOCK_FILE, lock, sizeof lock, err) != 0)
        return -1;
    /* O_NONBLOCK: a FIFO planted there must not hang the service (it is refused below). */
    fd = openat(sf->dfd, STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && !state_was_written(sf))
        return 0;
    if (fd < 0 && errno == ENOENT)
        return err_set(err, ITL_E_IO,
                       "%s is missing, but the state was written before (%s records it): "
                       "refusing to continue with an empty state, which would clear the "
                       "regeneration hold and the backup attestations (restore %s from a "
                       "backup; to start over on purpose, remove %s as well)",
                       path, lock, path, lock);
    if (fd < 0)
        return err_set(err, ITL_E_IO, "%s: cannot read the policy state: %s", path,
                       strerror(errno));
    if (check_file(sf, "state file", STATE_FILE, fd, err) != 0) {
        close(fd);
        return -1;
    }
    if (fstat(fd, &sb) != 0 || sb.st_size > STATE_MAX_BYTES) {
        close(fd);
        return err_set(err, ITL_E_IO, "%s: not a regular file of at most %d bytes", path,
                       STATE_MAX_BYTES);
    }
    text = malloc((size_t)sb.st_size + 1);
    if (!text) {
        close(fd);
        return err_set(err, ITL_E_IO, "%s: out of memory", path);
    }
    while (got < (size_t)sb.st_size &&
           ((n = read(fd, text + got, (size_t)sb.st_size - got)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            got += (size_t)n;
    close(fd);
    if (got != (size_t)sb.st_size) {
        free(text);
        return err_set(err, ITL_E_IO, "%s: read failed", path);
    }
    struct itl_error why;
    rc = pol_state_parse(text, got, st, &why);
    free(text);
    if (rc != 0)
        return err_set(err, ITL_E_IO,
                       "%s: corrupt policy state: %s (refusing to continue; restore the file "
                       "or move it away after checking it)",
                       path, why.msg);
    return 0;
}

/* Never write what the reader would refuse: that would stop signing at the next load. */
static int reads_back(const char *text, size_t len, struct itl_error *err, const char *path)
{
    struct pol_state *check = malloc(sizeof *check);
    struct itl_error why;
    int ok;

    if (!check) {
        err_set(err, ITL_E_IO, "%s: out of memory", path);
        return 0;
    }
    ok = pol_state_parse(text, len, check, &why) == 0;
    free(check);
    if (!ok)
        err_set(err, ITL_E_IO, "%s: refusing to write a state that would not read back: %s", path,
                why.msg);
    return ok;
}

static int write_state(const struct state_files *sf, const struct pol_state *st,
                       struct itl_error *err)
{
    char path[4096], *text = NULL;
    size_t len;
    uid_t uid;
    gid_t gid;
    int rc;

    if (state_path(sf->dir, STATE_FILE, path, sizeof path, err) != 0)
        return -1;
    if (pol_state_format(st, &text, &len) != 0)
        return err_set(err, ITL_E_IO, "%s: out of memory", path);
    if (!reads_back(text, len, err, path)) {
        free(text);
        return -1;
    }
    new_file_owner(&uid, &gid);
    struct file_target t = {
        .dirfd = sf->dfd, .dir = sf->dir, .name = STATE_FILE, .mode = 0640, .uid = uid, .gid = gid};
    rc = file_replace_in(&t, text, len, err);
    free(text);
    return rc == 0 ? mark_written(sf, err) : -1;
}

int pol_state_load(const char *state_dir, struct pol_state *st, struct itl_error *err)
{
    struct state_files sf = {.dir = state_dir, .dfd = -1, .lock = -1};
    int rc = -1;

    memset(st, 0, sizeof *st);
    if (open_state_dir(&sf, 0, err) == 0 && lock_state(&sf, 0, err) == 0)
        rc = read_state(&sf, st, err);
    close_state(&sf);
    return rc;
}

int pol_state_update(const char *state_dir, pol_state_change_fn change, const void *arg,
                     struct itl_error *err)
{
    struct state_files sf = {.dir = state_dir, .dfd = -1, .lock = -1};
    struct pol_state *st;
    int rc = -1;

    /* What another user wrote would be refused at the next read: do not write it. */
    if (owner_set && geteuid() != 0 && geteuid() != owner_uid)
        return err_set(err, ITL_E_IO,
                       "%s: the policy state is written only by root or the service user (uid "
                       "%u); run this as one of them",
                       state_dir, (unsigned)owner_uid);
    st = malloc(sizeof *st);
    if (!st)
        return err_set(err, ITL_E_IO, "%s: out of memory", state_dir);
    if (open_state_dir(&sf, 1, err) == 0 && lock_state(&sf, 1, err) == 0 &&
        read_state(&sf, st, err) == 0 && change(st, arg, err) == 0) {
        st->generation++;
        rc = write_state(&sf, st, err);
    }
    close_state(&sf);
    free(st);
    return rc;
}

int pol_state_text_ok(const char *s, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;

    if (!memchr(s, '\0', size) || !*s)
        return 0;
    for (; *p; p += n)
        if (*p < 0x20 || *p == 0x7f ||
            (n = utf8_sequence(p, 4)) == 0 /* NUL-terminated: it stops there */)
            return 0;
    return 1;
}

int pol_state_time_ok(time_t t)
{
    return t >= 0 && (long long)t <= INT64_MAX / 2;
}

static int apply_backup_warning(struct pol_state *st, const void *arg, struct itl_error *err)
{
    if (!pol_state_time_ok(*(const time_t *)arg))
        return err_set(err, ITL_E_IO, "backup warning: time out of range");
    st->last_backup_warning = *(const time_t *)arg;
    return 0;
}

int pol_state_record_backup_warning(const char *state_dir, time_t when, struct itl_error *err)
{
    return pol_state_update(state_dir, apply_backup_warning, &when, err);
}
