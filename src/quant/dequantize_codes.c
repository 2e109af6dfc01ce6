/*
 * Dequantize's inverse of the quantizer's HardSigmoid on codes (hardsigmoid_codes.h): a Clip
 * of a QuantizeLinear's integer output, read by one DequantizeLinear, becomes the float
 * HardSigmoid it stands for again, reading the QuantizeLinear's float input.  With scales s_x,
 * s_h and zero points z_x, z_h, the codes q read as s_h * (clamp(q) - z_h) are
 * clamp(alpha * x + beta, 0, 1) with alpha = s_h / s_x and beta = s_h * (z_x - z_h), where the
 * Clip's lower bound is z_h (0 maps to 0).  The QuantizeLinear is then read by
 * DequantizeLinear only, and its pair goes as any other (dequantize_pairs.c).
 */
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "model/tensor_proto.h"
#include "quant/dequantize_state.h"
#include "util/strutil.h"

/* A scalar constant of this graph or above as a double; 0 when it is not one. */
static int scalar(const struct graph_ctx *gc, const char *name, double *out)
{
    const Onnx__TensorProto *p = name ? mq_dequantize_find_initializer(gc, name) : NULL;
    struct mq_tensor t;
    struct mq_error err;
    if (!p || mq_tensor_from_proto(p, name, &t, &err))
        return 0;
    int ok = t.count == 1;
    if (ok)
        *out = mq_tensor_get_double(&t, 0);
    mq_tensor_free(&t);
    return ok;
}

/* The only node of g reading `name` (-1 when none, several, or the graph returns it). */
static int sole_reader(const struct graph_ctx *gc, const char *name)
{
    if (mq_strmap_get(gc->outputs, name) >= 0)
        return -1;
    int found = -1;
    for (size_t i = 0; i < gc->g->n_node; i++) {
        const Onnx__NodeProto *node = gc->g->node[i];
        for (size_t k = 0; k < node->n_input; k++) {
            if (!node->input[k] || strcmp(node->input[k], name) != 0)
                continue;
            if (found >= 0 || gc->removed[i])
                return -1;
            found = (int)i;
        }
    }
    return found;
}

int mq_dequantize_restore_hardsigmoid(struct graph_ctx *gc, int i)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *clip = gc->g->node[i];
    if (clip->n_input != 3 || clip->n_output != 1 || !*mq_str(clip->output[0]))
        return 0;
    int qi = mq_strmap_get(gc->producer, mq_str(clip->input[0]));
    if (qi < 0 || gc->removed[qi] || !mq_node_is_op(gc->g->node[qi], "QuantizeLinear"))
        return 0;
    const Onnx__NodeProto *q = gc->g->node[qi];
    int di = sole_reader(gc, clip->output[0]);
    if (di < 0 || !mq_node_is_op(gc->g->node[di], "DequantizeLinear"))
        return 0;
    Onnx__NodeProto *dq = gc->g->node[di];
    double s_x, z_x, s_h, z_h, lo, hi;
    if (q->n_input != 3 || dq->n_input != 3 || dq->n_output != 1 || !*mq_str(q->input[0]) ||
        strcmp(mq_str(dq->input[0]), clip->output[0]) != 0 ||
        !scalar(gc, q->input[1], &s_x) || !scalar(gc, q->input[2], &z_x) ||
        !scalar(gc, dq->input[1], &s_h) || !scalar(gc, dq->input[2], &z_h) ||
        !scalar(gc, clip->input[1], &lo) || !scalar(gc, clip->input[2], &hi) ||
        !(s_x > 0) || !(s_h > 0) || lo != z_h || hi <= lo)
        return 0;
    /* The bounds and the output's parameters go with the Clip and its DequantizeLinear. */
    for (size_t k = 1; k < 3; k++)
        if (mq_dequantize_add_candidate(m, clip->input[k]) ||
            mq_dequantize_add_candidate(m, dq->input[k]))
            return dequantize_oom(m);
    for (size_t k = 0; k < clip->n_input; k++)
        free(clip->input[k]);
    clip->n_input = 1;
    if (!(clip->input[0] = strdup(q->input[0])) || mq_str_replace(&clip->op_type, "HardSigmoid") ||
        mq_str_replace(&clip->output[0], dq->output[0]) ||
        mq_graph_add_float_attr(clip, "alpha", (float)(s_h / s_x)) ||
        mq_graph_add_float_attr(clip, "beta", (float)(s_h * (z_x - z_h))))
        return dequantize_oom(m);
    gc->removed[di] = 1;
    m->r->hardsigmoids_restored++;
    return 0;
}
