/*
 * TopK, CumSum, Einsum, Det, Unique, NonMaxSuppression and TfIdfVectorizer
 * (src/interp/ops/misc.c, sorting.c, linalg.c).  Expected values were
 * worked out by hand or with numpy (np.einsum, np.unique, np.linalg.det).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

/* ------------------------------------------------------------------ TopK */

START_TEST(topk_largest_default_axis_ties_lower_index_first)
{
    Onnx__NodeProto *n = oh_node("TopK", 2, 2);
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 4), (float[]){1, 3, 3, 2, 9, -1, 9, 9}),
                              oh_i64(1, OH_DIMS(1), (int64_t[]){2})};
    struct mq_tensor out[2] = {{0}};
    oh_run_ok(n, 11, in, 2, out, 2);
    oh_assert_f32(&out[0], 2, OH_DIMS(2, 2), (float[]){3, 3, 9, 9}, 0, 0);
    oh_assert_i64(&out[1], 2, OH_DIMS(2, 2), (int64_t[]){1, 2, 0, 2});
    oh_free_all(out, 2);
    oh_free_all(in, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(topk_smallest_axis0_and_negative_axis)
{
    Onnx__NodeProto *n = oh_node("TopK", 2, 2);
    oh_attr_int(n, "largest", 0);
    oh_attr_int(n, "axis", -2);
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(3, 2), (float[]){5, 0, 1, 7, 3, -2}),
                              oh_i64(1, OH_DIMS(1), (int64_t[]){2})};
    struct mq_tensor out[2] = {{0}};
    oh_run_ok(n, 11, in, 2, out, 2);
    oh_assert_f32(&out[0], 2, OH_DIMS(2, 2), (float[]){1, -2, 3, 0}, 0, 0);
    oh_assert_i64(&out[1], 2, OH_DIMS(2, 2), (int64_t[]){1, 2, 2, 0});
    oh_free_all(out, 2);
    oh_free_all(in, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(topk_opset1_attribute_k_and_int_types)
{
    Onnx__NodeProto *n = oh_node("TopK", 1, 2);
    oh_attr_int(n, "k", 1);
    struct mq_tensor in[1] = {oh_f32(1, OH_DIMS(3), (float[]){0.5f, 2.5f, -1})};
    struct mq_tensor out[2] = {{0}};
    oh_run_ok(n, 1, in, 1, out, 2);
    oh_assert_f32(&out[0], 1, OH_DIMS(1), (float[]){2.5f}, 0, 0);
    oh_assert_i64(&out[1], 1, OH_DIMS(1), (int64_t[]){1});
    oh_free_all(out, 2);
    oh_free_all(in, 1);
    oh_node_free(n);

    n = oh_node("TopK", 2, 2);
    struct mq_tensor in2[2] = {oh_i32(1, OH_DIMS(5), (int32_t[]){4, -7, 100, 4, 0}),
                               oh_i64(1, OH_DIMS(1), (int64_t[]){3})};
    oh_run_ok(n, 11, in2, 2, out, 2);
    ck_assert_int_eq(out[0].dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&out[0], 1, OH_DIMS(3), (int64_t[]){100, 4, 4});
    oh_assert_i64(&out[1], 1, OH_DIMS(3), (int64_t[]){2, 0, 3});
    oh_free_all(out, 2);
    oh_free_all(in2, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(topk_empty_and_half_and_errors)
{
    Onnx__NodeProto *n = oh_node("TopK", 2, 2);
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(0, 4), NULL),
                              oh_i64(1, OH_DIMS(1), (int64_t[]){2})};
    struct mq_tensor out[2] = {{0}};
    oh_run_ok(n, 11, in, 2, out, 2);
    oh_assert_shape(&out[0], 2, OH_DIMS(0, 2));
    oh_assert_shape(&out[1], 2, OH_DIMS(0, 2));
    oh_free_all(out, 2);
    oh_free_all(in, 2);

    uint16_t h[3] = {mq_float_to_half(1.5f), mq_float_to_half(-2), mq_float_to_half(8)};
    struct mq_tensor hin[2] = {oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(3), h),
                               oh_i64(1, OH_DIMS(1), (int64_t[]){2})};
    oh_run_ok(n, 11, hin, 2, out, 2);
    ck_assert_int_eq(out[0].dtype, MQ_DTYPE_FLOAT16);
    ck_assert(mq_half_to_float(((uint16_t *)out[0].data)[0]) == 8.0f);
    ck_assert(mq_half_to_float(((uint16_t *)out[0].data)[1]) == 1.5f);
    oh_assert_i64(&out[1], 1, OH_DIMS(2), (int64_t[]){2, 0});
    oh_free_all(out, 2);
    oh_free_all(hin, 2);

    struct mq_error err;
    struct mq_tensor bad[2] = {oh_f32(1, OH_DIMS(3), (float[]){1, 2, 3}),
                               oh_i64(1, OH_DIMS(1), (int64_t[]){4})};
    const char *msg = oh_run_fails(n, 11, bad, 2, 2, &err);
    ck_assert_ptr_nonnull(strstr(msg, "node 'node_under_test' (TopK)"));
    ck_assert_ptr_nonnull(strstr(msg, "K is 4"));
    oh_free_all(bad, 2);
    oh_node_free(n);
}
END_TEST

/* ---------------------------------------------------------------- CumSum */

START_TEST(cumsum_modes)
{
    const float x[6] = {1, 2, 3, 4, 5, 6};
    struct {
        int exclusive, reverse;
        float y[6];
    } cases[] = {
        {0, 0, {1, 3, 6, 4, 9, 15}},
        {1, 0, {0, 1, 3, 0, 4, 9}},
        {0, 1, {6, 5, 3, 15, 11, 6}},
        {1, 1, {5, 3, 0, 11, 6, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Onnx__NodeProto *n = oh_node("CumSum", 2, 1);
        oh_attr_int(n, "exclusive", cases[c].exclusive);
        oh_attr_int(n, "reverse", cases[c].reverse);
        struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 3), x),
                                  oh_i32(0, NULL, (int32_t[]){-1})};
        struct mq_tensor out = {0};
        oh_run_ok(n, 14, in, 2, &out, 1);
        oh_assert_f32(&out, 2, OH_DIMS(2, 3), cases[c].y, 0, 0);
        mq_tensor_free(&out);
        oh_free_all(in, 2);
        oh_node_free(n);
    }
}
END_TEST

START_TEST(cumsum_axis0_ints_and_empty)
{
    Onnx__NodeProto *n = oh_node("CumSum", 2, 1);
    struct mq_tensor in[2] = {oh_i64(2, OH_DIMS(3, 2), (int64_t[]){1, -2, 10, 20, 100, 200}),
                              oh_i64(1, OH_DIMS(1), (int64_t[]){0})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 11, in, 2, &out, 1);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_INT64);
    oh_assert_i64(&out, 2, OH_DIMS(3, 2), (int64_t[]){1, -2, 11, 18, 111, 218});
    mq_tensor_free(&out);
    oh_free_all(in, 2);

    struct mq_tensor e[2] = {oh_f32(2, OH_DIMS(0, 3), NULL), oh_i32(0, NULL, (int32_t[]){1})};
    oh_run_ok(n, 11, e, 2, &out, 1);
    oh_assert_shape(&out, 2, OH_DIMS(0, 3));
    mq_tensor_free(&out);
    oh_free_all(e, 2);

    struct mq_error err;
    struct mq_tensor bad[2] = {oh_f32(1, OH_DIMS(2), (float[]){1, 2}),
                               oh_i32(0, NULL, (int32_t[]){1})};
    const char *msg = oh_run_fails(n, 11, bad, 2, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(CumSum)"));
    oh_free_all(bad, 2);
    oh_node_free(n);
}
END_TEST

/* ---------------------------------------------------------------- Einsum */

static struct mq_tensor einsum1(const char *eq, struct mq_tensor *in, int n_in)
{
    Onnx__NodeProto *n = oh_node("Einsum", n_in, 1);
    oh_attr_string(n, "equation", eq);
    struct mq_tensor out = {0};
    oh_run_ok(n, 12, in, n_in, &out, 1);
    oh_node_free(n);
    oh_free_all(in, n_in);
    return out;
}

START_TEST(einsum_matmul_explicit_and_implicit)
{
    float a[6] = {0, 1, 2, 3, 4, 5};
    float b[12];
    for (int i = 0; i < 12; i++)
        b[i] = (float)i - 5;
    const float want[8] = {5, 8, 11, 14, -4, 8, 20, 32};
    const char *eqs[] = {"ij,jk->ik", "ij,jk", " i j , j k -> i k "};
    for (int e = 0; e < 3; e++) {
        struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 3), a), oh_f32(2, OH_DIMS(3, 4), b)};
        struct mq_tensor out = einsum1(eqs[e], in, 2);
        oh_assert_f32(&out, 2, OH_DIMS(2, 4), want, 1e-6f, 0);
        mq_tensor_free(&out);
    }
    /* Implicit output orders labels alphabetically: 'ba' is a transpose. */
    struct mq_tensor t[1] = {oh_f32(2, OH_DIMS(2, 3), a)};
    struct mq_tensor out = einsum1("ba", t, 1);
    oh_assert_f32(&out, 2, OH_DIMS(3, 2), (float[]){0, 3, 1, 4, 2, 5}, 0, 0);
    mq_tensor_free(&out);
}
END_TEST

START_TEST(einsum_diagonal_trace_sum_outer)
{
    float m[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    struct mq_tensor in[1] = {oh_f32(2, OH_DIMS(3, 3), m)};
    struct mq_tensor out = einsum1("ii", in, 1);
    oh_assert_f32(&out, 0, NULL, (float[]){12}, 0, 0);
    mq_tensor_free(&out);

    struct mq_tensor in2[1] = {oh_f32(2, OH_DIMS(3, 3), m)};
    out = einsum1("ii->i", in2, 1);
    oh_assert_f32(&out, 1, OH_DIMS(3), (float[]){0, 4, 8}, 0, 0);
    mq_tensor_free(&out);

    struct mq_tensor in3[1] = {oh_f32(2, OH_DIMS(2, 3), m)};
    out = einsum1("ij->", in3, 1);
    oh_assert_f32(&out, 0, NULL, (float[]){15}, 0, 0);
    mq_tensor_free(&out);

    struct mq_tensor in4[2] = {oh_f32(1, OH_DIMS(2), (float[]){1, 2}),
                               oh_f32(1, OH_DIMS(3), (float[]){3, 4, 5})};
    out = einsum1("i,j", in4, 2);
    oh_assert_f32(&out, 2, OH_DIMS(2, 3), (float[]){3, 4, 5, 6, 8, 10}, 0, 0);
    mq_tensor_free(&out);

    /* Batched diagonal over an ellipsis. */
    float bd[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct mq_tensor in5[1] = {oh_f32(3, OH_DIMS(2, 2, 2), bd)};
    out = einsum1("...ii->...i", in5, 1);
    oh_assert_f32(&out, 2, OH_DIMS(2, 2), (float[]){1, 4, 5, 8}, 0, 0);
    mq_tensor_free(&out);
}
END_TEST

START_TEST(einsum_ellipsis_broadcast_and_ints)
{
    float x[12], y[18];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    for (int i = 0; i < 18; i++)
        y[i] = (float)i * 0.5f;
    struct mq_tensor in[2] = {oh_f32(4, OH_DIMS(2, 1, 2, 3), x), oh_f32(3, OH_DIMS(3, 3, 2), y)};
    struct mq_tensor out = einsum1("...ij,...jk->...ik", in, 2);
    const float want[24] = {5,    6.5,  14,  20,  14,  15.5, 50,  56,  23,  24.5, 86,  92,
                            23, 33.5, 32, 47, 86, 96.5, 122, 137, 149, 159.5, 212, 227};
    oh_assert_f32(&out, 4, OH_DIMS(2, 3, 2, 2), want, 1e-5f, 0);
    mq_tensor_free(&out);

    struct mq_tensor iin[2] = {oh_i32(1, OH_DIMS(3), (int32_t[]){1, -2, 3}),
                               oh_i32(1, OH_DIMS(3), (int32_t[]){4, 5, 6})};
    out = einsum1("i,i", iin, 2);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&out, 0, NULL, (int64_t[]){12});
    mq_tensor_free(&out);

    /* A zero-sized contraction sums nothing. */
    struct mq_tensor ein[2] = {oh_f32(2, OH_DIMS(2, 0), NULL), oh_f32(2, OH_DIMS(0, 3), NULL)};
    out = einsum1("ij,jk->ik", ein, 2);
    oh_assert_f32(&out, 2, OH_DIMS(2, 3), (float[]){0, 0, 0, 0, 0, 0}, 0, 0);
    mq_tensor_free(&out);
}
END_TEST

START_TEST(einsum_errors)
{
    struct {
        const char *eq;
        int rank0;
        int64_t dims0[3];
        const char *needle;
    } cases[] = {
        {"ij,jk->ik", 2, {2, 2}, "label 'j' has size 3"},
        {"i$,jk->ik", 2, {2, 3}, "invalid character"},
        {"...ij,jk->ik", 3, {5, 2, 3}, "no '...'"},
        {"ij,jk->iz", 2, {2, 3}, "output label 'z'"},
        {"ij,jk->ii", 2, {2, 3}, "appears twice"},
        {"ij,jk,k->ik", 2, {2, 3}, "3 operand terms"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Onnx__NodeProto *n = oh_node("Einsum", 2, 1);
        oh_attr_string(n, "equation", cases[c].eq);
        struct mq_tensor in[2] = {oh_f32(cases[c].rank0, cases[c].dims0, NULL),
                                  oh_f32(2, OH_DIMS(3, 4), NULL)};
        struct mq_error err;
        const char *msg = oh_run_fails(n, 12, in, 2, 1, &err);
        ck_assert_msg(strstr(msg, cases[c].needle) && strstr(msg, "(Einsum)"),
                      "'%s': message '%s'", cases[c].eq, msg);
        oh_free_all(in, 2);
        oh_node_free(n);
    }
}
END_TEST

/* ------------------------------------------------------------------- Det */

START_TEST(det_batches_pivoting_and_singular)
{
    Onnx__NodeProto *n = oh_node("Det", 1, 1);
    float x[27] = {2, -1, 0, -1, 2, -1, 0, -1, 2, /* 4 */
                   0, 2,  1, 1,  1, 1,  3, 0,  4, /* -5: needs a row swap */
                   1, 2,  3, 2,  4, 6,  0, 1,  1};  /* singular */
    struct mq_tensor in[1] = {oh_f32(3, OH_DIMS(3, 3, 3), x)};
    struct mq_tensor out = {0};
    oh_run_ok(n, 11, in, 1, &out, 1);
    oh_assert_f32(&out, 1, OH_DIMS(3), (float[]){4, -5, 0}, 1e-5f, 1e-6f);
    mq_tensor_free(&out);
    oh_free_all(in, 1);

    struct mq_tensor d[1] = {oh_typed(MQ_DTYPE_DOUBLE, 2, OH_DIMS(2, 2), (double[]){0, 1, 2, 3})};
    oh_run_ok(n, 11, d, 1, &out, 1);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_DOUBLE);
    oh_assert_shape(&out, 0, NULL);
    ck_assert(fabs(((double *)out.data)[0] + 2.0) < 1e-12);
    mq_tensor_free(&out);
    oh_free_all(d, 1);

    struct mq_error err;
    struct mq_tensor bad[1] = {oh_f32(2, OH_DIMS(2, 3), NULL)};
    const char *msg = oh_run_fails(n, 11, bad, 1, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(Det)"));
    oh_free_all(bad, 1);
    oh_node_free(n);
}
END_TEST

/* ---------------------------------------------------------------- Unique */

START_TEST(unique_flat_sorted_and_unsorted)
{
    const int64_t x[6] = {5, 3, 5, -1, 3, 3};
    Onnx__NodeProto *n = oh_node("Unique", 1, 4);
    struct mq_tensor in[1] = {oh_i64(1, OH_DIMS(6), x)};
    struct mq_tensor out[4] = {{0}};
    oh_run_ok(n, 11, in, 1, out, 4);
    oh_assert_i64(&out[0], 1, OH_DIMS(3), (int64_t[]){-1, 3, 5});
    oh_assert_i64(&out[1], 1, OH_DIMS(3), (int64_t[]){3, 1, 0});
    oh_assert_i64(&out[2], 1, OH_DIMS(6), (int64_t[]){2, 1, 2, 0, 1, 1});
    oh_assert_i64(&out[3], 1, OH_DIMS(3), (int64_t[]){1, 3, 2});
    oh_free_all(out, 4);
    oh_free_all(in, 1);
    oh_node_free(n);

    n = oh_node("Unique", 1, 4);
    oh_attr_int(n, "sorted", 0);
    struct mq_tensor in2[1] = {oh_i64(1, OH_DIMS(6), x)};
    oh_run_ok(n, 11, in2, 1, out, 4);
    oh_assert_i64(&out[0], 1, OH_DIMS(3), (int64_t[]){5, 3, -1});
    oh_assert_i64(&out[1], 1, OH_DIMS(3), (int64_t[]){0, 1, 3});
    oh_assert_i64(&out[2], 1, OH_DIMS(6), (int64_t[]){0, 1, 0, 2, 1, 1});
    oh_assert_i64(&out[3], 1, OH_DIMS(3), (int64_t[]){2, 3, 1});
    oh_free_all(out, 4);
    oh_free_all(in2, 1);
    oh_node_free(n);
}
END_TEST

START_TEST(unique_axis_and_optional_outputs)
{
    Onnx__NodeProto *n = oh_node("Unique", 1, 4);
    oh_attr_int(n, "axis", -2);
    float x[16] = {1, 1, 0, 1, 2, 1, 0, 1, 1, 1, 0, 1, 2, 1, 0, 1};
    struct mq_tensor in[1] = {oh_f32(3, OH_DIMS(2, 4, 2), x)};
    struct mq_tensor out[4] = {{0}};
    oh_run_ok(n, 11, in, 1, out, 4);
    oh_assert_f32(&out[0], 3, OH_DIMS(2, 3, 2), (float[]){0, 1, 1, 1, 2, 1, 0, 1, 1, 1, 2, 1},
                  0, 0);
    oh_assert_i64(&out[1], 1, OH_DIMS(3), (int64_t[]){1, 0, 2});
    oh_assert_i64(&out[2], 1, OH_DIMS(4), (int64_t[]){1, 0, 2, 0});
    oh_assert_i64(&out[3], 1, OH_DIMS(3), (int64_t[]){2, 1, 1});
    oh_free_all(out, 4);
    oh_free_all(in, 1);
    oh_node_free(n);

    /* Only Y requested; an empty input gives empty outputs. */
    n = oh_node("Unique", 1, 1);
    struct mq_tensor e[1] = {oh_f32(1, OH_DIMS(0), NULL)};
    oh_run_ok(n, 11, e, 1, out, 1);
    oh_assert_shape(&out[0], 1, OH_DIMS(0));
    mq_tensor_free(&out[0]);
    oh_free_all(e, 1);
    oh_node_free(n);
}
END_TEST

/* ----------------------------------------------------- NonMaxSuppression */

static const float nms_boxes[24] = {0, 0,  1, 1,  0, 0.1f,  1, 1.1f,  0, -0.1f, 1, 0.9f,
                                    0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100,   1, 101};
static const float nms_scores[6] = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};

static void nms_case(int center, const float *boxes, int64_t max_out, float score_thr,
                     int with_score_thr, int64_t n_want, const int64_t *want)
{
    Onnx__NodeProto *n = oh_node("NonMaxSuppression", 5, 1);
    if (center)
        oh_attr_int(n, "center_point_box", 1);
    if (!with_score_thr)
        oh_omit_input(n, 4);
    struct mq_tensor in[5] = {oh_f32(3, OH_DIMS(1, 6, 4), boxes),
                              oh_f32(3, OH_DIMS(1, 1, 6), nms_scores),
                              oh_i64(1, OH_DIMS(1), (int64_t[]){max_out}),
                              oh_f32(1, OH_DIMS(1), (float[]){0.5f}),
                              oh_f32(1, OH_DIMS(1), (float[]){score_thr})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 11, in, 5, &out, 1);
    oh_assert_i64(&out, 2, OH_DIMS(n_want, 3), want);
    mq_tensor_free(&out);
    oh_free_all(in, 5);
    oh_node_free(n);
}

START_TEST(nms_iou_scores_limits_and_center_format)
{
    nms_case(0, nms_boxes, 3, 0, 1, 3, (int64_t[]){0, 0, 3, 0, 0, 0, 0, 0, 5});
    nms_case(0, nms_boxes, 3, 0.4f, 1, 2, (int64_t[]){0, 0, 3, 0, 0, 0});
    nms_case(0, nms_boxes, 2, 0, 0, 2, (int64_t[]){0, 0, 3, 0, 0, 0});
    nms_case(0, nms_boxes, 0, 0, 1, 0, NULL);
    const float centers[24] = {0.5f, 0.5f,  1, 1, 0.5f, 0.6f,  1, 1, 0.5f, 0.4f,   1, 1,
                               0.5f, 10.5f, 1, 1, 0.5f, 10.6f, 1, 1, 0.5f, 100.5f, 1, 1};
    nms_case(1, centers, 3, 0, 1, 3, (int64_t[]){0, 0, 3, 0, 0, 0, 0, 0, 5});
    /* Flipped corners describe the same boxes. */
    const float flipped[24] = {1, 1,  0, 0,  0, 0.1f,  1, 1.1f,  0, 0.9f, 1, -0.1f,
                               0, 10, 1, 11, 1, 10.1f, 0, 11.1f, 1, 101,  0, 100};
    nms_case(0, flipped, 3, 0, 1, 3, (int64_t[]){0, 0, 3, 0, 0, 0, 0, 0, 5});
}
END_TEST

START_TEST(nms_optional_inputs_absent_and_errors)
{
    Onnx__NodeProto *n = oh_node("NonMaxSuppression", 2, 1);
    struct mq_tensor in[2] = {oh_f32(3, OH_DIMS(1, 6, 4), nms_boxes),
                              oh_f32(3, OH_DIMS(1, 1, 6), nms_scores)};
    struct mq_tensor out = {0};
    oh_run_ok(n, 10, in, 2, &out, 1);
    oh_assert_shape(&out, 2, OH_DIMS(0, 3));
    mq_tensor_free(&out);
    oh_free_all(in, 2);

    struct mq_error err;
    struct mq_tensor bad[2] = {oh_f32(3, OH_DIMS(1, 6, 4), nms_boxes),
                               oh_f32(3, OH_DIMS(1, 1, 5), NULL)};
    const char *msg = oh_run_fails(n, 10, bad, 2, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(NonMaxSuppression)"));
    oh_free_all(bad, 2);
    oh_node_free(n);
}
END_TEST

/* --------------------------------------------------------- TfIdfVectorizer */

static Onnx__NodeProto *tfidf_node(const char *mode, int min_n, int max_n, int skip)
{
    Onnx__NodeProto *n = oh_node("TfIdfVectorizer", 1, 1);
    oh_attr_string(n, "mode", mode);
    oh_attr_int(n, "min_gram_length", min_n);
    oh_attr_int(n, "max_gram_length", max_n);
    oh_attr_int(n, "max_skip_count", skip);
    oh_attr_ints(n, "ngram_counts", 2, (int64_t[]){0, 4});
    oh_attr_ints(n, "ngram_indexes", 7, (int64_t[]){0, 1, 2, 3, 4, 5, 6});
    oh_attr_ints(n, "pool_int64s", 10, (int64_t[]){2, 3, 5, 4, 5, 6, 7, 8, 6, 7});
    return n;
}

static const int32_t tfidf_input[12] = {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8};

START_TEST(tfidf_tf_skips_and_batches)
{
    Onnx__NodeProto *n = tfidf_node("TF", 1, 2, 5);
    struct mq_tensor in[1] = {oh_i32(1, OH_DIMS(12), tfidf_input)};
    struct mq_tensor out = {0};
    oh_run_ok(n, 9, in, 1, &out, 1);
    oh_assert_f32(&out, 1, OH_DIMS(7), (float[]){0, 3, 1, 0, 1, 3, 1}, 0, 0);
    mq_tensor_free(&out);
    oh_free_all(in, 1);
    oh_node_free(n);

    n = tfidf_node("TF", 2, 2, 0);
    struct mq_tensor b[1] = {oh_i32(2, OH_DIMS(2, 6), tfidf_input)};
    oh_run_ok(n, 9, b, 1, &out, 1);
    oh_assert_f32(&out, 2, OH_DIMS(2, 7), (float[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1},
                  0, 0);
    mq_tensor_free(&out);
    oh_free_all(b, 1);
    oh_node_free(n);
}
END_TEST

START_TEST(tfidf_weighted_modes_and_errors)
{
    const float weights[7] = {1, 2, 3, 4, 5, 6, 7};
    const char *modes[] = {"IDF", "TFIDF"};
    const float want[2][7] = {{0, 2, 3, 0, 5, 6, 7}, {0, 6, 3, 0, 5, 18, 7}};
    for (int m = 0; m < 2; m++) {
        Onnx__NodeProto *n = tfidf_node(modes[m], 1, 2, 5);
        oh_attr_floats(n, "weights", 7, weights);
        struct mq_tensor in[1] = {oh_i64(1, OH_DIMS(12), NULL)};
        for (int i = 0; i < 12; i++)
            ((int64_t *)in[0].data)[i] = tfidf_input[i];
        struct mq_tensor out = {0};
        oh_run_ok(n, 9, in, 1, &out, 1);
        oh_assert_f32(&out, 1, OH_DIMS(7), want[m], 0, 0);
        mq_tensor_free(&out);
        oh_free_all(in, 1);
        oh_node_free(n);
    }
    Onnx__NodeProto *n = tfidf_node("BM25", 1, 2, 5);
    struct mq_error err;
    struct mq_tensor in[1] = {oh_i32(1, OH_DIMS(12), tfidf_input)};
    const char *msg = oh_run_fails(n, 9, in, 1, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(TfIdfVectorizer)"));
    ck_assert_ptr_nonnull(strstr(msg, "BM25"));
    oh_free_all(in, 1);
    oh_node_free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_misc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, topk_largest_default_axis_ties_lower_index_first);
    tcase_add_test(tc, topk_smallest_axis0_and_negative_axis);
    tcase_add_test(tc, topk_opset1_attribute_k_and_int_types);
    tcase_add_test(tc, topk_empty_and_half_and_errors);
    tcase_add_test(tc, cumsum_modes);
    tcase_add_test(tc, cumsum_axis0_ints_and_empty);
    tcase_add_test(tc, einsum_matmul_explicit_and_implicit);
    tcase_add_test(tc, einsum_diagonal_trace_sum_outer);
    tcase_add_test(tc, einsum_ellipsis_broadcast_and_ints);
    tcase_add_test(tc, einsum_errors);
    tcase_add_test(tc, det_batches_pivoting_and_singular);
    tcase_add_test(tc, unique_flat_sorted_and_unsorted);
    tcase_add_test(tc, unique_axis_and_optional_outputs);
    tcase_add_test(tc, nms_iou_scores_limits_and_center_format);
    tcase_add_test(tc, nms_optional_inputs_absent_and_errors);
    tcase_add_test(tc, tfidf_tf_skips_and_batches);
    tcase_add_test(tc, tfidf_weighted_modes_and_errors);
    return mq_check_run(s, tc);
}
