/* SPDX-License-Identifier: MIT */
/* common: reading with a limit, refusing links and non-files, the atomic replace and its
 * failures (the old file stays, no temporary is left). */
#include "common/common.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512], path[600];
static struct itl_error err;

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("commonfile"));
    snprintf(path, sizeof path, "%s/f.txt", dir);
}

static void teardown(void)
{
    testlib_sh("rm -rf '%s'", dir);
}

/* How many entries the directory holds, besides . and .. */
static int entries(const char *d)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(dp);
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dp);
    return n;
}

START_TEST(test_read_limit)
{
    uint8_t *data = NULL;
    size_t len = 0;

    testlib_write(path, "hello", 5);
    ck_assert_msg(file_read(path, 0, 5, &data, &len, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq((char *)data, "hello"); /* NUL-terminated beyond len */
    free(data);
    ck_assert_int_eq(file_read(path, 0, 4, &data, &len, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "larger than the limit of 4 bytes"));
    ck_assert_ptr_nonnull(strstr(err.msg, path));
}
END_TEST

START_TEST(test_read_empty_and_large)
{
    uint8_t *data = NULL, *big = malloc(300000);
    size_t len = 99;

    testlib_write(path, "", 0);
    ck_assert_int_eq(file_read(path, 0, 0, &data, &len, &err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(data[0], 0);
    free(data);
    /* Several reads and reallocations: bigger than the first chunk. */
    for (size_t i = 0; i < 300000; i++)
        big[i] = (uint8_t)(i * 7);
    testlib_write(path, big, 300000);
    ck_assert_int_eq(file_read(path, 0, 300000, &data, &len, &err), 0);
    ck_assert_uint_eq(len, 300000);
    ck_assert_mem_eq(data, big, 300000);
    free(data);
    ck_assert_int_eq(file_read(path, 0, 299999, &data, &len, &err), -1);
    free(big);
}
END_TEST

START_TEST(test_read_refuses_symlink_with_nofollow)
{
    char link[700];
    uint8_t *data = NULL;
    size_t len;

    testlib_write(path, "x", 1);
    snprintf(link, sizeof link, "%s/link", dir);
    ck_assert_int_eq(symlink(path, link), 0);
    ck_assert_int_eq(file_read(link, FILE_NOFOLLOW, 100, &data, &len, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));
    /* Without the flag the link is followed. */
    ck_assert_int_eq(file_read(link, 0, 100, &data, &len, &err), 0);
    ck_assert_uint_eq(len, 1);
    free(data);
}
END_TEST

START_TEST(test_read_refuses_non_files)
{
    char fifo[700], missing[700];
    uint8_t *data = NULL;
    size_t len;

    ck_assert_int_eq(file_read(dir, 0, 100, &data, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "a directory, not a regular file"));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    /* Would hang if the FIFO were opened for blocking reads. */
    ck_assert_int_eq(file_read(fifo, 0, 100, &data, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "a FIFO, not a regular file"));
    snprintf(missing, sizeof missing, "%s/missing", dir);
    ck_assert_int_eq(file_read(missing, 0, 100, &data, &len, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "No such file"));
}
END_TEST

START_TEST(test_read_fd_pipe)
{
    int p[2];
    uint8_t *data = NULL;
    size_t len;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(file_write_all(p[1], "secret\n", 7), 0);
    close(p[1]);
    ck_assert_int_eq(file_read_fd(p[0], "the pipe", 100, &data, &len, &err), 0);
    close(p[0]);
    ck_assert_uint_eq(len, 7);
    ck_assert_mem_eq(data, "secret\n", 7);
    free(data);

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(file_write_all(p[1], "12345", 5), 0);
    close(p[1]);
    ck_assert_int_eq(file_read_fd(p[0], "the pipe", 4, &data, &len, &err), -1);
    close(p[0]);
    ck_assert_ptr_nonnull(strstr(err.msg, "the pipe is larger"));
}
END_TEST

START_TEST(test_replace_at)
{
    struct stat st;
    size_t len;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);

    ck_assert_int_ge(dfd, 0);
    ck_assert_msg(file_replace_at(dfd, "f.txt", "one", 3, 0640, (uid_t)-1, (gid_t)-1, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(file_replace_at(dfd, "f.txt", "second", 6, 0640, (uid_t)-1, (gid_t)-1, &err) == 0,
                  "%s", err.msg);
    char *text = (char *)testlib_read(path, &len);
    ck_assert_str_eq(text, "second");
    free(text);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640 & ~0022u & 0777);
    ck_assert_int_eq(entries(dir), 1); /* no temporary left */
    ck_assert_int_eq(file_replace_at(dfd, "x/y", "z", 1, 0600, (uid_t)-1, (gid_t)-1, &err), -1);
    ck_assert_int_eq(file_replace_at(dfd, "", "z", 1, 0600, (uid_t)-1, (gid_t)-1, &err), -1);
    close(dfd);
}
END_TEST

START_TEST(test_replace_at_gives_owner)
{
    struct stat st;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    /* Root may give the file away; anyone else may give it to themselves. */
    uid_t uid = geteuid() == 0 ? 4321 : geteuid();
    gid_t gid = geteuid() == 0 ? 4322 : getegid();

    ck_assert_int_ge(dfd, 0);
    ck_assert_msg(file_replace_at(dfd, "owned", "x", 1, 0600, uid, gid, &err) == 0, "%s", err.msg);
    close(dfd);
    snprintf(path, sizeof path, "%s/owned", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_uid, uid);
    ck_assert_uint_eq(st.st_gid, gid);
}
END_TEST

/* file_replace_in names the directory it was given in its messages, and writes without the
 * directory fsync when asked (the content is the same either way). */
START_TEST(test_replace_in_names_the_directory)
{
    size_t len;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    struct file_target t = {.dirfd = dfd,
                            .dir = "/the/state/dir",
                            .name = "f.txt",
                            .mode = 0600,
                            .uid = (uid_t)-1,
                            .gid = (gid_t)-1,
                            .no_dir_sync = 1};

    ck_assert_int_ge(dfd, 0);
    ck_assert_msg(file_replace_in(&t, "abc", 3, &err) == 0, "%s", err.msg);
    char *text = (char *)testlib_read(path, &len);
    ck_assert_str_eq(text, "abc");
    free(text);
    t.name = "a/b";
    ck_assert_int_eq(file_replace_in(&t, "x", 1, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "/the/state/dir/a/b: not a file name"));
    close(dfd);
    t.name = "g.txt"; /* dfd is closed now: EBADF, whoever runs the test */
    ck_assert_int_eq(file_replace_in(&t, "x", 1, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot create a file for /the/state/dir/g.txt"));
    ck_assert_int_eq(entries(dir), 1);
}
END_TEST

START_TEST(test_replace_failure_keeps_old_file)
{
    struct rlimit old, small = {.rlim_cur = 8, .rlim_max = RLIM_INFINITY};
    char big[64];
    size_t len;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);

    ck_assert_int_ge(dfd, 0);
    testlib_write(path, "old", 3);
    memset(big, 'n', sizeof big);
    /* A write past RLIMIT_FSIZE fails with EFBIG (SIGXFSZ ignored) half-way through. */
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = file_replace_at(dfd, "f.txt", big, sizeof big, 0600, (uid_t)-1, (gid_t)-1, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    close(dfd);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(err.cls, ITL_E_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot write f.txt"));
    char *text = (char *)testlib_read(path, &len);
    ck_assert_str_eq(text, "old");
    free(text);
    ck_assert_int_eq(entries(dir), 1);
}
END_TEST

START_TEST(test_replace_path_and_sync)
{
    char sub[700], bad[700];
    size_t len;

    ck_assert_msg(file_replace(path, "abc", 3, 0600, &err) == 0, "%s", err.msg);
    ck_assert_msg(file_replace_no_dir_sync(path, "abcd", 4, 0600, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(file_sync_dir_of(path, &err), 0);
    char *text = (char *)testlib_read(path, &len);
    ck_assert_str_eq(text, "abcd");
    free(text);
    ck_assert_int_eq(entries(dir), 1);
    /* A path naming a directory, and a missing directory, named in the message. */
    snprintf(sub, sizeof sub, "%s/", dir);
    ck_assert_int_eq(file_replace(sub, "x", 1, 0600, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_int_eq(file_replace("", "x", 1, 0600, &err), -1);
    snprintf(bad, sizeof bad, "%s/missing/f", dir);
    ck_assert_int_eq(file_replace(bad, "x", 1, 0600, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "/missing"));
    ck_assert_int_eq(file_sync_dir_of(bad, &err), -1);
    ck_assert_int_eq(errno, ENOENT); /* kept for callers that tolerate a missing directory */
}
END_TEST

/* A bare name is in the current directory (dirname() returns a static "." for it). */
START_TEST(test_replace_bare_name)
{
    char cwd[4096], bare[700];
    size_t len;

    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    int rc = file_replace("bare.txt", "abc", 3, 0600, &err);
    int synced = file_sync_dir_of("bare.txt", &err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(synced, 0);
    snprintf(bare, sizeof bare, "%s/bare.txt", dir);
    char *text = (char *)testlib_read(bare, &len);
    ck_assert_str_eq(text, "abc");
    free(text);
}
END_TEST

START_TEST(test_write_all)
{
    int p[2];
    char back[5];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(file_write_all(p[1], "hello", 5), 0);
    ck_assert_int_eq(read(p[0], back, 5), 5);
    ck_assert_mem_eq(back, "hello", 5);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(file_write_all(p[1], "x", 1), -1);
    ck_assert_int_eq(errno, EPIPE);
    signal(SIGPIPE, SIG_DFL);
    close(p[1]);
    ck_assert_int_eq(file_write_all(-1, "x", 1), -1);
}
END_TEST

/* ---- the staged batch writer ---- */

struct done_log {
    int ok, failed;
    char last_err[1100];
};

static void record_done(void *ctx, void *tag, const char *p, const struct itl_error *e)
{
    struct done_log *log = ctx;

    ck_assert_ptr_nonnull(strstr(p, (const char *)tag)); /* the tag comes back with its file */
    if (e) {
        log->failed++;
        snprintf(log->last_err, sizeof log->last_err, "%s", e->msg);
    } else {
        log->ok++;
    }
}

static void assert_content(const char *p, const char *want)
{
    size_t len;
    char *text = (char *)testlib_read(p, &len);

    ck_assert_str_eq(text, want);
    free(text);
}

/* Nothing has its name before the commit; after it every file has exactly its bytes, an old
 * file is replaced, and no temporary is left. */
START_TEST(test_stage_commit_names_all)
{
    struct file_stage *st = file_stage_new();
    struct done_log log = {0};
    char a[700], b[700], sub[600], c[700];

    ck_assert_ptr_nonnull(st);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(a, sizeof a, "%s/a.sgn", dir);
    snprintf(b, sizeof b, "%s/b.sgn", dir);
    snprintf(c, sizeof c, "%s/c.sgn", sub);
    testlib_write(b, "old", 3);
    ck_assert_msg(file_stage_add(st, a, "AAA", 3, 0640, "a.sgn", &err) == 0, "%s", err.msg);
    ck_assert_msg(file_stage_add(st, b, "BBBB", 4, 0640, "b.sgn", &err) == 0, "%s", err.msg);
    ck_assert_msg(file_stage_add(st, c, "C", 1, 0640, "c.sgn", &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(file_stage_pending(st), 3);
    ck_assert_int_eq(access(a, F_OK), -1);
    assert_content(b, "old");
    ck_assert_int_eq(entries(sub), 0);
    ck_assert_uint_eq(file_stage_commit(st, record_done, &log), 0);
    ck_assert_int_eq(log.ok, 3);
    ck_assert_int_eq(log.failed, 0);
    ck_assert_uint_eq(file_stage_pending(st), 0);
    assert_content(a, "AAA");
    assert_content(b, "BBBB");
    assert_content(c, "C");
    struct stat sb;
    ck_assert_int_eq(stat(a, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0640);
    ck_assert_int_eq(entries(dir), 3); /* a.sgn, b.sgn, sub: no temporary */
    ck_assert_int_eq(entries(sub), 1);
    /* One syncfs (one file system) and one fsync per directory: 3, not one per file. */
    ck_assert_uint_eq(file_stage_flushes(st), 3);
    file_stage_free(st);
}
END_TEST

struct adder {
    struct file_stage *st;
    int first, count;
};

static void *add_many(void *arg)
{
    struct adder *ad = arg;
    struct itl_error e;
    char p[700], body[32];

    for (int i = ad->first; i < ad->first + ad->count; i++) {
        snprintf(p, sizeof p, "%s/f%03d.sgn", dir, i);
        snprintf(body, sizeof body, "file %d", i);
        if (file_stage_add(ad->st, p, body, strlen(body), 0644, "sgn", &e) != 0)
            return (void *)1;
    }
    return NULL;
}

/* The flushes of a commit do not grow with the number of files: 200 files added by 4 threads
 * cost what 2 files cost. */
START_TEST(test_stage_flushes_do_not_grow)
{
    struct done_log log = {0};
    pthread_t t[4];
    struct adder ad[4];
    struct file_stage *st = file_stage_new(), *two = file_stage_new();
    char p[700];

    for (int i = 0; i < 4; i++) {
        ad[i] = (struct adder){st, i * 50, 50};
        ck_assert_int_eq(pthread_create(&t[i], NULL, add_many, &ad[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        ck_assert_ptr_null(res);
    }
    ck_assert_uint_eq(file_stage_pending(st), 200);
    ck_assert_uint_eq(file_stage_commit(st, record_done, &log), 0);
    ck_assert_int_eq(log.ok, 200);
    ck_assert_int_eq(entries(dir), 200);
    snprintf(p, sizeof p, "%s/f137.sgn", dir);
    assert_content(p, "file 137");
    struct adder small = {two, 500, 2};
    ck_assert_ptr_null(add_many(&small));
    ck_assert_uint_eq(file_stage_commit(two, record_done, &log), 0);
    ck_assert_uint_eq(file_stage_flushes(st), file_stage_flushes(two));
    ck_assert_uint_eq(file_stage_flushes(st), 2);
    /* A second commit of the same stage syncs again; an empty one syncs nothing. */
    ck_assert_uint_eq(file_stage_commit(st, record_done, &log), 0);
    ck_assert_uint_eq(file_stage_flushes(st), 2);
    file_stage_free(st);
    file_stage_free(two);
}
END_TEST

/* What is not committed never gets a name and leaves nothing behind; a file that cannot get its
 * name fails alone, with its path in the message, and the others are written. */
START_TEST(test_stage_discard_and_failures)
{
    struct done_log log = {0};
    struct file_stage *st = file_stage_new();
    char a[700], blocked[700], inside[760], missing[700];

    snprintf(a, sizeof a, "%s/a.sgn", dir);
    testlib_write(a, "old", 3);
    ck_assert_int_eq(file_stage_add(st, a, "new", 3, 0644, "a.sgn", &err), 0);
    file_stage_free(st); /* discarded: the old file stays, no temporary */
    assert_content(a, "old");
    ck_assert_int_eq(entries(dir), 1);

    st = file_stage_new();
    snprintf(missing, sizeof missing, "%s/missing/x.sgn", dir);
    ck_assert_int_eq(file_stage_add(st, missing, "x", 1, 0644, "x", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "/missing"));
    snprintf(missing, sizeof missing, "%s/", dir);
    ck_assert_int_eq(file_stage_add(st, missing, "x", 1, 0644, "x", &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    /* A non-empty directory where the output should go: rename cannot replace it. */
    snprintf(blocked, sizeof blocked, "%s/blocked.sgn", dir);
    ck_assert_int_eq(mkdir(blocked, 0755), 0);
    snprintf(inside, sizeof inside, "%s/keep", blocked);
    testlib_write(inside, "k", 1);
    ck_assert_int_eq(file_stage_add(st, blocked, "b", 1, 0644, "blocked.sgn", &err), 0);
    ck_assert_int_eq(file_stage_add(st, a, "new", 3, 0644, "a.sgn", &err), 0);
    ck_assert_uint_eq(file_stage_commit(st, record_done, &log), 1);
    ck_assert_int_eq(log.ok, 1);
    ck_assert_int_eq(log.failed, 1);
    ck_assert_ptr_nonnull(strstr(log.last_err, "cannot write"));
    ck_assert_ptr_nonnull(strstr(log.last_err, "blocked.sgn"));
    assert_content(a, "new");
    ck_assert_int_eq(entries(dir), 2); /* a.sgn and the directory: no temporary left */
    ck_assert_int_eq(entries(blocked), 1);
    file_stage_free(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_file");
    TCase *tc = tcase_create("file");
    SRunner *sr;
    int failed;

    umask(022);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_read_limit);
    tcase_add_test(tc, test_read_empty_and_large);
    tcase_add_test(tc, test_read_refuses_symlink_with_nofollow);
    tcase_add_test(tc, test_read_refuses_non_files);
    tcase_add_test(tc, test_read_fd_pipe);
    tcase_add_test(tc, test_replace_at);
    tcase_add_test(tc, test_replace_at_gives_owner);
    tcase_add_test(tc, test_replace_in_names_the_directory);
    tcase_add_test(tc, test_replace_failure_keeps_old_file);
    tcase_add_test(tc, test_replace_path_and_sync);
    tcase_add_test(tc, test_replace_bare_name);
    tcase_add_test(tc, test_write_all);
    tcase_add_test(tc, test_stage_commit_names_all);
    tcase_add_test(tc, test_stage_flushes_do_not_grow);
    tcase_add_test(tc, test_stage_discard_and_failures);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
