/* Numpy-style multidirectional broadcasting. */
#ifndef MQ_BROADCAST_H
#define MQ_BROADCAST_H

#include <stdint.h>

#include "core/tensor.h"

/* Output shape of broadcasting n shapes together; error names `what` (a node). */
int mq_broadcast_shape(int n, const struct mq_tensor *const *inputs, int *out_rank,
                       int64_t *out_dims, const char *what, struct mq_error *err);
/*
 * Element strides of `in` laid out in the output shape: stride 0 on every
 * broadcast axis, so output element k reads in->data[sum(index_i * strides[i])].
 */
void mq_broadcast_strides(const struct mq_tensor *in, int out_rank, const int64_t *out_dims,
                          int64_t *strides);

#endif
