/* SPDX-License-Identifier: MIT */
/*
 * itl-sign key import | generate | list | export-cert: key management on the token (direct
 * mode: --module, --token). There is no command that exports a private key.
 */
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pkcs11/token.h"
#include "tools/key_policy.h"
#include "tools/token_cli.h"

#define P12_LIMIT (1 << 20)

enum {
    OPT_P12 = OPT_FIRST_COMMAND_OPTION,
    OPT_LABEL,
    OPT_ID,
    OPT_P12_PASS_FILE,
    OPT_P12_PASS_FD,
    OPT_SUBJECT,
    OPT_BITS,
    OPT_DAYS,
    OPT_CERT_OUT,
    OPT_DER,
    OPT_OUT,
};

static int exit_for(const struct itl_error *te)
{
    return te->cls == ITL_E_USAGE ? EXIT_USAGE : EXIT_TOKEN;
}

static int parse_hex_id(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = 0;

    for (const char *p = hex; *p;) {
        unsigned v;
        if (*p == ':') {
            p++;
            continue;
        }
        if (n == 64 || sscanf(p, "%2x", &v) != 1 || !p[1] || p[1] == ':' ||
            strspn(p, "0123456789abcdefABCDEF") < 2)
            return -1;
        out[n++] = (uint8_t)v;
        p += 2;
    }
    *len = n;
    return n ? 0 : -1;
}

static int parse_uint(const char *opt, const char *arg, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);

    if (!*arg || *end || v == 0 || v > max) {
        cli_error("%s: '%s' is not a number from 1 to %u", opt, arg, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

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

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    if (!t || !gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "unknown");
}

static const char *yes_no(int v)
{
    return v < 0 ? "unknown" : v ? "yes" : "no";
}

static const char *json_bool(int v)
{
    return v < 0 ? "null" : v ? "true" : "false";
}

static void json_str(const char *key, const char *value, int comma)
{
    printf("\"%s\":", key);
    cli_json_string(stdout, value, strlen(value));
    if (comma)
        putchar(',');
}

/* Common option handling: returns 1 when the option was global, -1 on a bad value. */
static int global_or_bad(struct cli_global *g, int opt, const char *usage)
{
    int r = cli_global_option(g, opt, optarg);
    if (r != 0)
        return r;
    if (opt == OPT_HELP) {
        printf("%s", usage);
        exit(EXIT_OK);
    }
    fprintf(stderr, "%s", usage);
    return -1;
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
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static void print_import(const struct cli_global *g, const char *label, const char *token,
                         const struct tok_import_report *r)
{
    char id[129], sha[65];

    cli_hex(r->id, r->id_len, 0, id, sizeof id);
    cli_hex(r->cert_sha256, 32, 0, sha, sizeof sha);
    if (g->json) {
        printf("{");
        json_str("label", label, 1);
        json_str("id", id, 1);
        printf("\"key_type\":\"RSA\",\"bits\":%u,", r->bits);
        json_str("cert_sha256", sha, 1);
        printf("\"imported\":true,\"local\":%s,\"always_sensitive\":%s,\"never_extractable\":%s}\n",
               json_bool(r->local), json_bool(r->always_sensitive),
               json_bool(r->never_extractable));
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
           yes_no(r->local), yes_no(r->always_sensitive), yes_no(r->never_extractable));
}

static int key_import(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        {"p12", required_argument, NULL, OPT_P12},
        {"label", required_argument, NULL, OPT_LABEL},
        {"id", required_argument, NULL, OPT_ID},
        {"p12-pass-file", required_argument, NULL, OPT_P12_PASS_FILE},
        {"p12-pass-fd", required_argument, NULL, OPT_P12_PASS_FD},
        {NULL, 0, NULL, 0}};
    const char *p12 = NULL, *label = NULL, *pass_file = NULL;
    uint8_t id[64], *der = NULL;
    size_t id_len = 0, der_len;
    unsigned pass_fd = 0;
    int have_fd = 0, opt, rc;
    struct tok_pin pw = {0};
    struct tok_import_report report;
    struct tok_status st;
    struct itl_error te = {0};
    struct tok *t = NULL;
    char err[600];

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_P12:
            p12 = optarg;
            break;
        case OPT_LABEL:
            label = optarg;
            break;
        case OPT_ID:
            if (parse_hex_id(optarg, id, &id_len) != 0) {
                cli_error("--id: '%s' is not 1 to 64 bytes of hex", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_P12_PASS_FILE:
            pass_file = optarg;
            break;
        case OPT_P12_PASS_FD:
            if (parse_fd(optarg, &pass_fd) != 0)
                return EXIT_USAGE;
            have_fd = 1;
            break;
        default:
            if (global_or_bad(g, opt, import_usage) < 0)
                return EXIT_USAGE;
        }
    }
    if (!p12 || !label || optind < argc) {
        cli_error("key import: %s",
                  optind < argc ? "unexpected argument" : "--p12 and --label are needed");
        fprintf(stderr, "%s", import_usage);
        return EXIT_USAGE;
    }
    if (cli_read_file(p12, P12_LIMIT, &der, &der_len, err, sizeof err) != 0) {
        cli_error("%s", err);
        return EXIT_INPUT;
    }
    rc = read_p12_password(pass_file, have_fd ? (int)pass_fd : -1, p12, &pw);
    if (rc == EXIT_OK)
        rc = cli_open_token(g, &t);
    if (rc == EXIT_OK)
        rc = key_policy_reserve_regen(g, t, label, "key import");
    if (rc == EXIT_OK) {
        if (tok_import_p12(t, der, der_len, &pw, label, id_len ? id : NULL, id_len, &report, &te) !=
            0) {
            cli_error("key import: %s", te.msg);
            rc = exit_for(&te);
        } else {
            tok_get_status(t, &st, &te);
            print_import(g, label, st.label, &report);
        }
    }
    tok_pin_wipe(&pw);
    OPENSSL_cleanse(der, der_len);
    free(der);
    tok_close(t);
    return rc;
}

/* ---- key generate ---- */

static const char generate_usage[] =
    "usage: itl-sign --module M --token URI --pin-file F key generate --label L --subject S\n"
    "           [--bits 2048|3072|4096] [--days N] [--id HEX] [--cert-out FILE]\n"
    "  Generates an RSA key pair on the token (sensitive, non-extractable) and a self-signed\n"
    "  CA-style certificate signed by it, stored with the same CKA_ID. S is RFC 4514 style,\n"
    "  most specific first: \"CN=ITLRECOVERY_pub,OU=VTG,O=Cisco,L=RTP,ST=NC,C=US\".\n";

static int cert_pem(const uint8_t *der, size_t len, uint8_t **pem, size_t *pem_len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int rc = -1;

    if (x && bio && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0 &&
        (*pem = malloc((size_t)n))) {
        memcpy(*pem, data, (size_t)n);
        *pem_len = (size_t)n;
        rc = 0;
    }
    X509_free(x);
    BIO_free(bio);
    return rc;
}

static void print_key_info_text(const struct tok_key_info *k)
{
    char id[129], sha[65], from[32], to[32];

    cli_hex(k->id, k->id_len, 0, id, sizeof id);
    printf("%s\n", k->label[0] ? k->label : "(no label)");
    printf("  id:       %s\n", id);
    if (k->key_type[0])
        printf("  key:      %s %u%s\n", k->key_type, k->bits,
               k->has_private ? (k->has_public ? " (private + public key)" : " (private key)")
                              : " (certificate only, no private key)");
    if (k->has_cert) {
        iso_time(k->not_before, from);
        iso_time(k->not_after, to);
        cli_hex(k->cert_sha256, 32, 0, sha, sizeof sha);
        printf("  subject:  %s\n", k->subject);
        printf("  serial:   %s\n", k->serial_hex);
        printf("  valid:    %s .. %s\n", from, to);
        printf("  cert SHA-256: %s\n", sha);
    } else {
        printf("  certificate: none (signing needs one with the same CKA_ID)\n");
    }
    if (k->has_private)
        printf("  local=%s always_sensitive=%s never_extractable=%s extractable=%s "
               "sensitive=%s\n",
               yes_no(k->local), yes_no(k->always_sensitive), yes_no(k->never_extractable),
               yes_no(k->extractable), yes_no(k->sensitive));
}

static void print_key_info_json(const struct tok_key_info *k)
{
    char id[129], sha[65], from[32], to[32];

    cli_hex(k->id, k->id_len, 0, id, sizeof id);
    printf("{");
    json_str("label", k->label, 1);
    json_str("id", id, 1);
    json_str("key_type", k->key_type, 0);
    printf(",\"bits\":%u,\"has_private\":%s,\"has_public\":%s,\"has_cert\":%s,", k->bits,
           json_bool(k->has_private), json_bool(k->has_public), json_bool(k->has_cert));
    if (k->has_cert) {
        iso_time(k->not_before, from);
        iso_time(k->not_after, to);
        cli_hex(k->cert_sha256, 32, 0, sha, sizeof sha);
        json_str("subject", k->subject, 1);
        json_str("serial", k->serial_hex, 1);
        json_str("not_before", from, 1);
        json_str("not_after", to, 1);
        json_str("cert_sha256", sha, 1);
    }
    printf("\"local\":%s,\"always_sensitive\":%s,\"never_extractable\":%s,\"extractable\":%s,"
           "\"sensitive\":%s}",
           json_bool(k->local), json_bool(k->always_sensitive), json_bool(k->never_extractable),
           json_bool(k->extractable), json_bool(k->sensitive));
}

static int write_cert_pem(const char *path, const uint8_t *der, size_t len)
{
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    char err[600];
    int rc = EXIT_OK;

    if (cert_pem(der, len, &pem, &pem_len) != 0) {
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

static int key_generate(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"label", required_argument, NULL, OPT_LABEL},
                                             {"subject", required_argument, NULL, OPT_SUBJECT},
                                             {"bits", required_argument, NULL, OPT_BITS},
                                             {"days", required_argument, NULL, OPT_DAYS},
                                             {"id", required_argument, NULL, OPT_ID},
                                             {"cert-out", required_argument, NULL, OPT_CERT_OUT},
                                             {NULL, 0, NULL, 0}};
    struct tok_generate_opts o = {.bits = 2048, .days = 1825};
    const char *cert_out = NULL;
    uint8_t id[64], *der = NULL;
    size_t id_len = 0, der_len = 0;
    struct tok_key_info info;
    struct itl_error te = {0};
    struct tok *t = NULL;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_LABEL:
            o.label = optarg;
            break;
        case OPT_SUBJECT:
            o.subject = optarg;
            break;
        case OPT_BITS:
            if (parse_uint("--bits", optarg, 16384, &o.bits) != 0)
                return EXIT_USAGE;
            break;
        case OPT_DAYS:
            if (parse_uint("--days", optarg, 36500, &o.days) != 0)
                return EXIT_USAGE;
            break;
        case OPT_ID:
            if (parse_hex_id(optarg, id, &id_len) != 0) {
                cli_error("--id: '%s' is not 1 to 64 bytes of hex", optarg);
                return EXIT_USAGE;
            }
            o.id = id;
            o.id_len = id_len;
            break;
        case OPT_CERT_OUT:
            cert_out = optarg;
            break;
        default:
            if (global_or_bad(g, opt, generate_usage) < 0)
                return EXIT_USAGE;
        }
    }
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
        return exit_for(&te);
    }
    if (cert_out)
        rc = write_cert_pem(cert_out, der, der_len);
    if (tok_key_attributes(t, o.label, &info, &te) != 0) {
        cli_error("key generate: the key was made, but reading it back failed: %s", te.msg);
        rc = EXIT_TOKEN;
    } else if (g->json) {
        print_key_info_json(&info);
        putchar('\n');
    } else if (!g->quiet) {
        printf("generated on the token: ");
        print_key_info_text(&info);
        if (cert_out && rc == EXIT_OK)
            printf("  certificate written to %s\n", cert_out);
    }
    free(der);
    tok_close(t);
    return rc;
}

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
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (global_or_bad(g, opt, list_usage) < 0)
            return EXIT_USAGE;
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
        return exit_for(&te);
    }
    if (g->json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                printf(",");
            print_key_info_json(&keys[i]);
        }
        printf("]\n");
    } else {
        for (size_t i = 0; i < n; i++)
            print_key_info_text(&keys[i]);
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

static int key_export_cert(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                             {"label", required_argument, NULL, OPT_LABEL},
                                             {"der", no_argument, NULL, OPT_DER},
                                             {"out", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    const char *label = NULL, *out = NULL;
    uint8_t *der = NULL, *pem = NULL;
    size_t der_len = 0, pem_len = 0;
    struct itl_error te = {0};
    struct tok *t = NULL;
    int opt, rc, as_der = 0;
    char err[600];

    while ((opt = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_LABEL:
            label = optarg;
            break;
        case OPT_DER:
            as_der = 1;
            break;
        case 'o':
            out = optarg;
            break;
        default:
            if (global_or_bad(g, opt, export_usage) < 0)
                return EXIT_USAGE;
        }
    }
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
        return exit_for(&te);
    }
    tok_close(t);
    if (!as_der && cert_pem(der, der_len, &pem, &pem_len) != 0) {
        cli_error("key export-cert: the certificate '%s' on the token is not valid DER", label);
        free(der);
        return EXIT_TOKEN;
    }
    if (out) {
        if (cli_write_file_atomic(out, as_der ? der : pem, as_der ? der_len : pem_len, 0644, err,
                                  sizeof err) != 0) {
            cli_error("%s", err);
            rc = EXIT_OUTPUT;
        }
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
    "'itl-sign key SUBCOMMAND --help' for its options.\n";

int cmd_key(int argc, char **argv, struct cli_global *g)
{
    static const struct {
        const char *name;
        cli_command_fn fn;
    } subs[] = {
        {"import", key_import},
        {"generate", key_generate},
        {"list", key_list},
        {"export-cert", key_export_cert},
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
    cli_error("key: unknown subcommand '%s' (import, generate, list, export-cert, attest-backup)",
              argv[1]);
    return EXIT_USAGE;
}
