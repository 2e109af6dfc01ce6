/*
 * Quantization operators: QuantizeLinear, DequantizeLinear,
 * DynamicQuantizeLinear, and the integer compute ops QLinearMatMul,
 * QLinearConv, MatMulInteger, ConvInteger.
 *
 * Numbers follow QUANT-SPEC.md and onnxruntime's CPU kernels:
 *   quantize   q = clamp(nearbyintf(x / scale) + zero_point, qmin, qmax), the
 *              division in float, rounding half to even before adding the zero
 *              point; NaN goes to qmin as onnxruntime's max/min clamp leaves it.
 *   dequantize y = (float)(x - zero_point) * scale.
 *   requantize y = clamp(nearbyintf((float)acc * (s_a * s_b / s_y)) + zp_y).
 * Integer accumulations are computed exactly: the operands, zero points
 * subtracted, go through cblas_dgemm, whose double sums are exact far beyond
 * any int32 accumulator (|a - zp| * |b - zp| < 2^17, so K up to 2^36).
 *
 * 4-bit and float8 element types cannot be held by the interpreter's tensors
 * (mq_dtype_size is 0 for them); nodes using them are refused with a message.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/tensor.h"

#define NODE_FMT "node '%s' (%s): "
#define NODE_ARGS node->name, node->op_type

/* ---- element types ------------------------------------------------------------------ */

static int is_float8(int dtype) { return dtype >= 17 && dtype <= 20; }
static int is_4bit(int dtype) { return dtype == MQ_DTYPE_INT4 || dtype == MQ_DTYPE_UINT4; }

/* Full range of a quantized integer type; -1 when the type is not one. */
static int quant_range(int dtype, int32_t *qmin, int32_t *qmax)
{
    switch (dtype) {
    case MQ_DTYPE_UINT8: *qmin = 0; *qmax = 255; return 0;
    case MQ_DTYPE_INT8: *qmin = -128; *qmax = 127; return 0;
    case MQ_DTYPE_UINT16: *qmin = 0; *qmax = 65535; return 0;
    case MQ_DTYPE_INT16: *qmin = -32768; *qmax = 32767; return 0;
    default: return -1;
    }
}

/* Explains why a quantized type is refused. */
static int refuse_type(const struct mq_kernel_node *node, const char *what, int dtype,
                       struct mq_error *err)
{
    if (is_4bit(dtype))
        return mq_error_set(err, NODE_FMT "%s has type %s; 4-bit types are not supported by the "
                            "interpreter", NODE_ARGS, what, mq_dtype_name(dtype));
    if (is_float8(dtype))
        return mq_error_set(err, NODE_FMT "%s has type %s; float8 types are not supported by "
                            "the interpreter", NODE_ARGS, what, mq_dtype_name(dtype));
    return mq_error_set(err, NODE_FMT "%s has type %s, which this operator does not accept",
                        NODE_ARGS, what, mq_dtype_name(dtype));
}

/* Reads n elements of any integer tensor into int32 (zero points, quantized values). */
#define READ_INT(T)                                                                           \
    do {                                                                                      \
        const T *s_ = (const T *)t->data;                                                     \
        for (int64_t i = 0; i < n; i++)                                                       \
            dst[i] = (int32_t)s_[i];                                                          \
    } while (0)

static void read_int32(const struct mq_tensor *t, int32_t *dst, int64_t n)
{
    switch (t->dtype) {
    case MQ_DTYPE_UINT8: READ_INT(uint8_t); break;
    case MQ_DTYPE_INT8: READ_INT(int8_t); break;
    case MQ_DTYPE_UINT16: READ_INT(uint16_t); break;
    case MQ_DTYPE_INT16: READ_INT(int16_t); break;
    case MQ_DTYPE_INT32: READ_INT(int32_t); break;
    default:
        for (int64_t i = 0; i < n; i++)
            dst[i] = 0;
        break;
    }
}

/* Reads a float-like tensor (float32/16, bfloat16, double, int32) into float. */
static void read_float(const struct mq_tensor *t, float *dst, int64_t n)
{
    switch (t->dtype) {
    case MQ_DTYPE_FLOAT:
        memcpy(dst, t->data, (size_t)n * sizeof(float));
        break;
    case MQ_DTYPE_FLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = mq_half_to_float(s[i]);
        break;
    }
    case MQ_DTYPE_BFLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = mq_bfloat16_to_float(s[i]);
        break;
    }
    case MQ_DTYPE_DOUBLE: {
        const double *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    case MQ_DTYPE_INT32: {
        const int32_t *s = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++)
            dst[i] = 0.0f;
        break;
    }
}

static int is_scale_type(int dtype)
{
    return dtype == MQ_DTYPE_FLOAT || dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16;
}

/*
 * A float view of t: t's own data when it is float32, else a converted copy in
 * *scratch (freed by the caller).
 */
static int float_view(const struct mq_kernel_node *node, const struct mq_tensor *t,
                      struct mq_tensor *scratch, const float **out, struct mq_error *err)
{
    if (t->dtype == MQ_DTYPE_FLOAT) {
        *out = t->data;
        return MQ_OK;
    }
    if (mq_tensor_alloc(scratch, MQ_DTYPE_FLOAT, t->rank, t->dims, node->name, err))
        return MQ_ERR;
    read_float(t, scratch->data, t->count);
    *out = scratch->data;
    return MQ_OK;
}

/* Stores float results into a float32/float16/bfloat16 output. */
static void store_float(int dtype, void *dst, const float *src, int64_t n)
{
    if (dtype == MQ_DTYPE_FLOAT16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = mq_float_to_half(src[i]);
    } else if (dtype == MQ_DTYPE_BFLOAT16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = mq_float_to_bfloat16(src[i]);
    }
}

/* Round half to even, then saturate; NaN saturates to qmin (see the header comment). */
static inline int32_t quantize_value(float v, float lo, float hi)
{
    if (!(v >= lo))
        return (int32_t)lo;
    if (v > hi)
        return (int32_t)hi;
    return (int32_t)v;
}

/* ---- QuantizeLinear / DequantizeLinear ----------------------------------------------- */

struct qdq_state {
    int64_t axis;
    int64_t block_size;
    int output_dtype; /* 0 when not given */
    int per_axis_allowed;
};

/*
 * How the scale maps onto x: per-tensor (one value), per-axis (one per index
 * of `axis`) or blocked (opset 21: one per block of block_size along `axis`).
 * Elements are walked as [outer, axis_len, inner].
 */
enum qmode { QMODE_TENSOR, QMODE_AXIS, QMODE_BLOCKED };

struct qlayout {
    enum qmode mode;
    int64_t outer, axis_len, inner;
    int64_t block;       /* blocked: block size */
    int64_t scale_axis;  /* blocked: scale dims[axis] */
};

static int qdq_layout(const struct mq_kernel_node *node, const struct qdq_state *s,
                      const struct mq_tensor *x, const struct mq_tensor *scale,
                      const struct mq_tensor *zp, struct qlayout *lay, struct mq_error *err)
{
    char a[128], b[128];
    memset(lay, 0, sizeof *lay);
    /* A scalar and a one-element vector both mean per-tensor, as in onnxruntime. */
    int both_single = zp && zp->count == 1 && scale->count == 1 && zp->rank <= 1 &&
                      scale->rank <= 1;
    if (zp && !both_single && !mq_shape_equal(zp, scale))
        return mq_error_set(err, NODE_FMT "zero point shape %s differs from scale shape %s",
                            NODE_ARGS, mq_shape_format(zp->rank, zp->dims, a, sizeof a),
                            mq_shape_format(scale->rank, scale->dims, b, sizeof b));
    if (s->block_size == 0 && scale->count == 1 && scale->rank <= 1) {
        lay->mode = QMODE_TENSOR;
        lay->outer = 1;
        lay->axis_len = 1;
        lay->inner = x->count;
        return MQ_OK;
    }
    if (!s->per_axis_allowed)
        return mq_error_set(err, NODE_FMT "scale has shape %s; opset %d allows only a scalar "
                            "scale", NODE_ARGS,
                            mq_shape_format(scale->rank, scale->dims, a, sizeof a), node->opset);
    int axis;
    if (x->rank == 0)
        return mq_error_set(err, NODE_FMT "scale has shape %s but the input is a scalar",
                            NODE_ARGS, mq_shape_format(scale->rank, scale->dims, a, sizeof a));
    if (mq_axis_normalize(node, s->axis, x->rank, &axis, err))
        return MQ_ERR;
    lay->outer = 1;
    lay->inner = 1;
    for (int i = 0; i < axis; i++)
        lay->outer *= x->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        lay->inner *= x->dims[i];
    lay->axis_len = x->dims[axis];
    if (s->block_size == 0) {
        if (scale->rank != 1 || scale->dims[0] != x->dims[axis])
            return mq_error_set(err, NODE_FMT "per-axis scale has shape %s; input %s needs [%lld] "
                                "along axis %d", NODE_ARGS,
                                mq_shape_format(scale->rank, scale->dims, a, sizeof a),
                                mq_shape_format(x->rank, x->dims, b, sizeof b),
                                (long long)x->dims[axis], axis);
        lay->mode = QMODE_AXIS;
        return MQ_OK;
    }
    int ok = scale->rank == x->rank;
    int64_t want = (x->dims[axis] + s->block_size - 1) / s->block_size;
    for (int i = 0; ok && i < x->rank; i++)
        ok = scale->dims[i] == (i == axis ? want : x->dims[i]);
    if (!ok)
        return mq_error_set(err, NODE_FMT "blocked scale has shape %s; input %s with block_size "
                            "%lld on axis %d needs %lld blocks on that axis and the input's "
                            "other dims", NODE_ARGS,
                            mq_shape_format(scale->rank, scale->dims, a, sizeof a),
                            mq_shape_format(x->rank, x->dims, b, sizeof b),
                            (long long)s->block_size, axis, (long long)want);
    lay->mode = QMODE_BLOCKED;
    lay->block = s->block_size;
    lay->scale_axis = want;
    return MQ_OK;
}

static int qdq_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct qdq_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, NODE_FMT "out of memory", NODE_ARGS);
    s->per_axis_allowed = node->opset >= 13;
    s->axis = mq_attr_int(node, "axis", 1);
    s->block_size = node->opset >= 21 ? mq_attr_int(node, "block_size", 0) : 0;
    s->output_dtype = node->opset >= 21 ? (int)mq_attr_int(node, "output_dtype", 0) : 0;
    int rc = MQ_OK;
    if (s->block_size < 0)
        rc = mq_error_set(err, NODE_FMT "block_size %lld is negative", NODE_ARGS,
                          (long long)s->block_size);
    else if (s->output_dtype && (is_4bit(s->output_dtype) || is_float8(s->output_dtype)))
        rc = refuse_type(node, "output_dtype", s->output_dtype, err);
    else if (mq_attr_has(node, "precision") && mq_attr_int(node, "precision", 0) != 0 &&
             mq_attr_int(node, "precision", 0) != MQ_DTYPE_FLOAT)
        rc = mq_error_set(err, NODE_FMT "precision %lld is not supported; the interpreter "
                          "computes in float32", NODE_ARGS,
                          (long long)mq_attr_int(node, "precision", 0));
    if (rc) {
        free(s);
        return rc;
    }
    node->state = s;
    return MQ_OK;
}

static void qdq_destroy(void *state) { free(state); }

/*
 * One body per output type.  Per-tensor and per-axis hoist the scale out of
 * the innermost loop; blocked reads one per element of the inner run.
 */
#define QUANTIZE_BODY(QT)                                                                     \
    do {                                                                                      \
        QT *y = (QT *)out->data;                                                              \
        int64_t e = 0;                                                                        \
        for (int64_t o = 0; o < lay->outer; o++) {                                            \
            for (int64_t j = 0; j < lay->axis_len; j++) {                                     \
                if (lay->mode == QMODE_BLOCKED) {                                             \
                    int64_t base = (o * lay->scale_axis + j / lay->block) * lay->inner;       \
                    for (int64_t k = 0; k < lay->inner; k++, e++) {                           \
                        float v = nearbyintf(x[e] / sc[base + k]) + (float)zp[base + k];      \
                        y[e] = (QT)quantize_value(v, lo, hi);                                 \
                    }                                                                         \
                } else {                                                                      \
                    int64_t p = lay->mode == QMODE_AXIS ? j : 0;                              \
                    float s_ = sc[p], z_ = (float)zp[p];                                      \
                    for (int64_t k = 0; k < lay->inner; k++, e++) {                           \
                        float v = nearbyintf(x[e] / s_) + z_;                                 \
                        y[e] = (QT)quantize_value(v, lo, hi);                                 \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static void quantize_into(struct mq_tensor *out, const float *x, const float *sc,
                          const int32_t *zp, const struct qlayout *lay)
{
    int32_t qmin = 0, qmax = 0;
    quant_range(out->dtype, &qmin, &qmax);
    float lo = (float)qmin, hi = (float)qmax;
    switch (out->dtype) {
    case MQ_DTYPE_UINT8: QUANTIZE_BODY(uint8_t); break;
    case MQ_DTYPE_INT8: QUANTIZE_BODY(int8_t); break;
    case MQ_DTYPE_UINT16: QUANTIZE_BODY(uint16_t); break;
    case MQ_DTYPE_INT16: QUANTIZE_BODY(int16_t); break;
    default: break;
    }
}

/* Zero points as int32 (zeros when absent), scales as float: both small, read once. */
static int read_params(const struct mq_kernel_node *node, const struct mq_tensor *scale,
                       const struct mq_tensor *zp, struct mq_tensor *sc_buf,
                       struct mq_tensor *zp_buf, struct mq_error *err)
{
    if (mq_tensor_alloc(sc_buf, MQ_DTYPE_FLOAT, scale->rank, scale->dims, node->name, err))
        return MQ_ERR;
    read_float(scale, sc_buf->data, scale->count);
    if (mq_tensor_alloc(zp_buf, MQ_DTYPE_INT32, scale->rank, scale->dims, node->name, err))
        return MQ_ERR;
    if (zp)
        read_int32(zp, zp_buf->data, zp->count);
    return MQ_OK;
}

static int quantize_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct qdq_state *s = node->state;
    const struct mq_tensor *x = inputs[0];
    const struct mq_tensor *scale = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *zp = n_inputs > 2 ? inputs[2] : NULL;
    if (!x || !scale)
        return mq_error_set(err, NODE_FMT "inputs 'x' and 'y_scale' are required", NODE_ARGS);
    int x_ok = x->dtype == MQ_DTYPE_FLOAT || x->dtype == MQ_DTYPE_INT32 ||
               (node->opset >= 19 &&
                (x->dtype == MQ_DTYPE_FLOAT16 || x->dtype == MQ_DTYPE_BFLOAT16));
    if (!x_ok)
        return mq_error_set(err, NODE_FMT "input 'x' has type %s; opset %d accepts float32 and "
                            "int32%s", NODE_ARGS, mq_dtype_name(x->dtype), node->opset,
                            node->opset >= 19 ? ", float16, bfloat16" : "");
    if (!is_scale_type(scale->dtype) || (node->opset < 19 && scale->dtype != MQ_DTYPE_FLOAT))
        return mq_error_set(err, NODE_FMT "y_scale has type %s, expected float32%s", NODE_ARGS,
                            mq_dtype_name(scale->dtype),
                            node->opset >= 19 ? ", float16 or bfloat16" : "");
    int qtype = zp ? zp->dtype : (s->output_dtype ? s->output_dtype : MQ_DTYPE_UINT8);
    if (zp && s->output_dtype && s->output_dtype != zp->dtype)
        return mq_error_set(err, NODE_FMT "output_dtype %s disagrees with y_zero_point type %s",
                            NODE_ARGS, mq_dtype_name(s->output_dtype), mq_dtype_name(zp->dtype));
    int32_t qmin, qmax;
    if (quant_range(qtype, &qmin, &qmax))
        return refuse_type(node, "the quantized output", qtype, err);
    if ((qtype == MQ_DTYPE_INT16 || qtype == MQ_DTYPE_UINT16) && node->opset < 21)
        return mq_error_set(err, NODE_FMT "%s output needs opset 21, the model imports %d",
                            NODE_ARGS, mq_dtype_name(qtype), node->opset);
    struct qlayout lay;
    if (qdq_layout(node, s, x, scale, zp, &lay, err))
        return MQ_ERR;
    if (mq_tensor_alloc(&outputs[0], qtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    struct mq_tensor xs = {0}, sc = {0}, zb = {0};
    const float *xf;
    int rc = MQ_ERR;
    if (float_view(node, x, &xs, &xf, err) || read_params(node, scale, zp, &sc, &zb, err))
        goto done;
    quantize_into(&outputs[0], xf, sc.data, zb.data, &lay);
    rc = MQ_OK;
done:
    mq_tensor_free(&xs);
    mq_tensor_free(&sc);
    mq_tensor_free(&zb);
    return rc;
}

#define DEQUANTIZE_BODY(QT)                                                                   \
    do {                                                                                      \
        const QT *q = (const QT *)x->data;                                                    \
        int64_t e = 0;                                                                        \
        for (int64_t o = 0; o < lay->outer; o++) {                                            \
            for (int64_t j = 0; j < lay->axis_len; j++) {                                     \
                if (lay->mode == QMODE_BLOCKED) {                                             \
                    int64_t base = (o * lay->scale_axis + j / lay->block) * lay->inner;       \
                    for (int64_t k = 0; k < lay->inner; k++, e++)                             \
                        y[e] = (float)((int32_t)q[e] - zp[base + k]) * sc[base + k];          \
                } else {                                                                      \
                    int64_t p = lay->mode == QMODE_AXIS ? j : 0;                              \
                    float s_ = sc[p];                                                         \
                    int32_t z_ = zp[p];                                                       \
                    for (int64_t k = 0; k < lay->inner; k++, e++)                             \
                        y[e] = (float)((int32_t)q[e] - z_) * s_;                              \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static void dequantize_into(float *y, const struct mq_tensor *x, const float *sc,
                            const int32_t *zp, const struct qlayout *lay)
{
    switch (x->dtype) {
    case MQ_DTYPE_UINT8: DEQUANTIZE_BODY(uint8_t); break;
    case MQ_DTYPE_INT8: DEQUANTIZE_BODY(int8_t); break;
    case MQ_DTYPE_UINT16: DEQUANTIZE_BODY(uint16_t); break;
    case MQ_DTYPE_INT16: DEQUANTIZE_BODY(int16_t); break;
    case MQ_DTYPE_INT32: DEQUANTIZE_BODY(int32_t); break;
    default: break;
    }
}

static int dequantize_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                          const struct mq_tensor *const *inputs, int n_inputs,
                          struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct qdq_state *s = node->state;
    const struct mq_tensor *x = inputs[0];
    const struct mq_tensor *scale = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *zp = n_inputs > 2 ? inputs[2] : NULL;
    if (!x || !scale)
        return mq_error_set(err, NODE_FMT "inputs 'x' and 'x_scale' are required", NODE_ARGS);
    int32_t qmin, qmax;
    if (x->dtype != MQ_DTYPE_INT32 && quant_range(x->dtype, &qmin, &qmax))
        return refuse_type(node, "input 'x'", x->dtype, err);
    if ((x->dtype == MQ_DTYPE_INT16 || x->dtype == MQ_DTYPE_UINT16) && node->opset < 21)
        return mq_error_set(err, NODE_FMT "%s input needs opset 21, the model imports %d",
                            NODE_ARGS, mq_dtype_name(x->dtype), node->opset);
    if (zp && zp->dtype != x->dtype)
        return mq_error_set(err, NODE_FMT "x_zero_point has type %s but x has type %s",
                            NODE_ARGS, mq_dtype_name(zp->dtype), mq_dtype_name(x->dtype));
    if (!is_scale_type(scale->dtype) || (node->opset < 19 && scale->dtype != MQ_DTYPE_FLOAT))
        return mq_error_set(err, NODE_FMT "x_scale has type %s, expected float32%s", NODE_ARGS,
                            mq_dtype_name(scale->dtype),
                            node->opset >= 19 ? ", float16 or bfloat16" : "");
    int ytype = s->output_dtype ? s->output_dtype : scale->dtype;
    if (!is_scale_type(ytype))
        return mq_error_set(err, NODE_FMT "output_dtype %s is not a float type", NODE_ARGS,
                            mq_dtype_name(ytype));
    struct qlayout lay;
    if (qdq_layout(node, s, x, scale, zp, &lay, err))
        return MQ_ERR;
    if (mq_tensor_alloc(&outputs[0], ytype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    struct mq_tensor sc = {0}, zb = {0}, yf = {0};
    int rc = MQ_ERR;
    if (read_params(node, scale, zp, &sc, &zb, err))
        goto done;
    float *y = outputs[0].data;
    if (ytype != MQ_DTYPE_FLOAT) {
        if (mq_tensor_alloc(&yf, MQ_DTYPE_FLOAT, x->rank, x->dims, node->name, err))
            goto done;
        y = yf.data;
    }
    dequantize_into(y, x, sc.data, zb.data, &lay);
    if (ytype != MQ_DTYPE_FLOAT)
        store_float(ytype, outputs[0].data, y, x->count);
    rc = MQ_OK;
done:
    mq_tensor_free(&sc);
    mq_tensor_free(&zb);
    mq_tensor_free(&yf);
    return rc;
}

/* ---- DynamicQuantizeLinear ----------------------------------------------------------- */

/*
 * uint8 only (the spec's one type).  As onnxruntime does, an all-zero input
 * gets scale 1 rather than the 0 that would make every division NaN.
 */
static int dynamic_quantize_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                const struct mq_tensor *const *inputs, int n_inputs,
                                struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_inputs;
    const struct mq_tensor *x = inputs[0];
    if (!x)
        return mq_error_set(err, NODE_FMT "input 'x' is required", NODE_ARGS);
    if (x->dtype != MQ_DTYPE_FLOAT)
        return mq_error_set(err, NODE_FMT "input 'x' has type %s, expected float32", NODE_ARGS,
                            mq_dtype_name(x->dtype));
    const float *xv = x->data;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < x->count; i++) {
        lo = xv[i] < lo ? xv[i] : lo;
        hi = xv[i] > hi ? xv[i] : hi;
    }
    float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    float zp_f = 0.0f - lo / scale;
    zp_f = zp_f < 0.0f ? 0.0f : (zp_f > 255.0f ? 255.0f : zp_f);
    uint8_t zp = (uint8_t)nearbyintf(zp_f);
    if (mq_tensor_alloc(&outputs[0], MQ_DTYPE_UINT8, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    if (n_outputs > 1 && mq_tensor_alloc(&outputs[1], MQ_DTYPE_FLOAT, 0, NULL, node->name, err))
        return MQ_ERR;
    if (n_outputs > 2 && mq_tensor_alloc(&outputs[2], MQ_DTYPE_UINT8, 0, NULL, node->name, err))
        return MQ_ERR;
    uint8_t *y = outputs[0].data;
    for (int64_t i = 0; i < x->count; i++)
        y[i] = (uint8_t)quantize_value(nearbyintf(xv[i] / scale) + (float)zp, 0.0f, 255.0f);
    if (n_outputs > 1)
        *(float *)outputs[1].data = scale;
    if (n_outputs > 2)
        *(uint8_t *)outputs[2].data = zp;
    return MQ_OK;
}

/* ---- integer GEMM helpers ------------------------------------------------------------ */

/* Is dtype one of the 8-bit operand types of the integer ops? */
static int is_int8_operand(int dtype) { return dtype == MQ_DTYPE_UINT8 || dtype == MQ_DTYPE_INT8; }

/*
 * Converts a [groups, rows, cols] view of an 8-bit tensor to double with the
 * zero point subtracted.  The mode says which zero point applies: one for
 * all, one per row or column, or one per row or column of each group (a
 * zero point of shape [..., M, 1] or [..., 1, N] following the batch).
 */
enum zp_mode { ZP_SCALAR, ZP_ROW, ZP_COL, ZP_GROUP_ROW, ZP_GROUP_COL };

#define TO_DOUBLE_BODY(T)                                                                     \
    do {                                                                                      \
        const T *s_ = (const T *)t->data;                                                     \
        for (int64_t g = 0; g < groups; g++)                                                  \
            for (int64_t r = 0; r < rows; r++) {                                              \
                const T *src = s_ + (g * rows + r) * cols;                                    \
                double *d = dst + (g * rows + r) * cols;                                      \
                switch (mode) {                                                               \
                case ZP_SCALAR:                                                               \
                case ZP_ROW:                                                                  \
                case ZP_GROUP_ROW: {                                                          \
                    int32_t z = mode == ZP_SCALAR ? zp[0]                                     \
                              : mode == ZP_ROW ? zp[r] : zp[g * rows + r];                    \
                    for (int64_t c = 0; c < cols; c++)                                        \
                        d[c] = (double)((int32_t)src[c] - z);                                 \
                    break;                                                                    \
                }                                                                             \
                case ZP_COL:                                                                  \
                case ZP_GROUP_COL: {                                                          \
                    const int32_t *zc = mode == ZP_COL ? zp : zp + g * cols;                  \
                    for (int64_t c = 0; c < cols; c++)                                        \
                        d[c] = (double)((int32_t)src[c] - zc[c]);                             \
                    break;                                                                    \
                }                                                                             \
                }                                                                             \
            }                                                                                 \
    } while (0)

static void to_double_minus_zp(const struct mq_tensor *t, double *dst, int64_t groups,
                               int64_t rows, int64_t cols, enum zp_mode mode, const int32_t *zp)
{
    if (t->dtype == MQ_DTYPE_UINT8)
        TO_DOUBLE_BODY(uint8_t);
    else
        TO_DOUBLE_BODY(int8_t);
}

/* An exact integer accumulation, wrapped to int32 as an int32 accumulator would. */
static inline int32_t acc_to_int32(double v)
{
    return (int32_t)(uint32_t)(uint64_t)(int64_t)v;
}

/* Requantizes int32 accumulators (bias already added) into the output's type. */
#define REQUANT_BODY(QT)                                                                      \
    do {                                                                                      \
        QT *y_ = (QT *)y;                                                                     \
        for (int64_t i = 0; i < n; i++) {                                                     \
            float v = nearbyintf((float)acc[i] * mult[i * mult_step]) + zp;                   \
            y_[i] = (QT)quantize_value(v, lo, hi);                                            \
        }                                                                                     \
    } while (0)

/* n accumulators, multiplier mult[i * mult_step], written at y (already offset). */
static void requantize(int dtype, void *y, const int32_t *acc, int64_t n, const float *mult,
                       int64_t mult_step, int32_t zero_point)
{
    int32_t qmin = 0, qmax = 0;
    quant_range(dtype, &qmin, &qmax);
    float lo = (float)qmin, hi = (float)qmax, zp = (float)zero_point;
    if (dtype == MQ_DTYPE_UINT8)
        REQUANT_BODY(uint8_t);
    else
        REQUANT_BODY(int8_t);
}

/* A scalar scale input (any float type) as float; error when it holds more than one value. */
static int scalar_scale(const struct mq_kernel_node *node, const struct mq_tensor *t,
                        const char *what, float *out, struct mq_error *err)
{
    if (!t)
        return mq_error_set(err, NODE_FMT "input '%s' is required", NODE_ARGS, what);
    if (!is_scale_type(t->dtype))
        return mq_error_set(err, NODE_FMT "%s has type %s, expected a float type", NODE_ARGS,
                            what, mq_dtype_name(t->dtype));
    if (t->count != 1)
        return mq_error_set(err, NODE_FMT "%s holds %lld values; it must be a scalar", NODE_ARGS,
                            what, (long long)t->count);
    read_float(t, out, 1);
    return MQ_OK;
}

static int scalar_zero_point(const struct mq_kernel_node *node, const struct mq_tensor *t,
                             const char *what, int want_dtype, int32_t *out, struct mq_error *err)
{
    *out = 0;
    if (!t)
        return MQ_OK;
    if (t->dtype != want_dtype)
        return mq_error_set(err, NODE_FMT "%s has type %s, expected %s", NODE_ARGS, what,
                            mq_dtype_name(t->dtype), mq_dtype_name(want_dtype));
    if (t->count != 1)
        return mq_error_set(err, NODE_FMT "%s holds %lld values; it must be a scalar", NODE_ARGS,
                            what, (long long)t->count);
    read_int32(t, out, 1);
    return MQ_OK;
}

/* ---- MatMulInteger / QLinearMatMul --------------------------------------------------- */

/* numpy matmul shapes: 1-D operands promoted, batch dims broadcast. */
struct mm_geom {
    int64_t M, K, N;
    int64_t batch;                  /* output batch count */
    int64_t a_batch, b_batch;       /* operands' own batch counts */
    int out_rank;
    int64_t out_dims[MQ_MAX_RANK];
    int batch_rank;
    int64_t batch_dims[MQ_MAX_RANK];
    int64_t a_bstride[MQ_MAX_RANK]; /* in matrices, 0 on broadcast dims */
    int64_t b_bstride[MQ_MAX_RANK];
};

static int mm_geom_build(const struct mq_kernel_node *node, const struct mq_tensor *a,
                         const struct mq_tensor *b, struct mm_geom *g, struct mq_error *err)
{
    char sa[128], sb[128];
    memset(g, 0, sizeof *g);
    if (a->rank == 0 || b->rank == 0)
        return mq_error_set(err, NODE_FMT "matmul operands must have rank >= 1, got %s and %s",
                            NODE_ARGS, mq_shape_format(a->rank, a->dims, sa, sizeof sa),
                            mq_shape_format(b->rank, b->dims, sb, sizeof sb));
    int64_t ad[MQ_MAX_RANK + 1], bd[MQ_MAX_RANK + 1];
    int ar = a->rank, br = b->rank;
    if (ar == 1) {
        ad[0] = 1;
        ad[1] = a->dims[0];
        ar = 2;
    } else {
        memcpy(ad, a->dims, (size_t)ar * sizeof *ad);
    }
    if (br == 1) {
        bd[0] = b->dims[0];
        bd[1] = 1;
        br = 2;
    } else {
        memcpy(bd, b->dims, (size_t)br * sizeof *bd);
    }
    g->M = ad[ar - 2];
    g->K = ad[ar - 1];
    g->N = bd[br - 1];
    if (bd[br - 2] != g->K)
        return mq_error_set(err, NODE_FMT "inner dimensions disagree: %s times %s", NODE_ARGS,
                            mq_shape_format(a->rank, a->dims, sa, sizeof sa),
                            mq_shape_format(b->rank, b->dims, sb, sizeof sb));
    int ab = ar - 2, bb = br - 2;
    g->batch_rank = ab > bb ? ab : bb;
    int64_t as = 1, bs = 1;
    g->a_batch = 1;
    g->b_batch = 1;
    for (int i = 0; i < ab; i++)
        g->a_batch *= ad[i];
    for (int i = 0; i < bb; i++)
        g->b_batch *= bd[i];
    g->batch = 1;
    for (int i = g->batch_rank - 1; i >= 0; i--) {
        int ia = i - (g->batch_rank - ab), ib = i - (g->batch_rank - bb);
        int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return mq_error_set(err, NODE_FMT "batch dimensions of %s and %s do not broadcast",
                                NODE_ARGS, mq_shape_format(a->rank, a->dims, sa, sizeof sa),
                                mq_shape_format(b->rank, b->dims, sb, sizeof sb));
        g->batch_dims[i] = da == 1 ? db : da;
        g->a_bstride[i] = da == 1 ? 0 : as;
        g->b_bstride[i] = db == 1 ? 0 : bs;
        as *= da;
        bs *= db;
        g->batch *= g->batch_dims[i];
    }
    g->out_rank = 0;
    for (int i = 0; i < g->batch_rank; i++)
        g->out_dims[g->out_rank++] = g->batch_dims[i];
    if (a->rank > 1)
        g->out_dims[g->out_rank++] = g->M;
    if (b->rank > 1)
        g->out_dims[g->out_rank++] = g->N;
    return MQ_OK;
}

/* Batch offsets (in matrices) of a and b for output batch index `ob`. */
static void mm_batch_offsets(const struct mm_geom *g, int64_t ob, int64_t *aoff, int64_t *boff)
{
    *aoff = 0;
    *boff = 0;
    for (int i = g->batch_rank - 1; i >= 0; i--) {
        int64_t idx = ob % g->batch_dims[i];
        ob /= g->batch_dims[i];
        *aoff += idx * g->a_bstride[i];
        *boff += idx * g->b_bstride[i];
    }
}

/*
 * Zero point of an operand: scalar, one per row of A (M values, or
 * a_batch * M for a [..., M, 1] tensor), one per column of B likewise.
 */
static int operand_zp_mode(const struct mq_kernel_node *node, const struct mq_tensor *zp,
                           const char *what, int operand_dtype, int64_t per, int64_t batch,
                           int per_row, enum zp_mode *mode, struct mq_error *err)
{
    *mode = ZP_SCALAR;
    if (!zp)
        return MQ_OK;
    if (zp->dtype != operand_dtype)
        return mq_error_set(err, NODE_FMT "%s has type %s, expected %s", NODE_ARGS, what,
                            mq_dtype_name(zp->dtype), mq_dtype_name(operand_dtype));
    if (zp->count == 1)
        *mode = ZP_SCALAR;
    else if (zp->count == per)
        *mode = per_row ? ZP_ROW : ZP_COL;
    else if (zp->count == per * batch)
        *mode = per_row ? ZP_GROUP_ROW : ZP_GROUP_COL;
    else
        return mq_error_set(err, NODE_FMT "%s holds %lld values; expected 1 or one per %s "
                            "(%lld)", NODE_ARGS, what, (long long)zp->count,
                            per_row ? "row" : "column", (long long)per);
    return MQ_OK;
}

/*
 * Computes the exact int32 accumulators of a quantized matmul into acc
 * (batch * M * N).  Zero points as operand_zp_mode describes.
 */
static int int_matmul(const struct mq_kernel_node *node, const struct mm_geom *g,
                      const struct mq_tensor *a, const struct mq_tensor *a_zp,
                      const struct mq_tensor *b, const struct mq_tensor *b_zp, int32_t *acc,
                      struct mq_error *err)
{
    enum zp_mode am, bm;
    if (operand_zp_mode(node, a_zp, "a_zero_point", a->dtype, g->M, g->a_batch, 1, &am, err) ||
        operand_zp_mode(node, b_zp, "b_zero_point", b->dtype, g->N, g->b_batch, 0, &bm, err))
        return MQ_ERR;
    int32_t zero = 0;
    struct mq_tensor ad = {0}, bd = {0}, cd = {0}, az = {0}, bz = {0};
    int rc = MQ_ERR;
    int64_t adims[2] = {g->a_batch * g->M, g->K}, bdims[2] = {g->b_batch * g->K, g->N};
    int64_t cdims[2] = {g->M, g->N};
    if (mq_tensor_alloc(&ad, MQ_DTYPE_DOUBLE, 2, adims, node->name, err) ||
        mq_tensor_alloc(&bd, MQ_DTYPE_DOUBLE, 2, bdims, node->name, err) ||
        mq_tensor_alloc(&cd, MQ_DTYPE_DOUBLE, 2, cdims, node->name, err))
        goto done;
    const int32_t *azv = &zero, *bzv = &zero;
    if (a_zp) {
        if (mq_tensor_alloc(&az, MQ_DTYPE_INT32, 1, &a_zp->count, node->name, err))
            goto done;
        read_int32(a_zp, az.data, a_zp->count);
        azv = az.data;
    }
    if (b_zp) {
        if (mq_tensor_alloc(&bz, MQ_DTYPE_INT32, 1, &b_zp->count, node->name, err))
            goto done;
        read_int32(b_zp, bz.data, b_zp->count);
        bzv = bz.data;
    }
    to_double_minus_zp(a, ad.data, g->a_batch, g->M, g->K, am, azv);
    to_double_minus_zp(b, bd.data, g->b_batch, g->K, g->N, bm, bzv);
    int64_t mn = g->M * g->N;
    for (int64_t ob = 0; ob < g->batch; ob++) {
        int64_t ao, bo;
        mm_batch_offsets(g, ob, &ao, &bo);
        double *c = cd.data;
        if (g->K == 0) {
            memset(c, 0, (size_t)mn * sizeof *c);
        } else if (mn > 0) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->M, (int)g->N,
                        (int)g->K, 1.0, (const double *)ad.data + ao * g->M * g->K, (int)g->K,
                        (const double *)bd.data + bo * g->K * g->N, (int)g->N, 0.0, c,
                        (int)g->N);
        }
        int32_t *dst = acc + ob * mn;
        for (int64_t i = 0; i < mn; i++)
            dst[i] = acc_to_int32(c[i]);
    }
    rc = MQ_OK;
done:
    mq_tensor_free(&ad);
    mq_tensor_free(&bd);
    mq_tensor_free(&cd);
    mq_tensor_free(&az);
    mq_tensor_free(&bz);
    return rc;
}

/* BLAS takes int dimensions. */
static int check_blas_dims(const struct mq_kernel_node *node, int64_t m, int64_t n, int64_t k,
                           struct mq_error *err)
{
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return mq_error_set(err, NODE_FMT "matrix dimensions %lld x %lld x %lld exceed the BLAS "
                            "limit", NODE_ARGS, (long long)m, (long long)k, (long long)n);
    return MQ_OK;
}

static int matmul_integer_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct mq_tensor *a = inputs[0], *b = n_inputs > 1 ? inputs[1] : NULL;
    if (!a || !b)
        return mq_error_set(err, NODE_FMT "inputs 'A' and 'B' are required", NODE_ARGS);
    if (!is_int8_operand(a->dtype))
        return refuse_type(node, "input 'A'", a->dtype, err);
    if (!is_int8_operand(b->dtype))
        return refuse_type(node, "input 'B'", b->dtype, err);
    struct mm_geom g;
    if (mm_geom_build(node, a, b, &g, err) || check_blas_dims(node, g.M, g.N, g.K, err))
        return MQ_ERR;
    if (mq_tensor_alloc(&outputs[0], MQ_DTYPE_INT32, g.out_rank, g.out_dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    return int_matmul(node, &g, a, n_inputs > 2 ? inputs[2] : NULL, b,
                      n_inputs > 3 ? inputs[3] : NULL, outputs[0].data, err);
}

static int qlinear_matmul_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct mq_tensor *in[8] = {0};
    for (int i = 0; i < 8 && i < n_inputs; i++)
        in[i] = inputs[i];
    const struct mq_tensor *a = in[0], *b = in[3], *b_scale = in[4], *y_zp = in[7];
    if (!a || !b || !b_scale || !in[1] || !in[6])
        return mq_error_set(err, NODE_FMT "inputs a, a_scale, b, b_scale and y_scale are "
                            "required", NODE_ARGS);
    if (!is_int8_operand(a->dtype))
        return refuse_type(node, "input 'a'", a->dtype, err);
    if (!is_int8_operand(b->dtype))
        return refuse_type(node, "input 'b'", b->dtype, err);
    int ytype = y_zp ? y_zp->dtype : MQ_DTYPE_UINT8;
    if (!is_int8_operand(ytype))
        return refuse_type(node, "y_zero_point", ytype, err);
    float a_scale, y_scale;
    int32_t a_zero, y_zero;
    if (scalar_scale(node, in[1], "a_scale", &a_scale, err) ||
        scalar_scale(node, in[6], "y_scale", &y_scale, err) ||
        scalar_zero_point(node, in[2], "a_zero_point", a->dtype, &a_zero, err) ||
        scalar_zero_point(node, y_zp, "y_zero_point", ytype, &y_zero, err))
        return MQ_ERR;
    (void)a_zero;
    if (!is_scale_type(b_scale->dtype))
        return mq_error_set(err, NODE_FMT "b_scale has type %s, expected a float type",
                            NODE_ARGS, mq_dtype_name(b_scale->dtype));
    struct mm_geom g;
    if (mm_geom_build(node, a, b, &g, err) || check_blas_dims(node, g.M, g.N, g.K, err))
        return MQ_ERR;
    /* b_scale follows b_zero_point's granularity: scalar or one per column. */
    if (b_scale->count != 1 && b_scale->count != g.N)
        return mq_error_set(err, NODE_FMT "b_scale holds %lld values; expected 1 or one per "
                            "column (%lld)", NODE_ARGS, (long long)b_scale->count,
                            (long long)g.N);
    if (mq_tensor_alloc(&outputs[0], ytype, g.out_rank, g.out_dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    struct mq_tensor acc = {0}, mult = {0};
    int rc = MQ_ERR;
    int64_t nmult = g.N;
    if (mq_tensor_alloc(&acc, MQ_DTYPE_INT32, 1, &outputs[0].count, node->name, err) ||
        mq_tensor_alloc(&mult, MQ_DTYPE_FLOAT, 1, &nmult, node->name, err))
        goto done;
    if (int_matmul(node, &g, a, in[2], b, in[5], acc.data, err))
        goto done;
    float *mv = mult.data;
    read_float(b_scale, mv, b_scale->count);
    for (int64_t n = g.N - 1; n >= 0; n--)
        mv[n] = a_scale * mv[b_scale->count == 1 ? 0 : n] / y_scale;
    const int32_t *av = acc.data;
    size_t esz = mq_dtype_size(ytype);
    for (int64_t row = 0; row < outputs[0].count / g.N; row++)
        requantize(ytype, (char *)outputs[0].data + (size_t)(row * g.N) * esz, av + row * g.N,
                   g.N, mv, 1, y_zero);
    rc = MQ_OK;
done:
    mq_tensor_free(&acc);
    mq_tensor_free(&mult);
    return rc;
}

/* ---- ConvInteger / QLinearConv -------------------------------------------------------- */

enum auto_pad { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

struct conv_state {
    enum auto_pad auto_pad;
    int64_t group;
    int n_kernel;  /* -1 when kernel_shape is absent */
    int64_t kernel[MQ_MAX_RANK];
    int n_strides, n_dilations, n_pads;
    int64_t strides[MQ_MAX_RANK];
    int64_t dilations[MQ_MAX_RANK];
    int64_t pads[2 * MQ_MAX_RANK];
};

static int copy_ints(const struct mq_kernel_node *node, const char *name, int64_t *dst, int max,
                     int *n_out, struct mq_error *err)
{
    const int64_t *v;
    int64_t n = mq_attr_ints(node, name, &v);
    *n_out = (int)n;
    if (n < 0)
        return MQ_OK;
    if (n > max)
        return mq_error_set(err, NODE_FMT "attribute %s has %lld values, more than %d", NODE_ARGS,
                            name, (long long)n, max);
    for (int64_t i = 0; i < n; i++)
        dst[i] = v[i];
    return MQ_OK;
}

static int conv_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, NODE_FMT "out of memory", NODE_ARGS);
    char buf[32];
    const char *ap = mq_attr_string(node, "auto_pad", "NOTSET", buf, sizeof buf);
    int rc = MQ_OK;
    if (strcmp(ap, "NOTSET") == 0)
        s->auto_pad = PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        s->auto_pad = PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        s->auto_pad = PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        s->auto_pad = PAD_VALID;
    else
        rc = mq_error_set(err, NODE_FMT "auto_pad '%s' is not one of NOTSET, SAME_UPPER, "
                          "SAME_LOWER, VALID", NODE_ARGS, ap);
    s->group = mq_attr_int(node, "group", 1);
    if (!rc && s->group < 1)
        rc = mq_error_set(err, NODE_FMT "group %lld must be >= 1", NODE_ARGS,
                          (long long)s->group);
    if (!rc)
        rc = copy_ints(node, "kernel_shape", s->kernel, MQ_MAX_RANK, &s->n_kernel, err);
    if (!rc)
        rc = copy_ints(node, "strides", s->strides, MQ_MAX_RANK, &s->n_strides, err);
    if (!rc)
        rc = copy_ints(node, "dilations", s->dilations, MQ_MAX_RANK, &s->n_dilations, err);
    if (!rc)
        rc = copy_ints(node, "pads", s->pads, 2 * MQ_MAX_RANK, &s->n_pads, err);
    for (int i = 0; !rc && i < s->n_strides; i++)
        if (s->strides[i] < 1)
            rc = mq_error_set(err, NODE_FMT "strides must be >= 1", NODE_ARGS);
    for (int i = 0; !rc && i < s->n_dilations; i++)
        if (s->dilations[i] < 1)
            rc = mq_error_set(err, NODE_FMT "dilations must be >= 1", NODE_ARGS);
    for (int i = 0; !rc && i < s->n_pads; i++)
        if (s->pads[i] < 0)
            rc = mq_error_set(err, NODE_FMT "pads must be >= 0", NODE_ARGS);
    if (rc) {
        free(s);
        return rc;
    }
    node->state = s;
    return MQ_OK;
}

static void conv_destroy(void *state) { free(state); }

struct conv_geom {
    int nsp;                        /* spatial rank */
    int64_t N, C, M, G, Cg, Mg;
    int64_t in_sp[MQ_MAX_RANK], k[MQ_MAX_RANK], out_sp[MQ_MAX_RANK];
    int64_t stride[MQ_MAX_RANK], dil[MQ_MAX_RANK], pad_begin[MQ_MAX_RANK];
    int64_t in_size, k_size, out_size; /* spatial products */
};

static int conv_geom_build(const struct mq_kernel_node *node, const struct conv_state *s,
                           const struct mq_tensor *x, const struct mq_tensor *w,
                           struct conv_geom *g, struct mq_error *err)
{
    char sx[128], sw[128];
    memset(g, 0, sizeof *g);
    if (x->rank < 3 || w->rank != x->rank)
        return mq_error_set(err, NODE_FMT "input %s and weight %s must have the same rank >= 3",
                            NODE_ARGS, mq_shape_format(x->rank, x->dims, sx, sizeof sx),
                            mq_shape_format(w->rank, w->dims, sw, sizeof sw));
    g->nsp = x->rank - 2;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = w->dims[0];
    g->G = s->group;
    if (g->C % g->G || g->M % g->G || w->dims[1] * g->G != g->C)
        return mq_error_set(err, NODE_FMT "input %s, weight %s and group %lld disagree on "
                            "channels", NODE_ARGS, mq_shape_format(x->rank, x->dims, sx, sizeof sx),
                            mq_shape_format(w->rank, w->dims, sw, sizeof sw), (long long)g->G);
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
    if (s->n_kernel >= 0 && s->n_kernel != g->nsp)
        return mq_error_set(err, NODE_FMT "kernel_shape has %d values for %d spatial dims",
                            NODE_ARGS, s->n_kernel, g->nsp);
    if ((s->n_strides >= 0 && s->n_strides != g->nsp) ||
        (s->n_dilations >= 0 && s->n_dilations != g->nsp) ||
        (s->n_pads >= 0 && s->n_pads != 2 * g->nsp))
        return mq_error_set(err, NODE_FMT "strides, dilations or pads do not match %d spatial "
                            "dims", NODE_ARGS, g->nsp);
    g->in_size = g->k_size = g->out_size = 1;
    for (int i = 0; i < g->nsp; i++) {
        int64_t in = x->dims[2 + i], k = w->dims[2 + i];
        if (s->n_kernel >= 0 && s->kernel[i] != k)
            return mq_error_set(err, NODE_FMT "kernel_shape disagrees with weight %s", NODE_ARGS,
                                mq_shape_format(w->rank, w->dims, sw, sizeof sw));
        int64_t st = s->n_strides > 0 ? s->strides[i] : 1;
        int64_t d = s->n_dilations > 0 ? s->dilations[i] : 1;
        int64_t ek = (k - 1) * d + 1;
        int64_t pb = 0, pe = 0, out;
        switch (s->auto_pad) {
        case PAD_NOTSET:
            pb = s->n_pads > 0 ? s->pads[i] : 0;
            pe = s->n_pads > 0 ? s->pads[i + g->nsp] : 0;
            out = in + pb + pe >= ek ? (in + pb + pe - ek) / st + 1 : 0;
            break;
        case PAD_VALID:
            out = in >= ek ? (in - ek) / st + 1 : 0;
            break;
        default: {
            out = (in + st - 1) / st;
            int64_t total = (out - 1) * st + ek - in;
            total = total > 0 ? total : 0;
            pb = s->auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            break;
        }
        }
        if (k < 1 || out < 1)
            return mq_error_set(err, NODE_FMT "input %s and kernel %s give an empty output",
                                NODE_ARGS, mq_shape_format(x->rank, x->dims, sx, sizeof sx),
                                mq_shape_format(w->rank, w->dims, sw, sizeof sw));
        g->in_sp[i] = in;
        g->k[i] = k;
        g->out_sp[i] = out;
        g->stride[i] = st;
        g->dil[i] = d;
        g->pad_begin[i] = pb;
        g->in_size *= in;
        g->k_size *= k;
        g->out_size *= out;
    }
    return MQ_OK;
}

/*
 * im2col of one (image, group) as double with the zero point subtracted, so
 * padding (which holds the zero point) contributes exactly 0.
 * col is [Cg * k_size, out_size].
 */
#define IM2COL_BODY(T)                                                                        \
    do {                                                                                      \
        const T *xs = (const T *)x->data;                                                     \
        for (int64_t c = 0; c < g->Cg; c++) {                                                 \
            const T *plane = xs + ((n * g->C) + grp * g->Cg + c) * g->in_size;                \
            for (int64_t kk = 0; kk < g->k_size; kk++) {                                      \
                int64_t kidx[MQ_MAX_RANK], rem = kk;                                          \
                for (int d = g->nsp - 1; d >= 0; d--) {                                       \
                    kidx[d] = rem % g->k[d];                                                  \
                    rem /= g->k[d];                                                           \
                }                                                                             \
                double *row = col + (c * g->k_size + kk) * g->out_size;                       \
                int64_t oidx[MQ_MAX_RANK] = {0};                                              \
                for (int64_t op = 0; op < g->out_size; op++) {                                \
                    int64_t off = 0;                                                          \
                    int inside = 1;                                                           \
                    for (int d = 0; d < g->nsp; d++) {                                        \
                        int64_t p = oidx[d] * g->stride[d] - g->pad_begin[d] +                \
                                    kidx[d] * g->dil[d];                                      \
                        if (p < 0 || p >= g->in_sp[d]) {                                      \
                            inside = 0;                                                       \
                            break;                                                            \
                        }                                                                     \
                        off = off * g->in_sp[d] + p;                                          \
                    }                                                                         \
                    row[op] = inside ? (double)((int32_t)plane[off] - xzp) : 0.0;             \
                    for (int d = g->nsp - 1; d >= 0; d--) {                                   \
                        if (++oidx[d] < g->out_sp[d])                                         \
                            break;                                                            \
                        oidx[d] = 0;                                                          \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static void im2col(const struct conv_geom *g, const struct mq_tensor *x, int64_t n, int64_t grp,
                   int32_t xzp, double *col)
{
    if (x->dtype == MQ_DTYPE_UINT8)
        IM2COL_BODY(uint8_t);
    else
        IM2COL_BODY(int8_t);
}

/*
 * The exact int32 accumulators of an integer convolution (bias added when
 * given), [N, M, out_size], into acc.  w_zp holds one value or one per M.
 */
static int int_conv(const struct mq_kernel_node *node, const struct conv_geom *g,
                    const struct mq_tensor *x, int32_t xzp, const struct mq_tensor *w,
                    const struct mq_tensor *w_zp, const int32_t *bias, int32_t *acc,
                    struct mq_error *err)
{
    enum zp_mode wm = ZP_SCALAR;
    if (w_zp) {
        if (w_zp->dtype != w->dtype)
            return mq_error_set(err, NODE_FMT "w_zero_point has type %s, expected %s", NODE_ARGS,
                                mq_dtype_name(w_zp->dtype), mq_dtype_name(w->dtype));
        if (w_zp->count == g->M && g->M != 1)
            wm = ZP_ROW;
        else if (w_zp->count != 1)
            return mq_error_set(err, NODE_FMT "w_zero_point holds %lld values; expected 1 or one "
                                "per output channel (%lld)", NODE_ARGS, (long long)w_zp->count,
                                (long long)g->M);
    }
    int64_t kdim = g->Cg * g->k_size;
    if (check_blas_dims(node, g->Mg, g->out_size, kdim, err))
        return MQ_ERR;
    struct mq_tensor wd = {0}, col = {0}, out = {0}, wz = {0};
    int rc = MQ_ERR;
    int64_t wdims[2] = {g->M, kdim}, cdims[2] = {kdim, g->out_size},
            odims[2] = {g->Mg, g->out_size};
    int32_t zero = 0;
    const int32_t *wzv = &zero;
    if (mq_tensor_alloc(&wd, MQ_DTYPE_DOUBLE, 2, wdims, node->name, err) ||
        mq_tensor_alloc(&col, MQ_DTYPE_DOUBLE, 2, cdims, node->name, err) ||
        mq_tensor_alloc(&out, MQ_DTYPE_DOUBLE, 2, odims, node->name, err))
        goto done;
    if (w_zp) {
        if (mq_tensor_alloc(&wz, MQ_DTYPE_INT32, 1, &w_zp->count, node->name, err))
            goto done;
        read_int32(w_zp, wz.data, w_zp->count);
        wzv = wz.data;
    }
    to_double_minus_zp(w, wd.data, 1, g->M, kdim, wm, wzv);
    for (int64_t n = 0; n < g->N; n++) {
        for (int64_t grp = 0; grp < g->G; grp++) {
            im2col(g, x, n, grp, xzp, col.data);
            double *o = out.data;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->Mg, (int)g->out_size,
                        (int)kdim, 1.0, (const double *)wd.data + grp * g->Mg * kdim, (int)kdim,
                        col.data, (int)g->out_size, 0.0, o, (int)g->out_size);
            for (int64_t m = 0; m < g->Mg; m++) {
                int64_t oc = grp * g->Mg + m;
                int32_t b = bias ? bias[oc] : 0;
                int32_t *dst = acc + (n * g->M + oc) * g->out_size;
                const double *src = o + m * g->out_size;
                for (int64_t p = 0; p < g->out_size; p++)
                    dst[p] = (int32_t)((uint32_t)acc_to_int32(src[p]) + (uint32_t)b);
            }
        }
    }
    rc = MQ_OK;
done:
    mq_tensor_free(&wd);
    mq_tensor_free(&col);
    mq_tensor_free(&out);
    mq_tensor_free(&wz);
    return rc;
}

static void conv_out_dims(const struct conv_geom *g, int64_t *dims)
{
    dims[0] = g->N;
    dims[1] = g->M;
    for (int i = 0; i < g->nsp; i++)
        dims[2 + i] = g->out_sp[i];
}

static int conv_integer_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct conv_state *s = node->state;
    const struct mq_tensor *x = inputs[0], *w = n_inputs > 1 ? inputs[1] : NULL;
    if (!x || !w)
        return mq_error_set(err, NODE_FMT "inputs 'x' and 'w' are required", NODE_ARGS);
    if (!is_int8_operand(x->dtype))
        return refuse_type(node, "input 'x'", x->dtype, err);
    if (!is_int8_operand(w->dtype))
        return refuse_type(node, "input 'w'", w->dtype, err);
    int32_t xzp;
    if (scalar_zero_point(node, n_inputs > 2 ? inputs[2] : NULL, "x_zero_point", x->dtype, &xzp,
                          err))
        return MQ_ERR;
    struct conv_geom g;
    if (conv_geom_build(node, s, x, w, &g, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    conv_out_dims(&g, dims);
    if (mq_tensor_alloc(&outputs[0], MQ_DTYPE_INT32, x->rank, dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    return int_conv(node, &g, x, xzp, w, n_inputs > 3 ? inputs[3] : NULL, NULL,
                    outputs[0].data, err);
}

static int qlinear_conv_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct conv_state *s = node->state;
    const struct mq_tensor *in[9] = {0};
    for (int i = 0; i < 9 && i < n_inputs; i++)
        in[i] = inputs[i];
    const struct mq_tensor *x = in[0], *w = in[3], *w_scale = in[4], *y_zp = in[7], *bias = in[8];
    if (!x || !w || !in[1] || !w_scale || !in[6])
        return mq_error_set(err, NODE_FMT "inputs x, x_scale, w, w_scale and y_scale are "
                            "required", NODE_ARGS);
    if (!is_int8_operand(x->dtype))
        return refuse_type(node, "input 'x'", x->dtype, err);
    if (!is_int8_operand(w->dtype))
        return refuse_type(node, "input 'w'", w->dtype, err);
    int ytype = y_zp ? y_zp->dtype : x->dtype;
    if (!is_int8_operand(ytype))
        return refuse_type(node, "y_zero_point", ytype, err);
    float x_scale, y_scale;
    int32_t xzp, yzp;
    if (scalar_scale(node, in[1], "x_scale", &x_scale, err) ||
        scalar_scale(node, in[6], "y_scale", &y_scale, err) ||
        scalar_zero_point(node, in[2], "x_zero_point", x->dtype, &xzp, err) ||
        scalar_zero_point(node, y_zp, "y_zero_point", ytype, &yzp, err))
        return MQ_ERR;
    struct conv_geom g;
    if (conv_geom_build(node, s, x, w, &g, err))
        return MQ_ERR;
    if (!is_scale_type(w_scale->dtype) || (w_scale->count != 1 && w_scale->count != g.M))
        return mq_error_set(err, NODE_FMT "w_scale (%s, %lld values) must be float with 1 value "
                            "or one per output channel (%lld)", NODE_ARGS,
                            mq_dtype_name(w_scale->dtype), (long long)w_scale->count,
                            (long long)g.M);
    if (bias && (bias->dtype != MQ_DTYPE_INT32 || bias->count != g.M))
        return mq_error_set(err, NODE_FMT "bias B (%s, %lld values) must be int32 with one value "
                            "per output channel (%lld)", NODE_ARGS, mq_dtype_name(bias->dtype),
                            (long long)bias->count, (long long)g.M);
    int64_t dims[MQ_MAX_RANK];
    conv_out_dims(&g, dims);
    if (mq_tensor_alloc(&outputs[0], ytype, x->rank, dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;
    struct mq_tensor acc = {0}, mult = {0};
    int rc = MQ_ERR;
    if (mq_tensor_alloc(&acc, MQ_DTYPE_INT32, x->rank, dims, node->name, err) ||
        mq_tensor_alloc(&mult, MQ_DTYPE_FLOAT, 1, &g.M, node->name, err))
        goto done;
    if (int_conv(node, &g, x, xzp, w, in[5], bias ? bias->data : NULL, acc.data, err))
        goto done;
    float *mv = mult.data;
    read_float(w_scale, mv, w_scale->count);
    for (int64_t m = g.M - 1; m >= 0; m--)
        mv[m] = x_scale * mv[w_scale->count == 1 ? 0 : m] / y_scale;
    size_t esz = mq_dtype_size(ytype);
    const int32_t *av = acc.data;
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t m = 0; m < g.M; m++) {
            int64_t off = (n * g.M + m) * g.out_size;
            requantize(ytype, (char *)outputs[0].data + (size_t)off * esz, av + off, g.out_size,
                       mv + m, 0, yzp);
        }
    rc = MQ_OK;
done:
    mq_tensor_free(&acc);
    mq_tensor_free(&mult);
    return rc;
}

/*
 * QuantizeLinear/DequantizeLinear: 10 per-tensor; 13 adds `axis`; 19 adds
 * float16/bfloat16 scales and inputs, float8 and `saturate` (float8 only, so
 * refused with the type); 21 adds `block_size`, int16/uint16 and 4-bit types
 * (refused), and `output_dtype` on QuantizeLinear.
 */
const struct mq_kernel mq_kernels_quantize[] = {
    {"", "QuantizeLinear", 10, 12, qdq_prepare, quantize_run, qdq_destroy},
    {"", "QuantizeLinear", 13, 18, qdq_prepare, quantize_run, qdq_destroy},
    {"", "QuantizeLinear", 19, 20, qdq_prepare, quantize_run, qdq_destroy},
    {"", "QuantizeLinear", 21, 0, qdq_prepare, quantize_run, qdq_destroy},
    {"", "DequantizeLinear", 10, 12, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DequantizeLinear", 13, 18, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DequantizeLinear", 19, 20, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DequantizeLinear", 21, 0, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DynamicQuantizeLinear", 11, 0, NULL, dynamic_quantize_run, NULL},
    {"", "MatMulInteger", 10, 0, NULL, matmul_integer_run, NULL},
    /* 21 widened the scale types to float16/bfloat16 and added float8 (refused by type). */
    {"", "QLinearMatMul", 10, 20, NULL, qlinear_matmul_run, NULL},
    {"", "QLinearMatMul", 21, 0, NULL, qlinear_matmul_run, NULL},
    {"", "ConvInteger", 10, 0, conv_prepare, conv_integer_run, conv_destroy},
    {"", "QLinearConv", 10, 0, conv_prepare, qlinear_conv_run, conv_destroy},
    {0},
};
