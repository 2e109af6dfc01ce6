/*
 * BatchNormalization written as a depthwise 1x1 Conv (quant/batchnorm_conv.c):
 * which nodes qualify (between ops with a quantizer rule, inference mode,
 * constant parameters, a known rank), the Conv it becomes, the parameters it
 * drops, and that the model computes the same values.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "quant/batchnorm_conv.h"
#include "model_run.h"
#include "quant_builder.h"

enum { C = 3 };
static const int64_t x_dims[4] = {1, C, 4, 5};

/* Every tensor of these models has the input's shape. */
static int shape_of(void *user, const char *name, int64_t *dims)
{
    (void)user;
    (void)name;
    memcpy(dims, x_dims, sizeof x_dims);
    return 4;
}

static const Onnx__AttributeProto *attr_named(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

static void bn_params(Onnx__GraphProto *g, const char *prefix)
{
    const int64_t d[1] = {C};
    const float scale[C] = {1.5f, -0.5f, 2.0f}, bias[C] = {0.25f, -1.0f, 0.5f};
    const float mean[C] = {0.1f, -0.2f, 0.3f}, var[C] = {0.5f, 2.0f, 1.0f};
    const char *suffix[4] = {"scale", "bias", "mean", "var"};
    const float *values[4] = {scale, bias, mean, var};
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s_%s", prefix, suffix[k]);
        qb_init_f32(g, name, 1, d, values[k]);
    }
}

/*
 * Add(x, x) -> BN "taken" -> Relu -> MaxPool
 * (ops with rules on both sides); x -> BN "from_input" (no op writes its input) -> output;
 * Add -> BN "to_output" (a graph output).
 */
static Onnx__ModelProto *bn_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    qb_input(g, "x", 1, 4, x_dims);
    bn_params(g, "p");
    bn_params(g, "q");
    qb_node(g, "Add", "add", "x,x", "a");
    Onnx__NodeProto *bn = qb_node(g, "BatchNormalization", "taken", "a,p_scale,p_bias,p_mean,p_var",
                                  "b");
    qb_attr_float(bn, "epsilon", 1e-3f);
    qb_node(g, "Relu", "relu", "b", "r");
    Onnx__NodeProto *pool = qb_node(g, "MaxPool", "pool", "r", "y");
    const int64_t k1[2] = {1, 1};
    qb_attr_ints(pool, "kernel_shape", 2, k1);
    qb_output(g, "y", 1);
    qb_node(g, "BatchNormalization", "from_input", "x,q_scale,q_bias,q_mean,q_var", "z");
    qb_output(g, "z", 1);
    qb_node(g, "BatchNormalization", "to_output", "a,q_scale,q_bias,q_mean,q_var", "w");
    qb_output(g, "w", 1);
    return m;
}

START_TEST(test_batchnorm_between_int8_ops_becomes_conv)
{
    Onnx__ModelProto *m = bn_model();
    Onnx__ModelProto *orig = qb_copy_model(m);
    Onnx__GraphProto *g = m->graph;
    ck_assert_int_eq(mq_batchnorm_conv_candidates(m), 1);
    struct mq_opset_hints shapes = {shape_of, NULL};
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_batchnorms_as_conv(m, &shapes, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    const Onnx__NodeProto *conv = qb_node_named(g, "taken");
    ck_assert_str_eq(conv->op_type, "Conv");
    ck_assert_str_eq(conv->input[0], "a");
    ck_assert_str_eq(conv->output[0], "b");
    ck_assert_int_eq(attr_named(conv, "group")->i, C);
    ck_assert_str_eq(qb_node_named(g, "from_input")->op_type, "BatchNormalization");
    ck_assert_str_eq(qb_node_named(g, "to_output")->op_type, "BatchNormalization");
    /* its own parameters are gone, the shared ones stay */
    int have_p = 0, have_q = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        have_p += strncmp(g->initializer[i]->name, "p_", 2) == 0;
        have_q += strncmp(g->initializer[i]->name, "q_", 2) == 0;
    }
    ck_assert_int_eq(have_p, 0);
    ck_assert_int_eq(have_q, 4);

    struct mq_tensor x = {0};
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, x_dims, "x", &err), MQ_OK);
    float *xv = x.data;
    for (int64_t i = 0; i < x.count; i++)
        xv[i] = (float)((i * 37) % 41) / 8.0f - 2.5f;
    mr_assert_close(m, orig, &x, 1, 3, 1e-5f, 1e-5f, "BatchNormalization");
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Without a rank (no shapes), in training mode, or over rank 2: the node stays. */
START_TEST(test_batchnorm_left_alone)
{
    struct mq_error err;
    int n = -1;
    Onnx__ModelProto *m = bn_model();
    struct mq_opset_hints none = {NULL, NULL};
    ck_assert_int_eq(mq_batchnorms_as_conv(m, &none, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    qb_attr_int((Onnx__NodeProto *)qb_node_named(m->graph, "taken"), "training_mode", 1);
    struct mq_opset_hints shapes = {shape_of, NULL};
    ck_assert_int_eq(mq_batchnorms_as_conv(m, &shapes, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_str_eq(qb_node_named(m->graph, "taken")->op_type, "BatchNormalization");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_batchnorm_conv");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_batchnorm_between_int8_ops_becomes_conv);
    tcase_add_test(tc, test_batchnorm_left_alone);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
