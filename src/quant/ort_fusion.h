/*
 * What onnxruntime's CPU provider makes of a QDQ graph: which nodes it fuses
 * with the DequantizeLinear before them and the QuantizeLinear after them
 * into an integer kernel (QLinearConv, QLinearMatMul, QGemm, QLinearAdd,
 * QLinearSoftmax, ...), and which ones it runs on the 8-bit data directly by
 * dropping the pair (Reshape, Transpose, Gather, MaxPool, ...).  One table
 * (ort_fusion.c) holds onnxruntime's rules as its QDQ selectors state them;
 * the quantize summary and the JSON report print the prediction, and the
 * tests hold it against onnxruntime's optimised graph.
 */
#ifndef MQ_QUANT_ORT_FUSION_H
#define MQ_QUANT_ORT_FUSION_H

#include "onnx.pb-c.h"
#include "util/error.h"

/* How many nodes of one op type become one kernel (or run on 8-bit data in place). */
struct mq_ort_fusion_count {
    const char *op_type;   /* the node's op type (static string from the table) */
    const char *kernel;    /* onnxruntime's kernel, e.g. "QLinearMatMul"; NULL: in place */
    int nodes;
};

struct mq_ort_fusions {
    struct mq_ort_fusion_count *items; /* in table order */
    int n;
};

/*
 * Predicts the fusions in a QDQ model's main graph and its subgraphs.  MQ_OK,
 * or an error when out of memory or a graph cannot be indexed.  Free with
 * mq_ort_fusions_free.
 */
int mq_ort_fusions_predict(Onnx__GraphProto *graph, struct mq_ort_fusions *out,
                           struct mq_error *err);
void mq_ort_fusions_free(struct mq_ort_fusions *f);

/* The kernel a fused node of this op type becomes with a quantized output, NULL if none. */
const char *mq_ort_fusion_kernel(const char *op_type);

#endif
