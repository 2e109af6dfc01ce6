/*
 * Type lists for kernels generated per element type: X(OP, FAMILY, suffix, T,
 * unsigned T, dtype).  Signed integer arithmetic goes through the unsigned
 * type so overflow wraps instead of being undefined.
 */
#ifndef MQ_TYPE_LISTS_H
#define MQ_TYPE_LISTS_H

#include <stdint.h>

#include "core/tensor.h"

#define FLOAT_TYPES(X, OP, FAM)                                                                \
    X(OP, FAM, f32, float, float, MQ_DTYPE_FLOAT)                                              \
    X(OP, FAM, f64, double, double, MQ_DTYPE_DOUBLE)
#define SINT_TYPES(X, OP, FAM)                                                                 \
    X(OP, FAM, i8, int8_t, uint8_t, MQ_DTYPE_INT8)                                             \
    X(OP, FAM, i16, int16_t, uint16_t, MQ_DTYPE_INT16)                                         \
    X(OP, FAM, i32, int32_t, uint32_t, MQ_DTYPE_INT32)                                         \
    X(OP, FAM, i64, int64_t, uint64_t, MQ_DTYPE_INT64)
#define UINT_TYPES(X, OP, FAM)                                                                 \
    X(OP, FAM, u8, uint8_t, uint8_t, MQ_DTYPE_UINT8)                                           \
    X(OP, FAM, u16, uint16_t, uint16_t, MQ_DTYPE_UINT16)                                       \
    X(OP, FAM, u32, uint32_t, uint32_t, MQ_DTYPE_UINT32)                                       \
    X(OP, FAM, u64, uint64_t, uint64_t, MQ_DTYPE_UINT64)

#endif
