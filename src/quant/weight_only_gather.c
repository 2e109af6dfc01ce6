/*
 * --weight-only on embedding tables: a Gather along axis 0 of a constant 2-D float table
 * [rows, cols] gets the table quantized block-wise along each row (one scale, and for uint4 one
 * zero point, per `block_size` values), like the MatMul weights of weight_only.c.  Written as
 * com.microsoft GatherBlockQuantized (uint8 data packed 4 or 8 bits wide along the row, the
 * zero point left out for the signed types since onnxruntime then assumes 2^(bits-1)), or with
 * format_qdq as an opset-21 DequantizeLinear blocked along axis 1 feeding the Gather.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "quant/matmul_rewrite.h"
#include "quant/weight_only.h"
#include "util/strutil.h"

static int is_gather(const Onnx__NodeProto *n)
{
    return strcmp(n->op_type, "Gather") == 0 && (!n->domain || !n->domain[0]);
}

static long long gather_axis(const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, "axis") == 0)
            return n->attribute[i]->i;
    return 0;
}

int mq_weight_only_gather_site(const Onnx__GraphProto *g, const struct mq_selection *sel,
                               const Onnx__NodeProto *node, int bits,
                               Onnx__TensorProto **table, const char **why)
{
    const char *dummy;
    why = why ? why : &dummy;
    *table = NULL;
    *why = NULL;
    if (!is_gather(node) || node->n_input < 2 || node->n_output < 1)
        return 0;
    const struct mq_node_choice *c = mq_selection_find(sel, node);
    if (!c || c->status != MQ_NODE_SELECTED) {
        *why = "not selected";
        return 0;
    }
    Onnx__TensorProto *t = mq_matmul_find_initializer(g, node->input[0]);
    if (!t) {
        *why = "its data is not a constant table";
        return 0;
    }
    if (t->data_type != MQ_DTYPE_FLOAT || t->n_dims != 2 || t->dims[0] < 1 || t->dims[1] < 1) {
        *why = "its table is not a 2-D float32 constant";
        return 0;
    }
    long long axis = gather_axis(node);
    if (axis != 0 && axis != -2) {
        *why = "it gathers along axis 1, not rows";
        return 0;
    }
    if (bits == 4 && t->dims[1] % 2) {
        *why = "its rows have an odd length, which 4-bit GatherBlockQuantized cannot hold";
        return 0;
    }
    /* a table something else reads too (a tied output projection) would be stored twice */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k] && strcmp(n->input[k], t->name) == 0 &&
                (k != 0 || !is_gather(n) || (gather_axis(n) != 0 && gather_axis(n) != -2))) {
                *why = "its table is read by other nodes than row Gathers";
                return 0;
            }
    }
    for (size_t i = 0; i < g->n_output; i++)
        if (strcmp(g->output[i]->name, t->name) == 0) {
            *why = "its table is a graph output";
            return 0;
        }
    *table = t;
    return 1;
}


/* Round to nearest along each row: codes u [rows, cols], scales and zeros [rows, nb]. */
static void quantize_rows(const struct mq_block_quantizer *bq, const float *w, int64_t rows,
                          int64_t cols, int64_t block, uint8_t *u, float *scales, int *zeros)
{
    int64_t nb = (cols + block - 1) / block;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            int64_t c0 = b * block, len = cols - c0 < block ? cols - c0 : block;
            float s;
            int z;
            mq_weight_only_block_params(bq, w + r * cols + c0, len, 1, &s, &z);
            scales[r * nb + b] = s;
            zeros[r * nb + b] = z;
            for (int64_t c = c0; c < c0 + len; c++)
                u[r * cols + c] = mq_weight_only_code(w[r * cols + c], s, z, bq->bits);
        }
}

/* GatherBlockQuantized(data uint8 [rows, cols * bits / 8], indices, scales, zero_points). */
static int emit_gbq(Onnx__GraphProto *g, const Onnx__NodeProto *gather,
                    const struct mq_weight_only_names *nm, const struct mq_block_quantizer *bq,
                    int64_t rows, int64_t cols, int64_t block, const uint8_t *u,
                    const float *scales, const int *zeros, struct mq_node_list *list,
                    unsigned long long *bytes, struct mq_error *err)
{
    int per_byte = 8 / bq->bits;
    int64_t nb = (cols + block - 1) / block, row_bytes = cols / per_byte;
    int64_t zrow = (nb + per_byte - 1) / per_byte;
    uint8_t *data = calloc((size_t)(rows * row_bytes), 1);
    uint8_t *zp = bq->is_signed ? NULL : calloc((size_t)(rows * zrow), 1);
    int rc = MQ_OK;
    if (!data || (!bq->is_signed && !zp)) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto done;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            mq_weight_only_pack(data + r * row_bytes, c, u[r * cols + c], bq->bits);
        for (int64_t b = 0; zp && b < nb; b++)
            mq_weight_only_pack(zp + r * zrow, b, (unsigned)zeros[r * nb + b], bq->bits);
    }
    int64_t ddims[2] = {rows, row_bytes}, sdims[2] = {rows, nb}, zdims[2] = {rows, zrow};
    /* a table several Gathers read is stored once */
    int stored = mq_matmul_find_initializer(g, nm->data) != NULL;
    if (!stored)
        rc = mq_matmul_add_raw(g, nm->data, MQ_DTYPE_UINT8, 2, ddims, data,
                               (size_t)(rows * row_bytes), err);
    if (rc == MQ_OK && !stored)
        rc = mq_matmul_add_raw(g, nm->scales, MQ_DTYPE_FLOAT, 2, sdims, scales,
                               (size_t)(rows * nb) * sizeof *scales, err);
    if (rc == MQ_OK && zp && !stored)
        rc = mq_matmul_add_raw(g, nm->zeros, MQ_DTYPE_UINT8, 2, zdims, zp,
                               (size_t)(rows * zrow), err);
    if (rc)
        goto done;
    if (!stored)
        *bytes += (unsigned long long)(rows * row_bytes + rows * nb * 4 + (zp ? rows * zrow : 0));
    const char *in[4] = {nm->data, gather->input[1], nm->scales, nm->zeros};
    Onnx__NodeProto *node = mq_graph_new_node("GatherBlockQuantized", nm->node, in, zp ? 4 : 3,
                                              gather->output[0], -1);
    if ((rc = mq_node_list_push(list, node, err)) == MQ_OK &&
        (rc = mq_matmul_set_domain(node, "com.microsoft", err)) == MQ_OK &&
        (rc = mq_matmul_set_int_attr(node, "gather_axis", 0, err)) == MQ_OK &&
        (rc = mq_matmul_set_int_attr(node, "quantize_axis", 1, err)) == MQ_OK &&
        (rc = mq_matmul_set_int_attr(node, "block_size", block, err)) == MQ_OK)
        rc = mq_matmul_set_int_attr(node, "bits", bq->bits, err);
done:
    free(data);
    free(zp);
    return rc;
}

int mq_weight_only_gather_rewrite(Onnx__GraphProto *g, Onnx__NodeProto *gather,
                                  Onnx__TensorProto *table,
                                  const struct mq_weight_only_options *o,
                                  struct mq_node_list *list, struct mq_weight_only_result *res,
                                  int *replaced, struct mq_error *err)
{
    struct mq_block_quantizer bq = mq_weight_only_quantizer(o->qtype);
    struct mq_tensor w = {0};
    if (mq_matmul_weight_load(table, &w, err))
        return MQ_ERR;
    int64_t rows = w.dims[0], cols = w.dims[1], block = o->block_size;
    int64_t nb = (cols + block - 1) / block;
    uint8_t *u = malloc((size_t)(rows * cols));
    float *scales = malloc((size_t)(rows * nb) * sizeof *scales);
    int *zeros = malloc((size_t)(rows * nb) * sizeof *zeros);
    struct mq_weight_only_names nm = {0};
    int named = mq_weight_only_names_make(&nm, table->name, gather, "table", o->format_qdq,
                                          bq.bits) == 0;
    int rc = MQ_OK;
    if (!u || !scales || !zeros || !named) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto done;
    }
    quantize_rows(&bq, w.data, rows, cols, block, u, scales, zeros);
    if (!mq_matmul_find_initializer(g, nm.data))
        res->gather_float_bytes += (unsigned long long)(rows * cols * 4);
    if (o->format_qdq)
        rc = mq_weight_only_emit_qdq(g, gather, 0, &nm, &bq, o->qtype, (int64_t[2]){rows, cols},
                                     1, block, u, scales, zeros, list, &res->gather_quant_bytes,
                                     err);
    else
        rc = emit_gbq(g, gather, &nm, &bq, rows, cols, block, u, scales, zeros, list,
                      &res->gather_quant_bytes, err);
    *replaced = !o->format_qdq;
    if (rc == MQ_OK)
        res->gathers++;
done:
    free(u);
    free(scales);
    free(zeros);
    mq_weight_only_names_free(&nm);
    mq_tensor_free(&w);
    return rc;
}
