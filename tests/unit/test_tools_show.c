/* SPDX-License-Identifier: MIT */
/*
 * tools: show's checksum block (MD5 and SHA-1 of the whole file, known vectors) and the
 * `show --cucm` printer on the certutils sample: CUCM's spellings and tabs, no decoded value
 * where CUCM prints none, signature bytes without leading zeros, no PADDING line, the
 * "last modified" line in the local time zone, diagnostics kept off the dump.
 */
#include "tools/show.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/testlib.h"

START_TEST(test_checksums_known_vectors)
{
    struct show_checksums c;

    ck_assert_int_eq(show_file_checksums((const uint8_t *)"abc", 3, &c), 0);
    ck_assert_str_eq(c.md5, "900150983cd24fb0d6963f7d28e17f72");
    ck_assert_str_eq(c.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    ck_assert_int_eq(show_file_checksums((const uint8_t *)"", 0, &c), 0);
    ck_assert_str_eq(c.md5, "d41d8cd98f00b204e9800998ecf8427e");
    ck_assert_str_eq(c.sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}
END_TEST

static uint8_t *sample;
static size_t sample_len;
static struct itl_file f;

static void setup(void)
{
    char path[1024];
    struct itl_error err;

    snprintf(path, sizeof path, "%s/tests/unit/fixtures/ITLFile-certutils-sample.tlv",
             testlib_src());
    sample = testlib_read(path, &sample_len);
    ck_assert_int_eq(itl_parse(sample, sample_len, ITL_KIND_AUTO, &f, &err), 0);
}

static void teardown(void)
{
    itl_file_free(&f);
    free(sample);
}

/* show_print_cucm into memory; *err_text gets what went to err_out. */
static char *dump(const time_t *mtime, enum outcome outcome, char **err_text)
{
    struct verdict v = {.outcome = outcome, .record = 0};
    char *text = NULL, *errs = NULL;
    size_t n = 0, en = 0;
    FILE *out = open_memstream(&text, &n), *err_out = open_memstream(&errs, &en);

    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(err_out);
    snprintf(v.why, sizeof v.why, "the signature does not verify");
    show_print_cucm(out, err_out, &f, itl_find_signer_record(&f), &v, mtime);
    fclose(out);
    fclose(err_out);
    *err_text = errs;
    return text;
}

START_TEST(test_cucm_layout_of_the_sample)
{
    char *errs, *text = dump(NULL, VERIFIED, &errs);

    ck_assert_ptr_nonnull(strstr(text, "The checksum value of the ITL file:\n"));
    ck_assert_ptr_nonnull(strstr(text, "Length of ITL file: 10370\n\nParse ITL File\n"));
    ck_assert_ptr_null(strstr(text, "last modified")); /* no mtime given */
    ck_assert_ptr_nonnull(strstr(text, "\n8\tDIGESTALGORTITHM\t1\t\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n10\tSIGNATUREALGORTITHM\t1\t\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n6\tCANAME\t\t23\tCN=SAST,O=SAST,OU=SAST\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n12\tSIGNATURE\t256\t\naf  a0  9d  65  7a  c7  65  23\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n7e  16  1e  b0  d2  48  45  9\n")); /* 0x09: "9" */
    ck_assert_ptr_nonnull(strstr(text, "\n14\tFILENAME\t12\t\n15\tTIMESTAMP\t4\t\n"));
    ck_assert_ptr_null(strstr(text, "PADDING"));
    ck_assert_ptr_null(strstr(text, "ITLFile.tlv")); /* FILENAME's value: CUCM prints none */
    ck_assert_ptr_nonnull(strstr(text, "\nITL Record #:1\n----\nBYTEPOS\tTAG\t\tLENGTH\tVALUE\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n4\tFUNCTION\t2\tAPP-SERVER\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n7\tPUBLICKEY\t270\t\n8\tSIGNATURE\t256\t\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "SERIALNUMBER\t16\t6B:A5:DE:3A:26:0B:06:93:37:C7:5B:38:BE:3C:2D:74\n"));
    ck_assert_ptr_nonnull(strstr(text, "This etoken was used to sign the ITL file.\n"));
    ck_assert_str_eq(text + strlen(text) - 41, "\nThe ITL file was verified successfully.\n");
    ck_assert_str_eq(errs, "");
    free(text);
    free(errs);
}
END_TEST

START_TEST(test_cucm_modified_line_and_verdict)
{
    time_t t = 1393439067; /* 2014-02-26 18:24:27 UTC */
    char *errs, *text;

    setenv("TZ", "PST8PDT", 1);
    tzset();
    text = dump(&t, INVALID, &errs);
    ck_assert_ptr_nonnull(
        strstr(text, "\nThe ITL File was last modified on Wed Feb 26 10:24:27 PST 2014\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "\nThe ITL file could not be verified: the signature does not verify.\n"));
    free(text);
    free(errs);
}
END_TEST

START_TEST(test_cucm_keeps_diagnostics_off_the_dump)
{
    struct itl_error err;
    char *errs, *text;

    itl_file_free(&f);
    sample[388 + 5 + 26 + 26 + 19 + 5 + 3 + 20] ^= 1; /* record 1's PUBLICKEY */
    ck_assert_int_eq(itl_parse(sample, sample_len, ITL_KIND_AUTO, &f, &err), 0);
    text = dump(NULL, VERIFIED, &errs);
    ck_assert_ptr_null(strstr(text, "does not match"));
    ck_assert_ptr_nonnull(strstr(errs, "ITL record #1 does not match its certificate"));
    free(text);
    free(errs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tools_show");
    TCase *tc = tcase_create("show");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_checksums_known_vectors);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_cucm_layout_of_the_sample);
    tcase_add_test(tc, test_cucm_modified_line_and_verdict);
    tcase_add_test(tc, test_cucm_keeps_diagnostics_off_the_dump);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
