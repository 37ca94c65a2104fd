/* SPDX-License-Identifier: MIT */
/* pkcs11: the one rule for PIN and password files (tok_secret_open): a regular file, opened
 * without following a link and without waiting on a FIFO, owned by root or the reader, no
 * group/other access. No token needed. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkcs11/internal.h"
#include "tests/unit/testlib.h"

/* Deadlock guard only: a FIFO that blocks the open would hang here for ever. */
#define HANG_GUARD_S 20

static void write_mode(const char *path, const char *text, mode_t mode)
{
    testlib_write(path, text, strlen(text));
    ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(test_fifo_refused_without_hanging)
{
    const char *dir = testlib_tmpdir("pin-fifo");
    char path[600];
    struct tok_pin pin = {0};
    struct itl_error err;

    snprintf(path, sizeof path, "%s/pin", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    alarm(HANG_GUARD_S);
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), -1);
    ck_assert_int_eq(tok_secret_open(path, "token.pin-file", &err), -1);
    alarm(0);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "token.pin-file"));
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    ck_assert_ptr_null(pin.bytes);
}
END_TEST

START_TEST(test_symlink_refused)
{
    const char *dir = testlib_tmpdir("pin-link");
    char target[600], link[600];
    struct tok_pin pin = {0};
    struct itl_error err;

    snprintf(target, sizeof target, "%s/real.pin", dir);
    snprintf(link, sizeof link, "%s/pin", dir);
    write_mode(target, "1234\n", 0600);
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(tok_pin_from_file(link, &pin, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));
    ck_assert_ptr_nonnull(strstr(err.msg, link));
    ck_assert_ptr_null(strstr(err.msg, "1234"));
    ck_assert_ptr_null(pin.bytes);
    /* the file itself is fine */
    ck_assert_int_eq(tok_pin_from_file(target, &pin, &err), 0);
    ck_assert_mem_eq(pin.bytes, "1234", 4);
    tok_pin_wipe(&pin);
}
END_TEST

/* Whoever owns the file chooses what is sent to the token: only root or the reader. */
START_TEST(test_other_owner_refused)
{
    const char *dir = testlib_tmpdir("pin-owner");
    char path[600];
    struct tok_pin pin = {0};
    struct itl_error err;
    uid_t other = geteuid() == 65534 ? 65533 : 65534;

    if (geteuid() != 0) {
        fprintf(stderr, "test_other_owner_refused: not root, cannot chown: skipped\n");
        return;
    }
    snprintf(path, sizeof path, "%s/pin", dir);
    write_mode(path, "secret-5678", 0600);
    ck_assert_int_eq(chown(path, other, (gid_t)-1), 0);
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_msg(strstr(err.msg, "belongs to uid 6553") && strstr(err.msg, "neither root nor") &&
                      strstr(err.msg, "chown"),
                  "%s", err.msg);
    ck_assert_ptr_null(strstr(err.msg, "secret"));
    ck_assert_ptr_null(pin.bytes);
    ck_assert_int_eq(tok_secret_open(path, "token.pin-file", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "token.pin-file"));

    ck_assert_int_eq(chown(path, 0, (gid_t)-1), 0); /* root's: fine */
    ck_assert_int_eq(tok_pin_from_file(path, &pin, &err), 0);
    ck_assert_uint_eq(pin.len, 11);
    tok_pin_wipe(&pin);
}
END_TEST

START_TEST(test_secret_open_blocking_regular)
{
    const char *dir = testlib_tmpdir("pin-open");
    char path[600];
    struct itl_error err;
    int fd;

    snprintf(path, sizeof path, "%s/pass", dir);
    write_mode(path, "p12-pass\n", 0400);
    fd = tok_secret_open(path, "--p12-pass-file", &err);
    ck_assert_msg(fd >= 0, "%s", err.msg);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    close(fd);

    ck_assert_int_eq(chmod(path, 0604), 0);
    ck_assert_int_eq(tok_secret_open(path, "--p12-pass-file", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "--p12-pass-file"));
    ck_assert_ptr_nonnull(strstr(err.msg, "mode 0604"));
    ck_assert_int_eq(tok_secret_open(dir, "PIN file", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    ck_assert_int_eq(tok_secret_open("/dev/null", "PIN file", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pkcs11_pin");
    TCase *tc = tcase_create("pin");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fifo_refused_without_hanging);
    tcase_add_test(tc, test_symlink_refused);
    tcase_add_test(tc, test_other_owner_refused);
    tcase_add_test(tc, test_secret_open_blocking_regular);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
