/* SPDX-License-Identifier: MIT */
/* show, verify, strip: reading the file, checking its signature, their common options. */
#include "tools/show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* ---- input ---- */

int show_load_input(const char *path, enum itl_kind hint, struct input *in)
{
    char msg[512];
    struct itl_error err = {0};

    memset(in, 0, sizeof *in);
    in->path = path;
    if (cli_read_input(path, SHOW_MAX_INPUT_BYTES, &in->data, &in->len, &in->mode, msg,
                       sizeof msg) != 0) {
        cli_error("%s", msg);
        return EXIT_INPUT;
    }
    if (itl_parse(in->data, in->len, hint, &in->f, &err) != 0) {
        cli_error("%s: %s", path, err.msg);
        free(in->data);
        in->data = NULL;
        return cli_exit_for(&err);
    }
    return EXIT_OK;
}

void show_free_input(struct input *in)
{
    itl_file_free(&in->f);
    free(in->data);
    in->data = NULL;
}

/* ---- verification ---- */

static int same_bytes(struct itl_bytes a, struct itl_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Equal as unsigned integers. */
static int same_serial(struct itl_bytes a, struct itl_bytes b)
{
    while (a.len > 0 && a.ptr[0] == 0)
        a.ptr++, a.len--;
    while (b.len > 0 && b.ptr[0] == 0)
        b.ptr++, b.len--;
    return same_bytes(a, b);
}

static int role_allowed(const struct itl_file *f, unsigned function)
{
    if (f->kind == ITL_KIND_TLV)
        return function == ITL_ROLE_SAST;
    return function == ITL_ROLE_TFTP || function == ITL_ROLE_CCM || function == ITL_ROLE_CCM_TFTP;
}

static const char *allowed_roles(const struct itl_file *f)
{
    return f->kind == ITL_KIND_TLV ? "SAST" : "TFTP, CCM or CCM+TFTP";
}

static enum outcome failure_kind(const struct itl_file *f)
{
    return itl_digest_nid(f->hdr.digest) == 0 ? MALFORMED : INVALID;
}

/*
 * As a phone holding `trust` would: the signer named in f's header must be a record of trust
 * with an allowed role (matched by serial and, when both name it, issuer), and its
 * certificate must verify the signature.
 */
static void verify_against(const struct itl_file *f, const struct itl_file *trust,
                           const char *trust_path, struct verdict *v)
{
    struct itl_error err = {0};
    long named = -1;

    if (!f->hdr.signer_serial.ptr) {
        v->outcome = INVALID;
        v->source = trust_path;
        snprintf(v->why, sizeof v->why, "the header names no signer serial number");
        return;
    }
    for (size_t i = 0; i < trust->n_records; i++) {
        const struct itl_record *r = &trust->records[i];
        if (!r->has_function || !role_allowed(f, r->function) || !r->serial.ptr ||
            !same_serial(r->serial, f->hdr.signer_serial))
            continue;
        if (f->hdr.signer_issuer.len && r->issuer.len &&
            !same_bytes(f->hdr.signer_issuer, r->issuer))
            continue;
        if (named < 0)
            named = (long)i;
        if (r->certificate.ptr &&
            itl_verify_with_cert(f, r->certificate.ptr, r->certificate.len, &err) == 0) {
            v->outcome = VERIFIED;
            v->record = (long)i;
            v->source = trust_path;
            return;
        }
    }
    v->source = trust_path;
    v->record = named;
    if (named < 0) {
        v->outcome = INVALID;
        snprintf(v->why, sizeof v->why, "the signer %.*s is not a %s record of %s",
                 (int)f->hdr.signer_name.len, (const char *)f->hdr.signer_name.ptr,
                 allowed_roles(f), trust_path);
        return;
    }
    v->outcome = failure_kind(f);
    snprintf(
        v->why, sizeof v->why, "record #%ld of %s names the signer but %s", named + 1, trust_path,
        trust->records[named].certificate.ptr ? err.msg : "holds no certificate to check with");
}

void show_verify_file(const struct itl_file *f, const struct show_opts *o, const uint8_t *cert,
                      size_t cert_len, const struct itl_file *trust, struct verdict *v)
{
    struct itl_error err = {0};

    memset(v, 0, sizeof *v);
    v->record = -1;
    if (cert) {
        if (itl_verify_with_cert(f, cert, cert_len, &err) == 0) {
            v->outcome = VERIFIED;
            v->source = o->cert;
        } else {
            v->outcome = failure_kind(f);
            snprintf(v->why, sizeof v->why, "%s", err.msg);
        }
    } else if (trust) {
        verify_against(f, trust, o->trust, v);
    } else if (f->kind == ITL_KIND_TLV) {
        if (itl_verify_self(f, &v->record, &err) == 0) {
            v->outcome = VERIFIED;
        } else {
            v->outcome = failure_kind(f);
            snprintf(v->why, sizeof v->why, "%s", err.msg);
        }
    } else {
        v->outcome = UNCHECKABLE;
        snprintf(v->why, sizeof v->why,
                 "a %s file names its signer but carries no certificate: give --cert PEM or "
                 "--trust ITL",
                 show_file_word(f));
    }
}

int show_exit_code(enum outcome o)
{
    return o == VERIFIED || o == UNCHECKABLE ? EXIT_OK : o == INVALID ? EXIT_INVALID : EXIT_INPUT;
}

/* ---- option parsing shared by the three commands ---- */

struct show_option_ctx {
    struct show_opts *o;
    const char **out;
};

static int show_option(int opt, const char *arg, void *ctx)
{
    struct show_option_ctx *c = ctx;

    switch (opt) {
    case OPT_CERT:
        c->o->cert = arg;
        return 1;
    case OPT_TRUST:
        c->o->trust = arg;
        return 1;
    case 'o':
        *c->out = arg;
        return 1;
    default:
        return 0;
    }
}

int show_parse_options(int argc, char **argv, struct cli_global *g, const char *shortopts,
                       const struct option *longopts, void (*usage)(FILE *), struct show_opts *o,
                       const char **out)
{
    struct show_option_ctx ctx = {o, out};
    struct cli_options opts = {.shortopts = shortopts,
                               .longopts = longopts,
                               .usage = usage,
                               .option = show_option,
                               .ctx = &ctx};
    int rc = cli_parse_options(argc, argv, g, &opts);

    if (rc != EXIT_OK)
        return rc; /* CLI_HELP_SHOWN is -1, as the callers expect after --help */
    if (optind + 1 != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (o->cert && o->trust) {
        cli_error("%s: --cert and --trust are alternatives; give one", argv[0]);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int show_load_checker(const struct show_opts *o, struct checker *c)
{
    char msg[512];

    memset(c, 0, sizeof *c);
    if (o->cert && cli_read_cert(o->cert, &c->cert, &c->cert_len, msg, sizeof msg) != 0) {
        cli_error("%s", msg);
        return EXIT_INPUT;
    }
    if (o->trust) {
        int rc = show_load_input(o->trust, ITL_KIND_TLV, &c->trust);
        if (rc != EXIT_OK)
            return rc;
        c->have_trust = 1;
    }
    return EXIT_OK;
}

void show_free_checker(struct checker *c)
{
    OPENSSL_free(c->cert);
    if (c->have_trust)
        show_free_input(&c->trust);
}

/* What show and verify both do first: options, the file, the certificate or ITL to check it
 * with, and the verdict. EXIT_OK with everything loaded (the caller frees in and c), -1 after
 * --help, or an exit code. */
int show_load_and_verify(int argc, char **argv, struct cli_global *g, const struct option *longopts,
                         void (*usage)(FILE *), struct show_opts *o, struct input *in,
                         struct checker *c, struct verdict *v)
{
    const char *unused = NULL;
    int rc = show_parse_options(argc, argv, g, NULL, longopts, usage, o, &unused);

    if (rc != EXIT_OK)
        return rc;
    rc = show_load_input(argv[optind], ITL_KIND_AUTO, in);
    if (rc != EXIT_OK)
        return rc;
    rc = show_load_checker(o, c);
    if (rc != EXIT_OK) {
        show_free_input(in);
        return rc;
    }
    show_verify_file(&in->f, o, c->cert, c->cert_len, c->have_trust ? &c->trust.f : NULL, v);
    return EXIT_OK;
}
