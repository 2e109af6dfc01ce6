/*
 * Calibration-aware rounding of static quantization's weights (--weight-rounding gptq):
 * instead of rounding every weight to the nearest step, the weights of a Conv, Gemm or
 * MatMul are rounded with GPTQ (quant/gptq.h), which takes each rounding error off the
 * weights not yet rounded in proportion to how the layer's input correlates them, so that
 * the layer's output on the calibration samples moves as little as the grid allows.
 *
 * A pass over the samples measures, per weight, the second moments of what it multiplies:
 * for a Conv, the input patch under the kernel (padding reads zeros), one matrix per group;
 * for a Gemm or MatMul, the rows of its data input.  Long inputs are sampled at evenly spaced
 * positions (a fixed budget of multiply-adds per sample), in sample order, in double: the
 * result is the same on every run.  The rewrite then keeps its own scales and zero points
 * and asks this module for the integers (quant/qdq_weights.c: the weight and the bias
 * correction both use them).
 */
#ifndef MQ_QUANT_WEIGHT_ROUNDING_H
#define MQ_QUANT_WEIGHT_ROUNDING_H

#include <stdint.h>

#include "calib/reader.h"
#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "quant/params.h"
#include "util/error.h"

struct mq_plan;
struct mq_weight_rounding;

/*
 * Runs every sample of `source` through `plan` (built from `model`) and prepares the GPTQ
 * factors of every main-graph Conv (1-D or 2-D), Gemm and MatMul whose weight is a float32
 * initializer read by that one node.
 */
int mq_weight_rounding_collect(const struct mq_plan *plan, const struct mq_calib_source *source,
                               const Onnx__ModelProto *model, struct mq_weight_rounding **out,
                               struct mq_error *err);
void mq_weight_rounding_free(struct mq_weight_rounding *r);

/* How many weights the pass prepared. */
int mq_weight_rounding_count(const struct mq_weight_rounding *r);

/*
 * The integers for weight `name` holding `w` (its float values) quantized with one scale
 * and zero point per channel along `axis` (n_ch of them; n_ch 1: per tensor), clamped to
 * `full`: into q [w->count].  1 when done, 0 when the weight is not one the pass prepared
 * (or its layout is not the one it saw: round to nearest then), -1 when out of memory.
 */
int mq_weight_rounding_apply(const struct mq_weight_rounding *r, const char *name,
                             const struct mq_tensor *w, int axis, const float *scales,
                             const int32_t *zero_points, int n_ch, struct mq_qrange full,
                             int32_t *q);

#endif
