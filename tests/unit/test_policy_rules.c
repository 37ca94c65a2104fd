/* SPDX-License-Identifier: MIT */
/* policy: each rule allowed and denied, with its exact message; the clock is an input. */
#include "policy/policy.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-11-23T16:40:00Z */
#define T0 ((time_t)1795452000)

static struct pol_config cfg;
static struct pol_state st;
static struct pol_decision d;
static const uint8_t recovery_cert[32] = {0xaa, 0xbb, 0xcc, 1, 2, 3};
static const uint8_t other_cert[32] = {0x11, 0x22};

static void config(const char *yaml)
{
    struct itl_error err;
    ck_assert_msg(pol_config_parse(yaml, strlen(yaml), "test.yaml", &cfg, &err) == 0, "%s",
                  err.msg);
    memset(&st, 0, sizeof st);
}

static void attest(const uint8_t cert[32])
{
    struct pol_attestation *a = &st.attestations[st.n_attestations++];
    memset(a, 0, sizeof *a);
    a->key = POL_KEY_RECOVERY;
    memcpy(a->cert_sha256, cert, 32);
    snprintf(a->kind, sizeof a->kind, "token");
    snprintf(a->identity, sizeof a->identity, "label=backup;serial=1");
    a->time = T0 - 86400;
}

/* A valid request: TFTP key signs a config file now. */
static struct pol_sign_request request(enum pol_op op, enum pol_key_role key,
                                       enum pol_file_kind file)
{
    struct pol_sign_request r = {
        .op = op,
        .key = key,
        .file = file,
        .file_bytes = 4000,
        .signer_is_sast = 1,
        .signer_not_before = T0 - 86400,
        .signer_not_after = T0 + 365 * 86400,
        .signer_cert_sha256 = key == POL_KEY_RECOVERY ? recovery_cert : other_cert,
        .now = T0,
    };
    return r;
}

#define ck_allowed(call)                                                                           \
    do {                                                                                           \
        ck_assert_msg((call) == 0, "denied: %s: %s", d.rule, d.message);                           \
        ck_assert_int_eq(d.allow, 1);                                                              \
        ck_assert_str_eq(d.rule, "ok");                                                            \
    } while (0)

#define ck_denied(call, rule_, message_)                                                           \
    do {                                                                                           \
        ck_assert_int_eq((call), -1);                                                              \
        ck_assert_int_eq(d.allow, 0);                                                              \
        ck_assert_str_eq(d.rule, rule_);                                                           \
        ck_assert_str_eq(d.message, message_);                                                     \
    } while (0)

/* ---- 1. publisher-only ---- */

START_TEST(test_publisher_only)
{
    struct pol_sign_request r;

    config("node: { name: cucm-sub1, role: subscriber }\npolicy: { backup: off }\n");
    r = request(POL_OP_RESET, POL_KEY_RECOVERY, POL_FILE_ITL);
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "publisher-only",
              "This is not a Publisher Node: the ITL Recovery key signs only on the publisher "
              "(node cucm-sub1 is a subscriber)");
    r = request(POL_OP_SIGN, POL_KEY_RECOVERY, POL_FILE_ITL);
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "publisher-only",
              "This is not a Publisher Node: the ITL Recovery key signs only on the publisher "
              "(node cucm-sub1 is a subscriber)");
    r = request(POL_OP_BUILD, POL_KEY_RECOVERY, POL_FILE_ITL);
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "publisher-only");
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_RECOVERY, recovery_cert, T0, &d), "publisher-only",
              "This is not a Publisher Node: the ITL Recovery key signs only on the publisher "
              "(node cucm-sub1 is a subscriber)");
    /* the TFTP key works on a subscriber */
    r = request(POL_OP_SIGN, POL_KEY_TFTP, POL_FILE_CONFIG);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));

    config("node: { name: cucm-pub, role: publisher }\npolicy: { backup: off }\n");
    r = request(POL_OP_RESET, POL_KEY_RECOVERY, POL_FILE_ITL);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    ck_assert_int_eq(d.warn, 0);
}
END_TEST

/* ---- 3. backup attestation ---- */

START_TEST(test_backup_require)
{
    struct pol_sign_request r;

    config("policy: { backup: require }\n");
    r = request(POL_OP_RESET, POL_KEY_RECOVERY, POL_FILE_ITL);
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "backup",
              "The ITL Recovery key (ITLRecovery, certificate sha256:aabbcc0102030000...) has "
              "not been backed up and policy.backup is 'require': attest its backup first "
              "(itl-sign key attest-backup --key recovery)");
    attest(other_cert); /* a backup of some other certificate does not count */
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "backup");
    ck_assert_int_eq(pol_check_sign(&cfg, NULL, &r, &d), -1); /* no state: fail closed */
    attest(recovery_cert);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    ck_assert_int_eq(d.warn, 0);
    /* the TFTP key is not subject to the recovery backup rule */
    memset(&st, 0, sizeof st);
    r = request(POL_OP_SIGN, POL_KEY_TFTP, POL_FILE_CONFIG);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
}
END_TEST

START_TEST(test_backup_warn_and_off)
{
    struct pol_sign_request r;

    config("policy: { backup: warn }\n");
    r = request(POL_OP_RESET, POL_KEY_RECOVERY, POL_FILE_ITL);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    ck_assert_int_eq(d.warn, 1);
    ck_assert_str_eq(d.warning, POL_BACKUP_WARNING);
    ck_assert_ptr_nonnull(strstr(POL_BACKUP_WARNING, "This cluster has an ITLRecovery "
                                                     "certificate that has not been backed up."));
    attest(recovery_cert);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    ck_assert_int_eq(d.warn, 0);
    ck_assert_str_eq(d.warning, "");

    config("policy: { backup: off }\n");
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    ck_assert_int_eq(d.warn, 0);
}
END_TEST

START_TEST(test_backup_warning_daily)
{
    config("policy: { backup: warn }\n");
    ck_assert_int_eq(pol_backup_warning_due(&cfg, &st, recovery_cert, T0), 1);
    st.last_backup_warning = T0;
    ck_assert_int_eq(pol_backup_warning_due(&cfg, &st, recovery_cert, T0 + 3600), 0);
    ck_assert_int_eq(pol_backup_warning_due(&cfg, &st, recovery_cert, T0 + 86399), 0);
    ck_assert_int_eq(pol_backup_warning_due(&cfg, &st, recovery_cert, T0 + 86400), 1);
    attest(recovery_cert);
    ck_assert_int_eq(pol_backup_warning_due(&cfg, &st, recovery_cert, T0 + 86400), 0);
    config("policy: { backup: off }\n");
    ck_assert_int_eq(pol_backup_warning_due(&cfg, &st, recovery_cert, T0), 0);
    config("policy: { backup: require }\n");
    ck_assert_int_eq(pol_backup_warning_due(&cfg, &st, recovery_cert, T0), 1);
}
END_TEST

/* ---- 4. key roles, SAST signer, size, validity ---- */

START_TEST(test_key_roles)
{
    struct pol_sign_request r;

    config("policy: { backup: off }\n");
    r = request(POL_OP_SIGN, POL_KEY_RECOVERY, POL_FILE_CONFIG);
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "key-role",
              "the recovery key (ITLRecovery) may not sign config files "
              "(policy.recovery-signs: [itl])");
    r = request(POL_OP_SIGN, POL_KEY_TFTP, POL_FILE_CONFIG);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    r = request(POL_OP_BUILD, POL_KEY_TFTP, POL_FILE_ITL);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));

    config("policy: { backup: off, tftp-signs: [config], recovery-signs: [itl, config] }\n");
    r = request(POL_OP_BUILD, POL_KEY_TFTP, POL_FILE_ITL);
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "key-role",
              "the tftp key (CallManager) may not sign ITL/CTL files (policy.tftp-signs: "
              "[config])");
    r = request(POL_OP_SIGN, POL_KEY_RECOVERY, POL_FILE_CONFIG);
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
}
END_TEST

START_TEST(test_sast_signer_and_size)
{
    struct pol_sign_request r;

    config("policy: { backup: off }\n");
    r = request(POL_OP_RESET, POL_KEY_RECOVERY, POL_FILE_ITL);
    r.signer_is_sast = 0;
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "sast-signer",
              "the signer certificate (ITLRecovery) is not a SAST record of this ITL/CTL: phones "
              "would reject a trust list signed by a certificate it does not list as SAST");
    /* configs have no SAST records */
    r = request(POL_OP_SIGN, POL_KEY_TFTP, POL_FILE_CONFIG);
    r.signer_is_sast = 0;
    r.file_bytes = 550001;
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));

    r = request(POL_OP_BUILD, POL_KEY_TFTP, POL_FILE_ITL);
    r.file_bytes = 65535;
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    r.file_bytes = 65536;
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "max-itl-bytes",
              "the ITL/CTL would be 65536 bytes, more than policy.max-itl-bytes (65535): phones "
              "fail to load trust lists that large");
}
END_TEST

START_TEST(test_validity)
{
    struct pol_sign_request r;

    config("policy: { backup: off }\n");
    r = request(POL_OP_SIGN, POL_KEY_TFTP, POL_FILE_CONFIG);
    r.signer_not_after = T0; /* the last valid second */
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    r.signer_not_after = T0 - 1;
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "expired",
              "the signer certificate (CallManager) expired at 2026-11-23T16:39:59Z "
              "(policy.expired: refuse)");
    r = request(POL_OP_SIGN, POL_KEY_TFTP, POL_FILE_CONFIG);
    r.signer_not_before = T0 + 60;
    ck_denied(pol_check_sign(&cfg, &st, &r, &d), "expired",
              "the signer certificate (CallManager) is not valid before 2026-11-23T16:41:00Z "
              "(policy.expired: refuse)");

    config("policy: { backup: warn, expired: warn }\n");
    r = request(POL_OP_RESET, POL_KEY_RECOVERY, POL_FILE_ITL);
    r.signer_not_after = T0 - 1;
    ck_allowed(pol_check_sign(&cfg, &st, &r, &d));
    ck_assert_int_eq(d.warn, 1);
    /* warnings accumulate, one per line */
    char want[ITL_ERROR_LEN];
    snprintf(want, sizeof want, "%s\n%s", POL_BACKUP_WARNING,
             "the signer certificate (ITLRecovery) expired at 2026-11-23T16:39:59Z");
    ck_assert_str_eq(d.warning, want);
}
END_TEST

START_TEST(test_first_denial_wins)
{
    struct pol_sign_request r;

    config("node: { name: s, role: subscriber }\npolicy: { backup: require }\n");
    r = request(POL_OP_SIGN, POL_KEY_RECOVERY, POL_FILE_CONFIG);
    r.signer_is_sast = 0;
    r.signer_not_after = 0;
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "publisher-only");
    config("policy: { backup: require }\n");
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "backup");
    attest(recovery_cert);
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "key-role");
    r.file = POL_FILE_ITL;
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "sast-signer");
    r.signer_is_sast = 1;
    r.file_bytes = 70000;
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "max-itl-bytes");
    r.file_bytes = 100;
    ck_assert_int_eq(pol_check_sign(&cfg, &st, &r, &d), -1);
    ck_assert_str_eq(d.rule, "expired");
}
END_TEST

/* ---- 2. regeneration ---- */

static void last_regen(enum pol_key_role key, const char *label, time_t when)
{
    st.has_last_regen = 1;
    st.last_regen.key = key;
    snprintf(st.last_regen.label, sizeof st.last_regen.label, "%s", label);
    st.last_regen.time = when;
}

START_TEST(test_regen_hold)
{
    config("policy: { backup: off }\n");
    ck_allowed(
        pol_check_regen(&cfg, &st, POL_KEY_RECOVERY, recovery_cert, T0, &d)); /* nothing recorded */
    last_regen(POL_KEY_TFTP, "CallManager", T0);
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_RECOVERY, recovery_cert, T0 + 10, &d),
              "regen-hold",
              "CallManager certificate was modified in the last 5 minutes (at "
              "2026-11-23T16:40:00Z). Please re-try regenerating ITLRecovery at a later time "
              "(after 2026-11-23T16:45:00Z).");
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0 + 299, &d), -1);
    ck_assert_str_eq(d.rule, "regen-hold");
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0 + 300, &d));
    /* a clock that went backwards stays held */
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0 - 3600, &d), -1);

    config("policy: { backup: off, regen-hold: 90s }\n");
    last_regen(POL_KEY_RECOVERY, "ITLRecovery", T0);
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0 + 89, &d), "regen-hold",
              "ITLRecovery certificate was modified in the last 90 seconds (at "
              "2026-11-23T16:40:00Z). Please re-try regenerating CallManager at a later time "
              "(after 2026-11-23T16:41:30Z).");
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0 + 90, &d));

    config("policy: { backup: off, regen-hold: 2h }\n");
    last_regen(POL_KEY_RECOVERY, "ITLRecovery", T0);
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0 + 7199, &d), -1);
    ck_assert_ptr_nonnull(strstr(d.message, "in the last 2 hours"));

    config("policy: { backup: off, regen-hold: 0 }\n");
    last_regen(POL_KEY_RECOVERY, "ITLRecovery", T0);
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d));
}
END_TEST

START_TEST(test_regen_tftp_needs_recovery_backup)
{
    const char *denial = "The ITL Recovery key (ITLRecovery) has not been backed up: replacing "
                         "the CallManager key now could leave phones that only a manual ITL "
                         "delete recovers. Attest the recovery key's backup first (itl-sign key "
                         "attest-backup --key recovery)";

    config("policy: { backup: warn }\n");
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d), "backup", denial);
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_TFTP, NULL, T0, &d), "backup",
              "There is no ITL Recovery key (ITLRecovery) to rescue phones with: create it and "
              "attest its backup before replacing the CallManager key");
    /* the recovery key itself may be replaced (that is how a lost one is fixed) */
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_RECOVERY, recovery_cert, T0, &d));
    attest(other_cert);
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d), -1);
    attest(recovery_cert);
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d));

    config("policy: { backup: require }\n");
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d), -1);
    config("policy: { backup: off }\n");
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d));
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, NULL, T0, &d));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_rules");
    TCase *tc = tcase_create("rules");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_publisher_only);
    tcase_add_test(tc, test_backup_require);
    tcase_add_test(tc, test_backup_warn_and_off);
    tcase_add_test(tc, test_backup_warning_daily);
    tcase_add_test(tc, test_key_roles);
    tcase_add_test(tc, test_sast_signer_and_size);
    tcase_add_test(tc, test_validity);
    tcase_add_test(tc, test_first_denial_wins);
    tcase_add_test(tc, test_regen_hold);
    tcase_add_test(tc, test_regen_tftp_needs_recovery_backup);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
