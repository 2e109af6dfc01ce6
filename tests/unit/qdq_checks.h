/*
 * What the QDQ rewrite's unit suites (test_quant_qdq*.c) share: the Conv
 * weights their small graphs use, and checks on a rewritten graph (model
 * metadata, initializer values by name, a node's op, inputs and output).
 * Included by test files only; static inline so each file takes what it uses.
 */
#ifndef MQ_TEST_QDQ_CHECKS_H
#define MQ_TEST_QDQ_CHECKS_H

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "core/tensor.h"
#include "model/tensor_proto.h"
#include "onnx.pb-c.h"

/* Two 3x3 filters on one channel, and their biases. */
static const float conv_w[18] = {0.5f, -0.25f, 0.1f, 0.2f, 0.3f, -0.4f, 0.05f, 0.6f, -0.1f,
                                 -1.0f, 0.8f, 0.2f, 0.1f, -0.3f, 0.25f, 0.4f, 0.0f, 0.9f};
static const float conv_b[2] = {0.1f, -0.2f};

/* The value of a model metadata entry, NULL when absent. */
static inline const char *metadata(const Onnx__ModelProto *m, const char *key)
{
    for (size_t i = 0; i < m->n_metadata_props; i++)
        if (strcmp(m->metadata_props[i]->key, key) == 0)
            return m->metadata_props[i]->value;
    return NULL;
}

/* The initializer of g named `name`, NULL when none. */
static inline Onnx__TensorProto *init_named(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

/* The initializer `name` of g decoded (it must exist); mq_tensor_free it. */
static inline struct mq_tensor decode(const Onnx__GraphProto *g, const char *name)
{
    Onnx__TensorProto *t = init_named(g, name);
    ck_assert_msg(t != NULL, "no initializer '%s'", name);
    struct mq_tensor out;
    struct mq_error err;
    memset(&out, 0, sizeof out);
    ck_assert_msg(mq_tensor_from_proto(t, name, &out, &err) == MQ_OK, "%s", err.message);
    return out;
}

/* Element i of the float initializer `name`; int_at: of any integer one. */
static inline float f32_at(const Onnx__GraphProto *g, const char *name, int i)
{
    struct mq_tensor t = decode(g, name);
    ck_assert_int_eq(t.dtype, MQ_DTYPE_FLOAT);
    float v = ((float *)t.data)[i];
    mq_tensor_free(&t);
    return v;
}

static inline int64_t int_at(const Onnx__GraphProto *g, const char *name, int i)
{
    struct mq_tensor t = decode(g, name);
    int64_t v = mq_tensor_get_int64(&t, i);
    mq_tensor_free(&t);
    return v;
}

/* n is an `op` reading exactly `ins` ("a,b,c") and writing `out` first. */
static inline void assert_io(const Onnx__NodeProto *n, const char *op, const char *ins,
                             const char *out)
{
    ck_assert_ptr_nonnull(n);
    ck_assert_str_eq(n->op_type, op);
    char buf[512] = "";
    for (size_t i = 0; i < n->n_input; i++) {
        strcat(buf, i ? "," : "");
        strcat(buf, n->input[i]);
    }
    ck_assert_str_eq(buf, ins);
    ck_assert_str_eq(n->output[0], out);
}

/* A float tensor of the given shape holding v. */
static inline struct mq_tensor tensor_f32(int rank, const int64_t *dims, const float *v)
{
    struct mq_tensor t;
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, rank, dims, "t", &err), MQ_OK);
    memcpy(t.data, v, (size_t)t.count * sizeof *v);
    return t;
}

#endif
