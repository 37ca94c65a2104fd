/* SPDX-License-Identifier: MIT */
/* itl-sign sign: many files, several workers, one connection (or one engine) each. */
#include "tools/sign_batch.h"
#include "tools/sign_common.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct batch {
    struct backend *b;
    const struct sign_opts *o;
    struct sign_item **work; /* the items to sign (not the skipped ones) */
    size_t n;
    struct sign_progress progress;
    atomic_size_t next;
    /* Files a refused connection gave back (take_item hands them out first); under back_lock */
    pthread_mutex_t back_lock;
    struct sign_item **back;
    size_t n_back;
    /* A round's workers all connect before any sends (see all_connected); under back_lock */
    pthread_cond_t round_moved;
    unsigned arrived, expected; /* expected is 0 until every worker of the round is started */
    char refusal[sizeof(((struct sgn_result *)0)->message)]; /* the service's busy reply to the last
                                                                refused connection */
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

/* The next file to sign: one a refused connection gave back, else the next of the list. */
static struct sign_item *take_item(struct batch *bt)
{
    struct sign_item *it = NULL;
    size_t i;

    pthread_mutex_lock(&bt->back_lock);
    if (bt->n_back)
        it = bt->back[--bt->n_back];
    pthread_mutex_unlock(&bt->back_lock);
    if (!it && (i = atomic_fetch_add(&bt->next, 1)) < bt->n)
        it = bt->work[i];
    return it;
}

/* A file whose connection was refused before it was signed: another connection takes it. */
static void give_back(struct batch *bt, struct sign_item *it, const char *why)
{
    pthread_mutex_lock(&bt->back_lock);
    bt->back[bt->n_back++] = it; /* room for every file: each is given back at most once per take */
    snprintf(bt->refusal, sizeof bt->refusal, "%s", why);
    pthread_mutex_unlock(&bt->back_lock);
}

/* Every worker of a round connects before any sends its first request: the service answers
 * the connections over its limits while the others are still open, so the note counts them
 * (a connection made after another finished would get the slot it gave back). */
static void all_connected(struct batch *bt)
{
    pthread_mutex_lock(&bt->back_lock);
    bt->arrived++;
    pthread_cond_broadcast(&bt->round_moved);
    while (!bt->expected || bt->arrived < bt->expected)
        pthread_cond_wait(&bt->round_moved, &bt->back_lock);
    pthread_mutex_unlock(&bt->back_lock);
}

static int work_left(struct batch *bt)
{
    int left;

    pthread_mutex_lock(&bt->back_lock);
    left = bt->n_back > 0 || atomic_load(&bt->next) < bt->n;
    pthread_mutex_unlock(&bt->back_lock);
    return left;
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
    struct sign_item *it;

    while ((it = take_item(bt))) {
        struct sgn_request req;
        uint8_t *data;
        unsigned mode;

        if (read_request(bt, it, &req, &data, &mode) != 0)
            continue;
        pthread_mutex_lock(&p->lock);
        while (p->sent - p->taken == PIPE_WINDOW)
            pthread_cond_wait(&p->moved, &p->lock);
        pthread_mutex_unlock(&p->lock);
        int rc = backend_send(p->c, &req, &err);
        free(data);
        if (rc < 0) {
            batch_fail(bt, it, backend_exit_code(SGN_E_PROTOCOL), err.msg, 1);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        p->files[p->sent % PIPE_WINDOW] = it;
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
        struct sign_item *it;
        while ((it = take_item(bt))) {
            sign_one(bt, c, it);
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

/* What a worker's connection came to. */
enum worker_end { WORKER_SERVED, WORKER_REFUSED, WORKER_FAILED, WORKER_IDLE };

/* The first request of a connection, alone: the service refuses a connection over its limits
 * (busy) on its first request, and a pipeline would send its window into the closed socket.
 * 0 when the connection serves (the file is done, or failed on its own), 1 when it was refused
 * busy (the file is given back), -1 when there was no file left. */
static int first_request(struct batch *bt, struct backend_conn *c)
{
    struct sign_item *it;

    while ((it = take_item(bt))) {
        struct sgn_request req;
        struct sgn_result r = {0};
        uint8_t *data;
        unsigned mode;

        if (read_request(bt, it, &req, &data, &mode) != 0)
            continue;
        backend_call(c, &req, &r, NULL);
        free(data);
        if (r.status == SGN_E_BUSY) {
            give_back(bt, it, r.message);
            sgn_result_free(&r);
            return 1;
        }
        finish_one(bt, it, mode, &r);
        return 0;
    }
    return -1;
}

static void *batch_worker(void *arg)
{
    struct batch *bt = arg;
    struct backend_conn c;
    struct itl_error err;
    struct sign_item *it;

    int rc = backend_connect(bt->b, &c, &err);

    /* Not in direct mode: a session may wait for another worker's (the token's pool). */
    if (!bt->b->direct)
        all_connected(bt);
    if (rc != 0) {
        /* Without a connection this worker takes no file: the others still sign them all,
         * unless no worker connected, which the caller reports. */
        pthread_mutex_lock(&bt->print_lock);
        cli_error("%s", err.msg);
        pthread_mutex_unlock(&bt->print_lock);
        return (void *)(intptr_t)WORKER_FAILED;
    }
    if (!bt->b->direct) {
        int first = first_request(bt, &c);
        if (first == 0)
            sign_pipelined(bt, &c);
        backend_disconnect(&c);
        return (void *)(intptr_t)(first == 1   ? WORKER_REFUSED
                                  : first == 0 ? WORKER_SERVED
                                               : WORKER_IDLE);
    }
    while ((it = take_item(bt))) {
        sign_one(bt, &c, it);
        commit_if_full(bt);
    }
    backend_disconnect(&c);
    return (void *)(intptr_t)WORKER_SERVED;
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

/* One round of n workers: how many served and how many were refused busy. */
static void run_round(struct batch *bt, unsigned n, unsigned *served, unsigned *refused)
{
    pthread_t threads[64];
    unsigned started = 0;

    *served = *refused = 0;
    pthread_mutex_lock(&bt->back_lock);
    bt->arrived = bt->expected = 0;
    pthread_mutex_unlock(&bt->back_lock);
    for (unsigned i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, batch_worker, bt) == 0)
            started++;
    pthread_mutex_lock(&bt->back_lock);
    bt->expected = started;
    pthread_cond_broadcast(&bt->round_moved);
    pthread_mutex_unlock(&bt->back_lock);
    for (unsigned i = 0; i < started; i++) {
        void *res;
        pthread_join(threads[i], &res);
        *served += (intptr_t)res == WORKER_SERVED;
        *refused += (intptr_t)res == WORKER_REFUSED;
    }
}

/* First retry of a batch whose every connection was refused busy, doubled up to the last. */
#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 1000

/* Runs the workers over bt->work; the number of connections that served. Connections refused
 * busy (more --jobs than socket.max-connections-per-uid, or other batches of the same user)
 * are not errors while one serves: the files go to those that do, and a note says so once.
 * When none serves, the round is retried (RETRY_FIRST_MS doubling to RETRY_MAX_MS) until
 * these pauses add up to --timeout (docs/itl-sign.1); a file a refused connection gave back after
 * the others finished gets a new round with as many workers as served. */
static unsigned run_workers(struct batch *bt, const struct sign_opts *o)
{
    unsigned n = worker_count(o, bt->n), served_total = 0, delay = RETRY_FIRST_MS, waited = 0;
    unsigned timeout =
        bt->b->client.timeout_ms ? bt->b->client.timeout_ms : SGN_CLIENT_DEFAULT_TIMEOUT_MS;
    int noted = 0;

    for (;;) {
        unsigned served, refused;

        run_round(bt, n, &served, &refused);
        served_total += served;
        if (served && refused && !noted && !bt->quiet) {
            pthread_mutex_lock(&bt->print_lock);
            sign_progress_clear(&bt->progress);
            cli_error("note: itl-signd refused %u of %u connections (%s); signing with %u", refused,
                      n, bt->refusal, served);
            pthread_mutex_unlock(&bt->print_lock);
        }
        noted |= served && refused;
        if (!work_left(bt) || (!served && !refused))
            break;
        if (served) {
            n = served;
            continue;
        }
        if (waited + delay > timeout)
            break;
        waited += delay;
        nanosleep(
            &(struct timespec){.tv_sec = delay / 1000, .tv_nsec = (long)(delay % 1000) * 1000000},
            NULL);
        delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
    }
    if (!served_total && bt->refusal[0])
        cli_error("%s", bt->refusal);
    return served_total;
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
    rc = sign_collect_inputs(argc, argv, &in, o.filename, &list, &bt.work, &bt.n);
    g->signs_once = bt.n == 1;
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
    bt.back = calloc(bt.n ? bt.n : 1, sizeof *bt.back);
    if (!bt.back) {
        backend_close(&b);
        file_stage_free(bt.stage);
        cli_error("out of memory");
        return EXIT_OUTPUT;
    }
    pthread_mutex_init(&bt.print_lock, NULL);
    pthread_mutex_init(&bt.back_lock, NULL);
    pthread_cond_init(&bt.round_moved, NULL);
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
    pthread_mutex_destroy(&bt.back_lock);
    pthread_cond_destroy(&bt.round_moved);
    free(bt.back);
    sign_report_batch(&list, o.dry_run, g->quiet);
    rc = batch_exit(&bt, &b, connected, bt.n);
    free(bt.work);
    sign_list_free(&list);
    return rc;
}
