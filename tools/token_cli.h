/* SPDX-License-Identifier: MIT */
/*
 * tools: opening the token named by the global options (--module, --token, --pin-file,
 * --pin-fd) and logging in, for every command that works in direct mode.
 */
#ifndef ITL_TOOLS_TOKEN_CLI_H
#define ITL_TOOLS_TOKEN_CLI_H

#include "tools/cli.h"

struct tok;
struct tok_pin;
struct itl_error;

/* The PIN --pin-file or --pin-fd give (one of them); *pin stays empty when neither is given
 * (pin-source, a PIN pad, a token without login or a prompt then decide). */
int cli_read_pin(const struct cli_global *g, struct tok_pin *pin, struct itl_error *te);

/* Open the token --token names (with --module, default the p11-kit proxy) and log in. The PIN
 * comes from --pin-file, --pin-fd, the URI's pin-source, or a no-echo prompt when stdin is a
 * terminal; tokens that need no login (or have a PIN pad) are opened without one. Prints its own
 * error; returns an EXIT_* code (EXIT_OK with *out set on success). */
int cli_open_token(const struct cli_global *g, struct tok **out);
/* The same; with login == 0 it logs in only when a PIN was given (public objects only). */
int cli_open_token_opt(const struct cli_global *g, int login, struct tok **out);
/* The PIN in FILE for the open token T, unless T has a PIN pad: then FILE is not read, *pin
 * stays empty and a warning names WHAT (the option that gave FILE) as ignored. */
int cli_token_pin_file(struct tok *t, const char *file, const char *what, struct tok_pin *pin,
                       struct itl_error *err);

#endif
