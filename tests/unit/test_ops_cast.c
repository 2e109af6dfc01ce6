/* Cast and CastLike (src/interp/ops/cast.c). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "op_harness.h"
#include "model/tensor_proto.h"

static struct mq_tensor cast(struct mq_tensor in, int to, int opset)
{
    Onnx__NodeProto *n = oh_node("Cast", 1, 1);
    oh_attr_int(n, "to", to);
    struct mq_error err = {{0}};
    struct mq_tensor out = {0};
    int rc = oh_run(n, opset, &in, 1, &out, 1, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert_int_eq(out.dtype, to);
    mq_tensor_free(&in);
    oh_node_free(n);
    return out;
}

static struct mq_tensor f32s(int n, const float *v)
{
    return oh_f32(1, OH_DIMS(n), v);
}

START_TEST(float_to_integers)
{
    /* truncation toward zero */
    struct mq_tensor o = cast(f32s(4, (float[]){-1.7f, 1.7f, 2.5f, -0.5f}), MQ_DTYPE_INT32, 13);
    oh_assert_i64(&o, 1, OH_DIMS(4), (int64_t[]){-1, 1, 2, 0});
    mq_tensor_free(&o);

    /* out of range and NaN: the x86-64 conversion onnxruntime compiles to */
    o = cast(f32s(3, (float[]){3e9f, NAN, -3e9f}), MQ_DTYPE_INT32, 13);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){INT32_MIN, INT32_MIN, INT32_MIN});
    mq_tensor_free(&o);
    o = cast(f32s(3, (float[]){300, -129, 127.9f}), MQ_DTYPE_INT8, 13);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){44, 127, 127});
    mq_tensor_free(&o);
    o = cast(f32s(3, (float[]){-1, 256, 255.5f}), MQ_DTYPE_UINT8, 13);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){255, 0, 255});
    mq_tensor_free(&o);
    o = cast(f32s(2, (float[]){-1, 70000}), MQ_DTYPE_UINT16, 13);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){65535, 4464});
    mq_tensor_free(&o);
    /* uint32 converts through int64: 1.5 * 2^32 keeps its low 32 bits */
    o = cast(f32s(2, (float[]){-1, 6442450944.0f}), MQ_DTYPE_UINT32, 13);
    const uint32_t *u32 = o.data;
    ck_assert(u32[0] == UINT32_MAX && u32[1] == 0x80000000u);
    mq_tensor_free(&o);
    o = cast(f32s(2, (float[]){1e20f, -1e20f}), MQ_DTYPE_INT64, 13);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){INT64_MIN, INT64_MIN});
    mq_tensor_free(&o);
    o = cast(oh_typed(MQ_DTYPE_DOUBLE, 1, OH_DIMS(4), (double[]){-1, 1e19, 18446744073709551616.0,
                                                                  NAN}),
             MQ_DTYPE_UINT64, 13);
    const uint64_t *u64 = o.data;
    ck_assert(u64[0] == UINT64_MAX);
    ck_assert(u64[1] == 10000000000000000000ULL);
    ck_assert(u64[2] == 0);
    ck_assert(u64[3] == 0x8000000000000000ULL);
    mq_tensor_free(&o);
}
END_TEST

START_TEST(integers_and_bool)
{
    /* integers wrap */
    struct mq_tensor o = cast(oh_i64(1, OH_DIMS(3), (int64_t[]){300, -129, -1}), MQ_DTYPE_INT8,
                              13);
    oh_assert_i64(&o, 1, OH_DIMS(3), (int64_t[]){44, 127, -1});
    mq_tensor_free(&o);
    o = cast(oh_i8(1, OH_DIMS(2), (int8_t[]){-1, 5}), MQ_DTYPE_UINT32, 13);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){4294967295LL, 5});
    mq_tensor_free(&o);
    o = cast(oh_i64(1, OH_DIMS(1), (int64_t[]){(1LL << 53) + 1}), MQ_DTYPE_DOUBLE, 13);
    ck_assert(((double *)o.data)[0] == 9007199254740992.0);
    mq_tensor_free(&o);

    /* anything to bool is "!= 0" (NaN included, -0 not); bool to numbers is 0/1 */
    o = cast(f32s(4, (float[]){0, -0.0f, NAN, -2}), MQ_DTYPE_BOOL, 13);
    oh_assert_i64(&o, 1, OH_DIMS(4), (int64_t[]){0, 0, 1, 1});
    mq_tensor_free(&o);
    o = cast(oh_i64(1, OH_DIMS(2), (int64_t[]){256, 0}), MQ_DTYPE_BOOL, 13);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){1, 0});
    mq_tensor_free(&o);
    o = cast(oh_bool(1, OH_DIMS(2), (uint8_t[]){1, 0}), MQ_DTYPE_FLOAT, 13);
    oh_assert_f32(&o, 1, OH_DIMS(2), (float[]){1, 0}, 0, 0);
    mq_tensor_free(&o);

    /* empty tensors */
    o = cast(oh_f32(2, OH_DIMS(0, 3), NULL), MQ_DTYPE_INT64, 13);
    oh_assert_shape(&o, 2, OH_DIMS(0, 3));
    mq_tensor_free(&o);
}
END_TEST

START_TEST(half_types)
{
    struct mq_tensor o = cast(f32s(5, (float[]){1.0f / 3, 65520, -65504, 1e-8f, NAN}),
                              MQ_DTYPE_FLOAT16, 13);
    const uint16_t *h = o.data;
    ck_assert_uint_eq(h[0], 0x3555);
    ck_assert_uint_eq(h[1], 0x7c00); /* rounds past the largest half: inf */
    ck_assert_uint_eq(h[2], 0xfbff);
    ck_assert_uint_eq(h[3], 0x0000);
    ck_assert((h[4] & 0x7c00) == 0x7c00 && (h[4] & 0x3ff) != 0);
    mq_tensor_free(&o);

    /* double goes to float16 through float32, as onnxruntime does: 1 + 2^-11 + 2^-40 first
     * becomes the float 1 + 2^-11, a tie that rounds to even (1.0) */
    o = cast(oh_typed(MQ_DTYPE_DOUBLE, 1, OH_DIMS(1), (double[]){1 + 0x1p-11 + 0x1p-40}),
             MQ_DTYPE_FLOAT16, 13);
    ck_assert_uint_eq(((uint16_t *)o.data)[0], 0x3c00);
    mq_tensor_free(&o);

    /* float16 to integers via float */
    o = cast(oh_typed(MQ_DTYPE_FLOAT16, 1, OH_DIMS(2), (uint16_t[]){0x4248, 0xc248}),
             MQ_DTYPE_INT16, 13);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){3, -3});
    mq_tensor_free(&o);

    /* bfloat16 rounds to nearest even: 1 + 2^-8 is a tie down, 1 + 3*2^-8 a tie up */
    o = cast(f32s(3, (float[]){1.00390625f, 1.01171875f, -2}), MQ_DTYPE_BFLOAT16, 13);
    h = o.data;
    ck_assert_uint_eq(h[0], 0x3f80);
    ck_assert_uint_eq(h[1], 0x3f82);
    ck_assert_uint_eq(h[2], 0xc000);
    mq_tensor_free(&o);
    o = cast(oh_typed(MQ_DTYPE_BFLOAT16, 1, OH_DIMS(1), (uint16_t[]){0x3f82}), MQ_DTYPE_FLOAT16,
             13);
    ck_assert_uint_eq(((uint16_t *)o.data)[0], 0x3c10); /* 1.015625 */
    mq_tensor_free(&o);
}
END_TEST

START_TEST(legacy_castlike_and_errors)
{
    /* Cast-1 names the type with a string */
    struct mq_tensor in[2] = {f32s(2, (float[]){2.9f, -2.9f})};
    Onnx__NodeProto *n = oh_node("Cast", 1, 1);
    oh_attr_string(n, "to", "INT32");
    struct mq_error err = {{0}};
    struct mq_tensor o = {0};
    ck_assert_msg(oh_run(n, 1, in, 1, &o, 1, &err) == 0, "%s", err.message);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_INT32);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){2, -2});
    mq_tensor_free(&o);
    oh_node_free(n);

    in[1] = oh_u8(1, OH_DIMS(1), (uint8_t[]){0});
    n = oh_node("CastLike", 2, 1);
    ck_assert_msg(oh_run(n, 15, in, 2, &o, 1, &err) == 0, "%s", err.message);
    ck_assert_int_eq(o.dtype, MQ_DTYPE_UINT8);
    oh_assert_i64(&o, 1, OH_DIMS(2), (int64_t[]){2, 254});
    mq_tensor_free(&o);
    oh_node_free(n);

    n = oh_node("Cast", 1, 1);
    oh_attr_int(n, "to", MQ_DTYPE_STRING);
    ck_assert_int_ne(oh_run(n, 13, in, 1, &o, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "casting to string"));
    ck_assert_ptr_nonnull(strstr(err.message, "node_under_test"));
    oh_node_free(n);
    n = oh_node("Cast", 1, 1);
    oh_attr_int(n, "to", MQ_DTYPE_FLOAT8E8M0);
    oh_attr_string(n, "round_mode", "sideways");
    ck_assert_int_ne(oh_run(n, 25, in, 1, &o, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "round_mode"));
    oh_node_free(n);
    n = oh_node("Cast", 1, 1);
    ck_assert_int_ne(oh_run(n, 13, in, 1, &o, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "'to' is required"));
    oh_node_free(n);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
}
END_TEST

/* Codes of a one-byte-per-element result. */
static void assert_codes(const struct mq_tensor *t, int dtype, int n, const uint8_t *want)
{
    ck_assert_int_eq(t->dtype, dtype);
    ck_assert_int_eq(t->count, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(((const uint8_t *)t->data)[i] == want[i], "element %d: code 0x%02x, want "
                      "0x%02x", i, ((const uint8_t *)t->data)[i], want[i]);
}

static void cast_codes(int opset, int to, int saturate, int n, const float *x,
                       const uint8_t *want)
{
    struct mq_tensor in[1] = {f32s(n, x)}, o = {0};
    struct mq_error err = {{0}};
    Onnx__NodeProto *node = oh_node("Cast", 1, 1);
    oh_attr_int(node, "to", to);
    if (saturate >= 0)
        oh_attr_int(node, "saturate", saturate);
    ck_assert_msg(oh_run(node, opset, in, 1, &o, 1, &err) == 0, "%s", err.message);
    assert_codes(&o, to, n, want);
    mq_tensor_free(&o);
    mq_tensor_free(&in[0]);
    oh_node_free(node);
}

START_TEST(small_floats_round_and_saturate)
{
    const float x[] = {2.9f, -2.9f, 1000.0f, -INFINITY, NAN, 0.001f};
    /* e4m3fn: 2.9 rounds to 3.0 (0x44); beyond 448 saturates to 0x7e, or is NaN (0x7f) without
       saturation; 0.001 is the subnormal 2^-9 (0x01). */
    cast_codes(19, MQ_DTYPE_FLOAT8E4M3FN, -1, 6, x,
               (const uint8_t[]){0x44, 0xc4, 0x7e, 0xfe, 0x7f, 0x01});
    cast_codes(19, MQ_DTYPE_FLOAT8E4M3FN, 0, 6, x,
               (const uint8_t[]){0x44, 0xc4, 0x7f, 0xff, 0x7f, 0x01});
    /* e5m2 keeps infinity when not saturating; fnuz has one NaN (0x80) and no -0. */
    cast_codes(19, MQ_DTYPE_FLOAT8E5M2, 0, 4, x, (const uint8_t[]){0x42, 0xc2, 0x64, 0xfc});
    cast_codes(19, MQ_DTYPE_FLOAT8E4M3FNUZ, 1, 5, x,
               (const uint8_t[]){0x4c, 0xcc, 0x7f, 0xff, 0x80});
    /* float4e2m1 always saturates at 6 (0x7). */
    cast_codes(23, MQ_DTYPE_FLOAT4E2M1, -1, 3, x, (const uint8_t[]){0x5, 0xd, 0x7});
    /* e8m0 rounds up by default: 2.9 -> 4 = 2^2 (code 129). */
    cast_codes(25, MQ_DTYPE_FLOAT8E8M0, -1, 1, x, (const uint8_t[]){129});
    /* narrow integers truncate and wrap: 9 -> -7 in int4, 1 in uint2 */
    cast_codes(21, MQ_DTYPE_INT4, -1, 2, (const float[]){9.0f, -9.5f},
               (const uint8_t[]){(uint8_t)-7, 7});
    cast_codes(25, MQ_DTYPE_UINT2, -1, 2, (const float[]){9.0f, 2.0f}, (const uint8_t[]){1, 2});
}
END_TEST

/* int4 is one byte per element in memory and packed two to a byte (low nibble first) on file. */
START_TEST(narrow_types_pack_on_file)
{
    struct mq_tensor t = oh_typed(MQ_DTYPE_INT4, 1, OH_DIMS(3), (const int8_t[]){-8, 7, 3}), back;
    struct mq_error err = {{0}};
    Onnx__TensorProto *p;
    ck_assert_int_eq(mq_tensor_to_proto(&t, "w", &p, &err), 0);
    ck_assert_int_eq(p->raw_data.len, 2);
    ck_assert_int_eq(p->raw_data.data[0], 0x78);
    ck_assert_int_eq(p->raw_data.data[1], 0x03);
    ck_assert_msg(mq_tensor_from_proto(p, "w", &back, &err) == 0, "%s", err.message);
    oh_assert_i64(&back, 1, OH_DIMS(3), (const int64_t[]){-8, 7, 3});
    mq_tensor_free(&back);
    /* a raw_data length that disagrees with the packed size is refused */
    p->raw_data.len = 3;
    ck_assert_int_ne(mq_tensor_from_proto(p, "w", &back, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "need 2"));
    p->raw_data.len = 2;
    onnx__tensor_proto__free_unpacked(p, NULL);
    mq_tensor_free(&t);
    mq_tensor_free(&back);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_cast");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, float_to_integers);
    tcase_add_test(tc, integers_and_bool);
    tcase_add_test(tc, half_types);
    tcase_add_test(tc, legacy_castlike_and_errors);
    tcase_add_test(tc, small_floats_round_and_saturate);
    tcase_add_test(tc, narrow_types_pack_on_file);
    return mq_check_run(s, tc);
}
