/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for test_publish.sh: counts the file system calls that change a directory
 * (renameat, linkat, unlinkat, fsync) and, at the Nth one, kills the process with SIGKILL
 * before the call (FSFAULT_KILL_AT=N) or makes the Nth renameat fail with EIO
 * (FSFAULT_FAIL_RENAME=N). FSFAULT_COUNT=FILE writes the number of calls seen at exit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long calls, renames;

static void report(void)
{
    const char *f = getenv("FSFAULT_COUNT");
    FILE *o = f ? fopen(f, "w") : NULL;
    if (o) {
        fprintf(o, "%ld\n", calls);
        fclose(o);
    }
}

static void step(void)
{
    static int registered;
    const char *k = getenv("FSFAULT_KILL_AT");
    if (!registered++)
        atexit(report);
    calls++;
    if (k && atol(k) == calls)
        kill(getpid(), SIGKILL);
}

int renameat(int a, const char *b, int c, const char *d)
{
    static int (*real)(int, const char *, int, const char *);
    const char *f = getenv("FSFAULT_FAIL_RENAME");
    if (!real)
        real = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
    step();
    if (f && atol(f) == ++renames) {
        errno = EIO;
        return -1;
    }
    return real(a, b, c, d);
}

int linkat(int a, const char *b, int c, const char *d, int e)
{
    static int (*real)(int, const char *, int, const char *, int);
    if (!real)
        real = (int (*)(int, const char *, int, const char *, int))dlsym(RTLD_NEXT, "linkat");
    step();
    return real(a, b, c, d, e);
}

int unlinkat(int a, const char *b, int c)
{
    static int (*real)(int, const char *, int);
    if (!real)
        real = (int (*)(int, const char *, int))dlsym(RTLD_NEXT, "unlinkat");
    step();
    return real(a, b, c);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    step();
    return real(fd);
}
