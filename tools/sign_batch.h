/* SPDX-License-Identifier: MIT */
/*
 * itl-sign sign's batch: the list of inputs (arguments, directories, --files-from, -0) in
 * sign_inputs.c, and what a batch reports (per-file results, each warning once, the summary
 * line, the progress bar on a terminal, the --json document) in sign_report.c.
 */
#ifndef ITL_TOOLS_SIGN_BATCH_H
#define ITL_TOOLS_SIGN_BATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

enum sign_item_state {
    ITEM_PENDING,
    ITEM_SIGNED, /* written and durable */
    ITEM_WOULD,  /* --dry-run: the policy allows it, nothing written */
    ITEM_FAILED,
    ITEM_SKIPPED, /* from a directory: not a regular file, or the .sgn of another input */
};

struct sign_item {
    char *path; /* as given or joined with its directory (malloc'd) */
    enum sign_item_state state;
    int exit_code; /* ITEM_FAILED: what this file alone would exit with */
    char *output;  /* ITEM_SIGNED, ITEM_WOULD: the output path (malloc'd) */
    char *message; /* failure, skip reason, or the dry-run decision (malloc'd) */
    char *warning; /* the policy's warning for this file, or NULL (malloc'd) */
};

struct sign_list {
    struct sign_item *items;
    size_t n, cap;
};

/* Adds each argument: a directory gives its regular files (sorted, not recursive, hidden ones
 * left out; others skipped with a reason), anything else is a file. 0, or -1 (reported). */
int sign_list_add_args(struct sign_list *l, char *const *args, size_t n);
/* --files-from PATH ("-": stdin): one name per line, or NUL-separated with nul; empty names
 * are ignored, directories are expanded as above. 0, or -1 (reported). */
int sign_list_add_files_from(struct sign_list *l, const char *path, int nul);
void sign_list_free(struct sign_list *l);

/* sign's own options beside the shared ones: --files-from LIST, -0/--null. */
struct sign_inputs {
    const char *files_from;
    int nul;
};
int sign_input_option(int opt, const char *arg, void *ctx); /* a sign_parse_options hook */
void sign_usage(FILE *f);
/* The work list from argv[optind..] and --files-from: the items not skipped (*work malloc'd,
 * pointing into l). An EXIT_* code; a --filename (filename) names one file only. */
int sign_collect_inputs(int argc, char **argv, const struct sign_inputs *in, const char *filename,
                        struct sign_list *l, struct sign_item ***work, size_t *n_work);

/* Sets an item's result (thread-safe under the caller's lock). */
void sign_item_set(struct sign_item *it, enum sign_item_state st, int exit_code, const char *output,
                   const char *message, const char *warning);

/* The progress bar: on when stdout and stderr are terminals and the batch is long. */
struct sign_progress {
    int on;
    size_t total;
    atomic_size_t done;
    size_t drawn; /* the last count drawn, under the print lock */
};
void sign_progress_init(struct sign_progress *p, size_t total, int quiet);
/* One more file processed; redraws at most once per percent (caller holds the print lock). */
void sign_progress_tick(struct sign_progress *p);
/* Clears the bar's line before other output (caller holds the print lock). */
void sign_progress_clear(struct sign_progress *p);

/* Prints "path" with control characters and backslashes escaped (\n, \t, \xHH, \\). */
void sign_print_path(FILE *f, const char *path);
/* After the batch: each distinct warning once with its count, and the summary line
 * "N signed, M failed, K skipped" on stderr (text), or the --json document on stdout. */
void sign_report_batch(const struct sign_list *l, int dry_run, int quiet);

#endif
