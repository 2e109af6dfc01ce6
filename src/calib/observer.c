/*
 * Observers of one tensor during calibration: running min/max and histograms, and how they merge
 * (see observer.h).
 */
#include "calib/observer.h"
#include "util/cpu.h"

#include <float.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void mq_minmax_init(struct mq_minmax *m)
{
    m->min = INFINITY;
    m->max = -INFINITY;
    m->count = 0;
    m->nan = 0;
    m->inf = 0;
}

/*
 * Min and max of an all-finite run, or 0 when the run holds NaN or an
 * infinity: this is the calibrator's hottest loop, run over every observed
 * activation.  The compiler may not turn `v < lo ? v : lo` into vector min
 * instructions without -ffinite-math-only, so x86-64 gets the vector loops
 * written out, for SSE2 (always there), AVX2 and AVX-512, the widest the CPU
 * has picked once.  Each keeps four independent pairs of accumulators: one
 * chain of min instructions would wait on its own latency, not on memory.
 * Min and max do not depend on the order values come in (-0 and +0 aside,
 * which the caller makes +0), so every path gives the same result.
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    ((defined(__clang__) && __clang_major__ >= 8) || (!defined(__clang__) && __GNUC__ >= 8))
#define HAVE_X86_WIDE 1
#include <immintrin.h>
#endif

/* What a vector loop leaves: the min and max of x[0 .. done-1], or bad when one is not finite. */
struct vector_run {
    int64_t done;
    int bad;
    float lo, hi;
};

#if !defined(__SSE2__)
static struct vector_run vector_min_max_none(const float *x, int64_t n)
{
    (void)x, (void)n;
    return (struct vector_run){0, 0, INFINITY, -INFINITY};
}
#endif

#if defined(__SSE2__)
static struct vector_run vector_min_max_sse2(const float *x, int64_t n)
{
    struct vector_run r = {0, 0, INFINITY, -INFINITY};
    if (n < 16)
        return r;
    const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    const __m128 largest = _mm_set1_ps(FLT_MAX);
    __m128 lo0 = _mm_set1_ps(INFINITY), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m128 hi0 = _mm_set1_ps(-INFINITY), hi1 = hi0, hi2 = hi0, hi3 = hi0;
    __m128 bad = _mm_setzero_ps();
    int64_t i = 0;
    /* Named accumulators, not an array: -O2 does not unroll a loop over one, and would keep it
       in memory. */
    /* NaN compares unordered, so !(|v| <= FLT_MAX) flags NaN and both infinities. */
#define STEP(k)                                                                                  \
    {                                                                                            \
        __m128 v = _mm_loadu_ps(x + i + 4 * k);                                                  \
        bad = _mm_or_ps(bad, _mm_cmpnle_ps(_mm_and_ps(v, abs_mask), largest));                   \
        lo##k = _mm_min_ps(lo##k, v);                                                            \
        hi##k = _mm_max_ps(hi##k, v);                                                            \
    }
    for (; i + 16 <= n; i += 16) {
        STEP(0) STEP(1) STEP(2) STEP(3)
    }
#undef STEP
    r.done = i;
    r.bad = _mm_movemask_ps(bad) != 0;
    __m128 l = _mm_min_ps(_mm_min_ps(lo0, lo1), _mm_min_ps(lo2, lo3));
    __m128 h = _mm_max_ps(_mm_max_ps(hi0, hi1), _mm_max_ps(hi2, hi3));
    float lv[4], hv[4];
    _mm_storeu_ps(lv, l);
    _mm_storeu_ps(hv, h);
    for (int k = 0; k < 4; k++) {
        r.lo = lv[k] < r.lo ? lv[k] : r.lo;
        r.hi = hv[k] > r.hi ? hv[k] : r.hi;
    }
    return r;
}
#endif

#ifdef HAVE_X86_WIDE
__attribute__((target("avx2"))) static struct vector_run vector_min_max_avx2(const float *x,
                                                                             int64_t n)
{
    struct vector_run r = {0, 0, INFINITY, -INFINITY};
    if (n < 32)
        return r;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 largest = _mm256_set1_ps(FLT_MAX);
    __m256 lo0 = _mm256_set1_ps(INFINITY), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m256 hi0 = _mm256_set1_ps(-INFINITY), hi1 = hi0, hi2 = hi0, hi3 = hi0;
    __m256 bad = _mm256_setzero_ps();
    int64_t i = 0;
#define STEP(k)                                                                                  \
    {                                                                                            \
        __m256 v = _mm256_loadu_ps(x + i + 8 * k);                                               \
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), largest, _CMP_NLE_UQ)); \
        lo##k = _mm256_min_ps(lo##k, v);                                                         \
        hi##k = _mm256_max_ps(hi##k, v);                                                         \
    }
    for (; i + 32 <= n; i += 32) {
        STEP(0) STEP(1) STEP(2) STEP(3)
    }
#undef STEP
    r.done = i;
    r.bad = _mm256_movemask_ps(bad) != 0;
    __m256 l = _mm256_min_ps(_mm256_min_ps(lo0, lo1), _mm256_min_ps(lo2, lo3));
    __m256 h = _mm256_max_ps(_mm256_max_ps(hi0, hi1), _mm256_max_ps(hi2, hi3));
    float lv[8], hv[8];
    _mm256_storeu_ps(lv, l);
    _mm256_storeu_ps(hv, h);
    for (int k = 0; k < 8; k++) {
        r.lo = lv[k] < r.lo ? lv[k] : r.lo;
        r.hi = hv[k] > r.hi ? hv[k] : r.hi;
    }
    return r;
}

__attribute__((target("avx512f"))) static struct vector_run vector_min_max_avx512(const float *x,
                                                                                  int64_t n)
{
    struct vector_run r = {0, 0, INFINITY, -INFINITY};
    if (n < 64)
        return r;
    const __m512 largest = _mm512_set1_ps(FLT_MAX);
    __m512 lo0 = _mm512_set1_ps(INFINITY), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m512 hi0 = _mm512_set1_ps(-INFINITY), hi1 = hi0, hi2 = hi0, hi3 = hi0;
    __mmask16 bad = 0;
    int64_t i = 0;
#define STEP(k)                                                                                  \
    {                                                                                            \
        __m512 v = _mm512_loadu_ps(x + i + 16 * k);                                              \
        bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(v), largest, _CMP_NLE_UQ);                       \
        lo##k = _mm512_min_ps(lo##k, v);                                                         \
        hi##k = _mm512_max_ps(hi##k, v);                                                         \
    }
    for (; i + 64 <= n; i += 64) {
        STEP(0) STEP(1) STEP(2) STEP(3)
    }
#undef STEP
    r.done = i;
    r.bad = bad != 0;
    __m512 l = _mm512_min_ps(_mm512_min_ps(lo0, lo1), _mm512_min_ps(lo2, lo3));
    __m512 h = _mm512_max_ps(_mm512_max_ps(hi0, hi1), _mm512_max_ps(hi2, hi3));
    float lv[16], hv[16];
    _mm512_storeu_ps(lv, l);
    _mm512_storeu_ps(hv, h);
    for (int k = 0; k < 16; k++) {
        r.lo = lv[k] < r.lo ? lv[k] : r.lo;
        r.hi = hv[k] > r.hi ? hv[k] : r.hi;
    }
    return r;
}
#endif

typedef struct vector_run (*vector_min_max_fn)(const float *x, int64_t n);

/* The widest loop this CPU runs, decided once. */
static vector_min_max_fn vector_min_max(void)
{
#ifdef HAVE_X86_WIDE
    enum mq_cpu_level level = mq_cpu_level();
    return level == MQ_CPU_AVX512 ? vector_min_max_avx512
           : level == MQ_CPU_AVX2 ? vector_min_max_avx2
                                  : vector_min_max_sse2;
#elif defined(__SSE2__)
    return vector_min_max_sse2;
#else
    return vector_min_max_none;
#endif
}

int mq_minmax_finite(const float *x, int64_t n, float *lo_out, float *hi_out)
{
    struct vector_run r = vector_min_max()(x, n);
    if (r.bad)
        return 0;
    float lo = r.lo, hi = r.hi;
    for (int64_t i = r.done; i < n; i++) {
        float v = x[i];
        if (!(fabsf(v) <= FLT_MAX))
            return 0;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *lo_out = lo;
    *hi_out = hi;
    return 1;
}

void mq_minmax_add(struct mq_minmax *m, const float *x, int64_t n)
{
    float lo = m->min, hi = m->max;
    float run_lo, run_hi;
    if (mq_minmax_finite(x, n, &run_lo, &run_hi)) {
        /* -0 and +0 compare equal: whichever came first would stick; keep +0 always. */
        m->min = (run_lo < lo ? run_lo : lo) + 0.0f;
        m->max = (run_hi > hi ? run_hi : hi) + 0.0f;
        m->count += (uint64_t)n;
        return;
    }
    uint64_t finite = 0, nan = 0, inf = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (v != v) {
            nan++;
        } else if (v == INFINITY || v == -INFINITY) {
            inf++;
        } else {
            finite++;
            v += 0.0f;
            if (v < lo)
                lo = v;
            if (v > hi)
                hi = v;
        }
    }
    m->min = lo;
    m->max = hi;
    m->count += finite;
    m->nan += nan;
    m->inf += inf;
}

void mq_minmax_merge(struct mq_minmax *into, const struct mq_minmax *from)
{
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->nan += from->nan;
    into->inf += from->inf;
}

int mq_observer_init(struct mq_observer *o, int with_histogram, struct mq_error *err)
{
    memset(o, 0, sizeof *o);
    mq_minmax_init(&o->minmax);
    if (with_histogram) {
        o->histogram = malloc(sizeof *o->histogram);
        if (!o->histogram)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory for a histogram");
        mq_histogram_init(o->histogram);
    }
    return MQ_OK;
}

void mq_observer_free(struct mq_observer *o)
{
    free(o->histogram);
    memset(o, 0, sizeof *o);
}

/* Values at a time: converted types go through a buffer this size, kept hot for the 2nd pass. */
#define CHUNK 4096

static void add_chunk(struct mq_observer *o, const float *x, int64_t n)
{
    struct mq_minmax chunk;
    mq_minmax_init(&chunk);
    mq_minmax_add(&chunk, x, n);
    mq_minmax_merge(&o->minmax, &chunk);
    if (o->histogram && chunk.count)
        mq_histogram_add(o->histogram, x, n, fmaxf(-chunk.min, chunk.max));
}

int mq_observer_add(struct mq_observer *o, const struct mq_tensor *t, struct mq_error *err)
{
    if (!mq_dtype_is_float(t->dtype))
        return mq_error_set(err, "cannot observe a %s tensor (floats only)",
                            mq_dtype_name(t->dtype));
    float buf[CHUNK];
    for (int64_t off = 0; off < t->count; off += CHUNK) {
        int64_t n = t->count - off < CHUNK ? t->count - off : CHUNK;
        const float *x = buf;
        switch (t->dtype) {
        case MQ_DTYPE_FLOAT: x = (const float *)t->data + off; break;
        case MQ_DTYPE_FLOAT16:
            for (int64_t i = 0; i < n; i++)
                buf[i] = mq_half_to_float(((const uint16_t *)t->data)[off + i]);
            break;
        case MQ_DTYPE_BFLOAT16:
            for (int64_t i = 0; i < n; i++)
                buf[i] = mq_bfloat16_to_float(((const uint16_t *)t->data)[off + i]);
            break;
        default: /* MQ_DTYPE_DOUBLE */
            for (int64_t i = 0; i < n; i++)
                buf[i] = (float)((const double *)t->data)[off + i];
            break;
        }
        add_chunk(o, x, n);
    }
    o->produced++;
    return MQ_OK;
}

int mq_observer_merge(struct mq_observer *into, const struct mq_observer *from,
                      struct mq_error *err)
{
    mq_minmax_merge(&into->minmax, &from->minmax);
    into->produced += from->produced;
    if (from->histogram) {
        if (!into->histogram) {
            into->histogram = malloc(sizeof *into->histogram);
            if (!into->histogram)
                return mq_error_code(err, MQ_ERR_MEMORY, "out of memory for a histogram");
            mq_histogram_init(into->histogram);
        }
        mq_histogram_merge(into->histogram, from->histogram);
    }
    return MQ_OK;
}
