/* SPDX-License-Identifier: MIT */
/*
 * faultp11: token quirks, chosen by FAULTP11_QUIRKS (comma-separated, read at C_Initialize), that
 * make SoftHSM2 look like tokens CI has no hardware for. Each wraps the module's own entry
 * points (which still count and inject faults as the schedule says):
 *
 *   pinpad       CKF_PROTECTED_AUTHENTICATION_PATH set; C_Login must get a NULL PIN of length 0
 *                (else CKR_ARGUMENTS_BAD, and a line on stderr): the module then logs in to the
 *                real token with FAULTP11_PIN itself, as a PIN pad would
 *   one-session  ulMaxSessionCount = 1; a second open session is refused with CKR_SESSION_COUNT
 *   no-raw-rsa   CKM_RSA_PKCS hidden from C_GetMechanismList/Info, refused by C_SignInit
 *   claims-local private keys read CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE = TRUE,
 *                whatever their history (a token that claims more than it knows)
 *   always-auth  private keys read CKA_ALWAYS_AUTHENTICATE = TRUE; C_Sign after C_SignInit needs
 *                C_Login(CKU_CONTEXT_SPECIFIC) with FAULTP11_PIN first (else
 *                CKR_USER_NOT_LOGGED_IN); a wrong context PIN is CKR_PIN_INCORRECT
 *   offload      signing costs this machine no CPU (a network HSM): a signature already made
 *                for the same key, mechanism and input is replayed (offload.c)
 *
 * A violated quirk fails the caller's operation (and says why on stderr): that is the test.
 * With or without quirks, C_SignInit's mechanism and the context logins are counted in the
 * stats (sign_mechanism, context_logins); each call a quirk refused in quirk_refusals.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/faultp11/faultp11.h"

#define FQ_MAX_SESSIONS 1024

static struct {
    bool pinpad, one_session, no_raw_rsa, always_auth, claims_local, offload;
} quirks;

static CK_FUNCTION_LIST base; /* the module's entry points before the quirks */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static CK_SESSION_HANDLE open_sessions[FQ_MAX_SESSIONS];
static size_t n_open;
/* always-auth: sessions inside C_SignInit..C_Sign that have (not) done the context login */
static CK_SESSION_HANDLE pending_auth[FQ_MAX_SESSIONS];
static size_t n_pending;

static bool set_remove(CK_SESSION_HANDLE *set, size_t *n, CK_SESSION_HANDLE h)
{
    for (size_t i = 0; i < *n; i++)
        if (set[i] == h) {
            set[i] = set[--*n];
            return true;
        }
    return false;
}

static bool set_has(const CK_SESSION_HANDLE *set, size_t n, CK_SESSION_HANDLE h)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == h)
            return true;
    return false;
}

static void set_add(CK_SESSION_HANDLE *set, size_t *n, CK_SESSION_HANDLE h)
{
    if (!set_has(set, *n, h) && *n < FQ_MAX_SESSIONS)
        set[(*n)++] = h;
}

/* The real PIN, which a PIN pad would take from its keypad. */
static CK_RV login_with_env_pin(CK_SESSION_HANDLE s, CK_USER_TYPE who)
{
    const char *pin = getenv("FAULTP11_PIN");

    if (pin == NULL) {
        fprintf(stderr, "faultp11: quirk pinpad needs FAULTP11_PIN (the token's real PIN)\n");
        return CKR_GENERAL_ERROR;
    }
    return base.C_Login(s, who, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
}

static CK_RV q_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv = base.C_GetTokenInfo(slot, info);

    if (rv != CKR_OK)
        return rv;
    if (quirks.pinpad)
        info->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
    if (quirks.one_session)
        info->ulMaxSessionCount = 1;
    return rv;
}

static CK_RV context_login(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    const char *want = getenv("FAULTP11_PIN");
    bool ok;

    fp_note_quirk_login(pin, len);
    pthread_mutex_lock(&qlock);
    if (!set_has(pending_auth, n_pending, s)) {
        pthread_mutex_unlock(&qlock);
        return CKR_OPERATION_NOT_INITIALIZED;
    }
    ok = want != NULL &&
         (quirks.pinpad ? pin == NULL && len == 0
                        : pin != NULL && len == strlen(want) && memcmp(pin, want, len) == 0);
    if (ok)
        set_remove(pending_auth, &n_pending, s);
    pthread_mutex_unlock(&qlock);
    if (ok)
        fp_note_context_login();
    if (!ok)
        fp_note_quirk_refusal();
    if (!ok && quirks.pinpad)
        fprintf(stderr, "faultp11: quirk pinpad: context C_Login got a PIN, not NULL\n");
    return ok ? CKR_OK : quirks.pinpad ? CKR_ARGUMENTS_BAD : CKR_PIN_INCORRECT;
}

static CK_RV q_Login(CK_SESSION_HANDLE s, CK_USER_TYPE who, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    if (quirks.always_auth && who == CKU_CONTEXT_SPECIFIC)
        return context_login(s, pin, len);
    if (!quirks.pinpad)
        return base.C_Login(s, who, pin, len);
    if (pin != NULL || len != 0) {
        fprintf(stderr, "faultp11: quirk pinpad: C_Login got a PIN of %lu bytes, not NULL\n",
                (unsigned long)len);
        fp_note_quirk_refusal();
        return CKR_ARGUMENTS_BAD;
    }
    return login_with_env_pin(s, who);
}

static CK_RV q_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                           CK_SESSION_HANDLE_PTR out)
{
    CK_RV rv;

    if (!quirks.one_session)
        return base.C_OpenSession(slot, flags, app, notify, out);
    pthread_mutex_lock(&qlock);
    if (n_open >= 1) {
        pthread_mutex_unlock(&qlock);
        fp_note_quirk_refusal();
        return CKR_SESSION_COUNT;
    }
    rv = base.C_OpenSession(slot, flags, app, notify, out);
    if (rv == CKR_OK)
        set_add(open_sessions, &n_open, *out);
    pthread_mutex_unlock(&qlock);
    return rv;
}

static CK_RV q_CloseSession(CK_SESSION_HANDLE s)
{
    CK_RV rv = base.C_CloseSession(s);

    pthread_mutex_lock(&qlock);
    set_remove(open_sessions, &n_open, s);
    set_remove(pending_auth, &n_pending, s);
    pthread_mutex_unlock(&qlock);
    return rv;
}

static CK_RV q_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv = base.C_CloseAllSessions(slot);

    pthread_mutex_lock(&qlock); /* one token in the tests: every session was on it */
    n_open = 0;
    n_pending = 0;
    pthread_mutex_unlock(&qlock);
    return rv;
}

static CK_RV q_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_ULONG n, kept = 0;
    CK_MECHANISM_TYPE *all;
    CK_RV rv;

    if (!quirks.no_raw_rsa || count == NULL)
        return base.C_GetMechanismList(slot, list, count);
    rv = base.C_GetMechanismList(slot, NULL, &n);
    if (rv != CKR_OK)
        return rv;
    all = calloc(n ? n : 1, sizeof(*all));
    if (all == NULL)
        return CKR_HOST_MEMORY;
    rv = base.C_GetMechanismList(slot, all, &n);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
        if (all[i] != CKM_RSA_PKCS)
            all[kept++] = all[i];
    if (rv == CKR_OK && list != NULL && *count < kept)
        rv = CKR_BUFFER_TOO_SMALL;
    else if (rv == CKR_OK && list != NULL)
        memcpy(list, all, kept * sizeof(*all));
    if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
        *count = kept;
    free(all);
    return rv;
}

static CK_RV q_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO_PTR info)
{
    if (quirks.no_raw_rsa && mech == CKM_RSA_PKCS)
        return CKR_MECHANISM_INVALID;
    return base.C_GetMechanismInfo(slot, mech, info);
}

static CK_RV q_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (quirks.no_raw_rsa && mech != NULL && mech->mechanism == CKM_RSA_PKCS) {
        fp_note_quirk_refusal();
        return CKR_MECHANISM_INVALID;
    }
    rv = base.C_SignInit(s, mech, key);
    if (rv == CKR_OK && mech != NULL)
        fp_note_sign_mechanism(mech->mechanism);
    if (rv == CKR_OK && quirks.always_auth) {
        pthread_mutex_lock(&qlock);
        set_add(pending_auth, &n_pending, s);
        pthread_mutex_unlock(&qlock);
    }
    return rv;
}

static CK_RV q_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                    CK_ULONG_PTR sig_len)
{
    bool pending;

    if (quirks.always_auth) {
        pthread_mutex_lock(&qlock);
        pending = set_has(pending_auth, n_pending, s);
        pthread_mutex_unlock(&qlock);
        if (pending) {
            fp_note_quirk_refusal();
            return CKR_USER_NOT_LOGGED_IN;
        }
    }
    return base.C_Sign(s, data, len, sig, sig_len);
}

static CK_RV q_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR tmpl,
                                 CK_ULONG n)
{
    CK_RV rv = base.C_GetAttributeValue(s, o, tmpl, n);

    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
        return rv;
    /* SoftHSM2 has these attributes on private keys only (ALWAYS_AUTHENTICATE FALSE; LOCAL
     * etc. as the key's history says): turn those on. */
    for (CK_ULONG i = 0; i < n; i++) {
        CK_ATTRIBUTE_TYPE a = tmpl[i].type;
        bool turn_on = (quirks.always_auth && a == CKA_ALWAYS_AUTHENTICATE) ||
                       (quirks.claims_local && (a == CKA_LOCAL || a == CKA_ALWAYS_SENSITIVE ||
                                                a == CKA_NEVER_EXTRACTABLE));
        if (turn_on && tmpl[i].pValue != NULL && tmpl[i].ulValueLen == sizeof(CK_BBOOL))
            *(CK_BBOOL *)tmpl[i].pValue = CK_TRUE;
    }
    return rv;
}

static bool parse_quirks(const char *text)
{
    char buf[256], *save = NULL;

    memset(&quirks, 0, sizeof quirks);
    if (text == NULL || text[0] == '\0')
        return true;
    snprintf(buf, sizeof buf, "%s", text);
    for (char *w = strtok_r(buf, ", ", &save); w != NULL; w = strtok_r(NULL, ", ", &save)) {
        if (strcmp(w, "pinpad") == 0)
            quirks.pinpad = true;
        else if (strcmp(w, "one-session") == 0)
            quirks.one_session = true;
        else if (strcmp(w, "no-raw-rsa") == 0)
            quirks.no_raw_rsa = true;
        else if (strcmp(w, "always-auth") == 0)
            quirks.always_auth = true;
        else if (strcmp(w, "claims-local") == 0)
            quirks.claims_local = true;
        else if (strcmp(w, "offload") == 0)
            quirks.offload = true;
        else {
            fprintf(stderr,
                    "faultp11: FAULTP11_QUIRKS: unknown quirk '%s' (pinpad, one-session, "
                    "no-raw-rsa, always-auth, claims-local, offload)\n",
                    w);
            return false;
        }
    }
    return true;
}

bool fp_quirk_offload(void)
{
    return quirks.offload;
}

bool fp_quirks_install(CK_FUNCTION_LIST *list)
{
    static bool saved;

    if (!saved) {
        base = *list;
        saved = true;
    }
    *list = base;
    if (!parse_quirks(getenv("FAULTP11_QUIRKS")))
        return false;
    pthread_mutex_lock(&qlock);
    n_open = 0;
    n_pending = 0;
    pthread_mutex_unlock(&qlock);
    if (quirks.pinpad || quirks.one_session)
        list->C_GetTokenInfo = q_GetTokenInfo;
    if (quirks.pinpad || quirks.always_auth)
        list->C_Login = q_Login;
    if (quirks.one_session) {
        list->C_OpenSession = q_OpenSession;
        list->C_CloseSession = q_CloseSession;
        list->C_CloseAllSessions = q_CloseAllSessions;
    }
    if (quirks.no_raw_rsa) {
        list->C_GetMechanismList = q_GetMechanismList;
        list->C_GetMechanismInfo = q_GetMechanismInfo;
    }
    list->C_SignInit = q_SignInit; /* counts the mechanism (stats: sign_mechanism) */
    if (quirks.always_auth || quirks.claims_local)
        list->C_GetAttributeValue = q_GetAttributeValue;
    if (quirks.always_auth) {
        list->C_Sign = q_Sign;
        list->C_CloseSession = q_CloseSession;
        list->C_CloseAllSessions = q_CloseAllSessions;
    }
    return true;
}
