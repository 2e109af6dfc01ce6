/*
 * Weights and constants quantized per channel or per tensor, and biases as
 * int32 with the input's and weight's scales: weight channels enlarged so the
 * bias fits, bias correction, one DequantizeLinear per bias.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/params.h"
#include "quant/qdq_internal.h"
#include "quant/weight_rounding.h"
#include "util/strutil.h"

/* Channel count, and elements per channel block, of a tensor split along axis. */
void mq_qdq_channel_layout(const struct mq_tensor *t, int axis, int64_t *channels, int64_t *inner)
{
    *channels = axis >= 0 ? t->dims[axis] : 1;
    *inner = 1;
    for (int d = axis + 1; axis >= 0 && d < t->rank; d++)
        *inner *= t->dims[d];
    if (axis < 0)
        *inner = t->count;
}

int mq_qdq_decode_initializer(struct graph_ctx *gc, const char *name, struct mq_tensor *t)
{
    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, name);
    if (!init)
        return mq_error_set(gc->m->err, "initializer '%s' vanished", name);
    return mq_tensor_from_proto(init, name, t, gc->m->err);
}

/*
 * Weights and constants: scales from their values (per channel or per
 * tensor), the quantized initializer and its DequantizeLinear.  The
 * quantized values are written at the end, once biases had their say.
 */
int mq_qdq_quantize_initializer(struct graph_ctx *gc, struct mark *mk)
{
    struct model_ctx *m = gc->m;
    const struct mq_quant_options *o = m->o;
    struct mq_tensor t = {0};
    int rc = mq_qdq_decode_initializer(gc, mk->name, &t);
    if (rc)
        return rc;
    for (int64_t e = 0; e < t.count; e++)
        if (!isfinite(((const float *)t.data)[e])) {
            mq_tensor_free(&t);
            return mq_qdq_fail_mark(gc, mk, "it holds NaN or infinite values");
        }
    if (mk->kind == MK_WEIGHT) {
        mk->qtype = o->weight_type;
        /* onnxruntime's integer kernels take one zero point for all channels. */
        if (mk->axis >= 0 && mk->qtype == MQ_DTYPE_UINT8) {
            mk->qtype = MQ_DTYPE_INT8;
            mk->note = strdup("uint8 weights become int8 per channel, as onnxruntime does");
            if (!mk->note) {
                mq_tensor_free(&t);
                return mq_qdq_oom(m);
            }
        }
        mk->symmetric = o->symmetric_weights || (mk->axis >= 0 && mk->qtype == MQ_DTYPE_INT8);
        mk->qr = mq_qrange_for(mk->qtype, mk->symmetric, o->reduce_range);
        if (mk->axis >= t.rank)
            mk->axis = -1;
    } else {
        mk->qtype = o->activation_type;
        mk->symmetric = o->symmetric_activations;
        mk->qr = mq_qrange_for(mk->qtype, mk->symmetric, 0);
        mk->axis = -1;
    }
    int64_t channels, inner;
    mq_qdq_channel_layout(&t, mk->axis, &channels, &inner);
    if (channels > INT32_MAX / 2) {
        mq_tensor_free(&t);
        return mq_qdq_fail_mark(gc, mk, "%lld channels along axis %d", (long long)channels, mk->axis);
    }
    if (mq_qdq_alloc_channels(mk, (int)channels)) {
        mq_tensor_free(&t);
        return mq_qdq_oom(m);
    }
    const float *x = t.data;
    for (int64_t c = 0; c < channels; c++) {
        mk->ch_lo[c] = INFINITY;
        mk->ch_hi[c] = -INFINITY;
    }
    float all_lo = 0.0f, all_hi = 0.0f;
    for (int64_t e = 0; e < t.count; e++) {
        int64_t c = mk->axis >= 0 ? (e / inner) % channels : 0;
        if (x[e] < mk->ch_lo[c])
            mk->ch_lo[c] = x[e];
        if (x[e] > mk->ch_hi[c])
            mk->ch_hi[c] = x[e];
        if (e == 0 || x[e] < all_lo)
            all_lo = x[e];
        if (e == 0 || x[e] > all_hi)
            all_hi = x[e];
    }
    /* An empty channel (a zero dimension elsewhere) has no range: scale 1, as for zeros. */
    for (int64_t c = 0; c < channels; c++)
        if (mk->ch_lo[c] > mk->ch_hi[c])
            mk->ch_lo[c] = mk->ch_hi[c] = 0.0f;
    mq_tensor_free(&t);
    for (int64_t c = 0; c < channels; c++) {
        struct mq_qparams p;
        struct mq_error perr;
        if (mq_qparams_compute(mk->ch_lo[c], mk->ch_hi[c], mk->qr, mk->symmetric, &p, &perr))
            return mq_qdq_fail_mark(gc, mk, "channel %lld: %s", (long long)c, perr.message);
        mk->scales[c] = p.scale;
        mk->zps[c] = p.zero_point;
    }
    mk->has_range = 1;
    mk->lo = all_lo;
    mk->hi = all_hi;

    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, mk->name);
    Onnx__GraphProto *owner = mq_qdq_initializer_owner(&gc->idx, mk->name);
    char *q_name = mq_qdq_fresh(gc, mk->name, "_quantized");
    if (!q_name)
        return mq_qdq_oom(m);
    mk->q_init = mq_graph_add_initializer(gc->g, q_name, mk->qtype, (int)init->n_dims, init->dims);
    free(q_name);
    if (!mk->q_init)
        return mq_qdq_oom(m);
    int64_t ch_dims[1] = {channels};
    rc = mq_qdq_add_param_inits(gc, mk, mk->axis >= 0 ? 1 : 0, ch_dims);
    if (rc)
        return rc;
    char *dq_name = mq_qdq_fresh(gc, mk->name, "_DequantizeLinear");
    mk->dq_name = mq_qdq_fresh(gc, mk->name, "_dequantized");
    if (!dq_name || !mk->dq_name) {
        free(dq_name);
        return mq_qdq_oom(m);
    }
    const char *inputs[3] = {mk->q_init->name, mk->scale_name, mk->zp_name};
    Onnx__NodeProto *dq = mq_graph_new_node("DequantizeLinear", dq_name, inputs, 3, mk->dq_name,
                                    mk->axis);
    free(dq_name);
    if (!dq)
        return mq_qdq_oom(m);
    mk->dq_node = dq;
    rc = mq_qdq_place(gc, -1, dq);
    if (!rc)
        rc = mq_qdq_rename_consumers(gc, mk->name, mk->dq_name);
    if (!rc && owner && mq_qdq_add_candidate(m, owner, mk->name))
        rc = mq_qdq_oom(m);
    if (!rc)
        mk->state = MS_DONE;
    return rc;
}


/*
 * The integers of a weight with its final scales: GPTQ's where it prepared the weight
 * (quant/weight_rounding.h), else each value rounded to nearest.
 */
static int round_weight(const struct mq_quant_options *o, const struct mark *mk,
                        const struct mq_tensor *t, int32_t *q)
{
    struct mq_qrange full = mq_qrange_full(mk->qtype);
    int done = mq_weight_rounding_apply(o->weight_rounding, mk->name, t, mk->axis, mk->scales,
                                        mk->zps, mk->n_ch, full, q);
    if (done < 0)
        return -1;
    if (done)
        return 0;
    int64_t channels, inner;
    mq_qdq_channel_layout(t, mk->axis, &channels, &inner);
    const float *x = t->data;
    for (int64_t e = 0; e < t->count; e++) {
        int64_t c = mk->axis >= 0 ? (e / inner) % channels : 0;
        struct mq_qparams p = {mk->scales[c], mk->zps[c]};
        q[e] = mq_quantize_value(x[e], p, full);
    }
    return 0;
}

/* Quantizes a weight's values with its final scales into its initializer. */
int mq_qdq_write_weight(struct graph_ctx *gc, struct mark *mk)
{
    struct mq_tensor t = {0};
    int rc = mq_qdq_decode_initializer(gc, mk->name, &t);
    if (rc)
        return rc;
    int32_t *q = malloc((size_t)(t.count ? t.count : 1) * sizeof *q);
    if (!q) {
        mq_tensor_free(&t);
        return mq_qdq_oom(gc->m);
    }
    if (round_weight(gc->m->o, mk, &t, q) ||
        mq_qdq_encode_ints(mk->qtype, q, t.count, &mk->q_init->raw_data))
        rc = mq_qdq_oom(gc->m);
    free(q);
    mq_tensor_free(&t);
    return rc;
}

/* ----------------------------------------------------------------- biases */

static int fail_job(struct graph_ctx *gc, struct bias_job *j, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_job(struct graph_ctx *gc, struct bias_job *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(j->reason);
    j->reason = mq_str_vprintf(fmt, ap);
    if (!j->reason) {
        va_end(ap);
        return mq_qdq_oom(gc->m);
    }
    va_end(ap);
    j->state = MS_FAILED;
    return 0;
}

static int weight_channel(const struct bias_job *j, const struct mark *w, int64_t c)
{
    if (w->n_ch <= 1 || j->n_ch <= 1)
        return 0;
    return (int)(j->channel_mod > 0 ? c % j->channel_mod : c);
}

/* Decodes the bias and checks it against the input's and weight's quantization. */
static int prepare_bias(struct graph_ctx *gc, struct bias_job *j)
{
    const struct mark *in = mq_qdq_find_mark(gc, j->input), *w = mq_qdq_find_mark(gc, j->weight);
    if (!in || in->state != MS_DONE)
        return fail_job(gc, j, "its input '%s' stays float", j->input);
    if (!w || w->state != MS_DONE)
        return fail_job(gc, j, "its weight '%s' stays float", j->weight);
    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, j->bias);
    if (!init || !init->has_data_type || init->data_type != MQ_DTYPE_FLOAT)
        return fail_job(gc, j, "it is not a float32 constant");
    struct mq_tensor t = {0};
    int rc = mq_qdq_decode_initializer(gc, j->bias, &t);
    if (rc)
        return rc;
    j->count = t.count;
    j->rank = t.rank;
    memcpy(j->dims, t.dims, sizeof j->dims);
    j->values = malloc((size_t)(t.count ? t.count : 1) * sizeof *j->values);
    if (!j->values) {
        mq_tensor_free(&t);
        return mq_qdq_oom(gc->m);
    }
    int finite = 1;
    for (int64_t e = 0; e < t.count; e++) {
        /* Gemm's beta goes into the values: the rewritten node uses beta = 1. */
        j->values[e] = ((const float *)t.data)[e] * j->beta;
        finite = finite && isfinite(j->values[e]);
    }
    mq_tensor_free(&t);
    if (!finite)
        return fail_job(gc, j, "it holds NaN or infinite values");
    if (w->n_ch > 1 || w->axis >= 0) {
        int ok = j->rank == 1 && (j->expect_len < 0 || j->count == j->expect_len);
        for (int64_t c = 0; ok && c < j->count; c++)
            ok = weight_channel(j, w, c) < w->n_ch;
        if (!ok)
            return fail_job(gc, j, "its %lld values do not match the weight's %d channels",
                            (long long)j->count, w->n_ch);
        j->n_ch = (int)j->count;
    } else {
        j->n_ch = 1;
    }
    j->state = MS_PENDING;
    return 0;
}

static int add_adjusted(struct mark *w, int c)
{
    for (int i = 0; i < w->adjusted.n; i++)
        if (w->adjusted.v[i] == c)
            return 0;
    return mq_qdq_intvec_push(&w->adjusted, c);
}

/*
 * A bias scale of input_scale * weight_scale too small for the bias values
 * would push them past int32: enlarge that weight channel's scale instead
 * (onnxruntime's remedy, with its 1e-4 margin).
 */
static int adjust_weight_for_bias(struct graph_ctx *gc, struct bias_job *j)
{
    const struct mark *in = mq_qdq_find_mark(gc, j->input);
    struct mark *w = mq_qdq_find_mark(gc, j->weight);
    if (w->kind != MK_WEIGHT)
        return 0; /* a weight computed at run time: nothing to enlarge */
    for (int64_t c = 0; c < j->count; c++) {
        int wc = weight_channel(j, w, c);
        double need = mq_bias_min_scale(fabsf(j->values[c]));
        double candidate = (double)in->scales[0] * (double)w->scales[wc];
        if (!(candidate < need) || !(candidate > 0.0))
            continue;
        float scale = (float)((double)w->scales[wc] * (need / candidate));
        w->scales[wc] = scale;
        if (!w->symmetric) {
            double zp = nearbyint((double)w->qr.qmin - (double)fminf(w->ch_lo[wc], 0.0f) / scale);
            w->zps[wc] = (int32_t)fmin(fmax(zp, w->qr.qmin), w->qr.qmax);
        }
        if (add_adjusted(w, wc))
            return mq_qdq_oom(gc->m);
    }
    return 0;
}

static int emit_bias(struct graph_ctx *gc, int k)
{
    struct bias_job *j = &gc->jobs[k];
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *node = gc->g->node[j->node];
    /* The same bias with the same input and weight is quantized once. */
    for (int e = 0; e < k; e++) {
        const struct bias_job *p = &gc->jobs[e];
        if (p->state == MS_DONE && strcmp(p->bias, j->bias) == 0 &&
            strcmp(p->input, j->input) == 0 && strcmp(p->weight, j->weight) == 0 &&
            p->beta == j->beta) {
            if (mq_str_replace(&node->input[2], p->dq_name) || !(j->dq_name = strdup(p->dq_name)))
                return mq_qdq_oom(m);
            j->state = MS_DONE;
            j->n_ch = 0; /* reported once, by the first */
            return 0;
        }
    }
    const struct mark *in = mq_qdq_find_mark(gc, j->input), *w = mq_qdq_find_mark(gc, j->weight);
    int n = j->n_ch;
    j->scales = malloc((size_t)n * sizeof *j->scales);
    int32_t *q = malloc((size_t)(j->count ? j->count : 1) * sizeof *q);
    int rc = 0;
    if (!j->scales || !q) {
        rc = mq_qdq_oom(m);
        goto done;
    }
    for (int c = 0; c < n; c++)
        j->scales[c] = in->scales[0] * w->scales[weight_channel(j, w, c)];
    for (int64_t e = 0; e < j->count; e++) {
        float s = j->scales[n > 1 ? e : 0];
        q[e] = mq_quantize_bias(j->values[e], s);
        if (fabsf(j->values[e] / s) >= 2147483647.0f)
            j->clamped++;
    }
    j->q_name = mq_qdq_fresh(gc, j->bias, "_quantized");
    j->scale_name = mq_qdq_fresh(gc, j->bias, "_scale");
    char *dq_node_name = mq_qdq_fresh(gc, j->bias, "_DequantizeLinear");
    j->dq_name = mq_qdq_fresh(gc, j->bias, "_dequantized");
    if (!j->q_name || !j->scale_name || !dq_node_name || !j->dq_name) {
        free(dq_node_name);
        rc = mq_qdq_oom(m);
        goto done;
    }
    int64_t ch_dims[1] = {n};
    int per_channel = w->n_ch > 1 || w->axis >= 0;
    Onnx__TensorProto *qi = mq_graph_add_initializer(gc->g, j->q_name, MQ_DTYPE_INT32, j->rank, j->dims);
    Onnx__TensorProto *si = qi ? mq_graph_add_initializer(gc->g, j->scale_name, MQ_DTYPE_FLOAT,
                                                 per_channel, ch_dims)
                               : NULL;
    /* The zero point is 0, DequantizeLinear's default: no input for it (see write_params). */
    const char *inputs[2] = {j->q_name, j->scale_name};
    Onnx__NodeProto *dq = si ? mq_graph_new_node("DequantizeLinear", dq_node_name, inputs, 2, j->dq_name,
                                         per_channel ? 0 : -1)
                             : NULL;
    free(dq_node_name);
    if (!dq || mq_qdq_encode_ints(MQ_DTYPE_INT32, q, j->count, &qi->raw_data) ||
        mq_qdq_encode_floats(j->scales, n, &si->raw_data)) {
        if (dq)
            onnx__node_proto__free_unpacked(dq, NULL);
        rc = mq_qdq_oom(m);
        goto done;
    }
    if ((rc = mq_qdq_place(gc, -1, dq)))
        goto done;
    if (mq_str_replace(&node->input[2], j->dq_name)) {
        rc = mq_qdq_oom(m);
        goto done;
    }
    if (j->beta != 1.0f) {
        for (size_t a = 0; a < node->n_attribute; a++)
            if (strcmp(mq_str(node->attribute[a]->name), "beta") == 0)
                node->attribute[a]->f = 1.0f;
    }
    Onnx__GraphProto *owner = mq_qdq_initializer_owner(&gc->idx, j->bias);
    if (owner && mq_qdq_add_candidate(m, owner, j->bias)) {
        rc = mq_qdq_oom(m);
        goto done;
    }
    j->state = MS_DONE;
done:
    free(q);
    return rc;
}

/*
 * Bias correction: rounding the weights shifts each output channel's mean by
 * sum over inputs and taps of (dequantized weight - weight) * mean input.
 * The bias takes that shift back, with the input means the statistics pass
 * measured on the calibration samples (padding included).  The ops whose row
 * says bias_correction (Conv of any group, Gemm); a weight computed at run time, or a node the statistics could not
 * describe, keeps its bias as it is.
 */
/* Whether every Conv weight reading an input channel from `first` on is 0 (t: [M, C/g, k...]). */
static int extra_channels_zero(const struct mq_tensor *t, int64_t outs_per_group,
                               int64_t per_group_in, int64_t taps, int64_t first)
{
    const float *x = t->data;
    int64_t outs = t->dims[0];
    for (int64_t o = 0; o < outs; o++)
        for (int64_t i = 0; i < per_group_in; i++) {
            if ((o / outs_per_group) * per_group_in + i < first)
                continue;
            for (int64_t k = 0; k < taps; k++)
                if (x[(o * per_group_in + i) * taps + k] != 0.0f)
                    return 0;
        }
    return 1;
}

static int correct_bias(struct graph_ctx *gc, struct bias_job *j)
{
    struct model_ctx *m = gc->m;
    const struct mark *w = mq_qdq_find_mark(gc, j->weight);
    const Onnx__NodeProto *node = gc->g->node[j->node];
    const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
    if (!w || w->kind != MK_WEIGHT || w->state != MS_DONE || !w->q_init || !r ||
        !r->bias_correction)
        return 0;
    /* The weight layouts below: Gemm's 2-D B, or Conv's [M, C/group, k...]. */
    int is_gemm = r->weight_axis == MQ_AXIS_GEMM;
    int64_t n_ch = 0, taps = 0;
    const double *means = mq_quant_stats_input_means(m->o->stats, j->input, j->weight, &n_ch,
                                                     &taps);
    if (!means)
        return 0;
    struct mq_tensor t = {0};
    int rc = mq_qdq_decode_initializer(gc, j->weight, &t);
    if (rc)
        return rc;
    int64_t outs, per_group_in, group = 1;
    int trans_b = 0;
    if (is_gemm) {
        trans_b = mq_node_attr_int(node, "transB", 0) != 0;
        outs = t.rank == 2 ? t.dims[trans_b ? 0 : 1] : -1;
        per_group_in = t.rank == 2 ? t.dims[trans_b ? 1 : 0] : -1;
    } else {
        group = mq_node_attr_int(node, "group", 1);
        outs = t.dims[0];
        per_group_in = t.rank >= 3 ? t.dims[1] : -1;
    }
    int64_t kernel = t.count / (outs > 0 && per_group_in > 0 ? outs * per_group_in : 1);
    double *widened = NULL;
    if (!is_gemm && outs > 0 && per_group_in > 0 && group >= 1 && outs % group == 0 &&
        j->count == outs && taps == kernel && n_ch > 0 && n_ch < per_group_in * group &&
        extra_channels_zero(&t, outs / group, per_group_in, kernel, n_ch)) {
        /* Widened with zero channels after the means were measured (quant/depthwise_pad.h):
           those channels' weights are 0 and stay 0, so their means do not matter. */
        if (!(widened = calloc((size_t)(per_group_in * group * taps), sizeof *widened))) {
            mq_tensor_free(&t);
            return mq_qdq_oom(m);
        }
        memcpy(widened, means, (size_t)(n_ch * taps) * sizeof *widened);
        means = widened;
        n_ch = per_group_in * group;
    }
    if (outs <= 0 || per_group_in <= 0 || group < 1 || outs % group || j->count != outs ||
        n_ch != per_group_in * group || taps != kernel) {
        free(widened);
        mq_tensor_free(&t);
        return 0;
    }
    double alpha = is_gemm ? mq_node_attr_float(node, "alpha", 1.0f) : 1.0;
    /* The integers the weight will hold (GPTQ's or the nearest). */
    int32_t *qv = malloc((size_t)t.count * sizeof *qv);
    if (!qv || round_weight(m->o, w, &t, qv)) {
        free(qv);
        free(widened);
        mq_tensor_free(&t);
        return mq_qdq_oom(m);
    }
    const float *x = t.data;
    int64_t outs_per_group = outs / group;
    for (int64_t o = 0; o < outs; o++) {
        int ch = w->n_ch > 1 ? (int)o : 0;
        struct mq_qparams p = {w->scales[ch], w->zps[ch]};
        const double *mean_base = means + (o / outs_per_group) * per_group_in * taps;
        double shift = 0.0;
        for (int64_t i = 0; i < per_group_in; i++)
            for (int64_t k = 0; k < taps; k++) {
                int64_t e = is_gemm ? (trans_b ? o * per_group_in + i : i * outs + o)
                                    : (o * per_group_in + i) * taps + k;
                float back = mq_dequantize_value(qv[e], p);
                shift += ((double)back - (double)x[e]) * mean_base[i * taps + k];
            }
        shift *= alpha;
        j->values[o] = (float)((double)j->values[o] - shift);
        if (fabs(shift) > j->max_shift)
            j->max_shift = fabs(shift);
    }
    j->corrected = 1;
    free(qv);
    free(widened);
    mq_tensor_free(&t);
    return 0;
}

int mq_qdq_quantize_biases(struct graph_ctx *gc)
{
    int rc = 0;
    for (int k = 0; !rc && k < gc->n_jobs; k++)
        rc = prepare_bias(gc, &gc->jobs[k]);
    /* All enlargements first, so every bias sees its weight's final scale. */
    for (int k = 0; !rc && k < gc->n_jobs; k++)
        if (gc->jobs[k].state == MS_PENDING)
            rc = adjust_weight_for_bias(gc, &gc->jobs[k]);
    for (int k = 0; !rc && gc->m->o->bias_correction && gc->m->o->stats && k < gc->n_jobs; k++)
        if (gc->jobs[k].state == MS_PENDING)
            rc = correct_bias(gc, &gc->jobs[k]);
    for (int k = 0; !rc && k < gc->n_jobs; k++)
        if (gc->jobs[k].state == MS_PENDING)
            rc = emit_bias(gc, k);
    return rc;
}


