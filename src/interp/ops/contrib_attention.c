/*
 * Attention of onnxruntime's com.microsoft domain:
 *   Attention           input * weights + bias split into Q, K, V, then multi-head attention
 *   MultiHeadAttention  Q, K, V given (K and V projected, 3-D, or per head, 4-D), optional bias
 *   RotaryEmbedding     rotates each head's first rotary_dim values by position (RoPE)
 * One core runs softmax(Q K^T * scale + attention_bias + mask) V per batch and head.  Masked
 * positions get onnxruntime's additive mask_filter_value (default -10000), not -infinity, so
 * the probabilities match onnxruntime's.  Past key/value caches are not supported.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/contrib_common.h"
#include "interp/ops/gemm.h"

/* What masks a score: a key padding mask in one of onnxruntime's layouts, causality. */
struct attn_mask {
    const struct mq_tensor *mask; /* int32: [B] end positions, [2B] end+start, [B,T], [B,S,T] */
    const struct mq_tensor *bias; /* float [B or 1, N or 1, S, T] */
    int causal;
    float filter;                 /* added to masked scores */
};

struct attn_shape {
    int64_t batch, heads, q_len, kv_len, head_size, v_head_size;
    float scale;
};

/* Adds the mask and the attention bias to the scores of (b, n), scores[S][T]. */
static void apply_mask(const struct attn_mask *m, const struct attn_shape *sh, int64_t b,
                       int64_t n, float *scores)
{
    int64_t S = sh->q_len, T = sh->kv_len;
    for (int64_t s = 0; s < S; s++) {
        float *row = scores + s * T;
        for (int64_t t = 0; t < T; t++) {
            int masked = m->causal && t > s + (T - S);
            if (m->mask) {
                const int32_t *mk = m->mask->data;
                if (m->mask->rank == 1 && m->mask->count == sh->batch)
                    masked |= t >= mk[b];
                else if (m->mask->rank == 1)
                    masked |= t >= mk[b] || t < mk[sh->batch + b];
                else if (m->mask->rank == 2)
                    masked |= mk[b * T + t] == 0;
                else
                    masked |= mk[(b * S + s) * T + t] == 0;
            }
            if (masked)
                row[t] += m->filter;
            if (m->bias) {
                const struct mq_tensor *ab = m->bias;
                int64_t bb = ab->dims[0] == 1 ? 0 : b, nn = ab->dims[1] == 1 ? 0 : n;
                row[t] += ((const float *)ab->data)[((bb * ab->dims[1] + nn) * S + s) * T + t];
            }
        }
    }
}

static int check_mask(const struct mq_kernel_node *node, const struct attn_mask *m,
                      const struct attn_shape *sh, struct mq_error *err)
{
    const struct mq_tensor *k = m->mask, *ab = m->bias;
    if (k) {
        int ok = k->dtype == MQ_DTYPE_INT32 &&
                 ((k->rank == 1 && (k->count == sh->batch || k->count == 2 * sh->batch)) ||
                  (k->rank == 2 && k->dims[0] == sh->batch && k->dims[1] == sh->kv_len) ||
                  (k->rank == 3 && k->dims[0] == sh->batch && k->dims[1] == sh->q_len &&
                   k->dims[2] == sh->kv_len));
        if (!ok)
            return mq_error_set(err, "node '%s' (%s): mask must be int32 [B], [2B], [B, T] or "
                                "[B, S, T]", node->name, node->op_type);
    }
    if (ab && (ab->rank != 4 || (ab->dims[0] != 1 && ab->dims[0] != sh->batch) ||
               (ab->dims[1] != 1 && ab->dims[1] != sh->heads) || ab->dims[2] != sh->q_len ||
               ab->dims[3] != sh->kv_len))
        return mq_error_set(err, "node '%s' (%s): attention_bias must be [B or 1, N or 1, S, T]",
                            node->name, node->op_type);
    return MQ_OK;
}

/*
 * q [B, N, S, H], k [B, N, T, H], v [B, N, T, Hv] contiguous; out [B, S, N * Hv].
 */
static int attend(const struct mq_kernel_node *node, const struct attn_shape *sh,
                  const struct attn_mask *m, const float *q, const float *k, const float *v,
                  float *out, struct mq_error *err)
{
    int64_t S = sh->q_len, T = sh->kv_len, H = sh->head_size, Hv = sh->v_head_size;
    if (S > INT32_MAX || T > INT32_MAX || H > INT32_MAX || Hv > INT32_MAX)
        return mq_error_set(err, "node '%s' (%s): attention too large", node->name,
                            node->op_type);
    struct mq_tensor scratch = {0};
    int64_t dims[2] = {S, T + Hv};
    if (mq_tensor_alloc_uninit(&scratch, MQ_DTYPE_FLOAT, 2, dims, node->name, err))
        return MQ_ERR;
    float *scores = scratch.data, *ctx = scores + S * T;
    for (int64_t b = 0; b < sh->batch; b++) {
        for (int64_t n = 0; n < sh->heads; n++) {
            int64_t bn = b * sh->heads + n;
            if (T > 0 && H > 0)
                mq_gemm_f32(0, 1, (int)S, (int)T, (int)H, sh->scale, q + bn * S * H, (int)H,
                            k + bn * T * H, (int)H, 0.0f, scores, (int)T);
            else
                memset(scores, 0, (size_t)(S * T) * sizeof(float));
            apply_mask(m, sh, b, n, scores);
            for (int64_t s = 0; s < S; s++) {
                float *row = scores + s * T, hi = -INFINITY;
                double sum = 0.0;
                for (int64_t t = 0; t < T; t++)
                    hi = row[t] > hi ? row[t] : hi;
                for (int64_t t = 0; t < T; t++) {
                    row[t] = expf(row[t] - hi);
                    sum += row[t];
                }
                for (int64_t t = 0; t < T; t++)
                    row[t] = (float)(row[t] / sum);
            }
            if (T > 0 && Hv > 0)
                mq_gemm_f32(0, 0, (int)S, (int)Hv, (int)T, 1.0f, scores, (int)T,
                            v + bn * T * Hv, (int)Hv, 0.0f, ctx, (int)Hv);
            else
                memset(ctx, 0, (size_t)(S * Hv) * sizeof(float));
            for (int64_t s = 0; s < S; s++)
                memcpy(out + ((b * S + s) * sh->heads + n) * Hv, ctx + s * Hv,
                       (size_t)Hv * sizeof(float));
        }
    }
    mq_tensor_free(&scratch);
    return MQ_OK;
}

/* [B, L, N * H] (row stride `stride`, starting at column `col`, plus bias) into [B, N, L, H]. */
static void split_heads(const float *src, int64_t stride, int64_t col, const float *bias,
                        int64_t batch, int64_t len, int64_t heads, int64_t head, float *dst)
{
    for (int64_t b = 0; b < batch; b++)
        for (int64_t l = 0; l < len; l++)
            for (int64_t n = 0; n < heads; n++)
                for (int64_t h = 0; h < head; h++)
                    dst[((b * heads + n) * len + l) * head + h] =
                        src[(b * len + l) * stride + col + n * head + h] +
                        (bias ? bias[n * head + h] : 0.0f);
}

static int output_named(const struct mq_kernel_node *node, int i)
{
    const Onnx__NodeProto *p = node->proto;
    return (size_t)i < p->n_output && p->output[i] && p->output[i][0];
}

static float attn_scale(const struct mq_kernel_node *node, int64_t head_size)
{
    float s = mq_attr_float(node, "scale", 0.0f);
    return s != 0.0f ? s : (float)(1.0 / sqrt((double)head_size));
}

/* Runs attention over q/k/v buffers laid out per head, freeing them. */
static int attend_and_free(const struct mq_kernel_node *node, const struct attn_shape *sh,
                           const struct attn_mask *m, struct mq_tensor *qkv,
                           struct mq_tensor *out, struct mq_error *err)
{
    int64_t dims[3] = {sh->batch, sh->q_len, sh->heads * sh->v_head_size};
    int rc = check_mask(node, m, sh, err);
    if (rc == MQ_OK)
        rc = mq_tensor_alloc_uninit(out, MQ_DTYPE_FLOAT, 3, dims, node->name, err);
    if (rc == MQ_OK)
        rc = attend(node, sh, m, qkv[0].data, qkv[1].data, qkv[2].data, out->data, err);
    for (int i = 0; i < 3; i++)
        mq_tensor_free(&qkv[i]);
    return rc;
}

/* ---- Attention -------------------------------------------------------------------------- */

static int attention_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct mq_tensor *x = mq_contrib_float_input(node, inputs, n_inputs, 0, 3, err);
    const struct mq_tensor *w = x ? mq_contrib_float_input(node, inputs, n_inputs, 1, 2, err)
                                  : NULL;
    if (!w)
        return MQ_ERR;
    int bad = 0;
    const struct mq_tensor *bias = mq_contrib_optional_float(node, inputs, n_inputs, 2, &bad, err);
    const struct mq_tensor *ab =
        bad ? NULL : mq_contrib_optional_float(node, inputs, n_inputs, 5, &bad, err);
    if (bad)
        return MQ_ERR;
    if ((n_inputs > 4 && inputs[4]) || (n_outputs > 1 && output_named(node, 1)) ||
        mq_attr_int(node, "do_rotary", 0))
        return mq_error_set(err, "node '%s' (Attention): past/present state and do_rotary are "
                            "not supported", node->name);
    int64_t heads = mq_attr_int(node, "num_heads", 0);
    int64_t width = w->dims[1], in = x->dims[2];
    const int64_t *sizes;
    int64_t hq = width / 3, hk = width / 3, hv = width / 3;
    if (mq_attr_ints(node, "qkv_hidden_sizes", &sizes) == 3) {
        hq = sizes[0];
        hk = sizes[1];
        hv = sizes[2];
    }
    if (x->rank != 3 || w->rank != 2 || w->dims[0] != in || hq + hk + hv != width ||
        heads <= 0 || hq % heads || hk % heads || hv % heads || hq != hk ||
        (bias && bias->count != width))
        return mq_error_set(err, "node '%s' (Attention): input [B, S, D], weights [D, Q+K+V], "
                            "bias [Q+K+V] and num_heads dividing each do not fit", node->name);
    if (in > INT32_MAX || width > INT32_MAX)
        return mq_error_set(err, "node '%s' (Attention): too large", node->name);
    struct attn_shape sh = {x->dims[0], heads, x->dims[1], x->dims[1], hq / heads, hv / heads, 0};
    sh.scale = attn_scale(node, sh.head_size);
    struct attn_mask m = {n_inputs > 3 ? inputs[3] : NULL, ab,
                          mq_attr_int(node, "unidirectional", 0) != 0,
                          mq_attr_float(node, "mask_filter_value", -10000.0f)};
    int64_t rows = sh.batch * sh.q_len;
    struct mq_tensor proj = {0}, qkv[3] = {{0}};
    int64_t pdims[2] = {rows, width};
    if (mq_tensor_alloc_uninit(&proj, MQ_DTYPE_FLOAT, 2, pdims, node->name, err))
        return MQ_ERR;
    if (rows > 0 && in > 0)
        mq_gemm_f32(0, 0, (int)rows, (int)width, (int)in, 1.0f, x->data, (int)in, w->data,
                    (int)width, 0.0f, proj.data, (int)width);
    else
        memset(proj.data, 0, (size_t)(rows * width) * sizeof(float));
    const int64_t cols[3] = {0, hq, hq + hk}, widths[3] = {hq, hk, hv};
    for (int i = 0; i < 3; i++) {
        int64_t d[4] = {sh.batch, heads, sh.q_len, widths[i] / heads};
        if (mq_tensor_alloc_uninit(&qkv[i], MQ_DTYPE_FLOAT, 4, d, node->name, err)) {
            for (int j = 0; j < i; j++)
                mq_tensor_free(&qkv[j]);
            mq_tensor_free(&proj);
            return MQ_ERR;
        }
        split_heads(proj.data, width, cols[i], bias ? (const float *)bias->data + cols[i] : NULL,
                    sh.batch, sh.q_len, heads, widths[i] / heads, qkv[i].data);
    }
    mq_tensor_free(&proj);
    return attend_and_free(node, &sh, &m, qkv, &outputs[0], err);
}

/* ---- MultiHeadAttention ----------------------------------------------------------------- */

/* Brings a 3-D [B, L, N*H] (plus bias) or 4-D [B, N, L, H] input to [B, N, L, H]. */
static int mha_heads(const struct mq_kernel_node *node, const struct mq_tensor *t,
                     const float *bias, int64_t batch, int64_t heads, struct mq_tensor *dst,
                     int64_t *len, int64_t *head, struct mq_error *err)
{
    if (t->rank == 3 && t->dims[0] == batch && t->dims[2] % heads == 0) {
        *len = t->dims[1];
        *head = t->dims[2] / heads;
        int64_t d[4] = {batch, heads, *len, *head};
        if (mq_tensor_alloc_uninit(dst, MQ_DTYPE_FLOAT, 4, d, node->name, err))
            return MQ_ERR;
        split_heads(t->data, t->dims[2], 0, bias, batch, *len, heads, *head, dst->data);
        return MQ_OK;
    }
    if (t->rank == 4 && t->dims[0] == batch && t->dims[1] == heads) {
        *len = t->dims[2];
        *head = t->dims[3];
        return mq_tensor_copy(dst, t, node->name, err);
    }
    return mq_error_set(err, "node '%s' (MultiHeadAttention): key/value must be [B, L, N*H] or "
                        "[B, N, L, H] (packed layouts are not supported)", node->name);
}

static int mha_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    int bad = 0;
    const struct mq_tensor *q = mq_contrib_float_input(node, inputs, n_inputs, 0, 3, err);
    if (!q)
        return MQ_ERR;
    const struct mq_tensor *k = mq_contrib_optional_float(node, inputs, n_inputs, 1, &bad, err);
    const struct mq_tensor *v =
        bad ? NULL : mq_contrib_optional_float(node, inputs, n_inputs, 2, &bad, err);
    const struct mq_tensor *bias =
        bad ? NULL : mq_contrib_optional_float(node, inputs, n_inputs, 3, &bad, err);
    const struct mq_tensor *ab =
        bad ? NULL : mq_contrib_optional_float(node, inputs, n_inputs, 5, &bad, err);
    if (bad)
        return MQ_ERR;
    if (!k || !v || q->rank != 3 || (n_inputs > 6 && inputs[6]) || (n_inputs > 7 && inputs[7]) ||
        (n_outputs > 1 && output_named(node, 1)) || (n_outputs > 2 && output_named(node, 2)))
        return mq_error_set(err, "node '%s' (MultiHeadAttention): needs 3-D query, key and "
                            "value; packed QKV and past/present state are not supported",
                            node->name);
    int64_t heads = mq_attr_int(node, "num_heads", 0);
    int64_t batch = q->dims[0], dq = q->dims[2];
    if (heads <= 0 || dq % heads)
        return mq_error_set(err, "node '%s' (MultiHeadAttention): num_heads must divide the "
                            "query width", node->name);
    int64_t dv = v->rank == 3 ? v->dims[2] : (v->rank == 4 ? v->dims[1] * v->dims[3] : 0);
    if (bias && bias->count != 2 * dq + dv)
        return mq_error_set(err, "node '%s' (MultiHeadAttention): bias must have Q+K+V widths",
                            node->name);
    const float *bq = bias ? bias->data : NULL;
    struct mq_tensor qkv[3] = {{0}};
    int64_t q_len, q_head, k_len, k_head, v_len, v_head;
    int rc = mha_heads(node, q, bq, batch, heads, &qkv[0], &q_len, &q_head, err);
    /* a bias applies to projected (3-D) keys and values only */
    if (rc == MQ_OK)
        rc = mha_heads(node, k, bq && k->rank == 3 ? bq + dq : NULL, batch, heads, &qkv[1],
                       &k_len, &k_head, err);
    if (rc == MQ_OK)
        rc = mha_heads(node, v, bq && v->rank == 3 ? bq + 2 * dq : NULL, batch, heads, &qkv[2],
                       &v_len, &v_head, err);
    if (rc == MQ_OK && (k_head != q_head || v_len != k_len))
        rc = mq_error_set(err, "node '%s' (MultiHeadAttention): key and value shapes do not "
                          "match the query", node->name);
    if (rc) {
        for (int i = 0; i < 3; i++)
            mq_tensor_free(&qkv[i]);
        return rc;
    }
    struct attn_shape sh = {batch, heads, q_len, k_len, q_head, v_head, 0};
    sh.scale = attn_scale(node, q_head);
    struct attn_mask m = {n_inputs > 4 ? inputs[4] : NULL, ab,
                          mq_attr_int(node, "unidirectional", 0) != 0,
                          mq_attr_float(node, "mask_filter_value", -10000.0f)};
    return attend_and_free(node, &sh, &m, qkv, &outputs[0], err);
}

/* ---- RotaryEmbedding -------------------------------------------------------------------- */

static int rotary_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct mq_tensor *x = mq_contrib_float_input(node, inputs, n_inputs, 0, 3, err);
    const struct mq_tensor *cos_c =
        x ? mq_contrib_float_input(node, inputs, n_inputs, 2, 2, err) : NULL;
    const struct mq_tensor *sin_c =
        cos_c ? mq_contrib_float_input(node, inputs, n_inputs, 3, 2, err) : NULL;
    if (!sin_c)
        return MQ_ERR;
    const struct mq_tensor *pos = n_inputs > 1 ? inputs[1] : NULL;
    int interleaved = mq_attr_int(node, "interleaved", 0) != 0;
    int64_t heads = mq_attr_int(node, "num_heads", 0);
    int64_t half = cos_c->dims[1], rot = 2 * half, max_pos = cos_c->dims[0];
    int64_t batch = x->dims[0], seq, head;
    int four_d = x->rank == 4;
    if (four_d) {
        heads = x->dims[1];
        seq = x->dims[2];
        head = x->dims[3];
    } else {
        seq = x->dims[1];
        if (heads <= 0)
            heads = rot ? x->dims[2] / rot : 0;
        head = heads ? x->dims[2] / heads : 0;
    }
    if (x->rank > 4 || heads <= 0 || heads * head != (four_d ? heads * head : x->dims[2]) ||
        rot > head || !mq_shape_equal(cos_c, sin_c) || mq_attr_int(node, "is_packed_batching", 0))
        return mq_error_set(err, "node '%s' (RotaryEmbedding): input, num_heads and the caches "
                            "(sin and cos [max_position, rotary_dim / 2]) do not fit", node->name);
    if (!pos || pos->dtype != MQ_DTYPE_INT64 || (pos->count != 1 && pos->count != batch * seq))
        return mq_error_set(err, "node '%s' (RotaryEmbedding): position_ids must be int64 [1] "
                            "or [B, S]", node->name);
    if (mq_tensor_copy(&outputs[0], x, node->name, err))
        return MQ_ERR;
    const int64_t *p = pos->data;
    float *y = outputs[0].data;
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t s = 0; s < seq; s++) {
            int64_t at = pos->count == 1 ? p[0] + s : p[b * seq + s];
            if (at < 0 || at >= max_pos) {
                mq_tensor_free(&outputs[0]);
                return mq_error_set(err, "node '%s' (RotaryEmbedding): position %lld outside "
                                    "the caches", node->name, (long long)at);
            }
            const float *cs = (const float *)cos_c->data + at * half;
            const float *sn = (const float *)sin_c->data + at * half;
            for (int64_t n = 0; n < heads; n++) {
                int64_t off = four_d ? ((b * heads + n) * seq + s) * head
                                     : (b * seq + s) * heads * head + n * head;
                float *h = y + off;
                for (int64_t i = 0; i < half; i++) {
                    int64_t i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
                    float x1 = h[i1], x2 = h[i2];
                    h[i1] = x1 * cs[i] - x2 * sn[i];
                    h[i2] = x2 * cs[i] + x1 * sn[i];
                }
            }
        }
    }
    return MQ_OK;
}

const struct mq_kernel mq_kernels_contrib_attention[] = {
    {"com.microsoft", "Attention", 1, 0, NULL, attention_run, NULL},
    {"com.microsoft", "MultiHeadAttention", 1, 0, NULL, mha_run, NULL},
    {"com.microsoft", "RotaryEmbedding", 1, 0, NULL, rotary_run, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL},
};
