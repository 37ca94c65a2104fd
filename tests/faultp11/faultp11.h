/* SPDX-License-Identifier: MIT */
/*
 * faultp11: a PKCS#11 module for tests that forwards to a real module and injects faults on a
 * schedule. Internal interfaces between module.c, schedule.c, stats.c and sha256.c; the only
 * exported symbol of the library is C_GetFunctionList. See README.md for the schedule grammar.
 */
#ifndef FAULTP11_H
#define FAULTP11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "tests/faultp11/functions.h"

/* Keep the helpers out of the dynamic symbol table: the module is loaded into processes that
 * have their own symbols. */
#pragma GCC visibility push(hidden)

#define FP_ENUM_SPECIAL(name) FP_FN_##name,
#define FP_ENUM_FORWARDED(name, absent, params, args) FP_FN_##name,
enum fp_fn {
    FP_SPECIAL_FUNCTIONS(FP_ENUM_SPECIAL) FP_FORWARDED_FUNCTIONS(FP_ENUM_FORWARDED) FP_FN_COUNT
};
#undef FP_ENUM_SPECIAL
#undef FP_ENUM_FORWARDED

/* "C_Sign" for FP_FN_C_Sign. */
const char *fp_fn_name(enum fp_fn fn);
/* The function named NAME, or -1. */
int fp_fn_lookup(const char *name);

/* ---- schedule.c: the control file ---- */

enum fp_trigger {
    FP_ALWAYS, /* every call */
    FP_EVERY,  /* calls n, 2n, 3n, ... */
    FP_AFTER,  /* calls n+1 .. n+count (count 0: all calls after n) */
    FP_FOR,    /* all calls for window_ms from the first matching call */
};

#define FP_LINE_MAX 256

struct fp_rule {
    enum fp_fn fn;
    enum fp_trigger trigger;
    unsigned long n;
    unsigned long count;
    long long window_ms;
    long long delay_ms; /* 0: no delay */
    bool fails;         /* the call returns rv instead of being forwarded */
    CK_RV rv;
    /* The rule's words joined by single spaces: it names the rule's state across reloads of
     * the schedule and across processes (stats file). */
    char text[FP_LINE_MAX];
    /* State: calls of fn seen since the rule appeared; start of a "for" window (monotonic ms,
     * -1 before the first matching call). */
    unsigned long seen;
    long long window_start_ms;
};

struct fp_schedule {
    struct fp_rule *rules;
    size_t n_rules;
    bool absent; /* the token is removed */
};

/* What the schedule does to one call. */
struct fp_verdict {
    bool fails;
    CK_RV rv;
    long long delay_ms;
};

/* Parses the schedule TEXT read from PATH into OUT (rule states fresh). On error returns false
 * and writes "PATH:LINE: message" to ERR. */
bool fp_schedule_parse(const char *text, const char *path, struct fp_schedule *out, char *err,
                       size_t err_size);
/* Gives each rule of TO the state of the first not yet used rule of FROM with the same text. */
void fp_schedule_carry_state(struct fp_schedule *to, const struct fp_schedule *from);
/* Adds a state-only rule (as read back from a stats file); false when out of memory. */
bool fp_schedule_add_state(struct fp_schedule *s, const char *text, unsigned long seen,
                           long long window_start_ms);
void fp_schedule_free(struct fp_schedule *s);
/* Advances every rule of S that names FN and merges what they decide into V: the first rule
 * (in file order) that fails the call gives the rv; delays add up. */
void fp_schedule_apply(struct fp_schedule *s, enum fp_fn fn, long long now_ms,
                       struct fp_verdict *v);

/* ---- stats.c: counters, rewritten to the stats file ---- */

#define FP_SIGN_MECH_MAX 16

struct fp_stats {
    unsigned long calls[FP_FN_COUNT];
    unsigned long injected[FP_FN_COUNT];
    unsigned long delayed[FP_FN_COUNT];
    unsigned long errors[FP_FN_COUNT]; /* non-OK answers of the real module */
    unsigned long login_attempts;
    char (*pin_hashes)[65]; /* hex SHA-256 of each PIN sent to C_Login, in order */
    size_t n_pin_hashes;
    size_t pin_hashes_cap;
    /* What quirks.c saw: successful C_Login(CKU_CONTEXT_SPECIFIC), and successful C_SignInit
     * per mechanism (so a test can tell which mechanism the caller chose). */
    unsigned long context_logins;
    unsigned long quirk_refusals;  /* calls a quirk refused (the caller broke the quirk's rule) */
    unsigned long offload_replays; /* quirk offload: signatures replayed, not made by the token */
    unsigned long offload_signs;   /* quirk offload: signatures the real module made and stored */
    struct fp_mech_count {
        CK_MECHANISM_TYPE mech;
        unsigned long n;
    } sign_mech[FP_SIGN_MECH_MAX];
    size_t n_sign_mech;
    char schedule_error[FP_LINE_MAX + 256]; /* "" when the control file parsed */
};

/* Records one C_Login; PIN may be NULL (protected authentication path). */
void fp_stats_record_login(struct fp_stats *st, const unsigned char *pin, size_t pin_len);
/* Reads PATH back into ST and the rule states into STATES (a missing file is not an error).
 * Malformed lines are reported on stderr and skipped. */
void fp_stats_load(struct fp_stats *st, struct fp_schedule *states, const char *path);
/* Rewrites PATH atomically (temporary file + rename); false with a message on stderr. */
bool fp_stats_save(const struct fp_stats *st, const struct fp_schedule *sched, const char *path);
void fp_stats_free(struct fp_stats *st);
/* Counts a successful C_SignInit with MECH (mechanisms past FP_SIGN_MECH_MAX are not kept). */
void fp_stats_record_sign_mech(struct fp_stats *st, CK_MECHANISM_TYPE mech);

/* ---- module.c: what quirks.c observes, counted under the module lock and saved ---- */

void fp_note_context_login(void);
void fp_note_sign_mechanism(CK_MECHANISM_TYPE mech);
void fp_note_quirk_refusal(void);

/* ---- quirks.c: FAULTP11_QUIRKS ---- */

/* Wraps the entries of LIST the quirks named in FAULTP11_QUIRKS need; false (message on
 * stderr) for an unknown quirk. */
bool fp_quirks_install(CK_FUNCTION_LIST *list);
/* module.c: a C_Login a quirk answered itself (always-auth's context login) still counts in the
 * statistics (login_attempts, login_pin_sha256), so a test sees every PIN sent. */
void fp_note_quirk_login(const unsigned char *pin, size_t pin_len);

/* FAULTP11_QUIRKS holds `offload` (parsed by fp_quirks_install). */
bool fp_quirk_offload(void);

/* ---- offload.c: quirk offload, between the schedule and the real module ---- */

/* Replaces REAL's signing (and what can change its answer) with the replaying versions. */
void fp_offload_wrap(CK_FUNCTION_LIST *real);
/* Adds the replays and stored real signatures since the last call. */
void fp_offload_take(unsigned long *replayed, unsigned long *signed_real);

/* ---- sha256.c ---- */

void fp_sha256(const void *data, size_t len, uint8_t out[32]);

#pragma GCC visibility pop

#endif
