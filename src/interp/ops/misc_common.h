/*
 * Helpers shared by misc.c, sorting.c, linalg.c, signal.c and sampling.c:
 * error messages that name the node, element type lists for per-type
 * macros, and validated reads of the small scalar inputs these ops take
 * (K, axis, sizes, thresholds).  Header-only so each family file stays
 * one translation unit.
 */
#ifndef MQ_OPS_MISC_COMMON_H
#define MQ_OPS_MISC_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "interp/kernel.h"
#include "core/tensor.h"
#include "util/error.h"

static inline int misc_fail(const struct mq_kernel_node *node, struct mq_error *err,
                            const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets "node 'NAME' (OP): " + message and returns MQ_ERR. */
static inline int misc_fail(const struct mq_kernel_node *node, struct mq_error *err,
                            const char *fmt, ...)
{
    char msg[MQ_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mq_error_set(err, "node '%s' (%s): %s", node->name, node->op_type, msg);
}

static inline int misc_is_int_dtype(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_INT8: case MQ_DTYPE_INT16: case MQ_DTYPE_INT32: case MQ_DTYPE_INT64:
    case MQ_DTYPE_UINT8: case MQ_DTYPE_UINT16: case MQ_DTYPE_UINT32: case MQ_DTYPE_UINT64:
        return 1;
    default:
        return 0;
    }
}

/* Reads a one-element integer input (a scalar or shape [1]) named `what`. */
static inline int misc_scalar_int(const struct mq_kernel_node *node, const struct mq_tensor *t,
                                  const char *what, int64_t *out, struct mq_error *err)
{
    if (!t)
        return misc_fail(node, err, "input '%s' is missing", what);
    if (!misc_is_int_dtype(t->dtype))
        return misc_fail(node, err, "input '%s' has type %s, expected an integer type", what,
                         mq_dtype_name(t->dtype));
    if (t->count != 1 || t->rank > 1)
        return misc_fail(node, err, "input '%s' must hold exactly one value (a scalar or shape "
                         "[1]), it has %lld", what, (long long)t->count);
    *out = mq_tensor_get_int64(t, 0);
    return MQ_OK;
}

/* Reads a one-element floating-point input named `what`. */
static inline int misc_scalar_float(const struct mq_kernel_node *node, const struct mq_tensor *t,
                                    const char *what, double *out, struct mq_error *err)
{
    if (!t)
        return misc_fail(node, err, "input '%s' is missing", what);
    if (!mq_dtype_is_float(t->dtype) && !misc_is_int_dtype(t->dtype))
        return misc_fail(node, err, "input '%s' has type %s, expected a numeric type", what,
                         mq_dtype_name(t->dtype));
    if (t->count != 1 || t->rank > 1)
        return misc_fail(node, err, "input '%s' must hold exactly one value (a scalar or shape "
                         "[1]), it has %lld", what, (long long)t->count);
    *out = mq_tensor_get_double(t, 0);
    return MQ_OK;
}

/* Element type lists for per-type macros: X(dtype, C type, nan test). */
#define NO_NAN(x) 0
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

/* "WHAT has unsupported element type T", naming the node. */
static inline int misc_type_error(const struct mq_kernel_node *node, const char *what,
                                  int dtype, struct mq_error *err)
{
    return misc_fail(node, err, "%s has unsupported element type %s", what, mq_dtype_name(dtype));
}

#endif
