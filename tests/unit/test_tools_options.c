/* SPDX-License-Identifier: MIT */
/*
 * tools: the one option loop of the commands (cli_parse_options): global options after the
 * command name, -h/--help, the command's own options through its handler, and the same error
 * text for an unknown option or a missing value.
 */
#include "tools/cli.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/testlib.h"

enum { OPT_CERT = OPT_FIRST_COMMAND_OPTION, OPT_BAD };

static const struct option longopts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                         {"cert", required_argument, NULL, OPT_CERT},
                                         {"bad", required_argument, NULL, OPT_BAD},
                                         {"output", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};

struct seen {
    const char *cert;
    const char *out;
    int usage_stdout, usage_stderr;
};

static struct seen *current;

static void usage(FILE *f)
{
    if (f == stdout)
        current->usage_stdout++;
    else
        current->usage_stderr++;
}

/* --bad is refused (-1), --cert taken; 'o' is in longopts but left to nobody (0). */
static int option(int opt, const char *arg, void *ctx)
{
    struct seen *s = ctx;

    switch (opt) {
    case OPT_CERT:
        s->cert = arg;
        return 1;
    case OPT_BAD:
        return -1;
    default:
        return 0;
    }
}

static int option_with_o(int opt, const char *arg, void *ctx)
{
    struct seen *s = ctx;

    if (opt == 'o') {
        s->out = arg;
        return 1;
    }
    return option(opt, arg, ctx);
}

/* Parse argv (NULL-terminated) as a command would; stderr goes to stderr_text. */
static int parse(char **argv, struct cli_global *g, struct seen *s, int with_o, char *stderr_text,
                 size_t stderr_size)
{
    struct cli_options o = {.shortopts = with_o ? "o:" : NULL,
                            .longopts = longopts,
                            .usage = usage,
                            .option = with_o ? option_with_o : option,
                            .ctx = s};
    char path[600];
    int argc = 0, saved, fd, rc;
    ssize_t n;

    while (argv[argc])
        argc++;
    snprintf(path, sizeof path, "%s/stderr", testlib_tmpdir("options"));
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    current = s;
    optind = 0; /* a full getopt reset, as main does before a command */
    rc = cli_parse_options(argc, argv, g, &o);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, stderr_text, stderr_size - 1, 0);
    stderr_text[n > 0 ? n : 0] = 0;
    close(fd);
    return rc;
}

START_TEST(test_global_options_after_the_command)
{
    char *argv[] = {"show",   "FILE",  "--json",  "--token", "pkcs11:token=x",
                    "--cert", "c.pem", "--quiet", NULL};
    struct cli_global g = {.pin_fd = -1};
    struct seen s = {0};
    char err[1024];

    ck_assert_int_eq(parse(argv, &g, &s, 0, err, sizeof err), EXIT_OK);
    ck_assert_int_eq(g.json, 1);
    ck_assert_int_eq(g.quiet, 1);
    ck_assert_str_eq(g.token, "pkcs11:token=x");
    ck_assert_str_eq(s.cert, "c.pem");
    /* The positional argument is what is left, after the options (getopt permutes). */
    ck_assert_int_eq(optind, 7);
    ck_assert_str_eq(argv[optind], "FILE");
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(s.usage_stdout + s.usage_stderr, 0);
}
END_TEST

START_TEST(test_help_long_and_short)
{
    char *long_help[] = {"show", "--help", "FILE", NULL};
    char *short_help[] = {"key", "-h", NULL};
    struct cli_global g = {.pin_fd = -1};
    struct seen s = {0};
    char err[1024];

    ck_assert_int_eq(parse(long_help, &g, &s, 0, err, sizeof err), CLI_HELP_SHOWN);
    ck_assert_int_eq(parse(short_help, &g, &s, 0, err, sizeof err), CLI_HELP_SHOWN);
    ck_assert_int_eq(s.usage_stdout, 2);
    ck_assert_int_eq(s.usage_stderr, 0);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_unknown_option_and_missing_value)
{
    char *unknown[] = {"show", "--no-such-option", "FILE", NULL};
    char *missing[] = {"verify", "FILE", "--cert", NULL};
    char *short_unknown[] = {"strip", "-x", "FILE", NULL};
    char *short_missing[] = {"strip", "FILE", "-o", NULL};
    struct cli_global g = {.pin_fd = -1};
    struct seen s = {0};
    char err[1024];

    ck_assert_int_eq(parse(unknown, &g, &s, 0, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "itl-sign: show: unknown option '--no-such-option'\n");
    ck_assert_int_eq(parse(missing, &g, &s, 0, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "itl-sign: verify: option '--cert' needs a value\n");
    ck_assert_int_eq(parse(short_unknown, &g, &s, 1, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "itl-sign: strip: unknown option '-x'\n");
    ck_assert_int_eq(parse(short_missing, &g, &s, 1, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "itl-sign: strip: option '-o' needs a value\n");
    /* Each time the usage follows on stderr, never on stdout. */
    ck_assert_int_eq(s.usage_stderr, 4);
    ck_assert_int_eq(s.usage_stdout, 0);
}
END_TEST

/* --pin in every spelling: refused, and what follows it never printed. */
START_TEST(test_pin_refused_value_not_printed)
{
    char *separate[] = {"show", "--pin", "S3cr3t-1", "FILE", NULL};
    char *joined[] = {"show", "--pin=S3cr3t-2", "FILE", NULL};
    char *bare[] = {"show", "FILE", "--pin", NULL};
    char *abbreviated[] = {"show", "--pi=S3cr3t-3", "FILE", NULL};
    char *unknown[] = {"show", "--no-such=S3cr3t-4", "FILE", NULL};
    char **all[] = {separate, joined, bare};
    struct cli_global g = {.pin_fd = -1};
    struct seen s = {0};
    char err[1024];

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        ck_assert_int_eq(parse(all[i], &g, &s, 0, err, sizeof err), EXIT_USAGE);
        ck_assert_ptr_nonnull(strstr(err, "a PIN never goes on the command line"));
        ck_assert_ptr_nonnull(strstr(err, "--pin-file PATH, --pin-fd N or token.pin-file"));
        ck_assert_ptr_null(strstr(err, "S3cr3t"));
    }
    ck_assert_int_eq(parse(abbreviated, &g, &s, 0, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "itl-sign: show: unknown option '--pi'\n");
    ck_assert_int_eq(parse(unknown, &g, &s, 0, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "itl-sign: show: unknown option '--no-such'\n");
    ck_assert_ptr_null(g.pin_file);
}
END_TEST

START_TEST(test_the_commands_handler_decides)
{
    char *refused[] = {"sign", "--bad", "x", "FILE", NULL};
    char *not_taken[] = {"sign", "--output", "x", "FILE", NULL};
    char *taken[] = {"strip", "FILE", "-o", "out", NULL};
    char *bad_global[] = {"sign", "--pin-fd", "nine", "FILE", NULL};
    struct cli_global g = {.pin_fd = -1};
    struct seen s = {0};
    char err[1024];

    /* A refused value: the handler said why; no usage. */
    ck_assert_int_eq(parse(refused, &g, &s, 0, err, sizeof err), EXIT_USAGE);
    ck_assert_int_eq(s.usage_stderr, 0);
    /* An option nobody takes: the usage. */
    ck_assert_int_eq(parse(not_taken, &g, &s, 0, err, sizeof err), EXIT_USAGE);
    ck_assert_int_eq(s.usage_stderr, 1);
    ck_assert_int_eq(parse(taken, &g, &s, 1, err, sizeof err), EXIT_OK);
    ck_assert_str_eq(s.out, "out");
    /* A bad value of a global option: its own message, no usage. */
    ck_assert_int_eq(parse(bad_global, &g, &s, 0, err, sizeof err), EXIT_USAGE);
    ck_assert_ptr_nonnull(strstr(err, "--pin-fd: 'nine' is not a file descriptor number"));
    ck_assert_int_eq(s.usage_stderr, 1);
}
END_TEST

START_TEST(test_usage_text_instead_of_a_function)
{
    static const struct option only_global[] = {CLI_GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    struct cli_options o = {.longopts = only_global, .usage_text = "usage: itl-sign key list\n"};
    char *argv[] = {"list", "--nope", NULL};
    struct cli_global g = {.pin_fd = -1};
    char path[600], text[256];
    int fd, saved;
    ssize_t n;

    snprintf(path, sizeof path, "%s/stderr", testlib_tmpdir("options-text"));
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    optind = 0;
    ck_assert_int_eq(cli_parse_options(2, argv, &g, &o), EXIT_USAGE);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = 0;
    close(fd);
    ck_assert_str_eq(text, "itl-sign: list: unknown option '--nope'\nusage: itl-sign key list\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tools_options");
    TCase *tc = tcase_create("options");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_global_options_after_the_command);
    tcase_add_test(tc, test_help_long_and_short);
    tcase_add_test(tc, test_unknown_option_and_missing_value);
    tcase_add_test(tc, test_pin_refused_value_not_printed);
    tcase_add_test(tc, test_the_commands_handler_decides);
    tcase_add_test(tc, test_usage_text_instead_of_a_function);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
