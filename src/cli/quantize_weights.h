/*
 * The quantize command's two modes that need no activation ranges: --dynamic and
 * --weight-only (quant/dynamic.h, quant/weight_only.h).  quantize.c parses the options and
 * hands over here instead of calibrating.
 */
#ifndef MQ_CLI_QUANTIZE_WEIGHTS_H
#define MQ_CLI_QUANTIZE_WEIGHTS_H

#include "model/model.h"
#include "quant/select.h"
#include "quant/weight_only.h"

struct mq_weight_mode_args {
    int dynamic;                            /* --dynamic */
    int weight_only;                        /* --weight-only T */
    struct mq_weight_only_options wo;       /* its type, block size, format, method */
};

/* Parses the mode's option at argv[*i] (advancing *i over its value): 1 when it was one,
   0 when not, MQ_EXIT_USAGE after printing a usage error. */
int mq_cli_weight_mode_option(int argc, char **argv, int *i, struct mq_weight_mode_args *w);

/* Loads IN, selects, rewrites and saves OUT; returns the exit status. */
int mq_cli_quantize_weights(const char *in, const char *out, const char *calib,
                            long long calib_limit, int per_channel, int quiet,
                            const struct mq_select_options *so,
                            const struct mq_weight_mode_args *w,
                            const struct mq_save_options *save);

#endif
