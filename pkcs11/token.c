/* SPDX-License-Identifier: MIT */
/*
 * Opening a token: load the module through p11-kit, find the one token the URI names (by its
 * token info, never by slot number), hold one login, and keep a bounded pool of sessions.
 *
 * Rebuilding: when a session, the login or the token is lost, every session of ours is closed,
 * the token is found again by label + serial (slot ids change), a new login session is opened
 * and the held PIN is sent once. A generation counter tells pool sessions and key handles that
 * they belong to an older world and must be opened / found again.
 *
 * Here: finding the token the URI names and opening it; status and test hooks.
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

/* ---- Finding the token ---- */

struct found_token {
    CK_FUNCTION_LIST *mod;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO info;
};

struct token_search {
    struct found_token *all;
    size_t n_all;
    struct found_token *match;
    size_t n_match;
};

static int slot_list(CK_FUNCTION_LIST *mod, CK_SLOT_ID **out, CK_ULONG *n, struct itl_error *err)
{
    CK_RV rv;

    *out = NULL;
    *n = 0;
    for (int tries = 0; tries < 3; tries++) {
        CK_ULONG count = 0;
        CK_SLOT_ID *slots;
        rv = mod->C_GetSlotList(CK_TRUE, NULL, &count);
        if (rv != CKR_OK)
            return tok_ckr_err(err, rv, "listing slots (C_GetSlotList)");
        slots = calloc(count ? count : 1, sizeof *slots);
        if (!slots)
            return err_set(err, ITL_E_DEVICE, "out of memory");
        rv = mod->C_GetSlotList(CK_TRUE, slots, &count);
        if (rv == CKR_BUFFER_TOO_SMALL) { /* a token arrived between the two calls */
            free(slots);
            continue;
        }
        if (rv != CKR_OK) {
            free(slots);
            return tok_ckr_err(err, rv, "listing slots (C_GetSlotList)");
        }
        *out = slots;
        *n = count;
        return 0;
    }
    return err_set(err, ITL_E_DEVICE, "the slot list keeps changing (C_GetSlotList)");
}

static int push_token(struct found_token **arr, size_t *n, const struct found_token *ft)
{
    struct found_token *grown = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!grown)
        return -1;
    grown[*n] = *ft;
    *arr = grown;
    (*n)++;
    return 0;
}

static int module_matches(const struct tok *t, CK_FUNCTION_LIST *mod)
{
    CK_INFO info;
    const char *want;

    if (mod->C_GetInfo(&info) != CKR_OK)
        return 0;
    if (!p11_kit_uri_match_module_info(t->uri, &info))
        return 0;
    want = p11_kit_uri_get_module_name(t->uri);
    if (want && t->modules) {
        char *name = p11_kit_module_get_name(mod);
        int same = name && strcmp(name, want) == 0;
        free(name);
        if (!same)
            return 0;
    }
    return 1;
}

static int search_module(struct tok *t, CK_FUNCTION_LIST *mod, struct token_search *s,
                         struct itl_error *err)
{
    CK_SLOT_ID *slots;
    CK_ULONG n;
    int matches_module = module_matches(t, mod);

    if (slot_list(mod, &slots, &n, err) != 0)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        struct found_token ft = {.mod = mod, .slot = slots[i]};
        CK_SLOT_INFO si;
        if (mod->C_GetTokenInfo(slots[i], &ft.info) != CKR_OK)
            continue; /* removed meanwhile */
        if (!(ft.info.flags & CKF_TOKEN_INITIALIZED))
            continue; /* SoftHSM2's free slot and blank cards are nobody's token */
        if (push_token(&s->all, &s->n_all, &ft) != 0)
            goto oom;
        if (!matches_module || !p11_kit_uri_match_token_info(t->uri, &ft.info))
            continue;
        if (mod->C_GetSlotInfo(slots[i], &si) == CKR_OK &&
            !p11_kit_uri_match_slot_info(t->uri, &si))
            continue;
        if (push_token(&s->match, &s->n_match, &ft) != 0)
            goto oom;
    }
    free(slots);
    return 0;
oom:
    free(slots);
    return err_set(err, ITL_E_DEVICE, "out of memory");
}

static void describe_tokens(const struct found_token *arr, size_t n, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        char label[33], serial[17], manuf[33], model[17];
        int w;
        tok_padded_to_str(arr[i].info.label, 32, label, sizeof label);
        tok_padded_to_str(arr[i].info.serialNumber, 16, serial, sizeof serial);
        tok_padded_to_str(arr[i].info.manufacturerID, 32, manuf, sizeof manuf);
        tok_padded_to_str(arr[i].info.model, 16, model, sizeof model);
        w = snprintf(out + used, size - used, "%stoken='%s' serial=%s manufacturer='%s' model='%s'",
                     i ? "; " : "", label, serial, manuf, model);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int select_token(struct tok *t, struct itl_error *err)
{
    struct token_search s = {0};
    char list[ITL_ERROR_LEN];
    int rc = -1;

    if (t->modules) {
        for (size_t i = 0; t->modules[i]; i++)
            if (search_module(t, t->modules[i], &s, err) != 0)
                goto out;
    } else if (search_module(t, t->mod, &s, err) != 0) {
        goto out;
    }
    describe_tokens(s.n_match > 1 ? s.match : s.all, s.n_match > 1 ? s.n_match : s.n_all, list,
                    sizeof list);
    if (s.n_match == 0) {
        if (s.n_all == 0)
            err_set(err, ITL_E_NO_TOKEN,
                    "token not present: no initialised token in %s matches %s (is "
                    "SOFTHSM2_CONF set, the token created by this user, the HSM reachable?)",
                    t->module_name, t->uri_text);
        else
            err_set(err, ITL_E_NO_TOKEN,
                    "token not present: no token matches %s; tokens present: %s", t->uri_text,
                    list);
        goto out;
    }
    if (s.n_match > 1) {
        err_set(err, ITL_E_AMBIGUOUS,
                "%s matches %zu tokens, refusing to guess: %s; add serial=... to the URI",
                t->uri_text, s.n_match, list);
        goto out;
    }
    t->mod = s.match[0].mod;
    t->slot = s.match[0].slot;
    memcpy(t->label, s.match[0].info.label, sizeof t->label);
    memcpy(t->serial, s.match[0].info.serialNumber, sizeof t->serial);
    tok_padded_to_str(t->label, 32, t->label_str, sizeof t->label_str);
    tok_padded_to_str(t->serial, 16, t->serial_str, sizeof t->serial_str);
    t->login_needed = (s.match[0].info.flags & CKF_LOGIN_REQUIRED) != 0;
    t->protected_path = (s.match[0].info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
    rc = 0;
    {
        CK_ULONG max = s.match[0].info.ulMaxSessionCount;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t want = t->opts.pool_size ? t->opts.pool_size : (size_t)(cpus > 0 ? cpus : 1);
        /* One session is the login session; the rest is the pool. */
        if (max != CK_EFFECTIVELY_INFINITE && max != CK_UNAVAILABLE_INFORMATION && max > 1 &&
            want > max - 1)
            want = max - 1;
        t->pool_size = want ? want : 1;
    }
out:
    free(s.all);
    free(s.match);
    return rc;
}

/* The token again after a rebuild: same label and serial, any slot. */
static int refind_token(struct tok *t, struct itl_error *err)
{
    CK_SLOT_ID *slots;
    CK_ULONG n;

    if (slot_list(t->mod, &slots, &n, err) != 0)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (t->mod->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if (memcmp(info.label, t->label, sizeof t->label) == 0 &&
            memcmp(info.serialNumber, t->serial, sizeof t->serial) == 0) {
            pthread_rwlock_wrlock(&t->module_lock); /* status reads it meanwhile */
            t->slot = slots[i];
            pthread_rwlock_unlock(&t->module_lock);
            free(slots);
            return 0;
        }
    }
    free(slots);
    err_set(err, ITL_E_NO_TOKEN, "token not present: token '%s' (serial %s) is not in %s",
            t->label_str, t->serial_str, t->module_name);
    if (err)
        err->ckr = CKR_TOKEN_NOT_PRESENT;
    return -1;
}

/* A module may keep answering for a token that went away until it is initialised again:
 * SoftHSM2 reads its token directories only in C_Initialize, so a token directory moved away
 * and back stays lost (C_GetTokenInfo: CKR_GENERAL_ERROR) for the life of the module. Called by
 * tok_rebuild with the pool drained and mgmt_lock + rebuild_lock held; the write lock keeps
 * status and mechanism queries out, so no other thread is inside the module at C_Finalize.
 * Every session and the login are gone afterwards. */
static int reinit_module(struct tok *t, struct itl_error *err)
{
    char what[600];
    CK_RV rv;

    pthread_rwlock_wrlock(&t->module_lock);
    if (!t->module_down)
        (void)p11_kit_module_finalize(t->mod);
    rv = p11_kit_module_initialize(t->mod);
    t->module_down = rv != CKR_OK;
    pthread_rwlock_unlock(&t->module_lock);
    if (rv == CKR_OK)
        return 0;
    snprintf(what, sizeof what,
             "token not present: token '%s' is gone, and initialising the PKCS#11 module %s "
             "again (C_Initialize) failed",
             t->label_str, t->module_name);
    tok_ckr_err(err, rv, what);
    err->cls = ITL_E_NO_TOKEN; /* err is never NULL here: tok_find_token_again's own */
    err->ckr = CKR_TOKEN_NOT_PRESENT;
    return -1;
}

/* The token by label + serial; when the module cannot see it, once more after initialising the
 * module again. */
int tok_find_token_again(struct tok *t, struct itl_error *err)
{
    struct itl_error e = {0};
    size_t used;

    if (refind_token(t, NULL) == 0)
        return 0;
    if (reinit_module(t, &e) == 0) {
        if (refind_token(t, &e) == 0)
            return 0;
        used = strlen(e.msg);
        snprintf(e.msg + used, sizeof e.msg - used,
                 ", even after initialising the module again: plug the token in or check the "
                 "HSM connection (SoftHSM2: its token directory)");
    }
    if (err)
        *err = e;
    return -1;
}

static int parse_uri(struct tok *t, struct itl_error *err)
{
    const char *text = t->opts.uri ? t->opts.uri : "pkcs11:";
    char *formatted = NULL;
    int rc;

    t->uri = p11_kit_uri_new();
    if (!t->uri)
        return err_set(err, ITL_E_USAGE, "out of memory");
    rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, t->uri);
    if (rc != P11_KIT_URI_OK)
        return err_set(err, ITL_E_USAGE,
                       "the token URI is not a valid RFC 7512 PKCS#11 URI: %s (expected e.g. "
                       "'pkcs11:token=itl-sign;serial=...')",
                       p11_kit_uri_message(rc));
    /* pin-value would mean the PIN was on the command line, readable in /proc by anyone. */
    if (p11_kit_uri_get_pin_value(t->uri))
        return err_set(err, ITL_E_USAGE,
                       "the token URI carries pin-value: a PIN in a URI ends up in argv and "
                       "logs; use --pin-file, --pin-fd or pin-source=file:PATH");
    if (p11_kit_uri_any_unrecognized(t->uri))
        return err_set(err, ITL_E_USAGE,
                       "the token URI has attributes p11-kit does not know (a typo? use "
                       "token=, serial=, manufacturer=, model=, object=, id=, type=)");
    if (p11_kit_uri_get_slot_id(t->uri) != (CK_SLOT_ID)-1)
        return err_set(err, ITL_E_USAGE,
                       "the token URI selects by slot-id: slot numbers change when tokens are "
                       "added or re-initialised; select by token= and serial= instead");
    if (p11_kit_uri_format(t->uri, P11_KIT_URI_FOR_TOKEN, &formatted) == P11_KIT_URI_OK) {
        snprintf(t->uri_text, sizeof t->uri_text, "%s",
                 strcmp(formatted, "pkcs11:") ? formatted : "pkcs11: (any token)");
        free(formatted);
    }
    return 0;
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

int tok_open(const struct tok_options *opts, struct tok **out, struct itl_error *err)
{
    struct tok *t;

    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    t = calloc(1, sizeof *t);
    if (!t)
        return err_set(err, ITL_E_DEVICE, "out of memory");
    t->opts = *opts;
    t->opts.module = NULL; /* only for tok_load_modules below; not kept */
    t->opts.uri = NULL;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->rebuild_lock, NULL);
    pthread_mutex_init(&t->mgmt_lock, NULL);
    pthread_mutex_init(&t->pin_lock, NULL);
    pthread_rwlock_init(&t->module_lock, NULL);
    pthread_cond_init(&t->free_session, NULL);
    pthread_cond_init(&t->drained, NULL);
    t->opts.uri = opts->uri;
    if (parse_uri(t, err) != 0)
        goto fail;
    t->opts.uri = NULL;
    t->opts.module = opts->module;
    if (tok_load_modules(t, err) != 0)
        goto fail;
    t->opts.module = NULL;
    if (select_token(t, err) != 0)
        goto fail;
    t->pool = calloc(t->pool_size, sizeof *t->pool);
    if (!t->pool) {
        err_set(err, ITL_E_DEVICE, "out of memory");
        goto fail;
    }
    if (tok_open_login_session(t, err) != 0)
        goto fail;
    t->present = 1;
    *out = t;
    return 0;
fail:
    t->opts.module = NULL;
    t->opts.uri = NULL;
    tok_close(t);
    return -1;
}

void tok_close(struct tok *t)
{
    if (!t)
        return;
    if (t->mod && t->have_login_session) {
        if (t->logged_in && t->login_needed)
            (void)t->mod->C_Logout(t->login_session);
        (void)t->mod->C_CloseAllSessions(t->slot);
    }
    if (t->modules) {
        p11_kit_modules_finalize_and_release(t->modules);
    } else if (t->mod) {
        if (!t->module_down)
            (void)p11_kit_module_finalize(t->mod);
        p11_kit_module_release(t->mod);
    }
    if (t->uri)
        p11_kit_uri_free(t->uri);
    tok_pin_wipe(&t->pin);
    free(t->pool);
    free(t->module_name);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->rebuild_lock);
    pthread_mutex_destroy(&t->mgmt_lock);
    pthread_mutex_destroy(&t->pin_lock);
    pthread_rwlock_destroy(&t->module_lock);
    pthread_cond_destroy(&t->free_session);
    pthread_cond_destroy(&t->drained);
    free(t);
}

/* ---- Status and test hooks ---- */

int tok_get_status(struct tok *t, struct tok_status *st, struct itl_error *err)
{
    CK_TOKEN_INFO info;
    int rc;

    if (err)
        memset(err, 0, sizeof *err);
    memset(st, 0, sizeof *st);
    snprintf(st->label, sizeof st->label, "%s", t->label_str);
    snprintf(st->serial, sizeof st->serial, "%s", t->serial_str);
    rc = tok_token_info(t, &info, err);
    /* Found again now if it came back, as a request would: status must not go on saying "not
     * present" (or "present" with a module that lost it) until someone signs. */
    if (rc != 0 && tok_rebuild(t, tok_generation(t), err) == 0) {
        if (err)
            memset(err, 0, sizeof *err);
        rc = tok_token_info(t, &info, err);
    }
    if (rc == 0) {
        st->present = 1;
        tok_padded_to_str(info.manufacturerID, 32, st->manufacturer, sizeof st->manufacturer);
        tok_padded_to_str(info.model, 16, st->model, sizeof st->model);
        st->flags = info.flags;
    }
    pthread_mutex_lock(&t->lock);
    st->logged_in = rc == 0 && t->logged_in;
    st->pool_size = t->pool_size;
    st->pool_in_use = t->pool_in_use;
    st->rebuilds = t->rebuilds;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

CK_RV tok_test_close_all_sessions(struct tok *t)
{
    CK_RV rv;

    pthread_mutex_lock(&t->mgmt_lock);
    pthread_mutex_lock(&t->lock);
    tok_pool_drain(t);
    pthread_mutex_unlock(&t->lock);
    rv = t->mod->C_CloseAllSessions(t->slot);
    tok_pool_resume(t);
    pthread_mutex_unlock(&t->mgmt_lock);
    return rv;
}

unsigned long tok_test_login_calls(struct tok *t)
{
    unsigned long n;
    pthread_mutex_lock(&t->pin_lock);
    n = t->login_calls;
    pthread_mutex_unlock(&t->pin_lock);
    return n;
}
