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
 * Here: opening the token the URI names (found by find.c), closing it; status and test hooks.
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

/* Which parts the URI sets, against an empty URI (p11-kit keeps unset fields as in a new one):
 * a URI without library-* or slot-* attributes matches every module and slot, and finding the
 * token then needs no C_GetInfo nor C_GetSlotInfo. */
static void note_uri_parts(struct tok *t)
{
    P11KitUri *blank = p11_kit_uri_new();

    t->uri_names_module = t->uri_names_slot = 1;
    if (!blank)
        return;
    t->uri_names_module = memcmp(p11_kit_uri_get_module_info(t->uri),
                                 p11_kit_uri_get_module_info(blank), sizeof(CK_INFO)) != 0;
    t->uri_names_slot = memcmp(p11_kit_uri_get_slot_info(t->uri), p11_kit_uri_get_slot_info(blank),
                               sizeof(CK_SLOT_INFO)) != 0;
    p11_kit_uri_free(blank);
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
                       "token=, serial=, manufacturer=, model=, object=, id=, type=; the module "
                       "goes after '?': ?module-name=NAME or ?module-path=/PATH)");
    if (p11_kit_uri_get_slot_id(t->uri) != (CK_SLOT_ID)-1)
        return err_set(err, ITL_E_USAGE,
                       "the token URI selects by slot-id: slot numbers change when tokens are "
                       "added or re-initialised; select by token= and serial= instead");
    note_uri_parts(t);
    if (p11_kit_uri_format(t->uri, P11_KIT_URI_FOR_TOKEN, &formatted) == P11_KIT_URI_OK) {
        snprintf(t->uri_text, sizeof t->uri_text, "%s",
                 strcmp(formatted, "pkcs11:") ? formatted : "pkcs11: (any token)");
        free(formatted);
    }
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
    t->opts.init_args = NULL;
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
    t->opts.init_args = opts->init_args;
    if (tok_load_modules(t, err) != 0)
        goto fail;
    t->opts.module = NULL;
    t->opts.init_args = NULL;
    if (tok_select_token(t, err) != 0)
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
    t->opts.init_args = NULL;
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
            tok_module_finalize(t);
        if (t->registered)
            p11_kit_modules_release(t->registered); /* t->mod is one of them */
        else
            p11_kit_module_release(t->mod);
    } else if (t->registered) {
        p11_kit_modules_release(t->registered);
    }
    free(t->init_args);
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
    st->pool_size = t->one_session ? 1 : t->pool_size;
    st->pool_requested = t->pool_requested;
    st->one_session = t->one_session;
    st->pin_ignored = t->pin_ignored;
    st->pool_in_use = t->pool_in_use;
    st->rebuilds = t->rebuilds;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int tok_pin_ignored(struct tok *t)
{
    int ignored;
    pthread_mutex_lock(&t->lock);
    ignored = t->pin_ignored;
    pthread_mutex_unlock(&t->lock);
    return ignored;
}

int tok_has_pin_pad(struct tok *t)
{
    int pad;
    pthread_mutex_lock(&t->lock);
    pad = t->protected_path;
    pthread_mutex_unlock(&t->lock);
    return pad;
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
