/*
 * Inside the model comparison (report/divergence.h): the state the pairing of
 * tensors builds (divergence.c) and the pass that runs the samples through
 * both models on worker threads (divergence_pass.c).
 *
 * Each sample's statistics are gathered apart and merged into the result in
 * sample order, so the figures are the same bit for bit whatever the number
 * of threads, and the same as one thread adding the samples one by one.
 */
#ifndef MQ_REPORT_DIVERGENCE_PASS_H
#define MQ_REPORT_DIVERGENCE_PASS_H

#include "interp/plan.h"
#include "report/divergence.h"
#include "util/strmap.h"

/* A tensor of A matched by name with one of B. */
struct mq_divergence_pair {
    struct mq_divergence_layer layer;
};

/* Who produced a tensor of A (matched or not), to follow the error upstream. */
struct mq_divergence_producer {
    char *node, *op_type;
    char **inputs;
    int n_inputs;
};

/* The pairs of a per-layer comparison, and what the samples taught about them. */
struct mq_divergence_pairs {
    struct mq_divergence_pair *pairs;
    int n_pairs;
    struct mq_strmap *by_a, *by_b;   /* observed name -> pair */
    struct mq_divergence_producer *produced;
    int n_produced, cap_produced;
    struct mq_strmap *produced_by_name;
    int64_t next_order;
};

void mq_divergence_producer_free(struct mq_divergence_producer *t);

struct mq_divergence_pass {
    const struct mq_divergence_options *options;
    const struct mq_plan *a, *b;
    const struct mq_calib_source *source;   /* bound to A's inputs */
    const int *in_map;    /* B's input k is A's input in_map[k] */
    const int *out_map;   /* A's output i is B's output out_map[i] */
    struct mq_divergence_pairs *pairs;   /* per layer, else NULL */
    struct mq_divergence_result *result; /* outputs named and initialised; samples counted here */
};

/* Runs every sample through A (or takes its outputs from options->reference) and B. */
int mq_divergence_pass_run(const struct mq_divergence_pass *pass, struct mq_error *err);

#endif
