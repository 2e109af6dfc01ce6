/*
 * Cross-layer range equalization of Conv pairs, from the calibration samples.
 *
 * A Conv whose output only feeds a second Conv (group 1), with nothing in
 * between, computes y = W2 * (W1 * x + b1).  Scaling output channel c of the
 * first by 1/s_c and input channel c of the second by s_c leaves y unchanged
 * in exact arithmetic, but changes what 8 bits can hold: the tensor between
 * the two is quantized with one scale for all its channels, and one channel
 * reaching 40 times the others' values (common in depthwise layers) sets
 * that scale alone.  With a_c the largest |value| channel c takes on the
 * calibration samples and r2_c the largest |weight| of input channel c of
 * the second Conv, s_c = sqrt(a_c / r2_c) gives both the channel's values
 * and its weights the range sqrt(a_c r2_c): the loud channels get quieter,
 * and the second Conv's per-output-channel weight scales absorb the rest.
 * The scales come from the values, not the weights: the weights alone do not
 * show which channels are loud (equalizing by weight ranges, as data-free
 * methods do, cost a corpus model 0.8 dB where this costs 0.1).
 */
#ifndef MQ_QUANT_EQUALIZE_H
#define MQ_QUANT_EQUALIZE_H

#include <stdint.h>

#include "model/model.h"
#include "util/error.h"

/*
 * Equalizes every such pair of the main graph, measuring the tensors between
 * them on the samples of calib_dir (the first `limit`, 0: all), in float32.
 * *n_pairs (may be NULL) gets how many pairs changed.
 */
int mq_quant_equalize_conv_pairs(struct mq_model *model, const char *calib_dir, int64_t limit,
                                 int *n_pairs, struct mq_error *err);

#endif
