/* SPDX-License-Identifier: MIT */
/*
 * The request engine: access → policy → format + token signing → audit. Direct mode and the
 * service both call sgn_execute(), so a rule holds the same way whichever path a request takes.
 */
#include "signer/signer.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "format/itl.h"
#include "pkcs11/token.h"
#include "signer/internal.h"

struct engine_key;
static void engine_key_free(struct engine_key *k);

struct sgn_engine {
    struct pol_config cfg;
    struct tok *tok;
    struct pol_audit *audit;
    int check_access;
    int use_state;
    pthread_mutex_t keys_lock;
    struct engine_key *keys[POL_KEY_COUNT]; /* found on first use, kept */
    atomic_ulong requests, failures;
};

static void vfail(struct sgn_result *r, enum sgn_status st, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vfail(struct sgn_result *r, enum sgn_status st, const char *fmt, va_list ap)
{
    r->status = st;
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    sgn_result_free(r);
}

static void fail(struct sgn_result *r, enum sgn_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct sgn_result *r, enum sgn_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(r, st, fmt, ap);
    va_end(ap);
}

int sgn_engine_new(const struct sgn_engine_opts *opts, struct sgn_engine **out, char *err,
                   size_t err_size)
{
    struct sgn_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    e->cfg = *opts->cfg;
    e->tok = opts->tok;
    e->audit = opts->audit;
    e->check_access = opts->check_access;
    e->use_state = opts->use_state;
    pthread_mutex_init(&e->keys_lock, NULL);
    *out = e;
    return 0;
}

struct tok *sgn_engine_token(struct sgn_engine *e)
{
    return e->tok;
}

const struct pol_config *sgn_engine_config(struct sgn_engine *e)
{
    return &e->cfg;
}

void sgn_engine_counters(struct sgn_engine *e, unsigned long *requests, unsigned long *failures)
{
    *requests = atomic_load(&e->requests);
    *failures = atomic_load(&e->failures);
}

void sgn_engine_free(struct sgn_engine *e)
{
    if (!e)
        return;
    for (int i = 0; i < POL_KEY_COUNT; i++)
        engine_key_free(e->keys[i]);
    pthread_mutex_destroy(&e->keys_lock);
    free(e);
}

static enum sgn_status status_from_tok(const struct itl_error *te)
{
    switch (te->cls) {
    case ITL_E_NO_TOKEN:
        return SGN_E_NO_TOKEN;
    case ITL_E_USAGE:
        return SGN_E_USAGE;
    default:
        return SGN_E_TOKEN;
    }
}

/* "recovery", "tftp", or one of their labels; NULL = the operation's default. */
static int resolve_role(const struct sgn_engine *e, const struct sgn_request *req,
                        enum pol_key_role *role, struct sgn_result *r)
{
    int named;

    if (!req->key) {
        *role = req->op == POL_OP_RESET ? POL_KEY_RECOVERY : POL_KEY_TFTP;
        return 0;
    }
    named = pol_key_role_from_name(req->key);
    if (named >= 0) {
        *role = (enum pol_key_role)named;
        return 0;
    }
    for (int i = 0; i < POL_KEY_COUNT; i++) {
        if (strcmp(req->key, e->cfg.keys[i].label) == 0) {
            *role = (enum pol_key_role)i;
            return 0;
        }
    }
    fail(r, SGN_E_USAGE,
         "key '%s' is neither the recovery key (label '%s') nor the TFTP key (label '%s')",
         req->key, e->cfg.keys[POL_KEY_RECOVERY].label, e->cfg.keys[POL_KEY_TFTP].label);
    return -1;
}

/* ---- Signing callback for format/ ---- */

struct sign_ctx {
    struct sgn_engine *e;
    struct tok_key *key;
    struct itl_error te;
};

static int sign_with_token(void *ctx, int digest, const uint8_t *msg, size_t msg_len,
                           const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len,
                           struct itl_error *err)
{
    struct sign_ctx *sc = ctx;
    int nid = itl_digest_nid(digest);

    if (tok_sign(sc->e->tok, sc->key, nid, msg, msg_len, md, md_len, sig, sig_len, &sc->te)) {
        snprintf(err->msg, sizeof err->msg, "%s", sc->te.msg);
        return -1;
    }
    return 0;
}

/* Maps a failed format call to a result: the token's own error when the token failed. */
static void fail_format(struct sgn_result *r, const struct sign_ctx *sc, const char *what,
                        const struct itl_error *ie)
{
    if (sc->te.cls != ITL_E_NONE)
        fail(r, status_from_tok(&sc->te), "%s: %s", what, sc->te.msg);
    else
        fail(r, SGN_E_INPUT, "%s: %s", what, ie->msg);
}

/* ---- Facts about the signer certificate that policy needs ---- */

struct cert_facts {
    uint8_t sha256[32];
    time_t not_before, not_after;
    char subject[400];
};

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

static void cert_facts(X509 *x, const uint8_t *der, size_t len, struct cert_facts *cf)
{
    struct itl_error ie;

    cf->not_before = asn1_to_time(X509_get0_notBefore(x));
    cf->not_after = asn1_to_time(X509_get0_notAfter(x));
    EVP_Digest(der, len, cf->sha256, NULL, EVP_sha256(), NULL);
    if (itl_x509_name(x, 0, ITL_NAMES_CUCM, cf->subject, sizeof cf->subject, &ie) != 0)
        snprintf(cf->subject, sizeof cf->subject, "(unreadable subject)");
}

/* A role's key with its certificate parsed once: OpenSSL 3 spends as much CPU parsing a
 * certificate as SoftHSM2 spends on a signature, and every request needs it. */
struct engine_key {
    struct tok_key *key;
    X509 *x509; /* owned by key */
    struct cert_facts cf;
};

static void engine_key_free(struct engine_key *k)
{
    if (!k)
        return;
    tok_key_free(k->key);
    free(k);
}

static struct engine_key *load_key(struct sgn_engine *e, enum pol_key_role role,
                                   struct sgn_result *r)
{
    struct itl_error te = {0};
    struct engine_key *k = calloc(1, sizeof *k);
    const uint8_t *p;
    size_t len;

    if (!k) {
        fail(r, SGN_E_INTERNAL, "out of memory");
        return NULL;
    }
    if (tok_find_key(e->tok, e->cfg.keys[role].label, &k->key, &te) != 0) {
        fail(r, status_from_tok(&te), "%s key (label '%s'): %s", pol_key_role_name(role),
             e->cfg.keys[role].label, te.msg);
        free(k);
        return NULL;
    }
    p = tok_key_cert(k->key, &len);
    k->x509 = (X509 *)tok_key_x509(k->key);
    cert_facts(k->x509, p, len, &k->cf);
    return k;
}

/* The key of a role, found on the token on first use. */
static struct engine_key *engine_key(struct sgn_engine *e, enum pol_key_role role,
                                     struct sgn_result *r)
{
    struct engine_key *k;

    pthread_mutex_lock(&e->keys_lock);
    k = e->keys[role];
    if (!k)
        k = e->keys[role] = load_key(e, role, r);
    pthread_mutex_unlock(&e->keys_lock);
    return k;
}

/* ---- Policy ---- */

/* The state is read only when a rule needs it (the recovery key's backup attestation), so the
 * TFTP hot path touches no file; a corrupt state stops recovery signing (fail closed). */
static int load_state_for(struct sgn_engine *e, enum pol_key_role role, struct pol_state *st,
                          struct sgn_result *r)
{
    struct itl_error pe;

    memset(st, 0, sizeof *st);
    if (!e->use_state || role != POL_KEY_RECOVERY)
        return 0;
    if (pol_state_load(e->cfg.state_dir, st, &pe) != 0) {
        fail(r, SGN_E_DENIED, "policy state unreadable, recovery key use refused: %s", pe.msg);
        snprintf(r->rule, sizeof r->rule, "state");
        return -1;
    }
    return 0;
}

static int apply_policy(struct sgn_engine *e, const struct pol_sign_request *pr,
                        const struct pol_state *st, struct sgn_result *r)
{
    struct pol_decision d = {0};

    pol_check_sign(&e->cfg, st, pr, &d);
    if (!d.allow) {
        fail(r, SGN_E_DENIED, "%s", d.message);
        snprintf(r->rule, sizeof r->rule, "%s", d.rule);
        return -1;
    }
    if (d.warn && !r->warning[0])
        snprintf(r->warning, sizeof r->warning, "%s", d.warning);
    return 0;
}

static void fill_policy_request(struct pol_sign_request *pr, const struct sgn_request *req,
                                enum pol_key_role role, enum pol_file_kind kind,
                                const struct cert_facts *cf)
{
    memset(pr, 0, sizeof *pr);
    pr->op = req->op;
    pr->key = role;
    pr->file = kind;
    pr->signer_is_sast = kind == POL_FILE_ITL ? 0 : 1;
    pr->signer_not_before = cf->not_before;
    pr->signer_not_after = cf->not_after;
    pr->signer_cert_sha256 = cf->sha256;
    pr->now = time(NULL);
}

/* ---- Operations ---- */

struct op_ctx {
    struct sgn_engine *e;
    const struct sgn_request *req;
    struct sgn_result *r;
    enum pol_key_role role;
    struct engine_key *ek;
    struct tok_key *key;
    const uint8_t *cert;
    size_t cert_len;
    struct cert_facts cf;
    struct pol_state state;
    struct sign_ctx sc;
    struct itl_signer signer;
};

static uint32_t request_time(const struct sgn_request *req)
{
    return req->has_timestamp ? req->timestamp : (uint32_t)time(NULL);
}

static const char *base_name(const char *path, const char *fallback)
{
    const char *slash;
    if (!path || !*path)
        return fallback;
    slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- The kind of what an operation releases (docs/format.md "Output kinds") ----
 *
 * The operation decides what kind of file comes out, never a name or bytes from the client:
 * `sign` and `encrypt` make files that every reader takes for a signed or encrypted config,
 * `build` and `reset` the only ITL/CTL files, under the ITL rules. Names and inputs are checked
 * when the request arrives (a clear refusal before anything is signed) and every output is
 * parsed again before it is released. */

static enum itl_kind op_kind(enum pol_op op)
{
    switch (op) {
    case POL_OP_RESET:
    case POL_OP_BUILD:
        return ITL_KIND_TLV;
    case POL_OP_SIGN:
        return ITL_KIND_SGN;
    case POL_OP_ENCRYPT:
        return ITL_KIND_ENC_SGN;
    default:
        return ITL_KIND_AUTO;
    }
}

/* A refusal of the output-kind rule: a denial, audited with its rule like the policy's. */
static void deny_kind(struct sgn_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void deny_kind(struct sgn_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(r, SGN_E_DENIED, fmt, ap);
    va_end(ap);
    snprintf(r->rule, sizeof r->rule, "output-kind");
}

/* A name the request chose or derived, checked for the kind the operation makes. */
static int check_name(struct sgn_result *r, const char *what, const char *name, enum itl_kind kind,
                      int allow_dirs)
{
    struct itl_error ie;

    if (itl_check_name(name, kind, allow_dirs, &ie) == 0)
        return 0;
    deny_kind(r, "%s: %s", what, ie.msg);
    return -1;
}

/* dst = a + b; -1 (the request refused) when that would exceed ITL_MAX_NAME: a truncated name
 * could lose the suffix that says its kind. */
static int join_name(struct sgn_result *r, char *dst, size_t dst_size, const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b);

    if (n > ITL_MAX_NAME || n >= dst_size) {
        fail(r, SGN_E_USAGE, "file name '%.64s...' is longer than %d bytes", a, ITL_MAX_NAME);
        return -1;
    }
    snprintf(dst, dst_size, "%s%s", a, b);
    return 0;
}

static int release_one(struct sgn_result *r, const uint8_t *data, size_t len, const char *name,
                       enum itl_kind want)
{
    struct itl_error ie;
    char what[300];

    snprintf(what, sizeof what, "%s was not released", name[0] ? name : "the output");
    if (itl_check_kind(data, len, want, &ie) != 0 || itl_check_name(name, want, 0, &ie) != 0) {
        deny_kind(r, "%s: %s", what, ie.msg);
        return -1;
    }
    return 0;
}

/* The last check before anything leaves the engine: every output is parsed, its kind must be
 * the operation's and its suggested name (a base name: the client writes it into a directory)
 * one of that kind. */
static void release_check(const struct sgn_request *req, struct sgn_result *r)
{
    enum itl_kind want = op_kind(req->op);

    if (want == ITL_KIND_AUTO) {
        fail(r, SGN_E_INTERNAL, "%s produced a file", pol_op_name(req->op));
        return;
    }
    if (release_one(r, r->out, r->out_len, r->out_name, want) != 0)
        return;
    if (r->out2)
        release_one(r, r->out2, r->out2_len, r->out2_name, ITL_KIND_SGN);
}

/* Everything an operation needs before it signs: key, certificate facts, state. */
static int prepare(struct op_ctx *o, int default_digest)
{
    if (resolve_role(o->e, o->req, &o->role, o->r) != 0)
        return -1;
    o->ek = engine_key(o->e, o->role, o->r);
    if (!o->ek)
        return -1;
    o->key = o->ek->key;
    o->cert = tok_key_cert(o->key, &o->cert_len);
    o->cf = o->ek->cf;
    snprintf(o->r->signer, sizeof o->r->signer, "%s", o->cf.subject);
    if (load_state_for(o->e, o->role, &o->state, o->r) != 0)
        return -1;
    o->sc = (struct sign_ctx){.e = o->e, .key = o->key};
    o->signer = (struct itl_signer){
        .cert_der = o->cert,
        .cert_len = o->cert_len,
        .cert_x509 = o->ek->x509,
        .digest = o->req->digest ? o->req->digest : default_digest,
        .sign = sign_with_token,
        .ctx = &o->sc,
    };
    if (itl_digest_nid(o->signer.digest) == 0) {
        fail(o->r, SGN_E_USAGE, "digest code %d is not one of 1 (SHA-1), 2 (SHA-256), 3 (SHA-512)",
             o->signer.digest);
        return -1;
    }
    return 0;
}

/* Index of the SAST record that holds this certificate, or -1. */
static long sast_record_of(const struct itl_file *f, const uint8_t *der, size_t len)
{
    uint8_t serial[64];
    size_t serial_len = 0;
    struct itl_error ie;
    int have_serial = itl_cert_serial(der, len, serial, sizeof serial, &serial_len, &ie) == 0;

    for (size_t i = 0; i < f->n_records; i++) {
        const struct itl_record *rec = &f->records[i];
        if (!rec->has_function || rec->function != ITL_ROLE_SAST)
            continue;
        if (rec->certificate.ptr && rec->certificate.len == len &&
            memcmp(rec->certificate.ptr, der, len) == 0)
            return (long)i;
        if (!rec->certificate.ptr && have_serial && rec->serial.len == serial_len &&
            memcmp(rec->serial.ptr, serial, serial_len) == 0)
            return (long)i;
    }
    return -1;
}

static int post_check_size(struct op_ctx *o, struct pol_sign_request *pr)
{
    pr->file_bytes = o->r->out_len;
    return apply_policy(o->e, pr, &o->state, o->r);
}

/* reset keeps the input's FILENAME: it must name an ITL/CTL (a .sgn whose body happens to be
 * records is not one). The suggested output name is the input's when it is an ITL/CTL name,
 * else that FILENAME. */
static int reset_names(struct op_ctx *o, const struct itl_file *f)
{
    char name[ITL_MAX_NAME + 1], what[ITL_MAX_NAME + 64];
    const char *in_name = base_name(o->req->filename, "");

    if (f->hdr.filename.len > ITL_MAX_NAME) {
        fail(o->r, SGN_E_INPUT, "%s: FILENAME is %zu bytes, more than %d",
             base_name(o->req->filename, "input"), f->hdr.filename.len, ITL_MAX_NAME);
        return -1;
    }
    snprintf(name, sizeof name, "%.*s", (int)f->hdr.filename.len,
             (const char *)f->hdr.filename.ptr);
    snprintf(what, sizeof what, "%s: reset keeps its FILENAME",
             base_name(o->req->filename, "input"));
    if (check_name(o->r, what, name, ITL_KIND_TLV, 0) != 0)
        return -1;
    snprintf(o->r->out_name, sizeof o->r->out_name, "%s",
             itl_check_name(in_name, ITL_KIND_TLV, 0, NULL) == 0 ? in_name : name);
    return 0;
}

static void op_reset(struct op_ctx *o)
{
    struct itl_file f;
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    long idx;

    if (itl_parse(o->req->data, o->req->len, ITL_KIND_TLV, &f, &ie) != 0) {
        fail(o->r, SGN_E_INPUT, "%s is not a valid ITL/CTL: %s",
             base_name(o->req->filename, "input"), ie.msg);
        return;
    }
    if (reset_names(o, &f) != 0 || prepare(o, f.hdr.digest) != 0)
        goto out;
    idx = sast_record_of(&f, o->cert, o->cert_len);
    fill_policy_request(&pr, o->req, o->role, POL_FILE_ITL, &o->cf);
    pr.signer_is_sast = idx >= 0;
    pr.file_bytes = o->req->len;
    if (apply_policy(o->e, &pr, &o->state, o->r) != 0) {
        if (idx < 0)
            snprintf(o->r->message, sizeof o->r->message,
                     "the %s certificate (%s) is not a SAST record of %s: phones holding this "
                     "ITL would reject a file it signs",
                     pol_key_role_name(o->role), o->cf.subject,
                     base_name(o->req->filename, "the ITL"));
        goto out;
    }
    if (itl_resign_tlv(&f, (size_t)idx, request_time(o->req), &o->signer, &o->r->out,
                       &o->r->out_len, &ie) != 0) {
        fail_format(o->r, &o->sc, "reset", &ie);
        goto out;
    }
    if (post_check_size(o, &pr) != 0)
        goto out;
    snprintf(o->r->message, sizeof o->r->message,
             "The ITL file was reset: signed by record #%ld (%s), %zu records unchanged; the "
             "ITL file was verified successfully.",
             idx + 1, o->cf.subject, f.n_records);
out:
    itl_file_free(&f);
}

/* Build certificates: DER from the request, or exported from the token by label. */
static int collect_build_certs(struct op_ctx *o, struct itl_entry *entries, uint8_t **owned)
{
    for (size_t i = 0; i < o->req->n_certs; i++) {
        const struct sgn_cert_arg *c = &o->req->certs[i];
        struct itl_error te = {0};
        entries[i].function = c->function;
        if (c->der) {
            entries[i].cert_der = c->der;
            entries[i].cert_len = c->der_len;
            continue;
        }
        if (!c->token_label ||
            tok_export_cert(o->e->tok, c->token_label, &owned[i], &entries[i].cert_len, &te)) {
            fail(o->r, status_from_tok(&te), "certificate '%s' from the token: %s",
                 c->token_label ? c->token_label : "(none)", te.msg);
            return -1;
        }
        entries[i].cert_der = owned[i];
    }
    return 0;
}

static int signer_is_sast_entry(const struct itl_entry *entries, size_t n, const uint8_t *der,
                                size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (entries[i].function == ITL_ROLE_SAST && entries[i].cert_len == len &&
            memcmp(entries[i].cert_der, der, len) == 0)
            return 1;
    return 0;
}

static void op_build(struct op_ctx *o)
{
    struct itl_entry entries[SGN_MAX_BUILD_CERTS];
    uint8_t *owned[SGN_MAX_BUILD_CERTS] = {0};
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    struct itl_build_opts bo = {0};

    if (o->req->n_certs == 0 || o->req->n_certs > SGN_MAX_BUILD_CERTS) {
        fail(o->r, SGN_E_USAGE, "build needs 1 to %d certificates (at least one --sast)",
             SGN_MAX_BUILD_CERTS);
        return;
    }
    bo.filename = o->req->out_filename ? o->req->out_filename : "ITLFile.tlv";
    if (check_name(o->r, "build: FILENAME (--filename, -o)", bo.filename, ITL_KIND_TLV, 0) != 0)
        return;
    if (prepare(o, o->e->cfg.policy.digest) != 0 || collect_build_certs(o, entries, owned) != 0)
        goto out;
    fill_policy_request(&pr, o->req, o->role, POL_FILE_ITL, &o->cf);
    pr.signer_is_sast = signer_is_sast_entry(entries, o->req->n_certs, o->cert, o->cert_len);
    if (apply_policy(o->e, &pr, &o->state, o->r) != 0)
        goto out;
    bo.timestamp = request_time(o->req);
    if (o->req->layout == 1) { /* what certutils (tlvfile) writes */
        bo.layout = ITL_LAYOUT_CERTUTILS;
        bo.signer_order = ITL_ORDER_NAME_ISSUER_SERIAL;
        bo.names = ITL_NAMES_CERTUTILS;
        bo.signer_version = 0x0100;
    } else {
        bo.layout = ITL_LAYOUT_CUCM;
        bo.signer_order = ITL_ORDER_NAME_SERIAL_ISSUER;
        bo.names = ITL_NAMES_CUCM;
    }
    if (itl_build_tlv(entries, o->req->n_certs, &bo, &o->signer, &o->r->out, &o->r->out_len, &ie) !=
        0) {
        fail_format(o->r, &o->sc, "build", &ie);
        goto out;
    }
    if (post_check_size(o, &pr) != 0)
        goto out;
    snprintf(o->r->out_name, sizeof o->r->out_name, "%s", bo.filename);
    snprintf(o->r->message, sizeof o->r->message,
             "%s: %zu records, %zu bytes, signed by %s; the ITL file was verified successfully.",
             bo.filename, o->req->n_certs, o->r->out_len, o->cf.subject);
out:
    for (size_t i = 0; i < o->req->n_certs && i < SGN_MAX_BUILD_CERTS; i++)
        free(owned[i]);
}

/* What `sign` was given: a config (0), a .sgn to re-sign, parsed into f (1), or -1 refused:
 * an ITL/CTL, ITL/CTL records or an encrypted config are never wrapped into a .sgn, whatever
 * FILENAME the request asks for (certutils and other readers take a .sgn whose body is records
 * for an ITL). */
static int sign_input(struct op_ctx *o, const char *in_name, struct itl_file *f)
{
    struct itl_error ie;

    switch (itl_kind_of(o->req->data, o->req->len)) {
    case ITL_KIND_AUTO:
        return 0;
    case ITL_KIND_SGN:
        if (itl_parse(o->req->data, o->req->len, ITL_KIND_SGN, f, &ie) != 0) {
            fail(o->r, SGN_E_INPUT, "%s: %s", in_name, ie.msg);
            return -1;
        }
        return 1;
    case ITL_KIND_ENC_SGN:
        deny_kind(o->r,
                  "%s is an encrypted config (.enc.sgn): sign makes signed configs; encrypt the "
                  "plain SEP<MAC>.cnf.xml instead",
                  in_name);
        return -1;
    default:
        deny_kind(o->r,
                  "%s is an ITL/CTL, ITL/CTL records or a file a reader could take for one (it "
                  "starts with tag 1, length 2): sign makes signed configs (.sgn) only; ITL/CTL "
                  "files are made by build and reset, under the ITL rules",
                  in_name);
        return -1;
    }
}

/* FILENAME and the suggested output name of a `sign`, both checked to be .sgn names. */
static int sign_names(struct op_ctx *o, const char *in_name, const struct itl_file *f, int resign,
                      char *filename, size_t filename_size)
{
    char out_name[ITL_MAX_NAME + 1];

    if (resign) { /* the input's FILENAME is kept; the output replaces the input */
        if (f->hdr.filename.len > ITL_MAX_NAME) {
            fail(o->r, SGN_E_INPUT, "%s: FILENAME is %zu bytes, more than %d", in_name,
                 f->hdr.filename.len, ITL_MAX_NAME);
            return -1;
        }
        snprintf(filename, filename_size, "%.*s", (int)f->hdr.filename.len,
                 (const char *)f->hdr.filename.ptr);
        if (itl_check_name(in_name, ITL_KIND_SGN, 0, NULL) == 0)
            snprintf(out_name, sizeof out_name, "%s", in_name);
        else if (join_name(o->r, out_name, sizeof out_name, in_name, ".sgn") != 0)
            return -1;
    } else if (join_name(o->r, filename, filename_size, in_name, ".sgn") != 0 ||
               join_name(o->r, out_name, sizeof out_name, in_name, ".sgn") != 0) {
        return -1;
    }
    if (o->req->out_filename)
        snprintf(filename, filename_size, "%s", o->req->out_filename);
    if (check_name(o->r, "sign: FILENAME (--filename, or the input's name)", filename, ITL_KIND_SGN,
                   1) != 0 ||
        check_name(o->r, "sign: the output name", out_name, ITL_KIND_SGN, 0) != 0)
        return -1;
    snprintf(o->r->out_name, sizeof o->r->out_name, "%s", out_name);
    return 0;
}

static void op_sign(struct op_ctx *o)
{
    struct itl_file f = {0};
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    struct itl_sgn_opts so = {0};
    const char *in_name = base_name(o->req->filename, "config.xml");
    const uint8_t *payload = o->req->data;
    size_t payload_len = o->req->len;
    char filename[512];
    int resign = sign_input(o, in_name, &f);

    if (resign < 0)
        return;
    if (sign_names(o, in_name, &f, resign, filename, sizeof filename) != 0 ||
        prepare(o, o->e->cfg.policy.digest) != 0)
        goto out;
    fill_policy_request(&pr, o->req, o->role, POL_FILE_CONFIG, &o->cf);
    if (apply_policy(o->e, &pr, &o->state, o->r) != 0)
        goto out;
    if (resign) {
        payload = f.payload.ptr;
        payload_len = f.payload.len;
    }
    so.filename = filename;
    so.timestamp = request_time(o->req);
    so.signer_order = ITL_ORDER_NAME_SERIAL_ISSUER;
    so.names = ITL_NAMES_CUCM;
    if (itl_build_sgn(payload, payload_len, &so, &o->signer, &o->r->out, &o->r->out_len, &ie)) {
        fail_format(o->r, &o->sc, in_name, &ie);
        goto out;
    }
    snprintf(o->r->message, sizeof o->r->message, "%s: %s%zu bytes signed by %s", so.filename,
             resign ? "re-signed, " : "", payload_len, o->cf.subject);
out:
    if (resign)
        itl_file_free(&f);
}

static void op_encrypt(struct op_ctx *o)
{
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    struct itl_sgn_opts so = {0};
    struct itl_enc_keys keys;
    const char *in_name = base_name(o->req->filename, "config.cnf.xml");
    char enc_name[512], short_name[512];
    char *short_xml = NULL;
    size_t short_len = 0;

    if (!o->req->phone_cert || !o->req->phone_cert_len) {
        fail(o->r, SGN_E_USAGE, "encrypt needs the phone's certificate (--phone-cert)");
        return;
    }
    if (itl_kind_of(o->req->data, o->req->len) != ITL_KIND_AUTO) {
        deny_kind(o->r,
                  "%s is a trust file or ITL/CTL records (it starts with tag 1, length 2): "
                  "encrypt takes the plain SEP<MAC>.cnf.xml",
                  in_name);
        return;
    }
    if (join_name(o->r, enc_name, sizeof enc_name, in_name, ".enc.sgn") != 0 ||
        join_name(o->r, short_name, sizeof short_name, in_name, ".sgn") != 0 ||
        check_name(o->r, "encrypt: the output name", enc_name, ITL_KIND_ENC_SGN, 0) != 0 ||
        check_name(o->r, "encrypt: the companion's name", short_name, ITL_KIND_SGN, 0) != 0)
        return;
    if (prepare(o, o->e->cfg.policy.digest) != 0)
        return;
    fill_policy_request(&pr, o->req, o->role, POL_FILE_CONFIG, &o->cf);
    if (apply_policy(o->e, &pr, &o->state, o->r) != 0)
        return;
    if (RAND_priv_bytes(keys.aes_key, sizeof keys.aes_key) != 1 ||
        RAND_bytes(keys.iv, sizeof keys.iv) != 1) {
        fail(o->r, SGN_E_INTERNAL, "the random generator failed");
        return;
    }
    so.filename = enc_name;
    so.timestamp = request_time(o->req);
    so.signer_order = ITL_ORDER_NAME_SERIAL_ISSUER;
    so.names = ITL_NAMES_CUCM;
    if (itl_build_enc_sgn(o->req->data, o->req->len, o->req->phone_cert, o->req->phone_cert_len,
                          &keys, &so, &o->signer, &o->r->out, &o->r->out_len, &ie) != 0) {
        OPENSSL_cleanse(&keys, sizeof keys);
        fail_format(o->r, &o->sc, enc_name, &ie);
        return;
    }
    OPENSSL_cleanse(&keys, sizeof keys);
    if (itl_short_config(o->req->data, o->req->len, o->req->phone_cert, o->req->phone_cert_len,
                         &short_xml, &short_len, &ie) != 0) {
        fail(o->r, SGN_E_INPUT, "%s: %s", in_name, ie.msg);
        return;
    }
    so.filename = short_name;
    if (itl_build_sgn((const uint8_t *)short_xml, short_len, &so, &o->signer, &o->r->out2,
                      &o->r->out2_len, &ie) != 0) {
        free(short_xml);
        fail_format(o->r, &o->sc, short_name, &ie);
        return;
    }
    free(short_xml);
    snprintf(o->r->out_name, sizeof o->r->out_name, "%s", enc_name);
    snprintf(o->r->out2_name, sizeof o->r->out2_name, "%s", short_name);
    snprintf(o->r->message, sizeof o->r->message, "%s and %s: signed by %s", enc_name, short_name,
             o->cf.subject);
}

/* ---- Audit and dispatch ---- */

static void audit_result(struct sgn_engine *e, const struct pol_peer *peer,
                         const struct sgn_request *req, const struct op_ctx *o,
                         struct sgn_result *r)
{
    uint8_t in_sha[32], out_sha[32];
    struct pol_audit_record rec = {0};
    struct itl_error pe;

    if (!e->audit)
        return;
    if (req->data)
        EVP_Digest(req->data, req->len, in_sha, NULL, EVP_sha256(), NULL);
    if (r->out)
        EVP_Digest(r->out, r->out_len, out_sha, NULL, EVP_sha256(), NULL);
    rec.time = time(NULL);
    rec.peer = peer;
    rec.op = pol_op_name(req->op);
    rec.file = req->filename;
    rec.in_sha256 = req->data ? in_sha : NULL;
    rec.out_sha256 = r->out ? out_sha : NULL;
    rec.key = o && o->key ? tok_key_label(o->key) : NULL;
    rec.result = r->status == SGN_OK ? "ok" : r->status == SGN_E_DENIED ? "denied" : "error";
    rec.rule = r->rule[0] ? r->rule : NULL;
    rec.message = r->status == SGN_OK ? (r->warning[0] ? r->warning : NULL) : r->message;
    if (pol_audit_write(e->audit, &rec, &pe) != 0)
        fail(r, SGN_E_AUDIT, "the audit record could not be written (%s); nothing was released",
             pe.msg);
}

static int check_access(struct sgn_engine *e, const struct pol_peer *peer, enum pol_op op,
                        struct sgn_result *r)
{
    struct pol_decision d = {0};

    if (!e->check_access)
        return 0;
    pol_check_access(&e->cfg, peer, op, &d);
    if (d.allow)
        return 0;
    fail(r, SGN_E_DENIED, "%s", d.message);
    snprintf(r->rule, sizeof r->rule, "%s", d.rule[0] ? d.rule : "access");
    return -1;
}

void sgn_execute(struct sgn_engine *e, const struct pol_peer *peer, const struct sgn_request *req,
                 struct sgn_result *r)
{
    struct op_ctx o = {.e = e, .req = req, .r = r};

    memset(r, 0, sizeof *r);
    atomic_fetch_add(&e->requests, 1);
    if ((unsigned)req->op >= POL_OP_COUNT) {
        fail(r, SGN_E_USAGE, "unknown operation %d", (int)req->op);
    } else if (check_access(e, peer, req->op, r) == 0) {
        switch (req->op) {
        case POL_OP_RESET:
            op_reset(&o);
            break;
        case POL_OP_BUILD:
            op_build(&o);
            break;
        case POL_OP_SIGN:
            op_sign(&o);
            break;
        case POL_OP_ENCRYPT:
            op_encrypt(&o);
            break;
        case POL_OP_STATUS:
            snprintf(r->message, sizeof r->message, "ok");
            break;
        default:
            fail(r, SGN_E_USAGE,
                 "'%s' is not a service operation: key management runs in direct mode "
                 "(itl-sign --token ... key ...)",
                 pol_op_name(req->op));
        }
    }
    if (r->status == SGN_OK && req->op != POL_OP_STATUS && !r->out)
        fail(r, SGN_E_INTERNAL, "%s produced no output", pol_op_name(req->op));
    if (r->status == SGN_OK && r->out)
        release_check(req, r);
    audit_result(e, peer, req, &o, r);
    if (r->status != SGN_OK)
        atomic_fetch_add(&e->failures, 1);
}

int sgn_backup_reminder(struct sgn_engine *e, time_t now, char *msg, size_t msg_size)
{
    struct sgn_result r = {0};
    struct pol_state st;
    struct itl_error pe;
    struct engine_key *k;

    if (!e->use_state || e->cfg.policy.backup == POL_BACKUP_OFF)
        return 0;
    k = engine_key(e, POL_KEY_RECOVERY, &r);
    if (!k)
        return 0; /* no recovery key on the token: nothing to back up yet */
    if (pol_state_load(e->cfg.state_dir, &st, &pe) != 0 ||
        !pol_backup_warning_due(&e->cfg, &st, k->cf.sha256, now) ||
        pol_state_record_backup_warning(e->cfg.state_dir, now, &pe) != 0)
        return 0;
    snprintf(msg, msg_size, "ITLRecoveryCertBackup: %s", POL_BACKUP_WARNING);
    return 1;
}

void sgn_audit_event(struct sgn_engine *e, const struct pol_peer *peer, const char *op,
                     const char *result, const char *rule, const char *message)
{
    struct pol_audit_record rec = {
        .time = time(NULL),
        .peer = peer,
        .op = op,
        .result = result,
        .rule = rule,
        .message = message,
    };
    struct itl_error pe;

    atomic_fetch_add(&e->requests, 1);
    atomic_fetch_add(&e->failures, 1);
    if (e->audit && pol_audit_write(e->audit, &rec, &pe) != 0)
        fprintf(stderr, "itl-sign: audit log: %s\n", pe.msg);
}
