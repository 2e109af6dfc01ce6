/*
 * Softmax, LogSoftmax and Hardmax.
 *
 * Before opset 13 the input is coerced to 2-D at `axis` (default 1) and the
 * operator runs over the whole second dimension; from opset 13 it runs along
 * the single axis `axis` (default -1).  Both become the same loop over an
 * [outer, n, inner] view: the legacy form is the case inner = 1.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"

enum softmax_kind { SOFTMAX, LOG_SOFTMAX, HARDMAX };

struct softmax_state {
    enum softmax_kind kind;
    int64_t axis;
    int legacy; /* opset < 13: coerce to 2-D */
};

static int softmax_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct softmax_state *st = calloc(1, sizeof *st);
    if (!st)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    if (strcmp(node->op_type, "LogSoftmax") == 0)
        st->kind = LOG_SOFTMAX;
    else if (strcmp(node->op_type, "Hardmax") == 0)
        st->kind = HARDMAX;
    else
        st->kind = SOFTMAX;
    st->legacy = node->opset < 13;
    st->axis = mq_attr_int(node, "axis", st->legacy ? 1 : -1);
    node->state = st;
    return MQ_OK;
}

static void softmax_destroy(void *state) { free(state); }

/*
 * One body for float and double.  Each (outer, inner) pair is a vector of n
 * elements `inner` apart.  The maximum is subtracted before exp so large
 * logits do not overflow; the sum is kept in double.
 */
#define SOFTMAX_BODY(T, EXP)                                                              \
    do {                                                                                       \
        const T *x = in;                                                                       \
        T *y = out;                                                                            \
        for (int64_t o = 0; o < outer; o++) {                                                  \
            for (int64_t j = 0; j < inner; j++) {                                              \
                const int64_t base = o * n * inner + j;                                        \
                T m = x[base];                                                                 \
                int64_t arg = 0;                                                               \
                for (int64_t k = 1; k < n; k++) {                                              \
                    T v = x[base + k * inner];                                                 \
                    if (v > m) {                                                               \
                        m = v;                                                                 \
                        arg = k;                                                               \
                    }                                                                          \
                }                                                                              \
                if (kind == HARDMAX) {                                                         \
                    for (int64_t k = 0; k < n; k++)                                            \
                        y[base + k * inner] = k == arg ? (T)1 : (T)0;                          \
                    continue;                                                                  \
                }                                                                              \
                double sum = 0;                                                                \
                for (int64_t k = 0; k < n; k++) {                                              \
                    T e = EXP(x[base + k * inner] - m);                                        \
                    if (kind == SOFTMAX)                                                       \
                        y[base + k * inner] = e;                                               \
                    sum += e;                                                                  \
                }                                                                              \
                if (kind == SOFTMAX) {                                                         \
                    T scale = (T)(1.0 / sum);                                                  \
                    for (int64_t k = 0; k < n; k++)                                            \
                        y[base + k * inner] *= scale;                                          \
                } else {                                                                       \
                    T shift = m + (T)log(sum);                                                 \
                    for (int64_t k = 0; k < n; k++)                                            \
                        y[base + k * inner] = x[base + k * inner] - shift;                     \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static void softmax_float(enum softmax_kind kind, const float *in, float *out, int64_t outer,
                          int64_t n, int64_t inner)
{
    SOFTMAX_BODY(float, expf);
}

static void softmax_double(enum softmax_kind kind, const double *in, double *out, int64_t outer,
                           int64_t n, int64_t inner)
{
    SOFTMAX_BODY(double, exp);
}

static int softmax_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                       const struct mq_tensor *const *inputs, int n_inputs,
                       struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct softmax_state *st = node->state;
    if (n_inputs < 1 || !inputs[0])
        return mq_error_set(err, "node '%s' (%s): input 0 is missing", node->name,
                            node->op_type);
    const struct mq_tensor *x = inputs[0];
    int dtype = x->dtype;
    if (!mq_dtype_is_float(dtype))
        return mq_error_set(err, "node '%s' (%s): element type %s is not supported",
                            node->name, node->op_type, mq_dtype_name(dtype));
    int rank = x->rank;
    int axis;
    int64_t outer = 1, n = 1, inner = 1;
    if (st->legacy) {
        /* axis == rank is allowed here: every row then holds a single element. */
        int64_t a = st->axis < 0 ? st->axis + rank : st->axis;
        if (a < 0 || a > rank)
            return mq_error_set(err, "node '%s' (%s): axis %lld is out of range for rank %d",
                                node->name, node->op_type, (long long)st->axis, rank);
        axis = (int)a;
        for (int d = 0; d < rank; d++) {
            if (d < axis)
                outer *= x->dims[d];
            else
                n *= x->dims[d];
        }
    } else {
        if (mq_axis_normalize(node, st->axis, rank, &axis, err))
            return MQ_ERR;
        for (int d = 0; d < rank; d++) {
            if (d < axis)
                outer *= x->dims[d];
            else if (d == axis)
                n = x->dims[d];
            else
                inner *= x->dims[d];
        }
    }
    if (mq_tensor_alloc(&outputs[0], dtype, rank, x->dims, node->name, err))
        return MQ_ERR;
    int64_t count = x->count;
    if (count == 0)
        return MQ_OK;
    if (dtype == MQ_DTYPE_FLOAT) {
        softmax_float(st->kind, x->data, outputs[0].data, outer, n, inner);
        return MQ_OK;
    }
    if (dtype == MQ_DTYPE_DOUBLE) {
        softmax_double(st->kind, x->data, outputs[0].data, outer, n, inner);
        return MQ_OK;
    }
    /* float16 / bfloat16: compute in float32 on a widened copy. */
    struct mq_tensor tmp;
    if (mq_tensor_alloc(&tmp, MQ_DTYPE_FLOAT, rank, x->dims, node->name, err)) {
        mq_tensor_free(&outputs[0]);
        return MQ_ERR;
    }
    const uint16_t *h = x->data;
    uint16_t *o = outputs[0].data;
    float *f = tmp.data;
    int is_bf16 = dtype == MQ_DTYPE_BFLOAT16;
    for (int64_t i = 0; i < count; i++)
        f[i] = is_bf16 ? mq_bfloat16_to_float(h[i]) : mq_half_to_float(h[i]);
    softmax_float(st->kind, f, f, outer, n, inner);
    for (int64_t i = 0; i < count; i++)
        o[i] = is_bf16 ? mq_float_to_bfloat16(f[i]) : mq_float_to_half(f[i]);
    mq_tensor_free(&tmp);
    return MQ_OK;
}

#define S(op, since, until) {"", op, since, until, softmax_prepare, softmax_run, softmax_destroy}

const struct mq_kernel mq_kernels_softmax[] = {
    S("Softmax", 1, 10), S("Softmax", 11, 12), S("Softmax", 13, 0),
    S("LogSoftmax", 1, 10), S("LogSoftmax", 11, 12), S("LogSoftmax", 13, 0),
    S("Hardmax", 1, 10), S("Hardmax", 11, 12), S("Hardmax", 13, 0),
    {0},
};
