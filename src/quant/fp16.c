#include "quant/fp16.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/graph.h"
#include "util/glob.h"

/* Subgraphs nested deeper than this are refused (a corrupt model cannot blow the stack). */
#define MAX_DEPTH 32

/* ------------------------------------------------------------ what ops take */

enum op_kind {
    K_COMPUTE,  /* rounds its result: runs in float16 when allowed */
    K_NEUTRAL,  /* moves, selects or compares values: follows its inputs' precision */
    K_BLOCKED,  /* its schema or meaning rules float16 out */
};

/* Slot masks: bit k is input (output) k; bit 31 stands for slot 31 and every later one. */
#define ALL 0xFFFFFFFFu
#define NONE 0u

struct op_spec {
    const char *op;
    enum op_kind kind;
    unsigned data_inputs;  /* inputs of the float type T the node computes in */
    unsigned t_outputs;    /* outputs of type T */
    /* Opsets in which onnxruntime's CPU provider (x86-64, 1.30) has a float16 kernel:
       ort_since..ort_until inclusive (0: open end); ort_since 0: none at all. */
    int ort_since, ort_until;
};

/*
 * The onnxruntime columns were measured: a one-node float16 model per op and
 * opset (7 to 18), run with graph optimizations disabled, and the optimized
 * model checked for the Casts onnxruntime inserts around a node it can only
 * run in float32.  tests/e2e/fp16 repeats the check on every model it writes.
 */
static const struct op_spec op_specs[] = {
    /* data movement, selection, comparison */
    {"Reshape", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Transpose", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Flatten", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Squeeze", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Unsqueeze", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Concat", K_NEUTRAL, ALL, 0x1, 1, 0},
    {"Split", K_NEUTRAL, 0x1, ALL, 1, 0},
    {"Slice", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Gather", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"GatherElements", K_NEUTRAL, 0x1, 0x1, 11, 0},
    {"GatherND", K_NEUTRAL, 0x1, 0x1, 11, 0},
    {"ScatterND", K_NEUTRAL, 0x5, 0x1, 11, 0},
    {"ScatterElements", K_NEUTRAL, 0x5, 0x1, 11, 0},
    {"Expand", K_NEUTRAL, 0x1, 0x1, 8, 0},
    {"Identity", K_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Compress", K_NEUTRAL, 0x1, 0x1, 9, 0},
    {"ReverseSequence", K_NEUTRAL, 0x1, 0x1, 10, 0},
    {"Shape", K_NEUTRAL, 0x1, NONE, 1, 0},
    {"Dropout", K_NEUTRAL, 0x1, 0x1, 1, 11},
    {"Max", K_NEUTRAL, ALL, 0x1, 12, 0},
    {"Min", K_NEUTRAL, ALL, 0x1, 12, 0},
    {"Clip", K_NEUTRAL, ALL, 0x1, 12, 0},
    {"Round", K_NEUTRAL, 0x1, 0x1, 11, 0},
    {"Sign", K_NEUTRAL, 0x1, 0x1, 9, 0},
    {"IsNaN", K_NEUTRAL, 0x1, NONE, 9, 0},
    {"Tile", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"DepthToSpace", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"SpaceToDepth", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Pad", K_NEUTRAL, 0x5, 0x1, 0, 0},
    {"Relu", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"MaxPool", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"GlobalMaxPool", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"ReduceMax", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"ReduceMin", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Abs", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Neg", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Floor", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Ceil", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Where", K_NEUTRAL, 0x6, 0x1, 0, 0},
    {"TopK", K_NEUTRAL, 0x1, 0x1, 0, 0},
    {"ArgMax", K_NEUTRAL, 0x1, NONE, 0, 0},
    {"ArgMin", K_NEUTRAL, 0x1, NONE, 0, 0},
    {"Equal", K_NEUTRAL, 0x3, NONE, 0, 0},
    {"Less", K_NEUTRAL, 0x3, NONE, 0, 0},
    {"Greater", K_NEUTRAL, 0x3, NONE, 0, 0},
    {"LessOrEqual", K_NEUTRAL, 0x3, NONE, 0, 0},
    {"GreaterOrEqual", K_NEUTRAL, 0x3, NONE, 0, 0},
    {"Size", K_NEUTRAL, 0x1, NONE, 0, 0},
    {"Trilu", K_NEUTRAL, 0x1, 0x1, 0, 0},
    /* arithmetic */
    {"LayerNormalization", K_COMPUTE, 0x7, 0x1, 1, 0}, /* Mean and InvStdDev stay float (U) */
    {"Mod", K_COMPUTE, ALL, 0x1, 10, 0},
    {"Shrink", K_COMPUTE, 0x1, 0x1, 9, 0},
    {"Conv", K_COMPUTE, ALL, 0x1, 0, 0},
    {"ConvTranspose", K_COMPUTE, ALL, 0x1, 0, 0},
    {"MatMul", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Gemm", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Add", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Sub", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Mul", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Div", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Pow", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Sum", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Mean", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Sigmoid", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Tanh", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Exp", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Log", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Sqrt", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Reciprocal", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Erf", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Softmax", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"LogSoftmax", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Hardmax", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"LeakyRelu", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"PRelu", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Elu", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Selu", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"HardSigmoid", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"HardSwish", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Softplus", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Softsign", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ThresholdedRelu", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Mish", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Gelu", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"AveragePool", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"GlobalAveragePool", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"LpPool", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"GlobalLpPool", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"BatchNormalization", K_COMPUTE, ALL, ALL, 0, 0},
    {"InstanceNormalization", K_COMPUTE, ALL, 0x1, 0, 0},
    {"GroupNormalization", K_COMPUTE, ALL, 0x1, 0, 0},
    {"LRN", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"MeanVarianceNormalization", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"LpNormalization", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceMean", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceSum", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceProd", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceL1", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceL2", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceLogSum", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceLogSumExp", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceSumSquare", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Einsum", K_COMPUTE, ALL, 0x1, 0, 0},
    {"Sin", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Cos", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Tan", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Asin", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Acos", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Atan", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Sinh", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Cosh", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Asinh", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Acosh", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Atanh", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Det", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"GridSample", K_COMPUTE, 0x3, 0x1, 0, 0},
    {"RoiAlign", K_COMPUTE, 0x3, 0x1, 0, 0},
    /* roi and scales are float whatever the data is */
    {"Resize", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"Upsample", K_COMPUTE, 0x1, 0x1, 0, 0},
    {"RNN", K_COMPUTE, 0xEF, ALL, 0, 0},
    {"GRU", K_COMPUTE, 0xEF, ALL, 0, 0},
    {"LSTM", K_COMPUTE, 0xEF, ALL, 0, 0},
    /* no float16 in their schema, or a dtype attribute of their own */
    {"Range", K_BLOCKED, ALL, ALL, 0, 0},
    {"NonMaxSuppression", K_BLOCKED, ALL, NONE, 0, 0},
    {"Celu", K_BLOCKED, 0x1, 0x1, 0, 0},
    {"IsInf", K_BLOCKED, 0x1, NONE, 0, 0},
    {"CumSum", K_BLOCKED, 0x1, 0x1, 0, 0},
    {"CastLike", K_BLOCKED, ALL, 0x1, 0, 0},
    {"QuantizeLinear", K_BLOCKED, ALL, NONE, 0, 0},
    {"DequantizeLinear", K_BLOCKED, ALL, 0x1, 0, 0},
    {"DynamicQuantizeLinear", K_BLOCKED, 0x1, NONE, 0, 0},
    {"RandomNormal", K_BLOCKED, NONE, 0x1, 0, 0},
    {"RandomUniform", K_BLOCKED, NONE, 0x1, 0, 0},
    {"RandomNormalLike", K_BLOCKED, ALL, 0x1, 0, 0},
    {"RandomUniformLike", K_BLOCKED, ALL, 0x1, 0, 0},
    {"Multinomial", K_BLOCKED, ALL, NONE, 0, 0},
    {"Bernoulli", K_BLOCKED, ALL, 0x1, 0, 0},
    {"EyeLike", K_BLOCKED, ALL, 0x1, 0, 0},
    {"TfIdfVectorizer", K_BLOCKED, ALL, 0x1, 0, 0},
};

static const struct op_spec *find_spec(const char *op)
{
    for (size_t i = 0; i < sizeof op_specs / sizeof op_specs[0]; i++)
        if (strcmp(op_specs[i].op, op) == 0)
            return &op_specs[i];
    return NULL;
}

static int slot_in(unsigned mask, size_t k)
{
    return k < 31 ? (int)((mask >> k) & 1u) : (int)((mask >> 31) & 1u);
}

static int is_float(int t)
{
    return t == MQ_DTYPE_FLOAT || t == MQ_DTYPE_FLOAT16;
}

/* ------------------------------------------------------------- state */

enum mode {
    M_NONE,      /* touches no float32 value */
    M_CONVERT,
    M_FOLLOW,
    M_KEEP,      /* float32, casts around it; the reason is reported */
    M_KEEP_EXACT,/* float32 and its float inputs stay exact float32 (user, range, domain, types) */
    M_BOUNDARY,  /* holds subgraphs: its own inputs and outputs stay as declared */
    M_CAST,
    M_CONST,
};

struct grec {
    Onnx__GraphProto *g;
    char *path;
    int is_main;
    int n_nodes;      /* as decided (before casts were added) */
    Onnx__NodeProto **nodes;  /* the decided nodes, to find them again after the rewrite */
    int *mode;
    int *follow16;
    char **reason;
};

struct conv {
    Onnx__ModelProto *model;
    const struct mq_fp16_options *o;
    struct mq_fp16_result *r;
    struct mq_error *err;
    int opset;
    struct mq_names names;
    struct mq_strmap *types;    /* original element type of every name */
    struct mq_strmap *storage;  /* element type after conversion */
    struct mq_strmap *unsafe;   /* values beyond float16's range */
    struct mq_strmap *must32;   /* read where exact float32 is needed */
    struct mq_strmap *observed; /* activation name -> index in o->out_of_range */
    struct grec *graphs;
    int n_graphs, cap_graphs;
    int *hits[4];
};

static int oom(struct conv *c)
{
    return mq_error_code(c->err, MQ_ERR_MEMORY, "out of memory converting to float16");
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int get(const struct mq_strmap *m, const char *name)
{
    int v = name && *name ? mq_strmap_get(m, name) : -1;
    return v < 0 ? 0 : v;
}

static int set(struct mq_strmap *m, const char *name, int v)
{
    return name && *name ? mq_strmap_put(m, name, v) : 0;
}

static int type_of(const struct conv *c, const char *name)
{
    return get(c->types, name);
}

/* The type a value has after conversion (its original one until decided). */
static int storage_of(const struct conv *c, const char *name)
{
    int s = get(c->storage, name);
    return s ? s : type_of(c, name);
}

static const char *input_at(const Onnx__NodeProto *node, size_t k)
{
    return k < node->n_input && node->input[k] && *node->input[k] ? node->input[k] : NULL;
}

static int value_info_type(const Onnx__ValueInfoProto *vi)
{
    if (vi && vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        vi->type->tensor_type && vi->type->tensor_type->has_elem_type)
        return vi->type->tensor_type->elem_type;
    return 0;
}

static void set_value_info_type(Onnx__ValueInfoProto *vi, int type)
{
    if (vi && vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        vi->type->tensor_type) {
        vi->type->tensor_type->elem_type = type;
        vi->type->tensor_type->has_elem_type = 1;
    }
}

static int has_subgraphs(const Onnx__NodeProto *node)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        if (node->attribute[a]->g || node->attribute[a]->n_graphs)
            return 1;
    return 0;
}

static Onnx__GraphProto *subgraph_attr(const Onnx__NodeProto *node, const char *name)
{
    const Onnx__AttributeProto *a = mq_node_attr(node, name);
    return a ? a->g : NULL;
}

/* ---------------------------------------------------------- selection */

static const struct mq_pattern_list *pattern_list(const struct conv *c, int k)
{
    const struct mq_fp16_options *o = c->o;
    const struct mq_pattern_list *l[4] = {o->op_types, o->exclude_op_types, o->include_nodes,
                                          o->exclude_nodes};
    return l[k];
}

static int list_match(struct conv *c, int k, const char *text, const char **hit)
{
    const struct mq_pattern_list *l = pattern_list(c, k);
    int matched = 0;
    for (int i = 0; l && i < l->n; i++)
        if (mq_glob_match(l->items[i], text)) {
            c->hits[k][i]++;
            if (!matched && hit)
                *hit = l->items[i];
            matched = 1;
        }
    return matched;
}

/*
 * Why the selection leaves this node float32 (*reason, malloc'd), or NULL when
 * it does not.  Counts every pattern that matches.  -1 when out of memory.
 */
static int selection_reason(struct conv *c, const Onnx__NodeProto *node, const char *label,
                            char **reason)
{
    const char *op = mq_str(node->op_type), *hit_type = NULL, *hit_node = NULL;
    const struct mq_pattern_list *types = pattern_list(c, 0), *include = pattern_list(c, 2);
    int in_types = list_match(c, 0, op, NULL);
    int excluded_type = list_match(c, 1, op, &hit_type);
    int in_nodes = list_match(c, 2, label, NULL);
    int excluded_node = list_match(c, 3, label, &hit_node);
    *reason = NULL;
    if (excluded_node)
        *reason = xasprintf("excluded by --exclude-nodes '%s'", hit_node);
    else if (excluded_type)
        *reason = xasprintf("excluded by --exclude-op-types '%s'", hit_type);
    else if (types && types->n && !in_types)
        *reason = strdup("op type not in --op-types");
    else if (include && include->n && !in_nodes)
        *reason = strdup("not in --include-nodes");
    else
        return 0;
    return *reason ? 0 : -1;
}

static int check_patterns(struct conv *c)
{
    static const char *const option[4] = {"--op-types", "--exclude-op-types", "--include-nodes",
                                          "--exclude-nodes"};
    for (int k = 0; k < 4; k++) {
        const struct mq_pattern_list *l = pattern_list(c, k);
        for (int i = 0; l && i < l->n; i++)
            if (c->hits[k][i] == 0)
                return mq_error_code(c->err, MQ_ERR_USAGE, "%s: '%s' matches no %s of the model",
                                     option[k], l->items[i], k < 2 ? "op type" : "node");
    }
    return MQ_OK;
}

/* -------------------------------------------------------- values */

/* Largest finite |value| of a float tensor; counts values float16 flushes to zero. */
static double max_abs(const struct mq_tensor *t, int64_t *flushed)
{
    double m = 0;
    int64_t f = 0;
    const float *v = t->data;
    for (int64_t i = 0; t->dtype == MQ_DTYPE_FLOAT && i < t->count; i++) {
        float a = fabsf(v[i]);
        if (isfinite(a) && a > m)
            m = a;
        if (a != 0 && isfinite(a) && (mq_float_to_half(a) & 0x7fffu) == 0)
            f++;
    }
    if (flushed)
        *flushed = f;
    return m;
}

static int add_range(struct conv *c, const char *name, const char *graph, const char *what,
                     double value)
{
    struct mq_fp16_result *r = c->r;
    struct mq_fp16_range *v = realloc(r->ranges, (size_t)(r->n_ranges + 1) * sizeof *v);
    if (!v)
        return -1;
    r->ranges = v;
    struct mq_fp16_range *e = &v[r->n_ranges];
    e->name = strdup(name);
    e->graph = strdup(graph);
    e->what = strdup(what);
    e->max_abs = value;
    if (!e->name || !e->graph || !e->what) {
        free(e->name);
        free(e->graph);
        free(e->what);
        return -1;
    }
    r->n_ranges++;
    return 0;
}

/* Marks a float32 constant beyond float16's range as unsafe (and reports it). */
static int check_constant(struct conv *c, const Onnx__TensorProto *p, const char *name,
                          const char *graph, const char *what)
{
    if (!p->has_data_type || p->data_type != MQ_DTYPE_FLOAT)
        return MQ_OK;
    struct mq_tensor t = {0};
    if (mq_tensor_from_proto(p, name, &t, c->err)) {
        mq_error_prefix(c->err, "%s '%s': ", what, name);
        return MQ_ERR;
    }
    double m = max_abs(&t, NULL);
    mq_tensor_free(&t);
    if (m > MQ_FP16_MAX && (set(c->unsafe, name, 1) || add_range(c, name, graph, what, m)))
        return oom(c);
    return MQ_OK;
}

/* The float32 values of a TensorProto as float16, in place; returns -1 on failure. */
static int narrow_tensor_proto(struct conv *c, Onnx__TensorProto *p, const char *name)
{
    struct mq_tensor t = {0};
    if (mq_tensor_from_proto(p, name, &t, c->err))
        return -1;
    uint8_t *bytes = malloc(t.count ? (size_t)t.count * 2 : 1);
    if (!bytes) {
        mq_tensor_free(&t);
        return oom(c);
    }
    int64_t flushed = 0;
    max_abs(&t, &flushed);
    c->r->values_flushed_to_zero += flushed;
    const float *v = t.data;
    for (int64_t i = 0; i < t.count; i++) {
        uint16_t h = mq_float_to_half(v[i]);
        bytes[2 * i] = (uint8_t)(h & 0xff);
        bytes[2 * i + 1] = (uint8_t)(h >> 8);
    }
    size_t len = (size_t)t.count * 2;
    mq_tensor_free(&t);
    free(p->raw_data.data);
    p->raw_data.data = bytes;
    p->raw_data.len = len;
    p->has_raw_data = 1;
    free(p->float_data);
    p->float_data = NULL;
    p->n_float_data = 0;
    p->data_type = MQ_DTYPE_FLOAT16;
    p->has_data_type = 1;
    return 0;
}

/* ---------------------------------------------------- phase A: decide */

static int keep(struct grec *gr, int i, int mode, char *reason)
{
    gr->mode[i] = mode;
    gr->reason[i] = reason;
    return reason ? 0 : -1;
}

/* Original types of a node's outputs, where the index could not tell them. */
static int infer_outputs(struct conv *c, const struct mq_graph_index *idx,
                         const Onnx__NodeProto *node, const struct op_spec *spec)
{
    const char *op = mq_str(node->op_type);
    int in_t = 0;
    for (size_t k = 0; spec && k < node->n_input && !in_t; k++)
        if (input_at(node, k) && slot_in(spec->data_inputs, k))
            in_t = type_of(c, node->input[k]);
    for (size_t o = 0; o < node->n_output; o++) {
        const char *name = node->output[o];
        if (!name || !*name)
            continue;
        int t = mq_graph_elem_type(idx, name);
        if (!t && mq_node_is_onnx(node)) {
            if (spec && slot_in(spec->t_outputs, o))
                t = in_t;
            else if (strcmp(op, "ConstantOfShape") == 0) {
                const Onnx__AttributeProto *a = mq_node_attr(node, "value");
                t = a && a->t && a->t->has_data_type ? a->t->data_type : MQ_DTYPE_FLOAT;
            } else if (strcmp(op, "If") == 0) {
                Onnx__GraphProto *b = subgraph_attr(node, "then_branch");
                t = b && o < b->n_output ? value_info_type(b->output[o]) : 0;
            } else if (strcmp(op, "Loop") == 0) {
                Onnx__GraphProto *b = subgraph_attr(node, "body");
                t = b && o + 1 < b->n_output ? value_info_type(b->output[o + 1]) : 0;
            } else if (strcmp(op, "Scan") == 0) {
                Onnx__GraphProto *b = subgraph_attr(node, "body");
                t = b && o < b->n_output ? value_info_type(b->output[o]) : 0;
            }
        }
        if (t && set(c->types, name, t))
            return -1;
    }
    return 0;
}

static int touches_float(const struct conv *c, const Onnx__NodeProto *node)
{
    for (size_t k = 0; k < node->n_input; k++)
        if (input_at(node, k) && type_of(c, node->input[k]) == MQ_DTYPE_FLOAT)
            return 1;
    for (size_t o = 0; o < node->n_output; o++)
        if (node->output[o] && *node->output[o] && type_of(c, node->output[o]) == MQ_DTYPE_FLOAT)
            return 1;
    return 0;
}

static int decide_graph(struct conv *c, Onnx__GraphProto *g, const struct mq_graph_index *parent,
                        const char *path, int is_main, const char *inherited, int depth);

static int decide_subgraphs(struct conv *c, const Onnx__NodeProto *node, const char *label,
                            const struct mq_graph_index *idx, const char *path,
                            const char *inherited, int depth)
{
    for (size_t a = 0; a < node->n_attribute; a++) {
        const Onnx__AttributeProto *attr = node->attribute[a];
        size_t n = (attr->g ? 1 : 0) + attr->n_graphs;
        for (size_t s = 0; s < n; s++) {
            Onnx__GraphProto *sub = attr->g && s == 0 ? attr->g : attr->graphs[s - (attr->g ? 1 : 0)];
            char *sub_path = xasprintf("%s%s%s/%s", path, *path ? "/" : "", label,
                                       mq_str(attr->name));
            if (!sub_path)
                return oom(c);
            int rc = decide_graph(c, sub, idx, sub_path, 0, inherited, depth + 1);
            free(sub_path);
            if (rc)
                return rc;
        }
    }
    return MQ_OK;
}

static char *node_label(const Onnx__NodeProto *node, int i)
{
    if (node->name && *node->name)
        return strdup(node->name);
    return xasprintf("%s#%d", mq_str(node->op_type), i);
}

/* One node: its mode, the reason when it stays float32, what it marks unsafe or exact. */
static int decide_node(struct conv *c, struct grec *gr, const struct mq_graph_index *idx, int i,
                       const char *label, const char *inherited, int *excluded)
{
    const Onnx__NodeProto *node = gr->g->node[i];
    const char *op = mq_str(node->op_type);
    int onnx = mq_node_is_onnx(node);
    const struct op_spec *spec = onnx ? find_spec(op) : NULL;
    if (infer_outputs(c, idx, node, spec))
        return oom(c);
    char *user = NULL;
    if (selection_reason(c, node, label, &user))
        return oom(c);
    if (!user && inherited && !(user = xasprintf("inside excluded node %s", inherited)))
        return oom(c);
    *excluded = user != NULL;
    int rc = 0;
    if (has_subgraphs(node)) {
        gr->mode[i] = M_BOUNDARY;
        gr->reason[i] = user ? user : strdup("holds subgraphs: converted inside, its own inputs "
                                             "and outputs stay as declared");
        rc = gr->reason[i] ? 0 : -1;
    } else if (onnx && (strcmp(op, "Constant") == 0 || strcmp(op, "ConstantOfShape") == 0)) {
        gr->mode[i] = user ? M_KEEP_EXACT : M_CONST;
        gr->reason[i] = user;
        if (user)
            for (size_t o = 0; o < node->n_output && !rc; o++)
                rc = set(c->must32, node->output[o], 1);
    } else if (onnx && strcmp(op, "Cast") == 0) {
        gr->mode[i] = user ? M_KEEP_EXACT : M_CAST;
        gr->reason[i] = user;
    } else if (!touches_float(c, node)) {
        gr->mode[i] = M_NONE;
        free(user);
    } else if (user) {
        rc = keep(gr, i, M_KEEP_EXACT, user);
    } else if (!onnx) {
        rc = keep(gr, i, M_KEEP_EXACT, xasprintf("op of domain '%s'", mq_str(node->domain)));
    } else if (!spec) {
        rc = keep(gr, i, c->o->ops == MQ_FP16_OPS_ORT_CPU ? M_KEEP : M_KEEP_EXACT,
                  c->o->ops == MQ_FP16_OPS_ORT_CPU
                      ? xasprintf("onnxruntime's CPU provider has no float16 %s kernel", op)
                      : xasprintf("%s is not known to run in float16", op));
    } else if (spec->kind == K_BLOCKED) {
        rc = keep(gr, i, M_KEEP_EXACT, xasprintf("%s cannot take float16 (schema or dtype "
                                                 "attribute)", op));
    } else if (c->o->ops == MQ_FP16_OPS_ORT_CPU &&
               (spec->ort_since == 0 || c->opset < spec->ort_since ||
                (spec->ort_until && c->opset > spec->ort_until))) {
        rc = keep(gr, i, M_KEEP, xasprintf("onnxruntime's CPU provider has no float16 %s kernel "
                                           "at opset %d", op, c->opset));
    } else {
        /* Every float value the node computes with must have a known type. */
        const char *unknown = NULL, *unsafe = NULL;
        for (size_t k = 0; k < node->n_input; k++) {
            const char *in = input_at(node, k);
            if (!in || !slot_in(spec->data_inputs, k))
                continue;
            if (!type_of(c, in))
                unknown = in;
            if (get(c->unsafe, in))
                unsafe = in;
        }
        const char *produces_large = NULL;
        for (size_t o = 0; o < node->n_output; o++) {
            const char *out = node->output[o];
            if (!out || !*out || !slot_in(spec->t_outputs, o))
                continue;
            if (!type_of(c, out))
                unknown = out;
            if (mq_strmap_get(c->observed, out) >= 0)
                produces_large = out;
        }
        if (unknown) {
            rc = keep(gr, i, M_KEEP_EXACT, xasprintf("the type of '%s' is unknown", unknown));
        } else if (spec->kind == K_COMPUTE && unsafe) {
            rc = keep(gr, i, M_KEEP_EXACT, xasprintf("input '%s' holds values beyond float16's "
                                                     "range", unsafe));
        } else if (spec->kind == K_COMPUTE && produces_large) {
            int k = mq_strmap_get(c->observed, produces_large);
            rc = keep(gr, i, M_KEEP_EXACT, xasprintf("output '%s' reached %g on the samples, "
                                                     "beyond float16's range", produces_large,
                                                     c->o->out_of_range_max[k]));
        } else {
            gr->mode[i] = spec->kind == K_NEUTRAL ? M_FOLLOW : M_CONVERT;
            /* Moving a large value keeps it large. */
            if (spec->kind == K_NEUTRAL && unsafe)
                for (size_t o = 0; o < node->n_output && !rc; o++)
                    if (slot_in(spec->t_outputs, o))
                        rc = set(c->unsafe, node->output[o], 1);
        }
    }
    if (rc)
        return oom(c);
    /* Float inputs that must stay exact: those of exact-float32 nodes, and non-T slots. */
    for (size_t k = 0; k < node->n_input; k++) {
        const char *in = input_at(node, k);
        if (!in || type_of(c, in) != MQ_DTYPE_FLOAT)
            continue;
        int exact = gr->mode[i] == M_KEEP_EXACT ||
                    ((gr->mode[i] == M_CONVERT || gr->mode[i] == M_FOLLOW) && spec &&
                     !slot_in(spec->data_inputs, k));
        if (exact && set(c->must32, in, 1))
            return oom(c);
    }
    return MQ_OK;
}

static int decide_graph(struct conv *c, Onnx__GraphProto *g, const struct mq_graph_index *parent,
                        const char *path, int is_main, const char *inherited, int depth)
{
    if (depth > MAX_DEPTH)
        return mq_error_set(c->err, "subgraphs nested deeper than %d", MAX_DEPTH);
    int rc = mq_graph_toposort(g, c->err);
    if (rc) {
        if (*path)
            mq_error_prefix(c->err, "subgraph %s: ", path);
        return rc;
    }
    struct mq_graph_index idx;
    if ((rc = mq_graph_index_build(g, parent, &idx, c->err)))
        return rc;
    struct grec *gr = NULL;
    if (c->n_graphs == c->cap_graphs) {
        int cap = c->cap_graphs ? c->cap_graphs * 2 : 4;
        struct grec *v = realloc(c->graphs, (size_t)cap * sizeof *v);
        if (!v) {
            mq_graph_index_free(&idx);
            return oom(c);
        }
        c->graphs = v;
        c->cap_graphs = cap;
    }
    gr = &c->graphs[c->n_graphs++];
    memset(gr, 0, sizeof *gr);
    gr->g = g;
    gr->is_main = is_main;
    gr->n_nodes = (int)g->n_node;
    size_t n = g->n_node ? g->n_node : 1;
    gr->path = strdup(path);
    gr->nodes = calloc(n, sizeof *gr->nodes);
    gr->mode = calloc(n, sizeof *gr->mode);
    gr->follow16 = calloc(n, sizeof *gr->follow16);
    gr->reason = calloc(n, sizeof *gr->reason);
    if (!gr->path || !gr->nodes || !gr->mode || !gr->follow16 || !gr->reason) {
        mq_graph_index_free(&idx);
        return oom(c);
    }
    int gi = c->n_graphs - 1;
    for (size_t i = 0; i < g->n_node; i++)
        gr->nodes[i] = g->node[i];

    /* Types of what the graph starts from, and constants beyond float16's range. */
    for (size_t i = 0; rc == MQ_OK && i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (t->has_data_type && set(c->types, mq_str(t->name), t->data_type))
            rc = oom(c);
        else
            rc = check_constant(c, t, mq_str(t->name), path, "initializer");
    }
    for (size_t i = 0; rc == MQ_OK && i < g->n_input; i++) {
        const char *name = mq_str(g->input[i]->name);
        int t = value_info_type(g->input[i]);
        if (t && !get(c->types, name) && set(c->types, name, t))
            rc = oom(c);
    }
    for (size_t o = 0; rc == MQ_OK && is_main && c->o->keep_io_types && o < g->n_output; o++)
        if (set(c->must32, mq_str(g->output[o]->name), 1))
            rc = oom(c);
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        char *label = node_label(node, (int)i);
        if (!label) {
            rc = oom(c);
            break;
        }
        const char *op = mq_str(node->op_type);
        if (mq_node_is_onnx(node) &&
            (strcmp(op, "Constant") == 0 || strcmp(op, "ConstantOfShape") == 0)) {
            const Onnx__AttributeProto *a = mq_node_attr(node, "value");
            if (a && a->t && node->n_output > 0)
                rc = check_constant(c, a->t, mq_str(node->output[0]), path, op);
        }
        int excluded = 0;
        if (rc == MQ_OK)
            rc = decide_node(c, &c->graphs[gi], &idx, (int)i, label, inherited, &excluded);
        if (rc == MQ_OK && c->graphs[gi].mode[i] == M_BOUNDARY) {
            /* Excluding a node that holds subgraphs leaves everything inside float32 too. */
            char *quoted = excluded && !inherited ? xasprintf("'%s'", label) : NULL;
            if (excluded && !inherited && !quoted)
                rc = oom(c);
            else
                rc = decide_subgraphs(c, node, label, &idx, path, quoted ? quoted : inherited,
                                      depth);
            free(quoted);
        }
        free(label);
    }
    mq_graph_index_free(&idx);
    return rc;
}

/* ------------------------------------------------- phase B: rewrite */

struct rewrite {
    struct conv *c;
    struct grec *gr;
    Onnx__GraphProto *g;
    struct mq_strmap *casts;   /* "name\x01type" -> index into cast_names */
    char **cast_names;
    int n_casts, cap_casts;
    Onnx__NodeProto **out;     /* the new node list */
    size_t n_out, cap_out;
    Onnx__NodeProto ***after;  /* Casts to emit after decided node i */
    int *n_after;
    Onnx__NodeProto **first;   /* Casts to emit before everything */
    int n_first;
};

static int emit(struct rewrite *w, Onnx__NodeProto *node)
{
    if (w->n_out == w->cap_out) {
        size_t cap = w->cap_out ? w->cap_out * 2 : 64;
        Onnx__NodeProto **v = realloc(w->out, cap * sizeof *v);
        if (!v)
            return -1;
        w->out = v;
        w->cap_out = cap;
    }
    w->out[w->n_out++] = node;
    return 0;
}

static Onnx__NodeProto *make_cast(struct conv *c, const char *in, const char *out,
                                  const char *name, int to)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!n || !a) {
        free(n);
        free(a);
        return NULL;
    }
    onnx__node_proto__init(n);
    onnx__attribute_proto__init(a);
    a->name = strdup("to");
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_type = 1;
    a->i = to;
    a->has_i = 1;
    n->op_type = strdup("Cast");
    n->name = strdup(name);
    n->input = calloc(1, sizeof *n->input);
    n->output = calloc(1, sizeof *n->output);
    n->attribute = calloc(1, sizeof *n->attribute);
    if (n->attribute) {
        n->attribute[0] = a;
        n->n_attribute = 1;
    } else {
        onnx__attribute_proto__free_unpacked(a, NULL);
    }
    if (n->input)
        n->n_input = 1;
    if (n->output)
        n->n_output = 1;
    if (!a->name || !n->op_type || !n->name || !n->input || !n->output || !n->attribute ||
        !(n->input[0] = strdup(in)) || !(n->output[0] = strdup(out))) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    c->r->casts_inserted++;
    return n;
}

static char *cast_key(const char *name, int to)
{
    return xasprintf("%s\x01%d", name, to);
}

/* Registers that `name` converted to `to` is available as `as`. */
static int note_cast(struct rewrite *w, const char *name, int to, const char *as)
{
    char *key = cast_key(name, to), *copy = strdup(as);
    int rc = -1;
    if (key && copy) {
        if (w->n_casts == w->cap_casts) {
            int cap = w->cap_casts ? w->cap_casts * 2 : 16;
            char **v = realloc(w->cast_names, (size_t)cap * sizeof *v);
            if (!v)
                goto out;
            w->cast_names = v;
            w->cap_casts = cap;
        }
        w->cast_names[w->n_casts] = copy;
        if (mq_strmap_put(w->casts, key, w->n_casts) == 0) {
            w->n_casts++;
            copy = NULL;
            rc = 0;
        }
    }
out:
    free(key);
    free(copy);
    return rc;
}

/* The name holding `name` as type `to`, creating a Cast (emitted now) when there is none. */
static const char *cast_to(struct rewrite *w, const char *name, int to)
{
    struct conv *c = w->c;
    char *key = cast_key(name, to);
    if (!key)
        return NULL;
    int k = mq_strmap_get(w->casts, key);
    free(key);
    if (k >= 0)
        return w->cast_names[k];
    const char *suffix = to == MQ_DTYPE_FLOAT16 ? "float16" : "float32";
    const char *node_suffix = to == MQ_DTYPE_FLOAT16 ? "CastToFloat16" : "CastToFloat";
    char *out_base = xasprintf("%s_%s", name, suffix), *node_base = xasprintf("%s_%s", name,
                                                                             node_suffix);
    char *out = out_base ? mq_names_fresh(&c->names, out_base) : NULL;
    char *node_name = node_base ? mq_names_fresh(&c->names, node_base) : NULL;
    free(out_base);
    free(node_base);
    Onnx__NodeProto *cast = out && node_name ? make_cast(c, name, out, node_name, to) : NULL;
    const char *result = NULL;
    if (cast && emit(w, cast) == 0) {
        cast = NULL;
        if (note_cast(w, name, to, out) == 0 && set(c->storage, out, to) == 0 &&
            set(c->types, out, type_of(c, name)) == 0)
            result = w->cast_names[w->n_casts - 1];
    }
    if (cast)
        onnx__node_proto__free_unpacked(cast, NULL);
    free(out);
    free(node_name);
    return result;
}

static int replace_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Every read of `from` in g's nodes and nested subgraphs becomes `to`. */
static int rename_reads(Onnx__GraphProto *g, const char *from, const char *to, int nested,
                        int depth)
{
    if (!g || depth > MAX_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *node = g->node[i];
        for (size_t k = 0; k < node->n_input; k++)
            if (node->input[k] && strcmp(node->input[k], from) == 0 &&
                replace_string(&node->input[k], to))
                return -1;
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            if (rename_reads(attr->g, from, to, 1, depth + 1))
                return -1;
            for (size_t s = 0; s < attr->n_graphs; s++)
                if (rename_reads(attr->graphs[s], from, to, 1, depth + 1))
                    return -1;
        }
    }
    if (nested)
        for (size_t o = 0; o < g->n_output; o++)
            if (strcmp(mq_str(g->output[o]->name), from) == 0 &&
                replace_string(&g->output[o]->name, to))
                return -1;
    return 0;
}

/* What each value of the graph becomes, in node order. */
static int decide_storage(struct rewrite *w)
{
    struct conv *c = w->c;
    struct grec *gr = w->gr;
    Onnx__GraphProto *g = w->g;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const char *name = mq_str(g->initializer[i]->name);
        if (type_of(c, name) == MQ_DTYPE_FLOAT && !get(c->must32, name) && !get(c->unsafe, name) &&
            set(c->storage, name, MQ_DTYPE_FLOAT16))
            return -1;
    }
    for (size_t i = 0; gr->is_main && !c->o->keep_io_types && i < g->n_input; i++) {
        const char *name = mq_str(g->input[i]->name);
        int is_init = 0;
        for (size_t k = 0; k < g->n_initializer && !is_init; k++)
            is_init = strcmp(mq_str(g->initializer[k]->name), name) == 0;
        if (!is_init && type_of(c, name) == MQ_DTYPE_FLOAT &&
            set(c->storage, name, MQ_DTYPE_FLOAT16))
            return -1;
    }
    for (int i = 0; i < gr->n_nodes; i++) {
        Onnx__NodeProto *node = gr->nodes[i];
        const struct op_spec *spec = find_spec(mq_str(node->op_type));
        int to16 = 0;
        switch (gr->mode[i]) {
        case M_CONVERT:
            to16 = 1;
            break;
        case M_FOLLOW: {
            int any = 0, all16 = 1;
            for (size_t k = 0; k < node->n_input; k++) {
                const char *in = input_at(node, k);
                if (!in || !slot_in(spec->data_inputs, k) || !is_float(type_of(c, in)))
                    continue;
                any = 1;
                all16 &= storage_of(c, in) == MQ_DTYPE_FLOAT16;
            }
            to16 = gr->follow16[i] = any && all16;
            break;
        }
        case M_CAST: {
            const char *out = node->n_output ? node->output[0] : NULL;
            to16 = c->o->ops == MQ_FP16_OPS_ALL && mq_node_attr_int(node, "to", 0) == MQ_DTYPE_FLOAT &&
                   out && !get(c->must32, out) && !get(c->unsafe, out);
            gr->follow16[i] = to16;
            if (to16 && out && set(c->storage, out, MQ_DTYPE_FLOAT16))
                return -1;
            continue;
        }
        case M_CONST: {
            const char *out = node->n_output ? node->output[0] : NULL;
            to16 = out && type_of(c, out) == MQ_DTYPE_FLOAT && !get(c->must32, out) &&
                   !get(c->unsafe, out);
            gr->follow16[i] = to16;
            if (to16 && set(c->storage, out, MQ_DTYPE_FLOAT16))
                return -1;
            continue;
        }
        default:
            continue;
        }
        for (size_t o = 0; to16 && o < node->n_output; o++) {
            const char *out = node->output[o];
            if (out && *out && slot_in(spec->t_outputs, o) && type_of(c, out) == MQ_DTYPE_FLOAT &&
                set(c->storage, out, MQ_DTYPE_FLOAT16))
                return -1;
        }
    }
    return 0;
}

static int decided_index(const struct grec *gr, const char *output)
{
    for (int i = 0; i < gr->n_nodes; i++)
        for (size_t o = 0; o < gr->nodes[i]->n_output; o++)
            if (gr->nodes[i]->output[o] && strcmp(gr->nodes[i]->output[o], output) == 0)
                return i;
    return -1;
}

static int place_after(struct rewrite *w, int i, Onnx__NodeProto *node)
{
    Onnx__NodeProto **v = realloc(w->after[i], (size_t)(w->n_after[i] + 1) * sizeof *v);
    if (!v)
        return -1;
    v[w->n_after[i]++] = node;
    w->after[i] = v;
    return 0;
}

/* Graph outputs whose value changed type get a Cast back to the declared one. */
static int fix_outputs(struct rewrite *w)
{
    struct conv *c = w->c;
    struct grec *gr = w->gr;
    Onnx__GraphProto *g = w->g;
    for (size_t o = 0; o < g->n_output; o++) {
        Onnx__ValueInfoProto *vi = g->output[o];
        const char *t = mq_str(vi->name);
        int orig = type_of(c, t), st = storage_of(c, t);
        if (!is_float(st) || !is_float(orig))
            continue;
        int want = value_info_type(vi);
        if (!want)
            want = orig;
        if (gr->is_main)
            want = c->o->keep_io_types || want != MQ_DTYPE_FLOAT ? want : MQ_DTYPE_FLOAT16;
        if (want == st)
            continue;
        int p = decided_index(gr, t);
        if (p >= 0) {
            char *base = xasprintf("%s_%s", t, st == MQ_DTYPE_FLOAT16 ? "float16" : "float32");
            char *fresh = base ? mq_names_fresh(&c->names, base) : NULL;
            char *cast_name_base = xasprintf("%s_%s", t, want == MQ_DTYPE_FLOAT16 ? "CastToFloat16"
                                                                                : "CastToFloat");
            char *cast_name = cast_name_base ? mq_names_fresh(&c->names, cast_name_base) : NULL;
            free(base);
            free(cast_name_base);
            int rc = !fresh || !cast_name;
            Onnx__NodeProto *prod = gr->nodes[p];
            for (size_t k = 0; !rc && k < prod->n_output; k++)
                if (prod->output[k] && strcmp(prod->output[k], t) == 0)
                    rc = replace_string(&prod->output[k], fresh);
            if (!rc)
                rc = rename_reads(g, t, fresh, 0, 0);
            Onnx__NodeProto *cast = !rc ? make_cast(c, fresh, t, cast_name, want) : NULL;
            if (!rc && (!cast || place_after(w, p, cast))) {
                if (cast)
                    onnx__node_proto__free_unpacked(cast, NULL);
                rc = -1;
            }
            if (!rc)
                rc = set(c->storage, fresh, st) || set(c->types, fresh, orig) ||
                     set(c->storage, t, want) || note_cast(w, fresh, want, t);
            free(fresh);
            free(cast_name);
            if (rc)
                return -1;
        } else if (!gr->is_main) {
            /* An input or outer value returned as it is: cast it at the start. */
            const char *as = cast_to(w, t, want);
            if (!as)
                return -1;
            /* cast_to emitted the Cast into the new list: keep it first. */
            if (replace_string(&vi->name, as))
                return -1;
        } else {
            set_value_info_type(vi, st);
        }
    }
    return 0;
}

static int convert_constant(struct conv *c, Onnx__NodeProto *node)
{
    const char *op = mq_str(node->op_type);
    const char *out = node->n_output ? mq_str(node->output[0]) : "";
    for (size_t a = 0; a < node->n_attribute; a++) {
        Onnx__AttributeProto *attr = node->attribute[a];
        const char *name = mq_str(attr->name);
        if (strcmp(name, "value") == 0 && attr->t) {
            if (attr->t->data_type == MQ_DTYPE_FLOAT && narrow_tensor_proto(c, attr->t, out))
                return -1;
            c->r->constants_converted++;
            return 0;
        }
        if (strcmp(name, "value_float") == 0 || strcmp(name, "value_floats") == 0) {
            int scalar = strcmp(name, "value_float") == 0;
            size_t n = scalar ? 1 : attr->n_floats;
            Onnx__TensorProto *t = malloc(sizeof *t);
            if (!t)
                return oom(c);
            onnx__tensor_proto__init(t);
            t->data_type = MQ_DTYPE_FLOAT16;
            t->has_data_type = 1;
            t->has_raw_data = 1;
            t->raw_data.len = n * 2;
            t->raw_data.data = malloc(n ? n * 2 : 1);
            if (!scalar) {
                t->dims = malloc(sizeof *t->dims);
                if (t->dims) {
                    t->dims[0] = (int64_t)n;
                    t->n_dims = 1;
                }
            }
            if (!t->raw_data.data || (!scalar && !t->dims)) {
                onnx__tensor_proto__free_unpacked(t, NULL);
                return oom(c);
            }
            for (size_t k = 0; k < n; k++) {
                uint16_t h = mq_float_to_half(scalar ? attr->f : attr->floats[k]);
                t->raw_data.data[2 * k] = (uint8_t)(h & 0xff);
                t->raw_data.data[2 * k + 1] = (uint8_t)(h >> 8);
            }
            free(attr->floats);
            attr->floats = NULL;
            attr->n_floats = 0;
            attr->has_f = 0;
            if (replace_string(&attr->name, "value")) {
                onnx__tensor_proto__free_unpacked(t, NULL);
                return oom(c);
            }
            attr->t = t;
            attr->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
            attr->has_type = 1;
            c->r->constants_converted++;
            return 0;
        }
    }
    if (strcmp(op, "ConstantOfShape") == 0) {
        /* No value: float32 zero by default. */
        Onnx__AttributeProto *attr = malloc(sizeof *attr);
        Onnx__TensorProto *t = malloc(sizeof *t);
        Onnx__AttributeProto **v = realloc(node->attribute,
                                           (node->n_attribute + 1) * sizeof *v);
        if (v)
            node->attribute = v;
        if (!attr || !t || !v) {
            free(attr);
            free(t);
            return oom(c);
        }
        onnx__attribute_proto__init(attr);
        onnx__tensor_proto__init(t);
        attr->name = strdup("value");
        attr->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        attr->has_type = 1;
        attr->t = t;
        t->data_type = MQ_DTYPE_FLOAT16;
        t->has_data_type = 1;
        t->dims = malloc(sizeof *t->dims);
        t->raw_data.data = calloc(2, 1);
        t->raw_data.len = 2;
        t->has_raw_data = 1;
        node->attribute[node->n_attribute++] = attr;
        if (!attr->name || !t->dims || !t->raw_data.data)
            return oom(c);
        t->dims[0] = 1;
        t->n_dims = 1;
        c->r->constants_converted++;
    }
    return 0;
}

static int set_cast_to(Onnx__NodeProto *node, int to)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        if (strcmp(mq_str(node->attribute[a]->name), "to") == 0) {
            node->attribute[a]->i = to;
            node->attribute[a]->has_i = 1;
            return 0;
        }
    return -1;
}

/* The type input k of decided node i must arrive in; 0 when any will do. */
static int required_type(const struct conv *c, const struct grec *gr, int i, size_t k,
                         const char *in)
{
    const Onnx__NodeProto *node = gr->nodes[i];
    int orig = type_of(c, in);
    if (!is_float(orig))
        return 0;
    const struct op_spec *spec = find_spec(mq_str(node->op_type));
    switch (gr->mode[i]) {
    case M_CONVERT:
        return slot_in(spec->data_inputs, k) ? MQ_DTYPE_FLOAT16 : orig;
    case M_FOLLOW:
        if (!slot_in(spec->data_inputs, k))
            return orig;
        return gr->follow16[i] ? MQ_DTYPE_FLOAT16 : MQ_DTYPE_FLOAT;
    case M_CAST:
        return 0;
    default:
        return orig;
    }
}

static int rewrite_nodes(struct rewrite *w)
{
    struct conv *c = w->c;
    struct grec *gr = w->gr;
    for (int i = 0; i < gr->n_nodes; i++) {
        Onnx__NodeProto *node = gr->nodes[i];
        for (size_t k = 0; k < node->n_input; k++) {
            const char *in = input_at(node, k);
            if (!in)
                continue;
            int want = required_type(c, gr, i, k, in);
            int have = storage_of(c, in);
            if (!want || !is_float(have) || want == have)
                continue;
            const char *as = cast_to(w, in, want);
            if (!as || replace_string(&node->input[k], as))
                return oom(c);
        }
        if (gr->mode[i] == M_CAST && gr->follow16[i] && set_cast_to(node, MQ_DTYPE_FLOAT16))
            return mq_error_set(c->err, "node '%s' (Cast) has no 'to' attribute",
                                mq_str(node->name));
        if (gr->mode[i] == M_CONST && gr->follow16[i] && convert_constant(c, node))
            return MQ_ERR;
        if (emit(w, node))
            return oom(c);
        for (int a = 0; a < w->n_after[i]; a++)
            if (emit(w, w->after[i][a]))
                return oom(c);
        w->n_after[i] = 0;
    }
    return MQ_OK;
}

static int finish_graph(struct rewrite *w)
{
    struct conv *c = w->c;
    struct grec *gr = w->gr;
    Onnx__GraphProto *g = w->g;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        const char *name = mq_str(t->name);
        if (!t->has_data_type || t->data_type != MQ_DTYPE_FLOAT)
            continue;
        uint64_t before = onnx__tensor_proto__get_packed_size(t);
        c->r->weight_bytes_before += before;
        if (storage_of(c, name) == MQ_DTYPE_FLOAT16) {
            if (narrow_tensor_proto(c, t, name))
                return MQ_ERR;
            c->r->initializers_converted++;
        } else {
            c->r->initializers_kept++;
        }
        c->r->weight_bytes_after += onnx__tensor_proto__get_packed_size(t);
    }
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = mq_str(g->input[i]->name);
        if (value_info_type(g->input[i]) == MQ_DTYPE_FLOAT &&
            storage_of(c, name) == MQ_DTYPE_FLOAT16)
            set_value_info_type(g->input[i], MQ_DTYPE_FLOAT16);
    }
    for (size_t o = 0; gr->is_main && !c->o->keep_io_types && o < g->n_output; o++)
        if (value_info_type(g->output[o]) == MQ_DTYPE_FLOAT &&
            storage_of(c, mq_str(g->output[o]->name)) == MQ_DTYPE_FLOAT16)
            set_value_info_type(g->output[o], MQ_DTYPE_FLOAT16);
    for (size_t i = 0; i < g->n_value_info; i++) {
        Onnx__ValueInfoProto *vi = g->value_info[i];
        if (value_info_type(vi) == MQ_DTYPE_FLOAT &&
            storage_of(c, mq_str(vi->name)) == MQ_DTYPE_FLOAT16)
            set_value_info_type(vi, MQ_DTYPE_FLOAT16);
    }
    return MQ_OK;
}

static struct grec *find_grec(struct conv *c, const Onnx__GraphProto *g)
{
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graphs[i].g == g)
            return &c->graphs[i];
    return NULL;
}

static int rewrite_graph(struct conv *c, struct grec *gr, int depth);

static int rewrite_subgraphs(struct conv *c, struct grec *gr, int depth)
{
    for (int i = 0; i < gr->n_nodes; i++) {
        Onnx__NodeProto *node = gr->nodes[i];
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            size_t n = (attr->g ? 1 : 0) + attr->n_graphs;
            for (size_t s = 0; s < n; s++) {
                Onnx__GraphProto *sub = attr->g && s == 0 ? attr->g
                                                          : attr->graphs[s - (attr->g ? 1 : 0)];
                struct grec *sr = find_grec(c, sub);
                int rc = sr ? rewrite_graph(c, sr, depth + 1) : MQ_OK;
                if (rc)
                    return rc;
            }
        }
    }
    return MQ_OK;
}

static int rewrite_graph(struct conv *c, struct grec *gr, int depth)
{
    if (depth > MAX_DEPTH)
        return mq_error_set(c->err, "subgraphs nested deeper than %d", MAX_DEPTH);
    struct rewrite w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.gr = gr;
    w.g = gr->g;
    size_t n = gr->n_nodes ? (size_t)gr->n_nodes : 1;
    w.casts = mq_strmap_new();
    w.after = calloc(n, sizeof *w.after);
    w.n_after = calloc(n, sizeof *w.n_after);
    int rc = !w.casts || !w.after || !w.n_after ? oom(c) : MQ_OK;
    if (rc == MQ_OK && decide_storage(&w))
        rc = oom(c);
    if (rc == MQ_OK && fix_outputs(&w))
        rc = oom(c);
    if (rc == MQ_OK)
        rc = rewrite_nodes(&w);
    if (rc == MQ_OK) {
        /* The graph now owns every node of the new list. */
        free(w.g->node);
        w.g->node = w.out;
        w.g->n_node = w.n_out;
        w.out = NULL;
        rc = finish_graph(&w);
    }
    if (w.out) {
        /* Failed midway: the old list still owns the decided nodes; free only the new Casts. */
        for (size_t i = 0; i < w.n_out; i++) {
            int decided = 0;
            for (int k = 0; k < gr->n_nodes && !decided; k++)
                decided = w.out[i] == gr->nodes[k];
            for (int k = 0; k < gr->n_nodes && !decided; k++)
                for (int a = 0; a < w.n_after[k] && !decided; a++)
                    decided = w.out[i] == w.after[k][a];
            if (!decided)
                onnx__node_proto__free_unpacked(w.out[i], NULL);
        }
        free(w.out);
    }
    for (size_t i = 0; w.after && i < n; i++) {
        for (int a = 0; a < w.n_after[i]; a++)
            onnx__node_proto__free_unpacked(w.after[i][a], NULL);
        free(w.after[i]);
    }
    free(w.after);
    free(w.n_after);
    for (int i = 0; i < w.n_casts; i++)
        free(w.cast_names[i]);
    free(w.cast_names);
    mq_strmap_free(w.casts);
    if (rc == MQ_OK)
        rc = rewrite_subgraphs(c, gr, depth);
    return rc;
}

/* ------------------------------------------------------------ report */

static int collect_result(struct conv *c)
{
    struct mq_fp16_result *r = c->r;
    int total = 0;
    for (int g = 0; g < c->n_graphs; g++)
        total += c->graphs[g].n_nodes;
    r->nodes = calloc((size_t)total + 1, sizeof *r->nodes);
    if (!r->nodes)
        return -1;
    for (int g = 0; g < c->n_graphs; g++) {
        struct grec *gr = &c->graphs[g];
        for (int i = 0; i < gr->n_nodes; i++) {
            int mode = gr->mode[i];
            if (mode == M_NONE)
                continue;
            struct mq_fp16_node *e = &r->nodes[r->n_nodes];
            const Onnx__NodeProto *node = gr->nodes[i];
            e->name = node_label(node, i);
            e->op_type = strdup(mq_str(node->op_type));
            e->graph = strdup(gr->path);
            if (!e->name || !e->op_type || !e->graph) {
                free(e->name);
                free(e->op_type);
                free(e->graph);
                return -1;
            }
            r->n_nodes++;
            switch (mode) {
            case M_CONVERT:
                e->status = MQ_FP16_CONVERTED;
                e->in_float16 = 1;
                break;
            case M_FOLLOW:
                e->status = MQ_FP16_FOLLOWED;
                e->in_float16 = gr->follow16[i];
                break;
            case M_CAST:
            case M_CONST:
                e->status = gr->follow16[i] ? MQ_FP16_CONVERTED : MQ_FP16_FOLLOWED;
                e->in_float16 = gr->follow16[i];
                break;
            default:
                e->status = MQ_FP16_KEPT;
                e->reason = gr->reason[i];
                gr->reason[i] = NULL;
                break;
            }
        }
    }
    return 0;
}

void mq_fp16_options_default(struct mq_fp16_options *o)
{
    memset(o, 0, sizeof *o);
    o->keep_io_types = 1;
    o->ops = MQ_FP16_OPS_ORT_CPU;
}

void mq_fp16_result_free(struct mq_fp16_result *r)
{
    for (int i = 0; i < r->n_nodes; i++) {
        free(r->nodes[i].name);
        free(r->nodes[i].op_type);
        free(r->nodes[i].graph);
        free(r->nodes[i].reason);
    }
    free(r->nodes);
    for (int i = 0; i < r->n_ranges; i++) {
        free(r->ranges[i].name);
        free(r->ranges[i].graph);
        free(r->ranges[i].what);
    }
    free(r->ranges);
    memset(r, 0, sizeof *r);
}

static void conv_free(struct conv *c)
{
    for (int g = 0; g < c->n_graphs; g++) {
        struct grec *gr = &c->graphs[g];
        for (int i = 0; gr->reason && i < gr->n_nodes; i++)
            free(gr->reason[i]);
        free(gr->reason);
        free(gr->path);
        free(gr->nodes);
        free(gr->mode);
        free(gr->follow16);
    }
    free(c->graphs);
    for (int k = 0; k < 4; k++)
        free(c->hits[k]);
    mq_strmap_free(c->types);
    mq_strmap_free(c->storage);
    mq_strmap_free(c->unsafe);
    mq_strmap_free(c->must32);
    mq_strmap_free(c->observed);
    mq_names_free(&c->names);
}

int mq_fp16_convert(Onnx__ModelProto *model, const struct mq_fp16_options *options,
                    struct mq_fp16_result *result, struct mq_error *err)
{
    memset(result, 0, sizeof *result);
    if (!model->graph)
        return mq_error_set(err, "the model has no graph");
    int opset = mq_model_proto_opset(model, "");
    if (opset < 1)
        return mq_error_set(err, "the model imports no ai.onnx opset");
    struct conv c;
    memset(&c, 0, sizeof c);
    c.model = model;
    c.o = options;
    c.r = result;
    c.err = err;
    c.opset = opset;
    c.types = mq_strmap_new();
    c.storage = mq_strmap_new();
    c.unsafe = mq_strmap_new();
    c.must32 = mq_strmap_new();
    c.observed = mq_strmap_new();
    int rc = !c.types || !c.storage || !c.unsafe || !c.must32 || !c.observed ? oom(&c) : MQ_OK;
    for (int k = 0; rc == MQ_OK && k < 4; k++) {
        const struct mq_pattern_list *l = pattern_list(&c, k);
        c.hits[k] = calloc((size_t)(l ? l->n : 0) + 1, sizeof *c.hits[k]);
        if (!c.hits[k])
            rc = oom(&c);
    }
    for (int i = 0; rc == MQ_OK && i < options->n_out_of_range; i++)
        if (mq_strmap_put(c.observed, options->out_of_range[i], i) ||
            mq_strmap_put(c.unsafe, options->out_of_range[i], 1))
            rc = oom(&c);
    if (rc == MQ_OK)
        rc = mq_names_collect(model, &c.names, err);
    if (rc == MQ_OK)
        rc = decide_graph(&c, model->graph, NULL, "", 1, NULL, 0);
    if (rc == MQ_OK)
        rc = check_patterns(&c);
    /* Activations beyond range that the model holds, for the report. */
    for (int i = 0; rc == MQ_OK && i < options->n_out_of_range; i++)
        if (get(c.types, options->out_of_range[i]) &&
            add_range(&c, options->out_of_range[i], "", "activation",
                      options->out_of_range_max[i]))
            rc = oom(&c);
    if (rc == MQ_OK && c.n_graphs > 0)
        rc = rewrite_graph(&c, &c.graphs[0], 0);
    if (rc == MQ_OK && collect_result(&c))
        rc = oom(&c);
    conv_free(&c);
    if (rc)
        mq_fp16_result_free(result);
    return rc;
}
