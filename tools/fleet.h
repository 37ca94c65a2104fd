/* SPDX-License-Identifier: MIT */
/*
 * tools: what coverage, plan and publish share about a fleet of phones (issue 15, docs/fleet.md):
 * the ITLs phones may hold (a history directory, found by SHA-1 of the whole file), the TVS
 * service's certificates, and one phone's verdict on a new ITL under the phone model of
 * format/trust.c (itl_trust_decide), with the seeds' classic mistakes named.
 */
#ifndef ITL_TOOLS_FLEET_H
#define ITL_TOOLS_FLEET_H

#include "common/common.h"
#include "format/itl.h"

#define FLEET_FILE_LIMIT (4u << 20)

/* A trust file read whole: its bytes, parsed, and the SHA-1 a phone reports for it. */
struct fleet_itl {
    char name[256];
    uint8_t sha1[ITL_SHA1_LEN];
    uint8_t *data;
    size_t len;
    struct itl_file f;
    /* Not signed yet (plan --build): judged as if this certificate (DER, owned) signed it. */
    uint8_t *assumed_signer;
    size_t assumed_signer_len;
};

/* Read and parse an ITL/CTL (.tlv), not through a final symbolic link. */
int fleet_itl_load(const char *path, const char *name, struct fleet_itl *h, struct itl_error *err);
/* The same for bytes in memory (malloc'd; owned by h from the call, whatever it returns). */
int fleet_itl_adopt(uint8_t *data, size_t len, const char *name, struct fleet_itl *h,
                    struct itl_error *err);
void fleet_itl_free(struct fleet_itl *h);

/* Every ITL ever served, sorted by SHA-1 so a report is found with one binary search. */
struct fleet_history {
    struct fleet_itl *v;
    size_t n;
};

/* Regular files of `dir` only: a symlink, FIFO or directory is warned about (prefixed with
 * `cmd`) and skipped, as is a file that is not a .tlv. -1 with err (ITL_E_IO with strerror) when
 * the directory cannot be opened or read. */
int fleet_history_load(struct fleet_history *h, const char *dir, const char *cmd,
                       struct itl_error *err);
/* Add one file (e.g. --current) unless the history has its bytes already; takes ownership. */
int fleet_history_add(struct fleet_history *h, struct fleet_itl *itl, struct itl_error *err);
const struct fleet_itl *fleet_history_find(const struct fleet_history *h,
                                           const uint8_t sha1[ITL_SHA1_LEN]);
void fleet_history_free(struct fleet_history *h);

/* The TVS service as phones reach it: its certificates (one per TVS server, --tvs-cert) and
 * what it vouches for (the certificate store of the cluster: the records of the new ITL). */
#define FLEET_MAX_TVS 8
struct fleet_tvs {
    uint8_t *cert[FLEET_MAX_TVS];
    size_t cert_len[FLEET_MAX_TVS];
    size_t n;
    int from_itl; /* no --tvs-cert: the new ITL's TVS records */
    struct itl_entry *trusts;
    size_t n_trusts;
};

/* Add a TVS certificate from a PEM or DER file. */
int fleet_tvs_add_file(struct fleet_tvs *t, const char *path, struct itl_error *err);
/* TVS vouches for the certificates the new ITL lists (the cluster's own). Without a TVS
 * certificate added, the new ITL's TVS records are taken as the ones TVS presents. */
int fleet_tvs_set_trusts(struct fleet_tvs *t, const struct itl_file *new_itl,
                         struct itl_error *err);
void fleet_tvs_free(struct fleet_tvs *t);

/* The new ITL's recovery certificate (its SAST records other than the header's signer; the
 * signer when it is the only SAST) is a SAST record of `held`: a reset signed with it reaches a
 * phone holding `held`. */
int fleet_has_recovery_sast(const struct itl_file *new_itl, const struct itl_file *held);

enum fleet_action { FLEET_ACCEPT, FLEET_ACCEPT_TVS, FLEET_REJECT };
enum fleet_outcome { FLEET_CURRENT, FLEET_STRANDED, FLEET_RESCUABLE, FLEET_UNKNOWN };

/* The seeds' classic mistakes (bits of fleet_verdict.mistakes). */
enum fleet_mistake {
    FLEET_M_CCM_AND_TVS = 1u << 0,      /* CallManager and TVS regenerated together (seed 001) */
    FLEET_M_UNKNOWN_SIGNER = 1u << 1,   /* a new TFTP key no SAST of the phone's ITL signs for */
    FLEET_M_RECOVERY_CHANGED = 1u << 2, /* the recovery SAST differs from the phones' (seed 000) */
};
#define FLEET_MISTAKES 3

#define FLEET_MAX_REASONS 4
struct fleet_verdict {
    enum fleet_action action;
    enum fleet_outcome outcome;
    int has_recovery;  /* the new ITL's recovery SAST is in the held ITL */
    unsigned mistakes; /* enum fleet_mistake bits */
    size_t n_reasons;
    char reasons[FLEET_MAX_REASONS][1200];
};

/* What a phone holding `held` does with `new_itl`: accept (a record of its ITL signed it),
 * accept via TVS (tvs may be NULL: not modelled), or reject; then current, rescuable by reset or
 * stranded; with the reasons and the classic mistakes this transition makes. */
void fleet_decide(const struct itl_file *held, const struct fleet_itl *new_itl,
                  const struct fleet_tvs *tvs, struct fleet_verdict *v);

/* One phone report judged against a new ITL, the verdict computed once per history file. */
struct fleet_judge {
    const struct fleet_history *hist;
    const struct fleet_itl *new_itl;
    const struct fleet_tvs *tvs;
    struct fleet_verdict *verdicts;
    unsigned char *decided;
    unsigned char *ctl_decided; /* a CTL's answer: 0 not yet, 1 accepts, 2 not */
};
int fleet_judge_init(struct fleet_judge *j, const struct fleet_history *hist,
                     const struct fleet_itl *new_itl, const struct fleet_tvs *tvs,
                     struct itl_error *err);
/* The phone's verdict; *held is its ITL in the history (NULL: Not Installed or unknown). A
 * phone with no ITL accepts (the first ITL it downloads), one that holds the new bytes is
 * current, an unknown hash is reject / unknown ITL; a phone whose ITL rejects but whose CTL
 * (CTL_Signature, found in the history) verifies the new ITL accepts; these go in *scratch. */
const struct fleet_verdict *fleet_judge_report(struct fleet_judge *j, const struct itl_report *r,
                                               const struct fleet_itl **held,
                                               struct fleet_verdict *scratch);
void fleet_judge_free(struct fleet_judge *j);

/* ---- the fleet inputs coverage, plan and publish take ---- */

#define FLEET_MAX_REPORT_FILES 64
struct fleet_args {
    const char *reports[FLEET_MAX_REPORT_FILES];
    size_t n_reports;
    const char *history;
    const char *current;
    const char *tvs_cert[FLEET_MAX_TVS];
    size_t n_tvs;
};

enum {
    FLEET_OPT_REPORTS = 0x1100, /* OPT_FIRST_COMMAND_OPTION */
    FLEET_OPT_HISTORY,
    FLEET_OPT_CURRENT,
    FLEET_OPT_TVS_CERT,
    FLEET_OPT_NEXT /* a command's own options from here */
};

#define FLEET_LONG_OPTIONS                                                                         \
    {"reports", required_argument, NULL, FLEET_OPT_REPORTS},                                       \
        {"history", required_argument, NULL, FLEET_OPT_HISTORY},                                   \
        {"current", required_argument, NULL, FLEET_OPT_CURRENT},                                   \
    {                                                                                              \
        "tvs-cert", required_argument, NULL, FLEET_OPT_TVS_CERT                                    \
    }

/* One of FLEET_LONG_OPTIONS: 1 taken, 0 not one of them, -1 bad (printed, prefixed `cmd`). */
int fleet_option(struct fleet_args *a, const char *cmd, int opt, const char *arg);
/* Each --reports file to itl_reports_parse; a bad line is warned "CMD: FILE:LINE: why". An
 * unreadable file: -1 with err. */
int fleet_read_reports(const struct fleet_args *a, const char *cmd, itl_report_fn on_report,
                       void *ctx, struct itl_error *err);
/* --tvs-cert files, then the trusts of the new ITL (fleet_tvs_set_trusts). */
int fleet_tvs_load(struct fleet_tvs *t, const struct fleet_args *a, const struct itl_file *new_itl,
                   struct itl_error *err);

const char *fleet_action_name(enum fleet_action a);   /* "accept", "accept-via-tvs", "reject" */
const char *fleet_outcome_name(enum fleet_outcome o); /* "current", "stranded", ... */
const char *fleet_mistake_id(unsigned bit);           /* "callmanager-and-tvs-regenerated", ... */
const char *fleet_mistake_text(unsigned bit);         /* what went wrong and what to do */

#endif
