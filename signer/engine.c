/* SPDX-License-Identifier: MIT */
/*
 * The request engine: its life (configuration, token, audit log, counters) and the path of a
 * request. Direct mode and the service both call sgn_execute(), so a rule holds the same way
 * whichever path a request takes:
 *   check_access (may this peer run the operation) → eng_op_* (ops.c: key, policy, format and
 *   token signing) → eng_release_check (release.c: every output parsed again, of the
 *   operation's kind) → audit_result (one record; nothing is released if it cannot be written).
 */
#include "signer/signer.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "pkcs11/token.h"
#include "signer/internal.h"

int sgn_engine_new(const struct sgn_engine_opts *opts, struct sgn_engine **out,
                   struct itl_error *err)
{
    struct sgn_engine *e = calloc(1, sizeof *e);
    if (!e) {
        err_set(err, ITL_E_INTERNAL, "out of memory");
        return -1;
    }
    e->cfg = *opts->cfg;
    e->tok = opts->tok;
    e->audit = opts->audit;
    e->check_access = opts->check_access;
    e->use_state = opts->use_state;
    pthread_mutex_init(&e->keys_lock, NULL);
    if (e->cfg.recovery_unlock.mode == POL_UNLOCK_MANUAL && eng_unlock_new(e, err) != 0) {
        pthread_mutex_destroy(&e->keys_lock);
        free(e);
        return -1;
    }
    *out = e;
    return 0;
}

struct tok *sgn_engine_token(struct sgn_engine *e)
{
    return e->tok;
}

const struct pol_config *sgn_engine_config(struct sgn_engine *e)
{
    return &e->cfg;
}

void sgn_engine_counters(struct sgn_engine *e, unsigned long *requests, unsigned long *failures)
{
    *requests = atomic_load(&e->requests);
    *failures = atomic_load(&e->failures);
}

void sgn_engine_free(struct sgn_engine *e)
{
    if (!e)
        return;
    eng_unlock_free(e); /* locks (audited) while the audit log is still open */
    for (int i = 0; i < POL_KEY_COUNT; i++)
        eng_key_free(e->keys[i]);
    eng_retired_free(e);
    pthread_mutex_destroy(&e->keys_lock);
    free(e);
}

/* ---- Audit and dispatch ---- */

/* seq: NULL to wait until the record is durable; else it is only written, and *seq is what
 * sgn_audit_sync must wait for before the result is released. */
static void audit_result(struct sgn_engine *e, const struct pol_peer *peer,
                         const struct sgn_request *req, const struct eng_op_ctx *o,
                         struct sgn_result *r, unsigned long long *seq)
{
    uint8_t in_sha[32], out_sha[32];
    struct pol_audit_record rec = {0};
    struct itl_error pe;

    if (!e->audit)
        return;
    if (req->data)
        EVP_Digest(req->data, req->len, in_sha, NULL, EVP_sha256(), NULL);
    if (r->out)
        EVP_Digest(r->out, r->out_len, out_sha, NULL, EVP_sha256(), NULL);
    rec.time = time(NULL);
    rec.peer = peer;
    rec.op = o && o->audit_op ? o->audit_op : pol_op_name(req->op);
    rec.file = req->filename;
    rec.in_sha256 = req->data ? in_sha : NULL;
    rec.out_sha256 = r->out ? out_sha : NULL;
    rec.key = o && o->key ? tok_key_label(o->key) : o ? o->audit_key : NULL;
    rec.result = r->status == SGN_OK         ? (req->dry_run ? "dry-run" : "ok")
                 : r->status == SGN_E_DENIED ? "denied"
                                             : "error";
    rec.rule = r->rule[0] ? r->rule : NULL;
    rec.message = r->status != SGN_OK        ? r->message
                  : o && o->audit_message[0] ? o->audit_message
                  : r->warning[0]            ? r->warning
                                             : NULL;
    if ((seq ? pol_audit_write_deferred(e->audit, &rec, seq, &pe)
             : pol_audit_write_expected(e->audit, &rec, &pe)) != 0)
        eng_fail(r, SGN_E_AUDIT, "the audit record could not be written (%s); nothing was released",
                 pe.msg);
}

static int check_access(struct sgn_engine *e, const struct pol_peer *peer, enum pol_op op,
                        struct sgn_result *r)
{
    struct pol_decision d = {0};

    if (!e->check_access)
        return 0;
    pol_check_access(&e->cfg, peer, op, &d);
    if (d.allow)
        return 0;
    eng_fail(r, SGN_E_DENIED, "%s", d.message);
    snprintf(r->rule, sizeof r->rule, "%s", d.rule[0] ? d.rule : "access");
    return -1;
}

static void execute(struct sgn_engine *e, const struct pol_peer *peer,
                    const struct sgn_request *req, struct sgn_result *r, unsigned long long *seq)
{
    struct eng_op_ctx o = {.e = e, .peer = peer, .req = req, .r = r};
    int held = 0;

    memset(r, 0, sizeof *r);
    atomic_fetch_add(&e->requests, 1);
    /* Its record will come (audit_result): a flush meanwhile waits for it and covers it. */
    if (e->audit)
        pol_audit_expect(e->audit);
    if (req->op == POL_OP_KEY)
        eng_key_audit_names(&o);
    if (req->op == POL_OP_UNLOCK) /* a denied lock is audited as a lock */
        o.audit_op = req->lock ? "lock" : "unlock";
    if ((unsigned)req->op >= POL_OP_COUNT) {
        eng_fail(r, SGN_E_USAGE, "unknown operation %d", (int)req->op);
    } else if (req->dry_run && req->op != POL_OP_RESET && req->op != POL_OP_BUILD &&
               req->op != POL_OP_SIGN) {
        eng_fail(r, SGN_E_USAGE, "--dry-run is for reset, build and sign, not %s",
                 pol_op_name(req->op));
    } else if (check_access(e, peer, req->op, r) == 0 && (held = eng_unlock_enter(&o)) >= 0) {
        switch (req->op) {
        case POL_OP_RESET:
            eng_op_reset(&o);
            break;
        case POL_OP_BUILD:
            eng_op_build(&o);
            break;
        case POL_OP_SIGN:
            eng_op_sign(&o);
            break;
        case POL_OP_ENCRYPT:
            eng_op_encrypt(&o);
            break;
        case POL_OP_STATUS:
            snprintf(r->message, sizeof r->message, "ok");
            break;
        case POL_OP_KEY:
            eng_op_key(&o);
            break;
        case POL_OP_UNLOCK:
            eng_op_unlock(&o);
            break;
        default:
            eng_fail(r, SGN_E_USAGE, "'%s' is not a service operation", pol_op_name(req->op));
        }
        if (held == 1)
            eng_unlock_leave(e);
    }
    /* A key operation releases a certificate or request (or nothing, delete), never a file a
     * phone reads: the output-kind check is for the signing operations. */
    if (r->status == SGN_OK && req->op != POL_OP_STATUS && req->op != POL_OP_KEY &&
        req->op != POL_OP_UNLOCK && !r->out && !req->dry_run)
        eng_fail(r, SGN_E_INTERNAL, "%s produced no output", pol_op_name(req->op));
    if (r->status == SGN_OK && r->out && req->op != POL_OP_KEY)
        eng_release_check(req, r);
    audit_result(e, peer, req, &o, r, seq);
    if (r->status != SGN_OK)
        atomic_fetch_add(&e->failures, 1);
}

void sgn_execute(struct sgn_engine *e, const struct pol_peer *peer, const struct sgn_request *req,
                 struct sgn_result *r)
{
    execute(e, peer, req, r, NULL);
}

void sgn_execute_deferred(struct sgn_engine *e, const struct pol_peer *peer,
                          const struct sgn_request *req, struct sgn_result *r,
                          unsigned long long *seq)
{
    *seq = 0;
    execute(e, peer, req, r, seq);
}

int sgn_audit_sync(struct sgn_engine *e, unsigned long long seq, struct itl_error *err)
{
    if (!e->audit || pol_audit_sync(e->audit, seq, err) == 0)
        return 0;
    err_prefix(err, "the audit record could not be written (");
    return err_suffix(err, "); nothing was released");
}

int sgn_backup_reminder(struct sgn_engine *e, time_t now, char *msg, size_t msg_size)
{
    struct pol_state st;
    struct itl_error pe;
    uint8_t sha[32];

    if (!e->use_state || e->cfg.policy.backup == POL_BACKUP_OFF)
        return 0;
    if (e->unlock) {
        if (eng_unlock_cert_sha256(e, sha) != 0)
            return 0; /* not unlocked yet: its certificate is not known */
    } else {
        struct sgn_result r = {0};
        struct eng_key *k = eng_role_key(e, POL_KEY_RECOVERY, &r);
        if (!k)
            return 0; /* no recovery key on the token: nothing to back up yet */
        memcpy(sha, k->cf.sha256, sizeof sha);
    }
    if (pol_state_load(e->cfg.state_dir, &st, &pe) != 0 ||
        !pol_backup_warning_due(&e->cfg, &st, sha, now) ||
        pol_state_record_backup_warning(e->cfg.state_dir, now, &pe) != 0)
        return 0;
    snprintf(msg, msg_size, "ITLRecoveryCertBackup: %s", POL_BACKUP_WARNING);
    return 1;
}

void sgn_audit_event(struct sgn_engine *e, const struct pol_peer *peer, const char *op,
                     const char *result, const char *rule, const char *message)
{
    struct pol_audit_record rec = {
        .time = time(NULL),
        .peer = peer,
        .op = op,
        .result = result,
        .rule = rule,
        .message = message,
    };
    struct itl_error pe;

    atomic_fetch_add(&e->requests, 1);
    atomic_fetch_add(&e->failures, 1);
    if (e->audit && pol_audit_write(e->audit, &rec, &pe) != 0)
        fprintf(stderr, "itl-sign: audit log: %s\n", pe.msg);
}
