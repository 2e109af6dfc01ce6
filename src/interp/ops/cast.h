/* Element type conversion with Cast's semantics, for any kernel that needs it. */
#ifndef MQ_OPS_CAST_H
#define MQ_OPS_CAST_H

#include <stdint.h>

/* 1 for the types mq_cast_elements converts: every type interp/dtype.h's table holds. */
int mq_cast_supported(int dtype);

/*
 * Converts count elements of src_dtype into dst_dtype as ONNX Cast does:
 * floats to integers truncate toward zero, and values a type cannot hold
 * (NaN, overflow) give what onnxruntime's static_cast gives on x86-64 (the
 * "integer indefinite" value, then wrapped to the narrower type); integers
 * wrap; anything to bool is "!= 0"; double and integers to float16/bfloat16
 * go through float32, rounding to nearest even.  Returns 0, or -1 when a
 * type is not supported (nothing is written then).
 */
int mq_cast_elements(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t count);
/* The same with Cast's saturate (float8 targets) and round_mode (float8e8m0, enum
   mq_round_mode); mq_cast_elements saturates and rounds up. */
int mq_cast_elements_mode(void *dst, int dst_dtype, const void *src, int src_dtype,
                          int64_t count, int saturate, int round_mode);

#endif
