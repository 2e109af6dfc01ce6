/*
 * Integer islands: which selected nodes stay selected because their output
 * reaches an op with an integer kernel of its own (op_rules.h: starts_island).
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
#include "util/strutil.h"

int mq_qdq_is_selected(const struct mq_selection *sel, const Onnx__NodeProto *node)
{
    const struct mq_node_choice *c = mq_selection_find(sel, node);
    return c && c->status == MQ_NODE_SELECTED;
}

int mq_qdq_reads_quantized(const Onnx__NodeProto *reader, const char *name)
{
    const struct mq_op_rule *r = mq_op_rule_find(mq_str(reader->op_type));
    for (size_t in = 0; in < reader->n_input; in++)
        if ((!r || mq_op_rule_links_input(r, in)) && reader->input[in] &&
            strcmp(reader->input[in], name) == 0)
            return 1;
    return 0;
}

/*
 * Which selected nodes stay selected: every Conv, ConvTranspose, Gemm and
 * MatMul, and the other ops (Relu, Concat, Reshape, Sigmoid, ...) only where
 * their output flows, through other such ops, into one of those.  Elsewhere
 * onnxruntime has no integer kernel to hand the int8 data to: a Q/DQ pair
 * there buys no speed, costs a rounding and the bytes of two nodes (a
 * detector's box decoding, a Sigmoid gate feeding float Mul nodes).
 * Returns a malloc'd flag per node of the graph (1: stays), NULL when out of
 * memory.  The graph need not be sorted.
 */
char *mq_qdq_kept_nodes(const struct mq_graph_index *idx, const struct mq_selection *sel)
{
    const Onnx__GraphProto *g = idx->graph;
    size_t n = g->n_node;
    char *keep = calloc(n ? n : 1, 1);
    if (!keep)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct mq_op_rule *r = mq_op_rule_find(mq_str(g->node[i]->op_type));
        keep[i] = mq_qdq_is_selected(sel, g->node[i]) && r && r->starts_island;
    }
    /* Backwards from the weighted nodes until nothing changes (sorted graphs: one pass). */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t r = n; r-- > 0;) {
            const Onnx__NodeProto *node = g->node[r];
            if (keep[r] || !mq_qdq_is_selected(sel, node))
                continue;
            for (size_t o = 0; o < node->n_output && !keep[r]; o++) {
                const struct mq_tensor_info *t =
                    node->output[o] && *node->output[o] ? mq_graph_tensor(idx, node->output[o])
                                                        : NULL;
                for (int k = 0; t && k < t->n_consumers && !keep[r]; k++) {
                    int j = t->consumers[k].node;
                    if (t->consumers[k].implicit || !keep[j])
                        continue;
                    keep[r] = mq_qdq_reads_quantized(g->node[j], node->output[o]);
                }
            }
            changed |= keep[r];
        }
    }
    /*
     * A Relu or Clip alone behind a kept node stays too, whatever reads it:
     * folded, it costs nothing and its Q/DQ gets the narrower post-activation
     * range.
     */
    for (size_t i = 0; i < n; i++) {
        const Onnx__NodeProto *node = g->node[i];
        const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
        if (keep[i] || !mq_qdq_is_selected(sel, node) || !r || !r->clamp_bounds ||
            node->n_input < 1 ||
            !node->input[0] || !*node->input[0])
            continue;
        const struct mq_tensor_info *t = mq_graph_tensor(idx, node->input[0]);
        keep[i] = t && t->producer >= 0 && keep[t->producer] && t->n_consumers == 1 &&
                  !t->graph_output;
    }
    return keep;
}

/* Selected nodes that mq_qdq_kept_nodes() leaves out become skipped, with the reason. */
int mq_qdq_prune_islands(struct graph_ctx *gc)
{
    char *keep = mq_qdq_kept_nodes(&gc->idx, gc->m->sel);
    if (!keep)
        return mq_qdq_oom(gc->m);
    for (int i = 0; i < gc->n_nodes; i++) {
        const Onnx__NodeProto *node = gc->g->node[i];
        if (keep[i] || !mq_qdq_is_selected(gc->m->sel, node))
            continue;
        mq_choice_set(mq_selection_find(gc->m->sel, node), MQ_NODE_SKIPPED,
                      "its output reaches no quantized %s: onnxruntime would run it on int8 "
                      "data for no gain",
                      mq_op_rules_island_ops_text());
    }
    free(keep);
    return 0;
}


