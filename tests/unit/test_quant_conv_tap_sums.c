/*
 * The tap sums behind bias correction's Conv input means (quant/conv_tap_sums.c) on their own:
 * against one output position at a time over random geometries (1-D to 3-D, strides,
 * dilations, pads, kernels wider than the input, values that are not finite), and bit for bit
 * on a wide plane, whichever vector path runs.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "quant/conv_tap_sums.h"

/* The tap sums on their own, against one output position at a time: random planes (with
   values that are not finite) and geometries (1-D to 3-D, strides 1 to 3 and one beyond the
   class totals, dilations, pads, kernels wider than the input). */
static uint32_t rand_state = 12345u;
static uint32_t next_rand(void)
{
    rand_state = rand_state * 1664525u + 1013904223u;
    return rand_state >> 8;
}
static int64_t rand_in(int64_t lo, int64_t hi) { return lo + (int64_t)(next_rand() % (uint32_t)(hi - lo + 1)); }

static void tap_sums_by_hand(const struct mq_quant_tap_geometry *g, const float *x, int64_t taps,
                             double *want, double *magnitude)
{
    int k = g->spatial;
    int64_t positions = 1;
    for (int d = 0; d < k; d++)
        positions *= g->out[d];
    for (int64_t t = 0; t < taps; t++) {
        int64_t tap[3], rest = t;
        for (int d = k - 1; d >= 0; d--) {
            tap[d] = rest % g->kernel[d];
            rest /= g->kernel[d];
        }
        double sum = 0.0, mag = 0.0;
        for (int64_t p = 0; p < positions; p++) {
            int64_t pos[3], idx = 0, ok = 1;
            rest = p;
            for (int d = k - 1; d >= 0; d--) {
                pos[d] = rest % g->out[d];
                rest /= g->out[d];
            }
            for (int d = 0; d < k; d++) {
                int64_t j = pos[d] * g->stride[d] + tap[d] * g->dilation[d] - g->pad[d];
                ok = ok && j >= 0 && j < g->in[d];
                idx = idx * g->in[d] + j;
            }
            if (ok && isfinite(x[idx])) {
                sum += x[idx];
                mag += fabs(x[idx]);
            }
        }
        want[t] = sum;
        magnitude[t] = mag;
    }
}

/* A 1x1 tap reads every row: its sum is each column's rows added in order, then the columns
   in four running sums, exactly (the same doubles on every vector path, whatever the width:
   75 columns take the 32-, 16- and 8-column blocks and the last few alone). */
START_TEST(test_tap_sums_are_the_same_doubles_for_wide_rows)
{
    enum { H = 5, W = 75 };
    struct mq_quant_tap_geometry g = {.spatial = 2, .in = {H, W}, .out = {H, W},
                                      .kernel = {1, 1}, .stride = {1, 1}, .dilation = {1, 1}};
    static float x[H * W];
    for (int i = 0; i < H * W; i++)
        x[i] = ((float)(next_rand() % 20001) - 10000.0f) / 997.0f * (i % 7 ? 1.0f : 1e7f);
    double columns[W] = {0}, s[4] = {0};
    for (int j = 0; j < W; j++)
        for (int i = 0; i < H; i++)
            columns[j] += (double)x[i * W + j];
    int j = 0;
    for (; j + 4 <= W; j += 4)
        for (int k = 0; k < 4; k++)
            s[k] += columns[j + k];
    for (; j < W; j++)
        s[0] += columns[j];
    double want = (s[0] + s[1]) + (s[2] + s[3]), got = 0.0;
    int64_t need = mq_quant_conv_tap_scratch(&g, INT64_MAX);
    double *scratch = malloc((size_t)need * sizeof *scratch);
    ck_assert_int_eq(mq_quant_conv_tap_sums(&g, x, 1, scratch, &got), 0);
    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%.17g vs %.17g", got, want);
    free(scratch);
}
END_TEST

START_TEST(test_tap_sums_match_one_position_at_a_time)
{
    int cases = 0, subtracted = 0;
    for (int c = 0; c < 400; c++) {
        struct mq_quant_tap_geometry g = {.spatial = (int)rand_in(1, 3)};
        int64_t size = 1, taps = 1;
        int ok = 1;
        for (int d = 0; d < g.spatial; d++) {
            g.in[d] = rand_in(1, g.spatial == 3 ? 7 : 19);
            g.kernel[d] = rand_in(1, 6);
            g.stride[d] = c % 50 == 0 ? 17 : rand_in(1, 3);
            g.dilation[d] = rand_in(1, 2);
            g.pad[d] = rand_in(0, 4);
            int64_t span = g.dilation[d] * (g.kernel[d] - 1) + 1;
            int64_t room = g.in[d] + g.pad[d] + rand_in(0, 4) - span;
            ok = ok && room >= 0;
            g.out[d] = room >= 0 ? room / g.stride[d] + 1 : 0;
            size *= g.in[d];
            taps *= g.kernel[d];
            /* taps sharing a class total and skipping a few rows: the subtracting path */
            subtracted += g.stride[d] == 1 && g.kernel[d] >= 3 && g.in[d] > 4;
        }
        if (!ok)
            continue;
        cases++;
        /* two planes at a time, each its own sums */
        float *x = malloc((size_t)(2 * size) * sizeof *x);
        for (int64_t i = 0; i < 2 * size; i++)
            x[i] = ((float)(next_rand() % 20001) - 10000.0f) / 997.0f;
        if (c % 3 == 0)
            x[next_rand() % (2 * size)] = c % 2 ? NAN : -INFINITY;
        int64_t need = mq_quant_conv_tap_scratch(&g, INT64_MAX);
        ck_assert_int_gt(need, 0);
        double *scratch = malloc((size_t)need * sizeof *scratch);
        double *got = malloc((size_t)(2 * taps) * sizeof *got);
        double *want = malloc((size_t)taps * 2 * sizeof *want);
        for (int64_t t = 0; t < 2 * taps; t++)
            got[t] = 1.0; /* added to */
        ck_assert_int_eq(mq_quant_conv_tap_sums(&g, x, 2, scratch, got), 0);
        for (int p = 0; p < 2; p++) {
            tap_sums_by_hand(&g, x + p * size, taps, want, want + taps);
            for (int64_t t = 0; t < taps; t++) {
                double tol = 1e-12 * (want[taps + t] + 1.0), sum = got[p * taps + t] - 1.0;
                ck_assert_msg(fabs(sum - want[t]) <= tol,
                              "case %d (rank %d, in %lld kernel %lld stride %lld) plane %d tap %lld: "
                              "%.17g vs %.17g",
                              c, g.spatial, (long long)g.in[0], (long long)g.kernel[0],
                              (long long)g.stride[0], p, (long long)t, sum, want[t]);
                if (want[taps + t] == 0.0) /* reads nothing: exactly nothing added */
                    ck_assert(got[p * taps + t] == 1.0);
            }
        }
        free(x);
        free(scratch);
        free(got);
        free(want);
    }
    ck_assert_int_gt(cases, 200);
    ck_assert_int_gt(subtracted, 50);
    /* too many cells for the limit: refused */
    struct mq_quant_tap_geometry big = {.spatial = 2, .in = {1000, 1000}, .kernel = {3, 3}};
    ck_assert_int_eq(mq_quant_conv_tap_scratch(&big, 1000000), -1);
    ck_assert_int_eq(mq_quant_conv_tap_scratch(&big, 3000000), 3000000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_conv_tap_sums");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tap_sums_match_one_position_at_a_time);
    tcase_add_test(tc, test_tap_sums_are_the_same_doubles_for_wide_rows);
    return mq_check_run(s, tc);
}
