/*
 * Graph clean-up before quantization: BatchNormalization folded into the
 * Conv before it, as onnxruntime's pre-processing (quant_pre_process) does.
 *
 * A BatchNormalization between a Conv and its Relu breaks the QDQ pattern
 * onnxruntime fuses (Conv's output would be quantized, then normalized in
 * float, then quantized again), and its float parameters stay in the file.
 * Folded, the Conv computes the normalized values directly with scaled
 * weights and a new bias, which are quantized like any other.  The same
 * holds for the per-channel scale and shift some exporters write as separate
 * ops after a Conv (caffe2: Mul and Add by a [C,1,1] constant; a Scale layer):
 * two int8 ops and two quantization steps less each.  A HardSigmoid after a
 * Conv folds its affine part and stays as a Clip, which the quantizer folds
 * into the Conv's output quantization (onnxruntime has no int8 HardSigmoid).
 */
#ifndef MQ_BATCHNORM_FOLD_H
#define MQ_BATCHNORM_FOLD_H

#include "onnx.pb-c.h"
#include "util/error.h"

/* One node folded into a Conv. */
struct mq_fold_record {
    char *op_type;     /* BatchNormalization, Mul, Add, Sub, Div or HardSigmoid */
    char *batchnorm;   /* the folded node's name, or "<op>#<k>" */
    char *conv;        /* the Conv's name, likewise */
    char *graph;       /* "" main graph, else "node/attribute" path of the subgraph */
    int clip_left;     /* the node stays, as a Clip of the Conv's output (HardSigmoid) */
};

struct mq_fold_result {
    struct mq_fold_record *items;
    int n;
};

/*
 * Folds every BatchNormalization (inference form, one output), and every Mul,
 * Add (by a constant on either side), Sub or Div (by a constant on the right)
 * whose constant holds one value or one per channel, whose input is produced
 * by a Conv (or a ConvTranspose of group 1, whose weight holds the output
 * channels on axis 1, or a Gemm with beta 1, its B [K, N] or transposed
 * [N, K], its C one value per column) read by nothing else and not returned
 * by the graph, when the
 * Conv's weight and bias and the parameters are float32 initializers with
 * one value per output channel; chains (BatchNormalization, then Mul, then
 * Add) fold one after the other.  A HardSigmoid there folds its affine part
 * (alpha, beta) the same way and becomes Clip(0, 1) of the Conv's output,
 * which the Conv now writes under a new name (so ranges calibrated on the
 * old tensor cannot be mistaken for the new one's).  Weights read by
 * other nodes too are copied, not changed.  Subgraphs are folded as well.
 * Other BatchNormalizations stay as they are.  On failure the model must not
 * be used.
 */
int mq_fold_batchnorm(Onnx__ModelProto *model, struct mq_fold_result *out, struct mq_error *err);

struct mq_graph_index;
/*
 * An inference BatchNormalization of c channels as the affine map x * a[k] + s[k] of each
 * channel k (a = scale / sqrt(var + epsilon), s = B - mean * a), its parameters float32
 * initializers of c values: 1, or 0 when it is not one (training mode, other parameters).
 */
int mq_batchnorm_affine(const struct mq_graph_index *idx, const Onnx__NodeProto *bn, int64_t c,
                        double *a, double *s);
void mq_fold_result_free(struct mq_fold_result *r);

#endif
