/* SPDX-License-Identifier: MIT */
/*
 * The configuration model: its defaults, and the one table of accepted keys
 * (`pol_config_fields` and its children) that config_yaml.c walks, so the parser, its error
 * messages and docs/config.md describe the same thing.
 */
#include "policy/internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(enum pol_backup_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum pol_expired_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum pol_node_role) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum pol_unlock_mode) == sizeof(int), "enums are stored as int");

/* clang-format off */
#define MEMBER(m) .offset = offsetof(struct pol_config, m)
#define TEXT(k, kind_, m) {.key = k, .kind = kind_, MEMBER(m), .size = sizeof(((struct pol_config *)0)->m)}
#define STR(k, m) TEXT(k, POL_F_STRING, m)
#define PATHF(k, m) TEXT(k, POL_F_PATH, m)
#define NUM(k, kind_, m, lo, hi) {.key = k, .kind = kind_, MEMBER(m), .min = lo, .max = hi}
#define ENUMF(k, m, names_, first_) {.key = k, .kind = POL_F_ENUM, MEMBER(m), .names = names_, .first = first_}
#define MAP(k, kind_, fields_) {.key = k, .kind = kind_, .fields = fields_}
#define END {.key = NULL}
/* clang-format on */

static const char *const node_roles[] = {"publisher", "subscriber", NULL};
static const char *const backup_modes[] = {"off", "warn", "require", NULL};
static const char *const expired_modes[] = {"refuse", "warn", NULL};
static const char *const digests[] = {"sha1", "sha256", "sha512", NULL};
static const char *const mechanisms[] = {"auto", "raw", "hash", NULL};
static const char *const unlock_modes[] = {"always", "manual", NULL};

static const struct pol_field node_fields[] = {
    STR("name", node.name),
    ENUMF("role", node.role, node_roles, POL_NODE_PUBLISHER),
    END,
};

/* clang-format off */
static const struct pol_field token_fields[] = {
    STR("module", token.module),
    TEXT("uri", POL_F_URI, token.uri),
    PATHF("pin-file", token.pin_file),
    NUM("pool-size", POL_F_SIZE, token.pool_size, 0, 1024),
    STR("init-args", token.init_args),
    ENUMF("mechanism", token.mechanism, mechanisms, 0),
    END,
};
/* clang-format on */

/* keys.recovery.token: the second token that holds only the recovery key (unlock: manual). */
static const struct pol_field recovery_token_fields[] = {
    STR("module", recovery_unlock.token.module),
    TEXT("uri", POL_F_URI, recovery_unlock.token.uri),
    STR("init-args", recovery_unlock.token.init_args),
    END,
};

static const struct pol_field recovery_key_fields[] = {
    STR("label", keys[POL_KEY_RECOVERY].label),
    STR("id", keys[POL_KEY_RECOVERY].id),
    ENUMF("unlock", recovery_unlock.mode, unlock_modes, POL_UNLOCK_ALWAYS),
    NUM("unlock-max", POL_F_SECONDS, recovery_unlock.max_s, 1, 86400),
    MAP("token", POL_F_MAP, recovery_token_fields),
    END,
};

static const struct pol_field tftp_key_fields[] = {
    STR("label", keys[POL_KEY_TFTP].label),
    STR("id", keys[POL_KEY_TFTP].id),
    END,
};

static const struct pol_field keys_fields[] = {
    MAP("recovery", POL_F_MAP, recovery_key_fields),
    MAP("tftp", POL_F_MAP, tftp_key_fields),
    END,
};

static const struct pol_field policy_fields[] = {
    NUM("regen-hold", POL_F_SECONDS, policy.regen_hold, 0, 30L * 86400),
    ENUMF("backup", policy.backup, backup_modes, POL_BACKUP_OFF),
    NUM("max-itl-bytes", POL_F_SIZE, policy.max_itl_bytes, 1, 16 * 1024 * 1024),
    ENUMF("expired", policy.expired, expired_modes, POL_EXPIRED_REFUSE),
    NUM("recovery-signs", POL_F_FILES, policy.signs[POL_KEY_RECOVERY], 0, 0),
    NUM("tftp-signs", POL_F_FILES, policy.signs[POL_KEY_TFTP], 0, 0),
    ENUMF("digest", policy.digest, digests, 1),
    END,
};

static const struct pol_field socket_fields[] = {
    PATHF("path", socket.path),
    NUM("mode", POL_F_MODE, socket.mode, 0, 07777),
    STR("owner", socket.owner),
    STR("group", socket.group),
    NUM("max-connections", POL_F_UINT, socket.max_connections, 1, 65536),
    NUM("max-connections-per-uid", POL_F_UINT, socket.max_connections_per_uid, 1, 65536),
    NUM("timeout", POL_F_MILLIS, socket.timeout_ms, 1, 86400),
    NUM("max-request-bytes", POL_F_SIZE, socket.max_request_bytes, 1024, 1024UL * 1024 * 1024),
    NUM("max-pending-bytes", POL_F_SIZE, socket.max_pending_bytes, 1024UL * 1024, 16UL << 30),
    END,
};

static const struct pol_field run_as_fields[] = {
    STR("user", run_as.user),
    STR("group", run_as.group),
    END,
};

/* clang-format off */
const struct pol_field pol_config_fields[] = {
    MAP("node", POL_F_MAP, node_fields),
    MAP("token", POL_F_MAP, token_fields),
    MAP("keys", POL_F_MAP, keys_fields),
    MAP("policy", POL_F_MAP, policy_fields),
    MAP("access", POL_F_ACCESS, NULL),
    MAP("socket", POL_F_SOCKET, socket_fields),
    MAP("run-as", POL_F_MAP, run_as_fields),
    PATHF("state-dir", state_dir),
    PATHF("audit-log", audit_log),
    PATHF("itl", itl),
    END,
};
/* clang-format on */

void pol_config_defaults(struct pol_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    if (gethostname(cfg->node.name, sizeof cfg->node.name - 1) != 0 || !cfg->node.name[0])
        snprintf(cfg->node.name, sizeof cfg->node.name, "localhost");
    cfg->node.role = POL_NODE_PUBLISHER;
    snprintf(cfg->keys[POL_KEY_RECOVERY].label, POL_NAME_LEN, "ITLRecovery");
    snprintf(cfg->keys[POL_KEY_TFTP].label, POL_NAME_LEN, "CallManager");
    cfg->recovery_unlock.mode = POL_UNLOCK_ALWAYS;
    cfg->recovery_unlock.max_s = 900;
    cfg->policy.regen_hold = 300;
    cfg->policy.backup = POL_BACKUP_WARN;
    cfg->policy.max_itl_bytes = 65535;
    cfg->policy.expired = POL_EXPIRED_REFUSE;
    cfg->policy.signs[POL_KEY_RECOVERY] = POL_FILE_ITL;
    cfg->policy.signs[POL_KEY_TFTP] = POL_FILE_ITL | POL_FILE_CONFIG;
    cfg->policy.digest = 1;
    snprintf(cfg->socket.path, sizeof cfg->socket.path, "/run/itl-sign/socket");
    cfg->socket.mode = 0660;
    cfg->socket.max_connections = 64;
    cfg->socket.max_connections_per_uid = 16;
    cfg->socket.max_pending_bytes = 64UL * 1024 * 1024;
    cfg->socket.timeout_ms = 30000;
    cfg->socket.max_request_bytes = 4 * 1024 * 1024;
    snprintf(cfg->state_dir, sizeof cfg->state_dir, "/var/lib/itl-sign");
    snprintf(cfg->audit_log, sizeof cfg->audit_log, "/var/log/itl-sign/audit.log");
}

/* keys.recovery.unlock: manual keeps the recovery key on a token of its own, whose login is
 * the unlock (keys.recovery.token), or, without one, on the service's token as a
 * CKA_ALWAYS_AUTHENTICATE key whose own PIN is the unlock (checked at the unlock). The token
 * means nothing without manual. */
int pol_config_check_unlock(const struct pol_config *cfg, const char *name, struct itl_error *err)
{
    const char *uri = cfg->recovery_unlock.token.uri;

    if (cfg->recovery_unlock.mode != POL_UNLOCK_MANUAL && uri[0])
        return err_set(err, ITL_E_USAGE,
                       "%s: keys.recovery.token is the token of keys.recovery.unlock: manual; "
                       "add 'unlock: manual' or remove it",
                       name);
    if (uri[0] && strcmp(uri, cfg->token.uri) == 0)
        return err_set(err, ITL_E_USAGE,
                       "%s: keys.recovery.token.uri is token.uri: the recovery key needs a token "
                       "of its own (another token or slot), whose login only the unlock gives",
                       name);
    return 0;
}

int pol_config_check_service(const struct pol_config *cfg, struct itl_error *err)
{
    const char *name = cfg->path[0] ? cfg->path : "<config>";
    if (!cfg->token.uri[0])
        return err_set(err, ITL_E_USAGE,
                       "%s: token.uri is required (e.g. uri: \"pkcs11:token=itl-sign\")", name);
    return 0;
}
