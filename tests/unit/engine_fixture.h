/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the signer engine tests (test_signer_engine*.c): one throwaway SoftHSM2 token
 * with the recovery, TFTP and an expired key, made once per process; per test a temp dir with
 * the state dir and audit log, a token session and an engine built from a config the test may
 * change first. Static inline, like test_format_util.h: the Makefile links every non-test .c of
 * tests/unit into every unit test, and test_format_* do not link signer/ or pkcs11/.
 */
#ifndef ITL_TESTS_ENGINE_FIXTURE_H
#define ITL_TESTS_ENGINE_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "format/itl.h"
#include "pkcs11/token.h"
#include "signer/signer.h"
#include "tests/unit/testlib.h"

#define EF_RECOVERY "ITLRecovery"
#define EF_TFTP "CallManager"
#define EF_EXPIRED "Expired"

/* Made once in main(), before the runner forks: token, keys, a phone certificate. */
struct ef_world {
    struct testlib_token tt;
    char dir[512];
    uint8_t *phone_der; /* the phone's certificate, for encrypt */
    size_t phone_len;
    uint8_t *phone_key_der; /* its private key (PKCS#8 DER), to decrypt what encrypt made */
    size_t phone_key_len;
};
static struct ef_world ef_w;

/* One test's engine and what it left behind. */
struct ef {
    char dir[512];
    char audit_path[600];
    struct pol_config cfg; /* change before ef_start */
    const char *module;    /* NULL: SoftHSM2 itself */
    struct tok *tok;
    struct pol_audit *audit;
    struct sgn_engine *e;
    struct pol_access access;
    struct pol_peer peer;
    struct sgn_result r;
};
static struct ef F;

/* main() runs before Check does: a failure there cannot be a ck_assert. */
static inline void ef_die(const char *what, const char *why)
{
    fprintf(stderr, "engine fixture: %s: %s\n", what, why);
    exit(EXIT_FAILURE);
}

static inline int ef_try_open_token(struct tok **t, const char *module, struct itl_error *err)
{
    struct tok_options o = {
        .module = module ? module : ef_w.tt.module, .uri = ef_w.tt.uri, .pool_size = 2};
    struct tok_pin pin;
    int rc;

    if (tok_open(&o, t, err) != 0)
        return -1;
    if (tok_pin_from_file(ef_w.tt.pin_file, &pin, err) != 0) {
        tok_close(*t);
        return -1;
    }
    rc = tok_login(*t, &pin, err);
    tok_pin_wipe(&pin);
    if (rc != 0)
        tok_close(*t);
    return rc;
}

static inline void ef_open_token(struct tok **t, const char *module)
{
    struct itl_error err;

    if (ef_try_open_token(t, module, &err) != 0)
        ck_abort_msg("opening the token: %s", err.msg);
}

static inline void ef_generate(struct tok *t, const char *label, const char *subject, time_t now,
                               unsigned days)
{
    struct tok_generate_opts o = {
        .label = label, .subject = subject, .bits = 2048, .days = days, .now = now};
    struct itl_error err;
    uint8_t *der;
    size_t len;

    if (tok_generate(t, &o, &der, &len, &err) != 0)
        ef_die(label, err.msg);
    free(der);
}

static inline void ef_world_setup(void)
{
    struct tok *t;
    struct itl_error err;
    char path[700];
    time_t now = time(NULL);

    testlib_make_token("itl-engine", &ef_w.tt);
    snprintf(ef_w.dir, sizeof ef_w.dir, "%s", testlib_tmpdir("engine-world"));
    if (ef_try_open_token(&t, NULL, &err) != 0)
        ef_die("opening the token", err.msg);
    ef_generate(t, EF_RECOVERY, "CN=ITLRECOVERY_test,O=itl-sign test", now - 3600, 1825);
    ef_generate(t, EF_TFTP, "CN=CallManager_test,O=itl-sign test", now - 3600, 1825);
    /* valid for one day, thirty days ago */
    ef_generate(t, EF_EXPIRED, "CN=Expired_test,O=itl-sign test", now - 30 * 86400, 1);
    tok_close(t);
    testlib_make_cert(ef_w.dir, "phone", "/CN=SEP001122334455/O=itl-sign test", 2048);
    snprintf(path, sizeof path, "%s/phone.der", ef_w.dir);
    ef_w.phone_der = testlib_read(path, &ef_w.phone_len);
    if (testlib_sh("openssl pkey -in '%s/phone.key.pem' -outform DER -out '%s/phone.key.der'",
                   ef_w.dir, ef_w.dir) != 0)
        ef_die("openssl pkey", "failed");
    snprintf(path, sizeof path, "%s/phone.key.der", ef_w.dir);
    ef_w.phone_key_der = testlib_read(path, &ef_w.phone_key_len);
}

/* Checked fixture: defaults, the test's state dir and audit log, every operation allowed. */
static inline void ef_setup(void)
{
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "%s", testlib_tmpdir("engine"));
    snprintf(F.audit_path, sizeof F.audit_path, "%s/audit.log", F.dir);
    pol_config_defaults(&F.cfg);
    snprintf(F.cfg.keys[POL_KEY_RECOVERY].label, POL_NAME_LEN, EF_RECOVERY);
    snprintf(F.cfg.keys[POL_KEY_TFTP].label, POL_NAME_LEN, EF_TFTP);
    snprintf(F.cfg.state_dir, sizeof F.cfg.state_dir, "%s", F.dir);
    snprintf(F.cfg.audit_log, sizeof F.cfg.audit_log, "%s", F.audit_path);
    F.access = (struct pol_access){.matched = 1, .allowed = ~0u, .who = "uid 4242 (tester)"};
    F.peer = (struct pol_peer){.uid = 4242, .gid = 4242, .pid = 99, .access = &F.access};
}

/* The engine for F.cfg as the test left it. */
static inline void ef_start(int check_access, int use_state)
{
    struct sgn_engine_opts o = {
        .cfg = &F.cfg, .check_access = check_access, .use_state = use_state};
    struct itl_error err;

    ef_open_token(&F.tok, F.module);
    if (pol_audit_open(F.audit_path, &F.audit, &err) != 0)
        ck_abort_msg("pol_audit_open: %s", err.msg);
    o.tok = F.tok;
    o.audit = F.audit;
    ck_assert_int_eq(sgn_engine_new(&o, &F.e, &err), 0);
}

static inline void ef_teardown(void)
{
    sgn_result_free(&F.r);
    sgn_engine_free(F.e);
    pol_audit_close(F.audit);
    tok_close(F.tok);
    if (F.dir[0])
        testlib_sh("rm -rf '%s'", F.dir);
    memset(&F, 0, sizeof F);
}

static inline void ef_run(const struct sgn_request *req)
{
    sgn_result_free(&F.r);
    sgn_execute(F.e, &F.peer, req, &F.r);
}

/* ---- The audit log: one JSON line per request ---- */

static inline size_t ef_audit_count(void)
{
    size_t len, n = 0;
    uint8_t *b = testlib_read(F.audit_path, &len);
    for (size_t i = 0; i < len; i++)
        n += b[i] == '\n';
    free(b);
    return n;
}

/* The last record (malloc'd). */
static inline char *ef_audit_last(void)
{
    size_t len;
    char *b = (char *)testlib_read(F.audit_path, &len), *start;
    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(b[len - 1], '\n');
    b[len - 1] = 0;
    start = strrchr(b, '\n');
    start = start ? start + 1 : b;
    memmove(b, start, strlen(start) + 1);
    return b;
}

static inline void ef_assert_has(const char *line, const char *field, const char *value)
{
    char want[700];
    if (value)
        snprintf(want, sizeof want, "\"%s\":\"%s\"", field, value);
    else
        snprintf(want, sizeof want, "\"%s\":null", field);
    ck_assert_msg(strstr(line, want), "audit record lacks %s: %s", want, line);
}

/* The last record is request number n and says this about it; the output hash, when the
 * result carries one, is the SHA-256 of what was released. */
static inline void ef_assert_audit(size_t n, const char *op, const char *result, const char *rule,
                                   const char *key)
{
    char *line = ef_audit_last(), hex[65];
    uint8_t md[32];

    ck_assert_uint_eq(ef_audit_count(), n);
    ck_assert_ptr_nonnull(strstr(line, "\"uid\":4242,\"gid\":4242,\"pid\":99"));
    ef_assert_has(line, "op", op);
    ef_assert_has(line, "result", result);
    ef_assert_has(line, "rule", rule);
    ef_assert_has(line, "key", key);
    if (F.r.out) {
        EVP_Digest(F.r.out, F.r.out_len, md, NULL, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        ef_assert_has(line, "out_sha256", hex);
    } else {
        ef_assert_has(line, "out_sha256", NULL);
    }
    free(line);
}

/* The last record names the input file and the SHA-256 of the bytes the request carried. */
static inline void ef_assert_audit_input(const char *file, const void *data, size_t len)
{
    char *line = ef_audit_last(), hex[65];
    uint8_t md[32];

    ef_assert_has(line, "file", file);
    EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    ef_assert_has(line, "in_sha256", hex);
    free(line);
}

/* A refusal: the status, the rule (NULL: none), nothing released, and the last audit record
 * (request number n) says so, naming the key when one had been chosen (NULL: none yet). */
static inline void ef_assert_refused(size_t n, enum sgn_status st, const char *rule, const char *op,
                                     const char *key)
{
    ck_assert_msg(F.r.status == st, "status %s, want %s: %s", sgn_status_name(F.r.status),
                  sgn_status_name(st), F.r.message);
    ck_assert_str_eq(F.r.rule, rule ? rule : "");
    ck_assert_ptr_null(F.r.out);
    ck_assert_ptr_null(F.r.out2);
    ck_assert_uint_eq(F.r.out_len, 0);
    ck_assert_uint_eq(F.r.out2_len, 0);
    ck_assert_str_ne(F.r.message, "");
    ck_assert_ptr_null(strstr(F.r.message, ef_w.tt.pin));
    ef_assert_audit(n, op, st == SGN_E_DENIED ? "denied" : "error", rule, key);
}

/* The message of a result contains `text`. */
static inline void ef_assert_message(const char *text)
{
    ck_assert_msg(strstr(F.r.message, text), "message lacks '%s': %s", text, F.r.message);
}

/* The peer is granted exactly these operations (bits 1u << enum pol_op). */
static inline void ef_allow_only(unsigned ops)
{
    F.access.allowed = ops;
}

/* ---- Outputs, parsed back by the format layer and verified by OpenSSL ---- */

/* The signature of f verifies with the public key of the certificate labelled `label`. */
static inline void ef_assert_signed_by(const struct itl_file *f, const char *label)
{
    uint8_t md[64], *der;
    size_t md_len, der_len;
    struct itl_error err;
    const unsigned char *p;
    X509 *x;
    EVP_PKEY_CTX *ctx;
    int ok;

    ck_assert_int_eq(tok_export_cert(F.tok, label, &der, &der_len, &err), 0);
    ck_assert_int_eq(itl_signed_digest(f, md, &md_len, &err), 0);
    p = der;
    x = d2i_X509(NULL, &p, (long)der_len);
    ck_assert_ptr_nonnull(x);
    ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(x), NULL);
    ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbynid(itl_digest_nid(f->hdr.digest))) ==
             1 &&
         EVP_PKEY_verify(ctx, f->hdr.signature.ptr, f->hdr.signature.len, md, md_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    X509_free(x);
    ck_assert_msg(ok, "the signature does not verify with %s's certificate", label);
    ck_assert_int_eq(itl_verify_with_cert(f, der, der_len, &err), 0);
    free(der);
}

/* data is a file of `kind` with this FILENAME whose signer name holds `cn`, signed by `label`. */
static inline void ef_assert_file(const uint8_t *data, size_t len, enum itl_kind kind,
                                  const char *filename, const char *cn, const char *label)
{
    struct itl_file f;
    struct itl_error err;

    if (itl_parse(data, len, ITL_KIND_AUTO, &f, &err) != 0)
        ck_abort_msg("the output does not parse: %s", err.msg);
    ck_assert_int_eq(f.kind, kind);
    ck_assert_int_eq(itl_kind_of(data, len), kind);
    ck_assert_uint_eq(f.hdr.filename.len, strlen(filename));
    ck_assert_mem_eq(f.hdr.filename.ptr, filename, strlen(filename));
    ck_assert_msg(memmem(f.hdr.signer_name.ptr, f.hdr.signer_name.len, cn, strlen(cn)),
                  "SIGNERNAME %.*s lacks %s", (int)f.hdr.signer_name.len,
                  (const char *)f.hdr.signer_name.ptr, cn);
    ef_assert_signed_by(&f, label);
    itl_file_free(&f);
}

/* An attested backup of the recovery certificate on the token, in the test's state. */
static inline void ef_attest_recovery_backup(void)
{
    struct pol_attestation a = {.key = POL_KEY_RECOVERY, .time = time(NULL), .uid = 4242};
    struct itl_error err;
    uint8_t *der;
    size_t der_len;

    ck_assert_int_eq(tok_export_cert(F.tok, EF_RECOVERY, &der, &der_len, &err), 0);
    EVP_Digest(der, der_len, a.cert_sha256, NULL, EVP_sha256(), NULL);
    free(der);
    snprintf(a.kind, sizeof a.kind, "p12");
    snprintf(a.identity, sizeof a.identity, "sha256:test");
    if (pol_state_record_attestation(F.cfg.state_dir, &a, &err) != 0)
        ck_abort_msg("attestation: %s", err.msg);
}

/* ---- Requests ---- */

static const char ef_config_xml[] = "<device><fullConfig>true</fullConfig></device>\n";

static inline struct sgn_request ef_sign_request(const void *data, size_t len, const char *filename)
{
    return (struct sgn_request){.op = POL_OP_SIGN, .filename = filename, .data = data, .len = len};
}

/* build's usual certificates: both token keys as SAST. */
static const struct sgn_cert_arg ef_build_certs[] = {
    {.function = ITL_ROLE_SAST, .token_label = EF_TFTP},
    {.function = ITL_ROLE_SAST, .token_label = EF_RECOVERY},
};

static inline struct sgn_request ef_build_request(void)
{
    return (struct sgn_request){.op = POL_OP_BUILD, .certs = ef_build_certs, .n_certs = 2};
}

/* An ITL holding both keys as SAST, built by the engine (the test's first audit record). The
 * caller frees it. */
static inline uint8_t *ef_make_itl(size_t *len)
{
    struct sgn_request req = ef_build_request();
    uint8_t *itl;

    ef_run(&req);
    ck_assert_msg(F.r.status == SGN_OK, "build: %s", F.r.message);
    itl = F.r.out;
    *len = F.r.out_len;
    F.r.out = NULL;
    F.r.out_len = 0;
    return itl;
}

static inline int ef_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    ef_world_setup();
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(ef_w.phone_der);
    free(ef_w.phone_key_der);
    testlib_sh("rm -rf '%s' '%s'", ef_w.dir, ef_w.tt.dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
