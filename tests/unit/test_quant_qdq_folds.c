/*
 * The folds and splits that go with the QDQ rewrite, on small hand-built
 * graphs: a Clip or Relu folded into the quantization before it only when
 * that clamps exactly the same and no other op shares that scale, HardSwish
 * split into ops the rewrite can quantize, a folded HardSigmoid leaving an
 * all-integer chain, and a zero Pad folded into the Conv or AveragePool that
 * reads it.
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include "quant/batchnorm_fold.h"
#include "quant/dequantize.h"
#include "quant/hardswish_split.h"
#include "quant/pad_fold.h"
#include "quant/qdq.h"
#include "model_run.h"
#include "qdq_checks.h"
#include "quant_builder.h"
#include "quant_run.h"

START_TEST(test_clip_fold_only_when_exact)
{
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    for (int variant = 0; variant < 2; variant++) {
        Onnx__ModelProto *m = qb_model(13);
        Onnx__GraphProto *g = m->graph;
        int64_t xd[2] = {1, 3}, wd[2] = {3, 3}, sd[1] = {0};
        float w[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        float lo = variant == 0 ? 0.0f : 2.0f, hi = 6.0f;
        qb_input(g, "x", 1, 2, xd);
        qb_init_f32(g, "w", 2, wd, w);
        qb_init_f32(g, "lo", 0, sd, &lo);
        qb_init_f32(g, "hi", 0, sd, &hi);
        qb_node(g, "MatMul", "mm", "x,w", "m");
        qb_node(g, "Clip", "clip", "m,lo,hi", "y");
        qb_output(g, "y", 1);
        struct range_spec ranges[] = {{"x", -8, 8}, {"m", -8, 8}, {"y", lo, hi}};
        struct run r;
        quantize(m, ranges, 3, &o, &r);
        ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
        if (variant == 0) {
            /* Clip(0, 6): the Q/DQ with range [0, 6] clamps exactly as it did. */
            ck_assert_int_eq(choice(&r, "clip")->status, MQ_NODE_FOLDED);
            ck_assert_ptr_null(init_named(g, "lo")); /* its bounds are unused now */
            ck_assert_str_eq(metadata(m, MQ_FOLDED_ACTIVATIONS_KEY),
                             "y_QuantizeLinear_Input\tClip\tclip\t0\t6\n");
        } else {
            /* Clip(2, 6): zero must stay representable, so [0, 6] would let 1.0 through. */
            ck_assert_int_eq(choice(&r, "clip")->status, MQ_NODE_QUANTIZED);
            ck_assert_ptr_null(metadata(m, MQ_FOLDED_ACTIVATIONS_KEY));
            assert_io(qb_node_named(g, "clip"), "Clip", "m_dequantized,lo,hi",
                      "y_QuantizeLinear_Input");
        }
        run_free(&r);
        onnx__model_proto__free_unpacked(m, NULL);
    }
}
END_TEST

START_TEST(test_no_fold_into_shared_scale)
{
    /* Conv -> MaxPool -> Relu -> Conv: the pool's output shares the Conv's scale (zero point
       128 for [-3, 3]), so that onnxruntime runs the pool on uint8 data; folded, the Relu
       would give the pool's output a range of its own, and onnxruntime would run the pool in
       float between a DQ and a Q.  The Relu stays, with its own post-Relu Q/DQ after it. */
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_node(g, "Conv", "conv", "x,w", "c");
    Onnx__NodeProto *pool = qb_node(g, "MaxPool", "pool", "c", "p");
    int64_t k[2] = {2, 2};
    qb_attr_ints(pool, "kernel_shape", 2, k);
    qb_node(g, "Relu", "relu", "p", "y");
    qb_init_f32(g, "w2", 4, wd, conv_w);
    qb_node(g, "Conv", "conv2", "y,w2", "z");
    qb_output(g, "z", 1);
    struct range_spec ranges[] = {{"x", -1, 1}, {"c", -3, 3}, {"p", -2, 3}, {"y", 0, 3},
                                  {"z", -4, 4}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 5, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_ne(choice(&r, "relu")->status, MQ_NODE_FOLDED);
    assert_io(qb_node_named(g, "pool"), "MaxPool", "c_dequantized", "p");
    assert_io(qb_node_named(g, "p_QuantizeLinear"), "QuantizeLinear", "p,c_scale,c_zero_point",
              "p_quantized");
    ck_assert_str_eq(record(&r, "p")->shared_with, "c");
    assert_io(qb_node_named(g, "relu"), "Relu", "p_dequantized", "y");
    assert_io(qb_node_named(g, "y_QuantizeLinear"), "QuantizeLinear", "y,y_scale,y_zero_point",
              "y_quantized");
    ck_assert_int_eq(int_at(g, "y_zero_point", 0), 0);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * A HardSwish behind a Conv becomes Add, Clip, Mul, Mul (same values); one
 * the graph returns, or behind anything but an island start, stays.
 */
START_TEST(test_hardswish_split)
{
    Onnx__ModelProto *m = qb_model(14);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, w2d[4] = {2, 2, 1, 1};
    float w2[4] = {1, -1, 0.5f, 0.25f};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_init_f32(g, "w2", 4, w2d, w2);
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(qb_node(g, "Conv", "conv", "x,w", "c"), "pads", 4, pads);
    qb_node(g, "HardSwish", "hs", "c", "h");
    qb_node(g, "Conv", "conv2", "h,w2", "d");
    qb_node(g, "HardSwish", "hs_out", "d", "y");       /* a graph output: stays */
    qb_node(g, "HardSwish", "hs_input", "x", "z");     /* behind no Conv: stays */
    qb_output(g, "y", 1);
    qb_output(g, "z", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_split_hardswish(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq((int)g->n_node, 8);
    ck_assert_ptr_null(qb_node_named(g, "hs"));
    ck_assert_str_eq(qb_node_named(g, "hs_out")->op_type, "HardSwish");
    ck_assert_str_eq(qb_node_named(g, "hs_input")->op_type, "HardSwish");
    /* In place of the HardSwish, in order: x + 3, Clip to [0, 6], times x, times 1/6. */
    ck_assert_str_eq(g->node[1]->op_type, "Add");
    ck_assert_str_eq(g->node[2]->op_type, "Clip");
    ck_assert_str_eq(g->node[3]->op_type, "Mul");
    ck_assert_str_eq(g->node[4]->op_type, "Mul");
    ck_assert_str_eq(g->node[1]->input[0], "c");
    ck_assert_str_eq(g->node[3]->input[0], "c");
    ck_assert_str_eq(g->node[4]->output[0], "h");
    ck_assert(f32_at(g, g->node[1]->input[1], 0) == 3.0f);
    ck_assert(f32_at(g, g->node[2]->input[1], 0) == 0.0f);
    ck_assert(f32_at(g, g->node[2]->input[2], 0) == 6.0f);
    ck_assert(f32_at(g, g->node[4]->input[1], 0) == 1.0f / 6.0f);

    float xv[16];
    for (int i = 0; i < 16; i++)
        xv[i] = (float)((i * 7) % 16) - 8.0f; /* -8..7: every piece of HardSwish */
    struct mq_tensor x = tensor_f32(4, xd, xv), a[2], b[2];
    mr_run(m, &x, 1, a, 2);
    mr_run(orig, &x, 1, b, 2);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(a[k].count, b[k].count);
        const float *pa = a[k].data, *pb = b[k].data;
        for (int64_t i = 0; i < a[k].count; i++)
            ck_assert_msg(fabsf(pa[i] - pb[i]) <= 1e-5f * (1.0f + fabsf(pb[i])),
                          "output %d[%lld]: %g, HardSwish gives %g", k, (long long)i,
                          (double)pa[i], (double)pb[i]);
        mq_tensor_free(&a[k]);
        mq_tensor_free(&b[k]);
    }
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * Conv -> HardSigmoid -> Mul after the fold (quant/batchnorm_fold.c): the Clip(0, 1) left in
 * the HardSigmoid's place folds into the Conv's output quantization, so the Conv writes the
 * Mul's quantized input directly, range [0, 1], and no float op is left between them.
 */
START_TEST(test_hardsigmoid_fold_leaves_int8_chain)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, bd[1] = {2}, pads[4] = {1, 1, 1, 1};
    int64_t w2d[4] = {2, 2, 1, 1};
    float w2[4] = {1, -1, 0.5f, 0.25f};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w0", 4, wd, conv_w);
    qb_init_f32(g, "w", 4, w2d, w2);
    qb_init_f32(g, "b", 1, bd, conv_b);
    qb_attr_ints(qb_node(g, "Conv", "conv0", "x,w0", "t"), "pads", 4, pads);
    qb_node(g, "Conv", "conv", "t,w,b", "c");
    qb_node(g, "HardSigmoid", "hsig", "c", "h");
    qb_node(g, "Mul", "excite", "t,h", "y");
    qb_init_f32(g, "w3", 4, w2d, w2);
    qb_node(g, "Conv", "conv3", "y,w3", "z"); /* the Mul must reach an integer kernel */
    qb_output(g, "z", 1);
    struct mq_fold_result folds;
    struct mq_error err;
    ck_assert_msg(mq_fold_batchnorm(m, &folds, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(folds.n, 1);
    mq_fold_result_free(&folds);
    struct range_spec ranges[] = {
        {"x", -1, 1}, {"t", -2, 2}, {"h_affine", -1.5f, 1.25f}, {"h", 0, 1}, {"y", -2, 2},
        {"z", -4, 4}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 6, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_eq(choice(&r, "hsig")->status, MQ_NODE_FOLDED);
    ck_assert_int_eq(choice(&r, "conv")->status, MQ_NODE_QUANTIZED);
    ck_assert_int_eq(choice(&r, "excite")->status, MQ_NODE_QUANTIZED);
    for (size_t i = 0; i < g->n_node; i++)
        ck_assert_msg(strcmp(g->node[i]->op_type, "Clip") != 0 &&
                          strcmp(g->node[i]->op_type, "HardSigmoid") != 0,
                      "%s left", g->node[i]->op_type);
    /* The Conv's output quantized with the Clip's range: [0, 1], zero point 0. */
    assert_io(qb_node_named(g, "conv"), "Conv", "t_dequantized,w_dequantized,b_dequantized", "h");
    assert_io(qb_node_named(g, "h_QuantizeLinear"), "QuantizeLinear", "h,h_scale,h_zero_point",
              "h_quantized");
    ck_assert(f32_at(g, "h_scale", 0) == (float)(1.0 / 255.0));
    ck_assert_int_eq(int_at(g, "h_zero_point", 0), 0);
    /* recorded, for dequantize to put the Clip back */
    ck_assert_str_eq(metadata(m, MQ_FOLDED_ACTIVATIONS_KEY), "h\tClip\thsig\t0\t1\n");
    assert_io(qb_node_named(g, "excite"), "Mul", "t_dequantized,h_dequantized", "y");
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * A zero Pad read only by a Conv goes into the Conv's pads (same values); a
 * Pad with a non-zero value, or whose output something else reads too, stays.
 */
START_TEST(test_pad_folded_into_conv)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, pd[1] = {8}, one[1] = {1};
    int64_t pads[8] = {0, 0, 1, 0, 0, 0, 1, 2};
    float two = 2.0f;
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_init_i64(g, "pads", 1, pd, pads);
    qb_init_f32(g, "two", 1, one, &two);
    int64_t conv_pads[4] = {0, 1, 0, 1};
    qb_node(g, "Pad", "pad", "x,pads", "p");
    qb_attr_ints(qb_node(g, "Conv", "conv", "p,w", "y"), "pads", 4, conv_pads);
    qb_node(g, "Pad", "pad_two", "x,pads,two", "p2");   /* pads with 2: stays */
    qb_node(g, "Conv", "conv2", "p2,w", "y2");
    qb_node(g, "Pad", "pad_shared", "x,pads", "p3");    /* also an output: stays */
    qb_node(g, "Conv", "conv3", "p3,w", "y3");
    qb_output(g, "y", 1);
    qb_output(g, "y2", 1);
    qb_output(g, "y3", 1);
    qb_output(g, "p3", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_fold_pad_into_conv(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(qb_node_named(g, "pad"));
    ck_assert_ptr_nonnull(qb_node_named(g, "pad_two"));
    ck_assert_ptr_nonnull(qb_node_named(g, "pad_shared"));
    const Onnx__NodeProto *conv = qb_node_named(g, "conv");
    ck_assert_str_eq(conv->input[0], "x");
    /* Begins [0, 1] + [1, 0], ends [0, 1] + [1, 2]. */
    const Onnx__AttributeProto *a = NULL;
    for (size_t i = 0; i < conv->n_attribute; i++)
        if (strcmp(conv->attribute[i]->name, "pads") == 0)
            a = conv->attribute[i];
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq((int)a->n_ints, 4);
    ck_assert_int_eq(a->ints[0], 1);
    ck_assert_int_eq(a->ints[1], 1);
    ck_assert_int_eq(a->ints[2], 1);
    ck_assert_int_eq(a->ints[3], 3);
    ck_assert_ptr_nonnull(init_named(g, "pads")); /* still read by the other Pads */

    float xv[16];
    for (int i = 0; i < 16; i++)
        xv[i] = (float)((i * 7) % 16) / 8.0f - 1.0f;
    struct mq_tensor x = tensor_f32(4, xd, xv);
    mr_assert_close(m, orig, &x, 1, 4, 1e-5f, 0.0f, "Pad + Conv");
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * A zero Pad read only by an AveragePool becomes the pool's pads, the zeros
 * counted (count_include_pad): the same averages.  A pool that already pads
 * without counting, or rounds its windows up (ceil_mode), keeps its Pad.
 */
START_TEST(test_pad_folded_into_average_pool)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 2, 5, 5}, pd[1] = {8};
    int64_t pads[8] = {0, 0, 1, 1, 0, 0, 1, 2};
    int64_t k3[2] = {3, 3}, s2[2] = {2, 2}, own[4] = {1, 1, 1, 1};
    qb_input(g, "x", 1, 4, xd);
    qb_init_i64(g, "pads", 1, pd, pads);
    qb_node(g, "Pad", "pad", "x,pads", "p");
    Onnx__NodeProto *pool = qb_node(g, "AveragePool", "pool", "p", "y");
    qb_attr_ints(pool, "kernel_shape", 2, k3);
    qb_attr_ints(pool, "strides", 2, s2);
    qb_node(g, "Pad", "pad_own", "x,pads", "p2"); /* the pool pads without counting: stays */
    Onnx__NodeProto *pool2 = qb_node(g, "AveragePool", "pool2", "p2", "y2");
    qb_attr_ints(pool2, "kernel_shape", 2, k3);
    qb_attr_ints(pool2, "pads", 4, own);
    qb_node(g, "Pad", "pad_ceil", "x,pads", "p3"); /* ceil_mode: stays */
    Onnx__NodeProto *pool3 = qb_node(g, "AveragePool", "pool3", "p3", "y3");
    qb_attr_ints(pool3, "kernel_shape", 2, k3);
    qb_attr_ints(pool3, "strides", 2, s2);
    qb_attr_int(pool3, "ceil_mode", 1);
    qb_output(g, "y", 1);
    qb_output(g, "y2", 1);
    qb_output(g, "y3", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_fold_pad_into_conv(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(qb_node_named(g, "pad"));
    ck_assert_ptr_nonnull(qb_node_named(g, "pad_own"));
    ck_assert_ptr_nonnull(qb_node_named(g, "pad_ceil"));
    const Onnx__NodeProto *folded = qb_node_named(g, "pool");
    ck_assert_str_eq(folded->input[0], "x");
    int counted = 0;
    for (size_t i = 0; i < folded->n_attribute; i++)
        if (strcmp(folded->attribute[i]->name, "count_include_pad") == 0)
            counted = (int)folded->attribute[i]->i;
    ck_assert_int_eq(counted, 1);

    float xv[50];
    for (int i = 0; i < 50; i++)
        xv[i] = (float)((i * 7) % 13) / 4.0f - 1.0f;
    struct mq_tensor x = tensor_f32(4, xd, xv);
    mr_assert_close(m, orig, &x, 1, 3, 1e-5f, 0.0f, "Pad + pool");
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_qdq_folds");
    TCase *tc = tcase_create("folds");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_clip_fold_only_when_exact);
    tcase_add_test(tc, test_no_fold_into_shared_scale);
    tcase_add_test(tc, test_hardswish_split);
    tcase_add_test(tc, test_hardsigmoid_fold_leaves_int8_chain);
    tcase_add_test(tc, test_pad_folded_into_conv);
    tcase_add_test(tc, test_pad_folded_into_average_pool);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
