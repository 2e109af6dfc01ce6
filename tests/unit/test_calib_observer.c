/*
 * Observers: minmax and the histogram, and the ranges percentile, entropy and
 * mse choose from it.  Expected values are worked out by hand in the comments
 * or were computed with numpy (the scripts are quoted where they were).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/histogram.h"
#include "calib/observer.h"
#include "check_main.h"

static struct mq_error err;

/* Field by field: the struct has padding that memcmp would compare. */
static int same_histogram(const struct mq_histogram *a, const struct mq_histogram *b)
{
    return a->exponent == b->exponent && memcmp(a->counts, b->counts, sizeof a->counts) == 0;
}

static int same_minmax(const struct mq_minmax *a, const struct mq_minmax *b)
{
    return memcmp(&a->min, &b->min, sizeof a->min) == 0 &&
           memcmp(&a->max, &b->max, sizeof a->max) == 0 && a->count == b->count &&
           a->nan == b->nan && a->inf == b->inf;
}

static uint32_t lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state;
}

/* Values over many magnitudes, both signs, some exactly on bin edges. */
static void fill_wide(float *x, int n, uint32_t seed)
{
    uint32_t s = seed;
    for (int i = 0; i < n; i++) {
        uint32_t r = lcg(&s);
        float mant = (float)(r >> 8) / (float)(1u << 24);
        int ex = (int)(lcg(&s) % 40) - 30;
        float v = ldexpf(mant, ex);
        if (r & 1)
            v = -v;
        if (i % 17 == 0)
            v = -ldexpf((float)(r % 64), ex); /* an exact multiple of a power of two */
        x[i] = v;
    }
}

START_TEST(minmax_counts_and_excludes_nonfinite)
{
    float x[] = {3.0f, -2.0f, 0.5f, NAN, INFINITY, -INFINITY, -0.0f, NAN};
    struct mq_minmax m;
    mq_minmax_init(&m);
    mq_minmax_add(&m, x, 8);
    ck_assert(m.min == -2.0f);
    ck_assert(m.max == 3.0f);
    ck_assert_uint_eq(m.count, 4);
    ck_assert_uint_eq(m.nan, 2);
    ck_assert_uint_eq(m.inf, 2);
}
END_TEST

/* One value at a time, as the observer is specified. */
static void minmax_by_hand(const float *x, int n, struct mq_minmax *m)
{
    mq_minmax_init(m);
    for (int i = 0; i < n; i++) {
        float v = x[i];
        if (v != v)
            m->nan++;
        else if (isinf(v))
            m->inf++;
        else {
            m->count++;
            v += 0.0f;
            m->min = v < m->min ? v : m->min;
            m->max = v > m->max ? v : m->max;
        }
    }
}

START_TEST(minmax_vector_loops_match_one_value_at_a_time)
{
    /* Lengths around every vector width and unrolled step (4 to 64 floats), with the extreme
       values and one non-finite value at every position class: head, vector body, tail. */
    enum { N = 300 };
    static float x[N];
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int n = 1; n <= N; n += (n < 140 ? 1 : 7)) {
        for (int variant = 0; variant < 8; variant++) {
            fill_wide(x, n, (uint32_t)(n * 31 + variant));
            if (variant == 1)
                x[n - 1] = 1e30f; /* the max last, in the scalar tail */
            if (variant == 2)
                x[(n * 5) / 7] = -1e30f;
            if (variant == 3)
                for (int i = 0; i < n; i++)
                    x[i] = i % 2 ? -0.0f : 0.0f;
            if (variant >= 4)
                x[(n * (variant - 3)) / 5] = bad[variant % 3];
            struct mq_minmax got, want;
            mq_minmax_init(&got);
            mq_minmax_add(&got, x, n);
            minmax_by_hand(x, n, &want);
            ck_assert_msg(same_minmax(&got, &want), "n %d variant %d: [%g, %g] vs [%g, %g]", n,
                          variant, (double)got.min, (double)got.max, (double)want.min,
                          (double)want.max);
        }
    }
}
END_TEST

/* The run form (the equalization's per-channel extremes use it): the same extremes as the
   accumulating form, 0 and nothing written for a run with a non-finite value. */
START_TEST(minmax_finite_run_matches_and_refuses_nonfinite)
{
    enum { N = 300 };
    static float x[N];
    for (int n = 0; n <= N; n += (n < 140 ? 1 : 7)) {
        fill_wide(x, n, (uint32_t)(n * 17 + 3));
        float lo = 7.0f, hi = -7.0f;
        ck_assert_int_eq(mq_minmax_finite(x, n, &lo, &hi), 1);
        struct mq_minmax want;
        minmax_by_hand(x, n, &want);
        ck_assert_msg(lo == want.min && hi == want.max, "n %d: [%g, %g] vs [%g, %g]", n,
                      (double)lo, (double)hi, (double)want.min, (double)want.max);
        if (n == 0)
            ck_assert(lo == INFINITY && hi == -INFINITY);
        for (int at = 0; at < n; at += 1 + n / 5) {
            float keep = x[at];
            x[at] = at % 2 ? NAN : -INFINITY;
            lo = 7.0f, hi = -7.0f;
            ck_assert_int_eq(mq_minmax_finite(x, n, &lo, &hi), 0);
            ck_assert(lo == 7.0f && hi == -7.0f);
            x[at] = keep;
        }
    }
}
END_TEST

START_TEST(minmax_negative_zero_does_not_depend_on_order)
{
    float neg[] = {-0.0f}, pos[] = {0.0f};
    struct mq_minmax a, b;
    mq_minmax_init(&a);
    mq_minmax_init(&b);
    mq_minmax_add(&a, neg, 1);
    mq_minmax_add(&a, pos, 1);
    mq_minmax_add(&b, pos, 1);
    mq_minmax_add(&b, neg, 1);
    ck_assert(same_minmax(&a, &b));
    ck_assert(!signbit(a.min) && !signbit(a.max));
}
END_TEST

START_TEST(minmax_merge_is_order_free)
{
    enum { N = 5000 };
    static float x[N];
    fill_wide(x, N, 7);
    struct mq_minmax whole, parts[4], fwd, rev;
    mq_minmax_init(&whole);
    mq_minmax_add(&whole, x, N);
    for (int p = 0; p < 4; p++) {
        mq_minmax_init(&parts[p]);
        mq_minmax_add(&parts[p], x + p * (N / 4), N / 4);
    }
    mq_minmax_init(&fwd);
    mq_minmax_init(&rev);
    for (int p = 0; p < 4; p++) {
        mq_minmax_merge(&fwd, &parts[p]);
        mq_minmax_merge(&rev, &parts[3 - p]);
    }
    ck_assert(same_minmax(&whole, &fwd));
    ck_assert(same_minmax(&whole, &rev));
}
END_TEST

START_TEST(histogram_exponents)
{
    ck_assert_int_eq(mq_histogram_exponent_for(0.0f), MQ_HISTOGRAM_MIN_EXPONENT);
    ck_assert_int_eq(mq_histogram_exponent_for(1e-40f), MQ_HISTOGRAM_MIN_EXPONENT);
    ck_assert_int_eq(mq_histogram_exponent_for(0.75f), 0);  /* R = 1 > 0.75 */
    ck_assert_int_eq(mq_histogram_exponent_for(1.0f), 1);   /* strictly above: R = 2 */
    ck_assert_int_eq(mq_histogram_exponent_for(3.0f), 2);
    ck_assert_int_eq(mq_histogram_exponent_for(3.4e38f), 128);
}
END_TEST

START_TEST(histogram_bins_by_hand)
{
    /* amax 3 -> R = 4, width 4/1024 = 1/256: bin = floor(x * 256) + 1024. */
    float x[] = {-3.0f, 0.0f, -0.0f, 1.0f / 512, -1.0f / 512, 2.99f, NAN, INFINITY};
    struct mq_histogram h;
    mq_histogram_init(&h);
    mq_histogram_add(&h, x, 8, 3.0f);
    ck_assert_int_eq(h.exponent, 2);
    ck_assert_uint_eq(h.counts[1024 - 768], 1);   /* -3 */
    ck_assert_uint_eq(h.counts[1024], 3);         /* 0, -0, 1/512 (floor(0.5) = 0) */
    ck_assert_uint_eq(h.counts[1023], 1);         /* -1/512: floor(-0.5) = -1 */
    ck_assert_uint_eq(h.counts[1024 + 765], 1);   /* 2.99 * 256 = 765.44 */
    ck_assert_uint_eq(mq_histogram_total(&h), 6); /* NaN and inf skipped */
    ck_assert(mq_histogram_edge(&h, 0) == -4.0);
    ck_assert(mq_histogram_edge(&h, 2048) == 4.0);
    ck_assert(mq_histogram_edge(&h, 1025) == 1.0 / 256);
}
END_TEST

/* Widening in steps, all at once, in any split and order: the same counts, bit for bit. */
START_TEST(histogram_is_order_free)
{
    enum { N = 20000 };
    static float x[N];
    fill_wide(x, N, 99);
    float amax = 0;
    for (int i = 0; i < N; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    static struct mq_histogram whole, stepped, reversed, merged, parts[5];
    mq_histogram_init(&whole);
    mq_histogram_add(&whole, x, N, amax);
    /* Small chunks: the range doubles many times as larger values come. */
    mq_histogram_init(&stepped);
    mq_histogram_init(&reversed);
    for (int c = 0; c < N; c += 100) {
        float a = 0, b = 0;
        for (int i = c; i < c + 100; i++)
            a = fmaxf(a, fabsf(x[i]));
        int r = N - 100 - c;
        for (int i = r; i < r + 100; i++)
            b = fmaxf(b, fabsf(x[i]));
        mq_histogram_add(&stepped, x + c, 100, a);
        mq_histogram_add(&reversed, x + r, 100, b);
    }
    ck_assert(same_histogram(&whole, &stepped));
    ck_assert(same_histogram(&whole, &reversed));
    /* Five observers merged in a scrambled order. */
    for (int p = 0; p < 5; p++) {
        mq_histogram_init(&parts[p]);
        float a = 0;
        for (int i = p; i < N; i += 5)
            a = fmaxf(a, fabsf(x[i]));
        for (int i = p; i < N; i += 5)
            mq_histogram_add(&parts[p], &x[i], 1, a);
    }
    mq_histogram_init(&merged);
    int order[5] = {3, 0, 4, 1, 2};
    for (int p = 0; p < 5; p++)
        mq_histogram_merge(&merged, &parts[order[p]]);
    ck_assert(same_histogram(&whole, &merged));
    ck_assert_uint_eq(mq_histogram_total(&whole), N);
}
END_TEST

START_TEST(histogram_widen_keeps_counts)
{
    struct mq_histogram h;
    mq_histogram_init(&h);
    float x[] = {-0.9f, -0.1f, 0.0f, 0.3f, 0.9f};
    mq_histogram_add(&h, x, 5, 0.9f); /* R = 1 */
    mq_histogram_widen(&h, 40);       /* everything lands in the two centre bins */
    ck_assert_uint_eq(h.counts[1023], 2);
    ck_assert_uint_eq(h.counts[1024], 3);
    ck_assert_uint_eq(mq_histogram_total(&h), 5);
}
END_TEST

START_TEST(percentile_by_hand)
{
    /* 1..1000: R = 1024, width 1, value v in bin 1024 + v, one count each. */
    static float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = (float)(i + 1);
    struct mq_histogram h;
    mq_histogram_init(&h);
    mq_histogram_add(&h, x, 1000, 1000.0f);
    double lo, hi;
    /* 99: each tail loses 0.5% = 5 values: the 5th value's bin starts at 5, the 995th ends at 996. */
    ck_assert_int_eq(mq_histogram_percentile(&h, 99.0, 0, &lo, &hi), 0);
    ck_assert(lo == 5.0);
    ck_assert(hi == 996.0);
    /* 100 keeps everything: [start of 1's bin, end of 1000's bin]. */
    ck_assert_int_eq(mq_histogram_percentile(&h, 100.0, 0, &lo, &hi), 0);
    ck_assert(lo == 1.0);
    ck_assert(hi == 1001.0);
    /* Symmetric 90 of |x|: 900 values, up to the end of 900's bin. */
    ck_assert_int_eq(mq_histogram_percentile(&h, 90.0, 1, &lo, &hi), 0);
    ck_assert(hi == 901.0 && lo == -901.0);
}
END_TEST

/*
 * numpy (see the quoted script): x_i = (((i*7919) % 10007) / 1000 - 3)^3 / 4 in float32,
 * i < 20000; binned by the rule above, percentile cut (100-p)/200 per tail:
 *   99: [-6.5, 84.25]  99.9: [-6.75, 85.875]  99.999: [-6.75, 86.0]   (R = 128)
 *   symmetric 99 of |x|: 82.375;  np.percentile gives -6.418/84.143 (99), |x| 82.342.
 */
START_TEST(percentile_matches_numpy)
{
    enum { N = 20000 };
    static float x[N];
    float amax = 0;
    for (int i = 0; i < N; i++) {
        float v = (float)((i * 7919) % 10007) / 1000.0f - 3.0f;
        v = v * v * v / 4.0f;
        x[i] = v;
        amax = fmaxf(amax, fabsf(v));
    }
    struct mq_histogram h;
    mq_histogram_init(&h);
    mq_histogram_add(&h, x, N, amax);
    ck_assert_int_eq(h.exponent, 7);
    const double p[3] = {99.0, 99.9, 99.999};
    const double want_lo[3] = {-6.5, -6.75, -6.75}, want_hi[3] = {84.25, 85.875, 86.0};
    for (int k = 0; k < 3; k++) {
        double lo, hi;
        ck_assert_int_eq(mq_histogram_percentile(&h, p[k], 0, &lo, &hi), 0);
        ck_assert_msg(lo == want_lo[k] && hi == want_hi[k], "p=%g: [%g, %g]", p[k], lo, hi);
    }
    double lo, hi;
    ck_assert_int_eq(mq_histogram_percentile(&h, 99.0, 1, &lo, &hi), 0);
    ck_assert(hi == 82.375 && lo == -82.375);
    /* The bin edges bracket numpy's interpolated quantiles. */
    ck_assert(-6.5 <= -6.418126 && 84.25 >= 84.143339 && 82.375 >= 82.342040);
}
END_TEST

static void set_counts(struct mq_histogram *h, int exponent)
{
    mq_histogram_init(h);
    h->exponent = exponent;
}

START_TEST(entropy_uniform_keeps_the_data_range)
{
    /*
     * Uniform counts over bins [768, 1280).  At i = 256 the candidate [768, 1281)
     * covers the data; each 128-level group is uniform, so Q equals P and KL is 0.
     * Any smaller i folds data into P's end bins, which Q cannot follow: KL > 0.
     * (numpy reference of onnxruntime's/MXNet's search: (768, 1281).)
     */
    struct mq_histogram h;
    set_counts(&h, 0); /* R = 1, width 1/1024 */
    for (int k = 768; k < 1280; k++)
        h.counts[k] = 1000;
    double lo, hi;
    ck_assert_int_eq(mq_histogram_entropy(&h, &lo, &hi), 0);
    ck_assert(lo == mq_histogram_edge(&h, 768));
    ck_assert(hi == mq_histogram_edge(&h, 1281));
}
END_TEST

START_TEST(entropy_matches_numpy_reference)
{
    /*
     * numpy, the same search (KL of smoothed P and Q over i = 64..1024):
     *   laplace: counts[1024+j] = 2^20 >> (|j|/16) while |j|/16 < 40, plus 3 at bin 2040
     *            -> (741, 1308), runner-up i=284 (KL 0.00384693 vs 0.00384689)
     *   relu:    counts[1024+j] = 2^24 >> (j/8) for 0 <= j < 480, plus 5 at bin 1900
     *            -> (708, 1341), runner-up i=312 (KL 1.88e-8 vs 1.71e-8)
     */
    struct mq_histogram h;
    set_counts(&h, 3);
    for (int k = 0; k < 2048; k++) {
        int j = abs(k - 1024);
        h.counts[k] = j / 16 <= 20 ? (1u << 20) >> (j / 16) : 0; /* 0 from shift 21 on */
    }
    h.counts[2040] = 3;
    double lo, hi;
    ck_assert_int_eq(mq_histogram_entropy(&h, &lo, &hi), 0);
    ck_assert(lo == mq_histogram_edge(&h, 741));
    ck_assert(hi == mq_histogram_edge(&h, 1308));

    set_counts(&h, 3);
    for (int j = 0; j < 1024; j++)
        h.counts[1024 + j] = j / 8 <= 24 ? (1u << 24) >> (j / 8) : 0;
    h.counts[1900] += 5;
    ck_assert_int_eq(mq_histogram_entropy(&h, &lo, &hi), 0);
    ck_assert(lo == mq_histogram_edge(&h, 708));
    ck_assert(hi == mq_histogram_edge(&h, 1341));
}
END_TEST

START_TEST(mse_by_hand)
{
    /*
     * R = 1024, width 1.  1000 values in [0, 1) (centre 0.5), one at 200.5;
     * extremes [0, 200.9].  Range [0, T]: error = (200.5 - T)^2 + 1000 (T/255)^2/12
     * for T < 200.5, minimal at T = 200 (51.51) against 200.9 unclipped (51.78)
     * and 199 (53.0).
     */
    struct mq_histogram h;
    set_counts(&h, 10);
    h.counts[1024] = 1000;
    h.counts[1024 + 200] = 1;
    double lo, hi;
    ck_assert_int_eq(mq_histogram_mse(&h, 0.0, 200.9, 0, &lo, &hi), 0);
    ck_assert(lo == 0.0);
    ck_assert(hi == 200.0);
    /* A lone value carries no clipping gain: the full range wins. */
    set_counts(&h, 10);
    h.counts[1024 + 5] = 10;
    ck_assert_int_eq(mq_histogram_mse(&h, 5.0, 5.5, 0, &lo, &hi), 0);
    ck_assert(lo == 5.0 && hi == 5.5);
}
END_TEST

START_TEST(empty_histogram_has_no_range)
{
    struct mq_histogram h;
    mq_histogram_init(&h);
    double lo, hi;
    ck_assert_int_ne(mq_histogram_percentile(&h, 99.0, 0, &lo, &hi), 0);
    ck_assert_int_ne(mq_histogram_entropy(&h, &lo, &hi), 0);
    ck_assert_int_ne(mq_histogram_mse(&h, 0, 0, 0, &lo, &hi), 0);
}
END_TEST

START_TEST(observer_converts_types)
{
    struct mq_observer o;
    ck_assert_int_eq(mq_observer_init(&o, 1, &err), 0);
    int64_t d = 3;
    struct mq_tensor t;
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_DOUBLE, 1, &d, "t", &err), 0);
    ((double *)t.data)[0] = -1.5;
    ((double *)t.data)[1] = 1e300; /* beyond float: counted as infinite */
    ((double *)t.data)[2] = 2.0;
    ck_assert_int_eq(mq_observer_add(&o, &t, &err), 0);
    mq_tensor_free(&t);
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT16, 1, &d, "h", &err), 0);
    ((uint16_t *)t.data)[0] = mq_float_to_half(4.0f);
    ((uint16_t *)t.data)[1] = 0x7e00; /* NaN */
    ((uint16_t *)t.data)[2] = mq_float_to_half(-0.25f);
    ck_assert_int_eq(mq_observer_add(&o, &t, &err), 0);
    mq_tensor_free(&t);
    ck_assert(o.minmax.min == -1.5f && o.minmax.max == 4.0f);
    ck_assert_uint_eq(o.minmax.count, 4);
    ck_assert_uint_eq(o.minmax.nan, 1);
    ck_assert_uint_eq(o.minmax.inf, 1);
    ck_assert_uint_eq(o.produced, 2);
    ck_assert_uint_eq(mq_histogram_total(o.histogram), 4);
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_INT64, 1, &d, "i", &err), 0);
    ck_assert_int_ne(mq_observer_add(&o, &t, &err), 0);
    mq_tensor_free(&t);
    mq_observer_free(&o);
}
END_TEST

START_TEST(observer_merge_equals_one_observer)
{
    enum { N = 9000 };
    static float x[N];
    fill_wide(x, N, 3);
    int64_t dims[1] = {N / 3};
    struct mq_observer one, a, b, c;
    mq_observer_init(&one, 1, &err);
    mq_observer_init(&a, 1, &err);
    mq_observer_init(&b, 1, &err);
    mq_observer_init(&c, 0, &err);
    struct mq_observer *who[3] = {&a, &b, &a};
    for (int p = 0; p < 3; p++) {
        struct mq_tensor t = {MQ_DTYPE_FLOAT, 1, {0}, N / 3, x + p * (N / 3), 1};
        t.dims[0] = dims[0];
        ck_assert_int_eq(mq_observer_add(&one, &t, &err), 0);
        ck_assert_int_eq(mq_observer_add(who[p], &t, &err), 0);
    }
    ck_assert_int_eq(mq_observer_merge(&c, &b, &err), 0); /* c gains a histogram */
    ck_assert_int_eq(mq_observer_merge(&c, &a, &err), 0);
    ck_assert(same_minmax(&one.minmax, &c.minmax));
    ck_assert_uint_eq(one.produced, c.produced);
    ck_assert(same_histogram(one.histogram, c.histogram));
    mq_observer_free(&one);
    mq_observer_free(&a);
    mq_observer_free(&b);
    mq_observer_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib_observer");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, minmax_counts_and_excludes_nonfinite);
    tcase_add_test(tc, minmax_negative_zero_does_not_depend_on_order);
    tcase_add_test(tc, minmax_merge_is_order_free);
    tcase_add_test(tc, minmax_vector_loops_match_one_value_at_a_time);
    tcase_add_test(tc, minmax_finite_run_matches_and_refuses_nonfinite);
    tcase_add_test(tc, histogram_exponents);
    tcase_add_test(tc, histogram_bins_by_hand);
    tcase_add_test(tc, histogram_is_order_free);
    tcase_add_test(tc, histogram_widen_keeps_counts);
    tcase_add_test(tc, percentile_by_hand);
    tcase_add_test(tc, percentile_matches_numpy);
    tcase_add_test(tc, entropy_uniform_keeps_the_data_range);
    tcase_add_test(tc, entropy_matches_numpy_reference);
    tcase_add_test(tc, mse_by_hand);
    tcase_add_test(tc, empty_histogram_has_no_range);
    tcase_add_test(tc, observer_converts_types);
    tcase_add_test(tc, observer_merge_equals_one_observer);
    return mq_check_run(s, tc);
}
