/* SPDX-License-Identifier: MIT */
/* itl-sign build: a new ITL/CTL signed by a token key. */
#include "tools/sign_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "format/itl.h"

/* A certificate argument: an existing PEM/DER file, or the label of a certificate on the
 * token ("label:NAME" forces the token). */
static int build_cert_option(int opt, const char *arg, void *ctx)
{
    struct sign_build_args *b = ctx;
    struct sgn_cert_arg *c;
    struct stat st;
    struct itl_error err;

    if (opt < OPT_ROLE_BASE || opt > OPT_ROLE_BASE + 255)
        return 0;
    if (b->n >= SGN_MAX_BUILD_CERTS) {
        cli_error("at most %d certificates in one ITL", SGN_MAX_BUILD_CERTS);
        return -1;
    }
    c = &b->certs[b->n];
    c->function = (unsigned)(opt - OPT_ROLE_BASE);
    if (strncmp(arg, "label:", 6) == 0) {
        c->token_label = arg + 6;
    } else if (stat(arg, &st) == 0) {
        if (cli_read_cert(arg, &b->owned[b->n], &c->der_len, &err) != 0) {
            cli_error("%s", err.msg);
            return -1;
        }
        c->der = b->owned[b->n];
    } else {
        c->token_label = arg; /* not a file: a certificate on the token */
    }
    b->n++;
    return 1;
}

static void build_usage(FILE *f)
{
    fprintf(
        f,
        "usage: itl-sign build --sast CERT [--sast CERT] [--ccm|--tftp|--ccm-tftp|--capf|\n"
        "                      --tvs|--app-server|--srst CERT ...] [--signer recovery|tftp|LABEL]\n"
        "                      [--digest sha1|sha256|sha512] [--filename NAME] [-o ITLFile.tlv]\n"
        "                      [--layout cucm|certutils] [--dry-run]\n"
        "CERT is a PEM/DER file or the label of a certificate on the token (label:NAME).\n"
        "Records follow the order of the arguments; the signer must be one of the --sast.\n"
        "FILENAME (what phones fetch, what publish serves it as): --filename, else ITLFile.tlv\n"
        "(CTLFile.tlv when -o names CTL...) for any .tlv -o name.\n");
}

int sign_build_parse(int argc, char **argv, struct cli_global *g, struct sign_build_args *b)
{
    static const struct option longopts[] = {
        SIGN_LONG_OPTIONS,
        {"signer", required_argument, NULL, OPT_SIGNER},
        {"layout", required_argument, NULL, OPT_LAYOUT},
        SIGN_ITL_OPTION,
        SIGN_DRY_RUN_OPTION,
        {"sast", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_SAST},
        {"ccm", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_CCM},
        {"ccm-tftp", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_CCM_TFTP},
        {"tftp", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_TFTP},
        {"capf", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_CAPF},
        {"srst", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_SRST},
        {"app-server", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_APP_SERVER},
        {"tvs", required_argument, NULL, OPT_ROLE_BASE + ITL_ROLE_TVS},
        {NULL, 0, NULL, 0}};
    int rc;

    memset(b, 0, sizeof *b);
    rc = sign_parse_options(argc, argv, g, &b->o, longopts, build_usage, build_cert_option, b);
    if (rc == EXIT_OK && (optind != argc || b->n == 0)) {
        build_usage(stderr);
        rc = EXIT_USAGE;
    }
    return rc;
}

void sign_build_args_free(struct sign_build_args *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->owned[i]);
    b->n = 0;
}

/* Phones fetch ITLFile.tlv and CTLFile.tlv; CTLSEP<MAC>.tlv and ITLSEP<MAC>.tlv carry those
 * names in FILENAME too (docs/format.md). A .tlv output named otherwise (ITL-new.tlv) still
 * gets the name phones fetch: the FILENAME is what publish serves it as. */
const char *sign_build_filename(const struct sign_opts *o, const char *out, int quiet)
{
    const char *base = sign_base_name(out), *name;
    size_t n = strlen(base);

    if (o->filename)
        return o->filename;
    if (strcmp(base, "ITLFile.tlv") == 0 || strcmp(base, "CTLFile.tlv") == 0 || n < 4 ||
        strcasecmp(base + n - 4, ".tlv") != 0)
        return base; /* not a list's name: the kind check decides */
    name = strncasecmp(base, "CTL", 3) == 0 ? "CTLFile.tlv" : "ITLFile.tlv";
    if (!quiet)
        cli_warn("build: FILENAME is %s, the name phones fetch, not %s (-o); --filename NAME "
                 "writes another",
                 name, base);
    return name;
}

int cmd_build(int argc, char **argv, struct cli_global *g)
{
    struct sign_build_args *b = calloc(1, sizeof *b);
    struct sgn_request req;
    struct sgn_result r = {0};
    const char *out;
    int rc;

    if (!b)
        return EXIT_OUTPUT;
    rc = sign_build_parse(argc, argv, g, b);
    if (rc == EXIT_OK) {
        out = b->o.out ? b->o.out : "ITLFile.tlv";
        sign_fill_request(&req, POL_OP_BUILD, &b->o);
        req.filename = sign_build_filename(&b->o, out, g->quiet);
        req.out_filename = req.filename;
        req.certs = b->certs;
        req.n_certs = b->n;
        req.layout = b->o.layout;
        rc = sign_call_once(g, &req, &r, NULL);
        if (rc == EXIT_OK)
            rc = sign_report("build", &r, g->quiet);
        if (rc == EXIT_OK && !b->o.dry_run) /* certificates only: public */
            rc = sign_write_output(out, r.out, r.out_len, 0644);
        if (rc == EXIT_OK)
            sign_print_outputs("build", &r, &out, 1, b->o.dry_run, g);
    }
    sgn_result_free(&r);
    sign_build_args_free(b);
    free(b);
    return rc;
}
