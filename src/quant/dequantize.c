/*
 * A QDQ model back to float (see dequantize.h): the checks that the model is
 * one, and the driver that runs the steps graph by graph (weights folded,
 * activation pairs removed with their folded activations put back, the new
 * node list assembled, subgraphs after the graph holding them) and cleans up
 * after them; plus the small helpers the steps share.
 */
#include "quant/dequantize.h"

#include <stdlib.h>
#include <string.h>

#include "quant/channel_pad.h"
#include "quant/dequantize_state.h"
#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"

/* ------------------------------------------------------ shared helpers */

int mq_dequantize_push(void ***array, int *n, int *cap, void *item)
{
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 8;
        void **v = realloc(*array, (size_t)c * sizeof *v);
        if (!v)
            return -1;
        *array = v;
        *cap = c;
    }
    (*array)[(*n)++] = item;
    return 0;
}

int mq_dequantize_add_candidate(struct model_ctx *m, const char *name)
{
    if (!name)
        return 0;
    char *copy = strdup(name);
    if (!copy ||
        mq_dequantize_push((void ***)&m->candidates, &m->n_candidates, &m->cap_candidates, copy)) {
        free(copy);
        return -1;
    }
    return 0;
}

Onnx__TensorProto *mq_dequantize_find_initializer(const struct graph_ctx *gc, const char *name)
{
    for (; gc; gc = gc->parent)
        for (size_t i = 0; i < gc->g->n_initializer; i++)
            if (strcmp(mq_str(gc->g->initializer[i]->name), name) == 0)
                return gc->g->initializer[i];
    return NULL;
}

int mq_dequantize_place_after(struct graph_ctx *gc, int i, Onnx__NodeProto *node)
{
    Onnx__NodeProto **v = realloc(gc->after[i], (size_t)(gc->n_after[i] + 1) * sizeof *v);
    if (!v)
        return -1;
    v[gc->n_after[i]++] = node;
    gc->after[i] = v;
    return 0;
}

/* -------------------------------------------------------------- graphs */

static void graph_ctx_free(struct graph_ctx *gc)
{
    mq_strmap_free(gc->producer);
    mq_strmap_free(gc->outputs);
    mq_strmap_free(gc->inputs);
    mq_strmap_free(gc->folded);
    for (int i = 0; i < gc->n_folded; i++)
        free(gc->folded_names[i]);
    free(gc->folded_names);
    if (gc->after) {
        for (int i = 0; i < gc->n_nodes; i++) {
            for (int k = 0; k < gc->n_after[i]; k++)
                onnx__node_proto__free_unpacked(gc->after[i][k], NULL);
            free(gc->after[i]);
        }
    }
    free(gc->after);
    free(gc->n_after);
    free(gc->removed);
}

static int graph_ctx_init(struct graph_ctx *gc, struct model_ctx *m, Onnx__GraphProto *g,
                          const struct graph_ctx *parent)
{
    memset(gc, 0, sizeof *gc);
    gc->m = m;
    gc->g = g;
    gc->parent = parent;
    gc->n_nodes = (int)g->n_node;
    size_t n = g->n_node ? g->n_node : 1;
    gc->producer = mq_strmap_new();
    gc->outputs = mq_strmap_new();
    gc->inputs = mq_strmap_new();
    gc->folded = mq_strmap_new();
    gc->removed = calloc(n, sizeof *gc->removed);
    gc->after = calloc(n, sizeof *gc->after);
    gc->n_after = calloc(n, sizeof *gc->n_after);
    if (!gc->producer || !gc->outputs || !gc->inputs || !gc->folded || !gc->removed ||
        !gc->after || !gc->n_after)
        return -1;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t o = 0; o < g->node[i]->n_output; o++)
            if (g->node[i]->output[o] && *g->node[i]->output[o] &&
                mq_strmap_put(gc->producer, g->node[i]->output[o], (int)i))
                return -1;
    for (size_t o = 0; o < g->n_output; o++)
        if (mq_strmap_put(gc->outputs, mq_str(g->output[o]->name), (int)o))
            return -1;
    for (size_t k = 0; k < g->n_input; k++)
        if (mq_strmap_put(gc->inputs, mq_str(g->input[k]->name), (int)k))
            return -1;
    return 0;
}

/* The new node list: survivors in order, each followed by what was placed after it. */
static int assemble(struct graph_ctx *gc)
{
    Onnx__GraphProto *g = gc->g;
    size_t total = 0;
    for (size_t i = 0; i < g->n_node; i++)
        total += (size_t)(!gc->removed[i]) + (size_t)gc->n_after[i];
    Onnx__NodeProto **nodes = malloc((total ? total : 1) * sizeof *nodes);
    if (!nodes)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        if (gc->removed[i])
            onnx__node_proto__free_unpacked(g->node[i], NULL);
        else
            nodes[k++] = g->node[i];
        for (int a = 0; a < gc->n_after[i]; a++)
            nodes[k++] = gc->after[i][a];
        gc->n_after[i] = 0;
    }
    free(g->node);
    g->node = nodes;
    g->n_node = k;
    return 0;
}

static int process_graph(struct model_ctx *m, Onnx__GraphProto *g, const struct graph_ctx *parent,
                         int depth);

static int process_subgraphs(struct model_ctx *m, Onnx__GraphProto *g,
                             const struct graph_ctx *gc, int depth)
{
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *node = g->node[i];
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            int rc = attr->g ? process_graph(m, attr->g, gc, depth + 1) : 0;
            for (size_t s = 0; rc == 0 && s < attr->n_graphs; s++)
                rc = process_graph(m, attr->graphs[s], gc, depth + 1);
            if (rc) {
                mq_error_prefix(m->err,
                                "node '%s' (%s), attribute '%s': ", dequantize_node_label(node),
                                mq_str(node->op_type), mq_str(attr->name));
                return rc;
            }
        }
    }
    return 0;
}

static int process_graph(struct model_ctx *m, Onnx__GraphProto *g, const struct graph_ctx *parent,
                         int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(m->err, "subgraphs nested deeper than %d", MQ_MAX_SUBGRAPH_DEPTH);
    struct graph_ctx gc;
    int rc = graph_ctx_init(&gc, m, g, parent) ? dequantize_oom(m) : MQ_OK;
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++)
        if (mq_node_is_op(g->node[i], "DequantizeLinear"))
            rc = mq_dequantize_fold_weight(&gc, (int)i);
    for (size_t i = 0; rc == MQ_OK && !m->o->weights_only && i < g->n_node; i++)
        if (!gc.removed[i] && mq_node_is_op(g->node[i], "Clip"))
            rc = mq_dequantize_restore_hardsigmoid(&gc, (int)i);
    for (size_t i = 0; rc == MQ_OK && !m->o->weights_only && i < g->n_node; i++)
        if (!gc.removed[i] && mq_node_is_op(g->node[i], "QuantizeLinear"))
            rc = mq_dequantize_remove_pair(&gc, (int)i);
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++)
        if (!gc.removed[i] && mq_node_is_op(g->node[i], "DequantizeLinear"))
            m->r->kept_dequantize++;
    if (rc == MQ_OK && assemble(&gc))
        rc = dequantize_oom(m);
    /* Subgraphs last: they see the outer names as renamed here. */
    if (rc == MQ_OK)
        rc = process_subgraphs(m, g, &gc, depth);
    graph_ctx_free(&gc);
    return rc;
}

/* ------------------------------------------------------------- checks */

static int scan(const Onnx__GraphProto *g, int depth, int *n_qdq, const Onnx__NodeProto **op_format)
{
    if (!g || depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    static const char *const operator_format[] = {
        "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QLinearAdd",
        "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool", "QLinearAveragePool",
        "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QGemm", "DynamicQuantizeLinear",
        "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention"};
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        const char *op = mq_str(node->op_type);
        if (strcmp(op, "QuantizeLinear") == 0 || strcmp(op, "DequantizeLinear") == 0)
            (*n_qdq)++;
        for (size_t k = 0; k < sizeof operator_format / sizeof operator_format[0]; k++)
            if (strcmp(op, operator_format[k]) == 0 && !*op_format)
                *op_format = node;
        for (size_t a = 0; a < node->n_attribute; a++) {
            scan(node->attribute[a]->g, depth + 1, n_qdq, op_format);
            for (size_t s = 0; s < node->attribute[a]->n_graphs; s++)
                scan(node->attribute[a]->graphs[s], depth + 1, n_qdq, op_format);
        }
    }
    return 0;
}

int mq_dequantize(Onnx__ModelProto *model, const struct mq_dequantize_options *options,
                  struct mq_dequantize_result *result, struct mq_error *err)
{
    static const struct mq_dequantize_options defaults = {0};
    memset(result, 0, sizeof *result);
    if (!model->graph)
        return mq_error_set(err, "the model has no graph");
    int n_qdq = 0;
    const Onnx__NodeProto *op_format = NULL;
    scan(model->graph, 0, &n_qdq, &op_format);
    if (op_format)
        return mq_error_set(err, "node '%s' (%s): an operator-format quantized model (integer "
                            "ops such as QLinearConv); only QDQ models can be dequantized",
                            dequantize_node_label(op_format), mq_str(op_format->op_type));
    if (n_qdq == 0)
        return mq_error_set(err, "the model has no QuantizeLinear or DequantizeLinear node: it "
                            "is not a QDQ model, nothing to dequantize");
    struct model_ctx m;
    memset(&m, 0, sizeof m);
    m.model = model;
    m.o = options ? options : &defaults;
    m.r = result;
    m.err = err;
    int rc = mq_names_collect(model, &m.names, err);
    if (rc == MQ_OK &&
        (!(m.live = mq_strmap_new()) || mq_dequantize_collect_live(m.live, model->graph)))
        rc = dequantize_oom(&m);
    if (rc == MQ_OK)
        rc = mq_dequantize_read_record(&m);
    /* A channel Pad the quantizer moved onto 8-bit data goes back in front of its pair */
    if (rc == MQ_OK && !m.o->weights_only)
        rc = mq_channel_pads_to_float(model, err);
    if (rc == MQ_OK)
        rc = process_graph(&m, model->graph, NULL, 0);
    if (rc == MQ_OK)
        rc = mq_dequantize_cleanup(&m);
    /* With the pairs gone the Pad feeds the Conv directly again and its zero weights are float */
    if (rc == MQ_OK && !m.o->weights_only)
        rc = mq_unpad_conv_input_channels(model, &result->channels_unpadded, err);
    if (rc == MQ_OK && result->weights_folded == 0 && result->pairs_removed == 0)
        rc = mq_error_set(err, "none of the model's %d QuantizeLinear/DequantizeLinear nodes "
                          "could be removed (no DequantizeLinear of a constant, no "
                          "QuantizeLinear read only by matching DequantizeLinear)", n_qdq);
    for (int i = 0; i < m.n_candidates; i++)
        free(m.candidates[i]);
    free(m.candidates);
    mq_names_free(&m.names);
    mq_strmap_free(m.live);
    mq_dequantize_record_free(&m);
    return rc;
}
