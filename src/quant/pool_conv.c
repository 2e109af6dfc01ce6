/*
 * Quantized AveragePool written as the depthwise Conv that averages the same
 * (see pool_conv.h).
 *
 * onnxruntime 1.30 fuses DequantizeLinear -> AveragePool -> QuantizeLinear
 * into QLinearAveragePool, whose CPU kernel dequantizes the whole input,
 * averages one float at a time and requantizes each output with a division:
 * fastestdet's 3x3 stride-2 pool on 48 x 44 x 44 takes 0.26 ms there, against
 * 0.015 ms for the float AveragePool of the FP32 model.  The same average as
 * a depthwise Conv with weights 1/k (an int8 weight of ones, scale 1/k) runs
 * as QLinearConv in MLAS's vectorised int8 depthwise kernel: 0.03 ms.  The
 * values match up to the rounding of the last step: the Conv sums integers
 * exactly and multiplies once by x_scale / (k * y_scale).
 *
 * The rewrite runs after the QDQ rewrite, on pools that the plan quantized
 * (a DequantizeLinear before, a QuantizeLinear after), so a pool left float
 * stays the float op onnxruntime runs fast.  The Conv keeps the pool's name
 * (its report entry, --exclude-nodes on a later run); `dequantize` gives back
 * a float depthwise Conv, which computes the same averages.
 */
#include "quant/pool_conv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "graph/edit.h"
#include "quant/graph.h"
#include "quant/op_rules.h"
#include "quant/shape_probe.h"
#include "util/strutil.h"

/* A weight past this many values is no pool anyone wrote (and would not pay). */
#define MAX_WEIGHT_VALUES ((int64_t)1 << 26)

/* Whether the DequantizeLinear reads 8-bit data (its zero point's type): onnxruntime's
   QLinearConv takes uint8 and int8 only. */
static int dequantizes_8_bit(const Onnx__GraphProto *g, const Onnx__NodeProto *dq)
{
    const char *zp = dq->n_input > 2 ? dq->input[2] : NULL;
    for (size_t i = 0; zp && *zp && i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (t->name && strcmp(t->name, zp) == 0)
            return t->has_data_type &&
                   (t->data_type == MQ_DTYPE_UINT8 || t->data_type == MQ_DTYPE_INT8);
    }
    return 0;
}

static const Onnx__NodeProto *producer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if (g->node[i]->output[k] && strcmp(g->node[i]->output[k], name) == 0)
                return g->node[i];
    return NULL;
}

/*
 * The kernel elements of a pool whose averages a Conv computes (*spatial gets
 * the kernel's rank); 0 when a Conv cannot: ceil_mode (a last window past the
 * input divides by fewer), dilation, SAME padding, pads left out of the count.
 */
static int64_t conv_kernel_elements(const Onnx__NodeProto *pool, int *spatial)
{
    const Onnx__AttributeProto *k = mq_node_attr(pool, "kernel_shape");
    if (!k || k->n_ints < 1 || k->n_ints > MQ_MAX_RANK - 2)
        return 0;
    char auto_pad[32];
    mq_node_attr_string(pool, "auto_pad", auto_pad, sizeof auto_pad);
    if (auto_pad[0] && strcmp(auto_pad, "NOTSET") != 0 && strcmp(auto_pad, "VALID") != 0)
        return 0;
    if (mq_node_attr_int(pool, "ceil_mode", 0) != 0)
        return 0;
    const Onnx__AttributeProto *d = mq_node_attr(pool, "dilations");
    for (size_t i = 0; d && i < d->n_ints; i++)
        if (d->ints[i] != 1)
            return 0;
    const Onnx__AttributeProto *p = mq_node_attr(pool, "pads");
    if (mq_node_attr_int(pool, "count_include_pad", 0) == 0)
        for (size_t i = 0; p && i < p->n_ints; i++)
            if (p->ints[i] != 0)
                return 0;
    int64_t elements = 1;
    for (size_t i = 0; i < k->n_ints; i++) {
        if (k->ints[i] <= 0 || k->ints[i] > 4096)
            return 0;
        elements *= k->ints[i];
    }
    *spatial = (int)k->n_ints;
    return elements;
}

/* Whether node i is a pool the rule table sends to a Conv, between a DequantizeLinear and
   a QuantizeLinear that only it feeds. */
static int is_candidate(const Onnx__GraphProto *g, size_t i)
{
    const Onnx__NodeProto *n = g->node[i];
    const struct mq_op_rule *r = mq_node_is_onnx(n) ? mq_op_rule_find(mq_str(n->op_type)) : NULL;
    if (!r || !r->int8_as_depthwise_conv || n->n_input != 1 || n->n_output != 1 || !n->input[0] ||
        !n->output[0] || mq_graph_is_output(g, n->output[0]))
        return 0;
    const Onnx__NodeProto *dq = producer(g, n->input[0]);
    if (!dq || !mq_node_is_op(dq, "DequantizeLinear") || dq->n_input < 1 || !dq->input[0] ||
        mq_graph_is_initializer(g, dq->input[0]) || !dequantizes_8_bit(g, dq))
        return 0;
    size_t reader = 0;
    if (mq_graph_count_readers(g, n->output[0], &reader) != 1 ||
        !mq_node_is_op(g->node[reader], "QuantizeLinear"))
        return 0;
    int spatial;
    return conv_kernel_elements(n, &spatial) > 0;
}

int mq_pool_conv_candidates(const Onnx__ModelProto *model)
{
    const Onnx__GraphProto *g = model->graph;
    for (size_t i = 0; g && i < g->n_node; i++)
        if (is_candidate(g, i))
            return 1;
    return 0;
}

/* A scalar initializer of `bytes` raw bytes; 0, or -1 when out of memory. */
static int add_scalar(Onnx__GraphProto *g, const char *name, int dtype, const void *value,
                      size_t bytes)
{
    Onnx__TensorProto *t = mq_graph_add_initializer(g, name, dtype, 0, NULL);
    if (!t || !(t->raw_data.data = malloc(bytes)))
        return -1;
    memcpy(t->raw_data.data, value, bytes);
    t->raw_data.len = bytes;
    return 0;
}

/* Moves attribute `name` (when there is one) from one node to another; 0, or -1 on OOM. */
static int move_attr(Onnx__NodeProto *from, Onnx__NodeProto *to, const char *name)
{
    for (size_t i = 0; i < from->n_attribute; i++) {
        Onnx__AttributeProto *a = from->attribute[i];
        if (!a->name || strcmp(a->name, name) != 0)
            continue;
        if (mq_graph_append_ptr((void ***)&to->attribute, &to->n_attribute, a))
            return -1;
        memmove(&from->attribute[i], &from->attribute[i + 1],
                (from->n_attribute - i - 1) * sizeof *from->attribute);
        from->n_attribute--;
        return 0;
    }
    return 0;
}

/* Node i (a candidate) becomes weight DequantizeLinear + Conv over `channels` channels. */
static int rewrite(Onnx__GraphProto *g, size_t i, int64_t channels, struct mq_error *err)
{
    Onnx__NodeProto *pool = g->node[i];
    int spatial = 0;
    int64_t elements = conv_kernel_elements(pool, &spatial);
    const Onnx__AttributeProto *k = mq_node_attr(pool, "kernel_shape");
    if (elements <= 0 || channels <= 0 || channels > MAX_WEIGHT_VALUES / elements)
        return MQ_OK; /* left as it is */
    const char *base = *mq_str(pool->name) ? pool->name : pool->output[0];
    char *wq = mq_graph_fresh_name(g, base, "_average_weight_quantized");
    char *ws = mq_graph_fresh_name(g, base, "_average_weight_scale");
    char *wz = mq_graph_fresh_name(g, base, "_average_weight_zero_point");
    char *w = mq_graph_fresh_name(g, base, "_average_weight");
    char *dq_name = mq_graph_fresh_name(g, base, "_average_weight_DequantizeLinear");
    int64_t dims[MQ_MAX_RANK] = {channels, 1};
    for (int d = 0; d < spatial; d++)
        dims[2 + d] = k->ints[d];
    float scale = 1.0f / (float)elements;
    int8_t zero = 0;
    int ok = wq && ws && wz && w && dq_name;
    Onnx__TensorProto *t = ok ? mq_graph_add_initializer(g, wq, MQ_DTYPE_INT8, 2 + spatial, dims)
                              : NULL;
    size_t count = (size_t)(channels * elements);
    ok = t && (t->raw_data.data = malloc(count)) != NULL;
    if (ok) {
        memset(t->raw_data.data, 1, count);
        t->raw_data.len = count;
    }
    ok = ok && !add_scalar(g, ws, MQ_DTYPE_FLOAT, &scale, sizeof scale) &&
         !add_scalar(g, wz, MQ_DTYPE_INT8, &zero, sizeof zero);
    const char *dq_inputs[3] = {wq, ws, wz};
    const char *conv_inputs[2] = {pool->input[0], w};
    Onnx__NodeProto *dq = ok ? mq_graph_new_node("DequantizeLinear", dq_name, dq_inputs, 3, w, -1)
                             : NULL;
    Onnx__NodeProto *conv =
        dq ? mq_graph_new_node("Conv", mq_str(pool->name), conv_inputs, 2, pool->output[0], -1)
           : NULL;
    ok = conv && !move_attr(pool, conv, "kernel_shape") && !move_attr(pool, conv, "strides") &&
         !move_attr(pool, conv, "pads") && !move_attr(pool, conv, "auto_pad") &&
         !mq_graph_add_int_attr(conv, "group", channels);
    Onnx__NodeProto **nodes = ok ? realloc(g->node, (g->n_node + 1) * sizeof *nodes) : NULL;
    free(wq);
    free(ws);
    free(wz);
    free(w);
    free(dq_name);
    if (!nodes) {
        if (dq)
            onnx__node_proto__free_unpacked(dq, NULL);
        if (conv)
            onnx__node_proto__free_unpacked(conv, NULL);
        return mq_error_code(err, MQ_ERR_MEMORY,
                             "out of memory while writing AveragePool '%s' as a Conv",
                             mq_str(pool->name));
    }
    g->node = nodes;
    memmove(&g->node[i + 2], &g->node[i + 1], (g->n_node - i - 1) * sizeof *g->node);
    g->node[i] = dq;
    g->node[i + 1] = conv;
    g->n_node++;
    onnx__node_proto__free_unpacked(pool, NULL);
    return MQ_OK;
}

int mq_pools_as_depthwise_conv(Onnx__ModelProto *model, const struct mq_opset_hints *shapes,
                               int *n_rewritten, struct mq_error *err)
{
    *n_rewritten = 0;
    Onnx__GraphProto *g = model->graph;
    /* IR 3 would list the new initializers among the inputs too: such files stay as they are. */
    if (!g || !shapes || !shapes->shape_of || (model->has_ir_version && model->ir_version < 4))
        return MQ_OK;
    for (size_t i = 0; i < g->n_node; i++) {
        if (!is_candidate(g, i))
            continue;
        int64_t dims[MQ_MAX_RANK];
        int spatial = 0;
        conv_kernel_elements(g->node[i], &spatial);
        int rank = shapes->shape_of(shapes->user, g->node[i]->input[0], dims);
        if (rank != spatial + 2)
            continue;
        size_t before = g->n_node;
        int rc = rewrite(g, i, dims[1], err);
        if (rc)
            return rc;
        if (g->n_node > before) {
            (*n_rewritten)++;
            i++; /* past the weight's DequantizeLinear */
        }
    }
    return MQ_OK;
}

int mq_pools_as_conv_learning_shapes(struct mq_model *model, const char *calib_dir,
                                     const struct mq_calib_open_options *open, int *n_rewritten,
                                     struct mq_error *err)
{
    *n_rewritten = 0;
    if (!mq_pool_conv_candidates(model->proto))
        return MQ_OK;
    struct mq_shape_probe *probe = NULL;
    int rc = mq_shape_probe_run(model, calib_dir, open, &probe, err);
    struct mq_opset_hints shapes = mq_shape_probe_hints(probe);
    if (rc == MQ_OK)
        rc = mq_pools_as_depthwise_conv(model->proto, &shapes, n_rewritten, err);
    mq_shape_probe_free(probe);
    return rc;
}
