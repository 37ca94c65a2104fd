/* SPDX-License-Identifier: MIT */
/*
 * The rules. Each is a pure function of (config, state, request, now) except the access rule,
 * which asks NSS who a uid is. A decision names the rule that decided it and, when denied,
 * says why in words an operator can act on.
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

const char POL_BACKUP_WARNING[] =
    "This cluster has an ITLRecovery certificate that has not been backed up. Back up the ITL "
    "Recovery key as soon as possible (itl-sign key attest-backup --key recovery): a backup "
    "avoids the need to manually delete the ITL file from every phone in the cluster after "
    "certain cluster reconfiguration operations.";

#define BACKUP_WARNING_INTERVAL 86400

static void decide(struct pol_decision *d, int allow, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void decide(struct pol_decision *d, int allow, const char *rule, const char *fmt, ...)
{
    va_list ap;

    d->allow = allow;
    snprintf(d->rule, sizeof d->rule, "%s", rule);
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
}

static void start(struct pol_decision *d)
{
    memset(d, 0, sizeof *d);
    d->allow = 1;
    snprintf(d->rule, sizeof d->rule, "ok");
}

static void add_warning(struct pol_decision *d, const char *text)
{
    d->warn = 1;
    pol_strlcatf(d->warning, sizeof d->warning, "%s%s", d->warning[0] ? "\n" : "", text);
}

static int verdict(const struct pol_decision *d)
{
    return d->allow ? 0 : -1;
}

/* ---- 5. who may ask ---- */

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

    start(d);
    if (!a) {
        pol_access_resolve(cfg, peer, &resolved);
        a = &resolved;
    }
    if ((unsigned)op >= POL_OP_COUNT)
        decide(d, 0, "access", "%s asked for an unknown operation", a->who);
    else if (!a->matched)
        decide(d, 0, "access", "no access rule matches %s, gid %u", a->who, (unsigned)peer->gid);
    else if (!(a->allowed & (1u << op))) {
        ops_text(a->allowed, ops, sizeof ops);
        decide(d, 0, "access", "%s may not '%s': allowed operations: %s", a->who, pol_op_name(op),
               ops);
    }
    return verdict(d);
}

/* ---- 1.-4. signing ---- */

static const char *key_label(const struct pol_config *cfg, enum pol_key_role key)
{
    return (unsigned)key < POL_KEY_COUNT ? cfg->keys[key].label : "?";
}

static int deny_publisher_only(const struct pol_config *cfg, struct pol_decision *d)
{
    decide(d, 0, "publisher-only",
           "This is not a Publisher Node: the ITL Recovery key signs only on the publisher "
           "(node %s is a subscriber)",
           cfg->node.name);
    return -1;
}

static int has_backup(const struct pol_state *st, const uint8_t *cert_sha256)
{
    return st && cert_sha256 && pol_state_find_attestation(st, POL_KEY_RECOVERY, cert_sha256);
}

static void cert_ref(const uint8_t *sha256, char *out, size_t size)
{
    char hex[65];
    if (!sha256) {
        snprintf(out, size, "(unknown certificate)");
        return;
    }
    pol_hex(sha256, 32, hex);
    snprintf(out, size, "sha256:%.16s...", hex);
}

static const char *files_text(unsigned files)
{
    switch (files & (POL_FILE_ITL | POL_FILE_CONFIG)) {
    case POL_FILE_ITL:
        return "itl";
    case POL_FILE_CONFIG:
        return "config";
    case POL_FILE_ITL | POL_FILE_CONFIG:
        return "itl, config";
    default:
        return "";
    }
}

static int check_backup(const struct pol_config *cfg, const struct pol_state *st,
                        const struct pol_sign_request *req, struct pol_decision *d)
{
    char ref[48];

    if (req->key != POL_KEY_RECOVERY || cfg->policy.backup == POL_BACKUP_OFF ||
        has_backup(st, req->signer_cert_sha256))
        return 0;
    if (cfg->policy.backup == POL_BACKUP_WARN) {
        add_warning(d, POL_BACKUP_WARNING);
        return 0;
    }
    cert_ref(req->signer_cert_sha256, ref, sizeof ref);
    decide(d, 0, "backup",
           "The ITL Recovery key (%s, certificate %s) has not been backed up and policy.backup is "
           "'require': attest its backup first (itl-sign key attest-backup --key recovery)",
           key_label(cfg, POL_KEY_RECOVERY), ref);
    return -1;
}

static int check_key_role(const struct pol_config *cfg, const struct pol_sign_request *req,
                          struct pol_decision *d)
{
    unsigned may = cfg->policy.signs[req->key];

    if (req->file != POL_FILE_ITL && req->file != POL_FILE_CONFIG) {
        decide(d, 0, "key-role", "unknown file kind %d", (int)req->file);
        return -1;
    }
    if (may & req->file)
        return 0;
    decide(d, 0, "key-role", "the %s key (%s) may not sign %s files (policy.%s-signs: [%s])",
           pol_key_role_name(req->key), key_label(cfg, req->key),
           req->file == POL_FILE_ITL ? "ITL/CTL" : "config", pol_key_role_name(req->key),
           files_text(may));
    return -1;
}

static int check_itl_shape(const struct pol_config *cfg, const struct pol_sign_request *req,
                           struct pol_decision *d)
{
    if (req->file != POL_FILE_ITL)
        return 0;
    if (!req->signer_is_sast) {
        decide(d, 0, "sast-signer",
               "the signer certificate (%s) is not a SAST record of this ITL/CTL: phones would "
               "reject a trust list signed by a certificate it does not list as SAST",
               key_label(cfg, req->key));
        return -1;
    }
    if (req->file_bytes > cfg->policy.max_itl_bytes) {
        decide(d, 0, "max-itl-bytes",
               "the ITL/CTL would be %zu bytes, more than policy.max-itl-bytes (%zu): phones "
               "fail to load trust lists that large",
               req->file_bytes, cfg->policy.max_itl_bytes);
        return -1;
    }
    return 0;
}

static int check_validity(const struct pol_config *cfg, const struct pol_sign_request *req,
                          struct pol_decision *d)
{
    char when[POL_TIME_LEN], text[ITL_ERROR_LEN];

    if (req->now > req->signer_not_after) {
        pol_time_iso(req->signer_not_after, when);
        snprintf(text, sizeof text, "the signer certificate (%s) expired at %s",
                 key_label(cfg, req->key), when);
    } else if (req->now < req->signer_not_before) {
        pol_time_iso(req->signer_not_before, when);
        snprintf(text, sizeof text, "the signer certificate (%s) is not valid before %s",
                 key_label(cfg, req->key), when);
    } else {
        return 0;
    }
    if (cfg->policy.expired == POL_EXPIRED_WARN) {
        add_warning(d, text);
        return 0;
    }
    decide(d, 0, "expired", "%s (policy.expired: refuse)", text);
    return -1;
}

int pol_check_sign(const struct pol_config *cfg, const struct pol_state *st,
                   const struct pol_sign_request *req, struct pol_decision *d)
{
    start(d);
    if ((unsigned)req->key >= POL_KEY_COUNT) {
        decide(d, 0, "key-role", "unknown key role %d", (int)req->key);
        return -1;
    }
    if ((req->key == POL_KEY_RECOVERY || req->op == POL_OP_RESET) &&
        cfg->node.role != POL_NODE_PUBLISHER)
        return deny_publisher_only(cfg, d);
    if (check_backup(cfg, st, req, d) != 0 || check_key_role(cfg, req, d) != 0 ||
        check_itl_shape(cfg, req, d) != 0 || check_validity(cfg, req, d) != 0)
        return -1;
    return 0;
}

/* ---- 2. regeneration ---- */

/* The hold alone: also used by pol_state_record_regen under the exclusive lock. */
int pol_check_hold(const struct pol_config *cfg, const struct pol_state *st, enum pol_key_role key,
                   time_t now, struct pol_decision *d)
{
    char at[POL_TIME_LEN], after[POL_TIME_LEN], hold[48];
    const struct pol_regen_event *last = &st->last_regen;
    time_t until;

    if (!st->has_last_regen || cfg->policy.regen_hold <= 0)
        return 0;
    until = last->time + (time_t)cfg->policy.regen_hold;
    if (now >= until)
        return 0;
    pol_time_iso(last->time, at);
    pol_time_iso(until, after);
    pol_duration_words(cfg->policy.regen_hold, hold, sizeof hold);
    decide(d, 0, "regen-hold",
           "%s certificate was modified in the last %s (at %s). Please re-try regenerating %s "
           "at a later time (after %s).",
           last->label[0] ? last->label : pol_key_role_name(last->key), hold, at,
           key_label(cfg, key), after);
    return -1;
}

static int recovery_backed_up(const struct pol_state *st, const uint8_t *recovery_cert_sha256)
{
    if (recovery_cert_sha256)
        return has_backup(st, recovery_cert_sha256);
    /* Legacy pol_check_regen: any surviving recovery attestation (a recovery regeneration
     * voids them, so a survivor is for the current certificate unless the key was replaced
     * outside itl-sign). */
    for (size_t i = 0; i < st->n_attestations; i++)
        if (st->attestations[i].key == POL_KEY_RECOVERY)
            return 1;
    return 0;
}

static int check_regen(const struct pol_config *cfg, const struct pol_state *st,
                       enum pol_key_role key, const uint8_t *recovery_cert_sha256, int have_cert,
                       time_t now, struct pol_decision *d)
{
    start(d);
    if ((unsigned)key >= POL_KEY_COUNT) {
        decide(d, 0, "key-role", "unknown key role %d", (int)key);
        return -1;
    }
    if (key == POL_KEY_RECOVERY && cfg->node.role != POL_NODE_PUBLISHER)
        return deny_publisher_only(cfg, d);
    if (pol_check_hold(cfg, st, key, now, d) != 0)
        return -1;
    if (key == POL_KEY_TFTP && cfg->policy.backup != POL_BACKUP_OFF && have_cert &&
        !recovery_cert_sha256) {
        decide(d, 0, "backup",
               "There is no ITL Recovery key (%s) to rescue phones with: create it and attest "
               "its backup before replacing the %s key",
               key_label(cfg, POL_KEY_RECOVERY), key_label(cfg, POL_KEY_TFTP));
        return -1;
    }
    if (key == POL_KEY_TFTP && cfg->policy.backup != POL_BACKUP_OFF &&
        !(have_cert ? has_backup(st, recovery_cert_sha256) : recovery_backed_up(st, NULL))) {
        decide(d, 0, "backup",
               "The ITL Recovery key (%s) has not been backed up: replacing the %s key now "
               "could leave phones that only a manual ITL delete recovers. Attest the recovery "
               "key's backup first (itl-sign key attest-backup --key recovery)",
               key_label(cfg, POL_KEY_RECOVERY), key_label(cfg, POL_KEY_TFTP));
        return -1;
    }
    return 0;
}

int pol_check_regen(const struct pol_config *cfg, const struct pol_state *st, enum pol_key_role key,
                    time_t now, struct pol_decision *d)
{
    return check_regen(cfg, st, key, NULL, 0, now, d);
}

int pol_check_regen2(const struct pol_config *cfg, const struct pol_state *st,
                     enum pol_key_role key, const uint8_t *recovery_cert_sha256, time_t now,
                     struct pol_decision *d)
{
    return check_regen(cfg, st, key, recovery_cert_sha256, 1, now, d);
}

int pol_backup_warning_due(const struct pol_config *cfg, const struct pol_state *st,
                           const uint8_t *recovery_cert_sha256, time_t now)
{
    if (cfg->policy.backup == POL_BACKUP_OFF || has_backup(st, recovery_cert_sha256))
        return 0;
    return st->last_backup_warning == 0 || now < st->last_backup_warning ||
           now - st->last_backup_warning >= BACKUP_WARNING_INTERVAL;
}
