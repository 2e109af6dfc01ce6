/*
 * The QuantizeLinear / DequantizeLinear row kernels: every vector implementation this CPU runs
 * (SSE2, AVX2, AVX-512) gives bit for bit what the scalar formula written out here gives, on
 * random rows of odd lengths holding NaN, infinities, huge and tiny values, exact half-integer
 * ties and their neighbours, for all four integer types, and the kernels give the same per axis.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "interp/ops/quantize_rows.h"
#include "op_harness.h"

static const int storages[4] = {MQ_DTYPE_UINT8, MQ_DTYPE_INT8, MQ_DTYPE_UINT16, MQ_DTYPE_INT16};

static void range_of(int storage, int32_t *lo, int32_t *hi)
{
    switch (storage) {
    case MQ_DTYPE_UINT8: *lo = 0, *hi = 255; break;
    case MQ_DTYPE_INT8: *lo = -128, *hi = 127; break;
    case MQ_DTYPE_UINT16: *lo = 0, *hi = 65535; break;
    default: *lo = -32768, *hi = 32767; break;
    }
}

/* The spec's formula: round half to even of the float division, zero point, saturate; NaN to
   the minimum. */
static int32_t ref_quantize(float x, float scale, int32_t zero, int32_t lo, int32_t hi)
{
    float v = nearbyintf(x / scale) + (float)zero;
    if (!(v >= (float)lo))
        return lo;
    if (v > (float)hi)
        return hi;
    return (int32_t)v;
}

static int64_t read_q(const void *q, int storage, int64_t k)
{
    switch (storage) {
    case MQ_DTYPE_UINT8: return ((const uint8_t *)q)[k];
    case MQ_DTYPE_INT8: return ((const int8_t *)q)[k];
    case MQ_DTYPE_UINT16: return ((const uint16_t *)q)[k];
    default: return ((const int16_t *)q)[k];
    }
}

static void write_q(void *q, int storage, int64_t k, int32_t v)
{
    switch (storage) {
    case MQ_DTYPE_UINT8: ((uint8_t *)q)[k] = (uint8_t)v; break;
    case MQ_DTYPE_INT8: ((int8_t *)q)[k] = (int8_t)v; break;
    case MQ_DTYPE_UINT16: ((uint16_t *)q)[k] = (uint16_t)v; break;
    default: ((int16_t *)q)[k] = (int16_t)v; break;
    }
}

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static float bits_to_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* A scale: mostly ordinary, sometimes at or past the edges the vector paths treat apart. */
static float random_scale(uint32_t *s)
{
    switch (next(s) % 16) {
    case 0: return 0x1p-61f;
    case 1: return 0x1p61f;
    case 2: return 1e-45f; /* subnormal */
    case 3: return 3e38f;
    case 4: return -0.0375f;
    case 5: return 1.0f;
    case 6: return 0x1p-60f;
    case 7: return 0x1p60f;
    default: return ldexpf(1.0f + (float)(next(s) % 1000000) / 1e6f, (int)(next(s) % 40) - 30);
    }
}

/* One x for a row with this scale: spread over the type's range, exact ties, their neighbours,
   and the special values. */
static float random_x(uint32_t *s, float scale, int32_t lo, int32_t hi)
{
    float span = (float)(hi - lo) * 1.25f;
    float t = ((float)(next(s) % 2000001) / 1e6f - 1.0f) * span;
    switch (next(s) % 20) {
    case 0: return NAN;
    case 1: return -NAN;
    case 2: return INFINITY;
    case 3: return -INFINITY;
    case 4: return (next(s) & 1) ? 3.4e38f : -3.4e38f;
    case 5: return (next(s) & 1) ? 0.0f : -0.0f;
    case 6: return bits_to_float(next(s)); /* any bits: subnormals, NaN payloads, ... */
    case 7: case 8: case 9: case 10: {
        /* x with x / scale exactly k + 0.5 where the product is exact, else a near miss */
        float tie = floorf(t) + 0.5f;
        float x = tie * scale;
        uint32_t pick = next(s) % 3;
        return pick == 0 ? x : pick == 1 ? nextafterf(x, INFINITY) : nextafterf(x, -INFINITY);
    }
    case 11: return (float)(next(s) % 100) * 0.5f * scale; /* small ties around zero */
    default: return t * scale;
    }
}

static void check_rows(const struct mq_qrows_ops *ops, uint32_t seed, int trials)
{
    const struct mq_qrows_ops *ref_ops = mq_qrows_ops_for(MQ_QROWS_SCALAR);
    uint32_t s = seed;
    float x[300], y[300], y_ref[300], dq[300];
    uint8_t q[600];
    for (int trial = 0; trial < trials; trial++) {
        int storage = storages[next(&s) % 4];
        int32_t lo, hi;
        range_of(storage, &lo, &hi);
        float scale = random_scale(&s);
        int32_t zero = lo + (int32_t)(next(&s) % (uint32_t)(hi - lo + 1));
        int64_t n = next(&s) % 300;
        for (int64_t k = 0; k < n; k++)
            x[k] = random_x(&s, scale, lo, hi);

        ops->quantize(x, n, scale, zero, storage, q);
        ops->fake_quantize(x, n, scale, zero, storage, y);
        ref_ops->fake_quantize(x, n, scale, zero, storage, y_ref);
        for (int64_t k = 0; k < n; k++) {
            int32_t want = ref_quantize(x[k], scale, zero, lo, hi);
            float want_y = (float)(want - zero) * scale;
            ck_assert_msg(read_q(q, storage, k) == want,
                          "%s quantize: x %a scale %a zero %d type %d: got %lld, want %d",
                          ops->name, (double)x[k], (double)scale, zero, storage,
                          (long long)read_q(q, storage, k), want);
            ck_assert_msg(memcmp(&y[k], &want_y, sizeof want_y) == 0 &&
                              memcmp(&y_ref[k], &want_y, sizeof want_y) == 0,
                          "%s fake_quantize: x %a scale %a zero %d type %d: got %a, want %a",
                          ops->name, (double)x[k], (double)scale, zero, storage, (double)y[k],
                          (double)want_y);
        }

        /* dequantize: random codes of the type */
        for (int64_t k = 0; k < n; k++)
            write_q(q, storage, k, lo + (int32_t)(next(&s) % (uint32_t)(hi - lo + 1)));
        ops->dequantize(q, n, scale, zero, storage, dq);
        for (int64_t k = 0; k < n; k++) {
            float want = (float)((int32_t)read_q(q, storage, k) - zero) * scale;
            ck_assert_msg(memcmp(&dq[k], &want, sizeof want) == 0,
                          "%s dequantize: q %lld scale %a zero %d: got %a, want %a", ops->name,
                          (long long)read_q(q, storage, k), (double)scale, zero, (double)dq[k],
                          (double)want);
        }
    }
}

START_TEST(every_vector_path_matches_the_scalar_formula)
{
    int ran = 0;
    for (int isa = MQ_QROWS_SCALAR; isa < MQ_QROWS_ISAS; isa++) {
        const struct mq_qrows_ops *ops = mq_qrows_ops_for((enum mq_qrows_isa)isa);
        if (!ops)
            continue;
        check_rows(ops, 0x9e3779b9u + (uint32_t)isa, 4000);
        ran++;
    }
    ck_assert_int_ge(ran, 1);
    ck_assert_ptr_nonnull(mq_qrows_best());
}
END_TEST

/* Rows where every value is an exact tie (each vector takes the division) or just off one. */
START_TEST(rows_of_ties_round_half_to_even)
{
    float x[64], y[64];
    uint8_t q[64 * sizeof(int16_t)];
    const float scale = 0.1f;
    for (int isa = MQ_QROWS_SCALAR; isa < MQ_QROWS_ISAS; isa++) {
        const struct mq_qrows_ops *ops = mq_qrows_ops_for((enum mq_qrows_isa)isa);
        if (!ops)
            continue;
        for (int k = 0; k < 64; k++)
            x[k] = ((float)k - 20.5f) * scale;
        ops->quantize(x, 64, scale, -3, MQ_DTYPE_INT8, q);
        ops->fake_quantize(x, 64, scale, -3, MQ_DTYPE_INT8, y);
        for (int k = 0; k < 64; k++) {
            int32_t want = ref_quantize(x[k], scale, -3, -128, 127);
            float want_y = (float)(want + 3) * scale;
            ck_assert_int_eq(((int8_t *)q)[k], want);
            ck_assert(memcmp(&y[k], &want_y, sizeof want_y) == 0);
        }
        /* exact ties by construction: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2 */
        const float t[3] = {2.5f, 3.5f, -2.5f};
        for (int k = 0; k < 64; k++)
            x[k] = t[k % 3];
        ops->quantize(x, 64, 1.0f, 0, MQ_DTYPE_INT16, q);
        static const int16_t even[3] = {2, 4, -2};
        for (int k = 0; k < 32; k++)
            ck_assert_int_eq(((int16_t *)q)[k], even[k % 3]);
    }
}
END_TEST

/* QuantizeLinear and DequantizeLinear per axis (rows of odd lengths) against the formula. */
START_TEST(per_axis_kernels_match_the_formula)
{
    uint32_t s = 12345;
    enum { C = 5, INNER = 37 };
    float x[2 * C * INNER], scales[C];
    for (int st = 0; st < 4; st++) {
        int storage = storages[st];
        int32_t lo, hi, zeros[C];
        range_of(storage, &lo, &hi);
        uint8_t zp_bytes[C * 2];
        for (int c = 0; c < C; c++) {
            scales[c] = random_scale(&s);
            if (!(fabsf(scales[c]) > 1e-30f) || fabsf(scales[c]) > 1e30f)
                scales[c] = 0.25f;
            zeros[c] = lo + (int32_t)(next(&s) % (uint32_t)(hi - lo + 1));
            write_q(zp_bytes, storage, c, zeros[c]);
        }
        for (int i = 0; i < 2 * C * INNER; i++)
            x[i] = random_x(&s, scales[(i / INNER) % C], lo, hi);
        Onnx__NodeProto *n = oh_node("QuantizeLinear", 3, 1);
        struct mq_tensor in[3] = {oh_f32(3, OH_DIMS(2, C, INNER), x),
                                  oh_f32(1, OH_DIMS(C), scales),
                                  oh_typed(storage, 1, OH_DIMS(C), zp_bytes)};
        struct mq_tensor q = oh_run1_take_all(n, 21, in, 3);
        ck_assert_int_eq(q.dtype, storage);
        for (int i = 0; i < 2 * C * INNER; i++) {
            int c = (i / INNER) % C;
            ck_assert_int_eq(read_q(q.data, storage, i),
                             ref_quantize(x[i], scales[c], zeros[c], lo, hi));
        }
        n = oh_node("DequantizeLinear", 3, 1);
        struct mq_tensor din[3] = {q, oh_f32(1, OH_DIMS(C), scales),
                                   oh_typed(storage, 1, OH_DIMS(C), zp_bytes)};
        struct mq_tensor dq = oh_run1_take_all(n, 21, din, 3);
        for (int i = 0; i < 2 * C * INNER; i++) {
            int c = (i / INNER) % C;
            float want = (float)((int32_t)ref_quantize(x[i], scales[c], zeros[c], lo, hi) -
                                 zeros[c]) * scales[c];
            ck_assert(memcmp(&((float *)dq.data)[i], &want, sizeof want) == 0);
        }
        mq_tensor_free(&dq);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_quantize_rows");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_vector_path_matches_the_scalar_formula);
    tcase_add_test(tc, rows_of_ties_round_half_to_even);
    tcase_add_test(tc, per_axis_kernels_match_the_formula);
    return mq_check_run(s, tc);
}
