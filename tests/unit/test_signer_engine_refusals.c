/* SPDX-License-Identifier: MIT */
/* signer engine, the requests it refuses: access rules, the output-kind rule, the key op,
 * unknown keys, malformed input, and the signing policy (publisher-only, backup, key roles,
 * SAST signer, size, expiry) as sgn_execute applies it. Every refusal releases nothing and is
 * one audit record naming its rule. */
#include "tests/unit/engine_fixture.h"

#define ALL_OPS ((1u << POL_OP_COUNT) - 1)

static const char phone_config[] = "SEP001122334455.cnf.xml";

static struct sgn_request config_request(void)
{
    return ef_sign_request(ef_config_xml, strlen(ef_config_xml), phone_config);
}

static struct sgn_request reset_request(const uint8_t *itl, size_t len)
{
    return (struct sgn_request){
        .op = POL_OP_RESET, .filename = "ITLFile.tlv", .data = itl, .len = len};
}

static void assert_ok(const char *what)
{
    ck_assert_msg(F.r.status == SGN_OK, "%s: %s", what, F.r.message);
    ck_assert_ptr_nonnull(F.r.out);
}

/* ---- access rules ---- */

START_TEST(sign_only_peer_gets_only_sign)
{
    static const enum pol_op others[] = {POL_OP_RESET, POL_OP_BUILD, POL_OP_ENCRYPT, POL_OP_STATUS,
                                         POL_OP_KEY};
    struct sgn_request req;
    size_t itl_len, n;
    uint8_t *itl;

    ef_start(1, 0);
    itl = ef_make_itl(&itl_len);
    ef_allow_only(1u << POL_OP_SIGN);
    for (n = 0; n < sizeof others / sizeof others[0]; n++) {
        switch (others[n]) {
        case POL_OP_RESET:
            req = reset_request(itl, itl_len);
            break;
        case POL_OP_BUILD:
            req = ef_build_request();
            break;
        default:
            req = config_request();
            req.op = others[n];
            req.phone_cert = ef_w.phone_der;
            req.phone_cert_len = ef_w.phone_len;
        }
        ef_run(&req);
        /* a key request is audited under its sub-op (config_request: 0, generate) */
        ef_assert_refused(n + 2, SGN_E_DENIED, "access",
                          others[n] == POL_OP_KEY ? "key generate" : pol_op_name(others[n]), NULL);
        ef_assert_message("uid 4242 (tester) may not '");
        ef_assert_message(pol_op_name(others[n]));
        ef_assert_message("allowed operations: sign");
    }
    req = config_request();
    ef_run(&req);
    assert_ok("sign by the sign-only peer");
    ef_assert_audit(n + 2, "sign", "ok", NULL, EF_TFTP);
    free(itl);
}
END_TEST

START_TEST(peer_without_rule_is_refused)
{
    struct sgn_request req = config_request();

    F.access.matched = 0;
    F.access.allowed = 0;
    ef_start(1, 0);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_DENIED, "access", "sign", NULL);
    ef_assert_message("no access rule matches uid 4242 (tester)");
}
END_TEST

START_TEST(access_rules_from_the_config)
{
    static const char yaml[] = "access:\n"
                               "  - { user: \"4242\", allow: [sign, status] }\n";
    struct sgn_request req = ef_build_request();
    struct pol_config cfg;
    struct itl_error err;

    pol_config_defaults(&cfg);
    if (pol_config_parse(yaml, strlen(yaml), "test.yaml", &cfg, &err) != 0)
        ck_abort_msg("config: %s", err.msg);
    F.cfg.n_access = cfg.n_access;
    memcpy(F.cfg.access, cfg.access, sizeof cfg.access);
    F.peer.access = NULL; /* the engine resolves the rules itself */
    ef_start(1, 0);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_DENIED, "access", "build", NULL);
    ef_assert_message("may not 'build'");
    req = config_request();
    ef_run(&req);
    assert_ok("sign allowed by the config");
    ef_assert_audit(2, "sign", "ok", NULL, EF_TFTP);
}
END_TEST

START_TEST(direct_mode_skips_access_rules)
{
    struct sgn_request req = config_request();

    F.access.matched = 0;
    ef_start(0, 0);
    ef_run(&req);
    assert_ok("sign in direct mode");
    ef_assert_audit(1, "sign", "ok", NULL, EF_TFTP);
}
END_TEST

/* ---- the output-kind rule ---- */

START_TEST(sign_refuses_an_itl)
{
    struct sgn_request req;
    struct itl_file f;
    struct itl_error err;
    size_t itl_len;
    uint8_t *itl;

    ef_start(0, 0);
    itl = ef_make_itl(&itl_len);
    req = ef_sign_request(itl, itl_len, "ITLFile.tlv");
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "output-kind", "sign", NULL);
    ef_assert_message("ITLFile.tlv is an ITL/CTL, ITL/CTL records");
    ef_assert_message("sign makes signed configs (.sgn) only");
    ef_assert_audit_input("ITLFile.tlv", itl, itl_len); /* what it tried to get signed */
    /* whatever the name says */
    req = ef_sign_request(itl, itl_len, "records.bin");
    req.out_filename = "records.bin.sgn";
    ef_run(&req);
    ef_assert_refused(3, SGN_E_DENIED, "output-kind", "sign", NULL);
    ef_assert_message("records.bin is an ITL/CTL");
    /* the records alone, without the header, are refused too */
    ck_assert_int_eq(itl_parse(itl, itl_len, ITL_KIND_TLV, &f, &err), 0);
    req = ef_sign_request(itl + f.records[0].offset, itl_len - f.records[0].offset, "x.xml");
    itl_file_free(&f);
    ef_run(&req);
    ef_assert_refused(4, SGN_E_DENIED, "output-kind", "sign", NULL);
    ef_assert_message("x.xml is an ITL/CTL, ITL/CTL records");
    free(itl);
}
END_TEST

START_TEST(sign_refuses_trust_list_names)
{
    static const struct {
        const char *filename, *out_filename;
    } names[] = {
        {"ITLFile.tlv", NULL},         {"CTLFile", NULL},           {"itlfile", NULL},
        {phone_config, "ITLFile.tlv"}, {phone_config, "x.tlv.sgn"}, {phone_config, "a/CTL.sgn"},
        {phone_config, "config.xml"},  {phone_config, "../x.sgn"},
    };
    struct sgn_request req;

    ef_start(0, 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), names[i].filename);
        req.out_filename = names[i].out_filename;
        ef_run(&req);
        ck_assert_msg(F.r.status == SGN_E_DENIED, "%s / %s: %s", names[i].filename,
                      names[i].out_filename ? names[i].out_filename : "-", F.r.message);
        ef_assert_refused(i + 1, SGN_E_DENIED, "output-kind", "sign", NULL);
        ef_assert_message("FILENAME");
    }
}
END_TEST

START_TEST(sign_refuses_an_encrypted_config)
{
    struct sgn_request req = {.op = POL_OP_ENCRYPT,
                              .filename = phone_config,
                              .data = (const uint8_t *)ef_config_xml,
                              .len = strlen(ef_config_xml),
                              .phone_cert = ef_w.phone_der,
                              .phone_cert_len = ef_w.phone_len};
    uint8_t *enc;
    size_t enc_len;

    ef_start(0, 0);
    ef_run(&req);
    assert_ok("encrypt");
    enc = F.r.out;
    enc_len = F.r.out_len;
    F.r.out = NULL;
    req = ef_sign_request(enc, enc_len, "SEP001122334455.cnf.xml.enc.sgn");
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "output-kind", "sign", NULL);
    ef_assert_message("is an encrypted config (.enc.sgn)");
    free(enc);
}
END_TEST

START_TEST(encrypt_and_build_keep_their_kinds)
{
    struct sgn_request req;
    size_t itl_len;
    uint8_t *itl;

    ef_start(0, 0);
    itl = ef_make_itl(&itl_len);
    req = (struct sgn_request){.op = POL_OP_ENCRYPT,
                               .filename = phone_config,
                               .data = itl,
                               .len = itl_len,
                               .phone_cert = ef_w.phone_der,
                               .phone_cert_len = ef_w.phone_len};
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "output-kind", "encrypt", NULL);
    ef_assert_message("encrypt takes the plain SEP<MAC>.cnf.xml");
    req = ef_build_request();
    req.out_filename = "SEP001122334455.cnf.xml.sgn";
    ef_run(&req);
    ef_assert_refused(3, SGN_E_DENIED, "output-kind", "build", NULL);
    ef_assert_message("build: FILENAME");
    free(itl);
}
END_TEST

/* An ITL whose FILENAME (tag 14) is rewritten in place to a name of the same length: no
 * builder makes one, and its signature no longer verifies, but reset must refuse it for its
 * name before it looks further. */
static void rename_itl(uint8_t *itl, size_t len, const char *name)
{
    struct itl_file f;
    struct itl_error err;

    ck_assert_int_eq(itl_parse(itl, len, ITL_KIND_TLV, &f, &err), 0);
    ck_assert_uint_eq(f.hdr.filename.len, strlen(name));
    memcpy((uint8_t *)f.hdr.filename.ptr, name, strlen(name));
    itl_file_free(&f);
}

START_TEST(reset_keeps_only_a_trust_list_filename)
{
    struct sgn_request req;
    size_t len;
    uint8_t *itl;

    ef_start(0, 0);
    itl = ef_make_itl(&len);
    rename_itl(itl, len, "SEPabcd.sgn"); /* as long as ITLFile.tlv */
    req = reset_request(itl, len);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_E_DENIED, "%s: %s", sgn_status_name(F.r.status), F.r.message);
    ef_assert_refused(2, SGN_E_DENIED, "output-kind", "reset", NULL);
    ef_assert_message("ITLFile.tlv: reset keeps its FILENAME");
    free(itl);
}
END_TEST

/* ---- operations and keys the engine does not know ---- */

/* op key is served (engine_keyops.c), but never a sub-op that carries a secret, and never
 * without the key's label; each refusal is audited under the sub-op's name. */
START_TEST(key_ops_the_service_refuses)
{
    struct sgn_request req = config_request();

    ef_start(1, 0); /* the peer holds every right, key included */
    req.op = POL_OP_KEY;
    req.key_op = SGN_KEY_IMPORT;
    req.key = "Imported";
    ef_run(&req);
    ef_assert_refused(1, SGN_E_USAGE, NULL, "key import", "Imported");
    ef_assert_message("runs in direct mode only");
    req.key_op = SGN_KEY_ATTEST_BACKUP;
    ef_run(&req);
    ef_assert_refused(2, SGN_E_USAGE, NULL, "key attest-backup", "Imported");
    req.key_op = SGN_KEY_DELETE;
    req.key = NULL;
    ef_run(&req);
    ef_assert_refused(3, SGN_E_USAGE, NULL, "key delete", NULL);
    ef_assert_message("key delete: the key's label is needed");
    req.op = POL_OP_COUNT + 2; /* 9: no operation has that number */
    ef_run(&req);
    ef_assert_refused(4, SGN_E_USAGE, NULL, "?", NULL);
    ef_assert_message("unknown operation 9");
}
END_TEST

START_TEST(unknown_and_missing_keys)
{
    struct sgn_request req = config_request();

    snprintf(F.cfg.keys[POL_KEY_TFTP].label, POL_NAME_LEN, "NotOnTheToken");
    ef_start(0, 0);
    req.key = "NoSuchKey";
    ef_run(&req);
    ef_assert_refused(1, SGN_E_USAGE, NULL, "sign", NULL);
    ef_assert_message("key 'NoSuchKey' is neither the recovery key (label 'ITLRecovery') nor the "
                      "TFTP key (label 'NotOnTheToken')");
    req.key = NULL; /* the TFTP key, whose label is not on the token */
    ef_run(&req);
    ef_assert_refused(2, SGN_E_TOKEN, NULL, "sign", NULL);
    ef_assert_message("tftp key (label 'NotOnTheToken')");
    req.key = "recovery"; /* exists, but may not sign configs */
    ef_run(&req);
    ef_assert_refused(3, SGN_E_DENIED, "key-role", "sign", EF_RECOVERY);
    ef_assert_message("may not sign config files");
}
END_TEST

/* ---- malformed input ---- */

START_TEST(malformed_inputs)
{
    struct sgn_request req;
    size_t itl_len;
    uint8_t *itl;

    ef_start(0, 0);
    itl = ef_make_itl(&itl_len);
    req = reset_request((const uint8_t *)ef_config_xml, strlen(ef_config_xml));
    ef_run(&req);
    ef_assert_refused(2, SGN_E_INPUT, NULL, "reset", NULL);
    ef_assert_message("ITLFile.tlv is not a valid ITL/CTL");
    req = reset_request(itl, itl_len - 7);
    ef_run(&req);
    ef_assert_refused(3, SGN_E_INPUT, NULL, "reset", NULL);
    ef_assert_message("is not a valid ITL/CTL");
    req = reset_request(itl, itl_len);
    req.digest = 7;
    ef_run(&req);
    ef_assert_refused(4, SGN_E_USAGE, NULL, "reset", EF_RECOVERY);
    ef_assert_message("digest code 7");
    req = ef_build_request();
    req.n_certs = 0;
    ef_run(&req);
    ef_assert_refused(5, SGN_E_USAGE, NULL, "build", NULL);
    ef_assert_message("build needs 1 to 64 certificates");
    free(itl);
}
END_TEST

START_TEST(malformed_build_and_encrypt_inputs)
{
    static const uint8_t not_der[] = {0x30, 0x03, 0x02, 0x01};
    struct sgn_cert_arg certs[] = {
        {.function = ITL_ROLE_SAST, .token_label = EF_TFTP},
        {.function = ITL_ROLE_CAPF, .der = not_der, .der_len = sizeof not_der},
    };
    struct sgn_request req = {.op = POL_OP_BUILD, .certs = certs, .n_certs = 2};
    static const char not_device[] = "<phone></phone>\n";

    ef_start(0, 0);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_INPUT, NULL, "build", EF_TFTP);
    certs[1] = (struct sgn_cert_arg){.function = ITL_ROLE_SAST, .token_label = "NoSuchCert"};
    ef_run(&req);
    ef_assert_refused(2, SGN_E_TOKEN, NULL, "build", EF_TFTP);
    ef_assert_message("certificate 'NoSuchCert' from the token");
    req = config_request();
    req.op = POL_OP_ENCRYPT;
    ef_run(&req);
    ef_assert_refused(3, SGN_E_USAGE, NULL, "encrypt", NULL);
    ef_assert_message("--phone-cert");
    /* the .enc.sgn is made before the companion fails: neither is released */
    req = ef_sign_request(not_device, strlen(not_device), phone_config);
    req.op = POL_OP_ENCRYPT;
    req.phone_cert = ef_w.phone_der;
    req.phone_cert_len = ef_w.phone_len;
    ef_run(&req);
    ef_assert_refused(4, SGN_E_INPUT, NULL, "encrypt", EF_TFTP);
    ef_assert_message("root element is not <device>");
}
END_TEST

/* ---- signing policy ---- */

START_TEST(subscriber_never_uses_the_recovery_key)
{
    struct sgn_request req;
    size_t itl_len;
    uint8_t *itl;

    F.cfg.node.role = POL_NODE_SUBSCRIBER;
    snprintf(F.cfg.node.name, POL_NAME_LEN, "cucm-sub1");
    ef_start(0, 0);
    itl = ef_make_itl(&itl_len); /* the TFTP key builds on a subscriber */
    req = reset_request(itl, itl_len);
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "publisher-only", "reset", EF_RECOVERY);
    ef_assert_message("This is not a Publisher Node");
    ef_assert_message("node cucm-sub1 is a subscriber");
    req.key = "tftp"; /* reset itself is publisher-only, whatever the key */
    ef_run(&req);
    ef_assert_refused(3, SGN_E_DENIED, "publisher-only", "reset", EF_TFTP);
    req = ef_build_request();
    req.key = "recovery";
    ef_run(&req);
    ef_assert_refused(4, SGN_E_DENIED, "publisher-only", "build", EF_RECOVERY);
    req = config_request();
    ef_run(&req);
    assert_ok("sign on a subscriber");
    free(itl);
}
END_TEST

/* The recovery key's backup is attested, then the same reset succeeds with no warning: the
 * third audit record. */
static void reset_ok_after_attestation(struct sgn_request *req)
{
    ef_attest_recovery_backup();
    ef_run(req);
    assert_ok("reset after the attestation");
    ck_assert_str_eq(F.r.warning, "");
    ef_assert_audit(3, "reset", "ok", NULL, EF_RECOVERY);
}

START_TEST(backup_require_until_attested)
{
    struct sgn_request req;
    size_t itl_len;
    uint8_t *itl;

    F.cfg.policy.backup = POL_BACKUP_REQUIRE;
    ef_start(0, 1);
    itl = ef_make_itl(&itl_len); /* the TFTP key needs no backup */
    req = reset_request(itl, itl_len);
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "backup", "reset", EF_RECOVERY);
    ef_assert_message("has not been backed up and policy.backup is 'require'");
    reset_ok_after_attestation(&req);
    free(itl);
}
END_TEST

START_TEST(attested_backup_silences_the_warning)
{
    struct sgn_request req;
    size_t itl_len;
    uint8_t *itl;
    char *line;

    ef_start(0, 1); /* backup: warn */
    itl = ef_make_itl(&itl_len);
    req = reset_request(itl, itl_len);
    ef_run(&req);
    assert_ok("reset");
    ck_assert_ptr_nonnull(strstr(F.r.warning, "has not been backed up"));
    line = ef_audit_last();
    ck_assert_ptr_nonnull(strstr(line, "\"message\":\"This cluster has an ITLRecovery"));
    free(line);
    reset_ok_after_attestation(&req);
    free(itl);
}
END_TEST

START_TEST(corrupt_state_stops_only_the_recovery_key)
{
    struct sgn_request req;
    char path[1100];
    size_t itl_len;
    uint8_t *itl;

    ef_start(0, 1);
    itl = ef_make_itl(&itl_len);
    snprintf(path, sizeof path, "%s/state.json", F.cfg.state_dir);
    testlib_write(path, "{not json", 9);
    req = reset_request(itl, itl_len);
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "state", "reset", EF_RECOVERY);
    ef_assert_message("policy state unreadable, recovery key use refused");
    req = config_request();
    ef_run(&req);
    assert_ok("sign with a corrupt state");
    free(itl);
}
END_TEST

START_TEST(regen_hold_does_not_stop_signing)
{
    struct pol_regen_event ev = {.key = POL_KEY_TFTP, .time = time(NULL), .uid = 4242};
    struct pol_decision d;
    struct itl_error err;
    struct sgn_request req = config_request();

    snprintf(ev.label, sizeof ev.label, EF_TFTP);
    ck_assert_int_eq(pol_state_record_regen(F.dir, &F.cfg, &ev, &d, &err), 0);
    ef_start(0, 1);
    ef_run(&req);
    assert_ok("sign within the regeneration hold");
    ef_assert_audit(1, "sign", "ok", NULL, EF_TFTP);
}
END_TEST

START_TEST(expired_signer)
{
    struct sgn_request req = config_request();

    snprintf(F.cfg.keys[POL_KEY_TFTP].label, POL_NAME_LEN, EF_EXPIRED);
    ef_start(0, 0);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_DENIED, "expired", "sign", EF_EXPIRED);
    ef_assert_message("the signer certificate (Expired) expired at");
    ef_assert_message("(policy.expired: refuse)");
    ef_teardown();
    ef_setup();
    snprintf(F.cfg.keys[POL_KEY_TFTP].label, POL_NAME_LEN, EF_EXPIRED);
    F.cfg.policy.expired = POL_EXPIRED_WARN;
    ef_start(0, 0);
    ef_run(&req);
    assert_ok("sign with expired: warn");
    ck_assert_ptr_nonnull(strstr(F.r.warning, "expired at"));
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_SGN, "SEP001122334455.cnf.xml.sgn",
                   "Expired_test", EF_EXPIRED);
    ef_assert_audit(1, "sign", "ok", NULL, EF_EXPIRED);
}
END_TEST

START_TEST(reset_needs_the_signer_as_sast)
{
    static const struct sgn_cert_arg tftp_only[] = {
        {.function = ITL_ROLE_SAST, .token_label = EF_TFTP},
        {.function = ITL_ROLE_TFTP, .token_label = EF_RECOVERY},
    };
    struct sgn_request req = {.op = POL_OP_BUILD, .certs = tftp_only, .n_certs = 2};
    uint8_t *itl;
    size_t itl_len;

    ef_start(0, 0);
    ef_run(&req);
    assert_ok("build");
    itl = F.r.out;
    itl_len = F.r.out_len;
    F.r.out = NULL;
    req = reset_request(itl, itl_len);
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "sast-signer", "reset", EF_RECOVERY);
    ef_assert_message("is not a SAST record of ITLFile.tlv");
    /* build: the signer must be one of the SAST records it writes */
    req = (struct sgn_request){
        .op = POL_OP_BUILD, .certs = tftp_only, .n_certs = 2, .key = "recovery"};
    ef_run(&req);
    ef_assert_refused(3, SGN_E_DENIED, "sast-signer", "build", EF_RECOVERY);
    free(itl);
}
END_TEST

START_TEST(itl_size_limit)
{
    struct sgn_request req = ef_build_request();

    F.cfg.policy.max_itl_bytes = 1000; /* two 2048-bit certificates make more */
    ef_start(0, 0);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_DENIED, "max-itl-bytes", "build", EF_TFTP);
    ef_assert_message("more than policy.max-itl-bytes (1000)");
}
END_TEST

/* A refused reset whose signer is not a SAST record says the reason of the rule that refused it:
 * on a subscriber, publisher-only's words, not the sast-signer text under that rule's name. */
START_TEST(reset_denial_message_matches_its_rule)
{
    static const struct sgn_cert_arg tftp_only[] = {
        {.function = ITL_ROLE_SAST, .token_label = EF_TFTP},
    };
    struct sgn_request req = {.op = POL_OP_BUILD, .certs = tftp_only, .n_certs = 1};
    uint8_t *itl;
    size_t itl_len;
    char *line;

    F.cfg.node.role = POL_NODE_SUBSCRIBER;
    snprintf(F.cfg.node.name, POL_NAME_LEN, "cucm-sub1");
    ef_start(0, 0);
    ef_run(&req);
    assert_ok("build");
    itl = F.r.out;
    itl_len = F.r.out_len;
    F.r.out = NULL;
    req = reset_request(itl, itl_len);
    ef_run(&req);
    ef_assert_refused(2, SGN_E_DENIED, "publisher-only", "reset", EF_RECOVERY);
    line = ef_audit_last();
    ck_assert_msg(strstr(F.r.message, "This is not a Publisher Node"),
                  "rule publisher-only, message: %s", F.r.message);
    ck_assert_msg(strstr(line, "This is not a Publisher Node"), "audit: %s", line);
    free(line);
    free(itl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signer-engine-refusals");
    TCase *tc = tcase_create("refusals");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, ef_setup, ef_teardown);
    tcase_add_test(tc, sign_only_peer_gets_only_sign);
    tcase_add_test(tc, peer_without_rule_is_refused);
    tcase_add_test(tc, access_rules_from_the_config);
    tcase_add_test(tc, direct_mode_skips_access_rules);
    tcase_add_test(tc, sign_refuses_an_itl);
    tcase_add_test(tc, sign_refuses_trust_list_names);
    tcase_add_test(tc, sign_refuses_an_encrypted_config);
    tcase_add_test(tc, encrypt_and_build_keep_their_kinds);
    tcase_add_test(tc, reset_keeps_only_a_trust_list_filename);
    tcase_add_test(tc, key_ops_the_service_refuses);
    tcase_add_test(tc, unknown_and_missing_keys);
    tcase_add_test(tc, malformed_inputs);
    tcase_add_test(tc, malformed_build_and_encrypt_inputs);
    tcase_add_test(tc, subscriber_never_uses_the_recovery_key);
    tcase_add_test(tc, backup_require_until_attested);
    tcase_add_test(tc, attested_backup_silences_the_warning);
    tcase_add_test(tc, corrupt_state_stops_only_the_recovery_key);
    tcase_add_test(tc, regen_hold_does_not_stop_signing);
    tcase_add_test(tc, expired_signer);
    tcase_add_test(tc, reset_needs_the_signer_as_sast);
    tcase_add_test(tc, itl_size_limit);
    tcase_add_test(tc, reset_denial_message_matches_its_rule);
    suite_add_tcase(s, tc);
    return ef_run_suite(s);
}
