/*
 * How much arithmetic each weighted node does: multiply-accumulates of every
 * Conv, ConvTranspose, Gemm and MatMul, from the shapes one sample gives when
 * it runs through the model (dynamic shapes are only known then).  The
 * accuracy search uses it to report the share of the compute kept in int8.
 */
#ifndef MQ_QUANT_CHECK_MACS_H
#define MQ_QUANT_CHECK_MACS_H

#include <stdint.h>

#include "model/model.h"
#include "util/error.h"

struct mq_macs;

/*
 * Runs the first sample of `samples_dir` through `model` and records the
 * MACs of each weighted node, keyed by the node's first output.
 */
int mq_check_count_macs(const struct mq_model *model, const char *samples_dir,
                        struct mq_macs **out, struct mq_error *err);
/* MACs of the node whose first output is `output`; 0 when unknown or not weighted. */
int64_t mq_check_node_macs(const struct mq_macs *macs, const char *output);
void mq_check_macs_free(struct mq_macs *macs);

#endif
