/* SPDX-License-Identifier: MIT */
/*
 * An ITL in CUCM's layout (format.md section 6, seeds' `show itl` dumps), written by hand here
 * rather than by the builder: 4,5,6 signer info, ';' names, DNSNAME, records in tag order,
 * CAPF/TVS records with CERTHASH + HASH ALGORITHM and no CERTIFICATE, a TVS record without
 * tag 8, a 33-byte non-secure placeholder, 3 bytes of padding. Parsed, verified, re-signed.
 */
#include "tests/unit/test_format_util.h"

static struct tf_key pub, rec, capf;
static struct tf_buf file;
static size_t placeholder_at;

static void cert_parts(const struct tf_key *k, uint8_t **pubkey, size_t *pub_len,
                       const uint8_t **sig, size_t *sig_len, uint8_t serial[16], size_t *sn)
{
    const unsigned char *p = k->der;
    X509 *x = d2i_X509(NULL, &p, (long)k->der_len);
    const ASN1_BIT_STRING *bs;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    int n;

    *pubkey = NULL;
    n = i2d_PublicKey(X509_get0_pubkey(x), pubkey);
    ck_assert_int_gt(n, 0);
    *pub_len = (size_t)n;
    X509_get0_signature(&bs, NULL, x);
    *sig = memmem(k->der, k->der_len, ASN1_STRING_get0_data(bs), (size_t)ASN1_STRING_length(bs));
    *sig_len = (size_t)ASN1_STRING_length(bs);
    *sn = (size_t)BN_bn2bin(bn, serial);
    BN_free(bn);
    X509_free(x);
}

/* with_cert 0: CERTHASH + HASH ALGORITHM instead of CERTIFICATE; with_sig 0: no tag 8. */
static void add_record(struct tf_buf *b, const struct tf_key *k, const char *name,
                       uint16_t function, int with_sig, int with_cert, const char *dns)
{
    size_t at = b->len;
    uint8_t *pk, serial[16], md[20];
    const uint8_t *sig;
    size_t pk_len, sig_len, sn;

    cert_parts(k, &pk, &pk_len, &sig, &sig_len, serial, &sn);
    tf_tlv_u16(b, 1, 0);
    tf_tlv_str(b, 2, dns);
    tf_tlv_str(b, 3, name);
    tf_tlv_u16(b, 4, function);
    tf_tlv_str(b, 5, name);
    tf_tlv(b, 6, serial, sn);
    tf_tlv(b, 7, pk, pk_len);
    if (with_sig)
        tf_tlv(b, 8, sig, sig_len);
    if (with_cert) {
        tf_tlv(b, 9, k->der, k->der_len);
    } else {
        EVP_Digest(k->der, k->der_len, md, NULL, EVP_sha1(), NULL);
        tf_tlv(b, 11, md, 20);
        tf_tlv_u8(b, 12, 1);
    }
    tf_set_u16(b->p + at + 3, (uint16_t)(b->len - at));
    OPENSSL_free(pk);
}

static void setup(void)
{
    static const char pub_name[] = "CN=cucm-1051-a-pub;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL";
    static struct tf_buf head, tail, body;
    uint8_t *pk, serial[16], sig[256], md[20];
    const uint8_t *cs;
    size_t pk_len, cs_len, sn, sig_len = sizeof sig, c, c2;
    EVP_PKEY_CTX *pc;

    tf_make_key(&pub, 1024, "/C=PL/ST=Malopolska/L=Krakow/O=Cisco/OU=TAC/CN=cucm-1051-a-pub",
                0x83e908);
    tf_make_key(&rec, 2048, "/O=Cisco/OU=TAC/CN=ITLRECOVERY_cucm-1051-a-pub", 0x6e3f65c2);
    tf_make_key(&capf, 1024, "/O=Cisco/OU=TAC/CN=CAPF-75638ad9", 0x42bf3777);
    cert_parts(&pub, &pk, &pk_len, &cs, &cs_len, serial, &sn);
    OPENSSL_free(pk);

    head.len = tail.len = body.len = 0;
    tf_tlv(&head, 1, "\x01\x02", 2);
    tf_tlv_u16(&head, 2, 0);
    c = tf_open(&head, 3);
    tf_tlv_str(&head, 4, pub_name);
    tf_tlv(&head, 5, serial, sn);
    tf_tlv_str(&head, 6, pub_name);
    tf_close(&head, c);
    c = tf_open(&head, 7);
    tf_tlv_u8(&head, 8, 1);
    c2 = tf_open(&head, 9);
    tf_tlv_u8(&head, 10, 0);
    tf_tlv_u8(&head, 11, 1);
    tf_close(&head, c2);
    tf_close(&head, c);
    tf_tlv_str(&tail, 14, "ITLFile.tlv");
    tf_tlv(&tail, 15, "\x53\x00\x00\x00", 4);
    while ((head.len + tail.len + 3 + 128) % 4)
        tf_u8(&tail, 13);

    add_record(&body, &pub, pub_name, ITL_ROLE_SAST, 1, 1, "");
    add_record(&body, &pub, pub_name, ITL_ROLE_CCM_TFTP, 1, 1, "cucm-1051-a-pub");
    add_record(&body, &capf, "CN=CAPF-75638ad9;OU=TAC;O=Cisco", ITL_ROLE_CAPF, 1, 0, "");
    add_record(&body, &rec, "CN=ITLRECOVERY_cucm-1051-a-pub;OU=TAC;O=Cisco", ITL_ROLE_TVS, 0, 0,
               "");
    add_record(&body, &rec, "CN=ITLRECOVERY_cucm-1051-a-pub;OU=TAC;O=Cisco", ITL_ROLE_SAST, 1, 1,
               "");
    placeholder_at = body.len;
    tf_tlv_u16(&body, 1, 33);
    tf_tlv_str(&body, 2, "10.48.47.153");
    tf_tlv_u16(&body, 4, ITL_ROLE_CCM_TFTP);
    tf_tlv(&body, 10, "\x0a\x30\x2f\x99", 4);

    tf_set_u16(head.p + 8, (uint16_t)(head.len + tail.len + 3 + 128));
    /* sign head || tail || body, then splice the signature in after head */
    file.len = 0;
    tf_put(&file, head.p, head.len);
    tf_put(&file, tail.p, tail.len);
    tf_put(&file, body.p, body.len);
    EVP_Digest(file.p, file.len, md, NULL, EVP_sha1(), NULL);
    pc = EVP_PKEY_CTX_new(pub.pk, NULL);
    ck_assert_int_eq(EVP_PKEY_sign_init(pc), 1);
    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING);
    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha1());
    ck_assert_int_eq(EVP_PKEY_sign(pc, sig, &sig_len, md, 20), 1);
    EVP_PKEY_CTX_free(pc);
    file.len = 0;
    tf_put(&file, head.p, head.len);
    tf_tlv(&file, 12, sig, sig_len);
    tf_put(&file, tail.p, tail.len);
    placeholder_at += file.len;
    tf_put(&file, body.p, body.len);
}

static void teardown(void)
{
    tf_free_key(&pub);
    tf_free_key(&rec);
    tf_free_key(&capf);
}

START_TEST(test_parse_cucm_layout)
{
    struct itl_file f;
    struct itl_error err = {0};
    long idx;

    tf_parse_ok(file.p, file.len, ITL_KIND_AUTO, &f);
    ck_assert_int_eq(f.kind, ITL_KIND_TLV);
    ck_assert_int_eq(f.hdr.signer_order, ITL_ORDER_NAME_SERIAL_ISSUER);
    ck_assert_int_eq(f.hdr.has_signer_version, 0);
    ck_assert_uint_eq(f.hdr.header_length % 4, 0);
    ck_assert_uint_eq(f.hdr.signer_name.len, 61); /* format.md: 61 chars + NUL = 62 */
    ck_assert_uint_eq(f.n_records, 6);
    /* DNSNAME "\0" and a host name */
    ck_assert_ptr_nonnull(f.records[0].dnsname.ptr);
    ck_assert_uint_eq(f.records[0].dnsname.len, 0);
    ck_assert_mem_eq(f.records[1].dnsname.ptr, "cucm-1051-a-pub", 15);
    /* CAPF: CERTHASH + HASH ALGORITHM, no CERTIFICATE */
    ck_assert_ptr_null(f.records[2].certificate.ptr);
    ck_assert_uint_eq(f.records[2].certhash.len, 20);
    ck_assert_int_eq(f.records[2].has_hash_algorithm, 1);
    ck_assert_uint_eq(f.records[2].hash_algorithm, 1);
    /* TVS: no tag 8 either */
    ck_assert_ptr_null(f.records[3].signature.ptr);
    ck_assert_uint_eq(f.records[3].function, ITL_ROLE_TVS);
    /* the 33-byte placeholder */
    ck_assert_uint_eq(f.records[5].offset, placeholder_at);
    ck_assert_uint_eq(f.records[5].length, 33);
    ck_assert_uint_eq(f.records[5].n_tlvs, 4);
    ck_assert_uint_eq(f.records[5].function, ITL_ROLE_CCM_TFTP);
    ck_assert_uint_eq(f.records[5].ipaddress.len, 4);
    ck_assert_ptr_null(f.records[5].serial.ptr);
    /* consistent records; the signer is record 1 */
    for (size_t i = 0; i < f.n_records; i++)
        ck_assert_msg(itl_record_check(&f.records[i], &err) == 0, "%s", err.msg);
    ck_assert_msg(itl_verify_self(&f, &idx, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(idx, 0);
    /* CAPF is known by serial + issuer although its record carries no certificate */
    ck_assert(itl_has_cert_with_role(&f, capf.der, capf.der_len, ITL_ROLE_CAPF));
    ck_assert(itl_has_cert_with_role(&f, rec.der, rec.der_len, ITL_ROLE_TVS));
    ck_assert(!itl_has_cert_with_role(&f, pub.der, pub.der_len, ITL_ROLE_CAPF));
    itl_file_free(&f);
}
END_TEST

/* `utils itl reset` with the recovery key: only the signer fields, digest, time and signature
 * change; 4,5,6 order and every record kept. */
START_TEST(test_reset_cucm_layout)
{
    struct itl_file f, g;
    struct itl_error err = {0};
    struct itl_signer s = tf_signer(&rec, ITL_DIGEST_SHA512);
    uint8_t *out;
    size_t out_len;
    long idx;

    tf_parse_ok(file.p, file.len, ITL_KIND_AUTO, &f);
    ck_assert_msg(itl_resign_tlv(&f, 4, 0x5300003c, &s, &out, &out_len, &err) == 0, "%s", err.msg);
    tf_parse_ok(out, out_len, ITL_KIND_AUTO, &g);
    ck_assert_uint_eq(out_len - g.hdr.header_length, file.len - f.hdr.header_length);
    ck_assert_mem_eq(out + g.hdr.header_length, file.p + f.hdr.header_length,
                     file.len - f.hdr.header_length);
    ck_assert_int_eq(g.hdr.signer_order, ITL_ORDER_NAME_SERIAL_ISSUER);
    ck_assert_uint_eq(g.hdr.signer_name.len,
                      strlen("CN=ITLRECOVERY_cucm-1051-a-pub;OU=TAC;O=Cisco"));
    ck_assert_int_eq(g.hdr.digest, ITL_DIGEST_SHA512);
    ck_assert_uint_eq(g.hdr.sig_modulus, 2);
    ck_assert_uint_eq(g.hdr.signature.len, 256);
    ck_assert_uint_eq(g.hdr.timestamp, 0x5300003c);
    ck_assert_uint_eq(g.hdr.header_length % 4, 0);
    ck_assert_msg(itl_verify_self(&g, &idx, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(idx, 4);
    /* The TVS record holds the same certificate's serial but is no SAST: refused. */
    ck_assert_int_ne(itl_resign_tlv(&f, 3, 1, &s, &out, &out_len, &err), 0);
    itl_file_free(&g);
    itl_file_free(&f);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_cucm");
    TCase *tc = tcase_create("cucm");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse_cucm_layout);
    tcase_add_test(tc, test_reset_cucm_layout);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
