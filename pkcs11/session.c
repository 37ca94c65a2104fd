/* SPDX-License-Identifier: MIT */
/*
 * Rebuilding after a lost session / login / token, the bounded session pool, and the
 * common retry loop (tok_run) every token operation goes through.
 */
#include "pkcs11/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>

#define DEFAULT_RETRY_BUDGET 3

unsigned tok_budget(const struct tok *t)
{
    return t->opts.retry_budget ? t->opts.retry_budget : DEFAULT_RETRY_BUDGET;
}

void tok_backoff(unsigned attempt)
{
    struct timespec ts = {0, (long)(10 * 1000 * 1000) << (attempt < 5 ? attempt : 5)};
    nanosleep(&ts, NULL);
}

/* ---- Rebuild ---- */

static int login_session_is_user(struct tok *t)
{
    CK_SESSION_INFO si;
    return t->mod->C_GetSessionInfo(t->login_session, &si) == CKR_OK &&
           (si.state == CKS_RW_USER_FUNCTIONS || si.state == CKS_RO_USER_FUNCTIONS);
}

/* Waits until no pool session is in use and keeps new takers waiting: a session must not be
 * closed while another thread is inside a call on it. Called with t->lock held. */
void tok_pool_drain(struct tok *t)
{
    t->draining = 1;
    while (t->pool_in_use > 0)
        pthread_cond_wait(&t->drained, &t->lock);
}

void tok_pool_resume(struct tok *t)
{
    pthread_mutex_lock(&t->lock);
    t->draining = 0;
    pthread_cond_broadcast(&t->free_session);
    pthread_mutex_unlock(&t->lock);
}

int tok_rebuild(struct tok *t, unsigned long seen_generation, struct itl_error *err)
{
    int relogin;
    int rc = -1;

    pthread_mutex_lock(&t->mgmt_lock);
    pthread_mutex_lock(&t->rebuild_lock);
    pthread_mutex_lock(&t->lock);
    if (t->generation != seen_generation) {
        pthread_mutex_unlock(&t->lock);
        pthread_mutex_unlock(&t->rebuild_lock);
        pthread_mutex_unlock(&t->mgmt_lock);
        return 0; /* another thread rebuilt meanwhile */
    }
    relogin = t->want_login && t->login_needed;
    t->have_open_info = 0; /* the token is found again: what the open read is stale */
    if (relogin && t->pin_rejected) {
        pthread_mutex_unlock(&t->lock);
        pthread_mutex_unlock(&t->rebuild_lock);
        pthread_mutex_unlock(&t->mgmt_lock);
        return tok_pin_rejected_err(t, err);
    }
    tok_pool_drain(t);
    t->logged_in = 0;
    t->have_login_session = 0;
    pthread_mutex_unlock(&t->lock);

    /* Start from nothing: sessions of ours that still live would hold stale handles whose
     * numbers the module may hand out again. Every pool session and key handle becomes one of
     * an older generation, whatever happens next. */
    if (!t->module_down)
        (void)t->mod->C_CloseAllSessions(t->slot);
    if (tok_find_token_again(t, err) != 0) {
        pthread_mutex_lock(&t->lock);
        t->present = 0;
        pthread_mutex_unlock(&t->lock);
        goto out;
    }
    if (tok_open_login_session(t, err) != 0)
        goto out;
    if (relogin && !login_session_is_user(t)) {
        CK_TOKEN_INFO info;
        if (tok_token_info(t, &info, err) != 0 || tok_login_guard(&info, err) != 0 ||
            tok_do_login(t, t->login_session, CKU_USER, err) != 0)
            goto out;
    }
    pthread_mutex_lock(&t->lock);
    t->rebuilds++;
    t->present = 1;
    t->logged_in = t->want_login;
    pthread_mutex_unlock(&t->lock);
    rc = 0;
out:
    /* Bumped last, so that whoever saw the half-done state asks with the old generation and
     * finds this rebuild done. */
    pthread_mutex_lock(&t->lock);
    t->generation++;
    pthread_mutex_unlock(&t->lock);
    tok_pool_resume(t);
    pthread_mutex_unlock(&t->rebuild_lock);
    pthread_mutex_unlock(&t->mgmt_lock);
    return rc;
}

int tok_open_login_session(struct tok *t, struct itl_error *err)
{
    CK_SESSION_HANDLE h;
    CK_RV rv = CKR_OK;

    for (unsigned attempt = 0; attempt <= tok_budget(t); attempt++) {
        rv = t->mod->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h);
        if (rv != CKR_SESSION_COUNT)
            break;
        tok_backoff(attempt);
    }
    if (rv != CKR_OK)
        return tok_ckr_err(err, rv, "opening a session (C_OpenSession)");
    t->login_session = h;
    t->have_login_session = 1;
    return 0;
}

/* ---- Pool ---- */

int tok_session_get(struct tok *t, size_t *index, CK_SESSION_HANDLE *h, unsigned long *generation,
                    struct itl_error *err)
{
    struct pool_session *ps = NULL;
    unsigned long gen;
    CK_RV rv = CKR_OK;
    size_t i;

    pthread_mutex_lock(&t->lock);
    for (;;) {
        for (i = 0; i < t->pool_size && !t->draining; i++)
            if (!t->pool[i].busy)
                break;
        if (i < t->pool_size && !t->draining)
            break;
        pthread_cond_wait(&t->free_session, &t->lock);
    }
    ps = &t->pool[i];
    ps->busy = 1;
    t->pool_in_use++;
    gen = t->generation;
    *generation = gen;
    if (ps->open && ps->generation == gen) {
        *h = ps->h;
        *index = i;
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    /* Opened in an older generation: the rebuild closed it already (never close it again, its
     * handle number may belong to a new session by now). */
    ps->open = 0;
    pthread_mutex_unlock(&t->lock);

    for (unsigned attempt = 0; attempt <= tok_budget(t); attempt++) {
        rv = t->mod->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, h);
        if (rv != CKR_SESSION_COUNT)
            break;
        tok_backoff(attempt);
    }
    if (rv != CKR_OK && rv != CKR_SESSION_COUNT)
        rv = tok_failure_cause(t, CK_INVALID_HANDLE, rv);
    pthread_mutex_lock(&t->lock);
    if (rv == CKR_OK) {
        ps->h = *h;
        ps->open = 1;
        ps->generation = gen;
        *index = i;
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    ps->busy = 0;
    t->pool_in_use--;
    pthread_cond_signal(&t->free_session);
    if (t->pool_in_use == 0)
        pthread_cond_broadcast(&t->drained);
    pthread_mutex_unlock(&t->lock);
    return tok_ckr_err(err, rv, "opening a session (C_OpenSession)");
}

void tok_session_put(struct tok *t, size_t index, int broken)
{
    pthread_mutex_lock(&t->lock);
    if (broken)
        t->pool[index].open = 0;
    t->pool[index].busy = 0;
    t->pool_in_use--;
    pthread_cond_signal(&t->free_session);
    if (t->pool_in_use == 0)
        pthread_cond_broadcast(&t->drained);
    pthread_mutex_unlock(&t->lock);
}

/* A token that was absent: look again now (cheap), so callers fail fast while it is away. */
int tok_ensure_present(struct tok *t, struct itl_error *err)
{
    unsigned long gen;
    int present;

    pthread_mutex_lock(&t->lock);
    /* also a login that a failed rebuild could not restore: try (once) again now */
    present = t->present && (t->logged_in || !t->want_login);
    gen = t->generation;
    pthread_mutex_unlock(&t->lock);
    return present ? 0 : tok_rebuild(t, gen, err);
}

/* One attempt on the login session (mgmt): management operations are serialised. */
static int run_on_login_session(struct tok *t, tok_session_fn fn, void *ctx,
                                const struct tok_retry_rules *rules, unsigned long *gen,
                                struct itl_error *err)
{
    CK_SESSION_HANDLE h;
    int rc;

    pthread_mutex_lock(&t->mgmt_lock);
    pthread_mutex_lock(&t->lock);
    h = t->login_session;
    *gen = t->generation;
    rc = t->have_login_session ? 0 : -1;
    pthread_mutex_unlock(&t->lock);
    if (rc == 0) {
        if (rules && rules->session_taken)
            rules->session_taken(ctx, *gen);
        rc = fn(t, h, ctx, err);
        if (rc != 0 && !(rules && rules->fn_explains_failure))
            tok_explain_failure(t, h, err);
    } else {
        tok_ckr_err(err, CKR_SESSION_CLOSED, "the login session");
    }
    pthread_mutex_unlock(&t->mgmt_lock);
    return rc;
}

/* One attempt on a pool session, which is closed afterwards when the failure spoiled it. */
static int run_on_pool_session(struct tok *t, CK_SESSION_HANDLE h, size_t idx, unsigned long gen,
                               tok_session_fn fn, void *ctx, const struct tok_retry_rules *rules,
                               struct itl_error *err)
{
    int rc, broken;

    if (rules && rules->session_taken)
        rules->session_taken(ctx, gen);
    rc = fn(t, h, ctx, err);
    if (rc != 0 && !(rules && rules->fn_explains_failure))
        tok_explain_failure(t, h, err);
    broken = rc != 0 && (tok_rv_needs_rebuild(err->ckr) ||
                         (rules && rules->session_spoiled && rules->session_spoiled(ctx, err)));
    tok_session_put(t, idx, broken);
    return rc;
}

static int give_up(const struct tok_retry_rules *rules, void *ctx, int in_fn, int after_rebuild,
                   struct itl_error *err)
{
    if (rules && rules->give_up)
        return rules->give_up(ctx, in_fn, after_rebuild, err);
    return -1;
}

int tok_run_with(struct tok *t, int mgmt, tok_session_fn fn, void *ctx,
                 const struct tok_retry_rules *rules, struct itl_error *err)
{
    struct itl_error scratch;
    unsigned budget = tok_budget(t);

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    /* A token of one session (ulMaxSessionCount = 1) has no room for a pool: everything runs
     * on the login session, one operation at a time. */
    if (t->one_session || t->opts.login_session_only)
        mgmt = 1;
    /* Every path returns by the time attempt reaches the budget; an immediate retry the rules
     * ask for uses up an attempt like a rebuild does. */
    for (unsigned attempt = 0;; attempt++) {
        CK_SESSION_HANDLE h;
        unsigned long gen;
        size_t idx = 0;
        int rc;

        if (tok_ensure_present(t, err) != 0)
            return -1;
        if (mgmt) {
            rc = run_on_login_session(t, fn, ctx, rules, &gen, err);
        } else if (tok_session_get(t, &idx, &h, &gen, err) != 0) {
            if (rules && rules->retry_at_once && rules->retry_at_once(ctx, 0, err))
                continue;
            if (!tok_rv_needs_rebuild(err->ckr))
                return give_up(rules, ctx, 0, 0, err);
            if (attempt >= budget)
                return give_up(rules, ctx, 0, 1, err);
            if (tok_rebuild(t, gen, err) != 0)
                return -1;
            continue;
        } else {
            rc = run_on_pool_session(t, h, idx, gen, fn, ctx, rules, err);
        }
        if (rc == 0)
            return 0;
        if (rules && rules->retry_at_once && rules->retry_at_once(ctx, 1, err))
            continue;
        if (!tok_rv_needs_rebuild(err->ckr))
            return give_up(rules, ctx, 1, 0, err);
        if (attempt >= budget)
            return give_up(rules, ctx, 1, 1, err);
        if (tok_rebuild(t, gen, err) != 0)
            return -1;
    }
}

int tok_run(struct tok *t, int mgmt, tok_session_fn fn, void *ctx, struct itl_error *err)
{
    return tok_run_with(t, mgmt, fn, ctx, NULL, err);
}

unsigned long tok_generation(struct tok *t)
{
    unsigned long gen;
    pthread_mutex_lock(&t->lock);
    gen = t->generation;
    pthread_mutex_unlock(&t->lock);
    return gen;
}
