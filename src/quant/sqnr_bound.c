/* The signal energy the calibration pass sums, and the SQNR floor it gives under a scale. */
#include "quant/sqnr_bound.h"
#include "util/cpu.h"

#include <math.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

_Static_assert(MQ_ROUNDING_LANES == 32, "the vector paths fill 32 lanes");

/* Of a step: how far past the half-step edge an observed end may lie (see below). */
#define TOLERANCE 0x1p-10

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define HAVE_AVX2_PATH 1
#include <immintrin.h>
#endif

#if HAVE_AVX2_PATH
/* Adds k lanes' non-zero counts to *nonzero. */
static void add_counts(const int32_t *counts, int k, int64_t *nonzero)
{
    for (int j = 0; j < k; j++)
        *nonzero += counts[j];
}

/* The least and most of k lanes' extremes (NaN lanes lose every comparison, as in the loops). */
static void fold_extremes(const float *least, const float *most, int k, float *lo_out,
                          float *hi_out)
{
    float l = INFINITY, h = -INFINITY;
    for (int j = 0; j < k; j++) {
        l = least[j] < l ? least[j] : l;
        h = most[j] > h ? most[j] : h;
    }
    *lo_out = l;
    *hi_out = h;
}

/*
 * Eight values of the step at `at` into acc[0] (lanes at .. at+3) and acc[1] (at+4 .. at+7),
 * with the min/max, the finite mask and the non-zero count of the whole step beside.
 */
#define ENERGY_8(at, acc_lo, acc_hi)                                                             \
    {                                                                                            \
        __m256 raw = _mm256_loadu_ps(x + i + (at));                                              \
        __m256 keep = _mm256_cmp_ps(_mm256_sub_ps(raw, raw), zero, _CMP_EQ_OQ);                  \
        finite = _mm256_and_ps(finite, keep);                                                    \
        least = _mm256_min_ps(least, raw);                                                       \
        most = _mm256_max_ps(most, raw);                                                         \
        __m256 v = _mm256_and_ps(raw, keep);                                                     \
        count = _mm256_sub_epi32(count,                                                          \
                                 _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ)));       \
        __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v));                                  \
        __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));                                \
        acc_lo = _mm256_fmadd_pd(a, a, acc_lo);                                                  \
        acc_hi = _mm256_fmadd_pd(b, b, acc_hi);                                                  \
    }

/*
 * MQ_ROUNDING_LANES (32) values a step, lanes 0-3, 4-7, ..., 28-31 each in a register: eight
 * independent chains of adds, where one step's add waits on the last one's only four steps
 * of eight values later (with eight lanes, every add waited on the one before: the loop ran
 * at the adds' latency).  Returns values done.
 * A fused multiply-add rounds a * a + e once where the scalar loop rounds the product and
 * then the sum: the same double, as the product of two floats (24-bit significands) is exact
 * in a double (53 bits), and a float's square neither overflows nor underflows one.
 * Beside the energy, the min/max of the raw values (NaN and infinities too, which
 * *all_finite then says): one read of each value for both; the energy alone takes the same
 * loop and drops the extremes (a few vector ops a step beside memory-bound reads); a
 * tensor larger than the cache is read from memory once, not twice.
 */
__attribute__((target("avx2,fma"))) static int64_t
energy_minmax_avx2(const float *x, int64_t n, double *energy, int64_t *nonzero, float *lo_out,
                   float *hi_out, int *all_finite)
{
    __m256d e0 = _mm256_loadu_pd(energy), e1 = _mm256_loadu_pd(energy + 4);
    __m256d e2 = _mm256_loadu_pd(energy + 8), e3 = _mm256_loadu_pd(energy + 12);
    __m256d e4 = _mm256_loadu_pd(energy + 16), e5 = _mm256_loadu_pd(energy + 20);
    __m256d e6 = _mm256_loadu_pd(energy + 24), e7 = _mm256_loadu_pd(energy + 28);
    const __m256 zero = _mm256_setzero_ps();
    __m256i count = _mm256_setzero_si256();
    __m256 least = _mm256_set1_ps(INFINITY), most = _mm256_set1_ps(-INFINITY);
    __m256 finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        ENERGY_8(0, e0, e1);
        ENERGY_8(8, e2, e3);
        ENERGY_8(16, e4, e5);
        ENERGY_8(24, e6, e7);
        if ((i & ((1 << 27) - 32)) == 0 && i) { /* drain before 2^31 counts a lane */
            int32_t c[8];
            _mm256_storeu_si256((__m256i *)c, count);
            add_counts(c, 8, nonzero);
            count = _mm256_setzero_si256();
        }
    }
    int32_t c[8];
    _mm256_storeu_si256((__m256i *)c, count);
    add_counts(c, 8, nonzero);
    _mm256_storeu_pd(energy, e0);
    _mm256_storeu_pd(energy + 4, e1);
    _mm256_storeu_pd(energy + 8, e2);
    _mm256_storeu_pd(energy + 12, e3);
    _mm256_storeu_pd(energy + 16, e4);
    _mm256_storeu_pd(energy + 20, e5);
    _mm256_storeu_pd(energy + 24, e6);
    _mm256_storeu_pd(energy + 28, e7);
    float lv[8], hv[8];
    _mm256_storeu_ps(lv, least);
    _mm256_storeu_ps(hv, most);
    fold_extremes(lv, hv, 8, lo_out, hi_out);
    *all_finite = _mm256_movemask_ps(finite) == 0xff;
    return i;
}
#undef ENERGY_8

/*
 * The same with AVX-512, 32 values a step in two loads of 16: lanes 0-7, 8-15, 16-23 and
 * 24-31 each in a register of eight doubles, the masks of finite and non-zero values in mask
 * registers (a value not finite is dropped as it is widened).  About half the instructions a
 * value of the AVX2 loop, which its instruction count, not its memory reads, bounds.  The
 * same products added to the same lanes in the same order: the same doubles.
 */
#define ENERGY_16(at, acc_lo, acc_hi)                                                            \
    {                                                                                            \
        __m512 raw = _mm512_loadu_ps(x + i + (at));                                              \
        __mmask16 keep = _mm512_cmp_ps_mask(_mm512_sub_ps(raw, raw), zero, _CMP_EQ_OQ);          \
        __mmask16 counted = _mm512_mask_cmp_ps_mask(keep, raw, zero, _CMP_NEQ_UQ);              \
        finite = _mm512_kand(finite, keep);                                                      \
        count = _mm512_mask_sub_epi32(count, counted, count, minus_one);                         \
        least = _mm512_min_ps(least, raw);                                                       \
        most = _mm512_max_ps(most, raw);                                                         \
        __m512d a = _mm512_maskz_cvtps_pd((__mmask8)keep, _mm512_castps512_ps256(raw));          \
        __m512d b = _mm512_maskz_cvtps_pd(                                                       \
            (__mmask8)(keep >> 8),                                                               \
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(raw), 1)));                 \
        acc_lo = _mm512_fmadd_pd(a, a, acc_lo);                                                  \
        acc_hi = _mm512_fmadd_pd(b, b, acc_hi);                                                  \
    }

__attribute__((target("avx512f"))) static int64_t
energy_minmax_avx512(const float *x, int64_t n, double *energy, int64_t *nonzero, float *lo_out,
                     float *hi_out, int *all_finite)
{
    __m512d e0 = _mm512_loadu_pd(energy), e1 = _mm512_loadu_pd(energy + 8);
    __m512d e2 = _mm512_loadu_pd(energy + 16), e3 = _mm512_loadu_pd(energy + 24);
    const __m512 zero = _mm512_setzero_ps();
    const __m512i minus_one = _mm512_set1_epi32(-1);
    __m512i count = _mm512_setzero_si512();
    __m512 least = _mm512_set1_ps(INFINITY), most = _mm512_set1_ps(-INFINITY);
    __mmask16 finite = 0xffff;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        ENERGY_16(0, e0, e1);
        ENERGY_16(16, e2, e3);
        if ((i & ((1 << 27) - 32)) == 0 && i) { /* drain before 2^31 counts a lane */
            int32_t c[16];
            _mm512_storeu_si512(c, count);
            add_counts(c, 16, nonzero);
            count = _mm512_setzero_si512();
        }
    }
    int32_t c[16];
    _mm512_storeu_si512(c, count);
    add_counts(c, 16, nonzero);
    _mm512_storeu_pd(energy, e0);
    _mm512_storeu_pd(energy + 8, e1);
    _mm512_storeu_pd(energy + 16, e2);
    _mm512_storeu_pd(energy + 24, e3);
    float lv[16], hv[16];
    _mm512_storeu_ps(lv, least);
    _mm512_storeu_ps(hv, most);
    fold_extremes(lv, hv, 16, lo_out, hi_out);
    *all_finite = finite == 0xffff;
    return i;
}
#undef ENERGY_16

typedef int64_t (*energy_fn)(const float *x, int64_t n, double *energy, int64_t *nonzero,
                             float *lo_out, float *hi_out, int *all_finite);

/* The widest loop this CPU runs, decided once; NULL where it has neither. */
static energy_fn widest(void)
{
    enum mq_cpu_level level = mq_cpu_level();
    return level == MQ_CPU_AVX512 ? energy_minmax_avx512
           : level == MQ_CPU_AVX2 ? energy_minmax_avx2
                                  : NULL;
}
#endif

void mq_quant_signal_energy_minmax(const float *x, int64_t n, double energy[MQ_ROUNDING_LANES],
                                   int64_t *nonzero, struct mq_minmax *m)
{
    int64_t done = 0;
    if (n <= 0)
        return; /* an empty tensor may come as a null pointer: no offset arithmetic on it */
#if HAVE_AVX2_PATH
    energy_fn wide = widest();
    if (wide) {
        float lo, hi;
        int finite;
        done = wide(x, n, energy, nonzero, &lo, &hi, &finite);
        if (finite && done) {
            /* as mq_minmax_add of an all-finite run: -0 recorded as +0 */
            struct mq_minmax part = {lo + 0.0f, hi + 0.0f, (uint64_t)done, 0, 0};
            mq_minmax_merge(m, &part);
        } else {
            mq_minmax_add(m, x, done);
        }
    }
#endif
    /* the rest from a multiple of 32: its value i is in lane i % 32 either way */
    mq_quant_signal_energy(x + done, n - done, energy, nonzero);
    mq_minmax_add(m, x + done, n - done);
}

void mq_quant_signal_energy(const float *x, int64_t n, double energy[MQ_ROUNDING_LANES],
                            int64_t *nonzero)
{
    int64_t i = 0, count = 0;
#if HAVE_AVX2_PATH
    energy_fn wide = widest();
    if (wide) {
        float lo, hi;
        int finite;
        i = wide(x, n, energy, nonzero, &lo, &hi, &finite);
    }
#endif
#if defined(__SSE2__)
    /* eight values a step into lanes i % 32 .. i % 32 + 7, kept in `energy` between steps
       (a lane's next add comes four steps later); each lane in index order */
    const __m128 zero = _mm_setzero_ps();
    __m128i counts = _mm_setzero_si128();
    for (; i + 8 <= n; i += 8) {
        double *e = energy + i % MQ_ROUNDING_LANES;
        __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
        a = _mm_and_ps(a, _mm_cmpeq_ps(_mm_sub_ps(a, a), zero)); /* NaN, inf: 0 */
        b = _mm_and_ps(b, _mm_cmpeq_ps(_mm_sub_ps(b, b), zero));
        /* a non-zero lane's mask is -1: subtracting it counts */
        counts = _mm_sub_epi32(counts, _mm_castps_si128(_mm_cmpneq_ps(a, zero)));
        counts = _mm_sub_epi32(counts, _mm_castps_si128(_mm_cmpneq_ps(b, zero)));
        __m128d a0 = _mm_cvtps_pd(a), a1 = _mm_cvtps_pd(_mm_movehl_ps(a, a));
        __m128d b0 = _mm_cvtps_pd(b), b1 = _mm_cvtps_pd(_mm_movehl_ps(b, b));
        _mm_storeu_pd(e, _mm_add_pd(_mm_loadu_pd(e), _mm_mul_pd(a0, a0)));
        _mm_storeu_pd(e + 2, _mm_add_pd(_mm_loadu_pd(e + 2), _mm_mul_pd(a1, a1)));
        _mm_storeu_pd(e + 4, _mm_add_pd(_mm_loadu_pd(e + 4), _mm_mul_pd(b0, b0)));
        _mm_storeu_pd(e + 6, _mm_add_pd(_mm_loadu_pd(e + 6), _mm_mul_pd(b1, b1)));
        if ((i & ((1 << 27) - 8)) == 0 && i) { /* drain before 2^31 counts a lane */
            int32_t c[4];
            _mm_storeu_si128((__m128i *)c, counts);
            count += (int64_t)c[0] + c[1] + c[2] + c[3];
            counts = _mm_setzero_si128();
        }
    }
    int32_t c[4];
    _mm_storeu_si128((__m128i *)c, counts);
    count += (int64_t)c[0] + c[1] + c[2] + c[3];
#endif
    for (; i < n; i++) {
        float v = x[i] - x[i] == 0.0f ? x[i] : 0.0f;
        double d = (double)v, dd = d * d;
        energy[i % MQ_ROUNDING_LANES] += dd;
        count += v != 0.0f;
    }
    *nonzero += count;
}

int mq_quant_bound_holds(double lo, double hi, struct mq_qparams p, struct mq_qrange full)
{
    double s = (double)p.scale;
    if (!(s > 0.0) || !isfinite(s) || p.zero_point < full.qmin || p.zero_point > full.qmax)
        return 0;
    /* Beyond half a step, clamping errs by more.  A rounded zero point can put the observed
       end right on that edge: TOLERANCE of a step past it is allowed (and counted in the
       floor); values a few float bits further (the measuring plan computing them apart) err by
       those bits more, which the margin covers. */
    double low = ((double)full.qmin - p.zero_point - 0.5 - TOLERANCE) * s;
    double high = ((double)full.qmax - p.zero_point + 0.5 + TOLERANCE) * s;
    return lo >= low && hi <= high;
}

double mq_quant_sqnr_floor_db(double energy_per_value, struct mq_qparams p, struct mq_qrange full)
{
    double s = (double)p.scale;
    /*
     * |v / s| <= m.  The float divide errs by |v / s| 2^-24, rounding by 1/2 (clamping by
     * 1/2 + TOLERANCE), the float multiply back by (|v / s| + 1/2) 2^-24 of a step.
     */
    double m = fabs((double)full.qmin - p.zero_point);
    if (fabs((double)full.qmax - p.zero_point) > m)
        m = fabs((double)full.qmax - p.zero_point);
    m += 0.5 + TOLERANCE;
    double worst = s * (0.5 + TOLERANCE + (2.0 * m + 0.5) * 0x1p-24);
    return 10.0 * log10(energy_per_value / (worst * worst));
}
