/*
 * A zero Pad in front of a Conv or an AveragePool folded into the node's own
 * pads, before selection and calibration.
 *
 * onnxruntime folds such a Pad into a float Conv itself, but not in a QDQ
 * model: there the Pad stays, and onnxruntime has no rule that runs it on
 * int8 data, so it costs DequantizeLinear -> float Pad -> QuantizeLinear on
 * the whole tensor (mlsd: three Pads before stride-2 depthwise Convs, about a
 * third of its int8 run time).  A Conv pads with zeros, so the fold is exact.
 * An AveragePool that then averages the zeros in (count_include_pad) is the
 * same as the Pad before it (fastestdet's neck: Pad -> AveragePool, which
 * onnxruntime left as DequantizeLinear -> float Pad -> QuantizeLinear).
 */
#include "quant/pad_fold.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "model/tensor_proto.h"
#include "core/tensor.h"
#include "model/model.h"
#include "quant/graph.h"

#define MAX_PADS 16 /* 2 * rank, rank <= 8 */

/* Whether a float initializer (or absent value) is the scalar 0. */
static int is_zero_value(const Onnx__TensorProto *t)
{
    if (!t || !t->has_data_type || t->data_type != MQ_DTYPE_FLOAT || t->n_external_data)
        return 0;
    for (size_t d = 0; d < t->n_dims; d++)
        if (t->dims[d] != 1)
            return 0;
    float v;
    if (t->has_raw_data && t->raw_data.len == sizeof v)
        memcpy(&v, t->raw_data.data, sizeof v);
    else if (t->n_float_data == 1)
        v = t->float_data[0];
    else
        return 0;
    return v == 0.0f;
}

static Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

/* The Pad's pads when it adds zeros on spatial axes only; the count, or -1. */
static int zero_spatial_pads(const Onnx__GraphProto *g, const Onnx__NodeProto *pad, int opset,
                             int64_t *pads)
{
    char mode[32];
    mq_node_attr_string(pad, "mode", mode, sizeof mode);
    if (mode[0] && strcmp(mode, "constant") != 0)
        return -1;
    int n;
    if (opset < 11) {
        const Onnx__AttributeProto *a = mq_node_attr(pad, "pads");
        if (!a || a->n_ints > MAX_PADS || mq_node_attr_float(pad, "value", 0.0f) != 0.0f)
            return -1;
        n = (int)a->n_ints;
        for (int i = 0; i < n; i++)
            pads[i] = a->ints[i];
    } else {
        n = mq_tensor_proto_int64_values(
            mq_graph_initializer_named(g, mq_graph_input_at(pad, 1), NULL), pads, MAX_PADS);
        const char *value = mq_graph_input_at(pad, 2);
        if (n < 0 || (value && !is_zero_value(mq_graph_initializer_named(g, value, NULL))) ||
            mq_graph_input_at(pad, 3))
            return -1;
    }
    int rank = n / 2;
    if (n % 2 || rank < 3)
        return -1;
    for (int i = 0; i < n; i++)
        if (pads[i] < 0 || ((i % rank) < 2 && pads[i] != 0))
            return -1;
    return n;
}

/*
 * Whether an AveragePool counts the Pad's zeros as its own pads would: it does
 * so with count_include_pad, which it may take on when it pads nothing yet.
 * No ceil_mode (a last window past the pads divides by fewer) and no dilation.
 */
static int average_takes_pads(Onnx__NodeProto *pool, int opset)
{
    if (opset < 7 || mq_node_attr_int(pool, "ceil_mode", 0) != 0)
        return 0;
    const Onnx__AttributeProto *d = mq_node_attr(pool, "dilations");
    for (size_t i = 0; d && i < d->n_ints; i++)
        if (d->ints[i] != 1)
            return 0;
    if (mq_node_attr_int(pool, "count_include_pad", 0) != 0)
        return 1;
    const Onnx__AttributeProto *a = mq_node_attr(pool, "pads");
    for (size_t i = 0; a && i < a->n_ints; i++)
        if (a->ints[i] != 0)
            return 0;
    return 1;
}

/* Adds the Pad's spatial pads to the node's; 0 when the node cannot take them. */
static int add_conv_pads(Onnx__NodeProto *conv, const int64_t *pads, int n, int *oom)
{
    char auto_pad[32];
    mq_node_attr_string(conv, "auto_pad", auto_pad, sizeof auto_pad);
    if (auto_pad[0] && strcmp(auto_pad, "NOTSET") != 0)
        return 0;
    int rank = n / 2, spatial = rank - 2;
    Onnx__AttributeProto *a = attr(conv, "pads");
    if (a && (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS ||
              a->n_ints != (size_t)(2 * spatial)))
        return 0;
    const Onnx__AttributeProto *k = mq_node_attr(conv, "kernel_shape");
    if (strcmp(mq_str(conv->op_type), "AveragePool") == 0 &&
        (!k || k->n_ints != (size_t)spatial))
        return 0;
    if (!a) {
        a = malloc(sizeof *a);
        if (!a) {
            *oom = 1;
            return 0;
        }
        onnx__attribute_proto__init(a);
        a->name = strdup("pads");
        a->has_type = 1;
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        a->ints = calloc((size_t)(2 * spatial), sizeof *a->ints);
        a->n_ints = (size_t)(2 * spatial);
        if (!a->name || !a->ints ||
            mq_graph_append_ptr((void ***)&conv->attribute, &conv->n_attribute, a)) {
            onnx__attribute_proto__free_unpacked(a, NULL);
            *oom = 1;
            return 0;
        }
    }
    for (int i = 0; i < spatial; i++) {
        a->ints[i] += pads[2 + i];
        a->ints[spatial + i] += pads[rank + 2 + i];
    }
    return 1;
}

/* Sets count_include_pad to 1; 0, or -1 (and *oom) when out of memory. */
static int set_count_include_pad(Onnx__NodeProto *pool, int *oom)
{
    Onnx__AttributeProto *a = attr(pool, "count_include_pad");
    if (a) {
        a->has_i = 1;
        a->i = 1;
        return 0;
    }
    if (mq_graph_add_int_attr(pool, "count_include_pad", 1)) {
        *oom = 1;
        return -1;
    }
    return 0;
}

static int has_subgraphs(const Onnx__GraphProto *g)
{
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_attribute; k++) {
            const Onnx__AttributeProto *a = g->node[i]->attribute[k];
            if (a->g || a->n_graphs)
                return 1;
        }
    return 0;
}

int mq_fold_pad_into_conv(Onnx__ModelProto *model, int *n_folded, struct mq_error *err)
{
    *n_folded = 0;
    Onnx__GraphProto *g = model->graph;
    /* A subgraph may read the Pad's output without naming it as an input: leave those alone. */
    if (!g || has_subgraphs(g))
        return 0;
    int opset = mq_model_proto_opset(model, "");
    for (size_t c = 0; c < g->n_node; c++) {
        Onnx__NodeProto *conv = g->node[c];
        const char *x = mq_graph_input_at(conv, 0);
        int is_conv = strcmp(mq_str(conv->op_type), "Conv") == 0;
        int is_average = strcmp(mq_str(conv->op_type), "AveragePool") == 0;
        if (!(is_conv || (is_average && average_takes_pads(conv, opset))) ||
            !mq_node_is_onnx(conv) || !x || mq_graph_count_readers(g, x, NULL) != 1 ||
            mq_graph_is_output(g, x))
            continue;
        size_t p = 0;
        while (p < c && !(g->node[p]->n_output >= 1 && g->node[p]->output[0] &&
                          strcmp(g->node[p]->output[0], x) == 0))
            p++;
        if (p == c || strcmp(mq_str(g->node[p]->op_type), "Pad") != 0 ||
            !mq_node_is_onnx(g->node[p]) || !mq_graph_input_at(g->node[p], 0))
            continue;
        Onnx__NodeProto *pad = g->node[p];
        int64_t pads[MAX_PADS];
        int n = zero_spatial_pads(g, pad, opset, pads), oom = 0;
        if (n < 0 || !add_conv_pads(conv, pads, n, &oom) ||
            (is_average && set_count_include_pad(conv, &oom))) {
            if (oom)
                return mq_error_code(err, MQ_ERR_MEMORY, "out of memory while folding Pad");
            continue;
        }
        char *padded = conv->input[0];
        conv->input[0] = strdup(pad->input[0]);
        if (!conv->input[0]) {
            conv->input[0] = padded;
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory while folding Pad");
        }
        mq_graph_drop_value_infos(g, &padded, 1);
        free(padded);
        /* The Pad goes, and its pads and value constants with it when nothing else reads them. */
        memmove(&g->node[p], &g->node[p + 1], (g->n_node - p - 1) * sizeof *g->node);
        g->n_node--;
        c--;
        for (size_t k = 1; k < pad->n_input; k++) {
            Onnx__TensorProto *t =
                mq_graph_initializer_named(g, mq_graph_input_at(pad, k), NULL);
            if (t && mq_graph_count_readers(g, t->name, NULL) == 0 &&
                !mq_graph_is_output(g, t->name) && !mq_graph_is_input(g, t->name))
                mq_graph_drop_initializer(g, t);
        }
        onnx__node_proto__free_unpacked(pad, NULL);
        (*n_folded)++;
    }
    return 0;
}
