/* SPDX-License-Identifier: MIT */
/* itl-sign publish: the history copy, the hook and the audit record (publish.h). */
#include "tools/publish.h"

#include "policy/policy.h"
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int publish_history_copy(const struct publish_file *f, const char *dir, char *out, size_t size,
                         struct itl_error *err)
{
    char name[2 * ITL_SHA1_LEN + 8];
    struct stat st;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

    hex_lower(f->sha1, ITL_SHA1_LEN, 0, name, sizeof name);
    strcat(name, ".tlv");
    text_printf(out, size, "%s/%s", dir, name);
    if (dfd < 0)
        return err_errno(err, errno, "history directory %s", dir);
    /* named by its bytes: one that is there is this file already */
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        rc = file_replace_at(dfd, name, f->data, f->len, 0644, (uid_t)-1, (gid_t)-1, err);
    close(dfd);
    return rc;
}

#define HOOK_MAX_ARGS 64

/* "systemctl restart tftpd-hpa" into argv at blanks; no quoting, no expansion. */
static int split_argv(char *cmd, char **argv, struct itl_error *err)
{
    int n = 0;

    for (char *save = NULL, *w = strtok_r(cmd, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (n == HOOK_MAX_ARGS - 1)
            return err_set(err, ITL_E_USAGE, "--then: at most %d words", HOOK_MAX_ARGS - 1);
        argv[n++] = w;
    }
    argv[n] = NULL;
    if (n == 0)
        return err_set(err, ITL_E_USAGE, "--then: an empty command");
    return 0;
}

int publish_run_hook(const char *cmd, int shell, struct itl_error *err)
{
    char *copy = strdup(cmd), *argv[HOOK_MAX_ARGS];
    int status;
    pid_t pid;

    if (!copy)
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    if (shell) {
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = copy;
        argv[3] = NULL;
    } else if (split_argv(copy, argv, err) != 0) {
        free(copy);
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO); /* stdout is the command's (its --json document) */
        execvp(argv[0], argv);
        fprintf(stderr, "itl-sign: publish: --then %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(copy);
    if (pid < 0)
        return err_errno(err, errno, "cannot start the hook");
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return err_errno(err, errno, "waiting for the hook");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct publish_audit {
    struct pol_audit *log;
    struct pol_peer self;
};

int publish_audit_open(const char *config, struct publish_audit **out, struct itl_error *err)
{
    struct pol_config *cfg = calloc(1, sizeof *cfg);
    struct publish_audit *a = calloc(1, sizeof *a);

    *out = NULL;
    if (!cfg || !a) {
        free(cfg);
        free(a);
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    }
    if (pol_config_load(config, cfg, err) != 0 || pol_state_set_owner(cfg, err) != 0 ||
        pol_audit_open(cfg->audit_log, &a->log, err) != 0) {
        free(cfg);
        free(a);
        return -1;
    }
    free(cfg);
    a->self.uid = getuid();
    a->self.gid = getgid();
    a->self.pid = getpid();
    *out = a;
    return 0;
}

int publish_audit_write(struct publish_audit *a, const char *file, const uint8_t *data, size_t len,
                        const char *result, const char *rule, const char *message,
                        struct itl_error *err)
{
    uint8_t sha[32];
    struct pol_audit_record r = {0};

    if (!a)
        return 0;
    if (data)
        EVP_Digest(data, len, sha, NULL, EVP_sha256(), NULL);
    r.time = time(NULL);
    r.peer = &a->self;
    r.op = "publish";
    r.file = file;
    r.in_sha256 = data ? sha : NULL;
    r.result = result;
    r.rule = rule;
    r.message = message;
    return pol_audit_write(a->log, &r, err);
}

void publish_audit_close(struct publish_audit *a)
{
    if (!a)
        return;
    pol_audit_close(a->log);
    free(a);
}
