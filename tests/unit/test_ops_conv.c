/*
 * Conv and ConvTranspose (src/interp/ops/conv*.c).  Small cases are checked
 * against values worked out by hand; the rest against a naive direct
 * convolution written here, over many geometries (ranks 1-3, groups,
 * depthwise, strides, dilations, asymmetric pads, auto_pad), so that the
 * im2col, 1x1 and depthwise paths are each compared with the definition.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static uint32_t rng_state = 12345u;

struct geometry {
    int n;                  /* spatial axes */
    int64_t batch, in_ch, out_ch, group;
    int64_t in[4], kernel[4], strides[4], dilations[4], pads[8];
    const char *auto_pad;   /* NULL: explicit pads */
    int bias;
};

/* Output extents and begin pads the way the ONNX spec defines them. */
static void expected_geometry(const struct geometry *g, int64_t *out, int64_t *pad_begin)
{
    for (int i = 0; i < g->n; i++) {
        int64_t extent = (g->kernel[i] - 1) * g->dilations[i] + 1;
        if (g->auto_pad && strncmp(g->auto_pad, "SAME", 4) == 0) {
            out[i] = (g->in[i] + g->strides[i] - 1) / g->strides[i];
            int64_t total = (out[i] - 1) * g->strides[i] + extent - g->in[i];
            if (total < 0)
                total = 0;
            pad_begin[i] = strcmp(g->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
        } else if (g->auto_pad) {
            out[i] = (g->in[i] - extent) / g->strides[i] + 1;
            pad_begin[i] = 0;
        } else {
            out[i] = (g->in[i] + g->pads[i] + g->pads[i + g->n] - extent) / g->strides[i] + 1;
            pad_begin[i] = g->pads[i];
        }
    }
}

/* Direct convolution, double accumulation. */
static void reference_conv(const struct geometry *g, const float *x, const float *w,
                           const float *b, const int64_t *out, const int64_t *pb, float *y)
{
    int64_t cg = g->in_ch / g->group, mg = g->out_ch / g->group;
    int64_t out_size = 1, in_size = 1, k_size = 1;
    for (int i = 0; i < g->n; i++) {
        out_size *= out[i];
        in_size *= g->in[i];
        k_size *= g->kernel[i];
    }
    for (int64_t nb = 0; nb < g->batch; nb++)
        for (int64_t m = 0; m < g->out_ch; m++)
            for (int64_t o = 0; o < out_size; o++) {
                int64_t oi[4], rem = o;
                for (int d = g->n - 1; d >= 0; d--) {
                    oi[d] = rem % out[d];
                    rem /= out[d];
                }
                double acc = b ? b[m] : 0.0;
                int64_t grp = m / mg;
                for (int64_t c = 0; c < cg; c++)
                    for (int64_t k = 0; k < k_size; k++) {
                        int64_t ki[4], kr = k, pos = 0, inside = 1;
                        for (int d = g->n - 1; d >= 0; d--) {
                            ki[d] = kr % g->kernel[d];
                            kr /= g->kernel[d];
                        }
                        for (int d = 0; d < g->n; d++) {
                            int64_t p = oi[d] * g->strides[d] - pb[d] + ki[d] * g->dilations[d];
                            if (p < 0 || p >= g->in[d])
                                inside = 0;
                            pos = pos * g->in[d] + p;
                        }
                        if (!inside)
                            continue;
                        int64_t ic = grp * cg + c;
                        acc += (double)x[(nb * g->in_ch + ic) * in_size + pos] *
                               (double)w[(m * cg + c) * k_size + k];
                    }
                y[(nb * g->out_ch + m) * out_size + o] = (float)acc;
            }
}

static Onnx__NodeProto *conv_node(const char *op, const struct geometry *g, int explicit_kernel)
{
    Onnx__NodeProto *node = oh_node(op, g->bias ? 3 : 2, 1);
    if (g->group != 1)
        oh_attr_int(node, "group", g->group);
    oh_attr_ints(node, "strides", g->n, g->strides);
    oh_attr_ints(node, "dilations", g->n, g->dilations);
    if (explicit_kernel)
        oh_attr_ints(node, "kernel_shape", g->n, g->kernel);
    if (g->auto_pad)
        oh_attr_string(node, "auto_pad", g->auto_pad);
    else
        oh_attr_ints(node, "pads", 2 * g->n, g->pads);
    return node;
}

/* Random X and W (and B with bias) for n spatial axes; returns the zeroed buffer that the
 * reference fills with the expected output of dims yd. */
static float *random_case(struct mq_tensor in[3], int n, const int64_t *xd, const int64_t *wd,
                          int64_t out_ch, int bias, const int64_t *yd)
{
    in[0] = oh_random_f32(&rng_state, n + 2, xd);
    in[1] = oh_random_f32(&rng_state, n + 2, wd);
    if (bias)
        in[2] = oh_random_f32(&rng_state, 1, OH_DIMS(out_ch));
    int64_t count = 1;
    for (int i = 0; i < n + 2; i++)
        count *= yd[i];
    return calloc((size_t)count + 1, sizeof(float));
}

/* Runs the node at opset 11, compares its output with expected and frees everything. */
static void run_and_compare(Onnx__NodeProto *node, struct mq_tensor *in, int n_in, int rank,
                            const int64_t *yd, float *expected)
{
    struct mq_tensor y = {0};
    struct mq_error err = {{0}};
    int rc = oh_run(node, 11, in, n_in, &y, 1, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    oh_assert_f32(&y, rank, yd, expected, 1e-4f, 1e-4f);
    mq_tensor_free(&y);
    oh_node_free(node);
    oh_free_all(in, n_in);
    free(expected);
}

static void check_conv(const struct geometry *g)
{
    int64_t xd[6] = {g->batch, g->in_ch}, wd[6] = {g->out_ch, g->in_ch / g->group};
    int64_t out[4], pb[4], yd[6] = {g->batch, g->out_ch};
    expected_geometry(g, out, pb);
    for (int i = 0; i < g->n; i++) {
        xd[i + 2] = g->in[i];
        wd[i + 2] = g->kernel[i];
        yd[i + 2] = out[i];
    }
    struct mq_tensor in[3];
    float *expected = random_case(in, g->n, xd, wd, g->out_ch, g->bias, yd);
    reference_conv(g, in[0].data, in[1].data, g->bias ? in[2].data : NULL, out, pb, expected);

    Onnx__NodeProto *node = conv_node("Conv", g, g->n == 2);
    run_and_compare(node, in, g->bias ? 3 : 2, g->n + 2, yd, expected);
}

START_TEST(conv_by_hand)
{
    const float x[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const float ones[4] = {1, 1, 1, 1};
    struct mq_tensor in[3] = {oh_f32(4, OH_DIMS(1, 1, 3, 3), x),
                              oh_f32(4, OH_DIMS(1, 1, 2, 2), ones),
                              oh_f32(1, OH_DIMS(1), (const float[]){0.5f})};
    Onnx__NodeProto *node = oh_node("Conv", 2, 1);
    struct mq_tensor y = {0};
    struct mq_error err = {{0}};
    ck_assert_msg(oh_run(node, 1, in, 2, &y, 1, &err) == 0, "%s", err.message);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 2), (const float[]){8, 12, 20, 24}, 0, 0);
    mq_tensor_free(&y);
    oh_node_free(node);

    /* pads 1 all round, with a bias */
    node = oh_node("Conv", 3, 1);
    oh_attr_ints(node, "pads", 4, OH_DIMS(1, 1, 1, 1));
    ck_assert_msg(oh_run(node, 11, in, 3, &y, 1, &err) == 0, "%s", err.message);
    const float padded[16] = {0.5f, 1.5f,  3.5f,  2.5f,  3.5f,  8.5f,  12.5f, 7.5f,
                              9.5f, 20.5f, 24.5f, 13.5f, 6.5f,  13.5f, 15.5f, 8.5f};
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 4, 4), padded, 0, 0);
    mq_tensor_free(&y);
    oh_node_free(node);

    /* stride 2 with the SAME_UPPER output of ceil(3/2) = 2: total pad 1, at the end */
    node = oh_node("Conv", 2, 1);
    oh_attr_string(node, "auto_pad", "SAME_UPPER");
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    ck_assert_msg(oh_run(node, 11, in, 2, &y, 1, &err) == 0, "%s", err.message);
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 2, 2), (const float[]){8, 7, 13, 8}, 0, 0);
    mq_tensor_free(&y);
    oh_node_free(node);
    for (int i = 0; i < 3; i++)
        mq_tensor_free(&in[i]);
}
END_TEST

START_TEST(conv_2d_geometries)
{
    const struct geometry cases[] = {
        /* plain 3x3, pad 1 */
        {2, 1, 3, 4, 1, {7, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        /* 1x1 stride 1: the GEMM-on-input path, batch 2, no bias */
        {2, 2, 5, 3, 1, {4, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 0},
        /* 1x1 stride 2 */
        {2, 1, 4, 6, 1, {7, 7}, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, NULL, 1},
        /* strided, dilated, asymmetric pads */
        {2, 2, 3, 5, 1, {11, 9}, {3, 2}, {2, 3}, {2, 1}, {1, 0, 2, 3}, NULL, 1},
        /* groups */
        {2, 1, 6, 4, 2, {6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        /* depthwise, stride 1 and 2, with and without pads, multiplier 2 */
        {2, 2, 4, 4, 4, {9, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        {2, 1, 3, 3, 3, {10, 9}, {3, 3}, {2, 2}, {1, 1}, {0, 1, 1, 0}, NULL, 0},
        {2, 1, 3, 6, 3, {8, 8}, {5, 3}, {1, 2}, {2, 1}, {2, 1, 2, 1}, NULL, 1},
        /* depthwise 5-wide (taps of 3 + 2) and 7-wide (3 + 3 + 1) */
        {2, 1, 4, 4, 4, {7, 9}, {3, 5}, {1, 1}, {1, 1}, {1, 2, 1, 2}, NULL, 1},
        {2, 1, 2, 2, 2, {6, 12}, {1, 7}, {1, 2}, {1, 1}, {0, 3, 0, 3}, NULL, 0},
        /* depthwise with a 4-wide kernel, stride 3 across and dilation 2 */
        {2, 2, 3, 3, 3, {9, 14}, {2, 4}, {2, 3}, {1, 2}, {1, 0, 0, 2}, NULL, 1},
        /* auto_pad */
        {2, 1, 2, 3, 1, {7, 8}, {3, 4}, {2, 3}, {1, 1}, {0}, "SAME_UPPER", 1},
        {2, 1, 2, 3, 1, {7, 8}, {3, 4}, {2, 3}, {1, 1}, {0}, "SAME_LOWER", 1},
        {2, 1, 2, 3, 1, {7, 8}, {3, 4}, {2, 1}, {1, 2}, {0}, "VALID", 0},
        /* depthwise with SAME_LOWER */
        {2, 1, 2, 2, 2, {5, 6}, {2, 2}, {1, 1}, {1, 1}, {0}, "SAME_LOWER", 1},
        /* kernel wider than the image, padding makes it fit */
        {2, 1, 1, 2, 1, {2, 2}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_conv(&cases[i]);
}
END_TEST

START_TEST(conv_1d_3d_4d)
{
    const struct geometry cases[] = {
        {1, 2, 3, 4, 1, {10}, {3}, {2}, {1}, {1, 2}, NULL, 1},
        {1, 1, 4, 4, 4, {9}, {3}, {1}, {2}, {2, 2}, NULL, 1},
        {1, 1, 4, 2, 2, {6}, {1}, {1}, {1}, {0, 0}, NULL, 0},
        {3, 1, 2, 3, 1, {4, 5, 6}, {2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {0, 1, 1, 1, 0, 0}, NULL, 1},
        {3, 2, 4, 4, 2, {3, 4, 5}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0}, "SAME_UPPER", 1},
        {3, 1, 3, 3, 3, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, NULL, 0},
        /* four spatial axes */
        {4, 1, 2, 2, 1, {3, 4, 3, 5}, {2, 2, 1, 3}, {1, 2, 1, 2}, {1, 1, 1, 1},
         {0, 1, 0, 1, 1, 0, 0, 1}, NULL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_conv(&cases[i]);
}
END_TEST

START_TEST(conv_other_types)
{
    /* float64 and float16 give the float32 answer in their own type */
    const float x[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const double xd[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const double wd[4] = {1, 2, 3, 4};
    struct mq_tensor in[2] = {oh_typed(MQ_DTYPE_DOUBLE, 4, OH_DIMS(1, 1, 3, 3), xd),
                              oh_typed(MQ_DTYPE_DOUBLE, 4, OH_DIMS(1, 1, 2, 2), wd)};
    Onnx__NodeProto *node = oh_node("Conv", 2, 1);
    struct mq_tensor y = {0};
    struct mq_error err = {{0}};
    ck_assert_msg(oh_run(node, 11, in, 2, &y, 1, &err) == 0, "%s", err.message);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_DOUBLE);
    const double want[4] = {27, 37, 57, 67};
    for (int i = 0; i < 4; i++)
        ck_assert(((double *)y.data)[i] == want[i]);
    mq_tensor_free(&y);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);

    uint16_t xh[9], wh[4];
    for (int i = 0; i < 9; i++)
        xh[i] = mq_float_to_half(x[i]);
    for (int i = 0; i < 4; i++)
        wh[i] = mq_float_to_half((float)wd[i]);
    in[0] = oh_typed(MQ_DTYPE_FLOAT16, 4, OH_DIMS(1, 1, 3, 3), xh);
    in[1] = oh_typed(MQ_DTYPE_FLOAT16, 4, OH_DIMS(1, 1, 2, 2), wh);
    ck_assert_msg(oh_run(node, 11, in, 2, &y, 1, &err) == 0, "%s", err.message);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT16);
    for (int i = 0; i < 4; i++)
        ck_assert(mq_half_to_float(((uint16_t *)y.data)[i]) == (float)want[i]);
    mq_tensor_free(&y);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    oh_node_free(node);
}
END_TEST

START_TEST(conv_empty_batch)
{
    struct mq_tensor in[2] = {oh_f32(4, OH_DIMS(0, 2, 5, 5), NULL),
                              oh_random_f32(&rng_state, 4, OH_DIMS(3, 2, 3, 3))};
    Onnx__NodeProto *node = oh_node("Conv", 2, 1);
    struct mq_tensor y = {0};
    struct mq_error err = {{0}};
    ck_assert_msg(oh_run(node, 11, in, 2, &y, 1, &err) == 0, "%s", err.message);
    oh_assert_shape(&y, 4, OH_DIMS(0, 3, 3, 3));
    mq_tensor_free(&y);
    oh_node_free(node);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
}
END_TEST

static void expect_conv_error(const char *op, Onnx__NodeProto *node, struct mq_tensor *in, int n,
                              const char *needle)
{
    struct mq_tensor y = {0};
    struct mq_error err = {{0}};
    int rc = oh_run(node, 11, in, n, &y, 1, &err);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err.message, "node_under_test") && strstr(err.message, op) &&
                      strstr(err.message, needle),
                  "unexpected message: %s", err.message);
    mq_tensor_free(&y);
    oh_node_free(node);
    for (int i = 0; i < n; i++)
        mq_tensor_free(&in[i]);
}

START_TEST(conv_errors)
{
    /* channels do not match W with this group */
    struct mq_tensor in[3] = {oh_random_f32(&rng_state, 4, OH_DIMS(1, 4, 5, 5)),
                              oh_random_f32(&rng_state, 4, OH_DIMS(2, 3, 3, 3))};
    expect_conv_error("Conv", oh_node("Conv", 2, 1), in, 2, "group");

    /* kernel_shape contradicting W */
    in[0] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 2, 5, 5));
    in[1] = oh_random_f32(&rng_state, 4, OH_DIMS(2, 2, 3, 3));
    Onnx__NodeProto *node = oh_node("Conv", 2, 1);
    oh_attr_ints(node, "kernel_shape", 2, OH_DIMS(2, 2));
    expect_conv_error("Conv", node, in, 2, "kernel_shape");

    /* X of rank 2 */
    in[0] = oh_random_f32(&rng_state, 2, OH_DIMS(2, 5));
    in[1] = oh_random_f32(&rng_state, 2, OH_DIMS(2, 2));
    expect_conv_error("Conv", oh_node("Conv", 2, 1), in, 2, "rank");

    /* an integer X */
    in[0] = oh_i32(4, OH_DIMS(1, 1, 2, 2), (const int32_t[]){1, 2, 3, 4});
    in[1] = oh_i32(4, OH_DIMS(1, 1, 1, 1), (const int32_t[]){1});
    expect_conv_error("Conv", oh_node("Conv", 2, 1), in, 2, "int32");

    /* kernel bigger than the padded input */
    in[0] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 2, 2));
    in[1] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 3, 3));
    expect_conv_error("Conv", oh_node("Conv", 2, 1), in, 2, "kernel");

    /* bias of the wrong length */
    in[0] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 3, 3));
    in[1] = oh_random_f32(&rng_state, 4, OH_DIMS(2, 1, 1, 1));
    in[2] = oh_random_f32(&rng_state, 1, OH_DIMS(3));
    expect_conv_error("Conv", oh_node("Conv", 3, 1), in, 3, "B has shape [3]");

    /* pads with an odd count, refused at plan time */
    in[0] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 3, 3));
    in[1] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 1, 1));
    node = oh_node("Conv", 2, 1);
    oh_attr_ints(node, "pads", 3, OH_DIMS(1, 1, 1));
    expect_conv_error("Conv", node, in, 2, "pads");

    in[0] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 3, 3));
    in[1] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 1, 1));
    node = oh_node("Conv", 2, 1);
    oh_attr_string(node, "auto_pad", "SAME");
    expect_conv_error("Conv", node, in, 2, "auto_pad");
}
END_TEST

/* ---- ConvTranspose ------------------------------------------------------------------------ */

struct tgeometry {
    int n;
    int64_t batch, in_ch, out_ch, group;
    int64_t in[3], kernel[3], strides[3], dilations[3], pads[6], output_padding[3];
    int64_t output_shape[3]; /* used when output_shape[0] > 0 */
    const char *auto_pad;
    int bias;
};

/* Scatter form of the definition: each input element adds W times itself into the output. */
static void reference_convt(const struct tgeometry *g, const float *x, const float *w,
                            const float *b, const int64_t *out, const int64_t *pb, float *y)
{
    int64_t cg = g->in_ch / g->group, mg = g->out_ch / g->group;
    int64_t out_size = 1, in_size = 1, k_size = 1;
    for (int i = 0; i < g->n; i++) {
        out_size *= out[i];
        in_size *= g->in[i];
        k_size *= g->kernel[i];
    }
    for (int64_t nb = 0; nb < g->batch; nb++)
        for (int64_t m = 0; m < g->out_ch; m++)
            for (int64_t o = 0; o < out_size; o++)
                y[(nb * g->out_ch + m) * out_size + o] = b ? b[m] : 0.0f;
    for (int64_t nb = 0; nb < g->batch; nb++)
        for (int64_t c = 0; c < g->in_ch; c++)
            for (int64_t i = 0; i < in_size; i++) {
                int64_t ii[3], rem = i;
                for (int d = g->n - 1; d >= 0; d--) {
                    ii[d] = rem % g->in[d];
                    rem /= g->in[d];
                }
                float xv = x[(nb * g->in_ch + c) * in_size + i];
                int64_t grp = c / cg;
                for (int64_t j = 0; j < mg; j++)
                    for (int64_t k = 0; k < k_size; k++) {
                        int64_t ki[3], kr = k, pos = 0, inside = 1;
                        for (int d = g->n - 1; d >= 0; d--) {
                            ki[d] = kr % g->kernel[d];
                            kr /= g->kernel[d];
                        }
                        for (int d = 0; d < g->n; d++) {
                            int64_t p = ii[d] * g->strides[d] - pb[d] + ki[d] * g->dilations[d];
                            if (p < 0 || p >= out[d])
                                inside = 0;
                            pos = pos * out[d] + p;
                        }
                        if (!inside)
                            continue;
                        int64_t m = grp * mg + j;
                        float wv = w[(c * mg + j) * k_size + k];
                        y[(nb * g->out_ch + m) * out_size + pos] += xv * wv;
                    }
            }
}

static void check_convt(const struct tgeometry *g)
{
    int64_t xd[5] = {g->batch, g->in_ch}, wd[5] = {g->in_ch, g->out_ch / g->group};
    int64_t out[3], pb[3], yd[5] = {g->batch, g->out_ch};
    for (int i = 0; i < g->n; i++) {
        int64_t full = g->strides[i] * (g->in[i] - 1) + g->output_padding[i] +
                       (g->kernel[i] - 1) * g->dilations[i] + 1;
        if (g->output_shape[0] > 0 || g->auto_pad) {
            out[i] = g->output_shape[0] > 0 ? g->output_shape[i] : g->in[i] * g->strides[i];
            int64_t total = full - out[i] > 0 ? full - out[i] : 0;
            int upper = g->auto_pad && strcmp(g->auto_pad, "SAME_UPPER") == 0;
            pb[i] = upper ? total / 2 : total - total / 2;
        } else {
            out[i] = full - g->pads[i] - g->pads[i + g->n];
            pb[i] = g->pads[i];
        }
        xd[i + 2] = g->in[i];
        wd[i + 2] = g->kernel[i];
        yd[i + 2] = out[i];
    }
    struct mq_tensor in[3];
    float *expected = random_case(in, g->n, xd, wd, g->out_ch, g->bias, yd);
    reference_convt(g, in[0].data, in[1].data, g->bias ? in[2].data : NULL, out, pb, expected);

    Onnx__NodeProto *node = oh_node("ConvTranspose", g->bias ? 3 : 2, 1);
    if (g->group != 1)
        oh_attr_int(node, "group", g->group);
    oh_attr_ints(node, "strides", g->n, g->strides);
    oh_attr_ints(node, "dilations", g->n, g->dilations);
    oh_attr_ints(node, "output_padding", g->n, g->output_padding);
    if (g->output_shape[0] > 0)
        oh_attr_ints(node, "output_shape", g->n, g->output_shape);
    if (g->auto_pad)
        oh_attr_string(node, "auto_pad", g->auto_pad);
    else if (g->output_shape[0] == 0)
        oh_attr_ints(node, "pads", 2 * g->n, g->pads);
    run_and_compare(node, in, g->bias ? 3 : 2, g->n + 2, yd, expected);
}

START_TEST(convtranspose_by_hand)
{
    /* stride 2, 2x2 ones kernel: each input value becomes a 2x2 block */
    struct mq_tensor in[2] = {oh_f32(4, OH_DIMS(1, 1, 2, 2), (const float[]){1, 2, 3, 4}),
                              oh_f32(4, OH_DIMS(1, 1, 2, 2), (const float[]){1, 1, 1, 1})};
    Onnx__NodeProto *node = oh_node("ConvTranspose", 2, 1);
    oh_attr_ints(node, "strides", 2, OH_DIMS(2, 2));
    struct mq_tensor y = {0};
    struct mq_error err = {{0}};
    ck_assert_msg(oh_run(node, 1, in, 2, &y, 1, &err) == 0, "%s", err.message);
    const float want[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 4, 4), want, 0, 0);
    mq_tensor_free(&y);
    oh_node_free(node);

    /* stride 1: the full correlation, 3x3 */
    node = oh_node("ConvTranspose", 2, 1);
    ck_assert_msg(oh_run(node, 11, in, 2, &y, 1, &err) == 0, "%s", err.message);
    const float full[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    oh_assert_f32(&y, 4, OH_DIMS(1, 1, 3, 3), full, 0, 0);
    mq_tensor_free(&y);
    oh_node_free(node);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
}
END_TEST

START_TEST(convtranspose_geometries)
{
    const struct tgeometry cases[] = {
        {2, 1, 2, 3, 1, {3, 4}, {3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {0}, NULL, 1},
        {2, 2, 3, 2, 1, {3, 3}, {3, 2}, {2, 3}, {1, 1}, {1, 0, 0, 2}, {1, 0}, {0}, NULL, 1},
        {2, 1, 4, 6, 2, {4, 3}, {2, 2}, {2, 2}, {2, 1}, {0, 1, 1, 0}, {0, 1}, {0}, NULL, 0},
        {2, 1, 3, 3, 3, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {0}, NULL, 1},
        /* output_shape larger than the full output: the extra tail stays at the bias */
        {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {1, 1}, {0}, {0, 0}, {10, 8}, NULL, 1},
        /* output_shape smaller: padding split with the extra at the beginning */
        {2, 1, 1, 1, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {0}, {0, 0}, {6, 5}, NULL, 0},
        {2, 1, 2, 2, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {0}, {0, 0}, {0}, "SAME_UPPER", 1},
        {2, 1, 2, 2, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {0}, {0, 0}, {0}, "SAME_LOWER", 1},
        {1, 2, 2, 3, 1, {5}, {3}, {2}, {1}, {1, 0}, {1}, {0}, NULL, 1},
        {3, 1, 2, 2, 1, {2, 3, 2}, {2, 2, 3}, {2, 1, 2}, {1, 2, 1}, {0, 0, 1, 1, 0, 0},
         {1, 0, 0}, {0}, NULL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_convt(&cases[i]);
}
END_TEST

START_TEST(convtranspose_errors)
{
    struct mq_tensor in[2] = {oh_random_f32(&rng_state, 4, OH_DIMS(1, 3, 2, 2)),
                              oh_random_f32(&rng_state, 4, OH_DIMS(2, 1, 2, 2))};
    expect_conv_error("ConvTranspose", oh_node("ConvTranspose", 2, 1), in, 2, "W.dims[0]");
    in[0] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 2, 2));
    in[1] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 2, 2));
    Onnx__NodeProto *node = oh_node("ConvTranspose", 2, 1);
    oh_attr_ints(node, "output_shape", 3, OH_DIMS(4, 4, 4));
    expect_conv_error("ConvTranspose", node, in, 2, "output_shape");
    in[0] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 2, 2));
    in[1] = oh_random_f32(&rng_state, 4, OH_DIMS(1, 1, 2, 2));
    node = oh_node("ConvTranspose", 2, 1);
    oh_attr_ints(node, "output_padding", 2, OH_DIMS(-1, 0));
    expect_conv_error("ConvTranspose", node, in, 2, "output_padding");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_conv");
    TCase *tc = tcase_create("conv");
    tcase_add_test(tc, conv_by_hand);
    tcase_add_test(tc, conv_2d_geometries);
    tcase_add_test(tc, conv_1d_3d_4d);
    tcase_add_test(tc, conv_other_types);
    tcase_add_test(tc, conv_empty_batch);
    tcase_add_test(tc, conv_errors);
    tcase_add_test(tc, convtranspose_by_hand);
    tcase_add_test(tc, convtranspose_geometries);
    tcase_add_test(tc, convtranspose_errors);
    return mq_check_run(s, tc);
}
