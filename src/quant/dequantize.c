#include "quant/dequantize.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/graph.h"

/* Subgraphs nested deeper than this are refused (a corrupt model cannot blow the stack). */
#define MAX_DEPTH 32

/* One entry of the quantizer's fold record (MQ_FOLDED_ACTIVATIONS_KEY). */
struct fold {
    char *op_type;   /* "Relu" or "Clip" */
    char *node;      /* the name the activation node had */
    double min, max; /* Clip bounds (infinite when absent) */
};

struct model_ctx {
    Onnx__ModelProto *model;
    const struct mq_dequantize_options *o;
    struct mq_dequantize_result *r;
    struct mq_names names;
    /* Names a node, initializer or graph input/output uses (value infos may name stale ones). */
    struct mq_strmap *live;
    /* The quantizer's record of folded activations, by tensor; NULL when the model has none. */
    struct mq_strmap *folds;
    struct fold *fold_v;
    int n_folds;
    /* Initializers a removed node read: dropped at the end when nothing else reads them. */
    char **candidates;
    int n_candidates, cap_candidates;
    struct mq_error *err;
};

struct graph_ctx {
    struct model_ctx *m;
    Onnx__GraphProto *g;
    const struct graph_ctx *parent;
    struct mq_strmap *producer;  /* tensor -> node index in g */
    struct mq_strmap *outputs;   /* graph outputs of g */
    struct mq_strmap *inputs;    /* graph inputs of g */
    int n_nodes;                 /* g->n_node before the rewrite: the size of the arrays below */
    int *removed;
    /* Nodes to place right after node i (restored Relu, Identity to a graph output). */
    Onnx__NodeProto ***after;
    int *n_after;
    /* Identical folded DequantizeLinear share one initializer: key -> index of its name. */
    struct mq_strmap *folded;
    char **folded_names;
    int n_folded, cap_folded;
};

static int oom(struct model_ctx *m)
{
    return mq_error_code(m->err, MQ_ERR_MEMORY, "out of memory dequantizing the model");
}

static int is_op(const Onnx__NodeProto *node, const char *op)
{
    return mq_node_is_onnx(node) && strcmp(mq_str(node->op_type), op) == 0;
}

static const char *input_at(const Onnx__NodeProto *node, size_t i)
{
    return i < node->n_input && node->input[i] && *node->input[i] ? node->input[i] : NULL;
}

static const char *node_label(const Onnx__NodeProto *node)
{
    return node->name && *node->name ? node->name : mq_str(node->op_type);
}

static int push_ptr(void ***array, int *n, int *cap, void *item)
{
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 8;
        void **v = realloc(*array, (size_t)c * sizeof *v);
        if (!v)
            return -1;
        *array = v;
        *cap = c;
    }
    (*array)[(*n)++] = item;
    return 0;
}

static int append_repeated(void ***array, size_t *n, void *item)
{
    void **v = realloc(*array, (*n + 1) * sizeof *v);
    if (!v)
        return -1;
    v[*n] = item;
    *array = v;
    (*n)++;
    return 0;
}

static int add_candidate(struct model_ctx *m, const char *name)
{
    if (!name)
        return 0;
    char *copy = strdup(name);
    if (!copy || push_ptr((void ***)&m->candidates, &m->n_candidates, &m->cap_candidates, copy)) {
        free(copy);
        return -1;
    }
    return 0;
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

static Onnx__TensorProto *find_initializer(const struct graph_ctx *gc, const char *name)
{
    for (; gc; gc = gc->parent)
        for (size_t i = 0; i < gc->g->n_initializer; i++)
            if (strcmp(mq_str(gc->g->initializer[i]->name), name) == 0)
                return gc->g->initializer[i];
    return NULL;
}

/* Every read of `from` in g and in its subgraphs becomes `to` (subgraph outputs included). */
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

/* Whether a subgraph of g's nodes (other than through explicit inputs) reads `name`. */
static int read_in_subgraph(const Onnx__GraphProto *g, const char *name, int depth)
{
    if (!g || depth > MAX_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        if (depth > 0)
            for (size_t k = 0; k < node->n_input; k++)
                if (node->input[k] && strcmp(node->input[k], name) == 0)
                    return 1;
        for (size_t a = 0; a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (read_in_subgraph(attr->g, name, depth + 1))
                return 1;
            for (size_t s = 0; s < attr->n_graphs; s++)
                if (read_in_subgraph(attr->graphs[s], name, depth + 1))
                    return 1;
        }
    }
    if (depth > 0)
        for (size_t o = 0; o < g->n_output; o++)
            if (strcmp(mq_str(g->output[o]->name), name) == 0)
                return 1;
    return 0;
}

static Onnx__NodeProto *make_node(const char *op, const char *name, const char *input,
                                  const char *output)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = strdup(op);
    n->name = strdup(name);
    n->input = calloc(1, sizeof *n->input);
    n->output = calloc(1, sizeof *n->output);
    if (n->input)
        n->n_input = 1;
    if (n->output)
        n->n_output = 1;
    if (!n->op_type || !n->name || !n->input || !n->output ||
        !(n->input[0] = strdup(input)) || !(n->output[0] = strdup(output))) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    return n;
}

static int place_after(struct graph_ctx *gc, int i, Onnx__NodeProto *node)
{
    Onnx__NodeProto **v = realloc(gc->after[i], (size_t)(gc->n_after[i] + 1) * sizeof *v);
    if (!v)
        return -1;
    v[gc->n_after[i]++] = node;
    gc->after[i] = v;
    return 0;
}

/* ------------------------------------------------------ folding weights */

static int is_integer_qtype(int t)
{
    switch (t) {
    case MQ_DTYPE_INT8: case MQ_DTYPE_UINT8: case MQ_DTYPE_INT16: case MQ_DTYPE_UINT16:
    case MQ_DTYPE_INT32: case MQ_DTYPE_INT4: case MQ_DTYPE_UINT4:
        return 1;
    default:
        return 0;
    }
}

/* Quantized values as int32 (4-bit types unpacked from raw_data, low nibble first). */
static int decode_ints(const Onnx__TensorProto *p, const char *what, struct mq_tensor *out,
                       struct mq_error *err)
{
    int dtype = p->has_data_type ? p->data_type : 0;
    if (!is_integer_qtype(dtype))
        return mq_error_set(err, "'%s' has type %s; DequantizeLinear of it is not supported", what,
                            mq_dtype_name(dtype));
    if (mq_tensor_proto_validate(p, what, err))
        return MQ_ERR;
    if (p->n_dims > MQ_MAX_RANK)
        return mq_error_set(err, "'%s' has rank %zu", what, p->n_dims);
    if (dtype == MQ_DTYPE_INT4 || dtype == MQ_DTYPE_UINT4) {
        if (!p->has_raw_data)
            return mq_error_set(err, "'%s': 4-bit values outside raw_data are not supported", what);
        if (mq_tensor_alloc(out, MQ_DTYPE_INT32, (int)p->n_dims, p->dims, what, err))
            return MQ_ERR;
        int32_t *d = out->data;
        for (int64_t i = 0; i < out->count; i++) {
            int v = (p->raw_data.data[i / 2] >> (4 * (i & 1))) & 0xF;
            d[i] = dtype == MQ_DTYPE_INT4 && v >= 8 ? v - 16 : v;
        }
        return MQ_OK;
    }
    struct mq_tensor raw = {0};
    if (mq_tensor_from_proto(p, what, &raw, err))
        return MQ_ERR;
    int rc = mq_tensor_alloc(out, MQ_DTYPE_INT32, raw.rank, raw.dims, what, err);
    if (rc == MQ_OK)
        for (int64_t i = 0; i < raw.count; i++)
            ((int32_t *)out->data)[i] = (int32_t)mq_tensor_get_int64(&raw, i);
    mq_tensor_free(&raw);
    return rc;
}

static int decode_scale(const Onnx__TensorProto *p, const char *what, struct mq_tensor *out,
                        struct mq_error *err)
{
    if (mq_tensor_from_proto(p, what, out, err))
        return MQ_ERR;
    if (out->dtype != MQ_DTYPE_FLOAT && out->dtype != MQ_DTYPE_FLOAT16 &&
        out->dtype != MQ_DTYPE_BFLOAT16) {
        int rc = mq_error_set(err, "scale '%s' has type %s, expected a float type", what,
                              mq_dtype_name(out->dtype));
        mq_tensor_free(out);
        return rc;
    }
    return MQ_OK;
}

/*
 * y = (x - zero_point) * scale, per tensor, per axis or per block, the
 * subtraction in integers and the product in float as DequantizeLinear does.
 */
static int dequantize_values(const Onnx__NodeProto *node, const struct mq_tensor *x,
                             const struct mq_tensor *scale, const struct mq_tensor *zp,
                             struct mq_tensor *y, struct mq_error *err)
{
    long long axis = mq_node_attr_int(node, "axis", 1);
    long long block = mq_node_attr_int(node, "block_size", 0);
    char a[128], b[128];
    if (zp && !mq_shape_equal(zp, scale))
        return mq_error_set(err, "zero point shape %s differs from scale shape %s",
                            mq_shape_format(zp->rank, zp->dims, a, sizeof a),
                            mq_shape_format(scale->rank, scale->dims, b, sizeof b));
    int per_tensor = scale->count == 1 && block == 0;
    if (!per_tensor) {
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis >= x->rank)
            return mq_error_set(err, "axis %lld is out of range for rank %d", axis, x->rank);
        if (block < 0)
            return mq_error_set(err, "block_size %lld is negative", block);
        if (block == 0 && (scale->rank != 1 || scale->dims[0] != x->dims[axis]))
            return mq_error_set(err, "per-axis scale of shape %s does not match axis %lld of %s",
                                mq_shape_format(scale->rank, scale->dims, a, sizeof a), axis,
                                mq_shape_format(x->rank, x->dims, b, sizeof b));
        if (block > 0) {
            int ok = scale->rank == x->rank;
            for (int d = 0; ok && d < x->rank; d++)
                ok = d == axis ? scale->dims[d] == (x->dims[d] + block - 1) / block
                               : scale->dims[d] == x->dims[d];
            if (!ok)
                return mq_error_set(err, "blocked scale of shape %s does not match %s with "
                                    "block_size %lld on axis %lld",
                                    mq_shape_format(scale->rank, scale->dims, a, sizeof a),
                                    mq_shape_format(x->rank, x->dims, b, sizeof b), block, axis);
        }
    }
    if (mq_tensor_alloc(y, scale->dtype, x->rank, x->dims, "dequantized weight", err))
        return MQ_ERR;
    int64_t inner = 1;
    for (int d = (int)axis + 1; !per_tensor && d < x->rank; d++)
        inner *= x->dims[d];
    const int32_t *xv = x->data;
    for (int64_t i = 0; i < x->count; i++) {
        int64_t s = 0;
        if (!per_tensor) {
            int64_t c = (i / inner) % x->dims[axis];
            if (block == 0) {
                s = c;
            } else {
                /* Same index in the scale tensor with the axis coordinate divided by block. */
                int64_t outer = i / (inner * x->dims[axis]);
                s = (outer * scale->dims[axis] + c / block) * inner + i % inner;
            }
        }
        int32_t z = zp ? (int32_t)mq_tensor_get_int64(zp, s) : 0;
        float v = (float)(xv[i] - z) * (float)mq_tensor_get_double(scale, s);
        switch (y->dtype) {
        case MQ_DTYPE_FLOAT: ((float *)y->data)[i] = v; break;
        case MQ_DTYPE_FLOAT16: ((uint16_t *)y->data)[i] = mq_float_to_half(v); break;
        default: ((uint16_t *)y->data)[i] = mq_float_to_bfloat16(v); break;
        }
    }
    return MQ_OK;
}

/* `base` without `suffix`, or NULL when it does not end with it. */
static char *strip_suffix(const char *base, const char *suffix)
{
    size_t n = strlen(base), s = strlen(suffix);
    if (n <= s || strcmp(base + n - s, suffix) != 0)
        return NULL;
    char *r = strndup(base, n - s);
    return r;
}

/* The name the weight had before quantization, when the names tell it and it is free. */
static char *original_name(struct graph_ctx *gc, const char *x, const char *out)
{
    const char *from[2] = {out, x};
    const char *suffix[2] = {"_dequantized", "_quantized"};
    for (int k = 0; k < 2; k++) {
        char *base = strip_suffix(from[k], suffix[k]);
        if (base && mq_strmap_get(gc->m->live, base) < 0)
            return base;
        free(base);
    }
    return NULL;
}

static int fold_weight(struct graph_ctx *gc, int i)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *node = gc->g->node[i];
    const char *xn = input_at(node, 0), *sn = input_at(node, 1), *zn = input_at(node, 2);
    const char *out = node->n_output > 0 ? node->output[0] : NULL;
    if (!xn || !sn || !out || !*out)
        return 0;
    Onnx__TensorProto *xp = find_initializer(gc, xn), *sp = find_initializer(gc, sn);
    Onnx__TensorProto *zpp = zn ? find_initializer(gc, zn) : NULL;
    if (!xp || !sp || (zn && !zpp))
        return 0;

    char key[64];
    long long axis = mq_node_attr_int(node, "axis", 1), block = mq_node_attr_int(node, "block_size", 0);
    snprintf(key, sizeof key, "|%lld|%lld", axis, block);
    size_t klen = strlen(xn) + strlen(sn) + (zn ? strlen(zn) : 0) + strlen(key) + 3;
    char *fkey = malloc(klen);
    if (!fkey)
        return oom(m);
    snprintf(fkey, klen, "%s|%s|%s%s", xn, sn, zn ? zn : "", key);
    int shared = mq_strmap_get(gc->folded, fkey);
    const char *target = NULL;
    char *new_name = NULL;
    int rc = MQ_OK;
    struct mq_tensor x = {0}, scale = {0}, zp = {0}, y = {0};
    if (shared >= 0) {
        target = gc->folded_names[shared];
    } else {
        struct mq_error *err = m->err;
        rc = decode_ints(xp, xn, &x, err);
        if (rc == MQ_OK)
            rc = decode_scale(sp, sn, &scale, err);
        if (rc == MQ_OK && zpp && zpp->data_type != xp->data_type)
            rc = mq_error_set(err, "zero point '%s' is %s but '%s' is %s", zn,
                              mq_dtype_name(zpp->data_type), xn, mq_dtype_name(xp->data_type));
        if (rc == MQ_OK && zpp)
            rc = decode_ints(zpp, zn, &zp, err);
        if (rc == MQ_OK)
            rc = dequantize_values(node, &x, &scale, zpp ? &zp : NULL, &y, err);
        if (rc) {
            mq_error_prefix(err, "node '%s' (DequantizeLinear): ", node_label(node));
            goto done;
        }
        int is_output = mq_strmap_get(gc->outputs, out) >= 0;
        new_name = is_output ? NULL : original_name(gc, xn, out);
        target = new_name ? new_name : out;
        Onnx__TensorProto *proto = NULL;
        if (mq_tensor_to_proto(&y, target, &proto, err)) {
            rc = MQ_ERR;
            goto done;
        }
        if (append_repeated((void ***)&gc->g->initializer, &gc->g->n_initializer, proto)) {
            onnx__tensor_proto__free_unpacked(proto, NULL);
            rc = oom(m);
            goto done;
        }
        char *kept = strdup(target);
        if (!kept || mq_names_add(&m->names, target) || mq_strmap_put(m->live, target, 1) ||
            push_ptr((void ***)&gc->folded_names, &gc->n_folded, &gc->cap_folded, kept) ||
            mq_strmap_put(gc->folded, fkey, gc->n_folded - 1)) {
            free(kept);
            rc = oom(m);
            goto done;
        }
        target = kept;
        m->r->weights_folded++;
        if (new_name)
            m->r->weights_renamed++;
    }
    if (strcmp(target, out) != 0 && rename_reads(gc->g, out, target, 0, 0)) {
        rc = oom(m);
        goto done;
    }
    if (add_candidate(m, xn) || add_candidate(m, sn) || add_candidate(m, zn)) {
        rc = oom(m);
        goto done;
    }
    gc->removed[i] = 1;
done:
    free(fkey);
    free(new_name);
    mq_tensor_free(&x);
    mq_tensor_free(&scale);
    mq_tensor_free(&zp);
    mq_tensor_free(&y);
    return rc;
}

/* ------------------------------------------------- activation pairs */

/* Smallest value of a quantized type (8-bit unsigned when unknown, as QuantizeLinear's default). */
static int64_t qmin_of(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_INT8: return -128;
    case MQ_DTYPE_INT16: return -32768;
    case MQ_DTYPE_INT4: return -8;
    case MQ_DTYPE_INT32: return INT32_MIN;
    default: return 0;
    }
}

/*
 * Whether the pair clamps at exactly zero from below: then it may stand for a
 * Relu the quantizer folded into the op before it.
 */
static int clamps_at_zero(const struct graph_ctx *gc, const Onnx__NodeProto *q)
{
    const char *sn = input_at(q, 1), *zn = input_at(q, 2);
    Onnx__TensorProto *sp = sn ? find_initializer(gc, sn) : NULL;
    if (!sp || mq_tensor_proto_count(sp) != 1)
        return 0;
    if (!zn)
        return 1; /* uint8 with zero point 0 */
    Onnx__TensorProto *zp = find_initializer(gc, zn);
    if (!zp || mq_tensor_proto_count(zp) != 1)
        return 0;
    struct mq_tensor z = {0};
    struct mq_error ignored;
    if (decode_ints(zp, zn, &z, &ignored))
        return 0;
    int at_min = ((const int32_t *)z.data)[0] == qmin_of(zp->data_type);
    mq_tensor_free(&z);
    return at_min;
}

/* Ops after which QUANT-SPEC folds a Relu or Clip into the Q/DQ pair, and that can go negative. */
static int folds_activation(const Onnx__NodeProto *node)
{
    static const char *const ops[] = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add",
                                      "Sub", "Mul", "BatchNormalization"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (is_op(node, ops[k]))
            return 1;
    return 0;
}

static Onnx__NodeProto *make_node_n(const char *op, const char *name, const char *const *inputs,
                                    int n_inputs, const char *output)
{
    Onnx__NodeProto *n = make_node(op, name, inputs[0], output);
    if (!n || n_inputs == 1)
        return n;
    char **v = realloc(n->input, (size_t)n_inputs * sizeof *v);
    if (!v) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    n->input = v;
    for (int k = 1; k < n_inputs; k++) {
        if (!(n->input[k] = strdup(inputs[k]))) {
            onnx__node_proto__free_unpacked(n, NULL);
            return NULL;
        }
        n->n_input++;
    }
    return n;
}

static int add_float_attr(Onnx__NodeProto *node, const char *name, float value)
{
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a)
        return -1;
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_type = 1;
    a->f = value;
    a->has_f = 1;
    if (!a->name || append_repeated((void ***)&node->attribute, &node->n_attribute, a)) {
        onnx__attribute_proto__free_unpacked(a, NULL);
        return -1;
    }
    return 0;
}

/* A scalar float initializer in g under a fresh name based on `base`; the name, malloc'd. */
static char *add_scalar(struct graph_ctx *gc, const char *base, float value)
{
    char *name = mq_names_fresh(&gc->m->names, base);
    struct mq_tensor t = {0};
    Onnx__TensorProto *p = NULL;
    struct mq_error ignored;
    if (!name || mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 0, NULL, name, &ignored))
        goto fail;
    *(float *)t.data = value;
    if (mq_tensor_to_proto(&t, name, &p, &ignored) ||
        append_repeated((void ***)&gc->g->initializer, &gc->g->n_initializer, p))
        goto fail;
    mq_tensor_free(&t);
    return name;
fail:
    if (p)
        onnx__tensor_proto__free_unpacked(p, NULL);
    mq_tensor_free(&t);
    free(name);
    return NULL;
}

/*
 * Puts back the activation the quantizer folded into the pair of t: the
 * producer writes t_<op>_input and the activation writes t.  Without a fold
 * record it is a Relu (the pair clamps at zero).
 */
static int restore_activation(struct graph_ctx *gc, int producer, const char *t,
                              const struct fold *f)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *prod = gc->g->node[producer];
    const char *op = f ? f->op_type : "Relu";
    char *mid = NULL, *name = NULL, *base = NULL, *lo = NULL, *hi = NULL;
    Onnx__NodeProto *act = NULL;
    int rc = MQ_OK;
    size_t n = strlen(t) + strlen(op) + 16;
    if (!(base = malloc(n)))
        goto oom;
    snprintf(base, n, "%s_%s_input", t, op);
    if (!(mid = mq_names_fresh(&m->names, base)))
        goto oom;
    if (f && *f->node && mq_strmap_get(m->live, f->node) < 0 && mq_names_add(&m->names, f->node) == 0)
        name = strdup(f->node);
    else {
        snprintf(base, n, "%s_%s", t, op);
        name = mq_names_fresh(&m->names, base);
    }
    if (!name)
        goto oom;
    if (strcmp(op, "Clip") != 0) {
        act = make_node(op, name, mid, t);
    } else if (mq_model_proto_opset(m->model, "") >= 11) {
        /* Bounds as inputs; an absent one is an empty name (trailing ones dropped). */
        snprintf(base, n, "%s_min", name);
        if (isfinite(f->min) && !(lo = add_scalar(gc, base, (float)f->min)))
            goto oom;
        snprintf(base, n, "%s_max", name);
        if (isfinite(f->max) && !(hi = add_scalar(gc, base, (float)f->max)))
            goto oom;
        const char *inputs[3] = {mid, lo ? lo : "", hi ? hi : ""};
        act = make_node_n(op, name, inputs, hi ? 3 : lo ? 2 : 1, t);
    } else {
        act = make_node(op, name, mid, t);
        if (act && ((isfinite(f->min) && add_float_attr(act, "min", (float)f->min)) ||
                    (isfinite(f->max) && add_float_attr(act, "max", (float)f->max)))) {
            onnx__node_proto__free_unpacked(act, NULL);
            act = NULL;
        }
    }
    if (!act)
        goto oom;
    for (size_t o = 0; o < prod->n_output; o++)
        if (prod->output[o] && strcmp(prod->output[o], t) == 0 &&
            replace_string(&prod->output[o], mid))
            goto oom;
    if (place_after(gc, producer, act))
        goto oom;
    act = NULL;
    if (mq_strmap_put(gc->producer, mid, producer))
        goto oom;
    m->r->activations_restored++;
    if (!f)
        m->r->restored_by_guess++;
    goto done;
oom:
    rc = oom(m);
done:
    if (act)
        onnx__node_proto__free_unpacked(act, NULL);
    free(mid);
    free(name);
    free(base);
    free(lo);
    free(hi);
    return rc;
}

static int same_input(const Onnx__NodeProto *a, const Onnx__NodeProto *b, size_t k)
{
    const char *x = input_at(a, k), *y = input_at(b, k);
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

/* Nodes of g reading `name`, in order; -1 in *bad when one is not a matching DequantizeLinear. */
static int collect_dq_readers(const struct graph_ctx *gc, const Onnx__NodeProto *q,
                              const char *name, int *readers, int max, int *bad)
{
    int n = 0;
    *bad = 0;
    for (size_t i = 0; i < gc->g->n_node; i++) {
        if (gc->removed[i])
            continue;
        const Onnx__NodeProto *node = gc->g->node[i];
        int reads = 0;
        for (size_t k = 0; k < node->n_input; k++)
            reads |= node->input[k] && strcmp(node->input[k], name) == 0;
        if (!reads)
            continue;
        if (!is_op(node, "DequantizeLinear") || !same_input(node, q, 1) ||
            !same_input(node, q, 2) || node->n_output < 1 || !*mq_str(node->output[0]) ||
            mq_node_attr_int(node, "axis", 1) != mq_node_attr_int(q, "axis", 1) ||
            strcmp(mq_str(node->input[0]), name) != 0 || n == max) {
            *bad = 1;
            return n;
        }
        readers[n++] = (int)i;
    }
    return n;
}

static int count_readers(const Onnx__GraphProto *g, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (g->node[i]->input[k] && strcmp(g->node[i]->input[k], name) == 0)
                n++;
    return n;
}

/* Gives the producer's output t the name d (a graph output), or copies t to d. */
static int route_to_output(struct graph_ctx *gc, int q_index, const char *t, const char *d)
{
    struct model_ctx *m = gc->m;
    int p = mq_strmap_get(gc->producer, t);
    int movable = p >= 0 && !gc->removed[p] && mq_strmap_get(gc->outputs, t) < 0 &&
                  count_readers(gc->g, t) == 1 && !read_in_subgraph(gc->g, t, 0);
    if (movable) {
        Onnx__NodeProto *prod = gc->g->node[p];
        for (size_t o = 0; o < prod->n_output; o++)
            if (prod->output[o] && strcmp(prod->output[o], t) == 0 &&
                replace_string(&prod->output[o], d))
                return oom(m);
        /* A restored Relu writes t: it is the last node to touch the value. */
        for (int k = 0; k < gc->n_after[p]; k++) {
            Onnx__NodeProto *a = gc->after[p][k];
            if (a->n_output > 0 && strcmp(a->output[0], t) == 0 && replace_string(&a->output[0], d))
                return oom(m);
        }
        return 0;
    }
    size_t n = strlen(d) + 16;
    char *base = malloc(n);
    if (!base)
        return oom(m);
    snprintf(base, n, "%s_Identity", d);
    char *name = mq_names_fresh(&m->names, base);
    free(base);
    Onnx__NodeProto *id = name ? make_node("Identity", name, t, d) : NULL;
    free(name);
    if (!id || place_after(gc, q_index, id)) {
        if (id)
            onnx__node_proto__free_unpacked(id, NULL);
        return oom(m);
    }
    return 0;
}

#define MAX_READERS 256

static int remove_pair(struct graph_ctx *gc, int i)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *q = gc->g->node[i];
    const char *t = input_at(q, 0);
    const char *qout = q->n_output > 0 ? q->output[0] : NULL;
    if (!t || !qout || !*qout)
        return 0;
    int readers[MAX_READERS], bad;
    int n = collect_dq_readers(gc, q, qout, readers, MAX_READERS, &bad);
    if (bad || n == 0 || mq_strmap_get(gc->outputs, qout) >= 0 || read_in_subgraph(gc->g, qout, 0)) {
        m->r->kept_quantize++;
        return 0;
    }
    int producer = mq_strmap_get(gc->producer, t);
    int live_producer = producer >= 0 && !gc->removed[producer] &&
                        mq_strmap_get(gc->outputs, t) < 0;
    int fk = m->folds ? mq_strmap_get(m->folds, t) : -1;
    int restore = live_producer && (m->folds ? fk >= 0
                                             : folds_activation(gc->g->node[producer]) &&
                                                   clamps_at_zero(gc, q));
    if (restore) {
        int rc = restore_activation(gc, producer, t, fk >= 0 ? &m->fold_v[fk] : NULL);
        if (rc)
            return rc;
    }
    for (int k = 0; k < n; k++) {
        Onnx__NodeProto *dq = gc->g->node[readers[k]];
        const char *d = dq->output[0];
        int rc;
        if (mq_strmap_get(gc->outputs, d) >= 0)
            rc = n == 1 ? route_to_output(gc, i, t, d) : MQ_OK;
        else
            rc = rename_reads(gc->g, d, t, 0, 0) ? oom(m) : MQ_OK;
        if (rc == MQ_OK && mq_strmap_get(gc->outputs, d) >= 0 && n > 1) {
            /* Several outputs from one pair: each gets a copy of t. */
            size_t len = strlen(d) + 16;
            char *base = malloc(len), *name = NULL;
            if (base) {
                snprintf(base, len, "%s_Identity", d);
                name = mq_names_fresh(&m->names, base);
            }
            Onnx__NodeProto *id = name ? make_node("Identity", name, t, d) : NULL;
            free(base);
            free(name);
            if (!id || place_after(gc, i, id)) {
                if (id)
                    onnx__node_proto__free_unpacked(id, NULL);
                rc = oom(m);
            }
        }
        if (rc)
            return rc;
        gc->removed[readers[k]] = 1;
    }
    if (add_candidate(m, input_at(q, 1)) || add_candidate(m, input_at(q, 2)))
        return oom(m);
    gc->removed[i] = 1;
    m->r->pairs_removed++;
    return 0;
}

/* -------------------------------------------------------------- graphs */

static void graph_ctx_free(struct graph_ctx *gc)
{
    mq_strmap_free(gc->producer);
    mq_strmap_free(gc->outputs);
    mq_strmap_free(gc->inputs);
    mq_strmap_free(gc->folded);
    for (int i = 0; i < gc->n_folded; i++)
        free(gc->folded_names[i]);
    free(gc->folded_names);
    if (gc->after) {
        for (int i = 0; i < gc->n_nodes; i++) {
            for (int k = 0; k < gc->n_after[i]; k++)
                onnx__node_proto__free_unpacked(gc->after[i][k], NULL);
            free(gc->after[i]);
        }
    }
    free(gc->after);
    free(gc->n_after);
    free(gc->removed);
}

static int graph_ctx_init(struct graph_ctx *gc, struct model_ctx *m, Onnx__GraphProto *g,
                          const struct graph_ctx *parent)
{
    memset(gc, 0, sizeof *gc);
    gc->m = m;
    gc->g = g;
    gc->parent = parent;
    gc->n_nodes = (int)g->n_node;
    size_t n = g->n_node ? g->n_node : 1;
    gc->producer = mq_strmap_new();
    gc->outputs = mq_strmap_new();
    gc->inputs = mq_strmap_new();
    gc->folded = mq_strmap_new();
    gc->removed = calloc(n, sizeof *gc->removed);
    gc->after = calloc(n, sizeof *gc->after);
    gc->n_after = calloc(n, sizeof *gc->n_after);
    if (!gc->producer || !gc->outputs || !gc->inputs || !gc->folded || !gc->removed ||
        !gc->after || !gc->n_after)
        return -1;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t o = 0; o < g->node[i]->n_output; o++)
            if (g->node[i]->output[o] && *g->node[i]->output[o] &&
                mq_strmap_put(gc->producer, g->node[i]->output[o], (int)i))
                return -1;
    for (size_t o = 0; o < g->n_output; o++)
        if (mq_strmap_put(gc->outputs, mq_str(g->output[o]->name), (int)o))
            return -1;
    for (size_t k = 0; k < g->n_input; k++)
        if (mq_strmap_put(gc->inputs, mq_str(g->input[k]->name), (int)k))
            return -1;
    return 0;
}

/* The new node list: survivors in order, each followed by what was placed after it. */
static int assemble(struct graph_ctx *gc)
{
    Onnx__GraphProto *g = gc->g;
    size_t total = 0;
    for (size_t i = 0; i < g->n_node; i++)
        total += (size_t)(!gc->removed[i]) + (size_t)gc->n_after[i];
    Onnx__NodeProto **nodes = malloc((total ? total : 1) * sizeof *nodes);
    if (!nodes)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        if (gc->removed[i])
            onnx__node_proto__free_unpacked(g->node[i], NULL);
        else
            nodes[k++] = g->node[i];
        for (int a = 0; a < gc->n_after[i]; a++)
            nodes[k++] = gc->after[i][a];
        gc->n_after[i] = 0;
    }
    free(g->node);
    g->node = nodes;
    g->n_node = k;
    return 0;
}

static int process_graph(struct model_ctx *m, Onnx__GraphProto *g, const struct graph_ctx *parent,
                         int depth);

static int process_subgraphs(struct model_ctx *m, Onnx__GraphProto *g,
                             const struct graph_ctx *gc, int depth)
{
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *node = g->node[i];
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            int rc = attr->g ? process_graph(m, attr->g, gc, depth + 1) : 0;
            for (size_t s = 0; rc == 0 && s < attr->n_graphs; s++)
                rc = process_graph(m, attr->graphs[s], gc, depth + 1);
            if (rc) {
                mq_error_prefix(m->err, "node '%s' (%s), attribute '%s': ", node_label(node),
                                mq_str(node->op_type), mq_str(attr->name));
                return rc;
            }
        }
    }
    return 0;
}

static int process_graph(struct model_ctx *m, Onnx__GraphProto *g, const struct graph_ctx *parent,
                         int depth)
{
    if (depth > MAX_DEPTH)
        return mq_error_set(m->err, "subgraphs nested deeper than %d", MAX_DEPTH);
    struct graph_ctx gc;
    int rc = graph_ctx_init(&gc, m, g, parent) ? oom(m) : MQ_OK;
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++)
        if (is_op(g->node[i], "DequantizeLinear"))
            rc = fold_weight(&gc, (int)i);
    for (size_t i = 0; rc == MQ_OK && !m->o->weights_only && i < g->n_node; i++)
        if (!gc.removed[i] && is_op(g->node[i], "QuantizeLinear"))
            rc = remove_pair(&gc, (int)i);
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++)
        if (!gc.removed[i] && is_op(g->node[i], "DequantizeLinear"))
            m->r->kept_dequantize++;
    if (rc == MQ_OK && assemble(&gc))
        rc = oom(m);
    /* Subgraphs last: they see the outer names as renamed here. */
    if (rc == MQ_OK)
        rc = process_subgraphs(m, g, &gc, depth);
    graph_ctx_free(&gc);
    return rc;
}

/* ------------------------------------------------------------ cleanup */

static int collect_reads(struct mq_strmap *reads, const Onnx__GraphProto *g, int depth)
{
    if (!g || depth > MAX_DEPTH)
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
    if (!g || depth > MAX_DEPTH)
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
    if (!g || depth > MAX_DEPTH)
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

static int cleanup(struct model_ctx *m)
{
    struct mq_strmap *used = mq_strmap_new(), *cand = mq_strmap_new();
    int rc = !used || !cand || collect_reads(used, m->model->graph, 0);
    for (int i = 0; !rc && i < m->n_candidates; i++)
        rc = mq_strmap_put(cand, m->candidates[i], 1);
    if (!rc)
        rc = drop_unused(m, m->model->graph, used, cand, 0);
    mq_strmap_free(used);
    mq_strmap_free(cand);
    return rc ? oom(m) : MQ_OK;
}

/* ------------------------------------------------------ fold record */

static void folds_free(struct model_ctx *m)
{
    for (int i = 0; i < m->n_folds; i++) {
        free(m->fold_v[i].op_type);
        free(m->fold_v[i].node);
    }
    free(m->fold_v);
    mq_strmap_free(m->folds);
}

static int parse_bound(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end == s || *end ? -1 : 0;
}

/*
 * Reads the record of folded activations and removes it from the model (the
 * dequantized model has its activations back).  Lines of
 * "tensor<TAB>op_type<TAB>node<TAB>min<TAB>max".
 */
static int read_folds(struct model_ctx *m)
{
    Onnx__ModelProto *model = m->model;
    for (size_t i = 0; i < model->n_metadata_props; i++) {
        Onnx__StringStringEntryProto *e = model->metadata_props[i];
        if (strcmp(mq_str(e->key), MQ_FOLDED_ACTIVATIONS_KEY) != 0)
            continue;
        char *text = strdup(mq_str(e->value));
        if (!text || !(m->folds = mq_strmap_new())) {
            free(text);
            return oom(m);
        }
        int rc = MQ_OK, line_no = 0;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line && rc == MQ_OK;
             line = strtok_r(NULL, "\n", &save)) {
            line_no++;
            char *field[5];
            int nf = 0;
            for (char *p = line; nf < 5; nf++) {
                field[nf] = p;
                char *tab = strchr(p, '\t');
                if (!tab) {
                    nf++;
                    break;
                }
                *tab = '\0';
                p = tab + 1;
            }
            struct fold f = {0};
            if (nf != 5 || (strcmp(field[1], "Relu") != 0 && strcmp(field[1], "Clip") != 0) ||
                parse_bound(field[3], &f.min) || parse_bound(field[4], &f.max) || !*field[0]) {
                rc = mq_error_set(m->err, "metadata '%s', line %d: expected tensor, Relu or Clip, "
                                  "node, min and max separated by tabs", MQ_FOLDED_ACTIVATIONS_KEY,
                                  line_no);
                break;
            }
            struct fold *v = realloc(m->fold_v, (size_t)(m->n_folds + 1) * sizeof *v);
            if (!v) {
                rc = oom(m);
                break;
            }
            m->fold_v = v;
            f.op_type = strdup(field[1]);
            f.node = strdup(field[2]);
            v[m->n_folds++] = f;
            if (!f.op_type || !f.node || mq_strmap_put(m->folds, field[0], m->n_folds - 1))
                rc = oom(m);
        }
        free(text);
        if (rc)
            return rc;
        onnx__string_string_entry_proto__free_unpacked(e, NULL);
        memmove(&model->metadata_props[i], &model->metadata_props[i + 1],
                (model->n_metadata_props - i - 1) * sizeof *model->metadata_props);
        model->n_metadata_props--;
        return MQ_OK;
    }
    return MQ_OK;
}

/* ------------------------------------------------------------- checks */

static int scan(const Onnx__GraphProto *g, int depth, int *n_qdq, const Onnx__NodeProto **op_format)
{
    if (!g || depth > MAX_DEPTH)
        return 0;
    static const char *const operator_format[] = {
        "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QLinearAdd",
        "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool", "QLinearAveragePool",
        "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QGemm", "DynamicQuantizeLinear",
        "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention"};
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        const char *op = mq_str(node->op_type);
        if (strcmp(op, "QuantizeLinear") == 0 || strcmp(op, "DequantizeLinear") == 0)
            (*n_qdq)++;
        for (size_t k = 0; k < sizeof operator_format / sizeof operator_format[0]; k++)
            if (strcmp(op, operator_format[k]) == 0 && !*op_format)
                *op_format = node;
        for (size_t a = 0; a < node->n_attribute; a++) {
            scan(node->attribute[a]->g, depth + 1, n_qdq, op_format);
            for (size_t s = 0; s < node->attribute[a]->n_graphs; s++)
                scan(node->attribute[a]->graphs[s], depth + 1, n_qdq, op_format);
        }
    }
    return 0;
}

int mq_dequantize(Onnx__ModelProto *model, const struct mq_dequantize_options *options,
                  struct mq_dequantize_result *result, struct mq_error *err)
{
    static const struct mq_dequantize_options defaults = {0};
    memset(result, 0, sizeof *result);
    if (!model->graph)
        return mq_error_set(err, "the model has no graph");
    int n_qdq = 0;
    const Onnx__NodeProto *op_format = NULL;
    scan(model->graph, 0, &n_qdq, &op_format);
    if (op_format)
        return mq_error_set(err, "node '%s' (%s): an operator-format quantized model (integer "
                            "ops such as QLinearConv); only QDQ models can be dequantized",
                            node_label(op_format), mq_str(op_format->op_type));
    if (n_qdq == 0)
        return mq_error_set(err, "the model has no QuantizeLinear or DequantizeLinear node: it "
                            "is not a QDQ model, nothing to dequantize");
    struct model_ctx m;
    memset(&m, 0, sizeof m);
    m.model = model;
    m.o = options ? options : &defaults;
    m.r = result;
    m.err = err;
    int rc = mq_names_collect(model, &m.names, err);
    if (rc == MQ_OK && (!(m.live = mq_strmap_new()) || collect_live(m.live, model->graph, 0)))
        rc = oom(&m);
    if (rc == MQ_OK)
        rc = read_folds(&m);
    if (rc == MQ_OK)
        rc = process_graph(&m, model->graph, NULL, 0);
    if (rc == MQ_OK)
        rc = cleanup(&m);
    if (rc == MQ_OK && result->weights_folded == 0 && result->pairs_removed == 0)
        rc = mq_error_set(err, "none of the model's %d QuantizeLinear/DequantizeLinear nodes "
                          "could be removed (no DequantizeLinear of a constant, no "
                          "QuantizeLinear read only by matching DequantizeLinear)", n_qdq);
    for (int i = 0; i < m.n_candidates; i++)
        free(m.candidates[i]);
    free(m.candidates);
    mq_names_free(&m.names);
    mq_strmap_free(m.live);
    folds_free(&m);
    return rc;
}
