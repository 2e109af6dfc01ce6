/*
 * Normalization ops (src/interp/ops/normalization.c).  Expected values come
 * from the definitions evaluated here in double precision (or by hand), so a
 * wrong axis, a wrong statistic or a wrong parameter layout shows up.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static uint32_t rng_state = 99u;

static struct mq_tensor random_f32(int rank, const int64_t *dims, float offset)
{
    struct mq_tensor t = oh_f32(rank, dims, NULL);
    for (int64_t i = 0; i < t.count; i++)
        ((float *)t.data)[i] = oh_rnd(&rng_state) + offset;
    return t;
}

START_TEST(batchnorm_inference)
{
    /* X [2,2,1,2]; channel 0 scale 2 bias 1 mean 1 var 3 (eps 1 makes sqrt 2) */
    const float x[8] = {1, 3, 0, 4, -1, 5, 2, 2};
    struct mq_tensor in[5] = {
        oh_f32(4, OH_DIMS(2, 2, 1, 2), x), oh_f32(1, OH_DIMS(2), (const float[]){2, 1}),
        oh_f32(1, OH_DIMS(2), (const float[]){1, 0}), oh_f32(1, OH_DIMS(2), (const float[]){1, 2}),
        oh_f32(1, OH_DIMS(2), (const float[]){3, 0})};
    const float want[8] = {1, 1 + 2 * 2 / sqrtf(4.0f), -2, 2, 1 - 4 / 2.0f, 1 + 8 / 2.0f, 0, 0};
    for (int opset = 1; opset <= 15; opset += 1) {
        if (opset != 1 && opset != 6 && opset != 7 && opset != 9 && opset != 14 && opset != 15)
            continue;
        Onnx__NodeProto *node = oh_node("BatchNormalization", 5, 1);
        oh_attr_float(node, "epsilon", 1.0f);
        struct mq_tensor y;
        oh_run_ok_take_node(node, opset, in, 5, &y, 1);
        oh_assert_f32(&y, 4, OH_DIMS(2, 2, 1, 2), want, 1e-6f, 1e-6f);
        mq_tensor_free(&y);
    }
    oh_free_all(in, 5);

    /* rank 2 input, default epsilon, float16 data with float32 parameters (opset 15) */
    uint16_t h[4];
    const float xv[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++)
        h[i] = mq_float_to_half(xv[i]);
    in[0] = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 2), h);
    in[1] = oh_f32(1, OH_DIMS(2), (const float[]){1, 1});
    in[2] = oh_f32(1, OH_DIMS(2), (const float[]){0, 0});
    in[3] = oh_f32(1, OH_DIMS(2), (const float[]){2, 3});
    in[4] = oh_f32(1, OH_DIMS(2), (const float[]){1, 1});
    struct mq_tensor y;
    oh_run_ok_take_node(oh_node("BatchNormalization", 5, 1), 15, in, 5, &y, 1);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT16);
    const float w2[4] = {-1, -1, 1, 1};
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabsf(mq_half_to_float(((uint16_t *)y.data)[i]) - w2[i] / sqrtf(1.00001f)) <
                          1e-3f, "element %d", i);
    mq_tensor_free(&y);
    oh_free_all(in, 5);
}
END_TEST

START_TEST(batchnorm_spatial_zero)
{
    /* BatchNormalization-7 spatial=0: parameters per (channel, position) */
    const float x[4] = {1, 2, 3, 4};
    struct mq_tensor in[5] = {oh_f32(3, OH_DIMS(1, 2, 2), x),
                              oh_f32(2, OH_DIMS(2, 2), (const float[]){1, 2, 3, 4}),
                              oh_f32(2, OH_DIMS(2, 2), (const float[]){0, 0, 0, 1}),
                              oh_f32(2, OH_DIMS(2, 2), (const float[]){1, 1, 1, 1}),
                              oh_f32(2, OH_DIMS(2, 2), (const float[]){1, 1, 1, 1})};
    Onnx__NodeProto *node = oh_node("BatchNormalization", 5, 1);
    oh_attr_int(node, "spatial", 0);
    oh_attr_float(node, "epsilon", 0.0f);
    struct mq_tensor y;
    oh_run_ok_take_node(node, 7, in, 5, &y, 1);
    oh_assert_f32(&y, 3, OH_DIMS(1, 2, 2), (const float[]){0, 2, 6, 13}, 1e-6f, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 5);
}
END_TEST

START_TEST(batchnorm_training)
{
    /* training_mode: batch statistics over N and the spatial axes, running averages out */
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    struct mq_tensor in[5] = {oh_f32(3, OH_DIMS(2, 2, 2), x),
                              oh_f32(1, OH_DIMS(2), (const float[]){1, 2}),
                              oh_f32(1, OH_DIMS(2), (const float[]){0, 1}),
                              oh_f32(1, OH_DIMS(2), (const float[]){10, 20}),
                              oh_f32(1, OH_DIMS(2), (const float[]){1, 2})};
    Onnx__NodeProto *node = oh_node("BatchNormalization", 5, 3);
    oh_attr_int(node, "training_mode", 1);
    oh_attr_float(node, "momentum", 0.5f);
    oh_attr_float(node, "epsilon", 0.0f);
    struct mq_tensor y[3];
    oh_run_ok_take_node(node, 15, in, 5, y, 3);
    /* channel 0: {1,2,5,6} mean 3.5 var 4.25; channel 1: {3,4,7,9} mean 5.75 var 5.6875 */
    float want[8];
    const int ch[8] = {0, 0, 1, 1, 0, 0, 1, 1};
    const double mean[2] = {3.5, 5.75}, var[2] = {4.25, 5.6875}, sc[2] = {1, 2}, bi[2] = {0, 1};
    for (int i = 0; i < 8; i++)
        want[i] = (float)((x[i] - mean[ch[i]]) / sqrt(var[ch[i]]) * sc[ch[i]] + bi[ch[i]]);
    oh_assert_f32(&y[0], 3, OH_DIMS(2, 2, 2), want, 1e-5f, 1e-5f);
    oh_assert_f32(&y[1], 1, OH_DIMS(2), (const float[]){6.75f, 12.875f}, 1e-5f, 0);
    oh_assert_f32(&y[2], 1, OH_DIMS(2), (const float[]){2.625f, 3.84375f}, 1e-5f, 0);
    oh_free_all(y, 3);
    oh_free_all(in, 5);
}
END_TEST

START_TEST(batchnorm_errors)
{
    struct mq_tensor in[5] = {random_f32(3, OH_DIMS(1, 2, 2), 0), random_f32(1, OH_DIMS(3), 0),
                              random_f32(1, OH_DIMS(2), 0), random_f32(1, OH_DIMS(2), 0),
                              random_f32(1, OH_DIMS(2), 1)};
    oh_expect_error_take_all(oh_node("BatchNormalization", 5, 1), 15, in, 5, "scale has shape [3]");
    for (int i = 0; i < 5; i++)
        in[i] = random_f32(1 + (i == 0), i == 0 ? OH_DIMS(1, 2) : OH_DIMS(2), 1);
    /* opset 7 with its training outputs asked for */
    oh_expect_error_take_all(oh_node("BatchNormalization", 5, 3), 7, in, 5, "training outputs");
    in[0] = oh_i32(2, OH_DIMS(1, 1), (const int32_t[]){1});
    for (int i = 1; i < 5; i++)
        in[i] = random_f32(1, OH_DIMS(1), 1);
    oh_expect_error_take_all(oh_node("BatchNormalization", 5, 1), 15, in, 5, "int32");
}
END_TEST

/* Instance/group normalization by the definition: groups of channels per batch entry. */
static void reference_group_norm(const float *x, int64_t n, int64_t c, int64_t size,
                                 int64_t groups, const float *scale, const float *bias,
                                 int per_group, double eps, float *y)
{
    int64_t cg = c / groups;
    for (int64_t b = 0; b < n; b++)
        for (int64_t g = 0; g < groups; g++) {
            const float *p = x + (b * c + g * cg) * size;
            double s = 0, q = 0;
            for (int64_t i = 0; i < cg * size; i++)
                s += p[i];
            double m = s / (double)(cg * size);
            for (int64_t i = 0; i < cg * size; i++)
                q += (p[i] - m) * (p[i] - m);
            double inv = 1.0 / sqrt(q / (double)(cg * size) + eps);
            for (int64_t i = 0; i < cg * size; i++) {
                int64_t ch = g * cg + i / size, k = per_group ? g : ch;
                y[(b * c + g * cg) * size + i] = (float)((p[i] - m) * inv * scale[k] + bias[k]);
            }
        }
}

START_TEST(instance_and_group_norm)
{
    struct mq_tensor in[3] = {random_f32(4, OH_DIMS(2, 4, 3, 5), 3.0f),
                              random_f32(1, OH_DIMS(4), 0), random_f32(1, OH_DIMS(4), 0)};
    float want[120];
    reference_group_norm(in[0].data, 2, 4, 15, 4, in[1].data, in[2].data, 0, 1e-5, want);
    struct mq_tensor y;
    oh_run_ok_take_node(oh_node("InstanceNormalization", 3, 1), 6, in, 3, &y, 1);
    oh_assert_f32(&y, 4, OH_DIMS(2, 4, 3, 5), want, 1e-5f, 1e-4f);
    mq_tensor_free(&y);

    /* GroupNormalization-21: per-channel scale and bias, 2 groups of 2 channels */
    Onnx__NodeProto *node = oh_node("GroupNormalization", 3, 1);
    oh_attr_int(node, "num_groups", 2);
    oh_attr_float(node, "epsilon", 0.01f);
    reference_group_norm(in[0].data, 2, 4, 15, 2, in[1].data, in[2].data, 0, 0.01f, want);
    oh_run_ok_take_node(node, 21, in, 3, &y, 1);
    oh_assert_f32(&y, 4, OH_DIMS(2, 4, 3, 5), want, 1e-5f, 1e-4f);
    mq_tensor_free(&y);
    oh_free_all(in + 1, 2);

    /* GroupNormalization-18: one scale and bias per group */
    in[1] = oh_f32(1, OH_DIMS(2), (const float[]){0.5f, 2.0f});
    in[2] = oh_f32(1, OH_DIMS(2), (const float[]){1.0f, -1.0f});
    node = oh_node("GroupNormalization", 3, 1);
    oh_attr_int(node, "num_groups", 2);
    reference_group_norm(in[0].data, 2, 4, 15, 2, in[1].data, in[2].data, 1, 1e-5, want);
    oh_run_ok_take_node(node, 18, in, 3, &y, 1);
    oh_assert_f32(&y, 4, OH_DIMS(2, 4, 3, 5), want, 1e-5f, 1e-4f);
    mq_tensor_free(&y);

    /* 4 channels do not split into 3 groups; per-group scale given at opset 21 */
    node = oh_node("GroupNormalization", 3, 1);
    oh_attr_int(node, "num_groups", 3);
    oh_expect_error_take_all(node, 18, in, 3, "num_groups 3");
}
END_TEST

static void check_layer_norm(int rank, const int64_t *dims, int axis, int with_bias,
                             int scale_rank, int stash_type)
{
    int a = axis < 0 ? axis + rank : axis;
    int64_t rows = 1, cols = 1;
    for (int i = 0; i < rank; i++)
        *(i < a ? &rows : &cols) *= dims[i];
    struct mq_tensor in[3];
    in[0] = random_f32(rank, dims, 1.0f);
    /* Scale may have fewer leading axes than the normalised shape (it broadcasts) */
    in[1] = random_f32(scale_rank, dims + rank - scale_rank, 0);
    if (with_bias)
        in[2] = random_f32(rank - a, dims + a, 0);
    int64_t scale_count = in[1].count;
    float *want = calloc((size_t)(rows * cols), sizeof(float));
    float *want_mean = calloc((size_t)rows, sizeof(float));
    float *want_inv = calloc((size_t)rows, sizeof(float));
    const float *x = in[0].data, *s = in[1].data, *b = with_bias ? in[2].data : NULL;
    for (int64_t r = 0; r < rows; r++) {
        double sum = 0, q = 0;
        for (int64_t c = 0; c < cols; c++)
            sum += x[r * cols + c];
        double m = sum / (double)cols;
        for (int64_t c = 0; c < cols; c++)
            q += (x[r * cols + c] - m) * (x[r * cols + c] - m);
        double inv = 1.0 / sqrt(q / (double)cols + 1e-5);
        for (int64_t c = 0; c < cols; c++)
            want[r * cols + c] = (float)((x[r * cols + c] - m) * inv * s[c % scale_count] +
                                         (b ? b[c] : 0.0f));
        want_mean[r] = (float)m;
        want_inv[r] = (float)inv;
    }
    Onnx__NodeProto *node = oh_node("LayerNormalization", with_bias ? 3 : 2, 3);
    if (axis != -1)
        oh_attr_int(node, "axis", axis);
    if (stash_type != 1)
        oh_attr_int(node, "stash_type", stash_type);
    struct mq_tensor y[3];
    oh_run_ok_take_node(node, 17, in, with_bias ? 3 : 2, y, 3);
    oh_assert_f32(&y[0], rank, dims, want, 1e-5f, 1e-4f);
    int64_t sdims[6];
    for (int i = 0; i < rank; i++)
        sdims[i] = i < a ? dims[i] : 1;
    if (stash_type == 1) {
        oh_assert_f32(&y[1], rank, sdims, want_mean, 1e-6f, 1e-5f);
        oh_assert_f32(&y[2], rank, sdims, want_inv, 1e-6f, 1e-5f);
    } else {
        ck_assert_int_eq(y[1].dtype, stash_type);
        oh_assert_shape(&y[2], rank, sdims);
    }
    oh_free_all(y, 3);
    oh_free_all(in, with_bias ? 3 : 2);
    free(want);
    free(want_mean);
    free(want_inv);
}

START_TEST(layer_norm)
{
    const int64_t d4[4] = {2, 3, 4, 5};
    for (int axis = -4; axis < 4; axis++)
        check_layer_norm(4, d4, axis, 1, 4 - (axis < 0 ? axis + 4 : axis), 1);
    check_layer_norm(4, d4, -1, 0, 1, 1);
    check_layer_norm(4, d4, 1, 1, 1, 1);  /* Scale [5] broadcast over [3,4,5] */
    check_layer_norm(2, OH_DIMS(3, 4), 0, 0, 2, 1);
    check_layer_norm(3, OH_DIMS(2, 2, 3), -2, 1, 2, MQ_DTYPE_DOUBLE);

    /* float16 X keeps float32 Mean/InvStdDev (stash_type 1) */
    uint16_t h[4];
    for (int i = 0; i < 4; i++)
        h[i] = mq_float_to_half((float)i);
    struct mq_tensor in[2] = {
        oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 2), h),
        oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(2), (const uint16_t[]){0x3c00, 0x3c00})};
    struct mq_tensor y[3];
    oh_run_ok_take_node(oh_node("LayerNormalization", 2, 3), 17, in, 2, y, 3);
    ck_assert_int_eq(y[0].dtype, MQ_DTYPE_FLOAT16);
    ck_assert_int_eq(y[1].dtype, MQ_DTYPE_FLOAT);
    oh_assert_f32(&y[1], 2, OH_DIMS(2, 1), (const float[]){0.5f, 2.5f}, 0, 0);
    ck_assert(fabsf(mq_half_to_float(((uint16_t *)y[0].data)[0]) + 1.0f) < 1e-3f);
    oh_free_all(y, 3);
    oh_free_all(in, 2);

    /* Scale that does not broadcast, and an axis out of range */
    in[0] = random_f32(2, OH_DIMS(2, 3), 0);
    in[1] = random_f32(1, OH_DIMS(2), 0);
    oh_expect_error_take_all(oh_node("LayerNormalization", 2, 1), 17, in, 2, "broadcast");
    in[0] = random_f32(2, OH_DIMS(2, 3), 0);
    in[1] = random_f32(1, OH_DIMS(3), 0);
    Onnx__NodeProto *node = oh_node("LayerNormalization", 2, 1);
    oh_attr_int(node, "axis", 2);
    oh_expect_error_take_all(node, 17, in, 2, "axis 2");
}
END_TEST

START_TEST(lrn)
{
    struct mq_tensor x = random_f32(4, OH_DIMS(2, 5, 2, 3), 0);
    const float *xv = x.data;
    /* size 3 (one channel each side), and size 4 (one before, two after) */
    for (int size = 3; size <= 4; size++) {
        float want[60];
        double alpha = 0.5, beta = 0.6, bias = 2.0;
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 5; c++)
                for (int i = 0; i < 6; i++) {
                    double sq = 0;
                    int lo = c - (size - 1) / 2, hi = c + size / 2;
                    for (int k = lo < 0 ? 0 : lo; k <= (hi > 4 ? 4 : hi); k++)
                        sq += xv[(n * 5 + k) * 6 + i] * xv[(n * 5 + k) * 6 + i];
                    int at = (n * 5 + c) * 6 + i;
                    want[at] = (float)(xv[at] / pow(bias + alpha / size * sq, beta));
                }
        Onnx__NodeProto *node = oh_node("LRN", 1, 1);
        oh_attr_int(node, "size", size);
        oh_attr_float(node, "alpha", 0.5f);
        oh_attr_float(node, "beta", 0.6f);
        oh_attr_float(node, "bias", 2.0f);
        struct mq_tensor y;
        oh_run_ok_take_node(node, 13, &x, 1, &y, 1);
        oh_assert_f32(&y, 4, OH_DIMS(2, 5, 2, 3), want, 1e-6f, 1e-5f);
        mq_tensor_free(&y);
    }
    oh_expect_error_take_all(oh_node("LRN", 1, 1), 1, &x, 1, "size is required");
}
END_TEST

START_TEST(mean_variance_normalization)
{
    struct mq_tensor x = random_f32(4, OH_DIMS(3, 2, 2, 2), 2.0f);
    const float *xv = x.data;
    float want[24];
    /* default axes [0,2,3]: statistics per channel */
    for (int c = 0; c < 2; c++) {
        double s = 0, q = 0;
        for (int n = 0; n < 3; n++)
            for (int i = 0; i < 4; i++)
                s += xv[(n * 2 + c) * 4 + i];
        double m = s / 12;
        for (int n = 0; n < 3; n++)
            for (int i = 0; i < 4; i++)
                q += (xv[(n * 2 + c) * 4 + i] - m) * (xv[(n * 2 + c) * 4 + i] - m);
        double sd = sqrt(q / 12);
        for (int n = 0; n < 3; n++)
            for (int i = 0; i < 4; i++)
                want[(n * 2 + c) * 4 + i] = (float)((xv[(n * 2 + c) * 4 + i] - m) / (sd + 1e-9));
    }
    struct mq_tensor y;
    oh_run_ok_take_node(oh_node("MeanVarianceNormalization", 1, 1), 13, &x, 1, &y, 1);
    oh_assert_f32(&y, 4, OH_DIMS(3, 2, 2, 2), want, 1e-5f, 1e-4f);
    mq_tensor_free(&y);

    /* axes [-1]: statistics along the last axis only */
    for (int r = 0; r < 12; r++) {
        double m = (xv[2 * r] + xv[2 * r + 1]) / 2.0, d = fabs(xv[2 * r] - m);
        want[2 * r] = (float)((xv[2 * r] - m) / (d + 1e-9));
        want[2 * r + 1] = (float)((xv[2 * r + 1] - m) / (d + 1e-9));
    }
    Onnx__NodeProto *node = oh_node("MeanVarianceNormalization", 1, 1);
    oh_attr_ints(node, "axes", 1, OH_DIMS(-1));
    oh_run_ok_take_node(node, 9, &x, 1, &y, 1);
    oh_assert_f32(&y, 4, OH_DIMS(3, 2, 2, 2), want, 1e-5f, 1e-4f);
    mq_tensor_free(&y);

    node = oh_node("MeanVarianceNormalization", 1, 1);
    oh_attr_ints(node, "axes", 2, OH_DIMS(1, -3));
    oh_expect_error_take_all(node, 13, &x, 1, "twice");
}
END_TEST

START_TEST(rms_normalization_and_attention)
{
    /* RMSNormalization: x / sqrt(mean(x^2) + eps) * scale; mean(1,4,9,16) = 7.5. */
    Onnx__NodeProto *n = oh_node("RMSNormalization", 2, 1);
    oh_attr_float(n, "epsilon", 0.0f);
    struct mq_tensor in[4] = {oh_f32(2, OH_DIMS(1, 4), (const float[]){1, 2, 3, 4}),
                              oh_f32(1, OH_DIMS(4), (const float[]){1, 1, 2, 2})};
    struct mq_tensor y = oh_run1_take_all(n, 23, in, 2);
    oh_assert_f32(&y, 2, OH_DIMS(1, 4), (const float[]){0.365148f, 0.730297f, 2.190890f, 2.921187f},
                  1e-5f, 1e-5f);
    mq_tensor_free(&y);

    /* Attention, one head: scores (1/sqrt 2) * [1, 0] -> softmax [0.66976, 0.33024] over V. */
    n = oh_node("Attention", 3, 1);
    in[0] = oh_f32(4, OH_DIMS(1, 1, 1, 2), (const float[]){1, 0});
    in[1] = oh_f32(4, OH_DIMS(1, 1, 2, 2), (const float[]){1, 0, 0, 1});
    in[2] = oh_f32(4, OH_DIMS(1, 1, 2, 1), (const float[]){10, 20});
    y = oh_run1_take_all(n, 23, in, 3);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 1, 1), (const float[]){13.3024f}, 1e-3f, 1e-4f);
    mq_tensor_free(&y);

    /* A boolean mask hiding the second key leaves V[0]; hiding both gives zeros, not NaN. */
    for (int both = 0; both < 2; both++) {
        n = oh_node("Attention", 4, 1);
        in[0] = oh_f32(4, OH_DIMS(1, 1, 1, 2), (const float[]){1, 0});
        in[1] = oh_f32(4, OH_DIMS(1, 1, 2, 2), (const float[]){1, 0, 0, 1});
        in[2] = oh_f32(4, OH_DIMS(1, 1, 2, 1), (const float[]){10, 20});
        in[3] = oh_typed(MQ_DTYPE_BOOL, 2, OH_DIMS(1, 2), (const uint8_t[]){!both, 0});
        y = oh_run1_take_all(n, 23, in, 4);
        oh_assert_f32(&y, 4, OH_DIMS(1, 1, 1, 1), (const float[]){both ? 0.0f : 10.0f}, 1e-6f,
                      1e-6f);
        mq_tensor_free(&y);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_normalization");
    TCase *tc = tcase_create("normalization");
    tcase_add_test(tc, batchnorm_inference);
    tcase_add_test(tc, batchnorm_spatial_zero);
    tcase_add_test(tc, batchnorm_training);
    tcase_add_test(tc, batchnorm_errors);
    tcase_add_test(tc, instance_and_group_norm);
    tcase_add_test(tc, layer_norm);
    tcase_add_test(tc, lrn);
    tcase_add_test(tc, mean_variance_normalization);
    tcase_add_test(tc, rms_normalization_and_attention);
    return mq_check_run(s, tc);
}
