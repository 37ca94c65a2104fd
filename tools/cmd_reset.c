/* SPDX-License-Identifier: MIT */
/* itl-sign reset: re-sign an ITL with the recovery key (utils itl reset). */
#include "tools/sign_common.h"

#include <stdio.h>
#include <stdlib.h>

static void reset_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign reset ITLFile.tlv (-o OUT | --in-place) [--key recovery|tftp]\n"
            "                      [--timestamp UNIX] [--digest sha1|sha256|sha512] [--dry-run]\n"
            "Re-sign an ITL/CTL with the recovery key (utils itl reset): every record stays\n"
            "byte-identical, the signer fields name the recovery certificate, which must be a\n"
            "SAST record of the file. SOURCE_DATE_EPOCH is honoured.\n");
}

int cmd_reset(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {SIGN_LONG_OPTIONS,
                                             {"in-place", no_argument, NULL, OPT_IN_PLACE},
                                             SIGN_DRY_RUN_OPTION,
                                             {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct sgn_request req;
    struct sgn_result r = {0};
    uint8_t *data;
    size_t len;
    struct itl_error err;
    const char *out;
    unsigned mode;
    int rc = sign_parse_options(argc, argv, g, &o, longopts, reset_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind + 1 != argc || (!o.out && !o.in_place) || (o.out && o.in_place)) {
        reset_usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_read_input(argv[optind], SIGN_MAX_INPUT_BYTES, &data, &len, &mode, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_INPUT;
    }
    out = o.in_place ? argv[optind] : o.out;
    sign_fill_request(&req, POL_OP_RESET, &o);
    req.filename = sign_base_name(argv[optind]);
    req.data = data;
    req.len = len;
    rc = sign_call_once(g, &req, &r, NULL);
    if (rc == EXIT_OK) {
        rc = sign_report("reset", &r, g->quiet);
        if (rc == EXIT_OK && !o.dry_run)
            rc = sign_write_output(out, r.out, r.out_len, cli_output_mode(mode));
        if (rc == EXIT_OK)
            sign_print_outputs("reset", &r, &out, 1, o.dry_run, g);
    }
    sgn_result_free(&r);
    free(data);
    return rc;
}
