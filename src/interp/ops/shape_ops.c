/*
 * Data movement and shape computation: Reshape, Flatten, Squeeze, Unsqueeze,
 * Transpose, Concat, Split, Slice, Expand, Tile, Pad, DepthToSpace,
 * SpaceToDepth, Shape, Size, ConstantOfShape, Range, Identity, Dropout,
 * Constant, EyeLike, Trilu, NonZero, Compress, OneHot, ReverseSequence.
 *
 * None of these does arithmetic on element values, so they work on bytes:
 * one code path per element size (1, 2, 4, 8), whatever the element type.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/cast.h"
#include "interp/ops/fused.h"
#include "interp/ops/shape_util.h"
#include "model/tensor_proto.h"

/* ---- strided copies --------------------------------------------------------------------- */

/* Twice the rank: Tile views its output as [r0, d0, r1, d1, ...]. */
#define VIEW_MAX_RANK (2 * MQ_MAX_RANK)

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

#define ROW_GATHER(T)                                                                              \
    {                                                                                              \
        T *d = (T *)dst;                                                                           \
        const T *s = (const T *)src;                                                               \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[i] = s[i * stride];                                                                  \
    }                                                                                              \
    break;

/* dst[i] = src[i * stride] for i < n; stride 0 repeats one element. */
static void copy_row(void *dst, const void *src, int64_t n, int64_t stride, size_t es)
{
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1: ROW_GATHER(uint8_t)
    case 2: ROW_GATHER(uint16_t)
    case 4: ROW_GATHER(uint32_t)
    case 8: ROW_GATHER(uint64_t)
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + i * (int64_t)es, (const char *)src + i * stride * (int64_t)es,
                   es);
    }
}

enum { TILE = 32 };

#define BLOCK_TRANSPOSE(T)                                                                         \
    {                                                                                              \
        T *d = (T *)dst;                                                                           \
        const T *s = (const T *)src;                                                               \
        for (int64_t jb = 0; jb < nj; jb += TILE) {                                                \
            int64_t je = jb + TILE < nj ? jb + TILE : nj;                                          \
            for (int64_t lb = 0; lb < nl; lb += TILE) {                                            \
                int64_t le = lb + TILE < nl ? lb + TILE : nl;                                      \
                for (int64_t l = lb; l < le; l++)                                                  \
                    for (int64_t j = jb; j < je; j++)                                              \
                        d[j * dst_j + l] = s[j + l * src_l];                                       \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    break;

/*
 * A 2-D transpose in cache-sized tiles: the source is contiguous along j
 * (stride 1) and strided along l, the destination the other way round.
 */
static void copy_block(void *dst, const void *src, int64_t nj, int64_t nl, int64_t dst_j,
                       int64_t src_l, size_t es)
{
    switch (es) {
    case 1: BLOCK_TRANSPOSE(uint8_t)
    case 2: BLOCK_TRANSPOSE(uint16_t)
    case 4: BLOCK_TRANSPOSE(uint32_t)
    case 8: BLOCK_TRANSPOSE(uint64_t)
    default:
        for (int64_t l = 0; l < nl; l++)
            for (int64_t j = 0; j < nj; j++)
                memcpy((char *)dst + (j * dst_j + l) * (int64_t)es,
                       (const char *)src + (j + l * src_l) * (int64_t)es, es);
    }
}

/*
 * Fills dense dst (row-major over dims) from a strided view of src: the
 * element at index (i0, i1, ...) is src[sum(i_k * strides[k])] (in elements,
 * strides may be 0 or negative).  Axes of size 1 are dropped and adjacent
 * axes that are contiguous in src are merged first, so reshapes, slices of
 * whole rows and broadcasts collapse to a few long memcpy runs.
 */
static void copy_strided(void *dst, const void *src, size_t es, int rank, const int64_t *dims_in,
                         const int64_t *strides_in)
{
    int64_t dims[VIEW_MAX_RANK], strides[VIEW_MAX_RANK];
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (dims_in[i] == 0)
            return;
        if (dims_in[i] == 1)
            continue;
        if (r > 0 && strides[r - 1] == strides_in[i] * dims_in[i]) {
            dims[r - 1] *= dims_in[i];
            strides[r - 1] = strides_in[i];
            continue;
        }
        dims[r] = dims_in[i];
        strides[r] = strides_in[i];
        r++;
    }
    if (r == 0) {
        memcpy(dst, src, es);
        return;
    }
    int last = r - 1;
    int64_t dst_strides[VIEW_MAX_RANK];
    ops_strides(r, dims, dst_strides);
    const char *s = (const char *)src;
    char *d = (char *)dst;

    /* A transposition: some outer axis is the contiguous one in the source. */
    int j = -1;
    if (strides[last] != 1 && strides[last] != 0)
        for (int k = last - 1; k >= 0; k--)
            if (strides[k] == 1) {
                j = k;
                break;
            }
    if (j >= 0 && dims[j] >= 4) {
        int outer[VIEW_MAX_RANK], n_outer = 0;
        for (int k = 0; k < last; k++)
            if (k != j)
                outer[n_outer++] = k;
        int64_t idx[VIEW_MAX_RANK] = {0};
        int64_t src_off = 0, dst_off = 0;
        for (;;) {
            copy_block(d + dst_off * (int64_t)es, s + src_off * (int64_t)es, dims[j], dims[last],
                       dst_strides[j], strides[last], es);
            int k = n_outer - 1;
            for (; k >= 0; k--) {
                int a = outer[k];
                idx[a]++;
                src_off += strides[a];
                dst_off += dst_strides[a];
                if (idx[a] < dims[a])
                    break;
                src_off -= strides[a] * dims[a];
                dst_off -= dst_strides[a] * dims[a];
                idx[a] = 0;
            }
            if (k < 0)
                return;
        }
    }

    int64_t n = dims[last];
    int64_t idx[VIEW_MAX_RANK] = {0};
    int64_t src_off = 0;
    for (;;) {
        copy_row(d, s + src_off * (int64_t)es, n, strides[last], es);
        d += n * (int64_t)es;
        int k = last - 1;
        for (; k >= 0; k--) {
            idx[k]++;
            src_off += strides[k];
            if (idx[k] < dims[k])
                break;
            src_off -= strides[k] * dims[k];
            idx[k] = 0;
        }
        if (k < 0)
            return;
    }
}

/* dst = src with its axes permuted: output axis k is input axis perm[k]. */
static void transpose_data(void *dst, const void *src, size_t es, int rank, const int64_t *in_dims,
                           const int *perm)
{
    int64_t in_strides[VIEW_MAX_RANK], dims[VIEW_MAX_RANK], strides[VIEW_MAX_RANK];
    ops_strides(rank, in_dims, in_strides);
    for (int k = 0; k < rank; k++) {
        dims[k] = in_dims[perm[k]];
        strides[k] = in_strides[perm[k]];
    }
    copy_strided(dst, src, es, rank, dims, strides);
}

#define FILL_PATTERN(T)                                                                            \
    {                                                                                              \
        T v;                                                                                       \
        memcpy(&v, value, sizeof v);                                                               \
        T *d = (T *)dst;                                                                           \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[i] = v;                                                                              \
    }                                                                                              \
    break;

/* Writes n copies of the es-byte element `value`. */
static void fill_elements(void *dst, const void *value, int64_t n, size_t es)
{
    switch (es) {
    case 1: memset(dst, *(const uint8_t *)value, (size_t)n); break;
    case 2: FILL_PATTERN(uint16_t)
    case 4: FILL_PATTERN(uint32_t)
    case 8: FILL_PATTERN(uint64_t)
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + i * (int64_t)es, value, es);
    }
}

/* The element 1 (or 0, ...) in a tensor's type, as bytes. */
static int scalar_bytes(const struct mq_kernel_node *node, int dtype, double v, void *out,
                        struct mq_error *err)
{
    if (mq_cast_elements(out, dtype, &v, MQ_DTYPE_DOUBLE, 1))
        return ops_fail(node, err, "element type %s is not supported", mq_dtype_name(dtype));
    return MQ_OK;
}

static int64_t product(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

static int copy_reshaped(const struct mq_kernel_node *node, const struct mq_tensor *x, int rank,
                         const int64_t *dims, struct mq_tensor *out, struct mq_error *err);

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
    return copy_reshaped(node, x, rank, dims, out, err);
}

/* Copies x into a fresh output of the given shape (same element count). */
static int copy_reshaped(const struct mq_kernel_node *node, const struct mq_tensor *x, int rank,
                         const int64_t *dims, struct mq_tensor *out, struct mq_error *err)
{
    if (ops_alloc_uninit(node, out, x->dtype, rank, dims, err))
        return MQ_ERR;
    if (x->count > 0)
        memcpy(out->data, x->data, (size_t)x->count * mq_dtype_size(x->dtype));
    return MQ_OK;
}

static void *alloc_state(const struct mq_kernel_node *node, size_t size, struct mq_error *err)
{
    void *st = calloc(1, size);
    if (!st)
        ops_fail(node, err, "out of memory");
    return st;
}

/* Copies an INTS attribute (at most max values); *n = -1 when absent. */
static int attr_ints(const struct mq_kernel_node *node, const char *name, int64_t *out, int max,
                     int *n, struct mq_error *err)
{
    const int64_t *v;
    int64_t count = mq_attr_ints(node, name, &v);
    if (count < 0) {
        *n = -1;
        return MQ_OK;
    }
    if (count > max)
        return ops_fail(node, err, "attribute '%s' has %lld values, at most %d are allowed", name,
                        (long long)count, max);
    for (int64_t i = 0; i < count; i++)
        out[i] = v[i];
    *n = (int)count;
    return MQ_OK;
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
    struct reshape_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (node->opset < 5) {
        st->from_attribute = 1;
        if (attr_ints(node, "shape", st->shape, MQ_MAX_RANK, &st->n_shape, err))
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
    struct axis_state *st = alloc_state(node, sizeof *st, err);
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
    int64_t dims[2] = {product(x->dims, 0, (int)axis), product(x->dims, (int)axis, x->rank)};
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
    struct axes_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->n_axes = -1;
    if (node->opset < 13 && attr_ints(node, "axes", st->axes, MQ_MAX_RANK, &st->n_axes, err))
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

/* ---- Transpose -------------------------------------------------------------------------- */

static int transpose_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct axes_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    return attr_ints(node, "perm", st->axes, MQ_MAX_RANK, &st->n_axes, err);
}

static int transpose_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct axes_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int perm[MQ_MAX_RANK];
    if (st->n_axes < 0) {
        for (int i = 0; i < x->rank; i++)
            perm[i] = x->rank - 1 - i;
    } else {
        if (st->n_axes != x->rank)
            return ops_fail(node, err, "perm has %d entries but the input has rank %d",
                            st->n_axes, x->rank);
        int seen[MQ_MAX_RANK] = {0};
        for (int i = 0; i < x->rank; i++) {
            int64_t p = st->axes[i];
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
        transpose_data(outputs[0].data, x->data, mq_dtype_size(x->dtype), x->rank, x->dims, perm);
    return MQ_OK;
}

/* ---- Concat ----------------------------------------------------------------------------- */

static int concat_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct axis_state *st = alloc_state(node, sizeof *st, err);
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
    int64_t outer = product(dims, 0, axis);
    int64_t inner = product(dims, axis + 1, first->rank) * (int64_t)es;
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
    struct split_state *st = alloc_state(node, sizeof *st, err);
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
    int64_t outer = product(x->dims, 0, axis);
    int64_t inner = product(x->dims, axis + 1, x->rank) * (int64_t)es;
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
    struct slice_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (node->opset >= 10)
        return MQ_OK;
    int n_ends;
    if (attr_ints(node, "starts", st->starts, MQ_MAX_RANK, &st->n, err) ||
        attr_ints(node, "ends", st->ends, MQ_MAX_RANK, &n_ends, err) ||
        attr_ints(node, "axes", st->axes, MQ_MAX_RANK, &st->n_axes, err))
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
        copy_strided(outputs[0].data, (const char *)x->data + base * (int64_t)es, es, x->rank,
                     dims, strides);
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
        copy_strided(outputs[0].data, x->data, mq_dtype_size(x->dtype), rank, dims, strides);
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
    int64_t vdims[VIEW_MAX_RANK], vstrides[VIEW_MAX_RANK];
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
        copy_strided(outputs[0].data, x->data, mq_dtype_size(x->dtype), 2 * x->rank, vdims,
                     vstrides);
    return MQ_OK;
}

/* ---- Pad -------------------------------------------------------------------------------- */

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

struct pad_state {
    enum pad_mode mode;
    int n_pads;                   /* Pad-1..10 attribute */
    int64_t pads[2 * MQ_MAX_RANK];
    float value;
};

static int pad_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct pad_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    char buf[32];
    const char *mode = mq_attr_string(node, "mode", "constant", buf, sizeof buf);
    if (strcmp(mode, "constant") == 0)
        st->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        st->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        st->mode = PAD_EDGE;
    else if (strcmp(mode, "wrap") == 0)
        st->mode = PAD_WRAP;
    else
        return ops_fail(node, err, "mode '%s' is not one of constant, reflect, edge, wrap", mode);
    if (node->opset < 11) {
        const char *name = node->opset < 2 ? "paddings" : "pads";
        if (attr_ints(node, name, st->pads, 2 * MQ_MAX_RANK, &st->n_pads, err))
            return MQ_ERR;
        if (st->n_pads < 0)
            return ops_fail(node, err, "attribute '%s' is required before opset 11", name);
        st->value = mq_attr_float(node, "value", 0.0f);
    }
    return MQ_OK;
}

/* Source index for output position o along an axis of size dim padded by `before`; -1: constant. */
static int64_t pad_source(enum pad_mode mode, int64_t o, int64_t before, int64_t dim)
{
    int64_t i = o - before;
    if (i >= 0 && i < dim)
        return i;
    switch (mode) {
    case PAD_EDGE:
        return i < 0 ? 0 : dim - 1;
    case PAD_WRAP: {
        int64_t m = i % dim;
        return m < 0 ? m + dim : m;
    }
    case PAD_REFLECT: {
        if (dim == 1)
            return 0;
        /* numpy's reflect repeats the mirror image when the pad is wider than the axis. */
        int64_t period = 2 * (dim - 1);
        int64_t m = i % period;
        if (m < 0)
            m += period;
        return m < dim ? m : period - m;
    }
    default:
        return -1;
    }
}

static int pad_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct pad_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int r = x->rank;
    size_t es = mq_dtype_size(x->dtype);
    int64_t pads[2 * MQ_MAX_RANK];
    int n_pads;
    unsigned char value[16] = {0};
    int axes[MQ_MAX_RANK], n_axes = r;
    for (int i = 0; i < r; i++)
        axes[i] = i;
    if (node->opset < 11) {
        n_pads = st->n_pads;
        memcpy(pads, st->pads, sizeof pads);
        if (scalar_bytes(node, x->dtype, st->value, value, err))
            return MQ_ERR;
    } else {
        const struct mq_tensor *tp = ops_input(inputs, n_inputs, 1);
        const struct mq_tensor *tv = ops_input(inputs, n_inputs, 2);
        const struct mq_tensor *ta = node->opset >= 18 ? ops_input(inputs, n_inputs, 3) : NULL;
        if (!tp)
            return ops_fail(node, err, "input 'pads' is required");
        if (ops_read_ints(node, tp, 1, pads, 2 * MQ_MAX_RANK, &n_pads, err))
            return MQ_ERR;
        if (tv) {
            if (tv->count != 1)
                return ops_fail(node, err, "input 'constant_value' must hold one value, got %lld",
                                (long long)tv->count);
            if (mq_cast_elements(value, x->dtype, tv->data, tv->dtype, 1))
                return ops_fail(node, err, "input 'constant_value' has unsupported type %s",
                                mq_dtype_name(tv->dtype));
        }
        if (ta) {
            int64_t raw[MQ_MAX_RANK];
            if (ops_read_ints(node, ta, 3, raw, MQ_MAX_RANK, &n_axes, err) ||
                ops_normalize_axes(node, raw, n_axes, r, axes, err))
                return MQ_ERR;
        }
    }
    if (n_pads != 2 * n_axes)
        return ops_fail(node, err, "pads has %d values, expected %d (2 per padded axis)", n_pads,
                        2 * n_axes);
    int64_t before[MQ_MAX_RANK] = {0}, after[MQ_MAX_RANK] = {0}, dims[MQ_MAX_RANK];
    for (int i = 0; i < n_axes; i++) {
        before[axes[i]] = pads[i];
        after[axes[i]] = pads[i + n_axes];
    }
    int64_t total = 0;
    for (int a = 0; a < r; a++) {
        int64_t lim = INT64_MAX / 4;
        if (before[a] > lim || before[a] < -lim || after[a] > lim || after[a] < -lim)
            return ops_fail(node, err, "pads for axis %d are out of range", a);
        dims[a] = x->dims[a] + before[a] + after[a];
        if (dims[a] < 0)
            return ops_fail(node, err, "pads %lld and %lld make axis %d (size %lld) negative",
                            (long long)before[a], (long long)after[a], a,
                            (long long)x->dims[a]);
        if (dims[a] > 0 && x->dims[a] == 0 && st->mode != PAD_CONSTANT)
            return ops_fail(node, err, "cannot pad the empty axis %d in mode %s", a,
                            st->mode == PAD_EDGE ? "edge" : st->mode == PAD_WRAP ? "wrap"
                                                                              : "reflect");
        total += dims[a];
    }
    struct mq_tensor *out = &outputs[0];
    if (ops_alloc_uninit(node, out, x->dtype, r, dims, err))
        return MQ_ERR;
    if (out->count == 0)
        return MQ_OK;
    if (r == 0) {
        memcpy(out->data, x->data, es);
        return MQ_OK;
    }

    /* Per axis: output position -> source index (or -1 for the constant). */
    int64_t *maps = ops_scratch(node, total, sizeof(int64_t), err);
    if (!maps)
        return MQ_ERR;
    int64_t *map[MQ_MAX_RANK];
    int64_t at = 0;
    for (int a = 0; a < r; a++) {
        map[a] = maps + at;
        for (int64_t o = 0; o < dims[a]; o++)
            map[a][o] = pad_source(st->mode, o, before[a], x->dims[a]);
        at += dims[a];
    }
    int64_t in_strides[MQ_MAX_RANK];
    ops_strides(r, x->dims, in_strides);
    int last = r - 1;
    int64_t n = dims[last];
    /* The stretch of the last axis that copies straight through. */
    int64_t lo = before[last] > 0 ? before[last] : 0;
    int64_t hi = before[last] + x->dims[last] < n ? before[last] + x->dims[last] : n;
    if (hi < lo)
        hi = lo;
    const char *src = x->data;
    char *d = out->data;
    int64_t idx[MQ_MAX_RANK] = {0};
    for (;;) {
        int64_t off = 0;
        int constant_row = 0;
        for (int a = 0; a < last; a++) {
            int64_t m = map[a][idx[a]];
            if (m < 0)
                constant_row = 1;
            else
                off += m * in_strides[a];
        }
        if (constant_row) {
            fill_elements(d, value, n, es);
        } else {
            const char *row = src + off * (int64_t)es;
            for (int64_t o = 0; o < lo; o++) {
                int64_t m = map[last][o];
                memcpy(d + o * (int64_t)es, m < 0 ? (const char *)value : row + m * (int64_t)es,
                       es);
            }
            if (hi > lo)
                memcpy(d + lo * (int64_t)es, row + (lo - before[last]) * (int64_t)es,
                       (size_t)(hi - lo) * es);
            for (int64_t o = hi; o < n; o++) {
                int64_t m = map[last][o];
                memcpy(d + o * (int64_t)es, m < 0 ? (const char *)value : row + m * (int64_t)es,
                       es);
            }
        }
        d += n * (int64_t)es;
        int k = last - 1;
        for (; k >= 0; k--) {
            if (++idx[k] < dims[k])
                break;
            idx[k] = 0;
        }
        if (k < 0)
            break;
    }
    ops_scratch_free(maps);
    return MQ_OK;
}

/* ---- DepthToSpace / SpaceToDepth -------------------------------------------------------- */

struct block_state {
    int64_t blocksize;
    int crd;                      /* DepthToSpace mode CRD (else DCR) */
};

static int block_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct block_state *st = alloc_state(node, sizeof *st, err);
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

static int block_input(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                       int n_inputs, const struct mq_tensor **x, struct mq_error *err)
{
    if (ops_require(node, inputs, n_inputs, 0, x, err))
        return MQ_ERR;
    if ((*x)->rank != 4) {
        char s[256];
        return ops_fail(node, err, "input '%s' has shape %s, expected rank 4 (N, C, H, W)",
                        ops_input_name(node, 0), ops_shape(*x, s, sizeof s));
    }
    return MQ_OK;
}

static int depth_to_space_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct block_state *st = node->state;
    const struct mq_tensor *x;
    if (block_input(node, inputs, n_inputs, &x, err))
        return MQ_ERR;
    int64_t b = st->blocksize, N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
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
    transpose_data(outputs[0].data, x->data, mq_dtype_size(x->dtype), 6,
                   st->crd ? crd_dims : dcr_dims, st->crd ? crd_perm : dcr_perm);
    return MQ_OK;
}

static int space_to_depth_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct block_state *st = node->state;
    const struct mq_tensor *x;
    if (block_input(node, inputs, n_inputs, &x, err))
        return MQ_ERR;
    int64_t b = st->blocksize, N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
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
    transpose_data(outputs[0].data, x->data, mq_dtype_size(x->dtype), 6, view, perm);
    return MQ_OK;
}

/* ---- Shape / Size ----------------------------------------------------------------------- */

struct shape_state {
    int64_t start, end;
    int has_end;
};

static int shape_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct shape_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (node->opset >= 15) {
        st->start = mq_attr_int(node, "start", 0);
        st->has_end = mq_attr_has(node, "end");
        st->end = mq_attr_int(node, "end", 0);
    }
    return MQ_OK;
}

static int shape_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct shape_state *st = node->state;
    const struct mq_tensor *x = ops_input(inputs, n_inputs, 0);
    if (!x)
        return ops_fail(node, err, "required input 0 is missing");
    int64_t r = x->rank;
    int64_t start = st->start < 0 ? st->start + r : st->start;
    int64_t end = st->has_end ? (st->end < 0 ? st->end + r : st->end) : r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t n = end > start ? end - start : 0;
    if (ops_alloc(node, &outputs[0], MQ_DTYPE_INT64, 1, &n, err))
        return MQ_ERR;
    int64_t *d = outputs[0].data;
    for (int64_t i = 0; i < n; i++)
        d[i] = x->dims[start + i];
    return MQ_OK;
}

static int size_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x = ops_input(inputs, n_inputs, 0);
    if (!x)
        return ops_fail(node, err, "required input 0 is missing");
    if (ops_alloc(node, &outputs[0], MQ_DTYPE_INT64, 0, NULL, err))
        return MQ_ERR;
    *(int64_t *)outputs[0].data = x->count;
    return MQ_OK;
}

/* ---- Constant / ConstantOfShape --------------------------------------------------------- */

struct value_state {
    struct mq_tensor value;
};

static void value_destroy(void *p)
{
    struct value_state *st = p;
    if (st)
        mq_tensor_free(&st->value);
    free(st);
}

static int decode_tensor_attr(struct mq_kernel_node *node, const char *name, struct mq_tensor *out,
                              struct mq_error *err)
{
    const Onnx__TensorProto *t = mq_attr_tensor(node, name);
    if (!t)
        return ops_fail(node, err, "attribute '%s' holds no tensor", name);
    char what[256];
    snprintf(what, sizeof what, "node '%s' (%s) attribute '%s'", node->name, node->op_type,
             name);
    if (t->has_data_type && t->data_type == MQ_DTYPE_STRING)
        return ops_fail(node, err, "attribute '%s' is a string tensor, which is not supported",
                        name);
    return mq_tensor_from_proto(t, what, out, err);
}

static int constant_of_shape_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct value_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    if (!mq_attr_has(node, "value")) {
        int64_t one = 1;
        return ops_alloc(node, &st->value, MQ_DTYPE_FLOAT, 1, &one, err);
    }
    if (decode_tensor_attr(node, "value", &st->value, err))
        return MQ_ERR;
    if (st->value.count != 1)
        return ops_fail(node, err, "attribute 'value' must hold one element, got %lld",
                        (long long)st->value.count);
    if (mq_dtype_size(st->value.dtype) == 0)
        return ops_fail(node, err, "attribute 'value' has unsupported type %s",
                        mq_dtype_name(st->value.dtype));
    return MQ_OK;
}

static int constant_of_shape_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                 const struct mq_tensor *const *inputs, int n_inputs,
                                 struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct value_state *st = node->state;
    const struct mq_tensor *shape_t;
    if (ops_require(node, inputs, n_inputs, 0, &shape_t, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    int n;
    if (ops_read_ints(node, shape_t, 0, dims, MQ_MAX_RANK, &n, err))
        return MQ_ERR;
    for (int i = 0; i < n; i++)
        if (dims[i] < 0) {
            char s[256];
            return ops_fail(node, err, "shape %s has a negative dim",
                            mq_shape_format(n, dims, s, sizeof s));
        }
    if (ops_alloc(node, &outputs[0], st->value.dtype, n, dims, err))
        return MQ_ERR;
    fill_elements(outputs[0].data, st->value.data, outputs[0].count,
                  mq_dtype_size(st->value.dtype));
    return MQ_OK;
}

static int constant_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct value_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    static const char *const kinds[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints", "value_string", "value_strings",
                                        "sparse_value"};
    const char *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (mq_attr_has(node, kinds[i])) {
            if (kind)
                return ops_fail(node, err, "has both '%s' and '%s'; exactly one value attribute "
                                "is allowed", kind, kinds[i]);
            kind = kinds[i];
        }
    if (!kind)
        return ops_fail(node, err, "needs one of the attributes value, value_float(s), "
                        "value_int(s)");
    if (strcmp(kind, "value") == 0)
        return decode_tensor_attr(node, "value", &st->value, err);
    if (strcmp(kind, "value_float") == 0) {
        if (ops_alloc(node, &st->value, MQ_DTYPE_FLOAT, 0, NULL, err))
            return MQ_ERR;
        *(float *)st->value.data = mq_attr_float(node, "value_float", 0.0f);
        return MQ_OK;
    }
    if (strcmp(kind, "value_int") == 0) {
        if (ops_alloc(node, &st->value, MQ_DTYPE_INT64, 0, NULL, err))
            return MQ_ERR;
        *(int64_t *)st->value.data = mq_attr_int(node, "value_int", 0);
        return MQ_OK;
    }
    if (strcmp(kind, "value_floats") == 0) {
        const float *v;
        int64_t n = mq_attr_floats(node, "value_floats", &v);
        if (ops_alloc(node, &st->value, MQ_DTYPE_FLOAT, 1, &n, err))
            return MQ_ERR;
        if (n > 0)
            memcpy(st->value.data, v, sizeof(float) * (size_t)n);
        return MQ_OK;
    }
    if (strcmp(kind, "value_ints") == 0) {
        const int64_t *v;
        int64_t n = mq_attr_ints(node, "value_ints", &v);
        if (ops_alloc(node, &st->value, MQ_DTYPE_INT64, 1, &n, err))
            return MQ_ERR;
        if (n > 0)
            memcpy(st->value.data, v, sizeof(int64_t) * (size_t)n);
        return MQ_OK;
    }
    return ops_fail(node, err, "attribute '%s' is not supported (string and sparse constants "
                    "cannot be held by this interpreter)", kind);
}

static int constant_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct value_state *st = node->state;
    return copy_reshaped(node, &st->value, st->value.rank, st->value.dims, &outputs[0], err);
}

/* ---- Range ------------------------------------------------------------------------------ */

#define RANGE_FILL(T, ACC)                                                                         \
    {                                                                                              \
        T *d = (T *)out->data;                                                                     \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[i] = (T)(ACC);                                                                       \
    }                                                                                              \
    break;

static int range_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *t[3];
    for (int i = 0; i < 3; i++) {
        if (ops_require(node, inputs, n_inputs, i, &t[i], err))
            return MQ_ERR;
        if (t[i]->count != 1)
            return ops_fail(node, err, "input '%s' must be a scalar, got %lld values",
                            ops_input_name(node, i), (long long)t[i]->count);
        if (t[i]->dtype != t[0]->dtype)
            return ops_fail(node, err, "inputs have different types (%s and %s)",
                            mq_dtype_name(t[0]->dtype), mq_dtype_name(t[i]->dtype));
    }
    int dtype = t[0]->dtype;
    int is_float = mq_dtype_is_float(dtype);
    if (!is_float && !ops_is_integer_dtype(dtype))
        return ops_fail(node, err, "type %s is not supported", mq_dtype_name(dtype));
    int64_t n;
    double fs = 0, fd = 0;
    int64_t is = 0, id = 0;
    if (is_float) {
        fs = mq_tensor_get_double(t[0], 0);
        double fl = mq_tensor_get_double(t[1], 0);
        fd = mq_tensor_get_double(t[2], 0);
        if (fd == 0 || fd != fd || fs != fs || fl != fl)
            return ops_fail(node, err, "delta must be non-zero and the inputs finite");
        double c = ceil((fl - fs) / fd);
        if (!(c < 9.0e15))
            return ops_fail(node, err, "the range has too many elements");
        n = c > 0 ? (int64_t)c : 0;
    } else {
        is = mq_tensor_get_int64(t[0], 0);
        int64_t il = mq_tensor_get_int64(t[1], 0);
        id = mq_tensor_get_int64(t[2], 0);
        if (id == 0)
            return ops_fail(node, err, "delta must be non-zero");
        if (id > 0)
            n = il > is ? (int64_t)(((uint64_t)il - (uint64_t)is - 1) / (uint64_t)id) + 1 : 0;
        else
            n = is > il ? (int64_t)(((uint64_t)is - (uint64_t)il - 1) /
                                    ((uint64_t)(-(id + 1)) + 1)) + 1 : 0;
    }
    if (ops_alloc(node, &outputs[0], dtype, 1, &n, err))
        return MQ_ERR;
    struct mq_tensor *out = &outputs[0];
    if (n == 0)
        return MQ_OK;
    switch (dtype) {
    case MQ_DTYPE_FLOAT: RANGE_FILL(float, fs + (double)i * fd)
    case MQ_DTYPE_DOUBLE: RANGE_FILL(double, fs + (double)i * fd)
    case MQ_DTYPE_INT8: RANGE_FILL(int8_t, is + i * id)
    case MQ_DTYPE_UINT8: RANGE_FILL(uint8_t, is + i * id)
    case MQ_DTYPE_INT16: RANGE_FILL(int16_t, is + i * id)
    case MQ_DTYPE_UINT16: RANGE_FILL(uint16_t, is + i * id)
    case MQ_DTYPE_INT32: RANGE_FILL(int32_t, is + i * id)
    case MQ_DTYPE_UINT32: RANGE_FILL(uint32_t, is + i * id)
    case MQ_DTYPE_INT64: RANGE_FILL(int64_t, (uint64_t)is + (uint64_t)i * (uint64_t)id)
    case MQ_DTYPE_UINT64: RANGE_FILL(uint64_t, (uint64_t)is + (uint64_t)i * (uint64_t)id)
    default: {
        /* float16 / bfloat16: computed in double, rounded once. */
        for (int64_t i = 0; i < n; i++) {
            double v = fs + (double)i * fd;
            mq_cast_elements((char *)out->data + i * 2, dtype, &v, MQ_DTYPE_DOUBLE, 1);
        }
    }
    }
    return MQ_OK;
}

/* ---- Identity / Dropout ----------------------------------------------------------------- */

static int identity_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    return copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err);
}

struct dropout_state {
    float ratio;
};

static int dropout_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct dropout_state *st = alloc_state(node, sizeof *st, err);
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
    if (copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err))
        return MQ_ERR;
    if (n_outputs > 1) {
        int mask_type = node->opset >= 10 ? MQ_DTYPE_BOOL : x->dtype;
        unsigned char one[16];
        if (scalar_bytes(node, mask_type, 1.0, one, err) ||
            ops_alloc(node, &outputs[1], mask_type, x->rank, x->dims, err))
            return MQ_ERR;
        fill_elements(outputs[1].data, one, outputs[1].count, mq_dtype_size(mask_type));
    }
    return MQ_OK;
}

/* ---- EyeLike / Trilu -------------------------------------------------------------------- */

struct eyelike_state {
    int dtype;                    /* 0: the input's */
    int64_t k;
};

static int eyelike_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct eyelike_state *st = alloc_state(node, sizeof *st, err);
    if (!st)
        return MQ_ERR;
    node->state = st;
    st->k = mq_attr_int(node, "k", 0);
    if (mq_attr_has(node, "dtype")) {
        int64_t dt = mq_attr_int(node, "dtype", 0);
        if (dt <= 0 || dt > 64 || !mq_cast_supported((int)dt))
            return ops_fail(node, err, "dtype %lld is not supported", (long long)dt);
        st->dtype = (int)dt;
    }
    return MQ_OK;
}

static int eyelike_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                       const struct mq_tensor *const *inputs, int n_inputs,
                       struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct eyelike_state *st = node->state;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    if (x->rank != 2)
        return ops_fail(node, err, "input must be 2-D, got rank %d", x->rank);
    int dtype = st->dtype ? st->dtype : x->dtype;
    unsigned char one[16];
    if (scalar_bytes(node, dtype, 1.0, one, err) ||
        ops_alloc(node, &outputs[0], dtype, 2, x->dims, err))
        return MQ_ERR;
    size_t es = mq_dtype_size(dtype);
    int64_t rows = x->dims[0], cols = x->dims[1];
    if (st->k >= cols || st->k <= -rows)
        return MQ_OK;
    for (int64_t i = 0; i < rows; i++) {
        int64_t j = i + st->k;
        if (j >= 0 && j < cols)
            memcpy((char *)outputs[0].data + (i * cols + j) * (int64_t)es, one, es);
    }
    return MQ_OK;
}

static int trilu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    if (x->rank < 2)
        return ops_fail(node, err, "input must have rank >= 2, got %d", x->rank);
    int64_t k = 0;
    const struct mq_tensor *kt = ops_input(inputs, n_inputs, 1);
    if (kt && ops_read_scalar_int(node, kt, 1, &k, err))
        return MQ_ERR;
    int upper = mq_attr_int(node, "upper", 1) != 0;
    if (copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err))
        return MQ_ERR;
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    if (rows == 0 || cols == 0)
        return MQ_OK;
    /* Beyond these bounds every element is kept (or zeroed) anyway. */
    int64_t lim = rows + cols;
    k = k > lim ? lim : k < -lim ? -lim : k;
    size_t es = mq_dtype_size(x->dtype);
    int64_t batches = x->count / (rows * cols);
    char *d = outputs[0].data;
    for (int64_t b = 0; b < batches; b++)
        for (int64_t i = 0; i < rows; i++) {
            char *row = d + ((b * rows + i) * cols) * (int64_t)es;
            /* upper keeps j - i >= k, lower keeps j - i <= k; the rest is zero. */
            int64_t from = upper ? 0 : i + k + 1, to = upper ? i + k : cols;
            from = from < 0 ? 0 : from > cols ? cols : from;
            to = to < 0 ? 0 : to > cols ? cols : to;
            if (to > from)
                memset(row + from * (int64_t)es, 0, (size_t)(to - from) * es);
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
    struct axis_state *st = alloc_state(node, sizeof *st, err);
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
        outer = product(x->dims, 0, axis);
        inner *= product(x->dims, axis + 1, x->rank);
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

/* ---- OneHot ----------------------------------------------------------------------------- */

static int onehot_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *ind, *depth_t, *values;
    if (ops_require(node, inputs, n_inputs, 0, &ind, err) ||
        ops_require(node, inputs, n_inputs, 1, &depth_t, err) ||
        ops_require(node, inputs, n_inputs, 2, &values, err))
        return MQ_ERR;
    if (depth_t->count != 1)
        return ops_fail(node, err, "depth must hold one value, got %lld",
                        (long long)depth_t->count);
    if (values->count != 2)
        return ops_fail(node, err, "values must hold [off_value, on_value], got %lld values",
                        (long long)values->count);
    if (!ops_is_integer_dtype(ind->dtype) && !mq_dtype_is_float(ind->dtype))
        return ops_fail(node, err, "indices type %s is not supported",
                        mq_dtype_name(ind->dtype));
    int64_t depth = mq_tensor_get_int64(depth_t, 0);
    if (depth <= 0)
        return ops_fail(node, err, "depth must be positive, got %lld", (long long)depth);
    if (ind->rank + 1 > MQ_MAX_RANK)
        return ops_fail(node, err, "output rank is more than %d", MQ_MAX_RANK);
    int axis;
    if (mq_axis_normalize(node, mq_attr_int(node, "axis", -1), ind->rank + 1, &axis, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    for (int i = 0, k = 0; i <= ind->rank; i++)
        dims[i] = i == axis ? depth : ind->dims[k++];
    if (ops_alloc(node, &outputs[0], values->dtype, ind->rank + 1, dims, err))
        return MQ_ERR;
    size_t es = mq_dtype_size(values->dtype);
    const char *off = values->data, *on = (const char *)values->data + es;
    char *d = outputs[0].data;
    fill_elements(d, off, outputs[0].count, es);
    int64_t outer = product(ind->dims, 0, axis), inner = product(ind->dims, axis, ind->rank);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t v = mq_tensor_get_int64(ind, o * inner + i);
            if (v < 0)
                v += depth;
            if (v < 0 || v >= depth)
                continue;
            memcpy(d + ((o * depth + v) * inner + i) * (int64_t)es, on, es);
        }
    return MQ_OK;
}

/* ---- ReverseSequence -------------------------------------------------------------------- */

struct reverse_state {
    int batch_axis, time_axis;
};

static int reverse_sequence_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct reverse_state *st = alloc_state(node, sizeof *st, err);
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
    if (copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err))
        return MQ_ERR;
    int64_t strides[MQ_MAX_RANK];
    ops_strides(x->rank, x->dims, strides);
    size_t es = mq_dtype_size(x->dtype);
    int64_t block = product(x->dims, 2, x->rank) * (int64_t)es;
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

/*
 * Ranges follow the signature changes in the changelog: Reshape's shape
 * became an input at 5 and got allowzero at 14; Squeeze/Unsqueeze axes, Split
 * sizes became inputs at 13 (Split got num_outputs at 18); Slice's attributes
 * became inputs at 10; Pad's at 11 (axes input at 18, wrap mode at 19); Tile
 * took (tiles, axis) before 6; Concat's axis was optional before 4;
 * DepthToSpace got mode at 11; Shape got start/end at 15; Dropout's mask
 * became bool at 10 and ratio/training_mode inputs at 12; Constant got
 * value_* at 12.
 */
const struct mq_kernel mq_kernels_shape_ops[] = {
    {"", "Reshape", 1, 4, reshape_prepare, reshape_run, free},
    {"", "Reshape", 5, 13, reshape_prepare, reshape_run, free},
    {"", "Reshape", 14, 0, reshape_prepare, reshape_run, free},
    {"", "Flatten", 1, 0, flatten_prepare, flatten_run, free},
    {"", "Squeeze", 1, 12, axes_attr_prepare, squeeze_run, free},
    {"", "Squeeze", 13, 0, axes_attr_prepare, squeeze_run, free},
    {"", "Unsqueeze", 1, 12, axes_attr_prepare, unsqueeze_run, free},
    {"", "Unsqueeze", 13, 0, axes_attr_prepare, unsqueeze_run, free},
    {"", "Transpose", 1, 0, transpose_prepare, transpose_run, free},
    {"", "Concat", 1, 3, concat_prepare, concat_run, free},
    {"", "Concat", 4, 0, concat_prepare, concat_run, free},
    {"", "Split", 1, 1, split_prepare, split_run, split_destroy},
    {"", "Split", 2, 12, split_prepare, split_run, split_destroy},
    {"", "Split", 13, 17, split_prepare, split_run, split_destroy},
    {"", "Split", 18, 0, split_prepare, split_run, split_destroy},
    {"", "Slice", 1, 9, slice_prepare, slice_run, free},
    {"", "Slice", 10, 0, slice_prepare, slice_run, free},
    {"", "Expand", 8, 0, NULL, expand_run, NULL},
    {"", "Tile", 1, 5, NULL, tile_run, NULL},
    {"", "Tile", 6, 0, NULL, tile_run, NULL},
    {"", "Pad", 1, 1, pad_prepare, pad_run, free},
    {"", "Pad", 2, 10, pad_prepare, pad_run, free},
    {"", "Pad", 11, 17, pad_prepare, pad_run, free},
    {"", "Pad", 18, 18, pad_prepare, pad_run, free},
    {"", "Pad", 19, 0, pad_prepare, pad_run, free},
    {"", "DepthToSpace", 1, 10, block_prepare, depth_to_space_run, free},
    {"", "DepthToSpace", 11, 0, block_prepare, depth_to_space_run, free},
    {"", "SpaceToDepth", 1, 0, block_prepare, space_to_depth_run, free},
    {"", "Shape", 1, 14, shape_prepare, shape_run, free},
    {"", "Shape", 15, 0, shape_prepare, shape_run, free},
    {"", "Size", 1, 0, NULL, size_run, NULL},
    {"", "ConstantOfShape", 9, 0, constant_of_shape_prepare, constant_of_shape_run,
     value_destroy},
    {"", "Range", 11, 0, NULL, range_run, NULL},
    {"", "Identity", 1, 0, NULL, identity_run, NULL},
    {"", "Dropout", 1, 9, dropout_prepare, dropout_run, free},
    {"", "Dropout", 10, 11, dropout_prepare, dropout_run, free},
    {"", "Dropout", 12, 0, dropout_prepare, dropout_run, free},
    {"", "Constant", 1, 11, constant_prepare, constant_run, value_destroy},
    {"", "Constant", 12, 0, constant_prepare, constant_run, value_destroy},
    {"", "EyeLike", 9, 0, eyelike_prepare, eyelike_run, free},
    {"", "Trilu", 14, 0, NULL, trilu_run, NULL},
    {"", "NonZero", 9, 0, NULL, nonzero_run, NULL},
    {"", "Compress", 9, 0, compress_prepare, compress_run, free},
    {"", "OneHot", 9, 0, NULL, onehot_run, NULL},
    {"", "ReverseSequence", 10, 0, reverse_sequence_prepare, reverse_sequence_run, free},
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
