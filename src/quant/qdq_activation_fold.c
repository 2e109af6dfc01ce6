/*
 * Relu and Clip folded into the quantized op before them: the range
 * adjustments that make it exact, the fold itself, and the record of each
 * fold that `dequantize` reads to put the activation back.
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
#include "quant/dequantize.h"
#include "util/strutil.h"

/*
 * Whether dropping the Relu/Clip and letting the Q/DQ after it clamp is exact:
 * the quantized range (its calibrated range widened to include 0) must lie
 * within the activation's bounds.
 */
static int activation_foldable(const struct graph_ctx *gc, const Onnx__NodeProto *node,
                               float out_lo, float out_hi)
{
    const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
    struct mq_op_query q;
    float lo, hi;
    mq_qdq_op_query(gc, &q);
    if (!r || !r->clamp_bounds || !r->clamp_bounds(&q, node, &lo, &hi))
        return 0;
    return lo <= 0.0f && hi >= 0.0f && out_lo >= lo && out_hi <= hi;
}

/* onnxruntime's range adjustments, applied before any scale is computed. */
int mq_qdq_adjust_ranges(struct graph_ctx *gc)
{
    struct model_ctx *m = gc->m;
    for (int i = 0; i < gc->n_nodes; i++) {
        const Onnx__NodeProto *node = gc->g->node[i];
        if (!mq_node_is_onnx(node))
            continue;
        const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
        if (!r)
            continue;
        if (r->fixed_output_range && node->n_output > 0 && *mq_str(node->output[0])) {
            if (mq_qdq_set_override(m, node->output[0], r->output_min, r->output_max))
                return mq_qdq_oom(m);
            continue;
        }
        if (m->o->symmetric_activations || !r->clamp_bounds)
            continue;
        struct mq_node_choice *c = mq_selection_find(m->sel, node);
        const char *in = mq_graph_input_at(node, 0);
        if (!c || c->status != MQ_NODE_SELECTED || !in || node->n_output < 1)
            continue;
        const struct mq_tensor_info *t = mq_graph_tensor(&gc->idx, in);
        float in_lo, in_hi, out_lo, out_hi;
        const char *why;
        /* Not when the graph returns the input too: its readers outside need it whole. */
        if (!t || t->n_consumers != 1 || t->graph_output ||
            !mq_qdq_get_range(m, in, &in_lo, &in_hi, &why) ||
            !mq_qdq_get_range(m, mq_str(node->output[0]), &out_lo, &out_hi, &why) ||
            !activation_foldable(gc, node, out_lo, out_hi))
            continue;
        /* The values the activation removes need no resolution before it. */
        if (mq_qdq_set_override(m, in, out_lo, out_hi))
            return mq_qdq_oom(m);
    }
    return 0;
}

/* Remembers a fold for the record: the activation, its node and its bounds. */
static int note_fold(struct graph_ctx *gc, const Onnx__NodeProto *node, const char *out)
{
    const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
    struct mq_op_query q;
    float lo = -INFINITY, hi = INFINITY;
    mq_qdq_op_query(gc, &q);
    if (r && r->clamp_bounds)
        r->clamp_bounds(&q, node, &lo, &hi);
    /* Before opset 11 an absent bound is an absent attribute, not FLT_MAX. */
    if (gc->m->opset < 11 && !mq_node_attr(node, "min"))
        lo = -INFINITY;
    if (gc->m->opset < 11 && !mq_node_attr(node, "max"))
        hi = INFINITY;
    struct fold_note *v = realloc(gc->folds, (size_t)(gc->n_folds + 1) * sizeof *v);
    if (!v)
        return -1;
    gc->folds = v;
    struct fold_note *f = &v[gc->n_folds++];
    f->tensor = strdup(out);
    f->op_type = strdup(mq_str(node->op_type));
    f->node = strdup(mq_str(node->name));
    f->lo = lo;
    f->hi = hi;
    return f->tensor && f->op_type && f->node ? 0 : -1;
}

static void format_bound(char *buf, size_t size, float v)
{
    if (isinf(v))
        snprintf(buf, size, "%s", v < 0 ? "-inf" : "inf");
    else
        snprintf(buf, size, "%.9g", (double)v);
}

int mq_qdq_record_folds(struct graph_ctx *gc)
{
    struct model_ctx *m = gc->m;
    for (int k = 0; k < gc->n_folds; k++) {
        const struct fold_note *f = &gc->folds[k];
        const struct mark *mk = mq_qdq_find_mark(gc, f->tensor);
        /* Without its Q/DQ nothing clamps: dequantize has nothing to put back there. */
        if (!mk || mk->state != MS_DONE || !mk->q_input)
            continue;
        char lo[32], hi[32];
        format_bound(lo, sizeof lo, f->lo);
        format_bound(hi, sizeof hi, f->hi);
        /* Names with a tab or newline would break the line format: such a fold goes unrecorded
           and dequantize falls back on its guess. */
        if (strpbrk(mk->q_input, "\t\n") || strpbrk(f->node, "\t\n"))
            continue;
        char *line = mq_str_printf("%s\t%s\t%s\t%s\t%s\n", mk->q_input, f->op_type, f->node,
                                   lo, hi);
        if (!line)
            return mq_qdq_oom(m);
        size_t len = strlen(line);
        char *grown = realloc(m->fold_record, m->fold_record_len + len + 1);
        if (!grown) {
            free(line);
            return mq_qdq_oom(m);
        }
        memcpy(grown + m->fold_record_len, line, len + 1);
        m->fold_record = grown;
        m->fold_record_len += len;
        free(line);
    }
    return 0;
}

int mq_qdq_write_fold_record(struct model_ctx *m)
{
    if (!m->fold_record_len)
        return 0;
    Onnx__ModelProto *model = m->model;
    for (size_t i = 0; i < model->n_metadata_props; i++) {
        Onnx__StringStringEntryProto *e = model->metadata_props[i];
        if (strcmp(mq_str(e->key), MQ_FOLDED_ACTIVATIONS_KEY) == 0)
            return mq_str_replace(&e->value, m->fold_record) ? mq_qdq_oom(m) : 0;
    }
    Onnx__StringStringEntryProto *e = malloc(sizeof *e);
    if (!e)
        return mq_qdq_oom(m);
    onnx__string_string_entry_proto__init(e);
    e->key = strdup(MQ_FOLDED_ACTIVATIONS_KEY);
    e->value = strdup(m->fold_record);
    if (!e->key || !e->value ||
        mq_graph_append_ptr((void ***)&model->metadata_props, &model->n_metadata_props, e)) {
        onnx__string_string_entry_proto__free_unpacked(e, NULL);
        return mq_qdq_oom(m);
    }
    return 0;
}

void mq_qdq_fold_notes_free(struct graph_ctx *gc)
{
    for (int k = 0; k < gc->n_folds; k++) {
        free(gc->folds[k].tensor);
        free(gc->folds[k].op_type);
        free(gc->folds[k].node);
    }
    free(gc->folds);
}

/*
 * Drops a Relu/Clip whose input is only its input: the producer writes the
 * activation's output directly, and that tensor's Q/DQ (post-activation
 * range, zero point at or below the lower bound) does the clamping.
 */
int mq_qdq_try_fold(struct graph_ctx *gc, int i, int *folded)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *node = gc->g->node[i];
    const char *up = mq_graph_input_at(node, 0);
    const char *out = node->n_output > 0 ? mq_str(node->output[0]) : "";
    *folded = 0;
    float lo, hi;
    const char *why;
    /* Folded, the Q/DQ after it must exist: it is what clamps. */
    if (m->o->symmetric_activations || !m->o->quantize_outputs || !up || !*out ||
        !mq_qdq_get_range(m, out, &lo, &hi, &why) || !activation_foldable(gc, node, lo, hi) ||
        mq_qdq_stats_reject(m, out, NULL))
        return 0;
    /* A float reader of the activation's output reads it float (rename_consumers): the clamp
       must stay in the graph for it. */
    const struct mq_tensor_info *readers = mq_graph_tensor(&gc->idx, out);
    for (int k = 0; readers && k < readers->n_consumers; k++)
        if (!readers->consumers[k].implicit && mq_qdq_float_reader(gc, readers->consumers[k].node, out))
            return 0;
    struct mq_tensor_info *ut = mq_graph_tensor(&gc->idx, up);
    if (!ut || ut->producer < 0 || gc->removed[ut->producer] || ut->n_consumers != 1 ||
        ut->consumers[0].node != i || ut->consumers[0].implicit || ut->graph_output ||
        ut->graph_input || ut->initializer >= 0)
        return 0;
    /*
     * Not into an op that only moves values (Unsqueeze, Reshape, MaxPool...) and shares its
     * input's scale: folded, its output would clamp to a range of its own, and onnxruntime
     * runs such an op in int8 only when the scales on both sides are one; with two it stays
     * DequantizeLinear -> float op -> QuantizeLinear.  Left in place, the op keeps the shared
     * scale and runs in int8, and the activation's own Q/DQ clamps after it.
     */
    int k = mq_strmap_get(gc->mark_of, up);
    if (k >= 0 && gc->marks[k].kind == MK_SHARED && gc->marks[k].share_from)
        return 0;
    int p = ut->producer;
    Onnx__NodeProto *prod = gc->g->node[p];
    if (mq_graph_node_rename_output(prod, up, out))
        return mq_qdq_oom(m);
    struct mq_tensor_info *ot = mq_graph_tensor_add(&gc->idx, out);
    if (!ot)
        return mq_qdq_oom(m);
    ut = mq_graph_tensor(&gc->idx, up); /* the table may have moved */
    ot->producer = p;
    ut->producer = -1;
    ut->n_consumers = 0;
    /*
     * The producer's own mark now names the activation's output, with a range
     * of its own: a scale shared from before the activation would not clamp.
     */
    if (k >= 0 && mq_strmap_get(gc->mark_of, out) < 0) {
        struct mark *mk = &gc->marks[k];
        mq_strmap_del(gc->mark_of, up);
        if (mq_str_replace(&mk->name, out) || mq_strmap_put(gc->mark_of, out, k))
            return mq_qdq_oom(m);
        mk->kind = MK_ACTIVATION;
        free(mk->share_from);
        mk->share_from = NULL;
    }
    char **v = realloc(gc->vanished, (size_t)(gc->n_vanished + 1) * sizeof *v);
    if (!v)
        return mq_qdq_oom(m);
    gc->vanished = v;
    if (!(gc->vanished[gc->n_vanished] = strdup(up)))
        return mq_qdq_oom(m);
    gc->n_vanished++;
    /* Clip's bounds may now be unused. */
    for (size_t b = 1; b < node->n_input && b < 3; b++) {
        const char *bn = mq_graph_input_at(node, b);
        Onnx__GraphProto *owner = bn ? mq_qdq_initializer_owner(&gc->idx, bn) : NULL;
        if (owner && mq_qdq_add_candidate(m, owner, bn))
            return mq_qdq_oom(m);
    }
    if (note_fold(gc, node, out))
        return mq_qdq_oom(m);
    gc->removed[i] = 1;
    struct mq_node_choice *c = mq_selection_find(m->sel, node);
    struct mq_node_choice *pc = mq_selection_find(m->sel, prod);
    mq_choice_set(c, MQ_NODE_FOLDED, "folded into '%s': the Q/DQ of '%s' clamps to [%g, %g]",
                  pc ? pc->name : mq_str(prod->name), out, (double)lo, (double)hi);
    m->res->folded++;
    *folded = 1;
    return 0;
}


