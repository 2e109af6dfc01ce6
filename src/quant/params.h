/*
 * Scale and zero point from a float range, and the integer conversions that
 * use them, as onnxruntime's quantize_static computes them (the scheme is
 * described in docs/quantization-notes.md).  Pure arithmetic: no graph, no I/O.
 */
#ifndef MQ_PARAMS_H
#define MQ_PARAMS_H

#include <stdint.h>

#include "util/error.h"

/* The integer types a tensor can be quantized to (values of ONNX TensorProto.DataType). */
int mq_qtype_valid(int dtype);        /* uint8, int8, uint16, int16, uint4, int4 */
int mq_qtype_signed(int dtype);
int mq_qtype_bits(int dtype);          /* 8, 16 or 4 */
const char *mq_qtype_name(int dtype);  /* "uint8", ...; NULL when not a quantized type */
/* Parses "uint8", "int8", ...; 0 on success, -1 when the name is not a quantized type. */
int mq_qtype_parse(const char *name, int *dtype);

/* The integer interval a scheme uses: the type's full range, or a reduced/symmetric one. */
struct mq_qrange {
    int32_t qmin, qmax;
};
/* Full range of the type: what quantized values are clamped to. */
struct mq_qrange mq_qrange_full(int dtype);
/* The range the scale is computed over: full, symmetric or reduce-range. */
struct mq_qrange mq_qrange_for(int dtype, int symmetric, int reduce_range);

struct mq_qparams {
    float scale;
    int32_t zero_point;
};

/*
 * Scale and zero point for the float range [lo, hi] over [qmin, qmax].  The
 * range is widened to include 0 (and made symmetric when asked).  A range
 * narrower than FLT_MIN gives scale 1, zero point 0.  Fails (MQ_ERR, message
 * naming the range) when lo or hi is not finite, lo > hi, or the width
 * overflows a float.
 */
int mq_qparams_compute(float lo, float hi, struct mq_qrange range, int symmetric,
                       struct mq_qparams *out, struct mq_error *err);

/* clamp(rint(x / scale) + zero_point, full range), the division in float. */
int32_t mq_quantize_value(float x, struct mq_qparams p, struct mq_qrange full);
/* The float a quantized value stands for: (q - zero_point) * scale. */
float mq_dequantize_value(int32_t q, struct mq_qparams p);

/* Bias: int32 with zero point 0; rint(x / scale) in float, clamped to int32. */
int32_t mq_quantize_bias(float x, float scale);

/*
 * A bias channel whose values reach |absmax| fits int32 only when its scale
 * is at least this (with a 1e-4 margin, as onnxruntime's quantizer uses).
 */
double mq_bias_min_scale(float absmax);

#endif
