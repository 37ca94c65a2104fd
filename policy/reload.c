/* SPDX-License-Identifier: MIT */
/*
 * What a configuration reload (itl-signd's SIGHUP) may change. Policy, access rules, the node
 * and the itl default apply to the next request; the rest is bound to what the service opened
 * when it started (the token and its login, the keys found on it, the listening socket and its
 * limits, the user it dropped to, its state dir and audit log) and needs a restart.
 */
#include "policy/internal.h"

#include <stdio.h>
#include <string.h>

struct restart_diff {
    char *names;
    size_t size, used, count;
};

static void add_name(struct restart_diff *d, const char *name)
{
    int n;

    if (d->size) {
        n = snprintf(d->names + d->used, d->size - d->used, "%s%s", d->count ? ", " : "", name);
        if (n > 0 && (size_t)n < d->size - d->used)
            d->used += (size_t)n;
        else
            d->names[d->used] = 0; /* cut at a whole name */
    }
    d->count++;
}

#define DIFF_TEXT(field, name)                                                                     \
    do {                                                                                           \
        if (strcmp(a->field, b->field) != 0)                                                       \
            add_name(&d, name);                                                                    \
    } while (0)
#define DIFF_NUM(field, name)                                                                      \
    do {                                                                                           \
        if (a->field != b->field)                                                                  \
            add_name(&d, name);                                                                    \
    } while (0)

size_t pol_config_restart_diff(const struct pol_config *a, const struct pol_config *b, char *names,
                               size_t size)
{
    struct restart_diff d = {.names = names, .size = size};

    if (size)
        names[0] = 0;
    DIFF_TEXT(token.module, "token.module");
    DIFF_TEXT(token.uri, "token.uri");
    DIFF_TEXT(token.pin_file, "token.pin-file");
    DIFF_NUM(token.pool_size, "token.pool-size");
    DIFF_TEXT(token.init_args, "token.init-args");
    DIFF_NUM(token.mechanism, "token.mechanism");
    for (int k = 0; k < POL_KEY_COUNT; k++)
        if (strcmp(a->keys[k].label, b->keys[k].label) != 0 ||
            strcmp(a->keys[k].id, b->keys[k].id) != 0)
            add_name(&d, k == POL_KEY_RECOVERY ? "keys.recovery" : "keys.tftp");
    DIFF_TEXT(socket.path, "socket.path");
    DIFF_NUM(socket.mode, "socket.mode");
    DIFF_TEXT(socket.owner, "socket.owner");
    DIFF_TEXT(socket.group, "socket.group");
    DIFF_NUM(socket.max_connections, "socket.max-connections");
    DIFF_NUM(socket.max_connections_per_uid, "socket.max-connections-per-uid");
    DIFF_NUM(socket.timeout_ms, "socket.timeout");
    DIFF_NUM(socket.max_request_bytes, "socket.max-request-bytes");
    DIFF_NUM(socket.max_pending_bytes, "socket.max-pending-bytes");
    /* The unlock state lives in the engine made at start (its timer, the recovery token). */
    DIFF_NUM(recovery_unlock.mode, "keys.recovery.unlock");
    DIFF_NUM(recovery_unlock.max_s, "keys.recovery.unlock-max");
    DIFF_TEXT(recovery_unlock.token.module, "keys.recovery.token.module");
    DIFF_TEXT(recovery_unlock.token.uri, "keys.recovery.token.uri");
    DIFF_TEXT(recovery_unlock.token.init_args, "keys.recovery.token.init-args");
    DIFF_TEXT(run_as.user, "run-as.user");
    DIFF_TEXT(run_as.group, "run-as.group");
    DIFF_TEXT(state_dir, "state-dir");
    DIFF_TEXT(audit_log, "audit-log");
    return d.count;
}

void pol_config_keep_restart(struct pol_config *next, const struct pol_config *running)
{
    memcpy(&next->token, &running->token, sizeof next->token);
    memcpy(next->keys, running->keys, sizeof next->keys);
    memcpy(&next->recovery_unlock, &running->recovery_unlock, sizeof next->recovery_unlock);
    memcpy(&next->socket, &running->socket, sizeof next->socket);
    memcpy(&next->run_as, &running->run_as, sizeof next->run_as);
    memcpy(next->state_dir, running->state_dir, sizeof next->state_dir);
    memcpy(next->audit_log, running->audit_log, sizeof next->audit_log);
}
