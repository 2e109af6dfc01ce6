/* Graph editing helpers shared by every pass that rewrites a model (see edit.h). */
#include "graph/edit.h"

#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "util/error.h"
#include "util/strutil.h"

int mq_graph_append_ptr(void ***array, size_t *n, void *item)
{
    void **v = realloc(*array, (*n + 1) * sizeof *v);
    if (!v)
        return -1;
    v[*n] = item;
    *array = v;
    (*n)++;
    return 0;
}

const char *mq_graph_input_at(const Onnx__NodeProto *node, size_t i)
{
    return i < node->n_input && node->input[i] && *node->input[i] ? node->input[i] : NULL;
}

static int rename_in(char **names, size_t n, const char *from, const char *to)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], from) == 0 && mq_str_replace(&names[i], to))
            return -1;
    return 0;
}

int mq_graph_node_rename_input(Onnx__NodeProto *node, const char *from, const char *to)
{
    return rename_in(node->input, node->n_input, from, to);
}

int mq_graph_node_rename_output(Onnx__NodeProto *node, const char *from, const char *to)
{
    return rename_in(node->output, node->n_output, from, to);
}

Onnx__NodeProto *mq_graph_new_node(const char *op_type, const char *name,
                                   const char *const *inputs, int n_inputs, const char *output,
                                   int axis)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = strdup(op_type);
    n->name = strdup(name);
    n->input = calloc((size_t)(n_inputs > 0 ? n_inputs : 1), sizeof *n->input);
    n->output = calloc(1, sizeof *n->output);
    int ok = n->op_type && n->name && n->input && n->output;
    if (n->input)
        for (int i = 0; i < n_inputs; i++, n->n_input++)
            ok = ok && (n->input[i] = strdup(inputs[i])) != NULL;
    if (n->output) {
        n->n_output = 1;
        ok = ok && (n->output[0] = strdup(output)) != NULL;
    }
    if (ok && axis >= 0)
        ok = !mq_graph_add_int_attr(n, "axis", axis);
    if (!ok) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    return n;
}

Onnx__TensorProto *mq_graph_new_tensor(const char *name, int dtype)
{
    Onnx__TensorProto *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    if (!t->name) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return NULL;
    }
    return t;
}

Onnx__TensorProto *mq_graph_add_initializer(Onnx__GraphProto *g, const char *name, int dtype,
                                            int rank, const int64_t *dims)
{
    Onnx__TensorProto *t = mq_graph_new_tensor(name, dtype);
    if (!t)
        return NULL;
    t->has_raw_data = 1;
    t->n_dims = (size_t)rank;
    t->dims = rank ? malloc((size_t)rank * sizeof *t->dims) : NULL;
    if ((rank && !t->dims) ||
        mq_graph_append_ptr((void ***)&g->initializer, &g->n_initializer, t)) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return NULL;
    }
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    return t;
}

void mq_graph_drop_initializer(Onnx__GraphProto *g, Onnx__TensorProto *t)
{
    size_t w = 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i] != t)
            g->initializer[w++] = g->initializer[i];
    g->n_initializer = w;
    onnx__tensor_proto__free_unpacked(t, NULL);
}

void mq_graph_drop_initializer_named(Onnx__GraphProto *g, const char *name)
{
    for (size_t i = g->n_initializer; i-- > 0;)
        if (strcmp(mq_str(g->initializer[i]->name), name) == 0)
            mq_graph_drop_initializer(g, g->initializer[i]);
    for (size_t i = g->n_input; i-- > 0;) {
        if (strcmp(mq_str(g->input[i]->name), name) != 0)
            continue;
        onnx__value_info_proto__free_unpacked(g->input[i], NULL);
        memmove(&g->input[i], &g->input[i + 1], (g->n_input - i - 1) * sizeof *g->input);
        g->n_input--;
    }
}

void mq_graph_drop_value_infos(Onnx__GraphProto *g, char *const *names, int n)
{
    size_t w = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        int gone = 0;
        for (int v = 0; v < n && !gone; v++)
            gone = strcmp(mq_str(g->value_info[i]->name), names[v]) == 0;
        if (gone)
            onnx__value_info_proto__free_unpacked(g->value_info[i], NULL);
        else
            g->value_info[w++] = g->value_info[i];
    }
    g->n_value_info = w;
}

int mq_graph_each_subgraph(const Onnx__NodeProto *node, mq_graph_subgraph_fn fn, void *user)
{
    for (size_t a = 0; a < node->n_attribute; a++) {
        const Onnx__AttributeProto *attr = node->attribute[a];
        const char *an = mq_str(attr->name);
        if (attr->g) {
            int rc = fn(attr->g, an, user);
            if (rc)
                return rc;
        }
        for (size_t k = 0; k < attr->n_graphs; k++) {
            int rc = fn(attr->graphs[k], an, user);
            if (rc)
                return rc;
        }
    }
    return 0;
}

Onnx__NodeProto *mq_graph_new_unary_node(const char *op_type, const char *name,
                                         const char *input, const char *output)
{
    return mq_graph_new_node(op_type, name, &input, 1, output, -1);
}

/* Appends a new attribute of the given type and name; NULL when out of memory. */
static Onnx__AttributeProto *add_attr(Onnx__NodeProto *node, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->type = type;
    a->has_type = 1;
    if (!a->name || mq_graph_append_ptr((void ***)&node->attribute, &node->n_attribute, a)) {
        onnx__attribute_proto__free_unpacked(a, NULL);
        return NULL;
    }
    return a;
}

int mq_graph_add_int_attr(Onnx__NodeProto *node, const char *name, int64_t value)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->i = value;
        a->has_i = 1;
    }
    return a ? 0 : -1;
}

int mq_graph_add_float_attr(Onnx__NodeProto *node, const char *name, float value)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->f = value;
        a->has_f = 1;
    }
    return a ? 0 : -1;
}

int mq_node_is_onnx(const Onnx__NodeProto *node)
{
    const char *d = mq_str(node->domain);
    return d[0] == '\0' || strcmp(d, "ai.onnx") == 0;
}

int mq_node_is_op(const Onnx__NodeProto *node, const char *op)
{
    return mq_node_is_onnx(node) && strcmp(mq_str(node->op_type), op) == 0;
}

int mq_node_has_subgraph(const Onnx__NodeProto *node)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        if (node->attribute[a]->g || node->attribute[a]->n_graphs)
            return 1;
    return 0;
}

void mq_graph_remove_node(Onnx__GraphProto *g, size_t n)
{
    onnx__node_proto__free_unpacked(g->node[n], NULL);
    memmove(&g->node[n], &g->node[n + 1], (g->n_node - n - 1) * sizeof *g->node);
    g->n_node--;
}

/*
 * A graph input entry describing an initializer (type and shape), for models
 * of IR version 3, where every initializer must also be a graph input.
 */
Onnx__ValueInfoProto *mq_graph_input_entry(const Onnx__TensorProto *t)
{
    Onnx__ValueInfoProto *info = malloc(sizeof *info);
    Onnx__TypeProto *type = malloc(sizeof *type);
    Onnx__TypeProto__Tensor *tensor = malloc(sizeof *tensor);
    Onnx__TensorShapeProto *shape = malloc(sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dims = calloc(t->n_dims + 1, sizeof *dims);
    char *name = strdup(mq_str(t->name));
    if (!info || !type || !tensor || !shape || !dims || !name) {
        free(info), free(type), free(tensor), free(shape), free(dims), free(name);
        return NULL;
    }
    onnx__value_info_proto__init(info);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tensor);
    onnx__tensor_shape_proto__init(shape);
    info->name = name;
    info->type = type;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    tensor->has_elem_type = 1;
    tensor->elem_type = t->data_type;
    tensor->shape = shape;
    shape->dim = dims;
    for (size_t d = 0; d < t->n_dims; d++) {
        Onnx__TensorShapeProto__Dimension *dim = malloc(sizeof *dim);
        if (!dim) {
            onnx__value_info_proto__free_unpacked(info, NULL);
            return NULL;
        }
        onnx__tensor_shape_proto__dimension__init(dim);
        dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dim->dim_value = t->dims[d];
        dims[shape->n_dim++] = dim;
    }
    return info;
}


/* A new Constant node producing `value` under its name (taking ownership of value). */
Onnx__NodeProto *mq_graph_new_constant_node(Onnx__TensorProto *value, const char *node_name)
{
    Onnx__NodeProto *node = malloc(sizeof *node);
    Onnx__AttributeProto *attr = malloc(sizeof *attr);
    char **outputs = malloc(sizeof *outputs);
    Onnx__AttributeProto **attrs = malloc(sizeof *attrs);
    char *out = strdup(mq_str(value->name));
    char *name = strdup(node_name);
    char *op = strdup("Constant");
    char *attr_name = strdup("value");
    if (!node || !attr || !outputs || !attrs || !out || !name || !op || !attr_name) {
        free(node), free(attr), free(outputs), free(attrs), free(out), free(name), free(op);
        free(attr_name);
        onnx__tensor_proto__free_unpacked(value, NULL);
        return NULL;
    }
    onnx__node_proto__init(node);
    onnx__attribute_proto__init(attr);
    attr->name = attr_name;
    attr->has_type = 1;
    attr->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    attr->t = value;
    attrs[0] = attr;
    outputs[0] = out;
    node->output = outputs;
    node->n_output = 1;
    node->attribute = attrs;
    node->n_attribute = 1;
    node->name = name;
    node->op_type = op;
    return node;
}

