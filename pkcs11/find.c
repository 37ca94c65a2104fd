/* SPDX-License-Identifier: MIT */
/*
 * Finding the one token a URI names, by its token info and never by slot number: at open, and
 * again after a rebuild (by label + serial, since slot ids change), re-initialising the module
 * when the token vanished from it.
 */
#include "pkcs11/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define SLOTS_GUESS 16

static int slot_list(CK_FUNCTION_LIST *mod, CK_SLOT_ID **out, CK_ULONG *n, struct itl_error *err)
{
    CK_RV rv;

    *out = NULL;
    *n = 0;
    for (int tries = 0; tries < 4; tries++) {
        /* First with room for SLOTS_GUESS slots: one call where most modules have a few;
         * CKR_BUFFER_TOO_SMALL says how many there are, and the next round asks for that. */
        CK_ULONG count = SLOTS_GUESS;
        CK_SLOT_ID *slots;
        if (tries > 0) {
            count = 0;
            rv = mod->C_GetSlotList(CK_TRUE, NULL, &count);
            if (rv != CKR_OK)
                return tok_ckr_err(err, rv, "listing slots (C_GetSlotList)");
        }
        slots = calloc(count ? count : 1, sizeof *slots);
        if (!slots)
            return err_set(err, ITL_E_DEVICE, "out of memory");
        rv = mod->C_GetSlotList(CK_TRUE, slots, &count);
        if (rv == CKR_BUFFER_TOO_SMALL) { /* more than the guess, or a token just arrived */
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

    if (t->uri_names_module &&
        (mod->C_GetInfo(&info) != CKR_OK || !p11_kit_uri_match_module_info(t->uri, &info)))
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
        CK_TOKEN_INFO padded;
        CK_SLOT_INFO si;
        if (mod->C_GetTokenInfo(slots[i], &ft.info) != CKR_OK)
            continue; /* removed meanwhile */
        if (!(ft.info.flags & CKF_TOKEN_INITIALIZED))
            continue; /* SoftHSM2's free slot and blank cards are nobody's token */
        if (push_token(&s->all, &s->n_all, &ft) != 0)
            goto oom;
        padded = ft.info;
        tok_blank_pad_token_info(&padded);
        if (!matches_module || !p11_kit_uri_match_token_info(t->uri, &padded))
            continue;
        if (t->uri_names_slot && mod->C_GetSlotInfo(slots[i], &si) == CKR_OK &&
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

int tok_select_token(struct tok *t, struct itl_error *err)
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
    t->open_info = s.match[0].info;
    clock_gettime(CLOCK_MONOTONIC, &t->open_info_at);
    t->have_open_info = 1;
    rc = 0;
    {
        CK_ULONG max = s.match[0].info.ulMaxSessionCount;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t want = t->opts.pool_size ? t->opts.pool_size : (size_t)(cpus > 0 ? cpus : 1);
        /* One session is the login session; the rest is the pool. A token of one session
         * signs on the login session (tok_run_with): no pool. */
        t->pool_requested = t->opts.pool_size;
        t->one_session = max == 1;
        if (max != CK_EFFECTIVELY_INFINITE && max != CK_UNAVAILABLE_INFORMATION && max > 1 &&
            want > max - 1)
            want = max - 1;
        if (t->one_session)
            want = 1;
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
        tok_module_finalize(t);
    rv = tok_module_initialize(t);
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
