/* SPDX-License-Identifier: MIT */
/* pkcs11: choosing the module from --module, the URI's module-name= / module-path= and
 * token.init-args (tok_choose_module), and the same through tok_open on a SoftHSM2 token:
 * every combination selects a module or is refused, none is ignored. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11/internal.h"
#include "tests/unit/testlib.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

static void assert_choice(const char *option, const char *name, const char *path,
                          enum tok_module_kind kind, const char *value, const char *check)
{
    struct tok_module_choice c;
    struct itl_error err = {0};

    ck_assert_msg(tok_choose_module(option, name, path, NULL, &c, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(c.kind, kind);
    if (value)
        ck_assert_str_eq(c.value, value);
    else
        ck_assert_ptr_null(c.value);
    if (check)
        ck_assert_str_eq(c.check_path, check);
    else
        ck_assert_ptr_null(c.check_path);
}

static void assert_refused(const char *option, const char *name, const char *path,
                           const char *init_args, const char *says)
{
    struct tok_module_choice c;
    struct itl_error err = {0};

    ck_assert_int_eq(tok_choose_module(option, name, path, init_args, &c, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_msg(strstr(err.msg, says), "'%s' lacks '%s'", err.msg, says);
}

START_TEST(test_choose_module)
{
    assert_choice(NULL, NULL, NULL, TOK_MODULE_PROXY, NULL, NULL);
    assert_choice(NULL, "softhsm2", NULL, TOK_MODULE_NAME, "softhsm2", NULL);
    assert_choice(NULL, NULL, SOFTHSM, TOK_MODULE_PATH, SOFTHSM, NULL);
    /* both in the URI: by name, and the registered file must be the path */
    assert_choice(NULL, "softhsm2", SOFTHSM, TOK_MODULE_NAME, "softhsm2", SOFTHSM);
    assert_choice(SOFTHSM, NULL, NULL, TOK_MODULE_PATH, SOFTHSM, NULL);
    assert_choice(SOFTHSM, NULL, SOFTHSM, TOK_MODULE_PATH, SOFTHSM, NULL);
    assert_choice("softhsm2", "softhsm2", NULL, TOK_MODULE_NAME, "softhsm2", NULL);
    assert_choice("softhsm2", NULL, SOFTHSM, TOK_MODULE_NAME, "softhsm2", SOFTHSM);
}
END_TEST

START_TEST(test_choose_module_refusals)
{
    assert_refused(NULL, NULL, "libsofthsm2.so", NULL, "module-path=libsofthsm2.so");
    assert_refused("lib/x.so", NULL, NULL, NULL, "absolute path or a p11-kit module name");
    assert_refused(SOFTHSM, "softhsm2", NULL, NULL, "says module-name=softhsm2");
    assert_refused(SOFTHSM, NULL, "/usr/lib/x86_64-linux-gnu/libsoftokn3.so", NULL,
                   "says module-path=/usr/lib/x86_64-linux-gnu/libsoftokn3.so");
    assert_refused("opensc-pkcs11", "softhsm2", NULL, NULL, "but the module is 'opensc-pkcs11'");
    assert_refused("softhsm2", NULL, NULL, "configdir=x", "registered config (x-init-reserved)");
    assert_refused(NULL, "softhsm2", NULL, "configdir=x", "registered config (x-init-reserved)");
    assert_refused(NULL, NULL, NULL, "configdir=x", "set token.module to its absolute path");
}
END_TEST

/* tok_open with this module option, URI tail and init args: 0, or -1 with err filled. */
static int open_with(const struct testlib_token *tt, const char *module, const char *uri_tail,
                     const char *init_args, struct itl_error *err)
{
    char uri[700];
    struct tok_options o = {.module = module, .uri = uri, .init_args = init_args};
    struct tok *t = NULL;
    int rc;

    snprintf(uri, sizeof uri, "%s%s", tt->uri, uri_tail);
    memset(err, 0, sizeof *err);
    rc = tok_open(&o, &t, err);
    tok_close(t);
    return rc;
}

START_TEST(test_open_by_uri_module)
{
    struct testlib_token tt;
    struct itl_error err;

    testlib_make_token("itl-uri", &tt);
    /* The URI alone chooses the module: by path, by the p11-kit name the package registers. */
    ck_assert_msg(open_with(&tt, NULL, "?module-path=" SOFTHSM, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(open_with(&tt, NULL, "?module-name=softhsm2", NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(open_with(&tt, "softhsm2", "?module-path=" SOFTHSM, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(open_with(&tt, SOFTHSM, "?module-path=" SOFTHSM, NULL, &err) == 0, "%s", err.msg);
    /* Never ignored: a name p11-kit does not know, a name that contradicts the path. */
    ck_assert_int_eq(open_with(&tt, NULL, "?module-name=no-such-module", NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "no p11-kit module named 'no-such-module' (registered: "), "%s",
                  err.msg);
    ck_assert_int_eq(open_with(&tt, SOFTHSM, "?module-name=softhsm2", NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "module-name=softhsm2"), "%s", err.msg);
    ck_assert_int_eq(open_with(&tt, "softhsm2",
                               "?module-path=/usr/lib/x86_64-linux-gnu/libsoftokn3.so", NULL, &err),
                     -1);
    ck_assert_msg(strstr(err.msg, "but the p11-kit module 'softhsm2' is "), "%s", err.msg);
}
END_TEST

START_TEST(test_init_args_reach_c_initialize)
{
    struct testlib_token tt;
    struct itl_error err;

    testlib_make_token("itl-initargs", &tt);
    /* SoftHSM2 answers CKR_ARGUMENTS_BAD to any pReserved: proof that ours were passed. */
    ck_assert_int_eq(open_with(&tt, SOFTHSM, "", "configdir='sql:/nowhere'", &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_MODULE);
    ck_assert_msg(strstr(err.msg, "CKR_ARGUMENTS_BAD") && strstr(err.msg, "token.init-args"), "%s",
                  err.msg);
    ck_assert_msg(open_with(&tt, SOFTHSM, "", "", &err) == 0, "%s", err.msg);
    ck_assert_int_eq(open_with(&tt, "softhsm2", "", "configdir=x", &err), -1);
    ck_assert_msg(strstr(err.msg, "x-init-reserved"), "%s", err.msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pkcs11_uri");
    TCase *tc = tcase_create("uri");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_choose_module);
    tcase_add_test(tc, test_choose_module_refusals);
    tcase_add_test(tc, test_open_by_uri_module);
    tcase_add_test(tc, test_init_args_reach_c_initialize);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
