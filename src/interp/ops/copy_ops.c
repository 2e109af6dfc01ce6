/*
 * Ops whose output is their input copied, whole or repeated: Identity,
 * Dropout (at inference), Expand and Tile.
 */
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/element_copy.h"
#include "interp/ops/shape_util.h"

/* ---- Identity / Dropout ----------------------------------------------------------------- */

static int identity_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    return ops_copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err);
}

struct dropout_state {
    float ratio;
};

static int dropout_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct dropout_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->ratio = node->opset < 12 ? mq_attr_float(node, "ratio", 0.5f) : 0.5f;
    if (!(st->ratio >= 0.0f && st->ratio < 1.0f))
        return ops_fail(node, err, "ratio %g is outside [0, 1)", (double)st->ratio);
    return MQ_OK;
}

/*
 * Inference only: the output is the input and the mask is all true.  Before
 * opset 12 is_test/training are graph-level notions we ignore (a model being
 * quantized runs in inference).  From 12, training_mode=true with a non-zero
 * ratio would draw random numbers, which a calibration run must not do.
 */
static int dropout_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                       const struct mq_tensor *const *inputs, int n_inputs,
                       struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    if (node->opset >= 12) {
        const struct mq_tensor *ratio = ops_input(inputs, n_inputs, 1);
        const struct mq_tensor *training = ops_input(inputs, n_inputs, 2);
        double r = 0.5;
        if (ratio) {
            if (ratio->count != 1)
                return ops_fail(node, err, "input 'ratio' must be a scalar");
            r = mq_tensor_get_double(ratio, 0);
        }
        if (training && training->count >= 1 && mq_tensor_get_int64(training, 0) != 0 && r != 0)
            return ops_fail(node, err, "training_mode=true with ratio %g draws random masks, "
                            "which this inference interpreter does not do", r);
    }
    if (ops_copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err))
        return MQ_ERR;
    if (n_outputs > 1) {
        int mask_type = node->opset >= 10 ? MQ_DTYPE_BOOL : x->dtype;
        unsigned char one[16];
        if (ops_scalar_bytes(node, mask_type, 1.0, one, err) ||
            ops_alloc(node, &outputs[1], mask_type, x->rank, x->dims, err))
            return MQ_ERR;
        mq_element_fill(outputs[1].data, one, outputs[1].count, mq_dtype_size(mask_type));
    }
    return MQ_OK;
}

/* ---- Expand ----------------------------------------------------------------------------- */

static int expand_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x, *shape_t;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &shape_t, err))
        return MQ_ERR;
    int64_t shape[MQ_MAX_RANK];
    int n;
    if (ops_read_ints(node, shape_t, 1, shape, MQ_MAX_RANK, &n, err))
        return MQ_ERR;
    int rank = n > x->rank ? n : x->rank;
    int64_t in_strides[MQ_MAX_RANK], dims[MQ_MAX_RANK], strides[MQ_MAX_RANK];
    ops_strides(x->rank, x->dims, in_strides);
    for (int k = 0; k < rank; k++) {
        int ia = k - (rank - x->rank), sa = k - (rank - n);
        int64_t a = ia >= 0 ? x->dims[ia] : 1;
        int64_t b = sa >= 0 ? shape[sa] : 1;
        if (b < 0) {
            char s[256];
            return ops_fail(node, err, "shape %s has a negative dim",
                            mq_shape_format(n, shape, s, sizeof s));
        }
        if (a != b && a != 1 && b != 1) {
            char s1[256], s2[256];
            return ops_fail(node, err, "input %s cannot be broadcast to shape %s",
                            ops_shape(x, s1, sizeof s1), mq_shape_format(n, shape, s2, sizeof s2));
        }
        dims[k] = a == 1 ? b : a;
        strides[k] = (ia >= 0 && a != 1) ? in_strides[ia] : 0;
    }
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, rank, dims, err))
        return MQ_ERR;
    if (outputs[0].count > 0)
        mq_element_copy_strided(outputs[0].data, x->data, mq_dtype_size(x->dtype), rank, dims,
                                strides);
    return MQ_OK;
}

/* ---- Tile ------------------------------------------------------------------------------- */

static int tile_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x, *rep;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &rep, err))
        return MQ_ERR;
    int64_t repeats[MQ_MAX_RANK];
    if (node->opset < 6) {
        /* Tile-1: a scalar count `tiles` for the single axis given by input 2. */
        const struct mq_tensor *axis_t;
        int64_t tiles, axis_v;
        int axis;
        if (ops_require(node, inputs, n_inputs, 2, &axis_t, err) ||
            ops_read_scalar_int(node, rep, 1, &tiles, err) ||
            ops_read_scalar_int(node, axis_t, 2, &axis_v, err) ||
            mq_axis_normalize(node, axis_v, x->rank, &axis, err))
            return MQ_ERR;
        for (int i = 0; i < x->rank; i++)
            repeats[i] = i == axis ? tiles : 1;
    } else {
        int n;
        if (ops_read_ints(node, rep, 1, repeats, MQ_MAX_RANK, &n, err))
            return MQ_ERR;
        if (n != x->rank)
            return ops_fail(node, err, "input 'repeats' has %d values but the input has rank %d",
                            n, x->rank);
    }
    int64_t in_strides[MQ_MAX_RANK], dims[MQ_MAX_RANK];
    int64_t vdims[MQ_ELEMENT_VIEW_MAX_RANK], vstrides[MQ_ELEMENT_VIEW_MAX_RANK];
    ops_strides(x->rank, x->dims, in_strides);
    for (int i = 0; i < x->rank; i++) {
        if (repeats[i] < 0)
            return ops_fail(node, err, "repeat count %lld for axis %d is negative",
                            (long long)repeats[i], i);
        if (x->dims[i] != 0 && repeats[i] > INT64_MAX / x->dims[i])
            return ops_fail(node, err, "output dim %d overflows", i);
        dims[i] = x->dims[i] * repeats[i];
        vdims[2 * i] = repeats[i];
        vstrides[2 * i] = 0;
        vdims[2 * i + 1] = x->dims[i];
        vstrides[2 * i + 1] = in_strides[i];
    }
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, x->rank, dims, err))
        return MQ_ERR;
    if (outputs[0].count > 0)
        mq_element_copy_strided(outputs[0].data, x->data, mq_dtype_size(x->dtype), 2 * x->rank,
                                vdims, vstrides);
    return MQ_OK;
}

/* ---- the table -------------------------------------------------------------------------- */

/* Dropout's mask became bool at 10 and ratio/training_mode inputs at 12; Tile took (tiles,
   axis) before 6. */
const struct mq_kernel mq_kernels_copy[] = {
    {"", "Identity", 1, 0, NULL, identity_run, NULL},
    {"", "Dropout", 1, 9, dropout_prepare, dropout_run, free},
    {"", "Dropout", 10, 11, dropout_prepare, dropout_run, free},
    {"", "Dropout", 12, 0, dropout_prepare, dropout_run, free},
    {"", "Expand", 8, 0, NULL, expand_run, NULL},
    {"", "Tile", 1, 5, NULL, tile_run, NULL},
    {"", "Tile", 6, 0, NULL, tile_run, NULL},
    {0},
};
