/*
 * Cross-layer equalization (quant/equalize.h) measured in the calibration
 * pass instead of a pass of its own.  Equalizing rescales only the tensors
 * between pairs, channel c of one by 1/s_c; every other tensor computes the
 * same values.  So calibration can run the graph as it is before equalizing,
 * measuring besides the ranges each channel's minimum and maximum of those
 * tensors (an extra work of the pass, calib/calibrate.h); the maxima of |value|
 * then decide the equalization exactly as a pass of their own would (the same
 * values, so the same graph), and the range of each rescaled tensor is the
 * smallest min_c / s_c to the largest max_c / s_c.  Only for ranges that are
 * the observed extremes (minmax): a histogram of the rescaled tensor cannot be
 * made from the channels'.
 */
#ifndef MQ_QUANT_EQUALIZE_FOLD_H
#define MQ_QUANT_EQUALIZE_FOLD_H

#include <stdint.h>

#include "calib/calibrate.h"
#include "calib/ranges.h"
#include "model/model.h"
#include "quant/equalize.h"
#include "util/error.h"

struct mq_quant_equalize_fold;

/* *out gets the measuring state for the pairs of `model` (as it is, before equalizing); NULL
   when it has none (nothing to measure or equalize). */
int mq_quant_equalize_fold_new(struct mq_model *model, struct mq_quant_equalize_fold **out,
                               struct mq_error *err);
/* The calibration pass's extra work that measures the channels; valid until the fold is freed. */
const struct mq_calib_extra *mq_quant_equalize_fold_extra(struct mq_quant_equalize_fold *fold);
/*
 * After the calibration pass that ran the extra work: adds the channel maxima to `maxima`
 * (what a --load-ranges needs to make the same graph), equalizes `model` from them
 * (mq_quant_equalize_apply), and sets the range of each rescaled tensor in `ranges`
 * (calibrated with MQ_CALIB_MINMAX) to the one the equalized graph has.  *n_pairs (may be
 * NULL) gets how many pairs changed.
 */
int mq_quant_equalize_fold_finish(struct mq_quant_equalize_fold *fold, struct mq_model *model,
                                  struct mq_ranges *ranges, struct mq_ranges *maxima,
                                  int *n_pairs, struct mq_error *err);
/*
 * Makes finish equalize from the maxima it is given (measured on all the samples of a
 * sharded calibration, mq_quant_equalize_measure), the pass's extremes only deriving the
 * ranges: a shard's derived range is then the one a single run derives from that shard's
 * values, and the smallest and largest over shards are exactly a single run's.
 */
void mq_quant_equalize_fold_keep_maxima(struct mq_quant_equalize_fold *fold);
/*
 * Makes finish also tell `fn` each rescaled tensor and its channel scales (after deriving its
 * range): for statistics gathered on the same pass, which saw the tensor before equalizing.
 */
void mq_quant_equalize_fold_follow(struct mq_quant_equalize_fold *fold,
                                   mq_quant_equalize_scales_fn fn, void *user);
void mq_quant_equalize_fold_free(struct mq_quant_equalize_fold *fold);

/*
 * The range of a tensor of `channels` channels whose channel c held values from lo[c] to
 * hi[c] (lo[c] > hi[c]: none) once channel c is divided by s[c] > 0: *out_lo, *out_hi; 0 when
 * no channel held a value.
 */
int mq_quant_equalize_scaled_range(int64_t channels, const float *lo, const float *hi,
                                   const double *s, float *out_lo, float *out_hi);

#endif
