/*
 * Depthwise Convs widened with zero channels (see depthwise_pad.h).
 *
 * onnxruntime runs an int8 depthwise Conv in its indirect symmetric kernel
 * only when the channel count is a multiple of 16 (on x86; 8 on ARM64);
 * other counts take a generic per-channel loop about three times slower per
 * value: fastestdet's 24-channel 3x3 depthwise Convs at 44 x 44 take 0.084 ms
 * each, widened to 32 channels 0.054 ms; torchvision's shufflenet_v2 has 58-,
 * 116- and 232-channel ones (int8 0.043 ms at 116 x 28 x 28, against 0.018 ms
 * for the float model's, which onnxruntime pads to 128 itself).  In a
 * MobileNet or ShuffleNet block the depthwise Conv sits between two group-1
 * Convs: the first one gets zero output channels (its output there is 0, and
 * Relu or Clip keep it 0), the depthwise Conv zero weights for them, the next
 * Conv zero input weights, so the outputs are the same and only the three
 * weights grow.  Runs after equalization, which measured and scaled the
 * channels as they were: in the prepare step, or after calibration when the
 * calibration pass measures the equalization (quant/equalize_fold.h; the
 * tensors widened then were calibrated without their zero channels, which
 * changes nothing the quantizer uses: every quantized range includes 0).
 */
#include "quant/depthwise_pad.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "graph/edit.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/graph.h"
#include "quant/op_rules.h"

/* At most this many consumers of one depthwise Conv are widened with it. */
#define MAX_CONSUMERS 8

/* Node indices reading `name` as any input, up to cap; the count (may exceed cap). */
static int readers(const Onnx__GraphProto *g, const char *name, size_t *out, int cap)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (g->node[i]->input[k] && strcmp(g->node[i]->input[k], name) == 0) {
                if (n < cap)
                    out[n] = i;
                n++;
            }
    return n;
}

static int producer(const Onnx__GraphProto *g, const char *name, size_t *index)
{
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if (g->node[i]->output[k] && strcmp(g->node[i]->output[k], name) == 0) {
                *index = i;
                return 1;
            }
    return 0;
}

/* The only reader of a node's single output (not a graph output); 0 when not one. */
static int only_reader(const Onnx__GraphProto *g, const Onnx__NodeProto *n, size_t *reader)
{
    return n->n_output == 1 && n->output[0] && !mq_graph_is_output(g, n->output[0]) &&
           readers(g, n->output[0], reader, 1) == 1;
}

/* Whether a float initializer of `name` exists that only one node input reads; its slot. */
static int own_float(const Onnx__GraphProto *g, const char *name, size_t *slot)
{
    size_t r;
    Onnx__TensorProto *t = mq_graph_initializer_named(g, name, slot);
    return t && t->has_data_type && t->data_type == MQ_DTYPE_FLOAT && !t->n_external_data &&
           !(t->has_data_location && t->data_location) && readers(g, name, &r, 1) == 1 &&
           !mq_graph_is_output(g, name);
}

/* A scalar float initializer's value, for the Clip bounds. */
static int constant_scalar(const void *user, const char *name, float *out)
{
    const Onnx__GraphProto *g = user;
    size_t slot;
    const Onnx__TensorProto *t = mq_graph_initializer_named(g, name, &slot);
    struct mq_tensor v;
    struct mq_error ignored;
    if (!t || mq_tensor_from_proto(t, name, &v, &ignored) != MQ_OK)
        return 0;
    int ok = v.dtype == MQ_DTYPE_FLOAT && v.count == 1;
    if (ok)
        *out = ((const float *)v.data)[0];
    mq_tensor_free(&v);
    return ok;
}

/* Whether node n is an activation that maps 0 to 0 (Relu, a Clip whose bounds hold 0). */
static int keeps_zero(const Onnx__GraphProto *g, int opset, const Onnx__NodeProto *n)
{
    const struct mq_op_rule *r = mq_node_is_onnx(n) ? mq_op_rule_find(n->op_type) : NULL;
    if (!r || r->role != MQ_ROLE_ACTIVATION || !r->clamp_bounds || n->n_output != 1)
        return 0;
    struct mq_op_query q = {opset, constant_scalar, g};
    float lo, hi;
    return r->clamp_bounds(&q, n, &lo, &hi) && lo <= 0.0f && hi >= 0.0f;
}

/* A group-1 Conv with a float weight [M, C, k...] and optional bias of its own. */
static int own_conv(const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    size_t slot;
    return mq_node_is_op(n, "Conv") && mq_node_attr_int(n, "group", 1) == 1 && mq_graph_input_at(n, 0) &&
           own_float(g, mq_graph_input_at(n, 1), &slot) &&
           (!mq_graph_input_at(n, 2) || own_float(g, mq_graph_input_at(n, 2), &slot));
}

/*
 * The weight or bias at `slot` with axis `axis` (0 or 1) grown to `len`, the
 * new entries zero; 0, or an error code.
 */
static int grow(Onnx__GraphProto *g, size_t slot, int axis, int64_t len, struct mq_error *err)
{
    struct mq_tensor t, out;
    const char *name = g->initializer[slot]->name;
    int rc = mq_tensor_from_proto(g->initializer[slot], name, &t, err);
    if (rc)
        return rc;
    if (t.rank <= axis || t.dims[axis] > len) {
        mq_tensor_free(&t);
        return mq_error_set(err, "'%s': no axis %d to widen", name, axis);
    }
    int64_t dims[MQ_MAX_RANK];
    memcpy(dims, t.dims, sizeof dims);
    dims[axis] = len;
    rc = mq_tensor_alloc(&out, MQ_DTYPE_FLOAT, t.rank, dims, name, err);
    if (rc) {
        mq_tensor_free(&t);
        return rc;
    }
    int64_t outer = axis == 0 ? 1 : t.dims[0];
    int64_t inner = t.count / (outer * (t.dims[axis] > 0 ? t.dims[axis] : 1));
    const float *src = t.data;
    float *dst = out.data; /* zeroed by the allocation */
    for (int64_t o = 0; t.dims[axis] > 0 && o < outer; o++)
        memcpy(dst + o * len * inner, src + o * t.dims[axis] * inner,
               (size_t)(t.dims[axis] * inner) * sizeof *dst);
    Onnx__TensorProto *proto;
    rc = mq_tensor_to_proto(&out, name, &proto, err);
    mq_tensor_free(&t);
    mq_tensor_free(&out);
    if (rc)
        return rc;
    onnx__tensor_proto__free_unpacked(g->initializer[slot], NULL);
    g->initializer[slot] = proto;
    return MQ_OK;
}

static int grow_named(Onnx__GraphProto *g, const char *name, int axis, int64_t len,
                      struct mq_error *err)
{
    size_t slot;
    if (!name)
        return MQ_OK;
    if (!mq_graph_initializer_named(g, name, &slot))
        return mq_error_set(err, "'%s' is no initializer", name);
    return grow(g, slot, axis, len, err);
}

/* The channel count of a depthwise Conv with a weight [G, 1, k...] of its own; 0 otherwise. */
static int64_t depthwise_channels(const Onnx__GraphProto *g, const Onnx__NodeProto *n)
{
    size_t slot;
    int64_t group = mq_node_attr_int(n, "group", 1);
    const Onnx__TensorProto *w = own_float(g, mq_graph_input_at(n, 1), &slot) ? g->initializer[slot]
                                                                      : NULL;
    if (!mq_node_is_op(n, "Conv") || group <= 1 || !w || w->n_dims < 3 || w->dims[0] != group ||
        w->dims[1] != 1 || !mq_graph_input_at(n, 0) ||
        (mq_graph_input_at(n, 2) && !own_float(g, mq_graph_input_at(n, 2), &slot)))
        return 0;
    return group;
}

/* Whether initializer `name` has rank >= `rank` and `len` entries along `axis` (absent: yes). */
static int has_dim(const Onnx__GraphProto *g, const char *name, size_t rank, int axis, int64_t len)
{
    size_t slot;
    const Onnx__TensorProto *t = name ? mq_graph_initializer_named(g, name, &slot) : NULL;
    return !name || (t && t->n_dims >= rank && t->dims[axis] == len);
}

/* Where the pattern holds around depthwise Conv d: its producer Conv and its consumer Convs. */
static int plan(const Onnx__GraphProto *g, int opset, size_t d, size_t *prod, size_t *cons,
                int *n_cons)
{
    const Onnx__NodeProto *dw = g->node[d];
    size_t p, r;
    if (!producer(g, dw->input[0], &p) || !only_reader(g, g->node[p], &r) || r != d)
        return 0;
    if (keeps_zero(g, opset, g->node[p])) { /* Conv -> activation -> depthwise */
        if (!mq_graph_input_at(g->node[p], 0) || !producer(g, g->node[p]->input[0], &p) ||
            !only_reader(g, g->node[p], &r))
            return 0;
    }
    int64_t channels = mq_node_attr_int(dw, "group", 1);
    if (!own_conv(g, g->node[p]) || !has_dim(g, mq_graph_input_at(g->node[p], 1), 3, 0, channels) ||
        !has_dim(g, mq_graph_input_at(g->node[p], 2), 1, 0, channels) ||
        !has_dim(g, mq_graph_input_at(dw, 2), 1, 0, channels))
        return 0;
    *prod = p;
    const char *out = dw->n_output == 1 ? dw->output[0] : NULL;
    size_t after[MAX_CONSUMERS];
    int n = out && !mq_graph_is_output(g, out) ? readers(g, out, after, MAX_CONSUMERS) : 0;
    if (n == 1 && keeps_zero(g, opset, g->node[after[0]])) { /* depthwise -> activation */
        const Onnx__NodeProto *a = g->node[after[0]];
        out = a->output[0];
        n = !mq_graph_is_output(g, out) ? readers(g, out, after, MAX_CONSUMERS) : 0;
    }
    if (n < 1 || n > MAX_CONSUMERS)
        return 0;
    for (int k = 0; k < n; k++) {
        const Onnx__NodeProto *c = g->node[after[k]];
        if (!own_conv(g, c) || strcmp(c->input[0], out) != 0 ||
            !has_dim(g, mq_graph_input_at(c, 1), 3, 1, channels))
            return 0;
        for (size_t i = 1; i < c->n_input; i++) /* read once, as its data */
            if (c->input[i] && strcmp(c->input[i], out) == 0)
                return 0;
        cons[k] = after[k];
    }
    *n_cons = n;
    return 1;
}

static int has_subgraphs(const Onnx__GraphProto *g)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (mq_node_has_subgraph(g->node[i]))
            return 1;
    return 0;
}

int mq_pad_depthwise_channels(Onnx__ModelProto *model, int *n_padded, struct mq_error *err)
{
    *n_padded = 0;
    Onnx__GraphProto *g = model->graph;
    const struct mq_op_rule *rule = mq_op_rule_find("Conv");
    int align = rule ? rule->fast_depthwise_channel_align : 0;
    if (!g || align <= 1 || has_subgraphs(g))
        return MQ_OK;
    int opset = mq_model_proto_opset(model, "");
    for (size_t d = 0; d < g->n_node; d++) {
        Onnx__NodeProto *dw = g->node[d];
        int64_t channels = depthwise_channels(g, dw);
        size_t prod, cons[MAX_CONSUMERS];
        int n_cons = 0;
        if (channels <= 0 || channels % align == 0 || !plan(g, opset, d, &prod, cons, &n_cons))
            continue;
        int64_t wide = (channels + align - 1) / align * align;
        const Onnx__NodeProto *p = g->node[prod];
        int rc = grow_named(g, mq_graph_input_at(p, 1), 0, wide, err);
        if (!rc)
            rc = grow_named(g, mq_graph_input_at(p, 2), 0, wide, err);
        if (!rc)
            rc = grow_named(g, mq_graph_input_at(dw, 1), 0, wide, err);
        if (!rc)
            rc = grow_named(g, mq_graph_input_at(dw, 2), 0, wide, err);
        for (int k = 0; !rc && k < n_cons; k++)
            rc = grow_named(g, mq_graph_input_at(g->node[cons[k]], 1), 1, wide, err);
        Onnx__AttributeProto *group = NULL;
        for (size_t i = 0; !rc && i < dw->n_attribute; i++)
            if (dw->attribute[i]->name && strcmp(dw->attribute[i]->name, "group") == 0)
                group = dw->attribute[i];
        if (rc)
            return rc;
        group->i = wide; /* there: depthwise_channels read a group > 1 */
        /* value_info of the widened tensors would now lie: drop what names them */
        char *stale[4] = {p->output[0], dw->input[0], dw->output[0], NULL};
        int n_stale = 3;
        size_t a;
        if (readers(g, dw->output[0], &a, 1) == 1 && keeps_zero(g, opset, g->node[a]))
            stale[n_stale++] = g->node[a]->output[0];
        mq_graph_drop_value_infos(g, stale, n_stale);
        (*n_padded)++;
    }
    return MQ_OK;
}
