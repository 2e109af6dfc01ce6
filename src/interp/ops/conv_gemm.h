/*
 * Float32 GEMM for convolutions with weights packed once, at plan time.
 *
 * Y[M, N] = W[M, K] x B[K, N] (+ bias per row, then an activation if asked), with
 * W packed into panels of MQ_CONV_GEMM_MR rows by mq_conv_gemm_pack, B any
 * row-major matrix (im2col columns, or a 1x1 convolution's input itself) and
 * Y written with its own row stride.  Against BLAS this saves, on every run,
 * the repacking of W (BLAS packs both operands on each call, a large share
 * of the time when there are few output positions), and a separate pass
 * over Y for the bias and the activation (a fused Relu or Clip): they are applied to each tile of
 * Y while it is in registers.
 *
 * The micro-kernels use AVX-512 or AVX2 (FMA) when the CPU has them,
 * selected at run time; mq_conv_gemm_available() is 0 elsewhere and callers
 * keep their BLAS path.  Summation order differs from BLAS, so results
 * differ from it by float rounding only.
 */
#ifndef MQ_OPS_CONV_GEMM_H
#define MQ_OPS_CONV_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct mq_conv_gemm_weights {
    int64_t groups, m, k;      /* per group: W_g is m x k */
    int mr;                    /* rows per panel, of the kernel chosen when packing */
    float *data;               /* groups * ceil(m / mr) panels of k * mr floats */
    size_t count;              /* floats in data */
};

/*
 * The fused activation, with the comparisons of the op it stands for (vmaxps and vminps with
 * the bound first), so NaN and -0 come out as from that op: a clamp, y = hi < v ? hi : v of
 * v = lo > y ? lo : y (Clip; Relu is lo 0, hi +inf), or with `hardswish` set HardSwish,
 * y * min(1, max(0, y / 6 + 0.5)).
 */
struct mq_conv_gemm_act {
    int hardswish;
    float lo, hi;
};

/* Which micro-kernel this CPU runs: 0 none (use BLAS), else its panel height. */
int mq_conv_gemm_available(void);

/*
 * Packs W (groups * m rows of k floats, row-major) for the kernel this CPU
 * runs.  The buffer counts against the memory cap; `what` names it in errors.
 */
int mq_conv_gemm_pack(const float *w, int64_t groups, int64_t m, int64_t k,
                      struct mq_conv_gemm_weights *out, const char *what, struct mq_error *err);
void mq_conv_gemm_free(struct mq_conv_gemm_weights *pw);

/*
 * Y = W_g x B for group g: B is k x n with rows ldb apart, Y is m x n with
 * rows ldy apart, plus bias (m values, may be NULL) on each row and res (an
 * m x n matrix with rows ldr apart, may be NULL), then the activation when
 * it is not NULL.  Y is only written, never read first (it may be res).
 * Dimensions must fit in int32 (the caller checks, as for BLAS).
 */
void mq_conv_gemm_run(const struct mq_conv_gemm_weights *pw, int64_t g, const float *b,
                      int64_t ldb, int64_t n, float *y, int64_t ldy, const float *bias,
                      const float *res, int64_t ldr, const struct mq_conv_gemm_act *clamp);

/*
 * A 2-D convolution whose B (im2col) matrix is read straight from the input
 * while packing, without an im2col copy.  The input is given as stride_h x
 * stride_w phase planes, each `channels` x plane_h x plane_w: phase (qh, qw)
 * holds input pixel (i * stride_h + qh, j * stride_w + qw) at (i, j), zero
 * past the input's edge.  At stride 1 the single phase is the input itself.
 * With o = tap offset kh * dilation_h - pad_h, tap row kh of output row oh
 * reads plane row oh + floor(o / stride_h) of phase o mod stride_h (zero
 * outside the plane), and likewise for columns, so each tap reads a run of
 * consecutive output positions from consecutive plane positions: across
 * output rows too when the planes are exactly out_w wide, else row by row.
 */
struct mq_conv_gemm_image {
    const float *data;
    int64_t channels, plane_h, plane_w, out_h, out_w;
    int64_t stride_h, stride_w;
    int64_t kernel_h, kernel_w, pad_h, pad_w, dilation_h, dilation_w;
};

/* Whether mq_conv_gemm_run_image can take this geometry on this CPU. */
int mq_conv_gemm_image_supported(const struct mq_conv_gemm_image *image);

/* Y = W_g x im2col(image), Y of m x (out_h * out_w) with rows ldy apart; the rest as above. */
void mq_conv_gemm_run_image(const struct mq_conv_gemm_weights *pw, int64_t g,
                            const struct mq_conv_gemm_image *image, float *y, int64_t ldy,
                            const float *bias, const float *res, int64_t ldr,
                            const struct mq_conv_gemm_act *clamp);

/*
 * HardSwish over y[0..n) in place, HardSwish's own x * (v < 0 ? 0 : v > 1 ? 1 : v) with
 * v = x / 6 + 0.5, in vectors where the CPU allows (AVX-512): the fused activation of
 * convolutions that do not apply it in the GEMM.
 */
void mq_conv_hardswish_f32(float *y, int64_t n);

/*
 * Depthwise taps: acc[i] = sum over t < taps of w[t] * src[t][i], for i < n
 * (acc is overwritten).  All the taps of a block of outputs are summed in
 * registers, so acc is written once instead of once per tap.  Returns 0,
 * doing nothing, when the CPU has no kernel for it (callers keep their own
 * loop).  taps <= MQ_CONV_MAX_TAPS.
 */
#define MQ_CONV_MAX_TAPS 64
int mq_conv_taps_f32(float *acc, const float *const *src, const float *w, int taps, int64_t n);


#endif
