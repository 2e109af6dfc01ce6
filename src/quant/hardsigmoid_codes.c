/*
 * HardSigmoid inside an integer island as a Clip of its input's codes (see
 * hardsigmoid_codes.h for the arithmetic): the plan (which scale the input gets), the
 * constraint applied when the input's scale is computed, and the rewrite of the node into
 * `x_q -> Clip(codes) -> DequantizeLinear(alpha * s, z - k)`.
 *
 * onnxruntime has no integer HardSigmoid: left as it was, it runs in float between a
 * DequantizeLinear and a QuantizeLinear (four float passes per HardSwish, written
 * x * HardSigmoid(x)).  Its CPU provider runs Clip on 8-bit integers (opset 12 on), and the Mul
 * of a HardSwish then reads two DequantizeLinear outputs and fuses into QLinearMul.  The
 * output is not rounded onto a scale of its own: one rounding fewer than before.
 */
#include "quant/hardsigmoid_codes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "core/tensor.h"
#include "model/model.h"
#include "quant/qdq_internal.h"
#include "util/strutil.h"

int mq_quant_codes_output(float alpha, float beta, struct mq_qparams x, int k,
                          struct mq_qrange full, struct mq_codes_plan *out)
{
    int64_t zp_h = (int64_t)x.zero_point - k;
    if (k <= 0 || zp_h < full.qmin || zp_h > full.qmax)
        return 0;
    out->k = k;
    out->h.scale = (float)((double)alpha * (double)x.scale);
    out->h.zero_point = (int32_t)zp_h;
    /* Codes from the lower clamp (h = 0) to the upper one (h = 1): 1 / (alpha * s). */
    double span = 1.0 / ((double)alpha * (double)x.scale);
    double steps = nearbyint(span);
    out->upper_rounded = fabs(span - steps) > 1e-3;
    out->clip_lo = (int32_t)zp_h;
    out->clip_hi = zp_h + steps > full.qmax ? full.qmax : (int32_t)(zp_h + steps);
    return 1;
}

int mq_quant_codes_plan(float alpha, float beta, float lo, float hi, struct mq_qrange qr,
                        struct mq_qrange full, int symmetric, struct mq_codes_plan *out,
                        char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (!(alpha > 0.0f) || !isfinite(alpha)) {
        snprintf(why, why_size, "its alpha %g is not positive", (double)alpha);
        return 0;
    }
    if (!(beta > 0.0f && beta < 1.0f)) {
        snprintf(why, why_size, "its beta %g is outside (0, 1)", (double)beta);
        return 0;
    }
    if (!isfinite(lo) || !isfinite(hi) || lo > hi) {
        snprintf(why, why_size, "its input's range [%g, %g] is not usable", (double)lo,
                 (double)hi);
        return 0;
    }
    /* The input value where the output reaches 0: its code becomes the output's zero point. */
    double c = (double)beta / (double)alpha;
    float reach = (float)-c;
    double before = (double)(hi > 0 ? hi : 0) - (double)(lo < 0 ? lo : 0);
    float wlo = lo < reach ? lo : reach;
    double after = (double)(hi > 0 ? hi : 0) - (double)wlo;
    if (after > MQ_CODES_MAX_WIDEN * before) {
        snprintf(why, why_size, "its input's range [%g, %g] would have to reach %g (where it "
                 "clamps to 0), %.0f %% wider", (double)lo, (double)hi, (double)reach,
                 100.0 * (after / before - 1.0));
        return 0;
    }
    struct mq_qparams p;
    struct mq_error perr;
    if (mq_qparams_compute(wlo, hi, qr, symmetric, &p, &perr)) {
        snprintf(why, why_size, "%s", perr.message);
        return 0;
    }
    double k = floor(c / (double)p.scale);
    if (k < MQ_CODES_MIN_STEPS) {
        snprintf(why, why_size, "its input's scale %g would become %g / %.0f (%g steps of it "
                 "between the clamp at %g and 0; at least %d needed)", (double)p.scale, c,
                 k < 1 ? 1 : k, c / (double)p.scale, (double)reach, MQ_CODES_MIN_STEPS);
        return 0;
    }
    out->x.scale = (float)(c / k);
    if (symmetric) {
        out->x.zero_point = p.zero_point;
    } else {
        double z = nearbyint((double)qr.qmin - (double)wlo / (double)out->x.scale);
        out->x.zero_point = (int32_t)(z < qr.qmin ? qr.qmin : z > qr.qmax ? qr.qmax : z);
    }
    out->lo = wlo;
    out->widened = wlo < lo;
    if (!mq_quant_codes_output(alpha, beta, out->x, (int)k, full, out)) {
        snprintf(why, why_size, "the output's zero point %d - %.0f is outside the type's range",
                 (int)out->x.zero_point, k);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ the graph */

/* The mark whose scale a tensor's mark uses (itself unless it shares one). */
static struct mark *scale_owner(const struct graph_ctx *gc, struct mark *mk)
{
    for (int depth = 0; mk && mk->kind == MK_SHARED && depth < 64; depth++)
        mk = mk->share_from ? mq_qdq_find_mark(gc, mk->share_from) : NULL;
    return mk;
}

static int skip(struct graph_ctx *gc, int i, const char *fmt, const char *why)
{
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, gc->g->node[i]);
    mq_choice_set(c, MQ_NODE_SKIPPED, fmt, why);
    return 0;
}

int mq_qdq_plan_codes(struct graph_ctx *gc, int i, const struct mq_op_rule *r)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *node = gc->g->node[i];
    const char *x = mq_graph_input_at(node, 0);
    const char *h = node->n_output > 0 && *mq_str(node->output[0]) ? node->output[0] : NULL;
    int qtype = m->o->activation_type;
    if (!m->o->quantize_outputs)
        return skip(gc, i, "%s", "this profile quantizes op inputs only, and the codes rule "
                    "writes the output's DequantizeLinear");
    if (mq_qtype_bits(qtype) != 8)
        return skip(gc, i, "onnxruntime's Clip has no %s kernel, so it stays float",
                    mq_qtype_name(qtype));
    if (m->opset < 12)
        return skip(gc, i, "%s", "Clip takes 8-bit integers from opset 12, so it stays float");
    if (!x || !h || node->n_input != 1 || node->n_output != 1)
        return skip(gc, i, "%s", "it lacks its input or output");
    float alpha, beta;
    r->unit_clamp(node, &alpha, &beta);
    struct mark *xm = mq_qdq_find_mark(gc, x);
    struct mark *owner = xm ? scale_owner(gc, xm) : NULL;
    if (xm && (xm->state == MS_FAILED || !owner || owner->state == MS_FAILED ||
               owner->kind != MK_ACTIVATION))
        return skip(gc, i, "its input '%s' is not quantized with a scale of its own, so it "
                    "stays float", x);
    if (owner && owner->has_codes_map &&
        (owner->codes_alpha != alpha || owner->codes_beta != beta))
        return skip(gc, i, "the scale of '%s' is already chosen for another HardSigmoid, so "
                    "it stays float", owner->name);
    const char *owner_name = owner ? owner->name : x;
    float lo, hi;
    const char *no_range;
    if (!mq_qdq_get_range(m, owner_name, &lo, &hi, &no_range))
        return skip(gc, i, "its input has no range: %s", no_range);
    struct mq_qrange qr = mq_qrange_for(qtype, m->o->symmetric_activations, 0);
    struct mq_codes_plan plan;
    char why[256];
    if (!mq_quant_codes_plan(alpha, beta, lo, hi, qr, mq_qrange_full(qtype),
                             m->o->symmetric_activations, &plan, why, sizeof why))
        return skip(gc, i, "not a clamp of its input's codes, so it stays float: %s", why);
    char *owner_copy = strdup(owner_name);
    if (!owner_copy)
        return mq_qdq_oom(m);
    int rc = mq_qdq_mark_tensor(gc, i, x, MK_ACTIVATION, -1, NULL);
    owner = rc ? NULL : mq_qdq_find_mark(gc, owner_copy); /* the marks may have moved */
    free(owner_copy);
    if (rc || !owner)
        return rc ? rc : mq_qdq_oom(m);
    owner->has_codes_map = 1;
    owner->codes_alpha = alpha;
    owner->codes_beta = beta;
    return mq_qdq_mark_tensor(gc, i, h, MK_CODES, -1, x);
}

void mq_qdq_codes_constrain(struct mark *mk, float *lo, float hi, struct mq_qparams *p)
{
    struct mq_codes_plan plan;
    char why[256];
    if (!mq_quant_codes_plan(mk->codes_alpha, mk->codes_beta, *lo, hi, mk->qr,
                             mq_qrange_full(mk->qtype), mk->symmetric, &plan, why, sizeof why))
        return;
    *p = plan.x;
    *lo = plan.lo;
    mk->codes_k = plan.k;
}

/* A scalar initializer of an integer type holding v. */
static char *code_constant(struct graph_ctx *gc, const char *base, const char *suffix, int qtype,
                           int32_t v)
{
    char *name = mq_qdq_fresh(gc, base, suffix);
    Onnx__TensorProto *t = name ? mq_graph_add_initializer(gc->g, name, qtype, 0, NULL) : NULL;
    if (!t || mq_qdq_encode_ints(qtype, &v, 1, &t->raw_data)) {
        free(name);
        return NULL;
    }
    return name;
}

/* Makes node i `Clip(x_q, lo, hi) -> codes`; its name and report line stay the node's. */
static int rewrite_as_clip(Onnx__NodeProto *node, const char *x_q, const char *lo, const char *hi,
                           const char *codes)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        onnx__attribute_proto__free_unpacked(node->attribute[a], NULL);
    free(node->attribute);
    node->attribute = NULL;
    node->n_attribute = 0;
    char **inputs = malloc(3 * sizeof *inputs);
    if (!inputs)
        return -1;
    inputs[0] = strdup(x_q);
    inputs[1] = strdup(lo);
    inputs[2] = strdup(hi);
    for (size_t k = 0; k < node->n_input; k++)
        free(node->input[k]);
    free(node->input);
    node->input = inputs;
    node->n_input = 3;
    int ok = inputs[0] && inputs[1] && inputs[2];
    return ok && !mq_str_replace(&node->op_type, "Clip") &&
                   !mq_str_replace(&node->output[0], codes)
               ? 0
               : -1;
}

int mq_qdq_quantize_codes(struct graph_ctx *gc, struct mark *mk)
{
    struct model_ctx *m = gc->m;
    const struct mq_tensor_info *info = mq_graph_tensor(&gc->idx, mk->name);
    int i = info ? info->producer : -1;
    if (i < 0)
        return mq_error_set(m->err, "internal: the HardSigmoid writing '%s' is gone", mk->name);
    Onnx__NodeProto *node = gc->g->node[i];
    struct mark *xm = mq_qdq_find_mark(gc, mk->share_from);
    struct mark *owner = xm ? scale_owner(gc, xm) : NULL;
    struct mq_codes_plan plan;
    const char *why = NULL;
    if (!xm || xm->state != MS_DONE || !xm->q_output)
        why = "its input stays float";
    else if (!owner || owner->codes_k <= 0)
        why = "its input's scale could not take the form (beta / alpha) / k";
    else if (!mq_quant_codes_output(owner->codes_alpha, owner->codes_beta,
                                    (struct mq_qparams){xm->scales[0], xm->zps[0]},
                                    owner->codes_k, mq_qrange_full(xm->qtype), &plan))
        why = "the output's zero point falls outside the type's range";
    if (why) {
        /* As before the rule: the HardSigmoid in float, a Q/DQ pair on its output. */
        mk->kind = MK_ACTIVATION;
        free(mk->share_from);
        mk->share_from = NULL;
        skip(gc, i, "not a clamp of its input's codes, so it stays float: %s", why);
        return mq_qdq_quantize_activation(gc, mk);
    }
    mk->qtype = xm->qtype;
    mk->symmetric = 0;
    mk->qr = xm->qr;
    if (mq_qdq_alloc_channels(mk, 1))
        return mq_qdq_oom(m);
    mk->scales[0] = plan.h.scale;
    mk->zps[0] = plan.h.zero_point;
    float lo, hi;
    const char *no_range;
    if (mq_qdq_get_range(m, mk->name, &lo, &hi, &no_range)) {
        mk->has_range = 1;
        mk->lo = lo;
        mk->hi = hi;
    }
    char *clip_lo = code_constant(gc, mk->name, "_codes_min", mk->qtype, plan.clip_lo);
    char *clip_hi = code_constant(gc, mk->name, "_codes_max", mk->qtype, plan.clip_hi);
    char *codes = mq_qdq_fresh(gc, mk->name, "_codes");
    char *dq_name = mq_qdq_fresh(gc, mk->name, "_DequantizeLinear");
    int rc = !clip_lo || !clip_hi || !codes || !dq_name ? mq_qdq_oom(m) : 0;
    if (!rc)
        rc = mq_qdq_add_param_inits(gc, mk, 0, NULL);
    if (!rc && rewrite_as_clip(node, xm->q_output, clip_lo, clip_hi, codes))
        rc = mq_qdq_oom(m);
    if (!rc) {
        const char *dq_in[3] = {codes, mk->scale_name, mk->zp_name};
        Onnx__NodeProto *dq = mq_graph_new_node("DequantizeLinear", dq_name, dq_in, 3, mk->name, -1);
        rc = dq ? mq_qdq_place(gc, i, dq) : mq_qdq_oom(m);
        if (!dq || rc)
            rc = rc ? rc : mq_qdq_oom(m);
    }
    float owner_lo, owner_hi;
    int widened = mq_qdq_get_range(m, owner->name, &owner_lo, &owner_hi, &no_range) &&
                  owner->has_range && owner->lo < owner_lo;
    if (!rc)
        rc = mq_qdq_note_node(gc, i, "HardSigmoid as a clamp of its input's codes: Clip of "
                              "'%s' to [%d, %d] read with scale %g, zero point %d (the input's "
                              "scale %g = (beta / alpha) / %d%s)%s", mk->share_from,
                              (int)plan.clip_lo, (int)plan.clip_hi, (double)plan.h.scale,
                              (int)plan.h.zero_point, (double)xm->scales[0], plan.k,
                              widened ? ", its range widened down to the clamp at 0" : "",
                              plan.upper_rounded ? "; the clamp at 1 rounded to a code" : "");
    if (!rc && !(mk->note = mq_str_printf("the codes of '%s' clamped to [%d, %d] "
                                          "(HardSigmoid '%s')", mk->share_from,
                                          (int)plan.clip_lo, (int)plan.clip_hi,
                                          mq_str(node->name))))
        rc = mq_qdq_oom(m);
    free(clip_lo);
    free(clip_hi);
    free(codes);
    free(dq_name);
    if (rc)
        return rc;
    /* The record says what it is, not a scale shared with the input. */
    free(mk->share_from);
    mk->share_from = NULL;
    mk->dq_name = strdup(mk->name);
    if (!mk->dq_name)
        return mq_qdq_oom(m);
    m->res->hardsigmoid_codes++;
    mk->state = MS_DONE;
    return 0;
}
