/* SPDX-License-Identifier: MIT */
/*
 * itl-signd --check-config: the config loads (main did that), the module file exists, the PIN
 * file passes the secret rule (pkcs11/pin.c), the socket, state and audit directories are safe
 * or can be made, and the run-as user has what it needs (usercheck.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkcs11/token.h"
#include "signer/server.h"

static int check_module(const struct pol_config *cfg, struct itl_error *err)
{
    struct stat st;

    /* A bare name is a p11-kit module name, resolved only when it is loaded. */
    if (cfg->token.module[0] != '/')
        return 0;
    if (stat(cfg->token.module, &st) != 0)
        return err_errno(err, errno, "token.module %s", cfg->token.module);
    if (!S_ISREG(st.st_mode))
        return err_set(err, ITL_E_USAGE, "token.module %s is not a regular file",
                       cfg->token.module);
    return 0;
}

static int check_pin_file(const struct pol_config *cfg, const struct srv_ids *ids,
                          struct itl_error *err)
{
    int fd;

    (void)ids; /* the PIN is read before the drop: pkcs11/pin.c's rule for the reading uid */
    if (!cfg->token.pin_file[0])
        return 0;
    fd = tok_secret_open(cfg->token.pin_file, "token.pin-file", err);
    if (fd < 0)
        return -1;
    close(fd); /* the PIN itself is read only when the service starts */
    return 0;
}

/* An existing dir must be safe; a missing one will be created, so its parent must exist. */
static int check_dir_or_parent(const char *what, const char *dir, const struct srv_ids *ids,
                               struct itl_error *err)
{
    char parent[1024];
    struct stat st;

    if (stat(dir, &st) == 0)
        return srv_check_dir(what, dir, ids, err);
    if (errno != ENOENT)
        return err_errno(err, errno, "%s %s", what, dir);
    srv_dirname(dir, parent, sizeof parent);
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ITL_E_IO, "%s %s is missing and cannot be created: %s does not exist",
                       what, dir, parent);
    return 0;
}

int srv_check_config(const struct pol_config *cfg, const struct srv_ids *ids)
{
    struct itl_error err;
    char sock_dir[1024], audit_dir[1024];
    struct buf problems = {0};
    const char *text;

    srv_dirname(cfg->socket.path, sock_dir, sizeof sock_dir);
    srv_dirname(cfg->audit_log, audit_dir, sizeof audit_dir);
    if (check_module(cfg, &err) != 0 || check_pin_file(cfg, ids, &err) ||
        check_dir_or_parent("socket directory", sock_dir, ids, &err) != 0 ||
        check_dir_or_parent("state directory", cfg->state_dir, ids, &err) != 0 ||
        check_dir_or_parent("audit log directory", audit_dir, ids, &err) != 0) {
        fprintf(stderr, "itl-signd: %s: %s\n", cfg->path, err.msg);
        return -1;
    }
    /* Root checks for the user it will drop to; that user checks for itself. */
    if (srv_check_as_user(cfg, ids, &problems) != 0) {
        text = buf_str(&problems);
        for (const char *line = text ? text : "out of memory"; *line;) {
            size_t n = strcspn(line, "\n");
            fprintf(stderr, "itl-signd: %s: %.*s\n", cfg->path, (int)n, line);
            line += n + (line[n] == '\n');
        }
        buf_free(&problems);
        return -1;
    }
    buf_free(&problems);
    printf("config OK\n");
    return 0;
}
