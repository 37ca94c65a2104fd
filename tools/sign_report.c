/* SPDX-License-Identifier: MIT */
/* What a batch of `sign` reports: each warning once, the summary line, the progress bar, the
 * --json document (sign_batch.h). */
#include "tools/cli.h"
#include "tools/sign_batch.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Shorter batches finish before a bar would be read. */
#define PROGRESS_MIN_FILES 20
#define PROGRESS_WIDTH 40

void sign_progress_init(struct sign_progress *p, size_t total, int quiet)
{
    p->total = total;
    atomic_init(&p->done, 0);
    p->drawn = 0;
    p->on = !quiet && !cli_json_on() && total >= PROGRESS_MIN_FILES && isatty(STDOUT_FILENO) &&
            isatty(STDERR_FILENO);
}

static void draw(struct sign_progress *p, size_t done)
{
    size_t fill = p->total ? done * PROGRESS_WIDTH / p->total : PROGRESS_WIDTH;
    char bar[PROGRESS_WIDTH + 1];

    memset(bar, '#', fill);
    memset(bar + fill, '.', PROGRESS_WIDTH - fill);
    bar[PROGRESS_WIDTH] = 0;
    fprintf(stderr, "\r[%s] %zu/%zu files", bar, done, p->total);
    fflush(stderr);
    p->drawn = done;
}

void sign_progress_tick(struct sign_progress *p)
{
    size_t done = atomic_fetch_add(&p->done, 1) + 1;

    if (!p->on)
        return;
    /* At most once per percent, and the last one always. */
    if (done == p->total || (done - p->drawn) * 100 >= p->total)
        draw(p, done);
}

void sign_progress_clear(struct sign_progress *p)
{
    if (p->on && p->drawn) {
        fputs("\r\033[K", stderr);
        p->drawn = 0;
    }
}

void sign_print_path(FILE *f, const char *path)
{
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c == '\\')
            fputs("\\\\", f);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c == '\t')
            fputs("\\t", f);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
}

static const char *state_name(enum sign_item_state s)
{
    switch (s) {
    case ITEM_SIGNED:
        return "signed";
    case ITEM_WOULD:
        return "would-sign";
    case ITEM_FAILED:
        return "failed";
    case ITEM_SKIPPED:
        return "skipped";
    case ITEM_PENDING:
        break;
    }
    return "failed"; /* never reached: every item ends in one of the others */
}

/* Each distinct warning with the number of files it came with, in order of first sight. */
static void print_warnings_once(const struct sign_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *w = l->items[i].warning;
        size_t count = 0, first = 1;
        if (!w)
            continue;
        for (size_t k = 0; k < l->n && first; k++) {
            const char *o = l->items[k].warning;
            if (o && strcmp(o, w) == 0) {
                if (k < i)
                    first = 0;
                count++;
            }
        }
        if (!first)
            continue;
        if (count > 1)
            cli_warn("%s (%zu files)", w, count);
        else
            cli_warn("%s", w);
    }
}

static void print_json(const struct sign_list *l, int dry_run, const size_t counts[])
{
    struct cli_json j;

    cli_json_begin(&j);
    cli_json_str(&j, "command", "sign");
    cli_json_bool(&j, "dry_run", dry_run);
    cli_json_int(&j, "signed", (long long)counts[ITEM_SIGNED] + (long long)counts[ITEM_WOULD]);
    cli_json_int(&j, "failed", (long long)counts[ITEM_FAILED]);
    cli_json_int(&j, "skipped", (long long)counts[ITEM_SKIPPED]);
    cli_json_open(&j, "files", '[');
    for (size_t i = 0; i < l->n; i++) {
        const struct sign_item *it = &l->items[i];
        cli_json_elem(&j);
        buf_puts(&j.b, "{\"file\":");
        json_cstring(&j.b, it->path);
        buf_puts(&j.b, ",\"output\":");
        json_cstring(&j.b, it->output);
        buf_puts(&j.b, ",\"status\":");
        json_cstring(&j.b, state_name(it->state));
        buf_puts(&j.b, ",\"message\":");
        json_cstring(&j.b, it->message);
        buf_puts(&j.b, ",\"warnings\":[");
        if (it->warning)
            json_cstring(&j.b, it->warning);
        buf_puts(&j.b, "]}");
    }
    cli_json_close(&j, ']');
    cli_json_print(&j);
}

void sign_report_batch(const struct sign_list *l, int dry_run, int quiet)
{
    size_t counts[ITEM_SKIPPED + 1] = {0};

    for (size_t i = 0; i < l->n; i++)
        counts[l->items[i].state]++;
    if (cli_json_on()) {
        print_json(l, dry_run, counts);
        return;
    }
    if (!quiet)
        print_warnings_once(l);
    if (quiet && !counts[ITEM_FAILED] && !counts[ITEM_PENDING])
        return;
    /* One file signed cleanly needs no summary; a batch, a failure or a skip does. */
    if (l->n > 1 || counts[ITEM_FAILED] || counts[ITEM_SKIPPED] || counts[ITEM_PENDING])
        fprintf(stderr, "itl-sign: %zu %s, %zu failed, %zu skipped\n",
                counts[ITEM_SIGNED] + counts[ITEM_WOULD], dry_run ? "would be signed" : "signed",
                counts[ITEM_FAILED] + counts[ITEM_PENDING], counts[ITEM_SKIPPED]);
}
