/* SPDX-License-Identifier: MIT */
/*
 * What an operation may release (docs/format.md "Output kinds"): the names a request chooses
 * or derives, checked for the kind the operation makes, and the last check on every output.
 *
 * The operation decides what kind of file comes out, never a name or bytes from the client:
 * `sign` and `encrypt` make files that every reader takes for a signed or encrypted config,
 * `build` and `reset` the only ITL/CTL files, under the ITL rules. Names and inputs are checked
 * when the request arrives (a clear refusal before anything is signed) and every output is
 * parsed again before it is released.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "format/itl.h"
#include "signer/internal.h"

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
void eng_deny_kind(struct sgn_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eng_vfail(r, SGN_E_DENIED, fmt, ap);
    va_end(ap);
    snprintf(r->rule, sizeof r->rule, "output-kind");
}

/* A name the request chose or derived, checked for the kind the operation makes. */
int eng_check_name(struct sgn_result *r, const char *what, const char *name, enum itl_kind kind,
                   int allow_dirs)
{
    struct itl_error ie;

    if (itl_check_name(name, kind, allow_dirs, &ie) == 0)
        return 0;
    eng_deny_kind(r, "%s: %s", what, ie.msg);
    return -1;
}

/* dst = a + b; -1 (the request refused) when that would exceed ITL_MAX_NAME: a truncated name
 * could lose the suffix that says its kind. */
int eng_join_name(struct sgn_result *r, char *dst, size_t dst_size, const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b);

    if (n > ITL_MAX_NAME || n >= dst_size) {
        eng_fail(r, SGN_E_USAGE, "file name '%.64s...' is longer than %d bytes", a, ITL_MAX_NAME);
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
        eng_deny_kind(r, "%s: %s", what, ie.msg);
        return -1;
    }
    return 0;
}

/* The last check before anything leaves the engine: every output is parsed, its kind must be
 * the operation's and its suggested name (a base name: the client writes it into a directory)
 * one of that kind. */
void eng_release_check(const struct sgn_request *req, struct sgn_result *r)
{
    enum itl_kind want = op_kind(req->op);

    if (want == ITL_KIND_AUTO) {
        eng_fail(r, SGN_E_INTERNAL, "%s produced a file", pol_op_name(req->op));
        return;
    }
    if (release_one(r, r->out, r->out_len, r->out_name, want) != 0)
        return;
    if (r->out2)
        release_one(r, r->out2, r->out2_len, r->out2_name, ITL_KIND_SGN);
}
