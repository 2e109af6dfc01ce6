/* `quantize --dynamic` and `quantize --weight-only`: see quantize_weights.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/quantize_weights.h"
#include "graph/canonical.h"
#include "core/tensor.h"
#include "quant/dynamic.h"
#include "quant/opset.h"
#include "util/fileio.h"
#include "util/text.h"

static int usage(const char *fmt, const char *detail)
{
    fprintf(stderr, "onnx-monoquant: ");
    mq_text_printf(stderr, fmt, detail);
    fprintf(stderr, "\nTry 'onnx-monoquant IN.onnx OUT.onnx --help'.\n");
    return MQ_EXIT_USAGE;
}

int mq_cli_weight_mode_option(int argc, char **argv, int *i, struct mq_weight_mode_args *w)
{
    const char *v = NULL;
    int m;
    if (w->wo.block_size == 0)
        w->wo.block_size = 32;
    if (mq_cli_flag(argv, *i, "dynamic")) {
        w->dynamic = 1;
    } else if ((m = mq_cli_option(argc, argv, i, "weight-only", &v))) {
        if (m < 0 || (strcmp(v, "int4") && strcmp(v, "uint4") && strcmp(v, "int8")))
            return usage("%s takes int4, uint4 or int8", "--weight-only");
        w->weight_only = 1;
        w->wo.qtype = strcmp(v, "int4") == 0 ? MQ_DTYPE_INT4
                      : strcmp(v, "uint4") == 0 ? MQ_DTYPE_UINT4 : MQ_DTYPE_INT8;
    } else if ((m = mq_cli_option(argc, argv, i, "block-size", &v))) {
        long long b = m < 0 ? -1 : mq_cli_parse_count(v);
        if (b < 16 || b > 256 || (b & (b - 1)))
            return usage("%s takes a power of two from 16 to 256", "--block-size");
        w->wo.block_size = (int)b;
    } else if ((m = mq_cli_option(argc, argv, i, "weight-only-method", &v))) {
        if (m < 0 || (strcmp(v, "rtn") && strcmp(v, "gptq")))
            return usage("%s takes rtn or gptq", "--weight-only-method");
        w->wo.method = strcmp(v, "gptq") == 0 ? MQ_WEIGHT_ONLY_GPTQ : MQ_WEIGHT_ONLY_RTN;
    } else if ((m = mq_cli_option(argc, argv, i, "format", &v))) {
        if (m < 0 || (strcmp(v, "qdq") && strcmp(v, "nbits")))
            return usage("%s takes nbits or qdq", "--format");
        w->wo.format_qdq = strcmp(v, "qdq") == 0;
    } else {
        return 0;
    }
    return 1;
}

int mq_cli_quantize_weights(const char *in, const char *out, const char *calib,
                            long long calib_limit, int per_channel, int quiet,
                            const struct mq_select_options *so,
                            const struct mq_weight_mode_args *w,
                            const struct mq_save_options *save)
{
    struct mq_error err = {{0}};
    struct mq_model *model = NULL;
    struct mq_selection sel = {0};
    int have_sel = 0;
    int rc = mq_path_check_distinct(in, out, &err);
    if (rc == MQ_OK)
        rc = mq_model_load(in, &model, &err);
    if (rc == MQ_OK)
        rc = mq_graph_canonicalize(model->proto, NULL, NULL, &err);
    /* blocked DequantizeLinear is opset 21; MatMulInteger and DynamicQuantizeLinear 11 */
    int need = w->weight_only && w->wo.format_qdq ? 21 : 11;
    if (rc == MQ_OK && mq_model_proto_opset(model->proto, "") < need)
        rc = mq_opset_convert(model->proto, need, NULL, &err);
    if (rc == MQ_OK) {
        rc = mq_select_nodes(model->proto, so, &sel, &err);
        have_sel = rc == MQ_OK;
    }
    char summary[512] = "";
    if (rc == MQ_OK && w->dynamic) {
        struct mq_dynamic_options o = {per_channel};
        struct mq_dynamic_result r;
        rc = mq_quant_dynamic(model->proto, &sel, &o, &r, &err);
        snprintf(summary, sizeof summary, "dynamic: %d MatMul quantized (int8 weights%s, uint8 "
                 "activations at run time), %d selected MatMul stay float", r.quantized,
                 per_channel ? " per column" : "", r.kept_float);
    } else if (rc == MQ_OK) {
        struct mq_weight_only_options o = w->wo;
        o.calib = calib;
        o.calib_limit = calib_limit;
        struct mq_weight_only_result r;
        rc = mq_quant_weight_only(model, &sel, &o, &r, &err);
        snprintf(summary, sizeof summary, "weight-only: %d MatMul quantized in blocks of %d "
                 "(%s, %s), weights %llu -> %llu bytes (%.1f %%), %d selected MatMul stay float",
                 r.quantized, o.block_size, o.format_qdq ? "blocked DequantizeLinear"
                 : "MatMulNBits", o.method == MQ_WEIGHT_ONLY_GPTQ ? "GPTQ" : "round to nearest",
                 r.float_bytes, r.quant_bytes,
                 r.float_bytes ? 100.0 * (double)r.quant_bytes / (double)r.float_bytes : 0.0,
                 r.kept_float);
        if (r.gathers)
            snprintf(summary + strlen(summary), sizeof summary - strlen(summary),
                     "; %d embedding Gather quantized (%s), tables %llu -> %llu bytes (%.1f %%)",
                     r.gathers, o.format_qdq ? "blocked DequantizeLinear"
                     : "GatherBlockQuantized", r.gather_float_bytes, r.gather_quant_bytes,
                     r.gather_float_bytes ? 100.0 * (double)r.gather_quant_bytes /
                     (double)r.gather_float_bytes : 0.0);
    }
    if (rc == MQ_OK)
        rc = mq_model_save(model->proto, out, save, &err);
    if (rc == MQ_OK && !quiet)
        fprintf(stderr, "%s\n", summary);
    if (have_sel)
        mq_selection_free(&sel);
    mq_model_free(model);
    return mq_cli_report(rc, &err);
}
