/* SPDX-License-Identifier: MIT */
/* Helpers shared by the itl-sign commands: messages, whole-file reads, atomic writes. */
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("itl-sign: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("itl-sign: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_global_option(struct cli_global *g, int opt, const char *arg)
{
    char *end;
    long fd;

    switch (opt) {
    case OPT_MODULE:
        g->module = arg;
        return 1;
    case OPT_TOKEN:
        g->token = arg;
        return 1;
    case OPT_PIN_FILE:
        g->pin_file = arg;
        return 1;
    case OPT_PIN_FD:
        errno = 0;
        fd = strtol(arg, &end, 10);
        if (errno || *end || fd < 0 || fd > INT_MAX) {
            cli_error("--pin-fd: '%s' is not a file descriptor number", arg);
            return -1;
        }
        g->pin_fd = (int)fd;
        return 1;
    case OPT_CONFIG:
        g->config = arg;
        return 1;
    case OPT_SOCKET:
        g->socket = arg;
        return 1;
    case OPT_JSON:
        g->json = 1;
        return 1;
    case OPT_QUIET:
        g->quiet = 1;
        return 1;
    default:
        return 0;
    }
}

int cli_read_file(const char *path, size_t limit, uint8_t **out, size_t *len, char *err,
                  size_t err_size)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t cap = 0, used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "%s is a directory, not a file", path);
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t n;
        if (used == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nbuf;
            if (cap > limit) {
                snprintf(err, err_size, "%s is larger than the limit of %zu bytes", path, limit);
                goto fail;
            }
            nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                snprintf(err, err_size, "out of memory reading %s", path);
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > limit) {
            snprintf(err, err_size, "%s is larger than the limit of %zu bytes", path, limit);
            goto fail;
        }
    }
    close(fd);
    if (!buf)
        buf = malloc(1);
    if (!buf) {
        snprintf(err, err_size, "out of memory reading %s", path);
        return -1;
    }
    buf[used] = 0; /* convenience for text; not counted */
    *out = buf;
    *len = used;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cli_sync_parent_dir(const char *path)
{
    char copy[PATH_MAX];
    int fd, rc;

    snprintf(copy, sizeof copy, "%s", path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int cli_write_file_atomic(const char *path, const uint8_t *data, size_t len, unsigned mode,
                          char *err, size_t err_size)
{
    return cli_write_file_atomic_ex(path, data, len, mode, 1, err, err_size);
}

int cli_write_file_atomic_ex(const char *path, const uint8_t *data, size_t len, unsigned mode,
                             int sync_dir, char *err, size_t err_size)
{
    char tmp[PATH_MAX];
    int fd;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        snprintf(err, err_size, "output path too long: %s", path);
        return -1;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "cannot create a file next to %s: %s", path, strerror(errno));
        return -1;
    }
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (sync_dir && cli_sync_parent_dir(path) != 0) {
        snprintf(err, err_size, "wrote %s but could not sync its directory: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int cli_read_cert(const char *path, uint8_t **der, size_t *der_len, char *err, size_t err_size)
{
    uint8_t *buf;
    size_t len;
    X509 *x = NULL;
    const unsigned char *p;
    int n;

    if (cli_read_file(path, 1 << 20, &buf, &len, err, err_size) != 0)
        return -1;
    p = buf;
    x = d2i_X509(NULL, &p, (long)len);
    if (!x) {
        BIO *bio = BIO_new_mem_buf(buf, (int)len);
        if (bio)
            x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    free(buf);
    if (!x) {
        snprintf(err, err_size, "%s holds no X.509 certificate (PEM or DER expected)", path);
        return -1;
    }
    *der = NULL;
    n = i2d_X509(x, der);
    X509_free(x);
    if (n <= 0) {
        snprintf(err, err_size, "cannot encode the certificate of %s", path);
        return -1;
    }
    *der_len = (size_t)n;
    return 0;
}

void cli_hex(const uint8_t *p, size_t n, char sep, char *out, size_t out_size)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;

    if (out_size == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t need = (sep && i) ? 3 : 2;
        if (o + need + 1 > out_size)
            break;
        if (sep && i)
            out[o++] = sep;
        out[o++] = digits[p[i] >> 4];
        out[o++] = digits[p[i] & 15];
    }
    out[o] = 0;
}

void cli_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
