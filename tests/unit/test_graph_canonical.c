/*
 * The canonical graph (graph/canonical.c) in the cases onnxruntime cannot
 * check because it refuses the model (a subgraph shadowing an outer name) or
 * that the end-to-end tests do not reach (a QDQ model's DequantizeLinear, an
 * IR 3 model's input list, an If of constant condition returning an outer
 * value), and the decision paths of graph/decision.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "graph/canonical.h"
#include "graph/decision.h"
#include "quant_builder.h"

static const float w6[6] = {1, 2, 3, 4, 5, 6};

static Onnx__TensorProto *tensor_attr_f32(Onnx__NodeProto *n, const char *name, int rank,
                                          const int64_t *dims, const float *values)
{
    Onnx__GraphProto *scratch = qb_graph("scratch");
    Onnx__TensorProto *t = qb_init_f32(scratch, "", rank, dims, values);
    scratch->n_initializer = 0;
    onnx__graph_proto__free_unpacked(scratch, NULL);
    Onnx__AttributeProto *a = qb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
    return t;
}

static const Onnx__NodeProto *find_op(const Onnx__GraphProto *g, const char *op)
{
    for (size_t n = 0; n < g->n_node; n++)
        if (strcmp(g->node[n]->op_type, op) == 0)
            return g->node[n];
    return NULL;
}

static int has_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return 1;
    return 0;
}

/*
 * x -> Identity -> x_id; an If whose then branch defines its own 'x_id' (shadowing) and whose
 * else branch reads the outer one: the Identity may not go (the then branch would capture a
 * renamed read only if it read x_id from outside, which it does not: it goes), and the then
 * branch's own x_id stays its own.
 */
START_TEST(test_shadowing_respected)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t d[1] = {3};
    qb_input(g, "x", 1, 1, d);
    qb_input(g, "c", 9, 0, d);
    qb_node(g, "Identity", "id", "x", "x_id");
    Onnx__GraphProto *then_b = qb_graph("then");
    qb_node(then_b, "Neg", "neg", "x", "x_id");
    qb_node(then_b, "Abs", "abs", "x_id", "t_out");
    qb_output(then_b, "t_out", 1);
    Onnx__GraphProto *else_b = qb_graph("else");
    qb_node(else_b, "Abs", "abs2", "x_id", "e_out");
    qb_output(else_b, "e_out", 1);
    Onnx__NodeProto *iff = qb_node(g, "If", "if", "c", "y");
    qb_attr_graph(iff, "then_branch", then_b);
    qb_attr_graph(iff, "else_branch", else_b);
    qb_output(g, "y", 1);

    struct mq_error err = {{0}};
    struct mq_graph_canonical_counts counts;
    ck_assert_int_eq(mq_graph_canonicalize(m, NULL, &counts, &err), 0);
    ck_assert_int_eq(counts.identities, 1);
    ck_assert_ptr_null(find_op(g, "Identity"));
    ck_assert_str_eq(else_b->node[0]->input[0], "x");    /* outer read rewired */
    ck_assert_str_eq(then_b->node[1]->input[0], "x_id"); /* its own tensor, untouched */
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Renaming x_id -> x would be captured where a branch defines 'x' and reads the outer x_id. */
START_TEST(test_capture_keeps_identity)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t d[1] = {3};
    qb_input(g, "x", 1, 1, d);
    qb_input(g, "c", 9, 0, d);
    qb_node(g, "Identity", "id", "x", "x_id");
    Onnx__GraphProto *then_b = qb_graph("then");
    qb_node(then_b, "Neg", "neg", "x_id", "x");
    qb_node(then_b, "Add", "add", "x,x_id", "t_out");
    qb_output(then_b, "t_out", 1);
    Onnx__GraphProto *else_b = qb_graph("else");
    qb_node(else_b, "Abs", "abs2", "x_id", "e_out");
    qb_output(else_b, "e_out", 1);
    Onnx__NodeProto *iff = qb_node(g, "If", "if", "c", "y");
    qb_attr_graph(iff, "then_branch", then_b);
    qb_attr_graph(iff, "else_branch", else_b);
    qb_output(g, "y", 1);

    struct mq_error err = {{0}};
    struct mq_graph_canonical_counts counts;
    ck_assert_int_eq(mq_graph_canonicalize(m, NULL, &counts, &err), 0);
    ck_assert_int_eq(counts.identities, 0);
    ck_assert_ptr_nonnull(find_op(g, "Identity"));
    ck_assert_str_eq(then_b->node[0]->input[0], "x_id");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* A QDQ model keeps its weight's DequantizeLinear; a model without QuantizeLinear folds it. */
static Onnx__ModelProto *dq_model(int with_quantize)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t d[1] = {6}, scalar[1] = {0};
    qb_input(g, "x", 1, 1, d);
    Onnx__TensorProto *q = qb_init_f32(g, "wq", 1, d, w6); /* relabelled int8 below */
    q->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
    q->raw_data.len = 6;
    for (int i = 0; i < 6; i++)
        q->raw_data.data[i] = (uint8_t)(i - 3);
    float s = 0.5f;
    qb_init_f32(g, "s", 0, scalar, &s);
    qb_node(g, "DequantizeLinear", "dq", "wq,s", "w");
    if (with_quantize) {
        qb_node(g, "QuantizeLinear", "qx", "x,s", "xq");
        qb_node(g, "DequantizeLinear", "dqx", "xq,s", "xd");
        qb_node(g, "Mul", "mul", "xd,w", "y");
    } else {
        qb_node(g, "Mul", "mul", "x,w", "y");
    }
    qb_output(g, "y", 1);
    return m;
}

START_TEST(test_dequantize_rule)
{
    struct mq_error err = {{0}};
    struct mq_graph_canonical_counts counts;
    Onnx__ModelProto *m = dq_model(0);
    ck_assert_int_eq(mq_graph_canonicalize(m, NULL, &counts, &err), 0);
    ck_assert_int_eq(counts.folded, 1);
    ck_assert_ptr_null(find_op(m->graph, "DequantizeLinear"));
    ck_assert(has_initializer(m->graph, "w"));
    ck_assert(!has_initializer(m->graph, "wq"));
    onnx__model_proto__free_unpacked(m, NULL);

    m = dq_model(1);
    ck_assert_int_eq(mq_graph_canonicalize(m, NULL, &counts, &err), 0);
    ck_assert_int_eq(counts.folded, 0);
    ck_assert_int_eq(m->graph->n_node, 4);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* IR 3: a new initializer is listed as a graph input too; one dropped leaves the list. */
START_TEST(test_ir3_inputs)
{
    Onnx__ModelProto *m = qb_model(8);
    m->ir_version = 3;
    Onnx__GraphProto *g = m->graph;
    int64_t d[1] = {6}, d2[2] = {2, 3};
    qb_input(g, "x", 1, 2, d2);
    qb_input(g, "w", 1, 1, d);
    qb_input(g, "shape", 7, 1, (int64_t[]){2});
    qb_init_f32(g, "w", 1, d, w6);
    qb_init_i64(g, "shape", 1, (int64_t[]){2}, d2);
    qb_node(g, "Reshape", "r", "w,shape", "w2");
    qb_node(g, "Add", "add", "x,w2", "y");
    qb_output(g, "y", 1);
    struct mq_error err = {{0}};
    ck_assert_int_eq(mq_graph_canonicalize(m, NULL, NULL, &err), 0);
    ck_assert_int_eq(g->n_initializer, 1);
    ck_assert_int_eq(g->n_input, 2);
    ck_assert_str_eq(g->input[0]->name, "x");
    ck_assert_str_eq(g->input[1]->name, "w2");
    ck_assert_int_eq(g->input[1]->type->tensor_type->shape->n_dim, 2);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

static int conv_weight(const Onnx__NodeProto *reader, size_t input, void *user)
{
    (void)user;
    return strcmp(reader->op_type, "Conv") == 0 && input == 1;
}

/*
 * Exporters' other spellings: Sum of two becomes Add (its legacy attribute dropped), a one-input
 * Sum becomes an Identity and goes, a three-input Sum stays; a ConstantOfShape weight is folded
 * only when the caller wants its readers' slot constant, since storing it grows the file.
 */
START_TEST(test_aliases_and_expanding_weights)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t d4[4] = {1, 64, 8, 8};
    qb_input(g, "x", 1, 4, d4);
    qb_input(g, "y", 1, 4, d4);
    qb_init_i64(g, "wshape", 1, (int64_t[]){4}, (int64_t[]){64, 64, 1, 1});
    qb_node(g, "ConstantOfShape", "make_w", "wshape", "w");
    qb_node(g, "Conv", "conv", "x,w", "c");
    Onnx__NodeProto *sum2 = qb_node(g, "Sum", "sum2", "c,y", "s2");
    qb_attr(sum2, "consumed_inputs", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    qb_node(g, "Sum", "sum1", "s2", "s1");
    qb_node(g, "Sum", "sum3", "s1,x,y", "out");
    qb_output(g, "out", 1);
    struct mq_error err = {{0}};
    struct mq_graph_canonical_counts counts;
    ck_assert_int_eq(mq_graph_canonicalize(m, NULL, &counts, &err), 0);
    ck_assert_int_eq(counts.aliases, 2);
    ck_assert_int_eq(counts.identities, 1);
    ck_assert_str_eq(g->node[2]->op_type, "Add");
    ck_assert_int_eq((int)g->node[2]->n_attribute, 0);
    ck_assert_str_eq(find_op(g, "Sum")->name, "sum3");
    ck_assert_str_eq(find_op(g, "Sum")->input[0], "s2");
    /* 64 KiB of zeros from 32 bytes: left a node by default */
    ck_assert_ptr_nonnull(find_op(g, "ConstantOfShape"));
    struct mq_graph_canonical_options expand = {0, conv_weight, NULL};
    ck_assert_int_eq(mq_graph_canonicalize(m, &expand, &counts, &err), 0);
    ck_assert_ptr_null(find_op(g, "ConstantOfShape"));
    ck_assert(has_initializer(g, "w"));
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * If(true) whose branch returns a node's output, an outer tensor and a Constant: each output
 * stays produced under the If's name (the producer renamed, or an Identity for the outer one).
 */
START_TEST(test_inline_constant_if)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t d[1] = {6};
    qb_input(g, "x", 1, 1, d);
    Onnx__TensorProto *cond = qb_init_f32(g, "cond", 0, d, w6);
    cond->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    cond->raw_data.len = 1;
    cond->raw_data.data[0] = 1;
    Onnx__GraphProto *then_b = qb_graph("then");
    qb_node(then_b, "Neg", "neg", "x", "t_neg");
    Onnx__NodeProto *k = qb_node(then_b, "Constant", "k", "", "t_k");
    tensor_attr_f32(k, "value", 1, d, w6);
    qb_output(then_b, "t_neg", 1);
    qb_output(then_b, "x", 1);
    qb_output(then_b, "t_k", 1);
    Onnx__GraphProto *else_b = qb_graph("else");
    qb_node(else_b, "Abs", "abs", "x", "e1");
    qb_output(else_b, "e1", 1);
    qb_output(else_b, "e1", 1);
    qb_output(else_b, "e1", 1);
    Onnx__NodeProto *iff = qb_node(g, "If", "if", "cond", "y1,y2,y3");
    qb_attr_graph(iff, "then_branch", then_b);
    qb_attr_graph(iff, "else_branch", else_b);
    qb_output(g, "y1", 1);
    qb_output(g, "y2", 1);
    qb_output(g, "y3", 1);

    struct mq_error err = {{0}};
    struct mq_graph_canonical_counts counts;
    ck_assert_int_eq(mq_graph_canonicalize(m, NULL, &counts, &err), 0);
    ck_assert_int_eq(counts.branches_inlined, 1);
    ck_assert_ptr_null(find_op(g, "If"));
    const Onnx__NodeProto *neg = find_op(g, "Neg");
    ck_assert_ptr_nonnull(neg);
    ck_assert_str_eq(neg->output[0], "y1");
    const Onnx__NodeProto *id = find_op(g, "Identity");
    ck_assert_ptr_nonnull(id);
    ck_assert_str_eq(id->input[0], "x");
    ck_assert_str_eq(id->output[0], "y2");
    /* the branch's Constant now produces the graph output y3 itself: it stays a Constant */
    const Onnx__NodeProto *k_node = find_op(g, "Constant");
    ck_assert_ptr_nonnull(k_node);
    ck_assert_str_eq(k_node->output[0], "y3");
    ck_assert_int_eq(g->n_node, 3);
    ck_assert(!has_initializer(g, "cond"));
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

static int listed(char **names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* mlsd's head: Conv -> Sigmoid -> s; Mul(s, Cast(Equal(s, MaxPool(s)))); a shape comparison. */
START_TEST(test_decision_paths)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t d[4] = {1, 1, 4, 4};
    qb_input(g, "x", 1, 4, d);
    qb_init_f32(g, "w", 4, (int64_t[]){1, 1, 1, 1}, w6);
    qb_node(g, "Conv", "head", "x,w", "logits");
    qb_node(g, "Sigmoid", "sig", "logits", "s");
    qb_node(g, "MaxPool", "pool", "s", "pooled");
    qb_node(g, "Equal", "eq", "s,pooled", "peak");
    qb_node(g, "Cast", "cast", "peak", "peak_f");
    qb_node(g, "Mul", "keep", "s,peak_f", "scores");
    qb_node(g, "Conv", "other", "x,w", "feat");
    qb_node(g, "Relu", "relu", "feat", "r");
    qb_node(g, "Shape", "shp", "x", "xs");
    qb_init_i64(g, "want", 1, (int64_t[]){4}, d);
    qb_node(g, "Equal", "same_shape", "xs,want", "same"); /* integers: no path */
    qb_output(g, "scores", 1);
    qb_output(g, "r", 1);
    qb_output(g, "same", 9);

    struct mq_error err = {{0}};
    struct mq_graph_decision_paths p;
    ck_assert_int_eq(mq_graph_decision_inputs(g, &p, &err), 0);
    ck_assert_int_eq(p.n_tensors, 3);
    ck_assert(listed(p.tensors, p.n_tensors, "s"));
    ck_assert(listed(p.tensors, p.n_tensors, "pooled"));
    ck_assert(listed(p.tensors, p.n_tensors, "logits"));
    ck_assert(listed(p.nodes, p.n_nodes, "eq"));
    ck_assert(listed(p.nodes, p.n_nodes, "sig"));
    ck_assert(listed(p.nodes, p.n_nodes, "pool"));
    ck_assert(!listed(p.nodes, p.n_nodes, "head"));
    ck_assert(!listed(p.nodes, p.n_nodes, "relu"));
    ck_assert(!listed(p.nodes, p.n_nodes, "same_shape"));
    ck_assert(!listed(p.tensors, p.n_tensors, "xs"));
    ck_assert_int_eq(p.n_nodes, 3);
    mq_graph_decision_paths_free(&p);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("graph_canonical");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_shadowing_respected);
    tcase_add_test(tc, test_capture_keeps_identity);
    tcase_add_test(tc, test_dequantize_rule);
    tcase_add_test(tc, test_ir3_inputs);
    tcase_add_test(tc, test_inline_constant_if);
    tcase_add_test(tc, test_aliases_and_expanding_weights);
    tcase_add_test(tc, test_decision_paths);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
