/* SPDX-License-Identifier: MIT */
/* Helpers shared by the policy sources; not part of the public API. */
#ifndef ITL_POLICY_INTERNAL_H
#define ITL_POLICY_INTERNAL_H

#include "policy/policy.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* "2026-11-23T16:40:00Z" (always UTC); out holds at least POL_TIME_LEN bytes. */
#define POL_TIME_LEN 32
void pol_time_iso(time_t t, char out[POL_TIME_LEN]);

/* "5 minutes", "90 seconds", "1 hour", "2 days": the largest unit that is exact. */
void pol_duration_words(long seconds, char *out, size_t size);

/* Lowercase hex; out holds 2n+1 bytes. */
void pol_hex(const uint8_t *in, size_t n, char *out);
/* Exactly 2n lowercase or uppercase hex digits; -1 otherwise. */
int pol_unhex(const char *hex, uint8_t *out, size_t n);

/* Append into message buffers: keeps a NUL, truncates with "..." when full. */
void pol_strlcatf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A growing byte buffer; `failed` latches an allocation failure so callers check once. */
struct pol_buf {
    char *data;
    size_t len, cap;
    int failed;
};
void pol_buf_add(struct pol_buf *b, const void *data, size_t len);
void pol_buf_puts(struct pol_buf *b, const char *s);
void pol_buf_addf(struct pol_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal (quotes included) of s; invalid UTF-8 becomes U+FFFD. NULL -> null. */
void pol_buf_json_string(struct pol_buf *b, const char *s);
/* A JSON string of 2n hex digits, or null when in is NULL. */
void pol_buf_json_hex(struct pol_buf *b, const uint8_t *in, size_t n);
void pol_buf_free(struct pol_buf *b);

/* Copies a user-supplied value into a message: at most `max` bytes, non-printables as '?'. */
void pol_printable(const char *in, size_t max, char *out, size_t size);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
size_t pol_utf8_sequence(const unsigned char *s);

/* Whose service files these are (pol_state_set_owner; else the effective ids): state.c. The
 * audit log trusts the same owner. */
void pol_owner_ids(uid_t *uid, gid_t *gid);

/* The regeneration hold alone (rules.c); pol_state_record_regen re-checks it under the lock. */
int pol_check_hold(const struct pol_config *cfg, const struct pol_state *st, enum pol_key_role key,
                   time_t now, struct pol_decision *d);

#endif
