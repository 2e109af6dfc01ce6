/*
 * Which tensors calibration must observe for a selection: the float inputs
 * and outputs the rewrite will quantize, from the op table.  quantize and
 * the calibrate command both ask this.
 */
#include "quant/qdq.h"

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

struct observe_ctx {
    const struct mq_selection *sel;
    const struct mq_quant_options *o;
    struct mq_strmap *seen;
    char **names;
    int n, cap;
    struct mq_error *err;
};

static int observe_add(struct observe_ctx *oc, const struct mq_graph_index *idx, const char *name)
{
    if (!name || !*name || mq_strmap_get(oc->seen, name) >= 0)
        return 0;
    if (mq_graph_find_initializer(idx, name))
        return 0;
    int type = mq_graph_elem_type(idx, name);
    if (type != 0 && type != MQ_DTYPE_FLOAT)
        return 0;
    if (oc->n == oc->cap) {
        int cap = oc->cap ? oc->cap * 2 : 64;
        char **v = realloc(oc->names, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        oc->names = v;
        oc->cap = cap;
    }
    if (!(oc->names[oc->n] = strdup(name)) || mq_strmap_put(oc->seen, name, 1))
        return -1;
    oc->n++;
    return 0;
}

static int observe_graph(struct observe_ctx *oc, Onnx__GraphProto *g,
                         const struct mq_graph_index *parent, int depth);

struct observe_sub {
    struct observe_ctx *oc;
    const struct mq_graph_index *parent;
    int depth;
};

static int observe_subgraph(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    struct observe_sub *os = user;
    return observe_graph(os->oc, sub, os->parent, os->depth + 1);
}

static int observe_graph(struct observe_ctx *oc, Onnx__GraphProto *g,
                         const struct mq_graph_index *parent, int depth)
{
    if (depth > 64)
        return mq_error_set(oc->err, "subgraphs nest deeper than 64 levels");
    struct mq_graph_index idx;
    int rc = mq_graph_index_build(g, parent, &idx, oc->err);
    if (rc)
        return rc;
    char *keep = mq_qdq_kept_nodes(&idx, oc->sel);
    if (!keep)
        rc = mq_error_code(oc->err, MQ_ERR_MEMORY, "out of memory");
    for (size_t i = 0; !rc && i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        if (keep[i]) {
            /* Kept nodes have a row: only selected nodes of known op types are kept. */
            const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
            size_t n_in = r ? mq_op_rule_quantized_inputs(r, node) : 0;
            size_t n_out = r ? mq_op_rule_quantized_outputs(r, node) : 0;
            for (size_t k = 0; !rc && k < n_in && k < node->n_input; k++)
                rc = observe_add(oc, &idx, node->input[k]) ? -1 : 0;
            for (size_t k = 0; !rc && k < n_out; k++)
                rc = observe_add(oc, &idx, node->output[k]) ? -1 : 0;
            if (rc)
                rc = mq_error_code(oc->err, MQ_ERR_MEMORY, "out of memory");
        }
        if (!rc) {
            struct observe_sub os = {oc, &idx, depth};
            rc = mq_graph_each_subgraph(node, observe_subgraph, &os);
        }
    }
    free(keep);
    mq_graph_index_free(&idx);
    return rc;
}

int mq_qdq_tensors_to_observe(const Onnx__ModelProto *model, const struct mq_selection *sel,
                              const struct mq_quant_options *o, char ***names, int *n,
                              struct mq_error *err)
{
    struct observe_ctx oc = {sel, o, mq_strmap_new(), NULL, 0, 0, err};
    *names = NULL;
    *n = 0;
    if (!oc.seen)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int rc = model->graph ? observe_graph(&oc, model->graph, NULL, 0) : 0;
    mq_strmap_free(oc.seen);
    if (rc) {
        mq_string_list_free(oc.names, oc.n);
        return rc;
    }
    *names = oc.names;
    *n = oc.n;
    return MQ_OK;
}

void mq_string_list_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}


