/* onnx-monoquant: argument dispatch only; every command lives in src/cli/. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cli/cli.h"
#include "interp/tensor.h"
#include "util/fileio.h"

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

/* On SIGINT/SIGTERM no temporary output may stay behind: remove them, then die of the signal. */
static void on_signal(int sig)
{
    mq_atomic_cleanup_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The default memory cap: three quarters of physical memory, so a corrupt or
   oversized model fails with a message naming the tensor instead of the OOM killer. */
static void set_default_memory_cap(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page_size > 0)
        mq_memory_set_limit((uint64_t)pages * (uint64_t)page_size / 4 * 3);
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    set_default_memory_cap();
    /* Parallelism is ours (one sample per thread in calibration); BLAS threads on top of
       that would only oversubscribe the cores. */
    openblas_set_num_threads(1);
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
