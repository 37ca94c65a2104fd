/* SPDX-License-Identifier: MIT */
/*
 * The two text parsers of the policy layer on the same input: the YAML configuration and the
 * JSON state file. Properties: no crash, no leak, and a state that parses formats back to text
 * that parses to the same state (the writer and the reader agree).
 */
#include "policy/policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void state_round_trip(const struct pol_state *st)
{
    struct pol_state again;
    struct itl_error err;
    char *text, *text2;
    size_t len, len2;

    if (pol_state_format(st, &text, &len) != 0)
        abort();
    if (pol_state_parse(text, len, &again, &err) != 0)
        abort(); /* the writer produced something the reader refuses */
    if (pol_state_format(&again, &text2, &len2) != 0)
        abort();
    if (len != len2 || memcmp(text, text2, len) != 0)
        abort(); /* not a fixed point: a field changed on the way */
    free(text);
    free(text2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pol_config cfg;
    struct pol_state st;
    struct itl_error err;

    if (size > 256 * 1024)
        return 0;
    pol_config_parse((const char *)data, size, "fuzz.yaml", &cfg, &err);
    if (pol_state_parse((const char *)data, size, &st, &err) == 0)
        state_round_trip(&st);
    return 0;
}
