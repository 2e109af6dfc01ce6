/*
 * Running two models on the same samples and measuring how far B's tensors
 * are from A's (`onnx-monoquant compare`): per graph output, and with
 * per_layer, per intermediate tensor matched across the two graphs by name.
 *
 * Names are matched through the renames a QDQ rewrite makes: in a model
 * holding QuantizeLinear(t) -> DequantizeLinear -> t_dequantized, the value
 * its consumers see is the DequantizeLinear output, so that is what stands
 * for `t`.  A float16 model keeps its tensor names and is read as float.
 *
 * Samples run on `jobs` threads, each sample's statistics merged in sample
 * order: the figures do not depend on the number of threads.  Memory stays
 * bounded whatever the number of samples: statistics are running sums, and
 * each thread holds one sample's tensors of A, each until B has produced its
 * counterpart.  Inside loop bodies a tensor is compared at its first
 * iteration of each sample.
 *
 * Comparing graph outputs alone runs both models with fused operators and
 * packed weights (interp/plan.h), per layer as the graphs are written: the
 * output figures of the two may differ by float rounding.
 */
#ifndef MQ_REPORT_DIVERGENCE_H
#define MQ_REPORT_DIVERGENCE_H

#include <stdint.h>

#include "model/model.h"
#include "report/metrics.h"
#include "util/error.h"

/*
 * The reference model's outputs kept from one comparison to the next, when
 * the same model A is compared with many B on the same samples (the accuracy
 * search): A then runs once per sample instead of once per comparison.
 * Zero-initialise it; it fills itself up to max_bytes (0: a default of
 * 256 MiB) and runs A again for the samples that did not fit.
 */
struct mq_divergence_cache {
    int64_t n_samples;
    int n_outputs;
    struct mq_tensor *outputs;   /* [sample * n_outputs + output], owned copies */
    unsigned char *filled;       /* per sample */
    size_t bytes, max_bytes;
};
void mq_divergence_cache_free(struct mq_divergence_cache *cache);

/*
 * Filling the cache from elsewhere (calibration runs the float model on the
 * same samples): prepare makes room for n_samples samples of A's n_outputs
 * outputs (a cache already prepared is left as it is); store then keeps a
 * copy of sample i's outputs, in A's output order, while they fit (a sample
 * that does not fit is run again when compared).  Stores of different
 * samples may run on different threads at once.
 */
void mq_divergence_cache_prepare(struct mq_divergence_cache *cache, int64_t n_samples,
                                 int n_outputs);
void mq_divergence_cache_store(struct mq_divergence_cache *cache, int64_t i,
                               const struct mq_tensor *outputs, int n_outputs);

struct mq_divergence_options {
    const char *inputs_dir;  /* any layout calib/reader.h accepts */
    int64_t limit;           /* > 0: only the first `limit` samples */
    int per_layer;
    const struct mq_preprocess *preprocess; /* images and WAV files (calib/preprocess.h) */
    struct mq_divergence_cache *reference;  /* A's outputs across calls, or NULL; unused with
                                              per_layer (A's tensors are observed then) */
    int jobs;                /* threads; 0 means 1.  The figures do not depend on it. */
};

struct mq_divergence_output {
    char *name;
    struct mq_error_stats stats;
    int class_scores;        /* every sample looked like [N, C] scores */
    struct mq_top1_stats top1;
};

struct mq_divergence_layer {
    char *tensor_a, *tensor_b;   /* the names in each model */
    char *node, *op_type;        /* A's node producing it */
    struct mq_error_stats stats;
    /* Relative noise power (err^2 / ref^2) of the producer's noisiest compared input, 0 when none. */
    double input_relative_noise;
    /* SQNR of the noise this node adds on its own: +inf when it adds none. */
    double node_sqnr_db;
    int64_t order;               /* when A first produced it */
    int64_t shape_mismatches;    /* samples where the two shapes differed (not in stats) */
};

struct mq_divergence_result {
    int64_t samples;
    struct mq_divergence_output *outputs;   /* in A's output order */
    int n_outputs;
    struct mq_divergence_layer *layers;     /* worst node first (lowest node_sqnr_db) */
    int n_layers;
    int n_matched_names;                 /* tensors matched by name, compared or not */
};

/*
 * Both models must have the same graph outputs (by name) and B must take no
 * input that A lacks; float32 and float16 inputs are converted where the two
 * declare different widths.
 */
int mq_divergence_compare(const struct mq_model *a, const struct mq_model *b,
                          const struct mq_divergence_options *options,
                          struct mq_divergence_result *result, struct mq_error *err);
void mq_divergence_result_free(struct mq_divergence_result *result);

#endif
