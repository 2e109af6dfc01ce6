/*
 * What the quantizer knows about each op type, in one table (op_rules.c):
 * its role, which inputs carry data, where its weight and bias are and how
 * the weight is split into channels, whether its weight's DequantizeLinear
 * may drop a zero zero point, whether bias correction applies, whether it
 * starts an integer island, and the small predicates for the rules that need
 * to look at a node (Resize in nearest mode, Pad with a zero constant, the
 * bounds of a Relu or Clip).
 *
 * Selection (select.c), planning, observation and the integer islands
 * (qdq_*.c) and the tests all read this table: adding an op type to the
 * quantizer is one row here (plus a kernel only when the behaviour is new).
 */
#ifndef MQ_OP_RULES_H
#define MQ_OP_RULES_H

#include "onnx.pb-c.h"

/* How the rewrite treats an op type (docs/quantization-notes.md). */
enum mq_op_role {
    MQ_ROLE_NONE = 0,
    MQ_ROLE_WEIGHTED,    /* Conv, ConvTranspose, Gemm, MatMul: weights, bias, output */
    MQ_ROLE_COMPUTE,     /* Add, Mul, Concat, Softmax, ...: every data input and the output */
    MQ_ROLE_ACTIVATION,  /* Relu, Clip: folded into the op before them when possible */
    MQ_ROLE_SHARED,      /* Reshape, Transpose, ...: output reuses the input's scale */
    MQ_ROLE_CODES,       /* HardSigmoid: a Clip of its input's integer codes, read with a scale
                            and zero point of its own (hardsigmoid_codes.c) */
};

/* Which axis of a constant weight holds the output channels (per-channel scales). */
enum mq_weight_axis_rule {
    MQ_AXIS_NONE = 0,
    MQ_AXIS_CONV,            /* [M, C/group, k...]: axis 0 */
    MQ_AXIS_CONV_TRANSPOSE,  /* [C, M/group, k...]: axis 1; bias channel c uses c % (M/group) */
    MQ_AXIS_GEMM,            /* 2-D B: axis 1, or 0 when transB */
    MQ_AXIS_MATMUL,          /* 2-D B: its columns, axis 1 (the last one) */
};

/*
 * What a rule's predicates may ask about the graph around a node: the
 * opset and the value of a scalar float constant (1 and *out when `name` is
 * one, 0 otherwise).
 */
struct mq_op_query {
    int opset;
    int (*constant_scalar)(const void *user, const char *name, float *out);
    const void *user;
};

/* NULL when the node can be quantized like its op type, else why it stays float. */
typedef const char *(*mq_op_blocker_fn)(const struct mq_op_query *q, const Onnx__NodeProto *node);
/* Whether the node only moves or selects values (so its output may share its input's scale). */
typedef int (*mq_op_moves_values_fn)(const Onnx__NodeProto *node);
/* The interval a Relu or Clip clamps to; 0 when its bounds are not constants known here. */
typedef int (*mq_op_bounds_fn)(const struct mq_op_query *q, const Onnx__NodeProto *node,
                               float *lo, float *hi);
/* The map y = clamp(alpha * x + beta, 0, 1) the node computes (codes role). */
typedef void (*mq_op_unit_clamp_fn)(const Onnx__NodeProto *node, float *alpha, float *beta);

struct mq_op_rule {
    const char *op_type;
    enum mq_op_role role;
    int by_default;             /* selected when --op-types is not given */
    /*
     * Data inputs quantized as activations: the first n (-1: every input).
     * For weighted ops the weight input comes on top.
     */
    int n_data_inputs;
    int all_outputs;            /* every output gets Q/DQ (Split), else only the first */
    /* Weighted ops. */
    int weight_input;           /* -1 none */
    enum mq_weight_axis_rule weight_axis;
    int constant_data_is_weight; /* a constant data input is quantized like a weight (MatMul's A) */
    int bias_input;             /* -1 none */
    const char *bias_scale_attr; /* attribute multiplying the bias (Gemm's beta), folded in */
    /*
     * The weight's DequantizeLinear may drop an all-zero zero point: onnxruntime
     * fuses Conv and MatMul without it, but turns a Gemm into QGemm only when the
     * zero-point input is there (measured with onnxruntime 1.30).  Any other
     * reader of a constant keeps it too.
     */
    int weight_zero_point_optional;
    int bias_correction;        /* the bias absorbs the weights' mean rounding error */
    /*
     * An integer kernel of its own: it anchors an integer island.  Other ops
     * are quantized only where their output flows into such a node.
     */
    int starts_island;
    /*
     * onnxruntime also has an integer kernel of it whose output is float
     * (MatMulIntegerToFloat, QGemm without an output scale): where no
     * quantized node reads the output, the output stays float, which saves
     * a QuantizeLinear, a DequantizeLinear and a rounding (a MatMul into a
     * float bias Add and Gelu, which onnxruntime fuses into BiasGelu).
     */
    int float_output;
    /*
     * Left float, the node must read float data: onnxruntime 1.30 (its basic optimization
     * level) gives a float-weighted node of this type that sits between a DequantizeLinear
     * with one scale and a QuantizeLinear int8 weights of its own, one scale for the whole
     * tensor, which is no longer the float node it was meant to be (measured: a depthwise
     * Conv left float with --exclude-nodes in a tf2onnx line detector, output SQNR 12 dB in
     * float, 0.7 dB so requantized).
     */
    int float_reads_float;
    /*
     * The shapes onnxruntime's fast int8 kernel (its indirect symmetric
     * convolution) takes, for a group-1 node with a [M, C, k...] weight: C a
     * multiple of fast_input_channel_align, M at least fast_min_outputs and a
     * multiple of fast_output_align; other shapes run a generic im2col path,
     * up to 3.6x slower, often slower than float.  When only C is off, the
     * quantizer pads the input channels with zeros up to the multiple
     * (channel_pad.c), where the node's kernel dimension (C times the kernel
     * elements) is at most fast_pad_max_kernel_dim: past it the generic path
     * is about as fast and the Pad would cost more than it saves.  0: no such
     * rule.
     */
    int fast_input_channel_align, fast_min_outputs, fast_output_align;
    int fast_pad_max_kernel_dim;
    /*
     * The same kernel's depthwise form (group = channels) takes channel
     * counts that are a multiple of this (16 on x86, 8 on ARM64: the larger);
     * others run a generic per-channel loop about 3x slower per value.  The
     * quantizer widens a depthwise Conv between two group-1 Convs with zero
     * channels up to the multiple (depthwise_pad.c).  0: no such rule.
     */
    int fast_depthwise_channel_align;
    /*
     * onnxruntime's int8 kernel for the quantized op is a scalar loop slower
     * than its int8 depthwise Conv computing the same values (AveragePool:
     * QLinearAveragePool dequantizes, averages one float at a time and
     * requantizes, 0.26 ms where QLinearConv takes 0.03 ms on fastestdet's
     * pool): after the QDQ rewrite the quantizer writes it as that Conv
     * (pool_conv.c), unless --no-pool-conv.
     */
    int int8_as_depthwise_conv;
    /* The output's range is fixed, whatever calibration saw (Softmax: [0, 1]). */
    int fixed_output_range;
    float output_min, output_max;
    int min_opset;              /* below it the node stays float (0: any) */
    const char *min_opset_reason;
    mq_op_blocker_fn blocker;           /* NULL: nothing blocks it */
    mq_op_moves_values_fn moves_values; /* shared role: NULL always; else a compute op when 0 */
    mq_op_bounds_fn clamp_bounds;       /* activation role: its bounds */
    mq_op_unit_clamp_fn unit_clamp;     /* codes role: its affine map */
};

/* The row of an op type (default ONNX domain), NULL when the quantizer does not know it. */
const struct mq_op_rule *mq_op_rule_find(const char *op_type);
/* Every row, in table order; *n gets the count. */
const struct mq_op_rule *mq_op_rules(int *n);

/* The role of a supported op type, MQ_ROLE_NONE for others. */
enum mq_op_role mq_op_role(const char *op_type);

/*
 * The role a node is quantized in: its op type's, except a shared op that
 * does not just move values this time (Resize other than nearest) computes.
 */
enum mq_op_role mq_op_rule_node_role(const struct mq_op_rule *r, const Onnx__NodeProto *node);

/* How many leading inputs are quantized as data (weight included for weighted ops). */
size_t mq_op_rule_quantized_inputs(const struct mq_op_rule *r, const Onnx__NodeProto *node);
/* How many outputs get Q/DQ. */
size_t mq_op_rule_quantized_outputs(const struct mq_op_rule *r, const Onnx__NodeProto *node);

/*
 * Whether input k of a node with this rule, when its producer sits in an
 * integer island, links that producer to the node: a weighted op's bias is
 * never an activation it quantizes; every input of the other ops counts.
 */
int mq_op_rule_links_input(const struct mq_op_rule *r, size_t k);

/* Why the node stays float (opset, blocker), or NULL. */
const char *mq_op_rule_blocker(const struct mq_op_rule *r, const struct mq_op_query *q,
                               const Onnx__NodeProto *node);

/*
 * The per-channel axis of a constant weight of this rank read by the node,
 * -1 when the rule splits none (the weight is then quantized per tensor).
 */
int mq_op_rule_weight_axis(const struct mq_op_rule *r, const Onnx__NodeProto *node, int rank);

/*
 * For a per-channel weight of these dims: how many values the bias must have
 * (*expect_len; -1 any, INT32_MAX for a length no bias can have) and the
 * modulus mapping bias channel c to weight channel c % *channel_mod (0: none).
 */
void mq_op_rule_bias_layout(const struct mq_op_rule *r, const Onnx__NodeProto *node, int rank,
                            const int64_t *dims, int *expect_len, int *channel_mod);

/* "Conv, ConvTranspose, Gemm or MatMul": the op types that start an integer island. */
const char *mq_op_rules_island_ops_text(void);

#endif
