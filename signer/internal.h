/* SPDX-License-Identifier: MIT */
/* signer/ private: what status.c and the service need from the engine, and what the
 * engine's files share. */
#ifndef ITL_SIGNER_INTERNAL_H
#define ITL_SIGNER_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "format/itl.h"
#include "signer/signer.h"

struct tok_key;

struct tok *sgn_engine_token(struct sgn_engine *e);
/* The current configuration generation, held until eng_config_release (never across a wait
 * for anything but the request itself). */
const struct pol_config *sgn_config_hold(struct sgn_engine *e, unsigned long *generation);
void sgn_config_release(struct sgn_engine *e, const struct pol_config *cfg);
/* Make `next` the configuration of every request that starts from now on (a copy is kept);
 * requests in flight keep theirs. The caller has made next's restart-only settings equal to
 * the running ones (pol_config_keep_restart). Returns the new generation, 0 when out of memory. */
unsigned long sgn_engine_set_config(struct sgn_engine *e, const struct pol_config *next);
void sgn_engine_counters(struct sgn_engine *e, unsigned long *requests, unsigned long *failures);

/* wire_key.c: the request fields of op key, tags 0x10 (key-op) .. 0x15 (key-id) in the order
 * of docs/protocol.md; one field's value into req, or -1 with err. */
#define SGN_WIRE_KEY_OP 0x10
int sgn_wire_key_field(uint8_t tag, const uint8_t *value, size_t len, size_t offset,
                       struct sgn_request *req, struct itl_error *err);

/* wire_unlock.c: the request fields of op unlock, tags 0x18 (unlock-action) .. 0x1a (pin). */
#define SGN_WIRE_UNLOCK_FIRST 0x18
#define SGN_WIRE_UNLOCK_LAST 0x1a
struct buf;
void sgn_wire_unlock_encode(struct buf *f, const struct sgn_request *req);
int sgn_wire_unlock_field(uint8_t tag, const uint8_t *value, size_t len, size_t offset,
                          struct sgn_request *req, struct itl_error *err);
/* After the last field: unlock fields only with op unlock. 0, or -1 with err. */
int sgn_wire_unlock_check(const struct sgn_request *req, struct itl_error *err);

/* Socket I/O against an absolute deadline (sockio.c): CLOCK_MONOTONIC milliseconds. */
long long sgn_now_ms(void);
/* Sends all n bytes by the deadline: 0, or -1 with errno (ETIMEDOUT at the deadline). */
int sgn_send_until(int fd, const uint8_t *p, size_t n, long long deadline_ms);
enum sgn_recv_end { SGN_RECV_OK = 0, SGN_RECV_EOF, SGN_RECV_TIMEOUT, SGN_RECV_ERROR };
/* Exactly n bytes by the deadline; *got says how many arrived before EOF (or ECONNRESET), the
 * deadline or an error. */
enum sgn_recv_end sgn_recv_until(int fd, uint8_t *p, size_t n, long long deadline_ms, size_t *got);

/* ---- The request engine (engine.c, engine_keys.c, release.c, ops.c) ---- */

/* Facts about the signer certificate that policy needs. */
struct eng_cert_facts {
    uint8_t sha256[32];
    time_t not_before, not_after;
    char subject[400];
};

/* A role's key with its certificate parsed once: OpenSSL 3 spends as much CPU parsing a
 * certificate as SoftHSM2 spends on a signature, and every request needs it. */
struct eng_key {
    struct tok *tok; /* the token it is on: the engine's, or keys.recovery.token's */
    struct tok_key *key;
    X509 *x509; /* owned by key */
    struct eng_cert_facts cf;
};

/* One generation of the configuration. A request holds one from its access check to its
 * audit record (eng_config_hold/eng_config_release); a reload swaps cur and the old generation
 * goes when its last request lets go of it. */
struct eng_config {
    atomic_uint refs; /* cur's own reference, plus one per request holding it */
    unsigned long generation;
    struct pol_config cfg;
};

/* The engine: the configuration, the token and audit log it was given. */
struct sgn_engine {
    /* As started: only what a reload cannot change (pol_config_keep_restart: token, keys, socket,
     * state dir, audit log) is read from it; policy and access come from the request's
     * generation. */
    struct pol_config boot;
    pthread_mutex_t cfg_lock; /* taking a reference to cur, and the swap; held for nothing else */
    struct eng_config *cur;
    struct tok *tok;
    struct pol_audit *audit;
    int check_access;
    int use_state;
    int direct; /* sgn_engine_opts.direct */
    pthread_mutex_t keys_lock;
    struct eng_key *keys[POL_KEY_COUNT]; /* found on first use, kept */
    /* Keys a key operation replaced: a request may still hold one, so they live until the
     * engine is freed (engine_keyops.c). */
    struct eng_key *retired[16];
    size_t n_retired;
    atomic_ulong requests, failures;
    struct eng_unlock *unlock; /* keys.recovery.unlock: manual (unlock.c); NULL: always */
};

/* The signing callback's context (eng_sign_with_token): te holds the token's own error. */
struct eng_sign_ctx {
    struct sgn_engine *e;
    struct tok *tok; /* the key's token */
    struct tok_key *key;
    struct itl_error te;
};

/* One request on its way through an operation (ops.c), read again by the audit. */
struct eng_op_ctx {
    struct sgn_engine *e;
    const struct pol_config *cfg; /* the generation this request runs under */
    const struct pol_peer *peer;
    const struct sgn_request *req;
    struct sgn_result *r;
    enum pol_key_role role;
    struct eng_key *ek;
    struct tok_key *key;
    const uint8_t *cert;
    size_t cert_len;
    struct eng_cert_facts cf;
    struct pol_state state;
    struct eng_sign_ctx sc;
    struct itl_signer signer;
    /* op key: the audit record names the sub-operation and the label (engine_keyops.c) */
    const char *audit_op, *audit_key;
    /* A lone request (not pipelined) writes an intent record before it signs, flushed while
     * the token signs (eng_audit_intent); its outcome record then follows unwaited. */
    int intent_allowed, intent_tried;
    unsigned long long intent_seq;
    /* what a successful record says besides the warning (op unlock: for how long) */
    char audit_message[256];
};

/* engine.c: one request under the generation cfg (sgn_config_hold); sgn_execute and
 * sgn_execute_deferred hold the current one for it. seq as sgn_execute_deferred's, or NULL;
 * intent: a lone request, whose sign may flush an intent record while the token signs. */
void eng_execute(struct sgn_engine *e, const struct pol_config *cfg, const struct pol_peer *peer,
                 const struct sgn_request *req, struct sgn_result *r, unsigned long long *seq,
                 int intent);
/* engine.c: fails the result: status and message set, any output freed. */
void eng_vfail(struct sgn_result *r, enum sgn_status st, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void eng_fail(struct sgn_result *r, enum sgn_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* audit_rec.c: the intent record of a signature about to be made (no-op unless intent_allowed),
 * and the wait for it after the signature; both fail the result (SGN_E_AUDIT) when the record
 * cannot be made durable: nothing is released. -1 then. */
int eng_audit_intent(struct eng_op_ctx *o);
int eng_audit_intent_durable(struct eng_op_ctx *o);
/* audit_rec.c: the outcome record. seq: NULL to wait until it is durable; else it is only
 * written and *seq is what sgn_audit_sync must wait for before the result is released. */
void eng_audit_result(struct sgn_engine *e, const struct pol_peer *peer,
                      const struct sgn_request *req, const struct eng_op_ctx *o,
                      struct sgn_result *r, unsigned long long *seq);

/* engine_keys.c: the token keys. */
enum sgn_status eng_status_from_tok(const struct itl_error *te);
int eng_resolve_role(const struct sgn_engine *e, const struct sgn_request *req,
                     enum pol_key_role *role, struct sgn_result *r);
/* The itl_signer callback; ctx is a struct eng_sign_ctx. */
int eng_sign_with_token(void *ctx, int digest, const uint8_t *msg, size_t msg_len,
                        const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len,
                        struct itl_error *err);
/* The role's key, found on the token on first use and kept; NULL with r failed. */
struct eng_key *eng_role_key(struct sgn_engine *e, enum pol_key_role role, struct sgn_result *r);
/* The role's key as found on token t (the recovery token's at unlock); NULL with r failed. */
struct eng_key *eng_load_key(struct sgn_engine *e, struct tok *t, enum pol_key_role role,
                             struct sgn_result *r);
void eng_key_free(struct eng_key *k);

/* unlock_pins.c: PINs a token rejected at an unlock, never sent again (salted SHA-256s). */
struct tok_pin;
#define ENG_REJECTED_MAX 32
struct eng_rejected_pins {
    pthread_mutex_t mu;
    uint8_t salt[32];
    uint8_t digests[ENG_REJECTED_MAX][32];
    size_t n, next;
};
int eng_rejected_init(struct eng_rejected_pins *p, struct itl_error *err);
void eng_rejected_free(struct eng_rejected_pins *p);
void eng_rejected_digest(const struct eng_rejected_pins *p, const struct tok_pin *pin,
                         uint8_t out[32]);
int eng_rejected_has(struct eng_rejected_pins *p, const uint8_t digest[32]);
void eng_rejected_add(struct eng_rejected_pins *p, const uint8_t digest[32]);

/* unlock.c: keys.recovery.unlock: manual. The recovery key lives on keys.recovery.token, whose
 * login only `itl-sign unlock` gives, for a while; a timer locks it again at the deadline. */
struct eng_unlock;
struct buf;
int eng_unlock_new(struct sgn_engine *e, struct itl_error *err);
/* Locks (audited: "itl-signd is stopping") and stops the timer. */
void eng_unlock_free(struct sgn_engine *e);
/* Before an operation: 1 when it uses the recovery key, which is unlocked and now held (the
 * lock waits for it: call eng_unlock_leave after the operation); 0 when it does not use it or
 * unlock is always; -1 refused (locked, or a key operation on the recovery token), r failed. */
int eng_unlock_enter(struct eng_op_ctx *o);
void eng_unlock_leave(struct sgn_engine *e);
/* The key an operation signs with: eng_role_key's, or with keys.recovery.unlock: manual the
 * recovery key of the unlock, which the operation holds (eng_unlock_enter returned 1). */
struct eng_key *eng_signing_key(struct sgn_engine *e, enum pol_key_role role, struct sgn_result *r);
/* SHA-256 of the recovery certificate: the engine token's, or with keys.recovery.token the one
 * the last unlock found. 0, or -1 when there is none known. */
int eng_recovery_cert_sha256(struct sgn_engine *e, uint8_t sha[32]);
/* The recovery certificate's SHA-256 from the last unlock: 0, or -1 when never unlocked. */
int eng_unlock_cert_sha256(struct sgn_engine *e, uint8_t sha[32]);
/* op unlock: unlock (log in to the recovery token with the request's PIN) or lock. */
void eng_op_unlock(struct eng_op_ctx *o);
/* status: "recovery_unlock":{...} and the recovery key's entry of "keys" (status.c). */
void eng_unlock_status_json(struct sgn_engine *e, struct buf *j);
/* The recovery token while unlocked, held (eng_unlock_leave after), or NULL (nothing held). */
struct tok *eng_unlock_hold_token(struct sgn_engine *e);

/* release.c: what an operation may release. */
void eng_deny_kind(struct sgn_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int eng_check_name(struct sgn_result *r, const char *what, const char *name, enum itl_kind kind,
                   int allow_dirs);
int eng_join_name(struct sgn_result *r, char *dst, size_t dst_size, const char *a, const char *b);
void eng_release_check(const struct sgn_request *req, struct sgn_result *r);

/* ops.c: the operations; each fills o->r. */
void eng_op_reset(struct eng_op_ctx *o);
void eng_op_build(struct eng_op_ctx *o);
void eng_op_sign(struct eng_op_ctx *o);
void eng_op_encrypt(struct eng_op_ctx *o);
/* engine_keyops.c: op key (generate, delete, csr, attach-cert) with its policy and state. */
void eng_op_key(struct eng_op_ctx *o);
/* The audit record's op ("key delete") and key (the label), also for a denied request. */
void eng_key_audit_names(struct eng_op_ctx *o);
void eng_retired_free(struct sgn_engine *e);

#endif
