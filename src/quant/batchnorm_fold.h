/*
 * Graph clean-up before quantization: BatchNormalization folded into the
 * Conv before it, as onnxruntime's pre-processing (quant_pre_process) does.
 *
 * A BatchNormalization between a Conv and its Relu breaks the QDQ pattern
 * onnxruntime fuses (Conv's output would be quantized, then normalized in
 * float, then quantized again), and its float parameters stay in the file.
 * Folded, the Conv computes the normalized values directly with scaled
 * weights and a new bias, which are quantized like any other.
 */
#ifndef MQ_BATCHNORM_FOLD_H
#define MQ_BATCHNORM_FOLD_H

#include "onnx.pb-c.h"
#include "util/error.h"

/* One BatchNormalization folded into a Conv. */
struct mq_fold_record {
    char *batchnorm;   /* the BatchNormalization node's name, or "<op>#<k>" */
    char *conv;        /* the Conv's name, likewise */
    char *graph;       /* "" main graph, else "node/attribute" path of the subgraph */
};

struct mq_fold_result {
    struct mq_fold_record *items;
    int n;
};

/*
 * Folds every BatchNormalization (inference form, one output) whose input is
 * produced by a Conv read by nothing else and not returned by the graph,
 * when the Conv's weight and bias and the four normalization parameters are
 * float32 initializers with one value per output channel.  Weights read by
 * other nodes too are copied, not changed.  Subgraphs are folded as well.
 * Other BatchNormalizations stay as they are.  On failure the model must not
 * be used.
 */
int mq_fold_batchnorm(Onnx__ModelProto *model, struct mq_fold_result *out, struct mq_error *err);
void mq_fold_result_free(struct mq_fold_result *r);

#endif
