/* Element-wise binary, variadic and selection operators (src/interp/ops/elementwise.c). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "interp/broadcast.h"
#include "op_harness.h"

/* One binary op on two float tensors. */
static struct mq_tensor binary_f32(const char *op, int opset, struct mq_tensor a,
                                   struct mq_tensor b)
{
    Onnx__NodeProto *n = oh_node(op, 2, 1);
    struct mq_tensor in[2] = {a, b}, out = {0};
    oh_run_ok(n, opset, in, 2, &out, 1);
    oh_free_all(in, 2);
    oh_node_free(n);
    return out;
}

START_TEST(broadcast_shape_and_strides)
{
    struct mq_error err;
    struct mq_tensor a = {.dtype = MQ_DTYPE_FLOAT, .rank = 4, .dims = {2, 1, 4, 1}};
    struct mq_tensor b = {.dtype = MQ_DTYPE_FLOAT, .rank = 3, .dims = {3, 1, 1}};
    struct mq_tensor c = {.dtype = MQ_DTYPE_FLOAT, .rank = 0};
    struct mq_tensor h = {.dtype = MQ_DTYPE_FLOAT, .rank = 2, .dims = {3, 1}};
    const struct mq_tensor *in[3] = {&a, &b, &c};
    int rank;
    int64_t dims[MQ_MAX_RANK], strides[MQ_MAX_RANK];
    ck_assert_int_eq(mq_broadcast_shape(3, in, &rank, dims, "n", &err), 0);
    ck_assert_int_eq(rank, 4);
    ck_assert(dims[0] == 2 && dims[1] == 3 && dims[2] == 4 && dims[3] == 1);
    /* [3,1] against [2,1,4,1]: axis 2 is 4 vs 3. */
    const struct mq_tensor *ah[2] = {&a, &h};
    ck_assert_int_ne(mq_broadcast_shape(2, ah, &rank, dims, "node 'x' (Add)", &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "node 'x' (Add)"));
    ck_assert_ptr_nonnull(strstr(err.message, "[2,1,4,1]"));
    ck_assert_ptr_nonnull(strstr(err.message, "[3,1]"));

    struct mq_tensor d = {.dtype = MQ_DTYPE_FLOAT, .rank = 2, .dims = {4, 1}};
    const int64_t out_dims[4] = {2, 3, 4, 5};
    mq_broadcast_strides(&d, 4, out_dims, strides);
    ck_assert(strides[0] == 0 && strides[1] == 0 && strides[2] == 1 && strides[3] == 0);
    mq_broadcast_strides(&c, 4, out_dims, strides);
    ck_assert(strides[0] == 0 && strides[3] == 0);

    /* 0 broadcasts with 1 but not with 3. */
    struct mq_tensor e = {.dtype = MQ_DTYPE_FLOAT, .rank = 2, .dims = {0, 3}};
    struct mq_tensor f = {.dtype = MQ_DTYPE_FLOAT, .rank = 1, .dims = {1}};
    const struct mq_tensor *ef[2] = {&e, &f};
    ck_assert_int_eq(mq_broadcast_shape(2, ef, &rank, dims, "n", &err), 0);
    ck_assert(rank == 2 && dims[0] == 0 && dims[1] == 3);
    struct mq_tensor g = {.dtype = MQ_DTYPE_FLOAT, .rank = 2, .dims = {3, 3}};
    const struct mq_tensor *eg[2] = {&e, &g};
    ck_assert_int_ne(mq_broadcast_shape(2, eg, &rank, dims, "n", &err), 0);
}
END_TEST

START_TEST(add_same_shape_and_scalars)
{
    struct mq_tensor o = binary_f32("Add", 14, oh_f32(2, OH_DIMS(2, 2), (float[]){1, 2, 3, 4}),
                                    oh_f32(2, OH_DIMS(2, 2), (float[]){10, 20, 30, 40}));
    oh_assert_f32(&o, 2, OH_DIMS(2, 2), (float[]){11, 22, 33, 44}, 0, 0);
    mq_tensor_free(&o);
    /* scalar on the left, then on the right */
    o = binary_f32("Sub", 14, oh_f32(0, NULL, (float[]){10}),
                   oh_f32(1, OH_DIMS(3), (float[]){1, 2, 3}));
    oh_assert_f32(&o, 1, OH_DIMS(3), (float[]){9, 8, 7}, 0, 0);
    mq_tensor_free(&o);
    o = binary_f32("Div", 7, oh_f32(1, OH_DIMS(3), (float[]){1, 2, 3}),
                   oh_f32(1, OH_DIMS(1), (float[]){4}));
    oh_assert_f32(&o, 1, OH_DIMS(3), (float[]){0.25f, 0.5f, 0.75f}, 0, 0);
    mq_tensor_free(&o);
}
END_TEST

START_TEST(add_bias_per_channel)
{
    float x[2 * 3 * 2 * 2], expected[24];
    for (int i = 0; i < 24; i++) {
        x[i] = (float)i;
        expected[i] = (float)i + 10.0f * (float)((i / 4) % 3 + 1);
    }
    struct mq_tensor o = binary_f32("Add", 13, oh_f32(4, OH_DIMS(2, 3, 2, 2), x),
                                    oh_f32(3, OH_DIMS(3, 1, 1), (float[]){10, 20, 30}));
    oh_assert_f32(&o, 4, OH_DIMS(2, 3, 2, 2), expected, 0, 0);
    mq_tensor_free(&o);
    /* bias on the left: Mul is commutative, so the same formula with * */
    for (int i = 0; i < 24; i++)
        expected[i] = (float)i * (float)((i / 4) % 3 + 1);
    o = binary_f32("Mul", 13, oh_f32(4, OH_DIMS(1, 3, 1, 1), (float[]){1, 2, 3}),
                   oh_f32(4, OH_DIMS(2, 3, 2, 2), x));
    oh_assert_f32(&o, 4, OH_DIMS(2, 3, 2, 2), expected, 0, 0);
    mq_tensor_free(&o);
}
END_TEST

START_TEST(general_two_sided_broadcast)
{
    /* [2,1,3] + [4,1] -> [2,4,3]: out[i,j,k] = a[i,k] + b[j] */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {100, 200, 300, 400}, expected[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++)
                expected[(i * 4 + j) * 3 + k] = a[i * 3 + k] + b[j];
    struct mq_tensor o = binary_f32("Add", 14, oh_f32(3, OH_DIMS(2, 1, 3), a),
                                    oh_f32(2, OH_DIMS(4, 1), b));
    oh_assert_f32(&o, 3, OH_DIMS(2, 4, 3), expected, 0, 0);
    mq_tensor_free(&o);
    /* outer product [3,1] * [1,4] */
    o = binary_f32("Mul", 14, oh_f32(2, OH_DIMS(3, 1), (float[]){1, 2, 3}),
                   oh_f32(2, OH_DIMS(1, 4), (float[]){1, 10, 100, 1000}));
    oh_assert_f32(&o, 2, OH_DIMS(3, 4),
                  (float[]){1, 10, 100, 1000, 2, 20, 200, 2000, 3, 30, 300, 3000}, 0, 0);
    mq_tensor_free(&o);
}
END_TEST

START_TEST(empty_tensors)
{
    struct mq_tensor o = binary_f32("Add", 14, oh_f32(2, OH_DIMS(0, 3), NULL),
                                    oh_f32(1, OH_DIMS(3), (float[]){1, 2, 3}));
    oh_assert_shape(&o, 2, OH_DIMS(0, 3));
    ck_assert_int_eq(o.count, 0);
    mq_tensor_free(&o);
    o = binary_f32("Max", 13, oh_f32(1, OH_DIMS(0), NULL), oh_f32(1, OH_DIMS(1), (float[]){1}));
    oh_assert_shape(&o, 1, OH_DIMS(0));
    mq_tensor_free(&o);
}
END_TEST

START_TEST(integer_division_truncates_and_never_traps)
{
    Onnx__NodeProto *n = oh_node("Div", 2, 1);
    struct mq_tensor in[2] = {
        oh_i32(1, OH_DIMS(6), (int32_t[]){7, -7, 7, -7, INT32_MIN, 5}),
        oh_i32(1, OH_DIMS(6), (int32_t[]){2, 2, -2, -2, -1, 0}),
    };
    struct mq_tensor o = {0};
    oh_run_ok(n, 14, in, 2, &o, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&o, 1, OH_DIMS(6), (int64_t[]){3, -3, -3, 3, INT32_MIN, 0});
    oh_free_all(in, 2);
    mq_tensor_free(&o);
    oh_node_free(n);

    n = oh_node("Add", 2, 1);
    struct mq_tensor u[2] = {oh_u8(1, OH_DIMS(2), (uint8_t[]){250, 3}),
                             oh_u8(0, NULL, (uint8_t[]){10})};
    oh_run_ok(n, 14, u, 2, &o, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_UINT8);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){4, 13});
    oh_free_all(u, 2);
    mq_tensor_free(&o);
    oh_node_free(n);
}
END_TEST

START_TEST(mod_sign_rules)
{
    const int64_t a[6] = {-4, 7, 5, 4, -7, 8}, b[6] = {2, -3, 8, -2, 3, 5};
    Onnx__NodeProto *n = oh_node("Mod", 2, 1);
    struct mq_tensor in[2] = {oh_i64(1, OH_DIMS(6), a), oh_i64(1, OH_DIMS(6), b)};
    struct mq_tensor o = {0};
    oh_run_ok(n, 13, in, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(6), (int64_t[]){0, -2, 5, 0, 2, 3});
    mq_tensor_free(&o);
    oh_node_free(n);

    n = oh_node("Mod", 2, 1);
    oh_attr_int(n, "fmod", 1);
    oh_run_ok(n, 13, in, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(6), (int64_t[]){0, 1, 5, 0, -1, 3});
    mq_tensor_free(&o);
    oh_free_all(in, 2);

    struct mq_tensor f[2] = {
        oh_f32(1, OH_DIMS(6), (float[]){-4.3f, 7.2f, 5.0f, 4.3f, -7.2f, 8.0f}),
        oh_f32(1, OH_DIMS(6), (float[]){2.1f, -3.4f, 8.0f, -2.1f, 3.4f, 5.0f}),
    };
    oh_run_ok(n, 13, f, 2, &o, 1);
    oh_assert_f32(&o, 1, OH_DIMS(6), (float[]){-0.1f, 0.4f, 5.0f, 0.1f, -0.4f, 3.0f}, 1e-5f, 0);
    mq_tensor_free(&o);
    oh_node_free(n);

    n = oh_node("Mod", 2, 1);
    oh_run_ok(n, 13, f, 2, &o, 1);
    oh_assert_f32(&o, 1, OH_DIMS(6), (float[]){2.0f, -3.0f, 5.0f, -2.0f, 3.0f, 3.0f}, 1e-5f, 0);
    mq_tensor_free(&o);
    oh_free_all(f, 2);
    oh_node_free(n);

    struct mq_error err;
    n = oh_node("Mod", 2, 1);
    oh_attr_int(n, "fmod", 2);
    struct mq_tensor g[2] = {oh_i64(1, OH_DIMS(1), a), oh_i64(1, OH_DIMS(1), b)};
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 13, g, 2, 1, &err), "fmod"));
    oh_free_all(g, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(pow_mixed_types)
{
    Onnx__NodeProto *n = oh_node("Pow", 2, 1);
    struct mq_tensor in[2] = {oh_i32(1, OH_DIMS(4), (int32_t[]){2, 3, -2, 5}),
                              oh_f32(1, OH_DIMS(4), (float[]){0.5f, 2, 3, -1})};
    struct mq_tensor o = {0};
    oh_run_ok(n, 15, in, 2, &o, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&o, 1, OH_DIMS(4), (int64_t[]){1, 9, -8, 0});
    oh_free_all(in, 2);
    mq_tensor_free(&o);

    struct mq_tensor fi[2] = {oh_f32(1, OH_DIMS(3), (float[]){2, -3, 4}),
                              oh_i64(0, NULL, (int64_t[]){2})};
    oh_run_ok(n, 15, fi, 2, &o, 1);
    oh_assert_f32(&o, 1, OH_DIMS(3), (float[]){4, 9, 16}, 0, 0);
    oh_free_all(fi, 2);
    mq_tensor_free(&o);

    struct mq_tensor ii[2] = {oh_i64(1, OH_DIMS(3), (int64_t[]){3, -2, 10}),
                              oh_i64(1, OH_DIMS(3), (int64_t[]){39, 5, 18})};
    oh_run_ok(n, 15, ii, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){4052555153018976267LL, -32,
                                                 1000000000000000000LL});
    oh_free_all(ii, 2);
    mq_tensor_free(&o);

    struct mq_tensor ff[2] = {oh_f32(1, OH_DIMS(2), (float[]){4, 2}),
                              oh_f32(1, OH_DIMS(2), (float[]){0.5f, -1})};
    oh_run_ok(n, 7, ff, 2, &o, 1);
    oh_assert_f32(&o, 1, OH_DIMS(2), (float[]){2, 0.5f}, 0, 0);
    oh_free_all(ff, 2);
    mq_tensor_free(&o);
    oh_node_free(n);
}
END_TEST

START_TEST(bitshift_directions)
{
    Onnx__NodeProto *n = oh_node("BitShift", 2, 1);
    oh_attr_string(n, "direction", "LEFT");
    struct mq_tensor in[2] = {oh_u8(1, OH_DIMS(4), (uint8_t[]){1, 3, 255, 7}),
                              oh_u8(1, OH_DIMS(4), (uint8_t[]){1, 2, 1, 8})};
    struct mq_tensor o = {0};
    oh_run_ok(n, 11, in, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(4), (int64_t[]){2, 12, 254, 0});
    mq_tensor_free(&o);
    oh_node_free(n);

    n = oh_node("BitShift", 2, 1);
    oh_attr_string(n, "direction", "RIGHT");
    oh_run_ok(n, 11, in, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(4), (int64_t[]){0, 0, 127, 0});
    mq_tensor_free(&o);
    oh_node_free(n);

    struct mq_error err;
    n = oh_node("BitShift", 2, 1);
    oh_attr_string(n, "direction", "UP");
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 11, in, 2, 1, &err), "direction"));
    oh_node_free(n);
    n = oh_node("BitShift", 2, 1);
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 11, in, 2, 1, &err), "direction"));
    oh_node_free(n);
    oh_free_all(in, 2);
}
END_TEST

START_TEST(logic_and_bitwise)
{
    const uint8_t a[4] = {0, 0, 1, 1};
    const char *ops[3] = {"And", "Or", "Xor"};
    /* [4] with [2,1] -> [2,4]: row 0 against false, row 1 against true */
    const int64_t expected[3][8] = {{0, 0, 0, 0, 0, 0, 1, 1},
                                    {0, 0, 1, 1, 1, 1, 1, 1},
                                    {0, 0, 1, 1, 1, 1, 0, 0}};
    for (int k = 0; k < 3; k++) {
        Onnx__NodeProto *n = oh_node(ops[k], 2, 1);
        struct mq_tensor in[2] = {oh_bool(1, OH_DIMS(4), a),
                                  oh_bool(2, OH_DIMS(2, 1), (uint8_t[]){0, 1})};
        struct mq_tensor o = {0};
        oh_run_ok(n, 7, in, 2, &o, 1);
        ck_assert_int_eq(o.dtype, MQ_DTYPE_BOOL);
        oh_assert_i64(&o, 2, OH_DIMS(2, 4), expected[k]);
        oh_free_all(in, 2);
        mq_tensor_free(&o);
        oh_node_free(n);
    }
    Onnx__NodeProto *n = oh_node("Not", 1, 1);
    struct mq_tensor b = oh_bool(1, OH_DIMS(4), a), o = {0};
    oh_run_ok(n, 1, &b, 1, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(4), (int64_t[]){1, 1, 0, 0});
    mq_tensor_free(&o);
    mq_tensor_free(&b);
    oh_node_free(n);

    struct mq_tensor in[2] = {oh_i32(1, OH_DIMS(3), (int32_t[]){12, -1, 5}),
                              oh_i32(0, NULL, (int32_t[]){10})};
    const char *bops[3] = {"BitwiseAnd", "BitwiseOr", "BitwiseXor"};
    const int64_t bexp[3][3] = {{8, 10, 0}, {14, -1, 15}, {6, -11, 15}};
    for (int k = 0; k < 3; k++) {
        n = oh_node(bops[k], 2, 1);
        oh_run_ok(n, 18, in, 2, &o, 1);
        ck_assert_int_eq(o.dtype, MQ_DTYPE_INT32);
        oh_assert_i64(&o, 1, OH_DIMS(3), bexp[k]);
        mq_tensor_free(&o);
        oh_node_free(n);
    }
    n = oh_node("BitwiseNot", 1, 1);
    oh_run_ok(n, 18, in, 1, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){-13, 0, -6});
    mq_tensor_free(&o);
    oh_node_free(n);
    oh_free_all(in, 2);

    struct mq_error err;
    n = oh_node("And", 2, 1);
    struct mq_tensor f[2] = {oh_f32(1, OH_DIMS(1), (float[]){1}),
                             oh_f32(1, OH_DIMS(1), (float[]){1})};
    const char *msg = oh_run_fails(n, 7, f, 2, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "node_under_test"));
    ck_assert_ptr_nonnull(strstr(msg, "float32"));
    oh_free_all(f, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(comparisons)
{
    struct mq_tensor in[2] = {oh_i64(2, OH_DIMS(2, 3), (int64_t[]){1, 2, 3, 4, 5, 6}),
                              oh_i64(1, OH_DIMS(3), (int64_t[]){2, 2, 7})};
    const char *ops[5] = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
    const int64_t expected[5][6] = {{0, 1, 0, 0, 0, 0}, {1, 0, 1, 0, 0, 1}, {1, 1, 1, 0, 0, 1},
                                    {0, 0, 0, 1, 1, 0}, {0, 1, 0, 1, 1, 0}};
    for (int k = 0; k < 5; k++) {
        Onnx__NodeProto *n = oh_node(ops[k], 2, 1);
        struct mq_tensor o = {0};
        oh_run_ok(n, 16, in, 2, &o, 1);
        ck_assert_int_eq(o.dtype, MQ_DTYPE_BOOL);
        oh_assert_i64(&o, 2, OH_DIMS(2, 3), expected[k]);
        mq_tensor_free(&o);
        oh_node_free(n);
    }
    oh_free_all(in, 2);

    /* NaN compares false, even to itself */
    Onnx__NodeProto *n = oh_node("Equal", 2, 1);
    struct mq_tensor f[2] = {oh_f32(1, OH_DIMS(3), (float[]){NAN, 1, 2}),
                             oh_f32(1, OH_DIMS(3), (float[]){NAN, 1, 3})};
    struct mq_tensor o = {0};
    oh_run_ok(n, 13, f, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){0, 1, 0});
    mq_tensor_free(&o);
    oh_free_all(f, 2);
    struct mq_tensor b[2] = {oh_bool(1, OH_DIMS(2), (uint8_t[]){1, 0}),
                             oh_bool(1, OH_DIMS(2), (uint8_t[]){1, 1})};
    oh_run_ok(n, 13, b, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){1, 0});
    mq_tensor_free(&o);
    oh_free_all(b, 2);

    struct mq_error err;
    struct mq_tensor mixed[2] = {oh_f32(1, OH_DIMS(1), (float[]){1}),
                                 oh_i64(1, OH_DIMS(1), (int64_t[]){1})};
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 13, mixed, 2, 1, &err), "int64"));
    oh_free_all(mixed, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(where_three_way_broadcast)
{
    Onnx__NodeProto *n = oh_node("Where", 3, 1);
    struct mq_tensor in[3] = {oh_bool(2, OH_DIMS(2, 1), (uint8_t[]){1, 0}),
                              oh_f32(2, OH_DIMS(1, 3), (float[]){1, 2, 3}),
                              oh_f32(0, NULL, (float[]){-1})};
    struct mq_tensor o = {0};
    oh_run_ok(n, 16, in, 3, &o, 1);
    oh_assert_f32(&o, 2, OH_DIMS(2, 3), (float[]){1, 2, 3, -1, -1, -1}, 0, 0);
    mq_tensor_free(&o);
    oh_free_all(in, 3);

    /* the condition varying along the last axis, int64 values */
    struct mq_tensor j[3] = {oh_bool(1, OH_DIMS(3), (uint8_t[]){1, 0, 1}),
                             oh_i64(2, OH_DIMS(2, 3), (int64_t[]){1, 2, 3, 4, 5, 6}),
                             oh_i64(2, OH_DIMS(2, 1), (int64_t[]){-7, -8})};
    oh_run_ok(n, 9, j, 3, &o, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_INT64);
    oh_assert_i64(&o, 2, OH_DIMS(2, 3), (int64_t[]){1, -7, 3, 4, -8, 6});
    mq_tensor_free(&o);
    oh_free_all(j, 3);

    struct mq_error err;
    struct mq_tensor bad[3] = {oh_f32(1, OH_DIMS(1), (float[]){1}),
                               oh_f32(1, OH_DIMS(1), (float[]){1}),
                               oh_f32(1, OH_DIMS(1), (float[]){1})};
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 16, bad, 3, 1, &err), "bool"));
    oh_free_all(bad, 3);
    oh_node_free(n);
}
END_TEST

START_TEST(variadic_min_max_sum_mean)
{
    struct mq_tensor in[3] = {oh_f32(2, OH_DIMS(2, 2), (float[]){1, 5, NAN, -1}),
                              oh_f32(1, OH_DIMS(2), (float[]){3, 2}),
                              oh_f32(0, NULL, (float[]){4})};
    struct {
        const char *op;
        float expected[4];
    } cases[] = {
        {"Min", {1, 2, NAN, -1}},
        {"Max", {4, 5, NAN, 4}},
        {"Sum", {8, 11, NAN, 5}},
        {"Mean", {8 / 3.0f, 11 / 3.0f, NAN, 5 / 3.0f}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Onnx__NodeProto *n = oh_node(cases[k].op, 3, 1);
        struct mq_tensor o = {0};
        oh_run_ok(n, 13, in, 3, &o, 1);
        oh_assert_f32(&o, 2, OH_DIMS(2, 2), cases[k].expected, 1e-6f, 1e-6f);
        mq_tensor_free(&o);
        oh_node_free(n);
    }
    /* one input: a copy */
    Onnx__NodeProto *n = oh_node("Sum", 1, 1);
    struct mq_tensor o = {0};
    oh_run_ok(n, 8, in, 1, &o, 1);
    oh_assert_f32(&o, 2, OH_DIMS(2, 2), (float[]){1, 5, NAN, -1}, 0, 0);
    mq_tensor_free(&o);
    oh_node_free(n);
    oh_free_all(in, 3);

    /* integer Max from opset 12 */
    n = oh_node("Max", 2, 1);
    struct mq_tensor ii[2] = {oh_i32(1, OH_DIMS(3), (int32_t[]){-5, 7, 0}),
                              oh_i32(1, OH_DIMS(1), (int32_t[]){1})};
    oh_run_ok(n, 12, ii, 2, &o, 1);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){1, 7, 1});
    mq_tensor_free(&o);
    oh_node_free(n);
    struct mq_error err;
    n = oh_node("Mean", 2, 1);
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 13, ii, 2, 1, &err), "int32"));
    oh_node_free(n);
    oh_free_all(ii, 2);
}
END_TEST

START_TEST(prelu_slopes)
{
    float x[12], expected[12];
    for (int i = 0; i < 12; i++) {
        x[i] = (float)(i % 2 ? i : -i);
        expected[i] = x[i] < 0 ? x[i] * (float)(i / 4 + 1) / 10.0f : x[i];
    }
    Onnx__NodeProto *n = oh_node("PRelu", 2, 1);
    struct mq_tensor in[2] = {oh_f32(4, OH_DIMS(1, 3, 2, 2), x),
                              oh_f32(3, OH_DIMS(3, 1, 1), (float[]){0.1f, 0.2f, 0.3f})};
    struct mq_tensor o = {0};
    oh_run_ok(n, 16, in, 2, &o, 1);
    oh_assert_f32(&o, 4, OH_DIMS(1, 3, 2, 2), expected, 1e-6f, 1e-6f);
    mq_tensor_free(&o);
    oh_free_all(in, 2);

    /* opset 6: a 1-D slope is per channel */
    struct mq_tensor old[2] = {oh_f32(4, OH_DIMS(1, 3, 2, 2), x),
                               oh_f32(1, OH_DIMS(3), (float[]){0.1f, 0.2f, 0.3f})};
    oh_run_ok(n, 6, old, 2, &o, 1);
    oh_assert_f32(&o, 4, OH_DIMS(1, 3, 2, 2), expected, 1e-6f, 1e-6f);
    mq_tensor_free(&o);
    oh_free_all(old, 2);

    /* the slope may not grow X */
    struct mq_error err;
    struct mq_tensor bad[2] = {oh_f32(1, OH_DIMS(2), (float[]){-1, 1}),
                               oh_f32(2, OH_DIMS(3, 1), (float[]){1, 2, 3})};
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 16, bad, 2, 1, &err), "slope"));
    oh_free_all(bad, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(legacy_broadcast_axis)
{
    /* opset 6: B [3] aligned at axis 1 of A [2,3,2] */
    float a[12], expected[12];
    for (int i = 0; i < 12; i++) {
        a[i] = (float)i;
        expected[i] = (float)i + (float)((i / 2) % 3 + 1);
    }
    Onnx__NodeProto *n = oh_node("Add", 2, 1);
    oh_attr_int(n, "broadcast", 1);
    oh_attr_int(n, "axis", 1);
    struct mq_tensor in[2] = {oh_f32(3, OH_DIMS(2, 3, 2), a),
                              oh_f32(1, OH_DIMS(3), (float[]){1, 2, 3})};
    struct mq_tensor o = {0};
    oh_run_ok(n, 6, in, 2, &o, 1);
    oh_assert_f32(&o, 3, OH_DIMS(2, 3, 2), expected, 0, 0);
    mq_tensor_free(&o);
    oh_free_all(in, 2);
    oh_node_free(n);

    /* without axis, B lines up with A's trailing axes */
    n = oh_node("Mul", 2, 1);
    oh_attr_int(n, "broadcast", 1);
    struct mq_tensor t[2] = {oh_f32(2, OH_DIMS(2, 2), (float[]){1, 2, 3, 4}),
                             oh_f32(1, OH_DIMS(2), (float[]){10, 100})};
    oh_run_ok(n, 1, t, 2, &o, 1);
    oh_assert_f32(&o, 2, OH_DIMS(2, 2), (float[]){10, 200, 30, 400}, 0, 0);
    mq_tensor_free(&o);
    oh_free_all(t, 2);
    oh_node_free(n);

    struct mq_error err;
    n = oh_node("Sub", 2, 1);
    oh_attr_int(n, "broadcast", 1);
    oh_attr_int(n, "axis", 2);
    struct mq_tensor bad[2] = {oh_f32(2, OH_DIMS(2, 2), (float[]){1, 2, 3, 4}),
                               oh_f32(1, OH_DIMS(2), (float[]){10, 100})};
    ck_assert_ptr_nonnull(strstr(oh_run_fails(n, 6, bad, 2, 1, &err), "axis"));
    oh_free_all(bad, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(half_types_compute_in_float)
{
    uint16_t a[3], b[3], bf[3];
    const float av[3] = {1.5f, -2.0f, 1000.0f}, bv[3] = {0.25f, 3.0f, 24.0f};
    for (int i = 0; i < 3; i++) {
        a[i] = mq_float_to_half(av[i]);
        b[i] = mq_float_to_half(bv[i]);
        bf[i] = mq_float_to_bfloat16(av[i]);
    }
    Onnx__NodeProto *n = oh_node("Add", 2, 1);
    struct mq_tensor in[2] = {oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(3), a),
                              oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(3), b)};
    struct mq_tensor o = {0};
    oh_run_ok(n, 14, in, 2, &o, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_FLOAT16);
    const uint16_t *h = o.data;
    ck_assert(mq_half_to_float(h[0]) == 1.75f);
    ck_assert(mq_half_to_float(h[1]) == 1.0f);
    ck_assert(mq_half_to_float(h[2]) == 1024.0f);
    mq_tensor_free(&o);
    oh_node_free(n);

    n = oh_node("Less", 2, 1);
    oh_run_ok(n, 13, in, 2, &o, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_BOOL);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){0, 1, 0});
    mq_tensor_free(&o);
    oh_node_free(n);
    oh_free_all(in, 2);

    n = oh_node("Max", 2, 1);
    struct mq_tensor bin[2] = {oh_typed(MQ_DTYPE_BFLOAT16, 1, OH_DIMS(3), bf),
                               oh_typed(MQ_DTYPE_BFLOAT16, 0, NULL, (uint16_t[]){0x3f80})};
    oh_run_ok(n, 13, bin, 2, &o, 1);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_BFLOAT16);
    h = o.data;
    ck_assert(mq_bfloat16_to_float(h[0]) == 1.5f);
    ck_assert(mq_bfloat16_to_float(h[1]) == 1.0f);
    ck_assert(mq_bfloat16_to_float(h[2]) == 1000.0f);
    mq_tensor_free(&o);
    oh_free_all(bin, 2);
    oh_node_free(n);
}
END_TEST

START_TEST(errors_name_the_node)
{
    struct mq_error err;
    Onnx__NodeProto *n = oh_node("Add", 2, 1);
    struct mq_tensor in[2] = {oh_f32(1, OH_DIMS(3), (float[]){1, 2, 3}),
                              oh_f32(1, OH_DIMS(2), (float[]){1, 2})};
    const char *msg = oh_run_fails(n, 14, in, 2, 1, &err);
    ck_assert_ptr_nonnull(strstr(msg, "node 'node_under_test' (Add)"));
    ck_assert_ptr_nonnull(strstr(msg, "[3]"));
    oh_free_all(in, 2);
    oh_node_free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_elementwise");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, broadcast_shape_and_strides);
    tcase_add_test(tc, add_same_shape_and_scalars);
    tcase_add_test(tc, add_bias_per_channel);
    tcase_add_test(tc, general_two_sided_broadcast);
    tcase_add_test(tc, empty_tensors);
    tcase_add_test(tc, integer_division_truncates_and_never_traps);
    tcase_add_test(tc, mod_sign_rules);
    tcase_add_test(tc, pow_mixed_types);
    tcase_add_test(tc, bitshift_directions);
    tcase_add_test(tc, logic_and_bitwise);
    tcase_add_test(tc, comparisons);
    tcase_add_test(tc, where_three_way_broadcast);
    tcase_add_test(tc, variadic_min_max_sum_mean);
    tcase_add_test(tc, prelu_slopes);
    tcase_add_test(tc, legacy_broadcast_axis);
    tcase_add_test(tc, half_types_compute_in_float);
    tcase_add_test(tc, errors_name_the_node);
    return mq_check_run(s, tc);
}
