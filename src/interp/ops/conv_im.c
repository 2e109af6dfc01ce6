/*
 * Convolution-family operators that work on image patches directly: Col2Im (opset 18: sum the
 * columns of an im2col matrix back into an image) and DeformConv (opset 19: 2-D convolution
 * whose sampling points are moved by learnt offsets, read bilinearly with zeros outside, and
 * optionally weighted by a mask).  Arithmetic is in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"

#define CI_MAX_SPATIAL 8

/* An ints attribute with n values, or fill when absent; -1 when present with another length. */
static int ints_or(const struct mq_kernel_node *node, const char *name, int n, int64_t fill,
                   int64_t *out)
{
    const int64_t *v;
    int64_t have = mq_attr_ints(node, name, &v);
    if (have <= 0) {
        for (int i = 0; i < n; i++)
            out[i] = fill;
        return 0;
    }
    if (have != n)
        return -1;
    memcpy(out, v, sizeof(int64_t) * (size_t)n);
    return 0;
}

/* ---- Col2Im: input [N, C * prod(block), L], image_shape, block_shape -> [N, C, image...] ---- */

static int col2im_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x, *image, *block;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &image, err) ||
        ops_require(node, inputs, n_inputs, 2, &block, err))
        return MQ_ERR;
    int r = (int)image->count;
    if (r < 1 || r > CI_MAX_SPATIAL || block->count != r || x->rank != 3)
        return ops_fail(node, err, "input must be [N, C*prod(block), L] with image_shape and "
                        "block_shape of 1..%d equal lengths", CI_MAX_SPATIAL);
    int64_t img[CI_MAX_SPATIAL], blk[CI_MAX_SPATIAL], dil[CI_MAX_SPATIAL], str[CI_MAX_SPATIAL];
    int64_t pads[2 * CI_MAX_SPATIAL], outn[CI_MAX_SPATIAL];
    if (ints_or(node, "dilations", r, 1, dil) || ints_or(node, "strides", r, 1, str) ||
        ints_or(node, "pads", 2 * r, 0, pads))
        return ops_fail(node, err, "dilations, strides and pads must have one value per axis "
                        "(pads two)");
    int64_t block_size = 1, L = 1, image_size = 1;
    for (int d = 0; d < r; d++) {
        img[d] = mq_tensor_get_int64(image, d);
        blk[d] = mq_tensor_get_int64(block, d);
        if (img[d] < 1 || blk[d] < 1 || dil[d] < 1 || str[d] < 1)
            return ops_fail(node, err, "shapes, dilations and strides must be positive");
        int64_t span = (blk[d] - 1) * dil[d] + 1;
        outn[d] = (img[d] + pads[d] + pads[r + d] - span) / str[d] + 1;
        if (outn[d] < 1)
            return ops_fail(node, err, "the block does not fit the padded image on axis %d", d);
        block_size *= blk[d];
        L *= outn[d];
        image_size *= img[d];
    }
    if (x->dims[1] % block_size || x->dims[2] != L)
        return ops_fail(node, err, "input is [%lld, %lld, %lld]; needs C*%lld rows and %lld "
                        "columns", (long long)x->dims[0], (long long)x->dims[1],
                        (long long)x->dims[2], (long long)block_size, (long long)L);
    int64_t N = x->dims[0], C = x->dims[1] / block_size;
    int64_t dims[2 + CI_MAX_SPATIAL] = {N, C};
    memcpy(dims + 2, img, sizeof(int64_t) * (size_t)r);
    double *xv = mq_as_double_copy(x);
    double *y = calloc((size_t)(N * C * image_size + 1), sizeof(double));
    int rc = MQ_ERR;
    if (!xv || !y) {
        ops_fail(node, err, "out of memory or unsupported type");
        goto done;
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t b = 0; b < block_size; b++)
                for (int64_t l = 0; l < L; l++) {
                    int64_t rb = b, rl = l, off = 0, inside = 1;
                    int64_t bi[CI_MAX_SPATIAL], li[CI_MAX_SPATIAL];
                    for (int d = r - 1; d >= 0; d--) {
                        bi[d] = rb % blk[d], rb /= blk[d];
                        li[d] = rl % outn[d], rl /= outn[d];
                    }
                    for (int d = 0; d < r; d++) {
                        int64_t p = li[d] * str[d] - pads[d] + bi[d] * dil[d];
                        if (p < 0 || p >= img[d])
                            inside = 0;
                        off = off * img[d] + p;
                    }
                    if (inside)
                        y[(n * C + c) * image_size + off] +=
                            xv[((n * C + c) * block_size + b) * L + l];
                }
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, r + 2, dims, err))
        goto done;
    mq_as_double_store(&outputs[0], y);
    rc = MQ_OK;
done:
    free(xv), free(y);
    return rc;
}

/* ---- DeformConv (2-D) ---------------------------------------------------------------------- */

/* X[h, w] read bilinearly, each of the four neighbours outside the image counting zero. */
static double bilinear_zero(const double *plane, int64_t H, int64_t W, double h, double w)
{
    double h0 = floor(h), w0 = floor(w);
    double fh = h - h0, fw = w - w0, acc = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int64_t yy = (int64_t)h0 + dy, xx = (int64_t)w0 + dx;
            if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                continue;
            acc += (dy ? fh : 1 - fh) * (dx ? fw : 1 - fw) * plane[yy * W + xx];
        }
    return acc;
}

static int deform_conv_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                           const struct mq_tensor *const *inputs, int n_inputs,
                           struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x, *w, *off;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &w, err) ||
        ops_require(node, inputs, n_inputs, 2, &off, err))
        return MQ_ERR;
    const struct mq_tensor *bias = ops_input(inputs, n_inputs, 3);
    const struct mq_tensor *mask = ops_input(inputs, n_inputs, 4);
    if (x->rank != 4 || w->rank != 4 || off->rank != 4)
        return ops_fail(node, err, "only 2-D DeformConv is supported (X, W, offset of rank 4)");
    int64_t group = mq_attr_int(node, "group", 1), ogroup = mq_attr_int(node, "offset_group", 1);
    int64_t dil[2], str[2], pads[4];
    if (ints_or(node, "dilations", 2, 1, dil) || ints_or(node, "strides", 2, 1, str) ||
        ints_or(node, "pads", 4, 0, pads))
        return ops_fail(node, err, "dilations, strides and pads need 2, 2 and 4 values");
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t OC = w->dims[0], CG = w->dims[1], KH = w->dims[2], KW = w->dims[3];
    int64_t OH = off->dims[2], OW = off->dims[3];
    if (group < 1 || ogroup < 1 || C != CG * group || OC % group || C % ogroup ||
        off->dims[0] != N || off->dims[1] != ogroup * 2 * KH * KW ||
        (mask && (mask->count != N * ogroup * KH * KW * OH * OW)) ||
        (bias && bias->count != OC))
        return ops_fail(node, err, "shapes of X, W, offset, B and mask disagree with group "
                        "%lld and offset_group %lld", (long long)group, (long long)ogroup);
    double *xv = mq_as_double_copy(x), *wv = mq_as_double_copy(w), *ov = mq_as_double_copy(off);
    double *mv = mask ? mq_as_double_copy(mask) : NULL;
    double *bv = bias ? mq_as_double_copy(bias) : NULL;
    double *y = calloc((size_t)(N * OC * OH * OW + 1), sizeof(double));
    int rc = MQ_ERR;
    if (!xv || !wv || !ov || !y || (mask && !mv) || (bias && !bv)) {
        ops_fail(node, err, "out of memory or unsupported type");
        goto done;
    }
    int64_t ocg = OC / group, cog = C / ogroup;
    for (int64_t n = 0; n < N; n++)
        for (int64_t oc = 0; oc < OC; oc++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    double acc = bv ? bv[oc] : 0.0;
                    int64_t g = oc / ocg;
                    for (int64_t cg = 0; cg < CG; cg++) {
                        int64_t c = g * CG + cg, og = c / cog;
                        const double *plane = xv + (n * C + c) * H * W;
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t k = (og * KH + kh) * KW + kw;
                                double dh = ov[((n * ogroup * KH * KW * 2) + k * 2) * OH * OW +
                                               i * OW + j];
                                double dw = ov[((n * ogroup * KH * KW * 2) + k * 2 + 1) * OH * OW +
                                               i * OW + j];
                                double m = mv ? mv[((n * ogroup * KH * KW) + k) * OH * OW +
                                                   i * OW + j]
                                              : 1.0;
                                double h = (double)(i * str[0] - pads[0] + kh * dil[0]) + dh;
                                double ww = (double)(j * str[1] - pads[1] + kw * dil[1]) + dw;
                                acc += wv[((oc * CG + cg) * KH + kh) * KW + kw] * m *
                                       bilinear_zero(plane, H, W, h, ww);
                            }
                    }
                    y[((n * OC + oc) * OH + i) * OW + j] = acc;
                }
    int64_t dims[4] = {N, OC, OH, OW};
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, 4, dims, err))
        goto done;
    mq_as_double_store(&outputs[0], y);
    rc = MQ_OK;
done:
    free(xv), free(wv), free(ov), free(mv), free(bv), free(y);
    return rc;
}

const struct mq_kernel mq_kernels_conv_im[] = {
    {"", "Col2Im", 18, 0, NULL, col2im_run, NULL},
    {"", "DeformConv", 19, 0, NULL, deform_conv_run, NULL},
    {0},
};
