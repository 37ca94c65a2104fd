/* SPDX-License-Identifier: MIT */
/*
 * Users and groups through NSS, thread-safe: the _r lookups, with buffers that grow when an
 * entry (a group with many members) does not fit.
 */
#include "common/common.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOOKUP_BUF_START 16384
#define LOOKUP_BUF_MAX ((size_t)1 << 24)

/* A decimal id: all digits, no sign, and not the (id_t)-1 that means "no id". */
static int parse_id(const char *text, unsigned long *id)
{
    char *end;

    if (!isdigit((unsigned char)text[0]))
        return -1;
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    errno = 0;
    *id = strtoul(text, &end, 10);
    return errno || *end || *id >= (unsigned long)(uid_t)-1 ? -1 : 0;
}

/* One passwd lookup by name (name != NULL) or by uid. 0 found, 1 no such user, -1 with errno. */
static int passwd_lookup(const char *name, uid_t uid, uid_t *uid_out, gid_t *gid_out,
                         char *name_out, size_t name_size)
{
    size_t size = LOOKUP_BUF_START;
    char *mem = NULL;
    int rc = -1;

    for (;;) {
        struct passwd pw, *found = NULL;
        char *bigger = realloc(mem, size);
        if (!bigger) {
            errno = ENOMEM;
            break;
        }
        mem = bigger;
        int e = name ? getpwnam_r(name, &pw, mem, size, &found)
                     : getpwuid_r(uid, &pw, mem, size, &found);
        if (e == ERANGE && size < LOOKUP_BUF_MAX) {
            size *= 2;
            continue;
        }
        if (e == 0 && found) {
            if (uid_out)
                *uid_out = pw.pw_uid;
            if (gid_out)
                *gid_out = pw.pw_gid;
            if (name_out)
                snprintf(name_out, name_size, "%s", pw.pw_name);
            rc = 0;
        } else if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM) {
            rc = 1; /* the ways glibc and others say "no such entry" */
        } else {
            errno = e;
        }
        break;
    }
    free(mem);
    return rc;
}

/* The same for groups. */
static int group_lookup(const char *name, gid_t gid, gid_t *gid_out, char *name_out,
                        size_t name_size)
{
    size_t size = LOOKUP_BUF_START;
    char *mem = NULL;
    int rc = -1;

    for (;;) {
        struct group gr, *found = NULL;
        char *bigger = realloc(mem, size);
        if (!bigger) {
            errno = ENOMEM;
            break;
        }
        mem = bigger;
        int e = name ? getgrnam_r(name, &gr, mem, size, &found)
                     : getgrgid_r(gid, &gr, mem, size, &found);
        if (e == ERANGE && size < LOOKUP_BUF_MAX) {
            size *= 2;
            continue;
        }
        if (e == 0 && found) {
            if (gid_out)
                *gid_out = gr.gr_gid;
            if (name_out)
                snprintf(name_out, name_size, "%s", gr.gr_name);
            rc = 0;
        } else if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM) {
            rc = 1;
        } else {
            errno = e;
        }
        break;
    }
    free(mem);
    return rc;
}

int ids_user(const char *name, uid_t *uid, gid_t *gid, struct itl_error *err)
{
    unsigned long id;
    gid_t primary;
    int rc;

    if (!name || !name[0])
        return err_set(err, ITL_E_USAGE, "empty user name");
    /* The name first: a user may be called "1000" (rare, but the passwd file says so). */
    rc = passwd_lookup(name, 0, uid, &primary, NULL, 0);
    if (rc == 1 && parse_id(name, &id) == 0)
        rc = passwd_lookup(NULL, (uid_t)id, uid, &primary, NULL, 0);
    if (rc < 0)
        return err_errno(err, errno, "looking up user '%s'", name);
    if (rc > 0)
        return err_set(err, ITL_E_USAGE, "no such user '%s'", name);
    if (gid)
        *gid = primary;
    return 0;
}

int ids_group(const char *name, gid_t *gid, struct itl_error *err)
{
    unsigned long id;
    int rc;

    if (!name || !name[0])
        return err_set(err, ITL_E_USAGE, "empty group name");
    rc = group_lookup(name, 0, gid, NULL, 0);
    if (rc == 1 && parse_id(name, &id) == 0) {
        *gid = (gid_t)id; /* a group number needs no entry in the group database */
        return 0;
    }
    if (rc < 0)
        return err_errno(err, errno, "looking up group '%s'", name);
    if (rc > 0)
        return err_set(err, ITL_E_USAGE, "no such group '%s'", name);
    return 0;
}

const char *ids_user_name(uid_t uid, char *out, size_t size)
{
    if (passwd_lookup(NULL, uid, NULL, NULL, out, size) != 0)
        snprintf(out, size, "%u", (unsigned)uid);
    return out;
}

const char *ids_group_name(gid_t gid, char *out, size_t size)
{
    if (group_lookup(NULL, gid, NULL, out, size) != 0)
        snprintf(out, size, "%u", (unsigned)gid);
    return out;
}

int ids_user_in_group(const char *user, gid_t primary, gid_t gid)
{
    int n = 32, rc = -1;
    gid_t *groups = NULL;

    if (primary == gid)
        return 1;
    for (;;) {
        gid_t *bigger = realloc(groups, (size_t)n * sizeof *groups);
        int want = n;
        if (!bigger)
            break;
        groups = bigger;
        if (getgrouplist(user, primary, groups, &want) >= 0) {
            rc = 0;
            for (int i = 0; i < want; i++)
                if (groups[i] == gid)
                    rc = 1;
            break;
        }
        if (want <= n || want > 65536)
            break;
        n = want;
    }
    free(groups);
    return rc;
}
