/*
 * The sums over output positions of what each Conv kernel tap reads from one channel
 * (quant/conv_tap_sums.h), one spatial dim at a time.
 *
 * Per dim, the array [T, D, R] (T the taps of the dims done, D this dim's input rows, R the
 * dims to come, contiguous) becomes [T, K, R]: row k of the result is the sum of the input
 * rows tap k reads, o * stride + k * dilation - pad for each output position o inside the
 * input.  Summing those rows for every tap reads each input row about K times.  But the rows
 * a tap reads are all the rows of one residue class modulo the stride except a few at either
 * end (the pads' and the remainder's): so each class is summed once, and a tap that skips
 * fewer rows than it reads takes its class's total less the rows it skips.  A 3x3 Conv with
 * stride 1 then reads the plane about once for its first dim instead of three times.  The
 * subtraction rounds differently from the direct sum only in the last bits of a double.
 */
#include "quant/conv_tap_sums.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Strides up to this many classes use class totals; larger ones (rare) sum directly. */
#define MAX_CLASSES 16

int64_t mq_quant_conv_tap_scratch(const struct mq_quant_tap_geometry *g, int64_t limit)
{
    if (g->spatial < 1 || g->spatial > MQ_CONV_MAX_SPATIAL)
        return -1;
    int64_t size = 1;
    for (int d = 0; d < g->spatial; d++) {
        if (g->in[d] <= 0 || g->kernel[d] <= 0 || g->in[d] > limit / size)
            return -1;
        size *= g->in[d];
    }
    /* a kernel wider than the input makes a later array larger than the plane */
    int64_t biggest = size, r = size;
    for (int d = 0; d < g->spatial; d++) {
        r /= g->in[d];
        if (g->kernel[d] > limit / r)
            return -1;
        r *= g->kernel[d];
        biggest = r > biggest ? r : biggest;
    }
    /* two arrays and the class totals (at most D x R doubles: no larger than the array) */
    return biggest > limit / 3 ? -1 : biggest * 3;
}

/* n values as doubles, 0 for those that are not finite. */
static void widen_finite(const float *x, int64_t n, double *out)
{
    int64_t i = 0;
#ifdef __SSE2__
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_loadu_ps(x + i);
        v = _mm_and_ps(v, _mm_cmpeq_ps(_mm_sub_ps(v, v), _mm_setzero_ps())); /* NaN, inf: 0 */
        _mm_storeu_pd(out + i, _mm_cvtps_pd(v));
        _mm_storeu_pd(out + i + 2, _mm_cvtps_pd(_mm_movehl_ps(v, v)));
    }
#endif
    for (; i < n; i++)
        out[i] = isfinite(x[i]) ? (double)x[i] : 0.0;
}

/* dst[i] += src[i]: four independent statements a step, which -O2 makes vector adds. */
static void add_row(double *restrict dst, const double *restrict src, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        dst[i] += src[i];
        dst[i + 1] += src[i + 1];
        dst[i + 2] += src[i + 2];
        dst[i + 3] += src[i + 3];
    }
    for (; i < n; i++)
        dst[i] += src[i];
}

static void subtract_row(double *restrict dst, const double *restrict src, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        dst[i] -= src[i];
        dst[i + 1] -= src[i + 1];
        dst[i + 2] -= src[i + 2];
        dst[i + 3] -= src[i + 3];
    }
    for (; i < n; i++)
        dst[i] -= src[i];
}

/* dst = the sum of `count` rows (r doubles each) of a: row first, first + step, ..., in order. */
static void sum_rows(double *restrict dst, const double *restrict a, int64_t first, int64_t step,
                     int64_t count, int64_t r)
{
    if (r == 1) { /* the last dim: one value a row, summed in a register */
        double sum = 0.0;
        for (int64_t i = 0; i < count; i++)
            sum += a[first + i * step];
        dst[0] = sum;
        return;
    }
    memset(dst, 0, (size_t)r * sizeof *dst);
    for (int64_t i = 0; i < count; i++)
        add_row(dst, a + (first + i * step) * r, r);
}

/* dst -= the same rows as sum_rows, in order. */
static void subtract_rows(double *restrict dst, const double *restrict a, int64_t first,
                          int64_t step, int64_t count, int64_t r)
{
    if (r == 1) {
        double sum = dst[0];
        for (int64_t i = 0; i < count; i++)
            sum -= a[first + i * step];
        dst[0] = sum;
        return;
    }
    for (int64_t i = 0; i < count; i++)
        subtract_row(dst, a + (first + i * step) * r, r);
}

/* Which input rows one tap reads along a dim: `count` rows from `row`, `stride` apart. */
struct tap_rows {
    int64_t row, count;
};

static struct tap_rows tap_rows(const struct mq_quant_tap_geometry *g, int d, int64_t tap)
{
    int64_t stride = g->stride[d], dn = g->in[d];
    /* the output positions whose row o * stride + offset is inside */
    int64_t offset = tap * g->dilation[d] - g->pad[d];
    int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    int64_t last = dn - 1 - offset < 0 ? -1 : (dn - 1 - offset) / stride;
    if (last > g->out[d] - 1)
        last = g->out[d] - 1;
    struct tap_rows t = {first * stride + offset, last - first + 1};
    t.count = t.count > 0 ? t.count : 0;
    return t;
}

/* Contracts dim d: a, [n_before, D, r], becomes b, [n_before, K, r] (see the top). */
static void contract_dim(const struct mq_quant_tap_geometry *g, int d, const double *a,
                         double *b, double *classes, int64_t n_before, int64_t r)
{
    int64_t dn = g->in[d], kd = g->kernel[d], stride = g->stride[d];
    int use_classes = stride <= MAX_CLASSES && stride <= dn;
    /* a class total pays off only where two taps or more share it */
    int64_t sharing[MAX_CLASSES] = {0};
    for (int64_t tap = 0; use_classes && tap < kd; tap++) {
        struct tap_rows t = tap_rows(g, d, tap);
        if (t.count > 0)
            sharing[t.row % stride]++;
    }
    for (int64_t before = 0; before < n_before; before++) {
        const double *src = a + before * dn * r;
        int have[MAX_CLASSES] = {0};
        for (int64_t tap = 0; tap < kd; tap++) {
            double *dst = b + (before * kd + tap) * r;
            struct tap_rows t = tap_rows(g, d, tap);
            if (use_classes && t.count > 0 && sharing[t.row % stride] > 1) {
                int64_t rho = t.row % stride, in_class = (dn - rho + stride - 1) / stride;
                int64_t below = t.row / stride, above = in_class - below - t.count;
                if (below + above < t.count) {
                    double *total = classes + rho * r;
                    if (!have[rho]) {
                        sum_rows(total, src, rho, stride, in_class, r);
                        have[rho] = 1;
                    }
                    memcpy(dst, total, (size_t)r * sizeof *dst);
                    subtract_rows(dst, src, rho, stride, below, r);
                    subtract_rows(dst, src, t.row + t.count * stride, stride, above, r);
                    continue;
                }
            }
            sum_rows(dst, src, t.row, stride, t.count, r);
        }
    }
}

void mq_quant_conv_tap_sums(const struct mq_quant_tap_geometry *g, const float *plane,
                            double *scratch, double *sums)
{
    int64_t size = 1, biggest = mq_quant_conv_tap_scratch(g, INT64_MAX) / 3;
    for (int d = 0; d < g->spatial; d++)
        size *= g->in[d];
    double *a = scratch, *b = scratch + biggest, *classes = scratch + 2 * biggest;
    widen_finite(plane, size, a);
    int64_t done_taps = 1, rest = size; /* the current array is [done_taps, rest] */
    for (int d = 0; d < g->spatial; d++) {
        int64_t r = rest / g->in[d];
        contract_dim(g, d, a, b, classes, done_taps, r);
        double *swap = a;
        a = b;
        b = swap;
        done_taps *= g->kernel[d];
        rest = r;
    }
    for (int64_t tap = 0; tap < done_taps; tap++)
        sums[tap] += a[tap];
}
