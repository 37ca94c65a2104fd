/* SPDX-License-Identifier: MIT */
/* format: helpers shared by the codec's sources. Not part of the public API. */
#ifndef ITL_FORMAT_INTERNAL_H
#define ITL_FORMAT_INTERNAL_H

#include "format/itl.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Tag numbers (format.md sections 2, 3 and 9). */
enum {
    HDR_VERSION = 1,
    HDR_LENGTH = 2,
    HDR_SIGNER_INFO = 3,
    HDR_SIGNER_NAME = 4,
    HDR_SERIAL = 5,
    HDR_CA_NAME = 6,
    HDR_SIGNATURE_INFO = 7,
    HDR_DIGEST = 8,
    HDR_ALGO_INFO = 9,
    HDR_SIG_ALGORITHM = 10,
    HDR_SIG_MODULUS = 11,
    HDR_SIGNATURE = 12,
    HDR_PADDING = 13,
    HDR_FILENAME = 14,
    HDR_TIMESTAMP = 15,
    HDR_ENC_INFO = 16,
    HDR_ENC_IV_INFO = 17,
    HDR_ENC_UNKNOWN1 = 18,
    HDR_ENC_IV = 19,
    HDR_ENC_PADDING = 20,
    HDR_ENC_KEY_INFO = 21,
    HDR_ENC_UNKNOWN2 = 22,
    HDR_ENC_KEY_SIZE = 23,
    HDR_ENC_KEY_ALGORITHM = 24,
    HDR_ENC_KEY = 25,
    HDR_ENC_HASH_ALGORITHM = 26,
    HDR_ENC_HASH = 27,
    HDR_SIGNER_VERSION = 28,
};

enum {
    REC_LENGTH = 1,
    REC_DNSNAME = 2,
    REC_SUBJECT = 3,
    REC_FUNCTION = 4,
    REC_ISSUER = 5,
    REC_SERIAL = 6,
    REC_PUBLIC_KEY = 7,
    REC_SIGNATURE = 8,
    REC_CERTIFICATE = 9,
    REC_IPADDRESS = 10,
    REC_CERTHASH = 11,
    REC_HASH_ALGORITHM = 12,
};

#define PADDING_BYTE 0x0D
#define TLV_MAX 65535u

/* The builders' output: common's buffer (its sticky `failed` is running out of memory) and
 * whether a TLV value was longer than its u16 length can say, reported apart. */
struct tlv_out {
    struct buf buf;
    int too_long;
};

/* tag | u16 length | value */
void tlv_put(struct tlv_out *o, uint8_t tag, const void *value, size_t n);
void tlv_put_u8(struct tlv_out *o, uint8_t tag, uint8_t v);
void tlv_put_u16(struct tlv_out *o, uint8_t tag, uint16_t v);
void tlv_put_u32(struct tlv_out *o, uint8_t tag, uint32_t v);
/* A string with its NUL terminator counted in the length. */
void tlv_put_str(struct tlv_out *o, uint8_t tag, const char *s);
/* Opens a container whose length tlv_close patches; returns the tag's offset. */
size_t tlv_open(struct tlv_out *o, uint8_t tag);
/* Patches the u16 length at `at` (the tag offset) to the bytes written after its 3-byte header. */
void tlv_close(struct tlv_out *o, size_t at);

/* A view of n bytes at p. */
static inline struct itl_bytes bytes_view(const uint8_t *p, size_t n)
{
    return (struct itl_bytes){p, n};
}

/* Strings are stored with their NUL; the view leaves it out. */
static inline struct itl_bytes string_view(const uint8_t *p, size_t n)
{
    if (n > 0 && p[n - 1] == 0)
        n--;
    return bytes_view(p, n);
}

/* The records after the header of an ITL/CTL (f->data, f->len, f->hdr parsed) into
 * f->records. */
int parse_records(struct itl_file *f, struct itl_error *err);

/* The certificate, parsed; the whole input must be one DER certificate. NULL with err set. */
X509 *cert_parse(const uint8_t *der, size_t len, const char *what, struct itl_error *err);
/* The signer's certificate, parsed: the caller's (signer->cert_x509) with a new reference, or
 * parsed from signer->cert_der. Free with X509_free. */
X509 *signer_x509(const struct itl_signer *signer, struct itl_error *err);
/* itl_verify_with_cert for a parsed certificate. */
int verify_with_x509(const struct itl_file *f, X509 *x, struct itl_error *err);
/* PKCS#1 RSAPublicKey DER (RSA) or X9.62 point (EC). *out malloc'd. */
int cert_public_key_der(X509 *x, uint8_t **out, size_t *out_len);
/* The certificate's signatureValue bytes (a view into x). */
void cert_signature_value(X509 *x, const uint8_t **p, size_t *n);
/* Name of the certificate's subject (issuer != 0: issuer) in the given style. */
int cert_name_str(X509 *x, int issuer, enum itl_name_style style, char *out, size_t out_size,
                  struct itl_error *err);
int cert_serial_bytes(X509 *x, uint8_t *out, size_t out_size, size_t *out_len,
                      struct itl_error *err);

/* The SUBJECTNAME/SIGNERNAME, ISSUERNAME/CANAME and SERIALNUMBER values to write for x, as
 * stored (strings with their NUL): copied from the record of `known` (may be NULL) that holds
 * x, else x's names in `style` (signer_names.c). */
struct cert_names {
    uint8_t subject[2048], issuer[2048], serial[128];
    size_t subject_len, issuer_len, serial_len;
    long from_record; /* the record of known copied, -1 */
};
int cert_names_for(X509 *x, const struct itl_file *known, enum itl_name_style style,
                   struct cert_names *out, struct itl_error *err);

/* Equal as unsigned integers (leading zero bytes ignored). */
int serial_equal(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

/* The EVP_MD of a digest code, or NULL with err set. */
const EVP_MD *digest_md(int digest, struct itl_error *err);
/* Digest of msg[0:a) || msg[b:len) in one pass (the signed bytes without copying). */
int digest_two(const EVP_MD *md, const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2,
               uint8_t *out, size_t *out_len);

/*
 * Finishes a signed file: `b` holds the header without the SIGNATURE TLV (which belongs at
 * `sig_at`), with HEADERLENGTH at offset 5, but no padding yet; `tail` (records or payload) is
 * appended after padding. Signs, splices and verifies the result with the signer certificate.
 */
int finish_signed(struct tlv_out *b, size_t sig_at, const uint8_t *tail, size_t tail_len,
                  const struct itl_signer *signer, enum itl_kind kind, uint8_t **out,
                  size_t *out_len, struct itl_error *err);

/* Checks the signer (RSA certificate, known digest, callback) and returns its parsed
 * certificate, signature length and SIGNATUREMODULUS code. */
int signer_prepare(const struct itl_signer *signer, X509 **x, size_t *sig_bytes, int *modcode,
                   struct itl_error *err);
/* The header of a .sgn / .enc.sgn up to TIMESTAMP; *sig_at is where the SIGNATURE goes. */
int write_sgn_header(struct tlv_out *b, uint8_t major, uint8_t minor, X509 *sx,
                     const struct itl_sgn_opts *opts, int digest, int modcode, size_t *sig_at,
                     struct itl_error *err);

#endif
