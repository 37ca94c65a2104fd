/* SPDX-License-Identifier: MIT */
/* Opening and logging in to the token the global options name. */
#include "tools/token_cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/token.h"
#include "policy/policy.h"

/* --pin-file and --pin-fd exclude each other: checked before anything is opened or read. */
static int check_pin_options(const struct cli_global *g, struct itl_error *te)
{
    if (g->pin_file && g->pin_fd >= 0) {
        err_set(te, ITL_E_USAGE, "give either --pin-file or --pin-fd, not both");
        return -1;
    }
    return 0;
}

/* The PIN the options give; *pin stays empty when none is given (pin-source, or a token
 * without login then decide). Read only once the token is known not to be a PIN pad. */
static int read_pin(const struct cli_global *g, struct tok_pin *pin, struct itl_error *te)
{
    if (g->pin_file)
        return tok_pin_from_file(g->pin_file, pin, te);
    if (g->pin_fd >= 0)
        return tok_pin_from_fd(g->pin_fd, pin, te);
    return 0;
}

int cli_read_pin(const struct cli_global *g, struct tok_pin *pin, struct itl_error *te)
{
    if (check_pin_options(g, te) != 0)
        return -1;
    return read_pin(g, pin, te);
}

/* A PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH) takes the PIN on the device: the PIN source
 * GIVEN names (NULL: none) is not read at all (an unreadable PIN file is no error), and the
 * user is told once that it is ignored. */
static int is_pin_pad(struct tok *t, const char *given)
{
    struct tok_status st;
    struct itl_error ignored;

    if (!tok_has_pin_pad(t))
        return 0;
    if (!given)
        return 1;
    tok_get_status(t, &st, &ignored); /* the label is set even when the token does not answer */
    cli_warn("token '%s' has a PIN pad (protected authentication path): the PIN given "
             "(%s) is ignored and not read; enter it on the token",
             st.label, given);
    return 1;
}

static const char *pin_source_given(const struct cli_global *g)
{
    if (g->pin_file)
        return "--pin-file or token.pin-file";
    if (g->pin_fd >= 0)
        return "--pin-fd";
    if (g->token && strstr(g->token, "pin-source="))
        return "pin-source in the token URI";
    return NULL;
}

int cli_token_pin_file(struct tok *t, const char *file, const char *what, struct tok_pin *pin,
                       struct itl_error *err)
{
    if (is_pin_pad(t, what))
        return 0;
    return tok_pin_from_file(file, pin, err);
}

static int needs_prompt(struct tok *t, const struct cli_global *g)
{
    struct tok_status st;
    struct itl_error ignored;

    if (g->pin_file || g->pin_fd >= 0 || (g->token && strstr(g->token, "pin-source=")))
        return 0;
    if (tok_get_status(t, &st, &ignored) != 0)
        return 0;
    return (st.flags & CKF_LOGIN_REQUIRED) && !(st.flags & CKF_PROTECTED_AUTHENTICATION_PATH) &&
           isatty(STDIN_FILENO);
}

int cli_open_token_opt(const struct cli_global *g, int login, struct tok **out)
{
    struct tok_options opts = {.module = g->module,
                               .uri = g->token,
                               .init_args = g->init_args,
                               .mechanism = (enum tok_mechanism)g->mechanism,
                               .login_session_only = g->signs_once};
    struct tok_pin pin = {0};
    struct itl_error te = {0};
    struct tok *t = NULL;
    int pin_pad;

    *out = NULL;
    if (!g->token) {
        cli_error("--token URI is needed for direct mode (e.g. --token 'pkcs11:token=itl-sign')");
        return EXIT_USAGE;
    }
    if (check_pin_options(g, &te) != 0) {
        cli_error("%s", te.msg);
        return cli_exit_for(&te);
    }
    if (tok_open(&opts, &t, &te) != 0) {
        cli_error("%s", te.msg);
        return cli_exit_for(&te);
    }
    pin_pad = is_pin_pad(t, pin_source_given(g));
    if (!pin_pad && read_pin(g, &pin, &te) != 0) {
        cli_error("%s", te.msg);
        tok_close(t);
        return cli_exit_for(&te);
    }
    if (login && !pin_pad && !pin.bytes && needs_prompt(t, g)) {
        struct tok_status st;
        char prompt[80];
        tok_get_status(t, &st, &te);
        snprintf(prompt, sizeof prompt, "PIN for token '%s': ", st.label);
        if (tok_pin_prompt(prompt, &pin, &te) != 0) {
            cli_error("%s", te.msg);
            tok_close(t);
            return cli_exit_for(&te);
        }
    }
    if ((login || pin.bytes) && tok_login(t, pin.bytes ? &pin : NULL, &te) != 0) {
        tok_pin_wipe(&pin);
        cli_error("%s", te.msg);
        tok_close(t);
        return cli_exit_for(&te);
    }
    tok_pin_wipe(&pin);
    *out = t;
    return EXIT_OK;
}

int cli_open_token(const struct cli_global *g, struct tok **out)
{
    return cli_open_token_opt(g, 1, out);
}

int cli_direct_from_config(struct cli_global *g)
{
    /* The strings g points at live as long as the process: one config per run. */
    static struct pol_config cfg;
    struct itl_error pe;

    if (!g->direct || g->token)
        return EXIT_OK;
    if (!g->config) {
        cli_error("--direct takes the token from the config: give --config FILE (token.uri), "
                  "or --token URI");
        return EXIT_USAGE;
    }
    if (pol_config_load(g->config, &cfg, &pe) != 0) {
        cli_error("%s", pe.msg);
        return cli_exit_for_io(&pe, EXIT_USAGE);
    }
    if (!cfg.token.uri[0]) {
        cli_error("--direct: %s has no token.uri; give --token URI", g->config);
        return EXIT_USAGE;
    }
    g->token = cfg.token.uri;
    if (!g->module && cfg.token.module[0]) {
        g->module = cfg.token.module;
        if (cfg.token.init_args[0])
            g->init_args = cfg.token.init_args;
    }
    if (!g->pin_file && g->pin_fd < 0 && cfg.token.pin_file[0])
        g->pin_file = cfg.token.pin_file;
    return EXIT_OK;
}
