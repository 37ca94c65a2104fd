/* SPDX-License-Identifier: MIT */
/*
 * `key attest-backup`: proves that a backup holds the recovery key (a challenge signed on the
 * backup token, or the .p12's key), then has the engine record it in the policy state and the
 * audit log (signer/engine_keyops.c), like every other key operation.
 */
#include "tools/key_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "pkcs11/token.h"
#include "policy/policy.h"
#include "tools/backend.h"
#include "tools/token_cli.h"

static int load_config(const struct cli_global *g, struct pol_config *cfg)
{
    struct itl_error pe;

    if (!g->config) {
        pol_config_defaults(cfg);
        return EXIT_OK;
    }
    if (pol_config_load(g->config, cfg, &pe) != 0) {
        cli_error("%s", pe.msg);
        return cli_exit_for_io(&pe, EXIT_USAGE);
    }
    /* The state written here is the service's: trust the owners the service trusts. */
    if (pol_state_set_owner(cfg, &pe) != 0) {
        cli_error("%s", pe.msg);
        return cli_exit_for_io(&pe, EXIT_USAGE);
    }
    return EXIT_OK;
}

/* ---- attest-backup ---- */

enum {
    OPT_KEY = OPT_FIRST_COMMAND_OPTION,
    OPT_BACKUP_TOKEN,
    OPT_BACKUP_MODULE,
    OPT_BACKUP_PIN_FILE,
    OPT_BACKUP_LABEL,
    OPT_P12,
    OPT_P12_PASS_FILE,
};

struct attest_opts {
    const char *key;
    const char *backup_token, *backup_module, *backup_pin_file, *backup_label;
    const char *p12, *p12_pass_file;
};

static void attest_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign --token URI ... --config FILE key attest-backup --key recovery\n"
               "         (--backup-token URI --backup-pin-file F [--backup-module M]\n"
               "          [--backup-label L] | --p12 FILE --p12-pass-file F)\n"
               "Prove that a backup holds the same private key as the token's recovery key, and\n"
               "record the attestation in the policy state.\n");
}

static EVP_PKEY *cert_public_key(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    EVP_PKEY *pk = x ? X509_get_pubkey(x) : NULL;
    X509_free(x);
    return pk;
}

static int verify_sha256(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig,
                         size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* A fresh challenge signed on the backup token must verify with the primary certificate. */
static int attest_token(const struct attest_opts *o, const char *module, const char *label,
                        EVP_PKEY *primary_pub, char *identity, size_t identity_size)
{
    /* The backup is usually another token of the same module (an HSM partition, a second
     * SoftHSM2 token): --backup-module only when it is not. */
    struct tok_options to = {.module = o->backup_module ? o->backup_module : module,
                             .uri = o->backup_token,
                             .pool_size = 1};
    struct tok *t = NULL;
    struct tok_key *k = NULL;
    struct tok_pin pin = {0};
    struct tok_status st = {0};
    struct itl_error te = {0};
    uint8_t challenge[32], sig[1024];
    size_t sig_len = sizeof sig;
    int rc = EXIT_TOKEN;

    if (RAND_bytes(challenge, sizeof challenge) != 1)
        return EXIT_TOKEN;
    if (tok_pin_from_file(o->backup_pin_file, &pin, &te) != 0 || tok_open(&to, &t, &te) != 0 ||
        tok_login(t, &pin, &te) != 0 || tok_find_key(t, label, &k, &te) != 0 ||
        tok_sign_data(t, k, NID_sha256, challenge, sizeof challenge, sig, &sig_len, &te) != 0) {
        cli_error("backup token: %s", te.msg);
        rc = cli_exit_for(&te);
        goto out;
    }
    if (verify_sha256(primary_pub, challenge, sizeof challenge, sig, sig_len) != 0) {
        cli_error("the backup token's key '%s' is NOT the recovery key: its signature of a fresh "
                  "challenge does not verify with the primary certificate",
                  label);
        rc = EXIT_INVALID;
        goto out;
    }
    tok_get_status(t, &st, &te);
    snprintf(identity, identity_size, "label=%s;serial=%s", st.label, st.serial);
    rc = EXIT_OK;
out:
    tok_pin_wipe(&pin);
    tok_key_free(k);
    tok_close(t);
    return rc;
}

/* The .p12 must hold the recovery key: same public key, and a test signature by its private key
 * verifies with the primary certificate. */
static int attest_p12(const struct attest_opts *o, const uint8_t *cert, size_t cert_len,
                      char *identity, size_t identity_size)
{
    uint8_t *buf = NULL, sha[32];
    size_t len;
    struct itl_error err;
    struct tok_pin pw = {0};
    struct itl_error te = {0};
    int rc;

    if (cli_read_file(o->p12, 1 << 20, &buf, &len, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_INPUT;
    }
    if (tok_pin_from_file(o->p12_pass_file, &pw, &te) != 0) {
        cli_error("%s", te.msg);
        free(buf);
        return cli_exit_for(&te);
    }
    rc = tok_p12_holds_key(buf, len, &pw, cert, cert_len, &te);
    tok_pin_wipe(&pw);
    if (rc != 0) {
        cli_error("%s: %s; it is not a backup of the recovery key", o->p12, te.msg);
        free(buf);
        return cli_exit_for(&te);
    }
    EVP_Digest(buf, len, sha, NULL, EVP_sha256(), NULL);
    free(buf);
    snprintf(identity, identity_size, "sha256:");
    for (int i = 0; i < 32; i++)
        snprintf(identity + 7 + 2 * i, identity_size - 7 - 2 * i, "%02x", sha[i]);
    return EXIT_OK;
}

static int attest_option(int opt, const char *arg, void *ctx)
{
    struct attest_opts *o = ctx;

    switch (opt) {
    case OPT_KEY:
        o->key = arg;
        return 1;
    case OPT_BACKUP_TOKEN:
        o->backup_token = arg;
        return 1;
    case OPT_BACKUP_MODULE:
        o->backup_module = arg;
        return 1;
    case OPT_BACKUP_PIN_FILE:
        o->backup_pin_file = arg;
        return 1;
    case OPT_BACKUP_LABEL:
        o->backup_label = arg;
        return 1;
    case OPT_P12:
        o->p12 = arg;
        return 1;
    case OPT_P12_PASS_FILE:
        o->p12_pass_file = arg;
        return 1;
    default:
        return 0;
    }
}

static int parse_attest(int argc, char **argv, struct cli_global *g, struct attest_opts *o)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        {"key", required_argument, NULL, OPT_KEY},
        {"backup-token", required_argument, NULL, OPT_BACKUP_TOKEN},
        {"backup-module", required_argument, NULL, OPT_BACKUP_MODULE},
        {"backup-pin-file", required_argument, NULL, OPT_BACKUP_PIN_FILE},
        {"backup-label", required_argument, NULL, OPT_BACKUP_LABEL},
        {"p12", required_argument, NULL, OPT_P12},
        {"p12-pass-file", required_argument, NULL, OPT_P12_PASS_FILE},
        {NULL, 0, NULL, 0}};
    struct cli_options opts = {
        .longopts = longopts, .usage = attest_usage, .option = attest_option, .ctx = o};
    int rc = cli_parse_options(argc, argv, g, &opts);

    if (rc == CLI_HELP_SHOWN)
        exit(EXIT_OK);
    if (rc != EXIT_OK)
        return rc;
    if (optind != argc || (o->key && strcmp(o->key, "recovery") != 0) ||
        !!o->backup_token == !!o->p12 || (o->backup_token && !o->backup_pin_file) ||
        (o->p12 && !o->p12_pass_file)) {
        attest_usage(stderr);
        return EXIT_USAGE;
    }
    if (!g->config) {
        cli_error("key attest-backup records into the policy state: give --config");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The engine of this process records the attestation in the state and writes the audit
 * record (the one writer of both, as in the service), or the failure. */
static int record_attestation(struct cli_global *g, const char *label,
                              const struct pol_attestation *a, const char *failure)
{
    struct sgn_request req = {.op = POL_OP_KEY,
                              .key_op = SGN_KEY_ATTEST_BACKUP,
                              .key = label,
                              .attestation = a,
                              .attest_failure = failure};
    struct sgn_result r;
    struct backend b;
    int rc = backend_run(g, &b, &req, &r, NULL);

    if (rc == EXIT_OK) {
        if (r.status != SGN_OK && !failure) {
            cli_error("%s", r.message);
            rc = backend_exit_code(r.status);
        } else if (r.status == SGN_OK && g->json && !failure) {
            struct cli_json j;
            cli_json_begin(&j);
            cli_json_str(&j, "command", "key attest-backup");
            cli_json_str(&j, "status", "ok");
            cli_json_str(&j, "label", label);
            cli_json_str(&j, "message", r.message);
            cli_json_print(&j);
        } else if (r.status == SGN_OK && !g->quiet && !g->json) {
            printf("%s\n", r.message);
        }
    }
    sgn_result_free(&r);
    backend_close(&b);
    return failure ? EXIT_OK : rc;
}

int cmd_key_attest_backup(int argc, char **argv, struct cli_global *g)
{
    struct attest_opts o = {0};
    struct pol_config cfg;
    struct pol_attestation a = {0};
    struct tok *t = NULL;
    struct itl_error te = {0};
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    EVP_PKEY *pub = NULL;
    const char *label;
    int rc = parse_attest(argc, argv, g, &o);

    if (rc == EXIT_OK)
        rc = load_config(g, &cfg);
    if (rc != EXIT_OK)
        return rc;
    label = cfg.keys[POL_KEY_RECOVERY].label;
    rc = cli_open_token(g, &t);
    if (rc != EXIT_OK)
        return rc;
    if (tok_export_cert(t, label, &cert, &cert_len, &te) != 0) {
        cli_error("recovery certificate '%s': %s", label, te.msg);
        rc = cli_exit_for(&te);
        goto out;
    }
    tok_close(t);
    t = NULL; /* the backup may be on the same module: one login at a time */
    pub = cert_public_key(cert, cert_len);
    if (!pub) {
        cli_error("the recovery certificate '%s' on the token is not valid X.509", label);
        rc = EXIT_TOKEN;
        goto out;
    }
    if (o.backup_token)
        rc = attest_token(&o, g->module, o.backup_label ? o.backup_label : label, pub, a.identity,
                          sizeof a.identity);
    else
        rc = attest_p12(&o, cert, cert_len, a.identity, sizeof a.identity);
    if (rc != EXIT_OK) {
        record_attestation(g, label, NULL, "attestation failed");
        goto out;
    }
    a.key = POL_KEY_RECOVERY;
    EVP_Digest(cert, cert_len, a.cert_sha256, NULL, EVP_sha256(), NULL);
    snprintf(a.kind, sizeof a.kind, "%s", o.backup_token ? "token" : "p12");
    a.time = time(NULL);
    a.uid = getuid();
    rc = record_attestation(g, label, &a, NULL);
out:
    EVP_PKEY_free(pub);
    free(cert);
    tok_close(t);
    return rc;
}
