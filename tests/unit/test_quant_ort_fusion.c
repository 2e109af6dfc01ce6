/*
 * What the quantize summary says onnxruntime makes of a QDQ graph
 * (quant/ort_fusion.h): a Softmax between DequantizeLinear and
 * QuantizeLinear becomes QLinearSoftmax, a MatMul with a float output
 * MatMulIntegerToFloat, a Reshape with the same scale on both sides runs on
 * 8-bit data, and neither happens with 16-bit data or a changed scale; the
 * summary table prints those kernels and folds integer shape arithmetic
 * (found by mq_select_keep_fusions) into one line.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "quant/fusion_guard.h"
#include "quant/ort_fusion.h"
#include "quant/select.h"
#include "quant_builder.h"
#include "report/report.h"

/* A one-value integer initializer (a zero point) of the given type. */
static void init_int(Onnx__GraphProto *g, const char *name, int dtype, int bytes)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)bytes;
    t->raw_data.data = calloc(1, (size_t)bytes + 1);
    qb_push((void ***)&g->initializer, &g->n_initializer, t);
}

static void init_scale(Onnx__GraphProto *g, const char *name, float v)
{
    qb_init_f32(g, name, 0, NULL, &v);
}

/* x -> Q/DQ with scale s and zero point zp: the name of the dequantized tensor. */
static void qdq(Onnx__GraphProto *g, const char *x, const char *s, const char *zp, const char *out)
{
    char in[512], q_out[128];
    snprintf(in, sizeof in, "%s,%s,%s", x, s, zp);
    snprintf(q_out, sizeof q_out, "%s_q", out);
    qb_node(g, "QuantizeLinear", NULL, in, q_out);
    snprintf(in, sizeof in, "%s,%s,%s", q_out, s, zp);
    qb_node(g, "DequantizeLinear", NULL, in, out);
}

static int count(const struct mq_ort_fusions *f, const char *op, const char *kernel)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->items[i].op_type, op) == 0 &&
            (kernel ? f->items[i].kernel && strcmp(f->items[i].kernel, kernel) == 0
                    : !f->items[i].kernel))
            return f->items[i].nodes;
    return 0;
}

/*
 * x -> Q/DQ -> Softmax -> Dropout -> Q/DQ; -> MatMul with an int8 weight, float out;
 * -> Reshape -> Q/DQ (same scale); -> Transpose -> Q/DQ (another scale);
 * a 16-bit Q/DQ -> Sigmoid -> 16-bit Q/DQ.
 */
static Onnx__GraphProto *fused_graph(void)
{
    Onnx__GraphProto *g = qb_graph("g");
    int64_t dims[2] = {4, 4};
    qb_input(g, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, dims);
    init_scale(g, "s", 0.1f);
    init_scale(g, "s_other", 0.2f);
    init_scale(g, "s_copy", 0.1f);
    init_int(g, "zp", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 1);
    init_int(g, "zp_copy", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 1);
    init_int(g, "zp16", ONNX__TENSOR_PROTO__DATA_TYPE__UINT16, 2);
    init_int(g, "wzp", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1);
    Onnx__TensorProto *w = calloc(1, sizeof *w);
    onnx__tensor_proto__init(w);
    w->name = strdup("w");
    w->has_data_type = 1;
    w->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
    w->n_dims = 2;
    w->dims = malloc(2 * sizeof *w->dims);
    w->dims[0] = w->dims[1] = 4;
    w->has_raw_data = 1;
    w->raw_data.len = 16;
    w->raw_data.data = calloc(1, 17);
    qb_push((void ***)&g->initializer, &g->n_initializer, w);
    int64_t shape[2] = {2, 8};
    qb_init_i64(g, "shape", 1, (int64_t[]){2}, shape);

    qdq(g, "x", "s", "zp", "xd");
    qb_node(g, "Softmax", "softmax", "xd", "sm_pre");
    qb_node(g, "Dropout", "dropout", "sm_pre", "sm"); /* onnxruntime removes it first */
    qdq(g, "sm", "s", "zp", "sm_d");
    qb_node(g, "DequantizeLinear", NULL, "w,s,wzp", "wd");
    qb_node(g, "MatMul", "matmul", "sm_d,wd", "mm");
    qb_node(g, "Reshape", "reshape", "xd,shape", "r");
    qdq(g, "r", "s_copy", "zp_copy", "r_d");
    qb_node(g, "Transpose", "transpose", "xd", "t");
    qdq(g, "t", "s_other", "zp", "t_d");
    qdq(g, "x", "s", "zp16", "x16");
    qb_node(g, "Sigmoid", "sigmoid", "x16", "sg");
    qdq(g, "sg", "s", "zp16", "sg_d");
    qb_output(g, "mm", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    qb_output(g, "r_d", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    qb_output(g, "t_d", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    qb_output(g, "sg_d", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    return g;
}

START_TEST(test_predicted_kernels)
{
    Onnx__GraphProto *g = fused_graph();
    struct mq_ort_fusions f;
    struct mq_error err = {0};
    ck_assert_int_eq(mq_ort_fusions_predict(g, &f, &err), MQ_OK);
    ck_assert_int_eq(count(&f, "Softmax", "QLinearSoftmax"), 1);
    ck_assert_int_eq(count(&f, "MatMul", "MatMulIntegerToFloat"), 1);
    ck_assert_int_eq(count(&f, "MatMul", "QLinearMatMul"), 0);
    ck_assert_int_eq(count(&f, "Reshape", NULL), 1);   /* equal constants under other names */
    ck_assert_int_eq(count(&f, "Transpose", NULL), 0); /* the scale changes: the pair stays */
    ck_assert_int_eq(count(&f, "Sigmoid", "QLinearSigmoid"), 0); /* 16 bits: no kernel */
    ck_assert_int_eq(f.n, 3);
    ck_assert_str_eq(mq_ort_fusion_kernel("Softmax"), "QLinearSoftmax");
    ck_assert_ptr_null(mq_ort_fusion_kernel("Reshape"));
    mq_ort_fusions_free(&f);
    onnx__graph_proto__free_unpacked(g, NULL);
}
END_TEST

/* The summary printed for r, into *text (malloc'd). */
static void summary_text(const struct mq_report *r, char **text, size_t *len)
{
    FILE *fp = open_memstream(text, len);
    ck_assert_ptr_nonnull(fp);
    mq_report_print_summary(fp, r);
    fclose(fp);
}

/*
 * A float Softmax between Q/DQ and int64 shape arithmetic (Shape, a Gather of
 * its result, a ConstantOfShape that says nothing of its type, a Where over
 * them): the table shows the Softmax with its kernel and no row for the
 * integer nodes, which share one line.
 */
START_TEST(test_summary_lines)
{
    Onnx__ModelProto *m = qb_model(17);
    Onnx__GraphProto *g = m->graph;
    int64_t dims[2] = {4, 4};
    qb_input(g, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, dims);
    qb_init_i64(g, "zero", 0, NULL, (int64_t[]){0});
    qb_node(g, "Shape", "shape", "x", "sh");
    qb_node(g, "Gather", "gather", "sh,zero", "d0");
    qb_node(g, "ConstantOfShape", "cos", "sh", "ones");
    Onnx__AttributeProto *a = qb_attr(g->node[g->n_node - 1], "value",
                                      ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = calloc(1, sizeof *a->t);
    onnx__tensor_proto__init(a->t);
    a->t->has_data_type = 1;
    a->t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    qb_node(g, "Equal", "equal", "sh,ones", "eq");
    qb_node(g, "Where", "where", "eq,ones,sh", "wh");
    qb_node(g, "Softmax", "softmax", "x", "y");
    qb_output(g, "y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    qb_output(g, "wh", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    qb_output(g, "d0", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);

    struct mq_pattern_list op_types = {0}, none = {0};
    const char *softmax = "Softmax";
    op_types.items = (char **)&softmax;
    op_types.n = 1;
    struct mq_select_options so = {&op_types, &none, &none, &none, 1};
    struct mq_selection sel;
    struct mq_error err = {0};
    ck_assert_int_eq(mq_select_nodes(m, &so, &sel, &err), MQ_OK);
    ck_assert_int_eq(mq_select_keep_fusions(m, &sel, &err), MQ_OK);
    int integer = 0;
    for (int i = 0; i < sel.n; i++) {
        integer += sel.items[i].integer_only;
        if (strcmp(sel.items[i].op_type, "Softmax") == 0) {
            ck_assert(!sel.items[i].integer_only);
            sel.items[i].status = MQ_NODE_QUANTIZED; /* as the rewrite would mark it */
        }
    }
    ck_assert_int_eq(integer, 5);

    struct mq_quant_options o;
    memset(&o, 0, sizeof o);
    o.activation_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    o.weight_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
    struct mq_quant_result result = {0};
    struct mq_ort_fusion_count kernel = {"Softmax", "QLinearSoftmax", 1};
    struct mq_ort_fusions fusions = {&kernel, 1};
    struct mq_report r;
    memset(&r, 0, sizeof r);
    r.profile = "ort-cpu";
    r.options = &o;
    r.selection = &sel;
    r.result = &result;
    r.ort_fusions = &fusions;
    char *text = NULL;
    size_t text_len = 0;
    summary_text(&r, &text, &text_len);
    ck_assert_msg(strstr(text, "onnxruntime CPU runs"), "%s", text);
    const char *row = strstr(text, "  Softmax ");
    ck_assert_msg(row, "%s", text);
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(row, "\n"), row);
    ck_assert_msg(strstr(line, "QLinearSoftmax 1"), "%s", text);
    ck_assert_msg(strstr(text, "integer shape arithmetic, not quantized: 5 nodes (Shape 1, "
                               "Gather 1, ConstantOfShape 1, Equal 1, Where 1)"),
                  "%s", text);
    ck_assert_msg(!strstr(text, "  Shape ") && !strstr(text, "  Gather "), "%s", text);
    free(text);
    mq_selection_free(&sel);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_ort_fusion");
    TCase *tc = tcase_create("ort_fusion");
    tcase_add_test(tc, test_predicted_kernels);
    tcase_add_test(tc, test_summary_lines);
    return mq_check_run(s, tc);
}
