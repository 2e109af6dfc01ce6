/*
 * Finding the tensors that feed a discrete decision (graph/decision.h): a
 * walk backwards from each decision's data inputs through the ops that carry
 * values along, per graph.
 */
#include "graph/decision.h"

#include <stdlib.h>
#include <string.h>

#include "quant/graph.h" /* mq_strmap */
#include "util/strutil.h"

#define MAX_DEPTH 32

/* Decisions, with the inputs that carry the data being decided on (a bit per input). */
static const struct {
    const char *op;
    unsigned inputs;
} decisions[] = {
    {"Equal", 3},          {"Greater", 3}, {"Less", 3}, {"GreaterOrEqual", 3},
    {"LessOrEqual", 3},    {"ArgMax", 1},  {"ArgMin", 1}, {"TopK", 1},
    {"NonMaxSuppression", 3}, /* boxes, scores */
};

/*
 * Ops a path is followed through, with the inputs it follows (a bit per
 * input): the value decided on is these inputs' values moved, reordered,
 * scaled or squashed, so their error reaches the decision as it is.
 */
static const struct {
    const char *op;
    unsigned inputs;
} carriers[] = {
    {"Identity", 1},  {"Cast", 1},        {"Reshape", 1},    {"Flatten", 1},
    {"Squeeze", 1},   {"Unsqueeze", 1},   {"Transpose", 1},  {"Slice", 1},
    {"Gather", 1},    {"Split", 1},       {"Concat", ~0u},   {"Pad", 1},
    {"MaxPool", 1},   {"AveragePool", 1}, {"GlobalMaxPool", 1}, {"GlobalAveragePool", 1},
    {"Resize", 1},    {"Upsample", 1},    {"DepthToSpace", 1}, {"SpaceToDepth", 1},
    {"Relu", 1},      {"LeakyRelu", 1},   {"Clip", 1},       {"Sigmoid", 1},
    {"HardSigmoid", 1}, {"Tanh", 1},      {"Softmax", 1},    {"LogSoftmax", 1},
    {"Exp", 1},       {"Neg", 1},         {"Abs", 1},        {"Max", ~0u},
    {"Min", ~0u},     {"Add", 3},         {"Sub", 3},        {"Mul", 3},
    {"Div", 3},       {"Where", 6},       {"ReduceMax", 1},  {"ReduceMin", 1},
};

static int lookup(const char *op, int decision, unsigned *inputs)
{
    size_t n = decision ? sizeof decisions / sizeof decisions[0]
                        : sizeof carriers / sizeof carriers[0];
    for (size_t i = 0; i < n; i++) {
        const char *name = decision ? decisions[i].op : carriers[i].op;
        if (strcmp(name, op) == 0) {
            *inputs = decision ? decisions[i].inputs : carriers[i].inputs;
            return 1;
        }
    }
    return 0;
}

/* Producers of shape arithmetic: a decision reached from them decides on integers. */
static const char *const shape_sources[] = {"Shape", "Size", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static int is_onnx(const Onnx__NodeProto *node)
{
    const char *d = mq_str(node->domain);
    return !*d || strcmp(d, "ai.onnx") == 0;
}

struct walk {
    struct mq_graph_decision_paths *out;
    struct mq_strmap *seen_tensors, *seen_nodes;
    struct mq_error *err;
};

static int add_name(char ***list, int *n, struct mq_strmap *seen, const char *name)
{
    if (mq_strmap_get(seen, name) >= 0)
        return 0;
    char **grown = realloc(*list, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *list = grown;
    if (!(grown[*n] = strdup(name)))
        return -1;
    (*n)++;
    return mq_strmap_put(seen, name, 1);
}

/* Drops the names added from index `first` on (and their labels, when `labels`). */
static void forget(char ***list, int *n, struct mq_strmap *seen, int first, char **labels)
{
    for (int i = first; i < *n; i++) {
        mq_strmap_del(seen, (*list)[i]);
        free((*list)[i]);
        if (labels)
            free(labels[i]);
    }
    *n = first;
}

/* Adds tensor t with the label of the decision it leads to. */
static int add_tensor(struct walk *w, const char *t, const char *label)
{
    struct mq_graph_decision_paths *out = w->out;
    char **grown = realloc(out->tensor_decisions, (size_t)(out->n_tensors + 1) * sizeof *grown);
    if (!grown)
        return -1;
    out->tensor_decisions = grown;
    if (!(grown[out->n_tensors] = strdup(label)))
        return -1;
    if (add_name(&out->tensors, &out->n_tensors, w->seen_tensors, t)) {
        free(grown[out->n_tensors]);
        return -1;
    }
    return 0;
}

struct stack {
    const char **items;
    size_t n, cap;
};

/* Pushes the inputs of node picked by the bit mask `follow`; -1 when out of memory. */
static int push_inputs(struct stack *s, const Onnx__NodeProto *node, unsigned follow)
{
    for (size_t i = 0; i < node->n_input && i < 32; i++) {
        if (!(follow >> i & 1) || !*mq_str(node->input[i]))
            continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            const char **grown = realloc(s->items, cap * sizeof *grown);
            if (!grown)
                return -1;
            s->items = grown;
            s->cap = cap;
        }
        s->items[s->n++] = node->input[i];
    }
    return 0;
}

static int graph_paths(const Onnx__GraphProto *g, struct walk *w, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    struct mq_strmap *producer = mq_strmap_new(), *initializers = mq_strmap_new();
    struct stack stack = {0};
    char *label = NULL;
    int rc = -1;
    if (!producer || !initializers)
        goto done;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (mq_strmap_put(initializers, mq_str(g->initializer[i]->name), 1))
            goto done;
    for (size_t n = 0; n < g->n_node; n++)
        for (size_t o = 0; o < g->node[n]->n_output; o++)
            if (*mq_str(g->node[n]->output[o]) &&
                mq_strmap_put(producer, g->node[n]->output[o], (int)n))
                goto done;

    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        unsigned follow;
        if (!is_onnx(node) || !lookup(mq_str(node->op_type), 1, &follow))
            continue;
        int first_tensor = w->out->n_tensors, first_node = w->out->n_nodes, shape_math = 0;
        free(label);
        label = *mq_str(node->name) ? mq_str_printf("%s '%s'", node->op_type, node->name)
                                    : strdup(mq_str(node->op_type));
        if (!label)
            goto done;
        if (*mq_str(node->name) &&
            add_name(&w->out->nodes, &w->out->n_nodes, w->seen_nodes, node->name))
            goto done;
        /* Depth-first from the decision's data inputs. */
        stack.n = 0;
        if (push_inputs(&stack, node, follow))
            goto done;
        while (stack.n) {
            const char *t = stack.items[--stack.n];
            if (mq_strmap_get(w->seen_tensors, t) >= 0 || mq_strmap_get(initializers, t) >= 0)
                continue;
            int p = mq_strmap_get(producer, t);
            if (p < 0)
                continue; /* a graph input or an outer-scope value */
            const Onnx__NodeProto *pn = g->node[p];
            if (pn->n_output && strcmp(mq_str(pn->op_type), "Constant") == 0)
                continue;
            shape_math |= is_onnx(pn) && in_list(shape_sources, mq_str(pn->op_type));
            if (add_tensor(w, t, label))
                goto done;
            if (!is_onnx(pn) || !lookup(mq_str(pn->op_type), 0, &follow))
                continue; /* weighted or other producer: its output is listed, the walk ends */
            if (*mq_str(pn->name) &&
                add_name(&w->out->nodes, &w->out->n_nodes, w->seen_nodes, pn->name))
                goto done;
            if (push_inputs(&stack, pn, follow))
                goto done;
        }
        if (shape_math) {
            /* A comparison of shapes (an Expand to the batch size, ...): integers, no path. */
            forget(&w->out->tensors, &w->out->n_tensors, w->seen_tensors, first_tensor,
                   w->out->tensor_decisions);
            forget(&w->out->nodes, &w->out->n_nodes, w->seen_nodes, first_node, NULL);
        }
    }
    for (size_t n = 0; n < g->n_node; n++)
        for (size_t a = 0; a < g->node[n]->n_attribute; a++) {
            const Onnx__AttributeProto *attr = g->node[n]->attribute[a];
            if (attr->g && graph_paths(attr->g, w, depth + 1))
                goto done;
            for (size_t k = 0; k < attr->n_graphs; k++)
                if (graph_paths(attr->graphs[k], w, depth + 1))
                    goto done;
        }
    rc = 0;
done:
    free(label);
    free(stack.items);
    mq_strmap_free(producer);
    mq_strmap_free(initializers);
    return rc;
}

void mq_graph_decision_paths_free(struct mq_graph_decision_paths *paths)
{
    for (int i = 0; i < paths->n_tensors; i++) {
        free(paths->tensors[i]);
        free(paths->tensor_decisions[i]);
    }
    free(paths->tensor_decisions);
    for (int i = 0; i < paths->n_nodes; i++)
        free(paths->nodes[i]);
    free(paths->tensors);
    free(paths->nodes);
    memset(paths, 0, sizeof *paths);
}

int mq_graph_decision_inputs(const Onnx__GraphProto *graph, struct mq_graph_decision_paths *out,
                             struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    struct walk w = {out, mq_strmap_new(), mq_strmap_new(), err};
    int rc = w.seen_tensors && w.seen_nodes ? graph_paths(graph, &w, 0) : -1;
    mq_strmap_free(w.seen_tensors);
    mq_strmap_free(w.seen_nodes);
    if (rc) {
        mq_graph_decision_paths_free(out);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory finding decision paths");
    }
    return MQ_OK;
}
