/* SPDX-License-Identifier: MIT */
/* signer engine, when the token (tests/faultp11 in front of SoftHSM2) or the audit log fails
 * under it: the token's error class becomes the result's status, the audit record names the key
 * that could not sign, and nothing is released, nor without its audit record. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/unit/engine_fixture.h"

static char module[PATH_MAX], schedule[700];

/* The fault-injecting module, with this schedule (a test fails when it was not built). */
static int use_faults(const char *rules)
{
    char tmp[800];

    char rel[600];

    /* p11-kit loads a module by absolute path; `make all` builds this one. */
    snprintf(rel, sizeof rel, "%s/tests/libfaultp11.so", testlib_build());
    ck_assert_msg(realpath(rel, module) != NULL, "%s: %s (make all builds it)", rel,
                  strerror(errno));
    snprintf(schedule, sizeof schedule, "%s/faults", F.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", schedule);
    testlib_write(tmp, rules, strlen(rules));
    ck_assert_int_eq(rename(tmp, schedule), 0);
    setenv("FAULTP11_CONTROL", schedule, 1);
    setenv("FAULTP11_MODULE", ef_w.tt.module, 1);
    F.module = module;
    return 1;
}

START_TEST(failed_signature_releases_nothing)
{
    struct sgn_request req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), "a.cnf.xml");

    if (!use_faults("C_Sign always rv CKR_DEVICE_ERROR\n"))
        return;
    ef_start(0, 0);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_TOKEN, NULL, "sign", EF_TFTP);
    ef_assert_message("a.cnf.xml: ");
}
END_TEST

START_TEST(token_gone_is_not_present)
{
    struct sgn_request req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), "a.cnf.xml");

    if (!use_faults("# none yet\n"))
        return;
    ef_start(0, 0);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "sign: %s", F.r.message);
    ck_assert_int_eq(use_faults("absent\n"), 1);
    ef_run(&req);
    ef_assert_refused(2, SGN_E_NO_TOKEN, NULL, "sign", EF_TFTP);
    ck_assert_int_eq(use_faults("# back\n"), 1);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "sign after the token is back: %s", F.r.message);
    ef_assert_audit(3, "sign", "ok", NULL, EF_TFTP);
}
END_TEST

/* ---- the audit record is the last word ---- */

START_TEST(unwritable_audit_releases_nothing)
{
    struct sgn_request req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), "a.cnf.xml");
    struct rlimit old, small;
    size_t len;
    uint8_t *b;

    ef_start(0, 0);
    b = testlib_read(F.audit_path, &len);
    free(b);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = len; /* no room for one more line */
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    ef_run(&req);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    ck_assert_msg(F.r.status == SGN_E_AUDIT, "status %s: %s", sgn_status_name(F.r.status),
                  F.r.message);
    ef_assert_message("nothing was released");
    ck_assert_ptr_null(F.r.out);
    ck_assert_uint_eq(F.r.out_len, 0);
    ck_assert_uint_eq(ef_audit_count(), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signer-engine-token");
    TCase *tc = tcase_create("token");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, ef_setup, ef_teardown);
    tcase_add_test(tc, failed_signature_releases_nothing);
    tcase_add_test(tc, token_gone_is_not_present);
    tcase_add_test(tc, unwritable_audit_releases_nothing);
    suite_add_tcase(s, tc);
    return ef_run_suite(s);
}
