/*
 * ConvTranspose, the mirror image of Conv: one GEMM per group (W_g^T x X_g)
 * into columns that col2im scatters into the bias-prefilled output.
 * float16 and bfloat16 run on float32 copies (interp/ops/widen.h).
 */
#include <stdint.h>
#include <string.h>

#include "interp/ops/conv_internal.h"
#include "interp/ops/gemm.h"
#include "interp/ops/scratch.h"
#include "interp/ops/vector_loop.h"
#include "interp/ops/widen.h"

static int convt_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    return mq_conv_prepare_state(node, 1, err);
}

/*
 * DEFINE_CONVT(T, SFX, GEMM) defines, for element type T and its GEMM (interp/ops/gemm.h):
 *   scatter_add_SFX   y[i * stride] += x[i]
 *   col2im_SFX        adds columns back into `channels` images
 *   convt_compute_SFX the whole op on one batch
 */
#define DEFINE_CONVT(T, SFX, GEMM)                                                                \
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
    static int convt_compute_##SFX(const struct mq_kernel_node *node,                             \
                                   const struct window_map *m, int64_t batch, int64_t in_ch,      \
                                   int64_t out_ch, int64_t group, const T *x, const T *w,         \
                                   const T *b, T *y, struct mq_error *err)                        \
    {                                                                                             \
        const int64_t cg = in_ch / group, mg = out_ch / group, mk = mg * m->kernel_size;          \
        if (batch == 0 || m->image_size == 0 || out_ch == 0)                                      \
            return MQ_OK;                                                                         \
        for (int64_t nb = 0; nb < batch && b; nb++)                                               \
            mq_conv_fill_bias_##SFX(y + nb * out_ch * m->image_size, b, NULL, out_ch,             \
                                    m->image_size);                                               \
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

DEFINE_CONVT(float, f32, mq_gemm_f32)
DEFINE_CONVT(double, f64, mq_gemm_f64)

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
    if (mq_conv_check_inputs(node, s, inputs, n_inputs, 1, &in_ch, &out_ch, m.kernel, err))
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
            mq_spatial_split_pad(total, sa == MQ_AUTO_PAD_SAME_UPPER, &pb, &pe);
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
    if (mq_conv_finish_map(node, &m, err))
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

/* ConvTranspose-1 and -11 differ only in documentation. */
const struct mq_kernel mq_kernels_conv_transpose[] = {
    {"", "ConvTranspose", 1, 10, convt_prepare, convt_run, mq_conv_destroy_state},
    {"", "ConvTranspose", 11, 0, convt_prepare, convt_run, mq_conv_destroy_state},
    {0},
};
