/*
 * `onnx-monoquant convert-data IN.onnx --inputs DIR --out OUT [pre-processing]`: the samples of
 * DIR, decoded exactly as calibration decodes them (images and WAV files through the declared
 * pre-processing, tensors as they are), written as OUT/test_data_set_N/input_K.pb, so a user
 * sees what the model is fed and can reuse it anywhere the ONNX test-data layout is read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"
#include "cli/cli.h"
#include "cli/sample_args.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "util/fileio.h"
#include "util/text.h"

int mq_cli_convert_data(int argc, char **argv);

static const char convert_data_help[] =
    "Usage: onnx-monoquant convert-data IN.onnx --inputs DIR --out OUT [options]\n"
    "\n"
    "Decodes the samples of DIR as --calib would (any layout it takes, images and WAV\n"
    "files through the pre-processing below) and writes them as\n"
    "OUT/test_data_set_N/input_K.pb, one ONNX TensorProto per graph input, named after it.\n"
    "OUT is created with its parents; existing sets in it are overwritten.\n"
    "\n"
    "  --calib-limit N       the first N samples only\n"
    "  --quiet               no summary\n";

static int write_sample(const char *out, int64_t i, const struct mq_plan *plan,
                        const struct mq_tensor *inputs, struct mq_error *err)
{
    char name[64];
    snprintf(name, sizeof name, "test_data_set_%" PRId64, i);
    char *dir = mq_path_join(out, name);
    if (!dir)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int rc = mq_path_make_dirs(dir, err);
    for (int k = 0; rc == MQ_OK && k < mq_plan_input_count(plan); k++) {
        char file[64];
        snprintf(file, sizeof file, "input_%d.pb", k);
        char *path = mq_path_join(dir, file);
        rc = path ? mq_tensor_write_pb(path, &inputs[k], mq_str(mq_plan_input(plan, k)->name),
                                       err)
                  : mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        free(path);
    }
    free(dir);
    return rc;
}

int mq_cli_convert_data(int argc, char **argv)
{
    const char *in = NULL, *inputs_dir = NULL, *out = NULL;
    long long limit = 0;
    int quiet = 0, usage = 0;
    struct mq_preprocess pre;
    mq_preprocess_init(&pre);
    for (int i = 1; i < argc && !usage; i++) {
        const char *value = NULL;
        int m;
        if (mq_cli_flag(argv, i, "help")) {
            fputs(convert_data_help, stdout);
            fputs(mq_cli_preprocess_help, stdout);
            return MQ_EXIT_OK;
        } else if ((m = mq_cli_preprocess_option(argc, argv, &i, &pre, "convert-data"))) {
            usage = m < 0;
        } else if (mq_cli_flag(argv, i, "quiet")) {
            quiet = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "inputs", &value))) {
            if (m < 0)
                usage = mq_cli_usage_error("convert-data", "--inputs needs a folder");
            inputs_dir = value;
        } else if ((m = mq_cli_option(argc, argv, &i, "out", &value))) {
            if (m < 0)
                usage = mq_cli_usage_error("convert-data", "--out needs a folder");
            out = value;
        } else if ((m = mq_cli_option(argc, argv, &i, "calib-limit", &value))) {
            if (m < 0 || (limit = mq_cli_parse_count(value)) < 1)
                usage = mq_cli_usage_error("convert-data", "--calib-limit takes a count from 1");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage = mq_cli_usage_error("convert-data", "unknown option '%s'", argv[i]);
        } else if (!in) {
            in = argv[i];
        } else {
            usage = mq_cli_usage_error("convert-data", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!usage && (!in || !inputs_dir || !out))
        usage = mq_cli_usage_error("convert-data", "needs IN.onnx, --inputs DIR and --out OUT");
    if (usage)
        return MQ_EXIT_USAGE;
    struct mq_error err = {{0}};
    struct mq_model *model = NULL;
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    struct mq_tensor *tensors = NULL;
    int rc = mq_model_load(in, &model, &err);
    if (rc == MQ_OK)
        rc = mq_plan_build(model, &plan, &err);
    struct mq_calib_open_options open = {limit, 0, 0, &pre};
    if (rc == MQ_OK)
        rc = mq_calib_source_open_for_plan_with(inputs_dir, plan, &open, &source, &err);
    int n_inputs = plan ? mq_plan_input_count(plan) : 0;
    if (rc == MQ_OK && !(tensors = calloc((size_t)n_inputs + 1, sizeof *tensors)))
        rc = mq_error_code(&err, MQ_ERR_MEMORY, "out of memory");
    int64_t n = rc == MQ_OK ? mq_calib_source_count(source) : 0;
    for (int64_t i = 0; rc == MQ_OK && i < n; i++) {
        rc = mq_calib_source_load(source, i, tensors, &err);
        if (rc == MQ_OK)
            rc = write_sample(out, i, plan, tensors, &err);
        for (int k = 0; k < n_inputs; k++)
            mq_tensor_free(&tensors[k]);
        if (rc)
            mq_error_prefix(&err, "sample %" PRId64 " (%s): ", i,
                            mq_calib_source_sample_name(source, i));
    }
    if (rc == MQ_OK && !quiet) {
        char note[600];
        mq_cli_ignored_note(source, note, sizeof note);
        mq_text_printf(stderr, "wrote %" PRId64 " samples (%s) to %s%s\n", n,
                       mq_calib_layout_name(mq_calib_source_layout(source)), out, note);
    }
    free(tensors);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    mq_model_free(model);
    return mq_cli_report(rc, &err);
}
