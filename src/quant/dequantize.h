/*
 * A QDQ model back to float (`onnx-monoquant dequantize`):
 *   - every DequantizeLinear of a constant (quantized weights, int32 biases)
 *     is computed once and stored as a float initializer, under the
 *     original name when the names tell it (`w_quantized` or
 *     `w_dequantized` -> `w`);
 *   - every activation QuantizeLinear -> DequantizeLinear pair is removed,
 *     its consumers reading the float tensor again (`t_dequantized` -> `t`);
 *   - where the quantizer dropped a Relu or Clip whose clamping the pair
 *     after it does (the quantizer folds Relu/Clip into the op before them),
 *     the activation is put back, so the model computes what the float
 *     original did.  The quantizer's record (MQ_FOLDED_ACTIVATIONS_KEY) says
 *     exactly where; a model without it gets a Relu wherever a pair clamps at
 *     exactly zero after an op that can go negative (Conv, Gemm, MatMul, Add,
 *     ...), which also catches tensors that were merely never negative on
 *     the calibration samples;
 *   - where the quantizer wrote a HardSigmoid as a Clip of its input's codes and a
 *     DequantizeLinear (quant/hardsigmoid_codes.h), the float HardSigmoid comes back;
 *   - where the quantizer padded a Conv's input with zero channels for
 *     onnxruntime's fast kernel (its record, MQ_PADDED_CHANNELS_KEY in
 *     quant/channel_pad.h), the Pad and the zero weights go again;
 *   - everything else stays as it is; initializers and value infos that only
 *     the removed nodes used are dropped.
 * Subgraphs are processed like the main graph.  The weights keep their
 * quantization error: the result is the float model the quantized one
 * approximates, for debugging and for re-quantizing with other settings.
 */
#ifndef MQ_DEQUANTIZE_H
#define MQ_DEQUANTIZE_H

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * Model metadata the quantizer writes when it folds activations: one line per
 * folded Relu/Clip, "tensor<TAB>op_type<TAB>node<TAB>min<TAB>max" (tensor: the
 * activation's output, which the op before it now writes; min/max: Clip
 * bounds as %.9g, "-inf"/"inf" when absent, "0"/"inf" for Relu).
 */
#define MQ_FOLDED_ACTIVATIONS_KEY "onnx-monoquant.folded_activations"

struct mq_dequantize_options {
    /* Fold constant DequantizeLinear only; activation pairs stay (the model then
       computes exactly what the quantized one does, with float weights). */
    int weights_only;
};

struct mq_dequantize_result {
    int weights_folded;       /* DequantizeLinear of constants turned into initializers */
    int weights_renamed;      /* of those, stored under a recovered original name */
    int pairs_removed;        /* QuantizeLinear nodes removed with their DequantizeLinear */
    int activations_restored; /* folded Relu/Clip put back */
    int restored_by_guess;    /* of those, Relus guessed without the quantizer's record */
    int kept_quantize;        /* QuantizeLinear left: an output not read by DequantizeLinear only */
    int kept_dequantize;      /* DequantizeLinear left: of a graph input or a kept QuantizeLinear */
    int initializers_removed;
    int channels_unpadded;    /* Conv inputs the quantizer padded with zero channels, restored */
    int hardsigmoids_restored; /* Clips of integer codes (HardSigmoid on codes) made float again */
};

/*
 * Rewrites the model in place.  Fails, naming the node, on an operator-format
 * quantized model (QLinearConv, MatMulInteger, ...), on a model with no
 * QuantizeLinear or DequantizeLinear, and on DequantizeLinear parameters it
 * cannot read; on failure the model must not be saved.
 */
int mq_dequantize(Onnx__ModelProto *model, const struct mq_dequantize_options *options,
                  struct mq_dequantize_result *result, struct mq_error *err);

#endif
