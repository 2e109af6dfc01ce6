/*
 * Command-line parsing shared by every command: --name VALUE / --name=VALUE options, numbers and
 * sizes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/text.h"

int mq_cli_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0)
        return 0;
    if (arg[2 + n] == '=') {
        *value = arg + 3 + n;
        return 1;
    }
    if (arg[2 + n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

int mq_cli_flag(char **argv, int i, const char *name)
{
    return strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0;
}

long long mq_cli_parse_count(const char *s)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    return v;
}

int mq_cli_report(int rc, const struct mq_error *err)
{
    if (rc == MQ_OK)
        return MQ_EXIT_OK;
    mq_cli_print_error(err);
    return rc == MQ_ERR_USAGE ? MQ_EXIT_USAGE : MQ_EXIT_FAILURE;
}

void mq_cli_print_error(const struct mq_error *err)
{
    /* One line, escaped whole: the message carries names read from files. */
    fputs("onnx-monoquant: ", stderr);
    mq_text_write(stderr, err->message[0] ? err->message : "failed", 0);
    fputc('\n', stderr);
}

int mq_cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char message[1024];
    vsnprintf(message, sizeof message, fmt, ap);
    fprintf(stderr, "onnx-monoquant%s%s: ", command ? " " : "", command ? command : "");
    mq_text_write(stderr, message, 0);
    fprintf(stderr, "\nTry 'onnx-monoquant %s%s--help'.\n", command ? command : "",
            command ? " " : "");
    va_end(ap);
    return MQ_EXIT_USAGE;
}
