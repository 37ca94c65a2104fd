/* SPDX-License-Identifier: MIT */
/* signer engine, keys.recovery.unlock (issue 16, "The recovery key offline"): with manual the
 * recovery key is refused until an unlock, the TFTP key is not; op unlock's refusals (unlock:
 * always, another key, longer than unlock-max, a recovery token that is not there, a key
 * without a PIN of its own); every one audited; status names the state. The unlocks that work
 * are in tests/integration/test_unlock.sh (two SoftHSM2 tokens, the service's timer). */
#include "tests/unit/engine_fixture.h"

static void manual(const char *recovery_uri)
{
    F.cfg.recovery_unlock.mode = POL_UNLOCK_MANUAL;
    F.cfg.recovery_unlock.max_s = 600;
    snprintf(F.cfg.recovery_unlock.token.uri, sizeof F.cfg.recovery_unlock.token.uri, "%s",
             recovery_uri);
}

static struct sgn_request unlock_request(unsigned seconds)
{
    static uint8_t pin[4];

    memcpy(pin, "1234", 4); /* the engine wipes what it was given */
    return (struct sgn_request){
        .op = POL_OP_UNLOCK, .key = "recovery", .unlock_s = seconds, .pin = pin, .pin_len = 4};
}

START_TEST(locked_recovery_key_is_refused)
{
    size_t len;
    uint8_t *itl;
    struct sgn_request req;

    manual("pkcs11:token=no-such-recovery-token");
    ef_start(0, 1);
    itl = ef_make_itl(&len); /* build signs with the TFTP key: unaffected */
    req = (struct sgn_request){.op = POL_OP_RESET, .data = itl, .len = len, .filename = "ITL.tlv"};
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "locked", "reset", NULL);
    ef_assert_message("the recovery key is locked: run itl-sign unlock --key recovery");
    req = ef_build_request();
    req.key = "recovery";
    ef_run(&req);
    ef_assert_refused(3, SGN_E_DENIED, "locked", "build", NULL);
    req = (struct sgn_request){
        .op = POL_OP_KEY, .key_op = SGN_KEY_CSR, .key = EF_RECOVERY, .subject = "CN=x"};
    ef_run(&req);
    ef_assert_refused(4, SGN_E_USAGE, NULL, "key csr", EF_RECOVERY);
    ef_assert_message("not served while keys.recovery.unlock is manual");
    free(itl);
}
END_TEST

START_TEST(unlock_refusals_are_audited)
{
    struct sgn_request req = unlock_request(0);
    char *json = NULL;

    manual("pkcs11:token=no-such-recovery-token");
    ef_start(0, 1);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_E_NO_TOKEN || F.r.status == SGN_E_TOKEN, "%s: %s",
                  sgn_status_name(F.r.status), F.r.message);
    ef_assert_message("no-such-recovery-token");
    ef_assert_audit(1, "unlock", "error", NULL, EF_RECOVERY);
    ck_assert_mem_ne(req.pin, "1234", 4); /* wiped once used */
    req = unlock_request(601);
    ef_run(&req);
    ef_assert_refused(2, SGN_E_USAGE, NULL, "unlock", EF_RECOVERY);
    ef_assert_message("longer than keys.recovery.unlock-max (600 s)");
    req = unlock_request(0);
    req.key = "tftp";
    ef_run(&req);
    ef_assert_refused(3, SGN_E_USAGE, NULL, "unlock", EF_RECOVERY);
    ef_assert_message("for the recovery key");
    req = (struct sgn_request){.op = POL_OP_UNLOCK, .lock = 1};
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "lock: %s", F.r.message);
    ef_assert_message("already locked");
    ef_assert_audit(4, "lock", "ok", NULL, EF_RECOVERY);
    ck_assert_int_eq(sgn_status_json(F.e, NULL, &json), 0);
    ck_assert_msg(strstr(json, "\"recovery_unlock\":{\"mode\":\"manual\",\"state\":\"locked\""),
                  "%s", json);
    ck_assert_msg(strstr(json, "\"recovery\":{\"label\":\"ITLRecovery\",\"found\":false,"
                               "\"locked\":true}"),
                  "%s", json);
    free(json);
}
END_TEST

/* (a) without keys.recovery.token: SoftHSM2's keys have no CKA_ALWAYS_AUTHENTICATE. */
START_TEST(key_pin_needs_an_always_authenticate_key)
{
    struct sgn_request req = unlock_request(0);

    manual("");
    ef_start(0, 1);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_USAGE, NULL, "unlock", EF_RECOVERY);
    ef_assert_message("needs a recovery key with CKA_ALWAYS_AUTHENTICATE");
}
END_TEST

START_TEST(unlock_always_has_nothing_to_unlock)
{
    struct sgn_request req = unlock_request(0);
    char *json = NULL;

    ef_start(0, 1);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_USAGE, NULL, "unlock", EF_RECOVERY);
    ef_assert_message("keys.recovery.unlock is always");
    ck_assert_int_eq(sgn_status_json(F.e, NULL, &json), 0);
    ck_assert_msg(strstr(json, "\"recovery_unlock\":{\"mode\":\"always\",\"state\":\"always\"}"),
                  "%s", json);
    free(json);
}
END_TEST

START_TEST(unlock_needs_the_unlock_right)
{
    struct sgn_request req = unlock_request(0);

    manual("pkcs11:token=no-such-recovery-token");
    ef_allow_only((1u << POL_OP_RESET) | (1u << POL_OP_STATUS));
    ef_start(1, 1);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_DENIED, "access", "unlock", NULL);
    req = (struct sgn_request){.op = POL_OP_UNLOCK, .lock = 1};
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "access", "lock", NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signer-engine-unlock");
    TCase *tc = tcase_create("unlock");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, ef_setup, ef_teardown);
    tcase_add_test(tc, locked_recovery_key_is_refused);
    tcase_add_test(tc, unlock_refusals_are_audited);
    tcase_add_test(tc, key_pin_needs_an_always_authenticate_key);
    tcase_add_test(tc, unlock_always_has_nothing_to_unlock);
    tcase_add_test(tc, unlock_needs_the_unlock_right);
    suite_add_tcase(s, tc);
    return ef_run_suite(s);
}
