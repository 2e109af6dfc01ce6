/*
 * A lower bound on the SQNR of quantizing a sample's activation values with a
 * scale chosen later, from what the calibration pass can sum before any scale
 * is known: the values' energy and how many are non-zero.
 *
 * With every value inside the quantization range (or within half a step of
 * it, where a rounded zero point puts the observed minimum), rounding moves a value by at most half a step, s/2 (plus float
 * rounding of the divide and the multiply, counted below), and a zero not at
 * all.  So a sample whose non-zero values carry energy P over n values keeps
 * SQNR >= 10 log10(P / (n (s/2)^2)).  Where that floor clears a threshold for
 * every sample, the exact per-sample measurement cannot fall below it.
 */
#ifndef MQ_QUANT_SQNR_BOUND_H
#define MQ_QUANT_SQNR_BOUND_H

#include <stdint.h>

#include "calib/observer.h"
#include "quant/params.h"
#include "quant/rounding_sums.h"

/*
 * Adds v * v (in double, v = x[i], 0 when not finite) to energy[i % MQ_ROUNDING_LANES], each
 * lane in index order (the same lanes and order as mq_quant_rounding_sums' signal), and the
 * number of non-zero finite values to *nonzero.
 */
void mq_quant_signal_energy(const float *x, int64_t n, double energy[MQ_ROUNDING_LANES],
                            int64_t *nonzero);

/*
 * mq_quant_signal_energy and, in the same pass over x, mq_minmax_add(m, x, n): the same
 * doubles and the same extremes and counts as the two apart.
 */
void mq_quant_signal_energy_minmax(const float *x, int64_t n, double energy[MQ_ROUNDING_LANES],
                                   int64_t *nonzero, struct mq_minmax *m);

/*
 * Whether values observed in [lo, hi] stay within half a step of what p over `full` can
 * represent, so that quantizing any of them errs by at most half a step.
 */
int mq_quant_bound_holds(double lo, double hi, struct mq_qparams p, struct mq_qrange full);

/*
 * The floor (dB) of the SQNR of a sample whose non-zero values have mean energy
 * `energy_per_value` (energy / non-zero count), quantized with p over `full`, when
 * mq_quant_bound_holds: the largest error any one value can take, float rounding included.
 */
double mq_quant_sqnr_floor_db(double energy_per_value, struct mq_qparams p,
                              struct mq_qrange full);

/*
 * Margin (dB) a floor must clear a threshold by to settle the decision: covers the rounding of
 * the double sums and values that the measuring plan computes a few float bits apart.
 */
#define MQ_QUANT_SQNR_FLOOR_MARGIN_DB 0.05

#endif
