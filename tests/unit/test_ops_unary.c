/* One-input element-wise operators (src/interp/ops/unary.c). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static const float xs[5] = {-2.0f, -0.5f, 0.0f, 0.5f, 2.0f};

/* Runs op (with attributes already set on n) on xs and checks against expected. */
static void check_xs(Onnx__NodeProto *n, int opset, const float *expected, float tol)
{
    struct mq_error err = {{0}};
    struct mq_tensor in = oh_f32(1, OH_DIMS(5), xs), out = {0};
    int rc = oh_run(n, opset, &in, 1, &out, 1, &err);
    ck_assert_msg(rc == 0, "%s: %s", n->op_type, err.message);
    oh_assert_f32(&out, 1, OH_DIMS(5), expected, tol, tol);
    mq_tensor_free(&in);
    mq_tensor_free(&out);
    oh_node_free(n);
}

static void check_op(const char *op, int opset, const float *expected, float tol)
{
    check_xs(oh_node(op, 1, 1), opset, expected, tol);
}

START_TEST(activations_with_defaults)
{
    check_op("Relu", 14, (float[]){0, 0, 0, 0.5f, 2}, 0);
    check_op("LeakyRelu", 16, (float[]){-0.02f, -0.005f, 0, 0.5f, 2}, 1e-7f);
    check_op("Elu", 6, (float[]){-0.8646647f, -0.3934693f, 0, 0.5f, 2}, 1e-6f);
    check_op("Selu", 6, (float[]){-1.520166f, -0.6917582f, 0, 0.5253505f, 2.101402f}, 1e-6f);
    check_op("Sigmoid", 13, (float[]){0.1192029f, 0.3775407f, 0.5f, 0.6224593f, 0.8807971f},
             1e-6f);
    check_op("HardSigmoid", 6, (float[]){0.1f, 0.4f, 0.5f, 0.6f, 0.9f}, 1e-6f);
    check_op("HardSwish", 14, (float[]){-0.3333333f, -0.2083333f, 0, 0.2916667f, 1.666667f},
             1e-6f);
    check_op("ThresholdedRelu", 10, (float[]){0, 0, 0, 0, 2}, 0);
    check_op("Softplus", 1, (float[]){0.126928f, 0.474077f, 0.6931472f, 0.974077f, 2.126928f},
             1e-6f);
    check_op("Softsign", 1, (float[]){-2 / 3.0f, -1 / 3.0f, 0, 1 / 3.0f, 2 / 3.0f}, 1e-6f);
    check_op("Mish", 18, (float[]){-0.2525015f, -0.2207438f, 0, 0.3752452f, 1.943959f}, 1e-6f);
    check_op("Gelu", 20, (float[]){-0.04550026f, -0.1542688f, 0, 0.3457312f, 1.9545f}, 1e-6f);
    check_op("Erf", 13, (float[]){-0.9953223f, -0.5204999f, 0, 0.5204999f, 0.9953223f}, 1e-6f);
    check_op("Shrink", 9, (float[]){-2, 0, 0, 0, 2}, 0);
}
END_TEST

/*
 * LeakyRelu and HardSwish on every lane of vectors and their tails, NaN, infinities and both
 * zeros included: each value the bits of the scalar formula (the loops are vectorised).
 */
START_TEST(vectorised_selects_keep_every_bit)
{
    enum { N = 37 };
    float x[N];
    const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -3.0f, 3.0f, -1e-30f};
    for (int i = 0; i < N; i++)
        x[i] = i < (int)(sizeof special / sizeof special[0]) ? special[i] : (float)(i - 20) * 0.37f;
    for (int op = 0; op < 2; op++) {
        Onnx__NodeProto *n = oh_node(op ? "HardSwish" : "LeakyRelu", 1, 1);
        if (!op)
            oh_attr_float(n, "alpha", 0.3f);
        struct mq_error err = {{0}};
        struct mq_tensor in = oh_f32(1, OH_DIMS(N), x), out = {0};
        ck_assert_msg(oh_run(n, op ? 14 : 16, &in, 1, &out, 1, &err) == 0, "%s", err.message);
        const float *y = out.data;
        for (int i = 0; i < N; i++) {
            volatile float v = x[i]; /* the scalar formula, kept scalar */
            float want;
            if (op) {
                volatile float h = v / 6.0f + 0.5f;
                want = v * (h < 0 ? 0.0f : h > 1 ? 1.0f : h);
            } else {
                want = v < 0 ? 0.3f * v : v;
            }
            uint32_t a, b;
            memcpy(&a, &y[i], 4);
            memcpy(&b, &want, 4);
            ck_assert_msg(a == b, "%s(%g): %08x, expected %08x", n->op_type, (double)x[i],
                          (unsigned)a, (unsigned)b);
        }
        mq_tensor_free(&in);
        mq_tensor_free(&out);
        oh_node_free(n);
    }
}
END_TEST

START_TEST(activation_attributes)
{
    Onnx__NodeProto *n = oh_node("LeakyRelu", 1, 1);
    oh_attr_float(n, "alpha", 0.5f);
    check_xs(n, 6, (float[]){-1, -0.25f, 0, 0.5f, 2}, 0);

    n = oh_node("Celu", 1, 1);
    oh_attr_float(n, "alpha", 2.0f);
    check_xs(n, 12, (float[]){-1.264241f, -0.4423984f, 0, 0.5f, 2}, 1e-6f);

    n = oh_node("Gelu", 1, 1);
    oh_attr_string(n, "approximate", "tanh");
    check_xs(n, 20, (float[]){-0.04540231f, -0.154286f, 0, 0.345714f, 1.954598f}, 1e-6f);

    n = oh_node("ThresholdedRelu", 1, 1);
    oh_attr_float(n, "alpha", 0.25f);
    check_xs(n, 10, (float[]){0, 0, 0, 0.5f, 2}, 0);

    n = oh_node("HardSigmoid", 1, 1);
    oh_attr_float(n, "alpha", 1.0f);
    oh_attr_float(n, "beta", 0.25f);
    check_xs(n, 6, (float[]){0, 0, 0.25f, 0.75f, 1}, 0);

    n = oh_node("Shrink", 1, 1);
    oh_attr_float(n, "lambd", 0.4f);
    oh_attr_float(n, "bias", 0.1f);
    check_xs(n, 9, (float[]){-1.9f, -0.4f, 0, 0.4f, 1.9f}, 1e-6f);

    struct mq_error err;
    struct mq_tensor in = oh_f32(1, OH_DIMS(5), xs), out = {0};
    n = oh_node("Gelu", 1, 1);
    oh_attr_string(n, "approximate", "sigmoid");
    ck_assert_int_ne(oh_run(n, 20, &in, 1, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "approximate"));
    oh_node_free(n);
    n = oh_node("Celu", 1, 1);
    oh_attr_float(n, "alpha", 0.0f);
    ck_assert_int_ne(oh_run(n, 12, &in, 1, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "alpha"));
    oh_node_free(n);
    mq_tensor_free(&in);
}
END_TEST

START_TEST(math_and_rounding)
{
    check_op("Abs", 13, (float[]){2, 0.5f, 0, 0.5f, 2}, 0);
    check_op("Neg", 13, (float[]){2, 0.5f, 0, -0.5f, -2}, 0);
    check_op("Sign", 13, (float[]){-1, -1, 0, 1, 1}, 0);
    check_op("Floor", 13, (float[]){-2, -1, 0, 0, 2}, 0);
    check_op("Ceil", 13, (float[]){-2, 0, 0, 1, 2}, 0);
    check_op("Exp", 13, (float[]){expf(-2), expf(-0.5f), 1, expf(0.5f), expf(2)}, 1e-6f);
    check_op("Tanh", 13, (float[]){tanhf(-2), tanhf(-0.5f), 0, tanhf(0.5f), tanhf(2)}, 1e-6f);
    check_op("Sin", 7, (float[]){sinf(-2), sinf(-0.5f), 0, sinf(0.5f), sinf(2)}, 1e-6f);
    check_op("Atan", 7, (float[]){atanf(-2), atanf(-0.5f), 0, atanf(0.5f), atanf(2)}, 1e-6f);
    check_op("Asinh", 9, (float[]){asinhf(-2), asinhf(-0.5f), 0, asinhf(0.5f), asinhf(2)}, 1e-6f);
    check_op("Reciprocal", 13, (float[]){-0.5f, -2, INFINITY, 2, 0.5f}, 0);
    check_op("Sqrt", 13, (float[]){NAN, NAN, 0, sqrtf(0.5f), sqrtf(2)}, 1e-6f);
    check_op("Log", 13, (float[]){NAN, NAN, -INFINITY, logf(0.5f), logf(2)}, 1e-6f);

    /* Round: halves go to the even neighbour */
    Onnx__NodeProto *n = oh_node("Round", 1, 1);
    struct mq_error err;
    struct mq_tensor in = oh_f32(1, OH_DIMS(6), (float[]){0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f});
    struct mq_tensor out = {0};
    ck_assert_int_eq(oh_run(n, 11, &in, 1, &out, 1, &err), 0);
    oh_assert_f32(&out, 1, OH_DIMS(6), (float[]){0, 2, 2, -0.0f, -2, 2}, 0, 0);
    mq_tensor_free(&in);
    mq_tensor_free(&out);
    oh_node_free(n);
}
END_TEST

START_TEST(integer_types)
{
    struct mq_error err;
    struct mq_tensor in = oh_i32(1, OH_DIMS(4), (int32_t[]){-7, 0, 5, INT32_MIN}), out = {0};
    struct {
        const char *op;
        int opset;
        int64_t expected[4];
    } cases[] = {
        {"Abs", 13, {7, 0, 5, INT32_MIN}},
        {"Neg", 13, {7, 0, -5, INT32_MIN}},
        {"Sign", 13, {-1, 0, 1, -1}},
        {"Relu", 14, {0, 0, 5, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Onnx__NodeProto *n = oh_node(cases[k].op, 1, 1);
        ck_assert_msg(oh_run(n, cases[k].opset, &in, 1, &out, 1, &err) == 0, "%s", err.message);
        ck_assert_int_eq(out.dtype, MQ_DTYPE_INT32);
        oh_assert_i64(&out, 1, OH_DIMS(4), cases[k].expected);
        mq_tensor_free(&out);
        oh_node_free(n);
    }
    /* ops defined for floats only refuse integers with the node's name */
    Onnx__NodeProto *n = oh_node("Exp", 1, 1);
    ck_assert_int_ne(oh_run(n, 13, &in, 1, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "node 'node_under_test' (Exp)"));
    ck_assert_ptr_nonnull(strstr(err.message, "int32"));
    oh_node_free(n);
    mq_tensor_free(&in);
}
END_TEST

START_TEST(clip_attributes_and_inputs)
{
    /* opset 6: attributes; an absent bound leaves that side open */
    Onnx__NodeProto *n = oh_node("Clip", 1, 1);
    oh_attr_float(n, "min", -1.0f);
    oh_attr_float(n, "max", 1.0f);
    check_xs(n, 6, (float[]){-1, -0.5f, 0, 0.5f, 1}, 0);
    n = oh_node("Clip", 1, 1);
    oh_attr_float(n, "max", 0.0f);
    check_xs(n, 6, (float[]){-2, -0.5f, 0, 0, 0}, 0);

    /* opset 11: optional inputs */
    struct mq_error err;
    n = oh_node("Clip", 3, 1);
    struct mq_tensor in[3] = {oh_f32(1, OH_DIMS(5), xs), oh_f32(0, NULL, (float[]){-0.5f}),
                              oh_f32(0, NULL, (float[]){0.25f})};
    struct mq_tensor out = {0};
    ck_assert_msg(oh_run(n, 13, in, 3, &out, 1, &err) == 0, "%s", err.message);
    oh_assert_f32(&out, 1, OH_DIMS(5), (float[]){-0.5f, -0.5f, 0, 0.25f, 0.25f}, 0, 0);
    mq_tensor_free(&out);
    oh_omit_input(n, 1);
    ck_assert_msg(oh_run(n, 13, in, 3, &out, 1, &err) == 0, "%s", err.message);
    oh_assert_f32(&out, 1, OH_DIMS(5), (float[]){-2, -0.5f, 0, 0.25f, 0.25f}, 0, 0);
    mq_tensor_free(&out);
    oh_node_free(n);
    n = oh_node("Clip", 1, 1);
    ck_assert_msg(oh_run(n, 11, in, 1, &out, 1, &err) == 0, "%s", err.message);
    oh_assert_f32(&out, 1, OH_DIMS(5), xs, 0, 0);
    mq_tensor_free(&out);
    oh_node_free(n);

    /* NaN passes through, -0 stays -0 against a +0 bound, infinities clamp; 37 values so the
       vector loop and its tail both run */
    {
        float x[37], want[37];
        for (int i = 0; i < 37; i++)
            x[i] = (float)(i - 18) * 0.5f;
        x[0] = NAN, x[5] = -NAN, x[9] = -0.0f, x[20] = INFINITY, x[36] = -INFINITY, x[35] = NAN;
        n = oh_node("Clip", 3, 1);
        struct mq_tensor v[3] = {oh_f32(1, OH_DIMS(37), x), oh_f32(0, NULL, (float[]){0.0f}),
                                 oh_f32(0, NULL, (float[]){6.0f})};
        for (int lo_open = 0; lo_open < 2; lo_open++) {
            if (lo_open)
                oh_omit_input(n, 1);
            ck_assert_msg(oh_run(n, 13, v, 3, &out, 1, &err) == 0, "%s", err.message);
            const float *y = out.data;
            for (int i = 0; i < 37; i++) {
                want[i] = !lo_open && x[i] < 0.0f ? 0.0f : x[i];
                want[i] = want[i] > 6.0f ? 6.0f : want[i];
                if (isnan(want[i]))
                    ck_assert_msg(isnan(y[i]), "value %d: NaN expected", i);
                else
                    ck_assert_msg(y[i] == want[i] && signbit(y[i]) == signbit(want[i]),
                                  "value %d: %g expected, got %g", i, want[i], y[i]);
            }
            mq_tensor_free(&out);
        }
        oh_node_free(n);
        for (int i = 0; i < 3; i++)
            mq_tensor_free(&v[i]);
    }

    /* integer Clip (opset 12) with an int8 edge value */
    n = oh_node("Clip", 3, 1);
    struct mq_tensor i8[3] = {oh_i8(1, OH_DIMS(4), (int8_t[]){-128, -3, 4, 127}),
                              oh_i8(0, NULL, (int8_t[]){-5}), oh_i8(0, NULL, (int8_t[]){100})};
    ck_assert_msg(oh_run(n, 12, i8, 3, &out, 1, &err) == 0, "%s", err.message);
    oh_assert_i64(&out, 1, OH_DIMS(4), (int64_t[]){-5, -3, 4, 100});
    mq_tensor_free(&out);

    /* a bound of another type, or not a scalar, is refused */
    struct mq_tensor bad[3] = {oh_i8(1, OH_DIMS(1), (int8_t[]){1}),
                               oh_f32(0, NULL, (float[]){0}),
                               oh_i8(1, OH_DIMS(2), (int8_t[]){1, 2})};
    ck_assert_int_ne(oh_run(n, 13, bad, 3, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "min"));
    mq_tensor_free(&bad[1]);
    bad[1] = oh_i8(0, NULL, (int8_t[]){0});
    ck_assert_int_ne(oh_run(n, 13, bad, 3, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "max"));
    oh_node_free(n);
    for (int i = 0; i < 3; i++) {
        mq_tensor_free(&in[i]);
        mq_tensor_free(&i8[i]);
        mq_tensor_free(&bad[i]);
    }
}
END_TEST

START_TEST(isnan_isinf)
{
    struct mq_error err;
    struct mq_tensor in = oh_f32(1, OH_DIMS(4), (float[]){NAN, INFINITY, -INFINITY, 1}), out = {0};
    Onnx__NodeProto *n = oh_node("IsNaN", 1, 1);
    ck_assert_int_eq(oh_run(n, 13, &in, 1, &out, 1, &err), 0);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_BOOL);
    oh_assert_i64(&out, 1, OH_DIMS(4), (int64_t[]){1, 0, 0, 0});
    mq_tensor_free(&out);
    oh_node_free(n);

    n = oh_node("IsInf", 1, 1);
    ck_assert_int_eq(oh_run(n, 10, &in, 1, &out, 1, &err), 0);
    oh_assert_i64(&out, 1, OH_DIMS(4), (int64_t[]){0, 1, 1, 0});
    mq_tensor_free(&out);
    oh_node_free(n);
    n = oh_node("IsInf", 1, 1);
    oh_attr_int(n, "detect_positive", 0);
    ck_assert_int_eq(oh_run(n, 10, &in, 1, &out, 1, &err), 0);
    oh_assert_i64(&out, 1, OH_DIMS(4), (int64_t[]){0, 0, 1, 0});
    mq_tensor_free(&out);
    oh_node_free(n);
    n = oh_node("IsInf", 1, 1);
    oh_attr_int(n, "detect_negative", 0);
    ck_assert_int_eq(oh_run(n, 10, &in, 1, &out, 1, &err), 0);
    oh_assert_i64(&out, 1, OH_DIMS(4), (int64_t[]){0, 1, 0, 0});
    mq_tensor_free(&out);
    oh_node_free(n);
    mq_tensor_free(&in);
}
END_TEST

START_TEST(half_types_and_long_buffers)
{
    /* longer than one conversion chunk, so the chunk loop's tail is exercised */
    enum { N = 2500 };
    uint16_t *h = malloc(N * sizeof *h);
    ck_assert_ptr_nonnull(h);
    for (int i = 0; i < N; i++)
        h[i] = mq_float_to_half((float)(i % 7) - 3.0f);
    struct mq_error err;
    struct mq_tensor in = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(50, 50), h), out = {0};
    Onnx__NodeProto *n = oh_node("Relu", 1, 1);
    ck_assert_int_eq(oh_run(n, 14, &in, 1, &out, 1, &err), 0);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_FLOAT16);
    oh_assert_shape(&out, 2, OH_DIMS(50, 50));
    const uint16_t *o = out.data;
    for (int i = 0; i < N; i++) {
        float v = (float)(i % 7) - 3.0f;
        ck_assert_msg(mq_half_to_float(o[i]) == (v < 0 ? 0 : v), "element %d", i);
    }
    mq_tensor_free(&out);
    oh_node_free(n);

    n = oh_node("IsNaN", 1, 1);
    ck_assert_int_eq(oh_run(n, 13, &in, 1, &out, 1, &err), 0);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_BOOL);
    for (int i = 0; i < N; i++)
        ck_assert(((uint8_t *)out.data)[i] == 0);
    mq_tensor_free(&out);
    oh_node_free(n);
    mq_tensor_free(&in);

    for (int i = 0; i < 4; i++)
        h[i] = mq_float_to_bfloat16(xs[i + 1]);
    in = oh_typed(MQ_DTYPE_BFLOAT16, 1, OH_DIMS(4), h);
    n = oh_node("Clip", 3, 1);
    struct mq_tensor all[3] = {in,
                               oh_typed(MQ_DTYPE_BFLOAT16, 0, NULL,
                                        (uint16_t[]){mq_float_to_bfloat16(-0.25f)}),
                               oh_typed(MQ_DTYPE_BFLOAT16, 0, NULL,
                                        (uint16_t[]){mq_float_to_bfloat16(1.0f)})};
    ck_assert_msg(oh_run(n, 13, all, 3, &out, 1, &err) == 0, "%s", err.message);
    o = out.data;
    ck_assert(mq_bfloat16_to_float(o[0]) == -0.25f);
    ck_assert(mq_bfloat16_to_float(o[1]) == 0.0f);
    ck_assert(mq_bfloat16_to_float(o[2]) == 0.5f);
    ck_assert(mq_bfloat16_to_float(o[3]) == 1.0f);
    mq_tensor_free(&out);
    for (int i = 0; i < 3; i++)
        mq_tensor_free(&all[i]);
    oh_node_free(n);
    free(h);
}
END_TEST

START_TEST(empty_and_double)
{
    struct mq_error err;
    struct mq_tensor in = oh_f32(2, OH_DIMS(3, 0), NULL), out = {0};
    Onnx__NodeProto *n = oh_node("Sigmoid", 1, 1);
    ck_assert_int_eq(oh_run(n, 13, &in, 1, &out, 1, &err), 0);
    oh_assert_shape(&out, 2, OH_DIMS(3, 0));
    ck_assert_int_eq(out.count, 0);
    mq_tensor_free(&out);
    mq_tensor_free(&in);

    in = oh_typed(MQ_DTYPE_DOUBLE, 1, OH_DIMS(2), (double[]){-40.0, 1e-3});
    ck_assert_int_eq(oh_run(n, 13, &in, 1, &out, 1, &err), 0);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_DOUBLE);
    const double *d = out.data;
    ck_assert(fabs(d[0] - 4.248354255291589e-18) < 1e-30);
    ck_assert(fabs(d[1] - 0.5002499999791666) < 1e-15);
    mq_tensor_free(&out);
    mq_tensor_free(&in);
    oh_node_free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_unary");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, activations_with_defaults);
    tcase_add_test(tc, vectorised_selects_keep_every_bit);
    tcase_add_test(tc, activation_attributes);
    tcase_add_test(tc, math_and_rounding);
    tcase_add_test(tc, integer_types);
    tcase_add_test(tc, clip_attributes_and_inputs);
    tcase_add_test(tc, isnan_isinf);
    tcase_add_test(tc, half_types_and_long_buffers);
    tcase_add_test(tc, empty_and_double);
    return mq_check_run(s, tc);
}
