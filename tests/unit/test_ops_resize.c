/*
 * Resize and Upsample (src/interp/ops/resize.c).  Expected values come from a
 * per-element Python port of the ONNX reference implementation (the one that
 * generated the backend test data), unless computed by hand in a comment.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

/* 1..16 as [1, 1, 4, 4]. */
static struct mq_tensor x44(void)
{
    float v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (float)(i + 1);
    return oh_f32(4, OH_DIMS(1, 1, 4, 4), v);
}

static struct mq_tensor f32s(int n, const float *v)
{
    return oh_f32(1, OH_DIMS(n), v);
}

static struct mq_tensor ints(int n, const int64_t *v)
{
    return oh_i64(1, OH_DIMS(n), v);
}

/* Inputs are X, roi, scales, sizes; `present` says which are given (others omitted). */
static int resize(Onnx__NodeProto *n, int opset, struct mq_tensor *in, const int *present,
                  int n_in, struct mq_tensor *out, struct mq_error *err)
{
    for (int i = 0; i < n_in; i++)
        if (!present[i])
            oh_omit_input(n, i);
    memset(out, 0, sizeof *out);
    int rc = oh_run(n, opset, in, n_in, out, 1, err);
    for (int i = 0; i < n_in; i++)
        if (present[i])
            mq_tensor_free(&in[i]);
    oh_node_free(n);
    return rc;
}

static struct mq_tensor resize_ok(Onnx__NodeProto *n, int opset, struct mq_tensor *in,
                                  const int *present, int n_in)
{
    struct mq_error err = {{0}};
    struct mq_tensor out;
    int rc = resize(n, opset, in, present, n_in, &out, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    return out;
}

static void resize_fail(Onnx__NodeProto *n, int opset, struct mq_tensor *in, const int *present,
                        int n_in, const char *needle)
{
    struct mq_error err = {{0}};
    struct mq_tensor out;
    int rc = resize(n, opset, in, present, n_in, &out, &err);
    ck_assert_msg(rc != 0, "expected an error containing '%s'", needle);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
    mq_tensor_free(&out);
}

static void check_f32(struct mq_tensor *t, int rank, const int64_t *dims, const float *v)
{
    oh_assert_f32(t, rank, dims, v, 1e-5f, 1e-5f);
    mq_tensor_free(t);
}

static Onnx__NodeProto *resize_node(const char *mode, const char *ctm)
{
    Onnx__NodeProto *n = oh_node("Resize", 4, 1);
    if (mode)
        oh_attr_string(n, "mode", mode);
    if (ctm)
        oh_attr_string(n, "coordinate_transformation_mode", ctm);
    return n;
}

static const int SCALES[4] = {1, 0, 1, 0}, SIZES[4] = {1, 0, 0, 1}, ROI_SIZES[4] = {1, 1, 0, 1};

START_TEST(nearest_upsample_and_modes)
{
    /* 2x nearest of [[1,2],[3,4]]: every pixel repeated (half_pixel, round_prefer_floor) */
    struct mq_tensor in[4] = {oh_f32(4, OH_DIMS(1, 1, 2, 2), (float[]){1, 2, 3, 4}), {0},
                              f32s(4, (float[]){1, 1, 2, 2})};
    struct mq_tensor o = resize_ok(resize_node(NULL, NULL), 13, in, SCALES, 4);
    check_f32(&o, 4, OH_DIMS(1, 1, 4, 4),
              (float[]){1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});

    /* each nearest_mode on a 1-D input upsampled by 2.5 */
    static const char *const modes[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                        "ceil"};
    static const float want[4][10] = {
        {0, 0, 0, 1, 1, 2, 2, 2, 3, 3},
        {0, 0, 1, 1, 1, 2, 2, 3, 3, 3},
        {0, 0, 0, 0, 1, 1, 2, 2, 2, 3},
        {0, 1, 1, 1, 2, 2, 3, 3, 3, 3},
    };
    for (int m = 0; m < 4; m++) {
        in[0] = f32s(4, (float[]){0, 1, 2, 3});
        in[2] = f32s(1, (float[]){2.5f});
        Onnx__NodeProto *n = resize_node("nearest", NULL);
        oh_attr_string(n, "nearest_mode", modes[m]);
        o = resize_ok(n, 13, in, SCALES, 4);
        check_f32(&o, 1, OH_DIMS(10), want[m]);
    }

    /* integer data moves untouched; axis 0 of a 3-D tensor is resized too */
    in[0] = oh_u8(3, OH_DIMS(2, 1, 2), (uint8_t[]){10, 20, 250, 251});
    in[3] = ints(3, (int64_t[]){3, 1, 4});
    Onnx__NodeProto *n = resize_node("nearest", "asymmetric");
    o = resize_ok(n, 13, in, SIZES, 4);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_UINT8);
    /* asymmetric, round_prefer_floor: rows x / 1.5 = 0, .67, 1.33 -> 0, 1, 1; columns x / 2 =
     * 0, .5, 1, 1.5 -> 0, 0, 1, 1 (ties go down) */
    oh_assert_i64(&o, 3, OH_DIMS(3, 1, 4),
                  (int64_t[]){10, 10, 20, 20, 250, 250, 251, 251, 250, 250, 251, 251});
    mq_tensor_free(&o);
}
END_TEST

START_TEST(linear_cubic_and_antialias)
{
    struct mq_tensor in[4] = {x44(), {0}, f32s(4, (float[]){1, 1, 0.6f, 0.6f})};
    struct mq_tensor o = resize_ok(resize_node("linear", NULL), 13, in, SCALES, 4);
    check_f32(&o, 4, OH_DIMS(1, 1, 2, 2), (float[]){2.666667f, 4.333333f, 9.333333f, 11});

    in[0] = x44();
    in[2] = f32s(4, (float[]){1, 1, 0.6f, 0.6f});
    Onnx__NodeProto *n = resize_node("linear", NULL);
    oh_attr_int(n, "antialias", 1);
    o = resize_ok(n, 18, in, SCALES, 4);
    check_f32(&o, 4, OH_DIMS(1, 1, 2, 2), (float[]){2.875f, 4.5f, 9.375f, 11});

    in[0] = x44();
    in[2] = f32s(4, (float[]){1, 1, 0.6f, 0.6f});
    n = resize_node("cubic", NULL);
    oh_attr_int(n, "antialias", 1);
    o = resize_ok(n, 18, in, SCALES, 4);
    check_f32(&o, 4, OH_DIMS(1, 1, 2, 2), (float[]){2.518072f, 4.285886f, 9.589329f, 11.35714f});

    /* cubic, A = -0.5, exclude_outside, upsampling a 1-D signal by 1.6 */
    in[0] = f32s(5, (float[]){0, 10, 0, 5, 5});
    in[2] = f32s(1, (float[]){1.6f});
    n = resize_node("cubic", NULL);
    oh_attr_float(n, "cubic_coeff_a", -0.5f);
    oh_attr_int(n, "exclude_outside", 1);
    o = resize_ok(n, 13, in, SCALES, 4);
    check_f32(&o, 1, OH_DIMS(8),
              (float[]){-0.7195572f, 4.451421f, 9.896851f, 2.688599f, 0.6225586f, 4.797363f,
                        5.251741f, 5});

    /* every axis of a 3-D tensor, align_corners: x = arange(24).reshape(2,3,4) ** 1.5 */
    float v[24];
    for (int i = 0; i < 24; i++)
        v[i] = powf((float)i, 1.5f);
    in[0] = oh_f32(3, OH_DIMS(2, 3, 4), v);
    in[3] = ints(3, (int64_t[]){3, 2, 3});
    o = resize_ok(resize_node("linear", "align_corners"), 13, in, SIZES, 4);
    check_f32(&o, 3, OH_DIMS(3, 2, 3),
              (float[]){0, 1.914214f, 5.196153f, 22.62742f, 29.31139f, 36.48287f, 20.78461f,
                        25.77095f, 31.64545f, 56.03507f, 64.51151f, 73.39349f, 41.56922f,
                        49.62769f, 58.09475f, 89.44272f, 99.71162f, 110.3041f});
}
END_TEST

START_TEST(axes_aspect_crop_symmetric)
{
    /* axes [3, 2] with sizes (w=3, h=1) and not_larger: one scale of 1/4 for both */
    struct mq_tensor in[4] = {x44(), {0}, {0}, ints(2, (int64_t[]){3, 1})};
    Onnx__NodeProto *n = resize_node("linear", NULL);
    oh_attr_ints(n, "axes", 2, (int64_t[]){3, 2});
    oh_attr_string(n, "keep_aspect_ratio_policy", "not_larger");
    struct mq_tensor o = resize_ok(n, 18, in, SIZES, 4);
    check_f32(&o, 4, OH_DIMS(1, 1, 1, 1), (float[]){8.5f});

    in[0] = x44();
    in[3] = ints(2, (int64_t[]){1, 3});
    n = resize_node("linear", NULL);
    oh_attr_ints(n, "axes", 2, (int64_t[]){-2, -1});
    oh_attr_string(n, "keep_aspect_ratio_policy", "not_smaller");
    o = resize_ok(n, 18, in, SIZES, 4);
    check_f32(&o, 4, OH_DIMS(1, 1, 3, 3),
              (float[]){1.833333f, 3.166667f, 4.5f, 7.166667f, 8.5f, 9.833333f, 12.5f,
                        13.83333f, 15.16667f});

    /* tf_crop_and_resize with a crop box reaching past the input: extrapolation 10 */
    in[0] = x44();
    in[1] = f32s(8, (float[]){0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f});
    in[3] = ints(4, (int64_t[]){1, 1, 3, 3});
    n = resize_node("linear", "tf_crop_and_resize");
    oh_attr_float(n, "extrapolation_value", 10);
    o = resize_ok(n, 13, in, ROI_SIZES, 4);
    check_f32(&o, 4, OH_DIMS(1, 1, 3, 3), (float[]){7.6f, 10, 10, 12.4f, 10, 10, 10, 10, 10});

    /* the same crop in nearest mode takes the extrapolation value on the same positions */
    in[0] = x44();
    in[1] = f32s(8, (float[]){0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f});
    in[3] = ints(4, (int64_t[]){1, 1, 3, 3});
    n = resize_node("nearest", "tf_crop_and_resize");
    oh_attr_float(n, "extrapolation_value", -1);
    o = resize_ok(n, 13, in, ROI_SIZES, 4);
    /* rows 1.2x + 1.2 = 1.2, 2.4, 3.6; columns 1.65x + 1.8 = 1.8, 3.45, 5.1; past 3 is outside */
    check_f32(&o, 4, OH_DIMS(1, 1, 3, 3), (float[]){7, -1, -1, 11, -1, -1, -1, -1, -1});

    /* half_pixel_symmetric: scale 1.7 on width 2 gives 3 outputs centred on the input */
    in[0] = oh_f32(2, OH_DIMS(1, 2), (float[]){1, 3});
    in[2] = f32s(2, (float[]){1, 1.7f});
    o = resize_ok(resize_node("linear", "half_pixel_symmetric"), 19, in, SCALES, 4);
    check_f32(&o, 2, OH_DIMS(1, 3), (float[]){1, 2, 3});
}
END_TEST

START_TEST(legacy_forms)
{
    /* Upsample-7: scales attribute, asymmetric nearest (truncation) */
    struct mq_tensor in[4] = {oh_f32(2, OH_DIMS(1, 2), (float[]){1, 2})};
    Onnx__NodeProto *n = oh_node("Upsample", 1, 1);
    oh_attr_floats(n, "scales", 2, (float[]){2, 2.5f});
    struct mq_tensor o = resize_ok(n, 7, in, (int[]){1}, 1);
    check_f32(&o, 2, OH_DIMS(2, 5), (float[]){1, 1, 1, 2, 2, 1, 1, 1, 2, 2});

    /* Upsample-9 linear: asymmetric, clamped at the edge: x/2 -> 0, .5, 1, 1.5 */
    in[0] = oh_f32(1, OH_DIMS(2), (float[]){1, 3});
    in[1] = f32s(1, (float[]){2});
    n = oh_node("Upsample", 2, 1);
    oh_attr_string(n, "mode", "linear");
    o = resize_ok(n, 9, in, (int[]){1, 1}, 2);
    check_f32(&o, 1, OH_DIMS(4), (float[]){1, 2, 3, 3});

    /* Resize-10 nearest downsampling takes the ceiling: x / 0.75 = 0, 1.33, 2.67 -> 0, 2, 3 */
    in[0] = f32s(4, (float[]){0, 1, 2, 3});
    in[1] = f32s(1, (float[]){0.75f});
    n = oh_node("Resize", 2, 1);
    o = resize_ok(n, 10, in, (int[]){1, 1}, 2);
    check_f32(&o, 1, OH_DIMS(3), (float[]){0, 2, 3});
}
END_TEST

START_TEST(types_and_empty)
{
    /* uint8 cubic overshoot saturates: [0, 255, 255, 0] upsampled */
    struct mq_tensor in[4] = {oh_u8(1, OH_DIMS(4), (uint8_t[]){0, 0, 255, 255}), {0},
                              f32s(1, (float[]){2})};
    struct mq_tensor o = resize_ok(resize_node("cubic", NULL), 13, in, SCALES, 4);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_UINT8);
    const uint8_t *u = o.data;
    /* the ringing before the step would be negative and after it above 255 */
    ck_assert_int_eq(u[2], 0);
    ck_assert_int_eq(u[5], 255);
    ck_assert(u[3] > 0 && u[3] < 128 && u[4] > 128 && u[4] < 255);
    mq_tensor_free(&o);

    /* double data is interpolated in double */
    in[0] = oh_typed(MQ_DTYPE_DOUBLE, 1, OH_DIMS(2), (double[]){1e-9, 3e-9});
    in[2] = f32s(1, (float[]){2});
    o = resize_ok(resize_node("linear", "asymmetric"), 13, in, SCALES, 4);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_DOUBLE);
    ck_assert(fabs(((double *)o.data)[1] - 2e-9) < 1e-20);
    mq_tensor_free(&o);

    /* an empty batch stays empty */
    in[0] = oh_f32(4, OH_DIMS(0, 1, 2, 2), NULL);
    in[2] = f32s(4, (float[]){1, 1, 2, 2});
    o = resize_ok(resize_node("linear", NULL), 13, in, SCALES, 4);
    oh_assert_shape(&o, 4, OH_DIMS(0, 1, 4, 4));
    mq_tensor_free(&o);
}
END_TEST

START_TEST(errors)
{
    struct mq_tensor in[4] = {x44(), {0}, f32s(4, (float[]){1, 1, 2, 2}),
                              ints(4, (int64_t[]){1, 1, 8, 8})};
    resize_fail(resize_node(NULL, NULL), 13, in, (int[]){1, 0, 1, 1}, 4, "only one");
    in[0] = x44();
    in[2] = f32s(3, (float[]){1, 2, 2});
    resize_fail(resize_node(NULL, NULL), 13, in, SCALES, 4, "3 values");
    in[0] = x44();
    in[2] = f32s(4, (float[]){1, 1, 0, 2});
    resize_fail(resize_node(NULL, NULL), 13, in, SCALES, 4, "positive");
    in[0] = x44();
    in[3] = ints(4, (int64_t[]){1, 1, 3, 3});
    resize_fail(resize_node("linear", "tf_crop_and_resize"), 13, in, SIZES, 4, "roi");
    in[0] = x44();
    in[2] = f32s(4, (float[]){1, 1, 2, 2});
    resize_fail(resize_node("bicubic", NULL), 13, in, SCALES, 4, "mode 'bicubic'");
    in[0] = x44();
    in[2] = f32s(4, (float[]){1, 1, 2, 2});
    Onnx__NodeProto *n = resize_node(NULL, NULL);
    oh_attr_string(n, "nearest_mode", "nearest");
    resize_fail(n, 13, in, SCALES, 4, "nearest_mode");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_resize");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, nearest_upsample_and_modes);
    tcase_add_test(tc, linear_cubic_and_antialias);
    tcase_add_test(tc, axes_aspect_crop_symmetric);
    tcase_add_test(tc, legacy_forms);
    tcase_add_test(tc, types_and_empty);
    tcase_add_test(tc, errors);
    return mq_check_run(s, tc);
}
