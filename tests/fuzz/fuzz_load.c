/*
 * libFuzzer target: the model loader (wire pre-check, protobuf-c, validation), the summary,
 * the planner, and the graph quantize prepares before it calibrates (quant/prepare.h without
 * samples: the canonical pass with constant folding through the interpreter, opset conversion
 * to 13, BatchNormalization/Mul/Add/Pad folds, HardSwish split, channel padding), which must leave
 * a model the planner and the packer take, or fail with a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "quant/prepare.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/summary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_model *model;
    struct mq_error err;
    /* No folder: external data is refused, the fuzzer must not read files. */
    if (mq_model_load_buffer(data, size, NULL, "fuzz", &model, &err) != 0)
        return 0;
    struct mq_model_summary summary;
    if (mq_model_summarize(model->proto, &summary, &err) == 0)
        mq_model_summary_free(&summary);
    struct mq_plan *plan;
    if (mq_plan_build(model, &plan, &err) == 0)
        mq_plan_free(plan);
    struct mq_quant_prepare_options prepare = {
        .split_hardswish = 1, .min_opset = 13, .opset_reason = "fuzzing", .pad_channels = 1};
    struct mq_quant_prepare_result prepared;
    err.message[0] = 0;
    if (mq_quant_prepare_graph(model, &prepare, &prepared, &err) == 0) {
        if (mq_plan_build(model, &plan, &err) == 0)
            mq_plan_free(plan);
    } else if (!err.message[0]) {
        abort(); /* a failure must say why */
    }
    mq_quant_prepare_result_free(&prepared);
    size_t packed = onnx__model_proto__get_packed_size(model->proto);
    uint8_t *buf = malloc(packed ? packed : 1);
    if (buf) {
        onnx__model_proto__pack(model->proto, buf);
        free(buf);
    }
    mq_model_free(model);
    return 0;
}
