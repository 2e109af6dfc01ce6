/*
 * ONNX TensorProto <-> mq_tensor, and .pb files holding one TensorProto (see tensor_proto.h).
 */
#include "model/tensor_proto.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "model/model.h"
#include "util/fileio.h"

int64_t mq_tensor_proto_count(const Onnx__TensorProto *proto)
{
    if (proto->n_dims > MQ_MAX_RANK)
        return -1;
    return mq_dims_count((int)proto->n_dims, proto->dims);
}

/* Number of elements the typed field for this data type holds, or -1 when it has none. */
static int64_t typed_count(const Onnx__TensorProto *p, int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_FLOAT: return (int64_t)p->n_float_data;
    case MQ_DTYPE_INT32: case MQ_DTYPE_INT16: case MQ_DTYPE_INT8: case MQ_DTYPE_UINT16:
    case MQ_DTYPE_UINT8: case MQ_DTYPE_BOOL: case MQ_DTYPE_FLOAT16: case MQ_DTYPE_BFLOAT16:
        return (int64_t)p->n_int32_data;
    case MQ_DTYPE_INT64: return (int64_t)p->n_int64_data;
    case MQ_DTYPE_DOUBLE: return (int64_t)p->n_double_data;
    case MQ_DTYPE_UINT32: case MQ_DTYPE_UINT64: return (int64_t)p->n_uint64_data;
    case MQ_DTYPE_STRING: return (int64_t)p->n_string_data;
    default:
        /* float8 and the narrow types: int32_data holds one file byte per entry */
        if (mq_dtype_size(dtype) == 1)
            return (int64_t)p->n_int32_data;
        return -1;
    }
}

int mq_tensor_proto_validate(const Onnx__TensorProto *proto, const char *what,
                             struct mq_error *err)
{
    char shape[256];
    if (proto->n_dims > MQ_MAX_RANK)
        return mq_error_set(err, "tensor '%s': rank %zu is more than the %d supported", what,
                            proto->n_dims, MQ_MAX_RANK);
    int64_t count = mq_tensor_proto_count(proto);
    if (count < 0)
        return mq_error_set(err, "tensor '%s': dims %s are negative or overflow", what,
                            mq_shape_format((int)proto->n_dims, proto->dims, shape, sizeof shape));
    int dtype = proto->has_data_type ? proto->data_type : 0;
    if (proto->has_data_location && proto->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return mq_error_set(err, "tensor '%s': external data was not resolved", what);
    size_t elem = mq_dtype_size(dtype);
    if (proto->has_raw_data) {
        if (elem == 0)
            return mq_error_set(err, "tensor '%s': element type %s (%d) cannot hold raw data",
                                what, mq_dtype_name(dtype), dtype);
        uint64_t need = mq_dtype_file_bytes(dtype, (uint64_t)count);
        if (need == UINT64_MAX || proto->raw_data.len != need)
            return mq_error_set(err, "tensor '%s': raw_data holds %zu bytes but dims %s of %s "
                                "need %" PRIu64, what, proto->raw_data.len,
                                mq_shape_format((int)proto->n_dims, proto->dims, shape,
                                                sizeof shape), mq_dtype_name(dtype), need);
        return MQ_OK;
    }
    int64_t have = typed_count(proto, dtype);
    if (have < 0) {
        if (count == 0)
            return MQ_OK;
        return mq_error_set(err, "tensor '%s': element type %s (%d) has no data field", what,
                            mq_dtype_name(dtype), dtype);
    }
    /* narrow types pack several elements into each int32_data entry's byte */
    int bits = mq_dtype_bits(dtype); /* 0 for strings: one entry per element */
    int64_t want = bits > 0 && bits < 8 ? (int64_t)mq_dtype_file_bytes(dtype, (uint64_t)count)
                                        : count;
    if (have != want)
        return mq_error_set(err, "tensor '%s': holds %" PRId64 " values but dims %s need %" PRId64,
                            what, have,
                            mq_shape_format((int)proto->n_dims, proto->dims, shape, sizeof shape),
                            want);
    return MQ_OK;
}

int mq_tensor_from_proto(const Onnx__TensorProto *proto, const char *what, struct mq_tensor *out,
                         struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (mq_tensor_proto_validate(proto, what, err))
        return MQ_ERR;
    int dtype = proto->has_data_type ? proto->data_type : 0;
    if (mq_dtype_size(dtype) == 0)
        return mq_error_set(err, "tensor '%s': element type %s is not supported by the "
                            "interpreter", what, mq_dtype_name(dtype));
    if (mq_tensor_alloc(out, dtype, (int)proto->n_dims, proto->dims, what, err))
        return MQ_ERR;
    int64_t n = out->count;
    if (n == 0)
        return MQ_OK;
    void *d = out->data;
    int narrow = mq_dtype_bits(dtype) < 8;
    if (proto->has_raw_data) {
        /* Raw data is little-endian, as is every machine we build for. */
        if (narrow)
            mq_dtype_unpack(dtype, d, proto->raw_data.data, n);
        else
            memcpy(d, proto->raw_data.data, proto->raw_data.len);
        return MQ_OK;
    }
    if (mq_dtype_size(dtype) == 1 && dtype != MQ_DTYPE_INT8 && dtype != MQ_DTYPE_UINT8 &&
        dtype != MQ_DTYPE_BOOL) {
        /* float8 and the narrow types: one file byte per int32_data entry */
        int64_t bytes = (int64_t)proto->n_int32_data;
        uint8_t *file = malloc((size_t)bytes + 1);
        if (!file) {
            mq_tensor_free(out);
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        }
        for (int64_t i = 0; i < bytes; i++)
            file[i] = (uint8_t)proto->int32_data[i];
        if (narrow)
            mq_dtype_unpack(dtype, d, file, n);
        else
            memcpy(d, file, (size_t)n);
        free(file);
        return MQ_OK;
    }
    switch (dtype) {
    case MQ_DTYPE_FLOAT: memcpy(d, proto->float_data, (size_t)n * 4); break;
    case MQ_DTYPE_DOUBLE: memcpy(d, proto->double_data, (size_t)n * 8); break;
    case MQ_DTYPE_INT64: memcpy(d, proto->int64_data, (size_t)n * 8); break;
    case MQ_DTYPE_UINT64: memcpy(d, proto->uint64_data, (size_t)n * 8); break;
    case MQ_DTYPE_INT32: memcpy(d, proto->int32_data, (size_t)n * 4); break;
    case MQ_DTYPE_UINT32:
        for (int64_t i = 0; i < n; i++)
            ((uint32_t *)d)[i] = (uint32_t)proto->uint64_data[i];
        break;
    case MQ_DTYPE_INT16:
        for (int64_t i = 0; i < n; i++)
            ((int16_t *)d)[i] = (int16_t)proto->int32_data[i];
        break;
    case MQ_DTYPE_UINT16: case MQ_DTYPE_FLOAT16: case MQ_DTYPE_BFLOAT16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)d)[i] = (uint16_t)proto->int32_data[i];
        break;
    case MQ_DTYPE_INT8:
        for (int64_t i = 0; i < n; i++)
            ((int8_t *)d)[i] = (int8_t)proto->int32_data[i];
        break;
    case MQ_DTYPE_UINT8: case MQ_DTYPE_BOOL:
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)d)[i] = (uint8_t)proto->int32_data[i];
        break;
    default:
        mq_tensor_free(out);
        return mq_error_set(err, "tensor '%s': element type %s is not supported", what,
                            mq_dtype_name(dtype));
    }
    return MQ_OK;
}

int mq_tensor_to_proto(const struct mq_tensor *t, const char *name, Onnx__TensorProto **out,
                       struct mq_error *err)
{
    *out = NULL;
    Onnx__TensorProto *p = malloc(sizeof *p);
    if (!p)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    onnx__tensor_proto__init(p);
    int narrow = mq_dtype_bits(t->dtype) < 8;
    size_t bytes = narrow ? (size_t)mq_dtype_file_bytes(t->dtype, (uint64_t)t->count)
                          : (size_t)t->count * mq_dtype_size(t->dtype);
    p->dims = malloc(sizeof(int64_t) * (size_t)(t->rank ? t->rank : 1));
    p->raw_data.data = malloc(bytes ? bytes : 1);
    p->name = name ? strdup(name) : NULL;
    if (!p->dims || !p->raw_data.data || (name && !p->name)) {
        onnx__tensor_proto__free_unpacked(p, NULL);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    p->n_dims = (size_t)t->rank;
    for (int i = 0; i < t->rank; i++)
        p->dims[i] = t->dims[i];
    p->has_data_type = 1;
    p->data_type = t->dtype;
    p->has_raw_data = 1;
    p->raw_data.len = bytes;
    if (bytes && narrow)
        mq_dtype_pack(t->dtype, p->raw_data.data, t->data, t->count);
    else if (bytes)
        memcpy(p->raw_data.data, t->data, bytes);
    *out = p;
    return MQ_OK;
}

int mq_tensor_write_pb(const char *path, const struct mq_tensor *t, const char *name,
                       struct mq_error *err)
{
    Onnx__TensorProto *p;
    if (mq_tensor_to_proto(t, name, &p, err))
        return MQ_ERR;
    size_t size = onnx__tensor_proto__get_packed_size(p);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        onnx__tensor_proto__free_unpacked(p, NULL);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    onnx__tensor_proto__pack(p, buf);
    onnx__tensor_proto__free_unpacked(p, NULL);
    int rc = mq_file_write_atomic(path, buf, size, err);
    free(buf);
    return rc;
}

int mq_tensor_proto_int64_values(const Onnx__TensorProto *t, int64_t *out, int cap)
{
    if (!t || !t->has_data_type || t->data_type != MQ_DTYPE_INT64 || t->n_dims != 1 ||
        t->dims[0] < 0 || t->dims[0] > cap || t->n_external_data)
        return -1;
    int n = (int)t->dims[0];
    if (t->has_raw_data && t->raw_data.len == (size_t)n * 8) {
        memcpy(out, t->raw_data.data, (size_t)n * 8); /* little-endian hosts, as elsewhere */
        return n;
    }
    if (t->n_int64_data == (size_t)n) {
        for (int i = 0; i < n; i++)
            out[i] = t->int64_data[i];
        return n;
    }
    return -1;
}
