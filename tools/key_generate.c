/* SPDX-License-Identifier: MIT */
/* itl-sign key generate: a new RSA key on the token and its self-signed certificate. */
#include "tools/key_common.h"

#include <stdio.h>
#include <stdlib.h>

#include "tools/key_policy.h"
#include "tools/token_cli.h"

/* ---- key generate ---- */

static const char generate_usage[] =
    "usage: itl-sign --module M --token URI --pin-file F key generate --label L --subject S\n"
    "           [--bits 2048|3072|4096] [--days N] [--id HEX] [--cert-out FILE]\n"
    "  Generates an RSA key pair on the token (sensitive, non-extractable) and a self-signed\n"
    "  CA-style certificate signed by it, stored with the same CKA_ID. S is RFC 4514 style,\n"
    "  most specific first: \"CN=ITLRECOVERY_pub,OU=VTG,O=Cisco,L=RTP,ST=NC,C=US\".\n";

static int write_cert_pem(const char *path, const uint8_t *der, size_t len)
{
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    char err[600];
    int rc = EXIT_OK;

    if (key_cert_pem(der, len, &pem, &pem_len) != 0) {
        cli_error("cannot encode the certificate as PEM");
        return EXIT_OUTPUT;
    }
    if (cli_write_file_atomic(path, pem, pem_len, 0644, err, sizeof err) != 0) {
        cli_error("%s", err);
        rc = EXIT_OUTPUT;
    }
    free(pem);
    return rc;
}

struct generate_args {
    struct tok_generate_opts o;
    struct tok_generate_report report;
    const char *cert_out;
    uint8_t id[64];
};

static int generate_option(int opt, const char *arg, void *ctx)
{
    struct generate_args *a = ctx;

    switch (opt) {
    case OPT_LABEL:
        a->o.label = arg;
        return 1;
    case OPT_SUBJECT:
        a->o.subject = arg;
        return 1;
    case OPT_BITS:
        return key_parse_uint("--bits", arg, 16384, &a->o.bits) == 0 ? 1 : -1;
    case OPT_DAYS:
        return key_parse_uint("--days", arg, 36500, &a->o.days) == 0 ? 1 : -1;
    case OPT_ID:
        if (key_parse_hex_id(arg, a->id, &a->o.id_len) != 0) {
            cli_error("--id: '%s' is not 1 to 64 bytes of hex", arg);
            return -1;
        }
        a->o.id = a->id;
        return 1;
    case OPT_CERT_OUT:
        a->cert_out = arg;
        return 1;
    default:
        return 0;
    }
}

/* The token refused the sign-only template, or kept uses we asked it to switch off: say so, with
 * the uses the key really has (key list shows them too). */
static void report_template(struct tok *t, const struct tok_generate_report *r)
{
    struct tok_status st;
    struct itl_error ignored;
    char priv[64], pub[64];

    if (!r->template_reduced && tok_usage_sign_only(&r->usage))
        return;
    if (tok_get_status(t, &st, &ignored) != 0)
        snprintf(st.label, sizeof st.label, "?");
    tok_usage_text(&r->usage, 1, priv, sizeof priv);
    tok_usage_text(&r->usage, 0, pub, sizeof pub);
    if (r->template_reduced)
        cli_warn("token '%s' refused the sign-only key template (%s): the key was generated "
                 "with the token's defaults for decrypt/unwrap/derive/encrypt/wrap, then "
                 "switched off where the token allowed",
                 st.label, tok_ckr_name(r->refused_rv));
    if (!tok_usage_sign_only(&r->usage))
        cli_warn("the new key on token '%s' is not sign-only: private key %s, public key %s "
                 "(the token does not let us switch the rest off; itl-sign only ever signs "
                 "with it)",
                 st.label, priv, pub);
}

int cmd_key_generate(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"label", required_argument, NULL, OPT_LABEL},
                                             {"subject", required_argument, NULL, OPT_SUBJECT},
                                             {"bits", required_argument, NULL, OPT_BITS},
                                             {"days", required_argument, NULL, OPT_DAYS},
                                             {"id", required_argument, NULL, OPT_ID},
                                             {"cert-out", required_argument, NULL, OPT_CERT_OUT},
                                             {NULL, 0, NULL, 0}};
    struct generate_args a = {.o = {.bits = 2048, .days = 1825}};
    struct cli_options opts = {
        .longopts = longopts, .usage_text = generate_usage, .option = generate_option, .ctx = &a};
    struct tok_generate_opts o;
    struct tok_generate_report report;
    const char *cert_out;
    uint8_t *der = NULL;
    size_t der_len = 0;
    struct tok_key_info info;
    struct itl_error te = {0};
    struct tok *t = NULL;
    int rc;

    rc = cli_parse_options(argc, argv, g, &opts);
    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    o = a.o;
    o.report = &report;
    cert_out = a.cert_out;
    if (!o.label || !o.subject || optind < argc) {
        cli_error("key generate: %s",
                  optind < argc ? "unexpected argument" : "--label and --subject are needed");
        fprintf(stderr, "%s", generate_usage);
        return EXIT_USAGE;
    }
    if (o.bits != 2048 && o.bits != 3072 && o.bits != 4096) {
        cli_error("--bits %u: use 2048, 3072 or 4096", o.bits);
        return EXIT_USAGE;
    }
    rc = cli_open_token(g, &t);
    if (rc != EXIT_OK)
        return rc;
    rc = key_policy_reserve_regen(g, t, o.label, "key generate");
    if (rc != EXIT_OK) {
        tok_close(t);
        return rc;
    }
    if (tok_generate(t, &o, &der, &der_len, &te) != 0) {
        cli_error("key generate: %s", te.msg);
        tok_close(t);
        /* A new key whose own certificate does not verify (ITL_E_VERIFY) is the token's fault
         * here, not a file that fails verification: exit 4, as for every other failure. */
        return te.cls == ITL_E_VERIFY ? EXIT_TOKEN : cli_exit_for(&te);
    }
    report_template(t, &report);
    if (cert_out)
        rc = write_cert_pem(cert_out, der, der_len);
    if (tok_key_attributes(t, o.label, &info, &te) != 0) {
        cli_error("key generate: the key was made, but reading it back failed: %s", te.msg);
        rc = cli_exit_for(&te);
    } else if (g->json) {
        if (rc == EXIT_OK) { /* else the error document */
            key_print_info_json(&info);
            putchar('\n');
            cli_json_emitted();
        }
    } else if (!g->quiet) {
        printf("generated on the token: ");
        key_print_info_text(&info);
        if (cert_out && rc == EXIT_OK)
            printf("  certificate written to %s\n", cert_out);
    }
    free(der);
    tok_close(t);
    return rc;
}
