/* SPDX-License-Identifier: MIT */
/* `itl-sign status`: token, keys, policy state and counters as one JSON document. */
#include "signer/signer.h"

#include <stdlib.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/common.h"
#include "pkcs11/token.h"
#include "signer/internal.h"

static void token_json(struct buf *j, struct tok *t)
{
    struct tok_status st = {0};
    struct itl_error te = {0};
    int ok = tok_get_status(t, &st, &te) == 0;

    buf_printf(j, "\"token\":{\"present\":%s,\"logged_in\":%s,",
               ok && st.present ? "true" : "false", ok && st.logged_in ? "true" : "false");
    buf_puts(j, "\"label\":");
    json_cstring(j, st.label);
    buf_puts(j, ",\"serial\":");
    json_cstring(j, st.serial);
    buf_printf(j, ",\"pool_size\":%zu,\"pool_in_use\":%zu,\"rebuilds\":%lu", st.pool_size,
               st.pool_in_use, st.rebuilds);
    if (!ok) {
        buf_puts(j, ",\"error\":");
        json_cstring(j, te.msg);
    }
    buf_puts(j, "}");
}

static void key_json(struct buf *j, struct tok *t, const char *label, uint8_t sha256[32],
                     int *found)
{
    uint8_t *der = NULL;
    size_t len = 0;
    struct itl_error te = {0};
    char when[TIME_ISO_LEN];

    *found = tok_export_cert(t, label, &der, &len, &te) == 0;
    buf_puts(j, "{\"label\":");
    json_cstring(j, label);
    buf_printf(j, ",\"found\":%s", *found ? "true" : "false");
    if (*found) {
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        char subject[400] = "", hex[65];
        if (x) {
            struct tm tm;
            X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
            if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm)) {
                time_iso(timegm(&tm), when);
                buf_printf(j, ",\"not_after\":\"%s\"", when);
            }
            X509_free(x);
        }
        EVP_Digest(der, len, sha256, NULL, EVP_sha256(), NULL);
        hex_lower(sha256, 32, 0, hex, sizeof hex);
        buf_puts(j, ",\"subject\":");
        json_cstring(j, subject);
        buf_printf(j, ",\"cert_sha256\":\"%s\"", hex);
    } else {
        buf_puts(j, ",\"error\":");
        json_cstring(j, te.msg);
    }
    buf_puts(j, "}");
    free(der);
}

/* keys.recovery.unlock: manual: the recovery key is on keys.recovery.token, seen only while
 * unlocked. */
static void recovery_key_json(struct buf *j, struct sgn_engine *e, const char *label,
                              uint8_t sha256[32], int *found)
{
    struct tok *rt = eng_unlock_hold_token(e);

    if (rt) {
        key_json(j, rt, label, sha256, found);
        eng_unlock_leave(e);
        return;
    }
    *found = 0;
    buf_puts(j, "{\"label\":");
    json_cstring(j, label);
    buf_puts(j, ",\"found\":false,\"locked\":true}");
}

static void policy_json(struct buf *j, const struct pol_config *cfg, const uint8_t *recovery_sha,
                        int recovery_found)
{
    static const char *const backup_modes[] = {"off", "warn", "require"};
    struct pol_state st;
    struct itl_error pe;
    char when[TIME_ISO_LEN];
    time_t now = time(NULL);

    buf_puts(j, "\"node\":{\"name\":");
    json_cstring(j, cfg->node.name);
    buf_printf(j, ",\"role\":\"%s\"},",
               cfg->node.role == POL_NODE_PUBLISHER ? "publisher" : "subscriber");
    buf_printf(j, "\"policy\":{\"backup\":\"%s\",\"regen_hold_s\":%ld,\"max_itl_bytes\":%zu",
               backup_modes[cfg->policy.backup], cfg->policy.regen_hold, cfg->policy.max_itl_bytes);
    if (pol_state_load(cfg->state_dir, &st, &pe) != 0) {
        buf_puts(j, ",\"state_error\":");
        json_cstring(j, pe.msg);
        buf_puts(j, "}");
        return;
    }
    if (recovery_found) {
        const struct pol_attestation *a =
            pol_state_find_attestation(&st, POL_KEY_RECOVERY, recovery_sha);
        buf_printf(j, ",\"recovery_backup_attested\":%s", a ? "true" : "false");
        if (a) {
            time_iso(a->time, when);
            buf_puts(j, ",\"attestation\":{\"kind\":");
            json_cstring(j, a->kind);
            buf_puts(j, ",\"identity\":");
            json_cstring(j, a->identity);
            buf_printf(j, ",\"time\":\"%s\",\"uid\":%u}", when, (unsigned)a->uid);
        } else if (cfg->policy.backup != POL_BACKUP_OFF) {
            buf_puts(j, ",\"warning\":");
            json_cstring(j, POL_BACKUP_WARNING);
        }
    }
    if (st.has_last_regen) {
        time_iso(st.last_regen.time, when);
        buf_printf(
            j, ",\"last_regen\":{\"key\":\"%s\",\"label\":", pol_key_role_name(st.last_regen.key));
        json_cstring(j, st.last_regen.label);
        buf_printf(j, ",\"time\":\"%s\",\"hold_remaining_s\":%ld}", when,
                   st.last_regen.time + cfg->policy.regen_hold > now
                       ? (long)(st.last_regen.time + cfg->policy.regen_hold - now)
                       : 0L);
    }
    buf_puts(j, "}");
}

int sgn_status_json(struct sgn_engine *e, const char *extra, char **out)
{
    struct buf j = {0};
    unsigned long generation;
    const struct pol_config *cfg = sgn_config_hold(e, &generation);
    struct tok *t = sgn_engine_token(e);
    uint8_t sha[POL_KEY_COUNT][32];
    int found[POL_KEY_COUNT] = {0};
    unsigned long requests, failures;

    buf_puts(&j, "{");
    if (extra && *extra)
        buf_printf(&j, "%s,", extra);
    token_json(&j, t);
    buf_puts(&j, ",\"keys\":{");
    for (int i = 0; i < POL_KEY_COUNT; i++) {
        buf_printf(&j, "%s\"%s\":", i ? "," : "", pol_key_role_name((enum pol_key_role)i));
        if (i == POL_KEY_RECOVERY && e->unlock)
            recovery_key_json(&j, e, cfg->keys[i].label, sha[i], &found[i]);
        else
            key_json(&j, t, cfg->keys[i].label, sha[i], &found[i]);
    }
    buf_puts(&j, "},");
    eng_unlock_status_json(e, &j);
    buf_puts(&j, ",");
    policy_json(&j, cfg, sha[POL_KEY_RECOVERY], found[POL_KEY_RECOVERY]);
    sgn_engine_counters(e, &requests, &failures);
    /* The generation counts configurations: 1 as started, +1 for each reload (SIGHUP). */
    buf_printf(&j, ",\"engine\":{\"requests\":%lu,\"failures\":%lu,\"config_generation\":%lu}}\n",
               requests, failures, generation);
    sgn_config_release(e, cfg);
    *out = (char *)buf_take(&j, NULL);
    return *out ? 0 : -1;
}
