/*
 * The accuracy-driven search behind --target-sqnr and --target-agreement:
 * which nodes to leave float so that the quantized model meets the target on
 * the evaluation samples while as much of the Conv/ConvTranspose/Gemm/MatMul
 * arithmetic as possible stays int8.
 *
 * Everything is measured, in memory: each trial selects the nodes again with
 * more names excluded (quant/select.h), rewrites a fresh copy of the prepared
 * model (quant/qdq.h) with the calibration's ranges, and compares it with the
 * FP32 model on the samples (quant/check.h).  The steps, all deterministic:
 *
 *  1. everything quantized (with each weight rounding offered: the one nearer the target
 *     stays), with the per-node error attribution of
 *     `compare --per-layer`: the nodes, worst first, become the ranked list
 *     (a Conv and the Relu folded into it form one unit; nodes the
 *     attribution did not reach come last, in model order);
 *  2. bisection over the length of the ranked list's float prefix: the
 *     shortest prefix that meets the target (the whole list, i.e. nothing
 *     quantized, is tried when nothing shorter works: when even that falls
 *     short, the target is unreachable and the search fails naming the
 *     output);
 *  3. with the passes left, the prefix's units, the most multiply-accumulates
 *     first, are quantized again in groups of four (the halves of a group
 *     that breaks the target are tried next, first half first) and kept so
 *     while the target holds: the fallback set shrinks to what is needed.
 *
 * At most MQ_TARGET_MAX_PASSES passes over the samples in all.
 */
#ifndef MQ_QUANT_TARGET_SEARCH_H
#define MQ_QUANT_TARGET_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "calib/ranges.h"
#include "model/model.h"
#include "quant/check.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "quant/target_fallback.h"
#include "util/error.h"

#define MQ_TARGET_MAX_PASSES 16

struct mq_target {
    int has_sqnr;
    double sqnr_db;          /* every output at least this pooled SQNR */
    int has_agreement;
    double agreement_pct;    /* every class-score output at least this top-1 agreement */
    /*
     * Every output's SQNR is taken less this many of its standard errors over the samples
     * (mq_error_stats_sqnr_stderr_db): the search aims above the target by what the spread
     * of its samples says other samples may lose.  0: the figure as measured.
     */
    double stderr_multiple;
};

/* The SQNR multiple of the standard error the command line aims above the target by. */
#define MQ_TARGET_DEFAULT_STDERR_MULTIPLE 1.0

/* Whether a check result meets the target. */
int mq_target_met(const struct mq_target *t, const struct mq_check_result *r);

struct mq_target_progress {
    int pass, max_passes;
    int n_float;             /* nodes left float in this trial */
    const char *step;        /* "measuring", "bisecting", "re-quantizing" */
};
typedef void (*mq_target_progress_fn)(void *user, const struct mq_target_progress *p);

struct mq_target_search_options {
    /* The model as the rewrite takes it (opset raised, BatchNorm folded), serialized. */
    const uint8_t *prepared;
    size_t prepared_size;
    const char *model_dir;                     /* where its external data lives, if any */
    const struct mq_select_options *select;    /* the user's selection */
    const struct mq_ranges *ranges;
    const struct mq_quant_options *quant;
    const struct mq_model *fp32;               /* the reference */
    struct mq_check_options eval;              /* the samples; attribution is set as needed */
    struct mq_target target;
    enum mq_fallback_type fallback;            /* what the nodes left out of int8 become */
    /*
     * Another weight rounding to try (quant/weight_rounding.h), NULL: none.  The first step
     * measures the all-int8 model with both and keeps the one nearer the target.
     */
    const struct mq_weight_rounding *other_rounding;
    mq_target_progress_fn progress;
    void *progress_user;
};

struct mq_fallback_node {
    char *name;              /* as selection names it */
    char *op_type;
    double node_sqnr_db;     /* the error it adds on its own when everything is int8 (+inf: none seen) */
    int measured;            /* re-quantizing it alone was tried: */
    double sqnr_if_quantized_db; /* the lowest output SQNR that trial reached */
    double agreement_if_quantized_pct; /* and the lowest top-1 agreement (-1: none) */
    int64_t macs;
};

struct mq_target_search_result {
    int met_with_all_int8;           /* nothing had to stay float */
    struct mq_fallback_node *fallback; /* in the order of the ranked list */
    int n_fallback;
    int passes;
    double reached_sqnr_db;          /* the final trial: lowest output SQNR */
    double reached_agreement_pct;    /* and lowest class-score top-1 agreement (-1: none) */
    double reached_sqnr_stderr_db;   /* the standard error of the output with the lowest SQNR */
    int uses_other_rounding;         /* the search kept options->other_rounding */
    int64_t macs_int8, macs_total;   /* Conv/ConvTranspose/Gemm/MatMul, one sample's shapes */
    int weighted_int8, weighted_total; /* those nodes, counted */
};

int mq_target_search(const struct mq_target_search_options *o,
                     struct mq_target_search_result *result, struct mq_error *err);
void mq_target_search_result_free(struct mq_target_search_result *r);

/*
 * The exclusion list that reproduces the search's model: `user` (may be
 * NULL) and the fallback nodes' names, escaped so that each matches only
 * itself.  `out` must be empty; free it with mq_pattern_list_free.
 */
int mq_target_exclusions(const struct mq_target_search_result *r,
                         const struct mq_pattern_list *user, struct mq_pattern_list *out,
                         struct mq_error *err);

#endif
