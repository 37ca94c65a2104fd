/* SPDX-License-Identifier: MIT */
/*
 * The request engine: its life (configuration, token, audit log, counters) and the path of a
 * request. Direct mode and the service both call sgn_execute(), so a rule holds the same way
 * whichever path a request takes:
 *   check_access (may this peer run the operation) → eng_op_* (ops.c: key, policy, format and
 *   token signing) → eng_release_check (release.c: every output parsed again, of the
 *   operation's kind) → eng_audit_result (audit_rec.c: one record, and a lone sign's intent
 *   record before its signature; nothing is released if it cannot be written).
 */
#include "signer/signer.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
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
    e->boot = *opts->cfg;
    e->cur = calloc(1, sizeof *e->cur);
    if (!e->cur) {
        free(e);
        err_set(err, ITL_E_INTERNAL, "out of memory");
        return -1;
    }
    atomic_init(&e->cur->refs, 1);
    e->cur->generation = 1;
    e->cur->cfg = *opts->cfg;
    pthread_mutex_init(&e->cfg_lock, NULL);
    e->tok = opts->tok;
    e->audit = opts->audit;
    e->check_access = opts->check_access;
    e->use_state = opts->use_state;
    e->direct = opts->direct;
    pthread_mutex_init(&e->keys_lock, NULL);
    if (e->boot.recovery_unlock.mode == POL_UNLOCK_MANUAL && eng_unlock_new(e, err) != 0) {
        pthread_mutex_destroy(&e->keys_lock);
        pthread_mutex_destroy(&e->cfg_lock);
        free(e->cur);
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

/* ---- Configuration generations ---- */

const struct pol_config *sgn_config_hold(struct sgn_engine *e, unsigned long *generation)
{
    struct eng_config *c;

    pthread_mutex_lock(&e->cfg_lock);
    c = e->cur;
    atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&e->cfg_lock);
    if (generation)
        *generation = c->generation;
    return &c->cfg;
}

static void config_unref(struct eng_config *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        free(c);
}

void sgn_config_release(struct sgn_engine *e, const struct pol_config *cfg)
{
    (void)e;
    if (cfg)
        config_unref((struct eng_config *)((char *)cfg - offsetof(struct eng_config, cfg)));
}

unsigned long sgn_engine_set_config(struct sgn_engine *e, const struct pol_config *next)
{
    struct eng_config *c = calloc(1, sizeof *c), *old;
    unsigned long gen;

    if (!c)
        return 0;
    atomic_init(&c->refs, 1);
    c->cfg = *next;
    pthread_mutex_lock(&e->cfg_lock);
    old = e->cur;
    gen = c->generation = old->generation + 1;
    e->cur = c;
    pthread_mutex_unlock(&e->cfg_lock);
    config_unref(old); /* freed here, or by the last request still holding it */
    return gen;
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
    config_unref(e->cur);
    pthread_mutex_destroy(&e->cfg_lock);
    pthread_mutex_destroy(&e->keys_lock);
    free(e);
}

/* ---- Audit and dispatch ---- */

static int check_access(const struct eng_op_ctx *o, enum pol_op op, struct sgn_result *r)
{
    struct pol_decision d = {0};

    if (!o->e->check_access)
        return 0;
    pol_check_access(o->cfg, o->peer, op, &d);
    if (d.allow)
        return 0;
    eng_fail(r, SGN_E_DENIED, "%s", d.message);
    snprintf(r->rule, sizeof r->rule, "%s", d.rule[0] ? d.rule : "access");
    return -1;
}

void eng_execute(struct sgn_engine *e, const struct pol_config *cfg, const struct pol_peer *peer,
                 const struct sgn_request *req, struct sgn_result *r, unsigned long long *seq,
                 int intent)
{
    struct eng_op_ctx o = {
        .e = e, .cfg = cfg, .peer = peer, .req = req, .r = r, .intent_allowed = intent};
    int held = 0;

    memset(r, 0, sizeof *r);
    atomic_fetch_add(&e->requests, 1);
    /* Its record will come (eng_audit_result): a flush meanwhile waits for it and covers it. */
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
    } else if (check_access(&o, req->op, r) == 0 && (held = eng_unlock_enter(&o)) >= 0) {
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
    eng_audit_result(e, peer, req, &o, r, seq);
    if (r->status != SGN_OK)
        atomic_fetch_add(&e->failures, 1);
}

void sgn_execute(struct sgn_engine *e, const struct pol_peer *peer, const struct sgn_request *req,
                 struct sgn_result *r)
{
    const struct pol_config *cfg = sgn_config_hold(e, NULL);

    eng_execute(e, cfg, peer, req, r, NULL, 1);
    sgn_config_release(e, cfg);
}

void sgn_execute_grouped(struct sgn_engine *e, const struct pol_peer *peer,
                         const struct sgn_request *req, struct sgn_result *r)
{
    const struct pol_config *cfg = sgn_config_hold(e, NULL);

    eng_execute(e, cfg, peer, req, r, NULL, 0);
    sgn_config_release(e, cfg);
}

void sgn_execute_deferred(struct sgn_engine *e, const struct pol_peer *peer,
                          const struct sgn_request *req, struct sgn_result *r,
                          unsigned long long *seq)
{
    const struct pol_config *cfg = sgn_config_hold(e, NULL);

    *seq = 0;
    eng_execute(e, cfg, peer, req, r, seq, 0);
    sgn_config_release(e, cfg);
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
    const struct pol_config *cfg;
    uint8_t sha[32];
    int due = 0;

    if (!e->use_state)
        return 0;
    cfg = sgn_config_hold(e, NULL);
    if (cfg->policy.backup == POL_BACKUP_OFF)
        goto out;
    if (e->unlock) {
        if (eng_unlock_cert_sha256(e, sha) != 0)
            goto out; /* not unlocked yet: its certificate is not known */
    } else {
        struct sgn_result r = {0};
        struct eng_key *k = eng_role_key(e, POL_KEY_RECOVERY, &r);
        if (!k)
            goto out; /* no recovery key on the token: nothing to back up yet */
        memcpy(sha, k->cf.sha256, sizeof sha);
    }
    if (pol_state_load(cfg->state_dir, &st, &pe) != 0 ||
        !pol_backup_warning_due(cfg, &st, sha, now) ||
        pol_state_record_backup_warning(cfg->state_dir, now, &pe) != 0)
        goto out;
    snprintf(msg, msg_size, "ITLRecoveryCertBackup: %s", POL_BACKUP_WARNING);
    due = 1;
out:
    sgn_config_release(e, cfg);
    return due;
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
