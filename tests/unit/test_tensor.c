#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "interp/tolerance.h"
#include "core/tensor.h"

START_TEST(alloc_zero_fills_and_counts)
{
    struct mq_tensor t;
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 3, (int64_t[]){2, 3, 4}, "t", &err), 0);
    ck_assert_int_eq(t.count, 24);
    for (int i = 0; i < 24; i++)
        ck_assert(((float *)t.data)[i] == 0.0f);
    ck_assert_uint_ge(mq_memory_in_use(), 96);
    mq_tensor_free(&t);
    ck_assert_ptr_null(t.data);
}
END_TEST

START_TEST(scalar_and_empty)
{
    struct mq_tensor t, e;
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_INT64, 0, NULL, "s", &err), 0);
    ck_assert_int_eq(t.count, 1);
    ck_assert_int_eq(mq_tensor_alloc(&e, MQ_DTYPE_FLOAT, 2, (int64_t[]){0, 5}, "e", &err), 0);
    ck_assert_int_eq(e.count, 0);
    mq_tensor_free(&t);
    mq_tensor_free(&e);
}
END_TEST

START_TEST(alloc_refuses_overflow_and_negative)
{
    struct mq_tensor t;
    struct mq_error err;
    ck_assert_int_ne(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 2, (int64_t[]){INT64_MAX / 2, 4}, "big",
                                     &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "big"));
    ck_assert_int_ne(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 1, (int64_t[]){-1}, "neg", &err), 0);
    ck_assert_int_ne(mq_tensor_alloc(&t, MQ_DTYPE_STRING, 1, (int64_t[]){1}, "str", &err), 0);
    ck_assert_int_eq(mq_dims_count(2, (int64_t[]){1LL << 40, 1LL << 40}), -1);
}
END_TEST

START_TEST(memory_cap_names_the_tensor)
{
    struct mq_tensor t;
    struct mq_error err;
    uint64_t before = mq_memory_in_use();
    mq_memory_set_limit(before + 1000);
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 1, (int64_t[]){1000}, "activation_7",
                                     &err), MQ_ERR_MEMORY);
    ck_assert_ptr_nonnull(strstr(err.message, "activation_7"));
    ck_assert_ptr_nonnull(strstr(err.message, "memory cap"));
    ck_assert_uint_eq(mq_memory_in_use(), before);
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 1, (int64_t[]){100}, "ok", &err), 0);
    mq_tensor_free(&t);
    mq_memory_set_limit(0);
}
END_TEST

START_TEST(half_conversions_round_to_nearest_even)
{
    ck_assert(mq_half_to_float(0x3c00) == 1.0f);
    ck_assert(mq_half_to_float(0xc000) == -2.0f);
    ck_assert(mq_half_to_float(0x7bff) == 65504.0f);
    ck_assert(mq_half_to_float(0x0001) == 5.9604644775390625e-8f);
    ck_assert(isinf(mq_half_to_float(0x7c00)));
    ck_assert(isnan(mq_half_to_float(0x7e00)));
    ck_assert_uint_eq(mq_float_to_half(1.0f), 0x3c00);
    ck_assert_uint_eq(mq_float_to_half(65504.0f), 0x7bff);
    ck_assert_uint_eq(mq_float_to_half(65520.0f), 0x7c00);  /* rounds up to inf */
    ck_assert_uint_eq(mq_float_to_half(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
    ck_assert_uint_eq(mq_float_to_half(1.0f + 3.0f / 2048), 0x3c02);
    ck_assert_uint_eq(mq_float_to_half(5.9604644775390625e-8f), 0x0001);
    ck_assert_uint_eq(mq_float_to_half(-0.0f), 0x8000);
    for (uint32_t h = 0; h < 0x7c00; h++)
        ck_assert_uint_eq(mq_float_to_half(mq_half_to_float((uint16_t)h)), h);
    ck_assert(mq_bfloat16_to_float(mq_float_to_bfloat16(1.5f)) == 1.5f);
}
END_TEST

START_TEST(compare_uses_tolerances_and_nan)
{
    struct mq_tensor a, e;
    struct mq_error err;
    mq_tensor_alloc(&a, MQ_DTYPE_FLOAT, 1, (int64_t[]){3}, "a", &err);
    mq_tensor_alloc(&e, MQ_DTYPE_FLOAT, 1, (int64_t[]){3}, "e", &err);
    float *x = a.data, *y = e.data;
    x[0] = 1.0f; y[0] = 1.0005f;
    x[1] = NAN; y[1] = NAN;
    x[2] = -INFINITY; y[2] = -INFINITY;
    struct mq_compare_result r;
    mq_tensor_compare(&a, &e, MQ_COMPARE_RTOL, MQ_COMPARE_ATOL, &r);
    ck_assert(r.match);
    y[0] = 1.01f;
    mq_tensor_compare(&a, &e, MQ_COMPARE_RTOL, MQ_COMPARE_ATOL, &r);
    ck_assert(!r.match);
    ck_assert_int_eq(r.worst_index, 0);
    y[0] = 1.0f;
    x[1] = 0.0f;
    mq_tensor_compare(&a, &e, MQ_COMPARE_RTOL, MQ_COMPARE_ATOL, &r);
    ck_assert(!r.match);
    mq_tensor_free(&a);
    mq_tensor_free(&e);
}
END_TEST

START_TEST(compare_is_exact_for_integers_and_checks_shape)
{
    struct mq_tensor a, e;
    struct mq_error err;
    mq_tensor_alloc(&a, MQ_DTYPE_INT64, 1, (int64_t[]){2}, "a", &err);
    mq_tensor_alloc(&e, MQ_DTYPE_INT64, 1, (int64_t[]){2}, "e", &err);
    ((int64_t *)a.data)[1] = 1000000;
    ((int64_t *)e.data)[1] = 1000001;
    struct mq_compare_result r;
    mq_tensor_compare(&a, &e, MQ_COMPARE_RTOL, MQ_COMPARE_ATOL, &r);
    ck_assert(!r.match);
    mq_tensor_free(&e);
    mq_tensor_alloc(&e, MQ_DTYPE_INT64, 2, (int64_t[]){1, 2}, "e", &err);
    mq_tensor_compare(&a, &e, MQ_COMPARE_RTOL, MQ_COMPARE_ATOL, &r);
    ck_assert(!r.match);
    ck_assert_ptr_nonnull(strstr(r.reason, "shape"));
    mq_tensor_free(&a);
    mq_tensor_free(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, alloc_zero_fills_and_counts);
    tcase_add_test(tc, scalar_and_empty);
    tcase_add_test(tc, alloc_refuses_overflow_and_negative);
    tcase_add_test(tc, memory_cap_names_the_tensor);
    tcase_add_test(tc, half_conversions_round_to_nearest_even);
    tcase_add_test(tc, compare_uses_tolerances_and_nan);
    tcase_add_test(tc, compare_is_exact_for_integers_and_checks_shape);
    return mq_check_run(s, tc);
}
