/* SPDX-License-Identifier: MIT */
/* Shared by the pkcs11/ sources and their unit tests; not part of the public API. */
#ifndef ITL_PKCS11_INTERNAL_H
#define ITL_PKCS11_INTERNAL_H

#include "pkcs11/token.h"

#include <pthread.h>
#include <stdarg.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <openssl/evp.h>

/* ---- Errors (error.c) ---- */

/* "<what>: CKR_X (0x..: p11-kit text); <what to do>". The kind follows from rv. */
int tok_ckr_err(struct itl_error *err, CK_RV rv, const char *what);
/* The class of failure a CK_RV belongs to. */
enum itl_errclass tok_kind_for_rv(CK_RV rv);
/* What to do about rv, one short sentence. */
const char *tok_ckr_hint(CK_RV rv);
/* 1 when rv means the session, the login or the token went away: rebuild, then retry. */
int tok_rv_needs_rebuild(CK_RV rv);
/* "CKM_SHA256_RSA_PKCS" or "mechanism 0x..." (static buffer only for unknown ones: not for
 * threads; callers print immediately). */
const char *tok_mech_name(CK_MECHANISM_TYPE mech, char *buf, size_t size);

/* Blank-padded CK_UTF8CHAR fields to a C string (trailing blanks dropped). */
void tok_padded_to_str(const CK_UTF8CHAR *in, size_t n, char *out, size_t size);

/* ---- PINs (pin.c) ---- */

/* Guards before C_Login: refuses USER_PIN_LOCKED, USER_PIN_FINAL_TRY, USER_PIN_TO_BE_CHANGED. */
int tok_login_guard(const CK_TOKEN_INFO *info, struct itl_error *err);
/* A copy in locked memory. */
int tok_pin_copy(struct tok_pin *dst, const struct tok_pin *src, struct itl_error *err);

/* ---- The token ---- */

enum tok_mech_state { MECH_UNCHECKED = 0, MECH_OK, MECH_MISSING };

struct pool_session {
    CK_SESSION_HANDLE h;
    int open;
    int busy;
    unsigned long generation; /* the rebuild generation it was opened in */
};

struct tok {
    struct tok_options opts;
    char *module_name;             /* for messages: path, p11-kit name or "p11-kit proxy" */
    CK_FUNCTION_LIST **modules;    /* proxy: every registered module (we hold them all) */
    CK_FUNCTION_LIST *mod;         /* the module of our token */
    CK_FUNCTION_LIST **registered; /* by p11-kit name: the registered modules, released at close */
    char *init_args;               /* by path with token.init-args: loaded unmanaged */
    int init_shared;               /* C_Initialize said ALREADY_INITIALIZED: not ours to finalise */
    P11KitUri *uri;
    char uri_text[512];

    /* Identity of the token, to find it again after slots were renumbered. */
    CK_SLOT_ID slot;
    CK_UTF8CHAR label[32];
    CK_CHAR serial[16];
    char label_str[33], serial_str[17];

    pthread_mutex_t lock;         /* everything below */
    pthread_cond_t free_session;  /* a pool session was put back, or draining ended */
    pthread_cond_t drained;       /* pool_in_use reached 0 */
    int draining;                 /* a rebuild waits for the pool to empty: no new takers */
    pthread_mutex_t rebuild_lock; /* one rebuild at a time; taken before lock */
    pthread_mutex_t mgmt_lock;    /* the login session, used by key management */
    pthread_mutex_t pin_lock;     /* pin, pin_rejected, login_calls */
    /* Read-held around the calls into the module that no pool session, mgmt_lock or
     * rebuild_lock covers (token info for status, mechanism info); write-held by tok_rebuild
     * while it finalises and initialises the module again, so no thread is inside it then. */
    pthread_rwlock_t module_lock;
    int module_down; /* a re-initialisation failed: C_Initialize first, never C_Finalize */

    CK_SESSION_HANDLE login_session;
    int have_login_session;
    int present;
    int logged_in;
    int want_login;        /* tok_login succeeded once: rebuilds log in again */
    int login_needed;      /* 0: CKF_LOGIN_REQUIRED clear, nothing to do */
    int protected_path;    /* PIN pad: C_Login with a NULL PIN */
    int pin_ignored;       /* a PIN was given for a PIN pad: not used (callers warn) */
    int one_session;       /* ulMaxSessionCount = 1: every operation on the login session */
    size_t pool_requested; /* pool-size asked for (0 = CPUs), before the token's limit */
    int pin_rejected;      /* the token said CKR_PIN_INCORRECT: never send it again */
    /* The token info tok_select_token read, for the first tok_login right after the open
     * (one C_GetTokenInfo fewer per process); at most OPEN_INFO_FRESH_MS old, used once. */
    CK_TOKEN_INFO open_info;
    int uri_names_module; /* library-* attributes: C_GetInfo is needed to match them */
    int uri_names_slot;   /* slot-* attributes: C_GetSlotInfo is needed to match them */
    struct timespec open_info_at;
    int have_open_info;
    struct tok_pin pin; /* kept for one re-login after a rebuild */

    struct pool_session *pool;
    size_t pool_size, pool_in_use;
    unsigned long generation;
    unsigned long rebuilds;
    unsigned long login_calls; /* C_Login calls made, for tests */

    enum tok_mech_state mech[5];
};

/* Key handle and certificate; the handle is re-found by CKA_ID + label after a rebuild. */
#define TOK_VCTX_CACHE 8
struct tok_key {
    struct tok *t;
    char label[128];
    uint8_t id[64];
    size_t id_len;
    uint8_t *cert;
    size_t cert_len;
    X509 *x509; /* the certificate parsed, kept: callers need it on every signature */
    EVP_PKEY *pub;
    size_t sig_len;
    int always_authenticate;
    /* tok_key_set_context_pin: the key's own PIN for the context login (own_pin), instead of the
     * token's login PIN; empty while not given (the context login is then not attempted). */
    int own_pin;
    struct tok_pin context_pin;
    pthread_mutex_t pin_lock;

    pthread_mutex_t lock;
    CK_OBJECT_HANDLE handle;
    unsigned long generation;
    EVP_PKEY_CTX *vctx[TOK_VCTX_CACHE]; /* verify contexts, reused */
    size_t n_vctx;
};

/* ---- Sessions (token.c) ---- */

/* A pool session for one operation. Blocks while all are busy; opens lazily; backs off on
 * CKR_SESSION_COUNT. *index identifies it for tok_session_put. */
int tok_session_get(struct tok *t, size_t *index, CK_SESSION_HANDLE *h, unsigned long *generation,
                    struct itl_error *err);
/* broken: the handle failed (it is closed and reopened next time). */
void tok_session_put(struct tok *t, size_t index, int broken);
/* Re-find the token by label + serial, new login session, re-login once with the held PIN.
 * Does nothing when another thread rebuilt since `seen_generation`. */
int tok_rebuild(struct tok *t, unsigned long seen_generation, struct itl_error *err);
/* C_Login with the held PIN (or NULL for a PIN pad); wipes the PIN when the token rejects it. */
int tok_do_login(struct tok *t, CK_SESSION_HANDLE h, CK_USER_TYPE who, struct itl_error *err);
/* 1 when we logged in but session h does not see it (the login was lost). */
int tok_session_lacks_login(struct tok *t, CK_SESSION_HANDLE h);
/* A token that was found absent is looked for again (once, cheaply): fail fast while away. */
int tok_ensure_present(struct tok *t, struct itl_error *err);
/* The current rebuild generation. */
unsigned long tok_generation(struct tok *t);
/* The token's CK_TOKEN_INFO now. When its slot fails to answer or holds another token:
 * ITL_E_NO_TOKEN "token ... not present" with ckr CKR_TOKEN_NOT_PRESENT (a rebuild looks for it,
 * re-initialising the module if need be). */
int tok_token_info(struct tok *t, CK_TOKEN_INFO *info, struct itl_error *err);
/* keyuri.c: fills the uri_* fields of KEYS from the token's info TI (a key without an object
 * of a kind keeps ""); sets origin / origin_basis from local and id_is_pubkey_sha1. */
void tok_key_describe_origin(struct tok_key_info *k);
void tok_key_fill_uris(const CK_TOKEN_INFO *ti, struct tok_key_info *keys, size_t n);
/* The token-info strings blank-padded from their first NUL (tpm2-pkcs11 pads with NULs): what
 * a printed URI says, and so what a URI is matched against. */
void tok_blank_pad_token_info(CK_TOKEN_INFO *info);
/* 0 while the token is seen in its slot; else as tok_token_info. */
int tok_check_present(struct tok *t, struct itl_error *err);
/* An operation in session h failed with err. When the token went away or the login was lost,
 * SoftHSM2 answers "no such object" (or a general error): err then names that cause and asks
 * for a rebuild (ITL_E_NO_TOKEN / CKR_USER_NOT_LOGGED_IN) instead of blaming the key. */
void tok_explain_failure(struct tok *t, CK_SESSION_HANDLE h, struct itl_error *err);
/* The same for a CK_RV from a call in session h: the CKR that asks for a rebuild, else rv. */
CK_RV tok_failure_cause(struct tok *t, CK_SESSION_HANDLE h, CK_RV rv);

/* Runs fn in a session (a pool session, or the login session when `mgmt`), rebuilding and
 * retrying within the retry budget when the session, login or token was lost. */
typedef int (*tok_session_fn)(struct tok *t, CK_SESSION_HANDLE h, void *ctx, struct itl_error *err);
int tok_run(struct tok *t, int mgmt, tok_session_fn fn, void *ctx, struct itl_error *err);
/* What an operation adds to the common retry loop (tok_run_with); any hook may be NULL.
 * The loop itself: a lost session / login / token is rebuilt and the attempt repeated, up to the
 * retry budget; a PIN the token rejected is never sent again (tok_rebuild refuses). in_fn: the
 * failure came from fn (0: no session could be had). */
struct tok_retry_rules {
    /* fn explains its own failures (else tok_explain_failure is called on them) */
    int fn_explains_failure;
    /* called with the session's generation before fn runs on it */
    void (*session_taken)(void *ctx, unsigned long generation);
    /* 1: retry at once without a rebuild (uses up an attempt) */
    int (*retry_at_once)(void *ctx, int in_fn, const struct itl_error *err);
    /* 1: close the failed pool session even though no rebuild is needed */
    int (*session_spoiled)(void *ctx, const struct itl_error *err);
    /* the final error (after_rebuild: the budget ran out); returns -1 */
    int (*give_up)(void *ctx, int in_fn, int after_rebuild, struct itl_error *err);
};
int tok_run_with(struct tok *t, int mgmt, tok_session_fn fn, void *ctx,
                 const struct tok_retry_rules *rules, struct itl_error *err);
unsigned tok_budget(const struct tok *t);

/* Test hook: C_CloseAllSessions on our slot between two operations, as a token reset would.
 * (Closing a session while another thread is inside C_Sign on it crashes SoftHSM2.) */
CK_RV tok_test_close_all_sessions(struct tok *t);
unsigned long tok_test_login_calls(struct tok *t);

/* ---- Mechanisms and signing (sign.c) ---- */

/* C_GetMechanismInfo: the mechanism is offered with `flag` (CKF_SIGN, CKF_GENERATE_KEY_PAIR).
 * The answers for the signing mechanisms we use are cached. */
int tok_check_mechanism_flag(struct tok *t, CK_MECHANISM_TYPE mech, CK_FLAGS flag,
                             struct itl_error *err);
int tok_check_mechanism(struct tok *t, CK_MECHANISM_TYPE mech, struct itl_error *err);
/* The DER DigestInfo prefix for nid (NULL when unsupported). */
const uint8_t *tok_digestinfo_prefix(int nid, size_t *len, size_t *md_len);
/* C_SignInit + C_Sign in one session (context-specific login when asked: with the PIN of `own`
 * when that key has its own, tok_key_set_context_pin, else the token's login PIN). */
CK_RV tok_sign_in_session(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key,
                          CK_MECHANISM_TYPE mech, int always_authenticate, struct tok_key *own,
                          const uint8_t *in, size_t in_len, uint8_t *sig, size_t *sig_len);
/* PKCS#1 v1.5: the decrypted signature must equal DigestInfo(nid, md) byte for byte. */
int tok_verify_digestinfo(EVP_PKEY_CTX *vctx, int nid, const uint8_t *md, size_t md_len,
                          const uint8_t *sig, size_t sig_len);
EVP_PKEY_CTX *tok_new_verify_ctx(EVP_PKEY *pub);

/* ---- Objects (objects.c) ---- */

/* Every object in session h matching the template; *out malloc'd (NULL when none). */
int tok_find_objects(struct tok *t, CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                     CK_OBJECT_HANDLE **out, size_t *count, struct itl_error *err);
/* One attribute's value, malloc'd (NUL appended, not counted). CKR_ATTRIBUTE_* -> 1 (absent). */
int tok_get_attr(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                 uint8_t **value, size_t *len, struct itl_error *err);
/* A CK_BBOOL attribute: 1/0, or -1 when the token does not have it. */
/* What signing needs of a private key, read in one C_GetAttributeValue when the token allows
 * (else one by one). id/modulus NULL when the key has none (a modulus then goes unchecked). */
struct tok_key_attrs {
    int have_type; /* CKA_KEY_TYPE was readable */
    CK_KEY_TYPE type;
    uint8_t *id;
    size_t id_len;
    uint8_t *modulus;
    size_t mod_len;
    int always_authenticate;
};
int tok_read_key_attrs(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                       struct tok_key_attrs *ka, struct itl_error *err);
void tok_key_attrs_free(struct tok_key_attrs *ka);
int tok_get_bool(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type);
/* The private key labelled `label` (exactly one), by class. */
int tok_find_one(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                 const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *o, struct itl_error *err);

/* ---- Shared between the files of pkcs11/ (module, find, login, session, create) ---- */

struct cert_attrs {
    uint8_t *value, *subject, *issuer, *serial;
    int value_len, subject_len, issuer_len, serial_len;
};

/* find.c: the one token the URI names (at open), and the same token again after a loss. */
int tok_select_token(struct tok *t, struct itl_error *err);
int tok_find_token_again(struct tok *t, struct itl_error *err);
int tok_open_login_session(struct tok *t, struct itl_error *err);
int tok_load_modules(struct tok *t, struct itl_error *err);
/* module.c: which module to load, from --module / token.module, the URI's module-name= and
 * module-path=, and token.init-args; a contradiction is refused (never silently ignored). */
enum tok_module_kind { TOK_MODULE_PROXY, TOK_MODULE_NAME, TOK_MODULE_PATH };
struct tok_module_choice {
    enum tok_module_kind kind;
    const char *value;      /* the name or path (points into the inputs) */
    const char *check_path; /* by name: the registered file must be this one (module-path=) */
};
int tok_choose_module(const char *option, const char *uri_name, const char *uri_path,
                      const char *init_args, struct tok_module_choice *out, struct itl_error *err);
/* C_Initialize / C_Finalize of t->mod as it was loaded (managed, or with our init args). */
CK_RV tok_module_initialize(struct tok *t);
void tok_module_finalize(struct tok *t);
int tok_pin_rejected_err(struct tok *t, struct itl_error *err);
void tok_backoff(unsigned attempt);
void tok_pool_drain(struct tok *t);
void tok_pool_resume(struct tok *t);
int tok_check_label_id(const char *label, const uint8_t *id, size_t id_len, struct itl_error *err);
int tok_refuse_existing(struct tok *t, CK_SESSION_HANDLE h, const char *label, const uint8_t *id,
                        size_t id_len, struct itl_error *err);
void tok_destroy_objects(struct tok *t, CK_SESSION_HANDLE h, const CK_OBJECT_HANDLE *o, size_t n);
int tok_cert_attrs_get(X509 *x, struct cert_attrs *ca);
void tok_cert_attrs_free(struct cert_attrs *ca);
/* The certificate's DER (ca->value) in a malloc'd copy for the caller, who frees *der. */
int tok_cert_attrs_copy_der(const struct cert_attrs *ca, uint8_t **der, size_t *len,
                            struct itl_error *err);
CK_RV tok_create_cert_object(struct tok *t, CK_SESSION_HANDLE h, const struct cert_attrs *ca,
                             const char *label, const uint8_t *id, size_t id_len,
                             CK_OBJECT_HANDLE *o);
/* keypair.c: the sign-only pair (reduced template when the token refuses it); the usage read
 * back; 1 when rv means "this template is refused" (CKR_ATTRIBUTE_*, CKR_TEMPLATE_*,
 * CKR_GENERAL_ERROR). */
int tok_generate_pair(struct tok *t, CK_SESSION_HANDLE h, CK_ULONG bits, const uint8_t *id,
                      size_t id_len, const char *label, CK_OBJECT_HANDLE *priv,
                      CK_OBJECT_HANDLE *pub, struct tok_generate_report *report,
                      struct itl_error *err);
void tok_read_usage(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
                    struct tok_key_usage *u);
int tok_template_refused(CK_RV rv);
int tok_check_protected(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv,
                        struct itl_error *err);
/* generate.c, shared with keyops.c: a subject "CN=...,O=..." in the order given; the RSA public
 * key of an object holding CKA_MODULUS / CKA_PUBLIC_EXPONENT; sha256WithRSA over data by the
 * token key (CKM_RSA_PKCS over a DigestInfo, context login when the key asks); a self-signed
 * CA-style certificate (o: days, now) signed by priv and verified with pub. */
int tok_parse_subject(const char *text, X509_NAME **out, struct itl_error *err);
EVP_PKEY *tok_rsa_public(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                         struct itl_error *err);
int tok_sign_sha256_in_session(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv,
                               const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len,
                               struct itl_error *err);
X509 *tok_self_signed_cert(struct tok *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv, EVP_PKEY *pub,
                           X509_NAME *name, const struct tok_generate_opts *o,
                           struct itl_error *err);

#endif
