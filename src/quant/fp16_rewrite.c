/*
 * The float16 conversion's rewrite, graph by graph after the decision
 * (fp16_decide.c): which values are stored in float16, the Casts between
 * float16 and float32 values (one per tensor and target type per graph,
 * `{t}_CastToFloat16` writing `{t}_float16`, `{t}_CastToFloat` writing
 * `{t}_float32`), graph outputs cast back to their declared type (float32
 * with keep_io_types), Constant values and initializers narrowed to float16,
 * and the value types updated.
 */
#include <stdlib.h>
#include <string.h>

#include "model/tensor_proto.h"
#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"
#include "quant/fp16_ops.h"
#include "quant/fp16_state.h"

static void set_value_info_type(Onnx__ValueInfoProto *vi, int type)
{
    if (vi && vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        vi->type->tensor_type) {
        vi->type->tensor_type->elem_type = type;
        vi->type->tensor_type->has_elem_type = 1;
    }
}

/* The float32 values of a TensorProto as float16, in place; returns -1 on failure. */
static int narrow_tensor_proto(struct fp16_conv *c, Onnx__TensorProto *p, const char *name)
{
    struct mq_tensor t = {0};
    if (mq_tensor_from_proto(p, name, &t, c->err))
        return -1;
    uint8_t *bytes = malloc(t.count ? (size_t)t.count * 2 : 1);
    if (!bytes) {
        mq_tensor_free(&t);
        return fp16_oom(c);
    }
    int64_t flushed = 0;
    mq_fp16_max_abs(&t, &flushed);
    c->r->values_flushed_to_zero += flushed;
    const float *v = t.data;
    for (int64_t i = 0; i < t.count; i++) {
        uint16_t h = mq_float_to_half(v[i]);
        bytes[2 * i] = (uint8_t)(h & 0xff);
        bytes[2 * i + 1] = (uint8_t)(h >> 8);
    }
    size_t len = (size_t)t.count * 2;
    mq_tensor_free(&t);
    free(p->raw_data.data);
    p->raw_data.data = bytes;
    p->raw_data.len = len;
    p->has_raw_data = 1;
    free(p->float_data);
    p->float_data = NULL;
    p->n_float_data = 0;
    p->data_type = MQ_DTYPE_FLOAT16;
    p->has_data_type = 1;
    return 0;
}

struct rewrite {
    struct fp16_conv *c;
    struct fp16_graph *gr;
    Onnx__GraphProto *g;
    struct mq_strmap *casts;   /* "name\x01type" -> index into cast_names */
    char **cast_names;
    int n_casts, cap_casts;
    Onnx__NodeProto **out;     /* the new node list */
    size_t n_out, cap_out;
    Onnx__NodeProto ***after;  /* Casts to emit after decided node i */
    int *n_after;
};

static int emit(struct rewrite *w, Onnx__NodeProto *node)
{
    if (w->n_out == w->cap_out) {
        size_t cap = w->cap_out ? w->cap_out * 2 : 64;
        Onnx__NodeProto **v = realloc(w->out, cap * sizeof *v);
        if (!v)
            return -1;
        w->out = v;
        w->cap_out = cap;
    }
    w->out[w->n_out++] = node;
    return 0;
}

static Onnx__NodeProto *make_cast(struct fp16_conv *c, const char *in, const char *out,
                                  const char *name, int to)
{
    Onnx__NodeProto *n = mq_graph_new_unary_node("Cast", name, in, out);
    if (n && mq_graph_add_int_attr(n, "to", to)) {
        onnx__node_proto__free_unpacked(n, NULL);
        n = NULL;
    }
    if (n)
        c->r->casts_inserted++;
    return n;
}

static char *cast_key(const char *name, int to)
{
    return mq_str_printf("%s\x01%d", name, to);
}

/* Registers that `name` converted to `to` is available as `as`. */
static int note_cast(struct rewrite *w, const char *name, int to, const char *as)
{
    char *key = cast_key(name, to), *copy = strdup(as);
    int rc = -1;
    if (key && copy) {
        if (w->n_casts == w->cap_casts) {
            int cap = w->cap_casts ? w->cap_casts * 2 : 16;
            char **v = realloc(w->cast_names, (size_t)cap * sizeof *v);
            if (!v)
                goto out;
            w->cast_names = v;
            w->cap_casts = cap;
        }
        w->cast_names[w->n_casts] = copy;
        if (mq_strmap_put(w->casts, key, w->n_casts) == 0) {
            w->n_casts++;
            copy = NULL;
            rc = 0;
        }
    }
out:
    free(key);
    free(copy);
    return rc;
}

/* The name holding `name` as type `to`, creating a Cast (emitted now) when there is none. */
static const char *cast_to(struct rewrite *w, const char *name, int to)
{
    struct fp16_conv *c = w->c;
    char *key = cast_key(name, to);
    if (!key)
        return NULL;
    int k = mq_strmap_get(w->casts, key);
    free(key);
    if (k >= 0)
        return w->cast_names[k];
    const char *suffix = to == MQ_DTYPE_FLOAT16 ? "float16" : "float32";
    const char *node_suffix = to == MQ_DTYPE_FLOAT16 ? "CastToFloat16" : "CastToFloat";
    char *out_base = mq_str_printf("%s_%s", name, suffix),
         *node_base = mq_str_printf("%s_%s", name, node_suffix);
    char *out = out_base ? mq_names_fresh(&c->names, out_base) : NULL;
    char *node_name = node_base ? mq_names_fresh(&c->names, node_base) : NULL;
    free(out_base);
    free(node_base);
    Onnx__NodeProto *cast = out && node_name ? make_cast(c, name, out, node_name, to) : NULL;
    const char *result = NULL;
    if (cast && emit(w, cast) == 0) {
        cast = NULL;
        if (note_cast(w, name, to, out) == 0 && fp16_set(c->storage, out, to) == 0 &&
            fp16_set(c->types, out, fp16_type_of(c, name)) == 0)
            result = w->cast_names[w->n_casts - 1];
    }
    if (cast)
        onnx__node_proto__free_unpacked(cast, NULL);
    free(out);
    free(node_name);
    return result;
}

/* What each value of the graph becomes, in node order. */
static int decide_storage(struct rewrite *w)
{
    struct fp16_conv *c = w->c;
    struct fp16_graph *gr = w->gr;
    Onnx__GraphProto *g = w->g;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const char *name = mq_str(g->initializer[i]->name);
        if (fp16_type_of(c, name) == MQ_DTYPE_FLOAT && !fp16_get(c->must32, name) &&
            !fp16_get(c->unsafe, name) && fp16_set(c->storage, name, MQ_DTYPE_FLOAT16))
            return -1;
    }
    for (size_t i = 0; gr->is_main && !c->o->keep_io_types && i < g->n_input; i++) {
        const char *name = mq_str(g->input[i]->name);
        int is_init = 0;
        for (size_t k = 0; k < g->n_initializer && !is_init; k++)
            is_init = strcmp(mq_str(g->initializer[k]->name), name) == 0;
        if (!is_init && fp16_type_of(c, name) == MQ_DTYPE_FLOAT &&
            fp16_set(c->storage, name, MQ_DTYPE_FLOAT16))
            return -1;
    }
    for (int i = 0; i < gr->n_nodes; i++) {
        Onnx__NodeProto *node = gr->nodes[i];
        const struct mq_fp16_op *spec = mq_fp16_op_find(mq_str(node->op_type));
        int to16 = 0;
        switch (gr->mode[i]) {
        case FP16_MODE_CONVERT:
            to16 = 1;
            break;
        case FP16_MODE_FOLLOW: {
            int any = 0, all16 = 1;
            for (size_t k = 0; k < node->n_input; k++) {
                const char *in = mq_graph_input_at(node, k);
                if (!in || !mq_fp16_slot_in(spec->data_inputs, k) ||
                    !fp16_is_float(fp16_type_of(c, in)))
                    continue;
                any = 1;
                all16 &= fp16_storage_of(c, in) == MQ_DTYPE_FLOAT16;
            }
            to16 = gr->follow16[i] = any && all16;
            break;
        }
        case FP16_MODE_CAST: {
            const char *out = node->n_output ? node->output[0] : NULL;
            to16 = c->o->ops == MQ_FP16_OPS_ALL &&
                   mq_node_attr_int(node, "to", 0) == MQ_DTYPE_FLOAT && out &&
                   !fp16_get(c->must32, out) && !fp16_get(c->unsafe, out);
            gr->follow16[i] = to16;
            if (to16 && out && fp16_set(c->storage, out, MQ_DTYPE_FLOAT16))
                return -1;
            continue;
        }
        case FP16_MODE_CONST: {
            const char *out = node->n_output ? node->output[0] : NULL;
            to16 = out && fp16_type_of(c, out) == MQ_DTYPE_FLOAT && !fp16_get(c->must32, out) &&
                   !fp16_get(c->unsafe, out);
            gr->follow16[i] = to16;
            if (to16 && fp16_set(c->storage, out, MQ_DTYPE_FLOAT16))
                return -1;
            continue;
        }
        default:
            continue;
        }
        for (size_t o = 0; to16 && o < node->n_output; o++) {
            const char *out = node->output[o];
            if (out && *out && mq_fp16_slot_in(spec->t_outputs, o) &&
                fp16_type_of(c, out) == MQ_DTYPE_FLOAT &&
                fp16_set(c->storage, out, MQ_DTYPE_FLOAT16))
                return -1;
        }
    }
    return 0;
}

static int decided_index(const struct fp16_graph *gr, const char *output)
{
    for (int i = 0; i < gr->n_nodes; i++)
        for (size_t o = 0; o < gr->nodes[i]->n_output; o++)
            if (gr->nodes[i]->output[o] && strcmp(gr->nodes[i]->output[o], output) == 0)
                return i;
    return -1;
}

static int place_after(struct rewrite *w, int i, Onnx__NodeProto *node)
{
    Onnx__NodeProto **v = realloc(w->after[i], (size_t)(w->n_after[i] + 1) * sizeof *v);
    if (!v)
        return -1;
    v[w->n_after[i]++] = node;
    w->after[i] = v;
    return 0;
}

/* Graph outputs whose value changed type get a Cast back to the declared one. */
static int fix_outputs(struct rewrite *w)
{
    struct fp16_conv *c = w->c;
    struct fp16_graph *gr = w->gr;
    Onnx__GraphProto *g = w->g;
    for (size_t o = 0; o < g->n_output; o++) {
        Onnx__ValueInfoProto *vi = g->output[o];
        const char *t = mq_str(vi->name);
        int orig = fp16_type_of(c, t), st = fp16_storage_of(c, t);
        if (!fp16_is_float(st) || !fp16_is_float(orig))
            continue;
        int want = fp16_value_info_type(vi);
        if (!want)
            want = orig;
        if (gr->is_main)
            want = c->o->keep_io_types || want != MQ_DTYPE_FLOAT ? want : MQ_DTYPE_FLOAT16;
        if (want == st)
            continue;
        int p = decided_index(gr, t);
        if (p >= 0) {
            char *base = mq_str_printf("%s_%s", t, st == MQ_DTYPE_FLOAT16 ? "float16" : "float32");
            char *fresh = base ? mq_names_fresh(&c->names, base) : NULL;
            char *cast_name_base = mq_str_printf(
                "%s_%s", t, want == MQ_DTYPE_FLOAT16 ? "CastToFloat16" : "CastToFloat");
            char *cast_name = cast_name_base ? mq_names_fresh(&c->names, cast_name_base) : NULL;
            free(base);
            free(cast_name_base);
            int rc = !fresh || !cast_name;
            Onnx__NodeProto *prod = gr->nodes[p];
            for (size_t k = 0; !rc && k < prod->n_output; k++)
                if (prod->output[k] && strcmp(prod->output[k], t) == 0)
                    rc = mq_str_replace(&prod->output[k], fresh);
            if (!rc)
                rc = mq_graph_rename_reads(g, t, fresh);
            Onnx__NodeProto *cast = !rc ? make_cast(c, fresh, t, cast_name, want) : NULL;
            if (!rc && (!cast || place_after(w, p, cast))) {
                if (cast)
                    onnx__node_proto__free_unpacked(cast, NULL);
                rc = -1;
            }
            if (!rc)
                rc = fp16_set(c->storage, fresh, st) || fp16_set(c->types, fresh, orig) ||
                     fp16_set(c->storage, t, want) || note_cast(w, fresh, want, t);
            free(fresh);
            free(cast_name);
            if (rc)
                return -1;
        } else if (!gr->is_main) {
            /* An input or outer value returned as it is: cast it at the start. */
            const char *as = cast_to(w, t, want);
            if (!as)
                return -1;
            /* cast_to emitted the Cast into the new list: keep it first. */
            if (mq_str_replace(&vi->name, as))
                return -1;
        } else {
            set_value_info_type(vi, st);
        }
    }
    return 0;
}

static int convert_constant(struct fp16_conv *c, Onnx__NodeProto *node)
{
    const char *op = mq_str(node->op_type);
    const char *out = node->n_output ? mq_str(node->output[0]) : "";
    for (size_t a = 0; a < node->n_attribute; a++) {
        Onnx__AttributeProto *attr = node->attribute[a];
        const char *name = mq_str(attr->name);
        if (strcmp(name, "value") == 0 && attr->t) {
            if (attr->t->data_type == MQ_DTYPE_FLOAT && narrow_tensor_proto(c, attr->t, out))
                return -1;
            c->r->constants_converted++;
            return 0;
        }
        if (strcmp(name, "value_float") == 0 || strcmp(name, "value_floats") == 0) {
            int scalar = strcmp(name, "value_float") == 0;
            size_t n = scalar ? 1 : attr->n_floats;
            Onnx__TensorProto *t = malloc(sizeof *t);
            if (!t)
                return fp16_oom(c);
            onnx__tensor_proto__init(t);
            t->data_type = MQ_DTYPE_FLOAT16;
            t->has_data_type = 1;
            t->has_raw_data = 1;
            t->raw_data.len = n * 2;
            t->raw_data.data = malloc(n ? n * 2 : 1);
            if (!scalar) {
                t->dims = malloc(sizeof *t->dims);
                if (t->dims) {
                    t->dims[0] = (int64_t)n;
                    t->n_dims = 1;
                }
            }
            if (!t->raw_data.data || (!scalar && !t->dims)) {
                onnx__tensor_proto__free_unpacked(t, NULL);
                return fp16_oom(c);
            }
            for (size_t k = 0; k < n; k++) {
                uint16_t h = mq_float_to_half(scalar ? attr->f : attr->floats[k]);
                t->raw_data.data[2 * k] = (uint8_t)(h & 0xff);
                t->raw_data.data[2 * k + 1] = (uint8_t)(h >> 8);
            }
            free(attr->floats);
            attr->floats = NULL;
            attr->n_floats = 0;
            attr->has_f = 0;
            if (mq_str_replace(&attr->name, "value")) {
                onnx__tensor_proto__free_unpacked(t, NULL);
                return fp16_oom(c);
            }
            attr->t = t;
            attr->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
            attr->has_type = 1;
            c->r->constants_converted++;
            return 0;
        }
    }
    if (strcmp(op, "ConstantOfShape") == 0) {
        /* No value: float32 zero by default. */
        Onnx__AttributeProto *attr = malloc(sizeof *attr);
        Onnx__TensorProto *t = malloc(sizeof *t);
        Onnx__AttributeProto **v = realloc(node->attribute,
                                           (node->n_attribute + 1) * sizeof *v);
        if (v)
            node->attribute = v;
        if (!attr || !t || !v) {
            free(attr);
            free(t);
            return fp16_oom(c);
        }
        onnx__attribute_proto__init(attr);
        onnx__tensor_proto__init(t);
        attr->name = strdup("value");
        attr->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        attr->has_type = 1;
        attr->t = t;
        t->data_type = MQ_DTYPE_FLOAT16;
        t->has_data_type = 1;
        t->dims = malloc(sizeof *t->dims);
        t->raw_data.data = calloc(2, 1);
        t->raw_data.len = 2;
        t->has_raw_data = 1;
        node->attribute[node->n_attribute++] = attr;
        if (!attr->name || !t->dims || !t->raw_data.data)
            return fp16_oom(c);
        t->dims[0] = 1;
        t->n_dims = 1;
        c->r->constants_converted++;
    }
    return 0;
}

static int set_cast_to(Onnx__NodeProto *node, int to)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        if (strcmp(mq_str(node->attribute[a]->name), "to") == 0) {
            node->attribute[a]->i = to;
            node->attribute[a]->has_i = 1;
            return 0;
        }
    return -1;
}

/* The type input k of decided node i must arrive in; 0 when any will do. */
static int required_type(const struct fp16_conv *c, const struct fp16_graph *gr, int i, size_t k,
                         const char *in)
{
    const Onnx__NodeProto *node = gr->nodes[i];
    int orig = fp16_type_of(c, in);
    if (!fp16_is_float(orig))
        return 0;
    const struct mq_fp16_op *spec = mq_fp16_op_find(mq_str(node->op_type));
    switch (gr->mode[i]) {
    case FP16_MODE_CONVERT:
        return mq_fp16_slot_in(spec->data_inputs, k) ? MQ_DTYPE_FLOAT16 : orig;
    case FP16_MODE_FOLLOW:
        if (!mq_fp16_slot_in(spec->data_inputs, k))
            return orig;
        return gr->follow16[i] ? MQ_DTYPE_FLOAT16 : MQ_DTYPE_FLOAT;
    case FP16_MODE_CAST:
        return 0;
    default:
        return orig;
    }
}

static int rewrite_nodes(struct rewrite *w)
{
    struct fp16_conv *c = w->c;
    struct fp16_graph *gr = w->gr;
    for (int i = 0; i < gr->n_nodes; i++) {
        Onnx__NodeProto *node = gr->nodes[i];
        for (size_t k = 0; k < node->n_input; k++) {
            const char *in = mq_graph_input_at(node, k);
            if (!in)
                continue;
            int want = required_type(c, gr, i, k, in);
            int have = fp16_storage_of(c, in);
            if (!want || !fp16_is_float(have) || want == have)
                continue;
            const char *as = cast_to(w, in, want);
            if (!as || mq_str_replace(&node->input[k], as))
                return fp16_oom(c);
        }
        if (gr->mode[i] == FP16_MODE_CAST && gr->follow16[i] && set_cast_to(node, MQ_DTYPE_FLOAT16))
            return mq_error_set(c->err, "node '%s' (Cast) has no 'to' attribute",
                                mq_str(node->name));
        if (gr->mode[i] == FP16_MODE_CONST && gr->follow16[i] && convert_constant(c, node))
            return MQ_ERR;
        if (emit(w, node))
            return fp16_oom(c);
        for (int a = 0; a < w->n_after[i]; a++)
            if (emit(w, w->after[i][a]))
                return fp16_oom(c);
        w->n_after[i] = 0;
    }
    return MQ_OK;
}

static int finish_graph(struct rewrite *w)
{
    struct fp16_conv *c = w->c;
    struct fp16_graph *gr = w->gr;
    Onnx__GraphProto *g = w->g;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        const char *name = mq_str(t->name);
        if (!t->has_data_type || t->data_type != MQ_DTYPE_FLOAT)
            continue;
        uint64_t before = onnx__tensor_proto__get_packed_size(t);
        c->r->weight_bytes_before += before;
        if (fp16_storage_of(c, name) == MQ_DTYPE_FLOAT16) {
            if (narrow_tensor_proto(c, t, name))
                return MQ_ERR;
            c->r->initializers_converted++;
        } else {
            c->r->initializers_kept++;
        }
        c->r->weight_bytes_after += onnx__tensor_proto__get_packed_size(t);
    }
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = mq_str(g->input[i]->name);
        if (fp16_value_info_type(g->input[i]) == MQ_DTYPE_FLOAT &&
            fp16_storage_of(c, name) == MQ_DTYPE_FLOAT16)
            set_value_info_type(g->input[i], MQ_DTYPE_FLOAT16);
    }
    for (size_t o = 0; gr->is_main && !c->o->keep_io_types && o < g->n_output; o++)
        if (fp16_value_info_type(g->output[o]) == MQ_DTYPE_FLOAT &&
            fp16_storage_of(c, mq_str(g->output[o]->name)) == MQ_DTYPE_FLOAT16)
            set_value_info_type(g->output[o], MQ_DTYPE_FLOAT16);
    for (size_t i = 0; i < g->n_value_info; i++) {
        Onnx__ValueInfoProto *vi = g->value_info[i];
        if (fp16_value_info_type(vi) == MQ_DTYPE_FLOAT &&
            fp16_storage_of(c, mq_str(vi->name)) == MQ_DTYPE_FLOAT16)
            set_value_info_type(vi, MQ_DTYPE_FLOAT16);
    }
    return MQ_OK;
}

static struct fp16_graph *find_grec(struct fp16_conv *c, const Onnx__GraphProto *g)
{
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graphs[i].g == g)
            return &c->graphs[i];
    return NULL;
}

static int rewrite_graph(struct fp16_conv *c, struct fp16_graph *gr, int depth);

static int rewrite_subgraphs(struct fp16_conv *c, struct fp16_graph *gr, int depth)
{
    for (int i = 0; i < gr->n_nodes; i++) {
        Onnx__NodeProto *node = gr->nodes[i];
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            size_t n = (attr->g ? 1 : 0) + attr->n_graphs;
            for (size_t s = 0; s < n; s++) {
                Onnx__GraphProto *sub = attr->g && s == 0 ? attr->g
                                                          : attr->graphs[s - (attr->g ? 1 : 0)];
                struct fp16_graph *sr = find_grec(c, sub);
                int rc = sr ? rewrite_graph(c, sr, depth + 1) : MQ_OK;
                if (rc)
                    return rc;
            }
        }
    }
    return MQ_OK;
}

static int rewrite_graph(struct fp16_conv *c, struct fp16_graph *gr, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(c->err, "subgraphs nested deeper than %d", MQ_MAX_SUBGRAPH_DEPTH);
    struct rewrite w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.gr = gr;
    w.g = gr->g;
    size_t n = gr->n_nodes ? (size_t)gr->n_nodes : 1;
    w.casts = mq_strmap_new();
    w.after = calloc(n, sizeof *w.after);
    w.n_after = calloc(n, sizeof *w.n_after);
    int rc = !w.casts || !w.after || !w.n_after ? fp16_oom(c) : MQ_OK;
    if (rc == MQ_OK && decide_storage(&w))
        rc = fp16_oom(c);
    if (rc == MQ_OK && fix_outputs(&w))
        rc = fp16_oom(c);
    if (rc == MQ_OK)
        rc = rewrite_nodes(&w);
    if (rc == MQ_OK) {
        /* The graph now owns every node of the new list. */
        free(w.g->node);
        w.g->node = w.out;
        w.g->n_node = w.n_out;
        w.out = NULL;
        rc = finish_graph(&w);
    }
    if (w.out) {
        /* Failed midway: the old list still owns the decided nodes; free only the new Casts. */
        for (size_t i = 0; i < w.n_out; i++) {
            int decided = 0;
            for (int k = 0; k < gr->n_nodes && !decided; k++)
                decided = w.out[i] == gr->nodes[k];
            for (int k = 0; k < gr->n_nodes && !decided; k++)
                for (int a = 0; a < w.n_after[k] && !decided; a++)
                    decided = w.out[i] == w.after[k][a];
            if (!decided)
                onnx__node_proto__free_unpacked(w.out[i], NULL);
        }
        free(w.out);
    }
    for (size_t i = 0; w.after && i < n; i++) {
        for (int a = 0; a < w.n_after[i]; a++)
            onnx__node_proto__free_unpacked(w.after[i][a], NULL);
        free(w.after[i]);
    }
    free(w.after);
    free(w.n_after);
    for (int i = 0; i < w.n_casts; i++)
        free(w.cast_names[i]);
    free(w.cast_names);
    mq_strmap_free(w.casts);
    if (rc == MQ_OK)
        rc = rewrite_subgraphs(c, gr, depth);
    return rc;
}

int mq_fp16_rewrite(struct fp16_conv *c)
{
    return c->n_graphs > 0 ? rewrite_graph(c, &c->graphs[0], 0) : MQ_OK;
}
