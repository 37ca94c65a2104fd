/* SPDX-License-Identifier: MIT */
/* signer/ private: what status.c and the service need from the engine. */
#ifndef ITL_SIGNER_INTERNAL_H
#define ITL_SIGNER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "signer/signer.h"

struct tok *sgn_engine_token(struct sgn_engine *e);
const struct pol_config *sgn_engine_config(struct sgn_engine *e);
void sgn_engine_counters(struct sgn_engine *e, unsigned long *requests, unsigned long *failures);

/* Shared by the client and the service (wire.c). */
void sgn_set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends all n bytes (retrying on EINTR, no SIGPIPE): 0, or -1 with errno set. */
int sgn_send_all(int fd, const uint8_t *p, size_t n);

#endif
