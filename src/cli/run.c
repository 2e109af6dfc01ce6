/* `onnx-monoquant run IN.onnx --inputs DIR [--outputs DIR] [--expected] [--repeat N]` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calib/driver.h"
#include "cli/cli.h"
#include "cli/sample_args.h"
#include "interp/tolerance.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "util/fileio.h"
#include "util/text.h"

static const char run_help[] =
    "Usage: onnx-monoquant run IN.onnx --inputs DIR [--outputs DIR] [--expected] [--repeat N]\n"
    "\n"
    "Runs the model in the reference interpreter on every sample of DIR, in any layout\n"
    "--calib takes: DIR/test_data_set_N/input_K.pb (one ONNX TensorProto per graph input,\n"
    "matched by its name, else by K), folders of <input>.npy, .npz archives, or stacked\n"
    "<input>.npy. A DIR holding input_K.pb files itself is one sample.\n"
    "\n"
    "  --outputs DIR  write DIR/test_data_set_N/output_K.pb, named after the graph outputs\n"
    "                 (DIR is created with its parents; it may not be the --inputs folder)\n"
    "  --expected     compare with the output_K.pb files next to the inputs (rtol 1e-3,\n"
    "                 atol 1e-7, NaN equal to NaN, exact for integers); exit 1 on mismatch\n"
    "  --repeat N     run each sample N times and print the median time per inference\n"
    "  --no-fuse      run every node as written, with the arithmetic calibrate and compare\n"
    "                 use (no Conv+BatchNormalization or Conv+Relu fusion, no weight packing)\n";

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
    struct mq_preprocess preprocess;
};

/* What the sample driver's callbacks share (one job: samples run in order). */
struct run_state {
    const struct run_options *opt;
    const struct mq_plan *plan;
    const struct mq_calib_source *source;
    double *times;
    int64_t n_times, cap_times;
    int mismatches;
    int failed_to_grow;
};

static int same_folder(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && S_ISDIR(sa.st_mode) &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The folder sample i came from, or NULL when it is a file (an .npz, a stacked .npy). */
static const char *sample_folder(const struct run_state *st, int64_t i)
{
    enum mq_calib_layout layout = mq_calib_source_layout(st->source);
    if (layout != MQ_CALIB_LAYOUT_PB_FOLDERS && layout != MQ_CALIB_LAYOUT_NPY_FOLDERS)
        return NULL;
    return mq_calib_source_sample_name(st->source, i);
}

/* The sample's name in messages and under --outputs: its folder or file name, or
   test_data_set_N when --inputs is the sample folder itself or a stacked .npy. */
static void sample_label(const struct run_state *st, int64_t i, char *buf, size_t size)
{
    enum mq_calib_layout layout = mq_calib_source_layout(st->source);
    const char *path = mq_calib_source_sample_name(st->source, i);
    if (layout == MQ_CALIB_LAYOUT_NPY_STACKED || layout == MQ_CALIB_LAYOUT_IMAGES ||
        layout == MQ_CALIB_LAYOUT_AUDIO || strcmp(path, st->opt->inputs_dir) == 0) {
        snprintf(buf, size, "test_data_set_%lld", (long long)i);
        return;
    }
    const char *base = strrchr(path, '/');
    snprintf(buf, size, "%s", base ? base + 1 : path);
    size_t n = strlen(buf);
    if (layout == MQ_CALIB_LAYOUT_NPZ && n > 4 && strcmp(buf + n - 4, ".npz") == 0)
        buf[n - 4] = '\0';
}

static int write_outputs(const struct run_state *st, int64_t i, const struct mq_tensor *outputs,
                         struct mq_error *err)
{
    char set_name[256];
    sample_label(st, i, set_name, sizeof set_name);
    char *set_dir = mq_path_join(st->opt->outputs_dir, set_name);
    if (!set_dir)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    const char *folder = sample_folder(st, i);
    int rc = MQ_OK;
    /* --inputs DIR/test_data_set_0 --outputs DIR would write over the expected outputs. */
    if (folder && same_folder(set_dir, folder))
        rc = mq_error_code(err, MQ_ERR_USAGE, "--outputs %s: %s is the sample folder %s; writing "
                           "there would overwrite its expected outputs", st->opt->outputs_dir,
                           set_dir, folder);
    if (rc == MQ_OK)
        rc = mq_path_make_dirs(set_dir, err);
    for (int o = 0; o < mq_plan_output_count(st->plan) && rc == MQ_OK; o++) {
        char file[64];
        snprintf(file, sizeof file, "output_%d.pb", o);
        char *path = mq_path_join(set_dir, file);
        if (!path) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            break;
        }
        rc = mq_tensor_write_pb(path, &outputs[o], mq_str(mq_plan_output(st->plan, o)->name),
                                err);
        free(path);
    }
    free(set_dir);
    return rc;
}

/* Compares with the expected files; returns 1 when all match, 0 when not, negative on error. */
static int check_expected(const struct run_state *st, int64_t i, const struct mq_tensor *outputs,
                          struct mq_error *err)
{
    const char *sample_dir = sample_folder(st, i);
    if (!sample_dir)
        return mq_error_code(err, MQ_ERR_USAGE, "--expected reads output_K.pb next to the "
                             "inputs: it needs sample folders, not %s",
                             mq_calib_layout_name(mq_calib_source_layout(st->source)));
    char label[256];
    if (strcmp(sample_dir, st->opt->inputs_dir) == 0)
        snprintf(label, sizeof label, "sample");
    else
        sample_label(st, i, label, sizeof label);
    int all = 1;
    for (int o = 0; o < mq_plan_output_count(st->plan); o++) {
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
        mq_text_printf(stdout, "%s output '%s': %s  max_abs %.3g  max_rel %.3g%s%s\n", label,
                       mq_str(mq_plan_output(st->plan, o)->name), r.match ? "ok" : "MISMATCH",
                       r.max_abs_error, r.max_rel_error, r.match ? "" : "  ", r.reason);
        if (!r.match)
            all = 0;
    }
    return all;
}

static void note_time(void *user, double ms)
{
    struct run_state *st = user;
    if (st->n_times == st->cap_times) {
        int64_t cap = st->cap_times ? st->cap_times * 2 : 64;
        double *bigger = realloc(st->times, (size_t)cap * sizeof *bigger);
        if (!bigger) {
            st->failed_to_grow = 1;
            return;
        }
        st->times = bigger;
        st->cap_times = cap;
    }
    st->times[st->n_times++] = ms;
}

static int sample_done(void *user, int64_t i, struct mq_tensor *outputs, int n_outputs,
                       struct mq_error *err)
{
    (void)n_outputs;
    struct run_state *st = user;
    int rc = MQ_OK;
    if (st->opt->outputs_dir)
        rc = write_outputs(st, i, outputs, err);
    if (rc == MQ_OK && st->opt->expected) {
        int ok = check_expected(st, i, outputs, err);
        if (ok < 0)
            rc = ok;
        else if (!ok)
            st->mismatches++;
    }
    return rc;
}

static int run_samples(const struct run_options *opt, struct mq_error *err)
{
    struct mq_model *model = NULL;
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    struct run_state st = {opt, NULL, NULL, NULL, 0, 0, 0, 0};
    int rc;
    if (opt->outputs_dir && same_folder(opt->outputs_dir, opt->inputs_dir))
        return mq_error_code(err, MQ_ERR_USAGE, "--outputs %s is the --inputs folder: writing "
                             "there would overwrite the expected outputs", opt->outputs_dir);
    if ((rc = mq_model_load(opt->model_path, &model, err)))
        return rc;
    /* Nothing observes intermediate tensors here, so fused operators are safe and faster. */
    struct mq_plan_options plan_options = {.fuse = 1, .pack_weights = 1};
    if (opt->no_fuse)
        memset(&plan_options, 0, sizeof plan_options); /* the plan calibrate and compare build */
    if ((rc = mq_plan_build_with_options(model, &plan_options, &plan, err)))
        goto out;
    struct mq_calib_open_options open = {0, 0, 0, &opt->preprocess};
    if ((rc = mq_calib_source_open_for_plan_with(opt->inputs_dir, plan, &open, &source, err)))
        goto out;
    st.plan = plan;
    st.source = source;
    void *workers[1] = {&st};
    struct mq_sample_pass pass = {
        .plan = plan,
        .source = source,
        .jobs = 1,
        .workers = workers,
        .done = sample_done,
        .repeat = opt->repeat,
        .timed = opt->repeat > 0 ? note_time : NULL,
    };
    int64_t done;
    rc = mq_sample_pass_run(&pass, &done, err);
    if (rc == MQ_OK && st.failed_to_grow)
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory keeping the timings");
    if (rc == MQ_OK && st.n_times) {
        qsort(st.times, (size_t)st.n_times, sizeof *st.times, compare_double);
        fprintf(stderr, "timing: %lld inferences, median %.4f ms, min %.4f ms\n",
                (long long)st.n_times, st.times[st.n_times / 2], st.times[0]);
    }
    if (rc == MQ_OK && st.mismatches)
        rc = mq_error_set(err, "%s: %d of %lld samples differ from the expected outputs",
                          opt->model_path, st.mismatches,
                          (long long)mq_calib_source_count(source));
out:
    free(st.times);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    mq_model_free(model);
    return rc;
}

int mq_cli_run(int argc, char **argv)
{
    struct run_options opt = {0};
    mq_preprocess_init(&opt.preprocess);
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int m;
        if ((m = mq_cli_preprocess_option(argc, argv, &i, &opt.preprocess, "run"))) {
            if (m < 0)
                return MQ_EXIT_USAGE;
        } else if (mq_cli_flag(argv, i, "help")) {
            fputs(run_help, stdout);
            fputs(mq_cli_preprocess_help, stdout);
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
