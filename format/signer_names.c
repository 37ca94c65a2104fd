/* SPDX-License-Identifier: MIT */
/*
 * format: the name bytes a builder writes for a certificate. A phone looks its signer up in the
 * list it holds; when that list is known (`--itl`), the record's own bytes are copied so a
 * byte compare finds it (docs/trust.md "Names"); otherwise the certificate's names in the
 * chosen style.
 */
#include "format/internal.h"

#include <string.h>

static const struct itl_tlv *tlv_of(const struct itl_record *r, uint8_t tag)
{
    for (size_t i = 0; i < r->n_tlvs; i++)
        if (r->tlvs[i].tag == tag)
            return &r->tlvs[i];
    return NULL;
}

static int copy_value(uint8_t *out, size_t size, size_t *len, const struct itl_tlv *t)
{
    if (!t || t->value.len > size)
        return -1;
    memcpy(out, t->value.ptr, t->value.len);
    *len = t->value.len;
    return 0;
}

/* The record of `known` whose CERTIFICATE is x, with all three fields to copy, or NULL. Only a
 * record carrying the certificate itself: a client's list cannot lend the signer the names of
 * a record that merely claims its serial number. */
static const struct itl_record *known_record(X509 *x, const struct itl_file *known)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    struct itl_match m;
    const struct itl_record *r = NULL;

    if (n > 0 && itl_find_cert_record(known, 0, ITL_ROLES_ANY, der, (size_t)n, &m) >= 0 &&
        m.by_certificate) {
        r = &known->records[m.record];
        if (!tlv_of(r, REC_SUBJECT) || !tlv_of(r, REC_ISSUER) || !tlv_of(r, REC_SERIAL))
            r = NULL;
    }
    OPENSSL_free(der);
    return r;
}

int cert_names_for(X509 *x, const struct itl_file *known, enum itl_name_style style,
                   struct cert_names *out, struct itl_error *err)
{
    const struct itl_record *r = known ? known_record(x, known) : NULL;

    memset(out, 0, sizeof *out);
    if (r) {
        if (copy_value(out->subject, sizeof out->subject, &out->subject_len,
                       tlv_of(r, REC_SUBJECT)) != 0 ||
            copy_value(out->issuer, sizeof out->issuer, &out->issuer_len, tlv_of(r, REC_ISSUER)) !=
                0 ||
            copy_value(out->serial, sizeof out->serial, &out->serial_len, tlv_of(r, REC_SERIAL)) !=
                0) {
            err_set(err, ITL_E_INPUT, "the names of record at offset 0x%zx are too long to copy",
                    r->offset);
            return -1;
        }
        out->from_record = (long)(r - known->records);
        return 0;
    }
    out->from_record = -1;
    if (cert_name_str(x, 0, style, (char *)out->subject, sizeof out->subject, err) != 0 ||
        cert_name_str(x, 1, style, (char *)out->issuer, sizeof out->issuer, err) != 0 ||
        cert_serial_bytes(x, out->serial, sizeof out->serial, &out->serial_len, err) != 0)
        return -1;
    out->subject_len = strlen((char *)out->subject) + 1; /* strings are written with their NUL */
    out->issuer_len = strlen((char *)out->issuer) + 1;
    return 0;
}

void itl_header_conventions(const struct itl_header *h, enum itl_signer_order *order,
                            enum itl_name_style *names)
{
    const struct itl_bytes n = h->signer_name;

    *order = h->signer_order;
    /* certutils 4.13 writes ','-joined names; CUCM and older certutils ';'-joined */
    *names = n.ptr && memchr(n.ptr, ',', n.len) && !memchr(n.ptr, ';', n.len) ? ITL_NAMES_CERTUTILS
                                                                              : ITL_NAMES_CUCM;
}
