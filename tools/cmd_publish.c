/* SPDX-License-Identifier: MIT */
/*
 * itl-sign publish: put a signed ITL (or a directory of .sgn configs) in front of phones
 * safely (issue 15, docs/fleet.md, docs/rollout.md): the phone model first, then every target
 * or none (common/file_swap.c), the history copy, the hook once, one audit record.
 */
#include "tools/cli.h"
#include "tools/publish.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    OPT_TO = FLEET_OPT_NEXT,
    OPT_THEN,
    OPT_THEN_SHELL,
    OPT_ALLOW_STRANDED,
    OPT_DRY_RUN,
    OPT_RECOVER,
};

struct publish_args {
    struct fleet_args fleet;
    const char *to[PUBLISH_MAX_TARGETS];
    size_t n_to;
    const char *then;
    int shell, dry_run, recover;
    long allow_stranded; /* -1: not given */
};

struct run {
    struct publish p;
    struct publish_args a;
    struct cli_json j;
    int json;
    const char *source;
    char history_path[4096];
    int hook_status; /* -1 not run */
    char recovered[PUBLISH_MAX_TARGETS][64];
    char message[1400];
};

static void publish_usage(FILE *f)
{
    fprintf(f, "usage: itl-sign publish (ITLFile.tlv | CONFIGS_DIR) --to DIR [--to DIR...]\n"
               "                        [--history DIR] [--then CMD | --then-shell CMD]\n"
               "                        [--reports FILE... [--allow-stranded N]] [--tvs-cert F]\n"
               "                        [--dry-run] [--json] [--config FILE]\n"
               "       itl-sign publish --recover --to DIR [--to DIR...]\n"
               "  Checks with the phone model that a phone holding each target's current file\n"
               "  takes the new one (refused with the reasons otherwise; with --reports, phones\n"
               "  stranded beyond --allow-stranded N, default 0, refuse it), keeps the ITL as\n"
               "  DIR/<sha1>.tlv in --history, then replaces the file in every target or in none\n"
               "  and runs --then once (argv split at blanks, no shell; --then-shell: sh -c).\n"
               "  An interrupted publish is recovered first. --config: one audit record.\n"
               "exit: 0 published (or nothing to do), 5 refused, 6 not written (every target\n"
               "      as it was), 8 published but the hook failed, 2 usage, 3 input\n");
}

static int publish_option(int opt, const char *arg, void *ctx)
{
    struct publish_args *a = ctx;
    char *end;

    switch (opt) {
    case OPT_TO:
        if (a->n_to == PUBLISH_MAX_TARGETS) {
            cli_error("publish: at most %d --to directories", PUBLISH_MAX_TARGETS);
            return -1;
        }
        a->to[a->n_to++] = arg;
        return 1;
    case OPT_THEN:
    case OPT_THEN_SHELL:
        if (strspn(arg, " \t") == strlen(arg)) {
            cli_error("publish: --then needs a command");
            return -1;
        }
        if (a->then) {
            cli_error("publish: one --then or --then-shell");
            return -1;
        }
        a->then = arg;
        a->shell = opt == OPT_THEN_SHELL;
        return 1;
    case OPT_ALLOW_STRANDED:
        errno = 0;
        a->allow_stranded = strtol(arg, &end, 10);
        if (errno || *end || end == arg || a->allow_stranded < 0) {
            cli_error("publish: --allow-stranded '%s': not a count of phones", arg);
            return -1;
        }
        return 1;
    case OPT_DRY_RUN:
        a->dry_run = 1;
        return 1;
    case OPT_RECOVER:
        a->recover = 1;
        return 1;
    }
    return fleet_option(&a->fleet, "publish", opt, arg);
}

static void json_strings(struct cli_json *j, const char *key, char (*v)[1200], size_t n)
{
    cli_json_open(j, key, '[');
    for (size_t i = 0; i < n; i++) {
        cli_json_elem(j);
        json_cstring(&j->b, v[i]);
    }
    cli_json_close(j, ']');
}

static void print_target(struct run *r, const struct publish_target *t)
{
    char sha[2 * ITL_SHA1_LEN + 1];

    hex_lower(t->current_sha1, ITL_SHA1_LEN, 0, sha, sizeof sha);
    if (!r->json) {
        printf("%s: %s%s%s%s\n", t->dir,
               t->unchanged ? "unchanged" : fleet_action_name(t->v.action),
               r->p.configs ? "" : " (", r->p.configs ? "" : fleet_outcome_name(t->v.outcome),
               r->p.configs ? "" : ")");
        for (size_t i = 0; i < t->v.n_reasons; i++)
            printf("    %s\n", t->v.reasons[i]);
        return;
    }
    cli_json_elem(&r->j);
    buf_puts(&r->j.b, "{");
    r->j.fields = 0;
    cli_json_str(&r->j, "dir", t->dir);
    cli_json_str(&r->j, "current_sha1", t->has_current ? sha : NULL);
    cli_json_bool(&r->j, "unchanged", t->unchanged);
    cli_json_str(&r->j, "action", fleet_action_name(t->v.action));
    cli_json_str(&r->j, "outcome", r->p.configs ? NULL : fleet_outcome_name(t->v.outcome));
    json_strings(&r->j, "reasons", (char(*)[1200])t->v.reasons, t->v.n_reasons);
    cli_json_close(&r->j, '}');
}

/* The one result document (or text) of every run that got past the options. */
static void report(struct run *r, const char *status)
{
    char sha[2 * ITL_SHA1_LEN + 1] = "";

    if (r->p.n_files && !r->p.configs)
        hex_lower(r->p.files[0].sha1, ITL_SHA1_LEN, 0, sha, sizeof sha);
    if (r->json) {
        cli_json_begin(&r->j);
        cli_json_str(&r->j, "command", "publish");
        cli_json_str(&r->j, "status", status);
        cli_json_bool(&r->j, "dry_run", r->a.dry_run);
        cli_json_str(&r->j, "source", r->source);
        cli_json_str(&r->j, "sha1", sha[0] ? sha : NULL);
        cli_json_int(&r->j, "files", (long long)r->p.n_files);
        cli_json_open(&r->j, "targets", '[');
    }
    for (size_t i = 0; i < r->p.n_targets && r->p.n_files; i++)
        print_target(r, &r->p.targets[i]);
    if (!r->json) {
        if (r->p.stranded >= 0)
            printf("reports: %ld stranded, %ld rescuable by reset, %ld unknown ITL\n",
                   r->p.stranded, r->p.rescuable, r->p.unknown);
        for (size_t i = 0; i < r->a.n_to; i++)
            if (r->recovered[i][0])
                printf("%s: %s\n", r->a.to[i], r->recovered[i]);
        printf("%s: %s\n", status, r->message);
        return;
    }
    cli_json_close(&r->j, ']');
    cli_json_int(&r->j, "stranded", r->p.stranded);
    cli_json_int(&r->j, "unknown", r->p.unknown);
    cli_json_str(&r->j, "history", r->history_path[0] ? r->history_path : NULL);
    if (r->hook_status >= 0)
        cli_json_int(&r->j, "hook_exit", r->hook_status);
    else
        cli_json_raw(&r->j, "hook_exit", "null");
    cli_json_open(&r->j, "recovered", '[');
    for (size_t i = 0; i < r->a.n_to; i++)
        if (r->recovered[i][0]) {
            cli_json_elem(&r->j);
            json_cstring(&r->j.b, r->a.to[i]);
        }
    cli_json_close(&r->j, ']');
    cli_json_str(&r->j, "message", r->message);
    cli_json_print(&r->j);
}

/* An interrupted publish in any target: rolled back or forward before anything else. */
static int recover_targets(struct run *r, struct itl_error *err)
{
    for (size_t i = 0; i < r->a.n_to; i++) {
        char journal[4096];
        struct stat st;
        int outcome;
        snprintf(journal, sizeof journal, "%s/.itl-swap.journal", r->a.to[i]);
        if (r->a.dry_run) {
            if (lstat(journal, &st) == 0)
                snprintf(r->recovered[i], sizeof r->recovered[i],
                         "an interrupted publish would be recovered first");
            continue;
        }
        if (file_swap_recover(r->a.to[i], r->a.to, r->a.n_to, &outcome, err) != 0)
            return err_prefix(err, "recovering %s: ", r->a.to[i]);
        if (outcome != FILE_SWAP_CLEAN) {
            snprintf(r->recovered[i], sizeof r->recovered[i], "an interrupted publish was %s",
                     outcome == FILE_SWAP_ROLLED_BACK ? "rolled back (every target old)"
                                                      : "completed (every target new)");
            cli_warn("publish: %s: %s", r->a.to[i], r->recovered[i]);
        }
    }
    return 0;
}

/* The audit record says what recovery did before this publish. */
static void note_recovered(struct run *r)
{
    for (size_t i = 0; i < r->a.n_to; i++)
        if (r->recovered[i][0]) {
            size_t n = strlen(r->message);
            snprintf(r->message + n, sizeof r->message - n, "; %s: %s", r->a.to[i],
                     r->recovered[i]);
        }
}

/* The phone model's answer: NULL to go on, else why not (into r->message). */
static const char *refusal(struct run *r)
{
    const struct publish *p = &r->p;
    long allowed = r->a.allow_stranded < 0 ? 0 : r->a.allow_stranded;

    if (p->stranded >= 0) {
        if (p->stranded <= allowed)
            return NULL;
        snprintf(r->message, sizeof r->message,
                 "%ld phones of the reports would be stranded (--allow-stranded %ld); "
                 "see `itl-sign plan` for each one",
                 p->stranded, allowed);
        return "allow-stranded";
    }
    for (size_t i = 0; i < p->n_targets; i++)
        if (p->targets[i].v.action == FLEET_REJECT) {
            snprintf(r->message, sizeof r->message,
                     "a phone holding the current file of %s would reject %s: %.900s",
                     p->targets[i].dir, r->source, p->targets[i].v.reasons[0]);
            return "phone-model";
        }
    return NULL;
}

static int swap_all(struct run *r, struct itl_error *err)
{
    struct file_swap *s = file_swap_new();
    int rc = -1;

    if (!s)
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < r->p.n_targets; i++) {
        int d = file_swap_add_dir(s, r->p.targets[i].dir, err);
        if (d < 0)
            goto out;
        for (size_t k = 0; k < r->p.n_files; k++)
            if (file_swap_add(s, (size_t)d, r->p.files[k].name, r->p.files[k].data,
                              r->p.files[k].len, 0644, err) != 0)
                goto out;
    }
    rc = file_swap_commit(s, err);
out:
    file_swap_free(s);
    return rc;
}

static int all_unchanged(const struct publish *p)
{
    for (size_t i = 0; i < p->n_targets; i++)
        if (!p->targets[i].unchanged)
            return 0;
    return !p->configs;
}

/* Everything after the options: returns the exit code, r->message says what happened. */
static int run_publish(struct run *r, struct publish_audit *audit)
{
    struct itl_error e = {0};
    const struct publish_file *f0;
    const uint8_t *hashed;
    const char *rule;

    if (recover_targets(r, &e) != 0)
        goto failed;
    if (r->a.recover) {
        snprintf(r->message, sizeof r->message, "recovery done");
        note_recovered(r);
        if (publish_audit_write(audit, NULL, NULL, 0, "ok", "recover", r->message, &e) != 0)
            goto failed;
        return EXIT_OK;
    }
    if (publish_load_source(&r->p, r->source, &e) != 0)
        goto failed;
    r->p.n_targets = r->a.n_to;
    for (size_t i = 0; i < r->a.n_to; i++)
        r->p.targets[i].dir = r->a.to[i];
    if (publish_check_targets(&r->p, &r->a.fleet, &e) != 0 ||
        (r->a.fleet.n_reports && publish_check_reports(&r->p, &r->a.fleet, &e) != 0))
        goto failed;
    f0 = &r->p.files[0];
    hashed = r->p.configs ? NULL : f0->data; /* a configs batch has no one file to hash */
    if ((rule = refusal(r)) != NULL) {
        if (!r->a.dry_run && publish_audit_write(audit, r->source, hashed, f0->len, "denied", rule,
                                                 r->message, &e) != 0)
            goto failed;
        return EXIT_DENIED;
    }
    if (all_unchanged(&r->p)) {
        snprintf(r->message, sizeof r->message, "every target holds these bytes already");
        return EXIT_OK;
    }
    if (r->a.dry_run) {
        snprintf(r->message, sizeof r->message,
                 "would put %zu file(s) in %zu target(s)%s%s%s; nothing written", r->p.n_files,
                 r->p.n_targets, r->a.then ? ", then run `" : "", r->a.then ? r->a.then : "",
                 r->a.then ? "`" : "");
        return EXIT_OK;
    }
    if (r->a.fleet.history && !r->p.configs &&
        publish_history_copy(f0, r->a.fleet.history, r->history_path, sizeof r->history_path, &e) !=
            0)
        goto not_written;
    if (swap_all(r, &e) != 0)
        goto not_written;
    snprintf(r->message, sizeof r->message, "%zu file(s) in every one of %zu target(s)",
             r->p.n_files, r->p.n_targets);
    note_recovered(r);
    if (r->a.then) {
        r->hook_status = publish_run_hook(r->a.then, r->a.shell, &e);
        if (r->hook_status != 0) {
            size_t n = strlen(r->message);
            if (r->hook_status < 0)
                snprintf(r->message + n, sizeof r->message - n, "; the hook `%s` failed: %.300s",
                         r->a.then, e.msg);
            else
                snprintf(r->message + n, sizeof r->message - n, "; the hook `%s` failed (exit %d)",
                         r->a.then, r->hook_status);
            cli_error("publish: %s", r->message);
        }
    }
    if (publish_audit_write(audit, r->source, hashed, f0->len,
                            r->a.then && r->hook_status != 0 ? "error" : "ok", "publish",
                            r->message, &e) != 0) {
        cli_error("publish: published, but the audit record could not be written: %s", e.msg);
        return EXIT_OUTPUT;
    }
    return !r->a.then || r->hook_status == 0 ? EXIT_OK : EXIT_PARTIAL;
not_written:
    text_printf(r->message, sizeof r->message, "nothing published, every target as it was: %s",
                e.msg);
    cli_error("publish: %s", r->message);
    publish_audit_write(audit, r->source, r->p.files[0].data, r->p.files[0].len, "error", "publish",
                        r->message, NULL);
    return EXIT_OUTPUT;
failed:
    text_printf(r->message, sizeof r->message, "%s", e.msg);
    cli_error("publish: %s", e.msg);
    return cli_exit_for(&e);
}

int cmd_publish(int argc, char **argv, struct cli_global *g)
{
    static const struct option longopts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        FLEET_LONG_OPTIONS,
        {"to", required_argument, NULL, OPT_TO},
        {"then", required_argument, NULL, OPT_THEN},
        {"then-shell", required_argument, NULL, OPT_THEN_SHELL},
        {"allow-stranded", required_argument, NULL, OPT_ALLOW_STRANDED},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"recover", no_argument, NULL, OPT_RECOVER},
        {NULL, 0, NULL, 0}};
    struct run *r = calloc(1, sizeof *r);
    struct cli_options o = {.longopts = longopts, .usage = publish_usage, .option = publish_option};
    struct publish_audit *audit = NULL;
    struct itl_error e = {0};
    int rc;

    if (!r) {
        cli_error("publish: out of memory");
        return EXIT_SERVICE;
    }
    r->a.allow_stranded = -1;
    r->hook_status = -1;
    o.ctx = &r->a;
    rc = cli_parse_options(argc, argv, g, &o);
    if (rc != EXIT_OK) {
        free(r);
        return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    }
    r->source = optind < argc ? argv[optind] : NULL;
    r->json = g->json;
    if (!r->a.n_to || optind + (r->a.recover ? 0 : 1) != argc ||
        (r->a.allow_stranded >= 0 && !r->a.fleet.n_reports) ||
        (r->a.fleet.n_reports && !r->a.fleet.history)) {
        cli_error("publish: needs one ITL file or configs directory and --to DIR (--reports "
                  "with --history; --allow-stranded with --reports)");
        publish_usage(stderr);
        free(r);
        return EXIT_USAGE;
    }
    if (g->config && !r->a.dry_run && publish_audit_open(g->config, &audit, &e) != 0) {
        cli_error("publish: audit log: %s (nothing is published unaudited)", e.msg);
        free(r);
        return cli_exit_for_io(&e, EXIT_OUTPUT);
    }
    rc = run_publish(r, audit);
    if (rc == EXIT_OK || rc == EXIT_DENIED || rc == EXIT_PARTIAL || rc == EXIT_OUTPUT ||
        r->p.n_files)
        report(r, rc == EXIT_OK        ? (r->a.dry_run ? "dry-run" : "ok")
                  : rc == EXIT_DENIED  ? "refused"
                  : rc == EXIT_PARTIAL ? "hook-failed"
                                       : "failed");
    publish_audit_close(audit);
    publish_free(&r->p);
    free(r);
    return rc;
}
