/*
 * Dequantize's restoring of the activations the quantizer folded: a Relu or
 * Clip whose clamping the Q/DQ pair after the op before it does was dropped
 * from the quantized model.  The quantizer's record (MQ_FOLDED_ACTIVATIONS_KEY
 * in the model's metadata) says where; without it, a Relu is put back
 * wherever a pair clamps at exactly zero after an op that can go negative.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/dequantize_state.h"
#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"

/* ------------------------------------------------------ the fold record */

void mq_dequantize_record_free(struct model_ctx *m)
{
    for (int i = 0; i < m->n_folds; i++) {
        free(m->fold_v[i].op_type);
        free(m->fold_v[i].node);
    }
    free(m->fold_v);
    mq_strmap_free(m->folds);
}

static int parse_bound(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end == s || *end ? -1 : 0;
}

/*
 * Reads the record of folded activations and removes it from the model (the
 * dequantized model has its activations back).  Lines of
 * "tensor<TAB>op_type<TAB>node<TAB>min<TAB>max".
 */
int mq_dequantize_read_record(struct model_ctx *m)
{
    Onnx__ModelProto *model = m->model;
    for (size_t i = 0; i < model->n_metadata_props; i++) {
        Onnx__StringStringEntryProto *e = model->metadata_props[i];
        if (strcmp(mq_str(e->key), MQ_FOLDED_ACTIVATIONS_KEY) != 0)
            continue;
        char *text = strdup(mq_str(e->value));
        if (!text || !(m->folds = mq_strmap_new())) {
            free(text);
            return dequantize_oom(m);
        }
        int rc = MQ_OK, line_no = 0;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line && rc == MQ_OK;
             line = strtok_r(NULL, "\n", &save)) {
            line_no++;
            char *field[5];
            int nf = 0;
            for (char *p = line; nf < 5; nf++) {
                field[nf] = p;
                char *tab = strchr(p, '\t');
                if (!tab) {
                    nf++;
                    break;
                }
                *tab = '\0';
                p = tab + 1;
            }
            struct fold f = {0};
            if (nf != 5 || (strcmp(field[1], "Relu") != 0 && strcmp(field[1], "Clip") != 0) ||
                parse_bound(field[3], &f.min) || parse_bound(field[4], &f.max) || !*field[0]) {
                rc = mq_error_set(m->err, "metadata '%s', line %d: expected tensor, Relu or Clip, "
                                  "node, min and max separated by tabs", MQ_FOLDED_ACTIVATIONS_KEY,
                                  line_no);
                break;
            }
            struct fold *v = realloc(m->fold_v, (size_t)(m->n_folds + 1) * sizeof *v);
            if (!v) {
                rc = dequantize_oom(m);
                break;
            }
            m->fold_v = v;
            f.op_type = strdup(field[1]);
            f.node = strdup(field[2]);
            v[m->n_folds++] = f;
            if (!f.op_type || !f.node || mq_strmap_put(m->folds, field[0], m->n_folds - 1))
                rc = dequantize_oom(m);
        }
        free(text);
        if (rc)
            return rc;
        onnx__string_string_entry_proto__free_unpacked(e, NULL);
        memmove(&model->metadata_props[i], &model->metadata_props[i + 1],
                (model->n_metadata_props - i - 1) * sizeof *model->metadata_props);
        model->n_metadata_props--;
        return MQ_OK;
    }
    return MQ_OK;
}

/* ---------------------------------------------- putting them back */

/* Smallest value of a quantized type (8-bit unsigned when unknown, as QuantizeLinear's default). */
static int64_t qmin_of(int dtype)
{
    switch (dtype) {
    case MQ_DTYPE_INT8: return -128;
    case MQ_DTYPE_INT16: return -32768;
    case MQ_DTYPE_INT4: return -8;
    case MQ_DTYPE_INT32: return INT32_MIN;
    default: return 0;
    }
}

/*
 * Whether the pair clamps at exactly zero from below: then it may stand for a
 * Relu the quantizer folded into the op before it.
 */
static int clamps_at_zero(const struct graph_ctx *gc, const Onnx__NodeProto *q)
{
    const char *sn = mq_graph_input_at(q, 1), *zn = mq_graph_input_at(q, 2);
    Onnx__TensorProto *sp = sn ? mq_dequantize_find_initializer(gc, sn) : NULL;
    if (!sp || mq_tensor_proto_count(sp) != 1)
        return 0;
    if (!zn)
        return 1; /* uint8 with zero point 0 */
    Onnx__TensorProto *zp = mq_dequantize_find_initializer(gc, zn);
    if (!zp || mq_tensor_proto_count(zp) != 1)
        return 0;
    struct mq_tensor z = {0};
    struct mq_error ignored;
    if (mq_dequantize_decode_ints(zp, zn, &z, &ignored))
        return 0;
    int at_min = ((const int32_t *)z.data)[0] == qmin_of(zp->data_type);
    mq_tensor_free(&z);
    return at_min;
}

/* Ops after which the quantizer folds a Relu or Clip into the Q/DQ pair, and that can go negative.
 */
static int folds_activation(const Onnx__NodeProto *node)
{
    static const char *const ops[] = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add",
                                      "Sub", "Mul", "BatchNormalization"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (mq_node_is_op(node, ops[k]))
            return 1;
    return 0;
}

static Onnx__NodeProto *make_node_n(const char *op, const char *name, const char *const *inputs,
                                    int n_inputs, const char *output)
{
    Onnx__NodeProto *n = mq_graph_new_unary_node(op, name, inputs[0], output);
    if (!n || n_inputs == 1)
        return n;
    char **v = realloc(n->input, (size_t)n_inputs * sizeof *v);
    if (!v) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    n->input = v;
    for (int k = 1; k < n_inputs; k++) {
        if (!(n->input[k] = strdup(inputs[k]))) {
            onnx__node_proto__free_unpacked(n, NULL);
            return NULL;
        }
        n->n_input++;
    }
    return n;
}

/* A scalar float initializer in g under a fresh name based on `base`; the name, malloc'd. */
static char *add_scalar(struct graph_ctx *gc, const char *base, float value)
{
    char *name = mq_names_fresh(&gc->m->names, base);
    struct mq_tensor t = {0};
    Onnx__TensorProto *p = NULL;
    struct mq_error ignored;
    if (!name || mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 0, NULL, name, &ignored))
        goto fail;
    *(float *)t.data = value;
    if (mq_tensor_to_proto(&t, name, &p, &ignored) ||
        mq_graph_append_ptr((void ***)&gc->g->initializer, &gc->g->n_initializer, p))
        goto fail;
    mq_tensor_free(&t);
    return name;
fail:
    if (p)
        onnx__tensor_proto__free_unpacked(p, NULL);
    mq_tensor_free(&t);
    free(name);
    return NULL;
}

/*
 * Puts back the activation the quantizer folded into the pair of t: the
 * producer writes t_<op>_input and the activation writes t.  Without a fold
 * record it is a Relu (the pair clamps at zero).
 */
static int restore_activation(struct graph_ctx *gc, int producer, const char *t,
                              const struct fold *f)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *prod = gc->g->node[producer];
    const char *op = f ? f->op_type : "Relu";
    char *mid = NULL, *name = NULL, *base = NULL, *lo = NULL, *hi = NULL;
    Onnx__NodeProto *act = NULL;
    int rc = MQ_OK;
    size_t n = strlen(t) + strlen(op) + 16;
    if (!(base = malloc(n)))
        goto oom;
    snprintf(base, n, "%s_%s_input", t, op);
    if (!(mid = mq_names_fresh(&m->names, base)))
        goto oom;
    if (f && *f->node && mq_strmap_get(m->live, f->node) < 0 &&
        mq_names_add(&m->names, f->node) == 0)
        name = strdup(f->node);
    else {
        snprintf(base, n, "%s_%s", t, op);
        name = mq_names_fresh(&m->names, base);
    }
    if (!name)
        goto oom;
    if (strcmp(op, "Clip") != 0) {
        act = mq_graph_new_unary_node(op, name, mid, t);
    } else if (mq_model_proto_opset(m->model, "") >= 11) {
        /* Bounds as inputs; an absent one is an empty name (trailing ones dropped). */
        snprintf(base, n, "%s_min", name);
        if (isfinite(f->min) && !(lo = add_scalar(gc, base, (float)f->min)))
            goto oom;
        snprintf(base, n, "%s_max", name);
        if (isfinite(f->max) && !(hi = add_scalar(gc, base, (float)f->max)))
            goto oom;
        const char *inputs[3] = {mid, lo ? lo : "", hi ? hi : ""};
        act = make_node_n(op, name, inputs, hi ? 3 : lo ? 2 : 1, t);
    } else {
        act = mq_graph_new_unary_node(op, name, mid, t);
        if (act && ((isfinite(f->min) && mq_graph_add_float_attr(act, "min", (float)f->min)) ||
                    (isfinite(f->max) && mq_graph_add_float_attr(act, "max", (float)f->max)))) {
            onnx__node_proto__free_unpacked(act, NULL);
            act = NULL;
        }
    }
    if (!act)
        goto oom;
    for (size_t o = 0; o < prod->n_output; o++)
        if (prod->output[o] && strcmp(prod->output[o], t) == 0 &&
            mq_str_replace(&prod->output[o], mid))
            goto oom;
    if (mq_dequantize_place_after(gc, producer, act))
        goto oom;
    act = NULL;
    if (mq_strmap_put(gc->producer, mid, producer))
        goto oom;
    m->r->activations_restored++;
    if (!f)
        m->r->restored_by_guess++;
    goto done;
oom:
    rc = dequantize_oom(m);
done:
    if (act)
        onnx__node_proto__free_unpacked(act, NULL);
    free(mid);
    free(name);
    free(base);
    free(lo);
    free(hi);
    return rc;
}

int mq_dequantize_restore_activation(struct graph_ctx *gc, int producer,
                                     const Onnx__NodeProto *q, const char *t)
{
    struct model_ctx *m = gc->m;
    int fk = m->folds ? mq_strmap_get(m->folds, t) : -1;
    int restore = m->folds ? fk >= 0
                           : folds_activation(gc->g->node[producer]) && clamps_at_zero(gc, q);
    return restore ? restore_activation(gc, producer, t, fk >= 0 ? &m->fold_v[fk] : NULL) : MQ_OK;
}
