/* SPDX-License-Identifier: MIT */
/*
 * pkcs11: token access through p11-kit. See docs/pkcs11.md and shared/pkcs11-notes.md.
 *
 * A struct tok is one token of one module, found by an RFC 7512 URI (never by slot number),
 * with one login held for the life of the object and a bounded pool of sessions that signs in
 * parallel. Lost sessions, a removed token and a lost login are rebuilt (re-find the token by
 * label + serial, re-login once with the held PIN, re-find the keys) within a retry budget.
 * A PIN the token rejected is wiped and never sent again.
 *
 * Every error message names what to fix; PKCS#11 errors carry the CKR name and p11-kit's text.
 * No message ever contains a PIN.
 */
#ifndef ITL_PKCS11_TOKEN_H
#define ITL_PKCS11_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/common.h"

/* Errors are struct itl_error; the class tells callers to answer "token not present" fast
 * (ITL_E_NO_TOKEN) or never to retry (ITL_E_PIN). */

/* ---- PINs: byte strings with a length, in locked memory, wiped after use. ---- */

#define TOK_PIN_MAX 256

struct tok_pin {
    unsigned char *bytes; /* mlock'd; NULL when empty */
    size_t len;
};

/* Opens a file holding a secret (PIN, .p12 password) for reading, or refuses it (ITL_E_USAGE,
 * -1): a symbolic link, anything but a regular file (a FIFO never blocks the open), a file
 * owned by neither root nor the reading uid, a mode with any group/other access. The one rule
 * for every PIN or password file, in the CLI, the service and --check-config. `what` names the
 * file in messages ("PIN file", "token.pin-file"). Returns a blocking descriptor. */
int tok_secret_open(const char *path, const char *what, struct itl_error *err);
/* Opened by tok_secret_open; only trailing CR/LF are stripped. */
int tok_pin_from_file(const char *path, struct tok_pin *pin, struct itl_error *err);
/* Reads to EOF from fd (then closes it); trailing CR/LF stripped. */
int tok_pin_from_fd(int fd, struct tok_pin *pin, struct itl_error *err);
/* Prompt on /dev/tty without echo. Fails (ITL_E_USAGE) when there is no terminal. */
int tok_pin_prompt(const char *prompt, struct tok_pin *pin, struct itl_error *err);
/* From a bare byte string (tests, pin-source). */
int tok_pin_set(struct tok_pin *pin, const void *bytes, size_t len, struct itl_error *err);
void tok_pin_wipe(struct tok_pin *pin);

/* ---- Opening a token ---- */

/* token.mechanism: how PKCS#1 v1.5 signatures are asked for. Both give the same bytes. */
enum tok_mechanism {
    TOK_MECH_AUTO = 0, /* raw when the token offers CKM_RSA_PKCS for signing, else hash */
    TOK_MECH_RAW,      /* CKM_RSA_PKCS over a DigestInfo we build */
    TOK_MECH_HASH,     /* CKM_SHA1/SHA256/SHA512_RSA_PKCS: the token hashes the message */
};

struct tok_options {
    const char *module; /* absolute path of a module, a p11-kit module name, or NULL for the
                           p11-kit proxy */
    const char *uri;    /* "pkcs11:token=...;serial=..." selecting exactly one token; may carry
                           pin-source=file:... */
    size_t pool_size;   /* sessions for parallel signing; 0 = number of CPUs; capped by the
                           token's ulMaxSessionCount */
    enum tok_mechanism mechanism; /* token.mechanism; default auto */
    unsigned retry_budget;        /* rebuild attempts per operation; 0 = 3 */
    const char *init_args;        /* C_Initialize pReserved for a module given by path (NSS softokn:
                                     "configdir='sql:/etc/pki/nssdb' ..."); NULL = none. A p11-kit
                                     module name takes its registered x-init-reserved instead. */
    int login_session_only;       /* every operation on the login session, no pool session opened:
                                     for a process that signs once (one C_OpenSession and one
                                     C_CloseSession fewer); operations then run one at a time */
};

struct tok;

/* Load the module (p11-kit managed), find the one token the URI names. No login. */
int tok_open(const struct tok_options *opts, struct tok **out, struct itl_error *err);
/* Log in as user. The PIN is copied into locked memory and kept for one re-login after a lost
 * login; it is wiped as soon as the token rejects it. Refuses at USER_PIN_LOCKED, FINAL_TRY,
 * USER_PIN_TO_BE_CHANGED. `pin` may be NULL for tokens without CKF_LOGIN_REQUIRED or with a
 * protected authentication path; when NULL and the URI has pin-source, that is read. */
int tok_login(struct tok *t, const struct tok_pin *pin, struct itl_error *err);
/* Log out, close the sessions, release the module. NULL is fine. */
void tok_close(struct tok *t);

/* ---- Keys ---- */

/* A private key and its certificate, paired by CKA_ID. Handles are refreshed on rebuild. */
struct tok_key;

/* Find by CKA_LABEL (and optionally CKA_ID): the private key and the certificate with the
 * same CKA_ID must both exist. A label matching several keys is refused. */
int tok_find_key(struct tok *t, const char *label, struct tok_key **out, struct itl_error *err);
/* The same, narrowed to this CKA_ID (NULL: by label alone): two keys with one label are told
 * apart by id (config keys.<role>.id). */
int tok_find_key_id(struct tok *t, const char *label, const uint8_t *id, size_t id_len,
                    struct tok_key **out, struct itl_error *err);
void tok_key_free(struct tok_key *k);
const uint8_t *tok_key_cert(const struct tok_key *k, size_t *len);
/* The same certificate parsed (an OpenSSL X509 *, owned by the key): parsing costs as much as a
 * signature, so callers reuse this one. */
const void *tok_key_x509(const struct tok_key *k);
const char *tok_key_label(const struct tok_key *k);
size_t tok_key_sig_len(const struct tok_key *k);

/* CKA_ALWAYS_AUTHENTICATE: 1 when the key needs C_Login(CKU_CONTEXT_SPECIFIC) before each
 * C_Sign (done with the token's login PIN, unless the key has its own below). */
int tok_key_always_authenticate(const struct tok_key *k);
/* The key's own PIN for that context login (copied into locked memory), instead of the token's
 * login PIN: from now on only this PIN is sent for it. NULL or empty: the PIN is wiped and none
 * is sent (signing fails with CKR_USER_NOT_LOGGED_IN) until one is set again. A PIN the token
 * rejects is wiped at once, never sent again. */
int tok_key_set_context_pin(struct tok_key *k, const struct tok_pin *pin, struct itl_error *err);

/* Sign a digest (nid: NID_sha1, NID_sha256, NID_sha512) with PKCS#1 v1.5. `msg` (may be NULL
 * when hash mechanisms are off) is what was hashed. Takes a session from the pool (blocking
 * while all are busy), rebuilds on lost session/login/token within the retry budget, verifies
 * the signature with the key's certificate before returning it. Thread-safe. */
int tok_sign(struct tok *t, struct tok_key *k, int nid, const uint8_t *msg, size_t msg_len,
             const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len,
             struct itl_error *err);

/* Sign arbitrary data (hashes it first): attestation challenges, test signatures. */
int tok_sign_data(struct tok *t, struct tok_key *k, int nid, const uint8_t *data, size_t len,
                  uint8_t *sig, size_t *sig_len, struct itl_error *err);

/* ---- Status ---- */

struct tok_status {
    int present;
    int logged_in;
    char label[33];
    char serial[17];
    char manufacturer[33];
    char model[17];
    unsigned long flags; /* CK_TOKEN_INFO flags */
    size_t pool_size;
    size_t pool_in_use;
    unsigned long rebuilds; /* how many times sessions/login were rebuilt */
    size_t pool_requested;  /* the pool-size asked for (0 = CPUs); more than pool_size: clamped */
    int one_session;        /* ulMaxSessionCount = 1: signs on the login session, no pool */
    int pin_ignored;        /* PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH): the configured PIN
                               (file, fd, pin-source) was not used; C_Login got NULL */
};
int tok_get_status(struct tok *t, struct tok_status *st, struct itl_error *err);
/* tok_status.pin_ignored without asking the token anything (tok_get_status reads its info). */
int tok_pin_ignored(struct tok *t);
/* 1 for a PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH), as the token said when it was found:
 * asks the token nothing (the one-shot path counts its calls). */
int tok_has_pin_pad(struct tok *t);

/* ---- Key management ---- */

/* What a key may be used for, as the token reports it: 1 yes, 0 no, -1 not reported. */
struct tok_key_usage {
    int sign, decrypt, unwrap, derive; /* the private key */
    int verify, encrypt, wrap;         /* the public key */
};
/* 1 when the private key signs and the pair does nothing else (unknown uses count as off). */
int tok_usage_sign_only(const struct tok_key_usage *u);
/* The uses that are on, comma-separated ("sign", "verify,encrypt"; "?x": not reported; "none");
 * private_half: the private key's uses, else the public key's. */
void tok_usage_text(const struct tok_key_usage *u, int private_half, char *out, size_t size);

/* Where a key came from, and what says so (tok_key_info.origin, .origin_basis). */
enum tok_key_origin { TOK_ORIGIN_UNKNOWN, TOK_ORIGIN_GENERATED, TOK_ORIGIN_IMPORTED };
enum tok_key_origin_basis {
    TOK_BASIS_NONE,      /* the token does not report CKA_LOCAL */
    TOK_BASIS_ID_RULE,   /* CKA_ID is the SHA-1 of the public key: `key import`'s CKA_ID rule */
    TOK_BASIS_CKA_LOCAL, /* the token's CKA_LOCAL (NSS softokn reads false on generated keys) */
};

#define TOK_URI_MAX 1024

struct tok_key_info {
    char label[128];
    uint8_t id[64];
    size_t id_len;
    char key_type[16]; /* "RSA", "EC", ... */
    unsigned bits;
    int has_private, has_public, has_cert;
    /* the certificate's subject Name, DER; tools print it with itl_name_der_str (format/) */
    uint8_t subject_der[1024];
    size_t subject_der_len;
    char serial_hex[80];
    time_t not_before, not_after;
    int local, always_sensitive, never_extractable, extractable, sensitive;
    uint8_t cert_sha256[32];
    int has_cert_sha256;
    struct tok_key_usage usage;
    int always_authenticate; /* CKA_ALWAYS_AUTHENTICATE of the private key; -1 not reported */
    int id_is_pubkey_sha1;   /* the certificate's public key hashes (SHA-1) to CKA_ID */
    /* An imported key is reported as imported even where the token claims ALWAYS_SENSITIVE. */
    enum tok_key_origin origin;
    enum tok_key_origin_basis origin_basis;
    /* Each object's own label (the public key's and certificate's may differ from label). */
    char public_label[128], cert_label[128];
    /* RFC 7512 URIs of the objects (p11_kit_uri_format: token, object, id, type); "" when the
     * object is not there. What a user pastes into `openssl -engine pkcs11` or p11tool. */
    char uri_private[TOK_URI_MAX], uri_public[TOK_URI_MAX], uri_cert[TOK_URI_MAX];
};

/* Every private key / certificate pair on the token (grouped by CKA_ID). *out is malloc'd. */
int tok_list_keys(struct tok *t, struct tok_key_info **out, size_t *n, struct itl_error *err);

struct tok_import_report {
    uint8_t id[64];
    size_t id_len;
    unsigned bits;
    uint8_t cert_sha256[32];
    /* An imported key can never be ALWAYS_SENSITIVE / NEVER_EXTRACTABLE / LOCAL: reported. */
    int always_sensitive, never_extractable, local;
    struct tok_key_usage usage; /* read back from the token */
};

/* Import a PKCS#12 (ITLRecovery.p12): private key, public key, certificate with one CKA_ID; the
 * private key CKA_SENSITIVE, !CKA_EXTRACTABLE, CKA_TOKEN, CKA_PRIVATE, CKA_SIGN. Refuses an
 * existing label or id. `id` NULL = derived from the public key (SHA-1, 20 bytes). */
int tok_import_p12(struct tok *t, const uint8_t *p12, size_t p12_len,
                   const struct tok_pin *password, const char *label, const uint8_t *id,
                   size_t id_len, struct tok_import_report *report, struct itl_error *err);

/* Does a PKCS#12 file hold the private key of this certificate (DER)? Its public key must be
 * the certificate's and a test signature must verify. 0 yes; -1 with ITL_E_VERIFY when it holds
 * another key, ITL_E_USAGE when it cannot be opened (wrong password, not a .p12). Used to attest
 * an offline backup. */
int tok_p12_holds_key(const uint8_t *p12, size_t p12_len, const struct tok_pin *password,
                      const uint8_t *cert_der, size_t cert_len, struct itl_error *err);

struct tok_generate_opts {
    const char *label;
    const char *subject; /* "CN=ITLRECOVERY_pub,OU=...,O=..." */
    unsigned bits;       /* 2048, 3072, 4096 */
    unsigned days;       /* validity, default 1825 */
    const uint8_t *id;   /* NULL = random 16 bytes */
    size_t id_len;
    time_t now;                         /* notBefore */
    struct tok_generate_report *report; /* NULL, or filled on success */
};

struct tok_generate_report {
    /* The token refused the sign-only template (refused_rv): the pair was generated with only
     * what it needs, and the unwanted uses switched off where the token let us. */
    int template_reduced;
    unsigned long refused_rv;
    struct tok_key_usage usage; /* read back from the token */
};

/* Generate an RSA key pair on the token with an explicit template, make a self-signed X.509
 * certificate signed by the token key, store it as CKO_CERTIFICATE with the same CKA_ID.
 * *cert_der is malloc'd. */
int tok_generate(struct tok *t, const struct tok_generate_opts *opts, uint8_t **cert_der,
                 size_t *cert_len, struct itl_error *err);

/* ---- Keys a vendor tool put on the token (keyops.c) ---- */

/* The certificate of the private key labelled `label` (exactly one): cert_der given (its public
 * key must be the token key's), or NULL and a self-signed CA-style one made by the token key
 * (subject, days, now as for tok_generate). Stored as CKO_CERTIFICATE with the key's CKA_ID and
 * label. A certificate already there is refused (ITL_E_USAGE) unless `replace`: the new one is
 * stored first, then the old ones destroyed. *out_der (may be NULL) is the certificate stored,
 * malloc'd. */
struct tok_attach_opts {
    const char *label;
    const uint8_t *cert_der; /* NULL: self-signed */
    size_t cert_len;
    const char *subject; /* self-signed only */
    unsigned days;
    time_t now;
    int replace;
};
int tok_attach_cert(struct tok *t, const struct tok_attach_opts *o, uint8_t **out_der,
                    size_t *out_len, struct itl_error *err);

/* A PKCS#10 request (DER, malloc'd) for the key labelled `label`, subject "CN=...,O=...",
 * sha256WithRSA, signed by the token key and verified before it is returned. */
int tok_make_csr(struct tok *t, const char *label, const char *subject, uint8_t **der, size_t *len,
                 struct itl_error *err);

/* Destroy the private key labelled `label` and the public key and certificates with its CKA_ID
 * (with its label when it has no CKA_ID). */
struct tok_delete_report {
    unsigned private_keys, public_keys, certificates;
};
int tok_delete_key(struct tok *t, const char *label, struct tok_delete_report *r,
                   struct itl_error *err);

/* The certificate (DER) stored with this label. *der is malloc'd. */
int tok_export_cert(struct tok *t, const char *label, uint8_t **der, size_t *der_len,
                    struct itl_error *err);

/* Read the key-protection attributes of a private key (tests and `key list`). */
int tok_key_attributes(struct tok *t, const char *label, struct tok_key_info *info,
                       struct itl_error *err);

/* 1 when a C_Login error (itl_error.ckr) says the PIN itself was refused (incorrect, invalid,
 * wrong length, expired, locked): a PIN never to send again. */
int tok_rv_rejects_pin(unsigned long rv);

/* CKR name ("CKR_PIN_INCORRECT") for messages. */
const char *tok_ckr_name(unsigned long rv);

/* The p11-kit version built against ("0.24.1"; p11-kit has no run-time query): --version. */
const char *tok_p11kit_version(void);

#endif
