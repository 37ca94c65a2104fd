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

/* itl-sign key attest-backup ... (argv[0] is "attest-backup"). */
int cmd_key_attest_backup(int argc, char **argv, struct cli_global *g);

#endif
