/* The fusions static QDQ leaves alone, and shape arithmetic: see fusion_guard.h. */
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "core/tensor.h"
#include "quant/fusion_guard.h"
#include "quant/graph.h"

enum { MAX_GELU_BACK = 5 };

struct guard {
    const struct mq_graph_index *idx;
    Onnx__GraphProto *g;
    const char **why; /* per node: the pattern it belongs to, or NULL */
    char *integer;    /* per node: every output holds integers (filled in node order) */
};

static int is_op(const Onnx__NodeProto *n, const char *op)
{
    return mq_node_is_onnx(n) && strcmp(n->op_type, op) == 0;
}

static int is_constant(const struct guard *gd, const char *name)
{
    const struct mq_tensor_info *t = mq_graph_tensor(gd->idx, name);
    return mq_graph_find_initializer(gd->idx, name) != NULL || (t && t->producer >= 0 &&
           is_op(gd->g->node[t->producer], "Constant"));
}

static int producer_of(const struct guard *gd, const char *name)
{
    const struct mq_tensor_info *t = name ? mq_graph_tensor(gd->idx, name) : NULL;
    return t ? t->producer : -1;
}

/* The only consumer of a node's first output when it has exactly one and it is `op`, else -1. */
static int sole_consumer(const struct guard *gd, int node, const char *op)
{
    const Onnx__NodeProto *n = gd->g->node[node];
    const struct mq_tensor_info *t = n->n_output ? mq_graph_tensor(gd->idx, n->output[0]) : NULL;
    if (!t || t->n_consumers != 1 || t->graph_output)
        return -1;
    int c = t->consumers[0].node;
    return is_op(gd->g->node[c], op) ? c : -1;
}

/* Walks back from a Gelu's Erf/Tanh through the arithmetic around it (and a bias Add). */
static void mark_back(struct guard *gd, int node, int depth, const char *why)
{
    static const char *const ops[] = {"Div", "Mul", "Add", "Pow", "Sub"};
    const Onnx__NodeProto *n = gd->g->node[node];
    gd->why[node] = why;
    if (depth == 0)
        return;
    for (size_t k = 0; k < n->n_input; k++) {
        int p = producer_of(gd, mq_graph_input_at(n, k));
        if (p < 0 || gd->why[p])
            continue;
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
            if (is_op(gd->g->node[p], ops[o])) {
                mark_back(gd, p, depth - 1, why);
                break;
            }
    }
}

/* Erf -> Add(1) -> Mul -> Mul (or Tanh's equivalent): the consumers up to the Gelu's end. */
static void mark_forward(struct guard *gd, int node, int depth, const char *why)
{
    const Onnx__NodeProto *n = gd->g->node[node];
    gd->why[node] = why;
    if (depth == 0 || !n->n_output)
        return;
    const struct mq_tensor_info *t = mq_graph_tensor(gd->idx, n->output[0]);
    for (int c = 0; t && c < t->n_consumers; c++) {
        int k = t->consumers[c].node;
        if (!gd->why[k] && (is_op(gd->g->node[k], "Add") || is_op(gd->g->node[k], "Mul")))
            mark_forward(gd, k, depth - 1, why);
    }
}

static void find_gelu(struct guard *gd, int node)
{
    const char *why = "inside a Gelu onnxruntime fuses (Gelu, BiasGelu, FastGelu): Q/DQ there "
                      "would stop the fusion";
    const Onnx__NodeProto *n = gd->g->node[node];
    int erf = is_op(n, "Erf");
    if (!erf && !is_op(n, "Tanh"))
        return;
    mark_back(gd, node, erf ? 2 : MAX_GELU_BACK, why);
    mark_forward(gd, node, 3, why);
    /* x * 0.5 computed before the last Mul: a Mul by a constant read only by the pattern */
    for (size_t i = 0; i < gd->g->n_node; i++) {
        const Onnx__NodeProto *m = gd->g->node[i];
        if (gd->why[i] || !is_op(m, "Mul") || m->n_input != 2 ||
            !(is_constant(gd, m->input[0]) || is_constant(gd, m->input[1])))
            continue;
        const struct mq_tensor_info *t = mq_graph_tensor(gd->idx, m->output[0]);
        int inside = t && t->n_consumers == 1 && gd->why[t->consumers[0].node] == why;
        const char *x = is_constant(gd, m->input[0]) ? m->input[1] : m->input[0];
        int p = producer_of(gd, x);
        if (inside && p >= 0 && gd->why[p] == why)
            gd->why[i] = why;
    }
}

/* X -> ReduceMean -> Sub -> Pow|Mul -> ReduceMean -> Add -> Sqrt -> Div -> Mul -> Add. */
static void find_layernorm(struct guard *gd, int node)
{
    const char *why = "inside a LayerNorm onnxruntime fuses: Q/DQ there would stop the fusion";
    if (!is_op(gd->g->node[node], "ReduceMean"))
        return;
    int chain[10] = {node}, n = 1;
    const struct mq_tensor_info *t = mq_graph_tensor(gd->idx, gd->g->node[node]->output[0]);
    int sub = -1;
    for (int c = 0; t && c < t->n_consumers; c++)
        if (is_op(gd->g->node[t->consumers[c].node], "Sub"))
            sub = t->consumers[c].node;
    if (sub < 0)
        return;
    chain[n++] = sub;
    const struct mq_tensor_info *d = mq_graph_tensor(gd->idx, gd->g->node[sub]->output[0]);
    int sq = -1, div = -1;
    for (int c = 0; d && c < d->n_consumers; c++) {
        int k = d->consumers[c].node;
        if (is_op(gd->g->node[k], "Pow") || is_op(gd->g->node[k], "Mul"))
            sq = k;
        else if (is_op(gd->g->node[k], "Div"))
            div = k;
    }
    if (sq < 0 || div < 0)
        return;
    chain[n++] = sq;
    int rm = sole_consumer(gd, sq, "ReduceMean");
    int add = rm >= 0 ? sole_consumer(gd, rm, "Add") : -1;
    int sqrt_ = add >= 0 ? sole_consumer(gd, add, "Sqrt") : -1;
    if (sqrt_ < 0 || sole_consumer(gd, sqrt_, "Div") != div)
        return;
    chain[n++] = rm;
    chain[n++] = add;
    chain[n++] = sqrt_;
    chain[n++] = div;
    int mul = sole_consumer(gd, div, "Mul");
    if (mul >= 0) {
        chain[n++] = mul;
        int beta = sole_consumer(gd, mul, "Add");
        if (beta >= 0)
            chain[n++] = beta;
    }
    for (int i = 0; i < n; i++)
        gd->why[chain[i]] = why;
}

/* An Add of two activations whose result a LayerNormalization reads. */
static void find_skip_layernorm(struct guard *gd, int node)
{
    const Onnx__NodeProto *n = gd->g->node[node];
    if (!is_op(n, "Add") || n->n_input != 2 || is_constant(gd, n->input[0]) ||
        is_constant(gd, n->input[1]))
        return;
    const struct mq_tensor_info *t = mq_graph_tensor(gd->idx, n->output[0]);
    for (int c = 0; t && c < t->n_consumers; c++)
        if (is_op(gd->g->node[t->consumers[c].node], "LayerNormalization"))
            gd->why[node] = "feeds a LayerNormalization: onnxruntime fuses the two into "
                            "SkipLayerNormalization, which Q/DQ between them would stop";
}

/* Every input and output has a known element type and none of them is a float one. */
static int integers_only(const struct guard *gd, const Onnx__NodeProto *n)
{
    int known = 0;
    for (size_t k = 0; k < n->n_input + n->n_output; k++) {
        const char *name = k < n->n_input ? n->input[k] : n->output[k - n->n_input];
        if (!name || !name[0])
            continue;
        int type = mq_graph_elem_type(gd->idx, name);
        if (type == 0 || mq_dtype_is_float(type))
            return 0;
        known++;
    }
    return known > 0;
}

/* A name holds integers or bools: its declared type, else what its producer was found to write. */
static int integer_name(const struct guard *gd, const char *name)
{
    int type = mq_graph_elem_type(gd->idx, name);
    if (type)
        return !mq_dtype_is_float(type);
    int p = producer_of(gd, name);
    return p >= 0 && gd->integer[p];
}

static int constant_of_shape_type(const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *v = mq_node_attr(n, "value");
    return v && v->t ? v->t->data_type : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
}

static int cast_type(const Onnx__NodeProto *n)
{
    return (int)mq_node_attr_int(n, "to", 0);
}

/* The ops whose output type comes from an attribute, not from their inputs. */
static const struct {
    const char *op_type;
    int (*output_type)(const Onnx__NodeProto *n);
} typed_by_attribute[] = {
    {"ConstantOfShape", constant_of_shape_type},
    {"Cast", cast_type},
};

/* Its row of typed_by_attribute, or -1. */
static int attribute_typed(const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < sizeof typed_by_attribute / sizeof typed_by_attribute[0]; i++)
        if (is_op(n, typed_by_attribute[i].op_type))
            return (int)i;
    return -1;
}

/*
 * Whether every output of node i holds integers or bools (Shape, an int64
 * Concat, Equal): shape arithmetic.  Outputs the model leaves untyped are
 * typed here the way ONNX types them: by an attribute (typed_by_attribute),
 * else after the inputs (an int64 Where or Expand).  Nodes are visited in
 * order, so a producer's answer is known.
 */
static int integer_outputs(const struct guard *gd, int i)
{
    const Onnx__NodeProto *n = gd->g->node[i];
    size_t known = 0;
    for (size_t k = 0; k < n->n_output; k++) {
        if (!n->output[k] || !n->output[k][0])
            continue;
        int type = mq_graph_elem_type(gd->idx, n->output[k]);
        int row = attribute_typed(n);
        if (!type && row >= 0)
            type = typed_by_attribute[row].output_type(n);
        if (type && mq_dtype_is_float(type))
            return 0;
        if (!type) {
            size_t inputs = 0;
            for (size_t j = 0; j < n->n_input; j++) {
                if (!n->input[j] || !n->input[j][0])
                    continue;
                if (!integer_name(gd, n->input[j]))
                    return 0;
                inputs++;
            }
            if (!inputs || row >= 0)
                return 0;
        }
        known++;
    }
    return known > 0;
}

int mq_select_keep_fusions(Onnx__ModelProto *model, struct mq_selection *sel,
                           struct mq_error *err)
{
    Onnx__GraphProto *g = model->graph;
    struct mq_graph_index idx;
    memset(&idx, 0, sizeof idx);
    int rc = mq_graph_index_build(g, NULL, &idx, err);
    if (rc)
        return rc;
    struct guard gd = {&idx, g, calloc(g->n_node + 1, sizeof(const char *)),
                       calloc(g->n_node + 1, 1)};
    if (!gd.why || !gd.integer) {
        free(gd.why);
        free(gd.integer);
        mq_graph_index_free(&idx);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < g->n_node; i++) {
        find_gelu(&gd, (int)i);
        find_layernorm(&gd, (int)i);
        find_skip_layernorm(&gd, (int)i);
    }
    for (size_t i = 0; i < g->n_node; i++) {
        struct mq_node_choice *c = mq_selection_find(sel, g->node[i]);
        gd.integer[i] = (char)integer_outputs(&gd, (int)i);
        if (c)
            c->integer_only = gd.integer[i];
        if (!c || c->status != MQ_NODE_SELECTED)
            continue;
        /* MatMul, Gemm, Conv keep their integer kernels whatever pattern they border */
        if (gd.why[i] && mq_op_role(c->op_type) != MQ_ROLE_WEIGHTED)
            mq_choice_set(c, MQ_NODE_SKIPPED, "%s", gd.why[i]);
        else if (integers_only(&gd, g->node[i]))
            mq_choice_set(c, MQ_NODE_SKIPPED, "integer shape arithmetic is not quantized");
    }
    free(gd.why);
    free(gd.integer);
    mq_graph_index_free(&idx);
    return MQ_OK;
}
