/* SPDX-License-Identifier: MIT */
/*
 * client: sign requests against itl-signd from P client processes, each with its own
 * connection, as fast as the service answers. The payload is one file read into memory once
 * (an 8 KB synthetic SEP<MAC>.cnf.xml from bench/run.sh), sent again and again.
 *
 *   client --socket S --file F [--procs P] [--seconds T | --count N] [--rounds R]
 *
 * Prints one line per round (rate = all processes' signatures / wall time of the round):
 *   client procs=P round=R sigs=S secs=T rate=SIGS_PER_SECOND
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "signer/signer.h"

#define MAX_PROCS 64
#define MAX_INPUT_BYTES (4u << 20)

struct load {
    const char *socket;
    struct sgn_request req;
    double seconds;
    unsigned long count; /* per process; 0 = until the time is up */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("bench client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("pipe closed early (a client process failed)");
        got += (size_t)n;
    }
}

static void write_exact(int fd, const void *buf, size_t len)
{
    if (write(fd, buf, len) != (ssize_t)len)
        die("pipe write failed: %s", strerror(errno));
}

static void sign_once(struct sgn_client *c, const struct sgn_request *req)
{
    struct sgn_result r;
    struct itl_error err;

    if (sgn_client_call(c, req, &r, NULL, &err) != 0)
        die("request failed: %s", err.msg);
    if (r.status != SGN_OK || r.out_len == 0)
        die("the service answered %s: %s", sgn_status_name(r.status), r.message);
    sgn_result_free(&r);
}

/* One client process: connect, say ready, wait for go, sign, report the count. */
static void client_process(const struct load *l, int ready_fd, int go_fd, int result_fd)
{
    struct sgn_client *c;
    struct itl_error err;
    char go;
    unsigned long done = 0;

    if (sgn_client_connect(l->socket, NULL, &c, &err) != 0)
        die("%s", err.msg);
    /* One request before the clock starts: the connection and the service thread are warm. */
    sign_once(c, &l->req);
    write_exact(ready_fd, "r", 1);
    read_exact(go_fd, &go, 1);
    double deadline = now() + l->seconds;
    while (l->count ? done < l->count : (done % 8 != 0 || now() < deadline)) {
        sign_once(c, &l->req);
        done++;
    }
    sgn_client_close(c);
    write_exact(result_fd, &done, sizeof done);
}

static void run_round(const struct load *l, int procs, int round)
{
    int ready[2], go[2], result[2];
    pid_t pids[MAX_PROCS];

    if (pipe(ready) || pipe(go) || pipe(result))
        die("pipe: %s", strerror(errno));
    for (int i = 0; i < procs; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            die("fork: %s", strerror(errno));
        if (pids[i] == 0) {
            close(ready[0]);
            close(go[1]);
            close(result[0]);
            client_process(l, ready[1], go[0], result[1]);
            _exit(0);
        }
    }
    close(ready[1]);
    close(go[0]);
    close(result[1]);
    for (int i = 0; i < procs; i++) {
        char c;
        read_exact(ready[0], &c, 1);
    }
    double t0 = now();
    for (int i = 0; i < procs; i++)
        write_exact(go[1], "g", 1);
    unsigned long sigs = 0;
    for (int i = 0; i < procs; i++) {
        unsigned long n;
        read_exact(result[0], &n, sizeof n);
        sigs += n;
    }
    double secs = now() - t0;
    for (int i = 0; i < procs; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("client process %d failed", (int)pids[i]);
    }
    close(ready[0]);
    close(go[1]);
    close(result[0]);
    printf("client procs=%d round=%d sigs=%lu secs=%.3f rate=%.1f\n", procs, round, sigs, secs,
           (double)sigs / secs);
    fflush(stdout);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(MAX_INPUT_BYTES);

    if (!f || !buf)
        die("cannot read %s: %s", path, strerror(errno));
    *len = fread(buf, 1, MAX_INPUT_BYTES, f);
    if (ferror(f) || *len == 0)
        die("cannot read %s", path);
    fclose(f);
    return buf;
}

static void usage(void)
{
    fprintf(stderr, "usage: client --socket S --file F [--procs P] [--seconds T | --count N] "
                    "[--rounds R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {"file", required_argument, NULL, 'f'},
                                         {"procs", required_argument, NULL, 'p'},
                                         {"seconds", required_argument, NULL, 't'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    struct load l = {.seconds = 2.0};
    const char *file = NULL;
    int procs = 1, rounds = 3, opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            l.socket = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'p':
            procs = atoi(optarg);
            break;
        case 't':
            l.seconds = atof(optarg);
            break;
        case 'n':
            l.count = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (!l.socket || !file || procs < 1 || procs > MAX_PROCS || rounds < 1 ||
        (l.seconds <= 0 && l.count == 0))
        usage();

    /* A client that dies must not take the others with it through SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    uint8_t *data = read_file(file, &l.req.len);
    char *name = strdup(file);
    l.req.op = POL_OP_SIGN;
    l.req.data = data;
    l.req.filename = basename(name);
    for (int r = 1; r <= rounds; r++)
        run_round(&l, procs, r);
    free(name);
    free(data);
    return 0;
}
