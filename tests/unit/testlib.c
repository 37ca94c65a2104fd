/* SPDX-License-Identifier: MIT */
#include "tests/unit/testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void die(const char *what)
{
    fprintf(stderr, "testlib: %s\n", what);
    abort();
}

const char *testlib_src(void)
{
    const char *s = getenv("ITL_SRC");
    return s ? s : ".";
}

const char *testlib_build(void)
{
    const char *s = getenv("ITL_BUILD");
    return s ? s : "build";
}

const char *testlib_tmpdir(const char *tag)
{
    static char path[512];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/itl-%s.XXXXXX", base ? base : "/tmp", tag);
    if (!mkdtemp(path))
        die("mkdtemp failed");
    return path;
}

int testlib_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

uint8_t *testlib_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die(path);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

void testlib_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path);
}

static void read_line(const char *path, char *out, size_t size)
{
    size_t n;
    uint8_t *b = testlib_read(path, &n);
    snprintf(out, size, "%.*s", (int)n, (char *)b);
    free(b);
}

void testlib_make_token(const char *label, struct testlib_token *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "%s", testlib_tmpdir("token"));
    if (testlib_sh("%s/softhsm-conf/make-token.sh '%s' '%s' > '%s/env'", testlib_src(), t->dir,
                   label, t->dir) != 0)
        die("make-token.sh failed");
    snprintf(t->conf, sizeof t->conf, "%s/softhsm2.conf", t->dir);
    snprintf(t->pin_file, sizeof t->pin_file, "%s/user.pin", t->dir);
    snprintf(t->uri, sizeof t->uri, "pkcs11:token=%s", label);
    snprintf(t->module, sizeof t->module, "/usr/lib/softhsm/libsofthsm2.so");
    read_line(t->pin_file, t->pin, sizeof t->pin);
    setenv("SOFTHSM2_CONF", t->conf, 1);
}

void testlib_make_cert(const char *dir, const char *name, const char *subject, int bits)
{
    if (testlib_sh("openssl req -x509 -newkey rsa:%d -nodes -keyout '%s/%s.key.pem' "
                   "-out '%s/%s.pem' -subj '%s' -days 3650 -sha256 2>/dev/null && "
                   "openssl x509 -in '%s/%s.pem' -outform DER -out '%s/%s.der'",
                   bits, dir, name, dir, name, subject, dir, name, dir, name) != 0)
        die("openssl req failed");
}
