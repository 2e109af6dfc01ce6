/*
 * Ops that only change a tensor's shape, never its elements' order: Reshape,
 * Flatten, Squeeze and Unsqueeze.  Each has a copying kernel (the registry's)
 * and a kernel returning a borrowed view of its input (interp/ops/fused.h).
 */
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/shape_util.h"

/*
 * Each layout-only op registers a copying kernel and a view kernel; both share one
 * *_common body that takes the view flag, so only the entry points differ.
 */
#define VIEW_RUN_PAIR(name)                                                                        \
    static int name##_run(const struct mq_kernel_node *node, struct mq_exec *exec,                 \
                          const struct mq_tensor *const *inputs, int n_inputs,                     \
                          struct mq_tensor *outputs, int n_outputs, struct mq_error *err)          \
    {                                                                                              \
        return name##_common(node, inputs, n_inputs, outputs, 0, err);                             \
    }                                                                                              \
    static int name##_view_run(const struct mq_kernel_node *node, struct mq_exec *exec,            \
                               const struct mq_tensor *const *inputs, int n_inputs,                \
                               struct mq_tensor *outputs, int n_outputs, struct mq_error *err)     \
    {                                                                                              \
        return name##_common(node, inputs, n_inputs, outputs, 1, err);                             \
    }

/*
 * x in the given shape (same element count): a borrowed view of x's buffer
 * when `view` is set (the runner makes it the owner when x has no other
 * reader, interp/run.c), else a copy.
 */
static int reshaped(const struct mq_kernel_node *node, const struct mq_tensor *x, int rank,
                    const int64_t *dims, struct mq_tensor *out, int view, struct mq_error *err)
{
    if (view) {
        mq_tensor_view(out, x);
        out->rank = rank;
        memcpy(out->dims, dims, (size_t)rank * sizeof dims[0]);
        return MQ_OK;
    }
    return ops_copy_reshaped(node, x, rank, dims, out, err);
}

/* ---- Reshape ---------------------------------------------------------------------------- */

struct reshape_state {
    int from_attribute;   /* Reshape-1..4 carry the shape as an attribute */
    int n_shape;
    int64_t shape[MQ_MAX_RANK];
    int allowzero;
};

static int reshape_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct reshape_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (node->opset < 5) {
        st->from_attribute = 1;
        if (ops_attr_ints(node, "shape", st->shape, MQ_MAX_RANK, &st->n_shape, err))
            return MQ_ERR;
        if (st->n_shape < 0)
            return ops_fail(node, err, "attribute 'shape' is required before opset 5");
    }
    int64_t allowzero = node->opset >= 14 ? mq_attr_int(node, "allowzero", 0) : 0;
    if (allowzero != 0 && allowzero != 1)
        return ops_fail(node, err, "attribute 'allowzero' must be 0 or 1, got %lld",
                        (long long)allowzero);
    st->allowzero = (int)allowzero;
    return MQ_OK;
}

/* Resolves 0 (copy the input dim) and -1 (infer) in a requested shape. */
static int resolve_shape(const struct mq_kernel_node *node, const struct mq_tensor *x,
                         const int64_t *req, int n, int allowzero, int64_t *dims,
                         struct mq_error *err)
{
    char a[256], b[256];
    int infer = -1, has_zero = 0;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        int64_t v = req[i];
        if (v == -1) {
            if (infer >= 0)
                return ops_fail(node, err, "shape %s has more than one -1",
                                mq_shape_format(n, req, a, sizeof a));
            infer = i;
            dims[i] = 1;
            continue;
        }
        if (v < -1)
            return ops_fail(node, err, "shape %s has the invalid value %lld at position %d",
                            mq_shape_format(n, req, a, sizeof a), (long long)v, i);
        if (v == 0 && !allowzero) {
            if (i >= x->rank)
                return ops_fail(node, err, "shape %s has 0 at position %d, which copies an "
                                "input dim, but the input %s has rank %d",
                                mq_shape_format(n, req, a, sizeof a), i, ops_shape(x, b, sizeof b),
                                x->rank);
            v = x->dims[i];
        } else if (v == 0) {
            has_zero = 1;
        }
        dims[i] = v;
        if (v != 0 && known > INT64_MAX / v)
            return ops_fail(node, err, "shape %s overflows", mq_shape_format(n, req, a, sizeof a));
        known *= v;
    }
    if (infer >= 0) {
        if (has_zero)
            return ops_fail(node, err, "shape %s has both 0 and -1 while allowzero=1",
                            mq_shape_format(n, req, a, sizeof a));
        if (known == 0 || x->count % known != 0)
            return ops_fail(node, err, "cannot infer the -1 in shape %s for input %s (%lld "
                            "elements)", mq_shape_format(n, req, a, sizeof a),
                            ops_shape(x, b, sizeof b), (long long)x->count);
        dims[infer] = x->count / known;
        known *= dims[infer];
    }
    if (known != x->count)
        return ops_fail(node, err, "cannot reshape input %s (%lld elements) into %s (%lld "
                        "elements)", ops_shape(x, a, sizeof a), (long long)x->count,
                        mq_shape_format(n, dims, b, sizeof b), (long long)known);
    return MQ_OK;
}

static int reshape_common(const struct mq_kernel_node *node,
                          const struct mq_tensor *const *inputs, int n_inputs,
                          struct mq_tensor *outputs, int view, struct mq_error *err)
{
    const struct reshape_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int64_t req[MQ_MAX_RANK];
    int n = st->n_shape;
    if (st->from_attribute) {
        memcpy(req, st->shape, sizeof req);
    } else {
        const struct mq_tensor *shape = ops_input(inputs, n_inputs, 1);
        if (!shape)
            return ops_fail(node, err, "input 'shape' is required");
        if (ops_read_ints(node, shape, 1, req, MQ_MAX_RANK, &n, err))
            return MQ_ERR;
    }
    int64_t dims[MQ_MAX_RANK];
    if (resolve_shape(node, x, req, n, st->allowzero, dims, err))
        return MQ_ERR;
    return reshaped(node, x, n, dims, &outputs[0], view, err);
}

VIEW_RUN_PAIR(reshape)

/* ---- Flatten ---------------------------------------------------------------------------- */

struct axis_state {
    int64_t axis;
    int has_axis;
};

static int flatten_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct axis_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->axis = mq_attr_int(node, "axis", 1);
    return MQ_OK;
}

static int flatten_common(const struct mq_kernel_node *node,
                          const struct mq_tensor *const *inputs, int n_inputs,
                          struct mq_tensor *outputs, int view, struct mq_error *err)
{
    const struct axis_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int64_t axis = st->axis < 0 ? st->axis + x->rank : st->axis;
    if (axis < 0 || axis > x->rank)
        return ops_fail(node, err, "axis %lld is outside [-%d, %d] for input of rank %d",
                        (long long)st->axis, x->rank, x->rank, x->rank);
    int64_t dims[2] = {ops_product(x->dims, 0, (int)axis),
                       ops_product(x->dims, (int)axis, x->rank)};
    return reshaped(node, x, 2, dims, &outputs[0], view, err);
}

VIEW_RUN_PAIR(flatten)

/* ---- Squeeze / Unsqueeze ---------------------------------------------------------------- */

struct axes_state {
    int n_axes;                   /* -1: attribute absent */
    int64_t axes[MQ_MAX_RANK];
};

/* Before opset 13 the axes are an attribute; from 13 an input, read at run time. */
static int axes_attr_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct axes_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->n_axes = -1;
    if (node->opset < 13 && ops_attr_ints(node, "axes", st->axes, MQ_MAX_RANK, &st->n_axes, err))
        return MQ_ERR;
    if (node->opset < 13 && st->n_axes < 0 && strcmp(node->op_type, "Unsqueeze") == 0)
        return ops_fail(node, err, "attribute 'axes' is required before opset 13");
    return MQ_OK;
}

/* The axes list from the state or from input 1; *n = -1 when none is given. */
static int get_axes(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                    int n_inputs, int64_t *axes, int *n, struct mq_error *err)
{
    const struct axes_state *st = node->state;
    if (node->opset < 13) {
        *n = st->n_axes;
        if (*n > 0)
            memcpy(axes, st->axes, sizeof st->axes);
        return MQ_OK;
    }
    const struct mq_tensor *t = ops_input(inputs, n_inputs, 1);
    if (!t) {
        *n = -1;
        return MQ_OK;
    }
    return ops_read_ints(node, t, 1, axes, MQ_MAX_RANK, n, err);
}

static int squeeze_common(const struct mq_kernel_node *node,
                          const struct mq_tensor *const *inputs, int n_inputs,
                          struct mq_tensor *outputs, int view, struct mq_error *err)
{
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int64_t axes[MQ_MAX_RANK];
    int n;
    if (get_axes(node, inputs, n_inputs, axes, &n, err))
        return MQ_ERR;
    int drop[MQ_MAX_RANK] = {0};
    if (n < 0) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = x->dims[i] == 1;
    } else {
        int norm[MQ_MAX_RANK];
        if (ops_normalize_axes(node, axes, n, x->rank, norm, err))
            return MQ_ERR;
        for (int i = 0; i < n; i++) {
            if (x->dims[norm[i]] != 1) {
                char s[256];
                return ops_fail(node, err, "cannot squeeze axis %lld of input %s: its size is "
                                "%lld, not 1", (long long)axes[i], ops_shape(x, s, sizeof s),
                                (long long)x->dims[norm[i]]);
            }
            drop[norm[i]] = 1;
        }
    }
    int64_t dims[MQ_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            dims[r++] = x->dims[i];
    return reshaped(node, x, r, dims, &outputs[0], view, err);
}

VIEW_RUN_PAIR(squeeze)

static int unsqueeze_common(const struct mq_kernel_node *node,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_tensor *outputs, int view, struct mq_error *err)
{
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int64_t axes[MQ_MAX_RANK];
    int n;
    if (get_axes(node, inputs, n_inputs, axes, &n, err))
        return MQ_ERR;
    if (n < 0)
        return ops_fail(node, err, "input 'axes' is required");
    int out_rank = x->rank + n;
    if (out_rank > MQ_MAX_RANK)
        return ops_fail(node, err, "output rank %d is more than the %d supported", out_rank,
                        MQ_MAX_RANK);
    int norm[MQ_MAX_RANK], insert[MQ_MAX_RANK] = {0};
    if (ops_normalize_axes(node, axes, n, out_rank, norm, err))
        return MQ_ERR;
    for (int i = 0; i < n; i++)
        insert[norm[i]] = 1;
    int64_t dims[MQ_MAX_RANK];
    for (int i = 0, k = 0; i < out_rank; i++)
        dims[i] = insert[i] ? 1 : x->dims[k++];
    return reshaped(node, x, out_rank, dims, &outputs[0], view, err);
}

VIEW_RUN_PAIR(unsqueeze)

/* ---- the table -------------------------------------------------------------------------- */

/*
 * Reshape's shape became an input at 5 and got allowzero at 14; the axes of
 * Squeeze/Unsqueeze became inputs at 13.
 */
const struct mq_kernel mq_kernels_reshape_views[] = {
    {"", "Reshape", 1, 4, reshape_prepare, reshape_run, free},
    {"", "Reshape", 5, 13, reshape_prepare, reshape_run, free},
    {"", "Reshape", 14, 0, reshape_prepare, reshape_run, free},
    {"", "Flatten", 1, 0, flatten_prepare, flatten_run, free},
    {"", "Squeeze", 1, 12, axes_attr_prepare, squeeze_run, free},
    {"", "Squeeze", 13, 0, axes_attr_prepare, squeeze_run, free},
    {"", "Unsqueeze", 1, 12, axes_attr_prepare, unsqueeze_run, free},
    {"", "Unsqueeze", 13, 0, axes_attr_prepare, unsqueeze_run, free},
    {0},
};

/* The same ops returning views of their input (interp/ops/fused.h). */
const struct mq_kernel mq_kernel_reshape_view = {"", "Reshape", 1, 0, reshape_prepare,
                                                 reshape_view_run, free};
const struct mq_kernel mq_kernel_flatten_view = {"", "Flatten", 1, 0, flatten_prepare,
                                                 flatten_view_run, free};
const struct mq_kernel mq_kernel_squeeze_view = {"", "Squeeze", 1, 0, axes_attr_prepare,
                                                 squeeze_view_run, free};
const struct mq_kernel mq_kernel_unsqueeze_view = {"", "Unsqueeze", 1, 0, axes_attr_prepare,
                                                   unsqueeze_view_run, free};
