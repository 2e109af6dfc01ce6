/*
 * The accuracy check that follows every quantization: the quantized model
 * and the FP32 one run side by side in the interpreter on evaluation samples,
 * and each graph output gets its SQNR, cosine similarity, max abs error and,
 * for class-score outputs, top-1 agreement.  The per-node error attribution
 * of `compare --per-layer` (report/divergence.h) names the nodes to blame
 * when an output falls below the warning threshold.
 *
 * Class-score outputs follow mq_looks_like_class_scores (report/metrics.h):
 * a float tensor [N, C] or [N, C, 1, ..., 1] with C >= 2, on every sample.
 * Detector grids, images and sequences have no top-1 figure.
 */
#ifndef MQ_QUANT_CHECK_H
#define MQ_QUANT_CHECK_H

#include <stdint.h>

#include "model/model.h"
#include "onnx.pb-c.h"
#include "report/divergence.h"
#include "util/error.h"

/* An output below this SQNR (dB) gets a warning. */
#define MQ_CHECK_WARN_SQNR_DB 20.0
/* How many nodes a warning names. */
#define MQ_CHECK_BLAME_NODES 3
/* How many samples (the first) rank the nodes to blame. */
#define MQ_CHECK_BLAME_SAMPLES 16

struct mq_check_options {
    const char *eval_dir;   /* samples in any layout calib/reader.h reads */
    int64_t limit;          /* > 0: only the first `limit` samples */
    int attribution;        /* also rank nodes by the error they add (per layer) */
    const struct mq_preprocess *preprocess; /* for folders of images or WAV files, or NULL */
    struct mq_divergence_cache *reference;   /* FP32 outputs kept across checks, or NULL */
    int jobs;               /* threads; 0 means 1.  The figures do not depend on it. */
};

struct mq_check_result {
    const char *eval_dir;           /* as given in the options, not owned */
    struct mq_divergence_result compare; /* outputs in the model's order; layers worst first */
    int attribution;                /* compare.layers is filled */
    int64_t blame_samples;          /* samples compare.layers comes from (0: all of them) */
};

/*
 * Runs `fp32` and `quantized` (a model in memory, not saved) on the samples.
 * `quantized` must have fp32's graph outputs.
 */
int mq_check_models(const struct mq_model *fp32, const Onnx__ModelProto *quantized,
                    const struct mq_check_options *options, struct mq_check_result *result,
                    struct mq_error *err);
void mq_check_result_free(struct mq_check_result *result);

/* The pooled SQNR of output i (dB; +inf when exact). */
double mq_check_output_sqnr_db(const struct mq_check_result *r, int i);
/* Top-1 agreement of output i in percent; -1 when it is not a class-score output. */
double mq_check_output_agreement_pct(const struct mq_check_result *r, int i);
/* Whether output i is below MQ_CHECK_WARN_SQNR_DB. */
int mq_check_output_warns(const struct mq_check_result *r, int i);

#endif
