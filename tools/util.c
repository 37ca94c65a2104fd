/* SPDX-License-Identifier: MIT */
/* Helpers shared by the itl-sign commands: messages, input files, atomic writes. */
#include "tools/cli.h"

#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
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
    cli_json_record_error(fmt, ap);
    va_end(ap);
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

/* --mechanism auto|raw|hash (token.mechanism). */
static int parse_mechanism(struct cli_global *g, const char *arg)
{
    static const char *const names[] = {"auto", "raw", "hash"};

    for (int i = 0; i < 3; i++)
        if (strcmp(arg, names[i]) == 0) {
            g->mechanism = i;
            g->mechanism_given = 1;
            return 1;
        }
    cli_error("--mechanism: '%s' is not auto, raw or hash", arg);
    return -1;
}

int cli_refuse_pin_option(void)
{
    /* argv is readable by every user (ps, /proc/PID/cmdline) and lands in shell history. */
    cli_error("--pin is refused: a PIN never goes on the command line, where other users and "
              "the shell history see it; use --pin-file PATH, --pin-fd N or token.pin-file in "
              "the config");
    return EXIT_USAGE;
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
        cli_json_set(1);
        return 1;
    case OPT_QUIET:
        g->quiet = 1;
        return 1;
    case OPT_DIRECT:
        g->direct = 1;
        return 1;
    case OPT_TIMEOUT:
        return parse_timeout(g, arg);
    case OPT_MECHANISM:
        return parse_mechanism(g, arg);
    case OPT_FOLLOW_SYMLINKS:
        cli_set_follow_symlinks(1);
        return 1;
    case OPT_PIN:
        cli_refuse_pin_option();
        return -1;
    default:
        return 0;
    }
}

/* --follow-symlinks: set while the options are parsed, before any thread starts. */
static int follow_symlinks;

/* Opens an input: a regular file, reached without following a final symbolic link unless
 * --follow-symlinks. A link planted among the inputs of a root batch would otherwise publish
 * the file it points to, signed; a FIFO would hang the command; a device would be read. */
static int open_input(const char *path, struct stat *st, struct itl_error *err)
{
    struct stat link;
    int fd = file_open_regular(path, follow_symlinks ? 0 : FILE_NOFOLLOW, st, err);

    if (fd >= 0)
        return fd;
    if (!follow_symlinks && lstat(path, &link) == 0 && S_ISLNK(link.st_mode))
        err_set(err, ITL_E_INPUT,
                "%s is a symbolic link; inputs are not followed through links (give the "
                "file it points to, or --follow-symlinks if you trust every link)",
                path);
    return -1;
}

void cli_set_follow_symlinks(int on)
{
    follow_symlinks = on;
}

unsigned cli_output_mode(unsigned input_mode)
{
    return input_mode & 0666;
}

int cli_read_file(const char *path, size_t limit, uint8_t **out, size_t *len, struct itl_error *err)
{
    return cli_read_input(path, limit, out, len, NULL, err);
}

int cli_read_input(const char *path, size_t limit, uint8_t **out, size_t *len, unsigned *mode,
                   struct itl_error *err)
{
    struct stat st;
    int fd = open_input(path, &st, err);

    if (fd < 0)
        return -1;
    if (mode)
        *mode = (unsigned)(st.st_mode & 07777);
    int rc = file_read_fd(fd, path, limit, out, len, err);
    close(fd);
    return rc;
}

int cli_sync_parent_dir(const char *path)
{
    struct itl_error e;
    return file_sync_dir_of(path, &e); /* errno is the caller's to look at */
}

int cli_write_file_atomic(const char *path, const uint8_t *data, size_t len, unsigned mode,
                          struct itl_error *err)
{
    return cli_write_file_atomic_ex(path, data, len, mode, 1, err);
}

int cli_write_file_atomic_ex(const char *path, const uint8_t *data, size_t len, unsigned mode,
                             int sync_dir, struct itl_error *err)
{
    return sync_dir ? file_replace(path, data, len, (mode_t)mode, err)
                    : file_replace_no_dir_sync(path, data, len, (mode_t)mode, err);
}

int cli_read_cert(const char *path, uint8_t **der, size_t *der_len, struct itl_error *err)
{
    uint8_t *buf;
    size_t len;
    X509 *x = NULL;
    const unsigned char *p;
    int n;

    if (cli_read_file(path, 1 << 20, &buf, &len, err) != 0)
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
        err_set(err, ITL_E_INPUT, "%s holds no X.509 certificate (PEM or DER expected)", path);
        return -1;
    }
    *der = NULL;
    n = i2d_X509(x, der);
    X509_free(x);
    if (n <= 0) {
        err_set(err, ITL_E_INTERNAL, "cannot encode the certificate of %s", path);
        return -1;
    }
    *der_len = (size_t)n;
    return 0;
}

/* A FILE-side face of json_string (common/json.c): the same escaping as the audit log, so valid
 * UTF-8 in a certificate name stays readable and every other byte can be read back. */
void cli_json_string(FILE *f, const char *s, size_t n)
{
    struct buf b = {0};

    json_string(&b, s, n);
    const char *text = buf_str(&b);
    fputs(text ? text : "null", f); /* out of memory: still valid JSON */
    buf_free(&b);
}
