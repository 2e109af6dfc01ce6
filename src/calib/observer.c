#include "calib/observer.h"

#include <math.h>
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

/* NaN and infinities are rare; the common all-finite case runs two loops the compiler vectorises. */
static uint64_t count_nonfinite(const float *x, int64_t n)
{
    uint64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        count += (bits & 0x7f800000u) == 0x7f800000u;
    }
    return count;
}

void mq_minmax_add(struct mq_minmax *m, const float *x, int64_t n)
{
    float lo = m->min, hi = m->max;
    if (count_nonfinite(x, n) == 0) {
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        /* -0 and +0 compare equal: whichever came first would stick; keep +0 always. */
        m->min = lo + 0.0f;
        m->max = hi + 0.0f;
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
