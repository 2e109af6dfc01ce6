/*
 * The error sums of one float32 sample against its reference (what
 * mq_error_stats_add accumulates), vectorized: value i goes to lane
 * i % MQ_ERROR_SUM_LANES, each lane sums its values in index order, and the
 * lanes are combined in a fixed order at the end.  The AVX2, SSE2 and plain C
 * paths keep the very same lanes, so the sums depend only on the tensors, bit
 * for bit, never on the CPU that ran them.
 */
#ifndef MQ_REPORT_ERROR_SUMS_H
#define MQ_REPORT_ERROR_SUMS_H

#include <stdint.h>

#define MQ_ERROR_SUM_LANES 8

struct mq_error_sums {
    double ref2, test2, dot, err2; /* over the pairs where both sides are finite */
    double max_abs_error;          /* largest |test - reference| there, 0 when none */
    int64_t elements;              /* pairs that entered the sums */
    int64_t nonfinite_equal;       /* NaN against NaN, or the same infinity on both sides */
    int64_t nonfinite_mismatch;    /* any other pair with a NaN or an infinity */
};

/* Which code runs the loop: AUTO picks the widest this CPU has; the others are for tests. */
enum mq_error_sums_path {
    MQ_ERROR_SUMS_AUTO,
    MQ_ERROR_SUMS_SCALAR,
    MQ_ERROR_SUMS_SSE2,
    MQ_ERROR_SUMS_AVX2,
};

/*
 * Fills *out from n reference and test values.  A path this build or CPU lacks falls back to
 * the next narrower one; returns the path that ran.  Every path gives the same bits.
 */
enum mq_error_sums_path mq_error_sums_f32(const float *reference, const float *test, int64_t n,
                                          enum mq_error_sums_path path,
                                          struct mq_error_sums *out);

#endif
