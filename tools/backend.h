/* SPDX-License-Identifier: MIT */
/*
 * Where a signing request goes: the service over its socket (default), or, with --token, an
 * engine in this process over a token we open ourselves (direct mode). Both run sgn_execute().
 */
#ifndef ITL_TOOLS_BACKEND_H
#define ITL_TOOLS_BACKEND_H

#include "signer/signer.h"
#include "tools/cli.h"

struct backend {
    int direct;
    struct pol_config cfg;
    struct pol_peer self;
    /* direct mode */
    struct tok *tok;
    struct pol_audit *audit;
    struct sgn_engine *engine;
    /* service mode */
    char socket[1024];
    struct sgn_client_opts client; /* --timeout; the request limit of the config */
};

/* Open the backend the global options name. Prints its own error; returns an EXIT_* code. */
int backend_open(struct cli_global *g, struct backend *b);
void backend_close(struct backend *b);

/* A connection for one thread: in direct mode nothing, in service mode a socket. */
struct backend_conn {
    struct backend *b;
    struct sgn_client *client;
};
int backend_connect(struct backend *b, struct backend_conn *c, struct itl_error *err);
void backend_disconnect(struct backend_conn *c);
/* Run a request. Transport failures come back as SGN_E_PROTOCOL results. */
void backend_call(struct backend_conn *c, const struct sgn_request *req, struct sgn_result *r,
                  char **status_json);

/* Pipelining through the service (socket mode only): send without waiting for the reply, then
 * take the replies in order (sgn_client_send / sgn_client_recv). A transport failure of recv
 * comes back as an SGN_E_PROTOCOL result. */
int backend_send(struct backend_conn *c, const struct sgn_request *req, struct itl_error *err);
/* The next reply; when there is none, the result is a protocol error with the reading error,
 * or with send_err when the request's send already failed (NULL or class ITL_E_NONE when it did
 * not). */
void backend_recv(struct backend_conn *c, struct sgn_result *r, const struct itl_error *send_err);

/* One request on a fresh backend: open, connect, call, disconnect. EXIT_OK when the request
 * reached the engine (r->status says how it went), else the EXIT_* code of what failed, already
 * printed (r is then empty). *b stays open either way, for what the caller reads from it
 * (direct mode's token); the caller closes it with backend_close. */
int backend_run(struct cli_global *g, struct backend *b, const struct sgn_request *req,
                struct sgn_result *r, char **status_json);

/* EXIT_* code for a result status. */
int backend_exit_code(enum sgn_status st);

#endif
