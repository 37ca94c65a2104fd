/* SPDX-License-Identifier: MIT */
/* Filling a pol_decision: shared by the access rule and the other rules. */
#include "policy/internal.h"

#include <stdio.h>
#include <string.h>

void pol_decision_start(struct pol_decision *d)
{
    memset(d, 0, sizeof *d);
    d->allow = 1;
    snprintf(d->rule, sizeof d->rule, "ok");
}

void pol_decide(struct pol_decision *d, int allow, const char *rule, const char *fmt, ...)
{
    va_list ap;

    d->allow = allow;
    snprintf(d->rule, sizeof d->rule, "%s", rule);
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
}
