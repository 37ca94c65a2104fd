/* SPDX-License-Identifier: MIT */
/*
 * The schedule: parsing the control file and deciding the fate of each call. Grammar (README.md):
 *
 *   absent
 *   FUNCTION [always | every N | after N [count M] | for DURATION] [delay DURATION] [rv RV]
 *
 * with at least one of delay / rv, DURATION as 50ms or 2s, RV a CKR_* name or a number.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/faultp11/faultp11.h"

#define FP_NAME_SPECIAL(name) #name,
#define FP_NAME_FORWARDED(name, absent, params, args) #name,
static const char *const fn_names[FP_FN_COUNT] = {FP_SPECIAL_FUNCTIONS(FP_NAME_SPECIAL)
                                                      FP_FORWARDED_FUNCTIONS(FP_NAME_FORWARDED)};

const char *fp_fn_name(enum fp_fn fn)
{
    return fn_names[fn];
}

int fp_fn_lookup(const char *name)
{
    for (int i = 0; i < FP_FN_COUNT; i++)
        if (strcmp(fn_names[i], name) == 0)
            return i;
    return -1;
}

#define RV(name)                                                                                   \
    {                                                                                              \
#name, name                                                                                \
    }
static const struct {
    const char *name;
    CK_RV rv;
} rv_names[] = {
    RV(CKR_OK),
    RV(CKR_CANCEL),
    RV(CKR_HOST_MEMORY),
    RV(CKR_SLOT_ID_INVALID),
    RV(CKR_GENERAL_ERROR),
    RV(CKR_FUNCTION_FAILED),
    RV(CKR_ARGUMENTS_BAD),
    RV(CKR_NO_EVENT),
    RV(CKR_CANT_LOCK),
    RV(CKR_ATTRIBUTE_SENSITIVE),
    RV(CKR_ATTRIBUTE_TYPE_INVALID),
    RV(CKR_ATTRIBUTE_VALUE_INVALID),
    RV(CKR_DATA_INVALID),
    RV(CKR_DATA_LEN_RANGE),
    RV(CKR_DEVICE_ERROR),
    RV(CKR_DEVICE_MEMORY),
    RV(CKR_DEVICE_REMOVED),
    RV(CKR_FUNCTION_CANCELED),
    RV(CKR_FUNCTION_NOT_SUPPORTED),
    RV(CKR_KEY_HANDLE_INVALID),
    RV(CKR_KEY_SIZE_RANGE),
    RV(CKR_KEY_TYPE_INCONSISTENT),
    RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    RV(CKR_MECHANISM_INVALID),
    RV(CKR_MECHANISM_PARAM_INVALID),
    RV(CKR_OBJECT_HANDLE_INVALID),
    RV(CKR_OPERATION_ACTIVE),
    RV(CKR_OPERATION_NOT_INITIALIZED),
    RV(CKR_PIN_INCORRECT),
    RV(CKR_PIN_INVALID),
    RV(CKR_PIN_LEN_RANGE),
    RV(CKR_PIN_EXPIRED),
    RV(CKR_PIN_LOCKED),
    RV(CKR_SESSION_CLOSED),
    RV(CKR_SESSION_COUNT),
    RV(CKR_SESSION_HANDLE_INVALID),
    RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    RV(CKR_SESSION_READ_ONLY),
    RV(CKR_SESSION_EXISTS),
    RV(CKR_SIGNATURE_INVALID),
    RV(CKR_SIGNATURE_LEN_RANGE),
    RV(CKR_TEMPLATE_INCOMPLETE),
    RV(CKR_TEMPLATE_INCONSISTENT),
    RV(CKR_TOKEN_NOT_PRESENT),
    RV(CKR_TOKEN_NOT_RECOGNIZED),
    RV(CKR_TOKEN_WRITE_PROTECTED),
    RV(CKR_USER_ALREADY_LOGGED_IN),
    RV(CKR_USER_NOT_LOGGED_IN),
    RV(CKR_USER_PIN_NOT_INITIALIZED),
    RV(CKR_USER_TYPE_INVALID),
    RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    RV(CKR_RANDOM_NO_RNG),
    RV(CKR_BUFFER_TOO_SMALL),
    RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    RV(CKR_MUTEX_BAD),
    RV(CKR_MUTEX_NOT_LOCKED),
};
#undef RV

/* The words of one line, and where errors are reported. */
struct line {
    char *word[16];
    int n;
    int pos; /* next word to read */
    const char *path;
    int lineno;
    char *err;
    size_t err_size;
};

__attribute__((format(printf, 2, 3))) static bool fail(struct line *l, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(l->err, l->err_size, "%s:%d: %s", l->path, l->lineno, msg);
    return false;
}

static const char *next_word(struct line *l)
{
    return l->pos < l->n ? l->word[l->pos++] : NULL;
}

static bool parse_count(struct line *l, const char *what, unsigned long min, unsigned long *out)
{
    const char *s = next_word(l);
    char *end;

    if (s == NULL)
        return fail(l, "'%s' needs a number", what);
    errno = 0;
    *out = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || *out < min)
        return fail(l, "'%s %s': expected a whole number >= %lu", what, s, min);
    return true;
}

/* 50ms, 2s. Bounded to a day so that a typo cannot hang a test for ever. */
static bool parse_duration(struct line *l, const char *what, long long *out_ms)
{
    const char *s = next_word(l);
    char *end;
    unsigned long long v;

    if (s == NULL)
        return fail(l, "'%s' needs a duration such as 50ms or 2s", what);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == 0 && end != s && s[0] != '-' && v <= 86400000ULL) {
        if (strcmp(end, "ms") == 0) {
            *out_ms = (long long)v;
            return true;
        }
        if (strcmp(end, "s") == 0 && v <= 86400ULL) {
            *out_ms = (long long)v * 1000;
            return true;
        }
    }
    return fail(l, "'%s %s': expected a duration such as 50ms or 2s (at most a day)", what, s);
}

static bool parse_rv(struct line *l, CK_RV *out)
{
    const char *s = next_word(l);
    char *end;

    if (s == NULL)
        return fail(l, "'rv' needs a CKR_* name or a number");
    if (strncmp(s, "CKR_", 4) == 0) {
        size_t i;
        for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
            if (strcmp(rv_names[i].name, s) == 0)
                break;
        if (i == sizeof(rv_names) / sizeof(rv_names[0]))
            return fail(l, "unknown rv '%s' (use a CKR_* name from README.md or a number)", s);
        *out = rv_names[i].rv;
    } else {
        errno = 0;
        *out = strtoul(s, &end, 0);
        if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
            return fail(l, "unknown rv '%s' (use a CKR_* name or a number such as 0xB3)", s);
    }
    /* Success without forwarding would hand the caller buffers nobody filled. */
    if (*out == CKR_OK)
        return fail(l, "'rv %s': an injected fault must not be CKR_OK", s);
    return true;
}

static bool parse_trigger(struct line *l, struct fp_rule *r)
{
    const char *w = l->pos < l->n ? l->word[l->pos] : NULL;

    r->trigger = FP_ALWAYS;
    if (w == NULL)
        return true;
    if (strcmp(w, "always") == 0) {
        l->pos++;
    } else if (strcmp(w, "every") == 0) {
        l->pos++;
        r->trigger = FP_EVERY;
        return parse_count(l, "every", 1, &r->n);
    } else if (strcmp(w, "after") == 0) {
        l->pos++;
        r->trigger = FP_AFTER;
        if (!parse_count(l, "after", 0, &r->n))
            return false;
        if (l->pos < l->n && strcmp(l->word[l->pos], "count") == 0) {
            l->pos++;
            return parse_count(l, "count", 1, &r->count);
        }
    } else if (strcmp(w, "for") == 0) {
        l->pos++;
        r->trigger = FP_FOR;
        return parse_duration(l, "for", &r->window_ms);
    }
    return true;
}

static bool parse_actions(struct line *l, struct fp_rule *r)
{
    const char *w;

    while ((w = next_word(l)) != NULL) {
        if (strcmp(w, "delay") == 0 && r->delay_ms == 0) {
            if (!parse_duration(l, "delay", &r->delay_ms))
                return false;
        } else if (strcmp(w, "rv") == 0 && !r->fails) {
            if (!parse_rv(l, &r->rv))
                return false;
            r->fails = true;
        } else {
            return fail(l, "unexpected '%s' (expected delay DURATION or rv RV, once each)", w);
        }
    }
    if (!r->fails && r->delay_ms == 0)
        return fail(l, "rule for %s does nothing: add 'rv RV' or 'delay DURATION'",
                    fp_fn_name(r->fn));
    return true;
}

static bool add_rule(struct fp_schedule *s, const struct fp_rule *r)
{
    struct fp_rule *rules = realloc(s->rules, (s->n_rules + 1) * sizeof(*rules));

    if (rules == NULL)
        return false;
    s->rules = rules;
    s->rules[s->n_rules++] = *r;
    return true;
}

static bool parse_rule(struct line *l, struct fp_schedule *s)
{
    struct fp_rule r = {.window_start_ms = -1};
    const char *name = next_word(l);
    int fn = fp_fn_lookup(name);
    size_t used = 0;

    if (fn < 0) {
        if (strcmp(name, "C_GetFunctionList") == 0)
            return fail(l, "C_GetFunctionList cannot be faulted");
        return fail(l, "unknown function or keyword '%s' (expected absent or a C_* name)", name);
    }
    r.fn = (enum fp_fn)fn;
    if (!parse_trigger(l, &r) || !parse_actions(l, &r))
        return false;
    for (int i = 0; i < l->n; i++)
        used += (size_t)snprintf(r.text + used, sizeof(r.text) - used, "%s%s", i ? " " : "",
                                 l->word[i]);
    if (!add_rule(s, &r))
        return fail(l, "out of memory");
    return true;
}

static bool parse_line(struct line *l, char *text, struct fp_schedule *s)
{
    char *save = NULL, *w;
    char *hash = strchr(text, '#');

    if (hash != NULL)
        *hash = '\0';
    l->n = 0;
    l->pos = 0;
    for (w = strtok_r(text, " \t\r", &save); w != NULL; w = strtok_r(NULL, " \t\r", &save)) {
        if (l->n == (int)(sizeof(l->word) / sizeof(l->word[0])))
            return fail(l, "too many words");
        l->word[l->n++] = w;
    }
    if (l->n == 0)
        return true;
    if (strcmp(l->word[0], "absent") == 0) {
        if (l->n > 1)
            return fail(l, "'absent' takes no arguments");
        s->absent = true;
        return true;
    }
    return parse_rule(l, s);
}

bool fp_schedule_parse(const char *text, const char *path, struct fp_schedule *out, char *err,
                       size_t err_size)
{
    struct line l = {.path = path, .err = err, .err_size = err_size};
    const char *p = text;

    *out = (struct fp_schedule){0};
    while (*p != '\0') {
        char buf[FP_LINE_MAX];
        size_t len = strcspn(p, "\n");

        l.lineno++;
        if (len >= sizeof(buf)) {
            fail(&l, "line longer than %d characters", FP_LINE_MAX - 1);
            goto bad;
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (strlen(buf) != len) {
            fail(&l, "NUL byte in line");
            goto bad;
        }
        if (!parse_line(&l, buf, out))
            goto bad;
        p += len;
        if (*p == '\n')
            p++;
    }
    return true;
bad:
    fp_schedule_free(out);
    return false;
}

void fp_schedule_carry_state(struct fp_schedule *to, const struct fp_schedule *from)
{
    bool *used = calloc(from->n_rules + 1, sizeof(*used));

    if (used == NULL)
        return; /* out of memory: the rules start afresh */
    for (size_t i = 0; i < to->n_rules; i++) {
        for (size_t j = 0; j < from->n_rules; j++) {
            if (!used[j] && strcmp(to->rules[i].text, from->rules[j].text) == 0) {
                used[j] = true;
                to->rules[i].seen = from->rules[j].seen;
                to->rules[i].window_start_ms = from->rules[j].window_start_ms;
                break;
            }
        }
    }
    free(used);
}

bool fp_schedule_add_state(struct fp_schedule *s, const char *text, unsigned long seen,
                           long long window_start_ms)
{
    /* FP_FN_COUNT: the rule only holds state and never matches a call. */
    struct fp_rule r = {.fn = FP_FN_COUNT, .seen = seen, .window_start_ms = window_start_ms};

    snprintf(r.text, sizeof(r.text), "%s", text);
    return add_rule(s, &r);
}

void fp_schedule_free(struct fp_schedule *s)
{
    free(s->rules);
    *s = (struct fp_schedule){0};
}

static bool rule_fires(struct fp_rule *r, long long now_ms)
{
    r->seen++;
    switch (r->trigger) {
    case FP_ALWAYS:
        return true;
    case FP_EVERY:
        return r->seen % r->n == 0;
    case FP_AFTER:
        return r->seen > r->n && (r->count == 0 || r->seen <= r->n + r->count);
    case FP_FOR:
        if (r->window_start_ms < 0)
            r->window_start_ms = now_ms;
        return now_ms < r->window_start_ms + r->window_ms;
    }
    return false;
}

void fp_schedule_apply(struct fp_schedule *s, enum fp_fn fn, long long now_ms, struct fp_verdict *v)
{
    for (size_t i = 0; i < s->n_rules; i++) {
        struct fp_rule *r = &s->rules[i];

        if (r->fn != fn || !rule_fires(r, now_ms))
            continue;
        v->delay_ms += r->delay_ms;
        if (r->fails && !v->fails) {
            v->fails = true;
            v->rv = r->rv;
        }
    }
}
