/* SPDX-License-Identifier: MIT */
/*
 * Logging in with the held PIN: a PIN the token rejected is never sent again.
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

/* ---- Login ---- */

/* Any failure of C_GetTokenInfo on the token's slot means the module cannot see the token:
 * SoftHSM2 answers CKR_GENERAL_ERROR once its token directory went away, and keeps doing so
 * after it is back until the module is initialised again. The CKR stays in the message. */
int tok_token_info(struct tok *t, CK_TOKEN_INFO *info, struct itl_error *err)
{
    CK_RV rv;

    pthread_rwlock_rdlock(&t->module_lock);
    rv = t->mod->C_GetTokenInfo(t->slot, info);
    pthread_rwlock_unlock(&t->module_lock);
    if (rv == CKR_OK && memcmp(info->label, t->label, sizeof t->label) == 0 &&
        memcmp(info->serialNumber, t->serial, sizeof t->serial) == 0)
        return 0;
    if (rv == CKR_OK)
        err_set(err, ITL_E_NO_TOKEN,
                "token not present: the slot of token '%s' (serial %s) holds another token now",
                t->label_str, t->serial_str);
    else
        err_set(err, ITL_E_NO_TOKEN,
                "token not present: the slot of token '%s' (serial %s) answers %s", t->label_str,
                t->serial_str, tok_ckr_name(rv));
    if (err)
        err->ckr = CKR_TOKEN_NOT_PRESENT;
    return -1;
}

int tok_check_present(struct tok *t, struct itl_error *err)
{
    CK_TOKEN_INFO info;
    return tok_token_info(t, &info, err);
}

CK_RV tok_failure_cause(struct tok *t, CK_SESSION_HANDLE h, CK_RV rv)
{
    if (rv == CKR_OK || tok_rv_needs_rebuild(rv) || tok_kind_for_rv(rv) == ITL_E_PIN)
        return rv;
    if (tok_check_present(t, NULL) != 0)
        return CKR_TOKEN_NOT_PRESENT;
    if ((rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) &&
        tok_session_lacks_login(t, h))
        return CKR_USER_NOT_LOGGED_IN;
    return rv;
}

void tok_explain_failure(struct tok *t, CK_SESSION_HANDLE h, struct itl_error *err)
{
    if (!err || tok_rv_needs_rebuild(err->ckr))
        return;
    if (err->cls != ITL_E_NO_KEY && err->cls != ITL_E_DEVICE)
        return; /* the caller's mistake, a PIN, a mechanism: not what a lost token looks like */
    if (tok_check_present(t, err) != 0)
        return;
    /* SoftHSM2 hides private objects without a word once the login is gone */
    if (err->cls == ITL_E_NO_KEY && tok_session_lacks_login(t, h))
        tok_ckr_err(err, CKR_USER_NOT_LOGGED_IN, "the login was lost");
}

static int pin_rv_rejects(CK_RV rv);

int tok_pin_rejected_err(struct tok *t, struct itl_error *err)
{
    err_set(err, ITL_E_PIN,
            "token '%s': the PIN was rejected earlier; not sending it again (open the token "
            "again with the right PIN)",
            t->label_str);
    err->ckr = CKR_PIN_INCORRECT;
    return -1;
}

int tok_rv_rejects_pin(unsigned long rv)
{
    return pin_rv_rejects((CK_RV)rv);
}

static int pin_rv_rejects(CK_RV rv)
{
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE ||
           rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED;
}

int tok_do_login(struct tok *t, CK_SESSION_HANDLE h, CK_USER_TYPE who, struct itl_error *err)
{
    char what[160];
    CK_RV rv;

    pthread_mutex_lock(&t->pin_lock);
    if (t->pin_rejected) {
        pthread_mutex_unlock(&t->pin_lock);
        return tok_pin_rejected_err(t, err);
    }
    if (!t->pin.bytes && !t->protected_path) {
        pthread_mutex_unlock(&t->pin_lock);
        return err_set(err, ITL_E_PIN, "token '%s' needs a PIN and none was given", t->label_str);
    }
    t->login_calls++;
    /* A PIN pad takes the PIN from its own keypad: NULL, whatever we hold (we hold none). */
    if (t->protected_path)
        rv = t->mod->C_Login(h, who, NULL, 0);
    else
        rv = t->mod->C_Login(h, who, t->pin.bytes, (CK_ULONG)t->pin.len);
    if (pin_rv_rejects(rv)) {
        tok_pin_wipe(&t->pin);
        t->pin_rejected = 1;
    }
    pthread_mutex_unlock(&t->pin_lock);
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
        return 0;
    snprintf(what, sizeof what, "logging in to token '%s' (C_Login)", t->label_str);
    tok_ckr_err(err, rv, what);
    if (pin_rv_rejects(rv)) {
        CK_TOKEN_INFO info;
        struct itl_error now = {0};
        if (tok_token_info(t, &info, NULL) == 0 && tok_login_guard(&info, &now) != 0) {
            size_t used = strlen(err->msg);
            snprintf(err->msg + used, sizeof err->msg - used, "; now: %s", now.msg);
        }
    }
    return -1;
}

/* pin-source=file:/path (or a bare path): read like --pin-file. Commands are refused. */
static int pin_from_uri(struct tok *t, struct tok_pin *pin, struct itl_error *err)
{
    const char *src = p11_kit_uri_get_pin_source(t->uri);

    if (!src)
        return 1;
    if (strncmp(src, "file:", 5) == 0)
        src += 5;
    if (src[0] != '/')
        return err_set(err, ITL_E_USAGE,
                       "pin-source in the URI must be file:/absolute/path (commands are not run)");
    return tok_pin_from_file(src, pin, err);
}

/* A login right after the open uses the token info the open read a moment ago (the flags and
 * PIN counters cannot have changed meanwhile unless someone else used the token in that
 * second); any later login, and one after a slow PIN prompt, asks the token again. */
#define OPEN_INFO_FRESH_MS 1000

static int info_for_login(struct tok *t, CK_TOKEN_INFO *info, struct itl_error *err)
{
    struct timespec now;
    int fresh = t->have_open_info;

    t->have_open_info = 0;
    if (fresh && clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
        long long ms = (now.tv_sec - t->open_info_at.tv_sec) * 1000LL +
                       (now.tv_nsec - t->open_info_at.tv_nsec) / 1000000;
        if (ms >= 0 && ms <= OPEN_INFO_FRESH_MS) {
            *info = t->open_info;
            return 0;
        }
    }
    return tok_token_info(t, info, err);
}

int tok_login(struct tok *t, const struct tok_pin *pin, struct itl_error *err)
{
    CK_TOKEN_INFO info;
    struct tok_pin from_uri = {0};
    int rc;

    if (err)
        memset(err, 0, sizeof *err);
    pthread_mutex_lock(&t->rebuild_lock);
    if (t->pin_rejected) {
        rc = tok_pin_rejected_err(t, err);
        goto out;
    }
    rc = info_for_login(t, &info, err);
    if (rc != 0)
        goto out;
    t->login_needed = (info.flags & CKF_LOGIN_REQUIRED) != 0;
    t->protected_path = (info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
    if (!t->login_needed) {
        pthread_mutex_lock(&t->lock);
        t->logged_in = 1; /* nothing to do: the objects are usable without login */
        t->want_login = 1;
        pthread_mutex_unlock(&t->lock);
        goto out;
    }
    rc = tok_login_guard(&info, err);
    if (rc != 0)
        goto out;
    if (t->protected_path) {
        /* The PIN is typed on the token's keypad: a configured PIN is not used (nor copied),
         * and pin-source in the URI is not read. Callers warn (tok_status.pin_ignored). */
        t->pin_ignored = (pin && pin->bytes) || p11_kit_uri_get_pin_source(t->uri) != NULL;
        pin = NULL;
    } else if (!pin || !pin->bytes) {
        rc = pin_from_uri(t, &from_uri, err);
        if (rc < 0)
            goto out;
        pin = rc == 0 ? &from_uri : NULL;
    }
    pthread_mutex_lock(&t->pin_lock);
    tok_pin_wipe(&t->pin);
    rc = pin ? tok_pin_copy(&t->pin, pin, err) : 0;
    pthread_mutex_unlock(&t->pin_lock);
    if (rc != 0)
        goto out;
    if (!t->pin.bytes && !t->protected_path) {
        rc = err_set(err, ITL_E_PIN,
                     "token '%s' needs a PIN: give --pin-file or --pin-fd (or pin-source=file: "
                     "in the URI)",
                     t->label_str);
        goto out;
    }
    rc = tok_do_login(t, t->login_session, CKU_USER, err);
    if (rc == 0) {
        pthread_mutex_lock(&t->lock);
        t->logged_in = 1;
        t->want_login = 1;
        pthread_mutex_unlock(&t->lock);
    }
out:
    tok_pin_wipe(&from_uri);
    pthread_mutex_unlock(&t->rebuild_lock);
    return rc;
}

int tok_session_lacks_login(struct tok *t, CK_SESSION_HANDLE h)
{
    CK_SESSION_INFO si;
    int want;

    pthread_mutex_lock(&t->lock);
    want = t->want_login && t->login_needed;
    pthread_mutex_unlock(&t->lock);
    return want && t->mod->C_GetSessionInfo(h, &si) == CKR_OK &&
           si.state != CKS_RW_USER_FUNCTIONS && si.state != CKS_RO_USER_FUNCTIONS;
}
