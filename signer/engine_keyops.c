/* SPDX-License-Identifier: MIT */
/*
 * op key: key management in the engine, so the service and direct mode apply one policy to it
 * (the `key` access right, the regeneration hold, the recovery backup rule), record it in one
 * state and write its one audit record (audit_rec.c eng_audit_result). import and attest-backup
 * carry secrets (a .p12 password, a backup token's PIN): their in-process fields never go on
 * the wire, so they run only in an engine of the administrator's own process (direct mode;
 * SECURITY.md).
 */
#include "signer/signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "pkcs11/token.h"
#include "signer/internal.h"

const char *sgn_key_op_name(enum sgn_key_op op)
{
    static const char *const names[SGN_KEY_OP_COUNT] = {"key generate",      "key import",
                                                        "key attest-backup", "key delete",
                                                        "key csr",           "key attach-cert"};
    return (unsigned)op < SGN_KEY_OP_COUNT ? names[op] : "key";
}

void eng_retired_free(struct sgn_engine *e)
{
    for (size_t i = 0; i < e->n_retired; i++)
        eng_key_free(e->retired[i]);
    e->n_retired = 0;
}

/* The role key changed on the token: the next request finds it again. The old one may still be
 * in use by a request in flight, so it is kept until the engine goes. */
static void forget_role_key(struct sgn_engine *e, int role)
{
    pthread_mutex_lock(&e->keys_lock);
    if (e->keys[role] && e->n_retired < sizeof e->retired / sizeof e->retired[0]) {
        e->retired[e->n_retired++] = e->keys[role];
        e->keys[role] = NULL;
    }
    pthread_mutex_unlock(&e->keys_lock);
}

static int role_of_label(const struct sgn_engine *e, const char *label)
{
    for (int i = 0; i < POL_KEY_COUNT; i++)
        if (strcmp(e->boot.keys[i].label, label) == 0)
            return i;
    return -1;
}

static const char *label_of(const struct sgn_engine *e, const char *key)
{
    if (key && strcmp(key, "recovery") == 0)
        return e->boot.keys[POL_KEY_RECOVERY].label;
    if (key && strcmp(key, "tftp") == 0)
        return e->boot.keys[POL_KEY_TFTP].label;
    return key;
}

static void deny(struct sgn_result *r, const struct pol_decision *d)
{
    eng_fail(r, SGN_E_DENIED, "%s", d->message);
    snprintf(r->rule, sizeof r->rule, "%s", d->rule);
}

/* The policy of a key operation on the role key `role` (-1: no role, nothing to check).
 * generate and attach-cert give the role a new signing identity: the rules of a regeneration,
 * recorded before the token changes (one locked step: two racing cannot both pass the hold). */
static int check_role_policy(struct eng_op_ctx *o, const char *label, int role)
{
    struct sgn_engine *e = o->e;
    struct sgn_result *r = o->r;
    struct pol_decision d = {0};
    struct pol_regen_event ev = {0};
    struct itl_error pe;
    uint8_t rec_sha[32];
    const uint8_t *rec;
    time_t now = time(NULL);

    if (role < 0)
        return 0;
    if (!e->use_state) {
        if (o->req->key_op == SGN_KEY_DELETE) {
            eng_fail(r, SGN_E_DENIED,
                     "'%s' is the label of the %s key: give --config so that the policy that "
                     "guards it (regeneration hold, recovery backup) is checked",
                     label, pol_key_role_name((enum pol_key_role)role));
            snprintf(r->rule, sizeof r->rule, "key-role");
            return -1;
        }
        snprintf(r->warning, sizeof r->warning,
                 "no --config: the regeneration hold and backup rules of %s key '%s' are not "
                 "checked",
                 pol_key_role_name((enum pol_key_role)role), label);
        return 0;
    }
    if (pol_state_load(e->boot.state_dir, &o->state, &pe) != 0) {
        eng_fail(r, SGN_E_DENIED, "policy state: %s", pe.msg);
        snprintf(r->rule, sizeof r->rule, "state");
        return -1;
    }
    rec = eng_recovery_cert_sha256(e, rec_sha) == 0 ? rec_sha : NULL;
    if (o->req->key_op == SGN_KEY_DELETE) {
        if (pol_check_delete(o->cfg, &o->state, (enum pol_key_role)role, rec, now, &d) != 0) {
            deny(r, &d);
            return -1;
        }
        return 0;
    }
    ev.key = (enum pol_key_role)role;
    ev.time = now;
    ev.uid = o->peer ? o->peer->uid : 0;
    snprintf(ev.label, sizeof ev.label, "%s", label);
    if (pol_check_regen(o->cfg, &o->state, ev.key, rec, now, &d) != 0) {
        deny(r, &d);
        return -1;
    }
    if (pol_state_record_regen(e->boot.state_dir, o->cfg, &ev, &d, &pe) != 0) {
        if (!d.allow && d.message[0])
            deny(r, &d);
        else
            eng_fail(r, SGN_E_DENIED, "policy state: %s", pe.msg);
        return -1;
    }
    return 0;
}

static void tok_failed(struct sgn_result *r, const char *what, const struct itl_error *te)
{
    /* A .p12 that does not open (wrong password, not a .p12) is bad input: exit 3. */
    enum sgn_status st = te->cls == ITL_E_INPUT    ? SGN_E_INPUT
                         : te->cls == ITL_E_VERIFY ? SGN_E_TOKEN
                                                   : eng_status_from_tok(te);
    eng_fail(r, st, "%s: %s", what, te->msg);
}

static void key_generate(struct eng_op_ctx *o, const char *label, int role)
{
    const struct sgn_request *req = o->req;
    struct tok_generate_report report = {0};
    struct tok_generate_opts g = {.label = label,
                                  .subject = req->subject,
                                  .bits = req->bits ? req->bits : 2048,
                                  .days = req->days ? req->days : 1825,
                                  .id = req->key_id,
                                  .id_len = req->key_id_len,
                                  .report = &report};
    struct tok_key_info existing;
    struct itl_error te = {0};
    char priv[64], pub[64];

    if (!req->subject) {
        eng_fail(o->r, SGN_E_USAGE, "key generate: a subject is needed");
        return;
    }
    /* A taken label is refused by the token layer, which then changes nothing: no hold. */
    if (tok_key_attributes(o->e->tok, label, &existing, &te) != 0 &&
        check_role_policy(o, label, role) != 0)
        return;
    if (tok_generate(o->e->tok, &g, &o->r->out, &o->r->out_len, &te) != 0) {
        tok_failed(o->r, "key generate", &te);
        return;
    }
    tok_usage_text(&report.usage, 1, priv, sizeof priv);
    tok_usage_text(&report.usage, 0, pub, sizeof pub);
    if (report.template_reduced)
        snprintf(o->r->warning, sizeof o->r->warning,
                 "the token refused the sign-only key template (%s): the key was generated with "
                 "the token's defaults, then switched off where the token allowed (private key "
                 "%s, public key %s)",
                 tok_ckr_name(report.refused_rv), priv, pub);
    else if (!tok_usage_sign_only(&report.usage))
        snprintf(o->r->warning, sizeof o->r->warning,
                 "the new key is not sign-only: private key %s, public key %s (the token does "
                 "not let us switch the rest off; itl-sign only ever signs with it)",
                 priv, pub);
    snprintf(o->r->message, sizeof o->r->message, "generated key '%s' (RSA %u)", label, g.bits);
}

static void key_delete(struct eng_op_ctx *o, const char *label, int role)
{
    struct tok_delete_report d;
    struct itl_error te = {0};

    if (check_role_policy(o, label, role) != 0)
        return;
    if (tok_delete_key(o->e->tok, label, &d, &te) != 0) {
        tok_failed(o->r, "key delete", &te);
        return;
    }
    snprintf(o->r->message, sizeof o->r->message,
             "deleted key '%s': %u private, %u public, %u certificate object(s)", label,
             d.private_keys, d.public_keys, d.certificates);
}

static void key_csr(struct eng_op_ctx *o, const char *label)
{
    struct itl_error te = {0};

    if (!o->req->subject) {
        eng_fail(o->r, SGN_E_USAGE, "key csr: a subject is needed");
        return;
    }
    if (tok_make_csr(o->e->tok, label, o->req->subject, &o->r->out, &o->r->out_len, &te) != 0) {
        tok_failed(o->r, "key csr", &te);
        return;
    }
    snprintf(o->r->message, sizeof o->r->message, "certificate request for key '%s'", label);
}

static void key_attach_cert(struct eng_op_ctx *o, const char *label, int role)
{
    const struct sgn_request *req = o->req;
    struct tok_attach_opts a = {.label = label,
                                .cert_der = req->len ? req->data : NULL,
                                .cert_len = req->len,
                                .subject = req->subject,
                                .days = req->days ? req->days : 1825,
                                .replace = req->replace};
    struct itl_error te = {0};

    if (!!req->len == !!req->subject) {
        eng_fail(o->r, SGN_E_USAGE,
                 "key attach-cert: a certificate, or a subject for a self-signed one");
        return;
    }
    if (check_role_policy(o, label, role) != 0)
        return;
    if (tok_attach_cert(o->e->tok, &a, &o->r->out, &o->r->out_len, &te) != 0) {
        tok_failed(o->r, "key attach-cert", &te);
        return;
    }
    snprintf(o->r->message, sizeof o->r->message, "certificate stored for key '%s'%s", label,
             req->len ? "" : " (self-signed)");
}

static void key_import(struct eng_op_ctx *o, const char *label, int role)
{
    const struct sgn_request *req = o->req;
    struct tok_import_report report = {0};
    struct tok_key_info existing;
    struct itl_error te = {0};

    if (tok_key_attributes(o->e->tok, label, &existing, &te) != 0 &&
        check_role_policy(o, label, role) != 0)
        return;
    if (tok_import_p12(o->e->tok, req->data, req->len, req->p12_password, label, req->key_id,
                       req->key_id_len, &report, &te) != 0) {
        tok_failed(o->r, "key import", &te);
        return;
    }
    if (req->import_report)
        *req->import_report = report;
    snprintf(o->r->message, sizeof o->r->message, "imported key '%s' (RSA %u)", label, report.bits);
}

/* The client proved the backup (it holds the backup token's PIN or the .p12's password); the
 * engine records it in the state and the audit log. */
static void key_attest_backup(struct eng_op_ctx *o, const char *label)
{
    const struct sgn_request *req = o->req;
    struct itl_error pe;

    if (req->attest_failure) {
        eng_fail(o->r, SGN_E_DENIED, "%s", req->attest_failure);
        snprintf(o->r->rule, sizeof o->r->rule, "backup");
        return;
    }
    if (!o->e->use_state) {
        eng_fail(o->r, SGN_E_USAGE,
                 "key attest-backup records into the policy state: give --config");
        return;
    }
    if (pol_state_record_attestation(o->e->boot.state_dir, req->attestation, &pe) != 0) {
        /* As for the other key operations: a state the rules do not trust (another user's dir)
         * refuses the operation, rule "state". */
        eng_fail(o->r, SGN_E_DENIED, "policy state: %s", pe.msg);
        snprintf(o->r->rule, sizeof o->r->rule, "state");
        return;
    }
    snprintf(o->r->message, sizeof o->r->message,
             "The backup (%s %s) holds the ITL Recovery key '%s'; attestation recorded.",
             req->attestation->kind, req->attestation->identity, label);
}

void eng_key_audit_names(struct eng_op_ctx *o)
{
    o->audit_op = sgn_key_op_name(o->req->key_op);
    o->audit_key = label_of(o->e, o->req->key);
}

void eng_op_key(struct eng_op_ctx *o)
{
    const struct sgn_request *req = o->req;
    const char *label = label_of(o->e, req->key);
    int role;

    eng_key_audit_names(o);
    if ((req->key_op == SGN_KEY_IMPORT && !req->p12_password) ||
        (req->key_op == SGN_KEY_ATTEST_BACKUP && !req->attestation && !req->attest_failure)) {
        eng_fail(o->r, SGN_E_USAGE,
                 "%s carries a secret (a .p12 password, a backup token's PIN) and runs in direct "
                 "mode only (itl-sign --direct --config ... key ...)",
                 o->audit_op);
        return;
    }
    if (!label || !label[0]) {
        eng_fail(o->r, SGN_E_USAGE, "%s: the key's label is needed", o->audit_op);
        return;
    }
    role = role_of_label(o->e, label);
    switch (req->key_op) {
    case SGN_KEY_GENERATE:
        key_generate(o, label, role);
        break;
    case SGN_KEY_DELETE:
        key_delete(o, label, role);
        break;
    case SGN_KEY_CSR:
        key_csr(o, label);
        break;
    case SGN_KEY_ATTACH_CERT:
        key_attach_cert(o, label, role);
        break;
    case SGN_KEY_IMPORT:
        key_import(o, label, role);
        break;
    case SGN_KEY_ATTEST_BACKUP:
        key_attest_backup(o, label);
        break;
    default:
        eng_fail(o->r, SGN_E_USAGE, "unknown key operation %d", (int)req->key_op);
        return;
    }
    if (o->r->status == SGN_OK && role >= 0 && req->key_op != SGN_KEY_CSR &&
        req->key_op != SGN_KEY_ATTEST_BACKUP)
        forget_role_key(o->e, role);
}
