/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP: reopen the audit log (logrotate moved it), then load the configuration file again.
 * A file that loads becomes the configuration of every request that starts from now on (a
 * request in flight finishes under the generation it started with: engine.c); one that does
 * not load changes nothing. Settings bound to what the service opened at start (the token, its
 * keys, the socket, the user, the state dir and audit log: policy/reload.c) keep their running
 * values, and the log says that they need a restart. Each reload is logged and audited once:
 * op "reload", result "ok" or "refused".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "signer/server.h"

static void audit_reload(const struct srv_params *p, const char *result, const char *message)
{
    struct pol_peer self = {.uid = geteuid(), .gid = getegid(), .pid = getpid()};
    struct pol_audit_record rec = {
        .time = time(NULL),
        .peer = &self,
        .op = "reload",
        .file = p->cfg->path,
        .result = result,
        .message = message,
    };
    struct itl_error pe;

    if (p->audit && pol_audit_write(p->audit, &rec, &pe) != 0)
        srv_log(LOG_ERR, "SIGHUP: the reload could not be audited: %s", pe.msg);
}

static void reload_config(const struct srv_params *p)
{
    struct pol_config *next = malloc(sizeof *next); /* large: not on the stack */
    const struct pol_config *running;
    char changed[512], msg[ITL_ERROR_LEN + 600];
    struct itl_error pe;
    unsigned long generation = 0;
    size_t n_changed;

    if (!next) {
        srv_log(LOG_ERR, "SIGHUP: out of memory; the running configuration is kept");
        audit_reload(p, "refused", "out of memory");
        return;
    }
    if (pol_config_load(p->cfg->path, next, &pe) != 0 || pol_config_check_service(next, &pe) != 0) {
        snprintf(msg, sizeof msg, "not reloaded, the running configuration is kept: %s", pe.msg);
        srv_log(LOG_ERR, "SIGHUP: configuration %s", msg);
        audit_reload(p, "refused", msg);
        free(next);
        return;
    }
    running = sgn_config_hold(p->engine, NULL);
    n_changed = pol_config_restart_diff(running, next, changed, sizeof changed);
    pol_config_keep_restart(next, running);
    sgn_config_release(p->engine, running);
    generation = sgn_engine_set_config(p->engine, next);
    free(next);
    if (!generation) {
        srv_log(LOG_ERR, "SIGHUP: out of memory; the running configuration is kept");
        audit_reload(p, "refused", "out of memory");
        return;
    }
    if (n_changed) {
        snprintf(msg, sizeof msg,
                 "reloaded (generation %lu): policy and access rules applied; %s changed and "
                 "needs a restart (systemctl restart itl-signd): the running token settings are "
                 "kept",
                 generation, changed);
        srv_log(LOG_WARNING, "SIGHUP: configuration %s %s", p->cfg->path, msg);
    } else {
        snprintf(msg, sizeof msg, "reloaded (generation %lu)", generation);
        srv_log(LOG_NOTICE, "SIGHUP: configuration %s %s", p->cfg->path, msg);
    }
    audit_reload(p, "ok", msg);
}

void srv_reload(const struct srv_params *p)
{
    struct itl_error pe;

    if (pol_audit_reopen(p->audit, &pe) == 0)
        srv_log(LOG_NOTICE, "SIGHUP: audit log %s reopened", p->cfg->audit_log);
    else
        srv_log(LOG_ERR, "SIGHUP: cannot reopen the audit log: %s", pe.msg);
    reload_config(p);
}
