/* SPDX-License-Identifier: MIT */
/*
 * The token keys the engine signs with: a request's role (recovery, TFTP or a label) resolved,
 * the role's key found on first use and kept with its certificate facts, the signing callback
 * format/ calls, and token errors mapped to result statuses.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "format/itl.h"
#include "pkcs11/token.h"
#include "signer/internal.h"

enum sgn_status eng_status_from_tok(const struct itl_error *te)
{
    switch (te->cls) {
    case ITL_E_NO_TOKEN:
        return SGN_E_NO_TOKEN;
    case ITL_E_USAGE:
        return SGN_E_USAGE;
    default:
        return SGN_E_TOKEN;
    }
}

/* "recovery", "tftp", or one of their labels; NULL = the operation's default. */
int eng_resolve_role(const struct sgn_engine *e, const struct sgn_request *req,
                     enum pol_key_role *role, struct sgn_result *r)
{
    int named;

    if (!req->key) {
        *role = req->op == POL_OP_RESET ? POL_KEY_RECOVERY : POL_KEY_TFTP;
        return 0;
    }
    named = pol_key_role_from_name(req->key);
    if (named >= 0) {
        *role = (enum pol_key_role)named;
        return 0;
    }
    for (int i = 0; i < POL_KEY_COUNT; i++) {
        if (strcmp(req->key, e->boot.keys[i].label) == 0) {
            *role = (enum pol_key_role)i;
            return 0;
        }
    }
    eng_fail(r, SGN_E_USAGE,
             "key '%s' is neither the recovery key (label '%s') nor the TFTP key (label '%s')",
             req->key, e->boot.keys[POL_KEY_RECOVERY].label, e->boot.keys[POL_KEY_TFTP].label);
    return -1;
}

/* ---- Signing callback for format/ ---- */

int eng_sign_with_token(void *ctx, int digest, const uint8_t *msg, size_t msg_len,
                        const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len,
                        struct itl_error *err)
{
    struct eng_sign_ctx *sc = ctx;
    int nid = itl_digest_nid(digest);

    if (tok_sign(sc->tok, sc->key, nid, msg, msg_len, md, md_len, sig, sig_len, &sc->te)) {
        snprintf(err->msg, sizeof err->msg, "%s", sc->te.msg);
        return -1;
    }
    return 0;
}

/* ---- Facts about the signer certificate that policy needs ---- */

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

static void cert_facts(X509 *x, const uint8_t *der, size_t len, struct eng_cert_facts *cf)
{
    struct itl_error ie;

    cf->not_before = asn1_to_time(X509_get0_notBefore(x));
    cf->not_after = asn1_to_time(X509_get0_notAfter(x));
    EVP_Digest(der, len, cf->sha256, NULL, EVP_sha256(), NULL);
    if (itl_x509_name(x, 0, ITL_NAMES_CUCM, cf->subject, sizeof cf->subject, &ie) != 0)
        snprintf(cf->subject, sizeof cf->subject, "(unreadable subject)");
}

void eng_key_free(struct eng_key *k)
{
    if (!k)
        return;
    tok_key_free(k->key);
    free(k);
}

struct eng_key *eng_load_key(struct sgn_engine *e, struct tok *t, enum pol_key_role role,
                             struct sgn_result *r)
{
    struct itl_error te = {0};
    struct eng_key *k = calloc(1, sizeof *k);
    const uint8_t *p;
    size_t len;

    if (!k) {
        eng_fail(r, SGN_E_INTERNAL, "out of memory");
        return NULL;
    }
    uint8_t id[64];
    size_t id_len = strlen(e->boot.keys[role].id) / 2; /* checked hex when the config loaded */

    if (id_len && hex_decode(e->boot.keys[role].id, id, id_len) != 0)
        id_len = 0;
    k->tok = t;
    if (tok_find_key_id(t, e->boot.keys[role].label, id_len ? id : NULL, id_len, &k->key, &te) !=
        0) {
        eng_fail(r, eng_status_from_tok(&te), "%s key (label '%s'): %s", pol_key_role_name(role),
                 e->boot.keys[role].label, te.msg);
        free(k);
        return NULL;
    }
    p = tok_key_cert(k->key, &len);
    k->x509 = (X509 *)tok_key_x509(k->key);
    cert_facts(k->x509, p, len, &k->cf);
    return k;
}

/* The key of a role on the engine's token, found on first use. */
struct eng_key *eng_role_key(struct sgn_engine *e, enum pol_key_role role, struct sgn_result *r)
{
    struct eng_key *k;

    pthread_mutex_lock(&e->keys_lock);
    k = e->keys[role];
    if (!k)
        k = e->keys[role] = eng_load_key(e, e->tok, role, r);
    pthread_mutex_unlock(&e->keys_lock);
    return k;
}
