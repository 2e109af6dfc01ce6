/*
 * Ops that pick parts of a tensor or join parts into one: Slice, Split,
 * Concat, Compress and NonZero.  They move bytes, whatever the element type.
 */
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/element_copy.h"
#include "interp/ops/shape_util.h"

struct axis_state {
    int64_t axis;
    int has_axis;
};

/* ---- Concat ----------------------------------------------------------------------------- */

static int concat_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct axis_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->has_axis = mq_attr_has(node, "axis");
    /* Concat-1 defaulted the axis to 1; from opset 4 it is required. */
    if (!st->has_axis && node->opset >= 4)
        return ops_fail(node, err, "attribute 'axis' is required");
    st->axis = mq_attr_int(node, "axis", 1);
    return MQ_OK;
}

static int concat_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct axis_state *st = node->state;
    if (n_inputs < 1)
        return ops_fail(node, err, "needs at least one input");
    const struct mq_tensor *first;
    if (ops_require(node, inputs, n_inputs, 0, &first, err))
        return MQ_ERR;
    if (first->rank == 0)
        return ops_fail(node, err, "cannot concatenate scalars");
    int axis;
    if (mq_axis_normalize(node, st->axis, first->rank, &axis, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < n_inputs; i++) {
        const struct mq_tensor *t;
        if (ops_require(node, inputs, n_inputs, i, &t, err))
            return MQ_ERR;
        char a[256], b[256];
        if (t->dtype != first->dtype)
            return ops_fail(node, err, "input '%s' has type %s but input '%s' has %s",
                            ops_input_name(node, i), mq_dtype_name(t->dtype),
                            ops_input_name(node, 0), mq_dtype_name(first->dtype));
        int same = t->rank == first->rank;
        for (int k = 0; same && k < t->rank; k++)
            if (k != axis && t->dims[k] != first->dims[k])
                same = 0;
        if (!same)
            return ops_fail(node, err, "input '%s' has shape %s, which does not match %s of "
                            "input '%s' outside axis %d", ops_input_name(node, i),
                            ops_shape(t, a, sizeof a), ops_shape(first, b, sizeof b),
                            ops_input_name(node, 0), axis);
        dims[axis] += t->dims[axis];
    }
    struct mq_tensor *out = &outputs[0];
    if (ops_alloc_uninit(node, out, first->dtype, first->rank, dims, err))
        return MQ_ERR;
    if (out->count == 0)
        return MQ_OK;
    size_t es = mq_dtype_size(first->dtype);
    int64_t outer = ops_product(dims, 0, axis);
    int64_t inner = ops_product(dims, axis + 1, first->rank) * (int64_t)es;
    char *d = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < n_inputs; i++) {
            int64_t bytes = inputs[i]->dims[axis] * inner;
            if (bytes == 0)
                continue;
            memcpy(d, (const char *)inputs[i]->data + o * bytes, (size_t)bytes);
            d += bytes;
        }
    return MQ_OK;
}

/* ---- Split ------------------------------------------------------------------------------ */

struct split_state {
    int64_t axis;
    int n_split;                  /* -1: no split attribute */
    int64_t *split;
    int64_t num_outputs;          /* 0: attribute absent */
};

static void split_destroy(void *p)
{
    struct split_state *st = p;
    if (st)
        free(st->split);
    free(st);
}

static int split_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct split_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->axis = mq_attr_int(node, "axis", 0);
    st->n_split = -1;
    if (node->opset < 13) {
        const int64_t *v;
        int64_t n = mq_attr_ints(node, "split", &v);
        if (n >= 0) {
            if (n != node->n_outputs)
                return ops_fail(node, err, "attribute 'split' has %lld values for %d outputs",
                                (long long)n, node->n_outputs);
            st->split = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
            if (!st->split)
                return ops_fail(node, err, "out of memory");
            memcpy(st->split, v, sizeof(int64_t) * (size_t)n);
            st->n_split = (int)n;
        }
    }
    if (node->opset >= 18 && mq_attr_has(node, "num_outputs")) {
        st->num_outputs = mq_attr_int(node, "num_outputs", 0);
        if (st->num_outputs != node->n_outputs)
            return ops_fail(node, err, "attribute num_outputs=%lld but the node has %d outputs",
                            (long long)st->num_outputs, node->n_outputs);
    }
    if (node->n_outputs < 1)
        return ops_fail(node, err, "needs at least one output");
    return MQ_OK;
}

static int split_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct split_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    if (x->rank == 0)
        return ops_fail(node, err, "cannot split a scalar");
    int axis;
    if (mq_axis_normalize(node, st->axis, x->rank, &axis, err))
        return MQ_ERR;
    int64_t dim = x->dims[axis];
    int64_t *sizes = calloc((size_t)n_outputs, sizeof *sizes);
    if (!sizes)
        return ops_fail(node, err, "out of memory");
    int rc = MQ_OK;
    /* Split-1 and Split-13+ take the sizes as an optional input. */
    const struct mq_tensor *split_in =
        (node->opset == 1 || node->opset >= 13) ? ops_input(inputs, n_inputs, 1) : NULL;
    if (split_in || st->n_split >= 0) {
        int64_t total = 0;
        if (split_in) {
            if (!ops_is_integer_dtype(split_in->dtype) || split_in->rank > 1 ||
                split_in->count != n_outputs) {
                rc = ops_fail(node, err, "input 'split' must be a 1-D integer tensor with %d "
                              "values (one per output), got %lld", n_outputs,
                              (long long)split_in->count);
                goto done;
            }
            for (int i = 0; i < n_outputs; i++)
                sizes[i] = mq_tensor_get_int64(split_in, i);
        } else {
            memcpy(sizes, st->split, sizeof(int64_t) * (size_t)n_outputs);
        }
        for (int i = 0; i < n_outputs; i++) {
            if (sizes[i] < 0 || sizes[i] > dim) {
                rc = ops_fail(node, err, "split size %lld for output %d is outside [0, %lld]",
                              (long long)sizes[i], i, (long long)dim);
                goto done;
            }
            total += sizes[i];
        }
        if (total != dim) {
            rc = ops_fail(node, err, "split sizes add up to %lld but axis %d has size %lld",
                          (long long)total, axis, (long long)dim);
            goto done;
        }
    } else if (st->num_outputs > 0) {
        /* Split-18 num_outputs: equal chunks of ceil(dim / n), the last one smaller. */
        int64_t chunk = (dim + n_outputs - 1) / n_outputs, left = dim;
        for (int i = 0; i < n_outputs; i++) {
            sizes[i] = left < chunk ? left : chunk;
            left -= sizes[i];
        }
    } else {
        if (dim % n_outputs != 0) {
            rc = ops_fail(node, err, "axis %d of size %lld cannot be split into %d equal parts",
                          axis, (long long)dim, n_outputs);
            goto done;
        }
        for (int i = 0; i < n_outputs; i++)
            sizes[i] = dim / n_outputs;
    }

    size_t es = mq_dtype_size(x->dtype);
    int64_t outer = ops_product(x->dims, 0, axis);
    int64_t inner = ops_product(x->dims, axis + 1, x->rank) * (int64_t)es;
    int64_t offset = 0;
    for (int i = 0; i < n_outputs; i++) {
        int64_t dims[MQ_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = sizes[i];
        if ((rc = ops_alloc_uninit(node, &outputs[i], x->dtype, x->rank, dims, err)))
            goto done;
        int64_t bytes = sizes[i] * inner;
        char *d = outputs[i].data;
        if (bytes > 0)
            for (int64_t o = 0; o < outer; o++)
                memcpy(d + o * bytes, (const char *)x->data + o * dim * inner + offset,
                       (size_t)bytes);
        offset += bytes;
    }
done:
    free(sizes);
    return rc;
}

/* ---- Slice ------------------------------------------------------------------------------ */

struct slice_state {
    int n;                        /* Slice-1..9 attributes */
    int n_axes;
    int64_t starts[MQ_MAX_RANK], ends[MQ_MAX_RANK], axes[MQ_MAX_RANK];
};

static int slice_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct slice_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (node->opset >= 10)
        return MQ_OK;
    int n_ends;
    if (ops_attr_ints(node, "starts", st->starts, MQ_MAX_RANK, &st->n, err) ||
        ops_attr_ints(node, "ends", st->ends, MQ_MAX_RANK, &n_ends, err) ||
        ops_attr_ints(node, "axes", st->axes, MQ_MAX_RANK, &st->n_axes, err))
        return MQ_ERR;
    if (st->n < 0 || n_ends < 0)
        return ops_fail(node, err, "attributes 'starts' and 'ends' are required before opset 10");
    if (n_ends != st->n || (st->n_axes >= 0 && st->n_axes != st->n))
        return ops_fail(node, err, "starts, ends and axes must have the same length (%d, %d, %d)",
                        st->n, n_ends, st->n_axes);
    return MQ_OK;
}

/* First index and length of a slice along one axis, clamped as ONNX and numpy clamp. */
static void slice_range(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
                        int64_t *len)
{
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *first = start;
        *len = end > start ? 1 + (end - start - 1) / step : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        uint64_t back = (uint64_t)(-(step + 1)) + 1;
        *first = start;
        *len = start > end ? 1 + (int64_t)((uint64_t)(start - end - 1) / back) : 0;
    }
}

static int slice_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct slice_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int64_t starts[MQ_MAX_RANK], ends[MQ_MAX_RANK], axes[MQ_MAX_RANK], steps[MQ_MAX_RANK];
    int n, n_ends, n_axes = -1, n_steps = -1;
    if (node->opset < 10) {
        n = n_ends = st->n;
        n_axes = st->n_axes;
        memcpy(starts, st->starts, sizeof starts);
        memcpy(ends, st->ends, sizeof ends);
        memcpy(axes, st->axes, sizeof axes);
    } else {
        const struct mq_tensor *ts = ops_input(inputs, n_inputs, 1);
        const struct mq_tensor *te = ops_input(inputs, n_inputs, 2);
        const struct mq_tensor *ta = ops_input(inputs, n_inputs, 3);
        const struct mq_tensor *tp = ops_input(inputs, n_inputs, 4);
        if (!ts || !te)
            return ops_fail(node, err, "inputs 'starts' and 'ends' are required");
        if (ops_read_ints(node, ts, 1, starts, MQ_MAX_RANK, &n, err) ||
            ops_read_ints(node, te, 2, ends, MQ_MAX_RANK, &n_ends, err) ||
            (ta && ops_read_ints(node, ta, 3, axes, MQ_MAX_RANK, &n_axes, err)) ||
            (tp && ops_read_ints(node, tp, 4, steps, MQ_MAX_RANK, &n_steps, err)))
            return MQ_ERR;
    }
    if (n_ends != n || (n_axes >= 0 && n_axes != n) || (n_steps >= 0 && n_steps != n))
        return ops_fail(node, err, "starts, ends, axes and steps must have the same length "
                        "(%d, %d, %d, %d)", n, n_ends, n_axes, n_steps);
    if (n_axes < 0)
        for (int i = 0; i < n; i++)
            axes[i] = i;
    if (n_steps < 0)
        for (int i = 0; i < n; i++)
            steps[i] = 1;
    int norm[MQ_MAX_RANK];
    if (ops_normalize_axes(node, axes, n, x->rank, norm, err))
        return MQ_ERR;

    int64_t in_strides[MQ_MAX_RANK] = {0}, dims[MQ_MAX_RANK], strides[MQ_MAX_RANK];
    ops_strides(x->rank, x->dims, in_strides);
    memcpy(dims, x->dims, sizeof dims);
    memcpy(strides, in_strides, sizeof strides);
    int64_t base = 0;
    for (int i = 0; i < n; i++) {
        int a = norm[i];
        if (steps[i] == 0)
            return ops_fail(node, err, "step for axis %d is 0", a);
        int64_t first, len;
        slice_range(x->dims[a], starts[i], ends[i], steps[i], &first, &len);
        dims[a] = len;
        /* With one element the step is never taken (and may be huge). */
        strides[a] = len > 1 ? in_strides[a] * steps[i] : in_strides[a];
        if (len > 0)
            base += first * in_strides[a];
    }
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, x->rank, dims, err))
        return MQ_ERR;
    if (outputs[0].count > 0) {
        size_t es = mq_dtype_size(x->dtype);
        mq_element_copy_strided(outputs[0].data, (const char *)x->data + base * (int64_t)es, es,
                                x->rank, dims, strides);
    }
    return MQ_OK;
}

/* ---- NonZero / Compress ----------------------------------------------------------------- */

#define NONZERO_FLAGS(T, TEST)                                                                     \
    {                                                                                              \
        const T *s = (const T *)x->data;                                                           \
        for (int64_t i = 0; i < x->count; i++)                                                     \
            flags[i] = (TEST);                                                                     \
    }                                                                                              \
    break;

/* flags[i] = element i is non-zero (NaN counts as non-zero, -0.0 does not). */
static int nonzero_flags(const struct mq_kernel_node *node, const struct mq_tensor *x,
                         uint8_t *flags, struct mq_error *err)
{
    switch (x->dtype) {
    case MQ_DTYPE_FLOAT: NONZERO_FLAGS(float, s[i] != 0)
    case MQ_DTYPE_DOUBLE: NONZERO_FLAGS(double, s[i] != 0)
    case MQ_DTYPE_FLOAT16: case MQ_DTYPE_BFLOAT16: NONZERO_FLAGS(uint16_t, (s[i] & 0x7fff) != 0)
    case MQ_DTYPE_BOOL: case MQ_DTYPE_INT8: case MQ_DTYPE_UINT8: NONZERO_FLAGS(uint8_t, s[i] != 0)
    case MQ_DTYPE_INT16: case MQ_DTYPE_UINT16: NONZERO_FLAGS(uint16_t, s[i] != 0)
    case MQ_DTYPE_INT32: case MQ_DTYPE_UINT32: NONZERO_FLAGS(uint32_t, s[i] != 0)
    case MQ_DTYPE_INT64: case MQ_DTYPE_UINT64: NONZERO_FLAGS(uint64_t, s[i] != 0)
    default:
        return ops_fail(node, err, "input type %s is not supported", mq_dtype_name(x->dtype));
    }
    return MQ_OK;
}

static int nonzero_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                       const struct mq_tensor *const *inputs, int n_inputs,
                       struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    uint8_t *flags = ops_scratch(node, x->count, 1, err);
    if (!flags)
        return MQ_ERR;
    if (nonzero_flags(node, x, flags, err)) {
        ops_scratch_free(flags);
        return MQ_ERR;
    }
    int64_t nnz = 0;
    for (int64_t i = 0; i < x->count; i++)
        nnz += flags[i];
    /* A scalar is treated as a 1-element vector, as numpy and onnxruntime do. */
    int r = x->rank ? x->rank : 1;
    const int64_t one = 1;
    const int64_t *xdims = x->rank ? x->dims : &one;
    int64_t dims[2] = {r, nnz};
    if (ops_alloc(node, &outputs[0], MQ_DTYPE_INT64, 2, dims, err)) {
        ops_scratch_free(flags);
        return MQ_ERR;
    }
    int64_t *d = outputs[0].data;
    int64_t idx[MQ_MAX_RANK] = {0}, col = 0;
    for (int64_t i = 0; i < x->count; i++) {
        if (flags[i]) {
            for (int a = 0; a < r; a++)
                d[a * nnz + col] = idx[a];
            col++;
        }
        for (int a = r - 1; a >= 0; a--) {
            if (++idx[a] < xdims[a])
                break;
            idx[a] = 0;
        }
    }
    ops_scratch_free(flags);
    return MQ_OK;
}

static int compress_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct axis_state *st = ops_alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->has_axis = mq_attr_has(node, "axis");
    st->axis = mq_attr_int(node, "axis", 0);
    return MQ_OK;
}

static int compress_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct axis_state *st = node->state;
    const struct mq_tensor *x, *cond;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &cond, err))
        return MQ_ERR;
    if (cond->rank != 1)
        return ops_fail(node, err, "condition must be 1-D, got rank %d", cond->rank);
    int axis = 0;
    int64_t dim = x->count;
    if (st->has_axis) {
        if (x->rank == 0)
            return ops_fail(node, err, "axis is given but the input is a scalar");
        if (mq_axis_normalize(node, st->axis, x->rank, &axis, err))
            return MQ_ERR;
        dim = x->dims[axis];
    }
    int64_t kept = 0;
    for (int64_t i = 0; i < cond->count; i++) {
        if (mq_tensor_get_double(cond, i) == 0)
            continue;
        if (i >= dim)
            return ops_fail(node, err, "condition selects index %lld but the axis has size %lld",
                            (long long)i, (long long)dim);
        kept++;
    }
    size_t es = mq_dtype_size(x->dtype);
    int64_t dims[MQ_MAX_RANK], outer = 1, inner = (int64_t)es;
    int rank = 1;
    if (st->has_axis) {
        rank = x->rank;
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = kept;
        outer = ops_product(x->dims, 0, axis);
        inner *= ops_product(x->dims, axis + 1, x->rank);
    } else {
        dims[0] = kept;
    }
    if (ops_alloc(node, &outputs[0], x->dtype, rank, dims, err))
        return MQ_ERR;
    char *d = outputs[0].data;
    int64_t n = cond->count < dim ? cond->count : dim;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < n; i++) {
            if (mq_tensor_get_double(cond, i) == 0)
                continue;
            memcpy(d, (const char *)x->data + (o * dim + i) * inner, (size_t)inner);
            d += inner;
        }
    return MQ_OK;
}

/* ---- the table -------------------------------------------------------------------------- */

/*
 * Concat's axis was optional before 4; Split's sizes became an input at 13
 * and it got num_outputs at 18; Slice's attributes became inputs at 10.
 */
const struct mq_kernel mq_kernels_selection[] = {
    {"", "Concat", 1, 3, concat_prepare, concat_run, free},
    {"", "Concat", 4, 0, concat_prepare, concat_run, free},
    {"", "Split", 1, 1, split_prepare, split_run, split_destroy},
    {"", "Split", 2, 12, split_prepare, split_run, split_destroy},
    {"", "Split", 13, 17, split_prepare, split_run, split_destroy},
    {"", "Split", 18, 0, split_prepare, split_run, split_destroy},
    {"", "Slice", 1, 9, slice_prepare, slice_run, free},
    {"", "Slice", 10, 0, slice_prepare, slice_run, free},
    {"", "Compress", 9, 0, compress_prepare, compress_run, free},
    {"", "NonZero", 9, 0, NULL, nonzero_run, NULL},
    {0},
};
