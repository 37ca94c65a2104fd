/* SPDX-License-Identifier: MIT */
/* itl-sign status: service and token health, policy state. */
#include "tools/sign_common.h"

#include <stdio.h>
#include <stdlib.h>

static void status_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign status [--json]\n"
               "Token present and logged in, keys found, backup attestation and regen hold, pool\n"
               "use and request counters (from the service, or in direct mode from the token).\n");
}

int cmd_status(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct sgn_request req = {.op = POL_OP_STATUS};
    struct sgn_result r = {0};
    char *json = NULL;
    int rc = sign_parse_options(argc, argv, g, &o, longopts, status_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind != argc) {
        status_usage(stderr);
        return EXIT_USAGE;
    }
    rc = sign_call_once(g, &req, &r, &json);
    if (rc == EXIT_OK)
        rc = sign_report("status", &r, 1);
    if (rc == EXIT_OK && json) {
        fputs(json, stdout);
        cli_json_emitted();
    }
    free(json);
    sgn_result_free(&r);
    return rc;
}
