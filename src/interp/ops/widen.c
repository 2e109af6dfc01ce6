/*
 * float16 and bfloat16 inputs widened to float32 for the kernels that compute in float32, and
 * their results narrowed back (see widen.h).
 */
#include "interp/ops/widen.h"

#include <stdlib.h>
#include <string.h>

static int is_narrow_float(int dtype)
{
    return dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16;
}

int mq_widen_needed(const struct mq_tensor *const *inputs, int n_inputs)
{
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && is_narrow_float(inputs[i]->dtype))
            return 1;
    return 0;
}

static int widen_tensor(struct mq_tensor *dst, const struct mq_tensor *src, const char *what,
                        struct mq_error *err)
{
    if (mq_tensor_alloc(dst, MQ_DTYPE_FLOAT, src->rank, src->dims, what, err))
        return MQ_ERR;
    const uint16_t *s = src->data;
    float *d = dst->data;
    if (src->dtype == MQ_DTYPE_FLOAT16) {
        for (int64_t i = 0; i < src->count; i++)
            d[i] = mq_half_to_float(s[i]);
    } else {
        for (int64_t i = 0; i < src->count; i++)
            d[i] = mq_bfloat16_to_float(s[i]);
    }
    return MQ_OK;
}

int mq_narrow_float(struct mq_tensor *t, int dtype, const char *what, struct mq_error *err)
{
    struct mq_tensor narrow;
    if (mq_tensor_alloc(&narrow, dtype, t->rank, t->dims, what, err))
        return MQ_ERR;
    const float *s = t->data;
    uint16_t *d = narrow.data;
    if (dtype == MQ_DTYPE_FLOAT16) {
        for (int64_t i = 0; i < t->count; i++)
            d[i] = mq_float_to_half(s[i]);
    } else {
        for (int64_t i = 0; i < t->count; i++)
            d[i] = mq_float_to_bfloat16(s[i]);
    }
    mq_tensor_free(t);
    mq_tensor_move(t, &narrow);
    return MQ_OK;
}

int mq_widen_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                 const struct mq_tensor *const *inputs, int n_inputs, struct mq_tensor *outputs,
                 int n_outputs, mq_kernel_run_fn run, unsigned keep_mask, struct mq_error *err)
{
    int rc = MQ_OK;
    size_t n = n_inputs > 0 ? (size_t)n_inputs : 1;
    struct mq_tensor *wide = calloc(n, sizeof *wide);
    const struct mq_tensor **args = calloc(n, sizeof *args);
    if (!wide || !args) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                           node->op_type);
        goto done;
    }
    for (int i = 0; i < n_inputs; i++) {
        args[i] = inputs[i];
        if (inputs[i] && is_narrow_float(inputs[i]->dtype)) {
            if (widen_tensor(&wide[i], inputs[i], node->name, err)) {
                rc = MQ_ERR;
                goto done;
            }
            args[i] = &wide[i];
        }
    }
    rc = run(node, exec, args, n_inputs, outputs, n_outputs, err);
    if (rc)
        goto done;
    int target = n_inputs > 0 && inputs[0] ? inputs[0]->dtype : MQ_DTYPE_FLOAT;
    if (!is_narrow_float(target))
        goto done;
    for (int o = 0; o < n_outputs; o++) {
        if (o < 32 && (keep_mask >> o) & 1u)
            continue;
        if (outputs[o].dtype != MQ_DTYPE_FLOAT)
            continue;
        rc = mq_narrow_float(&outputs[o], target, node->name, err);
        if (rc)
            goto done;
    }
done:
    if (wide)
        for (int i = 0; i < n_inputs; i++)
            mq_tensor_free(&wide[i]);
    free(wide);
    free(args);
    return rc;
}
