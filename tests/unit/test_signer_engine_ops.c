/* SPDX-License-Identifier: MIT */
/* signer engine, the operations that succeed: sign (and re-sign) a config, reset an ITL with the
 * recovery key, build, encrypt, status. Every output is parsed back, verified with OpenSSL
 * against the token's certificate, and matched by one audit record. */
#include <pthread.h>

#include "signer/internal.h"
#include "tests/unit/engine_fixture.h"

static const char phone_config[] = "SEP001122334455.cnf.xml";

/* ---- sign ---- */

START_TEST(sign_config_is_a_verified_sgn)
{
    struct sgn_request req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), phone_config);
    struct itl_file f;
    struct itl_error err;

    req.has_timestamp = 1;
    req.timestamp = 1700000000;
    ef_start(0, 0);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "sign: %s", F.r.message);
    ck_assert_str_eq(F.r.out_name, "SEP001122334455.cnf.xml.sgn");
    ck_assert_ptr_nonnull(strstr(F.r.signer, "CallManager_test"));
    ck_assert_ptr_nonnull(strstr(F.r.message, "bytes signed by"));
    ck_assert_ptr_null(F.r.out2);
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_SGN, "SEP001122334455.cnf.xml.sgn",
                   "CallManager_test", EF_TFTP);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_SGN, &f, &err), 0);
    ck_assert_uint_eq(f.payload.len, strlen(ef_config_xml));
    ck_assert_mem_eq(f.payload.ptr, ef_config_xml, f.payload.len);
    ck_assert_int_eq(f.hdr.digest, ITL_DIGEST_SHA1); /* the config's default */
    ck_assert_int_eq(f.hdr.has_timestamp, 1);
    ck_assert_uint_eq(f.hdr.timestamp, 1700000000);
    itl_file_free(&f);
    ef_assert_audit(1, "sign", "ok", NULL, EF_TFTP);
    ef_assert_audit_input(phone_config, ef_config_xml, strlen(ef_config_xml));
    /* not pipelined: the intent record was written (and flushed) before the signature */
    ck_assert_uint_eq(ef_audit_intents(), 1);
}
END_TEST

START_TEST(sign_with_digest_and_filename)
{
    struct sgn_request req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), phone_config);
    struct itl_file f;
    struct itl_error err;

    req.digest = ITL_DIGEST_SHA512;
    req.out_filename = "locale/SEP001122334455.cnf.xml.sgn"; /* FILENAME may be a path */
    req.key = "tftp";
    ef_start(0, 0);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "sign: %s", F.r.message);
    ck_assert_str_eq(F.r.out_name, "SEP001122334455.cnf.xml.sgn"); /* a base name */
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_SGN, "locale/SEP001122334455.cnf.xml.sgn",
                   "CallManager_test", EF_TFTP);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_SGN, &f, &err), 0);
    ck_assert_int_eq(f.hdr.digest, ITL_DIGEST_SHA512);
    itl_file_free(&f);
    ef_assert_audit(1, "sign", "ok", NULL, EF_TFTP);
}
END_TEST

START_TEST(resign_keeps_filename_and_payload)
{
    struct sgn_request req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), phone_config);
    struct itl_file f;
    struct itl_error err;
    uint8_t *first;
    size_t first_len;

    req.out_filename = "Custom.cnf.xml.sgn";
    ef_start(0, 0);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "sign: %s", F.r.message);
    first = F.r.out;
    first_len = F.r.out_len;
    F.r.out = NULL;
    req = ef_sign_request(first, first_len, "SEP001122334455.cnf.xml.sgn");
    req.digest = ITL_DIGEST_SHA256;
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "re-sign: %s", F.r.message);
    ef_assert_message("re-signed");
    ck_assert_str_eq(F.r.out_name, "SEP001122334455.cnf.xml.sgn"); /* replaces the input */
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_SGN, "Custom.cnf.xml.sgn", "CallManager_test",
                   EF_TFTP);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_SGN, &f, &err), 0);
    ck_assert_uint_eq(f.payload.len, strlen(ef_config_xml)); /* not a .sgn in a .sgn */
    ck_assert_mem_eq(f.payload.ptr, ef_config_xml, f.payload.len);
    ck_assert_int_eq(f.hdr.digest, ITL_DIGEST_SHA256);
    itl_file_free(&f);
    ef_assert_audit(2, "sign", "ok", NULL, EF_TFTP);
    free(first);
}
END_TEST

/* ---- reset ---- */

/* Every record of `out` is byte for byte the record of `in`. */
static void assert_same_records(const uint8_t *in, size_t in_len, const uint8_t *out,
                                size_t out_len)
{
    struct itl_file a, b;
    struct itl_error err;

    ck_assert_int_eq(itl_parse(in, in_len, ITL_KIND_TLV, &a, &err), 0);
    ck_assert_int_eq(itl_parse(out, out_len, ITL_KIND_TLV, &b, &err), 0);
    ck_assert_uint_eq(a.n_records, b.n_records);
    for (size_t i = 0; i < a.n_records; i++) {
        ck_assert_uint_eq(a.records[i].length, b.records[i].length);
        ck_assert_mem_eq(in + a.records[i].offset, out + b.records[i].offset, a.records[i].length);
    }
    itl_file_free(&a);
    itl_file_free(&b);
}

START_TEST(reset_with_recovery_key)
{
    size_t itl_len;
    uint8_t *itl;
    struct sgn_request req = {.op = POL_OP_RESET, .filename = "/tmp/somewhere/ITLFile.tlv"};
    struct itl_file f;
    struct itl_error err;
    long signer_index;

    ef_start(0, 0);
    itl = ef_make_itl(&itl_len);
    req.data = itl;
    req.len = itl_len;
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "reset: %s", F.r.message);
    ck_assert_str_eq(F.r.out_name, "ITLFile.tlv");
    ef_assert_message("The ITL file was reset: signed by record #2");
    ck_assert_ptr_nonnull(strstr(F.r.signer, "ITLRECOVERY_test"));
    /* backup: warn (the default) and no attestation: CUCM's warning, and still signed */
    ck_assert_ptr_nonnull(strstr(F.r.warning, "has not been backed up"));
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_TLV, "ITLFile.tlv", "ITLRECOVERY_test",
                   EF_RECOVERY);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_TLV, &f, &err), 0);
    ck_assert_int_eq(itl_verify_self(&f, &signer_index, &err), 0);
    ck_assert_int_eq(signer_index, 1);
    itl_file_free(&f);
    assert_same_records(itl, itl_len, F.r.out, F.r.out_len);
    ef_assert_audit(2, "reset", "ok", NULL, EF_RECOVERY);
    ef_assert_audit_input("/tmp/somewhere/ITLFile.tlv", itl, itl_len);
    free(itl);
}
END_TEST

START_TEST(reset_keeps_digest_unless_asked)
{
    size_t itl_len;
    uint8_t *itl;
    struct sgn_request req = {.op = POL_OP_RESET, .filename = "ITLFile.tlv", .key = EF_RECOVERY};
    struct itl_file f;
    struct itl_error err;

    F.cfg.policy.digest = ITL_DIGEST_SHA256; /* the ITL is built with SHA-256 */
    ef_start(0, 0);
    itl = ef_make_itl(&itl_len);
    req.data = itl;
    req.len = itl_len;
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "reset: %s", F.r.message);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_TLV, &f, &err), 0);
    ck_assert_int_eq(f.hdr.digest, ITL_DIGEST_SHA256);
    itl_file_free(&f);
    req.digest = ITL_DIGEST_SHA512;
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "reset: %s", F.r.message);
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_TLV, "ITLFile.tlv", "ITLRECOVERY_test",
                   EF_RECOVERY);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_TLV, &f, &err), 0);
    ck_assert_int_eq(f.hdr.digest, ITL_DIGEST_SHA512);
    itl_file_free(&f);
    ef_assert_audit(3, "reset", "ok", NULL, EF_RECOVERY);
    free(itl);
}
END_TEST

START_TEST(reset_with_tftp_key_by_label)
{
    size_t itl_len;
    uint8_t *itl;
    struct sgn_request req = {.op = POL_OP_RESET, .filename = "ITLFile.tlv", .key = EF_TFTP};

    ef_start(0, 0);
    itl = ef_make_itl(&itl_len);
    req.data = itl;
    req.len = itl_len;
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "reset: %s", F.r.message);
    ef_assert_message("signed by record #1");
    ck_assert_str_eq(F.r.warning, ""); /* no backup rule for the TFTP key */
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_TLV, "ITLFile.tlv", "CallManager_test", EF_TFTP);
    assert_same_records(itl, itl_len, F.r.out, F.r.out_len);
    ef_assert_audit(2, "reset", "ok", NULL, EF_TFTP);
    free(itl);
}
END_TEST

/* ---- build ---- */

START_TEST(build_default_itl)
{
    struct sgn_request req = ef_build_request();
    struct itl_file f;
    struct itl_error err;
    uint8_t *der;
    size_t der_len;
    long signer_index;

    ef_start(0, 0);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "build: %s", F.r.message);
    ck_assert_str_eq(F.r.out_name, "ITLFile.tlv");
    ef_assert_message("2 records");
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_TLV, "ITLFile.tlv", "CallManager_test", EF_TFTP);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_TLV, &f, &err), 0);
    ck_assert_uint_eq(f.n_records, 2);
    ck_assert_int_eq(f.hdr.has_signer_version, 0);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(
            tok_export_cert(F.tok, ef_build_certs[i].token_label, &der, &der_len, &err), 0);
        ck_assert_int_eq(f.records[i].function, ITL_ROLE_SAST);
        ck_assert_uint_eq(f.records[i].certificate.len, der_len);
        ck_assert_mem_eq(f.records[i].certificate.ptr, der, der_len);
        ck_assert_int_eq(itl_record_check(&f.records[i], &err), 0);
        free(der);
    }
    ck_assert_int_eq(itl_verify_self(&f, &signer_index, &err), 0);
    ck_assert_int_eq(signer_index, 0);
    itl_file_free(&f);
    ef_assert_audit(1, "build", "ok", NULL, EF_TFTP);
}
END_TEST

START_TEST(build_ctl_certutils_layout_with_der_cert)
{
    struct sgn_cert_arg certs[] = {
        {.function = ITL_ROLE_SAST, .token_label = EF_TFTP},
        {.function = ITL_ROLE_CAPF, .der = ef_w.phone_der, .der_len = ef_w.phone_len},
    };
    struct sgn_request req = {.op = POL_OP_BUILD,
                              .certs = certs,
                              .n_certs = 2,
                              .layout = 1,
                              .out_filename = "CTLFile.tlv"};
    struct itl_file f;
    struct itl_error err;

    ef_start(0, 0);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "build: %s", F.r.message);
    ck_assert_str_eq(F.r.out_name, "CTLFile.tlv");
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_TLV, "CTLFile.tlv", "CallManager_test", EF_TFTP);
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_TLV, &f, &err), 0);
    ck_assert_int_eq(f.hdr.has_signer_version, 1); /* tag 28, as certutils writes */
    ck_assert_int_eq(f.hdr.signer_order, ITL_ORDER_NAME_ISSUER_SERIAL);
    ck_assert_uint_eq(f.n_records, 2);
    ck_assert_int_eq(f.records[1].function, ITL_ROLE_CAPF);
    ck_assert_uint_eq(f.records[1].certificate.len, ef_w.phone_len);
    ck_assert_mem_eq(f.records[1].certificate.ptr, ef_w.phone_der, ef_w.phone_len);
    itl_file_free(&f);
    ef_assert_audit(1, "build", "ok", NULL, EF_TFTP);
}
END_TEST

/* ---- encrypt ---- */

START_TEST(encrypt_config_for_a_phone)
{
    struct sgn_request req = {.op = POL_OP_ENCRYPT,
                              .filename = phone_config,
                              .data = (const uint8_t *)ef_config_xml,
                              .len = strlen(ef_config_xml),
                              .phone_cert = ef_w.phone_der,
                              .phone_cert_len = ef_w.phone_len};
    struct itl_file f;
    struct itl_error err;
    uint8_t *plain;
    size_t plain_len;

    ef_start(0, 0);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "encrypt: %s", F.r.message);
    ck_assert_str_eq(F.r.out_name, "SEP001122334455.cnf.xml.enc.sgn");
    ck_assert_str_eq(F.r.out2_name, "SEP001122334455.cnf.xml.sgn");
    ef_assert_file(F.r.out, F.r.out_len, ITL_KIND_ENC_SGN, "SEP001122334455.cnf.xml.enc.sgn",
                   "CallManager_test", EF_TFTP);
    ef_assert_file(F.r.out2, F.r.out2_len, ITL_KIND_SGN, "SEP001122334455.cnf.xml.sgn",
                   "CallManager_test", EF_TFTP);
    /* the phone's key opens it, and it is the config */
    ck_assert_int_eq(itl_parse(F.r.out, F.r.out_len, ITL_KIND_ENC_SGN, &f, &err), 0);
    ck_assert_msg(itl_decrypt_enc_sgn(&f, ef_w.phone_key_der, ef_w.phone_key_len, &plain,
                                      &plain_len, &err) == 0,
                  "decrypt: %s", err.msg);
    ck_assert_uint_eq(plain_len, strlen(ef_config_xml));
    ck_assert_mem_eq(plain, ef_config_xml, plain_len);
    ck_assert_ptr_null(memmem(f.payload.ptr, f.payload.len, "fullConfig", 10));
    free(plain);
    itl_file_free(&f);
    /* the companion: the short config, in the clear */
    ck_assert_int_eq(itl_parse(F.r.out2, F.r.out2_len, ITL_KIND_SGN, &f, &err), 0);
    ck_assert_ptr_nonnull(
        memmem(f.payload.ptr, f.payload.len, "<fullConfig>false</fullConfig>", 30));
    ck_assert_ptr_nonnull(
        memmem(f.payload.ptr, f.payload.len, "<encrConfig>true</encrConfig>", 29));
    itl_file_free(&f);
    ef_assert_audit(1, "encrypt", "ok", NULL, EF_TFTP);
}
END_TEST

/* ---- status ---- */

START_TEST(status_releases_nothing)
{
    struct sgn_request req = {.op = POL_OP_STATUS};
    char *json, *line;

    ef_start(1, 1);
    ef_allow_only(1u << POL_OP_STATUS);
    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "status: %s", F.r.message);
    ck_assert_str_eq(F.r.message, "ok");
    ck_assert_ptr_null(F.r.out);
    ck_assert_ptr_null(F.r.out2);
    ef_assert_audit(1, "status", "ok", NULL, NULL);
    line = ef_audit_last();
    ef_assert_has(line, "in_sha256", NULL);
    free(line);
    ck_assert_int_eq(sgn_status_json(F.e, NULL, &json), 0);
    ck_assert_msg(strstr(json, "\"present\":true"), "%s", json);
    ck_assert_msg(strstr(json, "\"label\":\"" EF_TFTP "\""), "%s", json);
    ck_assert_msg(strstr(json, "\"requests\":1"), "%s", json);
    free(json);
}
END_TEST

/* ---- many requests at once ---- */

#define PAR_THREADS 4
#define PAR_EACH 4

struct par_job {
    char names[PAR_EACH][64];
    struct sgn_result r[PAR_EACH];
};

static void *par_sign(void *arg)
{
    struct par_job *job = arg;

    for (int i = 0; i < PAR_EACH; i++) {
        struct sgn_request req =
            ef_sign_request(ef_config_xml, strlen(ef_config_xml), job->names[i]);
        sgn_execute(F.e, &F.peer, &req, &job->r[i]);
    }
    return NULL;
}

START_TEST(parallel_requests)
{
    static struct par_job jobs[PAR_THREADS];
    pthread_t th[PAR_THREADS];
    char want[80];

    ef_start(1, 1);
    for (int t = 0; t < PAR_THREADS; t++) {
        for (int i = 0; i < PAR_EACH; i++)
            snprintf(jobs[t].names[i], sizeof jobs[t].names[i], "SEP0000000000%d%d.cnf.xml", t, i);
        ck_assert_int_eq(pthread_create(&th[t], NULL, par_sign, &jobs[t]), 0);
    }
    for (int t = 0; t < PAR_THREADS; t++)
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < PAR_THREADS; t++)
        for (int i = 0; i < PAR_EACH; i++) {
            struct sgn_result *r = &jobs[t].r[i];
            ck_assert_msg(r->status == SGN_OK, "%s: %s", jobs[t].names[i], r->message);
            const char *name = jobs[t].names[i];
            snprintf(want, sizeof want, "%.*s.sgn", (int)strnlen(name, sizeof jobs[t].names[i]),
                     name);
            ck_assert_str_eq(r->out_name, want);
            ef_assert_file(r->out, r->out_len, ITL_KIND_SGN, want, "CallManager_test", EF_TFTP);
            sgn_result_free(r);
        }
    ck_assert_uint_eq(ef_audit_count(), PAR_THREADS * PAR_EACH);
}
END_TEST

/* ---- the daily backup reminder and events outside sgn_execute ---- */

START_TEST(backup_reminder_once_a_day_until_attested)
{
    char msg[1024] = "";
    time_t now = time(NULL);

    ef_start(0, 1); /* backup: warn */
    ck_assert_int_eq(sgn_backup_reminder(F.e, now, msg, sizeof msg), 1);
    ck_assert_ptr_nonnull(strstr(msg, "ITLRecoveryCertBackup: This cluster has an ITLRecovery"));
    ck_assert_int_eq(sgn_backup_reminder(F.e, now + 3600, msg, sizeof msg), 0);
    ck_assert_int_eq(sgn_backup_reminder(F.e, now + 86400 + 1, msg, sizeof msg), 1);
    ef_attest_recovery_backup();
    ck_assert_int_eq(sgn_backup_reminder(F.e, now + 3 * 86400, msg, sizeof msg), 0);
}
END_TEST

START_TEST(backup_reminder_off)
{
    char msg[64];

    F.cfg.policy.backup = POL_BACKUP_OFF;
    ef_start(0, 1);
    ck_assert_int_eq(sgn_backup_reminder(F.e, time(NULL), msg, sizeof msg), 0);
}
END_TEST

START_TEST(audit_event_is_one_record)
{
    char *line;

    ef_start(1, 0);
    sgn_audit_event(F.e, &F.peer, "protocol", "error", NULL, "bad magic");
    ef_assert_audit(1, "protocol", "error", NULL, NULL);
    line = ef_audit_last();
    ef_assert_has(line, "message", "bad magic");
    ef_assert_has(line, "in_sha256", NULL);
    free(line);
}
END_TEST

/* SIGHUP (signer/reload.c): the next request runs under the new configuration; a request that
 * holds the old generation keeps it, and that generation lives until it lets go (under ASan, a
 * use after free would show). */
START_TEST(a_reload_applies_to_the_next_request_only)
{
    static const char yaml[] = "access:\n  - { user: \"4242\", allow: [sign, status] }\n";
    static const char narrower[] = "access:\n  - { user: \"4242\", allow: [status] }\n";
    struct sgn_request req = ef_sign_request(ef_config_xml, strlen(ef_config_xml), phone_config);
    static struct pol_config cfg, next;
    const struct pol_config *held, *now;
    unsigned long generation;
    struct sgn_result r;
    struct itl_error err;

    pol_config_defaults(&cfg);
    ck_assert_int_eq(pol_config_parse(yaml, strlen(yaml), "a.yaml", &cfg, &err), 0);
    F.cfg.n_access = cfg.n_access;
    memcpy(F.cfg.access, cfg.access, sizeof cfg.access);
    F.peer.uid = 4242;
    F.peer.access = NULL; /* the engine resolves the rules itself */
    ef_start(1, 0);
    held = sgn_config_hold(F.e, &generation);
    ck_assert_uint_eq(generation, 1);

    next = F.cfg;
    pol_config_defaults(&cfg);
    ck_assert_int_eq(pol_config_parse(narrower, strlen(narrower), "b.yaml", &cfg, &err), 0);
    memcpy(next.access, cfg.access, sizeof cfg.access);
    ck_assert_uint_eq(sgn_engine_set_config(F.e, &next), 2);
    ef_run(&req);
    ef_assert_refused(1, SGN_E_DENIED, "access", "sign", NULL);

    memset(&r, 0, sizeof r);
    eng_execute(F.e, held, &F.peer, &req, &r, NULL, 1); /* started before the reload */
    ck_assert_msg(r.status == SGN_OK, "the held generation's rules: %s", r.message);
    ck_assert_ptr_nonnull(r.out);
    sgn_result_free(&r);
    sgn_config_release(F.e, held);

    now = sgn_config_hold(F.e, &generation);
    ck_assert_uint_eq(generation, 2);
    ck_assert_uint_eq(now->access[0].allow, 1u << POL_OP_STATUS);
    sgn_config_release(F.e, now);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signer-engine-ops");
    TCase *tc = tcase_create("ops");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, ef_setup, ef_teardown);
    tcase_add_test(tc, sign_config_is_a_verified_sgn);
    tcase_add_test(tc, sign_with_digest_and_filename);
    tcase_add_test(tc, resign_keeps_filename_and_payload);
    tcase_add_test(tc, reset_with_recovery_key);
    tcase_add_test(tc, reset_keeps_digest_unless_asked);
    tcase_add_test(tc, reset_with_tftp_key_by_label);
    tcase_add_test(tc, build_default_itl);
    tcase_add_test(tc, build_ctl_certutils_layout_with_der_cert);
    tcase_add_test(tc, encrypt_config_for_a_phone);
    tcase_add_test(tc, status_releases_nothing);
    tcase_add_test(tc, parallel_requests);
    tcase_add_test(tc, backup_reminder_once_a_day_until_attested);
    tcase_add_test(tc, backup_reminder_off);
    tcase_add_test(tc, audit_event_is_one_record);
    tcase_add_test(tc, a_reload_applies_to_the_next_request_only);
    suite_add_tcase(s, tc);
    return ef_run_suite(s);
}
