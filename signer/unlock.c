/* SPDX-License-Identifier: MIT */
/*
 * keys.recovery.unlock: manual, the recovery key offline until an operator unlocks it.
 *
 * The recovery key lives on keys.recovery.token, a token (or slot) of its own whose login the
 * service does not hold. `itl-sign unlock --key recovery [--for D]` sends that token's PIN; the
 * service opens the token, logs in, finds the key and keeps the session for D (at most
 * keys.recovery.unlock-max). At the deadline a timer thread locks it again (logs out and closes
 * the token, and with it the PIN copy the token layer keeps in locked memory for a re-login),
 * as do `itl-sign lock --key recovery` and the service's stop. The anchor is pesign's model:
 * the daemon signs with a token only after an operator gave it the PIN (pesign-client
 * --unlock), and forgets it on --lock.
 *
 * An operation that uses the recovery key holds the state shared (eng_unlock_enter ..
 * eng_unlock_leave), so a lock waits for a signature in progress and never frees a key in use;
 * the rwlock prefers writers, so a stream of requests cannot hold a lock off.
 *
 * Without keys.recovery.token, (a): the recovery key is a CKA_ALWAYS_AUTHENTICATE key on the
 * service's token and the unlock gives it its own PIN (op_unlock_key_pin).
 *
 * A PIN the token rejected is never sent again, as pkcs11/ never resends a rejected login PIN:
 * each unlock is a new login, so a salted SHA-256 of every rejected PIN is kept (salt random,
 * of this process, never stored) and that PIN is refused before any C_Login.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/common.h"
#include "pkcs11/token.h"
#include "signer/internal.h"

#define LOCKED_TEXT "the recovery key is locked: run itl-sign unlock --key recovery"
/* Direct mode has no service to unlock it, and the unlock is the operator's act, not the config's.
 */
#define LOCKED_DIRECT_TEXT                                                                         \
    "the recovery key is locked (keys.recovery.unlock: manual) and direct mode cannot unlock "     \
    "it: run this through itl-signd after itl-sign unlock --key recovery"

static const char *locked_text(const struct sgn_engine *e)
{
    return e->direct ? LOCKED_DIRECT_TEXT : LOCKED_TEXT;
}

struct eng_unlock {
    pthread_rwlock_t use; /* the session below: shared by operations, exclusive to change it */
    struct tok *tok;      /* the recovery token, logged in; NULL while locked */
    struct eng_key *key;  /* the recovery key on it */
    int owns;             /* 1: tok and key are the unlock's (keys.recovery.token); 0: the
                             engine's, the key unlocked by its own PIN (CKA_ALWAYS_AUTHENTICATE) */
    time_t until;         /* the deadline, wall clock (status, audit) */
    long granted_s;
    uid_t by_uid;
    unsigned long gen;   /* bumped by every unlock and lock: a stale timer does nothing */
    char last_lock[192]; /* why it locked last ("" = not since the start) */

    pthread_mutex_t mu; /* the recovery certificate */
    int have_cert;
    uint8_t cert_sha256[32];
    struct eng_rejected_pins rejected;

    pthread_mutex_t tmu; /* the timer: sleeps on tcond until the armed deadline */
    pthread_cond_t tcond;
    int stopping, armed;
    unsigned long armed_gen;
    struct timespec armed_deadline; /* CLOCK_MONOTONIC */
    pthread_t timer;
};

/* ---- Audit records of locks no request asked for (the timer, the stop) ---- */

static void audit_lock(struct sgn_engine *e, const char *why)
{
    struct pol_audit_record rec = {
        .time = time(NULL),
        .op = "lock",
        .key = e->boot.keys[POL_KEY_RECOVERY].label,
        .result = "ok",
        .message = why,
    };
    struct itl_error pe;

    if (e->audit && pol_audit_write(e->audit, &rec, &pe) != 0)
        fprintf(stderr, "itl-sign: audit log: %s\n", pe.msg);
}

/* ---- The session ---- */

static void arm(struct eng_unlock *u, int on, unsigned long gen, long seconds)
{
    pthread_mutex_lock(&u->tmu);
    u->armed = on;
    u->armed_gen = gen;
    clock_gettime(CLOCK_MONOTONIC, &u->armed_deadline);
    u->armed_deadline.tv_sec += seconds;
    pthread_cond_signal(&u->tcond);
    pthread_mutex_unlock(&u->tmu);
}

/* Locks (only the unlock `gen` when check_gen): 1 when it was unlocked, 0 when not. */
static int lock_now(struct sgn_engine *e, int check_gen, unsigned long gen, const char *why)
{
    struct eng_unlock *u = e->unlock;
    struct tok *t;
    struct eng_key *k;

    pthread_rwlock_wrlock(&u->use);
    if (!u->tok || (check_gen && u->gen != gen)) {
        pthread_rwlock_unlock(&u->use);
        return 0;
    }
    t = u->owns ? u->tok : NULL;
    k = u->owns ? u->key : NULL;
    if (!u->owns) { /* the key's own PIN: wiped, nothing is sent for it until the next unlock */
        struct itl_error ignored;
        tok_key_set_context_pin(u->key->key, NULL, &ignored);
    }
    u->tok = NULL;
    u->key = NULL;
    u->gen++;
    snprintf(u->last_lock, sizeof u->last_lock, "%s", why);
    arm(u, 0, 0, 0); /* under the state lock: an unlock right after cannot be disarmed */
    pthread_rwlock_unlock(&u->use);
    eng_key_free(k);
    tok_close(t); /* C_Logout, sessions closed, the token layer's PIN copy wiped */
    return 1;
}

/* The timer: a thread of its own, so the lock comes back at the deadline whether or not a
 * request arrives. */
static void *timer_main(void *arg)
{
    struct sgn_engine *e = arg;
    struct eng_unlock *u = e->unlock;
    struct timespec now;

    pthread_mutex_lock(&u->tmu);
    while (!u->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!u->armed) {
            pthread_cond_wait(&u->tcond, &u->tmu);
        } else if (now.tv_sec < u->armed_deadline.tv_sec ||
                   (now.tv_sec == u->armed_deadline.tv_sec &&
                    now.tv_nsec < u->armed_deadline.tv_nsec)) {
            pthread_cond_timedwait(&u->tcond, &u->tmu, &u->armed_deadline);
        } else {
            unsigned long gen = u->armed_gen;
            char why[192];
            u->armed = 0;
            pthread_mutex_unlock(&u->tmu);
            pthread_rwlock_rdlock(&u->use);
            snprintf(why, sizeof why, "locked: the unlock of %ld s by uid %u ended", u->granted_s,
                     (unsigned)u->by_uid);
            pthread_rwlock_unlock(&u->use);
            if (lock_now(e, 1, gen, why))
                audit_lock(e, why);
            pthread_mutex_lock(&u->tmu);
        }
    }
    pthread_mutex_unlock(&u->tmu);
    return NULL;
}

int eng_unlock_new(struct sgn_engine *e, struct itl_error *err)
{
    struct eng_unlock *u = calloc(1, sizeof *u);
    pthread_rwlockattr_t ra;
    pthread_condattr_t ca;

    if (!u)
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    if (eng_rejected_init(&u->rejected, err) != 0) {
        free(u);
        return -1;
    }
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&u->use, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->tcond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&u->mu, NULL);
    pthread_mutex_init(&u->tmu, NULL);
    e->unlock = u;
    if (pthread_create(&u->timer, NULL, timer_main, e) != 0) {
        e->unlock = NULL;
        pthread_rwlock_destroy(&u->use);
        pthread_cond_destroy(&u->tcond);
        pthread_mutex_destroy(&u->mu);
        pthread_mutex_destroy(&u->tmu);
        eng_rejected_free(&u->rejected);
        free(u);
        return err_set(err, ITL_E_INTERNAL, "cannot start the recovery key's lock timer");
    }
    return 0;
}

void eng_unlock_free(struct sgn_engine *e)
{
    struct eng_unlock *u = e->unlock;
    const char *why = "locked: the service is stopping";

    if (!u)
        return;
    pthread_mutex_lock(&u->tmu);
    u->stopping = 1;
    pthread_cond_signal(&u->tcond);
    pthread_mutex_unlock(&u->tmu);
    pthread_join(u->timer, NULL);
    if (lock_now(e, 0, 0, why))
        audit_lock(e, why);
    pthread_rwlock_destroy(&u->use);
    pthread_cond_destroy(&u->tcond);
    pthread_mutex_destroy(&u->mu);
    pthread_mutex_destroy(&u->tmu);
    eng_rejected_free(&u->rejected);
    OPENSSL_cleanse(u, sizeof *u);
    free(u);
    e->unlock = NULL;
}

/* ---- Operations that use the recovery key ---- */

static int is_recovery(const struct sgn_engine *e, const char *key)
{
    return key &&
           (strcmp(key, "recovery") == 0 || strcmp(key, e->boot.keys[POL_KEY_RECOVERY].label) == 0);
}

/* Does the request sign with (or manage) the recovery key? */
static int uses_recovery(struct eng_op_ctx *o)
{
    struct sgn_result scratch;
    enum pol_key_role role;

    switch (o->req->op) {
    case POL_OP_RESET:
    case POL_OP_BUILD:
    case POL_OP_SIGN:
    case POL_OP_ENCRYPT:
        memset(&scratch, 0, sizeof scratch);
        /* an unknown key fails the same way in the operation */
        return eng_resolve_role(o->e, o->req, &role, &scratch) == 0 && role == POL_KEY_RECOVERY;
    case POL_OP_KEY:
        return is_recovery(o->e, o->req->key);
    default:
        return 0;
    }
}

int eng_unlock_enter(struct eng_op_ctx *o)
{
    struct eng_unlock *u = o->e->unlock;

    if (!u || !uses_recovery(o))
        return 0;
    if (o->req->op == POL_OP_KEY) {
        eng_fail(o->r, SGN_E_USAGE,
                 "key operations on the recovery key are not served while keys.recovery.unlock "
                 "is manual: run them in direct mode (itl-sign --token URI key ...)");
        return -1;
    }
    pthread_rwlock_rdlock(&u->use);
    if (u->tok)
        return 1;
    pthread_rwlock_unlock(&u->use);
    eng_fail(o->r, SGN_E_DENIED, "%s", locked_text(o->e));
    snprintf(o->r->rule, sizeof o->r->rule, "locked");
    return -1;
}

void eng_unlock_leave(struct sgn_engine *e)
{
    pthread_rwlock_unlock(&e->unlock->use);
}

struct eng_key *eng_signing_key(struct sgn_engine *e, enum pol_key_role role, struct sgn_result *r)
{
    if (role != POL_KEY_RECOVERY || !e->unlock)
        return eng_role_key(e, role, r);
    if (!e->unlock->key) /* eng_unlock_enter refuses first; a caller that did not enter */
        eng_fail(r, SGN_E_DENIED, "%s", locked_text(e));
    return e->unlock->key;
}
int eng_recovery_cert_sha256(struct sgn_engine *e, uint8_t sha[32])
{
    uint8_t *der = NULL;
    size_t len = 0;
    struct itl_error te = {0};

    if (e->unlock)
        return eng_unlock_cert_sha256(e, sha);
    if (tok_export_cert(e->tok, e->boot.keys[POL_KEY_RECOVERY].label, &der, &len, &te) != 0)
        return -1;
    EVP_Digest(der, len, sha, NULL, EVP_sha256(), NULL);
    free(der);
    return 0;
}

struct tok *eng_unlock_hold_token(struct sgn_engine *e)
{
    struct eng_unlock *u = e->unlock;

    pthread_rwlock_rdlock(&u->use);
    if (u->tok)
        return u->tok;
    pthread_rwlock_unlock(&u->use);
    return NULL;
}

int eng_unlock_cert_sha256(struct sgn_engine *e, uint8_t sha[32])
{
    struct eng_unlock *u = e->unlock;
    int have;

    pthread_mutex_lock(&u->mu);
    have = u->have_cert;
    if (have)
        memcpy(sha, u->cert_sha256, 32);
    pthread_mutex_unlock(&u->mu);
    return have ? 0 : -1;
}

/* ---- op unlock ---- */

/* Opens keys.recovery.token and logs in with the request's PIN: the token, or NULL with r
 * failed (a PIN the token refused is remembered, never sent again). */
static struct tok *open_recovery_token(struct eng_op_ctx *o, const struct tok_pin *pin)
{
    const struct pol_config *cfg = &o->e->boot;
    struct tok_options to = {
        .module = cfg->recovery_unlock.token.module[0] ? cfg->recovery_unlock.token.module : NULL,
        .uri = cfg->recovery_unlock.token.uri,
        .pool_size = 2, /* a rescue signs a few files, not a stream */
        .mechanism = (enum tok_mechanism)cfg->token.mechanism,
        .init_args =
            cfg->recovery_unlock.token.init_args[0] ? cfg->recovery_unlock.token.init_args : NULL,
    };
    struct itl_error te = {0};
    uint8_t digest[32] = {0};
    struct tok *t = NULL;

    if (pin->bytes) {
        eng_rejected_digest(&o->e->unlock->rejected, pin, digest);
        if (eng_rejected_has(&o->e->unlock->rejected, digest)) {
            eng_fail(o->r, SGN_E_TOKEN,
                     "this PIN was rejected by the recovery token (%s) before: the service does "
                     "not send it again; give the right PIN",
                     to.uri);
            return NULL;
        }
    }
    if (tok_open(&to, &t, &te) != 0) {
        eng_fail(o->r, eng_status_from_tok(&te), "recovery token %s: %s", to.uri, te.msg);
        return NULL;
    }
    if (tok_login(t, pin->bytes ? pin : NULL, &te) != 0) {
        int rejected = te.cls == ITL_E_PIN && tok_rv_rejects_pin(te.ckr);
        if (rejected && pin->bytes)
            eng_rejected_add(&o->e->unlock->rejected, digest);
        eng_fail(o->r, eng_status_from_tok(&te), "the recovery key stays locked: %s%s", te.msg,
                 rejected ? "; the service will not send this PIN again" : "");
        tok_close(t);
        return NULL;
    }
    OPENSSL_cleanse(digest, sizeof digest);
    return t;
}

static void unlocked_messages(struct eng_op_ctx *o, const struct eng_key *k, long secs,
                              const char *when)
{
    snprintf(o->r->message, sizeof o->r->message,
             "The recovery key is unlocked until %s (%ld s); it locks by itself then, or now with "
             "itl-sign lock --key recovery.",
             when, secs);
    snprintf(o->r->signer, sizeof o->r->signer, "%s", k->cf.subject);
    snprintf(o->audit_message, sizeof o->audit_message, "unlocked for %ld s, until %s", secs, when);
}

/* Called with the state held exclusive (released here): the unlock's deadline, armed. */
static void publish(struct eng_op_ctx *o, long secs, char when[TIME_ISO_LEN])
{
    struct eng_unlock *u = o->e->unlock;
    unsigned long gen;

    u->until = time(NULL) + secs;
    u->granted_s = secs;
    u->by_uid = o->peer ? o->peer->uid : 0;
    gen = ++u->gen;
    time_iso(u->until, when);
    arm(u, 1, gen, secs); /* under the state lock: the last change decides the timer */
    pthread_mutex_lock(&u->mu);
    memcpy(u->cert_sha256, u->key->cf.sha256, 32);
    u->have_cert = 1;
    pthread_mutex_unlock(&u->mu);
    unlocked_messages(o, u->key, secs, when); /* before a lock may free the key */
    pthread_rwlock_unlock(&u->use);
}

static void op_lock(struct eng_op_ctx *o)
{
    char why[128];

    snprintf(why, sizeof why, "locked by uid %u (itl-sign lock)",
             o->peer ? (unsigned)o->peer->uid : 0u);
    if (lock_now(o->e, 0, 0, why)) {
        snprintf(o->r->message, sizeof o->r->message,
                 "The recovery key is locked: the recovery token is logged out and closed.");
        snprintf(o->audit_message, sizeof o->audit_message, "%s", why);
    } else {
        snprintf(o->r->message, sizeof o->r->message, "The recovery key was already locked.");
        snprintf(o->audit_message, sizeof o->audit_message, "already locked");
    }
}

/* (a) No keys.recovery.token: the recovery key on the service's token is a
 * CKA_ALWAYS_AUTHENTICATE key, and the unlock gives it its own PIN for the context login
 * before each C_Sign (pkcs11: tok_key_set_context_pin), proved by a test signature. */
static void op_unlock_key_pin(struct eng_op_ctx *o, const struct tok_pin *pin, long secs)
{
    struct eng_unlock *u = o->e->unlock;
    struct itl_error te = {0};
    uint8_t digest[32], sig[1024];
    size_t sig_len = sizeof sig;
    char when[TIME_ISO_LEN];
    struct eng_key *k = eng_role_key(o->e, POL_KEY_RECOVERY, o->r);

    if (!k)
        return;
    if (!tok_key_always_authenticate(k->key)) {
        eng_fail(o->r, SGN_E_USAGE,
                 "keys.recovery.unlock: manual without keys.recovery.token needs a recovery key "
                 "with CKA_ALWAYS_AUTHENTICATE (a PIN of its own); '%s' has none: put the "
                 "recovery key on a token of its own (keys.recovery.token)",
                 tok_key_label(k->key));
        return;
    }
    if (!pin->bytes) {
        eng_fail(o->r, SGN_E_USAGE, "the unlock needs the recovery key's own PIN");
        return;
    }
    eng_rejected_digest(&u->rejected, pin, digest);
    if (eng_rejected_has(&u->rejected, digest)) {
        eng_fail(o->r, SGN_E_TOKEN,
                 "this PIN was rejected by the recovery key before: the service does not send "
                 "it again; give the right PIN");
        return;
    }
    pthread_rwlock_wrlock(&u->use);
    if (tok_key_set_context_pin(k->key, pin, &te) != 0 ||
        tok_sign_data(o->e->tok, k->key, NID_sha256, (const uint8_t *)"itl-sign unlock", 15, sig,
                      &sig_len, &te) != 0) {
        int rejected = tok_rv_rejects_pin(te.ckr);
        struct itl_error ignored;
        tok_key_set_context_pin(k->key, NULL, &ignored);
        u->tok = NULL; /* a failed unlock leaves it locked, whatever it was */
        u->key = NULL;
        u->gen++;
        arm(u, 0, 0, 0);
        pthread_rwlock_unlock(&u->use);
        if (rejected)
            eng_rejected_add(&u->rejected, digest);
        eng_fail(o->r, eng_status_from_tok(&te), "the recovery key stays locked: %s%s", te.msg,
                 rejected ? "; the service will not send this PIN again" : "");
        return;
    }
    u->tok = o->e->tok;
    u->key = k;
    u->owns = 0;
    publish(o, secs, when);
}

static void op_unlock(struct eng_op_ctx *o, const struct tok_pin *pin)
{
    struct eng_unlock *u = o->e->unlock;
    long max = o->e->boot.recovery_unlock.max_s;
    long secs = o->req->unlock_s ? (long)o->req->unlock_s : max;
    struct tok *t, *old_tok;
    struct eng_key *k, *old_key;
    char when[TIME_ISO_LEN];

    if (secs > max) {
        eng_fail(o->r, SGN_E_USAGE,
                 "--for %ld s is longer than keys.recovery.unlock-max (%ld s): ask for less, or "
                 "raise unlock-max in the config",
                 secs, max);
        return;
    }
    if (!o->e->boot.recovery_unlock.token.uri[0]) {
        op_unlock_key_pin(o, pin, secs);
        return;
    }
    if (!(t = open_recovery_token(o, pin)))
        return;
    if (!(k = eng_load_key(o->e, t, POL_KEY_RECOVERY, o->r))) {
        tok_close(t);
        return;
    }
    pthread_rwlock_wrlock(&u->use);
    old_tok = u->tok;
    old_key = u->key;
    u->tok = t;
    u->key = k;
    u->owns = 1;
    publish(o, secs, when);
    eng_key_free(old_key); /* an unlock while unlocked: the new session replaces the old */
    tok_close(old_tok);
}

void eng_op_unlock(struct eng_op_ctx *o)
{
    const struct sgn_request *req = o->req;
    struct tok_pin pin = {0};
    struct itl_error te = {0};

    o->audit_op = req->lock ? "lock" : "unlock";
    o->audit_key = o->e->boot.keys[POL_KEY_RECOVERY].label;
    if (req->key && !is_recovery(o->e, req->key))
        eng_fail(o->r, SGN_E_USAGE,
                 "unlock and lock are for the recovery key (--key recovery), "
                 "not '%s'",
                 req->key);
    else if (!o->e->unlock)
        eng_fail(o->r, SGN_E_USAGE,
                 "keys.recovery.unlock is always: the recovery key is usable whenever the service "
                 "runs, there is nothing to %s",
                 o->audit_op);
    else if (req->lock)
        op_lock(o);
    else if (req->pin_len && tok_pin_set(&pin, req->pin, req->pin_len, &te) != 0)
        eng_fail(o->r, SGN_E_USAGE, "the PIN: %s", te.msg);
    else
        op_unlock(o, &pin);
    tok_pin_wipe(&pin);
    /* The request's copy (the service's payload buffer): wiped once used. */
    if (req->pin && req->pin_len)
        OPENSSL_cleanse((void *)req->pin, req->pin_len);
}

/* ---- status ---- */

void eng_unlock_status_json(struct sgn_engine *e, struct buf *j)
{
    struct eng_unlock *u = e->unlock;
    char when[TIME_ISO_LEN];
    time_t now = time(NULL);

    if (!u) {
        buf_puts(j, "\"recovery_unlock\":{\"mode\":\"always\",\"state\":\"always\"}");
        return;
    }
    pthread_rwlock_rdlock(&u->use);
    buf_printf(j, "\"recovery_unlock\":{\"mode\":\"manual\",\"state\":\"%s\",\"unlock_max_s\":%ld",
               u->tok ? "unlocked" : "locked", e->boot.recovery_unlock.max_s);
    buf_printf(j, ",\"with\":\"%s\",\"token\":",
               e->boot.recovery_unlock.token.uri[0] ? "token" : "key-pin");
    json_cstring(j,
                 e->boot.recovery_unlock.token.uri[0] ? e->boot.recovery_unlock.token.uri : NULL);
    if (u->tok) {
        time_iso(u->until, when);
        buf_printf(j, ",\"until\":\"%s\",\"remaining_s\":%ld,\"unlocked_by_uid\":%u", when,
                   u->until > now ? (long)(u->until - now) : 0L, (unsigned)u->by_uid);
    } else if (u->last_lock[0]) {
        buf_puts(j, ",\"last_lock\":");
        json_cstring(j, u->last_lock);
    }
    buf_puts(j, "}");
    pthread_rwlock_unlock(&u->use);
}
