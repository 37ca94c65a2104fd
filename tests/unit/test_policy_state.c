/* SPDX-License-Identifier: MIT */
/* policy: the state file: format and strict parse, atomic locked updates, fail closed. */
#include "policy/policy.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 ((time_t)1795452000)

static char dir[512];
static struct pol_config cfg;
static struct itl_error err;

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("polstate"));
    pol_config_defaults(&cfg);
}

static void teardown(void)
{
    testlib_sh("rm -rf '%s'", dir);
}

static void write_state_text(const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/state.json", dir);
    testlib_write(path, text, strlen(text));
}

static struct pol_attestation attestation(enum pol_key_role key, uint8_t first_byte,
                                          const char *identity, time_t when)
{
    struct pol_attestation a;
    memset(&a, 0, sizeof a);
    a.key = key;
    a.cert_sha256[0] = first_byte;
    a.cert_sha256[31] = 0x5a;
    snprintf(a.kind, sizeof a.kind, "token");
    snprintf(a.identity, sizeof a.identity, "%s", identity);
    a.time = when;
    a.uid = 1000;
    return a;
}

static struct pol_regen_event regen(enum pol_key_role key, const char *label, time_t when)
{
    struct pol_regen_event ev;
    memset(&ev, 0, sizeof ev);
    ev.key = key;
    snprintf(ev.label, sizeof ev.label, "%s", label);
    ev.cert_sha256[0] = 0x77;
    ev.time = when;
    ev.uid = 0;
    return ev;
}

START_TEST(test_missing_is_empty)
{
    struct pol_state st;
    ck_assert_msg(pol_state_load(dir, &st, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(st.has_last_regen, 0);
    ck_assert_uint_eq(st.n_attestations, 0);
    ck_assert_uint_eq(st.generation, 0);
    /* also when the state directory does not exist yet */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/not-yet", dir);
    ck_assert_msg(pol_state_load(missing, &st, &err) == 0, "%s", err.msg);
}
END_TEST

/* Field by field: struct copies need not keep padding bytes. */
static void ck_same_state(const struct pol_state *a, const struct pol_state *b)
{
    ck_assert_uint_eq(a->generation, b->generation);
    ck_assert_int_eq(a->last_backup_warning, b->last_backup_warning);
    ck_assert_int_eq(a->has_last_regen, b->has_last_regen);
    ck_assert_int_eq(a->last_regen.key, b->last_regen.key);
    ck_assert_str_eq(a->last_regen.label, b->last_regen.label);
    ck_assert_mem_eq(a->last_regen.cert_sha256, b->last_regen.cert_sha256, 32);
    ck_assert_int_eq(a->last_regen.time, b->last_regen.time);
    ck_assert_uint_eq(a->last_regen.uid, b->last_regen.uid);
    ck_assert_uint_eq(a->n_attestations, b->n_attestations);
    for (size_t i = 0; i < a->n_attestations; i++) {
        const struct pol_attestation *x = &a->attestations[i], *y = &b->attestations[i];
        ck_assert_int_eq(x->key, y->key);
        ck_assert_mem_eq(x->cert_sha256, y->cert_sha256, 32);
        ck_assert_str_eq(x->kind, y->kind);
        ck_assert_str_eq(x->identity, y->identity);
        ck_assert_int_eq(x->time, y->time);
        ck_assert_uint_eq(x->uid, y->uid);
    }
}

START_TEST(test_round_trip)
{
    struct pol_state st, back;
    char *text;
    size_t len;

    memset(&st, 0, sizeof st);
    st.generation = 41;
    st.last_backup_warning = T0 - 5;
    st.has_last_regen = 1;
    st.last_regen = regen(POL_KEY_TFTP, "Call\"Manager\\\n\x01", T0);
    st.attestations[0] = attestation(POL_KEY_RECOVERY, 0xab, "label=bk;serial=9", T0 + 1);
    st.attestations[1] = attestation(POL_KEY_TFTP, 0xcd, "sha256:0011 \xc3\xa9t\xc3\xa9", T0 + 2);
    snprintf(st.attestations[1].kind, sizeof st.attestations[1].kind, "p12");
    st.n_attestations = 2;
    ck_assert_int_eq(pol_state_format(&st, &text, &len), 0);
    ck_assert_uint_eq(strlen(text), len);
    ck_assert_msg(pol_state_parse(text, len, &back, &err) == 0, "%s\n%s", err.msg, text);
    ck_same_state(&st, &back);
    free(text);
    /* the empty state too */
    memset(&st, 0, sizeof st);
    ck_assert_int_eq(pol_state_format(&st, &text, &len), 0);
    ck_assert_msg(pol_state_parse(text, len, &back, &err) == 0, "%s", err.msg);
    ck_same_state(&st, &back);
    free(text);
}
END_TEST

#define ck_state_bad(text, message)                                                                \
    do {                                                                                           \
        struct pol_state st_;                                                                      \
        ck_assert_int_eq(pol_state_parse(text, strlen(text), &st_, &err), -1);                     \
        ck_assert_str_eq(err.msg, message);                                                        \
        ck_assert_uint_eq(st_.n_attestations, 0);                                                  \
    } while (0)

#define HEAD "{\"version\": 1, \"generation\": 3, \"last_backup_warning\": 0, "
#define HASH "\"0000000000000000000000000000000000000000000000000000000000000000\""

START_TEST(test_parse_is_strict)
{
    struct pol_state st;
    const char *good = HEAD "\"last_regen\": null, \"attestations\": []}";
    ck_assert_msg(pol_state_parse(good, strlen(good), &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.generation, 3);

    ck_assert_int_eq(pol_state_parse("", 0, &st, &err), -1);
    ck_assert_str_eq(err.msg, "empty file (a state file is never empty; it may have been "
                              "truncated)");
    ck_state_bad("{\"version\": 1", "line 1 (byte 13): expected '}', found the end of the file");
    ck_state_bad(HEAD "\"last_regen\": null}", "line 1 (byte 77): the state lacks 'attestations'");
    ck_state_bad(HEAD "\"last_regen\": null, \"attestations\": [], \"extra\": 1}",
                 "line 1 (byte 98): unknown key 'extra' in the state");
    ck_state_bad(HEAD "\"last_regen\": null, \"last_regen\": null, \"attestations\": []}",
                 "line 1 (byte 78): duplicate key 'last_regen' in the state");
    ck_state_bad("{\"version\": 2, \"generation\": 3}",
                 "line 1 (byte 13): state version 2 is not supported (this is version 1)");
    ck_state_bad(HEAD "\"last_regen\": null, \"attestations\": []} x",
                 "line 1 (byte 98): trailing data after the state object");
    ck_state_bad("{\"version\": 01}", "line 1 (byte 14): leading zero in number");
    ck_state_bad("{\"version\": 1, \"generation\": -3}", "line 1 (byte 29): negative number");
    ck_state_bad("{\"version\": 1, \"generation\": 99999999999999999999}",
                 "line 1 (byte 47): number out of range");
    ck_state_bad(HEAD "\"last_regen\": {\"key\": \"sast\"}",
                 "line 1 (byte 80): unknown key role (recovery or tftp)");
    ck_state_bad(HEAD "\"last_regen\": {\"key\": \"tftp\", \"label\": \"a\", \"cert_sha256\": "
                      "\"00\"}",
                 "line 1 (byte 117): cert_sha256 must be 64 hex digits");
    ck_state_bad(HEAD "\"last_regen\": {\"key\": \"tftp\", \"label\": \"a\\u0000\"}",
                 "line 1 (byte 105): \\u0000 is not allowed in a string");
    ck_state_bad(HEAD "\"last_regen\": {\"key\": \"tftp\", \"label\": \"a\nb\"}",
                 "line 1 (byte 99): control character in string");
    ck_state_bad(HEAD "\"last_regen\": {\"key\": \"tftp\", \"label\": \"\xff\"}",
                 "line 1 (byte 98): invalid UTF-8 in string");
    ck_state_bad(HEAD "\"last_regen\": null,\n\"attestations\": [{\"key\": \"recovery\", "
                      "\"cert_sha256\": " HASH ", \"kind\": \"usb\"}]}",
                 "line 2 (byte 206): attestation kind must be token or p12");
    ck_state_bad(HEAD "\"last_regen\": null,\n\"attestations\": [{\"key\": \"recovery\", "
                      "\"cert_sha256\": " HASH ", \"kind\": \"p12\", \"identity\": \"x\", "
                      "\"time\": 5}]}",
                 "line 2 (byte 240): an attestation lacks 'uid'");
}
END_TEST

START_TEST(test_corrupt_file_fails_closed)
{
    struct pol_state st;
    char want[1200], path[600];

    write_state_text("{\"version\": 1, \"generation\": 3, \"last_backup_warn");
    ck_assert_int_eq(pol_state_load(dir, &st, &err), -1);
    snprintf(path, sizeof path, "%s/state.json", dir);
    snprintf(want, sizeof want,
             "%s: corrupt policy state: line 1 (byte 49): unterminated string (refusing to "
             "continue; restore the file or move it away after checking it)",
             path);
    ck_assert_str_eq(err.msg, want);
    /* writers refuse too, and leave the damaged file as it was */
    struct pol_attestation a = attestation(POL_KEY_RECOVERY, 1, "label=b;serial=1", T0);
    ck_assert_int_eq(pol_state_record_attestation(dir, &a, &err), -1);
    ck_assert_str_eq(err.msg, want);
    size_t len;
    char *text = (char *)testlib_read(path, &len);
    ck_assert_str_eq(text, "{\"version\": 1, \"generation\": 3, \"last_backup_warn");
    free(text);
    /* an empty file is corrupt, not empty state */
    write_state_text("");
    ck_assert_int_eq(pol_state_load(dir, &st, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "empty file"));
    /* unreadable: a directory where the file should be */
    testlib_sh("rm -f '%s' && mkdir '%s'", path, path);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), -1);
    snprintf(want, sizeof want, "state file %s is not a regular file (move it away)", path);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

/* Only root or the state's owner may have written the directory and its files (issue 12). */
START_TEST(test_untrusted_state_refused)
{
    struct pol_state st;
    struct pol_attestation a = attestation(POL_KEY_RECOVERY, 1, "label=b;serial=1", T0);
    char path[600];

    ck_assert_msg(pol_state_record_attestation(dir, &a, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/state.json", dir);
    testlib_sh("chmod 0777 '%s'", dir);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "state directory"));
    ck_assert_ptr_nonnull(strstr(err.msg, "writable by others (mode 0777)"));
    ck_assert_int_eq(pol_state_record_attestation(dir, &a, &err), -1);
    testlib_sh("chmod 0750 '%s' && chmod 0666 '%s'", dir, path);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "state file"));
    ck_assert_ptr_nonnull(strstr(err.msg, "chmod o-w"));
    testlib_sh("chmod 0640 '%s'", path);
    ck_assert_msg(pol_state_load(dir, &st, &err) == 0, "%s", err.msg);
    if (geteuid() == 0) { /* a file of another user: only root can make one for the test */
        testlib_sh("chown 65534 '%s'", path);
        ck_assert_int_eq(pol_state_load(dir, &st, &err), -1);
        ck_assert_ptr_nonnull(strstr(err.msg, "belongs to user"));
        ck_assert_ptr_nonnull(strstr(err.msg, "fix: chown"));
    }
}
END_TEST

/* Once written, a missing state.json is an error naming it, not an empty state. */
START_TEST(test_vanished_state_fails_closed)
{
    struct pol_state st;
    struct pol_decision d;
    struct pol_regen_event ev = regen(POL_KEY_TFTP, "CallManager", T0);
    char path[600];

    cfg.policy.regen_hold = 300;
    ck_assert_msg(pol_state_record_regen(dir, &cfg, &ev, &d, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/state.json", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_ptr_nonnull(strstr(err.msg, "is missing, but the state was written before"));
    /* and no writer starts over behind the hold's back */
    ev.time = T0 + 10;
    ck_assert_int_eq(pol_state_record_regen(dir, &cfg, &ev, &d, &err), -1);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(test_attestations_and_regen)
{
    struct pol_state st;
    struct pol_decision d;
    struct pol_attestation a = attestation(POL_KEY_RECOVERY, 1, "label=b;serial=1", T0);
    struct pol_attestation t = attestation(POL_KEY_TFTP, 2, "sha256:ff", T0);
    struct pol_regen_event ev;
    struct stat sb;
    char path[600];

    ck_assert_msg(pol_state_record_attestation(dir, &a, &err) == 0, "%s", err.msg);
    ck_assert_msg(pol_state_record_attestation(dir, &a, &err) == 0, "%s", err.msg); /* same */
    ck_assert_msg(pol_state_record_attestation(dir, &t, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), 0);
    ck_assert_uint_eq(st.n_attestations, 2);
    ck_assert_uint_eq(st.generation, 3);
    ck_assert_ptr_nonnull(pol_state_find_attestation(&st, POL_KEY_RECOVERY, a.cert_sha256));
    ck_assert_ptr_null(pol_state_find_attestation(&st, POL_KEY_TFTP, a.cert_sha256));
    ck_assert_str_eq(pol_state_find_attestation(&st, POL_KEY_RECOVERY, a.cert_sha256)->identity,
                     "label=b;serial=1");
    snprintf(path, sizeof path, "%s/state.json", dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0640);

    /* regenerating the recovery key voids its attestation, not the TFTP one */
    ev = regen(POL_KEY_RECOVERY, "ITLRecovery", T0 + 10);
    ck_assert_msg(pol_state_record_regen(dir, &cfg, &ev, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d.allow, 1);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), 0);
    ck_assert_ptr_null(pol_state_find_attestation(&st, POL_KEY_RECOVERY, a.cert_sha256));
    ck_assert_ptr_nonnull(pol_state_find_attestation(&st, POL_KEY_TFTP, t.cert_sha256));
    ck_assert_int_eq(st.has_last_regen, 1);
    ck_assert_str_eq(st.last_regen.label, "ITLRecovery");
    ck_assert_int_eq(st.last_regen.time, T0 + 10);

    /* the hold is checked again under the lock: a second regeneration 1 minute later fails */
    ev = regen(POL_KEY_TFTP, "CallManager", T0 + 70);
    ck_assert_int_eq(pol_state_record_regen(dir, &cfg, &ev, &d, &err), -1);
    ck_assert_int_eq(d.allow, 0);
    ck_assert_str_eq(d.rule, "regen-hold");
    ck_assert_str_eq(d.message, "ITLRecovery certificate was modified in the last 5 minutes (at "
                                "2026-11-23T16:40:10Z). Please re-try regenerating CallManager "
                                "at a later time (after 2026-11-23T16:45:10Z).");
    ck_assert_str_eq(err.msg, d.message);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), 0);
    ck_assert_int_eq(st.last_regen.key, POL_KEY_RECOVERY); /* unchanged */
    ck_assert_uint_eq(st.generation, 4);
    /* after the hold it passes and voids the TFTP attestation */
    ev = regen(POL_KEY_TFTP, "CallManager", T0 + 310);
    ck_assert_msg(pol_state_record_regen(dir, &cfg, &ev, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), 0);
    ck_assert_uint_eq(st.n_attestations, 0);

    /* backup warning time */
    ck_assert_int_eq(pol_state_record_backup_warning(dir, T0 + 999, &err), 0);
    ck_assert_int_eq(pol_state_load(dir, &st, &err), 0);
    ck_assert_int_eq(st.last_backup_warning, T0 + 999);
    ck_assert_int_eq(st.last_regen.key, POL_KEY_TFTP);

    /* bad attestations are refused before anything is written */
    a.kind[0] = 'x';
    ck_assert_int_eq(pol_state_record_attestation(dir, &a, &err), -1);
    ck_assert_str_eq(err.msg, "attestation: kind must be token or p12");
    a = attestation(POL_KEY_RECOVERY, 1, "\xff\xfe", T0);
    ck_assert_int_eq(pol_state_record_attestation(dir, &a, &err), -1);
    ck_assert_str_eq(err.msg, "attestation: identity must be set, UTF-8, without control "
                              "characters");
    a = attestation(POL_KEY_RECOVERY, 1, "ok", -1);
    ck_assert_int_eq(pol_state_record_attestation(dir, &a, &err), -1);
    ck_assert_str_eq(err.msg, "attestation: time or uid out of range");
    ev = regen(POL_KEY_TFTP, "Call\nManager", T0 + 9999);
    ck_assert_int_eq(pol_state_record_regen(dir, &cfg, &ev, &d, &err), -1);
    ck_assert_str_eq(err.msg, "regeneration: label must be set, UTF-8, without control "
                              "characters");
    ck_assert_int_eq(d.allow, 1); /* an error, not a denial */
    ck_assert_int_eq(pol_state_load(dir, &st, &err), 0);
    ck_assert_uint_eq(st.generation, 6); /* nothing written by the refusals */
    /* no temp files left behind */
    ck_assert_int_eq(testlib_sh("test -z \"$(ls -A '%s' | grep -v '^state\\.json$' | grep -v "
                                "'^state\\.lock$')\"",
                                dir),
                     0);
}
END_TEST

START_TEST(test_full_table_drops_oldest)
{
    struct pol_state st;
    for (int i = 0; i < POL_MAX_ATTESTATIONS + 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "label=b;serial=%d", i);
        struct pol_attestation a = attestation(POL_KEY_RECOVERY, 1, id, T0 + i);
        ck_assert_msg(pol_state_record_attestation(dir, &a, &err) == 0, "%s", err.msg);
    }
    ck_assert_int_eq(pol_state_load(dir, &st, &err), 0);
    ck_assert_uint_eq(st.n_attestations, POL_MAX_ATTESTATIONS);
    for (size_t i = 0; i < st.n_attestations; i++)
        ck_assert_int_ge(st.attestations[i].time, T0 + 3);
}
END_TEST

/* Two processes, each doing 500 attestation + regeneration cycles, with loads in between. */
START_TEST(test_concurrent_writers)
{
    enum { CYCLES = 500, WRITERS = 2 };
    pid_t pids[WRITERS];
    struct pol_state st;

    cfg.policy.regen_hold = 0;
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        ck_assert_int_ge(pids[w], 0);
        if (pids[w] == 0) {
            struct itl_error e;
            struct pol_decision d;
            struct pol_state seen;
            for (int i = 0; i < CYCLES; i++) {
                char id[64];
                snprintf(id, sizeof id, "label=w%d;serial=%d", w, i % 8);
                struct pol_attestation a = attestation(POL_KEY_TFTP, (uint8_t)w, id, T0 + i);
                struct pol_regen_event ev = regen(POL_KEY_RECOVERY, "ITLRecovery", T0 + i);
                if (pol_state_record_attestation(dir, &a, &e) != 0 ||
                    pol_state_record_regen(dir, &cfg, &ev, &d, &e) != 0 ||
                    pol_state_load(dir, &seen, &e) != 0) {
                    fprintf(stderr, "writer %d cycle %d: %s\n", w, i, e.msg);
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int status;
        ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", w);
    }
    ck_assert_msg(pol_state_load(dir, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.generation, (unsigned long long)WRITERS * CYCLES * 2);
    ck_assert_uint_eq(st.n_attestations, 16); /* 8 identities per writer, replaced in place */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_state");
    TCase *tc = tcase_create("state");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_missing_is_empty);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_parse_is_strict);
    tcase_add_test(tc, test_corrupt_file_fails_closed);
    tcase_add_test(tc, test_untrusted_state_refused);
    tcase_add_test(tc, test_vanished_state_fails_closed);
    tcase_add_test(tc, test_attestations_and_regen);
    tcase_add_test(tc, test_full_table_drops_oldest);
    tcase_add_test(tc, test_concurrent_writers);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
