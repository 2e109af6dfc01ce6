/*
 * Helpers shared by the quantization kernels (quantize_linear.c,
 * integer_ops.c): the quantized integer types and their ranges, reads of
 * zero points and scales of any accepted type, and the saturating rounding
 * both quantization and requantization use.  Header-only so each kernel file
 * stays one translation unit.
 *
 * The integer-arithmetic kernels (integer_ops.c) take 8- and 16-bit types only and refuse
 * 4-bit and float8 operands with a message; QuantizeLinear/DequantizeLinear take those too.
 */
#ifndef MQ_OPS_QUANT_TYPES_H
#define MQ_OPS_QUANT_TYPES_H

#include <stdint.h>
#include <string.h>

#include "interp/kernel.h"
#include "core/tensor.h"
#include "util/error.h"

#define NODE_FMT "node '%s' (%s): "
#define NODE_ARGS node->name, node->op_type

/* ---- element types ------------------------------------------------------------------ */

static inline int is_float8(int dtype) { return dtype >= 17 && dtype <= 20; }
static inline int is_4bit(int dtype) { return dtype == MQ_DTYPE_INT4 || dtype == MQ_DTYPE_UINT4; }

/* Full range of a quantized integer type; -1 when the type is not one. */
static inline int quant_range(int dtype, int32_t *qmin, int32_t *qmax)
{
    switch (dtype) {
    case MQ_DTYPE_UINT8: *qmin = 0; *qmax = 255; return 0;
    case MQ_DTYPE_INT8: *qmin = -128; *qmax = 127; return 0;
    case MQ_DTYPE_UINT16: *qmin = 0; *qmax = 65535; return 0;
    case MQ_DTYPE_INT16: *qmin = -32768; *qmax = 32767; return 0;
    default: return -1;
    }
}

/* Explains why a quantized type is refused. */
static inline int refuse_type(const struct mq_kernel_node *node, const char *what, int dtype,
                       struct mq_error *err)
{
    if (is_4bit(dtype))
        return mq_error_set(err, NODE_FMT "%s has type %s; 4-bit types are not supported by the "
                            "interpreter", NODE_ARGS, what, mq_dtype_name(dtype));
    if (is_float8(dtype))
        return mq_error_set(err, NODE_FMT "%s has type %s; float8 types are not supported by "
                            "the interpreter", NODE_ARGS, what, mq_dtype_name(dtype));
    return mq_error_set(err, NODE_FMT "%s has type %s, which this operator does not accept",
                        NODE_ARGS, what, mq_dtype_name(dtype));
}

/* Reads n elements of any integer tensor into int32 (zero points, quantized values). */
#define READ_INT(T)                                                                           \
    do {                                                                                      \
        const T *s_ = (const T *)t->data;                                                     \
        for (int64_t i = 0; i < n; i++)                                                       \
            dst[i] = (int32_t)s_[i];                                                          \
    } while (0)

static inline void read_int32(const struct mq_tensor *t, int32_t *dst, int64_t n)
{
    switch (t->dtype) {
    case MQ_DTYPE_UINT8: READ_INT(uint8_t); break;
    case MQ_DTYPE_INT8: READ_INT(int8_t); break;
    case MQ_DTYPE_UINT16: READ_INT(uint16_t); break;
    case MQ_DTYPE_INT16: READ_INT(int16_t); break;
    case MQ_DTYPE_INT32: READ_INT(int32_t); break;
    default:
        for (int64_t i = 0; i < n; i++)
            dst[i] = 0;
        break;
    }
}

/* Reads a float-like tensor (float32/16, bfloat16, double, int32) into float. */
static inline void read_float(const struct mq_tensor *t, float *dst, int64_t n)
{
    switch (t->dtype) {
    case MQ_DTYPE_FLOAT:
        memcpy(dst, t->data, (size_t)n * sizeof(float));
        break;
    case MQ_DTYPE_FLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = mq_half_to_float(s[i]);
        break;
    }
    case MQ_DTYPE_BFLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = mq_bfloat16_to_float(s[i]);
        break;
    }
    case MQ_DTYPE_DOUBLE: {
        const double *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    case MQ_DTYPE_INT32: {
        const int32_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++)
            dst[i] = 0.0f;
        break;
    }
}

static inline int is_scale_type(int dtype)
{
    return dtype == MQ_DTYPE_FLOAT || dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16;
}

/*
 * A float view of t: t's own data when it is float32, else a converted copy in
 * *scratch (freed by the caller).
 */
static inline int float_view(const struct mq_kernel_node *node, const struct mq_tensor *t,
                      struct mq_tensor *scratch, const float **out, struct mq_error *err)
{
    if (t->dtype == MQ_DTYPE_FLOAT) {
        *out = t->data;
        return MQ_OK;
    }
    if (mq_tensor_alloc(scratch, MQ_DTYPE_FLOAT, t->rank, t->dims, node->name, err))
        return MQ_ERR;
    read_float(t, scratch->data, t->count);
    *out = scratch->data;
    return MQ_OK;
}

/* Stores float results into a float32/float16/bfloat16 output. */
static inline void store_float(int dtype, void *dst, const float *src, int64_t n)
{
    if (dtype == MQ_DTYPE_FLOAT16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = mq_float_to_half(src[i]);
    } else if (dtype == MQ_DTYPE_BFLOAT16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = mq_float_to_bfloat16(src[i]);
    }
}

/* Round half to even, then saturate; NaN saturates to qmin (see the header comment). */
static inline int32_t quantize_value(float v, float lo, float hi)
{
    if (!(v >= lo))
        return (int32_t)lo;
    if (v > hi)
        return (int32_t)hi;
    return (int32_t)v;
}

#endif
