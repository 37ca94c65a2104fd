/* SPDX-License-Identifier: MIT */
/* Encrypted configuration (.enc.sgn) build -> parse -> decrypt, and the short companion XML. */
#include "tests/unit/test_format_util.h"

#include <openssl/ec.h>

static struct tf_key tftp, phone, other;
static const struct itl_enc_keys keys = {{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                          0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
                                         {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
                                          0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf}};
static const struct itl_sgn_opts opts = {"SEP001122334455.cnf.xml.enc.sgn", 1700000000,
                                         ITL_ORDER_NAME_SERIAL_ISSUER, ITL_NAMES_CUCM, NULL};

static void setup(void)
{
    tf_make_key(&tftp, 2048, "/CN=cucm-pub/O=Example", 0x10);
    tf_make_key(&phone, 2048, "/CN=CP-8845-SEP001122334455/O=Cisco", 0x20);
    tf_make_key(&other, 1024, "/CN=CP-8845-SEP665544332211/O=Cisco", 0x30);
}

static void teardown(void)
{
    tf_free_key(&tftp);
    tf_free_key(&phone);
    tf_free_key(&other);
}

static uint8_t *key_der(const struct tf_key *k, int pkcs8, size_t *len)
{
    unsigned char *der = NULL;
    int n;

    if (pkcs8) {
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k->pk);
        n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
        PKCS8_PRIV_KEY_INFO_free(p8);
    } else {
        n = i2d_PrivateKey(k->pk, &der); /* PKCS#1 RSAPrivateKey */
    }
    ck_assert_int_gt(n, 0);
    *len = (size_t)n;
    return der;
}

static const struct itl_tlv *header_tlv(const struct itl_file *f, uint8_t tag)
{
    for (size_t i = 0; i < f->hdr.n_tlvs; i++)
        if (f->hdr.tlvs[i].tag == tag)
            return &f->hdr.tlvs[i];
    return NULL;
}

/* AES-128-CBC decryption done here, not by the codec. */
static void check_ciphertext(const struct itl_file *f, const uint8_t *plain, size_t len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t *out = malloc(f->payload.len + 16);
    int n = 0, fin = 0;
    size_t pad = 16 - len % 16;

    ck_assert_int_eq(EVP_DecryptInit_ex(c, EVP_aes_128_cbc(), NULL, keys.aes_key, keys.iv), 1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    ck_assert_int_eq(EVP_DecryptUpdate(c, out, &n, f->payload.ptr, (int)f->payload.len), 1);
    ck_assert_int_eq(EVP_DecryptFinal_ex(c, out + n, &fin), 1);
    ck_assert_uint_eq((size_t)(n + fin), len + pad);
    if (len)
        ck_assert_mem_eq(out, plain, len);
    for (size_t i = 0; i < pad; i++)
        ck_assert_uint_eq(out[len + i], 0x0d);
    EVP_CIPHER_CTX_free(c);
    free(out);
}

START_TEST(test_round_trip_lengths)
{
    static const size_t lengths[] = {0, 1, 15, 16, 17, 550001};
    size_t pk1_len, pk8_len;
    uint8_t *pk1 = key_der(&phone, 0, &pk1_len), *pk8 = key_der(&phone, 1, &pk8_len);

    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        size_t len = lengths[i], out_len, plain_len, pad = 16 - len % 16;
        uint8_t *xml = malloc(len + 1), *out, *plain;
        int digest = i % 2 ? ITL_DIGEST_SHA512 : ITL_DIGEST_SHA1;
        struct itl_signer s = tf_signer(&tftp, digest);
        struct itl_error err = {0};
        struct itl_file f;
        uint8_t md[64];

        for (size_t j = 0; j < len; j++)
            xml[j] = (uint8_t)("<device>abc</device>\n"[j % 21]);
        ck_assert_msg(itl_build_enc_sgn(xml, len, phone.der, phone.der_len, &keys, &opts, &s, &out,
                                        &out_len, &err) == 0,
                      "length %zu: %s", len, err.msg);
        tf_parse_ok(out, out_len, ITL_KIND_AUTO, &f);
        ck_assert_int_eq(f.kind, ITL_KIND_ENC_SGN);
        ck_assert_uint_eq(f.hdr.version_major, 2);
        ck_assert_uint_eq(f.hdr.version_minor, 0);
        ck_assert_uint_eq(f.hdr.header_length % 4, 0);
        ck_assert_int_eq(f.hdr.enc.present, 1);
        ck_assert_uint_eq(f.hdr.enc.unknown1, 0);
        ck_assert_mem_eq(f.hdr.enc.iv.ptr, keys.iv, 16);
        ck_assert_uint_eq(f.hdr.enc.padding, pad);
        ck_assert_uint_eq(f.hdr.enc.unknown2, 0);
        ck_assert_uint_eq(f.hdr.enc.key_size_bits, 2048);
        ck_assert_uint_eq(f.hdr.enc.key_algorithm, 1);
        ck_assert_uint_eq(f.hdr.enc.wrapped_key.len, 256);
        ck_assert_int_eq(f.hdr.enc.hash_algorithm, digest);
        EVP_Digest(xml, len, md, NULL, EVP_get_digestbynid(itl_digest_nid(digest)), NULL);
        ck_assert_uint_eq(f.hdr.enc.hash.len, digest == ITL_DIGEST_SHA1 ? 20 : 64);
        ck_assert_mem_eq(f.hdr.enc.hash.ptr, md, f.hdr.enc.hash.len);
        /* container sizes of format.md section 9: 17 = 28, 21 = 16 + W, 16 = 50 + W */
        ck_assert_uint_eq(header_tlv(&f, 17)->value.len, 28);
        ck_assert_uint_eq(header_tlv(&f, 21)->value.len, 16 + 256);
        ck_assert_uint_eq(header_tlv(&f, 16)->value.len, 50 + 256);
        ck_assert_uint_eq(f.payload.len, len + pad);
        check_ciphertext(&f, xml, len);
        ck_assert_msg(itl_verify_with_cert(&f, tftp.der, tftp.der_len, &err) == 0, "%s", err.msg);
        ck_assert_msg(itl_decrypt_enc_sgn(&f, i % 2 ? pk8 : pk1, i % 2 ? pk8_len : pk1_len, &plain,
                                          &plain_len, &err) == 0,
                      "length %zu: %s", len, err.msg);
        ck_assert_uint_eq(plain_len, len);
        if (len)
            ck_assert_mem_eq(plain, xml, len);
        free(plain);
        itl_file_free(&f);
        free(out);
        free(xml);
    }
    OPENSSL_free(pk1);
    OPENSSL_free(pk8);
}
END_TEST

START_TEST(test_decrypt_failures)
{
    static const char xml[] = "<device><fullConfig>true</fullConfig></device>\n";
    struct itl_signer s = tf_signer(&tftp, ITL_DIGEST_SHA1);
    struct itl_error err = {0};
    struct itl_file f;
    uint8_t *out, *plain = NULL, *wrong;
    size_t out_len, plain_len, wrong_len, right_len;
    uint8_t *right = key_der(&phone, 0, &right_len);

    ck_assert_int_eq(itl_build_enc_sgn((const uint8_t *)xml, strlen(xml), phone.der, phone.der_len,
                                       &keys, &opts, &s, &out, &out_len, &err),
                     0);
    /* another phone's key */
    wrong = key_der(&other, 0, &wrong_len);
    tf_parse_ok(out, out_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_decrypt_enc_sgn(&f, wrong, wrong_len, &plain, &plain_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot unwrap ENCRYPTIONKEY"));
    ck_assert_int_ne(itl_decrypt_enc_sgn(&f, (const uint8_t *)"junk", 4, &plain, &plain_len, &err),
                     0);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a DER private key"));
    itl_file_free(&f);

    /* a changed ciphertext block: the signature fails and the plaintext check catches it */
    out[out_len - 20] ^= 1;
    tf_parse_ok(out, out_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_verify_with_cert(&f, tftp.der, tftp.der_len, &err), 0);
    ck_assert_int_ne(itl_decrypt_enc_sgn(&f, right, right_len, &plain, &plain_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "wrong key or damaged file"));
    itl_file_free(&f);
    out[out_len - 20] ^= 1;

    /* a ciphertext that is not whole AES blocks */
    tf_parse_fails(out, out_len - 1, ITL_KIND_AUTO, "not a positive multiple of the AES block");
    /* a .sgn is not encrypted */
    {
        struct itl_file g;
        uint8_t *sgn;
        size_t sgn_len;
        struct itl_sgn_opts so = opts;
        so.filename = "SEP001122334455.cnf.xml.sgn";
        ck_assert_int_eq(
            itl_build_sgn((const uint8_t *)xml, strlen(xml), &so, &s, &sgn, &sgn_len, &err), 0);
        tf_parse_ok(sgn, sgn_len, ITL_KIND_AUTO, &g);
        ck_assert_int_ne(itl_decrypt_enc_sgn(&g, right, right_len, &plain, &plain_len, &err), 0);
        ck_assert_ptr_nonnull(strstr(err.msg, "not encrypted"));
        itl_file_free(&g);
        free(sgn);
    }
    free(out);
    OPENSSL_free(wrong);
    OPENSSL_free(right);
}
END_TEST

START_TEST(test_ec_phone_refused)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    unsigned char *der = NULL;
    int n;
    struct itl_signer s = tf_signer(&tftp, ITL_DIGEST_SHA1);
    struct itl_error err = {0};
    uint8_t *out = NULL;
    size_t out_len;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 5);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"ec", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, ec);
    X509_sign(x, ec, EVP_sha256());
    n = i2d_X509(x, &der);
    ck_assert_int_gt(n, 0);
    ck_assert_int_ne(itl_build_enc_sgn((const uint8_t *)"<device/>", 9, der, (size_t)n, &keys,
                                       &opts, &s, &out, &out_len, &err),
                     0);
    ck_assert_ptr_nonnull(strstr(err.msg, "can only be wrapped to an RSA key"));
    ck_assert_ptr_null(out);
    /* and an EC signer cannot sign a trust file */
    s = (struct itl_signer){.cert_der = der,
                            .cert_len = (size_t)n,
                            .digest = ITL_DIGEST_SHA1,
                            .sign = tf_sign,
                            .ctx = ec};
    ck_assert_int_ne(itl_build_sgn((const uint8_t *)"x", 1, &opts, &s, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "key is not RSA"));
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(ec);
}
END_TEST

static void md5_hex(const struct tf_key *k, char out[33])
{
    uint8_t md[16];
    EVP_Digest(k->der, k->der_len, md, NULL, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

START_TEST(test_short_config)
{
    static const char xml[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!-- <loadInformation>not this</loadInformation> -->\n"
        "<device xsi:type=\"axl:XIPPhone\" ctiid=\"5\">\n"
        "  <fullConfig>true</fullConfig>\n"
        "  <deviceProtocol>SIP</deviceProtocol>\n"
        "  <ipAddressMode>0</ipAddressMode>\n"
        "  <devicePool><name "
        "attr=\"a>b\">Default</name><ipAddressMode>9</ipAddressMode></devicePool>\n"
        "  <loadInformation model=\"Cisco 8845\">sip88xx.14-2-1-0201-60</loadInformation>\n"
        "  <capfAuthMode>0</capfAuthMode>\n"
        "  <capfList>\n    <capf>\n      <phonePort>3804</phonePort>\n    </capf>\n  </capfList>\n"
        "  <![CDATA[ <capfAuthMode>1</capfAuthMode> ]]>\n"
        "</device>\n";
    char hash[33], want[2048], *out;
    size_t out_len;
    struct itl_error err = {0};

    md5_hex(&phone, hash);
    snprintf(want, sizeof want,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<device>\n"
             "  <fullConfig>false</fullConfig>\n"
             "  <ipAddressMode>0</ipAddressMode>\n"
             "  <loadInformation model=\"Cisco 8845\">sip88xx.14-2-1-0201-60</loadInformation>\n"
             "  <capfAuthMode>0</capfAuthMode>\n"
             "  <capfList>\n    <capf>\n      <phonePort>3804</phonePort>\n    </capf>\n  "
             "</capfList>\n"
             "  <certHash>%s</certHash>\n  <encrConfig>true</encrConfig>\n</device>\n",
             hash);
    ck_assert_msg(itl_short_config((const uint8_t *)xml, strlen(xml), phone.der, phone.der_len,
                                   &out, &out_len, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(out, want);
    ck_assert_uint_eq(out_len, strlen(want));
    free(out);
}
END_TEST

START_TEST(test_short_config_missing_and_bad)
{
    char hash[33], want[512], *out = NULL;
    size_t out_len;
    struct itl_error err = {0};

    md5_hex(&phone, hash);
    snprintf(want, sizeof want,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<device>\n"
             "  <fullConfig>false</fullConfig>\n  <capfAuthMode/>\n"
             "  <certHash>%s</certHash>\n  <encrConfig>true</encrConfig>\n</device>\n",
             hash);
    ck_assert_int_eq(itl_short_config((const uint8_t *)"<device><capfAuthMode/></device>", 32,
                                      phone.der, phone.der_len, &out, &out_len, &err),
                     0);
    ck_assert_str_eq(out, want);
    free(out);
    ck_assert_int_ne(itl_short_config((const uint8_t *)"<phone></phone>", 15, phone.der,
                                      phone.der_len, &out, &out_len, &err),
                     0);
    ck_assert_ptr_nonnull(strstr(err.msg, "root element is not <device>"));
    ck_assert_int_ne(itl_short_config((const uint8_t *)"<device><a", 10, phone.der, phone.der_len,
                                      &out, &out_len, &err),
                     0);
    ck_assert_str_eq(err.msg, "offset 8 of the configuration: unterminated tag");
    ck_assert_int_ne(
        itl_short_config((const uint8_t *)"", 0, phone.der, phone.der_len, &out, &out_len, &err),
        0);
    ck_assert_ptr_nonnull(strstr(err.msg, "no <device> element"));
    ck_assert_int_ne(itl_short_config((const uint8_t *)"<device/>", 9, (const uint8_t *)"x", 1,
                                      &out, &out_len, &err),
                     0);
    ck_assert_ptr_nonnull(strstr(err.msg, "phone certificate"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_enc");
    TCase *tc = tcase_create("enc");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip_lengths);
    tcase_add_test(tc, test_decrypt_failures);
    tcase_add_test(tc, test_ec_phone_refused);
    tcase_add_test(tc, test_short_config);
    tcase_add_test(tc, test_short_config_missing_and_bad);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
