/* SPDX-License-Identifier: MIT */
/* itl-sign verify: "is it valid" or, with --trust, "would a phone holding this ITL accept it". */
#include "tools/show.h"

#include <stdio.h>

/* ---- verify ---- */

static void verify_usage(FILE *f)
{
    fprintf(
        f, "usage: itl-sign verify FILE [--trust INSTALLED.tlv [--allow-expired]\n"
           "                         [--tvs-cert TVS.pem --tvs-trusts CERT...] | --cert PEM]\n"
           "  Exit 0 when FILE's signature is valid. An ITL/CTL is checked with its own SAST\n"
           "  signer record, a .sgn/.enc.sgn needs --cert or --trust.\n"
           "  --trust INSTALLED.tlv  answer as a phone holding that ITL or CTL (docs/trust.md):\n"
           "                         a new ITL signed by its SAST, TFTP or CCM+TFTP record,\n"
           "                         a CTL by the SAST of an installed CTL, a .sgn/.enc.sgn\n"
           "                         by its TFTP or CCM+TFTP record (CCM alone is not enough)\n"
           "  --allow-expired        accept a signer certificate outside its validity (noted)\n"
           "  --tvs-cert PEM         the TVS service's current certificate: with --tvs-trusts\n"
           "  --tvs-trusts PEM       a certificate TVS trusts (repeatable): a signer the list\n"
           "                         lacks is accepted via TVS when a TVS record holds --tvs-cert\n"
           "  --cert PEM             check with this certificate\n"
           "  --json                 print show --json's object (\"trust\": the verdict)\n"
           "exit: 0 valid, 1 invalid or rejected, 2 usage, 3 unreadable or malformed file\n");
}

static void describe_record(char *out, size_t size, const struct itl_file *f, long i)
{
    const struct itl_record *r = &f->records[i];
    snprintf(out, size, "record #%ld (%s %.*s)", i + 1, show_short_role(r->function),
             (int)r->subject.len, r->subject.ptr ? (const char *)r->subject.ptr : "");
}

int cmd_verify(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        {"cert", required_argument, NULL, OPT_CERT},
        {"trust", required_argument, NULL, OPT_TRUST},
        {"tvs-cert", required_argument, NULL, OPT_TVS_CERT},
        {"tvs-trusts", required_argument, NULL, OPT_TVS_TRUSTS},
        {"allow-expired", no_argument, NULL, OPT_ALLOW_EXPIRED},
        {NULL, 0, NULL, 0}};
    struct show_opts o = {0};
    struct checker c;
    struct input in;
    struct verdict v;
    char who[1024];
    int rc;

    rc = show_load_and_verify(argc, argv, g, longopts, verify_usage, &o, &in, &c, &v);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (g->json && v.outcome != UNCHECKABLE) {
        /* The same object as show --json, its "trust" the phone model's verdict. */
        show_print_json(stdout, &in, &v, itl_find_signer_record(&in.f),
                        show_count_bad_records(&in.f));
        cli_json_emitted();
        rc = show_exit_code(v.outcome);
        goto out;
    }
    switch (v.outcome) {
    case VERIFIED:
        if (c.have_trust && v.path == ITL_TRUST_TVS) {
            describe_record(who, sizeof who, &c.trust.f, v.tvs_record);
            printf("accepted via TVS: %s trusts the signer; the phone reaches TVS through %s "
                   "of %s\n",
                   o.tvs_cert, who, o.trust);
            printf("rule: %s\n", v.rule);
        } else if (c.have_trust) {
            describe_record(who, sizeof who, &c.trust.f, v.record);
            printf("accepted: signed by %s of %s\n", who, o.trust);
            printf("rule: %s\n", v.rule);
        } else if (o.cert) {
            printf("%s: verified with %s\n", in.path, o.cert);
        } else {
            describe_record(who, sizeof who, &in.f, v.record);
            printf("%s: verified: signed by %s\n", in.path, who);
        }
        rc = EXIT_OK;
        break;
    case UNCHECKABLE:
        cli_error("%s: %s", in.path, v.why);
        rc = EXIT_USAGE;
        break;
    default:
        if (c.have_trust)
            printf("rejected: %s\n", v.why);
        else
            printf("%s: invalid: %s\n", in.path, v.why);
        rc = show_exit_code(v.outcome);
        break;
    }
    if (c.have_trust && v.note[0])
        printf("note: %s\n", v.note);
out:
    show_free_checker(&c);
    show_free_input(&in);
    return rc;
}
