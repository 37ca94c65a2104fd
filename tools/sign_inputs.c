/* SPDX-License-Identifier: MIT */
/* itl-sign sign's inputs: arguments, directories, --files-from and -0 (sign_batch.h). */
#include "tools/cli.h"
#include "tools/sign_batch.h"
#include "tools/sign_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A list of names is bounded as an input is: 64 MiB holds a million paths. */
#define FILES_FROM_MAX (64u << 20)

static struct sign_item *add_item(struct sign_list *l, char *path)
{
    if (!path)
        return NULL;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct sign_item *n = realloc(l->items, cap * sizeof *n);
        if (!n) {
            free(path);
            return NULL;
        }
        l->items = n;
        l->cap = cap;
    }
    struct sign_item *it = &l->items[l->n++];
    memset(it, 0, sizeof *it);
    it->path = path;
    return it;
}

static char *join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int slash = dl && dir[dl - 1] == '/';
    char *p = malloc(dl + nl + 2);

    if (p) {
        memcpy(p, dir, dl);
        if (!slash)
            p[dl++] = '/';
        memcpy(p + dl, name, nl + 1);
    }
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .sgn of another regular file of the directory: signing that file makes it again. */
static int is_output_of_sibling(char **names, const int *regular, size_t n, const char *name)
{
    size_t len = strlen(name);

    if (len <= 4 || strcmp(name + len - 4, ".sgn") != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (regular[i] && strlen(names[i]) == len - 4 && memcmp(names[i], name, len - 4) == 0)
            return 1;
    return 0;
}

static int read_names(const char *dir, char ***names_out, size_t *n_out)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;

    if (!d) {
        cli_error("%s: cannot read the directory: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') /* hidden, '.' and '..': not inputs */
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                goto oom;
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (!names[n])
            goto oom;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    *names_out = names;
    *n_out = n;
    return 0;
oom:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    cli_error("out of memory reading %s", dir);
    return -1;
}

static int add_directory(struct sign_list *l, const char *dir)
{
    char **names;
    size_t n;
    int *regular, rc = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0 || read_names(dir, &names, &n) != 0) {
        if (dfd >= 0)
            close(dfd);
        else
            cli_error("%s: cannot open the directory: %s", dir, strerror(errno));
        return -1;
    }
    regular = calloc(n ? n : 1, sizeof *regular);
    for (size_t i = 0; regular && i < n; i++) {
        struct stat st;
        regular[i] = fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct sign_item *it = regular ? add_item(l, join(dir, names[i])) : NULL;
        if (!it) {
            cli_error("out of memory listing %s", dir);
            rc = -1;
        } else if (!regular[i]) {
            sign_item_set(it, ITEM_SKIPPED, 0, NULL, "not a regular file", NULL);
        } else if (is_output_of_sibling(names, regular, n, names[i])) {
            sign_item_set(it, ITEM_SKIPPED, 0, NULL,
                          "the .sgn of another file of this directory, which is signed", NULL);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(regular);
    close(dfd);
    return rc;
}

static int add_one(struct sign_list *l, const char *arg)
{
    struct stat st;

    /* A directory by its own name (not through a symbolic link, as files are read). */
    if (lstat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        return add_directory(l, arg);
    if (!add_item(l, strdup(arg))) {
        cli_error("out of memory");
        return -1;
    }
    return 0;
}

int sign_list_add_args(struct sign_list *l, char *const *args, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (add_one(l, args[i]) != 0)
            return -1;
    return 0;
}

static char *read_list(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *data = NULL;
    size_t cap = 0;

    *len = 0;
    if (!f) {
        cli_error("--files-from %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - *len < 4096) {
            cap = cap ? cap * 2 : 65536;
            char *n = cap <= FILES_FROM_MAX + 65536 ? realloc(data, cap + 1) : NULL;
            if (!n) {
                cli_error("--files-from %s: more than %u MiB of names", path, FILES_FROM_MAX >> 20);
                goto fail;
            }
            data = n;
        }
        size_t got = fread(data + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        cli_error("--files-from %s: read error", path);
        goto fail;
    }
    if (f != stdin)
        fclose(f);
    data[*len] = 0;
    return data;
fail:
    if (f != stdin)
        fclose(f);
    free(data);
    return NULL;
}

int sign_list_add_files_from(struct sign_list *l, const char *path, int nul)
{
    size_t len;
    char *data = read_list(path, &len);
    int rc = 0;

    if (!data)
        return -1;
    for (size_t start = 0; start < len && rc == 0;) {
        char *end = memchr(data + start, nul ? '\0' : '\n', len - start);
        size_t stop = end ? (size_t)(end - data) : len;
        data[stop] = 0;
        if (stop > start)
            rc = add_one(l, data + start);
        start = stop + 1;
    }
    free(data);
    return rc;
}

void sign_list_free(struct sign_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].path);
        free(l->items[i].output);
        free(l->items[i].message);
        free(l->items[i].warning);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

void sign_item_set(struct sign_item *it, enum sign_item_state st, int exit_code, const char *output,
                   const char *message, const char *warning)
{
    /* Copies first: message may be it->message itself. */
    char *out = dup_or_null(output), *msg = dup_or_null(message);

    it->state = st;
    it->exit_code = exit_code;
    free(it->output);
    it->output = out;
    free(it->message);
    it->message = msg;
    if (warning && warning[0]) {
        free(it->warning);
        it->warning = strdup(warning);
    }
}

/* ---- the command line of sign ---- */

void sign_usage(FILE *f)
{
    fprintf(f,
            "usage: itl-sign sign [FILE|DIR]... [--files-from LIST [-0|--null]] [--out-dir DIR]\n"
            "                     [--digest sha1|sha256|sha512] [--filename NAME]\n"
            "                     [--timestamp UNIX] [--jobs N] [--itl KNOWN.tlv] [--dry-run]\n"
            "Sign config files with the TFTP key: FILE.sgn next to FILE (or in DIR). A FILE that\n"
            "is already a .sgn is re-signed, never wrapped twice. A DIR gives its regular files\n"
            "(not hidden ones; FILE.sgn is skipped when FILE is there). --files-from LIST ('-':\n"
            "stdin) reads one name per line, or NUL-separated with -0. Exit 0 when all succeeded,\n"
            "8 when some failed (the others are written).\n");
}

int sign_input_option(int opt, const char *arg, void *ctx)
{
    struct sign_inputs *in = ctx;

    if (opt == OPT_FILES_FROM) {
        in->files_from = arg;
        return 1;
    }
    if (opt == '0' || opt == OPT_NUL) {
        in->nul = 1;
        return 1;
    }
    return 0;
}

int sign_collect_inputs(int argc, char **argv, const struct sign_inputs *in, const char *filename,
                        struct sign_list *l, struct sign_item ***work, size_t *n_work)
{
    size_t n = 0;

    if (sign_list_add_args(l, argv + optind, (size_t)(argc - optind)) != 0 ||
        (in->files_from && sign_list_add_files_from(l, in->files_from, in->nul) != 0))
        return EXIT_INPUT;
    if (in->nul && !in->files_from) {
        cli_error("-0 separates the names of --files-from; there is no --files-from");
        return EXIT_USAGE;
    }
    if (l->n == 0) {
        cli_error("no files to sign (give FILE, DIR or --files-from LIST)");
        return EXIT_USAGE;
    }
    *work = calloc(l->n, sizeof **work);
    if (!*work) {
        cli_error("out of memory");
        return EXIT_OUTPUT;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].state != ITEM_SKIPPED)
            (*work)[n++] = &l->items[i];
    *n_work = n;
    if (filename && n > 1) {
        cli_error("--filename names one file; it cannot be used with %zu files", n);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}
