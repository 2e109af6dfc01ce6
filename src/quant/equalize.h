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

#include "calib/ranges.h"
#include "calib/reader.h"
#include "model/model.h"
#include "util/error.h"

/*
 * Measures, on the samples of calib_dir read as `open` says (limit,
 * pre-processing; NULL: every sample, tensors only), the largest |value| of
 * each channel of every tensor between such a pair, in float32, and adds them
 * to `into`'s channel maxima (kept with the calibrated ranges).
 */
int mq_quant_equalize_measure(struct mq_model *model, const char *calib_dir,
                              const struct mq_calib_open_options *open, int jobs,
                              struct mq_ranges *into, struct mq_error *err);
/*
 * Equalizes every pair, in the main graph and every subgraph, whose tensor between has channel
 * maxima in `maxima`
 * (and needs it: see above).  *n_pairs (may be NULL) gets how many changed.
 * The same maxima give the same graph, measured now or loaded from a file.
 */
int mq_quant_equalize_apply(struct mq_model *model, const struct mq_ranges *maxima, int *n_pairs,
                            struct mq_error *err);

/*
 * As mq_quant_equalize_apply, and after each pair it changes calls on_scales (may be NULL)
 * with the name of the tensor between and its channel scales: channel c of that tensor now
 * holds its values divided by s[c] (up to float rounding); no other tensor's values change.
 */
typedef int (*mq_quant_equalize_scales_fn)(void *user, const char *tensor, int64_t channels,
                                           const double *s, struct mq_error *err);
int mq_quant_equalize_apply_with(struct mq_model *model, const struct mq_ranges *maxima,
                                 int *n_pairs, mq_quant_equalize_scales_fn on_scales, void *user,
                                 struct mq_error *err);

/*
 * Adds to `into`'s channel maxima, zero, each tensor between a pair (the tensors
 * mq_quant_equalize_measure measures, in the same order): what a measurement made elsewhere
 * (the calibration pass, quant/equalize_fold.h) fills.
 */
int mq_quant_equalize_pair_tensors(struct mq_model *model, struct mq_ranges *into,
                                   struct mq_error *err);

#endif
