/*
 * Recurrent-state operators of opset 27 for decoding with a cache: CausalConvWithState
 * (a depthwise causal 1-D convolution whose left context comes from, and goes back to, a
 * state tensor, with an optional fused SiLU) and LinearAttention (attention as a running
 * [d_k, d_v] state per head, updated by the linear, gated, delta or gated-delta rule).
 * Arithmetic is in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"

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
    double *xv = mq_as_double_copy(x), *wv = mq_as_double_copy(w);
    double *bv = bias ? mq_as_double_copy(bias) : NULL;
    double *pv = past ? mq_as_double_copy(past) : NULL;
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

/*
 * LinearAttention: query [B, T, Hq*dk], key [B, T, Hkv*dk], value [B, T, Hkv*dv], past_state
 * [B, Hkv, dk, dv] (zeros when absent), decay [B, T, Hkv or Hkv*dk] (gated rules), beta
 * [B, T, Hkv or 1] and erase_gate [B, T, Hkv*dk] (delta rules).  Per step t and kv head:
 * gated: S *= exp(decay_t); delta: v_t = beta_t * (v_t - S^T (erase_t . k_t)); then
 * S += k_t v_t^T, and each query head h reads o_t = scale * q_t^T S of kv head h / (Hq/Hkv).
 * Outputs: [B, T, Hq*dv] and present_state.
 */
static int linear_attention_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                const struct mq_tensor *const *inputs, int n_inputs,
                                struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct mq_tensor *q, *k, *v;
    if (ops_require(node, inputs, n_inputs, 0, &q, err) ||
        ops_require(node, inputs, n_inputs, 1, &k, err) ||
        ops_require(node, inputs, n_inputs, 2, &v, err))
        return MQ_ERR;
    const struct mq_tensor *past = ops_input(inputs, n_inputs, 3);
    const struct mq_tensor *decay = ops_input(inputs, n_inputs, 4);
    const struct mq_tensor *beta = ops_input(inputs, n_inputs, 5);
    const struct mq_tensor *erase = ops_input(inputs, n_inputs, 6);
    char buf[16];
    const char *rule = mq_attr_string(node, "update_rule", "gated_delta", buf, sizeof buf);
    int gating = strcmp(rule, "gated") == 0 || strcmp(rule, "gated_delta") == 0;
    int delta = strcmp(rule, "delta") == 0 || strcmp(rule, "gated_delta") == 0;
    if (!gating && !delta && strcmp(rule, "linear") != 0)
        return ops_fail(node, err, "update_rule '%s' is not linear, gated, delta or gated_delta",
                        rule);
    int64_t Hq = mq_attr_int(node, "q_num_heads", 0), Hkv = mq_attr_int(node, "kv_num_heads", 0);
    if (Hq <= 0 || Hkv <= 0 || Hq % Hkv)
        return ops_fail(node, err, "q_num_heads must be a positive multiple of kv_num_heads");
    if (gating != (decay != NULL) || delta != (beta != NULL) || (erase && !delta))
        return ops_fail(node, err, "update_rule '%s' takes %s decay and %s beta%s", rule,
                        gating ? "a" : "no", delta ? "a" : "no", delta ? "" : " and no erase_gate");
    if (q->rank != 3 || k->rank != 3 || v->rank != 3 || q->dims[2] % Hq ||
        k->dims[2] % Hkv || v->dims[2] % Hkv)
        return ops_fail(node, err, "query, key and value must be [B, T, heads * size]");
    int64_t B = q->dims[0], T = q->dims[1], dk = q->dims[2] / Hq, dv = v->dims[2] / Hkv;
    if (k->dims[0] != B || v->dims[0] != B || k->dims[1] != T || v->dims[1] != T ||
        k->dims[2] / Hkv != dk)
        return ops_fail(node, err, "query, key and value disagree in batch, length or key size");
    int64_t dec_w = decay ? decay->dims[decay->rank - 1] : 0;
    int64_t beta_w = beta ? beta->dims[beta->rank - 1] : 0;
    if ((decay && (decay->rank != 3 || (dec_w != Hkv && dec_w != Hkv * dk) ||
                   decay->count != B * T * dec_w)) ||
        (beta && (beta->rank != 3 || (beta_w != Hkv && beta_w != 1) ||
                  beta->count != B * T * beta_w)) ||
        (erase && erase->count != B * T * Hkv * dk) ||
        (past && past->count != B * Hkv * dk * dv))
        return ops_fail(node, err, "decay, beta, erase_gate or past_state has the wrong shape");
    double scale = mq_attr_float(node, "scale", 0.0f);
    if (scale == 0.0)
        scale = 1.0 / sqrt((double)dk);
    double *qv = mq_as_double_copy(q), *kv = mq_as_double_copy(k), *vv = mq_as_double_copy(v);
    double *dv_ = decay ? mq_as_double_copy(decay) : NULL;
    double *bv = beta ? mq_as_double_copy(beta) : NULL;
    double *ev = erase ? mq_as_double_copy(erase) : NULL;
    double *S = calloc((size_t)(B * Hkv * dk * dv + 1), sizeof(double));
    double *y = malloc(sizeof(double) * (size_t)(B * T * Hq * dv + 1));
    double *vt = malloc(sizeof(double) * (size_t)(dv + 1));
    int rc = MQ_ERR;
    if (!qv || !kv || !vv || (decay && !dv_) || (beta && !bv) || (erase && !ev) || !S || !y ||
        !vt || (past && mq_as_double_load(past, S))) {
        ops_fail(node, err, "out of memory or unsupported type");
        goto done;
    }
    int64_t group = Hq / Hkv;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            for (int64_t h = 0; h < Hkv; h++) {
                double *s = S + (b * Hkv + h) * dk * dv;
                const double *kt = kv + ((b * T + t) * Hkv + h) * dk;
                if (gating)
                    for (int64_t d = 0; d < dk; d++) {
                        double g = dec_w == Hkv ? dv_[(b * T + t) * Hkv + h]
                                                : dv_[((b * T + t) * Hkv + h) * dk + d];
                        for (int64_t m = 0; m < dv; m++)
                            s[d * dv + m] *= exp(g);
                    }
                for (int64_t m = 0; m < dv; m++)
                    vt[m] = vv[((b * T + t) * Hkv + h) * dv + m];
                if (delta) {
                    double bt = bv[(b * T + t) * beta_w + (beta_w == 1 ? 0 : h)];
                    for (int64_t m = 0; m < dv; m++) {
                        double got = 0;
                        for (int64_t d = 0; d < dk; d++) {
                            double ke = kt[d];
                            if (ev)
                                ke *= ev[((b * T + t) * Hkv + h) * dk + d];
                            got += s[d * dv + m] * ke;
                        }
                        vt[m] = bt * (vt[m] - got);
                    }
                }
                for (int64_t d = 0; d < dk; d++)
                    for (int64_t m = 0; m < dv; m++)
                        s[d * dv + m] += kt[d] * vt[m];
            }
            for (int64_t h = 0; h < Hq; h++) {
                const double *s = S + (b * Hkv + h / group) * dk * dv;
                const double *qt = qv + ((b * T + t) * Hq + h) * dk;
                for (int64_t m = 0; m < dv; m++) {
                    double acc = 0;
                    for (int64_t d = 0; d < dk; d++)
                        acc += qt[d] * s[d * dv + m];
                    y[((b * T + t) * Hq + h) * dv + m] = scale * acc;
                }
            }
        }
    int64_t ydims[3] = {B, T, Hq * dv}, sdims[4] = {B, Hkv, dk, dv};
    if (ops_alloc_uninit(node, &outputs[0], q->dtype, 3, ydims, err))
        goto done;
    mq_as_double_store(&outputs[0], y);
    if (n_outputs > 1) {
        if (ops_alloc_uninit(node, &outputs[1], past ? past->dtype : q->dtype, 4, sdims, err))
            goto done;
        mq_as_double_store(&outputs[1], S);
    }
    rc = MQ_OK;
done:
    free(qv), free(kv), free(vv), free(dv_), free(bv), free(ev), free(S), free(y), free(vt);
    return rc;
}

const struct mq_kernel mq_kernels_sequence_state[] = {
    {"", "CausalConvWithState", 27, 0, NULL, causal_conv_run, NULL},
    {"", "LinearAttention", 27, 0, NULL, linear_attention_run, NULL},
    {0},
};
