/*
 * Keeps onnxruntime's transformer fusions intact in static QDQ: after selection, nodes that
 * onnxruntime's optimiser fuses into one kernel (a Gelu written out as Div/Erf/Add/Mul or with
 * Tanh, the bias Add before it (BiasGelu), a LayerNorm written out as ReduceMean/Sub/Pow/Sqrt/
 * Div/Mul/Add, an Add of two activations feeding a LayerNormalization (SkipLayerNormalization))
 * go back to float even when their op type was named: a Q/DQ pair inside the pattern would
 * stop the fusion and cost more than it saves.  Selected nodes whose every tensor is an
 * integer are skipped, and every node whose outputs all hold integers or bools (int64 shape
 * arithmetic: Shape, Gather, Unsqueeze, Concat, ...) gets integer_only set in its choice, so
 * the summary counts them on one line instead of listing them as staying float.
 */
#ifndef MQ_QUANT_FUSION_GUARD_H
#define MQ_QUANT_FUSION_GUARD_H

#include "onnx.pb-c.h"
#include "quant/select.h"
#include "util/error.h"

int mq_select_keep_fusions(Onnx__ModelProto *model, struct mq_selection *sel,
                           struct mq_error *err);

#endif
