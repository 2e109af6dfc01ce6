/*
 * --weight-only: block-wise quantization of MatMul weights along K (see weight_only.h).
 *
 * Codes are kept unsigned, u in [0, 2^bits), with a per-block zero point z: a signed type is
 * the case z = 2^(bits-1), which MatMulNBits assumes when no zero point is given.  A signed
 * block maps its largest-magnitude value onto -2^(bits-1) (onnxruntime's symmetric rule: the
 * scale may be negative, the full code range is used); an unsigned block spans [min, max]
 * widened to include 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "quant/matmul_rewrite.h"
#include "quant/weight_only.h"
#include "util/strutil.h"

void mq_weight_only_block_params(const struct mq_block_quantizer *bq, const float *v,
                                 int64_t count, int64_t stride, float *scale, int *zero)
{
    float levels = (float)((1 << bq->bits) - 1);
    if (bq->is_signed) {
        float m = 0.0f;
        for (int64_t i = 0; i < count; i++)
            m = fabsf(v[i * stride]) > fabsf(m) ? v[i * stride] : m;
        *zero = 1 << (bq->bits - 1);
        *scale = m != 0.0f ? m / -(float)(1 << (bq->bits - 1)) : 1.0f;
        return;
    }
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < count; i++) {
        lo = v[i * stride] < lo ? v[i * stride] : lo;
        hi = v[i * stride] > hi ? v[i * stride] : hi;
    }
    *scale = hi > lo ? (hi - lo) / levels : 1.0f;
    float z = nearbyintf(-lo / *scale);
    *zero = (int)(z < 0.0f ? 0.0f : z > levels ? levels : z);
}

uint8_t mq_weight_only_code(float v, float scale, int zero, int bits)
{
    float levels = (float)((1 << bits) - 1);
    float u = nearbyintf(v / scale) + (float)zero;
    return (uint8_t)(u < 0.0f ? 0.0f : u > levels ? levels : u);
}

/* Round to nearest: codes u [K, N], scales and zeros [kb, N]. */
static void quantize_rtn(const struct mq_block_quantizer *bq, const float *w, int64_t k,
                         int64_t n, int64_t block, uint8_t *u, float *scales, int *zeros)
{
    int64_t kb = (k + block - 1) / block;
    for (int64_t j = 0; j < kb; j++) {
        int64_t rows = k - j * block < block ? k - j * block : block;
        for (int64_t c = 0; c < n; c++) {
            float s;
            int z;
            mq_weight_only_block_params(bq, w + j * block * n + c, rows, n, &s, &z);
            scales[j * n + c] = s;
            zeros[j * n + c] = z;
            for (int64_t r = 0; r < rows; r++)
                u[(j * block + r) * n + c] =
                    mq_weight_only_code(w[(j * block + r) * n + c], s, z, bq->bits);
        }
    }
}

void mq_weight_only_pack(uint8_t *out, int64_t j, unsigned v, int bits)
{
    int per_byte = 8 / bits;
    out[j / per_byte] |= (uint8_t)(v << ((j % per_byte) * bits));
}

struct mq_block_quantizer mq_weight_only_quantizer(int qtype)
{
    struct mq_block_quantizer bq = {qtype == MQ_DTYPE_INT8 ? 8 : 4, qtype != MQ_DTYPE_UINT4};
    return bq;
}

int mq_weight_only_names_make(struct mq_weight_only_names *nm, const char *tensor,
                              const Onnx__NodeProto *node, const char *role, int format_qdq,
                              int bits)
{
    const char *base = node->name && node->name[0] ? node->name : node->output[0];
    nm->data = mq_str_printf("%s_Q%d", tensor, bits);
    nm->scales = mq_str_printf("%s_scales", tensor);
    nm->zeros = mq_str_printf("%s_zero_points", tensor);
    nm->node = format_qdq ? mq_str_printf("%s_%s_dequantize", base, role)
                          : mq_str_printf("%s_Q%d", base, bits);
    nm->deq = mq_str_printf("%s_dequantized", tensor);
    if (nm->data && nm->scales && nm->zeros && nm->node && nm->deq)
        return 0;
    mq_weight_only_names_free(nm);
    memset(nm, 0, sizeof *nm);
    return -1;
}

void mq_weight_only_names_free(struct mq_weight_only_names *nm)
{
    free(nm->data);
    free(nm->scales);
    free(nm->zeros);
    free(nm->node);
    free(nm->deq);
}

/* MatMulNBits(A, B [N, kb, blob], scales [N * kb], zero_points) replacing the MatMul. */
static int emit_nbits(Onnx__GraphProto *g, Onnx__NodeProto *mm,
                      const struct mq_weight_only_names *nm, const struct mq_block_quantizer *bq,
                      int64_t k, int64_t n, int64_t block,
                      const uint8_t *u, const float *scales, const int *zeros,
                      struct mq_node_list *list, unsigned long long *bytes, struct mq_error *err)
{
    int64_t kb = (k + block - 1) / block, blob = block * bq->bits / 8;
    int64_t zrow = (kb * bq->bits + 7) / 8;
    uint8_t *b = calloc((size_t)(n * kb * blob), 1);
    float *s = malloc((size_t)(n * kb) * sizeof *s);
    uint8_t *zp = bq->is_signed ? NULL : calloc((size_t)(n * zrow), 1);
    int rc = MQ_OK;
    if (!b || !s || (!bq->is_signed && !zp)) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto done;
    }
    for (int64_t c = 0; c < n; c++)
        for (int64_t j = 0; j < kb; j++) {
            s[c * kb + j] = scales[j * n + c];
            if (zp)
                mq_weight_only_pack(zp + c * zrow, j, (unsigned)zeros[j * n + c], bq->bits);
            uint8_t *dst = b + (c * kb + j) * blob;
            for (int64_t r = 0; r < block; r++) {
                int64_t row = j * block + r;
                /* the tail past K holds the zero point: it dequantizes to 0 */
                unsigned v = row < k ? u[row * n + c] : (unsigned)zeros[j * n + c];
                mq_weight_only_pack(dst, r, v, bq->bits);
            }
        }
    int64_t bdims[3] = {n, kb, blob}, sdims[1] = {n * kb}, zdims[1] = {n * zrow};
    /* a weight several MatMuls read is stored once */
    int stored = mq_matmul_find_initializer(g, nm->data) != NULL;
    if (!stored)
        rc = mq_matmul_add_raw(g, nm->data, MQ_DTYPE_UINT8, 3, bdims, b, (size_t)(n * kb * blob),
                               err);
    if (rc == MQ_OK && !stored)
        rc = mq_matmul_add_raw(g, nm->scales, MQ_DTYPE_FLOAT, 1, sdims, s,
                               (size_t)(n * kb) * sizeof *s, err);
    if (rc == MQ_OK && zp && !stored)
        rc = mq_matmul_add_raw(g, nm->zeros, MQ_DTYPE_UINT8, 1, zdims, zp, (size_t)(n * zrow),
                               err);
    if (rc)
        goto done;
    if (!stored)
        *bytes += (unsigned long long)(n * kb * blob + n * kb * 4 + (zp ? n * zrow : 0));
    const char *in[4] = {mm->input[0], nm->data, nm->scales, nm->zeros};
    Onnx__NodeProto *node = mq_graph_new_node("MatMulNBits", nm->node, in, zp ? 4 : 3,
                                              mm->output[0], -1);
    if ((rc = mq_node_list_push(list, node, err)) == MQ_OK &&
        (rc = mq_matmul_set_domain(node, "com.microsoft", err)) == MQ_OK &&
        (rc = mq_matmul_set_int_attr(node, "K", k, err)) == MQ_OK &&
        (rc = mq_matmul_set_int_attr(node, "N", n, err)) == MQ_OK &&
        (rc = mq_matmul_set_int_attr(node, "bits", bq->bits, err)) == MQ_OK)
        rc = mq_matmul_set_int_attr(node, "block_size", block, err);
done:
    free(b);
    free(s);
    free(zp);
    return rc;
}

int mq_weight_only_emit_qdq(Onnx__GraphProto *g, Onnx__NodeProto *reader, size_t reader_input,
                            const struct mq_weight_only_names *nm,
                            const struct mq_block_quantizer *bq, int qtype, const int64_t dims[2],
                            int axis, int64_t block, const uint8_t *u, const float *scales,
                            const int *zeros, struct mq_node_list *list,
                            unsigned long long *bytes, struct mq_error *err)
{
    int64_t sdims[2] = {dims[0], dims[1]};
    sdims[axis] = (dims[axis] + block - 1) / block;
    int64_t count = dims[0] * dims[1], n_blocks = sdims[0] * sdims[1];
    int64_t vbytes = bq->bits == 4 ? (count + 1) / 2 : count;
    int64_t zbytes = bq->bits == 4 ? (n_blocks + 1) / 2 : n_blocks;
    uint8_t *q = calloc((size_t)vbytes, 1);
    uint8_t *zp = bq->is_signed ? NULL : calloc((size_t)zbytes, 1);
    int rc = MQ_OK;
    if (!q || (!bq->is_signed && !zp)) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto done;
    }
    unsigned mask = (1u << bq->bits) - 1u;
    for (int64_t i = 0; i < count; i++) {
        /* a signed type stores u - 2^(bits-1), two's complement in `bits` bits */
        int v = bq->is_signed ? (int)u[i] - (1 << (bq->bits - 1)) : (int)u[i];
        mq_weight_only_pack(q, i, (unsigned)v & mask, bq->bits);
    }
    for (int64_t i = 0; zp && i < n_blocks; i++)
        mq_weight_only_pack(zp, i, (unsigned)zeros[i], bq->bits);
    int stored = mq_matmul_find_initializer(g, nm->data) != NULL;
    if (!stored)
        rc = mq_matmul_add_raw(g, nm->data, qtype, 2, dims, q, (size_t)vbytes, err);
    if (rc == MQ_OK && !stored)
        rc = mq_matmul_add_raw(g, nm->scales, MQ_DTYPE_FLOAT, 2, sdims, scales,
                               (size_t)n_blocks * sizeof *scales, err);
    if (rc == MQ_OK && zp && !stored)
        rc = mq_matmul_add_raw(g, nm->zeros, qtype, 2, sdims, zp, (size_t)zbytes, err);
    if (rc)
        goto done;
    if (!stored)
        *bytes += (unsigned long long)(vbytes + n_blocks * 4 + (zp ? zbytes : 0));
    const char *in[3] = {nm->data, nm->scales, nm->zeros};
    /* the first reader of a shared weight made its DequantizeLinear */
    Onnx__NodeProto *dq = stored ? NULL : mq_graph_new_node("DequantizeLinear", nm->node, in,
                                                            zp ? 3 : 2, nm->deq, axis);
    if (stored || ((rc = mq_node_list_push(list, dq, err)) == MQ_OK &&
                   (rc = mq_matmul_set_int_attr(dq, "block_size", block, err)) == MQ_OK)) {
        char *from = strdup(reader->input[reader_input]);
        rc = !from || mq_graph_node_rename_input(reader, from, nm->deq)
                 ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory") : MQ_OK;
        free(from);
        if (rc == MQ_OK)
            rc = mq_node_list_push(list, reader, err);
    }
done:
    free(q);
    free(zp);
    return rc;
}

/* Rewrites one MatMul; *replaced tells whether the original node left the graph. */
static int rewrite_one(Onnx__GraphProto *g, Onnx__NodeProto *mm, Onnx__TensorProto *wt,
                       const struct mq_weight_only_options *o, const double *hessian,
                       struct mq_node_list *list, struct mq_weight_only_result *res,
                       int *replaced, struct mq_error *err)
{
    struct mq_block_quantizer bq = mq_weight_only_quantizer(o->qtype);
    struct mq_tensor w = {0};
    if (mq_matmul_weight_load(wt, &w, err))
        return MQ_ERR;
    int64_t k = w.dims[0], n = w.dims[1], block = o->block_size;
    int64_t kb = (k + block - 1) / block;
    uint8_t *u = malloc((size_t)(k * n));
    float *scales = malloc((size_t)(kb * n) * sizeof *scales);
    int *zeros = malloc((size_t)(kb * n) * sizeof *zeros);
    struct mq_weight_only_names nm = {0};
    int named =
        mq_weight_only_names_make(&nm, wt->name, mm, "weight", o->format_qdq, bq.bits) == 0;
    int rc = MQ_OK;
    if (!u || !scales || !zeros || !named) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto done;
    }
    if (hessian)
        rc = mq_weight_only_gptq(&bq, w.data, k, n, block, hessian, u, scales, zeros, err);
    else
        quantize_rtn(&bq, w.data, k, n, block, u, scales, zeros);
    if (rc)
        goto done;
    if (!mq_matmul_find_initializer(g, nm.data))
        res->float_bytes += (unsigned long long)(k * n * 4);
    if (o->format_qdq)
        rc = mq_weight_only_emit_qdq(g, mm, 1, &nm, &bq, o->qtype, (int64_t[2]){k, n}, 0, block,
                                     u, scales, zeros, list, &res->quant_bytes, err);
    else
        rc = emit_nbits(g, mm, &nm, &bq, k, n, block, u, scales, zeros, list,
                        &res->quant_bytes, err);
    *replaced = !o->format_qdq;
done:
    free(u);
    free(scales);
    free(zeros);
    mq_weight_only_names_free(&nm);
    mq_tensor_free(&w);
    return rc;
}

int mq_quant_weight_only(struct mq_model *model, struct mq_selection *sel,
                         const struct mq_weight_only_options *o,
                         struct mq_weight_only_result *result, struct mq_error *err)
{
    Onnx__GraphProto *g = model->proto->graph;
    memset(result, 0, sizeof *result);
    size_t n_nodes = g->n_node;
    Onnx__TensorProto **weights = calloc(n_nodes + 1, sizeof *weights);
    Onnx__TensorProto **tables = calloc(n_nodes + 1, sizeof *tables); /* Gather sites */
    double **hessians = calloc(n_nodes + 1, sizeof *hessians);
    char **inputs = calloc(n_nodes + 1, sizeof *inputs);
    int64_t *ks = calloc(n_nodes + 1, sizeof *ks), *rows = calloc(n_nodes + 1, sizeof *rows);
    int n_sites = 0, rc = MQ_OK;
    if (!weights || !tables || !hessians || !inputs || !ks || !rows)
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    /* the sites first: GPTQ needs every site's input statistics before any rewrite */
    for (size_t i = 0; rc == MQ_OK && i < n_nodes; i++) {
        Onnx__TensorProto *w;
        if (mq_matmul_weight_site(g, sel, g->node[i], &w, NULL)) {
            weights[i] = w;
            inputs[n_sites] = g->node[i]->input[0];
            ks[n_sites++] = w->dims[0];
        } else if (mq_weight_only_gather_site(g, sel, g->node[i],
                                              mq_weight_only_quantizer(o->qtype).bits, &w, NULL)) {
            tables[i] = w;
        }
    }
    if (rc == MQ_OK && o->method == MQ_WEIGHT_ONLY_GPTQ && n_sites)
        rc = mq_weight_only_hessians(model, o->calib, o->calib_limit, inputs, ks, n_sites,
                                     hessians, rows, err);
    struct mq_node_list list = {0};
    Onnx__NodeProto **old = calloc(n_nodes + 1, sizeof *old);
    size_t n_old = 0;
    if (rc == MQ_OK && !old)
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (size_t i = 0, site = 0; rc == MQ_OK && i < n_nodes; i++) {
        Onnx__NodeProto *node = g->node[i];
        struct mq_node_choice *c = mq_selection_find(sel, node);
        if (weights[i]) {
            int replaced = 0;
            const double *h = NULL;
            /* a site whose input the samples never produced (a graph input) gets RTN */
            for (size_t j = 0; o->method == MQ_WEIGHT_ONLY_GPTQ && j < (size_t)n_sites; j++)
                if (strcmp(inputs[j], node->input[0]) == 0 && hessians[j])
                    h = hessians[j];
            (void)site;
            rc = rewrite_one(g, node, weights[i], o, h, &list, result, &replaced, err);
            if (rc) {
                mq_error_prefix(err, "node '%s' (MatMul): ", c ? c->name : node->name);
                break;
            }
            mq_choice_set(c, MQ_NODE_QUANTIZED, "weight-only: %s blocks of %d along K%s",
                          o->qtype == MQ_DTYPE_INT8 ? "int8" : o->qtype == MQ_DTYPE_INT4
                              ? "int4" : "uint4", o->block_size, h ? ", GPTQ" : "");
            if (replaced)
                old[n_old++] = node;
            result->quantized++;
            continue;
        }
        if (tables[i]) {
            int replaced = 0;
            rc = mq_weight_only_gather_rewrite(g, node, tables[i], o, &list, result, &replaced,
                                               err);
            if (rc) {
                mq_error_prefix(err, "node '%s' (Gather): ", c ? c->name : node->name);
                break;
            }
            mq_choice_set(c, MQ_NODE_QUANTIZED, "weight-only: embedding table in %s blocks of %d "
                          "along its rows", o->qtype == MQ_DTYPE_INT8 ? "int8"
                          : o->qtype == MQ_DTYPE_INT4 ? "int4" : "uint4", o->block_size);
            if (replaced)
                old[n_old++] = node;
            continue;
        }
        if (c && c->status == MQ_NODE_SELECTED) {
            const char *why = NULL;
            Onnx__TensorProto *w;
            if (strcmp(node->op_type, "Gather") == 0)
                mq_weight_only_gather_site(g, sel, node, mq_weight_only_quantizer(o->qtype).bits,
                                           &w, &why);
            else
                mq_matmul_weight_site(g, sel, node, &w, &why);
            mq_choice_set(c, MQ_NODE_SKIPPED, "%s", why ? why
                              : "--weight-only quantizes MatMuls with a constant weight and "
                                "Gathers of rows of a constant table only");
            result->kept_float += strcmp(node->op_type, "MatMul") == 0;
        }
        rc = mq_node_list_push(&list, node, err);
    }
    if (rc == MQ_OK) {
        mq_matmul_commit(&list, g, old, n_old, weights, n_nodes);
        for (size_t i = 0; i < n_nodes; i++) {
            int seen = 0;
            for (size_t j = 0; j < i && tables[i]; j++)
                seen |= tables[j] == tables[i];
            if (tables[i] && !seen)
                mq_matmul_drop_if_unread(g, tables[i]);
        }
        if (!o->format_qdq && (result->quantized || result->gathers))
            rc = mq_matmul_import_domain(model->proto, "com.microsoft", 1, err);
    } else {
        free(list.items); /* the caller discards the model */
    }
    for (int i = 0; hessians && i < n_sites; i++)
        free(hessians[i]);
    free(hessians);
    free(weights);
    free(tables);
    free(inputs);
    free(ks);
    free(rows);
    free(old);
    return rc;
}
