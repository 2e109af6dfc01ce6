/*
 * Scale and zero point arithmetic against values worked out by hand from
 * the formulas in quant/params.h (the comments show the working).
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/tensor.h"
#include "quant/params.h"

static struct mq_qparams compute(float lo, float hi, int dtype, int symmetric, int reduce)
{
    struct mq_qparams p = {0, 0};
    struct mq_error err;
    ck_assert_int_eq(mq_qparams_compute(lo, hi, mq_qrange_for(dtype, symmetric, reduce),
                                        symmetric, &p, &err),
                     MQ_OK);
    return p;
}

START_TEST(test_ranges_table)
{
    static const struct {
        int dtype, sym, reduce, qmin, qmax;
    } rows[] = {
        {MQ_DTYPE_UINT8, 0, 0, 0, 255},          {MQ_DTYPE_UINT8, 1, 0, 0, 254},
        {MQ_DTYPE_UINT8, 0, 1, 0, 127},          {MQ_DTYPE_INT8, 0, 0, -128, 127},
        {MQ_DTYPE_INT8, 1, 0, -127, 127},        {MQ_DTYPE_INT8, 1, 1, -64, 64},
        {MQ_DTYPE_UINT16, 0, 0, 0, 65535},       {MQ_DTYPE_UINT16, 1, 0, 0, 65534},
        {MQ_DTYPE_UINT16, 0, 1, 0, 32767},       {MQ_DTYPE_INT16, 0, 0, -32768, 32767},
        {MQ_DTYPE_INT16, 1, 0, -32767, 32767},   {MQ_DTYPE_INT16, 0, 1, -16384, 16384},
        {MQ_DTYPE_INT4, 0, 0, -8, 7},            {MQ_DTYPE_INT4, 1, 0, -8, 7},
        {MQ_DTYPE_INT4, 1, 1, -4, 3},            {MQ_DTYPE_UINT4, 0, 0, 0, 15},
        {MQ_DTYPE_UINT4, 1, 0, 0, 15},           {MQ_DTYPE_UINT4, 0, 1, 0, 7},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct mq_qrange r = mq_qrange_for(rows[i].dtype, rows[i].sym, rows[i].reduce);
        ck_assert_msg(r.qmin == rows[i].qmin && r.qmax == rows[i].qmax,
                      "row %zu: got [%d, %d]", i, (int)r.qmin, (int)r.qmax);
    }
    struct mq_qrange full = mq_qrange_full(MQ_DTYPE_INT8);
    ck_assert_int_eq(full.qmin, -128);
    ck_assert_int_eq(full.qmax, 127);
}
END_TEST

START_TEST(test_uint8_asymmetric)
{
    /* [-1, 3]: width 4, scale 4/255; zero point rint(0 - (-1)/(4/255)) = rint(63.75) = 64. */
    struct mq_qparams p = compute(-1.0f, 3.0f, MQ_DTYPE_UINT8, 0, 0);
    ck_assert(p.scale == (float)(4.0 / 255.0));
    ck_assert_int_eq(p.zero_point, 64);
    /* [2, 4] widens to [0, 4]: zero point 0.  [-4, -2] widens to [-4, 0]: 255. */
    p = compute(2.0f, 4.0f, MQ_DTYPE_UINT8, 0, 0);
    ck_assert(p.scale == (float)(4.0 / 255.0));
    ck_assert_int_eq(p.zero_point, 0);
    p = compute(-4.0f, -2.0f, MQ_DTYPE_UINT8, 0, 0);
    ck_assert_int_eq(p.zero_point, 255);
    /* [-0.3, 0.7]: scale 1/255, 0.3 * 255 = 76.5 -> the double is 76.50000000000001 -> 77. */
    p = compute(-0.3f, 0.7f, MQ_DTYPE_UINT8, 0, 0);
    ck_assert_int_eq(p.zero_point, 77);
    /* [-1, 1]: 1 / (2/255) = 127.5 exactly in double: half to even gives 128. */
    p = compute(-1.0f, 1.0f, MQ_DTYPE_UINT8, 0, 0);
    ck_assert(p.scale == (float)(2.0 / 255.0));
    ck_assert_int_eq(p.zero_point, 128);
}
END_TEST

START_TEST(test_uint8_symmetric_zero_point_127)
{
    /* [-1, 3] -> [-3, 3]: scale 6/254; zero point rint((0 + 254) / 2) = 127. */
    struct mq_qparams p = compute(-1.0f, 3.0f, MQ_DTYPE_UINT8, 1, 0);
    ck_assert(p.scale == (float)(6.0 / 254.0));
    ck_assert_int_eq(p.zero_point, 127);
    /* uint4 symmetric keeps 0..15: rint(7.5) = 8 (half to even). */
    p = compute(-1.0f, 3.0f, MQ_DTYPE_UINT4, 1, 0);
    ck_assert(p.scale == (float)(6.0 / 15.0));
    ck_assert_int_eq(p.zero_point, 8);
}
END_TEST

START_TEST(test_int8)
{
    /* Symmetric [-2, 1] -> [-2, 2]: scale 4/254, zero point 0. */
    struct mq_qparams p = compute(-2.0f, 1.0f, MQ_DTYPE_INT8, 1, 0);
    ck_assert(p.scale == (float)(4.0 / 254.0));
    ck_assert_int_eq(p.zero_point, 0);
    /* Asymmetric [-1, 3]: scale 4/255, zero point rint(-128 + 63.75) = -64. */
    p = compute(-1.0f, 3.0f, MQ_DTYPE_INT8, 0, 0);
    ck_assert(p.scale == (float)(4.0 / 255.0));
    ck_assert_int_eq(p.zero_point, -64);
    /* int16 symmetric: scale 6/65534. */
    p = compute(-1.0f, 3.0f, MQ_DTYPE_INT16, 1, 0);
    ck_assert(p.scale == (float)(6.0 / 65534.0));
    ck_assert_int_eq(p.zero_point, 0);
    /* uint16 asymmetric: 1 / (4/65535) = 16383.75 -> 16384. */
    p = compute(-1.0f, 3.0f, MQ_DTYPE_UINT16, 0, 0);
    ck_assert_int_eq(p.zero_point, 16384);
}
END_TEST

START_TEST(test_reduce_range)
{
    /* int8 reduce-range [-64, 64]: [-2, 1] -> 4/128 = 0.03125 exactly. */
    struct mq_qparams p = compute(-2.0f, 1.0f, MQ_DTYPE_INT8, 1, 1);
    ck_assert(p.scale == 0.03125f);
    ck_assert_int_eq(p.zero_point, 0);
    /* uint8 reduce-range [0, 127]: [0, 2.54] -> (double)2.54f / 127. */
    p = compute(0.0f, 2.54f, MQ_DTYPE_UINT8, 0, 1);
    ck_assert(p.scale == (float)((double)2.54f / 127.0));
    ck_assert_int_eq(p.zero_point, 0);
}
END_TEST

START_TEST(test_tiny_scale)
{
    /* A range narrower than FLT_MIN * (qmax - qmin) gives scale 1 and zero point 0. */
    struct mq_qparams p = compute(0.0f, 0.0f, MQ_DTYPE_UINT8, 0, 0);
    ck_assert(p.scale == 1.0f);
    ck_assert_int_eq(p.zero_point, 0);
    p = compute(-1e-38f, 1e-38f, MQ_DTYPE_INT8, 1, 0); /* 2e-38 / 254 < FLT_MIN */
    ck_assert(p.scale == 1.0f);
    ck_assert_int_eq(p.zero_point, 0);
    p = compute(5.0f, 5.0f, MQ_DTYPE_UINT8, 0, 0); /* widened to [0, 5]: not tiny */
    ck_assert(p.scale == (float)(5.0 / 255.0));
}
END_TEST

START_TEST(test_bad_ranges)
{
    struct mq_qparams p;
    struct mq_error err;
    struct mq_qrange r = mq_qrange_for(MQ_DTYPE_UINT8, 0, 0);
    ck_assert_int_eq(mq_qparams_compute(NAN, 1.0f, r, 0, &p, &err), MQ_ERR);
    ck_assert_int_eq(mq_qparams_compute(0.0f, INFINITY, r, 0, &p, &err), MQ_ERR);
    ck_assert_int_eq(mq_qparams_compute(2.0f, 1.0f, r, 0, &p, &err), MQ_ERR);
    /* The width overflows a float. */
    ck_assert_int_eq(mq_qparams_compute(-3e38f, 3e38f, r, 0, &p, &err), MQ_ERR);
    ck_assert_ptr_nonnull(strstr(err.message, "wider"));
}
END_TEST

START_TEST(test_quantize_values)
{
    struct mq_qrange u8 = mq_qrange_full(MQ_DTYPE_UINT8), i8 = mq_qrange_full(MQ_DTYPE_INT8);
    struct mq_qparams unit = {1.0f, 0};
    /* Half to even. */
    ck_assert_int_eq(mq_quantize_value(0.5f, unit, i8), 0);
    ck_assert_int_eq(mq_quantize_value(1.5f, unit, i8), 2);
    ck_assert_int_eq(mq_quantize_value(2.5f, unit, i8), 2);
    ck_assert_int_eq(mq_quantize_value(-2.5f, unit, i8), -2);
    /* Clamped to the full range, not the symmetric one. */
    ck_assert_int_eq(mq_quantize_value(1000.0f, unit, i8), 127);
    ck_assert_int_eq(mq_quantize_value(-1000.0f, unit, i8), -128);
    ck_assert_int_eq(mq_quantize_value(-5.0f, unit, u8), 0);
    /* The zero point is added after rounding: 0.3/0.1 in float is 2.9999998 -> 3, + 64. */
    struct mq_qparams p = {0.1f, 64};
    ck_assert_int_eq(mq_quantize_value(0.3f, p, u8), 67);
    ck_assert(mq_dequantize_value(67, p) == 3.0f * 0.1f);
    /* NaN lands on the zero point. */
    ck_assert_int_eq(mq_quantize_value(NAN, p, u8), 64);
}
END_TEST

START_TEST(test_bias)
{
    ck_assert_int_eq(mq_quantize_bias(2.5f, 1.0f), 2);
    ck_assert_int_eq(mq_quantize_bias(-7.0f, 0.5f), -14);
    ck_assert_int_eq(mq_quantize_bias(1.0f, 1e-12f), INT32_MAX);
    ck_assert_int_eq(mq_quantize_bias(-1.0f, 1e-12f), INT32_MIN);
    /* 2 * absmax / (2^32 - 2), with onnxruntime's 1.0001 margin. */
    ck_assert(fabs(mq_bias_min_scale(1.0f) - 1.0001 * 2.0 / 4294967294.0) < 1e-20);
}
END_TEST

START_TEST(test_type_names)
{
    int t;
    ck_assert_int_eq(mq_qtype_parse("uint8", &t), 0);
    ck_assert_int_eq(t, MQ_DTYPE_UINT8);
    ck_assert_int_eq(mq_qtype_parse("int4", &t), 0);
    ck_assert_int_eq(t, MQ_DTYPE_INT4);
    ck_assert_int_eq(mq_qtype_parse("float32", &t), -1);
    ck_assert_str_eq(mq_qtype_name(MQ_DTYPE_INT16), "int16");
    ck_assert_ptr_null(mq_qtype_name(MQ_DTYPE_FLOAT));
    ck_assert_int_eq(mq_qtype_bits(MQ_DTYPE_UINT4), 4);
    ck_assert(mq_qtype_signed(MQ_DTYPE_INT8) && !mq_qtype_signed(MQ_DTYPE_UINT16));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_params");
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, test_ranges_table);
    tcase_add_test(tc, test_uint8_asymmetric);
    tcase_add_test(tc, test_uint8_symmetric_zero_point_127);
    tcase_add_test(tc, test_int8);
    tcase_add_test(tc, test_reduce_range);
    tcase_add_test(tc, test_tiny_scale);
    tcase_add_test(tc, test_bad_ranges);
    tcase_add_test(tc, test_quantize_values);
    tcase_add_test(tc, test_bias);
    tcase_add_test(tc, test_type_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
