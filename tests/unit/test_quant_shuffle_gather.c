/*
 * Channel shuffles as one Gather (quant/shuffle_gather.c): the pattern it
 * takes (a Reshape splitting an axis, a Transpose swapping the halves, a
 * Reshape back), what it leaves, and that the Gather gives the same tensor.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "quant/shuffle_gather.h"
#include "model_run.h"
#include "quant_builder.h"

static int count_op(const Onnx__GraphProto *g, const char *op)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        n += strcmp(g->node[i]->op_type, op) == 0;
    return n;
}

static const int64_t x_dims[4] = {1, 6, 2, 3}, split_dims[5] = {1, 2, 3, 2, 3};

/* Shapes as a sample run would give them. */
static int shape_of(void *user, const char *name, int64_t *dims)
{
    (void)user;
    if (strcmp(name, "x") == 0 || strcmp(name, "y") == 0 || strcmp(name, "z") == 0) {
        memcpy(dims, x_dims, sizeof x_dims);
        return 4;
    }
    if (strcmp(name, "s") == 0 || strcmp(name, "s2") == 0) {
        memcpy(dims, split_dims, sizeof split_dims);
        return 5;
    }
    return -1;
}

/*
 * x -> Reshape [1, 2, 3, 2, 3] -> Transpose (0, 2, 1, 3, 4) -> Reshape back: y
 * (a shuffle of 2 groups of 3 channels); and the same split with a Transpose
 * that also swaps H and W: z (no shuffle, stays).
 */
static Onnx__ModelProto *shuffle_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t five[1] = {5}, four[1] = {4}, back[4] = {1, 6, 2, 3};
    int64_t swap[5] = {0, 2, 1, 3, 4}, other[5] = {0, 2, 1, 4, 3};
    qb_input(g, "x", 1, 4, x_dims);
    qb_init_i64(g, "split_shape", 1, five, split_dims);
    qb_init_i64(g, "back_shape", 1, four, back);
    qb_node(g, "Reshape", "split", "x,split_shape", "s");
    qb_attr_ints(qb_node(g, "Transpose", "swap", "s", "t"), "perm", 5, swap);
    qb_node(g, "Reshape", "merge", "t,back_shape", "y");
    qb_node(g, "Reshape", "split2", "x,split_shape", "s2");
    qb_attr_ints(qb_node(g, "Transpose", "swap2", "s2", "t2"), "perm", 5, other);
    qb_node(g, "Reshape", "merge2", "t2,back_shape", "z");
    qb_output(g, "y", 1);
    qb_output(g, "z", 1);
    return m;
}

START_TEST(test_shuffle_becomes_gather)
{
    Onnx__ModelProto *m = shuffle_model();
    Onnx__ModelProto *orig = qb_copy_model(m);
    Onnx__GraphProto *g = m->graph;
    ck_assert_int_eq(mq_shuffle_candidates(m), 1);
    struct mq_opset_hints shapes = {shape_of, NULL};
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_shuffles_as_gather(m, &shapes, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(count_op(g, "Gather"), 1);
    ck_assert_int_eq(count_op(g, "Transpose"), 1);
    ck_assert_ptr_null(qb_node_named(g, "swap"));
    ck_assert_ptr_nonnull(qb_node_named(g, "swap2"));
    const Onnx__NodeProto *gather = qb_node_named(g, "swap_as_gather");
    ck_assert_ptr_nonnull(gather);
    ck_assert_str_eq(gather->input[0], "x");
    ck_assert_str_eq(gather->output[0], "y");

    struct mq_tensor x = {0};
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, x_dims, "x", &err), MQ_OK);
    float *xv = x.data;
    for (int64_t i = 0; i < x.count; i++)
        xv[i] = (float)i;
    mr_assert_close(m, orig, &x, 1, 2, 0.0f, 0.0f, "shuffle");
    /* channel k of y is channel (k mod 2) * 3 + k / 2 of x: 0, 3, 1, 4, 2, 5 */
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Without shapes nothing is rewritten. */
START_TEST(test_unknown_shapes_leave_the_shuffle)
{
    Onnx__ModelProto *m = shuffle_model();
    struct mq_opset_hints none = {NULL, NULL};
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_shuffles_as_gather(m, &none, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(count_op(m->graph, "Transpose"), 2);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_shuffle_gather");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_shuffle_becomes_gather);
    tcase_add_test(tc, test_unknown_shapes_leave_the_shuffle);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
