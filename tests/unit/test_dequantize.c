#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "model_builder.h"
#include "op_harness.h"
#include "quant/dequantize.h"

/*
 * x -> Q/DQ -> Conv(DQ(w per channel), DQ(b int32)) writes "r" (its Relu folded)
 * -> Q/DQ (zero point 0) -> MaxPool -> Q/DQ sharing r's scale -> Flatten
 * -> MatMul(DQ(m uint8)) writes "y_QuantizeLinear_Input" -> Q/DQ -> y (graph output)
 */
static Onnx__ModelProto *qdq_model(void)
{
    Onnx__ModelProto *m = mb_model(13);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, OH_DIMS(1, 1, 4, 4));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 2, OH_DIMS(1, 2));
    mb_init(g, "x_scale", oh_f32(0, NULL, (const float[]){0.05f}));
    mb_init(g, "x_zero_point", oh_u8(0, NULL, (const uint8_t[]){128}));
    int8_t w[18];
    for (int i = 0; i < 18; i++)
        w[i] = (int8_t)(i * 13 % 255 - 127);
    mb_init(g, "conv.w_quantized", oh_i8(4, OH_DIMS(2, 1, 3, 3), w));
    mb_init(g, "conv.w_scale", oh_f32(1, OH_DIMS(2), (const float[]){0.01f, 0.02f}));
    mb_init(g, "conv.w_zero_point", oh_i8(1, OH_DIMS(2), (const int8_t[]){0, 0}));
    mb_init(g, "conv.b_quantized", oh_i32(1, OH_DIMS(2), (const int32_t[]){1000, -3000}));
    mb_init(g, "conv.b_scale", oh_f32(1, OH_DIMS(2), (const float[]){0.0005f, 0.001f}));
    mb_init(g, "r_scale", oh_f32(0, NULL, (const float[]){0.02f}));
    mb_init(g, "r_zero_point", oh_u8(0, NULL, (const uint8_t[]){0}));
    uint8_t mw[16];
    for (int i = 0; i < 16; i++)
        mw[i] = (uint8_t)(i * 37 % 256);
    mb_init(g, "fc.w_quantized", oh_u8(2, OH_DIMS(8, 2), mw));
    mb_init(g, "fc.w_scale", oh_f32(0, NULL, (const float[]){0.004f}));
    mb_init(g, "fc.w_zero_point", oh_u8(0, NULL, (const uint8_t[]){100}));
    mb_init(g, "y_scale", oh_f32(0, NULL, (const float[]){0.01f}));
    mb_init(g, "y_zero_point", oh_u8(0, NULL, (const uint8_t[]){128}));
    mb_node(g, "QuantizeLinear", "x_QuantizeLinear", "x,x_scale,x_zero_point", "x_quantized");
    mb_node(g, "DequantizeLinear", "x_DequantizeLinear", "x_quantized,x_scale,x_zero_point",
            "x_dequantized");
    oh_attr_int(mb_node(g, "DequantizeLinear", "conv.w_DequantizeLinear",
                        "conv.w_quantized,conv.w_scale,conv.w_zero_point", "conv.w_dequantized"),
                "axis", 0);
    oh_attr_int(mb_node(g, "DequantizeLinear", "conv.b_DequantizeLinear",
                        "conv.b_quantized,conv.b_scale", "conv.b_dequantized"),
                "axis", 0);
    mb_node(g, "Conv", "conv", "x_dequantized,conv.w_dequantized,conv.b_dequantized", "r");
    mb_node(g, "QuantizeLinear", "r_QuantizeLinear", "r,r_scale,r_zero_point", "r_quantized");
    mb_node(g, "DequantizeLinear", "r_DequantizeLinear", "r_quantized,r_scale,r_zero_point",
            "r_dequantized");
    Onnx__NodeProto *pool = mb_node(g, "MaxPool", "pool", "r_dequantized", "p");
    oh_attr_ints(pool, "kernel_shape", 2, (const int64_t[]){1, 1});
    mb_node(g, "QuantizeLinear", "p_QuantizeLinear", "p,r_scale,r_zero_point", "p_quantized");
    mb_node(g, "DequantizeLinear", "p_DequantizeLinear", "p_quantized,r_scale,r_zero_point",
            "p_dequantized");
    mb_node(g, "Flatten", "flatten", "p_dequantized", "f");
    mb_node(g, "DequantizeLinear", "fc.w_DequantizeLinear",
            "fc.w_quantized,fc.w_scale,fc.w_zero_point", "fc.w_dequantized");
    mb_node(g, "MatMul", "fc", "f,fc.w_dequantized", "y_QuantizeLinear_Input");
    mb_node(g, "QuantizeLinear", "y_QuantizeLinear", "y_QuantizeLinear_Input,y_scale,y_zero_point",
            "y_quantized");
    mb_node(g, "DequantizeLinear", "y_DequantizeLinear", "y_quantized,y_scale,y_zero_point", "y");
    return m;
}

static int dequantize(Onnx__ModelProto *m, int weights_only, struct mq_dequantize_result *r,
                      struct mq_error *err)
{
    struct mq_dequantize_options o = {weights_only};
    return mq_dequantize(m, &o, r, err);
}

static struct mq_tensor decode(const Onnx__TensorProto *p)
{
    struct mq_tensor t = {0};
    struct mq_error err;
    ck_assert_msg(mq_tensor_from_proto(p, mq_str(p->name), &t, &err) == MQ_OK, "%s", err.message);
    return t;
}

START_TEST(weights_folded_under_original_names)
{
    Onnx__ModelProto *m = qdq_model();
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_msg(dequantize(m, 0, &r, &err) == MQ_OK, "%s", err.message);
    Onnx__GraphProto *g = m->graph;
    struct mq_tensor w = decode(mb_find_init(g, "conv.w"));
    ck_assert_int_eq(w.dtype, MQ_DTYPE_FLOAT);
    for (int i = 0; i < 18; i++) {
        int8_t q = (int8_t)(i * 13 % 255 - 127);
        ck_assert_float_eq(((float *)w.data)[i], (float)q * (i < 9 ? 0.01f : 0.02f));
    }
    struct mq_tensor b = decode(mb_find_init(g, "conv.b"));
    oh_assert_f32(&b, 1, OH_DIMS(2), (const float[]){1000 * 0.0005f, -3000 * 0.001f}, 0, 0);
    struct mq_tensor fw = decode(mb_find_init(g, "fc.w"));
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq(((float *)fw.data)[i], (float)(i * 37 % 256 - 100) * 0.004f);
    ck_assert_int_eq(r.weights_folded, 3);
    ck_assert_int_eq(r.weights_renamed, 3);
    ck_assert_int_eq(g->n_initializer, 3);
    mq_tensor_free(&w);
    mq_tensor_free(&b);
    mq_tensor_free(&fw);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(activation_pairs_removed_and_relu_restored)
{
    Onnx__ModelProto *m = qdq_model();
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_msg(dequantize(m, 0, &r, &err) == MQ_OK, "%s", err.message);
    Onnx__GraphProto *g = m->graph;
    ck_assert_int_eq(mb_count_op(g, "QuantizeLinear") + mb_count_op(g, "DequantizeLinear"), 0);
    ck_assert_int_eq(r.pairs_removed, 4);
    /* The pair after the Conv clamped at zero: a Relu writes r again. */
    ck_assert_int_eq(r.activations_restored, 1);
    ck_assert_int_eq(r.restored_by_guess, 1);
    Onnx__NodeProto *relu = mb_producer(g, "r");
    ck_assert_str_eq(relu->op_type, "Relu");
    ck_assert_str_eq(mb_find_node(g, "conv")->output[0], relu->input[0]);
    ck_assert_str_eq(mb_find_node(g, "conv")->input[0], "x");
    ck_assert_str_eq(mb_find_node(g, "pool")->input[0], "r");
    ck_assert_str_eq(mb_find_node(g, "flatten")->input[0], "p");
    /* The graph output is written by the MatMul again. */
    ck_assert_str_eq(mb_find_node(g, "fc")->output[0], "y");
    ck_assert_int_eq((int)g->n_node, 5);
    /* It runs: MatMul(Flatten(Relu(Conv(x)))) with the folded weights. */
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i % 5) - 2;
    struct mq_tensor in = oh_f32(4, OH_DIMS(1, 1, 4, 4), x), y = {0};
    ck_assert_msg(mb_run(m, &in, 1, &y, 1, &err) == MQ_OK, "%s", err.message);
    oh_assert_shape(&y, 2, OH_DIMS(1, 2));
    mq_tensor_free(&in);
    mq_tensor_free(&y);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(weights_only_computes_what_the_qdq_model_does)
{
    Onnx__ModelProto *q = qdq_model(), *w = qdq_model();
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_msg(dequantize(w, 1, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(r.pairs_removed, 0);
    ck_assert_int_eq(mb_count_op(w->graph, "QuantizeLinear"), 4);
    ck_assert_int_eq(mb_count_op(w->graph, "DequantizeLinear"), 4);
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = sinf((float)i) * 3;
    struct mq_tensor in = oh_f32(4, OH_DIMS(1, 1, 4, 4), x), a = {0}, b = {0};
    ck_assert_msg(mb_run(q, &in, 1, &a, 1, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mb_run(w, &in, 1, &b, 1, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(memcmp(a.data, b.data, (size_t)a.count * sizeof(float)), 0);
    mq_tensor_free(&in);
    mq_tensor_free(&a);
    mq_tensor_free(&b);
    onnx__model_proto__free_unpacked(q, NULL);
    onnx__model_proto__free_unpacked(w, NULL);
}
END_TEST

START_TEST(fold_record_restores_clip)
{
    Onnx__ModelProto *m = qdq_model();
    mb_metadata(m, MQ_FOLDED_ACTIVATIONS_KEY, "r\tClip\trelu6\t0\t6\n");
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_msg(dequantize(m, 0, &r, &err) == MQ_OK, "%s", err.message);
    Onnx__NodeProto *clip = mb_producer(m->graph, "r");
    ck_assert_str_eq(clip->op_type, "Clip");
    ck_assert_str_eq(clip->name, "relu6");
    ck_assert_int_eq((int)clip->n_input, 3);
    struct mq_tensor hi = decode(mb_find_init(m->graph, clip->input[2]));
    ck_assert_float_eq(((float *)hi.data)[0], 6);
    ck_assert_int_eq(r.restored_by_guess, 0);
    ck_assert_int_eq((int)m->n_metadata_props, 0);
    mq_tensor_free(&hi);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(fold_record_without_entry_restores_nothing)
{
    Onnx__ModelProto *m = qdq_model();
    mb_metadata(m, MQ_FOLDED_ACTIVATIONS_KEY, "");
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_msg(dequantize(m, 0, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(r.activations_restored, 0);
    ck_assert_str_eq(mb_producer(m->graph, "r")->op_type, "Conv");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(malformed_fold_record)
{
    Onnx__ModelProto *m = qdq_model();
    mb_metadata(m, MQ_FOLDED_ACTIVATIONS_KEY, "r\tRelu\trelu\t0\n");
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_int_eq(dequantize(m, 0, &r, &err), MQ_ERR);
    ck_assert_str_eq(err.message, "metadata 'onnx-monoquant.folded_activations', line 1: expected "
                                  "tensor, Relu or Clip, node, min and max separated by tabs");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(blocked_int4_weights)
{
    Onnx__ModelProto *m = mb_model(21);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 2, OH_DIMS(1, 4));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 2, OH_DIMS(1, 2));
    /* w [4, 2] int4 = {-8, 7, 1, -1, 3, 0, -2, 5} packed low nibble first. */
    const int8_t q[8] = {-8, 7, 1, -1, 3, 0, -2, 5};
    uint8_t packed[4];
    for (int i = 0; i < 4; i++)
        packed[i] = (uint8_t)((q[2 * i] & 15) | ((q[2 * i + 1] & 15) << 4));
    mb_init_raw(g, "w_quantized", MQ_DTYPE_INT4, 2, OH_DIMS(4, 2), packed, 4);
    mb_init(g, "w_scale", oh_f32(2, OH_DIMS(2, 2), (const float[]){0.5f, 1, 2, 4}));
    const uint8_t zp[2] = {0x01, 0x00}; /* zero points {1, 0, 0, 0} */
    mb_init_raw(g, "w_zero_point", MQ_DTYPE_INT4, 2, OH_DIMS(2, 2), zp, 2);
    Onnx__NodeProto *dq = mb_node(g, "DequantizeLinear", "w_DequantizeLinear",
                                  "w_quantized,w_scale,w_zero_point", "w_dequantized");
    oh_attr_int(dq, "axis", 0);
    oh_attr_int(dq, "block_size", 2);
    mb_node(g, "MatMul", "mm", "x,w_dequantized", "y");
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_msg(dequantize(m, 0, &r, &err) == MQ_OK, "%s", err.message);
    struct mq_tensor w = decode(mb_find_init(g, "w"));
    /* Rows 0-1 use scale row 0, rows 2-3 scale row 1; column 0 of block 0 has zero point 1. */
    oh_assert_f32(&w, 2, OH_DIMS(4, 2),
                  (const float[]){-9 * 0.5f, 7, 0 * 0.5f, -1, 3 * 2, 0, -2 * 2, 5 * 4}, 0, 0);
    mq_tensor_free(&w);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(refuses_models_without_qdq)
{
    Onnx__ModelProto *m = mb_model(13);
    mb_input(m->graph, "x", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_output(m->graph, "y", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_node(m->graph, "Relu", "relu", "x", "y");
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_int_eq(dequantize(m, 0, &r, &err), MQ_ERR);
    ck_assert_str_eq(err.message, "the model has no QuantizeLinear or DequantizeLinear node: it is "
                                  "not a QDQ model, nothing to dequantize");
    mb_node(m->graph, "QLinearMatMul", "qmm", "a,s,z,b,s,z,s,z", "q");
    ck_assert_int_eq(dequantize(m, 0, &r, &err), MQ_ERR);
    ck_assert(strstr(err.message, "node 'qmm' (QLinearMatMul): an operator-format") == err.message);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(bad_parameters_name_the_node)
{
    Onnx__ModelProto *m = mb_model(13);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 1, OH_DIMS(3));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 1, OH_DIMS(3));
    mb_init(g, "w_quantized", oh_i8(1, OH_DIMS(3), (const int8_t[]){1, 2, 3}));
    mb_init(g, "w_scale", oh_f32(1, OH_DIMS(2), (const float[]){1, 2}));
    oh_attr_int(mb_node(g, "DequantizeLinear", "wdq", "w_quantized,w_scale", "w_dequantized"),
                "axis", 0);
    mb_node(g, "Add", "add", "x,w_dequantized", "y");
    struct mq_dequantize_result r;
    struct mq_error err;
    ck_assert_int_eq(dequantize(m, 0, &r, &err), MQ_ERR);
    ck_assert_str_eq(err.message, "node 'wdq' (DequantizeLinear): per-axis scale of shape [2] does "
                                  "not match axis 0 of [3]");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dequantize");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, weights_folded_under_original_names);
    tcase_add_test(tc, activation_pairs_removed_and_relu_restored);
    tcase_add_test(tc, weights_only_computes_what_the_qdq_model_does);
    tcase_add_test(tc, fold_record_restores_clip);
    tcase_add_test(tc, fold_record_without_entry_restores_nothing);
    tcase_add_test(tc, malformed_fold_record);
    tcase_add_test(tc, blocked_int4_weights);
    tcase_add_test(tc, refuses_models_without_qdq);
    tcase_add_test(tc, bad_parameters_name_the_node);
    return mq_check_run(s, tc);
}
