/* SPDX-License-Identifier: MIT */
/*
 * What the commands that send requests to the backend share (reset, build, sign, encrypt,
 * decrypt, status): their options, filling a request, one call, reporting its result, and where
 * an output goes (sign_common.c).
 */
#ifndef ITL_TOOLS_SIGN_COMMON_H
#define ITL_TOOLS_SIGN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/backend.h"
#include "tools/cli.h"

/* Inputs are bounded: the service refuses larger frames anyway, and an ITL is < 64 KiB. */
#define SIGN_MAX_INPUT_BYTES (4u << 20)

/* Options shared by the signing commands. */
enum {
    OPT_OUT_DIR = OPT_FIRST_COMMAND_OPTION,
    OPT_DIGEST,
    OPT_FILENAME,
    OPT_TIMESTAMP,
    OPT_KEY,
    OPT_IN_PLACE,
    OPT_SIGNER,
    OPT_PHONE_CERT,
    OPT_PHONE_KEY,
    OPT_JOBS,
    OPT_LAYOUT,
    OPT_ITL,
    OPT_DRY_RUN,
    OPT_FILES_FROM,
    OPT_NUL,
    OPT_ROLE_BASE = 0x1200, /* build: --sast, --ccm, ... = OPT_ROLE_BASE + role code */
};

struct sign_opts {
    const char *out;     /* -o */
    const char *out_dir; /* --out-dir */
    int digest;
    const char *filename;
    int has_timestamp;
    uint32_t timestamp;
    const char *key;
    int in_place;
    const char *phone_cert;
    const char *phone_key;
    unsigned jobs;
    int layout;
    const char *itl; /* --itl: the ITL the phones hold; the signer's names come from it */
    int dry_run;     /* --dry-run: the policy's decision and the outputs' names, nothing signed */
};

/* reset, build, sign: --dry-run. */
#define SIGN_DRY_RUN_OPTION                                                                        \
    {                                                                                              \
        "dry-run", no_argument, NULL, OPT_DRY_RUN                                                  \
    }

/* sign, encrypt, build: --itl KNOWN.tlv (direct mode). */
#define SIGN_ITL_OPTION                                                                            \
    {                                                                                              \
        "itl", required_argument, NULL, OPT_ITL                                                    \
    }

#define SIGN_LONG_OPTIONS                                                                          \
    CLI_GLOBAL_LONG_OPTIONS, {"output", required_argument, NULL, 'o'},                             \
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},                                         \
        {"digest", required_argument, NULL, OPT_DIGEST},                                           \
        {"filename", required_argument, NULL, OPT_FILENAME},                                       \
        {"timestamp", required_argument, NULL, OPT_TIMESTAMP},                                     \
        {"key", required_argument, NULL, OPT_KEY},                                                 \
    {                                                                                              \
        "jobs", required_argument, NULL, OPT_JOBS                                                  \
    }

/* build's records and options, parsed by build's own parser (cmd_build.c); plan --build
 * takes the same arguments. */
struct sign_build_args {
    struct sign_opts o;
    struct sgn_cert_arg certs[SGN_MAX_BUILD_CERTS]; /* in argument order */
    uint8_t *owned[SGN_MAX_BUILD_CERTS];
    size_t n;
};
/* build's options in argv (argv[0] is the command word); EXIT_OK, or the exit code after the
 * message. Free with sign_build_args_free whatever it returns. */
int sign_build_parse(int argc, char **argv, struct cli_global *g, struct sign_build_args *b);
void sign_build_args_free(struct sign_build_args *b);
/* The FILENAME a build writes: --filename; else -o's name when it is ITLFile.tlv, CTLFile.tlv
 * or no .tlv name; else ITLFile.tlv (CTLFile.tlv for a CTL... name), warned unless quiet. */
const char *sign_build_filename(const struct sign_opts *o, const char *out, int quiet);

/* Parse a command's options; positional arguments remain at argv[optind..]. `extra` handles
 * the command's own options (1 handled, 0 not an option, -1 bad value). --help exits 0. */
int sign_parse_options(int argc, char **argv, struct cli_global *g, struct sign_opts *o,
                       const struct option *longopts, void (*usage)(FILE *),
                       int (*extra)(int opt, const char *arg, void *ctx), void *ctx);
void sign_fill_request(struct sgn_request *req, enum pol_op op, const struct sign_opts *o);
const char *sign_base_name(const char *path);
/* Report a finished request (its message on stdout, not under --json or --quiet; its warning
 * and error on stderr); returns its exit code. */
int sign_report(const char *what, const struct sgn_result *r, int quiet);
/* After the outputs of reset, build or encrypt were written (or, dry_run, would be): "written:
 * PATH" lines, or under --json the command's one document (cli_json_result). */
void sign_print_outputs(const char *command, const struct sgn_result *r, const char *const *paths,
                        size_t n, int dry_run, const struct cli_global *g);
/* mode: cli_output_mode() of the input, or 0644 for what only public certificates made. */
int sign_write_output(const char *path, const uint8_t *data, size_t len, unsigned mode);
/* One request through a fresh connection: reset, build, encrypt, status. */
int sign_call_once(struct cli_global *g, const struct sgn_request *req, struct sgn_result *r,
                   char **status_json);
/* Where an output goes: `name`, from the reply, in out_dir (NULL: next to the input). The name
 * must be a plain file name, so a reply never chooses another directory; a path that does not
 * fit is an error, never a truncated other name. 0, or -1 with err. */
int sign_output_path(const char *out_dir, const char *input, const char *name, char *out,
                     size_t out_size, struct itl_error *err);

#endif
