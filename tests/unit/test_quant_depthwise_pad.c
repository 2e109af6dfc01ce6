/*
 * Depthwise Convs widened with zero channels to the count onnxruntime's fast
 * int8 depthwise kernel takes (quant/depthwise_pad.c): which ones (between
 * two group-1 Convs, through activations that keep 0), what grows, and that
 * the outputs stay the same.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "quant/depthwise_pad.h"
#include "quant/op_rules.h"
#include "model_run.h"
#include "quant_builder.h"

static const Onnx__TensorProto *init_named(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

static long long group_of(const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, "group") == 0)
            return n->attribute[i]->i;
    return 1;
}

static void fill(float *v, int n, int seed)
{
    for (int i = 0; i < n; i++)
        v[i] = (float)(((i + 1) * (seed * 2 + 7)) % 23) / 11.0f - 1.0f;
}

/*
 * x [1, 3, 5, 5] -> Conv 1x1 (6) -> Relu -> depthwise 3x3 (6) -> Clip [0, 6] ->
 * Conv 1x1 (4): y (widened); and a second branch whose producer output is also a
 * graph output: z (stays).
 */
static Onnx__ModelProto *block_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 3, 5, 5}, pd[4] = {6, 3, 1, 1}, dd[4] = {6, 1, 3, 3}, cd[4] = {4, 6, 1, 1};
    int64_t six[1] = {6}, none[1] = {0}, p1[4] = {1, 1, 1, 1};
    float pw[18], pb[6], dw[54], db[6], cw[24], lo = 0.0f, hi = 6.0f;
    fill(pw, 18, 1);
    fill(pb, 6, 2);
    fill(dw, 54, 3);
    fill(db, 6, 4);
    fill(cw, 24, 5);
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "pw", 4, pd, pw);
    qb_init_f32(g, "pb", 1, six, pb);
    qb_init_f32(g, "dw", 4, dd, dw);
    qb_init_f32(g, "db", 1, six, db);
    qb_init_f32(g, "cw", 4, cd, cw);
    qb_init_f32(g, "lo", 0, none, &lo);
    qb_init_f32(g, "hi", 0, none, &hi);
    qb_node(g, "Conv", "expand", "x,pw,pb", "e");
    qb_node(g, "Relu", "relu", "e", "r");
    Onnx__NodeProto *d = qb_node(g, "Conv", "depthwise", "r,dw,db", "d");
    qb_attr_int(d, "group", 6);
    qb_attr_ints(d, "pads", 4, p1);
    qb_node(g, "Clip", "clip", "d,lo,hi", "c");
    qb_node(g, "Conv", "project", "c,cw", "y");
    qb_output(g, "y", 1);
    /* the same block again, its expanded tensor also an output: left alone */
    qb_init_f32(g, "pw2", 4, pd, pw);
    qb_init_f32(g, "dw2", 4, dd, dw);
    qb_init_f32(g, "cw2", 4, cd, cw);
    qb_node(g, "Conv", "expand2", "x,pw2", "e2");
    d = qb_node(g, "Conv", "depthwise2", "e2,dw2", "d2");
    qb_attr_int(d, "group", 6);
    qb_node(g, "Conv", "project2", "d2,cw2", "z");
    qb_output(g, "z", 1);
    qb_output(g, "e2", 1);
    return m;
}

START_TEST(test_conv_rule_names_the_depthwise_alignment)
{
    ck_assert_int_eq(mq_op_rule_find("Conv")->fast_depthwise_channel_align, 16);
}
END_TEST

START_TEST(test_depthwise_widened)
{
    Onnx__ModelProto *m = block_model();
    Onnx__ModelProto *orig = qb_copy_model(m);
    Onnx__GraphProto *g = m->graph;
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_pad_depthwise_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(group_of(qb_node_named(g, "depthwise")), 16);
    ck_assert_int_eq(group_of(qb_node_named(g, "depthwise2")), 6);
    ck_assert_int_eq(init_named(g, "pw")->dims[0], 16);
    ck_assert_int_eq(init_named(g, "pb")->dims[0], 16);
    ck_assert_int_eq(init_named(g, "dw")->dims[0], 16);
    ck_assert_int_eq(init_named(g, "db")->dims[0], 16);
    ck_assert_int_eq(init_named(g, "cw")->dims[0], 4);
    ck_assert_int_eq(init_named(g, "cw")->dims[1], 16);
    ck_assert_int_eq(init_named(g, "pw2")->dims[0], 6);

    int64_t xd[4] = {1, 3, 5, 5};
    struct mq_tensor x = {0};
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, xd, "x", &err), MQ_OK);
    fill(x.data, 75, 6);
    mr_assert_close(m, orig, &x, 1, 3, 1e-5f, 1e-5f, "unpadded");
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_depthwise_pad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_conv_rule_names_the_depthwise_alignment);
    tcase_add_test(tc, test_depthwise_widened);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
