/* SPDX-License-Identifier: MIT */
/*
 * Recording a regeneration: the rules' side of the state. The hold is checked again inside the
 * state's locked read-modify-write (pol_state_update), so two regenerations racing each other
 * cannot both pass it; a recorded regeneration voids that key's attestations.
 */
#include "policy/internal.h"

#include <stdio.h>
#include <string.h>

struct regen_change {
    const struct pol_config *cfg;
    const struct pol_regen_event *ev;
    struct pol_decision *d;
};

static int apply_regen(struct pol_state *st, const void *arg, struct itl_error *err)
{
    const struct regen_change *c = arg;
    size_t kept = 0;

    if ((unsigned)c->ev->key >= POL_KEY_COUNT)
        return err_set(err, ITL_E_IO, "regeneration: unknown key role %d", (int)c->ev->key);
    if (!pol_state_text_ok(c->ev->label, sizeof c->ev->label))
        return err_set(err, ITL_E_IO,
                       "regeneration: label must be set, UTF-8, without control "
                       "characters");
    if (!pol_state_time_ok(c->ev->time) || c->ev->uid == (uid_t)-1)
        return err_set(err, ITL_E_IO, "regeneration: time or uid out of range");
    if (pol_check_hold(c->cfg, st, c->ev->key, c->ev->time, c->d) != 0)
        return err_set(err, ITL_E_IO, "%s", c->d->message);
    st->has_last_regen = 1;
    st->last_regen = *c->ev;
    for (size_t i = 0; i < st->n_attestations; i++)
        if (st->attestations[i].key != c->ev->key)
            st->attestations[kept++] = st->attestations[i];
    st->n_attestations = kept;
    return 0;
}

int pol_state_record_regen(const char *state_dir, const struct pol_config *cfg,
                           const struct pol_regen_event *ev, struct pol_decision *d,
                           struct itl_error *err)
{
    struct pol_decision unused;
    struct regen_change c;

    if (!d)
        d = &unused;
    c = (struct regen_change){cfg, ev, d};
    pol_decision_start(d);
    return pol_state_update(state_dir, apply_regen, &c, err);
}
