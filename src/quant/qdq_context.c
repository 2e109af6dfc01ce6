/*
 * What the QDQ passes share: ranges (calibrated or overridden), the
 * statistics rule, marks by name, fresh names, node placement, encoding
 * quantized values into initializers, and the cleanup candidates.
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

int mq_qdq_intvec_push(struct intvec *iv, int x)
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

int mq_qdq_nodevec_push(struct nodevec *nv, Onnx__NodeProto *node)
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

void mq_qdq_nodevec_free_all(struct nodevec *nv)
{
    for (int i = 0; i < nv->n; i++)
        onnx__node_proto__free_unpacked(nv->v[i], NULL);
    free(nv->v);
    memset(nv, 0, sizeof *nv);
}


static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Raw little-endian bytes of integer values of an ONNX type (4-bit packed two a byte). */
int mq_qdq_encode_ints(int dtype, const int32_t *q, int64_t n, ProtobufCBinaryData *out)
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

int mq_qdq_encode_floats(const float *v, int64_t n, ProtobufCBinaryData *out)
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


int mq_qdq_oom(struct model_ctx *m)
{
    return mq_error_code(m->err, MQ_ERR_MEMORY, "out of memory while quantizing");
}

int mq_qdq_add_candidate(struct model_ctx *m, Onnx__GraphProto *g, const char *name)
{
    char *key = mq_str_printf("%p/%s", (void *)g, name);
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

int mq_qdq_set_override(struct model_ctx *m, const char *name, float lo, float hi)
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
int mq_qdq_get_range(const struct model_ctx *m, const char *name, float *lo, float *hi,
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
int mq_qdq_stats_reject(const struct model_ctx *m, const char *name, char **why)
{
    const struct mq_quant_options *o = m->o;
    if (!o->stats || !(o->min_sample_sqnr_db > 0.0))
        return 0;
    int64_t sample = 0;
    double db = mq_quant_stats_worst_sqnr(o->stats, name, &sample);
    if (isnan(db) || db >= o->min_sample_sqnr_db)
        return 0;
    if (why)
        *why = mq_str_printf("on calibration sample %lld its %d-bit quantization keeps %.1f dB "
                             "of SQNR (below %g dB): one scale cannot serve its quiet and its "
                             "loud samples alike",
                             (long long)sample, mq_qtype_bits(o->activation_type), db,
                             o->min_sample_sqnr_db);
    return 1;
}


struct mark *mq_qdq_find_mark(const struct graph_ctx *gc, const char *name)
{
    int k = mq_strmap_get(gc->mark_of, name);
    return k >= 0 ? &gc->marks[k] : NULL;
}

int mq_qdq_is_quantized(const struct graph_ctx *gc, const char *name)
{
    const struct mark *mk = mq_qdq_find_mark(gc, name);
    return mk && mk->state != MS_FAILED;
}

/* The graph (this one or an enclosing one) that holds an initializer. */
Onnx__GraphProto *mq_qdq_initializer_owner(const struct mq_graph_index *index, const char *name)
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


/* A scalar float constant (initializer of this scope or above); 0 when it is not one. */
int mq_qdq_constant_scalar(const struct graph_ctx *gc, const char *name, float *out)
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

char *mq_qdq_fresh(struct graph_ctx *gc, const char *base, const char *suffix)
{
    char *want = mq_str_printf("%s%s", base, suffix);
    if (!want)
        return NULL;
    char *name = mq_names_fresh(&gc->m->names, want);
    free(want);
    return name;
}

/* Whether a node the rewrite quantizes reads `tensor`, directly or after one Relu/Clip. */
static int feeds_selected(const struct graph_ctx *gc, const char *tensor, int depth)
{
    const struct mq_tensor_info *t = mq_graph_tensor(&gc->idx, tensor);
    for (int k = 0; t && k < t->n_consumers; k++) {
        const Onnx__NodeProto *node = gc->g->node[t->consumers[k].node];
        const struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
        if (c && c->status == MQ_NODE_SELECTED && mq_op_role(mq_str(node->op_type)) != MQ_ROLE_ACTIVATION)
            return 1;
        if (depth == 0 && mq_node_is_onnx(node) && node->n_output > 0 &&
            mq_op_role(mq_str(node->op_type)) == MQ_ROLE_ACTIVATION &&
            feeds_selected(gc, mq_str(node->output[0]), 1))
            return 1;
    }
    return 0;
}

/* Data-movement ops onnxruntime moves a DequantizeLinear across (MaxPool, Reshape, ...) are
   followed this many deep to the float node they feed. */
#define MAX_FLOAT_PATH 4

static int float_reader_at(const struct graph_ctx *gc, int k, const char *tensor, int depth)
{
    const Onnx__NodeProto *node = gc->g->node[k];
    const struct mq_op_rule *r = mq_node_is_onnx(node) ? mq_op_rule_find(mq_str(node->op_type)) : NULL;
    const char *data = mq_graph_input_at(node, 0);
    const struct mq_node_choice *c = mq_selection_find(gc->m->sel, node);
    if (!r || !data || strcmp(data, tensor) != 0 || (c && c->status != MQ_NODE_SKIPPED) ||
        node->n_output < 1 || !*mq_str(node->output[0]))
        return 0;
    const char *out = mq_str(node->output[0]);
    if (r->float_reads_float)
        return feeds_selected(gc, out, 0);
    if (mq_op_rule_node_role(r, node) != MQ_ROLE_SHARED || depth >= MAX_FLOAT_PATH)
        return 0;
    /* A float MaxPool/Reshape/... before such a node: onnxruntime would move the
       DequantizeLinear after it, so it must read float data too. */
    const struct mq_tensor_info *t = mq_graph_tensor(&gc->idx, out);
    for (int j = 0; t && j < t->n_consumers; j++)
        if (!t->consumers[j].implicit && float_reader_at(gc, t->consumers[j].node, out, depth + 1))
            return 1;
    return 0;
}

int mq_qdq_float_reader(const struct graph_ctx *gc, int k, const char *tensor)
{
    return float_reader_at(gc, k, tensor, 0);
}

/* Every direct reader of `from` in this graph reads `to` instead, but the float readers. */
int mq_qdq_rename_consumers(struct graph_ctx *gc, const char *from, const char *to)
{
    const struct mq_tensor_info *t = mq_graph_tensor(&gc->idx, from);
    if (!t)
        return 0;
    for (int k = 0; k < t->n_consumers; k++) {
        if (t->consumers[k].implicit || gc->removed[t->consumers[k].node] ||
            mq_qdq_float_reader(gc, t->consumers[k].node, from))
            continue;
        if (mq_graph_node_rename_input(gc->g->node[t->consumers[k].node], from, to))
            return mq_qdq_oom(gc->m);
    }
    return 0;
}

int mq_qdq_place(struct graph_ctx *gc, int producer, Onnx__NodeProto *node)
{
    struct nodevec *nv = producer >= 0 ? &gc->after[producer] : &gc->prologue;
    if (mq_qdq_nodevec_push(nv, node)) {
        onnx__node_proto__free_unpacked(node, NULL);
        return mq_qdq_oom(gc->m);
    }
    return 0;
}

int mq_qdq_fail_mark(struct graph_ctx *gc, struct mark *mk, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(mk->reason);
    mk->reason = mq_str_vprintf(fmt, ap);
    if (!mk->reason) {
        va_end(ap);
        return mq_qdq_oom(gc->m);
    }
    va_end(ap);
    mk->state = MS_FAILED;
    return 0;
}



static int query_constant_scalar(const void *user, const char *name, float *out)
{
    return mq_qdq_constant_scalar(user, name, out);
}

void mq_qdq_op_query(const struct graph_ctx *gc, struct mq_op_query *q)
{
    q->opset = gc->m->opset;
    q->constant_scalar = query_constant_scalar;
    q->user = gc;
}
