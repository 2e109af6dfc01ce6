/*
 * Statistics of the calibration samples for what a range alone cannot tell
 * the rewrite:
 *
 *  - per activation to quantize: how well its scale serves each sample (the
 *    worst per-sample SQNR of quantizing it).  A tensor whose quiet samples
 *    drown in the quantization step (raw audio, a spectrum) stays float.
 *  - per Conv and Gemm with a constant weight: the mean of its data input per
 *    input channel and kernel tap, so the bias can absorb the mean error the
 *    weights' rounding causes (bias correction, Nagel et al. 2019, "Data-Free
 *    Quantization Through Weight Equalization and Bias Correction").
 *
 * Samples may run on several threads, but each sample's sums are added to the
 * totals in sample order, and every sum is in double: the result is the same
 * on every run, whatever the number of threads.
 *
 * Gathered on the calibration pass (mq_quant_stats_prepare, then its
 * mq_calib_extra): the means, and per activation and sample the signal energy
 * and non-zero count that bound its SQNR under any scale (quant/sqnr_bound.h).
 * Once the ranges give the scales, mq_quant_stats_settle decides each
 * activation the floor clears; only the others need a second pass
 * (mq_quant_stats_measure_undecided).  mq_quant_stats_collect is the
 * second pass for everything, for ranges that came without calibration.
 */
#ifndef MQ_QUANT_SAMPLE_STATS_H
#define MQ_QUANT_SAMPLE_STATS_H

#include <stdint.h>

#include "calib/calibrate.h"
#include "calib/ranges.h"
#include "calib/reader.h"
#include "onnx.pb-c.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "util/error.h"

struct mq_plan;
struct mq_quant_stats;

/*
 * Runs every sample of `source` through `plan` (built from `model`, plain,
 * not fused).  `names` are the activations the rewrite may quantize (their
 * ranges come from `ranges`, their scale from o's activation type); the
 * weighted nodes are the selected Conv and Gemm nodes of `sel` whose weight
 * is a float32 initializer.  A sample that fails stops the pass.  Samples run on `jobs`
 * threads (0: one); the result does not depend on how many.
 */
int mq_quant_stats_collect(const struct mq_plan *plan, const struct mq_calib_source *source,
                           const Onnx__ModelProto *model, const struct mq_selection *sel,
                           char *const *names, int n_names, const struct mq_ranges *ranges,
                           const struct mq_quant_options *o, int jobs,
                           struct mq_quant_stats **out, struct mq_error *err);
void mq_quant_stats_free(struct mq_quant_stats *stats);

/*
 * Before calibration: the statistics to gather on its way (the means only under
 * o->bias_correction); the extra work to hand mq_calibrate (mq_calib_options.extra, one entry).
 */
int mq_quant_stats_prepare(const Onnx__ModelProto *model, const struct mq_selection *sel,
                           char *const *names, int n_names, const struct mq_quant_options *o,
                           struct mq_quant_stats **out, struct mq_error *err);
const struct mq_calib_extra *const *mq_quant_stats_extra(struct mq_quant_stats *stats);

/*
 * After calibration succeeded: each activation gets its scale from `ranges`, and those whose
 * floor clears o->min_sample_sqnr_db (by MQ_QUANT_SQNR_FLOOR_MARGIN_DB) on every sample are
 * decided; *n_undecided counts the others, for mq_quant_stats_measure_undecided.
 */
int mq_quant_stats_settle(struct mq_quant_stats *stats, const struct mq_ranges *ranges,
                          const struct mq_quant_options *o, int *n_undecided,
                          struct mq_error *err);

/* The exact per-sample SQNR of the undecided activations, on a pass of their own. */
int mq_quant_stats_measure_undecided(struct mq_quant_stats *stats, const struct mq_plan *plan,
                                     const struct mq_calib_source *source, int jobs,
                                     struct mq_error *err);

/*
 * For an activation settled by its floor (not measured exactly): the floor (dB) of its worst
 * sample's SQNR, and that sample.  NAN otherwise.
 */
double mq_quant_stats_worst_sqnr_floor(const struct mq_quant_stats *stats, const char *name,
                                       int64_t *sample);

/*
 * The lowest SQNR (dB) that quantizing `name` with the scale of its range
 * gave on one sample, and that sample's index; NAN when the tensor was never
 * seen holding a non-zero value, or not measured exactly (settled by its floor).
 */
double mq_quant_stats_worst_sqnr(const struct mq_quant_stats *stats, const char *name,
                                 int64_t *sample);

/*
 * Mean of the data input of the weighted node reading `input` with weight
 * `weight`: for a Conv, one value per (input channel, kernel tap) laid out as
 * the weight's [C/group * group, k1, k2, ...] would be without the output
 * axis, i.e. means[c * taps + t], averaged over every output position
 * (padding reads zeros); for a Gemm, one value per column of A (after
 * transA).  NULL when unknown.  *n_channels and *taps describe the layout.
 */
/*
 * After calibration, when equalization divided channel c of `tensor` by s[c] (> 0) in the graph
 * the statistics were gathered on (quant/equalize_fold.h): the input means of the nodes reading
 * it follow exactly; its per-sample signal energy becomes a lower bound (each channel's energy
 * divided by at most the largest s[c] squared), which keeps its SQNR floor a floor.  A node
 * whose layout does not match forgets its means (no bias correction).  Has the signature of
 * mq_quant_equalize_scales_fn, with `stats` as user.
 */
int mq_quant_stats_rescale(void *stats, const char *tensor, int64_t channels, const double *s,
                           struct mq_error *err);

const double *mq_quant_stats_input_means(const struct mq_quant_stats *stats, const char *input,
                                         const char *weight, int64_t *n_channels,
                                         int64_t *taps);

#endif
