/*
 * The direct path of depthwise 2-D convolutions (one input channel per
 * group): each padded input plane is rewritten as stride phase planes, and
 * every kernel tap becomes one long multiply-add over a whole plane.  Their
 * per-channel GEMMs would be too small to pay for themselves.
 */
#include <stdint.h>
#include <string.h>

#include "interp/ops/conv_gemm.h"
#include "interp/ops/conv_internal.h"
#include "interp/ops/vector_loop.h"

/* All the taps of a depthwise kernel at once (conv_gemm.h), float32 only. */
static int all_taps_f32(float *acc, const float *const *src, const float *w, int taps, int64_t n)
{
    return mq_conv_taps_f32(acc, src, w, taps, n);
}

static int all_taps_f64(double *acc, const double *const *src, const double *w, int taps,
                        int64_t n)
{
    (void)acc, (void)src, (void)w, (void)taps, (void)n;
    return 0;
}

/*
 * DEFINE_DEPTHWISE(T, SFX) defines, for element type T, the row helpers
 * (taps*_SFX, pad_line_SFX, split2_SFX, bias_row_SFX) and
 * mq_conv_depthwise2d_SFX (conv_internal.h).
 */
#define DEFINE_DEPTHWISE(T, SFX)                                                                  \
    /* one kernel row of a depthwise output row: y[i] += sum_k w[k] * src_k[i] */                 \
    MQ_SIMD_CLONES                                                                                \
    static void taps3_##SFX(T *restrict y, const T *restrict s0, const T *restrict s1,            \
                            const T *restrict s2, const T *w, int64_t n)                          \
    {                                                                                             \
        const T w0 = w[0], w1 = w[1], w2 = w[2];                                                  \
        MQ_VECTOR_LOOP(i, n, y[i] += w0 * s0[i] + w1 * s1[i] + w2 * s2[i]);                       \
    }                                                                                             \
                                                                                                  \
    MQ_SIMD_CLONES                                                                                \
    static void taps2_##SFX(T *restrict y, const T *restrict s0, const T *restrict s1,            \
                            const T *w, int64_t n)                                                \
    {                                                                                             \
        const T w0 = w[0], w1 = w[1];                                                             \
        MQ_VECTOR_LOOP(i, n, y[i] += w0 * s0[i] + w1 * s1[i]);                                    \
    }                                                                                             \
                                                                                                  \
    MQ_SIMD_CLONES                                                                                \
    static void taps1_##SFX(T *restrict y, const T *restrict s0, T w0, int64_t n)                 \
    {                                                                                             \
        MQ_VECTOR_LOOP(i, n, y[i] += w0 * s0[i]);                                                 \
    }                                                                                             \
                                                                                                  \
    /* dst[0..len) = image row shifted right by `left`, zero where it has no column */            \
    static void pad_line_##SFX(T *restrict dst, const T *restrict row, int64_t width,             \
                               int64_t left, int64_t len)                                         \
    {                                                                                             \
        int64_t lo = left < len ? left : len;                                                     \
        int64_t hi = left + width < len ? left + width : len;                                     \
        memset(dst, 0, (size_t)lo * sizeof(T));                                                   \
        if (hi > lo)                                                                              \
            memcpy(dst + lo, row + (lo - left), (size_t)(hi - lo) * sizeof(T));                   \
        else                                                                                      \
            hi = lo;                                                                              \
        memset(dst + hi, 0, (size_t)(len - hi) * sizeof(T));                                      \
    }                                                                                             \
                                                                                                  \
    static void split2_##SFX(T *restrict even, T *restrict odd, const T *restrict src, int64_t n) \
    {                                                                                             \
        MQ_VECTOR_LOOP(j, n, even[j] = src[2 * j]; odd[j] = src[2 * j + 1]);                      \
    }                                                                                             \
                                                                                                  \
    /* y = a + bias (+ r, the residual, when not NULL), then the fused activation `clamp`         \
     * (MQ_FUSED_*, interp/kernel.h) in the op's own comparisons: Clip's lo > v ? lo : v then     \
     * hi < v ? hi : v (NaN and -0 stay; Relu is lo 0, hi +inf), or HardSwish's */                \
    MQ_SIMD_CLONES                                                                                \
    static void bias_row_##SFX(T *restrict y, const T *restrict a, const T *restrict r,           \
                               int64_t n, T bias, int clamp, T lo, T hi)                          \
    {                                                                                             \
        if (clamp == MQ_FUSED_HARDSWISH) {                                                        \
            if (r)                                                                                \
                MQ_VECTOR_LOOP(i, n, y[i] = a[i] + bias + r[i]);                                  \
            else                                                                                  \
                MQ_VECTOR_LOOP(i, n, y[i] = a[i] + bias);                                         \
            conv_hardswish_##SFX(y, n);                                                           \
            return;                                                                               \
        }                                                                                         \
        if (r && clamp)                                                                           \
            MQ_VECTOR_LOOP(i, n, const T v = a[i] + bias + r[i]; const T u = lo > v ? lo : v;     \
                           y[i] = hi < u ? hi : u);                                               \
        else if (r)                                                                               \
            MQ_VECTOR_LOOP(i, n, y[i] = a[i] + bias + r[i]);                                      \
        else if (clamp)                                                                           \
            MQ_VECTOR_LOOP(i, n, const T v = a[i] + bias; const T u = lo > v ? lo : v;            \
                           y[i] = hi < u ? hi : u);                                               \
        else                                                                                      \
            MQ_VECTOR_LOOP(i, n, y[i] = a[i] + bias);                                             \
    }                                                                                             \
                                                                                                  \
    /*                                                                                            \
     * Depthwise 2-D convolution.  Each input plane is first rewritten, zero                      \
     * padding included, as stride_h x stride_w phase planes of `rows` x `cols`:                  \
     * phase (qh, qw) holds padded pixels (r * stride_h + qh, c * stride_w + qw).                 \
     * In that layout every kernel tap is a constant shift of one phase plane                     \
     * for all outputs at once (output (oh, ow) at flat oh * cols + ow), so each                  \
     * tap is one long contiguous multiply-add over the whole plane, with no                      \
     * bounds checks; the `cols - OW` extra columns per row are computed and                      \
     * dropped.  Each output row is then written once: accumulator plus bias                      \
     * (b may be NULL), with the fused clamp.                                                     \
     */                                                                                           \
    void mq_conv_depthwise2d_##SFX(const T *x, const T *w, const T *b, const T *res, T *y,        \
                                   int64_t channels, int64_t multiplier,                          \
                                   const struct window_map *m, T *planes, int64_t rows,           \
                                   int64_t cols, T *line, T *acc,                                 \
                                   const struct mq_fused_clamp *clamp)                            \
    {                                                                                             \
        const int64_t kh_n = m->kernel[0], kw_n = m->kernel[1];                                   \
        const int64_t ih_n = m->image[0], iw_n = m->image[1];                                     \
        const int64_t oh_n = m->grid[0], ow_n = m->grid[1];                                       \
        const int64_t sh = m->strides[0], sw = m->strides[1];                                     \
        const int64_t dh = m->dilations[0], dw = m->dilations[1];                                 \
        const int64_t ph = m->pad_begin[0], pw = m->pad_begin[1];                                 \
        const int64_t plane = rows * cols, span = (oh_n - 1) * cols + ow_n;                       \
        const T *src[MAX_DEPTHWISE_TAPS];                                                         \
        for (int64_t c = 0; c < channels; c++) {                                                  \
            const T *xp = x + c * m->image_size;                                                  \
            for (int64_t qh = 0; qh < sh; qh++) {                                                 \
                for (int64_t rr = 0; rr < rows; rr++) {                                           \
                    const int64_t ih = rr * sh + qh - ph;                                         \
                    T *dst = planes + qh * sw * plane + rr * cols;                                \
                    if (ih < 0 || ih >= ih_n) {                                                   \
                        for (int64_t qw = 0; qw < sw; qw++)                                       \
                            memset(dst + qw * plane, 0, (size_t)cols * sizeof(T));                \
                        continue;                                                                 \
                    }                                                                             \
                    const T *xrow = xp + ih * iw_n;                                               \
                    if (sw == 1) {                                                                \
                        pad_line_##SFX(dst, xrow, iw_n, pw, cols);                                \
                    } else {                                                                      \
                        pad_line_##SFX(line, xrow, iw_n, pw, sw * cols);                          \
                        if (sw == 2)                                                              \
                            split2_##SFX(dst, dst + plane, line, cols);                           \
                        else                                                                      \
                            for (int64_t qw = 0; qw < sw; qw++)                                   \
                                conv_gather_##SFX(dst + qw * plane, line + qw, cols, sw);         \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
            for (int64_t j = 0; j < multiplier; j++) {                                            \
                const int64_t oc = c * multiplier + j;                                            \
                const T *wk = w + oc * m->kernel_size;                                            \
                T *yp = y + oc * m->grid_size;                                                    \
                int summed = 0;                                                                   \
                const T bias = b ? b[oc] : (T)0;                                                  \
                const T *rp = res ? res + oc * m->grid_size : NULL;                               \
                if (kh_n * kw_n <= MQ_CONV_MAX_TAPS) {                                            \
                    /* every tap's source at once, for a kernel summing them in registers */      \
                    const T *all[MQ_CONV_MAX_TAPS];                                               \
                    for (int64_t kh = 0; kh < kh_n; kh++)                                         \
                        for (int64_t kw = 0; kw < kw_n; kw++) {                                   \
                            const int64_t th = kh * dh, tw = kw * dw;                             \
                            all[kh * kw_n + kw] = planes + ((th % sh) * sw + tw % sw) * plane +   \
                                                  (th / sh) * cols + tw / sw;                     \
                        }                                                                         \
                    summed = all_taps_##SFX(acc, all, wk, (int)(kh_n * kw_n), span);              \
                }                                                                                 \
                if (!summed)                                                                      \
                    memset(acc, 0, (size_t)span * sizeof(T));                                     \
                for (int64_t kh = 0; kh < kh_n && !summed; kh++) {                                \
                    const int64_t th = kh * dh;                                                   \
                    for (int64_t kw = 0; kw < kw_n; kw++) {                                       \
                        const int64_t tw = kw * dw;                                               \
                        src[kw] = planes + ((th % sh) * sw + tw % sw) * plane +                   \
                                  (th / sh) * cols + tw / sw;                                     \
                    }                                                                             \
                    const T *wr = wk + kh * kw_n;                                                 \
                    int64_t kw = 0;                                                               \
                    for (; kw + 3 <= kw_n; kw += 3)                                               \
                        taps3_##SFX(acc, src[kw], src[kw + 1], src[kw + 2], wr + kw, span);       \
                    if (kw + 2 == kw_n)                                                           \
                        taps2_##SFX(acc, src[kw], src[kw + 1], wr + kw, span);                    \
                    else if (kw + 1 == kw_n)                                                      \
                        taps1_##SFX(acc, src[kw], wr[kw], span);                                  \
                }                                                                                 \
                for (int64_t oh = 0; oh < oh_n; oh++)                                             \
                    bias_row_##SFX(yp + oh * ow_n, acc + oh * cols, rp ? rp + oh * ow_n : NULL,   \
                                   ow_n, bias, clamp ? clamp->kind : 0,                           \
                                   clamp ? (T)clamp->lo : (T)0, clamp ? (T)clamp->hi : (T)0);     \
            }                                                                                     \
        }                                                                                         \
    }

DEFINE_DEPTHWISE(float, f32)
DEFINE_DEPTHWISE(double, f64)
