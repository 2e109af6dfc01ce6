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
#include "util/cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define HAVE_AVX2_PATH 1
#include <immintrin.h>
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

/*
 * A source of rows: the plane's floats (the first dim) or an earlier dim's doubles.  Floats
 * are read as they are, or with values that are not finite read as 0 (`finite`): a plane is
 * first summed as it is, which costs less, and again with the masking only when a sum comes
 * out not finite (a sum of finite floats in doubles cannot overflow).
 */
struct rows {
    const float *f; /* NULL: d */
    const double *d;
    int finite;
};

/* v as a double; with `finite`, 0 when it is not finite. */
static double float_value(float v, int finite)
{
    return !finite || isfinite(v) ? (double)v : 0.0;
}

/* dst[i] += sign * src[i] (sign 1 or -1); with `finite`, 0 for values that are not finite. */
static void add_row_floats(double *restrict dst, const float *restrict src, int64_t n, int sign,
                           int finite)
{
    int64_t i = 0;
#ifdef __SSE2__
    const __m128 flip = _mm_set1_ps(sign < 0 ? -0.0f : 0.0f);
    const __m128 keep = _mm_castsi128_ps(_mm_set1_epi32(finite ? 0 : -1));
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_xor_ps(_mm_loadu_ps(src + i), flip);
        /* NaN, inf: 0 unless kept */
        v = _mm_and_ps(v, _mm_or_ps(keep, _mm_cmpeq_ps(_mm_sub_ps(v, v), _mm_setzero_ps())));
        _mm_storeu_pd(dst + i, _mm_add_pd(_mm_loadu_pd(dst + i), _mm_cvtps_pd(v)));
        _mm_storeu_pd(dst + i + 2,
                      _mm_add_pd(_mm_loadu_pd(dst + i + 2), _mm_cvtps_pd(_mm_movehl_ps(v, v))));
    }
#endif
    for (; i < n; i++)
        dst[i] += float_value(sign < 0 ? -src[i] : src[i], finite);
}

/* dst[i] += sign * src[i]: four independent statements a step, which -O2 makes vector adds. */
static void add_row(double *restrict dst, const double *restrict src, int64_t n, int sign)
{
    int64_t i = 0;
    if (sign < 0) {
        for (; i + 4 <= n; i += 4) {
            dst[i] -= src[i];
            dst[i + 1] -= src[i + 1];
            dst[i + 2] -= src[i + 2];
            dst[i + 3] -= src[i + 3];
        }
        for (; i < n; i++)
            dst[i] -= src[i];
        return;
    }
    for (; i + 4 <= n; i += 4) {
        dst[i] += src[i];
        dst[i + 1] += src[i + 1];
        dst[i + 2] += src[i + 2];
        dst[i + 3] += src[i + 3];
    }
    for (; i < n; i++)
        dst[i] += src[i];
}

static double value_at(struct rows a, int64_t i)
{
    return a.f ? float_value(a.f[i], a.finite) : a.d[i];
}

/* The sum of a[first], a[first + step], ... (count of them): four running sums, one chain
   would wait on the latency of each add. */
static double sum_values(struct rows a, int64_t first, int64_t step, int64_t count)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) {
        int64_t at = first + i * step;
        s0 += value_at(a, at);
        s1 += value_at(a, at + step);
        s2 += value_at(a, at + 2 * step);
        s3 += value_at(a, at + 3 * step);
    }
    for (; i < count; i++)
        s0 += value_at(a, first + i * step);
    return (s0 + s1) + (s2 + s3);
}

#if HAVE_AVX2_PATH
/* Four columns' running sums: the next four floats of the row, widened, added. */
#define ADD4(sum, at) sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm_loadu_ps(col + (at))))

/*
 * sum_float_rows without masking, 32, 16, then 8 columns at a time in registers of four
 * doubles; returns the columns done.  Thirty-two columns keep eight adds in flight a row,
 * enough that the adds' latency no longer bounds the loop (the SSE2 loop's sixteen columns,
 * eight adds of two, waited on it).  Each column adds its rows in order as the SSE2 loop
 * does: the same doubles.
 */
__attribute__((target("avx2"))) static int64_t
sum_float_rows_avx2(double *restrict dst, const float *restrict x, int64_t pitch, int64_t count,
                    int64_t r)
{
    int64_t j = 0;
    for (; j + 32 <= r; j += 32) {
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0;
        __m256d s6 = s0, s7 = s0;
        const float *col = x + j;
        for (int64_t i = 0; i < count; i++, col += pitch) {
            ADD4(s0, 0), ADD4(s1, 4), ADD4(s2, 8), ADD4(s3, 12);
            ADD4(s4, 16), ADD4(s5, 20), ADD4(s6, 24), ADD4(s7, 28);
        }
        _mm256_storeu_pd(dst + j, s0);
        _mm256_storeu_pd(dst + j + 4, s1);
        _mm256_storeu_pd(dst + j + 8, s2);
        _mm256_storeu_pd(dst + j + 12, s3);
        _mm256_storeu_pd(dst + j + 16, s4);
        _mm256_storeu_pd(dst + j + 20, s5);
        _mm256_storeu_pd(dst + j + 24, s6);
        _mm256_storeu_pd(dst + j + 28, s7);
    }
    for (; j + 16 <= r; j += 16) {
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        const float *col = x + j;
        for (int64_t i = 0; i < count; i++, col += pitch)
            ADD4(s0, 0), ADD4(s1, 4), ADD4(s2, 8), ADD4(s3, 12);
        _mm256_storeu_pd(dst + j, s0);
        _mm256_storeu_pd(dst + j + 4, s1);
        _mm256_storeu_pd(dst + j + 8, s2);
        _mm256_storeu_pd(dst + j + 12, s3);
    }
    for (; j + 8 <= r; j += 8) {
        __m256d s0 = _mm256_setzero_pd(), s1 = s0;
        const float *col = x + j;
        for (int64_t i = 0; i < count; i++, col += pitch)
            ADD4(s0, 0), ADD4(s1, 4);
        _mm256_storeu_pd(dst + j, s0);
        _mm256_storeu_pd(dst + j + 4, s1);
    }
    return j;
}
#undef ADD4

#endif

/*
 * dst[j] = the sum over i < count of x[i * pitch + j] (with `finite`, 0 for values that are
 * not finite), for j < r, each in row order: sixteen columns at a time held in registers down
 * all the rows, not a row of sums loaded and stored for every row; eight running sums, so
 * that the latency of an add is not what bounds the loop.
 */
static void sum_float_rows(double *restrict dst, const float *restrict x, int64_t pitch,
                           int64_t count, int64_t r, int finite)
{
    int64_t j = 0;
#if HAVE_AVX2_PATH
    if (!finite && mq_cpu_level() >= MQ_CPU_AVX2)
        j = sum_float_rows_avx2(dst, x, pitch, count, r);
#endif
#ifdef __SSE2__
    for (; !finite && j + 16 <= r; j += 16) {
        __m128d s0 = _mm_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0;
        __m128d s7 = s0;
        const float *col = x + j;
        for (int64_t i = 0; i < count; i++, col += pitch) {
            __m128 a = _mm_loadu_ps(col), b = _mm_loadu_ps(col + 4);
            __m128 c = _mm_loadu_ps(col + 8), d = _mm_loadu_ps(col + 12);
            s0 = _mm_add_pd(s0, _mm_cvtps_pd(a));
            s1 = _mm_add_pd(s1, _mm_cvtps_pd(_mm_movehl_ps(a, a)));
            s2 = _mm_add_pd(s2, _mm_cvtps_pd(b));
            s3 = _mm_add_pd(s3, _mm_cvtps_pd(_mm_movehl_ps(b, b)));
            s4 = _mm_add_pd(s4, _mm_cvtps_pd(c));
            s5 = _mm_add_pd(s5, _mm_cvtps_pd(_mm_movehl_ps(c, c)));
            s6 = _mm_add_pd(s6, _mm_cvtps_pd(d));
            s7 = _mm_add_pd(s7, _mm_cvtps_pd(_mm_movehl_ps(d, d)));
        }
        _mm_storeu_pd(dst + j, s0);
        _mm_storeu_pd(dst + j + 2, s1);
        _mm_storeu_pd(dst + j + 4, s2);
        _mm_storeu_pd(dst + j + 6, s3);
        _mm_storeu_pd(dst + j + 8, s4);
        _mm_storeu_pd(dst + j + 10, s5);
        _mm_storeu_pd(dst + j + 12, s6);
        _mm_storeu_pd(dst + j + 14, s7);
    }
    const __m128 zero = _mm_setzero_ps();
    const __m128 keep = _mm_castsi128_ps(_mm_set1_epi32(finite ? 0 : -1));
    for (; j + 8 <= r; j += 8) {
        __m128d s0 = _mm_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        const float *col = x + j;
        for (int64_t i = 0; i < count; i++, col += pitch) {
            __m128 a = _mm_loadu_ps(col), b = _mm_loadu_ps(col + 4);
            /* NaN, inf: 0 unless kept */
            a = _mm_and_ps(a, _mm_or_ps(keep, _mm_cmpeq_ps(_mm_sub_ps(a, a), zero)));
            b = _mm_and_ps(b, _mm_or_ps(keep, _mm_cmpeq_ps(_mm_sub_ps(b, b), zero)));
            s0 = _mm_add_pd(s0, _mm_cvtps_pd(a));
            s1 = _mm_add_pd(s1, _mm_cvtps_pd(_mm_movehl_ps(a, a)));
            s2 = _mm_add_pd(s2, _mm_cvtps_pd(b));
            s3 = _mm_add_pd(s3, _mm_cvtps_pd(_mm_movehl_ps(b, b)));
        }
        _mm_storeu_pd(dst + j, s0);
        _mm_storeu_pd(dst + j + 2, s1);
        _mm_storeu_pd(dst + j + 4, s2);
        _mm_storeu_pd(dst + j + 6, s3);
    }
    for (; j + 4 <= r; j += 4) {
        __m128d s0 = _mm_setzero_pd(), s1 = s0;
        const float *col = x + j;
        for (int64_t i = 0; i < count; i++, col += pitch) {
            __m128 a = _mm_loadu_ps(col);
            a = _mm_and_ps(a, _mm_or_ps(keep, _mm_cmpeq_ps(_mm_sub_ps(a, a), zero)));
            s0 = _mm_add_pd(s0, _mm_cvtps_pd(a));
            s1 = _mm_add_pd(s1, _mm_cvtps_pd(_mm_movehl_ps(a, a)));
        }
        _mm_storeu_pd(dst + j, s0);
        _mm_storeu_pd(dst + j + 2, s1);
    }
#endif
    /* the last columns (up to three where SSE2 is there), side by side down the rows */
    for (; j < r; j += 4) {
        int64_t n = r - j < 4 ? r - j : 4;
        double s[4] = {0.0, 0.0, 0.0, 0.0}, s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        const float *col = x + j;
        for (int64_t i = 0; i < count; i++, col += pitch) {
            s0 += float_value(col[0], finite);
            if (n > 1)
                s1 += float_value(col[1], finite);
            if (n > 2)
                s2 += float_value(col[2], finite);
            if (n > 3)
                s3 += float_value(col[3], finite);
        }
        s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
        memcpy(dst + j, s, (size_t)n * sizeof *dst);
    }
}

/* dst = the sum of `count` rows (r values each) of a: row first, first + step, ..., in order. */
static void sum_rows(double *restrict dst, struct rows a, int64_t first, int64_t step,
                     int64_t count, int64_t r)
{
    if (r == 1) { /* the last dim: one value a row */
        dst[0] = sum_values(a, first, step, count);
        return;
    }
    if (a.f) {
        sum_float_rows(dst, a.f + first * r, step * r, count, r, a.finite);
        return;
    }
    memset(dst, 0, (size_t)r * sizeof *dst);
    for (int64_t i = 0; i < count; i++)
        add_row(dst, a.d + (first + i * step) * r, r, 1);
}

/* dst -= the rows sum_rows would add, one at a time (a - b is a + -b, exactly). */
static void subtract_rows(double *restrict dst, struct rows a, int64_t first, int64_t step,
                          int64_t count, int64_t r)
{
    if (r == 1) {
        for (int64_t i = 0; i < count; i++)
            dst[0] -= value_at(a, first + i * step);
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t at = (first + i * step) * r;
        if (a.f)
            add_row_floats(dst, a.f + at, r, -1, a.finite);
        else
            add_row(dst, a.d + at, r, -1);
    }
}

/* How one tap of a dim is summed: `count` input rows from `row`, `stride` apart; or, with
   `rho` >= 0, the total of class rho (its `in_class` rows) less `below` rows before those and
   `above` after. */
struct tap_plan {
    int64_t row, count, below, above;
    int64_t rho, in_class;
};

static struct tap_plan plan_tap(const struct mq_quant_tap_geometry *g, int d, int64_t tap,
                                const int64_t *sharing)
{
    int64_t stride = g->stride[d], dn = g->in[d];
    /* the output positions whose row o * stride + offset is inside */
    int64_t offset = tap * g->dilation[d] - g->pad[d];
    int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    int64_t last = dn - 1 - offset < 0 ? -1 : (dn - 1 - offset) / stride;
    if (last > g->out[d] - 1)
        last = g->out[d] - 1;
    struct tap_plan t = {first * stride + offset, last - first + 1, 0, 0, -1, 0};
    if (t.count <= 0) {
        t.count = 0;
        return t;
    }
    /* a class total pays off only where two taps or more share it and a tap skips fewer rows
       than it reads */
    if (sharing && sharing[t.row % stride] > 1) {
        int64_t rho = t.row % stride, in_class = (dn - rho + stride - 1) / stride;
        int64_t below = t.row / stride, above = in_class - below - t.count;
        if (below + above < t.count) {
            t.below = below;
            t.above = above;
            t.rho = rho;
            t.in_class = in_class;
        }
    }
    return t;
}

/* The plans of dim d's taps into plans[0 .. kernel-1]. */
static void plan_dim(const struct mq_quant_tap_geometry *g, int d, struct tap_plan *plans)
{
    int64_t kd = g->kernel[d], stride = g->stride[d];
    int64_t sharing[MAX_CLASSES] = {0};
    int use_classes = stride <= MAX_CLASSES && stride <= g->in[d];
    for (int64_t tap = 0; use_classes && tap < kd; tap++) {
        struct tap_plan t = plan_tap(g, d, tap, NULL);
        if (t.count > 0)
            sharing[t.row % stride]++;
    }
    for (int64_t tap = 0; tap < kd; tap++)
        plans[tap] = plan_tap(g, d, tap, use_classes ? sharing : NULL);
}

/* Contracts dim d: a, [n_before, D, r], becomes b, [n_before, K, r] (see the top). */
static void contract_dim(const struct mq_quant_tap_geometry *g, int d,
                         const struct tap_plan *plans, struct rows a, double *b,
                         double *classes, int64_t n_before, int64_t r)
{
    int64_t dn = g->in[d], kd = g->kernel[d], stride = g->stride[d];
    for (int64_t before = 0; before < n_before; before++) {
        struct rows src = a;
        if (src.f)
            src.f += before * dn * r;
        else
            src.d += before * dn * r;
        int have[MAX_CLASSES] = {0};
        for (int64_t tap = 0; tap < kd; tap++) {
            double *dst = b + (before * kd + tap) * r;
            const struct tap_plan *t = &plans[tap];
            if (t->rho < 0) {
                sum_rows(dst, src, t->row, stride, t->count, r);
                continue;
            }
            double *total = classes + t->rho * r;
            if (!have[t->rho]) {
                sum_rows(total, src, t->rho, stride, t->in_class, r);
                have[t->rho] = 1;
            }
            if (r == 1) /* the last dim, where planes are small and calls add up */
                dst[0] = total[0];
            else
                memcpy(dst, total, (size_t)r * sizeof *dst);
            subtract_rows(dst, src, t->rho, stride, t->below, r);
            subtract_rows(dst, src, t->row + t->count * stride, stride, t->above, r);
        }
    }
}

int mq_quant_conv_tap_sums(const struct mq_quant_tap_geometry *g, const float *planes,
                           int64_t n_planes, double *scratch, double *sums)
{
    int64_t size = 1, taps = 1, biggest = mq_quant_conv_tap_scratch(g, INT64_MAX) / 3;
    int64_t plan_at[MQ_CONV_MAX_SPATIAL + 1] = {0};
    for (int d = 0; d < g->spatial; d++) {
        size *= g->in[d];
        taps *= g->kernel[d];
        plan_at[d + 1] = plan_at[d] + g->kernel[d];
    }
    struct tap_plan *plans = malloc((size_t)plan_at[g->spatial] * sizeof *plans);
    if (!plans)
        return -1;
    for (int d = 0; d < g->spatial; d++)
        plan_dim(g, d, plans + plan_at[d]);
    for (int64_t p = 0; p < n_planes; p++) {
        const double *got = NULL;
        for (int finite = 0; finite < 2 && !got; finite++) {
            struct rows a = {planes + p * size, NULL, finite};
            double *out = scratch, *spare = scratch + biggest, *classes = scratch + 2 * biggest;
            int64_t done_taps = 1, rest = size; /* the current array is [done_taps, rest] */
            for (int d = 0; d < g->spatial; d++) {
                int64_t r = rest / g->in[d];
                contract_dim(g, d, plans + plan_at[d], a, out, classes, done_taps, r);
                a = (struct rows){NULL, out, finite};
                out = out == scratch ? spare : scratch;
                done_taps *= g->kernel[d];
                rest = r;
            }
            got = a.d;
            for (int64_t tap = 0; !finite && tap < taps; tap++)
                if (!isfinite(got[tap])) { /* a value not finite: again, reading it as 0 */
                    got = NULL;
                    break;
                }
        }
        for (int64_t tap = 0; tap < taps; tap++)
            sums[p * taps + tap] += got[tap];
    }
    free(plans);
    return 0;
}
