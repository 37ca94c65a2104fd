/* SPDX-License-Identifier: MIT */
/*
 * spawn: run a command N times, one after the other, and time each run as a whole process
 * (fork to exit) with CLOCK_MONOTONIC. No shell in between (PKCS#11 URIs hold ';' and '?'),
 * and no fork of a timing helper per run, so a few-millisecond process is measured exactly.
 *
 *   spawn [--runs N] [--log FILE] -- COMMAND [ARGS...]
 *
 * The command's stdout goes to /dev/null and its stderr to FILE (default /dev/null). Prints one
 * line per run:
 *   spawn run=I us=MICROSECONDS rc=EXIT_STATUS   (rc 128+N when killed by signal N)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void usage(void)
{
    fprintf(stderr, "usage: spawn [--runs N] [--log FILE] -- COMMAND [ARGS...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"runs", required_argument, NULL, 'n'},
                                         {"log", required_argument, NULL, 'l'},
                                         {NULL, 0, NULL, 0}};
    const char *log = "/dev/null";
    int runs = 1, opt;

    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            runs = atoi(optarg);
            break;
        case 'l':
            log = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind >= argc || runs < 1)
        usage();

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);

    for (int i = 1; i <= runs; i++) {
        pid_t pid;
        int st, rc;
        double t0 = now_us();
        int err = posix_spawn(&pid, argv[optind], &fa, NULL, argv + optind, environ);
        if (err != 0) {
            fprintf(stderr, "spawn: %s: %s\n", argv[optind], strerror(err));
            return 1;
        }
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) {
                perror("spawn: waitpid");
                return 1;
            }
        double us = now_us() - t0;
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        printf("spawn run=%d us=%.0f rc=%d\n", i, us, rc);
    }
    posix_spawn_file_actions_destroy(&fa);
    return 0;
}
