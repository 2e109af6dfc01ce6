/*
 * Whole-tensor conversion to and from double for kernels whose arithmetic is not a hot path (see
 * as_double.h).
 */
#include "interp/ops/as_double.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int mq_as_double_supported(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_FLOAT: case MQ_DTYPE_DOUBLE: case MQ_DTYPE_FLOAT16: case MQ_DTYPE_BFLOAT16:
    case MQ_DTYPE_INT8: case MQ_DTYPE_INT16: case MQ_DTYPE_INT32: case MQ_DTYPE_INT64:
    case MQ_DTYPE_UINT8: case MQ_DTYPE_UINT16: case MQ_DTYPE_UINT32: case MQ_DTYPE_UINT64:
    case MQ_DTYPE_BOOL:
        return 1;
    default:
        return 0;
    }
}

#define LOAD(T)                                                                                    \
    do {                                                                                           \
        const T *s = t->data;                                                                      \
        for (int64_t i = 0; i < t->count; i++)                                                     \
            dst[i] = (double)s[i];                                                                 \
    } while (0)

int mq_as_double_load(const struct mq_tensor *t, double *dst)
{
    switch (t->dtype) {
    case MQ_DTYPE_FLOAT: LOAD(float); break;
    case MQ_DTYPE_DOUBLE: LOAD(double); break;
    case MQ_DTYPE_INT8: LOAD(int8_t); break;
    case MQ_DTYPE_INT16: LOAD(int16_t); break;
    case MQ_DTYPE_INT32: LOAD(int32_t); break;
    case MQ_DTYPE_INT64: LOAD(int64_t); break;
    case MQ_DTYPE_UINT8: LOAD(uint8_t); break;
    case MQ_DTYPE_UINT16: LOAD(uint16_t); break;
    case MQ_DTYPE_UINT32: LOAD(uint32_t); break;
    case MQ_DTYPE_UINT64: LOAD(uint64_t); break;
    case MQ_DTYPE_BOOL: LOAD(uint8_t); break;
    case MQ_DTYPE_FLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->count; i++)
            dst[i] = mq_half_to_float(s[i]);
        break;
    }
    case MQ_DTYPE_BFLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->count; i++)
            dst[i] = mq_bfloat16_to_float(s[i]);
        break;
    }
    default:
        return -1;
    }
    return 0;
}

/* Saturating truncation: out-of-range float-to-int conversion is undefined in C. */
#define STORE_INT(T, LO, HI)                                                                       \
    do {                                                                                           \
        T *d = t->data;                                                                            \
        for (int64_t i = 0; i < t->count; i++) {                                                   \
            double v = src[i];                                                                     \
            d[i] = isnan(v) ? (T)0 : v <= (double)(LO) ? (T)(LO) : v >= (double)(HI) ? (T)(HI)     \
                                                                                : (T)v;            \
        }                                                                                          \
    } while (0)

int mq_as_double_store(struct mq_tensor *t, const double *src)
{
    switch (t->dtype) {
    case MQ_DTYPE_FLOAT: {
        float *d = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = (float)src[i];
        break;
    }
    case MQ_DTYPE_DOUBLE: {
        double *d = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = src[i];
        break;
    }
    case MQ_DTYPE_FLOAT16: {
        uint16_t *d = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = mq_float_to_half((float)src[i]);
        break;
    }
    case MQ_DTYPE_BFLOAT16: {
        uint16_t *d = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = mq_float_to_bfloat16((float)src[i]);
        break;
    }
    case MQ_DTYPE_INT8: STORE_INT(int8_t, INT8_MIN, INT8_MAX); break;
    case MQ_DTYPE_INT16: STORE_INT(int16_t, INT16_MIN, INT16_MAX); break;
    case MQ_DTYPE_INT32: STORE_INT(int32_t, INT32_MIN, INT32_MAX); break;
    /* 2^63 is exactly representable; values at or past it saturate. */
    case MQ_DTYPE_INT64: STORE_INT(int64_t, INT64_MIN, INT64_MAX); break;
    case MQ_DTYPE_UINT8: STORE_INT(uint8_t, 0, UINT8_MAX); break;
    case MQ_DTYPE_UINT16: STORE_INT(uint16_t, 0, UINT16_MAX); break;
    case MQ_DTYPE_UINT32: STORE_INT(uint32_t, 0, UINT32_MAX); break;
    case MQ_DTYPE_UINT64: STORE_INT(uint64_t, 0, UINT64_MAX); break;
    case MQ_DTYPE_BOOL: {
        uint8_t *d = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = src[i] != 0.0;
        break;
    }
    default:
        return -1;
    }
    return 0;
}

double *mq_as_double_copy(const struct mq_tensor *t)
{
    double *v = malloc(sizeof(double) * (size_t)(t->count + 1));
    if (v && mq_as_double_load(t, v)) {
        free(v);
        return NULL;
    }
    return v;
}
