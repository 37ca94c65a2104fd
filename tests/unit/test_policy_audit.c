/* SPDX-License-Identifier: MIT */
/* policy: the audit log: JSON lines, one write each, from many threads; reopen; failures. */
#include "policy/policy.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 ((time_t)1795452000)

static char dir[512], log_path[600];
static struct itl_error err;

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
            "    want = keys + (['count'] if r['op'] == 'denied-summary' else [])\n"
            "    assert list(r.keys()) == want, r.keys()\n"
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
                                 "cnf.xml \\\"quoted\\\"\\n\\\\ \\u0001 \\u00ff caf\xc3\xa9\","
                                 "\"in_sha256\":\"000102030405"));
    free(text);
    ck_assert_int_eq(
        python_check(log_path,
                     "assert len(recs) == 2\n"
                     "r = recs[0]\n"
                     "assert r['file'] == 'SEP001122334455.cnf.xml \"quoted\"\\n\\\\ \\x01 "
                     "\\u00ff caf\\u00e9', repr(r['file'])\n"
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
    struct itl_error e;

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

/* ---- group commit ---- */

#define IN_FLIGHT 8

static void *write_expected(void *arg)
{
    struct writer *w = arg;
    struct pol_peer peer = {.uid = (uid_t)w->id, .gid = 0, .pid = 1};
    char message[64];
    struct itl_error e;

    snprintf(message, sizeof message, "req-%d", w->id);
    struct pol_audit_record r = {.time = T0,
                                 .peer = &peer,
                                 .op = "sign",
                                 .file = "f.cnf.xml",
                                 .result = "ok",
                                 .message = message};
    if (pol_audit_write_expected(w->a, &r, &e) != 0)
        w->failures++;
    return NULL;
}

/* Eight requests in flight (expected before any writes): one fdatasync covers all eight
 * records, whatever order the threads run in. The wait is set long so that only the count of
 * requests in flight decides, never the clock. */
START_TEST(test_requests_in_flight_share_one_flush)
{
    struct pol_audit *a;
    pthread_t threads[IN_FLIGHT];
    struct writer writers[IN_FLIGHT];

    ck_assert_msg(pol_audit_open(log_path, &a, &err) == 0, "%s", err.msg);
    pol_audit_set_group_wait(a, 600000);
    for (int t = 0; t < IN_FLIGHT; t++)
        pol_audit_expect(a);
    for (int t = 0; t < IN_FLIGHT; t++) {
        writers[t] = (struct writer){.a = a, .id = t};
        ck_assert_int_eq(pthread_create(&threads[t], NULL, write_expected, &writers[t]), 0);
    }
    for (int t = 0; t < IN_FLIGHT; t++) {
        pthread_join(threads[t], NULL);
        ck_assert_int_eq(writers[t].failures, 0);
    }
    ck_assert_uint_eq(pol_audit_flushes(a), 1);
    /* A lone request has nobody to wait for: its own flush, at once. */
    writers[0].id = 99;
    pol_audit_expect(a);
    write_expected(&writers[0]);
    ck_assert_int_eq(writers[0].failures, 0);
    ck_assert_uint_eq(pol_audit_flushes(a), 2);
    pol_audit_close(a);
    ck_assert_int_eq(python_check(log_path,
                                  "assert len(recs) == 9, len(recs)\n"
                                  "assert sorted(r['message'] for r in recs) == "
                                  "sorted(['req-%d' % i for i in range(8)] + ['req-99'])\n"),
                     0);
}
END_TEST

/* A lone sign's record pair (issue 18): the intent counts as the request's expected record (with
 * a group wait of 10 minutes, a flush that still waited for it would hang the test), the log's
 * thread flushes it without the writer waiting, and pol_audit_sync returns once it is durable.
 * The outcome is written without a flush of its own; the thread flushes it once the log is
 * idle, with nobody waiting. */
START_TEST(test_intent_flushed_while_the_caller_works)
{
    struct pol_audit *a;
    struct pol_peer p = {.uid = 1001, .gid = 1001, .pid = 7};
    unsigned long long seq = 0;

    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), 0);
    pol_audit_set_group_wait(a, 600000);
    pol_audit_expect(a);
    struct pol_audit_record r = {
        .time = T0, .peer = &p, .op = "sign", .file = "SEP1.cnf.xml", .result = "signing"};
    ck_assert_int_eq(pol_audit_write_intent(a, &r, &seq, &err), 0);
    ck_assert_uint_gt(seq, 0);
    ck_assert_int_eq(pol_audit_sync(a, seq, &err), 0);
    ck_assert_uint_eq(pol_audit_flushes(a), 1);
    r.result = "ok";
    ck_assert_int_eq(pol_audit_write_after(a, &r, &err), 0);
    for (int i = 0; i < 10000 && pol_audit_flushes(a) < 2; i++)
        usleep(1000); /* a bound for a loaded host, not a pace */
    ck_assert_uint_eq(pol_audit_flushes(a), 2);
    pol_audit_close(a);
    ck_assert_int_eq(python_check(log_path, "assert [r['result'] for r in recs] == "
                                            "['signing', 'ok'], recs\n"),
                     0);
}
END_TEST

/* A held denial writes no line but still counts as arrived, so nobody waits for it; a request
 * that never writes (stalled) delays a flush by the bound only, and loses nothing. */
START_TEST(test_held_denials_and_stalled_requests_do_not_block)
{
    struct pol_audit *a;
    struct pol_peer p = {.uid = 1001, .gid = 1001, .pid = 7};

    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), 0);
    pol_audit_set_denial_limit(a, 1, 60);
    pol_audit_set_group_wait(a, 600000);
    struct pol_audit_record d = {
        .time = T0, .peer = &p, .op = "build", .result = "denied", .rule = "access"};
    pol_audit_expect(a);
    ck_assert_int_eq(pol_audit_write_expected(a, &d, &err), 0); /* recorded (the first) */
    pol_audit_expect(a);
    ck_assert_int_eq(pol_audit_write_expected(a, &d, &err), 0); /* held, counted */
    ck_assert_uint_eq(pol_audit_flushes(a), 1);
    pol_audit_set_group_wait(a, 1);
    pol_audit_expect(a); /* a request that will not write for now */
    struct pol_audit_record ok = {.time = T0, .peer = &p, .op = "sign", .result = "ok"};
    ck_assert_int_eq(pol_audit_write(a, &ok, &err), 0);
    ck_assert_uint_eq(pol_audit_flushes(a), 2);
    pol_audit_close(a);
    ck_assert_int_eq(python_check(log_path, "assert [r['result'] for r in recs] == "
                                            "['denied', 'ok', 'denied'], recs\n"
                                            "assert recs[2]['count'] == 1\n"),
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

/* A line torn before this process opened the log (a crash between a short write and its cut,
 * another writer): the next record starts on a new line instead of being glued onto it. */
START_TEST(test_torn_line_left_by_a_crash_is_ended)
{
    struct pol_audit *a;
    struct pol_audit_record r = {.time = T0, .op = "status", .result = "ok", .message = "whole"};

    testlib_sh("printf '{\"op\":\"sign\",\"resu' >'%s' && chmod 0640 '%s'", log_path, log_path);
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), 0);
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    pol_audit_close(a);
    ck_assert_int_eq(testlib_sh("test \"$(sed -n 1p '%s')\" = '{\"op\":\"sign\",\"resu' && "
                                "test $(wc -l <'%s') -eq 3 && sed -n '2,3p' '%s' | "
                                "/usr/bin/python3 -c 'import json,sys; "
                                "[json.loads(l) for l in sys.stdin]'",
                                log_path, log_path, log_path),
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
    /* not a regular file: a device, a FIFO someone planted, a link */
    ck_assert_int_eq(pol_audit_open("/dev/full", &a, &err), -1);
    ck_assert_str_eq(err.msg, "/dev/full: the audit log is not a regular file");
    testlib_sh("mkfifo '%s'", log_path);
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), -1); /* and does not hang */
    testlib_sh("rm -f '%s' && ln -s /etc/passwd '%s'", log_path, log_path);
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open the audit log"));
    (void)r;
}
END_TEST

/* A full disk (here RLIMIT_FSIZE) in the middle of a record: the request fails, and the record
 * is cut off again, so the next one is a line of its own and the log stays JSON lines. */
START_TEST(test_short_write_leaves_no_torn_record)
{
    struct pol_audit *a;
    struct pol_audit_record r = {.time = T0, .op = "sign", .result = "ok", .message = "one"};
    struct rlimit old, small;
    struct stat sb;
    off_t before;

    signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), 0);
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    ck_assert_int_eq(stat(log_path, &sb), 0);
    before = sb.st_size;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = (rlim_t)before + 40; /* room for 40 bytes of the next record */
    r.message = "two: a record that does not fit in what is left of the disk";
    /* No ck_assert while the limit holds: Check writes its own messages to a file. */
    int set = setrlimit(RLIMIT_FSIZE, &small);
    int rc = pol_audit_write(a, &r, &err);
    int reset = setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_int_eq(set, 0);
    ck_assert_int_eq(reset, 0);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(stat(log_path, &sb), 0);
    ck_assert_int_eq(sb.st_size, before); /* the 40 bytes were cut off */
    ck_assert_ptr_nonnull(strstr(err.msg, "audit record not written: File too large"));
    r.message = "three";
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    pol_audit_close(a);
    ck_assert_int_eq(python_check(log_path, "assert [r['message'] for r in recs] == ['one', "
                                            "'three'], [r['message'] for r in recs]\n"),
                     0);
}
END_TEST

/* Whoever can write the log or its directory can rewrite the trail. */
START_TEST(test_log_and_dir_modes_enforced)
{
    struct pol_audit *a;
    struct pol_audit_record r = {.time = T0, .op = "status", .result = "ok"};
    struct stat sb;
    char want[800], link2[700];

    /* an existing 0666 log is narrowed to 0640, at open and at reopen */
    testlib_sh("touch '%s' && chmod 0666 '%s'", log_path, log_path);
    ck_assert_msg(pol_audit_open(log_path, &a, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(stat(log_path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 07777, 0640);
    testlib_sh("mv '%s' '%s.1' && touch '%s' && chmod 0646 '%s'", log_path, log_path, log_path,
               log_path);
    ck_assert_msg(pol_audit_reopen(a, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(stat(log_path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 07777, 0640);
    /* a directory others can write: refused at reopen (the old log stays in use)... */
    testlib_sh("chmod 0777 '%s' && mv '%s' '%s.2'", dir, log_path, log_path);
    ck_assert_int_eq(pol_audit_reopen(a, &err), -1);
    snprintf(want, sizeof want, "audit log directory %s is writable by others (mode 0777)", dir);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "chmod o-w"));
    ck_assert_int_eq(pol_audit_write(a, &r, &err), 0);
    pol_audit_close(a);
    ck_assert_int_eq(access(log_path, F_OK), -1); /* nothing was created there */
    /* ... and at open, sticky or not */
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), -1);
    testlib_sh("chmod 1777 '%s'", dir);
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "writable by others"));
    testlib_sh("chmod 0700 '%s'", dir);
    /* a second name (hard link) could make the log another file */
    testlib_sh("touch '%s'", log_path);
    snprintf(link2, sizeof link2, "%s/other", dir);
    ck_assert_int_eq(link(log_path, link2), 0);
    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "hard links"));
}
END_TEST

/* As root: a log of another user is refused, not taken over; root's own log is handed to the
 * service user through the descriptor. */
START_TEST(test_log_owner_as_root)
{
    struct pol_audit *a;
    struct stat sb;

    if (geteuid() != 0)
        return; /* CI runs as root */
    testlib_sh("touch '%s' && chown 12345:12345 '%s'", log_path, log_path);
    ck_assert_int_eq(pol_audit_open_as(log_path, 4242, 4243, &a, &err), -1);
    ck_assert_msg(strstr(err.msg, "belongs to user 12345") != NULL, "%s", err.msg);
    ck_assert_int_eq(stat(log_path, &sb), 0);
    ck_assert_uint_eq(sb.st_uid, 12345);
    testlib_sh("chown 0:0 '%s' && chmod 0644 '%s'", log_path, log_path);
    ck_assert_msg(pol_audit_open_as(log_path, 4242, 4243, &a, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(stat(log_path, &sb), 0);
    ck_assert_uint_eq(sb.st_uid, 4242);
    ck_assert_uint_eq(sb.st_gid, 4243);
    ck_assert_uint_eq(sb.st_mode & 07777, 0640);
    pol_audit_close(a);
    /* the service user's own log: accepted as it is */
    ck_assert_msg(pol_audit_open_as(log_path, 4242, 4243, &a, &err) == 0, "%s", err.msg);
    pol_audit_close(a);
    /* a directory of another user */
    testlib_sh("chown 12345 '%s'", dir);
    ck_assert_int_eq(pol_audit_open_as(log_path, 4242, 4243, &a, &err), -1);
    ck_assert_msg(strstr(err.msg, "audit log directory") != NULL, "%s", err.msg);
}
END_TEST

/* One peer sending refused requests: the first 60 per minute (of record time) are written one
 * by one, the rest are counted into one summary per uid, written when the minute is over or at
 * close. Nothing is lost: the lines plus the counts are every denial. */
START_TEST(test_denials_are_aggregated)
{
    struct pol_audit *a;
    struct pol_peer p1 = {.uid = 1001, .gid = 1001, .pid = 7}, p2 = {.uid = 1002, .pid = 8};

    ck_assert_int_eq(pol_audit_open(log_path, &a, &err), 0);
    for (int i = 0; i < 1000; i++) {
        struct pol_audit_record d = {.time = T0 + i / 20,
                                     .peer = i % 50 == 49 ? &p2 : &p1,
                                     .op = i % 3 ? "build" : "protocol",
                                     .result = i % 3 ? "denied" : "error",
                                     .rule = i % 3 ? "access" : NULL,
                                     .message = "refused"};
        ck_assert_int_eq(pol_audit_write(a, &d, &err), 0);
    }
    /* a served request is never held back; one a minute later closes the interval */
    struct pol_audit_record ok = {.time = T0 + 30, .peer = &p1, .op = "sign", .result = "ok"};
    ck_assert_int_eq(pol_audit_write(a, &ok, &err), 0);
    ok.time = T0 + 61;
    ok.message = "after";
    ck_assert_int_eq(pol_audit_write(a, &ok, &err), 0);
    for (int i = 0; i < 100; i++) {
        struct pol_audit_record d = {
            .time = T0 + 70, .peer = &p1, .op = "reset", .result = "denied", .rule = "access"};
        ck_assert_int_eq(pol_audit_write(a, &d, &err), 0);
    }
    /* a policy refusal of a peer with the right says what it tried: never only counted */
    for (int i = 0; i < 70; i++) {
        struct pol_audit_record d = {.time = T0 + 70,
                                     .peer = &p1,
                                     .op = "sign",
                                     .result = "denied",
                                     .rule = "output-kind",
                                     .message = "policy"};
        ck_assert_int_eq(pol_audit_write(a, &d, &err), 0);
    }
    pol_audit_close(a); /* the open interval's summary */
    ck_assert_int_eq(
        python_check(log_path, "pol = [r for r in recs if r['rule'] == 'output-kind']\n"
                               "assert len(pol) == 70, len(pol)\n"
                               "recs = [r for r in recs if r['rule'] != 'output-kind']\n"
                               "den = [r for r in recs if r['result'] in ('denied', 'error') and "
                               "r['op'] != 'denied-summary']\n"
                               "summ = [r for r in recs if r['op'] == 'denied-summary']\n"
                               "assert len(recs) <= 150, len(recs)\n"
                               "for uid, total in ((1001, 980 + 100), (1002, 20)):\n"
                               "    n = sum(1 for r in den if r['uid'] == uid)\n"
                               "    c = sum(r['count'] for r in summ if r['uid'] == uid)\n"
                               "    assert n + c == total, (uid, n, c)\n"
                               "assert sum(1 for r in den if r['uid'] == 1001) == 120\n"
                               "assert sum(1 for r in den if r['uid'] == 1002) == 20\n"
                               "assert [r['count'] for r in summ] == [920, 40], summ\n"
                               "ops = [r['op'] for r in recs]\n"
                               "assert ops.index('denied-summary') < [r['message'] for r in "
                               "recs].index('after')\n"
                               "s = summ[0]\n"
                               "assert s['uid'] == 1001 and s['result'] == 'denied', s\n"
                               "assert '920 more denied' in s['message'], s['message']\n"),
        0);
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
    tcase_add_test(tc, test_requests_in_flight_share_one_flush);
    tcase_add_test(tc, test_held_denials_and_stalled_requests_do_not_block);
    tcase_add_test(tc, test_intent_flushed_while_the_caller_works);
    tcase_add_test(tc, test_reopen_after_rotation);
    tcase_add_test(tc, test_failures_are_reported);
    tcase_add_test(tc, test_short_write_leaves_no_torn_record);
    tcase_add_test(tc, test_torn_line_left_by_a_crash_is_ended);
    tcase_add_test(tc, test_log_and_dir_modes_enforced);
    tcase_add_test(tc, test_log_owner_as_root);
    tcase_add_test(tc, test_denials_are_aggregated);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
