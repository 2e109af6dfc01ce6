/*
 * Inlining an If whose condition is a constant: the branch taken replaces the
 * node, so a graph an exporter wrapped in `If(true)` (or a weight read inside
 * a branch that is always taken) is the same graph as the unwrapped one.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/canonical_internal.h"
#include "graph/edit.h"

static Onnx__GraphProto *branch_of(const Onnx__NodeProto *node, const char *name)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        if (strcmp(mq_str(node->attribute[a]->name), name) == 0)
            return node->attribute[a]->g;
    return NULL;
}

/* Whether any name the branch defines is already defined where its nodes would land. */
static int collides(const Onnx__GraphProto *branch, const Onnx__GraphProto *const *scopes,
                    int n_scopes)
{
    for (int k = 0; k < n_scopes; k++) {
        for (size_t i = 0; i < branch->n_initializer; i++)
            if (mq_graph_defines(scopes[k], mq_str(branch->initializer[i]->name)))
                return 1;
        for (size_t n = 0; n < branch->n_node; n++)
            for (size_t o = 0; o < branch->node[n]->n_output; o++) {
                const char *name = mq_str(branch->node[n]->output[o]);
                if (*name && mq_graph_defines(scopes[k], name))
                    return 1;
            }
    }
    return 0;
}

/* The node of the branch producing `name`, or NULL. */
static Onnx__NodeProto *producer(const Onnx__GraphProto *g, const char *name, size_t *slot)
{
    for (size_t n = 0; n < g->n_node; n++)
        for (size_t o = 0; o < g->node[n]->n_output; o++)
            if (strcmp(mq_str(g->node[n]->output[o]), name) == 0) {
                *slot = o;
                return g->node[n];
            }
    return NULL;
}

static Onnx__NodeProto *identity_node(const char *in, const char *out)
{
    Onnx__NodeProto *node = malloc(sizeof *node);
    char **inputs = malloc(sizeof *inputs), **outputs = malloc(sizeof *outputs);
    char *i = strdup(in), *o = strdup(out), *op = strdup("Identity");
    if (!node || !inputs || !outputs || !i || !o || !op) {
        free(node), free(inputs), free(outputs), free(i), free(o), free(op);
        return NULL;
    }
    onnx__node_proto__init(node);
    inputs[0] = i;
    outputs[0] = o;
    node->input = inputs;
    node->n_input = 1;
    node->output = outputs;
    node->n_output = 1;
    node->op_type = op;
    return node;
}

int mq_graph_inline_if(Onnx__GraphProto *g, size_t n, int take_then,
                       const Onnx__GraphProto *const *outer, int n_outer)
{
    Onnx__NodeProto *node = g->node[n];
    Onnx__GraphProto *branch = branch_of(node, take_then ? "then_branch" : "else_branch");
    if (!branch || branch->n_input || branch->n_output != node->n_output)
        return 0;
    const Onnx__GraphProto *scopes[64];
    if (n_outer > 63)
        return 0;
    scopes[0] = g;
    for (int k = 0; k < n_outer; k++)
        scopes[k + 1] = outer[k];
    if (collides(branch, scopes, n_outer + 1))
        return 0;

    /* Each branch output takes the If output's name: its producer is renamed, or an Identity
       carries it (an outer name, an initializer, or a value returned twice). */
    size_t n_extra = 0;
    Onnx__NodeProto **extra = calloc(branch->n_output + 1, sizeof *extra);
    if (!extra)
        return -1;
    for (size_t k = 0; k < branch->n_output; k++) {
        const char *inner = mq_str(branch->output[k]->name), *outer_name = mq_str(node->output[k]);
        if (!*outer_name)
            continue;
        int returned_twice = 0;
        for (size_t j = 0; j < branch->n_output; j++)
            returned_twice |= j != k && strcmp(mq_str(branch->output[j]->name), inner) == 0;
        size_t slot;
        Onnx__NodeProto *p = returned_twice ? NULL : producer(branch, inner, &slot);
        if (p) {
            char *copy = strdup(outer_name);
            if (!copy || mq_graph_rename_reads(branch, inner, outer_name)) {
                free(copy);
                goto oom;
            }
            free(p->output[slot]);
            p->output[slot] = copy;
            free(branch->output[k]->name);
            branch->output[k]->name = strdup(outer_name);
            if (!branch->output[k]->name)
                goto oom;
        } else if (!(extra[n_extra++] = identity_node(inner, outer_name))) {
            goto oom;
        }
    }

    /* Initializers and nodes move into g, the nodes where the If was. */
    Onnx__TensorProto **inits = realloc(g->initializer,
                                        (g->n_initializer + branch->n_initializer + 1) *
                                            sizeof *inits);
    if (!inits)
        goto oom;
    g->initializer = inits;
    Onnx__NodeProto **nodes = realloc(g->node, (g->n_node + branch->n_node + n_extra + 1) *
                                                   sizeof *nodes);
    if (!nodes)
        goto oom;
    g->node = nodes;
    for (size_t i = 0; i < branch->n_initializer; i++)
        g->initializer[g->n_initializer++] = branch->initializer[i];
    branch->n_initializer = 0;
    size_t moved = branch->n_node + n_extra;
    memmove(&g->node[n + moved], &g->node[n + 1], (g->n_node - n - 1) * sizeof *g->node);
    for (size_t i = 0; i < branch->n_node; i++)
        g->node[n + i] = branch->node[i];
    for (size_t i = 0; i < n_extra; i++)
        g->node[n + branch->n_node + i] = extra[i];
    g->n_node += moved - 1;
    branch->n_node = 0;
    free(extra);
    onnx__node_proto__free_unpacked(node, NULL);
    return 1;
oom:
    for (size_t i = 0; i < n_extra; i++)
        if (extra[i])
            onnx__node_proto__free_unpacked(extra[i], NULL);
    free(extra);
    return -1;
}
