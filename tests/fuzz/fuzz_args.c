/*
 * libFuzzer target: command lines.  The input is split at newlines into up to
 * 32 arguments after the program name and dispatched the way src/main.c
 * dispatches them, so every command's option parser sees hostile values.
 *
 * Nothing may touch files outside a private temporary folder: each run
 * happens with that empty folder as the working directory and every '/' in an
 * argument replaced by '_', so any path names a file that does not exist and
 * every command fails early (or prints its help).  The folder must still be
 * empty afterwards: a command that fails may leave nothing behind.
 *
 * main() cannot be called from here (libFuzzer owns it), so the dispatch below
 * mirrors src/main.c; keep the two in step until the dispatch moves into a
 * library function both can call.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/byte_size.h"
#include "cli/cli.h"
#include "cli/commands_tools.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Commands whose entry points have no shared header yet. */
int mq_cli_calibrate(int argc, char **argv);
int mq_cli_quantize(int argc, char **argv);

#define MAX_ARGS 32
#define MAX_ARG_LEN 256

static int home_fd = -1;

/*
 * Commands print usage errors for nearly every input: have libFuzzer silence
 * the target's stdout and stderr (its own reports still get through), and
 * write crash files where the fuzzer was started, not into the folder the
 * runs happen in.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char *args[256];
    static char prefix[4200];
    int n = *argc < 250 ? *argc : 250;
    int has_mask = 0, has_prefix = 0;
    for (int i = 0; i < n; i++) {
        args[i] = (*argv)[i];
        has_mask |= strncmp(args[i], "-close_fd_mask=", 15) == 0;
        has_prefix |= strncmp(args[i], "-artifact_prefix=", 17) == 0;
    }
    if (!has_mask)
        args[n++] = "-close_fd_mask=3";
    char cwd[4096];
    if (!has_prefix && getcwd(cwd, sizeof cwd)) {
        snprintf(prefix, sizeof prefix, "-artifact_prefix=%s/", cwd);
        args[n++] = prefix;
    }
    args[n] = NULL;
    *argc = n;
    *argv = args;
    home_fd = open(".", O_RDONLY | O_DIRECTORY);
    fuzz_dir_get();
    return 0;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

/* main()'s global options: --max-memory anywhere, taken out of argv; 0, or an exit status. */
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
        /* Honour small caps (they exercise the refusals); never lift the fuzzer's own. */
        mq_memory_set_limit(bytes < FUZZ_MEMORY_CAP ? bytes : FUZZ_MEMORY_CAP);
    }
    *argc = kept;
    argv[kept] = NULL;
    return 0;
}

static int dispatch(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"info", mq_cli_info},
        {"convert", mq_cli_convert},
        {"run", mq_cli_run},
        {"calibrate", mq_cli_calibrate},
        {"dequantize", mq_cli_dequantize},
        {"compare", mq_cli_compare},
    };
    int status = take_global_options(&argc, argv);
    if (status)
        return status;
    if (argc < 2)
        return mq_cli_usage_error(NULL, "missing command or IN.onnx OUT.onnx");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--version") == 0)
        return MQ_EXIT_OK;
    if (strcmp(argv[1], "--help-quantize") == 0) {
        char *help_argv[] = {argv[0], "--help", NULL};
        return mq_cli_quantize(2, help_argv);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (argv[1][0] == '-')
        return mq_cli_usage_error(NULL, "unknown option '%s'", argv[1]);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--fp16") == 0)
            return mq_cli_fp16(argc, argv);
    return mq_cli_quantize(argc, argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char storage[MAX_ARGS][MAX_ARG_LEN + 1];
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "onnx-monoquant";
    size_t pos = 0;
    while (pos < size && argc <= MAX_ARGS) {
        size_t end = pos;
        while (end < size && data[end] != '\n')
            end++;
        size_t len = end - pos < MAX_ARG_LEN ? end - pos : MAX_ARG_LEN;
        char *arg = storage[argc - 1];
        for (size_t k = 0; k < len; k++) {
            /* One component, no NUL inside: every path stays in the empty folder. */
            char c = (char)data[pos + k];
            arg[k] = c == '/' ? '_' : c == '\0' ? ' ' : c;
        }
        arg[len] = '\0';
        argv[argc++] = arg;
        pos = end + 1;
    }
    argv[argc] = NULL;

    const char *dir = fuzz_dir_get();
    if (chdir(dir) != 0)
        abort();
    int rc = dispatch(argc, argv);
    if (rc != MQ_EXIT_OK && rc != MQ_EXIT_FAILURE && rc != MQ_EXIT_USAGE)
        abort(); /* exit statuses are 0, 1 or 2 */
    if (!dir_is_empty("."))
        abort(); /* a command left a file or folder behind */
    if (fchdir(home_fd) != 0)
        abort();
    mq_memory_set_limit(FUZZ_MEMORY_CAP);
    fflush(stdout);
    return 0;
}
