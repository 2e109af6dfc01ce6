/*
 * Dynamic quantization (--dynamic): no calibration.  Each selected MatMul whose B is a
 * constant 2-D float weight becomes onnxruntime's dynamic pattern
 *   DynamicQuantizeLinear(A) -> MatMulInteger(A_q, B_q, A_zp, B_zp) -> Cast -> Mul(A_s * B_s)
 * which onnxruntime fuses into DynamicQuantizeMatMul: the weight is int8 (symmetric, per
 * column unless per tensor is asked for), the activation is quantized to uint8 at run time.
 */
#ifndef MQ_QUANT_DYNAMIC_H
#define MQ_QUANT_DYNAMIC_H

#include "onnx.pb-c.h"
#include "quant/select.h"
#include "util/error.h"

struct mq_dynamic_options {
    int per_channel;   /* one weight scale per output column (default), else per tensor */
};

struct mq_dynamic_result {
    int quantized;     /* MatMuls rewritten */
    int kept_float;    /* selected MatMuls left float (an activation B, ...) */
};

int mq_quant_dynamic(Onnx__ModelProto *model, struct mq_selection *sel,
                     const struct mq_dynamic_options *o, struct mq_dynamic_result *result,
                     struct mq_error *err);

#endif
