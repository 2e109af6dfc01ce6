/* libFuzzer target: the model loader (wire pre-check, protobuf-c, validation) and the summary. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
    size_t packed = onnx__model_proto__get_packed_size(model->proto);
    uint8_t *buf = malloc(packed ? packed : 1);
    if (buf) {
        onnx__model_proto__pack(model->proto, buf);
        free(buf);
    }
    mq_model_free(model);
    return 0;
}
