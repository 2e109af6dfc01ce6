/*
 * Ops that reorder a tensor's elements without changing them: Transpose,
 * DepthToSpace, SpaceToDepth and ReverseSequence.  They move bytes through
 * the strided copies of interp/ops/element_copy.h, whatever the element type.
 */
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/element_copy.h"
#include "interp/ops/shape_util.h"

/* ---- Transpose -------------------------------------------------------------------------- */

struct perm_state {
    int n_perm;                   /* -1: attribute absent (reverse the axes) */
    int64_t perm[MQ_MAX_RANK];
};

static int transpose_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct perm_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    return ops_attr_ints(node, "perm", st->perm, MQ_MAX_RANK, &st->n_perm, err);
}

static int transpose_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct perm_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int perm[MQ_MAX_RANK];
    if (st->n_perm < 0) {
        for (int i = 0; i < x->rank; i++)
            perm[i] = x->rank - 1 - i;
    } else {
        if (st->n_perm != x->rank)
            return ops_fail(node, err, "perm has %d entries but the input has rank %d",
                            st->n_perm, x->rank);
        int seen[MQ_MAX_RANK] = {0};
        for (int i = 0; i < x->rank; i++) {
            int64_t p = st->perm[i];
            if (p < 0 || p >= x->rank || seen[p])
                return ops_fail(node, err, "perm is not a permutation of 0..%d (entry %d is "
                                "%lld)", x->rank - 1, i, (long long)p);
            seen[p] = 1;
            perm[i] = (int)p;
        }
    }
    int64_t dims[MQ_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = x->dims[perm[i]];
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, x->rank, dims, err))
        return MQ_ERR;
    if (x->count > 0)
        mq_element_transpose(outputs[0].data, x->data, mq_dtype_size(x->dtype), x->rank, x->dims,
                             perm);
    return MQ_OK;
}

/* ---- DepthToSpace / SpaceToDepth -------------------------------------------------------- */

struct block_state {
    int64_t blocksize;
    int crd;                      /* DepthToSpace mode CRD (else DCR) */
};

static int block_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct block_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (!mq_attr_has(node, "blocksize"))
        return ops_fail(node, err, "attribute 'blocksize' is required");
    st->blocksize = mq_attr_int(node, "blocksize", 0);
    if (st->blocksize <= 0 || st->blocksize > (1 << 20))
        return ops_fail(node, err, "blocksize %lld must be positive", (long long)st->blocksize);
    char buf[16];
    const char *mode = mq_attr_string(node, "mode", "DCR", buf, sizeof buf);
    if (strcmp(mode, "CRD") == 0)
        st->crd = 1;
    else if (strcmp(mode, "DCR") != 0)
        return ops_fail(node, err, "mode '%s' is not DCR or CRD", mode);
    return MQ_OK;
}

/* The input of DepthToSpace / SpaceToDepth and its geometry. */
struct block_geom {
    const struct mq_tensor *x;
    int64_t b, N, C, H, W;
};

static int block_input(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                       int n_inputs, struct block_geom *g, struct mq_error *err)
{
    const struct block_state *st = node->state;
    const struct mq_tensor **x = &g->x;
    if (ops_require(node, inputs, n_inputs, 0, x, err))
        return MQ_ERR;
    if ((*x)->rank != 4) {
        char s[256];
        return ops_fail(node, err, "input '%s' has shape %s, expected rank 4 (N, C, H, W)",
                        ops_input_name(node, 0), ops_shape(*x, s, sizeof s));
    }
    g->b = st->blocksize;
    g->N = (*x)->dims[0];
    g->C = (*x)->dims[1];
    g->H = (*x)->dims[2];
    g->W = (*x)->dims[3];
    return MQ_OK;
}

static int depth_to_space_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct block_state *st = node->state;
    struct block_geom g = {0};
    if (block_input(node, inputs, n_inputs, &g, err))
        return MQ_ERR;
    const struct mq_tensor *x = g.x;
    int64_t b = g.b, N = g.N, C = g.C, H = g.H, W = g.W;
    if (C % (b * b) != 0)
        return ops_fail(node, err, "channels %lld are not divisible by blocksize^2 = %lld",
                        (long long)C, (long long)(b * b));
    int64_t c = C / (b * b);
    int64_t dims[4] = {N, c, H * b, W * b};
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, 4, dims, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    /* DCR reads channels as (b1, b2, c), CRD as (c, b1, b2). */
    int64_t dcr_dims[6] = {N, b, b, c, H, W}, crd_dims[6] = {N, c, b, b, H, W};
    static const int dcr_perm[6] = {0, 3, 4, 1, 5, 2}, crd_perm[6] = {0, 1, 4, 2, 5, 3};
    mq_element_transpose(outputs[0].data, x->data, mq_dtype_size(x->dtype), 6,
                         st->crd ? crd_dims : dcr_dims, st->crd ? crd_perm : dcr_perm);
    return MQ_OK;
}

static int space_to_depth_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    struct block_geom g = {0};
    if (block_input(node, inputs, n_inputs, &g, err))
        return MQ_ERR;
    int64_t b = g.b, N = g.N, C = g.C, H = g.H, W = g.W;
    const struct mq_tensor *x = g.x;
    if (H % b != 0 || W % b != 0)
        return ops_fail(node, err, "height %lld and width %lld must be divisible by blocksize "
                        "%lld", (long long)H, (long long)W, (long long)b);
    int64_t dims[4] = {N, C * b * b, H / b, W / b};
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, 4, dims, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    int64_t view[6] = {N, C, H / b, b, W / b, b};
    static const int perm[6] = {0, 3, 5, 1, 2, 4};
    mq_element_transpose(outputs[0].data, x->data, mq_dtype_size(x->dtype), 6, view, perm);
    return MQ_OK;
}

/* ---- ReverseSequence -------------------------------------------------------------------- */

struct reverse_state {
    int batch_axis, time_axis;
};

static int reverse_sequence_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct reverse_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    int64_t batch_axis = mq_attr_int(node, "batch_axis", 1);
    int64_t time_axis = mq_attr_int(node, "time_axis", 0);
    if ((batch_axis != 0 && batch_axis != 1) || (time_axis != 0 && time_axis != 1) ||
        batch_axis == time_axis)
        return ops_fail(node, err, "batch_axis (%lld) and time_axis (%lld) must be 0 and 1 in "
                        "some order", (long long)batch_axis, (long long)time_axis);
    st->batch_axis = (int)batch_axis;
    st->time_axis = (int)time_axis;
    return MQ_OK;
}

static int reverse_sequence_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                const struct mq_tensor *const *inputs, int n_inputs,
                                struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct reverse_state *st = node->state;
    const struct mq_tensor *x, *lens;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &lens, err))
        return MQ_ERR;
    int batch_axis = st->batch_axis, time_axis = st->time_axis;
    if (x->rank < 2)
        return ops_fail(node, err, "input must have rank >= 2, got %d", x->rank);
    int64_t batch = x->dims[batch_axis], steps = x->dims[time_axis];
    if (lens->rank != 1 || lens->count != batch || !ops_is_integer_dtype(lens->dtype))
        return ops_fail(node, err, "sequence_lens must be an integer vector of the batch size "
                        "%lld", (long long)batch);
    if (ops_copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err))
        return MQ_ERR;
    int64_t strides[MQ_MAX_RANK];
    ops_strides(x->rank, x->dims, strides);
    size_t es = mq_dtype_size(x->dtype);
    int64_t block = ops_product(x->dims, 2, x->rank) * (int64_t)es;
    for (int64_t b = 0; b < batch; b++) {
        int64_t len = mq_tensor_get_int64(lens, b);
        if (len < 0 || len > steps)
            return ops_fail(node, err, "sequence length %lld for batch %lld is outside [0, %lld]",
                            (long long)len, (long long)b, (long long)steps);
        for (int64_t t = 0; t < len; t++) {
            int64_t dst = b * strides[batch_axis] + t * strides[time_axis];
            int64_t src = b * strides[batch_axis] + (len - 1 - t) * strides[time_axis];
            memcpy((char *)outputs[0].data + dst * (int64_t)es,
                   (const char *)x->data + src * (int64_t)es, (size_t)block);
        }
    }
    return MQ_OK;
}

/* ---- the table -------------------------------------------------------------------------- */

/* DepthToSpace got its mode attribute at 11. */
const struct mq_kernel mq_kernels_layout[] = {
    {"", "Transpose", 1, 0, transpose_prepare, transpose_run, free},
    {"", "DepthToSpace", 1, 10, block_prepare, depth_to_space_run, free},
    {"", "DepthToSpace", 11, 0, block_prepare, depth_to_space_run, free},
    {"", "SpaceToDepth", 1, 0, block_prepare, space_to_depth_run, free},
    {"", "ReverseSequence", 10, 0, reverse_sequence_prepare, reverse_sequence_run, free},
    {0},
};
