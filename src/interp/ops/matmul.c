/*
 * MatMul and Gemm.
 *
 * float32 and double go through BLAS (interp/ops/gemm.h: GEMM, or GEMV for a
 * single row or column).  MatMul makes one call per batch matrix, or a single
 * call when B has no batch and A's batch can be folded into its rows.  Gemm
 * writes beta*C into the output first and lets the GEMM accumulate onto it.
 * The integer types use a plain loop with wrapping (unsigned) arithmetic, as
 * numpy and onnxruntime wrap.  float16 and bfloat16 run on float32 copies
 * (interp/ops/widen.h).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/fused.h"
#include "interp/ops/gemm.h"
#include "interp/ops/widen.h"

/*
 * c[M,N] += a[M,K] * b[K,N] with element (i,k) of a at a[i*sa_row + k*sa_col]
 * and (k,j) of b at b[k*sb_row + j*sb_col]; arithmetic wraps like numpy's.
 */
#define DEFINE_INT_GEMM(T, UT, SFX)                                                              \
    static void int_gemm_##SFX(int64_t m, int64_t n, int64_t k, const T *a, int64_t sa_row,      \
                               int64_t sa_col, const T *b, int64_t sb_row, int64_t sb_col, T *c) \
    {                                                                                            \
        for (int64_t i = 0; i < m; i++) {                                                        \
            T *crow = c + i * n;                                                                 \
            for (int64_t p = 0; p < k; p++) {                                                    \
                const UT av = (UT)a[i * sa_row + p * sa_col];                                    \
                if (av == 0)                                                                     \
                    continue;                                                                    \
                const T *brow = b + p * sb_row;                                                  \
                if (sb_col == 1) {                                                               \
                    for (int64_t j = 0; j < n; j++)                                              \
                        crow[j] = (T)((UT)crow[j] + av * (UT)brow[j]);                           \
                } else {                                                                         \
                    for (int64_t j = 0; j < n; j++)                                              \
                        crow[j] = (T)((UT)crow[j] + av * (UT)brow[j * sb_col]);                  \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
                                                                                                 \
    /* y = alpha * y + beta * c broadcast from [c_rows, c_cols], in T's wrapping arithmetic. */  \
    static void int_gemm_finish_##SFX(T *y, int64_t m, int64_t n, int64_t alpha, int64_t beta,   \
                                      const T *c, int64_t c_rows, int64_t c_cols)                \
    {                                                                                            \
        const UT ua = (UT)alpha, ub = (UT)beta;                                                  \
        for (int64_t i = 0; i < m; i++) {                                                        \
            T *yrow = y + i * n;                                                                 \
            const T *crow = c ? c + (c_rows == 1 ? 0 : i) * c_cols : NULL;                       \
            for (int64_t j = 0; j < n; j++) {                                                    \
                UT v = ua * (UT)yrow[j];                                                         \
                if (crow)                                                                        \
                    v += ub * (UT)crow[c_cols == 1 ? 0 : j];                                     \
                yrow[j] = (T)v;                                                                  \
            }                                                                                    \
        }                                                                                        \
    }

DEFINE_INT_GEMM(int32_t, uint32_t, i32)
DEFINE_INT_GEMM(int64_t, uint64_t, i64)
DEFINE_INT_GEMM(uint32_t, uint32_t, u32)
DEFINE_INT_GEMM(uint64_t, uint64_t, u64)

static int supported_dtype(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_FLOAT:
    case MQ_DTYPE_DOUBLE:
    case MQ_DTYPE_INT32:
    case MQ_DTYPE_INT64:
    case MQ_DTYPE_UINT32:
    case MQ_DTYPE_UINT64:
        return 1;
    default:
        return 0;
    }
}

static int check_types(const struct mq_kernel_node *node, const struct mq_tensor *a,
                       const struct mq_tensor *b, const struct mq_tensor *c, struct mq_error *err)
{
    if (!a || !b)
        return mq_error_set(err, "node '%s' (%s): inputs A and B are required", node->name,
                            node->op_type);
    if (!supported_dtype(a->dtype))
        return mq_error_set(err, "node '%s' (%s): element type %s is not supported (float16, "
                            "bfloat16, float32, float64, int32, int64, uint32, uint64 are)",
                            node->name, node->op_type, mq_dtype_name(a->dtype));
    if (b->dtype != a->dtype || (c && c->dtype != a->dtype))
        return mq_error_set(err, "node '%s' (%s): A is %s but B is %s%s%s", node->name,
                            node->op_type, mq_dtype_name(a->dtype), mq_dtype_name(b->dtype),
                            c ? " and C is " : "", c ? mq_dtype_name(c->dtype) : "");
    return MQ_OK;
}

static int blas_dims_ok(const struct mq_kernel_node *node, int64_t m, int64_t n, int64_t k,
                        struct mq_error *err)
{
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return mq_error_set(err, "node '%s' (%s): matrix of %lld x %lld x %lld is too large for "
                            "BLAS", node->name, node->op_type, (long long)m, (long long)n,
                            (long long)k);
    return MQ_OK;
}

/*
 * One matrix product c[m,n] = a[m,k] * b[k,n] (all row-major, contiguous),
 * c zero on entry for the integer types.
 */
static void matmul_one(int dtype, int64_t m, int64_t n, int64_t k, const void *a, const void *b,
                       void *c)
{
    switch (dtype) {
    case MQ_DTYPE_FLOAT:
        mq_gemm_f32(0, 0, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)n, 0.0f, c, (int)n);
        break;
    case MQ_DTYPE_DOUBLE:
        mq_gemm_f64(0, 0, (int)m, (int)n, (int)k, 1.0, a, (int)k, b, (int)n, 0.0, c, (int)n);
        break;
    case MQ_DTYPE_INT32: int_gemm_i32(m, n, k, a, k, 1, b, n, 1, c); break;
    case MQ_DTYPE_INT64: int_gemm_i64(m, n, k, a, k, 1, b, n, 1, c); break;
    case MQ_DTYPE_UINT32: int_gemm_u32(m, n, k, a, k, 1, b, n, 1, c); break;
    case MQ_DTYPE_UINT64: int_gemm_u64(m, n, k, a, k, 1, b, n, 1, c); break;
    default: break;
    }
}

static int matmul_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, matmul_run, 0, err);
    const struct mq_tensor *a = n_inputs > 0 ? inputs[0] : NULL;
    const struct mq_tensor *b = n_inputs > 1 ? inputs[1] : NULL;
    if (check_types(node, a, b, NULL, err))
        return MQ_ERR;
    char s1[128], s2[128];
    if (a->rank < 1 || b->rank < 1)
        return mq_error_set(err, "node '%s' (%s): A %s and B %s must have rank >= 1", node->name,
                            node->op_type, mq_shape_format(a->rank, a->dims, s1, sizeof s1),
                            mq_shape_format(b->rank, b->dims, s2, sizeof s2));
    /* A 1-D A is a row [1,K], a 1-D B a column [K,1]; the added axis is dropped again. */
    int64_t m = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t k = a->dims[a->rank - 1];
    int64_t kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    int64_t n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (k != kb)
        return mq_error_set(err, "node '%s' (%s): A %s and B %s: inner dimensions %lld and %lld "
                            "differ", node->name, node->op_type,
                            mq_shape_format(a->rank, a->dims, s1, sizeof s1),
                            mq_shape_format(b->rank, b->dims, s2, sizeof s2), (long long)k,
                            (long long)kb);
    int a_batch_rank = a->rank > 2 ? a->rank - 2 : 0;
    int b_batch_rank = b->rank > 2 ? b->rank - 2 : 0;
    int batch_rank = a_batch_rank > b_batch_rank ? a_batch_rank : b_batch_rank;
    int64_t dims[MQ_MAX_RANK], a_step[MQ_MAX_RANK], b_step[MQ_MAX_RANK];
    int64_t a_count = 1, b_count = 1;
    /* Batch strides in whole matrices, 0 on broadcast axes; filled from the innermost axis. */
    for (int i = batch_rank - 1; i >= 0; i--) {
        int ai = i - (batch_rank - a_batch_rank), bi = i - (batch_rank - b_batch_rank);
        int64_t ad = ai >= 0 ? a->dims[ai] : 1, bd = bi >= 0 ? b->dims[bi] : 1;
        if (ad != bd && ad != 1 && bd != 1)
            return mq_error_set(err, "node '%s' (%s): batch dimensions of A %s and B %s do not "
                                "broadcast", node->name, node->op_type,
                                mq_shape_format(a->rank, a->dims, s1, sizeof s1),
                                mq_shape_format(b->rank, b->dims, s2, sizeof s2));
        dims[i] = ad == 1 ? bd : ad;
        a_step[i] = ad == 1 ? 0 : a_count;
        b_step[i] = bd == 1 ? 0 : b_count;
        a_count *= ad;
        b_count *= bd;
    }
    int rank = batch_rank;
    if (a->rank >= 2)
        dims[rank++] = m;
    if (b->rank >= 2)
        dims[rank++] = n;
    /* BLAS overwrites C (beta = 0); the integer loops and k = 0 need it zeroed. */
    int overwrites = (a->dtype == MQ_DTYPE_FLOAT || a->dtype == MQ_DTYPE_DOUBLE) && k > 0;
    if ((overwrites ? mq_tensor_alloc_uninit : mq_tensor_alloc)(&outputs[0], a->dtype, rank, dims,
                                                               node->name, err))
        return MQ_ERR;
    int64_t batches = mq_dims_count(batch_rank, dims);
    if (outputs[0].count == 0 || k == 0)
        return MQ_OK; /* the zero-filled output is already the answer */
    size_t elem = mq_dtype_size(a->dtype);
    const char *ad = a->data, *bd = b->data;
    char *cd = outputs[0].data;
    if (b_count == 1) {
        /* B is one matrix: A's batch folds into rows, one call for everything. */
        if (blas_dims_ok(node, a_count * m, n, k, err))
            return MQ_ERR;
        matmul_one(a->dtype, a_count * m, n, k, ad, bd, cd);
        return MQ_OK;
    }
    if (blas_dims_ok(node, m, n, k, err))
        return MQ_ERR;
    int64_t idx[MQ_MAX_RANK] = {0};
    int64_t a_off = 0, b_off = 0;
    for (int64_t t = 0; t < batches; t++) {
        matmul_one(a->dtype, m, n, k, ad + (size_t)(a_off * m * k) * elem,
                   bd + (size_t)(b_off * k * n) * elem, cd + (size_t)(t * m * n) * elem);
        for (int d = batch_rank - 1; d >= 0; d--) {
            a_off += a_step[d];
            b_off += b_step[d];
            if (++idx[d] < dims[d])
                break;
            a_off -= a_step[d] * dims[d];
            b_off -= b_step[d] * dims[d];
            idx[d] = 0;
        }
    }
    return MQ_OK;
}

struct gemm_state {
    float alpha, beta;
    int trans_a, trans_b;
};

static void gemm_destroy(void *state) { free(state); }

static int gemm_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct gemm_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    node->state = s;
    s->alpha = mq_attr_float(node, "alpha", 1.0f);
    s->beta = mq_attr_float(node, "beta", 1.0f);
    s->trans_a = mq_attr_int(node, "transA", 0) != 0;
    s->trans_b = mq_attr_int(node, "transB", 0) != 0;
    return MQ_OK;
}

/* Integer Gemm keeps exact wrapping arithmetic, so alpha and beta must be whole numbers. */
static int integral_scalar(const struct mq_kernel_node *node, const char *name, float v,
                           int64_t *out, struct mq_error *err)
{
    if (!(v == floorf(v)) || fabsf(v) > 9.0e18f)
        return mq_error_set(err, "node '%s' (%s): %s = %g is not a whole number, which integer "
                            "Gemm needs", node->name, node->op_type, name, (double)v);
    *out = (int64_t)v;
    return MQ_OK;
}

#define GEMM_FILL_C(T)                                                                           \
    do {                                                                                         \
        T *yp = y->data;                                                                         \
        const T *cp = c->data;                                                                   \
        const T bt = (T)s->beta;                                                                 \
        for (int64_t i = 0; i < m; i++) {                                                        \
            const T *crow = cp + (c_rows == 1 ? 0 : i) * c_cols;                                 \
            T *yrow = yp + i * n;                                                                \
            if (c_cols == 1) {                                                                   \
                for (int64_t j = 0; j < n; j++)                                                  \
                    yrow[j] = bt * crow[0];                                                      \
            } else {                                                                             \
                for (int64_t j = 0; j < n; j++)                                                  \
                    yrow[j] = bt * crow[j];                                                      \
            }                                                                                    \
        }                                                                                        \
    } while (0)

static int gemm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, gemm_run, 0, err);
    const struct gemm_state *s = node->state;
    const struct mq_tensor *a = n_inputs > 0 ? inputs[0] : NULL;
    const struct mq_tensor *b = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *c = n_inputs > 2 ? inputs[2] : NULL;
    if (check_types(node, a, b, c, err))
        return MQ_ERR;
    char s1[128], s2[128];
    if (a->rank != 2 || b->rank != 2)
        return mq_error_set(err, "node '%s' (%s): A %s and B %s must both have rank 2",
                            node->name, node->op_type,
                            mq_shape_format(a->rank, a->dims, s1, sizeof s1),
                            mq_shape_format(b->rank, b->dims, s2, sizeof s2));
    int64_t m = s->trans_a ? a->dims[1] : a->dims[0];
    int64_t k = s->trans_a ? a->dims[0] : a->dims[1];
    int64_t kb = s->trans_b ? b->dims[1] : b->dims[0];
    int64_t n = s->trans_b ? b->dims[0] : b->dims[1];
    if (k != kb)
        return mq_error_set(err, "node '%s' (%s): A %s (transA=%d) and B %s (transB=%d): inner "
                            "dimensions %lld and %lld differ", node->name, node->op_type,
                            mq_shape_format(a->rank, a->dims, s1, sizeof s1), s->trans_a,
                            mq_shape_format(b->rank, b->dims, s2, sizeof s2), s->trans_b,
                            (long long)k, (long long)kb);
    /* C broadcasts unidirectionally to [M, N]. */
    int64_t c_rows = 1, c_cols = 1;
    if (c) {
        if (c->rank > 2)
            return mq_error_set(err, "node '%s' (%s): C has shape %s, expected rank <= 2",
                                node->name, node->op_type,
                                mq_shape_format(c->rank, c->dims, s1, sizeof s1));
        c_rows = c->rank == 2 ? c->dims[0] : 1;
        c_cols = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if ((c_rows != 1 && c_rows != m) || (c_cols != 1 && c_cols != n))
            return mq_error_set(err, "node '%s' (%s): C has shape %s, which does not broadcast "
                                "to [%lld,%lld]", node->name, node->op_type,
                                mq_shape_format(c->rank, c->dims, s1, sizeof s1), (long long)m,
                                (long long)n);
    }
    int64_t dims[2] = {m, n};
    /* Float Gemm writes all of Y (beta * C first, or BLAS with beta = 0) unless k = 0 and C
       is unused; the integer loops accumulate into a zeroed Y. */
    int is_float = a->dtype == MQ_DTYPE_FLOAT || a->dtype == MQ_DTYPE_DOUBLE;
    int overwrites = is_float && (k > 0 || (c && s->beta != 0.0f));
    if ((overwrites ? mq_tensor_alloc_uninit : mq_tensor_alloc)(&outputs[0], a->dtype, 2, dims,
                                                               node->name, err))
        return MQ_ERR;
    struct mq_tensor *y = &outputs[0];
    if (y->count == 0)
        return MQ_OK;
    if (a->dtype == MQ_DTYPE_FLOAT || a->dtype == MQ_DTYPE_DOUBLE) {
        /* beta == 0 ignores C entirely, as onnxruntime does (no 0 * inf = nan). */
        int use_c = c && s->beta != 0.0f;
        if (use_c) {
            if (a->dtype == MQ_DTYPE_FLOAT)
                GEMM_FILL_C(float);
            else
                GEMM_FILL_C(double);
        }
        if (k == 0)
            return MQ_OK;
        if (blas_dims_ok(node, m, n, k, err))
            return MQ_ERR;
        if (a->dtype == MQ_DTYPE_FLOAT)
            mq_gemm_f32(s->trans_a, s->trans_b, (int)m, (int)n, (int)k, s->alpha, a->data,
                        (int)a->dims[1], b->data, (int)b->dims[1], use_c ? 1.0f : 0.0f, y->data,
                        (int)n);
        else
            mq_gemm_f64(s->trans_a, s->trans_b, (int)m, (int)n, (int)k, (double)s->alpha,
                        a->data, (int)a->dims[1], b->data, (int)b->dims[1], use_c ? 1.0 : 0.0,
                        y->data, (int)n);
        return MQ_OK;
    }
    int64_t alpha = 1, beta = 1;
    if (integral_scalar(node, "alpha", s->alpha, &alpha, err) ||
        integral_scalar(node, "beta", s->beta, &beta, err))
        return MQ_ERR;
    int64_t sa_row = s->trans_a ? 1 : a->dims[1], sa_col = s->trans_a ? a->dims[1] : 1;
    int64_t sb_row = s->trans_b ? 1 : b->dims[1], sb_col = s->trans_b ? b->dims[1] : 1;
    const void *cdata = c ? c->data : NULL;
    switch (a->dtype) {
    case MQ_DTYPE_INT32:
        int_gemm_i32(m, n, k, a->data, sa_row, sa_col, b->data, sb_row, sb_col, y->data);
        int_gemm_finish_i32(y->data, m, n, alpha, beta, cdata, c_rows, c_cols);
        break;
    case MQ_DTYPE_INT64:
        int_gemm_i64(m, n, k, a->data, sa_row, sa_col, b->data, sb_row, sb_col, y->data);
        int_gemm_finish_i64(y->data, m, n, alpha, beta, cdata, c_rows, c_cols);
        break;
    case MQ_DTYPE_UINT32:
        int_gemm_u32(m, n, k, a->data, sa_row, sa_col, b->data, sb_row, sb_col, y->data);
        int_gemm_finish_u32(y->data, m, n, alpha, beta, cdata, c_rows, c_cols);
        break;
    default:
        int_gemm_u64(m, n, k, a->data, sa_row, sa_col, b->data, sb_row, sb_col, y->data);
        int_gemm_finish_u64(y->data, m, n, alpha, beta, cdata, c_rows, c_cols);
        break;
    }
    return MQ_OK;
}

#define RELU_IN_PLACE(T)                                                                         \
    do {                                                                                         \
        T *p = y->data;                                                                          \
        for (int64_t i = 0; i < y->count; i++)                                                   \
            p[i] = p[i] < 0 ? (T)0 : p[i];                                                       \
    } while (0)

/* Gemm then Relu (interp/ops/fused.h); Gemm outputs are small enough for a second pass. */
static int gemm_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (gemm_run(node, exec, inputs, n_inputs, outputs, n_outputs, err))
        return MQ_ERR;
    struct mq_tensor *y = &outputs[0];
    switch (y->dtype) {
    case MQ_DTYPE_FLOAT: RELU_IN_PLACE(float); break;
    case MQ_DTYPE_DOUBLE: RELU_IN_PLACE(double); break;
    case MQ_DTYPE_INT32: RELU_IN_PLACE(int32_t); break;
    case MQ_DTYPE_INT64: RELU_IN_PLACE(int64_t); break;
    case MQ_DTYPE_FLOAT16:
    case MQ_DTYPE_BFLOAT16: {
        /* the sign bit decides, as Relu's own half path (via float32) would */
        uint16_t *p = y->data;
        for (int64_t i = 0; i < y->count; i++) {
            unsigned magnitude = p[i] & 0x7fffu;
            int nan = magnitude > (y->dtype == MQ_DTYPE_FLOAT16 ? 0x7c00u : 0x7f80u);
            if ((p[i] & 0x8000u) && magnitude != 0 && !nan)
                p[i] = 0;
        }
        break;
    }
    default: break; /* unsigned: already >= 0 */
    }
    return MQ_OK;
}

/*
 * MatMul-9 added the integer types and MatMul-13 bfloat16: the type check is
 * shared.  Gemm-1/6 carry a `broadcast` flag that Gemm-7 made implicit (C is
 * always broadcast); Gemm-11 made C optional.  Broadcasting a C that an old
 * model marks broadcast=0 is harmless, so one run serves every version.
 */
const struct mq_kernel mq_kernels_matmul[] = {
    {"", "MatMul", 1, 8, NULL, matmul_run, NULL},
    {"", "MatMul", 9, 12, NULL, matmul_run, NULL},
    {"", "MatMul", 13, 0, NULL, matmul_run, NULL},
    {"", "Gemm", 1, 6, gemm_prepare, gemm_run, gemm_destroy},
    {"", "Gemm", 7, 10, gemm_prepare, gemm_run, gemm_destroy},
    {"", "Gemm", 11, 12, gemm_prepare, gemm_run, gemm_destroy},
    {"", "Gemm", 13, 0, gemm_prepare, gemm_run, gemm_destroy},
    {0},
};

const struct mq_kernel mq_kernel_gemm_relu = {"", "Gemm", 1, 0, gemm_prepare, gemm_relu_run,
                                              gemm_destroy};
