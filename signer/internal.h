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

/* Socket I/O against an absolute deadline (sockio.c): CLOCK_MONOTONIC milliseconds. */
long long sgn_now_ms(void);
/* Sends all n bytes by the deadline: 0, or -1 with errno (ETIMEDOUT at the deadline). */
int sgn_send_until(int fd, const uint8_t *p, size_t n, long long deadline_ms);
enum sgn_recv_end { SGN_RECV_OK = 0, SGN_RECV_EOF, SGN_RECV_TIMEOUT, SGN_RECV_ERROR };
/* Exactly n bytes by the deadline; *got says how many arrived before EOF (or ECONNRESET), the
 * deadline or an error. */
enum sgn_recv_end sgn_recv_until(int fd, uint8_t *p, size_t n, long long deadline_ms, size_t *got);

#endif
