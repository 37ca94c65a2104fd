/* SPDX-License-Identifier: MIT */
/* The one option loop of every command: global options anywhere, -h/--help, the same errors. */
#include "tools/cli.h"

#include <stdio.h>
#include <string.h>

static void print_usage(const struct cli_options *o, FILE *f)
{
    if (o->usage)
        o->usage(f);
    else if (o->usage_text)
        fputs(o->usage_text, f);
}

/* getopt's own messages are off: every command words its errors the same way. */
static void option_error(int argc, char **argv, int opt)
{
    const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    char shortopt[3] = {'-', (char)optopt, 0};

    /* A short option inside a cluster ("-xo") is not the whole word. */
    if (optopt > 0 && optopt < 0x100 && strncmp(word, "--", 2) != 0)
        word = shortopt;
    /* Only the name: what follows '=' may be a secret ("--pi=1234", an abbreviation of --pin
     * that getopt finds ambiguous). */
    if (opt == ':')
        cli_error("%s: option '%.*s' needs a value", argv[0], (int)strcspn(word, "="), word);
    else
        cli_error("%s: unknown option '%.*s'", argv[0], (int)strcspn(word, "="), word);
}

int cli_parse_options(int argc, char **argv, struct cli_global *g, const struct cli_options *o)
{
    char shortopts[64];
    int opt;

    /* ':' first: a missing value is told apart from an unknown option. */
    snprintf(shortopts, sizeof shortopts, ":h%s", o->shortopts ? o->shortopts : "");
    opterr = 0;
    while ((opt = getopt_long(argc, argv, shortopts, o->longopts, NULL)) != -1) {
        int r;
        if (opt == 'h' || opt == OPT_HELP) {
            print_usage(o, stdout);
            return CLI_HELP_SHOWN;
        }
        if ((opt == '?' || opt == ':') && optopt == OPT_PIN)
            return cli_refuse_pin_option(); /* '--pin' at the end, with no value */
        if (opt == '?' || opt == ':') {
            option_error(argc, argv, opt);
            print_usage(o, stderr);
            return EXIT_USAGE;
        }
        r = cli_global_option(g, opt, optarg);
        if (r == 0 && o->option)
            r = o->option(opt, optarg, o->ctx);
        if (r < 0)
            return EXIT_USAGE; /* the handler said what is wrong with the value */
        if (r == 0) {
            print_usage(o, stderr);
            return EXIT_USAGE;
        }
    }
    return cli_direct_from_config(g);
}
