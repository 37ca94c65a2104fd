/* SPDX-License-Identifier: MIT */
/* common: the one error type (class, CKR, message), prefixes in place, and cut text marked. */
#include "common/common.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_set_resets_ckr_and_returns_minus_one)
{
    struct itl_error err = {.ckr = 0xa0};

    ck_assert_int_eq(err_set(&err, ITL_E_INPUT, "line %d: bad tag %s", 3, "x"), -1);
    ck_assert_int_eq(err.cls, ITL_E_INPUT);
    ck_assert_uint_eq(err.ckr, 0);
    ck_assert_str_eq(err.msg, "line 3: bad tag x");
    ck_assert_int_eq(err_set(NULL, ITL_E_INPUT, "nobody listens"), -1);
    err_clear(&err);
    ck_assert_int_eq(err.cls, ITL_E_NONE);
    ck_assert_str_eq(err.msg, "");
}
END_TEST

START_TEST(test_errno_text_appended)
{
    struct itl_error err;

    err_errno(&err, ENOENT, "reading %s", "/etc/x");
    ck_assert_int_eq(err.cls, ITL_E_IO);
    ck_assert_str_eq(err.msg, "reading /etc/x: No such file or directory");
}
END_TEST

START_TEST(test_prefix_keeps_class_and_ckr)
{
    struct itl_error err;

    err_set(&err, ITL_E_PIN, "the PIN was rejected");
    err.ckr = 0xa0; /* CKR_PIN_INCORRECT */
    ck_assert_int_eq(err_prefix(&err, "login to %s: ", "token=a"), -1);
    ck_assert_str_eq(err.msg, "login to token=a: the PIN was rejected");
    ck_assert_int_eq(err.cls, ITL_E_PIN);
    ck_assert_uint_eq(err.ckr, 0xa0);
}
END_TEST

/* Context on both sides of the cause, in place: class and CKR survive (the exit code and the
 * wire status depend on them). */
START_TEST(test_suffix_keeps_class_and_ckr)
{
    struct itl_error err;

    err_set(&err, ITL_E_PIN, "the PIN was rejected");
    err.ckr = 0xa0;
    err_prefix(&err, "audit (");
    ck_assert_int_eq(err_suffix(&err, "); %s", "nothing was released"), -1);
    ck_assert_str_eq(err.msg, "audit (the PIN was rejected); nothing was released");
    ck_assert_int_eq(err.cls, ITL_E_PIN);
    ck_assert_uint_eq(err.ckr, 0xa0);

    char *big = malloc(ITL_ERROR_LEN);
    ck_assert_ptr_nonnull(big);
    memset(big, 'b', ITL_ERROR_LEN - 1);
    big[ITL_ERROR_LEN - 1] = '\0';
    err_set(&err, ITL_E_IO, "%.*s", ITL_ERROR_LEN - 8, big);
    err_suffix(&err, "%s", "; nothing was released");
    ck_assert_uint_eq(strlen(err.msg), ITL_ERROR_LEN - 1);
    ck_assert_str_eq(err.msg + ITL_ERROR_LEN - 4, "...");
    free(big);
}
END_TEST

START_TEST(test_long_messages_end_in_dots)
{
    struct itl_error err;
    char *big = malloc(2 * ITL_ERROR_LEN);

    ck_assert_ptr_nonnull(big);
    memset(big, 'a', 2 * ITL_ERROR_LEN - 1);
    big[2 * ITL_ERROR_LEN - 1] = '\0';
    err_set(&err, ITL_E_INPUT, "%s", big);
    ck_assert_uint_eq(strlen(err.msg), ITL_ERROR_LEN - 1);
    ck_assert_str_eq(err.msg + ITL_ERROR_LEN - 4, "...");

    /* A prefix in front of a full message: the prefix stays whole, the end is cut and marked. */
    err_set(&err, ITL_E_INPUT, "%.*s", ITL_ERROR_LEN - 10, big);
    err_prefix(&err, "file.tlv: ");
    ck_assert_uint_eq(strlen(err.msg), ITL_ERROR_LEN - 1);
    ck_assert_int_eq(strncmp(err.msg, "file.tlv: aaa", 13), 0);
    ck_assert_str_eq(err.msg + ITL_ERROR_LEN - 4, "...");
    free(big);
}
END_TEST

START_TEST(test_text_printf_fits_or_marks)
{
    char out[12];

    text_printf(out, sizeof out, "%s.%s", "token", "uri");
    ck_assert_str_eq(out, "token.uri");
    text_printf(out, sizeof out, "%s.%s", "access[12]", "user");
    ck_assert_str_eq(out, "access[1...");
    text_printf(out, sizeof out, "%s", "exactly 11!");
    ck_assert_str_eq(out, "exactly 11!");
}
END_TEST

START_TEST(test_every_class_has_a_name)
{
    for (int c = ITL_E_NONE; c <= ITL_E_INTERNAL; c++)
        ck_assert_str_ne(err_class_name((enum itl_errclass)c), "?");
    ck_assert_str_eq(err_class_name(ITL_E_NO_TOKEN), "no-token");
    ck_assert_str_eq(err_class_name((enum itl_errclass)(ITL_E_INTERNAL + 1)), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_error");
    TCase *tc = tcase_create("error");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_set_resets_ckr_and_returns_minus_one);
    tcase_add_test(tc, test_errno_text_appended);
    tcase_add_test(tc, test_prefix_keeps_class_and_ckr);
    tcase_add_test(tc, test_suffix_keeps_class_and_ckr);
    tcase_add_test(tc, test_long_messages_end_in_dots);
    tcase_add_test(tc, test_text_printf_fits_or_marks);
    tcase_add_test(tc, test_every_class_has_a_name);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
