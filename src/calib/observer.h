/*
 * Observers: what calibration keeps about one tensor across samples.  They
 * stream (nothing of past samples is kept but these numbers) and merge
 * exactly, in any order.
 */
#ifndef MQ_OBSERVER_H
#define MQ_OBSERVER_H

#include <stdint.h>

#include "calib/histogram.h"
#include "core/tensor.h"
#include "util/error.h"

/* Extremes of the finite values, and how many values were not finite. */
struct mq_minmax {
    float min, max;        /* +inf / -inf while count is 0; -0 is recorded as +0 */
    uint64_t count;        /* finite values */
    uint64_t nan;
    uint64_t inf;          /* +inf and -inf */
};

void mq_minmax_init(struct mq_minmax *m);
void mq_minmax_add(struct mq_minmax *m, const float *x, int64_t n);
void mq_minmax_merge(struct mq_minmax *into, const struct mq_minmax *from);
/* The min and max of x[0 .. n-1] into *lo, *hi (+inf and -inf when n is 0) and 1 when every value
   is finite; 0, leaving *lo and *hi alone, when one is NaN or infinite.  Vector loops where the
   CPU has them: a zero extreme may come back as -0 or +0, whichever the lanes met. */
int mq_minmax_finite(const float *x, int64_t n, float *lo, float *hi);

/* One observed tensor: min/max always, a histogram for the histogram methods. */
struct mq_observer {
    struct mq_minmax minmax;
    uint64_t produced;             /* tensors added (one per sample, or per loop iteration) */
    struct mq_histogram *histogram; /* NULL when not kept */
};

/* with_histogram: allocate one (MQ_ERR_MEMORY when that fails). */
int mq_observer_init(struct mq_observer *o, int with_histogram, struct mq_error *err);
void mq_observer_free(struct mq_observer *o);
/*
 * Adds one tensor.  float32 is read directly; float16, bfloat16 and float64
 * are converted to float first (a float64 beyond float's range counts as
 * infinite).  Other element types are refused.
 */
int mq_observer_add(struct mq_observer *o, const struct mq_tensor *t, struct mq_error *err);
/* into += from; into must keep a histogram when from does (MQ_ERR_MEMORY otherwise). */
int mq_observer_merge(struct mq_observer *into, const struct mq_observer *from,
                      struct mq_error *err);

#endif
