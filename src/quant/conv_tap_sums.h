/*
 * What each kernel tap of a Conv reads from one input channel, summed over the output
 * positions: the input means behind bias correction (quant/sample_stats.h) are these sums over
 * the calibration samples, divided by the number of positions.
 */
#ifndef MQ_QUANT_CONV_TAP_SUMS_H
#define MQ_QUANT_CONV_TAP_SUMS_H

#include <stdint.h>

#include "quant/graph.h"

/* How a Conv reads one channel: per spatial dim, the input and output sizes and the reads. */
struct mq_quant_tap_geometry {
    int spatial; /* 1 to MQ_CONV_MAX_SPATIAL */
    int64_t in[MQ_CONV_MAX_SPATIAL], out[MQ_CONV_MAX_SPATIAL];
    int64_t kernel[MQ_CONV_MAX_SPATIAL], stride[MQ_CONV_MAX_SPATIAL];
    int64_t dilation[MQ_CONV_MAX_SPATIAL];
    int64_t pad[MQ_CONV_MAX_SPATIAL]; /* leading pad: output 0 reads from input -pad */
};

/* The doubles of scratch mq_quant_conv_tap_sums needs for g, or -1 when that is more than
   `limit` (or the sizes are not positive). */
int64_t mq_quant_conv_tap_scratch(const struct mq_quant_tap_geometry *g, int64_t limit);

/*
 * For each of n_planes channels (consecutive planes of in[0] x in[1] x ... floats from
 * `planes`) adds to sums[p * taps + tap], for every tap of the kernel (row-major kernel order),
 * the sum over all output positions of the value of plane p that tap reads there: 0 outside
 * the input and for values that are not finite.  Summed in doubles, one spatial dim at a
 * time; deterministic (the same doubles for the same planes, however many at a time).
 * `scratch` holds mq_quant_conv_tap_scratch(g, ...) doubles.  0, or -1 when out of memory.
 */
int mq_quant_conv_tap_sums(const struct mq_quant_tap_geometry *g, const float *planes,
                           int64_t n_planes, double *scratch, double *sums);

#endif
