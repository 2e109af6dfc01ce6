/*
 * Dequantize's removal of activation QuantizeLinear -> DequantizeLinear
 * pairs: a QuantizeLinear whose every reader is a DequantizeLinear with the
 * same parameters goes with them, and their readers read the float tensor
 * again (a graph output keeps its name through the producer or an
 * Identity).  Where the quantizer folded a Relu or Clip into the pair, it is
 * put back first (dequantize_activations.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/dequantize_state.h"
#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"

/* Whether a subgraph of g's nodes (other than through explicit inputs) reads `name`. */
static int read_in_subgraph(const Onnx__GraphProto *g, const char *name, int depth)
{
    if (!g || depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        if (depth > 0)
            for (size_t k = 0; k < node->n_input; k++)
                if (node->input[k] && strcmp(node->input[k], name) == 0)
                    return 1;
        for (size_t a = 0; a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (read_in_subgraph(attr->g, name, depth + 1))
                return 1;
            for (size_t s = 0; s < attr->n_graphs; s++)
                if (read_in_subgraph(attr->graphs[s], name, depth + 1))
                    return 1;
        }
    }
    if (depth > 0)
        for (size_t o = 0; o < g->n_output; o++)
            if (strcmp(mq_str(g->output[o]->name), name) == 0)
                return 1;
    return 0;
}

static int same_input(const Onnx__NodeProto *a, const Onnx__NodeProto *b, size_t k)
{
    const char *x = mq_graph_input_at(a, k), *y = mq_graph_input_at(b, k);
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

/* Nodes of g reading `name`, in order; -1 in *bad when one is not a matching DequantizeLinear. */
static int collect_dq_readers(const struct graph_ctx *gc, const Onnx__NodeProto *q,
                              const char *name, int *readers, int max, int *bad)
{
    int n = 0;
    *bad = 0;
    for (size_t i = 0; i < gc->g->n_node; i++) {
        if (gc->removed[i])
            continue;
        const Onnx__NodeProto *node = gc->g->node[i];
        int reads = 0;
        for (size_t k = 0; k < node->n_input; k++)
            reads |= node->input[k] && strcmp(node->input[k], name) == 0;
        if (!reads)
            continue;
        if (!mq_node_is_op(node, "DequantizeLinear") || !same_input(node, q, 1) ||
            !same_input(node, q, 2) || node->n_output < 1 || !*mq_str(node->output[0]) ||
            mq_node_attr_int(node, "axis", 1) != mq_node_attr_int(q, "axis", 1) ||
            strcmp(mq_str(node->input[0]), name) != 0 || n == max) {
            *bad = 1;
            return n;
        }
        readers[n++] = (int)i;
    }
    return n;
}

static int count_readers(const Onnx__GraphProto *g, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (g->node[i]->input[k] && strcmp(g->node[i]->input[k], name) == 0)
                n++;
    return n;
}

/* A node copying t to the graph output d, placed after node i. */
static int copy_to_output(struct graph_ctx *gc, int i, const char *t, const char *d)
{
    struct model_ctx *m = gc->m;
    char *base = mq_str_printf("%s_Identity", d);
    char *name = base ? mq_names_fresh(&m->names, base) : NULL;
    free(base);
    Onnx__NodeProto *id = name ? mq_graph_new_unary_node("Identity", name, t, d) : NULL;
    free(name);
    if (!id || mq_dequantize_place_after(gc, i, id)) {
        if (id)
            onnx__node_proto__free_unpacked(id, NULL);
        return dequantize_oom(m);
    }
    return 0;
}

/* Gives the producer's output t the name d (a graph output), or copies t to d. */
static int route_to_output(struct graph_ctx *gc, int q_index, const char *t, const char *d)
{
    struct model_ctx *m = gc->m;
    int p = mq_strmap_get(gc->producer, t);
    int movable = p >= 0 && !gc->removed[p] && mq_strmap_get(gc->outputs, t) < 0 &&
                  count_readers(gc->g, t) == 1 && !read_in_subgraph(gc->g, t, 0);
    if (movable) {
        Onnx__NodeProto *prod = gc->g->node[p];
        for (size_t o = 0; o < prod->n_output; o++)
            if (prod->output[o] && strcmp(prod->output[o], t) == 0 &&
                mq_str_replace(&prod->output[o], d))
                return dequantize_oom(m);
        /* A restored Relu writes t: it is the last node to touch the value. */
        for (int k = 0; k < gc->n_after[p]; k++) {
            Onnx__NodeProto *a = gc->after[p][k];
            if (a->n_output > 0 && strcmp(a->output[0], t) == 0 &&
                mq_str_replace(&a->output[0], d))
                return dequantize_oom(m);
        }
        return 0;
    }
    return copy_to_output(gc, q_index, t, d);
}

#define MAX_READERS 256

int mq_dequantize_remove_pair(struct graph_ctx *gc, int i)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *q = gc->g->node[i];
    const char *t = mq_graph_input_at(q, 0);
    const char *qout = q->n_output > 0 ? q->output[0] : NULL;
    if (!t || !qout || !*qout)
        return 0;
    int readers[MAX_READERS], bad;
    int n = collect_dq_readers(gc, q, qout, readers, MAX_READERS, &bad);
    if (bad || n == 0 || mq_strmap_get(gc->outputs, qout) >= 0 ||
        read_in_subgraph(gc->g, qout, 0)) {
        m->r->kept_quantize++;
        return 0;
    }
    int producer = mq_strmap_get(gc->producer, t);
    int live_producer = producer >= 0 && !gc->removed[producer] &&
                        mq_strmap_get(gc->outputs, t) < 0;
    if (live_producer) {
        int rc = mq_dequantize_restore_activation(gc, producer, q, t);
        if (rc)
            return rc;
    }
    for (int k = 0; k < n; k++) {
        Onnx__NodeProto *dq = gc->g->node[readers[k]];
        const char *d = dq->output[0];
        int rc;
        if (mq_strmap_get(gc->outputs, d) >= 0)
            rc = n == 1 ? route_to_output(gc, i, t, d) : MQ_OK;
        else
            rc = mq_graph_rename_reads(gc->g, d, t) ? dequantize_oom(m) : MQ_OK;
        /* Several outputs from one pair: each gets a copy of t. */
        if (rc == MQ_OK && mq_strmap_get(gc->outputs, d) >= 0 && n > 1)
            rc = copy_to_output(gc, i, t, d);
        if (rc)
            return rc;
        gc->removed[readers[k]] = 1;
    }
    if (mq_dequantize_add_candidate(m, mq_graph_input_at(q, 1)) ||
        mq_dequantize_add_candidate(m, mq_graph_input_at(q, 2)))
        return dequantize_oom(m);
    gc->removed[i] = 1;
    m->r->pairs_removed++;
    return 0;
}
