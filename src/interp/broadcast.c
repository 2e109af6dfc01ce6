/* Numpy-style multidirectional broadcasting: output shapes and strides (see broadcast.h). */
#include "interp/broadcast.h"

#include <stdio.h>

int mq_broadcast_shape(int n, const struct mq_tensor *const *inputs, int *out_rank,
                       int64_t *out_dims, const char *what, struct mq_error *err)
{
    int rank = 0;
    for (int i = 0; i < n; i++) {
        if (inputs[i]->rank < 0 || inputs[i]->rank > MQ_MAX_RANK)
            return mq_error_set(err, "%s: input %d has rank %d, outside 0..%d",
                                what ? what : "broadcast", i, inputs[i]->rank, MQ_MAX_RANK);
        if (inputs[i]->rank > rank)
            rank = inputs[i]->rank;
    }
    /* Align shapes on their last axis; a 1 stretches to any size, 0 included (as numpy). */
    for (int d = 0; d < rank; d++) {
        int64_t dim = 1;
        for (int i = 0; i < n; i++) {
            int lead = rank - inputs[i]->rank;
            if (d < lead)
                continue;
            int64_t v = inputs[i]->dims[d - lead];
            if (v == 1 || v == dim)
                continue;
            if (dim != 1) {
                char shapes[768];
                size_t used = 0;
                shapes[0] = '\0';
                for (int j = 0; j < n && used < sizeof shapes; j++) {
                    char one[256];
                    used += (size_t)snprintf(shapes + used, sizeof shapes - used, "%s%s",
                                             j ? (j + 1 == n ? " and " : ", ") : "",
                                             mq_shape_format(inputs[j]->rank, inputs[j]->dims,
                                                             one, sizeof one));
                }
                return mq_error_set(err, "%s: shapes %s cannot be broadcast together "
                                    "(axis %d: %lld vs %lld)", what ? what : "broadcast", shapes,
                                    d, (long long)dim, (long long)v);
            }
            dim = v;
        }
        out_dims[d] = dim;
    }
    *out_rank = rank;
    return MQ_OK;
}

void mq_broadcast_strides(const struct mq_tensor *in, int out_rank, const int64_t *out_dims,
                          int64_t *strides)
{
    int lead = out_rank - in->rank;
    int64_t stride = 1;
    for (int d = out_rank - 1; d >= 0; d--) {
        if (d < lead) {
            strides[d] = 0;
            continue;
        }
        int64_t dim = in->dims[d - lead];
        /* A size-1 axis repeats its one element however long the output axis is. */
        strides[d] = (dim == 1 && out_dims[d] != 1) ? 0 : stride;
        stride *= dim;
    }
}
