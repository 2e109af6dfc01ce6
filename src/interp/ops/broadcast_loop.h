/*
 * Runs a row function over operands broadcast numpy-style into an output
 * (the loop nest of the element-wise kernels, elementwise.c).
 */
#ifndef MQ_OPS_BROADCAST_LOOP_H
#define MQ_OPS_BROADCAST_LOOP_H

#include <stdint.h>

#include "core/tensor.h"

#define MQ_BROADCAST_MAX_OPERANDS 3

/*
 * Computes n output elements from operands read with element strides
 * sa, sb, sc (0 for an operand broadcast along the row).  Unused operands
 * are passed as a valid pointer with stride 0.
 */
typedef void (*mq_broadcast_row_fn)(void *out, const void *a, const void *b, const void *c,
                                    int64_t n, int64_t sa, int64_t sb, int64_t sc);

/* Applied in place to each output row after the row function (a fused activation). */
typedef void (*mq_broadcast_row_post_fn)(void *out, int64_t n);

/*
 * out (already allocated in the broadcast shape of the n_in <= 3 operands) =
 * post(fn(in...)), row by row; post may be NULL.
 */
void mq_broadcast_loop_run(int n_in, const struct mq_tensor *const *in, struct mq_tensor *out,
                           mq_broadcast_row_fn fn, mq_broadcast_row_post_fn post);

#endif
