/*
 * The quantizer's per-op table (quant/op_rules.h): every op type selection
 * accepts has a row, and the rules that need code (weight axes, bias
 * layouts, Resize mode, Pad value, MaxPool opset, Relu/Clip bounds, which
 * inputs link an integer island) answer as onnxruntime's quantizer expects.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "quant/op_rules.h"
#include "quant/select.h"
#include "quant_builder.h"

/* The nodes a test makes live in one graph, freed at the end of the test. */
static Onnx__GraphProto *graph;

static Onnx__NodeProto *make(const char *op, const char *inputs)
{
    if (!graph)
        graph = qb_graph("g");
    return qb_node(graph, op, op, inputs, "y");
}

static void free_nodes(void)
{
    if (graph)
        onnx__graph_proto__free_unpacked(graph, NULL);
    graph = NULL;
}

/* The scalar constants a predicate may ask for: "zero" is 0, "two" is 2, others are not. */
static int fake_scalar(const void *user, const char *name, float *out)
{
    (void)user;
    if (strcmp(name, "zero") == 0 || strcmp(name, "two") == 0) {
        *out = name[0] == 'z' ? 0.0f : 2.0f;
        return 1;
    }
    return 0;
}

START_TEST(test_every_op_has_one_row)
{
    int n;
    const struct mq_op_rule *rules = mq_op_rules(&n);
    ck_assert_int_gt(n, 20);
    for (int i = 0; i < n; i++) {
        ck_assert_ptr_eq(mq_op_rule_find(rules[i].op_type), &rules[i]);
        ck_assert_int_ne(rules[i].role, MQ_ROLE_NONE);
        /* A weighted row says where its weight is; the others have none. */
        ck_assert_int_eq(rules[i].role == MQ_ROLE_WEIGHTED, rules[i].weight_input >= 0);
        ck_assert_int_eq(rules[i].role == MQ_ROLE_ACTIVATION, rules[i].clamp_bounds != NULL);
    }
    int k = 0;
    for (const char *const *t = mq_supported_op_types(); *t; t++, k++)
        ck_assert_ptr_nonnull(mq_op_rule_find(*t));
    ck_assert_int_eq(k, n);
    for (const char *const *t = mq_default_op_types(); *t; t++)
        ck_assert(mq_op_rule_find(*t)->by_default);
    ck_assert_ptr_null(mq_op_rule_find("LSTM"));
    ck_assert_int_eq(mq_op_role("LSTM"), MQ_ROLE_NONE);
    ck_assert_str_eq(mq_op_rules_island_ops_text(), "Conv, Gemm or MatMul");
}
END_TEST

START_TEST(test_weight_axes_and_bias_layout)
{
    Onnx__NodeProto *conv = make("Conv", "x,w,b"), *convt = make("ConvTranspose", "x,w,b");
    Onnx__NodeProto *gemm = make("Gemm", "x,w,b"), *gemm_t = make("Gemm", "x,w,b");
    Onnx__NodeProto *matmul = make("MatMul", "x,w");
    qb_attr_int(gemm_t, "transB", 1);
    qb_attr_int(convt, "group", 2);
    const struct mq_op_rule *rc = mq_op_rule_find("Conv"), *rt = mq_op_rule_find("ConvTranspose");
    const struct mq_op_rule *rg = mq_op_rule_find("Gemm"), *rm = mq_op_rule_find("MatMul");
    ck_assert_int_eq(mq_op_rule_weight_axis(rc, conv, 4), 0);
    ck_assert_int_eq(mq_op_rule_weight_axis(rt, convt, 4), 1);
    ck_assert_int_eq(mq_op_rule_weight_axis(rt, convt, 1), -1);
    ck_assert_int_eq(mq_op_rule_weight_axis(rg, gemm, 2), 1);
    ck_assert_int_eq(mq_op_rule_weight_axis(rg, gemm_t, 2), 0);
    ck_assert_int_eq(mq_op_rule_weight_axis(rg, gemm, 3), -1);
    ck_assert_int_eq(mq_op_rule_weight_axis(rm, matmul, 2), 1);
    ck_assert_int_eq(mq_op_rule_weight_axis(rm, matmul, 3), -1);
    /* ConvTranspose [C=4, M/group=3, k, k], group 2: 6 bias values, channel c uses c % 3. */
    int64_t dims[4] = {4, 3, 2, 2};
    int len, mod;
    mq_op_rule_bias_layout(rt, convt, 4, dims, &len, &mod);
    ck_assert_int_eq(len, 6);
    ck_assert_int_eq(mod, 3);
    mq_op_rule_bias_layout(rc, conv, 4, dims, &len, &mod);
    ck_assert_int_eq(len, 4);
    ck_assert_int_eq(mod, 0);
    int64_t gd[2] = {5, 7};
    mq_op_rule_bias_layout(rg, gemm, 2, gd, &len, &mod);
    ck_assert_int_eq(len, 7);
    mq_op_rule_bias_layout(rg, gemm_t, 2, gd, &len, &mod);
    ck_assert_int_eq(len, 5);
    /* Zero points and bias correction as onnxruntime fuses them. */
    ck_assert(rc->weight_zero_point_optional && rm->weight_zero_point_optional);
    ck_assert(!rg->weight_zero_point_optional);
    ck_assert(rc->bias_correction && rg->bias_correction && !rt->bias_correction);
    ck_assert_int_eq(rm->bias_input, -1);
    ck_assert_str_eq(rg->bias_scale_attr, "beta");
    /* A weighted op's bias never links an island; its data and weight do. */
    ck_assert(mq_op_rule_links_input(rc, 0) && mq_op_rule_links_input(rc, 1));
    ck_assert(!mq_op_rule_links_input(rc, 2));
    ck_assert(mq_op_rule_links_input(mq_op_rule_find("Concat"), 5));
    ck_assert_uint_eq(mq_op_rule_quantized_inputs(rc, conv), 2);
    ck_assert_uint_eq(mq_op_rule_quantized_inputs(mq_op_rule_find("Concat"),
                                                  make("Concat", "a,b,c")), 3);
    ck_assert_uint_eq(mq_op_rule_quantized_inputs(mq_op_rule_find("Reshape"),
                                                  make("Reshape", "a,shape")), 1);
    free_nodes();
}
END_TEST

START_TEST(test_predicates)
{
    struct mq_op_query q11 = {11, fake_scalar, NULL}, q10 = {10, fake_scalar, NULL};
    const struct mq_op_rule *resize = mq_op_rule_find("Resize");
    Onnx__NodeProto *nearest = make("Resize", "x"), *linear = make("Resize", "x");
    qb_attr_string(linear, "mode", "linear");
    ck_assert_int_eq(mq_op_rule_node_role(resize, nearest), MQ_ROLE_SHARED);
    ck_assert_ptr_null(mq_op_rule_blocker(resize, &q11, nearest));
    /* onnxruntime interpolates in float between a DQ and a Q: linear Resize stays float */
    const char *why = mq_op_rule_blocker(resize, &q11, linear);
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_nonnull(strstr(why, "nearest mode only"));

    const struct mq_op_rule *pad = mq_op_rule_find("Pad");
    ck_assert_ptr_null(mq_op_rule_blocker(pad, &q11, make("Pad", "x,pads,zero")));
    ck_assert_ptr_nonnull(strstr(mq_op_rule_blocker(pad, &q11, make("Pad", "x,pads,two")),
                                 "non-zero"));
    ck_assert_ptr_nonnull(strstr(mq_op_rule_blocker(pad, &q11, make("Pad", "x,pads,v")),
                                 "not a constant"));
    Onnx__NodeProto *reflect = make("Pad", "x,pads,two");
    qb_attr_string(reflect, "mode", "reflect");
    ck_assert_ptr_null(mq_op_rule_blocker(pad, &q11, reflect));

    const struct mq_op_rule *maxpool = mq_op_rule_find("MaxPool");
    struct mq_op_query q12 = {12, fake_scalar, NULL};
    ck_assert_ptr_nonnull(mq_op_rule_blocker(maxpool, &q11, make("MaxPool", "x")));
    ck_assert_ptr_null(mq_op_rule_blocker(maxpool, &q12, make("MaxPool", "x")));

    const struct mq_op_rule *clip = mq_op_rule_find("Clip"), *relu = mq_op_rule_find("Relu");
    float lo, hi;
    ck_assert(relu->clamp_bounds(&q11, make("Relu", "x"), &lo, &hi));
    ck_assert(lo == 0.0f && isinf(hi));
    ck_assert(clip->clamp_bounds(&q11, make("Clip", "x,zero,two"), &lo, &hi));
    ck_assert(lo == 0.0f && hi == 2.0f);
    ck_assert(clip->clamp_bounds(&q11, make("Clip", "x,,two"), &lo, &hi));
    ck_assert(isinf(lo) && lo < 0 && hi == 2.0f);
    ck_assert(!clip->clamp_bounds(&q11, make("Clip", "x,computed"), &lo, &hi));
    Onnx__NodeProto *old_clip = make("Clip", "x");
    qb_attr_float(old_clip, "max", 6.0f);
    ck_assert(clip->clamp_bounds(&q10, old_clip, &lo, &hi));
    ck_assert(hi == 6.0f && lo < -1e38f);

    const struct mq_op_rule *softmax = mq_op_rule_find("Softmax");
    ck_assert(softmax->fixed_output_range && softmax->output_min == 0.0f &&
              softmax->output_max == 1.0f);
    ck_assert(mq_op_rule_find("Split")->all_outputs);
    free_nodes();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_op_rules");
    TCase *tc = tcase_create("op_rules");
    tcase_add_test(tc, test_every_op_has_one_row);
    tcase_add_test(tc, test_weight_axes_and_bias_layout);
    tcase_add_test(tc, test_predicates);
    return mq_check_run(s, tc);
}
