/*
 * Conv and ConvTranspose.
 *
 * float32 and double go through BLAS: Conv is im2col + one GEMM per group
 * (W_g [M/g, C/g*K] x columns [C/g*K, out positions]) written straight into
 * the bias-prefilled output; ConvTranspose is the mirror image, one GEMM
 * (W_g^T x X_g) into columns that col2im scatters into the output.  A 1x1
 * stride-1 unpadded Conv uses the input itself as the column matrix, and a
 * depthwise 2-D Conv (one input channel per group) is a direct loop over a
 * padded copy of each plane (see depthwise2d), since its per-channel GEMMs
 * would be too small to pay for themselves.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/broadcast.h"
#include "interp/ops/conv_gemm.h"
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

/* Depthwise kernels up to this width take the direct path; wider ones use im2col. */
#define MAX_DEPTHWISE_TAPS 64

struct conv_state {
    struct mq_spatial sp;
    int64_t group;
    /* W packed at plan time (float32 Conv), valid while W's data is packed_from */
    struct mq_conv_gemm_weights packed;
    const void *packed_from;
    int n_output_padding;             /* -1 when absent */
    int64_t output_padding[MQ_MAX_RANK];
    int n_output_shape;               /* -1 when absent */
    int64_t output_shape[MQ_MAX_RANK];
};

/*
 * How kernel windows lay over an image: `image` is what the kernel reads
 * (Conv input, ConvTranspose output), `grid` the window positions (Conv
 * output, ConvTranspose input).  Window position o and kernel tap k touch
 * image coordinate o * stride - pad_begin + k * dilation on each axis.
 */
struct window_map {
    int n;
    int64_t image[MQ_MAX_RANK];
    int64_t grid[MQ_MAX_RANK];
    int64_t kernel[MQ_MAX_RANK];
    int64_t strides[MQ_MAX_RANK];
    int64_t dilations[MQ_MAX_RANK];
    int64_t pad_begin[MQ_MAX_RANK];
    int64_t image_size, grid_size, kernel_size;
};

/*
 * Window positions [lo, hi) along the innermost axis whose tap lands inside
 * the image, for a tap at image offset `off` from position*stride.
 */
static void inner_range(int64_t off, int64_t stride, int64_t image, int64_t grid, int64_t *lo,
                        int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = image - 1 - off < 0 ? 0 : (image - 1 - off) / stride + 1;
    if (h > grid)
        h = grid;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* Outer (all but innermost axis) image line of a window line and kernel tap; -1 if outside. */
static int64_t outer_image_line(const struct window_map *m, const int64_t *o, const int64_t *k)
{
    int64_t line = 0;
    for (int d = 0; d < m->n - 1; d++) {
        int64_t i = o[d] * m->strides[d] - m->pad_begin[d] + k[d] * m->dilations[d];
        if (i < 0 || i >= m->image[d])
            return -1;
        line = line * m->image[d] + i;
    }
    return line;
}

static void odometer_step(int64_t *idx, const int64_t *extent, int n)
{
    for (int d = n - 1; d >= 0; d--) {
        if (++idx[d] < extent[d])
            return;
        idx[d] = 0;
    }
}

static int blas_dims_ok(const struct mq_kernel_node *node, int64_t a, int64_t b, int64_t c,
                        struct mq_error *err)
{
    if (a > INT_MAX || b > INT_MAX || c > INT_MAX)
        return mq_error_set(err, "node '%s' (%s): matrix of %lld x %lld x %lld is too large for "
                            "BLAS", node->name, node->op_type, (long long)a, (long long)b,
                            (long long)c);
    return MQ_OK;
}

/* The packed GEMM is float32 only: conv_compute_f64 never gets packed weights. */
static void packed_gemm_f32(const struct mq_conv_gemm_weights *pw, int64_t g, const float *b,
                            int64_t ldb, int64_t n, float *y, int64_t ldy, const float *bias,
                            const float *res, int relu)
{
    mq_conv_gemm_run(pw, g, b, ldb, n, y, ldy, bias, res, ldy, relu);
}

static void packed_gemm_f64(const struct mq_conv_gemm_weights *pw, int64_t g, const double *b,
                            int64_t ldb, int64_t n, double *y, int64_t ldy, const double *bias,
                            const double *res, int relu)
{
    (void)pw, (void)g, (void)b, (void)ldb, (void)n, (void)y, (void)ldy, (void)bias, (void)res,
        (void)relu;
}

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
                             int64_t ldy, const float *bias, const float *res, int relu)
{
    image->data = planes;
    mq_conv_gemm_run_image(pw, g, image, y, ldy, bias, res, ldy, relu);
}

static void packed_image_f64(const struct mq_conv_gemm_weights *pw, int64_t g,
                             struct mq_conv_gemm_image *image, const double *planes, double *y,
                             int64_t ldy, const double *bias, const double *res, int relu)
{
    (void)pw, (void)g, (void)image, (void)planes, (void)y, (void)ldy, (void)bias, (void)res,
        (void)relu;
}

/*
 * DEFINE_CONV(T, SFX, GEMM) defines, for element type T and its GEMM (interp/ops/gemm.h):
 *   taps*_SFX, pad_line_SFX, split2_SFX, ...   row helpers the loops below call
 *   im2col_SFX      columns for window lines [line0, line1) of `channels` images
 *   col2im_SFX      adds columns back into `channels` images (ConvTranspose)
 *   depthwise2d_SFX direct 2-D convolution, one input channel per group
 *   conv_compute_SFX / convt_compute_SFX   the whole op on one batch
 */
#define DEFINE_CONV(T, SFX, GEMM)                                                                 \
    /* one kernel row of a depthwise output row: y[i] += sum_k w[k] * src_k[i] */                 \
    MQ_SIMD_CLONES                                                                                \
    static void taps3_##SFX(T *restrict y, const T *restrict s0, const T *restrict s1,            \
                            const T *restrict s2, const T *w, int64_t n)                          \
    {                                                                                             \
        const T w0 = w[0], w1 = w[1], w2 = w[2];                                                  \
        MQ_VECTOR_LOOP(i, n, y[i] += w0 * s0[i] + w1 * s1[i] + w2 * s2[i]);                       \
    }                                                                                             \
                                                                                                  \
    static void gather_##SFX(T *restrict dst, const T *restrict src, int64_t n, int64_t stride)   \
    {                                                                                             \
        for (int64_t j = 0; j < n; j++)                                                           \
            dst[j] = src[j * stride];                                                             \
    }                                                                                             \
                                                                                                  \
    static void every_other_##SFX(T *restrict dst, const T *restrict src, int64_t n)              \
    {                                                                                             \
        MQ_VECTOR_LOOP(j, n, dst[j] = src[2 * j]);                                                \
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
    /* y[i * stride] += x[i] */                                                                   \
    static void scatter_add_##SFX(T *restrict y, const T *restrict x, int64_t n, int64_t stride)  \
    {                                                                                             \
        if (stride == 1)                                                                          \
            MQ_VECTOR_LOOP(i, n, y[i] += x[i]);                                                   \
        else                                                                                      \
            for (int64_t i = 0; i < n; i++)                                                       \
                y[i * stride] += x[i];                                                            \
    }                                                                                             \
                                                                                                  \
    /* one im2col row segment: gw window positions, taps [lo, hi) inside the image row src */   \
    static void im2col_row_##SFX(T *row, const T *src, int64_t gw, int64_t lo, int64_t hi,       \
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
            gather_##SFX(row + lo, src + lo * sw + off, hi - lo, sw);                             \
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
            /* the common case without the N-D odometer: a line is an output row */              \
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
    static void col2im_##SFX(const T *col, int64_t channels, const struct window_map *m, T *y)    \
    {                                                                                             \
        const int L = m->n - 1;                                                                   \
        const int64_t gw = m->grid[L], iw = m->image[L], sw = m->strides[L];                      \
        const int64_t lines = gw ? m->grid_size / gw : 0;                                         \
        int64_t k[MQ_MAX_RANK] = {0}, o[MQ_MAX_RANK];                                             \
        for (int64_t c = 0; c < channels; c++) {                                                  \
            T *yc = y + c * m->image_size;                                                        \
            for (int64_t ki = 0; ki < m->kernel_size; ki++) {                                     \
                const T *row = col + (c * m->kernel_size + ki) * m->grid_size;                    \
                int64_t off = k[L] * m->dilations[L] - m->pad_begin[L], lo, hi;                   \
                inner_range(off, sw, iw, gw, &lo, &hi);                                           \
                memset(o, 0, sizeof o);                                                           \
                for (int64_t p = 0; p < lines; p++, row += gw) {                                  \
                    int64_t line = outer_image_line(m, o, k);                                     \
                    odometer_step(o, m->grid, L);                                                 \
                    if (line < 0)                                                                 \
                        continue;                                                                 \
                    if (lo < hi)                                                                  \
                        scatter_add_##SFX(yc + line * iw + lo * sw + off, row + lo, hi - lo, sw); \
                }                                                                                 \
                odometer_step(k, m->kernel, m->n);                                                \
            }                                                                                     \
        }                                                                                         \
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
    /* y = a + bias (+ r, the residual, when not NULL), then Relu's x < 0 ? 0 : x when asked     \
     * (NaN stays NaN, as in Relu) */                                                             \
    MQ_SIMD_CLONES                                                                                \
    static void bias_row_##SFX(T *restrict y, const T *restrict a, const T *restrict r,           \
                               int64_t n, T bias, int relu)                                       \
    {                                                                                             \
        if (r && relu)                                                                            \
            MQ_VECTOR_LOOP(i, n, const T v = a[i] + bias + r[i]; y[i] = v < 0 ? (T)0 : v);        \
        else if (r)                                                                               \
            MQ_VECTOR_LOOP(i, n, y[i] = a[i] + bias + r[i]);                                      \
        else if (relu)                                                                            \
            MQ_VECTOR_LOOP(i, n, const T v = a[i] + bias; y[i] = v < 0 ? (T)0 : v);               \
        else                                                                                      \
            MQ_VECTOR_LOOP(i, n, y[i] = a[i] + bias);                                             \
    }                                                                                             \
                                                                                                  \
    MQ_SIMD_CLONES                                                                                \
    static void relu_row_##SFX(T *restrict y, int64_t n)                                          \
    {                                                                                             \
        MQ_VECTOR_LOOP(i, n, y[i] = y[i] < 0 ? (T)0 : y[i]);                                      \
    }                                                                                             \
                                                                                                  \
    /* Relu over `rows` rows of n elements, `stride` apart */                                     \
    static void relu_rows_##SFX(T *y, int64_t rows, int64_t n, int64_t stride)                    \
    {                                                                                             \
        for (int64_t r = 0; r < rows; r++)                                                        \
            relu_row_##SFX(y + r * stride, n);                                                    \
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
     * (b may be NULL), with the fused Relu.                                                      \
     */                                                                                           \
    static void depthwise2d_##SFX(const T *x, const T *w, const T *b, const T *res, T *y,         \
                                  int64_t channels, int64_t multiplier,                           \
                                  const struct window_map *m, T *planes, int64_t rows,            \
                                  int64_t cols, T *line, T *acc, int relu)                        \
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
                                gather_##SFX(dst + qw * plane, line + qw, cols, sw);              \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
            for (int64_t j = 0; j < multiplier; j++) {                                            \
                const int64_t oc = c * multiplier + j;                                            \
                const T *wk = w + oc * m->kernel_size;                                            \
                T *yp = y + oc * m->grid_size;                                                    \
                int summed = 0;                                                                   \
                if (kh_n * kw_n <= MQ_CONV_MAX_TAPS) {                                            \
                    /* every tap's source at once, for a kernel summing them in registers */      \
                    const T *all[MQ_CONV_MAX_TAPS];                                               \
                    for (int64_t kh = 0; kh < kh_n; kh++)                                         \
                        for (int64_t kw = 0; kw < kw_n; kw++) {                                   \
                            const int64_t th = kh * dh, tw = kw * dw;                             \
                            all[kh * kw_n + kw] = planes + ((th % sh) * sw + tw % sw) * plane +   \
                                                  (th / sh) * cols + tw / sw;                     \
                        }                                                                         \
                    summed = all_taps_##SFX(acc, all, wk, (int)(kh_n * kw_n), span);             \
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
                const T bias = b ? b[oc] : (T)0;                                                  \
                const T *rp = res ? res + oc * m->grid_size : NULL;                               \
                for (int64_t oh = 0; oh < oh_n; oh++)                                             \
                    bias_row_##SFX(yp + oh * ow_n, acc + oh * cols, rp ? rp + oh * ow_n : NULL,   \
                                   ow_n, bias, relu);                                             \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    /* the stride phase planes of conv_gemm's image: `channels` planes of x (h x w) per phase */ \
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
                            gather_##SFX(dst, xc + ih * w + qw, valid, sw);                       \
                        memset(dst + valid, 0, (size_t)(pw_ - valid) * sizeof(T));                \
                    }                                                                             \
                }                                                                                 \
    }                                                                                             \
                                                                                                  \
    /* y = b[c] over each channel, or zeros when there is no bias; plus res when not NULL */      \
    static void fill_bias_##SFX(T *y, const T *b, const T *res, int64_t channels, int64_t size)   \
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
                                  int relu, const struct mq_conv_gemm_weights *pw,                \
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
                depthwise2d_##SFX(xb, w, b, rb, yb, in_ch, mg, m, pad, pad_rows, pad_cols, line,  \
                                  line + m->strides[1] * pad_cols, relu);                         \
                continue;                                                                         \
            }                                                                                     \
            /* the packed GEMM adds the bias and residual itself */                               \
            if (((b || rb) && !pw) || ck == 0)                                                    \
                fill_bias_##SFX(yb, b, rb, out_ch, m->grid_size);                                 \
            if (ck == 0) {                                                                        \
                if (relu)                                                                         \
                    relu_rows_##SFX(yb, 1, out_ch * m->grid_size, 0);                             \
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
                                      bg, rg, relu);                                              \
                    continue;                                                                     \
                }                                                                                 \
                if (from_image) {                                                                 \
                    if (phases)                                                                   \
                        build_phases_##SFX(phases, xg, &image, m->image[0], m->image[1]);         \
                    packed_image_##SFX(pw, g, &image, phases ? phases : xg, yg, m->grid_size, bg, \
                                       rg, relu);                                                 \
                    continue;                                                                     \
                }                                                                                 \
                if (pointwise) {                                                                  \
                    GEMM(0, 0, (int)mg, (int)m->grid_size, (int)cg, (T)1, wg, (int)cg, xg,        \
                         (int)m->grid_size, beta, yg, (int)m->grid_size);                         \
                    if (relu)                                                                     \
                        relu_rows_##SFX(yg, mg, m->grid_size, m->grid_size);                      \
                    continue;                                                                     \
                }                                                                                 \
                for (int64_t l0 = 0; l0 < lines; l0 += chunk) {                                   \
                    int64_t l1 = l0 + chunk < lines ? l0 + chunk : lines;                         \
                    int64_t cols = (l1 - l0) * gw;                                                \
                    im2col_##SFX(xg, cg, m, l0, l1, col);                                         \
                    if (pw) {                                                                     \
                        packed_gemm_##SFX(pw, g, col, cols, cols, yg + l0 * gw, m->grid_size, bg, \
                                          rg ? rg + l0 * gw : NULL, relu);                        \
                        continue;                                                                 \
                    }                                                                             \
                    GEMM(0, 0, (int)mg, (int)cols, (int)ck, (T)1, wg, (int)ck, col, (int)cols,    \
                         beta, yg + l0 * gw, (int)m->grid_size);                                  \
                    if (relu)                                                                     \
                        relu_rows_##SFX(yg + l0 * gw, mg, cols, m->grid_size);                    \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        mq_scratch_free(col, col_count, sizeof(T));                                               \
        mq_scratch_free(pad, pad_count, sizeof(T));                                               \
        mq_scratch_free(phases, phase_count, sizeof(T));                                          \
        return MQ_OK;                                                                             \
    }                                                                                             \
                                                                                                  \
    static int convt_compute_##SFX(const struct mq_kernel_node *node,                             \
                                   const struct window_map *m, int64_t batch, int64_t in_ch,      \
                                   int64_t out_ch, int64_t group, const T *x, const T *w,         \
                                   const T *b, T *y, struct mq_error *err)                        \
    {                                                                                             \
        const int64_t cg = in_ch / group, mg = out_ch / group, mk = mg * m->kernel_size;          \
        if (batch == 0 || m->image_size == 0 || out_ch == 0)                                      \
            return MQ_OK;                                                                         \
        for (int64_t nb = 0; nb < batch && b; nb++)                                               \
            fill_bias_##SFX(y + nb * out_ch * m->image_size, b, NULL, out_ch, m->image_size);     \
        if (cg == 0 || m->grid_size == 0 || mk == 0)                                              \
            return MQ_OK;                                                                         \
        if (blas_dims_ok(node, mk, m->grid_size, cg, err))                                        \
            return MQ_ERR;                                                                        \
        int64_t col_count = mk * m->grid_size;                                                    \
        T *col = mq_scratch_alloc(node, col_count, sizeof(T), err);                               \
        if (!col)                                                                                 \
            return MQ_ERR;                                                                        \
        for (int64_t nb = 0; nb < batch; nb++) {                                                  \
            T *yb = y + nb * out_ch * m->image_size;                                              \
            for (int64_t g = 0; g < group; g++) {                                                 \
                const T *wg = w + g * cg * mk;                                                    \
                const T *xg = x + (nb * in_ch + g * cg) * m->grid_size;                           \
                GEMM(1, 0, (int)mk, (int)m->grid_size, (int)cg, (T)1, wg, (int)mk, xg,            \
                     (int)m->grid_size, (T)0, col, (int)m->grid_size);                            \
                col2im_##SFX(col, mg, m, yb + g * mg * m->image_size);                            \
            }                                                                                     \
        }                                                                                         \
        mq_scratch_free(col, col_count, sizeof(T));                                               \
        return MQ_OK;                                                                             \
    }

DEFINE_CONV(float, f32, mq_gemm_f32)
DEFINE_CONV(double, f64, mq_gemm_f64)

static void conv_destroy(void *state)
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

static int conv_prepare_common(struct mq_kernel_node *node, int transpose, struct mq_error *err)
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
    return conv_prepare_common(node, 0, err);
}

static int convt_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    return conv_prepare_common(node, 1, err);
}

/* Checks X, W and B; fills the kernel extents and the channel counts. */
static int check_inputs(const struct mq_kernel_node *node, const struct conv_state *s,
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

static int finish_map(const struct mq_kernel_node *node, struct window_map *m,
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
 * relu?(y + r) with numpy broadcasting, into y: the fused Add's residual when
 * it does not have exactly Y's shape (the fused kernels take that case only
 * inside the GEMM).
 */
#define ADD_BROADCAST(T)                                                                         \
    do {                                                                                         \
        const T *py = y->data, *pr = r->data;                                                    \
        T *po = out.data;                                                                        \
        for (int64_t i = 0; i < out.count; i++) {                                                \
            const T v = py[oy] + pr[orr];                                                        \
            po[i] = relu && v < 0 ? (T)0 : v;                                                    \
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
                         const struct mq_tensor *r, int relu, struct mq_error *err)
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
                           int relu, struct mq_error *err)
{
    const struct conv_state *s = node->state;
    struct window_map m;
    memset(&m, 0, sizeof m);
    int64_t in_ch, out_ch, pad_end[MQ_MAX_RANK];
    if (check_inputs(node, s, inputs, n_inputs, 0, &in_ch, &out_ch, m.kernel, err))
        return MQ_ERR;
    const struct mq_tensor *x = inputs[0], *w = inputs[1];
    const struct mq_tensor *b = n_inputs > 2 ? inputs[2] : NULL;
    m.n = x->rank - 2;
    for (int i = 0; i < m.n; i++)
        m.image[i] = x->dims[i + 2];
    if (mq_spatial_forward(node, &s->sp, m.n, m.image, m.kernel, 0, m.grid, m.pad_begin, pad_end,
                           m.strides, m.dilations, err) ||
        finish_map(node, &m, err))
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
    int inner_relu = relu && (!res || res_inside);
    int rc = x->dtype == MQ_DTYPE_FLOAT
                 ? conv_compute_f32(node, &m, x->dims[0], in_ch, out_ch, s->group, x->data,
                                    w->data, b ? b->data : NULL, rd, outputs[0].data, inner_relu,
                                    pw, err)
                 : conv_compute_f64(node, &m, x->dims[0], in_ch, out_ch, s->group, x->data,
                                    w->data, b ? b->data : NULL, rd, outputs[0].data, inner_relu,
                                    NULL, err);
    if (rc == MQ_OK && res && !res_inside)
        rc = add_broadcast(node, &outputs[0], res, relu, err);
    return rc;
}

static int conv_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_run, 0, err);
    return conv_run_common(node, inputs, n_inputs, NULL, outputs, 0, err);
}

static int conv_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_relu_run, 0,
                            err);
    return conv_run_common(node, inputs, n_inputs, NULL, outputs, 1, err);
}

/* Conv then Add of input 3, the residual (interp/ops/fused.h), with or without the Relu. */
static int conv_add_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_add_run, 0,
                            err);
    if (n_inputs < 4 || !inputs[3])
        return mq_error_set(err, "node '%s' (%s, fused with Add): the residual is missing",
                            node->name, node->op_type);
    return conv_run_common(node, inputs, 3, inputs[3], outputs, 0, err);
}

static int conv_add_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                             const struct mq_tensor *const *inputs, int n_inputs,
                             struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, conv_add_relu_run,
                            0, err);
    if (n_inputs < 4 || !inputs[3])
        return mq_error_set(err, "node '%s' (%s, fused with Add): the residual is missing",
                            node->name, node->op_type);
    return conv_run_common(node, inputs, 3, inputs[3], outputs, 1, err);
}

static int convt_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, convt_run, 0, err);
    const struct conv_state *s = node->state;
    struct window_map m;
    memset(&m, 0, sizeof m);
    int64_t in_ch, out_ch;
    if (check_inputs(node, s, inputs, n_inputs, 1, &in_ch, &out_ch, m.kernel, err))
        return MQ_ERR;
    const struct mq_tensor *x = inputs[0], *w = inputs[1];
    const struct mq_tensor *b = n_inputs > 2 ? inputs[2] : NULL;
    int n = m.n = x->rank - 2;
    if (mq_spatial_check_rank(node, &s->sp, n, err))
        return MQ_ERR;
    if (s->n_output_padding > 0 && s->n_output_padding != n)
        return mq_error_set(err, "node '%s' (%s): output_padding has %d values, expected %d",
                            node->name, node->op_type, s->n_output_padding, n);
    /* Some exporters write output_shape with the batch and channel axes too. */
    const int64_t *want = NULL;
    if (s->n_output_shape == n)
        want = s->output_shape;
    else if (s->n_output_shape == n + 2)
        want = s->output_shape + 2;
    else if (s->n_output_shape > 0)
        return mq_error_set(err, "node '%s' (%s): output_shape has %d values, expected %d",
                            node->name, node->op_type, s->n_output_shape, n);
    for (int i = 0; i < n; i++) {
        int64_t in = x->dims[i + 2];
        int64_t st = s->sp.n_strides > 0 ? s->sp.strides[i] : 1;
        int64_t dl = s->sp.n_dilations > 0 ? s->sp.dilations[i] : 1;
        int64_t op = s->n_output_padding > 0 ? s->output_padding[i] : 0;
        if (m.kernel[i] < 1 || in < 1)
            return mq_error_set(err, "node '%s' (%s): spatial axis %d has input extent %lld and "
                                "kernel extent %lld, both must be >= 1", node->name,
                                node->op_type, i, (long long)in, (long long)m.kernel[i]);
        if (st > INT32_MAX || dl > INT32_MAX || in > INT32_MAX || m.kernel[i] > INT32_MAX ||
            op > INT32_MAX)
            return mq_error_set(err, "node '%s' (%s): spatial geometry on axis %d is too large",
                                node->name, node->op_type, i);
        int64_t full = st * (in - 1) + op + (m.kernel[i] - 1) * dl + 1;
        int64_t out, pb, pe;
        int sa = s->sp.auto_pad;
        if (want || sa == MQ_AUTO_PAD_SAME_UPPER || sa == MQ_AUTO_PAD_SAME_LOWER) {
            out = want ? want[i] : in * st;
            /* an output larger than the full one keeps its extra tail at the bias, as in
             * onnxruntime: the padding never goes negative */
            int64_t total = full > out ? full - out : 0;
            if (sa == MQ_AUTO_PAD_SAME_UPPER) {
                pb = total / 2;
                pe = total - pb;
            } else {
                pe = total / 2;
                pb = total - pe;
            }
        } else {
            pb = pe = 0;
            if (sa == MQ_AUTO_PAD_NOTSET && s->sp.n_pads > 0) {
                pb = s->sp.pads[i];
                pe = s->sp.pads[i + n];
            }
            out = full - pb - pe;
        }
        if (out < 0)
            return mq_error_set(err, "node '%s' (%s): output extent %lld on spatial axis %d is "
                                "negative", node->name, node->op_type, (long long)out, i);
        m.image[i] = out;
        m.grid[i] = in;
        m.strides[i] = st;
        m.dilations[i] = dl;
        m.pad_begin[i] = pb;
    }
    if (finish_map(node, &m, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = out_ch;
    memcpy(dims + 2, m.image, (size_t)n * sizeof dims[0]);
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, dims, node->name, err))
        return MQ_ERR;
    if (x->dtype == MQ_DTYPE_FLOAT)
        return convt_compute_f32(node, &m, x->dims[0], in_ch, out_ch, s->group, x->data, w->data,
                                 b ? b->data : NULL, outputs[0].data, err);
    return convt_compute_f64(node, &m, x->dims[0], in_ch, out_ch, s->group, x->data, w->data,
                             b ? b->data : NULL, outputs[0].data, err);
}

/* Conv-1 and Conv-11 differ only in documentation; ConvTranspose likewise. */
const struct mq_kernel mq_kernels_conv[] = {
    {"", "Conv", 1, 10, conv_prepare, conv_run, conv_destroy},
    {"", "Conv", 11, 0, conv_prepare, conv_run, conv_destroy},
    {"", "ConvTranspose", 1, 10, convt_prepare, convt_run, conv_destroy},
    {"", "ConvTranspose", 11, 0, convt_prepare, convt_run, conv_destroy},
    {0},
};

const struct mq_kernel mq_kernel_conv_relu = {"", "Conv", 1, 0, conv_prepare, conv_relu_run,
                                              conv_destroy};
const struct mq_kernel mq_kernel_conv_add = {"", "Conv", 1, 0, conv_prepare, conv_add_run,
                                             conv_destroy};
const struct mq_kernel mq_kernel_conv_add_relu = {"", "Conv", 1, 0, conv_prepare,
                                                  conv_add_relu_run, conv_destroy};
