/* SPDX-License-Identifier: MIT */
/*
 * Counters of the fault module and the stats file a test reads them from:
 *
 *   calls C_Sign 12            every call that reached the module (injected or forwarded)
 *   injected C_Sign 2          calls answered by the schedule instead of the real module
 *   delayed C_Sign 5           calls slowed down by a delay rule
 *   errors C_Sign 1            non-OK answers of the real module
 *   login_attempts 3
 *   login_pin_sha256 HEX       one line per C_Login with a PIN, in order
 *   context_logins 5           successful C_Login(CKU_CONTEXT_SPECIFIC)
 *   quirk_refusals 0           calls a quirk refused (FAULTP11_QUIRKS)
 *   offload_replays 0          signatures replayed by quirk offload (offload.c)
 *   offload_signs 0            signatures the real module made under quirk offload, stored
 *   sign_mechanism CKM_SHA256_RSA_PKCS 5   successful C_SignInit per mechanism
 *   absent 0
 *   schedule_error MSG         only while the control file does not parse
 *   rule_state SEEN START RULE the counters of each rule, so a later process continues them
 *
 * The file is read back when the module initialises, so counts and rule states carry over
 * between processes that use it one after the other (e.g. several pkcs11-tool runs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/faultp11/faultp11.h"

static bool push_pin_hash(struct fp_stats *st, const char *hex)
{
    if (st->n_pin_hashes == st->pin_hashes_cap) {
        size_t cap = st->pin_hashes_cap ? 2 * st->pin_hashes_cap : 16;
        char(*grown)[65] = realloc(st->pin_hashes, cap * sizeof(*grown));
        if (grown == NULL)
            return false;
        st->pin_hashes = grown;
        st->pin_hashes_cap = cap;
    }
    snprintf(st->pin_hashes[st->n_pin_hashes++], 65, "%s", hex);
    return true;
}

void fp_stats_record_login(struct fp_stats *st, const unsigned char *pin, size_t pin_len)
{
    uint8_t digest[32];
    char hex[65];

    st->login_attempts++;
    if (pin == NULL)
        return;
    fp_sha256(pin, pin_len, digest);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    if (!push_pin_hash(st, hex))
        fprintf(stderr, "faultp11: out of memory recording a PIN hash\n");
}

static const struct {
    CK_MECHANISM_TYPE mech;
    const char *name;
} mech_names[] = {
    {CKM_RSA_PKCS, "CKM_RSA_PKCS"},
    {CKM_SHA1_RSA_PKCS, "CKM_SHA1_RSA_PKCS"},
    {CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS"},
    {CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS"},
    {CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS"},
    {CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS"},
    {CKM_ECDSA, "CKM_ECDSA"},
};

/* "CKM_SHA256_RSA_PKCS", or "0x..." for a mechanism the table does not name. */
static void mech_name(CK_MECHANISM_TYPE mech, char *out, size_t size)
{
    for (size_t i = 0; i < sizeof mech_names / sizeof mech_names[0]; i++)
        if (mech_names[i].mech == mech) {
            snprintf(out, size, "%s", mech_names[i].name);
            return;
        }
    snprintf(out, size, "0x%lx", (unsigned long)mech);
}

static bool mech_parse(const char *name, CK_MECHANISM_TYPE *out)
{
    char *end;

    for (size_t i = 0; i < sizeof mech_names / sizeof mech_names[0]; i++)
        if (strcmp(mech_names[i].name, name) == 0) {
            *out = mech_names[i].mech;
            return true;
        }
    *out = strtoul(name, &end, 16);
    return strncmp(name, "0x", 2) == 0 && end != name + 2 && *end == '\0';
}

static struct fp_mech_count *sign_mech_slot(struct fp_stats *st, CK_MECHANISM_TYPE mech)
{
    for (size_t i = 0; i < st->n_sign_mech; i++)
        if (st->sign_mech[i].mech == mech)
            return &st->sign_mech[i];
    if (st->n_sign_mech == FP_SIGN_MECH_MAX)
        return NULL;
    st->sign_mech[st->n_sign_mech] = (struct fp_mech_count){.mech = mech};
    return &st->sign_mech[st->n_sign_mech++];
}

void fp_stats_record_sign_mech(struct fp_stats *st, CK_MECHANISM_TYPE mech)
{
    struct fp_mech_count *c = sign_mech_slot(st, mech);

    if (c != NULL)
        c->n++;
}

static bool load_sign_mech(struct fp_stats *st, const char *rest)
{
    char name[64];
    unsigned long v;
    CK_MECHANISM_TYPE mech;
    struct fp_mech_count *c;
    int end = 0;

    if (sscanf(rest, "%63s %lu%n", name, &v, &end) != 2 || rest[end] != '\0' ||
        !mech_parse(name, &mech))
        return false;
    c = sign_mech_slot(st, mech);
    if (c != NULL)
        c->n = v;
    return c != NULL;
}

static bool is_hex64(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* "calls C_Sign 12" and friends; false when the line is not one of them. */
static bool load_counter(struct fp_stats *st, const char *key, const char *rest)
{
    unsigned long *table;
    char name[64];
    unsigned long v;
    int fn, end = 0;

    if (strcmp(key, "calls") == 0)
        table = st->calls;
    else if (strcmp(key, "injected") == 0)
        table = st->injected;
    else if (strcmp(key, "delayed") == 0)
        table = st->delayed;
    else if (strcmp(key, "errors") == 0)
        table = st->errors;
    else
        return false;
    if (sscanf(rest, "%63s %lu%n", name, &v, &end) != 2 || rest[end] != '\0')
        return false;
    fn = fp_fn_lookup(name);
    if (fn < 0)
        return false;
    table[fn] = v;
    return true;
}

static bool load_line(struct fp_stats *st, struct fp_schedule *states, char *line)
{
    char *rest = strchr(line, ' ');
    unsigned long seen;
    long long start;
    int end = 0;

    if (line[0] == '#' || line[0] == '\0')
        return true;
    if (rest == NULL)
        return false;
    *rest++ = '\0';
    if (load_counter(st, line, rest))
        return true;
    if (strcmp(line, "login_attempts") == 0)
        return sscanf(rest, "%lu%n", &st->login_attempts, &end) == 1 && rest[end] == '\0';
    if (strcmp(line, "login_pin_sha256") == 0)
        return is_hex64(rest) && push_pin_hash(st, rest);
    if (strcmp(line, "context_logins") == 0)
        return sscanf(rest, "%lu%n", &st->context_logins, &end) == 1 && rest[end] == '\0';
    if (strcmp(line, "quirk_refusals") == 0)
        return sscanf(rest, "%lu%n", &st->quirk_refusals, &end) == 1 && rest[end] == '\0';
    if (strcmp(line, "offload_replays") == 0)
        return sscanf(rest, "%lu%n", &st->offload_replays, &end) == 1 && rest[end] == '\0';
    if (strcmp(line, "offload_signs") == 0)
        return sscanf(rest, "%lu%n", &st->offload_signs, &end) == 1 && rest[end] == '\0';
    if (strcmp(line, "sign_mechanism") == 0)
        return load_sign_mech(st, rest);
    if (strcmp(line, "absent") == 0 || strcmp(line, "schedule_error") == 0)
        return true; /* describe the schedule, which is read afresh */
    if (strcmp(line, "rule_state") == 0)
        return sscanf(rest, "%lu %lld %n", &seen, &start, &end) == 2 && rest[end] != '\0' &&
               fp_schedule_add_state(states, rest + end, seen, start);
    return false;
}

void fp_stats_load(struct fp_stats *st, struct fp_schedule *states, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[FP_LINE_MAX + 64];
    int lineno = 0;

    if (f == NULL) {
        if (errno != ENOENT)
            fprintf(stderr, "faultp11: cannot read FAULTP11_STATS=%s: %s\n", path, strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (!load_line(st, states, line))
            fprintf(stderr, "faultp11: %s:%d: ignoring malformed line\n", path, lineno);
    }
    fclose(f);
}

static void write_counters(FILE *f, const char *key, const unsigned long *table)
{
    for (int fn = 0; fn < FP_FN_COUNT; fn++)
        if (table[fn] != 0)
            fprintf(f, "%s %s %lu\n", key, fp_fn_name((enum fp_fn)fn), table[fn]);
}

static void write_stats(FILE *f, const struct fp_stats *st, const struct fp_schedule *sched)
{
    fprintf(f, "# faultp11 statistics (tests/faultp11/README.md)\n");
    write_counters(f, "calls", st->calls);
    write_counters(f, "injected", st->injected);
    write_counters(f, "delayed", st->delayed);
    write_counters(f, "errors", st->errors);
    fprintf(f, "login_attempts %lu\n", st->login_attempts);
    for (size_t i = 0; i < st->n_pin_hashes; i++)
        fprintf(f, "login_pin_sha256 %s\n", st->pin_hashes[i]);
    fprintf(f, "context_logins %lu\n", st->context_logins);
    fprintf(f, "quirk_refusals %lu\n", st->quirk_refusals);
    fprintf(f, "offload_replays %lu\n", st->offload_replays);
    fprintf(f, "offload_signs %lu\n", st->offload_signs);
    for (size_t i = 0; i < st->n_sign_mech; i++) {
        char name[32];
        mech_name(st->sign_mech[i].mech, name, sizeof name);
        fprintf(f, "sign_mechanism %s %lu\n", name, st->sign_mech[i].n);
    }
    fprintf(f, "absent %d\n", sched->absent ? 1 : 0);
    if (st->schedule_error[0] != '\0')
        fprintf(f, "schedule_error %s\n", st->schedule_error);
    for (size_t i = 0; i < sched->n_rules; i++)
        fprintf(f, "rule_state %lu %lld %s\n", sched->rules[i].seen,
                sched->rules[i].window_start_ms, sched->rules[i].text);
}

/* Callers hold the module's lock. */
static bool warned;

bool fp_stats_save(const struct fp_stats *st, const struct fp_schedule *sched, const char *path)
{
    /* The pid keeps a forked child from writing into the parent's temporary file. */
    char tmp[4096];
    FILE *f;
    bool ok;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        fprintf(stderr, "faultp11: FAULTP11_STATS path too long\n");
        return false;
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        if (!warned)
            fprintf(stderr, "faultp11: cannot write %s: %s\n", tmp, strerror(errno));
        warned = true;
        return false;
    }
    write_stats(f, st, sched);
    ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        if (!warned)
            fprintf(stderr, "faultp11: cannot write FAULTP11_STATS=%s: %s\n", path,
                    strerror(errno));
        warned = true; /* once: the file is rewritten after every call */
        unlink(tmp);
    }
    return ok;
}

void fp_stats_free(struct fp_stats *st)
{
    free(st->pin_hashes);
    *st = (struct fp_stats){0};
}
