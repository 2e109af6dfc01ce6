/*
 * Planning: for each selected node, from its row of the op table
 * (op_rules.h), which tensors get quantized and how (activation, weight
 * with its per-channel axis, constant, or sharing its input's scale), and
 * which biases become int32.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "core/limits.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/params.h"
#include "quant/qdq_internal.h"
#include "util/strutil.h"

/*
 * Marks a tensor for quantization on behalf of node `node`.  The first mark
 * of a tensor decides how it is quantized; later ones share it.  A tensor
 * that cannot be quantized gets a failed mark with the reason.
 */
int mq_qdq_mark_tensor(struct graph_ctx *gc, int node, const char *name, enum mark_kind kind,
                       int axis, const char *share_from)
{
    struct model_ctx *m = gc->m;
    if (!name || !*name)
        return 0;
    /* Whether the reader's fusion needs the zero-point input (op_rules.h). */
    const struct mq_op_rule *reader = mq_op_rule_find(mq_str(gc->g->node[node]->op_type));
    int needs_zp = !(reader && reader->weight_zero_point_optional);
    int k = mq_strmap_get(gc->mark_of, name);
    if (k >= 0) {
        gc->marks[k].keep_zp |= needs_zp;
        return mq_qdq_intvec_push(&gc->node_marks[node], k) ? mq_qdq_oom(m) : 0;
    }
    if (gc->n_marks == gc->cap_marks) {
        int cap = gc->cap_marks ? gc->cap_marks * 2 : 32;
        struct mark *v = realloc(gc->marks, (size_t)cap * sizeof *v);
        if (!v)
            return mq_qdq_oom(m);
        gc->marks = v;
        gc->cap_marks = cap;
    }
    struct mark *mk = &gc->marks[gc->n_marks];
    memset(mk, 0, sizeof *mk);
    mk->axis = -1;
    mk->name = strdup(name);
    if (!mk->name)
        return mq_qdq_oom(m);
    const char *why = NULL;
    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, name);
    if (init) {
        if (kind == MK_ACTIVATION)
            kind = MK_CONSTANT;
        if (kind == MK_SHARED)
            why = "a constant cannot share another tensor's scale";
        else if (!init->has_data_type || init->data_type != MQ_DTYPE_FLOAT)
            why = init->has_data_type && mq_dtype_is_float(init->data_type)
                      ? "only float32 constants are quantized"
                      : "not a float constant";
        else if (init->n_external_data || (init->has_data_location && init->data_location))
            why = "its data is external and was not loaded";
        if (kind == MK_WEIGHT)
            mk->axis = axis;
    } else {
        if (kind == MK_WEIGHT)
            kind = MK_ACTIVATION; /* a weight computed at run time is an activation */
        int type = mq_graph_elem_type(&gc->idx, name);
        float lo, hi;
        const char *no_range;
        /* A shared scale or a HardSigmoid's codes (hardsigmoid_codes.c): no range of its own. */
        if (type == 0 && kind != MK_SHARED && kind != MK_CODES &&
            !mq_qdq_get_range(m, name, &lo, &hi, &no_range))
            why = "its type cannot be inferred and calibration never observed it";
        else if (type != 0 && type != MQ_DTYPE_FLOAT)
            why = mq_dtype_is_float(type) ? "only float32 tensors are quantized"
                                          : "not a float tensor";
        if (why && type) {
            mk->reason = mq_str_printf("%s (%s)", why, mq_dtype_name(type));
            if (!mk->reason)
                return mq_qdq_oom(m);
        }
    }
    mk->kind = kind;
    mk->keep_zp = needs_zp;
    if (share_from && !(mk->share_from = strdup(share_from)))
        return mq_qdq_oom(m);
    if (why) {
        mk->state = MS_FAILED;
        if (!mk->reason && !(mk->reason = strdup(why)))
            return mq_qdq_oom(m);
    }
    if (mq_strmap_put(gc->mark_of, name, gc->n_marks))
        return mq_qdq_oom(m);
    gc->n_marks++;
    return mq_qdq_intvec_push(&gc->node_marks[node], gc->n_marks - 1) ? mq_qdq_oom(m) : 0;
}

int mq_qdq_note_node(struct graph_ctx *gc, int node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mq_str_vprintf(fmt, ap);
    va_end(ap);
    if (!msg)
        return mq_qdq_oom(gc->m);
    char *old = gc->node_notes[node];
    if (old) {
        char *joined = mq_str_printf("%s; %s", old, msg);
        free(msg);
        if (!joined)
            return mq_qdq_oom(gc->m);
        msg = joined;
        free(old);
    }
    gc->node_notes[node] = msg;
    return 0;
}


static int add_bias_job(struct graph_ctx *gc, int i, const char *bias, const char *input,
                        const char *weight, float beta)
{
    struct model_ctx *m = gc->m;
    if (gc->n_jobs == gc->cap_jobs) {
        int cap = gc->cap_jobs ? gc->cap_jobs * 2 : 16;
        struct bias_job *v = realloc(gc->jobs, (size_t)cap * sizeof *v);
        if (!v)
            return mq_qdq_oom(m);
        gc->jobs = v;
        gc->cap_jobs = cap;
    }
    struct bias_job *j = &gc->jobs[gc->n_jobs];
    memset(j, 0, sizeof *j);
    j->node = i;
    j->beta = beta;
    j->expect_len = -1;
    j->bias = strdup(bias);
    j->input = strdup(input);
    j->weight = strdup(weight);
    if (!j->bias || !j->input || !j->weight)
        return mq_qdq_oom(m);
    gc->n_jobs++;
    return mq_qdq_intvec_push(&gc->node_jobs[i], gc->n_jobs - 1) ? mq_qdq_oom(m) : 0;
}

/*
 * Whether a node still selected (islands pruned) reads `name` as an input its rule quantizes:
 * only then does a weighted node with a float-output kernel quantize its output.
 */
static int read_quantized(const struct graph_ctx *gc, const char *name)
{
    const struct mq_tensor_info *t = name && *name ? mq_graph_tensor(&gc->idx, name) : NULL;
    for (int k = 0; t && k < t->n_consumers; k++) {
        const Onnx__NodeProto *reader = gc->g->node[t->consumers[k].node];
        if (!t->consumers[k].implicit && mq_qdq_is_selected(gc->m->sel, reader) &&
            mq_qdq_reads_quantized(reader, name))
            return 1;
    }
    return 0;
}

/* Whether `name` is a constant of the graph (an initializer here or in an enclosing graph). */
static int is_constant(const struct graph_ctx *gc, const char *name)
{
    return name && *name && mq_graph_find_initializer(&gc->idx, name) != NULL;
}

/* Whether every input of the main graph declares every dimension as a number. */
static int inputs_fully_static(const Onnx__ModelProto *model)
{
    const Onnx__GraphProto *g = model ? model->graph : NULL;
    for (size_t i = 0; g && i < g->n_input; i++) {
        const Onnx__TypeProto *t = g->input[i]->type;
        if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type->shape)
            return 0;
        const Onnx__TensorShapeProto *shape = t->tensor_type->shape;
        for (size_t d = 0; d < shape->n_dim; d++)
            if (shape->dim[d]->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                return 0;
    }
    return g != NULL;
}

/*
 * Whether onnxruntime may turn the node and an Add of a constant that reads its output into a
 * float Gemm (MatMulAddFusion), which no QDQ rule of its makes integer: the output then stays
 * quantized, so the MatMul runs as QLinearMatMul.  It fuses a MatMul whose input has rank 2,
 * and one of higher rank (between two Reshapes to rank 2) when its shape inference knows that
 * input's shape in numbers: taken here as every graph input declaring fixed dimensions
 * (torchvision's convnext_tiny: 22 of 36 MatMuls became float Gemms).  Guessing a fusion that
 * does not come costs a QuantizeLinear/DequantizeLinear pair; missing one, an integer MatMul.
 */
static int may_become_float_gemm(const struct graph_ctx *gc, const Onnx__NodeProto *node)
{
    const struct mq_tensor_info *t = mq_graph_tensor(&gc->idx, node->output[0]);
    int bias_add = 0;
    for (int k = 0; t && k < t->n_consumers && !bias_add; k++) {
        const Onnx__NodeProto *reader = gc->g->node[t->consumers[k].node];
        bias_add = !t->consumers[k].implicit && mq_node_is_op(reader, "Add") &&
                   reader->n_input == 2 &&
                   (is_constant(gc, reader->input[0]) || is_constant(gc, reader->input[1]));
    }
    if (!bias_add || strcmp(mq_str(node->op_type), "MatMul") != 0)
        return bias_add;
    const struct mq_opset_hints *shapes = gc->m->o->shapes;
    int64_t dims[MQ_MAX_RANK];
    int rank = shapes && shapes->shape_of ? shapes->shape_of(shapes->user, node->input[0], dims)
                                          : -1;
    return rank < 3 || inputs_fully_static(gc->m->model);
}

static int has_matmul(const Onnx__GraphProto *g, int depth)
{
    for (size_t n = 0; g && depth <= MQ_MAX_SUBGRAPH_DEPTH && n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        if (mq_node_is_op(node, "MatMul"))
            return 1;
        for (size_t a = 0; a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (has_matmul(attr->g, depth + 1))
                return 1;
            for (size_t k = 0; k < attr->n_graphs; k++)
                if (has_matmul(attr->graphs[k], depth + 1))
                    return 1;
        }
    }
    return 0;
}

int mq_qdq_wants_shapes(const Onnx__ModelProto *model)
{
    return model && has_matmul(model->graph, 0);
}

/*
 * A weighted node: its data inputs, its weight (per channel along the axis
 * its rule gives), its bias (an int32 job), its output.
 */
static int plan_weighted(struct graph_ctx *gc, int i, Onnx__NodeProto *node,
                         const struct mq_op_rule *r)
{
    const struct mq_quant_options *o = gc->m->o;
    const char *x = mq_graph_input_at(node, 0), *w = mq_graph_input_at(node, (size_t)r->weight_input);
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    if (!x || !w) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "it lacks its data or weight input");
        return 0;
    }
    int rc = 0;
    for (size_t k = 0; !rc && k < (size_t)r->n_data_inputs; k++) {
        const char *name = mq_graph_input_at(node, k);
        int weight_like = r->constant_data_is_weight && name &&
                          mq_graph_find_initializer(&gc->idx, name);
        rc = mq_qdq_mark_tensor(gc, i, name, weight_like ? MK_WEIGHT : MK_ACTIVATION, -1, NULL);
    }
    if (rc)
        return rc;
    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, w);
    int rank = init ? (int)init->n_dims : 0;
    int axis = init && o->per_channel ? mq_op_rule_weight_axis(r, node, rank) : -1;
    rc = mq_qdq_mark_tensor(gc, i, w, MK_WEIGHT, axis, NULL);
    if (rc)
        return rc;
    const char *b = r->bias_input >= 0 ? mq_graph_input_at(node, (size_t)r->bias_input) : NULL;
    if (b && !mq_graph_find_initializer(&gc->idx, b)) {
        rc = mq_qdq_note_node(gc, i, "bias '%s' is not a constant: it stays float", b);
    } else if (b) {
        float beta = r->bias_scale_attr ? mq_node_attr_float(node, r->bias_scale_attr, 1.0f)
                                        : 1.0f;
        rc = add_bias_job(gc, i, b, x, w, beta);
        if (!rc && init) {
            struct bias_job *j = &gc->jobs[gc->n_jobs - 1];
            mq_op_rule_bias_layout(r, node, rank, init->dims, &j->expect_len, &j->channel_mod);
        }
    }
    if (rc)
        return rc;
    if (o->quantize_outputs && node->n_output > 0 &&
        (!r->float_output || read_quantized(gc, node->output[0]) ||
         may_become_float_gemm(gc, node)))
        return mq_qdq_mark_tensor(gc, i, node->output[0], MK_ACTIVATION, -1, NULL);
    return 0;
}

/* A compute node: every data input and its output, each with its own scale. */
static int plan_compute(struct graph_ctx *gc, int i, Onnx__NodeProto *node,
                        const struct mq_op_rule *r)
{
    size_t n_data = mq_op_rule_quantized_inputs(r, node);
    for (size_t k = 0; k < n_data; k++) {
        int rc = mq_qdq_mark_tensor(gc, i, mq_graph_input_at(node, k), MK_ACTIVATION, -1, NULL);
        if (rc)
            return rc;
    }
    if (gc->m->o->quantize_outputs && node->n_output > 0)
        return mq_qdq_mark_tensor(gc, i, node->output[0], MK_ACTIVATION, -1, NULL);
    return 0;
}

static int plan_activation(struct graph_ctx *gc, int i, Onnx__NodeProto *node)
{
    const char *in = mq_graph_input_at(node, 0);
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    if (!in || !mq_qdq_is_quantized(gc, in)) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "its input%s%s%s is not quantized, so it stays float",
                      in ? " '" : "", in ? in : "", in ? "'" : "");
        return 0;
    }
    int folded;
    int rc = mq_qdq_try_fold(gc, i, &folded);
    if (rc || folded)
        return rc;
    rc = mq_qdq_mark_tensor(gc, i, in, MK_ACTIVATION, -1, NULL);
    if (!rc && gc->m->o->quantize_outputs && node->n_output > 0)
        rc = mq_qdq_mark_tensor(gc, i, node->output[0], MK_ACTIVATION, -1, NULL);
    return rc;
}

/* A data-movement node: its outputs reuse its input's scale. */
static int plan_shared(struct graph_ctx *gc, int i, Onnx__NodeProto *node,
                       const struct mq_op_rule *r)
{
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    const char *in = mq_graph_input_at(node, 0);
    const char *blocker = NULL;
    struct mq_op_query q;
    mq_qdq_op_query(gc, &q);
    if (!gc->m->o->quantize_outputs)
        blocker = "this profile quantizes op inputs only";
    else
        blocker = mq_op_rule_blocker(r, &q, node);
    if (blocker) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "%s", blocker);
        return 0;
    }
    const struct mark *src = in ? mq_qdq_find_mark(gc, in) : NULL;
    if (!src || src->state == MS_FAILED) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "its input%s%s%s is not quantized, so there is no "
                      "scale to share", in ? " '" : "", in ? in : "", in ? "'" : "");
        return 0;
    }
    if (src->kind == MK_WEIGHT && src->axis >= 0) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "its input '%s' is quantized per channel", in);
        return 0;
    }
    size_t n_out = mq_op_rule_quantized_outputs(r, node);
    /* The input belongs to the node's unit too: its status follows the input's fate. */
    int rc = mq_qdq_mark_tensor(gc, i, in, MK_ACTIVATION, -1, NULL);
    for (size_t o = 0; !rc && o < n_out; o++)
        rc = mq_qdq_mark_tensor(gc, i, node->output[o], MK_SHARED, -1, in);
    return rc;
}

int mq_qdq_plan_node(struct graph_ctx *gc, int i)
{
    Onnx__NodeProto *node = gc->g->node[i];
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    if (!c || c->status != MQ_NODE_SELECTED)
        return 0;
    const struct mq_op_rule *r = mq_op_rule_find(mq_str(node->op_type));
    switch (mq_op_rule_node_role(r, node)) {
    case MQ_ROLE_WEIGHTED:
        return plan_weighted(gc, i, node, r);
    case MQ_ROLE_COMPUTE:
        return plan_compute(gc, i, node, r);
    case MQ_ROLE_ACTIVATION:
        return plan_activation(gc, i, node);
    case MQ_ROLE_SHARED:
        return plan_shared(gc, i, node, r);
    case MQ_ROLE_CODES:
        return mq_qdq_plan_codes(gc, i, r);
    case MQ_ROLE_NONE:
        break;
    }
    mq_choice_set(c, MQ_NODE_SKIPPED, "op type %s is not quantized", mq_str(node->op_type));
    return 0;
}


