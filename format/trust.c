/* SPDX-License-Identifier: MIT */
/*
 * format: the phone model. Which record of an ITL/CTL holds a certificate, and would a phone
 * holding that list accept a file: the rules and their sources are docs/trust.md.
 */
#include "format/internal.h"

#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- distinguished names as the files write them ---- */

#define DN_MAX_PARTS 32
#define DN_MAX_KEY 64
#define DN_MAX_VALUE 256

struct dn_part {
    char key[DN_MAX_KEY];
    char value[DN_MAX_VALUE];
    int used;
};

struct dn {
    size_t n;
    struct dn_part p[DN_MAX_PARTS];
};

/* One piece between separators, unescaped (RFC 4514 "\," and "\2C"), spaces around trimmed. */
static size_t unescape_piece(const uint8_t *s, size_t n, char *out, size_t size)
{
    size_t o = 0;

    while (n > 0 && s[0] == ' ')
        s++, n--;
    while (n > 0 && s[n - 1] == ' ' && !(n > 1 && s[n - 2] == '\\'))
        n--;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            int hi = hex_digit(s[i + 1]), lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
            if (hi >= 0 && lo >= 0) {
                out[o++] = (char)(hi * 16 + lo);
                i += 2;
            } else {
                out[o++] = (char)s[++i];
            }
            continue;
        }
        out[o++] = (char)s[i];
    }
    out[o] = 0;
    return o;
}

/* "CN=a;OU=b" or "CN=a,OU=b" (either separator, spaces allowed after it) into components. A
 * piece without '=' belongs to the value before it: CUCM does not escape a ',' in a value. */
static int dn_parse(const uint8_t *s, size_t len, struct dn *d)
{
    size_t start = 0;

    d->n = 0;
    for (size_t i = 0; i <= len; i++) {
        char piece[DN_MAX_KEY + DN_MAX_VALUE];
        const char *eq;
        if (i < len && !((s[i] == ';' || s[i] == ',') && (i == 0 || s[i - 1] != '\\')))
            continue;
        unescape_piece(s + start, i - start, piece, sizeof piece);
        eq = strchr(piece, '=');
        if (!eq && d->n > 0) {
            struct dn_part *prev = &d->p[d->n - 1];
            size_t have = strlen(prev->value);
            snprintf(prev->value + have, sizeof prev->value - have, "%c%s", (char)s[start - 1],
                     piece);
        } else if (eq) {
            if (d->n == DN_MAX_PARTS || (size_t)(eq - piece) >= DN_MAX_KEY)
                return -1;
            memcpy(d->p[d->n].key, piece, (size_t)(eq - piece));
            d->p[d->n].key[eq - piece] = 0;
            snprintf(d->p[d->n].value, sizeof d->p[d->n].value, "%s", eq + 1);
            d->p[d->n].used = 0;
            d->n++;
        } else if (piece[0]) {
            return -1;
        }
        start = i + 1;
    }
    return 0;
}

/* "CN", "commonName" and "2.5.4.3" are one attribute. */
static int same_key(const char *a, const char *b)
{
    int na, nb;

    if (strcasecmp(a, b) == 0) /* the common case, without OpenSSL's object table */
        return 1;
    na = OBJ_txt2nid(a);
    nb = OBJ_txt2nid(b);
    return na != NID_undef && na == nb;
}

int itl_same_dn(struct itl_bytes a, struct itl_bytes b)
{
    struct dn da, db;

    if (a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0))
        return 1;
    if (a.len == 0 || b.len == 0 || !a.ptr || !b.ptr)
        return 0;
    if (dn_parse(a.ptr, a.len, &da) != 0 || dn_parse(b.ptr, b.len, &db) != 0 || da.n != db.n ||
        da.n == 0)
        return 0;
    for (size_t i = 0; i < da.n; i++) {
        size_t j;
        for (j = 0; j < db.n; j++)
            if (!db.p[j].used && same_key(da.p[i].key, db.p[j].key) &&
                strcmp(da.p[i].value, db.p[j].value) == 0)
                break;
        if (j == db.n)
            return 0;
        db.p[j].used = 1;
    }
    return 1;
}

/* ---- which record holds a certificate ---- */

static int role_in(const struct itl_record *r, unsigned roles)
{
    return r->has_function && r->function < 32 && (roles & (1u << r->function));
}

static void note_names(struct itl_match *m, const char *what, struct itl_bytes ours,
                       const struct itl_record *r, size_t index)
{
    m->names_differ = 1;
    snprintf(m->note, sizeof m->note,
             "the serial number matches record #%zu and the issuer is the same name, but the "
             "bytes differ: %s \"%.*s\", record #%zu ISSUERNAME \"%.*s\"",
             index + 1, what, (int)ours.len, ours.ptr ? (const char *)ours.ptr : "", index + 1,
             (int)r->issuer.len, r->issuer.ptr ? (const char *)r->issuer.ptr : "");
}

/* Record i holds the certificate named by serial + issuer; `what` names our issuer string. */
static int names_cert(const struct itl_record *r, size_t i, struct itl_bytes serial,
                      struct itl_bytes issuer, const char *what, struct itl_match *m)
{
    if (!r->serial.ptr || !serial_equal(r->serial.ptr, r->serial.len, serial.ptr, serial.len))
        return 0;
    if (issuer.len == 0 || r->issuer.len == 0)
        return 1;
    if (!itl_same_dn(issuer, r->issuer))
        return 0;
    if (issuer.len != r->issuer.len || memcmp(issuer.ptr, r->issuer.ptr, issuer.len) != 0)
        note_names(m, what, issuer, r, i);
    return 1;
}

long itl_find_record(const struct itl_file *list, size_t from, unsigned roles,
                     struct itl_bytes serial, struct itl_bytes issuer, struct itl_match *m)
{
    memset(m, 0, sizeof *m);
    m->record = -1;
    if (!serial.ptr)
        return -1;
    for (size_t i = from; i < list->n_records; i++)
        if (role_in(&list->records[i], roles) &&
            names_cert(&list->records[i], i, serial, issuer, "the header's CANAME", m)) {
            m->record = (long)i;
            break;
        }
    return m->record;
}

long itl_find_cert_record(const struct itl_file *list, size_t from, unsigned roles,
                          const uint8_t *der, size_t len, struct itl_match *m)
{
    X509 *x = cert_parse(der, len, "the certificate", NULL);
    uint8_t serial[128];
    size_t serial_len;
    char issuer[1024];

    memset(m, 0, sizeof *m);
    m->record = -1;
    if (!x)
        return -1;
    if (cert_serial_bytes(x, serial, sizeof serial, &serial_len, NULL) != 0 ||
        cert_name_str(x, 1, ITL_NAMES_CUCM, issuer, sizeof issuer, NULL) != 0)
        goto out;
    for (size_t i = from; i < list->n_records; i++) {
        const struct itl_record *r = &list->records[i];
        if (!role_in(r, roles))
            continue;
        if (r->certificate.ptr) { /* a record with the certificate is that certificate */
            if (r->certificate.len == len && memcmp(r->certificate.ptr, der, len) == 0) {
                m->record = (long)i;
                m->by_certificate = 1;
                break;
            }
            continue;
        }
        if (names_cert(r, i, bytes_view(serial, serial_len),
                       bytes_view((const uint8_t *)issuer, strlen(issuer)),
                       "the certificate's issuer", m)) {
            m->record = (long)i;
            break;
        }
        m->names_differ = 0;
    }
out:
    X509_free(x);
    return m->record;
}

long itl_find_signer_record(const struct itl_file *f)
{
    struct itl_match m;

    return itl_find_record(f, 0, 1u << ITL_ROLE_SAST, f->hdr.signer_serial, f->hdr.signer_issuer,
                           &m);
}

int itl_has_cert_with_role(const struct itl_file *f, const uint8_t *der, size_t len,
                           unsigned function)
{
    struct itl_match m;

    return function < 32 && itl_find_cert_record(f, 0, 1u << function, der, len, &m) >= 0;
}

int itl_verify_self(const struct itl_file *f, long *signer_index, struct itl_error *err)
{
    long i = itl_find_signer_record(f);
    const struct itl_record *r;

    if (signer_index)
        *signer_index = i;
    if (f->kind != ITL_KIND_TLV) {
        err_set(err, ITL_E_INPUT,
                "a %s file carries no certificates: verify it with a given certificate",
                itl_kind_name(f->kind));
        return -1;
    }
    if (i < 0) {
        err_set(err, ITL_E_INPUT,
                "no SAST record matches the signer named in the header (serial number and "
                "issuer)");
        return -1;
    }
    r = &f->records[i];
    if (!r->certificate.ptr) {
        err_set(err, ITL_E_INPUT,
                "record #%ld (offset 0x%zx) names the signer but holds no CERTIFICATE", i + 1,
                r->offset);
        return -1;
    }
    return itl_verify_with_cert(f, r->certificate.ptr, r->certificate.len, err);
}

/* ---- would a phone accept it ---- */

enum itl_list itl_list_of(const struct itl_file *f)
{
    if (!f || f->kind != ITL_KIND_TLV)
        return ITL_LIST_NONE;
    if (f->hdr.filename.len >= 3 && strncasecmp((const char *)f->hdr.filename.ptr, "CTL", 3) == 0)
        return ITL_LIST_CTL;
    return ITL_LIST_ITL;
}

enum file_class { FILE_ITL, FILE_CTL, FILE_CONFIG };

/* Who may sign what, as phones are documented to decide (docs/trust.md cites each source). */
struct trust_rule {
    enum itl_list installed;
    enum file_class file;
    unsigned roles;
    const char *rule;
};

#define SAST ITL_ROLE_MASK(ITL_ROLE_SAST)
#define TFTP_ROLES (ITL_ROLE_MASK(ITL_ROLE_TFTP) | ITL_ROLE_MASK(ITL_ROLE_CCM_TFTP))

static const struct trust_rule rules[] = {
    {ITL_LIST_ITL, FILE_ITL, SAST,
     "a new ITL signed by a SAST record of the installed ITL (docs/trust.md R1: the ITLRecovery "
     "or CallManager certificate, seeds 000 and 001)"},
    {ITL_LIST_ITL, FILE_ITL, TFTP_ROLES,
     "a new ITL signed by the TFTP certificate installed on the phone (docs/trust.md R2: CUCM 8 "
     "signs the ITL with the TFTP key, seeds 001 and 004)"},
    {ITL_LIST_CTL, FILE_ITL, ITL_ROLE_MASK(ITL_ROLE_CCM_TFTP),
     "a new ITL verified by the CCM+TFTP function of the installed CTL (docs/trust.md R3, "
     "seed 001)"},
    {ITL_LIST_CTL, FILE_CTL, SAST,
     "a new CTL signed by a SAST (eToken) record of the installed CTL (docs/trust.md R4, "
     "seed 001)"},
    {ITL_LIST_ITL, FILE_CONFIG, TFTP_ROLES,
     "a config signed by a TFTP or CCM+TFTP record of the installed ITL (docs/trust.md R5, "
     "seeds 001 and 004)"},
    {ITL_LIST_CTL, FILE_CONFIG, TFTP_ROLES,
     "a config signed by a TFTP or CCM+TFTP record of the installed CTL (docs/trust.md R5, "
     "seed 001)"},
};

static const char *list_word(enum itl_list l)
{
    return l == ITL_LIST_CTL ? "CTL" : "ITL";
}

static const char *class_word(enum file_class c)
{
    return c == FILE_ITL ? "ITL" : c == FILE_CTL ? "CTL" : "config";
}

static enum file_class class_of(const struct itl_file *f)
{
    enum itl_list l = itl_list_of(f);

    return l == ITL_LIST_CTL ? FILE_CTL : l == ITL_LIST_ITL ? FILE_ITL : FILE_CONFIG;
}

static int cannot_check(const struct itl_file *f)
{
    return itl_digest_nid(f->hdr.digest) == 0 || f->hdr.sig_algorithm != 0;
}

/* Validity of the certificate at `now` (0: not checked): 0 valid, 1 expired or not yet valid. */
static int outside_validity(X509 *x, int64_t now, char *when, size_t size)
{
    time_t t = (time_t)now;

    if (now == 0)
        return 0;
    if (X509_cmp_time(X509_get0_notAfter(x), &t) < 0) {
        snprintf(when, size, "expired");
        return 1;
    }
    if (X509_cmp_time(X509_get0_notBefore(x), &t) > 0) {
        snprintf(when, size, "is not yet valid");
        return 1;
    }
    return 0;
}

/* opts.assume_signer: the signature would verify with x only if x has the assumed signer's
 * key (a signature depends on the key alone, not on the certificate around it). */
static int assumed_signer_is(X509 *x, const struct itl_trust_opts *o, const char *whose,
                             struct itl_error *err)
{
    X509 *a = cert_parse(o->assume_signer, o->assume_signer_len, "the assumed signer", err);
    int same;

    if (!a)
        return -1;
    same = EVP_PKEY_eq(X509_get0_pubkey(a), X509_get0_pubkey(x)) == 1;
    X509_free(a);
    if (!same)
        return err_set(err, ITL_E_INPUT,
                       "the file would be signed by the assumed signer, whose key is not the "
                       "key of %s",
                       whose);
    return 0;
}

/* The file's signature with this certificate; the expiry rule applied. 0 accepted. */
static int signed_by(const struct itl_file *file, const uint8_t *der, size_t len,
                     const struct itl_trust_opts *o, struct itl_trust_verdict *v, const char *whose,
                     struct itl_error *err)
{
    X509 *x = cert_parse(der, len, whose, err);
    char when[32];
    int rc = -1;

    if (!x)
        return -1;
    if (o && o->assume_signer ? assumed_signer_is(x, o, whose, err) != 0
                              : verify_with_x509(file, x, err) != 0)
        goto out;
    if (outside_validity(x, o ? o->now : 0, when, sizeof when)) {
        v->expired = 1;
        if (!o->expired_accept) {
            err_set(err, ITL_E_INPUT,
                    "the signature verifies but %s %s (validity checked at the given time; "
                    "itl-sign refuses to sign with such a certificate, policy.expired)",
                    whose, when);
            goto out;
        }
        snprintf(v->note, sizeof v->note, "%s %s; accepted as asked", whose, when);
    }
    rc = 0;
out:
    X509_free(x);
    return rc;
}

/* Direct: a record of `installed` with a role the rule allows names the signer and its
 * certificate verifies the signature. */
static int accept_direct(const struct itl_file *installed, const struct itl_file *file,
                         const struct trust_rule *r, const struct itl_trust_opts *o,
                         struct itl_trust_verdict *v, long *named, struct itl_error *last)
{
    struct itl_match m;
    char whose[64];

    for (long i = itl_find_record(installed, 0, r->roles, file->hdr.signer_serial,
                                  file->hdr.signer_issuer, &m);
         i >= 0; i = itl_find_record(installed, (size_t)i + 1, r->roles, file->hdr.signer_serial,
                                     file->hdr.signer_issuer, &m)) {
        const struct itl_record *rec = &installed->records[i];
        if (*named < 0)
            *named = i;
        if (m.names_differ)
            snprintf(v->note, sizeof v->note, "%s", m.note);
        if (!rec->certificate.ptr) {
            err_set(last, ITL_E_INPUT,
                    "record #%ld names the signer but holds no CERTIFICATE to check with", i + 1);
            continue;
        }
        snprintf(whose, sizeof whose, "the certificate of record #%ld", i + 1);
        if (signed_by(file, rec->certificate.ptr, rec->certificate.len, o, v, whose, last) == 0) {
            v->record = i;
            return 1;
        }
    }
    return 0;
}

/* Via TVS: a TVS record of `installed` holds the TVS service's current certificate and one of
 * the certificates TVS trusts signed the file (seed 001, "Phone Contacts TVS"). */
static int accept_tvs(const struct itl_file *installed, const struct itl_file *file,
                      const struct itl_trust_opts *o, struct itl_trust_verdict *v,
                      struct itl_error *last)
{
    struct itl_match m;
    long t;

    if (!o || !o->tvs_cert)
        return 0;
    t = itl_find_cert_record(installed, 0, ITL_ROLE_MASK(ITL_ROLE_TVS), o->tvs_cert,
                             o->tvs_cert_len, &m);
    if (t < 0) {
        err_set(last, ITL_E_INPUT,
                "no TVS record of the installed %s holds the TVS service's certificate: the "
                "phone cannot reach TVS (seed 001: never regenerate CallManager.pem and TVS.pem "
                "at the same time)",
                list_word(itl_list_of(installed)));
        return 0;
    }
    for (size_t i = 0; i < o->n_tvs_trusts; i++) {
        struct itl_error e = {0};
        if (signed_by(file, o->tvs_trusts[i].cert_der, o->tvs_trusts[i].cert_len, o, v,
                      "the certificate TVS trusts", &e) == 0) {
            v->tvs_record = t;
            return 1;
        }
    }
    err_set(last, ITL_E_INPUT,
            "TVS is reachable through record #%ld but none of the %zu certificates it trusts "
            "signed the file",
            t + 1, o->n_tvs_trusts);
    return 0;
}

/* Why no rule accepted: the signer is absent, in a role no rule allows, or did not verify. */
static void explain(const struct itl_file *installed, const struct itl_file *file,
                    enum file_class fc, const char *allowed, long named,
                    const struct itl_error *last, struct itl_trust_verdict *v)
{
    struct itl_match m;
    long any = itl_find_record(installed, 0, ITL_ROLES_ANY, file->hdr.signer_serial,
                               file->hdr.signer_issuer, &m);
    const char *l = list_word(itl_list_of(installed));

    v->record = named >= 0 ? named : any;
    if (named >= 0 || (last->msg[0] && any < 0)) {
        snprintf(v->why, sizeof v->why, "%s", last->msg);
    } else if (any >= 0) {
        snprintf(v->why, sizeof v->why,
                 "the signer %.*s is record #%ld of the installed %s as %s, and a phone takes a "
                 "new %s only from %s",
                 (int)file->hdr.signer_name.len, (const char *)file->hdr.signer_name.ptr, any + 1,
                 l, itl_role_name(installed->records[any].function), class_word(fc), allowed);
    } else {
        snprintf(v->why, sizeof v->why,
                 "the signer %.*s (serial number and issuer of the header) is no record of the "
                 "installed %s; a phone takes a new %s only from %s",
                 (int)file->hdr.signer_name.len,
                 file->hdr.signer_name.ptr ? (const char *)file->hdr.signer_name.ptr : "", l,
                 class_word(fc), allowed);
    }
}

static const char *allowed_words(enum itl_list l, enum file_class fc)
{
    if (fc == FILE_CONFIG)
        return "its TFTP or CCM+TFTP records";
    if (l == ITL_LIST_ITL)
        return fc == FILE_ITL ? "its SAST, TFTP or CCM+TFTP records"
                              : "its installed CTL's SAST records (an ITL does not vouch for a "
                                "CTL, docs/trust.md R6)";
    return fc == FILE_ITL ? "its CCM+TFTP records" : "its SAST records";
}

enum itl_trust_path itl_trust_decide(const struct itl_file *installed, const struct itl_file *file,
                                     const struct itl_trust_opts *opts, struct itl_trust_verdict *v)
{
    static const struct itl_trust_opts none = {0};
    enum itl_list l = itl_list_of(installed);
    enum file_class fc = class_of(file);
    struct itl_error last = {0}, tvs = {0};
    long named = -1;

    memset(v, 0, sizeof *v);
    v->record = v->tvs_record = -1;
    if (!opts)
        opts = &none;
    if (l == ITL_LIST_NONE) {
        snprintf(v->why, sizeof v->why,
                 "the installed file must be an ITL or CTL (.tlv), not a %s: a phone trusts "
                 "through its ITL and CTL only",
                 installed ? itl_kind_name(installed->kind) : "missing file");
        return ITL_TRUST_NONE;
    }
    if (cannot_check(file)) {
        v->malformed = 1;
        snprintf(v->why, sizeof v->why,
                 "the file's signature cannot be checked: DIGESTALGORITHM %d / "
                 "SIGNATUREALGORITHM %u are not ones a phone verifies",
                 file->hdr.digest, file->hdr.sig_algorithm);
        return ITL_TRUST_NONE;
    }
    if (!file->hdr.signer_serial.ptr) {
        snprintf(v->why, sizeof v->why, "the header names no signer serial number");
        return ITL_TRUST_NONE;
    }
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        if (rules[i].installed != l || rules[i].file != fc)
            continue;
        if (accept_direct(installed, file, &rules[i], opts, v, &named, &last)) {
            v->rule = rules[i].rule;
            snprintf(v->why, sizeof v->why, "record #%ld (%s) of the installed %s signed it",
                     v->record + 1, itl_role_name(installed->records[v->record].function),
                     list_word(l));
            return v->path = ITL_TRUST_DIRECT;
        }
    }
    /* TVS vouches for new ITL and config signers, never for a CTL (seed 001). */
    if (fc != FILE_CTL && accept_tvs(installed, file, opts, v, &tvs)) {
        v->rule = "a signer the installed list does not hold, vouched for by TVS (docs/trust.md "
                  "R7, seed 001 \"Phone Contacts TVS for Unknown Certificate\")";
        snprintf(v->why, sizeof v->why,
                 "TVS (record #%ld of the installed %s holds its certificate) trusts the signer",
                 v->tvs_record + 1, list_word(l));
        return v->path = ITL_TRUST_TVS;
    }
    explain(installed, file, fc, allowed_words(l, fc), named, &last, v);
    if (tvs.msg[0]) {
        size_t n = strlen(v->why);
        snprintf(v->why + n, sizeof v->why - n, "; not through TVS either: %.500s", tvs.msg);
    }
    return ITL_TRUST_NONE;
}
