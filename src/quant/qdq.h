/*
 * The QDQ rewrite (docs/quantization-notes.md): Q/DQ pairs on activations,
 * weights stored quantized (per channel by default) behind a DequantizeLinear,
 * int32 biases, shared scales through data-movement ops, Relu/Clip folded
 * (recorded in the model's metadata for `dequantize`), one pair per tensor,
 * graph inputs and outputs kept float, subgraphs included.  What it does per
 * op type comes from the table in quant/op_rules.h.
 *
 * It works on a loaded ModelProto in place.  On failure the model is left in
 * an unspecified state: the caller must not save it.
 */
#ifndef MQ_QDQ_H
#define MQ_QDQ_H

#include <stdint.h>

#include "calib/ranges.h"
#include "onnx.pb-c.h"
#include "quant/select.h"
#include "quant/opset.h"
#include "util/error.h"

struct mq_quant_stats;

/* dB: an error amplitude about a third of the signal's on the worst sample. */
#define MQ_DEFAULT_MIN_SAMPLE_SQNR_DB 10.0

struct mq_weight_rounding;

struct mq_quant_options {
    int activation_type;        /* MQ_DTYPE_UINT8, INT8, UINT16, INT16 */
    int weight_type;            /* MQ_DTYPE_INT8, UINT8, INT4, UINT4 (16-bit also works) */
    int per_channel;            /* weights per output channel */
    int symmetric_activations;
    int symmetric_weights;      /* onnxruntime's default: the weight type is signed */
    int reduce_range;           /* 7-bit weights, as onnxruntime applies it (weights only) */
    int quantize_outputs;       /* 0: Q/DQ on op inputs only (the tensorrt profile) */
    /*
     * What a second pass over the calibration samples measured (quant/sample_stats.h);
     * NULL when there are none (ranges loaded from a file): the two rules
     * below then do nothing.
     */
    const struct mq_quant_stats *stats;
    /*
     * An activation whose quantization leaves some calibration sample with
     * an SQNR below this (dB) stays float: its quiet samples would drown in
     * the quantization step.  0 turns the rule off.
     */
    double min_sample_sqnr_db;
    /* Biases absorb the mean error the weights' rounding causes (bias correction). */
    int bias_correction;
    /*
     * GPTQ's integers for the weights it prepared (quant/weight_rounding.h); NULL: every
     * weight rounds to nearest.
     */
    const struct mq_weight_rounding *weight_rounding;
    /*
     * Tensor shapes from one calibration sample (quant/shape_probe.h), or NULL.  A MatMul
     * whose output only a float bias Add reads keeps that output float (onnxruntime runs it
     * as MatMulIntegerToFloat) only when its data input is known to have rank 3 or more:
     * onnxruntime turns a rank-2 MatMul and its Add into a float Gemm first (MatMulAddFusion),
     * which its QDQ rules then leave float.  `calibrate` has none and observes those outputs
     * too, so its ranges serve either way.
     */
    const struct mq_opset_hints *shapes;
};

/* The ort-cpu profile: uint8 asymmetric activations, int8 symmetric per-channel weights. */
void mq_quant_options_default(struct mq_quant_options *o);
/* Opset the scheme needs: 10 for 8-bit per-tensor, 13 per channel, 21 for 16- and 4-bit. */
int mq_quant_required_opset(const struct mq_quant_options *o);
/* Why that opset ("per-channel weights need QuantizeLinear's axis (opset 13)"). */
const char *mq_quant_required_opset_reason(const struct mq_quant_options *o);

/*
 * Refuses models the rewrite cannot take: already quantized (has Q/DQ or
 * QLinear* nodes), no graph, no default-domain opset import.
 */
int mq_qdq_check_model(const Onnx__ModelProto *model, struct mq_error *err);

/*
 * The tensors whose float range calibration must provide for the selected
 * nodes: every float (or untyped) activation the rewrite will quantize for
 * them (op_rules.h: data inputs, weight, outputs of the nodes their integer
 * islands keep), in model order, each once.  `quantize` and `calibrate` both
 * use this list.  *names is malloc'd, each string too.
 */
int mq_qdq_tensors_to_observe(const Onnx__ModelProto *model, const struct mq_selection *sel,
                              const struct mq_quant_options *o, char ***names, int *n,
                              struct mq_error *err);
void mq_string_list_free(char **names, int n);

/* Whether mq_quant_options.shapes can change how this model is rewritten (it has a MatMul). */
int mq_qdq_wants_shapes(const Onnx__ModelProto *model);

enum mq_qtensor_role {
    MQ_QT_ACTIVATION,
    MQ_QT_WEIGHT,
    MQ_QT_BIAS,
    MQ_QT_CONSTANT,   /* a constant input of a compute op (Add's addend) */
};
const char *mq_qtensor_role_name(enum mq_qtensor_role role);

/* One quantized tensor, for the report. */
struct mq_qtensor_record {
    char *name;
    char *graph;             /* "" main graph, else the subgraph's path */
    enum mq_qtensor_role role;
    int qtype;               /* ONNX type of the quantized values */
    int has_range;
    float range_min, range_max;  /* the float range the scale came from (before widening to 0) */
    int axis;                /* -1 per tensor */
    int n_channels;          /* 1 per tensor */
    float *scales;
    int32_t *zero_points;
    char *shared_with;       /* the tensor whose scale and zero point it reuses, or NULL */
    int n_adjusted;          /* weight channels whose scale was enlarged so the bias fits int32 */
    int *adjusted;
    char *note;              /* anything else worth telling (clamped bias values, ...) */
};

struct mq_skipped_tensor {
    char *name;
    char *graph;
    char *reason;
};

struct mq_quant_result {
    struct mq_qtensor_record *tensors;
    int n_tensors;
    struct mq_skipped_tensor *skipped;
    int n_skipped;
    int folded;              /* Relu/Clip nodes merged into the op before them */
    int hardsigmoid_codes;   /* HardSigmoid written as a Clip of its input's codes */
};
void mq_quant_result_free(struct mq_quant_result *r);

/*
 * Rewrites the model.  `sel` comes from mq_select_nodes on this model; its
 * statuses are updated (SELECTED becomes QUANTIZED, FOLDED or SKIPPED with
 * the reason).  `ranges` supplies activation ranges by tensor name.
 */
int mq_qdq_rewrite(Onnx__ModelProto *model, struct mq_selection *sel,
                   const struct mq_ranges *ranges, const struct mq_quant_options *o,
                   struct mq_quant_result *result, struct mq_error *err);

#endif
