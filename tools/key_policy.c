/* SPDX-License-Identifier: MIT */
/*
 * The policy side of key management: the regeneration hold around `key generate|import`, and
 * `key attest-backup`, which proves that a backup holds the recovery key and records it.
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

static int role_of_label(const struct pol_config *cfg, const char *label)
{
    for (int i = 0; i < POL_KEY_COUNT; i++)
        if (strcmp(cfg->keys[i].label, label) == 0)
            return i;
    return -1;
}

static void audit_key_event(const struct pol_config *cfg, const char *what, const char *label,
                            const char *result, const char *rule, const char *message)
{
    struct pol_audit *a;
    struct itl_error pe;
    struct pol_peer self = {.uid = getuid(), .gid = getgid(), .pid = getpid()};
    struct pol_audit_record rec = {.time = time(NULL),
                                   .peer = &self,
                                   .op = what,
                                   .key = label,
                                   .result = result,
                                   .rule = rule,
                                   .message = message};

    if (pol_audit_open(cfg->audit_log, &a, &pe) != 0) {
        cli_warn("audit log: %s", pe.msg);
        return;
    }
    if (pol_audit_write(a, &rec, &pe) != 0)
        cli_warn("audit log: %s", pe.msg);
    pol_audit_close(a);
}

/* The current recovery certificate's SHA-256, for the "TFTP key replaced while the recovery key
 * is not backed up" rule. 0 when found, -1 when the token has no recovery certificate. */
static int recovery_cert_sha256(struct tok *t, const struct pol_config *cfg, uint8_t sha[32])
{
    uint8_t *der = NULL;
    size_t len = 0;
    struct itl_error te = {0};

    if (tok_export_cert(t, cfg->keys[POL_KEY_RECOVERY].label, &der, &len, &te) != 0)
        return -1;
    EVP_Digest(der, len, sha, NULL, EVP_sha256(), NULL);
    free(der);
    return 0;
}

static int deny(const struct pol_config *cfg, const char *what, const char *label,
                const struct pol_decision *d)
{
    cli_error("%s", d->message);
    audit_key_event(cfg, what, label, "denied", d->rule, d->message);
    return EXIT_DENIED;
}

int key_policy_reserve_regen(const struct cli_global *g, struct tok *t, const char *label,
                             const char *what)
{
    struct pol_config cfg;
    struct pol_state st;
    struct pol_regen_event ev = {0};
    struct pol_decision d = {0};
    struct itl_error pe;
    uint8_t rec_sha[32];
    int role, have_recovery, rc = load_config(g, &cfg);

    if (rc != EXIT_OK)
        return rc;
    role = role_of_label(&cfg, label);
    if (role < 0)
        return EXIT_OK; /* not a role key: no regeneration rules */
    if (!g->config) {
        cli_warn("no --config: the regeneration hold and backup rules of %s key '%s' are not "
                 "checked",
                 pol_key_role_name((enum pol_key_role)role), label);
        return EXIT_OK;
    }
    {
        struct tok_key_info existing;
        struct itl_error te = {0};
        /* The label is taken: the token layer refuses the operation, which then changes
         * nothing and must not start a hold. */
        if (tok_key_attributes(t, label, &existing, &te) == 0)
            return EXIT_OK;
    }
    if (pol_state_load(cfg.state_dir, &st, &pe) != 0) {
        cli_error("policy state: %s", pe.msg);
        return cli_exit_for_io(&pe, EXIT_DENIED);
    }
    ev.key = (enum pol_key_role)role;
    ev.time = time(NULL);
    have_recovery = recovery_cert_sha256(t, &cfg, rec_sha) == 0;
    if (pol_check_regen(&cfg, &st, ev.key, have_recovery ? rec_sha : NULL, ev.time, &d) != 0)
        return deny(&cfg, what, label, &d);
    snprintf(ev.label, sizeof ev.label, "%s", label);
    ev.uid = getuid();
    /* Recorded before the key changes, in one locked step that checks the hold again: two
     * administrators racing cannot both pass it. */
    if (pol_state_record_regen(cfg.state_dir, &cfg, &ev, &d, &pe) != 0) {
        if (!d.allow && d.message[0])
            return deny(&cfg, what, label, &d);
        cli_error("policy state: %s", pe.msg);
        return cli_exit_for_io(&pe, EXIT_DENIED);
    }
    audit_key_event(&cfg, what, label, "ok", "regen-hold", NULL);
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
    char err[600];
    struct tok_pin pw = {0};
    struct itl_error te = {0};
    int rc;

    if (cli_read_file(o->p12, 1 << 20, &buf, &len, err, sizeof err) != 0) {
        cli_error("%s", err);
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

int cmd_key_attest_backup(int argc, char **argv, struct cli_global *g)
{
    struct attest_opts o = {0};
    struct pol_config cfg;
    struct pol_attestation a = {0};
    struct itl_error pe;
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
        audit_key_event(&cfg, "attest-backup", label, "denied", "backup", "attestation failed");
        goto out;
    }
    a.key = POL_KEY_RECOVERY;
    EVP_Digest(cert, cert_len, a.cert_sha256, NULL, EVP_sha256(), NULL);
    snprintf(a.kind, sizeof a.kind, "%s", o.backup_token ? "token" : "p12");
    a.time = time(NULL);
    a.uid = getuid();
    if (pol_state_record_attestation(cfg.state_dir, &a, &pe) != 0) {
        cli_error("policy state: %s", pe.msg);
        rc = cli_exit_for_io(&pe, EXIT_OUTPUT);
        goto out;
    }
    audit_key_event(&cfg, "attest-backup", label, "ok", "backup", a.identity);
    if (g->json) {
        struct cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "command", "key attest-backup");
        cli_json_str(&j, "label", label);
        cli_json_str(&j, "kind", a.kind);
        cli_json_str(&j, "identity", a.identity);
        cli_json_bool(&j, "recorded", 1);
        cli_json_print(&j);
    } else if (!g->quiet) {
        printf("The backup (%s %s) holds the ITL Recovery key '%s'; attestation recorded.\n",
               a.kind, a.identity, label);
    }
out:
    EVP_PKEY_free(pub);
    free(cert);
    tok_close(t);
    return rc;
}
