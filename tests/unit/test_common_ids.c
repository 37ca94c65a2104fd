/* SPDX-License-Identifier: MIT */
/* common: users and groups by name and by number, unknown ones, names of ids, membership. */
#include "common/common.h"

#include <check.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_SUCH_USER "itl-no-such-user-x"
#define UNUSED_ID 3999999999u /* no entry on any test host */

static struct itl_error err;

START_TEST(test_user_by_name_and_number)
{
    uid_t uid = 77;
    gid_t gid = 77;

    ck_assert_msg(ids_user("root", &uid, &gid, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(uid, 0);
    ck_assert_uint_eq(gid, 0);
    uid = gid = 77;
    ck_assert_msg(ids_user("0", &uid, &gid, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(uid, 0);
    ck_assert_uint_eq(gid, 0);
    /* A user other than root, with the primary group its passwd entry gives. */
    struct passwd *pw = getpwnam("daemon");
    if (pw) {
        char number[32];
        ck_assert_int_eq(ids_user("daemon", &uid, &gid, &err), 0);
        ck_assert_uint_eq(uid, pw->pw_uid);
        ck_assert_uint_eq(gid, pw->pw_gid);
        snprintf(number, sizeof number, "%u", (unsigned)pw->pw_uid);
        ck_assert_int_eq(ids_user(number, &uid, NULL, &err), 0);
        ck_assert_uint_eq(uid, pw->pw_uid);
    }
}
END_TEST

START_TEST(test_unknown_user)
{
    uid_t uid = 77;
    gid_t gid = 77;
    char number[32];

    ck_assert_int_eq(ids_user(NO_SUCH_USER, &uid, &gid, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, NO_SUCH_USER));
    ck_assert_uint_eq(gid, 77);
    /* A number with no passwd entry is not a user: its primary group is unknown. */
    snprintf(number, sizeof number, "%u", UNUSED_ID);
    ck_assert_int_eq(ids_user(number, &uid, &gid, &err), -1);
    ck_assert_int_eq(ids_user("", &uid, &gid, &err), -1);
    ck_assert_int_eq(ids_user("-1", &uid, &gid, &err), -1);
    ck_assert_int_eq(ids_user("99999999999999999999999", &uid, &gid, &err), -1);
    ck_assert_int_eq(ids_user(NO_SUCH_USER, &uid, &gid, NULL), -1); /* err may be NULL */
}
END_TEST

START_TEST(test_group)
{
    gid_t gid = 77;
    char number[32];

    ck_assert_msg(ids_group("root", &gid, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(gid, 0);
    gid = 77;
    ck_assert_int_eq(ids_group("0", &gid, &err), 0);
    ck_assert_uint_eq(gid, 0);
    /* A group number needs no entry. */
    snprintf(number, sizeof number, "%u", UNUSED_ID);
    ck_assert_int_eq(ids_group(number, &gid, &err), 0);
    ck_assert_uint_eq(gid, UNUSED_ID);
    ck_assert_int_eq(ids_group("itl-no-such-group-x", &gid, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "itl-no-such-group-x"));
    ck_assert_int_eq(ids_group("4294967295", &gid, &err), -1); /* (gid_t)-1 is no group */
    ck_assert_int_eq(ids_group("12a", &gid, &err), -1);
}
END_TEST

START_TEST(test_names_of_ids)
{
    char out[64];

    ck_assert_str_eq(ids_user_name(0, out, sizeof out), "root");
    ck_assert_str_eq(ids_group_name(0, out, sizeof out), "root");
    ck_assert_str_eq(ids_user_name(UNUSED_ID, out, sizeof out), "3999999999");
    ck_assert_str_eq(ids_group_name(UNUSED_ID, out, sizeof out), "3999999999");
    ck_assert_str_eq(ids_user_name(0, out, 3), "ro"); /* cut to fit */
}
END_TEST

START_TEST(test_membership)
{
    ck_assert_int_eq(ids_user_in_group("root", 0, 0), 1);
    /* The primary group counts even for a user NSS does not know. */
    ck_assert_int_eq(ids_user_in_group(NO_SUCH_USER, 1234, 1234), 1);
    ck_assert_int_eq(ids_user_in_group("root", 0, UNUSED_ID), 0);
    ck_assert_int_eq(ids_user_in_group(NO_SUCH_USER, 1234, UNUSED_ID), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_ids");
    TCase *tc = tcase_create("ids");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_user_by_name_and_number);
    tcase_add_test(tc, test_unknown_user);
    tcase_add_test(tc, test_group);
    tcase_add_test(tc, test_names_of_ids);
    tcase_add_test(tc, test_membership);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
