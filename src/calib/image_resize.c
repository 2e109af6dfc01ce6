/*
 * Image resizing and the pre-processing that follows decoding.
 *
 * The resampler is Pillow's (Image.resize): a separable convolution, horizontal
 * pass then vertical, whose filter support widens by the downscale factor
 * (antialiasing), with weights in 22-bit fixed point and 8-bit rounding
 * between the passes.  Reproducing it exactly lets tensors made here equal
 * those a Python pipeline made with Pillow.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/image.h"
#include "core/tensor.h"

#define PRECISION_BITS (32 - 8 - 2)

static double filter_bilinear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_bicubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double filter_nearest(double x)
{
    return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

struct filter {
    double (*f)(double);
    double support;
};

static const struct filter filters[] = {
    [MQ_FILTER_BILINEAR] = {filter_bilinear, 1.0},
    [MQ_FILTER_BICUBIC] = {filter_bicubic, 2.0},
    [MQ_FILTER_NEAREST] = {filter_nearest, 0.5},
};

/* Per output position: first input index, tap count, and ksize fixed-point weights. */
struct coeffs {
    int ksize;
    int *bounds;   /* 2 per output: xmin, count */
    int32_t *k;    /* ksize per output */
};

static int coeffs_make(int in_size, int out_size, const struct filter *flt, struct coeffs *c)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = flt->support * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof *c->bounds * 2 * (size_t)out_size);
    c->k = malloc(sizeof *c->k * (size_t)c->ksize * (size_t)out_size);
    double *pre = malloc(sizeof *pre * (size_t)c->ksize);
    if (!c->bounds || !c->k || !pre) {
        free(pre);
        return MQ_ERR_MEMORY;
    }
    double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = flt->f((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double w = x < xmax && ww != 0.0 ? pre[x] / ww : 0.0;
            k[x] = (int32_t)(w < 0 ? -0.5 + w * (1 << PRECISION_BITS)
                                   : 0.5 + w * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(pre);
    return MQ_OK;
}

static void coeffs_free(struct coeffs *c)
{
    free(c->bounds);
    free(c->k);
}

static uint8_t clip8(int32_t v)
{
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Rows [y0, y0+rows) of src, resized horizontally into dst (rows x out_w).  Sums are 32-bit
   as in Pillow (255 * 2^22 times the weights' sum stays below 2^31). */
static void pass_horizontal(const struct mq_image *src, int y0, int rows, int out_w,
                            const struct coeffs *c, uint8_t *dst)
{
    int ch = src->channels;
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src->pixels + (size_t)(y0 + y) * (size_t)src->width * (size_t)ch;
        uint8_t *out = dst + (size_t)y * (size_t)out_w * (size_t)ch;
        for (int x = 0; x < out_w; x++) {
            int xmin = c->bounds[2 * x], n = c->bounds[2 * x + 1];
            const int32_t *k = c->k + (size_t)x * (size_t)c->ksize;
            if (ch == 3) {
                int32_t r = 1 << (PRECISION_BITS - 1), g = r, b = r;
                const uint8_t *p = in + (size_t)xmin * 3;
                for (int i = 0; i < n; i++, p += 3) {
                    r += p[0] * k[i];
                    g += p[1] * k[i];
                    b += p[2] * k[i];
                }
                out[3 * x] = clip8(r);
                out[3 * x + 1] = clip8(g);
                out[3 * x + 2] = clip8(b);
                continue;
            }
            for (int b = 0; b < ch; b++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < n; i++)
                    ss += in[(size_t)(xmin + i) * (size_t)ch + (size_t)b] * k[i];
                out[(size_t)x * (size_t)ch + (size_t)b] = clip8(ss);
            }
        }
    }
}

/* src (w x in_rows, starting at source row `offset`) resized vertically to out_h rows; acc
   holds one row of sums, so the inner loop runs along a row (vectorised). */
static void pass_vertical(const uint8_t *src, int w, int ch, int offset, int out_h,
                          const struct coeffs *c, int32_t *acc, uint8_t *dst)
{
    size_t stride = (size_t)w * (size_t)ch;
    for (int y = 0; y < out_h; y++) {
        int ymin = c->bounds[2 * y] - offset, n = c->bounds[2 * y + 1];
        const int32_t *k = c->k + (size_t)y * (size_t)c->ksize;
        uint8_t *out = dst + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++)
            acc[x] = 1 << (PRECISION_BITS - 1);
        for (int i = 0; i < n; i++) {
            const uint8_t *row = src + (size_t)(ymin + i) * stride;
            int32_t weight = k[i];
            for (size_t x = 0; x < stride; x++)
                acc[x] += row[x] * weight;
        }
        for (size_t x = 0; x < stride; x++)
            out[x] = clip8(acc[x]);
    }
}

int mq_image_resize(struct mq_image *image, int w, int h, enum mq_resample_filter filter,
                    struct mq_error *err)
{
    if (w == image->width && h == image->height)
        return MQ_OK;
    const struct filter *flt = &filters[filter];
    struct coeffs ch = {0}, cv = {0};
    int ch_ = image->channels;
    uint8_t *tmp = NULL, *out = NULL;
    int32_t *acc = NULL;
    uint64_t out_bytes = 0;
    int capped = 0; /* the memory cap refused the resized image: err says so */
    int rc = coeffs_make(image->width, w, flt, &ch);
    if (rc == MQ_OK)
        rc = coeffs_make(image->height, h, flt, &cv);
    /* Only the source rows the vertical pass reads go through the horizontal one. */
    int first = 0, last = image->height;
    if (rc == MQ_OK) {
        first = cv.bounds[0];
        last = cv.bounds[2 * (h - 1)] + cv.bounds[2 * (h - 1) + 1];
        /* the resized image is counted against the memory cap like the decoded one */
        out_bytes = (uint64_t)h * (uint64_t)w * (uint64_t)ch_;
        if (mq_memory_reserve(out_bytes, "the resized image", err)) {
            rc = MQ_ERR_MEMORY;
            capped = 1;
            out_bytes = 0;
        }
        tmp = rc ? NULL : malloc((size_t)(last - first) * (size_t)w * (size_t)ch_);
        out = rc ? NULL : malloc((size_t)out_bytes);
        acc = rc ? NULL : malloc(sizeof *acc * (size_t)w * (size_t)ch_);
        if (!tmp || !out || !acc)
            rc = MQ_ERR_MEMORY;
    }
    if (rc == MQ_OK) {
        pass_horizontal(image, first, last - first, w, &ch, tmp);
        pass_vertical(tmp, w, ch_, first, h, &cv, acc, out);
        free(image->pixels);
        mq_memory_release(image->reserved);
        image->pixels = out;
        image->reserved = out_bytes;
        image->width = w;
        image->height = h;
        out = NULL;
        out_bytes = 0;
    }
    free(tmp);
    free(out);
    free(acc);
    mq_memory_release(out_bytes); /* still set only when the resize failed after reserving */
    coeffs_free(&ch);
    coeffs_free(&cv);
    if (capped)
        return MQ_ERR_MEMORY;
    return rc ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory resizing an image") : MQ_OK;
}

static int iround(double v) { return (int)floor(v + 0.5); }

int mq_image_preprocess(struct mq_image *image, const struct mq_preprocess *pre, int out_w,
                        int out_h, int channels, int nhwc, float *dst, struct mq_error *err)
{
    if (pre->color == MQ_COLOR_GRAY)
        mq_image_to_gray(image);
    if (image->channels != channels)
        return mq_error_set(err, "--color %s gives %d channel%s but the model's input has %d",
                            pre->color == MQ_COLOR_GRAY ? "gray" : "rgb/bgr", image->channels,
                            image->channels == 1 ? "" : "s", channels);
    int W = image->width, H = image->height;
    int rw = out_w, rh = out_h, x0 = 0, y0 = 0; /* resized size; crop or paste offset */
    if (pre->resize == MQ_RESIZE_SHORTER) {
        double s = fmax((double)out_w / W, (double)out_h / H);
        if (pre->shorter_side)
            s = (double)pre->shorter_side / (W < H ? W : H);
        rw = iround(W * s) < out_w ? out_w : iround(W * s);
        rh = iround(H * s) < out_h ? out_h : iround(H * s);
        x0 = (rw - out_w) / 2;
        y0 = (rh - out_h) / 2;
        if (!pre->crop_center)
            x0 = y0 = 0;
    } else if (pre->resize == MQ_RESIZE_LETTERBOX) {
        double s = fmin((double)out_w / W, (double)out_h / H);
        rw = iround(W * s) < 1 ? 1 : iround(W * s);
        rh = iround(H * s) < 1 ? 1 : iround(H * s);
        if (rw > out_w)
            rw = out_w;
        if (rh > out_h)
            rh = out_h;
        x0 = (out_w - rw) / 2;
        y0 = (out_h - rh) / 2;
    }
    if (mq_image_resize(image, rw, rh, pre->filter, err))
        return MQ_ERR;
    int bgr = pre->color == MQ_COLOR_BGR;
    size_t plane = (size_t)out_w * (size_t)out_h;
    for (int c = 0; c < channels; c++) {
        int src_c = bgr ? channels - 1 - c : c;
        float scale = pre->scale;
        float mean = pre->mean[pre->n_mean == 1 ? 0 : c];
        float std = pre->std[pre->n_std == 1 ? 0 : c];
        float pad = (pre->pad_value * scale - mean) / std;
        for (int y = 0; y < out_h; y++) {
            for (int x = 0; x < out_w; x++) {
                float v = pad;
                int sx, sy;
                if (pre->resize == MQ_RESIZE_LETTERBOX) {
                    sx = x - x0;
                    sy = y - y0;
                } else {
                    sx = x + x0;
                    sy = y + y0;
                }
                if (sx >= 0 && sx < rw && sy >= 0 && sy < rh) {
                    uint8_t p = image->pixels[((size_t)sy * (size_t)rw + (size_t)sx) *
                                                  (size_t)channels + (size_t)src_c];
                    v = ((float)p * scale - mean) / std;
                }
                size_t at = nhwc ? ((size_t)y * (size_t)out_w + (size_t)x) * (size_t)channels +
                                       (size_t)c
                                 : (size_t)c * plane + (size_t)y * (size_t)out_w + (size_t)x;
                dst[at] = v;
            }
        }
    }
    return MQ_OK;
}
