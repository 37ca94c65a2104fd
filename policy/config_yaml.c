/* SPDX-License-Identifier: MIT */
/*
 * Reading the YAML configuration: walks the libyaml document along the table of accepted keys
 * (config.c). Every error names the file, the line and the key path: "itl-signd.yaml:12:
 * policy.backup: 'maybe' is not one of off, warn, require".
 */
#include "policy/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define PATH_TEXT_LEN 160

static const char *const access_keys[] = {"user", "group", "allow", NULL};
static const char *const file_kinds[] = {"itl", "config", NULL};

struct cfg_ctx {
    yaml_document_t *doc;
    const char *name;
    struct itl_error *err;
    struct pol_config *cfg;
    unsigned char *visited; /* per node: a node reached twice came from an alias */
    size_t n_nodes;
};

static int line_of(const yaml_node_t *node)
{
    return (int)node->start_mark.line + 1;
}

static int fail(struct cfg_ctx *c, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct cfg_ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[ITL_ERROR_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(c->err, ITL_E_USAGE, "%s:%d: %s", c->name, node ? line_of(node) : 1, msg);
}

/* The node behind an index; every node is visited once, so a second visit means an alias. */
static yaml_node_t *node_at(struct cfg_ctx *c, int index, const yaml_node_t *parent,
                            const char *path)
{
    yaml_node_t *node = yaml_document_get_node(c->doc, index);

    if (!node || index < 1 || (size_t)index > c->n_nodes) {
        fail(c, parent, "%s: malformed YAML document", path);
        return NULL;
    }
    if (c->visited[index - 1]) {
        fail(c, node, "%s: YAML aliases are not supported here; write the value out", path);
        return NULL;
    }
    c->visited[index - 1] = 1;
    return node;
}

static const char *type_name(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static const char *scalar(struct cfg_ctx *c, const yaml_node_t *node, const char *path,
                          const char *what)
{
    const char *text;

    if (node->type != YAML_SCALAR_NODE) {
        fail(c, node, "%s: expected %s, got %s", path, what, type_name(node));
        return NULL;
    }
    text = (const char *)node->data.scalar.value;
    if (strlen(text) != node->data.scalar.length) {
        fail(c, node, "%s: NUL byte in value", path);
        return NULL;
    }
    return text;
}

static void quoted(const char *text, char *out, size_t size)
{
    pol_printable(text, 64, out, size);
}

/* ---- values ---- */

static int parse_unsigned(const char *text, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!isdigit((unsigned char)*text))
        return -1;
    for (; isdigit((unsigned char)*text); text++) {
        if (v > (ULLONG_MAX - (unsigned)(*text - '0')) / 10)
            return -1;
        v = v * 10 + (unsigned)(*text - '0');
    }
    *out = v;
    return *text ? -1 : 0;
}

static int check_text(struct cfg_ctx *c, const yaml_node_t *node, const char *path,
                      const char *text, size_t size)
{
    char shown[80];

    if (text[0] == '\0')
        return fail(c, node, "%s: must not be empty", path);
    if (strlen(text) >= size)
        return fail(c, node, "%s: too long (at most %zu bytes)", path, size - 1);
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            quoted(text, shown, sizeof shown);
            return fail(c, node, "%s: control character in '%s'", path, shown);
        }
    return 0;
}

static int set_string(struct cfg_ctx *c, const struct pol_field *f, const yaml_node_t *node,
                      const char *path)
{
    char *dst = (char *)c->cfg + f->offset, shown[80];
    const char *text = scalar(c, node, path, "a string");

    if (!text || check_text(c, node, path, text, f->size) != 0)
        return -1;
    quoted(text, shown, sizeof shown);
    if (f->kind == POL_F_PATH && text[0] != '/')
        return fail(c, node, "%s: '%s' is not an absolute path", path, shown);
    if (f->kind == POL_F_URI && strncmp(text, "pkcs11:", 7) != 0)
        return fail(c, node, "%s: '%s' is not a pkcs11: URI (RFC 7512)", path, shown);
    memcpy(dst, text, strlen(text) + 1);
    return 0;
}

static int set_number(struct cfg_ctx *c, const struct pol_field *f, const yaml_node_t *node,
                      const char *path)
{
    void *dst = (char *)c->cfg + f->offset;
    const char *text = scalar(c, node, path, "a number");
    unsigned long long v;
    char shown[80];

    if (!text)
        return -1;
    quoted(text, shown, sizeof shown);
    if (f->kind == POL_F_SECONDS || f->kind == POL_F_MILLIS) {
        long secs = pol_parse_duration(text);
        if (secs < 0)
            return fail(c, node,
                        "%s: '%s' is not a duration (seconds, or a number with s, m, h or d: "
                        "90s, 5m, 1h, 2d)",
                        path, shown);
        v = (unsigned long long)secs;
    } else if (f->kind == POL_F_MODE) {
        char *end;
        errno = 0;
        v = strtoull(text, &end, 8);
        if (!isdigit((unsigned char)text[0]) || *end || errno)
            return fail(c, node, "%s: '%s' is not an octal file mode like \"0660\"", path, shown);
    } else if (parse_unsigned(text, &v) != 0) {
        return fail(c, node, "%s: '%s' is not a whole number", path, shown);
    }
    if (v < f->min || v > f->max) {
        if (f->kind == POL_F_SECONDS || f->kind == POL_F_MILLIS)
            return fail(c, node, "%s: '%s' is out of range (%llus to %llus)", path, shown, f->min,
                        f->max);
        if (f->kind == POL_F_MODE)
            return fail(c, node, "%s: '%s' is not a file mode (at most 07777)", path, shown);
        return fail(c, node, "%s: %s is out of range (%llu to %llu)", path, shown, f->min, f->max);
    }
    switch (f->kind) {
    case POL_F_SIZE:
        *(size_t *)dst = (size_t)v;
        break;
    case POL_F_SECONDS:
        *(long *)dst = (long)v;
        break;
    case POL_F_MILLIS:
        *(unsigned *)dst = (unsigned)(v * 1000);
        break;
    default:
        *(unsigned *)dst = (unsigned)v;
        break;
    }
    return 0;
}

static int set_enum(struct cfg_ctx *c, const struct pol_field *f, const yaml_node_t *node,
                    const char *path)
{
    const char *text = scalar(c, node, path, "a name");
    char shown[80], names[128], hint[96];

    if (!text)
        return -1;
    for (int i = 0; f->names[i]; i++)
        if (strcmp(text, f->names[i]) == 0) {
            int value = f->first + i;
            memcpy((char *)c->cfg + f->offset, &value, sizeof value);
            return 0;
        }
    quoted(text, shown, sizeof shown);
    pol_join_names(f->names, names, sizeof names);
    pol_did_you_mean(text, f->names, hint, sizeof hint);
    return fail(c, node, "%s: '%s' is not one of %s%s", path, shown, names, hint);
}

/* A list of names from `names`, each at most once, as bits (1u << index in names). */
static int name_list(struct cfg_ctx *c, const yaml_node_t *node, const char *path,
                     const char *const *names, const char *what, unsigned *bits)
{
    char shown[80], all[128], hint[96];

    if (node->type != YAML_SEQUENCE_NODE)
        return fail(c, node, "%s: expected a list like [%s], got %s", path, names[0],
                    type_name(node));
    *bits = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        yaml_node_t *item = node_at(c, *it, node, path);
        const char *text;
        int found = -1;

        if (!item || !(text = scalar(c, item, path, "a name")))
            return -1;
        for (int i = 0; names[i]; i++)
            if (strcmp(text, names[i]) == 0)
                found = i;
        quoted(text, shown, sizeof shown);
        if (found < 0) {
            pol_join_names(names, all, sizeof all);
            pol_did_you_mean(text, names, hint, sizeof hint);
            return fail(c, item, "%s: '%s' is not %s (one of %s)%s", path, shown, what, all, hint);
        }
        if (*bits & (1u << found))
            return fail(c, item, "%s: '%s' is listed twice", path, shown);
        *bits |= 1u << found;
    }
    return 0;
}

static int set_files(struct cfg_ctx *c, const struct pol_field *f, const yaml_node_t *node,
                     const char *path)
{
    unsigned bits;
    if (name_list(c, node, path, file_kinds, "a file kind", &bits) != 0)
        return -1;
    /* bit i of the list is file kind (1 << i): POL_FILE_ITL = 1, POL_FILE_CONFIG = 2 */
    *(unsigned *)((char *)c->cfg + f->offset) = bits;
    return 0;
}

/* ---- mappings ---- */

static int parse_field(struct cfg_ctx *c, const struct pol_field *f, yaml_node_t *node,
                       const char *path);

/* A key's path for messages ("token.pin-file", "access[2].user"). */
static void child_path(char *out, const char *parent, const char *key)
{
    text_printf(out, PATH_TEXT_LEN, "%s%s%s", parent, parent[0] ? "." : "", key);
}

static int parse_mapping(struct cfg_ctx *c, const struct pol_field *fields, yaml_node_t *node,
                         const char *path)
{
    const char *names[24];
    size_t n_names = 0;

    for (const struct pol_field *f = fields; f->key && n_names < 23; f++)
        names[n_names++] = f->key;
    names[n_names] = NULL;

    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "%s: expected a mapping of keys, got %s", path[0] ? path : "config",
                    type_name(node));
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *knode = node_at(c, pair->key, node, path), *value;
        const struct pol_field *f;
        const char *key;
        char sub[PATH_TEXT_LEN], shown[80], hint[96];

        if (!knode || !(key = scalar(c, knode, path[0] ? path : "config", "a key")))
            return -1;
        for (f = fields; f->key && strcmp(f->key, key) != 0; f++)
            ;
        quoted(key, shown, sizeof shown);
        if (!f->key) {
            pol_did_you_mean(key, names, hint, sizeof hint);
            return fail(c, knode, "unknown key '%s' %s%s%s", shown,
                        path[0] ? "in " : "at top level", path, hint);
        }
        for (yaml_node_pair_t *prev = node->data.mapping.pairs.start; prev < pair; prev++) {
            yaml_node_t *pk = yaml_document_get_node(c->doc, prev->key);
            if (pk && pk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)pk->data.scalar.value, key) == 0) {
                child_path(sub, path, key);
                return fail(c, knode, "%s: duplicate key (first given on line %d)", sub,
                            line_of(pk));
            }
        }
        child_path(sub, path, key);
        if (!(value = node_at(c, pair->value, knode, sub)) || parse_field(c, f, value, sub) != 0)
            return -1;
    }
    return 0;
}

/* `socket: /run/itl-sign/socket` or `socket: {path: ..., mode: "0660", ...}` */
static int parse_socket(struct cfg_ctx *c, const struct pol_field *f, yaml_node_t *node,
                        const char *path)
{
    if (node->type == YAML_SCALAR_NODE)
        return set_string(c, &f->fields[0], node, path);
    return parse_mapping(c, f->fields, node, path);
}

/* ---- access rules ---- */

static int check_id_name(struct cfg_ctx *c, const yaml_node_t *node, const char *path,
                         const char *text)
{
    char shown[80];

    if (check_text(c, node, path, text, POL_NAME_LEN) != 0)
        return -1;
    for (const char *p = text; *p; p++)
        if (isspace((unsigned char)*p) || *p == ':' || *p == ',') {
            quoted(text, shown, sizeof shown);
            return fail(c, node, "%s: '%s' is not a user or group name or numeric id", path, shown);
        }
    return 0;
}

static int parse_access_rule(struct cfg_ctx *c, yaml_node_t *node, const char *path,
                             struct pol_access_rule *rule)
{
    int have_who = 0, have_allow = 0;

    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "%s: expected a mapping like { group: NAME, allow: [sign] }, got %s",
                    path, type_name(node));
    memset(rule, 0, sizeof *rule);
    rule->line = line_of(node);
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *knode = node_at(c, pair->key, node, path), *value;
        const char *key, *text;
        char sub[PATH_TEXT_LEN], shown[80], hint[96];

        if (!knode || !(key = scalar(c, knode, path, "a key")))
            return -1;
        child_path(sub, path, key);
        quoted(key, shown, sizeof shown);
        if (!(value = node_at(c, pair->value, knode, sub)))
            return -1;
        if (strcmp(key, "allow") == 0) {
            if (have_allow)
                return fail(c, knode, "%s: duplicate key", sub);
            have_allow = 1;
            static const char *const ops[] = {"reset",  "build", "sign",   "encrypt",
                                              "status", "key",   "unlock", NULL};
            _Static_assert(POL_OP_COUNT == 7, "ops[] lists every pol_op");
            if (name_list(c, value, sub, ops, "an operation", &rule->allow) != 0)
                return -1;
            if (rule->allow == 0)
                return fail(c, value, "%s: empty list (name at least one operation)", sub);
        } else if (strcmp(key, "user") == 0 || strcmp(key, "group") == 0) {
            if (have_who)
                return fail(c, knode, "%s: a rule names one user or one group", sub);
            have_who = 1;
            rule->is_group = key[0] == 'g';
            if (!(text = scalar(c, value, sub, "a name or numeric id")) ||
                check_id_name(c, value, sub, text) != 0)
                return -1;
            memcpy(rule->name, text, strlen(text) + 1);
        } else {
            pol_did_you_mean(key, access_keys, hint, sizeof hint);
            return fail(c, knode, "unknown key '%s' in %s%s", shown, path, hint);
        }
    }
    if (!have_who)
        return fail(c, node, "%s: a rule needs 'user' or 'group'", path);
    if (!have_allow)
        return fail(c, node, "%s: a rule needs 'allow' (a list of operations)", path);
    return 0;
}

static int parse_access(struct cfg_ctx *c, yaml_node_t *node, const char *path)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return fail(c, node, "%s: expected a list of rules, got %s", path, type_name(node));
    c->cfg->n_access = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        char sub[PATH_TEXT_LEN];
        yaml_node_t *item;

        text_printf(sub, sizeof sub, "%s[%zu]", path, c->cfg->n_access);
        if (!(item = node_at(c, *it, node, sub)))
            return -1;
        if (c->cfg->n_access == POL_MAX_ACCESS_RULES)
            return fail(c, item, "%s: too many rules (at most %d)", path, POL_MAX_ACCESS_RULES);
        if (parse_access_rule(c, item, sub, &c->cfg->access[c->cfg->n_access]) != 0)
            return -1;
        c->cfg->n_access++;
    }
    return 0;
}

static int parse_field(struct cfg_ctx *c, const struct pol_field *f, yaml_node_t *node,
                       const char *path)
{
    switch (f->kind) {
    case POL_F_STRING:
    case POL_F_PATH:
    case POL_F_URI:
        return set_string(c, f, node, path);
    case POL_F_SIZE:
    case POL_F_UINT:
    case POL_F_SECONDS:
    case POL_F_MILLIS:
    case POL_F_MODE:
        return set_number(c, f, node, path);
    case POL_F_ENUM:
        return set_enum(c, f, node, path);
    case POL_F_FILES:
        return set_files(c, f, node, path);
    case POL_F_MAP:
        return parse_mapping(c, f->fields, node, path);
    case POL_F_SOCKET:
        return parse_socket(c, f, node, path);
    case POL_F_ACCESS:
        return parse_access(c, node, path);
    }
    return fail(c, node, "%s: internal error: unknown field kind", path);
}

/* Rules that involve more than one key. */
static int check_whole(struct cfg_ctx *c)
{
    static const char *const roles[POL_KEY_COUNT] = {
        [POL_KEY_RECOVERY] = "recovery", [POL_KEY_TFTP] = "tftp"};
    uint8_t id[64];

    for (int r = 0; r < POL_KEY_COUNT; r++) {
        const char *hex = c->cfg->keys[r].id;
        size_t n = strlen(hex);
        if (n && (n % 2 || n / 2 > sizeof id || hex_decode(hex, id, n / 2) != 0))
            return err_set(c->err, ITL_E_USAGE,
                           "%s: keys.%s.id '%s' is not a CKA_ID: give 1 to 64 bytes as hex "
                           "without separators (as `itl-sign key list` prints it)",
                           c->name, roles[r], hex);
    }
    if (pol_config_check_unlock(c->cfg, c->name, c->err) != 0)
        return -1;
    if (strcmp(c->cfg->keys[POL_KEY_RECOVERY].label, c->cfg->keys[POL_KEY_TFTP].label) == 0)
        return err_set(c->err, ITL_E_USAGE,
                       "%s: keys.recovery.label and keys.tftp.label are both '%s': the ITL "
                       "Recovery key must be a key of its own",
                       c->name, c->cfg->keys[POL_KEY_TFTP].label);
    return 0;
}

static int load_document(struct cfg_ctx *c, yaml_parser_t *parser, yaml_document_t *doc)
{
    if (yaml_parser_load(parser, doc))
        return 0;
    return err_set(c->err, ITL_E_USAGE, "%s:%zu: YAML syntax error: %s%s%s", c->name,
                   (parser->problem_mark.line + 1), parser->problem ? parser->problem : "malformed",
                   parser->context ? " " : "", parser->context ? parser->context : "");
}

int pol_config_parse(const char *text, size_t len, const char *name, struct pol_config *cfg,
                     struct itl_error *err)
{
    struct cfg_ctx c = {.name = name && name[0] ? name : "<config>", .err = err, .cfg = cfg};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_node_t *root;
    int rc = -1;

    pol_config_defaults(cfg);
    if (name)
        snprintf(cfg->path, sizeof cfg->path, "%s", name);
    if (len > POL_CONFIG_MAX_BYTES)
        return err_set(err, ITL_E_USAGE, "%s: too large (%zu bytes, at most %d)", c.name, len,
                       POL_CONFIG_MAX_BYTES);
    if (!yaml_parser_initialize(&parser))
        return err_set(err, ITL_E_USAGE, "%s: out of memory", c.name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (load_document(&c, &parser, &doc) != 0) {
        yaml_parser_delete(&parser);
        return -1;
    }
    c.doc = &doc;
    c.n_nodes = (size_t)(doc.nodes.top - doc.nodes.start);
    root = yaml_document_get_root_node(&doc);
    if (root) {
        if (load_document(&c, &parser, &extra) != 0)
            goto out;
        int more = yaml_document_get_root_node(&extra) != NULL;
        size_t extra_line = extra.start_mark.line + 1;
        yaml_document_delete(&extra);
        if (more) {
            err_set(err, ITL_E_USAGE, "%s:%zu: a second YAML document; the config is one document",
                    c.name, extra_line);
            goto out;
        }
    }
    c.visited = calloc(c.n_nodes ? c.n_nodes : 1, 1);
    if (!c.visited) {
        err_set(err, ITL_E_USAGE, "%s: out of memory", c.name);
        goto out;
    }
    if (root) {
        c.visited[0] = 1; /* the root is node 1 */
        if (parse_mapping(&c, pol_config_fields, root, "") != 0)
            goto out;
    }
    rc = check_whole(&c);
out:
    free(c.visited);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int pol_config_load(const char *path, struct pol_config *cfg, struct itl_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    char *text;
    ssize_t n;
    size_t got = 0;
    int rc;

    pol_config_defaults(cfg);
    if (fd < 0)
        return err_set(err, ITL_E_USAGE, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, ITL_E_USAGE, "%s: not a regular file", path);
    }
    if (st.st_size > POL_CONFIG_MAX_BYTES) {
        close(fd);
        return err_set(err, ITL_E_USAGE, "%s: too large (%lld bytes, at most %d)", path,
                       (long long)st.st_size, POL_CONFIG_MAX_BYTES);
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        close(fd);
        return err_set(err, ITL_E_USAGE, "%s: out of memory", path);
    }
    while (got < (size_t)st.st_size &&
           ((n = read(fd, text + got, (size_t)st.st_size - got)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            got += (size_t)n;
    close(fd);
    if (got != (size_t)st.st_size) {
        free(text);
        return err_set(err, ITL_E_USAGE, "%s: read failed", path);
    }
    rc = pol_config_parse(text, got, path, cfg, err);
    free(text);
    return rc;
}
