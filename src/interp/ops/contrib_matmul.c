/*
 * The matrix products of onnxruntime's com.microsoft domain:
 *   FusedMatMul            alpha * op(A) * op(B), MatMul's batch broadcasting, transposes fused
 *   MatMulNBits            A * dequantize(B)^T + bias, B's rows packed block-wise along K in
 *                          2, 4 or 8 bits with a float scale (and zero point) per block
 *   DynamicQuantizeMatMul  A quantized to uint8 at run time (DynamicQuantizeLinear's rule), an
 *                          integer product with int8/uint8 B, scaled back to float, plus bias
 *   MatMulIntegerToFloat   the same for an A already quantized (what onnxruntime fuses when one
 *                          DynamicQuantizeLinear feeds several MatMuls)
 * All take float32 activations; the products go through BLAS (gemm.h), integer ones exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/contrib_common.h"
#include "interp/ops/gemm.h"

/* ---- FusedMatMul ------------------------------------------------------------------------ */

/* Offset of batch index `flat` (in the broadcast batch shape) into a tensor's batch dims. */
static int64_t batch_offset(int64_t flat, int out_batch_rank, const int64_t *out_batch,
                            int rank, const int64_t *dims, int64_t matrix)
{
    int64_t offset = 0, stride = matrix;
    for (int d = out_batch_rank - 1, t = rank - 1; d >= 0; d--, t--) {
        int64_t idx = flat % out_batch[d];
        flat /= out_batch[d];
        if (t < 0)
            continue;
        if (dims[t] != 1)
            offset += idx * stride;
        stride *= dims[t];
    }
    return offset;
}

static int fused_matmul_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct mq_tensor *a = mq_contrib_float_input(node, inputs, n_inputs, 0, 1, err);
    const struct mq_tensor *b = a ? mq_contrib_float_input(node, inputs, n_inputs, 1, 1, err)
                                  : NULL;
    if (!b)
        return MQ_ERR;
    if (mq_attr_int(node, "transBatchA", 0) || mq_attr_int(node, "transBatchB", 0))
        return mq_error_set(err, "node '%s' (FusedMatMul): transBatchA/transBatchB are not "
                            "supported", node->name);
    int trans_a = mq_attr_int(node, "transA", 0) != 0 && a->rank >= 2;
    int trans_b = mq_attr_int(node, "transB", 0) != 0 && b->rank >= 2;
    float alpha = mq_attr_float(node, "alpha", 1.0f);
    /* stored matrices: A is [ar, ac], B is [br, bc]; a rank-1 A is a row, a rank-1 B a column */
    int64_t ar = a->rank >= 2 ? a->dims[a->rank - 2] : 1, ac = a->dims[a->rank - 1];
    int64_t br = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    int64_t bc = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac;
    int64_t kb = trans_b ? bc : br, n = trans_b ? br : bc;
    if (k != kb)
        return mq_error_set(err, "node '%s' (FusedMatMul): inner dimensions differ (%lld and "
                            "%lld)", node->name, (long long)k, (long long)kb);
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return mq_error_set(err, "node '%s' (FusedMatMul): matrix too large", node->name);
    int a_batch = a->rank > 2 ? a->rank - 2 : 0, b_batch = b->rank > 2 ? b->rank - 2 : 0;
    int batch_rank = a_batch > b_batch ? a_batch : b_batch;
    int64_t out_dims[MQ_MAX_RANK];
    int64_t batches = 1;
    for (int d = 0; d < batch_rank; d++) {
        int ia = d - (batch_rank - a_batch), ib = d - (batch_rank - b_batch);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return mq_error_set(err, "node '%s' (FusedMatMul): batch dimensions %lld and %lld "
                                "do not broadcast", node->name, (long long)da, (long long)db);
        out_dims[d] = da == 1 ? db : da;
        batches *= out_dims[d];
    }
    int rank = batch_rank;
    if (a->rank >= 2)
        out_dims[rank++] = m;
    if (b->rank >= 2)
        out_dims[rank++] = n;
    if (mq_tensor_alloc_uninit(&outputs[0], MQ_DTYPE_FLOAT, rank, out_dims, node->name, err))
        return MQ_ERR;
    const float *as = a->data, *bs = b->data;
    float *cs = outputs[0].data;
    for (int64_t i = 0; i < batches; i++) {
        int64_t oa = batch_offset(i, batch_rank, out_dims, a_batch, a->dims, ar * ac);
        int64_t ob = batch_offset(i, batch_rank, out_dims, b_batch, b->dims, br * bc);
        if (m == 0 || n == 0)
            continue;
        if (k == 0) {
            memset(cs + i * m * n, 0, (size_t)(m * n) * sizeof(float));
            continue;
        }
        mq_gemm_f32(trans_a, trans_b, (int)m, (int)n, (int)k, alpha, as + oa, (int)ac,
                    bs + ob, (int)bc, 0.0f, cs + i * m * n, (int)n);
    }
    return MQ_OK;
}

/* ---- MatMulNBits ------------------------------------------------------------------------ */

/* Element j of a row of values packed `bits` wide, lowest bits first. */
static unsigned packed_at(const uint8_t *row, int64_t j, int bits)
{
    int per_byte = 8 / bits;
    return (row[j / per_byte] >> ((j % per_byte) * bits)) & ((1u << bits) - 1u);
}

static int matmul_nbits_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    int64_t k = mq_attr_int(node, "K", 0), n = mq_attr_int(node, "N", 0);
    int64_t bits = mq_attr_int(node, "bits", 4), block = mq_attr_int(node, "block_size", 0);
    if (k <= 0 || n <= 0 || k > INT32_MAX || n > INT32_MAX)
        return mq_error_set(err, "node '%s' (MatMulNBits): attributes K and N must be positive",
                            node->name);
    if (bits != 2 && bits != 4 && bits != 8)
        return mq_error_set(err, "node '%s' (MatMulNBits): bits=%lld (2, 4 and 8 are supported)",
                            node->name, (long long)bits);
    if (block < 16 || (block & (block - 1)))
        return mq_error_set(err, "node '%s' (MatMulNBits): block_size %lld is not a power of "
                            "two >= 16", node->name, (long long)block);
    const struct mq_tensor *a = mq_contrib_float_input(node, inputs, n_inputs, 0, 1, err);
    if (!a)
        return MQ_ERR;
    const struct mq_tensor *b = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *scales = mq_contrib_float_input(node, inputs, n_inputs, 2, 1, err);
    if (!scales)
        return MQ_ERR;
    const struct mq_tensor *zp = n_inputs > 3 ? inputs[3] : NULL;
    const struct mq_tensor *g_idx = n_inputs > 4 ? inputs[4] : NULL;
    int bad = 0;
    const struct mq_tensor *bias = mq_contrib_optional_float(node, inputs, n_inputs, 5, &bad, err);
    if (bad)
        return MQ_ERR;
    int64_t k_blocks = (k + block - 1) / block, blob = block * bits / 8;
    if (!b || b->dtype != MQ_DTYPE_UINT8 || b->count != n * k_blocks * blob)
        return mq_error_set(err, "node '%s' (MatMulNBits): B must be uint8 [N=%lld, %lld blocks, "
                            "%lld bytes]", node->name, (long long)n, (long long)k_blocks,
                            (long long)blob);
    if (scales->count != n * k_blocks)
        return mq_error_set(err, "node '%s' (MatMulNBits): scales has %lld elements, expected "
                            "%lld", node->name, (long long)scales->count,
                            (long long)(n * k_blocks));
    if (g_idx)
        return mq_error_set(err, "node '%s' (MatMulNBits): g_idx is not supported", node->name);
    int64_t zp_row = (k_blocks * bits + 7) / 8;
    if (zp && !((zp->dtype == MQ_DTYPE_UINT8 && zp->count == n * zp_row) ||
                (zp->dtype == MQ_DTYPE_FLOAT && zp->count == n * k_blocks)))
        return mq_error_set(err, "node '%s' (MatMulNBits): zero_points must be uint8 [%lld] or "
                            "float32 [%lld]", node->name, (long long)(n * zp_row),
                            (long long)(n * k_blocks));
    if (bias && bias->count != n)
        return mq_error_set(err, "node '%s' (MatMulNBits): bias must have N elements", node->name);
    if (mq_contrib_last_dim(a) != k)
        return mq_error_set(err, "node '%s' (MatMulNBits): A's last dimension is %lld, K is %lld",
                            node->name, (long long)mq_contrib_last_dim(a), (long long)k);
    int64_t bytes = n * k;
    if (mq_memory_reserve((uint64_t)bytes * sizeof(float), node->name, err))
        return MQ_ERR_MEMORY;
    float *w = malloc((size_t)bytes * sizeof(float));
    if (!w) {
        mq_memory_release((uint64_t)bytes * sizeof(float));
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (MatMulNBits): out of memory",
                             node->name);
    }
    const uint8_t *q = b->data;
    const float *sc = scales->data;
    float default_zp = (float)(1 << (bits - 1));
    for (int64_t r = 0; r < n; r++) {
        for (int64_t blk = 0; blk < k_blocks; blk++) {
            float s = sc[r * k_blocks + blk], z = default_zp;
            if (zp && zp->dtype == MQ_DTYPE_FLOAT)
                z = ((const float *)zp->data)[r * k_blocks + blk];
            else if (zp)
                z = (float)packed_at((const uint8_t *)zp->data + r * zp_row, blk, (int)bits);
            const uint8_t *blob_row = q + (r * k_blocks + blk) * blob;
            for (int64_t j = 0; j < block && blk * block + j < k; j++)
                w[r * k + blk * block + j] = ((float)packed_at(blob_row, j, (int)bits) - z) * s;
        }
    }
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->rank - 1] = n;
    int rc = mq_tensor_alloc_uninit(&outputs[0], MQ_DTYPE_FLOAT, a->rank, dims, node->name, err);
    if (rc == MQ_OK) {
        int64_t m = a->count / k;
        float *y = outputs[0].data;
        if (m > 0)
            mq_gemm_f32(0, 1, (int)m, (int)n, (int)k, 1.0f, a->data, (int)k, w, (int)k, 0.0f, y,
                        (int)n);
        if (bias)
            for (int64_t i = 0; i < m * n; i++)
                y[i] += ((const float *)bias->data)[i % n];
    }
    free(w);
    mq_memory_release((uint64_t)bytes * sizeof(float));
    return rc;
}

/* ---- DynamicQuantizeMatMul -------------------------------------------------------------- */

/* onnxruntime's uint8 parameters for a tensor: range widened to include 0, zero point rounded
 * half to even after clamping. */
static void dynamic_uint8_params(const float *x, int64_t count, float *scale, uint8_t *zp)
{
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < count; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    float z = 0.0f - lo / *scale;
    z = z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z;
    *zp = (uint8_t)nearbyintf(z);
}

static int is_8bit(const struct mq_tensor *t)
{
    return t && (t->dtype == MQ_DTYPE_INT8 || t->dtype == MQ_DTYPE_UINT8);
}

static double int8_at(const struct mq_tensor *t, int64_t i)
{
    return t->dtype == MQ_DTYPE_INT8 ? ((const int8_t *)t->data)[i]
                                     : ((const uint8_t *)t->data)[i];
}

/*
 * y = ((A - a_zp) (B - b_zp)) * a_scale * b_scale + bias, with A float (quantized here with
 * a_scale and a_zp, DynamicQuantizeLinear's rounding) or already 8-bit.  The integer product
 * runs in double: every partial sum is an integer below 2^53 (|a|, |b| <= 255, K < 2^31), so
 * BLAS's double GEMM gives it exactly, in any summation order.
 */
static int integer_matmul_to_float(const struct mq_kernel_node *node, const struct mq_tensor *a,
                                   float a_scale, double a_zp, const struct mq_tensor *b,
                                   const struct mq_tensor *b_scale,
                                   const struct mq_tensor *b_zp, const struct mq_tensor *bias,
                                   struct mq_tensor *out, struct mq_error *err)
{
    if (!is_8bit(b) || b->rank != 2)
        return mq_error_set(err, "node '%s' (%s): B must be a 2-D int8 or uint8 matrix",
                            node->name, node->op_type);
    int64_t k = b->dims[0], n = b->dims[1];
    if (a->rank < 1 || mq_contrib_last_dim(a) != k)
        return mq_error_set(err, "node '%s' (%s): A's last dimension is not B's %lld rows",
                            node->name, node->op_type, (long long)k);
    if (b_scale->count != 1 && b_scale->count != n)
        return mq_error_set(err, "node '%s' (%s): b_scale must have 1 or N elements",
                            node->name, node->op_type);
    if (b_zp && (b_zp->dtype != b->dtype || (b_zp->count != 1 && b_zp->count != n)))
        return mq_error_set(err, "node '%s' (%s): b_zero_point must have B's type and 1 or N "
                            "elements", node->name, node->op_type);
    if (bias && bias->count != n)
        return mq_error_set(err, "node '%s' (%s): bias must have N elements", node->name,
                            node->op_type);
    int64_t m = k ? a->count / k : 0;
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return mq_error_set(err, "node '%s' (%s): too large", node->name, node->op_type);
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->rank - 1] = n;
    if (mq_tensor_alloc_uninit(out, MQ_DTYPE_FLOAT, a->rank, dims, node->name, err))
        return MQ_ERR;
    float *y = out->data;
    if (m == 0 || n == 0)
        return MQ_OK;
    uint64_t scratch = (uint64_t)(m * k + k * n + m * n) * sizeof(double);
    if (mq_memory_reserve(scratch, node->name, err))
        return MQ_ERR_MEMORY;
    double *qa = malloc((size_t)(m * k) * sizeof(double));
    double *qb = malloc((size_t)(k * n) * sizeof(double));
    double *acc = malloc((size_t)(m * n) * sizeof(double));
    if (!qa || !qb || !acc) {
        free(qa);
        free(qb);
        free(acc);
        mq_memory_release(scratch);
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s': out of memory", node->name);
    }
    for (int64_t i = 0; i < m * k; i++) {
        if (a->dtype == MQ_DTYPE_FLOAT) {
            float v = nearbyintf(((const float *)a->data)[i] / a_scale) + (float)a_zp;
            qa[i] = (double)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v) - a_zp;
        } else {
            qa[i] = int8_at(a, i) - a_zp;
        }
    }
    for (int64_t j = 0; j < k; j++)
        for (int64_t c = 0; c < n; c++)
            qb[j * n + c] = int8_at(b, j * n + c) -
                            (b_zp ? int8_at(b_zp, b_zp->count > 1 ? c : 0) : 0.0);
    if (k > 0)
        mq_gemm_f64(0, 0, (int)m, (int)n, (int)k, 1.0, qa, (int)k, qb, (int)n, 0.0, acc, (int)n);
    else
        memset(acc, 0, (size_t)(m * n) * sizeof(double));
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < n; c++) {
            float sc = a_scale * ((const float *)b_scale->data)[b_scale->count == 1 ? 0 : c];
            y[i * n + c] = (float)acc[i * n + c] * sc +
                           (bias ? ((const float *)bias->data)[c] : 0.0f);
        }
    free(qa);
    free(qb);
    free(acc);
    mq_memory_release(scratch);
    return MQ_OK;
}

static int dynamic_quantize_matmul_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                       const struct mq_tensor *const *inputs, int n_inputs,
                                       struct mq_tensor *outputs, int n_outputs,
                                       struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct mq_tensor *a = mq_contrib_float_input(node, inputs, n_inputs, 0, 1, err);
    const struct mq_tensor *b_scale =
        a ? mq_contrib_float_input(node, inputs, n_inputs, 2, 0, err) : NULL;
    if (!b_scale)
        return MQ_ERR;
    int bad = 0;
    const struct mq_tensor *bias = mq_contrib_optional_float(node, inputs, n_inputs, 4, &bad, err);
    if (bad)
        return MQ_ERR;
    float a_scale;
    uint8_t a_zp;
    dynamic_uint8_params(a->data, a->count, &a_scale, &a_zp);
    return integer_matmul_to_float(node, a, a_scale, a_zp, n_inputs > 1 ? inputs[1] : NULL,
                                   b_scale, n_inputs > 3 ? inputs[3] : NULL, bias, &outputs[0],
                                   err);
}

/* MatMulIntegerToFloat: A, B, a_scale, b_scale, a_zero_point, b_zero_point, bias. */
static int matmul_integer_to_float_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                       const struct mq_tensor *const *inputs, int n_inputs,
                                       struct mq_tensor *outputs, int n_outputs,
                                       struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const struct mq_tensor *a = n_inputs > 0 ? inputs[0] : NULL;
    const struct mq_tensor *a_scale = mq_contrib_float_input(node, inputs, n_inputs, 2, 0, err);
    const struct mq_tensor *b_scale =
        a_scale ? mq_contrib_float_input(node, inputs, n_inputs, 3, 0, err) : NULL;
    if (!b_scale)
        return MQ_ERR;
    const struct mq_tensor *a_zp = n_inputs > 4 ? inputs[4] : NULL;
    int bad = 0;
    const struct mq_tensor *bias = mq_contrib_optional_float(node, inputs, n_inputs, 6, &bad, err);
    if (bad)
        return MQ_ERR;
    if (!is_8bit(a) || a_scale->count != 1 || (a_zp && (a_zp->dtype != a->dtype ||
                                                         a_zp->count != 1)))
        return mq_error_set(err, "node '%s' (MatMulIntegerToFloat): A must be int8 or uint8 "
                            "with one scale and zero point (per-row ones are not supported)",
                            node->name);
    return integer_matmul_to_float(node, a, ((const float *)a_scale->data)[0],
                                   a_zp ? int8_at(a_zp, 0) : 0.0, n_inputs > 1 ? inputs[1] : NULL,
                                   b_scale, n_inputs > 5 ? inputs[5] : NULL, bias, &outputs[0],
                                   err);
}

const struct mq_kernel mq_kernels_contrib_matmul[] = {
    {"com.microsoft", "FusedMatMul", 1, 0, NULL, fused_matmul_run, NULL},
    {"com.microsoft", "MatMulNBits", 1, 0, NULL, matmul_nbits_run, NULL},
    {"com.microsoft", "DynamicQuantizeMatMul", 1, 0, NULL, dynamic_quantize_matmul_run, NULL},
    {"com.microsoft", "MatMulIntegerToFloat", 1, 0, NULL, matmul_integer_to_float_run, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL},
};
