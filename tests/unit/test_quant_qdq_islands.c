/*
 * Which ops the QDQ rewrite quantizes around the weighted ones: those whose
 * output reaches a quantized Conv join its island, the rest stay float, on
 * small hand-built graphs, and the list of tensors to observe matches.
 */
#include <check.h>
#include <string.h>

#include "quant/qdq.h"
#include "quant/select.h"
#include "qdq_checks.h"
#include "quant_builder.h"
#include "quant_run.h"

/* Ops whose output reaches no weighted node stay float; those feeding one are quantized. */
START_TEST(test_islands)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, w2d[4] = {2, 4, 1, 1};
    float w2[8] = {1, -1, 0.5f, 0.25f, -0.5f, 1, 0.75f, -0.25f};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_init_f32(g, "w2", 4, w2d, w2);
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", "x,w", "c");
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(conv, "pads", 4, pads);
    Onnx__NodeProto *cat = qb_node(g, "Concat", "cat", "c,c", "k");       /* feeds conv2 */
    qb_attr_int(cat, "axis", 1);
    qb_node(g, "Conv", "conv2", "k,w2", "d");
    Onnx__NodeProto *head = qb_node(g, "Concat", "head", "d,c", "h");     /* an output only */
    qb_attr_int(head, "axis", 1);
    qb_node(g, "Sigmoid", "gate", "h", "y");
    qb_output(g, "y", 1);
    struct range_spec ranges[] = {{"x", -1, 1}, {"c", -3, 3}, {"k", -3, 3},
                                  {"d", -5, 5}, {"h", -5, 5}, {"y", 0, 1}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    /* The observe list already leaves out what the rewrite will not quantize. */
    struct mq_select_options so = {0};
    struct mq_selection sel;
    struct mq_error err;
    char **names;
    int n;
    ck_assert_int_eq(mq_select_nodes(m, &so, &sel, &err), MQ_OK);
    ck_assert_int_eq(mq_qdq_tensors_to_observe(m, &sel, &o, &names, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(names[0], "x");
    ck_assert_str_eq(names[1], "c");
    ck_assert_str_eq(names[2], "k");
    ck_assert_str_eq(names[3], "d");
    mq_string_list_free(names, n);
    mq_selection_free(&sel);

    struct run r;
    quantize(m, ranges, 6, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_eq(choice(&r, "cat")->status, MQ_NODE_QUANTIZED);
    ck_assert_int_eq(choice(&r, "head")->status, MQ_NODE_SKIPPED);
    ck_assert_ptr_nonnull(strstr(choice(&r, "head")->reason, "reaches no quantized Conv"));
    ck_assert_int_eq(choice(&r, "gate")->status, MQ_NODE_SKIPPED);
    /* The head reads the Conv outputs' DQs and writes plain floats. */
    assert_io(qb_node_named(g, "head"), "Concat", "d_dequantized,c_dequantized", "h");
    assert_io(qb_node_named(g, "gate"), "Sigmoid", "h", "y");
    ck_assert_ptr_null(qb_node_named(g, "h_QuantizeLinear"));
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * Default op types: a residual Add between two Convs and a Mul feeding a Conv
 * join the island (onnxruntime runs them as QLinearAdd/QLinearMul); an Add
 * and a Mul that reach no integer kernel (a recurrent state) stay float; a
 * ConvTranspose, which onnxruntime's CPU provider runs in float anyway,
 * starts no island of its own.
 */
START_TEST(test_islands_add_mul_convtranspose)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, w2d[4] = {2, 2, 1, 1};
    int64_t wtd[4] = {2, 1, 2, 2};
    float w2[4] = {1, -1, 0.5f, 0.25f}, wt[8] = {1, 0.5f, -0.5f, 0.25f, 0.75f, -1, 0.5f, 1};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_init_f32(g, "w2", 4, w2d, w2);
    qb_init_f32(g, "w3", 4, w2d, w2);
    qb_init_f32(g, "wt", 4, wtd, wt);
    int64_t pads[4] = {1, 1, 1, 1}, strides[2] = {2, 2};
    qb_attr_ints(qb_node(g, "Conv", "conv", "x,w", "c"), "pads", 4, pads);
    qb_node(g, "Conv", "conv2", "c,w2", "d");
    qb_node(g, "Add", "residual", "c,d", "a");     /* feeds conv3: QLinearAdd */
    qb_node(g, "Mul", "gate", "a,d", "e");         /* feeds conv3 too */
    qb_node(g, "Conv", "conv3", "e,w3", "f");
    qb_node(g, "Mul", "state_mul", "f,f", "s");    /* reaches no Conv: stays float */
    qb_node(g, "Add", "state_add", "s,f", "state");
    qb_attr_ints(qb_node(g, "ConvTranspose", "up", "f,wt", "u"), "strides", 2, strides);
    qb_output(g, "state", 1);
    qb_output(g, "u", 1);
    struct range_spec ranges[] = {{"x", -1, 1}, {"c", -3, 3}, {"d", -4, 4}, {"a", -6, 6},
                                  {"e", -9, 9}, {"f", -8, 8}, {"s", 0, 64}, {"state", -8, 72},
                                  {"u", -20, 20}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 9, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_eq(choice(&r, "residual")->status, MQ_NODE_QUANTIZED);
    ck_assert_int_eq(choice(&r, "gate")->status, MQ_NODE_QUANTIZED);
    assert_io(qb_node_named(g, "residual"), "Add", "c_dequantized,d_dequantized", "a");
    assert_io(qb_node_named(g, "gate"), "Mul", "a_dequantized,d_dequantized", "e");
    ck_assert_ptr_nonnull(qb_node_named(g, "a_QuantizeLinear"));
    ck_assert_ptr_nonnull(qb_node_named(g, "e_QuantizeLinear"));
    ck_assert_int_eq(choice(&r, "state_mul")->status, MQ_NODE_SKIPPED);
    ck_assert_int_eq(choice(&r, "state_add")->status, MQ_NODE_SKIPPED);
    ck_assert_ptr_nonnull(strstr(choice(&r, "state_add")->reason, "reaches no quantized Conv"));
    assert_io(qb_node_named(g, "state_add"), "Add", "s,f_dequantized", "state");
    ck_assert_ptr_null(qb_node_named(g, "s_QuantizeLinear"));
    ck_assert_int_eq(choice(&r, "up")->status, MQ_NODE_SKIPPED);
    assert_io(qb_node_named(g, "up"), "ConvTranspose", "f_dequantized,wt", "u");
    ck_assert_ptr_nonnull(init_named(g, "wt"));

    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_qdq_islands");
    TCase *tc = tcase_create("islands");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_islands);
    tcase_add_test(tc, test_islands_add_mul_convtranspose);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
