/* SPDX-License-Identifier: MIT */
/* policy: the YAML configuration, its defaults, and its error messages. */
#include "policy/policy.h"
#include "tests/unit/testlib.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pol_config cfg;
static struct itl_error err;

static int parse(const char *text)
{
    memset(&err, 0, sizeof err);
    return pol_config_parse(text, strlen(text), "itl-signd.yaml", &cfg, &err);
}

/* The parse fails with exactly this message. */
#define ck_parse_error(text, message)                                                              \
    do {                                                                                           \
        ck_assert_int_eq(parse(text), -1);                                                         \
        ck_assert_str_eq(err.msg, message);                                                        \
    } while (0)

START_TEST(test_defaults)
{
    ck_assert_int_eq(parse(""), 0);
    ck_assert_str_eq(cfg.path, "itl-signd.yaml");
    ck_assert_int_eq(cfg.node.role, POL_NODE_PUBLISHER);
    ck_assert_str_ne(cfg.node.name, "");
    ck_assert_str_eq(cfg.keys[POL_KEY_RECOVERY].label, "ITLRecovery");
    ck_assert_str_eq(cfg.keys[POL_KEY_TFTP].label, "CallManager");
    ck_assert_int_eq(cfg.policy.regen_hold, 300);
    ck_assert_int_eq(cfg.policy.backup, POL_BACKUP_WARN);
    ck_assert_uint_eq(cfg.policy.max_itl_bytes, 65535);
    ck_assert_int_eq(cfg.policy.expired, POL_EXPIRED_REFUSE);
    ck_assert_uint_eq(cfg.policy.signs[POL_KEY_RECOVERY], POL_FILE_ITL);
    ck_assert_uint_eq(cfg.policy.signs[POL_KEY_TFTP], POL_FILE_ITL | POL_FILE_CONFIG);
    ck_assert_int_eq(cfg.policy.digest, 1);
    ck_assert_str_eq(cfg.socket.path, "/run/itl-sign/socket");
    ck_assert_uint_eq(cfg.socket.mode, 0660);
    ck_assert_uint_eq(cfg.socket.max_connections, 64);
    ck_assert_uint_eq(cfg.socket.timeout_ms, 30000);
    ck_assert_uint_eq(cfg.socket.max_request_bytes, 4 * 1024 * 1024);
    ck_assert_str_eq(cfg.state_dir, "/var/lib/itl-sign");
    ck_assert_str_eq(cfg.audit_log, "/var/log/itl-sign/audit.log");
    ck_assert_str_eq(cfg.token.module, "");
    ck_assert_uint_eq(cfg.token.pool_size, 0);
    ck_assert_uint_eq(cfg.n_access, 0);
    /* the service needs a token */
    ck_assert_int_eq(pol_config_check_service(&cfg, &err), -1);
    ck_assert_str_eq(err.msg,
                     "itl-signd.yaml: token.uri is required (e.g. uri: \"pkcs11:token=itl-sign\")");
}
END_TEST

/* The shipped example is complete: every key, every value differing from its default. */
START_TEST(test_example_file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/etc/itl-signd.yaml.example", testlib_src());
    memset(&err, 0, sizeof err);
    ck_assert_msg(pol_config_load(path, &cfg, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(cfg.path, path);
    ck_assert_str_eq(cfg.node.name, "cucm-pub");
    ck_assert_int_eq(cfg.node.role, POL_NODE_PUBLISHER);
    ck_assert_str_eq(cfg.token.module, "/usr/lib/softhsm/libsofthsm2.so");
    ck_assert_str_eq(cfg.token.uri, "pkcs11:token=itl-sign");
    ck_assert_str_eq(cfg.token.pin_file, "/run/credentials/itl-signd.service/pin");
    ck_assert_uint_eq(cfg.token.pool_size, 2);
    ck_assert_int_eq(cfg.policy.backup, POL_BACKUP_REQUIRE);
    ck_assert_uint_eq(cfg.n_access, 2);
    ck_assert_int_eq(cfg.access[0].is_group, 1);
    ck_assert_str_eq(cfg.access[0].name, "itl-admin");
    ck_assert_uint_eq(cfg.access[0].allow, (1u << POL_OP_COUNT) - 1);
    ck_assert_int_eq(cfg.access[1].is_group, 0);
    ck_assert_str_eq(cfg.access[1].name, "tftp");
    ck_assert_uint_eq(cfg.access[1].allow, (1u << POL_OP_SIGN) | (1u << POL_OP_ENCRYPT));
    ck_assert_int_gt(cfg.access[1].line, cfg.access[0].line);
    ck_assert_str_eq(cfg.socket.owner, "itl-sign");
    ck_assert_str_eq(cfg.run_as.user, "itl-sign");
    ck_assert_str_eq(cfg.run_as.group, "itl-sign");
    ck_assert_int_eq(pol_config_check_service(&cfg, &err), 0);
}
END_TEST

START_TEST(test_every_key)
{
    const char *text = "node: { name: cucm-sub1, role: subscriber }\n"
                       "token:\n"
                       "  module: p11-kit-trust\n"
                       "  uri: \"pkcs11:token=hsm;serial=42\"\n"
                       "  pin-file: /run/credentials/itl-signd/pin\n"
                       "  pool-size: 0\n"
                       "keys:\n"
                       "  recovery: { label: RecoveryKey }\n"
                       "  tftp: { label: TFTPKey }\n"
                       "policy:\n"
                       "  regen-hold: 90s\n"
                       "  backup: off\n"
                       "  max-itl-bytes: 32768\n"
                       "  expired: warn\n"
                       "  recovery-signs: [itl, config]\n"
                       "  tftp-signs: [config]\n"
                       "  digest: sha512\n"
                       "access: []\n"
                       "socket: { path: /tmp/s, mode: \"0600\", owner: a, group: b,\n"
                       "          max-connections: 8, timeout: 2m, max-request-bytes: 1048576 }\n"
                       "run-as: { user: \"1234\", group: \"5678\" }\n"
                       "state-dir: /srv/state\n"
                       "audit-log: /srv/audit.log\n";
    ck_assert_msg(parse(text) == 0, "%s", err.msg);
    ck_assert_str_eq(cfg.node.name, "cucm-sub1");
    ck_assert_int_eq(cfg.node.role, POL_NODE_SUBSCRIBER);
    ck_assert_str_eq(cfg.token.module, "p11-kit-trust");
    ck_assert_str_eq(cfg.token.uri, "pkcs11:token=hsm;serial=42");
    ck_assert_str_eq(cfg.token.pin_file, "/run/credentials/itl-signd/pin");
    ck_assert_str_eq(cfg.keys[POL_KEY_RECOVERY].label, "RecoveryKey");
    ck_assert_str_eq(cfg.keys[POL_KEY_TFTP].label, "TFTPKey");
    ck_assert_int_eq(cfg.policy.regen_hold, 90);
    ck_assert_int_eq(cfg.policy.backup, POL_BACKUP_OFF);
    ck_assert_uint_eq(cfg.policy.max_itl_bytes, 32768);
    ck_assert_int_eq(cfg.policy.expired, POL_EXPIRED_WARN);
    ck_assert_uint_eq(cfg.policy.signs[POL_KEY_RECOVERY], POL_FILE_ITL | POL_FILE_CONFIG);
    ck_assert_uint_eq(cfg.policy.signs[POL_KEY_TFTP], POL_FILE_CONFIG);
    ck_assert_int_eq(cfg.policy.digest, 3);
    ck_assert_uint_eq(cfg.n_access, 0);
    ck_assert_str_eq(cfg.socket.path, "/tmp/s");
    ck_assert_uint_eq(cfg.socket.mode, 0600);
    ck_assert_str_eq(cfg.socket.owner, "a");
    ck_assert_str_eq(cfg.socket.group, "b");
    ck_assert_uint_eq(cfg.socket.max_connections, 8);
    ck_assert_uint_eq(cfg.socket.timeout_ms, 120000);
    ck_assert_uint_eq(cfg.socket.max_request_bytes, 1048576);
    ck_assert_str_eq(cfg.run_as.user, "1234");
    ck_assert_str_eq(cfg.state_dir, "/srv/state");
    ck_assert_str_eq(cfg.audit_log, "/srv/audit.log");

    /* the scalar form of socket, and digest sha256 = code 2 */
    ck_assert_msg(parse("socket: /run/x.sock\npolicy: { digest: sha256, recovery-signs: [] }\n") ==
                      0,
                  "%s", err.msg);
    ck_assert_str_eq(cfg.socket.path, "/run/x.sock");
    ck_assert_uint_eq(cfg.socket.mode, 0660);
    ck_assert_int_eq(cfg.policy.digest, 2);
    ck_assert_uint_eq(cfg.policy.signs[POL_KEY_RECOVERY], 0);
}
END_TEST

START_TEST(test_durations)
{
    ck_assert_int_eq(pol_parse_duration("300"), 300);
    ck_assert_int_eq(pol_parse_duration("0"), 0);
    ck_assert_int_eq(pol_parse_duration("90s"), 90);
    ck_assert_int_eq(pol_parse_duration("5m"), 300);
    ck_assert_int_eq(pol_parse_duration("1h"), 3600);
    ck_assert_int_eq(pol_parse_duration("2d"), 172800);
    ck_assert_int_eq(pol_parse_duration(""), -1);
    ck_assert_int_eq(pol_parse_duration("m"), -1);
    ck_assert_int_eq(pol_parse_duration("5 m"), -1);
    ck_assert_int_eq(pol_parse_duration(" 5m"), -1);
    ck_assert_int_eq(pol_parse_duration("5M"), -1);
    ck_assert_int_eq(pol_parse_duration("-5"), -1);
    ck_assert_int_eq(pol_parse_duration("+5"), -1);
    ck_assert_int_eq(pol_parse_duration("5mm"), -1);
    ck_assert_int_eq(pol_parse_duration("1h30m"), -1);
    ck_assert_int_eq(pol_parse_duration("5w"), -1);
    ck_assert_int_eq(pol_parse_duration("1.5h"), -1);
    ck_assert_int_eq(pol_parse_duration("99999999999999999999"), -1);
    ck_assert_int_eq(pol_parse_duration("9223372036854775807d"), -1);
    ck_assert_int_eq(pol_parse_duration(NULL), -1);
}
END_TEST

START_TEST(test_errors_name_the_line)
{
    ck_parse_error("node: { name: a }\npolicy:\n  regen_hold: 5m\n",
                   "itl-signd.yaml:3: unknown key 'regen_hold' in policy (did you mean "
                   "'regen-hold'?)");
    ck_parse_error("nodes: { name: a }\n",
                   "itl-signd.yaml:1: unknown key 'nodes' at top level (did you mean 'node'?)");
    ck_parse_error("state_dir: /x\n", "itl-signd.yaml:1: unknown key 'state_dir' at top level "
                                      "(did you mean 'state-dir'?)");
    ck_parse_error("frobnicate: 1\n", "itl-signd.yaml:1: unknown key 'frobnicate' at top level");
    ck_parse_error("\n\n\n\n\n\n\n\n\n\n\npolicy:\n  backup: maybe\n",
                   "itl-signd.yaml:13: policy.backup: 'maybe' is not one of off, warn, require");
    ck_parse_error("policy: { backup: requir }\n",
                   "itl-signd.yaml:1: policy.backup: 'requir' is not one of off, warn, require "
                   "(did you mean 'require'?)");
    ck_parse_error("node:\n  role: primary\n",
                   "itl-signd.yaml:2: node.role: 'primary' is not one of publisher, subscriber");
    ck_parse_error("policy:\n  regen-hold: 5 minutes\n",
                   "itl-signd.yaml:2: policy.regen-hold: '5 minutes' is not a duration (seconds, "
                   "or a number with s, m, h or d: 90s, 5m, 1h, 2d)");
    ck_parse_error("policy:\n  regen-hold: 31d\n",
                   "itl-signd.yaml:2: policy.regen-hold: '31d' is out of range (0s to 2592000s)");
    ck_parse_error("policy:\n  max-itl-bytes: [1]\n",
                   "itl-signd.yaml:2: policy.max-itl-bytes: expected a number, got a list");
    ck_parse_error("policy:\n  max-itl-bytes: 64k\n",
                   "itl-signd.yaml:2: policy.max-itl-bytes: '64k' is not a whole number");
    ck_parse_error("policy:\n  max-itl-bytes: 0\n",
                   "itl-signd.yaml:2: policy.max-itl-bytes: 0 is out of range (1 to 16777216)");
    ck_parse_error("token: pkcs11:token=x\n",
                   "itl-signd.yaml:1: token: expected a mapping of keys, got a scalar");
    ck_parse_error("keys:\n  tftp:\n    label: [a, b]\n",
                   "itl-signd.yaml:3: keys.tftp.label: expected a string, got a list");
    ck_parse_error("policy:\n  backup: warn\n  expired: warn\n  backup: off\n",
                   "itl-signd.yaml:4: policy.backup: duplicate key (first given on line 2)");
    ck_parse_error("node: {name: a}\nnode: {name: b}\n",
                   "itl-signd.yaml:2: node: duplicate key (first given on line 1)");
    ck_parse_error("access:\n  - { user: tftp, allow: [sign, resett] }\n",
                   "itl-signd.yaml:2: access[0].allow: 'resett' is not an operation (one of "
                   "reset, build, sign, encrypt, status, key, unlock) (did you mean 'reset'?)");
    ck_parse_error(
        "access:\n  - { user: tftp, allow: [sign] }\n  - { group: adm, allow: [everything] }\n",
        "itl-signd.yaml:3: access[1].allow: 'everything' is not an operation (one of "
        "reset, build, sign, encrypt, status, key, unlock)");
    ck_parse_error("access:\n  - { user: tftp, allow: [sign, sign] }\n",
                   "itl-signd.yaml:2: access[0].allow: 'sign' is listed twice");
    ck_parse_error("access:\n  - { user: tftp, allow: [] }\n",
                   "itl-signd.yaml:2: access[0].allow: empty list (name at least one operation)");
    ck_parse_error("access:\n  - { user: tftp, group: x, allow: [sign] }\n",
                   "itl-signd.yaml:2: access[0].group: a rule names one user or one group");
    ck_parse_error("access:\n  - { allow: [sign] }\n",
                   "itl-signd.yaml:2: access[0]: a rule needs 'user' or 'group'");
    ck_parse_error("access:\n  - { user: tftp }\n",
                   "itl-signd.yaml:2: access[0]: a rule needs 'allow' (a list of operations)");
    ck_parse_error("access:\n  - { users: tftp, allow: [sign] }\n",
                   "itl-signd.yaml:2: unknown key 'users' in access[0] (did you mean 'user'?)");
    ck_parse_error("access:\n  - { user: \"tf tp\", allow: [sign] }\n",
                   "itl-signd.yaml:2: access[0].user: 'tf tp' is not a user or group name or "
                   "numeric id");
    ck_parse_error("access: { user: tftp }\n",
                   "itl-signd.yaml:1: access: expected a list of rules, got a mapping");
    ck_parse_error("state-dir: var/lib/itl\n",
                   "itl-signd.yaml:1: state-dir: 'var/lib/itl' is not an absolute path");
    ck_parse_error("token: { uri: \"token=x\" }\n",
                   "itl-signd.yaml:1: token.uri: 'token=x' is not a pkcs11: URI (RFC 7512)");
    ck_parse_error("socket: { mode: \"0999\" }\n",
                   "itl-signd.yaml:1: socket.mode: '0999' is not an octal file mode like \"0660\"");
    ck_parse_error("socket: { mode: \"17777\" }\n",
                   "itl-signd.yaml:1: socket.mode: '17777' is not a file mode (at most 07777)");
    ck_parse_error("socket: { timeout: 0 }\n",
                   "itl-signd.yaml:1: socket.timeout: '0' is out of range (1s to 86400s)");
    ck_parse_error("node: { name: \"\" }\n", "itl-signd.yaml:1: node.name: must not be empty");
    ck_parse_error("node: { name: \"a\\tb\" }\n",
                   "itl-signd.yaml:1: node.name: control character in 'a?b'");
    ck_parse_error("keys: { recovery: { label: K }, tftp: { label: K } }\n",
                   "itl-signd.yaml: keys.recovery.label and keys.tftp.label are both 'K': the ITL "
                   "Recovery key must be a key of its own");
    ck_parse_error("policy: { tftp-signs: [itl, conf] }\n",
                   "itl-signd.yaml:1: policy.tftp-signs: 'conf' is not a file kind (one of itl, "
                   "config) (did you mean 'config'?)");
    ck_parse_error("policy: { tftp-signs: itl }\n",
                   "itl-signd.yaml:1: policy.tftp-signs: expected a list like [itl], got a scalar");
}
END_TEST

START_TEST(test_yaml_level_errors)
{
    ck_parse_error("- a\n- b\n",
                   "itl-signd.yaml:1: config: expected a mapping of keys, got a list");
    ck_parse_error("node: { name: a\n",
                   "itl-signd.yaml:2: YAML syntax error: did not find expected ',' or '}' while "
                   "parsing a flow mapping");
    ck_parse_error("node: {name: a}\n---\nnode: {name: b}\n",
                   "itl-signd.yaml:2: a second YAML document; the config is one document");
    ck_parse_error("node: &n { name: a }\nrun-as: *n\n",
                   "itl-signd.yaml:1: run-as: YAML aliases are not supported here; write the "
                   "value out");
    ck_parse_error("? [a, b]\n: c\n", "itl-signd.yaml:1: config: expected a key, got a list");
    /* a NUL inside a value */
    memset(&err, 0, sizeof err);
    const char *nul = "node: {name: \"a\\0b\"}\n";
    ck_assert_int_eq(pol_config_parse(nul, strlen(nul), "x.yaml", &cfg, &err), -1);
    ck_assert_str_eq(err.msg, "x.yaml:1: node.name: NUL byte in value");
    /* Failure leaves defaults, not half a config */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(pol_config_load("/nonexistent/itl.yaml", &cfg, &err), -1);
    ck_assert_str_eq(err.msg, "/nonexistent/itl.yaml: cannot open: No such file or directory");
}
END_TEST

START_TEST(test_load_names_the_file)
{
    char path[600];
    const char *dir = testlib_tmpdir("polcfg");
    snprintf(path, sizeof path, "%s/itl-signd.yaml", dir);
    const char *text = "node: { name: n }\nsocket:\n  max-connections: lots\n";
    testlib_write(path, text, strlen(text));
    ck_assert_int_eq(pol_config_load(path, &cfg, &err), -1);
    char want[800];
    snprintf(want, sizeof want, "%s:3: socket.max-connections: 'lots' is not a whole number", path);
    ck_assert_str_eq(err.msg, want);
    testlib_sh("rm -rf '%s'", dir);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(pol_op_name(POL_OP_RESET), "reset");
    ck_assert_str_eq(pol_op_name(POL_OP_KEY), "key");
    ck_assert_int_eq(pol_op_from_name("encrypt"), POL_OP_ENCRYPT);
    ck_assert_int_eq(pol_op_from_name("Encrypt"), -1);
    ck_assert_int_eq(pol_key_role_from_name("tftp"), POL_KEY_TFTP);
    ck_assert_int_eq(pol_key_role_from_name("sast"), -1);
    ck_assert_str_eq(pol_key_role_name(POL_KEY_RECOVERY), "recovery");
}
END_TEST

/* token.init-args and keys.<role>.id (issue 16): kept as given; an id that is not hex refused. */
START_TEST(test_token_init_args_and_key_ids)
{
    ck_assert_int_eq(parse("token: { module: /usr/lib/x86_64-linux-gnu/libsoftokn3.so, "
                           "init-args: \"configdir='sql:/etc/itl-sign/nssdb'\" }\n"
                           "keys: { tftp: { label: CallManager, id: 0A0b0c } }\n"),
                     0);
    ck_assert_str_eq(cfg.token.init_args, "configdir='sql:/etc/itl-sign/nssdb'");
    ck_assert_str_eq(cfg.keys[POL_KEY_TFTP].id, "0A0b0c");
    ck_assert_str_eq(cfg.keys[POL_KEY_RECOVERY].id, "");
    ck_assert_int_eq(parse("keys: { recovery: { id: 0a0 } }\n"), -1);
    ck_assert_msg(strstr(err.msg, "keys.recovery.id '0a0' is not a CKA_ID"), "%s", err.msg);
    ck_assert_int_eq(parse("keys: { tftp: { id: 'zz' } }\n"), -1);
    ck_assert_msg(strstr(err.msg, "keys.tftp.id 'zz' is not a CKA_ID"), "%s", err.msg);
}
END_TEST

/* SIGHUP (policy/reload.c): which settings need a restart, and keeping them. */
START_TEST(test_reload_restart_fields)
{
    static struct pol_config running;
    char names[256];

    ck_assert_int_eq(parse("token: { uri: \"pkcs11:token=a\", pool-size: 2 }\n"
                           "policy: { regen-hold: 5m }\n"
                           "access:\n  - { user: root, allow: [sign] }\n"),
                     0);
    running = cfg;
    ck_assert_int_eq(parse("token: { uri: \"pkcs11:token=a\", pool-size: 2 }\n"
                           "policy: { regen-hold: 1m }\n"
                           "access:\n  - { user: root, allow: [sign, status] }\n"),
                     0);
    ck_assert_uint_eq(pol_config_restart_diff(&running, &cfg, names, sizeof names), 0);
    ck_assert_str_eq(names, "");
    ck_assert_int_eq(parse("token: { uri: \"pkcs11:token=b\", pool-size: 3 }\n"
                           "keys: { tftp: { label: Other } }\n"
                           "socket: /tmp/other.sock\nstate-dir: /tmp/st\n"
                           "policy: { regen-hold: 1m }\n"),
                     0);
    ck_assert_uint_eq(pol_config_restart_diff(&running, &cfg, names, sizeof names), 5);
    ck_assert_str_eq(names, "token.uri, token.pool-size, keys.tftp, socket.path, state-dir");
    /* A small buffer: the count stays right, the names are cut at a whole name. */
    ck_assert_uint_eq(pol_config_restart_diff(&running, &cfg, names, 20), 5);
    ck_assert_str_eq(names, "token.uri");
    pol_config_keep_restart(&cfg, &running);
    ck_assert_uint_eq(pol_config_restart_diff(&running, &cfg, names, sizeof names), 0);
    ck_assert_str_eq(cfg.token.uri, "pkcs11:token=a");
    ck_assert_str_eq(cfg.keys[POL_KEY_TFTP].label, "CallManager");
    ck_assert_int_eq(cfg.policy.regen_hold, 60); /* what a reload applies is the new file's */
    ck_assert_uint_eq(cfg.n_access, 0);
    /* The recovery key's unlock mode and token live in the engine made at start. */
    running = cfg;
    ck_assert_int_eq(parse("token: { uri: \"pkcs11:token=a\", pool-size: 2 }\n"
                           "keys:\n  recovery:\n    unlock: manual\n"
                           "    token: { uri: \"pkcs11:token=r\" }\n"),
                     0);
    ck_assert_uint_eq(pol_config_restart_diff(&running, &cfg, names, sizeof names), 2);
    ck_assert_str_eq(names, "keys.recovery.unlock, keys.recovery.token.uri");
    pol_config_keep_restart(&cfg, &running);
    ck_assert_int_eq(cfg.recovery_unlock.mode, POL_UNLOCK_ALWAYS);
}
END_TEST

/* keys.recovery.unlock (issue 16, "The recovery key offline"): always by default, manual only
 * with a token of its own, unlock-max a duration, `unlock` an access right. */
START_TEST(test_recovery_unlock)
{
    ck_assert_int_eq(parse(""), 0);
    ck_assert_int_eq(cfg.recovery_unlock.mode, POL_UNLOCK_ALWAYS);
    ck_assert_int_eq(cfg.recovery_unlock.max_s, 900);
    ck_assert_str_eq(cfg.recovery_unlock.token.uri, "");
    ck_assert_int_eq(parse("keys:\n"
                           "  recovery:\n"
                           "    unlock: manual\n"
                           "    unlock-max: 10m\n"
                           "    token: { uri: \"pkcs11:token=itl-recovery\", module: softhsm2 }\n"
                           "access:\n"
                           "  - { user: root, allow: [unlock, status] }\n"),
                     0);
    ck_assert_int_eq(cfg.recovery_unlock.mode, POL_UNLOCK_MANUAL);
    ck_assert_int_eq(cfg.recovery_unlock.max_s, 600);
    ck_assert_str_eq(cfg.recovery_unlock.token.uri, "pkcs11:token=itl-recovery");
    ck_assert_str_eq(cfg.recovery_unlock.token.module, "softhsm2");
    ck_assert_uint_eq(cfg.access[0].allow, (1u << POL_OP_UNLOCK) | (1u << POL_OP_STATUS));
    ck_assert_str_eq(pol_op_name(POL_OP_UNLOCK), "unlock");
    ck_assert_int_eq(parse("keys: { recovery: { unlock: always } }\n"), 0);
    ck_assert_int_eq(cfg.recovery_unlock.mode, POL_UNLOCK_ALWAYS);

    /* manual without a token of its own: the key's own PIN (CKA_ALWAYS_AUTHENTICATE) */
    ck_assert_int_eq(parse("keys: { recovery: { unlock: manual } }\n"), 0);
    ck_assert_int_eq(cfg.recovery_unlock.mode, POL_UNLOCK_MANUAL);
    ck_assert_str_eq(cfg.recovery_unlock.token.uri, "");
    ck_parse_error("keys: { recovery: { token: { uri: \"pkcs11:token=r\" } } }\n",
                   "itl-signd.yaml: keys.recovery.token is the token of keys.recovery.unlock: "
                   "manual; add 'unlock: manual' or remove it");
    ck_parse_error("token: { uri: \"pkcs11:token=a\" }\n"
                   "keys: { recovery: { unlock: manual, token: { uri: \"pkcs11:token=a\" } } }\n",
                   "itl-signd.yaml: keys.recovery.token.uri is token.uri: the recovery key needs a "
                   "token of its own (another token or slot), whose login only the unlock gives");
    ck_assert_int_eq(parse("keys: { recovery: { unlock: sometimes } }\n"), -1);
    ck_assert_msg(strstr(err.msg, "keys.recovery.unlock: 'sometimes' is not one of always, manual"),
                  "%s", err.msg);
    ck_assert_int_eq(parse("keys: { recovery: { unlock-max: 2x } }\n"), -1);
    ck_assert_msg(strstr(err.msg, "keys.recovery.unlock-max: '2x' is not a duration"), "%s",
                  err.msg);
    ck_assert_int_eq(parse("keys: { recovery: { unlock-max: 2d } }\n"), -1);
    ck_assert_msg(strstr(err.msg, "keys.recovery.unlock-max: '2d' is out of range (1s to 86400s)"),
                  "%s", err.msg);
    ck_assert_int_eq(parse("keys: { recovery: { token: { url: \"pkcs11:\" } } }\n"), -1);
    ck_assert_msg(strstr(err.msg, "unknown key 'url' in keys.recovery.token"), "%s", err.msg);
    ck_assert_int_eq(parse("keys: { recovery: { token: { uri: \"/dev/x\" } } }\n"), -1);
    ck_assert_msg(strstr(err.msg, "is not a pkcs11: URI"), "%s", err.msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy_config");
    TCase *tc = tcase_create("config");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_example_file);
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_durations);
    tcase_add_test(tc, test_errors_name_the_line);
    tcase_add_test(tc, test_yaml_level_errors);
    tcase_add_test(tc, test_load_names_the_file);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_token_init_args_and_key_ids);
    tcase_add_test(tc, test_reload_restart_fields);
    tcase_add_test(tc, test_recovery_unlock);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
