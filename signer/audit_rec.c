/* SPDX-License-Identifier: MIT */
/*
 * The audit records of a request: the outcome record every request gets (eng_audit_result), and
 * the intent record a lone sign writes before its signature (eng_audit_intent), flushed by the
 * log's thread while the token signs and waited for before anything is released
 * (eng_audit_intent_durable; docs/config.md, "record pair").
 */
#include "signer/signer.h"

#include <time.h>

#include <openssl/evp.h>

#include "pkcs11/token.h"
#include "signer/internal.h"

static void fill_record(struct pol_audit_record *rec, const struct pol_peer *peer,
                        const struct sgn_request *req, const struct eng_op_ctx *o,
                        const uint8_t *in_sha)
{
    rec->time = time(NULL);
    rec->peer = peer;
    rec->op = o && o->audit_op ? o->audit_op : pol_op_name(req->op);
    rec->file = req->filename;
    rec->in_sha256 = req->data ? in_sha : NULL;
    rec->key = o && o->key ? tok_key_label(o->key) : o ? o->audit_key : NULL;
}

int eng_audit_intent(struct eng_op_ctx *o)
{
    uint8_t in_sha[32];
    struct pol_audit_record rec = {0};
    struct itl_error pe;

    if (!o->intent_allowed || !o->e->audit)
        return 0;
    if (o->req->data)
        EVP_Digest(o->req->data, o->req->len, in_sha, NULL, EVP_sha256(), NULL);
    fill_record(&rec, o->peer, o->req, o, in_sha);
    rec.result = "signing";
    rec.rule = o->r->rule[0] ? o->r->rule : NULL;
    o->intent_tried = 1;
    if (pol_audit_write_intent(o->e->audit, &rec, &o->intent_seq, &pe) == 0)
        return 0;
    eng_fail(o->r, SGN_E_AUDIT,
             "the audit record could not be written (%s); nothing was signed or released", pe.msg);
    return -1;
}

int eng_audit_intent_durable(struct eng_op_ctx *o)
{
    struct itl_error pe;

    if (!o->intent_seq || pol_audit_sync(o->e->audit, o->intent_seq, &pe) == 0)
        return 0;
    eng_fail(o->r, SGN_E_AUDIT, "the audit record could not be written (%s); nothing was released",
             pe.msg);
    return -1;
}

/* seq: NULL to wait until the record is durable; else it is only written, and *seq is what
 * sgn_audit_sync must wait for before the result is released. After an intent record the
 * outcome is only written: the intent is the durable one. */
void eng_audit_result(struct sgn_engine *e, const struct pol_peer *peer,
                      const struct sgn_request *req, const struct eng_op_ctx *o,
                      struct sgn_result *r, unsigned long long *seq)
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
    fill_record(&rec, peer, req, o, in_sha);
    rec.out_sha256 = r->out ? out_sha : NULL;
    rec.result = r->status == SGN_OK         ? (req->dry_run ? "dry-run" : "ok")
                 : r->status == SGN_E_DENIED ? "denied"
                                             : "error";
    rec.rule = r->rule[0] ? r->rule : NULL;
    rec.message = r->status != SGN_OK        ? r->message
                  : o && o->audit_message[0] ? o->audit_message /* op unlock: for how long */
                  : r->warning[0]            ? r->warning
                                             : NULL;
    if ((o && o->intent_tried ? pol_audit_write_after(e->audit, &rec, &pe)
         : seq                ? pol_audit_write_deferred(e->audit, &rec, seq, &pe)
                              : pol_audit_write_expected(e->audit, &rec, &pe)) != 0)
        eng_fail(r, SGN_E_AUDIT, "the audit record could not be written (%s); nothing was released",
                 pe.msg);
}
