#define _GNU_SOURCE /* vasprintf */
#include "quant/qdq.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/tensor.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "quant/graph.h"
#include "quant/params.h"
#include "quant/sample_stats.h"

/* ------------------------------------------------------------- options */

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

/* ------------------------------------------------------------ utilities */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

struct intvec {
    int *v;
    int n, cap;
};

static int intvec_push(struct intvec *iv, int x)
{
    if (iv->n == iv->cap) {
        int cap = iv->cap ? iv->cap * 2 : 4;
        int *v = realloc(iv->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        iv->v = v;
        iv->cap = cap;
    }
    iv->v[iv->n++] = x;
    return 0;
}

struct nodevec {
    Onnx__NodeProto **v;
    int n, cap;
};

static int nodevec_push(struct nodevec *nv, Onnx__NodeProto *node)
{
    if (nv->n == nv->cap) {
        int cap = nv->cap ? nv->cap * 2 : 4;
        Onnx__NodeProto **v = realloc(nv->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        nv->v = v;
        nv->cap = cap;
    }
    nv->v[nv->n++] = node;
    return 0;
}

static void nodevec_free_all(struct nodevec *nv)
{
    for (int i = 0; i < nv->n; i++)
        onnx__node_proto__free_unpacked(nv->v[i], NULL);
    free(nv->v);
    memset(nv, 0, sizeof *nv);
}

/* Appends a pointer to a protobuf-c repeated field. */
static int append_ptr(void ***array, size_t *n, void *item)
{
    void **v = realloc(*array, (*n + 1) * sizeof *v);
    if (!v)
        return -1;
    v[*n] = item;
    *array = v;
    (*n)++;
    return 0;
}

static int replace_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* ------------------------------------------------- tensors and nodes */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Raw little-endian bytes of integer values of an ONNX type (4-bit packed two a byte). */
static int encode_ints(int dtype, const int32_t *q, int64_t n, ProtobufCBinaryData *out)
{
    size_t bytes;
    int width;
    switch (dtype) {
    case MQ_DTYPE_UINT4:
    case MQ_DTYPE_INT4:
        bytes = (size_t)(n + 1) / 2;
        width = 0;
        break;
    case MQ_DTYPE_UINT8:
    case MQ_DTYPE_INT8:
        bytes = (size_t)n;
        width = 1;
        break;
    case MQ_DTYPE_UINT16:
    case MQ_DTYPE_INT16:
        bytes = (size_t)n * 2;
        width = 2;
        break;
    default:
        bytes = (size_t)n * 4;
        width = 4;
        break;
    }
    uint8_t *p = calloc(bytes ? bytes : 1, 1);
    if (!p)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        if (width == 0)
            p[i / 2] |= (uint8_t)(((uint32_t)q[i] & 0xF) << (4 * (i & 1)));
        else
            put_le(p + (size_t)i * (size_t)width, (uint64_t)(uint32_t)q[i], width);
    }
    free(out->data);
    out->data = p;
    out->len = bytes;
    return 0;
}

static int encode_floats(const float *v, int64_t n, ProtobufCBinaryData *out)
{
    uint8_t *p = malloc(n ? (size_t)n * 4 : 1);
    if (!p)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        put_le(p + i * 4, bits, 4);
    }
    free(out->data);
    out->data = p;
    out->len = (size_t)n * 4;
    return 0;
}

/* A new initializer (no data yet) appended to the graph. */
static Onnx__TensorProto *add_initializer(Onnx__GraphProto *g, const char *name, int dtype,
                                          int rank, const int64_t *dims)
{
    Onnx__TensorProto *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    onnx__tensor_proto__init(t);
    t->name = strdup(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->has_raw_data = 1;
    t->n_dims = (size_t)rank;
    t->dims = rank ? malloc((size_t)rank * sizeof *t->dims) : NULL;
    if (!t->name || (rank && !t->dims) ||
        append_ptr((void ***)&g->initializer, &g->n_initializer, t)) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return NULL;
    }
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    return t;
}

static Onnx__NodeProto *make_node(const char *op, const char *name, const char *const *inputs,
                                  int n_inputs, const char *output, int axis)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = strdup(op);
    n->name = strdup(name);
    n->input = calloc((size_t)n_inputs, sizeof *n->input);
    n->output = calloc(1, sizeof *n->output);
    int ok = n->op_type && n->name && n->input && n->output;
    if (n->input)
        for (int i = 0; i < n_inputs; i++, n->n_input++)
            ok = ok && (n->input[i] = strdup(inputs[i])) != NULL;
    if (n->output) {
        n->n_output = 1;
        ok = ok && (n->output[0] = strdup(output)) != NULL;
    }
    if (ok && axis >= 0) {
        Onnx__AttributeProto *a = malloc(sizeof *a);
        if (a) {
            onnx__attribute_proto__init(a);
            a->name = strdup("axis");
            a->has_type = 1;
            a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            a->has_i = 1;
            a->i = axis;
        }
        ok = a && a->name && !append_ptr((void ***)&n->attribute, &n->n_attribute, a);
        if (a && !ok)
            onnx__attribute_proto__free_unpacked(a, NULL);
    }
    if (!ok) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    return n;
}

/* ----------------------------------------------------------- the context */

enum mark_kind { MK_ACTIVATION, MK_WEIGHT, MK_CONSTANT, MK_SHARED };
enum mark_state { MS_PENDING, MS_DONE, MS_FAILED };

/* A tensor some selected node wants quantized, and what became of it. */
struct mark {
    char *name;
    enum mark_kind kind;
    int axis;                   /* weights per channel: the axis; -1 per tensor */
    char *share_from;           /* MK_SHARED: the tensor whose scale it reuses */
    enum mark_state state;
    char *reason;               /* MS_FAILED: why it stays float */
    /* results */
    char *scale_name, *zp_name, *dq_name;
    int qtype;
    int symmetric;
    struct mq_qrange qr;
    int n_ch;
    float *scales;
    int32_t *zps;
    float *ch_lo, *ch_hi;       /* weights: each channel's range (for bias adjustments) */
    int has_range;
    float lo, hi;
    Onnx__TensorProto *q_init, *scale_init, *zp_init; /* weights and constants */
    Onnx__NodeProto *dq_node;   /* weights and constants: their DequantizeLinear */
    int keep_zp;                /* read by a node whose fusion needs the zero-point input */
    struct intvec adjusted;     /* channels enlarged for an int32 bias */
    char *note;
};

struct bias_job {
    int node;
    char *bias, *input, *weight;
    float beta;
    int expect_len;             /* bias elements per-channel weights require; -1 any */
    int channel_mod;            /* bias channel c uses weight channel c % channel_mod */
    enum mark_state state;
    char *reason;
    /* results */
    int n_ch;
    float *scales;
    float *values;              /* beta * bias, decoded */
    int64_t count;
    int rank;
    int64_t dims[MQ_MAX_RANK];
    char *scale_name, *zp_name, *dq_name, *q_name;
    int clamped;
    int corrected;              /* bias correction applied */
    double max_shift;           /* its largest change to a value */
};

struct cleanup_candidate {
    Onnx__GraphProto *graph;
    char *name;
};

struct model_ctx {
    Onnx__ModelProto *model;
    struct mq_selection *sel;
    const struct mq_ranges *ranges;
    const struct mq_quant_options *o;
    int opset;
    struct mq_names names;
    /* Ranges replaced before quantization (Softmax output, the input of a folded Relu). */
    struct mq_strmap *override_of;
    float (*overrides)[2];
    int n_overrides, cap_overrides;
    struct mq_quant_result *res;
    struct cleanup_candidate *cands;
    int n_cands, cap_cands;
    struct mq_strmap *cand_of;     /* "graph/name" of each candidate */
    struct mq_strmap *skipped_of;  /* "graph/name" of each skipped tensor reported */
    /* Folded nodes, freed last: until then no new node can take their address. */
    struct nodevec graveyard;
    struct mq_error *err;
};

struct graph_ctx {
    struct model_ctx *m;
    Onnx__GraphProto *g;
    const char *path;
    struct mq_graph_index idx;
    struct mark *marks;
    int n_marks, cap_marks;
    struct mq_strmap *mark_of;
    struct bias_job *jobs;
    int n_jobs, cap_jobs;
    int n_nodes;
    char *removed;
    struct intvec *node_marks;
    struct intvec *node_jobs;
    char **node_notes;          /* per node: something to add to its report line */
    struct nodevec prologue;
    struct nodevec *after;
    char **vanished;            /* names no longer in the graph (folded outputs) */
    int n_vanished;
};

static int oom(struct model_ctx *m)
{
    return mq_error_code(m->err, MQ_ERR_MEMORY, "out of memory while quantizing");
}

static int add_candidate(struct model_ctx *m, Onnx__GraphProto *g, const char *name)
{
    char *key = xasprintf("%p/%s", (void *)g, name);
    if (!key)
        return -1;
    int seen = mq_strmap_get(m->cand_of, key) >= 0;
    int rc = seen ? 0 : mq_strmap_put(m->cand_of, key, 1);
    free(key);
    if (seen || rc)
        return rc;
    if (m->n_cands == m->cap_cands) {
        int cap = m->cap_cands ? m->cap_cands * 2 : 16;
        struct cleanup_candidate *c = realloc(m->cands, (size_t)cap * sizeof *c);
        if (!c)
            return -1;
        m->cands = c;
        m->cap_cands = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -1;
    m->cands[m->n_cands++] = (struct cleanup_candidate){g, copy};
    return 0;
}

static int set_override(struct model_ctx *m, const char *name, float lo, float hi)
{
    int k = mq_strmap_get(m->override_of, name);
    if (k < 0) {
        if (m->n_overrides == m->cap_overrides) {
            int cap = m->cap_overrides ? m->cap_overrides * 2 : 16;
            float(*v)[2] = realloc(m->overrides, (size_t)cap * sizeof *v);
            if (!v)
                return -1;
            m->overrides = v;
            m->cap_overrides = cap;
        }
        k = m->n_overrides++;
        if (mq_strmap_put(m->override_of, name, k))
            return -1;
    }
    m->overrides[k][0] = lo;
    m->overrides[k][1] = hi;
    return 0;
}

/* The range to quantize a tensor with; 0 and a reason when there is none. */
static int get_range(const struct model_ctx *m, const char *name, float *lo, float *hi,
                     const char **why)
{
    int k = mq_strmap_get(m->override_of, name);
    if (k >= 0) {
        *lo = m->overrides[k][0];
        *hi = m->overrides[k][1];
        return 1;
    }
    const struct mq_tensor_range *r = m->ranges ? mq_ranges_find(m->ranges, name) : NULL;
    if (!r) {
        *why = "no calibration range (never produced during calibration)";
        return 0;
    }
    if (r->count == 0) {
        /* An empty tensor (0 elements in every sample) has no range: nothing to quantize. */
        *why = r->nonfinite ? "calibration saw only NaN or infinite values"
                            : "empty in every sample (0 elements): nothing to quantize";
        return 0;
    }
    if (!isfinite(r->min) || !isfinite(r->max) || r->min > r->max) {
        *why = "its calibration range is not a finite interval";
        return 0;
    }
    *lo = r->min;
    *hi = r->max;
    return 1;
}

/*
 * Whether the calibration statistics say an activation must stay float: some
 * sample keeps less than the floor of SQNR once quantized with its range.
 * The message goes to *why (malloc'd) when asked for.
 */
static int stats_reject(const struct model_ctx *m, const char *name, char **why)
{
    const struct mq_quant_options *o = m->o;
    if (!o->stats || !(o->min_sample_sqnr_db > 0.0))
        return 0;
    int64_t sample = 0;
    double db = mq_quant_stats_worst_sqnr(o->stats, name, &sample);
    if (isnan(db) || db >= o->min_sample_sqnr_db)
        return 0;
    if (why && asprintf(why,
                        "on calibration sample %lld its %d-bit quantization keeps %.1f dB of "
                        "SQNR (below %g dB): one scale cannot serve its quiet and its loud "
                        "samples alike",
                        (long long)sample, mq_qtype_bits(o->activation_type), db,
                        o->min_sample_sqnr_db) < 0)
        *why = NULL;
    return 1;
}

/* ---------------------------------------------------------------- marking */

static struct mark *find_mark(const struct graph_ctx *gc, const char *name)
{
    int k = mq_strmap_get(gc->mark_of, name);
    return k >= 0 ? &gc->marks[k] : NULL;
}

static int is_quantized(const struct graph_ctx *gc, const char *name)
{
    const struct mark *mk = find_mark(gc, name);
    return mk && mk->state != MS_FAILED;
}

/* The graph (this one or an enclosing one) that holds an initializer. */
static Onnx__GraphProto *initializer_owner(const struct mq_graph_index *index, const char *name)
{
    for (; index; index = index->parent) {
        const struct mq_tensor_info *t = mq_graph_tensor(index, name);
        if (t && t->initializer >= 0)
            return index->graph;
        if (t && (t->producer >= 0 || t->graph_input))
            return NULL;
    }
    return NULL;
}

static const char *dtype_label(int t)
{
    return t ? mq_dtype_name(t) : "of unknown type";
}

static int is_op(const Onnx__NodeProto *node, const char *op)
{
    return strcmp(mq_str(node->op_type), op) == 0;
}

/*
 * Marks a tensor for quantization on behalf of node `node`.  The first mark
 * of a tensor decides how it is quantized; later ones share it.  A tensor
 * that cannot be quantized gets a failed mark with the reason.
 */
static int mark_tensor(struct graph_ctx *gc, int node, const char *name, enum mark_kind kind,
                       int axis, const char *share_from)
{
    struct model_ctx *m = gc->m;
    if (!name || !*name)
        return 0;
    /*
     * onnxruntime turns a Gemm into QGemm only when its weight's
     * DequantizeLinear has a zero-point input (measured with onnxruntime
     * 1.30); Conv and MatMul fuse without one.
     */
    const Onnx__NodeProto *reader = gc->g->node[node];
    int needs_zp = !is_op(reader, "Conv") && !is_op(reader, "MatMul");
    int k = mq_strmap_get(gc->mark_of, name);
    if (k >= 0) {
        gc->marks[k].keep_zp |= needs_zp;
        return intvec_push(&gc->node_marks[node], k) ? oom(m) : 0;
    }
    if (gc->n_marks == gc->cap_marks) {
        int cap = gc->cap_marks ? gc->cap_marks * 2 : 32;
        struct mark *v = realloc(gc->marks, (size_t)cap * sizeof *v);
        if (!v)
            return oom(m);
        gc->marks = v;
        gc->cap_marks = cap;
    }
    struct mark *mk = &gc->marks[gc->n_marks];
    memset(mk, 0, sizeof *mk);
    mk->axis = -1;
    mk->name = strdup(name);
    if (!mk->name)
        return oom(m);
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
        if (type == 0 && kind != MK_SHARED && !get_range(m, name, &lo, &hi, &no_range))
            why = "its type cannot be inferred and calibration never observed it";
        else if (type != 0 && type != MQ_DTYPE_FLOAT)
            why = mq_dtype_is_float(type) ? "only float32 tensors are quantized"
                                          : "not a float tensor";
        if (why && type) {
            mk->reason = xasprintf("%s (%s)", why, dtype_label(type));
            if (!mk->reason)
                return oom(m);
        }
    }
    mk->kind = kind;
    mk->keep_zp = needs_zp;
    if (share_from && !(mk->share_from = strdup(share_from)))
        return oom(m);
    if (why) {
        mk->state = MS_FAILED;
        if (!mk->reason && !(mk->reason = strdup(why)))
            return oom(m);
    }
    if (mq_strmap_put(gc->mark_of, name, gc->n_marks))
        return oom(m);
    gc->n_marks++;
    return intvec_push(&gc->node_marks[node], gc->n_marks - 1) ? oom(m) : 0;
}

static int note_node(struct graph_ctx *gc, int node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int note_node(struct graph_ctx *gc, int node, const char *fmt, ...)
{
    char *msg;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return oom(gc->m);
    char *old = gc->node_notes[node];
    if (old) {
        char *joined = xasprintf("%s; %s", old, msg);
        free(msg);
        if (!joined)
            return oom(gc->m);
        msg = joined;
        free(old);
    }
    gc->node_notes[node] = msg;
    return 0;
}

static const char *input_at(const Onnx__NodeProto *node, size_t i)
{
    return i < node->n_input && node->input[i] && *node->input[i] ? node->input[i] : NULL;
}

/* A scalar float constant (initializer of this scope or above); 0 when it is not one. */
static int constant_scalar(const struct graph_ctx *gc, const char *name, float *out)
{
    Onnx__TensorProto *init = name ? mq_graph_find_initializer(&gc->idx, name) : NULL;
    if (!init)
        return 0;
    struct mq_tensor t = {0};
    struct mq_error ignored;
    if (mq_tensor_from_proto(init, name, &t, &ignored))
        return 0;
    int ok = t.count == 1 && mq_dtype_is_float(t.dtype);
    if (ok)
        *out = (float)mq_tensor_get_double(&t, 0);
    mq_tensor_free(&t);
    return ok;
}

/*
 * The bounds a Relu or Clip clamps to.  0 when they are not constants known
 * here (a Clip whose min comes from another node).
 */
static int activation_bounds(const struct graph_ctx *gc, const Onnx__NodeProto *node, float *lo,
                             float *hi)
{
    if (is_op(node, "Relu")) {
        *lo = 0.0f;
        *hi = INFINITY;
        return 1;
    }
    *lo = -INFINITY;
    *hi = INFINITY;
    if (gc->m->opset < 11) {
        *lo = mq_node_attr_float(node, "min", -FLT_MAX);
        *hi = mq_node_attr_float(node, "max", FLT_MAX);
        return 1;
    }
    const char *min_name = input_at(node, 1), *max_name = input_at(node, 2);
    if (min_name && !constant_scalar(gc, min_name, lo))
        return 0;
    if (max_name && !constant_scalar(gc, max_name, hi))
        return 0;
    return 1;
}

/*
 * Whether dropping the Relu/Clip and letting the Q/DQ after it clamp is exact:
 * the quantized range (its calibrated range widened to include 0) must lie
 * within the activation's bounds.
 */
static int activation_foldable(const struct graph_ctx *gc, const Onnx__NodeProto *node,
                               float out_lo, float out_hi)
{
    float lo, hi;
    if (!activation_bounds(gc, node, &lo, &hi))
        return 0;
    return lo <= 0.0f && hi >= 0.0f && out_lo >= lo && out_hi <= hi;
}

/* onnxruntime's range adjustments, applied before any scale is computed. */
static int adjust_ranges(struct graph_ctx *gc)
{
    struct model_ctx *m = gc->m;
    for (int i = 0; i < gc->n_nodes; i++) {
        const Onnx__NodeProto *node = gc->g->node[i];
        if (!mq_node_is_onnx(node))
            continue;
        if (is_op(node, "Softmax") && node->n_output > 0 && *mq_str(node->output[0])) {
            if (set_override(m, node->output[0], 0.0f, 1.0f))
                return oom(m);
            continue;
        }
        if (m->o->symmetric_activations || !(is_op(node, "Relu") || is_op(node, "Clip")))
            continue;
        struct mq_node_choice *c = mq_selection_find(m->sel, node);
        const char *in = input_at(node, 0);
        if (!c || c->status != MQ_NODE_SELECTED || !in || node->n_output < 1)
            continue;
        const struct mq_tensor_info *t = mq_graph_tensor(&gc->idx, in);
        float in_lo, in_hi, out_lo, out_hi;
        const char *why;
        /* Not when the graph returns the input too: its readers outside need it whole. */
        if (!t || t->n_consumers != 1 || t->graph_output ||
            !get_range(m, in, &in_lo, &in_hi, &why) ||
            !get_range(m, mq_str(node->output[0]), &out_lo, &out_hi, &why) ||
            !activation_foldable(gc, node, out_lo, out_hi))
            continue;
        /* The values the activation removes need no resolution before it. */
        if (set_override(m, in, out_lo, out_hi))
            return oom(m);
    }
    return 0;
}

/*
 * Drops a Relu/Clip whose input is only its input: the producer writes the
 * activation's output directly, and that tensor's Q/DQ (post-activation
 * range, zero point at or below the lower bound) does the clamping.
 */
static int try_fold(struct graph_ctx *gc, int i, int *folded)
{
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *node = gc->g->node[i];
    const char *up = input_at(node, 0);
    const char *out = node->n_output > 0 ? mq_str(node->output[0]) : "";
    *folded = 0;
    float lo, hi;
    const char *why;
    /* Folded, the Q/DQ after it must exist: it is what clamps. */
    if (m->o->symmetric_activations || !m->o->quantize_outputs || !up || !*out ||
        !get_range(m, out, &lo, &hi, &why) || !activation_foldable(gc, node, lo, hi) ||
        stats_reject(m, out, NULL))
        return 0;
    struct mq_tensor_info *ut = mq_graph_tensor(&gc->idx, up);
    if (!ut || ut->producer < 0 || gc->removed[ut->producer] || ut->n_consumers != 1 ||
        ut->consumers[0].node != i || ut->consumers[0].implicit || ut->graph_output ||
        ut->graph_input || ut->initializer >= 0)
        return 0;
    int p = ut->producer;
    Onnx__NodeProto *prod = gc->g->node[p];
    for (size_t o = 0; o < prod->n_output; o++)
        if (prod->output[o] && strcmp(prod->output[o], up) == 0 &&
            replace_string(&prod->output[o], out))
            return oom(m);
    struct mq_tensor_info *ot = mq_graph_tensor_add(&gc->idx, out);
    if (!ot)
        return oom(m);
    ut = mq_graph_tensor(&gc->idx, up); /* the table may have moved */
    ot->producer = p;
    ut->producer = -1;
    ut->n_consumers = 0;
    /*
     * The producer's own mark now names the activation's output, with a range
     * of its own: a scale shared from before the activation would not clamp.
     */
    int k = mq_strmap_get(gc->mark_of, up);
    if (k >= 0 && mq_strmap_get(gc->mark_of, out) < 0) {
        struct mark *mk = &gc->marks[k];
        mq_strmap_del(gc->mark_of, up);
        if (replace_string(&mk->name, out) || mq_strmap_put(gc->mark_of, out, k))
            return oom(m);
        mk->kind = MK_ACTIVATION;
        free(mk->share_from);
        mk->share_from = NULL;
    }
    char **v = realloc(gc->vanished, (size_t)(gc->n_vanished + 1) * sizeof *v);
    if (!v)
        return oom(m);
    gc->vanished = v;
    if (!(gc->vanished[gc->n_vanished] = strdup(up)))
        return oom(m);
    gc->n_vanished++;
    /* Clip's bounds may now be unused. */
    for (size_t b = 1; b < node->n_input && b < 3; b++) {
        const char *bn = input_at(node, b);
        Onnx__GraphProto *owner = bn ? initializer_owner(&gc->idx, bn) : NULL;
        if (owner && add_candidate(m, owner, bn))
            return oom(m);
    }
    gc->removed[i] = 1;
    struct mq_node_choice *c = mq_selection_find(m->sel, node);
    struct mq_node_choice *pc = mq_selection_find(m->sel, prod);
    mq_choice_set(c, MQ_NODE_FOLDED, "folded into '%s': the Q/DQ of '%s' clamps to [%g, %g]",
                  pc ? pc->name : mq_str(prod->name), out, (double)lo, (double)hi);
    m->res->folded++;
    *folded = 1;
    return 0;
}

static int resize_is_nearest(const Onnx__NodeProto *node)
{
    char mode[32];
    mq_node_attr_string(node, "mode", mode, sizeof mode);
    return mode[0] == '\0' || strcmp(mode, "nearest") == 0;
}

/* Pad keeps the quantized domain only when what it adds is the zero point. */
static const char *pad_blocker(const struct graph_ctx *gc, const Onnx__NodeProto *node)
{
    char mode[32];
    mq_node_attr_string(node, "mode", mode, sizeof mode);
    if (mode[0] && strcmp(mode, "constant") != 0)
        return NULL; /* edge, reflect, wrap copy existing values */
    float value = 0.0f;
    if (gc->m->opset < 11) {
        value = mq_node_attr_float(node, "value", 0.0f);
    } else {
        const char *cv = input_at(node, 2);
        if (cv && !constant_scalar(gc, cv, &value))
            return "its pad value is not a constant";
    }
    return value == 0.0f ? NULL : "it pads with a non-zero constant";
}

static int add_bias_job(struct graph_ctx *gc, int i, const char *bias, const char *input,
                        const char *weight, float beta)
{
    struct model_ctx *m = gc->m;
    if (gc->n_jobs == gc->cap_jobs) {
        int cap = gc->cap_jobs ? gc->cap_jobs * 2 : 16;
        struct bias_job *v = realloc(gc->jobs, (size_t)cap * sizeof *v);
        if (!v)
            return oom(m);
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
        return oom(m);
    gc->n_jobs++;
    return intvec_push(&gc->node_jobs[i], gc->n_jobs - 1) ? oom(m) : 0;
}

static int plan_weighted(struct graph_ctx *gc, int i, Onnx__NodeProto *node)
{
    const struct mq_quant_options *o = gc->m->o;
    const char *x = input_at(node, 0), *w = input_at(node, 1);
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    if (!x || !w) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "it lacks its data or weight input");
        return 0;
    }
    int rc;
    if (is_op(node, "MatMul")) {
        for (int k = 0; k < 2; k++) {
            const char *name = k == 0 ? x : w;
            Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, name);
            /* Per channel only along the columns of a 2-D constant B. */
            int axis = init && k == 1 && o->per_channel && init->n_dims == 2 ? 1 : -1;
            rc = mark_tensor(gc, i, name, init ? MK_WEIGHT : MK_ACTIVATION, axis, NULL);
            if (rc)
                return rc;
        }
    } else {
        rc = mark_tensor(gc, i, x, MK_ACTIVATION, -1, NULL);
        if (rc)
            return rc;
        Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, w);
        int axis = -1, rank = init ? (int)init->n_dims : 0;
        int is_gemm = is_op(node, "Gemm"), is_convt = is_op(node, "ConvTranspose");
        int trans_b = is_gemm && mq_node_attr_int(node, "transB", 0) != 0;
        if (init && o->per_channel) {
            int want = is_gemm ? (trans_b ? 0 : 1) : is_convt ? 1 : 0;
            if (want < rank && (!is_gemm || rank == 2))
                axis = want;
        }
        rc = mark_tensor(gc, i, w, MK_WEIGHT, axis, NULL);
        if (rc)
            return rc;
        const char *b = input_at(node, 2);
        if (b) {
            if (!mq_graph_find_initializer(&gc->idx, b)) {
                rc = note_node(gc, i, "bias '%s' is not a constant: it stays float", b);
            } else {
                float beta = is_gemm ? mq_node_attr_float(node, "beta", 1.0f) : 1.0f;
                rc = add_bias_job(gc, i, b, x, w, beta);
                if (!rc && init) {
                    struct bias_job *j = &gc->jobs[gc->n_jobs - 1];
                    int64_t group = is_convt ? mq_node_attr_int(node, "group", 1) : 1;
                    int64_t len = -1;
                    if (is_gemm && rank == 2)
                        len = trans_b ? init->dims[0] : init->dims[1];
                    else if (!is_gemm && rank >= 2 && group >= 1 && group <= INT32_MAX &&
                             init->dims[1] >= 0 && init->dims[1] <= INT32_MAX)
                        len = is_convt ? init->dims[1] * group : init->dims[0];
                    /* A length no bias can have makes the bias fail its check, not overflow. */
                    j->expect_len = len >= 0 && len <= INT32_MAX ? (int)len : INT32_MAX;
                    if (is_gemm && rank != 2)
                        j->expect_len = -1;
                    j->channel_mod = is_convt && rank >= 2 && init->dims[1] > 0 &&
                                             init->dims[1] <= INT32_MAX
                                         ? (int)init->dims[1]
                                         : 0;
                }
            }
            if (rc)
                return rc;
        }
    }
    if (o->quantize_outputs && node->n_output > 0)
        return mark_tensor(gc, i, node->output[0], MK_ACTIVATION, -1, NULL);
    return 0;
}

static int plan_compute(struct graph_ctx *gc, int i, Onnx__NodeProto *node)
{
    size_t n_data = 1;
    if (is_op(node, "Add") || is_op(node, "Mul"))
        n_data = 2;
    else if (is_op(node, "Concat"))
        n_data = node->n_input;
    for (size_t k = 0; k < n_data && k < node->n_input; k++) {
        int rc = mark_tensor(gc, i, input_at(node, k), MK_ACTIVATION, -1, NULL);
        if (rc)
            return rc;
    }
    if (gc->m->o->quantize_outputs && node->n_output > 0)
        return mark_tensor(gc, i, node->output[0], MK_ACTIVATION, -1, NULL);
    return 0;
}

static int plan_activation(struct graph_ctx *gc, int i, Onnx__NodeProto *node)
{
    const char *in = input_at(node, 0);
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    if (!in || !is_quantized(gc, in)) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "its input%s%s%s is not quantized, so it stays float",
                      in ? " '" : "", in ? in : "", in ? "'" : "");
        return 0;
    }
    int folded;
    int rc = try_fold(gc, i, &folded);
    if (rc || folded)
        return rc;
    rc = mark_tensor(gc, i, in, MK_ACTIVATION, -1, NULL);
    if (!rc && gc->m->o->quantize_outputs && node->n_output > 0)
        rc = mark_tensor(gc, i, node->output[0], MK_ACTIVATION, -1, NULL);
    return rc;
}

static int plan_shared(struct graph_ctx *gc, int i, Onnx__NodeProto *node)
{
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    const char *in = input_at(node, 0);
    const char *blocker = NULL;
    if (!gc->m->o->quantize_outputs)
        blocker = "this profile quantizes op inputs only";
    else if (is_op(node, "Pad"))
        blocker = pad_blocker(gc, node);
    else if (is_op(node, "MaxPool") && gc->m->opset < 12)
        blocker = "onnxruntime runs MaxPool in 8 bits from opset 12";
    if (blocker) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "%s", blocker);
        return 0;
    }
    const struct mark *src = in ? find_mark(gc, in) : NULL;
    if (!src || src->state == MS_FAILED) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "its input%s%s%s is not quantized, so there is no "
                      "scale to share", in ? " '" : "", in ? in : "", in ? "'" : "");
        return 0;
    }
    if (src->kind == MK_WEIGHT && src->axis >= 0) {
        mq_choice_set(c, MQ_NODE_SKIPPED, "its input '%s' is quantized per channel", in);
        return 0;
    }
    size_t n_out = is_op(node, "Split") ? node->n_output : (node->n_output > 0 ? 1 : 0);
    /* The input belongs to the node's unit too: its status follows the input's fate. */
    int rc = mark_tensor(gc, i, in, MK_ACTIVATION, -1, NULL);
    for (size_t o = 0; !rc && o < n_out; o++)
        rc = mark_tensor(gc, i, node->output[o], MK_SHARED, -1, in);
    return rc;
}

static int plan_node(struct graph_ctx *gc, int i)
{
    Onnx__NodeProto *node = gc->g->node[i];
    struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    if (!c || c->status != MQ_NODE_SELECTED)
        return 0;
    enum mq_op_role role = mq_op_role(mq_str(node->op_type));
    if (role == MQ_ROLE_SHARED && is_op(node, "Resize") && !resize_is_nearest(node))
        role = MQ_ROLE_COMPUTE;
    switch (role) {
    case MQ_ROLE_WEIGHTED:
        return plan_weighted(gc, i, node);
    case MQ_ROLE_COMPUTE:
        return plan_compute(gc, i, node);
    case MQ_ROLE_ACTIVATION:
        return plan_activation(gc, i, node);
    case MQ_ROLE_SHARED:
        return plan_shared(gc, i, node);
    case MQ_ROLE_NONE:
        break;
    }
    mq_choice_set(c, MQ_NODE_SKIPPED, "op type %s is not quantized", mq_str(node->op_type));
    return 0;
}

/* ------------------------------------------------------- integer islands */

static int is_selected(const struct mq_selection *sel, const Onnx__NodeProto *node)
{
    const struct mq_node_choice *c = mq_selection_find(sel, node);
    return c && c->status == MQ_NODE_SELECTED;
}

/*
 * Which selected nodes stay selected: every Conv, ConvTranspose, Gemm and
 * MatMul, and the other ops (Relu, Concat, Reshape, Sigmoid, ...) only where
 * their output flows, through other such ops, into one of those.  Elsewhere
 * onnxruntime has no integer kernel to hand the int8 data to: a Q/DQ pair
 * there buys no speed, costs a rounding and the bytes of two nodes (a
 * detector's box decoding, a Sigmoid gate feeding float Mul nodes).
 * Returns a malloc'd flag per node of the graph (1: stays), NULL when out of
 * memory.  The graph need not be sorted.
 */
static char *kept_nodes(const struct mq_graph_index *idx, const struct mq_selection *sel)
{
    const Onnx__GraphProto *g = idx->graph;
    size_t n = g->n_node;
    char *keep = calloc(n ? n : 1, 1);
    if (!keep)
        return NULL;
    for (size_t i = 0; i < n; i++)
        keep[i] = is_selected(sel, g->node[i]) &&
                  mq_op_role(mq_str(g->node[i]->op_type)) == MQ_ROLE_WEIGHTED;
    /* Backwards from the weighted nodes until nothing changes (sorted graphs: one pass). */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t r = n; r-- > 0;) {
            const Onnx__NodeProto *node = g->node[r];
            if (keep[r] || !is_selected(sel, node))
                continue;
            for (size_t o = 0; o < node->n_output && !keep[r]; o++) {
                const struct mq_tensor_info *t =
                    node->output[o] && *node->output[o] ? mq_graph_tensor(idx, node->output[o])
                                                        : NULL;
                for (int k = 0; t && k < t->n_consumers && !keep[r]; k++) {
                    int j = t->consumers[k].node;
                    if (t->consumers[k].implicit || !keep[j])
                        continue;
                    const Onnx__NodeProto *reader = g->node[j];
                    /* A weighted node's bias is never an activation it quantizes. */
                    int bias_only = mq_op_role(mq_str(reader->op_type)) == MQ_ROLE_WEIGHTED;
                    for (size_t in = 0; in < reader->n_input && in < 2; in++)
                        if (reader->input[in] && strcmp(reader->input[in], node->output[o]) == 0)
                            bias_only = 0;
                    keep[r] = !bias_only;
                }
            }
            changed |= keep[r];
        }
    }
    /*
     * A Relu or Clip alone behind a kept node stays too, whatever reads it:
     * folded, it costs nothing and its Q/DQ gets the narrower post-activation
     * range.
     */
    for (size_t i = 0; i < n; i++) {
        const Onnx__NodeProto *node = g->node[i];
        if (keep[i] || !is_selected(sel, node) ||
            mq_op_role(mq_str(node->op_type)) != MQ_ROLE_ACTIVATION || node->n_input < 1 ||
            !node->input[0] || !*node->input[0])
            continue;
        const struct mq_tensor_info *t = mq_graph_tensor(idx, node->input[0]);
        keep[i] = t && t->producer >= 0 && keep[t->producer] && t->n_consumers == 1 &&
                  !t->graph_output;
    }
    return keep;
}

/* Selected nodes that kept_nodes() leaves out become skipped, with the reason. */
static int prune_islands(struct graph_ctx *gc)
{
    char *keep = kept_nodes(&gc->idx, gc->m->sel);
    if (!keep)
        return oom(gc->m);
    for (int i = 0; i < gc->n_nodes; i++) {
        const Onnx__NodeProto *node = gc->g->node[i];
        if (keep[i] || !is_selected(gc->m->sel, node))
            continue;
        mq_choice_set(mq_selection_find(gc->m->sel, node), MQ_NODE_SKIPPED,
                      "its output reaches no quantized Conv, ConvTranspose, Gemm or MatMul: "
                      "onnxruntime would run it on int8 data for no gain");
    }
    free(keep);
    return 0;
}

/* ------------------------------------------------------------ materializing */

static char *fresh(struct graph_ctx *gc, const char *base, const char *suffix)
{
    char *want = xasprintf("%s%s", base, suffix);
    if (!want)
        return NULL;
    char *name = mq_names_fresh(&gc->m->names, want);
    free(want);
    return name;
}

/* Every direct reader of `from` in this graph reads `to` instead. */
static int rename_consumers(struct graph_ctx *gc, const char *from, const char *to)
{
    const struct mq_tensor_info *t = mq_graph_tensor(&gc->idx, from);
    if (!t)
        return 0;
    for (int k = 0; k < t->n_consumers; k++) {
        if (t->consumers[k].implicit || gc->removed[t->consumers[k].node])
            continue;
        Onnx__NodeProto *node = gc->g->node[t->consumers[k].node];
        for (size_t i = 0; i < node->n_input; i++)
            if (node->input[i] && strcmp(node->input[i], from) == 0 &&
                replace_string(&node->input[i], to))
                return oom(gc->m);
    }
    return 0;
}

static int place(struct graph_ctx *gc, int producer, Onnx__NodeProto *node)
{
    struct nodevec *nv = producer >= 0 ? &gc->after[producer] : &gc->prologue;
    if (nodevec_push(nv, node)) {
        onnx__node_proto__free_unpacked(node, NULL);
        return oom(gc->m);
    }
    return 0;
}

/*
 * Puts a Q -> DQ pair on tensor t.  Readers get the DQ output; when t is a
 * graph output, the producer writes a new name and the DQ writes t itself,
 * so the graph keeps its interface.
 */
static int insert_qdq(struct graph_ctx *gc, struct mark *mk)
{
    const char *t = mk->name;
    struct mq_tensor_info *info = mq_graph_tensor(&gc->idx, t);
    int producer = info ? info->producer : -1;
    int is_output = info && info->graph_output && producer >= 0;
    char *q_in = NULL, *dq_out = NULL, *q_out = NULL, *q_name = NULL, *dq_name = NULL;
    int rc = 0;
    if (is_output) {
        q_in = fresh(gc, t, "_QuantizeLinear_Input");
        dq_out = strdup(t);
    } else {
        q_in = strdup(t);
        dq_out = fresh(gc, t, "_dequantized");
    }
    q_name = fresh(gc, t, "_QuantizeLinear");
    q_out = fresh(gc, t, "_quantized");
    dq_name = fresh(gc, t, "_DequantizeLinear");
    if (!q_in || !dq_out || !q_out || !q_name || !dq_name) {
        rc = oom(gc->m);
        goto done;
    }
    if (is_output) {
        Onnx__NodeProto *prod = gc->g->node[producer];
        for (size_t o = 0; o < prod->n_output; o++)
            if (prod->output[o] && strcmp(prod->output[o], t) == 0 &&
                replace_string(&prod->output[o], q_in)) {
                rc = oom(gc->m);
                goto done;
            }
    } else if ((rc = rename_consumers(gc, t, dq_out))) {
        goto done;
    }
    const char *q_inputs[3] = {q_in, mk->scale_name, mk->zp_name};
    const char *dq_inputs[3] = {q_out, mk->scale_name, mk->zp_name};
    Onnx__NodeProto *q = make_node("QuantizeLinear", q_name, q_inputs, 3, q_out, -1);
    if (!q || (rc = place(gc, producer, q))) {
        rc = rc ? rc : oom(gc->m);
        goto done;
    }
    Onnx__NodeProto *dq = make_node("DequantizeLinear", dq_name, dq_inputs, 3, dq_out, -1);
    if (!dq || (rc = place(gc, producer, dq))) {
        rc = rc ? rc : oom(gc->m);
        goto done;
    }
    mk->dq_name = dq_out;
    dq_out = NULL;
done:
    free(q_in);
    free(dq_out);
    free(q_out);
    free(q_name);
    free(dq_name);
    return rc;
}

static int fail_mark(struct graph_ctx *gc, struct mark *mk, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_mark(struct graph_ctx *gc, struct mark *mk, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(mk->reason);
    if (vasprintf(&mk->reason, fmt, ap) < 0) {
        mk->reason = NULL;
        va_end(ap);
        return oom(gc->m);
    }
    va_end(ap);
    mk->state = MS_FAILED;
    return 0;
}

static int alloc_channels(struct mark *mk, int n)
{
    mk->n_ch = n;
    mk->scales = calloc((size_t)(n ? n : 1), sizeof *mk->scales);
    mk->zps = calloc((size_t)(n ? n : 1), sizeof *mk->zps);
    mk->ch_lo = calloc((size_t)(n ? n : 1), sizeof *mk->ch_lo);
    mk->ch_hi = calloc((size_t)(n ? n : 1), sizeof *mk->ch_hi);
    return mk->scales && mk->zps && mk->ch_lo && mk->ch_hi ? 0 : -1;
}

/* Scale and zero point initializers of a per-tensor mark (values written at the end). */
static int add_param_inits(struct graph_ctx *gc, struct mark *mk, int rank, const int64_t *dims)
{
    mk->scale_name = fresh(gc, mk->name, "_scale");
    mk->zp_name = fresh(gc, mk->name, "_zero_point");
    if (!mk->scale_name || !mk->zp_name)
        return oom(gc->m);
    mk->scale_init = add_initializer(gc->g, mk->scale_name, MQ_DTYPE_FLOAT, rank, dims);
    mk->zp_init = mk->scale_init ? add_initializer(gc->g, mk->zp_name, mk->qtype, rank, dims)
                                 : NULL;
    return mk->zp_init ? 0 : oom(gc->m);
}

static int quantize_activation(struct graph_ctx *gc, struct mark *mk)
{
    struct model_ctx *m = gc->m;
    float lo, hi;
    const char *why;
    if (!get_range(m, mk->name, &lo, &hi, &why))
        return fail_mark(gc, mk, "%s", why);
    char *rejected = NULL;
    if (stats_reject(m, mk->name, &rejected)) {
        int rc = fail_mark(gc, mk, "%s", rejected ? rejected : "too quiet on some sample");
        free(rejected);
        return rc;
    }
    mk->qtype = m->o->activation_type;
    mk->symmetric = m->o->symmetric_activations;
    mk->qr = mq_qrange_for(mk->qtype, mk->symmetric, 0);
    if (alloc_channels(mk, 1))
        return oom(m);
    struct mq_qparams p;
    struct mq_error perr;
    if (mq_qparams_compute(lo, hi, mk->qr, mk->symmetric, &p, &perr))
        return fail_mark(gc, mk, "%s", perr.message);
    mk->has_range = 1;
    mk->lo = lo;
    mk->hi = hi;
    mk->ch_lo[0] = lo;
    mk->ch_hi[0] = hi;
    mk->scales[0] = p.scale;
    mk->zps[0] = p.zero_point;
    int rc = add_param_inits(gc, mk, 0, NULL);
    if (!rc)
        rc = insert_qdq(gc, mk);
    if (!rc)
        mk->state = MS_DONE;
    return rc;
}

static int quantize_shared(struct graph_ctx *gc, struct mark *mk)
{
    const struct mark *src = find_mark(gc, mk->share_from);
    if (!src || src->state != MS_DONE)
        return fail_mark(gc, mk, "it shares the scale of '%s', which stays float",
                         mk->share_from);
    mk->qtype = src->qtype;
    mk->symmetric = src->symmetric;
    mk->qr = src->qr;
    if (alloc_channels(mk, 1))
        return oom(gc->m);
    mk->scales[0] = src->scales[0];
    mk->zps[0] = src->zps[0];
    mk->scale_name = strdup(src->scale_name);
    mk->zp_name = strdup(src->zp_name);
    if (!mk->scale_name || !mk->zp_name)
        return oom(gc->m);
    float lo, hi;
    const char *why;
    if (get_range(gc->m, mk->name, &lo, &hi, &why)) {
        mk->has_range = 1;
        mk->lo = lo;
        mk->hi = hi;
    }
    int rc = insert_qdq(gc, mk);
    if (!rc)
        mk->state = MS_DONE;
    return rc;
}

/* Channel count, and elements per channel block, of a tensor split along axis. */
static void channel_layout(const struct mq_tensor *t, int axis, int64_t *channels, int64_t *inner)
{
    *channels = axis >= 0 ? t->dims[axis] : 1;
    *inner = 1;
    for (int d = axis + 1; axis >= 0 && d < t->rank; d++)
        *inner *= t->dims[d];
    if (axis < 0)
        *inner = t->count;
}

static int decode_initializer(struct graph_ctx *gc, const char *name, struct mq_tensor *t)
{
    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, name);
    if (!init)
        return mq_error_set(gc->m->err, "initializer '%s' vanished", name);
    return mq_tensor_from_proto(init, name, t, gc->m->err);
}

/*
 * Weights and constants: scales from their values (per channel or per
 * tensor), the quantized initializer and its DequantizeLinear.  The
 * quantized values are written at the end, once biases had their say.
 */
static int quantize_initializer(struct graph_ctx *gc, struct mark *mk)
{
    struct model_ctx *m = gc->m;
    const struct mq_quant_options *o = m->o;
    struct mq_tensor t = {0};
    int rc = decode_initializer(gc, mk->name, &t);
    if (rc)
        return rc;
    for (int64_t e = 0; e < t.count; e++)
        if (!isfinite(((const float *)t.data)[e])) {
            mq_tensor_free(&t);
            return fail_mark(gc, mk, "it holds NaN or infinite values");
        }
    if (mk->kind == MK_WEIGHT) {
        mk->qtype = o->weight_type;
        /* onnxruntime's integer kernels take one zero point for all channels. */
        if (mk->axis >= 0 && mk->qtype == MQ_DTYPE_UINT8) {
            mk->qtype = MQ_DTYPE_INT8;
            mk->note = strdup("uint8 weights become int8 per channel, as onnxruntime does");
            if (!mk->note) {
                mq_tensor_free(&t);
                return oom(m);
            }
        }
        mk->symmetric = o->symmetric_weights || (mk->axis >= 0 && mk->qtype == MQ_DTYPE_INT8);
        mk->qr = mq_qrange_for(mk->qtype, mk->symmetric, o->reduce_range);
        if (mk->axis >= t.rank)
            mk->axis = -1;
    } else {
        mk->qtype = o->activation_type;
        mk->symmetric = o->symmetric_activations;
        mk->qr = mq_qrange_for(mk->qtype, mk->symmetric, 0);
        mk->axis = -1;
    }
    int64_t channels, inner;
    channel_layout(&t, mk->axis, &channels, &inner);
    if (channels > INT32_MAX / 2) {
        mq_tensor_free(&t);
        return fail_mark(gc, mk, "%lld channels along axis %d", (long long)channels, mk->axis);
    }
    if (alloc_channels(mk, (int)channels)) {
        mq_tensor_free(&t);
        return oom(m);
    }
    const float *x = t.data;
    for (int64_t c = 0; c < channels; c++) {
        mk->ch_lo[c] = INFINITY;
        mk->ch_hi[c] = -INFINITY;
    }
    float all_lo = 0.0f, all_hi = 0.0f;
    for (int64_t e = 0; e < t.count; e++) {
        int64_t c = mk->axis >= 0 ? (e / inner) % channels : 0;
        if (x[e] < mk->ch_lo[c])
            mk->ch_lo[c] = x[e];
        if (x[e] > mk->ch_hi[c])
            mk->ch_hi[c] = x[e];
        if (e == 0 || x[e] < all_lo)
            all_lo = x[e];
        if (e == 0 || x[e] > all_hi)
            all_hi = x[e];
    }
    /* An empty channel (a zero dimension elsewhere) has no range: scale 1, as for zeros. */
    for (int64_t c = 0; c < channels; c++)
        if (mk->ch_lo[c] > mk->ch_hi[c])
            mk->ch_lo[c] = mk->ch_hi[c] = 0.0f;
    mq_tensor_free(&t);
    for (int64_t c = 0; c < channels; c++) {
        struct mq_qparams p;
        struct mq_error perr;
        if (mq_qparams_compute(mk->ch_lo[c], mk->ch_hi[c], mk->qr, mk->symmetric, &p, &perr))
            return fail_mark(gc, mk, "channel %lld: %s", (long long)c, perr.message);
        mk->scales[c] = p.scale;
        mk->zps[c] = p.zero_point;
    }
    mk->has_range = 1;
    mk->lo = all_lo;
    mk->hi = all_hi;

    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, mk->name);
    Onnx__GraphProto *owner = initializer_owner(&gc->idx, mk->name);
    char *q_name = fresh(gc, mk->name, "_quantized");
    if (!q_name)
        return oom(m);
    mk->q_init = add_initializer(gc->g, q_name, mk->qtype, (int)init->n_dims, init->dims);
    free(q_name);
    if (!mk->q_init)
        return oom(m);
    int64_t ch_dims[1] = {channels};
    rc = add_param_inits(gc, mk, mk->axis >= 0 ? 1 : 0, ch_dims);
    if (rc)
        return rc;
    char *dq_name = fresh(gc, mk->name, "_DequantizeLinear");
    mk->dq_name = fresh(gc, mk->name, "_dequantized");
    if (!dq_name || !mk->dq_name) {
        free(dq_name);
        return oom(m);
    }
    const char *inputs[3] = {mk->q_init->name, mk->scale_name, mk->zp_name};
    Onnx__NodeProto *dq = make_node("DequantizeLinear", dq_name, inputs, 3, mk->dq_name,
                                    mk->axis);
    free(dq_name);
    if (!dq)
        return oom(m);
    mk->dq_node = dq;
    rc = place(gc, -1, dq);
    if (!rc)
        rc = rename_consumers(gc, mk->name, mk->dq_name);
    if (!rc && owner && add_candidate(m, owner, mk->name))
        rc = oom(m);
    if (!rc)
        mk->state = MS_DONE;
    return rc;
}

static int all_zero(const int32_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i])
            return 0;
    return 1;
}

/* Takes an initializer this rewrite added out of the graph again and frees it. */
static void drop_initializer(Onnx__GraphProto *g, Onnx__TensorProto *t)
{
    size_t w = 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i] != t)
            g->initializer[w++] = g->initializer[i];
    g->n_initializer = w;
    onnx__tensor_proto__free_unpacked(t, NULL);
}

/*
 * Writes the scale and zero point of a mark into its initializers.  A
 * DequantizeLinear-only tensor (a weight or constant) whose zero points are
 * all 0 loses its zero-point input: 0 is the default, and symmetric int8
 * weights would otherwise store a byte per channel plus a name and a node
 * input for nothing.  A Q/DQ pair keeps it: QuantizeLinear without a zero
 * point writes uint8, and a Gemm's weight keeps it (see mark_tensor).
 */
static int write_params(struct graph_ctx *gc, struct mark *mk)
{
    if (!mk->scale_init)
        return 0;
    if (encode_floats(mk->scales, mk->n_ch, &mk->scale_init->raw_data))
        return oom(gc->m);
    if (mk->dq_node && mk->dq_node->n_input == 3 && !mk->keep_zp && all_zero(mk->zps, mk->n_ch)) {
        free(mk->dq_node->input[2]);
        mk->dq_node->input[2] = NULL;
        mk->dq_node->n_input = 2;
        drop_initializer(gc->g, mk->zp_init);
        mk->zp_init = NULL;
        return 0;
    }
    if (encode_ints(mk->qtype, mk->zps, mk->n_ch, &mk->zp_init->raw_data))
        return oom(gc->m);
    return 0;
}

/* Quantizes a weight's values with its final scales into its initializer. */
static int write_weight(struct graph_ctx *gc, struct mark *mk)
{
    struct mq_tensor t = {0};
    int rc = decode_initializer(gc, mk->name, &t);
    if (rc)
        return rc;
    int32_t *q = malloc((size_t)(t.count ? t.count : 1) * sizeof *q);
    if (!q) {
        mq_tensor_free(&t);
        return oom(gc->m);
    }
    int64_t channels, inner;
    channel_layout(&t, mk->axis, &channels, &inner);
    struct mq_qrange full = mq_qrange_full(mk->qtype);
    const float *x = t.data;
    for (int64_t e = 0; e < t.count; e++) {
        int64_t c = mk->axis >= 0 ? (e / inner) % channels : 0;
        struct mq_qparams p = {mk->scales[c], mk->zps[c]};
        q[e] = mq_quantize_value(x[e], p, full);
    }
    rc = encode_ints(mk->qtype, q, t.count, &mk->q_init->raw_data) ? oom(gc->m) : 0;
    free(q);
    mq_tensor_free(&t);
    return rc;
}

/* ----------------------------------------------------------------- biases */

static int fail_job(struct graph_ctx *gc, struct bias_job *j, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_job(struct graph_ctx *gc, struct bias_job *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(j->reason);
    if (vasprintf(&j->reason, fmt, ap) < 0) {
        j->reason = NULL;
        va_end(ap);
        return oom(gc->m);
    }
    va_end(ap);
    j->state = MS_FAILED;
    return 0;
}

static int weight_channel(const struct bias_job *j, const struct mark *w, int64_t c)
{
    if (w->n_ch <= 1 || j->n_ch <= 1)
        return 0;
    return (int)(j->channel_mod > 0 ? c % j->channel_mod : c);
}

/* Decodes the bias and checks it against the input's and weight's quantization. */
static int prepare_bias(struct graph_ctx *gc, struct bias_job *j)
{
    const struct mark *in = find_mark(gc, j->input), *w = find_mark(gc, j->weight);
    if (!in || in->state != MS_DONE)
        return fail_job(gc, j, "its input '%s' stays float", j->input);
    if (!w || w->state != MS_DONE)
        return fail_job(gc, j, "its weight '%s' stays float", j->weight);
    Onnx__TensorProto *init = mq_graph_find_initializer(&gc->idx, j->bias);
    if (!init || !init->has_data_type || init->data_type != MQ_DTYPE_FLOAT)
        return fail_job(gc, j, "it is not a float32 constant");
    struct mq_tensor t = {0};
    int rc = decode_initializer(gc, j->bias, &t);
    if (rc)
        return rc;
    j->count = t.count;
    j->rank = t.rank;
    memcpy(j->dims, t.dims, sizeof j->dims);
    j->values = malloc((size_t)(t.count ? t.count : 1) * sizeof *j->values);
    if (!j->values) {
        mq_tensor_free(&t);
        return oom(gc->m);
    }
    int finite = 1;
    for (int64_t e = 0; e < t.count; e++) {
        /* Gemm's beta goes into the values: the rewritten node uses beta = 1. */
        j->values[e] = ((const float *)t.data)[e] * j->beta;
        finite = finite && isfinite(j->values[e]);
    }
    mq_tensor_free(&t);
    if (!finite)
        return fail_job(gc, j, "it holds NaN or infinite values");
    if (w->n_ch > 1 || w->axis >= 0) {
        int ok = j->rank == 1 && (j->expect_len < 0 || j->count == j->expect_len);
        for (int64_t c = 0; ok && c < j->count; c++)
            ok = weight_channel(j, w, c) < w->n_ch;
        if (!ok)
            return fail_job(gc, j, "its %lld values do not match the weight's %d channels",
                            (long long)j->count, w->n_ch);
        j->n_ch = (int)j->count;
    } else {
        j->n_ch = 1;
    }
    j->state = MS_PENDING;
    return 0;
}

static int add_adjusted(struct mark *w, int c)
{
    for (int i = 0; i < w->adjusted.n; i++)
        if (w->adjusted.v[i] == c)
            return 0;
    return intvec_push(&w->adjusted, c);
}

/*
 * A bias scale of input_scale * weight_scale too small for the bias values
 * would push them past int32: enlarge that weight channel's scale instead
 * (onnxruntime's remedy, with its 1e-4 margin).
 */
static int adjust_weight_for_bias(struct graph_ctx *gc, struct bias_job *j)
{
    const struct mark *in = find_mark(gc, j->input);
    struct mark *w = find_mark(gc, j->weight);
    if (w->kind != MK_WEIGHT)
        return 0; /* a weight computed at run time: nothing to enlarge */
    for (int64_t c = 0; c < j->count; c++) {
        int wc = weight_channel(j, w, c);
        double need = mq_bias_min_scale(fabsf(j->values[c]));
        double candidate = (double)in->scales[0] * (double)w->scales[wc];
        if (!(candidate < need) || !(candidate > 0.0))
            continue;
        float scale = (float)((double)w->scales[wc] * (need / candidate));
        w->scales[wc] = scale;
        if (!w->symmetric) {
            double zp = nearbyint((double)w->qr.qmin - (double)fminf(w->ch_lo[wc], 0.0f) / scale);
            w->zps[wc] = (int32_t)fmin(fmax(zp, w->qr.qmin), w->qr.qmax);
        }
        if (add_adjusted(w, wc))
            return oom(gc->m);
    }
    return 0;
}

static int emit_bias(struct graph_ctx *gc, int k)
{
    struct bias_job *j = &gc->jobs[k];
    struct model_ctx *m = gc->m;
    Onnx__NodeProto *node = gc->g->node[j->node];
    /* The same bias with the same input and weight is quantized once. */
    for (int e = 0; e < k; e++) {
        const struct bias_job *p = &gc->jobs[e];
        if (p->state == MS_DONE && strcmp(p->bias, j->bias) == 0 &&
            strcmp(p->input, j->input) == 0 && strcmp(p->weight, j->weight) == 0 &&
            p->beta == j->beta) {
            if (replace_string(&node->input[2], p->dq_name) || !(j->dq_name = strdup(p->dq_name)))
                return oom(m);
            j->state = MS_DONE;
            j->n_ch = 0; /* reported once, by the first */
            return 0;
        }
    }
    const struct mark *in = find_mark(gc, j->input), *w = find_mark(gc, j->weight);
    int n = j->n_ch;
    j->scales = malloc((size_t)n * sizeof *j->scales);
    int32_t *q = malloc((size_t)(j->count ? j->count : 1) * sizeof *q);
    int rc = 0;
    if (!j->scales || !q) {
        rc = oom(m);
        goto done;
    }
    for (int c = 0; c < n; c++)
        j->scales[c] = in->scales[0] * w->scales[weight_channel(j, w, c)];
    for (int64_t e = 0; e < j->count; e++) {
        float s = j->scales[n > 1 ? e : 0];
        q[e] = mq_quantize_bias(j->values[e], s);
        if (fabsf(j->values[e] / s) >= 2147483647.0f)
            j->clamped++;
    }
    j->q_name = fresh(gc, j->bias, "_quantized");
    j->scale_name = fresh(gc, j->bias, "_scale");
    char *dq_node_name = fresh(gc, j->bias, "_DequantizeLinear");
    j->dq_name = fresh(gc, j->bias, "_dequantized");
    if (!j->q_name || !j->scale_name || !dq_node_name || !j->dq_name) {
        free(dq_node_name);
        rc = oom(m);
        goto done;
    }
    int64_t ch_dims[1] = {n};
    int per_channel = w->n_ch > 1 || w->axis >= 0;
    Onnx__TensorProto *qi = add_initializer(gc->g, j->q_name, MQ_DTYPE_INT32, j->rank, j->dims);
    Onnx__TensorProto *si = qi ? add_initializer(gc->g, j->scale_name, MQ_DTYPE_FLOAT,
                                                 per_channel, ch_dims)
                               : NULL;
    /* The zero point is 0, DequantizeLinear's default: no input for it (see write_params). */
    const char *inputs[2] = {j->q_name, j->scale_name};
    Onnx__NodeProto *dq = si ? make_node("DequantizeLinear", dq_node_name, inputs, 2, j->dq_name,
                                         per_channel ? 0 : -1)
                             : NULL;
    free(dq_node_name);
    if (!dq || encode_ints(MQ_DTYPE_INT32, q, j->count, &qi->raw_data) ||
        encode_floats(j->scales, n, &si->raw_data)) {
        if (dq)
            onnx__node_proto__free_unpacked(dq, NULL);
        rc = oom(m);
        goto done;
    }
    if ((rc = place(gc, -1, dq)))
        goto done;
    if (replace_string(&node->input[2], j->dq_name)) {
        rc = oom(m);
        goto done;
    }
    if (j->beta != 1.0f) {
        for (size_t a = 0; a < node->n_attribute; a++)
            if (strcmp(mq_str(node->attribute[a]->name), "beta") == 0)
                node->attribute[a]->f = 1.0f;
    }
    Onnx__GraphProto *owner = initializer_owner(&gc->idx, j->bias);
    if (owner && add_candidate(m, owner, j->bias)) {
        rc = oom(m);
        goto done;
    }
    j->state = MS_DONE;
done:
    free(q);
    return rc;
}

/*
 * Bias correction: rounding the weights shifts each output channel's mean by
 * sum over inputs and taps of (dequantized weight - weight) * mean input.
 * The bias takes that shift back, with the input means the statistics pass
 * measured on the calibration samples (padding included).  Conv (any group)
 * and Gemm; a weight computed at run time, or a node the statistics could not
 * describe, keeps its bias as it is.
 */
static int correct_bias(struct graph_ctx *gc, struct bias_job *j)
{
    struct model_ctx *m = gc->m;
    const struct mark *w = find_mark(gc, j->weight);
    const Onnx__NodeProto *node = gc->g->node[j->node];
    int is_gemm = is_op(node, "Gemm");
    if (!w || w->kind != MK_WEIGHT || w->state != MS_DONE || !w->q_init ||
        (!is_gemm && !is_op(node, "Conv")))
        return 0;
    int64_t n_ch = 0, taps = 0;
    const double *means = mq_quant_stats_input_means(m->o->stats, j->input, j->weight, &n_ch,
                                                     &taps);
    if (!means)
        return 0;
    struct mq_tensor t = {0};
    int rc = decode_initializer(gc, j->weight, &t);
    if (rc)
        return rc;
    int64_t outs, per_group_in, group = 1;
    int trans_b = 0;
    if (is_gemm) {
        trans_b = mq_node_attr_int(node, "transB", 0) != 0;
        outs = t.rank == 2 ? t.dims[trans_b ? 0 : 1] : -1;
        per_group_in = t.rank == 2 ? t.dims[trans_b ? 1 : 0] : -1;
    } else {
        group = mq_node_attr_int(node, "group", 1);
        outs = t.dims[0];
        per_group_in = t.rank >= 3 ? t.dims[1] : -1;
    }
    int64_t kernel = t.count / (outs > 0 && per_group_in > 0 ? outs * per_group_in : 1);
    if (outs <= 0 || per_group_in <= 0 || group < 1 || outs % group || j->count != outs ||
        n_ch != per_group_in * group || taps != kernel) {
        mq_tensor_free(&t);
        return 0;
    }
    double alpha = is_gemm ? mq_node_attr_float(node, "alpha", 1.0f) : 1.0;
    struct mq_qrange full = mq_qrange_full(w->qtype);
    const float *x = t.data;
    int64_t outs_per_group = outs / group;
    for (int64_t o = 0; o < outs; o++) {
        int ch = w->n_ch > 1 ? (int)o : 0;
        struct mq_qparams p = {w->scales[ch], w->zps[ch]};
        const double *mean_base = means + (o / outs_per_group) * per_group_in * taps;
        double shift = 0.0;
        for (int64_t i = 0; i < per_group_in; i++)
            for (int64_t k = 0; k < taps; k++) {
                int64_t e = is_gemm ? (trans_b ? o * per_group_in + i : i * outs + o)
                                    : (o * per_group_in + i) * taps + k;
                float back = mq_dequantize_value(mq_quantize_value(x[e], p, full), p);
                shift += ((double)back - (double)x[e]) * mean_base[i * taps + k];
            }
        shift *= alpha;
        j->values[o] = (float)((double)j->values[o] - shift);
        if (fabs(shift) > j->max_shift)
            j->max_shift = fabs(shift);
    }
    j->corrected = 1;
    mq_tensor_free(&t);
    return 0;
}

static int quantize_biases(struct graph_ctx *gc)
{
    int rc = 0;
    for (int k = 0; !rc && k < gc->n_jobs; k++)
        rc = prepare_bias(gc, &gc->jobs[k]);
    /* All enlargements first, so every bias sees its weight's final scale. */
    for (int k = 0; !rc && k < gc->n_jobs; k++)
        if (gc->jobs[k].state == MS_PENDING)
            rc = adjust_weight_for_bias(gc, &gc->jobs[k]);
    for (int k = 0; !rc && gc->m->o->bias_correction && gc->m->o->stats && k < gc->n_jobs; k++)
        if (gc->jobs[k].state == MS_PENDING)
            rc = correct_bias(gc, &gc->jobs[k]);
    for (int k = 0; !rc && k < gc->n_jobs; k++)
        if (gc->jobs[k].state == MS_PENDING)
            rc = emit_bias(gc, k);
    return rc;
}

/* ------------------------------------------------------------ reporting */

static int push_record(struct model_ctx *m, struct mq_qtensor_record **out)
{
    struct mq_quant_result *r = m->res;
    struct mq_qtensor_record *v = realloc(r->tensors, (size_t)(r->n_tensors + 1) * sizeof *v);
    if (!v)
        return oom(m);
    r->tensors = v;
    *out = &v[r->n_tensors++];
    memset(*out, 0, sizeof **out);
    return 0;
}

static int push_skipped(struct model_ctx *m, const char *graph, const char *name,
                        const char *reason)
{
    struct mq_quant_result *r = m->res;
    char *key = xasprintf("%s/%s", graph, name);
    if (!key)
        return oom(m);
    int seen = mq_strmap_get(m->skipped_of, key) >= 0;
    int rc = seen ? 0 : mq_strmap_put(m->skipped_of, key, 1);
    free(key);
    if (seen || rc)
        return rc ? oom(m) : 0;
    struct mq_skipped_tensor *v = realloc(r->skipped, (size_t)(r->n_skipped + 1) * sizeof *v);
    if (!v)
        return oom(m);
    r->skipped = v;
    struct mq_skipped_tensor *s = &v[r->n_skipped];
    s->name = strdup(name);
    s->graph = strdup(graph);
    s->reason = strdup(reason ? reason : "not quantized");
    r->n_skipped++;
    return s->name && s->graph && s->reason ? 0 : oom(m);
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

static int add_records(struct graph_ctx *gc)
{
    struct model_ctx *m = gc->m;
    for (int k = 0; k < gc->n_marks; k++) {
        const struct mark *mk = &gc->marks[k];
        if (mk->state == MS_FAILED) {
            if (push_skipped(m, gc->path, mk->name, mk->reason))
                return oom(m);
            continue;
        }
        if (mk->state != MS_DONE)
            continue;
        struct mq_qtensor_record *rec;
        if (push_record(m, &rec))
            return oom(m);
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
            return oom(m);
        if (mk->share_from && !(rec->shared_with = strdup(mk->share_from)))
            return oom(m);
        if (mk->note && !(rec->note = strdup(mk->note)))
            return oom(m);
        if (mk->adjusted.n) {
            rec->adjusted = malloc((size_t)mk->adjusted.n * sizeof *rec->adjusted);
            if (!rec->adjusted)
                return oom(m);
            memcpy(rec->adjusted, mk->adjusted.v, (size_t)mk->adjusted.n * sizeof(int));
            rec->n_adjusted = mk->adjusted.n;
        }
    }
    for (int k = 0; k < gc->n_jobs; k++) {
        const struct bias_job *j = &gc->jobs[k];
        if (j->state == MS_FAILED) {
            if (push_skipped(m, gc->path, j->bias, j->reason))
                return oom(m);
            continue;
        }
        if (j->state != MS_DONE || j->n_ch == 0)
            continue;
        struct mq_qtensor_record *rec;
        if (push_record(m, &rec))
            return oom(m);
        rec->name = strdup(j->bias);
        rec->graph = strdup(gc->path);
        rec->role = MQ_QT_BIAS;
        rec->qtype = MQ_DTYPE_INT32;
        const struct mark *w = find_mark(gc, j->weight);
        rec->axis = w->n_ch > 1 || w->axis >= 0 ? 0 : -1;
        rec->has_range = j->count > 0;
        for (int64_t e = 0; e < j->count; e++) {
            if (e == 0 || j->values[e] < rec->range_min)
                rec->range_min = j->values[e];
            if (e == 0 || j->values[e] > rec->range_max)
                rec->range_max = j->values[e];
        }
        if (!rec->name || !rec->graph || copy_channels(rec, j->n_ch, j->scales, NULL))
            return oom(m);
        if (j->clamped &&
            !(rec->note = xasprintf("%d values clamped to the int32 range", j->clamped)))
            return oom(m);
        if (j->beta != 1.0f && !rec->note &&
            !(rec->note = xasprintf("Gemm beta %g folded into the values", (double)j->beta)))
            return oom(m);
        if (j->corrected) {
            char *more = xasprintf("%s%scorrected for the weights' rounding (mean shift up to %g)",
                                   rec->note ? rec->note : "", rec->note ? "; " : "",
                                   j->max_shift);
            if (!more)
                return oom(m);
            free(rec->note);
            rec->note = more;
        }
    }
    return 0;
}

/* SELECTED nodes become QUANTIZED when any of their tensors was, else SKIPPED. */
static int finalize_statuses(struct graph_ctx *gc)
{
    struct model_ctx *m = gc->m;
    for (int i = 0; i < gc->n_nodes; i++) {
        struct mq_node_choice *c = mq_selection_find(m->sel, gc->g->node[i]);
        if (!c || gc->removed[i] || c->status != MQ_NODE_SELECTED)
            continue;
        int ok = 0;
        char *why = gc->node_notes[i] ? strdup(gc->node_notes[i]) : NULL;
        if (gc->node_notes[i] && !why)
            return oom(m);
        struct intvec *iv = &gc->node_marks[i];
        for (int k = 0; k < iv->n; k++) {
            const struct mark *mk = &gc->marks[iv->v[k]];
            if (mk->state == MS_DONE) {
                ok++;
                continue;
            }
            char *more = xasprintf("%s%s'%s' stays float: %s", why ? why : "", why ? "; " : "",
                                   mk->name, mk->reason ? mk->reason : "not quantized");
            free(why);
            if (!(why = more))
                return oom(m);
        }
        iv = &gc->node_jobs[i];
        for (int k = 0; k < iv->n; k++) {
            const struct bias_job *j = &gc->jobs[iv->v[k]];
            if (j->state == MS_DONE)
                continue;
            char *more = xasprintf("%s%sbias '%s' stays float: %s", why ? why : "",
                                   why ? "; " : "", j->bias, j->reason ? j->reason : "");
            free(why);
            if (!(why = more))
                return oom(m);
        }
        if (ok)
            mq_choice_set(c, MQ_NODE_QUANTIZED, why ? "%s" : NULL, why);
        else
            mq_choice_set(c, MQ_NODE_SKIPPED, "%s", why ? why : "nothing to quantize");
        free(why);
    }
    return 0;
}

/* ------------------------------------------------------------- assembling */

static int assemble(struct graph_ctx *gc)
{
    Onnx__GraphProto *g = gc->g;
    size_t n = (size_t)gc->prologue.n;
    for (int i = 0; i < gc->n_nodes; i++)
        if (!gc->removed[i])
            n += 1 + (size_t)gc->after[i].n;
    Onnx__NodeProto **nodes = malloc((n ? n : 1) * sizeof *nodes);
    if (!nodes)
        return oom(gc->m);
    int buried = gc->m->graveyard.n;
    for (int i = 0; i < gc->n_nodes; i++)
        if (gc->removed[i] && nodevec_push(&gc->m->graveyard, g->node[i])) {
            /* Taken back: the graph still owns them until the new list replaces it. */
            gc->m->graveyard.n = buried;
            free(nodes);
            return oom(gc->m);
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
    size_t w = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        int gone = 0;
        for (int v = 0; v < gc->n_vanished && !gone; v++)
            gone = strcmp(mq_str(g->value_info[i]->name), gc->vanished[v]) == 0;
        if (gone)
            onnx__value_info_proto__free_unpacked(g->value_info[i], NULL);
        else
            g->value_info[w++] = g->value_info[i];
    }
    g->n_value_info = w;
    int rc = mq_graph_toposort(g, gc->m->err);
    if (rc)
        mq_error_prefix(gc->m->err, "after quantization: ");
    return rc;
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
            nodevec_free_all(&gc->after[i]);
    }
    free(gc->node_marks);
    free(gc->node_jobs);
    free(gc->node_notes);
    free(gc->after);
    free(gc->removed);
    nodevec_free_all(&gc->prologue);
    for (int v = 0; v < gc->n_vanished; v++)
        free(gc->vanished[v]);
    free(gc->vanished);
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
    char *path = xasprintf("%s/%s", sw->prefix, attr_name);
    if (!path)
        return oom(sw->m);
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
        return oom(m);
    }
    rc = prune_islands(&gc);
    if (!rc)
        rc = adjust_ranges(&gc);
    for (int i = 0; !rc && i < n; i++)
        rc = plan_node(&gc, i);
    for (int k = 0; !rc && k < gc.n_marks; k++) {
        struct mark *mk = &gc.marks[k];
        if (mk->state != MS_PENDING)
            continue;
        if (mk->kind == MK_ACTIVATION)
            rc = quantize_activation(&gc, mk);
        else if (mk->kind == MK_SHARED)
            rc = quantize_shared(&gc, mk);
        else
            rc = quantize_initializer(&gc, mk);
    }
    if (!rc)
        rc = quantize_biases(&gc);
    for (int k = 0; !rc && k < gc.n_marks; k++) {
        struct mark *mk = &gc.marks[k];
        if (mk->state != MS_DONE)
            continue;
        rc = write_params(&gc, mk);
        if (!rc && mk->q_init)
            rc = write_weight(&gc, mk);
    }
    if (!rc)
        rc = finalize_statuses(&gc);
    if (!rc)
        rc = add_records(&gc);
    if (!rc)
        rc = assemble(&gc);
    if (!rc) {
        mq_graph_index_free(&gc.idx);
        rc = mq_graph_index_build(g, parent, &gc.idx, m->err);
    }
    for (size_t i = 0; !rc && i < g->n_node; i++) {
        const struct mq_node_choice *c = mq_selection_find(m->sel, g->node[i]);
        if (!c)
            continue; /* a node the rewrite added */
        char *prefix = *path ? xasprintf("%s/%s", path, c->name) : strdup(c->name);
        if (!prefix) {
            rc = oom(m);
            break;
        }
        struct sub_walk sw = {m, &gc.idx, prefix, depth};
        rc = mq_node_each_subgraph(g->node[i], process_subgraph, &sw);
        free(prefix);
    }
    graph_ctx_free(&gc, n);
    return rc;
}

/* ------------------------------------------------------------ cleaning up */

static int collect_refs(struct mq_strmap *refs, const Onnx__GraphProto *g, int depth);

static int collect_refs_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    struct {
        struct mq_strmap *refs;
        int depth;
    } *ctx = user;
    return collect_refs(ctx->refs, sub, ctx->depth + 1);
}

static int collect_refs(struct mq_strmap *refs, const Onnx__GraphProto *g, int depth)
{
    if (depth > 64)
        return -1;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        for (size_t k = 0; k < node->n_input; k++)
            if (node->input[k] && *node->input[k] && mq_strmap_put(refs, node->input[k], 1))
                return -1;
        struct {
            struct mq_strmap *refs;
            int depth;
        } ctx = {refs, depth};
        if (mq_node_each_subgraph(node, collect_refs_sub, &ctx))
            return -1;
    }
    for (size_t i = 0; i < g->n_output; i++)
        if (mq_strmap_put(refs, mq_str(g->output[i]->name), 1))
            return -1;
    return 0;
}

/* Float initializers the rewrite replaced and nothing reads any more are dropped. */
static int remove_unused(struct model_ctx *m)
{
    struct mq_strmap *refs = mq_strmap_new(), *drop = mq_strmap_new();
    Onnx__GraphProto **graphs = calloc((size_t)(m->n_cands ? m->n_cands : 1), sizeof *graphs);
    int n_graphs = 0, rc = 0;
    if (!refs || !drop || !graphs || collect_refs(refs, m->model->graph, 0)) {
        rc = oom(m);
        goto done;
    }
    for (int c = 0; c < m->n_cands; c++) {
        if (mq_strmap_get(refs, m->cands[c].name) >= 0)
            continue;
        char *key = xasprintf("%p/%s", (void *)m->cands[c].graph, m->cands[c].name);
        if (!key || mq_strmap_put(drop, key, 1)) {
            free(key);
            rc = oom(m);
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
            char *key = xasprintf("%p/%s", (void *)g, mq_str(g->initializer[i]->name));
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
            char *key = xasprintf("%p/%s", (void *)g, mq_str(g->input[i]->name));
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

/* -------------------------------------------------------------- entry points */

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
        if (mq_node_each_subgraph(g->node[i], find_quantized_sub, hit))
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
                                                     : oom(&m);
    if (!rc)
        rc = remove_unused(&m);
    mq_names_free(&m.names);
    mq_strmap_free(m.override_of);
    mq_strmap_free(m.cand_of);
    mq_strmap_free(m.skipped_of);
    free(m.overrides);
    for (int c = 0; c < m.n_cands; c++)
        free(m.cands[c].name);
    free(m.cands);
    nodevec_free_all(&m.graveyard);
    if (rc)
        mq_quant_result_free(result);
    return rc;
}

/* ------------------------------------------------------ what to calibrate */

struct observe_ctx {
    const struct mq_selection *sel;
    const struct mq_quant_options *o;
    struct mq_strmap *seen;
    char **names;
    int n, cap;
    struct mq_error *err;
};

static int observe_add(struct observe_ctx *oc, const struct mq_graph_index *idx, const char *name)
{
    if (!name || !*name || mq_strmap_get(oc->seen, name) >= 0)
        return 0;
    if (mq_graph_find_initializer(idx, name))
        return 0;
    int type = mq_graph_elem_type(idx, name);
    if (type != 0 && type != MQ_DTYPE_FLOAT)
        return 0;
    if (oc->n == oc->cap) {
        int cap = oc->cap ? oc->cap * 2 : 64;
        char **v = realloc(oc->names, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        oc->names = v;
        oc->cap = cap;
    }
    if (!(oc->names[oc->n] = strdup(name)) || mq_strmap_put(oc->seen, name, 1))
        return -1;
    oc->n++;
    return 0;
}

static int observe_graph(struct observe_ctx *oc, Onnx__GraphProto *g,
                         const struct mq_graph_index *parent, int depth);

struct observe_sub {
    struct observe_ctx *oc;
    const struct mq_graph_index *parent;
    int depth;
};

static int observe_subgraph(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    struct observe_sub *os = user;
    return observe_graph(os->oc, sub, os->parent, os->depth + 1);
}

static int observe_graph(struct observe_ctx *oc, Onnx__GraphProto *g,
                         const struct mq_graph_index *parent, int depth)
{
    if (depth > 64)
        return mq_error_set(oc->err, "subgraphs nest deeper than 64 levels");
    struct mq_graph_index idx;
    int rc = mq_graph_index_build(g, parent, &idx, oc->err);
    if (rc)
        return rc;
    char *keep = kept_nodes(&idx, oc->sel);
    if (!keep)
        rc = mq_error_code(oc->err, MQ_ERR_MEMORY, "out of memory");
    for (size_t i = 0; !rc && i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        if (keep[i]) {
            enum mq_op_role role = mq_op_role(mq_str(node->op_type));
            size_t n_in = 1, n_out = node->n_output > 0 ? 1 : 0;
            if (role == MQ_ROLE_WEIGHTED || is_op(node, "Add") || is_op(node, "Mul"))
                n_in = 2;
            else if (is_op(node, "Concat"))
                n_in = node->n_input;
            if (is_op(node, "Split"))
                n_out = node->n_output;
            for (size_t k = 0; !rc && k < n_in && k < node->n_input; k++)
                rc = observe_add(oc, &idx, node->input[k]) ? -1 : 0;
            for (size_t k = 0; !rc && k < n_out; k++)
                rc = observe_add(oc, &idx, node->output[k]) ? -1 : 0;
            if (rc)
                rc = mq_error_code(oc->err, MQ_ERR_MEMORY, "out of memory");
        }
        if (!rc) {
            struct observe_sub os = {oc, &idx, depth};
            rc = mq_node_each_subgraph(node, observe_subgraph, &os);
        }
    }
    free(keep);
    mq_graph_index_free(&idx);
    return rc;
}

int mq_qdq_tensors_to_observe(const Onnx__ModelProto *model, const struct mq_selection *sel,
                              const struct mq_quant_options *o, char ***names, int *n,
                              struct mq_error *err)
{
    struct observe_ctx oc = {sel, o, mq_strmap_new(), NULL, 0, 0, err};
    *names = NULL;
    *n = 0;
    if (!oc.seen)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int rc = model->graph ? observe_graph(&oc, model->graph, NULL, 0) : 0;
    mq_strmap_free(oc.seen);
    if (rc) {
        mq_string_list_free(oc.names, oc.n);
        return rc;
    }
    *names = oc.names;
    *n = oc.n;
    return MQ_OK;
}

void mq_string_list_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
