/*
 * The accuracy search's building blocks: when a check result meets a target,
 * the exclusion list that reproduces the search's model (names escaped so
 * each matches only itself), and the 16-bit fallback pairs.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "core/tensor.h"
#include "quant/target_fallback.h"
#include "quant/target_search.h"
#include "quant_builder.h"
#include "util/glob.h"

/* One output with the given SQNR (signal 1, noise 10^(-db/10)) and, when rows > 0, top-1 figures. */
static void set_output(struct mq_divergence_output *o, const char *name, double db, int64_t rows,
                       int64_t agree)
{
    memset(o, 0, sizeof *o);
    o->name = strdup(name);
    mq_error_stats_init(&o->stats);
    o->stats.sum_ref2 = 1.0;
    o->stats.sum_err2 = pow(10.0, -db / 10.0);
    o->stats.elements = 10;
    o->class_scores = rows > 0;
    o->top1.rows = rows;
    o->top1.agree = agree;
}

START_TEST(test_target_met)
{
    struct mq_check_result r;
    memset(&r, 0, sizeof r);
    r.compare.outputs = calloc(2, sizeof *r.compare.outputs);
    r.compare.n_outputs = 2;
    set_output(&r.compare.outputs[0], "boxes", 31.0, 0, 0);
    set_output(&r.compare.outputs[1], "scores", 26.0, 100, 97);
    struct mq_target t = {1, 25.0, 0, 0, 0};
    ck_assert(mq_target_met(&t, &r));
    t.sqnr_db = 30.0;   /* "scores" is short */
    ck_assert(!mq_target_met(&t, &r));
    struct mq_target a = {0, 0, 1, 97.0, 0};
    ck_assert(mq_target_met(&a, &r));
    a.agreement_pct = 98.0;
    ck_assert(!mq_target_met(&a, &r));
    /* An output with NaN on one side only never meets an SQNR target. */
    r.compare.outputs[0].stats.nonfinite_mismatch = 1;
    t.sqnr_db = 1.0;
    ck_assert(!mq_target_met(&t, &r));
    ck_assert(isinf(mq_check_output_sqnr_db(&r, 0)));
    mq_check_result_free(&r);
}
END_TEST

/* With a margin, an output must clear the target by that many standard errors of its SQNR. */
START_TEST(test_target_margin)
{
    struct mq_check_result r;
    memset(&r, 0, sizeof r);
    r.compare.outputs = calloc(1, sizeof *r.compare.outputs);
    r.compare.n_outputs = 1;
    /* Two samples of signal 1, noise 0.01 and 0.03: 16.99 dB pooled, standard error 2.17 dB. */
    set_output(&r.compare.outputs[0], "y", 10.0 * log10(1 / 0.02), 0, 0);
    struct mq_error_stats *st = &r.compare.outputs[0].stats;
    st->sum_ref2 = 2.0;
    st->sum_err2 = 0.04;
    st->samples = 2;
    st->sum_sample_r2 = 2.0;
    st->sum_sample_e2 = 0.01 * 0.01 + 0.03 * 0.03;
    st->sum_sample_re = 0.04;
    struct mq_target t = {1, 16.0, 0, 0, 0};
    ck_assert(mq_target_met(&t, &r));
    t.stderr_multiple = 0.4;   /* 16.99 - 0.87 */
    ck_assert(mq_target_met(&t, &r));
    t.stderr_multiple = 1.0;   /* 16.99 - 2.17 */
    ck_assert(!mq_target_met(&t, &r));
    t.sqnr_db = 14.5;
    ck_assert(mq_target_met(&t, &r));
    mq_check_result_free(&r);
}
END_TEST

START_TEST(test_exclusions_match_only_their_node)
{
    const char *names[] = {"a*b", "c[1]", "d\\e", "plain?"};
    const char *others[] = {"aXb", "c1", "de", "plainX"};
    struct mq_target_search_result r;
    memset(&r, 0, sizeof r);
    r.fallback = calloc(4, sizeof *r.fallback);
    for (int i = 0; i < 4; i++) {
        r.fallback[i].name = strdup(names[i]);
        r.fallback[i].op_type = strdup("Conv");
    }
    r.n_fallback = 4;
    struct mq_pattern_list user = {0}, out = {0};
    struct mq_error err;
    ck_assert_int_eq(mq_pattern_list_add(&user, "head/*", "--exclude-nodes", &err), MQ_OK);
    ck_assert_int_eq(mq_target_exclusions(&r, &user, &out, &err), MQ_OK);
    ck_assert_int_eq(out.n, 5);
    ck_assert_str_eq(out.items[0], "head/*");   /* the user's patterns stay patterns */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(mq_glob_check(out.items[i + 1], &err), MQ_OK);
        ck_assert(mq_glob_match(out.items[i + 1], names[i]));
        ck_assert(!mq_glob_match(out.items[i + 1], others[i]));
    }
    mq_pattern_list_free(&user);
    mq_pattern_list_free(&out);
    mq_target_search_result_free(&r);
}
END_TEST

START_TEST(test_fallback_int16_pairs)
{
    Onnx__ModelProto *m = qb_model(21);
    Onnx__GraphProto *g = m->graph;
    int64_t dims[2] = {1, 4};
    qb_input(g, "x", MQ_DTYPE_FLOAT, 2, dims);
    Onnx__NodeProto *a = qb_node(g, "Relu", "a", "x", "y");
    Onnx__NodeProto *b = qb_node(g, "Sigmoid", "b", "x", "z");
    qb_output(g, "y", MQ_DTYPE_FLOAT);
    qb_output(g, "z", MQ_DTYPE_FLOAT);
    struct mq_tensor_range item;
    memset(&item, 0, sizeof item);
    item.name = (char *)"x";
    item.min = -2.0f;
    item.max = 6.0f;
    struct mq_ranges ranges;
    memset(&ranges, 0, sizeof ranges);
    ranges.n = 1;
    ranges.items = &item;
    Onnx__NodeProto *nodes[2] = {a, b};
    struct mq_error err;
    ck_assert_int_eq(mq_fallback_apply_int16(m, nodes, 2, &ranges, &err), MQ_OK);
    /* One pair for x, shared by both readers, placed before them. */
    ck_assert_int_eq((int)g->n_node, 4);
    ck_assert_str_eq(g->node[0]->op_type, "QuantizeLinear");
    ck_assert_str_eq(g->node[1]->op_type, "DequantizeLinear");
    ck_assert_str_eq(a->input[0], g->node[1]->output[0]);
    ck_assert_str_eq(b->input[0], g->node[1]->output[0]);
    ck_assert_int_eq((int)g->n_initializer, 2);
    const Onnx__TensorProto *scale = g->initializer[0], *zp = g->initializer[1];
    ck_assert_int_eq(zp->data_type, MQ_DTYPE_INT16);
    ck_assert_int_eq(scale->data_type, MQ_DTYPE_FLOAT);
    ck_assert_float_eq_tol(scale->float_data[0], 8.0f / 65535.0f, 1e-9f);
    ck_assert_int_eq(zp->int32_data[0], -32768 + 16384);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * x -> Q -> DQ -> conv (float weight) -> relu -> [tail] : onnxruntime quantizes conv itself
 * when everything after the Relu is QuantizeLinear, and only then.
 */
static int requantized(const char *tail, int conv_input_float)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t dims[4] = {1, 2, 4, 4}, wd[4] = {2, 2, 1, 1}, one[1] = {1};
    float w[4] = {1, 2, 3, 4}, scale[1] = {0.1f};
    qb_input(g, "x", MQ_DTYPE_FLOAT, 4, dims);
    qb_init_f32(g, "w", 4, wd, w);
    qb_init_f32(g, "s", 1, one, scale);
    qb_node(g, "QuantizeLinear", "q0", "x,s", "xq");
    qb_node(g, "DequantizeLinear", "dq0", "xq,s", "xd");
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", conv_input_float ? "x,w" : "xd,w", "c");
    qb_node(g, "Relu", "relu", "c", "r");
    if (strcmp(tail, "quantize") == 0 || strcmp(tail, "quantize+output") == 0) {
        qb_node(g, "QuantizeLinear", "q1", "r,s", "rq");
        qb_node(g, "DequantizeLinear", "dq1", "rq,s", "y");
    } else {
        qb_node(g, "Sigmoid", "sig", "r", "y");
    }
    qb_output(g, "y", MQ_DTYPE_FLOAT);
    if (strcmp(tail, "quantize+output") == 0)
        qb_output(g, "r", MQ_DTYPE_FLOAT);
    Onnx__NodeProto *nodes[1] = {conv};
    int flag = -1;
    struct mq_error err;
    ck_assert_int_eq(mq_fallback_requantized_by_runtime(m, nodes, 1, &flag, &err), MQ_OK);
    onnx__model_proto__free_unpacked(m, NULL);
    return flag;
}

START_TEST(test_fallback_requantized_by_runtime)
{
    ck_assert_int_eq(requantized("quantize", 0), 1);
    ck_assert_int_eq(requantized("quantize", 1), 0);        /* float input: stays float */
    ck_assert_int_eq(requantized("float", 0), 0);           /* a float reader after it */
    ck_assert_int_eq(requantized("quantize+output", 0), 0); /* the model returns its output */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_target");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_target_met);
    tcase_add_test(tc, test_target_margin);
    tcase_add_test(tc, test_exclusions_match_only_their_node);
    tcase_add_test(tc, test_fallback_int16_pairs);
    tcase_add_test(tc, test_fallback_requantized_by_runtime);
    return mq_check_run(s, tc);
}
