/* Cross-layer equalization measured in the calibration pass (quant/equalize_fold.h): the same
   graph and maxima as a pass of its own, and the ranges of the equalized graph. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/calibrate.h"
#include "calib/driver.h"
#include "interp/plan.h"
#include "model/tensor_proto.h"
#include "quant/equalize.h"
#include "quant/equalize_fold.h"
#include "model_run.h"
#include "quant_builder.h"
#include "tmp_tree.h"

/* Depthwise 1x1 Conv (2 channels, channel 1 forty times louder) into a pointwise Conv (3 out),
   then a Relu: "mid" is the tensor between the pair, "y" and "r" come after it. */
static const float W1[2] = {0.5f, 20.0f};
static const float B1[2] = {0.1f, -3.0f};
static const float W2[6] = {1.0f, 0.01f, -2.0f, 0.02f, 0.5f, -0.04f};
static char calib[64];
enum { SAMPLES = 9 };

static void write_sample(const char *dir, int i, float x0, float x1)
{
    struct mq_tensor x;
    struct mq_error err;
    int64_t dims[4] = {1, 2, 1, 1};
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, dims, "x", &err), MQ_OK);
    ((float *)x.data)[0] = x0;
    ((float *)x.data)[1] = x1;
    tt_write_sample(dir, i, "x", &x);
    mq_tensor_free(&x);
}

static void write_calib(void)
{
    strcpy(calib, "/tmp/mq-eqfold-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(calib));
    for (int i = 0; i < SAMPLES; i++)
        write_sample(calib, i, 0.3f * (float)(i % 4) - 0.5f, 1.7f - 0.2f * (float)((i * 5) % 7));
}

static void remove_calib(void)
{
    tt_remove(calib);
}

static struct mq_model *pair_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t dx[4] = {1, 2, 1, 1};
    qb_input(g, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, dx);
    qb_output(g, "r", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    int64_t d1[4] = {2, 1, 1, 1}, db[1] = {2}, d2[4] = {3, 2, 1, 1};
    qb_init_f32(g, "w1", 4, d1, W1);
    qb_init_f32(g, "b1", 1, db, B1);
    qb_init_f32(g, "w2", 4, d2, W2);
    Onnx__NodeProto *dw = qb_node(g, "Conv", "dw", "x,w1,b1", "mid");
    qb_attr_int(dw, "group", 2);
    qb_node(g, "Conv", "pw", "mid,w2", "y");
    qb_node(g, "Relu", "relu", "y", "r");
    struct mq_model *model = mr_reload(m);
    onnx__model_proto__free_unpacked(m, NULL);
    return model;
}

/* Calibrates (minmax) every float tensor of `model` on the samples, with `extra` (may be NULL). */
static void calibrate(struct mq_model *model, const struct mq_calib_extra *extra, int jobs,
                      struct mq_ranges *out)
{
    struct mq_error err;
    struct mq_plan *plan = NULL;
    ck_assert_msg(mq_plan_build(model, &plan, &err) == MQ_OK, "%s", err.message);
    struct mq_calib_source *source = NULL;
    ck_assert_msg(mq_calib_source_open_for_plan(calib, plan, 0, &source, &err) == MQ_OK, "%s",
                  err.message);
    struct mq_name_list names = {0};
    const char *observe[] = {"x", "mid", "y", "r"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(mq_name_list_add(&names, observe[i], &err), MQ_OK);
    mq_name_list_finish(&names);
    struct mq_calib_options o;
    mq_calib_options_init(&o);
    o.jobs = jobs;
    const struct mq_calib_extra *extras[1] = {extra};
    o.extra = extras;
    o.n_extra = extra ? 1 : 0;
    ck_assert_msg(mq_calibrate(plan, source, &names, &o, out, &err) == MQ_OK, "%s", err.message);
    mq_name_list_free(&names);
    mq_calib_source_free(source);
    mq_plan_free(plan);
}

static const Onnx__TensorProto *initializer(const struct mq_model *m, const char *name)
{
    const Onnx__GraphProto *g = m->proto->graph;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

static void assert_close(float a, float b)
{
    ck_assert_msg(fabsf(a - b) <= 1e-6f * fmaxf(fabsf(a), fabsf(b)), "%.9g vs %.9g", a, b);
}

/* Channel c divided by s[c]: the smallest lo/s to the largest hi/s; empty channels skipped. */
START_TEST(test_scaled_range)
{
    const float lo[3] = {-1.0f, 0.5f, INFINITY}, hi[3] = {4.0f, 1.0f, -INFINITY};
    const double s[3] = {2.0, 0.25, 1.0};
    float out_lo = 0, out_hi = 0;
    ck_assert_int_eq(mq_quant_equalize_scaled_range(3, lo, hi, s, &out_lo, &out_hi), 1);
    ck_assert(out_lo == -0.5f);
    ck_assert(out_hi == 4.0f);
    /* a channel's minimum may end up the largest value: 8 / 0.5 */
    const float lo2[2] = {8.0f, -1.0f}, hi2[2] = {9.0f, 1.0f};
    const double s2[2] = {0.5, 4.0};
    ck_assert_int_eq(mq_quant_equalize_scaled_range(2, lo2, hi2, s2, &out_lo, &out_hi), 1);
    ck_assert(out_lo == -0.25f);
    ck_assert(out_hi == 18.0f);
    ck_assert_int_eq(mq_quant_equalize_scaled_range(1, lo + 2, hi + 2, s, &out_lo, &out_hi), 0);
}
END_TEST

/* The fold gives the graph and maxima of a measure pass bit for bit, and the ranges that
   calibrating the equalized graph gives up to float rounding, on any number of threads. */
START_TEST(test_fold_matches_measure_pass)
{
    struct mq_error err;
    /* as before: a pass of its own, equalized, then calibrated */
    struct mq_model *measured = pair_model();
    struct mq_ranges maxima = {0}, want = {0};
    int n_measured = 0;
    ck_assert_msg(mq_quant_equalize_measure(measured, calib, NULL, 1, &maxima, &err) == MQ_OK,
                  "%s", err.message);
    ck_assert_int_eq(mq_quant_equalize_apply(measured, &maxima, &n_measured, &err), MQ_OK);
    ck_assert_int_eq(n_measured, 1);
    calibrate(measured, NULL, 1, &want);
    for (int jobs = 1; jobs <= 3; jobs++) {
        struct mq_model *folded = pair_model();
        struct mq_quant_equalize_fold *fold = NULL;
        ck_assert_int_eq(mq_quant_equalize_fold_new(folded, &fold, &err), MQ_OK);
        ck_assert_ptr_nonnull(fold);
        struct mq_ranges got = {0}, got_maxima = {0};
        calibrate(folded, mq_quant_equalize_fold_extra(fold), jobs, &got);
        /* before finishing: the unequalized graph's mid, louder than the equalized one's */
        const struct mq_tensor_range *mid = mq_ranges_find(&got, "mid");
        ck_assert_ptr_nonnull(mid);
        ck_assert(mid->max > 2.0f * mq_ranges_find(&want, "mid")->max);
        int n = 0;
        ck_assert_msg(mq_quant_equalize_fold_finish(fold, folded, &got, &got_maxima, &n, &err) ==
                          MQ_OK,
                      "%s", err.message);
        mq_quant_equalize_fold_free(fold);
        ck_assert_int_eq(n, 1);
        ck_assert_int_eq(got_maxima.n_channel_maxima, 1);
        ck_assert_str_eq(got_maxima.channel_maxima[0].name, "mid");
        ck_assert(memcmp(got_maxima.channel_maxima[0].max, maxima.channel_maxima[0].max,
                         2 * sizeof(double)) == 0);
        const char *weights[] = {"w1", "b1", "w2"};
        for (int k = 0; k < 3; k++) {
            const Onnx__TensorProto *a = initializer(measured, weights[k]);
            const Onnx__TensorProto *b = initializer(folded, weights[k]);
            ck_assert(a->raw_data.len == b->raw_data.len && a->n_float_data == b->n_float_data);
            ck_assert(!a->raw_data.len ||
                      memcmp(a->raw_data.data, b->raw_data.data, a->raw_data.len) == 0);
            ck_assert(!a->n_float_data ||
                      memcmp(a->float_data, b->float_data, a->n_float_data * sizeof(float)) == 0);
        }
        ck_assert_int_eq(got.n, want.n);
        for (int i = 0; i < want.n; i++) {
            const struct mq_tensor_range *w = &want.items[i], *g = &got.items[i];
            ck_assert_str_eq(w->name, g->name);
            assert_close(w->min, g->min);
            assert_close(w->max, g->max);
            assert_close(w->observed_min, g->observed_min);
            assert_close(w->observed_max, g->observed_max);
            ck_assert_uint_eq(w->count, g->count);
        }
        mq_ranges_free(&got);
        mq_ranges_free(&got_maxima);
        mq_model_free(folded);
    }
    mq_ranges_free(&want);
    mq_ranges_free(&maxima);
    mq_model_free(measured);
}
END_TEST

/* No pair: nothing to measure, no extra work. */
START_TEST(test_no_pair_no_fold)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t dx[4] = {1, 2, 1, 1};
    qb_input(g, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, dx);
    qb_output(g, "r", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    qb_node(g, "Relu", "relu", "x", "r");
    struct mq_model *model = mr_reload(m);
    onnx__model_proto__free_unpacked(m, NULL);
    struct mq_quant_equalize_fold *fold = (struct mq_quant_equalize_fold *)1;
    struct mq_error err;
    ck_assert_int_eq(mq_quant_equalize_fold_new(model, &fold, &err), MQ_OK);
    ck_assert_ptr_null(fold);
    mq_model_free(model);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_equalize_fold");
    TCase *tc = tcase_create("equalize_fold");
    tcase_add_unchecked_fixture(tc, write_calib, remove_calib);
    tcase_add_test(tc, test_scaled_range);
    tcase_add_test(tc, test_fold_matches_measure_pass);
    tcase_add_test(tc, test_no_pair_no_fold);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
