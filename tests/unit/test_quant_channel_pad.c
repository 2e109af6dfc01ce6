/*
 * Conv input channels padded to the count onnxruntime's fast int8 kernel
 * takes (quant/channel_pad.c), and the padding taken out again: which Convs
 * get it (the op rule's shapes), that the padded model computes the same, and
 * that the undo gives back the original graph.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/tensor_proto.h"
#include "quant/channel_pad.h"
#include "quant/op_rules.h"
#include "model_run.h"
#include "quant_builder.h"

static const Onnx__TensorProto *init_named(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

static int count_op(const Onnx__GraphProto *g, const char *op)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        n += strcmp(g->node[i]->op_type, op) == 0;
    return n;
}

static const char *metadata(const Onnx__ModelProto *m, const char *key)
{
    for (size_t i = 0; i < m->n_metadata_props; i++)
        if (strcmp(m->metadata_props[i]->key, key) == 0)
            return m->metadata_props[i]->value;
    return NULL;
}

static float *weights(int n, int seed)
{
    float *w = malloc((size_t)n * sizeof *w);
    for (int i = 0; i < n; i++)
        w[i] = (float)(((i + seed) * 37) % 23) / 11.0f - 1.0f;
    return w;
}

enum { N_OUT = 6 };

/*
 * x [1,3,6,6] read by: "pad_me" 3 -> 16 (padded), "few_out" 3 -> 8 (fewer
 * outputs than the fast kernel takes), "grouped" (group 3), "shared_a"/"shared_b"
 * (one weight for two Convs), "big_kernel" 3 -> 16 5x5 (kernel dimension 75, past the
 * rule's 64); x4 [1,4,6,6] read by "aligned" 4 -> 16.
 */
static Onnx__ModelProto *build_opset(int opset)
{
    Onnx__ModelProto *m = qb_model(opset);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 3, 6, 6}, x4d[4] = {1, 4, 6, 6};
    int64_t w16[4] = {16, 3, 3, 3}, w8[4] = {8, 3, 3, 3}, wg[4] = {18, 1, 3, 3},
            w4[4] = {16, 4, 3, 3}, b16[1] = {16}, w5[4] = {16, 3, 5, 5};
    qb_input(g, "x", 1, 4, xd);
    qb_input(g, "x4", 1, 4, x4d);
    float *a = weights(16 * 27, 1), *b = weights(8 * 27, 2), *c = weights(18 * 9, 3),
          *d = weights(16 * 36, 4), *e = weights(16, 5), *f = weights(16 * 27, 6),
          *h = weights(16 * 75, 7);
    qb_init_f32(g, "w16", 4, w16, a);
    qb_init_f32(g, "b16", 1, b16, e);
    qb_init_f32(g, "w8", 4, w8, b);
    qb_init_f32(g, "wg", 4, wg, c);
    qb_init_f32(g, "w4", 4, w4, d);
    qb_init_f32(g, "wshared", 4, w16, f);
    qb_init_f32(g, "w5", 4, w5, h);
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(qb_node(g, "Conv", "pad_me", "x,w16,b16", "y0"), "pads", 4, pads);
    qb_node(g, "Conv", "few_out", "x,w8", "y1");
    qb_attr_int(qb_node(g, "Conv", "grouped", "x,wg", "y2"), "group", 3);
    qb_node(g, "Conv", "shared_a", "x,wshared", "y3");
    qb_node(g, "Conv", "shared_b", "x,wshared", "y3b");
    qb_node(g, "Conv", "aligned", "x4,w4", "y4");
    qb_node(g, "Conv", "big_kernel", "x,w5", "y5");
    qb_node(g, "Add", "add", "y3,y3b", "y3s");
    const char *outs[N_OUT] = {"y0", "y1", "y2", "y3s", "y4", "y5"};
    for (int k = 0; k < N_OUT; k++)
        qb_output(g, outs[k], 1);
    free(a), free(b), free(c), free(d), free(e), free(f), free(h);
    return m;
}

static Onnx__ModelProto *build(void)
{
    return build_opset(13);
}

static void run(const Onnx__ModelProto *m, struct mq_tensor *out)
{
    int64_t xd[4] = {1, 3, 6, 6}, x4d[4] = {1, 4, 6, 6};
    struct mq_tensor in[2];
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_alloc(&in[0], MQ_DTYPE_FLOAT, 4, xd, "x", &err), MQ_OK);
    ck_assert_int_eq(mq_tensor_alloc(&in[1], MQ_DTYPE_FLOAT, 4, x4d, "x4", &err), MQ_OK);
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < in[k].count; i++)
            ((float *)in[k].data)[i] = (float)((i * 13 + k) % 17) / 8.0f - 1.0f;
    mr_run(m, in, 2, out, N_OUT);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
}

static void assert_same_outputs(const Onnx__ModelProto *a, const Onnx__ModelProto *b)
{
    struct mq_tensor ra[N_OUT], rb[N_OUT];
    run(a, ra);
    run(b, rb);
    for (int k = 0; k < N_OUT; k++) {
        ck_assert_int_eq(ra[k].count, rb[k].count);
        const float *pa = ra[k].data, *pb = rb[k].data;
        for (int64_t i = 0; i < ra[k].count; i++)
            ck_assert_msg(fabsf(pa[i] - pb[i]) <= 1e-5f, "output %d[%lld]: %g vs %g", k,
                          (long long)i, (double)pa[i], (double)pb[i]);
        mq_tensor_free(&ra[k]);
        mq_tensor_free(&rb[k]);
    }
}

START_TEST(test_conv_rule_names_the_fast_shapes)
{
    const struct mq_op_rule *conv = mq_op_rule_find("Conv");
    ck_assert_int_eq(conv->fast_input_channel_align, 4);
    ck_assert_int_eq(conv->fast_min_outputs, 16);
    ck_assert_int_eq(conv->fast_output_align, 8);
    ck_assert_int_eq(conv->fast_pad_max_kernel_dim, 64);
    /* No integer kernel of onnxruntime's own: nothing to pad for */
    ck_assert_int_eq(mq_op_rule_find("ConvTranspose")->fast_input_channel_align, 0);
}
END_TEST

START_TEST(test_pad_and_undo)
{
    Onnx__ModelProto *m = build(), *orig = qb_copy_model(m);
    Onnx__GraphProto *g = m->graph;
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_pad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(count_op(g, "Pad"), 1);
    const Onnx__NodeProto *conv = qb_node_named(g, "pad_me");
    ck_assert_str_eq(conv->input[0], "x_channel_padded");
    const Onnx__TensorProto *w = init_named(g, "w16");
    ck_assert_int_eq(w->dims[1], 4);
    struct mq_tensor wt;
    ck_assert_int_eq(mq_tensor_from_proto(w, "w16", &wt, &err), MQ_OK);
    for (int oc = 0; oc < 16; oc++)
        for (int k = 0; k < 9; k++)
            ck_assert(((float *)wt.data)[oc * 36 + 27 + k] == 0.0f);
    mq_tensor_free(&wt);
    ck_assert_str_eq(qb_node_named(g, "few_out")->input[0], "x");
    ck_assert_str_eq(qb_node_named(g, "grouped")->input[0], "x");
    ck_assert_str_eq(qb_node_named(g, "shared_a")->input[0], "x");
    ck_assert_str_eq(qb_node_named(g, "aligned")->input[0], "x4");
    ck_assert_str_eq(qb_node_named(g, "big_kernel")->input[0], "x");
    ck_assert_str_eq(metadata(m, MQ_PADDED_CHANNELS_KEY), "x_channel_padded\t3\n");
    assert_same_outputs(m, orig);

    /* A second pass finds nothing left to pad */
    ck_assert_int_eq(mq_pad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);

    ck_assert_int_eq(mq_unpad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(count_op(g, "Pad"), 0);
    ck_assert_str_eq(qb_node_named(g, "pad_me")->input[0], "x");
    ck_assert_int_eq(init_named(g, "w16")->dims[1], 3);
    ck_assert_ptr_null(init_named(g, "x_channel_pads"));
    ck_assert_ptr_null(metadata(m, MQ_PADDED_CHANNELS_KEY));
    ck_assert_int_eq((int)g->n_node, (int)orig->graph->n_node);
    ck_assert_int_eq((int)g->n_initializer, (int)orig->graph->n_initializer);
    assert_same_outputs(m, orig);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Before opset 11 Pad takes its pads as an attribute (the calibrate command pads such models). */
START_TEST(test_pads_attribute_before_opset_11)
{
    Onnx__ModelProto *m = build_opset(10), *orig = qb_copy_model(m);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_pad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    const Onnx__NodeProto *pad = qb_node_named(m->graph, "pad_me_channel_pad");
    ck_assert_ptr_nonnull(pad);
    ck_assert_int_eq((int)pad->n_input, 1);
    ck_assert_int_eq((int)pad->n_attribute, 1);
    ck_assert_str_eq(pad->attribute[0]->name, "pads");
    ck_assert_int_eq((int)pad->attribute[0]->n_ints, 8);
    ck_assert_int_eq(pad->attribute[0]->ints[5], 1);
    ck_assert_ptr_null(init_named(m->graph, "x_channel_pads"));
    assert_same_outputs(m, orig);
    ck_assert_int_eq(mq_unpad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(count_op(m->graph, "Pad"), 0);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* A record whose Pad no longer feeds a Conv with zero weights is left alone, not an error. */
START_TEST(test_undo_leaves_what_no_longer_matches)
{
    Onnx__ModelProto *m = build();
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_pad_conv_input_channels(m, &n, &err), MQ_OK);
    Onnx__TensorProto *w = (Onnx__TensorProto *)init_named(m->graph, "w16");
    float one = 1.0f; /* the padded channel of output channel 0 is no longer zero */
    memcpy(w->raw_data.data + 27 * sizeof(float), &one, sizeof one);
    ck_assert_int_eq(mq_unpad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(count_op(m->graph, "Pad"), 1);
    ck_assert_ptr_nonnull(metadata(m, MQ_PADDED_CHANNELS_KEY));
    onnx__model_proto__free_unpacked(m, NULL);

    m = build();
    Onnx__StringStringEntryProto *e = calloc(1, sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = strdup(MQ_PADDED_CHANNELS_KEY);
    e->value = strdup("no tab here\n");
    qb_push((void ***)&m->metadata_props, &m->n_metadata_props, e);
    ck_assert_int_ne(mq_unpad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_ptr_nonnull(strstr(err.message, MQ_PADDED_CHANNELS_KEY));
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

static void init_u8_scalar(Onnx__GraphProto *g, const char *name, uint8_t v)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    t->has_raw_data = 1;
    t->raw_data.len = 1;
    t->raw_data.data = malloc(1);
    t->raw_data.data[0] = v;
    qb_push((void ***)&g->initializer, &g->n_initializer, t);
}

static size_t index_of(const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (g->node[i] == n)
            return i;
    return g->n_node;
}

/*
 * After the QDQ rewrite the Pad moves onto the 8-bit data (QuantizeLinear first, the zero point
 * as pad value) and computes the same; the inverse puts the float Pad back in front of the pair.
 */
START_TEST(test_pad_on_integers_and_back)
{
    Onnx__ModelProto *m = build();
    Onnx__GraphProto *g = m->graph;
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_pad_conv_input_channels(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    /* the pair a QDQ rewrite puts between the Pad and its Conv */
    float scale = 2.0f / 255.0f;
    int64_t one[1] = {1};
    qb_init_f32(g, "s", 0, one, &scale);
    init_u8_scalar(g, "zp", 128);
    Onnx__NodeProto *conv = (Onnx__NodeProto *)qb_node_named(g, "pad_me");
    free(conv->input[0]);
    conv->input[0] = strdup("x_channel_padded_dequantized");
    qb_node(g, "QuantizeLinear", "q", "x_channel_padded,s,zp", "x_channel_padded_quantized");
    qb_node(g, "DequantizeLinear", "dq", "x_channel_padded_quantized,s,zp",
            "x_channel_padded_dequantized");
    /* put the pair right after the Pad, as the rewrite does */
    size_t pad = index_of(g, qb_node_named(g, "pad_me_channel_pad"));
    Onnx__NodeProto *q = g->node[g->n_node - 2], *dq = g->node[g->n_node - 1];
    memmove(&g->node[pad + 3], &g->node[pad + 1], (g->n_node - 2 - pad - 1) * sizeof *g->node);
    g->node[pad + 1] = q;
    g->node[pad + 2] = dq;
    Onnx__ModelProto *qdq = qb_copy_model(m);

    ck_assert_int_eq(mq_channel_pads_to_integer(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    const Onnx__NodeProto *p = qb_node_named(g, "pad_me_channel_pad");
    ck_assert_str_eq(q->input[0], "x");
    ck_assert_str_eq(p->input[0], q->output[0]);
    ck_assert_int_eq((int)p->n_input, 3);
    ck_assert_str_eq(p->input[2], "zp");
    ck_assert_str_eq(p->output[0], "x_channel_padded");
    ck_assert_str_eq(dq->input[0], "x_channel_padded");
    ck_assert_int_lt((int)index_of(g, q), (int)index_of(g, p));
    assert_same_outputs(m, qdq);

    ck_assert_int_eq(mq_channel_pads_to_float(m, &err), MQ_OK);
    ck_assert_str_eq(p->input[0], "x");
    ck_assert_int_eq((int)p->n_input, 2);
    ck_assert_str_eq(q->input[0], "x_channel_padded");
    ck_assert_str_eq(dq->input[0], q->output[0]);
    ck_assert_int_lt((int)index_of(g, p), (int)index_of(g, q));
    assert_same_outputs(m, qdq);
    onnx__model_proto__free_unpacked(qdq, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_channel_pad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_conv_rule_names_the_fast_shapes);
    tcase_add_test(tc, test_pad_and_undo);
    tcase_add_test(tc, test_undo_leaves_what_no_longer_matches);
    tcase_add_test(tc, test_pad_on_integers_and_back);
    tcase_add_test(tc, test_pads_attribute_before_opset_11);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
