/*
 * Small operators of opsets 22-28 that fit no larger family file: BitCast (reinterpret the
 * bytes of each element as another type of the same width), SwiGLU (a * sigmoid(alpha * a) * b)
 * and LpNormalization (x divided by its L1 or L2 norm along an axis).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"

static int bitcast_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                       const struct mq_tensor *const *inputs, int n_inputs,
                       struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int64_t to = mq_attr_int(node, "to", 0);
    size_t size = to > 0 && to < 64 ? mq_dtype_size((int)to) : 0;
    if (size == 0 || to == MQ_DTYPE_STRING)
        return ops_fail(node, err, "attribute 'to' = %lld is not a type the interpreter holds",
                        (long long)to);
    if (size != mq_dtype_size(x->dtype))
        return ops_fail(node, err, "%s and %s differ in width", mq_dtype_name(x->dtype),
                        mq_dtype_name((int)to));
    if (ops_alloc_uninit(node, &outputs[0], (int)to, x->rank, x->dims, err))
        return MQ_ERR;
    if (x->count)
        memcpy(outputs[0].data, x->data, (size_t)x->count * size);
    if (to == MQ_DTYPE_BOOL) /* bool holds 0 or 1 only */
        for (int64_t i = 0; i < x->count; i++)
            ((uint8_t *)outputs[0].data)[i] = ((uint8_t *)outputs[0].data)[i] != 0;
    return MQ_OK;
}

static int store_like(const struct mq_kernel_node *node, const struct mq_tensor *like,
                      struct mq_tensor *out, double *y, struct mq_error *err)
{
    int rc = ops_alloc_uninit(node, out, like->dtype, like->rank, like->dims, err);
    if (rc == MQ_OK)
        mq_as_double_store(out, y);
    free(y);
    return rc;
}

static int swiglu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *a, *b;
    if (ops_require(node, inputs, n_inputs, 0, &a, err) ||
        ops_require(node, inputs, n_inputs, 1, &b, err))
        return MQ_ERR;
    if (!mq_shape_equal(a, b) || a->dtype != b->dtype)
        return ops_fail(node, err, "inputs must have the same shape and type");
    double alpha = mq_attr_float(node, "alpha", 1.0f);
    double *av = mq_as_double_copy(a), *bv = mq_as_double_copy(b);
    if (!av || !bv) {
        free(av), free(bv);
        return ops_fail(node, err, "out of memory or unsupported type %s",
                        mq_dtype_name(a->dtype));
    }
    for (int64_t i = 0; i < a->count; i++)
        av[i] = av[i] / (1.0 + exp(-alpha * av[i])) * bv[i];
    free(bv);
    return store_like(node, a, &outputs[0], av, err);
}

static int lpnorm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    int64_t p = mq_attr_int(node, "p", 2);
    if (p != 1 && p != 2)
        return ops_fail(node, err, "p = %lld; only 1 and 2 are defined", (long long)p);
    int axis;
    if (mq_axis_normalize(node, mq_attr_int(node, "axis", -1), x->rank, &axis, err))
        return MQ_ERR;
    int64_t n = x->dims[axis], outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= x->dims[k];
    for (int k = axis + 1; k < x->rank; k++)
        inner *= x->dims[k];
    double *v = mq_as_double_copy(x);
    if (!v)
        return ops_fail(node, err, "out of memory or unsupported type %s",
                        mq_dtype_name(x->dtype));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double norm = 0;
            for (int64_t j = 0; j < n; j++) {
                double e = v[(o * n + j) * inner + i];
                norm += p == 1 ? fabs(e) : e * e;
            }
            if (p == 2)
                norm = sqrt(norm);
            for (int64_t j = 0; j < n; j++) /* a zero vector stays zero */
                v[(o * n + j) * inner + i] = norm > 0 ? v[(o * n + j) * inner + i] / norm : 0.0;
        }
    return store_like(node, x, &outputs[0], v, err);
}

const struct mq_kernel mq_kernels_opset24_simple[] = {
    {"", "BitCast", 26, 0, NULL, bitcast_run, NULL},
    {"", "SwiGLU", 28, 0, NULL, swiglu_run, NULL},
    {"", "LpNormalization", 1, 0, NULL, lpnorm_run, NULL},
    {0},
};
