/* SPDX-License-Identifier: MIT */
/*
 * format: Cisco phone trust files (ITL/CTL .tlv, .sgn, .enc.sgn). See docs/format.md.
 *
 * Pure functions: bytes in, bytes out. No file I/O, no clock, no globals, no PKCS#11.
 * Signing is a callback (struct itl_signer). Every parser bound-checks every length and
 * reports the offset and the field that is wrong.
 *
 * Parsed structures hold views (struct itl_bytes) into the caller's buffer: keep the
 * buffer alive as long as the parsed file.
 */
#ifndef ITL_FORMAT_ITL_H
#define ITL_FORMAT_ITL_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* Every failing call fills its struct itl_error with one sentence that names the field and the
 * offset, class ITL_E_INPUT unless said otherwise. */

/* A view into a caller-owned buffer. Strings are stored without their NUL terminator. */
struct itl_bytes {
    const uint8_t *ptr;
    size_t len;
};

enum itl_kind {
    ITL_KIND_AUTO = 0, /* as an input hint: detect */
    ITL_KIND_TLV,      /* ITL / CTL trust list */
    ITL_KIND_SGN,      /* signed file: header + original bytes */
    ITL_KIND_ENC_SGN,  /* encrypted config: header with tags 16..27 + ciphertext */
};

/* Digest codes as written in tag 8 (format.md section 2). */
enum itl_digest {
    ITL_DIGEST_SHA1 = 1,
    ITL_DIGEST_SHA256 = 2,
    ITL_DIGEST_SHA512 = 3,
};

/* FUNCTION codes of ITL/CTL records. Unknown codes are kept as they are. */
enum itl_role {
    ITL_ROLE_SAST = 0,
    ITL_ROLE_CCM = 1,
    ITL_ROLE_CCM_TFTP = 2,
    ITL_ROLE_TFTP = 3,
    ITL_ROLE_CAPF = 4,
    ITL_ROLE_SRST = 5,
    ITL_ROLE_APP_SERVER = 7,
    ITL_ROLE_TVS = 21,
};

/* Order of the fields inside the signer-info container (tag 3). */
enum itl_signer_order {
    ITL_ORDER_NAME_SERIAL_ISSUER = 0, /* 4,5,6: CUCM and certutils <= 4.12 */
    ITL_ORDER_NAME_ISSUER_SERIAL = 1, /* 4,6,5: certutils 4.13 */
};

/* How a certificate's distinguished name is written into SIGNERNAME/SUBJECTNAME/ISSUERNAME. */
enum itl_name_style {
    ITL_NAMES_CUCM = 0,     /* "CN=a;OU=b;C=US": the certificate's own (DER) order, ';'
                               separated, OpenSSL short names, no escaping, as CUCM's ITLs
                               and `show itl` dumps hold them (CUCM encodes CN first) */
    ITL_NAMES_CERTUTILS = 1 /* "CN=a,OU=b,O=c" : attributes in DER order, ',' separated */
};

/* Record layouts the builder can write. */
enum itl_layout {
    ITL_LAYOUT_CUCM = 0,     /* tags 1,2,3,4,5,6,7,8,9 in numeric order, DNSNAME "\0" */
    ITL_LAYOUT_CERTUTILS = 1 /* tags 1,3,5,6,4,7,8,9 (certutils 4.13), no DNSNAME */
};

/* An unknown or uninterpreted TLV, kept so nothing is lost when printing or re-signing. */
struct itl_tlv {
    uint8_t tag;
    uint8_t depth;          /* 0 at the top level, 1 inside one container, ... */
    size_t offset;          /* offset of the tag byte in the file */
    struct itl_bytes value; /* a container's value is its nested TLVs */
};

#define ITL_MAX_EXTRA_TLVS 16
#define ITL_MAX_HEADER_TLVS 64

struct itl_enc_info {
    int present;
    uint8_t unknown1;             /* tag 18 */
    struct itl_bytes iv;          /* tag 19, 16 bytes */
    uint16_t padding;             /* tag 20 */
    uint8_t unknown2;             /* tag 22 */
    uint16_t key_size_bits;       /* tag 23 */
    uint8_t key_algorithm;        /* tag 24 */
    struct itl_bytes wrapped_key; /* tag 25 */
    int hash_algorithm;           /* tag 26, digest code, 0 when absent */
    struct itl_bytes hash;        /* tag 27 */
};

struct itl_header {
    uint8_t version_major, version_minor; /* tag 1 */
    uint16_t header_length;               /* tag 2: offset of the first record / payload */
    int has_signer_version;               /* tag 28 present */
    uint8_t signer_version[2];
    enum itl_signer_order signer_order;
    struct itl_bytes signer_name;   /* tag 4, without NUL */
    struct itl_bytes signer_serial; /* tag 5 */
    struct itl_bytes signer_issuer; /* tag 6, without NUL */
    int digest;                     /* tag 8, raw code (may be unknown) */
    uint8_t sig_algorithm;          /* tag 10 */
    uint8_t sig_modulus;            /* tag 11 */
    size_t sig_offset;              /* offset of the tag-12 byte */
    struct itl_bytes signature;     /* tag 12 value */
    struct itl_bytes filename;      /* tag 14, without NUL */
    int has_timestamp;
    uint32_t timestamp; /* tag 15 */
    size_t padding;     /* number of single-byte padding tags at the end of the header */
    struct itl_enc_info enc;
    size_t n_extra; /* header TLVs this codec does not interpret, in file order */
    struct itl_tlv extra[ITL_MAX_EXTRA_TLVS];
    size_t n_tlvs; /* every header TLV in file order (containers too, padding not) */
    struct itl_tlv tlvs[ITL_MAX_HEADER_TLVS];
};

#define ITL_MAX_RECORD_TLVS 16

struct itl_record {
    size_t offset;    /* offset of the RECORDLENGTH tag in the file */
    uint16_t length;  /* RECORDLENGTH: whole record including its own 5 bytes */
    int has_function; /* tag 4 present */
    uint16_t function;
    struct itl_bytes dnsname;     /* tag 2 (ptr NULL when absent), without NUL */
    struct itl_bytes subject;     /* tag 3, without NUL */
    struct itl_bytes issuer;      /* tag 5, without NUL */
    struct itl_bytes serial;      /* tag 6 */
    struct itl_bytes public_key;  /* tag 7: PKCS#1 RSAPublicKey DER */
    struct itl_bytes signature;   /* tag 8: the certificate's signatureValue */
    struct itl_bytes certificate; /* tag 9: DER X.509 */
    struct itl_bytes ipaddress;   /* tag 10 */
    struct itl_bytes certhash;    /* tag 11 */
    int has_hash_algorithm;       /* tag 12 present */
    uint8_t hash_algorithm;
    size_t n_tlvs; /* every TLV of the record in file order (tag 1 included) */
    struct itl_tlv tlvs[ITL_MAX_RECORD_TLVS];
};

struct itl_file {
    enum itl_kind kind;
    const uint8_t *data; /* the caller's buffer */
    size_t len;
    struct itl_header hdr;
    struct itl_record *records; /* .tlv only; owned, freed by itl_file_free */
    size_t n_records;
    struct itl_bytes payload; /* .sgn: original bytes; .enc.sgn: ciphertext */
};

/* Parse any trust file. `hint` ITL_KIND_AUTO detects the kind: encryption tags mean .enc.sgn,
 * a FILENAME ending in ".tlv" means ITL/CTL, anything else is a .sgn. */
int itl_parse(const uint8_t *data, size_t len, enum itl_kind hint, struct itl_file *out,
              struct itl_error *err);
void itl_file_free(struct itl_file *f);

/*
 * What a file is to ANY reader of trust files, not only to itl_parse (kind.c, docs/format.md
 * "Output kinds"). A signer releases a file only when this matches its operation.
 *
 * itl_kind_of: ITL_KIND_TLV when some reader could take the bytes for an ITL/CTL: a header with
 * tag 28 or a FILENAME that itl_name_kind calls TLV, a .sgn whose body starts with tag 1 length
 * 2 (records, or a whole trust file), bare records, or a malformed header; ITL_KIND_ENC_SGN or
 * ITL_KIND_SGN for a well-formed header that is none of these; ITL_KIND_AUTO when the bytes do
 * not start with tag 1 length 2 (not a trust file and no record: a config, XML, text).
 */
enum itl_kind itl_kind_of(const uint8_t *data, size_t len);

/* What a name says, the widest reading: ITL_KIND_TLV when it contains ".tlv" or its last path
 * component begins with "ITL" or "CTL" (any case; also before an embedded NUL); else
 * ITL_KIND_ENC_SGN / ITL_KIND_SGN when it ends in ".enc.sgn" / ".sgn" (any case, trailing NUL,
 * spaces and dots ignored); else ITL_KIND_AUTO. */
enum itl_kind itl_name_kind(const char *name, size_t len);

#define ITL_MAX_NAME 200

/* 0 when `name` is a name fit for a file of `kind` (TLV, SGN or ENC_SGN): 1..ITL_MAX_NAME
 * printable ASCII bytes without space or backslash, itl_name_kind() == kind and the exact
 * lowercase suffix (".tlv", ".sgn", ".enc.sgn"); with allow_dirs a relative path ("locale/x.sgn")
 * without empty, "." or ".." components, else no '/'. -1 with err naming the name otherwise. */
int itl_check_name(const char *name, enum itl_kind kind, int allow_dirs, struct itl_error *err);

/* 0 when `data` is a file of kind `want` and nothing else: itl_kind_of() == want, itl_parse()
 * with ITL_KIND_AUTO succeeds with that kind, and its FILENAME passes itl_check_name() (paths
 * allowed for .sgn only). The check a signer makes before it releases an output. */
int itl_check_kind(const uint8_t *data, size_t len, enum itl_kind want, struct itl_error *err);

/* Names for printing. */
const char *itl_kind_name(enum itl_kind kind);
const char *itl_role_name(unsigned function);  /* CUCM's words; "UNKNOWN" otherwise */
const char *itl_digest_name(int digest);       /* "SHA-1", ...; NULL if unknown */
int itl_digest_from_name(const char *name);    /* "sha1"|"sha256"|"sha512" -> code, -1 */
int itl_digest_nid(int digest);                /* OpenSSL NID, or 0 if unknown */
const char *itl_header_tag_name(unsigned tag); /* "SIGNERNAME", ...; "UNKNOWN" */
const char *itl_record_tag_name(unsigned tag); /* "SUBJECTNAME", ...; "UNKNOWN" */

/* The bytes the signature covers: the file without the SIGNATURE TLV (format.md section 4). */
int itl_signed_bytes(const struct itl_file *f, uint8_t **out, size_t *out_len,
                     struct itl_error *err);
/* The digest of the signed bytes with the header's digest algorithm. */
int itl_signed_digest(const struct itl_file *f, uint8_t md[64], size_t *md_len,
                      struct itl_error *err);

/* Verify the file's signature with a given certificate (DER). 0 when valid. */
int itl_verify_with_cert(const struct itl_file *f, const uint8_t *cert_der, size_t cert_len,
                         struct itl_error *err);
/* Verify an ITL/CTL with its own signer record's certificate. 0 when valid; *signer_index is
 * set to the record used (or -1). */
int itl_verify_self(const struct itl_file *f, long *signer_index, struct itl_error *err);

/* Record consistency with its certificate: PUBLICKEY == RSAPublicKey DER of the certificate and
 * SIGNATURE == its signatureValue. 0 when consistent (or when the record has no certificate). */
int itl_record_check(const struct itl_record *r, struct itl_error *err);

/* Certificate helpers (DER in, strings out). */
int itl_cert_name(const uint8_t *der, size_t len, int issuer, enum itl_name_style style, char *out,
                  size_t out_size, struct itl_error *err);
/* A DER Name (a certificate's subject, a token's CKA_SUBJECT) as a string: the one spelling of
 * a certificate name across commands (key list shows what ITLs and messages show). */
int itl_name_der_str(const uint8_t *der, size_t len, enum itl_name_style style, char *out,
                     size_t out_size, struct itl_error *err);
/* The same for a certificate already parsed (an OpenSSL X509 *), as in itl_signer.cert_x509. */
int itl_x509_name(const void *x509, int issuer, enum itl_name_style style, char *out,
                  size_t out_size, struct itl_error *err);
int itl_cert_serial(const uint8_t *der, size_t len, uint8_t *out, size_t out_size, size_t *out_len,
                    struct itl_error *err);
/* Modulus length in bytes of the certificate's RSA key (the signature length). */
int itl_cert_rsa_bytes(const uint8_t *der, size_t len, size_t *bytes, struct itl_error *err);
/* DigestInfo (DER prefix + digest) for RSA PKCS#1 v1.5 with CKM_RSA_PKCS. */
int itl_digest_info(int digest, const uint8_t *md, size_t md_len, uint8_t *out, size_t out_size,
                    size_t *out_len, struct itl_error *err);

/*
 * Signing callback: sign `md` (the digest of `msg` with `digest`) with the signer's key, writing
 * at most *sig_len bytes to sig and setting *sig_len. `msg` is given for signers that hash
 * themselves (CKM_SHAx_RSA_PKCS). Returns 0 or -1 with err filled.
 */
typedef int (*itl_sign_fn)(void *ctx, int digest, const uint8_t *msg, size_t msg_len,
                           const uint8_t *md, size_t md_len, uint8_t *sig, size_t *sig_len,
                           struct itl_error *err);

struct itl_signer {
    const uint8_t *cert_der; /* the signer certificate: names, serial, modulus size */
    size_t cert_len;
    /* Optional: the same certificate already parsed (an OpenSSL X509 *). Parsing costs as
     * much CPU as a signature in OpenSSL 3, so a signer of many files parses it once. */
    const void *cert_x509;
    int digest;
    itl_sign_fn sign; /* NULL: signed by nobody (a SIGNATURE of zeros; itl_build_tlv) */
    void *ctx;
};

/* One certificate to put in an ITL/CTL. */
struct itl_entry {
    const uint8_t *cert_der;
    size_t cert_len;
    unsigned function;
};

struct itl_build_opts {
    const char *filename; /* "ITLFile.tlv" when NULL */
    uint32_t timestamp;   /* an input: the codec never reads the clock */
    enum itl_layout layout;
    enum itl_signer_order signer_order;
    enum itl_name_style names;
    int signer_version; /* 0: no tag 28; 0x0100 = 1.0, 0x0101 = 1.1 */
    /* A known ITL/CTL (the phones' installed one), or NULL: a certificate that is one of its
     * records is named with that record's SUBJECTNAME, ISSUERNAME and SERIALNUMBER bytes,
     * exactly (header and records), so a phone comparing bytes finds it. */
    const struct itl_file *known;
};

/* The header and record conventions of a layout (signer-info order, names, tag 28). */
void itl_build_layout(struct itl_build_opts *bo, enum itl_layout layout);

/* Build an ITL/CTL: header, 0x0D padding to 4 bytes, lengths patched, signed, verified with
 * the signer certificate before returning. *out is malloc'd. A signer without `sign` makes an
 * ITL signed by nobody (a SIGNATURE of zeros, not verified) for the phone model's
 * assume_signer (itl-sign plan --build): never a file to serve. */
int itl_build_tlv(const struct itl_entry *entries, size_t n, const struct itl_build_opts *opts,
                  const struct itl_signer *signer, uint8_t **out, size_t *out_len,
                  struct itl_error *err);

/* Re-sign an ITL/CTL with a new signer (reset): every record byte-identical, the input's
 * conventions kept (VERSION, tag 28, signer-info order, unknown header tags, FILENAME); signer
 * name, issuer and serial copied from the record `signer_record` of that file; new TIMESTAMP,
 * digest from signer->digest. The result is verified before returning. *out is malloc'd. */
int itl_resign_tlv(const struct itl_file *f, size_t signer_record, uint32_t timestamp,
                   const struct itl_signer *signer, uint8_t **out, size_t *out_len,
                   struct itl_error *err);

struct itl_sgn_opts {
    const char *filename; /* logical name written in FILENAME, e.g. "SEP0011.cnf.xml.sgn" */
    uint32_t timestamp;
    enum itl_signer_order signer_order;
    enum itl_name_style names;
    const struct itl_file *known; /* as in itl_build_opts: the signer's names from its record */
};

/* The header conventions of an existing .sgn or list (signer-info order, ';' or ',' names),
 * for re-signing it the way it was written. */
void itl_header_conventions(const struct itl_header *h, enum itl_signer_order *order,
                            enum itl_name_style *names);

/* Build a .sgn around payload. Verified before returning. *out is malloc'd. */
int itl_build_sgn(const uint8_t *payload, size_t payload_len, const struct itl_sgn_opts *opts,
                  const struct itl_signer *signer, uint8_t **out, size_t *out_len,
                  struct itl_error *err);

/* Inputs of an encryption that the caller chooses (random in production, fixed in tests). */
struct itl_enc_keys {
    uint8_t aes_key[16];
    uint8_t iv[16];
};

/* Build a .enc.sgn: AES-128-CBC with 0x0D padding, key wrapped (RSAES-PKCS1-v1_5) to the phone
 * certificate, plaintext hash with signer->digest, signed. *out is malloc'd. */
int itl_build_enc_sgn(const uint8_t *xml, size_t xml_len, const uint8_t *phone_cert_der,
                      size_t phone_cert_len, const struct itl_enc_keys *keys,
                      const struct itl_sgn_opts *opts, const struct itl_signer *signer,
                      uint8_t **out, size_t *out_len, struct itl_error *err);

/* Decrypt a parsed .enc.sgn with the phone's private key (DER, PKCS#1 or PKCS#8). Checks the
 * plaintext hash. *out is malloc'd. */
int itl_decrypt_enc_sgn(const struct itl_file *f, const uint8_t *phone_key_der,
                        size_t phone_key_len, uint8_t **out, size_t *out_len,
                        struct itl_error *err);

/* The short companion config (format.md section 9): fullConfig=false, copies of
 * loadInformation, ipAddressMode, capfAuthMode, capfList, certHash (MD5 of the phone certificate),
 * encrConfig=true. *out is malloc'd, NUL-terminated, out_len excludes the NUL. */
int itl_short_config(const uint8_t *xml, size_t xml_len, const uint8_t *phone_cert_der,
                     size_t phone_cert_len, char **out, size_t *out_len, struct itl_error *err);

/*
 * ---- The phone model (format/trust.c, docs/trust.md) ----
 *
 * Which record holds a certificate: serial numbers compare as unsigned integers, issuers as
 * distinguished names (component by component, ';' or ',' separated, in either order, spaces
 * after a separator ignored, RFC 4514 escapes undone, attribute names by OID). A record that
 * carries its CERTIFICATE holds exactly that certificate (bytes compared).
 */

/* A role mask: bit n is FUNCTION n. */
#define ITL_ROLE_MASK(role) (1u << (role))
#define ITL_ROLES_ANY 0xffffffffu

struct itl_match {
    long record;        /* index of the record, -1 when none */
    int by_certificate; /* its CERTIFICATE is the certificate, byte for byte */
    int names_differ;   /* serial and issuer name match but the issuer's bytes differ */
    char note[640];     /* names_differ: the two strings */
};

/* 1 when a and b are the same distinguished name as above. */
int itl_same_dn(struct itl_bytes a, struct itl_bytes b);

/* The first record at or after `from` with a role in `roles` naming the certificate of this
 * serial number and issuer (a header's signer); -1 when none. */
long itl_find_record(const struct itl_file *list, size_t from, unsigned roles,
                     struct itl_bytes serial, struct itl_bytes issuer, struct itl_match *m);
/* The same for a certificate (DER). */
long itl_find_cert_record(const struct itl_file *list, size_t from, unsigned roles,
                          const uint8_t *der, size_t len, struct itl_match *m);
/* The SAST record the header names as its signer ("This etoken was used..."), or -1. */
long itl_find_signer_record(const struct itl_file *f);
/* Is this certificate (DER) a record of f with this role? */
int itl_has_cert_with_role(const struct itl_file *f, const uint8_t *der, size_t len,
                           unsigned function);

/* What a trust file is to a phone: by its FILENAME, "CTL..." is a CTL, any other .tlv an ITL. */
enum itl_list { ITL_LIST_NONE = 0, ITL_LIST_ITL, ITL_LIST_CTL };
enum itl_list itl_list_of(const struct itl_file *f);

enum itl_trust_path {
    ITL_TRUST_NONE = 0, /* not accepted */
    ITL_TRUST_DIRECT,   /* a record of the installed list signed it */
    ITL_TRUST_TVS,      /* TVS vouched for the signer */
};

struct itl_trust_opts {
    int64_t now;             /* seconds since the epoch for validity checks; 0: not checked */
    int expired_accept;      /* an expired signer certificate is accepted with a note */
    const uint8_t *tvs_cert; /* the TVS service's current certificate (DER), or NULL */
    size_t tvs_cert_len;
    const struct itl_entry *tvs_trusts; /* the certificates TVS trusts (function unused) */
    size_t n_tvs_trusts;
    /* A file not signed yet (itl-sign plan --build): its signature is taken as valid by this
     * certificate (DER) and by any certificate with its public key, and by no other; every
     * other rule (who may sign, TVS, expiry, names) is checked as usual. NULL: verified. */
    const uint8_t *assume_signer;
    size_t assume_signer_len;
};

struct itl_trust_verdict {
    enum itl_trust_path path;
    int malformed;    /* the file cannot be checked at all (unknown digest or algorithm) */
    int expired;      /* the accepting certificate is outside its validity at opts.now */
    long record;      /* installed record that accepted, or that names the signer; -1 */
    long tvs_record;  /* via TVS: the installed TVS record that holds the TVS certificate */
    const char *rule; /* the rule applied, with its source (docs/trust.md), or NULL */
    char why[1024];   /* accepted: what matched; not accepted: why not */
    char note[640];   /* names that match but differ in bytes, expiry */
};

/* Would a phone holding `installed` (an ITL or CTL) accept `file` (a new ITL or CTL, a .sgn or
 * .enc.sgn config)? Returns v->path: ITL_TRUST_NONE (0) with v->why, or the path that
 * accepted. */
enum itl_trust_path itl_trust_decide(const struct itl_file *installed, const struct itl_file *file,
                                     const struct itl_trust_opts *opts,
                                     struct itl_trust_verdict *v);

/*
 * ---- Phone reports (format/report.c, issue 15) ----
 *
 * What a phone says it holds: the DeviceTLInfo alarm (an x-cisco-alarm XML document), many of
 * them one after another (an RTMT or syslog dump: text around the documents is ignored), or a
 * CSV with a header line naming DeviceName and ITL_Signature (ITL_TFTP_Server, CTL_Signature,
 * CTL_TFTP_Server optional, any order). A bad document or line is passed to `warn` with its
 * line number and skipped; only out of memory stops the parse.
 */
#define ITL_SHA1_LEN 20

struct itl_report {
    long line;       /* first line of the document or CSV line (1-based) */
    char device[64]; /* DeviceName */
    int has_itl;     /* 0: "Not Installed" */
    uint8_t itl_sha1[ITL_SHA1_LEN];
    char itl_tftp[256]; /* ITL_TFTP_Server, "" when absent */
    int has_ctl;
    uint8_t ctl_sha1[ITL_SHA1_LEN];
    char ctl_tftp[256];
    int status_code; /* StatusCode, -1 when absent */
};

/* Return non-zero from `on_report` to stop (returned by the parser). */
typedef int (*itl_report_fn)(void *ctx, const struct itl_report *r);
typedef void (*itl_report_warn_fn)(void *ctx, long line, const char *msg);

/* "1B A1 ..." (20 hex bytes separated by spaces, trailing space allowed): 1, out filled;
 * "Not Installed": 0; anything else: -1. */
int itl_report_sha1(const char *s, size_t n, uint8_t out[ITL_SHA1_LEN]);
/* Parse alarms (ITL_REPORT_XML) or CSV; the kind is guessed by the first non-blank byte
 * ('<' or text before "<x-cisco-alarm": XML; otherwise CSV). Returns the number of reports
 * given to on_report, or -1 with err (out of memory, or on_report's stop as ITL_E_INPUT). */
long itl_reports_parse(const char *data, size_t len, itl_report_fn on_report,
                       itl_report_warn_fn warn, void *ctx, struct itl_error *err);

#endif
