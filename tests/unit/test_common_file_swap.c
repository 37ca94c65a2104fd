/* SPDX-License-Identifier: MIT */
/* common: file_swap, every directory or none (the failures and kills are in test_publish.sh,
 * which injects them; here the contract of each call). */
#include "common/common.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[512], d1[600], d2[600];
static struct itl_error err;

static void setup(void)
{
    snprintf(root, sizeof root, "%s", testlib_tmpdir("fileswap"));
    snprintf(d1, sizeof d1, "%s/a", root);
    snprintf(d2, sizeof d2, "%s/b", root);
    ck_assert_int_eq(mkdir(d1, 0755), 0);
    ck_assert_int_eq(mkdir(d2, 0755), 0);
    memset(&err, 0, sizeof err);
}

static void teardown(void)
{
    testlib_sh("rm -rf '%s'", root);
}

static int entries(const char *d)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(dp);
    while ((e = readdir(dp)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dp);
    return n;
}

static void put(const char *dir, const char *name, const char *text, mode_t mode)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    testlib_write(p, text, strlen(text));
    ck_assert_int_eq(chmod(p, mode), 0);
}

static void expect(const char *dir, const char *name, const char *text)
{
    char p[700];
    size_t len;
    uint8_t *got;

    snprintf(p, sizeof p, "%s/%s", dir, name);
    got = testlib_read(p, &len);
    ck_assert_str_eq((char *)got, text);
    free(got);
}

START_TEST(test_commit_two_dirs)
{
    struct file_swap *s = file_swap_new();
    struct stat st;
    char p[700];

    put(d1, "ITLFile.tlv", "old", 0640);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(file_swap_add_dir(s, d1, &err), 0);
    ck_assert_int_eq(file_swap_add_dir(s, d2, &err), 1);
    ck_assert_int_eq(file_swap_add(s, 0, "ITLFile.tlv", "new", 3, 0644, &err), 0);
    ck_assert_int_eq(file_swap_add(s, 1, "ITLFile.tlv", "new", 3, 0644, &err), 0);
    ck_assert_int_eq(file_swap_commit(s, &err), 0);
    file_swap_free(s);
    expect(d1, "ITLFile.tlv", "new");
    expect(d2, "ITLFile.tlv", "new");
    snprintf(p, sizeof p, "%s/ITLFile.tlv", d1);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640); /* the old file's mode */
    snprintf(p, sizeof p, "%s/ITLFile.tlv", d2);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(entries(d1), 1); /* no journal, backup, temporary or marker */
    ck_assert_int_eq(entries(d2), 1);
}
END_TEST

START_TEST(test_symlink_refused_nothing_changed)
{
    struct file_swap *s = file_swap_new();
    char link[700], victim[700];

    snprintf(victim, sizeof victim, "%s/victim", root);
    testlib_write(victim, "secret", 6);
    snprintf(link, sizeof link, "%s/ITLFile.tlv", d2);
    ck_assert_int_eq(symlink(victim, link), 0);
    put(d1, "ITLFile.tlv", "old", 0644);
    file_swap_add_dir(s, d1, &err);
    file_swap_add_dir(s, d2, &err);
    file_swap_add(s, 0, "ITLFile.tlv", "new", 3, 0644, &err);
    file_swap_add(s, 1, "ITLFile.tlv", "new", 3, 0644, &err);
    ck_assert_int_eq(file_swap_commit(s, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "is not a regular file"));
    file_swap_free(s);
    expect(d1, "ITLFile.tlv", "old");
    expect(root, "victim", "secret");
    ck_assert_int_eq(entries(d1), 1);
    ck_assert_int_eq(entries(d2), 1);
}
END_TEST

START_TEST(test_bad_names_and_twice)
{
    struct file_swap *s = file_swap_new();

    ck_assert_int_eq(file_swap_add_dir(s, d1, &err), 0);
    ck_assert_int_eq(file_swap_add(s, 0, "../x", "n", 1, 0644, &err), -1);
    ck_assert_int_eq(file_swap_add(s, 0, ".hidden", "n", 1, 0644, &err), -1);
    ck_assert_int_eq(file_swap_add(s, 0, "a b", "n", 1, 0644, &err), -1);
    ck_assert_int_eq(file_swap_add(s, 1, "x", "n", 1, 0644, &err), -1); /* no such dir */
    ck_assert_int_eq(file_swap_add_dir(s, d1, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "given twice"));
    file_swap_free(s);
}
END_TEST

START_TEST(test_one_publish_per_directory)
{
    struct file_swap *a = file_swap_new(), *b = file_swap_new();

    ck_assert_int_eq(file_swap_add_dir(a, d1, &err), 0);
    ck_assert_int_eq(file_swap_add_dir(b, d1, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "another publish is running"));
    file_swap_free(a);
    ck_assert_int_eq(file_swap_add_dir(b, d1, &err), 0);
    file_swap_free(b);
}
END_TEST

START_TEST(test_recover_clean_and_refused_journals)
{
    const char *both[] = {d1, d2};
    char text[1500];
    int outcome = -1;

    ck_assert_int_eq(file_swap_recover(d1, both, 2, &outcome, &err), 0);
    ck_assert_int_eq(outcome, FILE_SWAP_CLEAN);
    /* a journal others may write is never followed */
    snprintf(text, sizeof text, "itl-swap 1 0123456789abcdef0123456789abcdef\ndir %s\n", d1);
    put(d1, ".itl-swap.journal", text, 0666);
    ck_assert_int_eq(file_swap_recover(d1, both, 2, &outcome, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "is not a journal this user wrote"));
    /* nor one naming a directory the caller did not give */
    snprintf(text, sizeof text, "itl-swap 1 0123456789abcdef0123456789abcdef\ndir %s\ndir %s\n", d1,
             root);
    put(d1, ".itl-swap.journal", text, 0600);
    ck_assert_int_eq(file_swap_recover(d1, both, 2, &outcome, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "give every one of its target directories"));
    /* an interrupted batch that renamed nothing yet: rolled back, the journal gone */
    snprintf(text, sizeof text,
             "itl-swap 1 0123456789abcdef0123456789abcdef\ndir %s\nfile o ITLFile.tlv\n", d1);
    put(d1, ".itl-swap.journal", text, 0600);
    put(d1, "ITLFile.tlv", "old", 0644);
    put(d1, ".ITLFile.tlv.swap-0123456789abcdef0123456789abcdef", "new", 0600);
    ck_assert_int_eq(file_swap_recover(d1, both, 2, &outcome, &err), 0);
    ck_assert_int_eq(outcome, FILE_SWAP_ROLLED_BACK);
    expect(d1, "ITLFile.tlv", "old");
    ck_assert_int_eq(entries(d1), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_file_swap");
    TCase *tc = tcase_create("file_swap");
    SRunner *sr;
    int failed;

    umask(022);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_commit_two_dirs);
    tcase_add_test(tc, test_symlink_refused_nothing_changed);
    tcase_add_test(tc, test_bad_names_and_twice);
    tcase_add_test(tc, test_one_publish_per_directory);
    tcase_add_test(tc, test_recover_clean_and_refused_journals);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
