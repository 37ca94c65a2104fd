/* SPDX-License-Identifier: MIT */
/*
 * What a file or a name is to any reader (format/kind.c, issue 12): a .sgn whose FILENAME or
 * body an ITL/CTL reader would accept is an ITL/CTL, and the builders refuse to make one.
 */
#include "tests/unit/test_format_util.h"

static uint8_t *sample;
static size_t sample_len, sample_hl;
static struct tf_key key;
static struct tf_buf fake; /* 256 KB: not on the stack */

static void setup(void)
{
    sample = tf_sample(&sample_len);
    sample_hl = (size_t)sample[8] << 8 | sample[9];
    tf_make_key(&key, 1024, "/CN=cucm-pub/O=test", 0x0102); /* 1024: fast under valgrind */
}

static void teardown(void)
{
    free(sample);
    tf_free_key(&key);
}

/* A .sgn-shaped file by hand (unsigned: kinds never verify): VERSION 1.0, HEADERLENGTH, tag 28
 * when asked, DIGEST, SIGNATURE, FILENAME (n bytes, as given), padding, then the payload. */
static void make_fake(const char *filename, size_t n, int tag28, const void *payload, size_t plen)
{
    static const uint8_t sig[128];
    static const uint8_t version[2] = {1, 0}, signer_version[2] = {1, 0};

    fake.len = 0;
    tf_tlv(&fake, 1, version, 2);
    tf_tlv_u16(&fake, 2, 0);
    if (tag28)
        tf_tlv(&fake, 28, signer_version, 2);
    tf_tlv_u8(&fake, 8, 1);
    tf_tlv(&fake, 12, sig, sizeof sig);
    tf_tlv(&fake, 14, filename, n);
    while (fake.len % 4)
        tf_u8(&fake, 0x0D);
    tf_set_u16(fake.p + 8, (uint16_t)fake.len);
    tf_put(&fake, payload, plen);
}

static const char xml[] = "<device><fullConfig>true</fullConfig></device>\n";

START_TEST(test_kind_of)
{
    static const char itl_name[] = "ITLFile.tlv", sgn_name[] = "SEP001122334455.cnf.xml.sgn";
    static const char nul_name[] = "ITLFile.tlv\0x.sgn";

    ck_assert_int_eq(itl_kind_of(NULL, 0), ITL_KIND_AUTO);
    ck_assert_int_eq(itl_kind_of((const uint8_t *)"", 0), ITL_KIND_AUTO);
    ck_assert_int_eq(itl_kind_of((const uint8_t *)xml, strlen(xml)), ITL_KIND_AUTO);
    ck_assert_int_eq(itl_kind_of(sample, sample_len), ITL_KIND_TLV);
    /* the body alone: what the attack sent to `sign` */
    ck_assert_int_eq(itl_kind_of(sample + sample_hl, sample_len - sample_hl), ITL_KIND_TLV);
    ck_assert_int_eq(itl_kind_of(sample, 100), ITL_KIND_TLV); /* cut short: still ITL-shaped */

    make_fake(sgn_name, sizeof sgn_name, 0, xml, strlen(xml));
    ck_assert_int_eq(itl_kind_of(fake.p, fake.len), ITL_KIND_SGN);
    make_fake(itl_name, sizeof itl_name, 0, xml, strlen(xml)); /* FILENAME says ITL */
    ck_assert_int_eq(itl_kind_of(fake.p, fake.len), ITL_KIND_TLV);
    make_fake(sgn_name, sizeof sgn_name, 1, xml, strlen(xml)); /* tag 28 */
    ck_assert_int_eq(itl_kind_of(fake.p, fake.len), ITL_KIND_TLV);
    /* a .sgn name, ITL records as the body: certutils' tlvfile reads an ITL */
    make_fake(sgn_name, sizeof sgn_name, 0, sample + sample_hl, sample_len - sample_hl);
    ck_assert_int_eq(itl_kind_of(fake.p, fake.len), ITL_KIND_TLV);
    make_fake(sgn_name, sizeof sgn_name, 0, sample, sample_len); /* a whole ITL as payload */
    ck_assert_int_eq(itl_kind_of(fake.p, fake.len), ITL_KIND_TLV);
    make_fake(nul_name, sizeof nul_name, 0, xml, strlen(xml)); /* a C reader stops at the NUL */
    ck_assert_int_eq(itl_kind_of(fake.p, fake.len), ITL_KIND_TLV);
}
END_TEST

START_TEST(test_name_kind)
{
    static const struct {
        const char *name;
        enum itl_kind kind;
    } cases[] = {
        {"ITLFile.tlv", ITL_KIND_TLV},
        {"ITLFILE.TLV", ITL_KIND_TLV},
        {"CTLFile.tlv", ITL_KIND_TLV},
        {"x.TlV", ITL_KIND_TLV},
        {"ITLFile.tlv ", ITL_KIND_TLV},
        {"ITLFile.tlv...", ITL_KIND_TLV},
        {"ITLFile.tlv.sgn", ITL_KIND_TLV},
        {"ITLFile.tlv.bak", ITL_KIND_TLV},
        {"tftp/ITLSEP001122334455.tlv", ITL_KIND_TLV},
        {"itlfile.sgn", ITL_KIND_TLV},
        {"CTLSEP001122334455.sgn", ITL_KIND_TLV},
        {"dir\\ITLFile", ITL_KIND_TLV},
        {"SEP001122334455.cnf.xml.sgn", ITL_KIND_SGN},
        {"SEP001122334455.cnf.xml.SGN", ITL_KIND_SGN},
        {"x.sgn. ", ITL_KIND_SGN},
        {"New_Zealand/g3-tones.xml.sgn", ITL_KIND_SGN},
        {"SEP001122334455.cnf.xml.enc.sgn", ITL_KIND_ENC_SGN},
        {"SEP001122334455.cnf.xml", ITL_KIND_AUTO},
        {"", ITL_KIND_AUTO},
    };
    static const char nul[] = "SEP1.tl\0v.sgn", nul2[] = "x.tlv\0.sgn";

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(itl_name_kind(cases[i].name, strlen(cases[i].name)) == cases[i].kind,
                      "'%s': kind %d, want %d", cases[i].name,
                      itl_name_kind(cases[i].name, strlen(cases[i].name)), cases[i].kind);
    ck_assert_int_eq(itl_name_kind(NULL, 0), ITL_KIND_AUTO);
    ck_assert_int_eq(itl_name_kind(nul, sizeof nul - 1), ITL_KIND_SGN);
    ck_assert_int_eq(itl_name_kind(nul2, sizeof nul2 - 1), ITL_KIND_TLV);
}
END_TEST

START_TEST(test_check_name)
{
    static const struct {
        const char *name;
        enum itl_kind kind;
        int dirs, ok;
        const char *why;
    } cases[] = {
        {"ITLFile.tlv", ITL_KIND_TLV, 0, 1, NULL},
        {"ITLSEP001122334455.tlv", ITL_KIND_TLV, 0, 1, NULL},
        {"ITLFile.TLV", ITL_KIND_TLV, 0, 0, "must end in '.tlv'"},
        {"ITLFile.sgn", ITL_KIND_TLV, 0, 0, "not a name for an ITL/CTL"},
        {"SEP1.cnf.xml.sgn", ITL_KIND_TLV, 0, 0, "a reader takes this name for a signed file"},
        {"SEP1.cnf.xml.sgn", ITL_KIND_SGN, 0, 1, NULL},
        {"New_Zealand/g3-tones.xml.sgn", ITL_KIND_SGN, 1, 1, NULL},
        {"New_Zealand/g3-tones.xml.sgn", ITL_KIND_SGN, 0, 0, "without '/'"},
        {"ITLFile.tlv", ITL_KIND_SGN, 1, 0, "for an ITL/CTL"},
        {"ITLFile.tlv.sgn", ITL_KIND_SGN, 1, 0, "neither contain '.tlv'"},
        {"CTLFile.sgn", ITL_KIND_SGN, 1, 0, "nor begin with ITL or CTL"},
        {"SEP1.cnf.xml.SGN", ITL_KIND_SGN, 1, 0, "must end in '.sgn'"},
        {"SEP1.cnf.xml.sgn.", ITL_KIND_SGN, 1, 0, "must end in '.sgn'"},
        {"SEP1.cnf.xml", ITL_KIND_SGN, 1, 0, "must end in '.sgn'"},
        {"SEP1.cnf.xml.enc.sgn", ITL_KIND_SGN, 1, 0, "an encrypted config"},
        {"SEP1.cnf.xml.enc.sgn", ITL_KIND_ENC_SGN, 0, 1, NULL},
        {"x .sgn", ITL_KIND_SGN, 1, 0, "byte 0x20 at offset 1"},
        {"x\\y.sgn", ITL_KIND_SGN, 1, 0, "backslashes"},
        {"x\x01.sgn", ITL_KIND_SGN, 1, 0, "byte 0x01"},
        {"x\xc3\xa9.sgn", ITL_KIND_SGN, 1, 0, "byte 0xc3"},
        {"/etc/x.sgn", ITL_KIND_SGN, 1, 0, "empty, '.' or '..' path component"},
        {"../x.sgn", ITL_KIND_SGN, 1, 0, "'..'"},
        {"a/./x.sgn", ITL_KIND_SGN, 1, 0, "'.'"},
        {"a//x.sgn", ITL_KIND_SGN, 1, 0, "empty"},
        {"..", ITL_KIND_SGN, 0, 0, "path component"},
        {"", ITL_KIND_SGN, 0, 0, "of 0 bytes"},
        {"x.sgn", ITL_KIND_AUTO, 0, 0, "no file kind"},
    };
    char long_name[ITL_MAX_NAME + 2];
    struct itl_error err;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        memset(&err, 0, sizeof err);
        rc = itl_check_name(cases[i].name, cases[i].kind, cases[i].dirs, &err);
        ck_assert_msg((rc == 0) == cases[i].ok, "'%s': rc %d (%s)", cases[i].name, rc, err.msg);
        if (!cases[i].ok)
            ck_assert_msg(strstr(err.msg, cases[i].why), "'%s': message '%s' lacks '%s'",
                          cases[i].name, err.msg, cases[i].why);
    }
    memset(long_name, 'a', sizeof long_name);
    memcpy(long_name + ITL_MAX_NAME - 4, ".sgn", 5);
    ck_assert_int_eq(itl_check_name(long_name, ITL_KIND_SGN, 0, &err), 0);
    memcpy(long_name + ITL_MAX_NAME - 3, ".sgn", 5);
    ck_assert_int_ne(itl_check_name(long_name, ITL_KIND_SGN, 0, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "it must have 1 to 200"));
    ck_assert_int_ne(itl_check_name(NULL, ITL_KIND_SGN, 0, &err), 0);
}
END_TEST

START_TEST(test_check_kind)
{
    struct itl_sgn_opts so = {"SEP001122334455.cnf.xml.sgn", 1700000000,
                              ITL_ORDER_NAME_SERIAL_ISSUER, ITL_NAMES_CUCM, NULL};
    struct itl_signer s = tf_signer(&key, ITL_DIGEST_SHA1);
    struct itl_error err = {0};
    uint8_t *out;
    size_t out_len;

    ck_assert_int_eq(itl_check_kind(sample, sample_len, ITL_KIND_TLV, &err), 0);
    ck_assert_int_ne(itl_check_kind(sample, sample_len, ITL_KIND_SGN, &err), 0);
    ck_assert_str_eq(err.msg, "the file would be read as an ITL/CTL, not as a signed file (.sgn)");
    ck_assert_int_ne(itl_check_kind((const uint8_t *)xml, strlen(xml), ITL_KIND_SGN, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "read as not a trust file"));

    ck_assert_msg(itl_build_sgn((const uint8_t *)xml, strlen(xml), &so, &s, &out, &out_len, &err) ==
                      0,
                  "%s", err.msg);
    ck_assert_int_eq(itl_check_kind(out, out_len, ITL_KIND_SGN, &err), 0);
    ck_assert_int_ne(itl_check_kind(out, out_len, ITL_KIND_TLV, &err), 0);
    ck_assert_int_ne(itl_check_kind(out, out_len, ITL_KIND_ENC_SGN, &err), 0);
    free(out);

    /* a .sgn-shaped header whose FILENAME is not a .sgn name: parses as .sgn, still refused */
    make_fake("SEP1.cnf.xml", 13, 0, xml, strlen(xml));
    ck_assert_int_eq(itl_kind_of(fake.p, fake.len), ITL_KIND_SGN);
    ck_assert_int_ne(itl_check_kind(fake.p, fake.len, ITL_KIND_SGN, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "its FILENAME 'SEP1.cnf.xml' is not a name"));
}
END_TEST

/* The builders themselves never return a file of another kind than the one asked for. */
START_TEST(test_builders_refuse)
{
    static const char *const bad_names[] = {"ITLFile.tlv", "CTLFile.tlv.sgn", "x.TLV", "../x.sgn",
                                            "SEP1.cnf.xml"};
    struct itl_sgn_opts so = {NULL, 1700000000, ITL_ORDER_NAME_SERIAL_ISSUER, ITL_NAMES_CUCM, NULL};
    struct itl_build_opts bo = {.filename = "SEP1.cnf.xml.sgn", .timestamp = 1700000000};
    struct itl_entry e = {key.der, key.der_len, ITL_ROLE_SAST};
    struct itl_signer s = tf_signer(&key, ITL_DIGEST_SHA1);
    struct itl_error err = {0};
    uint8_t *out = NULL;
    size_t out_len;

    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        so.filename = bad_names[i];
        ck_assert_int_ne(
            itl_build_sgn((const uint8_t *)xml, strlen(xml), &so, &s, &out, &out_len, &err), 0);
        ck_assert_msg(strncmp(err.msg, "refused: ", 9) == 0, "'%s': %s", bad_names[i], err.msg);
    }
    so.filename = "SEP1.cnf.xml.sgn";
    ck_assert_int_ne(
        itl_build_sgn(sample + sample_hl, sample_len - sample_hl, &so, &s, &out, &out_len, &err),
        0);
    ck_assert_str_eq(err.msg,
                     "refused: the file would be read as an ITL/CTL, not as a signed file (.sgn)");
    ck_assert_int_ne(itl_build_tlv(&e, 1, &bo, &s, &out, &out_len, &err), 0);
    ck_assert_str_eq(err.msg,
                     "refused: the file parses as a signed file (.sgn), not as an ITL/CTL");
    bo.filename = "ITLFile.tlv";
    ck_assert_msg(itl_build_tlv(&e, 1, &bo, &s, &out, &out_len, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(itl_check_kind(out, out_len, ITL_KIND_TLV, &err), 0);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_kind");
    TCase *tc = tcase_create("kind");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120); /* valgrind */
    tcase_add_test(tc, test_kind_of);
    tcase_add_test(tc, test_name_kind);
    tcase_add_test(tc, test_check_name);
    tcase_add_test(tc, test_check_kind);
    tcase_add_test(tc, test_builders_refuse);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
