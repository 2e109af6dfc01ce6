/* onnx-monoquant: argument dispatch only; every command lives in src/cli/. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <malloc.h>

#include "cli/cli.h"
#include "cli/commands_tools.h"
#include "cli/byte_size.h"
#include "core/tensor.h"
#include "util/fileio.h"

int mq_cli_calibrate(int argc, char **argv);
int mq_cli_quantize(int argc, char **argv);
int mq_cli_simplify(int argc, char **argv);
int mq_cli_convert_data(int argc, char **argv);

static const char program_help[] =
    "Usage: onnx-monoquant IN.onnx OUT.onnx --calib DIR [options]   quantize (QDQ, int8)\n"
    "       onnx-monoquant IN.onnx OUT.onnx --fp16 [options]        float16, no calibration\n"
    "       onnx-monoquant COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  info IN.onnx [--json]                describe a model\n"
    "  convert IN.onnx OUT.onnx             load and save (--external-data, --opset N)\n"
    "  run IN.onnx --inputs DIR             run the reference interpreter\n"
    "  calibrate IN.onnx --calib DIR --save-ranges FILE.json\n"
    "                                       collect activation ranges only\n"
    "  dequantize IN.onnx OUT.onnx          a QDQ model back to float32\n"
    "  compare A.onnx B.onnx --inputs DIR   output and per-layer error between two models\n"
    "  simplify IN.onnx OUT.onnx            fold constants, drop Identity and unused weights\n"
    "  convert-data IN.onnx --inputs DIR --out OUT\n"
    "                                       samples (images, WAV, tensors) as test_data_set folders\n"
    "\n"
    "Global options (any position):\n"
    "  --max-memory SIZE   cap on tensor memory, e.g. 512M or 4G (default: 3/4 of RAM)\n"
    "\n"
    "Run 'onnx-monoquant --help-quantize' or 'onnx-monoquant COMMAND --help' for options.\n"
    "Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.\n";

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"info", mq_cli_info},
    {"convert", mq_cli_convert},
    {"run", mq_cli_run},
    {"calibrate", mq_cli_calibrate},
    {"dequantize", mq_cli_dequantize},
    {"compare", mq_cli_compare},
    {"simplify", mq_cli_simplify},
    {"convert-data", mq_cli_convert_data},
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

/* Takes --max-memory out of argv (it applies to every command); returns 0, or an exit status. */
static int take_global_options(int *argc, char **argv)
{
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        const char *value = NULL;
        int m = mq_cli_option(*argc, argv, &i, "max-memory", &value);
        if (m == 0) {
            argv[kept++] = argv[i];
            continue;
        }
        uint64_t bytes;
        if (m < 0 || mq_cli_parse_byte_size(value, &bytes) || bytes == 0)
            return mq_cli_usage_error(NULL, "--max-memory needs a size such as 512M or 4G");
        mq_memory_set_limit(bytes);
    }
    *argc = kept;
    argv[kept] = NULL;
    return 0;
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
    /* Activations are freed and reallocated at the same sizes layer after layer and run after
       run: keep glibc from returning them to the kernel (trimming the heap top, or mmap for
       big blocks), which turns every reuse into fresh page faults.  Fixed values also stop
       glibc's adaptive thresholds.  The retained free memory is bounded by the trim threshold. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);

    int status = take_global_options(&argc, argv);
    if (status)
        return status;
    if (argc < 2)
        return mq_cli_usage_error(NULL, "missing command or IN.onnx OUT.onnx");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(program_help, stdout);
        return MQ_EXIT_OK;
    }
    if (strcmp(argv[1], "--help-quantize") == 0) {
        char *help_argv[] = {argv[0], "--help", NULL};
        return mq_cli_quantize(2, help_argv);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("onnx-monoquant %s\n", MQ_VERSION);
        return MQ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (argv[1][0] == '-')
        return mq_cli_usage_error(NULL, "unknown option '%s'", argv[1]);
    /* No command word: the main job, IN.onnx OUT.onnx [options]; --fp16 selects float16. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--fp16") == 0)
            return mq_cli_fp16(argc, argv);
    return mq_cli_quantize(argc, argv);
}
