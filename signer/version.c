/* SPDX-License-Identifier: MIT */
/* What itl-sign and itl-signd print for --version. */
#include "pkcs11/token.h"
#include "policy/policy.h"
#include "signer/signer.h"

#include <openssl/crypto.h>
#include <stdio.h>

void sgn_print_versions(FILE *f, const char *program, const char *version)
{
    /* OpenSSL_version(OPENSSL_VERSION) is "OpenSSL 3.0.x 1 Jan 2026": the library run with. */
    fprintf(f, "%s %s\n%s\np11-kit %s\nlibyaml %s\n", program, version,
            OpenSSL_version(OPENSSL_VERSION), tok_p11kit_version(), pol_yaml_version());
}
