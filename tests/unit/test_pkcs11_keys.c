/* SPDX-License-Identifier: MIT */
/* pkcs11: key import from .p12, on-token generation, list, export, attributes (SoftHSM2). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pkcs11/internal.h"
#include "tests/unit/testlib.h"

/* The subject the token layer read (DER), in RFC 2253 for comparison: the layer keeps the
 * bytes; tools print them with format/'s itl_name_der_str. */
static const char *subject_2253(const struct tok_key_info *k)
{
    static char out[512];
    const unsigned char *p = k->subject_der;
    X509_NAME *nm = d2i_X509_NAME(NULL, &p, (long)k->subject_der_len);
    BIO *bio = BIO_new(BIO_s_mem());
    int n = 0;

    out[0] = 0;
    if (nm && bio && X509_NAME_print_ex(bio, nm, 0, XN_FLAG_RFC2253) >= 0)
        n = BIO_read(bio, out, (int)sizeof out - 1);
    out[n > 0 ? n : 0] = 0;
    BIO_free(bio);
    X509_NAME_free(nm);
    return out;
}

static struct tok *open_logged_in(const char *label, struct testlib_token *tt, const char *uri)
{
    struct tok_options o = {0};
    struct tok_pin pin;
    struct itl_error err;
    struct tok *t;

    if (label)
        testlib_make_token(label, tt);
    o.module = tt->module;
    o.uri = uri ? uri : tt->uri;
    if (tok_open(&o, &t, &err) != 0)
        ck_abort_msg("tok_open: %s", err.msg);
    ck_assert_int_eq(tok_pin_from_file(tt->pin_file, &pin, &err), 0);
    if (tok_login(t, &pin, &err) != 0)
        ck_abort_msg("tok_login: %s", err.msg);
    tok_pin_wipe(&pin);
    return t;
}

/* dir/name.p12 protected by `pass` (given to openssl through a file, not argv). */
static void make_p12(const char *dir, const char *name, const char *pass, const char *extra)
{
    char pass_file[700];

    testlib_make_cert(dir, name, "/CN=ITLRECOVERY_test/O=itl-sign test", 2048);
    snprintf(pass_file, sizeof pass_file, "%s/%s.pass", dir, name);
    testlib_write(pass_file, pass, strlen(pass));
    chmod(pass_file, 0600);
    ck_assert_int_eq(testlib_sh("openssl pkcs12 -export %s -inkey '%s/%s.key.pem' -in '%s/%s.pem' "
                                "-out '%s/%s.p12' -passout 'file:%s' 2>/dev/null",
                                extra, dir, name, dir, name, dir, name, pass_file),
                     0);
}

static X509 *load_der(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    ck_assert_ptr_nonnull(x);
    return x;
}

START_TEST(test_import_p12)
{
    char dir[512];
    struct testlib_token tt;
    struct tok_import_report r;
    struct tok_key_info info;
    struct tok_pin pw;
    struct itl_error err;
    uint8_t *p12, *cert_der, *exported, want_id[20];
    size_t p12_len, cert_len, exported_len;
    unsigned want_len;
    char path[700];
    struct tok *t = open_logged_in("itl-import", &tt, NULL);
    X509 *x;

    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("p12"));
    make_p12(dir, "recovery", "p12:secret pass", "");
    snprintf(path, sizeof path, "%s/recovery.p12", dir);
    p12 = testlib_read(path, &p12_len);
    snprintf(path, sizeof path, "%s/recovery.der", dir);
    cert_der = testlib_read(path, &cert_len);
    ck_assert_int_eq(tok_pin_set(&pw, "p12:secret pass", 15, &err), 0);

    ck_assert_int_eq(tok_import_p12(t, p12, p12_len, &pw, "ITLRecovery", NULL, 0, &r, &err), 0);
    ck_assert_uint_eq(r.bits, 2048);
    /* the default id is the RFC 5280 key identifier of the certificate's key */
    x = load_der(cert_der, cert_len);
    ck_assert_int_eq(X509_pubkey_digest(x, EVP_sha1(), want_id, &want_len), 1);
    X509_free(x);
    ck_assert_uint_eq(r.id_len, 20);
    ck_assert_mem_eq(r.id, want_id, 20);
    /* imported: never LOCAL / ALWAYS_SENSITIVE / NEVER_EXTRACTABLE, and reported so */
    ck_assert_int_eq(r.local, 0);
    ck_assert_int_eq(r.always_sensitive, 0);
    ck_assert_int_eq(r.never_extractable, 0);

    ck_assert_int_eq(tok_key_attributes(t, "ITLRecovery", &info, &err), 0);
    ck_assert_int_eq(info.sensitive, 1);
    ck_assert_int_eq(info.extractable, 0);
    ck_assert_int_eq(info.local, 0);
    ck_assert_int_eq(info.has_private, 1);
    ck_assert_int_eq(info.has_public, 1);
    ck_assert_int_eq(info.has_cert, 1);
    ck_assert_str_eq(info.key_type, "RSA");
    ck_assert_uint_eq(info.bits, 2048);
    ck_assert_str_eq(subject_2253(&info), "O=itl-sign test,CN=ITLRECOVERY_test");

    ck_assert_int_eq(tok_export_cert(t, "ITLRecovery", &exported, &exported_len, &err), 0);
    ck_assert_uint_eq(exported_len, cert_len);
    ck_assert_mem_eq(exported, cert_der, cert_len);
    free(exported);

    /* never overwrite: the same label, or the same id under another label */
    ck_assert_int_eq(tok_import_p12(t, p12, p12_len, &pw, "ITLRecovery", NULL, 0, &r, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "already has 3 object(s) labelled 'ITLRecovery'"));
    ck_assert_int_eq(tok_import_p12(t, p12, p12_len, &pw, "Other", NULL, 0, &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "with id "));
    ck_assert_int_eq(
        tok_import_p12(t, p12, p12_len, &pw, "Other", (const uint8_t *)"\x01\x02", 2, &r, &err), 0);
    ck_assert_uint_eq(r.id_len, 2);

    tok_pin_wipe(&pw);
    free(p12);
    free(cert_der);
    tok_close(t);
}
END_TEST

START_TEST(test_import_bad_input)
{
    char dir[512];
    struct testlib_token tt;
    struct tok_import_report r;
    struct tok_pin pw;
    struct itl_error err;
    uint8_t *p12;
    size_t p12_len;
    char path[700];
    struct tok *t = open_logged_in("itl-import-bad", &tt, NULL);
    struct tok_key_info *keys;
    size_t n;

    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("p12"));
    make_p12(dir, "k", "right", "");
    snprintf(path, sizeof path, "%s/k.p12", dir);
    p12 = testlib_read(path, &p12_len);
    ck_assert_int_eq(tok_pin_set(&pw, "wrong", 5, &err), 0);
    ck_assert_int_eq(tok_import_p12(t, p12, p12_len, &pw, "K", NULL, 0, &r, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_INPUT); /* exit 3, not 2: itl-sign(1) EXIT STATUS */
    ck_assert_ptr_nonnull(strstr(err.msg, "wrong password for the .p12"));
    ck_assert_int_eq(tok_import_p12(t, (const uint8_t *)"junk", 4, &pw, "K", NULL, 0, &r, &err),
                     -1);
    ck_assert_int_eq(err.cls, ITL_E_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a PKCS#12"));
    ck_assert_int_eq(tok_import_p12(t, p12, p12_len, &pw, "", NULL, 0, &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "label"));
    /* nothing was left behind */
    ck_assert_int_eq(tok_list_keys(t, &keys, &n, &err), 0);
    ck_assert_uint_eq(n, 0);
    free(keys);
    tok_pin_wipe(&pw);
    free(p12);
    tok_close(t);
}
END_TEST

/* CUCM / Java keystores can use RC2-40 and 3DES PBEs: OpenSSL 3's legacy provider. */
START_TEST(test_import_legacy_p12)
{
    char dir[512];
    struct testlib_token tt;
    struct tok_import_report r;
    struct tok_pin pw;
    struct itl_error err;
    uint8_t *p12;
    size_t p12_len;
    char path[700];
    struct tok *t = open_logged_in("itl-import-legacy", &tt, NULL);

    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("p12"));
    make_p12(dir, "old", "cisco123", "-legacy");
    snprintf(path, sizeof path, "%s/old.p12", dir);
    p12 = testlib_read(path, &p12_len);
    ck_assert_int_eq(tok_pin_set(&pw, "cisco123", 8, &err), 0);
    if (tok_import_p12(t, p12, p12_len, &pw, "Legacy", NULL, 0, &r, &err) != 0)
        ck_abort_msg("legacy import: %s", err.msg);
    ck_assert_uint_eq(r.bits, 2048);
    tok_pin_wipe(&pw);
    free(p12);
    tok_close(t);
}
END_TEST

START_TEST(test_generate)
{
    struct testlib_token tt;
    struct tok *t = open_logged_in("itl-gen", &tt, NULL);
    const uint8_t id[] = {0xde, 0xad, 0xbe, 0xef};
    struct tok_generate_opts o = {.label = "ITLRecovery",
                                  .subject = "CN=ITLRECOVERY_pub,OU=VTG,O=Cisco\\, Inc.,C=US",
                                  .bits = 2048,
                                  .days = 10,
                                  .id = id,
                                  .id_len = sizeof id,
                                  .now = 1700000000};
    struct tok_key_info info;
    struct itl_error err;
    uint8_t *der, *exported;
    size_t len, exported_len;
    X509 *x;
    EVP_PKEY *pub;
    BIGNUM *serial;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    char subject[256];
    const X509_NAME_ENTRY *first;
    struct tm tm;

    if (tok_generate(t, &o, &der, &len, &err) != 0)
        ck_abort_msg("tok_generate: %s", err.msg);
    x = load_der(der, len);
    pub = X509_get0_pubkey(x);
    ck_assert_int_eq(X509_verify(x, pub), 1); /* signed by the token key itself */
    ck_assert_int_eq(EVP_PKEY_get_bits(pub), 2048);
    ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
    ck_assert_int_eq(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
    ck_assert_str_eq(subject, "/CN=ITLRECOVERY_pub/OU=VTG/O=Cisco, Inc./C=US");
    ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    first = X509_NAME_get_entry(X509_get_subject_name(x), 0);
    ck_assert_int_eq(OBJ_obj2nid(X509_NAME_ENTRY_get_object(first)),
                     NID_commonName); /* CN first, as CUCM */
    serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    ck_assert_int_eq(BN_num_bytes(serial), 16);
    ck_assert(!BN_is_negative(serial));
    BN_free(serial);
    ck_assert_int_eq(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm), 1);
    ck_assert_int_eq(timegm(&tm), 1700000000);
    ck_assert_int_eq(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
    ck_assert_int_eq(timegm(&tm), 1700000000 + 10 * 86400);
    bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
    ck_assert_ptr_nonnull(bc);
    ck_assert(bc->ca);
    BASIC_CONSTRAINTS_free(bc);
    ku = X509_get_ext_d2i(x, NID_key_usage, NULL, NULL);
    ck_assert_ptr_nonnull(ku);
    ck_assert(ASN1_BIT_STRING_get_bit(ku, 0)); /* digitalSignature */
    ck_assert(ASN1_BIT_STRING_get_bit(ku, 5)); /* keyCertSign */
    ck_assert(!ASN1_BIT_STRING_get_bit(ku, 2));
    ASN1_BIT_STRING_free(ku);
    ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
    X509_free(x);

    /* generated on the token: every protection attribute holds */
    ck_assert_int_eq(tok_key_attributes(t, "ITLRecovery", &info, &err), 0);
    ck_assert_int_eq(info.local, 1);
    ck_assert_int_eq(info.always_sensitive, 1);
    ck_assert_int_eq(info.never_extractable, 1);
    ck_assert_int_eq(info.sensitive, 1);
    ck_assert_int_eq(info.extractable, 0);
    ck_assert_uint_eq(info.id_len, 4);
    ck_assert_mem_eq(info.id, id, 4);
    ck_assert_int_eq(info.has_cert, 1);
    ck_assert_int_eq(info.not_after - info.not_before, 10 * 86400);
    ck_assert_str_eq(subject_2253(&info),
                     "C=US,O=Cisco\\, Inc.,OU=VTG,CN=ITLRECOVERY_pub"); /* RFC 2253 */

    ck_assert_int_eq(tok_export_cert(t, "ITLRecovery", &exported, &exported_len, &err), 0);
    ck_assert_uint_eq(exported_len, len);
    ck_assert_mem_eq(exported, der, len);
    free(exported);
    free(der);

    /* the label is taken now */
    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "labelled 'ITLRecovery'"));
    tok_close(t);
}
END_TEST

START_TEST(test_generate_refuses_bad_options)
{
    struct testlib_token tt;
    struct tok *t = open_logged_in("itl-gen-bad", &tt, NULL);
    struct tok_generate_opts o = {.label = "K", .subject = "CN=x", .bits = 1024};
    struct itl_error err;
    uint8_t *der;
    size_t len;
    struct tok_key_info *keys;
    size_t n;

    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "2048, 3072 or 4096"));
    o.bits = 2048;
    o.subject = "CN=x,OU";
    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "subject component 2 ('OU') is not KEY=VALUE"));
    o.subject = "CN=x,XYZ=y";
    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'XYZ' is not a name attribute"));
    o.subject = "";
    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_int_eq(tok_list_keys(t, &keys, &n, &err), 0);
    ck_assert_uint_eq(n, 0);
    free(keys);
    tok_close(t);
}
END_TEST

START_TEST(test_list_keys)
{
    char dir[512];
    struct testlib_token tt;
    struct tok *t = open_logged_in("itl-list", &tt, NULL);
    struct tok_generate_opts o = {.label = "CallManager", .subject = "CN=cucm-pub,O=Cisco"};
    struct tok_import_report r;
    struct tok_key_info *keys;
    struct tok_pin pw;
    struct itl_error err;
    uint8_t *der, *p12;
    size_t len, p12_len, n;
    char path[700], uri[300];

    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("p12"));
    make_p12(dir, "rec", "pw", "");
    snprintf(path, sizeof path, "%s/rec.p12", dir);
    p12 = testlib_read(path, &p12_len);
    ck_assert_int_eq(tok_pin_set(&pw, "pw", 2, &err), 0);
    ck_assert_int_eq(tok_import_p12(t, p12, p12_len, &pw, "ITLRecovery", NULL, 0, &r, &err), 0);
    ck_assert_int_eq(tok_generate(t, &o, &der, &len, &err), 0);
    free(der);

    ck_assert_int_eq(tok_list_keys(t, &keys, &n, &err), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(keys[0].label, "CallManager"); /* sorted by label */
    ck_assert_int_eq(keys[0].local, 1);
    ck_assert_int_eq(keys[0].never_extractable, 1);
    ck_assert_str_eq(subject_2253(&keys[0]), "O=Cisco,CN=cucm-pub");
    ck_assert_uint_eq(keys[0].id_len, 16); /* random id */
    ck_assert_str_eq(keys[1].label, "ITLRecovery");
    ck_assert_int_eq(keys[1].local, 0);
    ck_assert_int_eq(keys[1].always_sensitive, 0);
    ck_assert_int_eq(keys[1].sensitive, 1);
    ck_assert_int_eq(keys[1].extractable, 0);
    ck_assert_uint_eq(keys[1].bits, 2048);
    ck_assert_int_eq(keys[1].has_cert_sha256, 1);
    ck_assert_mem_eq(keys[1].cert_sha256, r.cert_sha256, 32);
    ck_assert_int_gt(keys[1].not_after, keys[1].not_before);
    ck_assert_uint_gt(strlen(keys[1].serial_hex), 0);
    free(keys);
    tok_close(t);

    /* object= in the token URI narrows the list */
    ck_assert_int_lt(snprintf(uri, sizeof uri, "%s;object=ITLRecovery", tt.uri), (int)sizeof uri);
    t = open_logged_in(NULL, &tt, uri);
    ck_assert_int_eq(tok_list_keys(t, &keys, &n, &err), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(keys[0].label, "ITLRecovery");
    free(keys);
    tok_close(t);
    tok_pin_wipe(&pw);
    free(p12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pkcs11_keys");
    TCase *tc = tcase_create("keys");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_import_p12);
    tcase_add_test(tc, test_import_bad_input);
    tcase_add_test(tc, test_import_legacy_p12);
    tcase_add_test(tc, test_generate);
    tcase_add_test(tc, test_generate_refuses_bad_options);
    tcase_add_test(tc, test_list_keys);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
