/*
 * HardSwish written out as Add, Clip, Mul and Mul (ops onnxruntime runs in
 * int8) where it sits behind a Conv, before selection and calibration; see
 * hardswish_split.c for why and which.
 */
#ifndef MQ_HARDSWISH_SPLIT_H
#define MQ_HARDSWISH_SPLIT_H

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * Run by quantize's opt-in --split-hardswish (docs/quantization-notes.md: faster, at some
 * accuracy cost on paddleocr_det).
 * Splits every HardSwish of the main graph whose input a Conv, Gemm or
 * MatMul writes and that the graph does not return; *n_split gets how many.
 * On failure the model is unchanged except for unused scalar initializers.
 */
int mq_split_hardswish(Onnx__ModelProto *model, int *n_split, struct mq_error *err);

/*
 * The same HardSwish written as its definition, Mul(x, HardSigmoid(x, 1/6, 1/2)), exact in
 * float: the quantizer runs that HardSigmoid on x's codes (hardsigmoid_codes.h).  Run by
 * quantize's opt-in --hardswish-codes; *n_written gets how many.
 */
int mq_hardswish_as_hardsigmoid(Onnx__ModelProto *model, int *n_written, struct mq_error *err);

#endif
