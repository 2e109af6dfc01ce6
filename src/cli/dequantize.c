/* `onnx-monoquant dequantize IN.onnx OUT.onnx [--weights-only] [--external-data] [--quiet]` */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands_tools.h"
#include "model/model.h"
#include "quant/dequantize.h"
#include "util/text.h"

static const char dequantize_help[] =
    "Usage: onnx-monoquant dequantize IN.onnx OUT.onnx [options]\n"
    "\n"
    "Turns a QDQ model back into a float one: quantized weights and biases become\n"
    "float initializers (their dequantized values, under their original names),\n"
    "activation QuantizeLinear/DequantizeLinear pairs are removed, and a Relu the\n"
    "quantizer folded into a pair is put back. Everything else is left as it is.\n"
    "The weights keep their quantization error: compare OUT with the original to\n"
    "see how much of the loss comes from the weights alone.\n"
    "\n"
    "  --weights-only   fold the weights only and keep the activation pairs: OUT\n"
    "                   computes what IN does, with float weights\n"
    "  --external-data  store large initializers in OUT.data next to OUT\n"
    "  --quiet          no summary on stderr\n";

int mq_cli_dequantize(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    int quiet = 0;
    struct mq_dequantize_options options = {0};
    struct mq_save_options save = {0};
    for (int i = 1; i < argc; i++) {
        if (mq_cli_flag(argv, i, "help")) {
            fputs(dequantize_help, stdout);
            return MQ_EXIT_OK;
        } else if (mq_cli_flag(argv, i, "weights-only")) {
            options.weights_only = 1;
        } else if (mq_cli_flag(argv, i, "external-data")) {
            save.external_data = 1;
        } else if (mq_cli_flag(argv, i, "quiet")) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return mq_cli_usage_error("dequantize", "unknown option '%s'", argv[i]);
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            return mq_cli_usage_error("dequantize", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!in || !out)
        return mq_cli_usage_error("dequantize", "needs IN.onnx and OUT.onnx");
    struct mq_error err = {{0}};
    struct mq_model *model = NULL;
    struct mq_dequantize_result r;
    memset(&r, 0, sizeof r);
    int rc = mq_path_check_distinct(in, out, &err);
    if (rc == MQ_OK)
        rc = mq_model_load(in, &model, &err);
    if (rc == MQ_OK) {
        rc = mq_dequantize(model->proto, &options, &r, &err);
        if (rc)
            mq_error_prefix(&err, "%s: ", in);
    }
    if (rc == MQ_OK)
        rc = mq_model_save(model->proto, out, &save, &err);
    if (rc == MQ_OK && !quiet) {
        mq_text_printf(stderr, "dequantized %s -> %s\n", in, out);
        mq_text_printf(stderr, "  weights folded into float initializers: %d (%d under their "
                       "original names)\n", r.weights_folded, r.weights_renamed);
        if (!options.weights_only)
            mq_text_printf(stderr, "  activation Q/DQ pairs removed: %d\n", r.pairs_removed);
        if (r.activations_restored)
            mq_text_printf(stderr, "  folded activations put back: %d%s\n",
                           r.activations_restored,
                           r.restored_by_guess ? " (Relus where a pair clamps at 0: the model "
                                                 "has no record of what the quantizer folded)"
                                               : "");
        if (r.channels_unpadded)
            mq_text_printf(stderr, "  Conv input channel padding taken out: %d\n",
                           r.channels_unpadded);
        if (r.hardsigmoids_restored)
            mq_text_printf(stderr, "  HardSigmoid on integer codes made float again: %d\n",
                           r.hardsigmoids_restored);
        if (r.kept_quantize || r.kept_dequantize)
            mq_text_printf(stderr,
                           "  left in place: %d QuantizeLinear, %d DequantizeLinear (read by "
                           "other nodes, or of non-constant inputs)\n", r.kept_quantize,
                           r.kept_dequantize);
        mq_text_printf(stderr, "  initializers no longer used, removed: %d\n",
                       r.initializers_removed);
    }
    mq_model_free(model);
    return mq_cli_report(rc, &err);
}
