/* SPDX-License-Identifier: MIT */
/*
 * The operations: reset and build make ITL/CTL files, sign and encrypt make configs. Each one
 * prepares the role's key, its certificate facts and the policy state, asks the policy, then has
 * format/ build the file with the token signing it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "format/itl.h"
#include "pkcs11/token.h"
#include "signer/internal.h"

/* Maps a failed format call to a result: the token's own error when the token failed. */
static void fail_format(struct sgn_result *r, const struct eng_sign_ctx *sc, const char *what,
                        const struct itl_error *ie)
{
    if (sc->te.cls != ITL_E_NONE)
        eng_fail(r, eng_status_from_tok(&sc->te), "%s: %s", what, sc->te.msg);
    else
        eng_fail(r, SGN_E_INPUT, "%s: %s", what, ie->msg);
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
    if (pol_state_load(e->boot.state_dir, st, &pe) != 0) {
        eng_fail(r, SGN_E_DENIED, "policy state unreadable, recovery key use refused: %s", pe.msg);
        snprintf(r->rule, sizeof r->rule, "state");
        return -1;
    }
    return 0;
}

static int apply_policy(const struct pol_config *cfg, const struct pol_sign_request *pr,
                        const struct pol_state *st, struct sgn_result *r)
{
    struct pol_decision d = {0};

    pol_check_sign(cfg, st, pr, &d);
    if (!d.allow) {
        eng_fail(r, SGN_E_DENIED, "%s", d.message);
        snprintf(r->rule, sizeof r->rule, "%s", d.rule);
        return -1;
    }
    if (d.warn && !r->warning[0])
        text_printf(r->warning, sizeof r->warning, "%s", d.warning);
    return 0;
}

static void fill_policy_request(struct pol_sign_request *pr, const struct sgn_request *req,
                                enum pol_key_role role, enum pol_file_kind kind,
                                const struct eng_cert_facts *cf)
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

/* --dry-run: the policy allowed the operation; name what would be written and stop before the
 * token signs anything. 1 when it stopped. */
static int dry_run_stop(struct eng_op_ctx *o)
{
    if (!o->req->dry_run)
        return 0;
    text_printf(o->r->message, sizeof o->r->message,
                "dry run: the policy allows this %s: %s would be written, signed by the %s key "
                "(%s); nothing was signed or written",
                pol_op_name(o->req->op), o->r->out_name, pol_key_role_name(o->role), o->cf.subject);
    return 1;
}

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

/* Everything an operation needs before it signs: key, certificate facts, state. */
/* sign, encrypt, build --itl: the list the phones hold, parsed into kf (free it with
 * itl_file_free whatever this returns); *known is NULL when none was given. */
static int parse_known(struct eng_op_ctx *o, struct itl_file *kf, const struct itl_file **known)
{
    struct itl_error ie;

    *known = NULL;
    if (!o->req->known_itl)
        return 0;
    if (itl_parse(o->req->known_itl, o->req->known_itl_len, ITL_KIND_AUTO, kf, &ie) != 0) {
        eng_fail(o->r, SGN_E_INPUT, "--itl: %s", ie.msg);
        return -1;
    }
    if (kf->kind != ITL_KIND_TLV) {
        eng_fail(o->r, SGN_E_INPUT, "--itl: a %s file, not the ITL or CTL the phones hold",
                 itl_kind_name(kf->kind));
        return -1;
    }
    *known = kf;
    return 0;
}

static int prepare(struct eng_op_ctx *o, int default_digest)
{
    if (eng_resolve_role(o->e, o->req, &o->role, o->r) != 0)
        return -1;
    o->ek = eng_signing_key(o->e, o->role, o->r);
    if (!o->ek)
        return -1;
    o->key = o->ek->key;
    o->cert = tok_key_cert(o->key, &o->cert_len);
    o->cf = o->ek->cf;
    snprintf(o->r->signer, sizeof o->r->signer, "%s", o->cf.subject);
    if (load_state_for(o->e, o->role, &o->state, o->r) != 0)
        return -1;
    o->sc = (struct eng_sign_ctx){.e = o->e, .tok = o->ek->tok, .key = o->key};
    o->signer = (struct itl_signer){
        .cert_der = o->cert,
        .cert_len = o->cert_len,
        .cert_x509 = o->ek->x509,
        .digest = o->req->digest ? o->req->digest : default_digest,
        .sign = eng_sign_with_token,
        .ctx = &o->sc,
    };
    if (itl_digest_nid(o->signer.digest) == 0) {
        eng_fail(o->r, SGN_E_USAGE,
                 "digest code %d is not one of 1 (SHA-1), 2 (SHA-256), 3 (SHA-512)",
                 o->signer.digest);
        return -1;
    }
    return 0;
}

/* ---- reset and build: ITL/CTL files ---- */

/* Index of the SAST record that holds this certificate, or -1 (the phone model's lookup). */
static long sast_record_of(const struct itl_file *f, const uint8_t *der, size_t len)
{
    struct itl_match m;

    return itl_find_cert_record(f, 0, ITL_ROLE_MASK(ITL_ROLE_SAST), der, len, &m);
}

static int post_check_size(struct eng_op_ctx *o, struct pol_sign_request *pr)
{
    pr->file_bytes = o->r->out_len;
    return apply_policy(o->cfg, pr, &o->state, o->r);
}

/* reset keeps the input's FILENAME: it must name an ITL/CTL (a .sgn whose body happens to be
 * records is not one). The suggested output name is the input's when it is an ITL/CTL name,
 * else that FILENAME. */
static int reset_names(struct eng_op_ctx *o, const struct itl_file *f)
{
    char name[ITL_MAX_NAME + 1], what[ITL_MAX_NAME + 64];
    const char *in_name = base_name(o->req->filename, "");

    if (f->hdr.filename.len > ITL_MAX_NAME) {
        eng_fail(o->r, SGN_E_INPUT, "%s: FILENAME is %zu bytes, more than %d",
                 base_name(o->req->filename, "input"), f->hdr.filename.len, ITL_MAX_NAME);
        return -1;
    }
    snprintf(name, sizeof name, "%.*s", (int)f->hdr.filename.len,
             (const char *)f->hdr.filename.ptr);
    snprintf(what, sizeof what, "%s: reset keeps its FILENAME",
             base_name(o->req->filename, "input"));
    if (eng_check_name(o->r, what, name, ITL_KIND_TLV, 0) != 0)
        return -1;
    snprintf(o->r->out_name, sizeof o->r->out_name, "%s",
             itl_check_name(in_name, ITL_KIND_TLV, 0, NULL) == 0 ? in_name : name);
    return 0;
}

void eng_op_reset(struct eng_op_ctx *o)
{
    struct itl_file f;
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    long idx;

    if (itl_parse(o->req->data, o->req->len, ITL_KIND_TLV, &f, &ie) != 0) {
        eng_fail(o->r, SGN_E_INPUT, "%s is not a valid ITL/CTL: %s",
                 base_name(o->req->filename, "input"), ie.msg);
        return;
    }
    if (reset_names(o, &f) != 0 || prepare(o, f.hdr.digest) != 0)
        goto out;
    idx = sast_record_of(&f, o->cert, o->cert_len);
    fill_policy_request(&pr, o->req, o->role, POL_FILE_ITL, &o->cf);
    pr.signer_is_sast = idx >= 0;
    pr.file_bytes = o->req->len;
    if (apply_policy(o->cfg, &pr, &o->state, o->r) != 0) {
        /* Only the sast-signer rule's refusal gets the words about this ITL; another rule's
         * reason (publisher-only, backup, ...) stays as it decided. */
        if (idx < 0 && strcmp(o->r->rule, "sast-signer") == 0)
            snprintf(o->r->message, sizeof o->r->message,
                     "the %s certificate (%s) is not a SAST record of %s: phones holding this "
                     "ITL would reject a file it signs",
                     pol_key_role_name(o->role), o->cf.subject,
                     base_name(o->req->filename, "the ITL"));
        goto out;
    }
    if (dry_run_stop(o))
        goto out;
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
static int collect_build_certs(struct eng_op_ctx *o, struct itl_entry *entries, uint8_t **owned)
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
            eng_fail(o->r, eng_status_from_tok(&te), "certificate '%s' from the token: %s",
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

void eng_op_build(struct eng_op_ctx *o)
{
    struct itl_entry entries[SGN_MAX_BUILD_CERTS];
    uint8_t *owned[SGN_MAX_BUILD_CERTS] = {0};
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    struct itl_build_opts bo = {0};
    struct itl_file kf = {0};

    if (o->req->n_certs == 0 || o->req->n_certs > SGN_MAX_BUILD_CERTS) {
        eng_fail(o->r, SGN_E_USAGE, "build needs 1 to %d certificates (at least one --sast)",
                 SGN_MAX_BUILD_CERTS);
        return;
    }
    bo.filename = o->req->out_filename ? o->req->out_filename : "ITLFile.tlv";
    if (eng_check_name(o->r, "build: FILENAME (--filename, -o)", bo.filename, ITL_KIND_TLV, 0) != 0)
        return;
    if (prepare(o, o->cfg->policy.digest) != 0 || collect_build_certs(o, entries, owned) != 0 ||
        parse_known(o, &kf, &bo.known) != 0)
        goto out;
    fill_policy_request(&pr, o->req, o->role, POL_FILE_ITL, &o->cf);
    pr.signer_is_sast = signer_is_sast_entry(entries, o->req->n_certs, o->cert, o->cert_len);
    if (apply_policy(o->cfg, &pr, &o->state, o->r) != 0)
        goto out;
    snprintf(o->r->out_name, sizeof o->r->out_name, "%s", bo.filename);
    if (dry_run_stop(o))
        goto out;
    bo.timestamp = request_time(o->req);
    itl_build_layout(&bo, o->req->layout == 1 ? ITL_LAYOUT_CERTUTILS : ITL_LAYOUT_CUCM);
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
    itl_file_free(&kf);
    for (size_t i = 0; i < o->req->n_certs && i < SGN_MAX_BUILD_CERTS; i++)
        free(owned[i]);
}

/* ---- sign and encrypt: configs ---- */

/* What `sign` was given: a config (0), a .sgn to re-sign, parsed into f (1), or -1 refused:
 * an ITL/CTL, ITL/CTL records or an encrypted config are never wrapped into a .sgn, whatever
 * FILENAME the request asks for (certutils and other readers take a .sgn whose body is records
 * for an ITL). */
static int sign_input(struct eng_op_ctx *o, const char *in_name, struct itl_file *f)
{
    struct itl_error ie;

    switch (itl_kind_of(o->req->data, o->req->len)) {
    case ITL_KIND_AUTO:
        return 0;
    case ITL_KIND_SGN:
        if (itl_parse(o->req->data, o->req->len, ITL_KIND_SGN, f, &ie) != 0) {
            eng_fail(o->r, SGN_E_INPUT, "%s: %s", in_name, ie.msg);
            return -1;
        }
        return 1;
    case ITL_KIND_ENC_SGN:
        eng_deny_kind(
            o->r,
            "%s is an encrypted config (.enc.sgn): sign makes signed configs; encrypt the "
            "plain SEP<MAC>.cnf.xml instead",
            in_name);
        return -1;
    default:
        eng_deny_kind(
            o->r,
            "%s is an ITL/CTL, ITL/CTL records or a file a reader could take for one (it "
            "starts with tag 1, length 2): sign makes signed configs (.sgn) only; ITL/CTL "
            "files are made by build and reset, under the ITL rules",
            in_name);
        return -1;
    }
}

/* FILENAME and the suggested output name of a `sign`, both checked to be .sgn names. */
static int sign_names(struct eng_op_ctx *o, const char *in_name, const struct itl_file *f,
                      int resign, char *filename, size_t filename_size)
{
    char out_name[ITL_MAX_NAME + 1];

    if (resign) { /* the input's FILENAME is kept; the output replaces the input */
        if (f->hdr.filename.len > ITL_MAX_NAME) {
            eng_fail(o->r, SGN_E_INPUT, "%s: FILENAME is %zu bytes, more than %d", in_name,
                     f->hdr.filename.len, ITL_MAX_NAME);
            return -1;
        }
        snprintf(filename, filename_size, "%.*s", (int)f->hdr.filename.len,
                 (const char *)f->hdr.filename.ptr);
        if (itl_check_name(in_name, ITL_KIND_SGN, 0, NULL) == 0)
            snprintf(out_name, sizeof out_name, "%s", in_name);
        else if (eng_join_name(o->r, out_name, sizeof out_name, in_name, ".sgn") != 0)
            return -1;
    } else if (eng_join_name(o->r, filename, filename_size, in_name, ".sgn") != 0 ||
               eng_join_name(o->r, out_name, sizeof out_name, in_name, ".sgn") != 0) {
        return -1;
    }
    if (o->req->out_filename)
        snprintf(filename, filename_size, "%s", o->req->out_filename);
    if (eng_check_name(o->r, "sign: FILENAME (--filename, or the input's name)", filename,
                       ITL_KIND_SGN, 1) != 0 ||
        eng_check_name(o->r, "sign: the output name", out_name, ITL_KIND_SGN, 0) != 0)
        return -1;
    snprintf(o->r->out_name, sizeof o->r->out_name, "%s", out_name);
    return 0;
}

void eng_op_sign(struct eng_op_ctx *o)
{
    struct itl_file f = {0};
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    struct itl_sgn_opts so = {0};
    struct itl_file kf = {0};
    const char *in_name = base_name(o->req->filename, "config.xml");
    const uint8_t *payload = o->req->data;
    size_t payload_len = o->req->len;
    char filename[512];
    int resign = sign_input(o, in_name, &f);

    if (resign < 0)
        return;
    if (sign_names(o, in_name, &f, resign, filename, sizeof filename) != 0 ||
        prepare(o, o->cfg->policy.digest) != 0 || parse_known(o, &kf, &so.known) != 0)
        goto out;
    fill_policy_request(&pr, o->req, o->role, POL_FILE_CONFIG, &o->cf);
    if (apply_policy(o->cfg, &pr, &o->state, o->r) != 0 || dry_run_stop(o))
        goto out;
    if (resign) {
        payload = f.payload.ptr;
        payload_len = f.payload.len;
    }
    so.filename = filename;
    so.timestamp = request_time(o->req);
    so.signer_order = ITL_ORDER_NAME_SERIAL_ISSUER;
    so.names = ITL_NAMES_CUCM;
    if (resign) /* a re-signed .sgn keeps its header conventions, as reset keeps an ITL's */
        itl_header_conventions(&f.hdr, &so.signer_order, &so.names);
    if (eng_audit_intent(o) != 0)
        goto out;
    if (itl_build_sgn(payload, payload_len, &so, &o->signer, &o->r->out, &o->r->out_len, &ie)) {
        fail_format(o->r, &o->sc, in_name, &ie);
        eng_audit_intent_durable(o);
        goto out;
    }
    if (eng_audit_intent_durable(o) != 0) /* the signature waits for its request's record */
        goto out;
    snprintf(o->r->message, sizeof o->r->message, "%s: %s%zu bytes signed by %s", so.filename,
             resign ? "re-signed, " : "", payload_len, o->cf.subject);
out:
    itl_file_free(&kf);
    if (resign)
        itl_file_free(&f);
}

static void encrypt_with(struct eng_op_ctx *o, const struct itl_file *known)
{
    struct itl_error ie = {0};
    struct pol_sign_request pr;
    struct itl_sgn_opts so = {0};
    struct itl_enc_keys keys;
    const char *in_name = base_name(o->req->filename, "config.cnf.xml");
    char enc_name[ITL_MAX_NAME + 1], short_name[ITL_MAX_NAME + 1];
    char *short_xml = NULL;
    size_t short_len = 0;

    if (!o->req->phone_cert || !o->req->phone_cert_len) {
        eng_fail(o->r, SGN_E_USAGE, "encrypt needs the phone's certificate (--phone-cert)");
        return;
    }
    if (itl_kind_of(o->req->data, o->req->len) != ITL_KIND_AUTO) {
        eng_deny_kind(o->r,
                      "%s is a trust file or ITL/CTL records (it starts with tag 1, length 2): "
                      "encrypt takes the plain SEP<MAC>.cnf.xml",
                      in_name);
        return;
    }
    if (eng_join_name(o->r, enc_name, sizeof enc_name, in_name, ".enc.sgn") != 0 ||
        eng_join_name(o->r, short_name, sizeof short_name, in_name, ".sgn") != 0 ||
        eng_check_name(o->r, "encrypt: the output name", enc_name, ITL_KIND_ENC_SGN, 0) != 0 ||
        eng_check_name(o->r, "encrypt: the companion's name", short_name, ITL_KIND_SGN, 0) != 0)
        return;
    if (prepare(o, o->cfg->policy.digest) != 0)
        return;
    fill_policy_request(&pr, o->req, o->role, POL_FILE_CONFIG, &o->cf);
    if (apply_policy(o->cfg, &pr, &o->state, o->r) != 0)
        return;
    if (RAND_priv_bytes(keys.aes_key, sizeof keys.aes_key) != 1 ||
        RAND_bytes(keys.iv, sizeof keys.iv) != 1) {
        eng_fail(o->r, SGN_E_INTERNAL, "the random generator failed");
        return;
    }
    so.filename = enc_name;
    so.timestamp = request_time(o->req);
    so.signer_order = ITL_ORDER_NAME_SERIAL_ISSUER;
    so.names = ITL_NAMES_CUCM;
    so.known = known;
    if (itl_build_enc_sgn(o->req->data, o->req->len, o->req->phone_cert, o->req->phone_cert_len,
                          &keys, &so, &o->signer, &o->r->out, &o->r->out_len, &ie) != 0) {
        OPENSSL_cleanse(&keys, sizeof keys);
        fail_format(o->r, &o->sc, enc_name, &ie);
        return;
    }
    OPENSSL_cleanse(&keys, sizeof keys);
    if (itl_short_config(o->req->data, o->req->len, o->req->phone_cert, o->req->phone_cert_len,
                         &short_xml, &short_len, &ie) != 0) {
        eng_fail(o->r, SGN_E_INPUT, "%s: %s", in_name, ie.msg);
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
    text_printf(o->r->message, sizeof o->r->message, "%s and %s: signed by %s", enc_name,
                short_name, o->cf.subject);
}

void eng_op_encrypt(struct eng_op_ctx *o)
{
    struct itl_file kf = {0};
    const struct itl_file *known;

    if (parse_known(o, &kf, &known) == 0)
        encrypt_with(o, known);
    itl_file_free(&kf);
}
