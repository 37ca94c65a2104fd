/* SPDX-License-Identifier: MIT */
/*
 * tools: itl-sign publish (issue 15, docs/fleet.md, docs/rollout.md). cmd_publish.c runs the
 * command; publish_check.c asks the phone model whether the phones behind each target take the
 * new file(s); publish_run.c keeps the history copy, runs the hook and writes the audit record.
 */
#ifndef ITL_TOOLS_PUBLISH_H
#define ITL_TOOLS_PUBLISH_H

#include "tools/fleet.h"

#define PUBLISH_MAX_TARGETS 32
#define PUBLISH_MAX_FILES 4096

/* One file to put in front of phones: an ITL, or one .sgn of a configs batch. */
struct publish_file {
    char name[256]; /* the name in every target */
    uint8_t *data;
    size_t len;
    uint8_t sha1[ITL_SHA1_LEN];
    struct itl_file f;
};

/* What a phone holding a target's current file would do. */
struct publish_target {
    const char *dir;
    int has_current; /* the target holds a file of that name now */
    uint8_t current_sha1[ITL_SHA1_LEN];
    struct fleet_verdict v; /* ITL: the phone model's verdict; configs: the worst one */
    int unchanged;          /* the same bytes are there already */
    char note[512];         /* configs: which file was refused, or why nothing checked */
};

struct publish {
    int configs; /* a directory of .sgn */
    struct publish_file *files;
    size_t n_files;
    struct publish_target targets[PUBLISH_MAX_TARGETS];
    size_t n_targets;
    struct fleet_tvs tvs;
    long stranded;  /* from --reports: phones stranded (-1: no reports) */
    long unknown;   /* from --reports: phones whose ITL is unknown */
    long rescuable; /* from --reports */
};

/* The source: an ITL file, or a directory of .sgn (regular files only; each parsed). */
int publish_load_source(struct publish *p, const char *path, struct itl_error *err);
/* Each target's current file and the phone model's verdict on the new one(s). */
int publish_check_targets(struct publish *p, const struct fleet_args *a, struct itl_error *err);
/* --reports: count stranded phones against the new ITL (history + the targets' ITLs). */
int publish_check_reports(struct publish *p, const struct fleet_args *a, struct itl_error *err);
void publish_free(struct publish *p);

/* --history DIR: the ITL kept as DIR/<sha1>.tlv (atomic; an existing copy is kept). */
int publish_history_copy(const struct publish_file *f, const char *dir, char *out, size_t size,
                         struct itl_error *err);
/* The hook: argv split at blanks (no quoting, no shell) or, with `shell`, /bin/sh -c CMD.
 * Its output goes to stderr. Returns its exit status (128+N for a signal), or -1 with err when it
 * could not start. */
int publish_run_hook(const char *cmd, int shell, struct itl_error *err);
/* One audit record in the log --config names (nothing without --config). */
struct publish_audit;
int publish_audit_open(const char *config, struct publish_audit **out, struct itl_error *err);
int publish_audit_write(struct publish_audit *a, const char *file, const uint8_t *data, size_t len,
                        const char *result, const char *rule, const char *message,
                        struct itl_error *err);
void publish_audit_close(struct publish_audit *a);

#endif
