/*
 * Opset conversion, node by node.  For each ai.onnx node the version that
 * applies is the model's import; each converter below turns one op's older
 * signature into the one the target opset defines.  The list of ops whose
 * signature changed between opset 1 and 21 follows onnx docs/Changelog.md.
 */
#include "quant/opset.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/plan.h"
#include "core/limits.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"

struct convert_ctx {
    Onnx__ModelProto *model;
    int from, to;
    const struct mq_opset_hints *hints;
    struct mq_error *err;
    int generated;       /* counter for fresh names */
};

/* ---- small protobuf-c editing helpers ---- */

static int oom(struct convert_ctx *c)
{
    return mq_error_code(c->err, MQ_ERR_MEMORY, "out of memory converting the opset");
}

static Onnx__AttributeProto *attr_find(Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(mq_str(n->attribute[i]->name), name) == 0)
            return n->attribute[i];
    return NULL;
}

static void attr_remove(Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(mq_str(n->attribute[i]->name), name) == 0) {
            onnx__attribute_proto__free_unpacked(n->attribute[i], NULL);
            memmove(&n->attribute[i], &n->attribute[i + 1],
                    (n->n_attribute - i - 1) * sizeof *n->attribute);
            n->n_attribute--;
            return;
        }
}

static Onnx__AttributeProto *attr_add(Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto **list = realloc(n->attribute, (n->n_attribute + 1) * sizeof *list);
    if (!list)
        return NULL;
    n->attribute = list;
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    if (!a->name) {
        free(a);
        return NULL;
    }
    a->has_type = 1;
    a->type = type;
    list[n->n_attribute++] = a;
    return a;
}

static int attr_set_string(Onnx__NodeProto *n, const char *name, const char *value)
{
    attr_remove(n, name);
    Onnx__AttributeProto *a = attr_add(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (!a || !(a->s.data = (uint8_t *)strdup(value)))
        return -1;
    a->has_s = 1;
    a->s.len = strlen(value);
    return 0;
}

static int attr_set_int(Onnx__NodeProto *n, const char *name, int64_t value)
{
    attr_remove(n, name);
    Onnx__AttributeProto *a = attr_add(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a)
        return -1;
    a->has_i = 1;
    a->i = value;
    return 0;
}

static int attr_string_is(Onnx__NodeProto *n, const char *name, const char *value)
{
    Onnx__AttributeProto *a = attr_find(n, name);
    return a && a->has_s && a->s.len == strlen(value) && memcmp(a->s.data, value, a->s.len) == 0;
}

/* Sets input `index`, padding with "" (absent optional inputs) as needed. */
static int input_set(Onnx__NodeProto *n, size_t index, const char *name)
{
    if (index >= n->n_input) {
        char **list = realloc(n->input, (index + 1) * sizeof *list);
        if (!list)
            return -1;
        n->input = list;
        for (size_t i = n->n_input; i <= index; i++)
            if (!(list[i] = strdup(""))) {
                n->n_input = i;
                return -1;
            }
        n->n_input = index + 1;
    }
    char *copy = strdup(name);
    if (!copy)
        return -1;
    free(n->input[index]);
    n->input[index] = copy;
    return 0;
}

static int graph_has_name(const Onnx__GraphProto *g, const char *name, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(mq_str(g->initializer[i]->name), name) == 0)
            return 1;
    for (size_t i = 0; i < g->n_input; i++)
        if (strcmp(mq_str(g->input[i]->name), name) == 0)
            return 1;
    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        if (strcmp(mq_str(node->name), name) == 0)
            return 1;
        for (size_t o = 0; o < node->n_output; o++)
            if (strcmp(mq_str(node->output[o]), name) == 0)
                return 1;
        for (size_t a = 0; a < node->n_attribute; a++)
            if (node->attribute[a]->g && graph_has_name(node->attribute[a]->g, name, depth + 1))
                return 1;
    }
    return 0;
}

/* True when some node (subgraphs included) or graph output reads the tensor. */
static int graph_reads(const Onnx__GraphProto *g, const char *name, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_output; i++)
        if (strcmp(mq_str(g->output[i]->name), name) == 0)
            return 1;
    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        for (size_t i = 0; i < node->n_input; i++)
            if (strcmp(mq_str(node->input[i]), name) == 0)
                return 1;
        for (size_t a = 0; a < node->n_attribute; a++)
            if (node->attribute[a]->g && graph_reads(node->attribute[a]->g, name, depth + 1))
                return 1;
    }
    return 0;
}

/* A name used nowhere in the model: base, or base_N. */
static char *fresh_name(struct convert_ctx *c, const char *base)
{
    size_t n = strlen(base) + 24;
    char *name = malloc(n);
    if (!name)
        return NULL;
    snprintf(name, n, "%s", base);
    while (graph_has_name(c->model->graph, name, 0))
        snprintf(name, n, "%s_%d", base, ++c->generated);
    return name;
}

/* Adds an initializer holding `count` values of dtype to g; returns its (fresh) name. */
static char *add_initializer(struct convert_ctx *c, Onnx__GraphProto *g, const char *base,
                             int dtype, int rank, int64_t count, const void *values)
{
    struct mq_tensor t;
    int64_t dims[1] = {count};
    if (mq_tensor_alloc(&t, dtype, rank, dims, base, c->err))
        return NULL;
    if (t.count)
        memcpy(t.data, values, (size_t)t.count * mq_dtype_size(dtype));
    char *name = fresh_name(c, base);
    Onnx__TensorProto *proto = NULL;
    Onnx__TensorProto **list = NULL;
    if (!name || mq_tensor_to_proto(&t, name, &proto, c->err) ||
        !(list = realloc(g->initializer, (g->n_initializer + 1) * sizeof *list))) {
        mq_tensor_free(&t);
        free(name);
        if (proto)
            onnx__tensor_proto__free_unpacked(proto, NULL);
        return NULL;
    }
    mq_tensor_free(&t);
    g->initializer = list;
    list[g->n_initializer++] = proto;
    return name;
}

/* Moves an INTS attribute into a new int64 initializer fed as input `index`. */
static int ints_attr_to_input(struct convert_ctx *c, Onnx__GraphProto *g, Onnx__NodeProto *n,
                              const char *attr, size_t index, const char *suffix)
{
    Onnx__AttributeProto *a = attr_find(n, attr);
    if (!a)
        return 0;
    char base[256];
    snprintf(base, sizeof base, "%s_%s", *mq_str(n->name) ? n->name : mq_str(n->op_type), suffix);
    char *name = add_initializer(c, g, base, MQ_DTYPE_INT64, 1, (int64_t)a->n_ints, a->ints);
    if (!name)
        return c->err->message[0] ? MQ_ERR : oom(c);
    int rc = input_set(n, index, name);
    free(name);
    attr_remove(n, attr);
    return rc ? oom(c) : 0;
}

static int float_input(struct convert_ctx *c, Onnx__GraphProto *g, Onnx__NodeProto *n,
                       size_t index, float value, const char *suffix)
{
    char base[256];
    snprintf(base, sizeof base, "%s_%s", *mq_str(n->name) ? n->name : mq_str(n->op_type), suffix);
    char *name = add_initializer(c, g, base, MQ_DTYPE_FLOAT, 0, 1, &value);
    if (!name)
        return c->err->message[0] ? MQ_ERR : oom(c);
    int rc = input_set(n, index, name);
    free(name);
    return rc ? oom(c) : 0;
}

static int refuse(struct convert_ctx *c, const Onnx__NodeProto *n, const char *why)
{
    return mq_error_set(c->err, "node '%s' (%s, opset %d): cannot convert to opset %d: %s",
                        mq_str(n->name), mq_str(n->op_type), c->from, c->to, why);
}

/* ---- shape knowledge ---- */

static int shape_from_infos(Onnx__ValueInfoProto **infos, size_t n, const char *name,
                            int64_t *dims)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(mq_str(infos[i]->name), name) != 0 || !infos[i]->type ||
            infos[i]->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
            !infos[i]->type->tensor_type->shape)
            continue;
        const Onnx__TensorShapeProto *shape = infos[i]->type->tensor_type->shape;
        if (shape->n_dim > MQ_MAX_RANK)
            return -1;
        for (size_t d = 0; d < shape->n_dim; d++)
            dims[d] = shape->dim[d]->value_case ==
                              ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                          ? shape->dim[d]->dim_value : -1;
        return (int)shape->n_dim;
    }
    return -1;
}

/* The shape of `name` (value_info, graph inputs and outputs, initializers, then the hints):
   its rank with dims[] filled (-1 for a dim not known), or -1. */
static int shape_of(struct convert_ctx *c, const Onnx__GraphProto *g, const char *name,
                    int64_t *dims)
{
    int r = shape_from_infos(g->value_info, g->n_value_info, name, dims);
    if (r < 0)
        r = shape_from_infos(g->input, g->n_input, name, dims);
    if (r < 0)
        r = shape_from_infos(g->output, g->n_output, name, dims);
    for (size_t i = 0; r < 0 && i < g->n_initializer; i++)
        if (strcmp(mq_str(g->initializer[i]->name), name) == 0 &&
            g->initializer[i]->n_dims <= MQ_MAX_RANK) {
            r = (int)g->initializer[i]->n_dims;
            for (int d = 0; d < r; d++)
                dims[d] = g->initializer[i]->dims[d];
        }
    if (r < 0 && c->hints && c->hints->shape_of)
        r = c->hints->shape_of(c->hints->user, name, dims);
    return r;
}

static int rank_of(struct convert_ctx *c, const Onnx__GraphProto *g, const char *name)
{
    int64_t dims[MQ_MAX_RANK];
    return shape_of(c, g, name, dims);
}

/* ---- converters ---- */

static Onnx__NodeProto *node_new(const char *op_type, const char *name)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = strdup(op_type);
    n->name = name ? strdup(name) : NULL;
    if (!n->op_type || (name && !n->name)) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    return n;
}

static int node_add_output(Onnx__NodeProto *n, const char *name)
{
    char **list = realloc(n->output, (n->n_output + 1) * sizeof *list);
    if (!list)
        return -1;
    n->output = list;
    if (!(list[n->n_output] = strdup(name)))
        return -1;
    n->n_output++;
    return 0;
}

/*
 * Softmax before 13 flattens the input to 2-D at `axis` and normalises the
 * second dimension; from 13 it normalises one axis.  Equal when axis is the
 * last one; otherwise Flatten -> Softmax(-1) -> Reshape to the input's shape.
 * Returns the nodes to put in place of the original (which is reused).
 */
static int convert_softmax(struct convert_ctx *c, Onnx__GraphProto *g, Onnx__NodeProto *n,
                           Onnx__NodeProto **extra, int *n_extra)
{
    Onnx__AttributeProto *a = attr_find(n, "axis");
    int64_t axis = a && a->has_i ? a->i : 1;
    int rank = rank_of(c, g, mq_str(n->input[0]));
    if (rank >= 0) {
        int64_t normalized = axis < 0 ? axis + rank : axis;
        if (normalized == rank - 1)
            return attr_set_int(n, "axis", -1) ? oom(c) : 0;
    }
    char base[256];
    const char *label = *mq_str(n->name) ? n->name : mq_str(n->op_type);
    snprintf(base, sizeof base, "%s_input_shape", label);
    char *shape_name = fresh_name(c, base);
    snprintf(base, sizeof base, "%s_flat", label);
    char *flat_name = fresh_name(c, base);
    snprintf(base, sizeof base, "%s_flat_out", label);
    char *flat_out = fresh_name(c, base);
    Onnx__NodeProto *shape = NULL, *flatten = NULL, *reshape = NULL;
    int rc = MQ_OK;
    if (!shape_name || !flat_name || !flat_out)
        goto fail;
    snprintf(base, sizeof base, "%s_shape", label);
    shape = node_new("Shape", base);
    snprintf(base, sizeof base, "%s_flatten", label);
    flatten = node_new("Flatten", base);
    snprintf(base, sizeof base, "%s_reshape", label);
    reshape = node_new("Reshape", base);
    if (!shape || !flatten || !reshape)
        goto fail;
    if (input_set(shape, 0, n->input[0]) || node_add_output(shape, shape_name) ||
        input_set(flatten, 0, n->input[0]) || node_add_output(flatten, flat_name) ||
        attr_set_int(flatten, "axis", axis) ||
        input_set(reshape, 0, flat_out) || input_set(reshape, 1, shape_name) ||
        node_add_output(reshape, n->output[0]) ||
        input_set(n, 0, flat_name) || attr_set_int(n, "axis", -1))
        goto fail;
    free(n->output[0]);
    n->output[0] = flat_out;
    flat_out = NULL;
    extra[(*n_extra)++] = shape;
    extra[(*n_extra)++] = flatten;
    extra[(*n_extra)++] = n;
    extra[(*n_extra)++] = reshape;
    goto done;
fail:
    rc = oom(c);
    if (shape)
        onnx__node_proto__free_unpacked(shape, NULL);
    if (flatten)
        onnx__node_proto__free_unpacked(flatten, NULL);
    if (reshape)
        onnx__node_proto__free_unpacked(reshape, NULL);
done:
    free(shape_name);
    free(flat_name);
    free(flat_out);
    return rc;
}

/*
 * Before opset 7, B combined with A at A's axes [axis, axis + rank(B)) (binary ops with
 * broadcast=1 and an axis; PRelu's 1-D slope on axis 1); numpy broadcasting aligns B's last
 * axis with A's last.  An Unsqueeze giving B the trailing 1s A has after `axis` makes the
 * two agree.  Needs both ranks.
 */
static int align_legacy_operand(struct convert_ctx *c, Onnx__GraphProto *g, Onnx__NodeProto *n,
                                int64_t axis, Onnx__NodeProto **extra, int *n_extra)
{
    int64_t a_dims[MQ_MAX_RANK], b_dims[MQ_MAX_RANK];
    int ra = shape_of(c, g, mq_str(n->input[0]), a_dims);
    int rb = n->n_input > 1 ? shape_of(c, g, mq_str(n->input[1]), b_dims) : -1;
    if (ra < 0 || rb < 0)
        return refuse(c, n, "legacy broadcasting with an explicit axis needs the ranks of both "
                      "inputs, which neither the graph's value_info nor a sample run gave");
    if (axis < 0)
        axis += ra;
    int64_t trailing = (int64_t)ra - axis - rb;
    if (axis < 0 || trailing < 0)
        return refuse(c, n, "its broadcast axis does not fit input B into input A");
    if (trailing == 0)
        return 0;
    int64_t axes[MQ_MAX_RANK];
    for (int64_t k = 0; k < trailing; k++)
        axes[k] = rb + k;
    char base[256];
    const char *label = *mq_str(n->name) ? n->name : mq_str(n->op_type);
    snprintf(base, sizeof base, "%s_b_axes", label);
    char *axes_name = add_initializer(c, g, base, MQ_DTYPE_INT64, 1, trailing, axes);
    if (!axes_name)
        return c->err->message[0] ? MQ_ERR : oom(c);
    snprintf(base, sizeof base, "%s_b_aligned", label);
    char *aligned = fresh_name(c, base);
    snprintf(base, sizeof base, "%s_align", label);
    Onnx__NodeProto *unsqueeze = aligned ? node_new("Unsqueeze", base) : NULL;
    int rc = MQ_OK;
    if (!unsqueeze || input_set(unsqueeze, 0, n->input[1]) ||
        input_set(unsqueeze, 1, axes_name) || node_add_output(unsqueeze, aligned) ||
        input_set(n, 1, aligned)) {
        rc = oom(c);
        if (unsqueeze)
            onnx__node_proto__free_unpacked(unsqueeze, NULL);
    } else {
        extra[(*n_extra)++] = unsqueeze;
        extra[(*n_extra)++] = n;
    }
    free(axes_name);
    free(aligned);
    return rc;
}

static int convert_resize_like(struct convert_ctx *c, Onnx__GraphProto *g, Onnx__NodeProto *n)
{
    /* Resize-10 and Upsample compute source coordinates as dst / scale (asymmetric), nearest
       rounds down. */
    int nearest = !attr_find(n, "mode") || attr_string_is(n, "mode", "nearest");
    if (attr_string_is(n, "mode", "bilinear") && attr_set_string(n, "mode", "linear"))
        return oom(c);
    if (!nearest && !attr_string_is(n, "mode", "linear"))
        return refuse(c, n, "only nearest and linear modes exist before opset 11");
    if (strcmp(n->op_type, "Upsample") == 0) {
        free(n->op_type);
        if (!(n->op_type = strdup("Resize")))
            return oom(c);
        Onnx__AttributeProto *scales = attr_find(n, "scales");
        if (scales) { /* Upsample-7: scales as an attribute */
            char base[256];
            snprintf(base, sizeof base, "%s_scales", *mq_str(n->name) ? n->name : "upsample");
            char *name = add_initializer(c, g, base, MQ_DTYPE_FLOAT, 1, (int64_t)scales->n_floats,
                                         scales->floats);
            if (!name)
                return c->err->message[0] ? MQ_ERR : oom(c);
            int rc = input_set(n, 1, name);
            free(name);
            attr_remove(n, "scales");
            if (rc)
                return oom(c);
        }
    }
    if (n->n_input < 2)
        return refuse(c, n, "scales are missing");
    /* (X, scales) -> (X, roi = "", scales) */
    char *scales_name = strdup(n->input[1]);
    if (!scales_name || input_set(n, 2, scales_name) || input_set(n, 1, "")) {
        free(scales_name);
        return oom(c);
    }
    free(scales_name);
    if (attr_set_string(n, "coordinate_transformation_mode", "asymmetric"))
        return oom(c);
    if (nearest && attr_set_string(n, "nearest_mode", "floor"))
        return oom(c);
    return 0;
}

static int is_one_of(const char *op, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(op, *list) == 0)
            return 1;
    return 0;
}

static const char *const reduce_ops[] = {
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceSumSquare", NULL,
};
static const char *const legacy_broadcast_ops[] = {
    "Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less", NULL,
};

static int convert_graph(struct convert_ctx *c, Onnx__GraphProto *g, int depth);

/* Converts one node; may replace it by several (written to extra). */
static int convert_node(struct convert_ctx *c, Onnx__GraphProto *g, Onnx__NodeProto *n,
                        Onnx__NodeProto **extra, int *n_extra)
{
    const char *op = mq_str(n->op_type);
    int v = c->from;

    for (size_t a = 0; a < n->n_attribute; a++) {
        Onnx__AttributeProto *attr = n->attribute[a];
        if (attr->g && convert_graph(c, attr->g, 0))
            return MQ_ERR;
        for (size_t k = 0; k < attr->n_graphs; k++)
            if (convert_graph(c, attr->graphs[k], 0))
                return MQ_ERR;
    }
    if (*mq_str(n->domain) && strcmp(n->domain, "ai.onnx") != 0)
        return 0; /* other domains keep their own opset */

    /* Attributes removed long ago that old exporters still write. */
    attr_remove(n, "consumed_inputs");
    if (v < 7)
        attr_remove(n, "is_test");

    if (strcmp(op, "Slice") == 0 && v < 10) {
        if (!attr_find(n, "starts") || !attr_find(n, "ends"))
            return refuse(c, n, "starts and ends are required");
        if (ints_attr_to_input(c, g, n, "starts", 1, "starts") ||
            ints_attr_to_input(c, g, n, "ends", 2, "ends") ||
            ints_attr_to_input(c, g, n, "axes", 3, "axes"))
            return MQ_ERR;
    } else if (strcmp(op, "Clip") == 0 && v < 11) {
        Onnx__AttributeProto *lo = attr_find(n, "min"), *hi = attr_find(n, "max");
        if (lo && float_input(c, g, n, 1, lo->has_f ? lo->f : 0.0f, "min"))
            return MQ_ERR;
        if (hi && float_input(c, g, n, 2, hi->has_f ? hi->f : 0.0f, "max"))
            return MQ_ERR;
        attr_remove(n, "min");
        attr_remove(n, "max");
    } else if ((strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0) && v < 13) {
        if (ints_attr_to_input(c, g, n, "axes", 1, "axes"))
            return MQ_ERR;
    } else if ((strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0 ||
                strcmp(op, "Hardmax") == 0) && v < 13) {
        return convert_softmax(c, g, n, extra, n_extra);
    } else if (strcmp(op, "ReduceSum") == 0 && v < 13) {
        if (ints_attr_to_input(c, g, n, "axes", 1, "axes"))
            return MQ_ERR;
    } else if (is_one_of(op, reduce_ops) && v < 18 && c->to >= 18) {
        if (ints_attr_to_input(c, g, n, "axes", 1, "axes"))
            return MQ_ERR;
    } else if (strcmp(op, "Split") == 0 && v < 13) {
        if (v < 2)
            return refuse(c, n, "Split-1 takes split sizes as a second input with other rules");
        if (ints_attr_to_input(c, g, n, "split", 1, "split"))
            return MQ_ERR;
    } else if (strcmp(op, "Pad") == 0 && v < 11) {
        if (v < 2)
            return refuse(c, n, "Pad-1 uses the 'paddings' attribute");
        Onnx__AttributeProto *value = attr_find(n, "value");
        float fill = value && value->has_f ? value->f : 0.0f;
        if (ints_attr_to_input(c, g, n, "pads", 1, "pads"))
            return MQ_ERR;
        if (fill != 0.0f && float_input(c, g, n, 2, fill, "value"))
            return MQ_ERR;
        attr_remove(n, "value");
    } else if ((strcmp(op, "Resize") == 0 && v == 10) ||
               (strcmp(op, "Upsample") == 0 && v >= 7)) {
        return convert_resize_like(c, g, n);
    } else if (strcmp(op, "Upsample") == 0) {
        return refuse(c, n, "Upsample before opset 7 is experimental");
    } else if (strcmp(op, "Dropout") == 0 && v < 12) {
        attr_remove(n, "ratio");
        if (n->n_output > 1 && *mq_str(n->output[1]) && v < 10) {
            if (graph_reads(c->model->graph, n->output[1], 0))
                return refuse(c, n, "its mask output, which is read, changes type from float to "
                              "bool at opset 10");
            /* Nobody reads the mask: drop it rather than change its type. */
            free(n->output[1]);
            n->n_output = 1;
        }
    } else if (strcmp(op, "TopK") == 0 && v < 10) {
        Onnx__AttributeProto *k = attr_find(n, "k");
        if (!k)
            return refuse(c, n, "attribute k is missing");
        int64_t kv = k->i;
        char base[256];
        snprintf(base, sizeof base, "%s_k", *mq_str(n->name) ? n->name : "topk");
        char *name = add_initializer(c, g, base, MQ_DTYPE_INT64, 1, 1, &kv);
        if (!name)
            return c->err->message[0] ? MQ_ERR : oom(c);
        int rc = input_set(n, 1, name);
        free(name);
        attr_remove(n, "k");
        if (rc)
            return oom(c);
    } else if (strcmp(op, "BatchNormalization") == 0 && v < 9) {
        Onnx__AttributeProto *spatial = attr_find(n, "spatial");
        if (spatial && spatial->has_i && spatial->i != 1)
            return refuse(c, n, "spatial=0 (per-activation statistics) has no equivalent");
        attr_remove(n, "spatial");
        if (n->n_output > 1)
            n->n_output = 1; /* training outputs have no meaning in inference */
    } else if (strcmp(op, "Gemm") == 0 && v < 7) {
        attr_remove(n, "broadcast");
    } else if (is_one_of(op, legacy_broadcast_ops) && v < 7) {
        Onnx__AttributeProto *b = attr_find(n, "broadcast"), *axis = attr_find(n, "axis");
        int64_t axis_value = axis && axis->has_i ? axis->i : 0;
        int aligned = b && b->i && axis;
        attr_remove(n, "broadcast");
        attr_remove(n, "axis");
        if (aligned)
            return align_legacy_operand(c, g, n, axis_value, extra, n_extra);
    } else if (strcmp(op, "PRelu") == 0 && v < 7) {
        /* A 1-D slope of one value per channel (the size of X's axis 1) sat on axis 1. */
        int64_t x_dims[MQ_MAX_RANK], s_dims[MQ_MAX_RANK];
        int rx = shape_of(c, g, mq_str(n->input[0]), x_dims);
        int rs = n->n_input > 1 ? shape_of(c, g, mq_str(n->input[1]), s_dims) : -1;
        if (rs == 1 && s_dims[0] != 1 && (rx < 0 || (rx > 2 && x_dims[1] < 0)))
            return refuse(c, n, "a per-channel slope needs X's shape, which neither the graph's "
                          "value_info nor a sample run gave");
        if (rs == 1 && rx > 2 && s_dims[0] != 1 && s_dims[0] == x_dims[1])
            return align_legacy_operand(c, g, n, 1, extra, n_extra);
    } else if (strcmp(op, "Reshape") == 0 && v < 5) {
        if (ints_attr_to_input(c, g, n, "shape", 1, "shape"))
            return MQ_ERR;
    } else if (strcmp(op, "Concat") == 0 && v < 4) {
        if (!attr_find(n, "axis") && attr_set_int(n, "axis", 1))
            return oom(c);
    } else if (strcmp(op, "Scatter") == 0 && v < 11) {
        free(n->op_type);
        if (!(n->op_type = strdup("ScatterElements")))
            return oom(c);
    } else if ((strcmp(op, "Cast") == 0 || strcmp(op, "Tile") == 0) && v < 6) {
        return refuse(c, n, "its signature before opset 6 differs");
    } else if (strcmp(op, "Scan") == 0 && v < 9) {
        return refuse(c, n, "Scan-8 has a batch axis and sequence_lens that Scan-9 dropped");
    } else if (strcmp(op, "LSTM") == 0 && v < 7) {
        attr_remove(n, "output_sequence");
    }
    return 0;
}

static int convert_graph(struct convert_ctx *c, Onnx__GraphProto *g, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(c->err, "subgraphs nested too deep");
    /* Converted nodes may expand (Softmax); build a new list. */
    size_t cap = g->n_node + 16, count = 0;
    Onnx__NodeProto **nodes = malloc(cap * sizeof *nodes);
    if (!nodes)
        return oom(c);
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *extra[8];
        int n_extra = 0;
        if (convert_node(c, g, g->node[i], extra, &n_extra)) {
            /* Keep every node owned by the graph so it is freed once. */
            for (size_t k = i; k < g->n_node; k++)
                if (count < cap)
                    nodes[count++] = g->node[k];
            free(g->node);
            g->node = nodes;
            g->n_node = count;
            return MQ_ERR;
        }
        if (count + 8 > cap) {
            cap = cap * 2 + 8;
            Onnx__NodeProto **grown = realloc(nodes, cap * sizeof *nodes);
            if (!grown) {
                free(nodes);
                return oom(c);
            }
            nodes = grown;
        }
        if (n_extra == 0)
            nodes[count++] = g->node[i];
        for (int k = 0; k < n_extra; k++)
            nodes[count++] = extra[k];
    }
    free(g->node);
    g->node = nodes;
    g->n_node = count;
    return 0;
}

int mq_opset_convert(Onnx__ModelProto *model, int target_opset, const struct mq_opset_hints *hints,
                     struct mq_error *err)
{
    if (target_opset < 13)
        return mq_error_set(err, "opset conversion targets 13 or later, not %d", target_opset);
    Onnx__OperatorSetIdProto *import = NULL;
    for (size_t i = 0; i < model->n_opset_import; i++) {
        const char *d = mq_str(model->opset_import[i]->domain);
        if (!*d || strcmp(d, "ai.onnx") == 0)
            import = model->opset_import[i];
    }
    if (!import)
        return mq_error_set(err, "the model does not import the ai.onnx domain");
    int from = (int)import->version;
    if (from >= target_opset)
        return MQ_OK;
    if (from < 1)
        return mq_error_set(err, "ai.onnx opset %d is invalid", from);
    struct convert_ctx c = {model, from, target_opset, hints, err, 0};
    if (convert_graph(&c, model->graph, 0)) {
        mq_error_prefix(err, "converting opset %d to %d: ", from, target_opset);
        return MQ_ERR;
    }
    import->version = target_opset;
    import->has_version = 1;
    /* IR version the target opset needs: 13 -> 7, 15+ -> 8, 19+ -> 9, 21 -> 10. */
    int64_t ir = target_opset >= 21 ? 10 : target_opset >= 19 ? 9 : target_opset >= 15 ? 8 : 7;
    if (model->ir_version < ir) {
        model->ir_version = ir;
        model->has_ir_version = 1;
    }
    return MQ_OK;
}
