/* SPDX-License-Identifier: MIT */
/*
 * policy: the rules around the keys, the configuration file they come from, the persistent
 * state they need (regeneration events, backup attestations) and the audit log.
 *
 * Decisions are pure functions of (config, state, request, now): the clock is always an input,
 * so tests never sleep. State and audit writes are crash-safe: the state file is replaced
 * atomically under flock; an audit record is one line written with a single write() and fsync'd.
 */
#ifndef ITL_POLICY_POLICY_H
#define ITL_POLICY_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "common/common.h"

/* ---- Operations and roles ---- */

enum pol_op {
    POL_OP_RESET = 0,
    POL_OP_BUILD,
    POL_OP_SIGN,
    POL_OP_ENCRYPT,
    POL_OP_STATUS,
    POL_OP_KEY,    /* key generate / import / attest-backup */
    POL_OP_UNLOCK, /* unlock / lock the recovery key (keys.recovery.unlock: manual) */
    POL_OP_COUNT
};
const char *pol_op_name(enum pol_op op); /* "reset", "build", ... */
int pol_op_from_name(const char *name);  /* -1 when unknown */

enum pol_key_role { POL_KEY_RECOVERY = 0, POL_KEY_TFTP = 1, POL_KEY_COUNT };
const char *pol_key_role_name(enum pol_key_role role); /* "recovery", "tftp" */
int pol_key_role_from_name(const char *name);

/* What a key may sign (recovery-signs / tftp-signs), as bit flags. */
enum pol_file_kind { POL_FILE_ITL = 1, POL_FILE_CONFIG = 2 };

enum pol_backup_mode { POL_BACKUP_OFF = 0, POL_BACKUP_WARN, POL_BACKUP_REQUIRE };
enum pol_expired_mode { POL_EXPIRED_REFUSE = 0, POL_EXPIRED_WARN };
enum pol_node_role { POL_NODE_PUBLISHER = 0, POL_NODE_SUBSCRIBER };
/* keys.recovery.unlock: always (today's behaviour) or manual (locked until `itl-sign unlock`). */
enum pol_unlock_mode { POL_UNLOCK_ALWAYS = 0, POL_UNLOCK_MANUAL };

/* ---- Configuration (YAML; see docs/config.md for every key and its default) ---- */

#define POL_MAX_ACCESS_RULES 64
#define POL_NAME_LEN 256

struct pol_access_rule {
    int is_group;            /* 1: group rule, 0: user rule */
    char name[POL_NAME_LEN]; /* user or group name, or a numeric id */
    unsigned allow;          /* bit (1u << pol_op) */
    int line;                /* line in the config, for messages */
};

struct pol_config {
    char path[1024]; /* where it was loaded from ("" for a string) */
    struct {
        char name[POL_NAME_LEN];
        enum pol_node_role role;
    } node;
    struct {
        char module[1024]; /* "" = p11-kit proxy */
        char uri[1024];
        char pin_file[1024];
        size_t pool_size;     /* 0 = number of CPUs */
        char init_args[1024]; /* C_Initialize pReserved for a module path ("" = none) */
        int mechanism;        /* 0 auto, 1 raw, 2 hash: the order of pkcs11's enum tok_mechanism */
    } token;
    struct {
        char label[POL_NAME_LEN];
        char id[130]; /* CKA_ID in hex ("" = by label alone) */
    } keys[POL_KEY_COUNT];
    /* keys.recovery.unlock and its token (docs/config.md "The recovery key offline"). */
    struct {
        enum pol_unlock_mode mode; /* default always: usable whenever the service runs */
        long max_s;                /* unlock-max: the longest (and default) unlock, 900 s */
        struct {
            char module[1024]; /* "" = p11-kit proxy */
            char uri[1024];    /* the token that holds only the recovery key */
            char init_args[1024];
        } token;
    } recovery_unlock;
    struct {
        long regen_hold;               /* seconds, default 300 */
        enum pol_backup_mode backup;   /* default warn */
        size_t max_itl_bytes;          /* default 65535 */
        enum pol_expired_mode expired; /* default refuse */
        unsigned signs[POL_KEY_COUNT]; /* recovery: ITL; tftp: ITL|CONFIG */
        int digest;                    /* default digest code for new files: 1 (SHA-1) */
    } policy;
    struct {
        char path[1024];          /* default /run/itl-sign/socket */
        unsigned mode;            /* default 0660 */
        char owner[POL_NAME_LEN]; /* "" = unchanged */
        char group[POL_NAME_LEN];
        unsigned max_connections;         /* default 64 */
        unsigned max_connections_per_uid; /* default 16: one uid cannot take every slot */
        unsigned timeout_ms;      /* idle timeout, and the deadline of a whole frame: 30000 */
        size_t max_request_bytes; /* default 4 MiB */
        size_t max_pending_bytes; /* request bytes being received, all peers: 64 MiB */
    } socket;
    struct {
        char user[POL_NAME_LEN]; /* drop privileges to; "" = stay */
        char group[POL_NAME_LEN];
    } run_as;
    char state_dir[1024]; /* default /var/lib/itl-sign */
    char audit_log[1024]; /* default /var/log/itl-sign/audit.log */
    char itl[1024];       /* the ITL the phones trust: itl-sign's --itl default; "" = none */
    size_t n_access;
    struct pol_access_rule access[POL_MAX_ACCESS_RULES];
};

/* Defaults for every field. */
void pol_config_defaults(struct pol_config *cfg);
/* Load a YAML file / parse YAML text. Unknown keys and bad values are errors naming the line:
 * "itl-signd.yaml:12: unknown key 'regen_hold' in policy (did you mean 'regen-hold'?)". */
int pol_config_load(const char *path, struct pol_config *cfg, struct itl_error *err);
int pol_config_parse(const char *text, size_t len, const char *name, struct pol_config *cfg,
                     struct itl_error *err);
/* What the service needs beyond a valid file (token.uri). 0 or -1 with err. */
int pol_config_check_service(const struct pol_config *cfg, struct itl_error *err);

/* A reload (itl-signd's SIGHUP) applies node, policy, access and itl; the token, keys, socket,
 * run-as, state-dir and audit-log settings need a restart (policy/reload.c).
 * pol_config_restart_diff: how many of those differ between running and next, their names
 * ", "-separated in names ("token.uri, token.pin-file"; "" when none).
 * pol_config_keep_restart: copies them from running into next. */
size_t pol_config_restart_diff(const struct pol_config *running, const struct pol_config *next,
                               char *names, size_t size);
void pol_config_keep_restart(struct pol_config *next, const struct pol_config *running);

/* "90s", "5m", "1h", "2d", "300" (seconds). -1 on error. */
long pol_parse_duration(const char *text);

/* ---- Requests and decisions ---- */

struct pol_access;

struct pol_peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    const struct pol_access *access; /* the rules resolved for this peer, or NULL */
};

struct pol_decision {
    int allow;     /* 1 allow, 0 deny */
    char rule[32]; /* "access", "publisher-only", "regen-hold", "backup", "key-role",
                      "sast-signer", "max-itl-bytes", "expired", "ok" */
    char message[ITL_ERROR_LEN];
    int warn; /* allowed with a warning (backup: warn, expired: warn) */
    char warning[ITL_ERROR_LEN];
};

/* Every pol_check_* fills d and returns 0 when allowed (perhaps with d->warn), -1 when denied.
 * A denial's d->rule names the rule and d->message says why (for the reply and the audit). */

/* Who may ask: user rules by name or uid, group rules by primary or supplementary group. */
int pol_check_access(const struct pol_config *cfg, const struct pol_peer *peer, enum pol_op op,
                     struct pol_decision *d);

/* What the access rules grant one peer. Resolving takes NSS lookups (the peer's name and
 * groups, every rule's user or group): the service does it once per connection, whose
 * SO_PEERCRED cannot change, and points peer->access at it so that pol_check_access() only
 * reads the bits. */
struct pol_access {
    int matched;                 /* some rule names this peer */
    unsigned allowed;            /* bit (1u << op) for each allowed enum pol_op */
    char who[POL_NAME_LEN + 64]; /* "uid 1000 (alice)", for messages */
};
void pol_access_resolve(const struct pol_config *cfg, const struct pol_peer *peer,
                        struct pol_access *a);

struct pol_state;

/* A signing request as policy sees it. The caller (signer) fills the facts from the file. */
struct pol_sign_request {
    enum pol_op op;          /* RESET, BUILD, SIGN, ENCRYPT */
    enum pol_key_role key;   /* which key would sign */
    enum pol_file_kind file; /* ITL or CONFIG */
    size_t file_bytes;       /* size of the ITL/CTL to be produced */
    int signer_is_sast;      /* ITL/CTL: the signer certificate is a SAST record of the file */
    time_t signer_not_after; /* validity of the signer certificate */
    time_t signer_not_before;
    const uint8_t *signer_cert_sha256; /* 32 bytes: for backup attestation lookups */
    time_t now;
};

/* Publisher-only, backup, key roles, SAST signer, size, expiry: in that order; the first denial
 * wins, warnings accumulate. */
int pol_check_sign(const struct pol_config *cfg, const struct pol_state *st,
                   const struct pol_sign_request *req, struct pol_decision *d);

/* May `key` be regenerated / replaced now? Publisher-only (recovery), the regen hold, and
 * (backup: warn|require) no TFTP replacement while the recovery key is not backed up.
 * recovery_cert_sha256 is the current recovery certificate: only an attestation of it counts
 * (NULL: there is no recovery key, which also refuses a TFTP replacement). */
int pol_check_regen(const struct pol_config *cfg, const struct pol_state *st, enum pol_key_role key,
                    const uint8_t *recovery_cert_sha256, time_t now, struct pol_decision *d);

/* May the role key `key` be deleted from the token now? The rules of a replacement
 * (pol_check_regen), and the recovery key only with an attested backup of its current
 * certificate (any policy.backup: its loss cannot be undone). */
int pol_check_delete(const struct pol_config *cfg, const struct pol_state *st,
                     enum pol_key_role key, const uint8_t *recovery_cert_sha256, time_t now,
                     struct pol_decision *d);

/* 1 when the daily "not backed up" log line is due (backup: warn|require, no attestation for
 * this recovery certificate, none logged in the last 24 h); record it with
 * pol_state_record_backup_warning. */
int pol_backup_warning_due(const struct pol_config *cfg, const struct pol_state *st,
                           const uint8_t *recovery_cert_sha256, time_t now);

/* ---- Persistent state (state-dir/state.json) ---- */

struct pol_attestation {
    enum pol_key_role key;
    uint8_t cert_sha256[32];
    char kind[16];      /* "token" or "p12" */
    char identity[256]; /* "label=..;serial=.." or "sha256:<hex of the file>" */
    time_t time;
    uid_t uid;
};

struct pol_regen_event {
    enum pol_key_role key;
    char label[POL_NAME_LEN];
    uint8_t cert_sha256[32];
    time_t time;
    uid_t uid;
};

#define POL_MAX_ATTESTATIONS 32

struct pol_state {
    int has_last_regen;
    struct pol_regen_event last_regen;
    size_t n_attestations;
    struct pol_attestation attestations[POL_MAX_ATTESTATIONS];
    time_t last_backup_warning;    /* for the daily log line */
    unsigned long long generation; /* bumped by every write: lost updates are detectable */
};

/* Read the state (a missing file is an empty state until the first write; a corrupt or
 * unreadable one, a missing one after the first write, or a directory or file that another
 * user could have written (pol_check_trusted, pol_state_set_owner) is an error: fail closed,
 * never reset). Takes a shared lock while reading. */
int pol_state_load(const char *state_dir, struct pol_state *st, struct itl_error *err);
/* Record a regeneration: voids attestations of that key. Exclusive lock, re-read, check the
 * hold again under the lock (d filled on denial), write temp + fsync + rename + fsync(dir).
 * All record functions return 0 when the state is durable, -1 with err otherwise; a denied
 * regeneration also sets d->allow = 0 (and err holds d->message). */
int pol_state_record_regen(const char *state_dir, const struct pol_config *cfg,
                           const struct pol_regen_event *ev, struct pol_decision *d,
                           struct itl_error *err);
/* Replaces an attestation of the same key, certificate, kind and identity; when the table is
 * full the oldest goes (only those for the current certificate matter). */
int pol_state_record_attestation(const char *state_dir, const struct pol_attestation *a,
                                 struct itl_error *err);
int pol_state_record_backup_warning(const char *state_dir, time_t when, struct itl_error *err);
/* The attestation for this key and certificate, or NULL. */
const struct pol_attestation *pol_state_find_attestation(const struct pol_state *st,
                                                         enum pol_key_role key,
                                                         const uint8_t cert_sha256[32]);
/* Serialize / parse (exposed for tests and fuzzing). */
int pol_state_parse(const char *text, size_t len, struct pol_state *st, struct itl_error *err);
int pol_state_format(const struct pol_state *st, char **out, size_t *out_len);

/* Whose state it is, besides root: the user the service runs as (run-as.user, and run-as.group
 * or that user's primary group; the effective ids when run-as.user is empty), the same rule
 * itl-signd applies to its directories. Direct-mode commands call it once with their --config,
 * before any state access and before threads start; without the call every access trusts the
 * effective ids it runs with (which the service has after dropping privileges). -1 with err
 * when run-as names no user or group. */
int pol_state_set_owner(const struct pol_config *cfg, struct itl_error *err);

/* ---- Files the service trusts or publishes (files.c) ---- */

/* A directory or file the service trusts (state, socket and audit directories, the state
 * files) must belong to root or `uid`, must not be writable by others, and writable by a group
 * only when that is group 0 or `gid`. -1 with err naming the path, the owner or mode and the
 * fix. `what` names it in the message ("state directory"). */
int pol_check_trusted(const char *what, const char *path, const struct stat *st, uid_t uid,
                      gid_t gid, struct itl_error *err);
/* stat() of `dir`, which must be a directory, then pol_check_trusted. */
int pol_check_dir(const char *what, const char *dir, uid_t uid, gid_t gid, struct itl_error *err);

/* ---- Audit log: one JSON object per line, appended with O_APPEND, fsync'd before the reply ----
 */

struct pol_audit;

struct pol_audit_record {
    time_t time;
    const struct pol_peer *peer; /* NULL for direct mode without a peer */
    const char *op;              /* "sign", "reset", "status", "config", "protocol", ... */
    const char *file;            /* may be NULL */
    const uint8_t *in_sha256;    /* 32 bytes or NULL */
    const uint8_t *out_sha256;   /* 32 bytes or NULL */
    const char *key;             /* key label, may be NULL */
    const char *result;          /* "ok", "denied", "error" */
    const char *rule;            /* policy rule, may be NULL */
    const char *message;         /* may be NULL */
};

/* Open (create 0640) for appending. The directory must belong to root or the log's owner and
 * not be writable by others or a foreign group; the log must be a regular file with one name,
 * owned by root or its owner; a wider mode is narrowed to 0640. Checked again by reopen.
 * pol_audit_open_as: the owner besides root is owner:group (the run-as user), and root gives
 * the log to them; pol_audit_open: the owner pol_state_set_owner set, else the effective ids. */
int pol_audit_open(const char *path, struct pol_audit **out, struct itl_error *err);
int pol_audit_open_as(const char *path, uid_t owner, gid_t group, struct pol_audit **out,
                      struct itl_error *err);
/* Denials and malformed requests (result "denied", or "error" for op "protocol"/"connection")
 * from one uid: the first `burst` per `interval_s` seconds of record time are written one by
 * one, the rest are counted into one "denied-summary" record (with "count") written when the
 * interval ends, at reopen and at close. Default 60 per 60 s; interval 0 writes every one. */
void pol_audit_set_denial_limit(struct pol_audit *a, unsigned burst, unsigned interval_s);
/* One line, one write(), fsync. Thread-safe. Fails if the line could not be made durable. */
int pol_audit_write(struct pol_audit *a, const struct pol_audit_record *r, struct itl_error *err);
/* Group commit: a request that will write one record says so when it starts
 * (pol_audit_expect) and writes it with pol_audit_write_expected; a flush then waits (briefly,
 * bounded) for the records of the requests in flight, so they share one fdatasync. Every
 * pol_audit_expect must be followed by exactly one pol_audit_write_expected. */
void pol_audit_expect(struct pol_audit *a);
int pol_audit_write_expected(struct pol_audit *a, const struct pol_audit_record *r,
                             struct itl_error *err);
/* How long a flush waits for the next record of a request in flight (default 10 ms; ten
 * times that in all; tests set it long). */
void pol_audit_set_group_wait(struct pol_audit *a, unsigned ms);
/* Pipelined requests: the record is written (expected, as above) but not waited for; *seq
 * (0: nothing to wait for) goes to pol_audit_sync, which returns once it is durable. Nothing
 * may be released before that. */
int pol_audit_write_deferred(struct pol_audit *a, const struct pol_audit_record *r,
                             unsigned long long *seq, struct itl_error *err);
int pol_audit_sync(struct pol_audit *a, unsigned long long seq, struct itl_error *err);
/* A request's first record, written before the work it announces (a signature): it counts as
 * the request's expected record, and its flush starts at once on the log's flush thread, while
 * the caller signs. pol_audit_sync(*seq) must return before anything is released. The outcome
 * record that follows goes to pol_audit_write_after: written, not waited for (the next flush,
 * or the flush thread once the log is idle, makes it durable). */
int pol_audit_write_intent(struct pol_audit *a, const struct pol_audit_record *r,
                           unsigned long long *seq, struct itl_error *err);
int pol_audit_write_after(struct pol_audit *a, const struct pol_audit_record *r,
                          struct itl_error *err);
/* How many fdatasync calls the log made so far. */
unsigned long long pol_audit_flushes(struct pol_audit *a);
/* SIGHUP: reopen the path (after rotation). */
int pol_audit_reopen(struct pol_audit *a, struct itl_error *err);
void pol_audit_close(struct pol_audit *a);

/* CUCM's backup warning text. */
extern const char POL_BACKUP_WARNING[];

/* The libyaml version in use (yaml_get_version_string): --version. */
const char *pol_yaml_version(void);

#endif
