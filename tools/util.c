/* SPDX-License-Identifier: MIT */
/* Helpers shared by the itl-sign commands: messages, input files, atomic writes. */
#include "tools/cli.h"

#include "policy/policy.h"

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

/* --timeout SECONDS: whole seconds, 1 to a day. */
static int parse_timeout(struct cli_global *g, const char *arg)
{
    char *end;
    long s;

    errno = 0;
    s = strtol(arg, &end, 10);
    if (errno || *end || end == arg || s < 1 || s > 86400) {
        cli_error("--timeout: '%s' is not a number of seconds from 1 to 86400", arg);
        return -1;
    }
    g->timeout_ms = (unsigned)s * 1000;
    return 1;
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
    case OPT_TIMEOUT:
        return parse_timeout(g, arg);
    case OPT_FOLLOW_SYMLINKS:
        cli_set_follow_symlinks(1);
        return 1;
    default:
        return 0;
    }
}

/* --follow-symlinks: set while the options are parsed, before any thread starts. */
static int follow_symlinks;

/* Opens an input: a regular file, reached without following a final symbolic link unless
 * --follow-symlinks. A link planted among the inputs of a root batch would otherwise publish
 * the file it points to, signed; a FIFO would hang the command; a device would be read. */
static int open_input(const char *path, struct stat *st, char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow_symlinks ? 0 : O_NOFOLLOW));
    struct stat link;

    if (fd < 0) {
        if (errno == ELOOP && !follow_symlinks && lstat(path, &link) == 0 && S_ISLNK(link.st_mode))
            snprintf(err, err_size,
                     "%s is a symbolic link; inputs are not followed through links (give the "
                     "file it points to, or --follow-symlinks if you trust every link)",
                     path);
        else
            snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(err, err_size, "%s is %s, not a regular file", path,
                 S_ISDIR(st->st_mode)    ? "a directory"
                 : S_ISFIFO(st->st_mode) ? "a FIFO"
                 : S_ISSOCK(st->st_mode) ? "a socket"
                                         : "a device");
        close(fd);
        return -1;
    }
    /* Regular files ignore O_NONBLOCK; clear it all the same, reads must block. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

void cli_set_follow_symlinks(int on)
{
    follow_symlinks = on;
}

unsigned cli_output_mode(unsigned input_mode)
{
    return input_mode & 0666;
}

int cli_read_file(const char *path, size_t limit, uint8_t **out, size_t *len, char *err,
                  size_t err_size)
{
    return cli_read_input(path, limit, out, len, NULL, err, err_size);
}

int cli_read_input(const char *path, size_t limit, uint8_t **out, size_t *len, unsigned *mode,
                   char *err, size_t err_size)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t cap = 0, used = 0;
    int fd = open_input(path, &st, err, err_size);

    if (fd < 0)
        return -1;
    if (mode)
        *mode = (unsigned)(st.st_mode & 07777);
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
    char dir[PATH_MAX], name[PATH_MAX];
    struct itl_error pe;
    int dfd, rc;

    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        snprintf(err, err_size, "output path too long: %s", path);
        return -1;
    }
    snprintf(name, sizeof name, "%s", basename(dir));
    snprintf(dir, sizeof dir, "%s", path);
    if (path[0] == '\0' || path[strlen(path) - 1] == '/') {
        snprintf(err, err_size, "output %s names a directory, not a file", path);
        return -1;
    }
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, err_size, "cannot write %s: directory %s: %s", path, dir, strerror(errno));
        return -1;
    }
    rc = pol_write_file_at(dfd, dir, name, data, len, mode, (uid_t)-1, (gid_t)-1, sync_dir, &pe);
    close(dfd);
    if (rc != 0)
        snprintf(err, err_size, "%s", pe.msg);
    return rc;
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
