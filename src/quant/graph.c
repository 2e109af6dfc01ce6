/*
 * The graph index the quantizer works on: producers, consumers, initializers, element types, the
 * set of model names and the topological sort (see graph.h).
 */
#include "quant/graph.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "graph/edit.h"
#include "util/strmap.h"
#include "util/toposort.h"
#include "core/tensor.h"

/* ------------------------------------------------------------ attributes */

const Onnx__AttributeProto *mq_node_attr(const Onnx__NodeProto *node, const char *name)
{
    for (size_t i = 0; i < node->n_attribute; i++)
        if (strcmp(mq_str(node->attribute[i]->name), name) == 0)
            return node->attribute[i];
    return NULL;
}

long long mq_node_attr_int(const Onnx__NodeProto *node, const char *name, long long fallback)
{
    const Onnx__AttributeProto *a = mq_node_attr(node, name);
    return a && a->has_i ? a->i : fallback;
}

/* n integers of an INTS attribute, `fallback` each when absent; 0 when it holds another count. */
static int attr_ints(const Onnx__NodeProto *node, const char *name, int64_t *out, int n,
                     int64_t fallback)
{
    const Onnx__AttributeProto *a = mq_node_attr(node, name);
    for (int i = 0; i < n; i++)
        out[i] = fallback;
    if (!a)
        return 1;
    if ((int)a->n_ints != n)
        return 0;
    for (int i = 0; i < n; i++)
        out[i] = a->ints[i];
    return 1;
}

int mq_conv_attrs_read(const Onnx__NodeProto *node, int spatial, struct mq_conv_attrs *out)
{
    int k = spatial;
    if (k < 1 || k > MQ_CONV_MAX_SPATIAL || !attr_ints(node, "strides", out->strides, k, 1) ||
        !attr_ints(node, "dilations", out->dilations, k, 1) ||
        !attr_ints(node, "pads", out->pads, 2 * k, 0))
        return 0;
    for (int d = 0; d < k; d++)
        if (out->strides[d] < 1 || out->dilations[d] < 1 || out->pads[d] < 0 ||
            out->pads[k + d] < 0)
            return 0;
    char pad[32];
    mq_node_attr_string(node, "auto_pad", pad, sizeof pad);
    out->auto_pad = !pad[0] || strcmp(pad, "NOTSET") == 0 ? 0
                    : strcmp(pad, "VALID") == 0           ? 1
                    : strcmp(pad, "SAME_UPPER") == 0      ? 2
                    : strcmp(pad, "SAME_LOWER") == 0      ? 3
                                                          : -1;
    return out->auto_pad >= 0;
}

int mq_conv_output_dim(int auto_pad, int64_t in, int64_t kernel, int64_t stride,
                       int64_t dilation, int64_t pad_begin, int64_t pad_end, int64_t *out,
                       int64_t *pad)
{
    int64_t span = dilation * (kernel - 1) + 1;
    if (auto_pad >= 2) {
        int64_t o = (in + stride - 1) / stride, total = (o - 1) * stride + span - in;
        total = total < 0 ? 0 : total;
        *pad = auto_pad == 2 ? total / 2 : total - total / 2;
        *out = o;
        return o > 0;
    }
    if (auto_pad == 1)
        pad_begin = pad_end = 0;
    int64_t room = in + pad_begin + pad_end - span;
    if (room < 0)
        return 0;
    *out = room / stride + 1;
    *pad = pad_begin;
    return 1;
}

float mq_node_attr_float(const Onnx__NodeProto *node, const char *name, float fallback)
{
    const Onnx__AttributeProto *a = mq_node_attr(node, name);
    return a && a->has_f ? a->f : fallback;
}

const char *mq_node_attr_string(const Onnx__NodeProto *node, const char *name, char *buf,
                                size_t size)
{
    const Onnx__AttributeProto *a = mq_node_attr(node, name);
    size_t n = a && a->has_s ? a->s.len : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(buf, a->s.data, n);
    buf[n] = '\0';
    return buf;
}

struct reads_walk {
    struct mq_strmap *refs;
    int depth;
};

static int collect_reads(struct mq_strmap *refs, const Onnx__GraphProto *g, int depth);

static int collect_reads_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    const struct reads_walk *w = user;
    return collect_reads(w->refs, sub, w->depth + 1);
}

static int collect_reads(struct mq_strmap *refs, const Onnx__GraphProto *g, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return -1;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        for (size_t k = 0; k < node->n_input; k++)
            if (node->input[k] && *node->input[k] && mq_strmap_put(refs, node->input[k], 1))
                return -1;
        struct reads_walk w = {refs, depth};
        if (mq_graph_each_subgraph(node, collect_reads_sub, &w))
            return -1;
    }
    for (size_t i = 0; i < g->n_output; i++)
        if (mq_strmap_put(refs, mq_str(g->output[i]->name), 1))
            return -1;
    return 0;
}

int mq_graph_collect_reads(const Onnx__GraphProto *g, struct mq_strmap *refs)
{
    return collect_reads(refs, g, 0);
}

/* ------------------------------------------------------------------ names */

static int names_add_str(struct mq_names *names, const char *s)
{
    if (!s || !*s)
        return 0;
    return mq_strmap_put(names->map, s, 1);
}

static int names_graph(struct mq_names *names, const Onnx__GraphProto *g, int depth);

static int names_subgraph(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    struct {
        struct mq_names *names;
        int depth;
    } *ctx = user;
    return names_graph(ctx->names, sub, ctx->depth + 1);
}

static int names_graph(struct mq_names *names, const Onnx__GraphProto *g, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return -2;
    for (size_t i = 0; i < g->n_input; i++)
        if (names_add_str(names, g->input[i]->name))
            return -1;
    for (size_t i = 0; i < g->n_output; i++)
        if (names_add_str(names, g->output[i]->name))
            return -1;
    for (size_t i = 0; i < g->n_value_info; i++)
        if (names_add_str(names, g->value_info[i]->name))
            return -1;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (names_add_str(names, g->initializer[i]->name))
            return -1;
    for (size_t i = 0; i < g->n_sparse_initializer; i++)
        if (g->sparse_initializer[i]->values &&
            names_add_str(names, g->sparse_initializer[i]->values->name))
            return -1;
    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        if (names_add_str(names, node->name))
            return -1;
        for (size_t i = 0; i < node->n_input; i++)
            if (names_add_str(names, node->input[i]))
                return -1;
        for (size_t i = 0; i < node->n_output; i++)
            if (names_add_str(names, node->output[i]))
                return -1;
        struct {
            struct mq_names *names;
            int depth;
        } ctx = {names, depth};
        int rc = mq_graph_each_subgraph(node, names_subgraph, &ctx);
        if (rc)
            return rc;
    }
    return 0;
}

int mq_names_collect(const Onnx__ModelProto *model, struct mq_names *names, struct mq_error *err)
{
    names->map = mq_strmap_new();
    if (!names->map)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory collecting names");
    int rc = model->graph ? names_graph(names, model->graph, 0) : 0;
    if (rc == -2) {
        mq_names_free(names);
        return mq_error_set(err, "subgraphs nest deeper than %d levels", MQ_MAX_SUBGRAPH_DEPTH);
    }
    if (rc) {
        mq_names_free(names);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory collecting names");
    }
    return MQ_OK;
}

void mq_names_free(struct mq_names *names)
{
    mq_strmap_free(names->map);
    names->map = NULL;
}

int mq_names_add(struct mq_names *names, const char *name)
{
    return mq_strmap_put(names->map, name, 1);
}

char *mq_names_fresh(struct mq_names *names, const char *base)
{
    size_t len = strlen(base);
    char *s = malloc(len + 24);
    if (!s)
        return NULL;
    memcpy(s, base, len + 1);
    for (unsigned long k = 1; mq_strmap_get(names->map, s) >= 0; k++)
        snprintf(s + len, 24, "_%lu", k);
    if (mq_strmap_put(names->map, s, 1)) {
        free(s);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------- outer names of subgraphs */

struct outer_refs {
    char **names;
    int n, cap;
    int overflow;     /* nesting too deep */
    int oom;
};

static void refs_add(struct outer_refs *r, const char *name)
{
    if (!name || !*name || r->oom)
        return;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        char **names = realloc(r->names, (size_t)cap * sizeof *names);
        if (!names) {
            r->oom = 1;
            return;
        }
        r->names = names;
        r->cap = cap;
    }
    r->names[r->n++] = (char *)name;
}

static void refs_graph(struct outer_refs *r, const Onnx__GraphProto *g, int depth);

static int refs_subgraph(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    struct {
        struct outer_refs *r;
        int depth;
    } *ctx = user;
    refs_graph(ctx->r, sub, ctx->depth + 1);
    return 0;
}

/*
 * Every name a subgraph reads, at any depth.  Names it defines itself are
 * included too: over-approximating only adds dependencies on names that no
 * node of the enclosing graph produces, which changes nothing.
 */
static void refs_graph(struct outer_refs *r, const Onnx__GraphProto *g, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH) {
        r->overflow = 1;
        return;
    }
    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        for (size_t i = 0; i < node->n_input; i++)
            refs_add(r, node->input[i]);
        struct {
            struct outer_refs *r;
            int depth;
        } ctx = {r, depth};
        mq_graph_each_subgraph(node, refs_subgraph, &ctx);
    }
    for (size_t i = 0; i < g->n_output; i++)
        refs_add(r, g->output[i]->name);
}

static int collect_refs_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    refs_graph(user, sub, 1);
    return 0;
}

static int node_outer_refs(const Onnx__NodeProto *node, struct outer_refs *r,
                           struct mq_error *err)
{
    memset(r, 0, sizeof *r);
    mq_graph_each_subgraph(node, collect_refs_sub, r);
    if (r->overflow) {
        free(r->names);
        return mq_error_set(err, "node '%s': subgraphs nest deeper than %d levels",
                            mq_str(node->name), MQ_MAX_SUBGRAPH_DEPTH);
    }
    if (r->oom) {
        free(r->names);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    return MQ_OK;
}

/* ------------------------------------------------------------- toposort */

int mq_graph_toposort(Onnx__GraphProto *graph, struct mq_error *err)
{
    int n = (int)graph->n_node;
    if (n <= 1)
        return MQ_OK;
    int rc = MQ_OK;
    struct mq_strmap *producer = mq_strmap_new();
    int *indeg = calloc((size_t)n, sizeof *indeg);
    int *order = calloc((size_t)n, sizeof *order);
    /* Edges as (from, to) pairs first, then grouped. */
    int *ef = NULL, *et = NULL;
    size_t ne = 0, ce = 0;
    int *start = calloc((size_t)n + 1, sizeof *start), *pred = NULL, *n_deps = NULL;
    int **deps = NULL;
    if (!producer || !indeg || !order || !start) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory sorting the graph");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const Onnx__NodeProto *node = graph->node[i];
        for (size_t o = 0; o < node->n_output; o++) {
            const char *name = node->output[o];
            if (!name || !*name)
                continue;
            int prev = mq_strmap_get(producer, name);
            if (prev >= 0) {
                rc = mq_error_set(err, "tensor '%s' is produced by two nodes ('%s' and '%s')",
                                  name, mq_str(graph->node[prev]->name), mq_str(node->name));
                goto done;
            }
            if (mq_strmap_put(producer, name, i)) {
                rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory sorting the graph");
                goto done;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        const Onnx__NodeProto *node = graph->node[i];
        struct outer_refs refs;
        rc = node_outer_refs(node, &refs, err);
        if (rc)
            goto done;
        size_t total = node->n_input + (size_t)refs.n;
        for (size_t k = 0; k < total; k++) {
            const char *name = k < node->n_input ? node->input[k] : refs.names[k - node->n_input];
            if (!name || !*name)
                continue;
            int p = mq_strmap_get(producer, name);
            if (p < 0 || p == i)
                continue;
            if (ne == ce) {
                size_t c = ce ? ce * 2 : 256;
                int *nf = realloc(ef, c * sizeof *nf);
                if (nf)
                    ef = nf;
                int *nt = nf ? realloc(et, c * sizeof *nt) : NULL;
                if (!nf || !nt) {
                    free(refs.names);
                    rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory sorting the graph");
                    goto done;
                }
                et = nt;
                ce = c;
            }
            ef[ne] = p;
            et[ne] = i;
            ne++;
        }
        free(refs.names);
    }
    /* Each node's producers, grouped: deps[i] = pred + start[i]. */
    pred = malloc((ne ? ne : 1) * sizeof *pred);
    deps = malloc((size_t)n * sizeof *deps);
    n_deps = calloc((size_t)n, sizeof *n_deps);
    if (!pred || !deps || !n_deps) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory sorting the graph");
        goto done;
    }
    for (size_t e = 0; e < ne; e++)
        start[et[e] + 1]++;
    for (int i = 0; i < n; i++)
        start[i + 1] += start[i];
    for (size_t e = 0; e < ne; e++)
        pred[start[et[e]] + n_deps[et[e]]++] = ef[e];
    for (int i = 0; i < n; i++)
        deps[i] = pred + start[i];
    int k = mq_toposort(n, deps, n_deps, order, indeg);
    if (k < 0) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory sorting the graph");
        goto done;
    }
    if (k < n) {
        for (int i = 0; i < n; i++)
            if (indeg[i] > 0) {
                rc = mq_error_set(err, "the graph has a cycle through node '%s' (%s)",
                                  mq_str(graph->node[i]->name), mq_str(graph->node[i]->op_type));
                goto done;
            }
    }
    {
        Onnx__NodeProto **sorted = malloc((size_t)n * sizeof *sorted);
        if (!sorted) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory sorting the graph");
            goto done;
        }
        for (int i = 0; i < n; i++)
            sorted[i] = graph->node[order[i]];
        memcpy(graph->node, sorted, (size_t)n * sizeof *sorted);
        free(sorted);
    }
done:
    mq_strmap_free(producer);
    free(indeg);
    free(order);
    free(ef);
    free(et);
    free(start);
    free(pred);
    free(deps);
    free(n_deps);
    return rc;
}

/* ------------------------------------------------------------ the index */

struct mq_tensor_info *mq_graph_tensor(const struct mq_graph_index *index, const char *name)
{
    if (!name)
        return NULL; /* an absent input: no tensor */
    int i = mq_strmap_get(index->by_name, name);
    return i >= 0 ? &index->tensors[i] : NULL;
}

struct mq_tensor_info *mq_graph_tensor_add(struct mq_graph_index *index, const char *name)
{
    struct mq_tensor_info *t = mq_graph_tensor(index, name);
    if (t)
        return t;
    if (index->n_tensors == index->cap_tensors) {
        int cap = index->cap_tensors ? index->cap_tensors * 2 : 64;
        struct mq_tensor_info *v = realloc(index->tensors, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        index->tensors = v;
        index->cap_tensors = cap;
    }
    t = &index->tensors[index->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->producer = -1;
    t->initializer = -1;
    if (!t->name || mq_strmap_put(index->by_name, name, index->n_tensors)) {
        free(t->name);
        return NULL;
    }
    index->n_tensors++;
    return t;
}

int mq_graph_add_consumer(struct mq_graph_index *index, const char *name, int node, int implicit)
{
    struct mq_tensor_info *t = mq_graph_tensor_add(index, name);
    if (!t)
        return -1;
    if (t->n_consumers == t->cap_consumers) {
        int cap = t->cap_consumers ? t->cap_consumers * 2 : 4;
        struct mq_consumer *c = realloc(t->consumers, (size_t)cap * sizeof *c);
        if (!c)
            return -1;
        t->consumers = c;
        t->cap_consumers = cap;
    }
    t->consumers[t->n_consumers++] = (struct mq_consumer){node, implicit};
    return 0;
}

Onnx__TensorProto *mq_graph_find_initializer(const struct mq_graph_index *index, const char *name)
{
    for (; index; index = index->parent) {
        const struct mq_tensor_info *t = mq_graph_tensor(index, name);
        if (t && t->initializer >= 0)
            return index->graph->initializer[t->initializer];
        /* A graph input or a node output of the same name shadows outer initializers. */
        if (t && (t->producer >= 0 || t->graph_input))
            return NULL;
    }
    return NULL;
}

int mq_graph_elem_type(const struct mq_graph_index *index, const char *name)
{
    for (; index; index = index->parent) {
        const struct mq_tensor_info *t = mq_graph_tensor(index, name);
        if (t && t->elem_type)
            return t->elem_type;
        if (t && (t->producer >= 0 || t->graph_input || t->initializer >= 0))
            return 0;
    }
    return 0;
}

static int value_info_type(const Onnx__ValueInfoProto *vi)
{
    if (vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        vi->type->tensor_type && vi->type->tensor_type->has_elem_type)
        return vi->type->tensor_type->elem_type;
    return 0;
}

/* Ops whose outputs all have the element type of their first input. */
static const char *const same_as_input0[] = {
    "Abs", "Acos", "Acosh", "Add", "Asin", "Asinh", "Atan", "Atanh", "AveragePool",
    "BatchNormalization", "Ceil", "Celu", "Clip", "Compress", "Concat", "Conv",
    "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "Div", "Dropout", "Einsum", "Elu",
    "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gelu",
    "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "GroupNormalization",
    "HardSigmoid", "HardSwish", "Hardmax", "Identity", "InstanceNormalization", "LRN",
    "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax", "LpNormalization", "LpPool",
    "MatMul", "Max", "MaxPool", "Mean", "MeanVarianceNormalization", "Min", "Mish", "Mod", "Mul",
    "Neg", "PRelu", "Pad", "Pow", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Resize", "Round", "ScatterElements", "ScatterND",
    "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Slice", "Softmax", "Softplus",
    "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh",
    "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample",
};

/* Ops whose outputs are always of one type. */
static const struct {
    const char *op;
    int type;
} fixed_type[] = {
    {"Shape", MQ_DTYPE_INT64},   {"Size", MQ_DTYPE_INT64},     {"ArgMax", MQ_DTYPE_INT64},
    {"ArgMin", MQ_DTYPE_INT64},  {"NonZero", MQ_DTYPE_INT64},  {"Equal", MQ_DTYPE_BOOL},
    {"Less", MQ_DTYPE_BOOL},     {"LessOrEqual", MQ_DTYPE_BOOL}, {"Greater", MQ_DTYPE_BOOL},
    {"GreaterOrEqual", MQ_DTYPE_BOOL}, {"And", MQ_DTYPE_BOOL}, {"Or", MQ_DTYPE_BOOL},
    {"Xor", MQ_DTYPE_BOOL},      {"Not", MQ_DTYPE_BOOL},       {"IsNaN", MQ_DTYPE_BOOL},
    {"IsInf", MQ_DTYPE_BOOL},    {"DequantizeLinear", MQ_DTYPE_FLOAT},
};

static int infer_output_type(const struct mq_graph_index *index, const Onnx__NodeProto *node,
                             size_t o)
{
    if (!mq_node_is_onnx(node))
        return 0;
    const char *op = mq_str(node->op_type);
    const char *in0 = node->n_input > 0 ? node->input[0] : NULL;
    if (strcmp(op, "Cast") == 0)
        return (int)mq_node_attr_int(node, "to", 0);
    if (strcmp(op, "CastLike") == 0)
        return node->n_input > 1 ? mq_graph_elem_type(index, node->input[1]) : 0;
    if (strcmp(op, "Where") == 0)
        return node->n_input > 1 ? mq_graph_elem_type(index, node->input[1]) : 0;
    if (strcmp(op, "QuantizeLinear") == 0)
        return node->n_input > 2 && *mq_str(node->input[2])
                   ? mq_graph_elem_type(index, node->input[2])
                   : MQ_DTYPE_UINT8;
    if (strcmp(op, "Constant") == 0) {
        const Onnx__AttributeProto *a = mq_node_attr(node, "value");
        if (a && a->t)
            return a->t->has_data_type ? a->t->data_type : 0;
        if (mq_node_attr(node, "value_float") || mq_node_attr(node, "value_floats"))
            return MQ_DTYPE_FLOAT;
        if (mq_node_attr(node, "value_int") || mq_node_attr(node, "value_ints"))
            return MQ_DTYPE_INT64;
        return 0;
    }
    for (size_t i = 0; i < sizeof fixed_type / sizeof fixed_type[0]; i++)
        if (strcmp(op, fixed_type[i].op) == 0)
            return fixed_type[i].type;
    /* Second outputs that are indices or masks. */
    if (o > 0 && (strcmp(op, "MaxPool") == 0 || strcmp(op, "TopK") == 0))
        return MQ_DTYPE_INT64;
    if (o > 0 && strcmp(op, "Dropout") == 0)
        return MQ_DTYPE_BOOL;
    if (o > 0 && (strcmp(op, "BatchNormalization") == 0 ||
                  strcmp(op, "LayerNormalization") == 0))
        return 0;
    for (size_t i = 0; i < sizeof same_as_input0 / sizeof same_as_input0[0]; i++)
        if (strcmp(op, same_as_input0[i]) == 0)
            return in0 && *in0 ? mq_graph_elem_type(index, in0) : 0;
    return 0;
}

static int set_type(struct mq_graph_index *index, const char *name, int type)
{
    if (!name || !*name || !type)
        return 0;
    struct mq_tensor_info *t = mq_graph_tensor_add(index, name);
    if (!t)
        return -1;
    if (!t->elem_type)
        t->elem_type = type;
    return 0;
}

int mq_graph_index_build(Onnx__GraphProto *graph, const struct mq_graph_index *parent,
                         struct mq_graph_index *index, struct mq_error *err)
{
    memset(index, 0, sizeof *index);
    index->graph = graph;
    index->parent = parent;
    index->by_name = mq_strmap_new();
    if (!index->by_name)
        goto oom;
    for (size_t i = 0; i < graph->n_initializer; i++) {
        const Onnx__TensorProto *init = graph->initializer[i];
        struct mq_tensor_info *t = mq_graph_tensor_add(index, mq_str(init->name));
        if (!t)
            goto oom;
        t->initializer = (int)i;
        if (init->has_data_type)
            t->elem_type = init->data_type;
    }
    for (size_t i = 0; i < graph->n_input; i++) {
        struct mq_tensor_info *t = mq_graph_tensor_add(index, mq_str(graph->input[i]->name));
        if (!t)
            goto oom;
        t->graph_input = 1;
        if (!t->elem_type)
            t->elem_type = value_info_type(graph->input[i]);
    }
    for (size_t i = 0; i < graph->n_node; i++) {
        const Onnx__NodeProto *node = graph->node[i];
        for (size_t o = 0; o < node->n_output; o++) {
            const char *name = node->output[o];
            if (!name || !*name)
                continue;
            struct mq_tensor_info *t = mq_graph_tensor_add(index, name);
            if (!t)
                goto oom;
            t->producer = (int)i;
        }
    }
    for (size_t i = 0; i < graph->n_output; i++) {
        struct mq_tensor_info *t = mq_graph_tensor_add(index, mq_str(graph->output[i]->name));
        if (!t)
            goto oom;
        t->graph_output = 1;
        if (!t->elem_type)
            t->elem_type = value_info_type(graph->output[i]);
    }
    for (size_t i = 0; i < graph->n_value_info; i++) {
        const char *name = mq_str(graph->value_info[i]->name);
        if (*name && set_type(index, name, value_info_type(graph->value_info[i])))
            goto oom;
    }
    for (size_t i = 0; i < graph->n_node; i++) {
        const Onnx__NodeProto *node = graph->node[i];
        for (size_t k = 0; k < node->n_input; k++) {
            const char *name = node->input[k];
            if (!name || !*name)
                continue;
            /* A node reading one name twice (Mul(x, x)) is one consumer. */
            int dup = 0;
            for (size_t j = 0; j < k; j++)
                if (node->input[j] && strcmp(node->input[j], name) == 0)
                    dup = 1;
            if (!dup && mq_graph_add_consumer(index, name, (int)i, 0))
                goto oom;
        }
        struct outer_refs refs;
        int rc = node_outer_refs(node, &refs, err);
        if (rc) {
            mq_graph_index_free(index);
            return rc;
        }
        struct mq_strmap *seen = refs.n ? mq_strmap_new() : NULL;
        if (refs.n && !seen) {
            free(refs.names);
            goto oom;
        }
        for (int r = 0; r < refs.n; r++) {
            if (mq_strmap_get(seen, refs.names[r]) >= 0)
                continue;
            /* Only names this graph knows; the rest are the subgraph's own or further out. */
            struct mq_tensor_info *t = mq_graph_tensor(index, refs.names[r]);
            if (mq_strmap_put(seen, refs.names[r], 1) ||
                (t && mq_graph_add_consumer(index, refs.names[r], (int)i, 1))) {
                mq_strmap_free(seen);
                free(refs.names);
                goto oom;
            }
        }
        mq_strmap_free(seen);
        free(refs.names);
        for (size_t o = 0; o < node->n_output; o++) {
            if (!node->output[o] || !*node->output[o])
                continue;
            int type = infer_output_type(index, node, o);
            if (set_type(index, node->output[o], type))
                goto oom;
        }
    }
    return MQ_OK;
oom:
    mq_graph_index_free(index);
    return mq_error_code(err, MQ_ERR_MEMORY, "out of memory indexing the graph");
}

void mq_graph_index_free(struct mq_graph_index *index)
{
    for (int i = 0; i < index->n_tensors; i++) {
        free(index->tensors[i].name);
        free(index->tensors[i].consumers);
    }
    free(index->tensors);
    mq_strmap_free(index->by_name);
    memset(index, 0, sizeof *index);
}
