/* SPDX-License-Identifier: MIT */
/* itl-sign strip: the original bytes of a .sgn. */
#include "tools/show.h"

#include <stdio.h>

/* ---- strip ---- */

static void strip_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign strip FILE.sgn [-o OUT]\n"
               "  Write the original bytes of a .sgn (the file after its header) to OUT, or to\n"
               "  standard output. The signature is not checked: use verify for that.\n");
}

static int write_stdout(const uint8_t *p, size_t n)
{
    return (n == 0 || fwrite(p, 1, n, stdout) == n) && fflush(stdout) == 0 ? 0 : -1;
}

int cmd_strip(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS, {"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
    struct show_opts o = {0};
    const char *out = NULL;
    struct input in;
    struct itl_error werr;
    int rc;

    rc = show_parse_options(argc, argv, g, "o:", longopts, strip_usage, &o, &out);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (o.cert || o.trust) {
        strip_usage(stderr);
        return EXIT_USAGE;
    }
    if (g->json && !out) {
        cli_error("strip --json: give -o FILE (the bytes would mix with the JSON document)");
        return EXIT_USAGE;
    }
    rc = show_load_input(argv[optind], ITL_KIND_AUTO, &in);
    if (rc != EXIT_OK)
        return rc;
    if (in.f.kind != ITL_KIND_SGN) {
        cli_error("%s is %s, not a .sgn: there is nothing to strip", in.path,
                  in.f.kind == ITL_KIND_TLV ? "an ITL/CTL (.tlv)"
                                            : "encrypted (.enc.sgn; itl-sign decrypt reads it)");
        rc = EXIT_INPUT;
    } else if (out) {
        if (cli_write_file_atomic(out, in.f.payload.ptr, in.f.payload.len, cli_output_mode(in.mode),
                                  &werr) != 0) {
            cli_error("%s", werr.msg);
            rc = EXIT_OUTPUT;
        } else if (g->json) {
            struct cli_json_output res = {out, in.f.payload.len, 1};
            cli_json_result("strip", &res, 1, "the original bytes of the .sgn", NULL, 0);
        }
    } else if (write_stdout(in.f.payload.ptr, in.f.payload.len) != 0) {
        cli_error("cannot write to standard output");
        rc = EXIT_OUTPUT;
    }
    show_free_input(&in);
    return rc;
}
