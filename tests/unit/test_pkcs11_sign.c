/* SPDX-License-Identifier: MIT */
/* pkcs11: signing. Signatures verify with OpenSSL, equal the OpenSSL pkcs11 engine's byte for
 * byte, survive lost sessions and a lost login, and hold up under parallel use (SoftHSM2). */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pkcs11/internal.h"
#include "tests/unit/testlib.h"

struct fixture {
    struct testlib_token tt;
    char dir[512];
    struct tok *t;
    struct tok_key *k;
};

static void login(struct fixture *f)
{
    struct tok_pin pin;
    struct itl_error err;

    ck_assert_int_eq(tok_pin_from_file(f->tt.pin_file, &pin, &err), 0);
    if (tok_login(f->t, &pin, &err) != 0)
        ck_abort_msg("tok_login: %s", err.msg);
    tok_pin_wipe(&pin);
}

static void open_token(struct fixture *f, size_t pool, int hash_mechanisms)
{
    struct tok_options o = {.module = f->tt.module,
                            .uri = f->tt.uri,
                            .pool_size = pool,
                            .mechanism = hash_mechanisms ? TOK_MECH_HASH : TOK_MECH_RAW};
    struct itl_error err;

    if (tok_open(&o, &f->t, &err) != 0)
        ck_abort_msg("tok_open: %s", err.msg);
    login(f);
}

static void find_key(struct fixture *f, const char *label)
{
    struct itl_error err;
    if (tok_find_key(f->t, label, &f->k, &err) != 0)
        ck_abort_msg("tok_find_key: %s", err.msg);
}

static void close_token(struct fixture *f)
{
    tok_key_free(f->k);
    f->k = NULL;
    tok_close(f->t);
    f->t = NULL;
}

/* A token holding key `label` (generated on the token, self-signed certificate). */
static void setup_with_key(struct fixture *f, const char *token, const char *label, size_t pool)
{
    struct tok_generate_opts o = {.label = label, .subject = "CN=TFTP,O=itl-sign test"};
    struct itl_error err;
    uint8_t *der;
    size_t len;

    memset(f, 0, sizeof *f);
    testlib_make_token(token, &f->tt);
    snprintf(f->dir, sizeof f->dir, "%s", testlib_tmpdir("sign"));
    open_token(f, pool, 0);
    if (tok_generate(f->t, &o, &der, &len, &err) != 0)
        ck_abort_msg("tok_generate: %s", err.msg);
    free(der);
    find_key(f, label);
}

static int openssl_verify(const struct tok_key *k, int nid, const uint8_t *data, size_t len,
                          const uint8_t *sig, size_t sig_len)
{
    size_t cert_len;
    const uint8_t *cert = tok_key_cert(k, &cert_len);
    const unsigned char *p = cert;
    X509 *x = d2i_X509(NULL, &p, (long)cert_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    ok = x && md &&
         EVP_DigestVerifyInit(md, NULL, EVP_get_digestbynid(nid), NULL, X509_get0_pubkey(x)) == 1 &&
         EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(md);
    X509_free(x);
    return ok;
}

static const int nids[] = {NID_sha1, NID_sha256, NID_sha512};

START_TEST(test_signatures_verify)
{
    struct fixture f;
    const uint8_t data[] = "ITLFile.tlv contents";
    uint8_t sig[512], sig2[512], md[32];
    size_t sig_len, sig2_len;
    struct itl_error err;

    setup_with_key(&f, "itl-sign1", "TFTP", 2);
    ck_assert_uint_eq(tok_key_sig_len(f.k), 256);
    ck_assert_str_eq(tok_key_label(f.k), "TFTP");
    for (size_t i = 0; i < 3; i++) {
        sig_len = sizeof sig;
        if (tok_sign_data(f.t, f.k, nids[i], data, sizeof data, sig, &sig_len, &err) != 0)
            ck_abort_msg("tok_sign_data: %s", err.msg);
        ck_assert_uint_eq(sig_len, 256);
        ck_assert(openssl_verify(f.k, nids[i], data, sizeof data, sig, sig_len));
        ck_assert(!openssl_verify(f.k, nids[i], data, sizeof data - 1, sig, sig_len));
    }
    /* a digest alone (the format layer's usual call) gives the same signature */
    EVP_Digest(data, sizeof data, md, NULL, EVP_sha256(), NULL);
    sig_len = sig2_len = sizeof sig;
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     0);
    ck_assert_int_eq(tok_sign(f.t, f.k, NID_sha256, NULL, 0, md, 32, sig2, &sig2_len, &err), 0);
    ck_assert_uint_eq(sig_len, sig2_len);
    ck_assert_mem_eq(sig, sig2, sig_len);
    close_token(&f);
}
END_TEST

START_TEST(test_sign_usage_errors)
{
    struct fixture f;
    uint8_t sig[512], md[32] = {0};
    size_t sig_len = sizeof sig;
    struct itl_error err;
    struct tok_key *none;

    setup_with_key(&f, "itl-sign2", "TFTP", 1);
    ck_assert_int_eq(tok_sign(f.t, f.k, NID_md5, NULL, 0, md, 16, sig, &sig_len, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "SHA-1, SHA-256 and SHA-512"));
    ck_assert_int_eq(tok_sign(f.t, f.k, NID_sha256, NULL, 0, md, 20, sig, &sig_len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "32 bytes, not 20"));
    sig_len = 100;
    ck_assert_int_eq(tok_sign(f.t, f.k, NID_sha256, NULL, 0, md, 32, sig, &sig_len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "signature buffer of 100 bytes"));
    ck_assert_int_eq(tok_find_key(f.t, "NoSuchKey", &none, &err), -1);
    ck_assert_int_eq(err.cls, ITL_E_NO_KEY);
    ck_assert_ptr_nonnull(strstr(err.msg, "no private key labelled 'NoSuchKey' on token"));
    close_token(&f);
}
END_TEST

/* The OpenSSL pkcs11 engine (libp11) signs the same data with the same key: PKCS#1 v1.5 is
 * deterministic, so the bytes must be identical. The engine gets the PIN through -passin file:,
 * never argv; it may crash at exit (pkcs11-notes P7), so its exit status alone proves nothing:
 * the signature file must be complete. */
START_TEST(test_signatures_equal_engine)
{
    static const char *digest_names[] = {"sha1", "sha256", "sha512"};
    struct fixture f;
    char data_path[700], sig_path[700];
    const uint8_t data[] = "<device><fullConfig>true</fullConfig></device>\n";

    setup_with_key(&f, "itl-engine", "CallManager", 1);
    close_token(&f); /* one process on the token at a time (pkcs11-notes P4) */
    snprintf(data_path, sizeof data_path, "%s/data", f.dir);
    testlib_write(data_path, data, sizeof data - 1);
    for (size_t i = 0; i < 3; i++) {
        uint8_t sig[512], *engine_sig;
        size_t sig_len = sizeof sig, engine_len;
        struct itl_error err;
        int rc;

        snprintf(sig_path, sizeof sig_path, "%s/sig.%s", f.dir, digest_names[i]);
        rc = testlib_sh("PKCS11_MODULE_PATH='%s' openssl dgst -%s -engine pkcs11 -keyform engine "
                        "-sign 'pkcs11:token=itl-engine;object=CallManager;type=private' "
                        "-passin 'file:%s' -out '%s' '%s' >/dev/null 2>&1",
                        f.tt.module, digest_names[i], f.tt.pin_file, sig_path, data_path);
        ck_assert_msg(rc == 0 || rc == 139 || rc == -1, "openssl engine exit %d", rc);
        engine_sig = testlib_read(sig_path, &engine_len);
        ck_assert_uint_eq(engine_len, 256);

        open_token(&f, 1, 0);
        find_key(&f, "CallManager");
        if (tok_sign_data(f.t, f.k, nids[i], data, sizeof data - 1, sig, &sig_len, &err) != 0)
            ck_abort_msg("tok_sign_data: %s", err.msg);
        ck_assert_uint_eq(sig_len, engine_len);
        ck_assert_mem_eq(sig, engine_sig, sig_len);
        close_token(&f);
        free(engine_sig);
    }
}
END_TEST

/* CKM_SHAx_RSA_PKCS (the token hashes) and CKM_RSA_PKCS over our DigestInfo agree. */
START_TEST(test_hash_mechanisms_agree)
{
    struct fixture f;
    const uint8_t data[] = "SEP001122334455.cnf.xml";
    uint8_t a[512], b[512];
    struct itl_error err;

    setup_with_key(&f, "itl-hashmech", "TFTP", 1);
    for (size_t i = 0; i < 3; i++) {
        size_t a_len = sizeof a, b_len = sizeof b;
        ck_assert_int_eq(tok_sign_data(f.t, f.k, nids[i], data, sizeof data, a, &a_len, &err), 0);
        close_token(&f);
        open_token(&f, 1, 1);
        find_key(&f, "TFTP");
        if (tok_sign_data(f.t, f.k, nids[i], data, sizeof data, b, &b_len, &err) != 0)
            ck_abort_msg("hash mechanism: %s", err.msg);
        ck_assert_uint_eq(a_len, b_len);
        ck_assert_mem_eq(a, b, a_len);
        /* with hash mechanisms the token needs the message, not only a digest */
        ck_assert_int_eq(tok_sign(f.t, f.k, nids[i], NULL, 0, a,
                                  nids[i] == NID_sha1     ? 20
                                  : nids[i] == NID_sha256 ? 32
                                                          : 64,
                                  b, &b_len, &err),
                         -1);
        ck_assert_ptr_nonnull(strstr(err.msg, "need the message"));
        close_token(&f);
        open_token(&f, 1, 0);
        find_key(&f, "TFTP");
    }
    close_token(&f);
}
END_TEST

/* A signature that does not verify never leaves the layer. */
START_TEST(test_unverifiable_signature_refused)
{
    struct fixture f;
    const uint8_t data[] = "payload";
    uint8_t sig[512];
    size_t sig_len = sizeof sig;
    struct tok_generate_opts o = {.label = "Other", .subject = "CN=other"};
    struct tok_key *other;
    struct itl_error err;
    uint8_t *der;
    size_t len;
    EVP_PKEY *swap;

    setup_with_key(&f, "itl-verify", "TFTP", 1);
    ck_assert_int_eq(tok_generate(f.t, &o, &der, &len, &err), 0);
    free(der);
    ck_assert_int_eq(tok_find_key(f.t, "Other", &other, &err), 0);
    /* give TFTP the certificate key of Other, as a token with a mismatched cert would */
    swap = f.k->pub;
    f.k->pub = other->pub;
    other->pub = swap;
    for (size_t i = 0; i < f.k->n_vctx; i++)
        EVP_PKEY_CTX_free(f.k->vctx[i]);
    f.k->n_vctx = 0;
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     -1);
    ck_assert_int_eq(err.cls, ITL_E_VERIFY);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not verify with its certificate"));
    tok_key_free(other);
    close_token(&f);
}
END_TEST

START_TEST(test_rebuild_after_sessions_closed)
{
    struct fixture f;
    const uint8_t data[] = "rebuild";
    uint8_t sig[512];
    size_t sig_len;
    struct tok_status st;
    struct itl_error err;

    setup_with_key(&f, "itl-rebuild", "TFTP", 2);
    sig_len = sizeof sig;
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     0);
    ck_assert_uint_eq(tok_test_login_calls(f.t), 1);

    /* a token reset / another part of the process: all sessions and the login are gone */
    ck_assert_uint_eq(tok_test_close_all_sessions(f.t), CKR_OK);
    sig_len = sizeof sig;
    if (tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err) != 0)
        ck_abort_msg("sign after close-all: %s", err.msg);
    ck_assert(openssl_verify(f.k, NID_sha256, data, sizeof data, sig, sig_len));
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), 0);
    ck_assert_uint_eq(st.rebuilds, 1);
    ck_assert_int_eq(st.logged_in, 1);
    ck_assert_uint_eq(st.pool_in_use, 0);
    ck_assert_uint_eq(tok_test_login_calls(f.t), 2); /* re-login once with the held PIN */

    /* and again: each loss costs one rebuild, never a loop */
    ck_assert_uint_eq(tok_test_close_all_sessions(f.t), CKR_OK);
    sig_len = sizeof sig;
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha1, data, sizeof data, sig, &sig_len, &err), 0);
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), 0);
    ck_assert_uint_eq(st.rebuilds, 2);
    close_token(&f);
}
END_TEST

/* The held PIN stops working (changed elsewhere): the re-login fails once, then the PIN is
 * never sent again. */
START_TEST(test_relogin_with_rejected_pin)
{
    struct fixture f;
    const uint8_t data[] = "relogin";
    uint8_t sig[512];
    size_t sig_len = sizeof sig;
    struct itl_error err;

    setup_with_key(&f, "itl-relogin", "TFTP", 1);
    ck_assert_uint_eq(f.t->mod->C_SetPIN(f.t->login_session, (CK_UTF8CHAR *)f.tt.pin,
                                         strlen(f.tt.pin), (CK_UTF8CHAR *)"changed-elsewhere", 17),
                      CKR_OK);
    ck_assert_uint_eq(tok_test_close_all_sessions(f.t), CKR_OK);
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     -1);
    ck_assert_msg(err.cls == ITL_E_PIN, "%s", err.msg);
    ck_assert_uint_eq(err.ckr, CKR_PIN_INCORRECT);
    ck_assert_ptr_nonnull(strstr(err.msg, "CKR_PIN_INCORRECT"));
    ck_assert_uint_eq(tok_test_login_calls(f.t), 2);

    sig_len = sizeof sig;
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     -1);
    ck_assert_int_eq(err.cls, ITL_E_PIN);
    ck_assert_ptr_nonnull(strstr(err.msg, "the PIN was rejected earlier; not sending it again"));
    ck_assert_uint_eq(tok_test_login_calls(f.t), 2);
    close_token(&f);
}
END_TEST

/* The token leaves (here: its label no longer matches what we hold, as after a swap) and comes
 * back: while it is away every call fails fast with "not present", and nothing is sent. */
START_TEST(test_token_absent_fails_fast)
{
    struct fixture f;
    const uint8_t data[] = "absent";
    uint8_t sig[512];
    size_t sig_len = sizeof sig;
    CK_UTF8CHAR held[32];
    struct tok_status st;
    struct itl_error err;

    setup_with_key(&f, "itl-absent", "TFTP", 2);
    memcpy(held, f.t->label, sizeof held);
    memset(f.t->label, ' ', sizeof f.t->label);
    memcpy(f.t->label, "itl-elsewhere", 13);
    ck_assert_uint_eq(tok_test_close_all_sessions(f.t), CKR_OK);
    for (int i = 0; i < 2; i++) {
        sig_len = sizeof sig;
        ck_assert_int_eq(
            tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err), -1);
        ck_assert_int_eq(err.cls, ITL_E_NO_TOKEN);
        ck_assert_ptr_nonnull(strstr(err.msg, "not present"));
    }
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), -1);
    ck_assert_int_eq(st.present, 0);
    ck_assert_uint_eq(tok_test_login_calls(f.t), 1);

    memcpy(f.t->label, held, sizeof held); /* back */
    sig_len = sizeof sig;
    if (tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err) != 0)
        ck_abort_msg("sign after the token came back: %s", err.msg);
    ck_assert(openssl_verify(f.k, NID_sha256, data, sizeof data, sig, sig_len));
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), 0);
    ck_assert_int_eq(st.present, 1);
    ck_assert_uint_eq(st.rebuilds, 1);
    ck_assert_uint_eq(tok_test_login_calls(f.t), 2);
    close_token(&f);
}
END_TEST

/* ---- A token directory that goes away and comes back (SoftHSM2, for real) ---- */

/* SoftHSM2 keeps a token in a directory under tokens/ and reads them only in C_Initialize:
 * moved away, its slot answers CKR_GENERAL_ERROR and shows no objects; moved back, it stays
 * lost until the module is initialised again. */
static void token_dir_path(const struct fixture *f, char *out, size_t size)
{
    char tokens[700];
    DIR *d;
    struct dirent *e;

    snprintf(tokens, sizeof tokens, "%s/tokens", f->tt.dir);
    d = opendir(tokens);
    ck_assert_ptr_nonnull(d);
    out[0] = '\0';
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') {
            ck_assert_msg(out[0] == '\0', "more than one token directory in %s", tokens);
            ck_assert_int_lt(snprintf(out, size, "%s/%s", tokens, e->d_name), (int)size);
        }
    closedir(d);
    ck_assert_msg(out[0] != '\0', "no token directory in %s", tokens);
}

static void token_dir_move(const struct fixture *f, const char *dir, int away)
{
    char aside[700];

    snprintf(aside, sizeof aside, "%s/away", f->tt.dir);
    ck_assert_int_eq(away ? rename(dir, aside) : rename(aside, dir), 0);
}

static void assert_not_present(const struct itl_error *err, const char *what)
{
    ck_assert_msg(err->cls == ITL_E_NO_TOKEN, "%s: kind %d: %s", what, err->cls, err->msg);
    ck_assert_msg(strstr(err->msg, "token 'itl-gone'") && strstr(err->msg, "token not present"),
                  "%s: %s", what, err->msg);
    ck_assert_msg(!strstr(err->msg, "no private key") && !strstr(err->msg, "no certificate"),
                  "%s blames the key: %s", what, err->msg);
}

START_TEST(test_token_dir_gone_and_back)
{
    struct fixture f;
    const uint8_t data[] = "gone";
    uint8_t sig[512], *der;
    size_t sig_len = sizeof sig, len, n;
    char dir[800];
    struct tok_key_info *keys;
    struct tok_key *k2 = NULL;
    struct tok_status st;
    struct itl_error err;

    setup_with_key(&f, "itl-gone", "TFTP", 2);
    token_dir_path(&f, dir, sizeof dir);
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     0);

    token_dir_move(&f, dir, 1);
    sig_len = sizeof sig;
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     -1);
    assert_not_present(&err, "tok_sign");
    /* the find-key path, as direct mode takes it, and the other lookups */
    ck_assert_int_eq(tok_find_key(f.t, "TFTP", &k2, &err), -1);
    assert_not_present(&err, "tok_find_key");
    ck_assert_int_eq(tok_export_cert(f.t, "TFTP", &der, &len, &err), -1);
    assert_not_present(&err, "tok_export_cert");
    ck_assert_int_eq(tok_list_keys(f.t, &keys, &n, &err), -1); /* not an empty list */
    assert_not_present(&err, "tok_list_keys");
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), -1);
    ck_assert_int_eq(st.present, 0);
    assert_not_present(&err, "tok_get_status");
    ck_assert_uint_eq(tok_test_login_calls(f.t), 1); /* nothing sent to a token not there */

    token_dir_move(&f, dir, 0);
    sig_len = sizeof sig;
    if (tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err) != 0)
        ck_abort_msg("sign after the token directory came back: %s", err.msg);
    ck_assert(openssl_verify(f.k, NID_sha256, data, sizeof data, sig, sig_len));
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), 0);
    ck_assert_int_eq(st.present, 1);
    ck_assert_int_eq(st.logged_in, 1);
    ck_assert_uint_eq(st.rebuilds, 1);
    ck_assert_uint_eq(st.pool_in_use, 0);
    ck_assert_uint_eq(tok_test_login_calls(f.t), 2); /* re-login once with the held PIN */
    if (tok_find_key(f.t, "TFTP", &k2, &err) != 0)
        ck_abort_msg("tok_find_key once back: %s", err.msg);
    tok_key_free(k2);
    close_token(&f);
}
END_TEST

/* The PIN changed while the token was away: the re-login after the module was initialised again
 * costs one try, and the PIN is never sent again. */
START_TEST(test_token_dir_back_with_other_pin)
{
    struct fixture f;
    const uint8_t data[] = "gone-pin";
    uint8_t sig[512];
    size_t sig_len = sizeof sig;
    char dir[800];
    struct itl_error err;

    setup_with_key(&f, "itl-gone", "TFTP", 1);
    token_dir_path(&f, dir, sizeof dir);
    ck_assert_uint_eq(f.t->mod->C_SetPIN(f.t->login_session, (CK_UTF8CHAR *)f.tt.pin,
                                         strlen(f.tt.pin), (CK_UTF8CHAR *)"changed-elsewhere", 17),
                      CKR_OK);
    token_dir_move(&f, dir, 1);
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     -1);
    assert_not_present(&err, "tok_sign while away");
    token_dir_move(&f, dir, 0);
    sig_len = sizeof sig;
    ck_assert_int_eq(tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err),
                     -1);
    ck_assert_msg(err.cls == ITL_E_PIN && err.ckr == CKR_PIN_INCORRECT, "%s", err.msg);
    ck_assert_uint_eq(tok_test_login_calls(f.t), 2);
    for (int i = 0; i < 2; i++) {
        sig_len = sizeof sig;
        ck_assert_int_eq(
            tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err), -1);
        ck_assert_int_eq(err.cls, ITL_E_PIN);
        ck_assert_ptr_nonnull(
            strstr(err.msg, "the PIN was rejected earlier; not sending it again"));
    }
    ck_assert_uint_eq(tok_test_login_calls(f.t), 2);
    ck_assert_ptr_null(f.t->pin.bytes);
    close_token(&f);
}
END_TEST

#define THREADS 4
#define PER_THREAD 200

struct worker {
    struct fixture *f;
    int id;
    int verified;
    char error[ITL_ERROR_LEN + 64]; /* a message, with what the thread was doing in front */
};

static void *sign_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char data[64];
        uint8_t sig[512];
        size_t sig_len = sizeof sig;
        struct itl_error err;
        int len = snprintf(data, sizeof data, "thread %d message %d", w->id, i);
        int nid = nids[i % 3];
        if (tok_sign_data(w->f->t, w->f->k, nid, (uint8_t *)data, (size_t)len, sig, &sig_len,
                          &err) != 0) {
            snprintf(w->error, sizeof w->error, "%s", err.msg);
            return NULL;
        }
        if (openssl_verify(w->f->k, nid, (uint8_t *)data, (size_t)len, sig, sig_len))
            w->verified++;
    }
    return NULL;
}

START_TEST(test_parallel_signing)
{
    struct fixture f;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    struct tok_status st;
    struct itl_error err;

    setup_with_key(&f, "itl-parallel", "TFTP", 4);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.f = &f, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, sign_many, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].error[0] == '\0', "thread %d: %s", i, w[i].error);
        ck_assert_int_eq(w[i].verified, PER_THREAD);
    }
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), 0);
    ck_assert_uint_eq(st.pool_size, 4);
    ck_assert_uint_eq(st.pool_in_use, 0);
    ck_assert_uint_eq(st.rebuilds, 0);
    close_token(&f);
}
END_TEST

/* Sessions lost while 4 threads sign: every request still ends with a verified signature. */
START_TEST(test_parallel_signing_through_rebuilds)
{
    struct fixture f;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    struct tok_status st;
    struct itl_error err;

    setup_with_key(&f, "itl-par-rebuild", "TFTP", 4);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.f = &f, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, sign_many, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
        tok_test_close_all_sessions(f.t);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].error[0] == '\0', "thread %d: %s", i, w[i].error);
        ck_assert_int_eq(w[i].verified, PER_THREAD);
    }
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), 0);
    ck_assert_uint_ge(st.rebuilds, 1);
    ck_assert_uint_le(st.rebuilds, 3);
    close_token(&f);
}
END_TEST

/* The token directory goes away and comes back while 4 threads sign and a fifth asks for the
 * status: the module is finalised and initialised again with no thread inside it. Phases are
 * driven by what the threads report, never by time; the waits are deadlock guards only. */
enum { PHASE_BEFORE, PHASE_AWAY, PHASE_BACK };

struct gone_shared {
    struct fixture *f;
    pthread_mutex_t lock;
    int phase;     /* set by the main thread */
    int stop;      /* the workers and the status thread end */
    int ok_before; /* signatures verified before the token left */
    int failed_away;
    int ok_back;                    /* signatures verified that started after the recovery */
    char error[ITL_ERROR_LEN + 64]; /* a message, with what the thread was doing in front */
};

struct gone_worker {
    struct gone_shared *g;
    int id;
};

static int gone_get(struct gone_shared *g, int *field)
{
    int v;
    pthread_mutex_lock(&g->lock);
    v = *field;
    pthread_mutex_unlock(&g->lock);
    return v;
}

static void gone_fail(struct gone_shared *g, const char *msg)
{
    pthread_mutex_lock(&g->lock);
    if (!g->error[0])
        snprintf(g->error, sizeof g->error, "status: %s", msg);
    g->stop = 1;
    pthread_mutex_unlock(&g->lock);
}

static void *gone_sign(void *arg)
{
    struct gone_worker *w = arg;
    struct gone_shared *g = w->g;

    for (int i = 0; !gone_get(g, &g->stop); i++) {
        char data[64];
        uint8_t sig[512];
        size_t sig_len = sizeof sig;
        struct itl_error err;
        int phase = gone_get(g, &g->phase);
        int len = snprintf(data, sizeof data, "thread %d message %d", w->id, i);
        int rc = tok_sign_data(g->f->t, g->f->k, NID_sha256, (uint8_t *)data, (size_t)len, sig,
                               &sig_len, &err);
        pthread_mutex_lock(&g->lock);
        if (rc == 0 &&
            openssl_verify(g->f->k, NID_sha256, (uint8_t *)data, (size_t)len, sig, sig_len)) {
            g->ok_before += phase == PHASE_BEFORE;
            g->ok_back += phase == PHASE_BACK;
        } else if (rc == 0) {
            snprintf(g->error, sizeof g->error, "a signature did not verify");
            g->stop = 1;
        } else if (phase == PHASE_BACK) {
            snprintf(g->error, sizeof g->error, "after the recovery: %s", err.msg);
            g->stop = 1;
        } else if (err.cls != ITL_E_NO_TOKEN || !strstr(err.msg, "token not present")) {
            snprintf(g->error, sizeof g->error, "while away: kind %d: %s", err.cls, err.msg);
            g->stop = 1;
        } else {
            g->failed_away++;
        }
        pthread_mutex_unlock(&g->lock);
        if (rc != 0) {
            struct timespec ts = {0, 1000 * 1000}; /* a client would wait before retrying */
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void *gone_status(void *arg)
{
    struct gone_shared *g = arg;

    while (!gone_get(g, &g->stop)) {
        struct tok_status st;
        struct itl_error err;
        struct timespec ts = {0, 2 * 1000 * 1000};
        if (tok_get_status(g->f->t, &st, &err) != 0 && err.cls != ITL_E_NO_TOKEN) {
            gone_fail(g, err.msg);
            break;
        }
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Waits (deadlock guard: 120 s) until *field >= want or a thread failed. */
static void gone_wait(struct gone_shared *g, int *field, int want, const char *what)
{
    for (int i = 0; i < 120000; i++) {
        struct timespec ts = {0, 1000 * 1000};
        if (gone_get(g, field) >= want || gone_get(g, &g->stop))
            return;
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("deadlock guard: no %s after 120 s", what);
}

START_TEST(test_token_dir_gone_under_load)
{
    struct fixture f;
    struct gone_shared g = {.f = &f};
    struct gone_worker w[THREADS];
    pthread_t th[THREADS], status_th;
    const uint8_t data[] = "recovered";
    uint8_t sig[512];
    size_t sig_len;
    struct tok_status st;
    struct itl_error err;
    char dir[800];

    setup_with_key(&f, "itl-gone", "TFTP", THREADS);
    token_dir_path(&f, dir, sizeof dir);
    pthread_mutex_init(&g.lock, NULL);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct gone_worker){.g = &g, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, gone_sign, &w[i]), 0);
    }
    ck_assert_int_eq(pthread_create(&status_th, NULL, gone_status, &g), 0);
    gone_wait(&g, &g.ok_before, 2 * THREADS, "signature before the token left");

    pthread_mutex_lock(&g.lock);
    g.phase = PHASE_AWAY;
    pthread_mutex_unlock(&g.lock);
    token_dir_move(&f, dir, 1);
    gone_wait(&g, &g.failed_away, 2 * THREADS, "'token not present' while away");

    token_dir_move(&f, dir, 0);
    /* One signature of our own: the module sees the token again; every request started after
     * this one must succeed. */
    for (int i = 0; i < 1000; i++) {
        sig_len = sizeof sig;
        if (tok_sign_data(f.t, f.k, NID_sha256, data, sizeof data, sig, &sig_len, &err) == 0)
            break;
        ck_assert_msg(err.cls == ITL_E_NO_TOKEN, "after the return: %s", err.msg);
    }
    ck_assert(openssl_verify(f.k, NID_sha256, data, sizeof data, sig, sig_len));
    pthread_mutex_lock(&g.lock);
    g.phase = PHASE_BACK;
    pthread_mutex_unlock(&g.lock);
    gone_wait(&g, &g.ok_back, 4 * THREADS, "signature after the return");

    pthread_mutex_lock(&g.lock);
    g.stop = 1;
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(status_th, NULL);
    ck_assert_msg(g.error[0] == '\0', "%s", g.error);
    ck_assert_int_eq(tok_get_status(f.t, &st, &err), 0);
    ck_assert_int_eq(st.present, 1);
    ck_assert_int_eq(st.logged_in, 1);
    ck_assert_uint_ge(st.rebuilds, 1);
    ck_assert_uint_eq(st.pool_in_use, 0);
    pthread_mutex_destroy(&g.lock);
    close_token(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pkcs11_sign");
    TCase *tc = tcase_create("sign");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_signatures_verify);
    tcase_add_test(tc, test_sign_usage_errors);
    tcase_add_test(tc, test_signatures_equal_engine);
    tcase_add_test(tc, test_hash_mechanisms_agree);
    tcase_add_test(tc, test_unverifiable_signature_refused);
    tcase_add_test(tc, test_rebuild_after_sessions_closed);
    tcase_add_test(tc, test_relogin_with_rejected_pin);
    tcase_add_test(tc, test_token_absent_fails_fast);
    tcase_add_test(tc, test_token_dir_gone_and_back);
    tcase_add_test(tc, test_token_dir_back_with_other_pin);
    tcase_add_test(tc, test_parallel_signing);
    tcase_add_test(tc, test_parallel_signing_through_rebuilds);
    tcase_add_test(tc, test_token_dir_gone_under_load);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
