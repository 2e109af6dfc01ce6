/*
 * The part of GPTQ (Frantar et al., 2022) shared by every rounding that uses it: the
 * weight-only MatMul quantizer (quant/weight_only.h) and the calibration-aware rounding of
 * static quantization's weights (quant/weight_rounding.h).  Both round the rows of a weight
 * [K, N] (K: the input features the layer sums over) in order and take each row's error off
 * the rows after it through the upper Cholesky factor U of H^-1, with H = X^T X the second
 * moments of the layer's input.
 */
#ifndef MQ_QUANT_GPTQ_H
#define MQ_QUANT_GPTQ_H

#include <stdint.h>

#include "util/error.h"

/*
 * U for the k x k second moments `hessian` (row-major, symmetric), into u [k * k]: U[i][r]
 * is u[r * k + i] (the lower factor of H^-1, transposed), U[i][i] is u[i * k + i].  A dead
 * input (H[i][i] = 0) is decoupled, and 1 % of the mean diagonal is added first (damping).
 */
int mq_gptq_factor(const double *hessian, int64_t k, double *u, struct mq_error *err);

#endif
