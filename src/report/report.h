/*
 * What a quantization did, for people and for tools: the JSON report
 * (--report FILE.json) and the short summary table printed on stderr.
 */
#ifndef MQ_REPORT_H
#define MQ_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "calib/ranges.h"
#include "quant/batchnorm_fold.h"
#include "quant/qdq.h"
#include "quant/select.h"

struct mq_report {
    const char *input_path;
    const char *output_path;
    const char *profile;                  /* "ort-cpu", "tensorrt" */
    const struct mq_quant_options *options;
    const struct mq_selection *selection;
    const struct mq_quant_result *result;
    const struct mq_fold_result *folds;   /* BatchNormalizations folded first; may be NULL */
    const struct mq_ranges *ranges;       /* may be NULL */
    const char *calibration_source;       /* "calib" or "ranges" */
    const char *const *calibration_paths; /* the folder, or the ranges files */
    int n_calibration_paths;
    int opset_before, opset_after;
    uint64_t model_bytes_before, model_bytes_after;
    uint64_t weight_bytes_before, weight_bytes_after; /* initializer data */
};

/* Writes the report as JSON; -1 when a write failed. */
int mq_report_write_json(FILE *out, const struct mq_report *report);
/* The summary table (a few lines, stable order). */
void mq_report_print_summary(FILE *out, const struct mq_report *report);

#endif
