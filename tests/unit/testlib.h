/* SPDX-License-Identifier: MIT */
/* Helpers for the Check unit tests: temp dirs, throwaway SoftHSM2 tokens, test certificates. */
#ifndef ITL_TESTS_TESTLIB_H
#define ITL_TESTS_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

struct testlib_token {
    char dir[512]; /* holds softhsm2.conf, tokens/, user.pin, so.pin */
    char conf[600];
    char module[256];
    char uri[300]; /* pkcs11:token=LABEL */
    char pin_file[600];
    char pin[64]; /* the user PIN, to assert it never leaks */
};

/* The source tree (ITL_SRC, set by tests/run-all.sh) and build dir (ITL_BUILD). */
const char *testlib_src(void);
const char *testlib_build(void);
/* A fresh directory under TMPDIR; the path is static per call (copy it). Aborts on failure. */
const char *testlib_tmpdir(const char *tag);
/* A new SoftHSM2 token with this label in a new dir; sets SOFTHSM2_CONF. Aborts on failure. */
void testlib_make_token(const char *label, struct testlib_token *t);
/* Run a shell command; returns its exit status (or -1). */
int testlib_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read a whole file; aborts on failure. *len set; buffer NUL-terminated. */
uint8_t *testlib_read(const char *path, size_t *len);
void testlib_write(const char *path, const void *data, size_t len);
/* Self-signed RSA key + certificate with openssl(1): writes dir/name.key.pem, dir/name.pem,
 * dir/name.der. subject like "/CN=TFTP/O=test". Aborts on failure. */
void testlib_make_cert(const char *dir, const char *name, const char *subject, int bits);

#endif
