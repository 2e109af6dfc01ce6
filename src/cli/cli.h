/* One entry point per command; each returns the process exit status (0, 1 or 2). */
#ifndef MQ_CLI_H
#define MQ_CLI_H

#include "util/error.h"

#define MQ_EXIT_OK 0
#define MQ_EXIT_FAILURE 1
#define MQ_EXIT_USAGE 2

int mq_cli_info(int argc, char **argv);
int mq_cli_convert(int argc, char **argv);
int mq_cli_run(int argc, char **argv);

/*
 * If argv[*i] is `--name` or `--name=VALUE`, stores the value (the next
 * argument in the first form), advances *i past what it used and returns 1.
 * Returns 0 when argv[*i] is another argument, -1 when the value is missing.
 */
int mq_cli_option(int argc, char **argv, int *i, const char *name, const char **value);
/* True when argv[i] is exactly --name. */
int mq_cli_flag(char **argv, int i, const char *name);
/* Parses a non-negative integer option value; -1 on error. */
long long mq_cli_parse_count(const char *s);

/* Prints "onnx-monoquant: <message>" and maps the error code to an exit status. */
int mq_cli_report(int rc, const struct mq_error *err);
/* Prints "onnx-monoquant: MESSAGE" on stderr, control characters escaped. */
void mq_cli_print_error(const struct mq_error *err);
/* Prints "onnx-monoquant <command>: <message>" plus a hint at --help; returns MQ_EXIT_USAGE. */
int mq_cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
