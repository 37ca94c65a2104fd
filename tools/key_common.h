/* SPDX-License-Identifier: MIT */
/*
 * What the `itl-sign key` subcommands share (key_common.c): their option numbers, option value
 * parsers, printing a key as text or JSON, PEM encoding. Each subcommand has its own file:
 * key_import.c, key_generate.c, cmd_key.c (list, export-cert and the dispatch), key_policy.c
 * (attest-backup), key_ops.c (attach-cert, csr, delete).
 */
#ifndef ITL_TOOLS_KEY_COMMON_H
#define ITL_TOOLS_KEY_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "pkcs11/token.h"
#include "tools/cli.h"

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

/* "0a1b2c" or "0a:1b:2c", 1 to 64 bytes. */
int key_parse_hex_id(const char *hex, uint8_t *out, size_t *len);
/* A number from 1 to max; prints its own error naming opt. */
int key_parse_uint(const char *opt, const char *arg, unsigned max, unsigned *out);
/* -1 unknown, 0 no, 1 yes. */
const char *key_yes_no(int v);
const char *key_json_bool(int v);
/* A DER certificate as PEM; *pem is malloc'd. */
int key_cert_pem(const uint8_t *der, size_t len, uint8_t **pem, size_t *pem_len);
void key_print_info_text(const struct tok_key_info *k);
/* The key object of docs/json.md: its members added to j's open object, or printed alone. */
void key_add_info_json(struct cli_json *j, const struct tok_key_info *k);
void key_print_info_json(const struct tok_key_info *k);
/* --json: the document of a key operation that has no key to describe (through the service,
 * delete, csr): {"command","status":"ok","label","message"}. */
void key_print_result_json(const char *command, const char *label, const char *message);

/* Subcommands; argv[0] is the subcommand's name. */
int cmd_key_import(int argc, char **argv, struct cli_global *g);
int cmd_key_generate(int argc, char **argv, struct cli_global *g);
int cmd_key_attach_cert(int argc, char **argv, struct cli_global *g); /* key_ops.c */
int cmd_key_csr(int argc, char **argv, struct cli_global *g);
int cmd_key_delete(int argc, char **argv, struct cli_global *g);
/* A key operation through the engine (service or direct); prints its outcome. key_ops.c. */
struct sgn_request;
struct sgn_result;
int key_call(struct cli_global *g, const struct sgn_request *req, struct sgn_result *r,
             const char *show);
/* The reply of key operation `op` ("key import"): its warning, and when it failed its message
 * and the policy rule that refused it. EXIT_OK, or the status's EXIT_* code. key_ops.c. */
int key_check_reply(const struct sgn_result *r, const char *op);

#endif
