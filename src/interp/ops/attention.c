/*
 * Attention (opset 23, 24) and FlexAttention (ai.onnx.preview 1, with score_mod/prob_mod
 * graphs): scaled dot-product attention with grouped-query heads, a key/value
 * cache, boolean or additive masks, causal masking, soft-capping, and the optional QK output.
 *
 * Q is [B, Hq, Sq, D] or [B, Sq, Hq*D] (then q_num_heads / kv_num_heads split the last axis);
 * K and V likewise with Hkv heads.  past_key/past_value [B, Hkv, P, D] are put before K and V
 * (present_key/present_value).  The bias added to Q.K^T before the softmax is the mask
 * (bool: false -> -inf; padded to the total key length with -inf), the causal frontier
 * (key j is seen by query i when j <= i + offset, offset the past length, or
 * nonpad_kv_seqlen[b] - Sq without a past) and nonpad_kv_seqlen's padding (keys from
 * nonpad_kv_seqlen[b] on are -inf); a query row whose keys are all masked gives zeros.
 * Arithmetic is in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"
#include "interp/plan.h"

struct attention_attrs {
    int is_causal;
    int64_t q_heads, kv_heads; /* 0 when not given */
    int qk_mode;
    int has_scale;
    double scale, softcap;
};

static int attention_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct attention_attrs *a = calloc(1, sizeof *a);
    if (!a)
        return ops_fail(node, err, "out of memory");
    a->is_causal = mq_attr_int(node, "is_causal", 0) != 0;
    a->q_heads = mq_attr_int(node, "q_num_heads", 0);
    a->kv_heads = mq_attr_int(node, "kv_num_heads", 0);
    a->qk_mode = (int)mq_attr_int(node, "qk_matmul_output_mode", 0);
    a->has_scale = mq_attr_has(node, "scale");
    a->scale = mq_attr_float(node, "scale", 0.0f);
    a->softcap = mq_attr_float(node, "softcap", 0.0f);
    if (a->qk_mode < 0 || a->qk_mode > 3) {
        int mode = a->qk_mode;
        free(a);
        return ops_fail(node, err, "qk_matmul_output_mode %d is not 0..3", mode);
    }
    node->state = a;
    return MQ_OK;
}

/* A [B, H, S, D] view of a 3-D or 4-D input, loaded as doubles. */
struct heads {
    int64_t b, h, s, d;
    int split; /* came as [B, S, H*D] */
    double *v;
};

static double at(const struct heads *t, int64_t b, int64_t h, int64_t s, int64_t d)
{
    if (t->split)
        return t->v[((b * t->s + s) * t->h + h) * t->d + d];
    return t->v[((b * t->h + h) * t->s + s) * t->d + d];
}

static int load_heads(const struct mq_kernel_node *node, const struct mq_tensor *x, int64_t heads,
                      const char *what, struct heads *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (x->rank == 4) {
        out->b = x->dims[0], out->h = x->dims[1], out->s = x->dims[2], out->d = x->dims[3];
    } else if (x->rank == 3) {
        if (heads <= 0 || x->dims[2] % heads)
            return ops_fail(node, err, "3-D input %s of width %lld needs a head count that "
                            "divides it", what, (long long)x->dims[2]);
        out->b = x->dims[0], out->h = heads, out->s = x->dims[1], out->d = x->dims[2] / heads;
        out->split = 1;
    } else {
        return ops_fail(node, err, "input %s has rank %d; 3 or 4 expected", what, x->rank);
    }
    if (!mq_as_double_supported(x->dtype))
        return ops_fail(node, err, "input %s has type %s", what, mq_dtype_name(x->dtype));
    out->v = malloc(sizeof(double) * (size_t)(x->count ? x->count : 1));
    if (!out->v)
        return ops_fail(node, err, "out of memory");
    mq_as_double_load(x, out->v);
    return MQ_OK;
}

/* past ([B, H, P, D], may be NULL) followed by cur along the sequence axis, as [B, H, P+S, D]. */
static int concat_cache(const struct mq_kernel_node *node, const struct mq_tensor *past,
                        const struct heads *cur, struct heads *out, struct mq_error *err)
{
    int64_t p = past ? past->dims[2] : 0;
    if (past && (past->rank != 4 || past->dims[0] != cur->b || past->dims[1] != cur->h ||
                 past->dims[3] != cur->d))
        return ops_fail(node, err, "past key/value shape does not match [B, Hkv, P, D]");
    *out = (struct heads){cur->b, cur->h, p + cur->s, cur->d, 0, NULL};
    out->v = malloc(sizeof(double) * (size_t)(out->b * out->h * out->s * out->d + 1));
    double *pv = past ? malloc(sizeof(double) * (size_t)(past->count + 1)) : NULL;
    if (!out->v || (past && !pv)) {
        free(pv);
        return ops_fail(node, err, "out of memory");
    }
    if (past)
        mq_as_double_load(past, pv);
    for (int64_t b = 0; b < out->b; b++)
        for (int64_t h = 0; h < out->h; h++)
            for (int64_t s = 0; s < out->s; s++)
                for (int64_t d = 0; d < out->d; d++)
                    out->v[((b * out->h + h) * out->s + s) * out->d + d] =
                        s < p ? pv[((b * out->h + h) * p + s) * out->d + d]
                              : at(cur, b, h, s - p, d);
    free(pv);
    return MQ_OK;
}

/* Mask value at (b, h, i, j) of a mask broadcast right-aligned to [B, H, Sq, T]. */
static double mask_at(const struct mq_tensor *m, const double *mv, int64_t b, int64_t h,
                      int64_t i, int64_t j)
{
    int64_t idx4[4] = {b, h, i, j};
    if (j >= m->dims[m->rank - 1])
        return m->dtype == MQ_DTYPE_BOOL ? -INFINITY : -INFINITY; /* padding */
    int64_t off = 0;
    for (int k = 0; k < m->rank; k++) {
        int64_t c = idx4[4 - m->rank + k];
        off = off * m->dims[k] + (m->dims[k] == 1 ? 0 : c);
    }
    if (m->dtype == MQ_DTYPE_BOOL)
        return mv[off] != 0 ? 0.0 : -INFINITY;
    return mv[off];
}

static int store(const struct mq_kernel_node *node, struct mq_tensor *out, int dtype, int rank,
                 const int64_t *dims, const double *v, struct mq_error *err)
{
    if (ops_alloc_uninit(node, out, dtype, rank, dims, err))
        return MQ_ERR;
    mq_as_double_store(out, v);
    return MQ_OK;
}

static int attention_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct attention_attrs *a = node->state;
    const struct mq_tensor *q = ops_input(inputs, n_inputs, 0), *k = ops_input(inputs, n_inputs, 1),
                           *v = ops_input(inputs, n_inputs, 2);
    const struct mq_tensor *mask = ops_input(inputs, n_inputs, 3);
    const struct mq_tensor *past_k = ops_input(inputs, n_inputs, 4);
    const struct mq_tensor *past_v = ops_input(inputs, n_inputs, 5);
    const struct mq_tensor *nonpad = ops_input(inputs, n_inputs, 6);
    if (!q || !k || !v)
        return ops_fail(node, err, "inputs Q, K and V are required");
    if (q->rank != k->rank || q->rank != v->rank)
        return ops_fail(node, err, "Q, K and V must have the same rank");
    struct heads Q = {0}, Kc = {0}, Vc = {0}, K = {0}, V = {0};
    double *mv = NULL, *bias_row = NULL, *qk = NULL, *y = NULL, *qkout = NULL;
    int rc = MQ_ERR;
    if (load_heads(node, q, a->q_heads, "Q", &Q, err) ||
        load_heads(node, k, a->kv_heads, "K", &Kc, err) ||
        load_heads(node, v, a->kv_heads, "V", &Vc, err))
        goto done;
    if (Kc.b != Q.b || Vc.b != Q.b || Kc.d != Q.d || Kc.h != Vc.h || Kc.s != Vc.s ||
        Kc.h == 0 || Q.h % Kc.h) {
        ops_fail(node, err, "Q, K and V shapes disagree (batch, head size or head counts)");
        goto done;
    }
    if (concat_cache(node, past_k, &Kc, &K, err) || concat_cache(node, past_v, &Vc, &V, err))
        goto done;
    int64_t B = Q.b, Hq = Q.h, Hkv = K.h, Sq = Q.s, T = K.s, D = Q.d, Dv = V.d;
    int64_t past = past_k ? past_k->dims[2] : 0;
    if (mask) {
        if (mask->rank < 1 || mask->rank > 4 || mask->dims[mask->rank - 1] > T) {
            ops_fail(node, err, "attn_mask must have rank 1..4 and at most %lld keys",
                     (long long)T);
            goto done;
        }
        static const char *axes[4] = {"batch", "heads", "query", "key"};
        for (int i = 0; i < mask->rank - 1; i++) {
            int64_t want = (int64_t[]){B, Hq, Sq, T}[4 - mask->rank + i];
            if (mask->dims[i] != 1 && mask->dims[i] != want) {
                ops_fail(node, err, "attn_mask's %s axis is %lld, not 1 or %lld",
                         axes[4 - mask->rank + i], (long long)mask->dims[i], (long long)want);
                goto done;
            }
        }
        mv = malloc(sizeof(double) * (size_t)(mask->count + 1));
        if (!mv) {
            ops_fail(node, err, "out of memory");
            goto done;
        }
        mq_as_double_load(mask, mv);
    }
    if (nonpad && nonpad->count != B) {
        ops_fail(node, err, "nonpad_kv_seqlen has %lld values for batch %lld",
                 (long long)nonpad->count, (long long)B);
        goto done;
    }
    double scale = a->has_scale ? a->scale : 1.0 / sqrt((double)D);
    size_t rows = (size_t)(B * Hq * Sq);
    qk = malloc(sizeof(double) * (rows * (size_t)T + 1));
    qkout = malloc(sizeof(double) * (rows * (size_t)T + 1));
    y = malloc(sizeof(double) * (rows * (size_t)Dv + 1));
    bias_row = malloc(sizeof(double) * ((size_t)T + 1));
    if (!qk || !qkout || !y || !bias_row) {
        ops_fail(node, err, "out of memory");
        goto done;
    }
    int64_t group = Hq / Hkv;
    for (int64_t b = 0; b < B; b++) {
        int64_t offset = past;
        if (!past_k && nonpad)
            offset = mq_tensor_get_int64(nonpad, b) - Sq;
        int64_t valid = nonpad ? mq_tensor_get_int64(nonpad, b) : T;
        for (int64_t h = 0; h < Hq; h++) {
            int64_t kh = h / group;
            for (int64_t i = 0; i < Sq; i++) {
                size_t row = (size_t)((b * Hq + h) * Sq + i);
                double *s = qk + row * (size_t)T, *o = qkout + row * (size_t)T;
                double mx = -INFINITY;
                for (int64_t j = 0; j < T; j++) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++)
                        dot += at(&Q, b, h, i, d) * K.v[((b * Hkv + kh) * T + j) * D + d];
                    dot *= scale;
                    if (a->softcap > 0)
                        dot = a->softcap * tanh(dot / a->softcap);
                    double bias = mask ? mask_at(mask, mv, b, h, i, j) : 0.0;
                    if (a->is_causal && j > i + offset)
                        bias += -INFINITY;
                    if (j >= valid)
                        bias += -INFINITY;
                    o[j] = a->qk_mode == 2 ? dot + bias : dot;
                    s[j] = dot + bias;
                    if (s[j] > mx)
                        mx = s[j];
                }
                /* A row with every key masked attends to nothing: zeros, not 0/0. */
                double sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    s[j] = mx == -INFINITY ? 0.0 : exp(s[j] - mx);
                    sum += s[j];
                }
                for (int64_t j = 0; j < T; j++) {
                    s[j] = sum > 0 ? s[j] / sum : 0.0;
                    if (a->qk_mode == 3)
                        o[j] = s[j];
                }
                for (int64_t d = 0; d < Dv; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < T; j++)
                        acc += s[j] * V.v[((b * Hkv + kh) * T + j) * Dv + d];
                    int64_t yi = Q.split ? ((b * Sq + i) * Hq + h) * Dv + d
                                         : ((b * Hq + h) * Sq + i) * Dv + d;
                    y[yi] = acc;
                }
            }
        }
    }
    int64_t ydims[4] = {B, Hq, Sq, Dv};
    int64_t y3[3] = {B, Sq, Hq * Dv};
    if (store(node, &outputs[0], q->dtype, Q.split ? 3 : 4, Q.split ? y3 : ydims, y, err))
        goto done;
    int64_t kd[4] = {B, Hkv, T, D}, vd[4] = {B, Hkv, T, Dv}, qd[4] = {B, Hq, Sq, T};
    if ((n_outputs > 1 && store(node, &outputs[1], k->dtype, 4, kd, K.v, err)) ||
        (n_outputs > 2 && store(node, &outputs[2], v->dtype, 4, vd, V.v, err)) ||
        (n_outputs > 3 && store(node, &outputs[3], q->dtype, 4, qd, qkout, err)))
        goto done;
    rc = MQ_OK;
done:
    free(Q.v), free(Kc.v), free(Vc.v), free(K.v), free(V.v);
    free(mv), free(bias_row), free(qk), free(y), free(qkout);
    return rc;
}

/* ---- FlexAttention (ai.onnx.preview 1) ----------------------------------------------------- */

/* The graph attribute `name`, or NULL when the node has none. */
static const struct mq_plan *graph_attr(const struct mq_kernel_node *node, const char *name)
{
    for (int i = 0; i < node->n_subgraphs; i++)
        if (strcmp(node->subgraph_names[i], name) == 0)
            return node->subgraphs[i];
    return NULL;
}

/* Replaces *t (doubles of a [B, H, L, S] tensor of type dtype) by graph(t). */
static int apply_mod(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_plan *graph, const char *what, int dtype,
                     const int64_t *dims, double *t, struct mq_error *err)
{
    if (mq_subgraph_input_count(graph) != 1 || mq_subgraph_output_count(graph) != 1)
        return ops_fail(node, err, "%s must take one input and give one output", what);
    struct mq_tensor in = {0}, out = {0};
    if (ops_alloc_uninit(node, &in, dtype, 4, dims, err))
        return MQ_ERR;
    mq_as_double_store(&in, t);
    const struct mq_tensor *ins[1] = {&in};
    int rc = mq_exec_subgraph(exec, graph, ins, 1, &out, 1, err);
    if (rc)
        mq_error_prefix(err, "node '%s' (FlexAttention), %s: ", node->name, what);
    else if (out.count != in.count || mq_as_double_load(&out, t))
        rc = ops_fail(node, err, "%s changed the shape or gave an unsupported type", what);
    mq_tensor_free(&in);
    mq_tensor_free(&out);
    return rc;
}

/*
 * Q [B, Hq, L, E], K [B, Hkv, S, E], V [B, Hkv, S, Ev]: scores = scale Q.K^T (scale defaults
 * to 1/sqrt(E); query head h reads kv head h / (Hq/Hkv)), then the score_mod graph, a softmax
 * over the keys, the prob_mod graph, and Y = probs . V [B, Hq, L, Ev].
 */
static int flex_attention_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)n_outputs;
    const struct mq_tensor *q, *k, *v;
    if (ops_require(node, inputs, n_inputs, 0, &q, err) ||
        ops_require(node, inputs, n_inputs, 1, &k, err) ||
        ops_require(node, inputs, n_inputs, 2, &v, err))
        return MQ_ERR;
    if (q->rank != 4 || k->rank != 4 || v->rank != 4 || k->dims[0] != q->dims[0] ||
        v->dims[0] != q->dims[0] || k->dims[3] != q->dims[3] || k->dims[1] != v->dims[1] ||
        k->dims[2] != v->dims[2] || k->dims[1] == 0 || q->dims[1] % k->dims[1])
        return ops_fail(node, err, "Q, K and V must be [B, Hq, L, E], [B, Hkv, S, E] and "
                        "[B, Hkv, S, Ev] with Hq a multiple of Hkv");
    int64_t B = q->dims[0], Hq = q->dims[1], L = q->dims[2], E = q->dims[3];
    int64_t Hkv = k->dims[1], S = k->dims[2], Ev = v->dims[3], group = Hq / Hkv;
    double scale = mq_attr_has(node, "scale") ? mq_attr_float(node, "scale", 0.0f)
                                              : 1.0 / sqrt((double)E);
    double *qv = malloc(sizeof(double) * (size_t)(q->count + 1));
    double *kv = malloc(sizeof(double) * (size_t)(k->count + 1));
    double *vv = malloc(sizeof(double) * (size_t)(v->count + 1));
    double *sc = malloc(sizeof(double) * (size_t)(B * Hq * L * S + 1));
    double *y = malloc(sizeof(double) * (size_t)(B * Hq * L * Ev + 1));
    int rc = MQ_ERR;
    if (!qv || !kv || !vv || !sc || !y || mq_as_double_load(q, qv) || mq_as_double_load(k, kv) ||
        mq_as_double_load(v, vv)) {
        ops_fail(node, err, "out of memory or unsupported type");
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < L; i++)
                for (int64_t j = 0; j < S; j++) {
                    double dot = 0;
                    for (int64_t e = 0; e < E; e++)
                        dot += qv[((b * Hq + h) * L + i) * E + e] *
                               kv[((b * Hkv + h / group) * S + j) * E + e];
                    sc[((b * Hq + h) * L + i) * S + j] = dot * scale;
                }
    int64_t sdims[4] = {B, Hq, L, S};
    const struct mq_plan *score_mod = graph_attr(node, "score_mod");
    const struct mq_plan *prob_mod = graph_attr(node, "prob_mod");
    if (score_mod && apply_mod(node, exec, score_mod, "score_mod", q->dtype, sdims, sc, err))
        goto done;
    for (int64_t r = 0; r < B * Hq * L; r++) {
        double *row = sc + r * S, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < S; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j < S; j++) {
            row[j] = mx == -INFINITY ? 0.0 : exp(row[j] - mx);
            sum += row[j];
        }
        for (int64_t j = 0; j < S; j++)
            row[j] = sum > 0 ? row[j] / sum : 0.0;
    }
    if (prob_mod && apply_mod(node, exec, prob_mod, "prob_mod", q->dtype, sdims, sc, err))
        goto done;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < L; i++)
                for (int64_t e = 0; e < Ev; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < S; j++)
                        acc += sc[((b * Hq + h) * L + i) * S + j] *
                               vv[((b * Hkv + h / group) * S + j) * Ev + e];
                    y[((b * Hq + h) * L + i) * Ev + e] = acc;
                }
    int64_t ydims[4] = {B, Hq, L, Ev};
    if (store(node, &outputs[0], q->dtype, 4, ydims, y, err))
        goto done;
    rc = MQ_OK;
done:
    free(qv), free(kv), free(vv), free(sc), free(y);
    return rc;
}

const struct mq_kernel mq_kernels_attention[] = {
    {"", "Attention", 23, 0, attention_prepare, attention_run, free},
    {"ai.onnx.preview", "FlexAttention", 1, 0, NULL, flex_attention_run, NULL},
    {0},
};
