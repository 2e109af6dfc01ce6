/*
 * com.microsoft GatherBlockQuantized: Gather on a table quantized block-wise along its last
 * axis (an embedding quantized by --weight-only), dequantized as the rows are picked.
 *   data         uint8 [D0, ..., Dlast / (8 / bits)], values `bits` wide (4 or 8), lowest
 *                bits first in each byte, as MatMulNBits packs them
 *   indices      int32 or int64, any shape; picks along axis 0 (gather_axis, the only one
 *                onnxruntime accepts for uint8 data)
 *   scales       float32 [D0, ..., ceil(Dlast / block_size)] (quantize_axis: the last one)
 *   zero_points  optional uint8, packed like data along the last axis; absent: 2^(bits-1)
 * out[i..., j...] = (q - zero_point) * scale.  A negative index counts from the end; one
 * outside [-D0, D0) is an error, as in onnxruntime 1.30.
 */
#include <stdlib.h>

#include "interp/attr.h"
#include "interp/ops/contrib_common.h"

/* Element j of a row of values packed `bits` wide, lowest bits first. */
static unsigned packed_at(const uint8_t *row, int64_t j, int bits)
{
    int per_byte = 8 / bits;
    return (row[j / per_byte] >> ((j % per_byte) * bits)) & ((1u << bits) - 1u);
}

static int64_t index_at(const struct mq_tensor *t, int64_t i)
{
    return t->dtype == MQ_DTYPE_INT64 ? ((const int64_t *)t->data)[i]
                                      : (int64_t)((const int32_t *)t->data)[i];
}

static int gather_block_quantized_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                      const struct mq_tensor *const *inputs, int n_inputs,
                                      struct mq_tensor *outputs, int n_outputs,
                                      struct mq_error *err)
{
    (void)exec;
    (void)n_outputs;
    const char *op = "GatherBlockQuantized";
    int64_t bits = mq_attr_int(node, "bits", 4), block = mq_attr_int(node, "block_size", 128);
    const struct mq_tensor *data = n_inputs > 0 ? inputs[0] : NULL;
    const struct mq_tensor *indices = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *zp = n_inputs > 3 ? inputs[3] : NULL;
    if (bits != 4 && bits != 8)
        return mq_error_set(err, "node '%s' (%s): bits=%lld (4 and 8 are supported)", node->name,
                            op, (long long)bits);
    if (block < 16 || (block & (block - 1)))
        return mq_error_set(err, "node '%s' (%s): block_size %lld is not a power of two >= 16",
                            node->name, op, (long long)block);
    if (!data || data->dtype != MQ_DTYPE_UINT8 || data->rank < 2)
        return mq_error_set(err, "node '%s' (%s): data must be uint8 of rank >= 2 (int4/uint4 "
                            "data is not supported)", node->name, op);
    if (!indices || (indices->dtype != MQ_DTYPE_INT64 && indices->dtype != MQ_DTYPE_INT32))
        return mq_error_set(err, "node '%s' (%s): indices must be int32 or int64", node->name, op);
    int rank = data->rank;
    int64_t gather_axis = mq_attr_int(node, "gather_axis", 0);
    int64_t quantize_axis = mq_attr_int(node, "quantize_axis", 1);
    if (gather_axis < 0)
        gather_axis += rank;
    if (quantize_axis < 0)
        quantize_axis += rank;
    if (gather_axis != 0 || quantize_axis != rank - 1)
        return mq_error_set(err, "node '%s' (%s): uint8 data needs gather_axis 0 and "
                            "quantize_axis the last axis", node->name, op);
    if (indices->rank + rank - 1 > MQ_MAX_RANK)
        return mq_error_set(err, "node '%s' (%s): the output would have rank %d (at most %d)",
                            node->name, op, indices->rank + rank - 1, MQ_MAX_RANK);
    const struct mq_tensor *scales = mq_contrib_float_input(node, inputs, n_inputs, 2, rank, err);
    if (!scales)
        return MQ_ERR;
    int per_byte = 8 / (int)bits;
    int64_t rows = data->dims[0], cols = data->dims[rank - 1] * per_byte;
    int64_t n_blocks = (cols + block - 1) / block, zp_row = (n_blocks + per_byte - 1) / per_byte;
    /* rows of the table below axis 0, then the quantized axis */
    int64_t inner = 1;
    for (int d = 1; d < rank - 1; d++)
        inner *= data->dims[d];
    int shapes_ok = scales->rank == rank && scales->dims[rank - 1] == n_blocks;
    for (int d = 0; d < rank - 1; d++)
        shapes_ok = shapes_ok && scales->dims[d] == data->dims[d];
    if (!shapes_ok)
        return mq_error_set(err, "node '%s' (%s): scales must be data's shape with "
                            "ceil(%lld / %lld) = %lld on the last axis", node->name, op,
                            (long long)cols, (long long)block, (long long)n_blocks);
    if (zp && (zp->dtype != MQ_DTYPE_UINT8 || zp->count != rows * inner * zp_row))
        return mq_error_set(err, "node '%s' (%s): zero_points must be uint8 with %lld values "
                            "per row packed into %lld bytes", node->name, op,
                            (long long)n_blocks, (long long)zp_row);
    int64_t dims[MQ_MAX_RANK];
    int out_rank = 0;
    for (int d = 0; d < indices->rank; d++)
        dims[out_rank++] = indices->dims[d];
    for (int d = 1; d < rank; d++)
        dims[out_rank++] = data->dims[d];
    dims[out_rank - 1] = cols;
    int rc = mq_tensor_alloc_uninit(&outputs[0], MQ_DTYPE_FLOAT, out_rank, dims, node->name, err);
    if (rc)
        return rc;
    float *y = outputs[0].data;
    const uint8_t *q = data->data, *z = zp ? zp->data : NULL;
    const float *sc = scales->data;
    int64_t row_bytes = data->dims[rank - 1], slice = inner * cols;
    float default_zp = (float)(1 << (bits - 1));
    for (int64_t i = 0; i < indices->count; i++) {
        int64_t r = index_at(indices, i);
        float *dst = y + i * slice;
        if (r < -rows || r >= rows) {
            mq_tensor_free(&outputs[0]);
            return mq_error_set(err, "node '%s' (%s): index %lld is outside [-%lld, %lld)",
                                node->name, op, (long long)r, (long long)rows, (long long)rows);
        }
        r = r < 0 ? r + rows : r;
        for (int64_t m = 0; m < inner; m++) {
            int64_t line = r * inner + m; /* the row of the [rows * inner, cols] matrix */
            const uint8_t *src = q + line * row_bytes;
            for (int64_t c = 0; c < cols; c++) {
                int64_t b = c / block;
                float zero = z ? (float)packed_at(z + line * zp_row, b, (int)bits) : default_zp;
                dst[m * cols + c] =
                    ((float)packed_at(src, c, (int)bits) - zero) * sc[line * n_blocks + b];
            }
        }
    }
    return MQ_OK;
}

const struct mq_kernel mq_kernels_contrib_gather[] = {
    {"com.microsoft", "GatherBlockQuantized", 1, 0, NULL, gather_block_quantized_run, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL},
};
