/* SPDX-License-Identifier: MIT */
/* common: JSON strings keep valid UTF-8 and escape every other byte so it can be read back. */
#include "common/common.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* s (n bytes) as JSON, in a static buffer. */
static const char *json_of(const char *s, size_t n)
{
    static char out[512];
    struct buf b = {0};

    json_string(&b, s, n);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_uint_lt(b.len, sizeof out);
    memcpy(out, buf_str(&b), b.len + 1);
    buf_free(&b);
    return out;
}

#define JSON(lit) json_of(lit, sizeof lit - 1)

START_TEST(test_plain_and_short_escapes)
{
    ck_assert_str_eq(JSON(""), "\"\"");
    ck_assert_str_eq(JSON("abc"), "\"abc\"");
    ck_assert_str_eq(JSON("a\"b\\c"), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(JSON("\n\t"), "\"\\n\\t\"");
}
END_TEST

START_TEST(test_control_bytes_and_nul)
{
    ck_assert_str_eq(JSON("\x01\r\x1f\x7f"), "\"\\u0001\\u000d\\u001f\\u007f\"");
    /* A NUL inside the n bytes is written, not the end of the string. */
    ck_assert_str_eq(JSON("a\0b"), "\"a\\u0000b\"");
}
END_TEST

START_TEST(test_valid_utf8_kept)
{
    ck_assert_str_eq(JSON("caf\xc3\xa9"), "\"caf\xc3\xa9\"");           /* U+00E9 */
    ck_assert_str_eq(JSON("\xc2\x80"), "\"\xc2\x80\"");                 /* U+0080 */
    ck_assert_str_eq(JSON("\xe0\xa0\x80"), "\"\xe0\xa0\x80\"");         /* U+0800 */
    ck_assert_str_eq(JSON("\xed\x9f\xbf"), "\"\xed\x9f\xbf\"");         /* U+D7FF */
    ck_assert_str_eq(JSON("\xef\xbf\xbf"), "\"\xef\xbf\xbf\"");         /* U+FFFF */
    ck_assert_str_eq(JSON("\xf0\x90\x80\x80"), "\"\xf0\x90\x80\x80\""); /* U+10000 */
    ck_assert_str_eq(JSON("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}
END_TEST

START_TEST(test_invalid_utf8_escaped_per_byte)
{
    ck_assert_str_eq(JSON("\xff"), "\"\\u00ff\"");
    ck_assert_str_eq(JSON("\x80"), "\"\\u0080\""); /* lone continuation */
    /* Overlong forms: "/" in two bytes, U+0000 in two, U+07FF in three, U+FFFF in four. */
    ck_assert_str_eq(JSON("\xc0\xaf"), "\"\\u00c0\\u00af\"");
    ck_assert_str_eq(JSON("\xc1\xbf"), "\"\\u00c1\\u00bf\"");
    ck_assert_str_eq(JSON("\xe0\x9f\xbf"), "\"\\u00e0\\u009f\\u00bf\"");
    ck_assert_str_eq(JSON("\xf0\x8f\xbf\xbf"), "\"\\u00f0\\u008f\\u00bf\\u00bf\"");
    /* Surrogates U+D800 and U+DFFF. */
    ck_assert_str_eq(JSON("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");
    ck_assert_str_eq(JSON("\xed\xbf\xbf"), "\"\\u00ed\\u00bf\\u00bf\"");
    /* Above U+10FFFF. */
    ck_assert_str_eq(JSON("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"");
    ck_assert_str_eq(JSON("\xf5\x80\x80\x80"), "\"\\u00f5\\u0080\\u0080\\u0080\"");
    /* A bad lead byte does not swallow the valid character after it. */
    ck_assert_str_eq(JSON("\xc3\xc3\xa9"), "\"\\u00c3\xc3\xa9\"");
}
END_TEST

START_TEST(test_sequence_cut_by_length)
{
    /* The first byte of "é" is the last of the n bytes: it must not be read past. */
    ck_assert_str_eq(json_of("x\xc3\xa9", 2), "\"x\\u00c3\"");
    ck_assert_str_eq(json_of("\xf0\x90\x80\x80", 3), "\"\\u00f0\\u0090\\u0080\"");
}
END_TEST

START_TEST(test_cstring_and_hex)
{
    struct buf b = {0};
    static const uint8_t bytes[] = {0x00, 0x0a, 0xff};

    json_cstring(&b, NULL);
    buf_put_u8(&b, ',');
    json_cstring(&b, "a\"");
    buf_put_u8(&b, ',');
    json_hex(&b, bytes, sizeof bytes);
    buf_put_u8(&b, ',');
    json_hex(&b, NULL, 0);
    buf_put_u8(&b, ',');
    json_hex(&b, bytes, 0);
    ck_assert_str_eq(buf_str(&b), "null,\"a\\\"\",\"000aff\",null,\"\"");
    buf_free(&b);
}
END_TEST

START_TEST(test_long_hex)
{
    uint8_t data[200];
    struct buf b = {0};

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    json_hex(&b, data, sizeof data);
    ck_assert_uint_eq(b.len, 2 + 2 * sizeof data);
    ck_assert_int_eq(memcmp(b.data + 1 + 2 * 199, "c7\"", 3), 0);
    ck_assert_int_eq(memcmp(b.data + 1 + 2 * 64, "40", 2), 0);
    buf_free(&b);
}
END_TEST

START_TEST(test_failed_buffer_stays_failed)
{
    struct buf b;
    buf_init(&b, 4);
    json_cstring(&b, "too long");
    ck_assert_int_eq(b.failed, 1);
    ck_assert_ptr_null(buf_str(&b));
    buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_json");
    TCase *tc = tcase_create("json");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_plain_and_short_escapes);
    tcase_add_test(tc, test_control_bytes_and_nul);
    tcase_add_test(tc, test_valid_utf8_kept);
    tcase_add_test(tc, test_invalid_utf8_escaped_per_byte);
    tcase_add_test(tc, test_sequence_cut_by_length);
    tcase_add_test(tc, test_cstring_and_hex);
    tcase_add_test(tc, test_long_hex);
    tcase_add_test(tc, test_failed_buffer_stays_failed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
