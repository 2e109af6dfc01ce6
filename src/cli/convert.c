/* `onnx-monoquant convert IN.onnx OUT.onnx [--external-data]`: load and save. */
#include <stdio.h>

#include "cli/cli.h"
#include "model/model.h"

static const char convert_help[] =
    "Usage: onnx-monoquant convert IN.onnx OUT.onnx [--external-data]\n"
    "\n"
    "Loads a model (resolving external data) and saves it atomically. Unknown\n"
    "fields survive. OUT may not be IN.\n"
    "\n"
    "  --external-data   store initializers over 1 KiB in OUT.onnx.data next to OUT\n"
    "                    (done anyway when the model would pass 2 GiB)\n";

int mq_cli_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    struct mq_save_options options = {0};
    for (int i = 1; i < argc; i++) {
        if (mq_cli_flag(argv, i, "help")) {
            fputs(convert_help, stdout);
            return MQ_EXIT_OK;
        } else if (mq_cli_flag(argv, i, "external-data")) {
            options.external_data = 1;
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
    rc = mq_model_save(model->proto, out, &options, &err);
    mq_model_free(model);
    return mq_cli_report(rc, &err);
}
