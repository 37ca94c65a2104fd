/* SPDX-License-Identifier: MIT */
/*
 * tools: the helpers every command reads and writes through (tools/util.c), now faces of
 * common/: an input is a regular file reached without a final symbolic link unless
 * --follow-symlinks, with its mode; an output replaces the old file whole; JSON strings keep
 * valid UTF-8 as it is.
 */
#include "tools/cli.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "tests/unit/testlib.h"

static const char *dir;
static char file[512], link_path[512];
static struct itl_error err;

static void setup(void)
{
    dir = testlib_tmpdir("tools_util");
    snprintf(file, sizeof file, "%s/in.cnf.xml", dir);
    snprintf(link_path, sizeof link_path, "%s/link.cnf.xml", dir);
    testlib_write(file, "<device/>", 9);
    ck_assert_int_eq(chmod(file, 0640), 0);
    unlink(link_path);
    ck_assert_int_eq(symlink(file, link_path), 0);
    cli_set_follow_symlinks(0);
}

START_TEST(test_read_input_gives_bytes_and_mode)
{
    uint8_t *data;
    size_t len;
    unsigned mode = 0;

    ck_assert_msg(cli_read_input(file, 100, &data, &len, &mode, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(len, 9);
    ck_assert_int_eq(memcmp(data, "<device/>", 9), 0);
    ck_assert_uint_eq(mode, 0640);
    free(data);
    ck_assert_int_eq(cli_read_file(file, 8, &data, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "is larger than the limit of 8 bytes"));
}
END_TEST

/* A link is refused with the way out in the message; --follow-symlinks reads through it. */
START_TEST(test_link_refused_unless_followed)
{
    uint8_t *data;
    size_t len;

    ck_assert_int_eq(cli_read_file(link_path, 100, &data, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "link.cnf.xml is a symbolic link"));
    ck_assert_ptr_nonnull(strstr(err.msg, "--follow-symlinks"));
    ck_assert_int_eq(err.cls, ITL_E_INPUT); /* the class picks the exit code */
    cli_set_follow_symlinks(1);
    ck_assert_msg(cli_read_file(link_path, 100, &data, &len, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(len, 9);
    free(data);
    ck_assert_int_eq(cli_read_file(dir, 100, &data, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "is a directory, not a regular file"));
}
END_TEST

START_TEST(test_write_replaces_whole)
{
    char out[600];
    size_t len;

    snprintf(out, sizeof out, "%s/out.sgn", dir);
    ck_assert_msg(cli_write_file_atomic(out, (const uint8_t *)"first", 5, 0600, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(cli_write_file_atomic_ex(out, (const uint8_t *)"2nd", 3, 0600, 0, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(cli_sync_parent_dir(out), 0);
    char *text = (char *)testlib_read(out, &len);
    ck_assert_str_eq(text, "2nd");
    free(text);
    snprintf(out, sizeof out, "%s/", dir);
    ck_assert_int_eq(cli_write_file_atomic(out, (const uint8_t *)"x", 1, 0600, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "names a directory, not a file"));
}
END_TEST

/* "é" is two bytes of valid UTF-8: kept as is (the old escaper wrote \u00c3\u00a9, which a
 * JSON reader takes for two other characters). An invalid byte still reads back. */
START_TEST(test_json_string_keeps_utf8)
{
    char out[128] = "";
    FILE *f = fmemopen(out, sizeof out, "w");

    ck_assert_ptr_nonnull(f);
    cli_json_string(f, "Caf\xc3\xa9 \"x\"\n\xff", 11);
    fclose(f);
    ck_assert_str_eq(out, "\"Caf\xc3\xa9 \\\"x\\\"\\n\\u00ff\"");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tools_util");
    TCase *tc = tcase_create("util");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_read_input_gives_bytes_and_mode);
    tcase_add_test(tc, test_link_refused_unless_followed);
    tcase_add_test(tc, test_write_replaces_whole);
    tcase_add_test(tc, test_json_string_keeps_utf8);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
