/* Reduce* and ArgMax/ArgMin kernels, run through the planner by the op harness. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "core/tensor.h"
#include "op_harness.h"

static const float x23[] = {1, 2, 3, 4, 5, 6};
static const float x222[] = {1, 2, 3, 4, 5, 6, 7, 8};

START_TEST(sum_axes_attribute_keeps_dims_by_default)
{
    Onnx__NodeProto *n = oh_node("ReduceSum", 1, 1);
    oh_attr_ints(n, "axes", 1, (const int64_t[]){1});
    struct mq_tensor in[1] = {oh_f32(2, OH_DIMS(2, 3), x23)};
    struct mq_tensor y = oh_run1_take_all(n, 11, in, 1);
    oh_assert_f32(&y, 2, OH_DIMS(2, 1), (const float[]){6, 15}, 0, 0);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(sum_axes_input_negative_no_keepdims)
{
    Onnx__NodeProto *n = oh_node("ReduceSum", 2, 1);
    oh_attr_int(n, "keepdims", 0);
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 3), x23), oh_i64(1, OH_DIMS(1),
                                                                     (const int64_t[]){-2})};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 2);
    oh_assert_f32(&y, 1, OH_DIMS(3), (const float[]){5, 7, 9}, 0, 0);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(mean_without_axes_reduces_everything)
{
    Onnx__NodeProto *n = oh_node("ReduceMean", 1, 1);
    struct mq_tensor in[1] = {oh_f32(2, OH_DIMS(2, 3), x23)};
    struct mq_tensor y = oh_run1_take_all(n, 18, in, 1);
    oh_assert_f32(&y, 2, OH_DIMS(1, 1), (const float[]){3.5f}, 0, 0);
    mq_tensor_free(&y);

    n = oh_node("ReduceMean", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    in[0] = oh_f32(2, OH_DIMS(2, 3), x23);
    y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_f32(&y, 0, NULL, (const float[]){3.5f}, 0, 0);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(noop_with_empty_axes_keeps_the_element_transform)
{
    /* ReduceSum: identity. */
    Onnx__NodeProto *n = oh_node("ReduceSum", 2, 1);
    oh_attr_int(n, "noop_with_empty_axes", 1);
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 3), x23), oh_i64(1, OH_DIMS(0), NULL)};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 2);
    oh_assert_f32(&y, 2, OH_DIMS(2, 3), x23, 0, 0);
    mq_tensor_free(&y);

    /* ReduceSumSquare acts as Square; the axes input omitted altogether. */
    n = oh_node("ReduceSumSquare", 1, 1);
    oh_attr_int(n, "noop_with_empty_axes", 1);
    in[0] = oh_f32(2, OH_DIMS(2, 3), (const float[]){1, -2, 3, -4, 5, -6});
    y = oh_run1_take_all(n, 18, in, 1);
    oh_assert_f32(&y, 2, OH_DIMS(2, 3), (const float[]){1, 4, 9, 16, 25, 36}, 0, 0);
    mq_tensor_free(&y);

    /* Without the flag an empty axes input reduces everything. */
    n = oh_node("ReduceSum", 2, 1);
    oh_attr_int(n, "keepdims", 0);
    in[0] = oh_f32(2, OH_DIMS(2, 3), x23);
    in[1] = oh_i64(1, OH_DIMS(0), NULL);
    y = oh_run1_take_all(n, 13, in, 2);
    oh_assert_f32(&y, 0, NULL, (const float[]){21}, 0, 0);
    mq_tensor_free(&y);
}
END_TEST

/* Every op over axes {0, 2} of a [2,2,2] tensor: the kept axis sits in the middle. */
START_TEST(every_op_over_outer_and_inner_axes)
{
    static const struct {
        const char *op;
        float expect[2];
    } cases[] = {
        {"ReduceSum", {14, 22}},
        {"ReduceMean", {3.5f, 5.5f}},
        {"ReduceMax", {6, 8}},
        {"ReduceMin", {1, 3}},
        {"ReduceProd", {60, 672}},
        {"ReduceL1", {14, 22}},
        {"ReduceL2", {8.1240384f, 11.7473401f}},
        {"ReduceSumSquare", {66, 138}},
        {"ReduceLogSum", {2.6390573f, 3.0910425f}},
        {"ReduceLogSumExp", {6.33141162f, 8.33141162f}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Opset 13 (axes attribute, except ReduceSum) and 18 (axes input). */
        for (int v = 0; v < 2; v++) {
            int input_axes = v == 1 || strcmp(cases[i].op, "ReduceSum") == 0;
            int opset = v == 0 ? 13 : 18;
            Onnx__NodeProto *n = oh_node(cases[i].op, input_axes ? 2 : 1, 1);
            struct mq_tensor in[2] = {oh_f32(3, OH_DIMS(2, 2, 2), x222)};
            if (input_axes)
                in[1] = oh_i64(1, OH_DIMS(2), (const int64_t[]){0, -1});
            else
                oh_attr_ints(n, "axes", 2, (const int64_t[]){0, -1});
            struct mq_tensor y = oh_run1_take_all(n, opset, in, input_axes ? 2 : 1);
            oh_assert_f32(&y, 3, OH_DIMS(1, 2, 1), cases[i].expect, 1e-5f, 1e-6f);
            mq_tensor_free(&y);
        }
    }
}
END_TEST

START_TEST(empty_reductions_give_each_identity)
{
    static const struct {
        const char *op;
        float expect;
    } cases[] = {
        {"ReduceSum", 0},         {"ReduceProd", 1},         {"ReduceMax", -INFINITY},
        {"ReduceMin", INFINITY},  {"ReduceMean", NAN},       {"ReduceL1", 0},
        {"ReduceL2", 0},          {"ReduceSumSquare", 0},    {"ReduceLogSum", -INFINITY},
        {"ReduceLogSumExp", -INFINITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Onnx__NodeProto *n = oh_node(cases[i].op, 2, 1);
        oh_attr_int(n, "keepdims", 0);
        struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 0), NULL),
                                  oh_i64(1, OH_DIMS(1), (const int64_t[]){1})};
        struct mq_tensor y = oh_run1_take_all(n, 18, in, 2);
        float e[2] = {cases[i].expect, cases[i].expect};
        oh_assert_f32(&y, 1, OH_DIMS(2), e, 0, 0);
        mq_tensor_free(&y);
    }
    /* Integer max over nothing is the type's lowest value. */
    Onnx__NodeProto *n = oh_node("ReduceMax", 1, 1);
    oh_attr_ints(n, "axes", 1, (const int64_t[]){0});
    struct mq_tensor in[1] = {oh_i32(2, OH_DIMS(0, 2), NULL)};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 1);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&y, 2, OH_DIMS(1, 2), (const int64_t[]){INT32_MIN, INT32_MIN});
    mq_tensor_free(&y);

    /* Kept dims of size 0 give an empty output. */
    n = oh_node("ReduceSum", 1, 1);
    oh_attr_ints(n, "axes", 1, (const int64_t[]){1});
    in[0] = oh_f32(2, OH_DIMS(0, 3), NULL);
    y = oh_run1_take_all(n, 11, in, 1);
    oh_assert_shape(&y, 2, OH_DIMS(0, 1));
    mq_tensor_free(&y);
}
END_TEST

START_TEST(integer_types_reduce_exactly)
{
    /* int64 sums beyond 2^53 stay exact. */
    Onnx__NodeProto *n = oh_node("ReduceSum", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    struct mq_tensor in[2] = {
        oh_i64(1, OH_DIMS(3), (const int64_t[]){(1LL << 53) + 1, 2, -1})};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_i64(&y, 0, NULL, (const int64_t[]){(1LL << 53) + 2});
    mq_tensor_free(&y);

    /* Integer mean truncates toward zero. */
    n = oh_node("ReduceMean", 1, 1);
    oh_attr_ints(n, "axes", 1, (const int64_t[]){1});
    oh_attr_int(n, "keepdims", 0);
    in[0] = oh_i32(2, OH_DIMS(2, 2), (const int32_t[]){1, 2, -1, -2});
    y = oh_run1_take_all(n, 13, in, 1);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&y, 1, OH_DIMS(2), (const int64_t[]){1, -1});
    mq_tensor_free(&y);

    /* int8 min/max keep their sign; uint8 max is unsigned. */
    n = oh_node("ReduceMin", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    in[0] = oh_i8(1, OH_DIMS(4), (const int8_t[]){3, -128, 127, 0});
    y = oh_run1_take_all(n, 13, in, 1);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT8);
    oh_assert_i64(&y, 0, NULL, (const int64_t[]){-128});
    mq_tensor_free(&y);

    n = oh_node("ReduceMax", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    in[0] = oh_u8(1, OH_DIMS(3), (const uint8_t[]){200, 255, 7});
    y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_i64(&y, 0, NULL, (const int64_t[]){255});
    mq_tensor_free(&y);

    /* bool ReduceMax is "any" (opset 20). */
    n = oh_node("ReduceMax", 2, 1);
    in[0] = oh_bool(2, OH_DIMS(2, 2), (const uint8_t[]){0, 0, 0, 1});
    in[1] = oh_i64(1, OH_DIMS(1), (const int64_t[]){1});
    y = oh_run1_take_all(n, 20, in, 2);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_BOOL);
    oh_assert_i64(&y, 2, OH_DIMS(2, 1), (const int64_t[]){0, 1});
    mq_tensor_free(&y);

    /* ReduceL2 of integers is computed in double and truncated. */
    n = oh_node("ReduceL2", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    in[0] = oh_i32(1, OH_DIMS(2), (const int32_t[]){3, 4});
    y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_i64(&y, 0, NULL, (const int64_t[]){5});
    mq_tensor_free(&y);

    /* bool is not a type of ReduceSum. */
    n = oh_node("ReduceSum", 1, 1);
    in[0] = oh_bool(1, OH_DIMS(2), (const uint8_t[]){1, 1});
    oh_run_fails_take_all(n, 13, in, 1, 1, "bool");
}
END_TEST

START_TEST(log_sum_exp_is_stable_and_half_types_convert)
{
    Onnx__NodeProto *n = oh_node("ReduceLogSumExp", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    struct mq_tensor in[1] = {oh_f32(1, OH_DIMS(2), (const float[]){1000, 1000})};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_f32(&y, 0, NULL, (const float[]){1000.693147f}, 1e-3f, 0);
    mq_tensor_free(&y);

    /* float16 in, float16 out. */
    uint16_t h[4];
    for (int i = 0; i < 4; i++)
        h[i] = mq_float_to_half((float)(i + 1) * 0.5f);
    n = oh_node("ReduceSum", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    in[0] = oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(4), h);
    y = oh_run1_take_all(n, 11, in, 1);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT16);
    ck_assert(mq_half_to_float(((uint16_t *)y.data)[0]) == 5.0f);
    mq_tensor_free(&y);

    /* A scalar reduces to itself. */
    n = oh_node("ReduceL1", 1, 1);
    in[0] = oh_f32(0, NULL, (const float[]){-2.5f});
    y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_f32(&y, 0, NULL, (const float[]){2.5f}, 0, 0);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(bad_axes_are_refused_with_the_node_name)
{
    Onnx__NodeProto *n = oh_node("ReduceMax", 1, 1);
    oh_attr_ints(n, "axes", 1, (const int64_t[]){2});
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 3), x23)};
    oh_run_fails_take_all(n, 13, in, 1, 1, "node 'node_under_test' (ReduceMax): axis 2 is outside");

    /* Opset 18 takes axes as an input only. */
    n = oh_node("ReduceMean", 1, 1);
    oh_attr_ints(n, "axes", 1, (const int64_t[]){0});
    in[0] = oh_f32(2, OH_DIMS(2, 3), x23);
    oh_run_fails_take_all(n, 18, in, 1, 1, "(ReduceMean)");

    n = oh_node("ReduceSum", 2, 1);
    in[0] = oh_f32(2, OH_DIMS(2, 3), x23);
    in[1] = oh_i32(1, OH_DIMS(1), (const int32_t[]){0});
    oh_run_fails_take_all(n, 13, in, 2, 1, "int64");
}
END_TEST

/* op over `axis` of x [3,4] with keepdims 0 and select_last_index 1; checks the [3] indices. */
static void check_last_index(const char *op, int64_t axis, int opset, const float *x,
                             const int64_t *expected)
{
    Onnx__NodeProto *n = oh_node(op, 1, 1);
    oh_attr_int(n, "axis", axis);
    oh_attr_int(n, "keepdims", 0);
    oh_attr_int(n, "select_last_index", 1);
    struct mq_tensor in[1] = {oh_f32(2, OH_DIMS(3, 4), x)};
    struct mq_tensor y = oh_run1_take_all(n, opset, in, 1);
    oh_assert_i64(&y, 1, OH_DIMS(3), expected);
    mq_tensor_free(&y);
}

START_TEST(argmax_argmin_axes_keepdims_and_ties)
{
    static const float x[] = {2, 9, 9, 1, 1, 5, 4, 4, 4, 0, 7, 0};
    /* ArgMax over axis 1 of [3,4], first index on ties. */
    Onnx__NodeProto *n = oh_node("ArgMax", 1, 1);
    oh_attr_int(n, "axis", 1);
    struct mq_tensor in[1] = {oh_f32(2, OH_DIMS(3, 4), x)};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 1);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT64);
    oh_assert_i64(&y, 2, OH_DIMS(3, 1), (const int64_t[]){1, 1, 2});
    mq_tensor_free(&y);

    /* select_last_index, negative axis, no keepdims. */
    check_last_index("ArgMax", -1, 12, x, (const int64_t[]){2, 1, 2});

    /* Before opset 12 select_last_index does not exist: first index. */
    check_last_index("ArgMin", 1, 11, x, (const int64_t[]){3, 0, 1});

    check_last_index("ArgMin", 1, 13, x, (const int64_t[]){3, 0, 3});

    /* Default axis 0 over int32, which compares as integers. */
    n = oh_node("ArgMin", 1, 1);
    in[0] = oh_i32(2, OH_DIMS(2, 2), (const int32_t[]){-5, 7, -6, 8});
    y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_i64(&y, 2, OH_DIMS(1, 2), (const int64_t[]){1, 0});
    mq_tensor_free(&y);
}
END_TEST

START_TEST(argmax_nan_half_and_empty)
{
    /* NaN wins, as in numpy. */
    Onnx__NodeProto *n = oh_node("ArgMax", 1, 1);
    oh_attr_int(n, "keepdims", 0);
    struct mq_tensor in[1] = {oh_f32(1, OH_DIMS(3), (const float[]){1, NAN, 3})};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_i64(&y, 0, NULL, (const int64_t[]){1});
    mq_tensor_free(&y);

    uint16_t h[3] = {mq_float_to_half(1.0f), mq_float_to_half(-3.0f), mq_float_to_half(2.0f)};
    n = oh_node("ArgMin", 1, 1);
    in[0] = oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(3), h);
    y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_i64(&y, 1, OH_DIMS(1), (const int64_t[]){1});
    mq_tensor_free(&y);

    /* An empty reduced axis has no answer; an empty kept axis gives an empty output. */
    n = oh_node("ArgMax", 1, 1);
    oh_attr_int(n, "axis", 1);
    in[0] = oh_f32(2, OH_DIMS(2, 0), NULL);
    oh_run_fails_take_all(n, 13, in, 1, 1, "length 0");

    n = oh_node("ArgMax", 1, 1);
    oh_attr_int(n, "axis", 1);
    in[0] = oh_f32(2, OH_DIMS(0, 3), NULL);
    y = oh_run1_take_all(n, 13, in, 1);
    oh_assert_shape(&y, 2, OH_DIMS(0, 1));
    mq_tensor_free(&y);

    n = oh_node("ArgMax", 1, 1);
    oh_attr_int(n, "axis", 3);
    in[0] = oh_f32(2, OH_DIMS(2, 2), (const float[]){1, 2, 3, 4});
    oh_run_fails_take_all(n, 13, in, 1, 1, "node 'node_under_test' (ArgMax): axis 3");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_reduce");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sum_axes_attribute_keeps_dims_by_default);
    tcase_add_test(tc, sum_axes_input_negative_no_keepdims);
    tcase_add_test(tc, mean_without_axes_reduces_everything);
    tcase_add_test(tc, noop_with_empty_axes_keeps_the_element_transform);
    tcase_add_test(tc, every_op_over_outer_and_inner_axes);
    tcase_add_test(tc, empty_reductions_give_each_identity);
    tcase_add_test(tc, integer_types_reduce_exactly);
    tcase_add_test(tc, log_sum_exp_is_stable_and_half_types_convert);
    tcase_add_test(tc, bad_axes_are_refused_with_the_node_name);
    tcase_add_test(tc, argmax_argmin_axes_keepdims_and_ties);
    tcase_add_test(tc, argmax_nan_half_and_empty);
    return mq_check_run(s, tc);
}
