/*
 * Multiply-accumulates per weighted node (quant/check_macs.h), counted from
 * the shapes of one sample's run: every tensor's shape is recorded as it is
 * produced, and a weighted node's count is computed when its output appears.
 */
#include "quant/check_macs.h"

#include <stdlib.h>
#include <string.h>

#include "calib/reader.h"
#include "interp/plan.h"
#include "interp/tensor.h"
#include "quant/graph.h"

struct shape {
    int rank;
    int64_t dims[MQ_MAX_RANK];
};

struct mq_macs {
    struct mq_strmap *shape_index;   /* tensor name -> shapes[] */
    struct shape *shapes;
    int n_shapes, cap_shapes;
    struct mq_strmap *node_index;    /* first output -> macs[] */
    int64_t *macs;
    int n_macs, cap_macs;
};

void mq_check_macs_free(struct mq_macs *m)
{
    if (!m)
        return;
    mq_strmap_free(m->shape_index);
    mq_strmap_free(m->node_index);
    free(m->shapes);
    free(m->macs);
    free(m);
}

static int put_shape(struct mq_macs *m, const char *name, int rank, const int64_t *dims)
{
    if (!name || !*name || rank < 0 || rank > MQ_MAX_RANK || mq_strmap_get(m->shape_index, name) >= 0)
        return 0;
    if (m->n_shapes == m->cap_shapes) {
        int cap = m->cap_shapes ? 2 * m->cap_shapes : 64;
        struct shape *v = realloc(m->shapes, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        m->shapes = v;
        m->cap_shapes = cap;
    }
    struct shape *s = &m->shapes[m->n_shapes];
    s->rank = rank;
    for (int i = 0; i < rank; i++)
        s->dims[i] = dims[i];
    if (mq_strmap_put(m->shape_index, name, m->n_shapes))
        return -1;
    m->n_shapes++;
    return 0;
}

static int put_proto_shape(struct mq_macs *m, const Onnx__TensorProto *t)
{
    if (!t || t->n_dims > MQ_MAX_RANK)
        return 0;
    return put_shape(m, t->name, (int)t->n_dims, t->dims);
}

/* Initializers and Constant values of g and its subgraphs: plan constants no observer sees. */
static int record_constants(struct mq_macs *m, const Onnx__GraphProto *g, int depth)
{
    if (!g || depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (put_proto_shape(m, g->initializer[i]))
            return -1;
    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        for (size_t a = 0; a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (strcmp(mq_str(node->op_type), "Constant") == 0 && attr->t && node->n_output > 0 &&
                attr->t->n_dims <= MQ_MAX_RANK &&
                put_shape(m, node->output[0], (int)attr->t->n_dims, attr->t->dims))
                return -1;
            if (record_constants(m, attr->g, depth + 1))
                return -1;
            for (size_t k = 0; k < attr->n_graphs; k++)
                if (record_constants(m, attr->graphs[k], depth + 1))
                    return -1;
        }
    }
    return 0;
}

static const struct shape *find_shape(const struct mq_macs *m, const char *name)
{
    int i = name ? mq_strmap_get(m->shape_index, name) : -1;
    return i < 0 ? NULL : &m->shapes[i];
}

static int64_t shape_count(const struct shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

static int attr_int(const Onnx__NodeProto *node, const char *name, int fallback)
{
    for (size_t a = 0; a < node->n_attribute; a++)
        if (strcmp(mq_str(node->attribute[a]->name), name) == 0)
            return (int)node->attribute[a]->i;
    return fallback;
}

/*
 * MACs of a weighted node from its shapes: per output element, the taps of
 * one filter (Conv), the inner dimension (MatMul, Gemm); per input element,
 * the outputs it scatters to (ConvTranspose).  0 when a shape is missing.
 */
static int64_t node_macs(const struct mq_macs *m, const Onnx__NodeProto *node,
                         const struct mq_tensor *out)
{
    const char *op = mq_str(node->op_type);
    if (node->n_input < 2)
        return 0;
    const struct shape *x = find_shape(m, node->input[0]), *w = find_shape(m, node->input[1]);
    if (!x || !w || w->rank < 1)
        return 0;
    if (strcmp(op, "Conv") == 0)
        return w->dims[0] > 0 ? out->count * (shape_count(w) / w->dims[0]) : 0;
    if (strcmp(op, "ConvTranspose") == 0)
        return w->dims[0] > 0 ? shape_count(x) * (shape_count(w) / w->dims[0]) : 0;
    if (strcmp(op, "MatMul") == 0)
        return x->rank >= 1 ? out->count * x->dims[x->rank - 1] : 0;
    if (strcmp(op, "Gemm") == 0 && x->rank == 2)
        return out->count * x->dims[attr_int(node, "transA", 0) ? 0 : 1];
    return 0;
}

static int observe(void *user, const struct mq_kernel_node *producer, const char *name,
                   const struct mq_tensor *value, struct mq_error *err)
{
    struct mq_macs *m = user;
    if (put_shape(m, name, value->rank, value->dims))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    const Onnx__NodeProto *node = producer->proto;
    if (!node || node->n_output < 1 || !node->output[0] || strcmp(node->output[0], name) != 0 ||
        mq_strmap_get(m->node_index, name) >= 0)
        return MQ_OK;
    int64_t macs = node_macs(m, node, value);
    if (macs <= 0)
        return MQ_OK;
    if (m->n_macs == m->cap_macs) {
        int cap = m->cap_macs ? 2 * m->cap_macs : 64;
        int64_t *v = realloc(m->macs, (size_t)cap * sizeof *v);
        if (!v)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        m->macs = v;
        m->cap_macs = cap;
    }
    m->macs[m->n_macs] = macs;
    if (mq_strmap_put(m->node_index, name, m->n_macs))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    m->n_macs++;
    return MQ_OK;
}

int mq_check_count_macs(const struct mq_model *model, const char *samples_dir,
                        struct mq_macs **out, struct mq_error *err)
{
    *out = NULL;
    struct mq_macs *m = calloc(1, sizeof *m);
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    struct mq_tensor *inputs = NULL, *outputs = NULL;
    const Onnx__ValueInfoProto **infos = NULL;
    int n_in = 0, n_out = 0, rc = MQ_OK;
    if (!m || !(m->shape_index = mq_strmap_new()) || !(m->node_index = mq_strmap_new()) ||
        record_constants(m, model->proto->graph, 0))
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (rc == MQ_OK)
        rc = mq_plan_build(model, &plan, err);
    if (rc == MQ_OK) {
        n_in = mq_plan_input_count(plan);
        n_out = mq_plan_output_count(plan);
        inputs = calloc((size_t)n_in + 1, sizeof *inputs);
        outputs = calloc((size_t)n_out + 1, sizeof *outputs);
        infos = calloc((size_t)n_in + 1, sizeof *infos);
        if (!inputs || !outputs || !infos)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    for (int i = 0; rc == MQ_OK && i < n_in; i++)
        infos[i] = mq_plan_input(plan, i);
    if (rc == MQ_OK)
        rc = mq_calib_source_open(samples_dir, infos, n_in, 1, &source, err);
    if (rc == MQ_OK && mq_calib_source_count(source) < 1)
        rc = mq_error_set(err, "%s: no samples", samples_dir);
    if (rc == MQ_OK)
        rc = mq_calib_source_load(source, 0, inputs, err);
    for (int i = 0; rc == MQ_OK && i < n_in; i++)
        if (put_shape(m, mq_str(infos[i]->name), inputs[i].rank, inputs[i].dims))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (rc == MQ_OK) {
        struct mq_run_options ro = {observe, m};
        rc = mq_plan_run(plan, inputs, n_in, outputs, n_out, &ro, err);
    }
    for (int i = 0; inputs && i < n_in; i++)
        mq_tensor_free(&inputs[i]);
    for (int i = 0; outputs && i < n_out; i++)
        mq_tensor_free(&outputs[i]);
    free(inputs);
    free(outputs);
    free(infos);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    if (rc) {
        mq_check_macs_free(m);
        mq_error_prefix(err, "counting multiply-accumulates: ");
        return rc;
    }
    *out = m;
    return MQ_OK;
}

int64_t mq_check_node_macs(const struct mq_macs *m, const char *output)
{
    int i = m && output ? mq_strmap_get(m->node_index, output) : -1;
    return i < 0 ? 0 : m->macs[i];
}
