/*
 * Data movement and shape ops (src/interp/ops/: reshape_views.c, layout.c,
 * pad.c, selection.c, copy_ops.c, generators.c; OneHot in gather_scatter.c,
 * Trilu in linalg.c).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static struct mq_tensor ints(int n, const int64_t *v)
{
    return oh_i64(1, OH_DIMS(n), v);
}

/* Runs a node that must fail with a message containing `needle`. */
static void run_fail(Onnx__NodeProto *n, int opset, struct mq_tensor *in, int n_in, int n_out,
                     const char *needle)
{
    struct mq_error err = {{0}};
    struct mq_tensor out[8];
    memset(out, 0, sizeof out);
    int rc = oh_run(n, opset, in, n_in, out, n_out, &err);
    ck_assert_msg(rc != 0, "expected failure containing '%s'", needle);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
    ck_assert_msg(strstr(err.message, "node_under_test") != NULL, "message '%s' names no node",
                  err.message);
    for (int i = 0; i < n_out; i++)
        mq_tensor_free(&out[i]);
    for (int i = 0; i < n_in; i++)
        mq_tensor_free(&in[i]);
    oh_node_free(n);
}

static void check_i64(struct mq_tensor *t, int rank, const int64_t *dims, const int64_t *v)
{
    oh_assert_i64(t, rank, dims, v);
    mq_tensor_free(t);
}

/* ---- Reshape and friends ---------------------------------------------------------------- */

START_TEST(reshape_zero_and_minus_one)
{
    struct mq_tensor in[2] = {oh_iota_f32(3, OH_DIMS(2, 3, 4)), ints(3, (int64_t[]){0, -1, 2})};
    struct mq_tensor o = oh_run1_take_all(oh_node("Reshape", 2, 1), 13, in, 2);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_FLOAT);
    oh_assert_shape(&o, 3, OH_DIMS(2, 6, 2));
    ck_assert(((float *)o.data)[23] == 23.0f);
    mq_tensor_free(&o);

    /* allowzero=1: 0 is a literal zero dim (of an empty tensor) */
    in[0] = oh_f32(2, OH_DIMS(0, 3), NULL);
    in[1] = ints(3, (int64_t[]){3, 0, 4});
    Onnx__NodeProto *n = oh_node("Reshape", 2, 1);
    oh_attr_int(n, "allowzero", 1);
    o = oh_run1_take_all(n, 14, in, 2);
    oh_assert_shape(&o, 3, OH_DIMS(3, 0, 4));
    mq_tensor_free(&o);

    /* Reshape-1 takes the shape as an attribute */
    in[0] = oh_iota_f32(2, OH_DIMS(2, 3));
    n = oh_node("Reshape", 1, 1);
    oh_attr_ints(n, "shape", 2, (int64_t[]){3, -1});
    o = oh_run1_take_all(n, 1, in, 1);
    oh_assert_shape(&o, 2, OH_DIMS(3, 2));
    mq_tensor_free(&o);
}
END_TEST

START_TEST(reshape_errors)
{
    struct mq_tensor in[2] = {oh_iota_f32(2, OH_DIMS(2, 3)), ints(2, (int64_t[]){4, 2})};
    run_fail(oh_node("Reshape", 2, 1), 13, in, 2, 1, "cannot reshape");
    in[0] = oh_iota_f32(2, OH_DIMS(2, 3));
    in[1] = ints(2, (int64_t[]){-1, -1});
    run_fail(oh_node("Reshape", 2, 1), 13, in, 2, 1, "more than one -1");
    in[0] = oh_iota_f32(2, OH_DIMS(2, 3));
    in[1] = ints(2, (int64_t[]){-1, 4});
    run_fail(oh_node("Reshape", 2, 1), 13, in, 2, 1, "cannot infer");
    in[0] = oh_iota_f32(2, OH_DIMS(2, 3));
    in[1] = ints(3, (int64_t[]){1, 6, 0});
    run_fail(oh_node("Reshape", 2, 1), 13, in, 2, 1, "rank 2");
    in[0] = oh_iota_f32(2, OH_DIMS(2, 3));
    in[1] = ints(2, (int64_t[]){-2, 3});
    run_fail(oh_node("Reshape", 2, 1), 13, in, 2, 1, "invalid value -2");
}
END_TEST

START_TEST(flatten_squeeze_unsqueeze)
{
    struct mq_tensor in[2] = {oh_iota_f32(4, OH_DIMS(2, 3, 4, 5))};
    struct mq_tensor o = oh_run1_take_all(oh_node("Flatten", 1, 1), 13, in, 1);
    oh_assert_shape(&o, 2, OH_DIMS(2, 60));
    mq_tensor_free(&o);
    for (int axis = -4; axis <= 4; axis++) {
        static const int64_t rows[] = {1, 2, 6, 24, 120};
        in[0] = oh_iota_f32(4, OH_DIMS(2, 3, 4, 5));
        Onnx__NodeProto *n = oh_node("Flatten", 1, 1);
        oh_attr_int(n, "axis", axis);
        o = oh_run1_take_all(n, 13, in, 1);
        int a = axis < 0 ? axis + 4 : axis;
        oh_assert_shape(&o, 2, OH_DIMS(rows[a], 120 / rows[a]));
        mq_tensor_free(&o);
    }
    in[0] = oh_iota_f32(2, OH_DIMS(2, 3));
    Onnx__NodeProto *n = oh_node("Flatten", 1, 1);
    oh_attr_int(n, "axis", 3);
    run_fail(n, 13, in, 1, 1, "axis 3");

    /* Squeeze: all size-1 axes by default, listed ones (negative too) otherwise */
    in[0] = oh_iota_f32(4, OH_DIMS(1, 3, 1, 2));
    o = oh_run1_take_all(oh_node("Squeeze", 1, 1), 13, in, 1);
    oh_assert_shape(&o, 2, OH_DIMS(3, 2));
    mq_tensor_free(&o);
    in[0] = oh_iota_f32(4, OH_DIMS(1, 3, 1, 2));
    in[1] = ints(1, (int64_t[]){-2});
    o = oh_run1_take_all(oh_node("Squeeze", 2, 1), 13, in, 2);
    oh_assert_shape(&o, 3, OH_DIMS(1, 3, 2));
    mq_tensor_free(&o);
    in[0] = oh_iota_f32(4, OH_DIMS(1, 3, 1, 2));
    n = oh_node("Squeeze", 1, 1);
    oh_attr_ints(n, "axes", 1, (int64_t[]){0});
    o = oh_run1_take_all(n, 11, in, 1);
    oh_assert_shape(&o, 3, OH_DIMS(3, 1, 2));
    mq_tensor_free(&o);
    in[0] = oh_iota_f32(2, OH_DIMS(1, 3));
    in[1] = ints(1, (int64_t[]){1});
    run_fail(oh_node("Squeeze", 2, 1), 13, in, 2, 1, "not 1");

    /* Unsqueeze: axes refer to the output, any order */
    in[0] = oh_iota_f32(2, OH_DIMS(3, 4));
    in[1] = ints(3, (int64_t[]){4, 0, -4});
    o = oh_run1_take_all(oh_node("Unsqueeze", 2, 1), 13, in, 2);
    oh_assert_shape(&o, 5, OH_DIMS(1, 1, 3, 4, 1));
    ck_assert(((float *)o.data)[11] == 11.0f);
    mq_tensor_free(&o);
    in[0] = oh_iota_f32(0, NULL);
    n = oh_node("Unsqueeze", 1, 1);
    oh_attr_ints(n, "axes", 1, (int64_t[]){0});
    o = oh_run1_take_all(n, 11, in, 1);
    oh_assert_shape(&o, 1, OH_DIMS(1));
    mq_tensor_free(&o);
    in[0] = oh_iota_f32(1, OH_DIMS(3));
    in[1] = ints(2, (int64_t[]){0, -3});
    run_fail(oh_node("Unsqueeze", 2, 1), 13, in, 2, 1, "more than once");
}
END_TEST

/* Transpose against an element-by-element reference. */
static void check_transpose(int rank, const int64_t *dims, const int64_t *perm)
{
    struct mq_tensor in = oh_iota_f32(rank, dims);
    Onnx__NodeProto *n = oh_node("Transpose", 1, 1);
    if (perm)
        oh_attr_ints(n, "perm", rank, perm);
    struct mq_tensor o = oh_run1_take_all(n, 13, &in, 1);
    int64_t p[8], odims[8], istr[8];
    for (int i = 0; i < rank; i++)
        p[i] = perm ? perm[i] : rank - 1 - i;
    for (int i = 0; i < rank; i++)
        odims[i] = dims[p[i]];
    oh_assert_shape(&o, rank, odims);
    istr[rank - 1] = 1;
    for (int i = rank - 2; i >= 0; i--)
        istr[i] = istr[i + 1] * dims[i + 1];
    int64_t idx[8] = {0};
    const float *v = o.data;
    for (int64_t k = 0; k < o.count; k++) {
        int64_t src = 0;
        for (int i = 0; i < rank; i++)
            src += idx[i] * istr[p[i]];
        ck_assert_msg(v[k] == (float)src, "element %lld is %g, expected %lld", (long long)k,
                      (double)v[k], (long long)src);
        for (int i = rank - 1; i >= 0; i--) {
            if (++idx[i] < odims[i])
                break;
            idx[i] = 0;
        }
    }
    mq_tensor_free(&o);
}

START_TEST(transpose_permutations)
{
    check_transpose(2, OH_DIMS(3, 5), NULL);
    check_transpose(3, OH_DIMS(2, 3, 4), NULL);
    /* NCHW <-> NHWC with tiles of the blocked path and ragged edges */
    check_transpose(4, OH_DIMS(2, 37, 9, 7), OH_DIMS(0, 2, 3, 1));
    check_transpose(4, OH_DIMS(2, 9, 7, 37), OH_DIMS(0, 3, 1, 2));
    check_transpose(4, OH_DIMS(3, 4, 5, 6), OH_DIMS(1, 0, 3, 2));
    check_transpose(4, OH_DIMS(3, 4, 5, 6), OH_DIMS(2, 0, 3, 1));
    check_transpose(3, OH_DIMS(70, 1, 40), OH_DIMS(2, 1, 0));
    check_transpose(5, OH_DIMS(2, 3, 1, 4, 5), OH_DIMS(4, 0, 3, 2, 1));
    check_transpose(3, OH_DIMS(2, 3, 4), OH_DIMS(0, 1, 2));

    struct mq_tensor in = oh_f32(3, OH_DIMS(2, 0, 3), NULL);
    struct mq_tensor o = oh_run1_take_all(oh_node("Transpose", 1, 1), 13, &in, 1);
    oh_assert_shape(&o, 3, OH_DIMS(3, 0, 2));
    mq_tensor_free(&o);

    in = oh_iota_f32(2, OH_DIMS(2, 3));
    Onnx__NodeProto *n = oh_node("Transpose", 1, 1);
    oh_attr_ints(n, "perm", 2, (int64_t[]){0, 0});
    run_fail(n, 13, &in, 1, 1, "permutation");
}
END_TEST

START_TEST(concat_and_split)
{
    struct mq_tensor in[3] = {oh_iota_i64(2, OH_DIMS(2, 2)), oh_i64(2, OH_DIMS(2, 0), NULL),
                              oh_i64(2, OH_DIMS(2, 1), (int64_t[]){10, 11})};
    Onnx__NodeProto *n = oh_node("Concat", 3, 1);
    oh_attr_int(n, "axis", -1);
    struct mq_tensor o = oh_run1_take_all(n, 13, in, 3);
    check_i64(&o, 2, OH_DIMS(2, 3), (int64_t[]){0, 1, 10, 2, 3, 11});

    /* Concat-1 defaults the axis to 1 */
    in[0] = oh_iota_i64(2, OH_DIMS(1, 2));
    in[1] = oh_iota_i64(2, OH_DIMS(1, 2));
    o = oh_run1_take_all(oh_node("Concat", 2, 1), 1, in, 2);
    check_i64(&o, 2, OH_DIMS(1, 4), (int64_t[]){0, 1, 0, 1});

    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = oh_iota_i64(2, OH_DIMS(3, 2));
    n = oh_node("Concat", 2, 1);
    oh_attr_int(n, "axis", 1);
    run_fail(n, 13, in, 2, 1, "does not match");
    in[0] = oh_iota_i64(1, OH_DIMS(2));
    in[1] = oh_iota_f32(1, OH_DIMS(2));
    n = oh_node("Concat", 2, 1);
    oh_attr_int(n, "axis", 0);
    run_fail(n, 13, in, 2, 1, "float32");

    /* Split into sizes given as an input (13), an attribute (11), equal parts */
    struct mq_tensor out[3];
    in[0] = oh_iota_i64(2, OH_DIMS(2, 6));
    in[1] = ints(3, (int64_t[]){1, 0, 5});
    n = oh_node("Split", 2, 3);
    oh_attr_int(n, "axis", 1);
    oh_run_ok_take_all(n, 13, in, 2, out, 3);
    check_i64(&out[0], 2, OH_DIMS(2, 1), (int64_t[]){0, 6});
    check_i64(&out[1], 2, OH_DIMS(2, 0), NULL);
    check_i64(&out[2], 2, OH_DIMS(2, 5), (int64_t[]){1, 2, 3, 4, 5, 7, 8, 9, 10, 11});

    in[0] = oh_iota_i64(1, OH_DIMS(6));
    n = oh_node("Split", 1, 2);
    oh_attr_ints(n, "split", 2, (int64_t[]){4, 2});
    oh_run_ok_take_all(n, 11, in, 1, out, 2);
    check_i64(&out[0], 1, OH_DIMS(4), (int64_t[]){0, 1, 2, 3});
    check_i64(&out[1], 1, OH_DIMS(2), (int64_t[]){4, 5});

    in[0] = oh_iota_i64(2, OH_DIMS(6, 1));
    oh_run_ok_take_all(oh_node("Split", 1, 3), 13, in, 1, out, 3);
    check_i64(&out[2], 2, OH_DIMS(2, 1), (int64_t[]){4, 5});
    mq_tensor_free(&out[0]);
    mq_tensor_free(&out[1]);

    /* Split-18 num_outputs: the last chunk is the smaller one */
    in[0] = oh_iota_i64(1, OH_DIMS(7));
    n = oh_node("Split", 1, 3);
    oh_attr_int(n, "num_outputs", 3);
    oh_run_ok_take_all(n, 18, in, 1, out, 3);
    check_i64(&out[0], 1, OH_DIMS(3), (int64_t[]){0, 1, 2});
    check_i64(&out[1], 1, OH_DIMS(3), (int64_t[]){3, 4, 5});
    check_i64(&out[2], 1, OH_DIMS(1), (int64_t[]){6});

    in[0] = oh_iota_i64(1, OH_DIMS(7));
    run_fail(oh_node("Split", 1, 3), 13, in, 1, 3, "3 equal parts");
    in[0] = oh_iota_i64(1, OH_DIMS(7));
    in[1] = ints(2, (int64_t[]){3, 3});
    run_fail(oh_node("Split", 2, 2), 13, in, 2, 2, "add up to 6");
}
END_TEST

START_TEST(slice_steps_and_clamping)
{
    /* x[:, ::-2, 3:0:-2] of arange(24).reshape(2,3,4) */
    struct mq_tensor in[5] = {oh_iota_i64(3, OH_DIMS(2, 3, 4)),
                              ints(2, (int64_t[]){-1, 3}),
                              ints(2, (int64_t[]){INT64_MIN, 0}),
                              ints(2, (int64_t[]){1, -1}),
                              ints(2, (int64_t[]){-2, -2})};
    struct mq_tensor o = oh_run1_take_all(oh_node("Slice", 5, 1), 13, in, 5);
    check_i64(&o, 3, OH_DIMS(2, 2, 2), (int64_t[]){11, 9, 3, 1, 23, 21, 15, 13});

    /* out-of-range starts/ends clamp; default axes and steps */
    in[0] = oh_iota_i64(3, OH_DIMS(2, 3, 4));
    in[1] = ints(3, (int64_t[]){-5, 1, 0});
    in[2] = ints(3, (int64_t[]){10, INT64_MAX, -1});
    o = oh_run1_take_all(oh_node("Slice", 3, 1), 13, in, 3);
    oh_assert_shape(&o, 3, OH_DIMS(2, 2, 3));
    ck_assert_int_eq(((int64_t *)o.data)[0], 4);
    ck_assert_int_eq(((int64_t *)o.data)[11], 22);
    mq_tensor_free(&o);

    /* start past the end: empty */
    in[0] = oh_iota_i64(1, OH_DIMS(4));
    in[1] = ints(1, (int64_t[]){7});
    in[2] = ints(1, (int64_t[]){9});
    o = oh_run1_take_all(oh_node("Slice", 3, 1), 13, in, 3);
    check_i64(&o, 1, OH_DIMS(0), NULL);

    /* Slice-1: attributes */
    in[0] = oh_iota_i64(2, OH_DIMS(3, 4));
    Onnx__NodeProto *n = oh_node("Slice", 1, 1);
    oh_attr_ints(n, "starts", 1, (int64_t[]){1});
    oh_attr_ints(n, "ends", 1, (int64_t[]){1000});
    oh_attr_ints(n, "axes", 1, (int64_t[]){1});
    o = oh_run1_take_all(n, 1, in, 1);
    check_i64(&o, 2, OH_DIMS(3, 3), (int64_t[]){1, 2, 3, 5, 6, 7, 9, 10, 11});

    in[0] = oh_iota_i64(1, OH_DIMS(4));
    in[1] = ints(1, (int64_t[]){0});
    in[2] = ints(1, (int64_t[]){4});
    in[3] = ints(1, (int64_t[]){0});
    in[4] = ints(1, (int64_t[]){0});
    run_fail(oh_node("Slice", 5, 1), 13, in, 5, 1, "step");
    in[0] = oh_iota_i64(1, OH_DIMS(4));
    in[1] = ints(1, (int64_t[]){0});
    in[2] = ints(2, (int64_t[]){4, 4});
    run_fail(oh_node("Slice", 3, 1), 13, in, 3, 1, "same length");
}
END_TEST

START_TEST(expand_and_tile)
{
    struct mq_tensor in[3] = {oh_iota_i64(2, OH_DIMS(3, 1)), ints(3, (int64_t[]){2, 1, 2})};
    struct mq_tensor o = oh_run1_take_all(oh_node("Expand", 2, 1), 13, in, 2);
    check_i64(&o, 3, OH_DIMS(2, 3, 2),
              (int64_t[]){0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2});
    /* the shape may be smaller than the input's: bidirectional broadcast */
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = ints(1, (int64_t[]){1});
    o = oh_run1_take_all(oh_node("Expand", 2, 1), 13, in, 2);
    check_i64(&o, 2, OH_DIMS(2, 3), (int64_t[]){0, 1, 2, 3, 4, 5});
    in[0] = oh_iota_i64(1, OH_DIMS(3));
    in[1] = ints(2, (int64_t[]){2, 4});
    run_fail(oh_node("Expand", 2, 1), 13, in, 2, 1, "cannot be broadcast");

    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = ints(2, (int64_t[]){2, 3});
    o = oh_run1_take_all(oh_node("Tile", 2, 1), 13, in, 2);
    check_i64(&o, 2, OH_DIMS(4, 6),
              (int64_t[]){0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3,
                          0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3});
    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = ints(2, (int64_t[]){0, 1});
    o = oh_run1_take_all(oh_node("Tile", 2, 1), 13, in, 2);
    check_i64(&o, 2, OH_DIMS(0, 2), NULL);
    /* Tile-1: (tiles, axis) scalars */
    in[0] = oh_iota_i64(2, OH_DIMS(1, 2));
    in[1] = oh_i64(0, NULL, (int64_t[]){3});
    in[2] = oh_i64(0, NULL, (int64_t[]){0});
    o = oh_run1_take_all(oh_node("Tile", 3, 1), 1, in, 3);
    check_i64(&o, 2, OH_DIMS(3, 2), (int64_t[]){0, 1, 0, 1, 0, 1});
    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = ints(1, (int64_t[]){2});
    run_fail(oh_node("Tile", 2, 1), 13, in, 2, 1, "rank 2");
}
END_TEST

static struct mq_tensor pad_run(const char *mode, const int64_t *pads, int n_pads, int opset)
{
    struct mq_tensor in[2] = {oh_iota_i64(2, OH_DIMS(2, 3)), ints(n_pads, pads)};
    Onnx__NodeProto *n = oh_node("Pad", 2, 1);
    oh_attr_string(n, "mode", mode);
    return oh_run1_take_all(n, opset, in, 2);
}

START_TEST(pad_modes)
{
    /* expected values: numpy.pad of arange(6).reshape(2,3) */
    struct mq_tensor o = pad_run("reflect", (int64_t[]){1, 2, 1, 2}, 4, 13);
    check_i64(&o, 2, OH_DIMS(4, 7),
              (int64_t[]){5, 4, 3, 4, 5, 4, 3, 2, 1, 0, 1, 2, 1, 0,
                          5, 4, 3, 4, 5, 4, 3, 2, 1, 0, 1, 2, 1, 0});
    /* reflect wider than the axis repeats the mirror */
    o = pad_run("reflect", (int64_t[]){0, 4, 0, 1}, 4, 13);
    check_i64(&o, 2, OH_DIMS(2, 8), (int64_t[]){0, 1, 2, 1, 0, 1, 2, 1, 3, 4, 5, 4, 3, 4, 5, 4});
    o = pad_run("edge", (int64_t[]){1, 1, 0, 2}, 4, 13);
    check_i64(&o, 2, OH_DIMS(3, 6),
              (int64_t[]){0, 0, 1, 2, 2, 2, 0, 0, 1, 2, 2, 2, 3, 3, 4, 5, 5, 5});
    o = pad_run("wrap", (int64_t[]){1, 2, 1, 3}, 4, 19);
    check_i64(&o, 2, OH_DIMS(4, 8),
              (int64_t[]){4, 5, 3, 4, 5, 3, 4, 5, 1, 2, 0, 1, 2, 0, 1, 2,
                          4, 5, 3, 4, 5, 3, 4, 5, 1, 2, 0, 1, 2, 0, 1, 2});
    /* wider than the axis: the torus keeps going (numpy.pad differs here) */
    o = pad_run("wrap", (int64_t[]){0, 4, 0, 4}, 4, 19);
    check_i64(&o, 2, OH_DIMS(2, 11), (int64_t[]){2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0,
                                                 5, 3, 4, 5, 3, 4, 5, 3, 4, 5, 3});
    /* negative pads crop */
    o = pad_run("constant", (int64_t[]){0, -1, 1, 0}, 4, 13);
    check_i64(&o, 2, OH_DIMS(3, 2), (int64_t[]){1, 2, 4, 5, 0, 0});

    /* constant value as an input (11+), with axes (18) */
    struct mq_tensor in[4] = {oh_iota_f32(2, OH_DIMS(2, 2)), ints(2, (int64_t[]){1, 2}),
                              oh_f32(0, NULL, (float[]){-1.5f}), ints(1, (int64_t[]){-1})};
    o = oh_run1_take_all(oh_node("Pad", 4, 1), 18, in, 4);
    oh_assert_f32(&o, 2, OH_DIMS(2, 5),
                  (float[]){-1.5f, 0, 1, -1.5f, -1.5f, -1.5f, 2, 3, -1.5f, -1.5f}, 0, 0);
    mq_tensor_free(&o);

    /* Pad-2: pads and value are attributes */
    in[0] = oh_iota_i64(1, OH_DIMS(2));
    Onnx__NodeProto *n = oh_node("Pad", 1, 1);
    oh_attr_ints(n, "pads", 2, (int64_t[]){1, 1});
    oh_attr_float(n, "value", 7.0f);
    o = oh_run1_take_all(n, 2, in, 1);
    check_i64(&o, 1, OH_DIMS(4), (int64_t[]){7, 0, 1, 7});

    o = pad_run("constant", (int64_t[]){0, -3, 0, 0}, 4, 13);
    check_i64(&o, 2, OH_DIMS(2, 0), NULL);
    in[0] = oh_iota_i64(1, OH_DIMS(2));
    in[1] = ints(2, (int64_t[]){-2, -1});
    run_fail(oh_node("Pad", 2, 1), 13, in, 2, 1, "negative");
    in[0] = oh_iota_i64(1, OH_DIMS(2));
    in[1] = ints(1, (int64_t[]){1});
    run_fail(oh_node("Pad", 2, 1), 13, in, 2, 1, "expected 2");
    in[0] = oh_i64(1, OH_DIMS(0), NULL);
    in[1] = ints(2, (int64_t[]){1, 1});
    n = oh_node("Pad", 2, 1);
    oh_attr_string(n, "mode", "edge");
    run_fail(n, 13, in, 2, 1, "empty axis");
}
END_TEST

START_TEST(depth_space)
{
    /* numpy: x = arange(16).reshape(1,8,1,2); DCR: reshape(1,2,2,2,1,2).transpose(0,3,4,1,5,2) */
    struct mq_tensor in = oh_iota_i64(4, OH_DIMS(1, 8, 1, 2));
    Onnx__NodeProto *n = oh_node("DepthToSpace", 1, 1);
    oh_attr_int(n, "blocksize", 2);
    struct mq_tensor o = oh_run1_take_all(n, 13, &in, 1);
    check_i64(&o, 4, OH_DIMS(1, 2, 2, 4),
              (int64_t[]){0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15});
    in = oh_iota_i64(4, OH_DIMS(1, 8, 1, 2));
    n = oh_node("DepthToSpace", 1, 1);
    oh_attr_int(n, "blocksize", 2);
    oh_attr_string(n, "mode", "CRD");
    o = oh_run1_take_all(n, 13, &in, 1);
    check_i64(&o, 4, OH_DIMS(1, 2, 2, 4),
              (int64_t[]){0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15});

    /* SpaceToDepth undoes DCR DepthToSpace */
    in = oh_iota_i64(4, OH_DIMS(2, 3, 4, 6));
    n = oh_node("SpaceToDepth", 1, 1);
    oh_attr_int(n, "blocksize", 2);
    struct mq_tensor mid = oh_run1_take_all(n, 13, &in, 1);
    oh_assert_shape(&mid, 4, OH_DIMS(2, 12, 2, 3));
    n = oh_node("DepthToSpace", 1, 1);
    oh_attr_int(n, "blocksize", 2);
    o = oh_run1_take_all(n, 13, &mid, 1);
    oh_assert_shape(&o, 4, OH_DIMS(2, 3, 4, 6));
    for (int64_t i = 0; i < o.count; i++)
        ck_assert_int_eq(((int64_t *)o.data)[i], i);
    mq_tensor_free(&o);

    in = oh_iota_i64(4, OH_DIMS(1, 6, 1, 1));
    n = oh_node("DepthToSpace", 1, 1);
    oh_attr_int(n, "blocksize", 2);
    run_fail(n, 13, &in, 1, 1, "divisible");
    in = oh_iota_i64(3, OH_DIMS(1, 4, 1));
    n = oh_node("SpaceToDepth", 1, 1);
    oh_attr_int(n, "blocksize", 2);
    run_fail(n, 13, &in, 1, 1, "rank 4");
}
END_TEST

START_TEST(shape_size_constants)
{
    struct mq_tensor in[3] = {oh_f32(4, OH_DIMS(2, 3, 0, 5), NULL)};
    struct mq_tensor o = oh_run1_take_all(oh_node("Shape", 1, 1), 13, in, 1);
    check_i64(&o, 1, OH_DIMS(4), (int64_t[]){2, 3, 0, 5});
    in[0] = oh_f32(4, OH_DIMS(2, 3, 0, 5), NULL);
    Onnx__NodeProto *n = oh_node("Shape", 1, 1);
    oh_attr_int(n, "start", -3);
    oh_attr_int(n, "end", 100);
    o = oh_run1_take_all(n, 15, in, 1);
    check_i64(&o, 1, OH_DIMS(3), (int64_t[]){3, 0, 5});
    in[0] = oh_f32(4, OH_DIMS(2, 3, 0, 5), NULL);
    n = oh_node("Shape", 1, 1);
    oh_attr_int(n, "start", 3);
    oh_attr_int(n, "end", 1);
    o = oh_run1_take_all(n, 15, in, 1);
    check_i64(&o, 1, OH_DIMS(0), NULL);

    in[0] = oh_f32(2, OH_DIMS(3, 5), NULL);
    o = oh_run1_take_all(oh_node("Size", 1, 1), 13, in, 1);
    check_i64(&o, 0, NULL, (int64_t[]){15});

    /* ConstantOfShape: default float 0; value's type; empty shape gives a scalar */
    in[0] = ints(2, (int64_t[]){2, 1});
    o = oh_run1_take_all(oh_node("ConstantOfShape", 1, 1), 9, in, 1);
    oh_assert_f32(&o, 2, OH_DIMS(2, 1), (float[]){0, 0}, 0, 0);
    mq_tensor_free(&o);
    struct mq_tensor v = oh_i32(1, OH_DIMS(1), (int32_t[]){-7});
    in[0] = ints(0, NULL);
    n = oh_node("ConstantOfShape", 1, 1);
    oh_attr_tensor(n, "value", &v);
    o = oh_run1_take_all(n, 9, in, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_INT32);
    check_i64(&o, 0, NULL, (int64_t[]){-7});
    in[0] = ints(1, (int64_t[]){-1});
    n = oh_node("ConstantOfShape", 1, 1);
    oh_attr_tensor(n, "value", &v);
    run_fail(n, 9, in, 1, 1, "negative");
    mq_tensor_free(&v);

    /* Constant: value tensor and the scalar/list attributes of opset 12 */
    v = oh_f32(2, OH_DIMS(1, 2), (float[]){1.5f, -2});
    n = oh_node("Constant", 0, 1);
    oh_attr_tensor(n, "value", &v);
    o = oh_run1_take_all(n, 11, in, 0);
    oh_assert_f32(&o, 2, OH_DIMS(1, 2), (float[]){1.5f, -2}, 0, 0);
    mq_tensor_free(&o);
    mq_tensor_free(&v);
    n = oh_node("Constant", 0, 1);
    oh_attr_ints(n, "value_ints", 3, (int64_t[]){4, 5, 6});
    o = oh_run1_take_all(n, 13, in, 0);
    check_i64(&o, 1, OH_DIMS(3), (int64_t[]){4, 5, 6});
    n = oh_node("Constant", 0, 1);
    oh_attr_float(n, "value_float", 0.25f);
    o = oh_run1_take_all(n, 13, in, 0);
    oh_assert_f32(&o, 0, NULL, (float[]){0.25f}, 0, 0);
    mq_tensor_free(&o);
    n = oh_node("Constant", 0, 1);
    oh_attr_string(n, "value_string", "hello");
    run_fail(n, 13, in, 0, 1, "not supported");
    n = oh_node("Constant", 0, 1);
    run_fail(n, 13, in, 0, 1, "needs one of");
}
END_TEST

START_TEST(range_identity_dropout)
{
    struct mq_tensor in[3] = {oh_i32(0, NULL, (int32_t[]){10}), oh_i32(0, NULL, (int32_t[]){4}),
                              oh_i32(0, NULL, (int32_t[]){-3})};
    struct mq_tensor o = oh_run1_take_all(oh_node("Range", 3, 1), 11, in, 3);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_INT32);
    check_i64(&o, 1, OH_DIMS(2), (int64_t[]){10, 7});
    in[0] = oh_f32(0, NULL, (float[]){1});
    in[1] = oh_f32(0, NULL, (float[]){2});
    in[2] = oh_f32(0, NULL, (float[]){0.3f});
    o = oh_run1_take_all(oh_node("Range", 3, 1), 11, in, 3);
    oh_assert_f32(&o, 1, OH_DIMS(4), (float[]){1, 1.3f, 1.6f, 1.9f}, 1e-6f, 1e-6f);
    mq_tensor_free(&o);
    in[0] = oh_i64(0, NULL, (int64_t[]){5});
    in[1] = oh_i64(0, NULL, (int64_t[]){1});
    in[2] = oh_i64(0, NULL, (int64_t[]){1});
    o = oh_run1_take_all(oh_node("Range", 3, 1), 11, in, 3);
    check_i64(&o, 1, OH_DIMS(0), NULL);
    in[0] = oh_i64(0, NULL, (int64_t[]){5});
    in[1] = oh_i64(0, NULL, (int64_t[]){1});
    in[2] = oh_i64(0, NULL, (int64_t[]){0});
    run_fail(oh_node("Range", 3, 1), 11, in, 3, 1, "non-zero");

    in[0] = oh_u8(1, OH_DIMS(3), (uint8_t[]){1, 2, 255});
    o = oh_run1_take_all(oh_node("Identity", 1, 1), 13, in, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_UINT8);
    check_i64(&o, 1, OH_DIMS(3), (int64_t[]){1, 2, 255});

    /* Dropout at inference: a copy and an all-true mask */
    struct mq_tensor out[2];
    in[0] = oh_iota_f32(2, OH_DIMS(2, 2));
    oh_run_ok_take_all(oh_node("Dropout", 1, 2), 13, in, 1, out, 2);
    oh_assert_f32(&out[0], 2, OH_DIMS(2, 2), (float[]){0, 1, 2, 3}, 0, 0);
    ck_assert_int_eq(out[1].dtype, MQ_DTYPE_BOOL);
    check_i64(&out[1], 2, OH_DIMS(2, 2), (int64_t[]){1, 1, 1, 1});
    mq_tensor_free(&out[0]);
    /* Dropout-7: the mask has the input's type */
    in[0] = oh_iota_f32(1, OH_DIMS(2));
    oh_run_ok_take_all(oh_node("Dropout", 1, 2), 7, in, 1, out, 2);
    oh_assert_f32(&out[1], 1, OH_DIMS(2), (float[]){1, 1}, 0, 0);
    mq_tensor_free(&out[0]);
    mq_tensor_free(&out[1]);
    /* training_mode with ratio 0 is still the identity; with a ratio it is refused */
    in[0] = oh_iota_f32(1, OH_DIMS(2));
    in[1] = oh_f32(0, NULL, (float[]){0});
    in[2] = oh_bool(0, NULL, (uint8_t[]){1});
    o = oh_run1_take_all(oh_node("Dropout", 3, 1), 13, in, 3);
    oh_assert_f32(&o, 1, OH_DIMS(2), (float[]){0, 1}, 0, 0);
    mq_tensor_free(&o);
    in[0] = oh_iota_f32(1, OH_DIMS(2));
    in[1] = oh_f32(0, NULL, (float[]){0.5f});
    in[2] = oh_bool(0, NULL, (uint8_t[]){1});
    run_fail(oh_node("Dropout", 3, 1), 13, in, 3, 1, "training_mode");
}
END_TEST

START_TEST(eyelike_trilu)
{
    struct mq_tensor in[2] = {oh_i32(2, OH_DIMS(3, 4), NULL)};
    Onnx__NodeProto *n = oh_node("EyeLike", 1, 1);
    oh_attr_int(n, "k", 1);
    oh_attr_int(n, "dtype", MQ_DTYPE_DOUBLE);
    struct mq_tensor o = oh_run1_take_all(n, 9, in, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_DOUBLE);
    check_i64(&o, 2, OH_DIMS(3, 4), (int64_t[]){0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
    in[0] = oh_i32(2, OH_DIMS(3, 2), NULL);
    n = oh_node("EyeLike", 1, 1);
    oh_attr_int(n, "k", -1);
    o = oh_run1_take_all(n, 9, in, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_INT32);
    check_i64(&o, 2, OH_DIMS(3, 2), (int64_t[]){0, 0, 1, 0, 0, 1});

    /* numpy.triu / tril of arange(1, 13).reshape(3, 4) */
    in[0] = oh_iota_i64(2, OH_DIMS(3, 4));
    o = oh_run1_take_all(oh_node("Trilu", 1, 1), 14, in, 1);
    check_i64(&o, 2, OH_DIMS(3, 4), (int64_t[]){0, 1, 2, 3, 0, 5, 6, 7, 0, 0, 10, 11});
    in[0] = oh_iota_i64(3, OH_DIMS(2, 3, 4));
    in[1] = oh_i64(0, NULL, (int64_t[]){-1});
    n = oh_node("Trilu", 2, 1);
    oh_attr_int(n, "upper", 0);
    o = oh_run1_take_all(n, 14, in, 2);
    check_i64(&o, 3, OH_DIMS(2, 3, 4),
              (int64_t[]){0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0,
                          0, 0, 0, 0, 16, 0, 0, 0, 20, 21, 0, 0});
    in[0] = oh_iota_i64(2, OH_DIMS(2, 2));
    in[1] = oh_i64(0, NULL, (int64_t[]){INT64_MIN});
    o = oh_run1_take_all(oh_node("Trilu", 2, 1), 14, in, 2);
    check_i64(&o, 2, OH_DIMS(2, 2), (int64_t[]){0, 1, 2, 3});
}
END_TEST

START_TEST(nonzero_compress_onehot)
{
    struct mq_tensor in[3] = {oh_f32(2, OH_DIMS(2, 3), (float[]){0, 1.5f, -0.0f, NAN, 0, 2})};
    struct mq_tensor o = oh_run1_take_all(oh_node("NonZero", 1, 1), 13, in, 1);
    check_i64(&o, 2, OH_DIMS(2, 3), (int64_t[]){0, 1, 1, 1, 0, 2});
    in[0] = oh_bool(1, OH_DIMS(0), NULL);
    o = oh_run1_take_all(oh_node("NonZero", 1, 1), 13, in, 1);
    check_i64(&o, 2, OH_DIMS(1, 0), NULL);

    /* numpy.compress: [0, 1, 1] along axis 1, and over the flattened input */
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_bool(1, OH_DIMS(3), (uint8_t[]){0, 1, 1});
    Onnx__NodeProto *n = oh_node("Compress", 2, 1);
    oh_attr_int(n, "axis", -1);
    o = oh_run1_take_all(n, 11, in, 2);
    check_i64(&o, 2, OH_DIMS(2, 2), (int64_t[]){1, 2, 4, 5});
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = oh_bool(1, OH_DIMS(5), (uint8_t[]){1, 0, 0, 0, 1});
    o = oh_run1_take_all(oh_node("Compress", 2, 1), 11, in, 2);
    check_i64(&o, 1, OH_DIMS(2), (int64_t[]){0, 4});
    in[0] = oh_iota_i64(1, OH_DIMS(2));
    in[1] = oh_bool(1, OH_DIMS(3), (uint8_t[]){0, 0, 1});
    run_fail(oh_node("Compress", 2, 1), 11, in, 2, 1, "selects index 2");

    /* OneHot with negative and out-of-range indices, axis 0 and the default -1 */
    in[0] = oh_i64(1, OH_DIMS(4), (int64_t[]){0, -1, 3, 5});
    in[1] = oh_f32(0, NULL, (float[]){4.7f});
    in[2] = oh_f32(1, OH_DIMS(2), (float[]){-1, 2});
    o = oh_run1_take_all(oh_node("OneHot", 3, 1), 11, in, 3);
    oh_assert_f32(&o, 2, OH_DIMS(4, 4),
                  (float[]){2, -1, -1, -1, -1, -1, -1, 2, -1, -1, -1, 2, -1, -1, -1, -1}, 0, 0);
    mq_tensor_free(&o);
    in[0] = oh_i32(1, OH_DIMS(2), (int32_t[]){1, 0});
    in[1] = oh_i64(1, OH_DIMS(1), (int64_t[]){3});
    in[2] = oh_i64(1, OH_DIMS(2), (int64_t[]){0, 1});
    n = oh_node("OneHot", 3, 1);
    oh_attr_int(n, "axis", 0);
    o = oh_run1_take_all(n, 11, in, 3);
    check_i64(&o, 2, OH_DIMS(3, 2), (int64_t[]){0, 1, 1, 0, 0, 0});
}
END_TEST

START_TEST(reverse_sequence)
{
    /* time-major [T=3, B=2, 2]; batch 0 reverses 3 steps, batch 1 two */
    struct mq_tensor in[2] = {oh_iota_i64(3, OH_DIMS(3, 2, 2)), ints(2, (int64_t[]){3, 2})};
    struct mq_tensor o = oh_run1_take_all(oh_node("ReverseSequence", 2, 1), 10, in, 2);
    check_i64(&o, 3, OH_DIMS(3, 2, 2), (int64_t[]){8, 9, 6, 7, 4, 5, 2, 3, 0, 1, 10, 11});
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = ints(2, (int64_t[]){1, 4});
    Onnx__NodeProto *n = oh_node("ReverseSequence", 2, 1);
    oh_attr_int(n, "batch_axis", 0);
    oh_attr_int(n, "time_axis", 1);
    run_fail(n, 10, in, 2, 1, "outside [0, 3]");
    in[0] = oh_iota_i64(2, OH_DIMS(2, 3));
    in[1] = ints(2, (int64_t[]){1, 1});
    n = oh_node("ReverseSequence", 2, 1);
    oh_attr_int(n, "batch_axis", 0);
    run_fail(n, 10, in, 2, 1, "0 and 1 in some order");
}
END_TEST

START_TEST(half_types_move_as_bytes)
{
    struct mq_tensor in[1] = {oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 2),
                                       (uint16_t[]){0x3c00, 0x4000, 0x4200, 0x4400})};
    Onnx__NodeProto *n = oh_node("Transpose", 1, 1);
    struct mq_tensor o = oh_run1_take_all(n, 13, in, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_FLOAT16);
    const uint16_t *h = o.data;
    ck_assert(h[0] == 0x3c00 && h[1] == 0x4200 && h[2] == 0x4000 && h[3] == 0x4400);
    mq_tensor_free(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_shape");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reshape_zero_and_minus_one);
    tcase_add_test(tc, reshape_errors);
    tcase_add_test(tc, flatten_squeeze_unsqueeze);
    tcase_add_test(tc, transpose_permutations);
    tcase_add_test(tc, concat_and_split);
    tcase_add_test(tc, slice_steps_and_clamping);
    tcase_add_test(tc, expand_and_tile);
    tcase_add_test(tc, pad_modes);
    tcase_add_test(tc, depth_space);
    tcase_add_test(tc, shape_size_constants);
    tcase_add_test(tc, range_identity_dropout);
    tcase_add_test(tc, eyelike_trilu);
    tcase_add_test(tc, nonzero_compress_onehot);
    tcase_add_test(tc, reverse_sequence);
    tcase_add_test(tc, half_types_move_as_bytes);
    return mq_check_run(s, tc);
}
