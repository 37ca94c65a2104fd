/* SPDX-License-Identifier: MIT */
/* Results: shared by the engine, the wire decoder and the client. */
#include "signer/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *sgn_status_name(enum sgn_status st)
{
    static const char *const names[] = {
        [SGN_OK] = "ok",
        [SGN_E_USAGE] = "usage",
        [SGN_E_INPUT] = "input",
        [SGN_E_TOKEN] = "token",
        [SGN_E_NO_TOKEN] = "token-not-present",
        [SGN_E_DENIED] = "denied",
        [SGN_E_AUDIT] = "audit",
        [SGN_E_PROTOCOL] = "protocol",
        [SGN_E_INTERNAL] = "internal",
        [SGN_E_BUSY] = "busy",
    };
    if ((unsigned)st < sizeof names / sizeof names[0] && names[st])
        return names[st];
    return "unknown";
}

void sgn_result_free(struct sgn_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->out2);
    r->out = r->out2 = NULL;
    r->out_len = r->out2_len = 0;
}

/* A failed result: status and message, and nothing of it released. */
void eng_vfail(struct sgn_result *r, enum sgn_status st, const char *fmt, va_list ap)
{
    r->status = st;
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    sgn_result_free(r);
}

void eng_fail(struct sgn_result *r, enum sgn_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eng_vfail(r, st, fmt, ap);
    va_end(ap);
}
