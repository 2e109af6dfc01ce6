/*
 * Pooling (src/interp/ops/pool.c): hand-worked MaxPool/AveragePool cases,
 * then a naive window-by-window reference over many geometries (1-3 spatial
 * axes, strides, dilations, asymmetric pads, ceil_mode, auto_pad), Indices
 * in both storage orders, the Global pools, LpPool and MaxUnpool.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static uint32_t rng_state = 4242u;

START_TEST(maxpool_by_hand)
{
    /* 4x4 of 1..16, 2x2 stride 2 -> [6, 8, 14, 16] with row-major indices */
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    struct mq_tensor in = oh_f32(4, OH_DIMS(1, 1, 4, 4), x), out[2];
    Onnx__NodeProto *node = oh_node("MaxPool", 1, 2);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_run_ok_take_node(node, 12, &in, 1, out, 2);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 2, 2), (const float[]){6, 8, 14, 16}, 0, 0);
    oh_assert_i64(&out[1], 4, OH_DIMS(1, 1, 2, 2), (const int64_t[]){5, 7, 13, 15});
    oh_free_all(out, 2);

    /* column-major indices: h + H * w */
    node = oh_node("MaxPool", 1, 2);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_attr_int(node, "storage_order", 1);
    oh_run_ok_take_node(node, 8, &in, 1, out, 2);
    oh_assert_i64(&out[1], 4, OH_DIMS(1, 1, 2, 2), (const int64_t[]){5, 13, 7, 15});
    oh_free_all(out, 2);

    /* 3x3 stride 2 ceil_mode: 2x2, the last window is cut by the edge */
    node = oh_node("MaxPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(3, 3));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_attr_int(node, "ceil_mode", 1);
    oh_run_ok_take_node(node, 10, &in, 1, out, 1);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 2, 2), (const float[]){11, 12, 15, 16}, 0, 0);
    oh_free_all(out, 1);

    /* ceil_mode with pads 1: a window starting in the end padding is dropped */
    node = oh_node("MaxPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "pads", 4, OH_DIMS(1, 1, 1, 1));
    oh_attr_int(node, "ceil_mode", 1);
    oh_run_ok_take_node(node, 11, &in, 1, out, 1);
    const float cut[9] = {1, 3, 4, 9, 11, 12, 13, 15, 16};
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 3, 3), cut, 0, 0);
    oh_free_all(out, 1);

    /* dilation 2 */
    node = oh_node("MaxPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "dilations", 2, OH_DIMS(2, 2));
    oh_run_ok_take_node(node, 12, &in, 1, out, 1);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 2, 2), (const float[]){11, 12, 15, 16}, 0, 0);
    oh_free_all(out, 1);
    mq_tensor_free(&in);
}
END_TEST

START_TEST(averagepool_by_hand)
{
    float x[9];
    for (int i = 0; i < 9; i++)
        x[i] = (float)(i + 1);
    struct mq_tensor in = oh_f32(4, OH_DIMS(1, 1, 3, 3), x), out[1];
    /* 2x2 with pads 1: corners see one real element */
    Onnx__NodeProto *node = oh_node("AveragePool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "pads", 4, OH_DIMS(1, 1, 1, 1));
    oh_run_ok_take_node(node, 11, &in, 1, out, 1);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 2, 2), (const float[]){1, 2.5f, 5.5f, 7}, 1e-6f, 0);
    oh_free_all(out, 1);

    /* the same with count_include_pad: every window counts 4 */
    node = oh_node("AveragePool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "pads", 4, OH_DIMS(1, 1, 1, 1));
    oh_attr_int(node, "count_include_pad", 1);
    oh_run_ok_take_node(node, 7, &in, 1, out, 1);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 2, 2), (const float[]){0.25f, 1.25f, 2.75f, 7},
                  1e-6f, 0);
    oh_free_all(out, 1);

    /* ceil_mode: the cut windows average only what they cover */
    node = oh_node("AveragePool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_attr_int(node, "ceil_mode", 1);
    oh_run_ok_take_node(node, 10, &in, 1, out, 1);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 2, 2), (const float[]){3, 4.5f, 7.5f, 9}, 1e-6f, 0);
    oh_free_all(out, 1);

    /* dilations (AveragePool-19) */
    node = oh_node("AveragePool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "dilations", 2, OH_DIMS(2, 2));
    oh_run_ok_take_node(node, 19, &in, 1, out, 1);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 1, 1), (const float[]){5}, 1e-6f, 0);
    oh_free_all(out, 1);
    mq_tensor_free(&in);
}
END_TEST

enum { MAX, AVG, LP };

struct pgeom {
    int n;
    int64_t in[3], kernel[3], strides[3], dilations[3], pads[6];
    int ceil_mode, include_pad;
    const char *auto_pad;
};

static void pool_output(const struct pgeom *g, int64_t *out, int64_t *pb, int64_t *pe)
{
    for (int i = 0; i < g->n; i++) {
        int64_t ext = (g->kernel[i] - 1) * g->dilations[i] + 1;
        if (g->auto_pad && strncmp(g->auto_pad, "SAME", 4) == 0) {
            out[i] = (g->in[i] + g->strides[i] - 1) / g->strides[i];
            int64_t total = (out[i] - 1) * g->strides[i] + ext - g->in[i];
            total = total < 0 ? 0 : total;
            pb[i] = strcmp(g->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            pe[i] = total - pb[i];
            continue;
        }
        pb[i] = g->auto_pad ? 0 : g->pads[i];
        pe[i] = g->auto_pad ? 0 : g->pads[i + g->n];
        double span = (double)(g->in[i] + pb[i] + pe[i] - ext) / (double)g->strides[i];
        out[i] = (int64_t)(g->ceil_mode && !g->auto_pad ? ceil(span) : floor(span)) + 1;
        if (g->ceil_mode && (out[i] - 1) * g->strides[i] >= g->in[i] + pb[i])
            out[i]--;
    }
}

/* One output value of the definition, window by window. */
static float pool_window(const struct pgeom *g, const float *plane, const int64_t *o,
                         const int64_t *pb, const int64_t *pe, int kind, double p,
                         int64_t *argmax)
{
    double acc = kind == MAX ? -INFINITY : 0.0;
    int64_t count = 0, padded = 0, taps = 1;
    for (int d = 0; d < g->n; d++)
        taps *= g->kernel[d];
    for (int64_t t = 0; t < taps; t++) {
        int64_t rem = t, pos = 0, inside = 1, in_padded = 1;
        int64_t k[3];
        for (int d = g->n - 1; d >= 0; d--) {
            k[d] = rem % g->kernel[d];
            rem /= g->kernel[d];
        }
        for (int d = 0; d < g->n; d++) {
            int64_t i = o[d] * g->strides[d] - pb[d] + k[d] * g->dilations[d];
            if (i < 0 || i >= g->in[d])
                inside = 0;
            if (i >= g->in[d] + pe[d])
                in_padded = 0;
            pos = pos * g->in[d] + i;
        }
        padded += in_padded;
        if (!inside)
            continue;
        count++;
        double v = plane[pos];
        if (kind == MAX) {
            if (v > acc) {
                acc = v;
                *argmax = pos;
            }
        } else {
            acc += kind == AVG ? v : pow(fabs(v), p);
        }
    }
    if (kind == AVG)
        return (float)(acc / (double)(g->include_pad ? padded : count));
    if (kind == LP)
        return (float)pow(acc, 1.0 / p);
    return (float)acc;
}

static void check_pool(const struct pgeom *g, int kind, double p, int with_indices)
{
    int64_t out[3], pb[3], pe[3], xd[5] = {2, 3}, yd[5] = {2, 3};
    pool_output(g, out, pb, pe);
    int64_t in_size = 1, out_size = 1;
    for (int i = 0; i < g->n; i++) {
        xd[i + 2] = g->in[i];
        yd[i + 2] = out[i];
        in_size *= g->in[i];
        out_size *= out[i];
    }
    struct mq_tensor x = oh_random_f32(&rng_state, g->n + 2, xd), y[2];
    float *want = calloc((size_t)(6 * out_size) + 1, sizeof(float));
    int64_t *want_idx = calloc((size_t)(6 * out_size) + 1, sizeof(int64_t));
    for (int64_t pl = 0; pl < 6; pl++)
        for (int64_t o = 0; o < out_size; o++) {
            int64_t oi[3], rem = o, arg = -1;
            for (int d = g->n - 1; d >= 0; d--) {
                oi[d] = rem % out[d];
                rem /= out[d];
            }
            want[pl * out_size + o] = pool_window(g, (const float *)x.data + pl * in_size, oi,
                                                  pb, pe, kind, p, &arg);
            want_idx[pl * out_size + o] = pl * in_size + arg;
        }
    static const char *ops[] = {"MaxPool", "AveragePool", "LpPool"};
    Onnx__NodeProto *node = oh_node(ops[kind], 1, with_indices ? 2 : 1);
    oh_attr_ints(node, "kernel_shape", g->n, g->kernel);
    oh_attr_ints(node, "strides", g->n, g->strides);
    oh_attr_ints(node, "dilations", g->n, g->dilations);
    if (g->auto_pad)
        oh_attr_string(node, "auto_pad", g->auto_pad);
    else
        oh_attr_ints(node, "pads", 2 * g->n, g->pads);
    if (g->ceil_mode)
        oh_attr_int(node, "ceil_mode", 1);
    if (g->include_pad)
        oh_attr_int(node, "count_include_pad", 1);
    if (kind == LP)
        oh_attr_int(node, "p", (int64_t)p);
    oh_run_ok_take_node(node, kind == LP ? 18 : 19, &x, 1, y, with_indices ? 2 : 1);
    oh_assert_f32(&y[0], g->n + 2, yd, want, 1e-5f, 1e-5f);
    if (with_indices)
        oh_assert_i64(&y[1], g->n + 2, yd, want_idx);
    oh_free_all(y, with_indices ? 2 : 1);
    mq_tensor_free(&x);
    free(want);
    free(want_idx);
}

START_TEST(pool_geometries)
{
    const struct pgeom cases[] = {
        {2, {7, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, 0, NULL},
        {2, {7, 8}, {3, 3}, {2, 2}, {1, 1}, {0, 1, 1, 0}, 1, 0, NULL},
        {2, {9, 7}, {2, 3}, {3, 1}, {2, 2}, {1, 0, 0, 2}, 1, 1, NULL},
        {2, {6, 5}, {3, 2}, {1, 2}, {1, 1}, {0}, 0, 0, "SAME_UPPER"},
        {2, {6, 5}, {3, 2}, {2, 2}, {1, 1}, {0}, 0, 1, "SAME_LOWER"},
        {2, {6, 5}, {3, 2}, {2, 2}, {1, 1}, {0}, 1, 0, "VALID"},
        {1, {11}, {4}, {3}, {1}, {2, 1}, 1, 1, NULL},
        {1, {5}, {2}, {1}, {3}, {0, 0}, 0, 0, NULL},
        {3, {4, 5, 6}, {2, 2, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1, 1, 0, 1}, 0, 1, NULL},
        {3, {3, 4, 5}, {2, 3, 2}, {2, 1, 2}, {1, 1, 2}, {0}, 1, 0, "SAME_UPPER"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_pool(&cases[i], MAX, 0, 0);
        check_pool(&cases[i], MAX, 0, 1);
        check_pool(&cases[i], AVG, 0, 0);
        check_pool(&cases[i], LP, 2, 0);
        check_pool(&cases[i], LP, 3, 0);
        check_pool(&cases[i], LP, 1, 0);
    }
}
END_TEST

START_TEST(maxpool_other_types)
{
    const uint8_t u[4] = {1, 200, 3, 4};
    struct mq_tensor in = oh_u8(4, OH_DIMS(1, 1, 2, 2), u), out[2];
    Onnx__NodeProto *node = oh_node("MaxPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 1));
    oh_run_ok_take_node(node, 12, &in, 1, out, 1);
    ck_assert_int_eq(out[0].dtype, MQ_DTYPE_UINT8);
    ck_assert_int_eq(((uint8_t *)out[0].data)[0], 3);
    ck_assert_int_eq(((uint8_t *)out[0].data)[1], 200);
    oh_free_all(out, 1);
    mq_tensor_free(&in);

    const int8_t s[4] = {-5, -7, -128, -6};
    in = oh_i8(4, OH_DIMS(1, 1, 2, 2), s);
    node = oh_node("MaxPool", 1, 2);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "pads", 4, OH_DIMS(0, 0, 1, 1));
    oh_run_ok_take_node(node, 12, &in, 1, out, 2);
    const int8_t want[4] = {-5, -6, -6, -6};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(((int8_t *)out[0].data)[i], want[i]);
    oh_assert_i64(&out[1], 4, OH_DIMS(1, 1, 2, 2), (const int64_t[]){0, 3, 3, 3});
    oh_free_all(out, 2);
    mq_tensor_free(&in);

    uint16_t h[4];
    for (int i = 0; i < 4; i++)
        h[i] = mq_float_to_half((float)i - 1.5f);
    in = oh_typed(MQ_DTYPE_FLOAT16, 3, OH_DIMS(1, 1, 4), h);
    node = oh_node("AveragePool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 1, OH_DIMS(2));
    oh_attr_ints(node, "strides", 1, OH_DIMS(2));
    oh_run_ok_take_node(node, 11, &in, 1, out, 1);
    ck_assert_int_eq(out[0].dtype, MQ_DTYPE_FLOAT16);
    ck_assert(mq_half_to_float(((uint16_t *)out[0].data)[0]) == -1.0f);
    ck_assert(mq_half_to_float(((uint16_t *)out[0].data)[1]) == 1.0f);
    oh_free_all(out, 1);
    mq_tensor_free(&in);
}
END_TEST

START_TEST(global_pools)
{
    float x[2 * 3 * 5];
    for (int i = 0; i < 30; i++)
        x[i] = (float)((i * 7) % 11) - 5.0f;
    float want_avg[6], want_max[6], want_lp[6];
    for (int p = 0; p < 6; p++) {
        double s = 0, q = 0, m = -INFINITY;
        for (int i = 0; i < 5; i++) {
            double v = x[p * 5 + i];
            s += v;
            q += v * v;
            m = v > m ? v : m;
        }
        want_avg[p] = (float)(s / 5);
        want_max[p] = (float)m;
        want_lp[p] = (float)sqrt(q);
    }
    struct mq_tensor in = oh_f32(3, OH_DIMS(2, 3, 5), x), out[1];
    oh_run_ok_take_node(oh_node("GlobalAveragePool", 1, 1), 1, &in, 1, out, 1);
    oh_assert_f32(&out[0], 3, OH_DIMS(2, 3, 1), want_avg, 1e-6f, 1e-6f);
    oh_free_all(out, 1);
    oh_run_ok_take_node(oh_node("GlobalMaxPool", 1, 1), 1, &in, 1, out, 1);
    oh_assert_f32(&out[0], 3, OH_DIMS(2, 3, 1), want_max, 0, 0);
    oh_free_all(out, 1);
    oh_run_ok_take_node(oh_node("GlobalLpPool", 1, 1), 2, &in, 1, out, 1);
    oh_assert_f32(&out[0], 3, OH_DIMS(2, 3, 1), want_lp, 1e-6f, 1e-6f);
    oh_free_all(out, 1);
    mq_tensor_free(&in);

    /* a long plane (the blocked sum) in 2-D, and p = 3 in GlobalLpPool-1 (a float p) */
    int64_t n = 1000;
    struct mq_tensor big = oh_f32(4, OH_DIMS(1, 2, 10, 100), NULL);
    double s0 = 0, s1 = 0, c0 = 0;
    for (int64_t i = 0; i < 2 * n; i++) {
        float v = (float)(i % 13) * 0.25f;
        ((float *)big.data)[i] = v;
        *(i < n ? &s0 : &s1) += v;
        if (i < n)
            c0 += pow(v, 3);
    }
    oh_run_ok_take_node(oh_node("GlobalAveragePool", 1, 1), 1, &big, 1, out, 1);
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 2, 1, 1),
                  (const float[]){(float)(s0 / (double)n), (float)(s1 / (double)n)}, 1e-5f, 1e-5f);
    oh_free_all(out, 1);
    Onnx__NodeProto *node = oh_node("GlobalLpPool", 1, 1);
    oh_attr_float(node, "p", 3.0f);
    oh_run_ok_take_node(node, 1, &big, 1, out, 1);
    ck_assert_msg(fabs(((float *)out[0].data)[0] - cbrt(c0)) < 1e-3, "%g vs %g",
                  (double)((float *)out[0].data)[0], cbrt(c0));
    oh_free_all(out, 1);
    mq_tensor_free(&big);

    /* empty batch */
    in = oh_f32(4, OH_DIMS(0, 3, 2, 2), NULL);
    oh_run_ok_take_node(oh_node("GlobalMaxPool", 1, 1), 1, &in, 1, out, 1);
    oh_assert_shape(&out[0], 4, OH_DIMS(0, 3, 1, 1));
    oh_free_all(out, 1);
    mq_tensor_free(&in);
}
END_TEST

START_TEST(maxunpool)
{
    struct mq_tensor in[3] = {oh_f32(4, OH_DIMS(1, 1, 2, 2), (const float[]){1, 2, 3, 4}),
                              oh_i64(4, OH_DIMS(1, 1, 2, 2), (const int64_t[]){5, 7, 13, 15})};
    struct mq_tensor out[1];
    Onnx__NodeProto *node = oh_node("MaxUnpool", 2, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_run_ok_take_node(node, 11, in, 2, out, 1);
    const float want[16] = {0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4};
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 4, 4), want, 0, 0);
    oh_free_all(out, 1);

    /* output_shape 5x5: same coordinates, padded at the end */
    in[2] = oh_i64(1, OH_DIMS(4), (const int64_t[]){1, 1, 5, 5});
    node = oh_node("MaxUnpool", 3, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_run_ok_take_node(node, 11, in, 3, out, 1);
    float want5[25] = {0};
    want5[6] = 1, want5[8] = 2, want5[16] = 3, want5[18] = 4;
    oh_assert_f32(&out[0], 4, OH_DIMS(1, 1, 5, 5), want5, 0, 0);
    oh_free_all(out, 1);
    mq_tensor_free(&in[2]);

    /* an index past the unpooled tensor */
    ((int64_t *)in[1].data)[3] = 16;
    node = oh_node("MaxUnpool", 2, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    oh_expect_error_take_all(node, 11, in, 2, "outside");
}
END_TEST

START_TEST(pool_errors)
{
    struct mq_tensor x = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 4, 4));
    oh_expect_error_take_all(oh_node("MaxPool", 1, 1), 12, &x, 1, "kernel_shape is required");

    x = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 4, 4));
    Onnx__NodeProto *node = oh_node("AveragePool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 1, OH_DIMS(2));
    oh_expect_error_take_all(node, 11, &x, 1, "rank 3");

    x = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 4, 4));
    node = oh_node("MaxPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(5, 1));
    oh_expect_error_take_all(node, 12, &x, 1, "kernel extent");

    x = oh_i32(3, OH_DIMS(1, 1, 2), (const int32_t[]){1, 2});
    node = oh_node("MaxPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 1, OH_DIMS(2));
    oh_expect_error_take_all(node, 12, &x, 1, "int32");

    x = oh_i8(3, OH_DIMS(1, 1, 2), (const int8_t[]){1, 2});
    node = oh_node("AveragePool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 1, OH_DIMS(2));
    oh_expect_error_take_all(node, 11, &x, 1, "int8");

    x = oh_random_f32(&rng_state, 6, OH_DIMS(1, 1, 2, 2, 2, 2));
    node = oh_node("MaxPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 4, OH_DIMS(1, 1, 1, 1));
    oh_expect_error_take_all(node, 12, &x, 1, "spatial axes");

    x = oh_random_f32(&rng_state, 3, OH_DIMS(1, 1, 4));
    node = oh_node("LpPool", 1, 1);
    oh_attr_ints(node, "kernel_shape", 1, OH_DIMS(2));
    oh_attr_int(node, "p", 0);
    oh_expect_error_take_all(node, 11, &x, 1, "p = 0");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, maxpool_by_hand);
    tcase_add_test(tc, averagepool_by_hand);
    tcase_add_test(tc, pool_geometries);
    tcase_add_test(tc, maxpool_other_types);
    tcase_add_test(tc, global_pools);
    tcase_add_test(tc, maxunpool);
    tcase_add_test(tc, pool_errors);
    return mq_check_run(s, tc);
}
