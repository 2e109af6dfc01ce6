/* Reading a node's attributes with their defaults (see attr.h). */
#include "interp/attr.h"

#include <string.h>

const Onnx__AttributeProto *mq_attr_find(const struct mq_kernel_node *node, const char *name)
{
    const Onnx__NodeProto *p = node->proto;
    for (size_t i = 0; i < p->n_attribute; i++) {
        const Onnx__AttributeProto *a = p->attribute[i];
        if (a->name && strcmp(a->name, name) == 0)
            return a;
    }
    return NULL;
}

int mq_attr_has(const struct mq_kernel_node *node, const char *name)
{
    return mq_attr_find(node, name) != NULL;
}

int64_t mq_attr_int(const struct mq_kernel_node *node, const char *name, int64_t fallback)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, name);
    if (!a)
        return fallback;
    if (a->has_i)
        return a->i;
    if (a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return 0;
    return fallback;
}

float mq_attr_float(const struct mq_kernel_node *node, const char *name, float fallback)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, name);
    if (!a)
        return fallback;
    if (a->has_f)
        return a->f;
    /* Attributes whose value equals the proto default are still present with type FLOAT. */
    if (a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return 0.0f;
    return fallback;
}

const char *mq_attr_string(const struct mq_kernel_node *node, const char *name,
                           const char *fallback, char *buf, size_t size)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, name);
    if (!a || !a->has_s || size == 0)
        return fallback;
    size_t n = a->s.len < size - 1 ? a->s.len : size - 1;
    if (n)
        memcpy(buf, a->s.data, n);
    buf[n] = '\0';
    return buf;
}

int64_t mq_attr_ints(const struct mq_kernel_node *node, const char *name, const int64_t **values)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, name);
    if (!a)
        return -1;
    *values = a->ints;
    return (int64_t)a->n_ints;
}

int64_t mq_attr_floats(const struct mq_kernel_node *node, const char *name, const float **values)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, name);
    if (!a)
        return -1;
    *values = a->floats;
    return (int64_t)a->n_floats;
}

const Onnx__TensorProto *mq_attr_tensor(const struct mq_kernel_node *node, const char *name)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, name);
    return a ? a->t : NULL;
}

int mq_axis_normalize(const struct mq_kernel_node *node, int64_t axis, int rank, int *out,
                      struct mq_error *err)
{
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= (rank > 0 ? rank : 1))
        return mq_error_set(err, "node '%s' (%s): axis %lld is outside [-%d, %d)", node->name,
                            node->op_type, (long long)axis, rank, rank);
    *out = (int)a;
    return MQ_OK;
}
