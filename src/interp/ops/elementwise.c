/*
 * Binary, ternary and variadic element-wise operators with numpy
 * broadcasting: arithmetic, comparisons, logic and bit operations, Where,
 * Min/Max/Sum/Mean and PRelu.
 *
 * Every operator runs through one loop nest (interp/ops/broadcast_loop.h):
 * the output shape is collapsed to as few axes as possible, and a row
 * function, instantiated per (operator, element type) from one expression,
 * handles the innermost axis with a tight loop.  Same-shape, scalar and per-channel operands all
 * end up as unit- or zero-stride rows, which the compiler vectorises.
 *
 * float16 and bfloat16 are computed in float32: inputs are widened into
 * temporaries and the result is narrowed once at the end.
 *
 * mq_kernel_add_relu and mq_kernel_sum_relu (interp/ops/fused.h) are Add and
 * a two-input Sum followed by Relu: the loop nest applies the Relu to each
 * output row right after computing it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/broadcast.h"
#include "interp/kernel.h"
#include "interp/ops/broadcast_loop.h"
#include "interp/ops/fused.h"
#include "interp/ops/type_lists.h"

/* Row tables are indexed by enum mq_dtype up to bfloat16. */
#define DTYPE_SLOTS (MQ_DTYPE_BFLOAT16 + 1)

typedef mq_broadcast_row_fn row_fn;

/* ---------------------------------------------------------------------------------------- */
/* Row functions, one expression per operator and type family                               */

#define BINARY_ROW(NAME, TA, TB, TO, EXPR)                                                     \
    static void NAME(void *o_, const void *a_, const void *b_, const void *c_, int64_t n,      \
                     int64_t sa, int64_t sb, int64_t sc)                                       \
    {                                                                                          \
        (void)c_;                                                                              \
        (void)sc;                                                                              \
        TO *o = o_;                                                                            \
        const TA *a = a_;                                                                      \
        const TB *b = b_;                                                                      \
        if (sa == 1 && sb == 1) {                                                              \
            for (int64_t i = 0; i < n; i++) {                                                  \
                const TA x = a[i];                                                             \
                const TB y = b[i];                                                             \
                o[i] = (TO)(EXPR);                                                             \
            }                                                                                  \
        } else if (sa == 1 && sb == 0) {                                                       \
            const TB y = b[0];                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                  \
                const TA x = a[i];                                                             \
                o[i] = (TO)(EXPR);                                                             \
            }                                                                                  \
        } else if (sa == 0 && sb == 1) {                                                       \
            const TA x = a[0];                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                  \
                const TB y = b[i];                                                             \
                o[i] = (TO)(EXPR);                                                             \
            }                                                                                  \
        } else {                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                  \
                const TA x = a[i * sa];                                                        \
                const TB y = b[i * sb];                                                        \
                o[i] = (TO)(EXPR);                                                             \
            }                                                                                  \
        }                                                                                      \
    }


/* A row T x T -> T (or -> bool), with the expression OP_FAM(x, y, T, UT). */
#define DEF_SAME(OP, FAM, S, T, UT, DT) BINARY_ROW(OP##_##S, T, T, T, OP##_##FAM(x, y, T, UT))
#define DEF_BOOL(OP, FAM, S, T, UT, DT)                                                        \
    BINARY_ROW(OP##_##S, T, T, uint8_t, OP##_##FAM(x, y, T, UT))
#define SLOT(OP, FAM, S, T, UT, DT) [DT] = OP##_##S,

static inline int64_t ipow(int64_t base, int64_t e)
{
    if (e < 0)
        return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t result = 1, b = (uint64_t)base;
    while (e) {
        if (e & 1)
            result *= b;
        b *= b;
        e >>= 1;
    }
    return (int64_t)result;
}

/* Python's sign rule: the remainder takes the divisor's sign. */
static inline double floor_mod_double(double x, double y)
{
    double r = fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0)))
        r += y;
    return r;
}

static inline int64_t floor_mod_int(int64_t x, int64_t y)
{
    if (y == 0 || y == -1)
        return 0;
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0)))
        r += y;
    return r;
}

#define add_float(x, y, T, UT) ((x) + (y))
#define add_int(x, y, T, UT) ((uint64_t)(x) + (uint64_t)(y))
#define sub_float(x, y, T, UT) ((x) - (y))
#define sub_int(x, y, T, UT) ((uint64_t)(x) - (uint64_t)(y))
#define mul_float(x, y, T, UT) ((x) * (y))
#define mul_int(x, y, T, UT) ((uint64_t)(x) * (uint64_t)(y))
#define div_float(x, y, T, UT) ((x) / (y))
/* Integer division truncates (C, onnxruntime); n/0 gives 0 and MIN/-1 wraps instead of trapping. */
#define div_sint(x, y, T, UT)                                                                  \
    ((y) == 0 ? 0 : (y) == -1 ? (T)(0 - (uint64_t)(x)) : (T)((x) / (y)))
#define div_uint(x, y, T, UT) ((y) == 0 ? 0 : (x) / (y))
#define fmod_float(x, y, T, UT) fmod((double)(x), (double)(y))
#define fmod_sint(x, y, T, UT) ((y) == 0 || (y) == -1 ? 0 : (x) % (y))
#define fmod_uint(x, y, T, UT) ((y) == 0 ? 0 : (x) % (y))
#define mod_float(x, y, T, UT) floor_mod_double(x, y)
#define mod_sint(x, y, T, UT) floor_mod_int(x, y)
#define mod_uint(x, y, T, UT) ((y) == 0 ? 0 : (x) % (y))
#define shl_uint(x, y, T, UT) ((uint64_t)(y) >= sizeof(T) * 8 ? 0 : (uint64_t)(x) << (y))
#define shr_uint(x, y, T, UT) ((uint64_t)(y) >= sizeof(T) * 8 ? 0 : (x) >> (y))
#define band_int(x, y, T, UT) ((x) & (y))
#define bor_int(x, y, T, UT) ((x) | (y))
#define bxor_int(x, y, T, UT) ((x) ^ (y))
#define land_bool(x, y, T, UT) (((x) != 0) & ((y) != 0))
#define lor_bool(x, y, T, UT) (((x) != 0) | ((y) != 0))
#define lxor_bool(x, y, T, UT) (((x) != 0) ^ ((y) != 0))
#define eq_any(x, y, T, UT) ((x) == (y))
#define lt_any(x, y, T, UT) ((x) < (y))
#define le_any(x, y, T, UT) ((x) <= (y))
#define gt_any(x, y, T, UT) ((x) > (y))
#define ge_any(x, y, T, UT) ((x) >= (y))
/* NaN wins, as in numpy's minimum/maximum. */
#define min_float(x, y, T, UT) (((x) < (y) || isnan(x)) ? (x) : (y))
#define max_float(x, y, T, UT) (((x) > (y) || isnan(x)) ? (x) : (y))
#define min_int(x, y, T, UT) ((x) < (y) ? (x) : (y))
#define max_int(x, y, T, UT) ((x) > (y) ? (x) : (y))
#define prelu_float(x, y, T, UT) ((x) < 0 ? (x) * (y) : (x))
#define prelu_sint(x, y, T, UT) ((x) < 0 ? (T)((uint64_t)(x) * (uint64_t)(y)) : (x))
#define prelu_uint(x, y, T, UT) ((void)(y), (x))

FLOAT_TYPES(DEF_SAME, add, float)
SINT_TYPES(DEF_SAME, add, int)
UINT_TYPES(DEF_SAME, add, int)
FLOAT_TYPES(DEF_SAME, sub, float)
SINT_TYPES(DEF_SAME, sub, int)
UINT_TYPES(DEF_SAME, sub, int)
FLOAT_TYPES(DEF_SAME, mul, float)
SINT_TYPES(DEF_SAME, mul, int)
UINT_TYPES(DEF_SAME, mul, int)
FLOAT_TYPES(DEF_SAME, div, float)
SINT_TYPES(DEF_SAME, div, sint)
UINT_TYPES(DEF_SAME, div, uint)
BINARY_ROW(pow_f32, float, float, float, powf(x, y))
BINARY_ROW(pow_f64, double, double, double, pow(x, y))
BINARY_ROW(pow_i64_i64, int64_t, int64_t, int64_t, ipow(x, y))
BINARY_ROW(pow_i64_f64, int64_t, double, int64_t, mq_double_to_int64_sat(pow((double)x, y)))
FLOAT_TYPES(DEF_SAME, fmod, float)
SINT_TYPES(DEF_SAME, fmod, sint)
UINT_TYPES(DEF_SAME, fmod, uint)
FLOAT_TYPES(DEF_SAME, mod, float)
SINT_TYPES(DEF_SAME, mod, sint)
UINT_TYPES(DEF_SAME, mod, uint)
UINT_TYPES(DEF_SAME, shl, uint)
UINT_TYPES(DEF_SAME, shr, uint)
UINT_TYPES(DEF_SAME, band, int)
UINT_TYPES(DEF_SAME, bor, int)
UINT_TYPES(DEF_SAME, bxor, int)
BINARY_ROW(land_b, uint8_t, uint8_t, uint8_t, land_bool(x, y, , ))
BINARY_ROW(lor_b, uint8_t, uint8_t, uint8_t, lor_bool(x, y, , ))
BINARY_ROW(lxor_b, uint8_t, uint8_t, uint8_t, lxor_bool(x, y, , ))
FLOAT_TYPES(DEF_BOOL, eq, any)
SINT_TYPES(DEF_BOOL, eq, any)
UINT_TYPES(DEF_BOOL, eq, any)
FLOAT_TYPES(DEF_BOOL, lt, any)
SINT_TYPES(DEF_BOOL, lt, any)
UINT_TYPES(DEF_BOOL, lt, any)
FLOAT_TYPES(DEF_BOOL, le, any)
SINT_TYPES(DEF_BOOL, le, any)
UINT_TYPES(DEF_BOOL, le, any)
FLOAT_TYPES(DEF_BOOL, gt, any)
SINT_TYPES(DEF_BOOL, gt, any)
UINT_TYPES(DEF_BOOL, gt, any)
FLOAT_TYPES(DEF_BOOL, ge, any)
SINT_TYPES(DEF_BOOL, ge, any)
UINT_TYPES(DEF_BOOL, ge, any)
FLOAT_TYPES(DEF_SAME, min, float)
SINT_TYPES(DEF_SAME, min, int)
UINT_TYPES(DEF_SAME, min, int)
FLOAT_TYPES(DEF_SAME, max, float)
SINT_TYPES(DEF_SAME, max, int)
UINT_TYPES(DEF_SAME, max, int)
FLOAT_TYPES(DEF_SAME, prelu, float)
SINT_TYPES(DEF_SAME, prelu, sint)
UINT_TYPES(DEF_SAME, prelu, uint)

#define ALL_NUMERIC(OP)                                                                        \
    FLOAT_TYPES(SLOT, OP, ~) SINT_TYPES(SLOT, OP, ~) UINT_TYPES(SLOT, OP, ~)

static const row_fn add_rows[DTYPE_SLOTS] = {ALL_NUMERIC(add)};
static const row_fn sub_rows[DTYPE_SLOTS] = {ALL_NUMERIC(sub)};
static const row_fn mul_rows[DTYPE_SLOTS] = {ALL_NUMERIC(mul)};
static const row_fn div_rows[DTYPE_SLOTS] = {ALL_NUMERIC(div)};
static const row_fn pow_rows[DTYPE_SLOTS] = {FLOAT_TYPES(SLOT, pow, ~)};
static const row_fn fmod_rows[DTYPE_SLOTS] = {ALL_NUMERIC(fmod)};
static const row_fn mod_rows[DTYPE_SLOTS] = {ALL_NUMERIC(mod)};
static const row_fn shl_rows[DTYPE_SLOTS] = {UINT_TYPES(SLOT, shl, ~)};
static const row_fn shr_rows[DTYPE_SLOTS] = {UINT_TYPES(SLOT, shr, ~)};
/* Bit operations do not care about signedness: each width shares one row. */
#define BITWISE_SLOTS(OP)                                                                      \
    [MQ_DTYPE_INT8] = OP##_u8, [MQ_DTYPE_INT16] = OP##_u16, [MQ_DTYPE_INT32] = OP##_u32,       \
    [MQ_DTYPE_INT64] = OP##_u64, UINT_TYPES(SLOT, OP, ~)
static const row_fn band_rows[DTYPE_SLOTS] = {BITWISE_SLOTS(band)};
static const row_fn bor_rows[DTYPE_SLOTS] = {BITWISE_SLOTS(bor)};
static const row_fn bxor_rows[DTYPE_SLOTS] = {BITWISE_SLOTS(bxor)};
static const row_fn land_rows[DTYPE_SLOTS] = {[MQ_DTYPE_BOOL] = land_b};
static const row_fn lor_rows[DTYPE_SLOTS] = {[MQ_DTYPE_BOOL] = lor_b};
static const row_fn lxor_rows[DTYPE_SLOTS] = {[MQ_DTYPE_BOOL] = lxor_b};
static const row_fn eq_rows[DTYPE_SLOTS] = {ALL_NUMERIC(eq)[MQ_DTYPE_BOOL] = eq_u8};
static const row_fn lt_rows[DTYPE_SLOTS] = {ALL_NUMERIC(lt)};
static const row_fn le_rows[DTYPE_SLOTS] = {ALL_NUMERIC(le)};
static const row_fn gt_rows[DTYPE_SLOTS] = {ALL_NUMERIC(gt)};
static const row_fn ge_rows[DTYPE_SLOTS] = {ALL_NUMERIC(ge)};
static const row_fn min_rows[DTYPE_SLOTS] = {ALL_NUMERIC(min)};
static const row_fn max_rows[DTYPE_SLOTS] = {ALL_NUMERIC(max)};
static const row_fn prelu_rows[DTYPE_SLOTS] = {ALL_NUMERIC(prelu)};

/* Where selects bytes, so one row per element size serves every type. */
#define WHERE_ROW(NAME, T)                                                                     \
    static void NAME(void *o_, const void *c_, const void *x_, const void *y_, int64_t n,      \
                     int64_t sc, int64_t sx, int64_t sy)                                       \
    {                                                                                          \
        T *o = o_;                                                                             \
        const uint8_t *c = c_;                                                                 \
        const T *x = x_;                                                                       \
        const T *y = y_;                                                                       \
        if (sc == 1 && sx == 1 && sy == 1) {                                                   \
            for (int64_t i = 0; i < n; i++)                                                    \
                o[i] = c[i] ? x[i] : y[i];                                                     \
        } else {                                                                               \
            for (int64_t i = 0; i < n; i++)                                                    \
                o[i] = c[i * sc] ? x[i * sx] : y[i * sy];                                      \
        }                                                                                      \
    }
WHERE_ROW(where_1, uint8_t)
WHERE_ROW(where_2, uint16_t)
WHERE_ROW(where_4, uint32_t)
WHERE_ROW(where_8, uint64_t)

/* One-operand rows for Not and BitwiseNot (same shape in and out). */
#define UNARY_BIT_ROW(NAME, T, EXPR)                                                           \
    static void NAME(void *o_, const void *a_, const void *b_, const void *c_, int64_t n,      \
                     int64_t sa, int64_t sb, int64_t sc)                                       \
    {                                                                                          \
        (void)b_, (void)c_, (void)sb, (void)sc;                                                \
        T *o = o_;                                                                             \
        const T *a = a_;                                                                       \
        for (int64_t i = 0; i < n; i++) {                                                      \
            const T x = a[i * sa];                                                             \
            o[i] = (T)(EXPR);                                                                  \
        }                                                                                      \
    }
UNARY_BIT_ROW(not_b, uint8_t, x == 0)
UNARY_BIT_ROW(bnot_u8, uint8_t, ~x)
UNARY_BIT_ROW(bnot_u16, uint16_t, ~x)
UNARY_BIT_ROW(bnot_u32, uint32_t, ~x)
UNARY_BIT_ROW(bnot_u64, uint64_t, ~x)
static const row_fn not_rows[DTYPE_SLOTS] = {[MQ_DTYPE_BOOL] = not_b};
static const row_fn bnot_rows[DTYPE_SLOTS] = {BITWISE_SLOTS(bnot)};

/* ---------------------------------------------------------------------------------------- */
/* Type conversion for float16/bfloat16 and mixed-type Pow                                   */

static int is_half(int dtype)
{
    return dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16;
}

/*
 * A copy of `in` as float32, float64 or int64 (the types the kernels
 * compute in), or back from those into any type this file handles.
 */
static int convert(const struct mq_kernel_node *node, const struct mq_tensor *in, int dtype,
                   struct mq_tensor *out, struct mq_error *err)
{
    if (mq_tensor_alloc_uninit(out, dtype, in->rank, in->dims, node->name, err))
        return MQ_ERR;
    int64_t n = in->count;
    if (n == 0)
        return MQ_OK;
    const uint16_t *h = in->data;
    switch (dtype) {
    case MQ_DTYPE_FLOAT: {
        float *o = out->data;
        if (in->dtype == MQ_DTYPE_FLOAT16)
            for (int64_t i = 0; i < n; i++)
                o[i] = mq_half_to_float(h[i]);
        else if (in->dtype == MQ_DTYPE_BFLOAT16)
            for (int64_t i = 0; i < n; i++)
                o[i] = mq_bfloat16_to_float(h[i]);
        else
            for (int64_t i = 0; i < n; i++)
                o[i] = (float)mq_tensor_get_double(in, i);
        return MQ_OK;
    }
    case MQ_DTYPE_DOUBLE: {
        double *o = out->data;
        for (int64_t i = 0; i < n; i++)
            o[i] = mq_tensor_get_double(in, i);
        return MQ_OK;
    }
    case MQ_DTYPE_INT64: {
        int64_t *o = out->data;
        for (int64_t i = 0; i < n; i++)
            o[i] = mq_tensor_get_int64(in, i);
        return MQ_OK;
    }
    case MQ_DTYPE_INT32: {
        int32_t *o = out->data;
        for (int64_t i = 0; i < n; i++)
            o[i] = (int32_t)mq_tensor_get_int64(in, i);
        return MQ_OK;
    }
    case MQ_DTYPE_FLOAT16:
    case MQ_DTYPE_BFLOAT16: {
        uint16_t *o = out->data;
        int half = dtype == MQ_DTYPE_FLOAT16;
        if (in->dtype == MQ_DTYPE_FLOAT) {
            const float *f = in->data;
            for (int64_t i = 0; i < n; i++)
                o[i] = half ? mq_float_to_half(f[i]) : mq_float_to_bfloat16(f[i]);
        } else {
            for (int64_t i = 0; i < n; i++) {
                float v = (float)mq_tensor_get_double(in, i);
                o[i] = half ? mq_float_to_half(v) : mq_float_to_bfloat16(v);
            }
        }
        return MQ_OK;
    }
    default:
        mq_tensor_free(out);
        return mq_error_set(err, "node '%s' (%s): cannot convert %s to %s", node->name,
                            node->op_type, mq_dtype_name(in->dtype), mq_dtype_name(dtype));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Binary operators                                                                          */

struct binary_op {
    const char *op_type;
    const row_fn *rows;
    int bool_out;
};

static const struct binary_op binary_ops[] = {
    {"Add", add_rows, 0},
    {"Sub", sub_rows, 0},
    {"Mul", mul_rows, 0},
    {"Div", div_rows, 0},
    {"Pow", pow_rows, 0},
    {"Mod", mod_rows, 0},
    {"BitShift", shl_rows, 0},
    {"And", land_rows, 1},
    {"Or", lor_rows, 1},
    {"Xor", lxor_rows, 1},
    {"BitwiseAnd", band_rows, 0},
    {"BitwiseOr", bor_rows, 0},
    {"BitwiseXor", bxor_rows, 0},
    {"Equal", eq_rows, 1},
    {"Less", lt_rows, 1},
    {"LessOrEqual", le_rows, 1},
    {"Greater", gt_rows, 1},
    {"GreaterOrEqual", ge_rows, 1},
    {"Not", not_rows, 0},
    {"BitwiseNot", bnot_rows, 0},
    {"PRelu", prelu_rows, 0},
};
static const struct binary_op fmod_op = {"Mod", fmod_rows, 0};
static const struct binary_op shr_op = {"BitShift", shr_rows, 0};
static const struct binary_op min_op = {"Min", min_rows, 0};
static const struct binary_op max_op = {"Max", max_rows, 0};
static const struct binary_op sum_op = {"Sum", add_rows, 0};

struct binary_state {
    const struct binary_op *op;
    /* Opset < 7 only: B is broadcast onto A when `broadcast` is 1, aligned at `axis` if set. */
    int legacy_broadcast;
    int has_axis;
    int64_t axis;
};

static int binary_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    const struct binary_op *op = NULL;
    for (size_t i = 0; i < sizeof binary_ops / sizeof binary_ops[0]; i++)
        if (strcmp(binary_ops[i].op_type, node->op_type) == 0)
            op = &binary_ops[i];
    if (!op)
        return mq_error_set(err, "node '%s' (%s): not an element-wise operator", node->name,
                            node->op_type);
    if (strcmp(node->op_type, "Mod") == 0) {
        int64_t f = mq_attr_int(node, "fmod", 0);
        if (f != 0 && f != 1)
            return mq_error_set(err, "node '%s' (%s): attribute fmod is %lld, expected 0 or 1",
                                node->name, node->op_type, (long long)f);
        if (f)
            op = &fmod_op;
    } else if (strcmp(node->op_type, "BitShift") == 0) {
        char buf[16];
        const char *dir = mq_attr_string(node, "direction", NULL, buf, sizeof buf);
        if (!dir)
            return mq_error_set(err, "node '%s' (%s): attribute direction is required",
                                node->name, node->op_type);
        if (strcmp(dir, "RIGHT") == 0)
            op = &shr_op;
        else if (strcmp(dir, "LEFT") != 0)
            return mq_error_set(err, "node '%s' (%s): attribute direction is '%s', expected "
                                "LEFT or RIGHT", node->name, node->op_type, dir);
    }
    struct binary_state *st = calloc(1, sizeof *st);
    if (!st)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    st->op = op;
    if (node->opset < 7) {
        int64_t b = mq_attr_int(node, "broadcast", 0);
        if (b != 0 && b != 1) {
            free(st);
            return mq_error_set(err, "node '%s' (%s): attribute broadcast is %lld, expected 0 "
                                "or 1", node->name, node->op_type, (long long)b);
        }
        st->legacy_broadcast = (int)b;
        st->has_axis = mq_attr_has(node, "axis");
        st->axis = mq_attr_int(node, "axis", 0);
    }
    node->state = st;
    return MQ_OK;
}

static int require_inputs(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                          int n_inputs, int needed, struct mq_error *err)
{
    for (int i = 0; i < needed; i++)
        if (i >= n_inputs || !inputs[i])
            return mq_error_set(err, "node '%s' (%s): input %d is missing", node->name,
                                node->op_type, i);
    return MQ_OK;
}

static int unsupported_type(const struct mq_kernel_node *node, int dtype, struct mq_error *err)
{
    return mq_error_set(err, "node '%s' (%s): element type %s is not supported", node->name,
                        node->op_type, mq_dtype_name(dtype));
}

static int check_same_type(const struct mq_kernel_node *node, const struct mq_tensor *a,
                           const struct mq_tensor *b, int index, struct mq_error *err)
{
    if (a->dtype != b->dtype)
        return mq_error_set(err, "node '%s' (%s): input %d has type %s, input 0 has %s",
                            node->name, node->op_type, index, mq_dtype_name(b->dtype),
                            mq_dtype_name(a->dtype));
    return MQ_OK;
}

static const char *node_label(const struct mq_kernel_node *node, char *buf, size_t size)
{
    snprintf(buf, size, "node '%s' (%s)", node->name, node->op_type);
    return buf;
}

/* Allocates out in the broadcast shape of the inputs and runs fn over it. */
static int broadcast_compute(const struct mq_kernel_node *node, int n_in,
                             const struct mq_tensor *const *in, int out_dtype, row_fn fn,
                             struct mq_tensor *out, struct mq_error *err)
{
    int rank;
    int64_t dims[MQ_MAX_RANK];
    char label[256];
    if (mq_broadcast_shape(n_in, in, &rank, dims, node_label(node, label, sizeof label), err))
        return MQ_ERR;
    if (mq_tensor_alloc_uninit(out, out_dtype, rank, dims, node->name, err))
        return MQ_ERR;
    mq_broadcast_loop_run(n_in, in, out, fn, NULL);
    return MQ_OK;
}

/* a OP b with the op's row table, widening half types to float32 around it. */
static int binary_compute(const struct mq_kernel_node *node, const struct binary_op *op,
                          const struct mq_tensor *a, const struct mq_tensor *b,
                          struct mq_tensor *out, struct mq_error *err)
{
    if (check_same_type(node, a, b, 1, err))
        return MQ_ERR;
    int dtype = a->dtype;
    if (is_half(dtype)) {
        if (!op->rows[MQ_DTYPE_FLOAT])
            return unsupported_type(node, dtype, err);
        struct mq_tensor fa = {0}, fb = {0}, fo = {0};
        int rc = convert(node, a, MQ_DTYPE_FLOAT, &fa, err);
        if (!rc)
            rc = convert(node, b, MQ_DTYPE_FLOAT, &fb, err);
        if (!rc)
            rc = binary_compute(node, op, &fa, &fb, &fo, err);
        mq_tensor_free(&fa);
        mq_tensor_free(&fb);
        if (!rc) {
            if (op->bool_out)
                mq_tensor_move(out, &fo);
            else
                rc = convert(node, &fo, dtype, out, err);
        }
        mq_tensor_free(&fo);
        return rc;
    }
    if (dtype < 0 || dtype >= DTYPE_SLOTS || !op->rows[dtype])
        return unsupported_type(node, dtype, err);
    const struct mq_tensor *in[2] = {a, b};
    return broadcast_compute(node, 2, in, op->bool_out ? MQ_DTYPE_BOOL : dtype, op->rows[dtype],
                             out, err);
}

/*
 * Opset < 7 with broadcast=1 and an axis: B's dims sit at A's axes
 * [axis, axis + rank(B)); a view padded with 1s turns that into numpy form.
 */
static int legacy_view(const struct mq_kernel_node *node, const struct binary_state *st,
                       const struct mq_tensor *a, const struct mq_tensor *b,
                       struct mq_tensor *view, struct mq_error *err)
{
    mq_tensor_view(view, b);
    if (!st->legacy_broadcast || !st->has_axis)
        return MQ_OK;
    int64_t axis = st->axis < 0 ? st->axis + a->rank : st->axis;
    if (axis < 0 || axis + b->rank > a->rank)
        return mq_error_set(err, "node '%s' (%s): axis %lld does not fit input B of rank %d "
                            "into input A of rank %d", node->name, node->op_type,
                            (long long)st->axis, b->rank, a->rank);
    view->rank = a->rank;
    for (int d = 0; d < a->rank; d++)
        view->dims[d] = (d >= axis && d < axis + b->rank) ? b->dims[d - axis] : 1;
    return MQ_OK;
}

/* Checks that A and B are present and views B as the operand A combines with (legacy_view). */
static int binary_operands(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                           int n_inputs, struct mq_tensor *bview, struct mq_error *err)
{
    if (require_inputs(node, inputs, n_inputs, 2, err))
        return MQ_ERR;
    return legacy_view(node, node->state, inputs[0], inputs[1], bview, err);
}

static int binary_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct binary_state *st = node->state;
    struct mq_tensor bview;
    if (binary_operands(node, inputs, n_inputs, &bview, err))
        return MQ_ERR;
    return binary_compute(node, st->op, inputs[0], &bview, &outputs[0], err);
}

/*
 * Pow lets the exponent's type differ from the base's (opset 12).  Float
 * bases compute in their own type (half in float32); integer bases compute
 * in int64, by repeated squaring for integer exponents.
 */
static int pow_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct binary_state *st = node->state;
    if (require_inputs(node, inputs, n_inputs, 2, err))
        return MQ_ERR;
    const struct mq_tensor *a = inputs[0];
    struct mq_tensor bview;
    if (legacy_view(node, st, a, inputs[1], &bview, err))
        return MQ_ERR;
    int bt = bview.dtype;
    if (mq_dtype_size(bt) == 0 || bt == MQ_DTYPE_BOOL)
        return unsupported_type(node, bt, err);
    if (a->dtype == bt && (bt == MQ_DTYPE_FLOAT || bt == MQ_DTYPE_DOUBLE))
        return binary_compute(node, st->op, a, &bview, &outputs[0], err);

    int work_a, work_b;
    const struct binary_op *op;
    static const row_fn pow_int_int[DTYPE_SLOTS] = {[MQ_DTYPE_INT64] = pow_i64_i64};
    static const row_fn pow_int_float[DTYPE_SLOTS] = {[MQ_DTYPE_INT64] = pow_i64_f64};
    static const struct binary_op ii = {"Pow", pow_int_int, 0};
    static const struct binary_op id = {"Pow", pow_int_float, 0};
    switch (a->dtype) {
    case MQ_DTYPE_FLOAT:
    case MQ_DTYPE_DOUBLE:
        work_a = work_b = a->dtype;
        op = st->op;
        break;
    case MQ_DTYPE_FLOAT16:
    case MQ_DTYPE_BFLOAT16:
        work_a = work_b = MQ_DTYPE_FLOAT;
        op = st->op;
        break;
    case MQ_DTYPE_INT32:
    case MQ_DTYPE_INT64:
        work_a = MQ_DTYPE_INT64;
        work_b = mq_dtype_is_float(bt) ? MQ_DTYPE_DOUBLE : MQ_DTYPE_INT64;
        op = work_b == MQ_DTYPE_DOUBLE ? &id : &ii;
        break;
    default:
        return unsupported_type(node, a->dtype, err);
    }
    struct mq_tensor wa = {0}, wb = {0}, wo = {0};
    int rc = MQ_OK;
    if (work_a == a->dtype)
        mq_tensor_view(&wa, a);
    else
        rc = convert(node, a, work_a, &wa, err);
    if (!rc)
        rc = convert(node, &bview, work_b, &wb, err);
    if (!rc) {
        const struct mq_tensor *in[2] = {&wa, &wb};
        rc = broadcast_compute(node, 2, in, work_a, op->rows[work_a], &wo, err);
    }
    if (!rc) {
        if (work_a == a->dtype)
            mq_tensor_move(&outputs[0], &wo);
        else
            rc = convert(node, &wo, a->dtype, &outputs[0], err);
    }
    mq_tensor_free(&wa);
    mq_tensor_free(&wb);
    mq_tensor_free(&wo);
    return rc;
}

/* Not and BitwiseNot: one operand, same shape out. */
static int unary_bit_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct binary_state *st = node->state;
    if (require_inputs(node, inputs, n_inputs, 1, err))
        return MQ_ERR;
    int dtype = inputs[0]->dtype;
    if (dtype < 0 || dtype >= DTYPE_SLOTS || !st->op->rows[dtype])
        return unsupported_type(node, dtype, err);
    return broadcast_compute(node, 1, inputs, dtype, st->op->rows[dtype], &outputs[0], err);
}

/* ---------------------------------------------------------------------------------------- */
/* PRelu                                                                                     */

static int prelu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct binary_state *st = node->state;
    if (require_inputs(node, inputs, n_inputs, 2, err))
        return MQ_ERR;
    const struct mq_tensor *x = inputs[0];
    struct mq_tensor slope;
    mq_tensor_view(&slope, inputs[1]);
    /*
     * Before opset 7 a 1-D slope holds one value per channel (axis 1), the
     * layout of every model of that time; numpy alignment would put it on
     * the last axis instead.
     */
    if (node->opset < 7 && slope.rank == 1 && x->rank > 2 && slope.dims[0] != 1 &&
        slope.dims[0] == x->dims[1]) {
        slope.rank = x->rank - 1;
        for (int d = 1; d < slope.rank; d++)
            slope.dims[d] = 1;
    }
    int rank;
    int64_t dims[MQ_MAX_RANK];
    char label[256];
    const struct mq_tensor *in[2] = {x, &slope};
    if (mq_broadcast_shape(2, in, &rank, dims, node_label(node, label, sizeof label), err))
        return MQ_ERR;
    char xs[256], ss[256];
    if (rank != x->rank || memcmp(dims, x->dims, sizeof dims[0] * (size_t)rank) != 0)
        return mq_error_set(err, "node '%s' (%s): slope of shape %s does not broadcast to X's "
                            "shape %s", node->name, node->op_type,
                            mq_shape_format(inputs[1]->rank, inputs[1]->dims, ss, sizeof ss),
                            mq_shape_format(x->rank, x->dims, xs, sizeof xs));
    return binary_compute(node, st->op, x, &slope, &outputs[0], err);
}

/* ---------------------------------------------------------------------------------------- */
/* Where                                                                                     */

static int where_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (require_inputs(node, inputs, n_inputs, 3, err))
        return MQ_ERR;
    if (inputs[0]->dtype != MQ_DTYPE_BOOL)
        return mq_error_set(err, "node '%s' (%s): condition has type %s, expected bool",
                            node->name, node->op_type, mq_dtype_name(inputs[0]->dtype));
    if (check_same_type(node, inputs[1], inputs[2], 2, err))
        return MQ_ERR;
    int dtype = inputs[1]->dtype;
    row_fn fn;
    switch (mq_dtype_size(dtype)) {
    case 1: fn = where_1; break;
    case 2: fn = where_2; break;
    case 4: fn = where_4; break;
    case 8: fn = where_8; break;
    default: return unsupported_type(node, dtype, err);
    }
    return broadcast_compute(node, 3, inputs, dtype, fn, &outputs[0], err);
}

/* ---------------------------------------------------------------------------------------- */
/* Variadic Min, Max, Sum, Mean                                                              */

struct variadic_state {
    const struct binary_op *op;
    int mean;
};

static int variadic_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct variadic_state *st = calloc(1, sizeof *st);
    if (!st)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    if (strcmp(node->op_type, "Min") == 0)
        st->op = &min_op;
    else if (strcmp(node->op_type, "Max") == 0)
        st->op = &max_op;
    else
        st->op = &sum_op;
    st->mean = strcmp(node->op_type, "Mean") == 0;
    node->state = st;
    return MQ_OK;
}

/* Widens a half input into *tmp and returns it, or returns the input itself. */
static const struct mq_tensor *working_copy(const struct mq_kernel_node *node,
                                            const struct mq_tensor *in, struct mq_tensor *tmp,
                                            struct mq_error *err)
{
    if (!is_half(in->dtype))
        return in;
    return convert(node, in, MQ_DTYPE_FLOAT, tmp, err) ? NULL : tmp;
}

static int variadic_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct variadic_state *st = node->state;
    if (n_inputs < 1)
        return mq_error_set(err, "node '%s' (%s): needs at least one input", node->name,
                            node->op_type);
    if (require_inputs(node, inputs, n_inputs, n_inputs, err))
        return MQ_ERR;
    int dtype = inputs[0]->dtype;
    for (int i = 1; i < n_inputs; i++)
        if (check_same_type(node, inputs[0], inputs[i], i, err))
            return MQ_ERR;
    int work = is_half(dtype) ? MQ_DTYPE_FLOAT : dtype;
    if (work < 0 || work >= DTYPE_SLOTS || !st->op->rows[work] ||
        (st->mean && !mq_dtype_is_float(work)))
        return unsupported_type(node, dtype, err);
    if (n_inputs == 1)
        return mq_tensor_copy(&outputs[0], inputs[0], node->name, err);

    int rank;
    int64_t dims[MQ_MAX_RANK];
    char label[256];
    if (mq_broadcast_shape(n_inputs, inputs, &rank, dims, node_label(node, label, sizeof label),
                           err))
        return MQ_ERR;
    struct mq_tensor acc = {0}, t0 = {0}, t1 = {0};
    int rc = mq_tensor_alloc_uninit(&acc, work, rank, dims, node->name, err);
    /* acc = in0 op in1 (which writes all of it), then acc = acc op in_k. */
    for (int k = 1; !rc && k < n_inputs; k++) {
        const struct mq_tensor *left = &acc;
        if (k == 1 && !(left = working_copy(node, inputs[0], &t0, err)))
            rc = MQ_ERR;
        const struct mq_tensor *right = rc ? NULL : working_copy(node, inputs[k], &t1, err);
        if (!right)
            rc = MQ_ERR;
        if (!rc) {
            const struct mq_tensor *in[2] = {left, right};
            mq_broadcast_loop_run(2, in, &acc, st->op->rows[work], NULL);
        }
        mq_tensor_free(&t0);
        mq_tensor_free(&t1);
    }
    if (!rc && st->mean) {
        if (work == MQ_DTYPE_FLOAT) {
            float *p = acc.data, scale = 1.0f / (float)n_inputs;
            for (int64_t i = 0; i < acc.count; i++)
                p[i] *= scale;
        } else {
            double *p = acc.data;
            for (int64_t i = 0; i < acc.count; i++)
                p[i] /= n_inputs;
        }
    }
    if (!rc) {
        if (work != dtype)
            rc = convert(node, &acc, dtype, &outputs[0], err);
        else
            mq_tensor_move(&outputs[0], &acc);
    }
    mq_tensor_free(&acc);
    return rc;
}

static void free_state(void *state) { free(state); }

/* ---------------------------------------------------------------------------------------- */
/* Add and Sum fused with Relu                                                               */

#define RELU_ROW(NAME, T)                                                                      \
    static void NAME(void *o_, int64_t n)                                                      \
    {                                                                                          \
        T *restrict o = o_;                                                                    \
        for (int64_t i = 0; i < n; i++)                                                        \
            o[i] = o[i] < 0 ? (T)0 : o[i];                                                     \
    }
RELU_ROW(relu_row_f32, float)
RELU_ROW(relu_row_f64, double)
RELU_ROW(relu_row_i8, int8_t)
RELU_ROW(relu_row_i16, int16_t)
RELU_ROW(relu_row_i32, int32_t)
RELU_ROW(relu_row_i64, int64_t)

/* Relu on bfloat16/float16 bits: negative non-zero, non-NaN values become +0. */
static void relu_half_bits(uint16_t *p, int64_t n, uint16_t nan_above)
{
    for (int64_t i = 0; i < n; i++) {
        unsigned magnitude = p[i] & 0x7fffu;
        if ((p[i] & 0x8000u) && magnitude != 0 && magnitude <= nan_above)
            p[i] = 0;
    }
}

/* Relu over a whole tensor; unsigned and bool values are left as they are. */
static void relu_tensor(struct mq_tensor *t)
{
    switch (t->dtype) {
    case MQ_DTYPE_FLOAT: relu_row_f32(t->data, t->count); break;
    case MQ_DTYPE_DOUBLE: relu_row_f64(t->data, t->count); break;
    case MQ_DTYPE_INT8: relu_row_i8(t->data, t->count); break;
    case MQ_DTYPE_INT16: relu_row_i16(t->data, t->count); break;
    case MQ_DTYPE_INT32: relu_row_i32(t->data, t->count); break;
    case MQ_DTYPE_INT64: relu_row_i64(t->data, t->count); break;
    case MQ_DTYPE_FLOAT16: relu_half_bits(t->data, t->count, 0x7c00u); break;
    case MQ_DTYPE_BFLOAT16: relu_half_bits(t->data, t->count, 0x7f80u); break;
    default: break;
    }
}

/*
 * relu(a + b): float32 and float64 in one pass over the output, with the
 * Relu on each row while it is in cache; other types through the plain
 * kernel and a Relu pass.
 */
static int add_relu_compute(const struct mq_kernel_node *node, const struct mq_tensor *a,
                            const struct mq_tensor *b, struct mq_tensor *out, struct mq_error *err)
{
    if (a->dtype == b->dtype && (a->dtype == MQ_DTYPE_FLOAT || a->dtype == MQ_DTYPE_DOUBLE)) {
        const struct mq_tensor *in[2] = {a, b};
        int rank;
        int64_t dims[MQ_MAX_RANK];
        char label[256];
        if (mq_broadcast_shape(2, in, &rank, dims, node_label(node, label, sizeof label), err) ||
            mq_tensor_alloc_uninit(out, a->dtype, rank, dims, node->name, err))
            return MQ_ERR;
        mq_broadcast_loop_run(2, in, out, add_rows[a->dtype],
                              a->dtype == MQ_DTYPE_FLOAT ? relu_row_f32 : relu_row_f64);
        return MQ_OK;
    }
    static const struct binary_op add_op = {"Add", add_rows, 0};
    if (binary_compute(node, &add_op, a, b, out, err))
        return MQ_ERR;
    relu_tensor(out);
    return MQ_OK;
}

static int add_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    struct mq_tensor bview;
    if (binary_operands(node, inputs, n_inputs, &bview, err))
        return MQ_ERR;
    return add_relu_compute(node, inputs[0], &bview, &outputs[0], err);
}

static int sum_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (n_inputs == 2 && inputs[0] && inputs[1])
        return add_relu_compute(node, inputs[0], inputs[1], &outputs[0], err);
    if (variadic_run(node, exec, inputs, n_inputs, outputs, n_outputs, err))
        return MQ_ERR;
    relu_tensor(&outputs[0]);
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------- */

#define BIN(op, since, until) {"", op, since, until, binary_prepare, binary_run, free_state}
#define POW(since, until) {"", "Pow", since, until, binary_prepare, pow_run, free_state}
#define NOT(op, since, until) {"", op, since, until, binary_prepare, unary_bit_run, free_state}
#define PRELU(since, until) {"", "PRelu", since, until, binary_prepare, prelu_run, free_state}
#define VAR(op, since, until) {"", op, since, until, variadic_prepare, variadic_run, free_state}

/* One entry per opset range whose attributes, inputs or type lists differ. */
const struct mq_kernel mq_kernels_elementwise[] = {
    BIN("Add", 1, 5), BIN("Add", 6, 6), BIN("Add", 7, 12), BIN("Add", 13, 13), BIN("Add", 14, 0),
    BIN("Sub", 1, 5), BIN("Sub", 6, 6), BIN("Sub", 7, 12), BIN("Sub", 13, 13), BIN("Sub", 14, 0),
    BIN("Mul", 1, 5), BIN("Mul", 6, 6), BIN("Mul", 7, 12), BIN("Mul", 13, 13), BIN("Mul", 14, 0),
    BIN("Div", 1, 5), BIN("Div", 6, 6), BIN("Div", 7, 12), BIN("Div", 13, 13), BIN("Div", 14, 0),
    POW(1, 6), POW(7, 11), POW(12, 12), POW(13, 14), POW(15, 0),
    BIN("Mod", 10, 12), BIN("Mod", 13, 0),
    BIN("BitShift", 11, 0),
    BIN("And", 1, 6), BIN("And", 7, 0),
    BIN("Or", 1, 6), BIN("Or", 7, 0),
    BIN("Xor", 1, 6), BIN("Xor", 7, 0),
    NOT("Not", 1, 0),
    BIN("BitwiseAnd", 18, 0), BIN("BitwiseOr", 18, 0), BIN("BitwiseXor", 18, 0),
    NOT("BitwiseNot", 18, 0),
    BIN("Equal", 1, 6), BIN("Equal", 7, 10), BIN("Equal", 11, 12), BIN("Equal", 13, 18),
    BIN("Equal", 19, 0),
    BIN("Less", 1, 6), BIN("Less", 7, 8), BIN("Less", 9, 12), BIN("Less", 13, 0),
    BIN("Greater", 1, 6), BIN("Greater", 7, 8), BIN("Greater", 9, 12), BIN("Greater", 13, 0),
    BIN("LessOrEqual", 12, 15), BIN("LessOrEqual", 16, 0),
    BIN("GreaterOrEqual", 12, 15), BIN("GreaterOrEqual", 16, 0),
    {"", "Where", 9, 15, NULL, where_run, NULL}, {"", "Where", 16, 0, NULL, where_run, NULL},
    VAR("Min", 1, 5), VAR("Min", 6, 7), VAR("Min", 8, 11), VAR("Min", 12, 12), VAR("Min", 13, 0),
    VAR("Max", 1, 5), VAR("Max", 6, 7), VAR("Max", 8, 11), VAR("Max", 12, 12), VAR("Max", 13, 0),
    VAR("Sum", 1, 5), VAR("Sum", 6, 7), VAR("Sum", 8, 12), VAR("Sum", 13, 0),
    VAR("Mean", 1, 5), VAR("Mean", 6, 7), VAR("Mean", 8, 12), VAR("Mean", 13, 0),
    PRELU(1, 5), PRELU(6, 6), PRELU(7, 8), PRELU(9, 15), PRELU(16, 0),
    {0},
};

const struct mq_kernel mq_kernel_add_relu = {"", "Add", 1, 0, binary_prepare, add_relu_run,
                                             free_state};
const struct mq_kernel mq_kernel_sum_relu = {"", "Sum", 1, 0, variadic_prepare, sum_relu_run,
                                             free_state};
