/* SPDX-License-Identifier: MIT */
/* itl-sign coverage: which phones of a fleet would take the current ITL (issue 15). */
#include "format/itl.h"
#include "tools/cli.h"
#include "tools/fleet.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum verdict { V_CURRENT, V_DIRECT, V_TVS, V_RESET, V_STRANDED, V_UNKNOWN, V_COUNT };

static const char *const verdict_names[V_COUNT] = {"current",
                                                   "updates directly",
                                                   "updates via TVS",
                                                   "rescuable by reset",
                                                   "stranded (needs manual ITL delete)",
                                                   "unknown ITL"};

enum out_format { OUT_TEXT, OUT_JSON, OUT_CSV };

struct coverage {
    struct fleet_history hist;
    struct fleet_itl current;
    struct fleet_tvs tvs;
    struct fleet_judge judge; /* one verdict per history file: 100,000 reports hold a handful
                                 of distinct ITLs */
    enum out_format fmt;
    const char *report_path;
    size_t counts[V_COUNT];
    size_t n_phones;
    struct cli_json j;
};

static void print_phone(struct coverage *c, const struct itl_report *r, const struct fleet_itl *h,
                        enum verdict v, int recovery, int trusts)
{
    char sha[2 * ITL_SHA1_LEN + 1] = "";
    char signer[512] = "";

    if (r->has_itl)
        hex_lower(r->itl_sha1, ITL_SHA1_LEN, 0, sha, sizeof sha);
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
    const struct fleet_itl *h = NULL;
    enum verdict v = V_UNKNOWN;
    int recovery = 0, trusts = 0;

    if (r->has_itl && memcmp(r->itl_sha1, c->current.sha1, ITL_SHA1_LEN) == 0) {
        v = V_CURRENT;
        h = fleet_history_find(&c->hist, r->itl_sha1);
        if (!h)
            h = &c->current;
        recovery = trusts = 1;
    } else if (r->has_itl) {
        struct fleet_verdict scratch;
        const struct fleet_verdict *fv = fleet_judge_report(&c->judge, r, &h, &scratch);
        recovery = fv->has_recovery;
        trusts = fv->action != FLEET_REJECT;
        if (h)
            v = fv->action == FLEET_ACCEPT       ? V_DIRECT
                : fv->action == FLEET_ACCEPT_TVS ? V_TVS
                : recovery                       ? V_RESET
                                                 : V_STRANDED;
    }
    c->counts[v]++;
    c->n_phones++;
    print_phone(c, r, h, v, recovery, trusts);
    return 0;
}

static void coverage_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign coverage --reports FILE [--reports FILE...] --history DIR\n"
               "                         --current ITLFile.tlv [--tvs-cert TVS.pem...]\n"
               "                         [--json | --csv]\n"
               "  Per phone of the DeviceTLInfo alarms or CSV reports: the ITL it holds (found in\n"
               "  DIR by SHA-1 of the whole file) and whether it takes --current: current,\n"
               "  updates directly, updates via TVS, rescuable by reset, stranded (needs manual\n"
               "  ITL delete), unknown ITL (not in DIR, or Not Installed). TVS presents\n"
               "  --tvs-cert (default: the TVS records of --current) and vouches for the\n"
               "  certificates --current lists.\n"
               "exit: 0 every phone current or updating, 8 some rescuable/stranded/unknown,\n"
               "      2 usage, 3 unreadable --current or history directory\n");
}

enum { OPT_CSV = FLEET_OPT_NEXT };

struct coverage_args {
    struct fleet_args fleet;
    int csv;
};

static int coverage_option(int opt, const char *arg, void *ctx)
{
    struct coverage_args *a = ctx;

    if (opt == OPT_CSV) {
        a->csv = 1;
        return 1;
    }
    return fleet_option(&a->fleet, "coverage", opt, arg);
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

/* --current (and --tvs-cert) and the history; prints its error. */
static int load_inputs(struct coverage *c, const struct fleet_args *a)
{
    struct itl_error e = {0};

    if (fleet_itl_load(a->current, a->current, &c->current, &e) != 0) {
        cli_error("coverage: --current: %s", e.msg);
        return EXIT_INPUT;
    }
    if (fleet_tvs_load(&c->tvs, a, &c->current.f, &e) != 0 ||
        fleet_history_load(&c->hist, a->history, "coverage", &e) != 0 ||
        fleet_judge_init(&c->judge, &c->hist, &c->current, &c->tvs, &e) != 0) {
        cli_error("coverage: %s", e.msg);
        return cli_exit_for(&e);
    }
    return EXIT_OK;
}

int cmd_coverage(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             FLEET_LONG_OPTIONS,
                                             {"csv", no_argument, NULL, OPT_CSV},
                                             {NULL, 0, NULL, 0}};
    struct coverage_args a = {0};
    struct cli_options o = {
        .longopts = longopts, .usage = coverage_usage, .option = coverage_option, .ctx = &a};
    struct coverage c = {0};
    int rc = cli_parse_options(argc, argv, g, &o);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!a.fleet.n_reports || !a.fleet.history || !a.fleet.current || optind < argc ||
        (a.csv && g->json)) {
        cli_error("coverage: needs --reports, --history and --current (--json or --csv)");
        coverage_usage(stderr);
        return EXIT_USAGE;
    }
    c.fmt = g->json ? OUT_JSON : a.csv ? OUT_CSV : OUT_TEXT;
    rc = load_inputs(&c, &a.fleet);
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
        struct itl_error e = {0};
        if (fleet_read_reports(&a.fleet, "coverage", on_report, &c, &e) != 0) {
            cli_error("coverage: %s", e.msg);
            rc = EXIT_INPUT;
        }
    }
    if (rc == EXIT_OK) {
        print_summary(&c);
        rc = c.counts[V_RESET] || c.counts[V_STRANDED] || c.counts[V_UNKNOWN] ? EXIT_PARTIAL
                                                                              : EXIT_OK;
    }
    fleet_history_free(&c.hist);
    fleet_itl_free(&c.current);
    fleet_tvs_free(&c.tvs);
    fleet_judge_free(&c.judge);
    return rc;
}
