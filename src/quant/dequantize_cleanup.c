/*
 * Dequantize's cleanup: the initializers only removed nodes read (and their
 * graph-input entries) and the value infos of names nothing uses any more
 * are dropped, in every graph; and the set of names the model uses, which
 * tells whether a weight's original name is free.
 */
#include <stdlib.h>
#include <string.h>

#include "quant/dequantize_state.h"
#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"

static int collect_reads(struct mq_strmap *reads, const Onnx__GraphProto *g, int depth)
{
    if (!g || depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        for (size_t k = 0; k < node->n_input; k++)
            if (node->input[k] && *node->input[k] && mq_strmap_put(reads, node->input[k], 1))
                return -1;
        for (size_t o = 0; o < node->n_output; o++)
            if (node->output[o] && *node->output[o] && mq_strmap_put(reads, node->output[o], 1))
                return -1;
        for (size_t a = 0; a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (collect_reads(reads, attr->g, depth + 1))
                return -1;
            for (size_t s = 0; s < attr->n_graphs; s++)
                if (collect_reads(reads, attr->graphs[s], depth + 1))
                    return -1;
        }
    }
    for (size_t o = 0; o < g->n_output; o++)
        if (mq_strmap_put(reads, mq_str(g->output[o]->name), 1))
            return -1;
    return 0;
}

/* collect_reads plus initializers and graph inputs, in every graph. */
static int collect_live(struct mq_strmap *live, const Onnx__GraphProto *g, int depth)
{
    if (!g || depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    if (depth == 0 && collect_reads(live, g, 0))
        return -1;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (mq_strmap_put(live, mq_str(g->initializer[i]->name), 1))
            return -1;
    for (size_t i = 0; i < g->n_input; i++)
        if (mq_strmap_put(live, mq_str(g->input[i]->name), 1))
            return -1;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t a = 0; a < g->node[i]->n_attribute; a++) {
            const Onnx__AttributeProto *attr = g->node[i]->attribute[a];
            if (collect_live(live, attr->g, depth + 1))
                return -1;
            for (size_t s = 0; s < attr->n_graphs; s++)
                if (collect_live(live, attr->graphs[s], depth + 1))
                    return -1;
        }
    return 0;
}

static int drop_unused(struct model_ctx *m, Onnx__GraphProto *g, const struct mq_strmap *used,
                       const struct mq_strmap *candidates, int depth)
{
    if (!g || depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        const char *name = mq_str(t->name);
        if (mq_strmap_get(candidates, name) >= 0 && mq_strmap_get(used, name) < 0) {
            /* An initializer listed as a graph input goes with its input entry. */
            for (size_t in = 0; in < g->n_input; in++)
                if (strcmp(mq_str(g->input[in]->name), name) == 0) {
                    onnx__value_info_proto__free_unpacked(g->input[in], NULL);
                    memmove(&g->input[in], &g->input[in + 1],
                            (g->n_input - in - 1) * sizeof *g->input);
                    g->n_input--;
                    break;
                }
            onnx__tensor_proto__free_unpacked(t, NULL);
            m->r->initializers_removed++;
        } else {
            g->initializer[k++] = t;
        }
    }
    g->n_initializer = k;
    k = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        Onnx__ValueInfoProto *v = g->value_info[i];
        if (mq_strmap_get(used, mq_str(v->name)) < 0)
            onnx__value_info_proto__free_unpacked(v, NULL);
        else
            g->value_info[k++] = v;
    }
    g->n_value_info = k;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t a = 0; a < g->node[i]->n_attribute; a++) {
            Onnx__AttributeProto *attr = g->node[i]->attribute[a];
            if (drop_unused(m, attr->g, used, candidates, depth + 1))
                return -1;
            for (size_t s = 0; s < attr->n_graphs; s++)
                if (drop_unused(m, attr->graphs[s], used, candidates, depth + 1))
                    return -1;
        }
    return 0;
}

int mq_dequantize_cleanup(struct model_ctx *m)
{
    struct mq_strmap *used = mq_strmap_new(), *cand = mq_strmap_new();
    int rc = !used || !cand || collect_reads(used, m->model->graph, 0);
    for (int i = 0; !rc && i < m->n_candidates; i++)
        rc = mq_strmap_put(cand, m->candidates[i], 1);
    if (!rc)
        rc = drop_unused(m, m->model->graph, used, cand, 0);
    mq_strmap_free(used);
    mq_strmap_free(cand);
    return rc ? dequantize_oom(m) : MQ_OK;
}

int mq_dequantize_collect_live(struct mq_strmap *live, const Onnx__GraphProto *g)
{
    return collect_live(live, g, 0);
}
