#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "util/cpu.h"
#include "op_harness.h"
#include "report/error_sums.h"
#include "report/metrics.h"

static struct mq_tensor vec(int n, const float *v)
{
    return oh_f32(1, OH_DIMS(n), v);
}

START_TEST(sqnr_cosine_and_max_error)
{
    struct mq_error_stats s;
    mq_error_stats_init(&s);
    struct mq_tensor ref = vec(3, (const float[]){1, 2, 3}), test = vec(3, (const float[]){1, 2, 4});
    struct mq_error err;
    ck_assert_int_eq(mq_error_stats_add(&s, &ref, &test, "y", &err), MQ_OK);
    /* signal 14, noise 1 */
    ck_assert_double_eq_tol(mq_error_stats_sqnr_db(&s), 10 * log10(14.0), 1e-12);
    ck_assert_double_eq_tol(mq_error_stats_cosine(&s), 17 / (sqrt(14.0) * sqrt(21.0)), 1e-12);
    ck_assert_double_eq(s.max_abs_error, 1);
    ck_assert_double_eq_tol(mq_error_stats_relative_noise(&s), 1 / 14.0, 1e-15);
    ck_assert_int_eq(s.elements, 3);
    mq_tensor_free(&ref);
    mq_tensor_free(&test);
}
END_TEST

START_TEST(pooled_over_samples_and_worst_sample)
{
    struct mq_error_stats s;
    mq_error_stats_init(&s);
    struct mq_error err;
    struct mq_tensor a1 = vec(2, (const float[]){3, 4}), b1 = vec(2, (const float[]){3, 4});
    struct mq_tensor a2 = vec(2, (const float[]){1, 0}), b2 = vec(2, (const float[]){0, 0});
    ck_assert_int_eq(mq_error_stats_add(&s, &a1, &b1, "y", &err), MQ_OK);
    ck_assert(isinf(s.min_sample_sqnr_db) && s.min_sample_sqnr_db > 0);
    ck_assert_int_eq(mq_error_stats_add(&s, &a2, &b2, "y", &err), MQ_OK);
    /* Pooled: signal 25 + 1, noise 1 -- the same as on the concatenation. */
    ck_assert_double_eq_tol(mq_error_stats_sqnr_db(&s), 10 * log10(26.0), 1e-12);
    ck_assert_double_eq_tol(s.min_sample_sqnr_db, 0.0, 1e-12);
    ck_assert_int_eq(s.samples, 2);
    mq_tensor_free(&a1);
    mq_tensor_free(&b1);
    mq_tensor_free(&a2);
    mq_tensor_free(&b2);
}
END_TEST

START_TEST(sqnr_standard_error_over_samples)
{
    struct mq_error_stats s;
    mq_error_stats_init(&s);
    struct mq_error err;
    /* Two samples of signal 1 with noise 0.01 and 0.03: R = 0.02, residuals -+0.01, so
       var(R) = 2/1 * 2e-4 / 2^2 = 1e-4 and the standard error is 10/ln10 * 0.01/0.02 dB. */
    struct mq_tensor r = vec(1, (const float[]){1}), t1 = vec(1, (const float[]){1.1f}),
                     t2 = vec(1, (const float[]){1.0f + (float)sqrt(0.03)});
    ck_assert_int_eq(mq_error_stats_add(&s, &r, &t1, "y", &err), MQ_OK);
    ck_assert_double_eq(mq_error_stats_sqnr_stderr_db(&s), 0.0);   /* one sample: none */
    ck_assert_int_eq(mq_error_stats_add(&s, &r, &t2, "y", &err), MQ_OK);
    ck_assert_double_eq_tol(mq_error_stats_sqnr_stderr_db(&s), 10.0 / log(10.0) * 0.5, 1e-5);
    /* The same noise on every sample: no spread, no error. */
    struct mq_error_stats e;
    mq_error_stats_init(&e);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mq_error_stats_add(&e, &r, &t1, "y", &err), MQ_OK);
    ck_assert_double_eq_tol(mq_error_stats_sqnr_stderr_db(&e), 0.0, 1e-9);
    mq_tensor_free(&r);
    mq_tensor_free(&t1);
    mq_tensor_free(&t2);
}
END_TEST

START_TEST(exact_zero_and_opposite)
{
    struct mq_error err;
    struct mq_error_stats s;
    struct mq_tensor z = vec(2, (const float[]){0, 0}), one = vec(2, (const float[]){1, 0});
    struct mq_tensor minus = vec(2, (const float[]){-1, 0});
    mq_error_stats_init(&s);
    mq_error_stats_add(&s, &one, &one, "y", &err);
    ck_assert(isinf(mq_error_stats_sqnr_db(&s)) && mq_error_stats_sqnr_db(&s) > 0);
    ck_assert_double_eq(mq_error_stats_cosine(&s), 1);
    mq_error_stats_init(&s);
    mq_error_stats_add(&s, &z, &one, "y", &err);
    ck_assert(isinf(mq_error_stats_sqnr_db(&s)) && mq_error_stats_sqnr_db(&s) < 0);
    ck_assert_double_eq(mq_error_stats_cosine(&s), 0);
    mq_error_stats_init(&s);
    mq_error_stats_add(&s, &z, &z, "y", &err);
    ck_assert_double_eq(mq_error_stats_cosine(&s), 1);
    mq_error_stats_init(&s);
    mq_error_stats_add(&s, &one, &minus, "y", &err);
    ck_assert_double_eq_tol(mq_error_stats_cosine(&s), -1, 1e-15);
    ck_assert_double_eq_tol(mq_error_stats_sqnr_db(&s), 10 * log10(1 / 4.0), 1e-12);
    mq_tensor_free(&z);
    mq_tensor_free(&one);
    mq_tensor_free(&minus);
}
END_TEST

START_TEST(float16_against_float32)
{
    struct mq_error err;
    struct mq_error_stats s;
    mq_error_stats_init(&s);
    struct mq_tensor ref = vec(2, (const float[]){1.0f, 3.0f});
    uint16_t halves[2] = {mq_float_to_half(1.0f), mq_float_to_half(2.0f)};
    struct mq_tensor test = oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(2), halves);
    ck_assert_int_eq(mq_error_stats_add(&s, &ref, &test, "y", &err), MQ_OK);
    ck_assert_double_eq_tol(mq_error_stats_sqnr_db(&s), 10 * log10(10.0), 1e-12);
    mq_tensor_free(&ref);
    mq_tensor_free(&test);
}
END_TEST

START_TEST(nonfinite_values_are_counted_not_summed)
{
    struct mq_error err;
    struct mq_error_stats s;
    mq_error_stats_init(&s);
    struct mq_tensor ref = vec(4, (const float[]){NAN, INFINITY, 2, NAN});
    struct mq_tensor test = vec(4, (const float[]){NAN, INFINITY, 2, 5});
    ck_assert_int_eq(mq_error_stats_add(&s, &ref, &test, "y", &err), MQ_OK);
    ck_assert_int_eq(s.nonfinite_equal, 2);
    ck_assert_int_eq(s.nonfinite_mismatch, 1);
    ck_assert_int_eq(s.elements, 1);
    ck_assert(isinf(mq_error_stats_sqnr_db(&s)));
    mq_tensor_free(&ref);
    mq_tensor_free(&test);
}
END_TEST

START_TEST(shape_mismatch_is_an_error)
{
    struct mq_error err;
    struct mq_error_stats s;
    mq_error_stats_init(&s);
    struct mq_tensor a = vec(2, (const float[]){1, 2}), b = vec(3, (const float[]){1, 2, 3});
    ck_assert_int_eq(mq_error_stats_add(&s, &a, &b, "logits", &err), MQ_ERR);
    ck_assert_str_eq(err.message, "'logits': shapes differ: [2] against [3]");
    ck_assert_int_eq(s.samples, 0);
    mq_tensor_free(&a);
    mq_tensor_free(&b);
}
END_TEST

START_TEST(class_scores_shape)
{
    float v[1] = {0};
    struct mq_tensor t;
    t = oh_f32(2, OH_DIMS(1, 10), NULL);
    ck_assert(mq_looks_like_class_scores(&t));
    mq_tensor_free(&t);
    t = oh_f32(4, OH_DIMS(1, 1000, 1, 1), NULL);
    ck_assert(mq_looks_like_class_scores(&t));
    mq_tensor_free(&t);
    t = oh_f32(4, OH_DIMS(1, 1, 672, 672), NULL);
    ck_assert(!mq_looks_like_class_scores(&t));
    mq_tensor_free(&t);
    t = oh_f32(3, OH_DIMS(1, 4420, 2), NULL);
    ck_assert(!mq_looks_like_class_scores(&t));
    mq_tensor_free(&t);
    t = oh_f32(2, OH_DIMS(1, 1), NULL);
    ck_assert(!mq_looks_like_class_scores(&t));
    mq_tensor_free(&t);
    t = oh_f32(1, OH_DIMS(1), v);
    ck_assert(!mq_looks_like_class_scores(&t));
    mq_tensor_free(&t);
    t = oh_i64(2, OH_DIMS(1, 10), NULL);
    ck_assert(!mq_looks_like_class_scores(&t));
    mq_tensor_free(&t);
}
END_TEST

START_TEST(top1_rows_and_ties)
{
    struct mq_error err;
    struct mq_top1_stats s = {0};
    struct mq_tensor ref = oh_f32(2, OH_DIMS(3, 3), (const float[]){0, 5, 1, 2, 2, 0, 1, 0, 3});
    struct mq_tensor test = oh_f32(2, OH_DIMS(3, 3), (const float[]){0, 4, 1, 2, 1, 2, 3, 0, 1});
    ck_assert_int_eq(mq_top1_add(&s, &ref, &test, "p", &err), MQ_OK);
    /* Row 0 agrees (1, 1); row 1: the tie 2,2 picks 0, test picks 0 (2 then 2): agree; row 2 not. */
    ck_assert_int_eq(s.rows, 3);
    ck_assert_int_eq(s.agree, 2);
    mq_tensor_free(&ref);
    mq_tensor_free(&test);
}
END_TEST

START_TEST(merging_one_sample_stats_in_order_is_bit_exact)
{
    /* Values whose sums round differently depending on the grouping. */
    const float v[4][3] = {{0.1f, 1e7f, 3.3f}, {0.7f, NAN, 2.1f}, {1e-3f, 5.5f, 1e6f},
                           {9.9f, 0.3f, 4.4f}};
    const float w[4][3] = {{0.2f, 1e7f + 1, 3.1f}, {0.6f, NAN, 2.2f}, {2e-3f, 5.0f, 1e6f + 64},
                           {9.8f, 0.1f, 4.7f}};
    struct mq_error_stats whole, merged;
    mq_error_stats_init(&whole);
    mq_error_stats_init(&merged);
    struct mq_error err;
    for (int i = 0; i < 4; i++) {
        struct mq_tensor a = vec(3, v[i]), b = vec(3, w[i]);
        struct mq_error_stats one;
        mq_error_stats_init(&one);
        ck_assert_int_eq(mq_error_stats_add(&whole, &a, &b, "y", &err), MQ_OK);
        ck_assert_int_eq(mq_error_stats_add(&one, &a, &b, "y", &err), MQ_OK);
        mq_error_stats_merge(&merged, &one);
        mq_tensor_free(&a);
        mq_tensor_free(&b);
    }
    struct mq_error_stats none;
    mq_error_stats_init(&none);
    mq_error_stats_merge(&merged, &none);   /* a sample that compared nothing changes nothing */
    ck_assert(memcmp(&whole, &merged, sizeof whole) == 0);
    ck_assert_int_eq(merged.samples, 4);
    ck_assert_int_eq(merged.nonfinite_equal, 1);
}
END_TEST

/* xorshift64: the same tensors on every run and machine. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* A value between 2^-12 and 2^12 in size, of either sign. */
static float random_value(uint64_t *state)
{
    uint64_t r = next_random(state);
    float mantissa = (float)(r & 0xffffff) / (float)0x1000000 + 0.5f;
    return ldexpf((r >> 30) & 1 ? -mantissa : mantissa, (int)((r >> 32) % 25) - 12);
}

/* A reference and a test near it, with NaN and the infinities on one side, the other or both. */
static void random_pair(uint64_t *state, int64_t n, float *ref, float *test)
{
    const float special[4] = {NAN, INFINITY, -INFINITY, 1.0f};
    for (int64_t i = 0; i < n; i++) {
        ref[i] = random_value(state);
        test[i] = ref[i] * (1.0f + random_value(state) * 0x1p-16f);
        uint64_t r = next_random(state);
        if (r % 37 == 0)
            ref[i] = special[(r >> 8) % 4];
        if ((r >> 16) % 41 == 0)
            test[i] = special[(r >> 24) % 4];
        if ((r >> 32) % 53 == 0)
            test[i] = ref[i];
    }
}

static int same_sums(const struct mq_error_sums *a, const struct mq_error_sums *b)
{
    return memcmp(&a->ref2, &b->ref2, sizeof a->ref2) == 0 &&
           memcmp(&a->test2, &b->test2, sizeof a->test2) == 0 &&
           memcmp(&a->dot, &b->dot, sizeof a->dot) == 0 &&
           memcmp(&a->err2, &b->err2, sizeof a->err2) == 0 &&
           memcmp(&a->max_abs_error, &b->max_abs_error, sizeof a->max_abs_error) == 0 &&
           a->elements == b->elements && a->nonfinite_equal == b->nonfinite_equal &&
           a->nonfinite_mismatch == b->nonfinite_mismatch;
}

START_TEST(vector_paths_give_the_scalar_bits)
{
    uint64_t state = 0x9e3779b97f4a7c15u;
    const int64_t lengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 63, 100, 1023, 1025, 4099, 100003};
    float *ref = malloc(100003 * sizeof *ref), *test = malloc(100003 * sizeof *test);
    ck_assert(ref && test);
    int avx2_ran = 0;
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        int64_t n = lengths[k];
        random_pair(&state, n, ref, test);
        struct mq_error_sums scalar, sse2, avx2, any;
        ck_assert_int_eq(mq_error_sums_f32(ref, test, n, MQ_ERROR_SUMS_SCALAR, &scalar),
                         MQ_ERROR_SUMS_SCALAR);
        mq_error_sums_f32(ref, test, n, MQ_ERROR_SUMS_SSE2, &sse2);
        avx2_ran |= mq_error_sums_f32(ref, test, n, MQ_ERROR_SUMS_AVX2, &avx2) ==
                    MQ_ERROR_SUMS_AVX2;
        mq_error_sums_f32(ref, test, n, MQ_ERROR_SUMS_AUTO, &any);
        ck_assert_msg(same_sums(&scalar, &sse2), "n=%lld: SSE2 differs", (long long)n);
        ck_assert_msg(same_sums(&scalar, &avx2), "n=%lld: AVX2 differs", (long long)n);
        ck_assert_msg(same_sums(&scalar, &any), "n=%lld: AUTO differs", (long long)n);
        /* the vector paths start from a different offset: shifted by one, the lanes move */
        if (n > 1) {
            mq_error_sums_f32(ref + 1, test + 1, n - 1, MQ_ERROR_SUMS_SCALAR, &scalar);
            mq_error_sums_f32(ref + 1, test + 1, n - 1, MQ_ERROR_SUMS_AVX2, &avx2);
            ck_assert(same_sums(&scalar, &avx2));
        }
    }
#if defined(__x86_64__)
    if (mq_cpu_level() >= MQ_CPU_AVX2)
        ck_assert(avx2_ran);
#endif
    free(ref);
    free(test);
}
END_TEST

START_TEST(lane_sums_match_a_wide_sum)
{
    uint64_t state = 0x2545f4914f6cdd1du;
    const int64_t lengths[] = {5, 8, 31, 999, 100003};
    float *ref = malloc(100003 * sizeof *ref), *test = malloc(100003 * sizeof *test);
    ck_assert(ref && test);
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        int64_t n = lengths[k];
        random_pair(&state, n, ref, test);
        long double ref2 = 0, test2 = 0, dot = 0, err2 = 0;
        double max_abs = 0;
        int64_t elements = 0, equal = 0, mismatch = 0;
        for (int64_t i = 0; i < n; i++) {
            double r = ref[i], t = test[i];
            if (!isfinite(r) || !isfinite(t)) {
                if ((isnan(r) && isnan(t)) || r == t)
                    equal++;
                else
                    mismatch++;
                continue;
            }
            ref2 += (long double)r * r;
            test2 += (long double)t * t;
            dot += (long double)r * t;
            err2 += (long double)(t - r) * (t - r);
            max_abs = fmax(max_abs, fabs(t - r));
            elements++;
        }
        struct mq_error_sums got;
        mq_error_sums_f32(ref, test, n, MQ_ERROR_SUMS_AUTO, &got);
        ck_assert_int_eq(got.elements, elements);
        ck_assert_int_eq(got.nonfinite_equal, equal);
        ck_assert_int_eq(got.nonfinite_mismatch, mismatch);
        ck_assert(equal > 0 || n < 100);
        ck_assert(mismatch > 0 || n < 100);
        ck_assert_double_eq(got.max_abs_error, max_abs);
        ck_assert_double_eq_tol(got.ref2, (double)ref2, 1e-12 * (double)ref2);
        ck_assert_double_eq_tol(got.test2, (double)test2, 1e-12 * (double)test2);
        ck_assert_double_eq_tol(got.dot, (double)dot, 1e-12 * sqrt((double)(ref2 * test2)));
        ck_assert_double_eq_tol(got.err2, (double)err2, 1e-12 * (double)err2);
        ck_assert(err2 > 0);
    }
    free(ref);
    free(test);
}
END_TEST

START_TEST(float32_stats_agree_with_the_double_reading)
{
    /* float32 pairs take the lane sums, float64 pairs the one-by-one loop: the same figures
       within rounding, the same counts and maximum exactly */
    uint64_t state = 0x853c49e6748fea9bu;
    enum { N = 5001 };
    float *ref = malloc(N * sizeof *ref), *test = malloc(N * sizeof *test);
    double *ref64 = malloc(N * sizeof *ref64), *test64 = malloc(N * sizeof *test64);
    ck_assert(ref && test && ref64 && test64);
    random_pair(&state, N, ref, test);
    for (int i = 0; i < N; i++) {
        ref64[i] = ref[i];
        test64[i] = test[i];
    }
    struct mq_tensor a = vec(N, ref), b = vec(N, test);
    struct mq_tensor a64 = oh_typed(MQ_DTYPE_DOUBLE, 1, OH_DIMS(N), ref64);
    struct mq_tensor b64 = oh_typed(MQ_DTYPE_DOUBLE, 1, OH_DIMS(N), test64);
    struct mq_error_stats s, s64;
    mq_error_stats_init(&s);
    mq_error_stats_init(&s64);
    struct mq_error err;
    for (int sample = 0; sample < 2; sample++) {
        ck_assert_int_eq(mq_error_stats_add(&s, &a, &b, "y", &err), MQ_OK);
        ck_assert_int_eq(mq_error_stats_add(&s64, &a64, &b64, "y", &err), MQ_OK);
    }
    ck_assert_int_eq(s.elements, s64.elements);
    ck_assert_int_eq(s.nonfinite_equal, s64.nonfinite_equal);
    ck_assert_int_eq(s.nonfinite_mismatch, s64.nonfinite_mismatch);
    ck_assert_int_eq(s.samples, 2);
    ck_assert_double_eq(s.max_abs_error, s64.max_abs_error);
    ck_assert_double_eq_tol(s.sum_ref2, s64.sum_ref2, 1e-12 * s64.sum_ref2);
    ck_assert_double_eq_tol(s.sum_err2, s64.sum_err2, 1e-12 * s64.sum_err2);
    ck_assert_double_eq_tol(s.sum_dot, s64.sum_dot, 1e-12 * s64.sum_ref2);
    ck_assert_double_eq_tol(s.sum_sample_re, s64.sum_sample_re, 1e-11 * s64.sum_sample_re);
    ck_assert_double_eq_tol(s.min_sample_sqnr_db, s64.min_sample_sqnr_db, 1e-9);
    ck_assert(isfinite(s.min_sample_sqnr_db));
    mq_tensor_free(&a);
    mq_tensor_free(&b);
    mq_tensor_free(&a64);
    mq_tensor_free(&b64);
    free(ref);
    free(test);
    free(ref64);
    free(test64);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sqnr_cosine_and_max_error);
    tcase_add_test(tc, pooled_over_samples_and_worst_sample);
    tcase_add_test(tc, exact_zero_and_opposite);
    tcase_add_test(tc, sqnr_standard_error_over_samples);
    tcase_add_test(tc, float16_against_float32);
    tcase_add_test(tc, nonfinite_values_are_counted_not_summed);
    tcase_add_test(tc, shape_mismatch_is_an_error);
    tcase_add_test(tc, class_scores_shape);
    tcase_add_test(tc, top1_rows_and_ties);
    tcase_add_test(tc, merging_one_sample_stats_in_order_is_bit_exact);
    tcase_add_test(tc, vector_paths_give_the_scalar_bits);
    tcase_add_test(tc, lane_sums_match_a_wide_sum);
    tcase_add_test(tc, float32_stats_agree_with_the_double_reading);
    return mq_check_run(s, tc);
}
