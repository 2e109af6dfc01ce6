/*
 * Finishing a graph: node statuses, the report's records of quantized and
 * skipped tensors, the new node list in order, and the float initializers
 * nothing reads any more.
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

static int push_record(struct model_ctx *m, struct mq_qtensor_record **out)
{
    struct mq_quant_result *r = m->res;
    struct mq_qtensor_record *v = realloc(r->tensors, (size_t)(r->n_tensors + 1) * sizeof *v);
    if (!v)
        return mq_qdq_oom(m);
    r->tensors = v;
    *out = &v[r->n_tensors++];
    memset(*out, 0, sizeof **out);
    return 0;
}

static int push_skipped(struct model_ctx *m, const char *graph, const char *name,
                        const char *reason)
{
    struct mq_quant_result *r = m->res;
    char *key = mq_str_printf("%s/%s", graph, name);
    if (!key)
        return mq_qdq_oom(m);
    int seen = mq_strmap_get(m->skipped_of, key) >= 0;
    int rc = seen ? 0 : mq_strmap_put(m->skipped_of, key, 1);
    free(key);
    if (seen || rc)
        return rc ? mq_qdq_oom(m) : 0;
    struct mq_skipped_tensor *v = realloc(r->skipped, (size_t)(r->n_skipped + 1) * sizeof *v);
    if (!v)
        return mq_qdq_oom(m);
    r->skipped = v;
    struct mq_skipped_tensor *s = &v[r->n_skipped];
    s->name = strdup(name);
    s->graph = strdup(graph);
    s->reason = strdup(reason ? reason : "not quantized");
    r->n_skipped++;
    return s->name && s->graph && s->reason ? 0 : mq_qdq_oom(m);
}

static int copy_channels(struct mq_qtensor_record *rec, int n, const float *scales,
                         const int32_t *zps)
{
    rec->n_channels = n;
    rec->scales = malloc((size_t)(n ? n : 1) * sizeof *rec->scales);
    rec->zero_points = calloc((size_t)(n ? n : 1), sizeof *rec->zero_points);
    if (!rec->scales || !rec->zero_points)
        return -1;
    memcpy(rec->scales, scales, (size_t)n * sizeof *scales);
    if (zps)
        memcpy(rec->zero_points, zps, (size_t)n * sizeof *zps);
    return 0;
}

int mq_qdq_add_records(struct graph_ctx *gc)
{
    struct model_ctx *m = gc->m;
    for (int k = 0; k < gc->n_marks; k++) {
        const struct mark *mk = &gc->marks[k];
        if (mk->state == MS_FAILED) {
            if (push_skipped(m, gc->path, mk->name, mk->reason))
                return mq_qdq_oom(m);
            continue;
        }
        if (mk->state != MS_DONE)
            continue;
        struct mq_qtensor_record *rec = NULL; /* set by push_record; the compiler cannot see it */
        if (push_record(m, &rec))
            return mq_qdq_oom(m);
        rec->name = strdup(mk->name);
        rec->graph = strdup(gc->path);
        rec->role = mk->kind == MK_WEIGHT     ? MQ_QT_WEIGHT
                    : mk->kind == MK_CONSTANT ? MQ_QT_CONSTANT
                                              : MQ_QT_ACTIVATION;
        rec->qtype = mk->qtype;
        rec->has_range = mk->has_range;
        rec->range_min = mk->lo;
        rec->range_max = mk->hi;
        rec->axis = mk->n_ch > 1 || mk->axis >= 0 ? mk->axis : -1;
        if (!rec->name || !rec->graph || copy_channels(rec, mk->n_ch, mk->scales, mk->zps))
            return mq_qdq_oom(m);
        if (mk->share_from && !(rec->shared_with = strdup(mk->share_from)))
            return mq_qdq_oom(m);
        if (mk->note && !(rec->note = strdup(mk->note)))
            return mq_qdq_oom(m);
        if (mk->adjusted.n) {
            rec->adjusted = malloc((size_t)mk->adjusted.n * sizeof *rec->adjusted);
            if (!rec->adjusted)
                return mq_qdq_oom(m);
            memcpy(rec->adjusted, mk->adjusted.v, (size_t)mk->adjusted.n * sizeof(int));
            rec->n_adjusted = mk->adjusted.n;
        }
    }
    for (int k = 0; k < gc->n_jobs; k++) {
        const struct bias_job *j = &gc->jobs[k];
        if (j->state == MS_FAILED) {
            if (push_skipped(m, gc->path, j->bias, j->reason))
                return mq_qdq_oom(m);
            continue;
        }
        if (j->state != MS_DONE || j->n_ch == 0)
            continue;
        struct mq_qtensor_record *rec = NULL; /* set by push_record; the compiler cannot see it */
        if (push_record(m, &rec))
            return mq_qdq_oom(m);
        rec->name = strdup(j->bias);
        rec->graph = strdup(gc->path);
        rec->role = MQ_QT_BIAS;
        rec->qtype = MQ_DTYPE_INT32;
        const struct mark *w = mq_qdq_find_mark(gc, j->weight);
        rec->axis = w->n_ch > 1 || w->axis >= 0 ? 0 : -1;
        rec->has_range = j->count > 0;
        for (int64_t e = 0; e < j->count; e++) {
            if (e == 0 || j->values[e] < rec->range_min)
                rec->range_min = j->values[e];
            if (e == 0 || j->values[e] > rec->range_max)
                rec->range_max = j->values[e];
        }
        if (!rec->name || !rec->graph || copy_channels(rec, j->n_ch, j->scales, NULL))
            return mq_qdq_oom(m);
        if (j->clamped &&
            !(rec->note = mq_str_printf("%d values clamped to the int32 range", j->clamped)))
            return mq_qdq_oom(m);
        if (j->beta != 1.0f && !rec->note &&
            !(rec->note = mq_str_printf("Gemm beta %g folded into the values", (double)j->beta)))
            return mq_qdq_oom(m);
        if (j->corrected) {
            char *more = mq_str_printf("%s%scorrected for the weights' rounding (mean shift up to %g)",
                                   rec->note ? rec->note : "", rec->note ? "; " : "",
                                   j->max_shift);
            if (!more)
                return mq_qdq_oom(m);
            free(rec->note);
            rec->note = more;
        }
    }
    return 0;
}

/* SELECTED nodes become QUANTIZED when any of their tensors was, else SKIPPED. */
int mq_qdq_finalize_statuses(struct graph_ctx *gc)
{
    struct model_ctx *m = gc->m;
    for (int i = 0; i < gc->n_nodes; i++) {
        struct mq_node_choice *c = mq_selection_find(m->sel, gc->g->node[i]);
        if (!c || gc->removed[i] || c->status != MQ_NODE_SELECTED)
            continue;
        int ok = 0;
        char *why = gc->node_notes[i] ? strdup(gc->node_notes[i]) : NULL;
        if (gc->node_notes[i] && !why)
            return mq_qdq_oom(m);
        struct intvec *iv = &gc->node_marks[i];
        for (int k = 0; k < iv->n; k++) {
            const struct mark *mk = &gc->marks[iv->v[k]];
            if (mk->state == MS_DONE) {
                ok++;
                continue;
            }
            char *more = mq_str_printf("%s%s'%s' stays float: %s", why ? why : "", why ? "; " : "",
                                   mk->name, mk->reason ? mk->reason : "not quantized");
            free(why);
            if (!(why = more))
                return mq_qdq_oom(m);
        }
        iv = &gc->node_jobs[i];
        for (int k = 0; k < iv->n; k++) {
            const struct bias_job *j = &gc->jobs[iv->v[k]];
            if (j->state == MS_DONE)
                continue;
            char *more = mq_str_printf("%s%sbias '%s' stays float: %s", why ? why : "",
                                   why ? "; " : "", j->bias, j->reason ? j->reason : "");
            free(why);
            if (!(why = more))
                return mq_qdq_oom(m);
        }
        if (ok)
            mq_choice_set(c, MQ_NODE_QUANTIZED, why ? "%s" : NULL, why);
        else
            mq_choice_set(c, MQ_NODE_SKIPPED, "%s", why ? why : "nothing to quantize");
        free(why);
    }
    return 0;
}


int mq_qdq_assemble(struct graph_ctx *gc)
{
    Onnx__GraphProto *g = gc->g;
    size_t n = (size_t)gc->prologue.n;
    for (int i = 0; i < gc->n_nodes; i++)
        if (!gc->removed[i])
            n += 1 + (size_t)gc->after[i].n;
    Onnx__NodeProto **nodes = malloc((n ? n : 1) * sizeof *nodes);
    if (!nodes)
        return mq_qdq_oom(gc->m);
    int buried = gc->m->graveyard.n;
    for (int i = 0; i < gc->n_nodes; i++)
        if (gc->removed[i] && mq_qdq_nodevec_push(&gc->m->graveyard, g->node[i])) {
            /* Taken back: the graph still owns them until the new list replaces it. */
            gc->m->graveyard.n = buried;
            free(nodes);
            return mq_qdq_oom(gc->m);
        }
    size_t k = 0;
    for (int j = 0; j < gc->prologue.n; j++)
        nodes[k++] = gc->prologue.v[j];
    gc->prologue.n = 0;
    for (int i = 0; i < gc->n_nodes; i++) {
        if (gc->removed[i])
            continue;
        nodes[k++] = g->node[i];
        for (int j = 0; j < gc->after[i].n; j++)
            nodes[k++] = gc->after[i].v[j];
        gc->after[i].n = 0;
    }
    free(g->node);
    g->node = nodes;
    g->n_node = k;
    gc->n_nodes = 0; /* the per-node tables describe the old list */
    /* Value infos of names that are gone would describe nothing (or mislead). */
    mq_graph_drop_value_infos(g, gc->vanished, gc->n_vanished);
    int rc = mq_graph_toposort(g, gc->m->err);
    if (rc)
        mq_error_prefix(gc->m->err, "after quantization: ");
    return rc;
}


/* Float initializers the rewrite replaced and nothing reads any more are dropped. */
int mq_qdq_remove_unused(struct model_ctx *m)
{
    struct mq_strmap *refs = mq_strmap_new(), *drop = mq_strmap_new();
    Onnx__GraphProto **graphs = calloc((size_t)(m->n_cands ? m->n_cands : 1), sizeof *graphs);
    int n_graphs = 0, rc = 0;
    if (!refs || !drop || !graphs || mq_graph_collect_reads(m->model->graph, refs)) {
        rc = mq_qdq_oom(m);
        goto done;
    }
    for (int c = 0; c < m->n_cands; c++) {
        if (mq_strmap_get(refs, m->cands[c].name) >= 0)
            continue;
        char *key = mq_str_printf("%p/%s", (void *)m->cands[c].graph, m->cands[c].name);
        if (!key || mq_strmap_put(drop, key, 1)) {
            free(key);
            rc = mq_qdq_oom(m);
            goto done;
        }
        free(key);
        int known = 0;
        for (int k = 0; k < n_graphs && !known; k++)
            known = graphs[k] == m->cands[c].graph;
        if (!known)
            graphs[n_graphs++] = m->cands[c].graph;
    }
    for (int k = 0; k < n_graphs; k++) {
        Onnx__GraphProto *g = graphs[k];
        size_t w = 0;
        for (size_t i = 0; i < g->n_initializer; i++) {
            char *key = mq_str_printf("%p/%s", (void *)g, mq_str(g->initializer[i]->name));
            int gone = key && mq_strmap_get(drop, key) >= 0;
            free(key);
            if (gone)
                onnx__tensor_proto__free_unpacked(g->initializer[i], NULL);
            else
                g->initializer[w++] = g->initializer[i];
        }
        g->n_initializer = w;
        /* Old models list initializers among the graph inputs too. */
        w = 0;
        for (size_t i = 0; i < g->n_input; i++) {
            char *key = mq_str_printf("%p/%s", (void *)g, mq_str(g->input[i]->name));
            int gone = key && mq_strmap_get(drop, key) >= 0;
            free(key);
            if (gone)
                onnx__value_info_proto__free_unpacked(g->input[i], NULL);
            else
                g->input[w++] = g->input[i];
        }
        g->n_input = w;
    }
done:
    mq_strmap_free(refs);
    mq_strmap_free(drop);
    free(graphs);
    return rc;
}


