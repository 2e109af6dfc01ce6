/*
 * BatchNormalization, per-channel affine ops and HardSigmoid's affine part folded into the
 * Conv before them (quant/batchnorm_fold.c): which pairs fold, what the Conv's weight and bias
 * become, that the graph still computes the same values, and the cases that must stay as they
 * are.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/batchnorm_fold.h"
#include "model_run.h"
#include "quant_builder.h"

static const float conv_w[18] = {0.5f, -0.25f, 0.1f, 0.2f, 0.3f, -0.4f, 0.05f, 0.6f, -0.1f,
                                 -1.0f, 0.8f, 0.2f, 0.1f, -0.3f, 0.25f, 0.4f, 0.0f, 0.9f};
static const float conv_b[2] = {0.1f, -0.2f};
static const float bn_scale[2] = {1.5f, -0.5f}, bn_shift[2] = {0.25f, 1.0f},
                   bn_mean[2] = {0.2f, -0.3f}, bn_var[2] = {0.5f, 2.0f};

static void add_bn_params(Onnx__GraphProto *g, const char *prefix)
{
    int64_t d[1] = {2};
    char name[64];
    const char *suffix[4] = {"scale", "shift", "mean", "var"};
    const float *values[4] = {bn_scale, bn_shift, bn_mean, bn_var};
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "%s_%s", prefix, suffix[k]);
        qb_init_f32(g, name, 1, d, values[k]);
    }
}

static Onnx__NodeProto *add_bn(Onnx__GraphProto *g, const char *name, const char *in,
                               const char *out, const char *prefix)
{
    char inputs[256];
    snprintf(inputs, sizeof inputs, "%s,%s_scale,%s_shift,%s_mean,%s_var", in, prefix, prefix,
             prefix, prefix);
    Onnx__NodeProto *bn = qb_node(g, "BatchNormalization", name, inputs, out);
    qb_attr_float(bn, "epsilon", 1e-3f);
    return bn;
}

/* x [1,1,4,4] -> Conv (2 filters 3x3, pad 1, optional bias) -> c -> BN -> n -> Relu -> y. */
static Onnx__ModelProto *conv_bn_model(int with_bias)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, bd[1] = {2};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    if (with_bias)
        qb_init_f32(g, "b", 1, bd, conv_b);
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", with_bias ? "x,w,b" : "x,w", "c");
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(conv, "pads", 4, pads);
    add_bn_params(g, "bn");
    add_bn(g, "bn", "c", "n", "bn");
    qb_node(g, "Relu", "relu", "n", "y");
    qb_output(g, "y", 1);
    qb_push((void ***)&g->value_info, &g->n_value_info, qb_value_info("c", 1, -1, NULL));
    return m;
}

static const Onnx__TensorProto *init_named(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

static float f32_at(const Onnx__GraphProto *g, const char *name, int i)
{
    const Onnx__TensorProto *p = init_named(g, name);
    ck_assert_msg(p != NULL, "no initializer '%s'", name);
    struct mq_tensor t;
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_from_proto(p, name, &t, &err), MQ_OK);
    float v = ((float *)t.data)[i];
    mq_tensor_free(&t);
    return v;
}


static struct mq_tensor test_input(void)
{
    int64_t xd[4] = {1, 1, 4, 4};
    struct mq_tensor x;
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, xd, "x", &err), MQ_OK);
    for (int i = 0; i < 16; i++)
        ((float *)x.data)[i] = (float)((i * 7) % 16) / 8.0f - 1.0f;
    return x;
}

static void assert_same_outputs(const Onnx__ModelProto *a, const Onnx__ModelProto *b, int n_out)
{
    struct mq_tensor x = test_input(), ya[3], yb[3];
    mr_run(a, &x, 1, ya, n_out);
    mr_run(b, &x, 1, yb, n_out);
    for (int k = 0; k < n_out; k++) {
        ck_assert_int_eq(ya[k].count, yb[k].count);
        for (int64_t i = 0; i < ya[k].count; i++) {
            float u = ((float *)ya[k].data)[i], v = ((float *)yb[k].data)[i];
            ck_assert_msg(fabsf(u - v) <= 1e-5f * (1.0f + fabsf(u)), "out %d [%lld]: %g vs %g",
                          k, (long long)i, (double)u, (double)v);
        }
        mq_tensor_free(&ya[k]);
        mq_tensor_free(&yb[k]);
    }
    mq_tensor_free(&x);
}

START_TEST(test_conv_bn_folded)
{
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        Onnx__ModelProto *m = conv_bn_model(with_bias), *orig = qb_copy_model(m);
        struct mq_fold_result r;
        struct mq_error err;
        ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
        const Onnx__GraphProto *g = m->graph;
        ck_assert_int_eq(r.n, 1);
        ck_assert_str_eq(r.items[0].batchnorm, "bn");
        ck_assert_str_eq(r.items[0].conv, "conv");
        ck_assert_str_eq(r.items[0].graph, "");
        /* The BatchNormalization is gone; the Conv writes its output directly. */
        ck_assert_int_eq((int)g->n_node, 2);
        ck_assert_ptr_null(qb_node_named(g, "bn"));
        const Onnx__NodeProto *conv = qb_node_named(g, "conv");
        ck_assert_str_eq(conv->output[0], "n");
        ck_assert_int_eq((int)conv->n_input, 3);
        /* The weight only this Conv read is scaled in place, under its own name. */
        ck_assert_str_eq(conv->input[1], "w");
        double a0 = 1.5 / sqrt(0.5 + (double)1e-3f), a1 = -0.5 / sqrt(2.0 + (double)1e-3f);
        ck_assert(fabs(f32_at(g, "w", 0) - 0.5 * a0) < 1e-6);
        ck_assert(fabs(f32_at(g, "w", 9) - (-1.0 * a1)) < 1e-6);
        double b0 = ((with_bias ? 0.1 : 0.0) - 0.2) * a0 + 0.25;
        double b1 = ((with_bias ? -0.2 : 0.0) + 0.3) * a1 + 1.0;
        ck_assert(fabs(f32_at(g, conv->input[2], 0) - b0) < 1e-6);
        ck_assert(fabs(f32_at(g, conv->input[2], 1) - b1) < 1e-6);
        if (with_bias)
            ck_assert_str_eq(conv->input[2], "b");
        else
            ck_assert_str_eq(conv->input[2], "bn_shift_folded");
        /* The normalization parameters and the vanished tensor's value info are gone. */
        ck_assert_ptr_null(init_named(g, "bn_scale"));
        ck_assert_ptr_null(init_named(g, "bn_var"));
        ck_assert_int_eq((int)g->n_value_info, 0);
        assert_same_outputs(m, orig, 1);
        mq_fold_result_free(&r);
        onnx__model_proto__free_unpacked(m, NULL);
        onnx__model_proto__free_unpacked(orig, NULL);
    }
}
END_TEST

START_TEST(test_shared_weight_copied)
{
    /* Two Convs read w, each followed by its own BatchNormalization: each gets a copy. */
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_node(g, "Conv", "conv1", "x,w", "c1");
    qb_node(g, "Conv", "conv2", "x,w", "c2");
    add_bn_params(g, "p");
    add_bn(g, "bn1", "c1", "y1", "p");
    add_bn(g, "bn2", "c2", "y2", "p");
    qb_output(g, "y1", 1);
    qb_output(g, "y2", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct mq_fold_result r;
    struct mq_error err;
    ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(r.n, 2);
    const Onnx__NodeProto *c1 = qb_node_named(g, "conv1"), *c2 = qb_node_named(g, "conv2");
    ck_assert_str_eq(c1->input[1], "w_folded");
    ck_assert_str_eq(c2->input[1], "w_folded_1");
    /* Nothing reads the original any more, nor the shared parameters. */
    ck_assert_ptr_null(init_named(g, "w"));
    ck_assert_ptr_null(init_named(g, "p_mean"));
    assert_same_outputs(m, orig, 2);
    mq_fold_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
    onnx__model_proto__free_unpacked(orig, NULL);
}
END_TEST

START_TEST(test_not_folded)
{
    struct mq_error err;
    struct mq_fold_result r;
    /* 0: the Conv's output has a second reader; 1: it is a graph output; 2: the variance
       is a graph input; 3: training mode; 4: variance + epsilon is not positive. */
    for (int variant = 0; variant < 5; variant++) {
        Onnx__ModelProto *m = conv_bn_model(1);
        Onnx__GraphProto *g = m->graph;
        if (variant == 0) {
            qb_node(g, "Relu", "other", "c", "o");
            qb_output(g, "o", 1);
        } else if (variant == 1) {
            qb_output(g, "c", 1);
        } else if (variant == 2) {
            Onnx__NodeProto *bn = (Onnx__NodeProto *)qb_node_named(g, "bn");
            free(bn->input[4]);
            bn->input[4] = strdup("v_in");
            int64_t d[1] = {2};
            qb_input(g, "v_in", 1, 1, d);
        } else if (variant == 3) {
            qb_attr_int((Onnx__NodeProto *)qb_node_named(g, "bn"), "training_mode", 1);
        } else {
            Onnx__NodeProto *bn = (Onnx__NodeProto *)qb_node_named(g, "bn");
            bn->attribute[0]->f = 0.0f;
            const Onnx__TensorProto *var = init_named(g, "bn_var");
            memset(var->raw_data.data, 0, 4);
        }
        size_t nodes = g->n_node, inits = g->n_initializer;
        ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
        ck_assert_msg(r.n == 0, "variant %d folded", variant);
        ck_assert_int_eq((int)g->n_node, (int)nodes);
        ck_assert_int_eq((int)g->n_initializer, (int)inits);
        ck_assert_str_eq(qb_node_named(g, "conv")->output[0], "c");
        ck_assert(f32_at(g, "w", 0) == 0.5f);
        mq_fold_result_free(&r);
        onnx__model_proto__free_unpacked(m, NULL);
    }
}
END_TEST

START_TEST(test_fold_in_subgraph)
{
    /* If (cond) then: Conv -> BN on the outer x, with the outer weight; else: x. */
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3};
    qb_input(g, "x", 1, 4, xd);
    qb_input(g, "cond", 9, 0, NULL);
    qb_init_f32(g, "w", 4, wd, conv_w);
    Onnx__GraphProto *then_g = qb_graph("then");
    add_bn_params(then_g, "t");
    Onnx__NodeProto *conv = qb_node(then_g, "Conv", "tconv", "x,w", "tc");
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(conv, "pads", 4, pads);
    add_bn(then_g, "tbn", "tc", "ty", "t");
    qb_output(then_g, "ty", 1);
    Onnx__GraphProto *else_g = qb_graph("else");
    Onnx__NodeProto *conv2 = qb_node(else_g, "Conv", "econv", "x,w", "ey");
    qb_attr_ints(conv2, "pads", 4, pads);
    qb_output(else_g, "ey", 1);
    Onnx__NodeProto *iff = qb_node(g, "If", "if", "cond", "y");
    qb_attr_graph(iff, "then_branch", then_g);
    qb_attr_graph(iff, "else_branch", else_g);
    qb_output(g, "y", 1);
    struct mq_fold_result r;
    struct mq_error err;
    ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(r.n, 1);
    ck_assert_str_eq(r.items[0].graph, "if/then_branch");
    /* The outer weight is read by the else branch too: the then branch gets its own copy. */
    ck_assert_int_eq((int)then_g->n_node, 1);
    ck_assert_str_eq(then_g->node[0]->input[1], "w_folded");
    ck_assert_str_eq(then_g->node[0]->output[0], "ty");
    ck_assert_ptr_nonnull(init_named(then_g, "w_folded"));
    ck_assert(f32_at(g, "w", 0) == 0.5f);
    mq_fold_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * caffe2's spelling: Conv -> BN -> Mul by [2,1,1] -> Add by [2,1,1] -> Div by a scalar -> y; all
 * three fold one after the other.  Beside it, Conv -> Mul by a [1,4,4] (per position) constant
 * and Conv -> Sub with the constant on the left stay.
 */
START_TEST(test_affine_chain_folded)
{
    Onnx__ModelProto *m = conv_bn_model(1);
    Onnx__GraphProto *g = m->graph;
    /* conv_bn_model ends bn -> n -> Relu -> y: put the affine ops between n and the Relu */
    free(g->node[2]->input[0]);
    g->node[2]->input[0] = strdup("d");
    int64_t cd[3] = {2, 1, 1}, pd[3] = {1, 4, 4};
    const float mul_c[2] = {2.0f, -3.0f}, add_c[2] = {0.5f, -0.25f}, div_c[1] = {4.0f};
    float per_pos[16];
    for (int i = 0; i < 16; i++)
        per_pos[i] = 0.1f * (float)(i + 1);
    qb_init_f32(g, "mul_c", 3, cd, mul_c);
    qb_init_f32(g, "add_c", 3, cd, add_c);
    qb_init_f32(g, "div_c", 0, NULL, div_c);
    qb_init_f32(g, "pos_c", 3, pd, per_pos);
    qb_node(g, "Mul", "scale", "n,mul_c", "s");
    qb_node(g, "Add", "shift", "add_c,s", "a");
    qb_node(g, "Div", "div", "a,div_c", "d");
    /* a second branch whose affine ops may not fold */
    Onnx__NodeProto *conv2 = qb_node(g, "Conv", "conv2", "x,w2", "c2");
    int64_t wd[4] = {2, 1, 3, 3}, pads[4] = {1, 1, 1, 1};
    qb_attr_ints(conv2, "pads", 4, pads);
    qb_init_f32(g, "w2", 4, wd, conv_w);
    qb_node(g, "Mul", "per_position", "c2,pos_c", "p2");
    Onnx__NodeProto *conv3 = qb_node(g, "Conv", "conv3", "x,w3", "c3");
    qb_attr_ints(conv3, "pads", 4, pads);
    qb_init_f32(g, "w3", 4, wd, conv_w);
    qb_node(g, "Sub", "reversed", "add_c,c3", "r3");
    qb_output(g, "p2", 1);
    qb_output(g, "r3", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct mq_fold_result r;
    struct mq_error err;
    ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(r.n, 4);
    const char *ops[4] = {"BatchNormalization", "Mul", "Add", "Div"};
    for (int k = 0; k < 4; k++) {
        ck_assert_str_eq(r.items[k].op_type, ops[k]);
        ck_assert_str_eq(r.items[k].conv, "conv");
    }
    ck_assert_str_eq(qb_node_named(m->graph, "conv")->output[0], "d");
    ck_assert_ptr_nonnull(qb_node_named(m->graph, "per_position"));
    ck_assert_ptr_nonnull(qb_node_named(m->graph, "reversed"));
    ck_assert_ptr_null(init_named(m->graph, "mul_c"));
    ck_assert_ptr_nonnull(init_named(m->graph, "add_c")); /* still read by 'reversed' */
    assert_same_outputs(m, orig, 3);
    mq_fold_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
    onnx__model_proto__free_unpacked(orig, NULL);
}
END_TEST

/* ConvTranspose (group 1: output channels on the weight's axis 1) -> BatchNormalization folds;
   with group 2 it stays. */
START_TEST(test_conv_transpose_bn_folded)
{
    for (int grouped = 0; grouped < 2; grouped++) {
        Onnx__ModelProto *m = qb_model(13);
        Onnx__GraphProto *g = m->graph;
        int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {1, 4, 2, 2}, cd[1] = {4};
        float w[16], b[4] = {0.1f, -0.2f, 0.3f, 0.0f};
        float scale[4] = {1.5f, -0.5f, 2.0f, 0.7f}, shift[4] = {0.25f, 1.0f, -1.0f, 0.0f};
        float mean[4] = {0.2f, -0.3f, 0.1f, 0.05f}, var[4] = {0.5f, 2.0f, 1.0f, 0.25f};
        for (int i = 0; i < 16; i++)
            w[i] = 0.1f * (float)(i % 7) - 0.3f;
        if (grouped) {
            xd[1] = 2;
            wd[0] = 2;
            wd[1] = 2;
        }
        qb_input(g, "x", 1, 4, xd);
        qb_init_f32(g, "w", 4, wd, w);
        qb_init_f32(g, "b", 1, cd, b);
        qb_init_f32(g, "s", 1, cd, scale);
        qb_init_f32(g, "t", 1, cd, shift);
        qb_init_f32(g, "m", 1, cd, mean);
        qb_init_f32(g, "v", 1, cd, var);
        Onnx__NodeProto *ct = qb_node(g, "ConvTranspose", "up", "x,w,b", "c");
        if (grouped)
            qb_attr_int(ct, "group", 2);
        qb_node(g, "BatchNormalization", "bn", "c,s,t,m,v", "y");
        qb_output(g, "y", 1);
        Onnx__ModelProto *orig = qb_copy_model(m);
        struct mq_fold_result r;
        struct mq_error err;
        ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
        ck_assert_int_eq(r.n, grouped ? 0 : 1);
        ck_assert_int_eq((int)m->graph->n_node, grouped ? 2 : 1);
        if (!grouped) {
            ck_assert_str_eq(m->graph->node[0]->output[0], "y");
            assert_same_outputs(m, orig, 1);
        }
        mq_fold_result_free(&r);
        onnx__model_proto__free_unpacked(m, NULL);
        onnx__model_proto__free_unpacked(orig, NULL);
    }
}
END_TEST

/*
 * Squeeze-excitation's Conv -> HardSigmoid -> Mul: the HardSigmoid's alpha and beta go into the
 * Conv's weight and bias and it stays as Clip(0, 1) of the Conv's output, renamed; bounds as
 * inputs from opset 11, as attributes before.  Same outputs.  Conv -> BatchNormalization ->
 * HardSigmoid folds both; a HardSigmoid whose input another node reads too (HardSwish written as
 * x * HardSigmoid(x)) stays.
 */
static Onnx__ModelProto *conv_hardsigmoid_model(int opset, int with_bn, int shared)
{
    Onnx__ModelProto *m = qb_model(opset);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, bd[1] = {2};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_init_f32(g, "b", 1, bd, conv_b);
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(qb_node(g, "Conv", "conv", "x,w,b", "c"), "pads", 4, pads);
    if (with_bn) {
        add_bn_params(g, "bn");
        add_bn(g, "bn", "c", "n", "bn");
    }
    Onnx__NodeProto *hs = qb_node(g, "HardSigmoid", "hsig", with_bn ? "n" : "c", "h");
    qb_attr_float(hs, "alpha", 0.75f);
    qb_attr_float(hs, "beta", 0.375f);
    qb_node(g, "Mul", "excite", shared ? "c,h" : "x,h", "y");
    qb_output(g, "y", 1);
    qb_push((void ***)&g->value_info, &g->n_value_info, qb_value_info("c", 1, -1, NULL));
    return m;
}

START_TEST(test_conv_hardsigmoid_folded)
{
    for (int variant = 0; variant < 3; variant++) {
        int opset = variant == 1 ? 10 : 13, with_bn = variant == 2;
        Onnx__ModelProto *m = conv_hardsigmoid_model(opset, with_bn, 0), *orig = qb_copy_model(m);
        struct mq_fold_result r;
        struct mq_error err;
        ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
        const Onnx__GraphProto *g = m->graph;
        ck_assert_int_eq(r.n, 1 + with_bn);
        const struct mq_fold_record *f = &r.items[with_bn];
        ck_assert_str_eq(f->op_type, "HardSigmoid");
        ck_assert_str_eq(f->batchnorm, "hsig");
        ck_assert_str_eq(f->conv, "conv");
        ck_assert_int_eq(f->clip_left, 1);
        ck_assert_int_eq(r.items[0].clip_left, !with_bn);
        ck_assert_int_eq((int)g->n_node, 3);
        const Onnx__NodeProto *conv = qb_node_named(g, "conv"), *clip = qb_node_named(g, "hsig");
        /* The Conv's output has a new name, which only the Clip reads. */
        ck_assert_str_eq(conv->output[0], "h_affine");
        ck_assert_str_eq(clip->op_type, "Clip");
        ck_assert_str_eq(clip->input[0], "h_affine");
        ck_assert_str_eq(clip->output[0], "h");
        if (opset >= 11) {
            ck_assert_int_eq((int)clip->n_input, 3);
            ck_assert_int_eq((int)clip->n_attribute, 0);
            ck_assert(f32_at(g, clip->input[1], 0) == 0.0f);
            ck_assert(f32_at(g, clip->input[2], 0) == 1.0f);
        } else {
            ck_assert_int_eq((int)clip->n_input, 1);
            ck_assert_int_eq((int)clip->n_attribute, 2);
            ck_assert_str_eq(clip->attribute[0]->name, "min");
            ck_assert(clip->attribute[0]->f == 0.0f);
            ck_assert_str_eq(clip->attribute[1]->name, "max");
            ck_assert(clip->attribute[1]->f == 1.0f);
        }
        if (!with_bn) {
            /* W * alpha, b * alpha + beta */
            ck_assert(fabs(f32_at(g, "w", 0) - 0.5 * 0.75) < 1e-7);
            ck_assert(fabs(f32_at(g, "w", 9) - (-1.0 * 0.75)) < 1e-7);
            ck_assert(fabs(f32_at(g, "b", 0) - (0.1 * 0.75 + 0.375)) < 1e-7);
            ck_assert(fabs(f32_at(g, "b", 1) - (-0.2 * 0.75 + 0.375)) < 1e-7);
        }
        ck_assert_int_eq((int)g->n_value_info, 0); /* the old output "c" is gone */
        assert_same_outputs(m, orig, 1);
        mq_fold_result_free(&r);
        onnx__model_proto__free_unpacked(m, NULL);
        onnx__model_proto__free_unpacked(orig, NULL);
    }
    /* x * HardSigmoid(x), x a Conv's output: the Conv has two readers, nothing folds. */
    Onnx__ModelProto *m = conv_hardsigmoid_model(13, 0, 1);
    struct mq_fold_result r;
    struct mq_error err;
    ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(r.n, 0);
    ck_assert_str_eq(qb_node_named(m->graph, "hsig")->op_type, "HardSigmoid");
    ck_assert_str_eq(qb_node_named(m->graph, "conv")->output[0], "c");
    ck_assert(f32_at(m->graph, "w", 0) == 0.5f);
    mq_fold_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * Gemm -> HardSigmoid, B as [K, N] and transposed as [N, K], with C as [N], [1, N] or none: folds
 * (same outputs; C becomes [N]).  Gemm -> Mul by a per-column constant folds too.  With beta 0.5
 * nothing folds.
 */
START_TEST(test_gemm_folded)
{
    static const float b_kn[6] = {0.5f, -1.0f, 0.25f, 2.0f, -0.75f, 1.5f}; /* [3, 2] */
    static const float b_nk[6] = {0.5f, 0.25f, -0.75f, -1.0f, 2.0f, 1.5f}; /* the same, [2, 3] */
    static const float c_n[2] = {0.3f, -0.6f}, mul_c[2] = {2.0f, -0.5f};
    for (int variant = 0; variant < 6; variant++) {
        int trans_b = variant & 1, c_kind = variant / 2; /* 0: none, 1: [N], 2: [1, N] */
        for (int with_mul = 0; with_mul < 2; with_mul++) {
            Onnx__ModelProto *m = qb_model(13);
            Onnx__GraphProto *g = m->graph;
            int64_t xd[2] = {4, 3}, bd[2] = {trans_b ? 2 : 3, trans_b ? 3 : 2}, cd[2] = {1, 2};
            qb_input(g, "x", 1, 2, xd);
            qb_init_f32(g, "B", 2, bd, trans_b ? b_nk : b_kn);
            if (c_kind)
                qb_init_f32(g, "C", c_kind == 1 ? 1 : 2, c_kind == 1 ? cd + 1 : cd, c_n);
            Onnx__NodeProto *gemm = qb_node(g, "Gemm", "fc", c_kind ? "x,B,C" : "x,B", "f");
            qb_attr_float(gemm, "alpha", 1.5f);
            if (trans_b)
                qb_attr_int(gemm, "transB", 1);
            const char *hs_in = "f";
            if (with_mul) {
                qb_init_f32(g, "mul_c", 1, cd + 1, mul_c);
                qb_node(g, "Mul", "scale", "f,mul_c", "s");
                hs_in = "s";
            }
            Onnx__NodeProto *hs = qb_node(g, "HardSigmoid", "hsig", hs_in, "y");
            qb_attr_float(hs, "alpha", 0.5f);
            qb_output(g, "y", 1);
            Onnx__ModelProto *orig = qb_copy_model(m);
            struct mq_fold_result r;
            struct mq_error err;
            ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
            ck_assert_int_eq(r.n, 1 + with_mul);
            ck_assert_str_eq(r.items[r.n - 1].op_type, "HardSigmoid");
            ck_assert_str_eq(r.items[r.n - 1].conv, "fc");
            ck_assert_int_eq((int)g->n_node, 2);
            const Onnx__NodeProto *fc = qb_node_named(g, "fc");
            ck_assert_int_eq((int)fc->n_input, 3);
            const Onnx__TensorProto *c = init_named(g, fc->input[2]);
            ck_assert_int_eq((int)c->n_dims, 1);
            ck_assert_str_eq(qb_node_named(g, "hsig")->op_type, "Clip");
            /* x in [-1, 1): values on both sides of the clamp */
            struct mq_tensor x, ya, yb;
            ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 2, xd, "x", &err), MQ_OK);
            for (int i = 0; i < 12; i++)
                ((float *)x.data)[i] = (float)((i * 5) % 12) / 6.0f - 1.0f;
            mr_run(m, &x, 1, &ya, 1);
            mr_run(orig, &x, 1, &yb, 1);
            int low = 0, high = 0;
            for (int64_t i = 0; i < ya.count; i++) {
                float u = ((float *)ya.data)[i], v = ((float *)yb.data)[i];
                ck_assert_msg(fabsf(u - v) <= 1e-6f, "[%lld]: %g vs %g", (long long)i, (double)u,
                              (double)v);
                low += v == 0.0f;
                high += v == 1.0f;
            }
            ck_assert_msg(low > 0 && high > 0, "the test values miss a clamp");
            mq_tensor_free(&x);
            mq_tensor_free(&ya);
            mq_tensor_free(&yb);
            mq_fold_result_free(&r);
            onnx__model_proto__free_unpacked(m, NULL);
            onnx__model_proto__free_unpacked(orig, NULL);
        }
    }
    /* beta 0.5: the shift would have to be divided by it; left as it is */
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[2] = {4, 3}, bd[2] = {3, 2}, cd[1] = {2};
    qb_input(g, "x", 1, 2, xd);
    qb_init_f32(g, "B", 2, bd, b_kn);
    qb_init_f32(g, "C", 1, cd, c_n);
    qb_attr_float(qb_node(g, "Gemm", "fc", "x,B,C", "f"), "beta", 0.5f);
    qb_node(g, "HardSigmoid", "hsig", "f", "y");
    qb_output(g, "y", 1);
    struct mq_fold_result r;
    struct mq_error err;
    ck_assert_msg(mq_fold_batchnorm(m, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(r.n, 0);
    ck_assert_str_eq(qb_node_named(g, "hsig")->op_type, "HardSigmoid");
    mq_fold_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_batchnorm_fold");
    TCase *tc = tcase_create("fold");
    tcase_add_test(tc, test_conv_bn_folded);
    tcase_add_test(tc, test_shared_weight_copied);
    tcase_add_test(tc, test_not_folded);
    tcase_add_test(tc, test_fold_in_subgraph);
    tcase_add_test(tc, test_affine_chain_folded);
    tcase_add_test(tc, test_conv_transpose_bn_folded);
    tcase_add_test(tc, test_conv_hardsigmoid_folded);
    tcase_add_test(tc, test_gemm_folded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
