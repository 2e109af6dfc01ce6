/*
 * 16-bit Q/DQ pairs in front of the accuracy search's fallback nodes, and which float nodes
 * onnxruntime would quantize by itself (quant/target_fallback.h).
 */
#include "quant/target_fallback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "graph/edit.h"
#include "quant/graph.h"
#include "quant/op_rules.h"
#include "quant/params.h"

int mq_fallback_required_opset(enum mq_fallback_type type)
{
    return type == MQ_FALLBACK_INT16 ? 21 : 0;
}

static int append_node(Onnx__GraphProto *g, Onnx__NodeProto *n)
{
    Onnx__NodeProto **v = realloc(g->node, (g->n_node + 1) * sizeof *v);
    if (!v)
        return -1;
    g->node = v;
    g->node[g->n_node++] = n;
    return 0;
}

static int append_initializer(Onnx__GraphProto *g, Onnx__TensorProto *t)
{
    Onnx__TensorProto **v = realloc(g->initializer, (g->n_initializer + 1) * sizeof *v);
    if (!v)
        return -1;
    g->initializer = v;
    g->initializer[g->n_initializer++] = t;
    return 0;
}

/* A scalar initializer: float32 scale or int16 zero point (stored in int32_data). */
static Onnx__TensorProto *scalar(const char *name, int dtype, float f, int32_t i)
{
    Onnx__TensorProto *t = mq_graph_new_tensor(name, dtype);
    if (!t)
        return NULL;
    if (dtype == MQ_DTYPE_FLOAT) {
        t->float_data = malloc(sizeof *t->float_data);
        if (t->float_data) {
            t->float_data[0] = f;
            t->n_float_data = 1;
        }
    } else {
        t->int32_data = malloc(sizeof *t->int32_data);
        if (t->int32_data) {
            t->int32_data[0] = i;
            t->n_int32_data = 1;
        }
    }
    if ((t->n_float_data + t->n_int32_data) != 1) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return NULL;
    }
    return t;
}

static Onnx__NodeProto *node3(const char *op, const char *name, const char *a, const char *b,
                              const char *c, const char *out)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = strdup(op);
    n->name = strdup(name);
    n->input = calloc(3, sizeof *n->input);
    n->output = calloc(1, sizeof *n->output);
    if (n->input) {
        n->n_input = 3;
        n->input[0] = strdup(a);
        n->input[1] = strdup(b);
        n->input[2] = strdup(c);
    }
    if (n->output) {
        n->n_output = 1;
        n->output[0] = strdup(out);
    }
    if (!n->op_type || !n->name || !n->input || !n->output || !n->input[0] || !n->input[1] ||
        !n->input[2] || !n->output[0]) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    return n;
}

/* Adds the pair for tensor t; *dq_name receives the name consumers read. */
static int add_pair(Onnx__GraphProto *g, struct mq_names *names, const char *t,
                    const struct mq_tensor_range *range, char **dq_name, struct mq_error *err)
{
    struct mq_qparams p;
    int rc = mq_qparams_compute(range->min, range->max, mq_qrange_for(MQ_DTYPE_INT16, 0, 0), 0, &p,
                                err);
    if (rc) {
        mq_error_prefix(err, "tensor '%s': ", t);
        return rc;
    }
    char base[512];
    char *scale = NULL, *zp = NULL, *q = NULL, *dq = NULL, *qn = NULL, *dqn = NULL;
    Onnx__TensorProto *ts = NULL, *tz = NULL;
    Onnx__NodeProto *nq = NULL, *ndq = NULL;
#define FRESH(var, suffix) (snprintf(base, sizeof base, "%.400s%s", t, suffix), \
                            (var = mq_names_fresh(names, base)) != NULL)
    int ok = FRESH(scale, "_scale16") && FRESH(zp, "_zero_point16") &&
             FRESH(q, "_quantized16") && FRESH(dq, "_dequantized16") &&
             FRESH(qn, "_QuantizeLinear16") && FRESH(dqn, "_DequantizeLinear16");
#undef FRESH
    ok = ok && (ts = scalar(scale, MQ_DTYPE_FLOAT, p.scale, 0)) != NULL &&
         (tz = scalar(zp, MQ_DTYPE_INT16, 0, p.zero_point)) != NULL &&
         (nq = node3("QuantizeLinear", qn, t, scale, zp, q)) != NULL &&
         (ndq = node3("DequantizeLinear", dqn, q, scale, zp, dq)) != NULL;
    if (ok && !append_initializer(g, ts)) {
        ts = NULL;
        if (!append_initializer(g, tz)) {
            tz = NULL;
            if (!append_node(g, nq)) {
                nq = NULL;
                if (!append_node(g, ndq))
                    ndq = NULL;
            }
        }
    }
    ok = ok && !ts && !tz && !nq && !ndq;
    if (ts)
        onnx__tensor_proto__free_unpacked(ts, NULL);
    if (tz)
        onnx__tensor_proto__free_unpacked(tz, NULL);
    if (nq)
        onnx__node_proto__free_unpacked(nq, NULL);
    if (ndq)
        onnx__node_proto__free_unpacked(ndq, NULL);
    free(scale);
    free(zp);
    free(q);
    free(qn);
    free(dqn);
    if (!ok) {
        free(dq);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    *dq_name = dq;
    return MQ_OK;
}

int mq_fallback_apply_int16(Onnx__ModelProto *model, Onnx__NodeProto *const *nodes, int n_nodes,
                            const struct mq_ranges *ranges, struct mq_error *err)
{
    Onnx__GraphProto *g = model->graph;
    if (!g || n_nodes == 0)
        return MQ_OK;
    struct mq_names names = {0};
    struct mq_strmap *made = mq_strmap_new(), *dq_outputs = mq_strmap_new(),
                     *initializers = mq_strmap_new();
    char **dq_names = NULL;
    int n_dq = 0, cap_dq = 0;
    int rc = made && dq_outputs && initializers ? MQ_OK : MQ_ERR_MEMORY;
    if (rc == MQ_OK)
        rc = mq_names_collect(model, &names, err);
    else
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++)
        if (strcmp(mq_str(g->node[i]->op_type), "DequantizeLinear") == 0 &&
            g->node[i]->n_output > 0 && mq_strmap_put(dq_outputs, g->node[i]->output[0], 0))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (size_t i = 0; rc == MQ_OK && i < g->n_initializer; i++)
        if (mq_strmap_put(initializers, mq_str(g->initializer[i]->name), 0))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int k = 0; rc == MQ_OK && k < n_nodes; k++) {
        Onnx__NodeProto *node = nodes[k];
        for (size_t j = 0; rc == MQ_OK && j < node->n_input; j++) {
            const char *t = node->input[j];
            const struct mq_tensor_range *range = t && *t ? mq_ranges_find(ranges, t) : NULL;
            if (!range || mq_strmap_get(initializers, t) >= 0 || mq_strmap_get(dq_outputs, t) >= 0)
                continue;
            int d = mq_strmap_get(made, t);
            if (d < 0) {
                if (n_dq == cap_dq) {
                    int cap = cap_dq ? 2 * cap_dq : 16;
                    char **v = realloc(dq_names, (size_t)cap * sizeof *v);
                    if (!v) {
                        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
                        break;
                    }
                    dq_names = v;
                    cap_dq = cap;
                }
                rc = add_pair(g, &names, t, range, &dq_names[n_dq], err);
                if (rc == MQ_OK && mq_strmap_put(made, t, n_dq))
                    rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
                if (rc)
                    break;
                d = n_dq++;
            }
            char *renamed = strdup(dq_names[d]);
            if (!renamed) {
                rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
                break;
            }
            free(node->input[j]);
            node->input[j] = renamed;
        }
    }
    /* The pairs were appended: put them before their consumers. */
    if (rc == MQ_OK && n_dq)
        rc = mq_graph_toposort(g, err);
    for (int i = 0; i < n_dq; i++)
        free(dq_names[i]);
    free(dq_names);
    mq_strmap_free(made);
    mq_strmap_free(dq_outputs);
    mq_strmap_free(initializers);
    mq_names_free(&names);
    if (rc)
        mq_error_prefix(err, "--fallback int16: ");
    return rc;
}

/* The one node reading `tensor` (index), -1 when none or several, or a graph output reads it. */
static int sole_consumer(const Onnx__GraphProto *g, const struct mq_strmap *outputs,
                         const char *tensor)
{
    if (mq_strmap_get(outputs, tensor) >= 0)
        return -1;
    int found = -1;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t j = 0; j < g->node[i]->n_input; j++)
            if (strcmp(mq_str(g->node[i]->input[j]), tensor) == 0) {
                if (found >= 0 && found != (int)i)
                    return -1;
                found = (int)i;
            }
    return found;
}

/* Every reader of `tensor` is a QuantizeLinear, and there is one; no graph output. */
static int read_only_by_quantize(const Onnx__GraphProto *g, const struct mq_strmap *outputs,
                                 const char *tensor)
{
    if (mq_strmap_get(outputs, tensor) >= 0)
        return 0;
    int readers = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t j = 0; j < g->node[i]->n_input; j++)
            if (strcmp(mq_str(g->node[i]->input[j]), tensor) == 0) {
                if (strcmp(mq_str(g->node[i]->op_type), "QuantizeLinear") != 0)
                    return 0;
                readers++;
            }
    return readers > 0;
}

int mq_fallback_requantized_by_runtime(const Onnx__ModelProto *model,
                                       Onnx__NodeProto *const *nodes, int n_nodes, int *out,
                                       struct mq_error *err)
{
    const Onnx__GraphProto *g = model->graph;
    struct mq_strmap *producer = mq_strmap_new(), *outputs = mq_strmap_new(),
                     *initializers = mq_strmap_new();
    int rc = producer && outputs && initializers ? MQ_OK : MQ_ERR_MEMORY;
    for (size_t i = 0; rc == MQ_OK && g && i < g->n_node; i++)
        for (size_t j = 0; rc == MQ_OK && j < g->node[i]->n_output; j++)
            if (mq_strmap_put(producer, mq_str(g->node[i]->output[j]), (int)i))
                rc = MQ_ERR_MEMORY;
    for (size_t i = 0; rc == MQ_OK && g && i < g->n_output; i++)
        if (mq_strmap_put(outputs, mq_str(g->output[i]->name), 0))
            rc = MQ_ERR_MEMORY;
    for (size_t i = 0; rc == MQ_OK && g && i < g->n_initializer; i++)
        if (mq_strmap_put(initializers, mq_str(g->initializer[i]->name), 0))
            rc = MQ_ERR_MEMORY;
    for (int k = 0; rc == MQ_OK && k < n_nodes; k++) {
        const Onnx__NodeProto *node = nodes[k];
        const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
        out[k] = 0;
        if (!g || !r || r->role != MQ_ROLE_WEIGHTED || r->weight_input < 0 ||
            node->n_input <= (size_t)r->weight_input || node->n_output < 1 ||
            mq_strmap_get(initializers, mq_str(node->input[r->weight_input])) < 0)
            continue;
        int p = mq_strmap_get(producer, mq_str(node->input[0]));
        if (p < 0 || strcmp(mq_str(g->node[p]->op_type), "DequantizeLinear") != 0)
            continue;
        /* Through the activations onnxruntime drops in front of a QuantizeLinear. */
        const char *t = mq_str(node->output[0]);
        for (int hops = 0; hops < 8; hops++) {
            int c = sole_consumer(g, outputs, t);
            if (c < 0 || mq_op_role(mq_str(g->node[c]->op_type)) != MQ_ROLE_ACTIVATION ||
                g->node[c]->n_output < 1)
                break;
            t = mq_str(g->node[c]->output[0]);
        }
        out[k] = read_only_by_quantize(g, outputs, t);
    }
    mq_strmap_free(producer);
    mq_strmap_free(outputs);
    mq_strmap_free(initializers);
    return rc ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory") : MQ_OK;
}
