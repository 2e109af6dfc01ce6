/*
 * A BatchNormalization between int8 data written as a depthwise 1x1 Conv
 * (see batchnorm_conv.h).
 *
 * A BatchNormalization that follows a Conv folds into it (batchnorm_fold.c).
 * The others sit where no Conv precedes them: pre-activation blocks
 * (DenseNet's BatchNormalization -> Relu -> Conv after each Concat, ResNet v2),
 * heads after a ConvTranspose.  onnxruntime has no integer BatchNormalization,
 * so between int8 tensors it runs DequantizeLinear -> BatchNormalization ->
 * Relu -> QuantizeLinear in float.  The same per-channel map as a depthwise
 * Conv with a 1x1 kernel (one weight and one bias per channel) is a
 * QLinearConv, with the Relu folded into its output: torchvision's
 * densenet121 (62 such nodes) ran 30.6 -> 20.5 ms in onnxruntime, INT8/FP32
 * 0.61 -> 0.41, every Concat a QLinearConcat.  Its one weight per channel is
 * exact in int8 per-channel quantization (the scale carries the value).
 *
 * Only where both sides will be int8 anyway (the producer and every reader an
 * op with a quantizer rule): a Conv alone between float ops would start an
 * island of its own and cost two conversions where the float node cost none.
 */
#include "quant/batchnorm_conv.h"

#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "graph/edit.h"
#include "quant/batchnorm_fold.h"
#include "quant/graph.h"
#include "quant/op_rules.h"

/* Channels beyond this are left alone (a corrupt shape; no real layer has so many). */
#define MAX_CHANNELS ((int64_t)1 << 20)

/* An op the quantizer quantizes by default (it has a rule for it), in the default domain. */
static int has_rule(const Onnx__NodeProto *node)
{
    const struct mq_op_rule *r = mq_node_is_onnx(node) ? mq_op_rule_find(mq_str(node->op_type))
                                                        : NULL;
    return r && r->by_default;
}

/* The structural conditions, before shapes: an inference BatchNormalization between int8 ops. */
static int between_int8_ops(const struct mq_graph_index *idx, int i)
{
    const Onnx__NodeProto *bn = idx->graph->node[i];
    if (!mq_node_is_op(bn, "BatchNormalization") || bn->n_input < 5 || bn->n_output < 1 ||
        !*mq_str(bn->input[0]) || !*mq_str(bn->output[0]))
        return 0;
    for (size_t o = 1; o < bn->n_output; o++)
        if (*mq_str(bn->output[o]))
            return 0; /* running statistics asked for: training mode */
    const struct mq_tensor_info *in = mq_graph_tensor(idx, bn->input[0]);
    const struct mq_tensor_info *out = mq_graph_tensor(idx, bn->output[0]);
    if (!in || in->producer < 0 || !has_rule(idx->graph->node[in->producer]) || !out ||
        out->graph_output || out->n_consumers == 0)
        return 0;
    for (int k = 0; k < out->n_consumers; k++)
        if (out->consumers[k].implicit || !has_rule(idx->graph->node[out->consumers[k].node]))
            return 0;
    return 1;
}

int mq_batchnorm_conv_candidates(const Onnx__ModelProto *model)
{
    const Onnx__GraphProto *g = model ? model->graph : NULL;
    for (size_t i = 0; g && i < g->n_node; i++)
        if (mq_node_is_op(g->node[i], "BatchNormalization"))
            return 1;
    return 0;
}

/* A float32 initializer of `count` values named `name`, filled from doubles. */
static int add_f32(Onnx__GraphProto *g, const char *name, int rank, const int64_t *dims,
                   const double *values, int64_t count)
{
    Onnx__TensorProto *t = mq_graph_add_initializer(g, name, MQ_DTYPE_FLOAT, rank, dims);
    float *data = t ? malloc((size_t)count * sizeof *data) : NULL;
    if (!data)
        return -1;
    for (int64_t k = 0; k < count; k++)
        data[k] = (float)values[k];
    t->raw_data.data = (uint8_t *)data;
    t->raw_data.len = (size_t)count * sizeof *data;
    return 0;
}

/* Parameters only this node reads: dropped once it is gone. */
static int only_reader_of(const struct mq_graph_index *idx, const char *name)
{
    const struct mq_tensor_info *t = name && *name ? mq_graph_tensor(idx, name) : NULL;
    return t && t->initializer >= 0 && !t->graph_input && !t->graph_output &&
           t->n_consumers == 1 && !t->consumers[0].implicit;
}

/* Node i becomes the Conv; its name, input and output stay. */
static int rewrite(Onnx__GraphProto *g, const struct mq_graph_index *idx, size_t i, int rank,
                   int64_t channels, const double *a, const double *s, struct mq_error *err)
{
    Onnx__NodeProto *bn = g->node[i];
    const char *base = *mq_str(bn->name) ? bn->name : bn->output[0];
    char *w = mq_graph_fresh_name(g, base, "_conv_weight");
    char *b = mq_graph_fresh_name(g, base, "_conv_bias");
    char *drop[4] = {0};
    int n_drop = 0;
    for (size_t k = 1; k < 5; k++)
        if (only_reader_of(idx, bn->input[k]))
            drop[n_drop++] = strdup(bn->input[k]);
    int64_t dims[4] = {channels, 1, 1, 1};
    const char *inputs[3] = {bn->input[0], w, b};
    int ok = w && b && !add_f32(g, w, rank, dims, a, channels) &&
             !add_f32(g, b, 1, dims, s, channels);
    Onnx__NodeProto *conv = ok ? mq_graph_new_node("Conv", mq_str(bn->name), inputs, 3,
                                                   bn->output[0], -1)
                               : NULL;
    ok = conv && !mq_graph_add_int_attr(conv, "group", channels);
    free(w);
    free(b);
    if (!ok) {
        if (conv)
            onnx__node_proto__free_unpacked(conv, NULL);
        for (int k = 0; k < n_drop; k++)
            free(drop[k]);
        return mq_error_code(err, MQ_ERR_MEMORY,
                             "out of memory writing BatchNormalization '%s' as a Conv",
                             mq_str(bn->name));
    }
    g->node[i] = conv;
    onnx__node_proto__free_unpacked(bn, NULL);
    for (int k = 0; k < n_drop; k++) {
        /* a name read twice by this node (scale and B the same tensor) is dropped once */
        if (mq_graph_is_initializer(g, drop[k]))
            mq_graph_drop_initializer_named(g, drop[k]);
        free(drop[k]);
    }
    return MQ_OK;
}

int mq_batchnorms_as_conv(Onnx__ModelProto *model, const struct mq_opset_hints *shapes, int *n,
                          struct mq_error *err)
{
    *n = 0;
    Onnx__GraphProto *g = model ? model->graph : NULL;
    /* IR 3 would list the new initializers among the inputs too: such files stay as they are. */
    if (!g || !shapes || !shapes->shape_of || (model->has_ir_version && model->ir_version < 4))
        return MQ_OK;
    /* the index is made again after each rewrite (drops move initializers), only then */
    struct mq_graph_index idx;
    int have_idx = 0, rc = MQ_OK;
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++) {
        if (!mq_node_is_op(g->node[i], "BatchNormalization"))
            continue;
        int64_t dims[MQ_MAX_RANK];
        int rank = shapes->shape_of(shapes->user, g->node[i]->input[0], dims);
        if ((rank != 3 && rank != 4) || dims[1] <= 0 || dims[1] > MAX_CHANNELS)
            continue;
        if (!have_idx && (rc = mq_graph_index_build(g, NULL, &idx, err)))
            break;
        have_idx = 1;
        double *a = NULL, *s = NULL;
        int ok = between_int8_ops(&idx, (int)i);
        if (ok && (!(a = malloc((size_t)dims[1] * sizeof *a)) ||
                   !(s = malloc((size_t)dims[1] * sizeof *s))))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        ok = ok && !rc && mq_batchnorm_affine(&idx, g->node[i], dims[1], a, s);
        if (ok)
            rc = rewrite(g, &idx, i, rank, dims[1], a, s, err);
        free(a);
        free(s);
        if (ok) {
            mq_graph_index_free(&idx);
            have_idx = 0;
        }
        *n += ok && !rc;
    }
    if (have_idx)
        mq_graph_index_free(&idx);
    return rc;
}
