/*
 * Unit-test helpers for running a model built in memory: pack it and load it
 * back, as a saved file would be, then run it in a plain plan.  Failures are
 * Check assertions carrying the library's message.
 */
#ifndef MQ_TEST_MODEL_RUN_H
#define MQ_TEST_MODEL_RUN_H

#include <check.h>
#include <math.h>
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

/*
 * A rewritten model against the one it came from, on the same float32 inputs: every one of the
 * n_out outputs has the same shape, and each value is within abs_tol + rel_tol * |before| of the
 * value before (both 0: the same bytes).  `what` names the model before in the messages.
 */
static inline void mr_assert_close(const Onnx__ModelProto *after,
                                   const Onnx__ModelProto *before, const struct mq_tensor *in,
                                   int n_in, int n_out, float abs_tol, float rel_tol,
                                   const char *what)
{
    struct mq_tensor r[8], e[8];
    ck_assert(n_out <= 8);
    mr_run(after, in, n_in, r, n_out);
    mr_run(before, in, n_in, e, n_out);
    for (int k = 0; k < n_out; k++) {
        ck_assert_int_eq(r[k].rank, e[k].rank);
        for (int d = 0; d < r[k].rank; d++)
            ck_assert_int_eq(r[k].dims[d], e[k].dims[d]);
        const float *pr = r[k].data, *pe = e[k].data;
        if (abs_tol == 0.0f && rel_tol == 0.0f)
            ck_assert_mem_eq(pr, pe, (size_t)r[k].count * sizeof *pr);
        for (int64_t i = 0; i < r[k].count; i++)
            ck_assert_msg(fabsf(pr[i] - pe[i]) <= abs_tol + rel_tol * fabsf(pe[i]),
                          "output %d[%lld]: %g, %s %g", k, (long long)i, (double)pr[i], what,
                          (double)pe[i]);
        mq_tensor_free(&r[k]);
        mq_tensor_free(&e[k]);
    }
}

#endif
