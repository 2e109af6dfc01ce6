/*
 * The sums behind a per-sample SQNR: the signal energy of n activation values
 * and the energy of the error that quantizing and dequantizing them with one
 * scale makes (quant/sample_stats.h).
 */
#ifndef MQ_QUANT_ROUNDING_SUMS_H
#define MQ_QUANT_ROUNDING_SUMS_H

#include <stdint.h>

/* Lanes of the sums: value i goes to lane i % MQ_ROUNDING_LANES.  Thirty-two, so that a lane's
   next add comes several vector steps after its last one (eight made every step wait on the
   add before it); the vector paths assume it. */
#define MQ_ROUNDING_LANES 32

/*
 * Adds, for each x[i] (a value that is not finite counts as 0), v * v to
 * signal[i % 32] and e * e to noise[i % 32] in double, e being what
 * QuantizeLinear then DequantizeLinear (round half to even, clamped to
 * [qmin, qmax]) give back minus v.  Each lane adds its values in index order,
 * so every CPU gives the same doubles; AVX2 and AVX-512 CPUs run it wider.
 */
void mq_quant_rounding_sums(const float *x, int64_t n, float scale, float zero, float qmin,
                            float qmax, double signal[MQ_ROUNDING_LANES],
                            double noise[MQ_ROUNDING_LANES]);

#endif
