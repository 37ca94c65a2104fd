/* SPDX-License-Identifier: MIT */
/* What reset, build, sign, encrypt, decrypt and status share: options, the request, one call
 * to the backend, reporting its result, and where outputs go. */
#include "tools/sign_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/itl.h"

static int parse_timestamp(const char *text, uint32_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno || *end || end == text || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* SOURCE_DATE_EPOCH makes output reproducible, as in other build tools. */
static int timestamp_from_env(struct sign_opts *o)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (o->has_timestamp || !sde)
        return 0;
    if (parse_timestamp(sde, &o->timestamp) != 0) {
        cli_error("SOURCE_DATE_EPOCH='%s' is not a Unix time", sde);
        return -1;
    }
    o->has_timestamp = 1;
    return 0;
}

/* The options the signing commands share: returns 1 handled, 0 not ours, -1 bad value. */
static int sign_option(struct sign_opts *o, int opt, const char *arg)
{
    char *end;

    switch (opt) {
    case 'o':
        o->out = arg;
        return 1;
    case OPT_OUT_DIR:
        o->out_dir = arg;
        return 1;
    case OPT_DIGEST:
        o->digest = itl_digest_from_name(arg);
        if (o->digest < 0) {
            cli_error("--digest: '%s' is not one of sha1, sha256, sha512", arg);
            return -1;
        }
        return 1;
    case OPT_FILENAME:
        o->filename = arg;
        return 1;
    case OPT_TIMESTAMP:
        if (parse_timestamp(arg, &o->timestamp) != 0) {
            cli_error("--timestamp: '%s' is not a Unix time (seconds)", arg);
            return -1;
        }
        o->has_timestamp = 1;
        return 1;
    case OPT_KEY:
    case OPT_SIGNER:
        o->key = arg;
        return 1;
    case OPT_IN_PLACE:
        o->in_place = 1;
        return 1;
    case OPT_PHONE_CERT:
        o->phone_cert = arg;
        return 1;
    case OPT_PHONE_KEY:
        o->phone_key = arg;
        return 1;
    case OPT_ITL:
        o->itl = arg;
        return 1;
    case OPT_DRY_RUN:
        o->dry_run = 1;
        return 1;
    case OPT_LAYOUT:
        if (strcmp(arg, "cucm") == 0)
            o->layout = 0;
        else if (strcmp(arg, "certutils") == 0)
            o->layout = 1;
        else {
            cli_error("--layout: '%s' is not one of cucm, certutils", arg);
            return -1;
        }
        return 1;
    case OPT_JOBS:
        errno = 0;
        o->jobs = (unsigned)strtoul(arg, &end, 10);
        if (errno || *end || o->jobs == 0 || o->jobs > 64) {
            cli_error("--jobs: '%s' is not a number from 1 to 64", arg);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

/* --itl: read once, held until the process ends (every request of a batch names it). */
static struct {
    uint8_t *data;
    size_t len;
} known_itl;

static int load_known_itl(const char *path, const char *from)
{
    struct itl_error err;
    unsigned mode;

    if (cli_read_input(path, SIGN_MAX_INPUT_BYTES, &known_itl.data, &known_itl.len, &mode, &err) !=
        0) {
        cli_error("%s: %s", from, err.msg);
        known_itl.len = 0;
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

static int takes_itl(const struct option *longopts)
{
    for (; longopts->name; longopts++)
        if (longopts->val == OPT_ITL)
            return 1;
    return 0;
}

/* No --itl, but --config names `itl:` -- the client reads it (in direct mode and through the
 * service alike) and sends it as --itl would; the command line wins. */
static int itl_from_config(const struct cli_global *g, struct sign_opts *o)
{
    static char path[sizeof((struct pol_config *)0)->itl];
    char from[sizeof path + 1200];
    struct pol_config *cfg = malloc(sizeof *cfg);
    struct itl_error pe;
    int rc = EXIT_OK;

    if (!cfg) {
        cli_error("out of memory reading %s", g->config);
        return EXIT_INPUT;
    }
    if (pol_config_load(g->config, cfg, &pe) != 0) {
        cli_error("%s", pe.msg);
        rc = cli_exit_for_io(&pe, EXIT_USAGE);
    } else if (cfg->itl[0]) {
        snprintf(path, sizeof path, "%s", cfg->itl);
        snprintf(from, sizeof from, "config key 'itl' of %s", g->config);
        rc = load_known_itl(path, from);
        if (rc == EXIT_OK)
            o->itl = path;
    }
    free(cfg);
    return rc;
}

/* Parse a command's options; positional arguments remain at argv[optind..]. */
struct sign_option_ctx {
    struct sign_opts *o;
    int (*extra)(int opt, const char *arg, void *ctx);
    void *extra_ctx;
};

static int sign_or_extra_option(int opt, const char *arg, void *ctx)
{
    struct sign_option_ctx *c = ctx;
    int r = sign_option(c->o, opt, arg);

    if (r == 0 && c->extra)
        r = c->extra(opt, arg, c->extra_ctx);
    return r;
}

int sign_parse_options(int argc, char **argv, struct cli_global *g, struct sign_opts *o,
                       const struct option *longopts, void (*usage)(FILE *),
                       int (*extra)(int opt, const char *arg, void *ctx), void *ctx)
{
    struct sign_option_ctx c = {o, extra, ctx};
    struct cli_options opts = {.shortopts = "o:0",
                               .longopts = longopts,
                               .usage = usage,
                               .option = sign_or_extra_option,
                               .ctx = &c};
    int rc = cli_parse_options(argc, argv, g, &opts);

    if (rc == CLI_HELP_SHOWN)
        exit(EXIT_OK);
    if (rc != EXIT_OK)
        return rc;
    if (o->itl && load_known_itl(o->itl, "--itl") != EXIT_OK)
        return EXIT_INPUT;
    if (!o->itl && g->config && takes_itl(longopts)) {
        rc = itl_from_config(g, o);
        if (rc != EXIT_OK)
            return rc;
    }
    return timestamp_from_env(o) ? EXIT_USAGE : EXIT_OK;
}

void sign_fill_request(struct sgn_request *req, enum pol_op op, const struct sign_opts *o)
{
    memset(req, 0, sizeof *req);
    req->op = op;
    req->digest = o->digest > 0 ? o->digest : 0;
    req->has_timestamp = o->has_timestamp;
    req->timestamp = o->timestamp;
    req->out_filename = o->filename;
    req->key = o->key;
    req->dry_run = o->dry_run;
    if (o->itl) {
        req->known_itl = known_itl.data;
        req->known_itl_len = known_itl.len;
    }
}

const char *sign_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Report a finished request; returns its exit code. */
int sign_report(const char *what, const struct sgn_result *r, int quiet)
{
    if (r->warning[0])
        cli_warn("%s", r->warning);
    if (r->status != SGN_OK) {
        cli_error("%s: %s", what, r->message);
        return backend_exit_code(r->status);
    }
    if (!quiet && !cli_json_on())
        printf("%s\n", r->message);
    return EXIT_OK;
}

void sign_print_outputs(const char *command, const struct sgn_result *r, const char *const *paths,
                        size_t n, int dry_run, const struct cli_global *g)
{
    struct cli_json_output outs[2];

    if (!cli_json_on()) {
        for (size_t i = 0; i < n && !g->quiet; i++)
            printf("%s: %s\n", dry_run ? "would write" : "written", paths[i]);
        return;
    }
    for (size_t i = 0; i < n && i < 2; i++)
        outs[i] = (struct cli_json_output){
            .path = paths[i], .bytes = i ? r->out2_len : r->out_len, .written = !dry_run};
    cli_json_result(command, outs, n < 2 ? n : 2, r->message, r->warning, dry_run);
}

/* mode: cli_output_mode() of the input, or 0644 for what only public certificates made. */
int sign_write_output(const char *path, const uint8_t *data, size_t len, unsigned mode)
{
    struct itl_error err;
    if (cli_write_file_atomic(path, data, len, mode, &err) != 0) {
        cli_error("%s (nothing was written)", err.msg);
        return EXIT_OUTPUT;
    }
    return EXIT_OK;
}

/* One request through a fresh connection: reset, build, encrypt, status. */
int sign_call_once(struct cli_global *g, const struct sgn_request *req, struct sgn_result *r,
                   char **status_json)
{
    struct backend b;
    int rc = backend_run(g, &b, req, r, status_json);

    backend_close(&b);
    return rc;
}

/* Where an output goes: `name`, from the reply, in --out-dir or next to the input. The name
 * must be a plain file name, so a reply never chooses another directory; a path that does not
 * fit is an error, never a truncated other name. 0, or -1 with err. */
int sign_output_path(const char *out_dir, const char *input, const char *name, char *out,
                     size_t out_size, struct itl_error *err)
{
    const char *slash = strrchr(input, '/');
    int n;

    if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        err_set(err, ITL_E_INPUT,
                "the output name '%.200s' is not a plain file name; nothing was "
                "written",
                name);
        return -1;
    }
    if (out_dir)
        n = snprintf(out, out_size, "%s/%s", out_dir, name);
    else if (slash)
        n = snprintf(out, out_size, "%.*s/%s", (int)(slash - input), input, name);
    else
        n = snprintf(out, out_size, "%s", name);
    if (n < 0 || (size_t)n >= out_size) {
        err_set(err, ITL_E_INPUT, "the output path for %s is too long; nothing was written", input);
        return -1;
    }
    return 0;
}
