/* SPDX-License-Identifier: MIT */
/*
 * The signing and regeneration rules, each a pure function of (config, state, request, now);
 * who may ask is access.c. A decision names the rule that decided it and, when denied,
 * says why in words an operator can act on.
 */
#include "policy/internal.h"

#include <stdio.h>
#include <string.h>

const char POL_BACKUP_WARNING[] =
    "This cluster has an ITLRecovery certificate that has not been backed up. Back up the ITL "
    "Recovery key as soon as possible (itl-sign key attest-backup --key recovery): a backup "
    "avoids the need to manually delete the ITL file from every phone in the cluster after "
    "certain cluster reconfiguration operations.";

#define BACKUP_WARNING_INTERVAL 86400

static void add_warning(struct pol_decision *d, const char *text)
{
    d->warn = 1;
    pol_strlcatf(d->warning, sizeof d->warning, "%s%s", d->warning[0] ? "\n" : "", text);
}

/* ---- 1.-4. signing ---- */

static const char *key_label(const struct pol_config *cfg, enum pol_key_role key)
{
    return (unsigned)key < POL_KEY_COUNT ? cfg->keys[key].label : "?";
}

static int deny_publisher_only(const struct pol_config *cfg, struct pol_decision *d)
{
    pol_decide(d, 0, "publisher-only",
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
    hex_lower(sha256, 32, 0, hex, sizeof hex);
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
    pol_decide(
        d, 0, "backup",
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
        pol_decide(d, 0, "key-role", "unknown file kind %d", (int)req->file);
        return -1;
    }
    if (may & req->file)
        return 0;
    pol_decide(d, 0, "key-role", "the %s key (%s) may not sign %s files (policy.%s-signs: [%s])",
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
        pol_decide(d, 0, "sast-signer",
                   "the signer certificate (%s) is not a SAST record of this ITL/CTL: phones would "
                   "reject a trust list signed by a certificate it does not list as SAST",
                   key_label(cfg, req->key));
        return -1;
    }
    if (req->file_bytes > cfg->policy.max_itl_bytes) {
        pol_decide(d, 0, "max-itl-bytes",
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
    char when[TIME_ISO_LEN], text[ITL_ERROR_LEN];

    if (req->now > req->signer_not_after) {
        time_iso(req->signer_not_after, when);
        snprintf(text, sizeof text, "the signer certificate (%s) expired at %s",
                 key_label(cfg, req->key), when);
    } else if (req->now < req->signer_not_before) {
        time_iso(req->signer_not_before, when);
        snprintf(text, sizeof text, "the signer certificate (%s) is not valid before %s",
                 key_label(cfg, req->key), when);
    } else {
        return 0;
    }
    if (cfg->policy.expired == POL_EXPIRED_WARN) {
        add_warning(d, text);
        return 0;
    }
    pol_decide(d, 0, "expired", "%s (policy.expired: refuse)", text);
    return -1;
}

int pol_check_sign(const struct pol_config *cfg, const struct pol_state *st,
                   const struct pol_sign_request *req, struct pol_decision *d)
{
    pol_decision_start(d);
    if ((unsigned)req->key >= POL_KEY_COUNT) {
        pol_decide(d, 0, "key-role", "unknown key role %d", (int)req->key);
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
    char at[TIME_ISO_LEN], after[TIME_ISO_LEN], hold[48];
    const struct pol_regen_event *last = &st->last_regen;
    time_t until;

    if (!st->has_last_regen || cfg->policy.regen_hold <= 0)
        return 0;
    until = last->time + (time_t)cfg->policy.regen_hold;
    if (now >= until)
        return 0;
    time_iso(last->time, at);
    time_iso(until, after);
    pol_duration_words(cfg->policy.regen_hold, hold, sizeof hold);
    pol_decide(d, 0, "regen-hold",
               "%s certificate was modified in the last %s (at %s). Please re-try regenerating %s "
               "at a later time (after %s).",
               last->label[0] ? last->label : pol_key_role_name(last->key), hold, at,
               key_label(cfg, key), after);
    return -1;
}

int pol_check_regen(const struct pol_config *cfg, const struct pol_state *st, enum pol_key_role key,
                    const uint8_t *recovery_cert_sha256, time_t now, struct pol_decision *d)
{
    pol_decision_start(d);
    if ((unsigned)key >= POL_KEY_COUNT) {
        pol_decide(d, 0, "key-role", "unknown key role %d", (int)key);
        return -1;
    }
    if (key == POL_KEY_RECOVERY && cfg->node.role != POL_NODE_PUBLISHER)
        return deny_publisher_only(cfg, d);
    if (pol_check_hold(cfg, st, key, now, d) != 0)
        return -1;
    if (key == POL_KEY_TFTP && cfg->policy.backup != POL_BACKUP_OFF && !recovery_cert_sha256) {
        pol_decide(d, 0, "backup",
                   "There is no ITL Recovery key (%s) to rescue phones with: create it and attest "
                   "its backup before replacing the %s key",
                   key_label(cfg, POL_KEY_RECOVERY), key_label(cfg, POL_KEY_TFTP));
        return -1;
    }
    if (key == POL_KEY_TFTP && cfg->policy.backup != POL_BACKUP_OFF &&
        !has_backup(st, recovery_cert_sha256)) {
        pol_decide(d, 0, "backup",
                   "The ITL Recovery key (%s) has not been backed up: replacing the %s key now "
                   "could leave phones that only a manual ITL delete recovers. Attest the recovery "
                   "key's backup first (itl-sign key attest-backup --key recovery)",
                   key_label(cfg, POL_KEY_RECOVERY), key_label(cfg, POL_KEY_TFTP));
        return -1;
    }
    return 0;
}

int pol_backup_warning_due(const struct pol_config *cfg, const struct pol_state *st,
                           const uint8_t *recovery_cert_sha256, time_t now)
{
    if (cfg->policy.backup == POL_BACKUP_OFF || has_backup(st, recovery_cert_sha256))
        return 0;
    return st->last_backup_warning == 0 || now < st->last_backup_warning ||
           now - st->last_backup_warning >= BACKUP_WARNING_INTERVAL;
}

/* ---- 3. deleting a role key ---- */

int pol_check_delete(const struct pol_config *cfg, const struct pol_state *st,
                     enum pol_key_role key, const uint8_t *recovery_cert_sha256, time_t now,
                     struct pol_decision *d)
{
    if (pol_check_regen(cfg, st, key, recovery_cert_sha256, now, d) != 0)
        return -1;
    /* Phones hold the recovery certificate for years and only its key can rescue them: it goes
     * only when a backup of exactly this key is attested, whatever policy.backup says. */
    if (key == POL_KEY_RECOVERY && !has_backup(st, recovery_cert_sha256)) {
        pol_decide(d, 0, "backup",
                   "The ITL Recovery key (%s) has no attested backup: deleting it would leave "
                   "phones that trust it without a rescue. Attest its backup first (itl-sign key "
                   "attest-backup --key recovery)",
                   key_label(cfg, POL_KEY_RECOVERY));
        return -1;
    }
    return 0;
}
