/* SPDX-License-Identifier: MIT */
/*
 * p11drive: drives a PKCS#11 module from a script on stdin, for tests/faultp11/selftest.sh.
 * It does what pkcs11-tool cannot: many calls in one process (so the schedule can change while
 * the module is loaded), several threads at once, and rebuilding a session after a failure.
 *
 *   p11drive MODULE TOKEN_LABEL KEY_LABEL < script
 *
 * The user PIN comes from the environment variable P11DRIVE_PIN (never argv). Script lines:
 *   sign N              N signatures one after the other in the script's session (kept
 *                       between lines); prints "sign: RV RV ..." (hex)
 *   sign-keep N         the same, but a failure does not replace the session: shows what the
 *                       token does with a session after a fault
 *   sign-new N          N signatures of N inputs not signed before (not compared with the
 *                       first); prints "sign-new: RV RV ..."
 *   open N              opens N sessions, then closes them; prints "open: RV RV ..."
 *   threads T N         T threads sign N times each; prints "threads: ok=X failed=Y"
 *   control [RULE]      atomically rewrites $FAULTP11_CONTROL to hold RULE (or nothing)
 *   sleep MS
 *   slots               prints "slots: N" (slots with a token present)
 *   login-file FILE     C_Login with each line of FILE as PIN; prints "login: RV RV ..."
 *   fork                a child initialises the module again and signs once; prints
 *                       "fork: init RV sign RV exit N"
 * With P11DRIVE_LOADER=p11-kit the module is loaded and initialised by p11-kit (managed), as
 * the token layer does; otherwise with dlopen and C_Initialize(CKF_OS_LOCKING_OK).
 * A session that fails is closed and replaced, logging in again if the token forgot the login,
 * as a long-running service would. Every successful signature must equal the first one
 * (PKCS#1 v1.5 is deterministic): otherwise p11drive exits 1. With P11DRIVE_SIG_OUT=FILE the
 * first signature is written to FILE at the end (to compare it with the real module's).
 */
#include <dlfcn.h>
#include <p11-kit/p11-kit.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR p11;
static CK_SLOT_ID slot;
static const char *key_label;
static const char *pin;

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char first_sig[1024];
static CK_ULONG first_sig_len;
static unsigned long mismatches;

static void die(const char *what, CK_RV rv)
{
    fprintf(stderr, "p11drive: %s failed: 0x%lx\n", what, rv);
    exit(2);
}

static bool find_slot(const char *label)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_TOKEN_INFO info;
    size_t len = strlen(label);

    if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return false;
    for (CK_ULONG i = 0; i < n; i++) {
        if (p11->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if (len <= sizeof(info.label) && memcmp(info.label, label, len) == 0 &&
            (len == sizeof(info.label) || info.label[len] == ' ')) {
            slot = slots[i];
            return true;
        }
    }
    return false;
}

/* A session logged in as user, with the signing key found in it. */
static CK_RV open_session(CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)key_label, strlen(key_label)},
    };
    CK_SESSION_INFO info;
    CK_ULONG found = 0;
    CK_RV rv;

    rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, s);
    if (rv != CKR_OK)
        return rv;
    rv = p11->C_GetSessionInfo(*s, &info);
    if (rv == CKR_OK && info.state == CKS_RO_PUBLIC_SESSION && pin != NULL) {
        rv = p11->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
        if (rv == CKR_USER_ALREADY_LOGGED_IN) /* another thread was quicker */
            rv = CKR_OK;
    }
    if (rv == CKR_OK)
        rv = p11->C_FindObjectsInit(*s, tmpl, 2);
    if (rv == CKR_OK) {
        rv = p11->C_FindObjects(*s, key, 1, &found);
        p11->C_FindObjectsFinal(*s);
    }
    if (rv == CKR_OK && found != 1)
        rv = CKR_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        p11->C_CloseSession(*s);
    return rv;
}

static void check_signature(const unsigned char *sig, CK_ULONG len)
{
    pthread_mutex_lock(&sig_lock);
    if (first_sig_len == 0) {
        memcpy(first_sig, sig, len);
        first_sig_len = len;
    } else if (len != first_sig_len || memcmp(sig, first_sig, len) != 0) {
        mismatches++;
    }
    pthread_mutex_unlock(&sig_lock);
}

/* One signature; on failure the session is replaced unless KEEP (the failure is still
 * reported). */
static CK_RV sign_data(CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *key, bool *have_session, bool keep,
                       const char *data, bool compare)
{
    CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
    unsigned char sig[1024];
    CK_ULONG sig_len = sizeof(sig);
    CK_RV rv = CKR_OK;

    if (!*have_session) {
        rv = open_session(s, key);
        *have_session = rv == CKR_OK;
    }
    if (rv == CKR_OK)
        rv = p11->C_SignInit(*s, &mech, *key);
    if (rv == CKR_OK)
        rv = p11->C_Sign(*s, (CK_BYTE_PTR)data, (CK_ULONG)strlen(data), sig, &sig_len);
    if (rv == CKR_OK) {
        if (compare)
            check_signature(sig, sig_len);
    } else if (*have_session && !keep) {
        p11->C_CloseSession(*s);
        *have_session = false;
    }
    return rv;
}

static CK_RV sign_once(CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *key, bool *have_session, bool keep)
{
    return sign_data(s, key, have_session, keep, "faultp11 selftest data", true);
}

/* The script's session: kept across lines, so a test can see what happens to a session that
 * was open while the schedule changed. */
static CK_SESSION_HANDLE script_session;
static CK_OBJECT_HANDLE script_key;
static bool script_have_session;

static void cmd_sign(unsigned long n, bool keep)
{
    printf("%s:", keep ? "sign-keep" : "sign");
    for (unsigned long i = 0; i < n; i++)
        printf(" 0x%lx", sign_once(&script_session, &script_key, &script_have_session, keep));
    printf("\n");
}

static void cmd_sign_new(unsigned long n)
{
    static unsigned long serial;
    char data[64];

    printf("sign-new:");
    for (unsigned long i = 0; i < n; i++) {
        snprintf(data, sizeof data, "faultp11 new input %lu", ++serial);
        printf(" 0x%lx",
               sign_data(&script_session, &script_key, &script_have_session, false, data, false));
    }
    printf("\n");
}

static void write_first_signature(void)
{
    const char *path = getenv("P11DRIVE_SIG_OUT");
    FILE *f;

    if (path == NULL || first_sig_len == 0)
        return;
    f = fopen(path, "wb");
    if (f == NULL || fwrite(first_sig, 1, first_sig_len, f) != first_sig_len || fclose(f) != 0) {
        fprintf(stderr, "p11drive: cannot write %s\n", path);
        exit(1);
    }
}

static void cmd_open(unsigned long n)
{
    CK_SESSION_HANDLE *s = calloc(n, sizeof(*s));
    CK_RV *rv = calloc(n, sizeof(*rv));

    if (s == NULL || rv == NULL)
        die("calloc", 0);
    printf("open:");
    for (unsigned long i = 0; i < n; i++) {
        rv[i] = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s[i]);
        printf(" 0x%lx", rv[i]);
    }
    printf("\n");
    for (unsigned long i = 0; i < n; i++)
        if (rv[i] == CKR_OK)
            p11->C_CloseSession(s[i]);
    free(s);
    free(rv);
}

struct worker {
    pthread_t thread;
    unsigned long n, ok, failed;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    bool have = false;

    for (unsigned long i = 0; i < w->n; i++) {
        if (sign_once(&s, &key, &have, false) == CKR_OK)
            w->ok++;
        else
            w->failed++;
    }
    if (have)
        p11->C_CloseSession(s);
    return NULL;
}

static void cmd_threads(unsigned long t, unsigned long n)
{
    struct worker *w = calloc(t, sizeof(*w));
    unsigned long ok = 0, failed = 0;

    if (w == NULL)
        die("calloc", 0);
    for (unsigned long i = 0; i < t; i++) {
        w[i].n = n;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
            die("pthread_create", 0);
    }
    for (unsigned long i = 0; i < t; i++) {
        pthread_join(w[i].thread, NULL);
        ok += w[i].ok;
        failed += w[i].failed;
    }
    printf("threads: ok=%lu failed=%lu\n", ok, failed);
    free(w);
}

static void cmd_control(const char *rule)
{
    const char *path = getenv("FAULTP11_CONTROL");
    char tmp[4096];
    FILE *f;

    if (path == NULL)
        die("control: FAULTP11_CONTROL unset", 0);
    snprintf(tmp, sizeof(tmp), "%s.p11drive", path);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", rule) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        die("control: writing the schedule", 0);
}

static void cmd_slots(void)
{
    CK_ULONG n = 0;
    CK_RV rv = p11->C_GetSlotList(CK_TRUE, NULL, &n);

    if (rv != CKR_OK)
        die("C_GetSlotList", rv);
    printf("slots: %lu\n", n);
}

static void cmd_login_file(const char *path)
{
    CK_SESSION_HANDLE s;
    char line[1024];
    FILE *f = fopen(path, "r");
    CK_RV rv;

    if (f == NULL)
        die("login-file: open", 0);
    rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        die("C_OpenSession", rv);
    printf("login:");
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        printf(" 0x%lx", p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)line, strlen(line)));
    }
    printf("\n");
    fclose(f);
    p11->C_CloseSession(s);
}

static void cmd_fork(void)
{
    CK_C_INITIALIZE_ARGS init = {.flags = CKF_OS_LOCKING_OK};
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    bool have = false;
    int status = 0;
    pid_t pid = fork();

    if (pid < 0)
        die("fork", 0);
    if (pid == 0) {
        CK_RV init_rv = p11->C_Initialize(&init), sign_rv = sign_once(&s, &key, &have, false);
        if (have)
            p11->C_CloseSession(s);
        p11->C_Finalize(NULL);
        printf("fork: init 0x%lx sign 0x%lx", init_rv, sign_rv);
        fflush(stdout);
        _exit(mismatches > 0 ? 1 : 0);
    }
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid", 0);
    printf(" exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void run_line(char *line)
{
    char *cmd = strtok(line, " \n"), *a = strtok(NULL, " \n"), *b = strtok(NULL, "\n");
    struct timespec ts;

    if (cmd == NULL || cmd[0] == '#')
        return;
    if (strcmp(cmd, "sign") == 0 && a != NULL) {
        cmd_sign(strtoul(a, NULL, 10), false);
    } else if (strcmp(cmd, "sign-keep") == 0 && a != NULL) {
        cmd_sign(strtoul(a, NULL, 10), true);
    } else if (strcmp(cmd, "sign-new") == 0 && a != NULL) {
        cmd_sign_new(strtoul(a, NULL, 10));
    } else if (strcmp(cmd, "open") == 0 && a != NULL) {
        cmd_open(strtoul(a, NULL, 10));
    } else if (strcmp(cmd, "threads") == 0 && a != NULL && b != NULL) {
        cmd_threads(strtoul(a, NULL, 10), strtoul(b, NULL, 10));
    } else if (strcmp(cmd, "control") == 0) {
        char rule[512];
        snprintf(rule, sizeof(rule), "%s%s%s", a ? a : "", b ? " " : "", b ? b : "");
        cmd_control(rule);
    } else if (strcmp(cmd, "sleep") == 0 && a != NULL) {
        unsigned long ms = strtoul(a, NULL, 10);
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)(ms % 1000) * 1000000;
        nanosleep(&ts, NULL);
    } else if (strcmp(cmd, "slots") == 0) {
        cmd_slots();
    } else if (strcmp(cmd, "fork") == 0) {
        cmd_fork();
    } else if (strcmp(cmd, "login-file") == 0 && a != NULL) {
        cmd_login_file(a);
    } else {
        fprintf(stderr, "p11drive: bad script line '%s'\n", cmd);
        exit(2);
    }
    fflush(stdout);
}

static bool use_p11_kit(void)
{
    const char *loader = getenv("P11DRIVE_LOADER");

    return loader != NULL && strcmp(loader, "p11-kit") == 0;
}

static void load_module(const char *path)
{
    CK_C_INITIALIZE_ARGS init = {.flags = CKF_OS_LOCKING_OK};
    CK_C_GetFunctionList get_list;
    void *handle;
    CK_RV rv;

    if (use_p11_kit()) {
        p11 = p11_kit_module_load(path, 0);
        if (p11 == NULL)
            die(p11_kit_message(), 0);
        rv = p11_kit_module_initialize(p11);
        if (rv != CKR_OK)
            die("p11_kit_module_initialize", rv);
        return;
    }
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        die(dlerror(), 0);
    get_list = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    if (get_list == NULL || get_list(&p11) != CKR_OK)
        die("C_GetFunctionList", 0);
    rv = p11->C_Initialize(&init);
    if (rv != CKR_OK)
        die("C_Initialize", rv);
}

static void unload_module(void)
{
    CK_RV rv;

    if (use_p11_kit()) {
        rv = p11_kit_module_finalize(p11);
        p11_kit_module_release(p11);
    } else {
        rv = p11->C_Finalize(NULL);
    }
    if (rv != CKR_OK)
        die("C_Finalize", rv);
}

int main(int argc, char **argv)
{
    char line[1024];

    if (argc != 4) {
        fprintf(stderr, "usage: p11drive MODULE TOKEN_LABEL KEY_LABEL < script\n");
        return 2;
    }
    key_label = argv[3];
    pin = getenv("P11DRIVE_PIN");
    load_module(argv[1]);
    if (!find_slot(argv[2]))
        die("finding the token", 0);
    while (fgets(line, sizeof(line), stdin) != NULL)
        run_line(line);
    if (script_have_session)
        p11->C_CloseSession(script_session);
    unload_module();
    write_first_signature();
    if (mismatches > 0) {
        fprintf(stderr, "p11drive: %lu signatures differ from the first one\n", mismatches);
        return 1;
    }
    return 0;
}
