/*
 * The QDQ rewrite on small hand-built graphs: what nodes and initializers
 * come out, with which names, values, scales and zero points, and that the
 * result still runs in the reference interpreter close to the float model.
 * The folds and splits around the rewrite are in test_quant_qdq_folds.c,
 * which ops join a quantized island in test_quant_qdq_islands.c.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/ranges.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/dequantize.h"
#include "quant/graph.h"
#include "quant/params.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "model_run.h"
#include "qdq_checks.h"
#include "quant_builder.h"
#include "quant_run.h"
#include "report/report.h"

/* ---------------------------------------------------------------- helpers */

static int node_index(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (strcmp(g->node[i]->name ? g->node[i]->name : "", name) == 0)
            return (int)i;
    return -1;
}

/* The one output of a model built in memory, run as a saved file would be. */
static void run_model(const Onnx__ModelProto *m, const struct mq_tensor *in, int n_in,
                      struct mq_tensor *out)
{
    mr_run(m, in, n_in, out, 1);
}

/* ------------------------------------------------------------ Conv + Relu */

/* x [1,1,4,4] -> Conv (2 filters 3x3, pad 1) -> c -> Relu -> y (graph output). */
static Onnx__ModelProto *conv_relu_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, bd[1] = {2};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_init_f32(g, "b", 1, bd, conv_b);
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", "x,w,b", "c");
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(conv, "pads", 4, pads);
    qb_node(g, "Relu", "relu", "c", "y");
    qb_output(g, "y", 1);
    qb_push((void ***)&g->value_info, &g->n_value_info, qb_value_info("c", 1, -1, NULL));
    return m;
}

static const struct range_spec conv_ranges[] = {{"x", -1.0f, 1.0f}, {"c", -3.0f, 3.0f},
                                                {"y", 0.0f, 3.0f}};

START_TEST(test_conv_relu)
{
    Onnx__ModelProto *m = conv_relu_model(), *orig = qb_copy_model(m);
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    const Onnx__GraphProto *g = m->graph;

    /* Relu folded into the Conv; the graph output keeps its name, written by the last DQ. */
    ck_assert_int_eq(choice(&r, "relu")->status, MQ_NODE_FOLDED);
    ck_assert_int_eq(choice(&r, "conv")->status, MQ_NODE_QUANTIZED);
    ck_assert_int_eq(r.res.folded, 1);
    /* The record dequantize reads to put the Relu back: the tensor its QuantizeLinear reads. */
    ck_assert_str_eq(metadata(m, MQ_FOLDED_ACTIVATIONS_KEY),
                     "y_QuantizeLinear_Input\tRelu\trelu\t0\tinf\n");
    ck_assert_int_eq((int)g->n_node, 7);
    ck_assert_ptr_null(qb_node_named(g, "relu"));
    assert_io(qb_node_named(g, "x_QuantizeLinear"), "QuantizeLinear", "x,x_scale,x_zero_point",
              "x_quantized");
    assert_io(qb_node_named(g, "x_DequantizeLinear"), "DequantizeLinear",
              "x_quantized,x_scale,x_zero_point", "x_dequantized");
    /* Weight and bias zero points are all 0, DequantizeLinear's default: no input. */
    assert_io(qb_node_named(g, "w_DequantizeLinear"), "DequantizeLinear", "w_quantized,w_scale",
              "w_dequantized");
    assert_io(qb_node_named(g, "b_DequantizeLinear"), "DequantizeLinear", "b_quantized,b_scale",
              "b_dequantized");
    ck_assert_ptr_null(init_named(g, "w_zero_point"));
    ck_assert_ptr_null(init_named(g, "b_zero_point"));
    assert_io(qb_node_named(g, "conv"), "Conv", "x_dequantized,w_dequantized,b_dequantized",
              "y_QuantizeLinear_Input");
    assert_io(qb_node_named(g, "y_QuantizeLinear"), "QuantizeLinear",
              "y_QuantizeLinear_Input,y_scale,y_zero_point", "y_quantized");
    assert_io(qb_node_named(g, "y_DequantizeLinear"), "DequantizeLinear",
              "y_quantized,y_scale,y_zero_point", "y");
    ck_assert_str_eq(g->output[0]->name, "y");
    /* Topological: the Conv after its inputs' DQs, the output pair after the Conv. */
    ck_assert_int_lt(node_index(g, "x_DequantizeLinear"), node_index(g, "conv"));
    ck_assert_int_lt(node_index(g, "b_DequantizeLinear"), node_index(g, "conv"));
    ck_assert_int_lt(node_index(g, "conv"), node_index(g, "y_QuantizeLinear"));
    /* The folded tensor's value_info and the float weights are gone. */
    ck_assert_int_eq((int)g->n_value_info, 0);
    ck_assert_ptr_null(init_named(g, "w"));
    ck_assert_ptr_null(init_named(g, "b"));

    /* Input: uint8 [-1, 1] -> scale 2/255, zero point rint(127.5) = 128. */
    ck_assert(f32_at(g, "x_scale", 0) == (float)(2.0 / 255.0));
    ck_assert_int_eq(int_at(g, "x_zero_point", 0), 128);
    ck_assert_int_eq(init_named(g, "x_zero_point")->data_type, MQ_DTYPE_UINT8);
    /* Output: the post-Relu range [0, 3]: scale 3/255, zero point 0 (clamps like Relu). */
    ck_assert(f32_at(g, "y_scale", 0) == (float)(3.0 / 255.0));
    ck_assert_int_eq(int_at(g, "y_zero_point", 0), 0);

    /* Weights: int8 symmetric per output channel, axis 0. */
    ck_assert_int_eq(init_named(g, "w_quantized")->data_type, MQ_DTYPE_INT8);
    ck_assert_int_eq((int)init_named(g, "w_scale")->n_dims, 1);
    float s0 = (float)((double)(2.0f * 0.6f) / 254.0), s1 = (float)((double)(2.0f * 1.0f) / 254.0);
    ck_assert(f32_at(g, "w_scale", 0) == s0);
    ck_assert(f32_at(g, "w_scale", 1) == s1);
    ck_assert_int_eq(int_at(g, "w_quantized", 7), 127);   /* 0.6 / s0 */
    ck_assert_int_eq(int_at(g, "w_quantized", 9), -127);  /* -1.0 / s1 */
    ck_assert_int_eq(int_at(g, "w_quantized", 0), (int)nearbyintf(0.5f / s0));
    const Onnx__NodeProto *wdq = qb_node_named(g, "w_DequantizeLinear");
    ck_assert_int_eq((int)wdq->n_attribute, 1);
    ck_assert_str_eq(wdq->attribute[0]->name, "axis");
    ck_assert_int_eq(wdq->attribute[0]->i, 0);

    /* Bias: int32, scale x_scale * w_scale[c], zero point 0. */
    float xs = (float)(2.0 / 255.0);
    ck_assert_int_eq(init_named(g, "b_quantized")->data_type, MQ_DTYPE_INT32);
    ck_assert(f32_at(g, "b_scale", 0) == xs * s0);
    ck_assert(f32_at(g, "b_scale", 1) == xs * s1);
    ck_assert_int_eq(int_at(g, "b_quantized", 0), (int64_t)nearbyintf(0.1f / (xs * s0)));
    ck_assert_int_eq(int_at(g, "b_quantized", 1), (int64_t)nearbyintf(-0.2f / (xs * s1)));

    /* The report's records. */
    const struct mq_qtensor_record *wr = record(&r, "w");
    ck_assert_int_eq(wr->role, MQ_QT_WEIGHT);
    ck_assert_int_eq(wr->axis, 0);
    ck_assert_int_eq(wr->n_channels, 2);
    ck_assert_int_eq(record(&r, "b")->role, MQ_QT_BIAS);
    ck_assert(record(&r, "y")->range_min == 0.0f);

    /* And it still computes the same thing, within quantization error. */
    float xv[16];
    for (int i = 0; i < 16; i++)
        xv[i] = (float)((i * 7) % 16) / 8.0f - 1.0f;
    int64_t xd[4] = {1, 1, 4, 4};
    struct mq_tensor x = tensor_f32(4, xd, xv), yq, yf;
    run_model(m, &x, 1, &yq);
    run_model(orig, &x, 1, &yf);
    ck_assert_int_eq(yq.count, 32);
    for (int i = 0; i < 32; i++) {
        float a = ((float *)yq.data)[i], b = ((float *)yf.data)[i];
        ck_assert_msg(fabsf(a - b) < 0.05f, "y[%d]: %g vs %g", i, (double)a, (double)b);
        ck_assert(a >= 0.0f);
    }
    mq_tensor_free(&x);
    mq_tensor_free(&yq);
    mq_tensor_free(&yf);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
    onnx__model_proto__free_unpacked(orig, NULL);
}
END_TEST

START_TEST(test_deterministic_and_names_collide)
{
    Onnx__ModelProto *a = conv_relu_model();
    /* Names the rewrite wants are taken: it must pick others, never reuse. */
    int64_t one[1] = {1};
    float v = 0.0f;
    qb_init_f32(a->graph, "x_scale", 1, one, &v);
    qb_node(a->graph, "Identity", "x_QuantizeLinear", "x_scale", "x_quantized");
    qb_output(a->graph, "x_quantized", 1);
    Onnx__ModelProto *b = qb_copy_model(a);
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run ra, rb;
    quantize(a, conv_ranges, 3, &o, &ra);
    quantize(b, conv_ranges, 3, &o, &rb);
    ck_assert_msg(ra.rc == MQ_OK, "%s", ra.err.message);
    ck_assert_int_eq(rb.rc, MQ_OK);
    size_t na = onnx__model_proto__get_packed_size(a), nb = onnx__model_proto__get_packed_size(b);
    ck_assert_uint_eq(na, nb);
    uint8_t *pa = malloc(na), *pb = malloc(nb);
    onnx__model_proto__pack(a, pa);
    onnx__model_proto__pack(b, pb);
    ck_assert(memcmp(pa, pb, na) == 0);
    free(pa);
    free(pb);
    const Onnx__GraphProto *g = a->graph;
    assert_io(qb_node_named(g, "x_QuantizeLinear_1"), "QuantizeLinear",
              "x,x_scale_1,x_zero_point", "x_quantized_1");
    ck_assert_ptr_nonnull(qb_node_named(g, "x_QuantizeLinear")); /* the Identity, untouched */
    ck_assert(f32_at(g, "x_scale", 0) == 0.0f);
    run_free(&ra);
    run_free(&rb);
    onnx__model_proto__free_unpacked(a, NULL);
    onnx__model_proto__free_unpacked(b, NULL);
}
END_TEST

/* ------------------------------------------------------------ MatMul + Add */

START_TEST(test_matmul_add)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[2] = {2, 4}, wd[2] = {4, 3}, bd[1] = {3}, w2d[2] = {3, 2};
    const float w[12] = {1, -2, 0.5f, 0.25f, 3, -1, 0, 1, 2, -0.5f, 0.75f, 1.5f};
    const float bias[3] = {0.5f, 1.0f, -2.0f};
    const float w2[6] = {0.5f, -1, 1, 0.25f, -0.5f, 2};
    qb_input(g, "x", 1, 2, xd);
    qb_init_f32(g, "W", 2, wd, w);
    qb_init_f32(g, "B", 1, bd, bias);
    qb_init_f32(g, "W2", 2, w2d, w2);
    qb_node(g, "MatMul", "mm", "x,W", "m");
    qb_node(g, "Add", "add", "m,B", "y");
    qb_node(g, "Relu", "after", "y", "z"); /* y is also a graph output: no folding */
    qb_node(g, "MatMul", "mm2", "z,W2", "out");
    qb_output(g, "y", 1);
    qb_output(g, "out", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct range_spec ranges[] = {{"x", -1, 1}, {"m", -6, 6}, {"y", -7, 7}, {"z", 0, 7},
                                  {"out", -20, 20}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    /* Add is quantized only when named (not a default op type). */
    quantize_ops(m, ranges, 5, &o, "MatMul,Add,Relu", &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);

    /* W per column (axis 1 of a 2-D B): three scales 2*max|col|/254. */
    ck_assert_int_eq(record(&r, "W")->axis, 1);
    ck_assert_int_eq(record(&r, "W")->n_channels, 3);
    ck_assert(f32_at(g, "W_scale", 0) == (float)((double)(2.0f * 1.0f) / 254.0));
    ck_assert(f32_at(g, "W_scale", 1) == (float)((double)(2.0f * 3.0f) / 254.0));
    ck_assert(f32_at(g, "W_scale", 2) == (float)((double)(2.0f * 2.0f) / 254.0));
    /* Add's constant is quantized like an activation: uint8, asymmetric, per tensor. */
    ck_assert_int_eq(record(&r, "B")->role, MQ_QT_CONSTANT);
    ck_assert_int_eq(init_named(g, "B_quantized")->data_type, MQ_DTYPE_UINT8);
    ck_assert(f32_at(g, "B_scale", 0) == (float)(3.0 / 255.0));
    ck_assert_int_eq(int_at(g, "B_zero_point", 0), 170); /* rint(2 / (3/255)) = rint(170) */
    assert_io(qb_node_named(g, "add"), "Add", "m_dequantized,B_dequantized", "y_QuantizeLinear_Input");
    assert_io(qb_node_named(g, "y_DequantizeLinear"), "DequantizeLinear",
              "y_quantized,y_scale,y_zero_point", "y");
    /* The Relu reads y (now the DQ output) and gets its own pair. */
    assert_io(qb_node_named(g, "after"), "Relu", "y", "z");
    /* Nothing quantized reads mm2's output (a graph output): it stays float, which
       onnxruntime runs as MatMulIntegerToFloat. */
    assert_io(qb_node_named(g, "mm2"), "MatMul", "z_dequantized,W2_dequantized", "out");
    ck_assert_int_eq(choice(&r, "after")->status, MQ_NODE_QUANTIZED);
    ck_assert_str_eq(g->output[0]->name, "y");
    ck_assert_str_eq(g->output[1]->name, "out");
    ck_assert_ptr_null(init_named(g, "W"));
    ck_assert_ptr_null(init_named(g, "B"));

    float xv[8] = {0.5f, -1, 0.25f, 1, -0.75f, 0, 1, -0.5f};
    struct mq_tensor x = tensor_f32(2, xd, xv), yq[2], yf[2];
    mr_run(m, &x, 1, yq, 2);
    mr_run(orig, &x, 1, yf, 2);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < (k ? 4 : 6); i++)
            ck_assert_msg(fabsf(((float *)yq[k].data)[i] - ((float *)yf[k].data)[i]) < 0.25f,
                          "%d,%d: %g vs %g", k, i, (double)((float *)yq[k].data)[i],
                          (double)((float *)yf[k].data)[i]);
    mq_tensor_free(&x);
    for (int k = 0; k < 2; k++) {
        mq_tensor_free(&yq[k]);
        mq_tensor_free(&yf[k]);
    }
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
    onnx__model_proto__free_unpacked(orig, NULL);
}
END_TEST

/* ---------------------------------------------------- Reshape shares its scale */

START_TEST(test_reshape_shares_scale)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3}, sd[1] = {2}, w2d[2] = {32, 2};
    int64_t shape[2] = {1, 32};
    float w2[64];
    for (int i = 0; i < 64; i++)
        w2[i] = (float)((i * 5) % 11) / 10.0f - 0.5f;
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_init_i64(g, "shape", 1, sd, shape);
    qb_init_f32(g, "w2", 2, w2d, w2);
    Onnx__NodeProto *conv = qb_node(g, "Conv", "conv", "x,w", "c");
    int64_t pads[4] = {1, 1, 1, 1};
    qb_attr_ints(conv, "pads", 4, pads);
    qb_node(g, "Reshape", "reshape", "c,shape", "r");
    qb_node(g, "MatMul", "fc", "r,w2", "y");
    qb_output(g, "y", 1);
    struct range_spec ranges[] = {{"x", -1, 1}, {"c", -3, 3}, {"r", -2.5f, 2.9f}, {"y", -5, 5}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 4, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_eq(choice(&r, "reshape")->status, MQ_NODE_QUANTIZED);
    /* The Reshape reads c's DQ and its output's pair uses c's scale and zero point. */
    assert_io(qb_node_named(g, "reshape"), "Reshape", "c_dequantized,shape", "r");
    assert_io(qb_node_named(g, "r_QuantizeLinear"), "QuantizeLinear", "r,c_scale,c_zero_point",
              "r_quantized");
    assert_io(qb_node_named(g, "fc"), "MatMul", "r_dequantized,w2_dequantized", "y");
    ck_assert_ptr_null(init_named(g, "r_scale"));
    ck_assert_str_eq(record(&r, "r")->shared_with, "c");
    ck_assert(record(&r, "r")->scales[0] == (float)(6.0 / 255.0));
    ck_assert_ptr_nonnull(init_named(g, "shape")); /* int64: untouched */
    run_free(&r);

    /* Without Conv selected, the Reshape has nothing to share and says so. */
    onnx__model_proto__free_unpacked(m, NULL);
    m = qb_model(13);
    g = m->graph;
    qb_input(g, "x", 1, 4, xd);
    qb_init_i64(g, "shape", 1, sd, shape);
    qb_node(g, "Reshape", "reshape", "x,shape", "y");
    qb_output(g, "y", 1);
    quantize(m, ranges, 4, &o, &r);
    ck_assert_int_eq(r.rc, MQ_OK);
    ck_assert_int_eq(choice(&r, "reshape")->status, MQ_NODE_SKIPPED);
    ck_assert_ptr_nonnull(strstr(choice(&r, "reshape")->reason, "reaches no quantized Conv"));
    ck_assert_int_eq((int)g->n_node, 1);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* --------------------------------------------------------------- edge cases */

START_TEST(test_bias_overflow_enlarges_weight_scale)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 2, 2}, wd[4] = {2, 1, 1, 1}, bd[1] = {2};
    const float w[2] = {1e-6f, 0.5f}, b[2] = {1000.0f, 1.0f};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, w);
    qb_init_f32(g, "b", 1, bd, b);
    qb_node(g, "Conv", "conv", "x,w,b", "y");
    qb_output(g, "y", 1);
    /* x scale 2e-4/255 and w scale 2e-6/254 give a bias scale near 6e-12: 1000 overflows. */
    struct range_spec ranges[] = {{"x", -1e-4f, 1e-4f}, {"y", -1000, 1000}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 2, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    const struct mq_qtensor_record *wr = record(&r, "w");
    ck_assert_int_eq(wr->n_adjusted, 1);
    ck_assert_int_eq(wr->adjusted[0], 0);
    float xs = f32_at(g, "x_scale", 0), ws = f32_at(g, "w_scale", 0);
    ck_assert((double)xs * ws >= mq_bias_min_scale(1000.0f) * 0.99999);
    ck_assert(f32_at(g, "w_scale", 1) == (float)((double)1.0f / 254.0)); /* untouched */
    int64_t q = int_at(g, "b_quantized", 0);
    ck_assert(q < INT32_MAX && q > 2000000000);
    ck_assert_ptr_null(record(&r, "b")->note); /* nothing clamped */
    ck_assert_int_eq(int_at(g, "w_quantized", 0), (int64_t)nearbyintf(1e-6f / ws));
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_gemm_trans_b_and_beta)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[2] = {1, 3}, wd[2] = {2, 3}, bd[1] = {2};
    const float w[6] = {1, 2, 3, -4, 5, -6}, c[2] = {1.0f, -1.0f};
    qb_input(g, "x", 1, 2, xd);
    qb_init_f32(g, "B", 2, wd, w);
    qb_init_f32(g, "C", 1, bd, c);
    Onnx__NodeProto *gemm = qb_node(g, "Gemm", "gemm", "x,B,C", "y");
    qb_attr_int(gemm, "transB", 1);
    qb_attr_float(gemm, "beta", 0.5f);
    qb_output(g, "y", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct range_spec ranges[] = {{"x", -1, 1}, {"y", -20, 20}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 2, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_eq(record(&r, "B")->axis, 0); /* transB: rows are output channels */
    ck_assert(f32_at(g, "B_scale", 1) == (float)((double)(2.0f * 6.0f) / 254.0));
    /* beta went into the values, the node now adds C as it is. */
    float xs = (float)(2.0 / 255.0), s0 = f32_at(g, "B_scale", 0);
    ck_assert_int_eq(int_at(g, "C_quantized", 0), (int64_t)nearbyintf(0.5f / (xs * s0)));
    ck_assert(mq_node_attr_float(qb_node_named(g, "gemm"), "beta", 0) == 1.0f);
    /* onnxruntime fuses QGemm only when the weight's DQ has a zero point: it keeps it; the
       bias's zero point (0, the default) goes either way. */
    assert_io(qb_node_named(g, "B_DequantizeLinear"), "DequantizeLinear",
              "B_quantized,B_scale,B_zero_point", "B_dequantized");
    ck_assert_int_eq(int_at(g, "B_zero_point", 1), 0);
    assert_io(qb_node_named(g, "C_DequantizeLinear"), "DequantizeLinear", "C_quantized,C_scale",
              "C_dequantized");
    float xv[3] = {0.5f, -0.25f, 1.0f};
    struct mq_tensor x = tensor_f32(2, xd, xv), yq, yf;
    run_model(m, &x, 1, &yq);
    run_model(orig, &x, 1, &yf);
    for (int i = 0; i < 2; i++)
        ck_assert(fabsf(((float *)yq.data)[i] - ((float *)yf.data)[i]) < 0.2f);
    mq_tensor_free(&x);
    mq_tensor_free(&yq);
    mq_tensor_free(&yf);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
    onnx__model_proto__free_unpacked(orig, NULL);
}
END_TEST

START_TEST(test_missing_range_and_types)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, conv_w);
    qb_node(g, "Conv", "conv", "x,w", "c");
    qb_node(g, "Conv", "conv2", "c,w", "y");
    qb_node(g, "Gather", "gather", "ids,table", "e"); /* int data: not quantized */
    qb_input(g, "ids", 7, 0, NULL);
    qb_input(g, "table", 7, 0, NULL);
    qb_output(g, "y", 1);
    qb_output(g, "e", 7);
    /* No range for c: conv's output and conv2's input stay float, the weight is shared. */
    struct range_spec ranges[] = {{"x", -1, 1}, {"y", -5, 5}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 2, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    const struct mq_node_choice *c = choice(&r, "conv");
    ck_assert_int_eq(c->status, MQ_NODE_QUANTIZED);
    ck_assert_ptr_nonnull(strstr(c->reason, "'c' stays float: no calibration range"));
    assert_io(qb_node_named(g, "conv2"), "Conv", "c,w_dequantized", "y_QuantizeLinear_Input");
    assert_io(qb_node_named(g, "conv"), "Conv", "x_dequantized,w_dequantized", "c");
    ck_assert_int_eq(choice(&r, "gather")->status, MQ_NODE_SKIPPED);
    int found = 0;
    for (int i = 0; i < r.res.n_skipped; i++)
        found += strcmp(r.res.skipped[i].name, "c") == 0;
    ck_assert_int_eq(found, 1);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_tensorrt_profile)
{
    Onnx__ModelProto *m = conv_relu_model();
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    o.activation_type = MQ_DTYPE_INT8;
    o.symmetric_activations = 1;
    o.quantize_outputs = 0;
    struct run r;
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    const Onnx__GraphProto *g = m->graph;
    /* Inputs only: x gets a symmetric int8 pair, the Conv output and the Relu none. */
    ck_assert_int_eq(int_at(g, "x_zero_point", 0), 0);
    ck_assert_int_eq(init_named(g, "x_zero_point")->data_type, MQ_DTYPE_INT8);
    ck_assert(f32_at(g, "x_scale", 0) == (float)(2.0 / 254.0));
    ck_assert_ptr_null(qb_node_named(g, "y_QuantizeLinear"));
    ck_assert_ptr_null(qb_node_named(g, "c_QuantizeLinear"));
    ck_assert_int_eq(choice(&r, "relu")->status, MQ_NODE_SKIPPED);
    assert_io(qb_node_named(g, "relu"), "Relu", "c", "y");
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_subgraph_quantized)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 4, 4}, wd[4] = {2, 1, 3, 3};
    qb_input(g, "x", 1, 4, xd);
    qb_input(g, "flag", 9, 0, NULL);
    qb_init_f32(g, "w", 4, wd, conv_w);
    Onnx__GraphProto *then_g = qb_graph("then");
    qb_node(then_g, "Conv", "inner", "x,w", "t");
    qb_output(then_g, "t", 1);
    Onnx__GraphProto *else_g = qb_graph("else");
    qb_node(else_g, "Conv", "other", "x,w", "e");
    qb_output(else_g, "e", 1);
    Onnx__NodeProto *iff = qb_node(g, "If", "branch", "flag", "y");
    qb_attr_graph(iff, "then_branch", then_g);
    qb_attr_graph(iff, "else_branch", else_g);
    qb_output(g, "y", 1);
    /* The else branch never ran during calibration: its output has no range. */
    struct range_spec ranges[] = {{"x", -1, 1}, {"t", -4, 4}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize(m, ranges, 2, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_eq(choice(&r, "inner")->status, MQ_NODE_QUANTIZED);
    /* Inside the branch: its own pair on the outer x, its own quantized copy of w. */
    assert_io(qb_node_named(then_g, "inner"), "Conv", "x_dequantized,w_dequantized",
              "t_QuantizeLinear_Input");
    assert_io(qb_node_named(then_g, "t_DequantizeLinear"), "DequantizeLinear",
              "t_quantized,t_scale,t_zero_point", "t");
    ck_assert_ptr_nonnull(init_named(then_g, "w_quantized"));
    /* The else branch made different names for the same tensors. */
    assert_io(qb_node_named(else_g, "other"), "Conv", "x_dequantized_1,w_dequantized_1", "e");
    ck_assert_ptr_nonnull(strstr(choice(&r, "other")->reason, "'e' stays float"));
    ck_assert_str_eq(record(&r, "t")->graph, "branch/then_branch");
    /* The outer float w is read by nobody now. */
    ck_assert_ptr_null(init_named(g, "w"));
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_refusals)
{
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    /* Already quantized. */
    Onnx__ModelProto *m = conv_relu_model();
    qb_node(m->graph, "DequantizeLinear", "dq", "a,b", "z");
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_int_eq(r.rc, MQ_ERR);
    ck_assert_ptr_nonnull(strstr(r.err.message, "quantized already"));
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
    /* Per-channel weights on an opset 11 model (the caller converts first). */
    m = conv_relu_model();
    m->opset_import[0]->version = 11;
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_int_eq(r.rc, MQ_ERR);
    ck_assert_ptr_nonnull(strstr(r.err.message, "opset 13"));
    run_free(&r);
    /* Per tensor it goes at opset 11. */
    o.per_channel = 0;
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    ck_assert_int_eq(record(&r, "w")->axis, -1);
    ck_assert_int_eq((int)init_named(m->graph, "w_scale")->n_dims, 0);
    ck_assert_int_eq((int)init_named(m->graph, "b_scale")->n_dims, 0);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
    ck_assert_int_eq(mq_quant_required_opset(&o), 10);
    o.weight_type = MQ_DTYPE_INT4;
    ck_assert_int_eq(mq_quant_required_opset(&o), 21);
}
END_TEST

START_TEST(test_int4_weights_packed)
{
    Onnx__ModelProto *m = conv_relu_model();
    m->opset_import[0]->version = 21;
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    o.weight_type = MQ_DTYPE_INT4;
    struct run r;
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    const Onnx__TensorProto *q = init_named(m->graph, "w_quantized");
    ck_assert_int_eq(q->data_type, MQ_DTYPE_INT4);
    ck_assert_uint_eq(q->raw_data.len, 9); /* 18 values, two a byte */
    /* Channel 0: scale 2*0.6/15 (int4 keeps -8..7 when symmetric); 0.5/0.08 = 6.25 -> 6,
       -0.25/0.08 = -3.125 -> -3 (0xD): first byte 0xD6. */
    ck_assert(f32_at(m->graph, "w_scale", 0) == (float)((double)(2.0f * 0.6f) / 15.0));
    ck_assert_uint_eq(q->raw_data.data[0], 0xD6);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST


START_TEST(test_observe_list_and_report)
{
    Onnx__ModelProto *m = conv_relu_model();
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct mq_select_options so = {0};
    struct mq_selection sel;
    struct mq_error err;
    ck_assert_int_eq(mq_select_nodes(m, &so, &sel, &err), MQ_OK);
    char **names;
    int n;
    ck_assert_int_eq(mq_qdq_tensors_to_observe(m, &sel, &o, &names, &n, &err), MQ_OK);
    /* Activations only, in model order: the weight and bias are read from the model. */
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(names[0], "x");
    ck_assert_str_eq(names[1], "c");
    ck_assert_str_eq(names[2], "y");
    mq_string_list_free(names, n);
    mq_selection_free(&sel);

    struct run r;
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_int_eq(r.rc, MQ_OK);
    struct mq_report rep;
    memset(&rep, 0, sizeof rep);
    const char *paths[1] = {"calib"};
    rep.input_path = "in.onnx";
    rep.output_path = "out.onnx";
    rep.profile = "ort-cpu";
    rep.options = &o;
    rep.selection = &r.sel;
    rep.result = &r.res;
    rep.ranges = &r.ranges;
    rep.calibration_source = "calib";
    rep.calibration_paths = paths;
    rep.n_calibration_paths = 1;
    rep.model_bytes_before = 1000;
    rep.model_bytes_after = 400;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(mq_report_write_json(f, &rep), 0);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "\"status\": \"folded\""));
    ck_assert_ptr_nonnull(strstr(text, "\"name\": \"relu\""));
    ck_assert_ptr_nonnull(strstr(text, "\"role\": \"bias\""));
    ck_assert_ptr_nonnull(strstr(text, "\"zero_point\": 128"));
    ck_assert_ptr_nonnull(strstr(text, "\"samples\": 4"));
    ck_assert_ptr_nonnull(strstr(text, "\"method\": \"minmax\""));
    free(text);
    text = NULL;
    f = open_memstream(&text, &len);
    mq_report_print_summary(f, &rep);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "quantized 1 of 2 nodes (1 folded, 0 skipped)"));
    ck_assert_ptr_nonnull(strstr(text, "(40.0%)"));
    free(text);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Asymmetric uint8 weights per tensor have a zero point that is not 0: it stays. */
START_TEST(test_nonzero_weight_zero_point_kept)
{
    Onnx__ModelProto *m = conv_relu_model();
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    o.weight_type = MQ_DTYPE_UINT8;
    o.symmetric_weights = 0;
    o.per_channel = 0;
    struct run r;
    quantize(m, conv_ranges, 3, &o, &r);
    ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
    const Onnx__GraphProto *g = m->graph;
    assert_io(qb_node_named(g, "w_DequantizeLinear"), "DequantizeLinear",
              "w_quantized,w_scale,w_zero_point", "w_dequantized");
    ck_assert_int_ne(int_at(g, "w_zero_point", 0), 0);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Ranks for the MatMul output rule: every tensor has the rank the test sets. */
static int rank_answer;
static int fixed_rank(void *user, const char *name, int64_t *dims)
{
    (void)user;
    (void)name;
    for (int d = 0; d < rank_answer; d++)
        dims[d] = -1;
    return rank_answer;
}

/*
 * A MatMul whose output only a float bias Add reads: float (MatMulIntegerToFloat) when its
 * input has rank 3 and the graph input leaves a dimension open; quantized when the rank is 2
 * or unknown, or when every input dimension is fixed, since onnxruntime would then first turn
 * MatMul + Add into a float Gemm (reshaping a rank-3 input to rank 2) that stays float.
 */
START_TEST(test_matmul_float_output)
{
    const int ranks[4] = {-1, 2, 3, 3};
    const int open_batch[4] = {0, 0, 0, 1};
    const int want_float[4] = {0, 0, 0, 1};
    for (int k = 0; k < 4; k++) {
        Onnx__ModelProto *m = qb_model(13);
        Onnx__GraphProto *g = m->graph;
        int64_t xd[3] = {1, 2, 4}, wd[2] = {4, 3}, bd[1] = {3};
        const float w[12] = {1, -2, 0.5f, 0.25f, 3, -1, 0, 1, 2, -0.5f, 0.75f, 1.5f};
        const float bias[3] = {0.5f, 1.0f, -2.0f};
        qb_input(g, "x", 1, 3, xd);
        if (open_batch[k]) {
            Onnx__TensorShapeProto__Dimension *d = g->input[0]->type->tensor_type->shape->dim[0];
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = strdup("batch");
        }
        qb_init_f32(g, "W", 2, wd, w);
        qb_init_f32(g, "B", 1, bd, bias);
        qb_node(g, "MatMul", "mm", "x,W", "m");
        qb_node(g, "Add", "bias", "m,B", "y");
        qb_output(g, "y", 1);
        struct range_spec ranges[] = {{"x", -1, 1}, {"m", -6, 6}};
        struct mq_quant_options o;
        mq_quant_options_default(&o);
        rank_answer = ranks[k];
        struct mq_opset_hints shapes = {fixed_rank, NULL};
        o.shapes = ranks[k] >= 0 ? &shapes : NULL;
        struct run r;
        quantize(m, ranges, 2, &o, &r);
        ck_assert_msg(r.rc == MQ_OK, "%s", r.err.message);
        /* The MatMul writes "m" either way; quantized, a QuantizeLinear reads it. */
        assert_io(qb_node_named(g, "mm"), "MatMul", "x_dequantized,W_dequantized", "m");
        int quantized = qb_node_named(g, "m_QuantizeLinear") != NULL;
        ck_assert_msg(quantized == !want_float[k], "rank %d%s: output %s", ranks[k],
                      open_batch[k] ? ", open batch" : "", quantized ? "quantized" : "float");
        assert_io(qb_node_named(g, "bias"), "Add", quantized ? "m_dequantized,B" : "m,B", "y");
        run_free(&r);
        onnx__model_proto__free_unpacked(m, NULL);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_qdq");
    TCase *tc = tcase_create("qdq");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_conv_relu);
    tcase_add_test(tc, test_deterministic_and_names_collide);
    tcase_add_test(tc, test_matmul_add);
    tcase_add_test(tc, test_matmul_float_output);
    tcase_add_test(tc, test_reshape_shares_scale);
    tcase_add_test(tc, test_bias_overflow_enlarges_weight_scale);
    tcase_add_test(tc, test_gemm_trans_b_and_beta);
    tcase_add_test(tc, test_missing_range_and_types);
    tcase_add_test(tc, test_tensorrt_profile);
    tcase_add_test(tc, test_subgraph_quantized);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_int4_weights_packed);
    tcase_add_test(tc, test_observe_list_and_report);
    tcase_add_test(tc, test_nonzero_weight_zero_point_kept);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
