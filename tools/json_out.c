/* SPDX-License-Identifier: MIT */
/*
 * --json: every command prints one JSON document on stdout (docs/json.md). A command that has
 * a result prints it with the cli_json_* builder; when a command fails without printing one,
 * main() prints the error document here, from the exit code and the first error the command
 * reported (cli_error): one error path for every command, present and future.
 */
#include "tools/cli.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include "common/common.h"

static int json_mode;
static int json_emitted;
static pthread_mutex_t first_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[1200];

void cli_json_set(int on)
{
    json_mode = on;
}

int cli_json_on(void)
{
    return json_mode;
}

void cli_json_record_error(const char *fmt, va_list ap)
{
    pthread_mutex_lock(&first_error_lock);
    if (!first_error[0])
        vsnprintf(first_error, sizeof first_error, fmt, ap);
    pthread_mutex_unlock(&first_error_lock);
}

/* The class of each exit code (itl-sign(1), EXIT STATUS): what the caller does about it. */
const char *cli_exit_class(int code)
{
    static const char *const names[] = {
        [EXIT_OK] = "ok",         [EXIT_INVALID] = "invalid", [EXIT_USAGE] = "usage",
        [EXIT_INPUT] = "input",   [EXIT_TOKEN] = "token",     [EXIT_DENIED] = "denied",
        [EXIT_OUTPUT] = "output", [EXIT_SERVICE] = "service", [EXIT_PARTIAL] = "partial",
    };
    if (code < 0 || (size_t)code >= sizeof names / sizeof names[0] || !names[code])
        return "internal";
    return names[code];
}

void cli_json_begin(struct cli_json *j)
{
    buf_init(&j->b, 0);
    j->fields = 0;
    j->outer = '}';
    buf_puts(&j->b, "{");
}

void cli_json_begin_list(struct cli_json *j)
{
    buf_init(&j->b, 0);
    j->fields = 0;
    j->outer = ']';
    buf_puts(&j->b, "[");
}

/* The key of the next member; NULL: the next element of an array (only its comma). */
static void key(struct cli_json *j, const char *k)
{
    if (j->fields++)
        buf_puts(&j->b, ",");
    if (!k)
        return;
    json_cstring(&j->b, k);
    buf_puts(&j->b, ":");
}

void cli_json_str(struct cli_json *j, const char *k, const char *v)
{
    key(j, k);
    json_cstring(&j->b, v);
}

void cli_json_int(struct cli_json *j, const char *k, long long v)
{
    key(j, k);
    buf_printf(&j->b, "%lld", v);
}

void cli_json_bool(struct cli_json *j, const char *k, int v)
{
    key(j, k);
    buf_puts(&j->b, v ? "true" : "false");
}

void cli_json_raw(struct cli_json *j, const char *k, const char *json)
{
    key(j, k);
    buf_puts(&j->b, json);
}

void cli_json_open(struct cli_json *j, const char *k, char bracket)
{
    key(j, k);
    buf_put(&j->b, &bracket, 1);
    j->fields = 0;
}

void cli_json_close(struct cli_json *j, char bracket)
{
    buf_put(&j->b, &bracket, 1);
    j->fields = 1;
}

void cli_json_elem(struct cli_json *j)
{
    if (j->fields++)
        buf_puts(&j->b, ",");
}

void cli_json_print(struct cli_json *j)
{
    buf_put(&j->b, &j->outer, 1);
    buf_puts(&j->b, "\n");
    const char *text = buf_str(&j->b);
    fputs(text ? text
               : "{\"error\":{\"code\":7,\"class\":\"service\",\"message\":\"out of "
                 "memory\"}}\n",
          stdout);
    fflush(stdout);
    buf_free(&j->b);
    cli_json_emitted();
}

void cli_json_emitted(void)
{
    json_emitted = 1;
}

int cli_json_finish(int code)
{
    struct cli_json j;

    if (!json_mode || json_emitted || code == EXIT_OK)
        return code;
    cli_json_begin(&j);
    cli_json_open(&j, "error", '{');
    cli_json_int(&j, "code", code);
    cli_json_str(&j, "class", cli_exit_class(code));
    cli_json_str(&j, "message", first_error[0] ? first_error : cli_exit_class(code));
    cli_json_close(&j, '}');
    cli_json_print(&j);
    return code;
}

/* The document of a command that made files: reset, build, encrypt. */
void cli_json_result(const char *command, const struct cli_json_output *outs, size_t n,
                     const char *message, const char *warning, int dry_run)
{
    struct cli_json j;

    cli_json_begin(&j);
    cli_json_str(&j, "command", command);
    cli_json_str(&j, "status", "ok");
    cli_json_bool(&j, "dry_run", dry_run);
    cli_json_str(&j, "message", message);
    cli_json_open(&j, "outputs", '[');
    for (size_t i = 0; i < n; i++) {
        cli_json_elem(&j);
        buf_puts(&j.b, "{\"path\":");
        json_cstring(&j.b, outs[i].path);
        buf_printf(&j.b, ",\"bytes\":%zu,\"written\":%s}", outs[i].bytes,
                   outs[i].written ? "true" : "false");
    }
    cli_json_close(&j, ']');
    cli_json_open(&j, "warnings", '[');
    if (warning && warning[0]) {
        cli_json_elem(&j);
        json_cstring(&j.b, warning);
    }
    cli_json_close(&j, ']');
    cli_json_print(&j);
}
