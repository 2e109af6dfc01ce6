/* `onnx-monoquant convert IN.onnx OUT.onnx [--external-data]`: load and save. */
#include <stdio.h>

#include "cli/cli.h"
#include "model/model.h"
#include "quant/opset.h"

static const char convert_help[] =
    "Usage: onnx-monoquant convert IN.onnx OUT.onnx [--external-data] [--opset N]\n"
    "\n"
    "Loads a model (resolving external data) and saves it atomically. Unknown\n"
    "fields survive. OUT may not be IN.\n"
    "\n"
    "  --external-data   store initializers over 1 KiB in OUT.onnx.data next to OUT\n"
    "                    (done anyway when the model would pass 2 GiB)\n"
    "  --opset N         raise the ai.onnx opset to N (13 or later), rewriting every\n"
    "                    op whose signature changed; an op that cannot be converted\n"
    "                    is named in the error\n";

int mq_cli_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    struct mq_save_options options = {0};
    long long opset = 0;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int m;
        if (mq_cli_flag(argv, i, "help")) {
            fputs(convert_help, stdout);
            return MQ_EXIT_OK;
        } else if (mq_cli_flag(argv, i, "external-data")) {
            options.external_data = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "opset", &value))) {
            if (m < 0 || (opset = mq_cli_parse_count(value)) < 13 || opset > 99)
                return mq_cli_usage_error("convert", "--opset needs a version from 13 on");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return mq_cli_usage_error("convert", "unknown option '%s'", argv[i]);
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            return mq_cli_usage_error("convert", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!in || !out)
        return mq_cli_usage_error("convert", "needs IN.onnx and OUT.onnx");
    struct mq_error err = {{0}};
    int rc = mq_path_check_distinct(in, out, &err);
    if (rc)
        return mq_cli_report(rc, &err);
    struct mq_model *model;
    rc = mq_model_load(in, &model, &err);
    if (rc)
        return mq_cli_report(rc, &err);
    if (opset)
        rc = mq_opset_convert(model->proto, (int)opset, NULL, &err);
    if (rc == MQ_OK)
        rc = mq_model_save(model->proto, out, &options, &err);
    mq_model_free(model);
    return mq_cli_report(rc, &err);
}
