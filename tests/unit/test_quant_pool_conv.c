/*
 * Quantized AveragePool written as a depthwise Conv (quant/pool_conv.c):
 * which pools qualify (between a DequantizeLinear and a QuantizeLinear only
 * they feed, averages a Conv can compute, a known channel count), the Conv it
 * becomes, and that the model gives the same values.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "quant/op_rules.h"
#include "quant/pool_conv.h"
#include "model_run.h"
#include "quant_builder.h"

static const Onnx__AttributeProto *attr_named(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

/* A scalar uint8 initializer (a zero point). */
static void init_u8(Onnx__GraphProto *g, const char *name, uint8_t v)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    t->has_raw_data = 1;
    t->raw_data.len = 1;
    t->raw_data.data = malloc(1);
    t->raw_data.data[0] = v;
    qb_push((void ***)&g->initializer, &g->n_initializer, t);
}

static const int64_t x_dims[4] = {1, 3, 6, 6};

/* The shape hint: only the dequantized input is known. */
static int shape_of(void *user, const char *name, int64_t *dims)
{
    (void)user;
    if (strcmp(name, "xd") != 0)
        return -1;
    memcpy(dims, x_dims, sizeof x_dims);
    return 4;
}

/* Adds Q -> DQ behind a pool output `y` and the float output `y`_out. */
static void requantize(Onnx__GraphProto *g, const char *y)
{
    char q[32], dq[32], qn[32], dqn[32], out[32];
    snprintf(q, sizeof q, "%s_q", y);
    snprintf(qn, sizeof qn, "%s,ys,yz", y);
    snprintf(dq, sizeof dq, "%s_q,ys,yz", y);
    snprintf(dqn, sizeof dqn, "%s_dequantize", y);
    snprintf(out, sizeof out, "%s_out", y);
    qb_node(g, "QuantizeLinear", q, qn, q);
    qb_node(g, "DequantizeLinear", dqn, dq, out);
    qb_output(g, out, 1);
}

/*
 * Four pools read one dequantized input: a counted-pads 3x3 stride 2 (taken),
 * a ceil_mode one and one whose pads are not counted (both stay), and one whose
 * output a second node reads (stays: nothing fuses it).
 */
static Onnx__ModelProto *pools_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t none[1] = {0};
    float xs = 0.05f, ys = 0.03f;
    int64_t k3[2] = {3, 3}, s2[2] = {2, 2}, p1[4] = {1, 1, 1, 1};
    qb_input(g, "x", 1, 4, x_dims);
    qb_init_f32(g, "xs", 0, none, &xs);
    qb_init_f32(g, "ys", 0, none, &ys);
    init_u8(g, "xz", 128);
    init_u8(g, "yz", 120);
    qb_node(g, "QuantizeLinear", "x_q", "x,xs,xz", "xq");
    qb_node(g, "DequantizeLinear", "x_dq", "xq,xs,xz", "xd");
    Onnx__NodeProto *p = qb_node(g, "AveragePool", "pool", "xd", "y1");
    qb_attr_ints(p, "kernel_shape", 2, k3);
    qb_attr_ints(p, "strides", 2, s2);
    qb_attr_ints(p, "pads", 4, p1);
    qb_attr_int(p, "count_include_pad", 1);
    requantize(g, "y1");
    p = qb_node(g, "AveragePool", "pool_ceil", "xd", "y2");
    qb_attr_ints(p, "kernel_shape", 2, k3);
    qb_attr_ints(p, "strides", 2, s2);
    qb_attr_int(p, "ceil_mode", 1);
    requantize(g, "y2");
    p = qb_node(g, "AveragePool", "pool_uncounted", "xd", "y3");
    qb_attr_ints(p, "kernel_shape", 2, k3);
    qb_attr_ints(p, "pads", 4, p1);
    requantize(g, "y3");
    p = qb_node(g, "AveragePool", "pool_shared", "xd", "y4");
    qb_attr_ints(p, "kernel_shape", 2, k3);
    requantize(g, "y4");
    qb_node(g, "Relu", "relu", "y4", "r4");
    qb_output(g, "r4", 1);
    return m;
}

START_TEST(test_average_pool_rule_asks_for_the_conv)
{
    const struct mq_op_rule *r = mq_op_rule_find("AveragePool");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->int8_as_depthwise_conv, 1);
    /* onnxruntime's QLinearGlobalAveragePool is a vector kernel: it stays */
    ck_assert_int_eq(mq_op_rule_find("GlobalAveragePool")->int8_as_depthwise_conv, 0);
}
END_TEST

START_TEST(test_pool_becomes_depthwise_conv)
{
    Onnx__ModelProto *m = pools_model();
    Onnx__ModelProto *orig = qb_copy_model(m);
    Onnx__GraphProto *g = m->graph;
    ck_assert_int_eq(mq_pool_conv_candidates(m), 1);
    struct mq_opset_hints shapes = {shape_of, NULL};
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_pools_as_depthwise_conv(m, &shapes, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(mq_pool_conv_candidates(m), 0);
    const Onnx__NodeProto *conv = qb_node_named(g, "pool");
    ck_assert_str_eq(conv->op_type, "Conv");
    ck_assert_str_eq(conv->input[0], "xd");
    ck_assert_str_eq(conv->output[0], "y1");
    ck_assert_int_eq(attr_named(conv, "group")->i, 3);
    ck_assert_int_eq((int)attr_named(conv, "pads")->n_ints, 4);
    ck_assert_ptr_null(attr_named(conv, "count_include_pad"));
    ck_assert_str_eq(qb_node_named(g, "pool_ceil")->op_type, "AveragePool");
    ck_assert_str_eq(qb_node_named(g, "pool_uncounted")->op_type, "AveragePool");
    ck_assert_str_eq(qb_node_named(g, "pool_shared")->op_type, "AveragePool");
    /* the weight: int8 ones [3, 1, 3, 3] behind a DequantizeLinear of scale 1/9 */
    const Onnx__NodeProto *wdq = NULL;
    for (size_t i = 0; i < g->n_node; i++)
        if (strcmp(g->node[i]->output[0], conv->input[1]) == 0)
            wdq = g->node[i];
    ck_assert_ptr_nonnull(wdq);
    ck_assert_str_eq(wdq->op_type, "DequantizeLinear");

    float xv[108];
    for (int i = 0; i < 108; i++)
        xv[i] = (float)((i * 37) % 101) / 20.0f - 2.5f;
    struct mq_tensor x = {0};
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, x_dims, "x", &err), MQ_OK);
    memcpy(x.data, xv, sizeof xv);
    /* the same up to the float sum's last bit, which may move a rounding by one step */
    mr_assert_close(m, orig, &x, 1, 5, 0.03f + 1e-6f, 0.0f, "pool");
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* A pool whose input shape nobody knows stays a pool. */
START_TEST(test_unknown_channels_leave_the_pool)
{
    Onnx__ModelProto *m = pools_model();
    struct mq_opset_hints none = {NULL, NULL};
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_pools_as_depthwise_conv(m, &none, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_str_eq(qb_node_named(m->graph, "pool")->op_type, "AveragePool");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_pool_conv");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_average_pool_rule_asks_for_the_conv);
    tcase_add_test(tc, test_pool_becomes_depthwise_conv);
    tcase_add_test(tc, test_unknown_channels_leave_the_pool);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
