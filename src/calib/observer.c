/*
 * Observers of one tensor during calibration: running min/max and histograms, and how they merge
 * (see observer.h).
 */
#include "calib/observer.h"

#include <float.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
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
 * infinity.  The compiler may not turn `v < lo ? v : lo` into vector min
 * instructions without -ffinite-math-only, so x86-64 (where SSE2 is always
 * there) gets the vector loop written out: this is the calibrator's hottest
 * loop, run over every observed activation.
 */
static int finite_min_max(const float *x, int64_t n, float *lo_out, float *hi_out)
{
    float lo = INFINITY, hi = -INFINITY;
    int64_t i = 0;
#if defined(__SSE2__)
    if (n >= 8) {
        const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
        const __m128 largest = _mm_set1_ps(FLT_MAX);
        __m128 lo4 = _mm_set1_ps(INFINITY), hi4 = _mm_set1_ps(-INFINITY);
        __m128 bad = _mm_setzero_ps();
        for (; i + 4 <= n; i += 4) {
            __m128 v = _mm_loadu_ps(x + i);
            /* NaN compares unordered, so !(|v| <= FLT_MAX) flags NaN and both infinities. */
            bad = _mm_or_ps(bad, _mm_cmpnle_ps(_mm_and_ps(v, abs_mask), largest));
            lo4 = _mm_min_ps(lo4, v);
            hi4 = _mm_max_ps(hi4, v);
        }
        if (_mm_movemask_ps(bad))
            return 0;
        float l[4], h[4];
        _mm_storeu_ps(l, lo4);
        _mm_storeu_ps(h, hi4);
        for (int k = 0; k < 4; k++) {
            lo = l[k] < lo ? l[k] : lo;
            hi = h[k] > hi ? h[k] : hi;
        }
    }
#endif
    for (; i < n; i++) {
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
    if (finite_min_max(x, n, &run_lo, &run_hi)) {
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
