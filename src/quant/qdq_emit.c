/*
 * Activations: scale and zero point from the range, the QuantizeLinear ->
 * DequantizeLinear pair on the tensor, scales shared through data-movement
 * ops, and the parameters written into their initializers.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/params.h"
#include "quant/qdq_internal.h"
#include "util/strutil.h"

/*
 * Puts a Q -> DQ pair on tensor t.  Readers get the DQ output; when t is a
 * graph output, the producer writes a new name and the DQ writes t itself,
 * so the graph keeps its interface.
 */
int mq_qdq_insert_qdq(struct graph_ctx *gc, struct mark *mk)
{
    const char *t = mk->name;
    struct mq_tensor_info *info = mq_graph_tensor(&gc->idx, t);
    int producer = info ? info->producer : -1;
    int is_output = info && info->graph_output && producer >= 0;
    char *q_in = NULL, *dq_out = NULL, *q_out = NULL, *q_name = NULL, *dq_name = NULL;
    int rc = 0;
    if (is_output) {
        q_in = mq_qdq_fresh(gc, t, "_QuantizeLinear_Input");
        dq_out = strdup(t);
    } else {
        q_in = strdup(t);
        dq_out = mq_qdq_fresh(gc, t, "_dequantized");
    }
    q_name = mq_qdq_fresh(gc, t, "_QuantizeLinear");
    q_out = mq_qdq_fresh(gc, t, "_quantized");
    dq_name = mq_qdq_fresh(gc, t, "_DequantizeLinear");
    if (!q_in || !dq_out || !q_out || !q_name || !dq_name) {
        rc = mq_qdq_oom(gc->m);
        goto done;
    }
    if (is_output) {
        if (mq_graph_node_rename_output(gc->g->node[producer], t, q_in)) {
            rc = mq_qdq_oom(gc->m);
            goto done;
        }
    } else if ((rc = mq_qdq_rename_consumers(gc, t, dq_out))) {
        goto done;
    }
    const char *q_inputs[3] = {q_in, mk->scale_name, mk->zp_name};
    const char *dq_inputs[3] = {q_out, mk->scale_name, mk->zp_name};
    Onnx__NodeProto *q = mq_graph_new_node("QuantizeLinear", q_name, q_inputs, 3, q_out, -1);
    if (!q || (rc = mq_qdq_place(gc, producer, q))) {
        rc = rc ? rc : mq_qdq_oom(gc->m);
        goto done;
    }
    Onnx__NodeProto *dq = mq_graph_new_node("DequantizeLinear", dq_name, dq_inputs, 3, dq_out, -1);
    if (!dq || (rc = mq_qdq_place(gc, producer, dq))) {
        rc = rc ? rc : mq_qdq_oom(gc->m);
        goto done;
    }
    mk->dq_name = dq_out;
    dq_out = NULL;
    mk->q_input = q_in;
    q_in = NULL;
    mk->q_output = q_out;
    q_out = NULL;
done:
    free(q_in);
    free(dq_out);
    free(q_out);
    free(q_name);
    free(dq_name);
    return rc;
}


int mq_qdq_alloc_channels(struct mark *mk, int n)
{
    mk->n_ch = n;
    mk->scales = calloc((size_t)(n ? n : 1), sizeof *mk->scales);
    mk->zps = calloc((size_t)(n ? n : 1), sizeof *mk->zps);
    mk->ch_lo = calloc((size_t)(n ? n : 1), sizeof *mk->ch_lo);
    mk->ch_hi = calloc((size_t)(n ? n : 1), sizeof *mk->ch_hi);
    return mk->scales && mk->zps && mk->ch_lo && mk->ch_hi ? 0 : -1;
}

/* Scale and zero point initializers of a per-tensor mark (values written at the end). */
int mq_qdq_add_param_inits(struct graph_ctx *gc, struct mark *mk, int rank, const int64_t *dims)
{
    mk->scale_name = mq_qdq_fresh(gc, mk->name, "_scale");
    mk->zp_name = mq_qdq_fresh(gc, mk->name, "_zero_point");
    if (!mk->scale_name || !mk->zp_name)
        return mq_qdq_oom(gc->m);
    mk->scale_init = mq_graph_add_initializer(gc->g, mk->scale_name, MQ_DTYPE_FLOAT, rank, dims);
    mk->zp_init = mk->scale_init ? mq_graph_add_initializer(gc->g, mk->zp_name, mk->qtype, rank, dims)
                                 : NULL;
    return mk->zp_init ? 0 : mq_qdq_oom(gc->m);
}

int mq_qdq_quantize_activation(struct graph_ctx *gc, struct mark *mk)
{
    struct model_ctx *m = gc->m;
    float lo, hi;
    const char *why;
    if (!mq_qdq_get_range(m, mk->name, &lo, &hi, &why))
        return mq_qdq_fail_mark(gc, mk, "%s", why);
    char *rejected = NULL;
    if (mq_qdq_stats_reject(m, mk->name, &rejected)) {
        int rc = mq_qdq_fail_mark(gc, mk, "%s", rejected ? rejected : "too quiet on some sample");
        free(rejected);
        return rc;
    }
    mk->qtype = m->o->activation_type;
    mk->symmetric = m->o->symmetric_activations;
    mk->qr = mq_qrange_for(mk->qtype, mk->symmetric, 0);
    if (mq_qdq_alloc_channels(mk, 1))
        return mq_qdq_oom(m);
    struct mq_qparams p;
    struct mq_error perr;
    if (mq_qparams_compute(lo, hi, mk->qr, mk->symmetric, &p, &perr))
        return mq_qdq_fail_mark(gc, mk, "%s", perr.message);
    if (mk->has_codes_map)
        mq_qdq_codes_constrain(mk, &lo, hi, &p);
    mk->has_range = 1;
    mk->lo = lo;
    mk->hi = hi;
    mk->ch_lo[0] = lo;
    mk->ch_hi[0] = hi;
    mk->scales[0] = p.scale;
    mk->zps[0] = p.zero_point;
    int rc = mq_qdq_add_param_inits(gc, mk, 0, NULL);
    if (!rc)
        rc = mq_qdq_insert_qdq(gc, mk);
    if (!rc)
        mk->state = MS_DONE;
    return rc;
}

int mq_qdq_quantize_shared(struct graph_ctx *gc, struct mark *mk)
{
    const struct mark *src = mq_qdq_find_mark(gc, mk->share_from);
    if (!src || src->state != MS_DONE)
        return mq_qdq_fail_mark(gc, mk, "it shares the scale of '%s', which stays float",
                         mk->share_from);
    mk->qtype = src->qtype;
    mk->symmetric = src->symmetric;
    mk->qr = src->qr;
    if (mq_qdq_alloc_channels(mk, 1))
        return mq_qdq_oom(gc->m);
    mk->scales[0] = src->scales[0];
    mk->zps[0] = src->zps[0];
    mk->scale_name = strdup(src->scale_name);
    mk->zp_name = strdup(src->zp_name);
    if (!mk->scale_name || !mk->zp_name)
        return mq_qdq_oom(gc->m);
    float lo, hi;
    const char *why;
    if (mq_qdq_get_range(gc->m, mk->name, &lo, &hi, &why)) {
        mk->has_range = 1;
        mk->lo = lo;
        mk->hi = hi;
    }
    int rc = mq_qdq_insert_qdq(gc, mk);
    if (!rc)
        mk->state = MS_DONE;
    return rc;
}

static int all_zero(const int32_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i])
            return 0;
    return 1;
}

/*
 * Writes the scale and zero point of a mark into its initializers.  A
 * DequantizeLinear-only tensor (a weight or constant) whose zero points are
 * all 0 loses its zero-point input: 0 is the default, and symmetric int8
 * weights would otherwise store a byte per channel plus a name and a node
 * input for nothing.  A Q/DQ pair keeps it: QuantizeLinear without a zero
 * point writes uint8, and a Gemm's weight keeps it (see mark_tensor).
 */
int mq_qdq_write_params(struct graph_ctx *gc, struct mark *mk)
{
    if (!mk->scale_init)
        return 0;
    if (mq_qdq_encode_floats(mk->scales, mk->n_ch, &mk->scale_init->raw_data))
        return mq_qdq_oom(gc->m);
    if (mk->dq_node && mk->dq_node->n_input == 3 && !mk->keep_zp && all_zero(mk->zps, mk->n_ch)) {
        free(mk->dq_node->input[2]);
        mk->dq_node->input[2] = NULL;
        mk->dq_node->n_input = 2;
        mq_graph_drop_initializer(gc->g, mk->zp_init);
        mk->zp_init = NULL;
        return 0;
    }
    if (mq_qdq_encode_ints(mk->qtype, mk->zps, mk->n_ch, &mk->zp_init->raw_data))
        return mq_qdq_oom(gc->m);
    return 0;
}

