/*
 * A Conv left float between quantized nodes reads float data (op_rules' float_reads_float):
 * x -> conv1 -> Relu -> conv2 -> Relu -> conv3 -> y with conv2 excluded, and with a float
 * MaxPool before conv2 (onnxruntime moves a DequantizeLinear across it).  Its input must not
 * come from a DequantizeLinear (onnxruntime would give it int8 weights of its own), and the
 * Relu before it stays in the graph (folded, nothing would clamp what conv2 reads).  Without
 * the exclusion the same graph folds both Relus and conv2 reads a DequantizeLinear: the
 * control that shows the checks can fail.  A Conv left float whose output nothing quantized
 * reads keeps reading the DequantizeLinear (no extra pair for nothing).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "calib/ranges.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "quant_builder.h"

static const float w1[4] = {0.5f, -0.25f, 1.0f, 0.75f};  /* [2,2,1,1] */
static const float w2[4] = {0.3f, 0.6f, -0.9f, 0.2f};
static const float w3[4] = {-0.4f, 0.8f, 0.1f, 0.5f};
static const float bias[2] = {0.1f, -0.2f};

/* x [1,2,2,2] -> conv1 -> r1 (Relu) [-> pool -> p] -> conv2 -> r2 (Relu) -> conv3 -> y. */
static Onnx__ModelProto *chain_with(int with_conv3, int with_pool)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 2, 2, 2}, wd[4] = {2, 2, 1, 1}, bd[1] = {2};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w1", 4, wd, w1);
    qb_init_f32(g, "w2", 4, wd, w2);
    qb_init_f32(g, "w3", 4, wd, w3);
    qb_init_f32(g, "b1", 1, bd, bias);
    qb_init_f32(g, "b2", 1, bd, bias);
    qb_init_f32(g, "b3", 1, bd, bias);
    qb_node(g, "Conv", "conv1", "x,w1,b1", "c1");
    qb_node(g, "Relu", "relu1", "c1", "r1");
    if (with_pool) {
        Onnx__NodeProto *pool = qb_node(g, "MaxPool", "pool", "r1", "p");
        int64_t k[2] = {1, 1};
        qb_attr_ints(pool, "kernel_shape", 2, k);
        qb_node(g, "Conv", "conv2", "p,w2,b2", "c2");
    } else {
        qb_node(g, "Conv", "conv2", "r1,w2,b2", "c2");
    }
    if (with_conv3) {
        qb_node(g, "Relu", "relu2", "c2", "r2");
        qb_node(g, "Conv", "conv3", "r2,w3,b3", "y");
        qb_output(g, "y", 1);
    } else {
        qb_output(g, "c2", 1);
    }
    return m;
}

static Onnx__ModelProto *chain(int with_conv3)
{
    return chain_with(with_conv3, 0);
}

static struct mq_ranges ranges(void)
{
    static const char *names[] = {"c1", "c2", "p", "r1", "r2", "x", "y"}; /* sorted */
    static const float lo[] = {-2, -2, 0, 0, 0, -1, -2}, hi[] = {2, 2, 2, 2, 2, 1, 2};
    struct mq_ranges r;
    memset(&r, 0, sizeof r);
    r.method = strdup("minmax");
    r.samples = 4;
    r.n = 7;
    r.items = calloc(7, sizeof *r.items);
    for (int i = 0; i < 7; i++) {
        r.items[i].name = strdup(names[i]);
        r.items[i].min = r.items[i].observed_min = lo[i];
        r.items[i].max = r.items[i].observed_max = hi[i];
        r.items[i].count = 100;
    }
    return r;
}

struct outcome {
    const char *conv2_reads_from; /* op type producing conv2's input, "graph input" */
    const char *pool_reads_from;  /* the same for the MaxPool, when there is one */
    int relu1_present;
    int conv3_quantized;
};

static const char *producer_of(const Onnx__GraphProto *g, const char *tensor)
{
    for (size_t i = 0; tensor && i < g->n_node; i++)
        if (g->node[i]->n_output > 0 && strcmp(g->node[i]->output[0], tensor) == 0)
            return g->node[i]->op_type;
    return "graph input";
}

/* Quantizes with `exclude` (a --exclude-nodes list, NULL for none). */
static struct outcome quantize_excluding(Onnx__ModelProto *m, const char *exclude)
{
    struct mq_error err = {0};
    struct mq_pattern_list excl = {0};
    struct mq_select_options so = {0};
    if (exclude) {
        ck_assert_int_eq(mq_pattern_list_add(&excl, exclude, "--exclude-nodes", &err), MQ_OK);
        so.exclude_nodes = &excl;
    }
    struct mq_selection sel;
    ck_assert_int_eq(mq_select_nodes(m, &so, &sel, &err), MQ_OK);
    struct mq_ranges r = ranges();
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct mq_quant_result res;
    int rc = mq_qdq_rewrite(m, &sel, &r, &o, &res, &err);
    ck_assert_msg(rc == MQ_OK, "%s", err.message);
    struct outcome out = {NULL, NULL, 0, 0};
    const Onnx__GraphProto *g = m->graph;
    const char *conv2_in = NULL, *pool_in = NULL;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (strcmp(n->name, "conv2") == 0)
            conv2_in = n->input[0];
        if (strcmp(n->name, "pool") == 0)
            pool_in = n->input[0];
        if (strcmp(n->name, "relu1") == 0)
            out.relu1_present = 1;
    }
    ck_assert_ptr_nonnull(conv2_in);
    out.conv2_reads_from = producer_of(g, conv2_in);
    out.pool_reads_from = pool_in ? producer_of(g, pool_in) : NULL;
    for (int i = 0; i < sel.n; i++)
        if (strcmp(sel.items[i].name, "conv3") == 0)
            out.conv3_quantized = sel.items[i].status == MQ_NODE_QUANTIZED;
    mq_quant_result_free(&res);
    mq_selection_free(&sel);
    mq_ranges_free(&r);
    mq_pattern_list_free(&excl);
    return out;
}

static struct outcome quantize(Onnx__ModelProto *m, int exclude_conv2)
{
    return quantize_excluding(m, exclude_conv2 ? "conv2" : NULL);
}

START_TEST(test_float_conv_reads_float)
{
    Onnx__ModelProto *m = chain(1);
    struct outcome o = quantize(m, 1);
    ck_assert_str_eq(o.conv2_reads_from, "Relu");
    ck_assert_int_eq(o.relu1_present, 1);
    ck_assert_int_eq(o.conv3_quantized, 1);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_control_without_exclusion)
{
    Onnx__ModelProto *m = chain(1);
    struct outcome o = quantize(m, 0);
    ck_assert_str_eq(o.conv2_reads_from, "DequantizeLinear");
    ck_assert_int_eq(o.relu1_present, 0);
    ck_assert_int_eq(o.conv3_quantized, 1);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_float_conv_at_the_end_reads_dequantized)
{
    Onnx__ModelProto *m = chain(0);
    struct outcome o = quantize(m, 1);
    ck_assert_str_eq(o.conv2_reads_from, "DequantizeLinear");
    ck_assert_int_eq(o.relu1_present, 0);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_float_pool_before_float_conv_reads_float)
{
    Onnx__ModelProto *m = chain_with(1, 1);
    struct outcome o = quantize_excluding(m, "pool,conv2");
    ck_assert_str_eq(o.conv2_reads_from, "MaxPool");
    ck_assert_str_eq(o.pool_reads_from, "Relu");
    ck_assert_int_eq(o.relu1_present, 1);
    ck_assert_int_eq(o.conv3_quantized, 1);
    onnx__model_proto__free_unpacked(m, NULL);
    /* Control: the float MaxPool alone (conv2 quantized) reads the DequantizeLinear. */
    m = chain_with(1, 1);
    o = quantize_excluding(m, "pool");
    ck_assert_str_eq(o.pool_reads_from, "DequantizeLinear");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_float_readers");
    TCase *tc = tcase_create("float_readers");
    tcase_add_test(tc, test_float_conv_reads_float);
    tcase_add_test(tc, test_control_without_exclusion);
    tcase_add_test(tc, test_float_conv_at_the_end_reads_dequantized);
    tcase_add_test(tc, test_float_pool_before_float_conv_reads_float);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
