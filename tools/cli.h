/* SPDX-License-Identifier: MIT */
/*
 * tools: the itl-sign command line. Each command lives in its own file (cmd_*.c; the key
 * subcommands in key_*.c) and has the signature of cli_command_fn. What several commands share
 * has a header of its own: show.h (show, verify, strip), sign_common.h (reset, build, sign,
 * encrypt, decrypt, status), key_common.h (key). Every command's options go through
 * cli_parse_options(), so global options may stand before or after the command name, and an
 * error becomes an exit code through cli_exit_for() only.
 */
#ifndef ITL_TOOLS_CLI_H
#define ITL_TOOLS_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"

/* Exit codes (documented in itl-sign(1)). */
enum cli_exit {
    EXIT_OK = 0,
    EXIT_INVALID = 1, /* verify: the file does not verify / would be rejected */
    EXIT_USAGE = 2,   /* bad command line */
    EXIT_INPUT = 3,   /* unreadable or malformed input file */
    EXIT_TOKEN = 4,   /* module, token, PIN, key or mechanism problem */
    EXIT_DENIED = 5,  /* refused by policy or by the service's access rules */
    EXIT_OUTPUT = 6,  /* output could not be written (nothing partial is left) */
    EXIT_SERVICE = 7, /* the service cannot be reached or broke the protocol */
    EXIT_PARTIAL = 8, /* batch: some files failed, the others were written */
};

struct cli_global {
    const char *module;   /* --module PATH|NAME */
    const char *token;    /* --token URI: direct mode */
    const char *pin_file; /* --pin-file PATH */
    int pin_fd;           /* --pin-fd N, -1 when unset */
    const char *config;   /* --config FILE */
    const char *socket;   /* --socket PATH */
    unsigned timeout_ms;  /* --timeout SECONDS: per request to the service; 0 = the default */
    int json;             /* --json */
    int quiet;            /* --quiet */
    /* token.init-args of the config's token.module */
    const char *init_args;
    int mechanism;       /* --mechanism / token.mechanism: 0 auto, 1 raw, 2 hash */
    int mechanism_given; /* --mechanism was given: the config's does not override it */
    int direct;          /* --direct: direct mode with the token of --config (token.uri, .module,
                            .pin-file) */
    int signs_once; /* the command makes one signature: the token layer opens no pool session */
};

/* Long options every command accepts; values >= 0x1000 so they never clash with short ones. */
enum {
    OPT_MODULE = 0x1000,
    OPT_TOKEN,
    OPT_PIN_FILE,
    OPT_PIN_FD,
    OPT_CONFIG,
    OPT_SOCKET,
    OPT_JSON,
    OPT_QUIET,
    OPT_TIMEOUT,
    OPT_FOLLOW_SYMLINKS,
    OPT_PIN, /* known only to be refused: a PIN never goes on the command line */
    OPT_HELP,
    OPT_MECHANISM,
    OPT_DIRECT,
    OPT_FIRST_COMMAND_OPTION = 0x1100 /* commands number their own options from here */
};

#define CLI_GLOBAL_LONG_OPTIONS                                                                    \
    {"module", required_argument, NULL, OPT_MODULE},                                               \
        {"token", required_argument, NULL, OPT_TOKEN},                                             \
        {"pin-file", required_argument, NULL, OPT_PIN_FILE},                                       \
        {"pin-fd", required_argument, NULL, OPT_PIN_FD},                                           \
        {"config", required_argument, NULL, OPT_CONFIG},                                           \
        {"socket", required_argument, NULL, OPT_SOCKET}, {"json", no_argument, NULL, OPT_JSON},    \
        {"quiet", no_argument, NULL, OPT_QUIET},                                                   \
        {"timeout", required_argument, NULL, OPT_TIMEOUT},                                         \
        {"follow-symlinks", no_argument, NULL, OPT_FOLLOW_SYMLINKS},                               \
        {"pin", required_argument, NULL, OPT_PIN}, {"direct", no_argument, NULL, OPT_DIRECT},      \
        {"mechanism", required_argument, NULL, OPT_MECHANISM},                                     \
    {                                                                                              \
        "help", no_argument, NULL, OPT_HELP                                                        \
    }

/* Handles one global option; returns 1 if it was one, 0 if not, -1 on a bad value. */
int cli_global_option(struct cli_global *g, int opt, const char *arg);
/* The refusal of --pin (with or without a value, which is never printed): EXIT_USAGE. */
int cli_refuse_pin_option(void);

/* What a command's option loop needs (tools/options.c). */
struct cli_options {
    const char *shortopts;         /* short options besides -h, e.g. "o:"; NULL for none */
    const struct option *longopts; /* CLI_GLOBAL_LONG_OPTIONS, the command's own, {0} */
    void (*usage)(FILE *f);        /* the usage, or NULL and ... */
    const char *usage_text;        /* ... this text */
    /* The command's own option: 1 taken, 0 not one of its options, -1 bad value (the handler
     * printed why). NULL when the command has none. */
    int (*option)(int opt, const char *arg, void *ctx);
    void *ctx;
};

#define CLI_HELP_SHOWN (-1)

/* Every command's option loop: global options before or after the command name, -h/--help
 * (the usage on stdout: CLI_HELP_SHOWN), and the same error text everywhere ("itl-sign: show:
 * unknown option '--x'", "... option '--cert' needs a value", then the usage on stderr:
 * EXIT_USAGE). EXIT_OK leaves the positional arguments at argv[optind..argc-1]. */
int cli_parse_options(int argc, char **argv, struct cli_global *g, const struct cli_options *o);
/* --direct without --token: the token, module and PIN file of --config's token section, for
 * what the command line does not say (token_cli.c). Prints its own error; EXIT_* code. */
int cli_direct_from_config(struct cli_global *g);

typedef int (*cli_command_fn)(int argc, char **argv, struct cli_global *g);

/* Commands. argv[0] is the command name; getopt state is reset by the caller. */
int cmd_show(int argc, char **argv, struct cli_global *g);
int cmd_verify(int argc, char **argv, struct cli_global *g);
int cmd_strip(int argc, char **argv, struct cli_global *g);
int cmd_key(int argc, char **argv, struct cli_global *g);
int cmd_reset(int argc, char **argv, struct cli_global *g);
int cmd_build(int argc, char **argv, struct cli_global *g);
int cmd_sign(int argc, char **argv, struct cli_global *g);
int cmd_encrypt(int argc, char **argv, struct cli_global *g);
int cmd_decrypt(int argc, char **argv, struct cli_global *g);
int cmd_status(int argc, char **argv, struct cli_global *g);
int cmd_coverage(int argc, char **argv, struct cli_global *g);
int cmd_plan(int argc, char **argv, struct cli_global *g);
int cmd_publish(int argc, char **argv, struct cli_global *g);
int cmd_unlock(int argc, char **argv, struct cli_global *g); /* unlock and lock */

/* ---- Exit codes for errors (tools/exit.c) ---- */

struct itl_error;

/* The one mapping from an error's class to the exit code itl-sign(1) documents: usage 2, input
 * 3, denied 5, verify 1, module/token/PIN/key/mechanism/device 4, internal 7 (as the engine's
 * internal errors already give), none 0. An I/O failure is 3: the file was being read. */
int cli_exit_for(const struct itl_error *err);
/* The same, where an I/O failure (ITL_E_IO) means what the caller says: EXIT_OUTPUT when it
 * was writing an output, EXIT_USAGE for the configuration, EXIT_DENIED for the policy state
 * (refused when it cannot be read: fail closed). */
int cli_exit_for_io(const struct itl_error *err, enum cli_exit io_exit);

/* ---- Helpers shared by the commands (tools/util.c) ---- */

/* Print "itl-sign: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Every input file of every command goes through these. Read a whole file (limit bytes at
 * most): a regular file, never a FIFO, device or directory, and not through a final symbolic
 * link unless --follow-symlinks (cli_set_follow_symlinks). *out is malloc'd. Errors name the
 * path. cli_read_input also gives the file's permission bits (mode may be NULL). */
int cli_read_file(const char *path, size_t limit, uint8_t **out, size_t *len,
                  struct itl_error *err);
int cli_read_input(const char *path, size_t limit, uint8_t **out, size_t *len, unsigned *mode,
                   struct itl_error *err);
void cli_set_follow_symlinks(int on);
/* The mode of an output made from an input of input_mode: never wider than the input (its
 * read/write bits; the umask narrows it further). A 0600 input gives a 0600 .sgn. */
unsigned cli_output_mode(unsigned input_mode);
/* Atomic write (file_replace, common/file.c): the content goes to an unnamed file, fsync, then it
 * takes the name (through a hidden temporary renamed over an existing file), fsync(dir); a kill or
 * RLIMIT_FSIZE leaves no partial file under any name. `mode` is applied under the umask. On
 * any failure the old file (if any) is untouched. */
int cli_write_file_atomic(const char *path, const uint8_t *data, size_t len, unsigned mode,
                          struct itl_error *err);
/* The same without the directory fsync, for a batch that syncs each directory once at the end
 * (cli_sync_parent_dir) before it reports success: the rename is durable only then. */
int cli_write_file_atomic_ex(const char *path, const uint8_t *data, size_t len, unsigned mode,
                             int sync_dir, struct itl_error *err);
int cli_sync_parent_dir(const char *path);
/* A certificate from a PEM or DER file, as DER. *der is malloc'd. */
int cli_read_cert(const char *path, uint8_t **der, size_t *der_len, struct itl_error *err);
/* Print s (n bytes) to f as a JSON string, escaped as json_string (common/json.c) does. */
void cli_json_string(FILE *f, const char *s, size_t n);

/* ---- --json: one document on stdout (tools/json_out.c, docs/json.md) ---- */

void cli_json_set(int on);
int cli_json_on(void);
/* cli_error keeps the first message for the error document. */
void cli_json_record_error(const char *fmt, va_list ap);
/* "usage", "input", "token", ... for an exit code (the error document's "class"). */
const char *cli_exit_class(int code);
/* main(): when --json is on and the command failed without printing its document, print
 * {"error":{"code":N,"class":"...","message":"..."}}; returns code unchanged. */
int cli_json_finish(int code);
/* A command printed its document itself (show, status, ...): no error document follows. */
void cli_json_emitted(void);

/* A small object builder: begin, fields, print (which marks the document emitted). */
struct cli_json {
    struct buf b;
    int fields;
    char outer; /* what cli_json_print closes the document with */
};
void cli_json_begin(struct cli_json *j);
/* A document that is an array (key list); its elements: cli_json_open(j, NULL, '{'). */
void cli_json_begin_list(struct cli_json *j);
void cli_json_str(struct cli_json *j, const char *key, const char *value); /* NULL: null */
void cli_json_int(struct cli_json *j, const char *key, long long value);
void cli_json_bool(struct cli_json *j, const char *key, int value);
void cli_json_raw(struct cli_json *j, const char *key, const char *json);
/* A nested object ('{') or array ('['): open, fields or elements, close with '}' or ']'. */
/* key NULL: an element of the array being built (an object inside an array). */
void cli_json_open(struct cli_json *j, const char *key, char bracket);
void cli_json_close(struct cli_json *j, char bracket);
void cli_json_elem(struct cli_json *j); /* before each array element: the comma */
void cli_json_print(struct cli_json *j);

struct cli_json_output {
    const char *path;
    size_t bytes;
    int written; /* 0 for --dry-run */
};
/* {"command":..,"status":"ok","dry_run":..,"message":..,"outputs":[{"path","bytes","written"}],
 *  "warnings":[..]} */
void cli_json_result(const char *command, const struct cli_json_output *outs, size_t n,
                     const char *message, const char *warning, int dry_run);

#endif
