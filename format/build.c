/* SPDX-License-Identifier: MIT */
/*
 * format: writing signed files. Every builder writes the header without the SIGNATURE TLV,
 * then finish_signed() pads, patches HEADERLENGTH, signs, splices the signature in and checks
 * the result with the signer certificate (format.md section 4, build procedure).
 */
#include "format/internal.h"

#include <stdlib.h>
#include <string.h>

X509 *signer_x509(const struct itl_signer *signer, struct itl_error *err)
{
    X509 *x = (X509 *)signer->cert_x509;

    if (x && X509_up_ref(x) == 1)
        return x;
    return cert_parse(signer->cert_der, signer->cert_len, "the signer certificate", err);
}

/* SIGNATUREMODULUS code for a modulus of this many bytes, or -1. */
static int modulus_code(size_t bytes)
{
    switch (bytes) {
    case 64:
        return 0;
    case 128:
        return 1;
    case 256:
        return 2;
    case 512:
        return 3;
    default:
        return -1;
    }
}

int signer_prepare(const struct itl_signer *signer, X509 **x, size_t *sig_bytes, int *modcode,
                   struct itl_error *err)
{
    EVP_PKEY *pk;

    *x = NULL;
    if (!signer || !signer->cert_der) { /* sign NULL: signed by nobody (finish_signed) */
        err_set(err, ITL_E_INPUT, "no signer certificate given");
        return -1;
    }
    if (!digest_md(signer->digest, err))
        return -1;
    *x = signer_x509(signer, err);
    if (!*x)
        return -1;
    pk = X509_get0_pubkey(*x);
    if (!pk || !EVP_PKEY_is_a(pk, "RSA")) {
        err_set(err, ITL_E_INPUT,
                "the signer certificate's key is not RSA: trust files are signed with "
                "RSA PKCS#1 v1.5");
        goto fail;
    }
    *sig_bytes = (size_t)EVP_PKEY_get_size(pk);
    *modcode = modulus_code(*sig_bytes);
    if (*modcode < 0) {
        err_set(err, ITL_E_INPUT,
                "the signer's RSA key is %d bits: SIGNATUREMODULUS can only say 512, 1024, "
                "2048 or 4096",
                EVP_PKEY_get_bits(pk));
        goto fail;
    }
    return 0;
fail:
    X509_free(*x);
    *x = NULL;
    return -1;
}

static int write_signer_info(struct tlv_out *b, X509 *signer, enum itl_signer_order order,
                             enum itl_name_style names, const struct itl_file *known,
                             struct itl_error *err)
{
    struct cert_names n;
    size_t at;

    if (cert_names_for(signer, known, names, &n, err) != 0)
        return -1;
    at = tlv_open(b, HDR_SIGNER_INFO);
    tlv_put(b, HDR_SIGNER_NAME, n.subject, n.subject_len);
    if (order == ITL_ORDER_NAME_ISSUER_SERIAL) {
        tlv_put(b, HDR_CA_NAME, n.issuer, n.issuer_len);
        tlv_put(b, HDR_SERIAL, n.serial, n.serial_len);
    } else {
        tlv_put(b, HDR_SERIAL, n.serial, n.serial_len);
        tlv_put(b, HDR_CA_NAME, n.issuer, n.issuer_len);
    }
    tlv_close(b, at);
    return 0;
}

static void write_signature_info(struct tlv_out *b, int digest, uint8_t sig_algorithm, int modulus)
{
    size_t info = tlv_open(b, HDR_SIGNATURE_INFO), algo;

    tlv_put_u8(b, HDR_DIGEST, (uint8_t)digest);
    algo = tlv_open(b, HDR_ALGO_INFO);
    tlv_put_u8(b, HDR_SIG_ALGORITHM, sig_algorithm);
    tlv_put_u8(b, HDR_SIG_MODULUS, (uint8_t)modulus);
    tlv_close(b, algo);
    tlv_close(b, info);
}

static void write_version(struct tlv_out *b, uint8_t major, uint8_t minor)
{
    uint8_t v[2] = {major, minor};

    tlv_put(b, HDR_VERSION, v, 2);
    tlv_put_u16(b, HDR_LENGTH, 0); /* patched by finish_signed */
}

static int call_signer(const struct itl_signer *signer, const uint8_t *msg, size_t msg_len,
                       uint8_t *sig, size_t *sig_len, struct itl_error *err)
{
    const EVP_MD *md = digest_md(signer->digest, err);
    uint8_t digest[EVP_MAX_MD_SIZE];
    size_t digest_len;
    struct itl_error cb_err = {0};

    if (!md || digest_two(md, msg, msg_len, NULL, 0, digest, &digest_len) != 0) {
        err_set(err, ITL_E_INPUT, "cannot compute the digest of the %zu bytes to sign", msg_len);
        return -1;
    }
    if (signer->sign(signer->ctx, signer->digest, msg, msg_len, digest, digest_len, sig, sig_len,
                     &cb_err) != 0) {
        err_set(err, ITL_E_INPUT, "%s", cb_err.msg[0] ? cb_err.msg : "the signer failed");
        return -1;
    }
    return 0;
}

/* The file: the header up to sig_at, the SIGNATURE TLV, the rest of the header and the tail.
 * NULL when out of memory. */
static uint8_t *splice_signature(const struct buf *b, size_t sig_at, const uint8_t *sig,
                                 size_t sig_len, size_t *total)
{
    struct buf file = {0};

    buf_put(&file, b->data, sig_at);
    buf_put_u8(&file, HDR_SIGNATURE);
    buf_put_u16(&file, (uint16_t)sig_len);
    buf_put(&file, sig, sig_len);
    buf_put(&file, b->data + sig_at, b->len - sig_at);
    return buf_take(&file, total);
}

int finish_signed(struct tlv_out *b, size_t sig_at, const uint8_t *tail, size_t tail_len,
                  const struct itl_signer *signer, enum itl_kind kind, uint8_t **out,
                  size_t *out_len, struct itl_error *err)
{
    uint8_t sig[1024];
    size_t sig_len = sizeof sig, want, header_len, total;
    uint8_t *file;
    struct itl_file check;
    struct itl_error verr;
    X509 *sx = signer_x509(signer, err);
    int rc = -1;

    if (!sx)
        return -1;
    want = (size_t)EVP_PKEY_get_size(X509_get0_pubkey(sx));
    while ((b->buf.len + 3 + want) % 4 != 0)
        buf_put_u8(&b->buf, PADDING_BYTE);
    header_len = b->buf.len + 3 + want;
    if (header_len > TLV_MAX) {
        err_set(err, ITL_E_INPUT,
                "the header would be %zu bytes: HEADERLENGTH is a u16 (at most 65535)", header_len);
        goto out;
    }
    buf_patch_u16(&b->buf, 8, (uint16_t)header_len);
    buf_put(&b->buf, tail, tail_len);
    if (b->too_long) {
        err_set(err, ITL_E_INPUT,
                "a header field is longer than 65535 bytes, the most a TLV length says");
        goto out;
    }
    if (b->buf.failed) {
        err_set(err, ITL_E_INPUT, "out of memory building a %zu-byte file",
                b->buf.len + tail_len + 3 + want);
        goto out;
    }
    if (!signer->sign) { /* not signed (plan --build): a signature of zeros, never verified */
        memset(sig, 0, want);
        sig_len = want;
    } else if (call_signer(signer, b->buf.data, b->buf.len, sig, &sig_len, err) != 0) {
        goto out;
    }
    if (sig_len != want) {
        err_set(err, ITL_E_INPUT,
                "the signer returned a %zu-byte signature; its key makes %zu-byte ones", sig_len,
                want);
        goto out;
    }
    file = splice_signature(&b->buf, sig_at, sig, sig_len, &total);
    if (!file) {
        err_set(err, ITL_E_INPUT, "out of memory building a %zu-byte file",
                b->buf.len + 3 + sig_len);
        goto out;
    }

    if (itl_parse(file, total, kind, &check, &verr) != 0 ||
        (signer->sign && verify_with_x509(&check, sx, &verr))) {
        err_set(err, ITL_E_INPUT,
                "the file just built does not verify with the signer certificate: %s", verr.msg);
        itl_file_free(&check);
        free(file);
        goto out;
    }
    itl_file_free(&check);
    /* What was asked for is what every reader sees: a .sgn no reader takes for an ITL/CTL (its
     * FILENAME, its payload), an ITL/CTL under an ITL/CTL name (docs/format.md "Output kinds"). */
    if (itl_check_kind(file, total, kind, &verr) != 0) {
        err_set(err, ITL_E_INPUT, "refused: %s", verr.msg);
        free(file);
        goto out;
    }
    *out = file;
    *out_len = total;
    rc = 0;
out:
    X509_free(sx);
    return rc;
}

/* ---- ITL / CTL ---- */

static int signer_is_sast_entry(const struct itl_entry *entries, size_t n,
                                const struct itl_signer *signer)
{
    for (size_t i = 0; i < n; i++)
        if (entries[i].function == ITL_ROLE_SAST && entries[i].cert_len == signer->cert_len &&
            memcmp(entries[i].cert_der, signer->cert_der, signer->cert_len) == 0)
            return 1;
    return 0;
}

static int write_record(struct tlv_out *r, const struct itl_entry *e, size_t index,
                        enum itl_layout layout, enum itl_name_style names,
                        const struct itl_file *known, struct itl_error *err)
{
    struct cert_names n;
    char what[64];
    uint8_t *pub = NULL;
    size_t pub_len = 0, at = r->buf.len, sig_len, rec_len;
    const uint8_t *sig;
    X509 *x;
    int rc = -1;

    snprintf(what, sizeof what, "the certificate of entry #%zu", index);
    x = cert_parse(e->cert_der, e->cert_len, what, err);
    if (!x)
        return -1;
    if (e->function > 0xffff) {
        err_set(err, ITL_E_INPUT, "entry #%zu: FUNCTION %u does not fit in 16 bits", index,
                e->function);
        goto out;
    }
    if (cert_names_for(x, known, names, &n, err) != 0)
        goto out;
    if (cert_public_key_der(x, &pub, &pub_len) != 0) {
        err_set(err, ITL_E_INPUT, "%s has a public key that cannot be encoded", what);
        goto out;
    }
    cert_signature_value(x, &sig, &sig_len);

    tlv_put_u16(r, REC_LENGTH, 0); /* patched below: it counts its own 5 bytes */
    if (layout == ITL_LAYOUT_CUCM) {
        tlv_put_str(r, REC_DNSNAME, "");
        tlv_put(r, REC_SUBJECT, n.subject, n.subject_len);
        tlv_put_u16(r, REC_FUNCTION, (uint16_t)e->function);
        tlv_put(r, REC_ISSUER, n.issuer, n.issuer_len);
        tlv_put(r, REC_SERIAL, n.serial, n.serial_len);
    } else {
        tlv_put(r, REC_SUBJECT, n.subject, n.subject_len);
        tlv_put(r, REC_ISSUER, n.issuer, n.issuer_len);
        tlv_put(r, REC_SERIAL, n.serial, n.serial_len);
        tlv_put_u16(r, REC_FUNCTION, (uint16_t)e->function);
    }
    tlv_put(r, REC_PUBLIC_KEY, pub, pub_len);
    tlv_put(r, REC_SIGNATURE, sig, sig_len);
    tlv_put(r, REC_CERTIFICATE, e->cert_der, e->cert_len);
    rec_len = r->buf.len - at;
    if (r->too_long || rec_len > TLV_MAX) {
        err_set(err, ITL_E_INPUT,
                "entry #%zu (%s): its record would be %zu bytes, more than RECORDLENGTH (u16) "
                "can say",
                index, (const char *)n.subject, rec_len);
        goto out;
    }
    buf_patch_u16(&r->buf, at + 3, (uint16_t)rec_len);
    rc = 0;
out:
    OPENSSL_free(pub);
    X509_free(x);
    return rc;
}

void itl_build_layout(struct itl_build_opts *bo, enum itl_layout layout)
{
    bo->layout = layout;
    if (layout == ITL_LAYOUT_CERTUTILS) { /* what certutils (tlvfile) writes */
        bo->signer_order = ITL_ORDER_NAME_ISSUER_SERIAL;
        bo->names = ITL_NAMES_CERTUTILS;
        bo->signer_version = 0x0100;
    } else {
        bo->signer_order = ITL_ORDER_NAME_SERIAL_ISSUER;
        bo->names = ITL_NAMES_CUCM;
        bo->signer_version = 0;
    }
}

int itl_build_tlv(const struct itl_entry *entries, size_t n, const struct itl_build_opts *opts,
                  const struct itl_signer *signer, uint8_t **out, size_t *out_len,
                  struct itl_error *err)
{
    struct tlv_out b = {0}, r = {0};
    X509 *sx = NULL;
    size_t sig_bytes, sig_at;
    int modcode, rc = -1;

    if (!entries || n == 0 || !opts) {
        err_set(err, ITL_E_INPUT, "an ITL/CTL needs at least one certificate");
        return -1;
    }
    if (signer_prepare(signer, &sx, &sig_bytes, &modcode, err) != 0)
        return -1;
    if (!signer_is_sast_entry(entries, n, signer)) {
        err_set(err, ITL_E_INPUT,
                "the signer certificate is not one of the SAST entries: phones could not "
                "verify the file with a certificate it contains");
        goto out;
    }
    write_version(&b, 1, 2);
    if (opts->signer_version)
        tlv_put_u16(&b, HDR_SIGNER_VERSION, (uint16_t)opts->signer_version);
    if (write_signer_info(&b, sx, opts->signer_order, opts->names, opts->known, err) != 0)
        goto out;
    write_signature_info(&b, signer->digest, 0, modcode);
    sig_at = b.buf.len;
    tlv_put_str(&b, HDR_FILENAME, opts->filename ? opts->filename : "ITLFile.tlv");
    tlv_put_u32(&b, HDR_TIMESTAMP, opts->timestamp);
    for (size_t i = 0; i < n; i++)
        if (write_record(&r, &entries[i], i + 1, opts->layout, opts->names, opts->known, err) != 0)
            goto out;
    if (r.buf.failed) {
        err_set(err, ITL_E_INPUT, "out of memory building the records");
        goto out;
    }
    rc = finish_signed(&b, sig_at, r.buf.data, r.buf.len, signer, ITL_KIND_TLV, out, out_len, err);
out:
    X509_free(sx);
    buf_free(&b.buf);
    buf_free(&r.buf);
    return rc;
}

/* ---- re-sign (reset) ---- */

/* The raw value of a record's field, NUL included, as the phones already hold it. */
static const struct itl_tlv *record_tlv(const struct itl_record *r, uint8_t tag)
{
    for (size_t i = 0; i < r->n_tlvs; i++)
        if (r->tlvs[i].tag == tag)
            return &r->tlvs[i];
    return NULL;
}

struct resign {
    const struct itl_record *rec;
    size_t index;
    int digest, modcode;
    uint32_t timestamp;
    int wrote_timestamp;
    size_t sig_at;
};

/* The replacement of a header field, or copy when the field stays as it is. */
static int resign_field(struct tlv_out *b, const struct itl_tlv *t, struct resign *rs,
                        struct itl_error *err)
{
    static const struct {
        uint8_t header_tag, record_tag;
        const char *name;
    } signer_fields[] = {
        {HDR_SIGNER_NAME, REC_SUBJECT, "SUBJECTNAME"},
        {HDR_SERIAL, REC_SERIAL, "SERIALNUMBER"},
        {HDR_CA_NAME, REC_ISSUER, "ISSUERNAME"},
    };

    for (size_t i = 0; i < 3; i++) {
        const struct itl_tlv *src;
        if (t->tag != signer_fields[i].header_tag)
            continue;
        src = record_tlv(rs->rec, signer_fields[i].record_tag);
        if (!src) {
            err_set(err, ITL_E_INPUT, "record #%zu has no %s to name the signer with", rs->index,
                    signer_fields[i].name);
            return -1;
        }
        tlv_put(b, t->tag, src->value.ptr, src->value.len);
        return 0;
    }
    switch (t->tag) {
    case HDR_LENGTH:
        tlv_put_u16(b, HDR_LENGTH, 0);
        return 0;
    case HDR_DIGEST:
        tlv_put_u8(b, HDR_DIGEST, (uint8_t)rs->digest);
        return 0;
    case HDR_SIG_MODULUS:
        tlv_put_u8(b, HDR_SIG_MODULUS, (uint8_t)rs->modcode);
        return 0;
    case HDR_SIG_ALGORITHM:
        tlv_put_u8(b, HDR_SIG_ALGORITHM, 0);
        return 0;
    case HDR_SIGNATURE:
        rs->sig_at = b->buf.len;
        return 0;
    case HDR_TIMESTAMP:
        tlv_put_u32(b, HDR_TIMESTAMP, rs->timestamp);
        rs->wrote_timestamp = 1;
        return 0;
    default:
        tlv_put(b, t->tag, t->value.ptr, t->value.len);
        return 0;
    }
}

static int is_container_tag(uint8_t tag)
{
    return tag == HDR_SIGNER_INFO || tag == HDR_SIGNATURE_INFO || tag == HDR_ALGO_INFO ||
           tag == HDR_ENC_INFO || tag == HDR_ENC_IV_INFO || tag == HDR_ENC_KEY_INFO;
}

/* The input's header TLVs in their order and nesting, with the signer's fields replaced. */
static int resign_header(struct tlv_out *b, const struct itl_header *h, struct resign *rs,
                         struct itl_error *err)
{
    struct {
        size_t out_at, in_end;
    } open[8];
    int depth = 0;

    for (size_t i = 0; i < h->n_tlvs; i++) {
        const struct itl_tlv *t = &h->tlvs[i];
        while (depth > 0 && t->offset >= open[depth - 1].in_end)
            tlv_close(b, open[--depth].out_at);
        if (is_container_tag(t->tag)) {
            if (depth == 8) {
                err_set(err, ITL_E_INPUT, "containers nested too deep to re-sign");
                return -1;
            }
            open[depth].out_at = tlv_open(b, t->tag);
            open[depth++].in_end = t->offset + 3 + t->value.len;
            continue;
        }
        if (resign_field(b, t, rs, err) != 0)
            return -1;
    }
    while (depth > 0)
        tlv_close(b, open[--depth].out_at);
    if (!rs->wrote_timestamp)
        tlv_put_u32(b, HDR_TIMESTAMP, rs->timestamp);
    return 0;
}

static int resign_signer_matches(const struct itl_file *f, size_t index,
                                 const struct itl_signer *signer, struct itl_error *err)
{
    struct itl_match m;

    if (itl_find_cert_record(f, index, ITL_ROLE_MASK(ITL_ROLE_SAST), signer->cert_der,
                             signer->cert_len, &m) == (long)index)
        return 0;
    err_set(err, ITL_E_INPUT,
            "the signer certificate is not the certificate of record #%zu (by its CERTIFICATE, "
            "or serial number and issuer when it has none)",
            index + 1);
    return -1;
}

int itl_resign_tlv(const struct itl_file *f, size_t signer_record, uint32_t timestamp,
                   const struct itl_signer *signer, uint8_t **out, size_t *out_len,
                   struct itl_error *err)
{
    struct tlv_out b = {0};
    X509 *sx = NULL;
    size_t sig_bytes;
    struct resign rs = {0};
    const struct itl_record *r;
    int rc = -1;

    if (!f || f->kind != ITL_KIND_TLV) {
        err_set(err, ITL_E_INPUT, "only an ITL/CTL (.tlv) can be re-signed this way");
        return -1;
    }
    if (signer_record >= f->n_records) {
        err_set(err, ITL_E_INPUT,
                "there is no signer record: the file has %zu records and none is it", f->n_records);
        return -1;
    }
    r = &f->records[signer_record];
    if (!r->has_function || r->function != ITL_ROLE_SAST) {
        err_set(err, ITL_E_INPUT,
                "record #%zu is %s, not a SAST record: phones accept only a SAST signer",
                signer_record + 1, itl_role_name(r->function));
        return -1;
    }
    if (signer_prepare(signer, &sx, &sig_bytes, &rs.modcode, err) != 0)
        return -1;
    if (resign_signer_matches(f, signer_record, signer, err) != 0)
        goto out;
    rs.rec = r;
    rs.index = signer_record + 1;
    rs.digest = signer->digest;
    rs.timestamp = timestamp;
    rs.sig_at = 0;
    if (resign_header(&b, &f->hdr, &rs, err) != 0)
        goto out;
    rc = finish_signed(&b, rs.sig_at, f->data + f->hdr.header_length, f->len - f->hdr.header_length,
                       signer, ITL_KIND_TLV, out, out_len, err);
out:
    X509_free(sx);
    buf_free(&b.buf);
    return rc;
}

/* ---- .sgn ---- */

int write_sgn_header(struct tlv_out *b, uint8_t major, uint8_t minor, X509 *sx,
                     const struct itl_sgn_opts *opts, int digest, int modcode, size_t *sig_at,
                     struct itl_error *err)
{
    write_version(b, major, minor);
    if (write_signer_info(b, sx, opts->signer_order, opts->names, opts->known, err) != 0)
        return -1;
    write_signature_info(b, digest, 0, modcode);
    *sig_at = b->buf.len;
    tlv_put_str(b, HDR_FILENAME, opts->filename);
    tlv_put_u32(b, HDR_TIMESTAMP, opts->timestamp);
    return 0;
}

int itl_build_sgn(const uint8_t *payload, size_t payload_len, const struct itl_sgn_opts *opts,
                  const struct itl_signer *signer, uint8_t **out, size_t *out_len,
                  struct itl_error *err)
{
    struct tlv_out b = {0};
    X509 *sx = NULL;
    size_t sig_bytes, sig_at;
    int modcode, rc = -1;

    if (!opts || !opts->filename || !opts->filename[0]) {
        err_set(err, ITL_E_INPUT,
                "a .sgn needs its FILENAME (the logical name, e.g. SEP0011.cnf.xml.sgn)");
        return -1;
    }
    if (!payload && payload_len > 0) {
        err_set(err, ITL_E_INPUT, "no payload");
        return -1;
    }
    if (signer_prepare(signer, &sx, &sig_bytes, &modcode, err) != 0)
        return -1;
    if (write_sgn_header(&b, 1, 0, sx, opts, signer->digest, modcode, &sig_at, err) == 0)
        rc = finish_signed(&b, sig_at, payload, payload_len, signer, ITL_KIND_SGN, out, out_len,
                           err);
    X509_free(sx);
    buf_free(&b.buf);
    return rc;
}
