/*
 * QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
 * QLinearMatMul, ConvInteger and QLinearConv.  Expected integer results were
 * computed with numpy (int64 accumulation, float32 requantization).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "core/tensor.h"
#include "op_harness.h"

static struct mq_tensor f32_scalar(float v) { return oh_f32(0, NULL, &v); }

START_TEST(quantize_rounds_half_to_even_and_saturates)
{
    Onnx__NodeProto *n = oh_node("QuantizeLinear", 3, 1);
    struct mq_tensor in[3] = {
        oh_f32(1, OH_DIMS(9), (const float[]){1, 3, 5, -1, -3, 1000, -1000, 2.0001f, NAN}),
        f32_scalar(2.0f), oh_u8(0, NULL, (const uint8_t[]){128})};
    struct mq_tensor y = oh_run1_take_all(n, 10, in, 3);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_UINT8);
    /* x/2 = .5 -> 0, 1.5 -> 2, 2.5 -> 2, -.5 -> 0, -1.5 -> -2; NaN goes to qmin. */
    oh_assert_i64(&y, 1, OH_DIMS(9),
                  (const int64_t[]){128, 130, 130, 128, 126, 255, 0, 129, 0});
    mq_tensor_free(&y);

    /* Rounding happens before the zero point is added (as ONNX QuantizeLinear specifies): 0.49999997 + 1 -> 1. */
    n = oh_node("QuantizeLinear", 3, 1);
    in[0] = oh_f32(1, OH_DIMS(1), (const float[]){0.49999997f});
    in[1] = f32_scalar(1.0f);
    in[2] = oh_i8(1, OH_DIMS(1), (const int8_t[]){125});
    y = oh_run1_take_all(n, 13, in, 3);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT8);
    oh_assert_i64(&y, 1, OH_DIMS(1), (const int64_t[]){125});
    mq_tensor_free(&y);

    /* No zero point: uint8 with zero point 0. */
    n = oh_node("QuantizeLinear", 2, 1);
    in[0] = oh_f32(1, OH_DIMS(3), (const float[]){-1, 300, 7.5f});
    in[1] = f32_scalar(1.0f);
    y = oh_run1_take_all(n, 13, in, 2);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_UINT8);
    oh_assert_i64(&y, 1, OH_DIMS(3), (const int64_t[]){0, 255, 8});
    mq_tensor_free(&y);

    /* int32 input (opset 10 allows it). */
    n = oh_node("QuantizeLinear", 3, 1);
    in[0] = oh_i32(1, OH_DIMS(2), (const int32_t[]){-300, 6});
    in[1] = f32_scalar(4.0f);
    in[2] = oh_i8(0, NULL, (const int8_t[]){-1});
    y = oh_run1_take_all(n, 10, in, 3);
    oh_assert_i64(&y, 1, OH_DIMS(2), (const int64_t[]){-76, 1});
    mq_tensor_free(&y);

    /* int4 saturates to its own range -8..7. */
    int8_t z4 = 1;
    n = oh_node("QuantizeLinear", 3, 1);
    in[0] = oh_f32(1, OH_DIMS(3), (const float[]){100, -100, 3});
    in[1] = f32_scalar(2.0f);
    in[2] = oh_typed(MQ_DTYPE_INT4, 0, NULL, &z4);
    y = oh_run1_take_all(n, 21, in, 3);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT4);
    oh_assert_i64(&y, 1, OH_DIMS(3), (const int64_t[]){7, -8, 3});
    mq_tensor_free(&y);

    /* float8e4m3fn: x / scale rounded to the format (2.9 -> 3.0, code 0x44), saturating. */
    n = oh_node("QuantizeLinear", 2, 1);
    oh_attr_int(n, "output_dtype", MQ_DTYPE_FLOAT8E4M3FN);
    in[0] = oh_f32(1, OH_DIMS(2), (const float[]){5.8f, 1e6f});
    in[1] = f32_scalar(2.0f);
    y = oh_run1_take_all(n, 21, in, 2);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT8E4M3FN);
    ck_assert_int_eq(((const uint8_t *)y.data)[0], 0x44);
    ck_assert_int_eq(((const uint8_t *)y.data)[1], 0x7e);
    mq_tensor_free(&y);

    /* and back: 3.0 * 2 = 6 */
    uint8_t code = 0x44;
    n = oh_node("DequantizeLinear", 2, 1);
    in[0] = oh_typed(MQ_DTYPE_FLOAT8E4M3FN, 0, NULL, &code);
    in[1] = f32_scalar(2.0f);
    y = oh_run1_take_all(n, 19, in, 2);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT);
    ck_assert(((const float *)y.data)[0] == 6.0f);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(quantize_per_axis_and_blocked)
{
    static const float x[] = {1, 2, 4, -1, -2, -4};
    Onnx__NodeProto *n = oh_node("QuantizeLinear", 3, 1);
    struct mq_tensor in[3] = {oh_f32(2, OH_DIMS(2, 3), x),
                              oh_f32(1, OH_DIMS(3), (const float[]){1, 2, 4}),
                              oh_i8(1, OH_DIMS(3), (const int8_t[]){0, 1, -1})};
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 3);
    oh_assert_i64(&y, 2, OH_DIMS(2, 3), (const int64_t[]){1, 2, 0, -1, 0, -2});
    mq_tensor_free(&y);

    /* Axis 0 through a negative axis. */
    n = oh_node("QuantizeLinear", 3, 1);
    oh_attr_int(n, "axis", -2);
    in[0] = oh_f32(2, OH_DIMS(2, 3), x);
    in[1] = oh_f32(1, OH_DIMS(2), (const float[]){1, 2});
    in[2] = oh_u8(1, OH_DIMS(2), (const uint8_t[]){10, 20});
    y = oh_run1_take_all(n, 13, in, 3);
    oh_assert_i64(&y, 2, OH_DIMS(2, 3), (const int64_t[]){11, 12, 14, 20, 19, 18});
    mq_tensor_free(&y);

    /* Blocked, int16 (opset 21): blocks of 2 along axis 1. */
    int16_t zp[4] = {0, 100, -5, 0};
    n = oh_node("QuantizeLinear", 3, 1);
    oh_attr_int(n, "block_size", 2);
    in[0] = oh_f32(2, OH_DIMS(2, 4), (const float[]){1, 2, 3, 4, 8, -8, 16, 320000});
    in[1] = oh_f32(2, OH_DIMS(2, 2), (const float[]){1, 2, 4, 8});
    in[2] = oh_typed(MQ_DTYPE_INT16, 2, OH_DIMS(2, 2), zp);
    y = oh_run1_take_all(n, 21, in, 3);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT16);
    oh_assert_i64(&y, 2, OH_DIMS(2, 4), (const int64_t[]){1, 2, 102, 102, -3, -7, 2, 32767});
    mq_tensor_free(&y);

    /* output_dtype picks the type without a zero point. */
    n = oh_node("QuantizeLinear", 2, 1);
    oh_attr_int(n, "output_dtype", MQ_DTYPE_UINT16);
    in[0] = oh_f32(1, OH_DIMS(2), (const float[]){70000, 3});
    in[1] = f32_scalar(1.0f);
    y = oh_run1_take_all(n, 21, in, 2);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_UINT16);
    oh_assert_i64(&y, 1, OH_DIMS(2), (const int64_t[]){65535, 3});
    mq_tensor_free(&y);
}
END_TEST

START_TEST(quantize_refusals_are_clear)
{
    /* Opset 10 is per-tensor only. */
    Onnx__NodeProto *n = oh_node("QuantizeLinear", 3, 1);
    struct mq_tensor in[3] = {oh_f32(2, OH_DIMS(2, 3), (const float[]){1, 2, 3, 4, 5, 6}),
                              oh_f32(1, OH_DIMS(3), (const float[]){1, 2, 4}),
                              oh_u8(1, OH_DIMS(3), (const uint8_t[]){0, 0, 0})};
    oh_run_fails_take_all(n, 10, in, 3, 1, "only a scalar scale");

    /* Scale length must match the axis. */
    n = oh_node("QuantizeLinear", 2, 1);
    in[0] = oh_f32(2, OH_DIMS(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
    in[1] = oh_f32(1, OH_DIMS(2), (const float[]){1, 2});
    oh_run_fails_take_all(n, 13, in, 2, 1, "per-axis scale has shape [2]");

    /* float8e8m0 is no quantized type. */
    n = oh_node("QuantizeLinear", 2, 1);
    oh_attr_int(n, "output_dtype", MQ_DTYPE_FLOAT8E8M0);
    in[0] = oh_f32(1, OH_DIMS(2), (const float[]){1, 2});
    in[1] = f32_scalar(1.0f);
    oh_run_fails_take_all(n, 21, in, 2, 1, "float8e8m0");

    /* int16 needs opset 21. */
    int16_t z = 0;
    n = oh_node("QuantizeLinear", 3, 1);
    in[0] = oh_f32(1, OH_DIMS(2), (const float[]){1, 2});
    in[1] = f32_scalar(1.0f);
    in[2] = oh_typed(MQ_DTYPE_INT16, 0, NULL, &z);
    oh_run_fails_take_all(n, 13, in, 3, 1, "opset 21");

    /* Blocked scale with the wrong block count. */
    n = oh_node("QuantizeLinear", 2, 1);
    oh_attr_int(n, "block_size", 2);
    in[0] = oh_f32(2, OH_DIMS(1, 4), (const float[]){1, 2, 3, 4});
    in[1] = oh_f32(2, OH_DIMS(1, 3), (const float[]){1, 1, 1});
    oh_run_fails_take_all(n, 21, in, 2, 1, "blocked scale");
}
END_TEST

START_TEST(dequantize_types_axes_and_blocks)
{
    Onnx__NodeProto *n = oh_node("DequantizeLinear", 3, 1);
    struct mq_tensor in[3] = {oh_u8(1, OH_DIMS(4), (const uint8_t[]){0, 3, 128, 255}),
                              f32_scalar(2.0f), oh_u8(0, NULL, (const uint8_t[]){128})};
    struct mq_tensor y = oh_run1_take_all(n, 10, in, 3);
    oh_assert_f32(&y, 1, OH_DIMS(4), (const float[]){-256, -250, 0, 254}, 0, 0);
    mq_tensor_free(&y);

    /* Per-axis int8 on axis 1 (the default). */
    n = oh_node("DequantizeLinear", 3, 1);
    in[0] = oh_i8(2, OH_DIMS(2, 2), (const int8_t[]){-128, 127, 0, 1});
    in[1] = oh_f32(1, OH_DIMS(2), (const float[]){0.5f, 0.25f});
    in[2] = oh_i8(1, OH_DIMS(2), (const int8_t[]){0, -1});
    y = oh_run1_take_all(n, 13, in, 3);
    oh_assert_f32(&y, 2, OH_DIMS(2, 2), (const float[]){-64, 32, 0, 0.5f}, 0, 0);
    mq_tensor_free(&y);

    /* int32 without a zero point (biases). */
    n = oh_node("DequantizeLinear", 2, 1);
    in[0] = oh_i32(1, OH_DIMS(2), (const int32_t[]){-100000, 7});
    in[1] = f32_scalar(0.001f);
    y = oh_run1_take_all(n, 13, in, 2);
    oh_assert_f32(&y, 1, OH_DIMS(2), (const float[]){-100.0f, 0.007f}, 1e-6f, 1e-6f);
    mq_tensor_free(&y);

    /* Blocked uint16 (opset 21), blocks of 3 on axis 0 with a partial last block. */
    uint16_t q[4] = {1, 2, 3, 65535};
    uint16_t z[2] = {1, 65534};
    n = oh_node("DequantizeLinear", 3, 1);
    oh_attr_int(n, "axis", 0);
    oh_attr_int(n, "block_size", 3);
    in[0] = oh_typed(MQ_DTYPE_UINT16, 2, OH_DIMS(4, 1), q);
    in[1] = oh_f32(2, OH_DIMS(2, 1), (const float[]){2, 10});
    in[2] = oh_typed(MQ_DTYPE_UINT16, 2, OH_DIMS(2, 1), z);
    y = oh_run1_take_all(n, 21, in, 3);
    oh_assert_f32(&y, 2, OH_DIMS(4, 1), (const float[]){0, 2, 4, 10}, 0, 0);
    mq_tensor_free(&y);

    /* A float16 scale gives a float16 output (opset 19). */
    uint16_t hs = mq_float_to_half(0.5f);
    n = oh_node("DequantizeLinear", 2, 1);
    in[0] = oh_i8(1, OH_DIMS(2), (const int8_t[]){-3, 4});
    in[1] = oh_typed(MQ_DTYPE_FLOAT16, 0, NULL, &hs);
    y = oh_run1_take_all(n, 19, in, 2);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT16);
    ck_assert(mq_half_to_float(((uint16_t *)y.data)[0]) == -1.5f);
    ck_assert(mq_half_to_float(((uint16_t *)y.data)[1]) == 2.0f);
    mq_tensor_free(&y);

    /* Zero point type must match x; empty tensors pass. */
    n = oh_node("DequantizeLinear", 3, 1);
    in[0] = oh_i8(1, OH_DIMS(1), (const int8_t[]){1});
    in[1] = f32_scalar(1.0f);
    in[2] = oh_u8(0, NULL, (const uint8_t[]){1});
    oh_run_fails_take_all(n, 13, in, 3, 1, "x_zero_point has type uint8");

    n = oh_node("DequantizeLinear", 2, 1);
    in[0] = oh_u8(2, OH_DIMS(0, 3), NULL);
    in[1] = f32_scalar(1.0f);
    y = oh_run1_take_all(n, 13, in, 2);
    oh_assert_shape(&y, 2, OH_DIMS(0, 3));
    mq_tensor_free(&y);
}
END_TEST

START_TEST(quantize_dequantize_round_trip_matches_the_spec_formula)
{
    /* q = clamp(rint(x / s) + zp); dq = (q - zp) * s, checked over a sweep. */
    enum { N = 401 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(i - 200) * 0.0137f;
    const float s = 0.0123456f;
    Onnx__NodeProto *n = oh_node("QuantizeLinear", 3, 1);
    struct mq_tensor in[3] = {oh_f32(1, OH_DIMS(N), x), f32_scalar(s),
                              oh_u8(0, NULL, (const uint8_t[]){131})};
    struct mq_tensor q = oh_run1_take_all(n, 13, in, 3);
    uint8_t qv[N];
    memcpy(qv, q.data, sizeof qv);
    for (int i = 0; i < N; i++) {
        float v = nearbyintf(x[i] / s) + 131.0f;
        v = v < 0 ? 0 : (v > 255 ? 255 : v);
        ck_assert_int_eq(qv[i], (int)v);
    }
    n = oh_node("DequantizeLinear", 3, 1);
    in[0] = q;
    in[1] = f32_scalar(s);
    in[2] = oh_u8(0, NULL, (const uint8_t[]){131});
    struct mq_tensor y = oh_run1_take_all(n, 13, in, 3);
    const float *yv = y.data;
    for (int i = 0; i < N; i++)
        ck_assert(yv[i] == (float)((int)qv[i] - 131) * s);
    mq_tensor_free(&y);
}
END_TEST

static void run_dynamic(const float *x, int64_t count, struct mq_tensor out[3])
{
    Onnx__NodeProto *n = oh_node("DynamicQuantizeLinear", 1, 3);
    struct mq_tensor in[1] = {oh_f32(1, &count, x)};
    struct mq_error err = {{0}};
    int rc = oh_run(n, 11, in, 1, out, 3, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    mq_tensor_free(&in[0]);
    oh_node_free(n);
}

START_TEST(dynamic_quantize_linear)
{
    struct mq_tensor out[3] = {{0}};
    run_dynamic((const float[]){0, 2, -3, -2.5f, 1.34f, 0.5f}, 6, out);
    oh_assert_i64(&out[0], 1, OH_DIMS(6), (const int64_t[]){153, 255, 0, 26, 221, 179});
    oh_assert_f32(&out[1], 0, NULL, (const float[]){0.0196078438f}, 0, 1e-7f);
    oh_assert_i64(&out[2], 0, NULL, (const int64_t[]){153});
    for (int i = 0; i < 3; i++)
        mq_tensor_free(&out[i]);

    /* All zeros: scale 1, not a division by zero. */
    memset(out, 0, sizeof out);
    run_dynamic((const float[]){0, 0}, 2, out);
    oh_assert_i64(&out[0], 1, OH_DIMS(2), (const int64_t[]){0, 0});
    oh_assert_f32(&out[1], 0, NULL, (const float[]){1.0f}, 0, 0);
    oh_assert_i64(&out[2], 0, NULL, (const int64_t[]){0});
    for (int i = 0; i < 3; i++)
        mq_tensor_free(&out[i]);
}
END_TEST

START_TEST(matmul_integer_zero_points_and_exactness)
{
    static const uint8_t a[] = {10, 200, 255, 0, 1, 128};
    static const int8_t b[] = {-128, 127, 5, -6, 0, 100};
    Onnx__NodeProto *n = oh_node("MatMulInteger", 4, 1);
    struct mq_tensor in[4] = {oh_u8(2, OH_DIMS(2, 3), a), oh_i8(2, OH_DIMS(3, 2), b),
                              oh_u8(0, NULL, (const uint8_t[]){3}),
                              oh_i8(1, OH_DIMS(2), (const int8_t[]){1, -2})};
    struct mq_tensor y = oh_run1_take_all(n, 10, in, 4);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&y, 2, OH_DIMS(2, 2), (const int64_t[]){-367, 25819, 254, 12371});
    mq_tensor_free(&y);

    /* 1-D A drops the M axis. */
    n = oh_node("MatMulInteger", 4, 1);
    in[0] = oh_u8(1, OH_DIMS(3), a);
    in[1] = oh_i8(2, OH_DIMS(3, 2), b);
    in[2] = oh_u8(0, NULL, (const uint8_t[]){3});
    in[3] = oh_i8(1, OH_DIMS(2), (const int8_t[]){1, -2});
    y = oh_run1_take_all(n, 10, in, 4);
    oh_assert_i64(&y, 1, OH_DIMS(2), (const int64_t[]){-367, 25819});
    mq_tensor_free(&y);

    /* K = 1001 products of 255 * 255 - 1: past 2^24, where float sums stop being exact. */
    enum { K = 1001 };
    uint8_t av[K], bv[K];
    for (int i = 0; i < K; i++) {
        av[i] = 255;
        bv[i] = 255;
    }
    bv[0] = 254;
    n = oh_node("MatMulInteger", 2, 1);
    in[0] = oh_u8(2, OH_DIMS(1, K), av);
    in[1] = oh_u8(2, OH_DIMS(K, 1), bv);
    y = oh_run1_take_all(n, 10, in, 2);
    oh_assert_i64(&y, 2, OH_DIMS(1, 1), (const int64_t[]){1001LL * 65025 - 255});
    mq_tensor_free(&y);

    n = oh_node("MatMulInteger", 2, 1);
    in[0] = oh_u8(2, OH_DIMS(2, 3), a);
    in[1] = oh_i8(2, OH_DIMS(2, 3), b);
    oh_run_fails_take_all(n, 10, in, 2, 1, "inner dimensions");
}
END_TEST

START_TEST(qlinear_matmul_reference_and_per_column)
{
    /* The ONNX backend example. */
    static const uint8_t a[] = {208, 236, 0, 238, 3, 214, 255, 29};
    static const uint8_t b[] = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
    Onnx__NodeProto *n = oh_node("QLinearMatMul", 8, 1);
    struct mq_tensor in[8] = {
        oh_u8(2, OH_DIMS(2, 4), a), oh_f32(1, OH_DIMS(1), (const float[]){0.0066f}),
        oh_u8(1, OH_DIMS(1), (const uint8_t[]){113}), oh_u8(2, OH_DIMS(4, 3), b),
        oh_f32(1, OH_DIMS(1), (const float[]){0.00705f}),
        oh_u8(1, OH_DIMS(1), (const uint8_t[]){114}),
        oh_f32(1, OH_DIMS(1), (const float[]){0.0107f}),
        oh_u8(1, OH_DIMS(1), (const uint8_t[]){118})};
    struct mq_tensor y = oh_run1_take_all(n, 10, in, 8);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_UINT8);
    oh_assert_i64(&y, 2, OH_DIMS(2, 3), (const int64_t[]){168, 115, 255, 1, 66, 151});
    mq_tensor_free(&y);

    /* int8, per-column b, batched a against a shared 2-D b. */
    static const int8_t a3[] = {1, -2, 3, 4, 5, -6, -7, 8, 9, 10, -11, 12};
    static const int8_t b2[] = {2, -3, 4, 5, -6, 7};
    n = oh_node("QLinearMatMul", 8, 1);
    in[0] = oh_i8(3, OH_DIMS(2, 2, 3), a3);
    in[1] = f32_scalar(0.05f);
    in[2] = oh_i8(0, NULL, (const int8_t[]){1});
    in[3] = oh_i8(2, OH_DIMS(3, 2), b2);
    in[4] = oh_f32(1, OH_DIMS(2), (const float[]){0.1f, 0.2f});
    in[5] = oh_i8(1, OH_DIMS(2), (const int8_t[]){0, -1});
    in[6] = f32_scalar(0.03f);
    in[7] = oh_i8(0, NULL, (const int8_t[]){-3});
    y = oh_run1_take_all(n, 10, in, 8);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT8);
    oh_assert_i64(&y, 3, OH_DIMS(2, 2, 2), (const int64_t[]){-7, -4, 8, -16, -9, 38, -19, -4});
    mq_tensor_free(&y);
}
END_TEST

START_TEST(conv_integer_padding_groups_strides)
{
    /* The ONNX backend example with padding: padding holds the zero point. */
    static const uint8_t x[] = {2, 3, 4, 5, 6, 7, 8, 9, 10};
    Onnx__NodeProto *n = oh_node("ConvInteger", 3, 1);
    oh_attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 1, 1});
    struct mq_tensor in[4] = {oh_u8(4, OH_DIMS(1, 1, 3, 3), x),
                              oh_u8(4, OH_DIMS(1, 1, 2, 2), (const uint8_t[]){1, 1, 1, 1}),
                              oh_u8(0, NULL, (const uint8_t[]){1})};
    struct mq_tensor y = oh_run1_take_all(n, 10, in, 3);
    oh_assert_i64(&y, 4, OH_DIMS(1, 1, 4, 4),
                  (const int64_t[]){1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9});
    mq_tensor_free(&y);

    /* int8, two groups, stride 2, asymmetric pads, per-channel weight zero points. */
    int8_t xv[50];
    for (int i = 0; i < 50; i++)
        xv[i] = (int8_t)(i % 17 - 8);
    n = oh_node("ConvInteger", 4, 1);
    oh_attr_int(n, "group", 2);
    oh_attr_ints(n, "strides", 2, (const int64_t[]){2, 2});
    oh_attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 0, 0});
    in[0] = oh_i8(4, OH_DIMS(1, 2, 5, 5), xv);
    in[1] = oh_i8(4, OH_DIMS(2, 1, 2, 2), (const int8_t[]){1, -1, 2, 0, 3, 1, -2, 4});
    in[2] = oh_i8(0, NULL, (const int8_t[]){-1});
    in[3] = oh_i8(1, OH_DIMS(2), (const int8_t[]){1, -1});
    y = oh_run1_take_all(n, 10, in, 4);
    oh_assert_i64(&y, 4, OH_DIMS(1, 2, 3, 3),
                  (const int64_t[]){7, -1, -1, 1, -1, -5, -12, 13, 9,
                                    5, 13, 21, -18, 29, 15, 18, 27, 47});
    mq_tensor_free(&y);

    /* SAME_UPPER keeps the spatial size at stride 1. */
    n = oh_node("ConvInteger", 2, 1);
    oh_attr_string(n, "auto_pad", "SAME_UPPER");
    in[0] = oh_u8(4, OH_DIMS(1, 1, 3, 3), x);
    in[1] = oh_u8(4, OH_DIMS(1, 1, 2, 2), (const uint8_t[]){1, 1, 1, 1});
    y = oh_run1_take_all(n, 10, in, 2);
    oh_assert_i64(&y, 4, OH_DIMS(1, 1, 3, 3),
                  (const int64_t[]){16, 20, 11, 28, 32, 17, 17, 19, 10});
    mq_tensor_free(&y);

    n = oh_node("ConvInteger", 2, 1);
    oh_attr_int(n, "group", 2);
    in[0] = oh_u8(4, OH_DIMS(1, 1, 3, 3), x);
    in[1] = oh_u8(4, OH_DIMS(1, 1, 2, 2), (const uint8_t[]){1, 1, 1, 1});
    oh_run_fails_take_all(n, 10, in, 2, 1, "channels");
}
END_TEST

START_TEST(qlinear_conv_bias_and_per_channel_scale)
{
    uint8_t xq[16];
    for (int i = 0; i < 16; i++)
        xq[i] = (uint8_t)(i * 13);
    static const int8_t w[] = {1, -2, 3, 0, 5, -6, 7, 0, -1, -3, 2, 1, 4, -4, 0, 1, 1, 1};
    Onnx__NodeProto *n = oh_node("QLinearConv", 9, 1);
    oh_attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 1, 1});
    oh_attr_ints(n, "kernel_shape", 2, (const int64_t[]){3, 3});
    struct mq_tensor in[9] = {
        oh_u8(4, OH_DIMS(1, 1, 4, 4), xq), f32_scalar(0.02f),
        oh_u8(0, NULL, (const uint8_t[]){100}), oh_i8(4, OH_DIMS(2, 1, 3, 3), w),
        oh_f32(1, OH_DIMS(2), (const float[]){0.01f, 0.03f}),
        oh_i8(1, OH_DIMS(2), (const int8_t[]){0, 0}), f32_scalar(0.05f),
        oh_u8(0, NULL, (const uint8_t[]){120}),
        oh_i32(1, OH_DIMS(2), (const int32_t[]){1000, -2000})};
    struct mq_tensor y = oh_run1_take_all(n, 10, in, 9);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_UINT8);
    oh_assert_i64(&y, 4, OH_DIMS(1, 2, 4, 4),
                  (const int64_t[]){124, 123, 123, 122, 124, 123, 124, 125, 123, 125, 125, 127,
                                    124, 124, 124, 126, 100, 94, 95, 95, 95, 97, 97, 97,
                                    96, 98, 99, 98, 94, 96, 96, 95});
    mq_tensor_free(&y);

    /* kernel_shape must agree with the weight. */
    n = oh_node("QLinearConv", 8, 1);
    oh_attr_ints(n, "kernel_shape", 2, (const int64_t[]){2, 2});
    in[0] = oh_u8(4, OH_DIMS(1, 1, 4, 4), xq);
    in[1] = f32_scalar(0.02f);
    in[2] = oh_u8(0, NULL, (const uint8_t[]){100});
    in[3] = oh_i8(4, OH_DIMS(2, 1, 3, 3), w);
    in[4] = f32_scalar(0.01f);
    in[5] = oh_i8(0, NULL, (const int8_t[]){0});
    in[6] = f32_scalar(0.05f);
    in[7] = oh_u8(0, NULL, (const uint8_t[]){120});
    oh_run_fails_take_all(n, 10, in, 8, 1, "kernel_shape");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_quantize");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, quantize_rounds_half_to_even_and_saturates);
    tcase_add_test(tc, quantize_per_axis_and_blocked);
    tcase_add_test(tc, quantize_refusals_are_clear);
    tcase_add_test(tc, dequantize_types_axes_and_blocks);
    tcase_add_test(tc, quantize_dequantize_round_trip_matches_the_spec_formula);
    tcase_add_test(tc, dynamic_quantize_linear);
    tcase_add_test(tc, matmul_integer_zero_points_and_exactness);
    tcase_add_test(tc, qlinear_matmul_reference_and_per_column);
    tcase_add_test(tc, conv_integer_padding_groups_strides);
    tcase_add_test(tc, qlinear_conv_bias_and_per_channel_scale);
    return mq_check_run(s, tc);
}
