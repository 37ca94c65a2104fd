/* SPDX-License-Identifier: MIT */
/* itl-sign coverage: which phones of a fleet would take the current ITL (issue 15). */
#include "format/itl.h"
#include "tools/cli.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COVERAGE_FILE_LIMIT (4u << 20)
#define COVERAGE_REPORT_LIMIT (1u << 30)

enum verdict { V_CURRENT, V_DIRECT, V_TVS, V_RESET, V_STRANDED, V_UNKNOWN, V_COUNT };

static const char *const verdict_names[V_COUNT] = {"current",
                                                   "updates directly",
                                                   "updates via TVS",
                                                   "rescuable by reset",
                                                   "stranded (needs manual ITL delete)",
                                                   "unknown ITL"};

struct held {
    char name[256];
    uint8_t sha1[ITL_SHA1_LEN];
    uint8_t *data;
    struct itl_file f;
};

enum out_format { OUT_TEXT, OUT_JSON, OUT_CSV };

struct coverage {
    struct held *hist;
    size_t n_hist;
    struct held current;
    enum out_format fmt;
    const char *report_path;
    size_t counts[V_COUNT];
    size_t n_phones;
    struct cli_json j;
};

static void sha1_of(const uint8_t *d, size_t n, uint8_t out[ITL_SHA1_LEN])
{
    EVP_Digest(d, n, out, NULL, EVP_sha1(), NULL);
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int load_trust_file(const char *path, const char *name, struct held *h)
{
    struct itl_error err;
    size_t len;
    struct itl_error e = {0};

    snprintf(h->name, sizeof h->name, "%s", name);
    if (cli_read_file(path, COVERAGE_FILE_LIMIT, &h->data, &len, &err) != 0) {
        cli_warn("coverage: %s", err.msg);
        return -1;
    }
    if (itl_parse(h->data, len, ITL_KIND_AUTO, &h->f, &e) != 0 || h->f.kind != ITL_KIND_TLV) {
        cli_warn("coverage: %s: not an ITL/CTL (%s), skipped", path, e.cls ? e.msg : "not a .tlv");
        if (e.cls == ITL_E_NONE)
            itl_file_free(&h->f);
        free(h->data);
        h->data = NULL;
        return -1;
    }
    sha1_of(h->data, len, h->sha1);
    return 0;
}

/* Regular files only: a symlink, FIFO or directory in the history is named and skipped. */
static int load_history(struct coverage *c, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d) {
        cli_error("coverage: cannot open history directory %s", dir);
        return EXIT_INPUT;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        struct held *grown;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            cli_warn("coverage: %s: not a regular file, skipped", path);
            continue;
        }
        grown = realloc(c->hist, (c->n_hist + 1) * sizeof *grown);
        if (!grown) {
            closedir(d);
            cli_error("coverage: out of memory");
            return EXIT_SERVICE;
        }
        c->hist = grown;
        memset(&c->hist[c->n_hist], 0, sizeof c->hist[0]);
        if (load_trust_file(path, de->d_name, &c->hist[c->n_hist]) == 0)
            c->n_hist++;
    }
    closedir(d);
    return EXIT_OK;
}

/* The current ITL's recovery certificate: its SAST records other than the signer's (the
 * ITLRecovery record); when the signer is the only SAST, that one. */
static int has_recovery_sast(const struct itl_file *cur, const struct itl_file *held)
{
    long signer = itl_find_signer_record(cur);
    int found_other = 0;

    for (size_t i = 0; i < cur->n_records; i++) {
        const struct itl_record *r = &cur->records[i];
        if (!r->has_function || r->function != ITL_ROLE_SAST || (long)i == signer)
            continue;
        found_other = 1;
        if (itl_has_cert_with_role(held, r->certificate.ptr, r->certificate.len, ITL_ROLE_SAST))
            return 1;
    }
    if (!found_other && signer >= 0) {
        const struct itl_record *r = &cur->records[signer];
        return itl_has_cert_with_role(held, r->certificate.ptr, r->certificate.len, ITL_ROLE_SAST);
    }
    return 0;
}

static void print_phone(struct coverage *c, const struct itl_report *r, const struct held *h,
                        enum verdict v, int recovery, int trusts)
{
    char sha[2 * ITL_SHA1_LEN + 1] = "";
    char signer[512] = "";

    if (r->has_itl)
        hex(sha, r->itl_sha1, ITL_SHA1_LEN);
    if (h)
        snprintf(signer, sizeof signer, "%.*s", (int)h->f.hdr.signer_name.len,
                 h->f.hdr.signer_name.ptr ? (const char *)h->f.hdr.signer_name.ptr : "");
    if (c->fmt == OUT_JSON) {
        cli_json_elem(&c->j);
        /* an array element: the object has no key (cli_json_open always writes one) */
        buf_puts(&c->j.b, "{");
        c->j.fields = 0;
        cli_json_str(&c->j, "device", r->device);
        cli_json_str(&c->j, "itl_sha1", r->has_itl ? sha : NULL);
        cli_json_str(&c->j, "itl_file", h ? h->name : NULL);
        cli_json_str(&c->j, "signer", h ? signer : NULL);
        cli_json_str(&c->j, "verdict", verdict_names[v]);
        cli_json_bool(&c->j, "has_recovery_sast", recovery);
        cli_json_bool(&c->j, "trusts_signer", trusts);
        cli_json_close(&c->j, '}');
    } else if (c->fmt == OUT_CSV) {
        printf("%s,%s,%s,\"%s\",%s,%s,%s\n", r->device, r->has_itl ? sha : "Not Installed",
               h ? h->name : "", signer, verdict_names[v], recovery ? "yes" : "no",
               trusts ? "yes" : "no");
    } else {
        printf("%-16s %-24s %-10lu %-3s %-3s %s\n", r->device, h ? h->name : "-",
               h && h->f.hdr.has_timestamp ? (unsigned long)h->f.hdr.timestamp : 0ul,
               recovery ? "yes" : "no", trusts ? "yes" : "no", verdict_names[v]);
    }
}

static int on_report(void *ctx, const struct itl_report *r)
{
    struct coverage *c = ctx;
    const struct held *h = NULL;
    enum verdict v = V_UNKNOWN;
    int recovery = 0, trusts = 0;

    for (size_t i = 0; r->has_itl && i < c->n_hist && !h; i++)
        if (memcmp(c->hist[i].sha1, r->itl_sha1, ITL_SHA1_LEN) == 0)
            h = &c->hist[i];
    if (r->has_itl && memcmp(r->itl_sha1, c->current.sha1, ITL_SHA1_LEN) == 0) {
        v = V_CURRENT;
        if (!h)
            h = &c->current;
        recovery = trusts = 1;
    } else if (h) {
        struct itl_trust_opts o = {0};
        struct itl_trust_verdict tv;
        enum itl_trust_path p = itl_trust_decide(&h->f, &c->current.f, &o, &tv);
        recovery = has_recovery_sast(&c->current.f, &h->f);
        trusts = p != ITL_TRUST_NONE;
        v = p == ITL_TRUST_DIRECT ? V_DIRECT
            : p == ITL_TRUST_TVS  ? V_TVS
            : recovery            ? V_RESET
                                  : V_STRANDED;
    }
    c->counts[v]++;
    c->n_phones++;
    print_phone(c, r, h, v, recovery, trusts);
    return 0;
}

static void on_warn(void *ctx, long line, const char *msg)
{
    struct coverage *c = ctx;
    cli_warn("coverage: %s:%ld: %s", c->report_path, line, msg);
}

static void coverage_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign coverage --reports FILE [--reports FILE...] --history DIR\n"
               "                         --current ITLFile.tlv [--json | --csv]\n"
               "  Per phone of the DeviceTLInfo alarms or CSV reports: the ITL it holds (found in\n"
               "  DIR by SHA-1 of the whole file) and whether it takes --current: current,\n"
               "  updates directly, updates via TVS, rescuable by reset, stranded (needs manual\n"
               "  ITL delete), unknown ITL (not in DIR, or Not Installed).\n"
               "exit: 0 every phone current or updating, 8 some rescuable/stranded/unknown,\n"
               "      2 usage, 3 unreadable --current or history directory\n");
}

enum { OPT_REPORTS = OPT_FIRST_COMMAND_OPTION, OPT_HISTORY, OPT_CURRENT, OPT_CSV };

#define MAX_REPORT_FILES 64

struct coverage_args {
    const char *reports[MAX_REPORT_FILES];
    size_t n_reports;
    const char *history, *current;
    int csv;
};

static int coverage_option(int opt, const char *arg, void *ctx)
{
    struct coverage_args *a = ctx;
    switch (opt) {
    case OPT_REPORTS:
        if (a->n_reports == MAX_REPORT_FILES) {
            cli_error("coverage: at most %d --reports files", MAX_REPORT_FILES);
            return -1;
        }
        a->reports[a->n_reports++] = arg;
        return 1;
    case OPT_HISTORY:
        a->history = arg;
        return 1;
    case OPT_CURRENT:
        a->current = arg;
        return 1;
    case OPT_CSV:
        a->csv = 1;
        return 1;
    }
    return 0;
}

static void print_summary(struct coverage *c)
{
    if (c->fmt == OUT_JSON) {
        cli_json_close(&c->j, ']');
        cli_json_open(&c->j, "summary", '{');
        for (int v = 0; v < V_COUNT; v++)
            cli_json_int(&c->j, verdict_names[v], (long long)c->counts[v]);
        cli_json_close(&c->j, '}');
        cli_json_print(&c->j);
    } else if (c->fmt == OUT_TEXT) {
        printf("\n%-36s %s\n", "verdict", "phones");
        for (int v = 0; v < V_COUNT; v++)
            printf("%-36s %zu\n", verdict_names[v], c->counts[v]);
        printf("%-36s %zu\n", "total", c->n_phones);
    }
}

static int run_reports(struct coverage *c, const struct coverage_args *a)
{
    for (size_t i = 0; i < a->n_reports; i++) {
        uint8_t *data;
        size_t len;
        struct itl_error err;
        struct itl_error e = {0};

        c->report_path = a->reports[i];
        if (cli_read_file(a->reports[i], COVERAGE_REPORT_LIMIT, &data, &len, &err)) {
            cli_error("coverage: %s", err.msg);
            return EXIT_INPUT;
        }
        if (itl_reports_parse((const char *)data, len, on_report, on_warn, c, &e) < 0) {
            cli_warn("coverage: %s: %s", a->reports[i], e.msg);
        }
        free(data);
    }
    return EXIT_OK;
}

int cmd_coverage(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"reports", required_argument, NULL, OPT_REPORTS},
                                             {"history", required_argument, NULL, OPT_HISTORY},
                                             {"current", required_argument, NULL, OPT_CURRENT},
                                             {"csv", no_argument, NULL, OPT_CSV},
                                             {NULL, 0, NULL, 0}};
    struct coverage_args a = {0};
    struct cli_options o = {
        .longopts = longopts, .usage = coverage_usage, .option = coverage_option, .ctx = &a};
    struct coverage c = {0};
    int rc = cli_parse_options(argc, argv, g, &o);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!a.n_reports || !a.history || !a.current || optind < argc || (a.csv && g->json)) {
        cli_error("coverage: needs --reports, --history and --current (--json or --csv)");
        coverage_usage(stderr);
        return EXIT_USAGE;
    }
    c.fmt = g->json ? OUT_JSON : a.csv ? OUT_CSV : OUT_TEXT;
    if (load_trust_file(a.current, a.current, &c.current) != 0) {
        cli_error("coverage: --current %s: cannot use it as the current ITL", a.current);
        return EXIT_INPUT;
    }
    rc = load_history(&c, a.history);
    if (rc == EXIT_OK) {
        if (c.fmt == OUT_JSON) {
            cli_json_begin(&c.j);
            cli_json_open(&c.j, "phones", '[');
        } else if (c.fmt == OUT_CSV) {
            printf("device,itl_sha1,itl_file,signer,verdict,has_recovery_sast,trusts_signer\n");
        } else {
            printf("%-16s %-24s %-10s %-3s %-3s %s\n", "device", "itl_file", "timestamp", "rec",
                   "tru", "verdict");
        }
        rc = run_reports(&c, &a);
    }
    if (rc == EXIT_OK) {
        print_summary(&c);
        rc = c.counts[V_RESET] || c.counts[V_STRANDED] || c.counts[V_UNKNOWN] ? EXIT_PARTIAL
                                                                              : EXIT_OK;
    }
    for (size_t i = 0; i < c.n_hist; i++) {
        itl_file_free(&c.hist[i].f);
        free(c.hist[i].data);
    }
    free(c.hist);
    itl_file_free(&c.current.f);
    free(c.current.data);
    return rc;
}
