/* SPDX-License-Identifier: MIT */
/* `itl-sign status`: token, keys, policy state and counters as one JSON document. */
#include "signer/signer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pkcs11/token.h"
#include "signer/internal.h"

struct json {
    char *buf;
    size_t len, cap;
    int failed;
};

static void json_printf(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void json_printf(struct json *j, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (j->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(j->buf ? j->buf + j->len : NULL, j->buf ? j->cap - j->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            j->failed = 1;
            return;
        }
        if (j->buf && j->len + (size_t)n < j->cap) {
            j->len += (size_t)n;
            return;
        }
        size_t cap = j->cap ? j->cap * 2 : 1024;
        while (cap < j->len + (size_t)n + 1)
            cap *= 2;
        char *nb = realloc(j->buf, cap);
        if (!nb) {
            j->failed = 1;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
}

static void status_json_string(struct json *j, const char *s)
{
    json_printf(j, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            json_printf(j, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            json_printf(j, "\\u%04x", c);
        else
            json_printf(j, "%c", c);
    }
    json_printf(j, "\"");
}

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void token_json(struct json *j, struct tok *t)
{
    struct tok_status st = {0};
    struct itl_error te = {0};
    int ok = tok_get_status(t, &st, &te) == 0;

    json_printf(j, "\"token\":{\"present\":%s,\"logged_in\":%s,",
                ok && st.present ? "true" : "false", ok && st.logged_in ? "true" : "false");
    json_printf(j, "\"label\":");
    status_json_string(j, st.label);
    json_printf(j, ",\"serial\":");
    status_json_string(j, st.serial);
    json_printf(j, ",\"pool_size\":%zu,\"pool_in_use\":%zu,\"rebuilds\":%lu", st.pool_size,
                st.pool_in_use, st.rebuilds);
    if (!ok) {
        json_printf(j, ",\"error\":");
        status_json_string(j, te.msg);
    }
    json_printf(j, "}");
}

static void key_json(struct json *j, struct tok *t, const char *label, uint8_t sha256[32],
                     int *found)
{
    uint8_t *der = NULL;
    size_t len = 0;
    struct itl_error te = {0};
    char when[32];

    *found = tok_export_cert(t, label, &der, &len, &te) == 0;
    json_printf(j, "{\"label\":");
    status_json_string(j, label);
    json_printf(j, ",\"found\":%s", *found ? "true" : "false");
    if (*found) {
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        char subject[400] = "", hex[65];
        if (x) {
            struct tm tm;
            X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
            if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm)) {
                iso_time(timegm(&tm), when);
                json_printf(j, ",\"not_after\":\"%s\"", when);
            }
            X509_free(x);
        }
        EVP_Digest(der, len, sha256, NULL, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", sha256[i]);
        json_printf(j, ",\"subject\":");
        status_json_string(j, subject);
        json_printf(j, ",\"cert_sha256\":\"%s\"", hex);
    } else {
        json_printf(j, ",\"error\":");
        status_json_string(j, te.msg);
    }
    json_printf(j, "}");
    free(der);
}

static void policy_json(struct json *j, const struct pol_config *cfg, const uint8_t *recovery_sha,
                        int recovery_found)
{
    static const char *const backup_modes[] = {"off", "warn", "require"};
    struct pol_state st;
    struct itl_error pe;
    char when[32];
    time_t now = time(NULL);

    json_printf(j, "\"node\":{\"name\":");
    status_json_string(j, cfg->node.name);
    json_printf(j, ",\"role\":\"%s\"},",
                cfg->node.role == POL_NODE_PUBLISHER ? "publisher" : "subscriber");
    json_printf(j, "\"policy\":{\"backup\":\"%s\",\"regen_hold_s\":%ld,\"max_itl_bytes\":%zu",
                backup_modes[cfg->policy.backup], cfg->policy.regen_hold,
                cfg->policy.max_itl_bytes);
    if (pol_state_load(cfg->state_dir, &st, &pe) != 0) {
        json_printf(j, ",\"state_error\":");
        status_json_string(j, pe.msg);
        json_printf(j, "}");
        return;
    }
    if (recovery_found) {
        const struct pol_attestation *a =
            pol_state_find_attestation(&st, POL_KEY_RECOVERY, recovery_sha);
        json_printf(j, ",\"recovery_backup_attested\":%s", a ? "true" : "false");
        if (a) {
            iso_time(a->time, when);
            json_printf(j, ",\"attestation\":{\"kind\":");
            status_json_string(j, a->kind);
            json_printf(j, ",\"identity\":");
            status_json_string(j, a->identity);
            json_printf(j, ",\"time\":\"%s\",\"uid\":%u}", when, (unsigned)a->uid);
        } else if (cfg->policy.backup != POL_BACKUP_OFF) {
            json_printf(j, ",\"warning\":");
            status_json_string(j, POL_BACKUP_WARNING);
        }
    }
    if (st.has_last_regen) {
        iso_time(st.last_regen.time, when);
        json_printf(
            j, ",\"last_regen\":{\"key\":\"%s\",\"label\":", pol_key_role_name(st.last_regen.key));
        status_json_string(j, st.last_regen.label);
        json_printf(j, ",\"time\":\"%s\",\"hold_remaining_s\":%ld}", when,
                    st.last_regen.time + cfg->policy.regen_hold > now
                        ? (long)(st.last_regen.time + cfg->policy.regen_hold - now)
                        : 0L);
    }
    json_printf(j, "}");
}

int sgn_status_json(struct sgn_engine *e, const char *extra, char **out)
{
    struct json j = {0};
    const struct pol_config *cfg = sgn_engine_config(e);
    struct tok *t = sgn_engine_token(e);
    uint8_t sha[POL_KEY_COUNT][32];
    int found[POL_KEY_COUNT] = {0};
    unsigned long requests, failures;

    json_printf(&j, "{");
    if (extra && *extra)
        json_printf(&j, "%s,", extra);
    token_json(&j, t);
    json_printf(&j, ",\"keys\":{");
    for (int i = 0; i < POL_KEY_COUNT; i++) {
        json_printf(&j, "%s\"%s\":", i ? "," : "", pol_key_role_name((enum pol_key_role)i));
        key_json(&j, t, cfg->keys[i].label, sha[i], &found[i]);
    }
    json_printf(&j, "},");
    policy_json(&j, cfg, sha[POL_KEY_RECOVERY], found[POL_KEY_RECOVERY]);
    sgn_engine_counters(e, &requests, &failures);
    json_printf(&j, ",\"engine\":{\"requests\":%lu,\"failures\":%lu}}\n", requests, failures);
    if (j.failed) {
        free(j.buf);
        return -1;
    }
    *out = j.buf;
    return 0;
}
