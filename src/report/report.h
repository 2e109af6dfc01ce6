/*
 * What a quantization did, for people and for tools: the JSON report
 * (--report FILE.json) and the short summary table printed on stderr.
 */
#ifndef MQ_REPORT_H
#define MQ_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "calib/ranges.h"
#include "quant/check.h"
#include "quant/batchnorm_fold.h"
#include "quant/ort_fusion.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "quant/target_search.h"

struct mq_report {
    const char *input_path;
    const char *output_path;
    const char *profile;                  /* "ort-cpu", "tensorrt" */
    const struct mq_quant_options *options;
    const struct mq_selection *selection;
    const struct mq_quant_result *result;
    const struct mq_fold_result *folds;   /* nodes folded into the Conv first; may be NULL */
    int pads_folded;                      /* Pad nodes folded into the Conv after them */
    int hardswish_split;                  /* HardSwish written out (--split-hardswish) */
    int hardswish_as_hardsigmoid;         /* HardSwish written as x * HardSigmoid(x) */
    int channels_padded;                  /* Conv inputs padded to the fast kernel's channels */
    int depthwise_padded;                 /* depthwise Convs widened to the fast kernel's */
    int pools_as_conv;                    /* AveragePools written as depthwise Convs */
    int shuffles_as_gather;               /* Reshape-Transpose-Reshape shuffles as a Gather */
    int batchnorms_as_conv;               /* BatchNormalizations as depthwise 1x1 Convs */
    int means_as_pool;                    /* spatial ReduceMeans as GlobalAveragePool */
    int ranges_equalized;                 /* Conv outputs rescaled per channel (equalization) */
    const struct mq_ranges *ranges;       /* may be NULL */
    const char *calibration_source;       /* "calib" or "ranges" */
    const char *const *calibration_paths; /* the folder, or the ranges files */
    int n_calibration_paths;
    int opset_before, opset_after;
    uint64_t model_bytes_before, model_bytes_after;
    uint64_t weight_bytes_before, weight_bytes_after; /* initializer data */
    const struct mq_check_result *check;  /* the accuracy check; NULL when not run */
    const char *check_skipped;            /* why it was not run, or NULL */
    const struct mq_target *target;       /* --target-sqnr/--target-agreement; may be NULL */
    const struct mq_target_search_result *search; /* what the search left float; may be NULL */
    enum mq_fallback_type fallback;       /* what those nodes became */
    const struct mq_ort_fusions *ort_fusions; /* what onnxruntime fuses; may be NULL */
};

/* Writes the report as JSON; -1 when a write failed. */
int mq_report_write_json(FILE *out, const struct mq_report *report);
/* The summary table (a few lines, stable order), the check's figures and its warnings. */
void mq_report_print_summary(FILE *out, const struct mq_report *report);
/*
 * The warnings alone: one line per output below MQ_CHECK_WARN_SQNR_DB,
 * naming the nodes that add the most error.  Returns how many.
 */
int mq_report_print_warnings(FILE *out, const struct mq_report *report);

#endif
