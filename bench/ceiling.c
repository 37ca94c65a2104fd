/* SPDX-License-Identifier: MIT */
/*
 * ceiling: what the token itself allows. A raw C_SignInit + C_Sign loop (CKM_RSA_PKCS over a
 * SHA-1 DigestInfo, the mechanism our code uses) on N threads, each with its own session under
 * one login, for a fixed time or a fixed number of signatures per round.
 *
 *   ceiling --module M --token URI --pin-file F --key LABEL [--threads N] [--seconds S]
 *           [--count C] [--rounds R]
 *
 * Prints one line per round (cpu_ms: CPU time of the whole process per signature, which moves
 * much less than the rate when other work shares the machine):
 *   ceiling threads=N round=R sigs=S secs=T rate=SIGS_PER_SECOND cpu_ms=MS
 */
#include <getopt.h>
#include <pthread.h>
#include <sys/resource.h>

#include "bench/bench_p11.h"

#define MAX_THREADS 64

struct worker {
    CK_FUNCTION_LIST *m;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE key;
    pthread_barrier_t *start, *stop;
    const unsigned char *digest_info;
    double deadline;     /* absolute, CLOCK_MONOTONIC; set per round before `start` */
    unsigned long quota; /* signatures per round, 0 = until the deadline */
    unsigned long done;  /* signatures in the last round */
    int rounds;
};

static void sign_once(struct worker *w)
{
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    unsigned char sig[1024];
    CK_ULONG sig_len = sizeof sig;

    bench_check(w->m->C_SignInit(w->session, &mech, w->key), "C_SignInit");
    bench_check(w->m->C_Sign(w->session, (unsigned char *)w->digest_info, BENCH_DIGEST_INFO_LEN,
                             sig, &sig_len),
                "C_Sign");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    for (int r = 0; r < w->rounds; r++) {
        pthread_barrier_wait(w->start);
        w->done = 0;
        /* The clock is read every 16 signatures: cheap next to a ~0.5 ms RSA operation. */
        while (w->quota ? w->done < w->quota : (w->done % 16 != 0 || bench_now() < w->deadline)) {
            sign_once(w);
            w->done++;
        }
        pthread_barrier_wait(w->stop);
    }
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void usage(void)
{
    fprintf(stderr, "usage: ceiling --module M --token URI --pin-file F --key LABEL "
                    "[--threads N] [--seconds S] [--count C] [--rounds R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"module", required_argument, NULL, 'm'},
                                         {"token", required_argument, NULL, 't'},
                                         {"pin-file", required_argument, NULL, 'p'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"threads", required_argument, NULL, 'n'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"count", required_argument, NULL, 'c'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    const char *module = NULL, *uri = NULL, *pin_file = NULL, *label = NULL;
    int threads = 1, rounds = 3, opt;
    double seconds = 2.0;
    unsigned long count = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            module = optarg;
            break;
        case 't':
            uri = optarg;
            break;
        case 'p':
            pin_file = optarg;
            break;
        case 'k':
            label = optarg;
            break;
        case 'n':
            threads = atoi(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'c':
            count = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (!module || !uri || !pin_file || !label || threads < 1 || threads > MAX_THREADS ||
        rounds < 1 || (seconds <= 0 && count == 0))
        usage();

    CK_FUNCTION_LIST *m = bench_load_module(module);
    CK_SLOT_ID slot = bench_find_token(m, uri);
    CK_SESSION_HANDLE sessions[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        bench_check(m->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &sessions[i]),
                    "C_OpenSession");
    /* One login for the application; every session shares it. */
    bench_login(m, sessions[0], pin_file);
    CK_OBJECT_HANDLE key = bench_find_key(m, sessions[0], label);

    static const char payload[8192];
    unsigned char digest_info[BENCH_DIGEST_INFO_LEN];
    bench_digest_info(payload, sizeof payload, digest_info);

    pthread_barrier_t start, stop;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)threads + 1);
    struct worker w[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.m = m,
                               .session = sessions[i],
                               .key = key,
                               .start = &start,
                               .stop = &stop,
                               .digest_info = digest_info,
                               .rounds = rounds,
                               .quota = count ? (count + (unsigned long)threads - 1) / threads : 0};
        if (pthread_create(&tid[i], NULL, worker_main, &w[i]) != 0)
            bench_die("pthread_create failed");
    }

    for (int r = 0; r < rounds; r++) {
        double t0 = bench_now(), cpu0 = cpu_seconds();
        for (int i = 0; i < threads; i++)
            w[i].deadline = t0 + seconds;
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&stop);
        double secs = bench_now() - t0, cpu = cpu_seconds() - cpu0;
        unsigned long sigs = 0;
        for (int i = 0; i < threads; i++)
            sigs += w[i].done;
        printf("ceiling threads=%d round=%d sigs=%lu secs=%.3f rate=%.1f cpu_ms=%.4f\n", threads,
               r + 1, sigs, secs, (double)sigs / secs, cpu * 1000 / (double)sigs);
        fflush(stdout);
    }

    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    m->C_Logout(sessions[0]);
    for (int i = 0; i < threads; i++)
        m->C_CloseSession(sessions[i]);
    bench_unload_module(m);
    return 0;
}
