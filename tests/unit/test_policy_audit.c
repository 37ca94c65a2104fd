/* SPDX-License-Identifier: MIT */
/* policy: the audit log: JSON lines, one write each, from many threads; reopen; failures. */
#include "policy/policy.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T0 ((time_t)1795452000)

static char dir[512], log_path[600];
static struct pol_err err;

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("polaudit"));
    snprintf(log_path, sizeof log_path, "%s/audit.log", dir);
}

static void teardown(void)
{
    testlib_sh("rm -rf '%s'", dir);
}

/* Runs a Python check over the log: every line one JSON object with exactly our keys. */
static int python_check(const char *path, const char *extra)
{
    char script[600];
    FILE *f;
    snprintf(script, sizeof script, "%s/check.py", dir);
    f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "import json, sys\n"
            "keys = ['time','uid','gid','pid','op','file','in_sha256','out_sha256','key',"
            "'result','rule','message']\n"
            "data = open(sys.argv[1], 'rb').read()\n"
            "assert data.endswith(b'\\n'), 'last line unterminated'\n"
            "lines = data.decode('utf-8').split('\\n')[:-1]\n"
            "recs = [json.loads(l) for l in lines]\n"
            "for r in recs:\n"
            "    assert list(r.keys()) == keys, r.keys()\n"
            "%s\n",
            extra);
    fclose(f);
    return testlib_sh("/usr/bin/python3 '%s' '%s'", script, path);
}

START_TEST(test_record_fields)
{
    struct pol_audit *a;
    struct pol_peer peer = {.uid = 1001, .gid = 1002, .pid = 4242};
    uint8_t in[32], out[32];
    struct stat sb;

    for (int i = 0; i < 32; i++) {
        in[i] = (uint8_t)i;
        out[i] = (uint8_t)(0xff - i);
    }
    ck_assert_msg(pol_audit_open(log_path, &a, &err) == 0, "%s", err.msg);
    struct pol_audit_record r = {
        .time = T0,
        .peer = &peer,
        .op = "sign",
        .file = "SEP001122334455.cnf.xml \"quoted\"\n\\ \x01 \xff caf\xc3\xa9",
        .in_sha256 = in,
        .out_sha256 = out,
        .key = "CallManager",
        .result = "ok",
        .rule = "ok",
        .message = NULL,
    };
    ck_assert_msg(pol_audit_write(a, &r, &err) == 0, "%s", err.msg);
    struct pol_audit_record denial = {.time = T0 + 1,
                                      .op = "reset",
                                      .result = "denied",
                                      .rule = "publisher-only",
                                      .message = "This is not a Publisher Node"};
    ck_assert_msg(pol_audit_write(a, &denial, &err) == 0, "%s", err.msg);
    pol_audit_close(a);

    ck_assert_int_eq(stat(log_path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0640);
    size_t len;
    char *text = (char *)testlib_read(log_path, &len);
    ck_assert_ptr_nonnull(strstr(text,
                                 "{\"time\":\"2026-11-23T16:40:00Z\",\"uid\":1001,\"gid\":1002,"
                                 "\"pid\":4242,\"op\":\"sign\",\"file\":\"SEP001122334455."
                                 "cnf.xml \\\"quoted\\\"\\n\\\\ \\u0001 \\ufffd caf\xc3\xa9\","
                                 "\"in_sha256\":\"000102030405"));
    free(text);
    ck_assert_int_eq(
        python_check(log_path,
                     "assert len(recs) == 2\n"
                     "r = recs[0]\n"
                     "assert r['file'] == 'SEP001122334455.cnf.xml \"quoted\"\\n\\\\ \\x01 "
                     "\\ufffd caf\\u00e9', repr(r['file'])\n"
                     "assert r['in_sha256'] == bytes(range(32)).hex()\n"
                     "assert r['out_sha256'] == bytes(255 - i for i in range(32)).hex()\n"
                     "assert (r['uid'], r['gid'], r['pid']) == (1001, 1002, 4242)\n"
                     "assert r['message'] is None and r['key'] == 'CallManager'\n"
                     "d = recs[1]\n"
                     "assert d['time'] == '2026-11-23T16:40:01Z'\n"
                     "assert d['uid'] is None and d['file'] is None and d['in_sha256'] is None\n"
                     "assert d['rule'] == 'publisher-only' and d['result'] == 'denied'\n"),
        0);
}
END_TEST

enum { THREADS = 4, PER_THREAD = 1000 };

struct writer {
    struct pol_audit *a;
    int id;
    int failures;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    struct pol_peer peer = {.uid = (uid_t)w->id, .gid = 0, .pid = 1};
    char message[64];
    struct pol_err e;

    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(message, sizeof message, "t%d-%d", w->id, i);
        struct pol_audit_record r = {.time = T0 + i,
                                     .peer = &peer,
                                     .op = "sign",
                                     .file = "a-fairly-long-file-name-to-make-lines-longer.cnf.xml",
                                     .result = "ok",
                                     .message = message};
        if (pol_audit_write(w->a, &r, &e) != 0)
            w->failures++;
    }
    return NULL;
}

START_TEST(test_threads_one_line_per_write)
{
    struct pol_audit *a;
    pthread_t threads[THREADS];
    struct writer writers[THREADS];

    ck_assert_msg(pol_audit_open(log_path, &a, &err) == 0, "%s", err.msg);
    for (int t = 0; t < THREADS; t++) {
        writers[t] = (struct writer){.a = a, .id = t};
        ck_assert_int_eq(pthread_create(&threads[t], NULL, write_many, &writers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        ck_assert_int_eq(writers[t].failures, 0);
    }
    pol_audit_close(a);
    ck_assert_int_eq(python_check(log_path, "assert len(recs) == 4000, len(recs)\n"
                                            "seen = set(r['message'] for r in recs)\n"
                                            "assert seen == set('t%d-%d' % (t, i) for t in "
                                            "range(4) for i in range(1000))\n"),
                     0);
}
END_TEST

START_TEST(test_reopen_after_rotation)
{
    struct pol_audit *a;
    struct pol_audit_record r = {.time = T0, .op = "status", .result = "ok", .message = "one"};
    char rotated[700];

    snprintf(rotated, sizeof rotated, "%s.1", log_path);
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), 0);
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    ck_assert_int_eq(rename(log_path, rotated), 0);
    r.message = "two";
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0); /* still the old file */
    ck_assert_int_eq(pol_audit_reopen(a, &err), 0);
    r.message = "three";
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    ck_assert_int_eq(python_check(log_path, "assert [r['message'] for r in recs] == ['three']"), 0);
    /* a reopen that fails keeps the old descriptor */
    testlib_sh("rm -rf '%s' && mkdir '%s'", log_path, log_path);
    ck_assert_int_eq(pol_audit_reopen(a, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open the audit log"));
    r.message = "four";
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    pol_audit_close(a);
    testlib_sh("rmdir '%s'", log_path);
    ck_assert_int_eq(python_check(rotated, "assert [r['message'] for r in recs] == ['one', 'two']"),
                     0);
}
END_TEST

START_TEST(test_failures_are_reported)
{
    struct pol_audit *a;
    struct pol_audit_record r = {.time = T0, .op = "sign", .result = "ok"};
    char missing[700];

    snprintf(missing, sizeof missing, "%s/no/such/dir/audit.log", dir);
    ck_assert_int_eq(pol_audit_open(missing, &a, &err), -1);
    ck_assert_ptr_null(a);
    char want[900];
    snprintf(want, sizeof want, "%s: cannot open the audit log: No such file or directory",
             missing);
    ck_assert_str_eq(err.msg, want);
    /* a full disk: the record is not durable, the caller must fail the request */
    ck_assert_int_eq(pol_audit_open("/dev/full", &a, &err), 0);
    ck_assert_int_eq(pol_audit_write(a, &r, &err), -1);
    ck_assert_str_eq(err.msg, "/dev/full: audit record not written: No space left on device");
    pol_audit_close(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_audit");
    TCase *tc = tcase_create("audit");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_record_fields);
    tcase_add_test(tc, test_threads_one_line_per_write);
    tcase_add_test(tc, test_reopen_after_rotation);
    tcase_add_test(tc, test_failures_are_reported);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
