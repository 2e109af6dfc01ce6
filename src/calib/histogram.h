/*
 * A streaming histogram whose state depends only on the values it was given,
 * never on the order they came in or how they were split between observers.
 *
 * The bins cover [-R, R) with R = 2^exponent, the smallest power of two
 * strictly greater than every |x| seen (and at least 2^MQ_HISTOGRAM_MIN_EXPONENT).
 * Bin k holds x with floor(x * 1024 / R) == k - 1024, computed exactly (a
 * power-of-two scale of a float is exact in double).  When a larger value
 * arrives, R doubles as often as needed and bins merge pairwise; because the
 * edges are nested, that gives exactly the counts binning at the larger R
 * would have given.  Counts are integers, so merging two histograms is exact
 * and commutative: N threads or N machines give bit-identical results.
 *
 * The price: the data's extreme lies in [R/2, R), so between 1024 and 2048 of
 * the bins hold data.  Percentile, entropy and mse work on this histogram.
 */
#ifndef MQ_HISTOGRAM_H
#define MQ_HISTOGRAM_H

#include <stdint.h>

#define MQ_HISTOGRAM_BINS 2048
#define MQ_HISTOGRAM_HALF (MQ_HISTOGRAM_BINS / 2)
/* Smallest range: 2^-126 (float's smallest normal); anything smaller shares the centre bins. */
#define MQ_HISTOGRAM_MIN_EXPONENT (-126)
/* float's largest finite value is below 2^128. */
#define MQ_HISTOGRAM_MAX_EXPONENT 128
/* exponent of a histogram that has seen no value. */
#define MQ_HISTOGRAM_EMPTY (-1000)

struct mq_histogram {
    int exponent;                        /* R = 2^exponent, or MQ_HISTOGRAM_EMPTY */
    uint64_t counts[MQ_HISTOGRAM_BINS];
};

void mq_histogram_init(struct mq_histogram *h);
/* The exponent a histogram holding values up to |x| = amax (finite, >= 0) has. */
int mq_histogram_exponent_for(float amax);
/*
 * Adds the finite values among x[0..n); NaN and infinities are skipped (the
 * caller counts them).  amax must be >= |x| for every finite x (0 when none).
 */
void mq_histogram_add(struct mq_histogram *h, const float *x, int64_t n, float amax);
/* Widens the range to 2^exponent (no-op when already as wide), merging bins. */
void mq_histogram_widen(struct mq_histogram *h, int exponent);
/* into += from (exact). */
void mq_histogram_merge(struct mq_histogram *into, const struct mq_histogram *from);
uint64_t mq_histogram_total(const struct mq_histogram *h);
/* Left edge of bin k (k = MQ_HISTOGRAM_BINS gives R); exact. */
double mq_histogram_edge(const struct mq_histogram *h, int k);

/*
 * Ranges chosen from a histogram, before clamping to the observed extremes
 * (the caller clamps).  Each returns MQ_OK, or MQ_ERR when the histogram is
 * empty.
 *
 * percentile: two-sided (each tail loses (100-p)/2 percent; the range ends
 * at the outer edges of the bins where the quantiles fall) or, symmetric,
 * the p-th percentile of |x|: [-T, T].
 */
int mq_histogram_percentile(const struct mq_histogram *h, double percentile, int symmetric,
                            double *lo, double *hi);
/*
 * entropy: the threshold minimising KL(P || Q) over every candidate
 * [-i, i+1) bins around zero, i = 64 .. 1024, with Q the candidate quantized
 * to 128 levels (onnxruntime's calibrate.py, after MXNet: reference P with
 * outliers folded into its end bins, Q spread over P's non-empty bins,
 * both smoothed with eps = 0.0001).
 */
int mq_histogram_entropy(const struct mq_histogram *h, double *lo, double *hi);
/*
 * mse: the clipping threshold T = i * bin width (i = 1 .. 1024) whose range
 * [max(-T, omin), min(T, omax)] minimises the expected squared quantization
 * error of an 8-bit quantizer (asymmetric uint8, or symmetric int8 when
 * `symmetric`): values inside the range contribute scale^2/12, values
 * outside their distance to the range, squared (bin centres stand for values).
 */
int mq_histogram_mse(const struct mq_histogram *h, double omin, double omax, int symmetric,
                     double *lo, double *hi);

#endif
