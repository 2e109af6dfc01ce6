/*
 * GridSample and RoiAlign (src/interp/ops/sampling.c).  GridSample cases use
 * the values of onnx's backend examples (produced with PyTorch); RoiAlign
 * cases sample a linear ramp, where bilinear interpolation is exact, so the
 * expected bins are worked out by hand.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

/* ------------------------------------------------------------ GridSample */

static const float gs_x[6] = {0, 1, 2, 3, 4, 5}; /* [1, 1, 3, 2] */
static const float gs_grid_modes[16] = {-1, -1, -0.5f, -0.5f, -0.2f, -0.2f, 0, 0,
                                        0,  0,  -0.2f, -0.2f, 0.5f,  0.5f,  1, 1};
static const float gs_grid_pad[16] = {-10, -10, -5, -5, -0.2f, -0.2f, 10, 10,
                                      10,  10,  -0.2f, -0.2f, 5, 5, 10, 10};

static struct mq_tensor grid_sample(int opset, const char *mode, const char *padding,
                                    int align_corners, const float *grid)
{
    Onnx__NodeProto *n = oh_node("GridSample", 2, 1);
    if (mode)
        oh_attr_string(n, "mode", mode);
    if (padding)
        oh_attr_string(n, "padding_mode", padding);
    if (align_corners >= 0)
        oh_attr_int(n, "align_corners", align_corners);
    struct mq_tensor in[2] = {oh_f32(4, OH_DIMS(1, 1, 3, 2), gs_x),
                              oh_f32(4, OH_DIMS(1, 2, 4, 2), grid)};
    struct mq_tensor out = {0};
    oh_run_ok(n, opset, in, 2, &out, 1);
    oh_free_all(in, 2);
    oh_node_free(n);
    return out;
}

START_TEST(gridsample_modes_and_align_corners)
{
    struct mq_tensor y = grid_sample(16, NULL, NULL, -1, gs_grid_modes);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4),
                  (float[]){0, 0.5f, 1.7f, 2.5f, 2.5f, 1.7f, 4.5f, 1.25f}, 1e-5f, 1e-4f);
    mq_tensor_free(&y);
    y = grid_sample(16, "bilinear", NULL, 1, gs_grid_modes);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4), (float[]){0, 1.25f, 2, 2.5f, 2.5f, 2, 3.75f, 5},
                  1e-5f, 1e-4f);
    mq_tensor_free(&y);
    y = grid_sample(16, "nearest", NULL, -1, gs_grid_modes);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4), (float[]){0, 0, 2, 2, 2, 2, 5, 0}, 0, 0);
    mq_tensor_free(&y);
    y = grid_sample(16, "bicubic", NULL, -1, gs_grid_modes);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4),
                  (float[]){-0.1406f, 0.3828f, 1.7556f, 2.9688f, 2.9688f, 1.7556f, 5.1445f,
                            1.3906f},
                  1e-4f, 1e-3f);
    mq_tensor_free(&y);
    /* Opset 20 spells the modes linear and cubic. */
    y = grid_sample(20, "cubic", NULL, -1, gs_grid_modes);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4),
                  (float[]){-0.1406f, 0.3828f, 1.7556f, 2.9688f, 2.9688f, 1.7556f, 5.1445f,
                            1.3906f},
                  1e-4f, 1e-3f);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(gridsample_padding_modes)
{
    struct mq_tensor y = grid_sample(16, NULL, "zeros", -1, gs_grid_pad);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4), (float[]){0, 0, 1.7f, 0, 0, 1.7f, 0, 0}, 1e-5f,
                  1e-4f);
    mq_tensor_free(&y);
    y = grid_sample(16, NULL, "border", -1, gs_grid_pad);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4), (float[]){0, 0, 1.7f, 5, 5, 1.7f, 5, 5}, 1e-5f,
                  1e-4f);
    mq_tensor_free(&y);
    y = grid_sample(16, NULL, "reflection", -1, gs_grid_pad);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 4), (float[]){2.5f, 0, 1.7f, 2.5f, 2.5f, 1.7f, 5, 2.5f},
                  1e-5f, 1e-4f);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(gridsample_volumetric_ints_and_errors)
{
    /*
     * 5-D input at opset 20: the centre of a 2x2x2 cube averages its corners; the
     * outer corner (-1, -1, -1) is half a pixel out on every axis: 1/8 of x[0].
     */
    Onnx__NodeProto *n = oh_node("GridSample", 2, 1);
    oh_attr_string(n, "mode", "linear");
    struct mq_tensor in[2] = {oh_f32(5, OH_DIMS(1, 1, 2, 2, 2), (float[]){1, 2, 3, 4, 5, 6, 7, 8}),
                              oh_f32(5, OH_DIMS(1, 1, 1, 2, 3),
                                     (float[]){0, 0, 0, -1, -1, -1})};
    struct mq_tensor out = {0};
    oh_run_ok(n, 20, in, 2, &out, 1);
    oh_assert_f32(&out, 5, OH_DIMS(1, 1, 1, 1, 2), (float[]){4.5f, 0.125f}, 1e-6f, 1e-6f);
    mq_tensor_free(&out);
    oh_free_all(in, 2);
    struct mq_error err;
    struct mq_tensor in16[2] = {oh_f32(4, OH_DIMS(1, 1, 3, 2), gs_x),
                                oh_f32(4, OH_DIMS(1, 2, 4, 2), gs_grid_modes)};
    const char *msg = oh_run_fails(n, 16, in16, 2, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(GridSample)"));
    ck_assert_ptr_nonnull(strstr(msg, "'linear'"));
    oh_free_all(in16, 2);
    oh_node_free(n);

    /* Integer images sample exactly with nearest; grid/X shape mismatches are errors. */
    n = oh_node("GridSample", 2, 1);
    oh_attr_string(n, "mode", "nearest");
    struct mq_tensor ii[2] = {oh_i32(4, OH_DIMS(1, 1, 3, 2), (int32_t[]){0, 10, 20, 30, 40, 50}),
                              oh_f32(4, OH_DIMS(1, 2, 4, 2), gs_grid_modes)};
    oh_run_ok(n, 16, ii, 2, &out, 1);
    ck_assert_int_eq(out.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&out, 4, OH_DIMS(1, 1, 2, 4), (int64_t[]){0, 0, 20, 20, 20, 20, 50, 0});
    mq_tensor_free(&out);
    oh_free_all(ii, 2);
    struct mq_tensor bad[2] = {oh_f32(4, OH_DIMS(1, 1, 3, 2), gs_x),
                               oh_f32(4, OH_DIMS(1, 2, 4, 3), NULL)};
    msg = oh_run_fails(n, 16, bad, 2, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "input 'grid'"));
    oh_free_all(bad, 2);
    oh_node_free(n);
}
END_TEST

/* -------------------------------------------------------------- RoiAlign */

static float ramp[16]; /* value 4y + x on a 4x4 map */

static struct mq_tensor roi_align(int opset, const char *mode, int64_t out_hw, int64_t ratio,
                                  const float *roi)
{
    for (int i = 0; i < 16; i++)
        ramp[i] = (float)i;
    Onnx__NodeProto *n = oh_node("RoiAlign", 3, 1);
    if (mode)
        oh_attr_string(n, "mode", mode);
    oh_attr_int(n, "output_height", out_hw);
    oh_attr_int(n, "output_width", out_hw);
    oh_attr_int(n, "sampling_ratio", ratio);
    struct mq_tensor in[3] = {oh_f32(4, OH_DIMS(1, 1, 4, 4), ramp),
                              oh_f32(2, OH_DIMS(1, 4), roi), oh_i64(1, OH_DIMS(1), (int64_t[]){0})};
    struct mq_tensor out = {0};
    oh_run_ok(n, opset, in, 3, &out, 1);
    oh_free_all(in, 3);
    oh_node_free(n);
    return out;
}

START_TEST(roialign_coordinate_modes_and_pooling)
{
    const float whole[4] = {0, 0, 3, 3};
    /* Opset 10 has no half-pixel shift: one sample at (1.5, 1.5). */
    struct mq_tensor y = roi_align(10, NULL, 1, 1, whole);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 1, 1), (float[]){7.5f}, 1e-6f, 0);
    mq_tensor_free(&y);
    /* Opset 16 defaults to half_pixel: the sample moves to (1, 1). */
    y = roi_align(16, NULL, 1, 1, whole);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 1, 1), (float[]){5}, 1e-6f, 0);
    mq_tensor_free(&y);
    /* Max pools the largest weighted corner: 0.25 * 10. */
    y = roi_align(10, "max", 1, 1, whole);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 1, 1), (float[]){2.5f}, 1e-6f, 0);
    mq_tensor_free(&y);
    /* Adaptive sampling: 2x2 bins of 1.5 pixels get 2x2 samples; y < 0 clamps to 0. */
    y = roi_align(16, "avg", 2, 0, whole);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 2), (float[]){1.5625f, 3, 7.3125f, 8.75f}, 1e-5f, 0);
    mq_tensor_free(&y);
    /* Far outside the map every sample is zero. */
    y = roi_align(16, "avg", 1, 2, (float[]){40, 40, 50, 50});
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 1, 1), (float[]){0}, 0, 0);
    mq_tensor_free(&y);
}
END_TEST

START_TEST(roialign_errors_and_empty)
{
    Onnx__NodeProto *n = oh_node("RoiAlign", 3, 1);
    oh_attr_string(n, "coordinate_transformation_mode", "corner");
    struct mq_error err;
    struct mq_tensor in[3] = {oh_f32(4, OH_DIMS(1, 1, 4, 4), NULL),
                              oh_f32(2, OH_DIMS(1, 4), (float[]){0, 0, 1, 1}),
                              oh_i64(1, OH_DIMS(1), (int64_t[]){0})};
    const char *msg = oh_run_fails(n, 16, in, 3, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "(RoiAlign)"));
    ck_assert_ptr_nonnull(strstr(msg, "corner"));
    oh_free_all(in, 3);
    oh_node_free(n);

    n = oh_node("RoiAlign", 3, 1);
    struct mq_tensor bi[3] = {oh_f32(4, OH_DIMS(1, 1, 4, 4), NULL),
                              oh_f32(2, OH_DIMS(1, 4), (float[]){0, 0, 1, 1}),
                              oh_i64(1, OH_DIMS(1), (int64_t[]){3})};
    msg = oh_run_fails(n, 16, bi, 3, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "batch_indices[0] is 3"));
    oh_free_all(bi, 3);

    struct mq_tensor none[3] = {oh_f32(4, OH_DIMS(1, 2, 4, 4), NULL),
                                oh_f32(2, OH_DIMS(0, 4), NULL), oh_i64(1, OH_DIMS(0), NULL)};
    struct mq_tensor out = {0};
    oh_run_ok(n, 16, none, 3, &out, 1);
    oh_assert_shape(&out, 4, OH_DIMS(0, 2, 1, 1));
    mq_tensor_free(&out);
    oh_free_all(none, 3);
    oh_node_free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_sampling");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, gridsample_modes_and_align_corners);
    tcase_add_test(tc, gridsample_padding_modes);
    tcase_add_test(tc, gridsample_volumetric_ints_and_errors);
    tcase_add_test(tc, roialign_coordinate_modes_and_pooling);
    tcase_add_test(tc, roialign_errors_and_empty);
    return mq_check_run(s, tc);
}
