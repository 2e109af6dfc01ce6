/*
 * The canonicalisation pass (graph/canonical.h): per graph, a walk over the
 * nodes repeated until nothing changes (Constant nodes to initializers,
 * constant nodes folded, Identity nodes removed, If nodes of constant
 * condition inlined), then the subgraphs, then the initializers nobody reads.
 * Constant folding itself is in constant_fold.c, renaming across scopes in
 * rename.c, inlining in canonical_inline.c.
 */
#include "graph/canonical.h"

#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "graph/canonical_internal.h"
#include "graph/edit.h"
#include "core/tensor.h"
#include "model/tensor_proto.h"
#include "util/strmap.h"
#include "util/strutil.h"

/* Ops whose output differs between runs even on the same inputs: never folded. */
static const char *const nondeterministic_ops[] = {
    "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
    "Bernoulli", NULL,
};

/* Ops that read only their input's shape: a graph input of static shape is enough to fold them. */
static const char *const shape_only_ops[] = {"Shape", "Size", NULL};

struct canon {
    Onnx__ModelProto *model;
    uint64_t max_bytes;
    const struct mq_graph_canonical_options *options;
    struct scope *folding_in; /* the scope of the node being folded, for expanding_allowed */
    /* DequantizeLinear of a constant is folded only in a model without QuantizeLinear: there it
       decompresses stored weights; in a QDQ model it is the quantization itself. */
    int fold_dequantize;
    /* IR version 3 requires every initializer of the main graph to be listed as an input */
    int initializers_are_inputs;
    struct mq_graph_canonical_counts counts;
    struct mq_error *err;
};

/* Names one graph defines, for lookups from it and from its subgraphs. */
struct scope {
    const struct scope *parent;
    Onnx__GraphProto *graph;
    int is_main;
    struct mq_strmap *constants; /* name -> index into graph->initializer */
    struct mq_strmap *others;    /* fed inputs (1) and node outputs (2): not constant */
    struct mq_strmap *outputs;   /* graph outputs */
    struct mq_strmap *removed;   /* Identity outputs that no longer exist (value_info cleanup) */
};

enum { OTHER_INPUT = 1, OTHER_NODE_OUTPUT = 2 };

static int oom(struct canon *c)
{
    return mq_error_code(c->err, MQ_ERR_MEMORY, "out of memory while canonicalising the graph");
}

/* The constant a name denotes from this scope, or NULL (not constant, or unknown). */
static Onnx__TensorProto *find_constant(const struct scope *s, const char *name)
{
    for (; s; s = s->parent) {
        int k = mq_strmap_get(s->constants, name);
        if (k >= 0)
            return s->graph->initializer[k];
        if (mq_strmap_get(s->others, name) >= 0)
            return NULL;
    }
    return NULL;
}

/* The main graph's fed input a name denotes from this scope, or NULL. */
static const Onnx__ValueInfoProto *find_main_input(const struct scope *s, const char *name)
{
    for (; s; s = s->parent) {
        if (mq_strmap_get(s->constants, name) >= 0)
            return NULL;
        int k = mq_strmap_get(s->others, name);
        if (k == OTHER_NODE_OUTPUT)
            return NULL;
        if (k == OTHER_INPUT) {
            if (!s->is_main)
                return NULL;
            for (size_t i = 0; i < s->graph->n_input; i++)
                if (strcmp(mq_str(s->graph->input[i]->name), name) == 0)
                    return s->graph->input[i];
            return NULL;
        }
    }
    return NULL;
}

/*
 * A stand-in for a graph input whose declared shape is fully static: zeros of
 * that shape (one byte each), so a Shape or Size kernel can run on it.  NULL
 * when the shape is not static or too large.
 */
static Onnx__TensorProto *static_shape_stand_in(const Onnx__ValueInfoProto *input,
                                                uint64_t max_bytes)
{
    const Onnx__TypeProto *type = input->type;
    if (!type || type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !type->tensor_type->shape)
        return NULL;
    const Onnx__TensorShapeProto *shape = type->tensor_type->shape;
    if (shape->n_dim > 12)
        return NULL;
    uint64_t count = 1;
    for (size_t d = 0; d < shape->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = shape->dim[d];
        if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            dim->dim_value < 0)
            return NULL;
        if (dim->dim_value && count > max_bytes / (uint64_t)dim->dim_value)
            return NULL;
        count *= (uint64_t)dim->dim_value;
    }
    if (count > max_bytes)
        return NULL;
    Onnx__TensorProto *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    onnx__tensor_proto__init(t);
    t->name = strdup(mq_str(input->name));
    t->dims = malloc(sizeof(int64_t) * (shape->n_dim + 1));
    t->raw_data.data = calloc(count ? count : 1, 1);
    if (!t->name || !t->dims || !t->raw_data.data) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return NULL;
    }
    t->n_dims = shape->n_dim;
    for (size_t d = 0; d < shape->n_dim; d++)
        t->dims[d] = shape->dim[d]->dim_value;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    t->has_raw_data = 1;
    t->raw_data.len = count;
    return t;
}

/* Appends an initializer to the scope's graph (taking ownership). */
static int add_initializer(struct canon *c, struct scope *s, Onnx__TensorProto *t)
{
    Onnx__GraphProto *g = s->graph;
    Onnx__TensorProto **grown = realloc(g->initializer, (g->n_initializer + 1) * sizeof *grown);
    if (!grown) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return oom(c);
    }
    g->initializer = grown;
    g->initializer[g->n_initializer] = t;
    const char *name = mq_str(t->name);
    if (mq_strmap_put(s->constants, name, (int)g->n_initializer))
        return oom(c);
    g->n_initializer++;
    mq_strmap_del(s->others, name);
    if (s->is_main && c->initializers_are_inputs) {
        Onnx__ValueInfoProto *entry = mq_graph_input_entry(t);
        Onnx__ValueInfoProto **inputs = realloc(g->input, (g->n_input + 1) * sizeof *inputs);
        if (inputs)
            g->input = inputs;
        if (!entry || !inputs) {
            if (entry)
                onnx__value_info_proto__free_unpacked(entry, NULL);
            return oom(c);
        }
        g->input[g->n_input++] = entry;
    }
    return MQ_OK;
}

/* A Constant node's `value` tensor when that is its form and the tensor is sound, else NULL. */
static Onnx__AttributeProto *constant_value_attr(const Onnx__NodeProto *node)
{
    if (node->n_attribute != 1)
        return NULL;
    Onnx__AttributeProto *attr = node->attribute[0];
    if (strcmp(mq_str(attr->name), "value") != 0 || !attr->t)
        return NULL;
    struct mq_error ignored;
    if (mq_tensor_proto_validate(attr->t, "Constant value", &ignored))
        return NULL;
    return attr;
}

/* Constant node n whose output is no graph output: its tensor becomes an initializer. */
static int constant_to_initializer(struct canon *c, struct scope *s, size_t n)
{
    Onnx__NodeProto *node = s->graph->node[n];
    if (node->n_output != 1 || !*mq_str(node->output[0]) ||
        mq_strmap_get(s->outputs, node->output[0]) >= 0)
        return 0;
    Onnx__AttributeProto *attr = constant_value_attr(node);
    Onnx__TensorProto *t = NULL;
    if (attr) {
        char *name = strdup(node->output[0]);
        if (!name)
            return oom(c);
        t = attr->t;
        attr->t = NULL;
        free(t->name);
        t->name = name;
    } else {
        /* value_float(s), value_int(s): the interpreter's Constant kernel decodes them */
        int rc = mq_graph_fold_node(c->model, node, NULL, 0, c->max_bytes, NULL, &t, c->err);
        if (rc)
            return rc < 0 ? rc : 0;
    }
    mq_graph_remove_node(s->graph, n);
    c->counts.constants++;
    return add_initializer(c, s, t) ? MQ_ERR : 1;
}

/* Identity node n whose output is no graph output: its readers read its input instead. */
static int remove_identity(struct canon *c, struct scope *s, size_t n)
{
    Onnx__NodeProto *node = s->graph->node[n];
    if (node->n_input != 1 || node->n_output != 1 || !*mq_str(node->input[0]) ||
        !*mq_str(node->output[0]) || mq_strmap_get(s->outputs, node->output[0]) >= 0)
        return 0;
    const char *from = node->output[0], *to = node->input[0];
    if (!mq_graph_rename_is_safe(s->graph, from, to))
        return 0;
    if (mq_strmap_put(s->removed, from, 1))
        return oom(c);
    mq_strmap_del(s->others, from);
    /* The Identity itself reads `to`, never `from`: renaming leaves it as it is. */
    if (mq_graph_rename_reads(s->graph, from, to))
        return oom(c);
    mq_graph_remove_node(s->graph, n);
    c->counts.identities++;
    return 1;
}

/*
 * Whether every reader of node's outputs, in its graph, takes them where the caller wants a
 * constant; an output read by a subgraph or returned by the graph keeps the node.
 */
static int expanding_allowed(const Onnx__NodeProto *node, void *user)
{
    struct canon *c = user;
    const Onnx__GraphProto *g = c->folding_in->graph;
    int readers = 0;
    for (size_t o = 0; o < node->n_output; o++) {
        const char *name = mq_str(node->output[o]);
        if (!*name)
            continue;
        if (mq_strmap_get(c->folding_in->outputs, name) >= 0)
            return 0;
        for (size_t n = 0; n < g->n_node; n++) {
            const Onnx__NodeProto *r = g->node[n];
            for (size_t i = 0; i < r->n_input; i++)
                if (strcmp(mq_str(r->input[i]), name) == 0) {
                    if (mq_node_has_subgraph(r) ||
                        !c->options->wants_constant(r, i, c->options->wants_constant_user))
                        return 0;
                    readers++;
                }
        }
    }
    return readers > 0;
}

/* Node n with constant inputs only: run it, its outputs become initializers. */
static int fold(struct canon *c, struct scope *s, size_t n)
{
    Onnx__NodeProto *node = s->graph->node[n];
    const char *op = mq_str(node->op_type);
    if (mq_node_has_subgraph(node) || mq_str_in_list(nondeterministic_ops, op) || mq_node_is_op(node, "Identity") ||
        (mq_node_is_op(node, "DequantizeLinear") && !c->fold_dequantize))
        return 0;
    size_t n_graph_outputs = 0, n_named = 0;
    for (size_t o = 0; o < node->n_output; o++) {
        n_named += *mq_str(node->output[o]) != 0;
        n_graph_outputs += mq_strmap_get(s->outputs, mq_str(node->output[o])) >= 0;
    }
    if (!n_named || n_graph_outputs > 1)
        return 0;

    size_t n_outputs = node->n_output;
    Onnx__TensorProto **inputs = calloc(node->n_input + 1, sizeof *inputs);
    Onnx__TensorProto **outputs = calloc(node->n_output + 1, sizeof *outputs);
    Onnx__TensorProto *stand_in = NULL;
    size_t n_inputs = 0;
    int rc = 0;
    if (!inputs || !outputs) {
        rc = oom(c);
        goto done;
    }
    for (size_t i = 0; i < node->n_input; i++) {
        const char *name = mq_str(node->input[i]);
        if (!*name)
            continue;
        Onnx__TensorProto *t = find_constant(s, name);
        if (!t && i == 0 && !stand_in && mq_node_is_onnx(node) && mq_str_in_list(shape_only_ops, op)) {
            const Onnx__ValueInfoProto *input = find_main_input(s, name);
            if (input)
                t = stand_in = static_shape_stand_in(input, c->max_bytes);
        }
        if (!t)
            goto done; /* not constant: nothing to fold */
        int seen = 0;
        for (size_t k = 0; k < n_inputs; k++)
            seen |= strcmp(mq_str(inputs[k]->name), name) == 0;
        if (!seen)
            inputs[n_inputs++] = t;
    }
    struct mq_graph_fold_expanding expanding = {expanding_allowed, c};
    c->folding_in = s;
    rc = mq_graph_fold_node(c->model, node, inputs, n_inputs, c->max_bytes,
                            c->options && c->options->wants_constant ? &expanding : NULL, outputs,
                            c->err);
    if (rc) {
        rc = rc < 0 ? rc : 0;
        goto done;
    }
    /* An output the graph returns stays produced by a node: a Constant in this node's place. */
    Onnx__NodeProto *replacement = NULL;
    for (size_t o = 0; o < node->n_output; o++)
        if (outputs[o] && mq_strmap_get(s->outputs, mq_str(outputs[o]->name)) >= 0) {
            replacement = mq_graph_new_constant_node(outputs[o], mq_str(node->name));
            outputs[o] = NULL;
            if (!replacement) {
                rc = oom(c);
                goto done;
            }
        }
    for (size_t o = 0; o < node->n_output && rc >= 0; o++)
        if (outputs[o]) {
            rc = add_initializer(c, s, outputs[o]);
            outputs[o] = NULL;
        }
    if (rc < 0) {
        if (replacement)
            onnx__node_proto__free_unpacked(replacement, NULL);
        goto done;
    }
    if (replacement) {
        onnx__node_proto__free_unpacked(node, NULL);
        s->graph->node[n] = replacement;
    } else {
        mq_graph_remove_node(s->graph, n);
    }
    c->counts.folded++;
    rc = 1;
done:
    if (outputs)
        for (size_t o = 0; o < n_outputs; o++) /* node may be freed by now */
            if (outputs[o])
                onnx__tensor_proto__free_unpacked(outputs[o], NULL);
    if (stand_in)
        onnx__tensor_proto__free_unpacked(stand_in, NULL);
    free(inputs);
    free(outputs);
    return rc;
}

static void scope_free(struct scope *s);
static int scope_init(struct canon *c, struct scope *s, Onnx__GraphProto *g,
                      const struct scope *parent);

/* An If whose condition is a constant: the branch it takes replaces it. */
static int inline_if(struct canon *c, struct scope *s, size_t n)
{
    Onnx__NodeProto *node = s->graph->node[n];
    if (node->n_input != 1)
        return 0;
    Onnx__TensorProto *cond = find_constant(s, mq_str(node->input[0]));
    struct mq_tensor value = {0};
    struct mq_error ignored;
    if (!cond || mq_tensor_from_proto(cond, "If condition", &value, &ignored))
        return 0;
    int take_then = value.count == 1 && value.dtype == MQ_DTYPE_BOOL && *(uint8_t *)value.data;
    int known = value.count == 1 && value.dtype == MQ_DTYPE_BOOL;
    mq_tensor_free(&value);
    if (!known)
        return 0;
    const Onnx__GraphProto *outer[MQ_MAX_SUBGRAPH_DEPTH + 1];
    int n_outer = 0;
    for (const struct scope *p = s->parent; p && n_outer < MQ_MAX_SUBGRAPH_DEPTH + 1; p = p->parent)
        outer[n_outer++] = p->graph;
    int rc = mq_graph_inline_if(s->graph, n, take_then, outer, n_outer);
    if (rc < 0)
        return oom(c);
    if (rc == 0)
        return 0;
    c->counts.branches_inlined++;
    /* the graph gained names and initializers: index them again */
    struct mq_strmap *removed = s->removed;
    s->removed = NULL;
    scope_free(s);
    rc = scope_init(c, s, s->graph, s->parent);
    mq_strmap_free(s->removed);
    s->removed = removed;
    return rc < 0 ? rc : 1;
}

/* Visits node n: 1 when it was removed or replaced, 0 when left, negative on error. */
static int visit(struct canon *c, struct scope *s, size_t n)
{
    Onnx__NodeProto *node = s->graph->node[n];
    if (mq_node_is_op(node, "If"))
        return inline_if(c, s, n);
    if (mq_node_is_op(node, "Constant"))
        return constant_to_initializer(c, s, n);
    int aliased = mq_graph_rewrite_alias(node);
    if (aliased < 0)
        return oom(c);
    c->counts.aliases += aliased;
    /* A rewritten node stays in its slot: returning 1 has it visited again as what it is now. */
    int r = mq_node_is_op(node, "Identity") ? remove_identity(c, s, n) : fold(c, s, n);
    return r ? r : aliased;
}

static int canonicalize_graph(struct canon *c, Onnx__GraphProto *g, const struct scope *parent,
                              int depth);

struct sub_walk {
    struct canon *c;
    const struct scope *scope;
    int depth;
};

static int walk_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    struct sub_walk *w = user;
    return canonicalize_graph(w->c, sub, w->scope, w->depth);
}

/* Every name read in g's nodes and outputs and, over-approximating, anywhere in its subgraphs. */
static int collect_reads(Onnx__GraphProto *g, const char *attr_name, void *user)
{
    struct mq_strmap *reads = user;
    for (size_t o = 0; o < g->n_output; o++)
        if (mq_strmap_put(reads, mq_str(g->output[o]->name), 1))
            return -1;
    for (size_t n = 0; n < g->n_node; n++) {
        Onnx__NodeProto *node = g->node[n];
        for (size_t i = 0; i < node->n_input; i++)
            if (mq_strmap_put(reads, mq_str(node->input[i]), 1))
                return -1;
        if (mq_graph_each_subgraph(node, collect_reads, reads))
            return -1;
    }
    return 0;
}

/* Drops initializers nobody reads; in the main graph their graph input entry goes with them. */
static int drop_unread(struct canon *c, struct scope *s)
{
    Onnx__GraphProto *g = s->graph;
    struct mq_strmap *reads = mq_strmap_new(), *dropped = mq_strmap_new();
    if (!reads || !dropped || collect_reads(g, NULL, reads)) {
        mq_strmap_free(reads);
        mq_strmap_free(dropped);
        return oom(c);
    }
    size_t w = 0;
    int rc = MQ_OK;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        if (mq_strmap_get(reads, mq_str(t->name)) >= 0) {
            g->initializer[w++] = t;
            continue;
        }
        if (s->is_main && mq_strmap_put(dropped, mq_str(t->name), 1))
            rc = oom(c);
        onnx__tensor_proto__free_unpacked(t, NULL);
        c->counts.initializers_dropped++;
    }
    g->n_initializer = w;
    w = 0;
    for (size_t i = 0; i < g->n_input; i++) {
        if (mq_strmap_get(dropped, mq_str(g->input[i]->name)) >= 0)
            onnx__value_info_proto__free_unpacked(g->input[i], NULL);
        else
            g->input[w++] = g->input[i];
    }
    g->n_input = w;
    /* value_info of removed Identity outputs would describe names that no longer exist */
    w = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        if (mq_strmap_get(s->removed, mq_str(g->value_info[i]->name)) >= 0)
            onnx__value_info_proto__free_unpacked(g->value_info[i], NULL);
        else
            g->value_info[w++] = g->value_info[i];
    }
    g->n_value_info = w;
    mq_strmap_free(reads);
    mq_strmap_free(dropped);
    return rc;
}

static int scope_init(struct canon *c, struct scope *s, Onnx__GraphProto *g,
                      const struct scope *parent)
{
    memset(s, 0, sizeof *s);
    s->parent = parent;
    s->graph = g;
    s->is_main = parent == NULL;
    s->constants = mq_strmap_new();
    s->others = mq_strmap_new();
    s->outputs = mq_strmap_new();
    s->removed = mq_strmap_new();
    if (!s->constants || !s->others || !s->outputs || !s->removed)
        return oom(c);
    for (size_t i = 0; i < g->n_initializer; i++)
        if (mq_strmap_put(s->constants, mq_str(g->initializer[i]->name), (int)i))
            return oom(c);
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = mq_str(g->input[i]->name);
        /* In the main graph an initializer of an input's name is its default value, a constant
           (as the interpreter treats it); a subgraph's formal input shadows its initializer. */
        if (s->is_main && mq_strmap_get(s->constants, name) >= 0)
            continue;
        mq_strmap_del(s->constants, name);
        if (mq_strmap_put(s->others, name, OTHER_INPUT))
            return oom(c);
    }
    for (size_t n = 0; n < g->n_node; n++)
        for (size_t o = 0; o < g->node[n]->n_output; o++)
            if (*mq_str(g->node[n]->output[o]) &&
                mq_strmap_put(s->others, g->node[n]->output[o], OTHER_NODE_OUTPUT))
                return oom(c);
    for (size_t o = 0; o < g->n_output; o++)
        if (mq_strmap_put(s->outputs, mq_str(g->output[o]->name), 1))
            return oom(c);
    return MQ_OK;
}

static void scope_free(struct scope *s)
{
    mq_strmap_free(s->constants);
    mq_strmap_free(s->others);
    mq_strmap_free(s->outputs);
    mq_strmap_free(s->removed);
}

static int canonicalize_graph(struct canon *c, Onnx__GraphProto *g, const struct scope *parent,
                              int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(c->err, "subgraphs nested deeper than %d levels", MQ_MAX_SUBGRAPH_DEPTH);
    struct scope s;
    int rc = scope_init(c, &s, g, parent);
    /* Repeated until nothing changes, so an unsorted graph folds as fully as a sorted one. */
    for (int changed = 1; rc == MQ_OK && changed;) {
        changed = 0;
        for (size_t n = 0; rc == MQ_OK && n < g->n_node;) {
            int r = visit(c, &s, n);
            if (r < 0)
                rc = r;
            else if (r > 0)
                changed = 1;
            if (r == 0)
                n++; /* else look at slot n again: the next node, or the Constant that stays */
        }
    }
    struct sub_walk w = {c, &s, depth + 1};
    for (size_t n = 0; rc == MQ_OK && n < g->n_node; n++) {
        int r = mq_graph_each_subgraph(g->node[n], walk_sub, &w);
        if (r) {
            rc = r < 0 ? r : MQ_ERR;
            mq_error_prefix(c->err, "node '%s' (%s): ", mq_str(g->node[n]->name),
                            mq_str(g->node[n]->op_type));
        }
    }
    if (rc == MQ_OK)
        rc = drop_unread(c, &s);
    scope_free(&s);
    return rc;
}

/* Adds the nodes of g and its subgraphs to *(int *)user. */
static int count_nodes(Onnx__GraphProto *g, const char *attr_name, void *user)
{
    *(int *)user += (int)g->n_node;
    for (size_t n = 0; n < g->n_node; n++)
        mq_graph_each_subgraph(g->node[n], count_nodes, user);
    return 0;
}

static int has_quantize(Onnx__GraphProto *g, const char *attr_name, void *user)
{
    (void)user;
    for (size_t n = 0; n < g->n_node; n++) {
        if (strcmp(mq_str(g->node[n]->op_type), "QuantizeLinear") == 0)
            return 1;
        if (mq_graph_each_subgraph(g->node[n], has_quantize, NULL))
            return 1;
    }
    return 0;
}

int mq_graph_canonicalize(Onnx__ModelProto *model, const struct mq_graph_canonical_options *options,
                          struct mq_graph_canonical_counts *counts, struct mq_error *err)
{
    struct canon c;
    memset(&c, 0, sizeof c);
    c.model = model;
    c.max_bytes = options && options->fold_max_bytes ? options->fold_max_bytes
                                                     : MQ_GRAPH_FOLD_MAX_BYTES;
    c.options = options;
    c.err = err;
    if (counts)
        memset(counts, 0, sizeof *counts);
    if (!model->graph)
        return MQ_OK;
    c.fold_dequantize = !has_quantize(model->graph, NULL, NULL);
    c.initializers_are_inputs = model->has_ir_version && model->ir_version < 4;
    count_nodes(model->graph, NULL, &c.counts.nodes_before);
    int rc = canonicalize_graph(&c, model->graph, NULL, 0);
    count_nodes(model->graph, NULL, &c.counts.nodes_after);
    if (counts)
        *counts = c.counts;
    return rc;
}
