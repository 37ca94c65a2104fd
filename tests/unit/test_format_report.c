/* SPDX-License-Identifier: MIT */
/* Phone reports (format/report.c, issue 15): the DeviceTLInfo alarm, dumps of many, CSV. */
#include "tests/unit/test_format_util.h"

#define MAX_SEEN 8

struct seen {
    struct itl_report r[MAX_SEEN];
    size_t n;
    long warn_line[MAX_SEEN];
    char warn_msg[MAX_SEEN][256];
    size_t n_warn;
};

static int on_report(void *ctx, const struct itl_report *r)
{
    struct seen *s = ctx;
    if (s->n < MAX_SEEN)
        s->r[s->n] = *r;
    s->n++;
    return 0;
}

static void on_warn(void *ctx, long line, const char *msg)
{
    struct seen *s = ctx;
    if (s->n_warn < MAX_SEEN) {
        s->warn_line[s->n_warn] = line;
        snprintf(s->warn_msg[s->n_warn], sizeof s->warn_msg[0], "%s", msg);
    }
    s->n_warn++;
}

static long parse(const char *text, struct seen *s)
{
    struct itl_error err = {0};
    long n;

    memset(s, 0, sizeof *s);
    n = itl_reports_parse(text, strlen(text), on_report, on_warn, s, &err);
    ck_assert_msg(n >= 0, "%s", err.msg);
    return n;
}

static const uint8_t SAMPLE_SHA1[ITL_SHA1_LEN] = {0x65, 0xFB, 0x31, 0x6E, 0x75, 0x3A, 0x5F,
                                                  0x6F, 0x3B, 0x05, 0xF0, 0x25, 0xD7, 0xA9,
                                                  0x47, 0x45, 0xB6, 0x50, 0xEE, 0x47};

START_TEST(test_sample_alarm)
{
    char path[1024];
    size_t len;
    struct seen s;
    char *text;

    snprintf(path, sizeof path, "%s/tests/unit/fixtures/DeviceTLInfo-alarm.xml", testlib_src());
    text = (char *)testlib_read(path, &len);
    text = realloc(text, len + 1);
    text[len] = '\0';
    ck_assert_int_eq(parse(text, &s), 1);
    ck_assert_int_eq((int)s.n_warn, 0);
    ck_assert_str_eq(s.r[0].device, "SEP00112233AABB");
    ck_assert_int_eq(s.r[0].has_itl, 1);
    ck_assert_mem_eq(s.r[0].itl_sha1, SAMPLE_SHA1, ITL_SHA1_LEN);
    ck_assert_str_eq(s.r[0].itl_tftp, "cucm-pub.example.net");
    ck_assert_int_eq(s.r[0].has_ctl, 0);
    ck_assert_str_eq(s.r[0].ctl_tftp, "N/A");
    ck_assert_int_eq(s.r[0].status_code, 3);
    ck_assert_int_eq((int)s.r[0].line, 2);
    free(text);
}
END_TEST

#define ALARM(dev, sig)                                                                            \
    "<x-cisco-alarm><Alarm Name=\"DeviceTLInfo\"><ParameterList>\n"                                \
    "<String name=\"DeviceName\">" dev "</String>\n"                                               \
    "<String name=\"ITL_Signature\">" sig "</String>\n"                                            \
    "</ParameterList></Alarm></x-cisco-alarm>\n"
#define SIG_A "65 FB 31 6E 75 3A 5F 6F 3B 05 F0 25 D7 A9 47 45 B6 50 EE 47"

/* A syslog dump: prefixes, a malformed document, a truncated one, bad hex; the good ones
 * still come through and every bad one is named by its line. */
START_TEST(test_dump_bad_documents)
{
    struct seen s;
    const char *dump = "Dec  3 10:00:00 cucm ccm: " ALARM("SEP000000000001", SIG_A) /* 1 */
        "Dec  3 10:00:01 cucm ccm: <x-cisco-alarm><Alarm><String name=\"DeviceName\">x"
        "</Alarm></x-cisco-alarm>\n"              /* 5: mismatched tag */
        ALARM("SEP000000000002", "65 FB 31 ZZ")   /* 6: bad hex */
        ALARM("SEP000000000003", "Not Installed") /* 10 */
        "<x-cisco-alarm><Alarm>\n"                /* 14: truncated */
        ALARM("SEP000000000004", SIG_A);          /* 15 */

    ck_assert_int_eq(parse(dump, &s), 3);
    ck_assert_str_eq(s.r[0].device, "SEP000000000001");
    ck_assert_str_eq(s.r[1].device, "SEP000000000003");
    ck_assert_int_eq(s.r[1].has_itl, 0);
    ck_assert_str_eq(s.r[2].device, "SEP000000000004");
    ck_assert_int_eq((int)s.r[2].line, 15);
    ck_assert_int_eq((int)s.n_warn, 3);
    ck_assert_int_eq((int)s.warn_line[0], 5);
    ck_assert_msg(strstr(s.warn_msg[0], "not well-formed") != NULL, "%s", s.warn_msg[0]);
    ck_assert_int_eq((int)s.warn_line[1], 6);
    ck_assert_msg(strstr(s.warn_msg[1], "ITL_Signature") != NULL, "%s", s.warn_msg[1]);
    ck_assert_int_eq((int)s.warn_line[2], 14);
    ck_assert_msg(strstr(s.warn_msg[2], "truncated") != NULL, "%s", s.warn_msg[2]);
}
END_TEST

START_TEST(test_sha1_text)
{
    uint8_t md[ITL_SHA1_LEN];

    ck_assert_int_eq(itl_report_sha1(SIG_A " ", strlen(SIG_A) + 1, md), 1);
    ck_assert_mem_eq(md, SAMPLE_SHA1, ITL_SHA1_LEN);
    ck_assert_int_eq(itl_report_sha1("Not Installed", 13, md), 0);
    ck_assert_int_eq(itl_report_sha1("65 FB", 5, md), -1);                     /* short */
    ck_assert_int_eq(itl_report_sha1(SIG_A " 00", strlen(SIG_A) + 3, md), -1); /* 21 bytes */
    ck_assert_int_eq(itl_report_sha1("65FB316E753A5F6F3B05F025D7A94745B650EE47", 40, md), -1);
    ck_assert_int_eq(itl_report_sha1("6 5", 3, md), -1);
}
END_TEST

START_TEST(test_csv)
{
    struct seen s;
    struct itl_error err = {0};
    const char *csv = "DeviceName,ITL_Signature,ITL_TFTP_Server\n"    /* 1 */
                      "SEP000000000001," SIG_A ",cucm-pub\n"          /* 2 */
                      "SEP000000000002,12 34,cucm-pub\n"              /* 3: bad hex */
                      "\n"                                            /* 4 */
                      "SEP000000000003," SIG_A "\n"                   /* 5: 2 fields */
                      "\"SEP000000000004\",Not Installed,cucm-sub\n"; /* 6 */

    ck_assert_int_eq(parse(csv, &s), 2);
    ck_assert_str_eq(s.r[0].device, "SEP000000000001");
    ck_assert_mem_eq(s.r[0].itl_sha1, SAMPLE_SHA1, ITL_SHA1_LEN);
    ck_assert_str_eq(s.r[0].itl_tftp, "cucm-pub");
    ck_assert_str_eq(s.r[1].device, "SEP000000000004");
    ck_assert_int_eq(s.r[1].has_itl, 0);
    ck_assert_int_eq((int)s.r[1].line, 6);
    ck_assert_int_eq((int)s.n_warn, 2);
    ck_assert_int_eq((int)s.warn_line[0], 3);
    ck_assert_int_eq((int)s.warn_line[1], 5);
    ck_assert_msg(strstr(s.warn_msg[1], "2 fields") != NULL, "%s", s.warn_msg[1]);

    /* A header without ITL_Signature is an error (nothing can be read), not a warning. */
    ck_assert_int_eq(
        itl_reports_parse("DeviceName,Foo\nSEP1,x\n", 22, on_report, on_warn, &s, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_INPUT);
    ck_assert_msg(strstr(err.msg, "ITL_Signature") != NULL, "%s", err.msg);
}
END_TEST

/* A 1 MB line or String value is skipped with a message, not copied or crashed on. */
START_TEST(test_huge_lines)
{
    size_t big = 1 << 20;
    char *text = malloc(big + 512);
    struct seen s;
    int n;

    n = snprintf(text, 512, "DeviceName,ITL_Signature\nSEP1,");
    memset(text + n, 'A', big);
    strcpy(text + n + big, "\nSEP2," SIG_A "\n");
    ck_assert_int_eq(parse(text, &s), 1);
    ck_assert_str_eq(s.r[0].device, "SEP2");
    ck_assert_int_eq((int)s.n_warn, 1);
    ck_assert_int_eq((int)s.warn_line[0], 2);

    n = snprintf(text, 512, "<x-cisco-alarm><String name=\"DeviceName\">");
    memset(text + n, 'B', big);
    strcpy(text + n + big, "</String></x-cisco-alarm>\n" ALARM("SEP3", SIG_A));
    ck_assert_int_eq(parse(text, &s), 1);
    ck_assert_str_eq(s.r[0].device, "SEP3");
    ck_assert_int_eq((int)s.n_warn, 1);
    ck_assert_msg(strstr(s.warn_msg[0], "longer") != NULL, "%s", s.warn_msg[0]);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_report");
    TCase *tc = tcase_create("report");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 120); /* valgrind */
    tcase_add_test(tc, test_sample_alarm);
    tcase_add_test(tc, test_dump_bad_documents);
    tcase_add_test(tc, test_sha1_text);
    tcase_add_test(tc, test_csv);
    tcase_add_test(tc, test_huge_lines);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
