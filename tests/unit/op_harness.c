#include "op_harness.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    ck_assert_ptr_nonnull(p);
    return p;
}

Onnx__NodeProto *oh_node(const char *op_type, int n_in, int n_out)
{
    Onnx__NodeProto *n = xmalloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = xstrdup(op_type);
    n->name = xstrdup("node_under_test");
    n->n_input = (size_t)n_in;
    n->input = xmalloc(sizeof(char *) * (size_t)(n_in + 1));
    for (int i = 0; i < n_in; i++) {
        char name[16];
        snprintf(name, sizeof name, "in%d", i);
        n->input[i] = xstrdup(name);
    }
    n->n_output = (size_t)n_out;
    n->output = xmalloc(sizeof(char *) * (size_t)(n_out + 1));
    for (int i = 0; i < n_out; i++) {
        char name[16];
        snprintf(name, sizeof name, "out%d", i);
        n->output[i] = xstrdup(name);
    }
    return n;
}

void oh_node_free(Onnx__NodeProto *node) { onnx__node_proto__free_unpacked(node, NULL); }

void oh_omit_input(Onnx__NodeProto *node, int i)
{
    ck_assert_int_lt(i, (int)node->n_input);
    free(node->input[i]);
    node->input[i] = xstrdup("");
}

static Onnx__AttributeProto *add_attr(Onnx__NodeProto *node, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto **list =
        realloc(node->attribute, sizeof *list * (node->n_attribute + 1));
    ck_assert_ptr_nonnull(list);
    node->attribute = list;
    Onnx__AttributeProto *a = xmalloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = xstrdup(name);
    a->has_type = 1;
    a->type = type;
    list[node->n_attribute++] = a;
    return a;
}

void oh_attr_int(Onnx__NodeProto *node, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void oh_attr_float(Onnx__NodeProto *node, const char *name, float v)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void oh_attr_string(Onnx__NodeProto *node, const char *name, const char *v)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)xstrdup(v);
}

void oh_attr_strings(Onnx__NodeProto *node, const char *name, int n, const char *const *v)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = (size_t)n;
    a->strings = calloc((size_t)n + 1, sizeof *a->strings);
    ck_assert_ptr_nonnull(a->strings);
    for (int i = 0; i < n; i++) {
        a->strings[i].len = strlen(v[i]);
        a->strings[i].data = (uint8_t *)xstrdup(v[i]);
    }
}

void oh_attr_ints(Onnx__NodeProto *node, const char *name, int n, const int64_t *v)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

void oh_attr_floats(Onnx__NodeProto *node, const char *name, int n, const float *v)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = (size_t)n;
    a->floats = xmalloc(sizeof(float) * (size_t)(n + 1));
    memcpy(a->floats, v, sizeof(float) * (size_t)n);
}

void oh_attr_tensor(Onnx__NodeProto *node, const char *name, const struct mq_tensor *t)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    ck_assert_int_eq(mq_tensor_to_proto(t, name, &a->t, NULL), 0);
}

static Onnx__ValueInfoProto *value_info(const char *name)
{
    Onnx__ValueInfoProto *v = xmalloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = xstrdup(name);
    return v;
}

int oh_run(const Onnx__NodeProto *node, int opset, const struct mq_tensor *inputs, int n_in,
           struct mq_tensor *outputs, int n_out, struct mq_error *err)
{
    /* Copy the node through the wire format, which also checks that it serialises. */
    size_t size = onnx__node_proto__get_packed_size(node);
    uint8_t *bytes = xmalloc(size);
    onnx__node_proto__pack(node, bytes);
    Onnx__NodeProto *copy = onnx__node_proto__unpack(NULL, size, bytes);
    free(bytes);
    ck_assert_ptr_nonnull(copy);

    Onnx__GraphProto *g = xmalloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = xstrdup("op_harness");
    g->n_node = 1;
    g->node = xmalloc(sizeof *g->node);
    g->node[0] = copy;
    g->input = xmalloc(sizeof *g->input * (node->n_input + 1));
    const struct mq_tensor *fed[64];
    int n_fed = 0;
    for (size_t i = 0; i < node->n_input; i++) {
        if (!*mq_str(node->input[i]))
            continue;
        g->input[g->n_input++] = value_info(node->input[i]);
        ck_assert_int_lt((int)i, n_in);
        fed[n_fed++] = &inputs[i];
    }
    g->n_output = node->n_output;
    g->output = xmalloc(sizeof *g->output * (node->n_output + 1));
    for (size_t o = 0; o < node->n_output; o++)
        g->output[o] = value_info(node->output[o]);

    Onnx__ModelProto *m = xmalloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->graph = g;
    m->n_opset_import = 1;
    m->opset_import = xmalloc(sizeof *m->opset_import * 2);
    Onnx__OperatorSetIdProto *op = xmalloc(sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = xstrdup(mq_str(node->domain));
    op->has_version = 1;
    op->version = opset;
    m->opset_import[0] = op;

    size = onnx__model_proto__get_packed_size(m);
    bytes = xmalloc(size);
    onnx__model_proto__pack(m, bytes);
    onnx__model_proto__free_unpacked(m, NULL);
    struct mq_model *model;
    int rc = mq_model_load_buffer(bytes, size, NULL, "op_harness", &model, err);
    free(bytes);
    if (rc)
        return rc;
    struct mq_plan *plan;
    rc = mq_plan_build(model, &plan, err);
    if (rc == 0) {
        struct mq_tensor feed[64];
        for (int i = 0; i < n_fed; i++)
            feed[i] = *fed[i];
        ck_assert_int_eq(n_out, mq_plan_output_count(plan));
        rc = mq_plan_run(plan, feed, n_fed, outputs, n_out, NULL, err);
        mq_plan_free(plan);
    }
    mq_model_free(model);
    return rc;
}

struct mq_tensor oh_typed(int dtype, int rank, const int64_t *dims, const void *values)
{
    struct mq_tensor t;
    struct mq_error err;
    ck_assert_msg(mq_tensor_alloc(&t, dtype, rank, dims, "test", &err) == 0, "%s", err.message);
    if (t.count && values)
        memcpy(t.data, values, (size_t)t.count * mq_dtype_size(dtype));
    return t;
}

struct mq_tensor oh_f32(int rank, const int64_t *dims, const float *v)
{
    return oh_typed(MQ_DTYPE_FLOAT, rank, dims, v);
}
struct mq_tensor oh_i64(int rank, const int64_t *dims, const int64_t *v)
{
    return oh_typed(MQ_DTYPE_INT64, rank, dims, v);
}
struct mq_tensor oh_i32(int rank, const int64_t *dims, const int32_t *v)
{
    return oh_typed(MQ_DTYPE_INT32, rank, dims, v);
}
struct mq_tensor oh_u8(int rank, const int64_t *dims, const uint8_t *v)
{
    return oh_typed(MQ_DTYPE_UINT8, rank, dims, v);
}
struct mq_tensor oh_i8(int rank, const int64_t *dims, const int8_t *v)
{
    return oh_typed(MQ_DTYPE_INT8, rank, dims, v);
}
struct mq_tensor oh_bool(int rank, const int64_t *dims, const uint8_t *v)
{
    return oh_typed(MQ_DTYPE_BOOL, rank, dims, v);
}

void oh_assert_shape(const struct mq_tensor *t, int rank, const int64_t *dims)
{
    ck_assert_int_eq(t->rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_msg(t->dims[i] == dims[i], "dim %d is %lld, expected %lld", i,
                      (long long)t->dims[i], (long long)dims[i]);
}

void oh_assert_f32(const struct mq_tensor *t, int rank, const int64_t *dims, const float *expected,
                   float atol, float rtol)
{
    oh_assert_shape(t, rank, dims);
    ck_assert_int_eq(t->dtype, MQ_DTYPE_FLOAT);
    const float *v = t->data;
    for (int64_t i = 0; i < t->count; i++) {
        if (isnan(expected[i])) {
            ck_assert_msg(isnan(v[i]), "element %lld is %g, expected NaN", (long long)i,
                          (double)v[i]);
            continue;
        }
        float tol = atol + rtol * fabsf(expected[i]);
        ck_assert_msg(fabsf(v[i] - expected[i]) <= tol || v[i] == expected[i],
                      "element %lld is %.9g, expected %.9g", (long long)i, (double)v[i],
                      (double)expected[i]);
    }
}

void oh_assert_i64(const struct mq_tensor *t, int rank, const int64_t *dims, const int64_t *expected)
{
    oh_assert_shape(t, rank, dims);
    for (int64_t i = 0; i < t->count; i++)
        ck_assert_msg(mq_tensor_get_int64(t, i) == expected[i],
                      "element %lld is %lld, expected %lld", (long long)i,
                      (long long)mq_tensor_get_int64(t, i), (long long)expected[i]);
}

void oh_free_all(struct mq_tensor *t, int n)
{
    for (int i = 0; i < n; i++)
        mq_tensor_free(&t[i]);
}

void oh_run_ok(const Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
               struct mq_tensor *out, int n_out)
{
    struct mq_error err = {{0}};
    int rc = oh_run(node, opset, in, n_in, out, n_out, &err);
    ck_assert_msg(rc == 0, "run failed: %s", err.message);
}

const char *oh_run_fails(const Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                         int n_out, struct mq_error *err)
{
    struct mq_tensor out[OH_MAX_OUTPUTS] = {{0}};
    ck_assert_int_le(n_out, OH_MAX_OUTPUTS);
    int rc = oh_run(node, opset, in, n_in, out, n_out, err);
    ck_assert_int_ne(rc, 0);
    oh_free_all(out, n_out);
    return err->message;
}

void oh_run_ok_take_node(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                         struct mq_tensor *out, int n_out)
{
    struct mq_error err = {{0}};
    memset(out, 0, sizeof *out * (size_t)n_out);
    int rc = oh_run(node, opset, in, n_in, out, n_out, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    oh_node_free(node);
}

void oh_run_ok_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                        struct mq_tensor *out, int n_out)
{
    oh_run_ok_take_node(node, opset, in, n_in, out, n_out);
    oh_free_all(in, n_in);
}

struct mq_tensor oh_run1_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in)
{
    struct mq_tensor out;
    oh_run_ok_take_all(node, opset, in, n_in, &out, 1);
    return out;
}

void oh_run_fails_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                           int n_out, const char *needle)
{
    struct mq_error err = {{0}};
    oh_run_fails(node, opset, in, n_in, n_out, &err);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
    oh_free_all(in, n_in);
    oh_node_free(node);
}

void oh_expect_error_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                              const char *needle)
{
    struct mq_error err = {{0}};
    oh_run_fails(node, opset, in, n_in, (int)node->n_output, &err);
    ck_assert_msg(strstr(err.message, "node_under_test") && strstr(err.message, node->op_type) &&
                      strstr(err.message, needle),
                  "unexpected message: %s", err.message);
    oh_free_all(in, n_in);
    oh_node_free(node);
}

struct mq_tensor oh_iota_f32(int rank, const int64_t *dims)
{
    struct mq_tensor t = oh_f32(rank, dims, NULL);
    float *v = t.data;
    for (int64_t i = 0; i < t.count; i++)
        v[i] = (float)i;
    return t;
}

struct mq_tensor oh_iota_i64(int rank, const int64_t *dims)
{
    struct mq_tensor t = oh_i64(rank, dims, NULL);
    int64_t *v = t.data;
    for (int64_t i = 0; i < t.count; i++)
        v[i] = i;
    return t;
}

float oh_rnd(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

struct mq_tensor oh_random_f32(uint32_t *state, int rank, const int64_t *dims)
{
    struct mq_tensor t = oh_f32(rank, dims, NULL);
    float *v = t.data;
    for (int64_t i = 0; i < t.count; i++)
        v[i] = oh_rnd(state);
    return t;
}
