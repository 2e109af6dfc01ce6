/*
 * MatMul and Gemm (src/interp/ops/matmul.c): numpy's 1-D promotion and batch
 * broadcasting, Gemm's transposes, alpha/beta and the broadcast C, integer
 * wraparound, float16, empty operands and the errors.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"

static uint32_t rng_state = 777u;

static int run_op(const char *op, int opset, struct mq_tensor *in, int n_in, struct mq_tensor *out,
                  Onnx__NodeProto *node, struct mq_error *err)
{
    Onnx__NodeProto *own = node ? node : oh_node(op, n_in, 1);
    memset(out, 0, sizeof *out);
    int rc = oh_run(own, opset, in, n_in, out, 1, err);
    oh_node_free(own);
    return rc;
}

static struct mq_tensor must_run(const char *op, int opset, struct mq_tensor *in, int n_in,
                                 Onnx__NodeProto *node)
{
    struct mq_tensor out;
    struct mq_error err = {{0}};
    int rc = run_op(op, opset, in, n_in, &out, node, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    return out;
}

START_TEST(matmul_2d_and_1d_promotion)
{
    const float a[6] = {1, 2, 3, 4, 5, 6}; /* [2,3] */
    const float b[6] = {1, 0, 0, 1, 1, 1}; /* [3,2] */
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 3), a), oh_f32(2, OH_DIMS(3, 2), b)};
    struct mq_tensor y = must_run("MatMul", 13, in, 2, NULL);
    oh_assert_f32(&y, 2, OH_DIMS(2, 2), (const float[]){4, 5, 10, 11}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    /* [3] x [3,2] -> [2] */
    in[0] = oh_f32(1, OH_DIMS(3), (const float[]){1, 2, 3});
    in[1] = oh_f32(2, OH_DIMS(3, 2), b);
    y = must_run("MatMul", 9, in, 2, NULL);
    oh_assert_f32(&y, 1, OH_DIMS(2), (const float[]){4, 5}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    /* [2,3] x [3] -> [2] */
    in[0] = oh_f32(2, OH_DIMS(2, 3), a);
    in[1] = oh_f32(1, OH_DIMS(3), (const float[]){1, 1, 1});
    y = must_run("MatMul", 1, in, 2, NULL);
    oh_assert_f32(&y, 1, OH_DIMS(2), (const float[]){6, 15}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    /* [3] x [3] -> scalar */
    in[0] = oh_f32(1, OH_DIMS(3), (const float[]){1, 2, 3});
    in[1] = oh_f32(1, OH_DIMS(3), (const float[]){4, 5, 6});
    y = must_run("MatMul", 13, in, 2, NULL);
    oh_assert_f32(&y, 0, NULL, (const float[]){32}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    /* batched A with a 1-D B: [2,2,3] x [3] -> [2,2] */
    float a3[12];
    for (int i = 0; i < 12; i++)
        a3[i] = (float)i;
    in[0] = oh_f32(3, OH_DIMS(2, 2, 3), a3);
    in[1] = oh_f32(1, OH_DIMS(3), (const float[]){1, 0, -1});
    y = must_run("MatMul", 13, in, 2, NULL);
    oh_assert_f32(&y, 2, OH_DIMS(2, 2), (const float[]){-2, -2, -2, -2}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 2);
}
END_TEST

/* Reference batched product with numpy broadcasting, for shapes of rank 3 or 4. */
static void check_batched(int ra, const int64_t *da, int rb, const int64_t *db, int ry,
                          const int64_t *dy)
{
    struct mq_tensor in[2] = {oh_random_f32(&rng_state, ra, da), oh_random_f32(&rng_state, rb, db)};
    int64_t m = da[ra - 2], k = da[ra - 1], n = db[rb - 1];
    int64_t batch = 1;
    for (int i = 0; i < ry - 2; i++)
        batch *= dy[i];
    float *want = calloc((size_t)(batch * m * n), sizeof(float));
    for (int64_t t = 0; t < batch; t++) {
        /* decode t in the output batch shape, then index A and B with broadcasting */
        int64_t idx[4], rem = t, aoff = 0, boff = 0;
        for (int d = ry - 3; d >= 0; d--) {
            idx[d] = rem % dy[d];
            rem /= dy[d];
        }
        for (int d = 0; d < ry - 2; d++) {
            int ai = d - (ry - ra), bi = d - (ry - rb);
            if (ai >= 0)
                aoff = aoff * da[ai] + (da[ai] == 1 ? 0 : idx[d]);
            if (bi >= 0)
                boff = boff * db[bi] + (db[bi] == 1 ? 0 : idx[d]);
        }
        const float *pa = (const float *)in[0].data + aoff * m * k;
        const float *pb = (const float *)in[1].data + boff * k * n;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t p = 0; p < k; p++)
                    acc += (double)pa[i * k + p] * pb[p * n + j];
                want[(t * m + i) * n + j] = (float)acc;
            }
    }
    struct mq_tensor y = must_run("MatMul", 13, in, 2, NULL);
    oh_assert_f32(&y, ry, dy, want, 1e-5f, 1e-5f);
    mq_tensor_free(&y);
    oh_free_all(in, 2);
    free(want);
}

START_TEST(matmul_batch_broadcasting)
{
    check_batched(4, OH_DIMS(2, 1, 2, 3), 3, OH_DIMS(3, 3, 2), 4, OH_DIMS(2, 3, 2, 2));
    check_batched(3, OH_DIMS(4, 5, 6), 2, OH_DIMS(6, 3), 3, OH_DIMS(4, 5, 3));
    check_batched(2, OH_DIMS(5, 6), 3, OH_DIMS(4, 6, 3), 3, OH_DIMS(4, 5, 3));
    check_batched(3, OH_DIMS(1, 2, 3), 4, OH_DIMS(2, 1, 3, 4), 4, OH_DIMS(2, 1, 2, 4));
    check_batched(4, OH_DIMS(3, 1, 2, 2), 4, OH_DIMS(1, 1, 2, 5), 4, OH_DIMS(3, 1, 2, 5));
}
END_TEST

START_TEST(matmul_types)
{
    /* int32 wraps like numpy: 65536 * 65536 = 2^32 -> 0, plus 3 */
    struct mq_tensor in[2] = {oh_i32(2, OH_DIMS(1, 2), (const int32_t[]){65536, 1}),
                              oh_i32(2, OH_DIMS(2, 1), (const int32_t[]){65536, 3})};
    struct mq_tensor y = must_run("MatMul", 13, in, 2, NULL);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&y, 2, OH_DIMS(1, 1), (const int64_t[]){3});
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    const int64_t a64[4] = {-1, 2, 3, -4}, b64[4] = {5, 6, 7, 8};
    in[0] = oh_i64(2, OH_DIMS(2, 2), a64);
    in[1] = oh_i64(2, OH_DIMS(2, 2), b64);
    y = must_run("MatMul", 9, in, 2, NULL);
    oh_assert_i64(&y, 2, OH_DIMS(2, 2), (const int64_t[]){9, 10, -13, -14});
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    const uint32_t u[2] = {4000000000u, 2};
    in[0] = oh_typed(MQ_DTYPE_UINT32, 2, OH_DIMS(1, 1), u);
    in[1] = oh_typed(MQ_DTYPE_UINT32, 2, OH_DIMS(1, 1), u + 1);
    y = must_run("MatMul", 13, in, 2, NULL);
    ck_assert_uint_eq(((uint32_t *)y.data)[0], 4000000000u * 2u);
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    const double ad[4] = {1, 2, 3, 4};
    in[0] = oh_typed(MQ_DTYPE_DOUBLE, 2, OH_DIMS(2, 2), ad);
    in[1] = oh_typed(MQ_DTYPE_DOUBLE, 2, OH_DIMS(2, 2), ad);
    y = must_run("MatMul", 13, in, 2, NULL);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_DOUBLE);
    const double sq[4] = {7, 10, 15, 22};
    for (int i = 0; i < 4; i++)
        ck_assert(((double *)y.data)[i] == sq[i]);
    mq_tensor_free(&y);
    oh_free_all(in, 2);

    uint16_t h[4], bf[4];
    for (int i = 0; i < 4; i++) {
        h[i] = mq_float_to_half((float)ad[i]);
        bf[i] = mq_float_to_bfloat16((float)ad[i]);
    }
    in[0] = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 2), h);
    in[1] = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 2), h);
    y = must_run("MatMul", 13, in, 2, NULL);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT16);
    for (int i = 0; i < 4; i++)
        ck_assert(mq_half_to_float(((uint16_t *)y.data)[i]) == (float)sq[i]);
    mq_tensor_free(&y);
    oh_free_all(in, 2);
    in[0] = oh_typed(MQ_DTYPE_BFLOAT16, 2, OH_DIMS(2, 2), bf);
    in[1] = oh_typed(MQ_DTYPE_BFLOAT16, 2, OH_DIMS(2, 2), bf);
    y = must_run("MatMul", 13, in, 2, NULL);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_BFLOAT16);
    for (int i = 0; i < 4; i++)
        ck_assert(mq_bfloat16_to_float(((uint16_t *)y.data)[i]) == (float)sq[i]);
    mq_tensor_free(&y);
    oh_free_all(in, 2);
}
END_TEST

START_TEST(matmul_empty)
{
    /* K = 0: a zero-filled [2,3] */
    struct mq_tensor in[2] = {oh_f32(2, OH_DIMS(2, 0), NULL), oh_f32(2, OH_DIMS(0, 3), NULL)};
    struct mq_tensor y = must_run("MatMul", 13, in, 2, NULL);
    oh_assert_f32(&y, 2, OH_DIMS(2, 3), (const float[]){0, 0, 0, 0, 0, 0}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 2);
    /* an empty batch */
    in[0] = oh_f32(3, OH_DIMS(0, 2, 3), NULL);
    in[1] = oh_random_f32(&rng_state, 3, OH_DIMS(1, 3, 4));
    y = must_run("MatMul", 13, in, 2, NULL);
    oh_assert_shape(&y, 3, OH_DIMS(0, 2, 4));
    mq_tensor_free(&y);
    oh_free_all(in, 2);
}
END_TEST

static void expect_error(const char *op, int opset, struct mq_tensor *in, int n,
                         Onnx__NodeProto *node, const char *needle)
{
    struct mq_tensor y;
    struct mq_error err = {{0}};
    int rc = run_op(op, opset, in, n, &y, node, &err);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err.message, "node_under_test") && strstr(err.message, op) &&
                      strstr(err.message, needle),
                  "unexpected message: %s", err.message);
    mq_tensor_free(&y);
    oh_free_all(in, n);
}

START_TEST(matmul_errors)
{
    struct mq_tensor in[2] = {oh_random_f32(&rng_state, 2, OH_DIMS(2, 3)),
                              oh_random_f32(&rng_state, 2, OH_DIMS(4, 2))};
    expect_error("MatMul", 13, in, 2, NULL, "inner dimensions 3 and 4");
    in[0] = oh_random_f32(&rng_state, 3, OH_DIMS(2, 2, 3));
    in[1] = oh_random_f32(&rng_state, 3, OH_DIMS(3, 3, 2));
    expect_error("MatMul", 13, in, 2, NULL, "broadcast");
    in[0] = oh_u8(2, OH_DIMS(1, 1), (const uint8_t[]){1});
    in[1] = oh_u8(2, OH_DIMS(1, 1), (const uint8_t[]){1});
    expect_error("MatMul", 13, in, 2, NULL, "uint8");
    in[0] = oh_random_f32(&rng_state, 0, NULL);
    in[1] = oh_random_f32(&rng_state, 1, OH_DIMS(1));
    expect_error("MatMul", 13, in, 2, NULL, "rank");
    in[0] = oh_random_f32(&rng_state, 2, OH_DIMS(1, 1));
    in[1] = oh_typed(MQ_DTYPE_DOUBLE, 2, OH_DIMS(1, 1), NULL);
    expect_error("MatMul", 13, in, 2, NULL, "float64");
}
END_TEST

/* ---- Gemm -------------------------------------------------------------------------------- */

static Onnx__NodeProto *gemm_node(int n_in, int ta, int tb, float alpha, float beta)
{
    Onnx__NodeProto *node = oh_node("Gemm", n_in, 1);
    if (ta)
        oh_attr_int(node, "transA", 1);
    if (tb)
        oh_attr_int(node, "transB", 1);
    if (alpha != 1.0f)
        oh_attr_float(node, "alpha", alpha);
    if (beta != 1.0f)
        oh_attr_float(node, "beta", beta);
    return node;
}

/* Gemm against the definition for a given C shape (c_rank < 0: no C). */
static void check_gemm(int opset, int64_t m, int64_t k, int64_t n, int ta, int tb, float alpha,
                       float beta, int c_rank, const int64_t *c_dims)
{
    struct mq_tensor in[3];
    in[0] = ta ? oh_random_f32(&rng_state, 2, OH_DIMS(k, m))
               : oh_random_f32(&rng_state, 2, OH_DIMS(m, k));
    in[1] = tb ? oh_random_f32(&rng_state, 2, OH_DIMS(n, k))
               : oh_random_f32(&rng_state, 2, OH_DIMS(k, n));
    if (c_rank >= 0)
        in[2] = oh_random_f32(&rng_state, c_rank, c_dims);
    const float *a = in[0].data, *b = in[1].data;
    float *want = calloc((size_t)(m * n) + 1, sizeof(float));
    int64_t cr = c_rank == 2 ? c_dims[0] : 1, cc = c_rank >= 1 ? c_dims[c_rank - 1] : 1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += (double)(ta ? a[p * m + i] : a[i * k + p]) *
                       (double)(tb ? b[j * k + p] : b[p * n + j]);
            acc *= alpha;
            if (c_rank >= 0) {
                const float *c = in[2].data;
                acc += beta * c[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
            }
            want[i * n + j] = (float)acc;
        }
    struct mq_tensor y =
        must_run("Gemm", opset, in, c_rank >= 0 ? 3 : 2, gemm_node(c_rank >= 0 ? 3 : 2, ta, tb,
                                                                   alpha, beta));
    oh_assert_f32(&y, 2, OH_DIMS(m, n), want, 1e-5f, 1e-5f);
    mq_tensor_free(&y);
    oh_free_all(in, c_rank >= 0 ? 3 : 2);
    free(want);
}

START_TEST(gemm_attributes_and_bias)
{
    check_gemm(13, 3, 5, 4, 0, 0, 1.0f, 1.0f, 2, OH_DIMS(3, 4));
    check_gemm(13, 3, 5, 4, 1, 0, 0.5f, 2.0f, 1, OH_DIMS(4));
    check_gemm(13, 3, 5, 4, 0, 1, 1.0f, 1.0f, 0, NULL);
    check_gemm(11, 3, 5, 4, 1, 1, 0.25f, 0.35f, 2, OH_DIMS(3, 1));
    check_gemm(11, 3, 5, 4, 1, 1, 2.0f, -1.0f, 2, OH_DIMS(1, 4));
    check_gemm(7, 2, 3, 6, 0, 0, 1.0f, 1.0f, 1, OH_DIMS(1));
    check_gemm(6, 2, 3, 6, 0, 1, 1.0f, 1.0f, 2, OH_DIMS(2, 6));
    check_gemm(11, 4, 7, 3, 0, 0, 1.0f, 1.0f, -1, NULL);
    check_gemm(13, 1, 9, 10, 0, 1, 1.0f, 1.0f, 1, OH_DIMS(10));
    /* single rows and columns take the GEMV path, in every transpose combination */
    check_gemm(13, 1, 6, 5, 1, 0, 0.5f, 1.0f, 2, OH_DIMS(1, 5));
    check_gemm(13, 1, 6, 5, 1, 1, 1.0f, 2.0f, 0, NULL);
    check_gemm(13, 4, 6, 1, 0, 0, 1.0f, 1.0f, 2, OH_DIMS(4, 1));
    check_gemm(13, 4, 6, 1, 1, 1, 3.0f, 1.0f, 1, OH_DIMS(1));
    check_gemm(13, 4, 6, 1, 0, 1, 1.0f, 0.0f, 2, OH_DIMS(4, 1));
    check_gemm(13, 4, 6, 1, 1, 0, 1.0f, 1.0f, -1, NULL);
    check_gemm(13, 1, 7, 1, 1, 0, 1.0f, 1.0f, 2, OH_DIMS(1, 1));
}
END_TEST

START_TEST(gemm_beta_zero_ignores_c)
{
    /* beta = 0 leaves C out entirely, so an infinite C cannot poison Y */
    struct mq_tensor in[3] = {oh_f32(2, OH_DIMS(1, 1), (const float[]){2}),
                              oh_f32(2, OH_DIMS(1, 1), (const float[]){3}),
                              oh_f32(2, OH_DIMS(1, 1), (const float[]){INFINITY})};
    struct mq_tensor y = must_run("Gemm", 13, in, 3, gemm_node(3, 0, 0, 1.0f, 0.0f));
    oh_assert_f32(&y, 2, OH_DIMS(1, 1), (const float[]){6}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 3);
}
END_TEST

START_TEST(gemm_integer_and_half)
{
    struct mq_tensor in[3] = {oh_i32(2, OH_DIMS(2, 2), (const int32_t[]){1, 2, 3, 4}),
                              oh_i32(2, OH_DIMS(2, 2), (const int32_t[]){5, 6, 7, 8}),
                              oh_i32(1, OH_DIMS(2), (const int32_t[]){100, 200})};
    /* transB: [[1,2],[3,4]] x [[5,7],[6,8]] = [[17,23],[39,53]]; 2*AB - C */
    struct mq_tensor y = must_run("Gemm", 13, in, 3, gemm_node(3, 0, 1, 2.0f, -1.0f));
    oh_assert_i64(&y, 2, OH_DIMS(2, 2), (const int64_t[]){-66, -154, -22, -94});
    mq_tensor_free(&y);

    struct mq_error err = {{0}};
    int rc = run_op("Gemm", 13, in, 3, &y, gemm_node(3, 0, 0, 0.5f, 1.0f), &err);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err.message, "alpha") != NULL, "%s", err.message);
    mq_tensor_free(&y);
    oh_free_all(in, 3);

    uint16_t a[2] = {mq_float_to_half(1.5f), mq_float_to_half(-2.0f)};
    uint16_t c[1] = {mq_float_to_half(0.25f)};
    in[0] = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(1, 2), a);
    in[1] = oh_typed(MQ_DTYPE_FLOAT16, 2, OH_DIMS(2, 1), a);
    in[2] = oh_typed(MQ_DTYPE_FLOAT16, 0, NULL, c);
    y = must_run("Gemm", 13, in, 3, NULL);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT16);
    ck_assert(mq_half_to_float(((uint16_t *)y.data)[0]) == 6.5f);
    mq_tensor_free(&y);
    oh_free_all(in, 3);
}
END_TEST

START_TEST(gemm_errors_and_empty)
{
    struct mq_tensor in[3] = {oh_random_f32(&rng_state, 2, OH_DIMS(2, 3)),
                              oh_random_f32(&rng_state, 2, OH_DIMS(2, 3)),
                              oh_random_f32(&rng_state, 1, OH_DIMS(3))};
    expect_error("Gemm", 13, in, 3, NULL, "inner dimensions");
    in[0] = oh_random_f32(&rng_state, 2, OH_DIMS(2, 3));
    in[1] = oh_random_f32(&rng_state, 2, OH_DIMS(3, 4));
    in[2] = oh_random_f32(&rng_state, 1, OH_DIMS(3));
    expect_error("Gemm", 13, in, 3, NULL, "does not broadcast");
    in[0] = oh_random_f32(&rng_state, 3, OH_DIMS(1, 2, 3));
    in[1] = oh_random_f32(&rng_state, 2, OH_DIMS(3, 4));
    expect_error("Gemm", 13, in, 2, NULL, "rank 2");

    /* K = 0: Y is beta * C alone */
    in[0] = oh_f32(2, OH_DIMS(2, 0), NULL);
    in[1] = oh_f32(2, OH_DIMS(0, 2), NULL);
    in[2] = oh_f32(1, OH_DIMS(2), (const float[]){1, 2});
    struct mq_tensor y = must_run("Gemm", 13, in, 3, gemm_node(3, 0, 0, 1.0f, 3.0f));
    oh_assert_f32(&y, 2, OH_DIMS(2, 2), (const float[]){3, 6, 3, 6}, 0, 0);
    mq_tensor_free(&y);
    oh_free_all(in, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_matmul");
    TCase *tc = tcase_create("matmul");
    tcase_add_test(tc, matmul_2d_and_1d_promotion);
    tcase_add_test(tc, matmul_batch_broadcasting);
    tcase_add_test(tc, matmul_types);
    tcase_add_test(tc, matmul_empty);
    tcase_add_test(tc, matmul_errors);
    tcase_add_test(tc, gemm_attributes_and_bias);
    tcase_add_test(tc, gemm_beta_zero_ignores_c);
    tcase_add_test(tc, gemm_integer_and_half);
    tcase_add_test(tc, gemm_errors_and_empty);
    return mq_check_run(s, tc);
}
