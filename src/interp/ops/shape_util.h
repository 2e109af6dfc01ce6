/*
 * Small helpers shared by the data-movement kernels (reshape_views.c,
 * layout.c, pad.c, selection.c, copy_ops.c, generators.c, gather_scatter.c,
 * resize.c, cast.c, ...): error messages that name the node, access to
 * optional inputs, validated reads of shape-like inputs and attributes.
 * Header-only so that each family file stays a single translation unit.
 */
#ifndef MQ_OPS_SHAPE_UTIL_H
#define MQ_OPS_SHAPE_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/cast.h"
#include "interp/ops/scratch.h"
#include "core/tensor.h"
#include "util/error.h"

static inline int ops_fail(const struct mq_kernel_node *node, struct mq_error *err,
                           const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets "node 'NAME' (OP): " + message and returns MQ_ERR. */
static inline int ops_fail(const struct mq_kernel_node *node, struct mq_error *err,
                           const char *fmt, ...)
{
    char msg[MQ_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mq_error_set(err, "node '%s' (%s): %s", node->name, node->op_type, msg);
    /* A literal, so the compiler sees that out-parameters are set whenever 0 comes back. */
    return MQ_ERR;
}

/* The name of input i as the node writes it, for messages. */
static inline const char *ops_input_name(const struct mq_kernel_node *node, int i)
{
    if (i < 0 || (size_t)i >= node->proto->n_input)
        return "";
    return mq_str(node->proto->input[i]);
}

/* Input i, or NULL when absent (omitted, "" or beyond the node's list). */
static inline const struct mq_tensor *ops_input(const struct mq_tensor *const *inputs,
                                                int n_inputs, int i)
{
    return i < n_inputs ? inputs[i] : NULL;
}

/* A present input whose element type the interpreter can hold. */
static inline int ops_require(const struct mq_kernel_node *node,
                              const struct mq_tensor *const *inputs, int n_inputs, int i,
                              const struct mq_tensor **out, struct mq_error *err)
{
    const struct mq_tensor *t = ops_input(inputs, n_inputs, i);
    *out = t;
    if (!t)
        return ops_fail(node, err, "required input %d is missing", i);
    if (mq_dtype_size(t->dtype) == 0)
        return ops_fail(node, err, "input '%s' has element type %s, which is not supported",
                        ops_input_name(node, i), mq_dtype_name(t->dtype));
    return MQ_OK;
}

/* Allocates an output; an allocation failure names the node. */
static inline int ops_alloc(const struct mq_kernel_node *node, struct mq_tensor *out, int dtype,
                            int rank, const int64_t *dims, struct mq_error *err)
{
    char what[256];
    snprintf(what, sizeof what, "node '%s' (%s)", node->name, node->op_type);
    return mq_tensor_alloc(out, dtype, rank, dims, what, err);
}

/* ops_alloc without the zero fill, for kernels that write every output element. */
static inline int ops_alloc_uninit(const struct mq_kernel_node *node, struct mq_tensor *out,
                                   int dtype, int rank, const int64_t *dims, struct mq_error *err)
{
    char what[256];
    snprintf(what, sizeof what, "node '%s' (%s)", node->name, node->op_type);
    return mq_tensor_alloc_uninit(out, dtype, rank, dims, what, err);
}

static inline int ops_is_integer_dtype(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_INT8: case MQ_DTYPE_UINT8: case MQ_DTYPE_INT16: case MQ_DTYPE_UINT16:
    case MQ_DTYPE_INT32: case MQ_DTYPE_UINT32: case MQ_DTYPE_INT64: case MQ_DTYPE_UINT64:
        return 1;
    default:
        return 0;
    }
}

/*
 * Reads a shape-like input (a scalar or 1-D integer tensor) into out[0..max).
 * *n receives the count.  Non-integer tensors, rank > 1 and more than `max`
 * values are errors that name the input.
 */
static inline int ops_read_ints(const struct mq_kernel_node *node, const struct mq_tensor *t,
                                int index, int64_t *out, int max, int *n, struct mq_error *err)
{
    *n = 0;
    if (!ops_is_integer_dtype(t->dtype))
        return ops_fail(node, err, "input '%s' must be an integer tensor, got %s",
                        ops_input_name(node, index), mq_dtype_name(t->dtype));
    if (t->rank > 1)
        return ops_fail(node, err, "input '%s' must be 1-D, got rank %d",
                        ops_input_name(node, index), t->rank);
    if (t->count > max)
        return ops_fail(node, err, "input '%s' has %lld values, at most %d are allowed",
                        ops_input_name(node, index), (long long)t->count, max);
    for (int64_t i = 0; i < t->count; i++)
        out[i] = mq_tensor_get_int64(t, i);
    *n = (int)t->count;
    return MQ_OK;
}

/* Reads a single integer from a scalar or one-element tensor. */
static inline int ops_read_scalar_int(const struct mq_kernel_node *node, const struct mq_tensor *t,
                                      int index, int64_t *out, struct mq_error *err)
{
    *out = 0;
    if (t->count != 1 || t->rank > 1)
        return ops_fail(node, err, "input '%s' must be a scalar, got %lld values",
                        ops_input_name(node, index), (long long)t->count);
    if (!ops_is_integer_dtype(t->dtype) && !mq_dtype_is_float(t->dtype) &&
        t->dtype != MQ_DTYPE_BOOL)
        return ops_fail(node, err, "input '%s' has unsupported type %s",
                        ops_input_name(node, index), mq_dtype_name(t->dtype));
    *out = mq_tensor_get_int64(t, 0);
    return MQ_OK;
}

/* Normalises axes (possibly negative) against rank and refuses duplicates. */
static inline int ops_normalize_axes(const struct mq_kernel_node *node, const int64_t *axes,
                                     int n, int rank, int *out, struct mq_error *err)
{
    int seen[MQ_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank)
            return ops_fail(node, err, "axis %lld is outside [-%d, %d)", (long long)axes[i],
                            rank, rank);
        if (seen[a])
            return ops_fail(node, err, "axis %lld appears more than once", (long long)axes[i]);
        seen[a] = 1;
        out[i] = (int)a;
    }
    return MQ_OK;
}

/* Row-major element strides of a shape. */
static inline void ops_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

/* The product of dims[from..to). */
static inline int64_t ops_product(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

/* The value v in element type dtype, as bytes (out holds at least 16). */
static inline int ops_scalar_bytes(const struct mq_kernel_node *node, int dtype, double v,
                                   void *out, struct mq_error *err)
{
    if (mq_cast_elements(out, dtype, &v, MQ_DTYPE_DOUBLE, 1))
        return ops_fail(node, err, "element type %s is not supported", mq_dtype_name(dtype));
    return MQ_OK;
}

/* Copies x into a fresh output of the given shape (same element count). */
static inline int ops_copy_reshaped(const struct mq_kernel_node *node, const struct mq_tensor *x,
                                    int rank, const int64_t *dims, struct mq_tensor *out,
                                    struct mq_error *err)
{
    if (ops_alloc_uninit(node, out, x->dtype, rank, dims, err))
        return MQ_ERR;
    if (x->count > 0)
        memcpy(out->data, x->data, (size_t)x->count * mq_dtype_size(x->dtype));
    return MQ_OK;
}

/* A zeroed kernel state of `size` bytes; NULL with err filled when out of memory. */
static inline void *ops_alloc_state(const struct mq_kernel_node *node, size_t size,
                                    struct mq_error *err)
{
    void *st = calloc(1, size);
    if (!st)
        ops_fail(node, err, "out of memory");
    return st;
}

/* Copies an INTS attribute (at most max values); *n = -1 when absent (or on error). */
static inline int ops_attr_ints(const struct mq_kernel_node *node, const char *name,
                                int64_t *out, int max, int *n, struct mq_error *err)
{
    *n = -1;
    const int64_t *v;
    int64_t count = mq_attr_ints(node, name, &v);
    if (count < 0)
        return MQ_OK;
    if (count > max)
        return ops_fail(node, err, "attribute '%s' has %lld values, at most %d are allowed", name,
                        (long long)count, max);
    for (int64_t i = 0; i < count; i++)
        out[i] = v[i];
    *n = (int)count;
    return MQ_OK;
}

enum { OPS_SCRATCH_HEADER = 16 };

/*
 * Scratch counted against the memory cap (scratch.h) that remembers its own
 * size, so callers free it without carrying the count around.  The header
 * keeps malloc's 16-byte alignment.  NULL with err filled on failure.
 */
static inline void *ops_scratch(const struct mq_kernel_node *node, int64_t count, size_t elem,
                                struct mq_error *err)
{
    if (count < 0 || elem == 0 || (uint64_t)count > (UINT64_MAX / 4) / elem) {
        ops_fail(node, err, "scratch buffer of %lld elements is too large", (long long)count);
        return NULL;
    }
    int64_t bytes = count * (int64_t)elem + OPS_SCRATCH_HEADER;
    char *p = mq_scratch_alloc(node, bytes, 1, err);
    if (!p)
        return NULL;
    memcpy(p, &bytes, sizeof bytes);
    return p + OPS_SCRATCH_HEADER;
}

static inline void ops_scratch_free(void *p)
{
    if (!p)
        return;
    char *base = (char *)p - OPS_SCRATCH_HEADER;
    int64_t bytes;
    memcpy(&bytes, base, sizeof bytes);
    mq_scratch_free(base, bytes, 1);
}

static inline const char *ops_shape(const struct mq_tensor *t, char *buf, size_t size)
{
    return mq_shape_format(t->rank, t->dims, buf, size);
}

#endif
