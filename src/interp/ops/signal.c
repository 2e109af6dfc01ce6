/*
 * Signal processing operators (opset 17+): DFT, STFT, the Hann, Hamming and
 * Blackman windows and MelWeightMatrix.
 *
 * Transforms are computed in double.  Power-of-two lengths use a radix-2
 * FFT; short other lengths a direct DFT whose twiddles come from one table
 * indexed by (n * k) mod length; longer ones Bluestein's algorithm, which
 * turns the DFT into a convolution computed with power-of-two FFTs, so
 * lengths like 400 (a common audio frame) stay O(n log n).
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

#define SIGNAL_PI 3.14159265358979323846
/* Above this length a non-power-of-two transform goes through Bluestein. */
#define DIRECT_DFT_MAX 64

/* Work buffers for transforms of one length and direction. */
struct dft_plan {
    int64_t len;
    int inverse;
    enum { DFT_FFT, DFT_DIRECT, DFT_BLUESTEIN } kind;
    int64_t m;             /* FFT size: len, or the Bluestein convolution size */
    double *cos_t, *sin_t; /* cos/sin(2 pi k / m), k < m (k < len for the direct DFT) */
    double *re, *im;       /* the line being transformed: max(len, m) each */
    double *ore, *oim;     /* direct DFT output, or Bluestein's chirp-filter spectrum */
    double *chirp_re, *chirp_im; /* Bluestein: exp(sign i pi n^2 / len), n < len */
    double *buf;
    int64_t buf_count;
};

static void dft_plan_free(struct dft_plan *p)
{
    mq_scratch_free(p->buf, p->buf_count, sizeof(double));
    p->buf = NULL;
}

/* In-place radix-2 FFT of length m (a power of two); sign -1 forward, +1 inverse (unscaled). */
static void fft_pow2(double *re, double *im, int64_t m, const double *cos_t, const double *sin_t,
                     double sign)
{
    for (int64_t i = 1, j = 0; i < m; i++) {
        int64_t bit = m >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
    }
    for (int64_t size = 2; size <= m; size <<= 1) {
        int64_t half = size >> 1, tstep = m / size;
        for (int64_t start = 0; start < m; start += size)
            for (int64_t k = 0; k < half; k++) {
                double wr = cos_t[k * tstep], wi = sign * sin_t[k * tstep];
                int64_t a = start + k, b = a + half;
                double xr = re[b] * wr - im[b] * wi;
                double xi = re[b] * wi + im[b] * wr;
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
    }
}

static int dft_plan_init(const struct mq_kernel_node *node, struct dft_plan *p, int64_t len,
                         int inverse, struct mq_error *err)
{
    memset(p, 0, sizeof *p);
    p->len = len;
    p->inverse = inverse;
    if (len < 1 || len > (INT64_C(1) << 40))
        return misc_fail(node, err, "DFT length %lld is out of range", (long long)len);
    int pow2 = (len & (len - 1)) == 0;
    p->kind = pow2 ? DFT_FFT : len <= DIRECT_DFT_MAX ? DFT_DIRECT : DFT_BLUESTEIN;
    p->m = len;
    if (p->kind == DFT_BLUESTEIN)
        for (p->m = 1; p->m < 2 * len - 1; p->m <<= 1) {
        }
    int64_t m = p->m;
    /* tables (2m), line (2m), spectrum or direct output (2m), chirp (2 len) */
    p->buf_count = 6 * m + 2 * len;
    p->buf = mq_scratch_alloc(node, p->buf_count, sizeof(double), err);
    if (!p->buf)
        return MQ_ERR;
    p->cos_t = p->buf;
    p->sin_t = p->cos_t + m;
    p->re = p->sin_t + m;
    p->im = p->re + m;
    p->ore = p->im + m;
    p->oim = p->ore + m;
    p->chirp_re = p->oim + m;
    p->chirp_im = p->chirp_re + len;
    for (int64_t k = 0; k < m; k++) {
        double a = 2.0 * SIGNAL_PI * (double)k / (double)m;
        p->cos_t[k] = cos(a);
        p->sin_t[k] = sin(a);
    }
    if (p->kind != DFT_BLUESTEIN)
        return MQ_OK;
    /*
     * With kn = (k^2 + n^2 - (k-n)^2) / 2 the transform becomes
     * X[k] = w[k] sum_n (x[n] w[n]) conj(w[k-n]), w[n] = exp(sign i pi n^2 / len):
     * a convolution with the chirp conj(w), whose spectrum is computed here.
     * n^2 is kept reduced mod 2 len (stepping by 2n + 1) so the angle stays
     * exact for long lines.
     */
    double sign = inverse ? 1.0 : -1.0;
    for (int64_t n = 0, q = 0; n < len; n++) {
        double a = SIGNAL_PI * (double)q / (double)len;
        p->chirp_re[n] = cos(a);
        p->chirp_im[n] = sign * sin(a);
        q = (q + 2 * n + 1) % (2 * len);
    }
    memset(p->ore, 0, sizeof(double) * 2 * (size_t)m);
    for (int64_t n = 0; n < len; n++) {
        p->ore[n] = p->chirp_re[n];
        p->oim[n] = -p->chirp_im[n];
        if (n > 0) {
            p->ore[m - n] = p->chirp_re[n];
            p->oim[m - n] = -p->chirp_im[n];
        }
    }
    fft_pow2(p->ore, p->oim, m, p->cos_t, p->sin_t, -1.0);
    return MQ_OK;
}

/*
 * Transforms p->re/p->im (len values) in place: X[k] = sum_n x[n]
 * e^(sign 2 pi i k n / len), sign + for the inverse, which is also scaled
 * by 1/len.  Only the first n_out bins are guaranteed.
 */
static void dft_line(struct dft_plan *p, int64_t n_out)
{
    int64_t len = p->len, m = p->m;
    double sign = p->inverse ? 1.0 : -1.0;
    double *re = p->re, *im = p->im;
    if (p->kind == DFT_FFT) {
        fft_pow2(re, im, len, p->cos_t, p->sin_t, sign);
    } else if (p->kind == DFT_DIRECT) {
        double ore[DIRECT_DFT_MAX], oim[DIRECT_DFT_MAX];
        for (int64_t k = 0; k < n_out; k++) {
            double sr = 0.0, si = 0.0;
            int64_t t = 0; /* (n * k) mod len, advanced by k each step */
            for (int64_t n = 0; n < len; n++) {
                double wr = p->cos_t[t], wi = sign * p->sin_t[t];
                sr += re[n] * wr - im[n] * wi;
                si += re[n] * wi + im[n] * wr;
                t += k;
                if (t >= len)
                    t -= len;
            }
            ore[k] = sr;
            oim[k] = si;
        }
        memcpy(re, ore, sizeof(double) * (size_t)n_out);
        memcpy(im, oim, sizeof(double) * (size_t)n_out);
    } else {
        for (int64_t n = 0; n < len; n++) {
            double xr = re[n], xi = im[n];
            re[n] = xr * p->chirp_re[n] - xi * p->chirp_im[n];
            im[n] = xr * p->chirp_im[n] + xi * p->chirp_re[n];
        }
        for (int64_t n = len; n < m; n++)
            re[n] = im[n] = 0.0;
        fft_pow2(re, im, m, p->cos_t, p->sin_t, -1.0);
        for (int64_t k = 0; k < m; k++) {
            double ar = re[k], ai = im[k];
            re[k] = ar * p->ore[k] - ai * p->oim[k];
            im[k] = ar * p->oim[k] + ai * p->ore[k];
        }
        fft_pow2(re, im, m, p->cos_t, p->sin_t, 1.0);
        for (int64_t k = 0; k < n_out; k++) {
            double cr = re[k] / (double)m, ci = im[k] / (double)m;
            re[k] = cr * p->chirp_re[k] - ci * p->chirp_im[k];
            im[k] = cr * p->chirp_im[k] + ci * p->chirp_re[k];
        }
    }
    if (p->inverse)
        for (int64_t k = 0; k < n_out; k++) {
            re[k] /= (double)len;
            im[k] /= (double)len;
        }
}

/* ------------------------------------------------------------------- DFT */

struct dft_state {
    int axis_from_input; /* opset 20: axis is input 2 */
    int64_t axis;
    int inverse, onesided;
};

static int dft_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct dft_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    s->axis_from_input = node->opset >= 20;
    s->axis = s->axis_from_input ? -2 : mq_attr_int(node, "axis", 1);
    int64_t inverse = mq_attr_int(node, "inverse", 0);
    int64_t onesided = mq_attr_int(node, "onesided", 0);
    if ((inverse != 0 && inverse != 1) || (onesided != 0 && onesided != 1))
        return misc_fail(node, err, "attributes 'inverse' (%lld) and 'onesided' (%lld) must be "
                         "0 or 1", (long long)inverse, (long long)onesided);
    s->inverse = (int)inverse;
    s->onesided = (int)onesided;
    return MQ_OK;
}

static int dft_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct dft_state *s = node->state;
    const struct mq_tensor *x = inputs[0];
    if (!mq_dtype_is_float(x->dtype))
        return misc_fail(node, err, "input 'input' has type %s, expected a float type",
                         mq_dtype_name(x->dtype));
    int r = x->rank;
    if (r < 2 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
        return misc_fail(node, err, "input 'input' must have shape [..., N, 1] (real) or "
                         "[..., N, 2] (complex)");
    int64_t comps = x->dims[r - 1];
    int64_t axis = s->axis;
    if (s->axis_from_input && n_inputs > 2 && inputs[2] &&
        misc_scalar_int(node, inputs[2], "axis", &axis, err))
        return MQ_ERR;
    if (axis < 0)
        axis += r;
    if (axis < 0 || axis > r - 2)
        return misc_fail(node, err, "axis %lld is out of range for an input of rank %d (the last "
                         "dimension holds real and imaginary parts)", (long long)axis, r);
    /* The one-sided inverse takes the n = len/2 + 1 bins of a real signal's spectrum, fills in
       the rest as their conjugates and returns the real signal (len defaults to 2 (n - 1)). */
    int irfft = s->onesided && s->inverse;
    int64_t n = x->dims[axis], len = irfft ? 2 * (n - 1) : n;
    if (n_inputs > 1 && inputs[1]) {
        if (misc_scalar_int(node, inputs[1], "dft_length", &len, err))
            return MQ_ERR;
    }
    if (len < 1)
        return misc_fail(node, err, "dft_length is %lld, expected >= 1", (long long)len);
    if (s->onesided && !s->inverse && comps == 2)
        return misc_fail(node, err, "onesided=1 needs a real input (last dimension 1), the "
                         "input is complex");
    int64_t n_out = irfft ? len : s->onesided ? len / 2 + 1 : len;
    int64_t out_comps = irfft ? 1 : 2;
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = n_out;
    dims[r - 1] = out_comps;
    if (mq_tensor_alloc(&outputs[0], x->dtype, r, dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = (int)axis + 1; i < r - 1; i++)
        inner *= x->dims[i];
    double *in = mq_scratch_alloc(node, x->count, sizeof(double), err);
    double *out = in ? mq_scratch_alloc(node, outputs[0].count, sizeof(double), err) : NULL;
    struct dft_plan p = {0};
    if (!out || dft_plan_init(node, &p, len, s->inverse, err)) {
        mq_scratch_free(out, outputs[0].count, sizeof(double));
        mq_scratch_free(in, x->count, sizeof(double));
        return MQ_ERR;
    }
    mq_as_double_load(x, in);
    int64_t used = n < len ? n : len;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t t = 0; t < len; t++) {
                int64_t src = t, conj = 0;
                if (irfft && t >= used && len - t < used)
                    src = len - t, conj = 1; /* the upper half mirrors the lower */
                const double *v = in + ((o * n + src) * inner + i) * comps;
                int have = t < used || conj;
                p.re[t] = have ? v[0] : 0.0;
                p.im[t] = have && comps == 2 ? (conj ? -v[1] : v[1]) : 0.0;
            }
            dft_line(&p, n_out);
            for (int64_t k = 0; k < n_out; k++) {
                double *y = out + ((o * n_out + k) * inner + i) * out_comps;
                y[0] = p.re[k];
                if (out_comps == 2)
                    y[1] = p.im[k];
            }
        }
    mq_as_double_store(&outputs[0], out);
    dft_plan_free(&p);
    mq_scratch_free(out, outputs[0].count, sizeof(double));
    mq_scratch_free(in, x->count, sizeof(double));
    return MQ_OK;
}

/* ------------------------------------------------------------------ STFT */

struct stft_state {
    int onesided;
};

static int stft_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct stft_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    int64_t onesided = mq_attr_int(node, "onesided", 1);
    if (onesided != 0 && onesided != 1)
        return misc_fail(node, err, "attribute 'onesided' is %lld, expected 0 or 1",
                         (long long)onesided);
    s->onesided = (int)onesided;
    return MQ_OK;
}

static int stft_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct stft_state *s = node->state;
    const struct mq_tensor *x = inputs[0];
    const struct mq_tensor *window = n_inputs > 2 ? inputs[2] : NULL;
    if (!mq_dtype_is_float(x->dtype))
        return misc_fail(node, err, "input 'signal' has type %s, expected a float type",
                         mq_dtype_name(x->dtype));
    if (x->rank != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return misc_fail(node, err, "input 'signal' must have shape [batch, length, 1 or 2]");
    int64_t comps = x->dims[2], sig_len = x->dims[1], batch = x->dims[0];
    int64_t step = 0, frame_len = -1;
    if (n_inputs < 2 || misc_scalar_int(node, inputs[1], "frame_step", &step, err))
        return MQ_ERR;
    if (step < 1)
        return misc_fail(node, err, "frame_step is %lld, expected >= 1", (long long)step);
    if (window) {
        if (window->rank != 1 || !mq_dtype_is_float(window->dtype))
            return misc_fail(node, err, "input 'window' must be a 1-D float tensor");
        frame_len = window->dims[0];
    }
    if (n_inputs > 3 && inputs[3]) {
        int64_t fl = 0;
        if (misc_scalar_int(node, inputs[3], "frame_length", &fl, err))
            return MQ_ERR;
        if (window && fl != frame_len)
            return misc_fail(node, err, "frame_length %lld differs from the window length %lld",
                             (long long)fl, (long long)frame_len);
        frame_len = fl;
    }
    if (frame_len < 0)
        return misc_fail(node, err, "either 'window' or 'frame_length' must be given");
    if (frame_len < 1 || frame_len > sig_len)
        return misc_fail(node, err, "frame length %lld must be in [1, %lld] (the signal "
                         "length)", (long long)frame_len, (long long)sig_len);
    if (s->onesided && comps == 2)
        return misc_fail(node, err, "onesided=1 needs a real signal (last dimension 1), the "
                         "signal is complex");
    int64_t frames = (sig_len - frame_len) / step + 1;
    int64_t bins = s->onesided ? frame_len / 2 + 1 : frame_len;
    int64_t dims[4] = {batch, frames, bins, 2};
    if (mq_tensor_alloc(&outputs[0], x->dtype, 4, dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    double *in = mq_scratch_alloc(node, x->count + frame_len, sizeof(double), err);
    double *out = in ? mq_scratch_alloc(node, outputs[0].count, sizeof(double), err) : NULL;
    struct dft_plan p = {0};
    if (!out || dft_plan_init(node, &p, frame_len, 0, err)) {
        mq_scratch_free(out, outputs[0].count, sizeof(double));
        mq_scratch_free(in, x->count + frame_len, sizeof(double));
        return MQ_ERR;
    }
    double *w = in + x->count;
    mq_as_double_load(x, in);
    if (window)
        mq_as_double_load(window, w);
    else
        for (int64_t t = 0; t < frame_len; t++)
            w[t] = 1.0;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t f = 0; f < frames; f++) {
            const double *v = in + (b * sig_len + f * step) * comps;
            for (int64_t t = 0; t < frame_len; t++) {
                p.re[t] = v[t * comps] * w[t];
                p.im[t] = comps == 2 ? v[t * comps + 1] * w[t] : 0.0;
            }
            dft_line(&p, bins);
            double *y = out + (b * frames + f) * bins * 2;
            for (int64_t k = 0; k < bins; k++) {
                y[2 * k] = p.re[k];
                y[2 * k + 1] = p.im[k];
            }
        }
    mq_as_double_store(&outputs[0], out);
    dft_plan_free(&p);
    mq_scratch_free(out, outputs[0].count, sizeof(double));
    mq_scratch_free(in, x->count + frame_len, sizeof(double));
    return MQ_OK;
}

/* --------------------------------------------------------------- Windows */

enum { WINDOW_HANN, WINDOW_HAMMING, WINDOW_BLACKMAN };

struct window_state {
    int kind;
    int periodic;
    int dtype;
};

static int output_datatype(struct mq_kernel_node *node, int *dtype, struct mq_error *err)
{
    int64_t dt = mq_attr_int(node, "output_datatype", MQ_DTYPE_FLOAT);
    if (dt < 0 || dt > 64 || !mq_as_double_supported((int)dt) || dt == MQ_DTYPE_BOOL)
        return misc_fail(node, err, "attribute 'output_datatype' is %lld (%s), expected a "
                         "numeric tensor type", (long long)dt, mq_dtype_name((int)dt));
    *dtype = (int)dt;
    return MQ_OK;
}

static int window_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct window_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    s->kind = strcmp(node->op_type, "HannWindow") == 0      ? WINDOW_HANN
              : strcmp(node->op_type, "HammingWindow") == 0 ? WINDOW_HAMMING
                                                            : WINDOW_BLACKMAN;
    int64_t periodic = mq_attr_int(node, "periodic", 1);
    if (periodic != 0 && periodic != 1)
        return misc_fail(node, err, "attribute 'periodic' is %lld, expected 0 or 1",
                         (long long)periodic);
    s->periodic = (int)periodic;
    return output_datatype(node, &s->dtype, err);
}

static int window_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct window_state *s = node->state;
    int64_t size = 0;
    if (misc_scalar_int(node, inputs[0], "size", &size, err))
        return MQ_ERR;
    if (size < 0)
        return misc_fail(node, err, "size is %lld, expected >= 0", (long long)size);
    if (mq_tensor_alloc(&outputs[0], s->dtype, 1, &size, node->name, err))
        return MQ_ERR;
    double *w = mq_scratch_alloc(node, size, sizeof(double), err);
    if (!w)
        return MQ_ERR;
    /* A symmetric window spans size - 1 intervals; guard the one-sample case. */
    double span = s->periodic ? (double)size : (double)(size - 1);
    if (span <= 0.0)
        span = 1.0;
    for (int64_t n = 0; n < size; n++) {
        double a = 2.0 * SIGNAL_PI * (double)n / span;
        switch (s->kind) {
        case WINDOW_HANN:
            w[n] = 0.5 - 0.5 * cos(a);
            break;
        case WINDOW_HAMMING:
            w[n] = 25.0 / 46.0 - 21.0 / 46.0 * cos(a);
            break;
        default:
            w[n] = 0.42 - 0.5 * cos(a) + 0.08 * cos(2.0 * a);
            break;
        }
    }
    mq_as_double_store(&outputs[0], w);
    mq_scratch_free(w, size, sizeof(double));
    return MQ_OK;
}

/* ------------------------------------------------------- MelWeightMatrix */

struct mel_state {
    int dtype;
};

static int mel_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct mel_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    return output_datatype(node, &s->dtype, err);
}

static double hz_to_mel(double hz) { return 2595.0 * log10(1.0 + hz / 700.0); }
static double mel_to_hz(double mel) { return 700.0 * (pow(10.0, mel / 2595.0) - 1.0); }

/*
 * Triangular filters between mel-spaced edges, each edge rounded down to a
 * spectrogram bin: floor((dft_length + 1) * hz / sample_rate).  The mel
 * range is split into num_mel_bins + 2 steps, as the ONNX reference and
 * onnxruntime do.
 */
static int mel_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mel_state *s = node->state;
    int64_t n_mel = 0, dft_len = 0, rate = 0;
    double lower = 0.0, upper = 0.0;
    if (n_inputs < 5 || misc_scalar_int(node, inputs[0], "num_mel_bins", &n_mel, err) ||
        misc_scalar_int(node, inputs[1], "dft_length", &dft_len, err) ||
        misc_scalar_int(node, inputs[2], "sample_rate", &rate, err) ||
        misc_scalar_float(node, inputs[3], "lower_edge_hertz", &lower, err) ||
        misc_scalar_float(node, inputs[4], "upper_edge_hertz", &upper, err))
        return n_inputs < 5 ? misc_fail(node, err, "expected 5 inputs, got %d", n_inputs)
                            : MQ_ERR;
    if (n_mel < 1 || dft_len < 1 || rate < 1)
        return misc_fail(node, err, "num_mel_bins (%lld), dft_length (%lld) and sample_rate "
                         "(%lld) must be positive", (long long)n_mel, (long long)dft_len,
                         (long long)rate);
    if (!(lower >= 0.0) || !(upper >= lower) || !isfinite(upper))
        return misc_fail(node, err, "need 0 <= lower_edge_hertz (%g) <= upper_edge_hertz (%g)",
                         lower, upper);
    if (n_mel > INT64_MAX / 4)
        return misc_fail(node, err, "num_mel_bins %lld is too large", (long long)n_mel);
    int64_t bins = dft_len / 2 + 1;
    int64_t dims[2] = {bins, n_mel};
    if (mq_tensor_alloc(&outputs[0], s->dtype, 2, dims, node->name, err))
        return MQ_ERR;
    int64_t n_edges = n_mel + 2;
    int64_t *edge = mq_scratch_alloc(node, n_edges, sizeof(int64_t), err);
    double *m = edge ? mq_scratch_alloc(node, outputs[0].count, sizeof(double), err) : NULL;
    if (!m) {
        mq_scratch_free(edge, n_edges, sizeof(int64_t));
        return MQ_ERR;
    }
    memset(m, 0, sizeof(double) * (size_t)outputs[0].count);
    double low_mel = hz_to_mel(lower), high_mel = hz_to_mel(upper);
    double step = (high_mel - low_mel) / (double)n_edges;
    for (int64_t i = 0; i < n_edges; i++) {
        double hz = mel_to_hz((double)i * step + low_mel);
        double e = floor((double)(dft_len + 1) * hz / (double)rate);
        /* Edges past the last bin only matter as "beyond it": keep the cast in range. */
        edge[i] = e > (double)bins + 1.0 ? bins + 1 : (int64_t)e;
    }
    /* Edges past the last bin (upper_edge_hertz above Nyquist) are dropped. */
    for (int64_t i = 0; i < n_mel; i++) {
        int64_t lo = edge[i], c = edge[i + 1], hi = edge[i + 2];
        if (c == lo) {
            if (c >= 0 && c < bins)
                m[c * n_mel + i] = 1.0;
        } else {
            for (int64_t j = lo; j <= c; j++)
                if (j >= 0 && j < bins)
                    m[j * n_mel + i] = (double)(j - lo) / (double)(c - lo);
        }
        for (int64_t j = c; j < hi; j++)
            if (j >= 0 && j < bins)
                m[j * n_mel + i] = (double)(hi - j) / (double)(hi - c);
    }
    mq_as_double_store(&outputs[0], m);
    mq_scratch_free(m, outputs[0].count, sizeof(double));
    mq_scratch_free(edge, n_edges, sizeof(int64_t));
    return MQ_OK;
}

const struct mq_kernel mq_kernels_signal[] = {
    /* 20 moved 'axis' from an attribute to input 2 and changed its default to -2. */
    {"", "DFT", 17, 19, dft_prepare, dft_run, free},
    {"", "DFT", 20, 0, dft_prepare, dft_run, free},
    {"", "STFT", 17, 0, stft_prepare, stft_run, free},
    {"", "HannWindow", 17, 0, window_prepare, window_run, free},
    {"", "HammingWindow", 17, 0, window_prepare, window_run, free},
    {"", "BlackmanWindow", 17, 0, window_prepare, window_run, free},
    {"", "MelWeightMatrix", 17, 0, mel_prepare, mel_run, free},
    {0},
};
