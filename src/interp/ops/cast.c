/* Cast and CastLike, and the element conversion other kernels reuse (cast.h). */
#include "interp/ops/cast.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "interp/kernel.h"
#include "interp/ops/shape_util.h"

/*
 * Float to integer.  C leaves out-of-range conversions undefined; onnxruntime
 * uses plain static_cast, which on x86-64 compiles to cvttsd2si: NaN and
 * out-of-range values give the "integer indefinite" (the most negative
 * value), narrower types are converted through int32 and keep the low bits,
 * uint32 goes through int64.  We reproduce that so calibration sees what
 * onnxruntime would compute.
 */
static inline int64_t trunc_i64(double v)
{
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)v;
}

static inline int32_t trunc_i32(double v)
{
    if (!(v > -2147483649.0 && v < 2147483648.0))
        return INT32_MIN;
    return (int32_t)v;
}

/* Compilers lower double -> uint64 as a signed conversion of v or of v - 2^63. */
static inline uint64_t trunc_u64(double v)
{
    if (v >= 9223372036854775808.0)
        return (uint64_t)trunc_i64(v - 9223372036854775808.0) ^ UINT64_C(0x8000000000000000);
    return (uint64_t)trunc_i64(v);
}

#define F2_INT8(v) ((int8_t)(uint8_t)(uint32_t)trunc_i32(v))
#define F2_UINT8(v) ((uint8_t)(uint32_t)trunc_i32(v))
#define F2_INT16(v) ((int16_t)(uint16_t)(uint32_t)trunc_i32(v))
#define F2_UINT16(v) ((uint16_t)(uint32_t)trunc_i32(v))
#define F2_INT32(v) trunc_i32(v)
#define F2_UINT32(v) ((uint32_t)(uint64_t)trunc_i64(v))
#define F2_INT64(v) trunc_i64(v)
#define F2_UINT64(v) trunc_u64(v)

/* Source kind I (integers, bool) converts with C's modular rules, kind F through the above. */
#define CONV_I(DT, F2, v) ((DT)(v))
#define CONV_F(DT, F2, v) F2((double)(v))

#define CAST_LOOP(DT, EXPR)                                                                        \
    do {                                                                                           \
        DT *d = (DT *)dst;                                                                         \
        for (int64_t i = 0; i < count; i++)                                                        \
            d[i] = EXPR;                                                                           \
    } while (0)

#define CAST_DST_CASES(K)                                                                          \
    case MQ_DTYPE_FLOAT: CAST_LOOP(float, (float)s[i]); return 0;                                  \
    case MQ_DTYPE_DOUBLE: CAST_LOOP(double, (double)s[i]); return 0;                               \
    case MQ_DTYPE_BOOL: CAST_LOOP(uint8_t, (uint8_t)(s[i] != 0)); return 0;                        \
    case MQ_DTYPE_INT8: CAST_LOOP(int8_t, CONV_##K(int8_t, F2_INT8, s[i])); return 0;              \
    case MQ_DTYPE_UINT8: CAST_LOOP(uint8_t, CONV_##K(uint8_t, F2_UINT8, s[i])); return 0;          \
    case MQ_DTYPE_INT16: CAST_LOOP(int16_t, CONV_##K(int16_t, F2_INT16, s[i])); return 0;          \
    case MQ_DTYPE_UINT16: CAST_LOOP(uint16_t, CONV_##K(uint16_t, F2_UINT16, s[i])); return 0;      \
    case MQ_DTYPE_INT32: CAST_LOOP(int32_t, CONV_##K(int32_t, F2_INT32, s[i])); return 0;          \
    case MQ_DTYPE_UINT32: CAST_LOOP(uint32_t, CONV_##K(uint32_t, F2_UINT32, s[i])); return 0;      \
    case MQ_DTYPE_INT64: CAST_LOOP(int64_t, CONV_##K(int64_t, F2_INT64, s[i])); return 0;          \
    case MQ_DTYPE_UINT64: CAST_LOOP(uint64_t, CONV_##K(uint64_t, F2_UINT64, s[i])); return 0;      \
    default: return -1;

#define CAST_SRC_CASE(SD, ST, K)                                                                   \
    case SD: {                                                                                     \
        const ST *s = (const ST *)src;                                                             \
        switch (dst_dtype) { CAST_DST_CASES(K) }                                                   \
    }

/* Conversions between the types C has (everything but float16 and bfloat16). */
static int cast_plain(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t count)
{
    switch (src_dtype) {
    CAST_SRC_CASE(MQ_DTYPE_FLOAT, float, F)
    CAST_SRC_CASE(MQ_DTYPE_DOUBLE, double, F)
    CAST_SRC_CASE(MQ_DTYPE_BOOL, uint8_t, I)
    CAST_SRC_CASE(MQ_DTYPE_INT8, int8_t, I)
    CAST_SRC_CASE(MQ_DTYPE_UINT8, uint8_t, I)
    CAST_SRC_CASE(MQ_DTYPE_INT16, int16_t, I)
    CAST_SRC_CASE(MQ_DTYPE_UINT16, uint16_t, I)
    CAST_SRC_CASE(MQ_DTYPE_INT32, int32_t, I)
    CAST_SRC_CASE(MQ_DTYPE_UINT32, uint32_t, I)
    CAST_SRC_CASE(MQ_DTYPE_INT64, int64_t, I)
    CAST_SRC_CASE(MQ_DTYPE_UINT64, uint64_t, I)
    default: return -1;
    }
}

static int is_half(int dtype)
{
    return dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16;
}

/* The types C has plus float16 and bfloat16: what cast_native converts. */
static int native_type(int dtype)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    return i && i->size > 0 && i->kind != MQ_KIND_SMALL_FLOAT && i->storage == dtype;
}

int mq_cast_supported(int dtype)
{
    const struct mq_dtype_info *i = mq_dtype_info(dtype);
    return i && i->size > 0;
}

enum { CAST_CHUNK = 1024 };

static int cast_native(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t count)
{
    if (!native_type(dst_dtype) || !native_type(src_dtype))
        return -1;
    if (count <= 0)
        return 0;
    if (dst_dtype == src_dtype) {
        memcpy(dst, src, (size_t)count * mq_dtype_size(src_dtype));
        return 0;
    }
    if (!is_half(src_dtype) && !is_half(dst_dtype))
        return cast_plain(dst, dst_dtype, src, src_dtype, count);

    /* The 16-bit floats are staged through float32 a chunk at a time. */
    size_t src_size = mq_dtype_size(src_dtype), dst_size = mq_dtype_size(dst_dtype);
    float buf[CAST_CHUNK];
    for (int64_t off = 0; off < count; off += CAST_CHUNK) {
        int64_t n = count - off < CAST_CHUNK ? count - off : CAST_CHUNK;
        const char *s = (const char *)src + (size_t)off * src_size;
        char *d = (char *)dst + (size_t)off * dst_size;
        if (src_dtype == MQ_DTYPE_FLOAT16) {
            const uint16_t *h = (const uint16_t *)s;
            for (int64_t i = 0; i < n; i++)
                buf[i] = mq_half_to_float(h[i]);
        } else if (src_dtype == MQ_DTYPE_BFLOAT16) {
            const uint16_t *h = (const uint16_t *)s;
            for (int64_t i = 0; i < n; i++)
                buf[i] = mq_bfloat16_to_float(h[i]);
        } else if (dst_dtype == MQ_DTYPE_FLOAT16 || dst_dtype == MQ_DTYPE_BFLOAT16) {
            if (cast_plain(buf, MQ_DTYPE_FLOAT, s, src_dtype, n))
                return -1;
        }
        if (dst_dtype == MQ_DTYPE_FLOAT16) {
            uint16_t *h = (uint16_t *)d;
            for (int64_t i = 0; i < n; i++)
                h[i] = mq_float_to_half(buf[i]);
        } else if (dst_dtype == MQ_DTYPE_BFLOAT16) {
            uint16_t *h = (uint16_t *)d;
            for (int64_t i = 0; i < n; i++)
                h[i] = mq_float_to_bfloat16(buf[i]);
        } else if (cast_plain(d, dst_dtype, buf, MQ_DTYPE_FLOAT, n)) {
            return -1;
        }
    }
    return 0;
}

/*
 * The small floats and the narrow integers go through a native type a chunk at a time: small
 * float codes decode to float32; narrow integers are held as int8/uint8 already.  Into a small
 * float the values are made float32 and encoded; into a narrow integer they are made int32 as
 * for int8 (truncation toward zero, modular) and wrapped to the type's width.
 */
int mq_cast_elements_mode(void *dst, int dst_dtype, const void *src, int src_dtype,
                          int64_t count, int saturate, int round_mode)
{
    if (!mq_cast_supported(dst_dtype) || !mq_cast_supported(src_dtype))
        return -1;
    if (native_type(dst_dtype) && native_type(src_dtype))
        return cast_native(dst, dst_dtype, src, src_dtype, count);
    if (dst_dtype == src_dtype) {
        memcpy(dst, src, (size_t)count * mq_dtype_size(src_dtype));
        return 0;
    }
    const struct mq_dtype_info *si = mq_dtype_info(src_dtype), *di = mq_dtype_info(dst_dtype);
    float fbuf[CAST_CHUNK];
    int32_t ibuf[CAST_CHUNK];
    for (int64_t off = 0; off < count; off += CAST_CHUNK) {
        int64_t n = count - off < CAST_CHUNK ? count - off : CAST_CHUNK;
        const void *s = (const char *)src + (size_t)off * si->size;
        int stage = si->storage;
        if (si->kind == MQ_KIND_SMALL_FLOAT) {
            for (int64_t i = 0; i < n; i++)
                fbuf[i] = mq_small_float_decode(src_dtype, ((const uint8_t *)s)[i]);
            s = fbuf;
            stage = MQ_DTYPE_FLOAT;
        }
        void *d = (char *)dst + (size_t)off * di->size;
        if (di->kind == MQ_KIND_SMALL_FLOAT) {
            const float *f = s;
            if (stage != MQ_DTYPE_FLOAT) {
                if (cast_native(fbuf, MQ_DTYPE_FLOAT, s, stage, n))
                    return -1;
                f = fbuf;
            }
            for (int64_t i = 0; i < n; i++)
                ((uint8_t *)d)[i] = mq_small_float_encode(dst_dtype, f[i], saturate, round_mode);
        } else if (di->storage != dst_dtype) {
            if (cast_native(ibuf, MQ_DTYPE_INT32, s, stage, n))
                return -1;
            unsigned shift = 32 - di->bits;
            for (int64_t i = 0; i < n; i++) {
                uint32_t low = (uint32_t)ibuf[i] << shift; /* keep the type's bits */
                ((uint8_t *)d)[i] = di->kind == MQ_KIND_INT
                                        ? (uint8_t)(int8_t)((int32_t)low >> shift)
                                        : (uint8_t)(low >> shift);
            }
        } else if (cast_native(d, dst_dtype, s, stage, n)) {
            return -1;
        }
    }
    return 0;
}

int mq_cast_elements(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t count)
{
    return mq_cast_elements_mode(dst, dst_dtype, src, src_dtype, count, 1, MQ_ROUND_UP);
}

/* ---- Cast ------------------------------------------------------------------------------- */

struct cast_state {
    int to;
    int saturate;   /* Cast-19: float8 targets clamp to their largest finite value */
    int round_mode; /* Cast-25: float8e8m0 targets (enum mq_round_mode) */
};

/* Cast-25's round_mode names. */
static const struct { const char *name; int mode; } round_modes[] = {
    {"up", MQ_ROUND_UP}, {"down", MQ_ROUND_DOWN}, {"nearest", MQ_ROUND_NEAREST},
};

static int read_cast_modes(const struct mq_kernel_node *node, struct cast_state *st,
                           struct mq_error *err)
{
    st->saturate = node->opset >= 19 ? mq_attr_int(node, "saturate", 1) != 0 : 1;
    st->round_mode = MQ_ROUND_UP;
    char buf[16];
    const char *rm = mq_attr_string(node, "round_mode", "up", buf, sizeof buf);
    for (size_t i = 0; i < sizeof round_modes / sizeof round_modes[0]; i++)
        if (strcmp(rm, round_modes[i].name) == 0) {
            st->round_mode = round_modes[i].mode;
            return MQ_OK;
        }
    return ops_fail(node, err, "attribute 'round_mode' = '%s' is not up, down or nearest", rm);
}

/* Cast-1 named the target type with a string ("FLOAT", "INT64", ...). */
static int dtype_from_name(const char *name)
{
    static const struct { const char *name; int dtype; } names[] = {
        {"FLOAT", MQ_DTYPE_FLOAT},   {"UINT8", MQ_DTYPE_UINT8},     {"INT8", MQ_DTYPE_INT8},
        {"UINT16", MQ_DTYPE_UINT16}, {"INT16", MQ_DTYPE_INT16},     {"INT32", MQ_DTYPE_INT32},
        {"INT64", MQ_DTYPE_INT64},   {"STRING", MQ_DTYPE_STRING},   {"BOOL", MQ_DTYPE_BOOL},
        {"FLOAT16", MQ_DTYPE_FLOAT16}, {"DOUBLE", MQ_DTYPE_DOUBLE}, {"UINT32", MQ_DTYPE_UINT32},
        {"UINT64", MQ_DTYPE_UINT64}, {"BFLOAT16", MQ_DTYPE_BFLOAT16},
    };
    /* later types are only named by number (Cast-6 and on) */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *a = names[i].name, *b = name;
        while (*a && toupper((unsigned char)*b) == *a) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return names[i].dtype;
    }
    return -1;
}

static int check_target(const struct mq_kernel_node *node, int to, struct mq_error *err)
{
    if (to == MQ_DTYPE_STRING)
        return ops_fail(node, err, "casting to string is not supported");
    if (!mq_cast_supported(to))
        return ops_fail(node, err, "target type %s is not supported", mq_dtype_name(to));
    return MQ_OK;
}

static int cast_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, "to");
    if (!a)
        return ops_fail(node, err, "attribute 'to' is required");
    int to;
    if (a->has_s || (a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)) {
        char buf[32];
        const char *name = mq_attr_string(node, "to", "", buf, sizeof buf);
        to = dtype_from_name(name);
        if (to < 0)
            return ops_fail(node, err, "attribute 'to' names an unknown type '%s'", name);
    } else {
        int64_t v = mq_attr_int(node, "to", 0);
        if (v < 0 || v > 64)
            return ops_fail(node, err, "attribute 'to' = %lld is not a tensor element type",
                            (long long)v);
        to = (int)v;
    }
    if (check_target(node, to, err))
        return MQ_ERR;
    struct cast_state *st = malloc(sizeof *st);
    if (!st)
        return ops_fail(node, err, "out of memory");
    st->to = to;
    if (read_cast_modes(node, st, err)) {
        free(st);
        return MQ_ERR;
    }
    node->state = st;
    return MQ_OK;
}

static int cast_to(const struct mq_kernel_node *node, const struct mq_tensor *x, int to,
                   const struct cast_state *mode, struct mq_tensor *out, struct mq_error *err)
{
    if (x->dtype == MQ_DTYPE_STRING)
        return ops_fail(node, err, "casting from string is not supported");
    if (!mq_cast_supported(x->dtype))
        return ops_fail(node, err, "input '%s' has unsupported type %s", ops_input_name(node, 0),
                        mq_dtype_name(x->dtype));
    if (ops_alloc(node, out, to, x->rank, x->dims, err))
        return MQ_ERR;
    if (mq_cast_elements_mode(out->data, to, x->data, x->dtype, x->count, mode->saturate,
                              mode->round_mode))
        return ops_fail(node, err, "cannot cast %s to %s", mq_dtype_name(x->dtype),
                        mq_dtype_name(to));
    return MQ_OK;
}

static int cast_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct cast_state *st = node->state;
    const struct mq_tensor *x = ops_input(inputs, n_inputs, 0);
    if (!x)
        return ops_fail(node, err, "required input 0 is missing");
    return cast_to(node, x, st->to, st, &outputs[0], err);
}

static int castlike_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct cast_state *st = malloc(sizeof *st);
    if (!st)
        return ops_fail(node, err, "out of memory");
    st->to = 0;
    if (read_cast_modes(node, st, err)) {
        free(st);
        return MQ_ERR;
    }
    node->state = st;
    return MQ_OK;
}

static int castlike_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_tensor *x = ops_input(inputs, n_inputs, 0);
    const struct mq_tensor *like = ops_input(inputs, n_inputs, 1);
    if (!x || !like)
        return ops_fail(node, err, "inputs 'input' and 'target_type' are both required");
    if (check_target(node, like->dtype, err))
        return MQ_ERR;
    return cast_to(node, x, like->dtype, node->state, &outputs[0], err);
}

/*
 * Cast-1 takes `to` as a string, Cast-6 as an int; Cast-19 adds `saturate` (float8 targets),
 * Cast-25 `round_mode` (float8e8m0 targets).
 */
const struct mq_kernel mq_kernels_cast[] = {
    {"", "Cast", 1, 5, cast_prepare, cast_run, free},
    {"", "Cast", 6, 18, cast_prepare, cast_run, free},
    {"", "Cast", 19, 0, cast_prepare, cast_run, free},
    {"", "CastLike", 15, 18, castlike_prepare, castlike_run, free},
    {"", "CastLike", 19, 0, castlike_prepare, castlike_run, free},
    {0},
};
