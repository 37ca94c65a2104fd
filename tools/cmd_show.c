/* SPDX-License-Identifier: MIT */
/* itl-sign show: print a trust file (readable, as CUCM's `show itl` prints it, or JSON) and
 * check its signature. */
#include "tools/show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- show ---- */

static void show_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign show FILE [--json | --cucm] [--cert PEM | --trust ITL]\n"
            "  Print a .tlv (ITL/CTL), .sgn or .enc.sgn and check its signature: an ITL/CTL\n"
            "  with its own signer record; a .sgn/.enc.sgn with --cert (the signer certificate)\n"
            "  or --trust (an ITL whose TFTP, CCM or CCM+TFTP record names the signer).\n"
            "  The checksum block (MD5, SHA-1 of the file) comes first, as on CUCM.\n"
            "  --cucm  an ITL/CTL exactly as CUCM's 'show itl' prints it (its tag spellings,\n"
            "          tabs, no decoded values where CUCM prints none), to diff against CUCM\n"
            "exit: 0 shown and verified (or not checkable without a certificate), 1 signature\n"
            "  invalid, 3 unreadable or malformed file\n");
}

/*
 * --cucm is taken out of argv here: the option parser of show, verify and strip
 * (show_parse_options) knows only the options the three share. Everything after "--" is left
 * alone. *args is malloc'd (argc + 1 entries); returns the new argc, or -1 out of memory.
 */
static int take_cucm_option(int argc, char **argv, char ***args, int *cucm)
{
    int n = 0, rest = 0;

    *cucm = 0;
    *args = calloc((size_t)argc + 1, sizeof **args);
    if (!*args)
        return -1;
    for (int i = 0; i < argc; i++) {
        if (!rest && i > 0 && strcmp(argv[i], "--cucm") == 0) {
            *cucm = 1;
            continue;
        }
        if (strcmp(argv[i], "--") == 0)
            rest = 1;
        (*args)[n++] = argv[i];
    }
    return n;
}

static int print_cucm(const struct input *in, long signer, const struct verdict *v)
{
    struct stat st;
    time_t mtime;

    if (stat(in->path, &st) != 0)
        return show_print_cucm(stdout, stderr, &in->f, signer, v, NULL);
    mtime = st.st_mtime;
    return show_print_cucm(stdout, stderr, &in->f, signer, v, &mtime);
}

static int print_readable(const struct input *in, const struct checker *c, long signer,
                          const struct verdict *v)
{
    int bad = 0;

    show_print_header(stdout, &in->f);
    if (in->f.kind == ITL_KIND_TLV)
        bad = show_print_records(stdout, &in->f, signer);
    else {
        fprintf(stdout, "\nPayload: %zu bytes%s\n", in->f.payload.len,
                in->f.kind == ITL_KIND_ENC_SGN ? " of AES-128-CBC ciphertext" : "");
    }
    show_print_verdict(stdout, &in->f, v, c->have_trust ? &c->trust.f : NULL);
    return bad;
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
    char **args;
    long signer;
    int rc, bad, cucm, n = take_cucm_option(argc, argv, &args, &cucm);

    if (n < 0) {
        cli_error("show: out of memory");
        return EXIT_OUTPUT;
    }
    rc = show_load_and_verify(n, args, g, longopts, show_usage, &o, &in, &c, &v);
    free(args);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (cucm && (g->json || in.f.kind != ITL_KIND_TLV)) {
        cli_error("show: %s", g->json ? "--cucm and --json are alternatives; give one"
                                      : "--cucm prints ITL/CTL files only (CUCM's show itl "
                                        "has no form for a .sgn)");
        rc = EXIT_USAGE;
        goto out;
    }
    /* The record the header names as signer ("This etoken was used ..."). */
    signer = itl_find_signer_record(&in.f);
    if (g->json) {
        bad = show_count_bad_records(&in.f);
        show_print_json(stdout, &in, &v, signer, bad);
        cli_json_emitted();
    } else if (cucm) {
        bad = print_cucm(&in, signer, &v);
    } else {
        bad = print_readable(&in, &c, signer, &v);
    }
    rc = show_exit_code(v.outcome);
    if (rc == EXIT_OK && bad > 0)
        rc = EXIT_INPUT;
    if (fflush(stdout) != 0)
        rc = EXIT_OUTPUT;
out:
    show_free_checker(&c);
    show_free_input(&in);
    return rc;
}
