/* SPDX-License-Identifier: MIT */
/* itl-sign sign: many files, several workers, one connection (or one engine) each. */
#include "tools/sign_batch.h"
#include "tools/sign_common.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct batch {
    struct backend *b;
    const struct sign_opts *o;
    struct sign_item **work; /* the items to sign (not the skipped ones) */
    size_t n;
    struct sign_progress progress;
    atomic_size_t next;
    atomic_size_t failed;
    atomic_int exit_code; /* of the last failure: what to return when every file failed */
    pthread_mutex_t print_lock;
    int quiet;
    /* Outputs wait here, unsynced and unnamed, and are made durable together: a few flushes
     * per batch instead of one per file (common/file_stage.c). */
    struct file_stage *stage;
    size_t stage_cap; /* commit when this many are staged: each holds a descriptor */
};

/* The file's line on stdout ("signed: PATH"): not under --json, --quiet or the progress bar. */
static void print_done(struct batch *bt, const char *what, const char *path)
{
    if (bt->quiet || cli_json_on() || bt->progress.on)
        return;
    printf("%s: ", what);
    sign_print_path(stdout, path);
    putchar('\n');
}

static void batch_fail(struct batch *bt, struct sign_item *it, int exit_code, const char *msg,
                       int processed)
{
    atomic_fetch_add(&bt->failed, 1);
    atomic_store(&bt->exit_code, exit_code);
    pthread_mutex_lock(&bt->print_lock);
    sign_item_set(it, ITEM_FAILED, exit_code, NULL, msg, NULL);
    sign_progress_clear(&bt->progress);
    if (!cli_json_on()) { /* under --json the document has it */
        fputs("itl-sign: ", stderr);
        sign_print_path(stderr, it->path);
        fputs(": ", stderr);
        sign_print_path(stderr, msg); /* it may quote the name: one line per file */
        fputc('\n', stderr);
    }
    if (processed)
        sign_progress_tick(&bt->progress);
    pthread_mutex_unlock(&bt->print_lock);
}

/* After a commit: the file is durable under its name, or it failed (and says why). */
static void staged_done(void *ctx, void *tag, const char *path, const struct itl_error *err)
{
    struct batch *bt = ctx;
    struct sign_item *it = tag;

    if (err) {
        batch_fail(bt, it, EXIT_OUTPUT, err->msg, 0);
        return;
    }
    pthread_mutex_lock(&bt->print_lock);
    sign_item_set(it, ITEM_SIGNED, 0, path, it->message, NULL);
    print_done(bt, "signed", path);
    pthread_mutex_unlock(&bt->print_lock);
}

/* Staged outputs hold a descriptor each: commit before they run out. */
static void commit_if_full(struct batch *bt)
{
    if (file_stage_pending(bt->stage) >= bt->stage_cap)
        file_stage_commit(bt->stage, staged_done, bt);
}

/* The request for one file; -1 when it cannot be read (reported). *data is the caller's. */
static int read_request(struct batch *bt, struct sign_item *it, struct sgn_request *req,
                        uint8_t **data, unsigned *mode)
{
    const char *file = it->path;
    size_t len;
    struct itl_error err;

    if (cli_read_input(file, SIGN_MAX_INPUT_BYTES, data, &len, mode, &err) != 0) {
        batch_fail(bt, it, EXIT_INPUT, err.msg, 1);
        return -1;
    }
    sign_fill_request(req, POL_OP_SIGN, bt->o);
    req->filename = sign_base_name(file);
    req->data = *data;
    req->len = len;
    return 0;
}

/* A reply: its output is staged (durable and named at the next commit), or the file failed. */
/* A --dry-run reply: what would be written, and the policy's decision. */
static void finish_dry_run(struct batch *bt, struct sign_item *it, const char *out,
                           const struct sgn_result *r)
{
    pthread_mutex_lock(&bt->print_lock);
    sign_item_set(it, ITEM_WOULD, 0, out, r->message, r->warning);
    print_done(bt, "would write", out);
    sign_progress_tick(&bt->progress);
    pthread_mutex_unlock(&bt->print_lock);
}

static void finish_one(struct batch *bt, struct sign_item *it, unsigned mode, struct sgn_result *r)
{
    struct itl_error err;
    char out[PATH_MAX];
    struct itl_error e;

    if (r->status != SGN_OK) {
        batch_fail(bt, it, backend_exit_code(r->status), r->message, 1);
    } else if (sign_output_path(bt->o->out_dir, it->path, r->out_name, out, sizeof out, &err) !=
               0) {
        batch_fail(bt, it, EXIT_OUTPUT, err.msg, 1);
    } else if (bt->o->dry_run) {
        finish_dry_run(bt, it, out, r);
    } else {
        /* The message and warning now: staged_done runs after the commit. */
        pthread_mutex_lock(&bt->print_lock);
        sign_item_set(it, ITEM_PENDING, 0, NULL, r->message, r->warning);
        pthread_mutex_unlock(&bt->print_lock);
        if (file_stage_add(bt->stage, out, r->out, r->out_len, (mode_t)cli_output_mode(mode), it,
                           &e) != 0) {
            batch_fail(bt, it, EXIT_OUTPUT, e.msg, 1);
        } else {
            pthread_mutex_lock(&bt->print_lock);
            sign_progress_tick(&bt->progress);
            pthread_mutex_unlock(&bt->print_lock);
        }
    }
    sgn_result_free(r);
}

static void sign_one(struct batch *bt, struct backend_conn *c, struct sign_item *file)
{
    struct sgn_request req;
    struct sgn_result r = {0};
    uint8_t *data;
    unsigned mode;

    if (read_request(bt, file, &req, &data, &mode) != 0)
        return;
    backend_call(c, &req, &r, NULL);
    free(data);
    finish_one(bt, file, mode, &r);
}

/* Through the service, requests are pipelined (docs/protocol.md): up to PIPE_WINDOW of them are
 * sent before their replies are taken, so the service makes their audit records durable with
 * one flush. A second thread takes the replies as they come: the service, blocked sending them,
 * never waits for this thread while it is blocked sending requests. PIPE_WINDOW is the
 * service's SRV_MAX_HELD: a whole window shares one flush. */
#define PIPE_WINDOW 64

struct pipe {
    struct batch *bt;
    struct backend_conn *c;
    pthread_mutex_t lock;
    pthread_cond_t moved;
    struct sign_item *files[PIPE_WINDOW];
    unsigned modes[PIPE_WINDOW];
    /* class ITL_E_NONE unless the connection closed while sending */
    struct itl_error send_errs[PIPE_WINDOW];
    size_t sent, taken; /* under lock; sent - taken <= PIPE_WINDOW */
    int done;           /* no more requests will be sent */
};

static void *take_replies(void *arg)
{
    struct pipe *p = arg;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->taken == p->sent && !p->done)
            pthread_cond_wait(&p->moved, &p->lock);
        if (p->taken == p->sent) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        struct sign_item *file = p->files[p->taken % PIPE_WINDOW];
        unsigned mode = p->modes[p->taken % PIPE_WINDOW];
        const struct itl_error *send_err = &p->send_errs[p->taken % PIPE_WINDOW];
        pthread_mutex_unlock(&p->lock);

        struct sgn_result r;
        backend_recv(p->c, &r, send_err);
        finish_one(p->bt, file, mode, &r);
        commit_if_full(p->bt);
        pthread_mutex_lock(&p->lock);
        p->taken++;
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->lock);
    }
}

static void send_requests(struct pipe *p)
{
    struct batch *bt = p->bt;
    struct itl_error err;
    size_t i;

    while ((i = atomic_fetch_add(&bt->next, 1)) < bt->n) {
        struct sgn_request req;
        uint8_t *data;
        unsigned mode;

        if (read_request(bt, bt->work[i], &req, &data, &mode) != 0)
            continue;
        pthread_mutex_lock(&p->lock);
        while (p->sent - p->taken == PIPE_WINDOW)
            pthread_cond_wait(&p->moved, &p->lock);
        pthread_mutex_unlock(&p->lock);
        int rc = backend_send(p->c, &req, &err);
        free(data);
        if (rc < 0) {
            batch_fail(bt, bt->work[i], backend_exit_code(SGN_E_PROTOCOL), err.msg, 1);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        p->files[p->sent % PIPE_WINDOW] = bt->work[i];
        p->modes[p->sent % PIPE_WINDOW] = mode;
        /* rc 1: closed while sending; the reply (a refusal) may be waiting, else this error */
        p->send_errs[p->sent % PIPE_WINDOW] = rc ? err : (struct itl_error){0};
        p->sent++;
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->lock);
    }
}

static void sign_pipelined(struct batch *bt, struct backend_conn *c)
{
    struct pipe p = {.bt = bt, .c = c};
    pthread_t reader;

    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.moved, NULL);
    if (pthread_create(&reader, NULL, take_replies, &p) != 0) {
        /* No second thread: one request at a time, as without pipelining. */
        size_t i;
        while ((i = atomic_fetch_add(&bt->next, 1)) < bt->n) {
            sign_one(bt, c, bt->work[i]);
            commit_if_full(bt);
        }
    } else {
        send_requests(&p);
        pthread_mutex_lock(&p.lock);
        p.done = 1;
        pthread_cond_broadcast(&p.moved);
        pthread_mutex_unlock(&p.lock);
        pthread_join(reader, NULL);
    }
    pthread_cond_destroy(&p.moved);
    pthread_mutex_destroy(&p.lock);
}

static void *batch_worker(void *arg)
{
    struct batch *bt = arg;
    struct backend_conn c;
    struct itl_error err;
    size_t i;

    if (backend_connect(bt->b, &c, &err) != 0) {
        /* Without a connection this worker takes no file: the others still sign them all,
         * unless no worker connected, which the caller reports. */
        pthread_mutex_lock(&bt->print_lock);
        cli_error("%s", err.msg);
        pthread_mutex_unlock(&bt->print_lock);
        return (void *)1;
    }
    if (!bt->b->direct) {
        sign_pipelined(bt, &c);
        backend_disconnect(&c);
        return NULL;
    }
    while ((i = atomic_fetch_add(&bt->next, 1)) < bt->n) {
        sign_one(bt, &c, bt->work[i]);
        commit_if_full(bt);
    }
    backend_disconnect(&c);
    return NULL;
}

/* Staged outputs hold a descriptor each: raise the soft limit to the hard one (at most 4,096),
 * so that a batch of a thousand files is committed at once, and keep half of it for them. */
static size_t stage_capacity(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 64;
    if (rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > 256 ? (size_t)(rl.rlim_cur - 128) / 2 : 64;
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
            "usage: itl-sign sign [FILE|DIR]... [--files-from LIST [-0|--null]] [--out-dir DIR]\n"
            "                     [--digest sha1|sha256|sha512] [--filename NAME]\n"
            "                     [--timestamp UNIX] [--jobs N] [--itl KNOWN.tlv] [--dry-run]\n"
            "Sign config files with the TFTP key: FILE.sgn next to FILE (or in DIR). A FILE that\n"
            "is already a .sgn is re-signed, never wrapped twice. A DIR gives its regular files\n"
            "(not hidden ones; FILE.sgn is skipped when FILE is there). --files-from LIST ('-':\n"
            "stdin) reads one name per line, or NUL-separated with -0. Exit 0 when all succeeded,\n"
            "8 when some failed (the others are written).\n");
}

struct sign_inputs {
    const char *files_from;
    int nul;
};

static int sign_input_option(int opt, const char *arg, void *ctx)
{
    struct sign_inputs *in = ctx;

    if (opt == OPT_FILES_FROM) {
        in->files_from = arg;
        return 1;
    }
    if (opt == '0' || opt == OPT_NUL) {
        in->nul = 1;
        return 1;
    }
    return 0;
}

/* The work list: the items not skipped. */
static int collect_inputs(int argc, char **argv, const struct sign_inputs *in,
                          const struct sign_opts *o, struct sign_list *l, struct batch *bt)
{
    size_t n = 0;

    if (sign_list_add_args(l, argv + optind, (size_t)(argc - optind)) != 0 ||
        (in->files_from && sign_list_add_files_from(l, in->files_from, in->nul) != 0))
        return EXIT_INPUT;
    if (in->nul && !in->files_from) {
        cli_error("-0 separates the names of --files-from; there is no --files-from");
        return EXIT_USAGE;
    }
    if (l->n == 0) {
        cli_error("no files to sign (give FILE, DIR or --files-from LIST)");
        return EXIT_USAGE;
    }
    bt->work = calloc(l->n, sizeof *bt->work);
    if (!bt->work) {
        cli_error("out of memory");
        return EXIT_OUTPUT;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].state != ITEM_SKIPPED)
            bt->work[n++] = &l->items[i];
    bt->n = n;
    if (o->filename && n > 1) {
        cli_error("--filename names one file; it cannot be used with %zu files", n);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Runs the workers over bt->work; the number that connected. */
static unsigned run_workers(struct batch *bt, const struct sign_opts *o)
{
    pthread_t threads[64];
    unsigned n = worker_count(o, bt->n), started = 0, connected = 0;

    for (unsigned i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, batch_worker, bt) == 0)
            started++;
    for (unsigned i = 0; i < started; i++) {
        void *res;
        pthread_join(threads[i], &res);
        connected += res == NULL;
    }
    return connected;
}

static int batch_exit(const struct batch *bt, const struct backend *b, unsigned connected,
                      size_t total)
{
    size_t failed = atomic_load(&bt->failed);

    if (bt->n && connected == 0)
        return b->direct ? EXIT_TOKEN : EXIT_SERVICE;
    if (failed == 0)
        return EXIT_OK;
    return failed == total ? atomic_load(&bt->exit_code) : EXIT_PARTIAL;
}

int cmd_sign(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        SIGN_LONG_OPTIONS,
        SIGN_ITL_OPTION,
        SIGN_DRY_RUN_OPTION,
        {"files-from", required_argument, NULL, OPT_FILES_FROM},
        {"null", no_argument, NULL, OPT_NUL},
        {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct sign_inputs in = {0};
    struct sign_list list = {0};
    struct backend b;
    struct batch bt = {0};
    unsigned connected = 0;
    int rc = sign_parse_options(argc, argv, g, &o, longopts, sign_usage, sign_input_option, &in);

    if (rc != EXIT_OK)
        return rc;
    rc = collect_inputs(argc, argv, &in, &o, &list, &bt);
    if (rc == EXIT_OK && bt.n)
        rc = backend_open(g, &b);
    if (rc != EXIT_OK) {
        if (bt.n)
            backend_close(&b);
        free(bt.work);
        sign_list_free(&list);
        return rc;
    }
    bt.b = &b;
    bt.o = &o;
    bt.quiet = g->quiet;
    bt.stage = file_stage_new();
    bt.stage_cap = stage_capacity();
    if (!bt.stage) {
        backend_close(&b);
        cli_error("out of memory");
        return EXIT_OUTPUT;
    }
    pthread_mutex_init(&bt.print_lock, NULL);
    sign_progress_init(&bt.progress, bt.n, g->quiet);
    if (bt.n)
        connected = run_workers(&bt, &o);
    if (bt.n)
        backend_close(&b);
    /* What the workers left staged: every output is durable before sign returns. */
    file_stage_commit(bt.stage, staged_done, &bt);
    file_stage_free(bt.stage);
    sign_progress_clear(&bt.progress);
    pthread_mutex_destroy(&bt.print_lock);
    sign_report_batch(&list, o.dry_run, g->quiet);
    rc = batch_exit(&bt, &b, connected, bt.n);
    free(bt.work);
    sign_list_free(&list);
    return rc;
}
