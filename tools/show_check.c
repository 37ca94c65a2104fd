/* SPDX-License-Identifier: MIT */
/* show, verify, strip: reading the file, checking its signature, their common options. */
#include "tools/show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

/* ---- input ---- */

int show_load_input(const char *path, enum itl_kind hint, struct input *in)
{
    struct itl_error err = {0};

    memset(in, 0, sizeof *in);
    in->path = path;
    if (cli_read_input(path, SHOW_MAX_INPUT_BYTES, &in->data, &in->len, &in->mode, &err) != 0) {
        cli_error("%s", err.msg);
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

static enum outcome failure_kind(const struct itl_file *f)
{
    return itl_digest_nid(f->hdr.digest) == 0 ? MALFORMED : INVALID;
}

/* As a phone holding `trust` would decide: the phone model of format/trust.c. */
static void verify_against(const struct itl_file *f, const struct itl_file *trust,
                           const struct show_opts *o, const struct checker *c, struct verdict *v)
{
    struct itl_trust_opts to = {0};
    struct itl_trust_verdict tv;

    to.now = (int64_t)time(NULL);
    to.expired_accept = o->allow_expired;
    if (c && c->tvs_cert) {
        to.tvs_cert = c->tvs_cert;
        to.tvs_cert_len = c->tvs_cert_len;
        to.tvs_trusts = c->tvs_trusts;
        to.n_tvs_trusts = c->n_tvs_trusts;
    }
    itl_trust_decide(trust, f, &to, &tv);
    v->phone_model = 1;
    v->source = o->trust;
    v->record = tv.record;
    v->path = tv.path;
    v->tvs_record = tv.tvs_record;
    v->rule = tv.rule;
    snprintf(v->note, sizeof v->note, "%s", tv.note);
    snprintf(v->why, sizeof v->why, "%s", tv.why);
    v->outcome = tv.path != ITL_TRUST_NONE ? VERIFIED : tv.malformed ? MALFORMED : INVALID;
}

void show_verify_file(const struct itl_file *f, const struct show_opts *o, const uint8_t *cert,
                      size_t cert_len, const struct itl_file *trust, struct verdict *v)
{
    show_verify_file_ex(f, o, cert, cert_len, trust, NULL, v);
}

void show_verify_file_ex(const struct itl_file *f, const struct show_opts *o, const uint8_t *cert,
                         size_t cert_len, const struct itl_file *trust, const struct checker *c,
                         struct verdict *v)
{
    struct itl_error err = {0};

    memset(v, 0, sizeof *v);
    v->record = -1;
    v->tvs_record = -1;
    if (cert) {
        if (itl_verify_with_cert(f, cert, cert_len, &err) == 0) {
            v->outcome = VERIFIED;
            v->source = o->cert;
        } else {
            v->outcome = failure_kind(f);
            snprintf(v->why, sizeof v->why, "%s", err.msg);
        }
    } else if (trust) {
        verify_against(f, trust, o, c, v);
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
    case OPT_TVS_CERT:
        c->o->tvs_cert = arg;
        return 1;
    case OPT_TVS_TRUSTS:
        if (c->o->n_tvs_trusts == SHOW_MAX_TVS_TRUSTS) {
            cli_error("--tvs-trusts: at most %d certificates", SHOW_MAX_TVS_TRUSTS);
            return -1;
        }
        c->o->tvs_trusts[c->o->n_tvs_trusts++] = arg;
        return 1;
    case OPT_ALLOW_EXPIRED:
        c->o->allow_expired = 1;
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
    if ((o->tvs_cert || o->n_tvs_trusts) && !(o->trust && o->tvs_cert && o->n_tvs_trusts)) {
        cli_error("%s: --tvs-cert and --tvs-trusts model TVS for --trust: give --trust, "
                  "--tvs-cert and at least one --tvs-trusts",
                  argv[0]);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int load_checker(const struct show_opts *o, struct checker *c)
{
    struct itl_error err;

    if (o->cert && cli_read_cert(o->cert, &c->cert, &c->cert_len, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_INPUT;
    }
    if (o->trust) {
        int rc = show_load_input(o->trust, ITL_KIND_AUTO, &c->trust);
        if (rc != EXIT_OK)
            return rc;
        c->have_trust = 1;
        if (c->trust.f.kind != ITL_KIND_TLV) {
            cli_error("--trust %s: --trust needs an ITL or CTL (.tlv), the list a phone has "
                      "installed; this is a %s file (check it with --cert PEM instead)",
                      o->trust, itl_kind_name(c->trust.f.kind));
            return EXIT_USAGE;
        }
    }
    if (o->tvs_cert && cli_read_cert(o->tvs_cert, &c->tvs_cert, &c->tvs_cert_len, &err) != 0) {
        cli_error("--tvs-cert: %s", err.msg);
        return EXIT_INPUT;
    }
    for (size_t i = 0; i < o->n_tvs_trusts; i++) {
        uint8_t *der;
        size_t len;
        if (cli_read_cert(o->tvs_trusts[i], &der, &len, &err) != 0) {
            cli_error("--tvs-trusts: %s", err.msg);
            return EXIT_INPUT;
        }
        c->tvs_trusts[c->n_tvs_trusts++] = (struct itl_entry){der, len, 0};
    }
    return EXIT_OK;
}

/* On failure nothing stays loaded: the callers free only what succeeded. */
int show_load_checker(const struct show_opts *o, struct checker *c)
{
    int rc;

    memset(c, 0, sizeof *c);
    rc = load_checker(o, c);
    if (rc != EXIT_OK)
        show_free_checker(c);
    return rc;
}

void show_free_checker(struct checker *c)
{
    OPENSSL_free(c->cert);
    OPENSSL_free(c->tvs_cert);
    for (size_t i = 0; i < c->n_tvs_trusts; i++)
        OPENSSL_free((void *)c->tvs_trusts[i].cert_der);
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
    show_verify_file_ex(&in->f, o, c->cert, c->cert_len, c->have_trust ? &c->trust.f : NULL, c, v);
    return EXIT_OK;
}
