/* What `info` shows about a model, gathered without printing. */
#ifndef MQ_SUMMARY_H
#define MQ_SUMMARY_H

#include <stdint.h>

#include "onnx.pb-c.h"
#include "util/error.h"

struct mq_op_count {
    const char *op_type;   /* points into the model */
    const char *domain;
    int64_t main_graph;    /* nodes in the main graph */
    int64_t subgraphs;     /* nodes inside If/Loop/Scan bodies, at any depth */
};

struct mq_model_summary {
    struct mq_op_count *ops; /* sorted by op type, then domain */
    int n_ops;
    int64_t nodes_main, nodes_subgraphs;
    int64_t n_subgraphs;
    int64_t initializers;      /* main graph and subgraphs */
    uint64_t initializer_bytes;
};

int mq_model_summarize(const Onnx__ModelProto *model, struct mq_model_summary *out,
                       struct mq_error *err);
void mq_model_summary_free(struct mq_model_summary *summary);

#endif
