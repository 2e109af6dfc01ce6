/*
 * onnxruntime's QDQ fusion rules for its CPU provider, as one table, and the
 * prediction of which nodes of a QDQ graph they apply to (see ort_fusion.h).
 * The rows follow onnxruntime's QDQ selector/action registry (1.30): the
 * Conv, MatMul, Gemm, unary, binary, variadic and Where rules replace the
 * group with a QLinear kernel; the "drop" rules remove the pair around ops
 * that only move values when both sides share scale and zero point.
 */
#include "quant/ort_fusion.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "graph/edit.h"
#include "quant/graph.h"

/* What onnxruntime needs after the node. */
enum out_rule {
    OUT_Q,          /* every output read by exactly one QuantizeLinear */
    OUT_Q_OR_FLOAT, /* with one, the kernel; without, kernel_float_out */
    OUT_SAME_Q,     /* drop: each output to one QuantizeLinear with the input's scale and zero
                       point */
};

struct fusion_rule {
    const char *op_type;
    const char *kernel;           /* NULL: the op runs on 8-bit data, the pair dropped */
    const char *kernel_float_out; /* OUT_Q_OR_FLOAT without a QuantizeLinear after it */
    unsigned dq_inputs;           /* bit k: input k must come from a DequantizeLinear */
    int all_present_inputs;       /* every present input must (Conv's bias, Gemm's C) */
    int bias_input;               /* the int32 bias among them, -1 none */
    enum out_rule out;
    int allows_16bit;             /* the drop rules but MaxPool and Resize take 16 bits */
};

#define KERNEL(op, k, inputs) {op, k, NULL, inputs, 0, -1, OUT_Q, 0}
#define DROP(op, wide) {op, NULL, NULL, 1u, 0, -1, OUT_SAME_Q, wide}

static const struct fusion_rule rules[] = {
    {"Conv", "QLinearConv", NULL, 3u, 1, 2, OUT_Q, 0},
    {"MatMul", "QLinearMatMul", "MatMulIntegerToFloat", 3u, 0, -1, OUT_Q_OR_FLOAT, 0},
    {"Gemm", "QGemm", "QGemm", 3u, 1, 2, OUT_Q_OR_FLOAT, 0},
    KERNEL("Add", "QLinearAdd", 3u),
    KERNEL("Mul", "QLinearMul", 3u),
    {"Concat", "QLinearConcat", NULL, 1u, 1, -1, OUT_Q, 0},
    KERNEL("Where", "QLinearWhere", 6u),
    KERNEL("Softmax", "QLinearSoftmax", 1u),
    KERNEL("Sigmoid", "QLinearSigmoid", 1u),
    KERNEL("LeakyRelu", "QLinearLeakyRelu", 1u),
    KERNEL("AveragePool", "QLinearAveragePool", 1u),
    KERNEL("GlobalAveragePool", "QLinearGlobalAveragePool", 1u),
    DROP("Reshape", 1),
    DROP("Transpose", 1),
    DROP("Squeeze", 1),
    DROP("Unsqueeze", 1),
    DROP("Flatten", 1),
    DROP("Gather", 1),
    DROP("GatherElements", 1),
    DROP("Slice", 1),
    DROP("Expand", 1),
    DROP("Tile", 1),
    DROP("Split", 1), /* every output to its own QuantizeLinear with the input's scale */
    DROP("MaxPool", 0),
    DROP("Resize", 0),
};
#define N_RULES (int)(sizeof rules / sizeof rules[0])

static const struct fusion_rule *find_rule(const char *op_type)
{
    for (int i = 0; op_type && i < N_RULES; i++)
        if (strcmp(rules[i].op_type, op_type) == 0)
            return &rules[i];
    return NULL;
}

const char *mq_ort_fusion_kernel(const char *op_type)
{
    const struct fusion_rule *r = find_rule(op_type);
    return r ? r->kernel : NULL;
}

static int is_default_domain(const Onnx__NodeProto *n)
{
    return !n->domain || !n->domain[0] || strcmp(n->domain, "ai.onnx") == 0;
}

static const Onnx__NodeProto *producer(const struct mq_graph_index *idx, const char *name)
{
    const struct mq_tensor_info *t = name && name[0] ? mq_graph_tensor(idx, name) : NULL;
    return t && t->producer >= 0 ? idx->graph->node[t->producer] : NULL;
}

static int is_op(const Onnx__NodeProto *n, const char *op)
{
    return n && is_default_domain(n) && strcmp(n->op_type, op) == 0;
}

static int input_present(const Onnx__NodeProto *n, size_t k)
{
    return k < n->n_input && n->input[k] && n->input[k][0];
}

/* The integer type a QuantizeLinear writes: its zero point's, else output_dtype, else uint8. */
static int q_output_type(const struct mq_graph_index *idx, const Onnx__NodeProto *q)
{
    if (input_present(q, 2)) {
        const Onnx__TensorProto *zp = mq_graph_find_initializer(idx, q->input[2]);
        return zp ? zp->data_type : 0;
    }
    long long dt = mq_node_attr_int(q, "output_dtype", 0);
    return dt ? (int)dt : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
}

/* The integer type a DequantizeLinear reads; 0 when it cannot be told. */
static int dq_input_type(const struct mq_graph_index *idx, const Onnx__NodeProto *dq)
{
    const Onnx__TensorProto *x = mq_graph_find_initializer(idx, dq->input[0]);
    if (x)
        return x->data_type;
    /* x and the zero point share their type: this also covers 8-bit data an op such as a
       channel Pad wrote after the QuantizeLinear */
    const Onnx__TensorProto *zp = input_present(dq, 2) ? mq_graph_find_initializer(idx, dq->input[2])
                                                        : NULL;
    if (zp && zp->has_data_type)
        return zp->data_type;
    const Onnx__NodeProto *q = producer(idx, dq->input[0]);
    return is_op(q, "QuantizeLinear") ? q_output_type(idx, q) : 0;
}

static int type_allowed(int type, int allows_16bit)
{
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
        return allows_16bit;
    default:
        return 0;
    }
}

/*
 * Nodes onnxruntime removes before its QDQ rules look at the graph (its Identity and Dropout
 * eliminations, at inference), so a QuantizeLinear after one of them is the node's.
 */
static const char *const removed_first[] = {"Identity", "Dropout"};

static int removed_before_fusion(const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < sizeof removed_first / sizeof removed_first[0]; i++)
        if (is_op(n, removed_first[i]))
            return 1;
    return 0;
}

/* The QuantizeLinear reading output k, when it is the output's only reader (through a chain
   of nodes onnxruntime removes first). */
static const Onnx__NodeProto *only_q_reader(const struct mq_graph_index *idx,
                                            const Onnx__NodeProto *n, size_t k)
{
    const char *name = n->output[k];
    for (int hops = 0; hops <= 8; hops++) {
        const struct mq_tensor_info *t = mq_graph_tensor(idx, name);
        if (!t || t->graph_output || t->n_consumers != 1 || t->consumers[0].implicit)
            return NULL;
        const Onnx__NodeProto *next = idx->graph->node[t->consumers[0].node];
        if (is_op(next, "QuantizeLinear"))
            return next;
        /* a Dropout's mask output in use keeps it */
        if (!removed_before_fusion(next) || next->n_output < 1 ||
            (next->n_output > 1 && next->output[1] && next->output[1][0] &&
             mq_graph_tensor(idx, next->output[1]) &&
             mq_graph_tensor(idx, next->output[1])->n_consumers))
            return NULL;
        name = next->output[0];
    }
    return NULL;
}

/* Two constants with the same type, shape and bytes (or the same name). */
static int same_constant(const struct mq_graph_index *idx, const char *a, const char *b)
{
    if (!a || !b || !a[0] || !b[0])
        return (!a || !a[0]) && (!b || !b[0]);
    if (strcmp(a, b) == 0)
        return 1;
    const Onnx__TensorProto *ta = mq_graph_find_initializer(idx, a);
    const Onnx__TensorProto *tb = mq_graph_find_initializer(idx, b);
    if (!ta || !tb || ta->data_type != tb->data_type || ta->n_dims != tb->n_dims)
        return 0;
    for (size_t d = 0; d < ta->n_dims; d++)
        if (ta->dims[d] != tb->dims[d])
            return 0;
    if (ta->raw_data.len || tb->raw_data.len)
        return ta->raw_data.len == tb->raw_data.len &&
               memcmp(ta->raw_data.data, tb->raw_data.data, ta->raw_data.len) == 0;
    return ta->n_float_data == tb->n_float_data && ta->n_int32_data == tb->n_int32_data &&
           (!ta->n_float_data ||
            memcmp(ta->float_data, tb->float_data, ta->n_float_data * sizeof(float)) == 0) &&
           (!ta->n_int32_data ||
            memcmp(ta->int32_data, tb->int32_data, ta->n_int32_data * sizeof(int32_t)) == 0);
}

/* Which kernel node i becomes; NULL with *in_place when the pair is dropped; NULL when neither. */
static const char *predict(const struct mq_graph_index *idx, const struct fusion_rule *r,
                           const Onnx__NodeProto *n, int *in_place)
{
    *in_place = 0;
    const Onnx__NodeProto *first_dq = NULL;
    for (size_t k = 0; k < n->n_input; k++) {
        int needed = (k < 32 && (r->dq_inputs >> k) & 1u) ||
                     (r->all_present_inputs && input_present(n, k));
        if (!needed)
            continue;
        const Onnx__NodeProto *dq = producer(idx, input_present(n, k) ? n->input[k] : NULL);
        if (!is_op(dq, "DequantizeLinear"))
            return NULL;
        /* Conv's and Gemm's int32 bias is the one input that is not 8 bits. */
        if ((int)k != r->bias_input && !type_allowed(dq_input_type(idx, dq), r->allows_16bit))
            return NULL;
        if (!first_dq)
            first_dq = dq;
    }
    if (!first_dq || n->n_output < 1)
        return NULL;
    int all_q = 1;
    for (size_t k = 0; k < n->n_output; k++) {
        const Onnx__NodeProto *q = only_q_reader(idx, n, k);
        if (!q || !type_allowed(q_output_type(idx, q), r->allows_16bit))
            all_q = 0;
        else if (r->out == OUT_SAME_Q &&
                 (!same_constant(idx, q->n_input > 1 ? q->input[1] : NULL,
                                 first_dq->n_input > 1 ? first_dq->input[1] : NULL) ||
                  !same_constant(idx, q->n_input > 2 ? q->input[2] : NULL,
                                 first_dq->n_input > 2 ? first_dq->input[2] : NULL)))
            all_q = 0;
    }
    switch (r->out) {
    case OUT_Q:
        return all_q ? r->kernel : NULL;
    case OUT_Q_OR_FLOAT:
        return all_q ? r->kernel : r->kernel_float_out;
    case OUT_SAME_Q:
        *in_place = all_q;
        return NULL;
    }
    return NULL;
}

static int add_count(struct mq_ort_fusions *f, const char *op_type, const char *kernel)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->items[i].op_type, op_type) == 0 &&
            ((!kernel && !f->items[i].kernel) ||
             (kernel && f->items[i].kernel && strcmp(kernel, f->items[i].kernel) == 0))) {
            f->items[i].nodes++;
            return 0;
        }
    struct mq_ort_fusion_count *grown = realloc(f->items, (size_t)(f->n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    f->items = grown;
    f->items[f->n++] = (struct mq_ort_fusion_count){op_type, kernel, 1};
    return 0;
}

struct walk {
    const struct mq_graph_index *parent;
    struct mq_ort_fusions *out;
    struct mq_error *err;
    int depth;
};

static int predict_graph(Onnx__GraphProto *graph, const char *attr_name, void *user);

/* One graph, then the subgraphs of its nodes (an If's branches, a Loop's body). */
static int predict_graph(Onnx__GraphProto *graph, const char *attr_name, void *user)
{
    (void)attr_name;
    struct walk *w = user;
    if (w->depth > MQ_MAX_SUBGRAPH_DEPTH)
        return MQ_OK; /* deeper graphs are left out of the prediction */
    struct mq_graph_index idx;
    memset(&idx, 0, sizeof idx);
    int rc = mq_graph_index_build(graph, w->parent, &idx, w->err);
    if (rc)
        return rc;
    for (size_t i = 0; i < graph->n_node && rc == MQ_OK; i++) {
        const Onnx__NodeProto *n = graph->node[i];
        const struct fusion_rule *r = is_default_domain(n) ? find_rule(n->op_type) : NULL;
        int in_place = 0;
        const char *kernel = r ? predict(&idx, r, n, &in_place) : NULL;
        if ((kernel || in_place) && add_count(w->out, r->op_type, kernel))
            rc = mq_error_code(w->err, MQ_ERR_MEMORY, "out of memory");
    }
    struct walk inner = {&idx, w->out, w->err, w->depth + 1};
    for (size_t i = 0; i < graph->n_node && rc == MQ_OK; i++)
        rc = mq_graph_each_subgraph(graph->node[i], predict_graph, &inner);
    mq_graph_index_free(&idx);
    return rc;
}

/* Table order for the counts, so the text and the JSON keep one stable order. */
static int by_table_order(const void *a, const void *b)
{
    const struct mq_ort_fusion_count *x = a, *y = b;
    ptrdiff_t rx = find_rule(x->op_type) - rules, ry = find_rule(y->op_type) - rules;
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return (x->kernel != NULL) - (y->kernel != NULL);
}

int mq_ort_fusions_predict(Onnx__GraphProto *graph, struct mq_ort_fusions *out,
                           struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    struct walk w = {NULL, out, err, 0};
    int rc = predict_graph(graph, NULL, &w);
    if (rc)
        mq_ort_fusions_free(out);
    else if (out->n > 1)
        qsort(out->items, (size_t)out->n, sizeof *out->items, by_table_order);
    return rc;
}

void mq_ort_fusions_free(struct mq_ort_fusions *f)
{
    free(f->items);
    f->items = NULL;
    f->n = 0;
}
