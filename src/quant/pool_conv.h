/*
 * After the QDQ rewrite: a quantized pooling node whose op rule says
 * onnxruntime's int8 kernel for it is slow (op_rules.h:
 * int8_as_depthwise_conv) written as the depthwise Conv that computes the
 * same values, which onnxruntime runs in its vectorised int8 depthwise
 * kernel (pool_conv.c says why).
 */
#ifndef MQ_POOL_CONV_H
#define MQ_POOL_CONV_H

#include "calib/reader.h"
#include "model/model.h"
#include "onnx.pb-c.h"
#include "quant/opset.h"
#include "util/error.h"

/*
 * Whether the main graph holds a node the rewrite below would take, shapes
 * aside (so that the caller learns shapes only when there is one).
 */
int mq_pool_conv_candidates(const Onnx__ModelProto *model);

/*
 * Rewrites every DequantizeLinear -> AveragePool -> QuantizeLinear of the
 * main graph (the pool's output read by that QuantizeLinear only) whose
 * average a Conv computes: no ceil_mode, no dilation, pads only when counted
 * (count_include_pad), explicit or VALID padding.  The pool becomes a Conv of
 * the same name with group = channels and an int8 weight of ones whose
 * DequantizeLinear scale is 1 / kernel elements (exact in onnxruntime's
 * integer arithmetic).  `shapes` answers the pool input's channel count (a
 * pool whose input shape it does not know stays).  *n_rewritten gets how many.
 */
int mq_pools_as_depthwise_conv(Onnx__ModelProto *model, const struct mq_opset_hints *shapes,
                               int *n_rewritten, struct mq_error *err);

/*
 * The rewrite above with the channel counts that one sample of calib_dir (read as `open`
 * says; NULL: zeros of the declared input shapes, quant/shape_probe.h) gives when run
 * through the model; nothing is run when no pool qualifies.
 */
int mq_pools_as_conv_learning_shapes(struct mq_model *model, const char *calib_dir,
                                     const struct mq_calib_open_options *open, int *n_rewritten,
                                     struct mq_error *err);

#endif
