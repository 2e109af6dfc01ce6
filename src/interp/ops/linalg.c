/*
 * Matrix and tensor algebra: Einsum, Det (batched LU determinants) and
 * Trilu (the upper or lower triangle of each matrix).
 *
 * Einsum's per-type loops come from a macro instantiated once per element
 * type; float16 and bfloat16 inputs go through mq_widen_run (computed in
 * float32).  Det computes in double.
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
#include "interp/ops/shape_util.h"
#include "interp/ops/widen.h"
#include "core/tensor.h"

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
            rc = misc_type_error(node, "input 0", dtype, err);
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
        return misc_type_error(node, "input 'X'", x->dtype, err);
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

/* ------------------------------------------------------------------ Trilu */

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
    if (ops_copy_reshaped(node, x, x->rank, x->dims, &outputs[0], err))
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

const struct mq_kernel mq_kernels_linalg[] = {
    {"", "Einsum", 12, 0, einsum_prepare, einsum_run, free},
    {"", "Det", 11, 0, NULL, det_run, NULL},
    {"", "Trilu", 14, 0, NULL, trilu_run, NULL},
    {0},
};
