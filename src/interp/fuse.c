/*
 * Operator fusion, for plans built with mq_plan_options.fuse (the `run`
 * command; calibration and comparison observe every tensor and use plain
 * plans).  After constant folding, while the steps are still in topological
 * order:
 *
 *  - a Conv whose weights (and bias) are constants absorbs the
 *    BatchNormalization (inference) and the Mul or Add by a per-channel
 *    constant that follow it: they are one affine map per output channel,
 *    y = a[c] * conv + b[c], which goes into new weights W * a[c] and bias
 *    a[c] * B + b[c];
 *  - a BatchNormalization absorbs the per-channel Mul and Add after it into
 *    new scale and bias constants (DenseNet and Inception write BN, Mul,
 *    Add, Relu);
 *  - a Conv absorbs the Add (or two-input Sum) of its output and a tensor
 *    computed before the Conv runs (a residual connection): the kernel adds
 *    it with the bias;
 *  - Conv, Gemm, BatchNormalization, Add and Sum absorb a following Relu
 *    (the kernels of interp/ops/fused.h), or a following Clip whose bounds
 *    are constants (attributes before opset 11, else constant inputs): the
 *    bounds go into the node's clamp (interp/kernel.h), which Conv's kernels
 *    apply to each block of output as they write it and the runner applies
 *    in place after the others (plan_step.clip_after), the same comparisons
 *    as Clip's own, so the floats are Clip's.  A Conv with float32 or double
 *    weights absorbs a following HardSwish the same way;
 *  - a QuantizeLinear absorbs the DequantizeLinear with its scale and zero
 *    point that alone reads it: a QDQ model's simulated rounding in one step.
 *
 * A node is absorbed only when it is the single reader of its producer's
 * output and that output is not a graph output nor read by a subgraph, so
 * nothing else could see the tensor that is no longer produced.  Constants
 * that no step reads any more are freed.
 *
 * A Pad of +0 over the two spatial axes of a 4-D tensor that only a
 * depthwise Conv reads becomes that Conv's padding (mq_conv_absorb_zero_pad),
 * saving the padded copy.
 *
 * Reshape, Flatten, Squeeze and Unsqueeze become views of their input when
 * that input outlives them: a constant, a fed input, an outer value, or a
 * tensor no other step reads (the runner then moves its buffer over).
 *
 * mq_plan_pack_weights, for mq_plan_options.pack_weights, hands each Conv
 * its constant W to pack (interp/ops/conv_gemm.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/fused.h"
#include "interp/plan_internal.h"
#include "util/strutil.h"

struct fuse {
    struct mq_plan *plan;
    int *reads;    /* per value: how many step inputs name it; subgraph uses count as two */
    int *reader;   /* per value: the last step reading it */
    int *rank;     /* per value: rank known at plan time, -1 when not */
    int *producer; /* per value: the step producing it, -1 for inputs and constants */
    char *removed; /* per step: absorbed into an earlier step */
};

/* Ops whose output has the rank of their first input. */
static const char *const same_rank_ops[] = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "Elu", "Selu", "HardSigmoid",
    "HardSwish", "Softplus", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Identity",
    "Dropout", "BatchNormalization", "InstanceNormalization", "LRN", "MaxPool", "AveragePool",
    "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "Softmax", "LogSoftmax",
    "Concat", "Pad", "Resize", "Upsample", "Cast", NULL,
};

/* Ops whose output has the largest rank of their inputs (numpy broadcasting). */
static const char *const broadcast_ops[] = {
    "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean", "Pow", NULL,
};

static int is_op(const struct plan_step *step, const char *op_type)
{
    return *step->node.domain == '\0' && strcmp(step->node.op_type, op_type) == 0;
}

static void count_outer_reads(const struct mq_plan *sub, int level, int *reads)
{
    for (int v = 0; v < sub->n_values; v++)
        if (sub->values[v].outer_level == level)
            reads[sub->values[v].outer_index] += 2;
    for (int s = 0; s < sub->n_steps; s++)
        for (int g = 0; g < sub->steps[s].node.n_subgraphs; g++)
            count_outer_reads(sub->steps[s].node.subgraphs[g], level + 1, reads);
}

/* Readers of every value among the steps not removed. */
static void count_reads(struct fuse *f)
{
    const struct mq_plan *plan = f->plan;
    memset(f->reads, 0, sizeof *f->reads * (size_t)plan->n_values);
    for (int s = 0; s < plan->n_steps; s++) {
        const struct plan_step *step = &plan->steps[s];
        if (f->removed[s])
            continue;
        for (int i = 0; i < step->node.n_inputs; i++)
            if (step->inputs[i] >= 0) {
                f->reads[step->inputs[i]]++;
                f->reader[step->inputs[i]] = s;
            }
        for (int g = 0; g < step->node.n_subgraphs; g++)
            count_outer_reads(step->node.subgraphs[g], 1, f->reads);
    }
}

static int declared_rank(const Onnx__ValueInfoProto *info)
{
    if (!info || !info->type || info->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !info->type->tensor_type->shape)
        return -1;
    return (int)info->type->tensor_type->shape->n_dim;
}

/*
 * Ranks that follow from the constants, the declared graph inputs and the
 * ops above.  A fusion that relies on one (BatchNormalization's) has the
 * runner check it against the real input (plan_step.fused_input_rank).
 */
static void infer_ranks(struct fuse *f)
{
    const struct mq_plan *plan = f->plan;
    for (int v = 0; v < plan->n_values; v++)
        f->rank[v] = plan->values[v].is_constant ? plan->values[v].constant.rank : -1;
    for (int i = 0; i < plan->n_inputs; i++)
        f->rank[plan->input_values[i]] = declared_rank(plan->inputs[i]);
    for (int s = 0; s < plan->n_steps; s++) {
        const struct plan_step *step = &plan->steps[s];
        const struct mq_kernel_node *kn = &step->node;
        if (kn->n_outputs < 1 || step->outputs[0] < 0 || *kn->domain || kn->n_inputs < 1)
            continue;
        int first = step->inputs[0] >= 0 ? f->rank[step->inputs[0]] : -1;
        int r = -1;
        if (strcmp(kn->op_type, "Conv") == 0 || strcmp(kn->op_type, "ConvTranspose") == 0) {
            /* W has X's rank, and so has Y */
            r = kn->n_inputs > 1 && step->inputs[1] >= 0 ? f->rank[step->inputs[1]] : -1;
            if (r < 0)
                r = first;
        } else if (mq_str_in_list(same_rank_ops, kn->op_type)) {
            r = first;
        } else if (mq_str_in_list(broadcast_ops, kn->op_type)) {
            for (int i = 0; i < kn->n_inputs; i++) {
                int ri = step->inputs[i] >= 0 ? f->rank[step->inputs[i]] : -1;
                if (ri < 0) {
                    r = -1;
                    break;
                }
                if (ri > r)
                    r = ri;
            }
        }
        if (!plan->values[step->outputs[0]].is_constant)
            f->rank[step->outputs[0]] = r;
    }
}

/* The step that alone reads v, when nothing else can see v; -1 otherwise. */
static int single_reader(const struct fuse *f, int v)
{
    const struct plan_value *pv = &f->plan->values[v];
    if (pv->is_graph_output || pv->is_constant || pv->outer_level || f->reads[v] != 1)
        return -1;
    return f->reader[v];
}

/* A step whose first output is its only one (others absent), reading v as input 0. */
static int single_output_reading(const struct plan_step *step, int v)
{
    if (step->node.n_inputs < 1 || step->inputs[0] != v || step->node.n_outputs < 1 ||
        step->outputs[0] < 0 || step->node.n_subgraphs)
        return 0;
    for (int o = 1; o < step->node.n_outputs; o++)
        if (step->outputs[o] >= 0)
            return 0;
    return 1;
}

static const struct mq_tensor *local_constant(const struct mq_plan *plan, int v)
{
    if (v < 0 || !plan->values[v].is_constant || plan->values[v].outer_level)
        return NULL;
    const struct mq_tensor *t = &plan->values[v].constant;
    return t->dtype ? t : NULL;
}

/*
 * When constant c, broadcast against a tensor of `rank` with `channels` on
 * axis 1, neither grows it nor varies along any other axis: 1 and *along set
 * to whether it has one value per channel (else a single value).
 */
static int per_channel(const struct mq_tensor *c, int rank, int64_t channels, int *along)
{
    if (!c || rank < 2 || c->rank > rank || !mq_dtype_is_float(c->dtype))
        return 0;
    *along = 0;
    for (int j = 0; j < c->rank; j++) {
        int axis = rank - c->rank + j;
        if (c->dims[j] == 1)
            continue;
        if (axis != 1 || c->dims[j] != channels)
            return 0;
        *along = 1;
    }
    return 1;
}

/* Mul or Add (opset 7+, numpy broadcasting) of v by a per-channel constant: its index or -1. */
static int affine_operand(const struct mq_plan *plan, const struct plan_step *step, int v,
                          int rank, int64_t channels, int dtype, int *along)
{
    if ((!is_op(step, "Mul") && !is_op(step, "Add")) || step->node.opset < 7 ||
        step->node.n_inputs != 2 || step->node.n_outputs != 1 || step->outputs[0] < 0)
        return -1;
    int other = step->inputs[0] == v ? 1 : step->inputs[1] == v ? 0 : -1;
    if (other < 0 || step->inputs[other] == v)
        return -1;
    const struct mq_tensor *c = local_constant(plan, step->inputs[other]);
    if (!c || c->dtype != dtype || !per_channel(c, rank, channels, along))
        return -1;
    return step->inputs[other];
}

/* BatchNormalization in inference mode reading v, with constant per-channel parameters. */
static int inference_batchnorm(const struct mq_plan *plan, const struct plan_step *step, int v,
                               int64_t channels)
{
    if (!is_op(step, "BatchNormalization") || !single_output_reading(step, v) ||
        step->node.n_inputs != 5)
        return 0;
    if (step->node.opset >= 14 && mq_attr_int(&step->node, "training_mode", 0) != 0)
        return 0;
    for (int i = 1; i < 5; i++) {
        const struct mq_tensor *p = local_constant(plan, step->inputs[i]);
        if (!p || !mq_dtype_is_float(p->dtype) || p->count != channels)
            return 0;
    }
    return 1;
}

/*
 * An Add (opset 7+) or two-input Sum reading v and another tensor that
 * exists before step s runs: that tensor's index, else -1.
 */
static int residual_operand(const struct fuse *f, const struct plan_step *step, int v, int s)
{
    if ((!is_op(step, "Add") || step->node.opset < 7) && !is_op(step, "Sum"))
        return -1;
    if (step->node.n_inputs != 2 || step->node.n_outputs != 1 || step->outputs[0] < 0)
        return -1;
    int other = step->inputs[0] == v ? step->inputs[1] : step->inputs[1] == v ? step->inputs[0]
                                                                               : -2;
    if (other < 0 || other == v || f->producer[other] >= s)
        return -1;
    return other;
}

static int relu_reading(const struct plan_step *step, int v)
{
    return is_op(step, "Relu") && single_output_reading(step, v) && step->node.n_inputs == 1;
}

/*
 * A Clip reading v alone whose bounds are known now: attributes before opset 11, constant
 * scalars of a float type from opset 11 (an absent bound is an infinity).  Fills *clamp (the
 * bounds, exactly as Clip reads them) and returns 1; 0 when it is not such a Clip.
 */
static int clip_reading(const struct fuse *f, const struct plan_step *step, int v,
                        struct mq_fused_clamp *clamp)
{
    if (!is_op(step, "Clip") || !single_output_reading(step, v))
        return 0;
    const struct mq_kernel_node *kn = &step->node;
    memset(clamp, 0, sizeof *clamp);
    clamp->kind = MQ_FUSED_CLIP;
    clamp->lo = -INFINITY;
    clamp->hi = INFINITY;
    clamp->clip_name = kn->name;
    if (kn->opset < 11) {
        /* read as float32, as the Clip kernel does, and widened exactly */
        if (mq_attr_has(kn, "min"))
            clamp->lo = mq_attr_float(kn, "min", 0.0f);
        if (mq_attr_has(kn, "max"))
            clamp->hi = mq_attr_float(kn, "max", 0.0f);
        return 1;
    }
    if (kn->n_inputs > 3)
        return 0;
    for (int i = 1; i < kn->n_inputs; i++) {
        if (step->inputs[i] < 0)
            continue;
        const struct mq_tensor *c = local_constant(f->plan, step->inputs[i]);
        if (!c || c->count != 1 || !mq_dtype_is_float(c->dtype) ||
            (clamp->dtype && c->dtype != clamp->dtype))
            return 0;
        clamp->dtype = c->dtype;
        *(i == 1 ? &clamp->lo : &clamp->hi) = mq_tensor_get_double(c, 0);
    }
    return 1;
}

static void put_element(struct mq_tensor *t, int64_t i, double v)
{
    if (t->dtype == MQ_DTYPE_DOUBLE)
        ((double *)t->data)[i] = v;
    else
        ((float *)t->data)[i] = (float)v;
}

/* Adds a constant named after `base`; returns its value index or -1 (err filled). */
static int add_constant(struct mq_plan *plan, const char *base, struct mq_tensor *t,
                        struct mq_error *err)
{
    size_t size = strlen(base) + 32;
    char *name = malloc(size);
    if (!name) {
        mq_tensor_free(t);
        mq_error_code(err, MQ_ERR_MEMORY, "out of memory fusing '%s'", base);
        return -1;
    }
    snprintf(name, size, "%s/fused", base);
    for (int k = 2; mq_plan_lookup(plan, name) >= 0; k++)
        snprintf(name, size, "%s/fused%d", base, k);
    int v = mq_plan_value_add(plan, name);
    if (v < 0) {
        free(name);
        mq_tensor_free(t);
        mq_error_code(err, MQ_ERR_MEMORY, "out of memory fusing '%s'", base);
        return -1;
    }
    struct plan_value *pv = &plan->values[v];
    pv->owned_name = name;
    pv->is_constant = 1;
    mq_tensor_move(&pv->constant, t);
    return v;
}

/*
 * New constants `scaled` = base * a[c] + shift[c] per channel c, the channel
 * being index / per of each element (base NULL: 0).
 */
static int affine_constant(struct mq_plan *plan, const char *name, int dtype, int rank,
                           const int64_t *dims, const struct mq_tensor *base, int64_t per,
                           const double *a, const double *shift, struct mq_error *err)
{
    struct mq_tensor t;
    if (mq_tensor_alloc_uninit(&t, dtype, rank, dims, name, err))
        return -1;
    for (int64_t i = 0; i < t.count; i++) {
        int64_t c = i / per;
        double x = base ? mq_tensor_get_double(base, i) : 0.0;
        put_element(&t, i, x * a[c] + (shift ? shift[c] : 0.0));
    }
    return add_constant(plan, name, &t, err);
}

/* y = a * y + c per channel, then the Mul or Add by constant k (one value or one per channel). */
static void compose_affine(const struct plan_step *step, const struct mq_tensor *k, int along,
                           double *a, double *c, int64_t channels)
{
    int mul = strcmp(step->node.op_type, "Mul") == 0;
    for (int64_t ch = 0; ch < channels; ch++) {
        double kv = mq_tensor_get_double(k, along ? ch : 0);
        if (mul) {
            a[ch] *= kv;
            c[ch] *= kv;
        } else {
            c[ch] += kv;
        }
    }
}

/* Marks step r absorbed; returns its output, the new end of the chain. */
/* The per-channel affine map y = a * x + c of `channels` channels, starting as the identity (a = 1,
   c = 0), for the folds to compose into; MQ_ERR (nothing allocated) when out of memory. */
static int identity_affine(int64_t channels, double **a, double **c)
{
    *a = malloc(sizeof **a * (size_t)channels);
    *c = malloc(sizeof **c * (size_t)channels);
    if (!*a || !*c) {
        free(*a);
        free(*c);
        *a = *c = NULL;
        return MQ_ERR;
    }
    for (int64_t ch = 0; ch < channels; ch++) {
        (*a)[ch] = 1.0;
        (*c)[ch] = 0.0;
    }
    return MQ_OK;
}

static int absorb(struct fuse *f, int r)
{
    f->removed[r] = 1;
    return f->plan->steps[r].outputs[0];
}

static int fuse_conv(struct fuse *f, int s, struct mq_error *err)
{
    struct mq_plan *plan = f->plan;
    struct plan_step *step = &plan->steps[s];
    const struct mq_kernel_node *kn = &step->node;
    if (kn->n_inputs < 2 || kn->n_outputs != 1 || step->outputs[0] < 0)
        return MQ_OK;
    const struct mq_tensor *w = local_constant(plan, step->inputs[1]);
    int has_bias = kn->n_inputs > 2 && step->inputs[2] >= 0;
    const struct mq_tensor *b = has_bias ? local_constant(plan, step->inputs[2]) : NULL;
    /* Folding rewrites W and B: both must be constants of a type folded exactly enough. */
    int foldable = w && (w->dtype == MQ_DTYPE_FLOAT || w->dtype == MQ_DTYPE_DOUBLE) &&
                   w->rank >= 3 && w->dims[0] > 0 &&
                   (!has_bias || (b && b->dtype == w->dtype && b->count == w->dims[0]));
    int64_t channels = foldable ? w->dims[0] : 0;
    double *a = NULL, *c = NULL;
    if (foldable && identity_affine(channels, &a, &c))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory fusing node '%s'", kn->name);
    int out = step->outputs[0], folded = 0, relu = 0, clip = 0, residual = -1;
    struct mq_fused_clamp clamp;
    for (int r; (r = single_reader(f, out)) >= 0;) {
        const struct plan_step *next = &plan->steps[r];
        int along, k;
        if (relu_reading(next, out)) {
            out = absorb(f, r);
            relu = 1;
            break;
        }
        /* bounds of another type than a constant W's: the Clip stays, to refuse them */
        if (clip_reading(f, next, out, &clamp) &&
            (!clamp.dtype || !w || clamp.dtype == w->dtype)) {
            out = absorb(f, r);
            clip = 1;
            break;
        }
        /* HardSwish for a float32 or double W (the types it computes in) */
        if (is_op(next, "HardSwish") && single_output_reading(next, out) &&
            next->node.n_inputs == 1 && w &&
            (w->dtype == MQ_DTYPE_FLOAT || w->dtype == MQ_DTYPE_DOUBLE)) {
            memset(&clamp, 0, sizeof clamp);
            clamp.kind = MQ_FUSED_HARDSWISH;
            clamp.clip_name = next->node.name;
            out = absorb(f, r);
            clip = 1;
            break;
        }
        /* per-channel Adds were folded above; any other operand is a residual, added last */
        if (residual < 0 && (!foldable || affine_operand(plan, next, out, w->rank, channels,
                                                         w->dtype, &along) < 0) &&
            (k = residual_operand(f, next, out, s)) >= 0) {
            residual = k;
            out = absorb(f, r);
            continue;
        }
        if (!foldable || residual >= 0)
            break;
        if (inference_batchnorm(plan, next, out, channels)) {
            const struct mq_tensor *scale = local_constant(plan, next->inputs[1]);
            const struct mq_tensor *bias = local_constant(plan, next->inputs[2]);
            const struct mq_tensor *mean = local_constant(plan, next->inputs[3]);
            const struct mq_tensor *var = local_constant(plan, next->inputs[4]);
            double eps = mq_attr_float(&next->node, "epsilon", 1e-5f);
            for (int64_t ch = 0; ch < channels; ch++) {
                double g = mq_tensor_get_double(scale, ch) /
                           sqrt(mq_tensor_get_double(var, ch) + eps);
                a[ch] *= g;
                c[ch] = g * (c[ch] - mq_tensor_get_double(mean, ch)) +
                        mq_tensor_get_double(bias, ch);
            }
        } else if ((k = affine_operand(plan, next, out, w->rank, channels, w->dtype, &along)) >=
                   0) {
            compose_affine(next, &plan->values[k].constant, along, a, c, channels);
        } else {
            break;
        }
        out = absorb(f, r);
        folded = 1;
    }
    int rc = MQ_OK;
    if (folded) {
        int64_t bias_dims[1] = {channels};
        int vw = affine_constant(plan, plan->values[step->inputs[1]].name, w->dtype, w->rank,
                                 w->dims, w, w->count / channels, a, NULL, err);
        /* value_add may move plan->values: w and b are looked up again */
        b = has_bias ? &plan->values[step->inputs[2]].constant : NULL;
        int vb = vw < 0 ? -1
                        : affine_constant(plan, has_bias ? plan->values[step->inputs[2]].name
                                                         : kn->name,
                                          plan->values[vw].constant.dtype, 1, bias_dims, b, 1, a,
                                          c, err);
        if (vb < 0) {
            rc = MQ_ERR;
        } else {
            step->inputs[1] = vw;
            step->inputs[2] = vb; /* the inputs array always has room for one more */
            step->node.n_inputs = 3;
        }
    }
    free(a);
    free(c);
    if (rc)
        return rc;
    if (residual >= 0) {
        /* [X, W, B or absent, residual] */
        int *inputs = realloc(step->inputs, sizeof *inputs * 4);
        if (!inputs)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory fusing node '%s'", kn->name);
        step->inputs = inputs;
        if (step->node.n_inputs < 3)
            step->inputs[2] = -1;
        step->inputs[3] = residual;
        step->node.n_inputs = 4;
    }
    step->outputs[0] = out;
    if (clip)
        step->node.clamp = clamp;
    if (residual >= 0)
        step->kernel = clip   ? &mq_kernel_conv_add_act
                       : relu ? &mq_kernel_conv_add_relu
                              : &mq_kernel_conv_add;
    else if (clip)
        step->kernel = &mq_kernel_conv_act;
    else if (relu)
        step->kernel = &mq_kernel_conv_relu;
    return MQ_OK;
}

static int fuse_batchnorm(struct fuse *f, int s, struct mq_error *err)
{
    struct mq_plan *plan = f->plan;
    struct plan_step *step = &plan->steps[s];
    const struct mq_kernel_node *kn = &step->node;
    if (kn->n_inputs != 5 || step->inputs[0] < 0 || !single_output_reading(step, step->inputs[0]))
        return MQ_OK;
    if (kn->opset >= 14 && mq_attr_int(kn, "training_mode", 0) != 0)
        return MQ_OK;
    const struct mq_tensor *scale = local_constant(plan, step->inputs[1]);
    const struct mq_tensor *bias = local_constant(plan, step->inputs[2]);
    int rank = f->rank[step->inputs[0]];
    int foldable = scale && bias && scale->dtype == bias->dtype && scale->count == bias->count &&
                   scale->count > 0 && rank >= 2 &&
                   (scale->dtype == MQ_DTYPE_FLOAT || scale->dtype == MQ_DTYPE_DOUBLE);
    int64_t channels = foldable ? scale->count : 0;
    double *a = NULL, *c = NULL;
    if (foldable && identity_affine(channels, &a, &c))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory fusing node '%s'", kn->name);
    int out = step->outputs[0], folded = 0, relu = 0, clip = 0;
    struct mq_fused_clamp clamp;
    for (int r; (r = single_reader(f, out)) >= 0;) {
        const struct plan_step *next = &plan->steps[r];
        int along, k;
        if (relu_reading(next, out)) {
            out = absorb(f, r);
            relu = 1;
            break;
        }
        if (clip_reading(f, next, out, &clamp)) {
            out = absorb(f, r);
            clip = 1;
            break;
        }
        if (!foldable ||
            (k = affine_operand(plan, next, out, rank, channels, scale->dtype, &along)) < 0)
            break;
        compose_affine(next, &plan->values[k].constant, along, a, c, channels);
        out = absorb(f, r);
        folded = 1;
    }
    int rc = MQ_OK;
    if (folded) {
        /* a * (scale * xhat + bias) + c = (a * scale) * xhat + (a * bias + c) */
        int vs = affine_constant(plan, plan->values[step->inputs[1]].name, scale->dtype,
                                 scale->rank, scale->dims, scale, 1, a, NULL, err);
        bias = &plan->values[step->inputs[2]].constant;
        int vb = vs < 0 ? -1
                        : affine_constant(plan, plan->values[step->inputs[2]].name, bias->dtype,
                                          bias->rank, bias->dims, bias, 1, a, c, err);
        if (vb < 0) {
            rc = MQ_ERR;
        } else {
            step->inputs[1] = vs;
            step->inputs[2] = vb;
            /* the Mul and Add were per channel only for this rank of X */
            step->fused_input_rank = rank;
        }
    }
    free(a);
    free(c);
    if (rc)
        return rc;
    step->outputs[0] = out;
    if (relu)
        step->kernel = &mq_kernel_batchnorm_relu;
    if (clip) {
        step->node.clamp = clamp;
        step->clip_after = 1;
    }
    return MQ_OK;
}

/* Reshape-like steps whose input outlives them return views of it. */
static void make_view(struct fuse *f, int s, const struct mq_kernel *view)
{
    struct plan_step *step = &f->plan->steps[s];
    if (step->node.n_inputs < 1 || step->inputs[0] < 0 || step->node.n_outputs != 1 ||
        step->outputs[0] < 0)
        return;
    int v = step->inputs[0];
    const struct plan_value *pv = &f->plan->values[v];
    int fed = 0;
    for (int i = 0; i < f->plan->n_inputs; i++)
        fed |= f->plan->input_values[i] == v;
    /* a second input naming v too would read it after the view took it */
    for (int i = 1; i < step->node.n_inputs; i++)
        if (step->inputs[i] == v)
            return;
    if (pv->is_constant || pv->outer_level || fed || single_reader(f, v) == s) {
        step->kernel = view;
        step->view_of_input = 1;
    }
}

/*
 * QuantizeLinear whose output only a DequantizeLinear reads, with the same scale and zero point
 * values and no attribute on either (per-tensor, outputs of their default types).
 */
static void fuse_dequantize(struct fuse *f, int s)
{
    struct plan_step *step = &f->plan->steps[s];
    if (step->node.n_outputs != 1 || step->outputs[0] < 0 || step->node.n_inputs < 2 ||
        !step->node.proto || step->node.proto->n_attribute)
        return;
    int r = single_reader(f, step->outputs[0]);
    if (r < 0)
        return;
    const struct plan_step *dq = &f->plan->steps[r];
    if (!is_op(dq, "DequantizeLinear") || !single_output_reading(dq, step->outputs[0]) ||
        !dq->node.proto || dq->node.proto->n_attribute ||
        dq->node.n_inputs != step->node.n_inputs)
        return;
    for (int k = 1; k < step->node.n_inputs; k++)
        if (dq->inputs[k] != step->inputs[k] || step->inputs[k] < 0)
            return;
    step->outputs[0] = absorb(f, r);
    step->kernel = &mq_kernel_quantize_dequantize;
    /* x read by this step alone and produced by the run (not fed): its buffer can take the
       output, saving a fresh one as large */
    int v = step->inputs[0];
    int fed = 0;
    for (int i = 0; i < f->plan->n_inputs; i++)
        fed |= f->plan->input_values[i] == v;
    if (v >= 0 && !fed && single_reader(f, v) == s) {
        for (int k = 1; k < step->node.n_inputs; k++)
            if (step->inputs[k] == v)
                return;
        step->kernel = &mq_kernel_quantize_dequantize_in_place;
        step->view_of_input = 1;
    }
}

/*
 * A Pad (opset 2 on) of constant +0 on the spatial axes of a 4-D tensor, read only by a Conv
 * as its X: the Conv reads the Pad's input with the padding added to its own, when it takes a
 * path that pads exactly as the Pad does (mq_conv_absorb_zero_pad).
 */
static void fuse_pad(struct fuse *f, int s)
{
    struct mq_plan *plan = f->plan;
    struct plan_step *step = &plan->steps[s];
    const struct mq_kernel_node *kn = &step->node;
    if (kn->opset < 2 || kn->n_outputs != 1 || step->outputs[0] < 0 || kn->n_inputs < 1 ||
        step->inputs[0] < 0)
        return;
    char mode[16];
    if (strcmp(mq_attr_string(kn, "mode", "constant", mode, sizeof mode), "constant") != 0)
        return;
    int64_t pads[8];
    if (kn->opset < 11) {
        const int64_t *v = NULL;
        double value = mq_attr_float(kn, "value", 0.0f);
        if (mq_attr_ints(kn, "pads", &v) != 8 || value != 0 || signbit(value))
            return;
        memcpy(pads, v, sizeof pads);
    } else {
        if (kn->n_inputs < 2 || kn->n_inputs > 3)
            return; /* no axes input */
        const struct mq_tensor *tp = local_constant(plan, step->inputs[1]);
        if (!tp || tp->dtype != MQ_DTYPE_INT64 || tp->count != 8)
            return;
        memcpy(pads, tp->data, sizeof pads);
        if (kn->n_inputs == 3 && step->inputs[2] >= 0) {
            const struct mq_tensor *tv = local_constant(plan, step->inputs[2]);
            if (!tv || tv->count != 1 || !mq_dtype_is_float(tv->dtype))
                return;
            double value = mq_tensor_get_double(tv, 0);
            if (value != 0 || signbit(value))
                return;
        }
    }
    /* batch and channels unpadded: [n, c, top, left, n, c, bottom, right] */
    if (pads[0] || pads[1] || pads[4] || pads[5])
        return;
    int r = single_reader(f, step->outputs[0]);
    if (r < 0)
        return;
    struct plan_step *conv = &plan->steps[r];
    if (!is_op(conv, "Conv") || conv->node.n_inputs < 2 || conv->inputs[0] != step->outputs[0] ||
        conv->inputs[1] == step->outputs[0])
        return;
    const struct mq_tensor *w = local_constant(plan, conv->inputs[1]);
    const int64_t begin[2] = {pads[2], pads[3]}, end[2] = {pads[6], pads[7]};
    if (!mq_conv_absorb_zero_pad(&conv->node, w, begin, end))
        return;
    int x = step->inputs[0];
    conv->inputs[0] = x;
    if (f->reader[x] < r)
        f->reader[x] = r;
    f->removed[s] = 1;
}

/* Gemm, Add or Sum followed by Relu (the fused kernel) or by Clip (applied by the runner). */
static void fuse_relu(struct fuse *f, int s, const struct mq_kernel *fused)
{
    struct plan_step *step = &f->plan->steps[s];
    if (step->node.n_outputs != 1 || step->outputs[0] < 0)
        return;
    int r = single_reader(f, step->outputs[0]);
    struct mq_fused_clamp clamp;
    if (r < 0)
        return;
    if (relu_reading(&f->plan->steps[r], step->outputs[0])) {
        step->outputs[0] = absorb(f, r);
        step->kernel = fused;
    } else if (clip_reading(f, &f->plan->steps[r], step->outputs[0], &clamp)) {
        step->outputs[0] = absorb(f, r);
        step->node.clamp = clamp;
        step->clip_after = 1;
    }
}

int mq_plan_fuse(struct mq_plan *plan, struct mq_error *err)
{
    struct fuse f = {plan, NULL, NULL, NULL, NULL, NULL};
    size_t nv = (size_t)plan->n_values + 1, ns = (size_t)plan->n_steps + 1;
    int rc = MQ_OK;
    int *before = NULL;
    f.reads = calloc(nv, sizeof *f.reads);
    f.reader = calloc(nv, sizeof *f.reader);
    f.rank = calloc(nv, sizeof *f.rank);
    f.producer = calloc(nv, sizeof *f.producer);
    f.removed = calloc(ns, 1);
    if (!f.reads || !f.reader || !f.rank || !f.producer || !f.removed) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory fusing the plan");
        goto done;
    }
    count_reads(&f);
    infer_ranks(&f);
    for (int v = 0; v < plan->n_values; v++)
        f.producer[v] = -1;
    for (int s = 0; s < plan->n_steps; s++)
        for (int o = 0; o < plan->steps[s].node.n_outputs; o++)
            if (plan->steps[s].outputs[o] >= 0)
                f.producer[plan->steps[s].outputs[o]] = s;
    for (int s = 0; s < plan->n_steps && rc == MQ_OK; s++) {
        const struct plan_step *step = &plan->steps[s];
        if (f.removed[s])
            continue;
        if (is_op(step, "Conv"))
            rc = fuse_conv(&f, s, err);
        else if (is_op(step, "BatchNormalization"))
            rc = fuse_batchnorm(&f, s, err);
        else if (is_op(step, "Gemm"))
            fuse_relu(&f, s, &mq_kernel_gemm_relu);
        else if (is_op(step, "Add") && step->node.n_inputs == 2)
            fuse_relu(&f, s, &mq_kernel_add_relu);
        else if (is_op(step, "Sum"))
            fuse_relu(&f, s, &mq_kernel_sum_relu);
        else if (is_op(step, "Pad"))
            fuse_pad(&f, s);
        else if (is_op(step, "Reshape"))
            make_view(&f, s, &mq_kernel_reshape_view);
        else if (is_op(step, "Flatten"))
            make_view(&f, s, &mq_kernel_flatten_view);
        else if (is_op(step, "Squeeze"))
            make_view(&f, s, &mq_kernel_squeeze_view);
        else if (is_op(step, "Unsqueeze"))
            make_view(&f, s, &mq_kernel_unsqueeze_view);
        else if (is_op(step, "QuantizeLinear"))
            fuse_dequantize(&f, s);
    }
    if (rc)
        goto done;
    /* Steps absorbed are dropped, then the constants only they (or old weights) read.  The
       values added since the first count start at 0 readers "before". */
    size_t grown = (size_t)plan->n_values + 1;
    before = calloc(grown, sizeof *before);
    int *reads = realloc(f.reads, sizeof *f.reads * grown);
    if (reads)
        f.reads = reads;
    int *reader = realloc(f.reader, sizeof *f.reader * grown);
    if (reader)
        f.reader = reader;
    if (!before || !reads || !reader) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory fusing the plan");
        goto done;
    }
    memcpy(before, f.reads, sizeof *before * nv);
    int kept = 0;
    for (int s = 0; s < plan->n_steps; s++) {
        if (f.removed[s]) {
            mq_plan_step_release(&plan->steps[s]);
            continue;
        }
        if (kept != s) {
            plan->steps[kept] = plan->steps[s];
            memset(&plan->steps[s], 0, sizeof plan->steps[s]);
        }
        kept++;
    }
    memset(f.removed, 0, ns);
    plan->n_steps = kept;
    count_reads(&f);
    for (int v = 0; v < plan->n_values; v++) {
        struct plan_value *pv = &plan->values[v];
        if (pv->is_constant && !pv->is_graph_output && before[v] > 0 && f.reads[v] == 0)
            mq_tensor_free(&pv->constant);
    }
done:
    free(before);
    free(f.reads);
    free(f.reader);
    free(f.rank);
    free(f.producer);
    free(f.removed);
    return rc;
}

int mq_plan_pack_weights(struct mq_plan *plan, struct mq_error *err)
{
    for (int s = 0; s < plan->n_steps; s++) {
        struct plan_step *step = &plan->steps[s];
        if (!is_op(step, "Conv") || step->node.n_inputs < 2)
            continue;
        const struct mq_tensor *w = local_constant(plan, step->inputs[1]);
        if (w && mq_conv_pack_weights(&step->node, w, err))
            return MQ_ERR;
    }
    return MQ_OK;
}
