/*
 * Rewiring readers from one tensor name to another across subgraphs, with
 * ONNX's scoping: a subgraph reads an enclosing graph's tensor by name unless
 * it defines that name itself (an input, an initializer or a node output).
 */
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "graph/edit.h"
#include "util/error.h"
#include "util/strutil.h"

int mq_graph_defines(const Onnx__GraphProto *graph, const char *name)
{
    for (size_t i = 0; i < graph->n_input; i++)
        if (strcmp(mq_str(graph->input[i]->name), name) == 0)
            return 1;
    for (size_t i = 0; i < graph->n_initializer; i++)
        if (strcmp(mq_str(graph->initializer[i]->name), name) == 0)
            return 1;
    for (size_t n = 0; n < graph->n_node; n++)
        for (size_t o = 0; o < graph->node[n]->n_output; o++)
            if (strcmp(mq_str(graph->node[n]->output[o]), name) == 0)
                return 1;
    return 0;
}

static int reads_directly(const Onnx__GraphProto *graph, const char *name)
{
    for (size_t n = 0; n < graph->n_node; n++)
        for (size_t i = 0; i < graph->node[n]->n_input; i++)
            if (strcmp(mq_str(graph->node[n]->input[i]), name) == 0)
                return 1;
    for (size_t o = 0; o < graph->n_output; o++)
        if (strcmp(mq_str(graph->output[o]->name), name) == 0)
            return 1;
    return 0;
}

struct rename {
    const char *from, *to;
    int depth;
    int to_shadowed; /* an enclosing subgraph defines `to`: a renamed read would bind there */
};

/* Nonzero when a read of `from` in sub (or deeper) would be captured after renaming. */
static int check_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    const struct rename *r = user;
    if (r->depth > MQ_MAX_SUBGRAPH_DEPTH || mq_graph_defines(sub, r->from))
        return 0;
    struct rename inner = *r;
    inner.depth++;
    inner.to_shadowed |= mq_graph_defines(sub, r->to);
    if (inner.to_shadowed && reads_directly(sub, r->from))
        return 1;
    for (size_t n = 0; n < sub->n_node; n++)
        if (mq_graph_each_subgraph(sub->node[n], check_sub, &inner))
            return 1;
    return 0;
}

int mq_graph_rename_is_safe(const Onnx__GraphProto *graph, const char *from, const char *to)
{
    struct rename r = {from, to, 0, 0};
    for (size_t n = 0; n < graph->n_node; n++)
        if (mq_graph_each_subgraph(graph->node[n], check_sub, &r))
            return 0;
    return 1;
}

static int replace(char **slot, const char *from, const char *to)
{
    if (strcmp(mq_str(*slot), from) != 0)
        return 0;
    return mq_str_replace(slot, to);
}

static int rename_nodes(Onnx__GraphProto *graph, struct rename *r);

static int rename_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    struct rename *r = user;
    if (r->depth > MQ_MAX_SUBGRAPH_DEPTH || mq_graph_defines(sub, r->from))
        return 0;
    for (size_t o = 0; o < sub->n_output; o++)
        if (replace(&sub->output[o]->name, r->from, r->to))
            return -1;
    struct rename inner = *r;
    inner.depth++;
    return rename_nodes(sub, &inner);
}

static int rename_nodes(Onnx__GraphProto *graph, struct rename *r)
{
    for (size_t n = 0; n < graph->n_node; n++) {
        Onnx__NodeProto *node = graph->node[n];
        for (size_t i = 0; i < node->n_input; i++)
            if (replace(&node->input[i], r->from, r->to))
                return -1;
        if (mq_graph_each_subgraph(node, rename_sub, r))
            return -1;
    }
    return 0;
}

int mq_graph_rename_reads(Onnx__GraphProto *graph, const char *from, const char *to)
{
    struct rename r = {from, to, 0, 0};
    return rename_nodes(graph, &r);
}
