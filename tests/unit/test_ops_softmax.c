/* Softmax, LogSoftmax and Hardmax (src/interp/ops/softmax.c). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

/* [2,3,4]: 0.1 * arange, second block scaled by -3 (expected values from numpy). */
static struct mq_tensor sample(void)
{
    float v[24];
    for (int i = 0; i < 24; i++)
        v[i] = 0.1f * (float)i * (i >= 12 ? -3.0f : 1.0f);
    return oh_f32(3, OH_DIMS(2, 3, 4), v);
}

static const float along_last[24] = {
    0.2138382f, 0.2363278f, 0.2611826f, 0.2886514f, 0.2138382f, 0.2363278f,
    0.2611826f, 0.2886514f, 0.2138382f, 0.2363278f, 0.2611826f, 0.2886514f,
    0.3708924f, 0.2747639f, 0.2035501f, 0.1507936f, 0.3708924f, 0.2747639f,
    0.2035501f, 0.1507936f, 0.3708924f, 0.2747639f, 0.2035501f, 0.1507936f};

static struct mq_tensor run_softmax(const char *op, int opset, int has_axis, int64_t axis,
                                    struct mq_tensor in)
{
    Onnx__NodeProto *n = oh_node(op, 1, 1);
    if (has_axis)
        oh_attr_int(n, "axis", axis);
    struct mq_error err = {{0}};
    struct mq_tensor out = {0};
    int rc = oh_run(n, opset, &in, 1, &out, 1, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    mq_tensor_free(&in);
    oh_node_free(n);
    return out;
}

START_TEST(softmax_single_axis)
{
    struct mq_tensor o = run_softmax("Softmax", 13, 0, 0, sample());
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 4), along_last, 1e-6f, 1e-5f);
    mq_tensor_free(&o);

    /* axis 1 (also written -2): a strided axis */
    const float along_1[24] = {
        0.2119827f, 0.2119827f, 0.2119827f, 0.2119827f, 0.3162411f, 0.3162411f,
        0.3162411f, 0.3162411f, 0.4717762f, 0.4717762f, 0.4717762f, 0.4717762f,
        0.7184361f, 0.7184361f, 0.7184361f, 0.7184361f, 0.2163888f, 0.2163888f,
        0.2163888f, 0.2163888f, 0.06517506f, 0.06517506f, 0.06517506f, 0.06517506f};
    o = run_softmax("Softmax", 13, 1, 1, sample());
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 4), along_1, 1e-6f, 1e-5f);
    mq_tensor_free(&o);
    o = run_softmax("Softmax", 13, 1, -2, sample());
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 4), along_1, 1e-6f, 1e-5f);
    mq_tensor_free(&o);
}
END_TEST

START_TEST(softmax_legacy_coerces_to_2d)
{
    /* default axis 1: the whole [3,4] block of each batch entry */
    const float flat_12[24] = {
        0.04533001f, 0.05009741f, 0.0553662f, 0.06118911f, 0.06762443f, 0.07473655f,
        0.08259666f, 0.09128343f, 0.1008838f, 0.1114938f, 0.1232197f, 0.1361789f,
        0.2664625f, 0.1974003f, 0.1462377f, 0.1083356f, 0.08025697f, 0.05945583f,
        0.04404596f, 0.03263005f, 0.02417294f, 0.01790775f, 0.01326639f, 0.009827982f};
    struct mq_tensor o = run_softmax("Softmax", 11, 0, 0, sample());
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 4), flat_12, 1e-6f, 1e-5f);
    mq_tensor_free(&o);
    o = run_softmax("Softmax", 1, 1, -2, sample());
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 4), flat_12, 1e-6f, 1e-5f);
    mq_tensor_free(&o);
    /* axis 2 of a 3-D input coerces to [6,4]: the same as the last axis */
    o = run_softmax("Softmax", 11, 1, 2, sample());
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 4), along_last, 1e-6f, 1e-5f);
    mq_tensor_free(&o);
}
END_TEST

START_TEST(log_softmax_and_hardmax)
{
    const float log_axis0[24] = {
        -0.02695709f, -0.01814993f, -0.01220258f, -0.008196067f, -0.005501404f,
        -0.003691043f, -0.002475685f, -0.001660178f, -0.001113155f, -0.0007463073f,
        -0.0005003262f, -0.0003354064f, -3.626957f, -4.01815f, -4.412203f, -4.808196f,
        -5.205501f, -5.603691f, -6.002476f, -6.40166f, -6.801113f, -7.200746f, -7.6005f,
        -8.000335f};
    struct mq_tensor o = run_softmax("LogSoftmax", 13, 1, 0, sample());
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 4), log_axis0, 1e-6f, 1e-5f);
    mq_tensor_free(&o);

    /* ties go to the first maximum */
    o = run_softmax("Hardmax", 13, 0, 0,
                    oh_f32(2, OH_DIMS(2, 3), (float[]){1, 3, 3, -1, -5, -2}));
    oh_assert_f32(&o, 2, OH_DIMS(2, 3), (float[]){0, 1, 0, 1, 0, 0}, 0, 0);
    mq_tensor_free(&o);
    /* legacy axis 0: one row for the whole tensor */
    o = run_softmax("Hardmax", 11, 1, 0,
                    oh_f32(2, OH_DIMS(2, 3), (float[]){1, 3, 3, -1, 5, -2}));
    oh_assert_f32(&o, 2, OH_DIMS(2, 3), (float[]){0, 0, 0, 0, 1, 0}, 0, 0);
    mq_tensor_free(&o);
}
END_TEST

START_TEST(large_logits_and_other_types)
{
    struct mq_tensor o = run_softmax("Softmax", 13, 0, 0,
                                     oh_f32(1, OH_DIMS(3), (float[]){1000, 1000, -1000}));
    oh_assert_f32(&o, 1, OH_DIMS(3), (float[]){0.5f, 0.5f, 0}, 1e-7f, 0);
    mq_tensor_free(&o);

    uint16_t h[4];
    const float hv[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++)
        h[i] = mq_float_to_half(hv[i]);
    o = run_softmax("LogSoftmax", 13, 0, 0, oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(4), h));
    ck_assert_int_eq(o.dtype, MQ_DTYPE_FLOAT16);
    const float expected[4] = {-3.4401897f, -2.4401897f, -1.4401897f, -0.44018970f};
    for (int i = 0; i < 4; i++)
        ck_assert(fabsf(mq_half_to_float(((uint16_t *)o.data)[i]) - expected[i]) < 2e-3f);
    mq_tensor_free(&o);

    o = run_softmax("Softmax", 13, 0, 0,
                    oh_typed(MQ_DTYPE_DOUBLE, 1, OH_DIMS(2), (double[]){0, log(3.0)}));
    ck_assert(fabs(((double *)o.data)[0] - 0.25) < 1e-15);
    ck_assert(fabs(((double *)o.data)[1] - 0.75) < 1e-15);
    mq_tensor_free(&o);

    o = run_softmax("Softmax", 13, 1, 1, oh_f32(2, OH_DIMS(2, 0), NULL));
    oh_assert_shape(&o, 2, OH_DIMS(2, 0));
    mq_tensor_free(&o);
}
END_TEST

START_TEST(bad_axis_and_type)
{
    struct mq_error err;
    struct mq_tensor in = sample(), out = {0};
    Onnx__NodeProto *n = oh_node("Softmax", 1, 1);
    oh_attr_int(n, "axis", 3);
    ck_assert_int_ne(oh_run(n, 13, &in, 1, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "node_under_test"));
    /* before opset 13 axis == rank is accepted (the default 1 on 1-D inputs): rows of one */
    ck_assert_int_eq(oh_run(n, 11, &in, 1, &out, 1, &err), 0);
    float ones[24];
    for (int i = 0; i < 24; i++)
        ones[i] = 1.0f;
    oh_assert_f32(&out, 3, OH_DIMS(2, 3, 4), ones, 0, 0);
    mq_tensor_free(&out);
    oh_node_free(n);
    n = oh_node("Softmax", 1, 1);
    oh_attr_int(n, "axis", -4);
    ck_assert_int_ne(oh_run(n, 11, &in, 1, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "axis"));
    oh_node_free(n);
    mq_tensor_free(&in);

    in = oh_i64(1, OH_DIMS(2), (int64_t[]){1, 2});
    n = oh_node("Softmax", 1, 1);
    ck_assert_int_ne(oh_run(n, 13, &in, 1, &out, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "int64"));
    oh_node_free(n);
    mq_tensor_free(&in);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_softmax");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, softmax_single_axis);
    tcase_add_test(tc, softmax_legacy_coerces_to_2d);
    tcase_add_test(tc, log_softmax_and_hardmax);
    tcase_add_test(tc, large_logits_and_other_types);
    tcase_add_test(tc, bad_axis_and_type);
    return mq_check_run(s, tc);
}
