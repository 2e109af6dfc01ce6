/* onnx-monoquant: argument dispatch only; every command lives in src/cli/. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char program_help[] =
    "Usage: onnx-monoquant COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  info IN.onnx [--json]               describe a model\n"
    "  convert IN.onnx OUT.onnx            load and save (--external-data)\n"
    "  run IN.onnx --inputs DIR            run the reference interpreter\n"
    "\n"
    "Run 'onnx-monoquant COMMAND --help' for a command's options.\n"
    "Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.\n";

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"info", mq_cli_info},
    {"convert", mq_cli_convert},
    {"run", mq_cli_run},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return mq_cli_usage_error(NULL, "missing command");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(program_help, stdout);
        return MQ_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("onnx-monoquant %s\n", MQ_VERSION);
        return MQ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    return mq_cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
