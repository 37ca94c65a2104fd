/* SPDX-License-Identifier: MIT */
/*
 * phone-model: the decision half of the phone simulator (tests/phone/README.md). The fetch half
 * is tests/phone/phone-sim, which brings ITLFile.tlv and SEP<MAC>.cnf.xml.sgn over TFTP into
 * each phone's incoming/ directory and then runs this once for a batch of phones.
 *
 * For each phone state directory (named SEP<12 hex digits>; it is the phone's flash, its
 * installed ITL is ITLFile.tlv there):
 *   1. the new ITL: a phone without an ITL installs any ITL; one with an ITL installs the new one
 *      only if format/'s phone model (itl_trust_decide) accepts it, directly or via TVS when a
 *      TVS service is configured; otherwise it logs "Trust List Update Failed" and keeps its ITL;
 *   2. the config: verified against the ITL it holds after step 1 (accept or "Verification
 *      Failed");
 *   3. a DeviceTLInfo alarm (DeviceTLInfo.xml) with the SHA-1 of the installed ITL, in the form
 *      of shared/samples/DeviceTLInfo-alarm.xml, and one result line (result, and stdout).
 * The phone model is format/'s own: this program adds no trust rule of its own.
 */
#include "common/common.h"
#include "format/itl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TRUST_FILE_LIMIT (4u << 20)
#define MAX_TVS_TRUSTS 32

struct tvs_service {
    uint8_t *cert;
    size_t cert_len;
    struct itl_entry trusts[MAX_TVS_TRUSTS];
    uint8_t *trust_der[MAX_TVS_TRUSTS];
    size_t n_trusts;
};

struct sim_opts {
    struct itl_trust_opts trust; /* TVS and the validity time, as the phone model takes them */
    struct tvs_service tvs;
    const char *tftp_server; /* what the alarm says in ITL_TFTP_Server */
    const char *ip;          /* IPv4Address of the alarm */
    /* What the phones write (their flash, alarm, result) is staged and committed once per
     * batch: atomic for each file like a phone's flash, and one flush per batch instead of
     * several per phone (a fleet of 200 boots in seconds, not tens of them). */
    struct file_stage *stage;
    void *tag; /* the phone being run, for the commit's callback */
};

#define PHONES_PER_COMMIT 100 /* 3 staged files each: well within the descriptor limit */

/* A trust file read from a phone's directory: the bytes and their parse. */
struct trust_file {
    uint8_t *data;
    size_t len;
    int parsed;
    struct itl_file f;
};

static void trust_file_free(struct trust_file *t)
{
    if (t->parsed)
        itl_file_free(&t->f);
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* 1 read, 0 absent or empty (tftp-hpa leaves an empty file when the server has none), -1 err. */
static int read_optional(const char *path, struct trust_file *t, struct itl_error *err)
{
    struct stat st;

    memset(t, 0, sizeof *t);
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : err_errno(err, errno, "%s", path);
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return 0;
    return file_read(path, FILE_NOFOLLOW, TRUST_FILE_LIMIT, &t->data, &t->len, err) == 0 ? 1 : -1;
}

static int parse_trust(struct trust_file *t, struct itl_error *err)
{
    if (itl_parse(t->data, t->len, ITL_KIND_AUTO, &t->f, err) != 0)
        return -1;
    t->parsed = 1;
    return 0;
}

/* A certificate file, PEM or DER, as DER. */
static int read_cert_der(const char *path, uint8_t **der, size_t *der_len, struct itl_error *err)
{
    uint8_t *data;
    size_t len;
    const unsigned char *p;
    X509 *x = NULL;
    BIO *bio;
    int n;

    if (file_read(path, 0, TRUST_FILE_LIMIT, &data, &len, err) != 0)
        return -1;
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio)
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    p = data;
    if (!x)
        x = d2i_X509(NULL, &p, (long)len);
    free(data);
    if (!x)
        return err_set(err, ITL_E_INPUT, "%s: not a certificate (PEM or DER)", path);
    *der = NULL;
    n = i2d_X509(x, der);
    X509_free(x);
    if (n <= 0)
        return err_set(err, ITL_E_INTERNAL, "%s: cannot encode the certificate", path);
    *der_len = (size_t)n;
    return 0;
}

/* "SEP" and 12 hex digits: the names phones have, and the names of their configs. */
static int check_device(const char *name, struct itl_error *err)
{
    size_t n = strlen(name);

    if (n != 15 || strncmp(name, "SEP", 3) != 0)
        return err_set(err, ITL_E_USAGE,
                       "phone directory %s: its name must be the device name, SEP and 12 hex "
                       "digits",
                       name);
    for (size_t i = 3; i < n; i++)
        if (hex_digit((unsigned char)name[i]) < 0)
            return err_set(err, ITL_E_USAGE, "phone directory %s: %c is not a hex digit", name,
                           name[i]);
    return 0;
}

/* A line of the phone's status messages (Settings > Status > Status Messages on a phone). */
static void status_log(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void status_log(const char *dir, const char *fmt, ...)
{
    char path[4096];
    va_list ap;
    FILE *f;

    text_printf(path, sizeof path, "%s/status.log", dir);
    f = fopen(path, "a");
    if (!f)
        return;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

/* What happened to the new ITL, in the words of the result line. */
static const char *itl_step(const char *dir, struct trust_file *installed, struct trust_file *fresh,
                            const struct sim_opts *o, struct itl_error *err)
{
    struct itl_error e = {0};
    struct itl_trust_verdict v;
    enum itl_trust_path p;
    char path[4096];
    int k;

    text_printf(path, sizeof path, "%s/incoming/ITLFile.tlv", dir);
    k = read_optional(path, fresh, err);
    if (k < 0)
        return NULL;
    if (k == 0)
        return "not-served";
    if (parse_trust(fresh, &e) != 0 || itl_list_of(&fresh->f) != ITL_LIST_ITL) {
        status_log(dir, "Trust List Update Failed: the served ITLFile.tlv is no ITL (%s)",
                   e.msg[0] ? e.msg : "a CTL or a signed file");
        return "malformed";
    }
    if (!installed->data)
        p = ITL_TRUST_DIRECT; /* a phone without an ITL takes the first one it is given */
    else if (installed->len == fresh->len && memcmp(installed->data, fresh->data, fresh->len) == 0)
        return "current";
    else if ((p = itl_trust_decide(&installed->f, &fresh->f, &o->trust, &v)) == ITL_TRUST_NONE) {
        status_log(dir, "Trust List Update Failed: %s", v.why);
        return "reject";
    }
    text_printf(path, sizeof path, "%s/ITLFile.tlv", dir);
    if (file_stage_add(o->stage, path, fresh->data, fresh->len, 0644, o->tag, err) != 0)
        return NULL;
    status_log(dir, "Trust List Updated (%s)",
               !installed->data     ? "first install"
               : p == ITL_TRUST_TVS ? "via TVS"
                                    : "signer in the installed ITL");
    if (!installed->data)
        return "first-install";
    return p == ITL_TRUST_TVS ? "accept-via-tvs" : "accept";
}

/* The config, verified against the ITL the phone holds now (NULL: none). */
static const char *config_step(const char *dir, const char *device, const struct itl_file *itl,
                               const struct sim_opts *o, struct itl_error *err)
{
    struct trust_file cfg;
    struct itl_error e = {0};
    struct itl_trust_verdict v;
    enum itl_trust_path p = ITL_TRUST_NONE;
    const char *what;
    char path[4096];
    int k;

    text_printf(path, sizeof path, "%s/incoming/%s.cnf.xml.sgn", dir, device);
    k = read_optional(path, &cfg, err);
    if (k <= 0)
        return k < 0 ? NULL : "absent";
    if (parse_trust(&cfg, &e) != 0 || cfg.f.kind != ITL_KIND_SGN) {
        status_log(dir, "Verification Failed: %s.cnf.xml.sgn is no signed file", device);
        trust_file_free(&cfg);
        return "reject";
    }
    if (!itl) { /* no ITL: nothing to verify with, the phone takes the config as it comes */
        trust_file_free(&cfg);
        return "unverified";
    }
    p = itl_trust_decide(itl, &cfg.f, &o->trust, &v);
    if (p == ITL_TRUST_NONE)
        status_log(dir, "Verification Failed: %s", v.why);
    what = p == ITL_TRUST_DIRECT ? "accept" : p == ITL_TRUST_TVS ? "accept-via-tvs" : "reject";
    trust_file_free(&cfg);
    return what;
}

/* The DeviceTLInfo alarm, field for field in the order and form of the sample; md NULL: no
 * ITL installed. */
static int write_alarm(const char *dir, const char *device, const uint8_t *md,
                       const struct sim_opts *o, struct itl_error *err)
{
    char sha[3 * ITL_SHA1_LEN + 1] = "Not Installed", path[4096];
    struct buf b;
    int rc;

    if (md) {
        hex_upper(md, ITL_SHA1_LEN, ' ', sha, sizeof sha);
        strcat(sha, " "); /* each byte followed by a space, as phones write it */
    }
    buf_init(&b, 0);
    buf_printf(&b,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<x-cisco-alarm>\n"
               "<Alarm Name=\"DeviceTLInfo\">\n<ParameterList>\n"
               "<String name=\"DeviceName\">%s</String>\n"
               "<String name=\"IPv4Address\">%s</String>\n"
               "<String name=\"IPv6Address\"></String>\n"
               "<String name=\"CTL_Signature\">Not Installed</String>\n"
               "<String name=\"CTL_TFTP_Server\">N/A</String>\n"
               "<String name=\"ITL_Signature\">%s</String>\n"
               "<String name=\"ITL_TFTP_Server\">%s</String>\n"
               "<String name=\"StatusCode\">3</String>\n"
               "</ParameterList>\n</Alarm>\n</x-cisco-alarm>\n",
               device, o->ip, sha, o->tftp_server);
    if (b.failed) {
        buf_free(&b);
        return err_set(err, ITL_E_INTERNAL, "out of memory writing the alarm");
    }
    text_printf(path, sizeof path, "%s/DeviceTLInfo.xml", dir);
    rc = file_stage_add(o->stage, path, b.data, b.len, 0644, o->tag, err);
    buf_free(&b);
    return rc;
}

/* Which file the phone holds once the ITL step is done. */
static const struct trust_file *held_after(const char *itl_what, const struct trust_file *installed,
                                           const struct trust_file *fresh)
{
    int took = strcmp(itl_what, "accept") == 0 || strcmp(itl_what, "accept-via-tvs") == 0 ||
               strcmp(itl_what, "first-install") == 0;

    return took ? fresh : installed;
}

static int run_phone(const char *dir, const struct sim_opts *o, char line[256],
                     struct itl_error *err)
{
    const char *slash = strrchr(dir, '/');
    const char *device = slash ? slash + 1 : dir;
    struct trust_file installed = {0}, fresh = {0};
    const struct trust_file *now;
    const char *itl_what, *cfg_what;
    char path[4096], hex[2 * ITL_SHA1_LEN + 1] = "none";
    uint8_t md[ITL_SHA1_LEN];
    int rc = -1;

    if (check_device(device, err) != 0)
        return -1;
    text_printf(path, sizeof path, "%s/ITLFile.tlv", dir);
    switch (read_optional(path, &installed, err)) {
    case -1:
        return -1;
    case 1:
        if (parse_trust(&installed, err) != 0) {
            err_prefix(err, "%s: the installed ITL: ", path);
            goto out;
        }
    }
    itl_what = itl_step(dir, &installed, &fresh, o, err);
    if (!itl_what)
        goto out;
    now = held_after(itl_what, &installed, &fresh);
    cfg_what = config_step(dir, device, now->data ? &now->f : NULL, o, err);
    if (!cfg_what)
        goto out;
    if (now->data) {
        EVP_Digest(now->data, now->len, md, NULL, EVP_sha1(), NULL);
        hex_lower(md, sizeof md, 0, hex, sizeof hex);
    }
    if (write_alarm(dir, device, now->data ? md : NULL, o, err) != 0)
        goto out;
    text_printf(line, 256, "%s itl=%s config=%s sha1=%s\n", device, itl_what, cfg_what, hex);
    text_printf(path, sizeof path, "%s/result", dir);
    if (file_stage_add(o->stage, path, line, strlen(line), 0644, o->tag, err) != 0)
        goto out;
    rc = 0;
out:
    trust_file_free(&installed);
    trust_file_free(&fresh);
    return rc;
}

struct batch_result {
    char line[PHONES_PER_COMMIT][256]; /* "" when the phone failed */
    char *const *dirs;
};

static void on_committed(void *ctx, void *tag, const char *path, const struct itl_error *err)
{
    struct batch_result *b = ctx;
    size_t i = (size_t)(uintptr_t)tag;

    if (err && b->line[i][0]) {
        fprintf(stderr, "phone-model: %s: %s: %s\n", b->dirs[i], path, err->msg);
        b->line[i][0] = '\0';
    }
}

/* Up to PHONES_PER_COMMIT phones: run each, commit what they wrote, print their results in
 * order. 0 when every phone booted. */
static int run_batch(char *const *dirs, int n, struct sim_opts *o)
{
    static struct batch_result b;
    int failed = 0;

    b.dirs = dirs;
    o->stage = file_stage_new();
    if (!o->stage) {
        fprintf(stderr, "phone-model: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        struct itl_error err = {0};
        o->tag = (void *)(uintptr_t)i;
        if (run_phone(dirs[i], o, b.line[i], &err) != 0) {
            fprintf(stderr, "phone-model: %s: %s\n", dirs[i], err.msg);
            b.line[i][0] = '\0';
        }
    }
    file_stage_commit(o->stage, on_committed, &b);
    file_stage_free(o->stage);
    o->stage = NULL;
    for (int i = 0; i < n; i++) {
        failed |= !b.line[i][0];
        fputs(b.line[i], stdout);
    }
    return failed;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: phone-model [--tvs-cert CERT --tvs-trust CERT...] [--now SECONDS]\n"
               "                   [--tftp-server NAME] [--ip ADDR] PHONE_DIR...\n"
               "  Each PHONE_DIR is named SEP<MAC>; its ITLFile.tlv is the installed ITL,\n"
               "  incoming/ holds what it fetched. See tests/phone/README.md.\n");
}

static int add_trust(struct tvs_service *t, const char *path, struct itl_error *err)
{
    if (t->n_trusts == MAX_TVS_TRUSTS)
        return err_set(err, ITL_E_USAGE, "at most %d --tvs-trust certificates", MAX_TVS_TRUSTS);
    if (read_cert_der(path, &t->trust_der[t->n_trusts], &t->trusts[t->n_trusts].cert_len, err))
        return -1;
    t->trusts[t->n_trusts].cert_der = t->trust_der[t->n_trusts];
    t->n_trusts++;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"tvs-cert", required_argument, NULL, 'c'},
                                             {"tvs-trust", required_argument, NULL, 't'},
                                             {"now", required_argument, NULL, 'n'},
                                             {"tftp-server", required_argument, NULL, 's'},
                                             {"ip", required_argument, NULL, 'i'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct sim_opts o = {.tftp_server = "127.0.0.1", .ip = "127.0.0.1"};
    struct itl_error err = {0};
    int opt, failed = 0;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case 'c':
            free(o.tvs.cert);
            rc = read_cert_der(optarg, &o.tvs.cert, &o.tvs.cert_len, &err);
            break;
        case 't':
            rc = add_trust(&o.tvs, optarg, &err);
            break;
        case 'n':
            o.trust.now = strtoll(optarg, NULL, 10);
            break;
        case 's':
        case 'i':
            if (strpbrk(optarg, "<>&\"'") || !*optarg) {
                fprintf(stderr,
                        "phone-model: --%s %s: a host name or address goes into the "
                        "alarm's XML as it is: no <, >, &, quotes\n",
                        opt == 's' ? "tftp-server" : "ip", optarg);
                return 2;
            }
            *(opt == 's' ? &o.tftp_server : &o.ip) = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "phone-model: %s\n", err.msg);
            return 2;
        }
    }
    if (optind == argc || (o.tvs.n_trusts > 0 && !o.tvs.cert)) {
        usage(stderr);
        return 2;
    }
    o.trust.tvs_cert = o.tvs.cert;
    o.trust.tvs_cert_len = o.tvs.cert_len;
    o.trust.tvs_trusts = o.tvs.trusts;
    o.trust.n_tvs_trusts = o.tvs.n_trusts;
    for (int first = optind; first < argc; first += PHONES_PER_COMMIT)
        failed |= run_batch(
            argv + first, argc - first < PHONES_PER_COMMIT ? argc - first : PHONES_PER_COMMIT, &o);
    free(o.tvs.cert);
    for (size_t i = 0; i < o.tvs.n_trusts; i++)
        free(o.tvs.trust_der[i]);
    return failed ? 1 : 0;
}
