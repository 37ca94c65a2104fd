/* SPDX-License-Identifier: MIT */
/* signer/ private: what status.c and the service need from the engine. */
#ifndef ITL_SIGNER_INTERNAL_H
#define ITL_SIGNER_INTERNAL_H

#include "signer/signer.h"

struct tok *sgn_engine_token(struct sgn_engine *e);
const struct pol_config *sgn_engine_config(struct sgn_engine *e);
void sgn_engine_counters(struct sgn_engine *e, unsigned long *requests, unsigned long *failures);

#endif
