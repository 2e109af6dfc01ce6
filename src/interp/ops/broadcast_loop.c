/*
 * The loop nest every element-wise kernel runs through (elementwise.c): the
 * output shape is collapsed to as few axes as possible, and a row function
 * handles the innermost axis with unit- or zero-stride operands.
 */
#include "interp/ops/broadcast_loop.h"

#include <string.h>

#include "interp/broadcast.h"

struct loop_nest {
    int rank; /* >= 1 */
    int n_in;
    int64_t dims[MQ_MAX_RANK];
    int64_t strides[MQ_BROADCAST_MAX_OPERANDS][MQ_MAX_RANK];
};

/* Lays the operands out in the output shape and merges axes that are contiguous for all. */
static void loop_nest_build(struct loop_nest *nest, int n_in, const struct mq_tensor *const *in,
                            int out_rank, const int64_t *out_dims)
{
    int64_t s[MQ_BROADCAST_MAX_OPERANDS][MQ_MAX_RANK];
    memset(nest, 0, sizeof *nest);
    nest->n_in = n_in;
    for (int k = 0; k < n_in; k++)
        mq_broadcast_strides(in[k], out_rank, out_dims, s[k]);
    int r = 0;
    for (int d = 0; d < out_rank; d++) {
        if (out_dims[d] == 1)
            continue;
        if (r > 0) {
            int merge = 1;
            for (int k = 0; k < n_in; k++)
                if (nest->strides[k][r - 1] != s[k][d] * out_dims[d])
                    merge = 0;
            if (merge) {
                nest->dims[r - 1] *= out_dims[d];
                for (int k = 0; k < n_in; k++)
                    nest->strides[k][r - 1] = s[k][d];
                continue;
            }
        }
        nest->dims[r] = out_dims[d];
        for (int k = 0; k < n_in; k++)
            nest->strides[k][r] = s[k][d];
        r++;
    }
    if (r == 0) {
        nest->dims[0] = 1;
        r = 1;
    }
    nest->rank = r;
}

static void loop_nest_run(const struct loop_nest *nest, void *out, size_t out_size,
                          const struct mq_tensor *const *in, mq_broadcast_row_fn fn,
                          mq_broadcast_row_post_fn post)
{
    int r = nest->rank;
    int64_t inner = nest->dims[r - 1];
    int64_t rows = 1;
    for (int d = 0; d < r - 1; d++)
        rows *= nest->dims[d];
    if (inner == 0 || rows == 0)
        return;
    const char *base[MQ_BROADCAST_MAX_OPERANDS];
    size_t size[MQ_BROADCAST_MAX_OPERANDS];
    int64_t inner_stride[MQ_BROADCAST_MAX_OPERANDS];
    for (int k = 0; k < MQ_BROADCAST_MAX_OPERANDS; k++) {
        int src = k < nest->n_in ? k : 0;
        base[k] = in[src]->data;
        size[k] = mq_dtype_size(in[src]->dtype);
        inner_stride[k] = k < nest->n_in ? nest->strides[k][r - 1] : 0;
    }
    int64_t idx[MQ_MAX_RANK] = {0};
    int64_t off[MQ_BROADCAST_MAX_OPERANDS] = {0};
    char *o = out;
    for (int64_t row = 0; row < rows; row++) {
        fn(o + (size_t)(row * inner) * out_size, base[0] + (size_t)off[0] * size[0],
           base[1] + (size_t)off[1] * size[1], base[2] + (size_t)off[2] * size[2], inner,
           inner_stride[0], inner_stride[1], inner_stride[2]);
        if (post)
            post(o + (size_t)(row * inner) * out_size, inner);
        for (int d = r - 2; d >= 0; d--) {
            for (int k = 0; k < nest->n_in; k++)
                off[k] += nest->strides[k][d];
            if (++idx[d] < nest->dims[d])
                break;
            for (int k = 0; k < nest->n_in; k++)
                off[k] -= nest->strides[k][d] * nest->dims[d];
            idx[d] = 0;
        }
    }
}

void mq_broadcast_loop_run(int n_in, const struct mq_tensor *const *in, struct mq_tensor *out,
                           mq_broadcast_row_fn fn, mq_broadcast_row_post_fn post)
{
    struct loop_nest nest;
    if (out->count == 0)
        return;
    loop_nest_build(&nest, n_in, in, out->rank, out->dims);
    loop_nest_run(&nest, out->data, mq_dtype_size(out->dtype), in, fn, post);
}
