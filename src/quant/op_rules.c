/*
 * The quantizer's per-op table and the predicates its rows point to.  To
 * quantize a new op type, add its row here (the columns are explained in
 * op_rules.h); only a behaviour no row describes yet needs new code.
 */
#include "quant/op_rules.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model/model.h"
#include "quant/graph.h"

/* ------------------------------------------------------------ predicates */

/*
 * Resize moves values only in nearest mode; linear and cubic compute new
 * ones, and onnxruntime (1.30) keeps such a Resize float between its
 * DequantizeLinear and QuantizeLinear whatever the scales (its rule that runs
 * Resize on 8-bit data refuses any mode but nearest: integer interpolation
 * would round differently).  Quantized, it would be a float op inside an
 * island; left float, the island ends before it and the next one starts after
 * it, with the same Q/DQ its neighbours need anyway.
 */
static const char *resize_blocker(const struct mq_op_query *q, const Onnx__NodeProto *node)
{
    (void)q;
    char mode[32];
    mq_node_attr_string(node, "mode", mode, sizeof mode);
    if (mode[0] == '\0' || strcmp(mode, "nearest") == 0)
        return NULL;
    return "onnxruntime runs Resize on 8-bit data in nearest mode only; it interpolates in float";
}

static const char *input_name(const Onnx__NodeProto *node, size_t i)
{
    return i < node->n_input && node->input[i] && *node->input[i] ? node->input[i] : NULL;
}

/* Pad keeps the quantized domain only when what it adds is the zero point. */
static const char *pad_blocker(const struct mq_op_query *q, const Onnx__NodeProto *node)
{
    char mode[32];
    mq_node_attr_string(node, "mode", mode, sizeof mode);
    if (mode[0] && strcmp(mode, "constant") != 0)
        return NULL; /* edge, reflect, wrap copy existing values */
    float value = 0.0f;
    if (q->opset < 11) {
        value = mq_node_attr_float(node, "value", 0.0f);
    } else {
        const char *cv = input_name(node, 2);
        if (cv && !q->constant_scalar(q->user, cv, &value))
            return "its pad value is not a constant";
    }
    return value == 0.0f ? NULL : "it pads with a non-zero constant";
}

static int relu_bounds(const struct mq_op_query *q, const Onnx__NodeProto *node, float *lo,
                       float *hi)
{
    (void)q;
    (void)node;
    *lo = 0.0f;
    *hi = INFINITY;
    return 1;
}

/* Clip's bounds: attributes before opset 11, optional constant inputs from then on. */
static int clip_bounds(const struct mq_op_query *q, const Onnx__NodeProto *node, float *lo,
                       float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (q->opset < 11) {
        *lo = mq_node_attr_float(node, "min", -FLT_MAX);
        *hi = mq_node_attr_float(node, "max", FLT_MAX);
        return 1;
    }
    const char *min_name = input_name(node, 1), *max_name = input_name(node, 2);
    if (min_name && !q->constant_scalar(q->user, min_name, lo))
        return 0;
    if (max_name && !q->constant_scalar(q->user, max_name, hi))
        return 0;
    return 1;
}

/* HardSigmoid: clamp(alpha * x + beta, 0, 1), alpha 0.2 and beta 0.5 by default. */
static void hardsigmoid_map(const Onnx__NodeProto *node, float *alpha, float *beta)
{
    *alpha = mq_node_attr_float(node, "alpha", 0.2f);
    *beta = mq_node_attr_float(node, "beta", 0.5f);
}

/* ------------------------------------------------------------------ table */

#define WEIGHTED(op, axis, bias, beta, zp_optional, correct)                                      \
    {.op_type = op, .role = MQ_ROLE_WEIGHTED, .by_default = 1, .n_data_inputs = 1,              \
     .weight_input = 1, .weight_axis = axis, .bias_input = bias, .bias_scale_attr = beta,        \
     .weight_zero_point_optional = zp_optional, .bias_correction = correct, .starts_island = 1,  \
     .float_reads_float = 1}
/* Data input 0 and the output; the output shares input 0's scale. */
#define SHARED(op)                                                                               \
    {.op_type = op, .role = MQ_ROLE_SHARED, .by_default = 1, .n_data_inputs = 1,                \
     .weight_input = -1, .bias_input = -1}
#define COMPUTE(op, n_data, by_default_)                                                         \
    {.op_type = op, .role = MQ_ROLE_COMPUTE, .by_default = by_default_, .n_data_inputs = n_data, \
     .weight_input = -1, .bias_input = -1}

static const struct mq_op_rule rules[] = {
    /*
     * onnxruntime 1.30's fast int8 Conv (x86: AVX2, AVX-512) wants the input
     * channels a multiple of 4 and at least 16 output channels, a multiple of
     * 8 on AVX2 (4 on AVX-512).  Measured, one thread, kernel time: squeezenet's
     * first Conv (3 -> 64, 3x3 stride 2, 224x224) 1299 us in int8, 423 us in
     * float, 356 us with its input padded to 4 channels (+71 us for the Pad);
     * 1 -> 64 5x5 on 224x224 10.7 ms, 3.8 ms padded to 4 channels.  The gain
     * shrinks as the kernel dimension C*kh*kw grows (generic path against
     * padded, us): 25 -> 10680/3792, 27 -> 1299/393, 42 -> 34/20, 54 -> 554/394,
     * but 75 (3 -> 24 5x5, blazeface's first Conv) 216/217 and 147 (3 -> 96
     * 7x7) 1963/1942, where the Pad is a pure cost: padded up to 64.
     */
    {.op_type = "Conv", .role = MQ_ROLE_WEIGHTED, .by_default = 1, .n_data_inputs = 1,
     .weight_input = 1, .weight_axis = MQ_AXIS_CONV, .bias_input = 2,
     .weight_zero_point_optional = 1, .bias_correction = 1, .starts_island = 1,
     .fast_input_channel_align = 4, .fast_min_outputs = 16, .fast_output_align = 8,
     .fast_pad_max_kernel_dim = 64, .fast_depthwise_channel_align = 16, .float_reads_float = 1},
    /*
     * onnxruntime's CPU provider has no integer ConvTranspose: quantized, it
     * runs DequantizeLinear -> float ConvTranspose -> QuantizeLinear on an
     * upsampled tensor (paddleocr_det's head).  So it starts no island; it is
     * quantized only where its output flows into one.
     */
    {.op_type = "ConvTranspose", .role = MQ_ROLE_WEIGHTED, .by_default = 1, .n_data_inputs = 1,
     .weight_input = 1, .weight_axis = MQ_AXIS_CONV_TRANSPOSE, .bias_input = 2,
     .float_reads_float = 1},
    {.op_type = "Gemm", .role = MQ_ROLE_WEIGHTED, .by_default = 1, .n_data_inputs = 1,
     .weight_input = 1, .weight_axis = MQ_AXIS_GEMM, .bias_input = 2, .bias_scale_attr = "beta",
     .bias_correction = 1, .starts_island = 1, .float_output = 1, .float_reads_float = 1},
    {.op_type = "MatMul", .role = MQ_ROLE_WEIGHTED, .by_default = 1, .n_data_inputs = 1,
     .weight_input = 1, .weight_axis = MQ_AXIS_MATMUL, .constant_data_is_weight = 1,
     .bias_input = -1, .weight_zero_point_optional = 1, .starts_island = 1, .float_output = 1},
    {.op_type = "Relu", .role = MQ_ROLE_ACTIVATION, .by_default = 1, .n_data_inputs = 1,
     .weight_input = -1, .bias_input = -1, .clamp_bounds = relu_bounds},
    {.op_type = "Clip", .role = MQ_ROLE_ACTIVATION, .by_default = 1, .n_data_inputs = 1,
     .weight_input = -1, .bias_input = -1, .clamp_bounds = clip_bounds},
    SHARED("Reshape"),
    SHARED("Transpose"),
    SHARED("Squeeze"),
    SHARED("Unsqueeze"),
    SHARED("Flatten"),
    SHARED("Slice"),
    SHARED("Gather"),
    SHARED("GatherElements"),
    SHARED("Expand"),
    SHARED("Tile"),
    {.op_type = "Split", .role = MQ_ROLE_SHARED, .by_default = 1, .n_data_inputs = 1,
     .all_outputs = 1, .weight_input = -1, .bias_input = -1},
    {.op_type = "MaxPool", .role = MQ_ROLE_SHARED, .by_default = 1, .n_data_inputs = 1,
     .weight_input = -1, .bias_input = -1, .min_opset = 12,
     .min_opset_reason = "onnxruntime runs MaxPool in 8 bits from opset 12"},
    {.op_type = "Pad", .role = MQ_ROLE_SHARED, .by_default = 1, .n_data_inputs = 1,
     .weight_input = -1, .bias_input = -1, .blocker = pad_blocker},
    /* Float when not in nearest mode. */
    {.op_type = "Resize", .role = MQ_ROLE_SHARED, .by_default = 1, .n_data_inputs = 1,
     .weight_input = -1, .bias_input = -1, .blocker = resize_blocker},
    /*
     * onnxruntime's QLinearAdd/QLinearMul: inside an island they save the
     * DequantizeLinear/QuantizeLinear pair a float Add would cost (a residual
     * Add between two int8 Convs, a squeeze-excite Mul).  Islands keep them
     * only where their output reaches an integer kernel, so a recurrent state
     * written out as Mul/Add (an LSTM cell) stays float.
     */
    COMPUTE("Add", 2, 1),
    COMPUTE("Mul", 2, 1),
    COMPUTE("Concat", -1, 1),
    {.op_type = "AveragePool", .role = MQ_ROLE_COMPUTE, .by_default = 1, .n_data_inputs = 1,
     .weight_input = -1, .bias_input = -1, .int8_as_depthwise_conv = 1},
    COMPUTE("GlobalAveragePool", 1, 1),
    COMPUTE("Sigmoid", 1, 1),
    COMPUTE("LeakyRelu", 1, 1),
    /*
     * onnxruntime has no integer HardSigmoid: it would run it in float between a
     * DequantizeLinear and a QuantizeLinear.  Its input's codes, clamped by a Clip on the
     * integers and read with the scale alpha * s and a shifted zero point, are the output,
     * with no rounding of their own (hardsigmoid_codes.c; HardSwish is x * HardSigmoid(x)).
     */
    {.op_type = "HardSigmoid", .role = MQ_ROLE_CODES, .by_default = 1, .n_data_inputs = 1,
     .weight_input = -1, .bias_input = -1, .unit_clamp = hardsigmoid_map},
    /* Opt-in: a fixed [0, 1] range in 8 bits flushes small attention weights to zero. */
    {.op_type = "Softmax", .role = MQ_ROLE_COMPUTE, .n_data_inputs = 1, .weight_input = -1,
     .bias_input = -1, .fixed_output_range = 1, .output_min = 0.0f, .output_max = 1.0f},
};
#define N_RULES (int)(sizeof rules / sizeof rules[0])

const struct mq_op_rule *mq_op_rules(int *n)
{
    *n = N_RULES;
    return rules;
}

const struct mq_op_rule *mq_op_rule_find(const char *op_type)
{
    for (int i = 0; op_type && i < N_RULES; i++)
        if (strcmp(rules[i].op_type, op_type) == 0)
            return &rules[i];
    return NULL;
}

enum mq_op_role mq_op_role(const char *op_type)
{
    const struct mq_op_rule *r = mq_op_rule_find(op_type);
    return r ? r->role : MQ_ROLE_NONE;
}

enum mq_op_role mq_op_rule_node_role(const struct mq_op_rule *r, const Onnx__NodeProto *node)
{
    if (!r)
        return MQ_ROLE_NONE;
    if (r->role == MQ_ROLE_SHARED && r->moves_values && !r->moves_values(node))
        return MQ_ROLE_COMPUTE;
    return r->role;
}

size_t mq_op_rule_quantized_inputs(const struct mq_op_rule *r, const Onnx__NodeProto *node)
{
    size_t n = r->n_data_inputs < 0 ? node->n_input : (size_t)r->n_data_inputs;
    if (r->weight_input >= 0 && (size_t)r->weight_input + 1 > n)
        n = (size_t)r->weight_input + 1;
    return n < node->n_input ? n : node->n_input;
}

size_t mq_op_rule_quantized_outputs(const struct mq_op_rule *r, const Onnx__NodeProto *node)
{
    if (r->all_outputs)
        return node->n_output;
    return node->n_output > 0 ? 1 : 0;
}

int mq_op_rule_links_input(const struct mq_op_rule *r, size_t k)
{
    if (r->role != MQ_ROLE_WEIGHTED)
        return 1;
    return k < (size_t)r->n_data_inputs || (r->weight_input >= 0 && k == (size_t)r->weight_input);
}

const char *mq_op_rule_blocker(const struct mq_op_rule *r, const struct mq_op_query *q,
                               const Onnx__NodeProto *node)
{
    if (r->min_opset && q->opset < r->min_opset)
        return r->min_opset_reason;
    return r->blocker ? r->blocker(q, node) : NULL;
}

int mq_op_rule_weight_axis(const struct mq_op_rule *r, const Onnx__NodeProto *node, int rank)
{
    switch (r->weight_axis) {
    case MQ_AXIS_CONV:
        return 0 < rank ? 0 : -1;
    case MQ_AXIS_CONV_TRANSPOSE:
        return 1 < rank ? 1 : -1;
    case MQ_AXIS_GEMM:
        if (rank != 2)
            return -1;
        return mq_node_attr_int(node, "transB", 0) != 0 ? 0 : 1;
    case MQ_AXIS_MATMUL:
        return rank == 2 ? 1 : -1;
    case MQ_AXIS_NONE:
        break;
    }
    return -1;
}

void mq_op_rule_bias_layout(const struct mq_op_rule *r, const Onnx__NodeProto *node, int rank,
                            const int64_t *dims, int *expect_len, int *channel_mod)
{
    int is_gemm = r->weight_axis == MQ_AXIS_GEMM;
    int is_convt = r->weight_axis == MQ_AXIS_CONV_TRANSPOSE;
    int64_t group = is_convt ? mq_node_attr_int(node, "group", 1) : 1;
    int64_t len = -1;
    if (is_gemm && rank == 2)
        len = mq_node_attr_int(node, "transB", 0) != 0 ? dims[0] : dims[1];
    else if (!is_gemm && rank >= 2 && group >= 1 && group <= INT32_MAX && dims[1] >= 0 &&
             dims[1] <= INT32_MAX)
        len = is_convt ? dims[1] * group : dims[0];
    /* A length no bias can have makes the bias fail its check, not overflow. */
    *expect_len = len >= 0 && len <= INT32_MAX ? (int)len : INT32_MAX;
    if (is_gemm && rank != 2)
        *expect_len = -1;
    *channel_mod = is_convt && rank >= 2 && dims[1] > 0 && dims[1] <= INT32_MAX ? (int)dims[1] : 0;
}

const char *mq_op_rules_island_ops_text(void)
{
    static char text[256];
    if (!text[0]) {
        int n = 0, k = 0;
        for (int i = 0; i < N_RULES; i++)
            n += rules[i].starts_island;
        size_t used = 0;
        for (int i = 0; i < N_RULES; i++) {
            if (!rules[i].starts_island)
                continue;
            const char *sep = k == 0 ? "" : k == n - 1 ? " or " : ", ";
            size_t need = strlen(sep) + strlen(rules[i].op_type);
            if (used + need + 1 > sizeof text)
                break;
            memcpy(text + used, sep, strlen(sep));
            memcpy(text + used + strlen(sep), rules[i].op_type, strlen(rules[i].op_type) + 1);
            used += need;
            k++;
        }
    }
    return text;
}
