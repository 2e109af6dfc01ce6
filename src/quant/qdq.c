/*
 * The QDQ rewrite's entry points and its per-graph driver: options, the
 * checks on the model, and the order of the passes (islands, planning,
 * quantizing activations, weights and biases, reports, assembly) over the
 * main graph and every subgraph.  The passes live in qdq_*.c.
 */
#include "quant/qdq.h"

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

void mq_quant_options_default(struct mq_quant_options *o)
{
    memset(o, 0, sizeof *o);
    o->activation_type = MQ_DTYPE_UINT8;
    o->weight_type = MQ_DTYPE_INT8;
    o->per_channel = 1;
    o->symmetric_activations = 0;
    o->symmetric_weights = 1;
    o->reduce_range = 0;
    o->quantize_outputs = 1;
    o->stats = NULL;
    o->min_sample_sqnr_db = MQ_DEFAULT_MIN_SAMPLE_SQNR_DB;
    o->bias_correction = 1;
}

static int needs_opset21(int t)
{
    return mq_qtype_bits(t) != 8;
}

int mq_quant_required_opset(const struct mq_quant_options *o)
{
    if (needs_opset21(o->activation_type) || needs_opset21(o->weight_type))
        return 21;
    return o->per_channel ? 13 : 10;
}

const char *mq_quant_required_opset_reason(const struct mq_quant_options *o)
{
    if (needs_opset21(o->activation_type) || needs_opset21(o->weight_type))
        return "16-bit and 4-bit QuantizeLinear types need opset 21";
    if (o->per_channel)
        return "per-channel weights need DequantizeLinear's axis (opset 13)";
    return "QuantizeLinear needs opset 10";
}

const char *mq_qtensor_role_name(enum mq_qtensor_role role)
{
    switch (role) {
    case MQ_QT_ACTIVATION:
        return "activation";
    case MQ_QT_WEIGHT:
        return "weight";
    case MQ_QT_BIAS:
        return "bias";
    case MQ_QT_CONSTANT:
        return "constant";
    }
    return "?";
}

static void graph_ctx_free(struct graph_ctx *gc, int n_nodes)
{
    for (int k = 0; k < gc->n_marks; k++) {
        struct mark *mk = &gc->marks[k];
        free(mk->name);
        free(mk->share_from);
        free(mk->reason);
        free(mk->scale_name);
        free(mk->zp_name);
        free(mk->dq_name);
        free(mk->q_input);
        free(mk->q_output);
        free(mk->scales);
        free(mk->zps);
        free(mk->ch_lo);
        free(mk->ch_hi);
        free(mk->adjusted.v);
        free(mk->note);
    }
    free(gc->marks);
    for (int k = 0; k < gc->n_jobs; k++) {
        struct bias_job *j = &gc->jobs[k];
        free(j->bias);
        free(j->input);
        free(j->weight);
        free(j->reason);
        free(j->scales);
        free(j->values);
        free(j->scale_name);
        free(j->zp_name);
        free(j->dq_name);
        free(j->q_name);
    }
    free(gc->jobs);
    mq_strmap_free(gc->mark_of);
    for (int i = 0; i < n_nodes; i++) {
        if (gc->node_marks)
            free(gc->node_marks[i].v);
        if (gc->node_jobs)
            free(gc->node_jobs[i].v);
        if (gc->node_notes)
            free(gc->node_notes[i]);
        if (gc->after)
            mq_qdq_nodevec_free_all(&gc->after[i]);
    }
    free(gc->node_marks);
    free(gc->node_jobs);
    free(gc->node_notes);
    free(gc->after);
    free(gc->removed);
    mq_qdq_nodevec_free_all(&gc->prologue);
    for (int v = 0; v < gc->n_vanished; v++)
        free(gc->vanished[v]);
    free(gc->vanished);
    mq_qdq_fold_notes_free(gc);
    mq_graph_index_free(&gc->idx);
}

static int process_graph(struct model_ctx *m, Onnx__GraphProto *g,
                         const struct mq_graph_index *parent, const char *path, int depth);

struct sub_walk {
    struct model_ctx *m;
    const struct mq_graph_index *parent;
    const char *prefix;
    int depth;
};

static int process_subgraph(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    struct sub_walk *sw = user;
    char *path = mq_str_printf("%s/%s", sw->prefix, attr_name);
    if (!path)
        return mq_qdq_oom(sw->m);
    int rc = process_graph(sw->m, sub, sw->parent, path, sw->depth + 1);
    free(path);
    return rc;
}

static int process_graph(struct model_ctx *m, Onnx__GraphProto *g,
                         const struct mq_graph_index *parent, const char *path, int depth)
{
    if (depth > 64)
        return mq_error_set(m->err, "subgraphs nest deeper than 64 levels");
    struct graph_ctx gc;
    memset(&gc, 0, sizeof gc);
    gc.m = m;
    gc.g = g;
    gc.path = path;
    int rc = mq_graph_toposort(g, m->err);
    if (rc) {
        if (*path)
            mq_error_prefix(m->err, "subgraph %s: ", path);
        return rc;
    }
    rc = mq_graph_index_build(g, parent, &gc.idx, m->err);
    if (rc)
        return rc;
    int n = gc.n_nodes = (int)g->n_node;
    size_t nn = (size_t)(n ? n : 1);
    gc.mark_of = mq_strmap_new();
    gc.removed = calloc(nn, 1);
    gc.node_marks = calloc(nn, sizeof *gc.node_marks);
    gc.node_jobs = calloc(nn, sizeof *gc.node_jobs);
    gc.node_notes = calloc(nn, sizeof *gc.node_notes);
    gc.after = calloc(nn, sizeof *gc.after);
    if (!gc.mark_of || !gc.removed || !gc.node_marks || !gc.node_jobs || !gc.node_notes ||
        !gc.after) {
        graph_ctx_free(&gc, n);
        return mq_qdq_oom(m);
    }
    rc = mq_qdq_prune_islands(&gc);
    if (!rc)
        rc = mq_qdq_adjust_ranges(&gc);
    for (int i = 0; !rc && i < n; i++)
        rc = mq_qdq_plan_node(&gc, i);
    for (int k = 0; !rc && k < gc.n_marks; k++) {
        struct mark *mk = &gc.marks[k];
        if (mk->state != MS_PENDING)
            continue;
        if (mk->kind == MK_ACTIVATION)
            rc = mq_qdq_quantize_activation(&gc, mk);
        else if (mk->kind == MK_SHARED)
            rc = mq_qdq_quantize_shared(&gc, mk);
        else if (mk->kind == MK_CODES)
            rc = mq_qdq_quantize_codes(&gc, mk);
        else
            rc = mq_qdq_quantize_initializer(&gc, mk);
    }
    if (!rc)
        rc = mq_qdq_quantize_biases(&gc);
    for (int k = 0; !rc && k < gc.n_marks; k++) {
        struct mark *mk = &gc.marks[k];
        if (mk->state != MS_DONE)
            continue;
        rc = mq_qdq_write_params(&gc, mk);
        if (!rc && mk->q_init)
            rc = mq_qdq_write_weight(&gc, mk);
    }
    if (!rc)
        rc = mq_qdq_finalize_statuses(&gc);
    if (!rc)
        rc = mq_qdq_add_records(&gc);
    if (!rc)
        rc = mq_qdq_record_folds(&gc);
    if (!rc)
        rc = mq_qdq_assemble(&gc);
    if (!rc) {
        mq_graph_index_free(&gc.idx);
        rc = mq_graph_index_build(g, parent, &gc.idx, m->err);
    }
    for (size_t i = 0; !rc && i < g->n_node; i++) {
        const struct mq_node_choice *c = mq_selection_find(m->sel, g->node[i]);
        if (!c)
            continue; /* a node the rewrite added */
        char *prefix = *path ? mq_str_printf("%s/%s", path, c->name) : strdup(c->name);
        if (!prefix) {
            rc = mq_qdq_oom(m);
            break;
        }
        struct sub_walk sw = {m, &gc.idx, prefix, depth};
        rc = mq_graph_each_subgraph(g->node[i], process_subgraph, &sw);
        free(prefix);
    }
    graph_ctx_free(&gc, n);
    return rc;
}


static int is_quantized_op(const Onnx__NodeProto *node)
{
    const char *op = mq_str(node->op_type);
    return strcmp(op, "QuantizeLinear") == 0 || strcmp(op, "DequantizeLinear") == 0 ||
           strcmp(op, "DynamicQuantizeLinear") == 0 || strncmp(op, "QLinear", 7) == 0 ||
           strcmp(op, "ConvInteger") == 0 || strcmp(op, "MatMulInteger") == 0;
}

static int find_quantized(const Onnx__GraphProto *g, int depth, const Onnx__NodeProto **hit);

static int find_quantized_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    const Onnx__NodeProto **hit = user;
    return find_quantized(sub, 1, hit);
}

static int find_quantized(const Onnx__GraphProto *g, int depth, const Onnx__NodeProto **hit)
{
    if (depth > 64)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        if (is_quantized_op(g->node[i])) {
            *hit = g->node[i];
            return 1;
        }
        if (mq_graph_each_subgraph(g->node[i], find_quantized_sub, hit))
            return 1;
    }
    return 0;
}

int mq_qdq_check_model(const Onnx__ModelProto *model, struct mq_error *err)
{
    if (!model->graph)
        return mq_error_set(err, "the model has no graph");
    if (mq_model_proto_opset(model, "") < 0)
        return mq_error_set(err, "the model imports no ai.onnx opset");
    const Onnx__NodeProto *hit = NULL;
    if (find_quantized(model->graph, 0, &hit))
        return mq_error_set(err, "the model is quantized already: it has a %s node ('%s')",
                            mq_str(hit->op_type), mq_str(hit->name));
    return MQ_OK;
}

static int check_options(const struct mq_quant_options *o, struct mq_error *err)
{
    int a = o->activation_type, w = o->weight_type;
    if (!mq_qtype_valid(a) || mq_qtype_bits(a) == 4)
        return mq_error_code(err, MQ_ERR_USAGE, "activation type %s cannot be used",
                             mq_dtype_name(a));
    if (!mq_qtype_valid(w))
        return mq_error_code(err, MQ_ERR_USAGE, "weight type %s cannot be used",
                             mq_dtype_name(w));
    return MQ_OK;
}

void mq_quant_result_free(struct mq_quant_result *r)
{
    for (int i = 0; i < r->n_tensors; i++) {
        struct mq_qtensor_record *t = &r->tensors[i];
        free(t->name);
        free(t->graph);
        free(t->scales);
        free(t->zero_points);
        free(t->shared_with);
        free(t->adjusted);
        free(t->note);
    }
    free(r->tensors);
    for (int i = 0; i < r->n_skipped; i++) {
        free(r->skipped[i].name);
        free(r->skipped[i].graph);
        free(r->skipped[i].reason);
    }
    free(r->skipped);
    memset(r, 0, sizeof *r);
}

int mq_qdq_rewrite(Onnx__ModelProto *model, struct mq_selection *sel,
                   const struct mq_ranges *ranges, const struct mq_quant_options *o,
                   struct mq_quant_result *result, struct mq_error *err)
{
    memset(result, 0, sizeof *result);
    int rc = mq_qdq_check_model(model, err);
    if (!rc)
        rc = check_options(o, err);
    if (rc)
        return rc;
    struct model_ctx m;
    memset(&m, 0, sizeof m);
    m.model = model;
    m.sel = sel;
    m.ranges = ranges;
    m.o = o;
    m.res = result;
    m.err = err;
    m.opset = mq_model_proto_opset(model, "");
    if (m.opset < mq_quant_required_opset(o))
        return mq_error_set(err, "the model imports opset %d, but %s", m.opset,
                            mq_quant_required_opset_reason(o));
    rc = mq_names_collect(model, &m.names, err);
    if (rc)
        return rc;
    m.override_of = mq_strmap_new();
    m.cand_of = mq_strmap_new();
    m.skipped_of = mq_strmap_new();
    rc = m.override_of && m.cand_of && m.skipped_of ? process_graph(&m, model->graph, NULL, "", 0)
                                                     : mq_qdq_oom(&m);
    if (!rc)
        rc = mq_qdq_remove_unused(&m);
    if (!rc)
        rc = mq_qdq_write_fold_record(&m);
    mq_names_free(&m.names);
    mq_strmap_free(m.override_of);
    mq_strmap_free(m.cand_of);
    mq_strmap_free(m.skipped_of);
    free(m.overrides);
    for (int c = 0; c < m.n_cands; c++)
        free(m.cands[c].name);
    free(m.cands);
    mq_qdq_nodevec_free_all(&m.graveyard);
    free(m.fold_record);
    if (rc)
        mq_quant_result_free(result);
    return rc;
}


