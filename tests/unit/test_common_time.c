/* SPDX-License-Identifier: MIT */
/* common: the ISO and human time formats, and times that cannot be shown. */
#include "common/common.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define T0 ((time_t)1795452000) /* 2026-11-23T16:40:00Z, as in the audit tests */

START_TEST(test_iso)
{
    char out[TIME_ISO_LEN];

    ck_assert_str_eq(time_iso(0, out), "1970-01-01T00:00:00Z");
    ck_assert_str_eq(time_iso(T0, out), "2026-11-23T16:40:00Z");
    ck_assert_str_eq(time_iso(T0 + 86399, out), "2026-11-24T16:39:59Z");
    ck_assert_uint_eq(strlen(out), TIME_ISO_LEN - 1);
    ck_assert_str_eq(time_iso(-1, out), "1969-12-31T23:59:59Z");
    ck_assert_str_eq(time_iso((time_t)253402300799LL, out), "9999-12-31T23:59:59Z");
}
END_TEST

START_TEST(test_iso_cannot_be_shown)
{
    char out[TIME_ISO_LEN];

    ck_assert_str_eq(time_iso((time_t)253402300800LL, out), "-"); /* year 10000 */
    ck_assert_str_eq(time_iso((time_t)-62167219201LL, out), "-"); /* year -1 */
    ck_assert_str_eq(time_iso((time_t)0x7fffffffffffffffLL, out), "-");
}
END_TEST

START_TEST(test_human)
{
    char out[64];

    ck_assert_str_eq(time_human(0, out, sizeof out), "1970-01-01 00:00:00 UTC");
    ck_assert_str_eq(time_human(T0, out, sizeof out), "2026-11-23 16:40:00 UTC");
    ck_assert_str_eq(time_human((time_t)253402300800LL, out, sizeof out), "253402300800");
    /* Too small for the text: the number, cut, still NUL-terminated. */
    ck_assert_str_eq(time_human(T0, out, 5), "1795");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_time");
    TCase *tc = tcase_create("time");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_iso);
    tcase_add_test(tc, test_iso_cannot_be_shown);
    tcase_add_test(tc, test_human);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
