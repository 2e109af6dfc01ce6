/*
 * Input channels padded with zeros up to the count onnxruntime's fast int8
 * Conv kernel takes (a multiple of 4), before selection and calibration, and
 * the padding taken out again by `dequantize`.  channel_pad.c says why.
 */
#ifndef MQ_CHANNEL_PAD_H
#define MQ_CHANNEL_PAD_H

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * Model metadata the quantizer writes when it pads: one line per padded
 * Conv input, "tensor<TAB>channels" (tensor: the Pad's output, which the
 * Conv reads; channels: how many the Conv's input had before).
 */
#define MQ_PADDED_CHANNELS_KEY "onnx-monoquant.padded_channels"

/*
 * Pads the input of every main-graph node whose op rule names the fast
 * kernel's shapes (op_rules.h: fast_input_channel_align ...) when only its
 * input channel count is off: a Pad of zero channels in front of the node,
 * zero weights for them, and the record above.  Models with subgraphs are
 * left alone.  *n_padded gets how many nodes.
 */
int mq_pad_conv_input_channels(Onnx__ModelProto *model, int *n_padded, struct mq_error *err);

/*
 * After the QDQ rewrite: each recorded Pad whose output only a QuantizeLinear
 * reads moves behind it and pads the 8-bit data with the zero point (the same
 * values; onnxruntime then pads bytes, not floats).  *n_moved gets how many.
 */
int mq_channel_pads_to_integer(Onnx__ModelProto *model, int *n_moved, struct mq_error *err);
/* The inverse, which `dequantize` runs first so that its Q/DQ pairs are next to each other. */
int mq_channel_pads_to_float(Onnx__ModelProto *model, struct mq_error *err);

/*
 * Undoes what the record names in a float (dequantized) model: the Conv reads
 * the unpadded tensor again, its weight loses the zero channels, the Pad and
 * the record go.  An entry whose Pad, Conv or zero weights are no longer there
 * is left as it is (the model still computes the same).  *n_restored gets how
 * many were undone.
 */
int mq_unpad_conv_input_channels(Onnx__ModelProto *model, int *n_restored, struct mq_error *err);

#endif
