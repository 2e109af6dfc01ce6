/*
 * Recurrent-state operators of opset 27 for decoding with a cache: CausalConvWithState
 * (a depthwise causal 1-D convolution whose left context comes from, and goes back to, a
 * state tensor, with an optional fused SiLU).  Arithmetic is in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"

static double *load(const struct mq_tensor *t)
{
    double *v = malloc(sizeof(double) * (size_t)(t->count + 1));
    if (v && mq_as_double_load(t, v)) {
        free(v);
        return NULL;
    }
    return v;
}

/*
 * input [B, C, L], weight [C, 1, K], bias [C], past_state [B, C, K-1] (zeros when absent).
 * padded = past_state ++ input along time; output[b, c, t] = bias[c] + sum_k weight[c, 0, k] *
 * padded[b, c, t + k], then x * sigmoid(x) for activation silu/swish; present_state is the
 * last K-1 steps of padded.
 */
static int causal_conv_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                           const struct mq_tensor *const *inputs, int n_inputs,
                           struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct mq_tensor *x, *w;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &w, err))
        return MQ_ERR;
    const struct mq_tensor *bias = ops_input(inputs, n_inputs, 2);
    const struct mq_tensor *past = ops_input(inputs, n_inputs, 3);
    char buf[16];
    const char *act = mq_attr_string(node, "activation", "none", buf, sizeof buf);
    int silu = strcmp(act, "silu") == 0 || strcmp(act, "swish") == 0;
    if (!silu && strcmp(act, "none") != 0)
        return ops_fail(node, err, "activation '%s' is not none, silu or swish", act);
    if (x->rank != 3 || w->rank != 3 || w->dims[0] != x->dims[1] || w->dims[1] != 1 ||
        w->dims[2] < 1)
        return ops_fail(node, err, "input must be [B, C, L] and weight [C, 1, K]");
    int64_t B = x->dims[0], C = x->dims[1], L = x->dims[2], K = w->dims[2], P = K - 1;
    if ((bias && bias->count != C) ||
        (past && (past->rank != 3 || past->dims[0] != B || past->dims[1] != C ||
                  past->dims[2] != P)))
        return ops_fail(node, err, "bias must be [C] and past_state [B, C, K-1]");
    double *xv = load(x), *wv = load(w), *bv = bias ? load(bias) : NULL;
    double *pv = past ? load(past) : NULL;
    double *padded = calloc((size_t)(B * C * (L + P) + 1), sizeof(double));
    double *y = malloc(sizeof(double) * (size_t)(B * C * L + 1));
    double *st = malloc(sizeof(double) * (size_t)(B * C * P + 1));
    int rc = MQ_ERR;
    if (!xv || !wv || (bias && !bv) || (past && !pv) || !padded || !y || !st) {
        ops_fail(node, err, "out of memory or unsupported type");
        goto done;
    }
    for (int64_t bc = 0; bc < B * C; bc++) {
        double *row = padded + bc * (L + P);
        if (pv)
            memcpy(row, pv + bc * P, sizeof(double) * (size_t)P);
        memcpy(row + P, xv + bc * L, sizeof(double) * (size_t)L);
        int64_t c = bc % C;
        for (int64_t t = 0; t < L; t++) {
            double acc = bv ? bv[c] : 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += wv[c * K + k] * row[t + k];
            y[bc * L + t] = silu ? acc / (1.0 + exp(-acc)) : acc;
        }
        memcpy(st + bc * P, row + L, sizeof(double) * (size_t)P);
    }
    int64_t sdims[3] = {B, C, P};
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, 3, x->dims, err))
        goto done;
    mq_as_double_store(&outputs[0], y);
    if (n_outputs > 1) {
        if (ops_alloc_uninit(node, &outputs[1], x->dtype, 3, sdims, err))
            goto done;
        mq_as_double_store(&outputs[1], st);
    }
    rc = MQ_OK;
done:
    free(xv), free(wv), free(bv), free(pv), free(padded), free(y), free(st);
    return rc;
}

const struct mq_kernel mq_kernels_sequence_state[] = {
    {"", "CausalConvWithState", 27, 0, NULL, causal_conv_run, NULL},
    {0},
};
