/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the format unit tests: RSA keys and self-signed certificates made in-process
 * (custom names and serials), a signing callback over an EVP_PKEY, the sample file, and a
 * hand-written TLV writer for fixtures the builder cannot make (CUCM layouts, bad input).
 */
#ifndef ITL_TESTS_TEST_FORMAT_UTIL_H
#define ITL_TESTS_TEST_FORMAT_UTIL_H

#include "format/itl.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tf_key {
    EVP_PKEY *pk;
    uint8_t *der; /* self-signed certificate */
    size_t der_len;
};

static inline uint8_t *tf_sample(size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/fixtures/ITLFile-certutils-sample.tlv",
             testlib_src());
    return testlib_read(path, len);
}

/* subject like "/CN=a/OU=b"; extra_comment_len > 0 adds an nsComment of that many bytes. */
static inline void tf_make_key_ex(struct tf_key *k, int bits, const char *subject,
                                  const uint8_t *serial, size_t serial_len,
                                  size_t extra_comment_len)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = BN_bin2bn(serial, (int)serial_len, NULL);
    char copy[512], *field, *save = NULL;
    unsigned char *der = NULL;
    int n;

    ck_assert_ptr_nonnull(x);
    k->pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    ck_assert_ptr_nonnull(k->pk);
    snprintf(copy, sizeof copy, "%s", subject);
    for (field = strtok_r(copy, "/", &save); field; field = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(field, '=');
        ck_assert_ptr_nonnull(eq);
        *eq = 0;
        ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                                    (unsigned char *)eq + 1, -1, -1, 0),
                         1);
    }
    X509_set_version(x, 2);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k->pk);
    if (extra_comment_len) {
        char *comment = malloc(extra_comment_len + 1);
        X509_EXTENSION *ext;
        memset(comment, 'x', extra_comment_len);
        comment[extra_comment_len] = 0;
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_netscape_comment, comment);
        ck_assert_ptr_nonnull(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        free(comment);
    }
    ck_assert_int_gt(X509_sign(x, k->pk, EVP_sha256()), 0);
    n = i2d_X509(x, &der);
    ck_assert_int_gt(n, 0);
    k->der = malloc((size_t)n);
    memcpy(k->der, der, (size_t)n);
    k->der_len = (size_t)n;
    OPENSSL_free(der);
    BN_free(bn);
    X509_NAME_free(name);
    X509_free(x);
}

static inline void tf_make_key(struct tf_key *k, int bits, const char *subject, uint32_t serial)
{
    uint8_t be[4] = {(uint8_t)(serial >> 24), (uint8_t)(serial >> 16), (uint8_t)(serial >> 8),
                     (uint8_t)serial};
    tf_make_key_ex(k, bits, subject, be, 4, 0);
}

static inline void tf_free_key(struct tf_key *k)
{
    EVP_PKEY_free(k->pk);
    free(k->der);
    memset(k, 0, sizeof *k);
}

/* The signing callback of the tests: RSA PKCS#1 v1.5 over the digest the codec computed. */
static inline int tf_sign(void *ctx, int digest, const uint8_t *msg, size_t msg_len,
                          const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len,
                          struct itl_error *err)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new((EVP_PKEY *)ctx, NULL);
    const EVP_MD *evp = EVP_get_digestbynid(itl_digest_nid(digest));
    int ok = pc && evp && EVP_PKEY_sign_init(pc) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pc, evp) == 1 &&
             EVP_PKEY_sign(pc, sig, sig_len, md, md_len) == 1;

    (void)msg;
    (void)msg_len;
    EVP_PKEY_CTX_free(pc);
    if (!ok)
        snprintf(err->msg, sizeof err->msg, "test signer failed");
    return ok ? 0 : -1;
}

static inline struct itl_signer tf_signer(const struct tf_key *k, int digest)
{
    return (struct itl_signer){.cert_der = k->der,
                               .cert_len = k->der_len,
                               .digest = digest,
                               .sign = tf_sign,
                               .ctx = k->pk};
}

/* ---- a hand-written TLV writer for fixtures ---- */

struct tf_buf {
    uint8_t p[262144];
    size_t len;
};

static inline void tf_put(struct tf_buf *b, const void *v, size_t n)
{
    ck_assert_uint_le(b->len + n, sizeof b->p);
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static inline void tf_u8(struct tf_buf *b, uint8_t v)
{
    tf_put(b, &v, 1);
}

static inline void tf_u16(struct tf_buf *b, uint16_t v)
{
    uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    tf_put(b, be, 2);
}

static inline void tf_tlv(struct tf_buf *b, uint8_t tag, const void *v, size_t n)
{
    tf_u8(b, tag);
    tf_u16(b, (uint16_t)n);
    tf_put(b, v, n);
}

static inline void tf_tlv_str(struct tf_buf *b, uint8_t tag, const char *s)
{
    tf_tlv(b, tag, s, strlen(s) + 1);
}

static inline void tf_tlv_u8(struct tf_buf *b, uint8_t tag, uint8_t v)
{
    tf_tlv(b, tag, &v, 1);
}

static inline void tf_tlv_u16(struct tf_buf *b, uint8_t tag, uint16_t v)
{
    uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    tf_tlv(b, tag, be, 2);
}

static inline size_t tf_open(struct tf_buf *b, uint8_t tag)
{
    size_t at = b->len;
    tf_u8(b, tag);
    tf_u16(b, 0);
    return at;
}

static inline void tf_close(struct tf_buf *b, size_t at)
{
    size_t n = b->len - at - 3;
    b->p[at + 1] = (uint8_t)(n >> 8);
    b->p[at + 2] = (uint8_t)n;
}

static inline void tf_set_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Parses or fails the test with the codec's message. */
static inline void tf_parse_ok(const uint8_t *d, size_t n, enum itl_kind hint, struct itl_file *f)
{
    struct itl_error err = {0};
    int rc = itl_parse(d, n, hint, f, &err);
    ck_assert_msg(rc == 0, "parse failed: %s", err.msg);
}

/* Parse must fail, with a message containing `want`. */
static inline void tf_parse_fails(const uint8_t *d, size_t n, enum itl_kind hint, const char *want)
{
    struct itl_file f;
    struct itl_error err = {0};
    int rc = itl_parse(d, n, hint, &f, &err);
    itl_file_free(&f);
    ck_assert_msg(rc != 0, "parse accepted bad input (wanted: %s)", want);
    ck_assert_msg(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
}

#endif
