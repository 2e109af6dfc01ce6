/*
 * Small ONNX models built by hand for the quantizer's unit tests.  Everything
 * is malloc'd the way protobuf-c frees it: onnx__model_proto__free_unpacked
 * (model, NULL) releases a whole model.
 */
#ifndef MQ_QUANT_BUILDER_H
#define MQ_QUANT_BUILDER_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

static inline void qb_push(void ***array, size_t *n, void *item)
{
    *array = realloc(*array, (*n + 1) * sizeof **array);
    (*array)[(*n)++] = item;
}

static inline Onnx__GraphProto *qb_graph(const char *name)
{
    Onnx__GraphProto *g = calloc(1, sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup(name);
    return g;
}

static inline Onnx__ModelProto *qb_model(int opset)
{
    Onnx__ModelProto *m = calloc(1, sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    Onnx__OperatorSetIdProto *op = calloc(1, sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = strdup("");
    op->has_version = 1;
    op->version = opset;
    qb_push((void ***)&m->opset_import, &m->n_opset_import, op);
    m->graph = qb_graph("g");
    return m;
}

/* Splits "a,b,,c" into strings ("" for an omitted input). */
static inline void qb_names(const char *list, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!list || !*list)
        return;
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char *s = malloc(len + 1);
        memcpy(s, p, len);
        s[len] = '\0';
        qb_push((void ***)out, n, s);
        if (!c)
            break;
        p = c + 1;
    }
}

static inline Onnx__NodeProto *qb_node(Onnx__GraphProto *g, const char *op, const char *name,
                                const char *inputs, const char *outputs)
{
    Onnx__NodeProto *n = calloc(1, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = strdup(op);
    if (name)
        n->name = strdup(name);
    qb_names(inputs, &n->input, &n->n_input);
    qb_names(outputs, &n->output, &n->n_output);
    qb_push((void ***)&g->node, &g->n_node, n);
    return n;
}

static inline Onnx__AttributeProto *qb_attr(Onnx__NodeProto *n, const char *name, int type)
{
    Onnx__AttributeProto *a = calloc(1, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->has_type = 1;
    a->type = type;
    qb_push((void ***)&n->attribute, &n->n_attribute, a);
    return a;
}

static inline void qb_attr_int(Onnx__NodeProto *n, const char *name, long long v)
{
    Onnx__AttributeProto *a = qb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static inline void qb_attr_float(Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = qb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static inline void qb_attr_string(Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = qb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)strdup(v);
}

static inline void qb_attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v)
{
    Onnx__AttributeProto *a = qb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = malloc((size_t)count * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)count * sizeof *v);
}

static inline void qb_attr_graph(Onnx__NodeProto *n, const char *name, Onnx__GraphProto *sub)
{
    Onnx__AttributeProto *a = qb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = sub;
}

static inline Onnx__ValueInfoProto *qb_value_info(const char *name, int elem_type, int rank,
                                           const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = calloc(1, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = strdup(name);
    Onnx__TypeProto *tp = calloc(1, sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = calloc(1, sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
            qb_push((void ***)&sh->dim, &sh->n_dim, d);
        }
        tt->shape = sh;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    return vi;
}

static inline void qb_input(Onnx__GraphProto *g, const char *name, int elem_type, int rank,
                     const int64_t *dims)
{
    qb_push((void ***)&g->input, &g->n_input, qb_value_info(name, elem_type, rank, dims));
}

static inline void qb_output(Onnx__GraphProto *g, const char *name, int elem_type)
{
    qb_push((void ***)&g->output, &g->n_output, qb_value_info(name, elem_type, -1, NULL));
}

/* A float32 initializer stored in raw_data. */
static inline Onnx__TensorProto *qb_init_f32(Onnx__GraphProto *g, const char *name, int rank,
                                      const int64_t *dims, const float *values)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    size_t count = 1;
    t->n_dims = (size_t)rank;
    t->dims = rank ? malloc((size_t)rank * sizeof *t->dims) : NULL;
    for (int i = 0; i < rank; i++) {
        t->dims[i] = dims[i];
        count *= (size_t)dims[i];
    }
    t->has_raw_data = 1;
    t->raw_data.len = count * 4;
    t->raw_data.data = malloc(count * 4 + 1);
    memcpy(t->raw_data.data, values, count * 4);
    qb_push((void ***)&g->initializer, &g->n_initializer, t);
    return t;
}

static inline Onnx__TensorProto *qb_init_i64(Onnx__GraphProto *g, const char *name, int rank,
                                      const int64_t *dims, const int64_t *values)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    size_t count = 1;
    t->n_dims = (size_t)rank;
    t->dims = rank ? malloc((size_t)rank * sizeof *t->dims) : NULL;
    for (int i = 0; i < rank; i++) {
        t->dims[i] = dims[i];
        count *= (size_t)dims[i];
    }
    t->has_raw_data = 1;
    t->raw_data.len = count * 8;
    t->raw_data.data = malloc(count * 8 + 1);
    memcpy(t->raw_data.data, values, count * 8);
    qb_push((void ***)&g->initializer, &g->n_initializer, t);
    return t;
}

/* The node of g named `name`, NULL when none. */
static inline Onnx__NodeProto *qb_node_named(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (strcmp(g->node[i]->name ? g->node[i]->name : "", name) == 0)
            return g->node[i];
    return NULL;
}

/* A deep copy of m (packed and unpacked), for comparing a rewrite with the original. */
static inline Onnx__ModelProto *qb_copy_model(const Onnx__ModelProto *m)
{
    size_t size = onnx__model_proto__get_packed_size(m);
    uint8_t *bytes = malloc(size + 1);
    onnx__model_proto__pack(m, bytes);
    Onnx__ModelProto *c = onnx__model_proto__unpack(NULL, size, bytes);
    free(bytes);
    return c;
}

#endif
