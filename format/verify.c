/* SPDX-License-Identifier: MIT */
/*
 * format: signature checks. The signed message is the file without its SIGNATURE TLV
 * (format.md section 4); it is hashed in two pieces so the file is never copied.
 */
#include "format/internal.h"

#include <stdlib.h>
#include <string.h>

/* The file before and after the SIGNATURE TLV. */
static void signed_parts(const struct itl_file *f, const uint8_t **p1, size_t *n1,
                         const uint8_t **p2, size_t *n2)
{
    size_t after = f->hdr.sig_offset + 3 + f->hdr.signature.len;

    *p1 = f->data;
    *n1 = f->hdr.sig_offset;
    *p2 = f->data + after;
    *n2 = f->len - after;
}

static size_t digest_offset(const struct itl_file *f)
{
    for (size_t i = 0; i < f->hdr.n_tlvs; i++)
        if (f->hdr.tlvs[i].tag == HDR_DIGEST)
            return f->hdr.tlvs[i].offset;
    return 0;
}

static const EVP_MD *header_md(const struct itl_file *f, struct itl_error *err)
{
    const EVP_MD *md = digest_md(f->hdr.digest, NULL);

    if (!md)
        err_set(err, ITL_E_INPUT,
                "offset 0x%zx: DIGESTALGORITHM code %d is unknown (1 = SHA-1, 2 = SHA-256, "
                "3 = SHA-512)",
                digest_offset(f), f->hdr.digest);
    return md;
}

int itl_signed_bytes(const struct itl_file *f, uint8_t **out, size_t *out_len,
                     struct itl_error *err)
{
    const uint8_t *p1, *p2;
    size_t n1, n2;
    uint8_t *buf;

    signed_parts(f, &p1, &n1, &p2, &n2);
    buf = malloc(n1 + n2 ? n1 + n2 : 1);
    if (!buf) {
        err_set(err, ITL_E_INPUT, "out of memory copying %zu signed bytes", n1 + n2);
        return -1;
    }
    memcpy(buf, p1, n1);
    if (n2)
        memcpy(buf + n1, p2, n2);
    *out = buf;
    *out_len = n1 + n2;
    return 0;
}

int itl_signed_digest(const struct itl_file *f, uint8_t md[64], size_t *md_len,
                      struct itl_error *err)
{
    const EVP_MD *evp = header_md(f, err);
    const uint8_t *p1, *p2;
    size_t n1, n2;

    if (!evp)
        return -1;
    signed_parts(f, &p1, &n1, &p2, &n2);
    if (digest_two(evp, p1, n1, p2, n2, md, md_len) != 0) {
        err_set(err, ITL_E_INPUT, "the %s digest of the signed bytes failed",
                itl_digest_name(f->hdr.digest));
        return -1;
    }
    return 0;
}

int verify_with_x509(const struct itl_file *f, X509 *x, struct itl_error *err)
{
    const EVP_MD *md = header_md(f, err);
    const uint8_t *p1, *p2;
    size_t n1, n2;
    EVP_PKEY *pk;
    EVP_MD_CTX *ctx = NULL;
    char subject[512];
    int rc = -1;

    if (!md)
        return -1;
    if (f->hdr.sig_algorithm != 0) {
        err_set(err, ITL_E_INPUT,
                "SIGNATUREALGORITHM %u is not RSA PKCS#1 v1.5 (0), the only algorithm known",
                f->hdr.sig_algorithm);
        return -1;
    }
    if (cert_name_str(x, 0, ITL_NAMES_CUCM, subject, sizeof subject, NULL) != 0)
        strcpy(subject, "(unreadable name)");
    pk = X509_get0_pubkey(x);
    if (!pk || !EVP_PKEY_is_a(pk, "RSA")) {
        err_set(err, ITL_E_INPUT, "the signer certificate %s has no RSA key", subject);
        goto out;
    }
    if ((size_t)EVP_PKEY_get_size(pk) != f->hdr.signature.len) {
        err_set(err, ITL_E_INPUT,
                "offset 0x%zx: the SIGNATURE is %zu bytes but the key of %s is %d-bit RSA "
                "(%d-byte signatures)",
                f->hdr.sig_offset, f->hdr.signature.len, subject, EVP_PKEY_get_bits(pk),
                EVP_PKEY_get_size(pk));
        goto out;
    }
    signed_parts(f, &p1, &n1, &p2, &n2);
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) != 1 ||
        EVP_DigestVerifyUpdate(ctx, p1, n1) != 1 || EVP_DigestVerifyUpdate(ctx, p2, n2) != 1) {
        err_set(err, ITL_E_INPUT, "cannot set up %s verification with %s",
                itl_digest_name(f->hdr.digest), subject);
        goto out;
    }
    if (EVP_DigestVerifyFinal(ctx, f->hdr.signature.ptr, f->hdr.signature.len) != 1) {
        err_set(err, ITL_E_INPUT, "the %s signature does not verify with the key of %s",
                itl_digest_name(f->hdr.digest), subject);
        goto out;
    }
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int itl_verify_with_cert(const struct itl_file *f, const uint8_t *cert_der, size_t cert_len,
                         struct itl_error *err)
{
    X509 *x = cert_parse(cert_der, cert_len, "the signer certificate", err);
    int rc;

    if (!x)
        return -1;
    rc = verify_with_x509(f, x, err);
    X509_free(x);
    return rc;
}

int itl_record_check(const struct itl_record *r, struct itl_error *err)
{
    X509 *x;
    uint8_t *pub = NULL, serial[128];
    size_t pub_len = 0, serial_len = 0;
    const uint8_t *sig;
    size_t sig_len;
    char what[96];
    int rc = -1;

    if (!r->certificate.ptr)
        return 0;
    snprintf(what, sizeof what, "the CERTIFICATE of the record at offset 0x%zx", r->offset);
    x = cert_parse(r->certificate.ptr, r->certificate.len, what, err);
    if (!x)
        return -1;
    if (r->public_key.ptr) {
        if (cert_public_key_der(x, &pub, &pub_len) != 0) {
            err_set(err, ITL_E_INPUT, "%s has a public key that cannot be encoded", what);
            goto out;
        }
        if (pub_len != r->public_key.len || memcmp(pub, r->public_key.ptr, pub_len) != 0) {
            err_set(err, ITL_E_INPUT,
                    "record at offset 0x%zx: PUBLICKEY (%zu bytes) is not the certificate's "
                    "public key (%zu bytes)",
                    r->offset, r->public_key.len, pub_len);
            goto out;
        }
    }
    cert_signature_value(x, &sig, &sig_len);
    if (r->signature.ptr &&
        (sig_len != r->signature.len || memcmp(sig, r->signature.ptr, sig_len) != 0)) {
        err_set(err, ITL_E_INPUT,
                "record at offset 0x%zx: SIGNATURE (%zu bytes) is not the certificate's "
                "signatureValue (%zu bytes)",
                r->offset, r->signature.len, sig_len);
        goto out;
    }
    if (r->serial.ptr) {
        if (cert_serial_bytes(x, serial, sizeof serial, &serial_len, err) != 0)
            goto out;
        if (!serial_equal(serial, serial_len, r->serial.ptr, r->serial.len)) {
            err_set(err, ITL_E_INPUT,
                    "record at offset 0x%zx: SERIALNUMBER is not the certificate's serial "
                    "number",
                    r->offset);
            goto out;
        }
    }
    rc = 0;
out:
    OPENSSL_free(pub);
    X509_free(x);
    return rc;
}
