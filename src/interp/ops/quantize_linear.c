/*
 * QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear: conversions
 * between float tensors and quantized integer tensors.
 *
 * Numbers follow onnxruntime's CPU kernels:
 *   quantize   q = clamp(nearbyintf(x / scale) + zero_point, qmin, qmax), the
 *              division in float, rounding half to even before adding the zero
 *              point; NaN goes to qmin as onnxruntime's max/min clamp leaves it.
 *   dequantize y = (float)(x - zero_point) * scale.
 * Scales and zero points are per tensor, per axis or per block.
 * The narrow integers (int4, uint4, int2, uint2) quantize as the wide ones with their own
 * ranges; the small floats (float8 x4, float4e2m1) take q = encode(x / scale + zero_point),
 * rounding to nearest even and saturating unless `saturate` is 0, and dequantize as
 * (decode(x) - decode(zero_point)) * scale.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "core/dtype.h"
#include "interp/kernel.h"
#include "interp/ops/quant_types.h"
#include "interp/ops/quantize_rows.h"
#include "core/tensor.h"

/* ---- QuantizeLinear / DequantizeLinear ----------------------------------------------- */

struct qdq_state {
    int64_t axis;
    int64_t block_size;
    int output_dtype; /* 0 when not given */
    int per_axis_allowed;
    int saturate;     /* QuantizeLinear-19+: small-float outputs clamp to their largest value */
};

/* Quantized types QuantizeLinear/DequantizeLinear take: 8/16-bit and narrow integers (with
   their ranges), and the small floats (range unused). */
static int qdq_type(int dtype, int32_t *qmin, int32_t *qmax)
{
    if (quant_range(dtype, qmin, qmax) == 0)
        return 0;
    if (mq_dtype_is_narrow_int(dtype))
        return mq_dtype_int_range(dtype, qmin, qmax);
    if (mq_dtype_kind(dtype) == MQ_KIND_SMALL_FLOAT && dtype != MQ_DTYPE_FLOAT8E8M0) {
        *qmin = *qmax = 0;
        return 0;
    }
    return -1;
}

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
    s->saturate = node->opset >= 19 ? mq_attr_int(node, "saturate", 1) != 0 : 1;
    int rc = MQ_OK;
    if (s->block_size < 0)
        rc = mq_error_set(err, NODE_FMT "block_size %lld is negative", NODE_ARGS,
                          (long long)s->block_size);
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

/* The integer types the row kernels (quantize_rows.c) take: the 8- and 16-bit ones with their
   full ranges, not the narrow ones held in them. */
static int rows_type(int dtype)
{
    return dtype == MQ_DTYPE_UINT8 || dtype == MQ_DTYPE_INT8 || dtype == MQ_DTYPE_UINT16 ||
           dtype == MQ_DTYPE_INT16;
}

/*
 * One body per output type.  Per-tensor and per-axis hoist the scale out of
 * the innermost loop; blocked reads one per element of the inner run.
 */
#define QUANTIZE_BODY(QT, ROUND, STORE)                                                       \
    do {                                                                                      \
        QT *y = (QT *)out->data;                                                              \
        int64_t e = 0;                                                                        \
        for (int64_t o = 0; o < lay->outer; o++) {                                            \
            for (int64_t j = 0; j < lay->axis_len; j++) {                                     \
                if (lay->mode == QMODE_BLOCKED) {                                             \
                    int64_t base = (o * lay->scale_axis + j / lay->block) * lay->inner;       \
                    for (int64_t k = 0; k < lay->inner; k++, e++) {                           \
                        float v = ROUND(x[e] / sc[base + k]) + (float)zp[base + k];           \
                        y[e] = (QT)STORE(v);                                                  \
                    }                                                                         \
                } else {                                                                      \
                    int64_t p = lay->mode == QMODE_AXIS ? j : 0;                              \
                    float s_ = sc[p], z_ = (float)zp[p];                                      \
                    for (int64_t k = 0; k < lay->inner; k++, e++) {                           \
                        float v = ROUND(x[e] / s_) + z_;                                      \
                        y[e] = (QT)STORE(v);                                                  \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#define INT_STORE(v) quantize_value(v, lo, hi)
#define SMALL_STORE(v) mq_small_float_encode(dtype, v, saturate, MQ_ROUND_NEAREST)
#define NO_ROUND(v) (v)

/* Per-tensor and per-axis integer quantization: a row of `inner` values per scale, written
   straight into the output type. */
static void quantize_rows(struct mq_tensor *out, const float *x, const float *sc,
                          const int32_t *zp, int storage, const struct qlayout *lay)
{
    const struct mq_qrows_ops *rows = mq_qrows_best();
    size_t size = mq_dtype_info(storage)->size;
    int64_t e = 0;
    for (int64_t o = 0; o < lay->outer; o++)
        for (int64_t j = 0; j < lay->axis_len; j++, e += lay->inner) {
            int64_t p = lay->mode == QMODE_AXIS ? j : 0;
            rows->quantize(x + e, lay->inner, sc[p], zp[p], storage,
                           (char *)out->data + (size_t)e * size);
        }
}

/* zp holds int32 zero points, or for small-float outputs their values as float bits. */
static void quantize_into(struct mq_tensor *out, const float *x, const float *sc,
                          const int32_t *zp_int, const float *zp_float, int saturate,
                          const struct qlayout *lay)
{
    int32_t qmin = 0, qmax = 0;
    qdq_type(out->dtype, &qmin, &qmax);
    float lo = (float)qmin, hi = (float)qmax;
    int dtype = out->dtype;
    if (mq_dtype_kind(dtype) == MQ_KIND_SMALL_FLOAT) {
        const float *zp = zp_float;
        QUANTIZE_BODY(uint8_t, NO_ROUND, SMALL_STORE);
        return;
    }
    const int32_t *zp = zp_int;
    int storage = mq_dtype_info(dtype)->storage;
    if (lay->mode != QMODE_BLOCKED && rows_type(dtype)) {
        quantize_rows(out, x, sc, zp, storage, lay);
        return;
    }
    switch (mq_dtype_info(dtype)->storage) {
    case MQ_DTYPE_UINT8: QUANTIZE_BODY(uint8_t, nearbyintf, INT_STORE); break;
    case MQ_DTYPE_INT8: QUANTIZE_BODY(int8_t, nearbyintf, INT_STORE); break;
    case MQ_DTYPE_UINT16: QUANTIZE_BODY(uint16_t, nearbyintf, INT_STORE); break;
    case MQ_DTYPE_INT16: QUANTIZE_BODY(int16_t, nearbyintf, INT_STORE); break;
    default: break;
    }
}

/* Zero points as int32 (zeros when absent; small floats: as float32), scales as float: both
   small, read once. */
static int read_params(const struct mq_kernel_node *node, const struct mq_tensor *scale,
                       const struct mq_tensor *zp, struct mq_tensor *sc_buf,
                       struct mq_tensor *zp_buf, struct mq_error *err)
{
    if (mq_tensor_alloc(sc_buf, MQ_DTYPE_FLOAT, scale->rank, scale->dims, node->name, err))
        return MQ_ERR;
    read_float(scale, sc_buf->data, scale->count);
    int small = zp && mq_dtype_kind(zp->dtype) == MQ_KIND_SMALL_FLOAT;
    if (mq_tensor_alloc(zp_buf, small ? MQ_DTYPE_FLOAT : MQ_DTYPE_INT32, scale->rank,
                        scale->dims, node->name, err))
        return MQ_ERR;
    if (small) {
        for (int64_t i = 0; i < zp->count; i++)
            ((float *)zp_buf->data)[i] = mq_small_float_decode(zp->dtype,
                                                               ((const uint8_t *)zp->data)[i]);
    } else if (zp && mq_dtype_is_narrow_int(zp->dtype)) {
        for (int64_t i = 0; i < zp->count; i++)
            ((int32_t *)zp_buf->data)[i] = (int32_t)mq_tensor_get_int64(zp, i);
    } else if (zp) {
        read_int32(zp, zp_buf->data, zp->count);
    }
    return MQ_OK;
}

/* Inputs x, scale and the optional zero point of QuantizeLinear and DequantizeLinear (scale_name:
   the scale's name in the operator's spec, for the message when x or scale is missing). */
static int qdq_inputs(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                      int n_inputs, const char *scale_name, const struct mq_tensor **x,
                      const struct mq_tensor **scale, const struct mq_tensor **zp,
                      struct mq_error *err)
{
    *x = inputs[0];
    *scale = n_inputs > 1 ? inputs[1] : NULL;
    *zp = n_inputs > 2 ? inputs[2] : NULL;
    if (!*x || !*scale)
        return mq_error_set(err, NODE_FMT "inputs 'x' and '%s' are required", NODE_ARGS,
                            scale_name);
    return MQ_OK;
}

static int quantize_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                        const struct mq_tensor *const *inputs, int n_inputs,
                        struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct qdq_state *s = node->state;
    const struct mq_tensor *x, *scale, *zp;
    if (qdq_inputs(node, inputs, n_inputs, "y_scale", &x, &scale, &zp, err))
        return MQ_ERR;
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
    if (qdq_type(qtype, &qmin, &qmax))
        return refuse_type(node, "the quantized output", qtype, err);
    if ((qtype == MQ_DTYPE_INT16 || qtype == MQ_DTYPE_UINT16) && node->opset < 21)
        return mq_error_set(err, NODE_FMT "%s output needs opset 21, the model imports %d",
                            NODE_ARGS, mq_dtype_name(qtype), node->opset);
    struct qlayout lay;
    if (qdq_layout(node, s, x, scale, zp, &lay, err))
        return MQ_ERR;
    /* quantize_into writes every element: no zero fill first */
    if (mq_tensor_alloc_uninit(&outputs[0], qtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    struct mq_tensor xs = {0}, sc = {0}, zb = {0};
    const float *xf;
    int rc = MQ_ERR;
    if (float_view(node, x, &xs, &xf, err) || read_params(node, scale, zp, &sc, &zb, err))
        goto done;
    quantize_into(&outputs[0], xf, sc.data, zb.data, zb.data, s->saturate, &lay);
    rc = MQ_OK;
done:
    mq_tensor_free(&xs);
    mq_tensor_free(&sc);
    mq_tensor_free(&zb);
    return rc;
}

#define DEQUANTIZE_BODY(QT, ZT, SRC)                                                          \
    do {                                                                                      \
        const QT *q = (const QT *)(SRC);                                                      \
        int64_t e = 0;                                                                        \
        for (int64_t o = 0; o < lay->outer; o++) {                                            \
            for (int64_t j = 0; j < lay->axis_len; j++) {                                     \
                if (lay->mode == QMODE_BLOCKED) {                                             \
                    int64_t base = (o * lay->scale_axis + j / lay->block) * lay->inner;       \
                    for (int64_t k = 0; k < lay->inner; k++, e++)                             \
                        y[e] = (float)((ZT)q[e] - zp[base + k]) * sc[base + k];               \
                } else {                                                                      \
                    int64_t p = lay->mode == QMODE_AXIS ? j : 0;                              \
                    float s_ = sc[p];                                                         \
                    ZT z_ = zp[p];                                                            \
                    for (int64_t k = 0; k < lay->inner; k++, e++)                             \
                        y[e] = (float)((ZT)q[e] - z_) * s_;                                   \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* xs: x decoded to float32 when x is a small float (zp_float then holds its zero points). */
static void dequantize_into(float *y, const struct mq_tensor *x, const float *xs,
                            const float *sc, const int32_t *zp_int, const float *zp_float,
                            const struct qlayout *lay)
{
    if (xs) {
        const float *zp = zp_float;
        DEQUANTIZE_BODY(float, float, xs);
        return;
    }
    const int32_t *zp = zp_int;
    int storage = mq_dtype_info(x->dtype)->storage;
    if (lay->mode != QMODE_BLOCKED && rows_type(x->dtype)) {
        const struct mq_qrows_ops *rows = mq_qrows_best();
        size_t size = mq_dtype_info(storage)->size;
        int64_t e = 0;
        for (int64_t o = 0; o < lay->outer; o++)
            for (int64_t j = 0; j < lay->axis_len; j++, e += lay->inner) {
                int64_t p = lay->mode == QMODE_AXIS ? j : 0;
                rows->dequantize((const char *)x->data + (size_t)e * size, lay->inner, sc[p],
                                 zp[p], storage, y + e);
            }
        return;
    }
    switch (storage) {
    case MQ_DTYPE_UINT8: DEQUANTIZE_BODY(uint8_t, int32_t, x->data); break;
    case MQ_DTYPE_INT8: DEQUANTIZE_BODY(int8_t, int32_t, x->data); break;
    case MQ_DTYPE_UINT16: DEQUANTIZE_BODY(uint16_t, int32_t, x->data); break;
    case MQ_DTYPE_INT16: DEQUANTIZE_BODY(int16_t, int32_t, x->data); break;
    case MQ_DTYPE_INT32: DEQUANTIZE_BODY(int32_t, int32_t, x->data); break;
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
    const struct mq_tensor *x, *scale, *zp;
    if (qdq_inputs(node, inputs, n_inputs, "x_scale", &x, &scale, &zp, err))
        return MQ_ERR;
    int32_t qmin, qmax;
    if (x->dtype != MQ_DTYPE_INT32 && qdq_type(x->dtype, &qmin, &qmax))
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
    /* dequantize_into (and store_float) write every element: no zero fill first */
    if (mq_tensor_alloc_uninit(&outputs[0], ytype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    struct mq_tensor sc = {0}, zb = {0}, yf = {0}, xs = {0};
    int rc = MQ_ERR;
    if (read_params(node, scale, zp, &sc, &zb, err))
        goto done;
    int small = mq_dtype_kind(x->dtype) == MQ_KIND_SMALL_FLOAT;
    if (small) {
        if (mq_tensor_alloc_uninit(&xs, MQ_DTYPE_FLOAT, x->rank, x->dims, node->name, err))
            goto done;
        for (int64_t i = 0; i < x->count; i++)
            ((float *)xs.data)[i] = mq_small_float_decode(x->dtype, ((const uint8_t *)x->data)[i]);
        if (!zp) { /* absent zero point: zeros as float */
            mq_tensor_free(&zb);
            if (mq_tensor_alloc(&zb, MQ_DTYPE_FLOAT, scale->rank, scale->dims, node->name, err))
                goto done;
        }
    }
    float *y = outputs[0].data;
    if (ytype != MQ_DTYPE_FLOAT) {
        if (mq_tensor_alloc_uninit(&yf, MQ_DTYPE_FLOAT, x->rank, x->dims, node->name, err))
            goto done;
        y = yf.data;
    }
    dequantize_into(y, x, small ? xs.data : NULL, sc.data, zb.data, zb.data, &lay);
    if (ytype != MQ_DTYPE_FLOAT)
        store_float(ytype, outputs[0].data, y, x->count);
    rc = MQ_OK;
done:
    mq_tensor_free(&sc);
    mq_tensor_free(&zb);
    mq_tensor_free(&yf);
    mq_tensor_free(&xs);
    return rc;
}

/* ---- QuantizeLinear + DequantizeLinear fused (interp/fuse.c) --------------------------- */

/*
 * The float values QuantizeLinear then DequantizeLinear give with the same scale and zero point
 * (the pair a QDQ model puts on each activation), without the integer tensor between: integer
 * quantization of float32, per tensor or per axis (the default axis 1: the node has no
 * attribute), maps each row straight back to float, bit for bit what the two kernels give
 * ((q - zero) * scale, q as QuantizeLinear gives it); anything else runs the two kernels one
 * after the other.  The node is the QuantizeLinear's.
 */
static int quantize_dequantize(const struct mq_kernel_node *node, struct mq_exec *exec,
                               const struct mq_tensor *const *inputs, int n_inputs,
                               struct mq_tensor *outputs, int in_place, struct mq_error *err)
{
    const struct qdq_state *s = node->state;
    const struct mq_tensor *x, *scale, *zp;
    if (qdq_inputs(node, inputs, n_inputs, "y_scale", &x, &scale, &zp, err))
        return MQ_ERR;
    int qtype = zp ? zp->dtype : MQ_DTYPE_UINT8;
    int per_tensor = scale->count == 1 && (!zp || zp->count == 1);
    int per_axis = !per_tensor && node->opset >= 13 && s->axis == 1 && s->block_size == 0 &&
                   x->rank >= 2 && scale->rank == 1 && scale->dims[0] == x->dims[1] &&
                   (!zp || mq_shape_equal(zp, scale));
    int fast = x->dtype == MQ_DTYPE_FLOAT && scale->dtype == MQ_DTYPE_FLOAT &&
               (per_tensor || per_axis) && rows_type(qtype) &&
               (qtype == MQ_DTYPE_UINT8 || qtype == MQ_DTYPE_INT8 || node->opset >= 21);
    if (!fast) {
        struct mq_tensor q = {0};
        if (quantize_run(node, exec, inputs, n_inputs, &q, 1, err))
            return MQ_ERR;
        const struct mq_tensor *dq_inputs[3] = {&q, scale, zp};
        int rc = dequantize_run(node, exec, dq_inputs, n_inputs, outputs, 1, err);
        mq_tensor_free(&q);
        return rc;
    }
    struct qlayout lay = {QMODE_TENSOR, 1, 1, x->count, 0, 0};
    if (per_axis && qdq_layout(node, s, x, scale, zp, &lay, err))
        return MQ_ERR;
    if (in_place && !x->borrowed) {
        /* the plan hands x's buffer to the output (a borrowed view until the runner moves it) */
        mq_tensor_view(&outputs[0], x);
    } else if (mq_tensor_alloc_uninit(&outputs[0], MQ_DTYPE_FLOAT, x->rank, x->dims, node->name,
                                      err)) {
        return MQ_ERR;
    }
    const struct mq_qrows_ops *rows = mq_qrows_best();
    const float *sc = scale->data, *xv = x->data;
    float *y = outputs[0].data;
    int64_t e = 0;
    for (int64_t o = 0; o < lay.outer; o++)
        for (int64_t j = 0; j < lay.axis_len; j++, e += lay.inner) {
            int64_t p = lay.mode == QMODE_AXIS ? j : 0;
            int32_t z = zp ? (int32_t)mq_tensor_get_int64(zp, p) : 0;
            rows->fake_quantize(xv + e, lay.inner, sc[p], z, qtype, y + e);
        }
    return MQ_OK;
}

static int quantize_dequantize_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                   const struct mq_tensor *const *inputs, int n_inputs,
                                   struct mq_tensor *outputs, int n_outputs,
                                   struct mq_error *err)
{
    (void)n_outputs;
    return quantize_dequantize(node, exec, inputs, n_inputs, outputs, 0, err);
}

/* The same writing over x when x owns its buffer, for a step that alone reads x (interp/fuse.c):
   the values are computed row by row from x before being stored over it. */
static int quantize_dequantize_in_place_run(const struct mq_kernel_node *node,
                                            struct mq_exec *exec,
                                            const struct mq_tensor *const *inputs, int n_inputs,
                                            struct mq_tensor *outputs, int n_outputs,
                                            struct mq_error *err)
{
    (void)n_outputs;
    return quantize_dequantize(node, exec, inputs, n_inputs, outputs, 1, err);
}

const struct mq_kernel mq_kernel_quantize_dequantize = {
    "", "QuantizeLinear", 10, 0, qdq_prepare, quantize_dequantize_run, qdq_destroy};
const struct mq_kernel mq_kernel_quantize_dequantize_in_place = {
    "", "QuantizeLinear", 10, 0, qdq_prepare, quantize_dequantize_in_place_run, qdq_destroy};

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

/*
 * QuantizeLinear/DequantizeLinear: 10 per-tensor; 13 adds `axis`; 19 adds
 * float16/bfloat16 scales and inputs, float8 and `saturate`; 21 adds `block_size`,
 * int16/uint16 and 4-bit types, and `output_dtype` on QuantizeLinear; 23 float4e2m1, 25 the
 * 2-bit types.
 */
const struct mq_kernel mq_kernels_quantize_linear[] = {
    {"", "QuantizeLinear", 10, 12, qdq_prepare, quantize_run, qdq_destroy},
    {"", "QuantizeLinear", 13, 18, qdq_prepare, quantize_run, qdq_destroy},
    {"", "QuantizeLinear", 19, 20, qdq_prepare, quantize_run, qdq_destroy},
    {"", "QuantizeLinear", 21, 0, qdq_prepare, quantize_run, qdq_destroy},
    {"", "DequantizeLinear", 10, 12, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DequantizeLinear", 13, 18, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DequantizeLinear", 19, 20, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DequantizeLinear", 21, 0, qdq_prepare, dequantize_run, qdq_destroy},
    {"", "DynamicQuantizeLinear", 11, 0, NULL, dynamic_quantize_run, NULL},
    {0},
};
