/*
 * GPTQ rounding of static quantization's weights (quant/weight_rounding.c): on a grouped,
 * strided, padded Conv and on a MatMul, the integers it hands out keep the layer's output on
 * the samples nearer the float layer than rounding to nearest with the same scales, stay in
 * range and on the same grid, come out the same twice; weights it did not prepare, or asked
 * for along another axis, are left to rounding to nearest.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/reader.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/params.h"
#include "quant/weight_rounding.h"
#include "check_main.h"
#include "model_run.h"
#include "quant_builder.h"
#include "tmp_tree.h"

#define N_SAMPLES 3

static char root[64];
static struct mq_error err;

static void setup(void)
{
    strcpy(root, "/tmp/mq-wround-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
    tt_remove(root);
}

static void write_sample(int s, const struct mq_tensor *t)
{
    tt_write_sample(root, s, "x", t);
}

/* Inputs whose channels and neighbours are correlated, as images are. */
static float sample_value(int s, int64_t i)
{
    return sinf((float)(s * 17 + i) * 0.11f) + 0.3f * cosf((float)(i / 7) * 0.5f) + 0.2f;
}

/* Per-channel symmetric int8 scales along axis 0 (Conv) or the last axis (MatMul's B). */
static void channel_scales(const float *w, int64_t count, int64_t channels, int last_axis,
                           float *scales, int32_t *zps)
{
    for (int64_t c = 0; c < channels; c++) {
        float hi = 0.0f;
        for (int64_t e = 0; e < count; e++) {
            int64_t ch = last_axis ? e % channels : e / (count / channels);
            if (ch == c && fabsf(w[e]) > hi)
                hi = fabsf(w[e]);
        }
        scales[c] = hi > 0 ? hi / 127.0f : 1.0f;
        zps[c] = 0;
    }
}

/* Sum over the samples of the squared difference between the model with `w` and with `ref`. */
static double output_error(Onnx__ModelProto *m, Onnx__TensorProto *init, const float *w,
                           const float *ref, int64_t count, const struct mq_tensor *xs)
{
    double total = 0.0;
    for (int s = 0; s < N_SAMPLES; s++) {
        struct mq_tensor a, b;
        memcpy(init->raw_data.data, ref, (size_t)count * 4);
        mr_run(m, &xs[s], 1, &a, 1);
        memcpy(init->raw_data.data, w, (size_t)count * 4);
        mr_run(m, &xs[s], 1, &b, 1);
        for (int64_t i = 0; i < a.count; i++) {
            double d = (double)((float *)a.data)[i] - ((float *)b.data)[i];
            total += d * d;
        }
        mq_tensor_free(&a);
        mq_tensor_free(&b);
    }
    memcpy(init->raw_data.data, ref, (size_t)count * 4);
    return total;
}

/*
 * Collects the rounding for model m (input "x" of dims xd, weight "w"), then compares GPTQ's
 * integers with the nearest ones under the same scales.
 */
static void check_layer(Onnx__ModelProto *m, int x_rank, const int64_t *xd, int64_t channels,
                        int last_axis)
{
    Onnx__TensorProto *init = m->graph->initializer[0];
    int64_t count = (int64_t)init->raw_data.len / 4;
    float *w = malloc((size_t)count * sizeof *w);
    memcpy(w, init->raw_data.data, (size_t)count * 4);
    struct mq_tensor xs[N_SAMPLES];
    for (int s = 0; s < N_SAMPLES; s++) {
        ck_assert_int_eq(mq_tensor_alloc(&xs[s], MQ_DTYPE_FLOAT, x_rank, xd, "x", &err), MQ_OK);
        for (int64_t i = 0; i < xs[s].count; i++)
            ((float *)xs[s].data)[i] = sample_value(s, i);
        write_sample(s, &xs[s]);
    }
    struct mq_model *model = mr_reload(m);
    struct mq_plan *plan;
    ck_assert_msg(mq_plan_build(model, &plan, &err) == MQ_OK, "%s", err.message);
    const Onnx__ValueInfoProto *inputs[1] = {mq_plan_input(plan, 0)};
    struct mq_calib_source *source;
    ck_assert_msg(mq_calib_source_open(root, inputs, 1, 0, &source, &err) == MQ_OK, "%s",
                  err.message);
    struct mq_weight_rounding *r;
    ck_assert_msg(mq_weight_rounding_collect(plan, source, model->proto, &r, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_int_eq(mq_weight_rounding_count(r), 1);

    struct mq_tensor wt;
    ck_assert_int_eq(mq_tensor_from_proto(init, "w", &wt, &err), MQ_OK);
    float *scales = malloc((size_t)channels * sizeof *scales);
    int32_t *zps = malloc((size_t)channels * sizeof *zps);
    channel_scales(w, count, channels, last_axis, scales, zps);
    struct mq_qrange full = mq_qrange_full(MQ_DTYPE_INT8);
    int32_t *q = malloc((size_t)count * sizeof *q), *again = malloc((size_t)count * sizeof *q);
    int axis = last_axis ? (int)wt.rank - 1 : 0;
    ck_assert_int_eq(mq_weight_rounding_apply(r, "w", &wt, axis, scales, zps, (int)channels, full,
                                              q), 1);
    ck_assert_int_eq(mq_weight_rounding_apply(r, "w", &wt, axis, scales, zps, (int)channels, full,
                                              again), 1);
    ck_assert_int_eq(memcmp(q, again, (size_t)count * sizeof *q), 0);
    /* Not prepared, or along an axis that is not the output channels: not handled. */
    ck_assert_int_eq(mq_weight_rounding_apply(r, "other", &wt, axis, scales, zps, (int)channels,
                                              full, again), 0);
    ck_assert_int_eq(mq_weight_rounding_apply(r, "w", &wt, last_axis ? 0 : 1, scales, zps,
                                              (int)channels, full, again), 0);

    float *gptq = malloc((size_t)count * sizeof *gptq), *nearest = malloc((size_t)count * sizeof *gptq);
    int differ = 0;
    for (int64_t e = 0; e < count; e++) {
        int64_t ch = last_axis ? e % channels : e / (count / channels);
        struct mq_qparams p = {scales[ch], zps[ch]};
        ck_assert(q[e] >= full.qmin && q[e] <= full.qmax);
        gptq[e] = mq_dequantize_value(q[e], p);
        int32_t n = mq_quantize_value(w[e], p, full);
        nearest[e] = mq_dequantize_value(n, p);
        differ += n != q[e];
    }
    ck_assert_int_gt(differ, 0);
    double e_gptq = output_error(m, init, gptq, w, count, xs);
    double e_nearest = output_error(m, init, nearest, w, count, xs);
    ck_assert_msg(e_gptq < 0.8 * e_nearest, "GPTQ %g, nearest %g", e_gptq, e_nearest);

    free(gptq);
    free(nearest);
    free(q);
    free(again);
    free(scales);
    free(zps);
    free(w);
    mq_tensor_free(&wt);
    for (int s = 0; s < N_SAMPLES; s++)
        mq_tensor_free(&xs[s]);
    mq_weight_rounding_free(r);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    mq_model_free(model);
}

START_TEST(test_conv_grouped_strided_padded)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 6, 9, 8}, wd[4] = {8, 3, 3, 3};
    float w[8 * 3 * 3 * 3];
    for (int i = 0; i < 8 * 27; i++)
        w[i] = sinf((float)i * 1.7f) * (0.5f + (float)(i % 5) * 0.2f);
    qb_init_f32(g, "w", 4, wd, w);
    qb_input(g, "x", 1, 4, xd);
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", "x,w", "y");
    qb_attr_int(conv, "group", 2);
    qb_attr_ints(conv, "strides", 2, (const int64_t[]){2, 1});
    qb_attr_ints(conv, "pads", 4, (const int64_t[]){1, 0, 1, 2});
    qb_output(g, "y", 1);
    check_layer(m, 4, xd, 8, 0);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_matmul)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[3] = {2, 12, 16}, wd[2] = {16, 5};
    float w[16 * 5];
    for (int i = 0; i < 80; i++)
        w[i] = cosf((float)i * 2.3f) * (0.3f + (float)(i % 3) * 0.4f);
    qb_init_f32(g, "w", 2, wd, w);
    qb_input(g, "x", 1, 3, xd);
    qb_node(g, "MatMul", "mm", "x,w", "y");
    qb_output(g, "y", 1);
    check_layer(m, 3, xd, 5, 1);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_weight_rounding");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_conv_grouped_strided_padded);
    tcase_add_test(tc, test_matmul);
    return mq_check_run(s, tc);
}
