/* Cross-layer range equalization of Conv -> Conv pairs (quant/equalize.h). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/tensor_proto.h"
#include "quant/equalize.h"
#include "model_run.h"
#include "quant_builder.h"
#include "tmp_tree.h"

/* Depthwise 1x1 Conv (2 channels, channel 1 forty times louder) into a pointwise Conv (3 out). */
static const float W1[2] = {0.5f, 20.0f};
static const float B1[2] = {0.1f, -3.0f};
static const float W2[6] = {1.0f, 0.01f, -2.0f, 0.02f, 0.5f, -0.04f};

/* The one calibration sample: x = (1, 1), so the channels between the Convs are
   (W1 + B1) = (0.6, 17). */
static const double MID[2] = {0.6, 17.0};
static char calib[64];

/* dir/test_data_set_i/input_0.pb holding x = (x0, x1). */
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
    strcpy(calib, "/tmp/mq-equalize-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(calib));
    write_sample(calib, 0, 1.0f, 1.0f);
}

static void remove_calib(void)
{
    tt_remove(calib);
}

/* Built with the test's helpers, then loaded like a file; the built proto is freed. */
static struct mq_model *load(Onnx__ModelProto *m)
{
    struct mq_model *model = mr_reload(m);
    onnx__model_proto__free_unpacked(m, NULL);
    return model;
}

static struct mq_model *pair_model(int share_weight, int peek)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t dx[4] = {1, 2, 1, 1};
    qb_input(g, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, dx);
    qb_output(g, "y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    int64_t d1[4] = {2, 1, 1, 1}, db[1] = {2}, d2[4] = {3, 2, 1, 1};
    qb_init_f32(g, "w1", 4, d1, W1);
    qb_init_f32(g, "b1", 1, db, B1);
    qb_init_f32(g, "w2", 4, d2, W2);
    Onnx__NodeProto *dw = qb_node(g, "Conv", "dw", "x,w1,b1", "mid");
    qb_attr_int(dw, "group", 2);
    qb_node(g, "Conv", "pw", "mid,w2", "y");
    if (share_weight) {
        qb_node(g, "Conv", "other", "x,w1", "z");
        qb_output(g, "z", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    }
    if (peek) {
        qb_node(g, "Relu", "peek", "mid", "r");
        qb_output(g, "r", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    }
    return load(m);
}

static const float *values(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0) {
            const Onnx__TensorProto *t = g->initializer[i];
            return t->n_float_data ? t->float_data : (const float *)t->raw_data.data;
        }
    return NULL;
}

/* Measure on `dir` then apply, as quantize --calib does. */
static int equalize_from(struct mq_model *model, const char *dir, int *n, struct mq_error *err)
{
    struct mq_ranges maxima = {0};
    int rc = mq_quant_equalize_measure(model, dir, NULL, 1, &maxima, err);
    if (rc == MQ_OK)
        rc = mq_quant_equalize_apply(model, &maxima, n, err);
    mq_ranges_free(&maxima);
    return rc;
}

START_TEST(test_pair_equalized)
{
    struct mq_model *model = pair_model(0, 0);
    struct mq_error err;
    int n = -1;
    ck_assert_msg(equalize_from(model, calib, &n, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_int_eq(n, 1);
    const Onnx__GraphProto *g = model->proto->graph;
    const float *w1 = values(g, "w1"), *b1 = values(g, "b1"), *w2 = values(g, "w2");
    ck_assert_ptr_nonnull(w1);
    ck_assert_ptr_nonnull(w2);
    double ratio[2];
    for (int c = 0; c < 2; c++) {
        double s = W1[c] / w1[c];
        ck_assert(s > 0);
        /* The function computed is the same: the bias moves with its channel, and the second
           Conv takes the scale back. */
        ck_assert_double_eq_tol(b1[c] * s, B1[c], 1e-5);
        double r2 = 0;
        for (int o = 0; o < 3; o++) {
            ck_assert_double_eq_tol(w2[o * 2 + c] / s, W2[o * 2 + c], 1e-6);
            r2 = fmax(r2, fabs(w2[o * 2 + c]));
        }
        ratio[c] = MID[c] / s / r2;
    }
    /* Each channel's values and weights now span the same range (up to one common factor). */
    ck_assert_double_eq_tol(ratio[0], ratio[1], 1e-4 * ratio[0]);
    /* The loud channel got quieter between the two Convs: 28 times the other, now about 4. */
    double loud = MID[1] * w1[1] / W1[1], quiet = MID[0] * w1[0] / W1[0];
    ck_assert(loud / quiet < 6.0);
    mq_model_free(model);
}
END_TEST

/* A weight another node also reads cannot move: the pair is left alone. */
START_TEST(test_shared_weight_untouched)
{
    struct mq_model *model = pair_model(1, 0);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(equalize_from(model, calib, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert(memcmp(values(model->proto->graph, "w1"), W1, sizeof W1) == 0);
    ck_assert(memcmp(values(model->proto->graph, "w2"), W2, sizeof W2) == 0);
    /* Without samples (ranges loaded from a file) nothing is equalized either. */
    mq_model_free(model);
    model = pair_model(0, 0);
    ck_assert_int_eq(equalize_from(model, NULL, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert(memcmp(values(model->proto->graph, "w1"), W1, sizeof W1) == 0);
    mq_model_free(model);
}
END_TEST

/* Something between the two Convs (here a Relu) or a second reader of the tensor between them:
   no pair. */
START_TEST(test_no_pair_across_other_ops)
{
    struct mq_model *model = pair_model(0, 1);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(equalize_from(model, calib, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert(memcmp(values(model->proto->graph, "w1"), W1, sizeof W1) == 0);
    mq_model_free(model);
}
END_TEST

/* The maxima saved with the ranges and loaded again equalize to the same bits. */
START_TEST(test_saved_maxima_equalize_the_same)
{
    struct mq_model *measured = pair_model(0, 0), *loaded_model = pair_model(0, 0);
    struct mq_error err;
    struct mq_ranges maxima = {0}, loaded = {0};
    int n = -1;
    ck_assert_int_eq(mq_quant_equalize_measure(measured, calib, NULL, 1, &maxima, &err), MQ_OK);
    ck_assert_int_eq(maxima.n_channel_maxima, 1);
    ck_assert_int_eq(maxima.channel_maxima[0].channels, 2);
    ck_assert(fabs(maxima.channel_maxima[0].max[1] - MID[1]) < 1e-5);
    maxima.method = strdup("minmax");
    char path[128];
    snprintf(path, sizeof path, "%s/ranges.json", calib);
    ck_assert_msg(mq_ranges_save(&maxima, path, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mq_ranges_load(path, &loaded, &err) == MQ_OK, "%s", err.message);
    unlink(path);
    ck_assert_int_eq(mq_quant_equalize_apply(measured, &maxima, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(mq_quant_equalize_apply(loaded_model, &loaded, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    const char *names[3] = {"w1", "b1", "w2"};
    size_t sizes[3] = {sizeof W1, sizeof B1, sizeof W2};
    for (int k = 0; k < 3; k++)
        ck_assert(memcmp(values(measured->proto->graph, names[k]),
                         values(loaded_model->proto->graph, names[k]), sizes[k]) == 0);
    /* Merging a shard's equal maxima changes nothing; a different channel count is refused. */
    ck_assert_int_eq(mq_ranges_merge_channel_maxima(&loaded, &maxima, &err), MQ_OK);
    ck_assert_int_eq(loaded.n_channel_maxima, 1);
    ck_assert(loaded.channel_maxima[0].max[1] == maxima.channel_maxima[0].max[1]);
    double three[3] = {1, 2, 3};
    ck_assert_int_ne(mq_ranges_add_channel_maxima(&loaded, maxima.channel_maxima[0].name, 3,
                                                  three, &err), MQ_OK);
    mq_ranges_free(&maxima);
    mq_ranges_free(&loaded);
    mq_model_free(measured);
    mq_model_free(loaded_model);
}
END_TEST

/* Samples on several threads: the maxima of one thread, bit for bit. */
START_TEST(test_threads_measure_the_same_maxima)
{
    char dir[64];
    strcpy(dir, "/tmp/mq-equalize-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    enum { SAMPLES = 9 };
    for (int i = 0; i < SAMPLES; i++)
        write_sample(dir, i, 0.3f * (float)(i % 4) - 0.5f, 1.7f - 0.2f * (float)((i * 5) % 7));
    struct mq_error err;
    struct mq_ranges one = {0};
    struct mq_model *model = pair_model(0, 0);
    ck_assert_msg(mq_quant_equalize_measure(model, dir, NULL, 1, &one, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_int_eq(one.n_channel_maxima, 1);
    for (int jobs = 2; jobs <= 4; jobs++) {
        struct mq_ranges many = {0};
        ck_assert_msg(mq_quant_equalize_measure(model, dir, NULL, jobs, &many, &err) == MQ_OK,
                      "%s", err.message);
        ck_assert_int_eq(many.n_channel_maxima, 1);
        ck_assert_int_eq(many.channel_maxima[0].channels, one.channel_maxima[0].channels);
        ck_assert(memcmp(many.channel_maxima[0].max, one.channel_maxima[0].max,
                         (size_t)one.channel_maxima[0].channels * sizeof(double)) == 0);
        mq_ranges_free(&many);
    }
    /* Not the one-sample maxima: the other samples count. */
    ck_assert(one.channel_maxima[0].max[1] > MID[1] + 1.0);
    mq_ranges_free(&one);
    mq_model_free(model);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_equalize");
    TCase *tc = tcase_create("equalize");
    tcase_add_unchecked_fixture(tc, write_calib, remove_calib);
    tcase_add_test(tc, test_pair_equalized);
    tcase_add_test(tc, test_shared_weight_untouched);
    tcase_add_test(tc, test_no_pair_across_other_ops);
    tcase_add_test(tc, test_saved_maxima_equalize_the_same);
    tcase_add_test(tc, test_threads_measure_the_same_maxima);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
