/* SPDX-License-Identifier: MIT */
/*
 * itl-sign plan: what each phone of a fleet would do with a proposed ITL before it is
 * published (issue 15, docs/fleet.md): accept, accept via TVS or reject, what follows, and the
 * seeds' classic mistakes by name. It signs nothing: no token.
 */
#include "format/itl.h"
#include "pkcs11/token.h"
#include "tools/cli.h"
#include "tools/fleet.h"
#include "tools/sign_common.h"
#include "tools/token_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUTCOMES 4

struct plan {
    struct fleet_history hist;
    struct fleet_itl new_itl;
    struct fleet_tvs tvs;
    struct fleet_judge judge;
    struct cli_json j;
    int json;
    size_t n_phones;
    size_t actions[3];
    size_t outcomes[OUTCOMES];
    size_t mistake_phones[FLEET_MISTAKES];
    unsigned char *mistake_held[FLEET_MISTAKES]; /* per history file: it makes the mistake */
};

static void print_phone(struct plan *p, const struct itl_report *r, const struct fleet_itl *h,
                        const struct fleet_verdict *v)
{
    char sha[2 * ITL_SHA1_LEN + 1] = "";

    if (r->has_itl)
        hex_lower(r->itl_sha1, ITL_SHA1_LEN, 0, sha, sizeof sha);
    if (!p->json) {
        printf("%-16s %-28s %-15s %s\n", r->device,
               h            ? h->name
               : r->has_itl ? "?"
                            : "-",
               fleet_action_name(v->action), fleet_outcome_name(v->outcome));
        if (v->action == FLEET_REJECT && v->n_reasons)
            printf("    why: %s\n", v->reasons[0]);
        return;
    }
    cli_json_elem(&p->j);
    buf_puts(&p->j.b, "{"); /* an array element: no key */
    p->j.fields = 0;
    cli_json_str(&p->j, "device", r->device);
    cli_json_str(&p->j, "installed_sha1", r->has_itl ? sha : NULL);
    cli_json_str(&p->j, "installed_file", h ? h->name : NULL);
    cli_json_str(&p->j, "action", fleet_action_name(v->action));
    cli_json_str(&p->j, "outcome", fleet_outcome_name(v->outcome));
    cli_json_open(&p->j, "reasons", '[');
    for (size_t i = 0; i < v->n_reasons; i++) {
        cli_json_elem(&p->j);
        json_cstring(&p->j.b, v->reasons[i]);
    }
    cli_json_close(&p->j, ']');
    cli_json_open(&p->j, "mistakes", '[');
    for (unsigned m = 0; m < FLEET_MISTAKES; m++)
        if (v->mistakes & (1u << m)) {
            cli_json_elem(&p->j);
            json_cstring(&p->j.b, fleet_mistake_id(1u << m));
        }
    cli_json_close(&p->j, ']');
    cli_json_close(&p->j, '}');
}

static int on_report(void *ctx, const struct itl_report *r)
{
    struct plan *p = ctx;
    const struct fleet_itl *h;
    struct fleet_verdict scratch;
    const struct fleet_verdict *v = fleet_judge_report(&p->judge, r, &h, &scratch);
    p->n_phones++;
    p->actions[v->action]++;
    p->outcomes[v->outcome]++;
    for (unsigned m = 0; m < FLEET_MISTAKES; m++)
        if (v->mistakes & (1u << m)) {
            p->mistake_phones[m]++;
            p->mistake_held[m][h - p->hist.v] = 1;
        }
    print_phone(p, r, h, v);
    return 0;
}

static void print_mistakes(struct plan *p)
{
    if (p->json) {
        cli_json_close(&p->j, ']');
        cli_json_open(&p->j, "mistakes", '[');
    }
    for (unsigned m = 0; m < FLEET_MISTAKES; m++) {
        if (!p->mistake_phones[m])
            continue;
        if (p->json) {
            cli_json_elem(&p->j);
            buf_puts(&p->j.b, "{");
            p->j.fields = 0;
            cli_json_str(&p->j, "mistake", fleet_mistake_id(1u << m));
            cli_json_int(&p->j, "phones", (long long)p->mistake_phones[m]);
            cli_json_open(&p->j, "installed_files", '[');
        } else {
            printf("\nMISTAKE %s (%zu phones; their ITL:", fleet_mistake_id(1u << m),
                   p->mistake_phones[m]);
        }
        for (size_t i = 0; i < p->hist.n; i++)
            if (p->mistake_held[m][i]) {
                if (p->json) {
                    cli_json_elem(&p->j);
                    json_cstring(&p->j.b, p->hist.v[i].name);
                } else {
                    printf(" %s", p->hist.v[i].name);
                }
            }
        if (p->json) {
            cli_json_close(&p->j, ']');
            cli_json_str(&p->j, "message", fleet_mistake_text(1u << m));
            cli_json_close(&p->j, '}');
        } else {
            printf(")\n  %s\n", fleet_mistake_text(1u << m));
        }
    }
    if (p->json)
        cli_json_close(&p->j, ']');
}

static void print_summary(struct plan *p)
{
    static const char *const keys[] = {"accept", "accept-via-tvs", "reject"};
    size_t n_mistakes = 0;

    for (unsigned m = 0; m < FLEET_MISTAKES; m++)
        n_mistakes += p->mistake_phones[m] != 0;
    if (p->json) {
        cli_json_open(&p->j, "summary", '{');
        cli_json_int(&p->j, "phones", (long long)p->n_phones);
        for (int a = 0; a < 3; a++)
            cli_json_int(&p->j, keys[a], (long long)p->actions[a]);
        for (int o = 0; o < OUTCOMES; o++)
            cli_json_int(&p->j, fleet_outcome_name(o), (long long)p->outcomes[o]);
        cli_json_int(&p->j, "mistakes", (long long)n_mistakes);
        cli_json_close(&p->j, '}');
        cli_json_print(&p->j);
        return;
    }
    printf("\n%-20s %s\n", "summary", "phones");
    for (int a = 0; a < 3; a++)
        printf("%-20s %zu\n", keys[a], p->actions[a]);
    for (int o = 0; o < OUTCOMES; o++)
        printf("%-20s %zu\n", fleet_outcome_name(o), p->outcomes[o]);
    printf("%-20s %zu\n%-20s %zu\n", "mistakes", n_mistakes, "total", p->n_phones);
}

static void plan_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign plan --reports FILE [--reports FILE...] --history DIR\n"
               "                     [--current ITLFile.tlv] [--tvs-cert TVS.pem...] [--json]\n"
               "                     --new ITLFile.tlv | --build BUILD-ARGUMENTS...\n"
               "  What each phone of the reports does with the proposed ITL --new under the\n"
               "  phone model: accept, accept-via-tvs or reject; then current, rescuable by\n"
               "  reset, stranded, or unknown ITL (not in DIR). Names the classic mistakes:\n"
               "  callmanager-and-tvs-regenerated, new-signer-without-sast,\n"
               "  recovery-sast-changed. --current is looked up like a history file. TVS\n"
               "  presents --tvs-cert (default: the TVS records of --new) and vouches for the\n"
               "  certificates --new lists. Signs nothing; needs no token.\n"
               "  --build: the rest are `itl-sign build` arguments (--sast CERT --ccm-tftp CERT\n"
               "  ...): the ITL build would make, judged as if signed by the first --sast. A\n"
               "  label:NAME certificate is read from the token of --token or --config.\n"
               "exit: 0 no phone stranded or unknown, 8 some are, 2 usage, 3 unreadable input\n");
}

enum { OPT_NEW = FLEET_OPT_NEXT };

struct plan_args {
    struct fleet_args fleet;
    const char *new_path;
};

static int plan_option(int opt, const char *arg, void *ctx)
{
    struct plan_args *a = ctx;

    if (opt == OPT_NEW) {
        a->new_path = arg;
        return 1;
    }
    return fleet_option(&a->fleet, "plan", opt, arg);
}

/* ---- plan --build: the ITL `build` would make from the same arguments, signed by nobody ---- */

/* The certificates given by label (build: "label:NAME", or a name that is no file) come from
 * the token of --token, or of --config (token.uri); public objects need no login. */
static int certs_from_token(struct cli_global *g, struct sign_build_args *b,
                            struct itl_entry *entries)
{
    struct tok *t = NULL;
    int rc = EXIT_OK;

    for (size_t i = 0; i < b->n; i++)
        if (b->certs[i].token_label && !g->token && !g->config) {
            cli_error("plan --build: --%s %s: no such file, so the label of a certificate on a "
                      "token; give --token URI (or --config) to read it from the token, or the "
                      "certificate's file (PEM or DER)",
                      itl_role_name(b->certs[i].function), b->certs[i].token_label);
            return EXIT_USAGE;
        }
    for (size_t i = 0; i < b->n && rc == EXIT_OK; i++) {
        struct itl_error te = {0};
        if (!b->certs[i].token_label)
            continue;
        if (!t) {
            g->direct = 1; /* the config's token, not its service */
            if ((rc = cli_direct_from_config(g)) != EXIT_OK ||
                (rc = cli_open_token_opt(g, 0, &t)) != EXIT_OK)
                break;
        }
        if (tok_export_cert(t, b->certs[i].token_label, &b->owned[i], &entries[i].cert_len, &te) !=
            0) {
            cli_error("plan --build: certificate '%s' from the token: %s", b->certs[i].token_label,
                      te.msg);
            rc = cli_exit_for(&te);
        }
        entries[i].cert_der = b->owned[i];
    }
    if (t)
        tok_close(t);
    return rc;
}

/* The ITL build would make (same FILENAME, layout, --itl names, timestamp), its SIGNATURE
 * zeros; the phone model takes it as signed by the first --sast (fleet_itl.assumed_signer). */
static int build_unsigned(struct cli_global *g, struct sign_build_args *b, struct fleet_itl *out)
{
    struct itl_entry entries[SGN_MAX_BUILD_CERTS] = {0};
    struct itl_build_opts bo = {0};
    struct itl_file known;
    struct sgn_request req;
    struct itl_signer s = {0};
    struct itl_error e = {0};
    uint8_t *data = NULL;
    size_t len, signer = b->n;
    int rc;

    if (b->o.key || b->o.dry_run || b->o.out_dir) {
        cli_error("plan --build: the ITL is signed by nobody and written nowhere: the first "
                  "--sast is the certificate it is judged as signed by (no --signer, --key, "
                  "--dry-run or --out-dir)");
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < b->n; i++) {
        entries[i].function = b->certs[i].function;
        entries[i].cert_der = b->certs[i].der;
        entries[i].cert_len = b->certs[i].der_len;
        if (signer == b->n && b->certs[i].function == ITL_ROLE_SAST)
            signer = i;
    }
    if (signer == b->n) {
        cli_error("plan --build: no --sast: the first --sast is the signer");
        return EXIT_USAGE;
    }
    if ((rc = certs_from_token(g, b, entries)) != EXIT_OK)
        return rc;
    sign_fill_request(&req, POL_OP_BUILD, &b->o);
    bo.filename = sign_build_filename(&b->o, b->o.out ? b->o.out : "ITLFile.tlv", g->quiet);
    bo.timestamp = b->o.has_timestamp ? b->o.timestamp : (uint32_t)time(NULL);
    itl_build_layout(&bo, b->o.layout == 1 ? ITL_LAYOUT_CERTUTILS : ITL_LAYOUT_CUCM);
    if (req.known_itl && itl_parse(req.known_itl, req.known_itl_len, ITL_KIND_TLV, &known, &e) == 0)
        bo.known = &known; /* sign_parse_options checked it */
    s.cert_der = entries[signer].cert_der;
    s.cert_len = entries[signer].cert_len;
    s.digest = b->o.digest > 0 ? b->o.digest : ITL_DIGEST_SHA1; /* policy.digest's default */
    rc = itl_build_tlv(entries, b->n, &bo, &s, &data, &len, &e);
    if (bo.known)
        itl_file_free(&known);
    if (rc != 0 || fleet_itl_adopt(data, len, bo.filename, out, &e) != 0) {
        cli_error("plan --build: %s", e.msg);
        return cli_exit_for(&e);
    }
    out->assumed_signer = malloc(s.cert_len);
    if (!out->assumed_signer) {
        cli_error("plan: out of memory");
        return EXIT_SERVICE;
    }
    memcpy(out->assumed_signer, s.cert_der, s.cert_len);
    out->assumed_signer_len = s.cert_len;
    return EXIT_OK;
}

static int load_new(struct plan *p, struct cli_global *g, const char *new_path, int bargc,
                    char **bargv)
{
    struct itl_error e = {0};
    struct sign_build_args *b;
    int rc;

    if (new_path) {
        if (fleet_itl_load(new_path, new_path, &p->new_itl, &e) == 0)
            return EXIT_OK;
        cli_error("plan: --new: %s", e.msg);
        return EXIT_INPUT;
    }
    if (!(b = calloc(1, sizeof *b)))
        return EXIT_SERVICE;
    optind = 0; /* build's own parser, from the word --build */
    rc = sign_build_parse(bargc, bargv, g, b);
    if (rc == EXIT_OK)
        rc = build_unsigned(g, b, &p->new_itl);
    sign_build_args_free(b);
    free(b);
    return rc;
}

static int load_inputs(struct plan *p, const struct fleet_args *a)
{
    struct itl_error e = {0};
    struct fleet_itl cur = {0};

    if (a->current && fleet_itl_load(a->current, a->current, &cur, &e) != 0) {
        cli_error("plan: --current: %s", e.msg);
        return EXIT_INPUT;
    }
    if (fleet_tvs_load(&p->tvs, a, &p->new_itl.f, &e) != 0 ||
        fleet_history_load(&p->hist, a->history, "plan", &e) != 0 ||
        (a->current && fleet_history_add(&p->hist, &cur, &e) != 0)) {
        fleet_itl_free(&cur);
        cli_error("plan: %s", e.msg);
        return cli_exit_for(&e);
    }
    if (fleet_judge_init(&p->judge, &p->hist, &p->new_itl, &p->tvs, &e) != 0) {
        cli_error("plan: %s", e.msg);
        return EXIT_SERVICE;
    }
    for (unsigned m = 0; m < FLEET_MISTAKES; m++)
        if (!(p->mistake_held[m] = calloc(p->hist.n + 1, 1))) {
            cli_error("plan: out of memory");
            return EXIT_SERVICE;
        }
    return EXIT_OK;
}

static void plan_free(struct plan *p)
{
    fleet_history_free(&p->hist);
    fleet_itl_free(&p->new_itl);
    fleet_tvs_free(&p->tvs);
    fleet_judge_free(&p->judge);
    for (unsigned m = 0; m < FLEET_MISTAKES; m++)
        free(p->mistake_held[m]);
}

/* plan ... --build BUILD-ARGUMENTS: everything after the word goes to build's parser. */
static int split_build(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--build") == 0)
            return i;
    return argc;
}

int cmd_plan(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             FLEET_LONG_OPTIONS,
                                             {"new", required_argument, NULL, OPT_NEW},
                                             {NULL, 0, NULL, 0}};
    struct plan_args a = {0};
    struct cli_options o = {
        .longopts = longopts, .usage = plan_usage, .option = plan_option, .ctx = &a};
    struct plan p = {0};
    struct itl_error e = {0};
    int at = split_build(argc, argv);
    int rc = cli_parse_options(at, argv, g, &o);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!a.new_path == (at == argc) || !a.fleet.n_reports || !a.fleet.history || optind < at) {
        cli_error("plan: needs --reports, --history and one of --new FILE or --build ARGS");
        plan_usage(stderr);
        return EXIT_USAGE;
    }
    p.json = g->json;
    rc = load_new(&p, g, a.new_path, argc - at, argv + at);
    if (rc == EXIT_OK)
        rc = load_inputs(&p, &a.fleet);
    if (rc == EXIT_OK) {
        if (p.json) {
            cli_json_begin(&p.j);
            cli_json_str(&p.j, "command", "plan");
            cli_json_open(&p.j, "phones", '[');
        } else {
            printf("%-16s %-28s %-15s %s\n", "device", "installed_file", "action", "outcome");
        }
        if (fleet_read_reports(&a.fleet, "plan", on_report, &p, &e) != 0) {
            cli_error("plan: %s", e.msg);
            rc = EXIT_INPUT;
            buf_free(&p.j.b);
        }
    }
    if (rc == EXIT_OK) {
        print_mistakes(&p);
        print_summary(&p);
        rc = p.outcomes[FLEET_STRANDED] || p.outcomes[FLEET_UNKNOWN] ? EXIT_PARTIAL : EXIT_OK;
    }
    plan_free(&p);
    return rc;
}
