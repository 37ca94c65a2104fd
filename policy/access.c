/* SPDX-License-Identifier: MIT */
/*
 * Who may ask for which operation (rule 5): the access rules of the config matched against a
 * peer's uid and gid (SO_PEERCRED) and the groups NSS says the user belongs to. A rule names a
 * user or a group, by name or as a decimal id. This is the one rule that asks NSS, so the
 * service resolves it once per connection (pol_access_resolve).
 */
#include "policy/internal.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_numeric_id(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* The peer's identity as NSS knows it: name and every group the user belongs to. */
struct peer_identity {
    char name[POL_NAME_LEN]; /* "" when the uid has no passwd entry */
    gid_t *groups;
    int n_groups;
};

static void lookup_peer(const struct pol_peer *peer, struct peer_identity *id)
{
    struct passwd pw, *found = NULL;
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t buf_size = size > 0 ? (size_t)size : 16384;
    char *buf = NULL;
    int rc;

    memset(id, 0, sizeof *id);
    for (;;) {
        char *bigger = realloc(buf, buf_size);
        if (!bigger)
            break;
        buf = bigger;
        rc = getpwuid_r(peer->uid, &pw, buf, buf_size, &found);
        if (rc != ERANGE || buf_size > (1u << 20))
            break;
        buf_size *= 2;
    }
    if (found) {
        int n = 32;
        snprintf(id->name, sizeof id->name, "%s", pw.pw_name);
        for (;;) {
            gid_t *groups = realloc(id->groups, (size_t)n * sizeof *groups);
            int want = n;
            if (!groups)
                break;
            id->groups = groups;
            if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
                id->n_groups = want;
                break;
            }
            if (want <= n || want > 65536)
                break;
            n = want;
        }
    }
    free(buf);
}

static int name_to_uid(const char *name, uid_t *uid)
{
    struct passwd pw, *found = NULL;
    char buf[16384];

    if (is_numeric_id(name)) {
        char *end;
        unsigned long v = strtoul(name, &end, 10);
        *uid = (uid_t)v;
        return (unsigned long)*uid == v ? 0 : -1;
    }
    if (getpwnam_r(name, &pw, buf, sizeof buf, &found) != 0 || !found)
        return -1;
    *uid = pw.pw_uid;
    return 0;
}

static int name_to_gid(const char *name, gid_t *gid)
{
    struct group gr, *found = NULL;
    long size = sysconf(_SC_GETGR_R_SIZE_MAX);
    size_t buf_size = size > 0 ? (size_t)size : 16384;
    char *buf = NULL;
    int rc = -1;

    if (is_numeric_id(name)) {
        char *end;
        unsigned long v = strtoul(name, &end, 10);
        *gid = (gid_t)v;
        return (unsigned long)*gid == v ? 0 : -1;
    }
    /* Groups with many members need big buffers. */
    for (;;) {
        char *bigger = realloc(buf, buf_size);
        int e;
        if (!bigger)
            break;
        buf = bigger;
        e = getgrnam_r(name, &gr, buf, buf_size, &found);
        if (e == 0 && found) {
            *gid = gr.gr_gid;
            rc = 0;
        }
        if (e != ERANGE || buf_size > (1u << 24))
            break;
        buf_size *= 2;
    }
    free(buf);
    return rc;
}

static int rule_matches(const struct pol_access_rule *rule, const struct pol_peer *peer,
                        const struct peer_identity *id)
{
    if (!rule->is_group) {
        uid_t uid;
        return name_to_uid(rule->name, &uid) == 0 && uid == peer->uid;
    }
    gid_t gid;
    if (name_to_gid(rule->name, &gid) != 0)
        return 0;
    if (gid == peer->gid)
        return 1;
    for (int i = 0; i < id->n_groups; i++)
        if (id->groups[i] == gid)
            return 1;
    return 0;
}

static void ops_text(unsigned allow, char *out, size_t size)
{
    out[0] = '\0';
    for (int op = 0; op < POL_OP_COUNT; op++)
        if (allow & (1u << op))
            pol_strlcatf(out, size, "%s%s", out[0] ? ", " : "", pol_op_name((enum pol_op)op));
}

void pol_access_resolve(const struct pol_config *cfg, const struct pol_peer *peer,
                        struct pol_access *a)
{
    struct peer_identity id;

    memset(a, 0, sizeof *a);
    lookup_peer(peer, &id);
    for (size_t i = 0; i < cfg->n_access; i++)
        if (rule_matches(&cfg->access[i], peer, &id)) {
            a->matched = 1;
            a->allowed |= cfg->access[i].allow;
        }
    free(id.groups);
    if (id.name[0])
        snprintf(a->who, sizeof a->who, "uid %u (%s)", (unsigned)peer->uid, id.name);
    else
        snprintf(a->who, sizeof a->who, "uid %u", (unsigned)peer->uid);
}

int pol_check_access(const struct pol_config *cfg, const struct pol_peer *peer, enum pol_op op,
                     struct pol_decision *d)
{
    struct pol_access resolved;
    const struct pol_access *a = peer->access;
    char ops[128];

    pol_decision_start(d);
    if (!a) {
        pol_access_resolve(cfg, peer, &resolved);
        a = &resolved;
    }
    if ((unsigned)op >= POL_OP_COUNT)
        pol_decide(d, 0, "access", "%s asked for an unknown operation", a->who);
    else if (!a->matched)
        pol_decide(d, 0, "access", "no access rule matches %s, gid %u", a->who,
                   (unsigned)peer->gid);
    else if (!(a->allowed & (1u << op))) {
        ops_text(a->allowed, ops, sizeof ops);
        pol_decide(d, 0, "access", "%s may not '%s': allowed operations: %s", a->who,
                   pol_op_name(op), ops);
    }
    return d->allow ? 0 : -1;
}
