/* SPDX-License-Identifier: MIT */
/* common: hex in both cases, with and without a separator, small buffers, and decoding. */
#include "common/common.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t bytes[] = {0x00, 0x1a, 0xbc, 0xff};

START_TEST(test_lower_upper_separator)
{
    char out[16];

    ck_assert_str_eq(hex_lower(bytes, sizeof bytes, 0, out, sizeof out), "001abcff");
    ck_assert_str_eq(hex_upper(bytes, sizeof bytes, 0, out, sizeof out), "001ABCFF");
    ck_assert_str_eq(hex_upper(bytes, sizeof bytes, ':', out, sizeof out), "00:1A:BC:FF");
    ck_assert_str_eq(hex_lower(bytes, 1, ':', out, sizeof out), "00");
    ck_assert_str_eq(hex_lower(bytes, 0, ':', out, sizeof out), "");
}
END_TEST

START_TEST(test_exact_and_small_buffers)
{
    char out[16];

    memset(out, 'X', sizeof out);
    hex_lower(bytes, sizeof bytes, 0, out, 2 * sizeof bytes + 1); /* exactly 2n+1 */
    ck_assert_str_eq(out, "001abcff");
    hex_lower(bytes, sizeof bytes, ':', out, 3 * sizeof bytes); /* exactly 3n */
    ck_assert_str_eq(out, "00:1a:bc:ff");
    /* Too small: whole bytes that fit, NUL-terminated, nothing written past out_size. */
    memset(out, 'X', sizeof out);
    hex_lower(bytes, sizeof bytes, 0, out, 6);
    ck_assert_str_eq(out, "001a");
    ck_assert_int_eq(out[6], 'X');
    hex_lower(bytes, sizeof bytes, ':', out, 5);
    ck_assert_str_eq(out, "00");
    hex_lower(bytes, sizeof bytes, 0, out, 1);
    ck_assert_str_eq(out, "");
    out[0] = 'X';
    hex_lower(bytes, sizeof bytes, 0, out, 0); /* nothing at all */
    ck_assert_int_eq(out[0], 'X');
}
END_TEST

START_TEST(test_round_trip)
{
    uint8_t all[256], back[256];
    char text[2 * 256 + 1];

    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    ck_assert_int_eq(hex_decode(hex_lower(all, 256, 0, text, sizeof text), back, 256), 0);
    ck_assert_mem_eq(all, back, 256);
    memset(back, 0, sizeof back);
    ck_assert_int_eq(hex_decode(hex_upper(all, 256, 0, text, sizeof text), back, 256), 0);
    ck_assert_mem_eq(all, back, 256);
}
END_TEST

START_TEST(test_decode_rejects)
{
    uint8_t out[4];

    ck_assert_int_eq(hex_decode("001aBcFf", out, 4), 0); /* mixed case is fine */
    ck_assert_mem_eq(out, bytes, 4);
    ck_assert_int_eq(hex_decode("001abc", out, 4), -1);     /* short */
    ck_assert_int_eq(hex_decode("001abcff00", out, 4), -1); /* long */
    ck_assert_int_eq(hex_decode("001abcf", out, 4), -1);    /* odd */
    ck_assert_int_eq(hex_decode("001abcfg", out, 4), -1);   /* not a digit */
    ck_assert_int_eq(hex_decode("00:1a:bc", out, 3), -1);   /* separator */
    ck_assert_int_eq(hex_decode(" 01abcff", out, 4), -1);
    ck_assert_int_eq(hex_decode("0x1abcff", out, 4), -1);
    ck_assert_int_eq(hex_decode(NULL, out, 4), -1);
    ck_assert_int_eq(hex_decode("", out, 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_hex");
    TCase *tc = tcase_create("hex");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_lower_upper_separator);
    tcase_add_test(tc, test_exact_and_small_buffers);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_decode_rejects);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
