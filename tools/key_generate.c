/* SPDX-License-Identifier: MIT */
/* itl-sign key generate: a new RSA key on the token and its self-signed certificate. */
#include "tools/key_common.h"

#include <stdio.h>
#include <stdlib.h>

#include "signer/signer.h"

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
    struct itl_error err;
    int rc = EXIT_OK;

    if (key_cert_pem(der, len, &pem, &pem_len) != 0) {
        cli_error("cannot encode the certificate as PEM");
        return EXIT_OUTPUT;
    }
    if (cli_write_file_atomic(path, pem, pem_len, 0644, &err) != 0) {
        cli_error("%s", err.msg);
        rc = EXIT_OUTPUT;
    }
    free(pem);
    return rc;
}

struct generate_args {
    struct tok_generate_opts o;
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
    struct sgn_request req = {.op = POL_OP_KEY, .key_op = SGN_KEY_GENERATE};
    struct sgn_result r;
    int rc;

    rc = cli_parse_options(argc, argv, g, &opts);
    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!a.o.label || !a.o.subject || optind < argc) {
        cli_error("key generate: %s",
                  optind < argc ? "unexpected argument" : "--label and --subject are needed");
        fprintf(stderr, "%s", generate_usage);
        return EXIT_USAGE;
    }
    if (a.o.bits != 2048 && a.o.bits != 3072 && a.o.bits != 4096) {
        cli_error("--bits %u: use 2048, 3072 or 4096", a.o.bits);
        return EXIT_USAGE;
    }
    req.key = a.o.label;
    req.subject = a.o.subject;
    req.bits = a.o.bits;
    req.days = a.o.days;
    req.key_id = a.o.id;
    req.key_id_len = a.o.id_len;
    rc = key_call(g, &req, &r, a.o.label);
    if (rc == EXIT_OK && a.cert_out) {
        rc = write_cert_pem(a.cert_out, r.out, r.out_len);
        if (rc == EXIT_OK && !g->quiet && !g->json)
            printf("  certificate written to %s\n", a.cert_out);
    }
    sgn_result_free(&r);
    return rc;
}
