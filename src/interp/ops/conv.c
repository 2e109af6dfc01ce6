/*
 * Conv (ConvTranspose is in conv_transpose.c, the shared pieces in
 * conv_internal.h).
 *
 * float32 and double go through BLAS: im2col + one GEMM per group
 * (W_g [M/g, C/g*K] x columns [C/g*K, out positions]) written straight into
 * the bias-prefilled output.  A 1x1 stride-1 unpadded Conv uses the input
 * itself as the column matrix, and a depthwise 2-D Conv (one input channel
 * per group) takes the direct path of conv_depthwise.c.
 * float16 and bfloat16 run on float32 copies (interp/ops/widen.h).
 *
 * Plans built with fusion (interp/ops/fused.h) use mq_kernel_conv_relu,
 * Conv followed by Relu, where the Relu runs on each block of output right
 * after the GEMM that wrote it, while it is still in cache, and
 * mq_kernel_conv_add(_relu), where input 3, the other operand of a following
 * Add, is added with the bias (or, when its shape is not Y's, broadcast
 * afterwards).
 *
 * Plans built with packed weights (mq_conv_pack_weights) run float32 GEMMs
 * through interp/ops/conv_gemm.h instead of BLAS: W is packed once, the
 * bias, residual and Relu are applied inside the GEMM, and 2-D convolutions
 * read their input (or its stride phase planes) directly instead of an
 * im2col matrix.  Depthwise convolutions sum all their taps in registers
 * there when the CPU allows.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/broadcast.h"
#include "interp/ops/conv_gemm.h"
#include "interp/ops/conv_internal.h"
#include "interp/ops/fused.h"
#include "interp/ops/gemm.h"
#include "interp/ops/scratch.h"
#include "interp/ops/spatial.h"
#include "interp/ops/vector_loop.h"
#include "interp/ops/widen.h"

/*
 * im2col columns are built in chunks of whole output lines, about 1 MiB of
 * floats each, so a chunk is still in cache when the GEMM packs it (a whole
 * 224x224 layer's columns would be 100+ MB streamed through memory twice).
 * A chunk keeps at least MIN_CHUNK_COLUMNS columns: a GEMM narrower than that
 * spends more on repacking W than it saves.
 */
#define COLUMN_BUDGET_ELEMENTS ((int64_t)1 << 18)
#define MIN_CHUNK_COLUMNS 512

/* The fused activation in conv_gemm's form (NULL when none). */
static const struct mq_conv_gemm_act *gemm_clamp(const struct mq_fused_clamp *clamp,
                                                 struct mq_conv_gemm_act *storage)
{
    if (!clamp)
        return NULL;
    storage->hardswish = clamp->kind == MQ_FUSED_HARDSWISH;
    storage->lo = (float)clamp->lo;
    storage->hi = (float)clamp->hi;
    return storage;
}

/* The packed GEMM is float32 only: conv_compute_f64 never gets packed weights. */
static void packed_gemm_f32(const struct mq_conv_gemm_weights *pw, int64_t g, const float *b,
                            int64_t ldb, int64_t n, float *y, int64_t ldy, const float *bias,
                            const float *res, const struct mq_fused_clamp *clamp)
{
    struct mq_conv_gemm_act c;
    mq_conv_gemm_run(pw, g, b, ldb, n, y, ldy, bias, res, ldy, gemm_clamp(clamp, &c));
}

static void packed_gemm_f64(const struct mq_conv_gemm_weights *pw, int64_t g, const double *b,
                            int64_t ldb, int64_t n, double *y, int64_t ldy, const double *bias,
                            const double *res, const struct mq_fused_clamp *clamp)
{
    (void)pw, (void)g, (void)b, (void)ldb, (void)n, (void)y, (void)ldy, (void)bias, (void)res,
        (void)clamp;
}

/* Strides up to this are read through phase planes by the packed GEMM; larger ones use im2col. */
#define MAX_PHASE_STRIDE 4
/* Outputs narrower than this, unless exactly as wide as the planes, use im2col: the packed
   GEMM would take them row by row, in panels mostly empty. */
#define MIN_ROW_BY_ROW_WIDTH 24

/*
 * A 2-D convolution as conv_gemm's image (interp/ops/conv_gemm.h): the
 * input itself at stride 1, else its stride phase planes.
 * *phase_count: the floats of phase planes to build (0 at stride 1).
 */
static int plane_image(const struct window_map *m, int64_t channels,
                       struct mq_conv_gemm_image *image, int64_t *phase_count)
{
    if (m->n != 2)
        return 0;
    const int64_t sh = m->strides[0], sw = m->strides[1];
    if (sh < 1 || sw < 1 || sh > MAX_PHASE_STRIDE || sw > MAX_PHASE_STRIDE)
        return 0;
    const int64_t plane_h = (m->image[0] + sh - 1) / sh, plane_w = (m->image[1] + sw - 1) / sw;
    if (plane_w != m->grid[1] && m->grid[1] < MIN_ROW_BY_ROW_WIDTH)
        return 0;
    *phase_count = sh == 1 && sw == 1 ? 0 : sh * sw * channels * plane_h * plane_w;
    image->data = NULL;
    image->channels = channels;
    image->plane_h = plane_h;
    image->plane_w = plane_w;
    image->out_h = m->grid[0];
    image->out_w = m->grid[1];
    image->stride_h = sh;
    image->stride_w = sw;
    image->kernel_h = m->kernel[0];
    image->kernel_w = m->kernel[1];
    image->pad_h = m->pad_begin[0];
    image->pad_w = m->pad_begin[1];
    image->dilation_h = m->dilations[0];
    image->dilation_w = m->dilations[1];
    return mq_conv_gemm_image_supported(image);
}

static void packed_image_f32(const struct mq_conv_gemm_weights *pw, int64_t g,
                             struct mq_conv_gemm_image *image, const float *planes, float *y,
                             int64_t ldy, const float *bias, const float *res,
                             const struct mq_fused_clamp *clamp)
{
    struct mq_conv_gemm_act c;
    image->data = planes;
    mq_conv_gemm_run_image(pw, g, image, y, ldy, bias, res, ldy, gemm_clamp(clamp, &c));
}

static void packed_image_f64(const struct mq_conv_gemm_weights *pw, int64_t g,
                             struct mq_conv_gemm_image *image, const double *planes, double *y,
                             int64_t ldy, const double *bias, const double *res,
                             const struct mq_fused_clamp *clamp)
{
    (void)pw, (void)g, (void)image, (void)planes, (void)y, (void)ldy, (void)bias, (void)res,
        (void)clamp;
}

/*
 * DEFINE_CONV(T, SFX, GEMM) defines, for element type T and its GEMM (interp/ops/gemm.h):
 *   every_other_SFX, im2col_row_SFX, clamp_row_SFX, ...   row helpers the loops below call
 *   im2col_SFX        columns for window lines [line0, line1) of `channels` images
 *   build_phases_SFX  the stride phase planes the packed GEMM reads
 *   mq_conv_fill_bias_SFX (conv_internal.h)
 *   conv_compute_SFX  the whole op on one batch
 */
#define DEFINE_CONV(T, SFX, GEMM)                                                                 \
    MQ_SIMD_CLONES                                                                                \
    static void every_other_##SFX(T *restrict dst, const T *restrict src, int64_t n)              \
    {                                                                                             \
        MQ_VECTOR_LOOP(j, n, dst[j] = src[2 * j]);                                                \
    }                                                                                             \
                                                                                                  \
    /* one im2col row segment: gw window positions, taps [lo, hi) inside the image row src */     \
    static void im2col_row_##SFX(T *row, const T *src, int64_t gw, int64_t lo, int64_t hi,        \
                                 int64_t off, int64_t sw)                                         \
    {                                                                                             \
        if (!src || lo >= hi) {                                                                   \
            memset(row, 0, (size_t)gw * sizeof(T));                                               \
            return;                                                                               \
        }                                                                                         \
        if (lo > 0)                                                                               \
            memset(row, 0, (size_t)lo * sizeof(T));                                               \
        if (sw == 1)                                                                              \
            memcpy(row + lo, src + off + lo, (size_t)(hi - lo) * sizeof(T));                      \
        else if (sw == 2)                                                                         \
            every_other_##SFX(row + lo, src + lo * 2 + off, hi - lo);                             \
        else                                                                                      \
            conv_gather_##SFX(row + lo, src + lo * sw + off, hi - lo, sw);                        \
        if (hi < gw)                                                                              \
            memset(row + hi, 0, (size_t)(gw - hi) * sizeof(T));                                   \
    }                                                                                             \
                                                                                                  \
    /*                                                                                            \
     * Rows [line0, line1) of one im2col row block when output and input rows have                \
     * the same width and stride 1 (a "same" convolution): output row oh reads input              \
     * row oh + shift at column offset off, so the rows inside the image are one                  \
     * contiguous run of the input, copied at once; what that run carries into the                \
     * padding columns [0, lo) and [hi, w) of each row is then cleared.                           \
     */                                                                                           \
    static void im2col_rows_##SFX(T *dst, const T *xc, int64_t line0, int64_t line1,              \
                                  int64_t shift, int64_t ih_n, int64_t w, int64_t lo,             \
                                  int64_t hi, int64_t off)                                        \
    {                                                                                             \
        int64_t a = -shift > line0 ? -shift : line0;                                              \
        int64_t b = ih_n - shift < line1 ? ih_n - shift : line1;                                  \
        if (a > b)                                                                                \
            a = b = line0;                                                                        \
        if (lo >= hi)                                                                             \
            a = b;                                                                                \
        memset(dst, 0, (size_t)((a - line0) * w) * sizeof(T));                                    \
        memset(dst + (b - line0) * w, 0, (size_t)((line1 - b) * w) * sizeof(T));                  \
        if (a == b)                                                                               \
            return;                                                                               \
        T *d = dst + (a - line0) * w;                                                             \
        memcpy(d + lo, xc + (a + shift) * w + off + lo,                                           \
               (size_t)((b - a - 1) * w + hi - lo) * sizeof(T));                                  \
        for (int64_t r = 0; r < b - a; r++, d += w) {                                             \
            for (int64_t j = 0; j < lo; j++)                                                      \
                d[j] = 0;                                                                         \
            for (int64_t j = hi; j < w; j++)                                                      \
                d[j] = 0;                                                                         \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static void im2col_##SFX(const T *x, int64_t channels, const struct window_map *m,            \
                             int64_t line0, int64_t line1, T *col)                                \
    {                                                                                             \
        const int L = m->n - 1;                                                                   \
        const int64_t gw = m->grid[L], iw = m->image[L], sw = m->strides[L];                      \
        const int64_t width = (line1 - line0) * gw;                                               \
        if (m->n == 2) {                                                                          \
            /* the common case without the N-D odometer: a line is an output row */               \
            const int64_t ih_n = m->image[0], sh = m->strides[0], dh = m->dilations[0];           \
            const int64_t ph = m->pad_begin[0];                                                   \
            T *row = col;                                                                         \
            for (int64_t c = 0; c < channels; c++) {                                              \
                const T *xc = x + c * m->image_size;                                              \
                for (int64_t kh = 0; kh < m->kernel[0]; kh++)                                     \
                    for (int64_t kw = 0; kw < m->kernel[1]; kw++) {                               \
                        int64_t off = kw * m->dilations[1] - m->pad_begin[1], lo, hi;             \
                        inner_range(off, sw, iw, gw, &lo, &hi);                                   \
                        if (sw == 1 && sh == 1 && gw == iw) {                                     \
                            im2col_rows_##SFX(row, xc, line0, line1, kh * dh - ph, ih_n, gw, lo,  \
                                              hi, off);                                           \
                            row += width;                                                         \
                            continue;                                                             \
                        }                                                                         \
                        for (int64_t oh = line0; oh < line1; oh++, row += gw) {                   \
                            int64_t ih = oh * sh - m->pad_begin[0] + kh * dh;                     \
                            const T *src = ih >= 0 && ih < ih_n ? xc + ih * iw : NULL;            \
                            im2col_row_##SFX(row, src, gw, lo, hi, off, sw);                      \
                        }                                                                         \
                    }                                                                             \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        int64_t k[MQ_MAX_RANK] = {0}, o[MQ_MAX_RANK];                                             \
        for (int64_t c = 0; c < channels; c++) {                                                  \
            const T *xc = x + c * m->image_size;                                                  \
            for (int64_t ki = 0; ki < m->kernel_size; ki++) {                                     \
                T *row = col + (c * m->kernel_size + ki) * width;                                 \
                int64_t off = k[L] * m->dilations[L] - m->pad_begin[L], lo, hi;                   \
                inner_range(off, sw, iw, gw, &lo, &hi);                                           \
                int64_t q = line0;                                                                \
                for (int d = L - 1; d >= 0; d--) {                                                \
                    o[d] = q % m->grid[d];                                                        \
                    q /= m->grid[d];                                                              \
                }                                                                                 \
                for (int64_t p = line0; p < line1; p++, row += gw) {                              \
                    int64_t line = outer_image_line(m, o, k);                                     \
                    odometer_step(o, m->grid, L);                                                 \
                    im2col_row_##SFX(row, line < 0 ? NULL : xc + line * iw, gw, lo, hi, off, sw); \
                }                                                                                 \
                odometer_step(k, m->kernel, m->n);                                                \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* the fused Relu or Clip: Clip's comparisons (NaN and -0 stay) */                          \
    MQ_SIMD_CLONES                                                                                \
    static void clamp_row_##SFX(T *restrict y, int64_t n, T lo, T hi)                             \
    {                                                                                             \
        MQ_VECTOR_LOOP(i, n, const T v = lo > y[i] ? lo : y[i]; y[i] = hi < v ? hi : v);          \
    }                                                                                             \
                                                                                                  \
    /* the fused activation over `rows` rows of n elements, `stride` apart */                     \
    static void clamp_rows_##SFX(T *y, int64_t rows, int64_t n, int64_t stride,                   \
                                 const struct mq_fused_clamp *clamp)                              \
    {                                                                                             \
        for (int64_t r = 0; r < rows; r++)                                                        \
            if (clamp->kind == MQ_FUSED_HARDSWISH)                                                \
                conv_hardswish_##SFX(y + r * stride, n);                                          \
            else                                                                                  \
                clamp_row_##SFX(y + r * stride, n, (T)clamp->lo, (T)clamp->hi);                   \
    }                                                                                             \
                                                                                                  \
    /* the stride phase planes of conv_gemm's image: `channels` planes of x (h x w) per phase */  \
    static void build_phases_##SFX(T *dst, const T *x, const struct mq_conv_gemm_image *im,       \
                                   int64_t h, int64_t w)                                          \
    {                                                                                             \
        const int64_t sh = im->stride_h, sw = im->stride_w, pw_ = im->plane_w;                    \
        for (int64_t qh = 0; qh < sh; qh++)                                                       \
            for (int64_t qw = 0; qw < sw; qw++)                                                   \
                for (int64_t c = 0; c < im->channels; c++) {                                      \
                    const T *xc = x + c * h * w;                                                  \
                    for (int64_t i = 0; i < im->plane_h; i++, dst += pw_) {                       \
                        const int64_t ih = i * sh + qh;                                           \
                        /* input columns qw, qw + sw, ... that exist */                           \
                        const int64_t n = ih < h && qw < w ? (w - qw + sw - 1) / sw : 0;          \
                        const int64_t valid = n < pw_ ? n : pw_;                                  \
                        if (valid > 0 && sw == 1)                                                 \
                            memcpy(dst, xc + ih * w + qw, (size_t)valid * sizeof(T));             \
                        else if (valid > 0 && sw == 2)                                            \
                            every_other_##SFX(dst, xc + ih * w + qw, valid);                      \
                        else if (valid > 0)                                                       \
                            conv_gather_##SFX(dst, xc + ih * w + qw, valid, sw);                  \
                        memset(dst + valid, 0, (size_t)(pw_ - valid) * sizeof(T));                \
                    }                                                                             \
                }                                                                                 \
    }                                                                                             \
                                                                                                  \
    /* y = b[c] over each channel, or zeros when there is no bias; plus res when not NULL */      \
    void mq_conv_fill_bias_##SFX(T *y, const T *b, const T *res, int64_t channels, int64_t size)  \
    {                                                                                             \
        for (int64_t c = 0; c < channels; c++) {                                                  \
            const T v = b ? b[c] : (T)0;                                                          \
            T *p = y + c * size;                                                                  \
            if (res) {                                                                            \
                const T *r = res + c * size;                                                      \
                MQ_VECTOR_LOOP(i, size, p[i] = v + r[i]);                                         \
            } else {                                                                              \
                MQ_VECTOR_LOOP(i, size, p[i] = v);                                                \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static int conv_compute_##SFX(const struct mq_kernel_node *node, const struct window_map *m,  \
                                  int64_t batch, int64_t in_ch, int64_t out_ch, int64_t group,    \
                                  const T *x, const T *w, const T *b, const T *res, T *y,         \
                                  const struct mq_fused_clamp *clamp,                             \
                                  const struct mq_conv_gemm_weights *pw,                          \
                                  struct mq_error *err)                                           \
    {                                                                                             \
        const int L = m->n - 1;                                                                   \
        const int64_t cg = in_ch / group, mg = out_ch / group, ck = cg * m->kernel_size;          \
        const int64_t gw = m->grid[L];                                                            \
        if (m->grid_size == 0 || out_ch == 0 || batch == 0)                                       \
            return MQ_OK;                                                                         \
        int pointwise = 1;                                                                        \
        for (int d = 0; d < m->n; d++)                                                            \
            if (m->kernel[d] != 1 || m->strides[d] != 1 || m->pad_begin[d] != 0 ||                \
                m->grid[d] != m->image[d])                                                        \
                pointwise = 0;                                                                    \
        /* the direct path's phase planes grow with stride and dilation: keep it for sane ones */ \
        const int depthwise = m->n == 2 && cg == 1 && group > 1 &&                                \
                              m->kernel[1] <= MAX_DEPTHWISE_TAPS && m->strides[0] <= 8 &&         \
                              m->strides[1] <= 8 && m->dilations[0] <= 64 &&                      \
                              m->dilations[1] <= 64;                                              \
        const int64_t lines = m->grid_size / gw;                                                  \
        if (blas_dims_ok(node, mg, m->grid_size, ck, err))                                        \
            return MQ_ERR;                                                                        \
        int64_t chunk = ck * gw > 0 ? COLUMN_BUDGET_ELEMENTS / (ck * gw) : lines;                 \
        if (chunk * gw < MIN_CHUNK_COLUMNS)                                                       \
            chunk = (MIN_CHUNK_COLUMNS + gw - 1) / gw;                                            \
        if (chunk > lines)                                                                        \
            chunk = lines;                                                                        \
        T *col = NULL;                                                                            \
        int64_t col_count = 0;                                                                    \
        T *pad = NULL;                                                                            \
        int64_t pad_rows = 0, pad_cols = 0, pad_count = 0;                                        \
        /* packed weights: B straight from the input (or its stride phases), no im2col */         \
        struct mq_conv_gemm_image image;                                                          \
        int64_t phase_count = 0;                                                                  \
        T *phases = NULL;                                                                         \
        const int from_image = pw && !pointwise && !depthwise &&                                  \
                               plane_image(m, cg, &image, &phase_count);                          \
        if (depthwise) {                                                                          \
            pad_rows = m->grid[0] + (m->kernel[0] - 1) * m->dilations[0] / m->strides[0];         \
            pad_cols = gw + (m->kernel[1] - 1) * m->dilations[1] / m->strides[1];                 \
            /* the phase planes, one unsplit padded line, the accumulator */                      \
            pad_count = m->strides[0] * m->strides[1] * pad_rows * pad_cols +                     \
                        m->strides[1] * pad_cols + m->grid[0] * pad_cols;                         \
            pad = mq_scratch_alloc(node, pad_count, sizeof(T), err);                              \
            if (!pad)                                                                             \
                return MQ_ERR;                                                                    \
        } else if (!pointwise && !from_image && ck > 0) {                                         \
            col_count = ck * chunk * gw;                                                          \
            col = mq_scratch_alloc(node, col_count, sizeof(T), err);                              \
            if (!col)                                                                             \
                return MQ_ERR;                                                                    \
        } else if (from_image && phase_count > 0) {                                               \
            phases = mq_scratch_alloc(node, phase_count, sizeof(T), err);                         \
            if (!phases)                                                                          \
                return MQ_ERR;                                                                    \
        }                                                                                         \
        /* y arrives uninitialised: every path below writes all of it.  res (a residual of Y's    \
         * shape, fused from a following Add) joins the bias: BLAS accumulates onto both. */      \
        const T beta = b || res ? (T)1 : (T)0;                                                    \
        for (int64_t nb = 0; nb < batch; nb++) {                                                  \
            const T *xb = x + nb * in_ch * m->image_size;                                         \
            T *yb = y + nb * out_ch * m->grid_size;                                               \
            const T *rb = res ? res + nb * out_ch * m->grid_size : NULL;                          \
            if (depthwise) {                                                                      \
                T *line = pad + m->strides[0] * m->strides[1] * pad_rows * pad_cols;              \
                mq_conv_depthwise2d_##SFX(xb, w, b, rb, yb, in_ch, mg, m, pad, pad_rows,          \
                                          pad_cols, line, line + m->strides[1] * pad_cols,       \
                                          clamp);                                                 \
                continue;                                                                         \
            }                                                                                     \
            /* the packed GEMM adds the bias and residual itself */                               \
            if (((b || rb) && !pw) || ck == 0)                                                    \
                mq_conv_fill_bias_##SFX(yb, b, rb, out_ch, m->grid_size);                         \
            if (ck == 0) {                                                                        \
                if (clamp)                                                                        \
                    clamp_rows_##SFX(yb, 1, out_ch * m->grid_size, 0, clamp);                     \
                continue;                                                                         \
            }                                                                                     \
            for (int64_t g = 0; g < group; g++) {                                                 \
                const T *wg = w + g * mg * ck;                                                    \
                const T *xg = xb + g * cg * m->image_size;                                        \
                T *yg = yb + g * mg * m->grid_size;                                               \
                const T *bg = b ? b + g * mg : NULL;                                              \
                const T *rg = rb ? rb + g * mg * m->grid_size : NULL;                             \
                if (pointwise && pw) {                                                            \
                    packed_gemm_##SFX(pw, g, xg, m->grid_size, m->grid_size, yg, m->grid_size,    \
                                      bg, rg, clamp);                                             \
                    continue;                                                                     \
                }                                                                                 \
                if (from_image) {                                                                 \
                    if (phases)                                                                   \
                        build_phases_##SFX(phases, xg, &image, m->image[0], m->image[1]);         \
                    packed_image_##SFX(pw, g, &image, phases ? phases : xg, yg, m->grid_size, bg, \
                                       rg, clamp);                                                \
                    continue;                                                                     \
                }                                                                                 \
                if (pointwise) {                                                                  \
                    GEMM(0, 0, (int)mg, (int)m->grid_size, (int)cg, (T)1, wg, (int)cg, xg,        \
                         (int)m->grid_size, beta, yg, (int)m->grid_size);                         \
                    if (clamp)                                                                    \
                        clamp_rows_##SFX(yg, mg, m->grid_size, m->grid_size, clamp);              \
                    continue;                                                                     \
                }                                                                                 \
                for (int64_t l0 = 0; l0 < lines; l0 += chunk) {                                   \
                    int64_t l1 = l0 + chunk < lines ? l0 + chunk : lines;                         \
                    int64_t cols = (l1 - l0) * gw;                                                \
                    im2col_##SFX(xg, cg, m, l0, l1, col);                                         \
                    if (pw) {                                                                     \
                        packed_gemm_##SFX(pw, g, col, cols, cols, yg + l0 * gw, m->grid_size, bg, \
                                          rg ? rg + l0 * gw : NULL, clamp);                       \
                        continue;                                                                 \
                    }                                                                             \
                    GEMM(0, 0, (int)mg, (int)cols, (int)ck, (T)1, wg, (int)ck, col, (int)cols,    \
                         beta, yg + l0 * gw, (int)m->grid_size);                                  \
                    if (clamp)                                                                    \
                        clamp_rows_##SFX(yg + l0 * gw, mg, cols, m->grid_size, clamp);            \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        mq_scratch_free(col, col_count, sizeof(T));                                               \
        mq_scratch_free(pad, pad_count, sizeof(T));                                               \
        mq_scratch_free(phases, phase_count, sizeof(T));                                          \
        return MQ_OK;                                                                             \
    }

DEFINE_CONV(float, f32, mq_gemm_f32)
DEFINE_CONV(double, f64, mq_gemm_f64)

void mq_conv_destroy_state(void *state)
{
    struct conv_state *s = state;
    if (s)
        mq_conv_gemm_free(&s->packed);
    free(s);
}

int mq_conv_pack_weights(struct mq_kernel_node *node, const struct mq_tensor *w,
                         struct mq_error *err)
{
    struct conv_state *s = node->state;
    /* depthwise 2-D convolutions (one input channel per group) take the direct path */
    if (!s || s->packed.data || w->dtype != MQ_DTYPE_FLOAT || w->rank < 3 || w->count == 0 ||
        w->dims[0] % s->group != 0 || (w->dims[1] == 1 && s->group > 1) ||
        !mq_conv_gemm_available())
        return MQ_OK;
    int64_t mg = w->dims[0] / s->group, ck = w->count / w->dims[0];
    if (mq_conv_gemm_pack(w->data, s->group, mg, ck, &s->packed, node->name, err))
        return MQ_ERR;
    s->packed_from = w->data;
    return MQ_OK;
}

int mq_conv_prepare_state(struct mq_kernel_node *node, int transpose, struct mq_error *err)
{
    struct conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    node->state = s;
    if (mq_spatial_parse(node, &s->sp, 1, err))
        return MQ_ERR;
    s->group = mq_attr_int(node, "group", 1);
    if (s->group < 1)
        return mq_error_set(err, "node '%s' (%s): group %lld must be >= 1", node->name,
                            node->op_type, (long long)s->group);
    s->n_output_padding = -1;
    s->n_output_shape = -1;
    if (!transpose)
        return MQ_OK;
    const int64_t *v = NULL;
    int64_t n = mq_attr_ints(node, "output_padding", &v);
    if (n > MQ_MAX_RANK - 2)
        return mq_error_set(err, "node '%s' (%s): output_padding has %lld values", node->name,
                            node->op_type, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0)
            return mq_error_set(err, "node '%s' (%s): output_padding[%lld] = %lld is negative",
                                node->name, node->op_type, (long long)i, (long long)v[i]);
        s->output_padding[i] = v[i];
    }
    s->n_output_padding = (int)n;
    n = mq_attr_ints(node, "output_shape", &v);
    if (n > MQ_MAX_RANK)
        return mq_error_set(err, "node '%s' (%s): output_shape has %lld values", node->name,
                            node->op_type, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0)
            return mq_error_set(err, "node '%s' (%s): output_shape[%lld] = %lld is negative",
                                node->name, node->op_type, (long long)i, (long long)v[i]);
        s->output_shape[i] = v[i];
    }
    s->n_output_shape = (int)n;
    return MQ_OK;
}

static int conv_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    return mq_conv_prepare_state(node, 0, err);
}

int mq_conv_absorb_zero_pad(struct mq_kernel_node *node, const struct mq_tensor *w,
                            const int64_t *begin, const int64_t *end)
{
    struct conv_state *s = node->state;
    struct mq_spatial *sp = &s->sp;
    /* the conditions of conv_compute's depthwise path, for any input W fits */
    if (!s || !w || w->rank != 4 || w->dims[1] != 1 || s->group < 2 ||
        w->dims[3] > MAX_DEPTHWISE_TAPS || sp->auto_pad != MQ_AUTO_PAD_NOTSET ||
        (sp->n_pads >= 0 && sp->n_pads != 4) || (sp->n_strides >= 0 && sp->n_strides != 2) ||
        (sp->n_dilations >= 0 && sp->n_dilations != 2) ||
        (sp->n_kernel >= 0 && sp->n_kernel != 2))
        return 0;
    for (int i = 0; i < 2; i++) {
        if ((sp->n_strides == 2 && sp->strides[i] > 8) ||
            (sp->n_dilations == 2 && sp->dilations[i] > 64) || begin[i] < 0 || end[i] < 0 ||
            begin[i] > INT32_MAX || end[i] > INT32_MAX)
            return 0;
    }
    if (sp->n_pads < 0) {
        memset(sp->pads, 0, sizeof sp->pads);
        sp->n_pads = 4;
    }
    for (int i = 0; i < 2; i++) {
        sp->pads[i] += begin[i];
        sp->pads[2 + i] += end[i];
    }
    return 1;
}

int mq_conv_check_inputs(const struct mq_kernel_node *node, const struct conv_state *s,
                         const struct mq_tensor *const *inputs, int n_inputs, int transpose,
                         int64_t *in_ch, int64_t *out_ch, int64_t *kernel, struct mq_error *err)
{
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    const struct mq_tensor *w = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *b = n_inputs > 2 ? inputs[2] : NULL;
    char s1[128], s2[128];
    if (!x || !w)
        return mq_error_set(err, "node '%s' (%s): inputs X and W are required", node->name,
                            node->op_type);
    if (x->dtype != MQ_DTYPE_FLOAT && x->dtype != MQ_DTYPE_DOUBLE)
        return mq_error_set(err, "node '%s' (%s): element type %s is not supported (float16, "
                            "bfloat16, float32 and float64 are)", node->name, node->op_type,
                            mq_dtype_name(x->dtype));
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return mq_error_set(err, "node '%s' (%s): X is %s but W is %s%s%s", node->name,
                            node->op_type, mq_dtype_name(x->dtype), mq_dtype_name(w->dtype),
                            b ? " and B is " : "", b ? mq_dtype_name(b->dtype) : "");
    if (x->rank < 3)
        return mq_error_set(err, "node '%s' (%s): input X has shape %s, expected rank >= 3 "
                            "(N, C, spatial...)", node->name, node->op_type,
                            mq_shape_format(x->rank, x->dims, s1, sizeof s1));
    if (w->rank != x->rank)
        return mq_error_set(err, "node '%s' (%s): W has shape %s, expected rank %d like X %s",
                            node->name, node->op_type,
                            mq_shape_format(w->rank, w->dims, s1, sizeof s1), x->rank,
                            mq_shape_format(x->rank, x->dims, s2, sizeof s2));
    int n = x->rank - 2;
    int64_t g = s->group;
    *in_ch = x->dims[1];
    if (!transpose) {
        *out_ch = w->dims[0];
        if (w->dims[1] * g != x->dims[1] || *out_ch % g != 0)
            return mq_error_set(err, "node '%s' (%s): X %s and W %s do not match with group %lld "
                                "(need C = W.dims[1] * group and M divisible by group)",
                                node->name, node->op_type,
                                mq_shape_format(x->rank, x->dims, s1, sizeof s1),
                                mq_shape_format(w->rank, w->dims, s2, sizeof s2), (long long)g);
    } else {
        if (w->dims[0] != x->dims[1] || x->dims[1] % g != 0 || w->dims[1] > INT64_MAX / g)
            return mq_error_set(err, "node '%s' (%s): X %s and W %s do not match with group %lld "
                                "(need W.dims[0] = C, divisible by group)", node->name,
                                node->op_type, mq_shape_format(x->rank, x->dims, s1, sizeof s1),
                                mq_shape_format(w->rank, w->dims, s2, sizeof s2), (long long)g);
        *out_ch = w->dims[1] * g;
    }
    for (int i = 0; i < n; i++) {
        kernel[i] = w->dims[i + 2];
        if (s->sp.n_kernel >= 0 && (s->sp.n_kernel != n || s->sp.kernel[i] != kernel[i]))
            return mq_error_set(err, "node '%s' (%s): kernel_shape does not match W %s",
                                node->name, node->op_type,
                                mq_shape_format(w->rank, w->dims, s1, sizeof s1));
    }
    if (b && (b->rank != 1 || b->dims[0] != *out_ch))
        return mq_error_set(err, "node '%s' (%s): B has shape %s, expected [%lld]", node->name,
                            node->op_type, mq_shape_format(b->rank, b->dims, s1, sizeof s1),
                            (long long)*out_ch);
    return MQ_OK;
}

int mq_conv_finish_map(const struct mq_kernel_node *node, struct window_map *m,
                       struct mq_error *err)
{
    m->image_size = mq_dims_count(m->n, m->image);
    m->grid_size = mq_dims_count(m->n, m->grid);
    m->kernel_size = mq_dims_count(m->n, m->kernel);
    if (m->image_size < 0 || m->grid_size < 0 || m->kernel_size < 0)
        return mq_error_set(err, "node '%s' (%s): spatial shape is invalid or too large",
                            node->name, node->op_type);
    return MQ_OK;
}

/*
 * clamp?(y + r) with numpy broadcasting, into y: the fused Add's residual when
 * it does not have exactly Y's shape (the fused kernels take that case only
 * inside the GEMM).
 */
#define ADD_BROADCAST(T)                                                                         \
    do {                                                                                         \
        const T *py = y->data, *pr = r->data;                                                    \
        T *po = out.data;                                                                        \
        const T lo = clamp ? (T)clamp->lo : (T)0, hi = clamp ? (T)clamp->hi : (T)0;              \
        for (int64_t i = 0; i < out.count; i++) {                                                \
            T v = py[oy] + pr[orr];                                                              \
            if (clamp && clamp->kind == MQ_FUSED_HARDSWISH) {                                    \
                const T h = v / (T)6 + (T)0.5;                                                   \
                v = v * (h < 0 ? (T)0 : h > 1 ? (T)1 : h);                                       \
            } else if (clamp) {                                                                  \
                v = lo > v ? lo : v;                                                             \
                v = hi < v ? hi : v;                                                             \
            }                                                                                    \
            po[i] = v;                                                                           \
            for (int d = rank - 1; d >= 0; d--) {                                                \
                oy += sy[d];                                                                     \
                orr += sr[d];                                                                    \
                if (++idx[d] < dims[d])                                                          \
                    break;                                                                       \
                oy -= sy[d] * dims[d];                                                           \
                orr -= sr[d] * dims[d];                                                          \
                idx[d] = 0;                                                                      \
            }                                                                                    \
        }                                                                                        \
    } while (0)

static int add_broadcast(const struct mq_kernel_node *node, struct mq_tensor *y,
                         const struct mq_tensor *r, const struct mq_fused_clamp *clamp,
                         struct mq_error *err)
{
    const struct mq_tensor *in[2] = {y, r};
    int rank;
    int64_t dims[MQ_MAX_RANK], sy[MQ_MAX_RANK], sr[MQ_MAX_RANK], idx[MQ_MAX_RANK] = {0};
    char what[256];
    snprintf(what, sizeof what, "node '%s' (%s, fused with Add)", node->name, node->op_type);
    if (mq_broadcast_shape(2, in, &rank, dims, what, err))
        return MQ_ERR;
    struct mq_tensor out;
    if (mq_tensor_alloc_uninit(&out, y->dtype, rank, dims, node->name, err))
        return MQ_ERR;
    mq_broadcast_strides(y, rank, dims, sy);
    mq_broadcast_strides(r, rank, dims, sr);
    int64_t oy = 0, orr = 0;
    if (y->dtype == MQ_DTYPE_FLOAT)
        ADD_BROADCAST(float);
    else
        ADD_BROADCAST(double);
    mq_tensor_free(y);
    mq_tensor_move(y, &out);
    return MQ_OK;
}

/* res: the residual of a fused Add (NULL when none). */
static int conv_run_common(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                           int n_inputs, const struct mq_tensor *res, struct mq_tensor *outputs,
                           const struct mq_fused_clamp *clamp, struct mq_error *err)
{
    const struct conv_state *s = node->state;
    struct window_map m;
    memset(&m, 0, sizeof m);
    int64_t in_ch, out_ch, pad_end[MQ_MAX_RANK];
    if (mq_conv_check_inputs(node, s, inputs, n_inputs, 0, &in_ch, &out_ch, m.kernel, err))
        return MQ_ERR;
    const struct mq_tensor *x = inputs[0], *w = inputs[1];
    const struct mq_tensor *b = n_inputs > 2 ? inputs[2] : NULL;
    m.n = x->rank - 2;
    for (int i = 0; i < m.n; i++)
        m.image[i] = x->dims[i + 2];
    if (mq_spatial_forward(node, &s->sp, m.n, m.image, m.kernel, 0, m.grid, m.pad_begin, pad_end,
                           m.strides, m.dilations, err) ||
        mq_conv_finish_map(node, &m, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = out_ch;
    memcpy(dims + 2, m.grid, (size_t)m.n * sizeof dims[0]);
    if (res && res->dtype != x->dtype)
        return mq_error_set(err, "node '%s' (%s, fused with Add): the other operand of the Add is "
                            "%s, the convolution's output %s", node->name, node->op_type,
                            mq_dtype_name(res->dtype), mq_dtype_name(x->dtype));
    /* a residual of another shape broadcasts: added after the convolution */
    int res_inside = res && res->rank == x->rank &&
                     memcmp(res->dims, dims, sizeof dims[0] * (size_t)x->rank) == 0;
    if (mq_tensor_alloc_uninit(&outputs[0], x->dtype, x->rank, dims, node->name, err))
        return MQ_ERR;
    /* the packing was made from this very W, with these shapes */
    const struct mq_conv_gemm_weights *pw = NULL;
    if (s->packed.data && w->data == s->packed_from && s->packed.groups == s->group &&
        s->packed.m * s->group == out_ch && s->packed.k * out_ch == w->count)
        pw = &s->packed;
    const void *rd = res_inside ? res->data : NULL;
    const struct mq_fused_clamp *inner_clamp = !res || res_inside ? clamp : NULL;
    int rc = x->dtype == MQ_DTYPE_FLOAT
                 ? conv_compute_f32(node, &m, x->dims[0], in_ch, out_ch, s->group, x->data,
                                    w->data, b ? b->data : NULL, rd, outputs[0].data, inner_clamp,
                                    pw, err)
                 : conv_compute_f64(node, &m, x->dims[0], in_ch, out_ch, s->group, x->data,
                                    w->data, b ? b->data : NULL, rd, outputs[0].data, inner_clamp,
                                    NULL, err);
    if (rc == MQ_OK && res && !res_inside)
        rc = add_broadcast(node, &outputs[0], res, clamp, err);
    return rc;
}

/* Relu as a clamp: lo 0 > x ? 0 : x is Relu's x < 0 ? 0 : x, and min(+inf, x) is x */
static const struct mq_fused_clamp relu_clamp = {MQ_FUSED_CLIP, 0.0, INFINITY, 0, "Relu"};

static int conv_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_run, 0, err);
    return conv_run_common(node, inputs, n_inputs, NULL, outputs, NULL, err);
}

static int conv_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_relu_run, 0,
                            err);
    return conv_run_common(node, inputs, n_inputs, NULL, outputs, &relu_clamp, err);
}

static int missing_residual(const struct mq_kernel_node *node,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_error *err)
{
    if (n_inputs < 4 || !inputs[3])
        return mq_error_set(err, "node '%s' (%s, fused with Add): the residual is missing",
                            node->name, node->op_type);
    return MQ_OK;
}

/* Conv then Add of input 3, the residual (interp/ops/fused.h), with or without the Relu. */
static int conv_add_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_add_run, 0,
                            err);
    if (missing_residual(node, inputs, n_inputs, err))
        return MQ_ERR;
    return conv_run_common(node, inputs, 3, inputs[3], outputs, NULL, err);
}

static int conv_add_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                             const struct mq_tensor *const *inputs, int n_inputs,
                             struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_add_relu_run,
                            0, err);
    if (missing_residual(node, inputs, n_inputs, err))
        return MQ_ERR;
    return conv_run_common(node, inputs, 3, inputs[3], outputs, &relu_clamp, err);
}

/*
 * Conv (then Add of input 3 when `residual`) then the Clip or HardSwish of node->clamp.
 * float32 and double apply it to each block of output as it is written; float16 and bfloat16
 * run the plain op on float32 copies and apply it to the narrowed output as the op would, on
 * float32 widenings of it.
 */
static int conv_act_common(const struct mq_kernel_node *node, struct mq_exec *exec,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_tensor *outputs, int n_outputs, int residual,
                            struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs)) {
        if (mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs,
                         residual ? conv_add_run : conv_run, 0, err))
            return MQ_ERR;
        return mq_fused_act_apply(node, &outputs[0], err);
    }
    if (residual && missing_residual(node, inputs, n_inputs, err))
        return MQ_ERR;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    if (x && mq_fused_act_check(node, x->dtype, err))
        return MQ_ERR;
    return conv_run_common(node, inputs, residual ? 3 : n_inputs, residual ? inputs[3] : NULL,
                           outputs, &node->clamp, err);
}

static int conv_act_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    return conv_act_common(node, exec, inputs, n_inputs, outputs, n_outputs, 0, err);
}

static int conv_add_act_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                             const struct mq_tensor *const *inputs, int n_inputs,
                             struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    return conv_act_common(node, exec, inputs, n_inputs, outputs, n_outputs, 1, err);
}

/* Conv-1 and Conv-11 differ only in documentation. */
const struct mq_kernel mq_kernels_conv[] = {
    {"", "Conv", 1, 10, conv_prepare, conv_run, mq_conv_destroy_state},
    {"", "Conv", 11, 0, conv_prepare, conv_run, mq_conv_destroy_state},
    {0},
};

const struct mq_kernel mq_kernel_conv_relu = {"", "Conv", 1, 0, conv_prepare, conv_relu_run,
                                              mq_conv_destroy_state};
const struct mq_kernel mq_kernel_conv_add = {"", "Conv", 1, 0, conv_prepare, conv_add_run,
                                             mq_conv_destroy_state};
const struct mq_kernel mq_kernel_conv_add_relu = {"", "Conv", 1, 0, conv_prepare,
                                                  conv_add_relu_run, mq_conv_destroy_state};
const struct mq_kernel mq_kernel_conv_act = {"", "Conv", 1, 0, conv_prepare, conv_act_run,
                                              mq_conv_destroy_state};
const struct mq_kernel mq_kernel_conv_add_act = {"", "Conv", 1, 0, conv_prepare,
                                                  conv_add_act_run, mq_conv_destroy_state};
