/* SPDX-License-Identifier: MIT */
/* policy: each rule allowed and denied, with its exact message; the clock is an input. */
#include "policy/policy.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

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
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_RECOVERY, T0, &d), "publisher-only",
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
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_RECOVERY, T0, &d)); /* nothing recorded */
    last_regen(POL_KEY_TFTP, "CallManager", T0);
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_RECOVERY, T0 + 10, &d), "regen-hold",
              "CallManager certificate was modified in the last 5 minutes (at "
              "2026-11-23T16:40:00Z). Please re-try regenerating ITLRecovery at a later time "
              "(after 2026-11-23T16:45:00Z).");
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0 + 299, &d), -1);
    ck_assert_str_eq(d.rule, "regen-hold");
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0 + 300, &d));
    /* a clock that went backwards stays held */
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0 - 3600, &d), -1);

    config("policy: { backup: off, regen-hold: 90s }\n");
    last_regen(POL_KEY_RECOVERY, "ITLRecovery", T0);
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0 + 89, &d), "regen-hold",
              "ITLRecovery certificate was modified in the last 90 seconds (at "
              "2026-11-23T16:40:00Z). Please re-try regenerating CallManager at a later time "
              "(after 2026-11-23T16:41:30Z).");
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0 + 90, &d));

    config("policy: { backup: off, regen-hold: 2h }\n");
    last_regen(POL_KEY_RECOVERY, "ITLRecovery", T0);
    ck_assert_int_eq(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0 + 7199, &d), -1);
    ck_assert_ptr_nonnull(strstr(d.message, "in the last 2 hours"));

    config("policy: { backup: off, regen-hold: 0 }\n");
    last_regen(POL_KEY_RECOVERY, "ITLRecovery", T0);
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0, &d));
}
END_TEST

START_TEST(test_regen_tftp_needs_recovery_backup)
{
    const char *denial = "The ITL Recovery key (ITLRecovery) has not been backed up: replacing "
                         "the CallManager key now could leave phones that only a manual ITL "
                         "delete recovers. Attest the recovery key's backup first (itl-sign key "
                         "attest-backup --key recovery)";

    config("policy: { backup: warn }\n");
    ck_denied(pol_check_regen2(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d), "backup", denial);
    ck_denied(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0, &d), "backup", denial);
    ck_denied(pol_check_regen2(&cfg, &st, POL_KEY_TFTP, NULL, T0, &d), "backup",
              "There is no ITL Recovery key (ITLRecovery) to rescue phones with: create it and "
              "attest its backup before replacing the CallManager key");
    /* the recovery key itself may be replaced (that is how a lost one is fixed) */
    ck_allowed(pol_check_regen2(&cfg, &st, POL_KEY_RECOVERY, recovery_cert, T0, &d));
    attest(other_cert);
    ck_assert_int_eq(pol_check_regen2(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d), -1);
    attest(recovery_cert);
    ck_allowed(pol_check_regen2(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d));
    ck_allowed(pol_check_regen(&cfg, &st, POL_KEY_TFTP, T0, &d));

    config("policy: { backup: require }\n");
    ck_assert_int_eq(pol_check_regen2(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d), -1);
    config("policy: { backup: off }\n");
    ck_allowed(pol_check_regen2(&cfg, &st, POL_KEY_TFTP, recovery_cert, T0, &d));
    ck_allowed(pol_check_regen2(&cfg, &st, POL_KEY_TFTP, NULL, T0, &d));
}
END_TEST

/* ---- 5. who may ask ---- */

/*
 * A private mount namespace with our own /etc/passwd and /etc/group, so the tests know exactly
 * which users and groups exist (tests run as root). Check runs each test in its own process,
 * except under valgrind (CK_FORK=no), where the namespace of the first test stays in force and
 * mounting again over the bind mount of a removed file would fail.
 */
static void fake_users(void)
{
    static int done;
    char passwd[600], group[600];
    const char *dir;

    if (done++)
        return;
    dir = testlib_tmpdir("polnss");
    const char *pw = "root:x:0:0:root:/root:/bin/sh\n"
                     "tftp:x:1001:1001::/:/bin/false\n"
                     "alice:x:1002:1002::/:/bin/false\n"
                     "bob:x:1003:1003::/:/bin/false\n"
                     "carol:x:1004:2000::/:/bin/false\n"
                     "erin:x:1005:1005::/:/bin/false\n";
    const char *gr = "root:x:0:\n"
                     "tftp:x:1001:\n"
                     "alice:x:1002:\n"
                     "bob:x:1003:\n"
                     "erin:x:1005:\n"
                     "itl-admin:x:2000:alice\n"
                     "auditors:x:3000:\n";

    snprintf(passwd, sizeof passwd, "%s/passwd", dir);
    snprintf(group, sizeof group, "%s/group", dir);
    testlib_write(passwd, pw, strlen(pw));
    testlib_write(group, gr, strlen(gr));
    ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s (the tests run as root)",
                  strerror(errno));
    ck_assert_msg(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0, "%s",
                  strerror(errno));
    ck_assert_msg(mount(passwd, "/etc/passwd", "none", MS_BIND, NULL) == 0, "%s", strerror(errno));
    ck_assert_msg(mount(group, "/etc/group", "none", MS_BIND, NULL) == 0, "%s", strerror(errno));
    /* the mounts keep the files; the directory can go now */
    testlib_sh("rm -rf '%s'", dir);
}

static struct pol_peer peer(uid_t uid, gid_t gid)
{
    struct pol_peer p = {.uid = uid, .gid = gid, .pid = 4242};
    return p;
}

START_TEST(test_access)
{
    struct pol_peer p;

    fake_users();
    config("access:\n"
           "  - { group: itl-admin, allow: [reset, build, sign, encrypt, status, key] }\n"
           "  - { user: tftp,       allow: [sign, encrypt] }\n"
           "  - { user: \"1005\",     allow: [status] }\n"
           "  - { group: \"3000\",    allow: [status] }\n"
           "  - { user: ghost,      allow: [reset] }\n");

    /* user rule by name */
    p = peer(1001, 1001);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_SIGN, &d));
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_ENCRYPT, &d));
    ck_denied(pol_check_access(&cfg, &p, POL_OP_RESET, &d), "access",
              "uid 1001 (tftp) may not 'reset': allowed operations: sign, encrypt");
    /* user rule by numeric uid */
    p = peer(1005, 1005);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_STATUS, &d));
    ck_denied(pol_check_access(&cfg, &p, POL_OP_SIGN, &d), "access",
              "uid 1005 (erin) may not 'sign': allowed operations: status");
    /* group by name, as a supplementary group of the user (alice's primary group is alice) */
    p = peer(1002, 1002);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_RESET, &d));
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_KEY, &d));
    /* group by name, as the user's primary group in passwd */
    p = peer(1004, 1004);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_BUILD, &d));
    /* group by the peer's own gid (SO_PEERCRED), even for a user not in it */
    p = peer(1003, 2000);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_RESET, &d));
    /* group by numeric gid */
    p = peer(1003, 3000);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_STATUS, &d));
    ck_denied(pol_check_access(&cfg, &p, POL_OP_SIGN, &d), "access",
              "uid 1003 (bob) may not 'sign': allowed operations: status");
    /* nothing matches bob with his own group */
    p = peer(1003, 1003);
    ck_denied(pol_check_access(&cfg, &p, POL_OP_STATUS, &d), "access",
              "no access rule matches uid 1003 (bob), gid 1003");
    /* root is not special */
    p = peer(0, 0);
    ck_denied(pol_check_access(&cfg, &p, POL_OP_STATUS, &d), "access",
              "no access rule matches uid 0 (root), gid 0");
    /* a uid with no passwd entry: only numeric rules can match */
    p = peer(4242, 4242);
    ck_denied(pol_check_access(&cfg, &p, POL_OP_SIGN, &d), "access",
              "no access rule matches uid 4242, gid 4242");
    p = peer(4242, 3000);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_STATUS, &d));

    /* rules add up: tftp in auditors gets sign, encrypt (user) and status (group) */
    p = peer(1001, 3000);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_STATUS, &d));
    ck_denied(pol_check_access(&cfg, &p, POL_OP_KEY, &d), "access",
              "uid 1001 (tftp) may not 'key': allowed operations: sign, encrypt, status");

    /* root listed explicitly */
    config("access:\n  - { user: root, allow: [status] }\n");
    p = peer(0, 0);
    ck_allowed(pol_check_access(&cfg, &p, POL_OP_STATUS, &d));
    /* no rules at all: nobody */
    config("");
    ck_denied(pol_check_access(&cfg, &p, POL_OP_STATUS, &d), "access",
              "no access rule matches uid 0 (root), gid 0");
}
END_TEST

/* The service resolves the rules once per connection: the same answers as a lookup per request,
 * and the decision reads the resolved grant, not NSS. */
START_TEST(test_access_resolved_once)
{
    static const uid_t uids[] = {1001, 1002, 1003, 1004, 1005, 0, 4242};
    struct pol_access a;
    struct pol_decision fresh;
    struct pol_peer p;

    fake_users();
    config("access:\n"
           "  - { group: itl-admin, allow: [reset, build, sign, encrypt, status, key] }\n"
           "  - { user: tftp,       allow: [sign, encrypt] }\n"
           "  - { group: \"3000\",    allow: [status] }\n");
    for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++) {
        for (gid_t gid = 1000; gid <= 3000; gid += 1000) {
            p = peer(uids[i], gid);
            pol_access_resolve(&cfg, &p, &a);
            for (int op = 0; op < POL_OP_COUNT; p.access = NULL, op++) {
                int want = pol_check_access(&cfg, &p, (enum pol_op)op, &fresh);
                p.access = &a;
                ck_assert_int_eq(pol_check_access(&cfg, &p, (enum pol_op)op, &d), want);
                ck_assert_str_eq(d.message, fresh.message);
            }
        }
    }
    p = peer(1002, 1002);
    pol_access_resolve(&cfg, &p, &a);
    ck_assert_str_eq(a.who, "uid 1002 (alice)");
    a.allowed = 1u << POL_OP_STATUS;
    p.access = &a;
    ck_denied(pol_check_access(&cfg, &p, POL_OP_SIGN, &d), "access",
              "uid 1002 (alice) may not 'sign': allowed operations: status");
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
    tcase_add_test(tc, test_access);
    tcase_add_test(tc, test_access_resolved_once);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
