/*
 * Cross-layer range equalization of Conv -> Conv pairs (quant/equalize.h):
 * finding the pairs whose weights only they read, measuring the tensors
 * between them per channel on the samples, and rescaling those channels.
 */
#include "quant/equalize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"
#include "core/limits.h"
#include "interp/plan.h"
#include "core/tensor.h"
#include "model/tensor_proto.h"
#include "graph/edit.h"
#include "quant/graph.h"

/*
 * A pair is equalized only when its loudest channel reaches this many times the median
 * channel's range: the per-tensor scale then leaves the typical channel under 5 of its 8
 * bits.  Below it, moving noise from the tensor into the second Conv's weights is not worth
 * it (every pair of one corpus network equalized cost it 0.5 dB; none of its tensors passes
 * this bar but one).
 */
#define MIN_OUTLIER_RATIO 8.0

/* Scales outside this band are clamped: a channel never moves by more than 2^10 either way. */
#define MAX_CHANNEL_SCALE 1024.0

static int is_conv(const Onnx__NodeProto *node)
{
    return mq_node_is_onnx(node) && strcmp(mq_str(node->op_type), "Conv") == 0;
}

/* The initializer of this graph that node `node` alone reads (no graph input overrides it). */
static int owned_initializer(const struct mq_graph_index *idx, const char *name, int node)
{
    const struct mq_tensor_info *t = name && *name ? mq_graph_tensor(idx, name) : NULL;
    if (!t || t->initializer < 0 || t->graph_input || t->graph_output || t->n_consumers != 1 ||
        t->consumers[0].node != node || t->consumers[0].implicit)
        return -1;
    return t->initializer;
}

/* A float32 initializer decoded into *t; 0 when it is not one (nothing allocated). */
static int decode_f32(const Onnx__TensorProto *init, struct mq_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (!init->has_data_type || init->data_type != MQ_DTYPE_FLOAT || init->n_external_data ||
        (init->has_data_location && init->data_location))
        return 0;
    struct mq_error ignored;
    return mq_tensor_from_proto(init, mq_str(init->name), t, &ignored) == MQ_OK;
}

static int store(Onnx__GraphProto *g, int slot, const struct mq_tensor *t, struct mq_error *err)
{
    Onnx__TensorProto *proto;
    int rc = mq_tensor_to_proto(t, mq_str(g->initializer[slot]->name), &proto, err);
    if (rc)
        return rc;
    onnx__tensor_proto__free_unpacked(g->initializer[slot], NULL);
    g->initializer[slot] = proto;
    return MQ_OK;
}

/* The weights of one pair, decoded; `slots` index graph->initializer. */
struct pair {
    struct mq_tensor w1, b1, w2;
    int slot_w1, slot_b1, slot_w2;
};

static void pair_free(struct pair *p)
{
    mq_tensor_free(&p->w1);
    mq_tensor_free(&p->b1);
    mq_tensor_free(&p->w2);
}

/* Whether Conv `a` and its only reader `b` form a pair; decodes it when they do. */
static int find_pair(const struct mq_graph_index *idx, int a, struct pair *p, int *b_out)
{
    const Onnx__GraphProto *g = idx->graph;
    const Onnx__NodeProto *first = g->node[a];
    memset(p, 0, sizeof *p);
    if (!is_conv(first) || first->n_output != 1 || first->n_input < 2)
        return 0;
    const struct mq_tensor_info *mid = mq_graph_tensor(idx, mq_str(first->output[0]));
    if (!mid || mid->graph_output || mid->n_consumers != 1 || mid->consumers[0].implicit)
        return 0;
    int b = mid->consumers[0].node;
    const Onnx__NodeProto *second = g->node[b];
    if (!is_conv(second) || second->n_input < 2 || mq_node_attr_int(second, "group", 1) != 1 ||
        strcmp(mq_str(second->input[0]), mq_str(first->output[0])) != 0 ||
        strcmp(mq_str(second->input[1]), mq_str(first->output[0])) == 0)
        return 0;
    p->slot_w1 = owned_initializer(idx, first->input[1], a);
    p->slot_w2 = owned_initializer(idx, second->input[1], b);
    const char *bias = first->n_input > 2 && *mq_str(first->input[2]) ? first->input[2] : NULL;
    p->slot_b1 = bias ? owned_initializer(idx, bias, a) : -1;
    if (p->slot_w1 < 0 || p->slot_w2 < 0 || (bias && p->slot_b1 < 0))
        return 0;
    int ok = decode_f32(g->initializer[p->slot_w1], &p->w1) &&
             decode_f32(g->initializer[p->slot_w2], &p->w2) &&
             (!bias || decode_f32(g->initializer[p->slot_b1], &p->b1));
    int64_t c = ok && p->w1.rank >= 3 ? p->w1.dims[0] : 0;
    ok = ok && c > 0 && p->w2.rank == p->w1.rank && p->w2.dims[1] == c &&
         (!bias || (p->b1.rank == 1 && p->b1.count == c));
    if (!ok) {
        pair_free(p);
        return 0;
    }
    *b_out = b;
    return 1;
}

/* Rescales channel c of the pair by s_c from act[c], the channel's largest |value|; 0 when
   nothing would change (no channel with a finite, non-zero range on both sides). */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Whether the loudest channel dwarfs the median one (MIN_OUTLIER_RATIO); -1 out of memory. */
static int outlier_dominated(const double *act, int64_t c)
{
    double *sorted = malloc((size_t)c * sizeof *sorted);
    if (!sorted)
        return -1;
    memcpy(sorted, act, (size_t)c * sizeof *sorted);
    qsort(sorted, (size_t)c, sizeof *sorted, cmp_double);
    double median = sorted[(c - 1) / 2], loudest = sorted[c - 1]; /* the lower median */
    free(sorted);
    return median > 0.0 && loudest >= MIN_OUTLIER_RATIO * median;
}

/* s (c values) gets the scales when it returns 1. */
static int equalize(struct pair *p, const double *act, double *s)
{
    int64_t c = p->w1.dims[0], inner1 = p->w1.count / c;
    int dominated = outlier_dominated(act, c);
    if (dominated <= 0)
        return dominated;
    int64_t out2 = p->w2.dims[0], inner2 = p->w2.count / (out2 * c);
    float *w1 = p->w1.data, *w2 = p->w2.data, *b1 = p->b1.data;
    double log_sum = 0.0;
    int64_t n_log = 0;
    for (int64_t k = 0; k < c; k++) {
        double r1 = act[k], r2 = 0.0;
        for (int64_t o = 0; o < out2; o++)
            for (int64_t e = 0; e < inner2; e++)
                r2 = fmax(r2, fabs(w2[(o * c + k) * inner2 + e]));
        s[k] = r1 > 0.0 && r2 > 0.0 && isfinite(r1) && isfinite(r2) ? sqrt(r1 / r2) : 0.0;
        if (s[k] > 0.0) {
            log_sum += log(s[k]);
            n_log++;
        }
    }
    if (!n_log)
        return 0;
    /* Divided by their geometric mean: the tensor between keeps its overall magnitude. */
    double mean = exp(log_sum / (double)n_log);
    for (int64_t k = 0; k < c; k++) {
        double v = s[k] > 0.0 ? s[k] / mean : 1.0;
        s[k] = fmin(fmax(v, 1.0 / MAX_CHANNEL_SCALE), MAX_CHANNEL_SCALE);
    }
    for (int64_t k = 0; k < c; k++) {
        for (int64_t e = 0; e < inner1; e++)
            w1[k * inner1 + e] = (float)(w1[k * inner1 + e] / s[k]);
        if (b1)
            b1[k] = (float)(b1[k] / s[k]);
        for (int64_t o = 0; o < out2; o++)
            for (int64_t e = 0; e < inner2; e++)
                w2[(o * c + k) * inner2 + e] = (float)(w2[(o * c + k) * inner2 + e] * s[k]);
    }
    return 1;
}

/* The per-channel ranges of the tensors between pairs, filled by the sample pass. */
struct channel_ranges {
    struct mq_strmap *of_tensor; /* tensor name -> index into max / channels */
    double **max;
    int64_t *channels;
    int n;
};

static void channel_ranges_free(struct channel_ranges *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->max[i]);
    free(r->max);
    free(r->channels);
    mq_strmap_free(r->of_tensor);
    memset(r, 0, sizeof *r);
}

/* Finds the pairs of one graph and makes room for the ranges of the tensors between them. */
static int collect_pairs(const struct mq_graph_index *idx, struct channel_ranges *r)
{
    const Onnx__GraphProto *g = idx->graph;
    if (!r->of_tensor && !(r->of_tensor = mq_strmap_new()))
        return -1;
    for (size_t a = 0; a < g->n_node; a++) {
        struct pair p;
        int b;
        if (!find_pair(idx, (int)a, &p, &b))
            continue;
        int64_t c = p.w1.dims[0];
        pair_free(&p);
        double **max = realloc(r->max, (size_t)(r->n + 1) * sizeof *max);
        if (max)
            r->max = max;
        int64_t *channels = max ? realloc(r->channels, (size_t)(r->n + 1) * sizeof *channels)
                                : NULL;
        if (channels)
            r->channels = channels;
        if (!max || !channels || !(r->max[r->n] = calloc((size_t)c, sizeof **r->max)))
            return -1;
        r->channels[r->n] = c;
        if (mq_strmap_put(r->of_tensor, mq_str(g->node[a]->output[0]), r->n))
            return -1;
        r->n++;
    }
    return 0;
}

/*
 * Calls fn on every graph of the model (the main graph, then each subgraph after its
 * enclosing graph), with an index whose parent is the enclosing graph's: a network an exporter
 * wrapped in If branches is equalized like the same network in the main graph.
 */
typedef int (*graph_fn)(struct mq_graph_index *idx, void *user, struct mq_error *err);

struct graph_walk {
    graph_fn fn;
    void *user;
    const struct mq_graph_index *parent;
    int depth;
    struct mq_error *err;
};

static int walk_graph(Onnx__GraphProto *g, struct graph_walk *w);

static int walk_sub(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    (void)attr_name;
    return walk_graph(sub, user);
}

static int walk_graph(Onnx__GraphProto *g, struct graph_walk *w)
{
    if (w->depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(w->err, "subgraphs nest deeper than %d levels", MQ_MAX_SUBGRAPH_DEPTH);
    struct mq_graph_index idx;
    int rc = mq_graph_index_build(g, w->parent, &idx, w->err);
    if (rc)
        return rc;
    rc = w->fn(&idx, w->user, w->err);
    struct graph_walk inner = {w->fn, w->user, &idx, w->depth + 1, w->err};
    for (size_t n = 0; rc == MQ_OK && n < g->n_node; n++)
        rc = mq_graph_each_subgraph(g->node[n], walk_sub, &inner);
    mq_graph_index_free(&idx);
    return rc;
}

static int each_graph(Onnx__GraphProto *g, graph_fn fn, void *user, struct mq_error *err)
{
    struct graph_walk w = {fn, user, NULL, 0, err};
    return walk_graph(g, &w);
}

/* Observer: the largest |value| of each channel (axis 1) of the tensors between pairs. */
static int observe_channels(void *user, const struct mq_kernel_node *producer, const char *name,
                            const struct mq_tensor *value, struct mq_error *err)
{
    (void)producer;
    (void)err;
    struct channel_ranges *r = user;
    int k = mq_strmap_get(r->of_tensor, name);
    if (k < 0 || value->dtype != MQ_DTYPE_FLOAT || value->rank < 2 ||
        value->dims[1] != r->channels[k])
        return MQ_OK;
    int64_t c = r->channels[k], outer = value->dims[0];
    int64_t inner = outer > 0 && c > 0 ? value->count / (outer * c) : 0;
    const float *v = value->data;
    double *max = r->max[k];
    for (int64_t n = 0; n < outer; n++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *row = v + (n * c + ch) * inner;
            double m = max[ch];
            for (int64_t e = 0; e < inner; e++) {
                double a = fabs((double)row[e]);
                if (a > m && isfinite(a))
                    m = a;
            }
            max[ch] = m;
        }
    return MQ_OK;
}

/*
 * Runs the samples on `jobs` threads, each with maxima of its own (sharing the names and
 * channel counts of r), then keeps the largest of each channel: a maximum does not depend on
 * the order values come in, so the result does not depend on the number of threads.
 */
static int measure(struct mq_model *model, const char *calib_dir,
                   const struct mq_calib_open_options *open, int jobs, struct channel_ranges *r,
                   struct mq_error *err)
{
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    int rc = mq_plan_build(model, &plan, err);
    if (rc == MQ_OK)
        rc = mq_calib_source_open_for_plan_with(calib_dir, plan, open, &source, err);
    struct mq_sample_pass pass = {
        .plan = plan, .source = source, .jobs = jobs,
        .observe = observe_channels, .label = "equalizing Conv ranges: sample",
    };
    int n_workers = rc == MQ_OK ? mq_sample_pass_jobs(&pass) : 0;
    struct channel_ranges *workers = calloc((size_t)n_workers + 1, sizeof *workers);
    void **worker_ptrs = calloc((size_t)n_workers + 1, sizeof *worker_ptrs);
    if (rc == MQ_OK && (!workers || !worker_ptrs))
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
    for (int t = 0; rc == MQ_OK && t < n_workers; t++) {
        struct channel_ranges *w = &workers[t];
        worker_ptrs[t] = w;
        w->of_tensor = r->of_tensor;
        w->channels = r->channels;
        if (t == 0) {
            w->max = r->max; /* the first thread fills r itself */
            continue;
        }
        w->max = calloc((size_t)r->n + 1, sizeof *w->max);
        for (int k = 0; w->max && k < r->n &&
                        (w->max[k] = calloc((size_t)r->channels[k] + 1, sizeof **w->max));
             k++)
            w->n = k + 1;
        if (!w->max || w->n < r->n)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
    }
    pass.workers = worker_ptrs;
    int64_t done;
    if (rc == MQ_OK)
        rc = mq_sample_pass_run(&pass, &done, err);
    for (int t = 1; workers && t < n_workers; t++) {
        for (int k = 0; rc == MQ_OK && k < r->n; k++)
            for (int64_t ch = 0; ch < r->channels[k]; ch++)
                if (workers[t].max[k][ch] > r->max[k][ch])
                    r->max[k][ch] = workers[t].max[k][ch];
        for (int k = 0; workers[t].max && k < workers[t].n; k++)
            free(workers[t].max[k]);
        free(workers[t].max);
    }
    free(workers);
    free(worker_ptrs);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    return rc;
}

static int collect_in_graph(struct mq_graph_index *idx, void *user, struct mq_error *err)
{
    if (collect_pairs(idx, user))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
    return MQ_OK;
}

/* What measuring leaves: the maxima of each pair's middle tensor, in graph order. */
struct maxima_out {
    const struct channel_ranges *ranges;
    struct mq_ranges *into;
};

static int record_in_graph(struct mq_graph_index *idx, void *user, struct mq_error *err)
{
    struct maxima_out *m = user;
    const Onnx__GraphProto *g = idx->graph;
    for (size_t a = 0; a < g->n_node; a++) {
        const char *name = g->node[a]->n_output ? mq_str(g->node[a]->output[0]) : "";
        int k = *name ? mq_strmap_get(m->ranges->of_tensor, name) : -1;
        if (k >= 0 && mq_ranges_add_channel_maxima(m->into, name, m->ranges->channels[k],
                                                   m->ranges->max[k], err))
            return MQ_ERR;
    }
    return MQ_OK;
}

int mq_quant_equalize_pair_tensors(struct mq_model *model, struct mq_ranges *into,
                                   struct mq_error *err)
{
    Onnx__GraphProto *g = model->proto->graph;
    if (!g)
        return MQ_OK;
    struct channel_ranges ranges = {0};
    int rc = each_graph(g, collect_in_graph, &ranges, err);
    struct maxima_out out = {&ranges, into};
    if (!rc && ranges.n)
        rc = each_graph(g, record_in_graph, &out, err);
    channel_ranges_free(&ranges);
    return rc;
}

int mq_quant_equalize_measure(struct mq_model *model, const char *calib_dir,
                              const struct mq_calib_open_options *open, int jobs,
                              struct mq_ranges *into, struct mq_error *err)
{
    Onnx__GraphProto *g = model->proto->graph;
    if (!g || !calib_dir)
        return MQ_OK;
    struct channel_ranges ranges = {0};
    int rc = each_graph(g, collect_in_graph, &ranges, err);
    if (!rc && ranges.n)
        rc = measure(model, calib_dir, open, jobs, &ranges, err);
    struct maxima_out out = {&ranges, into};
    if (!rc && ranges.n)
        rc = each_graph(g, record_in_graph, &out, err);
    channel_ranges_free(&ranges);
    return rc;
}

struct apply_state {
    const struct mq_ranges *maxima;
    int n_pairs;
    mq_quant_equalize_scales_fn on_scales;
    void *user;
};

/* In graph order, decoding the weights again for each pair: a Conv rescaled as the second of
   one pair may be the first of the next. */
static int apply_in_graph(struct mq_graph_index *idx, void *user, struct mq_error *err)
{
    struct apply_state *st = user;
    Onnx__GraphProto *g = idx->graph;
    int rc = MQ_OK;
    for (size_t a = 0; a < g->n_node && !rc; a++) {
        struct pair p;
        int b;
        if (!find_pair(idx, (int)a, &p, &b))
            continue;
        const struct mq_channel_maxima *m =
            mq_ranges_find_channel_maxima(st->maxima, mq_str(g->node[a]->output[0]));
        int fits = m && m->channels == p.w1.dims[0];
        double *s = fits ? malloc((size_t)m->channels * sizeof *s) : NULL;
        int changed = !fits ? 0 : s ? equalize(&p, m->max, s) : -1;
        if (changed < 0)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
        if (changed > 0) {
            rc = store(g, p.slot_w1, &p.w1, err);
            if (!rc && p.slot_b1 >= 0)
                rc = store(g, p.slot_b1, &p.b1, err);
            if (!rc)
                rc = store(g, p.slot_w2, &p.w2, err);
            if (!rc && st->on_scales)
                rc = st->on_scales(st->user, m->name, m->channels, s, err);
            st->n_pairs += !rc;
        }
        free(s);
        pair_free(&p);
    }
    return rc;
}

int mq_quant_equalize_apply(struct mq_model *model, const struct mq_ranges *maxima, int *n_pairs,
                            struct mq_error *err)
{
    return mq_quant_equalize_apply_with(model, maxima, n_pairs, NULL, NULL, err);
}

int mq_quant_equalize_apply_with(struct mq_model *model, const struct mq_ranges *maxima,
                                 int *n_pairs, mq_quant_equalize_scales_fn on_scales, void *user,
                                 struct mq_error *err)
{
    if (n_pairs)
        *n_pairs = 0;
    Onnx__GraphProto *g = model->proto->graph;
    if (!g || !maxima || !maxima->n_channel_maxima)
        return MQ_OK;
    struct apply_state st = {maxima, 0, on_scales, user};
    int rc = each_graph(g, apply_in_graph, &st, err);
    if (n_pairs)
        *n_pairs = st.n_pairs;
    return rc;
}
