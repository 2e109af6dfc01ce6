/*
 * A channel shuffle written as Reshape -> Transpose -> Reshape (ShuffleNet's
 * and its descendants') rewritten as one Gather of the same channels, before
 * selection and calibration (shuffle_gather.c says why).
 */
#ifndef MQ_SHUFFLE_GATHER_H
#define MQ_SHUFFLE_GATHER_H

#include "onnx.pb-c.h"
#include "quant/opset.h"
#include "util/error.h"

/* Whether the main graph holds the node pattern, shapes aside (so that the caller learns
   shapes only when there is one); models with subgraphs never do. */
int mq_shuffle_candidates(const Onnx__ModelProto *model);

/*
 * Rewrites every Reshape -> Transpose -> Reshape of the main graph that
 * splits axis c of x into (a, b), swaps the two and merges them back into x's
 * shape (each intermediate read by the next node only) into Gather(x, axis c,
 * indices k -> (k mod a) * b + k / a), which gives the same tensor.  `shapes`
 * answers x's and the first Reshape's output shapes (a pattern it does not
 * know stays).  Nodes and initializers that only computed the Reshapes' shapes
 * go too.  *n_rewritten gets how many shuffles.
 */
int mq_shuffles_as_gather(Onnx__ModelProto *model, const struct mq_opset_hints *shapes,
                          int *n_rewritten, struct mq_error *err);

#endif
