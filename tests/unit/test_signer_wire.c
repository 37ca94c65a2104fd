/* SPDX-License-Identifier: MIT */
/* The itl-signd wire protocol: round trips and every malformed-frame error. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/signer.h"

static struct sgn_cert_arg certs[SGN_MAX_BUILD_CERTS];

static uint8_t *encode_sample(size_t *len)
{
    static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    struct sgn_cert_arg c[2] = {{.function = 0, .der = der, .der_len = sizeof der},
                                {.function = 21, .token_label = "TVS-1"}};
    struct sgn_request req = {.op = POL_OP_BUILD,
                              .filename = "ITLFile.tlv",
                              .data = (const uint8_t *)"abc",
                              .len = 3,
                              .digest = 3,
                              .has_timestamp = 1,
                              .timestamp = 0x69540B16,
                              .key = "recovery",
                              .certs = c,
                              .n_certs = 2,
                              .known_itl = (const uint8_t *)"ITL",
                              .known_itl_len = 3};
    uint8_t *frame;
    ck_assert_int_eq(sgn_wire_encode_request(&req, &frame, len), 0);
    return frame;
}

/* The protocol's op numbers are fixed by docs/protocol.md, whatever order enum pol_op has;
 * every op policy knows has one, and a frame carries exactly that byte. */
START_TEST(op_numbers_are_the_protocol_s)
{
    static const struct {
        enum pol_op op;
        uint8_t wire;
    } documented[] = {{POL_OP_RESET, 0},  {POL_OP_BUILD, 1}, {POL_OP_SIGN, 2},  {POL_OP_ENCRYPT, 3},
                      {POL_OP_STATUS, 4}, {POL_OP_KEY, 5},   {POL_OP_UNLOCK, 6}};
    ck_assert_uint_eq(sizeof documented / sizeof documented[0], POL_OP_COUNT);
    for (size_t i = 0; i < POL_OP_COUNT; i++) {
        uint8_t wire = 0xff, *frame;
        size_t len, payload_len;
        struct itl_error err;
        struct sgn_request req = {.op = documented[i].op, .filename = "x"}, back;
        ck_assert_int_eq(sgn_wire_op_number(documented[i].op, &wire), 0);
        ck_assert_uint_eq(wire, documented[i].wire);
        ck_assert_int_eq(sgn_wire_encode_request(&req, &frame, &len), 0);
        /* The first field: tag 0x01, length 1, the op byte. */
        ck_assert_uint_eq(frame[SGN_WIRE_HEADER_LEN], 0x01);
        ck_assert_uint_eq(frame[SGN_WIRE_HEADER_LEN + 5], documented[i].wire);
        ck_assert_int_eq(sgn_wire_header(frame, SGN_FRAME_REQUEST, 1 << 20, &payload_len, &err), 0);
        ck_assert_int_eq(
            sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN, payload_len, &back, certs, &err),
            0);
        ck_assert_int_eq(back.op, documented[i].op);
        free(frame);
    }
    uint8_t wire;
    ck_assert_int_eq(sgn_wire_op_number(POL_OP_COUNT, &wire), -1);
}
END_TEST

START_TEST(request_round_trip)
{
    size_t len, payload_len;
    struct itl_error err;
    uint8_t *frame = encode_sample(&len);
    struct sgn_request req;

    ck_assert_int_eq(sgn_wire_header(frame, SGN_FRAME_REQUEST, 1 << 20, &payload_len, &err), 0);
    ck_assert_uint_eq(payload_len + SGN_WIRE_HEADER_LEN, len);
    ck_assert_int_eq(
        sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN, payload_len, &req, certs, &err), 0);
    ck_assert_int_eq(req.op, POL_OP_BUILD);
    ck_assert_str_eq(req.filename, "ITLFile.tlv");
    ck_assert_uint_eq(req.len, 3);
    ck_assert_mem_eq(req.data, "abc", 3);
    ck_assert_int_eq(req.digest, 3);
    ck_assert_int_eq(req.has_timestamp, 1);
    ck_assert_uint_eq(req.timestamp, 0x69540B16);
    ck_assert_str_eq(req.key, "recovery");
    ck_assert_uint_eq(req.n_certs, 2);
    ck_assert_uint_eq(req.certs[0].der_len, 5);
    ck_assert_uint_eq(req.certs[1].function, 21);
    ck_assert_str_eq(req.certs[1].token_label, "TVS-1");
    ck_assert_uint_eq(req.known_itl_len, 3);
    ck_assert_mem_eq(req.known_itl, "ITL", 3);
    free(frame);
}
END_TEST

START_TEST(reply_round_trip)
{
    struct sgn_result r = {.status = SGN_E_DENIED}, back;
    uint8_t *frame;
    size_t len, payload_len;
    struct itl_error err;
    char *json;

    snprintf(r.message, sizeof r.message, "This is not a Publisher Node");
    snprintf(r.rule, sizeof r.rule, "publisher-only");
    r.out = malloc(4);
    memcpy(r.out, "\x01\x02\x03\x04", 4);
    r.out_len = 4;
    snprintf(r.out_name, sizeof r.out_name, "x.sgn");
    ck_assert_int_eq(sgn_wire_encode_reply(&r, "{\"a\":1}", &frame, &len), 0);
    ck_assert_int_eq(sgn_wire_header(frame, SGN_FRAME_REPLY, 1 << 20, &payload_len, &err), 0);
    ck_assert_int_eq(
        sgn_wire_decode_reply(frame + SGN_WIRE_HEADER_LEN, payload_len, &back, &json, &err), 0);
    ck_assert_int_eq(back.status, SGN_E_DENIED);
    ck_assert_str_eq(back.message, "This is not a Publisher Node");
    ck_assert_str_eq(back.rule, "publisher-only");
    ck_assert_uint_eq(back.out_len, 4);
    ck_assert_mem_eq(back.out, "\x01\x02\x03\x04", 4);
    ck_assert_str_eq(back.out_name, "x.sgn");
    ck_assert_str_eq(json, "{\"a\":1}");
    free(json);
    sgn_result_free(&back);
    sgn_result_free(&r);
    free(frame);
}
END_TEST

/* The client writes out-name into a directory: a reply naming a path or a non-trust file is a
 * protocol error, whoever sent it (issue 12). */
START_TEST(reply_out_name_is_a_base_name)
{
    static const char *const bad[] = {"../x.sgn", "/etc/x.sgn", "a/x.sgn",
                                      "..",       "x.conf",     "ITLFile.tlv.sgn"};
    struct sgn_result r = {.status = SGN_OK}, back;
    uint8_t *frame;
    size_t len, payload_len;
    struct itl_error err;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(r.out_name, sizeof r.out_name, "%s", bad[i]);
        ck_assert_int_eq(sgn_wire_encode_reply(&r, NULL, &frame, &len), 0);
        ck_assert_int_eq(sgn_wire_header(frame, SGN_FRAME_REPLY, 1 << 20, &payload_len, &err), 0);
        ck_assert_int_eq(
            sgn_wire_decode_reply(frame + SGN_WIRE_HEADER_LEN, payload_len, &back, NULL, &err), -1);
        ck_assert_msg(strstr(err.msg, "the reply's output name"), "%s: %s", bad[i], err.msg);
        free(frame);
    }
}
END_TEST

static void expect_header_error(const uint8_t *hdr, size_t max, const char *needle)
{
    size_t len;
    struct itl_error err = {0};
    ck_assert_int_eq(sgn_wire_header(hdr, SGN_FRAME_REQUEST, max, &len, &err), -1);
    ck_assert_msg(strstr(err.msg, needle), "'%s' not in '%s'", needle, err.msg);
    ck_assert_int_eq(err.cls, ITL_E_INPUT); /* malformed bytes: the protocol status */
}

START_TEST(header_errors)
{
    uint8_t h[12] = {'I', 'T', 'L', 'S', 1, 1, 0, 0, 0, 0, 0, 10};
    uint8_t bad[12];

    memcpy(bad, h, 12);
    bad[0] = 'X';
    expect_header_error(bad, 100, "bad magic");
    memcpy(bad, h, 12);
    bad[4] = 9;
    expect_header_error(bad, 100, "version 9 is not supported");
    memcpy(bad, h, 12);
    bad[5] = 2;
    expect_header_error(bad, 100, "frame type 2");
    memcpy(bad, h, 12);
    bad[7] = 1;
    expect_header_error(bad, 100, "reserved");
    expect_header_error(h, 9, "exceeds the limit of 9 bytes");
}
END_TEST

static void expect_decode_error(const uint8_t *p, size_t n, const char *needle)
{
    struct sgn_request req;
    struct itl_error err = {0};
    ck_assert_int_eq(sgn_wire_decode_request(p, n, &req, certs, &err), -1);
    ck_assert_msg(strstr(err.msg, needle), "'%s' not in '%s'", needle, err.msg);
    ck_assert_int_eq(err.cls, ITL_E_INPUT); /* malformed bytes: the protocol status */
}

START_TEST(payload_errors)
{
    static const uint8_t truncated_header[] = {0x01, 0x00, 0x00};
    static const uint8_t past_end[] = {0x03, 0x00, 0x00, 0x00, 0x09, 'a'};
    static const uint8_t no_nul[] = {0x01, 0, 0, 0, 1, 2, 0x02, 0, 0, 0, 2, 'a', 'b'};
    static const uint8_t inner_nul[] = {0x01, 0, 0, 0, 1, 2, 0x02, 0, 0, 0, 3, 'a', 0, 0};
    static const uint8_t twice[] = {0x01, 0, 0, 0, 1, 2, 0x01, 0, 0, 0, 1, 2};
    static const uint8_t unknown[] = {0x01, 0, 0, 0, 1, 2, 0x7f, 0, 0, 0, 0};
    static const uint8_t no_op[] = {0x03, 0, 0, 0, 1, 'x'};
    static const uint8_t bad_op[] = {0x01, 0, 0, 0, 1, 99};
    static const uint8_t wide_op[] = {0x01, 0, 0, 0, 2, 0, 1};
    static const uint8_t short_ts[] = {0x01, 0, 0, 0, 1, 2, 0x05, 0, 0, 0, 2, 0, 1};

    expect_decode_error(truncated_header, sizeof truncated_header, "field header truncated");
    expect_decode_error(past_end, sizeof past_end, "runs past the end");
    expect_decode_error(no_nul, sizeof no_nul, "not a NUL-terminated string");
    expect_decode_error(inner_nul, sizeof inner_nul, "not a NUL-terminated string");
    expect_decode_error(twice, sizeof twice, "appears twice");
    expect_decode_error(unknown, sizeof unknown, "unknown request field 0x7f");
    expect_decode_error(no_op, sizeof no_op, "without an operation");
    expect_decode_error(bad_op, sizeof bad_op, "unknown operation 99");
    expect_decode_error(wide_op, sizeof wide_op, "must be 1 byte");
    expect_decode_error(short_ts, sizeof short_ts, "timestamp must be 4 bytes");
}
END_TEST

/* --dry-run travels as field 0x0e (u8 1); absent means a real request; any other value is
 * refused rather than read as "yes". */
START_TEST(dry_run_field)
{
    static const uint8_t two[] = {0x01, 0, 0, 0, 1, 2, 0x0e, 0, 0, 0, 1, 2};
    static const uint8_t zero[] = {0x01, 0, 0, 0, 1, 2, 0x0e, 0, 0, 0, 1, 0};
    struct sgn_request in = {.op = POL_OP_SIGN,
                             .filename = "SEP1.cnf.xml",
                             .data = (const uint8_t *)"x",
                             .len = 1,
                             .dry_run = 1};
    struct sgn_request req;
    uint8_t *frame;
    size_t len;
    struct itl_error err;

    ck_assert_int_eq(sgn_wire_encode_request(&in, &frame, &len), 0);
    ck_assert_int_eq(sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN, len - SGN_WIRE_HEADER_LEN,
                                             &req, certs, &err),
                     0);
    ck_assert_int_eq(req.dry_run, 1);
    free(frame);
    in.dry_run = 0;
    ck_assert_int_eq(sgn_wire_encode_request(&in, &frame, &len), 0);
    ck_assert_int_eq(sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN, len - SGN_WIRE_HEADER_LEN,
                                             &req, certs, &err),
                     0);
    ck_assert_int_eq(req.dry_run, 0);
    free(frame);
    expect_decode_error(two, sizeof two, "dry-run field 0x0e must be 1, not 2");
    expect_decode_error(zero, sizeof zero, "dry-run field 0x0e must be 1, not 0");
}
END_TEST

START_TEST(key_request_round_trip)
{
    static const uint8_t id[] = {0x0a, 0x0b};
    struct sgn_request in = {.op = POL_OP_KEY,
                             .key_op = SGN_KEY_ATTACH_CERT,
                             .key = "Vendor",
                             .data = (const uint8_t *)"der",
                             .len = 3,
                             .subject = "CN=x",
                             .bits = 3072,
                             .days = 30,
                             .replace = 1,
                             .key_id = id,
                             .key_id_len = sizeof id};
    struct sgn_request req;
    uint8_t *frame;
    size_t len;
    struct itl_error err;

    ck_assert_int_eq(sgn_wire_encode_request(&in, &frame, &len), 0);
    ck_assert_int_eq(sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN, len - SGN_WIRE_HEADER_LEN,
                                             &req, certs, &err),
                     0);
    ck_assert_int_eq(req.op, POL_OP_KEY);
    ck_assert_int_eq(req.key_op, SGN_KEY_ATTACH_CERT);
    ck_assert_str_eq(req.key, "Vendor");
    ck_assert_str_eq(req.subject, "CN=x");
    ck_assert_uint_eq(req.bits, 3072);
    ck_assert_uint_eq(req.days, 30);
    ck_assert_int_eq(req.replace, 1);
    ck_assert_uint_eq(req.key_id_len, 2);
    ck_assert_mem_eq(req.key_id, id, 2);
    ck_assert_str_eq(sgn_key_op_name(req.key_op), "key attach-cert");
    free(frame);
}
END_TEST

/* op unlock (docs/protocol.md "Unlocking the recovery key"): fields 0x18-0x1a round-trip, and
 * are refused on another op, with a wrong length, a zero duration or an empty PIN. */
START_TEST(unlock_request_round_trip)
{
    struct sgn_request in = {.op = POL_OP_UNLOCK,
                             .key = "recovery",
                             .unlock_s = 120,
                             .pin = (const uint8_t *)"12\0345",
                             .pin_len = 5};
    struct sgn_request req;
    uint8_t *frame;
    size_t len;
    struct itl_error err;
    static const uint8_t on_sign[] = {0x01, 0, 0, 0, 1, 2, 0x1a, 0, 0, 0, 1, '1'};
    static const uint8_t lock_2[] = {0x01, 0, 0, 0, 1, 6, 0x18, 0, 0, 0, 1, 2};
    static const uint8_t zero_s[] = {0x01, 0, 0, 0, 1, 6, 0x19, 0, 0, 0, 4, 0, 0, 0, 0};
    static const uint8_t empty_pin[] = {0x01, 0, 0, 0, 1, 6, 0x1a, 0, 0, 0, 0};

    ck_assert_int_eq(sgn_wire_encode_request(&in, &frame, &len), 0);
    ck_assert_int_eq(sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN, len - SGN_WIRE_HEADER_LEN,
                                             &req, certs, &err),
                     0);
    ck_assert_int_eq(req.op, POL_OP_UNLOCK);
    ck_assert_int_eq(req.lock, 0);
    ck_assert_uint_eq(req.unlock_s, 120);
    ck_assert_uint_eq(req.pin_len, 5);
    ck_assert_mem_eq(req.pin, "12\0345", 5); /* bytes, a NUL inside kept */
    free(frame);
    in = (struct sgn_request){.op = POL_OP_UNLOCK, .lock = 1};
    ck_assert_int_eq(sgn_wire_encode_request(&in, &frame, &len), 0);
    ck_assert_int_eq(sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN, len - SGN_WIRE_HEADER_LEN,
                                             &req, certs, &err),
                     0);
    ck_assert_int_eq(req.lock, 1);
    ck_assert_ptr_null(req.pin);
    free(frame);
    expect_decode_error(on_sign, sizeof on_sign,
                        "unlock fields (0x18-0x1a) in a request that is not op unlock");
    expect_decode_error(lock_2, sizeof lock_2, "unlock-action 0x18 must be 1 (lock), not 2");
    expect_decode_error(zero_s, sizeof zero_s, "unlock-seconds 0x19 must not be 0");
    expect_decode_error(empty_pin, sizeof empty_pin, "pin 0x1a must be 1 to 256 bytes, not 0");
}
END_TEST

START_TEST(key_field_errors)
{
    /* op key without its sub-op; a sub-op on op sign; sub-op 6; flags bit 1; bits in 2 bytes */
    static const uint8_t no_sub[] = {0x01, 0, 0, 0, 1, 5};
    static const uint8_t sub_on_sign[] = {0x01, 0, 0, 0, 1, 2, 0x10, 0, 0, 0, 1, 3};
    static const uint8_t bad_sub[] = {0x01, 0, 0, 0, 1, 5, 0x10, 0, 0, 0, 1, 6};
    static const uint8_t bad_flags[] = {0x01, 0, 0, 0,    1, 5, 0x10, 0, 0,
                                        0,    1, 3, 0x14, 0, 0, 0,    1, 2};
    static const uint8_t short_bits[] = {0x01, 0, 0,    0, 1, 5, 0x10, 0, 0, 0,
                                         1,    0, 0x12, 0, 0, 0, 2,    8, 0};

    expect_decode_error(no_sub, sizeof no_sub, "without its key operation (field 0x10)");
    expect_decode_error(sub_on_sign, sizeof sub_on_sign, "in a request that is not op key");
    expect_decode_error(bad_sub, sizeof bad_sub, "unknown key operation 6");
    expect_decode_error(bad_flags, sizeof bad_flags, "unknown key flags 0x02");
    expect_decode_error(short_bits, sizeof short_bits, "field 0x12 must be 4 bytes, not 2");
}
END_TEST

START_TEST(too_many_certs)
{
    uint8_t p[6 + (SGN_MAX_BUILD_CERTS + 1) * 9];
    size_t n = 0;
    p[n++] = 0x01;
    memcpy(p + n, "\0\0\0\1\1", 5);
    n += 5;
    for (int i = 0; i <= SGN_MAX_BUILD_CERTS; i++) {
        memcpy(p + n, "\x09\0\0\0\4\0\0x\0", 9);
        n += 9;
    }
    expect_decode_error(p, n, "more than 64 certificates");
}
END_TEST

START_TEST(reply_without_status)
{
    static const uint8_t p[] = {0x42, 0, 0, 0, 2, 'x', 0};
    struct sgn_result r;
    struct itl_error err = {0};
    char *json;
    ck_assert_int_eq(sgn_wire_decode_reply(p, sizeof p, &r, &json, &err), -1);
    ck_assert_ptr_null(strstr(err.msg, "xyz"));
    ck_assert_ptr_nonnull(strstr(err.msg, "without a status"));
    ck_assert_ptr_null(r.out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signer-wire");
    TCase *tc = tcase_create("wire");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, op_numbers_are_the_protocol_s);
    tcase_add_test(tc, request_round_trip);
    tcase_add_test(tc, reply_round_trip);
    tcase_add_test(tc, reply_out_name_is_a_base_name);
    tcase_add_test(tc, header_errors);
    tcase_add_test(tc, payload_errors);
    tcase_add_test(tc, dry_run_field);
    tcase_add_test(tc, key_request_round_trip);
    tcase_add_test(tc, key_field_errors);
    tcase_add_test(tc, unlock_request_round_trip);
    tcase_add_test(tc, too_many_certs);
    tcase_add_test(tc, reply_without_status);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
