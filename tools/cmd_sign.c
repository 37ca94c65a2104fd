/* SPDX-License-Identifier: MIT */
/* itl-sign reset | build | sign | encrypt | decrypt | status. */
#include "tools/cli.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "format/itl.h"
#include "tools/backend.h"

/* Inputs are bounded: the service refuses larger frames anyway, and an ITL is < 64 KiB. */
#define MAX_INPUT_BYTES (4u << 20)

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
};

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

/* Common option handling: returns 1 handled, 0 not ours, -1 bad value. */
static int sign_option(struct sign_opts *o, struct cli_global *g, int opt, const char *arg)
{
    char *end;
    int r = cli_global_option(g, opt, arg);
    if (r != 0)
        return r;
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

/* Parse a command's options; positional arguments remain at argv[optind..]. */
static int parse_options(int argc, char **argv, struct cli_global *g, struct sign_opts *o,
                         const struct option *longopts, void (*usage)(FILE *),
                         int (*extra)(int opt, const char *arg, void *ctx), void *ctx)
{
    int opt;

    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        int r;
        if (opt == 'h' || opt == OPT_HELP) {
            usage(stdout);
            exit(EXIT_OK);
        }
        r = sign_option(o, g, opt, optarg);
        if (r == 0 && extra)
            r = extra(opt, optarg, ctx);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0) {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    return timestamp_from_env(o) ? EXIT_USAGE : EXIT_OK;
}

static void fill_request(struct sgn_request *req, enum pol_op op, const struct sign_opts *o)
{
    memset(req, 0, sizeof *req);
    req->op = op;
    req->digest = o->digest > 0 ? o->digest : 0;
    req->has_timestamp = o->has_timestamp;
    req->timestamp = o->timestamp;
    req->out_filename = o->filename;
    req->key = o->key;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Report a finished request; returns its exit code. */
static int report(const char *what, const struct sgn_result *r, int quiet)
{
    if (r->warning[0])
        cli_warn("%s", r->warning);
    if (r->status != SGN_OK) {
        cli_error("%s: %s", what, r->message);
        return backend_exit_code(r->status);
    }
    if (!quiet)
        printf("%s\n", r->message);
    return EXIT_OK;
}

/* mode: cli_output_mode() of the input, or 0644 for what only public certificates made. */
static int write_output(const char *path, const uint8_t *data, size_t len, unsigned mode)
{
    char err[600];
    if (cli_write_file_atomic(path, data, len, mode, err, sizeof err) != 0) {
        cli_error("%s (nothing was written)", err);
        return EXIT_OUTPUT;
    }
    return EXIT_OK;
}

/* One request through a fresh connection: reset, build, encrypt, status. */
static int call_once(struct cli_global *g, const struct sgn_request *req, struct sgn_result *r,
                     char **status_json)
{
    struct backend b;
    struct backend_conn c;
    char err[600];
    int rc = backend_open(g, &b);

    if (rc != EXIT_OK) {
        backend_close(&b);
        return rc;
    }
    if (backend_connect(&b, &c, err, sizeof err) != 0) {
        cli_error("%s", err);
        backend_close(&b);
        return EXIT_SERVICE;
    }
    backend_call(&c, req, r, status_json);
    backend_disconnect(&c);
    backend_close(&b);
    return EXIT_OK;
}

/* ---- reset ---- */

static void reset_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign reset ITLFile.tlv (-o OUT | --in-place) [--key recovery|tftp]\n"
               "                      [--timestamp UNIX] [--digest sha1|sha256|sha512]\n"
               "Re-sign an ITL/CTL with the recovery key (utils itl reset): every record stays\n"
               "byte-identical, the signer fields name the recovery certificate, which must be a\n"
               "SAST record of the file. SOURCE_DATE_EPOCH is honoured.\n");
}

int cmd_reset(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        SIGN_LONG_OPTIONS, {"in-place", no_argument, NULL, OPT_IN_PLACE}, {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct sgn_request req;
    struct sgn_result r = {0};
    uint8_t *data;
    size_t len;
    char err[600];
    const char *out;
    unsigned mode;
    int rc = parse_options(argc, argv, g, &o, longopts, reset_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind + 1 != argc || (!o.out && !o.in_place) || (o.out && o.in_place)) {
        reset_usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_read_input(argv[optind], MAX_INPUT_BYTES, &data, &len, &mode, err, sizeof err) != 0) {
        cli_error("%s", err);
        return EXIT_INPUT;
    }
    out = o.in_place ? argv[optind] : o.out;
    fill_request(&req, POL_OP_RESET, &o);
    req.filename = base_name(argv[optind]);
    req.data = data;
    req.len = len;
    rc = call_once(g, &req, &r, NULL);
    if (rc == EXIT_OK) {
        rc = report("reset", &r, g->quiet);
        if (rc == EXIT_OK)
            rc = write_output(out, r.out, r.out_len, cli_output_mode(mode));
        if (rc == EXIT_OK && !g->quiet)
            printf("written: %s\n", out);
    }
    sgn_result_free(&r);
    free(data);
    return rc;
}

/* ---- build ---- */

struct build_ctx {
    struct sgn_cert_arg certs[SGN_MAX_BUILD_CERTS];
    uint8_t *owned[SGN_MAX_BUILD_CERTS];
    size_t n;
    int failed;
};

/* A certificate argument: an existing PEM/DER file, or the label of a certificate on the
 * token ("label:NAME" forces the token). */
static int build_cert_option(int opt, const char *arg, void *ctx)
{
    struct build_ctx *b = ctx;
    struct sgn_cert_arg *c;
    struct stat st;
    char err[600];

    if (opt < OPT_ROLE_BASE || opt > OPT_ROLE_BASE + 255)
        return 0;
    if (b->n >= SGN_MAX_BUILD_CERTS) {
        cli_error("at most %d certificates in one ITL", SGN_MAX_BUILD_CERTS);
        return -1;
    }
    c = &b->certs[b->n];
    c->function = (unsigned)(opt - OPT_ROLE_BASE);
    if (strncmp(arg, "label:", 6) == 0) {
        c->token_label = arg + 6;
    } else if (stat(arg, &st) == 0) {
        if (cli_read_cert(arg, &b->owned[b->n], &c->der_len, err, sizeof err) != 0) {
            cli_error("%s", err);
            return -1;
        }
        c->der = b->owned[b->n];
    } else {
        c->token_label = arg; /* not a file: a certificate on the token */
    }
    b->n++;
    return 1;
}

static void build_usage(FILE *f)
{
    fprintf(
        f,
        "usage: itl-sign build --sast CERT [--sast CERT] [--ccm|--tftp|--ccm-tftp|--capf|\n"
        "                      --tvs|--app-server|--srst CERT ...] [--signer recovery|tftp|LABEL]\n"
        "                      [--digest sha1|sha256|sha512] [--filename NAME] [-o ITLFile.tlv]\n"
        "                      [--layout cucm|certutils]\n"
        "CERT is a PEM/DER file or the label of a certificate on the token (label:NAME).\n"
        "Records follow the order of the arguments; the signer must be one of the --sast.\n");
}

int cmd_build(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        SIGN_LONG_OPTIONS,
        {"signer", required_argument, NULL, OPT_SIGNER},
        {"layout", required_argument, NULL, OPT_LAYOUT},
        {"sast", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_SAST},
        {"ccm", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_CCM},
        {"ccm-tftp", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_CCM_TFTP},
        {"tftp", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_TFTP},
        {"capf", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_CAPF},
        {"srst", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_SRST},
        {"app-server", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_APP_SERVER},
        {"tvs", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_TVS},
        {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct build_ctx *b = calloc(1, sizeof *b);
    struct sgn_request req;
    struct sgn_result r = {0};
    const char *out;
    int rc;

    if (!b)
        return EXIT_OUTPUT;
    rc = parse_options(argc, argv, g, &o, longopts, build_usage, build_cert_option, b);
    if (rc == EXIT_OK && (optind != argc || b->n == 0)) {
        build_usage(stderr);
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK) {
        out = o.out ? o.out : "ITLFile.tlv";
        fill_request(&req, POL_OP_BUILD, &o);
        req.filename = o.filename ? o.filename : base_name(out);
        req.out_filename = req.filename;
        req.certs = b->certs;
        req.n_certs = b->n;
        req.layout = o.layout;
        rc = call_once(g, &req, &r, NULL);
        if (rc == EXIT_OK)
            rc = report("build", &r, g->quiet);
        if (rc == EXIT_OK)
            rc = write_output(out, r.out, r.out_len, 0644); /* certificates only: public */
        if (rc == EXIT_OK && !g->quiet)
            printf("written: %s\n", out);
    }
    sgn_result_free(&r);
    for (size_t i = 0; i < b->n; i++)
        free(b->owned[i]);
    free(b);
    return rc;
}

/* ---- sign: many files, several workers, one connection (or one engine) each ---- */

struct batch {
    struct backend *b;
    const struct sign_opts *o;
    char **files;
    size_t n;
    atomic_size_t next;
    atomic_size_t failed;
    atomic_int exit_code; /* of the last failure: what to return when every file failed */
    pthread_mutex_t print_lock;
    int quiet;
};

/* Where an output goes: `name`, from the reply, in --out-dir or next to the input. The name
 * must be a plain file name, so a reply never chooses another directory; a path that does not
 * fit is an error, never a truncated other name. 0, or -1 with err. */
static int output_path(const struct batch *bt, const char *input, const char *name, char *out,
                       size_t out_size, char *err, size_t err_size)
{
    const char *slash = strrchr(input, '/');
    int n;

    if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(err, err_size,
                 "the output name '%.200s' is not a plain file name; nothing was "
                 "written",
                 name);
        return -1;
    }
    if (bt->o->out_dir)
        n = snprintf(out, out_size, "%s/%s", bt->o->out_dir, name);
    else if (slash)
        n = snprintf(out, out_size, "%.*s/%s", (int)(slash - input), input, name);
    else
        n = snprintf(out, out_size, "%s", name);
    if (n < 0 || (size_t)n >= out_size) {
        snprintf(err, err_size, "the output path for %s is too long; nothing was written", input);
        return -1;
    }
    return 0;
}

static void batch_fail(struct batch *bt, const char *file, int exit_code, const char *msg)
{
    atomic_fetch_add(&bt->failed, 1);
    atomic_store(&bt->exit_code, exit_code);
    pthread_mutex_lock(&bt->print_lock);
    cli_error("%s: %s", file, msg);
    pthread_mutex_unlock(&bt->print_lock);
}

static void sign_one(struct batch *bt, struct backend_conn *c, const char *file)
{
    struct sgn_request req;
    struct sgn_result r = {0};
    uint8_t *data;
    size_t len;
    unsigned mode;
    char err[600], out[PATH_MAX];

    if (cli_read_input(file, MAX_INPUT_BYTES, &data, &len, &mode, err, sizeof err) != 0) {
        batch_fail(bt, file, EXIT_INPUT, err);
        return;
    }
    fill_request(&req, POL_OP_SIGN, bt->o);
    req.filename = base_name(file);
    req.data = data;
    req.len = len;
    backend_call(c, &req, &r, NULL);
    free(data);
    if (r.status != SGN_OK) {
        batch_fail(bt, file, backend_exit_code(r.status), r.message);
    } else {
        if (output_path(bt, file, r.out_name, out, sizeof out, err, sizeof err) != 0 ||
            cli_write_file_atomic_ex(out, r.out, r.out_len, cli_output_mode(mode), 0, err,
                                     sizeof err) != 0) {
            batch_fail(bt, file, EXIT_OUTPUT, err);
        } else if (!bt->quiet) {
            pthread_mutex_lock(&bt->print_lock);
            printf("signed: %s\n", out);
            if (r.warning[0])
                cli_warn("%s", r.warning);
            pthread_mutex_unlock(&bt->print_lock);
        }
    }
    sgn_result_free(&r);
}

static void *batch_worker(void *arg)
{
    struct batch *bt = arg;
    struct backend_conn c;
    char err[600];
    size_t i;

    if (backend_connect(bt->b, &c, err, sizeof err) != 0) {
        /* Without a connection this worker takes no file: the others still sign them all,
         * unless no worker connected, which the caller reports. */
        pthread_mutex_lock(&bt->print_lock);
        cli_error("%s", err);
        pthread_mutex_unlock(&bt->print_lock);
        return (void *)1;
    }
    while ((i = atomic_fetch_add(&bt->next, 1)) < bt->n)
        sign_one(bt, &c, bt->files[i]);
    backend_disconnect(&c);
    return NULL;
}

/* Each output was renamed into place without syncing its directory; one fsync per directory
 * makes all of them durable (1,000 files in one directory: one fsync, not 1,000). */
static int sync_output_dirs(const struct batch *bt)
{
    char path[PATH_MAX], last[PATH_MAX] = "";
    int rc = 0;

    for (size_t i = 0; i < bt->n; i++) {
        char *slash;
        char unused[300];
        if (output_path(bt, bt->files[i], "x", path, sizeof path, unused, sizeof unused) != 0)
            continue; /* that file failed already: nothing of it to sync */
        slash = strrchr(path, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(path, sizeof path, ".");
        if (strcmp(path, last) == 0)
            continue;
        snprintf(last, sizeof last, "%s", path);
        strncat(path, "/x", sizeof path - strlen(path) - 1);
        if (cli_sync_parent_dir(path) != 0 && errno != ENOENT && errno != ENOTDIR) {
            cli_error("the signed files in %s may not survive a crash: cannot sync the "
                      "directory: %s",
                      last, strerror(errno));
            rc = -1;
        }
    }
    return rc;
}

#define DEFAULT_MAX_JOBS 16

static unsigned worker_count(const struct sign_opts *o, size_t files)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    /* Four requests in flight per core: the token stays busy while others are on the wire or
     * waiting for the audit log's flush, which they then share (measured: 8 beat 4 by 15 %
     * on 2 cores, 16 gained nothing more). */
    unsigned n = o->jobs ? o->jobs : (unsigned)(cpus > 0 ? cpus * 4 : 4);
    /* By default no more connections than the service gives one uid (its default
     * socket.max-connections-per-uid): more would be answered busy. */
    if (!o->jobs && n > DEFAULT_MAX_JOBS)
        n = DEFAULT_MAX_JOBS;
    if (n > files)
        n = (unsigned)files;
    return n ? n : 1;
}

static void sign_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign sign FILE... [--out-dir DIR] [--digest sha1|sha256|sha512]\n"
            "                     [--filename NAME] [--timestamp UNIX] [--jobs N]\n"
            "Sign config files with the TFTP key: FILE.sgn next to FILE (or in DIR). A FILE that\n"
            "is already a .sgn is re-signed, never wrapped twice. Exit 0 when all succeeded,\n"
            "8 when some failed (the others are written).\n");
}

int cmd_sign(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {SIGN_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct backend b;
    struct batch bt = {0};
    pthread_t threads[64];
    unsigned n, started = 0, connected = 0;
    int rc = parse_options(argc, argv, g, &o, longopts, sign_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind >= argc) {
        sign_usage(stderr);
        return EXIT_USAGE;
    }
    if (o.filename && argc - optind > 1) {
        cli_error("--filename names one file; it cannot be used with %d files", argc - optind);
        return EXIT_USAGE;
    }
    rc = backend_open(g, &b);
    if (rc != EXIT_OK) {
        backend_close(&b);
        return rc;
    }
    bt.b = &b;
    bt.o = &o;
    bt.files = argv + optind;
    bt.n = (size_t)(argc - optind);
    bt.quiet = g->quiet;
    pthread_mutex_init(&bt.print_lock, NULL);
    n = worker_count(&o, bt.n);
    for (unsigned i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, batch_worker, &bt) == 0)
            started++;
    for (unsigned i = 0; i < started; i++) {
        void *res;
        pthread_join(threads[i], &res);
        connected += res == NULL;
    }
    pthread_mutex_destroy(&bt.print_lock);
    backend_close(&b);
    if (sync_output_dirs(&bt) != 0)
        return EXIT_OUTPUT;
    if (connected == 0)
        return b.direct ? EXIT_TOKEN : EXIT_SERVICE;
    if (atomic_load(&bt.failed) == 0)
        return EXIT_OK;
    cli_error("%zu of %zu files failed; the others were written", atomic_load(&bt.failed), bt.n);
    return atomic_load(&bt.failed) == bt.n ? atomic_load(&bt.exit_code) : EXIT_PARTIAL;
}

/* ---- encrypt / decrypt ---- */

static void encrypt_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign encrypt SEP<MAC>.cnf.xml --phone-cert PHONE.pem [-o DIR]\n"
            "Writes SEP<MAC>.cnf.xml.enc.sgn (AES-128 key wrapped to the phone's key, signed\n"
            "by the TFTP key) and the short SEP<MAC>.cnf.xml.sgn that points the phone to it.\n");
}

int cmd_encrypt(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        SIGN_LONG_OPTIONS,
        {"phone-cert", required_argument, NULL, OPT_PHONE_CERT},
        {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct sgn_request req;
    struct sgn_result r = {0};
    uint8_t *data = NULL, *cert = NULL;
    size_t len, cert_len;
    char err[600], path[PATH_MAX];
    unsigned mode = 0;
    struct batch where = {.o = &o};
    int rc = parse_options(argc, argv, g, &o, longopts, encrypt_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind + 1 != argc || !o.phone_cert) {
        encrypt_usage(stderr);
        return EXIT_USAGE;
    }
    o.out_dir = o.out; /* -o names the directory */
    if (cli_read_input(argv[optind], MAX_INPUT_BYTES, &data, &len, &mode, err, sizeof err) != 0 ||
        cli_read_cert(o.phone_cert, &cert, &cert_len, err, sizeof err) != 0) {
        cli_error("%s", err);
        free(data);
        return EXIT_INPUT;
    }
    fill_request(&req, POL_OP_ENCRYPT, &o);
    req.filename = base_name(argv[optind]);
    req.data = data;
    req.len = len;
    req.phone_cert = cert;
    req.phone_cert_len = cert_len;
    rc = call_once(g, &req, &r, NULL);
    if (rc == EXIT_OK)
        rc = report("encrypt", &r, g->quiet);
    if (rc == EXIT_OK &&
        (output_path(&where, argv[optind], r.out_name, path, sizeof path, err, sizeof err) != 0 ||
         output_path(&where, argv[optind], r.out2_name, path, sizeof path, err, sizeof err) != 0)) {
        cli_error("%s", err);
        rc = EXIT_OUTPUT;
    }
    if (rc == EXIT_OK) {
        output_path(&where, argv[optind], r.out_name, path, sizeof path, err, sizeof err);
        rc = write_output(path, r.out, r.out_len, cli_output_mode(mode));
        if (rc == EXIT_OK && !g->quiet)
            printf("written: %s\n", path);
    }
    if (rc == EXIT_OK) {
        output_path(&where, argv[optind], r.out2_name, path, sizeof path, err, sizeof err);
        rc = write_output(path, r.out2, r.out2_len, cli_output_mode(mode));
        if (rc == EXIT_OK && !g->quiet)
            printf("written: %s\n", path);
    }
    sgn_result_free(&r);
    free(data);
    free(cert);
    return rc;
}

static int read_private_key_der(const char *path, uint8_t **der, size_t *der_len)
{
    uint8_t *buf;
    size_t len;
    char err[600];
    EVP_PKEY *pk;
    BIO *bio;
    int n;

    if (cli_read_file(path, 1 << 20, &buf, &len, err, sizeof err) != 0) {
        cli_error("%s", err);
        return -1;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (!pk) {
        cli_error("%s holds no unencrypted PEM private key", path);
        return -1;
    }
    *der = NULL;
    n = i2d_PrivateKey(pk, der);
    EVP_PKEY_free(pk);
    if (n <= 0) {
        cli_error("cannot encode the key of %s", path);
        return -1;
    }
    *der_len = (size_t)n;
    return 0;
}

static void decrypt_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign decrypt FILE.enc.sgn --phone-key KEY.pem [-o OUT]\n"
               "Decrypt an encrypted config with the phone's private key (testing and support).\n");
}

int cmd_decrypt(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {SIGN_LONG_OPTIONS,
                                             {"phone-key", required_argument, NULL, OPT_PHONE_KEY},
                                             {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct itl_file f;
    struct itl_error ie;
    uint8_t *data, *key = NULL, *plain = NULL;
    size_t len, key_len = 0, plain_len = 0;
    char err[600];
    int rc = parse_options(argc, argv, g, &o, longopts, decrypt_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind + 1 != argc || !o.phone_key) {
        decrypt_usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_read_file(argv[optind], MAX_INPUT_BYTES, &data, &len, err, sizeof err) != 0) {
        cli_error("%s", err);
        return EXIT_INPUT;
    }
    if (itl_parse(data, len, ITL_KIND_ENC_SGN, &f, &ie) != 0) {
        cli_error("%s: %s", argv[optind], ie.msg);
        free(data);
        return EXIT_INPUT;
    }
    rc = read_private_key_der(o.phone_key, &key, &key_len) ? EXIT_INPUT : EXIT_OK;
    if (rc == EXIT_OK && itl_decrypt_enc_sgn(&f, key, key_len, &plain, &plain_len, &ie) != 0) {
        cli_error("%s: %s", argv[optind], ie.msg);
        rc = EXIT_INPUT;
    }
    if (rc == EXIT_OK) {
        if (o.out)
            rc = write_output(o.out, plain, plain_len, 0600); /* what was encrypted is secret */
        else if (fwrite(plain, 1, plain_len, stdout) != plain_len)
            rc = EXIT_OUTPUT;
    }
    if (key)
        OPENSSL_cleanse(key, key_len);
    free(key);
    free(plain);
    itl_file_free(&f);
    free(data);
    return rc;
}

/* ---- status ---- */

static void status_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign status [--json]\n"
               "Token present and logged in, keys found, backup attestation and regen hold, pool\n"
               "use and request counters (from the service, or in direct mode from the token).\n");
}

int cmd_status(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct sgn_request req = {.op = POL_OP_STATUS};
    struct sgn_result r = {0};
    char *json = NULL;
    int rc = parse_options(argc, argv, g, &o, longopts, status_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind != argc) {
        status_usage(stderr);
        return EXIT_USAGE;
    }
    rc = call_once(g, &req, &r, &json);
    if (rc == EXIT_OK)
        rc = report("status", &r, 1);
    if (rc == EXIT_OK && json)
        fputs(json, stdout);
    free(json);
    sgn_result_free(&r);
    return rc;
}
