/* The core tensor type: allocation under the memory budget, copies and views, element-type
   sizes and names, float16/bfloat16 conversion (see tensor.h). */
#include "core/tensor.h"

#include "core/dtype.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic uint64_t memory_limit_bytes;
static _Atomic uint64_t memory_in_use_bytes;

void mq_memory_set_limit(uint64_t bytes) { atomic_store(&memory_limit_bytes, bytes); }
uint64_t mq_memory_limit(void) { return atomic_load(&memory_limit_bytes); }
uint64_t mq_memory_in_use(void) { return atomic_load(&memory_in_use_bytes); }

int mq_memory_reserve(uint64_t bytes, const char *what, struct mq_error *err)
{
    uint64_t limit = atomic_load(&memory_limit_bytes);
    uint64_t before = atomic_fetch_add(&memory_in_use_bytes, bytes);
    if (limit && (before + bytes > limit || before + bytes < before)) {
        atomic_fetch_sub(&memory_in_use_bytes, bytes);
        return mq_error_code(err, MQ_ERR_MEMORY,
                             "%s: needs %" PRIu64 " bytes, which would pass the memory cap of %"
                             PRIu64 " bytes (%" PRIu64 " in use); raise --max-memory",
                             what ? what : "tensor", bytes, limit, before);
    }
    return MQ_OK;
}

void mq_memory_release(uint64_t bytes) { atomic_fetch_sub(&memory_in_use_bytes, bytes); }

size_t mq_dtype_size(int dtype)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    return i ? i->size : 0;
}

const char *mq_dtype_name(int dtype)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    return i ? i->name : "unknown type";
}

int mq_dtype_is_float(int dtype)
{
    return mq_dtype_kind(dtype) == MQ_KIND_FLOAT;
}

int64_t mq_dims_count(int rank, const int64_t *dims)
{
    if (rank < 0 || rank > MQ_MAX_RANK)
        return -1;
    int64_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return -1;
        if (dims[i] != 0 && count > INT64_MAX / dims[i])
            return -1;
        count *= dims[i];
    }
    return count;
}

static int tensor_alloc(struct mq_tensor *t, int dtype, int rank, const int64_t *dims,
                        int zero, const char *what, struct mq_error *err)
{
    memset(t, 0, sizeof *t);
    char shape[256];
    size_t elem = mq_dtype_size(dtype);
    if (elem == 0)
        return mq_error_set(err, "%s: element type %s is not supported", what ? what : "tensor",
                            mq_dtype_name(dtype));
    if (rank < 0 || rank > MQ_MAX_RANK)
        return mq_error_set(err, "%s: rank %d is outside 0..%d", what ? what : "tensor", rank,
                            MQ_MAX_RANK);
    int64_t count = mq_dims_count(rank, dims);
    if (count < 0 || (uint64_t)count > SIZE_MAX / elem / 2)
        return mq_error_set(err, "%s: shape %s is invalid or too large", what ? what : "tensor",
                            mq_shape_format(rank, dims, shape, sizeof shape));
    uint64_t bytes = (uint64_t)count * elem;
    if (mq_memory_reserve(bytes, what, err))
        return MQ_ERR_MEMORY;
    void *data = NULL;
    if (count > 0) {
        data = zero ? calloc((size_t)count, elem) : malloc((size_t)count * elem);
        if (!data) {
            mq_memory_release(bytes);
            return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory allocating %" PRIu64
                                 " bytes for shape %s", what ? what : "tensor", bytes,
                                 mq_shape_format(rank, dims, shape, sizeof shape));
        }
    }
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->count = count;
    t->data = data;
    t->borrowed = 0;
    return MQ_OK;
}

int mq_tensor_alloc(struct mq_tensor *t, int dtype, int rank, const int64_t *dims,
                    const char *what, struct mq_error *err)
{
    return tensor_alloc(t, dtype, rank, dims, 1, what, err);
}

int mq_tensor_alloc_uninit(struct mq_tensor *t, int dtype, int rank, const int64_t *dims,
                           const char *what, struct mq_error *err)
{
    return tensor_alloc(t, dtype, rank, dims, 0, what, err);
}

int mq_tensor_alloc_uninit_like(struct mq_tensor *t, const struct mq_tensor *like,
                                const char *what, struct mq_error *err)
{
    return tensor_alloc(t, like->dtype, like->rank, like->dims, 0, what, err);
}

int mq_tensor_alloc_like(struct mq_tensor *t, const struct mq_tensor *like, const char *what,
                         struct mq_error *err)
{
    return mq_tensor_alloc(t, like->dtype, like->rank, like->dims, what, err);
}

int mq_tensor_copy(struct mq_tensor *dst, const struct mq_tensor *src, const char *what,
                   struct mq_error *err)
{
    if (mq_tensor_alloc_uninit_like(dst, src, what, err))
        return MQ_ERR;
    if (src->count > 0)
        memcpy(dst->data, src->data, (size_t)src->count * mq_dtype_size(src->dtype));
    return MQ_OK;
}

void mq_tensor_view(struct mq_tensor *dst, const struct mq_tensor *src)
{
    *dst = *src;
    dst->borrowed = 1;
}

void mq_tensor_free(struct mq_tensor *t)
{
    if (!t)
        return;
    if (!t->borrowed && t->count > 0 && t->data) {
        mq_memory_release((uint64_t)t->count * mq_dtype_size(t->dtype));
        free(t->data);
    }
    memset(t, 0, sizeof *t);
}

void mq_tensor_move(struct mq_tensor *dst, struct mq_tensor *src)
{
    *dst = *src;
    memset(src, 0, sizeof *src);
}

const char *mq_shape_format(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

int mq_shape_equal(const struct mq_tensor *a, const struct mq_tensor *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

double mq_tensor_get_double(const struct mq_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case MQ_DTYPE_FLOAT: return ((const float *)d)[i];
    case MQ_DTYPE_DOUBLE: return ((const double *)d)[i];
    case MQ_DTYPE_FLOAT16: return mq_half_to_float(((const uint16_t *)d)[i]);
    case MQ_DTYPE_BFLOAT16: return mq_bfloat16_to_float(((const uint16_t *)d)[i]);
    case MQ_DTYPE_UINT8: return ((const uint8_t *)d)[i];
    case MQ_DTYPE_BOOL: return ((const uint8_t *)d)[i];
    case MQ_DTYPE_INT8: return ((const int8_t *)d)[i];
    case MQ_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case MQ_DTYPE_INT16: return ((const int16_t *)d)[i];
    case MQ_DTYPE_INT32: return ((const int32_t *)d)[i];
    case MQ_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case MQ_DTYPE_INT64: return (double)((const int64_t *)d)[i];
    case MQ_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    case MQ_DTYPE_INT4: case MQ_DTYPE_INT2: return ((const int8_t *)d)[i];
    case MQ_DTYPE_UINT4: case MQ_DTYPE_UINT2: return ((const uint8_t *)d)[i];
    default:
        if (mq_dtype_kind(t->dtype) == MQ_KIND_SMALL_FLOAT)
            return mq_small_float_decode(t->dtype, ((const uint8_t *)d)[i]);
        return 0.0;
    }
}

int64_t mq_tensor_get_int64(const struct mq_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case MQ_DTYPE_INT64: return ((const int64_t *)d)[i];
    case MQ_DTYPE_INT32: return ((const int32_t *)d)[i];
    case MQ_DTYPE_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case MQ_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case MQ_DTYPE_INT16: return ((const int16_t *)d)[i];
    case MQ_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case MQ_DTYPE_INT8: return ((const int8_t *)d)[i];
    case MQ_DTYPE_UINT8: return ((const uint8_t *)d)[i];
    case MQ_DTYPE_BOOL: return ((const uint8_t *)d)[i];
    case MQ_DTYPE_INT4: case MQ_DTYPE_INT2: return ((const int8_t *)d)[i];
    case MQ_DTYPE_UINT4: case MQ_DTYPE_UINT2: return ((const uint8_t *)d)[i];
    default: {
        double v = mq_tensor_get_double(t, i);
        if (!(v == v))
            return 0;
        if (v >= 9.2e18)
            return INT64_MAX;
        if (v <= -9.2e18)
            return INT64_MIN;
        return (int64_t)v;
    }
    }
}

void mq_tensor_adopt_declared_bfloat16(struct mq_tensor *t, int declared_dtype)
{
    if (t->dtype == MQ_DTYPE_UINT16 && declared_dtype == MQ_DTYPE_BFLOAT16)
        t->dtype = MQ_DTYPE_BFLOAT16;
}

float mq_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {
            /* subnormal: value = mantissa * 2^-24 */
            float v = (float)mantissa * 5.9604644775390625e-8f;
            memcpy(&bits, &v, 4);
            bits |= sign;
        }
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mq_float_to_half(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t abs = bits & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
    if (abs >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float a;
        memcpy(&a, &abs, 4);
        float scaled = a * 16777216.0f; /* a / 2^-24 */
        uint32_t m = (uint32_t)nearbyintf(scaled);
        return (uint16_t)(sign | m);
    }
    uint32_t mantissa = abs & 0x7fffffu;
    uint32_t exponent = (abs >> 23) - 112;
    uint32_t half = (exponent << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
        half++;
    return (uint16_t)(sign | half);
}

float mq_bfloat16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mq_float_to_bfloat16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x40u);
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}
