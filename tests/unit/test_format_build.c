/* SPDX-License-Identifier: MIT */
/* Building, re-signing and verifying ITL/CTL and .sgn files with keys made in the test. */
#include "tests/unit/test_format_util.h"

#include <sys/stat.h>

static const uint32_t when = 1700000000;

static struct itl_build_opts cucm_opts(void)
{
    return (struct itl_build_opts){
        "ITLFile.tlv", when, ITL_LAYOUT_CUCM, ITL_ORDER_NAME_SERIAL_ISSUER, ITL_NAMES_CUCM, 0,
        NULL};
}

static void check_built(const uint8_t *out, size_t out_len, int digest, size_t sig_bytes,
                        size_t n_records, struct itl_file *f)
{
    struct itl_error err = {0};
    long idx;

    tf_parse_ok(out, out_len, ITL_KIND_AUTO, f);
    ck_assert_int_eq(f->kind, ITL_KIND_TLV);
    ck_assert_uint_eq(f->hdr.header_length % 4, 0);
    ck_assert_uint_eq(f->hdr.digest, (unsigned)digest);
    ck_assert_uint_eq(f->hdr.signature.len, sig_bytes);
    ck_assert_uint_eq(f->hdr.sig_modulus, sig_bytes == 64    ? 0
                                          : sig_bytes == 128 ? 1
                                          : sig_bytes == 256 ? 2
                                                             : 3);
    ck_assert_uint_eq(f->hdr.timestamp, when);
    ck_assert_uint_eq(f->n_records, n_records);
    ck_assert_msg(itl_verify_self(f, &idx, &err) == 0, "%s", err.msg);
    ck_assert_int_ge(idx, 0);
    for (size_t i = 0; i < f->n_records; i++)
        ck_assert_msg(itl_record_check(&f->records[i], &err) == 0, "record %zu: %s", i + 1,
                      err.msg);
}

/* SHA-1/256/512 x 1024/2048/4096-bit keys, both layouts, both orders, both name styles. */
START_TEST(test_build_parse_verify_matrix)
{
    static const int digests[] = {ITL_DIGEST_SHA1, ITL_DIGEST_SHA256, ITL_DIGEST_SHA512};
    static const int bits[] = {1024, 2048, 4096};
    struct tf_key sast, tftp;

    tf_make_key(&tftp, 1024, "/CN=cucm-pub/OU=TAC/O=Cisco", 0x77);
    for (size_t b = 0; b < 3; b++) {
        /* CN first, as CUCM encodes its certificates: both styles keep that order */
        tf_make_key(&sast, bits[b], "/CN=ITLRECOVERY_cucm-pub/OU=TAC/O=Cisco/C=NZ", 0x1234);
        for (size_t d = 0; d < 3; d++) {
            struct itl_entry entries[] = {{sast.der, sast.der_len, ITL_ROLE_SAST},
                                          {tftp.der, tftp.der_len, ITL_ROLE_TFTP},
                                          {tftp.der, tftp.der_len, ITL_ROLE_TVS}};
            struct itl_signer signer = tf_signer(&sast, digests[d]);
            struct itl_build_opts opts = cucm_opts();
            struct itl_error err = {0};
            struct itl_file f;
            uint8_t *out;
            size_t out_len;

            if ((b + d) % 2) { /* alternate the certutils conventions in */
                opts.layout = ITL_LAYOUT_CERTUTILS;
                opts.signer_order = ITL_ORDER_NAME_ISSUER_SERIAL;
                opts.names = ITL_NAMES_CERTUTILS;
                opts.signer_version = 0x0101;
            }
            ck_assert_msg(itl_build_tlv(entries, 3, &opts, &signer, &out, &out_len, &err) == 0,
                          "%d bits, digest %d: %s", bits[b], digests[d], err.msg);
            check_built(out, out_len, digests[d], (size_t)bits[b] / 8, 3, &f);
            ck_assert_int_eq(f.hdr.signer_order, opts.signer_order);
            ck_assert_int_eq(f.hdr.has_signer_version, opts.signer_version != 0);
            if (opts.names == ITL_NAMES_CUCM) {
                ck_assert_uint_eq(f.hdr.signer_name.len,
                                  strlen("CN=ITLRECOVERY_cucm-pub;OU=TAC;O=Cisco;C=NZ"));
                ck_assert_mem_eq(f.hdr.signer_name.ptr,
                                 "CN=ITLRECOVERY_cucm-pub;OU=TAC;O=Cisco;C=NZ",
                                 f.hdr.signer_name.len);
                ck_assert_ptr_nonnull(f.records[0].dnsname.ptr);
                ck_assert_uint_eq(f.records[0].dnsname.len, 0);
                ck_assert_uint_eq(f.records[0].tlvs[1].tag, 2);
            } else {
                ck_assert_mem_eq(f.hdr.signer_name.ptr,
                                 "CN=ITLRECOVERY_cucm-pub,OU=TAC,O=Cisco,C=NZ",
                                 f.hdr.signer_name.len);
                ck_assert_ptr_null(f.records[0].dnsname.ptr);
            }
            ck_assert_uint_eq(f.records[1].function, ITL_ROLE_TFTP);
            ck_assert_uint_eq(f.records[2].function, ITL_ROLE_TVS);
            /* the serial: unsigned, minimal */
            ck_assert_uint_eq(f.hdr.signer_serial.len, 2);
            itl_file_free(&f);
            free(out);
        }
        tf_free_key(&sast);
    }
    tf_free_key(&tftp);
}
END_TEST

/* An independent check: the signed bytes cut out by plain arithmetic over the header, and the
 * signature verified by the openssl command line with the signer's public key. */
static void write_signed_parts(const uint8_t *d, size_t len, const char *dir)
{
    size_t pos = 0, n = 0;
    char path[1024];
    FILE *fp;

    for (;;) {
        uint8_t tag = d[pos];
        ck_assert_uint_lt(pos + 3, len);
        if (tag == 13) {
            pos++;
            continue;
        }
        n = (size_t)(d[pos + 1] << 8 | d[pos + 2]);
        if (tag == 12)
            break;
        pos += (tag == 3 || tag == 7 || tag == 9) ? 3 : 3 + n;
    }
    snprintf(path, sizeof path, "%s/signed", dir);
    fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    fwrite(d, 1, pos, fp);
    fwrite(d + pos + 3 + n, 1, len - pos - 3 - n, fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/sig", dir);
    testlib_write(path, d + pos + 3, n);
}

static void write_pubkey(const struct tf_key *k, const char *dir)
{
    char path[1024];
    FILE *fp;

    snprintf(path, sizeof path, "%s/pub.pem", dir);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(PEM_write_PUBKEY(fp, k->pk), 1);
    fclose(fp);
}

START_TEST(test_openssl_cli_verifies_built_files)
{
    struct tf_key sast;
    struct itl_entry e;
    struct itl_build_opts opts = cucm_opts();
    struct itl_sgn_opts sopts = {"SEP001122334455.cnf.xml.sgn", when, ITL_ORDER_NAME_SERIAL_ISSUER,
                                 ITL_NAMES_CUCM, NULL};
    struct itl_signer signer;
    struct itl_error err = {0};
    uint8_t *out;
    size_t out_len;
    char dir[512];
    static const char xml[] = "<device><fullConfig>true</fullConfig></device>\n";

    snprintf(dir, sizeof dir, "%s", testlib_tmpdir("fmt-openssl"));
    tf_make_key(&sast, 2048, "/CN=SAST/O=test", 99);
    e = (struct itl_entry){sast.der, sast.der_len, ITL_ROLE_SAST};
    write_pubkey(&sast, dir);

    signer = tf_signer(&sast, ITL_DIGEST_SHA1);
    ck_assert_msg(itl_build_tlv(&e, 1, &opts, &signer, &out, &out_len, &err) == 0, "%s", err.msg);
    write_signed_parts(out, out_len, dir);
    ck_assert_int_eq(testlib_sh("openssl dgst -sha1 -verify '%s/pub.pem' -signature '%s/sig' "
                                "'%s/signed' >/dev/null",
                                dir, dir, dir),
                     0);
    /* The check is not vacuous: a flipped byte fails it. */
    out[out_len - 1] ^= 1;
    write_signed_parts(out, out_len, dir);
    ck_assert_int_ne(testlib_sh("openssl dgst -sha1 -verify '%s/pub.pem' -signature '%s/sig' "
                                "'%s/signed' >/dev/null 2>&1",
                                dir, dir, dir),
                     0);
    free(out);

    signer = tf_signer(&sast, ITL_DIGEST_SHA512);
    ck_assert_msg(itl_build_sgn((const uint8_t *)xml, strlen(xml), &sopts, &signer, &out, &out_len,
                                &err) == 0,
                  "%s", err.msg);
    write_signed_parts(out, out_len, dir);
    ck_assert_int_eq(testlib_sh("openssl dgst -sha512 -verify '%s/pub.pem' -signature '%s/sig' "
                                "'%s/signed' >/dev/null",
                                dir, dir, dir),
                     0);
    free(out);
    testlib_sh("rm -rf '%s'", dir);
    tf_free_key(&sast);
}
END_TEST

START_TEST(test_sgn_round_trip)
{
    struct tf_key tftp, other;
    struct itl_sgn_opts opts = {"SEP001122334455.cnf.xml.sgn", when, ITL_ORDER_NAME_SERIAL_ISSUER,
                                ITL_NAMES_CUCM, NULL};
    struct itl_error err = {0};
    static const char payload[] = "<device>\n  <fullConfig>true</fullConfig>\n</device>\n";
    static const int digests[] = {ITL_DIGEST_SHA1, ITL_DIGEST_SHA256, ITL_DIGEST_SHA512};

    tf_make_key(&tftp, 2048, "/CN=cucm-pub.example/OU=TAC/O=Cisco", 0x0102);
    tf_make_key(&other, 2048, "/CN=someone-else", 0x0102);
    for (size_t d = 0; d < 3; d++) {
        for (size_t plen = 0; plen <= 1; plen++) {
            struct itl_signer signer = tf_signer(&tftp, digests[d]);
            struct itl_file f;
            uint8_t *out;
            size_t out_len, n = plen ? strlen(payload) : 0;

            ck_assert_msg(itl_build_sgn((const uint8_t *)payload, n, &opts, &signer, &out, &out_len,
                                        &err) == 0,
                          "%s", err.msg);
            tf_parse_ok(out, out_len, ITL_KIND_AUTO, &f);
            ck_assert_int_eq(f.kind, ITL_KIND_SGN);
            ck_assert_uint_eq(f.hdr.version_major, 1);
            ck_assert_uint_eq(f.hdr.version_minor, 0);
            ck_assert_uint_eq(f.hdr.header_length % 4, 0);
            ck_assert_int_eq(f.hdr.has_signer_version, 0);
            ck_assert_uint_eq(f.payload.len, n);
            ck_assert_uint_eq(f.hdr.header_length + n, out_len);
            if (n) /* strip: the original bytes */
                ck_assert_mem_eq(f.payload.ptr, payload, n);
            ck_assert_mem_eq(f.hdr.filename.ptr, opts.filename, strlen(opts.filename));
            ck_assert_msg(itl_verify_with_cert(&f, tftp.der, tftp.der_len, &err) == 0, "%s",
                          err.msg);
            ck_assert_int_ne(itl_verify_with_cert(&f, other.der, other.der_len, &err), 0);
            ck_assert_int_ne(itl_verify_self(&f, NULL, &err), 0);
            ck_assert_ptr_nonnull(strstr(err.msg, "carries no certificates"));
            itl_file_free(&f);
            free(out);
        }
    }
    /* a FILENAME ending in .tlv does not make it an ITL when parsed as a .sgn */
    tf_free_key(&tftp);
    tf_free_key(&other);
}
END_TEST

static int count_tag_in_header(const struct itl_file *f, uint8_t tag)
{
    int n = 0;
    for (size_t i = 0; i < f->hdr.n_tlvs; i++)
        n += f->hdr.tlvs[i].tag == tag;
    return n;
}

/* Re-sign: records byte-identical, conventions kept, signer fields from the chosen record. */
START_TEST(test_resign)
{
    struct tf_key a, b;
    struct itl_entry entries[3];
    struct itl_build_opts opts = cucm_opts();
    struct itl_signer sa, sb;
    struct itl_error err = {0};
    struct itl_file in, out_f;
    uint8_t *built, *grown, *out;
    size_t built_len, grown_len, out_len, hl;
    long idx;

    tf_make_key(&a, 1024, "/CN=cucm-pub;x/O=Cisco", 0x11);
    tf_make_key(&b, 2048, "/CN=ITLRECOVERY_cucm-pub/O=Cisco", 0x8899aabb);
    entries[0] = (struct itl_entry){a.der, a.der_len, ITL_ROLE_SAST};
    entries[1] = (struct itl_entry){a.der, a.der_len, ITL_ROLE_CCM_TFTP};
    entries[2] = (struct itl_entry){b.der, b.der_len, ITL_ROLE_SAST};
    sa = tf_signer(&a, ITL_DIGEST_SHA1);
    sb = tf_signer(&b, ITL_DIGEST_SHA256);
    opts.signer_version = 0x0100;
    ck_assert_int_eq(itl_build_tlv(entries, 3, &opts, &sa, &built, &built_len, &err), 0);

    /* Add an unknown header tag (0x30) before FILENAME; re-signing must keep it. */
    tf_parse_ok(built, built_len, ITL_KIND_AUTO, &in);
    hl = in.hdr.header_length;
    {
        size_t at = in.hdr.tlvs[in.hdr.n_tlvs - 2].offset; /* FILENAME */
        grown_len = built_len + 4;
        grown = malloc(grown_len);
        memcpy(grown, built, at);
        memcpy(grown + at, "\x30\x00\x01\x2a", 4);
        memcpy(grown + at + 4, built + at, built_len - at);
        tf_set_u16(grown + 8, (uint16_t)(hl + 4));
    }
    itl_file_free(&in);
    tf_parse_ok(grown, grown_len, ITL_KIND_AUTO, &in);
    ck_assert_uint_eq(in.hdr.n_extra, 1);
    ck_assert_uint_eq(in.hdr.extra[0].tag, 0x30);

    ck_assert_msg(itl_resign_tlv(&in, 2, when + 60, &sb, &out, &out_len, &err) == 0, "%s", err.msg);
    tf_parse_ok(out, out_len, ITL_KIND_AUTO, &out_f);
    /* records: byte-identical */
    ck_assert_uint_eq(out_len - out_f.hdr.header_length, grown_len - in.hdr.header_length);
    ck_assert_mem_eq(out + out_f.hdr.header_length, grown + in.hdr.header_length,
                     out_len - out_f.hdr.header_length);
    /* conventions kept, signer replaced */
    ck_assert_uint_eq(out_f.hdr.header_length % 4, 0);
    ck_assert_int_eq(out_f.hdr.has_signer_version, 1);
    ck_assert_int_eq(out_f.hdr.signer_order, ITL_ORDER_NAME_SERIAL_ISSUER);
    ck_assert_uint_eq(out_f.hdr.n_extra, 1);
    ck_assert_uint_eq(out_f.hdr.extra[0].tag, 0x30);
    ck_assert_uint_eq(out_f.hdr.extra[0].value.ptr[0], 0x2a);
    ck_assert_int_eq(count_tag_in_header(&out_f, 14), 1);
    ck_assert_uint_eq(out_f.hdr.timestamp, when + 60);
    ck_assert_int_eq(out_f.hdr.digest, ITL_DIGEST_SHA256);
    ck_assert_uint_eq(out_f.hdr.sig_modulus, 2);
    ck_assert_uint_eq(out_f.hdr.signer_name.len, in.records[2].subject.len);
    ck_assert_mem_eq(out_f.hdr.signer_name.ptr, in.records[2].subject.ptr,
                     in.records[2].subject.len);
    ck_assert_uint_eq(out_f.hdr.signer_serial.len, 4);
    ck_assert_msg(itl_verify_self(&out_f, &idx, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(idx, 2);
    itl_file_free(&out_f);
    free(out);

    /* refusals */
    ck_assert_int_ne(itl_resign_tlv(&in, 1, when, &sa, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "CCM+TFTP, not a SAST record"));
    ck_assert_int_ne(itl_resign_tlv(&in, 0, when, &sb, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "not the certificate of record #1"));
    sb.digest = 9;
    ck_assert_int_ne(itl_resign_tlv(&in, 2, when, &sb, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "digest code 9 is unknown"));

    itl_file_free(&in);
    free(grown);
    free(built);
    tf_free_key(&a);
    tf_free_key(&b);
}
END_TEST

START_TEST(test_build_refusals)
{
    struct tf_key a, b, big;
    struct itl_entry e[2];
    struct itl_build_opts opts = cucm_opts();
    struct itl_signer s;
    struct itl_error err = {0};
    uint8_t *out = NULL;
    size_t out_len;
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};

    tf_make_key(&a, 1024, "/CN=a", 1);
    tf_make_key(&b, 1024, "/CN=b", 2);
    e[0] = (struct itl_entry){a.der, a.der_len, ITL_ROLE_SAST};
    e[1] = (struct itl_entry){b.der, b.der_len, ITL_ROLE_TFTP};

    s = tf_signer(&b, ITL_DIGEST_SHA1); /* b is no SAST entry */
    ck_assert_int_ne(itl_build_tlv(e, 2, &opts, &s, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "not one of the SAST entries"));

    s = tf_signer(&a, 4);
    ck_assert_int_ne(itl_build_tlv(e, 2, &opts, &s, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "digest code 4 is unknown"));

    s = tf_signer(&a, ITL_DIGEST_SHA1);
    e[1] = (struct itl_entry){junk, sizeof junk, ITL_ROLE_TFTP};
    ck_assert_int_ne(itl_build_tlv(e, 2, &opts, &s, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "certificate of entry #2"));

    ck_assert_int_ne(itl_build_tlv(e, 0, &opts, &s, &out, &out_len, &err), 0);

    /* A certificate too large for a u16 RECORDLENGTH. */
    tf_make_key_ex(&big, 1024, "/CN=big", (const uint8_t *)"\x05", 1, 70000);
    e[1] = (struct itl_entry){big.der, big.der_len, ITL_ROLE_TFTP};
    ck_assert_int_ne(itl_build_tlv(e, 2, &opts, &s, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "more than RECORDLENGTH (u16) can say"));
    ck_assert_ptr_null(out);

    /* A signer callback returning a short signature. */
    tf_free_key(&big);
    tf_free_key(&a);
    tf_free_key(&b);
}
END_TEST

static int short_sign(void *ctx, int digest, const uint8_t *msg, size_t msg_len, const uint8_t *md,
                      size_t md_len, uint8_t *sig, size_t *sig_len, struct itl_error *err)
{
    (void)ctx, (void)digest, (void)msg, (void)msg_len, (void)md, (void)md_len, (void)err;
    memset(sig, 1, 10);
    *sig_len = 10;
    return 0;
}

static int failing_sign(void *ctx, int digest, const uint8_t *msg, size_t msg_len,
                        const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len,
                        struct itl_error *err)
{
    (void)ctx, (void)digest, (void)msg, (void)msg_len, (void)md, (void)md_len, (void)sig;
    (void)sig_len;
    snprintf(err->msg, sizeof err->msg, "token says no");
    return -1;
}

START_TEST(test_bad_signers)
{
    struct tf_key a;
    struct itl_entry e;
    struct itl_build_opts opts = cucm_opts();
    struct itl_signer s;
    struct itl_error err = {0};
    uint8_t *out = NULL;
    size_t out_len;

    tf_make_key(&a, 1024, "/CN=a", 1);
    e = (struct itl_entry){a.der, a.der_len, ITL_ROLE_SAST};
    s = (struct itl_signer){
        .cert_der = a.der, .cert_len = a.der_len, .digest = ITL_DIGEST_SHA1, .sign = short_sign};
    ck_assert_int_ne(itl_build_tlv(&e, 1, &opts, &s, &out, &out_len, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "10-byte signature"));
    s.sign = failing_sign;
    ck_assert_int_ne(itl_build_tlv(&e, 1, &opts, &s, &out, &out_len, &err), 0);
    ck_assert_str_eq(err.msg, "token says no");
    ck_assert_ptr_null(out);
    tf_free_key(&a);
}
END_TEST

/* An ITL larger than 64 KB: fine to build and parse while each record fits its u16 length. */
START_TEST(test_70k_file)
{
    struct tf_key a;
    struct itl_entry e[48];
    struct itl_build_opts opts = cucm_opts();
    struct itl_signer s;
    struct itl_error err = {0};
    struct itl_file f;
    uint8_t *out;
    size_t out_len, last;

    tf_make_key(&a, 2048, "/CN=cucm-pub.example.com/OU=Unified Communications/O=Example", 7);
    for (size_t i = 0; i < 48; i++)
        e[i] = (struct itl_entry){a.der, a.der_len, i ? ITL_ROLE_TVS : ITL_ROLE_SAST};
    s = tf_signer(&a, ITL_DIGEST_SHA256);
    ck_assert_msg(itl_build_tlv(e, 48, &opts, &s, &out, &out_len, &err) == 0, "%s", err.msg);
    ck_assert_uint_gt(out_len, 70000);
    check_built(out, out_len, ITL_DIGEST_SHA256, 256, 48, &f);
    last = f.records[47].offset;
    itl_file_free(&f);
    /* The last record claims more than is left: an inconsistent large file says why. */
    tf_set_u16(out + last + 3, (uint16_t)(out_len - last + 1));
    tf_parse_fails(out, out_len, ITL_KIND_AUTO, "record #48: RECORDLENGTH");
    tf_parse_fails(out, out_len, ITL_KIND_AUTO, "no record can reach past 64 KB");
    free(out);
    tf_free_key(&a);
}
END_TEST

START_TEST(test_digest_info)
{
    static const char *const prefixes[] = {
        "3021300906052b0e03021a05000414",
        "3031300d060960864801650304020105000420",
        "3051300d060960864801650304020305000440",
    };
    static const int digests[] = {ITL_DIGEST_SHA1, ITL_DIGEST_SHA256, ITL_DIGEST_SHA512};
    struct tf_key k;
    struct itl_error err = {0};

    tf_make_key(&k, 1024, "/CN=k", 3);
    for (size_t i = 0; i < 3; i++) {
        const EVP_MD *md = EVP_get_digestbynid(itl_digest_nid(digests[i]));
        uint8_t dig[64], info[128], want[128], raw_sig[128], md_sig[128];
        size_t md_len = (size_t)EVP_MD_get_size(md), info_len, plen = strlen(prefixes[i]) / 2;
        size_t raw_len = sizeof raw_sig, md_sig_len = sizeof md_sig;
        EVP_PKEY_CTX *pc;

        EVP_Digest("abc", 3, dig, NULL, md, NULL);
        for (size_t j = 0; j < plen; j++)
            sscanf(prefixes[i] + 2 * j, "%2hhx", &want[j]);
        memcpy(want + plen, dig, md_len);
        ck_assert_int_eq(
            itl_digest_info(digests[i], dig, md_len, info, sizeof info, &info_len, &err), 0);
        ck_assert_uint_eq(info_len, plen + md_len);
        ck_assert_mem_eq(info, want, info_len);
        /* CKM_RSA_PKCS over the DigestInfo == RSA PKCS#1 v1.5 with the digest */
        pc = EVP_PKEY_CTX_new(k.pk, NULL);
        ck_assert_int_eq(EVP_PKEY_sign_init(pc), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING), 1);
        ck_assert_int_eq(EVP_PKEY_sign(pc, raw_sig, &raw_len, info, info_len), 1);
        EVP_PKEY_CTX_free(pc);
        ck_assert_int_eq(tf_sign(k.pk, digests[i], NULL, 0, dig, md_len, md_sig, &md_sig_len, &err),
                         0);
        ck_assert_uint_eq(raw_len, md_sig_len);
        ck_assert_mem_eq(raw_sig, md_sig, raw_len);
        /* wrong length, small buffer */
        ck_assert_int_ne(
            itl_digest_info(digests[i], dig, md_len - 1, info, sizeof info, &info_len, &err), 0);
        ck_assert_int_ne(itl_digest_info(digests[i], dig, md_len, info, 10, &info_len, &err), 0);
    }
    ck_assert_int_ne(itl_digest_info(4, (const uint8_t *)"x", 1, NULL, 0, NULL, &err), 0);
    tf_free_key(&k);
}
END_TEST

START_TEST(test_names_serials_styles)
{
    struct tf_key k;
    struct itl_error err = {0};
    char name[512];
    uint8_t serial[64];
    size_t n;
    static const uint8_t high[] = {0x00, 0x80, 0x01}; /* DER needs the 0x00; we do not */

    tf_make_key_ex(&k, 1024, "/C=NZ/O=a,b+c/OU=x;y/CN= #lead/emailAddress=a@b.c", high, sizeof high,
                   0);
    ck_assert_int_eq(itl_cert_name(k.der, k.der_len, 0, ITL_NAMES_CUCM, name, sizeof name, &err),
                     0);
    ck_assert_str_eq(name, "C=NZ;O=a,b+c;OU=x;y;CN= #lead;emailAddress=a@b.c"); /* DER order */
    ck_assert_int_eq(
        itl_cert_name(k.der, k.der_len, 1, ITL_NAMES_CERTUTILS, name, sizeof name, &err), 0);
    ck_assert_str_eq(name, "C=NZ,O=a\\,b\\+c,OU=x\\;y,CN=\\ #lead,1.2.840.113549.1.9.1=a@b.c");
    ck_assert_int_ne(itl_cert_name(k.der, k.der_len, 0, ITL_NAMES_CUCM, name, 10, &err), 0);
    ck_assert_int_eq(itl_cert_serial(k.der, k.der_len, serial, sizeof serial, &n, &err), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(serial[0], 0x80);
    ck_assert_uint_eq(serial[1], 0x01);
    ck_assert_int_ne(itl_cert_serial(k.der, k.der_len, serial, 1, &n, &err), 0);
    ck_assert_int_eq(itl_cert_rsa_bytes(k.der, k.der_len, &n, &err), 0);
    ck_assert_uint_eq(n, 128);
    ck_assert_int_ne(itl_cert_rsa_bytes((const uint8_t *)"\x30\x00", 2, &n, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a DER X.509 certificate"));
    tf_free_key(&k);
}
END_TEST

START_TEST(test_names_of_things)
{
    ck_assert_str_eq(itl_role_name(2), "CCM+TFTP");
    ck_assert_str_eq(itl_role_name(21), "TVS");
    ck_assert_str_eq(itl_role_name(6), "UNKNOWN");
    ck_assert_str_eq(itl_digest_name(3), "SHA-512");
    ck_assert_ptr_null(itl_digest_name(4));
    ck_assert_int_eq(itl_digest_from_name("sha256"), 2);
    ck_assert_int_eq(itl_digest_from_name("SHA-512"), 3);
    ck_assert_int_eq(itl_digest_from_name("md5"), -1);
    ck_assert_int_eq(itl_digest_nid(1), NID_sha1);
    ck_assert_int_eq(itl_digest_nid(0), 0);
    ck_assert_str_eq(itl_header_tag_name(3), "SIGNERID");
    ck_assert_str_eq(itl_header_tag_name(200), "UNKNOWN");
    ck_assert_str_eq(itl_record_tag_name(12), "HASH ALGORITHM");
    ck_assert_str_eq(itl_kind_name(ITL_KIND_ENC_SGN), "enc.sgn");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_build");
    TCase *tc = tcase_create("build");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_build_parse_verify_matrix);
    tcase_add_test(tc, test_openssl_cli_verifies_built_files);
    tcase_add_test(tc, test_sgn_round_trip);
    tcase_add_test(tc, test_resign);
    tcase_add_test(tc, test_build_refusals);
    tcase_add_test(tc, test_bad_signers);
    tcase_add_test(tc, test_70k_file);
    tcase_add_test(tc, test_digest_info);
    tcase_add_test(tc, test_names_serials_styles);
    tcase_add_test(tc, test_names_of_things);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
