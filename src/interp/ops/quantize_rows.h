/*
 * Row kernels of QuantizeLinear and DequantizeLinear: one run of float values with one scale
 * and zero point turned into 8- or 16-bit integers, into those integers mapped back to float
 * (the QuantizeLinear + DequantizeLinear pair fused), or integers into float.  Each runs on the
 * widest x86 vector unit the CPU has (SSE2, AVX2, AVX-512), and every path gives bit for bit
 * what the scalar formula gives:
 *   quantize    q = saturate(round_half_even(x / scale) + zero), NaN -> the type's minimum
 *   dequantize  y = (float)(q - zero) * scale
 * with x / scale the float32 division (the multiply by 1 / scale that the vector paths use is
 * only trusted where it provably rounds to the same integer; see quantize_rows.c).
 */
#ifndef MQ_INTERP_OPS_QUANTIZE_ROWS_H
#define MQ_INTERP_OPS_QUANTIZE_ROWS_H

#include <stdint.h>

/* Which implementation: the tests compare each against the scalar one. */
enum mq_qrows_isa { MQ_QROWS_SCALAR, MQ_QROWS_SSE2, MQ_QROWS_AVX2, MQ_QROWS_AVX512, MQ_QROWS_ISAS };

/* `storage` is MQ_DTYPE_UINT8, INT8, UINT16 or INT16; zero lies in that type's range. */
struct mq_qrows_ops {
    const char *name;
    /* q[k] for k < n, written as `storage` integers */
    void (*quantize)(const float *x, int64_t n, float scale, int32_t zero, int storage, void *q);
    /* y[k] = (q[k] - zero) * scale with q[k] as quantize gives it, without storing q */
    void (*fake_quantize)(const float *x, int64_t n, float scale, int32_t zero, int storage,
                          float *y);
    /* y[k] = (float)(q[k] - zero) * scale, q read as `storage` integers */
    void (*dequantize)(const void *q, int64_t n, float scale, int32_t zero, int storage,
                       float *y);
};

/* The implementation for isa, or NULL when this build or this CPU lacks it. */
const struct mq_qrows_ops *mq_qrows_ops_for(enum mq_qrows_isa isa);

/* The widest implementation this CPU runs, picked once. */
const struct mq_qrows_ops *mq_qrows_best(void);

#endif
