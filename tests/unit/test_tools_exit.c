/* SPDX-License-Identifier: MIT */
/*
 * tools: the one mapping from an error class to an exit code (cli_exit_for). Every class of
 * common.h gets the code itl-sign(1) documents for it, and the codes are the man page's numbers.
 */
#include "tools/cli.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tests/unit/testlib.h"

/* Class -> code, as EXIT STATUS in docs/itl-sign.1 describes them. */
static const struct {
    enum itl_errclass cls;
    int code;
} documented[] = {
    {ITL_E_NONE, EXIT_OK},
    {ITL_E_USAGE, EXIT_USAGE},      /* 2: bad command line or configuration */
    {ITL_E_INPUT, EXIT_INPUT},      /* 3: input unreadable or malformed */
    {ITL_E_DENIED, EXIT_DENIED},    /* 5: refused by policy or access rules */
    {ITL_E_IO, EXIT_INPUT},         /* 3 by default: an input could not be read */
    {ITL_E_MODULE, EXIT_TOKEN},     /* 4: module, token, PIN, key or mechanism problem */
    {ITL_E_NO_TOKEN, EXIT_TOKEN},   /* 4 */
    {ITL_E_AMBIGUOUS, EXIT_TOKEN},  /* 4 */
    {ITL_E_PIN, EXIT_TOKEN},        /* 4 */
    {ITL_E_NO_KEY, EXIT_TOKEN},     /* 4 */
    {ITL_E_MECHANISM, EXIT_TOKEN},  /* 4 */
    {ITL_E_VERIFY, EXIT_INVALID},   /* 1: does not verify */
    {ITL_E_DEVICE, EXIT_TOKEN},     /* 4 */
    {ITL_E_INTERNAL, EXIT_SERVICE}, /* 7: as the engine's internal errors */
};

#define N_DOCUMENTED (sizeof documented / sizeof documented[0])

START_TEST(test_every_class_has_its_documented_code)
{
    int seen[ITL_E_INTERNAL + 1] = {0};

    for (size_t i = 0; i < N_DOCUMENTED; i++) {
        struct itl_error err = {.cls = documented[i].cls};
        ck_assert_msg(cli_exit_for(&err) == documented[i].code, "class %s: exit %d, want %d",
                      err_class_name(err.cls), cli_exit_for(&err), documented[i].code);
        seen[documented[i].cls] = 1;
    }
    /* A class added to common.h must be added here (and to cli_exit_for) too. */
    for (int c = ITL_E_NONE; c <= ITL_E_INTERNAL; c++)
        ck_assert_msg(seen[c], "class %d (%s) has no documented code in this test", c,
                      err_class_name((enum itl_errclass)c));
}
END_TEST

START_TEST(test_io_takes_the_callers_meaning)
{
    struct itl_error err = {.cls = ITL_E_IO};

    ck_assert_int_eq(cli_exit_for_io(&err, EXIT_INPUT), EXIT_INPUT);
    ck_assert_int_eq(cli_exit_for_io(&err, EXIT_OUTPUT), EXIT_OUTPUT);
    ck_assert_int_eq(cli_exit_for_io(&err, EXIT_USAGE), EXIT_USAGE);
    ck_assert_int_eq(cli_exit_for_io(&err, EXIT_DENIED), EXIT_DENIED);
    /* Only I/O depends on the direction: every other class keeps its code. */
    for (size_t i = 0; i < N_DOCUMENTED; i++) {
        err.cls = documented[i].cls;
        if (err.cls == ITL_E_IO)
            continue;
        ck_assert_int_eq(cli_exit_for_io(&err, EXIT_OUTPUT), documented[i].code);
    }
}
END_TEST

START_TEST(test_the_ckr_and_message_do_not_matter)
{
    struct itl_error err;

    err_set(&err, ITL_E_PIN, "wrong PIN");
    err.ckr = 0xa0; /* CKR_PIN_INCORRECT */
    ck_assert_int_eq(cli_exit_for(&err), EXIT_TOKEN);
    err_set(&err, ITL_E_USAGE, "PIN file is world-readable");
    ck_assert_int_eq(cli_exit_for(&err), EXIT_USAGE);
}
END_TEST

/* The numbers of enum cli_exit are the man page's. */
START_TEST(test_codes_are_the_man_pages)
{
    static const struct {
        int code;
        const char *text;
    } page[] = {
        {EXIT_OK, ".B 0\nSuccess."},
        {EXIT_INVALID, ".B 1\nThe file does not verify"},
        {EXIT_USAGE, ".B 2\nBad command line or configuration."},
        {EXIT_INPUT, ".B 3\nAn input file is unreadable or malformed."},
        {EXIT_TOKEN, ".B 4\nModule, token, PIN, key or mechanism problem."},
        {EXIT_DENIED, ".B 5\nRefused by policy"},
        {EXIT_OUTPUT, ".B 6\nAn output could not be written"},
        {EXIT_SERVICE, ".B 7\nThe service cannot be reached"},
        {EXIT_PARTIAL, ".B 8\nBatch: some files failed"},
    };
    char path[1024];
    size_t len;
    char *man;

    snprintf(path, sizeof path, "%s/docs/itl-sign.1", testlib_src());
    man = (char *)testlib_read(path, &len);
    for (size_t i = 0; i < sizeof page / sizeof page[0]; i++) {
        char want[128];
        /* The entry's number is the enum's value. */
        snprintf(want, sizeof want, ".B %d\n%s", page[i].code, strchr(page[i].text, '\n') + 1);
        ck_assert_msg(strstr(man, want), "docs/itl-sign.1 has no \"%s\"", want);
        ck_assert_msg(strcmp(want, page[i].text) == 0, "exit code %d is not the man page's %s",
                      page[i].code, page[i].text);
    }
    free(man);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tools_exit");
    TCase *tc = tcase_create("exit");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_every_class_has_its_documented_code);
    tcase_add_test(tc, test_io_takes_the_callers_meaning);
    tcase_add_test(tc, test_the_ckr_and_message_do_not_matter);
    tcase_add_test(tc, test_codes_are_the_man_pages);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
