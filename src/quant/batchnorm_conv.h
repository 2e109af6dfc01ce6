/*
 * A BatchNormalization that no Conv absorbed, written as the depthwise 1x1
 * Conv that computes the same per-channel affine map, so that onnxruntime runs
 * it as QLinearConv inside the int8 island instead of dequantizing around it.
 */
#ifndef MQ_QUANT_BATCHNORM_CONV_H
#define MQ_QUANT_BATCHNORM_CONV_H

#include "onnx.pb-c.h"
#include "quant/opset.h"
#include "util/error.h"

/*
 * Whether the main graph has a BatchNormalization this rewrite may take (before any shape is
 * known): callers run a shape probe only then.
 */
int mq_batchnorm_conv_candidates(const Onnx__ModelProto *model);

/*
 * Rewrites, in the main graph, each inference BatchNormalization whose input has rank 3 or 4
 * (from `shapes`), whose parameters are float32 initializers, whose input another op with an
 * integer kernel writes and whose output only such ops read (so both sides are int8 data), as
 * Conv(x, W[C, 1, 1(, 1)], B[C], group C): W = scale / sqrt(var + epsilon), B = bias - mean * W.
 * The Conv keeps the node's name and output; parameters nothing else reads are dropped.
 * *n gets how many were rewritten.  Exact up to float rounding.
 */
int mq_batchnorms_as_conv(Onnx__ModelProto *model, const struct mq_opset_hints *shapes, int *n,
                          struct mq_error *err);

#endif
