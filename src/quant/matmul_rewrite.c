/* Shared pieces of the MatMul weight rewrites (--dynamic, --weight-only): see matmul_rewrite.h. */
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "model/tensor_proto.h"
#include "quant/matmul_rewrite.h"

static int oom(struct mq_error *err)
{
    return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
}

Onnx__TensorProto *mq_matmul_find_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; name && i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

int mq_matmul_weight_site(const Onnx__GraphProto *g, const struct mq_selection *sel,
                          const Onnx__NodeProto *node, Onnx__TensorProto **weight,
                          const char **why)
{
    const char *dummy;
    why = why ? why : &dummy;
    *weight = NULL;
    *why = NULL;
    if (strcmp(node->op_type, "MatMul") != 0 || (node->domain && node->domain[0]))
        return 0;
    const struct mq_node_choice *c = mq_selection_find(sel, node);
    if (!c || c->status != MQ_NODE_SELECTED) {
        *why = "not selected";
        return 0;
    }
    Onnx__TensorProto *w = mq_matmul_find_initializer(g, mq_graph_input_at(node, 1));
    if (!w) {
        *why = "B is an activation (both inputs vary at run time)";
        return 0;
    }
    if (w->data_type != MQ_DTYPE_FLOAT || w->n_dims != 2 || w->dims[0] < 1 || w->dims[1] < 1) {
        *why = "B is not a 2-D float32 weight";
        return 0;
    }
    *weight = w;
    return 1;
}

int mq_matmul_add_raw(Onnx__GraphProto *g, const char *name, int dtype, int rank,
                      const int64_t *dims, const void *data, size_t bytes, struct mq_error *err)
{
    Onnx__TensorProto *t = mq_graph_add_initializer(g, name, dtype, rank, dims);
    if (!t)
        return oom(err);
    t->raw_data.data = malloc(bytes ? bytes : 1);
    if (!t->raw_data.data)
        return oom(err);
    memcpy(t->raw_data.data, data, bytes);
    t->raw_data.len = bytes;
    return MQ_OK;
}

int mq_matmul_set_int_attr(Onnx__NodeProto *node, const char *name, int64_t value,
                           struct mq_error *err)
{
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a)
        return oom(err);
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = value;
    if (!a->name || mq_graph_append_ptr((void ***)&node->attribute, &node->n_attribute, a)) {
        onnx__attribute_proto__free_unpacked(a, NULL);
        return oom(err);
    }
    return MQ_OK;
}

int mq_matmul_add_output(Onnx__NodeProto *node, const char *name, struct mq_error *err)
{
    char *s = strdup(name);
    if (!s || mq_graph_append_ptr((void ***)&node->output, &node->n_output, s)) {
        free(s);
        return oom(err);
    }
    return MQ_OK;
}

int mq_matmul_set_domain(Onnx__NodeProto *node, const char *domain, struct mq_error *err)
{
    char *s = strdup(domain);
    if (!s)
        return oom(err);
    if (node->domain != protobuf_c_empty_string)
        free(node->domain);
    node->domain = s;
    return MQ_OK;
}

int mq_matmul_import_domain(Onnx__ModelProto *model, const char *domain, int64_t version,
                            struct mq_error *err)
{
    for (size_t i = 0; i < model->n_opset_import; i++) {
        Onnx__OperatorSetIdProto *o = model->opset_import[i];
        if (o->domain && strcmp(o->domain, domain) == 0) {
            if (o->version < version)
                o->version = version;
            return MQ_OK;
        }
    }
    Onnx__OperatorSetIdProto *o = malloc(sizeof *o);
    if (!o)
        return oom(err);
    onnx__operator_set_id_proto__init(o);
    o->domain = strdup(domain);
    o->has_version = 1;
    o->version = version;
    if (!o->domain ||
        mq_graph_append_ptr((void ***)&model->opset_import, &model->n_opset_import, o)) {
        onnx__operator_set_id_proto__free_unpacked(o, NULL);
        return oom(err);
    }
    return MQ_OK;
}

int mq_matmul_readers(const Onnx__GraphProto *g, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (strcmp(g->node[i]->input[k], name) == 0) {
                n++;
                break;
            }
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && strcmp(g->output[i]->name, name) == 0)
            n++;
    return n;
}

int mq_node_list_push(struct mq_node_list *l, Onnx__NodeProto *node, struct mq_error *err)
{
    if (!node || mq_graph_append_ptr((void ***)&l->items, &l->n, node)) {
        if (node)
            onnx__node_proto__free_unpacked(node, NULL);
        return oom(err);
    }
    return MQ_OK;
}

void mq_node_list_install(struct mq_node_list *l, Onnx__GraphProto *g)
{
    free(g->node);
    g->node = l->items;
    g->n_node = l->n;
    l->items = NULL;
    l->n = 0;
}

int mq_matmul_weight_load(const Onnx__TensorProto *w, struct mq_tensor *out,
                          struct mq_error *err)
{
    return mq_tensor_from_proto(w, w->name, out, err);
}

void mq_matmul_drop_if_unread(Onnx__GraphProto *g, Onnx__TensorProto *w)
{
    if (mq_matmul_readers(g, w->name) == 0)
        mq_graph_drop_initializer(g, w);
}

void mq_matmul_commit(struct mq_node_list *l, Onnx__GraphProto *g, Onnx__NodeProto **old,
                      size_t n_old, Onnx__TensorProto **weights, size_t n_weights)
{
    mq_node_list_install(l, g);
    for (size_t i = 0; i < n_old; i++)
        onnx__node_proto__free_unpacked(old[i], NULL);
    for (size_t i = 0; i < n_weights; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && weights[i]; j++)
            seen |= weights[j] == weights[i];
        if (weights[i] && !seen)
            mq_matmul_drop_if_unread(g, weights[i]);
    }
}
