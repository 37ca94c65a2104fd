/* SPDX-License-Identifier: MIT */
/*
 * format: encrypted phone configuration (.enc.sgn, format.md section 9) and its short
 * companion .cnf.xml. AES-128-CBC with 0x0D padding (not PKCS#7), the AES key wrapped with
 * RSAES-PKCS1-v1_5 to the phone's certificate, a hash of the plaintext, signed like a .sgn.
 */
#include "format/internal.h"

#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

static int aes_cbc(int encrypt, const uint8_t key[16], const uint8_t iv[16], const uint8_t *in,
                   size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok;

    ok = ctx && len <= 0x7fffffff &&
         EVP_CipherInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv, encrypt) == 1 &&
         EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
         EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
         EVP_CipherFinal_ex(ctx, out + n, &fin) == 1 && (size_t)(n + fin) == len;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int wrap_key(X509 *phone, const uint8_t key[16], uint8_t **out, size_t *out_len,
                    struct itl_error *err)
{
    EVP_PKEY *pk = X509_get0_pubkey(phone);
    EVP_PKEY_CTX *ctx;
    size_t n = 0;
    int ok;

    *out = NULL;
    if (!pk || !EVP_PKEY_is_a(pk, "RSA")) {
        err_set(err, ITL_E_INPUT,
                "the phone certificate's key is %s: the AES key can only be wrapped to "
                "an RSA key",
                pk ? EVP_PKEY_get0_type_name(pk) : "unreadable");
        return -1;
    }
    ctx = EVP_PKEY_CTX_new(pk, NULL);
    ok = ctx && EVP_PKEY_encrypt_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_encrypt(ctx, NULL, &n, key, 16) == 1 && (*out = malloc(n)) != NULL &&
         EVP_PKEY_encrypt(ctx, *out, &n, key, 16) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        free(*out);
        *out = NULL;
        err_set(err, ITL_E_INPUT, "cannot wrap the AES key to the phone certificate's RSA key");
        return -1;
    }
    *out_len = n;
    return 0;
}

static void write_enc_fields(struct tlv_out *b, const uint8_t iv[16], uint16_t padding,
                             const uint8_t *wrapped, size_t wrapped_len, int digest,
                             const uint8_t *hash, size_t hash_len)
{
    size_t info = tlv_open(b, HDR_ENC_INFO), sub;

    sub = tlv_open(b, HDR_ENC_IV_INFO);
    tlv_put_u8(b, HDR_ENC_UNKNOWN1, 0);
    tlv_put(b, HDR_ENC_IV, iv, 16);
    tlv_put_u16(b, HDR_ENC_PADDING, padding);
    tlv_close(b, sub);
    sub = tlv_open(b, HDR_ENC_KEY_INFO);
    tlv_put_u8(b, HDR_ENC_UNKNOWN2, 0);
    tlv_put_u16(b, HDR_ENC_KEY_SIZE, (uint16_t)(wrapped_len * 8));
    tlv_put_u8(b, HDR_ENC_KEY_ALGORITHM, 1);
    tlv_put(b, HDR_ENC_KEY, wrapped, wrapped_len);
    tlv_close(b, sub);
    tlv_close(b, info);
    tlv_put_u8(b, HDR_ENC_HASH_ALGORITHM, (uint8_t)digest);
    tlv_put(b, HDR_ENC_HASH, hash, hash_len);
}

/* The plaintext, padded with p = 16 - len % 16 bytes of 0x0D (1..16), then encrypted. */
static int encrypt_config(const uint8_t *xml, size_t xml_len, const struct itl_enc_keys *keys,
                          uint8_t **out, size_t *out_len, uint16_t *padding, struct itl_error *err)
{
    size_t pad = 16 - xml_len % 16, total = xml_len + pad;
    uint8_t *plain = malloc(total), *cipher = malloc(total);

    if (!plain || !cipher) {
        free(plain);
        free(cipher);
        err_set(err, ITL_E_INPUT, "out of memory encrypting %zu bytes", xml_len);
        return -1;
    }
    if (xml_len)
        memcpy(plain, xml, xml_len);
    memset(plain + xml_len, PADDING_BYTE, pad);
    if (aes_cbc(1, keys->aes_key, keys->iv, plain, total, cipher) != 0) {
        free(plain);
        free(cipher);
        err_set(err, ITL_E_INPUT, "AES-128-CBC encryption of %zu bytes failed", total);
        return -1;
    }
    free(plain);
    *out = cipher;
    *out_len = total;
    *padding = (uint16_t)pad;
    return 0;
}

int itl_build_enc_sgn(const uint8_t *xml, size_t xml_len, const uint8_t *phone_cert_der,
                      size_t phone_cert_len, const struct itl_enc_keys *keys,
                      const struct itl_sgn_opts *opts, const struct itl_signer *signer,
                      uint8_t **out, size_t *out_len, struct itl_error *err)
{
    struct tlv_out b = {0};
    X509 *sx = NULL, *phone = NULL;
    uint8_t *wrapped = NULL, *cipher = NULL, hash[EVP_MAX_MD_SIZE];
    size_t wrapped_len = 0, cipher_len = 0, hash_len, sig_bytes, sig_at;
    uint16_t padding;
    int modcode, rc = -1;

    if (!opts || !opts->filename || !opts->filename[0] || !keys || (!xml && xml_len)) {
        err_set(err, ITL_E_INPUT,
                "a .enc.sgn needs the configuration, the AES key and IV, and its "
                "FILENAME");
        return -1;
    }
    if (signer_prepare(signer, &sx, &sig_bytes, &modcode, err) != 0)
        return -1;
    phone = cert_parse(phone_cert_der, phone_cert_len, "the phone certificate", err);
    if (!phone || wrap_key(phone, keys->aes_key, &wrapped, &wrapped_len, err) != 0)
        goto out;
    if (wrapped_len * 8 > TLV_MAX) {
        err_set(err, ITL_E_INPUT,
                "the phone's RSA key is too large: KEYSIZE (u16) cannot say %zu bits",
                wrapped_len * 8);
        goto out;
    }
    if (digest_two(digest_md(signer->digest, err), xml, xml_len, NULL, 0, hash, &hash_len) != 0) {
        err_set(err, ITL_E_INPUT, "cannot hash the configuration");
        goto out;
    }
    if (encrypt_config(xml, xml_len, keys, &cipher, &cipher_len, &padding, err) != 0)
        goto out;
    if (write_sgn_header(&b, 2, 0, sx, opts, signer->digest, modcode, &sig_at, err) != 0)
        goto out;
    write_enc_fields(&b, keys->iv, padding, wrapped, wrapped_len, signer->digest, hash, hash_len);
    rc = finish_signed(&b, sig_at, cipher, cipher_len, signer, ITL_KIND_ENC_SGN, out, out_len, err);
out:
    X509_free(sx);
    X509_free(phone);
    free(wrapped);
    free(cipher);
    buf_free(&b.buf);
    return rc;
}

static EVP_PKEY *load_private_key(const uint8_t *der, size_t len, struct itl_error *err)
{
    const unsigned char *p = der;
    EVP_PKEY *pk;

    if (!der || len == 0 || len > 0x7fffffff) {
        err_set(err, ITL_E_INPUT, "no phone private key given");
        return NULL;
    }
    pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
    if (!pk) {
        err_set(err, ITL_E_INPUT,
                "the phone key (%zu bytes) is not a DER private key (PKCS#1 or PKCS#8)", len);
        return NULL;
    }
    if (!EVP_PKEY_is_a(pk, "RSA")) {
        err_set(err, ITL_E_INPUT, "the phone key is %s, not RSA", EVP_PKEY_get0_type_name(pk));
        EVP_PKEY_free(pk);
        return NULL;
    }
    return pk;
}

static int unwrap_key(EVP_PKEY *pk, struct itl_bytes wrapped, uint8_t key[16],
                      struct itl_error *err)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    uint8_t buf[1024];
    size_t n = sizeof buf;
    int ok = ctx && EVP_PKEY_decrypt_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
             wrapped.len <= sizeof buf &&
             EVP_PKEY_decrypt(ctx, buf, &n, wrapped.ptr, wrapped.len) == 1;

    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        err_set(err, ITL_E_INPUT,
                "the phone key cannot unwrap ENCRYPTIONKEY: the file was encrypted to "
                "another phone");
        return -1;
    }
    if (n != 16) {
        err_set(err, ITL_E_INPUT, "the unwrapped key is %zu bytes, not an AES-128 key (16 bytes)",
                n);
        return -1;
    }
    memcpy(key, buf, 16);
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

static int check_plaintext(const struct itl_enc_info *e, const uint8_t *plain, size_t len,
                           struct itl_error *err)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t md_len;
    const EVP_MD *evp;

    if (e->padding < 1 || e->padding > 16) {
        err_set(err, ITL_E_INPUT, "ENCRYPTIONPADDING %u is not between 1 and 16", e->padding);
        return -1;
    }
    for (size_t i = len - e->padding; i < len; i++)
        if (plain[i] != PADDING_BYTE) {
            err_set(err, ITL_E_INPUT,
                    "the last %u decrypted bytes are not the 0x0D padding: wrong key or "
                    "damaged file",
                    e->padding);
            return -1;
        }
    if (!e->hash.ptr)
        return 0;
    evp = digest_md(e->hash_algorithm, NULL);
    if (!evp) {
        err_set(err, ITL_E_INPUT,
                "ENCRYPTIONHASHALGORITHM %d is unknown (1 = SHA-1, 2 = SHA-256, 3 = "
                "SHA-512)",
                e->hash_algorithm);
        return -1;
    }
    if (digest_two(evp, plain, len - e->padding, NULL, 0, md, &md_len) != 0 ||
        md_len != e->hash.len || memcmp(md, e->hash.ptr, md_len) != 0) {
        err_set(err, ITL_E_INPUT,
                "the %s hash of the decrypted configuration does not match "
                "ENCRYPTIONHASH: wrong key or damaged file",
                itl_digest_name(e->hash_algorithm));
        return -1;
    }
    return 0;
}

int itl_decrypt_enc_sgn(const struct itl_file *f, const uint8_t *phone_key_der,
                        size_t phone_key_len, uint8_t **out, size_t *out_len, struct itl_error *err)
{
    const struct itl_enc_info *e = &f->hdr.enc;
    EVP_PKEY *pk;
    uint8_t key[16], *plain = NULL;
    int rc = -1;

    if (f->kind != ITL_KIND_ENC_SGN) {
        err_set(err, ITL_E_INPUT, "the file is not encrypted (no tags 16-27 in its header)");
        return -1;
    }
    pk = load_private_key(phone_key_der, phone_key_len, err);
    if (!pk)
        return -1;
    if (unwrap_key(pk, e->wrapped_key, key, err) != 0)
        goto out;
    plain = malloc(f->payload.len + 1);
    if (!plain) {
        err_set(err, ITL_E_INPUT, "out of memory decrypting %zu bytes", f->payload.len);
        goto out;
    }
    if (aes_cbc(0, key, e->iv.ptr, f->payload.ptr, f->payload.len, plain) != 0) {
        err_set(err, ITL_E_INPUT, "AES-128-CBC decryption of %zu bytes failed", f->payload.len);
        goto out;
    }
    if (check_plaintext(e, plain, f->payload.len, err) != 0)
        goto out;
    *out_len = f->payload.len - e->padding;
    plain[*out_len] = 0;
    *out = plain;
    plain = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof key);
    free(plain);
    EVP_PKEY_free(pk);
    return rc;
}
