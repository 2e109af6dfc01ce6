/*
 * The error sums of a float32 sample against its reference in eight fixed lanes, with an AVX2
 * path picked at run time, an SSE2 path and a plain C one that all give the same bits (see
 * error_sums.h).
 *
 * A pair with a NaN or an infinity on either side enters no sum: the vector paths zero both of
 * its values, whose products then add +0.0, which leaves a lane unchanged (a lane starts at
 * +0.0 and a round-to-nearest sum that starts there never becomes -0.0), exactly as the plain
 * loop skipping it does.  Such pairs are rare, so the vector paths count them one by one in the
 * step that holds them.
 */
#include "report/error_sums.h"
#include "util/cpu.h"

#include <math.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define HAVE_AVX2_PATH 1
#include <immintrin.h>
#endif

#define LANES MQ_ERROR_SUM_LANES

/* How many values ahead the vector loops ask for the next cache line of each side.  The
   reference is usually a copy made while the other model ran, long out of cache: waiting for
   it roughly doubled the time of a layer's comparison (0.7 against 1.2 ns a value on tensors
   read cold), which the hardware's own prefetching did not hide. */
#define PREFETCH_AHEAD 512

/* The running sums, lane by lane, while a sample is read. */
struct lanes {
    double ref2[LANES], test2[LANES], dot[LANES], err2[LANES];
    double max_abs_error;
    int64_t nonfinite_equal, nonfinite_mismatch;
};

/* Counts a pair with a NaN or an infinity on either side; returns whether it was one. */
static int count_nonfinite(float r, float t, struct lanes *l)
{
    if (isfinite(r) && isfinite(t))
        return 0;
    if ((isnan(r) && isnan(t)) || r == t)
        l->nonfinite_equal++;
    else
        l->nonfinite_mismatch++;
    return 1;
}

/* Values [start, n) one at a time, each into lane i % LANES: the vector paths' tail. */
static void sums_scalar(const float *ref, const float *test, int64_t start, int64_t n,
                        struct lanes *l)
{
    for (int64_t i = start; i < n; i++) {
        if (count_nonfinite(ref[i], test[i], l))
            continue;
        double r = ref[i], t = test[i], e = t - r;
        int k = (int)(i % LANES);
        l->ref2[k] += r * r;
        l->test2[k] += t * t;
        l->dot[k] += r * t;
        l->err2[k] += e * e;
        if (fabs(e) > l->max_abs_error)
            l->max_abs_error = fabs(e);
    }
}

#if HAVE_AVX2_PATH
/* Eight values a step, lanes 0-3 and 4-7 in one register each; returns the values done. */
__attribute__((target("avx2"))) static int64_t sums_avx2(const float *ref, const float *test,
                                                         int64_t n, struct lanes *l)
{
    __m256d r2_lo = _mm256_loadu_pd(l->ref2), r2_hi = _mm256_loadu_pd(l->ref2 + 4);
    __m256d t2_lo = _mm256_loadu_pd(l->test2), t2_hi = _mm256_loadu_pd(l->test2 + 4);
    __m256d rt_lo = _mm256_loadu_pd(l->dot), rt_hi = _mm256_loadu_pd(l->dot + 4);
    __m256d e2_lo = _mm256_loadu_pd(l->err2), e2_hi = _mm256_loadu_pd(l->err2 + 4);
    __m256d max_abs = _mm256_set1_pd(l->max_abs_error);
    const __m256d sign = _mm256_set1_pd(-0.0);
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if ((i & 15) == 0 && i + PREFETCH_AHEAD < n) {
            _mm_prefetch((const char *)(ref + i + PREFETCH_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(test + i + PREFETCH_AHEAD), _MM_HINT_T0);
        }
        __m256 r = _mm256_loadu_ps(ref + i), t = _mm256_loadu_ps(test + i);
        /* x - x is 0 for a finite x, NaN for NaN and the infinities */
        __m256 finite = _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(r, r), zero, _CMP_EQ_OQ),
                                      _mm256_cmp_ps(_mm256_sub_ps(t, t), zero, _CMP_EQ_OQ));
        if (__builtin_expect(_mm256_movemask_ps(finite) != 0xff, 0)) {
            for (int k = 0; k < 8; k++)
                count_nonfinite(ref[i + k], test[i + k], l);
            r = _mm256_and_ps(r, finite);
            t = _mm256_and_ps(t, finite);
        }
        __m256d r_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(r));
        __m256d r_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1));
        __m256d t_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(t));
        __m256d t_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1));
        __m256d e_lo = _mm256_sub_pd(t_lo, r_lo), e_hi = _mm256_sub_pd(t_hi, r_hi);
        r2_lo = _mm256_add_pd(r2_lo, _mm256_mul_pd(r_lo, r_lo));
        r2_hi = _mm256_add_pd(r2_hi, _mm256_mul_pd(r_hi, r_hi));
        t2_lo = _mm256_add_pd(t2_lo, _mm256_mul_pd(t_lo, t_lo));
        t2_hi = _mm256_add_pd(t2_hi, _mm256_mul_pd(t_hi, t_hi));
        rt_lo = _mm256_add_pd(rt_lo, _mm256_mul_pd(r_lo, t_lo));
        rt_hi = _mm256_add_pd(rt_hi, _mm256_mul_pd(r_hi, t_hi));
        e2_lo = _mm256_add_pd(e2_lo, _mm256_mul_pd(e_lo, e_lo));
        e2_hi = _mm256_add_pd(e2_hi, _mm256_mul_pd(e_hi, e_hi));
        max_abs = _mm256_max_pd(max_abs, _mm256_andnot_pd(sign, e_lo));
        max_abs = _mm256_max_pd(max_abs, _mm256_andnot_pd(sign, e_hi));
    }
    _mm256_storeu_pd(l->ref2, r2_lo);
    _mm256_storeu_pd(l->ref2 + 4, r2_hi);
    _mm256_storeu_pd(l->test2, t2_lo);
    _mm256_storeu_pd(l->test2 + 4, t2_hi);
    _mm256_storeu_pd(l->dot, rt_lo);
    _mm256_storeu_pd(l->dot + 4, rt_hi);
    _mm256_storeu_pd(l->err2, e2_lo);
    _mm256_storeu_pd(l->err2 + 4, e2_hi);
    double m[4];
    _mm256_storeu_pd(m, max_abs);
    for (int k = 0; k < 4; k++)
        if (m[k] > l->max_abs_error)
            l->max_abs_error = m[k];
    return i;
}

#endif

#if defined(__SSE2__)
/* Eight values a step, lanes 0-1, 2-3, 4-5 and 6-7 in one register each; returns values done. */
static int64_t sums_sse2(const float *ref, const float *test, int64_t n, struct lanes *l)
{
    __m128d r2[4], t2[4], rt[4], e2[4];
    for (int k = 0; k < 4; k++) {
        r2[k] = _mm_loadu_pd(l->ref2 + 2 * k);
        t2[k] = _mm_loadu_pd(l->test2 + 2 * k);
        rt[k] = _mm_loadu_pd(l->dot + 2 * k);
        e2[k] = _mm_loadu_pd(l->err2 + 2 * k);
    }
    __m128d max_abs = _mm_set1_pd(l->max_abs_error);
    const __m128d sign = _mm_set1_pd(-0.0);
    const __m128 zero = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if ((i & 15) == 0 && i + PREFETCH_AHEAD < n) {
            _mm_prefetch((const char *)(ref + i + PREFETCH_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(test + i + PREFETCH_AHEAD), _MM_HINT_T0);
        }
        __m128 r_a = _mm_loadu_ps(ref + i), r_b = _mm_loadu_ps(ref + i + 4);
        __m128 t_a = _mm_loadu_ps(test + i), t_b = _mm_loadu_ps(test + i + 4);
        /* x - x is 0 for a finite x, NaN for NaN and the infinities */
        __m128 fin_a = _mm_and_ps(_mm_cmpeq_ps(_mm_sub_ps(r_a, r_a), zero),
                                  _mm_cmpeq_ps(_mm_sub_ps(t_a, t_a), zero));
        __m128 fin_b = _mm_and_ps(_mm_cmpeq_ps(_mm_sub_ps(r_b, r_b), zero),
                                  _mm_cmpeq_ps(_mm_sub_ps(t_b, t_b), zero));
        if (__builtin_expect((_mm_movemask_ps(fin_a) & _mm_movemask_ps(fin_b)) != 0xf, 0)) {
            for (int k = 0; k < 8; k++)
                count_nonfinite(ref[i + k], test[i + k], l);
            r_a = _mm_and_ps(r_a, fin_a);
            t_a = _mm_and_ps(t_a, fin_a);
            r_b = _mm_and_ps(r_b, fin_b);
            t_b = _mm_and_ps(t_b, fin_b);
        }
        __m128d r[4] = {_mm_cvtps_pd(r_a), _mm_cvtps_pd(_mm_movehl_ps(r_a, r_a)),
                        _mm_cvtps_pd(r_b), _mm_cvtps_pd(_mm_movehl_ps(r_b, r_b))};
        __m128d t[4] = {_mm_cvtps_pd(t_a), _mm_cvtps_pd(_mm_movehl_ps(t_a, t_a)),
                        _mm_cvtps_pd(t_b), _mm_cvtps_pd(_mm_movehl_ps(t_b, t_b))};
        for (int k = 0; k < 4; k++) {
            __m128d e = _mm_sub_pd(t[k], r[k]);
            r2[k] = _mm_add_pd(r2[k], _mm_mul_pd(r[k], r[k]));
            t2[k] = _mm_add_pd(t2[k], _mm_mul_pd(t[k], t[k]));
            rt[k] = _mm_add_pd(rt[k], _mm_mul_pd(r[k], t[k]));
            e2[k] = _mm_add_pd(e2[k], _mm_mul_pd(e, e));
            max_abs = _mm_max_pd(max_abs, _mm_andnot_pd(sign, e));
        }
    }
    for (int k = 0; k < 4; k++) {
        _mm_storeu_pd(l->ref2 + 2 * k, r2[k]);
        _mm_storeu_pd(l->test2 + 2 * k, t2[k]);
        _mm_storeu_pd(l->dot + 2 * k, rt[k]);
        _mm_storeu_pd(l->err2 + 2 * k, e2[k]);
    }
    double m[2];
    _mm_storeu_pd(m, max_abs);
    for (int k = 0; k < 2; k++)
        if (m[k] > l->max_abs_error)
            l->max_abs_error = m[k];
    return i;
}
#endif

/* The lanes in one fixed order: pairs, then pairs of pairs. */
static double combine(const double *lane)
{
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
           ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* The path asked for, or the next narrower one where this build or CPU lacks it. */
static enum mq_error_sums_path available(enum mq_error_sums_path path)
{
#if HAVE_AVX2_PATH
    if (path == MQ_ERROR_SUMS_AUTO || path == MQ_ERROR_SUMS_AVX2)
        path = mq_cpu_level() >= MQ_CPU_AVX2 ? MQ_ERROR_SUMS_AVX2 : MQ_ERROR_SUMS_SSE2;
#else
    if (path == MQ_ERROR_SUMS_AUTO || path == MQ_ERROR_SUMS_AVX2)
        path = MQ_ERROR_SUMS_SSE2;
#endif
#if !defined(__SSE2__)
    if (path == MQ_ERROR_SUMS_SSE2)
        path = MQ_ERROR_SUMS_SCALAR;
#endif
    return path;
}

enum mq_error_sums_path mq_error_sums_f32(const float *reference, const float *test, int64_t n,
                                          enum mq_error_sums_path path,
                                          struct mq_error_sums *out)
{
    struct lanes l;
    memset(&l, 0, sizeof l);
    int64_t done = 0;
    path = available(path);
#if HAVE_AVX2_PATH
    if (path == MQ_ERROR_SUMS_AVX2)
        done = sums_avx2(reference, test, n, &l);
#endif
#if defined(__SSE2__)
    if (path == MQ_ERROR_SUMS_SSE2)
        done = sums_sse2(reference, test, n, &l);
#endif
    sums_scalar(reference, test, done, n, &l);
    out->ref2 = combine(l.ref2);
    out->test2 = combine(l.test2);
    out->dot = combine(l.dot);
    out->err2 = combine(l.err2);
    out->max_abs_error = l.max_abs_error;
    out->nonfinite_equal = l.nonfinite_equal;
    out->nonfinite_mismatch = l.nonfinite_mismatch;
    out->elements = n - l.nonfinite_equal - l.nonfinite_mismatch;
    return path;
}
