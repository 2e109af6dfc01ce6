/*
 * The GELU family of onnxruntime's com.microsoft domain: Gelu (exact, through erf), BiasGelu
 * (Gelu of X + bias), FastGelu (the tanh approximation, optional bias) and QuickGelu
 * (x * sigmoid(alpha * x)).  A bias is one row of the last dimension, added to every row, as
 * the transformer optimiser writes it after a MatMul.
 */
#include <math.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/contrib_common.h"

enum gelu_kind { GELU_EXACT, GELU_TANH, GELU_QUICK };

static float gelu_one(enum gelu_kind kind, float x, float alpha)
{
    switch (kind) {
    case GELU_EXACT:
        return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case GELU_TANH: {
        const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case GELU_QUICK:
        return x / (1.0f + expf(-alpha * x));
    }
    return x;
}

static int gelu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    enum gelu_kind kind = GELU_EXACT;
    if (strcmp(node->op_type, "FastGelu") == 0)
        kind = GELU_TANH;
    else if (strcmp(node->op_type, "QuickGelu") == 0)
        kind = GELU_QUICK;
    float alpha = mq_attr_float(node, "alpha", 1.702f);
    const struct mq_tensor *x = mq_contrib_float_input(node, inputs, n_inputs, 0, 0, err);
    if (!x)
        return MQ_ERR;
    int bad = 0;
    const struct mq_tensor *bias = kind == GELU_QUICK ? NULL
        : mq_contrib_optional_float(node, inputs, n_inputs, 1, &bad, err);
    if (bad)
        return MQ_ERR;
    if (strcmp(node->op_type, "BiasGelu") == 0 && !bias)
        return mq_error_set(err, "node '%s' (BiasGelu): input 1 (bias) is required", node->name);
    int64_t width = mq_contrib_last_dim(x);
    if (bias && bias->count != width)
        return mq_error_set(err, "node '%s' (%s): bias has %lld elements, expected the last "
                            "dimension of X (%lld)", node->name, node->op_type,
                            (long long)bias->count, (long long)width);
    if (mq_tensor_alloc_uninit_like(&outputs[0], x, node->name, err))
        return MQ_ERR;
    const float *xs = x->data, *bs = bias ? bias->data : NULL;
    float *ys = outputs[0].data;
    for (int64_t i = 0; i < x->count; i++) {
        float v = xs[i] + (bs ? bs[width ? i % width : 0] : 0.0f);
        ys[i] = gelu_one(kind, v, alpha);
    }
    return MQ_OK;
}

const struct mq_kernel mq_kernels_contrib_gelu[] = {
    {"com.microsoft", "Gelu", 1, 0, NULL, gelu_run, NULL},
    {"com.microsoft", "BiasGelu", 1, 0, NULL, gelu_run, NULL},
    {"com.microsoft", "FastGelu", 1, 0, NULL, gelu_run, NULL},
    {"com.microsoft", "QuickGelu", 1, 0, NULL, gelu_run, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL},
};
