/* SPDX-License-Identifier: MIT */
/*
 * itl-signd: the signing service that owns the token. See docs/itl-signd.8.
 *
 * Start order (each step needs the privileges the next one gives up):
 *   config -> non-dumpable, no core -> PIN file (still privileged) -> socket and state dirs ->
 *   bind the socket -> audit log -> drop to run-as -> detach (unless --foreground) ->
 *   C_Initialize + login (the PIN is wiped right after) -> READY=1 to systemd -> serve.
 * Nothing forks after the PKCS#11 module is initialised: detaching happens before.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "pkcs11/token.h"
#include "policy/policy.h"
#include "signer/server.h"
#include "signer/signer.h"

#ifndef ITL_SIGN_VERSION
#define ITL_SIGN_VERSION "0.1.0"
#endif

/* Exit codes (docs/itl-signd.8). */
enum {
    SIGND_EXIT_OK = 0,    /* stopped cleanly; --check-config: the config is fine */
    SIGND_EXIT_SETUP = 1, /* config, directories, socket, privileges, audit log */
    SIGND_EXIT_USAGE = 2, /* bad command line */
    /* The token refused the PIN, or it is locked, on its final try, expired or never set.
     * Or the PIN file is missing, loose or not a regular file. Not retryable: a restart would
     * send the same PIN again (itl-signd.service lists it in RestartPreventExitStatus). */
    SIGND_EXIT_PIN = 3,
    SIGND_EXIT_TOKEN = 4, /* module, token not present (yet), device: a restart may help */
};

/* A token failure's exit code: PIN errors must stop systemd from restarting us. */
static int token_exit_code(const struct itl_error *te)
{
    return te->cls == ITL_E_PIN ? SIGND_EXIT_PIN : SIGND_EXIT_TOKEN;
}

struct options {
    const char *config;
    int foreground;
    int check_only;
};

/* After detaching, the parent waits on this pipe: one status byte, then a message (an error
 * message with some context in front). */
static int ready_fd = -1;
#define STARTUP_MSG_LEN (ITL_ERROR_LEN + 256)

/* Under Type=notify (NOTIFY_SOCKET set) systemd shows STATUS= in `systemctl status`; without
 * NOTIFY_SOCKET sd_notify does nothing. One line: a newline would start another assignment. */
static void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void notify_status(const char *fmt, ...)
{
    char line[STARTUP_MSG_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    sd_notifyf(0, "STATUS=%s", line);
}

static void startup_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void startup_error(int code, const char *fmt, ...)
{
    char msg[STARTUP_MSG_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_log(LOG_ERR, "%s", msg);
    notify_status("failed to start: %s", msg);
    if (ready_fd >= 0) {
        uint8_t b = (uint8_t)code;
        if (write(ready_fd, &b, 1) == 1 && write(ready_fd, msg, strlen(msg)) < 0)
            b = 0; /* the parent is gone; syslog has the message */
        close(ready_fd);
        ready_fd = -1;
    }
}

static void report_ready(void)
{
    uint8_t ok = SIGND_EXIT_OK;

    if (ready_fd < 0)
        return;
    if (write(ready_fd, &ok, 1) != 1)
        srv_log(LOG_WARNING, "could not tell the starting process that the service is ready");
    close(ready_fd);
    ready_fd = -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: itl-signd --config FILE [--foreground] [--check-config]\n"
               "\n"
               "  -c, --config FILE   the service configuration (YAML; docs/config.md)\n"
               "  -f, --foreground    stay in the foreground, log to stderr (systemd, tests)\n"
               "  -t, --check-config  validate the configuration and the files it names, then "
               "exit\n"
               "  -h, --help          this text\n"
               "  -V, --version       the version\n"
               "\nman itl-signd for the rest.\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"check-config", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"pin", optional_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof *o);
    while ((ch = getopt_long(argc, argv, "c:fthV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case 'f':
            o->foreground = 1;
            break;
        case 't':
            o->check_only = 1;
            break;
        case 'h':
            usage(stdout);
            exit(SIGND_EXIT_OK);
        case 'V':
            sgn_print_versions(stdout, "itl-signd", ITL_SIGN_VERSION);
            exit(SIGND_EXIT_OK);
        case 'P': /* known only to be refused; the value is never printed */
            fprintf(stderr, "itl-signd: --pin is refused: a PIN never goes on the command line, "
                            "where other users see it; set token.pin-file in the config\n");
            return -1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "itl-signd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    if (!o->config) {
        fprintf(stderr, "itl-signd: --config FILE is required\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ---- Starting ---- */

static void harden_process(void)
{
    struct rlimit no_core = {0, 0};

    /* No core dump, no ptrace by other users, no /proc/PID/mem: the PIN and the token's
     * session state stay in this process. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    setrlimit(RLIMIT_CORE, &no_core);
    /* A write past LimitFSIZE= must fail with EFBIG, so that the audit writer cuts its short
     * record off and refuses the request, not kill the service halfway through a record. */
    signal(SIGXFSZ, SIG_IGN);
}

static int drop_privileges(const struct srv_ids *ids, struct itl_error *err)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;

    if (!ids->drop)
        return 0;
    if (geteuid() != 0) {
        if (geteuid() == ids->run_uid && getegid() == ids->run_gid)
            return 0; /* started as the service user already (systemd User=) */
        return err_set(err, ITL_E_USAGE,
                       "run-as.user is %s, but itl-signd runs as uid %u, not root: start it as "
                       "root or as %s",
                       ids->run_user, (unsigned)geteuid(), ids->run_user);
    }
    if (initgroups(ids->run_user, ids->run_gid) != 0 ||
        setresgid(ids->run_gid, ids->run_gid, ids->run_gid) != 0 ||
        setresuid(ids->run_uid, ids->run_uid, ids->run_uid) != 0) {
        return err_errno(err, errno, "cannot switch to user %s (uid %u, gid %u)", ids->run_user,
                         (unsigned)ids->run_uid, (unsigned)ids->run_gid);
    }
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 || r != ids->run_uid ||
        e != ids->run_uid || s != ids->run_uid || rg != ids->run_gid || eg != ids->run_gid ||
        sg != ids->run_gid || (ids->run_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))) {
        return err_set(err, ITL_E_INTERNAL,
                       "privileges were not dropped completely; refusing to serve");
    }
    harden_process(); /* a credential change may reset the dumpable flag */
    return 0;
}

/* Detach: fork, setsid, fork again; the first process waits until the service is serving (or
 * failed) and exits with its status, so `itl-signd` without --foreground still reports
 * startup errors. */
static void daemonize(struct tok_pin *pin)
{
    int pfd[2], null_fd;
    pid_t pid;

    fflush(NULL);
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        fprintf(stderr, "itl-signd: pipe: %s\n", strerror(errno));
        exit(SIGND_EXIT_SETUP);
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "itl-signd: fork: %s\n", strerror(errno));
        exit(SIGND_EXIT_SETUP);
    }
    if (pid > 0) {
        char msg[STARTUP_MSG_LEN];
        uint8_t code;
        ssize_t n;
        size_t got = 0;

        tok_pin_wipe(pin); /* this process only waits: it has no use for the PIN */
        close(pfd[1]);
        waitpid(pid, NULL, 0);
        if (read(pfd[0], &code, 1) != 1) {
            fprintf(stderr, "itl-signd: the service exited during startup (see syslog)\n");
            _exit(SIGND_EXIT_SETUP);
        }
        while (got < sizeof msg - 1 && (n = read(pfd[0], msg + got, sizeof msg - 1 - got)) > 0)
            got += (size_t)n;
        msg[got] = 0;
        if (code != SIGND_EXIT_OK)
            fprintf(stderr, "itl-signd: %s\n", msg);
        _exit(code);
    }
    close(pfd[0]);
    if (setsid() < 0)
        _exit(SIGND_EXIT_SETUP);
    pid = fork();
    if (pid < 0)
        _exit(SIGND_EXIT_SETUP);
    if (pid > 0)
        _exit(SIGND_EXIT_OK);
    ready_fd = pfd[1];
    if (chdir("/") != 0)
        _exit(SIGND_EXIT_SETUP);
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        if (null_fd > STDERR_FILENO)
            close(null_fd);
    }
    srv_log_use_syslog();
}

struct service {
    const struct pol_config *cfg;
    const struct srv_ids *ids;
    struct tok_pin pin;
    struct srv_listener listener;
    struct pol_audit *audit;
    struct tok *tok;
    struct sgn_engine *engine;
};

static int read_pin(struct service *sv)
{
    struct itl_error te = {0};

    if (!sv->cfg->token.pin_file[0])
        return 0; /* pin-source in the URI, or a token that needs no PIN */
    if (tok_pin_from_file(sv->cfg->token.pin_file, &sv->pin, &te) != 0) {
        /* A PIN file that is missing, loose or not a regular file stays so across restarts. */
        startup_error(SIGND_EXIT_PIN, "token.pin-file: %s", te.msg);
        return -1;
    }
    return 0;
}

static int prepare_dirs(struct service *sv)
{
    const struct srv_ids *ids = sv->ids;
    struct itl_error err;
    char dir[1024];
    int created;

    if (sv->listener.fd < 0) {
        srv_dirname(sv->cfg->socket.path, dir, sizeof dir);
        if (srv_prepare_dir("socket directory", dir,
                            ids->has_sock_gid ? ids->sock_gid : ids->run_gid, ids, &created,
                            &err) != 0)
            goto fail;
        if (created)
            srv_log(LOG_NOTICE, "created the socket directory %s", dir);
    }
    if (srv_prepare_dir("state directory", sv->cfg->state_dir, ids->run_gid, ids, &created, &err) !=
        0)
        goto fail;
    if (created)
        srv_log(LOG_NOTICE, "created the state directory %s", sv->cfg->state_dir);
    /* The audit log's directory is made when missing; where it lives is the admin's choice,
     * checked when the log is opened (pol_audit_open_as). */
    srv_dirname(sv->cfg->audit_log, dir, sizeof dir);
    if (srv_make_dir("audit log directory", dir, ids->run_uid, ids->run_gid, &created, &err) != 0)
        goto fail;
    if (created)
        srv_log(LOG_NOTICE, "created the audit log directory %s", dir);
    return 0;
fail:
    startup_error(SIGND_EXIT_SETUP, "%s", err.msg);
    return -1;
}

static int open_socket(struct service *sv)
{
    struct itl_error err;

    if (sv->listener.fd >= 0)
        return 0; /* socket activation */
    if (srv_listen(sv->cfg, sv->ids, &sv->listener, &err) != 0) {
        startup_error(SIGND_EXIT_SETUP, "%s", err.msg);
        return -1;
    }
    return 0;
}

static int open_audit(struct service *sv)
{
    struct itl_error pe;

    /* Root gives the log to the service user, who must be able to reopen it after rotation
     * (SIGHUP) and is the only other owner accepted. */
    if (pol_audit_open_as(sv->cfg->audit_log, sv->ids->run_uid, sv->ids->run_gid, &sv->audit,
                          &pe) != 0) {
        startup_error(SIGND_EXIT_SETUP, "audit-log: %s (nothing is served unaudited)", pe.msg);
        return -1;
    }
    return 0;
}

/* A module that fails to initialise after the privilege drop most often cannot read its own
 * files as the service user (SoftHSM2: its config, its token directory): say which. */
static void module_failed(const struct service *sv, const struct itl_error *te)
{
    struct buf why = {0};
    char user[256];
    const char *text;

    ids_user_name(geteuid(), user, sizeof user);
    if (te->cls != ITL_E_MODULE || !sv->cfg->token.module[0] ||
        srv_module_access_problems(sv->cfg->token.module, user, &why) == 0 ||
        !(text = buf_str(&why))) {
        startup_error(token_exit_code(te), "token %s: %s", sv->cfg->token.uri, te->msg);
    } else {
        char line[STARTUP_MSG_LEN];
        snprintf(line, sizeof line, "%s", text);
        for (char *p = line; (p = strchr(p, '\n'));)
            *p = ';'; /* one log line */
        startup_error(token_exit_code(te), "token %s: %s; as user %s: %s", sv->cfg->token.uri,
                      te->msg, user, line);
    }
    buf_free(&why);
}

/* Returns 0, or the exit code (SIGND_EXIT_PIN or SIGND_EXIT_TOKEN). */
static int open_token(struct service *sv)
{
    const struct pol_config *cfg = sv->cfg;
    struct tok_options to = {
        .module = cfg->token.module[0] ? cfg->token.module : NULL,
        .uri = cfg->token.uri,
        .pool_size = cfg->token.pool_size,
        .init_args = cfg->token.init_args[0] ? cfg->token.init_args : NULL,
        .mechanism = (enum tok_mechanism)cfg->token.mechanism,
    };
    struct itl_error te = {0};
    int rc;

    notify_status("logging in to %s", cfg->token.uri);
    if (tok_open(&to, &sv->tok, &te) != 0) {
        tok_pin_wipe(&sv->pin);
        module_failed(sv, &te);
        return token_exit_code(&te);
    }
    rc = tok_login(sv->tok, cfg->token.pin_file[0] ? &sv->pin : NULL, &te);
    tok_pin_wipe(&sv->pin); /* the token layer keeps its own locked copy for one re-login */
    if (rc != 0) {
        startup_error(token_exit_code(&te), "login to %s: %s", cfg->token.uri, te.msg);
        return token_exit_code(&te);
    }
    return 0;
}

static int start_engine(struct service *sv)
{
    struct sgn_engine_opts eo = {
        .cfg = sv->cfg,
        .tok = sv->tok,
        .audit = sv->audit,
        .check_access = 1,
        .use_state = 1,
    };
    struct itl_error err;

    if (sgn_engine_new(&eo, &sv->engine, &err) != 0) {
        startup_error(SIGND_EXIT_SETUP, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* The log line, then READY=1: the socket listens and the token is logged in. */
static void announce_started(const struct service *sv)
{
    struct tok_status ts = {0};
    struct itl_error te = {0};

    tok_get_status(sv->tok, &ts, &te);
    if (ts.pin_ignored)
        srv_log(LOG_WARNING,
                "token '%s' has a PIN pad (protected authentication path): token.pin-file is "
                "ignored, the PIN is entered on the token",
                ts.label);
    if (ts.one_session && ts.pool_requested != 1)
        srv_log(LOG_WARNING,
                "token '%s' allows one session (ulMaxSessionCount = 1): pool-size %zu is "
                "clamped to 1, requests sign one at a time on the login session",
                ts.label, ts.pool_requested);
    else if (ts.pool_requested > ts.pool_size)
        srv_log(LOG_WARNING, "token '%s': pool-size %zu is clamped to %zu (ulMaxSessionCount)",
                ts.label, ts.pool_requested, ts.pool_size);
    srv_log(LOG_NOTICE,
            "itl-signd %s serving on %s%s as uid %u: token '%s' (serial %s), %zu session%s, "
            "audit log %s",
            ITL_SIGN_VERSION, sv->listener.path, sv->listener.activated ? " (from systemd)" : "",
            (unsigned)geteuid(), ts.label, ts.serial, ts.pool_size, ts.pool_size == 1 ? "" : "s",
            sv->cfg->audit_log);
    if (sv->cfg->recovery_unlock.mode == POL_UNLOCK_MANUAL)
        srv_log(LOG_NOTICE, "the recovery key is locked until itl-sign unlock --key recovery "
                            "(keys.recovery.unlock: manual)");
    notify_status("serving on %s: token '%s' (serial %s), %zu session%s", sv->listener.path,
                  ts.label, ts.serial, ts.pool_size, ts.pool_size == 1 ? "" : "s");
    sd_notify(0, "READY=1");
}

static void service_close(struct service *sv)
{
    tok_pin_wipe(&sv->pin);
    srv_listener_close(&sv->listener);
    sgn_engine_free(sv->engine);
    tok_close(sv->tok); /* logs out */
    pol_audit_close(sv->audit);
}

static int run(const struct pol_config *cfg, const struct srv_ids *ids, int foreground)
{
    struct service sv = {.cfg = cfg, .ids = ids, .listener = {.fd = -1}};
    struct itl_error err;
    int rc = SIGND_EXIT_SETUP;

    harden_process();
    if (srv_listen_activated(&sv.listener, &err) < 0) {
        startup_error(SIGND_EXIT_SETUP, "%s", err.msg);
        return SIGND_EXIT_SETUP;
    }
    if (read_pin(&sv) != 0)
        return SIGND_EXIT_PIN;
    if (prepare_dirs(&sv) != 0 || open_socket(&sv) != 0 || open_audit(&sv) != 0)
        goto out;
    if (drop_privileges(ids, &err) != 0) {
        startup_error(SIGND_EXIT_SETUP, "%s", err.msg);
        goto out;
    }
    if (!foreground)
        daemonize(&sv.pin);
    /* Before the module can start threads of its own: they must not take our signals. */
    srv_block_signals();
    rc = open_token(&sv);
    if (rc != 0)
        goto out;
    rc = SIGND_EXIT_SETUP;
    if (start_engine(&sv) != 0)
        goto out;
    announce_started(&sv);
    report_ready();
    {
        struct srv_params sp = {
            .cfg = cfg, .engine = sv.engine, .audit = sv.audit, .listener = &sv.listener};
        rc = srv_run(&sp) == 0 ? SIGND_EXIT_OK : SIGND_EXIT_SETUP;
    }
    sd_notify(0, "STOPPING=1\nSTATUS=stopped serving; logging out");
out:
    service_close(&sv);
    return rc;
}

int main(int argc, char **argv)
{
    static struct pol_config cfg; /* large: not on the stack */
    struct options o;
    struct srv_ids ids;
    struct itl_error pe;

    umask(027);
    if (parse_options(argc, argv, &o) != 0)
        return SIGND_EXIT_USAGE;
    if (pol_config_load(o.config, &cfg, &pe) != 0 || pol_config_check_service(&cfg, &pe) != 0) {
        fprintf(stderr, "itl-signd: %s\n", pe.msg);
        return SIGND_EXIT_SETUP;
    }
    if (srv_resolve_ids(&cfg, &ids, &pe) != 0) {
        fprintf(stderr, "itl-signd: %s\n", pe.msg);
        return SIGND_EXIT_SETUP;
    }
    if (o.check_only)
        return srv_check_config(&cfg, &ids) == 0 ? SIGND_EXIT_OK : SIGND_EXIT_SETUP;
    return run(&cfg, &ids, o.foreground);
}
