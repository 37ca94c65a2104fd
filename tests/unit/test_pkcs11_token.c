/* SPDX-License-Identifier: MIT */
/* pkcs11: PIN sources, login guards, module loading, URI selection, mechanisms. SoftHSM2 for
 * real; every test makes its own token inside the (forked) test. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>

#include "pkcs11/internal.h"
#include "tests/unit/testlib.h"

static void write_mode(const char *path, const void *data, size_t len, mode_t mode)
{
    testlib_write(path, data, len);
    ck_assert_int_eq(chmod(path, mode), 0);
}

static struct tok *open_ok(const char *module, const char *uri)
{
    struct tok_options o = {.module = module, .uri = uri};
    struct itl_error err;
    struct tok *t = NULL;

    if (tok_open(&o, &t, &err) != 0)
        ck_abort_msg("tok_open(%s): %s", uri, err.msg);
    return t;
}

/* ---- PINs ---- */

START_TEST(test_pin_file_strips_only_crlf)
{
    const char *dir = testlib_tmpdir("pin");
    char path[600];
    struct tok_pin pin;
    struct itl_error err;

    snprintf(path, sizeof path, "%s/pin", dir);
    write_mode(path, " user:pa\0ss \r\n\n", 15, 0600);
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), 0);
    ck_assert_uint_eq(pin.len, 12); /* leading/inner blanks, ':' and NUL kept */
    ck_assert_mem_eq(pin.bytes, " user:pa\0ss ", 12);
    tok_pin_wipe(&pin);
    ck_assert_ptr_null(pin.bytes);
    ck_assert_uint_eq(pin.len, 0);
}
END_TEST

START_TEST(test_pin_file_refused)
{
    const char *dir = testlib_tmpdir("pin");
    char path[600], big[300];
    struct tok_pin pin = {0};
    struct itl_error err;

    snprintf(path, sizeof path, "%s/pin", dir);
    write_mode(path, "secret-1234\n", 12, 0640);
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "mode 0640"));
    ck_assert_ptr_nonnull(strstr(err.msg, "chmod 600"));
    ck_assert_ptr_null(strstr(err.msg, "secret"));
    ck_assert_ptr_null(pin.bytes);

    write_mode(path, "\n", 1, 0600);
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "is empty"));

    memset(big, 'x', sizeof big);
    write_mode(path, big, 256, 0600);
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "more than 255 bytes"));
    write_mode(path, big, 255, 0600); /* the longest PIN */
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), 0);
    ck_assert_uint_eq(pin.len, 255);
    tok_pin_wipe(&pin);

    ck_assert_int_eq(tok_pin_from_file(dir, &pin, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    snprintf(path, sizeof path, "%s/missing", dir);
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "No such file"));
}
END_TEST

START_TEST(test_pin_fd)
{
    int fds[2];
    struct tok_pin pin;
    struct itl_error err;

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "12:34\n", 6), 6);
    close(fds[1]);
    ck_assert_int_eq(tok_pin_from_fd(fds[0], &pin, &err), 0);
    ck_assert_uint_eq(pin.len, 5);
    ck_assert_mem_eq(pin.bytes, "12:34", 5);
    ck_assert_int_eq(fcntl(fds[0], F_GETFD), -1); /* closed */
    tok_pin_wipe(&pin);
}
END_TEST

START_TEST(test_pin_prompt_without_terminal)
{
    pid_t pid = fork();
    int status;

    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        struct tok_pin pin = {0};
        struct itl_error err;
        setsid(); /* no controlling terminal any more */
        if (tok_pin_prompt("PIN: ", &pin, &err) == -1 && err.cls == ITL_E_USAGE &&
            strstr(err.msg, "--pin-file") && !pin.bytes)
            _exit(0);
        _exit(1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(test_login_guard)
{
    CK_TOKEN_INFO info;
    struct itl_error err;

    memset(&info, ' ', sizeof info);
    memcpy(info.label, "guarded", 7);
    info.flags = CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
    ck_assert_int_eq(tok_login_guard(&info, &err), 0);
    /* a low count alone is no reason to refuse */
    info.flags |= CKF_USER_PIN_COUNT_LOW;
    ck_assert_int_eq(tok_login_guard(&info, &err), 0);

    info.flags |= CKF_USER_PIN_FINAL_TRY;
    ck_assert_int_eq(tok_login_guard(&info, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_PIN);
    ck_assert_ptr_nonnull(strstr(err.msg, "token 'guarded'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "CKF_USER_PIN_FINAL_TRY"));

    info.flags |= CKF_USER_PIN_LOCKED;
    ck_assert_int_eq(tok_login_guard(&info, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "CKF_USER_PIN_LOCKED"));

    info.flags = CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_USER_PIN_TO_BE_CHANGED;
    ck_assert_int_eq(tok_login_guard(&info, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "CKF_USER_PIN_TO_BE_CHANGED"));

    info.flags = CKF_LOGIN_REQUIRED;
    ck_assert_int_eq(tok_login_guard(&info, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "never set"));
}
END_TEST

/* ---- Opening and logging in ---- */

START_TEST(test_open_login_status)
{
    struct testlib_token tt;
    struct tok_pin pin;
    struct tok_status st;
    struct itl_error err;
    struct tok *t;

    testlib_make_token("itl-open", &tt);
    t = open_ok(tt.module, tt.uri);
    ck_assert_int_eq(tok_get_status(t, &st, &err), 0);
    ck_assert_int_eq(st.present, 1);
    ck_assert_int_eq(st.logged_in, 0);
    ck_assert_str_eq(st.label, "itl-open");
    ck_assert_str_eq(st.manufacturer, "SoftHSM project");
    ck_assert_uint_eq(st.pool_size, (size_t)sysconf(_SC_NPROCESSORS_ONLN));
    ck_assert_int_eq(tok_pin_from_file(tt.pin_file, &pin, &err), 0);
    ck_assert_int_eq(tok_login(t, &pin, &err), 0);
    tok_pin_wipe(&pin);
    ck_assert_int_eq(tok_get_status(t, &st, &err), 0);
    ck_assert_int_eq(st.logged_in, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    ck_assert_uint_eq(tok_test_login_calls(t), 1);
    tok_close(t);
}
END_TEST

START_TEST(test_wrong_pin_never_sent_again)
{
    struct testlib_token tt;
    struct tok_pin wrong, right;
    struct itl_error err;
    struct tok *t;

    testlib_make_token("itl-wrongpin", &tt);
    t = open_ok(tt.module, tt.uri);
    ck_assert_int_eq(tok_pin_set(&wrong, "wrong:pin-0000", 14, &err), 0);
    ck_assert_int_eq(tok_login(t, &wrong, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_PIN);
    ck_assert_uint_eq(err.ckr, CKR_PIN_INCORRECT);
    ck_assert_ptr_nonnull(strstr(err.msg, "CKR_PIN_INCORRECT"));
    ck_assert_ptr_nonnull(strstr(err.msg, "itl-wrongpin"));
    ck_assert_ptr_null(strstr(err.msg, "wrong:pin"));
    ck_assert_uint_eq(tok_test_login_calls(t), 1);

    /* Even the right PIN does not reach the token: this tok has burned its one try. */
    ck_assert_int_eq(tok_pin_set(&right, tt.pin, strlen(tt.pin), &err), 0);
    ck_assert_int_eq(tok_login(t, &right, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_PIN);
    ck_assert_ptr_nonnull(strstr(err.msg, "the PIN was rejected earlier; not sending it again"));
    ck_assert_uint_eq(tok_test_login_calls(t), 1);
    ck_assert_ptr_null(t->pin.bytes); /* the held copy was wiped */
    tok_close(t);

    /* A fresh open with the right PIN works: the token itself was not locked by us. */
    t = open_ok(tt.module, tt.uri);
    ck_assert_int_eq(tok_login(t, &right, &err), 0);
    tok_close(t);
    tok_pin_wipe(&wrong);
    tok_pin_wipe(&right);
}
END_TEST

START_TEST(test_no_pin_and_pin_source)
{
    struct testlib_token tt;
    struct itl_error err;
    struct tok *t;
    char uri[900];

    testlib_make_token("itl-pinsrc", &tt);
    t = open_ok(tt.module, tt.uri);
    ck_assert_int_eq(tok_login(t, NULL, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_PIN);
    ck_assert_ptr_nonnull(strstr(err.msg, "needs a PIN"));
    ck_assert_uint_eq(tok_test_login_calls(t), 0);
    tok_close(t);

    ck_assert_int_lt(snprintf(uri, sizeof uri, "%s?pin-source=file:%s", tt.uri, tt.pin_file),
                     (int)sizeof uri);
    t = open_ok(tt.module, uri);
    ck_assert_int_eq(tok_login(t, NULL, &err), 0);
    ck_assert_uint_eq(tok_test_login_calls(t), 1);
    tok_close(t);

    snprintf(uri, sizeof uri, "%s?pin-source=%%7Cecho%%201234", tt.uri);
    t = open_ok(tt.module, uri);
    ck_assert_int_eq(tok_login(t, NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "commands are not run"));
    tok_close(t);
}
END_TEST

/* ---- URIs ---- */

START_TEST(test_uri_matches_nothing)
{
    struct testlib_token tt;
    struct tok_options o = {0};
    struct itl_error err;
    struct tok *t = NULL;

    testlib_make_token("itl-present", &tt);
    o.module = tt.module;
    o.uri = "pkcs11:token=itl-absent";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(err.cls, ITL_E_NO_TOKEN);
    ck_assert_ptr_nonnull(
        strstr(err.msg, "token not present: no token matches pkcs11:token=itl-absent"));
    ck_assert_ptr_nonnull(strstr(err.msg, "token='itl-present' serial="));
    ck_assert_ptr_nonnull(strstr(err.msg, "manufacturer='SoftHSM project'"));
}
END_TEST

/* A second token with the same label, made through p11-kit like any other client would. */
static void add_token(const struct testlib_token *tt, const char *label, char serial[17])
{
    CK_FUNCTION_LIST *m = p11_kit_module_load(tt->module, 0);
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_UTF8CHAR padded[32];
    CK_SESSION_HANDLE h;
    CK_TOKEN_INFO info;
    char so_path[700], so[64];
    size_t so_len;
    uint8_t *so_file;
    CK_ULONG i;

    snprintf(so_path, sizeof so_path, "%s/so.pin", tt->dir);
    so_file = testlib_read(so_path, &so_len);
    snprintf(so, sizeof so, "%s", (char *)so_file);
    free(so_file);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(p11_kit_module_initialize(m), CKR_OK);
    ck_assert_uint_eq(m->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(m->C_GetTokenInfo(slots[i], &info), CKR_OK);
        if (!(info.flags & CKF_TOKEN_INITIALIZED))
            break;
    }
    ck_assert_uint_lt(i, n);
    memset(padded, ' ', sizeof padded);
    memcpy(padded, label, strlen(label));
    ck_assert_uint_eq(m->C_InitToken(slots[i], (CK_UTF8CHAR *)so, strlen(so), padded), CKR_OK);
    ck_assert_uint_eq(m->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(m->C_GetTokenInfo(slots[i], &info), CKR_OK);
        if ((info.flags & CKF_TOKEN_INITIALIZED) && !(info.flags & CKF_USER_PIN_INITIALIZED))
            break;
    }
    ck_assert_uint_lt(i, n);
    tok_padded_to_str(info.serialNumber, 16, serial, 17);
    ck_assert_uint_eq(
        m->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
    ck_assert_uint_eq(m->C_Login(h, CKU_SO, (CK_UTF8CHAR *)so, strlen(so)), CKR_OK);
    ck_assert_uint_eq(m->C_InitPIN(h, (CK_UTF8CHAR *)tt->pin, strlen(tt->pin)), CKR_OK);
    m->C_Logout(h);
    m->C_CloseSession(h);
    p11_kit_module_finalize(m);
    p11_kit_module_release(m);
}

START_TEST(test_uri_matches_several)
{
    struct testlib_token tt;
    struct tok_options o = {0};
    struct tok_status st;
    struct itl_error err;
    struct tok *t = NULL;
    char serial[17], uri[200];

    testlib_make_token("itl-twin", &tt);
    add_token(&tt, "itl-twin", serial);
    o.module = tt.module;
    o.uri = tt.uri;
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(err.cls, ITL_E_AMBIGUOUS);
    ck_assert_ptr_nonnull(strstr(err.msg, "matches 2 tokens"));
    ck_assert_ptr_nonnull(strstr(err.msg, serial));
    ck_assert_ptr_nonnull(strstr(err.msg, "serial="));

    /* The serial picks one, before any login. */
    snprintf(uri, sizeof uri, "pkcs11:token=itl-twin;serial=%s", serial);
    t = open_ok(tt.module, uri);
    ck_assert_int_eq(tok_get_status(t, &st, &err), 0);
    ck_assert_str_eq(st.serial, serial);
    ck_assert_uint_eq(tok_test_login_calls(t), 0);
    tok_close(t);
}
END_TEST

START_TEST(test_uri_refused)
{
    struct testlib_token tt;
    struct tok_options o = {0};
    struct itl_error err;
    struct tok *t = NULL;

    testlib_make_token("itl-uri", &tt);
    o.module = tt.module;
    o.uri = "token=itl-uri";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a valid RFC 7512"));

    o.uri = "pkcs11:token=itl-uri?pin-value=73519";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "pin-value"));
    ck_assert_ptr_null(strstr(err.msg, "73519"));

    o.uri = "pkcs11:slot-id=1";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "slot-id"));

    o.uri = "pkcs11:tokn=itl-uri";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not know"));
    ck_assert_ptr_null(t);
}
END_TEST

/* ---- Modules ---- */

START_TEST(test_module_path_checked)
{
    const char *dir = testlib_tmpdir("mod");
    struct tok_options o = {.uri = "pkcs11:"};
    struct itl_error err;
    struct tok *t = NULL;
    char path[600];

    o.module = "/nonexistent/libnothing.so";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_MODULE);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/libnothing.so: no such file"));

    o.module = dir;
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "is not a regular file"));

    snprintf(path, sizeof path, "%s/fake.so", dir);
    write_mode(path, "not an ELF file", 15, 0644);
    o.module = path;
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_MODULE);
    ck_assert_ptr_nonnull(strstr(err.msg, "could not load"));

    ck_assert_int_eq(chmod(path, 0666), 0);
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "writable by group or others"));

    o.module = "lib/softhsm/libsofthsm2.so";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "absolute path"));

    o.module = "no-such-module";
    ck_assert_int_eq(tok_open(&o, &t, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_MODULE);
    ck_assert_ptr_nonnull(strstr(err.msg, "no p11-kit module named 'no-such-module'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "softhsm2"));
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_module_by_name_and_proxy)
{
    struct testlib_token tt;
    struct tok_pin pin;
    struct tok_status st;
    struct itl_error err;
    struct tok *t;

    testlib_make_token("itl-byname", &tt);
    t = open_ok("softhsm2", tt.uri);
    ck_assert_int_eq(tok_get_status(t, &st, &err), 0);
    ck_assert_str_eq(st.label, "itl-byname");
    tok_close(t);

    t = open_ok(NULL, "pkcs11:token=itl-byname;manufacturer=SoftHSM%20project");
    ck_assert_int_eq(tok_pin_from_file(tt.pin_file, &pin, &err), 0);
    ck_assert_int_eq(tok_login(t, &pin, &err), 0);
    tok_pin_wipe(&pin);
    ck_assert_int_eq(tok_get_status(t, &st, &err), 0);
    ck_assert_str_eq(st.label, "itl-byname");
    ck_assert_int_eq(st.logged_in, 1);
    tok_close(t);
}
END_TEST

/* ---- Mechanisms ---- */

START_TEST(test_mechanism_check)
{
    struct testlib_token tt;
    struct itl_error err;
    struct tok *t;

    testlib_make_token("itl-mech", &tt);
    t = open_ok(tt.module, tt.uri);
    ck_assert_int_eq(tok_check_mechanism(t, CKM_RSA_PKCS, &err), 0);
    ck_assert_int_eq(tok_check_mechanism(t, CKM_SHA512_RSA_PKCS, &err), 0);
    /* SoftHSM2 has no ANSI X9.31 RSA */
    ck_assert_int_eq(tok_check_mechanism(t, CKM_RSA_X9_31, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_MECHANISM);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not offer CKM_RSA_X9_31 for signing"));
    /* present, but a digest: no CKF_SIGN */
    ck_assert_int_eq(tok_check_mechanism(t, CKM_SHA256, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "CKM_SHA256 for signing"));
    ck_assert_int_eq(tok_check_mechanism(t, 0x80001234UL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "mechanism 0x80001234"));
    tok_close(t);
}
END_TEST

/* ---- The common retry loop ---- */

/* A session operation that fails with the scripted CKRs in turn, then succeeds. */
struct scripted {
    const CK_RV *rvs;
    size_t n, calls;
    int retried_at_once, gave_up, gave_up_after_rebuild;
};

static int scripted_fn(struct tok *t, CK_SESSION_HANDLE h, void *vctx, struct itl_error *err)
{
    struct scripted *s = vctx;
    CK_RV rv = s->calls < s->n ? s->rvs[s->calls] : CKR_OK;

    (void)t;
    (void)h;
    s->calls++;
    return rv == CKR_OK ? 0 : tok_ckr_err(err, rv, "scripted");
}

static int scripted_retry_at_once(void *vctx, int in_fn, const struct itl_error *err)
{
    struct scripted *s = vctx;

    if (!in_fn || err->ckr != CKR_KEY_HANDLE_INVALID || s->retried_at_once)
        return 0;
    s->retried_at_once = 1;
    return 1;
}

static int scripted_give_up(void *vctx, int in_fn, int after_rebuild, struct itl_error *err)
{
    struct scripted *s = vctx;

    (void)in_fn;
    (void)err;
    s->gave_up = 1;
    s->gave_up_after_rebuild = after_rebuild;
    return -1;
}

static const struct tok_retry_rules scripted_rules = {
    .fn_explains_failure = 1,
    .retry_at_once = scripted_retry_at_once,
    .give_up = scripted_give_up,
};

static unsigned long rebuilds_of(struct tok *t)
{
    struct tok_status st;
    struct itl_error err;

    ck_assert_int_eq(tok_get_status(t, &st, &err), 0);
    return st.rebuilds;
}

START_TEST(test_retry_loop)
{
    static const CK_RV lost[] = {CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED};
    static const CK_RV always_lost[] = {CKR_SESSION_HANDLE_INVALID, CKR_SESSION_HANDLE_INVALID,
                                        CKR_SESSION_HANDLE_INVALID, CKR_SESSION_HANDLE_INVALID,
                                        CKR_SESSION_HANDLE_INVALID};
    static const CK_RV bad_args[] = {CKR_ARGUMENTS_BAD};
    static const CK_RV handle_gone[] = {CKR_KEY_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID};
    struct testlib_token tt;
    struct itl_error err;
    struct tok *t;
    struct scripted s;

    testlib_make_token("itl-retry", &tt);
    t = open_ok(tt.module, tt.uri);

    /* lost sessions are rebuilt and the operation repeated */
    s = (struct scripted){.rvs = lost, .n = 2};
    ck_assert_int_eq(tok_run(t, 0, scripted_fn, &s, &err), 0);
    ck_assert_uint_eq(s.calls, 3);
    ck_assert_uint_eq(rebuilds_of(t), 2);

    /* ... within the budget (default 3 rebuilds) */
    s = (struct scripted){.rvs = always_lost, .n = 5};
    ck_assert_int_eq(tok_run_with(t, 0, scripted_fn, &s, &scripted_rules, &err), -1);
    ck_assert_uint_eq(s.calls, 4);
    ck_assert_int_eq(s.gave_up, 1);
    ck_assert_int_eq(s.gave_up_after_rebuild, 1);
    ck_assert_uint_eq(err.ckr, CKR_SESSION_HANDLE_INVALID);
    ck_assert_uint_eq(rebuilds_of(t), 5);

    /* a failure no rebuild can mend is not retried */
    s = (struct scripted){.rvs = bad_args, .n = 1};
    ck_assert_int_eq(tok_run_with(t, 0, scripted_fn, &s, &scripted_rules, &err), -1);
    ck_assert_uint_eq(s.calls, 1);
    ck_assert_int_eq(s.gave_up, 1);
    ck_assert_int_eq(s.gave_up_after_rebuild, 0);
    ck_assert_uint_eq(err.ckr, CKR_ARGUMENTS_BAD);

    /* the rules may ask for one retry at once, without a rebuild */
    s = (struct scripted){.rvs = handle_gone, .n = 1};
    ck_assert_int_eq(tok_run_with(t, 0, scripted_fn, &s, &scripted_rules, &err), 0);
    ck_assert_uint_eq(s.calls, 2);
    s = (struct scripted){.rvs = handle_gone, .n = 2};
    ck_assert_int_eq(tok_run_with(t, 0, scripted_fn, &s, &scripted_rules, &err), -1);
    ck_assert_uint_eq(s.calls, 2);
    ck_assert_uint_eq(err.ckr, CKR_KEY_HANDLE_INVALID);
    ck_assert_uint_eq(rebuilds_of(t), 5);
    tok_close(t);
}
END_TEST

START_TEST(test_ckr_text)
{
    struct itl_error err;

    ck_assert_str_eq(tok_ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    ck_assert_str_eq(tok_ckr_name(CKR_SESSION_HANDLE_INVALID), "CKR_SESSION_HANDLE_INVALID");
    ck_assert_str_eq(tok_ckr_name(0x80000001UL), "CKR_VENDOR_DEFINED");
    tok_ckr_err(&err, CKR_DEVICE_REMOVED, "signing");
    ck_assert_int_eq(err.cls, ITL_E_NO_TOKEN);
    ck_assert_uint_eq(err.ckr, CKR_DEVICE_REMOVED);
    ck_assert_ptr_nonnull(strstr(err.msg, "signing: CKR_DEVICE_REMOVED (0x00000032: "));
    ck_assert_ptr_nonnull(strstr(err.msg, p11_kit_strerror(CKR_DEVICE_REMOVED)));
    ck_assert_ptr_nonnull(strstr(err.msg, "plug it in"));
    ck_assert(tok_rv_needs_rebuild(CKR_USER_NOT_LOGGED_IN));
    ck_assert(tok_rv_needs_rebuild(CKR_SESSION_CLOSED));
    ck_assert(!tok_rv_needs_rebuild(CKR_PIN_INCORRECT));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pkcs11_token");
    TCase *tc = tcase_create("token");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pin_file_strips_only_crlf);
    tcase_add_test(tc, test_retry_loop);
    tcase_add_test(tc, test_pin_file_refused);
    tcase_add_test(tc, test_pin_fd);
    tcase_add_test(tc, test_pin_prompt_without_terminal);
    tcase_add_test(tc, test_login_guard);
    tcase_add_test(tc, test_open_login_status);
    tcase_add_test(tc, test_wrong_pin_never_sent_again);
    tcase_add_test(tc, test_no_pin_and_pin_source);
    tcase_add_test(tc, test_uri_matches_nothing);
    tcase_add_test(tc, test_uri_matches_several);
    tcase_add_test(tc, test_uri_refused);
    tcase_add_test(tc, test_module_path_checked);
    tcase_add_test(tc, test_module_by_name_and_proxy);
    tcase_add_test(tc, test_mechanism_check);
    tcase_add_test(tc, test_ckr_text);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
