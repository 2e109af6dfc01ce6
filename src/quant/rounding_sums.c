/*
 * The signal and rounding-error energy of activation values under one scale
 * (see rounding_sums.h), in one pass: scalar, SSE2, AVX2 and AVX-512 paths
 * that add the same values to the same lanes in the same order.
 *
 * Quantizing is bit for bit what mq_quantize_value and mq_dequantize_value
 * give: x / scale is clamped to +-2^22 first (any such value clamps to the
 * type's range anyway, which spans fewer than 2^17 steps), where adding and
 * subtracting 1.5 * 2^23 rounds to the nearest integer, ties to even.
 *
 * The sums are written as separate statements (a product, then a sum) so
 * that no compiler fuses them into one FMA, whose single rounding would give
 * other doubles on CPUs that have it.
 */
#include "quant/rounding_sums.h"
#include "util/cpu.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define HAVE_X86_WIDE 1
#include <immintrin.h>
#endif

_Static_assert(MQ_ROUNDING_LANES == 32, "the vector paths fill 32 lanes");

#define MAGIC 12582912.0f /* 1.5 * 2^23 */
#define LIMIT 4194304.0f  /* 2^22 */

struct qparams {
    float scale, zero, qmin, qmax;
};

/* Value i (x[i] or 0 when it is not finite) and what quantizing gives back, into its lane. */
static void add_one(const struct qparams *p, float x, double *signal, double *noise)
{
    float v = x - x == 0.0f ? x : 0.0f; /* NaN and infinities give NaN */
    float t = v / p->scale;
    t = t < -LIMIT ? -LIMIT : t > LIMIT ? LIMIT : t;
    float q = (t + MAGIC) - MAGIC + p->zero;
    q = q < p->qmin ? p->qmin : q > p->qmax ? p->qmax : q;
    float back = (q - p->zero) * p->scale;
    double dv = (double)v, e = (double)back - dv;
    double vv = dv * dv, ee = e * e;
    *signal += vv;
    *noise += ee;
}

/* Values done..n-1, one at a time. */
static void add_tail(const struct qparams *p, const float *x, int64_t done, int64_t n,
                     double *signal, double *noise)
{
    for (int64_t i = done; i < n; i++)
        add_one(p, x[i], &signal[i % MQ_ROUNDING_LANES], &noise[i % MQ_ROUNDING_LANES]);
}

#if defined(__SSE2__)
/* Four values quantized and back: v (0 where not finite) and what comes back. */
static inline void round_trip4(__m128 x, __m128 scale, __m128 zero, __m128 lo, __m128 hi,
                               __m128 *v_out, __m128 *back_out)
{
    const __m128 magic = _mm_set1_ps(MAGIC), lim = _mm_set1_ps(LIMIT), nlim = _mm_set1_ps(-LIMIT);
    __m128 v = _mm_and_ps(x, _mm_cmpeq_ps(_mm_sub_ps(x, x), _mm_setzero_ps()));
    __m128 t = _mm_min_ps(_mm_max_ps(_mm_div_ps(v, scale), nlim), lim);
    __m128 q = _mm_add_ps(_mm_sub_ps(_mm_add_ps(t, magic), magic), zero);
    q = _mm_min_ps(_mm_max_ps(q, lo), hi);
    *v_out = v;
    *back_out = _mm_mul_ps(_mm_sub_ps(q, zero), scale);
}

/* Two lanes' worth: the low two floats of v and back, widened. */
#define ADD_PAIR(sig, noi, v, back)                                                              \
    {                                                                                            \
        __m128d dv = _mm_cvtps_pd(v), e = _mm_sub_pd(_mm_cvtps_pd(back), dv);                    \
        sig = _mm_add_pd(sig, _mm_mul_pd(dv, dv));                                               \
        noi = _mm_add_pd(noi, _mm_mul_pd(e, e));                                                 \
    }

/* Eight values a step into lanes i % 32 .. i % 32 + 7, which stay in memory between steps (a
   lane's next add comes four steps later, after a division that takes longer). */
static int64_t sums_sse2(const struct qparams *p, const float *x, int64_t n, double *signal,
                         double *noise)
{
    const __m128 scale = _mm_set1_ps(p->scale), zero = _mm_set1_ps(p->zero);
    const __m128 lo = _mm_set1_ps(p->qmin), hi = _mm_set1_ps(p->qmax);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        double *sig = signal + i % MQ_ROUNDING_LANES, *noi = noise + i % MQ_ROUNDING_LANES;
        __m128d s01 = _mm_loadu_pd(sig), s23 = _mm_loadu_pd(sig + 2);
        __m128d s45 = _mm_loadu_pd(sig + 4), s67 = _mm_loadu_pd(sig + 6);
        __m128d n01 = _mm_loadu_pd(noi), n23 = _mm_loadu_pd(noi + 2);
        __m128d n45 = _mm_loadu_pd(noi + 4), n67 = _mm_loadu_pd(noi + 6);
        __m128 va, ba, vb, bb;
        round_trip4(_mm_loadu_ps(x + i), scale, zero, lo, hi, &va, &ba);
        round_trip4(_mm_loadu_ps(x + i + 4), scale, zero, lo, hi, &vb, &bb);
        ADD_PAIR(s01, n01, va, ba);
        ADD_PAIR(s23, n23, _mm_movehl_ps(va, va), _mm_movehl_ps(ba, ba));
        ADD_PAIR(s45, n45, vb, bb);
        ADD_PAIR(s67, n67, _mm_movehl_ps(vb, vb), _mm_movehl_ps(bb, bb));
        _mm_storeu_pd(sig, s01);
        _mm_storeu_pd(sig + 2, s23);
        _mm_storeu_pd(sig + 4, s45);
        _mm_storeu_pd(sig + 6, s67);
        _mm_storeu_pd(noi, n01);
        _mm_storeu_pd(noi + 2, n23);
        _mm_storeu_pd(noi + 4, n45);
        _mm_storeu_pd(noi + 6, n67);
    }
    return i;
}
#undef ADD_PAIR
#endif

#ifdef HAVE_X86_WIDE
/* Eight values at a time into lanes i % 32 .. i % 32 + 7, kept in memory between steps (see
   sums_sse2). */
__attribute__((target("avx2"))) static int64_t sums_avx2(const struct qparams *p, const float *x,
                                                         int64_t n, double *signal,
                                                         double *noise)
{
    const __m256 scale = _mm256_set1_ps(p->scale), zero = _mm256_set1_ps(p->zero);
    const __m256 lo = _mm256_set1_ps(p->qmin), hi = _mm256_set1_ps(p->qmax);
    const __m256 magic = _mm256_set1_ps(MAGIC), lim = _mm256_set1_ps(LIMIT);
    const __m256 nlim = _mm256_set1_ps(-LIMIT);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        double *sig = signal + i % MQ_ROUNDING_LANES, *noi = noise + i % MQ_ROUNDING_LANES;
        __m256d s_lo = _mm256_loadu_pd(sig), s_hi = _mm256_loadu_pd(sig + 4);
        __m256d n_lo = _mm256_loadu_pd(noi), n_hi = _mm256_loadu_pd(noi + 4);
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 v = _mm256_and_ps(xv, _mm256_cmp_ps(_mm256_sub_ps(xv, xv), _mm256_setzero_ps(),
                                                   _CMP_EQ_OQ));
        __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, scale), nlim), lim);
        __m256 q = _mm256_add_ps(_mm256_sub_ps(_mm256_add_ps(t, magic), magic), zero);
        q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
        __m256 back = _mm256_mul_ps(_mm256_sub_ps(q, zero), scale);
        __m256d v_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        __m256d v_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        __m256d e_lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(back)), v_lo);
        __m256d e_hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(back, 1)), v_hi);
        s_lo = _mm256_add_pd(s_lo, _mm256_mul_pd(v_lo, v_lo));
        s_hi = _mm256_add_pd(s_hi, _mm256_mul_pd(v_hi, v_hi));
        n_lo = _mm256_add_pd(n_lo, _mm256_mul_pd(e_lo, e_lo));
        n_hi = _mm256_add_pd(n_hi, _mm256_mul_pd(e_hi, e_hi));
        _mm256_storeu_pd(sig, s_lo);
        _mm256_storeu_pd(sig + 4, s_hi);
        _mm256_storeu_pd(noi, n_lo);
        _mm256_storeu_pd(noi + 4, n_hi);
    }
    return i;
}

/* Sixteen values quantized and back, into the lanes of sig/noi: values at .. at+7 into the
   first register, at+8 .. at+15 into the second. */
#define ROUND_TRIP_16(at, sig_a, noi_a, sig_b, noi_b)                                            \
    {                                                                                            \
        __m512 xv = _mm512_loadu_ps(x + i + (at));                                               \
        __mmask16 finite = _mm512_cmp_ps_mask(_mm512_sub_ps(xv, xv), _mm512_setzero_ps(),        \
                                              _CMP_EQ_OQ);                                       \
        __m512 v = _mm512_maskz_mov_ps(finite, xv); /* NaN, inf: +0 */                           \
        __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(v, scale), nlim), lim);             \
        __m512 q = _mm512_add_ps(_mm512_sub_ps(_mm512_add_ps(t, magic), magic), zero);           \
        q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);                                             \
        __m512 back = _mm512_mul_ps(_mm512_sub_ps(q, zero), scale);                              \
        __m512d v_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));                               \
        __m512d v_hi = _mm512_cvtps_pd(                                                          \
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));                   \
        __m512d e_lo = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(back)), v_lo);       \
        __m512d e_hi = _mm512_sub_pd(                                                            \
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(back), 1))), \
            v_hi);                                                                               \
        sig_a = _mm512_add_pd(sig_a, _mm512_mul_pd(v_lo, v_lo));                                 \
        noi_a = _mm512_add_pd(noi_a, _mm512_mul_pd(e_lo, e_lo));                                 \
        sig_b = _mm512_add_pd(sig_b, _mm512_mul_pd(v_hi, v_hi));                                 \
        noi_b = _mm512_add_pd(noi_b, _mm512_mul_pd(e_hi, e_hi));                                 \
    }

/* Thirty-two values at a time: lanes 0-7, 8-15, 16-23 and 24-31 each in a register of
   doubles. */
__attribute__((target("avx512f"))) static int64_t sums_avx512(const struct qparams *p,
                                                              const float *x, int64_t n,
                                                              double *signal, double *noise)
{
    const __m512 scale = _mm512_set1_ps(p->scale), zero = _mm512_set1_ps(p->zero);
    const __m512 lo = _mm512_set1_ps(p->qmin), hi = _mm512_set1_ps(p->qmax);
    const __m512 magic = _mm512_set1_ps(MAGIC), lim = _mm512_set1_ps(LIMIT);
    const __m512 nlim = _mm512_set1_ps(-LIMIT);
    __m512d s0 = _mm512_loadu_pd(signal), s1 = _mm512_loadu_pd(signal + 8);
    __m512d s2 = _mm512_loadu_pd(signal + 16), s3 = _mm512_loadu_pd(signal + 24);
    __m512d n0 = _mm512_loadu_pd(noise), n1 = _mm512_loadu_pd(noise + 8);
    __m512d n2 = _mm512_loadu_pd(noise + 16), n3 = _mm512_loadu_pd(noise + 24);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        ROUND_TRIP_16(0, s0, n0, s1, n1);
        ROUND_TRIP_16(16, s2, n2, s3, n3);
    }
    _mm512_storeu_pd(signal, s0);
    _mm512_storeu_pd(signal + 8, s1);
    _mm512_storeu_pd(signal + 16, s2);
    _mm512_storeu_pd(signal + 24, s3);
    _mm512_storeu_pd(noise, n0);
    _mm512_storeu_pd(noise + 8, n1);
    _mm512_storeu_pd(noise + 16, n2);
    _mm512_storeu_pd(noise + 24, n3);
    return i;
}
#undef ROUND_TRIP_16

typedef int64_t (*sums_fn)(const struct qparams *p, const float *x, int64_t n, double *signal,
                           double *noise);

/* The widest path this CPU runs, decided once. */
static sums_fn widest(void)
{
    enum mq_cpu_level level = mq_cpu_level();
    return level == MQ_CPU_AVX512 ? sums_avx512 : level == MQ_CPU_AVX2 ? sums_avx2 : sums_sse2;
}
#endif

void mq_quant_rounding_sums(const float *x, int64_t n, float scale, float zero, float qmin,
                            float qmax, double signal[MQ_ROUNDING_LANES],
                            double noise[MQ_ROUNDING_LANES])
{
    const struct qparams p = {scale, zero, qmin, qmax};
    int64_t done = 0;
#ifdef HAVE_X86_WIDE
    done = widest()(&p, x, n, signal, noise);
#elif defined(__SSE2__)
    done = sums_sse2(&p, x, n, signal, noise);
#endif
    add_tail(&p, x, done, n, signal, noise);
}
