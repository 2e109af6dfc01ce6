/* `onnx-monoquant run IN.onnx --inputs DIR [--outputs DIR] [--expected] [--repeat N]` */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "interp/compare.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "util/fileio.h"
#include "util/natural_sort.h"

static const char run_help[] =
    "Usage: onnx-monoquant run IN.onnx --inputs DIR [--outputs DIR] [--expected] [--repeat N]\n"
    "\n"
    "Runs the model in the reference interpreter on every sample of DIR, laid out as\n"
    "DIR/test_data_set_N/input_K.pb (one ONNX TensorProto per graph input, matched by\n"
    "name, else by position). A DIR holding input_K.pb files itself is one sample.\n"
    "\n"
    "  --outputs DIR  write DIR/test_data_set_N/output_K.pb, named after the graph outputs\n"
    "  --expected     compare with the output_K.pb files next to the inputs (rtol 1e-3,\n"
    "                 atol 1e-7, NaN equal to NaN, exact for integers); exit 1 on mismatch\n"
    "  --repeat N     run each sample N times and print the median time per inference\n"
    "  --no-fuse      run every node as written, with the arithmetic calibrate and compare\n"
    "                 use (no Conv+BatchNormalization or Conv+Relu fusion, no weight packing)\n";

struct name_list {
    char **items;
    int n;
};

static void name_list_free(struct name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Names in dir starting with prefix (and ending with suffix), in natural order. */
static int list_dir(const char *dir, const char *prefix, const char *suffix, int want_dirs,
                    struct name_list *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return mq_error_set(err, "%s: cannot open folder: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name), np = strlen(prefix), ns = strlen(suffix);
        if (n < np + ns || strncmp(e->d_name, prefix, np) != 0 ||
            strcmp(e->d_name + n - ns, suffix) != 0)
            continue;
        char *path = mq_path_join(dir, e->d_name);
        struct stat st;
        int ok = path && stat(path, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode)
                                                            : S_ISREG(st.st_mode));
        free(path);
        if (!ok)
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            char **items = realloc(out->items, (size_t)cap * sizeof *items);
            if (!items)
                goto oom;
            out->items = items;
        }
        if (!(out->items[out->n] = strdup(e->d_name)))
            goto oom;
        out->n++;
    }
    closedir(d);
    if (out->n)
        qsort(out->items, (size_t)out->n, sizeof *out->items, mq_natural_compare_ptr);
    return MQ_OK;
oom:
    closedir(d);
    name_list_free(out);
    return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
}

/* Reads the sample's input_K.pb files and orders them as the plan's inputs. */
static int load_sample(const struct mq_plan *plan, const char *sample_dir,
                       struct mq_tensor *inputs, struct mq_error *err)
{
    int n_inputs = mq_plan_input_count(plan);
    struct name_list files;
    if (list_dir(sample_dir, "input_", ".pb", 0, &files, err))
        return MQ_ERR;
    int rc = MQ_OK;
    struct mq_tensor *read = calloc((size_t)files.n + 1, sizeof *read);
    char **names = calloc((size_t)files.n + 1, sizeof *names);
    if (!read || !names) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto out;
    }
    if (files.n != n_inputs) {
        rc = mq_error_set(err, "%s: holds %d input_K.pb files but the model takes %d inputs",
                          sample_dir, files.n, n_inputs);
        goto out;
    }
    for (int f = 0; f < files.n; f++) {
        char *path = mq_path_join(sample_dir, files.items[f]);
        if (!path) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            goto out;
        }
        rc = mq_tensor_read_pb(path, &read[f], &names[f], err);
        free(path);
        if (rc)
            goto out;
    }
    /* By name when every file names a graph input, else by position. */
    int by_name = 1;
    int *slot = calloc((size_t)n_inputs + 1, sizeof *slot);
    if (!slot) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto out;
    }
    for (int f = 0; f < files.n && by_name; f++) {
        int found = -1;
        for (int i = 0; i < n_inputs; i++)
            if (names[f] && strcmp(names[f], mq_str(mq_plan_input(plan, i)->name)) == 0)
                found = i;
        if (found < 0 || slot[found])
            by_name = 0;
        else
            slot[found] = 1;
    }
    free(slot);
    for (int f = 0; f < files.n; f++) {
        int target = f;
        if (by_name)
            for (int i = 0; i < n_inputs; i++)
                if (strcmp(names[f], mq_str(mq_plan_input(plan, i)->name)) == 0)
                    target = i;
        mq_tensor_move(&inputs[target], &read[f]);
        mq_tensor_adopt_declared_bfloat16(&inputs[target],
                                          mq_value_info_dtype(mq_plan_input(plan, target)));
    }
out:
    for (int f = 0; read && f < files.n; f++)
        mq_tensor_free(&read[f]);
    for (int f = 0; names && f < files.n; f++)
        free(names[f]);
    free(read);
    free(names);
    name_list_free(&files);
    return rc;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct run_options {
    const char *model_path, *inputs_dir, *outputs_dir;
    int expected;
    int no_fuse;
    long long repeat;
};

static int write_outputs(const struct mq_plan *plan, const char *dir, const char *set_name,
                         const struct mq_tensor *outputs, struct mq_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return mq_error_set(err, "%s: cannot create folder: %s", dir, strerror(errno));
    char *set_dir = mq_path_join(dir, set_name);
    if (!set_dir)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (mkdir(set_dir, 0777) != 0 && errno != EEXIST) {
        int rc = mq_error_set(err, "%s: cannot create folder: %s", set_dir, strerror(errno));
        free(set_dir);
        return rc;
    }
    int rc = MQ_OK;
    for (int o = 0; o < mq_plan_output_count(plan) && rc == MQ_OK; o++) {
        char file[64];
        snprintf(file, sizeof file, "output_%d.pb", o);
        char *path = mq_path_join(set_dir, file);
        if (!path) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            break;
        }
        rc = mq_tensor_write_pb(path, &outputs[o], mq_str(mq_plan_output(plan, o)->name), err);
        free(path);
    }
    free(set_dir);
    return rc;
}

/* Compares with the expected files; returns 1 when all match, 0 when not, negative on error. */
static int check_expected(const struct mq_plan *plan, const char *sample_dir, const char *label,
                          const struct mq_tensor *outputs, struct mq_error *err)
{
    int all = 1;
    for (int o = 0; o < mq_plan_output_count(plan); o++) {
        char file[64];
        snprintf(file, sizeof file, "output_%d.pb", o);
        char *path = mq_path_join(sample_dir, file);
        if (!path)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        struct mq_tensor expected;
        int rc = mq_tensor_read_pb(path, &expected, NULL, err);
        free(path);
        if (rc)
            return rc;
        mq_tensor_adopt_declared_bfloat16(&expected, outputs[o].dtype);
        struct mq_compare_result r;
        mq_tensor_compare(&outputs[o], &expected, MQ_COMPARE_RTOL, MQ_COMPARE_ATOL, &r);
        mq_tensor_free(&expected);
        printf("%s output '%s': %s  max_abs %.3g  max_rel %.3g%s%s\n", label,
               mq_str(mq_plan_output(plan, o)->name), r.match ? "ok" : "MISMATCH",
               r.max_abs_error, r.max_rel_error, r.match ? "" : "  ", r.reason);
        if (!r.match)
            all = 0;
    }
    return all;
}

static int run_samples(const struct run_options *opt, struct mq_error *err)
{
    struct mq_model *model = NULL;
    struct mq_plan *plan = NULL;
    struct name_list sets = {0};
    struct mq_tensor *inputs = NULL, *outputs = NULL;
    double *times = NULL;
    int rc, mismatches = 0;
    if ((rc = mq_model_load(opt->model_path, &model, err)))
        return rc;
    /* Nothing observes intermediate tensors here, so fused operators are safe and faster. */
    struct mq_plan_options plan_options = {.fuse = 1, .pack_weights = 1};
    if (opt->no_fuse)
        memset(&plan_options, 0, sizeof plan_options); /* the plan calibrate and compare build */
    if ((rc = mq_plan_build_with_options(model, &plan_options, &plan, err)))
        goto out;
    if ((rc = list_dir(opt->inputs_dir, "test_data_set_", "", 1, &sets, err)))
        goto out;
    int single = sets.n == 0;
    int n_sets = single ? 1 : sets.n;
    int n_in = mq_plan_input_count(plan), n_out = mq_plan_output_count(plan);
    inputs = calloc((size_t)n_in + 1, sizeof *inputs);
    outputs = calloc((size_t)n_out + 1, sizeof *outputs);
    long long repeat = opt->repeat > 0 ? opt->repeat : 1;
    times = malloc(sizeof *times * (size_t)(repeat * n_sets + 1));
    if (!inputs || !outputs || !times) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto out;
    }
    int n_times = 0;
    for (int s = 0; s < n_sets; s++) {
        char *sample_dir = single ? strdup(opt->inputs_dir)
                                  : mq_path_join(opt->inputs_dir, sets.items[s]);
        const char *label = single ? "sample" : sets.items[s];
        if (!sample_dir) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            goto out;
        }
        rc = load_sample(plan, sample_dir, inputs, err);
        for (long long r = 0; r < repeat && rc == MQ_OK; r++) {
            if (r > 0)
                for (int o = 0; o < n_out; o++)
                    mq_tensor_free(&outputs[o]);
            double t0 = now_ms();
            rc = mq_plan_run(plan, inputs, n_in, outputs, n_out, NULL, err);
            times[n_times++] = now_ms() - t0;
        }
        if (rc)
            mq_error_prefix(err, "%s: ", sample_dir);
        if (rc == MQ_OK && opt->outputs_dir)
            rc = write_outputs(plan, opt->outputs_dir, single ? "test_data_set_0" : sets.items[s],
                               outputs, err);
        if (rc == MQ_OK && opt->expected) {
            int ok = check_expected(plan, sample_dir, label, outputs, err);
            if (ok < 0)
                rc = ok;
            else if (!ok)
                mismatches++;
        }
        free(sample_dir);
        for (int i = 0; i < n_in; i++)
            mq_tensor_free(&inputs[i]);
        for (int o = 0; o < n_out; o++)
            mq_tensor_free(&outputs[o]);
        if (rc)
            goto out;
    }
    if (opt->repeat > 0 && n_times) {
        qsort(times, (size_t)n_times, sizeof *times, compare_double);
        fprintf(stderr, "timing: %d inferences, median %.4f ms, min %.4f ms\n", n_times,
                times[n_times / 2], times[0]);
    }
    if (mismatches)
        rc = mq_error_set(err, "%s: %d of %d samples differ from the expected outputs",
                          opt->model_path, mismatches, n_sets);
out:
    free(times);
    free(inputs);
    free(outputs);
    name_list_free(&sets);
    mq_plan_free(plan);
    mq_model_free(model);
    return rc;
}

int mq_cli_run(int argc, char **argv)
{
    struct run_options opt = {0};
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int m;
        if (mq_cli_flag(argv, i, "help")) {
            fputs(run_help, stdout);
            return MQ_EXIT_OK;
        } else if (mq_cli_flag(argv, i, "expected")) {
            opt.expected = 1;
        } else if (mq_cli_flag(argv, i, "no-fuse")) {
            opt.no_fuse = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "inputs", &value))) {
            if (m < 0)
                return mq_cli_usage_error("run", "--inputs needs a folder");
            opt.inputs_dir = value;
        } else if ((m = mq_cli_option(argc, argv, &i, "outputs", &value))) {
            if (m < 0)
                return mq_cli_usage_error("run", "--outputs needs a folder");
            opt.outputs_dir = value;
        } else if ((m = mq_cli_option(argc, argv, &i, "repeat", &value))) {
            if (m < 0 || (opt.repeat = mq_cli_parse_count(value)) < 1 || opt.repeat > 1000000)
                return mq_cli_usage_error("run", "--repeat needs a count from 1 to 1000000");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return mq_cli_usage_error("run", "unknown option '%s'", argv[i]);
        } else if (!opt.model_path) {
            opt.model_path = argv[i];
        } else {
            return mq_cli_usage_error("run", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!opt.model_path)
        return mq_cli_usage_error("run", "missing IN.onnx");
    if (!opt.inputs_dir)
        return mq_cli_usage_error("run", "missing --inputs DIR");
    struct mq_error err = {{0}};
    return mq_cli_report(run_samples(&opt, &err), &err);
}
