/* SPDX-License-Identifier: MIT */
/* policy: who may ask for which operation (access rules), against a known set of users. */
#include "policy/policy.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

static struct pol_config cfg;
static struct pol_decision d;

static void config(const char *yaml)
{
    struct itl_error err;
    ck_assert_msg(pol_config_parse(yaml, strlen(yaml), "test.yaml", &cfg, &err) == 0, "%s",
                  err.msg);
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
    Suite *s = suite_create("policy_access");
    TCase *tc = tcase_create("access");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_access);
    tcase_add_test(tc, test_access_resolved_once);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
