/* SPDX-License-Identifier: MIT */
/*
 * itl-sign key attach-cert | csr | delete: for keys a vendor tool put on the token (tpm2_ptool
 * import on a token that refuses C_CreateObject of a private key), and for removing a key.
 */
#include "tools/key_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tools/key_policy.h"
#include "tools/token_cli.h"

enum { OPT_CERT = OPT_OUT + 1, OPT_SELF_SIGNED, OPT_REPLACE };

struct keyop_args {
    const char *label, *cert, *subject, *out;
    unsigned days;
    int self_signed, replace, as_der;
};

static int keyop_option(int opt, const char *arg, void *ctx)
{
    struct keyop_args *a = ctx;

    switch (opt) {
    case OPT_LABEL:
        a->label = arg;
        return 1;
    case OPT_CERT:
        a->cert = arg;
        return 1;
    case OPT_SUBJECT:
        a->subject = arg;
        return 1;
    case OPT_DAYS:
        return key_parse_uint("--days", arg, 36500, &a->days) == 0 ? 1 : -1;
    case OPT_SELF_SIGNED:
        a->self_signed = 1;
        return 1;
    case OPT_REPLACE:
        a->replace = 1;
        return 1;
    case OPT_DER:
        a->as_der = 1;
        return 1;
    case 'o':
        a->out = arg;
        return 1;
    default:
        return 0;
    }
}

static int parse_keyop(int argc, char **argv, struct cli_global *g, const char *usage,
                       struct keyop_args *a)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"label", required_argument, NULL, OPT_LABEL},
                                             {"cert", required_argument, NULL, OPT_CERT},
                                             {"self-signed", no_argument, NULL, OPT_SELF_SIGNED},
                                             {"subject", required_argument, NULL, OPT_SUBJECT},
                                             {"days", required_argument, NULL, OPT_DAYS},
                                             {"replace", no_argument, NULL, OPT_REPLACE},
                                             {"der", no_argument, NULL, OPT_DER},
                                             {"out", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    struct cli_options opts = {.shortopts = "o:",
                               .longopts = longopts,
                               .usage_text = usage,
                               .option = keyop_option,
                               .ctx = a};
    int rc = cli_parse_options(argc, argv, g, &opts);

    if (rc != EXIT_OK)
        return rc;
    if (optind < argc) {
        cli_error("key %s: unexpected argument '%s'", argv[0], argv[optind]);
        return EXIT_USAGE;
    }
    if (!a->label) {
        cli_error("key %s: --label is needed", argv[0]);
        fprintf(stderr, "%s", usage);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int write_output(const char *path, const uint8_t *data, size_t len)
{
    char err[600];

    if (cli_write_file_atomic(path, data, len, 0644, err, sizeof err) != 0) {
        cli_error("%s", err);
        return EXIT_OUTPUT;
    }
    return EXIT_OK;
}

/* ---- key attach-cert ---- */

static const char attach_usage[] =
    "usage: itl-sign --module M --token URI --pin-file F key attach-cert --label L\n"
    "           (--cert FILE | --self-signed --subject S [--days N]) [--replace]\n"
    "  Stores a certificate for the private key L that is already on the token (put there by\n"
    "  a vendor tool, e.g. tpm2_ptool import), with the key's CKA_ID and label. FILE (PEM or\n"
    "  DER) must hold the token key's public key; --self-signed makes a CA-style certificate\n"
    "  signed by the token key. A certificate already there is kept unless --replace.\n"
    "  -o FILE: the stored certificate as PEM.\n";

int cmd_key_attach_cert(int argc, char **argv, struct cli_global *g)
{
    struct keyop_args a = {.days = 1825};
    struct tok_attach_opts o = {0};
    uint8_t *given = NULL, *der = NULL;
    size_t given_len = 0, der_len = 0;
    struct itl_error te = {0};
    struct tok *t = NULL;
    char err[600];
    int rc = parse_keyop(argc, argv, g, attach_usage, &a);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!!a.cert == !!a.self_signed || (a.self_signed && !a.subject) || (a.cert && a.subject)) {
        cli_error("key attach-cert: give --cert FILE, or --self-signed with --subject");
        fprintf(stderr, "%s", attach_usage);
        return EXIT_USAGE;
    }
    if (a.cert && cli_read_cert(a.cert, &given, &given_len, err, sizeof err) != 0) {
        cli_error("%s", err);
        return EXIT_INPUT;
    }
    o = (struct tok_attach_opts){.label = a.label,
                                 .cert_der = given,
                                 .cert_len = given_len,
                                 .subject = a.subject,
                                 .days = a.days,
                                 .replace = a.replace};
    rc = cli_open_token(g, &t);
    if (rc == EXIT_OK)
        rc = key_policy_reserve_attach(g, t, a.label);
    if (rc == EXIT_OK && tok_attach_cert(t, &o, &der, &der_len, &te) != 0) {
        cli_error("key attach-cert: %s", te.msg);
        rc = te.cls == ITL_E_VERIFY ? EXIT_TOKEN : cli_exit_for(&te);
    }
    if (rc == EXIT_OK) {
        struct tok_key_info info;
        key_policy_audit(g, "key attach-cert", a.label, "ok",
                         a.self_signed ? "self-signed" : "certificate given");
        if (a.out) {
            uint8_t *pem = NULL;
            size_t pem_len = 0;
            rc = key_cert_pem(der, der_len, &pem, &pem_len) == 0 ? write_output(a.out, pem, pem_len)
                                                                 : EXIT_OUTPUT;
            free(pem);
        }
        if (tok_key_attributes(t, a.label, &info, &te) != 0) {
            cli_error("key attach-cert: stored, but reading the key back failed: %s", te.msg);
            rc = cli_exit_for(&te);
        } else if (g->json) {
            key_print_info_json(&info);
            putchar('\n');
        } else if (!g->quiet) {
            printf("certificate stored on the token: ");
            key_print_info_text(&info);
        }
    }
    free(given);
    free(der);
    tok_close(t);
    return rc;
}

/* ---- key csr ---- */

static const char csr_usage[] =
    "usage: itl-sign --module M --token URI --pin-file F key csr --label L --subject S\n"
    "           -o FILE [--der]\n"
    "  A PKCS#10 certificate request for the token key L (sha256WithRSA, signed on the\n"
    "  token), PEM by default, written atomically. Have a CA sign it, then store the\n"
    "  certificate with 'key attach-cert --label L --cert FILE --replace'.\n";

static int csr_pem(const uint8_t *der, size_t len, uint8_t **pem, size_t *pem_len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int rc = -1;

    if (req && bio && PEM_write_bio_X509_REQ(bio, req) == 1 &&
        (n = BIO_get_mem_data(bio, &data)) > 0 && (*pem = malloc((size_t)n)) != NULL) {
        memcpy(*pem, data, (size_t)n);
        *pem_len = (size_t)n;
        rc = 0;
    }
    BIO_free(bio);
    X509_REQ_free(req);
    return rc;
}

int cmd_key_csr(int argc, char **argv, struct cli_global *g)
{
    struct keyop_args a = {0};
    uint8_t *der = NULL, *pem = NULL;
    size_t der_len = 0, pem_len = 0;
    struct itl_error te = {0};
    struct tok *t = NULL;
    int rc = parse_keyop(argc, argv, g, csr_usage, &a);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!a.subject || !a.out || a.cert || a.self_signed || a.replace) {
        cli_error("key csr: --subject and -o FILE are needed (and no other key option)");
        fprintf(stderr, "%s", csr_usage);
        return EXIT_USAGE;
    }
    rc = cli_open_token(g, &t);
    if (rc == EXIT_OK && tok_make_csr(t, a.label, a.subject, &der, &der_len, &te) != 0) {
        cli_error("key csr: %s", te.msg);
        rc = te.cls == ITL_E_VERIFY ? EXIT_TOKEN : cli_exit_for(&te);
    }
    tok_close(t);
    if (rc == EXIT_OK && !a.as_der && csr_pem(der, der_len, &pem, &pem_len) != 0) {
        cli_error("key csr: cannot encode the request as PEM");
        rc = EXIT_OUTPUT;
    }
    if (rc == EXIT_OK)
        rc = write_output(a.out, a.as_der ? der : pem, a.as_der ? der_len : pem_len);
    if (rc == EXIT_OK) {
        key_policy_audit(g, "key csr", a.label, "ok", a.subject);
        if (!g->quiet && !g->json)
            printf("certificate request for key '%s' written to %s\n", a.label, a.out);
    }
    free(der);
    free(pem);
    return rc;
}

/* ---- key delete ---- */

static const char delete_usage[] =
    "usage: itl-sign --module M --token URI --pin-file F [--config FILE] key delete --label L\n"
    "  Deletes the private key L with the public key and certificates of its CKA_ID. A key of\n"
    "  a role (keys.recovery / keys.tftp label) goes only when policy allows: the\n"
    "  regeneration hold, and for the recovery key an attested backup.\n";

int cmd_key_delete(int argc, char **argv, struct cli_global *g)
{
    struct keyop_args a = {0};
    struct tok_delete_report r;
    struct itl_error te = {0};
    struct tok *t = NULL;
    char what[96];
    int rc = parse_keyop(argc, argv, g, delete_usage, &a);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (a.cert || a.self_signed || a.subject || a.replace || a.out) {
        cli_error("key delete: only --label is taken");
        return EXIT_USAGE;
    }
    rc = cli_open_token(g, &t);
    if (rc == EXIT_OK)
        rc = key_policy_check_delete(g, t, a.label);
    if (rc == EXIT_OK && tok_delete_key(t, a.label, &r, &te) != 0) {
        cli_error("key delete: %s", te.msg);
        key_policy_audit(g, "key delete", a.label, "error", te.msg);
        rc = cli_exit_for(&te);
    }
    tok_close(t);
    if (rc != EXIT_OK)
        return rc;
    snprintf(what, sizeof what, "%u private, %u public, %u certificate object(s)", r.private_keys,
             r.public_keys, r.certificates);
    key_policy_audit(g, "key delete", a.label, "ok", what);
    if (g->json) {
        printf("{\"label\":");
        cli_json_string(stdout, a.label, strlen(a.label));
        printf(",\"private_keys\":%u,\"public_keys\":%u,\"certificates\":%u}\n", r.private_keys,
               r.public_keys, r.certificates);
    } else if (!g->quiet)
        printf("deleted key '%s': %s\n", a.label, what);
    return EXIT_OK;
}
