/* SPDX-License-Identifier: MIT */
/* itl-sign encrypt: an encrypted config (.enc.sgn) and its short .sgn. */
#include "tools/sign_common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static void encrypt_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign encrypt SEP<MAC>.cnf.xml --phone-cert PHONE.pem [-o DIR]\n"
            "Writes SEP<MAC>.cnf.xml.enc.sgn (AES-128 key wrapped to the phone's key, signed\n"
            "by the TFTP key) and the short SEP<MAC>.cnf.xml.sgn that points the phone to it.\n");
}

int cmd_encrypt(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        SIGN_LONG_OPTIONS,
        {"phone-cert", required_argument, NULL, OPT_PHONE_CERT},
        SIGN_ITL_OPTION,
        {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct sgn_request req;
    struct sgn_result r = {0};
    uint8_t *data = NULL, *cert = NULL;
    size_t len, cert_len;
    struct itl_error err;
    char path[PATH_MAX], path2[PATH_MAX];
    unsigned mode = 0;
    int rc = sign_parse_options(argc, argv, g, &o, longopts, encrypt_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind + 1 != argc || !o.phone_cert) {
        encrypt_usage(stderr);
        return EXIT_USAGE;
    }
    o.out_dir = o.out; /* -o names the directory */
    if (cli_read_input(argv[optind], SIGN_MAX_INPUT_BYTES, &data, &len, &mode, &err) != 0 ||
        cli_read_cert(o.phone_cert, &cert, &cert_len, &err) != 0) {
        cli_error("%s", err.msg);
        free(data);
        return EXIT_INPUT;
    }
    sign_fill_request(&req, POL_OP_ENCRYPT, &o);
    req.filename = sign_base_name(argv[optind]);
    req.data = data;
    req.len = len;
    req.phone_cert = cert;
    req.phone_cert_len = cert_len;
    rc = sign_call_once(g, &req, &r, NULL);
    if (rc == EXIT_OK)
        rc = sign_report("encrypt", &r, g->quiet);
    if (rc == EXIT_OK &&
        (sign_output_path(o.out_dir, argv[optind], r.out_name, path, sizeof path, &err) != 0 ||
         sign_output_path(o.out_dir, argv[optind], r.out2_name, path, sizeof path, &err) != 0)) {
        cli_error("%s", err.msg);
        rc = EXIT_OUTPUT;
    }
    if (rc == EXIT_OK) {
        sign_output_path(o.out_dir, argv[optind], r.out_name, path, sizeof path, &err);
        rc = sign_write_output(path, r.out, r.out_len, cli_output_mode(mode));
    }
    if (rc == EXIT_OK) {
        sign_output_path(o.out_dir, argv[optind], r.out2_name, path2, sizeof path2, &err);
        rc = sign_write_output(path2, r.out2, r.out2_len, cli_output_mode(mode));
    }
    if (rc == EXIT_OK) {
        const char *paths[2] = {path, path2};
        sign_print_outputs("encrypt", &r, paths, 2, 0, g);
    }
    sgn_result_free(&r);
    free(data);
    free(cert);
    return rc;
}
