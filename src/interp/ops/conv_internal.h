/*
 * What the convolution files share (conv.c, conv_depthwise.c,
 * conv_transpose.c): the node state, the geometry of kernel windows over an
 * image, index helpers over that geometry, and the per-type pieces one file
 * calls in another.
 */
#ifndef MQ_OPS_CONV_INTERNAL_H
#define MQ_OPS_CONV_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include "interp/kernel.h"
#include "interp/ops/conv_gemm.h"
#include "interp/ops/spatial.h"

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
static inline void inner_range(int64_t off, int64_t stride, int64_t image, int64_t grid,
                               int64_t *lo, int64_t *hi)
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
static inline int64_t outer_image_line(const struct window_map *m, const int64_t *o,
                                       const int64_t *k)
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

static inline void odometer_step(int64_t *idx, const int64_t *extent, int n)
{
    for (int d = n - 1; d >= 0; d--) {
        if (++idx[d] < extent[d])
            return;
        idx[d] = 0;
    }
}

static inline int blas_dims_ok(const struct mq_kernel_node *node, int64_t a, int64_t b,
                               int64_t c, struct mq_error *err)
{
    if (a > INT_MAX || b > INT_MAX || c > INT_MAX)
        return mq_error_set(err, "node '%s' (%s): matrix of %lld x %lld x %lld is too large for "
                            "BLAS", node->name, node->op_type, (long long)a, (long long)b,
                            (long long)c);
    return MQ_OK;
}

/* dst[j] = src[j * stride] for j < n, per element type. */
#define CONV_GATHER(T, SFX)                                                                       \
    static inline void conv_gather_##SFX(T *restrict dst, const T *restrict src, int64_t n,      \
                                         int64_t stride)                                          \
    {                                                                                             \
        for (int64_t j = 0; j < n; j++)                                                           \
            dst[j] = src[j * stride];                                                             \
    }
CONV_GATHER(float, f32)
CONV_GATHER(double, f64)

/* The fused HardSwish in place, HardSwish's own arithmetic and comparisons (float32 in vectors,
   conv_gemm.h) */
static inline void conv_hardswish_f32(float *y, int64_t n)
{
    mq_conv_hardswish_f32(y, n);
}

static inline void conv_hardswish_f64(double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const double x = y[i], v = x / 6 + 0.5;
        y[i] = x * (v < 0 ? 0.0 : v > 1 ? 1.0 : v);
    }
}

/* Parses a Conv (transpose 0) or ConvTranspose (1) node into a struct conv_state. */
int mq_conv_prepare_state(struct mq_kernel_node *node, int transpose, struct mq_error *err);
void mq_conv_destroy_state(void *state);

/* Checks X, W and B; fills the kernel extents and the channel counts. */
int mq_conv_check_inputs(const struct mq_kernel_node *node, const struct conv_state *s,
                         const struct mq_tensor *const *inputs, int n_inputs, int transpose,
                         int64_t *in_ch, int64_t *out_ch, int64_t *kernel, struct mq_error *err);

/* Fills the size fields of m from its extents; an error when they overflow. */
int mq_conv_finish_map(const struct mq_kernel_node *node, struct window_map *m,
                       struct mq_error *err);

/* y = b[c] over each channel, or zeros when there is no bias; plus res when not NULL (conv.c). */
void mq_conv_fill_bias_f32(float *y, const float *b, const float *res, int64_t channels,
                           int64_t size);
void mq_conv_fill_bias_f64(double *y, const double *b, const double *res, int64_t channels,
                           int64_t size);

/*
 * The direct depthwise 2-D convolution of `channels` planes, `multiplier`
 * output channels each (conv_depthwise.c).  planes holds the stride phase
 * planes (rows x cols each), line one padded input line, acc one plane.
 */
void mq_conv_depthwise2d_f32(const float *x, const float *w, const float *b, const float *res,
                             float *y, int64_t channels, int64_t multiplier,
                             const struct window_map *m, float *planes, int64_t rows,
                             int64_t cols, float *line, float *acc,
                             const struct mq_fused_clamp *clamp);
void mq_conv_depthwise2d_f64(const double *x, const double *w, const double *b,
                             const double *res, double *y, int64_t channels, int64_t multiplier,
                             const struct window_map *m, double *planes, int64_t rows,
                             int64_t cols, double *line, double *acc,
                             const struct mq_fused_clamp *clamp);

#endif
