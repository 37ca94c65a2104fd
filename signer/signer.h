/* SPDX-License-Identifier: MIT */
/*
 * signer: the one code path that turns a request into a signed file, the wire protocol that
 * carries requests to itl-signd, and the client side of it.
 *
 * `itl-sign --token ...` (direct mode) and itl-signd run the same sgn_execute(): access check,
 * policy, format + token signing, verification of the result, one audit record. The service adds
 * only the socket, peer credentials and privilege separation around it.
 */
#ifndef ITL_SIGNER_SIGNER_H
#define ITL_SIGNER_SIGNER_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "policy/policy.h"

struct tok;

/* Result classes; the CLI maps them to its exit codes, the wire carries them as one byte. */
enum sgn_status {
    SGN_OK = 0,
    SGN_E_USAGE = 1,    /* the request is incomplete or contradictory */
    SGN_E_INPUT = 2,    /* the input file is malformed or not what the operation needs */
    SGN_E_TOKEN = 3,    /* token, key or mechanism problem */
    SGN_E_NO_TOKEN = 4, /* the token is not present right now: retry later */
    SGN_E_DENIED = 5,   /* policy or access rules said no */
    SGN_E_AUDIT = 6,    /* the audit record could not be written: nothing was released */
    SGN_E_PROTOCOL = 7, /* malformed, oversize or wrong-version frame */
    SGN_E_INTERNAL = 8,
    SGN_E_BUSY = 9, /* connection limit reached, or the service is stopping */
};
const char *sgn_status_name(enum sgn_status st);

/* ---- Requests ---- */

struct tok_pin;
struct tok_import_report;

/* The sub-operations of op key; the numbers are the protocol's (wire field 0x10). */
enum sgn_key_op {
    SGN_KEY_GENERATE = 0,
    SGN_KEY_IMPORT = 1,        /* direct mode only */
    SGN_KEY_ATTEST_BACKUP = 2, /* direct mode only */
    SGN_KEY_DELETE = 3,
    SGN_KEY_CSR = 4,
    SGN_KEY_ATTACH_CERT = 5,
    SGN_KEY_OP_COUNT
};
const char *sgn_key_op_name(enum sgn_key_op op); /* "key delete" */

/* A certificate for `build`: DER bytes, or the label of a certificate on the token. */
struct sgn_cert_arg {
    unsigned function; /* enum itl_role */
    const uint8_t *der;
    size_t der_len;
    const char *token_label; /* used when der is NULL */
};

#define SGN_MAX_BUILD_CERTS 64

struct sgn_request {
    enum pol_op op;
    const char *filename; /* the input's file name (basename), for FILENAME and the audit log */
    const uint8_t *data;  /* reset: the ITL; sign: the config (or a .sgn to re-sign);
                             encrypt: the plain SEP<MAC>.cnf.xml */
    size_t len;
    int digest;        /* 0 = the config's default */
    int has_timestamp; /* 0 = now */
    uint32_t timestamp;
    const char *out_filename; /* FILENAME written in the output; NULL = derived */
    const char *key;          /* "recovery", "tftp" or a label; NULL = the operation's default
                                 (reset: recovery; build: tftp; sign, encrypt: tftp) */
    const struct sgn_cert_arg *certs; /* build */
    size_t n_certs;
    const uint8_t *phone_cert; /* encrypt */
    size_t phone_cert_len;
    int layout; /* build: 0 CUCM's record layout, 1 certutils' (tag 28, 4,6,5 signer order) */
    /* sign, encrypt, build: the ITL/CTL the phones hold, or NULL. A certificate that is one of
     * its records (by its CERTIFICATE) is named with that record's bytes
     * (itl_build_opts.known); wire field 0x0c. */
    const uint8_t *known_itl;
    size_t known_itl_len;
    /* op key (wire 0x10-0x15): the sub-operation, on the key labelled `key` (a label, or
     * "recovery"/"tftp"); attach-cert takes the certificate in `data` (empty: self-signed). */
    enum sgn_key_op key_op;
    const char *subject;   /* generate, csr, attach-cert --self-signed */
    unsigned bits, days;   /* generate (bits), generate and attach-cert (days); 0 = default */
    int replace;           /* attach-cert: in place of a certificate already there */
    const uint8_t *key_id; /* generate, import: CKA_ID; NULL = random / derived */
    size_t key_id_len;
    /* In-process only (direct mode): never on the wire, so the service refuses import and
     * attest-backup. import: the .p12 is `data`, its password here, the report filled in;
     * attest-backup: the attestation the client proved, or why it failed. */
    const struct tok_pin *p12_password;
    struct tok_import_report *import_report;
    const struct pol_attestation *attestation;
    const char *attest_failure;
    /* reset, build, sign: the policy decides and the result names what would be written, but
     * nothing is signed (no C_Sign) and no output is returned; wire field 0x0e. */
    int dry_run;
    /* op unlock (wire 0x18-0x1a, docs/protocol.md "Unlocking the recovery key"): lock instead
     * of unlock; the unlock's length in seconds (0 = keys.recovery.unlock-max); the recovery
     * token's PIN (bytes; the service wipes them once used, never logs or audits them). */
    int lock;
    unsigned unlock_s;
    const uint8_t *pin;
    size_t pin_len;
};

struct sgn_result {
    enum sgn_status status;
    char message[1024]; /* error, or a one-line summary of what was produced */
    char warning[512];  /* policy warnings (backup not attested, ...) */
    char signer[512];   /* subject of the certificate that signed */
    char rule[32];      /* the policy rule that decided, on denial */
    uint8_t *out;       /* the signed file (malloc'd) */
    size_t out_len;
    char out_name[256]; /* suggested file name */
    uint8_t *out2;      /* encrypt: the short companion .sgn */
    size_t out2_len;
    char out2_name[256];
};
void sgn_result_free(struct sgn_result *r);

/* ---- The engine: token + keys + policy + audit ---- */

struct sgn_engine;

struct sgn_engine_opts {
    const struct pol_config *cfg; /* copied */
    struct tok *tok;              /* opened and logged in; not owned */
    struct pol_audit *audit;      /* NULL: no audit log (direct mode without a config) */
    int check_access;             /* apply cfg access rules to the peer */
    int use_state;                /* read cfg->state_dir (0: empty state, direct mode default) */
    int direct;                   /* in the caller's process: no service can unlock its keys */
};

int sgn_engine_new(const struct sgn_engine_opts *opts, struct sgn_engine **out,
                   struct itl_error *err);
void sgn_engine_free(struct sgn_engine *e);

/* Run one request for `peer`. Thread-safe. Always fills r (status + message); writes one
 * outcome record when the engine has an audit log, and a sign its intent record before it,
 * flushed while the token signs (docs/config.md, "record pair"). */
void sgn_execute(struct sgn_engine *e, const struct pol_peer *peer, const struct sgn_request *req,
                 struct sgn_result *r);
/* The same for a request that is one of many (the end of a pipelined group, a file of a batch):
 * exactly one audit record, waited for; the group's flush covers the others. */
void sgn_execute_grouped(struct sgn_engine *e, const struct pol_peer *peer,
                         const struct sgn_request *req, struct sgn_result *r);

/* Status as one JSON document (token, keys, policy state, counters). *json is malloc'd. The
 * service adds its own fields through `extra` (a JSON fragment "\"k\":v,..." or NULL). */
int sgn_status_json(struct sgn_engine *e, const char *extra, char **json);

/* The daily "ITLRecovery certificate not backed up" line (backup: warn|require, no attestation
 * for the current recovery certificate, none given in the last 24 h): 1 with the line in msg
 * (and recorded in the state, so one service or CLI on the node says it once a day), else 0. */
int sgn_backup_reminder(struct sgn_engine *e, time_t now, char *msg, size_t msg_size);

/* Pipelined requests (itl-signd): the same, but the audit record is only written; the result
 * may be released only after sgn_audit_sync(seq) returned 0 (for the last seq of a group: the
 * log is durable in order). On failure err says why and nothing may be released. */
void sgn_execute_deferred(struct sgn_engine *e, const struct pol_peer *peer,
                          const struct sgn_request *req, struct sgn_result *r,
                          unsigned long long *seq);
int sgn_audit_sync(struct sgn_engine *e, unsigned long long seq, struct itl_error *err);
/* Record a request that never reached sgn_execute (denied peer, malformed frame). */
void sgn_audit_event(struct sgn_engine *e, const struct pol_peer *peer, const char *op,
                     const char *result, const char *rule, const char *message);

/* ---- Wire protocol (docs/protocol.md) ---- */

#define SGN_WIRE_MAGIC "ITLS"
#define SGN_WIRE_VERSION 1
#define SGN_WIRE_HEADER_LEN 12
#define SGN_WIRE_DEFAULT_MAX (4u << 20)

enum sgn_frame_type { SGN_FRAME_REQUEST = 1, SGN_FRAME_REPLY = 2 };

/* Parse a frame header: 0 ok (payload length in *len), -1 malformed (err says why). */
int sgn_wire_header(const uint8_t hdr[SGN_WIRE_HEADER_LEN], enum sgn_frame_type expect,
                    size_t max_payload, size_t *len, struct itl_error *err);

/* The op byte a request carries for op (docs/protocol.md); -1 for an op with no number. */
int sgn_wire_op_number(enum pol_op op, uint8_t *wire);

/* Encode a request / reply into one frame (header + payload). *out is malloc'd. */
int sgn_wire_encode_request(const struct sgn_request *req, uint8_t **out, size_t *out_len);
int sgn_wire_encode_reply(const struct sgn_result *r, const char *status_json, uint8_t **out,
                          size_t *out_len);

/* Decode a request payload. Views point into `payload` (which must outlive req); certs are
 * stored in `certs` (SGN_MAX_BUILD_CERTS entries). Strings are NUL-terminated on the wire. */
int sgn_wire_decode_request(const uint8_t *payload, size_t len, struct sgn_request *req,
                            struct sgn_cert_arg *certs, struct itl_error *err);
/* Decode a reply payload into r (copies: r owns its buffers); *status_json malloc'd or NULL. */
int sgn_wire_decode_reply(const uint8_t *payload, size_t len, struct sgn_result *r,
                          char **status_json, struct itl_error *err);

/* ---- Client ---- */

struct sgn_client;

/* How long a client waits for each reply (itl-sign --timeout), by default. */
#define SGN_CLIENT_DEFAULT_TIMEOUT_MS 60000u

struct sgn_client_opts {
    unsigned timeout_ms;      /* per request, connect + send + reply; 0 = the default */
    size_t max_request_bytes; /* the service's socket.max-request-bytes; 0 = the default */
};

/* opts may be NULL (the defaults). */
int sgn_client_connect(const char *socket_path, const struct sgn_client_opts *opts,
                       struct sgn_client **out, struct itl_error *err);
/* One request, one reply, within the timeout. A request larger than max_request_bytes is not
 * sent. When the service closes while we send, its reply (if it sent one: "too large") is read
 * and returned. -1 on a transport or protocol failure (err says which). */
int sgn_client_call(struct sgn_client *c, const struct sgn_request *req, struct sgn_result *r,
                    char **status_json, struct itl_error *err);
/* Pipelining (docs/protocol.md): send requests without waiting, then take their replies in
 * the order sent. The caller keeps the replies it has not read within what the socket holds
 * (about 200 KB) or reads them in another thread (itl-sign sign), so that the service is never
 * stuck sending while the client is stuck sending too. Same errors as sgn_client_call.
 * sgn_client_send returns 1 when the service closed the connection while the request was
 * being sent (err says so): its reply may still be waiting, so the request counts as sent and
 * its reply is taken with sgn_client_recv; err is the message when there is none. */
int sgn_client_send(struct sgn_client *c, const struct sgn_request *req, struct itl_error *err);
int sgn_client_recv(struct sgn_client *c, struct sgn_result *r, char **status_json,
                    struct itl_error *err);
void sgn_client_close(struct sgn_client *c);

/* --version of both binaries: "PROGRAM VERSION", then one line each for OpenSSL, p11-kit and
 * libyaml, so a bug report says what the program ran with. */
void sgn_print_versions(FILE *f, const char *program, const char *version);

#endif
