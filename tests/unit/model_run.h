/*
 * Unit-test helpers for running a model built in memory: pack it and load it
 * back, as a saved file would be, then run it in a plain plan.  Failures are
 * Check assertions carrying the library's message.
 */
#ifndef MQ_TEST_MODEL_RUN_H
#define MQ_TEST_MODEL_RUN_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp/plan.h"
#include "model/model.h"

/* The model packed and reloaded. */
static inline struct mq_model *mr_reload(const Onnx__ModelProto *m)
{
    size_t size = onnx__model_proto__get_packed_size(m);
    uint8_t *bytes = malloc(size + 1);
    ck_assert_ptr_nonnull(bytes);
    onnx__model_proto__pack(m, bytes);
    struct mq_model *model;
    struct mq_error err;
    ck_assert_msg(mq_model_load_buffer(bytes, size, NULL, "test", &model, &err) == MQ_OK, "%s",
                  err.message);
    free(bytes);
    return model;
}

/* Runs the reloaded model on n_in inputs into n_out outputs (zeroed first). */
static inline void mr_run(const Onnx__ModelProto *m, const struct mq_tensor *in, int n_in,
                          struct mq_tensor *out, int n_out)
{
    struct mq_model *model = mr_reload(m);
    struct mq_plan *plan;
    struct mq_error err;
    ck_assert_msg(mq_plan_build(model, &plan, &err) == MQ_OK, "%s", err.message);
    memset(out, 0, (size_t)n_out * sizeof *out);
    ck_assert_msg(mq_plan_run(plan, in, n_in, out, n_out, NULL, &err) == MQ_OK, "%s",
                  err.message);
    mq_plan_free(plan);
    mq_model_free(model);
}

#endif
