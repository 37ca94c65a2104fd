/* SPDX-License-Identifier: MIT */
/*
 * What the read-only commands show, verify and strip share: the input file, the verdict on its
 * signature (show_check.c) and the printer of show (show_print.c).
 */
#ifndef ITL_TOOLS_SHOW_H
#define ITL_TOOLS_SHOW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "format/itl.h"
#include "tools/cli.h"

/* Firmware .sgn files can be large; trust files and configs are small. */
#define SHOW_MAX_INPUT_BYTES (256u << 20)

enum {
    OPT_CERT = OPT_FIRST_COMMAND_OPTION,
    OPT_TRUST,
    OPT_CUCM,          /* show --cucm: taken out of argv by cmd_show.c before the shared parser */
    OPT_TVS_CERT,      /* verify */
    OPT_TVS_TRUSTS,    /* verify, repeatable */
    OPT_ALLOW_EXPIRED, /* verify */
};

#define SHOW_MAX_TVS_TRUSTS 16

struct input {
    const char *path;
    uint8_t *data;
    size_t len;
    unsigned mode; /* of the file: what strip writes from it is never wider */
    struct itl_file f;
};

/* What is known about the signature after checking it. */
enum outcome {
    VERIFIED,
    INVALID,     /* exit 1 */
    MALFORMED,   /* exit 3 */
    UNCHECKABLE, /* a .sgn without a certificate to check it with */
};

struct verdict {
    enum outcome outcome;
    long record;        /* the record that verified it (self or trust file), or -1 */
    const char *source; /* where that record is: NULL for the file itself */
    char why[ITL_ERROR_LEN + 256];
    /* --trust: the phone model's verdict (format/trust.c) */
    enum itl_trust_path path; /* direct, via TVS, or none */
    long tvs_record;          /* via TVS: the installed TVS record */
    const char *rule;         /* the rule that accepted, with its source */
    char note[ITL_ERROR_LEN]; /* names equal but not byte-equal, an accepted expiry */
    int phone_model;          /* decided by the phone model (--trust): path..note are set */
};

struct show_opts {
    const char *cert;
    const char *trust;
    const char *tvs_cert;                        /* verify --tvs-cert */
    const char *tvs_trusts[SHOW_MAX_TVS_TRUSTS]; /* verify --tvs-trusts */
    size_t n_tvs_trusts;
    int allow_expired; /* verify --allow-expired */
};

/* The certificate or trust list to check with, as the options name them. */
struct checker {
    uint8_t *cert;
    size_t cert_len;
    struct input trust;
    int have_trust;
    uint8_t *tvs_cert; /* DER */
    size_t tvs_cert_len;
    struct itl_entry tvs_trusts[SHOW_MAX_TVS_TRUSTS]; /* DER, owned */
    size_t n_tvs_trusts;
};

/* ---- show_check.c ---- */

/* Read and parse a file (hint: the kind it must be, or ITL_KIND_AUTO). Prints its own error;
 * returns an EXIT_* code. */
int show_load_input(const char *path, enum itl_kind hint, struct input *in);
void show_free_input(struct input *in);
void show_verify_file(const struct itl_file *f, const struct show_opts *o, const uint8_t *cert,
                      size_t cert_len, const struct itl_file *trust, struct verdict *v);
/* The same with the checker's TVS model and --allow-expired (verify --trust). */
void show_verify_file_ex(const struct itl_file *f, const struct show_opts *o, const uint8_t *cert,
                         size_t cert_len, const struct itl_file *trust, const struct checker *c,
                         struct verdict *v);
int show_exit_code(enum outcome o);
/* Options of show, verify and strip (cli_parse_options; shortopts: "o:" for strip, NULL for
 * the others); exactly one FILE must remain at argv[optind]. EXIT_OK, CLI_HELP_SHOWN (-1) after
 * --help, or an exit code. *out gets -o. */
int show_parse_options(int argc, char **argv, struct cli_global *g, const char *shortopts,
                       const struct option *longopts, void (*usage)(FILE *), struct show_opts *o,
                       const char **out);
int show_load_checker(const struct show_opts *o, struct checker *c);
void show_free_checker(struct checker *c);
int show_load_and_verify(int argc, char **argv, struct cli_global *g, const struct option *longopts,
                         void (*usage)(FILE *), struct show_opts *o, struct input *in,
                         struct checker *c, struct verdict *v);

/* ---- show_print.c ---- */

const char *show_short_role(unsigned function);
/* Bytes of a file as text, control characters escaped as \xNN (a name must not drive the
 * terminal); bytes as upper-case hex pairs joined by sep. show_cucm.c prints with them too. */
void show_text(FILE *out, struct itl_bytes b);
void show_hex(FILE *out, const uint8_t *p, size_t n, const char *sep);
/* "ITL" or "CTL" for trust lists, by FILENAME (CTLFile.tlv, CTLSEP<MAC>.tlv). */
const char *show_list_word(const struct itl_file *f);
/* "ITL", "CTL", "signed" or "encrypted". */
const char *show_file_word(const struct itl_file *f);
void show_print_header(FILE *out, const struct itl_file *f);
/* Returns the number of records that do not match their certificate. */
int show_print_records(FILE *out, const struct itl_file *f, long signer);
/* The number of records that do not match their certificate, without printing. */
int show_count_bad_records(const struct itl_file *f);
void show_print_verdict(FILE *out, const struct itl_file *f, const struct verdict *v,
                        const struct itl_file *trust);
/* show --json and verify --json: one object; "trust" holds the phone model's verdict. */
void show_print_json(FILE *out, const struct input *in, const struct verdict *v, long signer,
                     int bad);

/* ---- show_cucm.c ---- */

/* MD5 and SHA-1 of a whole file in lower-case hex: CUCM's "checksum value of the ITL file",
 * the hash TAC compares with what phones report (DeviceTLInfo). */
struct show_checksums {
    char md5[33];
    char sha1[41];
};
/* 0, or -1 when this OpenSSL cannot compute them (MD5 absent under a FIPS provider). */
int show_file_checksums(const uint8_t *data, size_t len, struct show_checksums *c);
/* "The checksum value of the ITL file:", the MD5 and SHA-1 lines and a blank line. */
void show_print_checksum(FILE *out, const struct itl_file *f);
/* An ITL/CTL as CUCM's `show itl` prints it (mtime: the file's, or NULL to leave out the
 * "last modified" line). What CUCM would not print (a record that does not match its
 * certificate, the 64 KB warning) goes to err_out. Returns the number of such records. */
int show_print_cucm(FILE *out, FILE *err_out, const struct itl_file *f, long signer,
                    const struct verdict *v, const time_t *mtime);

#endif
