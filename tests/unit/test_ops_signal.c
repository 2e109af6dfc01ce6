/*
 * DFT, STFT, the window generators and MelWeightMatrix
 * (src/interp/ops/signal.c).  Expected values come from numpy.fft and from
 * the numpy reference of MelWeightMatrix in onnx's backend test cases.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static const float signal5[5] = {1, 2, -1, 0.5f, 3};

/* ------------------------------------------------------------------- DFT */

START_TEST(dft_real_input_power_of_two_and_not)
{
    Onnx__NodeProto *n = oh_node("DFT", 1, 1);
    struct mq_tensor in[1] = {oh_f32(3, OH_DIMS(1, 5, 1), signal5)};
    struct mq_tensor out = {0};
    oh_run_ok(n, 17, in, 1, &out, 1);
    oh_assert_f32(&out, 3, OH_DIMS(1, 5, 2),
                  (float[]){5.5f, 0, 2.949593f, 1.832734f, -3.199593f, -0.8388f, -3.199593f,
                            0.8388f, 2.949593f, -1.832734f},
                  1e-5f, 1e-5f);
    mq_tensor_free(&out);
    oh_free_all(in, 1);

    struct mq_tensor in4[1] = {oh_f32(3, OH_DIMS(1, 4, 1), signal5)};
    oh_run_ok(n, 17, in4, 1, &out, 1);
    oh_assert_f32(&out, 3, OH_DIMS(1, 4, 2), (float[]){2.5f, 0, 2, -1.5f, -2.5f, 0, 2, 1.5f},
                  1e-6f, 1e-6f);
    mq_tensor_free(&out);
    oh_free_all(in4, 1);
    oh_node_free(n);
}
END_TEST

START_TEST(dft_length_padding_onesided_and_axis)
{
    /* dft_length 8 zero-pads the 5 samples; onesided keeps 8/2+1 bins. */
    Onnx__NodeProto *n = oh_node("DFT", 2, 1);
    oh_attr_int(n, "onesided", 1);
    struct mq_tensor in[2] = {oh_f32(3, OH_DIMS(1, 5, 1), signal5),
                              oh_i64(0, NULL, (int64_t[]){8})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 17, in, 2, &out, 1);
    oh_assert_f32(&out, 3, OH_DIMS(1, 5, 2),
                  (float[]){5.5f, 0, -0.93934f, -0.767767f, 5, -1.5f, -3.06066f, -2.767767f,
                            0.5f, 0},
                  1e-5f, 1e-5f);
    mq_tensor_free(&out);
    oh_free_all(in, 2);
    oh_node_free(n);

    /* Axis 0 of a [2, 3, 1] input (no batch dimension), given as a negative axis. */
    n = oh_node("DFT", 1, 1);
    oh_attr_int(n, "axis", -3);
    struct mq_tensor m[1] = {oh_f32(3, OH_DIMS(2, 3, 1), (float[]){1, 2, 3, 4, 5, 6})};
    oh_run_ok(n, 17, m, 1, &out, 1);
    oh_assert_f32(&out, 3, OH_DIMS(2, 3, 2), (float[]){5, 0, 7, 0, 9, 0, -3, 0, -3, 0, -3, 0},
                  1e-6f, 1e-6f);
    mq_tensor_free(&out);
    oh_free_all(m, 1);
    oh_node_free(n);

    /* Opset 20 takes the axis as input 2; -2 is the default. */
    n = oh_node("DFT", 3, 1);
    oh_omit_input(n, 1);
    struct mq_tensor m20[3] = {oh_f32(3, OH_DIMS(2, 3, 1), (float[]){1, 2, 3, 4, 5, 6}),
                               oh_i64(0, NULL, (int64_t[]){0}),
                               oh_i64(0, NULL, (int64_t[]){0})};
    oh_run_ok(n, 20, m20, 3, &out, 1);
    oh_assert_f32(&out, 3, OH_DIMS(2, 3, 2), (float[]){5, 0, 7, 0, 9, 0, -3, 0, -3, 0, -3, 0},
                  1e-6f, 1e-6f);
    mq_tensor_free(&out);
    oh_free_all(m20, 3);
    oh_node_free(n);
}
END_TEST

START_TEST(dft_inverse_complex_and_errors)
{
    Onnx__NodeProto *n = oh_node("DFT", 1, 1);
    oh_attr_int(n, "inverse", 1);
    struct mq_tensor in[1] = {oh_f32(3, OH_DIMS(1, 3, 2), (float[]){1, 1, 2, -1, 0, 0.5f})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 17, in, 1, &out, 1);
    oh_assert_f32(&out, 3, OH_DIMS(1, 3, 2),
                  (float[]){1, 0.166667f, 0.433013f, 0.994017f, -0.433013f, -0.160684f}, 1e-5f,
                  1e-5f);
    mq_tensor_free(&out);
    oh_free_all(in, 1);
    oh_node_free(n);

    n = oh_node("DFT", 1, 1);
    oh_attr_int(n, "onesided", 1);
    struct mq_error err;
    struct mq_tensor c[1] = {oh_f32(3, OH_DIMS(1, 3, 2), NULL)};
    const char *msg = oh_run_fails(n, 17, c, 1, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(DFT)"));
    ck_assert_ptr_nonnull(strstr(msg, "complex"));
    oh_free_all(c, 1);
    struct mq_tensor r[1] = {oh_f32(3, OH_DIMS(1, 3, 3), NULL)};
    msg = oh_run_fails(n, 17, r, 1, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "[..., N, 1]"));
    oh_free_all(r, 1);
    oh_node_free(n);
}
END_TEST

/* Length 100 is neither a power of two nor short: the Bluestein path. */
START_TEST(dft_long_odd_length_and_round_trip)
{
    enum { N = 100 };
    float x[N], want[2 * N] = {0};
    for (int i = 0; i < N; i++)
        x[i] = (float)(cos(2 * M_PI * 3 * i / N) + 0.5 * sin(2 * M_PI * 7 * i / N));
    want[2 * 3] = want[2 * 97] = 50;
    want[2 * 7 + 1] = -25;
    want[2 * 93 + 1] = 25;
    Onnx__NodeProto *n = oh_node("DFT", 1, 1);
    struct mq_tensor in[1] = {oh_f32(3, OH_DIMS(1, N, 1), x)};
    struct mq_tensor spec = {0};
    oh_run_ok(n, 17, in, 1, &spec, 1);
    oh_assert_f32(&spec, 3, OH_DIMS(1, N, 2), want, 1e-4f, 1e-5f);
    oh_free_all(in, 1);
    oh_node_free(n);

    n = oh_node("DFT", 1, 1);
    oh_attr_int(n, "inverse", 1);
    float back[2 * N];
    for (int i = 0; i < N; i++) {
        back[2 * i] = x[i];
        back[2 * i + 1] = 0;
    }
    struct mq_tensor out = {0};
    oh_run_ok(n, 17, &spec, 1, &out, 1);
    oh_assert_f32(&out, 3, OH_DIMS(1, N, 2), back, 1e-5f, 1e-5f);
    mq_tensor_free(&out);
    mq_tensor_free(&spec);
    oh_node_free(n);
}
END_TEST

/* ------------------------------------------------------------------ STFT */

START_TEST(stft_window_frames_and_onesided)
{
    float sig[8];
    for (int i = 0; i < 8; i++)
        sig[i] = (float)i;
    Onnx__NodeProto *n = oh_node("STFT", 3, 1);
    struct mq_tensor in[3] = {oh_f32(3, OH_DIMS(1, 8, 1), sig), oh_i64(0, NULL, (int64_t[]){2}),
                              oh_f32(1, OH_DIMS(4), (float[]){0, 1, 1, 0.5f})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 17, in, 3, &out, 1);
    oh_assert_f32(&out, 4, OH_DIMS(1, 3, 3, 2),
                  (float[]){4.5f, 0, -2, 0.5f, -0.5f, 0, 9.5f, 0, -4, -0.5f, -1.5f, 0, 14.5f, 0,
                            -6, -1.5f, -2.5f, 0},
                  1e-5f, 1e-5f);
    mq_tensor_free(&out);
    oh_free_all(in, 3);
    oh_node_free(n);

    /* No window: frame_length input, a rectangular window, full spectrum. */
    n = oh_node("STFT", 4, 1);
    oh_omit_input(n, 2);
    oh_attr_int(n, "onesided", 0);
    struct mq_tensor in2[4] = {oh_f32(3, OH_DIMS(1, 8, 1), sig), oh_i64(0, NULL, (int64_t[]){4}),
                               oh_f32(1, OH_DIMS(1), NULL), oh_i64(0, NULL, (int64_t[]){4})};
    oh_run_ok(n, 17, in2, 4, &out, 1);
    oh_assert_f32(&out, 4, OH_DIMS(1, 2, 4, 2),
                  (float[]){6, 0, -2, 2, -2, 0, -2, -2, 22, 0, -2, 2, -2, 0, -2, -2}, 1e-5f,
                  1e-5f);
    mq_tensor_free(&out);
    oh_free_all(in2, 4);

    struct mq_error err;
    struct mq_tensor bad[4] = {oh_f32(3, OH_DIMS(1, 3, 1), sig), oh_i64(0, NULL, (int64_t[]){1}),
                               oh_f32(1, OH_DIMS(1), NULL), oh_i64(0, NULL, (int64_t[]){4})};
    const char *msg = oh_run_fails(n, 17, bad, 4, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(STFT)"));
    oh_free_all(bad, 4);
    oh_node_free(n);
}
END_TEST

/* --------------------------------------------------------------- Windows */

static struct mq_tensor window(const char *op, int periodic, int dtype, int64_t size)
{
    Onnx__NodeProto *n = oh_node(op, 1, 1);
    if (periodic >= 0)
        oh_attr_int(n, "periodic", periodic);
    if (dtype)
        oh_attr_int(n, "output_datatype", dtype);
    struct mq_tensor in[1] = {oh_i32(0, NULL, (int32_t[]){(int32_t)size})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 17, in, 1, &out, 1);
    oh_free_all(in, 1);
    oh_node_free(n);
    return out;
}

START_TEST(windows_periodic_symmetric_and_types)
{
    struct mq_tensor w = window("HannWindow", -1, 0, 4);
    oh_assert_f32(&w, 1, OH_DIMS(4), (float[]){0, 0.5f, 1, 0.5f}, 1e-7f, 1e-6f);
    mq_tensor_free(&w);
    w = window("HammingWindow", 0, 0, 5);
    oh_assert_f32(&w, 1, OH_DIMS(5),
                  (float[]){0.08695652f, 0.54347826f, 1, 0.54347826f, 0.08695652f}, 1e-7f,
                  1e-6f);
    mq_tensor_free(&w);
    w = window("BlackmanWindow", 1, 0, 4);
    oh_assert_f32(&w, 1, OH_DIMS(4), (float[]){0, 0.34f, 1, 0.34f}, 1e-7f, 1e-6f);
    mq_tensor_free(&w);

    w = window("HannWindow", 1, MQ_DTYPE_DOUBLE, 4);
    ck_assert_int_eq(w.dtype, MQ_DTYPE_DOUBLE);
    ck_assert(fabs(((double *)w.data)[1] - 0.5) < 1e-15);
    mq_tensor_free(&w);
    w = window("HannWindow", 1, MQ_DTYPE_INT64, 4);
    oh_assert_i64(&w, 1, OH_DIMS(4), (int64_t[]){0, 0, 1, 0});
    mq_tensor_free(&w);
    w = window("HammingWindow", 1, 0, 0);
    oh_assert_shape(&w, 1, OH_DIMS(0));
    mq_tensor_free(&w);
    w = window("HannWindow", 0, 0, 1);
    oh_assert_f32(&w, 1, OH_DIMS(1), (float[]){0}, 1e-7f, 0);
    mq_tensor_free(&w);

    Onnx__NodeProto *n = oh_node("BlackmanWindow", 1, 1);
    oh_attr_int(n, "output_datatype", MQ_DTYPE_STRING);
    struct mq_error err;
    struct mq_tensor in[1] = {oh_i32(0, NULL, (int32_t[]){4})};
    const char *msg = oh_run_fails(n, 17, in, 1, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(BlackmanWindow)"));
    ck_assert_ptr_nonnull(strstr(msg, "output_datatype"));
    oh_free_all(in, 1);
    oh_node_free(n);
}
END_TEST

/* ------------------------------------------------------- MelWeightMatrix */

START_TEST(mel_weight_matrix_triangles)
{
    Onnx__NodeProto *n = oh_node("MelWeightMatrix", 5, 1);
    struct mq_tensor in[5] = {oh_i32(0, NULL, (int32_t[]){3}), oh_i32(0, NULL, (int32_t[]){32}),
                              oh_i32(0, NULL, (int32_t[]){1000}),
                              oh_f32(0, NULL, (float[]){100}), oh_f32(0, NULL, (float[]){500})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 17, in, 5, &out, 1);
    float want[51] = {0};
    const float rows[][3] = {{0, 0, 0},       {0.5f, 0, 0}, {1, 0, 0},
                             {0.5f, 0.5f, 0}, {0, 1, 0},    {0, 2.0f / 3, 1.0f / 3},
                             {0, 1.0f / 3, 2.0f / 3}, {0, 0, 1}, {0, 0, 2.0f / 3},
                             {0, 0, 1.0f / 3}};
    for (int r = 0; r < 10; r++)
        memcpy(want + (3 + r) * 3, rows[r], sizeof rows[r]);
    oh_assert_f32(&out, 2, OH_DIMS(17, 3), want, 1e-6f, 1e-6f);
    mq_tensor_free(&out);
    oh_free_all(in, 5);

    struct mq_error err;
    struct mq_tensor bad[5] = {oh_i32(0, NULL, (int32_t[]){0}), oh_i32(0, NULL, (int32_t[]){32}),
                               oh_i32(0, NULL, (int32_t[]){1000}),
                               oh_f32(0, NULL, (float[]){100}), oh_f32(0, NULL, (float[]){500})};
    const char *msg = oh_run_fails(n, 17, bad, 5, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(MelWeightMatrix)"));
    oh_free_all(bad, 5);
    oh_node_free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_signal");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, dft_real_input_power_of_two_and_not);
    tcase_add_test(tc, dft_length_padding_onesided_and_axis);
    tcase_add_test(tc, dft_inverse_complex_and_errors);
    tcase_add_test(tc, dft_long_odd_length_and_round_trip);
    tcase_add_test(tc, stft_window_frames_and_onesided);
    tcase_add_test(tc, windows_periodic_symmetric_and_types);
    tcase_add_test(tc, mel_weight_matrix_triangles);
    return mq_check_run(s, tc);
}
