/* SPDX-License-Identifier: MIT */
/* key attest-backup: the proof runs here, the engine records it (state and audit). */
#ifndef ITL_TOOLS_KEY_POLICY_H
#define ITL_TOOLS_KEY_POLICY_H

#include "tools/cli.h"

/* itl-sign key attest-backup ... (argv[0] is "attest-backup"). */
int cmd_key_attest_backup(int argc, char **argv, struct cli_global *g);

#endif
