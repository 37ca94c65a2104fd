/* SPDX-License-Identifier: MIT */
/*
 * oneshot: the least a process can do to sign one file with a token key, and exit. The
 * yardstick for `itl-sign --token ... sign FILE` as a whole process: p11-kit load + initialize,
 * find the token by URI, open a session, log in, find the key, hash the file, C_Sign, write the
 * signature.
 *
 *   oneshot --module M --token URI --pin-file F --key LABEL --out SIG [--durable] FILE
 *
 * --durable writes the way itl-sign writes its outputs (temp file, fsync, rename, fsync of the
 * directory), to tell the cost of durability from the cost of everything else.
 */
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <unistd.h>

#include "bench/bench_p11.h"

#define MAX_INPUT_BYTES (4u << 20)

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(MAX_INPUT_BYTES);

    if (!f || !buf)
        bench_die("cannot read %s", path);
    *len = fread(buf, 1, MAX_INPUT_BYTES, f);
    if (ferror(f))
        bench_die("cannot read %s", path);
    fclose(f);
    return buf;
}

static void write_plain(const char *path, const unsigned char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        bench_die("cannot write %s", path);
}

static void write_durable(const char *path, const unsigned char *data, size_t len)
{
    char tmp[4096], dir[4096];
    int fd;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(dir, sizeof dir, "%s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, path) != 0)
        bench_die("cannot write %s", path);
    fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0 || close(fd) != 0)
        bench_die("cannot sync the directory of %s", path);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: oneshot --module M --token URI --pin-file F --key LABEL --out SIG [--durable] "
            "FILE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"module", required_argument, NULL, 'm'},
                                         {"token", required_argument, NULL, 't'},
                                         {"pin-file", required_argument, NULL, 'p'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"durable", no_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    const char *module = NULL, *uri = NULL, *pin_file = NULL, *label = NULL, *out = NULL;
    int opt, durable = 0;

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
        case 'o':
            out = optarg;
            break;
        case 'd':
            durable = 1;
            break;
        default:
            usage();
        }
    }
    if (!module || !uri || !pin_file || !label || !out || optind + 1 != argc)
        usage();

    CK_FUNCTION_LIST *m = bench_load_module(module);
    CK_SLOT_ID slot = bench_find_token(m, uri);
    CK_SESSION_HANDLE s;
    bench_check(m->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), "C_OpenSession");
    bench_login(m, s, pin_file);
    CK_OBJECT_HANDLE key = bench_find_key(m, s, label);

    size_t len;
    unsigned char *data = read_file(argv[optind], &len);
    unsigned char digest_info[BENCH_DIGEST_INFO_LEN];
    bench_digest_info(data, len, digest_info);
    free(data);

    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    unsigned char sig[1024];
    CK_ULONG sig_len = sizeof sig;
    bench_check(m->C_SignInit(s, &mech, key), "C_SignInit");
    bench_check(m->C_Sign(s, digest_info, sizeof digest_info, sig, &sig_len), "C_Sign");

    if (durable)
        write_durable(out, sig, sig_len);
    else
        write_plain(out, sig, sig_len);

    m->C_Logout(s);
    m->C_CloseSession(s);
    bench_unload_module(m);
    return 0;
}
