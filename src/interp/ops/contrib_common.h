/*
 * Small checks shared by the com.microsoft kernels (contrib_*.c): onnxruntime's transformer
 * optimiser writes these ops in float32, which is all they accept here.
 */
#ifndef MQ_OPS_CONTRIB_COMMON_H
#define MQ_OPS_CONTRIB_COMMON_H

#include "interp/kernel.h"

/* Input i as a float32 tensor of rank >= min_rank; NULL (with err set) when absent or not. */
static inline const struct mq_tensor *mq_contrib_float_input(const struct mq_kernel_node *node,
                                                             const struct mq_tensor *const *in,
                                                             int n_in, int i, int min_rank,
                                                             struct mq_error *err)
{
    const struct mq_tensor *t = i < n_in ? in[i] : NULL;
    if (!t) {
        mq_error_set(err, "node '%s' (%s): input %d is required", node->name, node->op_type, i);
        return NULL;
    }
    if (t->dtype != MQ_DTYPE_FLOAT) {
        mq_error_set(err, "node '%s' (%s): input %d has element type %s, only float32 is "
                     "supported", node->name, node->op_type, i, mq_dtype_name(t->dtype));
        return NULL;
    }
    if (t->rank < min_rank) {
        mq_error_set(err, "node '%s' (%s): input %d has rank %d, expected >= %d", node->name,
                     node->op_type, i, t->rank, min_rank);
        return NULL;
    }
    return t;
}

/* Optional input i: NULL when absent, else checked as float32 (err set and *bad = 1 if not). */
static inline const struct mq_tensor *mq_contrib_optional_float(const struct mq_kernel_node *node,
                                                                const struct mq_tensor *const *in,
                                                                int n_in, int i, int *bad,
                                                                struct mq_error *err)
{
    const struct mq_tensor *t = i < n_in ? in[i] : NULL;
    if (t && t->dtype != MQ_DTYPE_FLOAT) {
        mq_error_set(err, "node '%s' (%s): input %d has element type %s, only float32 is "
                     "supported", node->name, node->op_type, i, mq_dtype_name(t->dtype));
        *bad = 1;
        return NULL;
    }
    return t;
}

/* The last dimension of t (1 for a scalar). */
static inline int64_t mq_contrib_last_dim(const struct mq_tensor *t)
{
    return t->rank ? t->dims[t->rank - 1] : 1;
}

#endif
