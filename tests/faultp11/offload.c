/* SPDX-License-Identifier: MIT */
/*
 * faultp11: quirk `offload`, a token whose signatures cost this machine no CPU (a network HSM
 * signs on its own processors). It sits between the schedule (delays, faults, counters: they
 * apply as before) and the real module, and replays a signature the real module already made:
 *
 *   - C_Sign of input bytes already signed in this process with the same key handle and the
 *     same mechanism returns the stored signature; the real module is not called (not even its
 *     C_SignInit, which in SoftHSM2 rebuilds the RSA key). Only deterministic mechanisms are
 *     replayed: CKM_RSA_PKCS and CKM_SHA{1,224,256,384,512}_RSA_PKCS without parameters
 *     (PKCS#1 v1.5: the same key and input always give the same bytes, so the replay is
 *     byte-identical to what the token would return; selftest.sh checks it);
 *   - any other input, key or mechanism goes to the real module, and its signature is stored.
 *
 * C_SignInit is forwarded (so the real module validates key, mechanism and login) the first
 * time a key and mechanism are used, and again after anything that could change its answer:
 * C_Login/C_Logout, C_CloseSession, C_CloseAllSessions, C_DestroyObject, C_SetAttributeValue,
 * C_InitToken, C_InitPIN, C_SetPIN, C_Initialize, C_Finalize (the last five also forget the stored
 * signatures). After that, C_SignInit is deferred: the real one runs only when C_Sign's input is
 * new (or for C_SignUpdate/C_SignFinal). A key deleted by another process is not noticed.
 * Counted in the stats: offload_replays (signatures replayed), offload_signs (made by the real
 * module and stored).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tests/faultp11/faultp11.h"

#define FO_SESSIONS 1024
#define FO_ENTRIES 1024 /* direct-mapped by a hash of key, mechanism and input */
#define FO_IN_MAX 128   /* a DigestInfo is 35-83 bytes; longer inputs are not stored */
#define FO_SIG_MAX 1024 /* RSA-8192 */
#define FO_VALIDATED 64

enum fo_state { FO_NONE, FO_DEFERRED, FO_REAL, FO_MULTI };

struct fo_session {
    CK_SESSION_HANDLE h; /* 0: free slot */
    enum fo_state state;
    CK_MECHANISM_TYPE mech;
    CK_OBJECT_HANDLE key;
};

struct fo_entry {
    bool used;
    CK_OBJECT_HANDLE key;
    CK_MECHANISM_TYPE mech;
    CK_ULONG in_len, sig_len;
    CK_BYTE in[FO_IN_MAX], sig[FO_SIG_MAX];
};

static CK_FUNCTION_LIST base; /* the real module's entry points */
static pthread_mutex_t olock = PTHREAD_MUTEX_INITIALIZER;
static struct fo_session sessions[FO_SESSIONS];
static struct fo_entry entries[FO_ENTRIES];
/* (key, mechanism) pairs whose real C_SignInit succeeded since the last event that could
 * change its answer. */
static struct {
    CK_OBJECT_HANDLE key;
    CK_MECHANISM_TYPE mech;
} validated[FO_VALIDATED];
static size_t n_validated;
/* Not under the module lock: the real calls run under real_state, which must never wait for
 * it (module.c). Taken into the stats by fp_offload_take. */
static atomic_ulong replays, real_signs;

static bool deterministic(const CK_MECHANISM *m)
{
    if (m == NULL || m->pParameter != NULL || m->ulParameterLen != 0)
        return false;
    switch (m->mechanism) {
    case CKM_RSA_PKCS:
    case CKM_SHA1_RSA_PKCS:
    case CKM_SHA224_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS:
    case CKM_SHA384_RSA_PKCS:
    case CKM_SHA512_RSA_PKCS:
        return true;
    default:
        return false;
    }
}

/* The session's slot (adding it when ADD); NULL when the table is full. Under olock. */
static struct fo_session *session_locked(CK_SESSION_HANDLE h, bool add)
{
    struct fo_session *free_slot = NULL;

    for (size_t i = 0; i < FO_SESSIONS; i++) {
        if (sessions[i].h == h)
            return &sessions[i];
        if (free_slot == NULL && sessions[i].h == 0)
            free_slot = &sessions[i];
    }
    if (!add || free_slot == NULL)
        return NULL;
    *free_slot = (struct fo_session){.h = h, .state = FO_NONE};
    return free_slot;
}

static bool is_validated_locked(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech)
{
    for (size_t i = 0; i < n_validated; i++)
        if (validated[i].key == key && validated[i].mech == mech)
            return true;
    return false;
}

static void add_validated_locked(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech)
{
    if (!is_validated_locked(key, mech) && n_validated < FO_VALIDATED) {
        validated[n_validated].key = key;
        validated[n_validated].mech = mech;
        n_validated++;
    }
}

static struct fo_entry *slot_for(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech, const CK_BYTE *in,
                                 CK_ULONG len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    h = (h ^ key) * 1099511628211ull;
    h = (h ^ mech) * 1099511628211ull;
    for (CK_ULONG i = 0; i < len; i++)
        h = (h ^ in[i]) * 1099511628211ull;
    return &entries[h % FO_ENTRIES];
}

static struct fo_entry *lookup_locked(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech,
                                      const CK_BYTE *in, CK_ULONG len)
{
    struct fo_entry *e;

    if (in == NULL || len > FO_IN_MAX)
        return NULL;
    e = slot_for(key, mech, in, len);
    if (!e->used || e->key != key || e->mech != mech || e->in_len != len ||
        memcmp(e->in, in, len) != 0)
        return NULL;
    return e;
}

static void store(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech, const CK_BYTE *in, CK_ULONG len,
                  const CK_BYTE *sig, CK_ULONG sig_len)
{
    struct fo_entry *e;

    if (in == NULL || len > FO_IN_MAX || sig_len > FO_SIG_MAX)
        return;
    pthread_mutex_lock(&olock);
    e = slot_for(key, mech, in, len);
    e->used = true;
    e->key = key;
    e->mech = mech;
    e->in_len = len;
    memcpy(e->in, in, len);
    e->sig_len = sig_len;
    memcpy(e->sig, sig, sig_len);
    pthread_mutex_unlock(&olock);
    atomic_fetch_add(&real_signs, 1);
}

/* Something changed what a real C_SignInit would answer (login, sessions); with KEYS also what
 * the keys are. Deferred operations become real ones at their next call. */
static void forget(bool keys)
{
    pthread_mutex_lock(&olock);
    n_validated = 0;
    if (keys)
        memset(entries, 0, sizeof entries);
    pthread_mutex_unlock(&olock);
}

static CK_RV o_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    struct fo_session *ss;
    CK_RV rv;

    pthread_mutex_lock(&olock);
    ss = session_locked(s, true);
    if (ss != NULL && ss->state == FO_DEFERRED) {
        pthread_mutex_unlock(&olock);
        return CKR_OPERATION_ACTIVE; /* what the token says while an operation is active */
    }
    /* Deferred only on a session with no operation (else the real module answers, e.g.
     * OPERATION_ACTIVE while a real one is going on). */
    if (ss != NULL && ss->state == FO_NONE && deterministic(mech) &&
        is_validated_locked(key, mech->mechanism)) {
        *ss =
            (struct fo_session){.h = s, .state = FO_DEFERRED, .mech = mech->mechanism, .key = key};
        pthread_mutex_unlock(&olock);
        return CKR_OK;
    }
    pthread_mutex_unlock(&olock);
    rv = base.C_SignInit(s, mech, key);
    pthread_mutex_lock(&olock);
    ss = session_locked(s, true);
    if (rv == CKR_OK && ss != NULL && deterministic(mech)) {
        add_validated_locked(key, mech->mechanism);
        *ss = (struct fo_session){.h = s, .state = FO_REAL, .mech = mech->mechanism, .key = key};
    } else if (rv == CKR_OK && ss != NULL) {
        ss->state = FO_MULTI; /* not replayed */
    }
    pthread_mutex_unlock(&olock);
    return rv;
}

/* Replays a stored signature for a deferred operation, or makes it a real one. Under olock;
 * returns true when the call was answered (*RV). */
static bool replay_locked(struct fo_session *ss, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR sig,
                          CK_ULONG_PTR sig_len, CK_RV *rv)
{
    struct fo_entry *e = lookup_locked(ss->key, ss->mech, in, len);

    if (e == NULL || sig_len == NULL)
        return false;
    if (sig == NULL) { /* a length query leaves the operation active */
        *sig_len = e->sig_len;
        *rv = CKR_OK;
    } else if (*sig_len < e->sig_len) {
        *sig_len = e->sig_len;
        *rv = CKR_BUFFER_TOO_SMALL;
    } else {
        memcpy(sig, e->sig, e->sig_len);
        *sig_len = e->sig_len;
        ss->state = FO_NONE;
        *rv = CKR_OK;
        atomic_fetch_add(&replays, 1);
    }
    return true;
}

/* A deferred operation that needs the real module: its real C_SignInit now. */
static CK_RV make_real(CK_SESSION_HANDLE s, struct fo_session *ss, enum fo_state next)
{
    CK_MECHANISM m = {ss->mech, NULL, 0};
    CK_RV rv;

    ss->state = FO_NONE;
    pthread_mutex_unlock(&olock);
    rv = base.C_SignInit(s, &m, ss->key);
    pthread_mutex_lock(&olock);
    if (rv == CKR_OK)
        ss->state = next;
    return rv;
}

static CK_RV o_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR sig,
                    CK_ULONG_PTR sig_len)
{
    struct fo_session *ss, op;
    CK_RV rv;

    pthread_mutex_lock(&olock);
    ss = session_locked(s, false);
    if (ss != NULL && ss->state == FO_DEFERRED) {
        if (replay_locked(ss, in, len, sig, sig_len, &rv)) {
            pthread_mutex_unlock(&olock);
            return rv;
        }
        rv = make_real(s, ss, FO_REAL);
        if (rv != CKR_OK) {
            pthread_mutex_unlock(&olock);
            return rv;
        }
    }
    op = ss != NULL ? *ss : (struct fo_session){.state = FO_NONE};
    pthread_mutex_unlock(&olock);
    rv = base.C_Sign(s, in, len, sig, sig_len);
    if (op.state == FO_REAL && rv == CKR_OK && sig != NULL)
        store(op.key, op.mech, in, len, sig, *sig_len);
    if (ss != NULL && !(rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && sig == NULL))) {
        pthread_mutex_lock(&olock);
        if (ss->h == s)
            ss->state = FO_NONE; /* the operation ended */
        pthread_mutex_unlock(&olock);
    }
    return rv;
}

/* Multi-part signing is never replayed: a deferred operation becomes real first. */
static CK_RV o_SignUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR part, CK_ULONG len)
{
    struct fo_session *ss;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&olock);
    ss = session_locked(s, false);
    if (ss != NULL && ss->state == FO_DEFERRED)
        rv = make_real(s, ss, FO_MULTI);
    else if (ss != NULL)
        ss->state = FO_MULTI;
    pthread_mutex_unlock(&olock);
    if (rv != CKR_OK)
        return rv;
    rv = base.C_SignUpdate(s, part, len);
    if (rv != CKR_OK && ss != NULL) { /* a failed update ends the operation */
        pthread_mutex_lock(&olock);
        if (ss->h == s)
            ss->state = FO_NONE;
        pthread_mutex_unlock(&olock);
    }
    return rv;
}

static CK_RV o_SignFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    struct fo_session *ss;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&olock);
    ss = session_locked(s, false);
    if (ss != NULL && ss->state == FO_DEFERRED)
        rv = make_real(s, ss, FO_MULTI);
    pthread_mutex_unlock(&olock);
    if (rv != CKR_OK)
        return rv;
    rv = base.C_SignFinal(s, sig, sig_len);
    if (ss != NULL && !(rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && sig == NULL))) {
        pthread_mutex_lock(&olock);
        if (ss->h == s)
            ss->state = FO_NONE;
        pthread_mutex_unlock(&olock);
    }
    return rv;
}

static CK_RV o_CloseSession(CK_SESSION_HANDLE s)
{
    CK_RV rv = base.C_CloseSession(s);
    struct fo_session *ss;

    pthread_mutex_lock(&olock);
    ss = session_locked(s, false);
    if (ss != NULL)
        ss->h = 0;
    pthread_mutex_unlock(&olock);
    forget(false); /* the last session's close logs out */
    return rv;
}

static CK_RV o_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv = base.C_CloseAllSessions(slot);

    pthread_mutex_lock(&olock); /* one token in the tests: every session was on it */
    memset(sessions, 0, sizeof sessions);
    pthread_mutex_unlock(&olock);
    forget(false);
    return rv;
}

static CK_RV o_Login(CK_SESSION_HANDLE s, CK_USER_TYPE who, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    forget(false);
    return base.C_Login(s, who, pin, len);
}

static CK_RV o_Logout(CK_SESSION_HANDLE s)
{
    forget(false);
    return base.C_Logout(s);
}

static CK_RV o_DestroyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    forget(true);
    return base.C_DestroyObject(s, o);
}

static CK_RV o_SetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
                                 CK_ULONG n)
{
    forget(true);
    return base.C_SetAttributeValue(s, o, t, n);
}

static CK_RV o_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label)
{
    forget(true);
    return base.C_InitToken(slot, pin, len, label);
}

static CK_RV o_InitPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    forget(true);
    return base.C_InitPIN(s, pin, len);
}

static CK_RV o_SetPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR old, CK_ULONG old_len,
                      CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    forget(true);
    return base.C_SetPIN(s, old, old_len, pin, len);
}

static CK_RV o_Initialize(CK_VOID_PTR args)
{
    forget(true);
    pthread_mutex_lock(&olock);
    memset(sessions, 0, sizeof sessions);
    pthread_mutex_unlock(&olock);
    return base.C_Initialize(args);
}

static CK_RV o_Finalize(CK_VOID_PTR reserved)
{
    forget(true);
    return base.C_Finalize(reserved);
}

void fp_offload_wrap(CK_FUNCTION_LIST *real)
{
    base = *real;
    real->C_Initialize = o_Initialize;
    real->C_Finalize = o_Finalize;
    real->C_SignInit = o_SignInit;
    real->C_Sign = o_Sign;
    real->C_SignUpdate = o_SignUpdate;
    real->C_SignFinal = o_SignFinal;
    real->C_CloseSession = o_CloseSession;
    real->C_CloseAllSessions = o_CloseAllSessions;
    real->C_Login = o_Login;
    real->C_Logout = o_Logout;
    real->C_DestroyObject = o_DestroyObject;
    real->C_SetAttributeValue = o_SetAttributeValue;
    real->C_InitToken = o_InitToken;
    real->C_InitPIN = o_InitPIN;
    real->C_SetPIN = o_SetPIN;
}

void fp_offload_take(unsigned long *replayed, unsigned long *signed_real)
{
    *replayed += atomic_exchange(&replays, 0);
    *signed_real += atomic_exchange(&real_signs, 0);
}
