/*
 * A ReduceMean over every spatial axis of an [N, C, H, W] (or [N, C, D, H, W])
 * tensor written as the GlobalAveragePool it is, before selection and calibration
 * (mean_pool.c says why).
 */
#ifndef MQ_QUANT_MEAN_POOL_H
#define MQ_QUANT_MEAN_POOL_H

#include "onnx.pb-c.h"
#include "quant/opset.h"
#include "util/error.h"

/* Whether the main graph holds a ReduceMean whose axes could be the spatial ones, ranks aside
   (so that the caller learns shapes only when there is one); models with subgraphs never do. */
int mq_mean_pool_candidates(const Onnx__ModelProto *model);

/*
 * Rewrites every ReduceMean of the main graph whose axes are exactly 2 ..
 * rank - 1 of its input (rank >= 4, from the graph's value_info, inputs and
 * outputs, else from `shapes`, which may be NULL) into GlobalAveragePool,
 * followed by Flatten (axis 1) when it dropped the reduced axes (keepdims 0):
 * the same tensor.  An axes initializer nothing else reads goes too.
 * *n_rewritten gets how many.
 */
int mq_means_as_pool(Onnx__ModelProto *model, const struct mq_opset_hints *shapes,
                     int *n_rewritten, struct mq_error *err);

#endif
