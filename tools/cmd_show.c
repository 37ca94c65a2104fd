/* SPDX-License-Identifier: MIT */
/* itl-sign show: print a trust file as CUCM's `show itl` does and check its signature. */
#include "tools/show.h"

#include <stdio.h>

/* ---- show ---- */

static void show_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign show FILE [--json] [--cert PEM | --trust ITL]\n"
            "  Print a .tlv (ITL/CTL), .sgn or .enc.sgn as CUCM's 'show itl' does and check its\n"
            "  signature: an ITL/CTL with its own signer record; a .sgn/.enc.sgn with --cert\n"
            "  (the signer certificate) or --trust (an ITL whose TFTP, CCM or CCM+TFTP record\n"
            "  names the signer).\n"
            "exit: 0 shown and verified (or not checkable without a certificate), 1 signature\n"
            "  invalid, 3 unreadable or malformed file\n");
}

int cmd_show(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"cert", required_argument, NULL, OPT_CERT},
                                             {"trust", required_argument, NULL, OPT_TRUST},
                                             {NULL, 0, NULL, 0}};
    struct show_opts o = {0};
    struct checker c;
    struct input in;
    struct verdict v;
    long signer;
    int rc, bad = 0;

    rc = show_load_and_verify(argc, argv, g, longopts, show_usage, &o, &in, &c, &v);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    /* The record the header names as signer ("This etoken was used ..."). */
    signer = itl_find_signer_record(&in.f);
    if (g->json) {
        for (size_t i = 0; i < in.f.n_records; i++) {
            struct itl_error err;
            bad += itl_record_check(&in.f.records[i], &err) != 0;
        }
        show_print_json(stdout, &in, &v, signer, bad);
    } else {
        show_print_header(stdout, &in.f);
        if (in.f.kind == ITL_KIND_TLV)
            bad = show_print_records(stdout, &in.f, signer);
        else {
            fprintf(stdout, "\nPayload: %zu bytes%s\n", in.f.payload.len,
                    in.f.kind == ITL_KIND_ENC_SGN ? " of AES-128-CBC ciphertext" : "");
        }
        show_print_verdict(stdout, &in.f, &v, c.have_trust ? &c.trust.f : NULL);
    }
    rc = show_exit_code(v.outcome);
    if (rc == EXIT_OK && bad > 0)
        rc = EXIT_INPUT;
    if (fflush(stdout) != 0)
        rc = EXIT_OUTPUT;
    show_free_checker(&c);
    show_free_input(&in);
    return rc;
}
