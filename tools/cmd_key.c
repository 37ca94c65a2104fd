/* SPDX-License-Identifier: MIT */
/*
 * itl-sign key import | generate | list | export-cert: key management on the token (direct
 * mode: --module, --token). There is no command that exports a private key.
 */
#include "tools/key_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/key_policy.h"
#include "tools/token_cli.h"

/* ---- key list ---- */

static const char list_usage[] = "usage: itl-sign --module M --token URI --pin-file F key list "
                                 "[--json]\n"
                                 "  Every key / certificate pair on the token, grouped by "
                                 "CKA_ID. object= or id= in the URI narrows the list.\n";

static int key_list(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    struct tok_key_info *keys = NULL;
    struct itl_error te = {0};
    struct tok *t = NULL;
    size_t n = 0;
    struct cli_options opts = {.longopts = longopts, .usage_text = list_usage};
    int rc = cli_parse_options(argc, argv, g, &opts);

    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (optind < argc) {
        cli_error("key list: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    rc = cli_open_token(g, &t);
    if (rc != EXIT_OK)
        return rc;
    if (tok_list_keys(t, &keys, &n, &te) != 0) {
        cli_error("key list: %s", te.msg);
        tok_close(t);
        return cli_exit_for(&te);
    }
    if (g->json) {
        struct cli_json j;

        cli_json_begin_list(&j);
        for (size_t i = 0; i < n; i++) {
            cli_json_open(&j, NULL, '{');
            key_add_info_json(&j, &keys[i]);
            cli_json_close(&j, '}');
        }
        cli_json_print(&j);
    } else {
        for (size_t i = 0; i < n; i++)
            key_print_info_text(&keys[i]);
        if (n == 0 && !g->quiet)
            printf("no keys or certificates on this token\n");
    }
    free(keys);
    tok_close(t);
    return EXIT_OK;
}

/* ---- key export-cert ---- */

static const char export_usage[] =
    "usage: itl-sign --module M --token URI key export-cert --label L [--der] [-o FILE]\n"
    "  The certificate stored with label L, as PEM (default) or DER, to FILE (written\n"
    "  atomically) or stdout. No PIN is needed unless the token hides certificates.\n";

struct export_args {
    const char *label, *out;
    int as_der;
};

static int export_option(int opt, const char *arg, void *ctx)
{
    struct export_args *a = ctx;

    switch (opt) {
    case OPT_LABEL:
        a->label = arg;
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

/* key export-cert --json without -o: the certificate in the document (PEM, or DER as hex). */
static void export_cert_json(const char *label, const uint8_t *der, size_t der_len,
                             const uint8_t *pem, size_t pem_len)
{
    struct cli_json j;

    cli_json_begin(&j);
    cli_json_str(&j, "command", "key export-cert");
    cli_json_str(&j, "label", label);
    if (pem) {
        cli_json_raw(&j, "pem", "");
        json_string(&j.b, (const char *)pem, pem_len);
    } else {
        cli_json_raw(&j, "der_hex", "");
        json_hex(&j.b, der, der_len);
    }
    cli_json_print(&j);
}

static int key_export_cert(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"label", required_argument, NULL, OPT_LABEL},
                                             {"der", no_argument, NULL, OPT_DER},
                                             {"out", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    struct export_args a = {0};
    struct cli_options opts = {.shortopts = "o:",
                               .longopts = longopts,
                               .usage_text = export_usage,
                               .option = export_option,
                               .ctx = &a};
    const char *label, *out;
    uint8_t *der = NULL, *pem = NULL;
    size_t der_len = 0, pem_len = 0;
    struct itl_error te = {0};
    struct tok *t = NULL;
    int rc, as_der;
    struct itl_error err;

    rc = cli_parse_options(argc, argv, g, &opts);
    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    label = a.label;
    out = a.out;
    as_der = a.as_der;
    if (!label || optind < argc) {
        cli_error("key export-cert: %s",
                  optind < argc ? "unexpected argument" : "--label is needed");
        fprintf(stderr, "%s", export_usage);
        return EXIT_USAGE;
    }
    if (as_der && !out && isatty(STDOUT_FILENO)) {
        cli_error("key export-cert: not writing DER to a terminal; use -o FILE");
        return EXIT_USAGE;
    }
    rc = cli_open_token_opt(g, 0, &t);
    if (rc != EXIT_OK)
        return rc;
    if (tok_export_cert(t, label, &der, &der_len, &te) != 0) {
        cli_error("key export-cert: %s", te.msg);
        tok_close(t);
        return cli_exit_for(&te);
    }
    tok_close(t);
    if (!as_der && key_cert_pem(der, der_len, &pem, &pem_len) != 0) {
        cli_error("key export-cert: the certificate '%s' on the token is not valid DER", label);
        free(der);
        return EXIT_TOKEN;
    }
    if (out) {
        if (cli_write_file_atomic(out, as_der ? der : pem, as_der ? der_len : pem_len, 0644,
                                  &err) != 0) {
            cli_error("%s", err.msg);
            rc = EXIT_OUTPUT;
        } else if (g->json) {
            struct cli_json_output o = {out, as_der ? der_len : pem_len, 1};
            cli_json_result("key export-cert", &o, 1, label, NULL, 0);
        }
    } else if (g->json) {
        export_cert_json(label, der, der_len, pem, pem_len);
    } else if (fwrite(as_der ? der : pem, 1, as_der ? der_len : pem_len, stdout) !=
                   (as_der ? der_len : pem_len) ||
               fflush(stdout) != 0) {
        cli_error("key export-cert: cannot write to stdout");
        rc = EXIT_OUTPUT;
    }
    free(der);
    free(pem);
    return rc;
}

/* ---- dispatch ---- */

static const char key_usage[] =
    "usage: itl-sign [GLOBAL OPTIONS] key SUBCOMMAND [OPTIONS]\n"
    "  import       a .p12 (CUCM's ITLRecovery.p12) into the token\n"
    "  generate     a new RSA key on the token and its self-signed certificate\n"
    "  list         keys and certificates on the token (--json)\n"
    "  export-cert  a certificate from the token (PEM or DER)\n"
    "  attest-backup  prove a backup holds the recovery key (--config)\n"
    "  attach-cert  a certificate for a key a vendor tool put on the token\n"
    "  csr          a PKCS#10 request signed by a token key\n"
    "  delete       a key with its public key and certificates (role keys: policy)\n"
    "'itl-sign key SUBCOMMAND --help' for its options.\n";

int cmd_key(int argc, char **argv, struct cli_global *g)
{
    static const struct {
        const char *name;
        cli_command_fn fn;
    } subs[] = {
        {"import", cmd_key_import},
        {"generate", cmd_key_generate},
        {"list", key_list},
        {"export-cert", key_export_cert},
        {"attach-cert", cmd_key_attach_cert},
        {"csr", cmd_key_csr},
        {"delete", cmd_key_delete},
    };

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "%s", key_usage);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "attest-backup") == 0)
        return cmd_key_attest_backup(argc - 1, argv + 1, g);
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1, g); /* optind is 0: a full getopt reset */
    cli_error("key: unknown subcommand '%s' (import, generate, list, export-cert, attest-backup, "
              "attach-cert, csr, delete)",
              argv[1]);
    return EXIT_USAGE;
}
