/* SPDX-License-Identifier: MIT */
#include "tools/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkcs11/token.h"
#include "tools/token_cli.h"

#define DEFAULT_SOCKET "/run/itl-sign/socket"

static int load_config(struct cli_global *g, struct backend *b)
{
    struct itl_error pe;

    if (!g->config) {
        pol_config_defaults(&b->cfg);
        return EXIT_OK;
    }
    if (pol_config_load(g->config, &b->cfg, &pe) != 0) {
        cli_error("%s", pe.msg);
        return cli_exit_for_io(&pe, EXIT_USAGE);
    }
    return EXIT_OK;
}

/* Direct mode runs the same engine as the service; with --config it applies the same access
 * rules to the invoking user, the same state and the same audit log. */
static int open_direct(struct cli_global *g, struct backend *b)
{
    struct sgn_engine_opts eo = {0};
    struct itl_error pe;
    int rc;

    if (!g->module && b->cfg.token.module[0]) {
        g->module = b->cfg.token.module;
        if (b->cfg.token.init_args[0]) /* they belong to the configured module */
            g->init_args = b->cfg.token.init_args;
    }
    if (!g->mechanism_given)
        g->mechanism = b->cfg.token.mechanism;
    /* The engine reads and writes the service's state: it trusts the owners the service does. */
    if (g->config && pol_state_set_owner(&b->cfg, &pe) != 0) {
        cli_error("%s", pe.msg);
        return cli_exit_for_io(&pe, EXIT_USAGE);
    }
    rc = cli_open_token(g, &b->tok);
    if (rc != EXIT_OK)
        return rc;
    if (g->config && pol_audit_open(b->cfg.audit_log, &b->audit, &pe) != 0) {
        cli_error("audit log: %s (direct mode with --config writes the same audit log as the "
                  "service)",
                  pe.msg);
        return cli_exit_for_io(&pe, EXIT_OUTPUT);
    }
    eo.cfg = &b->cfg;
    eo.tok = b->tok;
    eo.audit = b->audit;
    eo.check_access = g->config != NULL;
    eo.use_state = g->config != NULL;
    eo.direct = 1;
    if (sgn_engine_new(&eo, &b->engine, &pe) != 0) {
        cli_error("%s", pe.msg);
        return EXIT_TOKEN;
    }
    return EXIT_OK;
}

int backend_open(struct cli_global *g, struct backend *b)
{
    int rc;

    memset(b, 0, sizeof *b);
    b->self.uid = getuid();
    b->self.gid = getgid();
    b->self.pid = getpid();
    rc = load_config(g, b);
    if (rc != EXIT_OK)
        return rc;
    if (g->token) {
        b->direct = 1;
        b->signs_once = g->signs_once;
        return open_direct(g, b);
    }
    snprintf(b->socket, sizeof b->socket, "%s",
             g->socket               ? g->socket
             : b->cfg.socket.path[0] ? b->cfg.socket.path
                                     : DEFAULT_SOCKET);
    /* The service's limit as this config (or the defaults both sides share) says it. */
    b->client.timeout_ms = g->timeout_ms;
    b->client.max_request_bytes = b->cfg.socket.max_request_bytes;
    return EXIT_OK;
}

void backend_close(struct backend *b)
{
    sgn_engine_free(b->engine);
    pol_audit_close(b->audit);
    tok_close(b->tok);
    memset(b, 0, sizeof *b);
}

int backend_connect(struct backend *b, struct backend_conn *c, struct itl_error *err)
{
    c->b = b;
    c->client = NULL;
    if (b->direct)
        return 0;
    return sgn_client_connect(b->socket, &b->client, &c->client, err);
}

void backend_disconnect(struct backend_conn *c)
{
    sgn_client_close(c->client);
    c->client = NULL;
}

void backend_call(struct backend_conn *c, const struct sgn_request *req, struct sgn_result *r,
                  char **status_json)
{
    struct itl_error err;

    if (status_json)
        *status_json = NULL;
    if (c->b->direct) {
        /* a batch keeps one record per file; its threads share the flushes */
        (c->b->signs_once ? sgn_execute : sgn_execute_grouped)(c->b->engine, &c->b->self, req, r);
        if (r->status == SGN_OK && req->op == POL_OP_STATUS && status_json)
            sgn_status_json(c->b->engine, "\"mode\":\"direct\"", status_json);
        return;
    }
    if (sgn_client_call(c->client, req, r, status_json, &err) != 0) {
        memset(r, 0, sizeof *r);
        r->status = SGN_E_PROTOCOL;
        snprintf(r->message, sizeof r->message, "%s", err.msg);
    }
}

int backend_run(struct cli_global *g, struct backend *b, const struct sgn_request *req,
                struct sgn_result *r, char **status_json)
{
    struct backend_conn c;
    struct itl_error err;
    int rc = backend_open(g, b);

    memset(r, 0, sizeof *r);
    if (status_json)
        *status_json = NULL;
    if (rc != EXIT_OK)
        return rc;
    if (backend_connect(b, &c, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_SERVICE;
    }
    backend_call(&c, req, r, status_json);
    backend_disconnect(&c);
    return EXIT_OK;
}

int backend_exit_code(enum sgn_status st)
{
    switch (st) {
    case SGN_OK:
        return EXIT_OK;
    case SGN_E_USAGE:
        return EXIT_USAGE;
    case SGN_E_INPUT:
        return EXIT_INPUT;
    case SGN_E_TOKEN:
    case SGN_E_NO_TOKEN:
        return EXIT_TOKEN;
    case SGN_E_DENIED:
        return EXIT_DENIED;
    default:
        return EXIT_SERVICE;
    }
}

int backend_send(struct backend_conn *c, const struct sgn_request *req, struct itl_error *err)
{
    return sgn_client_send(c->client, req, err);
}

void backend_recv(struct backend_conn *c, struct sgn_result *r, const struct itl_error *send_err)
{
    struct itl_error err;

    if (sgn_client_recv(c->client, r, NULL, &err) != 0) {
        memset(r, 0, sizeof *r);
        r->status = SGN_E_PROTOCOL;
        snprintf(r->message, sizeof r->message, "%s",
                 send_err && send_err->cls != ITL_E_NONE ? send_err->msg : err.msg);
    }
}
