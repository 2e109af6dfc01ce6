/*
 * --dynamic: MatMuls with constant weights rewritten into onnxruntime's dynamic quantization
 * pattern (see dynamic.h).  The weights are quantized here, symmetric int8 in [-127, 127]
 * with round-half-even; the activation's uint8 scale and zero point come from
 * DynamicQuantizeLinear at run time.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "quant/dynamic.h"
#include "quant/matmul_rewrite.h"
#include "util/strutil.h"

/* Quantizes W [K, N] to int8, one scale per column (or one for all); q and scale allocated. */
static void quantize_columns(const float *w, int64_t k, int64_t n, int per_channel, int8_t *q,
                             float *scale)
{
    int64_t n_scales = per_channel ? n : 1;
    for (int64_t c = 0; c < n_scales; c++)
        scale[c] = 0.0f;
    for (int64_t r = 0; r < k; r++)
        for (int64_t c = 0; c < n; c++) {
            float a = fabsf(w[r * n + c]);
            float *s = &scale[per_channel ? c : 0];
            *s = a > *s ? a : *s;
        }
    for (int64_t c = 0; c < n_scales; c++)
        scale[c] = scale[c] > 0.0f ? scale[c] / 127.0f : 1.0f;
    for (int64_t r = 0; r < k; r++)
        for (int64_t c = 0; c < n; c++) {
            float v = nearbyintf(w[r * n + c] / scale[per_channel ? c : 0]);
            q[r * n + c] = (int8_t)(v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v);
        }
}

/* The replacement nodes of one MatMul, pushed onto the new node list. */
static int rewrite_one(Onnx__GraphProto *g, Onnx__NodeProto *mm, Onnx__TensorProto *wt,
                       const struct mq_dynamic_options *o, struct mq_node_list *list,
                       struct mq_error *err)
{
    struct mq_tensor w = {0};
    if (mq_matmul_weight_load(wt, &w, err))
        return MQ_ERR;
    int64_t k = w.dims[0], n = w.dims[1], n_scales = o->per_channel ? n : 1;
    int8_t *q = malloc((size_t)(k * n));
    float *scale = malloc((size_t)n_scales * sizeof *scale);
    int8_t *zp = calloc((size_t)n_scales, 1);
    const char *base = mm->name && mm->name[0] ? mm->name : mm->output[0];
    const char *a = mm->input[0], *y = mm->output[0];
    char *wq = mq_str_printf("%s_quantized", wt->name);
    char *ws = mq_str_printf("%s_scale", wt->name);
    char *wz = mq_str_printf("%s_zero_point", wt->name);
    char *aq = mq_str_printf("%s_quantized", a), *as = mq_str_printf("%s_scale", a);
    char *az = mq_str_printf("%s_zero_point", a);
    char *acc = mq_str_printf("%s_output_int32", base), *accf = mq_str_printf("%s_output_float", base);
    char *s = mq_str_printf("%s_scales_product", base);
    char *n_dql = mq_str_printf("%s_dynamic_quantize", base);
    char *n_mmi = mq_str_printf("%s_integer", base), *n_cast = mq_str_printf("%s_cast", base);
    char *n_smul = mq_str_printf("%s_scales_mul", base), *n_mul = mq_str_printf("%s_rescale", base);
    int rc = MQ_OK;
    if (!q || !scale || !zp || !wq || !ws || !wz || !aq || !as || !az || !acc || !accf || !s ||
        !n_dql || !n_mmi || !n_cast || !n_smul || !n_mul) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto done;
    }
    quantize_columns(w.data, k, n, o->per_channel, q, scale);
    int64_t qdims[2] = {k, n};
    int rank = o->per_channel ? 1 : 0;
    /* A weight several MatMuls read is quantized once. */
    if (!mq_matmul_find_initializer(g, wq))
        rc = mq_matmul_add_raw(g, wq, MQ_DTYPE_INT8, 2, qdims, q, (size_t)(k * n), err);
    if (rc == MQ_OK && !mq_matmul_find_initializer(g, ws))
        rc = mq_matmul_add_raw(g, ws, MQ_DTYPE_FLOAT, rank, &n_scales, scale,
                               (size_t)n_scales * sizeof *scale, err);
    if (rc == MQ_OK && !mq_matmul_find_initializer(g, wz))
        rc = mq_matmul_add_raw(g, wz, MQ_DTYPE_INT8, rank, &n_scales, zp, (size_t)n_scales, err);
    if (rc)
        goto done;
    /* An activation read by several MatMuls is quantized once, by the first. */
    int have_aq = 0;
    for (size_t i = 0; i < list->n && !have_aq; i++)
        have_aq = list->items[i]->n_output > 0 && strcmp(list->items[i]->output[0], aq) == 0;
    if (!have_aq) {
        const char *in_dql[1] = {a};
        Onnx__NodeProto *dql = mq_graph_new_node("DynamicQuantizeLinear", n_dql, in_dql, 1, aq, -1);
        if (!dql)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        if (rc == MQ_OK && (rc = mq_node_list_push(list, dql, err)) == MQ_OK &&
            (rc = mq_matmul_add_output(dql, as, err)) == MQ_OK)
            rc = mq_matmul_add_output(dql, az, err);
        if (rc)
            goto done;
    }
    const char *in_mmi[4] = {aq, wq, az, wz};
    const char *in_cast[1] = {acc};
    const char *in_smul[2] = {as, ws};
    const char *in_mul[2] = {accf, s};
    Onnx__NodeProto *mmi = mq_graph_new_node("MatMulInteger", n_mmi, in_mmi, 4, acc, -1);
    if ((rc = mq_node_list_push(list, mmi, err)))
        goto done;
    Onnx__NodeProto *cast = mq_graph_new_node("Cast", n_cast, in_cast, 1, accf, -1);
    if ((rc = mq_node_list_push(list, cast, err)) ||
        (rc = mq_matmul_set_int_attr(cast, "to", MQ_DTYPE_FLOAT, err)))
        goto done;
    Onnx__NodeProto *smul = mq_graph_new_node("Mul", n_smul, in_smul, 2, s, -1);
    if ((rc = mq_node_list_push(list, smul, err)))
        goto done;
    Onnx__NodeProto *mul = mq_graph_new_node("Mul", n_mul, in_mul, 2, y, -1);
    rc = mq_node_list_push(list, mul, err);
done:
    free(q);
    free(scale);
    free(zp);
    char *names[] = {wq, ws, wz, aq, as, az, acc, accf, s, n_dql, n_mmi, n_cast, n_smul, n_mul};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        free(names[i]);
    mq_tensor_free(&w);
    return rc;
}

int mq_quant_dynamic(Onnx__ModelProto *model, struct mq_selection *sel,
                     const struct mq_dynamic_options *o, struct mq_dynamic_result *result,
                     struct mq_error *err)
{
    Onnx__GraphProto *g = model->graph;
    struct mq_node_list list = {0};
    Onnx__TensorProto **rewritten = calloc(g->n_node + 1, sizeof *rewritten);
    Onnx__NodeProto **old = calloc(g->n_node + 1, sizeof *old);
    size_t n_old = 0, n_rewritten = 0;
    int rc = rewritten && old ? MQ_OK : mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    memset(result, 0, sizeof *result);
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++) {
        Onnx__NodeProto *node = g->node[i];
        Onnx__TensorProto *w;
        const char *why;
        struct mq_node_choice *c = mq_selection_find(sel, node);
        if (mq_matmul_weight_site(g, sel, node, &w, &why)) {
            rc = rewrite_one(g, node, w, o, &list, err);
            if (rc == MQ_OK) {
                mq_choice_set(c, MQ_NODE_QUANTIZED, "dynamic: int8 weight%s, uint8 activation "
                              "at run time", o->per_channel ? " per column" : "");
                old[n_old++] = node;
                rewritten[n_rewritten++] = w;
                result->quantized++;
            } else {
                mq_error_prefix(err, "node '%s' (MatMul): ", c ? c->name : node->name);
            }
            continue;
        }
        if (c && c->status == MQ_NODE_SELECTED) {
            mq_choice_set(c, MQ_NODE_SKIPPED, "%s", strcmp(node->op_type, "MatMul") == 0 && why
                              ? why : "--dynamic quantizes MatMuls with a constant weight only");
            result->kept_float += strcmp(node->op_type, "MatMul") == 0;
        }
        rc = mq_node_list_push(&list, node, err);
    }
    if (rc == MQ_OK) {
        mq_matmul_commit(&list, g, old, n_old, rewritten, n_rewritten);
    } else {
        /* the new nodes are dropped; the original nodes stay in the graph */
        for (size_t i = 0; i < list.n; i++) {
            int original = 0;
            for (size_t j = 0; j < g->n_node && !original; j++)
                original = g->node[j] == list.items[i];
            if (!original)
                onnx__node_proto__free_unpacked(list.items[i], NULL);
        }
        free(list.items);
    }
    free(rewritten);
    free(old);
    return rc;
}
