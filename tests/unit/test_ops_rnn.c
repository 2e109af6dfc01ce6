/*
 * RNN, GRU and LSTM kernels.  Expected values come from an independent numpy
 * implementation of the ONNX equations (float64, onnxruntime's handling of
 * sequence_lens and activation_alpha/beta), on inputs rounded to 2 decimals.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "core/tensor.h"
#include "op_harness.h"

/* LSTM bidirectional */
static const float lstm_x[] = {
    -0.85f, 0.56f, -0.12f, 0.45f, 0.96f, 0.08f, 0.0f, -0.86f, -0.46f, -0.0f, 0.36f, 0.61f,
};
static const float lstm_w[] = {
    -0.24f, -0.87f, -0.42f, 0.82f, -0.57f, -0.1f, 0.86f, -0.95f, 0.2f, 0.9f, -0.54f, 0.1f,
    0.82f, -0.73f, 0.05f, 0.5f, 0.34f, -0.06f, -0.59f, -0.02f, -0.26f, -0.05f, -0.27f, 0.68f,
    0.54f, -0.37f, 0.15f, -0.45f, -0.09f, -0.29f, 0.31f, -0.26f,
};
static const float lstm_r[] = {
    -0.08f, 0.44f, -0.17f, 0.81f, -0.64f, 0.48f, -0.16f, -0.15f, 0.27f, 0.05f, -0.17f, -1.0f,
    -0.82f, 0.42f, 0.05f, 0.39f, 0.91f, 0.37f, -0.89f, -0.38f, 0.19f, -0.53f, 0.93f, 0.89f,
    0.7f, -0.06f, 0.68f, -0.74f, -0.38f, -0.07f, 0.48f, -0.03f,
};
static const float lstm_b[] = {
    -0.73f, -0.31f, -0.35f, -0.4f, -0.67f, -0.17f, -0.1f, 0.55f, 0.59f, 0.04f, -0.08f, 0.56f,
    0.77f, 0.35f, 0.6f, 0.88f, -0.92f, 0.75f, -0.45f, -0.05f, 0.59f, 0.43f, -0.71f, 0.32f,
    -0.86f, -0.29f, 0.63f, -0.14f, 0.2f, 0.46f, 0.64f, 0.52f,
};
static const float lstm_h0[] = {
    -0.99f, -0.16f, -0.07f, -0.89f, 0.08f, 0.22f, 0.66f, 0.88f,
};
static const float lstm_c0[] = {
    -0.74f, -0.54f, 0.32f, -0.74f, -0.55f, 0.15f, -0.66f, 0.56f,
};
static const float lstm_p[] = {
    0.71f, -0.93f, 0.07f, 0.59f, 0.95f, -0.45f, -0.66f, 0.75f, 0.82f, -0.6f, -0.12f, 0.44f,
};
static const float lstm_y[] = {
    -0.144535f, 0.08155171f, 0.04191782f, -0.06259774f, -0.09309257f, 0.3400527f, -0.1546651f,
    0.3227055f, 0.0589646f, 0.2816592f, 0.212103f, 0.10004f, -0.1167804f, 0.2033648f,
    -0.1895129f, 0.3689089f, 0.1035491f, 0.2753844f, 0.0f, 0.0f, -0.1696911f, 0.2252162f, 0.0f,
    0.0f,
};
static const float lstm_yh[] = {
    0.1035491f, 0.2753844f, 0.212103f, 0.10004f, -0.09309257f, 0.3400527f, -0.1546651f,
    0.3227055f,
};
static const float lstm_yc[] = {
    0.2162856f, 0.5953164f, 0.5713951f, 0.1355355f, -0.1795899f, 0.8343649f, -0.3982393f,
    0.9791035f,
};
/* GRU reverse, linear_before_reset, clip 0.5, layout 1, HardSigmoid(0.3,0.6)/Softsign */
static const float gru_x[] = {
    0.69f, -0.66f, 0.33f, 0.62f, 0.1f, -0.67f, -0.93f, -0.44f, 0.62f, -0.91f, -0.98f, -0.28f,
};
static const float gru_w[] = {
    -0.87f, -0.7f, -0.95f, 0.05f, 0.39f, -0.15f, -0.73f, -0.34f, 0.18f, 0.88f, 0.99f, -0.52f,
};
static const float gru_r[] = {
    -0.98f, 0.66f, 0.85f, -0.08f, 0.54f, 0.73f, 0.22f, 0.75f, -0.95f, -0.46f, -0.45f, -0.76f,
};
static const float gru_b[] = {
    0.82f, -0.94f, 0.35f, -0.86f, -0.28f, -0.16f, -0.64f, 0.04f, 0.07f, -0.37f, 0.47f, -0.68f,
};
static const float gru_h0[] = {
    -0.61f, -0.29f, -0.24f, -0.59f,
};
static const float gru_lbr_y[] = {
    -0.156454f, 0.111582f, -0.1373462f, -0.1594475f, -0.4872998f, -0.0372708f, -0.2519333f,
    -0.1736349f, -0.2382861f, -0.03112259f, -0.2317288f, -0.4765687f,
};
static const float gru_lbr_yh[] = {
    -0.156454f, 0.111582f, -0.2519333f, -0.1736349f,
};
/* GRU forward, lens {2,3}, defaults (x and h0 transposed to layout 0) */
static const float gru_fw_y[] = {
    -0.3423714f, 0.2827742f, -0.2288784f, -0.7470857f, 0.2089631f, -0.4807654f, -0.2788093f,
    0.1797964f, 0.0f, 0.0f, -0.2542181f, -0.4396963f,
};
static const float gru_fw_yh[] = {
    0.2089631f, -0.4807654f, -0.2542181f, -0.4396963f,
};
/* RNN bidirectional LeakyRelu(0.1) / ScaledTanh(0.5, 2), lens {0,3} */
static const float rnn_x[] = {
    0.84f, 0.66f, -0.79f, -0.26f, -0.53f, -0.1f, -0.45f, 0.0f, 0.85f, -0.23f, 0.3f, 0.19f,
};
static const float rnn_w[] = {
    0.5f, -0.88f, 0.49f, 0.89f, 0.21f, -0.42f, 0.34f, 0.42f,
};
static const float rnn_r[] = {
    0.31f, -0.71f, 0.95f, 0.91f, -0.15f, 0.19f, -0.92f, 0.98f,
};
static const float rnn_b[] = {
    0.64f, 0.27f, 0.52f, -0.62f, -0.38f, -0.51f, 0.19f, -0.82f,
};
static const float rnn_h0[] = {
    0.79f, -0.08f, -0.11f, -0.79f, 0.37f, 0.63f, 0.26f, -0.52f,
};
static const float rnn_y[] = {
    0.0f, 0.0f, 1.5206f, -0.17919f, 0.0f, 0.0f, -0.2668507f, -0.4995525f, 0.0f, 0.0f, 1.533611f,
    0.711007f, 0.0f, 0.0f, -0.2922226f, -0.4988771f, 0.0f, 0.0f, 1.113404f, 2.070047f, 0.0f,
    0.0f, -0.2987339f, -0.4994938f,
};
static const float rnn_yh[] = {
    0.79f, -0.08f, 1.113404f, 2.070047f, 0.37f, 0.63f, -0.2668507f, -0.4995525f,
};
/* LSTM forward, input_forget, Sigmoid/Elu/Softplus, x = lstm_x */
static const float lstm5_w[] = {
    0.57f, -0.71f, 0.65f, 0.16f, -0.42f, 0.03f, 0.26f, -0.48f, 0.69f, -0.16f, 0.78f, 0.67f,
    -0.8f, 0.29f, -0.38f, 0.51f,
};
static const float lstm5_r[] = {
    0.09f, -0.08f, 0.79f, -0.89f, 0.11f, -0.34f, -0.93f, 0.51f, 0.12f, 0.79f, 0.2f, -0.33f,
    0.97f, -0.77f, -0.89f, 0.47f,
};
static const float lstm5_y[] = {
    0.4881382f, 0.310636f, 0.3818035f, 0.3350522f, 0.2632052f, 0.3132639f, 0.3273892f,
    0.3764283f, 0.4071f, 0.3087173f, 0.3026838f, 0.2969349f,
};
static const float lstm5_yh[] = {
    0.4071f, 0.3087173f, 0.3026838f, 0.2969349f,
};
static const float lstm5_yc[] = {
    0.1477378f, -0.0112657f, -0.02304021f, 0.01855872f,
};
static const float rnn_thr_yh[] = {
    1.448106f, 1.417592f, 1.262891f, 1.487009f,
};
static const float rnn_aff_yh[] = {
    0.9952741f, 0.3884432f, 0.8220238f, 0.4265203f,
};
static const float rnn_relu_yh[] = {
    1.448106f, 1.417592f, 1.262891f, 1.487009f,
};

#define TOL 1e-5f

START_TEST(lstm_bidirectional_with_lengths_states_and_peepholes)
{
    Onnx__NodeProto *n = oh_node("LSTM", 8, 3);
    oh_attr_int(n, "hidden_size", 2);
    oh_attr_string(n, "direction", "bidirectional");
    struct mq_tensor in[8] = {
        oh_f32(3, OH_DIMS(3, 2, 2), lstm_x), oh_f32(3, OH_DIMS(2, 8, 2), lstm_w),
        oh_f32(3, OH_DIMS(2, 8, 2), lstm_r), oh_f32(2, OH_DIMS(2, 16), lstm_b),
        oh_i32(1, OH_DIMS(2), (const int32_t[]){3, 2}), oh_f32(3, OH_DIMS(2, 2, 2), lstm_h0),
        oh_f32(3, OH_DIMS(2, 2, 2), lstm_c0), oh_f32(2, OH_DIMS(2, 6), lstm_p)};
    struct mq_tensor out[3];
    oh_run_ok_take_all(n, 14, in, 8, out, 3);
    oh_assert_f32(&out[0], 4, OH_DIMS(3, 2, 2, 2), lstm_y, TOL, TOL);
    oh_assert_f32(&out[1], 3, OH_DIMS(2, 2, 2), lstm_yh, TOL, TOL);
    oh_assert_f32(&out[2], 3, OH_DIMS(2, 2, 2), lstm_yc, TOL, TOL);
    oh_free_all(out, 3);
}
END_TEST

START_TEST(lstm_input_forget_and_other_activations)
{
    Onnx__NodeProto *n = oh_node("LSTM", 3, 3);
    oh_attr_int(n, "hidden_size", 2);
    oh_attr_int(n, "input_forget", 1);
    oh_attr_strings(n, "activations", 3, (const char *const[]){"Sigmoid", "Elu", "Softplus"});
    /* Sigmoid takes no alpha, so the first alpha is Elu's. */
    oh_attr_floats(n, "activation_alpha", 1, (const float[]){0.5f});
    struct mq_tensor in[3] = {oh_f32(3, OH_DIMS(3, 2, 2), lstm_x),
                              oh_f32(3, OH_DIMS(1, 8, 2), lstm5_w),
                              oh_f32(3, OH_DIMS(1, 8, 2), lstm5_r)};
    struct mq_tensor out[3];
    oh_run_ok_take_all(n, 7, in, 3, out, 3);
    oh_assert_f32(&out[0], 4, OH_DIMS(3, 1, 2, 2), lstm5_y, TOL, TOL);
    oh_assert_f32(&out[1], 3, OH_DIMS(1, 2, 2), lstm5_yh, TOL, TOL);
    oh_assert_f32(&out[2], 3, OH_DIMS(1, 2, 2), lstm5_yc, TOL, TOL);
    oh_free_all(out, 3);
}
END_TEST

START_TEST(gru_reverse_linear_before_reset_clip_layout1)
{
    Onnx__NodeProto *n = oh_node("GRU", 6, 2);
    oh_attr_int(n, "hidden_size", 2);
    oh_attr_string(n, "direction", "reverse");
    oh_attr_int(n, "linear_before_reset", 1);
    oh_attr_float(n, "clip", 0.5f);
    oh_attr_int(n, "layout", 1);
    oh_attr_floats(n, "activation_alpha", 1, (const float[]){0.3f});
    oh_attr_floats(n, "activation_beta", 1, (const float[]){0.6f});
    oh_attr_strings(n, "activations", 2, (const char *const[]){"HardSigmoid", "Softsign"});
    oh_omit_input(n, 4);
    struct mq_tensor in[6] = {
        oh_f32(3, OH_DIMS(2, 3, 2), gru_x), oh_f32(3, OH_DIMS(1, 6, 2), gru_w),
        oh_f32(3, OH_DIMS(1, 6, 2), gru_r), oh_f32(2, OH_DIMS(1, 12), gru_b), {0},
        oh_f32(3, OH_DIMS(2, 1, 2), gru_h0)};
    struct mq_tensor out[2];
    oh_run_ok_take_all(n, 14, in, 6, out, 2);
    oh_assert_f32(&out[0], 4, OH_DIMS(2, 3, 1, 2), gru_lbr_y, TOL, TOL);
    oh_assert_f32(&out[1], 3, OH_DIMS(2, 1, 2), gru_lbr_yh, TOL, TOL);
    oh_free_all(out, 2);
}
END_TEST

START_TEST(gru_forward_sequence_lengths)
{
    /* The same weights in layout 0: x and initial_h transposed. */
    float x0[12], h0[4];
    for (int t = 0; t < 3; t++)
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 2; i++)
                x0[(t * 2 + b) * 2 + i] = gru_x[(b * 3 + t) * 2 + i];
    memcpy(h0, gru_h0, sizeof h0);
    Onnx__NodeProto *n = oh_node("GRU", 6, 2);
    struct mq_tensor in[6] = {
        oh_f32(3, OH_DIMS(3, 2, 2), x0), oh_f32(3, OH_DIMS(1, 6, 2), gru_w),
        oh_f32(3, OH_DIMS(1, 6, 2), gru_r), oh_f32(2, OH_DIMS(1, 12), gru_b),
        oh_i32(1, OH_DIMS(2), (const int32_t[]){2, 3}), oh_f32(3, OH_DIMS(1, 2, 2), h0)};
    struct mq_tensor out[2];
    oh_run_ok_take_all(n, 7, in, 6, out, 2);
    oh_assert_f32(&out[0], 4, OH_DIMS(3, 1, 2, 2), gru_fw_y, TOL, TOL);
    oh_assert_f32(&out[1], 3, OH_DIMS(1, 2, 2), gru_fw_yh, TOL, TOL);
    /* Past its length a batch row's Y stays zero. */
    const float *y = out[0].data;
    ck_assert(y[8] == 0.0f && y[9] == 0.0f);
    oh_free_all(out, 2);
}
END_TEST

START_TEST(rnn_bidirectional_alpha_beta_order_and_empty_sequence)
{
    Onnx__NodeProto *n = oh_node("RNN", 6, 2);
    oh_attr_string(n, "direction", "bidirectional");
    oh_attr_floats(n, "activation_alpha", 2, (const float[]){0.1f, 0.5f});
    oh_attr_floats(n, "activation_beta", 1, (const float[]){2.0f});
    /* One function per direction; alphas go to the functions that take one, in order. */
    oh_attr_strings(n, "activations", 2, (const char *const[]){"LeakyRelu", "ScaledTanh"});
    struct mq_tensor in[6] = {
        oh_f32(3, OH_DIMS(3, 2, 2), rnn_x), oh_f32(3, OH_DIMS(2, 2, 2), rnn_w),
        oh_f32(3, OH_DIMS(2, 2, 2), rnn_r), oh_f32(2, OH_DIMS(2, 4), rnn_b),
        oh_i32(1, OH_DIMS(2), (const int32_t[]){0, 3}), oh_f32(3, OH_DIMS(2, 2, 2), rnn_h0)};
    struct mq_tensor out[2];
    oh_run_ok_take_all(n, 14, in, 6, out, 2);
    oh_assert_f32(&out[0], 4, OH_DIMS(3, 2, 2, 2), rnn_y, TOL, TOL);
    oh_assert_f32(&out[1], 3, OH_DIMS(2, 2, 2), rnn_yh, TOL, TOL);
    /* Batch row 0 has length 0: its final state is its initial state. */
    const float *yh = out[1].data;
    ck_assert(yh[0] == rnn_h0[0] && yh[1] == rnn_h0[1]);
    oh_free_all(out, 2);
}
END_TEST

START_TEST(rnn_single_activations)
{
    static const struct {
        const char *act;
        float alpha, beta;
        const float *expect;
    } cases[] = {
        {"ThresholdedRelu", 0.2f, 0.0f, rnn_thr_yh},
        {"affine", 0.5f, 0.1f, rnn_aff_yh}, /* names match regardless of case */
        {"Relu", 0.0f, 0.0f, rnn_relu_yh},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Onnx__NodeProto *n = oh_node("RNN", 4, 2);
        oh_attr_strings(n, "activations", 1, &cases[i].act);
        oh_attr_floats(n, "activation_alpha", 1, &cases[i].alpha);
        oh_attr_floats(n, "activation_beta", 1, &cases[i].beta);
        struct mq_tensor in[4] = {
            oh_f32(3, OH_DIMS(3, 2, 2), rnn_x), oh_f32(3, OH_DIMS(1, 2, 2), rnn_w),
            oh_f32(3, OH_DIMS(1, 2, 2), rnn_r), oh_f32(2, OH_DIMS(1, 4), rnn_b)};
        struct mq_tensor out[2];
        oh_run_ok_take_all(n, 14, in, 4, out, 2);
        oh_assert_f32(&out[1], 3, OH_DIMS(1, 2, 2), cases[i].expect, TOL, TOL);
        oh_free_all(out, 2);
    }
}
END_TEST

START_TEST(half_and_double_inputs_match_float)
{
    for (int k = 0; k < 2; k++) {
        int dtype = k == 0 ? MQ_DTYPE_FLOAT16 : MQ_DTYPE_DOUBLE;
        const float *src[3] = {rnn_x, rnn_w, rnn_r};
        const int64_t counts[3] = {12, 4, 4};
        const int64_t dims[3][3] = {{3, 2, 2}, {1, 2, 2}, {1, 2, 2}};
        struct mq_tensor in[3];
        for (int i = 0; i < 3; i++) {
            in[i] = oh_typed(dtype, 3, dims[i], NULL);
            for (int64_t j = 0; j < counts[i]; j++) {
                if (k == 0)
                    ((uint16_t *)in[i].data)[j] = mq_float_to_half(src[i][j]);
                else
                    ((double *)in[i].data)[j] = src[i][j];
            }
        }
        Onnx__NodeProto *n = oh_node("RNN", 3, 2);
        oh_attr_strings(n, "activations", 1, (const char *const[]){"Relu"});
        struct mq_tensor out[2];
        oh_run_ok_take_all(n, 14, in, 3, out, 2);
        ck_assert_int_eq(out[1].dtype, dtype);
        /* rnn_relu_yh was computed with the bias; compare against the float kernel instead. */
        Onnx__NodeProto *nf = oh_node("RNN", 3, 2);
        oh_attr_strings(nf, "activations", 1, (const char *const[]){"Relu"});
        struct mq_tensor inf[3] = {oh_f32(3, dims[0], rnn_x), oh_f32(3, dims[1], rnn_w),
                                   oh_f32(3, dims[2], rnn_r)};
        struct mq_tensor ref[2];
        oh_run_ok_take_all(nf, 14, inf, 3, ref, 2);
        for (int j = 0; j < 4; j++) {
            float v = k == 0 ? mq_half_to_float(((uint16_t *)out[1].data)[j])
                             : (float)((double *)out[1].data)[j];
            float e = ((float *)ref[1].data)[j];
            ck_assert_msg(fabsf(v - e) <= (k == 0 ? 1e-2f : 1e-6f), "%g vs %g", (double)v,
                          (double)e);
        }
        oh_free_all(out, 2);
        oh_free_all(ref, 2);
    }
}
END_TEST

START_TEST(bad_shapes_and_attributes_are_refused)
{
    /* W with the wrong gate count. */
    Onnx__NodeProto *n = oh_node("LSTM", 3, 2);
    struct mq_tensor in[3] = {oh_f32(3, OH_DIMS(3, 2, 2), lstm_x),
                              oh_f32(3, OH_DIMS(1, 6, 2), lstm_w),
                              oh_f32(3, OH_DIMS(1, 8, 2), lstm_r)};
    oh_run_fails_take_all(n, 14, in, 3, 2,
                          "node 'node_under_test' (LSTM): input 'W' has shape [1,6,2]");

    n = oh_node("GRU", 3, 2);
    oh_attr_strings(n, "activations", 1, (const char *const[]){"Sigmoid"});
    in[0] = oh_f32(3, OH_DIMS(3, 2, 2), lstm_x);
    in[1] = oh_f32(3, OH_DIMS(1, 6, 2), lstm_w);
    in[2] = oh_f32(3, OH_DIMS(1, 6, 2), lstm_r);
    oh_run_fails_take_all(n, 14, in, 3, 2, "activations lists 1 functions, expected 2");

    n = oh_node("RNN", 3, 2);
    oh_attr_strings(n, "activations", 1, (const char *const[]){"Swish"});
    in[0] = oh_f32(3, OH_DIMS(3, 2, 2), lstm_x);
    in[1] = oh_f32(3, OH_DIMS(1, 2, 2), lstm_w);
    in[2] = oh_f32(3, OH_DIMS(1, 2, 2), lstm_r);
    oh_run_fails_take_all(n, 14, in, 3, 2, "Swish");

    n = oh_node("RNN", 3, 2);
    oh_attr_string(n, "direction", "sideways");
    in[0] = oh_f32(3, OH_DIMS(3, 2, 2), lstm_x);
    in[1] = oh_f32(3, OH_DIMS(1, 2, 2), lstm_w);
    in[2] = oh_f32(3, OH_DIMS(1, 2, 2), lstm_r);
    oh_run_fails_take_all(n, 14, in, 3, 2, "sideways");

    /* A sequence length beyond the sequence. */
    n = oh_node("RNN", 5, 2);
    struct mq_tensor in5[5] = {oh_f32(3, OH_DIMS(3, 2, 2), lstm_x),
                               oh_f32(3, OH_DIMS(1, 2, 2), lstm_w),
                               oh_f32(3, OH_DIMS(1, 2, 2), lstm_r),
                               oh_f32(2, OH_DIMS(1, 4), lstm_b),
                               oh_i32(1, OH_DIMS(2), (const int32_t[]){3, 4})};
    oh_run_fails_take_all(n, 14, in5, 5, 2, "sequence_lens[1] = 4");
}
END_TEST

START_TEST(empty_batch_gives_empty_outputs)
{
    Onnx__NodeProto *n = oh_node("GRU", 3, 2);
    oh_attr_int(n, "hidden_size", 2);
    struct mq_tensor in[3] = {oh_f32(3, OH_DIMS(3, 0, 2), NULL),
                              oh_f32(3, OH_DIMS(1, 6, 2), gru_w),
                              oh_f32(3, OH_DIMS(1, 6, 2), gru_r)};
    struct mq_tensor out[2];
    oh_run_ok_take_all(n, 14, in, 3, out, 2);
    oh_assert_shape(&out[0], 4, OH_DIMS(3, 1, 0, 2));
    oh_assert_shape(&out[1], 3, OH_DIMS(1, 0, 2));
    oh_free_all(out, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_rnn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, lstm_bidirectional_with_lengths_states_and_peepholes);
    tcase_add_test(tc, lstm_input_forget_and_other_activations);
    tcase_add_test(tc, gru_reverse_linear_before_reset_clip_layout1);
    tcase_add_test(tc, gru_forward_sequence_lengths);
    tcase_add_test(tc, rnn_bidirectional_alpha_beta_order_and_empty_sequence);
    tcase_add_test(tc, rnn_single_activations);
    tcase_add_test(tc, half_and_double_inputs_match_float);
    tcase_add_test(tc, bad_shapes_and_attributes_are_refused);
    tcase_add_test(tc, empty_batch_gives_empty_outputs);
    return mq_check_run(s, tc);
}
