/* Comparing a computed tensor with an expected one, with the tolerances stated once. */
#ifndef MQ_INTERP_TOLERANCE_H
#define MQ_INTERP_TOLERANCE_H

#include "core/tensor.h"

/* The ONNX backend test suite's own tolerances. */
#define MQ_COMPARE_RTOL 1e-3
#define MQ_COMPARE_ATOL 1e-7

struct mq_compare_result {
    int match;               /* shapes and types agree and every element is within tolerance */
    double max_abs_error;
    double max_rel_error;
    int64_t worst_index;     /* flat index of the element furthest outside tolerance, or -1 */
    double worst_actual, worst_expected;
    char reason[256];        /* why it does not match, when it does not */
};

/*
 * Floats: |a - e| <= atol + rtol * |e|, NaN equal to NaN, infinities equal when same sign.
 * Integers and bool: exact.  Float types may differ in width (computed vs stored).
 */
void mq_tensor_compare(const struct mq_tensor *actual, const struct mq_tensor *expected,
                       double rtol, double atol, struct mq_compare_result *result);

#endif
