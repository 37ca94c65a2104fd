/* SPDX-License-Identifier: MIT */
/*
 * The real certutils-built ITL (tests/unit/fixtures/ITLFile-certutils-sample.tlv) against its
 * known facts (shared/samples/README.md), and rebuilt byte for byte.
 */
#include "tests/unit/test_format_util.h"

static uint8_t *sample;
static size_t sample_len;

static void setup(void)
{
    sample = tf_sample(&sample_len);
}

static void teardown(void)
{
    free(sample);
}

static int bytes_eq(struct itl_bytes b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

START_TEST(test_header)
{
    struct itl_file f;
    const struct itl_header *h = &f.hdr;
    static const uint8_t serial[] = {0x6b, 0xa5, 0xde, 0x3a, 0x26, 0x0b, 0x06, 0x93,
                                     0x37, 0xc7, 0x5b, 0x38, 0xbe, 0x3c, 0x2d, 0x74};

    ck_assert_uint_eq(sample_len, 10370);
    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_eq(f.kind, ITL_KIND_TLV);
    ck_assert_uint_eq(h->version_major, 1);
    ck_assert_uint_eq(h->version_minor, 2);
    ck_assert_uint_eq(h->header_length, 388);
    ck_assert_int_eq(h->has_signer_version, 1);
    ck_assert_uint_eq(h->signer_version[0], 1);
    ck_assert_uint_eq(h->signer_version[1], 0);
    ck_assert_int_eq(h->signer_order, ITL_ORDER_NAME_ISSUER_SERIAL);
    ck_assert(bytes_eq(h->signer_name, "CN=SAST,O=SAST,OU=SAST"));
    ck_assert(bytes_eq(h->signer_issuer, "CN=SAST,O=SAST,OU=SAST"));
    ck_assert_uint_eq(h->signer_serial.len, sizeof serial);
    ck_assert_mem_eq(h->signer_serial.ptr, serial, sizeof serial);
    ck_assert_int_eq(h->digest, ITL_DIGEST_SHA1);
    ck_assert_uint_eq(h->sig_algorithm, 0);
    ck_assert_uint_eq(h->sig_modulus, 2);
    ck_assert_uint_eq(h->sig_offset, 0x6b);
    ck_assert_uint_eq(h->signature.len, 256);
    ck_assert(bytes_eq(h->filename, "ITLFile.tlv"));
    ck_assert_int_eq(h->has_timestamp, 1);
    ck_assert_uint_eq(h->timestamp, 0x69540B16);
    ck_assert_uint_eq(h->padding, 0);
    ck_assert_uint_eq(h->n_extra, 0);
    ck_assert_int_eq(h->enc.present, 0);
    /* 1, 2, 28, 3{4, 6, 5}, 7{8, 9{10, 11}}, 12, 14, 15 */
    ck_assert_uint_eq(h->n_tlvs, 15);
    ck_assert_uint_eq(h->tlvs[2].tag, 28);
    ck_assert_uint_eq(h->tlvs[3].tag, 3);
    ck_assert_uint_eq(h->tlvs[4].depth, 1);
    ck_assert_uint_eq(h->tlvs[11].tag, 11);
    ck_assert_uint_eq(h->tlvs[11].depth, 2);
    itl_file_free(&f);
}
END_TEST

START_TEST(test_records)
{
    struct itl_file f;
    static const unsigned functions[] = {0, 1, 1, 7, 7};
    static const uint16_t lengths[] = {1484, 1675, 1692, 2585, 2546};
    size_t offset = 388;

    tf_parse_ok(sample, sample_len, ITL_KIND_TLV, &f);
    ck_assert_uint_eq(f.n_records, 5);
    for (size_t i = 0; i < 5; i++) {
        const struct itl_record *r = &f.records[i];
        ck_assert_uint_eq(r->offset, offset);
        ck_assert_uint_eq(r->length, lengths[i]);
        ck_assert_int_eq(r->has_function, 1);
        ck_assert_uint_eq(r->function, functions[i]);
        ck_assert_ptr_null(r->dnsname.ptr); /* certutils writes no DNSNAME */
        ck_assert_ptr_null(r->ipaddress.ptr);
        ck_assert_ptr_nonnull(r->certificate.ptr);
        /* certutils 4.13 order: 1, 3, 5, 6, 4, 7, 8, 9 */
        ck_assert_uint_eq(r->n_tlvs, 8);
        ck_assert_uint_eq(r->tlvs[1].tag, 3);
        ck_assert_uint_eq(r->tlvs[4].tag, 4);
        offset += r->length;
    }
    ck_assert_uint_eq(offset, sample_len);
    ck_assert(
        bytes_eq(f.records[3].subject, "C=US,O=Internet Security Research Group,CN=ISRG Root X1"));
    ck_assert_str_eq(itl_role_name(f.records[0].function), "System Administrator Security Token");
    ck_assert_str_eq(itl_role_name(f.records[4].function), "APP-SERVER");
    itl_file_free(&f);
}
END_TEST

START_TEST(test_signed_bytes_digest)
{
    struct itl_file f;
    struct itl_error err;
    uint8_t md[64], *signed_bytes, own[20];
    size_t md_len, n;
    static const uint8_t want[20] = {0xfe, 0xf0, 0x24, 0xdc, 0xb9, 0x38, 0x65, 0x83, 0xee, 0xa1,
                                     0xa6, 0xbc, 0xb0, 0xd7, 0xd5, 0xdc, 0x49, 0x76, 0x2c, 0xb2};

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_eq(itl_signed_digest(&f, md, &md_len, &err), 0);
    ck_assert_uint_eq(md_len, 20);
    ck_assert_mem_eq(md, want, 20);
    ck_assert_int_eq(itl_signed_bytes(&f, &signed_bytes, &n, &err), 0);
    ck_assert_uint_eq(n, 10111);
    /* [0x000,0x06B) || [0x16E,EOF) */
    ck_assert_mem_eq(signed_bytes, sample, 0x6b);
    ck_assert_mem_eq(signed_bytes + 0x6b, sample + 0x16e, sample_len - 0x16e);
    EVP_Digest(signed_bytes, n, own, NULL, EVP_sha1(), NULL);
    ck_assert_mem_eq(own, want, 20);
    free(signed_bytes);
    itl_file_free(&f);
}
END_TEST

START_TEST(test_verify)
{
    struct itl_file f;
    struct itl_error err = {0};
    long idx = -2;

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_eq(itl_find_signer_record(&f), 0);
    ck_assert_msg(itl_verify_self(&f, &idx, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(idx, 0);
    ck_assert_int_eq(
        itl_verify_with_cert(&f, f.records[0].certificate.ptr, f.records[0].certificate.len, &err),
        0);
    /* Another record's certificate (a 2048-bit key as well) does not verify it. */
    ck_assert_int_ne(
        itl_verify_with_cert(&f, f.records[1].certificate.ptr, f.records[1].certificate.len, &err),
        0);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not verify with the key of CN=ccm01.csptech.org;"
                                          "O=CSP Technologies;OU=CSP Community PBX Texas"));
    /* A 4096-bit one: the signature length does not even fit. */
    ck_assert_int_ne(
        itl_verify_with_cert(&f, f.records[3].certificate.ptr, f.records[3].certificate.len, &err),
        0);
    ck_assert_ptr_nonnull(strstr(err.msg, "4096-bit"));
    itl_file_free(&f);
}
END_TEST

START_TEST(test_tampered)
{
    uint8_t *copy = malloc(sample_len);
    struct itl_file f;
    struct itl_error err = {0};
    long idx;

    /* One bit of a record (inside record 5's certificate) changes the signed bytes. */
    memcpy(copy, sample, sample_len);
    copy[sample_len - 100] ^= 1;
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not verify"));
    itl_file_free(&f);
    /* One bit of the signature. */
    memcpy(copy, sample, sample_len);
    copy[0x6b + 3 + 10] ^= 0x80;
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    itl_file_free(&f);
    /* The TIMESTAMP, which lies after the signature and is signed too. */
    memcpy(copy, sample, sample_len);
    copy[0x183] ^= 1;
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    itl_file_free(&f);
    free(copy);
}
END_TEST

/* Every PUBLICKEY is the certificate's RSAPublicKey DER, every SIGNATURE its signatureValue,
 * checked here with OpenSSL directly and through itl_record_check. */
START_TEST(test_record_fields_match_certificates)
{
    struct itl_file f;
    struct itl_error err = {0};

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    for (size_t i = 0; i < f.n_records; i++) {
        const struct itl_record *r = &f.records[i];
        const unsigned char *p = r->certificate.ptr;
        X509 *x = d2i_X509(NULL, &p, (long)r->certificate.len);
        const unsigned char *pub = NULL;
        const ASN1_BIT_STRING *sig;
        const X509_ALGOR *alg;
        int n = 0;

        /* For RSA the SubjectPublicKeyInfo's BIT STRING holds the RSAPublicKey DER. */
        ck_assert_ptr_nonnull(x);
        ck_assert_int_eq(X509_PUBKEY_get0_param(NULL, &pub, &n, NULL, X509_get_X509_PUBKEY(x)), 1);
        ck_assert_int_eq(n, (int)r->public_key.len);
        ck_assert_mem_eq(pub, r->public_key.ptr, (size_t)n);
        X509_get0_signature(&sig, &alg, x);
        ck_assert_int_eq(ASN1_STRING_length(sig), (int)r->signature.len);
        ck_assert_mem_eq(ASN1_STRING_get0_data(sig), r->signature.ptr, r->signature.len);
        ck_assert_msg(itl_record_check(r, &err) == 0, "record %zu: %s", i + 1, err.msg);
        X509_free(x);
    }
    itl_file_free(&f);
}
END_TEST

START_TEST(test_record_check_detects_mismatch)
{
    uint8_t *copy = malloc(sample_len);
    struct itl_file f;
    struct itl_error err = {0};

    memcpy(copy, sample, sample_len);
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    /* flip a byte of record 2's PUBLICKEY, then of its SIGNATURE */
    ((uint8_t *)f.records[1].public_key.ptr)[20] ^= 1;
    ck_assert_int_ne(itl_record_check(&f.records[1], &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "PUBLICKEY (270 bytes) is not the certificate's"));
    ((uint8_t *)f.records[1].public_key.ptr)[20] ^= 1;
    ck_assert_int_eq(itl_record_check(&f.records[1], &err), 0);
    ((uint8_t *)f.records[1].signature.ptr)[5] ^= 1;
    ck_assert_int_ne(itl_record_check(&f.records[1], &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "SIGNATURE (256 bytes) is not the certificate's"));
    itl_file_free(&f);
    free(copy);
}
END_TEST

/* The record strings are exactly what itl_cert_name/itl_cert_serial make in certutils style. */
START_TEST(test_names_and_serials)
{
    struct itl_file f;
    struct itl_error err;
    char name[512];
    uint8_t serial[64];
    size_t serial_len;

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    for (size_t i = 0; i < f.n_records; i++) {
        const struct itl_record *r = &f.records[i];
        ck_assert_int_eq(itl_cert_name(r->certificate.ptr, r->certificate.len, 0,
                                       ITL_NAMES_CERTUTILS, name, sizeof name, &err),
                         0);
        ck_assert(bytes_eq(r->subject, name));
        ck_assert_int_eq(itl_cert_name(r->certificate.ptr, r->certificate.len, 1,
                                       ITL_NAMES_CERTUTILS, name, sizeof name, &err),
                         0);
        ck_assert(bytes_eq(r->issuer, name));
        ck_assert_int_eq(itl_cert_serial(r->certificate.ptr, r->certificate.len, serial,
                                         sizeof serial, &serial_len, &err),
                         0);
        ck_assert_uint_eq(serial_len, r->serial.len);
        ck_assert_mem_eq(serial, r->serial.ptr, serial_len);
    }
    /* serial 0203E5936F31B01349886BA217: 13 bytes, no padding to 16 */
    ck_assert_uint_eq(f.records[4].serial.len, 13);
    ck_assert_int_eq(itl_cert_name(f.records[1].certificate.ptr, f.records[1].certificate.len, 0,
                                   ITL_NAMES_CUCM, name, sizeof name, &err),
                     0);
    /* CUCM style keeps the certificate's own (DER) order, ";"-joined. */
    ck_assert_str_eq(name, "CN=ccm01.csptech.org;O=CSP Technologies;OU=CSP Community PBX Texas");
    itl_file_free(&f);
}
END_TEST

/* A signer that returns the sample's own signature: with the same inputs the builder must
 * produce the very bytes that signature covers. */
struct replay {
    const uint8_t *sig;
    size_t len;
    int calls;
};

static int replay_sign(void *ctx, int digest, const uint8_t *msg, size_t msg_len, const uint8_t *md,
                       size_t md_len, uint8_t *sig, size_t *sig_len, struct itl_error *err)
{
    struct replay *r = ctx;
    (void)digest, (void)msg, (void)msg_len, (void)md, (void)md_len, (void)err;
    ck_assert_uint_ge(*sig_len, r->len);
    memcpy(sig, r->sig, r->len);
    *sig_len = r->len;
    r->calls++;
    return 0;
}

START_TEST(test_rebuild_byte_for_byte)
{
    struct itl_file f;
    struct itl_error err = {0};
    struct itl_entry entries[5];
    struct replay rp;
    struct itl_signer signer;
    struct itl_build_opts opts = {
        .filename = "ITLFile.tlv",
        .timestamp = 0x69540B16,
        .layout = ITL_LAYOUT_CERTUTILS,
        .signer_order = ITL_ORDER_NAME_ISSUER_SERIAL,
        .names = ITL_NAMES_CERTUTILS,
        .signer_version = 0x0100,
    };
    uint8_t *out = NULL;
    size_t out_len = 0;

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    for (size_t i = 0; i < 5; i++)
        entries[i] = (struct itl_entry){f.records[i].certificate.ptr, f.records[i].certificate.len,
                                        f.records[i].function};
    rp = (struct replay){f.hdr.signature.ptr, f.hdr.signature.len, 0};
    signer = (struct itl_signer){.cert_der = f.records[0].certificate.ptr,
                                 .cert_len = f.records[0].certificate.len,
                                 .digest = ITL_DIGEST_SHA1,
                                 .sign = replay_sign,
                                 .ctx = &rp};
    ck_assert_msg(itl_build_tlv(entries, 5, &opts, &signer, &out, &out_len, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(rp.calls, 1);
    ck_assert_uint_eq(out_len, sample_len);
    ck_assert_mem_eq(out, sample, sample_len);
    free(out);

    /* A different timestamp changes the signed bytes: the built file no longer verifies. */
    opts.timestamp++;
    ck_assert_int_ne(itl_build_tlv(entries, 5, &opts, &signer, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not verify"));
    itl_file_free(&f);
}
END_TEST

/* Re-signing the sample with its own signer, time and signature reproduces it: every
 * convention (tag 28, 4,6,5 order, names, FILENAME, records) is carried over. */
START_TEST(test_resign_reproduces_sample)
{
    struct itl_file f;
    struct itl_error err = {0};
    struct replay rp;
    struct itl_signer signer;
    uint8_t *out = NULL;
    size_t out_len = 0;

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    rp = (struct replay){f.hdr.signature.ptr, f.hdr.signature.len, 0};
    signer = (struct itl_signer){.cert_der = f.records[0].certificate.ptr,
                                 .cert_len = f.records[0].certificate.len,
                                 .digest = ITL_DIGEST_SHA1,
                                 .sign = replay_sign,
                                 .ctx = &rp};
    ck_assert_msg(itl_resign_tlv(&f, 0, 0x69540B16, &signer, &out, &out_len, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(out_len, sample_len);
    ck_assert_mem_eq(out, sample, sample_len);
    free(out);
    /* Record 2 is CCM, not SAST: refused. */
    ck_assert_int_ne(itl_resign_tlv(&f, 1, 0x69540B16, &signer, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a SAST record"));
    /* No such record. */
    ck_assert_int_ne(itl_resign_tlv(&f, (size_t)-1, 1, &signer, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "5 records"));
    itl_file_free(&f);
}
END_TEST

START_TEST(test_has_cert_with_role)
{
    struct itl_file f;

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    ck_assert(itl_has_cert_with_role(&f, f.records[0].certificate.ptr, f.records[0].certificate.len,
                                     ITL_ROLE_SAST));
    ck_assert(!itl_has_cert_with_role(&f, f.records[0].certificate.ptr,
                                      f.records[0].certificate.len, ITL_ROLE_TFTP));
    ck_assert(itl_has_cert_with_role(&f, f.records[2].certificate.ptr, f.records[2].certificate.len,
                                     ITL_ROLE_CCM));
    ck_assert(!itl_has_cert_with_role(&f, (const uint8_t *)"junk", 4, ITL_ROLE_CCM));
    itl_file_free(&f);
}
END_TEST

/* Every prefix of the sample is refused with a message; none crashes or reads past the end
 * (run under ASan in `make asan`). A cut at a record boundary is well-formed: only the
 * signature can tell, and it does. */
START_TEST(test_every_truncation)
{
    size_t boundaries = 0;

    for (size_t n = 0; n < sample_len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        struct itl_file f;
        struct itl_error err = {0};
        long idx;
        memcpy(copy, sample, n);
        if (itl_parse(copy, n, ITL_KIND_AUTO, &f, &err) == 0) {
            ck_assert_msg(n == 1872 || n == 3547 || n == 5239 || n == 7824, "prefix %zu parsed", n);
            ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
            ck_assert_ptr_nonnull(strstr(err.msg, "does not verify"));
            boundaries++;
        }
        ck_assert_msg(err.msg[0] != 0, "prefix %zu: no message", n);
        itl_file_free(&f);
        free(copy);
    }
    ck_assert_uint_eq(boundaries, 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_sample");
    TCase *tc = tcase_create("sample");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_header);
    tcase_add_test(tc, test_records);
    tcase_add_test(tc, test_signed_bytes_digest);
    tcase_add_test(tc, test_verify);
    tcase_add_test(tc, test_tampered);
    tcase_add_test(tc, test_record_fields_match_certificates);
    tcase_add_test(tc, test_record_check_detects_mismatch);
    tcase_add_test(tc, test_names_and_serials);
    tcase_add_test(tc, test_rebuild_byte_for_byte);
    tcase_add_test(tc, test_resign_reproduces_sample);
    tcase_add_test(tc, test_has_cert_with_role);
    tcase_add_test(tc, test_every_truncation);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
