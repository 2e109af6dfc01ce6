/*
 * Spatial means as GlobalAveragePool (quant/mean_pool.c): which ReduceMeans
 * it takes (axes 2 .. rank - 1 of a 4-D or 5-D tensor, as attribute or as
 * opset 18's input, negative or not, the rank declared or from a sample), what
 * it leaves (3-D means, partial ones), and that the
 * pool (with a Flatten for keepdims 0) gives the same tensor.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "quant/mean_pool.h"
#include "model_run.h"
#include "quant_builder.h"

static int count_op(const Onnx__GraphProto *g, const char *op)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        n += strcmp(g->node[i]->op_type, op) == 0;
    return n;
}

static const int64_t x_dims[4] = {2, 3, 4, 5};

/* The shape of "r" (Relu's output, undeclared) as a sample run would give it. */
static int shape_of(void *user, const char *name, int64_t *dims)
{
    (void)user;
    if (strcmp(name, "r") != 0)
        return -1;
    memcpy(dims, x_dims, sizeof x_dims);
    return 4;
}

/*
 * x (declared [2, 3, 4, 5]) -> ReduceMean axes (2, 3) keepdims 0: y;
 * -> ReduceMean axes (-1, -2) keepdims 1: z; -> ReduceMean axes (1, 2): w (not
 * spatial, stays); Relu(x) = r (rank undeclared) -> ReduceMean axes (2, 3): v.
 */
static Onnx__ModelProto *mean_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t hw[2] = {2, 3}, back[2] = {-1, -2}, ch[2] = {1, 2};
    qb_input(g, "x", 1, 4, x_dims);
    Onnx__NodeProto *n = qb_node(g, "ReduceMean", "mean_y", "x", "y");
    qb_attr_ints(n, "axes", 2, hw);
    qb_attr_int(n, "keepdims", 0);
    qb_attr_ints(qb_node(g, "ReduceMean", "mean_z", "x", "z"), "axes", 2, back);
    qb_attr_ints(qb_node(g, "ReduceMean", "mean_w", "x", "w"), "axes", 2, ch);
    qb_node(g, "Relu", "relu", "x", "r");
    qb_attr_ints(qb_node(g, "ReduceMean", "mean_v", "r", "v"), "axes", 2, hw);
    qb_output(g, "y", 1);
    qb_output(g, "z", 1);
    qb_output(g, "w", 1);
    qb_output(g, "v", 1);
    return m;
}

static void fill(struct mq_tensor *x, const int64_t *dims, int rank)
{
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_alloc(x, MQ_DTYPE_FLOAT, rank, dims, "x", &err), MQ_OK);
    float *v = x->data;
    for (int64_t i = 0; i < x->count; i++)
        v[i] = (float)((i * 37) % 23) - 9.5f;
}

/* The rewritten model's outputs equal the original's (same shapes, values to rounding). */
static void assert_same_outputs(Onnx__ModelProto *m, Onnx__ModelProto *orig,
                                const struct mq_tensor *x, int n_out)
{
    struct mq_tensor r[4], e[4];
    mr_run(m, x, 1, r, n_out);
    mr_run(orig, x, 1, e, n_out);
    for (int k = 0; k < n_out; k++) {
        ck_assert_int_eq(r[k].rank, e[k].rank);
        ck_assert_int_eq(r[k].count, e[k].count);
        for (int d = 0; d < r[k].rank; d++)
            ck_assert_int_eq(r[k].dims[d], e[k].dims[d]);
        const float *a = r[k].data, *b = e[k].data;
        for (int64_t i = 0; i < r[k].count; i++)
            ck_assert_float_eq_tol(a[i], b[i], 1e-6f * (1.0f + fabsf(b[i])));
        mq_tensor_free(&r[k]);
        mq_tensor_free(&e[k]);
    }
}

START_TEST(test_spatial_means_become_pools)
{
    Onnx__ModelProto *m = mean_model();
    Onnx__ModelProto *orig = qb_copy_model(m);
    Onnx__GraphProto *g = m->graph;
    ck_assert_int_eq(mq_mean_pool_candidates(m), 1);
    struct mq_opset_hints shapes = {shape_of, NULL};
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_means_as_pool(m, &shapes, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(count_op(g, "GlobalAveragePool"), 3);
    ck_assert_int_eq(count_op(g, "ReduceMean"), 1);
    ck_assert_ptr_nonnull(qb_node_named(g, "mean_w"));
    /* keepdims 0: the pool, then a Flatten from axis 1 writing y */
    const Onnx__NodeProto *pool = qb_node_named(g, "mean_y_as_pool");
    const Onnx__NodeProto *flatten = qb_node_named(g, "mean_y_flatten");
    ck_assert_ptr_nonnull(pool);
    ck_assert_ptr_nonnull(flatten);
    ck_assert_str_eq(pool->input[0], "x");
    ck_assert_str_eq(flatten->input[0], pool->output[0]);
    ck_assert_str_eq(flatten->output[0], "y");
    ck_assert_int_eq(count_op(g, "Flatten"), 1);
    /* keepdims 1: the pool alone writes z */
    ck_assert_str_eq(qb_node_named(g, "mean_z_as_pool")->output[0], "z");

    struct mq_tensor x = {0};
    fill(&x, x_dims, 4);
    assert_same_outputs(m, orig, &x, 4);
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Without a sample's shapes, an undeclared rank leaves its mean as it is. */
START_TEST(test_unknown_rank_leaves_the_mean)
{
    Onnx__ModelProto *m = mean_model();
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_means_as_pool(m, NULL, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(qb_node_named(m->graph, "mean_v"));
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Opset 18: the axes as an input; the initializer goes with the mean. A 5-D input's axes
   (2, 3) leave one spatial axis out: no pool. */
START_TEST(test_axes_input_and_partial_means)
{
    Onnx__ModelProto *m = qb_model(18);
    Onnx__GraphProto *g = m->graph;
    int64_t two[1] = {2}, hw[2] = {2, 3}, five[5] = {1, 2, 3, 2, 2};
    qb_input(g, "x", 1, 4, x_dims);
    qb_input(g, "x5", 1, 5, five);
    qb_init_i64(g, "hw", 1, two, hw);
    qb_init_i64(g, "hw5", 1, two, hw);
    qb_attr_int(qb_node(g, "ReduceMean", "mean", "x,hw", "y"), "keepdims", 0);
    qb_node(g, "ReduceMean", "mean5", "x5,hw5", "y5");
    qb_output(g, "y", 1);
    qb_output(g, "y5", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_means_as_pool(m, NULL, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(qb_node_named(g, "mean"));
    ck_assert_ptr_nonnull(qb_node_named(g, "mean5"));
    ck_assert_int_eq((int)g->n_initializer, 1);
    ck_assert_str_eq(g->initializer[0]->name, "hw5");

    struct mq_tensor in[2] = {{0}};
    fill(&in[0], x_dims, 4);
    fill(&in[1], five, 5);
    struct mq_tensor r[2], e[2];
    mr_run(m, in, 2, r, 2);
    mr_run(orig, in, 2, e, 2);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(r[k].count, e[k].count);
        ck_assert_int_eq(r[k].rank, e[k].rank);
        const float *a = r[k].data, *b = e[k].data;
        for (int64_t i = 0; i < r[k].count; i++)
            ck_assert_float_eq_tol(a[i], b[i], 1e-6f * (1.0f + fabsf(b[i])));
        mq_tensor_free(&r[k]);
        mq_tensor_free(&e[k]);
    }
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* A 3-D mean over its last axis is left alone: as often a transformer's LayerNorm over
   [B, T, D] (which onnxruntime fuses from the ReduceMean) as a 1-D pool. */
START_TEST(test_three_dimensional_mean_stays)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t dims[3] = {2, 5, 8}, last[1] = {-1}, two[1] = {2};
    qb_input(g, "x", 1, 3, dims);
    qb_attr_ints(qb_node(g, "ReduceMean", "layer_mean", "x", "m"), "axes", 1, last);
    qb_attr_ints(qb_node(g, "ReduceMean", "pool_mean", "x", "p"), "axes", 1, two);
    qb_output(g, "m", 1);
    qb_output(g, "p", 1);
    ck_assert_int_eq(mq_mean_pool_candidates(m), 0);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_means_as_pool(m, NULL, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(count_op(g, "ReduceMean"), 2);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_mean_pool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_spatial_means_become_pools);
    tcase_add_test(tc, test_unknown_rank_leaves_the_mean);
    tcase_add_test(tc, test_axes_input_and_partial_means);
    tcase_add_test(tc, test_three_dimensional_mean_stays);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
