/* SPDX-License-Identifier: MIT */
/* common: the growable buffer (limit, sticky failure, take, secret) and the reader. */
#include "common/common.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_put_and_big_endian)
{
    struct buf b = {0};
    size_t len;

    buf_put_u8(&b, 0x01);
    buf_put_u16(&b, 0x0203);
    buf_put_u32(&b, 0x04050607);
    buf_puts(&b, "ab");
    buf_put(&b, NULL, 0);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_uint_eq(b.len, 9);
    ck_assert_mem_eq(b.data,
                     "\x01\x02\x03\x04\x05\x06\x07"
                     "ab",
                     9);
    ck_assert_uint_eq(load_u16(b.data + 1), 0x0203);
    ck_assert_uint_eq(load_u32(b.data + 3), 0x04050607);
    uint8_t *p = buf_take(&b, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, 9);
    ck_assert_uint_eq(p[9], 0); /* NUL beyond the length */
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    free(p);
    buf_free(&b);
}
END_TEST

START_TEST(test_printf_and_str)
{
    struct buf b = {0};
    char big[1000];

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "%d-%s", 42, "a");
    ck_assert_str_eq(buf_str(&b), "42-a");
    buf_printf(&b, "%s", big); /* longer than any first allocation */
    ck_assert_uint_eq(b.len, 4 + 999);
    ck_assert_uint_eq(strlen(buf_str(&b)), 4 + 999);
    buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(buf_str(&b), "");
    buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_limit_fails_and_sticks)
{
    struct buf b;

    buf_init(&b, 8);
    buf_put(&b, "12345678", 8); /* exactly the limit */
    ck_assert_int_eq(b.failed, 0);
    ck_assert_str_eq(buf_str(&b), "12345678");
    buf_put_u8(&b, '9'); /* one past it */
    ck_assert_int_eq(b.failed, 1);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_ptr_null(buf_str(&b));
    ck_assert_ptr_null(buf_append_space(&b, 0));
    buf_reset(&b);
    ck_assert_int_eq(b.failed, 0);
    buf_put(&b, "ab", 2);
    ck_assert_str_eq(buf_str(&b), "ab");
    buf_printf(&b, "%s", "toolong");
    ck_assert_int_eq(b.failed, 1);
    /* Once failed, writes that would fit do nothing. */
    buf_put_u8(&b, 'c');
    ck_assert_uint_eq(b.len, 2);
    size_t len = 99;
    ck_assert_ptr_null(buf_take(&b, &len));
    ck_assert_ptr_null(b.data); /* take released the memory */
    ck_assert_uint_eq(b.limit, 8);
    buf_free(&b);
}
END_TEST

START_TEST(test_huge_request_fails)
{
    struct buf b = {0};
    buf_put_u8(&b, 1);
    ck_assert_ptr_null(buf_append_space(&b, SIZE_MAX));
    ck_assert_int_eq(b.failed, 1);
    buf_free(&b);

    buf_init(&b, 0); /* 0 = BUF_MAX */
    ck_assert_ptr_null(buf_append_space(&b, BUF_MAX + 1));
    ck_assert_int_eq(b.failed, 1);
    buf_free(&b);
}
END_TEST

START_TEST(test_append_space_and_patch)
{
    struct buf b = {0};

    buf_put_u8(&b, 0xaa);
    uint8_t *p = buf_append_space(&b, 2);
    ck_assert_ptr_nonnull(p);
    memset(p, 0, 2);
    buf_put_u8(&b, 0xbb);
    buf_patch_u16(&b, 1, 0x1234);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_mem_eq(b.data, "\xaa\x12\x34\xbb", 4);
    buf_patch_u16(&b, 3, 0x5678); /* one byte past what was written */
    ck_assert_int_eq(b.failed, 1);
    ck_assert_uint_eq(b.data[3], 0xbb);
    buf_free(&b);
}
END_TEST

START_TEST(test_secret_keeps_options)
{
    struct buf b;

    buf_init_secret(&b, 4096);
    for (int i = 0; i < 3000; i++) /* several moves of the memory */
        buf_put_u8(&b, (uint8_t)i);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_uint_eq(b.len, 3000);
    ck_assert_uint_eq(b.data[2999], (uint8_t)2999);
    buf_free(&b);
    ck_assert_int_eq(b.wipe, 1);
    ck_assert_uint_eq(b.limit, 4096);
    buf_put(&b, "x", 1);
    ck_assert_str_eq(buf_str(&b), "x");
    buf_free(&b);
}
END_TEST

START_TEST(test_take_of_empty_buffer)
{
    struct buf b = {0};
    size_t len = 7;
    uint8_t *p = buf_take(&b, &len);
    ck_assert_ptr_nonnull(p); /* NULL only means failure */
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(p[0], 0);
    free(p);
}
END_TEST

START_TEST(test_reader)
{
    static const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    struct reader r;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    const uint8_t *p;

    rd_init(&r, data, sizeof data);
    ck_assert_int_eq(rd_u8(&r, &u8), 0);
    ck_assert_uint_eq(u8, 1);
    ck_assert_int_eq(rd_u16(&r, &u16), 0);
    ck_assert_uint_eq(u16, 0x0203);
    ck_assert_int_eq(rd_u32(&r, &u32), 0);
    ck_assert_uint_eq(u32, 0x04050607);
    ck_assert_uint_eq(rd_left(&r), 1);
    ck_assert_int_eq(rd_u16(&r, &u16), -1); /* one byte left, two wanted */
    ck_assert_uint_eq(u16, 0);
    ck_assert_int_eq(r.failed, 1);
    ck_assert_uint_eq(rd_left(&r), 0);
    /* Sticky: the byte that is there is not read either. */
    ck_assert_int_eq(rd_u8(&r, &u8), -1);
    ck_assert_uint_eq(u8, 0);

    rd_init(&r, data, sizeof data);
    ck_assert_int_eq(rd_skip(&r, 6), 0);
    ck_assert_int_eq(rd_bytes(&r, 2, &p), 0);
    ck_assert_ptr_eq(p, data + 6);
    ck_assert_int_eq(rd_bytes(&r, 0, &p), 0);
    ck_assert_int_eq(rd_bytes(&r, 1, &p), -1);
    ck_assert_ptr_null(p);

    rd_init(&r, data, sizeof data);
    ck_assert_int_eq(rd_skip(&r, SIZE_MAX), -1); /* no wrap-around */
    ck_assert_int_eq(rd_u32(&r, &u32), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_buf");
    TCase *tc = tcase_create("buf");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_put_and_big_endian);
    tcase_add_test(tc, test_printf_and_str);
    tcase_add_test(tc, test_limit_fails_and_sticks);
    tcase_add_test(tc, test_huge_request_fails);
    tcase_add_test(tc, test_append_space_and_patch);
    tcase_add_test(tc, test_secret_keeps_options);
    tcase_add_test(tc, test_take_of_empty_buffer);
    tcase_add_test(tc, test_reader);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
