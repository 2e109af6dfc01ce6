/* Reading a node's attributes with their defaults. */
#ifndef MQ_ATTR_H
#define MQ_ATTR_H

#include <stddef.h>
#include <stdint.h>

#include "interp/kernel.h"

const Onnx__AttributeProto *mq_attr_find(const struct mq_kernel_node *node, const char *name);
int mq_attr_has(const struct mq_kernel_node *node, const char *name);
int64_t mq_attr_int(const struct mq_kernel_node *node, const char *name, int64_t fallback);
float mq_attr_float(const struct mq_kernel_node *node, const char *name, float fallback);
/*
 * Copies a STRING attribute into buf (NUL-terminated, truncated to size).
 * Returns buf, or `fallback` when the attribute is absent.
 */
const char *mq_attr_string(const struct mq_kernel_node *node, const char *name,
                           const char *fallback, char *buf, size_t size);
/* Points *values at the attribute's ints; returns the count, or -1 when absent. */
int64_t mq_attr_ints(const struct mq_kernel_node *node, const char *name, const int64_t **values);
int64_t mq_attr_floats(const struct mq_kernel_node *node, const char *name, const float **values);
const Onnx__TensorProto *mq_attr_tensor(const struct mq_kernel_node *node, const char *name);

/* Normalises a possibly negative axis into [0, rank); error names the node. */
int mq_axis_normalize(const struct mq_kernel_node *node, int64_t axis, int rank, int *out,
                      struct mq_error *err);

#endif
