/* SPDX-License-Identifier: MIT */
/*
 * Backup attestations in the state: recording one (the same attestation again only refreshes
 * it; when the list is full the oldest goes) and finding the one for a certificate.
 */
#include "policy/internal.h"

#include <string.h>

static int same_attestation(const struct pol_attestation *a, const struct pol_attestation *b)
{
    return a->key == b->key && memcmp(a->cert_sha256, b->cert_sha256, 32) == 0 &&
           strcmp(a->kind, b->kind) == 0 && strcmp(a->identity, b->identity) == 0;
}

static int valid_attestation(const struct pol_attestation *a, struct itl_error *err)
{
    if ((unsigned)a->key >= POL_KEY_COUNT)
        return err_set(err, ITL_E_IO, "attestation: unknown key role %d", (int)a->key);
    if (!pol_attestation_kind_known(a->kind, sizeof a->kind))
        return err_set(err, ITL_E_IO, "attestation: kind must be token or p12");
    if (!pol_state_text_ok(a->identity, sizeof a->identity))
        return err_set(err, ITL_E_IO,
                       "attestation: identity must be set, UTF-8, without control "
                       "characters");
    if (!pol_state_time_ok(a->time) || a->uid == (uid_t)-1)
        return err_set(err, ITL_E_IO, "attestation: time or uid out of range");
    return 0;
}

static int apply_attestation(struct pol_state *st, const void *arg, struct itl_error *err)
{
    const struct pol_attestation *a = arg;
    size_t slot = st->n_attestations;

    (void)err;
    for (size_t i = 0; i < st->n_attestations; i++)
        if (same_attestation(&st->attestations[i], a))
            slot = i;
    if (slot == POL_MAX_ATTESTATIONS) {
        slot = 0;
        for (size_t i = 1; i < st->n_attestations; i++)
            if (st->attestations[i].time < st->attestations[slot].time)
                slot = i;
    }
    st->attestations[slot] = *a;
    if (slot == st->n_attestations)
        st->n_attestations++;
    return 0;
}

int pol_state_record_attestation(const char *state_dir, const struct pol_attestation *a,
                                 struct itl_error *err)
{
    if (valid_attestation(a, err) != 0)
        return -1;
    return pol_state_update(state_dir, apply_attestation, a, err);
}

const struct pol_attestation *pol_state_find_attestation(const struct pol_state *st,
                                                         enum pol_key_role key,
                                                         const uint8_t cert_sha256[32])
{
    for (size_t i = 0; st && cert_sha256 && i < st->n_attestations; i++)
        if (st->attestations[i].key == key &&
            memcmp(st->attestations[i].cert_sha256, cert_sha256, 32) == 0)
            return &st->attestations[i];
    return NULL;
}
