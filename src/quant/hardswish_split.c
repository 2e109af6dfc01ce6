/*
 * HardSwish written out in ops onnxruntime runs in int8, before selection and
 * calibration (like the BatchNormalization fold, so both see the graph that
 * gets quantized).
 *
 * onnxruntime's CPU provider has no integer HardSwish: between two int8 Convs
 * it dequantizes, runs HardSwish as a float HardSigmoid and Mul, and
 * quantizes again, four passes over a float tensor (paddleocr_det: about a
 * sixth of its int8 run time, where FP32 fuses HardSwish into the Conv).
 * Written as
 *     u = Clip(x + 3, 0, 6)      QLinearAdd, the Clip folded into its range
 *     v = x * u                  QLinearMul
 *     y = v * (1/6)              QLinearMul by a constant (exact in 8 bits)
 * it stays in the integer island.  Only a HardSwish whose input comes out of
 * an op that starts an island (a Conv) and that the graph does not return is
 * split: elsewhere the float HardSwish is faster.
 *
 * The other form (--hardswish-codes) is the op's own definition,
 * `Mul(x, HardSigmoid(x, 1/6, 1/2))`, which is what onnxruntime runs anyway: the quantizer
 * then writes the HardSigmoid as a Clip of x's codes (hardsigmoid_codes.c), no rounding
 * added, and the Mul fuses into QLinearMul.
 */
#include "quant/hardswish_split.h"

#include <stdlib.h>
#include <string.h>

#include "graph/edit.h"
#include "core/tensor.h"
#include "model/model.h"
#include "quant/graph.h"
#include "quant/op_rules.h"
#include "util/strutil.h"

struct split_ctx {
    Onnx__GraphProto *g;
    struct mq_names names;
    /* The scalar constants, added once per graph on first use. */
    char *c3, *c0, *c6, *c_sixth;
    int as_hardsigmoid;         /* Mul(x, HardSigmoid(x)) instead of Add, Clip, Mul, Mul */
    int n_split;
    struct mq_error *err;
};

static int oom(struct split_ctx *sc)
{
    return mq_error_code(sc->err, MQ_ERR_MEMORY, "out of memory while splitting HardSwish");
}

static char *scalar(struct split_ctx *sc, const char *base, float value)
{
    char *name = mq_names_fresh(&sc->names, base);
    if (!name)
        return NULL;
    Onnx__TensorProto *t = mq_graph_add_initializer(sc->g, name, MQ_DTYPE_FLOAT, 0, NULL);
    if (!t || !(t->raw_data.data = malloc(sizeof value))) {
        free(name);
        return NULL;
    }
    memcpy(t->raw_data.data, &value, sizeof value); /* little-endian hosts only, as elsewhere */
    t->raw_data.len = sizeof value;
    return name;
}

/* The node that writes `name` in this graph, -1 when none. */
static int producer_of(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t o = 0; o < g->node[i]->n_output; o++)
            if (g->node[i]->output[o] && strcmp(g->node[i]->output[o], name) == 0)
                return (int)i;
    return -1;
}

static int should_split(const Onnx__GraphProto *g, const Onnx__NodeProto *node)
{
    if (strcmp(mq_str(node->op_type), "HardSwish") != 0 || (node->domain && *node->domain) ||
        node->n_input != 1 || node->n_output != 1 || !node->input[0] || !*node->input[0] ||
        !node->output[0] || !*node->output[0] || mq_graph_is_output(g, node->output[0]))
        return 0;
    int p = producer_of(g, node->input[0]);
    if (p < 0)
        return 0;
    const struct mq_op_rule *r = mq_op_rule_find(mq_str(g->node[p]->op_type));
    return r && r->starts_island && !(g->node[p]->domain && *g->node[p]->domain);
}

/* The HardSigmoid and Mul that replace `node` (the op's definition), appended to *out. */
static int as_hardsigmoid(struct split_ctx *sc, const Onnx__NodeProto *node,
                          Onnx__NodeProto ***out, size_t *n_out)
{
    const char *x = node->input[0], *y = node->output[0];
    const char *base = node->name && *node->name ? node->name : y;
    char *u_base = mq_str_printf("%s_hardsigmoid", y);
    char *u = u_base ? mq_names_fresh(&sc->names, u_base) : NULL;
    char *names[2] = {mq_str_printf("%s_hardsigmoid", base), mq_str_printf("%s_mul", base)};
    char *fresh[2] = {0};
    for (int k = 0; k < 2; k++)
        fresh[k] = names[k] ? mq_names_fresh(&sc->names, names[k]) : NULL;
    Onnx__NodeProto *nodes[2] = {0};
    if (u && fresh[0] && fresh[1]) {
        const char *hs_in[1] = {x}, *mul_in[2] = {x, u};
        nodes[0] = mq_graph_new_node("HardSigmoid", fresh[0], hs_in, 1, u, -1);
        nodes[1] = mq_graph_new_node("Mul", fresh[1], mul_in, 2, y, -1);
    }
    int rc = !nodes[0] || !nodes[1] || mq_graph_add_float_attr(nodes[0], "alpha", 1.0f / 6.0f) ||
             mq_graph_add_float_attr(nodes[0], "beta", 0.5f);
    for (int k = 0; k < 2 && !rc; k++) {
        rc = mq_graph_append_ptr((void ***)out, n_out, nodes[k]);
        if (!rc)
            nodes[k] = NULL;
    }
    for (int k = 0; k < 2; k++) {
        if (nodes[k])
            onnx__node_proto__free_unpacked(nodes[k], NULL);
        free(names[k]);
        free(fresh[k]);
    }
    free(u_base), free(u);
    if (rc)
        return oom(sc);
    sc->n_split++;
    return 0;
}

/* The four nodes that replace `node`, appended to *out. */
static int split_one(struct split_ctx *sc, const Onnx__NodeProto *node, Onnx__NodeProto ***out,
                     size_t *n_out)
{
    if ((!sc->c3 && !(sc->c3 = scalar(sc, "hardswish_three", 3.0f))) ||
        (!sc->c0 && !(sc->c0 = scalar(sc, "hardswish_zero", 0.0f))) ||
        (!sc->c6 && !(sc->c6 = scalar(sc, "hardswish_six", 6.0f))) ||
        (!sc->c_sixth && !(sc->c_sixth = scalar(sc, "hardswish_sixth", 1.0f / 6.0f))))
        return oom(sc);
    const char *x = node->input[0], *y = node->output[0];
    const char *base = node->name && *node->name ? node->name : y;
    char *t_base = mq_str_printf("%s_plus3", y), *u_base = mq_str_printf("%s_relu6", y);
    char *v_base = mq_str_printf("%s_times6", y);
    char *t = t_base ? mq_names_fresh(&sc->names, t_base) : NULL;
    char *u = u_base ? mq_names_fresh(&sc->names, u_base) : NULL;
    char *v = v_base ? mq_names_fresh(&sc->names, v_base) : NULL;
    char *names[4] = {mq_str_printf("%s_add", base), mq_str_printf("%s_clip", base),
                      mq_str_printf("%s_mul", base), mq_str_printf("%s_scale", base)};
    char *fresh[4] = {0};
    int rc = 0;
    for (int k = 0; k < 4 && !rc; k++)
        rc = !names[k] || !(fresh[k] = mq_names_fresh(&sc->names, names[k]));
    Onnx__NodeProto *nodes[4] = {0};
    if (!rc && t && u && v) {
        const char *add_in[2] = {x, sc->c3}, *clip_in[3] = {t, sc->c0, sc->c6};
        const char *mul_in[2] = {x, u}, *scale_in[2] = {v, sc->c_sixth};
        nodes[0] = mq_graph_new_node("Add", fresh[0], add_in, 2, t, -1);
        nodes[1] = mq_graph_new_node("Clip", fresh[1], clip_in, 3, u, -1);
        nodes[2] = mq_graph_new_node("Mul", fresh[2], mul_in, 2, v, -1);
        nodes[3] = mq_graph_new_node("Mul", fresh[3], scale_in, 2, y, -1);
    }
    rc = !(t && u && v && nodes[0] && nodes[1] && nodes[2] && nodes[3]);
    for (int k = 0; k < 4 && !rc; k++) {
        rc = mq_graph_append_ptr((void ***)out, n_out, nodes[k]);
        if (!rc)
            nodes[k] = NULL;
    }
    for (int k = 0; k < 4; k++) {
        if (nodes[k])
            onnx__node_proto__free_unpacked(nodes[k], NULL);
        free(names[k]);
        free(fresh[k]);
    }
    free(t_base), free(u_base), free(v_base), free(t), free(u), free(v);
    if (rc)
        return oom(sc);
    sc->n_split++;
    return 0;
}

static int split_graph(struct split_ctx *sc)
{
    Onnx__GraphProto *g = sc->g;
    size_t n_want = 0;
    for (size_t i = 0; i < g->n_node; i++)
        n_want += should_split(g, g->node[i]);
    if (n_want == 0)
        return 0;
    Onnx__NodeProto **out = NULL;
    size_t n_out = 0;
    int rc = 0;
    char *split = calloc(g->n_node, 1);
    if (!split)
        return oom(sc);
    for (size_t i = 0; i < g->n_node && !rc; i++)
        split[i] = (char)should_split(g, g->node[i]);
    for (size_t i = 0; i < g->n_node && !rc; i++) {
        if (split[i])
            rc = sc->as_hardsigmoid ? as_hardsigmoid(sc, g->node[i], &out, &n_out)
                                    : split_one(sc, g->node[i], &out, &n_out);
        else if (mq_graph_append_ptr((void ***)&out, &n_out, g->node[i]))
            rc = oom(sc);
    }
    if (rc) {
        /* The original nodes are still the graph's; only the new ones go. */
        for (size_t k = 0, i = 0; k < n_out; k++) {
            while (i < g->n_node && out[k] != g->node[i])
                i++;
            if (i == g->n_node)
                onnx__node_proto__free_unpacked(out[k], NULL);
        }
        free(out);
        free(split);
        return rc;
    }
    for (size_t i = 0; i < g->n_node; i++)
        if (split[i])
            onnx__node_proto__free_unpacked(g->node[i], NULL);
    free(g->node);
    g->node = out;
    g->n_node = n_out;
    free(split);
    return 0;
}

static int split_model(Onnx__ModelProto *model, int as_hardsigmoid_form, int *n_split,
                       struct mq_error *err)
{
    *n_split = 0;
    if (!model->graph)
        return 0;
    struct split_ctx sc = {.g = model->graph, .as_hardsigmoid = as_hardsigmoid_form, .err = err};
    if (mq_names_collect(model, &sc.names, err))
        return MQ_ERR;
    int rc = split_graph(&sc);
    free(sc.c3), free(sc.c0), free(sc.c6), free(sc.c_sixth);
    mq_names_free(&sc.names);
    *n_split = sc.n_split;
    return rc;
}

int mq_split_hardswish(Onnx__ModelProto *model, int *n_split, struct mq_error *err)
{
    return split_model(model, 0, n_split, err);
}

int mq_hardswish_as_hardsigmoid(Onnx__ModelProto *model, int *n_written, struct mq_error *err)
{
    return split_model(model, 1, n_written, err);
}
