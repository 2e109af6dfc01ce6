/*
 * Resize (opsets 10, 11, 13, 18, 19) and Upsample (1, 7, 9), on any rank.
 *
 * Each resized axis gets a table: for every output position, the input
 * indices it reads and their weights (one tap for nearest, two or four for
 * linear and cubic, more when antialiasing widens the filter).  Nearest is
 * then a gather through the tables; linear and cubic run one separable pass
 * per resized axis, in float32 (float64 for double tensors).  The tables
 * follow the ONNX reference implementation (onnx/reference/ops/op_resize.py),
 * which produced the backend test data: the edge-padded neighbourhood, the
 * "ratio in (0, 1]" convention, and output_width = scale * input_width in
 * the coordinate transforms.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/cast.h"
#include "interp/ops/shape_util.h"
#include "interp/ops/vector_loop.h"

enum resize_mode { MODE_NEAREST, MODE_LINEAR, MODE_CUBIC };

enum coord_mode {
    CT_HALF_PIXEL,
    CT_HALF_PIXEL_SYMMETRIC,
    CT_PYTORCH_HALF_PIXEL,
    CT_ALIGN_CORNERS,
    CT_ASYMMETRIC,
    CT_TF_CROP_AND_RESIZE,
    CT_TF_HALF_PIXEL_FOR_NN,
};

enum nearest_mode {
    NM_ROUND_PREFER_FLOOR,
    NM_ROUND_PREFER_CEIL,
    NM_FLOOR,
    NM_CEIL,
    /*
     * Resize-10 and Upsample had no nearest_mode; onnxruntime (and the
     * models exported for it) truncate when upsampling and take the ceiling
     * when downsampling.
     */
    NM_SIMPLE,
};

enum aspect_policy { KEEP_STRETCH, KEEP_NOT_LARGER, KEEP_NOT_SMALLER };

struct resize_state {
    int is_upsample;
    enum resize_mode mode;
    enum coord_mode coord;
    enum nearest_mode nearest;
    double cubic_a;
    int exclude_outside;
    double extrapolation;
    int antialias;
    int n_axes;                   /* -1: every axis */
    int64_t axes[MQ_MAX_RANK];
    enum aspect_policy keep;
    int n_scales;                 /* Upsample-1..8 scales from attributes; -1 otherwise */
    double scales[MQ_MAX_RANK];
};

static int lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int parse_mode(struct mq_kernel_node *node, struct resize_state *st, struct mq_error *err)
{
    char buf[64];
    const char *mode = mq_attr_string(node, "mode", "nearest", buf, sizeof buf);
    int cubic_ok = !st->is_upsample && node->opset >= 11;
    if (strcmp(mode, "nearest") == 0)
        st->mode = MODE_NEAREST;
    else if (strcmp(mode, "linear") == 0 ||
             (st->is_upsample && node->opset < 7 && strcmp(mode, "bilinear") == 0))
        st->mode = MODE_LINEAR;
    else if (cubic_ok && strcmp(mode, "cubic") == 0)
        st->mode = MODE_CUBIC;
    else
        return ops_fail(node, err, "mode '%s' is not supported (nearest, linear%s)", mode,
                        cubic_ok ? ", cubic" : "");
    return MQ_OK;
}

static int resize_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct resize_state *st = calloc(1, sizeof *st);
    if (!st)
        return ops_fail(node, err, "out of memory");
    node->state = st;
    st->n_axes = -1;
    st->n_scales = -1;
    st->cubic_a = -0.75;
    if (parse_mode(node, st, err))
        return MQ_ERR;
    if (node->opset < 11) {
        st->coord = CT_ASYMMETRIC;
        st->nearest = NM_SIMPLE;
        return MQ_OK;
    }
    char buf[64];
    static const char *const coords[] = {"half_pixel", "half_pixel_symmetric",
                                         "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "tf_crop_and_resize", "tf_half_pixel_for_nn"};
    const char *c = mq_attr_string(node, "coordinate_transformation_mode", "half_pixel", buf,
                                   sizeof buf);
    int ci = lookup(c, coords, 7);
    /* tf_half_pixel_for_nn existed in Resize-11 only; half_pixel_symmetric came with 19. */
    if (ci < 0 || (ci == CT_TF_HALF_PIXEL_FOR_NN && node->opset >= 13))
        return ops_fail(node, err, "coordinate_transformation_mode '%s' is not supported at "
                        "opset %d", c, node->opset);
    st->coord = (enum coord_mode)ci;

    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};
    const char *nm = mq_attr_string(node, "nearest_mode", "round_prefer_floor", buf, sizeof buf);
    int ni = lookup(nm, nearest, 4);
    if (ni < 0)
        return ops_fail(node, err, "nearest_mode '%s' is not supported", nm);
    st->nearest = (enum nearest_mode)ni;

    st->cubic_a = mq_attr_float(node, "cubic_coeff_a", -0.75f);
    int64_t ex = mq_attr_int(node, "exclude_outside", 0);
    if (ex != 0 && ex != 1)
        return ops_fail(node, err, "exclude_outside must be 0 or 1, got %lld", (long long)ex);
    st->exclude_outside = (int)ex;
    st->extrapolation = mq_attr_float(node, "extrapolation_value", 0.0f);

    if (node->opset >= 18) {
        int64_t aa = mq_attr_int(node, "antialias", 0);
        if (aa != 0 && aa != 1)
            return ops_fail(node, err, "antialias must be 0 or 1, got %lld", (long long)aa);
        st->antialias = (int)aa;
        const int64_t *axes;
        int64_t n = mq_attr_ints(node, "axes", &axes);
        if (n > MQ_MAX_RANK)
            return ops_fail(node, err, "attribute 'axes' has %lld values", (long long)n);
        if (n >= 0) {
            st->n_axes = (int)n;
            memcpy(st->axes, axes, sizeof(int64_t) * (size_t)n);
        }
        static const char *const keeps[] = {"stretch", "not_larger", "not_smaller"};
        const char *k = mq_attr_string(node, "keep_aspect_ratio_policy", "stretch", buf,
                                       sizeof buf);
        int ki = lookup(k, keeps, 3);
        if (ki < 0)
            return ops_fail(node, err, "keep_aspect_ratio_policy '%s' is not supported", k);
        st->keep = (enum aspect_policy)ki;
    }
    return MQ_OK;
}

static int upsample_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct resize_state *st = calloc(1, sizeof *st);
    if (!st)
        return ops_fail(node, err, "out of memory");
    node->state = st;
    st->is_upsample = 1;
    st->n_axes = -1;
    st->n_scales = -1;
    st->coord = CT_ASYMMETRIC;
    st->nearest = NM_SIMPLE;
    if (parse_mode(node, st, err))
        return MQ_ERR;
    if (node->opset < 7) {
        /* Upsample-1: NCHW with height_scale and width_scale attributes. */
        if (!mq_attr_has(node, "height_scale") || !mq_attr_has(node, "width_scale"))
            return ops_fail(node, err, "attributes height_scale and width_scale are required");
        st->n_scales = 4;
        st->scales[0] = st->scales[1] = 1.0;
        st->scales[2] = mq_attr_float(node, "height_scale", 1.0f);
        st->scales[3] = mq_attr_float(node, "width_scale", 1.0f);
    } else if (node->opset < 9) {
        const float *v;
        int64_t n = mq_attr_floats(node, "scales", &v);
        if (n < 0)
            return ops_fail(node, err, "attribute 'scales' is required before opset 9");
        if (n > MQ_MAX_RANK)
            return ops_fail(node, err, "attribute 'scales' has %lld values", (long long)n);
        st->n_scales = (int)n;
        for (int64_t i = 0; i < n; i++)
            st->scales[i] = v[i];
    }
    for (int i = 0; i < st->n_scales; i++)
        if (!(st->scales[i] > 0))
            return ops_fail(node, err, "scale %g for axis %d must be positive", st->scales[i],
                            i);
    return MQ_OK;
}

/* ---- per-axis tables -------------------------------------------------------------------- */

struct axis_plan {
    int64_t in, out;
    double scale;                 /* as the transforms see it */
    double out_width;             /* scale * in, or the requested size */
    double roi_start, roi_end;
    int taps;
    int64_t *idx;                 /* out * taps input indices, clamped to [0, in) */
    float *wf;                    /* out * taps weights */
    double *wd;
    uint8_t *outside;             /* tf_crop_and_resize: position takes the extrapolation */
    int has_outside;
    int identity;                 /* out == in and every position copies itself */
};

static void axis_plan_free(struct axis_plan *p)
{
    ops_scratch_free(p->idx);
    ops_scratch_free(p->wf);
    ops_scratch_free(p->wd);
    ops_scratch_free(p->outside);
}

static double original_coord(enum coord_mode coord, const struct axis_plan *p, double x,
                             int *outside)
{
    double s = p->scale, ow = p->out_width, in = (double)p->in;
    *outside = 0;
    switch (coord) {
    case CT_HALF_PIXEL:
        return (x + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        /* Centres the (possibly fractional) output canvas on the input. */
        double adjustment = (double)p->out / ow;
        double offset = in / 2 * (1 - adjustment);
        return offset + (x + 0.5) / s - 0.5;
    }
    case CT_PYTORCH_HALF_PIXEL:
        return ow == 1 ? -0.5 : (x + 0.5) / s - 0.5;
    case CT_ALIGN_CORNERS:
        return ow == 1 ? 0.0 : x * (in - 1) / (ow - 1);
    case CT_ASYMMETRIC:
        return x / s;
    case CT_TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / s;
    case CT_TF_CROP_AND_RESIZE: {
        double span = p->roi_end - p->roi_start;
        double v = ow == 1 ? span * (in - 1) / 2 : x * span * (in - 1) / (ow - 1);
        v += p->roi_start * (in - 1);
        *outside = v < 0 || v > in - 1;
        return v;
    }
    }
    return 0;
}

static double cubic_kernel(double x, double a)
{
    x = fabs(x);
    if (x <= 1)
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2)
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* Number of taps per output position. */
static int64_t tap_count(const struct resize_state *st, double scale)
{
    if (st->mode == MODE_NEAREST)
        return 1;
    int aa = st->antialias && scale < 1;
    if (st->mode == MODE_LINEAR)
        return aa ? 2 * (int64_t)ceil(1 / scale) : 2;
    return aa ? 2 - 2 * (int64_t)(floor(-2 / scale) + 1) : 4;
}

static int build_axis(const struct mq_kernel_node *node, const struct resize_state *st,
                      struct axis_plan *p, struct mq_error *err)
{
    int64_t taps64 = tap_count(st, p->scale);
    if (taps64 < 1 || taps64 > (int64_t)1 << 24 || (p->out > 0 && taps64 > (INT64_C(1) << 28) / p->out))
        return ops_fail(node, err, "scale %g needs too large a filter (%lld taps for %lld "
                        "outputs)", p->scale, (long long)taps64, (long long)p->out);
    int taps = (int)taps64;
    size_t n = (size_t)(p->out * taps64);
    p->taps = taps;
    if (!(p->idx = ops_scratch(node, (int64_t)n, sizeof(int64_t), err)) ||
        !(p->wf = ops_scratch(node, (int64_t)n, sizeof(float), err)) ||
        !(p->wd = ops_scratch(node, (int64_t)n, sizeof(double), err)) ||
        !(p->outside = ops_scratch(node, p->out, 1, err)))
        return MQ_ERR;
    if (p->out)
        memset(p->outside, 0, (size_t)p->out);
    double *c = malloc(sizeof(double) * (size_t)taps);
    if (!c)
        return ops_fail(node, err, "out of memory");
    int64_t in = p->in;
    p->identity = p->out == p->in;
    int aa = st->antialias && p->scale < 1;
    double sc = p->scale < 1 ? p->scale : 1;
    for (int64_t x = 0; x < p->out; x++) {
        int outside;
        double xo = original_coord(st->coord, p, (double)x, &outside);
        int64_t *idx = p->idx + x * taps;
        double *w = p->wd + x * taps;
        if (outside) {
            p->outside[x] = 1;
            p->has_outside = 1;
            p->identity = 0;
            for (int j = 0; j < taps; j++) {
                idx[j] = 0;
                w[j] = 0;
            }
            continue;
        }
        if (st->mode == MODE_NEAREST) {
            int64_t i;
            double fl = floor(xo);
            if (st->nearest == NM_SIMPLE) {
                i = (int64_t)(p->scale < 1 ? ceil(xo) : trunc(xo));
            } else if (xo == fl) {
                i = (int64_t)xo;
            } else {
                double ratio = xo - fl;
                int up = st->nearest == NM_CEIL ||
                         (st->nearest == NM_ROUND_PREFER_FLOOR && ratio > 0.5) ||
                         (st->nearest == NM_ROUND_PREFER_CEIL && ratio >= 0.5);
                i = (int64_t)fl + up;
            }
            idx[0] = i < 0 ? 0 : i >= in ? in - 1 : i;
            w[0] = 1;
        } else {
            /* Neighbours i0 + 1 - k .. i0 + k with ratio = xo - i0 in (0, 1]. */
            double fl = floor(xo);
            int64_t i0 = (int64_t)fl;
            double ratio = xo - fl;
            if (ratio == 0) {
                i0 -= 1;
                ratio = 1;
            }
            int64_t k = taps / 2;
            int64_t first = i0 + 1 - k;
            /* The reference picks among an edge padding of k on each side. */
            if (first < -k)
                first = -k;
            if (first + taps - 1 > in - 1 + k)
                first = in - k;
            if (st->mode == MODE_LINEAR && !aa) {
                c[0] = 1 - ratio;
                c[1] = ratio;
            } else if (st->mode == MODE_CUBIC && !aa) {
                double a = st->cubic_a, r1 = ratio + 1, r2 = 1 - ratio, r3 = 2 - ratio;
                c[0] = ((a * r1 - 5 * a) * r1 + 8 * a) * r1 - 4 * a;
                c[1] = ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1;
                c[2] = ((a + 2) * r2 - (a + 3)) * r2 * r2 + 1;
                c[3] = ((a * r3 - 5 * a) * r3 + 8 * a) * r3 - 4 * a;
            } else {
                /* Antialias: the kernel stretched by 1/scale, normalised. */
                double sum = 0;
                for (int j = 0; j < taps; j++) {
                    double t = ((double)(1 - k + j) - ratio) * sc;
                    if (st->mode == MODE_LINEAR) {
                        double v = 1 - fabs(t);
                        c[j] = v < 0 ? 0 : v > 1 ? 1 : v;
                    } else {
                        c[j] = cubic_kernel(t, st->cubic_a);
                    }
                    sum += c[j];
                }
                if (sum != 0)
                    for (int j = 0; j < taps; j++)
                        c[j] /= sum;
            }
            if (st->exclude_outside) {
                double sum = 0;
                for (int j = 0; j < taps; j++) {
                    if (first + j < 0 || first + j >= in)
                        c[j] = 0;
                    sum += c[j];
                }
                if (sum != 0)
                    for (int j = 0; j < taps; j++)
                        c[j] /= sum;
            }
            for (int j = 0; j < taps; j++) {
                int64_t i = first + j;
                idx[j] = i < 0 ? 0 : i >= in ? in - 1 : i;
                w[j] = c[j];
            }
        }
        if (p->identity) {
            /* Copies itself: the weights on x add up to exactly 1, all others are 0. */
            double on = 0;
            for (int j = 0; j < taps; j++) {
                if (idx[j] == x)
                    on += w[j];
                else if (w[j] != 0)
                    p->identity = 0;
            }
            if (on != 1.0)
                p->identity = 0;
        }
    }
    for (size_t i = 0; i < n; i++)
        p->wf[i] = (float)p->wd[i];
    free(c);
    return MQ_OK;
}

/* ---- nearest: a gather ------------------------------------------------------------------ */

#define NEAREST_ROW(T)                                                                             \
    {                                                                                              \
        T *d = (T *)dst;                                                                           \
        const T *s = (const T *)src;                                                               \
        T ev;                                                                                      \
        memcpy(&ev, extra, sizeof ev);                                                             \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[i] = off[i] < 0 ? ev : s[off[i]];                                                    \
    }                                                                                              \
    break;

/* d[i] = s[off[i]]: the 4-byte rows of a nearest resize inside the input, as vector gathers */
MQ_SIMD_CLONES
static void gather_row_u32(uint32_t *restrict d, const uint32_t *restrict s,
                           const int32_t *restrict off, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = s[off[i]];
}

static void nearest_row(void *dst, const void *src, const int64_t *off, int64_t n,
                        const void *extra, size_t es)
{
    switch (es) {
    case 1: NEAREST_ROW(uint8_t)
    case 2: NEAREST_ROW(uint16_t)
    case 4: NEAREST_ROW(uint32_t)
    case 8: NEAREST_ROW(uint64_t)
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + i * (int64_t)es,
                   off[i] < 0 ? extra : (const char *)src + off[i] * (int64_t)es, es);
    }
}

static int run_nearest(const struct mq_kernel_node *node, const struct mq_tensor *x,
                       struct axis_plan *plans, const void *extra, struct mq_tensor *out,
                       struct mq_error *err)
{
    int r = x->rank;
    size_t es = mq_dtype_size(x->dtype);
    int64_t strides[MQ_MAX_RANK], total = 0;
    ops_strides(r, x->dims, strides);
    for (int a = 0; a < r; a++)
        total += out->dims[a];
    int64_t *offs = ops_scratch(node, total, sizeof(int64_t), err);
    if (!offs)
        return MQ_ERR;
    int64_t *off[MQ_MAX_RANK];
    int64_t at = 0;
    for (int a = 0; a < r; a++) {
        off[a] = offs + at;
        at += out->dims[a];
        for (int64_t i = 0; i < out->dims[a]; i++)
            off[a][i] = plans[a].outside[i] ? -1 : plans[a].idx[i] * strides[a];
    }
    int last = r - 1;
    int64_t n = out->dims[last];
    int64_t idx[MQ_MAX_RANK] = {0};
    char *d = out->data;
    /* 4-byte elements whose last-axis positions all lie inside the input: 32-bit offsets,
       which the compiler gathers with vector loads */
    int32_t *off32 = NULL;
    if (es == 4 && x->dims[last] <= INT32_MAX) {
        int inside = 1;
        for (int64_t i = 0; i < n; i++)
            inside &= off[last][i] >= 0;
        if (inside && (off32 = ops_scratch(node, n, sizeof *off32, err)) == NULL) {
            ops_scratch_free(offs);
            return MQ_ERR;
        }
        for (int64_t i = 0; off32 && i < n; i++)
            off32[i] = (int32_t)off[last][i];
    }
    for (;;) {
        int64_t base = 0;
        int constant_row = 0;
        for (int a = 0; a < last; a++) {
            if (off[a][idx[a]] < 0)
                constant_row = 1;
            base += off[a][idx[a]];
        }
        if (constant_row) {
            for (int64_t i = 0; i < n; i++)
                memcpy(d + i * (int64_t)es, extra, es);
        } else if (off32) {
            gather_row_u32((uint32_t *)d, (const uint32_t *)((const char *)x->data + base * 4),
                           off32, n);
        } else {
            nearest_row(d, (const char *)x->data + base * (int64_t)es, off[last], n, extra, es);
        }
        d += n * (int64_t)es;
        int k = last - 1;
        for (; k >= 0; k--) {
            if (++idx[k] < out->dims[k])
                break;
            idx[k] = 0;
        }
        if (k < 0)
            break;
    }
    ops_scratch_free(off32);
    ops_scratch_free(offs);
    return MQ_OK;
}

/* ---- linear / cubic: separable passes --------------------------------------------------- */

/*
 * One pass along an axis: src is [outer, in, inner], dst [outer, out, inner];
 * each output row is the weighted sum of the input rows its taps name.
 */
#define RESAMPLE_PASS(CT, W)                                                                       \
    {                                                                                              \
        const CT *s = (const CT *)src;                                                             \
        CT *d = (CT *)dst;                                                                         \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t x = 0; x < p->out; x++) {                                                 \
                CT *row = d + (o * p->out + x) * inner;                                            \
                const int64_t *ix = p->idx + x * taps;                                             \
                const CT *w = p->W + x * taps;                                                     \
                if (inner == 1) {                                                                  \
                    CT acc = 0;                                                                    \
                    for (int j = 0; j < taps; j++)                                                 \
                        acc += w[j] * s[o * p->in + ix[j]];                                        \
                    row[0] = acc;                                                                  \
                    continue;                                                                      \
                }                                                                                  \
                for (int64_t i = 0; i < inner; i++)                                                \
                    row[i] = 0;                                                                    \
                for (int j = 0; j < taps; j++) {                                                   \
                    if (w[j] == 0)                                                                 \
                        continue;                                                                  \
                    const CT *sr = s + (o * p->in + ix[j]) * inner;                                \
                    CT wj = w[j];                                                                  \
                    for (int64_t i = 0; i < inner; i++)                                            \
                        row[i] += wj * sr[i];                                                      \
                }                                                                                  \
            }                                                                                      \
    }

/*
 * RESAMPLE_PASS along the last axis (inner 1) of float32, with the taps of each output
 * position laid out as rows over the positions (ix, w: taps x out), so that each tap is one
 * loop over a line, which the compiler turns into vector gathers: per position the same sum,
 * 0 + w0 * s0 + w1 * s1 + ..., in the same order.
 */
MQ_SIMD_CLONES
static void resample_lines_f32(float *restrict dst, const float *restrict src, int64_t outer,
                               int64_t in, int64_t out, int taps, const int32_t *restrict ix,
                               const float *restrict w)
{
    for (int64_t o = 0; o < outer; o++) {
        float *restrict row = dst + o * out;
        const float *restrict s = src + o * in;
        for (int64_t x = 0; x < out; x++)
            row[x] = 0;
        for (int j = 0; j < taps; j++) {
            const int32_t *restrict ij = ix + j * out;
            const float *restrict wj = w + j * out;
            for (int64_t x = 0; x < out; x++)
                row[x] += wj[x] * s[ij[x]];
        }
    }
}

/* resample_lines_f32 with its tables; 0 (nothing done) where they do not fit or fail. */
static int resample_last_axis_f32(const struct mq_kernel_node *node, float *dst,
                                  const float *src, const struct axis_plan *p, int64_t outer)
{
    int64_t n = (int64_t)p->taps * p->out;
    if (p->in > INT32_MAX || p->taps < 1)
        return 0;
    struct mq_error ignored = {{0}};
    int32_t *ix = ops_scratch(node, n, sizeof *ix, &ignored);
    float *w = ix ? ops_scratch(node, n, sizeof *w, &ignored) : NULL;
    if (!w) {
        ops_scratch_free(ix);
        return 0;
    }
    for (int64_t x = 0; x < p->out; x++)
        for (int j = 0; j < p->taps; j++) {
            ix[j * p->out + x] = (int32_t)p->idx[x * p->taps + j];
            w[j * p->out + x] = p->wf[x * p->taps + j];
        }
    resample_lines_f32(dst, src, outer, p->in, p->out, p->taps, ix, w);
    ops_scratch_free(ix);
    ops_scratch_free(w);
    return 1;
}

static void resample_pass(void *dst, const void *src, int use_double, const struct axis_plan *p,
                          int64_t outer, int64_t inner)
{
    int taps = p->taps;
    if (use_double)
        RESAMPLE_PASS(double, wd)
    else
        RESAMPLE_PASS(float, wf)
}

#define FILL_ROWS(CT)                                                                              \
    {                                                                                              \
        CT *d = (CT *)buf;                                                                         \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t x = 0; x < p->out; x++)                                                   \
                if (p->outside[x])                                                                 \
                    for (int64_t i = 0; i < inner; i++)                                            \
                        d[(o * p->out + x) * inner + i] = (CT)value;                               \
    }

/* tf_crop_and_resize: positions outside the crop take the extrapolation value. */
static void fill_outside(void *buf, int use_double, const struct axis_plan *p, int64_t outer,
                         int64_t inner, double value)
{
    if (use_double)
        FILL_ROWS(double)
    else
        FILL_ROWS(float)
}

#define CLAMP_TO(CT, LO, HI)                                                                       \
    {                                                                                              \
        CT *v = (CT *)buf;                                                                         \
        for (int64_t i = 0; i < n; i++)                                                            \
            v[i] = v[i] < (CT)(LO) ? (CT)(LO) : v[i] > (CT)(HI) ? (CT)(HI) : v[i];                 \
    }

/*
 * Cubic weights overshoot: an 8-bit image can interpolate to 260.  Integer
 * outputs saturate instead of wrapping around.
 */
static void saturate_for(int dtype, void *buf, int use_double, int64_t n)
{
    double lo, hi;
    switch (dtype) {
    case MQ_DTYPE_INT8: lo = -128; hi = 127; break;
    case MQ_DTYPE_UINT8: case MQ_DTYPE_BOOL: lo = 0; hi = 255; break;
    case MQ_DTYPE_INT16: lo = -32768; hi = 32767; break;
    case MQ_DTYPE_UINT16: lo = 0; hi = 65535; break;
    case MQ_DTYPE_INT32: lo = -2147483648.0; hi = 2147483647.0; break;
    case MQ_DTYPE_UINT32: lo = 0; hi = 4294967295.0; break;
    default: return;
    }
    if (use_double)
        CLAMP_TO(double, lo, hi)
    else
        CLAMP_TO(float, lo, hi)
}

static int run_interpolate(const struct mq_kernel_node *node, const struct resize_state *st,
                           const struct mq_tensor *x, struct axis_plan *plans,
                           struct mq_tensor *out, struct mq_error *err)
{
    int r = x->rank;
    /* float32 holds 24 bits: wide integers and doubles are interpolated in double. */
    int use_double = x->dtype == MQ_DTYPE_DOUBLE || x->dtype == MQ_DTYPE_INT32 ||
                     x->dtype == MQ_DTYPE_UINT32 || x->dtype == MQ_DTYPE_INT64 ||
                     x->dtype == MQ_DTYPE_UINT64;
    int ct = use_double ? MQ_DTYPE_DOUBLE : MQ_DTYPE_FLOAT;
    size_t cs = use_double ? sizeof(double) : sizeof(float);
    /* Shrinking axes first keeps the intermediate buffers small. */
    int order[MQ_MAX_RANK], n_order = 0;
    for (int a = 0; a < r; a++)
        if (!plans[a].identity)
            order[n_order++] = a;
    for (int i = 1; i < n_order; i++)
        for (int j = i; j > 0; j--) {
            const struct axis_plan *pa = &plans[order[j - 1]], *pb = &plans[order[j]];
            if ((double)pb->out * (double)pa->in >= (double)pa->out * (double)pb->in)
                break;
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    if (n_order == 0) {
        memcpy(out->data, x->data, mq_dtype_size(x->dtype) * (size_t)x->count);
        return MQ_OK;
    }

    void *cur = NULL;            /* owned intermediate, in the compute type */
    const void *src = x->data;
    if (x->dtype != ct) {
        cur = ops_scratch(node, x->count, cs, err);
        if (!cur)
            return MQ_ERR;
        mq_cast_elements(cur, ct, x->data, x->dtype, x->count);
        src = cur;
    }
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < n_order; i++) {
        const struct axis_plan *p = &plans[order[i]];
        int a = order[i];
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < a; k++)
            outer *= dims[k];
        for (int k = a + 1; k < r; k++)
            inner *= dims[k];
        int64_t count = outer * p->out * inner;
        void *dst;
        if (i == n_order - 1 && out->dtype == ct)
            dst = out->data;
        else if (!(dst = ops_scratch(node, count, cs, err))) {
            ops_scratch_free(cur);
            return MQ_ERR;
        }
        if (use_double || inner != 1 || !resample_last_axis_f32(node, dst, src, p, outer))
            resample_pass(dst, src, use_double, p, outer, inner);
        ops_scratch_free(cur);
        cur = dst == out->data ? NULL : dst;
        src = dst;
        dims[a] = p->out;
    }
    /* The last pass wrote the output itself, or `cur` in the compute type. */
    void *buf = cur ? cur : out->data;
    for (int a = 0; a < r; a++) {
        if (!plans[a].has_outside)
            continue;
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < a; k++)
            outer *= out->dims[k];
        for (int k = a + 1; k < r; k++)
            inner *= out->dims[k];
        fill_outside(buf, use_double, &plans[a], outer, inner, st->extrapolation);
    }
    if (cur) {
        saturate_for(out->dtype, cur, use_double, out->count);
        mq_cast_elements(out->data, out->dtype, cur, ct, out->count);
        ops_scratch_free(cur);
    }
    return MQ_OK;
}

/* ---- run -------------------------------------------------------------------------------- */

/* Reads float scales (any float type) into v; *n the count. */
static int read_scales(const struct mq_kernel_node *node, const struct mq_tensor *t, int index,
                       double *v, int *n, struct mq_error *err)
{
    *n = 0;
    if (!mq_dtype_is_float(t->dtype))
        return ops_fail(node, err, "input '%s' must be a float tensor, got %s",
                        ops_input_name(node, index), mq_dtype_name(t->dtype));
    if (t->count > MQ_MAX_RANK || t->rank > 1)
        return ops_fail(node, err, "input '%s' must be 1-D with at most %d values",
                        ops_input_name(node, index), MQ_MAX_RANK);
    for (int64_t i = 0; i < t->count; i++)
        v[i] = mq_tensor_get_double(t, i);
    *n = (int)t->count;
    return MQ_OK;
}

static int resize_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct resize_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int r = x->rank;
    if (r < 1)
        return ops_fail(node, err, "input must have rank >= 1");
    if (!mq_cast_supported(x->dtype))
        return ops_fail(node, err, "input type %s is not supported", mq_dtype_name(x->dtype));

    int axes[MQ_MAX_RANK], n_axes = r;
    for (int i = 0; i < r; i++)
        axes[i] = i;
    if (st->n_axes >= 0) {
        n_axes = st->n_axes;
        if (ops_normalize_axes(node, st->axes, n_axes, r, axes, err))
            return MQ_ERR;
    }

    /* Scales or sizes, one per listed axis. */
    double scales[MQ_MAX_RANK], roi[2 * MQ_MAX_RANK];
    int64_t sizes[MQ_MAX_RANK];
    int n_scales = 0, n_sizes = 0, n_roi = 0;
    const struct mq_tensor *roi_t = NULL;
    if (st->n_scales >= 0) {
        n_scales = st->n_scales;
        memcpy(scales, st->scales, sizeof scales);
    } else if (st->is_upsample || node->opset < 11) {
        const struct mq_tensor *t = ops_input(inputs, n_inputs, 1);
        if (!t)
            return ops_fail(node, err, "input 'scales' is required");
        if (read_scales(node, t, 1, scales, &n_scales, err))
            return MQ_ERR;
    } else {
        roi_t = ops_input(inputs, n_inputs, 1);
        const struct mq_tensor *ts = ops_input(inputs, n_inputs, 2);
        const struct mq_tensor *tz = ops_input(inputs, n_inputs, 3);
        if (ts && ts->count > 0 && read_scales(node, ts, 2, scales, &n_scales, err))
            return MQ_ERR;
        if (tz && tz->count > 0 && ops_read_ints(node, tz, 3, sizes, MQ_MAX_RANK, &n_sizes, err))
            return MQ_ERR;
        if (n_scales && n_sizes)
            return ops_fail(node, err, "only one of 'scales' and 'sizes' may be given");
        if (!n_scales && !n_sizes)
            return ops_fail(node, err, "one of 'scales' and 'sizes' must be given");
    }
    if ((n_scales && n_scales != n_axes) || (n_sizes && n_sizes != n_axes))
        return ops_fail(node, err, "%s has %d values but %d axes are resized",
                        n_scales ? "scales" : "sizes", n_scales ? n_scales : n_sizes, n_axes);
    if (st->coord == CT_TF_CROP_AND_RESIZE) {
        if (!roi_t || roi_t->count != 2 * n_axes)
            return ops_fail(node, err, "tf_crop_and_resize needs roi with %d values, got %lld",
                            2 * n_axes, roi_t ? (long long)roi_t->count : 0LL);
        if (!mq_dtype_is_float(roi_t->dtype))
            return ops_fail(node, err, "roi must be a float tensor, got %s",
                            mq_dtype_name(roi_t->dtype));
        n_roi = 2 * n_axes;
        for (int i = 0; i < n_roi; i++)
            roi[i] = mq_tensor_get_double(roi_t, i);
    }

    struct axis_plan plans[MQ_MAX_RANK];
    memset(plans, 0, sizeof plans);
    int64_t out_dims[MQ_MAX_RANK];
    for (int a = 0; a < r; a++) {
        plans[a].in = plans[a].out = x->dims[a];
        plans[a].scale = 1;
        plans[a].out_width = (double)x->dims[a];
        plans[a].roi_start = 0;
        plans[a].roi_end = 1;
    }
    double keep_scale = 0;
    if (n_sizes && st->keep != KEEP_STRETCH) {
        for (int i = 0; i < n_axes; i++) {
            int64_t in = x->dims[axes[i]];
            if (in == 0 || sizes[i] < 0)
                return ops_fail(node, err, "keep_aspect_ratio_policy needs non-empty axes and "
                                "non-negative sizes");
            double s = (double)sizes[i] / (double)in;
            if (i == 0 || (st->keep == KEEP_NOT_LARGER ? s < keep_scale : s > keep_scale))
                keep_scale = s;
        }
    }
    for (int i = 0; i < n_axes; i++) {
        struct axis_plan *p = &plans[axes[i]];
        int64_t in = p->in;
        if (n_scales) {
            double s = scales[i];
            if (!(s > 0) || !isfinite(s))
                return ops_fail(node, err, "scale %g for axis %d must be positive", s, axes[i]);
            double o = floor((double)in * s);
            if (o > 9.0e15)
                return ops_fail(node, err, "scale %g makes axis %d too large", s, axes[i]);
            p->scale = s;
            p->out = (int64_t)o;
            p->out_width = s * (double)in;
        } else {
            if (sizes[i] < 0)
                return ops_fail(node, err, "size %lld for axis %d is negative",
                                (long long)sizes[i], axes[i]);
            if (in == 0 && sizes[i] != 0)
                return ops_fail(node, err, "cannot resize the empty axis %d to %lld", axes[i],
                                (long long)sizes[i]);
            if (st->keep != KEEP_STRETCH) {
                p->scale = keep_scale;
                p->out = (int64_t)(keep_scale * (double)in + 0.5);
                p->out_width = keep_scale * (double)in;
            } else {
                p->scale = in ? (double)sizes[i] / (double)in : 1;
                p->out = sizes[i];
                p->out_width = (double)sizes[i];
            }
            if (p->out > 0 && !(p->scale > 0))
                return ops_fail(node, err, "axis %d resolves to scale 0", axes[i]);
        }
        if (n_roi) {
            p->roi_start = roi[i];
            p->roi_end = roi[n_axes + i];
        }
    }
    for (int a = 0; a < r; a++)
        out_dims[a] = plans[a].out;
    struct mq_tensor *out = &outputs[0];
    if (ops_alloc(node, out, x->dtype, r, out_dims, err))
        return MQ_ERR;
    if (out->count == 0)
        return MQ_OK;
    if (x->count == 0)
        return ops_fail(node, err, "cannot resize an empty input to a non-empty output");

    int rc = MQ_OK;
    for (int a = 0; a < r && rc == MQ_OK; a++)
        rc = build_axis(node, st, &plans[a], err);
    if (rc == MQ_OK) {
        if (st->mode == MODE_NEAREST) {
            unsigned char extra[16] = {0};
            mq_cast_elements(extra, x->dtype, &st->extrapolation, MQ_DTYPE_DOUBLE, 1);
            rc = run_nearest(node, x, plans, extra, out, err);
        } else {
            rc = run_interpolate(node, st, x, plans, out, err);
        }
    }
    for (int a = 0; a < r; a++)
        axis_plan_free(&plans[a]);
    return rc;
}

/*
 * Upsample-1: height/width_scale attributes; 7: scales attribute; 9: scales
 * input (10 deprecates it).  Resize-10: scales input, nearest/linear,
 * asymmetric; 11: roi/scales/sizes, cubic, coordinate modes; 13: roi and
 * scales optional; 18: antialias, axes, keep_aspect_ratio_policy; 19:
 * half_pixel_symmetric.
 */
const struct mq_kernel mq_kernels_resize[] = {
    {"", "Upsample", 1, 6, upsample_prepare, resize_run, free},
    {"", "Upsample", 7, 8, upsample_prepare, resize_run, free},
    {"", "Upsample", 9, 0, upsample_prepare, resize_run, free},
    {"", "Resize", 10, 10, resize_prepare, resize_run, free},
    {"", "Resize", 11, 12, resize_prepare, resize_run, free},
    {"", "Resize", 13, 17, resize_prepare, resize_run, free},
    {"", "Resize", 18, 18, resize_prepare, resize_run, free},
    {"", "Resize", 19, 0, resize_prepare, resize_run, free},
    {0},
};
