/*
 * One-input element-wise operators: activations, math functions, rounding,
 * Clip, Shrink, IsNaN/IsInf.
 *
 * Each operator is one statement over `x` (the input element) assigning
 * `y`, instantiated per element type into a plain loop over the buffer.
 * <tgmath.h> makes exp(x), tanh(x), ... pick the float or double function
 * from x's type, so float32 stays in float32.  float16 and bfloat16 run the
 * float32 loop on chunks widened on a stack buffer.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/fused.h"
#include "interp/ops/type_lists.h"

#define DTYPE_SLOTS (MQ_DTYPE_BFLOAT16 + 1)
#define HALF_CHUNK 1024

struct unary_params {
    float alpha, beta, gamma;
    float lambd, bias;
    int detect_positive, detect_negative;
    /* Clip bounds: point at one element of the input's type, NULL when unbounded. */
    const void *lo, *hi;
};

typedef void (*unary_row)(void *out, const void *in, int64_t n, const struct unary_params *p);

/*
 * The parameters are copied to locals so the compiler knows stores to the
 * output cannot change them, which lets it vectorise the loop.
 */
#define UNARY_ROW(NAME, T, UT, TO, ...) UNARY_ROW_ATTR(, NAME, T, UT, TO, __VA_ARGS__)
#define UNARY_ROW_ATTR(ATTR, NAME, T, UT, TO, ...)                                             \
    ATTR static void NAME(void *o_, const void *x_, int64_t n, const struct unary_params *p)   \
    {                                                                                          \
        TO *o = o_;                                                                            \
        const T *in = x_;                                                                      \
        const T alpha = (T)p->alpha, beta = (T)p->beta, gamma = (T)p->gamma;                   \
        const double lambd = p->lambd, bias = p->bias;                                         \
        const int detect_pos = p->detect_positive, detect_neg = p->detect_negative;            \
        const int has_lo = p->lo != NULL, has_hi = p->hi != NULL;                              \
        const T lo = has_lo ? *(const T *)p->lo : (T)0, hi = has_hi ? *(const T *)p->hi : (T)0; \
        (void)alpha, (void)beta, (void)gamma, (void)lambd, (void)bias;                         \
        (void)detect_pos, (void)detect_neg, (void)lo, (void)hi;                                \
        for (int64_t i = 0; i < n; i++) {                                                      \
            const T x = in[i];                                                                 \
            TO y;                                                                              \
            __VA_ARGS__;                                                                       \
            o[i] = y;                                                                          \
        }                                                                                      \
    }


#define DEF_SAME(OP, FAM, S, T, UT, DT) UNARY_ROW(OP##_##S, T, UT, T, OP##_##FAM(T, UT))
/*
 * GCC turns the comparisons of a body into vector selects only when told that floating-point
 * operations may not trap (which changes no value: the same IEEE operations run, merely on
 * every lane); without it the loops of HardSwish and LeakyRelu stay scalar.  Clang vectorises
 * them as they are.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define SELECTS_VECTORISE __attribute__((optimize("no-trapping-math")))
#else
#define SELECTS_VECTORISE
#endif
#define DEF_SAME_SELECTS(OP, FAM, S, T, UT, DT)                                                \
    UNARY_ROW_ATTR(SELECTS_VECTORISE, OP##_##S, T, UT, T, OP##_##FAM(T, UT))
#define DEF_BOOL(OP, FAM, S, T, UT, DT) UNARY_ROW(OP##_##S, T, UT, uint8_t, OP##_##FAM(T, UT))
#define SLOT(OP, FAM, S, T, UT, DT) [DT] = OP##_##S,

/* Operator bodies: read x (type T), assign y. */
#define relu_float(T, UT) y = x < 0 ? (T)0 : x
#define relu_sint(T, UT) y = x < 0 ? (T)0 : x
#define leakyrelu_float(T, UT) y = x < 0 ? alpha * x : x
/* Swish-28: x * sigmoid(alpha * x) */
#define swish_float(T, UT) y = (T)(x / (1 + exp(-(double)alpha * x)))
#define elu_float(T, UT) y = x < 0 ? alpha * expm1(x) : x
#define selu_float(T, UT) y = x > 0 ? gamma * x : gamma * (alpha * exp(x) - alpha)
#define celu_float(T, UT) y = (x > 0 ? x : (T)0) + fmin((T)0, alpha * expm1(x / alpha))
#define thresholdedrelu_float(T, UT) y = x > alpha ? x : (T)0
#define sigmoid_float(T, UT)                                                                   \
    T e_ = exp(-fabs(x));                                                                      \
    y = x >= 0 ? (T)1 / ((T)1 + e_) : e_ / ((T)1 + e_)
#define hardsigmoid_float(T, UT)                                                               \
    T v_ = alpha * x + beta;                                                                   \
    y = v_ < 0 ? (T)0 : v_ > 1 ? (T)1 : v_
#define hardswish_float(T, UT)                                                                 \
    T v_ = x / (T)6 + (T)0.5;                                                                  \
    y = x * (v_ < 0 ? (T)0 : v_ > 1 ? (T)1 : v_)
#define tanh_float(T, UT) y = tanh(x)
#define erf_float(T, UT) y = erf(x)
#define erf_int(T, UT) y = (T)erf((double)x)
#define gelu_float(T, UT) y = (T)0.5 * x * ((T)1 + erf(x * (T)0.70710678118654752440))
#define gelutanh_float(T, UT)                                                                  \
    y = (T)0.5 * x * ((T)1 + tanh((T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x)))
#define exp_float(T, UT) y = exp(x)
#define log_float(T, UT) y = log(x)
#define sqrt_float(T, UT) y = sqrt(x)
#define reciprocal_float(T, UT) y = (T)1 / x
#define floor_float(T, UT) y = floor(x)
#define ceil_float(T, UT) y = ceil(x)
/* nearbyint rounds half to even in the default rounding mode, as ONNX asks. */
#define round_float(T, UT) y = nearbyint(x)
#define abs_float(T, UT) y = fabs(x)
/* Negation through the unsigned type: -INT_MIN wraps as in numpy instead of being undefined. */
#define abs_sint(T, UT) y = x < 0 ? (T)(0 - (UT)x) : x
#define abs_uint(T, UT) y = x
#define neg_float(T, UT) y = -x
#define neg_sint(T, UT) y = (T)(0 - (UT)x)
#define sign_float(T, UT) y = x > 0 ? (T)1 : x < 0 ? (T)-1 : x
#define sign_sint(T, UT) y = x > 0 ? (T)1 : x < 0 ? (T)-1 : (T)0
#define sign_uint(T, UT) y = x > 0 ? (T)1 : (T)0
#define sin_float(T, UT) y = sin(x)
#define cos_float(T, UT) y = cos(x)
#define tan_float(T, UT) y = tan(x)
#define asin_float(T, UT) y = asin(x)
#define acos_float(T, UT) y = acos(x)
#define atan_float(T, UT) y = atan(x)
#define sinh_float(T, UT) y = sinh(x)
#define cosh_float(T, UT) y = cosh(x)
#define asinh_float(T, UT) y = asinh(x)
#define acosh_float(T, UT) y = acosh(x)
#define atanh_float(T, UT) y = atanh(x)
/* log(1 + e^x) without overflow for large x. */
#define softplus_float(T, UT) y = (x > 0 ? x : (T)0) + log1p(exp(-fabs(x)))
#define softsign_float(T, UT) y = x / ((T)1 + fabs(x))
#define mish_float(T, UT) y = x * tanh((x > 0 ? x : (T)0) + log1p(exp(-fabs(x))))
#define shrink_float(T, UT)                                                                    \
    y = x < -lambd ? (T)(x + bias) : x > lambd ? (T)(x - bias) : (T)0
#define shrink_int(T, UT)                                                                      \
    double d_ = (double)x;                                                                     \
    y = (T)mq_double_to_int64_sat(d_ < -lambd ? d_ + bias : d_ > lambd ? d_ - bias : 0.0)
#define clip_any(T, UT)                                                                        \
    y = has_lo && x < lo ? lo : x;                                                             \
    y = has_hi && y > hi ? hi : y
/* The same comparisons as clip_any with an absent bound as an infinity, no branch: lo > x ? lo : x
   is maxps's own rule (NaN and -0 against +0 give x), so the loop becomes vector max/min. */
#define clip_float(T, UT)                                                                      \
    const T lo_ = has_lo ? lo : (T)-INFINITY, hi_ = has_hi ? hi : (T)INFINITY;                 \
    y = lo_ > x ? lo_ : x;                                                                     \
    y = hi_ < y ? hi_ : y
#define isnan_float(T, UT) y = isnan(x) != 0
#define isinf_float(T, UT) y = (isinf(x) && ((x > 0 && detect_pos) || (x < 0 && detect_neg)))

#define FLOAT_OP(OP) FLOAT_TYPES(DEF_SAME, OP, float)
FLOAT_OP(relu)
SINT_TYPES(DEF_SAME, relu, sint)
FLOAT_TYPES(DEF_SAME_SELECTS, leakyrelu, float)
FLOAT_OP(elu)
FLOAT_OP(selu)
FLOAT_OP(celu)
FLOAT_OP(thresholdedrelu)
FLOAT_OP(sigmoid)
FLOAT_OP(hardsigmoid)
FLOAT_TYPES(DEF_SAME_SELECTS, hardswish, float)
FLOAT_OP(swish)
FLOAT_OP(tanh)
FLOAT_OP(erf)
SINT_TYPES(DEF_SAME, erf, int)
UINT_TYPES(DEF_SAME, erf, int)
FLOAT_OP(gelu)
FLOAT_OP(gelutanh)
FLOAT_OP(exp)
FLOAT_OP(log)
FLOAT_OP(sqrt)
FLOAT_OP(reciprocal)
FLOAT_OP(floor)
FLOAT_OP(ceil)
FLOAT_OP(round)
FLOAT_OP(abs)
SINT_TYPES(DEF_SAME, abs, sint)
UINT_TYPES(DEF_SAME, abs, uint)
FLOAT_OP(neg)
SINT_TYPES(DEF_SAME, neg, sint)
FLOAT_OP(sign)
SINT_TYPES(DEF_SAME, sign, sint)
UINT_TYPES(DEF_SAME, sign, uint)
FLOAT_OP(sin)
FLOAT_OP(cos)
FLOAT_OP(tan)
FLOAT_OP(asin)
FLOAT_OP(acos)
FLOAT_OP(atan)
FLOAT_OP(sinh)
FLOAT_OP(cosh)
FLOAT_OP(asinh)
FLOAT_OP(acosh)
FLOAT_OP(atanh)
FLOAT_OP(softplus)
FLOAT_OP(softsign)
FLOAT_OP(mish)
FLOAT_OP(shrink)
SINT_TYPES(DEF_SAME, shrink, int)
UINT_TYPES(DEF_SAME, shrink, int)
FLOAT_TYPES(DEF_SAME, clip, float)
SINT_TYPES(DEF_SAME, clip, any)
UINT_TYPES(DEF_SAME, clip, any)
FLOAT_TYPES(DEF_BOOL, isnan, float)
FLOAT_TYPES(DEF_BOOL, isinf, float)

/* ---------------------------------------------------------------------------------------- */

enum param_use {
    USE_ALPHA = 1,
    USE_BETA = 2,
    USE_GAMMA = 4,
    USE_SHRINK = 8,
    USE_DETECT = 16,
    USE_CLIP_ATTRS = 32,  /* Clip before opset 11: min and max attributes */
    USE_CLIP_INPUTS = 64, /* Clip from opset 11: min and max optional inputs */
};

struct unary_op {
    const char *op_type;
    unary_row rows[DTYPE_SLOTS];
    int bool_out;
    int uses;
    float alpha, beta, gamma; /* attribute defaults */
};

#define FLOATS(OP) {FLOAT_TYPES(SLOT, OP, ~)}
#define NUMERIC(OP) {FLOAT_TYPES(SLOT, OP, ~) SINT_TYPES(SLOT, OP, ~) UINT_TYPES(SLOT, OP, ~)}
#define SIGNED(OP) {FLOAT_TYPES(SLOT, OP, ~) SINT_TYPES(SLOT, OP, ~)}

static const struct unary_op unary_ops[] = {
    {"Relu", SIGNED(relu), 0, 0, 0, 0, 0},
    {"LeakyRelu", FLOATS(leakyrelu), 0, USE_ALPHA, 0.01f, 0, 0},
    {"Elu", FLOATS(elu), 0, USE_ALPHA, 1.0f, 0, 0},
    {"Selu", FLOATS(selu), 0, USE_ALPHA | USE_GAMMA, 1.67326319217681884765625f, 0,
     1.05070102214813232421875f},
    {"Celu", FLOATS(celu), 0, USE_ALPHA, 1.0f, 0, 0},
    {"ThresholdedRelu", FLOATS(thresholdedrelu), 0, USE_ALPHA, 1.0f, 0, 0},
    {"Sigmoid", FLOATS(sigmoid), 0, 0, 0, 0, 0},
    {"HardSigmoid", FLOATS(hardsigmoid), 0, USE_ALPHA | USE_BETA, 0.2f, 0.5f, 0},
    {"HardSwish", FLOATS(hardswish), 0, 0, 0, 0, 0},
    {"Swish", FLOATS(swish), 0, USE_ALPHA, 1.0f, 0, 0},
    {"Tanh", FLOATS(tanh), 0, 0, 0, 0, 0},
    {"Erf", NUMERIC(erf), 0, 0, 0, 0, 0},
    {"Gelu", FLOATS(gelu), 0, 0, 0, 0, 0},
    {"Exp", FLOATS(exp), 0, 0, 0, 0, 0},
    {"Log", FLOATS(log), 0, 0, 0, 0, 0},
    {"Sqrt", FLOATS(sqrt), 0, 0, 0, 0, 0},
    {"Reciprocal", FLOATS(reciprocal), 0, 0, 0, 0, 0},
    {"Floor", FLOATS(floor), 0, 0, 0, 0, 0},
    {"Ceil", FLOATS(ceil), 0, 0, 0, 0, 0},
    {"Round", FLOATS(round), 0, 0, 0, 0, 0},
    {"Abs", NUMERIC(abs), 0, 0, 0, 0, 0},
    {"Neg", SIGNED(neg), 0, 0, 0, 0, 0},
    {"Sign", NUMERIC(sign), 0, 0, 0, 0, 0},
    {"Sin", FLOATS(sin), 0, 0, 0, 0, 0},
    {"Cos", FLOATS(cos), 0, 0, 0, 0, 0},
    {"Tan", FLOATS(tan), 0, 0, 0, 0, 0},
    {"Asin", FLOATS(asin), 0, 0, 0, 0, 0},
    {"Acos", FLOATS(acos), 0, 0, 0, 0, 0},
    {"Atan", FLOATS(atan), 0, 0, 0, 0, 0},
    {"Sinh", FLOATS(sinh), 0, 0, 0, 0, 0},
    {"Cosh", FLOATS(cosh), 0, 0, 0, 0, 0},
    {"Asinh", FLOATS(asinh), 0, 0, 0, 0, 0},
    {"Acosh", FLOATS(acosh), 0, 0, 0, 0, 0},
    {"Atanh", FLOATS(atanh), 0, 0, 0, 0, 0},
    {"Softplus", FLOATS(softplus), 0, 0, 0, 0, 0},
    {"Softsign", FLOATS(softsign), 0, 0, 0, 0, 0},
    {"Mish", FLOATS(mish), 0, 0, 0, 0, 0},
    {"Shrink", NUMERIC(shrink), 0, USE_SHRINK, 0, 0, 0},
    {"IsNaN", FLOATS(isnan), 1, 0, 0, 0, 0},
    {"IsInf", FLOATS(isinf), 1, USE_DETECT, 0, 0, 0},
    {"Clip", NUMERIC(clip), 0, USE_CLIP_ATTRS, 0, 0, 0},
};
static const struct unary_op gelu_tanh_op = {"Gelu", FLOATS(gelutanh), 0, 0, 0, 0, 0};

struct unary_state {
    const struct unary_op *op;
    struct unary_params params;
    int uses;
    /* Clip before opset 11: the attribute bounds in both float types. */
    int has_min, has_max;
    float min_f, max_f;
    double min_d, max_d;
};

static int unary_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    const struct unary_op *op = NULL;
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++)
        if (strcmp(unary_ops[i].op_type, node->op_type) == 0)
            op = &unary_ops[i];
    if (!op)
        return mq_error_set(err, "node '%s' (%s): not a unary operator", node->name,
                            node->op_type);
    if (strcmp(node->op_type, "Gelu") == 0) {
        char buf[16];
        const char *approx = mq_attr_string(node, "approximate", "none", buf, sizeof buf);
        if (strcmp(approx, "tanh") == 0)
            op = &gelu_tanh_op;
        else if (strcmp(approx, "none") != 0)
            return mq_error_set(err, "node '%s' (%s): attribute approximate is '%s', expected "
                                "none or tanh", node->name, node->op_type, approx);
    }
    struct unary_state *st = calloc(1, sizeof *st);
    if (!st)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    st->op = op;
    st->uses = op->uses;
    if (strcmp(node->op_type, "Clip") == 0 && node->opset >= 11)
        st->uses = USE_CLIP_INPUTS;
    struct unary_params *p = &st->params;
    p->alpha = (st->uses & USE_ALPHA) ? mq_attr_float(node, "alpha", op->alpha) : 0;
    p->beta = (st->uses & USE_BETA) ? mq_attr_float(node, "beta", op->beta) : 0;
    p->gamma = (st->uses & USE_GAMMA) ? mq_attr_float(node, "gamma", op->gamma) : 0;
    if (st->uses & USE_SHRINK) {
        p->lambd = mq_attr_float(node, "lambd", 0.5f);
        p->bias = mq_attr_float(node, "bias", 0.0f);
    }
    if (st->uses & USE_DETECT) {
        p->detect_positive = mq_attr_int(node, "detect_positive", 1) != 0;
        p->detect_negative = mq_attr_int(node, "detect_negative", 1) != 0;
    }
    if (st->uses & USE_CLIP_ATTRS) {
        st->has_min = mq_attr_has(node, "min");
        st->has_max = mq_attr_has(node, "max");
        st->min_f = mq_attr_float(node, "min", -FLT_MAX);
        st->max_f = mq_attr_float(node, "max", FLT_MAX);
        st->min_d = st->min_f;
        st->max_d = st->max_f;
    }
    if (strcmp(node->op_type, "Celu") == 0 && p->alpha == 0) {
        free(st);
        return mq_error_set(err, "node '%s' (%s): attribute alpha must not be 0", node->name,
                            node->op_type);
    }
    node->state = st;
    return MQ_OK;
}

static void unary_destroy(void *state) { free(state); }

/* Reads Clip's optional bound input into *storage (as float32 for the half types). */
static int clip_bound(const struct mq_kernel_node *node, const struct mq_tensor *x,
                      const struct mq_tensor *bound, const char *which, float *storage,
                      const void **out, struct mq_error *err)
{
    *out = NULL;
    if (!bound)
        return MQ_OK;
    if (bound->dtype != x->dtype)
        return mq_error_set(err, "node '%s' (%s): input %s has type %s, input has %s",
                            node->name, node->op_type, which, mq_dtype_name(bound->dtype),
                            mq_dtype_name(x->dtype));
    if (bound->count != 1)
        return mq_error_set(err, "node '%s' (%s): input %s has %lld elements, expected a "
                            "scalar", node->name, node->op_type, which, (long long)bound->count);
    if (x->dtype == MQ_DTYPE_FLOAT16 || x->dtype == MQ_DTYPE_BFLOAT16) {
        *storage = (float)mq_tensor_get_double(bound, 0);
        *out = storage;
    } else {
        *out = bound->data;
    }
    return MQ_OK;
}

static int unary_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct unary_state *st = node->state;
    if (n_inputs < 1 || !inputs[0])
        return mq_error_set(err, "node '%s' (%s): input 0 is missing", node->name,
                            node->op_type);
    const struct mq_tensor *x = inputs[0];
    int dtype = x->dtype;
    int half = dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16;
    int work = half ? MQ_DTYPE_FLOAT : dtype;
    if (work < 0 || work >= DTYPE_SLOTS || !st->op->rows[work] ||
        ((st->uses & USE_CLIP_ATTRS) && !mq_dtype_is_float(dtype)))
        return mq_error_set(err, "node '%s' (%s): element type %s is not supported",
                            node->name, node->op_type, mq_dtype_name(dtype));
    struct unary_params p = st->params;
    float lo_store, hi_store;
    if (st->uses & USE_CLIP_INPUTS) {
        if (clip_bound(node, x, n_inputs > 1 ? inputs[1] : NULL, "min", &lo_store, &p.lo, err) ||
            clip_bound(node, x, n_inputs > 2 ? inputs[2] : NULL, "max", &hi_store, &p.hi, err))
            return MQ_ERR;
    } else if (st->uses & USE_CLIP_ATTRS) {
        int dbl = dtype == MQ_DTYPE_DOUBLE;
        p.lo = st->has_min ? (dbl ? (const void *)&st->min_d : (const void *)&st->min_f) : NULL;
        p.hi = st->has_max ? (dbl ? (const void *)&st->max_d : (const void *)&st->max_f) : NULL;
    }
    int out_dtype = st->op->bool_out ? MQ_DTYPE_BOOL : dtype;
    if (mq_tensor_alloc_uninit(&outputs[0], out_dtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    int64_t n = x->count;
    unary_row row = st->op->rows[work];
    if (!half) {
        if (n > 0)
            row(outputs[0].data, x->data, n, &p);
        return MQ_OK;
    }
    float in_buf[HALF_CHUNK], out_buf[HALF_CHUNK];
    const uint16_t *h = x->data;
    int is_bf16 = dtype == MQ_DTYPE_BFLOAT16;
    for (int64_t start = 0; start < n; start += HALF_CHUNK) {
        int64_t m = n - start < HALF_CHUNK ? n - start : HALF_CHUNK;
        for (int64_t i = 0; i < m; i++)
            in_buf[i] = is_bf16 ? mq_bfloat16_to_float(h[start + i]) : mq_half_to_float(h[start + i]);
        if (st->op->bool_out) {
            row((uint8_t *)outputs[0].data + start, in_buf, m, &p);
            continue;
        }
        row(out_buf, in_buf, m, &p);
        uint16_t *o = (uint16_t *)outputs[0].data + start;
        for (int64_t i = 0; i < m; i++)
            o[i] = is_bf16 ? mq_float_to_bfloat16(out_buf[i]) : mq_float_to_half(out_buf[i]);
    }
    return MQ_OK;
}

int mq_fused_act_check(const struct mq_kernel_node *node, int dtype, struct mq_error *err)
{
    const struct mq_fused_clamp *c = &node->clamp;
    int half = dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16;
    const char *op = c->kind == MQ_FUSED_HARDSWISH ? "HardSwish" : "Clip";
    if (c->dtype ? dtype != c->dtype
                 : !(half || dtype == MQ_DTYPE_FLOAT || dtype == MQ_DTYPE_DOUBLE))
        return mq_error_set(err, "node '%s' (%s, fused into %s '%s'): element type %s is not "
                            "supported%s%s", c->clip_name, op, node->op_type, node->name,
                            mq_dtype_name(dtype), c->dtype ? " with bounds of type " : "",
                            c->dtype ? mq_dtype_name(c->dtype) : "");
    return MQ_OK;
}

int mq_fused_act_apply(const struct mq_kernel_node *node, struct mq_tensor *t,
                        struct mq_error *err)
{
    if (mq_fused_act_check(node, t->dtype, err))
        return MQ_ERR;
    const struct mq_fused_clamp *c = &node->clamp;
    /* the bounds as unary_run hands them to the rows: float32 for the half types */
    struct unary_params p;
    memset(&p, 0, sizeof p);
    float lo_f = (float)c->lo, hi_f = (float)c->hi;
    double lo_d = c->lo, hi_d = c->hi;
    int dbl = t->dtype == MQ_DTYPE_DOUBLE;
    p.lo = dbl ? (const void *)&lo_d : (const void *)&lo_f;
    p.hi = dbl ? (const void *)&hi_d : (const void *)&hi_f;
    int64_t n = t->count;
    if (n <= 0)
        return MQ_OK;
    int hardswish = c->kind == MQ_FUSED_HARDSWISH;
    unary_row f32 = hardswish ? hardswish_f32 : clip_f32;
    if (t->dtype == MQ_DTYPE_FLOAT) {
        f32(t->data, t->data, n, &p);
        return MQ_OK;
    }
    if (dbl) {
        (hardswish ? hardswish_f64 : clip_f64)(t->data, t->data, n, &p);
        return MQ_OK;
    }
    float buf[HALF_CHUNK];
    uint16_t *h = t->data;
    int is_bf16 = t->dtype == MQ_DTYPE_BFLOAT16;
    for (int64_t start = 0; start < n; start += HALF_CHUNK) {
        int64_t m = n - start < HALF_CHUNK ? n - start : HALF_CHUNK;
        for (int64_t i = 0; i < m; i++)
            buf[i] = is_bf16 ? mq_bfloat16_to_float(h[start + i]) : mq_half_to_float(h[start + i]);
        f32(buf, buf, m, &p);
        for (int64_t i = 0; i < m; i++)
            h[start + i] = is_bf16 ? mq_float_to_bfloat16(buf[i]) : mq_float_to_half(buf[i]);
    }
    return MQ_OK;
}

#define U(op, since, until) {"", op, since, until, unary_prepare, unary_run, unary_destroy}

/* One entry per opset range whose attributes, inputs or type lists differ. */
const struct mq_kernel mq_kernels_unary[] = {
    U("Relu", 1, 5), U("Relu", 6, 12), U("Relu", 13, 13), U("Relu", 14, 0),
    U("LeakyRelu", 1, 5), U("LeakyRelu", 6, 15), U("LeakyRelu", 16, 0),
    U("Elu", 1, 5), U("Elu", 6, 0),
    U("Selu", 1, 5), U("Selu", 6, 0),
    U("Celu", 12, 0),
    U("ThresholdedRelu", 10, 0),
    U("Clip", 1, 5), U("Clip", 6, 10), U("Clip", 11, 11), U("Clip", 12, 12), U("Clip", 13, 0),
    U("Sigmoid", 1, 5), U("Sigmoid", 6, 12), U("Sigmoid", 13, 0),
    U("HardSigmoid", 1, 5), U("HardSigmoid", 6, 0),
    U("HardSwish", 14, 0),
    U("Swish", 24, 0),
    U("Tanh", 1, 5), U("Tanh", 6, 12), U("Tanh", 13, 0),
    U("Erf", 9, 12), U("Erf", 13, 0),
    U("Gelu", 20, 0),
    U("Exp", 1, 5), U("Exp", 6, 12), U("Exp", 13, 0),
    U("Log", 1, 5), U("Log", 6, 12), U("Log", 13, 0),
    U("Sqrt", 1, 5), U("Sqrt", 6, 12), U("Sqrt", 13, 0),
    U("Reciprocal", 1, 5), U("Reciprocal", 6, 12), U("Reciprocal", 13, 0),
    U("Floor", 1, 5), U("Floor", 6, 12), U("Floor", 13, 0),
    U("Ceil", 1, 5), U("Ceil", 6, 12), U("Ceil", 13, 0),
    U("Round", 11, 0),
    U("Abs", 1, 5), U("Abs", 6, 12), U("Abs", 13, 0),
    U("Neg", 1, 5), U("Neg", 6, 12), U("Neg", 13, 0),
    U("Sign", 9, 12), U("Sign", 13, 0),
    U("Sin", 7, 0), U("Cos", 7, 0), U("Tan", 7, 0),
    U("Asin", 7, 0), U("Acos", 7, 0), U("Atan", 7, 0),
    U("Sinh", 9, 0), U("Cosh", 9, 0), U("Asinh", 9, 0), U("Acosh", 9, 0), U("Atanh", 9, 0),
    U("Softplus", 1, 0), U("Softsign", 1, 0),
    U("Mish", 18, 0),
    U("Shrink", 9, 0),
    U("IsNaN", 9, 12), U("IsNaN", 13, 19), U("IsNaN", 20, 0),
    U("IsInf", 10, 19), U("IsInf", 20, 0),
    {0},
};
