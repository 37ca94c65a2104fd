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

#include "tools/backend.h"

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
    struct itl_error err;

    if (cli_write_file_atomic(path, data, len, 0644, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_OUTPUT;
    }
    return EXIT_OK;
}

int key_check_reply(const struct sgn_result *r, const char *op)
{
    if (r->warning[0])
        cli_warn("%s", r->warning);
    if (r->status == SGN_OK)
        return EXIT_OK;
    cli_error("%s", r->message);
    if (r->status == SGN_E_DENIED && r->rule[0])
        cli_error("%s: refused by policy rule '%s'", op, r->rule);
    return backend_exit_code(r->status);
}

/* One key operation through the engine: the service's (over its socket), or with --token an
 * engine in this process (direct mode; with --config the same access rule, state and audit
 * log as the service). `show`: the key to print afterwards (direct mode reads it from the
 * token; the service's summary line otherwise). Returns an EXIT_* code; r is the reply. */
int key_call(struct cli_global *g, const struct sgn_request *req, struct sgn_result *r,
             const char *show)
{
    struct backend b;
    struct tok_key_info info;
    struct itl_error te = {0};
    int rc = backend_run(g, &b, req, r, NULL);

    if (rc == EXIT_OK)
        rc = key_check_reply(r, sgn_key_op_name(req->key_op));
    if (rc != EXIT_OK) {
        backend_close(&b);
        return rc;
    }
    if (show && b.direct && tok_key_attributes(b.tok, show, &info, &te) == 0) {
        if (g->json) {
            key_print_info_json(&info);
        } else if (!g->quiet) {
            printf("%s: ", r->message);
            key_print_info_text(&info);
        }
    } else if (g->json) {
        key_print_result_json(sgn_key_op_name(req->key_op), req->key, r->message);
    } else if (!g->quiet) {
        printf("%s\n", r->message);
    }
    backend_close(&b);
    return rc;
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
    struct sgn_request req = {.op = POL_OP_KEY, .key_op = SGN_KEY_ATTACH_CERT};
    struct sgn_result r;
    uint8_t *given = NULL, *pem = NULL;
    size_t given_len = 0, pem_len = 0;
    struct itl_error err;
    int rc = parse_keyop(argc, argv, g, attach_usage, &a);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!!a.cert == !!a.self_signed || (a.self_signed && !a.subject) || (a.cert && a.subject)) {
        cli_error("key attach-cert: give --cert FILE, or --self-signed with --subject");
        fprintf(stderr, "%s", attach_usage);
        return EXIT_USAGE;
    }
    if (a.cert && cli_read_cert(a.cert, &given, &given_len, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_INPUT;
    }
    req.key = a.label;
    req.data = given;
    req.len = given_len;
    req.subject = a.subject;
    req.days = a.days;
    req.replace = a.replace;
    rc = key_call(g, &req, &r, a.label);
    if (rc == EXIT_OK && a.out) {
        rc = key_cert_pem(r.out, r.out_len, &pem, &pem_len) == 0 ? write_output(a.out, pem, pem_len)
                                                                 : EXIT_OUTPUT;
    }
    free(given);
    free(pem);
    sgn_result_free(&r);
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
    struct sgn_request req = {.op = POL_OP_KEY, .key_op = SGN_KEY_CSR};
    struct sgn_result r;
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    int rc = parse_keyop(argc, argv, g, csr_usage, &a);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!a.subject || !a.out || a.cert || a.self_signed || a.replace) {
        cli_error("key csr: --subject and -o FILE are needed (and no other key option)");
        fprintf(stderr, "%s", csr_usage);
        return EXIT_USAGE;
    }
    req.key = a.label;
    req.subject = a.subject;
    rc = key_call(g, &req, &r, NULL);
    if (rc == EXIT_OK && !a.as_der && csr_pem(r.out, r.out_len, &pem, &pem_len) != 0) {
        cli_error("key csr: the reply is not a certificate request");
        rc = EXIT_SERVICE;
    }
    if (rc == EXIT_OK) {
        rc = write_output(a.out, a.as_der ? r.out : pem, a.as_der ? r.out_len : pem_len);
        if (rc == EXIT_OK && !g->quiet && !g->json)
            printf("  written to %s\n", a.out);
    }
    free(pem);
    sgn_result_free(&r);
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
    struct sgn_request req = {.op = POL_OP_KEY, .key_op = SGN_KEY_DELETE};
    struct sgn_result r;
    int rc = parse_keyop(argc, argv, g, delete_usage, &a);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (a.cert || a.self_signed || a.subject || a.replace || a.out) {
        cli_error("key delete: only --label is taken");
        return EXIT_USAGE;
    }
    req.key = a.label;
    rc = key_call(g, &req, &r, NULL);
    if (rc == EXIT_OK && g->json) {
        printf("{\"label\":");
        cli_json_string(stdout, a.label, strlen(a.label));
        printf(",\"message\":");
        cli_json_string(stdout, r.message, strlen(r.message));
        printf("}\n");
    }
    sgn_result_free(&r);
    return rc;
}
