/*
 * Indexed reads and writes: Gather, GatherElements, GatherND, ScatterND,
 * ScatterElements, the deprecated Scatter, and OneHot (on_value written at
 * the indexed positions).
 *
 * Indices are int32 or int64, may be negative (counted from the end of the
 * axis) and are all checked before anything is written.  Gathers move bytes;
 * scatters with a reduction do arithmetic in the element type (float16 and
 * bfloat16 through float32).
 */
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/element_copy.h"
#include "interp/ops/shape_util.h"

/* The indices as int64, unnormalised; *out is scratch (ops_scratch_free). */
static int load_indices(const struct mq_kernel_node *node, const struct mq_tensor *t, int index,
                        int64_t **out, struct mq_error *err)
{
    *out = NULL;
    if (t->dtype != MQ_DTYPE_INT64 && t->dtype != MQ_DTYPE_INT32)
        return ops_fail(node, err, "input '%s' must be int32 or int64, got %s",
                        ops_input_name(node, index), mq_dtype_name(t->dtype));
    int64_t *v = ops_scratch(node, t->count, sizeof(int64_t), err);
    if (!v)
        return MQ_ERR;
    if (t->dtype == MQ_DTYPE_INT64) {
        if (t->count)
            memcpy(v, t->data, sizeof(int64_t) * (size_t)t->count);
    } else {
        const int32_t *s = t->data;
        for (int64_t i = 0; i < t->count; i++)
            v[i] = s[i];
    }
    *out = v;
    return MQ_OK;
}

/* Maps a possibly negative index into [0, dim); error names where it was found. */
static int fix_index(const struct mq_kernel_node *node, int64_t *v, int64_t dim, int axis,
                     int64_t position, struct mq_error *err)
{
    int64_t i = *v < 0 ? *v + dim : *v;
    if (i < 0 || i >= dim)
        return ops_fail(node, err, "index %lld (at position %lld) is outside [-%lld, %lld) for "
                        "axis %d", (long long)*v, (long long)position, (long long)dim,
                        (long long)dim, axis);
    *v = i;
    return MQ_OK;
}

#define MOVE_ELEMENTS(T)                                                                           \
    {                                                                                              \
        T *d = (T *)dst;                                                                           \
        const T *s = (const T *)src;                                                               \
        for (int64_t i = 0; i < n; i++)                                                            \
            d[dst_off ? dst_off[i] : i] = s[src_off ? src_off[i] : i];                             \
    }                                                                                              \
    break;

/* dst[dst_off[i]] = src[src_off[i]] for i < n (a NULL offset list means i itself). */
static void move_elements(void *dst, const int64_t *dst_off, const void *src,
                          const int64_t *src_off, int64_t n, size_t es)
{
    switch (es) {
    case 1: MOVE_ELEMENTS(uint8_t)
    case 2: MOVE_ELEMENTS(uint16_t)
    case 4: MOVE_ELEMENTS(uint32_t)
    case 8: MOVE_ELEMENTS(uint64_t)
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)dst + (dst_off ? dst_off[i] : i) * (int64_t)es,
                   (const char *)src + (src_off ? src_off[i] : i) * (int64_t)es, es);
    }
}

/* The data and indices inputs of Gather and GatherElements (data of rank >= 1) and their axis
   attribute, made non-negative. */
static int gather_inputs(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                         int n_inputs, const struct mq_tensor **data,
                         const struct mq_tensor **ind, int *axis, struct mq_error *err)
{
    if (ops_require(node, inputs, n_inputs, 0, data, err) ||
        ops_require(node, inputs, n_inputs, 1, ind, err))
        return MQ_ERR;
    if ((*data)->rank < 1)
        return ops_fail(node, err, "input 'data' must have rank >= 1");
    return mq_axis_normalize(node, mq_attr_int(node, "axis", 0), (*data)->rank, axis, err);
}

/* ---- Gather ----------------------------------------------------------------------------- */

static int gather_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *data, *ind;
    int axis;
    if (gather_inputs(node, inputs, n_inputs, &data, &ind, &axis, err))
        return MQ_ERR;
    int out_rank = data->rank - 1 + ind->rank;
    if (out_rank > MQ_MAX_RANK)
        return ops_fail(node, err, "output rank %d is more than %d", out_rank, MQ_MAX_RANK);
    int64_t *idx;
    if (load_indices(node, ind, 1, &idx, err))
        return MQ_ERR;
    int64_t dim = data->dims[axis];
    for (int64_t i = 0; i < ind->count; i++)
        if (fix_index(node, &idx[i], dim, axis, i, err)) {
            ops_scratch_free(idx);
            return MQ_ERR;
        }
    int64_t dims[MQ_MAX_RANK];
    int r = 0;
    for (int k = 0; k < axis; k++)
        dims[r++] = data->dims[k];
    for (int k = 0; k < ind->rank; k++)
        dims[r++] = ind->dims[k];
    for (int k = axis + 1; k < data->rank; k++)
        dims[r++] = data->dims[k];
    if (ops_alloc_uninit(node, &outputs[0], data->dtype, out_rank, dims, err)) {
        ops_scratch_free(idx);
        return MQ_ERR;
    }
    size_t es = mq_dtype_size(data->dtype);
    int64_t outer = ops_product(data->dims, 0, axis);
    int64_t inner = ops_product(data->dims, axis + 1, data->rank);
    int64_t n = ind->count;
    char *d = outputs[0].data;
    const char *s = data->data;
    if (outputs[0].count > 0) {
        if (inner == 1) {
            /* One element per index: a typed gather instead of tiny memcpys. */
            for (int64_t o = 0; o < outer; o++)
                move_elements(d + o * n * (int64_t)es, NULL, s + o * dim * (int64_t)es, idx, n,
                              es);
        } else {
            int64_t bytes = inner * (int64_t)es;
            for (int64_t o = 0; o < outer; o++)
                for (int64_t j = 0; j < n; j++)
                    memcpy(d + (o * n + j) * bytes, s + (o * dim + idx[j]) * bytes,
                           (size_t)bytes);
        }
    }
    ops_scratch_free(idx);
    return MQ_OK;
}

/* ---- GatherElements / ScatterElements offsets ------------------------------------------- */

/*
 * For each element of `ind` (same rank as data), the flat offset into data
 * when the coordinate on `axis` is replaced by the index value.  Outside the
 * axis, indices' dims must not exceed data's.
 */
static int element_offsets(const struct mq_kernel_node *node, const struct mq_tensor *data,
                           const struct mq_tensor *ind, int axis, int64_t **out,
                           struct mq_error *err)
{
    *out = NULL;
    char a[256], b[256];
    if (ind->rank != data->rank)
        return ops_fail(node, err, "indices %s must have the rank of data %s",
                        ops_shape(ind, a, sizeof a), ops_shape(data, b, sizeof b));
    for (int k = 0; k < data->rank; k++)
        if (k != axis && ind->dims[k] > data->dims[k])
            return ops_fail(node, err, "indices %s exceed data %s on axis %d",
                            ops_shape(ind, a, sizeof a), ops_shape(data, b, sizeof b), k);
    int64_t *off;
    if (load_indices(node, ind, 1, &off, err))
        return MQ_ERR;
    int64_t strides[MQ_MAX_RANK], idx[MQ_MAX_RANK] = {0};
    ops_strides(data->rank, data->dims, strides);
    int64_t base = 0;
    int last = data->rank - 1;
    for (int64_t i = 0; i < ind->count; i++) {
        int64_t v = off[i];
        if (fix_index(node, &v, data->dims[axis], axis, i, err)) {
            ops_scratch_free(off);
            return MQ_ERR;
        }
        off[i] = base + v * strides[axis];
        for (int k = last; k >= 0; k--) {
            idx[k]++;
            if (k != axis)
                base += strides[k];
            if (idx[k] < ind->dims[k])
                break;
            if (k != axis)
                base -= strides[k] * idx[k];
            idx[k] = 0;
        }
    }
    *out = off;
    return MQ_OK;
}

static int gather_elements_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                               const struct mq_tensor *const *inputs, int n_inputs,
                               struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *data, *ind;
    int axis;
    if (gather_inputs(node, inputs, n_inputs, &data, &ind, &axis, err))
        return MQ_ERR;
    int64_t *off;
    if (element_offsets(node, data, ind, axis, &off, err))
        return MQ_ERR;
    int rc = ops_alloc(node, &outputs[0], data->dtype, ind->rank, ind->dims, err);
    if (rc == MQ_OK)
        move_elements(outputs[0].data, NULL, data->data, off, ind->count,
                      mq_dtype_size(data->dtype));
    ops_scratch_free(off);
    return rc;
}

/* ---- GatherND / ScatterND offsets ------------------------------------------------------- */

/*
 * Flat element offsets into data of each index tuple (the last axis of
 * `ind`, of length k), after `batch_dims` leading axes that data and indices
 * share.  *n_tuples receives the tuple count, *slice the elements each
 * tuple addresses.
 */
static int tuple_offsets(const struct mq_kernel_node *node, const struct mq_tensor *data,
                         const struct mq_tensor *ind, int batch_dims, int64_t **out,
                         int64_t *n_tuples, int64_t *slice, struct mq_error *err)
{
    *out = NULL;
    char a[256], b[256];
    if (ind->rank < 1)
        return ops_fail(node, err, "indices must have rank >= 1");
    int q = ind->rank, r = data->rank;
    int64_t k = ind->dims[q - 1];
    if (batch_dims < 0 || batch_dims >= q || batch_dims >= r)
        return ops_fail(node, err, "batch_dims %d must be less than the ranks of data (%d) and "
                        "indices (%d)", batch_dims, r, q);
    if (k < 0 || k > r - batch_dims)
        return ops_fail(node, err, "index tuples of length %lld do not fit data %s after %d "
                        "batch dims", (long long)k, ops_shape(data, a, sizeof a), batch_dims);
    for (int i = 0; i < batch_dims; i++)
        if (ind->dims[i] != data->dims[i])
            return ops_fail(node, err, "batch dim %d differs: indices %s, data %s", i,
                            ops_shape(ind, a, sizeof a), ops_shape(data, b, sizeof b));
    int64_t *v;
    if (load_indices(node, ind, 1, &v, err))
        return MQ_ERR;
    int64_t strides[MQ_MAX_RANK];
    ops_strides(r, data->dims, strides);
    int64_t batches = ops_product(data->dims, 0, batch_dims);
    int64_t tuples = k > 0 ? ind->count / k : ops_product(ind->dims, 0, q - 1);
    int64_t per_batch = batches > 0 ? tuples / batches : 0;
    int64_t *off = ops_scratch(node, tuples, sizeof(int64_t), err);
    if (!off) {
        ops_scratch_free(v);
        return MQ_ERR;
    }
    for (int64_t t = 0; t < tuples; t++) {
        int64_t o = per_batch > 0 ? (t / per_batch) * (batch_dims ? strides[batch_dims - 1] : 0)
                                  : 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t x = v[t * k + j];
            int ax = batch_dims + (int)j;
            if (fix_index(node, &x, data->dims[ax], ax, t * k + j, err)) {
                ops_scratch_free(v);
                ops_scratch_free(off);
                return MQ_ERR;
            }
            o += x * strides[ax];
        }
        off[t] = o;
    }
    ops_scratch_free(v);
    *out = off;
    *n_tuples = tuples;
    *slice = ops_product(data->dims, batch_dims + (int)k, r);
    return MQ_OK;
}

static int gather_nd_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *data, *ind;
    if (ops_require(node, inputs, n_inputs, 0, &data, err) ||
        ops_require(node, inputs, n_inputs, 1, &ind, err))
        return MQ_ERR;
    int64_t batch_dims = node->opset >= 12 ? mq_attr_int(node, "batch_dims", 0) : 0;
    if (batch_dims < 0 || batch_dims > MQ_MAX_RANK)
        return ops_fail(node, err, "batch_dims %lld is invalid", (long long)batch_dims);
    int64_t *off, tuples, slice;
    if (tuple_offsets(node, data, ind, (int)batch_dims, &off, &tuples, &slice, err))
        return MQ_ERR;
    int q = ind->rank;
    int64_t k = ind->dims[q - 1];
    int64_t dims[MQ_MAX_RANK];
    int r = 0;
    for (int i = 0; i < q - 1; i++)
        dims[r++] = ind->dims[i];
    for (int i = (int)batch_dims + (int)k; i < data->rank; i++) {
        if (r >= MQ_MAX_RANK) {
            ops_scratch_free(off);
            return ops_fail(node, err, "output rank is more than %d", MQ_MAX_RANK);
        }
        dims[r++] = data->dims[i];
    }
    int rc = ops_alloc(node, &outputs[0], data->dtype, r, dims, err);
    if (rc == MQ_OK && slice > 0) {
        size_t es = mq_dtype_size(data->dtype);
        int64_t bytes = slice * (int64_t)es;
        for (int64_t t = 0; t < tuples; t++)
            memcpy((char *)outputs[0].data + t * bytes,
                   (const char *)data->data + off[t] * (int64_t)es, (size_t)bytes);
    }
    ops_scratch_free(off);
    return rc;
}

/* ---- scatter reductions ----------------------------------------------------------------- */

enum reduction { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

struct scatter_state {
    enum reduction reduction;
    int64_t axis;
};

static int scatter_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct scatter_state *st = calloc(1, sizeof *st);
    if (!st)
        return ops_fail(node, err, "out of memory");
    node->state = st;
    st->axis = mq_attr_int(node, "axis", 0);
    char buf[16];
    const char *red = mq_attr_string(node, "reduction", "none", buf, sizeof buf);
    if (strcmp(red, "none") == 0)
        st->reduction = RED_NONE;
    else if (strcmp(red, "add") == 0 && node->opset >= 16)
        st->reduction = RED_ADD;
    else if (strcmp(red, "mul") == 0 && node->opset >= 16)
        st->reduction = RED_MUL;
    else if (strcmp(red, "max") == 0 && node->opset >= 18)
        st->reduction = RED_MAX;
    else if (strcmp(red, "min") == 0 && node->opset >= 18)
        st->reduction = RED_MIN;
    else
        return ops_fail(node, err, "reduction '%s' is not supported at opset %d (none; add and "
                        "mul from 16; max and min from 18)", red, node->opset);
    return MQ_OK;
}

#define ID(x) (x)
#define OP_ADD(a, b) ((a) + (b))
#define OP_MUL(a, b) ((a) * (b))
#define OP_MAX(a, b) ((a) < (b) ? (b) : (a))
#define OP_MIN(a, b) ((b) < (a) ? (b) : (a))
#define OP_OR(a, b) ((a) || (b))
#define OP_AND(a, b) ((a) && (b))

#define REDUCE_LOOP(T, LOAD, STORE, OP)                                                            \
    {                                                                                              \
        T *d = (T *)dst;                                                                           \
        const T *u = (const T *)upd;                                                               \
        for (int64_t i = 0; i < n; i++) {                                                          \
            int64_t o = off[i];                                                                    \
            d[o] = STORE(OP(LOAD(d[o]), LOAD(u[i])));                                              \
        }                                                                                          \
    }                                                                                              \
    break;

#define REDUCE_CASE(DT, T, LOAD, STORE)                                                            \
    case DT:                                                                                       \
        switch (red) {                                                                             \
        case RED_ADD: REDUCE_LOOP(T, LOAD, STORE, OP_ADD)                                          \
        case RED_MUL: REDUCE_LOOP(T, LOAD, STORE, OP_MUL)                                          \
        case RED_MAX: REDUCE_LOOP(T, LOAD, STORE, OP_MAX)                                          \
        case RED_MIN: REDUCE_LOOP(T, LOAD, STORE, OP_MIN)                                          \
        default: break;                                                                            \
        }                                                                                          \
        return MQ_OK;

/* dst[off[i]] = reduce(dst[off[i]], upd[i]); in order, so duplicate indices accumulate. */
static int reduce_into(const struct mq_kernel_node *node, int dtype, enum reduction red,
                       void *dst, const int64_t *off, const void *upd, int64_t n,
                       struct mq_error *err)
{
    if (red == RED_NONE) {
        move_elements(dst, off, upd, NULL, n, mq_dtype_size(dtype));
        return MQ_OK;
    }
    switch (dtype) {
    REDUCE_CASE(MQ_DTYPE_FLOAT, float, ID, ID)
    REDUCE_CASE(MQ_DTYPE_DOUBLE, double, ID, ID)
    REDUCE_CASE(MQ_DTYPE_INT8, int8_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_UINT8, uint8_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_INT16, int16_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_UINT16, uint16_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_INT32, int32_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_UINT32, uint32_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_INT64, int64_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_UINT64, uint64_t, ID, ID)
    REDUCE_CASE(MQ_DTYPE_FLOAT16, uint16_t, mq_half_to_float, mq_float_to_half)
    REDUCE_CASE(MQ_DTYPE_BFLOAT16, uint16_t, mq_bfloat16_to_float, mq_float_to_bfloat16)
    case MQ_DTYPE_BOOL:
        /* add and max are "or", mul and min are "and". */
        if (red == RED_ADD || red == RED_MAX) {
            REDUCE_LOOP(uint8_t, ID, ID, OP_OR)
        } else {
            REDUCE_LOOP(uint8_t, ID, ID, OP_AND)
        }
        return MQ_OK;
    default:
        return ops_fail(node, err, "reduction is not supported for type %s",
                        mq_dtype_name(dtype));
    }
    return MQ_OK;
}

/* Output = copy of data; checks that updates has the type of data. */
static int scatter_begin(const struct mq_kernel_node *node, const struct mq_tensor *data,
                         const struct mq_tensor *upd, struct mq_tensor *out,
                         struct mq_error *err)
{
    if (upd->dtype != data->dtype)
        return ops_fail(node, err, "updates have type %s but data has %s",
                        mq_dtype_name(upd->dtype), mq_dtype_name(data->dtype));
    if (ops_alloc(node, out, data->dtype, data->rank, data->dims, err))
        return MQ_ERR;
    if (data->count > 0)
        memcpy(out->data, data->data, (size_t)data->count * mq_dtype_size(data->dtype));
    return MQ_OK;
}

/* The data, indices and updates inputs every scatter takes; data must have rank >= 1. */
static int scatter_inputs(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                          int n_inputs, const struct mq_tensor **data,
                          const struct mq_tensor **ind, const struct mq_tensor **upd,
                          struct mq_error *err)
{
    if (ops_require(node, inputs, n_inputs, 0, data, err) ||
        ops_require(node, inputs, n_inputs, 1, ind, err) ||
        ops_require(node, inputs, n_inputs, 2, upd, err))
        return MQ_ERR;
    if ((*data)->rank < 1)
        return ops_fail(node, err, "input 'data' must have rank >= 1");
    return MQ_OK;
}

/* ---- ScatterND -------------------------------------------------------------------------- */

static int scatter_nd_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                          const struct mq_tensor *const *inputs, int n_inputs,
                          struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct scatter_state *st = node->state;
    const struct mq_tensor *data, *ind, *upd;
    if (scatter_inputs(node, inputs, n_inputs, &data, &ind, &upd, err))
        return MQ_ERR;
    int64_t *off, tuples, slice;
    if (tuple_offsets(node, data, ind, 0, &off, &tuples, &slice, err))
        return MQ_ERR;
    /* updates must be indices.shape[:-1] + data.shape[k:]. */
    int64_t k = ind->dims[ind->rank - 1];
    int64_t want[2 * MQ_MAX_RANK];
    int wr = 0;
    for (int i = 0; i < ind->rank - 1; i++)
        want[wr++] = ind->dims[i];
    for (int i = (int)k; i < data->rank; i++)
        want[wr++] = data->dims[i];
    int same = wr == upd->rank;
    for (int i = 0; same && i < wr; i++)
        same = want[i] == upd->dims[i];
    if (!same) {
        char a[256], b[256];
        ops_scratch_free(off);
        return ops_fail(node, err, "updates have shape %s, expected %s",
                        ops_shape(upd, a, sizeof a), mq_shape_format(wr, want, b, sizeof b));
    }
    if (scatter_begin(node, data, upd, &outputs[0], err)) {
        ops_scratch_free(off);
        return MQ_ERR;
    }
    size_t es = mq_dtype_size(data->dtype);
    int rc = MQ_OK;
    if (st->reduction == RED_NONE || slice == 1) {
        if (slice == 1) {
            rc = reduce_into(node, data->dtype, st->reduction, outputs[0].data, off, upd->data,
                             tuples, err);
        } else if (slice > 0) {
            int64_t bytes = slice * (int64_t)es;
            for (int64_t t = 0; t < tuples; t++)
                memcpy((char *)outputs[0].data + off[t] * (int64_t)es,
                       (const char *)upd->data + t * bytes, (size_t)bytes);
        }
    } else if (slice > 0) {
        /* A reduction over whole slices: expand each tuple into its element offsets. */
        int64_t *el = ops_scratch(node, slice, sizeof(int64_t), err);
        if (!el)
            rc = MQ_ERR;
        for (int64_t t = 0; rc == MQ_OK && t < tuples; t++) {
            for (int64_t i = 0; i < slice; i++)
                el[i] = off[t] + i;
            rc = reduce_into(node, data->dtype, st->reduction, outputs[0].data, el,
                             (const char *)upd->data + t * slice * (int64_t)es, slice, err);
        }
        ops_scratch_free(el);
    }
    ops_scratch_free(off);
    return rc;
}

/* ---- ScatterElements / Scatter ---------------------------------------------------------- */

static int scatter_elements_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                const struct mq_tensor *const *inputs, int n_inputs,
                                struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct scatter_state *st = node->state;
    const struct mq_tensor *data, *ind, *upd;
    if (scatter_inputs(node, inputs, n_inputs, &data, &ind, &upd, err))
        return MQ_ERR;
    if (!mq_shape_equal(ind, upd)) {
        char a[256], b[256];
        return ops_fail(node, err, "updates %s must have the shape of indices %s",
                        ops_shape(upd, a, sizeof a), ops_shape(ind, b, sizeof b));
    }
    int axis;
    if (mq_axis_normalize(node, st->axis, data->rank, &axis, err))
        return MQ_ERR;
    int64_t *off;
    if (element_offsets(node, data, ind, axis, &off, err))
        return MQ_ERR;
    int rc = scatter_begin(node, data, upd, &outputs[0], err);
    if (rc == MQ_OK)
        rc = reduce_into(node, data->dtype, st->reduction, outputs[0].data, off, upd->data,
                         upd->count, err);
    ops_scratch_free(off);
    return rc;
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
    mq_element_fill(d, off, outputs[0].count, es);
    int64_t outer = ops_product(ind->dims, 0, axis);
    int64_t inner = ops_product(ind->dims, axis, ind->rank);
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

/*
 * ScatterND: reduction add/mul from 16, max/min from 18.  ScatterElements:
 * the same.  Scatter-9 is ScatterElements without reduction; Scatter-11
 * (deprecated) added negative indices, which we accept throughout.
 * GatherND-12 added batch_dims.  OneHot is unchanged since 9.
 */
const struct mq_kernel mq_kernels_gather_scatter[] = {
    {"", "Gather", 1, 10, NULL, gather_run, NULL},
    {"", "Gather", 11, 0, NULL, gather_run, NULL},
    {"", "GatherElements", 11, 0, NULL, gather_elements_run, NULL},
    {"", "GatherND", 11, 11, NULL, gather_nd_run, NULL},
    {"", "GatherND", 12, 0, NULL, gather_nd_run, NULL},
    {"", "ScatterND", 11, 15, scatter_prepare, scatter_nd_run, free},
    {"", "ScatterND", 16, 17, scatter_prepare, scatter_nd_run, free},
    {"", "ScatterND", 18, 0, scatter_prepare, scatter_nd_run, free},
    {"", "ScatterElements", 11, 15, scatter_prepare, scatter_elements_run, free},
    {"", "ScatterElements", 16, 17, scatter_prepare, scatter_elements_run, free},
    {"", "ScatterElements", 18, 0, scatter_prepare, scatter_elements_run, free},
    {"", "Scatter", 9, 10, scatter_prepare, scatter_elements_run, free},
    {"", "Scatter", 11, 0, scatter_prepare, scatter_elements_run, free},
    {"", "OneHot", 9, 0, NULL, onehot_run, NULL},
    {0},
};
