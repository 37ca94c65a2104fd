/* SPDX-License-Identifier: MIT */
/*
 * The phone model (format/trust.c, docs/trust.md): names compared as distinguished names, the
 * record that holds a certificate, and a table of every role x file kind x path, each row
 * naming the document its answer comes from.
 */
#include "tests/unit/test_format_util.h"

#include <time.h>

enum who { K_SAST, K_CCM_TFTP, K_TFTP, K_CCM, K_TVS, K_OUTSIDER, K_PHONE, K_N };
static struct tf_key keys[K_N];
static uint8_t *itl_bytes, *ctl_bytes;
static size_t itl_len, ctl_len;
static struct itl_file itl, ctl;

static const uint32_t when = 1700000000;

static uint8_t *build_list(const char *filename, const struct itl_entry *e, size_t n,
                           enum who signer, enum itl_name_style names, size_t *len)
{
    struct itl_build_opts o = {filename, when, ITL_LAYOUT_CUCM, ITL_ORDER_NAME_SERIAL_ISSUER, names,
                               0,        NULL};
    struct itl_signer s = tf_signer(&keys[signer], ITL_DIGEST_SHA1);
    struct itl_error err = {0};
    uint8_t *out;

    ck_assert_msg(itl_build_tlv(e, n, &o, &s, &out, len, &err) == 0, "%s", err.msg);
    return out;
}

static struct itl_entry entry(enum who k, unsigned role)
{
    return (struct itl_entry){keys[k].der, keys[k].der_len, role};
}

static void setup(void)
{
    static const char *const subjects[K_N] = {
        "/CN=ITLRECOVERY_cucm-pub/OU=TAC/O=Cisco/C=US",
        "/CN=cucm-pub/OU=TAC/O=Cisco/L=RTP/ST=nc/C=US",
        "/CN=cucm-tftp/OU=TAC/O=Cisco/C=US",
        "/CN=cucm-sub/OU=TAC/O=Cisco/C=US",
        "/CN=cucm-pub-tvs/OU=TAC/O=Cisco/C=US",
        "/CN=other-cluster/OU=TAC/O=Cisco/C=US",
        "/CN=CP-8845-SEP001122334455/O=Cisco",
    };
    struct itl_entry e[5];
    struct itl_error err = {0};

    for (int i = 0; i < K_N; i++)
        tf_make_key(&keys[i], 1024, subjects[i], 0x100u + (uint32_t)i);
    /* the installed ITL: as CUCM 10+ writes it (ITLRecovery SAST, CallManager CCM+TFTP, TVS) */
    e[0] = entry(K_SAST, ITL_ROLE_SAST);
    e[1] = entry(K_CCM_TFTP, ITL_ROLE_CCM_TFTP);
    e[2] = entry(K_TFTP, ITL_ROLE_TFTP);
    e[3] = entry(K_CCM, ITL_ROLE_CCM);
    e[4] = entry(K_TVS, ITL_ROLE_TVS);
    itl_bytes = build_list("ITLFile.tlv", e, 5, K_SAST, ITL_NAMES_CERTUTILS, &itl_len);
    ck_assert_int_eq(itl_parse(itl_bytes, itl_len, ITL_KIND_AUTO, &itl, &err), 0);
    /* the installed CTL: eToken SAST, CCM+TFTP, TFTP, CCM; no TVS */
    ctl_bytes = build_list("CTLFile.tlv", e, 4, K_SAST, ITL_NAMES_CUCM, &ctl_len);
    ck_assert_int_eq(itl_parse(ctl_bytes, ctl_len, ITL_KIND_AUTO, &ctl, &err), 0);
}

static void teardown(void)
{
    itl_file_free(&itl);
    itl_file_free(&ctl);
    free(itl_bytes);
    free(ctl_bytes);
    for (int i = 0; i < K_N; i++)
        tf_free_key(&keys[i]);
}

/* ---- names ---- */

static struct itl_bytes bytes_of(const uint8_t *p, size_t n)
{
    return (struct itl_bytes){p, n};
}

static struct itl_bytes B(const char *s) {
    return (struct itl_bytes){(const uint8_t *)s, strlen(s)};
}

START_TEST(test_same_dn)
{
    ck_assert(itl_same_dn(B("CN=a;OU=b;O=c;C=US"), B("CN=a,OU=b,O=c,C=US")));
    ck_assert(itl_same_dn(B("CN=a;OU=b;O=c;C=US"), B("C=US,O=c,OU=b,CN=a")));            /* order */
    ck_assert(itl_same_dn(B("CN=CUCM8; OU=TAC;O=Cisco"), B("CN=CUCM8;OU=TAC;O=Cisco"))); /* seed */
    ck_assert(itl_same_dn(B("commonName=a;2.5.4.10=x"), B("CN=a,O=x")));                 /* OIDs */
    ck_assert(itl_same_dn(B("CN=a;O=x,y"), B("CN=a,O=x\\,y"))); /* escapes */
    ck_assert(!itl_same_dn(B("CN=a;OU=b"), B("CN=a;OU=c")));
    ck_assert(!itl_same_dn(B("CN=a;OU=b"), B("CN=a;OU=b;O=c")));
    ck_assert(!itl_same_dn(B("CN=a;CN=a"), B("CN=a;OU=a")));
    ck_assert(!itl_same_dn(B("CN=A"), B("CN=a"))); /* values are compared exactly */
}
END_TEST

START_TEST(test_find_record)
{
    struct itl_match m;
    const struct itl_record *r = &itl.records[1]; /* CCM+TFTP, ','-joined names */
    uint8_t serial[3] = {0x00, 0x01, 0x01};       /* 0x101 with a leading zero */
    char cucm[256];
    struct itl_error err = {0};

    /* serial as an integer, issuer as a DN: the ';' form finds the ',' record, and says so */
    ck_assert_int_eq(itl_cert_name(keys[K_CCM_TFTP].der, keys[K_CCM_TFTP].der_len, 1,
                                   ITL_NAMES_CUCM, cucm, sizeof cucm, &err),
                     0);
    ck_assert_str_eq(cucm, "CN=cucm-pub;OU=TAC;O=Cisco;L=RTP;ST=nc;C=US");
    ck_assert_int_eq(itl_find_record(&itl, 0, ITL_ROLES_ANY, bytes_of(serial, 3), B(cucm), &m), 1);
    ck_assert(m.names_differ);
    ck_assert_ptr_nonnull(strstr(m.note, cucm));
    ck_assert_ptr_nonnull(strstr(m.note, "CN=cucm-pub,OU=TAC,O=Cisco,L=RTP,ST=nc,C=US"));
    /* the record's own bytes: no note */
    ck_assert_int_eq(itl_find_record(&itl, 0, ITL_ROLES_ANY, r->serial, r->issuer, &m), 1);
    ck_assert(!m.names_differ);
    /* role mask */
    ck_assert_int_eq(
        itl_find_record(&itl, 0, ITL_ROLE_MASK(ITL_ROLE_SAST), r->serial, r->issuer, &m), -1);
    /* another issuer with the same serial is another certificate */
    ck_assert_int_eq(
        itl_find_record(&itl, 0, ITL_ROLES_ANY, r->serial, B("CN=cucm-pub;OU=TAC"), &m), -1);
    /* by certificate */
    ck_assert_int_eq(
        itl_find_cert_record(&itl, 0, ITL_ROLES_ANY, keys[K_TVS].der, keys[K_TVS].der_len, &m), 4);
    ck_assert(m.by_certificate);
    ck_assert_int_eq(itl_find_cert_record(&itl, 0, ITL_ROLES_ANY, keys[K_OUTSIDER].der,
                                          keys[K_OUTSIDER].der_len, &m),
                     -1);
    ck_assert_int_eq(itl_find_signer_record(&itl), 0);
}
END_TEST

/* ---- the table ---- */

enum fk { F_ITL, F_CTL, F_SGN, F_ENC };

struct row {
    const char *installed; /* "ITL" or "CTL" */
    enum fk file;
    enum who signer;
    int tvs; /* 1: TVS (the ITL's TVS record) trusts the signer; 2: an unknown TVS */
    enum itl_trust_path want;
    const char *source; /* the document the answer comes from (docs/trust.md) */
};

static const struct row table[] = {
    /* installed ITL, new ITL */
    {"ITL", F_ITL, K_SAST, 0, ITL_TRUST_DIRECT, "R1: seed 000 (ITLRecovery signs the reset ITL)"},
    {"ITL", F_ITL, K_CCM_TFTP, 0, ITL_TRUST_DIRECT, "R2: seeds 001, 004 (CUCM 8 TFTP signs)"},
    {"ITL", F_ITL, K_TFTP, 0, ITL_TRUST_DIRECT, "R2: seed 004 (the TFTP certificate installed)"},
    {"ITL", F_ITL, K_CCM, 0, ITL_TRUST_NONE, "R1/R2: CCM is no ITL signer"},
    {"ITL", F_ITL, K_TVS, 0, ITL_TRUST_NONE, "R1/R2: TVS is no ITL signer"},
    {"ITL", F_ITL, K_OUTSIDER, 0, ITL_TRUST_NONE, "seed 004: another cluster's ITL"},
    {"ITL", F_ITL, K_OUTSIDER, 1, ITL_TRUST_TVS, "R7: seed 001 (regenerated CallManager.pem)"},
    {"ITL", F_ITL, K_OUTSIDER, 2, ITL_TRUST_NONE, "R7: seed 001 (TVS.pem regenerated too)"},
    /* installed ITL, new CTL */
    {"ITL", F_CTL, K_SAST, 0, ITL_TRUST_NONE, "R6: no document has an ITL vouch for a CTL"},
    {"ITL", F_CTL, K_OUTSIDER, 1, ITL_TRUST_NONE, "R7: TVS vouches for ITLs and configs only"},
    /* installed ITL, configs */
    {"ITL", F_SGN, K_CCM_TFTP, 0, ITL_TRUST_DIRECT, "R5: seed 001 (CCM+TFTP verifies the config)"},
    {"ITL", F_SGN, K_TFTP, 0, ITL_TRUST_DIRECT, "R5: seed 004 (the TFTP server certificate)"},
    {"ITL", F_SGN, K_CCM, 0, ITL_TRUST_NONE, "R5: CCM alone does not sign configs (seed 001)"},
    {"ITL", F_SGN, K_SAST, 0, ITL_TRUST_NONE, "R5: a SAST is no TFTP record"},
    {"ITL", F_SGN, K_TVS, 0, ITL_TRUST_NONE, "R5: TVS is no TFTP record"},
    {"ITL", F_SGN, K_OUTSIDER, 0, ITL_TRUST_NONE, "seed 004: another cluster's config"},
    {"ITL", F_SGN, K_OUTSIDER, 1, ITL_TRUST_TVS, "R7: seed 001 (TVS verifies the new signer)"},
    {"ITL", F_ENC, K_CCM_TFTP, 0, ITL_TRUST_DIRECT, "R5: seed 001 (.enc.sgn signed by TFTP)"},
    {"ITL", F_ENC, K_CCM, 0, ITL_TRUST_NONE, "R5: CCM alone does not sign configs"},
    /* installed CTL */
    {"CTL", F_CTL, K_SAST, 0, ITL_TRUST_DIRECT, "R4: seed 001 (eToken key stays the same)"},
    {"CTL", F_CTL, K_CCM_TFTP, 0, ITL_TRUST_NONE, "R4: only a SAST signs a CTL"},
    {"CTL", F_ITL, K_CCM_TFTP, 0, ITL_TRUST_DIRECT, "R3: seed 001 (CTL but no ITL)"},
    {"CTL", F_ITL, K_SAST, 0, ITL_TRUST_NONE, "R3: only the CTL's CCM+TFTP verifies an ITL"},
    {"CTL", F_ITL, K_TFTP, 0, ITL_TRUST_NONE, "R3: only the CTL's CCM+TFTP verifies an ITL"},
    {"CTL", F_ITL, K_OUTSIDER, 1, ITL_TRUST_NONE, "R7: a CTL holds no TVS record (seed 001)"},
    {"CTL", F_SGN, K_CCM_TFTP, 0, ITL_TRUST_DIRECT, "R5: seed 001 (CTL or ITL)"},
    {"CTL", F_SGN, K_TFTP, 0, ITL_TRUST_DIRECT, "R5: seed 001"},
    {"CTL", F_SGN, K_CCM, 0, ITL_TRUST_NONE, "R5: CCM alone does not sign configs"},
};

static uint8_t *make_file(enum fk kind, enum who signer, size_t *len)
{
    struct itl_sgn_opts so = {"SEP001122334455.cnf.xml.sgn", when, ITL_ORDER_NAME_SERIAL_ISSUER,
                              ITL_NAMES_CUCM, NULL};
    struct itl_signer s = tf_signer(&keys[signer], ITL_DIGEST_SHA1);
    struct itl_enc_keys ek = {{1, 2, 3}, {4, 5, 6}};
    static const char xml[] = "<device><fullConfig>true</fullConfig></device>";
    struct itl_entry e[2] = {entry(signer, ITL_ROLE_SAST), entry(K_CCM_TFTP, ITL_ROLE_CCM_TFTP)};
    struct itl_error err = {0};
    uint8_t *out = NULL;

    switch (kind) {
    case F_ITL:
        return build_list("ITLFile.tlv", e, 2, signer, ITL_NAMES_CUCM, len);
    case F_CTL:
        return build_list("CTLFile.tlv", e, 2, signer, ITL_NAMES_CUCM, len);
    case F_SGN:
        ck_assert_msg(
            itl_build_sgn((const uint8_t *)xml, sizeof xml - 1, &so, &s, &out, len, &err) == 0,
            "%s", err.msg);
        return out;
    case F_ENC:
        so.filename = "SEP001122334455.cnf.xml.enc.sgn";
        ck_assert_msg(itl_build_enc_sgn((const uint8_t *)xml, sizeof xml - 1, keys[K_PHONE].der,
                                        keys[K_PHONE].der_len, &ek, &so, &s, &out, len, &err) == 0,
                      "%s", err.msg);
        return out;
    }
    return NULL;
}

START_TEST(test_phone_model_table)
{
    const struct row *r = &table[_i];
    struct itl_entry trusts = entry(r->signer, 0);
    struct itl_trust_opts o = {0};
    struct itl_trust_verdict v;
    struct itl_file f;
    struct itl_error err = {0};
    size_t len;
    uint8_t *data = make_file(r->file, r->signer, &len);
    enum itl_trust_path got;

    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    o.now = (int64_t)time(NULL);
    if (r->tvs) {
        o.tvs_cert = r->tvs == 1 ? keys[K_TVS].der : keys[K_OUTSIDER].der;
        o.tvs_cert_len = r->tvs == 1 ? keys[K_TVS].der_len : keys[K_OUTSIDER].der_len;
        o.tvs_trusts = &trusts;
        o.n_tvs_trusts = 1;
    }
    got = itl_trust_decide(strcmp(r->installed, "CTL") == 0 ? &ctl : &itl, &f, &o, &v);
    ck_assert_msg(got == r->want, "row %d (%s): path %d, want %d: %s", _i, r->source, got, r->want,
                  v.why);
    ck_assert_int_eq(v.path, got);
    if (got == ITL_TRUST_NONE) {
        ck_assert_msg(v.why[0] != 0, "row %d: a rejection says why", _i);
        ck_assert_ptr_null(v.rule);
    } else {
        ck_assert_ptr_nonnull(v.rule);
        ck_assert_ptr_nonnull(strstr(v.rule, "docs/trust.md R"));
        ck_assert_int_ge(got == ITL_TRUST_TVS ? v.tvs_record : v.record, 0);
    }
    itl_file_free(&f);
    free(data);
}
END_TEST

/* Why not, in words: wrong role names the record and the role; absent says so. */
START_TEST(test_reasons)
{
    struct itl_trust_verdict v;
    struct itl_file f;
    struct itl_error err = {0};
    size_t len;
    uint8_t *data = make_file(F_SGN, K_CCM, &len);

    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    ck_assert_int_eq(itl_trust_decide(&itl, &f, NULL, &v), ITL_TRUST_NONE);
    ck_assert_ptr_nonnull(strstr(v.why, "record #4 of the installed ITL as CCM"));
    ck_assert_ptr_nonnull(strstr(v.why, "TFTP or CCM+TFTP"));
    ck_assert_int_eq(v.record, 3);
    /* a .sgn as the installed list */
    ck_assert_int_eq(itl_trust_decide(&f, &f, NULL, &v), ITL_TRUST_NONE);
    ck_assert_ptr_nonnull(strstr(v.why, "must be an ITL or CTL"));
    itl_file_free(&f);
    free(data);

    data = make_file(F_SGN, K_OUTSIDER, &len);
    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    ck_assert_int_eq(itl_trust_decide(&itl, &f, NULL, &v), ITL_TRUST_NONE);
    ck_assert_ptr_nonnull(strstr(v.why, "is no record of the installed ITL"));
    ck_assert_int_eq(v.record, -1);
    itl_file_free(&f);
    free(data);
}
END_TEST

/* The signer's names differ in bytes from the installed record (';' here, ',' there): accepted
 * (the DN is the same) with both strings in the note. */
START_TEST(test_names_differ_noted)
{
    struct itl_trust_verdict v;
    struct itl_file f;
    struct itl_error err = {0};
    size_t len;
    uint8_t *data = make_file(F_SGN, K_CCM_TFTP, &len);

    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    ck_assert_int_eq(itl_trust_decide(&itl, &f, NULL, &v), ITL_TRUST_DIRECT);
    ck_assert_int_eq(v.record, 1);
    ck_assert_ptr_nonnull(strstr(v.note, "CN=cucm-pub;OU=TAC;O=Cisco;L=RTP;ST=nc;C=US"));
    ck_assert_ptr_nonnull(strstr(v.note, "CN=cucm-pub,OU=TAC,O=Cisco,L=RTP,ST=nc,C=US"));
    itl_file_free(&f);
    free(data);
}
END_TEST

/* Expired: refused unless accepted explicitly, as policy.expired does for signing. */
START_TEST(test_expired)
{
    struct itl_trust_opts o = {0};
    struct itl_trust_verdict v;
    struct itl_file f;
    struct itl_error err = {0};
    size_t len;
    uint8_t *data = make_file(F_SGN, K_CCM_TFTP, &len);

    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    o.now = (int64_t)time(NULL) + 20LL * 365 * 86400; /* the test certificates last 10 years */
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_NONE);
    ck_assert(v.expired);
    ck_assert_ptr_nonnull(strstr(v.why, "expired"));
    o.expired_accept = 1;
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_DIRECT);
    ck_assert(v.expired);
    ck_assert_ptr_nonnull(strstr(v.note, "expired"));
    o.now = 0; /* not checked */
    o.expired_accept = 0;
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_DIRECT);
    ck_assert(!v.expired);
    itl_file_free(&f);
    free(data);
}
END_TEST

/* An ITL signed by nobody (plan --build): `signer`'s certificate in the header and as SAST, a
 * SIGNATURE of zeros. */
static uint8_t *unsigned_itl(enum who signer, size_t *len)
{
    struct itl_build_opts o = {0};
    struct itl_signer s = tf_signer(&keys[signer], ITL_DIGEST_SHA256);
    struct itl_entry e[2] = {entry(signer, ITL_ROLE_SAST), entry(signer, ITL_ROLE_CCM_TFTP)};
    struct itl_error err = {0};
    uint8_t *out;

    o.timestamp = when;
    itl_build_layout(&o, ITL_LAYOUT_CUCM);
    s.sign = NULL;
    ck_assert_msg(itl_build_tlv(e, 2, &o, &s, &out, len, &err) == 0, "%s", err.msg);
    return out;
}

/* assume_signer: the signature counts as made by that key; who may sign, TVS and expiry are
 * judged as for a signed file. */
START_TEST(test_assume_signer)
{
    struct itl_entry trusts = entry(K_OUTSIDER, 0);
    struct itl_trust_opts o = {0};
    struct itl_trust_verdict v;
    struct itl_file f;
    struct itl_error err = {0};
    size_t len;
    uint8_t *data = unsigned_itl(K_CCM_TFTP, &len);

    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    ck_assert_int_ne(itl_verify_self(&f, NULL, &err), 0); /* really signed by nobody */
    ck_assert_int_eq(itl_trust_decide(&itl, &f, NULL, &v), ITL_TRUST_NONE);
    o.assume_signer = keys[K_CCM_TFTP].der;
    o.assume_signer_len = keys[K_CCM_TFTP].der_len;
    ck_assert_msg(itl_trust_decide(&itl, &f, &o, &v) == ITL_TRUST_DIRECT, "%s", v.why);
    ck_assert_int_eq(v.record, 1);
    /* the header names CCM+TFTP, the assumed key is another: no record's key made it */
    o.assume_signer = keys[K_TFTP].der;
    o.assume_signer_len = keys[K_TFTP].der_len;
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_NONE);
    ck_assert_msg(strstr(v.why, "whose key is not the key of") != NULL, "%s", v.why);
    /* expiry still applies */
    o.assume_signer = keys[K_CCM_TFTP].der;
    o.assume_signer_len = keys[K_CCM_TFTP].der_len;
    o.now = (int64_t)time(NULL) + 20LL * 365 * 86400;
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_NONE);
    ck_assert(v.expired);
    itl_file_free(&f);
    free(data);

    /* an unknown signer: rejected, unless TVS vouches for it */
    data = unsigned_itl(K_OUTSIDER, &len);
    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    o = (struct itl_trust_opts){.assume_signer = keys[K_OUTSIDER].der,
                                .assume_signer_len = keys[K_OUTSIDER].der_len};
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_NONE);
    ck_assert_msg(strstr(v.why, "is no record of the installed ITL") != NULL, "%s", v.why);
    o.tvs_cert = keys[K_TVS].der;
    o.tvs_cert_len = keys[K_TVS].der_len;
    o.tvs_trusts = &trusts;
    o.n_tvs_trusts = 1;
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_TVS);
    o.tvs_cert = keys[K_OUTSIDER].der; /* TVS regenerated too */
    o.tvs_cert_len = keys[K_OUTSIDER].der_len;
    ck_assert_int_eq(itl_trust_decide(&itl, &f, &o, &v), ITL_TRUST_NONE);
    itl_file_free(&f);
    free(data);
}
END_TEST

/* --itl: a signer that is a record of the known list is named with that record's bytes. */
START_TEST(test_known_names_copied)
{
    struct itl_sgn_opts so = {"SEP001122334455.cnf.xml.sgn", when, ITL_ORDER_NAME_SERIAL_ISSUER,
                              ITL_NAMES_CUCM, &itl};
    struct itl_signer s = tf_signer(&keys[K_CCM_TFTP], ITL_DIGEST_SHA1);
    struct itl_trust_verdict v;
    struct itl_file f;
    struct itl_error err = {0};
    uint8_t *out;
    size_t len;

    ck_assert_int_eq(itl_build_sgn((const uint8_t *)"<x/>", 4, &so, &s, &out, &len, &err), 0);
    ck_assert_int_eq(itl_parse(out, len, ITL_KIND_AUTO, &f, &err), 0);
    ck_assert_uint_eq(f.hdr.signer_name.len, itl.records[1].subject.len);
    ck_assert_mem_eq(f.hdr.signer_name.ptr, itl.records[1].subject.ptr, f.hdr.signer_name.len);
    ck_assert_mem_eq(f.hdr.signer_issuer.ptr, itl.records[1].issuer.ptr, f.hdr.signer_issuer.len);
    ck_assert_int_eq(itl_trust_decide(&itl, &f, NULL, &v), ITL_TRUST_DIRECT);
    ck_assert_str_eq(v.note, ""); /* byte-equal now */
    itl_file_free(&f);
    free(out);
}
END_TEST

/* Serial 0: written as one zero byte (Java's BigInteger.toByteArray(), what CUCM writes); the
 * empty SERIALNUMBER certutils writes parses and names the same certificate. */
START_TEST(test_serial_zero)
{
    static const uint8_t zero[1] = {0};
    struct tf_key k;
    struct itl_entry e;
    struct itl_file f;
    struct itl_match m;
    struct itl_error err = {0};
    struct itl_build_opts o = {
        "ITLFile.tlv", when, ITL_LAYOUT_CUCM, ITL_ORDER_NAME_SERIAL_ISSUER, ITL_NAMES_CUCM, 0,
        NULL};
    struct itl_signer s;
    uint8_t *out;
    size_t len;
    long signer;

    tf_make_key_ex(&k, 1024, "/CN=zero/O=Cisco", zero, 1, 0);
    e = (struct itl_entry){k.der, k.der_len, ITL_ROLE_SAST};
    s = tf_signer(&k, ITL_DIGEST_SHA1);
    ck_assert_int_eq(itl_build_tlv(&e, 1, &o, &s, &out, &len, &err), 0);
    ck_assert_int_eq(itl_parse(out, len, ITL_KIND_AUTO, &f, &err), 0);
    ck_assert_uint_eq(f.hdr.signer_serial.len, 1);
    ck_assert_uint_eq(f.hdr.signer_serial.ptr[0], 0);
    ck_assert_int_eq(itl_verify_self(&f, &signer, &err), 0);
    /* the certutils form: empty */
    ck_assert_int_eq(
        itl_find_record(&f, 0, ITL_ROLES_ANY, bytes_of(zero, 0), f.hdr.signer_issuer, &m), 0);
    itl_file_free(&f);
    free(out);
    tf_free_key(&k);
}
END_TEST

/* An empty SERIALNUMBER in a header and a record (certutils, serial 0) parses. */
START_TEST(test_empty_serial_parses)
{
    static struct tf_buf b;
    struct itl_file f;
    size_t c;
    uint8_t sig[64] = {0};

    b.len = 0;
    tf_tlv(&b, 1, "\x01\x02", 2);
    tf_tlv_u16(&b, 2, 0);
    c = tf_open(&b, 3);
    tf_tlv_str(&b, 4, "CN=x");
    tf_tlv(&b, 5, "", 0);
    tf_tlv_str(&b, 6, "CN=x");
    tf_close(&b, c);
    c = tf_open(&b, 7);
    tf_tlv_u8(&b, 8, 1);
    tf_tlv_u8(&b, 10, 0);
    tf_close(&b, c);
    tf_tlv(&b, 12, sig, sizeof sig);
    tf_tlv_str(&b, 14, "ITLFile.tlv");
    while ((b.len) % 4)
        tf_u8(&b, 13);
    tf_set_u16(b.p + 8, (uint16_t)b.len);
    c = b.len;
    tf_tlv_u16(&b, 1, 0);
    tf_tlv_str(&b, 3, "CN=x");
    tf_tlv_u16(&b, 4, ITL_ROLE_SAST);
    tf_tlv_str(&b, 5, "CN=x");
    tf_tlv(&b, 6, "", 0);
    tf_set_u16(b.p + c + 3, (uint16_t)(b.len - c));
    tf_parse_ok(b.p, b.len, ITL_KIND_AUTO, &f);
    ck_assert_uint_eq(f.hdr.signer_serial.len, 0);
    ck_assert_uint_eq(f.records[0].serial.len, 0);
    ck_assert_int_eq(itl_find_signer_record(&f), 0);
    itl_file_free(&f);
}
END_TEST

/* The real certutils sample (','-joined names): every record is found by its certificate and,
 * by serial and the ';' (CUCM) form of its issuer, found again with both strings said; the
 * sample accepts itself as a new ITL (R1, its SAST signed it). */
START_TEST(test_sample_cross_check)
{
    size_t len;
    uint8_t *data = tf_sample(&len);
    struct itl_file f;
    struct itl_error err = {0};
    struct itl_trust_verdict v;

    ck_assert_int_eq(itl_parse(data, len, ITL_KIND_AUTO, &f, &err), 0);
    ck_assert_uint_eq(f.n_records, 5);
    for (size_t i = 0; i < f.n_records; i++) {
        const struct itl_record *r = &f.records[i];
        struct itl_match m;
        char issuer[512];
        ck_assert_int_eq(
            itl_find_cert_record(&f, i, ITL_ROLES_ANY, r->certificate.ptr, r->certificate.len, &m),
            (long)i);
        ck_assert_int_eq(itl_cert_name(r->certificate.ptr, r->certificate.len, 1, ITL_NAMES_CUCM,
                                       issuer, sizeof issuer, &err),
                         0);
        ck_assert_int_eq(itl_find_record(&f, i, ITL_ROLES_ANY, r->serial, B(issuer), &m), (long)i);
        ck_assert_int_eq(m.names_differ, strchr(issuer, ';') != NULL);
    }
    ck_assert_int_eq(itl_trust_decide(&f, &f, NULL, &v), ITL_TRUST_DIRECT);
    ck_assert_int_eq(v.record, 0);
    ck_assert_ptr_nonnull(strstr(v.rule, "R1"));
    itl_file_free(&f);
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_trust");
    TCase *tc = tcase_create("trust");
    SRunner *sr;
    int failed;

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_same_dn);
    tcase_add_test(tc, test_find_record);
    tcase_add_loop_test(tc, test_phone_model_table, 0, (int)(sizeof table / sizeof table[0]));
    tcase_add_test(tc, test_reasons);
    tcase_add_test(tc, test_names_differ_noted);
    tcase_add_test(tc, test_expired);
    tcase_add_test(tc, test_assume_signer);
    tcase_add_test(tc, test_known_names_copied);
    tcase_add_test(tc, test_serial_zero);
    tcase_add_test(tc, test_empty_serial_parses);
    tcase_add_test(tc, test_sample_cross_check);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
