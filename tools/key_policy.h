/* SPDX-License-Identifier: MIT */
/* Policy around key management: the regeneration hold and backup attestation. */
#ifndef ITL_TOOLS_KEY_POLICY_H
#define ITL_TOOLS_KEY_POLICY_H

#include "tools/cli.h"

/* Before `key generate` or `key import` replaces the key of a role (its label is the config's
 * recovery or TFTP label): check publisher-only, the regeneration hold and (for the TFTP key)
 * that the recovery key's backup is attested, then record the event in one locked step.
 * `what` names the command for the audit log. Prints its own error; returns an EXIT_* code. */
struct tok;
int key_policy_reserve_regen(const struct cli_global *g, struct tok *t, const char *label,
                             const char *what);

/* `key attach-cert` on a role key makes it the role's signing identity: the same rules and the
 * same recorded event as a regeneration (the key is already there). */
int key_policy_reserve_attach(const struct cli_global *g, struct tok *t, const char *label);
/* `key delete` of a role key: pol_check_delete (a denial is printed and audited); a role label
 * without --config is refused. EXIT_OK for keys of no role. */
int key_policy_check_delete(const struct cli_global *g, struct tok *t, const char *label);
/* One audit record of a key operation that succeeded (only with --config: its audit log). */
void key_policy_audit(const struct cli_global *g, const char *what, const char *label,
                      const char *result, const char *message);

/* itl-sign key attest-backup ... (argv[0] is "attest-backup"). */
int cmd_key_attest_backup(int argc, char **argv, struct cli_global *g);

#endif
