/*
 * Spatial means as GlobalAveragePool (see mean_pool.h).
 *
 * Exporters write a classifier's global pooling as ReduceMean over axes
 * [2, 3] (torchvision's ShuffleNet: x.mean([2, 3]), keepdims 0, then the
 * Gemm).  onnxruntime has no integer ReduceMean: in a QDQ model it stays
 * DequantizeLinear -> float ReduceMean -> QuantizeLinear, a float op inside
 * an int8 island.  GlobalAveragePool averages the same axes and onnxruntime
 * runs it as QLinearGlobalAveragePool; with keepdims 0 a Flatten from axis 1
 * drops the two axes of size 1 again (Flatten moves no values: onnxruntime
 * drops its Q/DQ pair).  The rewrite is exact in float: the same sum over the
 * same elements divided by the same count.
 */
#include "quant/mean_pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "graph/edit.h"
#include "model/tensor_proto.h"
#include "model/model.h"
#include "quant/graph.h"

/* The opset from which ReduceMean takes its axes as an input instead of an attribute. */
#define AXES_INPUT_OPSET 18
/*
 * The smallest rank taken: an image's [N, C, H, W] (or a volume's).  A 3-D
 * mean over axis 2 is a transformer's LayerNorm over [B, T, D] as often as a
 * 1-D pool, and onnxruntime fuses LayerNorm from the ReduceMean it finds.
 */
#define MIN_RANK 4

static int has_subgraphs(const Onnx__GraphProto *g)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (mq_node_has_subgraph(g->node[i]))
            return 1;
    return 0;
}

/* The ReduceMean's axes (attribute before opset 18, constant input from it); the count, or -1
   when they are not known constants or absent (absent: every axis, or none). */
static int mean_axes(const Onnx__GraphProto *g, const Onnx__NodeProto *n, int opset,
                     int64_t *axes)
{
    if (!mq_node_is_op(n, "ReduceMean") || n->n_output != 1 || !n->output[0] ||
        !mq_graph_input_at(n, 0))
        return -1;
    int count;
    if (opset < AXES_INPUT_OPSET) {
        const Onnx__AttributeProto *a = mq_node_attr(n, "axes");
        if (!a || a->n_ints > MQ_MAX_RANK)
            return -1;
        count = (int)a->n_ints;
        for (int i = 0; i < count; i++)
            axes[i] = a->ints[i];
    } else {
        count = mq_tensor_proto_int64_values(
            mq_graph_initializer_named(g, mq_graph_input_at(n, 1), NULL), axes, MQ_MAX_RANK);
    }
    return count > 0 ? count : -1;
}

/* The rank and element type the graph declares for a tensor (value_info, inputs, outputs);
   the rank, or -1.  *dtype gets 0 when not declared. */
static int declared_rank(const Onnx__GraphProto *g, const char *name, int *dtype)
{
    Onnx__ValueInfoProto **lists[3] = {g->value_info, g->input, g->output};
    size_t counts[3] = {g->n_value_info, g->n_input, g->n_output};
    *dtype = 0;
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < counts[l]; i++) {
            const Onnx__ValueInfoProto *v = lists[l][i];
            if (!v->name || strcmp(v->name, name) != 0 || !v->type ||
                v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
                continue;
            const Onnx__TypeProto__Tensor *t = v->type->tensor_type;
            *dtype = t->has_elem_type ? t->elem_type : 0;
            return t->shape ? (int)t->shape->n_dim : -1;
        }
    return -1;
}

/* Whether the axes are exactly 2 .. rank - 1, each once (negative ones counted from the end). */
static int spatial_axes(const int64_t *axes, int count, int rank)
{
    if (rank < MIN_RANK || rank > MQ_MAX_RANK || count != rank - 2)
        return 0;
    int seen[MQ_MAX_RANK] = {0};
    for (int i = 0; i < count; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 2 || a >= rank || seen[a])
            return 0;
        seen[a] = 1;
    }
    return 1;
}

int mq_mean_pool_candidates(const Onnx__ModelProto *model)
{
    const Onnx__GraphProto *g = model->graph;
    if (!g || has_subgraphs(g))
        return 0;
    int opset = mq_model_proto_opset(model, "");
    int64_t axes[MQ_MAX_RANK];
    for (size_t i = 0; i < g->n_node; i++) {
        int count = mean_axes(g, g->node[i], opset, axes), spatial = count >= MIN_RANK - 2;
        for (int k = 0; k < count; k++)
            spatial = spatial && (axes[k] >= 2 || axes[k] < 0);
        if (spatial)
            return 1;
    }
    return 0;
}

/* Whether the node is a mean over the spatial axes of a floating-point tensor. */
static int is_spatial_mean(const Onnx__GraphProto *g, const Onnx__NodeProto *n, int opset,
                           const struct mq_opset_hints *shapes)
{
    int64_t axes[MQ_MAX_RANK], dims[MQ_MAX_RANK];
    int count = mean_axes(g, n, opset, axes), dtype;
    if (count < 0)
        return 0;
    const char *x = mq_graph_input_at(n, 0);
    int rank = declared_rank(g, x, &dtype);
    if (rank < 0 && shapes && shapes->shape_of)
        rank = shapes->shape_of(shapes->user, x, dims);
    /* GlobalAveragePool takes floating-point tensors only */
    if (dtype && dtype != MQ_DTYPE_FLOAT && dtype != MQ_DTYPE_FLOAT16 &&
        dtype != MQ_DTYPE_DOUBLE)
        return 0;
    return spatial_axes(axes, count, rank);
}

/* Inserts a node at index `at` of the graph: 0, or -1 when out of memory. */
static int insert_node(Onnx__GraphProto *g, size_t at, Onnx__NodeProto *n)
{
    if (mq_graph_append_ptr((void ***)&g->node, &g->n_node, n))
        return -1;
    memmove(&g->node[at + 1], &g->node[at], (g->n_node - 1 - at) * sizeof *g->node);
    g->node[at] = n;
    return 0;
}

/* Node i becomes GlobalAveragePool (and Flatten after it when the axes were dropped). */
static int rewrite(Onnx__GraphProto *g, size_t i, struct mq_error *err)
{
    Onnx__NodeProto *mean = g->node[i];
    int keepdims = mq_node_attr_int(mean, "keepdims", 1) != 0;
    const char *base = *mq_str(mean->name) ? mean->name : mean->output[0];
    char *pool_name = mq_graph_fresh_name(g, base, "_as_pool");
    char *pooled = keepdims ? NULL : mq_graph_fresh_name(g, mean->output[0], "_pooled");
    char *flatten_name = keepdims ? NULL : mq_graph_fresh_name(g, base, "_flatten");
    const char *x = mq_graph_input_at(mean, 0);
    Onnx__NodeProto *pool = NULL, *flatten = NULL;
    if (pool_name && (keepdims || (pooled && flatten_name)))
        pool = mq_graph_new_unary_node("GlobalAveragePool", pool_name, x,
                                       keepdims ? mean->output[0] : pooled);
    if (pool && !keepdims) {
        const char *in[1] = {pooled};
        flatten = mq_graph_new_node("Flatten", flatten_name, in, 1, mean->output[0], 1);
    }
    free(pool_name);
    free(pooled);
    free(flatten_name);
    if (!pool || (!keepdims && (!flatten || insert_node(g, i + 1, flatten)))) {
        if (pool)
            onnx__node_proto__free_unpacked(pool, NULL);
        if (flatten)
            onnx__node_proto__free_unpacked(flatten, NULL);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory while rewriting ReduceMean "
                                                 "'%s'", mq_str(mean->name));
    }
    g->node[i] = pool;
    /* the axes input of opset 18, when nothing else reads it */
    Onnx__TensorProto *axes = mq_graph_initializer_named(g, mq_graph_input_at(mean, 1), NULL);
    char *axes_name = axes ? axes->name : NULL;
    size_t ignored;
    if (axes && mq_graph_count_readers(g, axes_name, &ignored) == 0 &&
        !mq_graph_is_output(g, axes_name) && !mq_graph_is_input(g, axes_name))
        mq_graph_drop_initializer(g, axes);
    onnx__node_proto__free_unpacked(mean, NULL);
    return MQ_OK;
}

int mq_means_as_pool(Onnx__ModelProto *model, const struct mq_opset_hints *shapes,
                     int *n_rewritten, struct mq_error *err)
{
    *n_rewritten = 0;
    Onnx__GraphProto *g = model->graph;
    if (!g || has_subgraphs(g))
        return MQ_OK;
    int opset = mq_model_proto_opset(model, "");
    for (size_t i = 0; i < g->n_node; i++) {
        if (!is_spatial_mean(g, g->node[i], opset, shapes))
            continue;
        int rc = rewrite(g, i, err);
        if (rc)
            return rc;
        (*n_rewritten)++;
    }
    return MQ_OK;
}
