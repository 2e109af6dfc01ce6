/*
 * Loading an ONNX model into memory: reading, wire check, unpacking, opset imports and the
 * checks every command relies on (see model.h).
 */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/limits.h"
#include "model/external.h"
#include "model/tensor_proto.h"
#include "model/wire_check.h"
#include "util/fileio.h"

struct load_context {
    const char *dir;
    const char *label;
};

static int prepare_tensor(Onnx__TensorProto *t, const struct load_context *ctx, const char *where,
                          struct mq_error *err)
{
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (mq_external_resolve(t, ctx->dir, err))
            goto fail;
    }
    if (mq_tensor_proto_validate(t, t->name && *t->name ? t->name : where, err))
        goto fail;
    return MQ_OK;
fail:
    mq_error_prefix(err, "%s: ", ctx->label);
    return MQ_ERR;
}

static int prepare_graph(Onnx__GraphProto *g, const struct load_context *ctx, int depth,
                         struct mq_error *err);

static int prepare_attribute(Onnx__AttributeProto *a, const struct load_context *ctx, int depth,
                             const char *node_name, struct mq_error *err)
{
    char where[256];
    snprintf(where, sizeof where, "attribute '%s' of node '%s'", mq_str(a->name), node_name);
    if (a->t && prepare_tensor(a->t, ctx, where, err))
        return MQ_ERR;
    for (size_t i = 0; i < a->n_tensors; i++)
        if (prepare_tensor(a->tensors[i], ctx, where, err))
            return MQ_ERR;
    if (a->g && prepare_graph(a->g, ctx, depth + 1, err))
        return MQ_ERR;
    for (size_t i = 0; i < a->n_graphs; i++)
        if (prepare_graph(a->graphs[i], ctx, depth + 1, err))
            return MQ_ERR;
    return MQ_OK;
}

/* Resolves external data and validates every tensor in a graph and its subgraphs. */
static int prepare_graph(Onnx__GraphProto *g, const struct load_context *ctx, int depth,
                         struct mq_error *err)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(err, "%s: subgraphs nested deeper than %d levels", ctx->label,
                            MQ_MAX_SUBGRAPH_DEPTH);
    for (size_t i = 0; i < g->n_initializer; i++)
        if (prepare_tensor(g->initializer[i], ctx, "initializer", err))
            return MQ_ERR;
    for (size_t i = 0; i < g->n_sparse_initializer; i++) {
        Onnx__SparseTensorProto *s = g->sparse_initializer[i];
        if (s->values && prepare_tensor(s->values, ctx, "sparse initializer values", err))
            return MQ_ERR;
        if (s->indices && prepare_tensor(s->indices, ctx, "sparse initializer indices", err))
            return MQ_ERR;
    }
    for (size_t n = 0; n < g->n_node; n++) {
        Onnx__NodeProto *node = g->node[n];
        if (!node->op_type || !*node->op_type)
            return mq_error_set(err, "%s: node %zu ('%s') of graph '%s' has no op_type", ctx->label,
                                n, mq_str(node->name), mq_str(g->name));
        for (size_t a = 0; a < node->n_attribute; a++)
            if (prepare_attribute(node->attribute[a], ctx, depth, mq_str(node->name), err))
                return MQ_ERR;
    }
    return MQ_OK;
}

static int looks_like(const uint8_t *b, size_t n, const char *magic, size_t m)
{
    return n >= m && memcmp(b, magic, m) == 0;
}

int mq_model_load_buffer(const uint8_t *bytes, size_t size, const char *dir, const char *label,
                         struct mq_model **out, struct mq_error *err)
{
    *out = NULL;
    if (size == 0)
        return mq_error_set(err, "%s: empty file, expected an ONNX model", label);
    if (looks_like(bytes, size, "\x89PNG", 4) || looks_like(bytes, size, "\xff\xd8\xff", 3) ||
        looks_like(bytes, size, "PK\x03\x04", 4) || looks_like(bytes, size, "\x93NUMPY", 6))
        return mq_error_set(err, "%s: this is an image, archive or .npy file, not an ONNX model",
                            label);
    if (mq_wire_check(bytes, size, &onnx__model_proto__descriptor, label, err))
        return MQ_ERR;
    Onnx__ModelProto *proto = onnx__model_proto__unpack(NULL, size, bytes);
    if (!proto)
        return mq_error_set(err, "%s: not a valid ONNX model (protobuf decoding failed)", label);
    if (!proto->graph) {
        onnx__model_proto__free_unpacked(proto, NULL);
        return mq_error_set(err, "%s: not an ONNX model: it has no graph", label);
    }
    if (!proto->has_ir_version || proto->ir_version < 1) {
        onnx__model_proto__free_unpacked(proto, NULL);
        return mq_error_set(err, "%s: not an ONNX model: ir_version is missing", label);
    }
    if (proto->ir_version >= 3 && proto->n_opset_import == 0) {
        onnx__model_proto__free_unpacked(proto, NULL);
        return mq_error_set(err, "%s: model has no opset_import (truncated or not an ONNX model?)",
                            label);
    }
    struct load_context ctx = {dir, label};
    if (prepare_graph(proto->graph, &ctx, 0, err)) {
        onnx__model_proto__free_unpacked(proto, NULL);
        return MQ_ERR;
    }
    struct mq_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(label)) || !(m->dir = strdup(dir ? dir : "."))) {
        if (m) {
            free(m->path);
            free(m);
        }
        onnx__model_proto__free_unpacked(proto, NULL);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    m->proto = proto;
    *out = m;
    return MQ_OK;
}

int mq_model_load(const char *path, struct mq_model **out, struct mq_error *err)
{
    *out = NULL;
    uint8_t *bytes;
    size_t size;
    if (mq_file_read(path, MQ_MODEL_MAX_BYTES, &bytes, &size, err))
        return MQ_ERR;
    char *dir = mq_path_dirname(path);
    if (!dir) {
        free(bytes);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    int rc = mq_model_load_buffer(bytes, size, dir, path, out, err);
    free(dir);
    free(bytes);
    return rc;
}

void mq_model_free(struct mq_model *model)
{
    if (!model)
        return;
    if (model->proto)
        onnx__model_proto__free_unpacked(model->proto, NULL);
    free(model->path);
    free(model->dir);
    free(model);
}

int mq_model_proto_opset(const Onnx__ModelProto *proto, const char *domain)
{
    const char *want = domain ? domain : "";
    if (strcmp(want, "ai.onnx") == 0)
        want = "";
    for (size_t i = 0; i < proto->n_opset_import; i++) {
        const char *d = mq_str(proto->opset_import[i]->domain);
        if (strcmp(d, "ai.onnx") == 0)
            d = "";
        if (strcmp(d, want) == 0)
            return (int)proto->opset_import[i]->version;
    }
    return -1;
}

int mq_model_opset(const struct mq_model *model, const char *domain)
{
    return mq_model_proto_opset(model->proto, domain);
}

int mq_path_check_distinct(const char *in_path, const char *out_path, struct mq_error *err)
{
    struct stat a, b;
    if (strcmp(in_path, out_path) == 0)
        return mq_error_code(err, MQ_ERR_USAGE, "%s: output is the same file as the input; "
                             "refusing to overwrite it", out_path);
    if (stat(in_path, &a) == 0 && stat(out_path, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        return mq_error_code(err, MQ_ERR_USAGE, "%s: output is the same file as the input '%s'; "
                             "refusing to overwrite it", out_path, in_path);
    return MQ_OK;
}
