/*
 * The float16 op table (see fp16_ops.h): one row per ai.onnx op type the
 * conversion knows, with its kind, the slots of its float type T and the
 * opsets of onnxruntime's CPU float16 kernels.
 */
#include "quant/fp16_ops.h"

#include <string.h>

/* Slot masks: every slot, no slot. */
#define ALL 0xFFFFFFFFu
#define NONE 0u

/*
 * The onnxruntime columns were measured: a one-node float16 model per op and
 * opset (7 to 18), run with graph optimizations disabled, and the optimized
 * model checked for the Casts onnxruntime inserts around a node it can only
 * run in float32.  tests/e2e/fp16 repeats the check on every model it writes.
 */
static const struct mq_fp16_op op_table[] = {
    /* data movement, selection, comparison */
    {"Reshape", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Transpose", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Flatten", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Squeeze", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Unsqueeze", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Concat", MQ_FP16_NEUTRAL, ALL, 0x1, 1, 0},
    {"Split", MQ_FP16_NEUTRAL, 0x1, ALL, 1, 0},
    {"Slice", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Gather", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"GatherElements", MQ_FP16_NEUTRAL, 0x1, 0x1, 11, 0},
    {"GatherND", MQ_FP16_NEUTRAL, 0x1, 0x1, 11, 0},
    {"ScatterND", MQ_FP16_NEUTRAL, 0x5, 0x1, 11, 0},
    {"ScatterElements", MQ_FP16_NEUTRAL, 0x5, 0x1, 11, 0},
    {"Expand", MQ_FP16_NEUTRAL, 0x1, 0x1, 8, 0},
    {"Identity", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 0},
    {"Compress", MQ_FP16_NEUTRAL, 0x1, 0x1, 9, 0},
    {"ReverseSequence", MQ_FP16_NEUTRAL, 0x1, 0x1, 10, 0},
    {"Shape", MQ_FP16_NEUTRAL, 0x1, NONE, 1, 0},
    {"Dropout", MQ_FP16_NEUTRAL, 0x1, 0x1, 1, 11},
    {"Max", MQ_FP16_NEUTRAL, ALL, 0x1, 12, 0},
    {"Min", MQ_FP16_NEUTRAL, ALL, 0x1, 12, 0},
    {"Clip", MQ_FP16_NEUTRAL, ALL, 0x1, 12, 0},
    {"Round", MQ_FP16_NEUTRAL, 0x1, 0x1, 11, 0},
    {"Sign", MQ_FP16_NEUTRAL, 0x1, 0x1, 9, 0},
    {"IsNaN", MQ_FP16_NEUTRAL, 0x1, NONE, 9, 0},
    {"Tile", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"DepthToSpace", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"SpaceToDepth", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Pad", MQ_FP16_NEUTRAL, 0x5, 0x1, 0, 0},
    {"Relu", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"MaxPool", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"GlobalMaxPool", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"ReduceMax", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"ReduceMin", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Abs", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Neg", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Floor", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Ceil", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"Where", MQ_FP16_NEUTRAL, 0x6, 0x1, 0, 0},
    {"TopK", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    {"ArgMax", MQ_FP16_NEUTRAL, 0x1, NONE, 0, 0},
    {"ArgMin", MQ_FP16_NEUTRAL, 0x1, NONE, 0, 0},
    {"Equal", MQ_FP16_NEUTRAL, 0x3, NONE, 0, 0},
    {"Less", MQ_FP16_NEUTRAL, 0x3, NONE, 0, 0},
    {"Greater", MQ_FP16_NEUTRAL, 0x3, NONE, 0, 0},
    {"LessOrEqual", MQ_FP16_NEUTRAL, 0x3, NONE, 0, 0},
    {"GreaterOrEqual", MQ_FP16_NEUTRAL, 0x3, NONE, 0, 0},
    {"Size", MQ_FP16_NEUTRAL, 0x1, NONE, 0, 0},
    {"Trilu", MQ_FP16_NEUTRAL, 0x1, 0x1, 0, 0},
    /* arithmetic */
    {"LayerNormalization", MQ_FP16_COMPUTE, 0x7, 0x1, 1, 0}, /* Mean and InvStdDev stay float (U) */
    {"Mod", MQ_FP16_COMPUTE, ALL, 0x1, 10, 0},
    {"Shrink", MQ_FP16_COMPUTE, 0x1, 0x1, 9, 0},
    {"Conv", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"ConvTranspose", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"MatMul", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Gemm", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Add", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Sub", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Mul", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Div", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Pow", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Sum", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Mean", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Sigmoid", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Tanh", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Exp", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Log", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Sqrt", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Reciprocal", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Erf", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Softmax", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"LogSoftmax", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Hardmax", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"LeakyRelu", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"PRelu", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Elu", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Selu", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"HardSigmoid", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"HardSwish", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Softplus", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Softsign", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ThresholdedRelu", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Mish", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Gelu", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"AveragePool", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"GlobalAveragePool", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"LpPool", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"GlobalLpPool", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"BatchNormalization", MQ_FP16_COMPUTE, ALL, ALL, 0, 0},
    {"InstanceNormalization", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"GroupNormalization", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"LRN", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"MeanVarianceNormalization", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"LpNormalization", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceMean", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceSum", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceProd", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceL1", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceL2", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceLogSum", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceLogSumExp", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"ReduceSumSquare", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Einsum", MQ_FP16_COMPUTE, ALL, 0x1, 0, 0},
    {"Sin", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Cos", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Tan", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Asin", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Acos", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Atan", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Sinh", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Cosh", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Asinh", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Acosh", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Atanh", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Det", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"GridSample", MQ_FP16_COMPUTE, 0x3, 0x1, 0, 0},
    {"RoiAlign", MQ_FP16_COMPUTE, 0x3, 0x1, 0, 0},
    /* roi and scales are float whatever the data is */
    {"Resize", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"Upsample", MQ_FP16_COMPUTE, 0x1, 0x1, 0, 0},
    {"RNN", MQ_FP16_COMPUTE, 0xEF, ALL, 0, 0},
    {"GRU", MQ_FP16_COMPUTE, 0xEF, ALL, 0, 0},
    {"LSTM", MQ_FP16_COMPUTE, 0xEF, ALL, 0, 0},
    /* no float16 in their schema, or a dtype attribute of their own */
    {"Range", MQ_FP16_BLOCKED, ALL, ALL, 0, 0},
    {"NonMaxSuppression", MQ_FP16_BLOCKED, ALL, NONE, 0, 0},
    {"Celu", MQ_FP16_BLOCKED, 0x1, 0x1, 0, 0},
    {"IsInf", MQ_FP16_BLOCKED, 0x1, NONE, 0, 0},
    {"CumSum", MQ_FP16_BLOCKED, 0x1, 0x1, 0, 0},
    {"CastLike", MQ_FP16_BLOCKED, ALL, 0x1, 0, 0},
    {"QuantizeLinear", MQ_FP16_BLOCKED, ALL, NONE, 0, 0},
    {"DequantizeLinear", MQ_FP16_BLOCKED, ALL, 0x1, 0, 0},
    {"DynamicQuantizeLinear", MQ_FP16_BLOCKED, 0x1, NONE, 0, 0},
    {"RandomNormal", MQ_FP16_BLOCKED, NONE, 0x1, 0, 0},
    {"RandomUniform", MQ_FP16_BLOCKED, NONE, 0x1, 0, 0},
    {"RandomNormalLike", MQ_FP16_BLOCKED, ALL, 0x1, 0, 0},
    {"RandomUniformLike", MQ_FP16_BLOCKED, ALL, 0x1, 0, 0},
    {"Multinomial", MQ_FP16_BLOCKED, ALL, NONE, 0, 0},
    {"Bernoulli", MQ_FP16_BLOCKED, ALL, 0x1, 0, 0},
    {"EyeLike", MQ_FP16_BLOCKED, ALL, 0x1, 0, 0},
    {"TfIdfVectorizer", MQ_FP16_BLOCKED, ALL, 0x1, 0, 0},
};

const struct mq_fp16_op *mq_fp16_op_find(const char *op_type)
{
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
        if (strcmp(op_table[i].op, op_type) == 0)
            return &op_table[i];
    return NULL;
}

int mq_fp16_slot_in(unsigned mask, size_t k)
{
    return k < 31 ? (int)((mask >> k) & 1u) : (int)((mask >> 31) & 1u);
}

int mq_fp16_op_on_ort_cpu(const struct mq_fp16_op *op, int opset)
{
    return op->ort_since != 0 && opset >= op->ort_since &&
           (op->ort_until == 0 || opset <= op->ort_until);
}
