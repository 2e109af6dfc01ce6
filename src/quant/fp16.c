/*
 * Float32 -> float16 conversion (see fp16.h): the driver that runs the
 * user's selection (fp16_select.c), the decision (fp16_decide.c) and the
 * rewrite (fp16_rewrite.c) on one model, and the result it reports.
 */
#include "quant/fp16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "quant/fp16_state.h"

double mq_fp16_max_abs(const struct mq_tensor *t, int64_t *flushed)
{
    double m = 0;
    int64_t f = 0;
    const float *v = t->data;
    for (int64_t i = 0; t->dtype == MQ_DTYPE_FLOAT && i < t->count; i++) {
        float a = fabsf(v[i]);
        if (isfinite(a) && a > m)
            m = a;
        if (a != 0 && isfinite(a) && (mq_float_to_half(a) & 0x7fffu) == 0)
            f++;
    }
    if (flushed)
        *flushed = f;
    return m;
}

int mq_fp16_add_range(struct fp16_conv *c, const char *name, const char *graph, const char *what,
                      double value)
{
    struct mq_fp16_result *r = c->r;
    struct mq_fp16_range *v = realloc(r->ranges, (size_t)(r->n_ranges + 1) * sizeof *v);
    if (!v)
        return -1;
    r->ranges = v;
    struct mq_fp16_range *e = &v[r->n_ranges];
    e->name = strdup(name);
    e->graph = strdup(graph);
    e->what = strdup(what);
    e->max_abs = value;
    if (!e->name || !e->graph || !e->what) {
        free(e->name);
        free(e->graph);
        free(e->what);
        return -1;
    }
    r->n_ranges++;
    return 0;
}

static int collect_result(struct fp16_conv *c)
{
    struct mq_fp16_result *r = c->r;
    int total = 0;
    for (int g = 0; g < c->n_graphs; g++)
        total += c->graphs[g].n_nodes;
    r->nodes = calloc((size_t)total + 1, sizeof *r->nodes);
    if (!r->nodes)
        return -1;
    for (int g = 0; g < c->n_graphs; g++) {
        struct fp16_graph *gr = &c->graphs[g];
        for (int i = 0; i < gr->n_nodes; i++) {
            int mode = gr->mode[i];
            if (mode == FP16_MODE_NONE)
                continue;
            struct mq_fp16_node *e = &r->nodes[r->n_nodes];
            const Onnx__NodeProto *node = gr->nodes[i];
            const struct mq_node_choice *choice = mq_fp16_selection_find(&c->sel, node);
            e->name = strdup(choice ? choice->name : mq_str(node->name));
            e->op_type = strdup(mq_str(node->op_type));
            e->graph = strdup(gr->path);
            if (!e->name || !e->op_type || !e->graph) {
                free(e->name);
                free(e->op_type);
                free(e->graph);
                return -1;
            }
            r->n_nodes++;
            switch (mode) {
            case FP16_MODE_CONVERT:
                e->status = MQ_FP16_CONVERTED;
                e->in_float16 = 1;
                break;
            case FP16_MODE_FOLLOW:
                e->status = MQ_FP16_FOLLOWED;
                e->in_float16 = gr->follow16[i];
                break;
            case FP16_MODE_CAST:
            case FP16_MODE_CONST:
                e->status = gr->follow16[i] ? MQ_FP16_CONVERTED : MQ_FP16_FOLLOWED;
                e->in_float16 = gr->follow16[i];
                break;
            default:
                e->status = MQ_FP16_KEPT;
                e->reason = gr->reason[i];
                gr->reason[i] = NULL;
                break;
            }
        }
    }
    return 0;
}

void mq_fp16_options_default(struct mq_fp16_options *o)
{
    memset(o, 0, sizeof *o);
    o->keep_io_types = 1;
    o->ops = MQ_FP16_OPS_ORT_CPU;
}

void mq_fp16_result_free(struct mq_fp16_result *r)
{
    for (int i = 0; i < r->n_nodes; i++) {
        free(r->nodes[i].name);
        free(r->nodes[i].op_type);
        free(r->nodes[i].graph);
        free(r->nodes[i].reason);
    }
    free(r->nodes);
    for (int i = 0; i < r->n_ranges; i++) {
        free(r->ranges[i].name);
        free(r->ranges[i].graph);
        free(r->ranges[i].what);
    }
    free(r->ranges);
    memset(r, 0, sizeof *r);
}

static void conv_free(struct fp16_conv *c)
{
    for (int g = 0; g < c->n_graphs; g++) {
        struct fp16_graph *gr = &c->graphs[g];
        for (int i = 0; gr->reason && i < gr->n_nodes; i++)
            free(gr->reason[i]);
        free(gr->reason);
        free(gr->path);
        free(gr->nodes);
        free(gr->mode);
        free(gr->follow16);
    }
    free(c->graphs);
    mq_fp16_selection_free(&c->sel);
    mq_strmap_free(c->types);
    mq_strmap_free(c->storage);
    mq_strmap_free(c->unsafe);
    mq_strmap_free(c->must32);
    mq_strmap_free(c->observed);
    mq_names_free(&c->names);
}

int mq_fp16_convert(Onnx__ModelProto *model, const struct mq_fp16_options *options,
                    struct mq_fp16_result *result, struct mq_error *err)
{
    memset(result, 0, sizeof *result);
    if (!model->graph)
        return mq_error_set(err, "the model has no graph");
    int opset = mq_model_proto_opset(model, "");
    if (opset < 1)
        return mq_error_set(err, "the model imports no ai.onnx opset");
    struct fp16_conv c;
    memset(&c, 0, sizeof c);
    c.model = model;
    c.o = options;
    c.r = result;
    c.err = err;
    c.opset = opset;
    c.types = mq_strmap_new();
    c.storage = mq_strmap_new();
    c.unsafe = mq_strmap_new();
    c.must32 = mq_strmap_new();
    c.observed = mq_strmap_new();
    int rc = !c.types || !c.storage || !c.unsafe || !c.must32 || !c.observed ? fp16_oom(&c)
                                                                             : MQ_OK;
    for (int i = 0; rc == MQ_OK && i < options->n_out_of_range; i++)
        if (mq_strmap_put(c.observed, options->out_of_range[i], i) ||
            mq_strmap_put(c.unsafe, options->out_of_range[i], 1))
            rc = fp16_oom(&c);
    if (rc == MQ_OK)
        rc = mq_names_collect(model, &c.names, err);
    if (rc == MQ_OK)
        rc = mq_fp16_select(model, options, &c.sel, err);
    if (rc == MQ_OK)
        rc = mq_fp16_decide(&c);
    /* Activations beyond range that the model holds, for the report. */
    for (int i = 0; rc == MQ_OK && i < options->n_out_of_range; i++)
        if (fp16_get(c.types, options->out_of_range[i]) &&
            mq_fp16_add_range(&c, options->out_of_range[i], "", "activation",
                              options->out_of_range_max[i]))
            rc = fp16_oom(&c);
    if (rc == MQ_OK)
        rc = mq_fp16_rewrite(&c);
    if (rc == MQ_OK && collect_result(&c))
        rc = fp16_oom(&c);
    conv_free(&c);
    if (rc)
        mq_fp16_result_free(result);
    return rc;
}
