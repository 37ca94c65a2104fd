/* SPDX-License-Identifier: MIT */
/* Bad input: each case gets one sentence naming the offset and the field, never a crash. */
#include "tests/unit/test_format_util.h"

static uint8_t *sample, *copy;
static size_t sample_len;

static void setup(void)
{
    sample = tf_sample(&sample_len);
    copy = malloc(sample_len);
    memcpy(copy, sample, sample_len);
}

static void teardown(void)
{
    free(sample);
    free(copy);
}

static void parse_fails_exact(const uint8_t *d, size_t n, const char *want)
{
    struct itl_file f;
    struct itl_error err = {0};
    int rc = itl_parse(d, n, ITL_KIND_AUTO, &f, &err);
    itl_file_free(&f);
    ck_assert_int_ne(rc, 0);
    ck_assert_str_eq(err.msg, want);
}

START_TEST(test_length_past_header)
{
    tf_set_u16(copy + 0x16f, 300); /* FILENAME */
    parse_fails_exact(
        copy, sample_len,
        "offset 0x16e: FILENAME length 300 runs past the end of the header (388 bytes)");
}
END_TEST

START_TEST(test_nested_overflows_parent)
{
    tf_set_u16(copy + 0x47, 17); /* SERIALNUMBER inside SIGNERID (ends at 0x59) */
    parse_fails_exact(copy, sample_len,
                      "offset 0x46: SERIALNUMBER length 17 runs past the end of its SIGNERID "
                      "container (which ends at 0x59)");
    memcpy(copy, sample, sample_len);
    tf_set_u16(copy + 0x61, 9); /* SIGNATUREALGOINFO (8) inside SIGNATUREINFO */
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "offset 0x60: SIGNATUREALGOINFO length 9 runs past the end of its "
                   "SIGNATUREINFO container (which ends at 0x6b)");
    memcpy(copy, sample, sample_len);
    tf_set_u16(copy + 0x10, 0x200); /* SIGNERID container longer than the header */
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "offset 0xf: SIGNERID length 512 runs past the end of the header (388 bytes)");
}
END_TEST

START_TEST(test_header_length)
{
    tf_set_u16(copy + 8, 20000);
    parse_fails_exact(copy, sample_len,
                      "offset 0x5: HEADERLENGTH 20000 runs past the end of the file (10370 bytes)");
    tf_set_u16(copy + 8, 6);
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO, "HEADERLENGTH 6 is shorter than");
    /* HEADERLENGTH that cuts the last TLV (TIMESTAMP at 0x17d) in half */
    tf_set_u16(copy + 8, 0x180);
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "offset 0x17d: TIMESTAMP length 4 runs past the end of the header (384 bytes)");
    tf_set_u16(copy + 8, 0x17e);
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "offset 0x17d: the tag and length of TIMESTAMP (tag 15) run past the end of "
                   "the header");
}
END_TEST

START_TEST(test_not_a_trust_file)
{
    static const char xml[] = "<?xml version=\"1.0\"?><device/>";
    parse_fails_exact((const uint8_t *)xml, strlen(xml),
                      "offset 0x0: expected VERSION (tag 1), found tag 60: not a Cisco ITL/CTL or "
                      "signed file");
    parse_fails_exact(sample, 7,
                      "the file is 7 bytes, too short for a header (VERSION and HEADERLENGTH "
                      "alone take 10 bytes)");
    parse_fails_exact(NULL, 0,
                      "the file is 0 bytes, too short for a header (VERSION and HEADERLENGTH "
                      "alone take 10 bytes)");
    copy[5] = 3;
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO, "expected HEADERLENGTH (tag 2), found tag 3");
    copy[5] = 2;
    tf_set_u16(copy + 1, 3);
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO, "offset 0x0: VERSION has length 3, expected 2");
}
END_TEST

START_TEST(test_field_lengths)
{
    tf_set_u16(copy + 0x5d, 2); /* DIGESTALGORITHM length 2 (the container still fits) */
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO, "DIGESTALGORITHM has length 2, expected 1");
    memcpy(copy, sample, sample_len);
    tf_set_u16(copy + 0x17e, 3); /* TIMESTAMP length 3 */
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "offset 0x17d: TIMESTAMP has length 3, expected 4");
}
END_TEST

/* Records: RECORDLENGTH 0, < 5, past the end; fields past the record; no FUNCTION. */
START_TEST(test_bad_records)
{
    size_t r2 = 388 + 1484;

    tf_set_u16(copy + 388 + 3, 0);
    parse_fails_exact(copy, sample_len,
                      "offset 0x184: record #1: RECORDLENGTH 0 is less than the 5 bytes of the "
                      "RECORDLENGTH field itself");
    tf_set_u16(copy + 388 + 3, 3);
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO, "record #1: RECORDLENGTH 3 is less than");
    memcpy(copy, sample, sample_len);
    tf_set_u16(copy + r2 + 3, 60000);
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "record #2: RECORDLENGTH 60000 runs past the end of the file (10370 bytes)");
    memcpy(copy, sample, sample_len);
    /* record 2's SUBJECTNAME (at r2 + 5) longer than the record */
    tf_set_u16(copy + r2 + 6, 2000);
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "record #2: SUBJECTNAME length 2000 runs past the end of the record (which "
                   "ends at 0xddb)");
    memcpy(copy, sample, sample_len);
    copy[r2] = 9;
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "offset 0x750: record #2 starts with tag 9, expected RECORDLENGTH (1)");
    memcpy(copy, sample, sample_len);
    /* FUNCTION of record 1 (tag at 388+5+26+26+19) renamed to an unknown tag 0x40 */
    copy[388 + 76] = 0x40;
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO,
                   "offset 0x184: record #1 has no FUNCTION (tag 4)");
    memcpy(copy, sample, sample_len);
    tf_set_u16(copy + 388 + 77, 1); /* FUNCTION length 1, the remaining byte unparsable */
    tf_parse_fails(copy, sample_len, ITL_KIND_AUTO, "record #1: FUNCTION has length 1, expected 2");
}
END_TEST

START_TEST(test_trailing_and_empty)
{
    uint8_t *longer = malloc(sample_len + 3);
    struct itl_file f;

    memcpy(longer, sample, sample_len);
    memcpy(longer + sample_len, "\x01\x00\x02", 3);
    tf_parse_fails(longer, sample_len + 3, ITL_KIND_AUTO,
                   "record #6: the 3 bytes left are too short for a RECORDLENGTH field");
    /* a 5-byte record (RECORDLENGTH only): no FUNCTION */
    free(longer);
    longer = malloc(sample_len + 5);
    memcpy(longer, sample, sample_len);
    memcpy(longer + sample_len, "\x01\x00\x02\x00\x05", 5);
    tf_parse_fails(longer, sample_len + 5, ITL_KIND_AUTO, "record #6 has no FUNCTION");
    free(longer);
    /* header only */
    tf_parse_fails(sample, 388, ITL_KIND_TLV,
                   "the ITL/CTL has no records after its 388-byte header");
    /* the same bytes as a .sgn: an empty payload is fine */
    tf_parse_ok(sample, 388, ITL_KIND_SGN, &f);
    ck_assert_int_eq(f.kind, ITL_KIND_SGN);
    ck_assert_uint_eq(f.payload.len, 0);
    itl_file_free(&f);
}
END_TEST

START_TEST(test_unknown_digest_code)
{
    struct itl_file f;
    struct itl_error err = {0};
    uint8_t md[64];
    size_t md_len;
    long idx;

    copy[0x5f] = 7;
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f); /* shown, but not verifiable */
    ck_assert_int_eq(f.hdr.digest, 7);
    ck_assert_int_ne(itl_signed_digest(&f, md, &md_len, &err), 0);
    ck_assert_str_eq(err.msg, "offset 0x5c: DIGESTALGORITHM code 7 is unknown (1 = SHA-1, 2 = "
                              "SHA-256, 3 = SHA-512)");
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "code 7 is unknown"));
    itl_file_free(&f);
    /* SHA-512 (3) is known but is not what the file was signed with */
    copy[0x5f] = 3;
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "SHA-512 signature does not verify"));
    itl_file_free(&f);
    /* signature algorithm other than RSA (0) */
    memcpy(copy, sample, sample_len);
    copy[0x66] = 1;
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "SIGNATUREALGORITHM 1 is not RSA"));
    itl_file_free(&f);
}
END_TEST

START_TEST(test_garbage_certificate)
{
    struct itl_file f;
    struct itl_error err = {0};
    long idx;
    size_t cert_at;

    tf_parse_ok(sample, sample_len, ITL_KIND_AUTO, &f);
    cert_at = (size_t)(f.records[0].certificate.ptr - sample);
    itl_file_free(&f);
    copy[cert_at] = 0x04; /* not a SEQUENCE any more */
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_ne(itl_record_check(&f.records[0], &err), 0);
    ck_assert_str_eq(err.msg, "the CERTIFICATE of the record at offset 0x184 (868 bytes) is not a "
                              "DER X.509 certificate");
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "the signer certificate (868 bytes) is not a DER X.509"));
    ck_assert_int_eq(idx, 0);
    ck_assert(!itl_has_cert_with_role(&f, f.records[1].certificate.ptr, 3, ITL_ROLE_CCM));
    itl_file_free(&f);
}
END_TEST

START_TEST(test_signer_not_found)
{
    struct itl_file f;
    struct itl_error err = {0};
    long idx;

    copy[0x49] ^= 0xff; /* header SERIALNUMBER */
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_eq(itl_find_signer_record(&f), -1);
    ck_assert_int_ne(itl_verify_self(&f, &idx, &err), 0);
    ck_assert_int_eq(idx, -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "no SAST record matches the signer"));
    itl_file_free(&f);
    /* the serial matches but the issuer (CANAME, at 0x2f) differs */
    memcpy(copy, sample, sample_len);
    copy[0x2f] = 'X';
    tf_parse_ok(copy, sample_len, ITL_KIND_AUTO, &f);
    ck_assert_int_eq(itl_find_signer_record(&f), -1);
    itl_file_free(&f);
}
END_TEST

/* Hand-written headers: duplicates, missing fields, unknown tags kept, padding. */
static void header_start(struct tf_buf *b)
{
    b->len = 0;
    tf_tlv(b, 1, "\x01\x02", 2);
    tf_tlv_u16(b, 2, 0);
}

static void header_signer(struct tf_buf *b)
{
    size_t c = tf_open(b, 3);
    tf_tlv_str(b, 4, "CN=x");
    tf_tlv(b, 5, "\x01", 1);
    tf_tlv_str(b, 6, "CN=x");
    tf_close(b, c);
}

static void header_siginfo(struct tf_buf *b, int digest)
{
    size_t c = tf_open(b, 7), d;
    tf_tlv_u8(b, 8, (uint8_t)digest);
    d = tf_open(b, 9);
    tf_tlv_u8(b, 10, 0);
    tf_tlv_u8(b, 11, 0);
    tf_close(b, d);
    tf_close(b, c);
}

static void header_end(struct tf_buf *b, int pad)
{
    for (int i = 0; i < pad; i++)
        tf_u8(b, 13);
    tf_set_u16(b->p + 8, (uint16_t)b->len);
}

START_TEST(test_hand_written_headers)
{
    static struct tf_buf b;
    struct itl_file f;
    uint8_t sig[64] = {0};

    /* no signature */
    header_start(&b);
    header_signer(&b);
    header_siginfo(&b, 1);
    tf_tlv_str(&b, 14, "x.cnf.xml.sgn");
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "has no SIGNATURE (tag 12): the file is not signed");

    /* two signatures */
    header_start(&b);
    header_signer(&b);
    header_siginfo(&b, 1);
    tf_tlv(&b, 12, sig, 64);
    tf_tlv(&b, 12, sig, 64);
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "a second SIGNATURE (tag 12) in the header");

    /* an empty signature, a signature inside a container */
    header_start(&b);
    tf_tlv(&b, 12, sig, 0);
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "offset 0xa: SIGNATURE is empty");
    header_start(&b);
    {
        size_t c = tf_open(&b, 3);
        tf_tlv(&b, 12, sig, 64);
        tf_close(&b, c);
    }
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "SIGNATURE is inside the SIGNERID container");

    /* no digest */
    header_start(&b);
    header_signer(&b);
    tf_tlv(&b, 12, sig, 64);
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "has no DIGESTALGORITHM (tag 8)");

    /* unknown tags kept (also inside a container), padding counted, 4,5,6 order, a .sgn */
    header_start(&b);
    {
        size_t c = tf_open(&b, 3);
        tf_tlv_str(&b, 4, "CN=x");
        tf_tlv(&b, 5, "\x01", 1);
        tf_tlv(&b, 0x77, "zz", 2);
        tf_tlv_str(&b, 6, "CN=x");
        tf_close(&b, c);
    }
    header_siginfo(&b, 2);
    tf_tlv(&b, 12, sig, 64);
    tf_tlv(&b, 0xc8, "abc", 3);
    tf_tlv_str(&b, 14, "SEP1.cnf.xml.sgn");
    header_end(&b, 3);
    tf_put(&b, "payload", 7);
    tf_parse_ok(b.p, b.len, ITL_KIND_AUTO, &f);
    ck_assert_int_eq(f.kind, ITL_KIND_SGN);
    ck_assert_int_eq(f.hdr.signer_order, ITL_ORDER_NAME_SERIAL_ISSUER);
    ck_assert_uint_eq(f.hdr.n_extra, 2);
    ck_assert_uint_eq(f.hdr.extra[0].tag, 0x77);
    ck_assert_uint_eq(f.hdr.extra[0].depth, 1);
    ck_assert_uint_eq(f.hdr.extra[1].tag, 0xc8);
    ck_assert_uint_eq(f.hdr.padding, 3);
    ck_assert_uint_eq(f.payload.len, 7);
    ck_assert_int_eq(f.hdr.has_timestamp, 0);
    itl_file_free(&f);

    /* too many unknown tags */
    header_start(&b);
    for (int i = 0; i < ITL_MAX_EXTRA_TLVS + 1; i++)
        tf_tlv(&b, 0x80, "", 0);
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "more than 16 unknown tags in the header");

    /* a header of a thousand padding bytes is fine, containers nested too deep are not */
    header_start(&b);
    {
        size_t c1 = tf_open(&b, 3), c2 = tf_open(&b, 7), c3 = tf_open(&b, 9), c4 = tf_open(&b, 16),
               c5 = tf_open(&b, 17);
        tf_tlv_u8(&b, 18, 0);
        tf_close(&b, c5);
        tf_close(&b, c4);
        tf_close(&b, c3);
        tf_close(&b, c2);
        tf_close(&b, c1);
    }
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "containers nested more than 4 deep");
}
END_TEST

START_TEST(test_kind_hints)
{
    static struct tf_buf b;
    uint8_t sig[64] = {0};
    uint8_t iv[16] = {0};

    /* an ITL/CTL hint on a header with encryption fields */
    header_start(&b);
    header_signer(&b);
    header_siginfo(&b, 1);
    tf_tlv(&b, 12, sig, 64);
    {
        size_t c = tf_open(&b, 16), c2 = tf_open(&b, 17);
        tf_tlv_u8(&b, 18, 0);
        tf_tlv(&b, 19, iv, 16);
        tf_tlv_u16(&b, 20, 16);
        tf_close(&b, c2);
        tf_close(&b, c);
    }
    header_end(&b, 0);
    tf_put(&b, iv, 16);
    tf_parse_fails(b.p, b.len, ITL_KIND_TLV, "encryption fields (tags 16-27): a .enc.sgn");
    tf_parse_fails(b.p, b.len, ITL_KIND_AUTO, "has no ENCRYPTIONKEY (tag 25)");

    /* a .enc.sgn hint on a plain .sgn */
    header_start(&b);
    header_signer(&b);
    header_siginfo(&b, 1);
    tf_tlv(&b, 12, sig, 64);
    header_end(&b, 0);
    tf_parse_fails(b.p, b.len, ITL_KIND_ENC_SGN,
                   "no encryption fields (tags 16-27): not a .enc.sgn");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_errors");
    TCase *tc = tcase_create("errors");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_length_past_header);
    tcase_add_test(tc, test_nested_overflows_parent);
    tcase_add_test(tc, test_header_length);
    tcase_add_test(tc, test_not_a_trust_file);
    tcase_add_test(tc, test_field_lengths);
    tcase_add_test(tc, test_bad_records);
    tcase_add_test(tc, test_trailing_and_empty);
    tcase_add_test(tc, test_unknown_digest_code);
    tcase_add_test(tc, test_garbage_certificate);
    tcase_add_test(tc, test_signer_not_found);
    tcase_add_test(tc, test_hand_written_headers);
    tcase_add_test(tc, test_kind_hints);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
