/*
 * The statistics pass over the calibration samples (quant/sample_stats.c) and the
 * two rules of the rewrite that use it: the input means of Conv and Gemm
 * against a brute-force computation (strides, pads, dilations, groups,
 * auto_pad, 1-D and 2-D; the tap sums alone: test_quant_conv_tap_sums.c), bias correction, and activations left float
 * because a quiet sample would drown in the quantization step; the same
 * statistics gathered on the calibration pass, settled by the SQNR floor or
 * measured again, deciding as the whole second pass does.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/calibrate.h"
#include "calib/observer.h"
#include "calib/reader.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "quant/rounding_sums.h"
#include "quant/sample_stats.h"
#include "quant/sqnr_bound.h"
#include "model_run.h"
#include "quant_builder.h"
#include "tmp_tree.h"
#include "report/report.h"

static char root[64];
static struct mq_error err;

static void setup(void)
{
    strcpy(root, "/tmp/mq-qstats-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
    tt_remove(root);
}

/* Sample s of the calibration folder: one input named `name`. */
static void write_sample(int s, const char *name, const struct mq_tensor *t)
{
    tt_write_sample(root, s, name, t);
}

static struct mq_tensor tensor(int rank, const int64_t *dims)
{
    struct mq_tensor t;
    ck_assert_int_eq(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, rank, dims, "t", &err), MQ_OK);
    return t;
}


/* What a quantize run needs, set up on a model and the samples in root. */
struct env {
    struct mq_model *model;
    struct mq_plan *plan;
    struct mq_calib_source *source;
    struct mq_selection sel;
    char **names;
    int n_names;
    struct mq_ranges ranges;
    struct mq_quant_stats *stats;
    struct mq_quant_options o;
};

static void env_open(struct env *e, const Onnx__ModelProto *m)
{
    memset(e, 0, sizeof *e);
    e->model = mr_reload(m);
    ck_assert_msg(mq_plan_build(e->model, &e->plan, &err) == MQ_OK, "%s", err.message);
    const Onnx__ValueInfoProto *inputs[1] = {mq_plan_input(e->plan, 0)};
    ck_assert_msg(mq_calib_source_open(root, inputs, 1, 0, &e->source, &err) == MQ_OK, "%s",
                  err.message);
    struct mq_select_options so = {0};
    ck_assert_int_eq(mq_select_nodes(e->model->proto, &so, &e->sel, &err), MQ_OK);
    mq_quant_options_default(&e->o);
    ck_assert_int_eq(mq_qdq_tensors_to_observe(e->model->proto, &e->sel, &e->o, &e->names,
                                               &e->n_names, &err),
                     MQ_OK);
    struct mq_name_list list = {0};
    for (int i = 0; i < e->n_names; i++)
        ck_assert_int_eq(mq_name_list_add(&list, e->names[i], &err), MQ_OK);
    mq_name_list_finish(&list);
    struct mq_calib_options co;
    mq_calib_options_init(&co);
    co.jobs = 1;
    ck_assert_msg(mq_calibrate(e->plan, e->source, &list, &co, &e->ranges, &err) == MQ_OK, "%s",
                  err.message);
    mq_name_list_free(&list);
    ck_assert_msg(mq_quant_stats_collect(e->plan, e->source, e->model->proto, &e->sel, e->names,
                                         e->n_names, &e->ranges, &e->o, 1, &e->stats, &err) == MQ_OK,
                  "%s", err.message);
    e->o.stats = e->stats;
}

static void env_close(struct env *e)
{
    mq_quant_stats_free(e->stats);
    mq_ranges_free(&e->ranges);
    mq_string_list_free(e->names, e->n_names);
    mq_selection_free(&e->sel);
    mq_calib_source_free(e->source);
    mq_plan_free(e->plan);
    mq_model_free(e->model);
}

static float sample_value(int s, int64_t i) { return sinf((float)(s * 131 + i) * 0.37f) + 0.5f; }

/* ------------------------------------------------------------ input means */

struct conv_case {
    int spatial;
    int64_t in[3];
    int64_t channels, group, out_channels;
    int64_t kernel[3], strides[3], dilations[3], pads[6];
    const char *auto_pad;
};

/* Brute force: the mean over samples, batch and output positions of what each tap reads. */
static double brute_mean(const struct conv_case *cc, const struct mq_tensor *xs, int n_samples,
                         int64_t c, const int64_t *tap)
{
    int k = cc->spatial;
    int64_t outs[3], pb[3];
    for (int d = 0; d < k; d++) {
        int64_t span = cc->dilations[d] * (cc->kernel[d] - 1) + 1;
        if (cc->auto_pad && strcmp(cc->auto_pad, "SAME_UPPER") == 0) {
            outs[d] = (cc->in[d] + cc->strides[d] - 1) / cc->strides[d];
            int64_t total = (outs[d] - 1) * cc->strides[d] + span - cc->in[d];
            pb[d] = total > 0 ? total / 2 : 0;
        } else {
            pb[d] = cc->pads[d];
            outs[d] = (cc->in[d] + cc->pads[d] + cc->pads[k + d] - span) / cc->strides[d] + 1;
        }
    }
    double sum = 0.0, count = 0.0;
    for (int s = 0; s < n_samples; s++) {
        const struct mq_tensor *x = &xs[s];
        int64_t size = 1;
        for (int d = 0; d < k; d++)
            size *= cc->in[d];
        int64_t total_pos = 1;
        for (int d = 0; d < k; d++)
            total_pos *= outs[d];
        for (int64_t n = 0; n < x->dims[0]; n++)
            for (int64_t p = 0; p < total_pos; p++) {
                int64_t rest = p, idx = 0, ok = 1;
                int64_t pos[3];
                for (int d = k - 1; d >= 0; d--) {
                    pos[d] = rest % outs[d];
                    rest /= outs[d];
                }
                for (int d = 0; d < k; d++) {
                    int64_t j = pos[d] * cc->strides[d] + tap[d] * cc->dilations[d] - pb[d];
                    ok = ok && j >= 0 && j < cc->in[d];
                    idx = idx * cc->in[d] + j;
                }
                if (ok)
                    sum += ((const float *)x->data)[(n * cc->channels + c) * size + idx];
                count += 1.0;
            }
    }
    return sum / count;
}

static void check_conv_means(const struct conv_case *cc)
{
    int k = cc->spatial;
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[5] = {2, cc->channels}, wd[5] = {cc->out_channels, cc->channels / cc->group};
    int64_t wcount = wd[0] * wd[1];
    for (int d = 0; d < k; d++) {
        xd[2 + d] = cc->in[d];
        wd[2 + d] = cc->kernel[d];
        wcount *= cc->kernel[d];
    }
    float *w = malloc((size_t)wcount * sizeof *w);
    for (int64_t i = 0; i < wcount; i++)
        w[i] = (float)((i * 7) % 13) / 13.0f - 0.4f;
    qb_input(g, "x", 1, k + 2, xd);
    qb_init_f32(g, "w", k + 2, wd, w);
    free(w);
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", "x,w", "y");
    qb_attr_int(conv, "group", cc->group);
    qb_attr_ints(conv, "strides", k, cc->strides);
    qb_attr_ints(conv, "dilations", k, cc->dilations);
    if (cc->auto_pad)
        qb_attr_string(conv, "auto_pad", cc->auto_pad);
    else
        qb_attr_ints(conv, "pads", 2 * k, cc->pads);
    qb_output(g, "y", 1);

    struct mq_tensor xs[2];
    for (int s = 0; s < 2; s++) {
        xs[s] = tensor(k + 2, xd);
        for (int64_t i = 0; i < xs[s].count; i++)
            ((float *)xs[s].data)[i] = sample_value(s, i);
        write_sample(s, "x", &xs[s]);
    }
    struct env e;
    env_open(&e, m);
    int64_t n_ch = 0, taps = 0;
    const double *means = mq_quant_stats_input_means(e.stats, "x", "w", &n_ch, &taps);
    ck_assert_ptr_nonnull(means);
    ck_assert_int_eq(n_ch, cc->channels);
    int64_t want_taps = 1;
    for (int d = 0; d < k; d++)
        want_taps *= cc->kernel[d];
    ck_assert_int_eq(taps, want_taps);
    for (int64_t c = 0; c < n_ch; c++)
        for (int64_t t = 0; t < taps; t++) {
            int64_t tap[3], rest = t;
            for (int d = k - 1; d >= 0; d--) {
                tap[d] = rest % cc->kernel[d];
                rest /= cc->kernel[d];
            }
            double want = brute_mean(cc, xs, 2, c, tap);
            ck_assert_msg(fabs(means[c * taps + t] - want) < 1e-9, "channel %lld tap %lld: %.12g vs %.12g",
                          (long long)c, (long long)t, means[c * taps + t], want);
        }
    /* A pair the model does not have. */
    ck_assert_ptr_null(mq_quant_stats_input_means(e.stats, "y", "w", &n_ch, &taps));
    /* Equalization dividing channel c of x by (c + 2) divides its means alike. */
    double *before = malloc((size_t)(n_ch * taps) * sizeof *before);
    double *scales = malloc((size_t)(n_ch + 1) * sizeof *scales);
    memcpy(before, means, (size_t)(n_ch * taps) * sizeof *before);
    for (int64_t c = 0; c <= n_ch; c++)
        scales[c] = (double)c + 2.0;
    ck_assert_int_eq(mq_quant_stats_rescale(e.stats, "x", n_ch, scales, &err), MQ_OK);
    means = mq_quant_stats_input_means(e.stats, "x", "w", &n_ch, &taps);
    ck_assert_ptr_nonnull(means);
    for (int64_t c = 0; c < n_ch; c++)
        for (int64_t t = 0; t < taps; t++)
            ck_assert_msg(means[c * taps + t] == before[c * taps + t] / scales[c],
                          "rescaled channel %lld tap %lld", (long long)c, (long long)t);
    /* scales of another layout: the node forgets its means rather than use wrong ones */
    ck_assert_int_eq(mq_quant_stats_rescale(e.stats, "x", n_ch + 1, scales, &err), MQ_OK);
    ck_assert_ptr_null(mq_quant_stats_input_means(e.stats, "x", "w", &n_ch, &taps));
    free(before);
    free(scales);
    env_close(&e);
    for (int s = 0; s < 2; s++)
        mq_tensor_free(&xs[s]);
    onnx__model_proto__free_unpacked(m, NULL);
}

START_TEST(test_conv2d_means)
{
    struct conv_case cc = {2, {5, 6}, 3, 1, 4, {3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 1}, NULL};
    check_conv_means(&cc);
}
END_TEST

START_TEST(test_depthwise_same_upper_means)
{
    struct conv_case cc = {2, {7, 4}, 4, 4, 4, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER"};
    check_conv_means(&cc);
}
END_TEST

START_TEST(test_conv1d_grouped_means)
{
    struct conv_case cc = {1, {9}, 4, 2, 6, {3}, {2}, {1}, {1, 1}, NULL};
    check_conv_means(&cc);
}
END_TEST

START_TEST(test_gemm_means)
{
    /* A is [K=3, M=4] with transA: the means are per column of A' = per row of A. */
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t ad[2] = {3, 4}, bd[2] = {2, 3}, cd[1] = {2};
    const float bw[6] = {0.5f, -1, 0.25f, 1, 0.75f, -0.5f}, bias[2] = {0.1f, -0.1f};
    qb_input(g, "a", 1, 2, ad);
    qb_init_f32(g, "b", 2, bd, bw);
    qb_init_f32(g, "c", 1, cd, bias);
    Onnx__NodeProto *gemm = qb_node(g, "Gemm", "gemm", "a,b,c", "y");
    qb_attr_int(gemm, "transA", 1);
    qb_attr_int(gemm, "transB", 1);
    qb_output(g, "y", 1);
    struct mq_tensor xs[2];
    for (int s = 0; s < 2; s++) {
        xs[s] = tensor(2, ad);
        for (int64_t i = 0; i < 12; i++)
            ((float *)xs[s].data)[i] = sample_value(s, i);
        write_sample(s, "a", &xs[s]);
    }
    struct env e;
    env_open(&e, m);
    int64_t n_ch, taps;
    const double *means = mq_quant_stats_input_means(e.stats, "a", "b", &n_ch, &taps);
    ck_assert_ptr_nonnull(means);
    ck_assert_int_eq(n_ch, 3);
    ck_assert_int_eq(taps, 1);
    for (int k = 0; k < 3; k++) {
        double want = 0.0;
        for (int s = 0; s < 2; s++)
            for (int r = 0; r < 4; r++)
                want += ((float *)xs[s].data)[k * 4 + r];
        ck_assert(fabs(means[k] - want / 8.0) < 1e-12);
    }
    env_close(&e);
    for (int s = 0; s < 2; s++)
        mq_tensor_free(&xs[s]);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* ------------------------------------------------------------ the rules */

/* x [1,2,6] -> Conv1d (3 filters, kernel 3, pad 1, bias) -> y. */
static Onnx__ModelProto *conv1d_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[3] = {1, 2, 6}, wd[3] = {3, 2, 3}, bd[1] = {3};
    float w[18], b[3] = {0.05f, -0.1f, 0.2f};
    /* Weights that round badly at 8 bits: most sit between two steps. */
    for (int i = 0; i < 18; i++)
        w[i] = (i == 0 || i == 6 || i == 12 ? 1.0f : 0.0f) + 0.0037f * (float)((i * 5) % 7) + 0.0019f;
    qb_input(g, "x", 1, 3, xd);
    qb_init_f32(g, "w", 3, wd, w);
    qb_init_f32(g, "b", 1, bd, b);
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", "x,w,b", "y");
    int64_t pads[2] = {1, 1};
    qb_attr_ints(conv, "pads", 2, pads);
    qb_output(g, "y", 1);
    return m;
}

static void run(const Onnx__ModelProto *m, const struct mq_tensor *x, struct mq_tensor *y)
{
    struct mq_model *model = mr_reload(m);
    struct mq_plan *plan;
    ck_assert_msg(mq_plan_build(model, &plan, &err) == MQ_OK, "%s", err.message);
    memset(y, 0, sizeof *y);
    ck_assert_msg(mq_plan_run(plan, x, 1, y, 1, NULL, &err) == MQ_OK, "%s", err.message);
    mq_plan_free(plan);
    mq_model_free(model);
}

static const char *bias_note(const struct mq_quant_result *r)
{
    for (int i = 0; i < r->n_tensors; i++)
        if (r->tensors[i].role == MQ_QT_BIAS)
            return r->tensors[i].note ? r->tensors[i].note : "";
    return NULL;
}

START_TEST(test_bias_correction_removes_mean_error)
{
    /* Inputs with a large mean (around 20): the weights' rounding shifts every output. */
    int64_t xd[3] = {1, 2, 6};
    struct mq_tensor xs[4];
    for (int s = 0; s < 4; s++) {
        xs[s] = tensor(3, xd);
        for (int64_t i = 0; i < 12; i++)
            ((float *)xs[s].data)[i] = 20.0f + sample_value(s, i);
        write_sample(s, "x", &xs[s]);
    }
    Onnx__ModelProto *fp = conv1d_model();
    double err_mean[2][3] = {{0}};
    for (int corrected = 0; corrected < 2; corrected++) {
        Onnx__ModelProto *m = conv1d_model();
        struct env e;
        env_open(&e, m);
        e.o.bias_correction = corrected;
        struct mq_quant_result res;
        ck_assert_msg(mq_qdq_rewrite(e.model->proto, &e.sel, &e.ranges, &e.o, &res, &err) ==
                          MQ_OK,
                      "%s", err.message);
        const char *note = bias_note(&res);
        ck_assert_ptr_nonnull(note);
        ck_assert_int_eq(strstr(note, "corrected for the weights' rounding") != NULL, corrected);
        for (int s = 0; s < 4; s++) {
            struct mq_tensor yq, yf;
            run(e.model->proto, &xs[s], &yq);
            run(fp, &xs[s], &yf);
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 6; p++)
                    err_mean[corrected][c] +=
                        ((float *)yq.data)[c * 6 + p] - ((float *)yf.data)[c * 6 + p];
            mq_tensor_free(&yq);
            mq_tensor_free(&yf);
        }
        mq_quant_result_free(&res);
        env_close(&e);
        onnx__model_proto__free_unpacked(m, NULL);
    }
    /* The mean error per channel shrinks well below what plain rounding leaves. */
    double before = 0, after = 0;
    for (int c = 0; c < 3; c++) {
        before += fabs(err_mean[0][c]) / 24.0;
        after += fabs(err_mean[1][c]) / 24.0;
    }
    ck_assert_msg(before > 0.01, "rounding error too small to test: %g", before);
    ck_assert_msg(after < before / 4, "mean error %g with correction, %g without", after, before);
    for (int s = 0; s < 4; s++)
        mq_tensor_free(&xs[s]);
    onnx__model_proto__free_unpacked(fp, NULL);
}
END_TEST

START_TEST(test_quiet_sample_stays_float)
{
    /* Sample 1 is 1000 times quieter than sample 0: one scale cannot serve both. */
    int64_t xd[3] = {1, 2, 6};
    for (int s = 0; s < 2; s++) {
        struct mq_tensor x = tensor(3, xd);
        for (int64_t i = 0; i < 12; i++)
            ((float *)x.data)[i] = (s ? 0.001f : 1.0f) * (sample_value(s, i) - 0.5f);
        write_sample(s, "x", &x);
        mq_tensor_free(&x);
    }
    for (int rule = 0; rule < 2; rule++) {
        Onnx__ModelProto *m = conv1d_model();
        struct env e;
        env_open(&e, m);
        int64_t sample = -1;
        double db = mq_quant_stats_worst_sqnr(e.stats, "x", &sample);
        ck_assert_int_eq(sample, 1);
        ck_assert_msg(db < 5.0, "worst SQNR %g", db);
        ck_assert_msg(mq_quant_stats_worst_sqnr(e.stats, "y", NULL) > 10.0, "y: %g",
                      mq_quant_stats_worst_sqnr(e.stats, "y", NULL));
        ck_assert(isnan(mq_quant_stats_worst_sqnr(e.stats, "nothing", NULL)));
        e.o.min_sample_sqnr_db = rule ? 10.0 : 0.0;
        struct mq_quant_result res;
        ck_assert_msg(mq_qdq_rewrite(e.model->proto, &e.sel, &e.ranges, &e.o, &res, &err) ==
                          MQ_OK,
                      "%s", err.message);
        int x_float = 0;
        for (int i = 0; i < res.n_skipped; i++)
            if (strcmp(res.skipped[i].name, "x") == 0) {
                x_float = 1;
                ck_assert_ptr_nonnull(strstr(res.skipped[i].reason, "on calibration sample 1"));
            }
        ck_assert_int_eq(x_float, rule);
        /* The Conv keeps int8 weights either way; its data input is float under the rule. */
        const Onnx__GraphProto *g = e.model->proto->graph;
        const Onnx__NodeProto *conv = NULL;
        for (size_t i = 0; i < g->n_node; i++)
            if (strcmp(mq_str(g->node[i]->name), "conv") == 0)
                conv = g->node[i];
        ck_assert_ptr_nonnull(conv);
        ck_assert_str_eq(conv->input[0], rule ? "x" : "x_dequantized");
        ck_assert_str_eq(conv->input[1], "w_dequantized");
        if (rule) {
            /* The report says why, and what the pass measured. */
            struct mq_report rep;
            memset(&rep, 0, sizeof rep);
            rep.input_path = "in.onnx";
            rep.output_path = "out.onnx";
            rep.profile = "ort-cpu";
            rep.options = &e.o;
            rep.selection = &e.sel;
            rep.result = &res;
            rep.ranges = &e.ranges;
            rep.calibration_source = "calib";
            char *text = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&text, &len);
            ck_assert_int_eq(mq_report_write_json(f, &rep), 0);
            fclose(f);
            ck_assert_ptr_nonnull(strstr(text, "\"statistics_pass\": true"));
            ck_assert_ptr_nonnull(strstr(text, "\"min_sample_sqnr_db\": 10"));
            ck_assert_ptr_nonnull(strstr(text, "\"worst_sample_sqnr_db\": "));
            free(text);
            text = NULL;
            f = open_memstream(&text, &len);
            mq_report_print_summary(f, &rep);
            fclose(f);
            ck_assert_ptr_nonnull(strstr(text, "partly float conv (Conv): 'x' stays float"));
            ck_assert_ptr_null(strstr(text, "no calibration samples to read again"));
            free(text);
        }
        mq_quant_result_free(&res);
        env_close(&e);
        onnx__model_proto__free_unpacked(m, NULL);
    }
}
END_TEST

/* Samples on several threads: the same doubles as on one, and the lowest failing sample. */
START_TEST(test_threads_give_the_same_doubles)
{
    int64_t xd[3] = {1, 2, 6};
    for (int s = 0; s < 11; s++) {
        struct mq_tensor x = tensor(3, xd);
        for (int64_t i = 0; i < 12; i++)
            ((float *)x.data)[i] = (1.0f + (float)(s % 4) * 0.7f) * (sample_value(s, i) - 0.3f);
        write_sample(s, "x", &x);
        mq_tensor_free(&x);
    }
    Onnx__ModelProto *m = conv1d_model();
    struct env e;
    env_open(&e, m);
    int64_t n_ch = 0, taps = 0, n2 = 0, t2 = 0;
    const double *one = mq_quant_stats_input_means(e.stats, "x", "w", &n_ch, &taps);
    ck_assert_ptr_nonnull(one);
    for (int jobs = 2; jobs <= 4; jobs++) {
        struct mq_quant_stats *other = NULL;
        ck_assert_msg(mq_quant_stats_collect(e.plan, e.source, e.model->proto, &e.sel, e.names,
                                             e.n_names, &e.ranges, &e.o, jobs, &other, &err) ==
                          MQ_OK,
                      "%s", err.message);
        const double *many = mq_quant_stats_input_means(other, "x", "w", &n2, &t2);
        ck_assert_ptr_nonnull(many);
        ck_assert_int_eq(n2 * t2, n_ch * taps);
        ck_assert_int_eq(memcmp(one, many, (size_t)(n_ch * taps) * sizeof *one), 0);
        const char *acts[2] = {"x", "y"};
        for (int a = 0; a < 2; a++) {
            int64_t s1 = -1, s2 = -2;
            double d1 = mq_quant_stats_worst_sqnr(e.stats, acts[a], &s1);
            double d2 = mq_quant_stats_worst_sqnr(other, acts[a], &s2);
            ck_assert_int_eq(memcmp(&d1, &d2, sizeof d1), 0);
            ck_assert_int_eq(s1, s2);
        }
        mq_quant_stats_free(other);
    }
    /* Samples 4 and 7 of the wrong size: sample 4's error, however many threads. */
    char path[256];
    int64_t bad_dims[3] = {1, 2, 5};
    struct mq_tensor bad = tensor(3, bad_dims);
    for (int s = 4; s <= 7; s += 3) {
        snprintf(path, sizeof path, "%s/test_data_set_%d/input_0.pb", root, s);
        ck_assert_int_eq(mq_tensor_write_pb(path, &bad, "x", &err), MQ_OK);
    }
    mq_tensor_free(&bad);
    for (int jobs = 1; jobs <= 4; jobs++) {
        struct mq_quant_stats *other = NULL;
        ck_assert_int_ne(mq_quant_stats_collect(e.plan, e.source, e.model->proto, &e.sel,
                                                e.names, e.n_names, &e.ranges, &e.o, jobs,
                                                &other, &err),
                         MQ_OK);
        ck_assert_ptr_null(other);
        ck_assert_msg(strstr(err.message, "sample 4 ") != NULL, "jobs %d: %s", jobs,
                      err.message);
    }
    env_close(&e);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* The lanes one value at a time, as rounding_sums.h specifies them. */
static void rounding_sums_by_hand(const float *x, int64_t n, float scale, float zero, float qmin,
                                  float qmax, double *signal, double *noise)
{
    for (int64_t i = 0; i < n; i++) {
        float v = isfinite(x[i]) ? x[i] : 0.0f;
        float q = nearbyintf(v / scale) + zero; /* round half to even */
        q = q < qmin ? qmin : q > qmax ? qmax : q;
        float back = (q - zero) * scale;
        double dv = v, e = (double)back - dv;
        double vv = dv * dv, ee = e * e;
        signal[i % MQ_ROUNDING_LANES] += vv;
        noise[i % MQ_ROUNDING_LANES] += ee;
    }
}

START_TEST(test_rounding_sums_match_one_value_at_a_time)
{
    enum { N = 203 };
    float x[N] = {0};
    for (int n = 0; n <= N; n += (n < 40 ? 1 : 17)) {
        for (int i = 0; i < n; i++)
            x[i] = sinf((float)i * 1.3f) * 9.0f + (i % 11 == 0 ? 400.0f : 0.0f);
        if (n > 5) {
            x[1] = NAN;
            x[n / 2] = -INFINITY;
            x[n - 2] = 0.75f * 0.05f; /* a tie: rounds to even */
            x[n - 3] = -1e30f;        /* far outside the range: clamps */
        }
        double s1[MQ_ROUNDING_LANES] = {0}, n1[MQ_ROUNDING_LANES] = {0};
        double s2[MQ_ROUNDING_LANES] = {0}, n2[MQ_ROUNDING_LANES] = {0};
        mq_quant_rounding_sums(x, n, 0.05f, 3.0f, -128.0f, 127.0f, s1, n1);
        rounding_sums_by_hand(x, n, 0.05f, 3.0f, -128.0f, 127.0f, s2, n2);
        ck_assert_msg(memcmp(s1, s2, sizeof s1) == 0 && memcmp(n1, n2, sizeof n1) == 0,
                      "n %d: signal %.17g vs %.17g, noise %.17g vs %.17g", n, s1[0], s2[0],
                      n1[0], n2[0]);
    }
}
END_TEST

/* ------------------------------------------------ gathered on the calibration pass */

/* Calibration on e's samples with the statistics gathered on its way, settled, and the
   undecided activations measured: what quantize does. */
static struct mq_quant_stats *stats_on_calibration(struct env *e, int jobs, int *n_undecided)
{
    struct mq_quant_stats *s = NULL;
    ck_assert_msg(mq_quant_stats_prepare(e->model->proto, &e->sel, e->names, e->n_names, &e->o,
                                         &s, &err) == MQ_OK,
                  "%s", err.message);
    struct mq_name_list list = {0};
    for (int i = 0; i < e->n_names; i++)
        ck_assert_int_eq(mq_name_list_add(&list, e->names[i], &err), MQ_OK);
    mq_name_list_finish(&list);
    struct mq_calib_options co;
    mq_calib_options_init(&co);
    co.jobs = jobs;
    co.extra = mq_quant_stats_extra(s);
    co.n_extra = 1;
    struct mq_ranges ranges;
    ck_assert_msg(mq_calibrate(e->plan, e->source, &list, &co, &ranges, &err) == MQ_OK, "%s",
                  err.message);
    mq_name_list_free(&list);
    ck_assert_msg(mq_quant_stats_settle(s, &ranges, &e->o, n_undecided, &err) == MQ_OK, "%s",
                  err.message);
    if (*n_undecided)
        ck_assert_msg(mq_quant_stats_measure_undecided(s, e->plan, e->source, jobs, &err) ==
                          MQ_OK,
                      "%s", err.message);
    mq_ranges_free(&ranges);
    return s;
}

/* Whether the rewrite of a fresh copy of m, with `stats`, leaves x float. */
static int rewrite_keeps_x_float(const Onnx__ModelProto *m, const struct env *e,
                                 const struct mq_quant_stats *stats)
{
    struct mq_model *copy = mr_reload(m);
    struct mq_selection sel = {0};
    struct mq_select_options so = {0};
    ck_assert_int_eq(mq_select_nodes(copy->proto, &so, &sel, &err), MQ_OK);
    struct mq_quant_options o = e->o;
    o.stats = stats;
    struct mq_quant_result res;
    ck_assert_msg(mq_qdq_rewrite(copy->proto, &sel, &e->ranges, &o, &res, &err) == MQ_OK, "%s",
                  err.message);
    int x_float = 0;
    for (int i = 0; i < res.n_skipped; i++)
        x_float |= strcmp(res.skipped[i].name, "x") == 0;
    mq_quant_result_free(&res);
    mq_selection_free(&sel);
    mq_model_free(copy);
    return x_float;
}

enum floor_case { SETTLED_BY_FLOOR, MEASURED_KEPT, MEASURED_REJECTED };

/*
 * Two samples of x: sample 0 spans [0, 255] (scale 1), sample 1 as `quiet` says.  The
 * statistics gathered on calibration decide x as the whole second pass does: settled by its
 * floor without a measurement, or measured exactly (the same doubles), kept or left float.
 */
static void check_floor_case(enum floor_case want)
{
    int64_t xd[3] = {1, 2, 6};
    for (int s = 0; s < 2; s++) {
        struct mq_tensor x = tensor(3, xd);
        float *v = x.data;
        for (int64_t i = 0; i < 12; i++) {
            if (want == SETTLED_BY_FLOOR)
                v[i] = 127.5f + 127.4f * sinf((float)(s * 131 + i) * 0.37f);
            else if (s == 0)
                v[i] = i == 0 ? 0.0f : i == 1 ? 255.0f : 100.3f + (float)i;
            else if (want == MEASURED_KEPT)
                v[i] = i % 2 ? 1.1f : 1.0f; /* floor 6.5 dB, measured 23.4 dB */
            else
                v[i] = i % 2 ? 0.3f : 0.2f; /* both round to 0: 0 dB */
        }
        if (want == SETTLED_BY_FLOOR)
            v[0] = 0.0f, v[1] = 255.0f;
        write_sample(s, "x", &x);
        mq_tensor_free(&x);
    }
    Onnx__ModelProto *m = conv1d_model();
    struct env e;
    env_open(&e, m); /* e.stats: the whole second pass */
    ck_assert(e.o.min_sample_sqnr_db == 10.0);
    int64_t exact_sample = -1;
    double exact = mq_quant_stats_worst_sqnr(e.stats, "x", &exact_sample);
    ck_assert(!isnan(exact));
    int float_before = rewrite_keeps_x_float(m, &e, e.stats);
    ck_assert_int_eq(float_before, want == MEASURED_REJECTED);
    for (int jobs = 1; jobs <= 3; jobs += 2) {
        int n_undecided = -1;
        struct mq_quant_stats *s = stats_on_calibration(&e, jobs, &n_undecided);
        int64_t sample = -1;
        double measured = mq_quant_stats_worst_sqnr(s, "x", &sample);
        double floor_db = mq_quant_stats_worst_sqnr_floor(s, "x", NULL);
        if (want == SETTLED_BY_FLOOR) {
            ck_assert_msg(isnan(measured) && floor_db >= 10.0 + MQ_QUANT_SQNR_FLOOR_MARGIN_DB &&
                              floor_db <= exact,
                          "measured %g floor %g exact %g", measured, floor_db, exact);
        } else {
            ck_assert_int_ge(n_undecided, 1);
            ck_assert_msg(isnan(floor_db) && memcmp(&measured, &exact, sizeof exact) == 0,
                          "floor %g measured %.17g exact %.17g", floor_db, measured, exact);
            ck_assert_int_eq(sample, exact_sample);
            ck_assert(want == MEASURED_KEPT ? exact >= 10.0 : exact < 10.0);
        }
        ck_assert_int_eq(rewrite_keeps_x_float(m, &e, s), float_before);
        /* The means: the whole second pass's doubles (the same plan here), whatever --jobs. */
        int64_t n1 = 0, t1 = 0, n2 = 0, t2 = 0;
        const double *a = mq_quant_stats_input_means(e.stats, "x", "w", &n1, &t1);
        const double *b = mq_quant_stats_input_means(s, "x", "w", &n2, &t2);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(n1 * t1, n2 * t2);
        ck_assert_int_eq(memcmp(a, b, (size_t)(n1 * t1) * sizeof *a), 0);
        mq_quant_stats_free(s);
    }
    env_close(&e);
    onnx__model_proto__free_unpacked(m, NULL);
}

START_TEST(test_floor_settles_a_loud_tensor)
{
    check_floor_case(SETTLED_BY_FLOOR);
}
END_TEST

START_TEST(test_floor_too_low_measures_and_keeps)
{
    check_floor_case(MEASURED_KEPT);
}
END_TEST

START_TEST(test_floor_too_low_measures_and_rejects)
{
    check_floor_case(MEASURED_REJECTED);
}
END_TEST

/* The energy's vector paths give the plain loop's doubles bit for bit (each lane i % 32 in
   index order, v * v rounded and then added), over the whole float range: subnormals, the
   largest finite floats, values that are not finite; read together with the min/max, the
   same energies and the same extremes as apart. */
START_TEST(test_signal_energy_matches_one_value_at_a_time)
{
    enum { N = 5003 };
    static float x[N];
    uint32_t bits = 0x9e3779b9u;
    for (int i = 0; i < N; i++) {
        bits = bits * 1664525u + 1013904223u;
        uint32_t b = bits;
        if (i % 5 == 0)
            b &= 0x807fffffu; /* subnormal or zero */
        memcpy(&x[i], &b, sizeof b);
    }
    x[11] = FLT_MAX, x[12] = -FLT_MAX, x[13] = INFINITY, x[14] = NAN;
    for (int n = 0; n <= N; n += n < 70 ? 1 : 997) {
        double got[MQ_ROUNDING_LANES] = {0}, want[MQ_ROUNDING_LANES] = {0};
        int64_t got_nonzero = 0, want_nonzero = 0;
        mq_quant_signal_energy(x, n, got, &got_nonzero);
        for (int i = 0; i < n; i++) {
            if (!isfinite(x[i]))
                continue;
            volatile double square = (double)x[i] * (double)x[i];
            want[i % MQ_ROUNDING_LANES] += square;
            want_nonzero += x[i] != 0.0f;
        }
        ck_assert_msg(memcmp(got, want, sizeof got) == 0, "n %d", n);
        ck_assert_int_eq(got_nonzero, want_nonzero);
        /* read once for the energy and the min/max: the same as the two apart, with or
           without values that are not finite (x[13], x[14]) and -0 among the extremes */
        for (int from = 0; from < 2; from++) {
            const float *y = from ? x + 15 : x;
            int64_t m = from ? (n > 15 ? n - 15 : 0) : n;
            float zeros[40];
            for (int i = 0; i < 40; i++)
                zeros[i] = i % 3 ? -0.0f : 0.0f;
            if (n < 40 && from) /* all zeros of both signs: the +0 extremes */
                y = zeros, m = n;
            double both[MQ_ROUNDING_LANES] = {0}, apart[MQ_ROUNDING_LANES] = {0};
            int64_t both_nonzero = 0, apart_nonzero = 0;
            struct mq_minmax both_mm, apart_mm;
            mq_minmax_init(&both_mm);
            mq_minmax_init(&apart_mm);
            mq_quant_signal_energy_minmax(y, m, both, &both_nonzero, &both_mm);
            mq_quant_signal_energy(y, m, apart, &apart_nonzero);
            mq_minmax_add(&apart_mm, y, m);
            ck_assert_msg(memcmp(both, apart, sizeof both) == 0, "n %d from %d", n, from);
            ck_assert_int_eq(both_nonzero, apart_nonzero);
            ck_assert_msg(memcmp(&both_mm.min, &apart_mm.min, sizeof(float)) == 0 &&
                              memcmp(&both_mm.max, &apart_mm.max, sizeof(float)) == 0,
                          "n %d from %d: [%g, %g] vs [%g, %g]", n, from, (double)both_mm.min,
                          (double)both_mm.max, (double)apart_mm.min, (double)apart_mm.max);
            ck_assert(both_mm.count == apart_mm.count && both_mm.nan == apart_mm.nan &&
                      both_mm.inf == apart_mm.inf);
        }
    }
}
END_TEST

/* The floor holds against the exact error of every value, float rounding included. */
START_TEST(test_floor_bounds_the_exact_error)
{
    struct mq_qrange full = mq_qrange_full(MQ_DTYPE_UINT8);
    struct mq_qrange sym = mq_qrange_full(MQ_DTYPE_INT8);
    struct {
        float lo, hi;
        struct mq_qrange r;
    } cases[3] = {{-123.0f, 151.0f, full}, {0.0f, 1e-3f, full}, {-7.3f, 7.3f, sym}};
    for (int c = 0; c < 3; c++) {
        struct mq_qparams p;
        ck_assert_int_eq(mq_qparams_compute(cases[c].lo, cases[c].hi, cases[c].r, 0, &p, &err),
                         MQ_OK);
        ck_assert_msg(mq_quant_bound_holds(cases[c].lo, cases[c].hi, p, cases[c].r),
                      "case %d: scale %g zero %d", c, p.scale, p.zero_point);
        /* past half a step beyond the representable ends: clamping errs by more */
        double edge_lo = (cases[c].r.qmin - p.zero_point - 0.51) * p.scale;
        double edge_hi = (cases[c].r.qmax - p.zero_point + 0.51) * p.scale;
        ck_assert(!mq_quant_bound_holds(edge_lo, cases[c].hi, p, cases[c].r));
        ck_assert(!mq_quant_bound_holds(cases[c].lo, edge_hi, p, cases[c].r));
        enum { N = 4001 };
        static float x[N];
        for (int i = 0; i < N; i++)
            x[i] = cases[c].lo + (cases[c].hi - cases[c].lo) * (float)i / (N - 1);
        x[7] = NAN, x[9] = 0.0f;
        double sig[MQ_ROUNDING_LANES] = {0}, noi[MQ_ROUNDING_LANES] = {0};
        double energy[MQ_ROUNDING_LANES] = {0};
        int64_t nonzero = 0;
        mq_quant_rounding_sums(x, N, p.scale, (float)p.zero_point, (float)cases[c].r.qmin,
                               (float)cases[c].r.qmax, sig, noi);
        mq_quant_signal_energy(x, N, energy, &nonzero);
        /* the same lanes as the rounding sums' signal, and zeros (NaN counts as 0) not counted */
        ck_assert_int_eq(memcmp(sig, energy, sizeof sig), 0);
        int64_t expect = 0;
        for (int i = 0; i < N; i++)
            expect += isfinite(x[i]) && x[i] != 0.0f;
        ck_assert_int_eq(nonzero, expect);
        double s = 0, n = 0;
        for (int l = 0; l < MQ_ROUNDING_LANES; l++)
            s += sig[l], n += noi[l];
        double exact_db = 10.0 * log10(s / n);
        double floor_db = mq_quant_sqnr_floor_db(s / (double)nonzero, p, cases[c].r);
        ck_assert_msg(floor_db <= exact_db && floor_db > exact_db - 6.0, "case %d: %g vs %g", c,
                      floor_db, exact_db);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_stats");
    TCase *tc = tcase_create("stats");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_conv2d_means);
    tcase_add_test(tc, test_depthwise_same_upper_means);
    tcase_add_test(tc, test_conv1d_grouped_means);
    tcase_add_test(tc, test_gemm_means);
    tcase_add_test(tc, test_bias_correction_removes_mean_error);
    tcase_add_test(tc, test_quiet_sample_stays_float);
    tcase_add_test(tc, test_threads_give_the_same_doubles);
    tcase_add_test(tc, test_rounding_sums_match_one_value_at_a_time);
    tcase_add_test(tc, test_floor_settles_a_loud_tensor);
    tcase_add_test(tc, test_floor_too_low_measures_and_keeps);
    tcase_add_test(tc, test_floor_too_low_measures_and_rejects);
    tcase_add_test(tc, test_floor_bounds_the_exact_error);
    tcase_add_test(tc, test_signal_energy_matches_one_value_at_a_time);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
