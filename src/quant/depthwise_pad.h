/*
 * Depthwise Convs widened with zero channels to the channel count
 * onnxruntime's fast int8 depthwise kernel takes, together with the Conv
 * that feeds them and the Convs they feed, after equalization
 * (depthwise_pad.c says why).
 */
#ifndef MQ_DEPTHWISE_PAD_H
#define MQ_DEPTHWISE_PAD_H

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * For every depthwise Conv of the main graph (group = channels, one input
 * and one output channel per group) whose channel count is not a multiple of
 * the Conv rule's fast_depthwise_channel_align (op_rules.h), read from a
 * group-1 Conv (through at most one Relu or Clip that keeps 0 at 0) that
 * nothing else reads, and read only by group-1 Convs (through at most one
 * such activation): the producer gets zero output channels (zero weights and
 * bias), the depthwise Conv zero channels and a larger group, the consumers
 * zero input channels, so every output stays the same.  Weights and biases
 * must be float initializers read by that node only.  Models with subgraphs
 * are left alone.  *n_padded gets how many depthwise Convs.
 */
int mq_pad_depthwise_channels(Onnx__ModelProto *model, int *n_padded, struct mq_error *err);

#endif
