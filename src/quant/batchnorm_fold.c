/*
 * Graph clean-up before quantization: folding BatchNormalization and the other per-channel
 * affine maps (a HardSigmoid's, leaving its clamp as a Clip) into the preceding Conv's weights,
 * and dropping initializers left unused (see batchnorm_fold.h).
 */
#include "quant/batchnorm_fold.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "graph/edit.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/graph.h"
#include "util/strutil.h"

struct candidate {
    Onnx__GraphProto *graph;
    char *name;
};

struct fold_ctx {
    struct mq_names names;
    int opset; /* the default domain's: Clip's bounds are attributes before 11, inputs after */
    /* The bounds of the last Clip a fold left, as initializers of clip_graph (shared). */
    Onnx__GraphProto *clip_graph;
    float clip_lo, clip_hi;
    char *clip_lo_name, *clip_hi_name;
    struct mq_fold_result *out;
    /* Initializers a fold stopped reading: dropped at the end when nothing reads them. */
    struct candidate *cands;
    int n_cands;
    struct mq_error *err;
};

static int oom(struct fold_ctx *fc)
{
    return mq_error_code(fc->err, MQ_ERR_MEMORY, "out of memory while folding BatchNormalization");
}

/* Remembers an initializer a fold stopped reading, with the graph (this or enclosing) holding it. */
static int add_candidate(struct fold_ctx *fc, const struct mq_graph_index *idx, const char *name)
{
    if (!name)
        return 0;
    Onnx__GraphProto *g = NULL;
    for (; idx && !g; idx = idx->parent) {
        const struct mq_tensor_info *t = mq_graph_tensor(idx, name);
        if (t && t->initializer >= 0)
            g = idx->graph;
        else if (t && (t->producer >= 0 || t->graph_input))
            return 0;
    }
    if (!g)
        return 0;
    struct candidate *v = realloc(fc->cands, (size_t)(fc->n_cands + 1) * sizeof *v);
    if (!v)
        return -1;
    fc->cands = v;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    fc->cands[fc->n_cands++] = (struct candidate){g, copy};
    return 0;
}

/* The initializer of this graph (not an enclosing one) holding a name; -1 when none. */
static int own_initializer(const struct mq_graph_index *idx, const char *name)
{
    const struct mq_tensor_info *t = mq_graph_tensor(idx, name);
    return t ? t->initializer : -1;
}

/* Whether node `node` is the only reader of `name` in this graph, subgraphs included. */
static int only_reader(const struct mq_graph_index *idx, const char *name, int node)
{
    const struct mq_tensor_info *t = mq_graph_tensor(idx, name);
    return t && !t->graph_output && t->n_consumers == 1 && t->consumers[0].node == node &&
           !t->consumers[0].implicit;
}

/* A float32 initializer decoded; 0 and nothing allocated when it is not one. */
static int decode_f32(const struct mq_graph_index *idx, const char *name, struct mq_tensor *t)
{
    const Onnx__TensorProto *init = name ? mq_graph_find_initializer(idx, name) : NULL;
    memset(t, 0, sizeof *t);
    if (!init || !init->has_data_type || init->data_type != MQ_DTYPE_FLOAT ||
        init->n_external_data || (init->has_data_location && init->data_location))
        return 0;
    struct mq_error ignored;
    if (mq_tensor_from_proto(init, name, t, &ignored))
        return 0;
    return 1;
}

/*
 * Stores `values` under `name` in graph g: over initializer `slot` when it is
 * >= 0, else as a new initializer.
 */
static int store(struct fold_ctx *fc, Onnx__GraphProto *g, int slot, const char *name,
                 const struct mq_tensor *values)
{
    Onnx__TensorProto *proto;
    int rc = mq_tensor_to_proto(values, name, &proto, fc->err);
    if (rc)
        return rc;
    if (slot >= 0) {
        onnx__tensor_proto__free_unpacked(g->initializer[slot], NULL);
        g->initializer[slot] = proto;
        return MQ_OK;
    }
    Onnx__TensorProto **v = realloc(g->initializer, (g->n_initializer + 1) * sizeof *v);
    if (!v) {
        onnx__tensor_proto__free_unpacked(proto, NULL);
        return oom(fc);
    }
    g->initializer = v;
    g->initializer[g->n_initializer++] = proto;
    return MQ_OK;
}

static char *display_name(const Onnx__NodeProto *node, int index)
{
    return *mq_str(node->name) ? strdup(node->name)
                               : mq_str_printf("%s#%d", mq_str(node->op_type), index);
}

/*
 * The parameters of one fold, decoded: the Conv's weight and bias, and the
 * folded node as a per-output-channel affine map y = x * a[o] + s[o].
 */
struct fold_params {
    struct mq_tensor w, b;
    int has_b;
    int channel_axis; /* the weight's axis holding the output channels: 0 or 1 */
    double *a, *s;
};

static void params_free(struct fold_params *p)
{
    mq_tensor_free(&p->w);
    mq_tensor_free(&p->b);
    free(p->a);
    free(p->s);
    p->a = p->s = NULL;
}

/* ---- the ops folded, each as a per-channel affine map ------------------------------------ */

/* Inference BatchNormalization: a = scale / sqrt(var + epsilon), s = shift - mean * a. */
int mq_batchnorm_affine(const struct mq_graph_index *idx, const Onnx__NodeProto *bn, int64_t c,
                        double *a, double *s)
{
    for (size_t o = 1; o < bn->n_output; o++)
        if (*mq_str(bn->output[o]))
            return 0; /* training mode, or the running statistics asked for as outputs */
    if (mq_node_attr_int(bn, "training_mode", 0) != 0 || mq_node_attr_int(bn, "spatial", 1) != 1)
        return 0;
    struct mq_tensor t[4];
    int ok = 1, k;
    for (k = 0; ok && k < 4; k++)
        ok = decode_f32(idx, mq_graph_input_at(bn, (size_t)k + 1), &t[k]) && t[k].count == c &&
             t[k].rank == 1;
    double epsilon = mq_node_attr_float(bn, "epsilon", 1e-5f);
    const float *scale = ok ? t[0].data : NULL, *shift = ok ? t[1].data : NULL,
                *mean = ok ? t[2].data : NULL, *var = ok ? t[3].data : NULL;
    for (int64_t o = 0; ok && o < c; o++) {
        double denom = (double)var[o] + epsilon;
        ok = denom > 0.0;
        a[o] = ok ? (double)scale[o] / sqrt(denom) : 0.0;
        s[o] = (double)shift[o] - (double)mean[o] * a[o];
    }
    for (int j = 0; j < k; j++)
        mq_tensor_free(&t[j]);
    return ok;
}

static int batchnorm_affine(const struct mq_graph_index *idx, const Onnx__NodeProto *bn,
                            int64_t c, int rank, double *a, double *s)
{
    (void)rank;
    return mq_batchnorm_affine(idx, bn, c, a, s);
}

/*
 * The constant operand of an elementwise op on the Conv's output, when it is one value or one
 * value per output channel (its dims all 1 but the one numpy broadcasting puts on the output's
 * axis 1): 1 with values[c] filled, 0 otherwise.
 */
static int channel_constant(const struct mq_graph_index *idx, const char *name, int64_t c,
                            int rank, double *values)
{
    struct mq_tensor t;
    if (!decode_f32(idx, name, &t))
        return 0;
    int channel_dim = t.rank - rank + 1; /* the constant's dim facing the output's axis 1 */
    int ok = t.rank <= rank && t.count >= 1;
    for (int d = 0; ok && d < t.rank; d++)
        ok = t.dims[d] == 1 || (d == channel_dim && t.dims[d] == c);
    const float *v = t.data;
    for (int64_t o = 0; ok && o < c; o++)
        values[o] = (double)v[t.count == 1 ? 0 : o];
    mq_tensor_free(&t);
    return ok;
}

/* x * k, x + k, x - k, x / k with k constant per channel (either side for Mul and Add). */
static int elementwise_affine(const struct mq_graph_index *idx, const Onnx__NodeProto *n,
                              int64_t c, int rank, double *a, double *s)
{
    const char *op = mq_str(n->op_type);
    const struct mq_tensor_info *x0 = mq_graph_tensor(idx, mq_graph_input_at(n, 0));
    int conv_first = x0 && x0->producer >= 0;
    if (!conv_first && (strcmp(op, "Sub") == 0 || strcmp(op, "Div") == 0))
        return 0;
    if (!channel_constant(idx, mq_graph_input_at(n, conv_first ? 1 : 0), c, rank,
                          strcmp(op, "Mul") == 0 || strcmp(op, "Div") == 0 ? a : s))
        return 0;
    for (int64_t o = 0; o < c; o++) {
        if (strcmp(op, "Mul") == 0 || strcmp(op, "Div") == 0) {
            if (strcmp(op, "Div") == 0)
                a[o] = 1.0 / a[o];
            s[o] = 0.0;
        } else {
            if (strcmp(op, "Sub") == 0)
                s[o] = -s[o];
            a[o] = 1.0;
        }
    }
    return 1;
}

/* HardSigmoid: max(0, min(1, alpha * x + beta)), the affine part a = alpha, s = beta. */
static int hardsigmoid_affine(const struct mq_graph_index *idx, const Onnx__NodeProto *n,
                              int64_t c, int rank, double *a, double *s)
{
    (void)idx, (void)rank;
    if (n->n_input != 1 || n->n_output != 1)
        return 0;
    double alpha = mq_node_attr_float(n, "alpha", 0.2f), beta = mq_node_attr_float(n, "beta", 0.5f);
    for (int64_t o = 0; o < c; o++) {
        a[o] = alpha;
        s[o] = beta;
    }
    return 1;
}

/*
 * The ops folded into the Conv before them: BatchNormalization, and the scale and shift some
 * exporters write as separate ops (caffe2's spatial BN followed by Mul and Add by a [C,1,1]
 * constant, a Scale layer as Mul).  `data` is the input the Conv's output arrives in (-1:
 * either of two).
 *
 * An activation that is an affine map followed by a clamp to [clip_lo, clip_hi] folds its map
 * the same way and stays as Clip(clip_lo, clip_hi) (`clamps`): the quantizer folds a Clip after
 * a Conv into the Conv's output quantization, so the pair runs as one int8 Conv where
 * onnxruntime has no int8 kernel for the activation (HardSigmoid, in squeeze-excitation
 * blocks: Conv -> HardSigmoid -> Mul).  Relu and Clip themselves need no entry (their affine
 * map is the identity); HardSwish is x times a HardSigmoid of x, no affine map of x.
 */
static const struct {
    const char *op_type;
    int data;
    int (*affine)(const struct mq_graph_index *idx, const Onnx__NodeProto *node, int64_t c,
                  int rank, double *a, double *s);
    int clamps;
    float clip_lo, clip_hi;
} affine_ops[] = {
    {"BatchNormalization", 0, batchnorm_affine, 0, 0.0f, 0.0f},
    {"Mul", -1, elementwise_affine, 0, 0.0f, 0.0f},
    {"Add", -1, elementwise_affine, 0, 0.0f, 0.0f},
    {"Sub", 0, elementwise_affine, 0, 0.0f, 0.0f},
    {"Div", 0, elementwise_affine, 0, 0.0f, 0.0f},
    {"HardSigmoid", 0, hardsigmoid_affine, 1, 0.0f, 1.0f},
};

/* The row of affine_ops for a node, -1 when none. */
static int affine_op_row(const Onnx__NodeProto *node)
{
    for (size_t r = 0; r < sizeof affine_ops / sizeof affine_ops[0]; r++)
        if (mq_node_is_op(node, affine_ops[r].op_type))
            return (int)r;
    return -1;
}

/* Where a Conv's weight [M, C/g, k...] holds the output channels. */
static int conv_channel_axis(const Onnx__NodeProto *conv)
{
    (void)conv;
    return 0;
}

/* A ConvTranspose's weight [C_in, M/g, k...]: axis 1, when group is 1 (a grouped one's output
   channels are spread over the groups). */
static int conv_transpose_channel_axis(const Onnx__NodeProto *conv)
{
    return mq_node_attr_int(conv, "group", 1) == 1 ? 1 : -1;
}

/* Gemm, alpha A B + beta C: B [K, N] (axis 1) or, transposed, [N, K] (axis 0); only with beta 1,
   so that the folded shift goes into C as it is. */
static int gemm_channel_axis(const Onnx__NodeProto *gemm)
{
    if (mq_node_attr_float(gemm, "beta", 1.0f) != 1.0f)
        return -1;
    return mq_node_attr_int(gemm, "transB", 0) ? 0 : 1;
}

/* The ops folded into, with their weight (input 1, of min_rank to max_rank dims) and bias
   (input 2, one value per output channel). */
static const struct {
    const char *op_type;
    int (*channel_axis)(const Onnx__NodeProto *node); /* -1: not this node */
    int min_rank, max_rank;
} weighted_ops[] = {
    {"Conv", conv_channel_axis, 3, MQ_MAX_RANK},
    {"ConvTranspose", conv_transpose_channel_axis, 3, MQ_MAX_RANK},
    {"Gemm", gemm_channel_axis, 2, 2},
};

static int weighted_op_row(const Onnx__NodeProto *node)
{
    for (size_t r = 0; r < sizeof weighted_ops / sizeof weighted_ops[0]; r++)
        if (mq_node_is_op(node, weighted_ops[r].op_type))
            return (int)r;
    return -1;
}

/*
 * Whether node `index` (an op of affine_ops) can be folded into the Conv that produces its data
 * input: 1 with *conv_index set and the parameters decoded, 0 when not.
 */
static int foldable(const struct mq_graph_index *idx, int index, int *conv_index,
                    struct fold_params *p)
{
    Onnx__GraphProto *g = idx->graph;
    const Onnx__NodeProto *node = g->node[index];
    memset(p, 0, sizeof *p);
    int k = affine_op_row(node);
    if (k < 0 || node->n_output < 1 || !*mq_str(node->output[0]))
        return 0;
    int data = affine_ops[k].data;
    if (data < 0) { /* either input: the one a node produces */
        const struct mq_tensor_info *t0 = mq_graph_tensor(idx, mq_graph_input_at(node, 0));
        data = t0 && t0->producer >= 0 ? 0 : 1;
    }
    const char *x = mq_graph_input_at(node, (size_t)data);
    const struct mq_tensor_info *xt = x ? mq_graph_tensor(idx, x) : NULL;
    if (!xt || xt->producer < 0 || !only_reader(idx, x, index))
        return 0;
    const Onnx__NodeProto *conv = g->node[xt->producer];
    int row = weighted_op_row(conv);
    p->channel_axis = row >= 0 ? weighted_ops[row].channel_axis(conv) : -1;
    if (p->channel_axis < 0 || conv->n_output != 1 || strcmp(conv->output[0], x) != 0)
        return 0;
    if (!decode_f32(idx, mq_graph_input_at(conv, 1), &p->w))
        return 0;
    int64_t c = p->w.rank >= weighted_ops[row].min_rank && p->w.rank <= weighted_ops[row].max_rank
                    ? p->w.dims[p->channel_axis]
                    : 0;
    int ok = c > 0;
    if (ok && mq_graph_input_at(conv, 2)) {
        /* one value per channel along the output's axis 1 (a Gemm's C may be [1, N]) */
        ok = decode_f32(idx, mq_graph_input_at(conv, 2), &p->b) && p->b.count == c &&
             (p->b.rank <= 1 || (p->b.rank == 2 && p->b.dims[0] == 1));
        p->has_b = 1;
    }
    if (ok) {
        p->a = malloc((size_t)c * sizeof *p->a);
        p->s = malloc((size_t)c * sizeof *p->s);
        ok = p->a && p->s && affine_ops[k].affine(idx, node, c, p->w.rank, p->a, p->s);
    }
    if (!ok) {
        params_free(p);
        return 0;
    }
    *conv_index = xt->producer;
    return 1;
}

/*
 * W'[o] = W[o] * a[o], b'[o] = b[o] * a[o] + s[o], in double.  0 when a value would not be
 * finite (a zero or negative variance, a division by zero): that node stays.
 */
static int fold_values(struct fold_params *p, struct mq_tensor *bias)
{
    /* [outer, c, inner]: outer 1 for a Conv ([M, C/g, k...]) or a Gemm's [N, K], C_in for a
       ConvTranspose, K for a Gemm's [K, N] */
    int64_t c = p->w.dims[p->channel_axis], outer = p->channel_axis == 1 ? p->w.dims[0] : 1;
    int64_t inner = p->w.count / (c * outer);
    float *w = p->w.data, *out = bias->data;
    const float *b = p->has_b ? p->b.data : NULL;
    for (int64_t o = 0; o < c; o++) {
        double a = p->a[o];
        double nb = (b ? (double)b[o] : 0.0) * a + p->s[o];
        if (!isfinite(a) || !isfinite((float)nb))
            return 0;
        for (int64_t i = 0; i < outer; i++)
            for (int64_t e = 0; e < inner; e++) {
                float *wv = &w[(i * c + o) * inner + e];
                float v = (float)((double)*wv * a);
                if (!isfinite(v))
                    return 0;
                *wv = v;
            }
        out[o] = (float)nb;
    }
    return 1;
}

/* Gives the Conv a bias input (it had none). */
static int add_bias_input(Onnx__NodeProto *conv, const char *name)
{
    if (conv->n_input >= 3)
        return mq_str_replace(&conv->input[2], name);
    char **v = realloc(conv->input, 3 * sizeof *v);
    if (!v)
        return -1;
    conv->input = v;
    for (size_t i = conv->n_input; i < 3; i++)
        v[i] = NULL;
    conv->n_input = 3;
    for (size_t i = 0; i < 3; i++)
        if (!v[i] && !(v[i] = strdup(i == 2 ? name : "")))
            return -1;
    return 0;
}

/* Where the folded weight or bias goes: over an initializer only this Conv reads, else new. */
static int pick_slot(struct fold_ctx *fc, const struct mq_graph_index *idx, const char *name,
                     int conv_index, const char *base, char **target, int *slot)
{
    *slot = name && only_reader(idx, name, conv_index) ? own_initializer(idx, name) : -1;
    if (*slot >= 0)
        *target = strdup(name);
    else
        *target = mq_names_fresh(&fc->names, base);
    return *target ? 0 : oom(fc);
}

/* Graph g's scalar initializers holding a Clip's bounds: made once per graph and bounds. */
static int clip_bounds(struct fold_ctx *fc, Onnx__GraphProto *g, float lo, float hi)
{
    if (fc->clip_graph == g && fc->clip_lo == lo && fc->clip_hi == hi)
        return MQ_OK;
    free(fc->clip_lo_name);
    free(fc->clip_hi_name);
    fc->clip_graph = NULL;
    fc->clip_lo_name = mq_names_fresh(&fc->names, "clip_min");
    fc->clip_hi_name = mq_names_fresh(&fc->names, "clip_max");
    if (!fc->clip_lo_name || !fc->clip_hi_name)
        return oom(fc);
    struct mq_tensor t;
    int rc = mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 0, NULL, "clip bound", fc->err);
    if (rc)
        return rc;
    for (int k = 0; k < 2 && !rc; k++) {
        *(float *)t.data = k ? hi : lo;
        rc = store(fc, g, -1, k ? fc->clip_hi_name : fc->clip_lo_name, &t);
    }
    mq_tensor_free(&t);
    if (rc)
        return rc;
    fc->clip_graph = g;
    fc->clip_lo = lo;
    fc->clip_hi = hi;
    return MQ_OK;
}

/*
 * Rewrites a folded activation, in place, as Clip(input, lo, hi): bounds as attributes before
 * opset 11, as inputs from then on.  Its name and output stay.
 */
static int rewrite_as_clip(struct fold_ctx *fc, Onnx__GraphProto *g, Onnx__NodeProto *node,
                           const char *input, float lo, float hi)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        onnx__attribute_proto__free_unpacked(node->attribute[a], NULL);
    free(node->attribute);
    node->attribute = NULL;
    node->n_attribute = 0;
    if (mq_str_replace(&node->op_type, "Clip") || mq_str_replace(&node->input[0], input))
        return oom(fc);
    if (fc->opset < 11)
        return mq_graph_add_float_attr(node, "min", lo) || mq_graph_add_float_attr(node, "max", hi)
                   ? oom(fc)
                   : MQ_OK;
    int rc = clip_bounds(fc, g, lo, hi);
    char **v = rc ? NULL : realloc(node->input, 3 * sizeof *v);
    if (rc || !v)
        return rc ? rc : oom(fc);
    node->input = v;
    v[1] = strdup(fc->clip_lo_name);
    v[2] = strdup(fc->clip_hi_name);
    node->n_input = 3;
    return v[1] && v[2] ? MQ_OK : oom(fc);
}

static int fold_one(struct fold_ctx *fc, struct mq_graph_index *idx, const char *path,
                    int bn_index, int conv_index, struct fold_params *p, char *removed)
{
    Onnx__GraphProto *g = idx->graph;
    Onnx__NodeProto *bn = g->node[bn_index], *conv = g->node[conv_index];
    struct mq_tensor bias = {0};
    int64_t c = p->w.dims[p->channel_axis];
    int rc = mq_tensor_alloc(&bias, MQ_DTYPE_FLOAT, 1, &c, "folded bias", fc->err);
    if (rc)
        return rc;
    if (!fold_values(p, &bias)) {
        mq_tensor_free(&bias);
        return MQ_OK;
    }
    /* Copies: the Conv's inputs are rewritten below. */
    char *w_name = strdup(mq_graph_input_at(conv, 1));
    char *b_name = mq_graph_input_at(conv, 2) ? strdup(mq_graph_input_at(conv, 2)) : NULL;
    char *w_target = NULL, *b_target = NULL;
    char *w_base = w_name ? mq_str_printf("%s_folded", w_name) : NULL;
    /* a new bias is named after BatchNormalization's shift, else after the weight */
    const char *b_from = b_name ? b_name
                         : mq_node_is_op(bn, "BatchNormalization") ? mq_str(bn->input[2])
                         : NULL;
    char *b_base = b_from ? mq_str_printf("%s_folded", b_from)
                          : mq_str_printf("%s_bias_folded", w_name ? w_name : "conv");
    /* An activation with a clamp stays, as a Clip, reading the Conv's output under a new name
       (its values are no longer the old tensor's, nor are its calibrated ranges). */
    int row = affine_op_row(bn), clamps = affine_ops[row].clamps;
    char *affine_base = clamps ? mq_str_printf("%s_affine", mq_str(bn->output[0])) : NULL;
    char *affine_name = affine_base ? mq_names_fresh(&fc->names, affine_base) : NULL;
    int w_slot, b_slot;
    if (!w_name || (mq_graph_input_at(conv, 2) && !b_name) || !w_base || !b_base ||
        (clamps && !affine_name))
        rc = oom(fc);
    if (!rc)
        rc = pick_slot(fc, idx, w_name, conv_index, w_base, &w_target, &w_slot);
    if (!rc)
        rc = pick_slot(fc, idx, b_name, conv_index, b_base, &b_target, &b_slot);
    if (!rc)
        rc = store(fc, g, w_slot, w_target, &p->w);
    if (!rc)
        rc = store(fc, g, b_slot, b_target, &bias);
    /* The Conv now writes the normalized tensor itself (or the clamp's input). */
    if (!rc && (mq_str_replace(&conv->input[1], w_target) || add_bias_input(conv, b_target) ||
                mq_str_replace(&conv->output[0], clamps ? affine_name : bn->output[0])))
        rc = oom(fc);
    /* its parameters (the data input is no initializer: add_candidate passes over it) */
    for (size_t k = 0; !rc && k < bn->n_input; k++)
        if (add_candidate(fc, idx, mq_graph_input_at(bn, k)))
            rc = oom(fc);
    if (!rc && ((w_slot < 0 && add_candidate(fc, idx, w_name)) ||
                (b_name && b_slot < 0 && add_candidate(fc, idx, b_name))))
        rc = oom(fc);
    if (!rc) {
        removed[bn_index] = !clamps;
        struct mq_fold_result *out = fc->out;
        struct mq_fold_record *v = realloc(out->items, (size_t)(out->n + 1) * sizeof *v);
        if (!v) {
            rc = oom(fc);
        } else {
            out->items = v;
            struct mq_fold_record *r = &v[out->n++];
            r->op_type = strdup(mq_str(bn->op_type));
            r->batchnorm = display_name(bn, bn_index);
            r->conv = display_name(conv, conv_index);
            r->graph = strdup(path);
            r->clip_left = clamps;
            if (!r->op_type || !r->batchnorm || !r->conv || !r->graph)
                rc = oom(fc);
        }
    }
    if (!rc && clamps)
        rc = rewrite_as_clip(fc, g, bn, affine_name, affine_ops[row].clip_lo,
                             affine_ops[row].clip_hi);
    free(affine_base);
    free(affine_name);
    free(w_name);
    free(b_name);
    free(w_base);
    free(b_base);
    free(w_target);
    free(b_target);
    mq_tensor_free(&bias);
    return rc;
}

/* Drops the nodes marked removed, and the value infos of the tensors they made vanish. */
static void compact(Onnx__GraphProto *g, const char *removed, char **vanished, int n_vanished)
{
    size_t w = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        if (removed[i])
            onnx__node_proto__free_unpacked(g->node[i], NULL);
        else
            g->node[w++] = g->node[i];
    }
    g->n_node = w;
    mq_graph_drop_value_infos(g, vanished, n_vanished);
}

static int fold_graph(struct fold_ctx *fc, Onnx__GraphProto *g,
                      const struct mq_graph_index *parent, const char *path, int depth);

struct sub_walk {
    struct fold_ctx *fc;
    const struct mq_graph_index *parent;
    const char *prefix;
    int depth;
};

static int fold_subgraph(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    struct sub_walk *sw = user;
    char *path = mq_str_printf("%s/%s", sw->prefix, attr_name);
    if (!path)
        return oom(sw->fc);
    int rc = fold_graph(sw->fc, sub, sw->parent, path, sw->depth + 1);
    free(path);
    return rc;
}

/* One pass over g's nodes, folding what can be folded into the Conv before it. */
static int fold_round(struct fold_ctx *fc, Onnx__GraphProto *g,
                      const struct mq_graph_index *parent, const char *path)
{
    struct mq_graph_index idx;
    int rc = mq_graph_index_build(g, parent, &idx, fc->err);
    if (rc)
        return rc;
    size_t n = g->n_node;
    char *removed = calloc(n ? n : 1, 1);
    char **vanished = calloc(n ? n : 1, sizeof *vanished);
    int n_vanished = 0;
    if (!removed || !vanished)
        rc = oom(fc);
    for (size_t i = 0; !rc && i < n; i++) {
        struct fold_params p;
        int conv_index, before = fc->out->n;
        if (!foldable(&idx, (int)i, &conv_index, &p))
            continue;
        /* The Conv's old output disappears; its name is kept to drop its value info. */
        char *gone = strdup(g->node[conv_index]->output[0]);
        if (!gone)
            rc = oom(fc);
        if (!rc)
            rc = fold_one(fc, &idx, path, (int)i, conv_index, &p, removed);
        if (!rc && fc->out->n > before)
            vanished[n_vanished++] = gone;
        else
            free(gone);
        params_free(&p);
    }
    if (!rc)
        compact(g, removed, vanished, n_vanished);
    for (int v = 0; v < n_vanished; v++)
        free(vanished[v]);
    free(vanished);
    free(removed);
    mq_graph_index_free(&idx);
    return rc;
}

static int fold_graph(struct fold_ctx *fc, Onnx__GraphProto *g,
                      const struct mq_graph_index *parent, const char *path, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(fc->err, "subgraphs nest deeper than %d levels", MQ_MAX_SUBGRAPH_DEPTH);
    /* Rounds until nothing folds: Conv -> BatchNormalization -> Mul -> Add folds one op per
       round, each round on an index of the graph as the last one left it. */
    int rc = MQ_OK;
    for (int folded = 1; folded && !rc;) {
        int before = fc->out->n;
        rc = fold_round(fc, g, parent, path);
        folded = fc->out->n > before;
    }
    if (rc)
        return rc;
    struct mq_graph_index idx;
    /* Subgraphs see this graph as it is now. */
    rc = mq_graph_index_build(g, parent, &idx, fc->err);
    for (size_t i = 0; !rc && i < g->n_node; i++) {
        char *name = display_name(g->node[i], (int)i);
        char *prefix = !name ? NULL : *path ? mq_str_printf("%s/%s", path, name) : strdup(name);
        free(name);
        if (!prefix) {
            rc = oom(fc);
            break;
        }
        struct sub_walk sw = {fc, &idx, prefix, depth};
        rc = mq_graph_each_subgraph(g->node[i], fold_subgraph, &sw);
        free(prefix);
    }
    if (idx.by_name)
        mq_graph_index_free(&idx);
    return rc;
}

/* ------------------------------------------------------- unused initializers */

static int remove_unused(struct fold_ctx *fc, Onnx__ModelProto *model)
{
    if (!fc->n_cands)
        return MQ_OK;
    struct mq_strmap *refs = mq_strmap_new();
    if (!refs || mq_graph_collect_reads(model->graph, refs)) {
        mq_strmap_free(refs);
        return oom(fc);
    }
    for (int c = 0; c < fc->n_cands; c++)
        if (mq_strmap_get(refs, fc->cands[c].name) < 0)
            mq_graph_drop_initializer_named(fc->cands[c].graph, fc->cands[c].name);
    mq_strmap_free(refs);
    return MQ_OK;
}

/* ------------------------------------------------------------ entry points */

void mq_fold_result_free(struct mq_fold_result *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->items[i].op_type);
        free(r->items[i].batchnorm);
        free(r->items[i].conv);
        free(r->items[i].graph);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

int mq_fold_batchnorm(Onnx__ModelProto *model, struct mq_fold_result *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (!model->graph)
        return MQ_OK;
    struct fold_ctx fc;
    memset(&fc, 0, sizeof fc);
    fc.out = out;
    fc.err = err;
    fc.opset = mq_model_proto_opset(model, "");
    int rc = mq_names_collect(model, &fc.names, err);
    if (rc)
        return rc;
    rc = fold_graph(&fc, model->graph, NULL, "", 0);
    if (!rc)
        rc = remove_unused(&fc, model);
    mq_names_free(&fc.names);
    free(fc.clip_lo_name);
    free(fc.clip_hi_name);
    for (int c = 0; c < fc.n_cands; c++)
        free(fc.cands[c].name);
    free(fc.cands);
    if (rc)
        mq_fold_result_free(out);
    return rc;
}
