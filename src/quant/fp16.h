/*
 * Float32 -> float16 conversion (`onnx-monoquant IN OUT --fp16`), no
 * calibration needed.
 *
 * Float32 initializers, Constant and ConstantOfShape values and the types of
 * the values between converted nodes become float16.  A node stays float32,
 * its float16 inputs cast up and its outputs left float32, when:
 *   - the target cannot run it in float16: with MQ_FP16_OPS_ORT_CPU, every op
 *     without a float16 kernel in onnxruntime's CPU provider (x86-64 builds of
 *     onnxruntime 1.30: checked by tests/e2e/fp16 against the installed one);
 *     with MQ_FP16_OPS_ALL only the ops whose ONNX schema or semantics rule
 *     float16 out (Range, NonMaxSuppression, QuantizeLinear, random ops, ...);
 *   - the selection excludes it (exact op types, node names or glob patterns,
 *     read by the quantizer's rules: quant/select.h);
 *   - one of its inputs holds values beyond float16's range (a constant
 *     larger than 65504, or an activation seen that large on samples);
 *   - it is in another domain than ai.onnx, or an input or output type is unknown.
 * Data-movement and selection ops (Reshape, Concat, MaxPool, Relu, ...)
 * compute nothing new: they follow their inputs' precision instead of
 * forcing Casts, so no float16 island appears between float32 nodes.
 * Graph inputs and outputs keep float32 through Cast nodes unless
 * keep_io_types is 0.  Subgraph bodies are converted too; their interfaces
 * (and so If/Loop/Scan inputs and outputs) stay as declared.
 *
 * Casts are named `{t}_CastToFloat16` / `{t}_CastToFloat` with outputs
 * `{t}_float16` / `{t}_float32`, one per tensor and target type per graph.
 */
#ifndef MQ_FP16_H
#define MQ_FP16_H

#include <stdint.h>

#include "onnx.pb-c.h"
#include "quant/select.h"
#include "util/error.h"

/* Largest finite float16. */
#define MQ_FP16_MAX 65504.0

enum mq_fp16_ops {
    MQ_FP16_OPS_ORT_CPU = 0, /* only what onnxruntime's CPU provider runs in float16 */
    MQ_FP16_OPS_ALL,         /* everything float16 can express (GPU targets) */
};

struct mq_fp16_options {
    int keep_io_types;          /* graph inputs and outputs stay float32 (default 1) */
    enum mq_fp16_ops ops;
    const struct mq_pattern_list *op_types;         /* NULL or empty: every op type */
    const struct mq_pattern_list *exclude_op_types;
    const struct mq_pattern_list *include_nodes;    /* NULL or empty: every node */
    const struct mq_pattern_list *exclude_nodes;
    /* Activations seen beyond float16's range on samples: names and their largest |value|. */
    char **out_of_range;
    const double *out_of_range_max;
    int n_out_of_range;
};

void mq_fp16_options_default(struct mq_fp16_options *o);

enum mq_fp16_status {
    MQ_FP16_CONVERTED,   /* runs in float16 */
    MQ_FP16_FOLLOWED,    /* data movement: runs in its inputs' precision (float16 or not) */
    MQ_FP16_KEPT,        /* stays float32; reason says why */
};

struct mq_fp16_node {
    char *name;          /* node name, or "<op_type>#<index>" */
    char *op_type;
    char *graph;         /* "" main graph, else "node/attribute" path */
    enum mq_fp16_status status;
    int in_float16;      /* for FOLLOWED: whether it ended up in float16 */
    char *reason;        /* for KEPT */
};

struct mq_fp16_range {
    char *name;
    char *graph;
    char *what;          /* "initializer", "Constant", "activation" */
    double max_abs;
};

struct mq_fp16_result {
    struct mq_fp16_node *nodes;   /* every node that reads or writes float32 values */
    int n_nodes;
    struct mq_fp16_range *ranges; /* values beyond float16's range, kept float32 */
    int n_ranges;
    int initializers_converted, initializers_kept;
    int constants_converted;
    int casts_inserted;
    int64_t values_flushed_to_zero;  /* nonzero weights below float16's smallest subnormal */
    uint64_t weight_bytes_before, weight_bytes_after;  /* float initializer data */
};
void mq_fp16_result_free(struct mq_fp16_result *r);

/*
 * Converts the model in place.  A pattern or op type in the options that
 * matches no node is an error (a typo must not pass silently).  On failure
 * the model must not be saved.
 */
int mq_fp16_convert(Onnx__ModelProto *model, const struct mq_fp16_options *options,
                    struct mq_fp16_result *result, struct mq_error *err);

#endif
