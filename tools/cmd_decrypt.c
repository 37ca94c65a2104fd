/* SPDX-License-Identifier: MIT */
/* itl-sign decrypt: a .enc.sgn with the phone's key (testing and support). */
#include "tools/sign_common.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>

#include "format/itl.h"

static int read_private_key_der(const char *path, uint8_t **der, size_t *der_len)
{
    uint8_t *buf;
    size_t len;
    struct itl_error err;
    EVP_PKEY *pk;
    BIO *bio;
    int n;

    if (cli_read_file(path, 1 << 20, &buf, &len, &err) != 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (!pk) {
        cli_error("%s holds no unencrypted PEM private key", path);
        return -1;
    }
    *der = NULL;
    n = i2d_PrivateKey(pk, der);
    EVP_PKEY_free(pk);
    if (n <= 0) {
        cli_error("cannot encode the key of %s", path);
        return -1;
    }
    *der_len = (size_t)n;
    return 0;
}

static void decrypt_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign decrypt FILE.enc.sgn --phone-key KEY.pem [-o OUT]\n"
               "Decrypt an encrypted config with the phone's private key (testing and support).\n");
}

int cmd_decrypt(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {SIGN_LONG_OPTIONS,
                                             {"phone-key", required_argument, NULL, OPT_PHONE_KEY},
                                             {NULL, 0, NULL, 0}};
    struct sign_opts o = {0};
    struct itl_file f;
    struct itl_error ie;
    uint8_t *data, *key = NULL, *plain = NULL;
    size_t len, key_len = 0, plain_len = 0;
    struct itl_error err;
    int rc = sign_parse_options(argc, argv, g, &o, longopts, decrypt_usage, NULL, NULL);

    if (rc != EXIT_OK)
        return rc;
    if (optind + 1 != argc || !o.phone_key) {
        decrypt_usage(stderr);
        return EXIT_USAGE;
    }
    if (g->json && !o.out) {
        cli_error("decrypt --json: give -o FILE (the plain config would mix with the JSON "
                  "document)");
        return EXIT_USAGE;
    }
    if (cli_read_file(argv[optind], SIGN_MAX_INPUT_BYTES, &data, &len, &err) != 0) {
        cli_error("%s", err.msg);
        return EXIT_INPUT;
    }
    if (itl_parse(data, len, ITL_KIND_ENC_SGN, &f, &ie) != 0) {
        cli_error("%s: %s", argv[optind], ie.msg);
        free(data);
        return cli_exit_for(&ie);
    }
    rc = read_private_key_der(o.phone_key, &key, &key_len) ? EXIT_INPUT : EXIT_OK;
    if (rc == EXIT_OK && itl_decrypt_enc_sgn(&f, key, key_len, &plain, &plain_len, &ie) != 0) {
        cli_error("%s: %s", argv[optind], ie.msg);
        rc = cli_exit_for(&ie);
    }
    if (rc == EXIT_OK) {
        if (o.out) /* what was encrypted is secret */
            rc = sign_write_output(o.out, plain, plain_len, 0600);
        if (o.out && rc == EXIT_OK && g->json) {
            struct cli_json_output out = {o.out, plain_len, 1};
            cli_json_result("decrypt", &out, 1, "decrypted", NULL, 0);
        } else if (fwrite(plain, 1, plain_len, stdout) != plain_len)
            rc = EXIT_OUTPUT;
    }
    if (key)
        OPENSSL_cleanse(key, key_len);
    free(key);
    free(plain);
    itl_file_free(&f);
    free(data);
    return rc;
}
