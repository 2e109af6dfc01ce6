/*
 * The element-type table: every ONNX TensorProto.DataType the interpreter knows, with its name,
 * its size in memory, its width on file and its kind, and the codecs of the small float formats
 * (float8 x4, float8e8m0, float4e2m1).
 *
 * In memory every type narrower than a byte (int4, uint4, int2, uint2, float4e2m1) takes one byte
 * per element: signed ones sign-extended (read them as int8), unsigned ones as uint8, float4e2m1
 * as its 4-bit code.  float8 types hold their 8-bit code.  Files pack the narrow types (two or
 * four to a byte, the first element in the low bits); model/tensor_proto.c packs and unpacks.
 */
#ifndef MQ_DTYPE_H
#define MQ_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum mq_dtype_kind {
    MQ_KIND_NONE = 0, /* unknown, string, complex: not held by the interpreter */
    MQ_KIND_FLOAT,    /* float32, float64, float16, bfloat16 */
    MQ_KIND_INT,      /* signed integers (int4 and int2 included) */
    MQ_KIND_UINT,     /* unsigned integers (uint4 and uint2 included) */
    MQ_KIND_BOOL,
    MQ_KIND_SMALL_FLOAT, /* float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz,
                            float8e8m0, float4e2m1: codes, converted through float32 */
};

struct mq_dtype_info {
    int dtype;
    const char *name;  /* as numpy / ml_dtypes spell it */
    unsigned size;     /* bytes per element in memory; 0 when not held */
    unsigned bits;     /* bits per element on file */
    int kind;          /* enum mq_dtype_kind */
    int storage;       /* the byte type memory holds it as (int8/uint8), else the type itself */
};

/* The table entry for dtype, or NULL for values no entry describes. */
const struct mq_dtype_info *mq_dtype_info(int dtype);
int mq_dtype_kind(int dtype);
/* Bits per element on file (4 for int4, 2 for int2, 8 for float8, 32 for float...); 0 unknown. */
unsigned mq_dtype_bits(int dtype);
/* Bytes count elements take on file (packed for the narrow types); UINT64_MAX on overflow. */
uint64_t mq_dtype_file_bytes(int dtype, uint64_t count);
/* 1 for the narrow integer types (int4, uint4, int2, uint2). */
int mq_dtype_is_narrow_int(int dtype);
/* Range of an integer type that fits int32 (int4: -8..7, uint8: 0..255); -1 when not one. */
int mq_dtype_int_range(int dtype, int32_t *lo, int32_t *hi);

/* Unpacks count narrow elements (bits < 8) from packed file bytes into one byte each (sign
   extended for signed types); packs them back. */
void mq_dtype_unpack(int dtype, uint8_t *dst, const uint8_t *packed, int64_t count);
void mq_dtype_pack(int dtype, uint8_t *packed, const uint8_t *src, int64_t count);

/* Rounding of float8e8m0 conversions (Cast's round_mode). */
enum mq_round_mode { MQ_ROUND_UP = 0, MQ_ROUND_DOWN, MQ_ROUND_NEAREST };

/* Value of a small-float code. */
float mq_small_float_decode(int dtype, uint8_t code);
/*
 * Nearest code to v, rounding to nearest even (e8m0: by round_mode).  saturate: values beyond
 * the largest finite one (infinities included) give it, signed; otherwise they give infinity
 * where the format has one, else NaN.  float4e2m1 always saturates (it has neither).
 */
uint8_t mq_small_float_encode(int dtype, float v, int saturate, int round_mode);

#endif
