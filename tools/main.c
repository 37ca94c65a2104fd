/* SPDX-License-Identifier: MIT */
/* itl-sign: dispatch to a command. */
#include "signer/signer.h"
#include "tools/cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifndef ITL_SIGN_VERSION
#define ITL_SIGN_VERSION "0.1.0"
#endif

struct command {
    const char *name;
    cli_command_fn fn;
    const char *summary;
};

static const struct command commands[] = {
    {"show", cmd_show, "print a .tlv/.sgn/.enc.sgn as CUCM's 'show itl' does"},
    {"verify", cmd_verify, "check a file's signature (--trust: would a phone accept it?)"},
    {"strip", cmd_strip, "the original bytes of a .sgn"},
    {"reset", cmd_reset, "re-sign an ITL with the recovery key (utils itl reset)"},
    {"build", cmd_build, "a new ITL/CTL signed by a token key"},
    {"sign", cmd_sign, "sign config files (.sgn) with the TFTP key, many per call"},
    {"encrypt", cmd_encrypt, "encrypted config (.enc.sgn) and its short .sgn"},
    {"decrypt", cmd_decrypt, "decrypt a .enc.sgn with the phone's key (support)"},
    {"status", cmd_status, "service and token health, policy state"},
    {"coverage", cmd_coverage, "which phones take the current ITL (fleet reports)"},
    {"plan", cmd_plan, "what each phone would do with a proposed ITL (no token)"},
    {"publish", cmd_publish, "put an ITL or configs in every TFTP root or none"},
    {"key", cmd_key, "key import|generate|list|export-cert|attest-backup"},
    {"unlock", cmd_unlock, "make the recovery key usable for a while (keys.recovery.unlock)"},
    {"lock", cmd_unlock, "make the recovery key unusable again now"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: itl-sign [GLOBAL OPTIONS] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nglobal options (before or after the command):\n"
            "  --token URI       direct mode: open the PKCS#11 token named by this RFC 7512 URI\n"
            "  --direct          direct mode on the token of --config (token.uri, .module,\n"
            "                    .pin-file)\n"
            "  --module PATH     PKCS#11 module (path or p11-kit name; default: p11-kit proxy)\n"
            "  --pin-file PATH   user PIN, only trailing CR/LF stripped (mode 0600 or stricter)\n"
            "  --pin-fd N        read the user PIN from file descriptor N\n"
            "  --config FILE     policy and defaults (itl-signd.yaml)\n"
            "  --socket PATH     service socket (default /run/itl-sign/socket)\n"
            "  --timeout SECONDS wait this long for each reply of the service (default 60)\n"
            "  --follow-symlinks read input files through symbolic links (refused by default)\n"
            "  --json            machine-readable output\n"
            "  --quiet           print errors only\n"
            "  --version, --help\n"
            "\n'itl-sign COMMAND --help' for a command's options; man itl-sign for the rest.\n");
}

/* --json anywhere before "--" (also after a bad option that stops the parse): an error
 * before the option is reached is still a JSON document. */
static int wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            return 1;
    return 0;
}

static int run(int argc, char **argv);

int main(int argc, char **argv)
{
    cli_json_set(wants_json(argc, argv));
    return cli_json_finish(run(argc, argv));
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
    struct cli_global g = {.pin_fd = -1};
    int opt;

    /* Past RLIMIT_FSIZE a write fails with EFBIG and the command reports it (exit 6, nothing
     * written) instead of dying of SIGXFSZ with a core. */
    signal(SIGXFSZ, SIG_IGN);

    /* getopt's messages would print "--pi=VALUE" whole: an unknown option is named here. */
    opterr = 0;
    /* '+' stops at the command name: the rest belongs to the command. */
    while ((opt = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
        int r = cli_global_option(&g, opt, optarg);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (opt == 'V') {
            sgn_print_versions(stdout, "itl-sign", ITL_SIGN_VERSION);
            return EXIT_OK;
        }
        if (opt == 'h' || opt == OPT_HELP) {
            usage(stdout);
            return EXIT_OK;
        }
        if (opt == '?' && optopt == OPT_PIN)
            return cli_refuse_pin_option(); /* '--pin' at the end, with no value */
        if (opt == '?' && optind > 1 && strncmp(argv[optind - 1], "--", 2) == 0)
            cli_error("unknown or ambiguous option '%.*s'", (int)strcspn(argv[optind - 1], "="),
                      argv[optind - 1]);
        else if (opt == '?')
            cli_error("unknown option '-%c'", optopt > 0 && optopt < 0x100 ? optopt : '?');
        usage(stderr);
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[optind], commands[i].name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0; /* full getopt reset for the command's own parser */
            return commands[i].fn(sub_argc, sub_argv, &g);
        }
    }
    cli_error("unknown command '%s' (itl-sign --help lists them)", argv[optind]);
    return EXIT_USAGE;
}
