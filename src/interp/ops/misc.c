/*
 * Operators that belong to no larger family: TopK, CumSum, Einsum, Det,
 * Unique, NonMaxSuppression and TfIdfVectorizer.
 *
 * Per-type code comes from macros instantiated once per element type;
 * float16 and bfloat16 inputs go through mq_widen_run (computed in float32).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/misc_common.h"
#include "interp/ops/scratch.h"
#include "interp/ops/widen.h"
#include "interp/tensor.h"

#define NO_NAN(x) 0

/* Element type lists: X(dtype, C type, nan test). */
#define MISC_FLOAT_TYPES(X)                                                                        \
    X(MQ_DTYPE_FLOAT, float, isnan)                                                                \
    X(MQ_DTYPE_DOUBLE, double, isnan)
#define MISC_INT_TYPES(X)                                                                          \
    X(MQ_DTYPE_INT8, int8_t, NO_NAN)                                                               \
    X(MQ_DTYPE_INT16, int16_t, NO_NAN)                                                             \
    X(MQ_DTYPE_INT32, int32_t, NO_NAN)                                                             \
    X(MQ_DTYPE_INT64, int64_t, NO_NAN)                                                             \
    X(MQ_DTYPE_UINT8, uint8_t, NO_NAN)                                                             \
    X(MQ_DTYPE_UINT16, uint16_t, NO_NAN)                                                           \
    X(MQ_DTYPE_UINT32, uint32_t, NO_NAN)                                                           \
    X(MQ_DTYPE_UINT64, uint64_t, NO_NAN)
#define MISC_NUMERIC_TYPES(X) MISC_FLOAT_TYPES(X) MISC_INT_TYPES(X)

static int type_error(const struct mq_kernel_node *node, const char *what, int dtype,
                      struct mq_error *err)
{
    return misc_fail(node, err, "%s has unsupported element type %s", what, mq_dtype_name(dtype));
}

static int64_t prod_range(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

/*
 * Stable bottom-up merge sort of perm[0..n) by keys[perm[i]].  NaN sorts as
 * the largest value (numpy's order), so it comes first when descending.
 * Equal keys keep their order: callers that start from perm[i] = i get ties
 * broken by the lower index, as TopK and NonMaxSuppression require.
 */
#define DEFINE_SORT_PERM(DT, T, ISNAN)                                                             \
    static void sort_perm_##T(const T *keys, int64_t *perm, int64_t *tmp, int64_t n, int desc)   \
    {                                                                                              \
        int64_t *src = perm, *dst = tmp;                                                           \
        for (int64_t width = 1; width < n; width *= 2) {                                           \
            for (int64_t lo = 0; lo < n; lo += 2 * width) {                                        \
                int64_t mid = lo + width < n ? lo + width : n;                                     \
                int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;                              \
                int64_t i = lo, j = mid, o = lo;                                                   \
                while (i < mid && j < hi) {                                                        \
                    T a = keys[src[j]], b = keys[src[i]];                                          \
                    int take_right = desc ? (a > b || (ISNAN(a) && !ISNAN(b)))                     \
                                          : (a < b || (ISNAN(b) && !ISNAN(a)));                    \
                    dst[o++] = take_right ? src[j++] : src[i++];                                   \
                }                                                                                  \
                while (i < mid)                                                                    \
                    dst[o++] = src[i++];                                                           \
                while (j < hi)                                                                     \
                    dst[o++] = src[j++];                                                           \
            }                                                                                      \
            int64_t *swap = src;                                                                   \
            src = dst;                                                                             \
            dst = swap;                                                                            \
        }                                                                                          \
        if (src != perm)                                                                           \
            memcpy(perm, src, (size_t)n * sizeof *perm);                                           \
    }
MISC_NUMERIC_TYPES(DEFINE_SORT_PERM)

/* ------------------------------------------------------------------ TopK */

struct topk_state {
    int k_from_attr; /* opset 1-9: k is an attribute */
    int64_t k;
    int64_t axis;
    int largest;
};

static int topk_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct topk_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    s->axis = mq_attr_int(node, "axis", -1);
    s->largest = 1;
    if (node->opset < 10) {
        if (!mq_attr_has(node, "k"))
            return misc_fail(node, err, "attribute 'k' is required before opset 10");
        s->k_from_attr = 1;
        s->k = mq_attr_int(node, "k", 0);
        if (s->k < 0)
            return misc_fail(node, err, "attribute 'k' is %lld, expected >= 0", (long long)s->k);
    }
    if (node->opset >= 11) {
        int64_t largest = mq_attr_int(node, "largest", 1);
        int64_t sorted = mq_attr_int(node, "sorted", 1);
        if (largest != 0 && largest != 1)
            return misc_fail(node, err, "attribute 'largest' is %lld, expected 0 or 1",
                             (long long)largest);
        /* sorted=0 leaves the order unspecified; sorted output satisfies it. */
        if (sorted != 0 && sorted != 1)
            return misc_fail(node, err, "attribute 'sorted' is %lld, expected 0 or 1",
                             (long long)sorted);
        s->largest = (int)largest;
    }
    return MQ_OK;
}

static int topk_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct topk_state *s = node->state;
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, topk_run, 0, err);
    const struct mq_tensor *x = inputs[0];
    if (n_outputs < 2)
        return misc_fail(node, err, "expected 2 outputs (Values, Indices), got %d", n_outputs);
    if (x->rank < 1)
        return misc_fail(node, err, "input 'X' must have rank >= 1, it is a scalar");
    int axis;
    if (mq_axis_normalize(node, s->axis, x->rank, &axis, err))
        return MQ_ERR;
    int64_t k = s->k;
    if (!s->k_from_attr) {
        if (n_inputs < 2 || misc_scalar_int(node, inputs[1], "K", &k, err))
            return MQ_ERR;
    }
    int64_t n = x->dims[axis];
    if (k < 0 || k > n)
        return misc_fail(node, err, "K is %lld, expected a value in [0, %lld] (the size of axis "
                         "%d)", (long long)k, (long long)n, axis);
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, dims, node->name, err) ||
        mq_tensor_alloc(&outputs[1], MQ_DTYPE_INT64, x->rank, dims, node->name, err))
        return MQ_ERR;
    int64_t outer = prod_range(x->dims, 0, axis), inner = prod_range(x->dims, axis + 1, x->rank);
    if (outer * inner == 0 || k == 0)
        return MQ_OK;
    void *keys = mq_scratch_alloc(node, n, 8, err);
    int64_t *perm = keys ? mq_scratch_alloc(node, 2 * n, sizeof(int64_t), err) : NULL;
    if (!perm) {
        mq_scratch_free(keys, n, 8);
        return MQ_ERR;
    }
    int64_t *tmp = perm + n;
    int64_t *ix = outputs[1].data;
    int rc = MQ_OK;
    switch (x->dtype) {
#define TOPK_CASE(DT, T, ISNAN)                                                                    \
    case DT: {                                                                                     \
        const T *xd = x->data;                                                                     \
        T *vd = outputs[0].data, *kd = keys;                                                       \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                for (int64_t j = 0; j < n; j++) {                                                  \
                    kd[j] = xd[(o * n + j) * inner + i];                                           \
                    perm[j] = j;                                                                   \
                }                                                                                  \
                sort_perm_##T(kd, perm, tmp, n, s->largest);                                       \
                for (int64_t j = 0; j < k; j++) {                                                  \
                    vd[(o * k + j) * inner + i] = kd[perm[j]];                                     \
                    ix[(o * k + j) * inner + i] = perm[j];                                         \
                }                                                                                  \
            }                                                                                      \
        break;                                                                                     \
    }
        MISC_NUMERIC_TYPES(TOPK_CASE)
#undef TOPK_CASE
    default:
        rc = type_error(node, "input 'X'", x->dtype, err);
    }
    mq_scratch_free(perm, 2 * n, sizeof(int64_t));
    mq_scratch_free(keys, n, 8);
    return rc;
}

/* ---------------------------------------------------------------- CumSum */

struct cumsum_state {
    int exclusive, reverse;
};

static int cumsum_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct cumsum_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    int64_t exclusive = mq_attr_int(node, "exclusive", 0);
    int64_t reverse = mq_attr_int(node, "reverse", 0);
    if ((exclusive != 0 && exclusive != 1) || (reverse != 0 && reverse != 1))
        return misc_fail(node, err, "attributes 'exclusive' (%lld) and 'reverse' (%lld) must be "
                         "0 or 1", (long long)exclusive, (long long)reverse);
    s->exclusive = (int)exclusive;
    s->reverse = (int)reverse;
    return MQ_OK;
}

static int cumsum_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct cumsum_state *s = node->state;
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, cumsum_run, 0, err);
    const struct mq_tensor *x = inputs[0];
    int64_t axis_value = 0;
    if (n_inputs < 2 || misc_scalar_int(node, inputs[1], "axis", &axis_value, err))
        return MQ_ERR;
    if (x->rank < 1)
        return misc_fail(node, err, "input 'x' must have rank >= 1, it is a scalar");
    int axis;
    if (mq_axis_normalize(node, axis_value, x->rank, &axis, err))
        return MQ_ERR;
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    int64_t n = x->dims[axis];
    int64_t outer = prod_range(x->dims, 0, axis), inner = prod_range(x->dims, axis + 1, x->rank);
    int64_t step = s->reverse ? -inner : inner;
    /* Signed integers accumulate in uint64 so that overflow wraps instead of being undefined. */
    switch (x->dtype) {
#define CUMSUM_CASE(DT, T, ACC)                                                                    \
    case DT: {                                                                                     \
        const T *xd = x->data;                                                                     \
        T *yd = outputs[0].data;                                                                   \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                int64_t at = o * n * inner + i + (s->reverse ? (n - 1) * inner : 0);               \
                ACC acc = 0;                                                                       \
                for (int64_t j = 0; j < n; j++, at += step) {                                      \
                    if (s->exclusive) {                                                            \
                        yd[at] = (T)acc;                                                           \
                        acc += (ACC)xd[at];                                                        \
                    } else {                                                                       \
                        acc += (ACC)xd[at];                                                        \
                        yd[at] = (T)acc;                                                           \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        break;                                                                                     \
    }
        CUMSUM_CASE(MQ_DTYPE_FLOAT, float, double)
        CUMSUM_CASE(MQ_DTYPE_DOUBLE, double, double)
        CUMSUM_CASE(MQ_DTYPE_INT8, int8_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_INT16, int16_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_INT32, int32_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_INT64, int64_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT8, uint8_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT16, uint16_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT32, uint32_t, uint64_t)
        CUMSUM_CASE(MQ_DTYPE_UINT64, uint64_t, uint64_t)
#undef CUMSUM_CASE
    default:
        return type_error(node, "input 'x'", x->dtype, err);
    }
    return MQ_OK;
}

/* ---------------------------------------------------------------- Einsum */

#define EINSUM_LETTERS 52
#define EINSUM_MAX_OPERANDS 64
#define EINSUM_MAX_AXES (MQ_MAX_RANK + EINSUM_LETTERS)

struct einsum_term {
    int n_labels;
    int labels[MQ_MAX_RANK]; /* letter codes: 'A'-'Z' -> 0..25, 'a'-'z' -> 26..51 */
    int ellipsis;            /* index in labels where "..." stands, -1 when absent */
};

struct einsum_state {
    int n_terms;
    struct einsum_term terms[EINSUM_MAX_OPERANDS];
    int explicit_output;
    struct einsum_term output;
};

static int einsum_letter_code(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return 26 + (c - 'a');
    return -1;
}

/* Parses one term of the equation (spaces already removed). */
static int einsum_parse_term(const struct mq_kernel_node *node, const char *s, size_t len,
                             struct einsum_term *t, struct mq_error *err)
{
    t->n_labels = 0;
    t->ellipsis = -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.' || t->ellipsis >= 0)
                return misc_fail(node, err, "equation term '%.*s' has a malformed ellipsis",
                                 (int)len, s);
            t->ellipsis = t->n_labels;
            i += 2;
            continue;
        }
        int code = einsum_letter_code(s[i]);
        if (code < 0)
            return misc_fail(node, err, "equation term '%.*s' has invalid character '%c'",
                             (int)len, s, s[i]);
        if (t->n_labels >= MQ_MAX_RANK)
            return misc_fail(node, err, "equation term '%.*s' has more than %d labels", (int)len,
                             s, MQ_MAX_RANK);
        t->labels[t->n_labels++] = code;
    }
    return MQ_OK;
}

static int einsum_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct einsum_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    const Onnx__AttributeProto *a = mq_attr_find(node, "equation");
    if (!a || !a->has_s)
        return misc_fail(node, err, "attribute 'equation' is required");
    char eq[1024];
    size_t len = 0;
    for (size_t i = 0; i < a->s.len; i++) {
        char c = (char)a->s.data[i];
        if (c == ' ' || c == '\t')
            continue;
        if (len + 1 >= sizeof eq)
            return misc_fail(node, err, "attribute 'equation' is too long");
        eq[len++] = c;
    }
    eq[len] = '\0';
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : len;
    size_t start = 0;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i < lhs_len && eq[i] != ',')
            continue;
        if (s->n_terms >= EINSUM_MAX_OPERANDS)
            return misc_fail(node, err, "equation has more than %d operands", EINSUM_MAX_OPERANDS);
        if (einsum_parse_term(node, eq + start, i - start, &s->terms[s->n_terms], err))
            return MQ_ERR;
        s->n_terms++;
        start = i + 1;
    }
    if (arrow) {
        s->explicit_output = 1;
        if (strstr(arrow + 2, "->"))
            return misc_fail(node, err, "equation '%s' has more than one '->'", eq);
        if (einsum_parse_term(node, arrow + 2, strlen(arrow + 2), &s->output, err))
            return MQ_ERR;
        for (int i = 0; i < s->output.n_labels; i++)
            for (int j = 0; j < i; j++)
                if (s->output.labels[i] == s->output.labels[j])
                    return misc_fail(node, err, "equation '%s': an output label appears twice",
                                     eq);
    }
    if (s->n_terms != node->n_inputs)
        return misc_fail(node, err, "equation '%s' has %d operand terms but the node has %d "
                         "inputs", eq, s->n_terms, node->n_inputs);
    return MQ_OK;
}

/*
 * The contraction as loops: every distinct label (and each broadcast
 * ellipsis dimension) is one axis; output axes index the result, the others
 * are summed.  Each operand reads with per-axis strides, where a label
 * repeated within one operand adds its strides (a diagonal) and a broadcast
 * dimension has stride 0.
 */
struct einsum_plan {
    int n_ops;
    int n_out, n_sum;
    int64_t out_dims[EINSUM_MAX_AXES], sum_dims[EINSUM_MAX_AXES];
    int64_t out_strides[EINSUM_MAX_AXES][EINSUM_MAX_OPERANDS];
    int64_t sum_strides[EINSUM_MAX_AXES][EINSUM_MAX_OPERANDS];
    int64_t sum_count;
};

static int einsum_build(const struct mq_kernel_node *node, const struct einsum_state *s,
                        const struct mq_tensor *const *inputs, struct einsum_plan *p, int *out_rank,
                        int64_t *out_shape, struct mq_error *err)
{
    int ell_rank = 0;
    int ell_of[EINSUM_MAX_OPERANDS];
    for (int k = 0; k < s->n_terms; k++) {
        const struct einsum_term *t = &s->terms[k];
        const struct mq_tensor *x = inputs[k];
        if (!x)
            return misc_fail(node, err, "input %d is missing", k);
        if (t->ellipsis < 0) {
            if (x->rank != t->n_labels)
                return misc_fail(node, err, "input %d has rank %d but its equation term has %d "
                                 "labels", k, x->rank, t->n_labels);
            ell_of[k] = 0;
        } else {
            if (x->rank < t->n_labels)
                return misc_fail(node, err, "input %d has rank %d, fewer than the %d labels of "
                                 "its equation term", k, x->rank, t->n_labels);
            ell_of[k] = x->rank - t->n_labels;
            if (ell_of[k] > ell_rank)
                ell_rank = ell_of[k];
        }
    }
    /* Axes 0..ell_rank-1 are the ellipsis dimensions, then one per letter code. */
    int64_t dims[EINSUM_MAX_AXES];
    int used[EINSUM_MAX_AXES] = {0};
    int letter_count[EINSUM_LETTERS] = {0};
    for (int a = 0; a < EINSUM_MAX_AXES; a++)
        dims[a] = -1;
    for (int e = 0; e < ell_rank; e++)
        dims[e] = 1;
    int64_t strides[EINSUM_MAX_OPERANDS][EINSUM_MAX_AXES];
    memset(strides, 0, sizeof(int64_t) * EINSUM_MAX_AXES * (size_t)s->n_terms);
    for (int k = 0; k < s->n_terms; k++) {
        const struct einsum_term *t = &s->terms[k];
        const struct mq_tensor *x = inputs[k];
        int64_t elem_stride[MQ_MAX_RANK];
        int64_t st = 1;
        for (int d = x->rank - 1; d >= 0; d--) {
            elem_stride[d] = st;
            st *= x->dims[d];
        }
        int d = 0;
        for (int l = 0; l <= t->n_labels; l++) {
            if (l == t->ellipsis) {
                for (int e = 0; e < ell_of[k]; e++, d++) {
                    int axis = ell_rank - ell_of[k] + e;
                    int64_t dim = x->dims[d];
                    if (dim != 1) {
                        if (dims[axis] != 1 && dims[axis] != dim)
                            return misc_fail(node, err, "input %d: ellipsis dimension of size "
                                             "%lld does not broadcast with %lld", k,
                                             (long long)dim, (long long)dims[axis]);
                        dims[axis] = dim;
                        strides[k][axis] += elem_stride[d];
                    }
                    used[axis] = 1;
                }
            }
            if (l == t->n_labels)
                break;
            int axis = ell_rank + t->labels[l];
            int64_t dim = x->dims[d];
            if (dims[axis] >= 0 && dims[axis] != dim)
                return misc_fail(node, err, "label '%c' has size %lld in input %d but %lld "
                                 "elsewhere", t->labels[l] < 26 ? 'A' + t->labels[l]
                                                                : 'a' + t->labels[l] - 26,
                                 (long long)dim, k, (long long)dims[axis]);
            dims[axis] = dim;
            strides[k][axis] += elem_stride[d];
            used[axis] = 1;
            letter_count[t->labels[l]]++;
            d++;
        }
    }
    /* Output axes, in order. */
    int out_axes[EINSUM_MAX_AXES];
    int n_out = 0;
    int in_output[EINSUM_MAX_AXES] = {0};
    if (s->explicit_output) {
        const struct einsum_term *t = &s->output;
        if (t->ellipsis < 0 && ell_rank > 0)
            return misc_fail(node, err, "the inputs' '...' stands for %d dimensions but the "
                             "output has no '...' to hold them", ell_rank);
        for (int l = 0; l <= t->n_labels; l++) {
            if (l == t->ellipsis)
                for (int e = 0; e < ell_rank; e++)
                    out_axes[n_out++] = e;
            if (l == t->n_labels)
                break;
            int axis = ell_rank + t->labels[l];
            if (!used[axis])
                return misc_fail(node, err, "output label '%c' does not appear in any input",
                                 t->labels[l] < 26 ? 'A' + t->labels[l]
                                                   : 'a' + t->labels[l] - 26);
            out_axes[n_out++] = axis;
        }
    } else {
        for (int e = 0; e < ell_rank; e++)
            out_axes[n_out++] = e;
        for (int c = 0; c < EINSUM_LETTERS; c++)
            if (letter_count[c] == 1)
                out_axes[n_out++] = ell_rank + c;
    }
    if (n_out > MQ_MAX_RANK)
        return misc_fail(node, err, "output would have rank %d, more than %d", n_out,
                         MQ_MAX_RANK);
    p->n_ops = s->n_terms;
    p->n_out = n_out;
    for (int i = 0; i < n_out; i++) {
        int axis = out_axes[i];
        in_output[axis] = 1;
        p->out_dims[i] = dims[axis];
        out_shape[i] = dims[axis];
        for (int k = 0; k < p->n_ops; k++)
            p->out_strides[i][k] = strides[k][axis];
    }
    *out_rank = n_out;
    p->n_sum = 0;
    p->sum_count = 1;
    for (int axis = 0; axis < ell_rank + EINSUM_LETTERS; axis++) {
        if (!used[axis] || in_output[axis])
            continue;
        int i = p->n_sum++;
        p->sum_dims[i] = dims[axis];
        p->sum_count *= dims[axis];
        for (int k = 0; k < p->n_ops; k++)
            p->sum_strides[i][k] = strides[k][axis];
    }
    return MQ_OK;
}

/*
 * For every output element: walk the summed axes with an odometer whose
 * innermost axis is a tight loop.  ACC is double for floats and uint64 for
 * integers (wrapping like the integer types themselves).
 */
#define EINSUM_LOOP(T, ACC)                                                                        \
    do {                                                                                           \
        const T *xs[EINSUM_MAX_OPERANDS];                                                          \
        for (int k = 0; k < p->n_ops; k++)                                                         \
            xs[k] = inputs[k]->data;                                                               \
        T *yd = out->data;                                                                         \
        int64_t base[EINSUM_MAX_OPERANDS], off[EINSUM_MAX_OPERANDS];                               \
        int64_t idx[EINSUM_MAX_AXES];                                                              \
        for (int64_t o = 0; o < out->count; o++) {                                                 \
            int64_t rem = o;                                                                       \
            for (int k = 0; k < p->n_ops; k++)                                                     \
                base[k] = 0;                                                                       \
            for (int a = p->n_out - 1; a >= 0; a--) {                                              \
                int64_t i = rem % p->out_dims[a];                                                  \
                rem /= p->out_dims[a];                                                             \
                for (int k = 0; k < p->n_ops; k++)                                                 \
                    base[k] += i * p->out_strides[a][k];                                           \
            }                                                                                      \
            ACC acc = 0;                                                                           \
            if (p->sum_count > 0) {                                                                \
                int last = p->n_sum - 1;                                                           \
                int64_t inner_n = last >= 0 ? p->sum_dims[last] : 1;                               \
                for (int k = 0; k < p->n_ops; k++)                                                 \
                    off[k] = base[k];                                                              \
                for (int a = 0; a < p->n_sum; a++)                                                 \
                    idx[a] = 0;                                                                    \
                for (;;) {                                                                         \
                    if (p->n_ops == 2) {                                                           \
                        const T *xa = xs[0] + off[0], *xb = xs[1] + off[1];                        \
                        int64_t sa = last >= 0 ? p->sum_strides[last][0] : 0;                      \
                        int64_t sb = last >= 0 ? p->sum_strides[last][1] : 0;                      \
                        for (int64_t j = 0; j < inner_n; j++)                                      \
                            acc += (ACC)xa[j * sa] * (ACC)xb[j * sb];                              \
                    } else {                                                                       \
                        for (int64_t j = 0; j < inner_n; j++) {                                    \
                            ACC prod = 1;                                                          \
                            for (int k = 0; k < p->n_ops; k++) {                                   \
                                int64_t sk = last >= 0 ? p->sum_strides[last][k] : 0;              \
                                prod *= (ACC)xs[k][off[k] + j * sk];                               \
                            }                                                                      \
                            acc += prod;                                                           \
                        }                                                                          \
                    }                                                                              \
                    int a = last - 1;                                                              \
                    for (; a >= 0; a--) {                                                          \
                        for (int k = 0; k < p->n_ops; k++)                                         \
                            off[k] += p->sum_strides[a][k];                                        \
                        if (++idx[a] < p->sum_dims[a])                                             \
                            break;                                                                 \
                        for (int k = 0; k < p->n_ops; k++)                                         \
                            off[k] -= p->sum_strides[a][k] * p->sum_dims[a];                       \
                        idx[a] = 0;                                                                \
                    }                                                                              \
                    if (a < 0)                                                                     \
                        break;                                                                     \
                }                                                                                  \
            }                                                                                      \
            yd[o] = (T)acc;                                                                        \
        }                                                                                          \
    } while (0)

static int einsum_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct einsum_state *s = node->state;
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, einsum_run, 0, err);
    if (n_inputs != s->n_terms)
        return misc_fail(node, err, "expected %d inputs, got %d", s->n_terms, n_inputs);
    int dtype = inputs[0] ? inputs[0]->dtype : 0;
    for (int k = 1; k < n_inputs; k++)
        if (inputs[k] && inputs[k]->dtype != dtype)
            return misc_fail(node, err, "input %d has type %s but input 0 has %s", k,
                             mq_dtype_name(inputs[k]->dtype), mq_dtype_name(dtype));
    struct einsum_plan *p = malloc(sizeof *p);
    if (!p)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int out_rank = 0;
    int64_t out_shape[EINSUM_MAX_AXES];
    int rc = einsum_build(node, s, inputs, p, &out_rank, out_shape, err);
    if (!rc)
        rc = mq_tensor_alloc(&outputs[0], dtype, out_rank, out_shape, node->name, err);
    if (!rc) {
        struct mq_tensor *out = &outputs[0];
        switch (dtype) {
        case MQ_DTYPE_FLOAT: EINSUM_LOOP(float, double); break;
        case MQ_DTYPE_DOUBLE: EINSUM_LOOP(double, double); break;
        case MQ_DTYPE_INT8: EINSUM_LOOP(int8_t, uint64_t); break;
        case MQ_DTYPE_INT16: EINSUM_LOOP(int16_t, uint64_t); break;
        case MQ_DTYPE_INT32: EINSUM_LOOP(int32_t, uint64_t); break;
        case MQ_DTYPE_INT64: EINSUM_LOOP(int64_t, uint64_t); break;
        case MQ_DTYPE_UINT8: EINSUM_LOOP(uint8_t, uint64_t); break;
        case MQ_DTYPE_UINT16: EINSUM_LOOP(uint16_t, uint64_t); break;
        case MQ_DTYPE_UINT32: EINSUM_LOOP(uint32_t, uint64_t); break;
        case MQ_DTYPE_UINT64: EINSUM_LOOP(uint64_t, uint64_t); break;
        default:
            rc = type_error(node, "input 0", dtype, err);
        }
    }
    free(p);
    return rc;
}

/* ------------------------------------------------------------------- Det */

static int det_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x = inputs[0];
    if (!mq_dtype_is_float(x->dtype))
        return type_error(node, "input 'X'", x->dtype, err);
    if (x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2])
        return misc_fail(node, err, "input 'X' must have shape [*, M, M], got rank %d", x->rank);
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank - 2, x->dims, node->name, err))
        return MQ_ERR;
    int64_t m = x->dims[x->rank - 1];
    int64_t batch = outputs[0].count;
    double *all = mq_scratch_alloc(node, x->count, sizeof(double), err);
    double *det = all ? mq_scratch_alloc(node, batch, sizeof(double), err) : NULL;
    if (!det) {
        mq_scratch_free(all, x->count, sizeof(double));
        return MQ_ERR;
    }
    mq_as_double_load(x, all);
    /* LU decomposition with partial pivoting, in place, in double precision. */
    for (int64_t b = 0; b < batch; b++) {
        double *a = all + b * m * m;
        double d = 1.0;
        for (int64_t c = 0; c < m; c++) {
            int64_t piv = c;
            for (int64_t r = c + 1; r < m; r++)
                if (fabs(a[r * m + c]) > fabs(a[piv * m + c]))
                    piv = r;
            if (a[piv * m + c] == 0.0) {
                d = 0.0;
                break;
            }
            if (piv != c) {
                for (int64_t j = 0; j < m; j++) {
                    double t = a[c * m + j];
                    a[c * m + j] = a[piv * m + j];
                    a[piv * m + j] = t;
                }
                d = -d;
            }
            double pv = a[c * m + c];
            d *= pv;
            for (int64_t r = c + 1; r < m; r++) {
                double f = a[r * m + c] / pv;
                if (f == 0.0)
                    continue;
                for (int64_t j = c + 1; j < m; j++)
                    a[r * m + j] -= f * a[c * m + j];
            }
        }
        det[b] = d;
    }
    mq_as_double_store(&outputs[0], det);
    mq_scratch_free(det, batch, sizeof(double));
    mq_scratch_free(all, x->count, sizeof(double));
    return MQ_OK;
}

/* ---------------------------------------------------------------- Unique */

struct unique_state {
    int has_axis;
    int64_t axis;
    int sorted;
};

static int unique_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct unique_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    s->has_axis = mq_attr_has(node, "axis");
    s->axis = mq_attr_int(node, "axis", 0);
    int64_t sorted = mq_attr_int(node, "sorted", 1);
    if (sorted != 0 && sorted != 1)
        return misc_fail(node, err, "attribute 'sorted' is %lld, expected 0 or 1",
                         (long long)sorted);
    s->sorted = (int)sorted;
    return MQ_OK;
}

/*
 * Slices j of x along the axis (elements (o, j, i) for every outer o and
 * inner i) compared lexicographically, the order numpy.unique uses.
 */
#define DEFINE_UNIQUE_SORT(DT, T, ISNAN)                                                           \
    static int unique_cmp_##T(const T *x, int64_t outer, int64_t n, int64_t inner, int64_t a,      \
                              int64_t b)                                                           \
    {                                                                                              \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const T *pa = x + (o * n + a) * inner, *pb = x + (o * n + b) * inner;                  \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                if (pa[i] < pb[i])                                                                 \
                    return -1;                                                                     \
                if (pa[i] > pb[i])                                                                 \
                    return 1;                                                                      \
            }                                                                                      \
        }                                                                                          \
        return 0;                                                                                  \
    }                                                                                              \
    static void unique_sort_##T(const T *x, int64_t outer, int64_t n, int64_t inner,               \
                                int64_t *perm, int64_t *tmp, int64_t *group)                       \
    {                                                                                              \
        int64_t *src = perm, *dst = tmp;                                                           \
        for (int64_t width = 1; width < n; width *= 2) {                                           \
            for (int64_t lo = 0; lo < n; lo += 2 * width) {                                        \
                int64_t mid = lo + width < n ? lo + width : n;                                     \
                int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;                              \
                int64_t i = lo, j = mid, o = lo;                                                   \
                while (i < mid && j < hi)                                                          \
                    dst[o++] = unique_cmp_##T(x, outer, n, inner, src[j], src[i]) < 0 ? src[j++]   \
                                                                                    : src[i++];    \
                while (i < mid)                                                                    \
                    dst[o++] = src[i++];                                                           \
                while (j < hi)                                                                     \
                    dst[o++] = src[j++];                                                           \
            }                                                                                      \
            int64_t *swap = src;                                                                   \
            src = dst;                                                                             \
            dst = swap;                                                                            \
        }                                                                                          \
        if (src != perm)                                                                           \
            memcpy(perm, src, (size_t)n * sizeof *perm);                                          \
        for (int64_t r = 0; r < n; r++)                                                            \
            group[r] = r > 0 && unique_cmp_##T(x, outer, n, inner, perm[r - 1], perm[r]) == 0     \
                           ? group[r - 1]                                                          \
                           : r;                                                                    \
    }
MISC_NUMERIC_TYPES(DEFINE_UNIQUE_SORT)

static int unique_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct unique_state *s = node->state;
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, unique_run, 0, err);
    const struct mq_tensor *x = inputs[0];
    int axis = 0;
    int64_t outer = 1, n = x->count, inner = 1;
    if (s->has_axis) {
        if (x->rank < 1)
            return misc_fail(node, err, "attribute 'axis' needs an input of rank >= 1");
        if (mq_axis_normalize(node, s->axis, x->rank, &axis, err))
            return MQ_ERR;
        outer = prod_range(x->dims, 0, axis);
        n = x->dims[axis];
        inner = prod_range(x->dims, axis + 1, x->rank);
    }
    /* Sort slice indices; group[r] = first sorted position of r's run of equal slices. */
    int64_t *buf = mq_scratch_alloc(node, 3 * n, sizeof(int64_t), err);
    if (!buf)
        return MQ_ERR;
    int64_t *perm = buf, *tmp = buf + n, *group = buf + 2 * n;
    for (int64_t j = 0; j < n; j++)
        perm[j] = j;
    int dtype = x->dtype == MQ_DTYPE_BOOL ? MQ_DTYPE_UINT8 : x->dtype;
    switch (dtype) {
#define UNIQUE_CASE(DT, T, ISNAN)                                                                  \
    case DT:                                                                                       \
        unique_sort_##T(x->data, outer, n, inner, perm, tmp, group);                               \
        break;
        MISC_NUMERIC_TYPES(UNIQUE_CASE)
#undef UNIQUE_CASE
    default:
        mq_scratch_free(buf, 3 * n, sizeof(int64_t));
        return type_error(node, "input 'X'", x->dtype, err);
    }
    /*
     * Each run of equal slices becomes one unique entry.  Its first
     * occurrence is the run's first member (the sort is stable).  With
     * sorted=0 the entries are ordered by first occurrence instead.
     */
    int64_t n_unique = 0;
    for (int64_t r = 0; r < n; r++)
        if (group[r] == r)
            n_unique++;
    int64_t *ubuf = mq_scratch_alloc(node, 4 * n_unique + n, sizeof(int64_t), err);
    if (!ubuf) {
        mq_scratch_free(buf, 3 * n, sizeof(int64_t));
        return MQ_ERR;
    }
    int64_t *first = ubuf, *count = ubuf + n_unique, *order = ubuf + 2 * n_unique;
    int64_t *rank_of_run = ubuf + 3 * n_unique, *entry_of = ubuf + 4 * n_unique;
    int64_t u = -1;
    for (int64_t r = 0; r < n; r++) {
        if (group[r] == r) {
            u++;
            first[u] = perm[r];
            count[u] = 0;
        }
        count[u]++;
        entry_of[perm[r]] = u; /* run number for now */
    }
    for (int64_t i = 0; i < n_unique; i++)
        order[i] = i;
    if (!s->sorted) {
        /* first[] values are distinct, so any stable sort gives the same order. */
        int64_t *tmp2 = tmp; /* n >= n_unique entries, free after the sort above */
        sort_perm_int64_t(first, order, tmp2, n_unique, 0);
    }
    for (int64_t i = 0; i < n_unique; i++)
        rank_of_run[order[i]] = i;

    int rc = MQ_OK;
    int64_t ydims[MQ_MAX_RANK];
    int yrank = s->has_axis ? x->rank : 1;
    if (s->has_axis) {
        memcpy(ydims, x->dims, sizeof ydims);
        ydims[axis] = n_unique;
    } else {
        ydims[0] = n_unique;
    }
    int64_t udims[1] = {n_unique}, ndims[1] = {n};
    const int64_t *out_dims[4] = {ydims, udims, ndims, udims};
    for (int i = 0; i < n_outputs && i < 4 && !rc; i++)
        rc = mq_tensor_alloc(&outputs[i], i ? MQ_DTYPE_INT64 : x->dtype, i ? 1 : yrank,
                             out_dims[i], node->name, err);
    if (!rc) {
        size_t esz = mq_dtype_size(x->dtype);
        const char *src = x->data;
        char *dst = outputs[0].data;
        for (int64_t i = 0; i < n_unique; i++) {
            int64_t run = order[i];
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)((o * n_unique + i) * inner) * esz,
                       src + (size_t)((o * n + first[run]) * inner) * esz, (size_t)inner * esz);
            if (n_outputs > 1)
                ((int64_t *)outputs[1].data)[i] = first[run];
            if (n_outputs > 3)
                ((int64_t *)outputs[3].data)[i] = count[run];
        }
        if (n_outputs > 2)
            for (int64_t j = 0; j < n; j++)
                ((int64_t *)outputs[2].data)[j] = rank_of_run[entry_of[j]];
    }
    mq_scratch_free(ubuf, 4 * n_unique + n, sizeof(int64_t));
    mq_scratch_free(buf, 3 * n, sizeof(int64_t));
    return rc;
}

/* ----------------------------------------------------- NonMaxSuppression */

struct nms_state {
    int center_point_box;
};

static int nms_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct nms_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    int64_t c = mq_attr_int(node, "center_point_box", 0);
    if (c != 0 && c != 1)
        return misc_fail(node, err, "attribute 'center_point_box' is %lld, expected 0 or 1",
                         (long long)c);
    s->center_point_box = (int)c;
    return MQ_OK;
}

/* Corners as (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2, whatever the input format. */
static void nms_corners(const float *b, int center, float *c)
{
    if (center) {
        float xc = b[0], yc = b[1], w = b[2], h = b[3];
        c[0] = yc - h / 2;
        c[1] = xc - w / 2;
        c[2] = yc + h / 2;
        c[3] = xc + w / 2;
    } else {
        c[0] = fminf(b[0], b[2]);
        c[1] = fminf(b[1], b[3]);
        c[2] = fmaxf(b[0], b[2]);
        c[3] = fmaxf(b[1], b[3]);
    }
}

static int nms_suppresses(const float *a, const float *b, float iou_threshold)
{
    float ih = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
    float iw = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (ih <= 0 || iw <= 0)
        return 0;
    float inter = ih * iw;
    float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    float uni = area_a + area_b - inter;
    if (area_a <= 0 || area_b <= 0 || uni <= 0)
        return 0;
    return inter / uni > iou_threshold;
}

static int nms_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct nms_state *s = node->state;
    const struct mq_tensor *boxes = inputs[0], *scores = n_inputs > 1 ? inputs[1] : NULL;
    if (!scores)
        return misc_fail(node, err, "input 'scores' is missing");
    if (boxes->dtype != MQ_DTYPE_FLOAT || scores->dtype != MQ_DTYPE_FLOAT)
        return misc_fail(node, err, "inputs 'boxes' and 'scores' must be float32, got %s and %s",
                         mq_dtype_name(boxes->dtype), mq_dtype_name(scores->dtype));
    if (boxes->rank != 3 || boxes->dims[2] != 4)
        return misc_fail(node, err, "input 'boxes' must have shape [batches, boxes, 4]");
    if (scores->rank != 3 || scores->dims[0] != boxes->dims[0] ||
        scores->dims[2] != boxes->dims[1])
        return misc_fail(node, err, "input 'scores' must have shape [batches, classes, boxes] "
                         "matching 'boxes'");
    int64_t max_out = 0;
    double iou = 0.0, score_threshold = 0.0;
    int has_score_threshold = n_inputs > 4 && inputs[4];
    if (n_inputs > 2 && inputs[2] &&
        misc_scalar_int(node, inputs[2], "max_output_boxes_per_class", &max_out, err))
        return MQ_ERR;
    if (n_inputs > 3 && inputs[3] &&
        misc_scalar_float(node, inputs[3], "iou_threshold", &iou, err))
        return MQ_ERR;
    if (has_score_threshold &&
        misc_scalar_float(node, inputs[4], "score_threshold", &score_threshold, err))
        return MQ_ERR;
    if (iou < 0.0 || iou > 1.0)
        return misc_fail(node, err, "iou_threshold is %g, expected a value in [0, 1]", iou);
    int64_t n_batch = boxes->dims[0], n_class = scores->dims[1], n_box = boxes->dims[1];
    if (max_out < 0)
        max_out = 0;
    if (max_out > n_box)
        max_out = n_box;
    int64_t bound = n_batch * n_class * max_out;
    int64_t *sel = mq_scratch_alloc(node, 3 * bound, sizeof(int64_t), err);
    int64_t *perm = sel ? mq_scratch_alloc(node, 3 * n_box, sizeof(int64_t), err) : NULL;
    float *corners = perm ? mq_scratch_alloc(node, 4 * n_box, sizeof(float), err) : NULL;
    if (!corners) {
        mq_scratch_free(perm, 3 * n_box, sizeof(int64_t));
        mq_scratch_free(sel, 3 * bound, sizeof(int64_t));
        return MQ_ERR;
    }
    int64_t *tmp = perm + n_box, *kept = perm + 2 * n_box;
    int64_t n_sel = 0;
    const float *bd = boxes->data, *sd = scores->data;
    for (int64_t b = 0; max_out > 0 && b < n_batch; b++) {
        for (int64_t i = 0; i < n_box; i++)
            nms_corners(bd + (b * n_box + i) * 4, s->center_point_box, corners + i * 4);
        for (int64_t c = 0; c < n_class; c++) {
            const float *cs = sd + (b * n_class + c) * n_box;
            int64_t n_cand = 0;
            for (int64_t i = 0; i < n_box; i++)
                if (!has_score_threshold || cs[i] > (float)score_threshold)
                    perm[n_cand++] = i;
            /* Highest score first; equal scores keep the lower box index first. */
            sort_perm_float(cs, perm, tmp, n_cand, 1);
            int64_t n_kept = 0;
            for (int64_t r = 0; r < n_cand && n_kept < max_out; r++) {
                int64_t i = perm[r];
                int keep = 1;
                for (int64_t q = 0; q < n_kept && keep; q++)
                    if (nms_suppresses(corners + kept[q] * 4, corners + i * 4, (float)iou))
                        keep = 0;
                if (!keep)
                    continue;
                kept[n_kept++] = i;
                sel[n_sel * 3] = b;
                sel[n_sel * 3 + 1] = c;
                sel[n_sel * 3 + 2] = i;
                n_sel++;
            }
        }
    }
    int64_t dims[2] = {n_sel, 3};
    int rc = mq_tensor_alloc(&outputs[0], MQ_DTYPE_INT64, 2, dims, node->name, err);
    if (!rc && n_sel)
        memcpy(outputs[0].data, sel, (size_t)n_sel * 3 * sizeof(int64_t));
    mq_scratch_free(corners, 4 * n_box, sizeof(float));
    mq_scratch_free(perm, 3 * n_box, sizeof(int64_t));
    mq_scratch_free(sel, 3 * bound, sizeof(int64_t));
    return rc;
}

/* --------------------------------------------------------- TfIdfVectorizer */

enum { TFIDF_TF, TFIDF_IDF, TFIDF_TFIDF };
#define TFIDF_MAX_N 64

/*
 * The pool holds the n-grams of each length n as consecutive runs of n
 * ids.  For each length the n-grams are kept sorted (by[n]) so that a
 * candidate n-gram from the input is found by binary search.
 */
struct tfidf_state {
    int mode;
    int64_t min_n, max_n, max_skip;
    int64_t out_size;
    const int64_t *pool;
    int64_t n_pool;
    int64_t *ngram_start;    /* per n-gram: offset in pool */
    int64_t *ngram_out;      /* per n-gram: output index */
    int64_t *len_begin;      /* per length n (1..max_n): first n-gram number */
    int64_t *len_end;
    int64_t *sorted;         /* n-gram numbers, sorted within each length */
    const float *weights;
    int64_t n_ngrams;
};

static void tfidf_destroy(void *p)
{
    struct tfidf_state *s = p;
    if (!s)
        return;
    free(s->ngram_start);
    free(s->ngram_out);
    free(s->len_begin);
    free(s->len_end);
    free(s->sorted);
    free(s);
}

static int tfidf_cmp_ngram(const int64_t *pool, int64_t a_off, const int64_t *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (pool[a_off + i] < b[i])
            return -1;
        if (pool[a_off + i] > b[i])
            return 1;
    }
    return 0;
}

static int tfidf_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct tfidf_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    char buf[16];
    const char *mode = mq_attr_string(node, "mode", NULL, buf, sizeof buf);
    if (!mode)
        return misc_fail(node, err, "attribute 'mode' is required");
    if (strcmp(mode, "TF") == 0)
        s->mode = TFIDF_TF;
    else if (strcmp(mode, "IDF") == 0)
        s->mode = TFIDF_IDF;
    else if (strcmp(mode, "TFIDF") == 0)
        s->mode = TFIDF_TFIDF;
    else
        return misc_fail(node, err, "attribute 'mode' is '%s', expected TF, IDF or TFIDF", mode);
    s->min_n = mq_attr_int(node, "min_gram_length", 0);
    s->max_n = mq_attr_int(node, "max_gram_length", 0);
    s->max_skip = mq_attr_int(node, "max_skip_count", 0);
    if (s->min_n < 1 || s->max_n < s->min_n || s->max_n > TFIDF_MAX_N || s->max_skip < 0)
        return misc_fail(node, err, "need 1 <= min_gram_length (%lld) <= max_gram_length (%lld) "
                         "<= %d and max_skip_count (%lld) >= 0", (long long)s->min_n,
                         (long long)s->max_n, TFIDF_MAX_N, (long long)s->max_skip);
    if (mq_attr_has(node, "pool_strings"))
        return misc_fail(node, err, "string pools ('pool_strings') are not supported: the "
                         "interpreter holds no string tensors");
    const int64_t *counts, *indexes;
    int64_t n_counts = mq_attr_ints(node, "ngram_counts", &counts);
    int64_t n_indexes = mq_attr_ints(node, "ngram_indexes", &indexes);
    s->n_pool = mq_attr_ints(node, "pool_int64s", &s->pool);
    if (n_counts < 0 || n_indexes < 0 || s->n_pool < 0)
        return misc_fail(node, err, "attributes 'ngram_counts', 'ngram_indexes' and "
                         "'pool_int64s' are required");
    if (n_counts < s->max_n)
        return misc_fail(node, err, "attribute 'ngram_counts' has %lld entries, fewer than "
                         "max_gram_length %lld", (long long)n_counts, (long long)s->max_n);
    /* Count the n-grams of each length from the pool layout. */
    s->len_begin = calloc((size_t)n_counts + 1, sizeof(int64_t));
    s->len_end = calloc((size_t)n_counts + 1, sizeof(int64_t));
    if (!s->len_begin || !s->len_end)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int64_t total = 0;
    for (int64_t len = 1; len <= n_counts; len++) {
        int64_t from = counts[len - 1];
        int64_t to = len < n_counts ? counts[len] : s->n_pool;
        if (from < 0 || to < from || to > s->n_pool || (to - from) % len != 0)
            return misc_fail(node, err, "attribute 'ngram_counts' entry %lld (%lld) does not "
                             "split 'pool_int64s' (%lld ids) into %lld-grams",
                             (long long)(len - 1), (long long)from, (long long)s->n_pool,
                             (long long)len);
        s->len_begin[len] = total;
        total += (to - from) / len;
        s->len_end[len] = total;
    }
    if (n_indexes != total)
        return misc_fail(node, err, "attribute 'ngram_indexes' has %lld entries, expected one "
                         "per n-gram in the pool (%lld)", (long long)n_indexes, (long long)total);
    s->n_ngrams = total;
    s->ngram_start = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    s->ngram_out = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    s->sorted = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    if (!s->ngram_start || !s->ngram_out || !s->sorted)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    s->out_size = 0;
    for (int64_t len = 1; len <= n_counts; len++) {
        for (int64_t g = s->len_begin[len]; g < s->len_end[len]; g++) {
            s->ngram_start[g] = counts[len - 1] + (g - s->len_begin[len]) * len;
            s->ngram_out[g] = indexes[g];
            if (indexes[g] < 0)
                return misc_fail(node, err, "attribute 'ngram_indexes' has negative entry %lld",
                                 (long long)indexes[g]);
            if (indexes[g] + 1 > s->out_size)
                s->out_size = indexes[g] + 1;
            /* Insertion into the sorted list of this length (pools are small). */
            int64_t at = g;
            while (at > s->len_begin[len] &&
                   tfidf_cmp_ngram(s->pool, s->ngram_start[s->sorted[at - 1]],
                                   s->pool + s->ngram_start[g], len) > 0) {
                s->sorted[at] = s->sorted[at - 1];
                at--;
            }
            s->sorted[at] = g;
        }
    }
    int64_t n_weights = mq_attr_floats(node, "weights", &s->weights);
    if (n_weights >= 0 && n_weights != total)
        return misc_fail(node, err, "attribute 'weights' has %lld entries, expected %lld",
                         (long long)n_weights, (long long)total);
    if (n_weights < 0)
        s->weights = NULL;
    return MQ_OK;
}

/* The n-gram number of ids[0], ids[step], ... (len ids), or -1 when not in the pool. */
static int64_t tfidf_find(const struct tfidf_state *s, const int64_t *ids, int64_t len)
{
    int64_t lo = s->len_begin[len], hi = s->len_end[len];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = tfidf_cmp_ngram(s->pool, s->ngram_start[s->sorted[mid]], ids, len);
        if (c == 0)
            return s->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int tfidf_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct tfidf_state *s = node->state;
    const struct mq_tensor *x = inputs[0];
    if (x->dtype != MQ_DTYPE_INT32 && x->dtype != MQ_DTYPE_INT64)
        return type_error(node, "input 'X'", x->dtype, err);
    if (x->rank != 1 && x->rank != 2)
        return misc_fail(node, err, "input 'X' must have shape [C] or [N, C], got rank %d",
                         x->rank);
    int64_t rows = x->rank == 2 ? x->dims[0] : 1, cols = x->dims[x->rank - 1];
    int64_t dims[2] = {rows, s->out_size};
    if (x->rank == 1)
        dims[0] = s->out_size;
    if (mq_tensor_alloc(&outputs[0], MQ_DTYPE_FLOAT, x->rank, dims, node->name, err))
        return MQ_ERR;
    int64_t *counts = mq_scratch_alloc(node, s->n_ngrams + cols, sizeof(int64_t), err);
    if (!counts)
        return MQ_ERR;
    int64_t *row = counts + s->n_ngrams;
    float *y = outputs[0].data;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            row[c] = mq_tensor_get_int64(x, r * cols + c);
        memset(counts, 0, sizeof(int64_t) * (size_t)s->n_ngrams);
        int64_t ids[TFIDF_MAX_N];
        for (int64_t len = s->min_n; len <= s->max_n; len++) {
            if (s->len_begin[len] == s->len_end[len])
                continue;
            /* Unigrams have no gaps to skip: count them once. */
            int64_t max_skip = len == 1 ? 0 : s->max_skip;
            for (int64_t skip = 0; skip <= max_skip; skip++) {
                int64_t step = skip + 1;
                for (int64_t start = 0; start + (len - 1) * step < cols; start++) {
                    for (int64_t i = 0; i < len; i++)
                        ids[i] = row[start + i * step];
                    int64_t g = tfidf_find(s, ids, len);
                    if (g >= 0)
                        counts[g]++;
                }
            }
        }
        float *yr = y + r * s->out_size;
        for (int64_t g = 0; g < s->n_ngrams; g++) {
            if (!counts[g])
                continue;
            float w = s->weights ? s->weights[g] : 1.0f;
            float v = s->mode == TFIDF_TF    ? (float)counts[g]
                      : s->mode == TFIDF_IDF ? w
                                             : (float)counts[g] * w;
            yr[s->ngram_out[g]] = v;
        }
    }
    mq_scratch_free(counts, s->n_ngrams + cols, sizeof(int64_t));
    return MQ_OK;
}

const struct mq_kernel mq_kernels_misc[] = {
    /* 1-9: k attribute; 10: K input; 11: largest, sorted, every numeric type. */
    {"", "TopK", 1, 9, topk_prepare, topk_run, free},
    {"", "TopK", 10, 10, topk_prepare, topk_run, free},
    {"", "TopK", 11, 0, topk_prepare, topk_run, free},
    /* 14 added float16 and bfloat16. */
    {"", "CumSum", 11, 13, cumsum_prepare, cumsum_run, free},
    {"", "CumSum", 14, 0, cumsum_prepare, cumsum_run, free},
    {"", "Einsum", 12, 0, einsum_prepare, einsum_run, free},
    {"", "Det", 11, 0, NULL, det_run, NULL},
    {"", "Unique", 11, 0, unique_prepare, unique_run, free},
    /* 11 only clarified the spec; the computation is the same. */
    {"", "NonMaxSuppression", 10, 10, nms_prepare, nms_run, free},
    {"", "NonMaxSuppression", 11, 0, nms_prepare, nms_run, free},
    {"", "TfIdfVectorizer", 9, 0, tfidf_prepare, tfidf_run, tfidf_destroy},
    {0},
};
