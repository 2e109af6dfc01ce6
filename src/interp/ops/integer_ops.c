/*
 * Integer compute ops on quantized tensors: MatMulInteger, QLinearMatMul,
 * ConvInteger and QLinearConv.
 *
 * Numbers follow onnxruntime's CPU kernels:
 *   requantize y = clamp(nearbyintf((float)acc * (s_a * s_b / s_y)) + zp_y).
 * Integer accumulations are computed exactly: the operands, zero points
 * subtracted, go through cblas_dgemm, whose double sums are exact far beyond
 * any int32 accumulator (|a - zp| * |b - zp| < 2^17, so K up to 2^36).
 * The convolutions' window attributes are parsed and resolved by
 * interp/ops/spatial.h, as for the float Conv.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/quant_types.h"
#include "interp/ops/spatial.h"
#include "core/tensor.h"

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

struct conv_state {
    struct mq_spatial sp;           /* kernel_shape, strides, dilations, pads, auto_pad */
    int64_t group;
};

static int conv_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, NODE_FMT "out of memory", NODE_ARGS);
    node->state = s;
    if (mq_spatial_parse(node, &s->sp, 1, err))
        return MQ_ERR;
    s->group = mq_attr_int(node, "group", 1);
    if (s->group < 1)
        return mq_error_set(err, NODE_FMT "group %lld must be >= 1", NODE_ARGS,
                            (long long)s->group);
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
    int64_t in[MQ_MAX_RANK], k[MQ_MAX_RANK], pad_end[MQ_MAX_RANK];
    for (int i = 0; i < g->nsp; i++) {
        in[i] = x->dims[2 + i];
        k[i] = w->dims[2 + i];
        if (s->sp.n_kernel == g->nsp && s->sp.kernel[i] != k[i])
            return mq_error_set(err, NODE_FMT "kernel_shape disagrees with weight %s", NODE_ARGS,
                                mq_shape_format(w->rank, w->dims, sw, sizeof sw));
    }
    if (mq_spatial_forward(node, &s->sp, g->nsp, in, k, 0, g->out_sp, g->pad_begin, pad_end,
                           g->stride, g->dil, err))
        return MQ_ERR;
    g->in_size = g->k_size = g->out_size = 1;
    for (int i = 0; i < g->nsp; i++) {
        if (g->out_sp[i] < 1)
            return mq_error_set(err, NODE_FMT "input %s and kernel %s give an empty output",
                                NODE_ARGS, mq_shape_format(x->rank, x->dims, sx, sizeof sx),
                                mq_shape_format(w->rank, w->dims, sw, sizeof sw));
        g->in_sp[i] = in[i];
        g->k[i] = k[i];
        g->in_size *= in[i];
        g->k_size *= k[i];
        g->out_size *= g->out_sp[i];
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

const struct mq_kernel mq_kernels_integer_ops[] = {
    {"", "MatMulInteger", 10, 0, NULL, matmul_integer_run, NULL},
    /* 21 widened the scale types to float16/bfloat16 and added float8 (refused by type). */
    {"", "QLinearMatMul", 10, 20, NULL, qlinear_matmul_run, NULL},
    {"", "QLinearMatMul", 21, 0, NULL, qlinear_matmul_run, NULL},
    {"", "ConvInteger", 10, 0, conv_prepare, conv_integer_run, conv_destroy},
    {"", "QLinearConv", 10, 0, conv_prepare, qlinear_conv_run, conv_destroy},
    {0},
};
