/* Gather, GatherElements, GatherND, ScatterND, ScatterElements, Scatter (gather_scatter.c). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static void run_fail(Onnx__NodeProto *n, int opset, struct mq_tensor *in, int n_in,
                     const char *needle)
{
    struct mq_error err = {{0}};
    struct mq_tensor out = {0};
    ck_assert_int_ne(oh_run(n, opset, in, n_in, &out, 1, &err), 0);
    ck_assert_msg(strstr(err.message, needle) && strstr(err.message, "node_under_test"),
                  "message '%s' lacks '%s' or the node name", err.message, needle);
    mq_tensor_free(&out);
    for (int i = 0; i < n_in; i++)
        mq_tensor_free(&in[i]);
    oh_node_free(n);
}

static void check(struct mq_tensor *t, int rank, const int64_t *dims, const int64_t *v)
{
    oh_assert_i64(t, rank, dims, v);
    mq_tensor_free(t);
}

static Onnx__NodeProto *with_axis(const char *op, int n_in, int64_t axis)
{
    Onnx__NodeProto *n = oh_node(op, n_in, 1);
    oh_attr_int(n, "axis", axis);
    return n;
}

START_TEST(gather)
{
    /* numpy.take(arange(6).reshape(3, 2), [[0, 2], [-1, 1]], axis=0) */
    struct mq_tensor in[2] = {oh_iota_i64(2, OH_DIMS(3, 2)),
                              oh_i64(2, OH_DIMS(2, 2), (int64_t[]){0, 2, -1, 1})};
    struct mq_tensor o = oh_run1_take_all(oh_node("Gather", 2, 1), 13, in, 2);
    check(&o, 3, OH_DIMS(2, 2, 2), (int64_t[]){0, 1, 4, 5, 4, 5, 2, 3});

    /* axis -1 with int32 indices: one element per index */
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_i32(1, OH_DIMS(4), (int32_t[]){2, 0, -1, 1});
    o = oh_run1_take_all(with_axis("Gather", 2, -1), 13, in, 2);
    check(&o, 2, OH_DIMS(2, 4), (int64_t[]){2, 0, 2, 1, 5, 3, 5, 4});

    /* a scalar index drops the axis; empty indices give an empty axis */
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_i64(0, NULL, (int64_t[]){1});
    o = oh_run1_take_all(with_axis("Gather", 2, 1), 13, in, 2);
    check(&o, 1, OH_DIMS(2), (int64_t[]){1, 4});
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_i64(1, OH_DIMS(0), NULL);
    o = oh_run1_take_all(oh_node("Gather", 2, 1), 13, in, 2);
    check(&o, 2, OH_DIMS(0, 3), NULL);

    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_i64(1, OH_DIMS(2), (int64_t[]){0, 2});
    run_fail(oh_node("Gather", 2, 1), 13, in, 2, "index 2");
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_i64(1, OH_DIMS(1), (int64_t[]){-4});
    run_fail(with_axis("Gather", 2, 1), 13, in, 2, "index -4");
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_f32(1, OH_DIMS(1), (float[]){0});
    run_fail(oh_node("Gather", 2, 1), 13, in, 2, "int32 or int64");
}
END_TEST

START_TEST(gather_elements_and_nd)
{
    /* numpy.take_along_axis(arange(12).reshape(3,4), [[2,-1],[0,0],[1,3]] % 4, axis=1) */
    struct mq_tensor in[3] = {oh_iota_i64(2, OH_DIMS(3, 4)),
                              oh_i64(2, OH_DIMS(3, 2), (int64_t[]){2, -1, 0, 0, 1, 3})};
    struct mq_tensor o = oh_run1_take_all(with_axis("GatherElements", 2, 1), 13, in, 2);
    check(&o, 2, OH_DIMS(3, 2), (int64_t[]){2, 3, 4, 4, 9, 11});
    /* axis 0, indices smaller than data on the other axis */
    in[0] = oh_iota_i64(2, OH_DIMS(3, 4));
    in[1] = oh_i64(2, OH_DIMS(2, 2), (int64_t[]){2, 0, 1, 2});
    o = oh_run1_take_all(oh_node("GatherElements", 2, 1), 13, in, 2);
    check(&o, 2, OH_DIMS(2, 2), (int64_t[]){8, 1, 4, 9});
    in[0] = oh_iota_i64(2, OH_DIMS(3, 4));
    in[1] = oh_i64(2, OH_DIMS(4, 2), NULL);
    run_fail(with_axis("GatherElements", 2, 1), 13, in, 2, "exceed");

    /* GatherND: full tuples, then slices, then batch_dims=1 */
    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = oh_i64(2, OH_DIMS(2, 2), (int64_t[]){0, 0, -1, 1});
    o = oh_run1_take_all(oh_node("GatherND", 2, 1), 13, in, 2);
    check(&o, 1, OH_DIMS(2), (int64_t[]){0, 3});
    in[0] = oh_iota_i64(3, OH_DIMS(2, 2, 2));
    in[1] = oh_i64(2, OH_DIMS(2, 1), (int64_t[]){1, 0});
    o = oh_run1_take_all(oh_node("GatherND", 2, 1), 13, in, 2);
    check(&o, 3, OH_DIMS(2, 2, 2), (int64_t[]){4, 5, 6, 7, 0, 1, 2, 3});
    in[0] = oh_iota_i64(3, OH_DIMS(2, 3, 4));
    in[1] = oh_i64(3, OH_DIMS(2, 2, 1), (int64_t[]){1, 0, 1, 0});
    Onnx__NodeProto *n = oh_node("GatherND", 2, 1);
    oh_attr_int(n, "batch_dims", 1);
    o = oh_run1_take_all(n, 13, in, 2);
    check(&o, 3, OH_DIMS(2, 2, 4),
          (int64_t[]){4, 5, 6, 7, 0, 1, 2, 3, 16, 17, 18, 19, 12, 13, 14, 15});
    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = oh_i64(2, OH_DIMS(1, 3), (int64_t[]){0, 0, 0});
    run_fail(oh_node("GatherND", 2, 1), 13, in, 2, "do not fit");
    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = oh_i64(2, OH_DIMS(1, 2), (int64_t[]){0, 2});
    run_fail(oh_node("GatherND", 2, 1), 13, in, 2, "index 2");
}
END_TEST

static Onnx__NodeProto *reduced(const char *op, const char *reduction)
{
    Onnx__NodeProto *n = oh_node(op, 3, 1);
    if (reduction)
        oh_attr_string(n, "reduction", reduction);
    return n;
}

START_TEST(scatter_nd)
{
    /* whole rows 0 and 2 (written -2) replaced */
    struct mq_tensor in[3] = {oh_iota_i64(2, OH_DIMS(4, 2)), oh_i64(2, OH_DIMS(2, 1),
                                                                 (int64_t[]){0, -2}),
                              oh_i64(2, OH_DIMS(2, 2), (int64_t[]){10, 11, 12, 13})};
    struct mq_tensor o = oh_run1_take_all(reduced("ScatterND", NULL), 13, in, 3);
    check(&o, 2, OH_DIMS(4, 2), (int64_t[]){10, 11, 2, 3, 12, 13, 6, 7});

    /* duplicates accumulate under add and mul */
    in[0] = oh_i64(1, OH_DIMS(4), (int64_t[]){1, 2, 3, 4});
    in[1] = oh_i64(2, OH_DIMS(3, 1), (int64_t[]){1, 1, 3});
    in[2] = oh_i64(1, OH_DIMS(3), (int64_t[]){5, 6, 7});
    o = oh_run1_take_all(reduced("ScatterND", "add"), 16, in, 3);
    check(&o, 1, OH_DIMS(4), (int64_t[]){1, 13, 3, 11});
    in[0] = oh_f32(2, OH_DIMS(2, 2), (float[]){1, 2, 3, 4});
    in[1] = oh_i64(2, OH_DIMS(2, 1), (int64_t[]){1, 1});
    in[2] = oh_f32(2, OH_DIMS(2, 2), (float[]){2, 3, 0.5f, 2});
    o = oh_run1_take_all(reduced("ScatterND", "mul"), 16, in, 3);
    oh_assert_f32(&o, 2, OH_DIMS(2, 2), (float[]){1, 2, 3, 24}, 0, 0);
    mq_tensor_free(&o);
    in[0] = oh_i32(1, OH_DIMS(3), (int32_t[]){5, 5, 5});
    in[1] = oh_i64(2, OH_DIMS(3, 1), (int64_t[]){0, 2, 0});
    in[2] = oh_i32(1, OH_DIMS(3), (int32_t[]){7, 1, 9});
    o = oh_run1_take_all(reduced("ScatterND", "max"), 18, in, 3);
    check(&o, 1, OH_DIMS(3), (int64_t[]){9, 5, 5});
    in[0] = oh_i32(1, OH_DIMS(3), (int32_t[]){5, 5, 5});
    in[1] = oh_i64(2, OH_DIMS(3, 1), (int64_t[]){0, 2, 0});
    in[2] = oh_i32(1, OH_DIMS(3), (int32_t[]){7, 1, 9});
    o = oh_run1_take_all(reduced("ScatterND", "min"), 18, in, 3);
    check(&o, 1, OH_DIMS(3), (int64_t[]){5, 5, 1});

    in[0] = oh_i32(1, OH_DIMS(3), NULL);
    in[1] = oh_i64(2, OH_DIMS(1, 1), (int64_t[]){0});
    in[2] = oh_i32(1, OH_DIMS(1), NULL);
    run_fail(reduced("ScatterND", "max"), 16, in, 3, "reduction 'max'");
    in[0] = oh_i32(1, OH_DIMS(3), NULL);
    in[1] = oh_i64(2, OH_DIMS(2, 1), (int64_t[]){0, 1});
    in[2] = oh_i32(1, OH_DIMS(3), NULL);
    run_fail(reduced("ScatterND", NULL), 13, in, 3, "updates have shape [3]");
    in[0] = oh_i32(1, OH_DIMS(3), NULL);
    in[1] = oh_i64(2, OH_DIMS(1, 1), (int64_t[]){3});
    in[2] = oh_i32(1, OH_DIMS(1), NULL);
    run_fail(reduced("ScatterND", NULL), 13, in, 3, "index 3");
}
END_TEST

START_TEST(scatter_elements)
{
    /* Operators.md: data [[1,2,3,4,5]], indices [[1,3]], updates [[1.1,2.1]], axis 1 */
    struct mq_tensor in[3] = {oh_f32(2, OH_DIMS(1, 5), (float[]){1, 2, 3, 4, 5}),
                              oh_i64(2, OH_DIMS(1, 2), (int64_t[]){1, -2}),
                              oh_f32(2, OH_DIMS(1, 2), (float[]){1.1f, 2.1f})};
    Onnx__NodeProto *n = reduced("ScatterElements", NULL);
    oh_attr_int(n, "axis", 1);
    struct mq_tensor o = oh_run1_take_all(n, 13, in, 3);
    oh_assert_f32(&o, 2, OH_DIMS(1, 5), (float[]){1, 1.1f, 3, 2.1f, 5}, 0, 0);
    mq_tensor_free(&o);

    /* axis 0 with duplicate targets under add, on float16 */
    in[0] = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 2),
                     (uint16_t[]){0x3c00, 0x3c00, 0x3c00, 0x3c00}); /* ones */
    in[1] = oh_i64(2, OH_DIMS(2, 2), (int64_t[]){1, 0, 1, 0});
    in[2] = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 2),
                     (uint16_t[]){0x4000, 0x4000, 0x4200, 0x3800}); /* 2, 2, 3, 0.5 */
    o = oh_run1_take_all(reduced("ScatterElements", "add"), 16, in, 3);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_FLOAT16);
    const uint16_t *h = o.data;
    /* [[1, 1 + 2 + 0.5], [1 + 2 + 3, 1]] = [[1, 3.5], [6, 1]] */
    ck_assert(h[0] == 0x3c00 && h[1] == 0x4300 && h[2] == 0x4600 && h[3] == 0x3c00);
    mq_tensor_free(&o);

    /* bool: add is "or", mul is "and" */
    in[0] = oh_bool(1, OH_DIMS(3), (uint8_t[]){0, 1, 1});
    in[1] = oh_i64(1, OH_DIMS(2), (int64_t[]){0, 1});
    in[2] = oh_bool(1, OH_DIMS(2), (uint8_t[]){1, 0});
    o = oh_run1_take_all(reduced("ScatterElements", "mul"), 16, in, 3);
    check(&o, 1, OH_DIMS(3), (int64_t[]){0, 0, 1});

    /* deprecated Scatter-9 */
    in[0] = oh_i64(2, OH_DIMS(3, 3), NULL);
    in[1] = oh_i64(2, OH_DIMS(2, 3), (int64_t[]){1, 0, 2, 0, 2, 1});
    in[2] = oh_i64(2, OH_DIMS(2, 3), (int64_t[]){1, 2, 3, 4, 5, 6});
    o = oh_run1_take_all(reduced("Scatter", NULL), 9, in, 3);
    check(&o, 2, OH_DIMS(3, 3), (int64_t[]){4, 2, 0, 1, 0, 6, 0, 5, 3});

    in[0] = oh_i64(2, OH_DIMS(3, 3), NULL);
    in[1] = oh_i64(2, OH_DIMS(1, 2), (int64_t[]){1, 0});
    in[2] = oh_i64(2, OH_DIMS(1, 3), NULL);
    run_fail(reduced("ScatterElements", NULL), 13, in, 3, "shape of indices");
    in[0] = oh_i64(2, OH_DIMS(3, 3), NULL);
    in[1] = oh_i64(2, OH_DIMS(1, 2), (int64_t[]){1, 0});
    in[2] = oh_i32(2, OH_DIMS(1, 2), NULL);
    run_fail(reduced("ScatterElements", NULL), 13, in, 3, "int32");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_gather_scatter");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, gather);
    tcase_add_test(tc, gather_elements_and_nd);
    tcase_add_test(tc, scatter_nd);
    tcase_add_test(tc, scatter_elements);
    return mq_check_run(s, tc);
}
