/* SPDX-License-Identifier: MIT */
/* itl-sign publish: would the phones behind each target take the new file(s)? (publish.h) */
#include "tools/publish.h"

#include "tools/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int load_file(struct publish_file *f, const char *path, const char *name,
                     struct itl_error *err)
{
    memset(f, 0, sizeof *f);
    text_printf(f->name, sizeof f->name, "%s", name);
    if (file_read(path, FILE_NOFOLLOW, FLEET_FILE_LIMIT, &f->data, &f->len, err) != 0)
        return -1;
    EVP_Digest(f->data, f->len, f->sha1, NULL, EVP_sha1(), NULL);
    if (itl_parse(f->data, f->len, ITL_KIND_AUTO, &f->f, err) != 0) {
        free(f->data);
        f->data = NULL;
        return err_prefix(err, "%s: ", path);
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct publish_file *)a)->name, ((const struct publish_file *)b)->name);
}

/* Every regular *.sgn of the directory (a symlink or other entry is skipped with a warning). */
static int load_configs(struct publish *p, const char *dir, struct itl_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return err_errno(err, errno, "cannot open the configs directory %s", dir);
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        struct publish_file *grown;
        size_t n = strlen(de->d_name);

        if (de->d_name[0] == '.' || n < 5 || strcmp(de->d_name + n - 4, ".sgn") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            cli_warn("publish: %s: not a regular file, skipped", path);
            continue;
        }
        grown = p->n_files < PUBLISH_MAX_FILES ? realloc(p->files, (p->n_files + 1) * sizeof *grown)
                                               : NULL;
        if (!grown) {
            closedir(d);
            return err_set(err, ITL_E_USAGE, "%s: at most %d configs in one batch", dir,
                           PUBLISH_MAX_FILES);
        }
        p->files = grown;
        if (load_file(&p->files[p->n_files], path, de->d_name, err) != 0) {
            closedir(d);
            return -1;
        }
        p->n_files++;
        if (p->files[p->n_files - 1].f.kind == ITL_KIND_TLV) {
            closedir(d);
            return err_set(err, ITL_E_INPUT, "%s is an ITL/CTL, not a config: publish it alone",
                           path);
        }
    }
    closedir(d);
    if (p->n_files == 0)
        return err_set(err, ITL_E_INPUT, "%s holds no .sgn config", dir);
    qsort(p->files, p->n_files, sizeof p->files[0], by_name);
    return 0;
}

/* Phones ask for the name the file carries (FILENAME, "ITLFile.tlv"), whatever the source file
 * is called here (ITLFile-new.tlv). */
static int name_from_header(struct publish_file *f, const char *path, struct itl_error *err)
{
    char name[ITL_MAX_NAME + 1];
    const struct itl_bytes *fn = &f->f.hdr.filename;

    if (!fn->ptr || fn->len == 0 || fn->len > ITL_MAX_NAME)
        return err_set(err, ITL_E_INPUT, "%s carries no FILENAME to publish it under", path);
    memcpy(name, fn->ptr, fn->len);
    name[fn->len] = 0;
    if (itl_check_name(name, ITL_KIND_TLV, 0, err) != 0)
        return err_prefix(err, "%s: FILENAME: ", path);
    /* Under any other name it would land beside the phones' file, where none asks for it
     * (CTLSEP<MAC>.tlv and ITLSEP<MAC>.tlv carry these FILENAMEs too, docs/format.md). */
    if (strcmp(name, "ITLFile.tlv") != 0 && strcmp(name, "CTLFile.tlv") != 0) {
        const char *fix = itl_list_of(&f->f) == ITL_LIST_CTL ? "CTLFile.tlv" : "ITLFile.tlv";
        return err_set(err, ITL_E_DENIED,
                       "%s: its FILENAME field is \"%s\", a name no phone fetches (phones ask "
                       "for ITLFile.tlv and CTLFile.tlv; publish serves a file under its "
                       "FILENAME): nothing published; build it again with `itl-sign build "
                       "--filename %s ...`",
                       path, name, fix);
    }
    text_printf(f->name, sizeof f->name, "%s", name);
    return 0;
}

int publish_load_source(struct publish *p, const char *path, struct itl_error *err)
{
    struct stat st;
    const char *base = strrchr(path, '/');

    p->stranded = p->unknown = p->rescuable = -1;
    if (lstat(path, &st) != 0)
        return err_errno(err, errno, "%s", path);
    if (S_ISDIR(st.st_mode)) {
        p->configs = 1;
        return load_configs(p, path, err);
    }
    p->files = calloc(1, sizeof *p->files);
    if (!p->files)
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    if (load_file(&p->files[0], path, base ? base + 1 : path, err) != 0)
        return -1;
    p->n_files = 1;
    if (p->files[0].f.kind != ITL_KIND_TLV)
        return err_set(err, ITL_E_INPUT,
                       "%s is a %s: publish an ITL/CTL file, or a directory of .sgn configs", path,
                       itl_kind_name(p->files[0].f.kind));
    return name_from_header(&p->files[0], path, err);
}

/* The target's file of this name now, read without following a symlink. 0 absent, 1 read. */
static int read_current(const char *dir, const char *name, struct fleet_itl *cur,
                        struct itl_error *err)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return err_errno(err, errno, "%s", path);
    }
    if (!S_ISREG(st.st_mode))
        return err_set(err, ITL_E_DENIED,
                       "%s is not a regular file (a symbolic link is never followed or replaced "
                       "in a target): remove it",
                       path);
    if (fleet_itl_load(path, name, cur, err) != 0)
        return err_prefix(err, "the target's current file cannot be checked: ");
    return 1;
}

static void reason(struct fleet_verdict *v, const char *text)
{
    if (v->n_reasons < FLEET_MAX_REASONS)
        text_printf(v->reasons[v->n_reasons++], sizeof v->reasons[0], "%s", text);
}

static int check_itl(struct publish *p, struct publish_target *t, struct itl_error *err)
{
    const struct publish_file *nf = &p->files[0];
    struct fleet_itl cur;
    int rc = read_current(t->dir, nf->name, &cur, err);

    if (rc < 0)
        return -1;
    t->has_current = rc;
    if (!rc) {
        t->v.action = FLEET_ACCEPT;
        reason(&t->v, "no current file in the target: a phone with no ITL takes the first one "
                      "it downloads");
        return 0;
    }
    memcpy(t->current_sha1, cur.sha1, ITL_SHA1_LEN);
    t->unchanged = memcmp(cur.sha1, nf->sha1, ITL_SHA1_LEN) == 0;
    if (t->unchanged) {
        t->v.action = FLEET_ACCEPT;
        reason(&t->v, "the target holds these bytes already");
    } else {
        fleet_decide(&cur.f, &(struct fleet_itl){.f = nf->f}, &p->tvs, &t->v); /* a signed file */
    }
    fleet_itl_free(&cur);
    return 0;
}

/* Configs: every one must verify with a TFTP record of the ITL the target serves. */
static int check_configs(struct publish *p, struct publish_target *t, struct itl_error *err)
{
    struct fleet_itl itl;
    int rc = read_current(t->dir, "ITLFile.tlv", &itl, err);

    if (rc < 0)
        return -1;
    t->v.action = FLEET_ACCEPT;
    if (!rc) {
        reason(&t->v, "no ITLFile.tlv in the target: nothing to check the configs against");
        return 0;
    }
    t->has_current = 1;
    memcpy(t->current_sha1, itl.sha1, ITL_SHA1_LEN);
    for (size_t i = 0; i < p->n_files; i++) {
        struct itl_trust_verdict tv;
        char text[1400];
        if (itl_trust_decide(&itl.f, &p->files[i].f, NULL, &tv) != ITL_TRUST_NONE)
            continue;
        t->v.action = FLEET_REJECT;
        text_printf(text, sizeof text, "%s: %s", p->files[i].name, tv.why);
        reason(&t->v, text);
    }
    if (t->v.action == FLEET_ACCEPT)
        reason(&t->v, "every config verifies with a TFTP record of the target's ITLFile.tlv");
    fleet_itl_free(&itl);
    return 0;
}

int publish_check_targets(struct publish *p, const struct fleet_args *a, struct itl_error *err)
{
    if (!p->configs && fleet_tvs_load(&p->tvs, a, &p->files[0].f, err) != 0)
        return -1;
    for (size_t i = 0; i < p->n_targets; i++) {
        struct publish_target *t = &p->targets[i];
        if ((p->configs ? check_configs(p, t, err) : check_itl(p, t, err)) != 0)
            return -1;
    }
    return 0;
}

struct report_count {
    struct fleet_judge j;
    struct publish *p;
};

static int count_report(void *ctx, const struct itl_report *r)
{
    struct report_count *c = ctx;
    const struct fleet_itl *h;
    struct fleet_verdict scratch;
    const struct fleet_verdict *v = fleet_judge_report(&c->j, r, &h, &scratch);

    c->p->stranded += v->outcome == FLEET_STRANDED;
    c->p->unknown += v->outcome == FLEET_UNKNOWN;
    c->p->rescuable += v->outcome == FLEET_RESCUABLE;
    return 0;
}

int publish_check_reports(struct publish *p, const struct fleet_args *a, struct itl_error *err)
{
    struct fleet_history hist = {0};
    struct fleet_itl new_itl = {0};
    struct report_count c = {.p = p};
    int rc = -1;

    if (fleet_history_load(&hist, a->history, "publish", err) != 0)
        goto out;
    if (a->current) {
        struct fleet_itl cur;
        if (fleet_itl_load(a->current, a->current, &cur, err) != 0 ||
            fleet_history_add(&hist, &cur, err) != 0)
            goto out;
    }
    for (size_t i = 0; i < p->n_targets; i++) { /* what phones hold now is served now */
        struct fleet_itl cur;
        int got = read_current(p->targets[i].dir, p->files[0].name, &cur, err);
        if (got < 0 || (got && fleet_history_add(&hist, &cur, err) != 0))
            goto out;
    }
    /* the new ITL as the judge sees it: the same bytes, parsed once more */
    memcpy(new_itl.sha1, p->files[0].sha1, ITL_SHA1_LEN);
    new_itl.f = p->files[0].f;
    if (fleet_judge_init(&c.j, &hist, &new_itl, &p->tvs, err) != 0)
        goto out;
    p->stranded = p->unknown = p->rescuable = 0;
    rc = fleet_read_reports(a, "publish", count_report, &c, err);
    fleet_judge_free(&c.j);
out:
    fleet_history_free(&hist);
    return rc;
}

void publish_free(struct publish *p)
{
    for (size_t i = 0; i < p->n_files; i++) {
        if (p->files[i].data)
            itl_file_free(&p->files[i].f);
        free(p->files[i].data);
    }
    free(p->files);
    fleet_tvs_free(&p->tvs);
}
