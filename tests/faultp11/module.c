/* SPDX-License-Identifier: MIT */
/*
 * faultp11: the PKCS#11 entry points. Each call takes the module lock only to look at the
 * schedule and to count; the real module is called (and delays are slept) without it, so
 * threads still run in parallel and a slow call does not hold up the others.
 *
 * Environment (read by C_Initialize):
 *   FAULTP11_MODULE   the real module (default /usr/lib/softhsm/libsofthsm2.so)
 *   FAULTP11_CONTROL  the schedule file, re-read whenever it changes
 *   FAULTP11_STATS    the statistics file, rewritten after every call
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/faultp11/faultp11.h"

#define FP_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define FP_CONTROL_MAX (64 * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Forwarded calls hold this shared; what a removal or an injected fault does to the real token
 * (closing sessions, logging out) holds it exclusive. SoftHSM2 frees a session's objects in
 * C_CloseAllSessions while another thread may be inside C_Sign with them, and that thread then
 * crashes; a real HSM ends the operations in flight itself. Order: `lock`, then this; never
 * wait for `lock` while holding it shared. */
static pthread_rwlock_t real_state = PTHREAD_RWLOCK_INITIALIZER;
static const pthread_rwlock_t fresh_real_state = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Loaded by the first C_Initialize and kept for the life of the process, so a thread still in
 * a call while another finalizes never jumps through a dangling pointer. */
static CK_FUNCTION_LIST_PTR real;
/* The real module's entries as this module calls them (quirk offload replaces some). */
static CK_FUNCTION_LIST real_entries;
static bool initialized;
/* This process is a child forked after C_Initialize. */
static bool forked;

static char *control_path;
static char *stats_path;
static struct fp_schedule schedule;
static struct fp_stats stats;

/* What the control file looked like when it was last read. */
static bool control_known;
static struct stat control_st;

/* One call on its way through the module. */
struct fp_call {
    enum fp_fn fn;
    bool counted;  /* the module was initialised: the call is accounted for */
    bool injected; /* answered by the module: by a rule or by the token's absence */
    bool by_rule;  /* answered by a rule of the schedule */
    bool delayed;
    bool absent; /* the token was removed when the call started */
    CK_RV rv;
    CK_SESSION_HANDLE session; /* CK_INVALID_HANDLE for functions without one */
    bool is_login;
    const unsigned char *pin;
    size_t pin_len;
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
        ;
}

/* A fork while another thread holds the lock must not leave the child's copy locked. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
    pthread_rwlock_wrlock(&real_state);
}

static void atfork_parent(void)
{
    pthread_rwlock_unlock(&real_state);
    pthread_mutex_unlock(&lock);
}

/* A child must call C_Initialize again before it uses the module, as with real HSMs (and with
 * SoftHSM2's library.reset_on_fork): its sessions and login are not the parent's. */
static void atfork_child(void)
{
    forked = forked || initialized;
    initialized = false;
    /* The parent's thread took it: a fresh lock, as unlocking it here is not reliable. */
    real_state = fresh_real_state;
    pthread_mutex_unlock(&lock);
}

static void register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* The token came back or went away: a real HSM forgets its sessions and its login either way,
 * so callers must rebuild rather than keep using old handles. */
static void close_real_sessions_locked(void)
{
    CK_SLOT_ID *slots;
    CK_ULONG n = 0;

    if (real->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n == 0)
        return;
    slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return;
    pthread_rwlock_wrlock(&real_state);
    if (real->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK)
        for (CK_ULONG i = 0; i < n; i++)
            real->C_CloseAllSessions(slots[i]);
    pthread_rwlock_unlock(&real_state);
    free(slots);
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The control file's text (empty when it does not exist), or NULL with a message in ERR. */
static char *read_control(char *err, size_t err_size)
{
    FILE *f = fopen(control_path, "r");
    char *text;
    size_t len;

    if (f == NULL && errno == ENOENT)
        return strdup("");
    if (f == NULL) {
        snprintf(err, err_size, "%s: %s", control_path, strerror(errno));
        return NULL;
    }
    text = malloc(FP_CONTROL_MAX + 1);
    if (text == NULL) {
        fclose(f);
        snprintf(err, err_size, "%s: out of memory", control_path);
        return NULL;
    }
    len = fread(text, 1, FP_CONTROL_MAX + 1, f);
    if (ferror(f) || len > FP_CONTROL_MAX) {
        snprintf(err, err_size, "%s: %s", control_path,
                 ferror(f) ? "read error" : "larger than 64 KiB");
        free(text);
        text = NULL;
    } else {
        text[len] = '\0';
    }
    fclose(f);
    return text;
}

/* Re-reads the schedule if the control file changed. A file that does not parse leaves the
 * previous schedule in force and is reported (stderr, schedule_error in the stats); returns
 * false then. */
static bool reload_schedule_locked(void)
{
    struct fp_schedule fresh;
    struct stat st;
    char *text;
    bool was_absent = schedule.absent;
    bool parsed;

    if (control_path == NULL)
        return true;
    if (stat(control_path, &st) != 0)
        memset(&st, 0, sizeof(st)); /* missing: an empty schedule */
    if (control_known && same_file_state(&st, &control_st))
        return stats.schedule_error[0] == '\0';
    control_known = true;
    control_st = st;

    text = read_control(stats.schedule_error, sizeof(stats.schedule_error));
    parsed = text != NULL && fp_schedule_parse(text, control_path, &fresh, stats.schedule_error,
                                               sizeof(stats.schedule_error));
    free(text);
    if (!parsed) {
        fprintf(stderr, "faultp11: %s (schedule not changed)\n", stats.schedule_error);
        return false;
    }
    stats.schedule_error[0] = '\0';
    fp_schedule_carry_state(&fresh, &schedule);
    fp_schedule_free(&schedule);
    schedule = fresh;
    if (initialized && was_absent != schedule.absent)
        close_real_sessions_locked();
    return true;
}

/* Counts a finished call and rewrites the stats file. */
static void account_locked(const struct fp_call *c)
{
    stats.calls[c->fn]++;
    if (c->injected)
        stats.injected[c->fn]++;
    else if (c->rv != CKR_OK)
        stats.errors[c->fn]++;
    if (c->delayed)
        stats.delayed[c->fn]++;
    if (c->is_login)
        fp_stats_record_login(&stats, c->pin, c->pin_len);
    fp_offload_take(&stats.offload_replays, &stats.offload_signs);
    if (stats_path != NULL)
        fp_stats_save(&stats, &schedule, stats_path);
}

/* What quirks.c observes above the module's own entry points. */
static void note_locked_save(void)
{
    if (stats_path != NULL)
        fp_stats_save(&stats, &schedule, stats_path);
}

void fp_note_context_login(void)
{
    pthread_mutex_lock(&lock);
    stats.context_logins++;
    note_locked_save();
    pthread_mutex_unlock(&lock);
}

void fp_note_quirk_refusal(void)
{
    pthread_mutex_lock(&lock);
    stats.quirk_refusals++;
    note_locked_save();
    pthread_mutex_unlock(&lock);
}

void fp_note_sign_mechanism(CK_MECHANISM_TYPE mech)
{
    pthread_mutex_lock(&lock);
    fp_stats_record_sign_mech(&stats, mech);
    note_locked_save();
    pthread_mutex_unlock(&lock);
}

void fp_note_quirk_login(const unsigned char *pin, size_t pin_len)
{
    pthread_mutex_lock(&lock);
    fp_stats_record_login(&stats, pin, pin_len);
    if (stats_path != NULL)
        fp_stats_save(&stats, &schedule, stats_path);
    pthread_mutex_unlock(&lock);
}

/* Decides the fate of a call: returns true when it must not be forwarded (call->rv is the
 * answer), false when the caller forwards it to the real module. ABSENT_RV is what the call
 * returns while the token is removed, CKR_OK when removal does not concern it. */
static bool call_begin(struct fp_call *c, enum fp_fn fn, CK_RV absent_rv)
{
    struct fp_verdict v = {0};
    bool removed;

    c->fn = fn;
    pthread_mutex_lock(&lock);
    if (!initialized) {
        pthread_mutex_unlock(&lock);
        c->rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        return true;
    }
    c->counted = true;
    reload_schedule_locked();
    c->absent = schedule.absent;
    removed = c->absent && absent_rv != CKR_OK;
    if (removed) {
        v.fails = true;
        v.rv = absent_rv;
    } else {
        fp_schedule_apply(&schedule, fn, now_ms(), &v);
    }
    pthread_mutex_unlock(&lock);

    if (v.delay_ms > 0)
        sleep_ms(v.delay_ms);
    c->delayed = v.delay_ms > 0;
    c->injected = v.fails;
    c->by_rule = v.fails && !removed;
    c->rv = v.rv;
    return v.fails;
}

/* A real HSM that answers with one of these has also changed state: the token forgets the
 * session, all sessions, or the login. Do the same to the real module, so that the caller sees
 * consistent answers afterwards and has to rebuild as it would have to on hardware. */
static void apply_consequence(const struct fp_call *c)
{
    CK_SESSION_INFO info;

    if (!c->by_rule || c->session == CK_INVALID_HANDLE)
        return;
    pthread_rwlock_wrlock(&real_state);
    switch (c->rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
        real->C_CloseSession(c->session);
        break;
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
        if (real->C_GetSessionInfo(c->session, &info) == CKR_OK)
            real->C_CloseAllSessions(info.slotID);
        break;
    case CKR_USER_NOT_LOGGED_IN:
        real->C_Logout(c->session);
        break;
    default:
        break;
    }
    pthread_rwlock_unlock(&real_state);
}

static CK_RV call_end(const struct fp_call *c)
{
    apply_consequence(c);
    if (c->counted) {
        pthread_mutex_lock(&lock);
        account_locked(c);
        pthread_mutex_unlock(&lock);
    }
    return c->rv;
}

#define FP_ABSENT_IGNORED CKR_OK
#define FP_ABSENT_NO_TOKEN CKR_TOKEN_NOT_PRESENT
#define FP_ABSENT_REMOVED CKR_DEVICE_REMOVED
#define FP_ABSENT_OPERATION CKR_DEVICE_REMOVED

#define FP_FIRST(first, ...) first
#define FP_SESSION_IGNORED(arg) CK_INVALID_HANDLE
#define FP_SESSION_NO_TOKEN(arg) CK_INVALID_HANDLE
#define FP_SESSION_REMOVED(arg) (arg)
#define FP_SESSION_OPERATION(arg) (arg)

#define FP_ENDS_OPERATION_IGNORED false
#define FP_ENDS_OPERATION_NO_TOKEN false
#define FP_ENDS_OPERATION_REMOVED false
#define FP_ENDS_OPERATION_OPERATION true

/* A fault in a crypto operation still runs the real call, whose answer is dropped: a real
 * error ends the operation, and without this the next ...Init would get OPERATION_ACTIVE. */
#define FP_WRAPPER(name, absent, params, args)                                                     \
    static CK_RV fp_##name params                                                                  \
    {                                                                                              \
        struct fp_call call = {.session = FP_SESSION_##absent(FP_FIRST args)};                     \
        if (!call_begin(&call, FP_FN_##name, FP_ABSENT_##absent)) {                                \
            pthread_rwlock_rdlock(&real_state);                                                    \
            call.rv = real->name args;                                                             \
            pthread_rwlock_unlock(&real_state);                                                    \
        } else if (FP_ENDS_OPERATION_##absent && call.by_rule) {                                   \
            pthread_rwlock_rdlock(&real_state);                                                    \
            (void)real->name args;                                                                 \
            pthread_rwlock_unlock(&real_state);                                                    \
        }                                                                                          \
        return call_end(&call);                                                                    \
    }
FP_FORWARDED_FUNCTIONS(FP_WRAPPER)
#undef FP_WRAPPER

static CK_RV load_real_module_locked(void)
{
    const char *path = getenv("FAULTP11_MODULE");
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR list = NULL;
    void *handle;
    CK_RV rv;

    if (real != NULL)
        return CKR_OK;
    if (path == NULL || path[0] == '\0')
        path = FP_DEFAULT_MODULE;
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, "faultp11: cannot load FAULTP11_MODULE=%s: %s\n", path, dlerror());
        return CKR_GENERAL_ERROR;
    }
    get_list = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    if (get_list == NULL || get_list == C_GetFunctionList) {
        fprintf(stderr, "faultp11: FAULTP11_MODULE=%s %s\n", path,
                get_list == NULL ? "has no C_GetFunctionList" : "is the fault module itself");
        dlclose(handle);
        return CKR_GENERAL_ERROR;
    }
    rv = get_list(&list);
    if (rv != CKR_OK || list == NULL) {
        fprintf(stderr, "faultp11: C_GetFunctionList of %s failed: 0x%lx\n", path, rv);
        dlclose(handle);
        return CKR_GENERAL_ERROR;
    }
    real_entries = *list;
    if (fp_quirk_offload())
        fp_offload_wrap(&real_entries);
    real = &real_entries;
    return CKR_OK;
}

static char *dup_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? strdup(v) : NULL;
}

/* Paths, counters and rule states for a new C_Initialize. With a stats file they continue from
 * what it says (another process may have written it); without one, from memory. */
static CK_RV load_state_locked(void)
{
    free(control_path);
    free(stats_path);
    control_path = dup_env("FAULTP11_CONTROL");
    stats_path = dup_env("FAULTP11_STATS");
    if (stats_path != NULL) {
        fp_stats_free(&stats);
        fp_schedule_free(&schedule);
        fp_stats_load(&stats, &schedule, stats_path);
    }
    /* What the rules remember is carried into the freshly parsed schedule; absence is not. */
    schedule.absent = false;
    control_known = false;
    if (!reload_schedule_locked()) {
        fprintf(stderr, "faultp11: C_Initialize refused: fix the schedule in FAULTP11_CONTROL\n");
        if (stats_path != NULL) /* a test that only reads the stats sees the error too */
            fp_stats_save(&stats, &schedule, stats_path);
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

static CK_RV fp_C_Initialize(CK_VOID_PTR args)
{
    struct fp_call call = {.fn = FP_FN_C_Initialize, .counted = true};
    struct fp_verdict v = {0};
    CK_RV rv;

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&lock);
    if (initialized) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    rv = load_real_module_locked();
    if (rv == CKR_OK)
        rv = load_state_locked();
    if (rv != CKR_OK)
        goto out;
    /* Initialisation is rare and serialised anyway: a delay may hold the lock. */
    fp_schedule_apply(&schedule, FP_FN_C_Initialize, now_ms(), &v);
    if (v.delay_ms > 0)
        sleep_ms(v.delay_ms);
    call.delayed = v.delay_ms > 0;
    call.injected = v.fails;
    call.rv = v.fails ? v.rv : real->C_Initialize(args);
    /* A real module that does not reset on fork still counts as initialised in the child. */
    if (!v.fails && forked && call.rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
        call.rv = CKR_OK;
    initialized = call.rv == CKR_OK;
    account_locked(&call);
    rv = call.rv;
out:
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV fp_C_Finalize(CK_VOID_PTR reserved)
{
    struct fp_call call = {0};

    if (!call_begin(&call, FP_FN_C_Finalize, CKR_OK))
        call.rv = real->C_Finalize(reserved);
    if (!call.counted)
        return call.rv;
    pthread_mutex_lock(&lock);
    account_locked(&call);
    if (call.rv == CKR_OK)
        initialized = false;
    pthread_mutex_unlock(&lock);
    return call.rv;
}

static CK_RV fp_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    struct fp_call call = {0};

    if (!call_begin(&call, FP_FN_C_GetSlotList, CKR_OK)) {
        if (token_present && call.absent) {
            /* Every token is removed, so no slot has one. */
            call.injected = true;
            call.rv = CKR_ARGUMENTS_BAD;
            if (count != NULL) {
                *count = 0;
                call.rv = CKR_OK;
            }
        } else {
            call.rv = real->C_GetSlotList(token_present, list, count);
        }
    }
    return call_end(&call);
}

static CK_RV fp_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    struct fp_call call = {0};

    if (!call_begin(&call, FP_FN_C_GetSlotInfo, CKR_OK)) {
        call.rv = real->C_GetSlotInfo(slot, info);
        if (call.rv == CKR_OK && call.absent && (info->flags & CKF_TOKEN_PRESENT)) {
            info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
            call.injected = true;
        }
    }
    return call_end(&call);
}

static CK_RV fp_C_Login(CK_SESSION_HANDLE s, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                        CK_ULONG pin_len)
{
    struct fp_call call = {.session = s, .is_login = true, .pin = pin, .pin_len = pin_len};

    if (!call_begin(&call, FP_FN_C_Login, CKR_DEVICE_REMOVED)) {
        pthread_rwlock_rdlock(&real_state);
        call.rv = real->C_Login(s, user_type, pin, pin_len);
        pthread_rwlock_unlock(&real_state);
    }
    return call_end(&call);
}

#define FP_ENTRY(name, absent, params, args) .name = fp_##name,
static CK_FUNCTION_LIST function_list = {.version = {2, 40},
                                         .C_Initialize = fp_C_Initialize,
                                         .C_Finalize = fp_C_Finalize,
                                         .C_GetFunctionList = C_GetFunctionList,
                                         .C_GetSlotList = fp_C_GetSlotList,
                                         .C_GetSlotInfo = fp_C_GetSlotInfo,
                                         .C_Login = fp_C_Login,
                                         FP_FORWARDED_FUNCTIONS(FP_ENTRY)};
#undef FP_ENTRY

/* FAULTP11_QUIRKS (quirks.c) wraps some entries; before anyone holds the list. */
static bool quirks_ok;
static void install_quirks(void)
{
    quirks_ok = fp_quirks_install(&function_list);
}

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    static pthread_once_t quirks_once = PTHREAD_ONCE_INIT;

    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&quirks_once, install_quirks);
    if (!quirks_ok)
        return CKR_GENERAL_ERROR;
    *list = &function_list;
    return CKR_OK;
}
