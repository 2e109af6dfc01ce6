/*
 * --fallback int16: the nodes the accuracy search leaves out of the int8
 * rewrite read their float activations through 16-bit QuantizeLinear/
 * DequantizeLinear pairs (opset 21) instead of plain float, for runtimes
 * with 16-bit kernels.  Applied after the rewrite, on the main graph.
 */
#ifndef MQ_QUANT_TARGET_FALLBACK_H
#define MQ_QUANT_TARGET_FALLBACK_H

#include "calib/ranges.h"
#include "onnx.pb-c.h"
#include "util/error.h"

enum mq_fallback_type {
    MQ_FALLBACK_FLOAT = 0,
    MQ_FALLBACK_INT16,
};

/* The opset a fallback type needs (21 for int16 QuantizeLinear), 0 for none. */
int mq_fallback_required_opset(enum mq_fallback_type type);

/*
 * Puts an int16 Q/DQ pair (asymmetric, scale from the tensor's range in
 * `ranges`) in front of every float activation input of `nodes` (nodes of
 * the model's main graph, left float by the rewrite).  An input that is an
 * initializer, already comes out of a DequantizeLinear, or has no range is
 * left as it is; a tensor read by several of the nodes gets one pair.
 * The model must import opset 21 or later.
 */
int mq_fallback_apply_int16(Onnx__ModelProto *model, Onnx__NodeProto *const *nodes, int n_nodes,
                            const struct mq_ranges *ranges, struct mq_error *err);

/*
 * onnxruntime (1.30, from its basic optimization level on) quantizes a float Conv, Gemm or
 * MatMul by itself when the node's data input comes out of a DequantizeLinear and its output,
 * through Relu or Clip nodes that the QuantizeLinear after them makes redundant, reaches only
 * QuantizeLinear nodes: it quantizes the float weight per tensor and fuses the lot into an
 * integer kernel.  Leaving such a node float buys nothing there and costs the per-channel
 * weights.  Sets out[k] to 1 for each of `nodes` (main-graph nodes of the rewritten model)
 * that is so placed, 0 otherwise.
 */
int mq_fallback_requantized_by_runtime(const Onnx__ModelProto *model,
                                       Onnx__NodeProto *const *nodes, int n_nodes, int *out,
                                       struct mq_error *err);

#endif
