/*
 * Operators that sample an image at fractional positions: GridSample and
 * RoiAlign.  Both compute in double (inputs converted once, see
 * as_double.h) and work out the taps (offset, weight) of a sampling point
 * once, then apply them to every channel.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/misc_common.h"
#include "interp/ops/scratch.h"
#include "core/tensor.h"

/* ------------------------------------------------------------ GridSample */

enum { GS_LINEAR, GS_NEAREST, GS_CUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

#define GS_MAX_SPATIAL (MQ_MAX_RANK - 2)

struct grid_sample_state {
    int mode, padding, align_corners;
    int max_spatial; /* 2 before opset 20 */
};

static int grid_sample_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct grid_sample_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    int v20 = node->opset >= 20;
    char buf[32];
    const char *mode = mq_attr_string(node, "mode", v20 ? "linear" : "bilinear", buf, sizeof buf);
    /* Opset 20 renamed bilinear/bicubic to linear/cubic (they now cover N-D). */
    if (strcmp(mode, v20 ? "linear" : "bilinear") == 0)
        s->mode = GS_LINEAR;
    else if (strcmp(mode, "nearest") == 0)
        s->mode = GS_NEAREST;
    else if (strcmp(mode, v20 ? "cubic" : "bicubic") == 0)
        s->mode = GS_CUBIC;
    else
        return misc_fail(node, err, "attribute 'mode' is '%s', expected %s", mode,
                         v20 ? "linear, nearest or cubic" : "bilinear, nearest or bicubic");
    char pbuf[32];
    const char *pad = mq_attr_string(node, "padding_mode", "zeros", pbuf, sizeof pbuf);
    if (strcmp(pad, "zeros") == 0)
        s->padding = GS_ZEROS;
    else if (strcmp(pad, "border") == 0)
        s->padding = GS_BORDER;
    else if (strcmp(pad, "reflection") == 0)
        s->padding = GS_REFLECTION;
    else
        return misc_fail(node, err, "attribute 'padding_mode' is '%s', expected zeros, border "
                         "or reflection", pad);
    int64_t ac = mq_attr_int(node, "align_corners", 0);
    if (ac != 0 && ac != 1)
        return misc_fail(node, err, "attribute 'align_corners' is %lld, expected 0 or 1",
                         (long long)ac);
    s->align_corners = (int)ac;
    s->max_spatial = v20 ? GS_MAX_SPATIAL : 2;
    return MQ_OK;
}

/* Reflects x into [lo, hi] by bouncing off the borders, like PyTorch and the ONNX reference. */
static double gs_reflect(double x, double lo, double hi)
{
    double range = hi - lo;
    if (range <= 0.0)
        return lo;
    if (x < lo) {
        double dx = lo - x;
        double n = floor(dx / range);
        double r = dx - n * range;
        return fmod(n, 2.0) == 0.0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi;
        double n = floor(dx / range);
        double r = dx - n * range;
        return fmod(n, 2.0) == 0.0 ? hi - r : lo + r;
    }
    return x;
}

/* Index of pixel i along a dimension of size `size` after padding, or -1 for a zero. */
static int64_t gs_pixel(int64_t i, int64_t size, int padding, double lo, double hi)
{
    if (i >= 0 && i < size)
        return i;
    switch (padding) {
    case GS_BORDER:
        return i < 0 ? 0 : size - 1;
    case GS_REFLECTION: {
        int64_t r = (int64_t)gs_reflect((double)i, lo, hi);
        return r < 0 ? 0 : r >= size ? size - 1 : r;
    }
    default:
        return -1;
    }
}

static void gs_cubic_coeffs(double t, double *c)
{
    const double a = -0.75;
    double x = t + 1.0;
    c[0] = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    x = t;
    c[1] = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    x = 1.0 - t;
    c[2] = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    x = 2.0 - t;
    c[3] = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
}


static int grid_sample_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                           const struct mq_tensor *const *inputs, int n_inputs,
                           struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct grid_sample_state *s = node->state;
    const struct mq_tensor *x = inputs[0], *grid = n_inputs > 1 ? inputs[1] : NULL;
    if (!grid)
        return misc_fail(node, err, "input 'grid' is missing");
    int r = x->rank - 2;
    if (r < 1 || r > s->max_spatial)
        return misc_fail(node, err, "input 'X' has rank %d, expected %s", x->rank,
                         s->max_spatial == 2 ? "4 (N, C, H, W)" : "3 to 12 (N, C, D1, ...)");
    if (s->mode == GS_CUBIC && r != 2)
        return misc_fail(node, err, "cubic mode needs 2 spatial dimensions, the input has %d", r);
    if (!mq_as_double_supported(x->dtype))
        return misc_fail(node, err, "input 'X' has unsupported element type %s",
                         mq_dtype_name(x->dtype));
    if (!mq_dtype_is_float(grid->dtype))
        return misc_fail(node, err, "input 'grid' has type %s, expected a float type",
                         mq_dtype_name(grid->dtype));
    if (grid->rank != x->rank || grid->dims[0] != x->dims[0] || grid->dims[r + 1] != r)
        return misc_fail(node, err, "input 'grid' must have shape [N, D1_out, ..., %d] with "
                         "N = %lld", r, (long long)x->dims[0]);
    int64_t dims[MQ_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int d = 0; d < r; d++)
        dims[2 + d] = grid->dims[1 + d];
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    const int64_t *in_size = x->dims + 2;
    int64_t in_spatial = 1, out_spatial = 1;
    for (int d = 0; d < r; d++) {
        if (in_size[d] < 1)
            return misc_fail(node, err, "input 'X' has an empty spatial dimension");
        in_spatial *= in_size[d];
        out_spatial *= dims[2 + d];
    }
    int64_t n_batch = x->dims[0], channels = x->dims[1];
    int taps_per_dim = s->mode == GS_LINEAR ? 2 : s->mode == GS_CUBIC ? 4 : 1;
    int64_t n_taps = 1;
    for (int d = 0; d < r; d++)
        n_taps *= taps_per_dim;
    double *xd = mq_scratch_alloc(node, x->count, sizeof(double), err);
    double *gd = xd ? mq_scratch_alloc(node, grid->count, sizeof(double), err) : NULL;
    double *yd = gd ? mq_scratch_alloc(node, outputs[0].count, sizeof(double), err) : NULL;
    double *tap_w = yd ? mq_scratch_alloc(node, n_taps, sizeof(double), err) : NULL;
    int64_t *tap_off = tap_w ? mq_scratch_alloc(node, n_taps, sizeof(int64_t), err) : NULL;
    int rc = tap_off ? MQ_OK : MQ_ERR;
    if (!rc) {
        mq_as_double_load(x, xd);
        mq_as_double_load(grid, gd);
        int64_t stride[GS_MAX_SPATIAL];
        double lo[GS_MAX_SPATIAL], hi[GS_MAX_SPATIAL];
        int64_t st = 1;
        for (int d = r - 1; d >= 0; d--) {
            stride[d] = st;
            st *= in_size[d];
            lo[d] = s->align_corners ? 0.0 : -0.5;
            hi[d] = s->align_corners ? (double)in_size[d] - 1.0 : (double)in_size[d] - 0.5;
        }
        for (int64_t n = 0; n < n_batch; n++)
            for (int64_t p = 0; p < out_spatial; p++) {
                const double *g = gd + (n * out_spatial + p) * r;
                int64_t idx[GS_MAX_SPATIAL][4];
                double w[GS_MAX_SPATIAL][4];
                for (int d = 0; d < r; d++) {
                    /* grid's last axis lists coordinates innermost first (x, y, ...). */
                    double v = g[r - 1 - d];
                    double size = (double)in_size[d];
                    /* Non-finite positions are sampled like points far outside the image. */
                    if (!isfinite(v))
                        v = v > 0.0 ? 1e30 : -1e30;
                    v = s->align_corners ? (v + 1.0) / 2.0 * (size - 1.0)
                                         : ((v + 1.0) * size - 1.0) / 2.0;
                    if (s->mode == GS_NEAREST)
                        v = nearbyint(v); /* half to even, in every rank */
                    if (v < lo[d] || v > hi[d]) {
                        if (s->padding == GS_BORDER)
                            v = v < 0.0 ? 0.0 : v > size - 1.0 ? size - 1.0 : v;
                        else if (s->padding == GS_REFLECTION)
                            v = gs_reflect(v, lo[d], hi[d]);
                    }
                    if (s->mode == GS_NEAREST) {
                        /* Coordinates far outside the image are zeros or already clamped. */
                        int64_t i = v < -2.0 ? -2 : v > size + 1.0 ? (int64_t)size + 1
                                                                    : (int64_t)v;
                        idx[d][0] = gs_pixel(i, in_size[d], s->padding, lo[d], hi[d]);
                        w[d][0] = 1.0;
                        continue;
                    }
                    double f = floor(v);
                    double t = v - f;
                    if (s->mode == GS_LINEAR) {
                        w[d][0] = 1.0 - t;
                        w[d][1] = t;
                    } else {
                        gs_cubic_coeffs(t, w[d]);
                    }
                    int64_t first = s->mode == GS_LINEAR ? 0 : -1;
                    for (int k = 0; k < taps_per_dim; k++) {
                        double iv = f + (double)(first + k);
                        /* Far-away taps are zero under zeros padding and clamped otherwise. */
                        int64_t i = iv < -2.0 * size - 4.0 ? (int64_t)(-2.0 * size - 4.0)
                                    : iv > 3.0 * size + 4.0 ? (int64_t)(3.0 * size + 4.0)
                                                            : (int64_t)iv;
                        idx[d][k] = gs_pixel(i, in_size[d], s->padding, lo[d], hi[d]);
                    }
                }
                /* Combine per-dimension taps; a zero-padded tap is dropped. */
                int64_t used = 0;
                for (int64_t t = 0; t < n_taps; t++) {
                    int64_t rem = t, off = 0;
                    double wt = 1.0;
                    for (int d = r - 1; d >= 0; d--) {
                        int k = (int)(rem % taps_per_dim);
                        rem /= taps_per_dim;
                        if (idx[d][k] < 0) {
                            wt = 0.0;
                            break;
                        }
                        off += idx[d][k] * stride[d];
                        wt *= w[d][k];
                    }
                    if (wt != 0.0) {
                        tap_off[used] = off;
                        tap_w[used++] = wt;
                    }
                }
                for (int64_t c = 0; c < channels; c++) {
                    const double *plane = xd + (n * channels + c) * in_spatial;
                    double acc = 0.0;
                    for (int64_t t = 0; t < used; t++)
                        acc += tap_w[t] * plane[tap_off[t]];
                    yd[(n * channels + c) * out_spatial + p] = acc;
                }
            }
        mq_as_double_store(&outputs[0], yd);
    }
    mq_scratch_free(tap_off, n_taps, sizeof(int64_t));
    mq_scratch_free(tap_w, n_taps, sizeof(double));
    mq_scratch_free(yd, outputs[0].count, sizeof(double));
    mq_scratch_free(gd, grid->count, sizeof(double));
    mq_scratch_free(xd, x->count, sizeof(double));
    return rc;
}

/* -------------------------------------------------------------- RoiAlign */

struct roi_align_state {
    int max_mode;
    int half_pixel;
    int64_t out_h, out_w, sampling_ratio;
    double spatial_scale;
};

static int roi_align_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct roi_align_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    char buf[32];
    const char *mode = mq_attr_string(node, "mode", "avg", buf, sizeof buf);
    if (strcmp(mode, "avg") == 0)
        s->max_mode = 0;
    else if (strcmp(mode, "max") == 0)
        s->max_mode = 1;
    else
        return misc_fail(node, err, "attribute 'mode' is '%s', expected avg or max", mode);
    /* Opset 10 had no attribute and behaved like output_half_pixel; 16 defaults to half_pixel. */
    s->half_pixel = 0;
    if (node->opset >= 16) {
        char cbuf[32];
        const char *ctm = mq_attr_string(node, "coordinate_transformation_mode", "half_pixel",
                                         cbuf, sizeof cbuf);
        if (strcmp(ctm, "half_pixel") == 0)
            s->half_pixel = 1;
        else if (strcmp(ctm, "output_half_pixel") != 0)
            return misc_fail(node, err, "attribute 'coordinate_transformation_mode' is '%s', "
                             "expected half_pixel or output_half_pixel", ctm);
    }
    s->out_h = mq_attr_int(node, "output_height", 1);
    s->out_w = mq_attr_int(node, "output_width", 1);
    s->sampling_ratio = mq_attr_int(node, "sampling_ratio", 0);
    s->spatial_scale = mq_attr_float(node, "spatial_scale", 1.0f);
    if (s->out_h < 1 || s->out_w < 1 || s->sampling_ratio < 0)
        return misc_fail(node, err, "need output_height (%lld) and output_width (%lld) >= 1 and "
                         "sampling_ratio (%lld) >= 0", (long long)s->out_h, (long long)s->out_w,
                         (long long)s->sampling_ratio);
    return MQ_OK;
}

/* One bilinear sample: four offsets into a plane and their weights. */
struct roi_tap {
    int64_t pos[4];
    double w[4];
};

/*
 * Follows the Caffe2/Detectron RoIAlign that the ONNX reference and
 * onnxruntime use: a bin is the average (or, for max, the largest of the
 * weighted corner values) of a regular grid of bilinear samples; samples
 * more than one pixel outside the map count as zero.
 */
static int roi_align_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct roi_align_state *s = node->state;
    if (n_inputs < 3 || !inputs[1] || !inputs[2])
        return misc_fail(node, err, "expected inputs X, rois and batch_indices");
    const struct mq_tensor *x = inputs[0], *rois = inputs[1], *bi = inputs[2];
    if (!mq_dtype_is_float(x->dtype) || !mq_dtype_is_float(rois->dtype))
        return misc_fail(node, err, "inputs 'X' and 'rois' must be float tensors, got %s and %s",
                         mq_dtype_name(x->dtype), mq_dtype_name(rois->dtype));
    if (!misc_is_int_dtype(bi->dtype))
        return misc_fail(node, err, "input 'batch_indices' has type %s, expected int64",
                         mq_dtype_name(bi->dtype));
    if (x->rank != 4)
        return misc_fail(node, err, "input 'X' has rank %d, expected 4 (N, C, H, W)", x->rank);
    if (rois->rank != 2 || rois->dims[1] != 4)
        return misc_fail(node, err, "input 'rois' must have shape [num_rois, 4]");
    if (bi->rank != 1 || bi->dims[0] != rois->dims[0])
        return misc_fail(node, err, "input 'batch_indices' must have shape [%lld]",
                         (long long)rois->dims[0]);
    int64_t n_rois = rois->dims[0], channels = x->dims[1], height = x->dims[2],
            width = x->dims[3];
    int64_t dims[4] = {n_rois, channels, s->out_h, s->out_w};
    if (mq_tensor_alloc(&outputs[0], x->dtype, 4, dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    if (height < 1 || width < 1)
        return misc_fail(node, err, "input 'X' has an empty spatial dimension");
    double *xd = mq_scratch_alloc(node, x->count + rois->count, sizeof(double), err);
    double *yd = xd ? mq_scratch_alloc(node, outputs[0].count, sizeof(double), err) : NULL;
    if (!yd) {
        mq_scratch_free(xd, x->count + rois->count, sizeof(double));
        return MQ_ERR;
    }
    double *rd = xd + x->count;
    mq_as_double_load(x, xd);
    mq_as_double_load(rois, rd);
    struct roi_tap *taps = NULL;
    int64_t taps_alloc = 0;
    int rc = MQ_OK;
    double offset = s->half_pixel ? 0.5 : 0.0;
    for (int64_t n = 0; n < n_rois && !rc; n++) {
        int64_t b = mq_tensor_get_int64(bi, n);
        if (b < 0 || b >= x->dims[0]) {
            rc = misc_fail(node, err, "batch_indices[%lld] is %lld, outside [0, %lld)",
                           (long long)n, (long long)b, (long long)x->dims[0]);
            break;
        }
        const double *roi = rd + n * 4;
        if (!isfinite(roi[0]) || !isfinite(roi[1]) || !isfinite(roi[2]) || !isfinite(roi[3])) {
            rc = misc_fail(node, err, "roi %lld has a non-finite coordinate", (long long)n);
            break;
        }
        double start_w = roi[0] * s->spatial_scale - offset;
        double start_h = roi[1] * s->spatial_scale - offset;
        double roi_w = roi[2] * s->spatial_scale - offset - start_w;
        double roi_h = roi[3] * s->spatial_scale - offset - start_h;
        if (!s->half_pixel) {
            roi_w = fmax(roi_w, 1.0);
            roi_h = fmax(roi_h, 1.0);
        }
        double bin_h = roi_h / (double)s->out_h, bin_w = roi_w / (double)s->out_w;
        double grid_hf = s->sampling_ratio > 0 ? (double)s->sampling_ratio : ceil(bin_h);
        double grid_wf = s->sampling_ratio > 0 ? (double)s->sampling_ratio : ceil(bin_w);
        /* Huge or non-finite boxes would ask for absurd sample grids. */
        if (!(grid_hf >= 0.0 && grid_hf <= 1e6 && grid_wf >= 0.0 && grid_wf <= 1e6)) {
            rc = misc_fail(node, err, "roi %lld is too large or not finite", (long long)n);
            break;
        }
        int64_t grid_h = (int64_t)grid_hf, grid_w = (int64_t)grid_wf;
        int64_t count = grid_h * grid_w > 1 ? grid_h * grid_w : 1;
        int64_t n_taps = s->out_h * s->out_w * grid_h * grid_w;
        if (n_taps > taps_alloc) {
            mq_scratch_free(taps, taps_alloc, sizeof *taps);
            taps_alloc = n_taps;
            taps = mq_scratch_alloc(node, taps_alloc, sizeof *taps, err);
            if (!taps) {
                taps_alloc = 0;
                rc = MQ_ERR;
                break;
            }
        }
        struct roi_tap *tp = taps;
        for (int64_t ph = 0; ph < s->out_h; ph++)
            for (int64_t pw = 0; pw < s->out_w; pw++)
                for (int64_t iy = 0; iy < grid_h; iy++) {
                    double yy = start_h + (double)ph * bin_h +
                                ((double)iy + 0.5) * bin_h / (double)grid_h;
                    for (int64_t ix = 0; ix < grid_w; ix++, tp++) {
                        double xx = start_w + (double)pw * bin_w +
                                    ((double)ix + 0.5) * bin_w / (double)grid_w;
                        double yv = yy, xv = xx;
                        if (yv < -1.0 || yv > (double)height || xv < -1.0 ||
                            xv > (double)width) {
                            memset(tp, 0, sizeof *tp);
                            continue;
                        }
                        if (yv <= 0.0)
                            yv = 0.0;
                        if (xv <= 0.0)
                            xv = 0.0;
                        int64_t y_lo = (int64_t)yv, x_lo = (int64_t)xv, y_hi, x_hi;
                        if (y_lo >= height - 1) {
                            y_hi = y_lo = height - 1;
                            yv = (double)y_lo;
                        } else {
                            y_hi = y_lo + 1;
                        }
                        if (x_lo >= width - 1) {
                            x_hi = x_lo = width - 1;
                            xv = (double)x_lo;
                        } else {
                            x_hi = x_lo + 1;
                        }
                        double ly = yv - (double)y_lo, lx = xv - (double)x_lo;
                        double hy = 1.0 - ly, hx = 1.0 - lx;
                        tp->pos[0] = y_lo * width + x_lo;
                        tp->pos[1] = y_lo * width + x_hi;
                        tp->pos[2] = y_hi * width + x_lo;
                        tp->pos[3] = y_hi * width + x_hi;
                        tp->w[0] = hy * hx;
                        tp->w[1] = hy * lx;
                        tp->w[2] = ly * hx;
                        tp->w[3] = ly * lx;
                    }
                }
        int64_t per_bin = grid_h * grid_w;
        for (int64_t c = 0; c < channels; c++) {
            const double *plane = xd + (b * channels + c) * height * width;
            double *out = yd + (n * channels + c) * s->out_h * s->out_w;
            for (int64_t bin = 0; bin < s->out_h * s->out_w; bin++) {
                const struct roi_tap *t = taps + bin * per_bin;
                double v = 0.0;
                for (int64_t k = 0; k < per_bin; k++, t++) {
                    if (s->max_mode) {
                        double m = t->w[0] * plane[t->pos[0]];
                        for (int q = 1; q < 4; q++)
                            m = fmax(m, t->w[q] * plane[t->pos[q]]);
                        v = k == 0 ? m : fmax(v, m);
                    } else {
                        v += t->w[0] * plane[t->pos[0]] + t->w[1] * plane[t->pos[1]] +
                             t->w[2] * plane[t->pos[2]] + t->w[3] * plane[t->pos[3]];
                    }
                }
                out[bin] = s->max_mode ? v : v / (double)count;
            }
        }
    }
    if (!rc)
        mq_as_double_store(&outputs[0], yd);
    mq_scratch_free(taps, taps_alloc, sizeof(struct roi_tap));
    mq_scratch_free(yd, outputs[0].count, sizeof(double));
    mq_scratch_free(xd, x->count + rois->count, sizeof(double));
    return rc;
}

const struct mq_kernel mq_kernels_sampling[] = {
    /* 20 renamed the modes (linear, cubic) and allowed any number of spatial dimensions. */
    {"", "GridSample", 16, 19, grid_sample_prepare, grid_sample_run, free},
    {"", "GridSample", 20, 0, grid_sample_prepare, grid_sample_run, free},
    /* 16 added coordinate_transformation_mode (default half_pixel). */
    {"", "RoiAlign", 10, 15, roi_align_prepare, roi_align_run, free},
    {"", "RoiAlign", 16, 0, roi_align_prepare, roi_align_run, free},
    {0},
};
