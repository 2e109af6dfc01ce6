/*
 * Writing a model to disk atomically, moving large initializers to an external data file when
 * the 2 GiB protobuf limit requires it.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "util/fileio.h"

/* Protobuf's hard limit is 2 GiB; leave room for the graph structure itself. */
#define INLINE_LIMIT_BYTES (((uint64_t)2 << 30) - ((uint64_t)64 << 20))
#define EXTERNAL_MIN_BYTES 1024
#define EXTERNAL_ALIGN 64

/* One tensor moved out of line while the model is packed, restored afterwards. */
struct moved_tensor {
    Onnx__TensorProto *tensor;
    ProtobufCBinaryData raw;
    protobuf_c_boolean had_raw;
    protobuf_c_boolean had_location;
    Onnx__TensorProto__DataLocation location;
    /* Typed fields (float_data, ...) set aside while their bytes live in `converted`. */
    struct mq_tensor converted;
    size_t n_float, n_int32, n_int64, n_double, n_uint64;
    float *float_data;
    int32_t *int32_data;
    int64_t *int64_data;
    double *double_data;
    uint64_t *uint64_data;
};

struct mover {
    struct moved_tensor *items;
    size_t n, cap;
};

static int collect_graph(Onnx__GraphProto *g, struct mover *mv, int depth);

static int collect_tensor(Onnx__TensorProto *t, struct mover *mv)
{
    if (t->n_external_data)
        return 0;
    struct mq_tensor decoded = {0};
    if (!t->has_raw_data) {
        /* Typed storage (float_data, int64_data, ...): externalised as raw little-endian bytes,
           as ONNX's own tools do.  Tensors the interpreter cannot decode stay inline. */
        int64_t count = mq_tensor_proto_count(t);
        size_t elem = mq_dtype_size(t->has_data_type ? t->data_type : 0);
        if (count <= 0 || !elem || mq_dtype_bits(t->data_type) < 8 ||
            (uint64_t)count * elem <= EXTERNAL_MIN_BYTES)
            return 0;
        if (mq_tensor_from_proto(t, mq_str(t->name), &decoded, NULL))
            return 0;
    } else if (t->raw_data.len <= EXTERNAL_MIN_BYTES) {
        return 0;
    }
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 64;
        struct moved_tensor *items = realloc(mv->items, cap * sizeof *items);
        if (!items) {
            mq_tensor_free(&decoded);
            return -1;
        }
        mv->items = items;
        mv->cap = cap;
    }
    struct moved_tensor *m = &mv->items[mv->n++];
    memset(m, 0, sizeof *m);
    m->tensor = t;
    m->raw = t->raw_data;
    m->had_raw = t->has_raw_data;
    m->had_location = t->has_data_location;
    m->location = t->data_location;
    if (decoded.dtype) {
        m->converted = decoded;
        m->n_float = t->n_float_data, m->float_data = t->float_data;
        m->n_int32 = t->n_int32_data, m->int32_data = t->int32_data;
        m->n_int64 = t->n_int64_data, m->int64_data = t->int64_data;
        m->n_double = t->n_double_data, m->double_data = t->double_data;
        m->n_uint64 = t->n_uint64_data, m->uint64_data = t->uint64_data;
        t->n_float_data = t->n_int32_data = t->n_int64_data = 0;
        t->n_double_data = t->n_uint64_data = 0;
        t->float_data = NULL, t->int32_data = NULL, t->int64_data = NULL;
        t->double_data = NULL, t->uint64_data = NULL;
        t->raw_data.data = decoded.data;
        t->raw_data.len = (size_t)decoded.count * mq_dtype_size(decoded.dtype);
        t->has_raw_data = 1;
    }
    return 0;
}

static int collect_graph(Onnx__GraphProto *g, struct mover *mv, int depth)
{
    if (depth > 64)
        return 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (collect_tensor(g->initializer[i], mv))
            return -1;
    for (size_t n = 0; n < g->n_node; n++)
        for (size_t a = 0; a < g->node[n]->n_attribute; a++) {
            Onnx__AttributeProto *attr = g->node[n]->attribute[a];
            if (attr->g && collect_graph(attr->g, mv, depth + 1))
                return -1;
            for (size_t k = 0; k < attr->n_graphs; k++)
                if (collect_graph(attr->graphs[k], mv, depth + 1))
                    return -1;
        }
    return 0;
}

static Onnx__StringStringEntryProto *entry(const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = malloc(sizeof *e);
    if (!e)
        return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = strdup(key);
    e->value = strdup(value);
    if (!e->key || !e->value) {
        onnx__string_string_entry_proto__free_unpacked(e, NULL);
        return NULL;
    }
    return e;
}

static void restore(struct mover *mv)
{
    for (size_t i = 0; i < mv->n; i++) {
        struct moved_tensor *m = &mv->items[i];
        Onnx__TensorProto *t = m->tensor;
        for (size_t k = 0; k < t->n_external_data; k++)
            onnx__string_string_entry_proto__free_unpacked(t->external_data[k], NULL);
        free(t->external_data);
        t->external_data = NULL;
        t->n_external_data = 0;
        t->raw_data = m->raw;
        t->has_raw_data = m->had_raw;
        t->has_data_location = m->had_location;
        t->data_location = m->location;
        if (m->converted.dtype) {
            t->n_float_data = m->n_float, t->float_data = m->float_data;
            t->n_int32_data = m->n_int32, t->int32_data = m->int32_data;
            t->n_int64_data = m->n_int64, t->int64_data = m->int64_data;
            t->n_double_data = m->n_double, t->double_data = m->double_data;
            t->n_uint64_data = m->n_uint64, t->uint64_data = m->uint64_data;
            mq_tensor_free(&m->converted);
        }
    }
    free(mv->items);
    memset(mv, 0, sizeof *mv);
}

static int pack_and_write(const Onnx__ModelProto *proto, const char *path, struct mq_error *err)
{
    size_t size = onnx__model_proto__get_packed_size(proto);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory packing %zu bytes", path, size);
    onnx__model_proto__pack(proto, buf);
    int rc = mq_file_write_atomic(path, buf, size, err);
    free(buf);
    return rc;
}

static int save_external(Onnx__ModelProto *proto, const char *path, struct mq_error *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base) + 6;
    char *data_name = malloc(n);
    char *dir = mq_path_dirname(path);
    char *data_path = NULL;
    struct mover mv = {0};
    struct mq_atomic_file data = {0};
    int rc = MQ_ERR;
    if (!data_name || !dir) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto out;
    }
    snprintf(data_name, n, "%s.data", base);
    data_path = mq_path_join(dir, data_name);
    if (!data_path || collect_graph(proto->graph, &mv, 0)) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto out;
    }
    if (mq_atomic_open(&data, data_path, err))
        goto out;
    uint64_t offset = 0;
    static const uint8_t zeros[EXTERNAL_ALIGN];
    for (size_t i = 0; i < mv.n; i++) {
        Onnx__TensorProto *t = mv.items[i].tensor;
        size_t pad = (size_t)((EXTERNAL_ALIGN - offset % EXTERNAL_ALIGN) % EXTERNAL_ALIGN);
        if ((pad && fwrite(zeros, 1, pad, data.fp) != pad) ||
            fwrite(t->raw_data.data, 1, t->raw_data.len, data.fp) != t->raw_data.len) {
            rc = mq_error_set(err, "%s: write failed", data_path);
            mq_atomic_abort(&data);
            goto out;
        }
        offset += pad;
        char offset_s[32], length_s[32];
        snprintf(offset_s, sizeof offset_s, "%" PRIu64, offset);
        snprintf(length_s, sizeof length_s, "%zu", t->raw_data.len);
        offset += t->raw_data.len;
        t->external_data = malloc(3 * sizeof *t->external_data);
        if (!t->external_data) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            mq_atomic_abort(&data);
            goto out;
        }
        t->external_data[0] = entry("location", data_name);
        t->external_data[1] = entry("offset", offset_s);
        t->external_data[2] = entry("length", length_s);
        t->n_external_data = 3;
        t->has_raw_data = 0;
        t->raw_data.data = NULL;
        t->raw_data.len = 0;
        t->has_data_location = 1;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        if (!t->external_data[0] || !t->external_data[1] || !t->external_data[2]) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            mq_atomic_abort(&data);
            goto out;
        }
    }
    if (mq_atomic_commit(&data, err))
        goto out;
    rc = pack_and_write(proto, path, err);
    if (rc)
        unlink(data_path);
out:
    restore(&mv);
    free(data_name);
    free(dir);
    free(data_path);
    return rc;
}

int mq_model_save(const Onnx__ModelProto *proto, const char *path,
                  const struct mq_save_options *options, struct mq_error *err)
{
    int external = options && options->external_data;
    if (!external && onnx__model_proto__get_packed_size(proto) > INLINE_LIMIT_BYTES)
        external = 1;
    if (!external)
        return pack_and_write(proto, path, err);
    /* The tensors are swapped out for the pack and restored, so the caller's model is unchanged. */
    return save_external((Onnx__ModelProto *)proto, path, err);
}
