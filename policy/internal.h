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

/* "5 minutes", "90 seconds", "1 hour", "2 days": the largest unit that is exact. */
void pol_duration_words(long seconds, char *out, size_t size);

/* Append into message buffers: keeps a NUL, truncates with "..." when full. */
void pol_strlcatf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies a user-supplied value into a message: at most `max` bytes, non-printables as '?'. */
void pol_printable(const char *in, size_t max, char *out, size_t size);

/* Whose service files these are (pol_state_set_owner; else the effective ids): state.c. The
 * audit log trusts the same owner. */
void pol_owner_ids(uid_t *uid, gid_t *gid);

/* ---- the configuration: config.c holds the table, config_yaml.c walks it ---- */

/* A config is a page of text; anything larger is a mistake (or an attack on the parser). */
#define POL_CONFIG_MAX_BYTES (1024 * 1024)

enum pol_field_kind {
    POL_F_STRING,  /* any non-empty text */
    POL_F_PATH,    /* an absolute path */
    POL_F_URI,     /* a pkcs11: URI */
    POL_F_SIZE,    /* size_t in [min, max] */
    POL_F_UINT,    /* unsigned in [min, max] */
    POL_F_SECONDS, /* a duration into a long (seconds) */
    POL_F_MILLIS,  /* a duration into an unsigned (milliseconds) */
    POL_F_MODE,    /* octal file mode */
    POL_F_ENUM,    /* one of names[], stored as int first + index */
    POL_F_FILES,   /* sequence of itl|config, stored as unsigned bits */
    POL_F_MAP,     /* a nested mapping: fields */
    POL_F_SOCKET,  /* a path, or a mapping: fields */
    POL_F_ACCESS,  /* the access rule list */
};

/* One accepted key: where its value goes in struct pol_config and how it is checked. */
struct pol_field {
    const char *key;
    enum pol_field_kind kind;
    size_t offset; /* into struct pol_config */
    size_t size;   /* string buffers */
    unsigned long long min, max;
    const char *const *names; /* POL_F_ENUM, NULL-terminated */
    int first;                /* POL_F_ENUM: value of names[0] */
    const struct pol_field *fields;
};

/* The accepted top-level keys; each POL_F_MAP entry points at its children. END: key NULL. */
extern const struct pol_field pol_config_fields[];

/* keys.recovery.unlock and keys.recovery.token agree (config.c); `name` names the file. */
int pol_config_check_unlock(const struct pol_config *cfg, const char *name, struct itl_error *err);

/* " (did you mean 'x'?)" for the candidate closest to word ('_' for '-', case, two typos), or
 * "" (suggest.c). */
void pol_did_you_mean(const char *word, const char *const *candidates, char *out, size_t size);
/* "a, b, c" */
void pol_join_names(const char *const *names, char *out, size_t size);

/* "token" or "p12", within the first `size` bytes of kind (state_json.c). */
int pol_attestation_kind_known(const char *kind, size_t size);

/* Read-modify-write of the state under its exclusive lock (state.c): change() edits the state
 * read and returns 0 to write it back (generation + 1), or -1 (err set) to write nothing. */
typedef int (*pol_state_change_fn)(struct pol_state *st, const void *arg, struct itl_error *err);
int pol_state_update(const char *state_dir, pol_state_change_fn change, const void *arg,
                     struct itl_error *err);

/* Text the state file can hold: set (NUL within size, not empty), UTF-8, no control
 * characters. */
int pol_state_text_ok(const char *s, size_t size);
/* A time the state file can hold: 0 .. INT64_MAX / 2. */
int pol_state_time_ok(time_t t);

/* A decision that allows, under rule "ok", with no message or warning (decision.c). */
void pol_decision_start(struct pol_decision *d);
/* Sets the verdict, the rule that decided it, and its message. */
void pol_decide(struct pol_decision *d, int allow, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The regeneration hold alone (rules.c); pol_state_record_regen re-checks it under the lock. */
int pol_check_hold(const struct pol_config *cfg, const struct pol_state *st, enum pol_key_role key,
                   time_t now, struct pol_decision *d);

#endif
