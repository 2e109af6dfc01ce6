/*
 * Running two models on the same samples and measuring how far B's tensors are from A's, per
 * output and per layer (`onnx-monoquant compare`; see divergence.h).
 */
#include "report/divergence.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/reader.h"
#include "interp/plan.h"
#include "quant/graph.h"
#include "report/divergence_pass.h"

/* ------------------------------------------------------- names across models */

struct name_entry {
    char *key;       /* the name in the float model */
    char *observed;  /* the tensor that holds its value in this model */
    int from_dq;
};

struct name_map {
    struct name_entry *v;
    int n, cap;
    struct mq_strmap *by_key;
    /* QuantizeLinear output -> its input, to see through Q/DQ pairs. */
    struct mq_strmap *q_outputs;
    char **q_inputs;
    int n_q, cap_q;
};

static void name_map_free(struct name_map *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].observed);
    }
    free(m->v);
    for (int i = 0; i < m->n_q; i++)
        free(m->q_inputs[i]);
    free(m->q_inputs);
    mq_strmap_free(m->by_key);
    mq_strmap_free(m->q_outputs);
    memset(m, 0, sizeof *m);
}

static int name_map_add(struct name_map *m, const char *key, const char *observed, int from_dq)
{
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 64;
        struct name_entry *v = realloc(m->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        m->v = v;
        m->cap = cap;
    }
    struct name_entry *e = &m->v[m->n];
    e->key = strdup(key);
    e->observed = strdup(observed);
    e->from_dq = from_dq;
    if (!e->key || !e->observed || mq_strmap_put(m->by_key, key, m->n)) {
        free(e->key);
        free(e->observed);
        return -1;
    }
    m->n++;
    return 0;
}

static int is_op(const Onnx__NodeProto *node, const char *op)
{
    const char *domain = mq_str(node->domain);
    return strcmp(mq_str(node->op_type), op) == 0 &&
           (!*domain || strcmp(domain, "ai.onnx") == 0 || strcmp(domain, "com.microsoft") == 0);
}

typedef int (*node_fn)(struct name_map *m, const Onnx__NodeProto *node);

/* Calls fn on every node of g and of its subgraphs, each node before its subgraphs. */
static int walk_nodes(struct name_map *m, const Onnx__GraphProto *g, node_fn fn, int depth)
{
    if (!g || depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        if (fn(m, node))
            return -1;
        for (size_t a = 0; a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (walk_nodes(m, attr->g, fn, depth + 1))
                return -1;
            for (size_t k = 0; k < attr->n_graphs; k++)
                if (walk_nodes(m, attr->graphs[k], fn, depth + 1))
                    return -1;
        }
    }
    return 0;
}

static int collect_outputs(struct name_map *m, const Onnx__NodeProto *node)
{
    if (is_op(node, "QuantizeLinear") && node->n_input > 0 && node->n_output > 0 &&
        node->input[0] && *node->input[0] && node->output[0] && *node->output[0]) {
        if (m->n_q == m->cap_q) {
            int cap = m->cap_q ? m->cap_q * 2 : 16;
            char **v = realloc(m->q_inputs, (size_t)cap * sizeof *v);
            if (!v)
                return -1;
            m->q_inputs = v;
            m->cap_q = cap;
        }
        if (!(m->q_inputs[m->n_q] = strdup(node->input[0])))
            return -1;
        if (mq_strmap_put(m->q_outputs, node->output[0], m->n_q++))
            return -1;
    }
    for (size_t o = 0; o < node->n_output; o++) {
        const char *name = node->output[o];
        if (name && *name && mq_strmap_get(m->by_key, name) < 0 &&
            name_map_add(m, name, name, 0))
            return -1;
    }
    return 0;
}

/* The value a consumer of t sees in a QDQ model is the output of DequantizeLinear(Q(t)). */
static int see_through_qdq(struct name_map *m, const Onnx__NodeProto *node)
{
    if (!is_op(node, "DequantizeLinear") || node->n_input < 1 || node->n_output < 1 ||
        !node->input[0] || !node->output[0] || !*node->output[0])
        return 0;
    int q = mq_strmap_get(m->q_outputs, node->input[0]);
    if (q < 0)
        return 0;
    const char *key = m->q_inputs[q];
    int e = mq_strmap_get(m->by_key, key);
    if (e < 0)
        return name_map_add(m, key, node->output[0], 1);
    if (m->v[e].from_dq)
        return 0;
    char *observed = strdup(node->output[0]);
    if (!observed)
        return -1;
    free(m->v[e].observed);
    m->v[e].observed = observed;
    m->v[e].from_dq = 1;
    return 0;
}

static int name_map_build(struct name_map *m, const Onnx__ModelProto *model)
{
    memset(m, 0, sizeof *m);
    m->by_key = mq_strmap_new();
    m->q_outputs = mq_strmap_new();
    if (!m->by_key || !m->q_outputs || walk_nodes(m, model->graph, collect_outputs, 0) ||
        walk_nodes(m, model->graph, see_through_qdq, 0)) {
        name_map_free(m);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ the pairs */

void mq_divergence_producer_free(struct mq_divergence_producer *t)
{
    free(t->node);
    free(t->op_type);
    for (int k = 0; k < t->n_inputs; k++)
        free(t->inputs[k]);
    free(t->inputs);
    memset(t, 0, sizeof *t);
}

static void ctx_free(struct mq_divergence_pairs *c)
{
    for (int i = 0; i < c->n_pairs; i++) {
        struct mq_divergence_pair *p = &c->pairs[i];
        free(p->layer.tensor_a);
        free(p->layer.tensor_b);
        free(p->layer.node);
        free(p->layer.op_type);
    }
    free(c->pairs);
    for (int i = 0; i < c->n_produced; i++)
        mq_divergence_producer_free(&c->produced[i]);
    free(c->produced);
    mq_strmap_free(c->produced_by_name);
    mq_strmap_free(c->by_a);
    mq_strmap_free(c->by_b);
    memset(c, 0, sizeof *c);
}

static int ctx_build(struct mq_divergence_pairs *c, const struct mq_model *a,
                     const struct mq_model *b, int *n_matched, struct mq_error *err)
{
    struct name_map ma, mb;
    memset(c, 0, sizeof *c);
    if (name_map_build(&ma, a->proto))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (name_map_build(&mb, b->proto)) {
        name_map_free(&ma);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    int rc = MQ_OK;
    c->by_a = mq_strmap_new();
    c->by_b = mq_strmap_new();
    c->produced_by_name = mq_strmap_new();
    c->pairs = calloc((size_t)ma.n + 1, sizeof *c->pairs);
    if (!c->by_a || !c->by_b || !c->produced_by_name || !c->pairs)
        rc = MQ_ERR_MEMORY;
    for (int i = 0; rc == MQ_OK && i < ma.n; i++) {
        int j = mq_strmap_get(mb.by_key, ma.v[i].key);
        if (j < 0)
            continue;
        const char *an = ma.v[i].observed, *bn = mb.v[j].observed;
        /* One pair per tensor on each side: t and t_QuantizeLinear_Input may both lead to t. */
        if (mq_strmap_get(c->by_a, an) >= 0 || mq_strmap_get(c->by_b, bn) >= 0)
            continue;
        struct mq_divergence_pair *p = &c->pairs[c->n_pairs];
        p->layer.tensor_a = strdup(an);
        p->layer.tensor_b = strdup(bn);
        mq_error_stats_init(&p->layer.stats);
        p->layer.order = -1;
        c->n_pairs++;
        if (!p->layer.tensor_a || !p->layer.tensor_b || mq_strmap_put(c->by_a, an, c->n_pairs - 1) ||
            mq_strmap_put(c->by_b, bn, c->n_pairs - 1))
            rc = MQ_ERR_MEMORY;
    }
    *n_matched = c->n_pairs;
    name_map_free(&ma);
    name_map_free(&mb);
    if (rc) {
        ctx_free(c);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    return MQ_OK;
}

/* ------------------------------------------------------------- running */

/* B's input k is A's input map[k]; the two may differ in float width. */
static int map_inputs(const struct mq_plan *pa, const struct mq_plan *pb, int *map,
                      struct mq_error *err)
{
    int na = mq_plan_input_count(pa), nb = mq_plan_input_count(pb);
    for (int k = 0; k < nb; k++) {
        const char *name = mq_str(mq_plan_input(pb, k)->name);
        map[k] = -1;
        for (int i = 0; i < na; i++)
            if (strcmp(name, mq_str(mq_plan_input(pa, i)->name)) == 0)
                map[k] = i;
        if (map[k] < 0)
            return mq_error_set(err, "model B takes input '%s', which model A does not have",
                                name);
    }
    return MQ_OK;
}

static int match_outputs(const struct mq_plan *pa, const struct mq_plan *pb, int *map,
                         struct mq_error *err)
{
    int na = mq_plan_output_count(pa), nb = mq_plan_output_count(pb);
    char missing[512] = "";
    int n_missing = 0;
    for (int i = 0; i < na; i++) {
        const char *name = mq_str(mq_plan_output(pa, i)->name);
        map[i] = -1;
        for (int k = 0; k < nb; k++)
            if (strcmp(name, mq_str(mq_plan_output(pb, k)->name)) == 0)
                map[i] = k;
        if (map[i] < 0 && n_missing++ < 4) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, "%s'%s'", len ? ", " : "", name);
        }
    }
    if (n_missing || na != nb) {
        char b_names[512] = "";
        for (int k = 0; k < nb && k < 4; k++) {
            size_t len = strlen(b_names);
            snprintf(b_names + len, sizeof b_names - len, "%s'%s'", k ? ", " : "",
                     mq_str(mq_plan_output(pb, k)->name));
        }
        if (n_missing)
            return mq_error_set(err, "the graph outputs differ: model B has no output %s%s "
                                "(its outputs: %s%s); compare needs two versions of one model",
                                missing, n_missing > 4 ? ", ..." : "", b_names,
                                nb > 4 ? ", ..." : "");
        return mq_error_set(err, "the graph outputs differ: model A has %d, model B has %d "
                            "(%s%s)", na, nb, b_names, nb > 4 ? ", ..." : "");
    }
    return MQ_OK;
}

/* Upstream nodes folded into a matched tensor's producer (Conv+Relu), nearest last. */
struct chain {
    const struct mq_divergence_producer *nodes[8];
    int n;
};

/*
 * Relative noise of the noisiest input reaching the producer of tensor `name`
 * of A.  An input B has no counterpart for (a Conv output whose Relu the
 * quantizer folded) is looked through to its own producer's inputs, and that
 * producer joins the chain of nodes the error is charged to.
 */
static double input_noise(const struct mq_divergence_pairs *c, const char *name, struct chain *chain, int depth)
{
    int t = mq_strmap_get(c->produced_by_name, name);
    if (t < 0 || depth > 8)
        return 0;
    const struct mq_divergence_producer *at = &c->produced[t];
    double worst = 0;
    for (int k = 0; k < at->n_inputs; k++) {
        const char *in = at->inputs[k];
        int j = mq_strmap_get(c->by_a, in);
        double r = 0;
        if (j >= 0 && c->pairs[j].layer.stats.elements > 0) {
            r = mq_error_stats_relative_noise(&c->pairs[j].layer.stats);
        } else {
            int u = mq_strmap_get(c->produced_by_name, in);
            if (u < 0)
                continue;
            if (chain && chain->n < 8) {
                int dup = 0;
                for (int x = 0; x < chain->n; x++)
                    dup |= strcmp(chain->nodes[x]->node, c->produced[u].node) == 0;
                if (!dup)
                    chain->nodes[chain->n++] = &c->produced[u];
            }
            r = input_noise(c, in, chain, depth + 1);
        }
        if (r > worst)
            worst = r;
    }
    return worst;
}

/* Joins the chain's names and this one: "conv1+relu1" when conv1's output has no counterpart. */
static char *join_chain(const struct chain *chain, int op_types, const char *last)
{
    size_t len = strlen(last) + 1;
    for (int i = 0; i < chain->n; i++)
        len += strlen(op_types ? chain->nodes[i]->op_type : chain->nodes[i]->node) + 1;
    char *label = malloc(len);
    if (!label)
        return NULL;
    label[0] = '\0';
    for (int i = chain->n - 1; i >= 0; i--) {
        strcat(label, op_types ? chain->nodes[i]->op_type : chain->nodes[i]->node);
        strcat(label, "+");
    }
    strcat(label, last);
    return label;
}

static int charge_chain(struct mq_divergence_pair *p, const struct chain *chain)
{
    if (chain->n == 0 || !p->layer.node || !p->layer.op_type)
        return 0;
    char *node = join_chain(chain, 0, p->layer.node), *op = join_chain(chain, 1, p->layer.op_type);
    if (!node || !op) {
        free(node);
        free(op);
        return -1;
    }
    free(p->layer.node);
    free(p->layer.op_type);
    p->layer.node = node;
    p->layer.op_type = op;
    return 0;
}

static int layer_order(const void *x, const void *y)
{
    const struct mq_divergence_layer *a = x, *b = y;
    if (a->node_sqnr_db != b->node_sqnr_db)
        return a->node_sqnr_db < b->node_sqnr_db ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Moves the compared pairs into the result, worst node first. */
static int finish_layers(struct mq_divergence_pairs *c, struct mq_divergence_result *r)
{
    r->layers = calloc((size_t)c->n_pairs + 1, sizeof *r->layers);
    if (!r->layers)
        return -1;
    /* Every input's noise first: moving a pair out below clears it. */
    for (int i = 0; i < c->n_pairs; i++) {
        struct mq_divergence_pair *p = &c->pairs[i];
        struct chain chain = {{0}, 0};
        p->layer.input_relative_noise = input_noise(c, p->layer.tensor_a, &chain, 0);
        if (charge_chain(p, &chain))
            return -1;
    }
    for (int i = 0; i < c->n_pairs; i++) {
        struct mq_divergence_pair *p = &c->pairs[i];
        if (p->layer.stats.elements == 0 && p->layer.stats.nonfinite_mismatch == 0 &&
            p->layer.shape_mismatches == 0)
            continue;
        double added = mq_error_stats_relative_noise(&p->layer.stats) -
                       p->layer.input_relative_noise;
        p->layer.node_sqnr_db = added > 0 ? -10.0 * log10(added) : INFINITY;
        if (p->layer.stats.nonfinite_mismatch || p->layer.shape_mismatches)
            p->layer.node_sqnr_db = -INFINITY;
        r->layers[r->n_layers++] = p->layer;
        memset(&p->layer, 0, sizeof p->layer);
    }
    if (r->n_layers > 1)
        qsort(r->layers, (size_t)r->n_layers, sizeof *r->layers, layer_order);
    return 0;
}

/* Whether the cache holds A's outputs for every sample it was made for: A then never runs. */
static int cache_complete(const struct mq_divergence_cache *cache)
{
    if (!cache || !cache->filled || cache->n_samples <= 0)
        return 0;
    for (int64_t i = 0; i < cache->n_samples; i++)
        if (!cache->filled[i])
            return 0;
    return 1;
}

int mq_divergence_compare(const struct mq_model *a, const struct mq_model *b,
                      const struct mq_divergence_options *o, struct mq_divergence_result *r,
                      struct mq_error *err)
{
    memset(r, 0, sizeof *r);
    struct mq_plan *pa = NULL, *pb = NULL;
    struct mq_calib_source *source = NULL;
    struct mq_divergence_pairs c;
    memset(&c, 0, sizeof c);
    int *in_map = NULL, *out_map = NULL;
    const Onnx__ValueInfoProto **infos = NULL;
    /* Graph outputs alone: fused operators and packed weights are faster, and differ from the
       plain plan by float rounding only.  Per layer, every tensor must be observed: packed
       weights hide none, fusion would. */
    struct mq_plan_options fast = {.fuse = 1, .pack_weights = 1};
    const struct mq_plan_options *plan_options = o->per_layer ? &MQ_PLAN_OBSERVED : &fast;
    /* A whose outputs are all cached only names the inputs and outputs: no packed weights. */
    int rc = mq_plan_build_with_options(
        a, !o->per_layer && cache_complete(o->reference) ? NULL : plan_options, &pa, err);
    if (rc) {
        mq_error_prefix(err, "model A: ");
        return rc;
    }
    if ((rc = mq_plan_build_with_options(b, plan_options, &pb, err))) {
        mq_error_prefix(err, "model B: ");
        goto out;
    }
    int na_in = mq_plan_input_count(pa), nb_in = mq_plan_input_count(pb);
    int na_out = mq_plan_output_count(pa);
    in_map = calloc((size_t)nb_in + 1, sizeof *in_map);
    out_map = calloc((size_t)na_out + 1, sizeof *out_map);
    infos = calloc((size_t)na_in + 1, sizeof *infos);
    r->outputs = calloc((size_t)na_out + 1, sizeof *r->outputs);
    if (!in_map || !out_map || !infos || !r->outputs) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto out;
    }
    if ((rc = match_outputs(pa, pb, out_map, err)) || (rc = map_inputs(pa, pb, in_map, err)))
        goto out;
    for (int i = 0; i < na_out; i++) {
        if (!(r->outputs[i].name = strdup(mq_str(mq_plan_output(pa, i)->name)))) {
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            goto out;
        }
        r->n_outputs++;
        mq_error_stats_init(&r->outputs[i].stats);
        r->outputs[i].class_scores = 1;
    }
    for (int i = 0; i < na_in; i++)
        infos[i] = mq_plan_input(pa, i);
    struct mq_calib_open_options open = {o->limit, 0, 0, o->preprocess};
    if ((rc = mq_calib_source_open_with(o->inputs_dir, infos, na_in, &open, &source, err)))
        goto out;
    if (o->per_layer && (rc = ctx_build(&c, a, b, &r->n_matched_names, err)))
        goto out;
    struct mq_divergence_pass pass = {o, pa, pb, source, in_map, out_map,
                                      o->per_layer ? &c : NULL, r};
    rc = mq_divergence_pass_run(&pass, err);
    if (rc == MQ_OK && o->per_layer && finish_layers(&c, r))
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
out:
    ctx_free(&c);
    mq_calib_source_free(source);
    free(in_map);
    free(out_map);
    free(infos);
    mq_plan_free(pa);
    mq_plan_free(pb);
    if (rc)
        mq_divergence_result_free(r);
    return rc;
}

void mq_divergence_result_free(struct mq_divergence_result *r)
{
    for (int i = 0; i < r->n_outputs; i++)
        free(r->outputs[i].name);
    free(r->outputs);
    for (int i = 0; i < r->n_layers; i++) {
        free(r->layers[i].tensor_a);
        free(r->layers[i].tensor_b);
        free(r->layers[i].node);
        free(r->layers[i].op_type);
    }
    free(r->layers);
    memset(r, 0, sizeof *r);
}
