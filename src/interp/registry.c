/* The kernel registry: every op family's table, searched by (domain, op type, opset). */
#include <string.h>

#include "interp/kernel.h"

static const struct mq_kernel *const kernel_tables[] = {
    mq_kernels_conv,          mq_kernels_conv_transpose,  mq_kernels_matmul,
    mq_kernels_pool,          mq_kernels_normalization,   mq_kernels_elementwise,
    mq_kernels_unary,         mq_kernels_softmax,         mq_kernels_reduce,
    mq_kernels_reshape_views, mq_kernels_layout,          mq_kernels_pad,
    mq_kernels_selection,     mq_kernels_copy,            mq_kernels_generators,
    mq_kernels_gather_scatter, mq_kernels_resize,         mq_kernels_cast,
    mq_kernels_control_flow,  mq_kernels_rnn,             mq_kernels_quantize_linear,
    mq_kernels_integer_ops,   mq_kernels_misc,            mq_kernels_sorting,
    mq_kernels_linalg,        mq_kernels_signal,          mq_kernels_sampling,
    mq_kernels_contrib_gelu,  mq_kernels_contrib_norm,    mq_kernels_contrib_matmul,
    mq_kernels_contrib_attention, mq_kernels_contrib_gather,
    mq_kernels_attention,
    mq_kernels_transformer_norm,
    mq_kernels_opset24_simple,
    mq_kernels_grid_cache_ops,
    mq_kernels_conv_im,
    mq_kernels_sequence_state,
    mq_kernels_tree_ensemble,
    mq_kernels_image_decoder,
};

static int same_domain(const char *a, const char *b)
{
    if (strcmp(a, "ai.onnx") == 0)
        a = "";
    if (strcmp(b, "ai.onnx") == 0)
        b = "";
    return strcmp(a, b) == 0;
}

const struct mq_kernel *mq_registry_find(const char *domain, const char *op_type, int opset)
{
    const char *d = domain ? domain : "";
    for (size_t t = 0; t < sizeof kernel_tables / sizeof kernel_tables[0]; t++) {
        for (const struct mq_kernel *k = kernel_tables[t]; k->op_type; k++) {
            if (strcmp(k->op_type, op_type) != 0 || !same_domain(k->domain, d))
                continue;
            if (opset < k->since_version)
                continue;
            if (k->until_version && opset > k->until_version)
                continue;
            return k;
        }
    }
    return NULL;
}

void mq_registry_each(void (*fn)(const struct mq_kernel *k, void *user), void *user)
{
    for (size_t t = 0; t < sizeof kernel_tables / sizeof kernel_tables[0]; t++)
        for (const struct mq_kernel *k = kernel_tables[t]; k->op_type; k++)
            fn(k, user);
}
