/* SPDX-License-Identifier: MIT */
/* pkcs11: the sign-only key template and what happens on tokens that refuse parts of it, or a
 * private key from outside, played by tests/faultp11 in front of SoftHSM2. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pkcs11/internal.h"
#include "tests/unit/testlib.h"

static char fault_module[PATH_MAX];

/* A SoftHSM2 token behind the fault module with this schedule, logged in. */
static struct tok *open_faulty(const char *label, const char *rules, struct testlib_token *tt)
{
    char rel[600], schedule[700];
    struct tok_options o = {0};
    struct tok_pin pin;
    struct itl_error err;
    struct tok *t;

    testlib_make_token(label, tt);
    snprintf(rel, sizeof rel, "%s/tests/libfaultp11.so", testlib_build());
    ck_assert_msg(realpath(rel, fault_module) != NULL, "%s: %s (make all builds it)", rel,
                  strerror(errno));
    snprintf(schedule, sizeof schedule, "%s/faults", tt->dir);
    testlib_write(schedule, rules, strlen(rules));
    setenv("FAULTP11_CONTROL", schedule, 1);
    setenv("FAULTP11_MODULE", tt->module, 1);
    o.module = fault_module;
    o.uri = tt->uri;
    if (tok_open(&o, &t, &err) != 0)
        ck_abort_msg("tok_open: %s", err.msg);
    ck_assert_int_eq(tok_pin_from_file(tt->pin_file, &pin, &err), 0);
    if (tok_login(t, &pin, &err) != 0)
        ck_abort_msg("tok_login: %s", err.msg);
    tok_pin_wipe(&pin);
    return t;
}

static void generate(struct tok *t, const char *label, struct tok_generate_report *r)
{
    struct tok_generate_opts o = {
        .label = label, .subject = "CN=keygen-test", .bits = 2048, .days = 10, .report = r};
    struct itl_error err;
    uint8_t *der;
    size_t len;

    if (tok_generate(t, &o, &der, &len, &err) != 0)
        ck_abort_msg("tok_generate: %s", err.msg);
    free(der);
}

/* The token refuses the first template (as tpm2-pkcs11 does with CKR_GENERAL_ERROR): generated
 * again without the "false" uses, which are then switched off where the token lets us. */
START_TEST(test_refused_template_retried)
{
    struct testlib_token tt;
    struct tok *t = open_faulty("itl-kg-retry",
                                "C_GenerateKeyPair after 0 count 1 rv CKR_GENERAL_ERROR\n", &tt);
    struct tok_generate_report r;

    generate(t, "K", &r);
    ck_assert_int_eq(r.template_reduced, 1);
    ck_assert_uint_eq(r.refused_rv, CKR_GENERAL_ERROR);
    ck_assert_int_eq(tok_usage_sign_only(&r.usage), 1); /* SoftHSM2 lets us switch them off */
    tok_close(t);
}
END_TEST

/* ... and a token that will not switch them off either: the report says what the key can do. */
START_TEST(test_refused_template_reports_usage)
{
    struct testlib_token tt;
    struct tok *t =
        open_faulty("itl-kg-usage",
                    "C_GenerateKeyPair after 0 count 1 rv CKR_ATTRIBUTE_VALUE_INVALID\n"
                    "C_SetAttributeValue always rv 0x10\n" /* CKR_ATTRIBUTE_READ_ONLY */,
                    &tt);
    struct tok_generate_report r;
    struct tok_key_info info;
    struct itl_error err;
    char text[64];

    generate(t, "K", &r);
    ck_assert_int_eq(r.template_reduced, 1);
    ck_assert_int_eq(r.usage.sign, 1);
    ck_assert_int_eq(r.usage.decrypt, 1); /* SoftHSM2's default */
    ck_assert_int_eq(tok_usage_sign_only(&r.usage), 0);
    ck_assert_int_eq(tok_key_attributes(t, "K", &info, &err), 0);
    tok_usage_text(&info.usage, 1, text, sizeof text);
    ck_assert_msg(strstr(text, "sign,decrypt") == text, "%s", text);
    tok_close(t);
}
END_TEST

/* Refused both times: the error says so, and nothing is left on the token. */
START_TEST(test_refused_twice_is_an_error)
{
    struct testlib_token tt;
    struct tok *t =
        open_faulty("itl-kg-fail", "C_GenerateKeyPair always rv CKR_TEMPLATE_INCONSISTENT\n", &tt);
    struct tok_generate_opts o = {.label = "K", .subject = "CN=x", .bits = 2048};
    struct tok_key_info *keys;
    struct itl_error err;
    uint8_t *der;
    size_t len, n;

    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), -1);
    ck_assert_msg(strstr(err.msg, "refused with the sign-only template and without it") &&
                      strstr(err.msg, "CKR_TEMPLATE_INCONSISTENT"),
                  "%s", err.msg);
    ck_assert_int_eq(tok_list_keys(t, &keys, &n, &err), 0);
    ck_assert_uint_eq(n, 0);
    free(keys);
    tok_close(t);
}
END_TEST

/* A token that refuses C_CreateObject of a private key (tpm2-pkcs11): a plain message naming the
 * token and the way out, a usage error (not "the token is broken"), nothing left behind. */
START_TEST(test_import_refused_names_the_way_out)
{
    struct testlib_token tt;
    struct tok *t =
        open_faulty("itl-kg-import", "C_CreateObject always rv CKR_ATTRIBUTE_VALUE_INVALID\n", &tt);
    const char *dir = testlib_tmpdir("kg-import");
    char path[700], pass_file[700];
    struct tok_pin pass;
    struct tok_import_report rep;
    struct tok_key_info *keys;
    struct itl_error err;
    uint8_t *p12;
    size_t len, n;

    testlib_make_cert(dir, "k", "/CN=ITLRECOVERY_test", 2048);
    snprintf(pass_file, sizeof pass_file, "%s/pass", dir);
    testlib_write(pass_file, "pw", 2);
    chmod(pass_file, 0600);
    ck_assert_int_eq(testlib_sh("openssl pkcs12 -export -inkey '%s/k.key.pem' -in '%s/k.pem' "
                                "-out '%s/k.p12' -passout 'file:%s' 2>/dev/null",
                                dir, dir, dir, pass_file),
                     0);
    snprintf(path, sizeof path, "%s/k.p12", dir);
    p12 = testlib_read(path, &len);
    ck_assert_int_eq(tok_pin_set(&pass, "pw", 2, &err), 0);
    ck_assert_int_eq(tok_import_p12(t, p12, len, &pass, "R", NULL, 0, &rep, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_msg(strstr(err.msg, "token 'itl-kg-import'") &&
                      strstr(err.msg, "does not accept a private key from outside") &&
                      strstr(err.msg, "itl-sign key generate") &&
                      strstr(err.msg, "tpm2_ptool import"),
                  "%s", err.msg);
    ck_assert_int_eq(tok_list_keys(t, &keys, &n, &err), 0);
    ck_assert_uint_eq(n, 0);
    free(keys);
    free(p12);
    tok_pin_wipe(&pass);
    tok_close(t);
}
END_TEST

/* The sign-only template as asked; then two keys with one label (made by another tool): refused
 * with both ids listed; the id chooses. (One test: every RSA key costs ~25 s under valgrind.) */
START_TEST(test_duplicate_label_chosen_by_id)
{
    struct testlib_token tt;
    struct tok *t = open_faulty("itl-kg-dup", "", &tt);
    static const uint8_t id_a[] = {0x0a, 0x0a}, id_b[] = {0x0b, 0x0b};
    struct tok_generate_report r;
    struct tok_generate_opts o = {
        .label = "Dup", .subject = "CN=a", .id = id_a, .id_len = 2, .report = &r};
    CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE};
    struct tok_key_info info;
    struct tok_key *k;
    struct itl_error err;
    uint8_t *der;
    size_t len;
    char text[64];

    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), 0);
    free(der);
    ck_assert_int_eq(r.template_reduced, 0);
    ck_assert_int_eq(r.usage.sign, 1);
    ck_assert_int_eq(r.usage.verify, 1);
    ck_assert_int_eq(r.usage.decrypt, 0);
    ck_assert_int_eq(r.usage.unwrap, 0);
    ck_assert_int_eq(r.usage.derive, 0);
    ck_assert_int_eq(r.usage.encrypt, 0);
    ck_assert_int_eq(r.usage.wrap, 0);
    ck_assert_int_eq(tok_usage_sign_only(&r.usage), 1);
    ck_assert_int_eq(tok_key_attributes(t, "Dup", &info, &err), 0); /* as key list reads it */
    tok_usage_text(&info.usage, 1, text, sizeof text);
    ck_assert_str_eq(text, "sign");
    tok_usage_text(&info.usage, 0, text, sizeof text);
    ck_assert_str_eq(text, "verify");
    o.report = NULL;
    o.label = "Other";
    o.subject = "CN=b";
    o.id = id_b;
    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), 0);
    free(der);
    /* relabel the second pair "Dup", as a vendor tool may leave it */
    for (size_t i = 0; i < 3; i++) {
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &classes[i], sizeof classes[i]},
                               {CKA_LABEL, "Other", 5}};
        CK_ATTRIBUTE label = {CKA_LABEL, "Dup", 3};
        CK_OBJECT_HANDLE *found;
        size_t n;
        ck_assert_int_eq(tok_find_objects(t, t->login_session, tmpl, 2, &found, &n, &err), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(t->mod->C_SetAttributeValue(t->login_session, found[0], &label, 1),
                          CKR_OK);
        free(found);
    }
    ck_assert_int_eq(tok_find_key(t, "Dup", &k, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_AMBIGUOUS);
    ck_assert_msg(strstr(err.msg, "2 private keys labelled 'Dup'") && strstr(err.msg, "0a0a") &&
                      strstr(err.msg, "0b0b") && strstr(err.msg, "keys.<role>.id"),
                  "%s", err.msg);
    ck_assert_int_eq(tok_find_key_id(t, "Dup", id_b, 2, &k, &err), 0);
    ck_assert_uint_eq(k->id_len, 2);
    ck_assert_mem_eq(k->id, id_b, 2);
    tok_key_free(k);
    ck_assert_int_eq(tok_find_key_id(t, "Dup", (const uint8_t *)"\x0c", 1, &k, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_NO_KEY);
    ck_assert_msg(strstr(err.msg, "with the configured CKA_ID"), "%s", err.msg);
    tok_close(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pkcs11_keygen");
    TCase *tc = tcase_create("keygen");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_refused_template_retried);
    tcase_add_test(tc, test_refused_template_reports_usage);
    tcase_add_test(tc, test_refused_twice_is_an_error);
    tcase_add_test(tc, test_import_refused_names_the_way_out);
    tcase_add_test(tc, test_duplicate_label_chosen_by_id);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
