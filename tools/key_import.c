/* SPDX-License-Identifier: MIT */
/* itl-sign key import: a PKCS#12 file (CUCM's ITLRecovery.p12) into the token. */
#include "tools/key_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tools/backend.h"

#define P12_LIMIT (1 << 20)

static int parse_fd(const char *arg, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);

    if (!*arg || *end || v > 65535) {
        cli_error("--p12-pass-fd: '%s' is not a file descriptor number", arg);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* ---- key import ---- */

static const char import_usage[] =
    "usage: itl-sign --module M --token URI --pin-file F key import --p12 FILE --label L\n"
    "           [--id HEX] (--p12-pass-file F | --p12-pass-fd N)\n"
    "  Imports the private key, public key and certificate of a PKCS#12 file (CUCM's\n"
    "  ITLRecovery.p12) with one CKA_ID; the private key becomes sensitive and non-extractable.\n"
    "  The password file must be private (mode 0600); without one a terminal is asked.\n";

static int read_p12_password(const char *file, int fd, const char *p12, struct tok_pin *pw)
{
    struct itl_error te = {0};
    char prompt[600];
    int rc;

    if (file && fd >= 0) {
        cli_error("key import: give either --p12-pass-file or --p12-pass-fd, not both");
        return EXIT_USAGE;
    }
    if (file)
        rc = tok_pin_from_file(file, pw, &te);
    else if (fd >= 0)
        rc = tok_pin_from_fd(fd, pw, &te);
    else if (isatty(STDIN_FILENO)) {
        snprintf(prompt, sizeof prompt, "Password for %s: ", p12);
        rc = tok_pin_prompt(prompt, pw, &te);
    } else {
        cli_error("key import: the .p12 password is needed: give --p12-pass-file or "
                  "--p12-pass-fd");
        return EXIT_USAGE;
    }
    if (rc != 0) {
        /* The messages say "PIN"; here it is the .p12 password. */
        cli_error(".p12 password: %s", te.msg);
        return cli_exit_for(&te);
    }
    return EXIT_OK;
}

static void print_import(const struct cli_global *g, const char *label, const char *token,
                         const struct tok_import_report *r)
{
    char id[129], sha[65];

    hex_lower(r->id, r->id_len, 0, id, sizeof id);
    hex_lower(r->cert_sha256, 32, 0, sha, sizeof sha);
    if (g->json) {
        struct cli_json j;

        cli_json_begin(&j);
        cli_json_str(&j, "label", label);
        cli_json_str(&j, "id", id);
        cli_json_str(&j, "key_type", "RSA");
        cli_json_int(&j, "bits", r->bits);
        cli_json_str(&j, "cert_sha256", sha);
        cli_json_bool(&j, "imported", 1);
        cli_json_raw(&j, "local", key_json_bool(r->local));
        cli_json_raw(&j, "always_sensitive", key_json_bool(r->always_sensitive));
        cli_json_raw(&j, "never_extractable", key_json_bool(r->never_extractable));
        cli_json_print(&j);
        return;
    }
    if (g->quiet)
        return;
    printf("imported key '%s' into token '%s': RSA %u, id %s\n", label, token, r->bits, id);
    printf("  certificate SHA-256: %s\n", sha);
    printf("  the private key is sensitive and non-extractable from now on, but it existed\n"
           "  outside the token before: an imported key is never LOCAL / ALWAYS_SENSITIVE /\n"
           "  NEVER_EXTRACTABLE (token says LOCAL=%s ALWAYS_SENSITIVE=%s NEVER_EXTRACTABLE=%s).\n"
           "  Keep the .p12 offline as the backup, or destroy it.\n",
           key_yes_no(r->local), key_yes_no(r->always_sensitive), key_yes_no(r->never_extractable));
    {
        char priv[64], pub[64];
        tok_usage_text(&r->usage, 1, priv, sizeof priv);
        tok_usage_text(&r->usage, 0, pub, sizeof pub);
        printf("  usage:    private=%s public=%s (%s)\n", priv, pub,
               tok_usage_sign_only(&r->usage) ? "sign-only"
                                              : "NOT sign-only: the token allows more");
    }
}

/* The import runs in an engine of this process (direct mode): with --config, the key access
 * rule, the regeneration rules and the audit record are the engine's, as in the service. */
static int import_in_engine(struct cli_global *g, const char *label, const uint8_t *p12,
                            size_t p12_len, const struct tok_pin *pw, const uint8_t *id,
                            size_t id_len)
{
    struct tok_import_report report = {0};
    struct sgn_request req = {.op = POL_OP_KEY,
                              .key_op = SGN_KEY_IMPORT,
                              .key = label,
                              .data = p12,
                              .len = p12_len,
                              .key_id = id,
                              .key_id_len = id_len,
                              .p12_password = pw,
                              .import_report = &report};
    struct sgn_result r;
    struct backend b;
    struct tok_status st = {0};
    struct itl_error te = {0};
    int rc = backend_run(g, &b, &req, &r, NULL);

    if (rc == EXIT_OK)
        rc = key_check_reply(&r, "key import");
    if (rc == EXIT_OK) {
        tok_get_status(b.tok, &st, &te);
        print_import(g, label, st.label, &report);
    }
    sgn_result_free(&r);
    backend_close(&b);
    return rc;
}

struct import_args {
    const char *p12, *label, *pass_file;
    uint8_t id[64];
    size_t id_len;
    unsigned pass_fd;
    int have_fd;
};

static int import_option(int opt, const char *arg, void *ctx)
{
    struct import_args *a = ctx;

    switch (opt) {
    case OPT_P12:
        a->p12 = arg;
        return 1;
    case OPT_LABEL:
        a->label = arg;
        return 1;
    case OPT_ID:
        if (key_parse_hex_id(arg, a->id, &a->id_len) != 0) {
            cli_error("--id: '%s' is not 1 to 64 bytes of hex", arg);
            return -1;
        }
        return 1;
    case OPT_P12_PASS_FILE:
        a->pass_file = arg;
        return 1;
    case OPT_P12_PASS_FD:
        if (parse_fd(arg, &a->pass_fd) != 0)
            return -1;
        a->have_fd = 1;
        return 1;
    default:
        return 0;
    }
}

int cmd_key_import(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        {"p12", required_argument, NULL, OPT_P12},
        {"label", required_argument, NULL, OPT_LABEL},
        {"id", required_argument, NULL, OPT_ID},
        {"p12-pass-file", required_argument, NULL, OPT_P12_PASS_FILE},
        {"p12-pass-fd", required_argument, NULL, OPT_P12_PASS_FD},
        {NULL, 0, NULL, 0}};
    struct import_args a = {0};
    struct cli_options opts = {
        .longopts = longopts, .usage_text = import_usage, .option = import_option, .ctx = &a};
    const char *p12, *label;
    uint8_t *der = NULL;
    size_t der_len;
    int rc;
    struct tok_pin pw = {0};
    struct itl_error err;

    rc = cli_parse_options(argc, argv, g, &opts);
    if (rc != EXIT_OK)
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    p12 = a.p12;
    label = a.label;
    if (!p12 || !label || optind < argc) {
        cli_error("key import: %s",
                  optind < argc ? "unexpected argument" : "--p12 and --label are needed");
        fprintf(stderr, "%s", import_usage);
        return EXIT_USAGE;
    }
    if (cli_read_file(p12, P12_LIMIT, &der, &der_len, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_INPUT;
    }
    rc = read_p12_password(a.pass_file, a.have_fd ? (int)a.pass_fd : -1, p12, &pw);
    if (rc == EXIT_OK && !g->token) {
        cli_error("key import runs in direct mode (--token URI or --direct --config FILE): the "
                  ".p12 and its password never go to the service");
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK)
        rc = import_in_engine(g, label, der, der_len, &pw, a.id_len ? a.id : NULL, a.id_len);
    tok_pin_wipe(&pw);
    OPENSSL_cleanse(der, der_len);
    free(der);
    return rc;
}
