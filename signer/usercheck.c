/* SPDX-License-Identifier: MIT */
/*
 * What the service user will need, checked as that user: `itl-signd --check-config` run as
 * root forks a child that becomes run-as.user (with its groups) and tries each path the way the
 * service will (faccessat as that user, so modes, groups and ACLs all count); after the
 * privilege drop a failing C_Initialize runs the module part in-process, as it already is that
 * user. Each problem names the user, the path and what it lacks.
 *
 * The module's own config is known for SoftHSM2 (SOFTHSM2_CONF or /etc/softhsm/softhsm2.conf,
 * its directories.tokendir and the token directories in it, usually the softhsm group's).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "signer/server.h"

#define SOFTHSM2_DEFAULT_CONF "/etc/softhsm/softhsm2.conf"

struct usercheck {
    struct buf *out;
    const char *user;
    size_t problems;
};

static void problem(struct usercheck *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(struct usercheck *u, const char *fmt, ...)
{
    char line[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    buf_printf(u->out, "%s%s", u->problems ? "\n" : "", line);
    u->problems++;
}

static int in_group(gid_t gid)
{
    gid_t groups[256];
    int n = getgroups(256, groups);

    if (getegid() == gid)
        return 1;
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

static const char *needs_text(int mode)
{
    switch (mode) {
    case R_OK:
        return "readable";
    case R_OK | W_OK:
        return "readable and writable";
    case X_OK:
        return "searchable (x)";
    default:
        return "readable, writable and searchable (rwx)";
    }
}

/* "(root:softhsm 0750; the group softhsm has that access: add itl-sign to it, e.g.
 * SupplementaryGroups=softhsm in the unit or usermod -aG softhsm itl-sign)" */
static void describe(const struct usercheck *u, const char *path, int mode, char *out, size_t size)
{
    char owner[256], group[256];
    unsigned gbits = 0;
    struct stat st;

    if (stat(path, &st) != 0) {
        snprintf(out, size, "(%s)", strerror(errno));
        return;
    }
    if (mode & R_OK)
        gbits |= S_IRGRP;
    if (mode & W_OK)
        gbits |= S_IWGRP;
    if (mode & X_OK)
        gbits |= S_IXGRP;
    ids_user_name(st.st_uid, owner, sizeof owner);
    ids_group_name(st.st_gid, group, sizeof group);
    if ((st.st_mode & gbits) == gbits && !in_group(st.st_gid))
        snprintf(out, size,
                 "(%s:%s %04o; group %s has that access: add %s to it, e.g. "
                 "SupplementaryGroups=%s in the unit, or usermod -aG %s %s)",
                 owner, group, (unsigned)(st.st_mode & 07777), group, u->user, group, group,
                 u->user);
    else
        snprintf(out, size, "(%s:%s %04o)", owner, group, (unsigned)(st.st_mode & 07777));
}

/* 0 when the user has `mode` on path; else one problem, about the first directory above it
 * that the user cannot search when that is the cause. */
static int need(struct usercheck *u, const char *what, const char *path, int mode)
{
    char dir[1024], how[2048];

    if (faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0)
        return 0;
    if (errno == ENOENT) {
        problem(u, "%s %s does not exist", what, path);
        return -1;
    }
    /* A directory above it the user cannot enter: name that one, it is what to fix. */
    snprintf(dir, sizeof dir, "%s", path);
    for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        if (faccessat(AT_FDCWD, dir, X_OK, AT_EACCESS) != 0) {
            describe(u, dir, X_OK, how, sizeof how);
            problem(u, "%s %s cannot be reached by %s: %s is not searchable by %s %s", what, path,
                    u->user, dir, u->user, how);
            return -1;
        }
        *slash = '/';
    }
    describe(u, path, mode, how, sizeof how);
    problem(u, "%s %s is not %s by %s %s", what, path, needs_text(mode), u->user, how);
    return -1;
}

/* directories.tokendir from a SoftHSM2 config the user can read; "" when it names none. */
static void softhsm2_tokendir(const char *conf, char *out, size_t size)
{
    char line[1200];
    FILE *f = fopen(conf, "re");

    out[0] = 0;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "directories.tokendir", 20) != 0)
            continue;
        p += 20;
        while (*p == ' ' || *p == '\t' || *p == '=')
            p++;
        end = p + strlen(p);
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = 0;
        snprintf(out, size, "%s", p);
    }
    fclose(f);
}

/* The token directories inside tokendir, and their files: SoftHSM2 opens them read-write. */
static void softhsm2_tokens(struct usercheck *u, const char *tokendir)
{
    DIR *d = opendir(tokendir);
    struct dirent *de;
    char path[2048];

    if (!d)
        return; /* need() has reported it */
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", tokendir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (need(u, "SoftHSM2 token directory", path, R_OK | W_OK | X_OK) != 0)
            continue;
        DIR *td = opendir(path);
        struct dirent *fe;
        while (td && (fe = readdir(td))) {
            char file[2400];
            if (fe->d_name[0] == '.')
                continue;
            snprintf(file, sizeof file, "%s/%s", path, fe->d_name);
            if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
                need(u, "SoftHSM2 token file", file, R_OK | W_OK);
        }
        if (td)
            closedir(td);
    }
    closedir(d);
}

static void check_module_config(struct usercheck *u, const char *module)
{
    const char *base = strrchr(module, '/'), *conf = getenv("SOFTHSM2_CONF");
    char tokendir[1024];

    base = base ? base + 1 : module;
    if (!strstr(base, "softhsm"))
        return; /* a module whose own files we do not know */
    if (!conf || !*conf)
        conf = SOFTHSM2_DEFAULT_CONF;
    if (need(u, "the SoftHSM2 config (SOFTHSM2_CONF)", conf, R_OK) != 0)
        return;
    softhsm2_tokendir(conf, tokendir, sizeof tokendir);
    if (!tokendir[0]) {
        problem(u, "the SoftHSM2 config %s names no directories.tokendir", conf);
        return;
    }
    if (need(u, "SoftHSM2 tokendir", tokendir, R_OK | W_OK | X_OK) == 0)
        softhsm2_tokens(u, tokendir);
}

size_t srv_module_access_problems(const char *module, const char *user, struct buf *out)
{
    struct usercheck u = {.out = out, .user = user};

    check_module_config(&u, module);
    return u.problems;
}

/* Everything the user needs; run as the user. */
static void check_all(struct usercheck *u, const struct pol_config *cfg)
{
    char audit_dir[1024];
    struct stat st;

    if (stat(cfg->state_dir, &st) == 0)
        need(u, "state directory", cfg->state_dir, R_OK | W_OK | X_OK);
    srv_dirname(cfg->audit_log, audit_dir, sizeof audit_dir);
    /* The log is reopened by the user after rotation (SIGHUP): it creates the new file. */
    if (stat(audit_dir, &st) == 0)
        need(u, "audit log directory", audit_dir, R_OK | W_OK | X_OK);
    check_module_config(u, cfg->token.module);
}

/* Root reads the PIN before it drops to the user; under itl-signd.service (User=) the user
 * reads it, as a credential. Said on stdout when the user could not: not an error here. */
static void note_pin_file(const struct pol_config *cfg, const char *user, FILE *notes)
{
    if (cfg->token.pin_file[0] && faccessat(AT_FDCWD, cfg->token.pin_file, R_OK, AT_EACCESS) != 0)
        fprintf(notes,
                "note: token.pin-file %s is not readable by %s (%s): fine when itl-signd starts "
                "as root, which reads it before switching to %s; itl-signd.service starts as "
                "%s and gets the PIN as a credential (LoadCredential=)\n",
                cfg->token.pin_file, user, strerror(errno), user, user);
}

static size_t count_lines(struct buf *b)
{
    size_t n = 1;

    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

size_t srv_check_as_user(const struct pol_config *cfg, const struct srv_ids *ids, struct buf *out)
{
    struct usercheck u = {.out = out, .user = ids->run_user};
    int pfd[2];
    pid_t pid;
    char chunk[1024];
    ssize_t n;
    int status = 0;

    if (!ids->drop || geteuid() != 0 || ids->run_uid == 0) {
        check_all(&u, cfg); /* already the user the service runs as */
        return u.problems;
    }
    if (pipe2(pfd, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
        problem(&u, "cannot check as %s: %s", ids->run_user, strerror(errno));
        return u.problems;
    }
    if (pid == 0) {
        struct buf b = {0};
        struct usercheck cu = {.out = &b, .user = ids->run_user};
        const char *text;

        close(pfd[0]);
        if (initgroups(ids->run_user, ids->run_gid) != 0 ||
            setresgid(ids->run_gid, ids->run_gid, ids->run_gid) != 0 ||
            setresuid(ids->run_uid, ids->run_uid, ids->run_uid) != 0)
            problem(&cu, "cannot switch to %s to check its access: %s", ids->run_user,
                    strerror(errno));
        else {
            check_all(&cu, cfg);
            note_pin_file(cfg, ids->run_user, stdout);
            fflush(stdout);
        }
        text = buf_str(&b);
        if (text && write(pfd[1], text, strlen(text)) < 0)
            _exit(2);
        _exit(cu.problems ? 1 : 0);
    }
    close(pfd[1]);
    while ((n = read(pfd[0], chunk, sizeof chunk)) > 0)
        buf_put(out, chunk, (size_t)n);
    close(pfd[0]);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return out->len ? count_lines(out) : 1;
}
