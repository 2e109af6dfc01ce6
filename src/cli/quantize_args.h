/*
 * The options of `onnx-monoquant IN.onnx OUT.onnx ...` (the quantize command),
 * parsed from the command line: cli/quantize.c runs what they ask for.
 */
#ifndef MQ_CLI_QUANTIZE_ARGS_H
#define MQ_CLI_QUANTIZE_ARGS_H

#include "calib/calibrate.h"
#include "cli/quantize_weights.h"
#include "cli/sample_args.h"
#include "model/model.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "quant/target_search.h"


struct mq_quantize_args {
    const char *in, *out, *report, *html, *save_ranges, *calib, *profile;
    const char **loads;
    int n_loads;
    const char *method_name;
    struct mq_calib_options calib_options;
    long long limit;
    struct mq_preprocess preprocess;
    int quiet;
    struct mq_quant_options quant;
    struct mq_pattern_list op_types, exclude_op_types, include_nodes, exclude_nodes;
    struct mq_save_options save;
    const char *eval;
    long long eval_limit;
    int no_check;
    int split_hardswish;
    int hardswish_codes;      /* HardSwish as x * HardSigmoid(x), run on x's codes */
    int no_channel_pad;
    int no_pool_conv;
    int gptq_rounding;        /* --weight-rounding: 1 gptq, 0 nearest, -1 not given */
    struct mq_target target;
    enum mq_fallback_type fallback;
    struct mq_weight_mode_args weights; /* --dynamic, --weight-only */
};

/* Parses argv into *a (zeroed by the caller); returns -1 to go on, else the exit status (help,
   usage error). */
int mq_quantize_args_parse(int argc, char **argv, struct mq_quantize_args *a);
void mq_quantize_args_free(struct mq_quantize_args *a);

#endif
