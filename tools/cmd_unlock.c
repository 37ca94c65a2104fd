/* SPDX-License-Identifier: MIT */
/*
 * itl-sign unlock --key recovery [--for DURATION]   and   itl-sign lock --key recovery
 *
 * keys.recovery.unlock: manual keeps the recovery key on a token of its own whose login the
 * service does not hold; unlock sends that token's PIN (read like every PIN: --pin-file,
 * --pin-fd, or a no-echo prompt on the terminal; never the command line) and the service logs in
 * for DURATION (default and at most keys.recovery.unlock-max). A service operation only: the
 * unlock lives in the service, whose timer locks it again.
 */
#include "tools/sign_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkcs11/token.h"
#include "policy/policy.h"
#include "tools/token_cli.h"

enum { OPT_FOR = OPT_FIRST_COMMAND_OPTION + 0x40 };

struct unlock_opts {
    int lock;
    const char *key;
    long seconds; /* 0 = the service's unlock-max */
};

static void unlock_usage(FILE *f)
{
    fprintf(
        f, "usage: itl-sign unlock --key recovery [--for DURATION] [--pin-file FILE | --pin-fd N]\n"
           "The recovery key becomes usable for DURATION (90s, 10m, 1h; default and at most the\n"
           "service's keys.recovery.unlock-max), then locks by itself. The PIN is the recovery\n"
           "token's (or the key's own): from --pin-file, --pin-fd, or asked on the terminal.\n"
           "Lock it sooner with itl-sign lock --key recovery.\n");
}

static void lock_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign lock --key recovery\n"
               "The recovery key is locked now (the recovery token logged out).\n");
}

static int unlock_option(int opt, const char *arg, void *ctx)
{
    struct unlock_opts *u = ctx;

    switch (opt) {
    case OPT_KEY:
        u->key = arg;
        return 1;
    case OPT_FOR:
        u->seconds = pol_parse_duration(arg);
        if (u->seconds <= 0 || u->seconds > 86400) {
            cli_error("%s: --for '%s' is not a duration of 1 s to 1 d (90s, 10m, 1h)",
                      u->lock ? "lock" : "unlock", arg);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

/* The recovery token's PIN: --pin-file / --pin-fd, else a prompt on the terminal. */
static int unlock_pin(const struct cli_global *g, struct tok_pin *pin)
{
    struct itl_error te = {0};

    if (cli_read_pin(g, pin, &te) != 0) {
        cli_error("unlock: %s", te.msg);
        return cli_exit_for(&te);
    }
    if (pin->bytes)
        return EXIT_OK;
    if (!isatty(STDIN_FILENO)) {
        cli_error("unlock: the recovery token's PIN is needed: give --pin-file or --pin-fd, or run "
                  "on a terminal to be asked");
        return EXIT_USAGE;
    }
    if (tok_pin_prompt("PIN of the recovery key's token: ", pin, &te) != 0) {
        cli_error("unlock: %s", te.msg);
        return cli_exit_for(&te);
    }
    return EXIT_OK;
}

int cmd_unlock(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"key", required_argument, NULL, OPT_KEY},
                                             {"for", required_argument, NULL, OPT_FOR},
                                             {NULL, 0, NULL, 0}};
    struct unlock_opts u = {.lock = strcmp(argv[0], "lock") == 0};
    const struct cli_options co = {.longopts = longopts,
                                   .usage = u.lock ? lock_usage : unlock_usage,
                                   .option = unlock_option,
                                   .ctx = &u};
    const char *what = u.lock ? "lock" : "unlock";
    struct sgn_request req = {.op = POL_OP_UNLOCK};
    struct sgn_result r = {0};
    struct tok_pin pin = {0};
    int rc = cli_parse_options(argc, argv, g, &co);

    if (rc == CLI_HELP_SHOWN)
        return EXIT_OK;
    if (rc != EXIT_OK)
        return rc;
    if (optind != argc || !u.key) {
        cli_error("%s: %s", what,
                  optind != argc ? "no arguments besides the options" : "--key recovery is needed");
        (u.lock ? lock_usage : unlock_usage)(stderr);
        return EXIT_USAGE;
    }
    if (g->token || g->direct) {
        cli_error("%s: a service operation: the unlock lives in itl-signd (no --token, --direct)",
                  what);
        return EXIT_USAGE;
    }
    if (u.lock && (u.seconds || g->pin_file || g->pin_fd >= 0)) {
        cli_error("lock: takes no --for and no PIN");
        return EXIT_USAGE;
    }
    if (!u.lock && (rc = unlock_pin(g, &pin)) != EXIT_OK)
        return rc;
    req.key = u.key;
    req.lock = u.lock;
    req.unlock_s = (unsigned)u.seconds;
    req.pin = pin.bytes;
    req.pin_len = pin.len;
    rc = sign_call_once(g, &req, &r, NULL);
    tok_pin_wipe(&pin);
    if (rc == EXIT_OK)
        rc = sign_report(what, &r, g->quiet);
    if (rc == EXIT_OK && cli_json_on())
        cli_json_result(what, NULL, 0, r.message, r.warning, 0);
    sgn_result_free(&r);
    return rc;
}
