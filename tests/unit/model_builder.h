/*
 * Small ONNX models built in memory for the unit tests of whole-model
 * rewrites (fp16, dequantize).  Everything is malloc'd the way protobuf-c
 * frees it: release a model with onnx__model_proto__free_unpacked.  Aborts
 * on allocation failure (tests only).
 */
#ifndef MQ_TEST_MODEL_BUILDER_H
#define MQ_TEST_MODEL_BUILDER_H

#include <stdlib.h>
#include <string.h>

#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "onnx.pb-c.h"

static inline void *mb_alloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static inline char *mb_strdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

static inline void mb_append(void ***array, size_t *n, void *item)
{
    void **v = realloc(*array, (*n + 1) * sizeof *v);
    if (!v)
        abort();
    v[(*n)++] = item;
    *array = v;
}

static inline Onnx__ModelProto *mb_model(int opset)
{
    Onnx__ModelProto *m = mb_alloc(sizeof *m);
    onnx__model_proto__init(m);
    m->ir_version = opset >= 21 ? 10 : 8;
    m->has_ir_version = 1;
    Onnx__OperatorSetIdProto *op = mb_alloc(sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = mb_strdup("");
    op->version = opset;
    op->has_version = 1;
    mb_append((void ***)&m->opset_import, &m->n_opset_import, op);
    m->graph = mb_alloc(sizeof *m->graph);
    onnx__graph_proto__init(m->graph);
    m->graph->name = mb_strdup("g");
    return m;
}

static inline Onnx__GraphProto *mb_graph(const char *name)
{
    Onnx__GraphProto *g = mb_alloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = mb_strdup(name);
    return g;
}

static inline Onnx__ValueInfoProto *mb_value_info(const char *name, int elem, int rank,
                                                  const int64_t *dims)
{
    Onnx__ValueInfoProto *v = mb_alloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = mb_strdup(name);
    v->type = mb_alloc(sizeof *v->type);
    onnx__type_proto__init(v->type);
    v->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->type->tensor_type = mb_alloc(sizeof *v->type->tensor_type);
    onnx__type_proto__tensor__init(v->type->tensor_type);
    v->type->tensor_type->elem_type = elem;
    v->type->tensor_type->has_elem_type = 1;
    if (rank >= 0) {
        Onnx__TensorShapeProto *s = mb_alloc(sizeof *s);
        onnx__tensor_shape_proto__init(s);
        for (int d = 0; d < rank; d++) {
            Onnx__TensorShapeProto__Dimension *dim = mb_alloc(sizeof *dim);
            onnx__tensor_shape_proto__dimension__init(dim);
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d];
            mb_append((void ***)&s->dim, &s->n_dim, dim);
        }
        v->type->tensor_type->shape = s;
    }
    return v;
}

static inline void mb_input(Onnx__GraphProto *g, const char *name, int elem, int rank,
                            const int64_t *dims)
{
    mb_append((void ***)&g->input, &g->n_input, mb_value_info(name, elem, rank, dims));
}

static inline void mb_output(Onnx__GraphProto *g, const char *name, int elem, int rank,
                             const int64_t *dims)
{
    mb_append((void ***)&g->output, &g->n_output, mb_value_info(name, elem, rank, dims));
}

/* Adds t (consumed) as an initializer. */
static inline Onnx__TensorProto *mb_init(Onnx__GraphProto *g, const char *name, struct mq_tensor t)
{
    Onnx__TensorProto *p = NULL;
    if (mq_tensor_to_proto(&t, name, &p, NULL))
        abort();
    mq_tensor_free(&t);
    mb_append((void ***)&g->initializer, &g->n_initializer, p);
    return p;
}

/* A raw initializer of any type (4-bit ones included): bytes as stored in raw_data. */
static inline Onnx__TensorProto *mb_init_raw(Onnx__GraphProto *g, const char *name, int dtype,
                                             int rank, const int64_t *dims, const void *bytes,
                                             size_t size)
{
    Onnx__TensorProto *p = mb_alloc(sizeof *p);
    onnx__tensor_proto__init(p);
    p->name = mb_strdup(name);
    p->data_type = dtype;
    p->has_data_type = 1;
    p->n_dims = (size_t)rank;
    p->dims = mb_alloc((size_t)rank * sizeof *p->dims);
    memcpy(p->dims, dims, (size_t)rank * sizeof *dims);
    p->raw_data.data = mb_alloc(size);
    memcpy(p->raw_data.data, bytes, size);
    p->raw_data.len = size;
    p->has_raw_data = 1;
    mb_append((void ***)&g->initializer, &g->n_initializer, p);
    return p;
}

/* Splits "a,b,,c" into names ("" for an omitted input). */
static inline void mb_names(const char *list, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!*list)
        return;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *s = mb_alloc(len + 1);
        memcpy(s, p, len);
        mb_append((void ***)out, n, s);
        if (!comma)
            break;
        p = comma + 1;
    }
}

static inline Onnx__NodeProto *mb_node(Onnx__GraphProto *g, const char *op, const char *name,
                                       const char *inputs, const char *outputs)
{
    Onnx__NodeProto *n = mb_alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = mb_strdup(op);
    n->name = mb_strdup(name);
    mb_names(inputs, &n->input, &n->n_input);
    mb_names(outputs, &n->output, &n->n_output);
    mb_append((void ***)&g->node, &g->n_node, n);
    return n;
}

static inline void mb_attr_graph(Onnx__NodeProto *node, const char *name, Onnx__GraphProto *g)
{
    Onnx__AttributeProto *a = mb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_strdup(name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    a->has_type = 1;
    a->g = g;
    mb_append((void ***)&node->attribute, &node->n_attribute, a);
}

static inline void mb_metadata(Onnx__ModelProto *m, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = mb_alloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = mb_strdup(key);
    e->value = mb_strdup(value);
    mb_append((void ***)&m->metadata_props, &m->n_metadata_props, e);
}

static inline Onnx__TensorProto *mb_find_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(mq_str(g->initializer[i]->name), name) == 0)
            return g->initializer[i];
    return NULL;
}

static inline Onnx__NodeProto *mb_find_node(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (strcmp(mq_str(g->node[i]->name), name) == 0)
            return g->node[i];
    return NULL;
}

/* The node writing `output`, or NULL. */
static inline Onnx__NodeProto *mb_producer(const Onnx__GraphProto *g, const char *output)
{
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t o = 0; o < g->node[i]->n_output; o++)
            if (strcmp(mq_str(g->node[i]->output[o]), output) == 0)
                return g->node[i];
    return NULL;
}

static inline int mb_count_op(const Onnx__GraphProto *g, const char *op)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        n += strcmp(mq_str(g->node[i]->op_type), op) == 0;
    return n;
}

static inline int mb_elem_type(const Onnx__ValueInfoProto *v)
{
    return v->type && v->type->tensor_type ? v->type->tensor_type->elem_type : 0;
}

/* Runs the model in the interpreter; outputs[] zeroed, freed by the caller. */
static inline int mb_run(Onnx__ModelProto *proto, const struct mq_tensor *inputs, int n_in,
                         struct mq_tensor *outputs, int n_out, struct mq_error *err)
{
    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *plan = NULL;
    int rc = mq_plan_build(&model, &plan, err);
    if (rc == MQ_OK)
        rc = mq_plan_run(plan, inputs, n_in, outputs, n_out, NULL, err);
    mq_plan_free(plan);
    return rc;
}

#endif
