/* Calibration statistics: input means for bias correction and the signal energy behind a
   per-sample SQNR floor, gathered on the calibration pass; the exact per-sample SQNR of the
   activations the floor leaves undecided, on a second pass. */
#define _GNU_SOURCE /* asprintf */
#include "quant/sample_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"
#include "core/limits.h"
#include "interp/plan.h"
#include "core/tensor.h"
#include "quant/conv_tap_sums.h"
#include "quant/graph.h"
#include "quant/params.h"
#include "quant/rounding_sums.h"
#include "quant/sqnr_bound.h"

#define MAX_SPATIAL MQ_CONV_MAX_SPATIAL
/* Means per node (channels x taps), and doubles of scratch: beyond these a node goes uncorrected. */
#define MAX_CELLS ((int64_t)1 << 26)

/* One activation whose quantization error is measured. */
struct act_stat {
    char *name;
    int usable;                 /* has a finite range: qparams computed */
    struct mq_qparams p;
    struct mq_qrange full;
    double worst_db;
    int64_t worst_sample;
    int seen;
    int exact;                  /* measured by the exact pass */
    /* From the calibration pass: the least energy per non-zero value of a sample. */
    double least_energy;
    int64_t least_sample;
    int energy_seen;
    double floor_db;            /* the SQNR floor that settled it; NAN when none */
};

/* One weighted node whose input means are gathered. */
struct mean_stat {
    char *input, *weight;
    int is_gemm, trans_a;
    int spatial;                /* Conv: number of spatial dims */
    int64_t channels;           /* Conv: C = C/group * group; Gemm: K */
    int64_t kernel[MAX_SPATIAL];
    struct mq_conv_attrs conv;  /* strides, dilations, pads, auto_pad */
    int64_t taps;
    double *sums;               /* channels * taps; means once the pass is over */
    double positions;           /* output positions summed over (per channel and tap) */
    int broken;                 /* a shape it cannot handle, or two nodes with this key */
};

/* What one thread measures of one activation on the sample it runs. */
struct act_sample {
    double signal, noise;       /* on the calibration pass, signal is the energy */
    int64_t nonzero;
    int64_t touched_in;         /* sample index of the last touch, -1 none */
};

/* What one thread sums for one weighted node on the sample it runs. */
struct mean_sample {
    double *sums;               /* channels * taps, allocated on first use */
    double positions;
    int64_t touched_in;         /* sample index of the last touch, -1 none */
    int broken;
};

/*
 * One thread's state.  Each sample's sums start from zero here and are added to the totals
 * by `finish_sample`, which the driver calls in sample order: the totals are the same doubles
 * whatever the number of threads.
 */
struct worker {
    struct mq_quant_stats *s;
    int64_t sample;
    struct act_sample *acts;    /* per activation */
    struct mean_sample *means;  /* per weighted node */
    double *scratch;
    size_t scratch_cap;
};

struct mq_quant_stats {
    const struct mq_plan *plan;  /* during the pass */
    struct act_stat *acts;
    int n_acts;
    struct mq_strmap *act_of;
    struct mean_stat *means;
    int n_means, cap_means;
    struct mq_strmap *mean_of;   /* "input\nweight" -> index */
    /* Per tensor name: the mean requests reading it (a tensor may feed several). */
    struct mq_strmap *reader_of; /* tensor -> first index into reader_next chain + 1 */
    int *reader_next;
    int on_calibration;          /* energies, not rounding errors; means on the way */
    int skip_means;              /* the exact pass for undecided activations only */
    struct worker *workers;      /* the calibration pass's, until settled */
    int n_workers;
    struct mq_calib_extra extra;
    const struct mq_calib_extra *extra_list[1];
};

static int oom(struct mq_error *err)
{
    return mq_error_code(err, MQ_ERR_MEMORY, "out of memory collecting calibration statistics");
}

static char *mean_key(const char *input, const char *weight)
{
    char *key;
    return asprintf(&key, "%s\n%s", input, weight) < 0 ? NULL : key;
}

/* ------------------------------------------------------------ requests */

/* A request for a Conv or Gemm; 0 when the node is not one this pass can describe. */
static int describe(const Onnx__NodeProto *node, const Onnx__TensorProto *w, struct mean_stat *ms)
{
    memset(ms, 0, sizeof *ms);
    const char *op = mq_str(node->op_type);
    if (strcmp(op, "Gemm") == 0) {
        if (w->n_dims != 2 || w->dims[0] <= 0 || w->dims[1] <= 0)
            return 0;
        ms->is_gemm = 1;
        ms->trans_a = mq_node_attr_int(node, "transA", 0) != 0;
        int trans_b = mq_node_attr_int(node, "transB", 0) != 0;
        ms->channels = trans_b ? w->dims[1] : w->dims[0];
        ms->taps = 1;
        return ms->channels <= MAX_CELLS;
    }
    if (strcmp(op, "Conv") != 0 || w->n_dims < 3 || w->n_dims > 2 + MAX_SPATIAL)
        return 0;
    int k = (int)w->n_dims - 2;
    long long group = mq_node_attr_int(node, "group", 1);
    if (group < 1 || w->dims[1] <= 0 || w->dims[1] > INT64_MAX / group)
        return 0;
    ms->spatial = k;
    ms->channels = w->dims[1] * group;
    ms->taps = 1;
    for (int d = 0; d < k; d++) {
        if (w->dims[2 + d] <= 0 || w->dims[2 + d] > 4096)
            return 0;
        ms->kernel[d] = w->dims[2 + d];
        ms->taps *= ms->kernel[d];
    }
    if (ms->channels > MAX_CELLS || ms->taps > MAX_CELLS / ms->channels)
        return 0;
    if (!mq_conv_attrs_read(node, k, &ms->conv))
        return 0;
    return 1;
}

struct walk {
    struct mq_quant_stats *s;
    const struct mq_selection *sel;
    struct mq_error *err;
};

static int add_reader(struct mq_quant_stats *s, const char *tensor, int index)
{
    int *next = realloc(s->reader_next, (size_t)(index + 1) * sizeof *next);
    if (!next)
        return -1;
    s->reader_next = next;
    int head = mq_strmap_get(s->reader_of, tensor);
    next[index] = head; /* -1 ends the chain */
    return mq_strmap_put(s->reader_of, tensor, index);
}

static int add_request(struct walk *w, const struct mq_graph_index *idx, const Onnx__NodeProto *node)
{
    struct mq_quant_stats *s = w->s;
    const char *x = node->n_input > 0 ? mq_str(node->input[0]) : "";
    const char *wn = node->n_input > 1 ? mq_str(node->input[1]) : "";
    const Onnx__TensorProto *init = *wn ? mq_graph_find_initializer(idx, wn) : NULL;
    if (!*x || !init || !init->has_data_type || init->data_type != MQ_DTYPE_FLOAT)
        return 0;
    struct mean_stat ms;
    if (!describe(node, init, &ms))
        return 0;
    char *key = mean_key(x, wn);
    if (!key)
        return oom(w->err);
    int known = mq_strmap_get(s->mean_of, key);
    if (known >= 0) {
        /* Two nodes with one key may differ in strides or pads: trust neither. */
        s->means[known].broken = 1;
        free(key);
        return 0;
    }
    if (s->n_means == s->cap_means) {
        int cap = s->cap_means ? s->cap_means * 2 : 16;
        struct mean_stat *v = realloc(s->means, (size_t)cap * sizeof *v);
        if (!v) {
            free(key);
            return oom(w->err);
        }
        s->means = v;
        s->cap_means = cap;
    }
    ms.input = strdup(x);
    ms.weight = strdup(wn);
    int64_t cells = ms.channels * ms.taps;
    ms.sums = ms.input && ms.weight && cells > 0 ? calloc((size_t)cells, sizeof *ms.sums) : NULL;
    int index = s->n_means;
    if (!ms.sums || mq_strmap_put(s->mean_of, key, index) || add_reader(s, x, index)) {
        free(ms.input);
        free(ms.weight);
        free(ms.sums);
        free(key);
        return oom(w->err);
    }
    free(key);
    s->means[s->n_means++] = ms;
    return 0;
}

static int walk_graph(struct walk *w, Onnx__GraphProto *g, const struct mq_graph_index *parent,
                      int depth);

struct sub {
    struct walk *w;
    const struct mq_graph_index *parent;
    int depth;
};

static int walk_sub(Onnx__GraphProto *g, const char *attr, void *user)
{
    (void)attr;
    struct sub *sb = user;
    return walk_graph(sb->w, g, sb->parent, sb->depth + 1);
}

static int walk_graph(struct walk *w, Onnx__GraphProto *g, const struct mq_graph_index *parent,
                      int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(w->err, "subgraphs nest deeper than %d levels", MQ_MAX_SUBGRAPH_DEPTH);
    struct mq_graph_index idx;
    int rc = mq_graph_index_build(g, parent, &idx, w->err);
    for (size_t i = 0; !rc && i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        const struct mq_node_choice *c = mq_selection_find(w->sel, node);
        if (c && c->status == MQ_NODE_SELECTED && mq_node_is_onnx(node))
            rc = add_request(w, &idx, node);
        if (!rc) {
            struct sub sb = {w, &idx, depth};
            rc = mq_graph_each_subgraph(node, walk_sub, &sb);
        }
    }
    if (idx.by_name)
        mq_graph_index_free(&idx);
    return rc;
}

/* ------------------------------------------------------------ measuring */

static int scratch(struct worker *w, size_t n, struct mq_error *err)
{
    if (n <= w->scratch_cap)
        return MQ_OK;
    double *v = realloc(w->scratch, n * sizeof *v);
    if (!v)
        return oom(err);
    w->scratch = v;
    w->scratch_cap = n;
    return MQ_OK;
}

/*
 * After a sample's run, in sample order: its SQNR per activation against the worst so far, its
 * sums added to the totals.
 */
static int finish_sample(void *user, int64_t sample, struct mq_tensor *outputs, int n_outputs,
                         struct mq_error *err)
{
    (void)outputs, (void)n_outputs, (void)err;
    struct worker *w = user;
    struct mq_quant_stats *s = w->s;
    for (int i = 0; i < s->n_acts; i++) {
        struct act_stat *a = &s->acts[i];
        struct act_sample *as = &w->acts[i];
        if (as->touched_in != sample)
            continue;
        if (s->on_calibration) {
            /* the floor of a sample is lowest where its energy per non-zero value is */
            if (as->signal > 0.0) {
                double e = as->signal / (double)as->nonzero;
                if (!a->energy_seen || e < a->least_energy) {
                    a->least_energy = e;
                    a->least_sample = sample;
                }
                a->energy_seen = 1;
            }
            as->signal = 0.0;
            as->nonzero = 0;
            continue;
        }
        /* A silent or exactly representable sample says nothing about the scale. */
        if (as->signal > 0.0 && as->noise > 0.0) {
            double db = 10.0 * log10(as->signal / as->noise);
            if (!a->seen || db < a->worst_db) {
                a->worst_db = db;
                a->worst_sample = sample;
            }
            a->seen = 1;
        }
        as->signal = as->noise = 0.0;
    }
    for (int m = 0; !s->skip_means && m < s->n_means; m++) {
        struct mean_stat *ms = &s->means[m];
        struct mean_sample *part = &w->means[m];
        if (part->touched_in != sample || part->broken)
            continue;
        int64_t cells = ms->channels * ms->taps;
        for (int64_t i = 0; i < cells; i++) {
            ms->sums[i] += part->sums[i];
            part->sums[i] = 0.0;
        }
        ms->positions += part->positions;
        part->positions = 0.0;
    }
    return MQ_OK;
}

/* With minmax (may be NULL) on the calibration pass: the tensor's min/max read in the same
   pass as its energy, *filled set (mq_calib_extra's observe_minmax). */
static void measure_activation(struct worker *w, const struct act_stat *a,
                               struct act_sample *as, const struct mq_tensor *t,
                               struct mq_minmax *minmax, int *filled)
{
    if (t->dtype != MQ_DTYPE_FLOAT)
        return;
    if (w->s->on_calibration) {
        double energy[MQ_ROUNDING_LANES] = {0};
        if (minmax) {
            mq_quant_signal_energy_minmax(t->data, t->count, energy, &as->nonzero, minmax);
            *filled = 1;
        } else {
            mq_quant_signal_energy(t->data, t->count, energy, &as->nonzero);
        }
        for (int l = 0; l < MQ_ROUNDING_LANES; l++)
            as->signal += energy[l];
        as->touched_in = w->sample;
        return;
    }
    if (!a->usable || !a->exact)
        return;
    /* Lanes of independent sums, in a fixed order (every run gives the same doubles): one
       chain of dependent additions would cost 4 cycles a value. */
    double signal[MQ_ROUNDING_LANES] = {0}, noise[MQ_ROUNDING_LANES] = {0};
    mq_quant_rounding_sums(t->data, t->count, a->p.scale, (float)a->p.zero_point,
                           (float)a->full.qmin, (float)a->full.qmax, signal, noise);
    for (int l = 0; l < MQ_ROUNDING_LANES; l++) {
        as->signal += signal[l];
        as->noise += noise[l];
    }
    as->touched_in = w->sample;
}

/* Output size and leading pad of one spatial dim; 0 when the shape does not fit. */
static int conv_dim(const struct mean_stat *ms, int d, int64_t in, int64_t *out, int64_t *pad)
{
    const struct mq_conv_attrs *c = &ms->conv;
    return mq_conv_output_dim(c->auto_pad, in, ms->kernel[d], c->strides[d], c->dilations[d],
                              c->pads[d], c->pads[ms->spatial + d], out, pad);
}

/*
 * Adds, for every input channel and kernel tap, the sum over all output positions of the
 * input value that tap reads (quant/conv_tap_sums.h).
 */
static int measure_conv(struct worker *w, const struct mean_stat *ms, struct mean_sample *part,
                        const struct mq_tensor *t, struct mq_error *err)
{
    int k = ms->spatial;
    if (t->dtype != MQ_DTYPE_FLOAT || t->rank != k + 2 || t->dims[1] != ms->channels) {
        part->broken = 1;
        return MQ_OK;
    }
    struct mq_quant_tap_geometry g = {.spatial = k};
    int64_t size = 1, positions = 1;
    for (int d = 0; d < k; d++) {
        if (t->dims[2 + d] <= 0 || !conv_dim(ms, d, t->dims[2 + d], &g.out[d], &g.pad[d])) {
            part->broken = 1;
            return MQ_OK;
        }
        g.in[d] = t->dims[2 + d];
        g.kernel[d] = ms->kernel[d];
        g.stride[d] = ms->conv.strides[d];
        g.dilation[d] = ms->conv.dilations[d];
        size *= g.in[d];
        positions *= g.out[d];
    }
    /* three arrays as large as the biggest intermediate, each within MAX_CELLS */
    int64_t need = mq_quant_conv_tap_scratch(&g, 3 * MAX_CELLS);
    if (need < 0) {
        part->broken = 1;
        return MQ_OK;
    }
    if (scratch(w, (size_t)need, err))
        return MQ_ERR;
    const float *x = t->data;
    for (int64_t n = 0; n < t->dims[0]; n++) {
        if (mq_quant_conv_tap_sums(&g, x + n * ms->channels * size, ms->channels, w->scratch,
                                   part->sums))
            return oom(err);
        part->positions += (double)positions;
    }
    return MQ_OK;
}

static void measure_gemm(const struct mean_stat *ms, struct mean_sample *part,
                         const struct mq_tensor *t)
{
    if (t->dtype != MQ_DTYPE_FLOAT || t->rank != 2) {
        part->broken = 1;
        return;
    }
    int64_t rows = ms->trans_a ? t->dims[1] : t->dims[0];
    int64_t cols = ms->trans_a ? t->dims[0] : t->dims[1];
    if (cols != ms->channels) {
        part->broken = 1;
        return;
    }
    const float *x = t->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = ms->trans_a ? x[c * rows + r] : x[r * cols + c];
            part->sums[c] += isfinite(v) ? (double)v : 0.0;
        }
    part->positions += (double)rows;
}

static int observe(struct worker *w, const char *name, const struct mq_tensor *t,
                   struct mq_minmax *minmax, int *filled, struct mq_error *err)
{
    struct mq_quant_stats *s = w->s;
    int a = mq_strmap_get(s->act_of, name);
    if (a >= 0)
        measure_activation(w, &s->acts[a], &w->acts[a], t, minmax, filled);
    for (int m = s->skip_means ? -1 : mq_strmap_get(s->reader_of, name); m >= 0;
         m = s->reader_next[m]) {
        const struct mean_stat *ms = &s->means[m];
        struct mean_sample *part = &w->means[m];
        if (ms->broken || part->broken)
            continue;
        if (!part->sums && !(part->sums = calloc((size_t)(ms->channels * ms->taps),
                                                 sizeof *part->sums)))
            return oom(err);
        part->touched_in = w->sample;
        if (ms->is_gemm)
            measure_gemm(ms, part, t);
        else if (measure_conv(w, ms, part, t, err))
            return MQ_ERR;
    }
    return MQ_OK;
}

static int observe_produced(void *user, const struct mq_kernel_node *producer, const char *name,
                            const struct mq_tensor *value, struct mq_error *err)
{
    (void)producer;
    return observe(user, name, value, NULL, NULL, err);
}

/* Graph inputs are fed, not produced: the driver hands them over before the run. */
static int observe_inputs(void *user, int64_t sample, const struct mq_tensor *inputs,
                          int n_inputs, struct mq_error *err)
{
    struct worker *w = user;
    w->sample = sample;
    for (int k = 0; k < n_inputs; k++)
        if (observe(w, mq_str(mq_plan_input(w->s->plan, k)->name), &inputs[k], NULL, NULL, err))
            return MQ_ERR;
    return MQ_OK;
}

/* --------------------------------------------------------------- the pass */

static int setup_acts(struct mq_quant_stats *s, char *const *names, int n, struct mq_error *err)
{
    s->acts = calloc((size_t)(n ? n : 1), sizeof *s->acts);
    if (!s->acts)
        return oom(err);
    for (int i = 0; i < n; i++) {
        struct act_stat *a = &s->acts[s->n_acts];
        if (mq_strmap_get(s->act_of, names[i]) >= 0)
            continue;
        a->name = strdup(names[i]);
        if (!a->name || mq_strmap_put(s->act_of, names[i], s->n_acts))
            return oom(err);
        a->floor_db = NAN;
        s->n_acts++;
    }
    return MQ_OK;
}

/* Each activation's scale: the rewrite's, from its range and o's activation type. */
static void set_params(struct mq_quant_stats *s, const struct mq_ranges *ranges,
                       const struct mq_quant_options *o)
{
    struct mq_qrange range = mq_qrange_for(o->activation_type, o->symmetric_activations, 0);
    for (int i = 0; i < s->n_acts; i++) {
        struct act_stat *a = &s->acts[i];
        a->full = mq_qrange_full(o->activation_type);
        const struct mq_tensor_range *r = ranges ? mq_ranges_find(ranges, a->name) : NULL;
        struct mq_error ignored;
        a->usable = r && r->count > 0 && isfinite(r->min) && isfinite(r->max) &&
                    r->min <= r->max &&
                    mq_qparams_compute(r->min, r->max, range, o->symmetric_activations, &a->p,
                                       &ignored) == MQ_OK;
    }
}

/* Sets up the maps, the activations and (unless without_means) the mean requests. */
static int stats_new(const Onnx__ModelProto *model, const struct mq_selection *sel,
                     char *const *names, int n_names, int without_means,
                     struct mq_quant_stats **out, struct mq_error *err)
{
    *out = NULL;
    struct mq_quant_stats *s = calloc(1, sizeof *s);
    if (!s)
        return oom(err);
    s->act_of = mq_strmap_new();
    s->mean_of = mq_strmap_new();
    s->reader_of = mq_strmap_new();
    int rc = s->act_of && s->mean_of && s->reader_of ? MQ_OK : oom(err);
    if (!rc)
        rc = setup_acts(s, names, n_names, err);
    if (!rc && model->graph && !without_means) {
        struct walk w = {s, sel, err};
        rc = walk_graph(&w, model->graph, NULL, 0);
    }
    if (rc) {
        mq_quant_stats_free(s);
        return rc;
    }
    *out = s;
    return MQ_OK;
}

static int worker_init(struct worker *w, struct mq_quant_stats *s)
{
    w->s = s;
    w->acts = calloc((size_t)(s->n_acts ? s->n_acts : 1), sizeof *w->acts);
    w->means = calloc((size_t)(s->n_means ? s->n_means : 1), sizeof *w->means);
    if (!w->acts || !w->means)
        return -1;
    for (int i = 0; i < s->n_acts; i++)
        w->acts[i].touched_in = -1;
    for (int m = 0; m < s->n_means; m++)
        w->means[m].touched_in = -1;
    return 0;
}

static void worker_free(struct worker *w, const struct mq_quant_stats *s)
{
    for (int m = 0; w->means && m < s->n_means; m++)
        free(w->means[m].sums);
    free(w->means);
    free(w->acts);
    free(w->scratch);
}

static struct worker *workers_new(struct mq_quant_stats *s, int n)
{
    struct worker *workers = calloc((size_t)(n > 0 ? n : 1), sizeof *workers);
    for (int t = 0; workers && t < n; t++)
        if (worker_init(&workers[t], s)) {
            for (int k = 0; k <= t; k++)
                worker_free(&workers[k], s);
            free(workers);
            return NULL;
        }
    return workers;
}

/* After the samples: the nodes some thread could not measure go uncorrected, the sums become
   means, the workers go. */
static void workers_done(struct mq_quant_stats *s, struct worker *workers, int n, int finish)
{
    for (int t = 0; finish && t < n; t++)
        for (int m = 0; m < s->n_means; m++)
            s->means[m].broken |= workers[t].means[m].broken;
    for (int t = 0; workers && t < n; t++)
        worker_free(&workers[t], s);
    free(workers);
    for (int m = 0; finish && !s->skip_means && m < s->n_means; m++) {
        struct mean_stat *ms = &s->means[m];
        for (int64_t i = 0; ms->positions > 0.0 && i < ms->channels * ms->taps; i++)
            ms->sums[i] /= ms->positions;
    }
}

/* A pass of its own over the samples, measuring exactly (and the means unless skip_means). */
static int run_pass(struct mq_quant_stats *s, const struct mq_plan *plan,
                    const struct mq_calib_source *source, int jobs, struct mq_error *err)
{
    s->plan = plan;
    /* The totals take each sample's sums in sample order, so every run gives the same doubles
       whatever the number of threads. */
    struct mq_sample_pass pass = {
        .plan = plan,
        .source = source,
        .jobs = jobs,
        .inputs = observe_inputs,
        .observe = observe_produced,
        .done = finish_sample,
        .done_in_order = 1,
        .label = "calibration statistics, sample",
    };
    int n_workers = mq_sample_pass_jobs(&pass);
    struct worker *workers = workers_new(s, n_workers);
    void **worker_ptrs = calloc((size_t)n_workers, sizeof *worker_ptrs);
    int rc = workers && worker_ptrs ? MQ_OK : oom(err);
    for (int t = 0; !rc && t < n_workers; t++)
        worker_ptrs[t] = &workers[t];
    pass.workers = worker_ptrs;
    int64_t done;
    if (!rc)
        rc = mq_sample_pass_run(&pass, &done, err);
    workers_done(s, workers, workers ? n_workers : 0, rc == MQ_OK);
    free(worker_ptrs);
    s->plan = NULL;
    return rc;
}

int mq_quant_stats_collect(const struct mq_plan *plan, const struct mq_calib_source *source,
                           const Onnx__ModelProto *model, const struct mq_selection *sel,
                           char *const *names, int n_names, const struct mq_ranges *ranges,
                           const struct mq_quant_options *o, int jobs,
                           struct mq_quant_stats **out, struct mq_error *err)
{
    struct mq_quant_stats *s;
    int rc = stats_new(model, sel, names, n_names, 0, &s, err);
    if (rc)
        return rc;
    set_params(s, ranges, o);
    for (int i = 0; i < s->n_acts; i++)
        s->acts[i].exact = 1;
    rc = run_pass(s, plan, source, jobs, err);
    if (rc) {
        mq_quant_stats_free(s);
        return rc;
    }
    *out = s;
    return MQ_OK;
}

/* ------------------------------------------------ on the calibration pass */

static int extra_begin(void *user, int n_threads, void **workers, struct mq_error *err)
{
    struct mq_quant_stats *s = user;
    if (s->workers)
        return mq_error_code(err, MQ_ERR_USAGE, "calibration statistics gathered twice");
    s->workers = workers_new(s, n_threads);
    if (!s->workers)
        return oom(err);
    s->n_workers = n_threads;
    for (int t = 0; t < n_threads; t++)
        workers[t] = &s->workers[t];
    return MQ_OK;
}

static int extra_observe(void *worker, int64_t sample, const char *name,
                         const struct mq_tensor *value, struct mq_error *err)
{
    struct worker *w = worker;
    w->sample = sample;
    return observe(w, name, value, NULL, NULL, err);
}

static int extra_observe_minmax(void *worker, int64_t sample, const char *name,
                                const struct mq_tensor *value, struct mq_minmax *minmax,
                                int *filled, struct mq_error *err)
{
    struct worker *w = worker;
    w->sample = sample;
    return observe(w, name, value, minmax, filled, err);
}

static int extra_done(void *worker, int64_t sample, struct mq_error *err)
{
    return finish_sample(worker, sample, NULL, 0, err);
}

int mq_quant_stats_prepare(const Onnx__ModelProto *model, const struct mq_selection *sel,
                           char *const *names, int n_names, const struct mq_quant_options *o,
                           struct mq_quant_stats **out, struct mq_error *err)
{
    int rc = stats_new(model, sel, names, n_names, !o->bias_correction, out, err);
    if (rc)
        return rc;
    struct mq_quant_stats *s = *out;
    s->on_calibration = 1;
    s->extra = (struct mq_calib_extra){extra_begin, extra_observe, extra_done, s,
                                       extra_observe_minmax};
    s->extra_list[0] = &s->extra;
    return MQ_OK;
}

const struct mq_calib_extra *const *mq_quant_stats_extra(struct mq_quant_stats *s)
{
    return s->extra_list;
}

int mq_quant_stats_settle(struct mq_quant_stats *s, const struct mq_ranges *ranges,
                          const struct mq_quant_options *o, int *n_undecided,
                          struct mq_error *err)
{
    *n_undecided = 0;
    if (!s->on_calibration || !s->workers)
        return mq_error_code(err, MQ_ERR_USAGE, "no calibration pass gathered the statistics");
    workers_done(s, s->workers, s->n_workers, 1);
    s->workers = NULL;
    s->n_workers = 0;
    s->on_calibration = 0;
    set_params(s, ranges, o);
    double floor_needed = o->min_sample_sqnr_db + MQ_QUANT_SQNR_FLOOR_MARGIN_DB;
    for (int i = 0; i < s->n_acts; i++) {
        struct act_stat *a = &s->acts[i];
        /* No scale, or no sample with signal: the exact pass would measure nothing either. */
        if (!a->usable || !a->energy_seen)
            continue;
        const struct mq_tensor_range *r = mq_ranges_find(ranges, a->name);
        if (mq_quant_bound_holds(r->observed_min, r->observed_max, a->p, a->full))
            a->floor_db = mq_quant_sqnr_floor_db(a->least_energy, a->p, a->full);
        /* A rule that is off decides nothing: the floor is all the report gets. */
        if (o->min_sample_sqnr_db > 0.0 && !(a->floor_db >= floor_needed)) {
            a->floor_db = NAN;
            a->exact = 1;
            (*n_undecided)++;
        }
    }
    return MQ_OK;
}

int mq_quant_stats_measure_undecided(struct mq_quant_stats *s, const struct mq_plan *plan,
                                     const struct mq_calib_source *source, int jobs,
                                     struct mq_error *err)
{
    if (s->on_calibration)
        return mq_error_code(err, MQ_ERR_USAGE, "calibration statistics not settled");
    s->skip_means = 1;
    return run_pass(s, plan, source, jobs, err);
}

double mq_quant_stats_worst_sqnr_floor(const struct mq_quant_stats *s, const char *name,
                                       int64_t *sample)
{
    int a = s ? mq_strmap_get(s->act_of, name) : -1;
    if (a < 0 || isnan(s->acts[a].floor_db))
        return NAN;
    if (sample)
        *sample = s->acts[a].least_sample;
    return s->acts[a].floor_db;
}

void mq_quant_stats_free(struct mq_quant_stats *s)
{
    if (!s)
        return;
    if (s->workers)
        workers_done(s, s->workers, s->n_workers, 0);
    for (int i = 0; i < s->n_acts; i++)
        free(s->acts[i].name);
    free(s->acts);
    for (int i = 0; i < s->n_means; i++) {
        free(s->means[i].input);
        free(s->means[i].weight);
        free(s->means[i].sums);
    }
    free(s->means);
    mq_strmap_free(s->act_of);
    mq_strmap_free(s->mean_of);
    mq_strmap_free(s->reader_of);
    free(s->reader_next);
    free(s);
}

double mq_quant_stats_worst_sqnr(const struct mq_quant_stats *s, const char *name,
                                 int64_t *sample)
{
    int a = s ? mq_strmap_get(s->act_of, name) : -1;
    if (a < 0 || !s->acts[a].seen)
        return NAN;
    if (sample)
        *sample = s->acts[a].worst_sample;
    return s->acts[a].worst_db;
}

const double *mq_quant_stats_input_means(const struct mq_quant_stats *s, const char *input,
                                         const char *weight, int64_t *n_channels, int64_t *taps)
{
    if (!s)
        return NULL;
    char *key = mean_key(input, weight);
    int m = key ? mq_strmap_get(s->mean_of, key) : -1;
    free(key);
    if (m < 0)
        return NULL;
    const struct mean_stat *ms = &s->means[m];
    if (ms->broken || !(ms->positions > 0.0))
        return NULL;
    *n_channels = ms->channels;
    *taps = ms->taps;
    return ms->sums;
}

int mq_quant_stats_rescale(void *stats, const char *tensor, int64_t channels, const double *s,
                           struct mq_error *err)
{
    (void)err;
    struct mq_quant_stats *st = stats;
    if (!st || channels <= 0)
        return MQ_OK;
    double largest = 0.0;
    for (int64_t c = 0; c < channels; c++)
        largest = s[c] > largest ? s[c] : largest;
    int a = mq_strmap_get(st->act_of, tensor);
    if (a >= 0 && st->acts[a].energy_seen)
        st->acts[a].least_energy = largest > 0.0 ? st->acts[a].least_energy / (largest * largest)
                                                 : 0.0;
    for (int m = mq_strmap_get(st->reader_of, tensor); m >= 0; m = st->reader_next[m]) {
        struct mean_stat *ms = &st->means[m];
        if (ms->broken || !ms->sums)
            continue;
        if (ms->is_gemm || ms->channels != channels) {
            ms->broken = 1;
            continue;
        }
        for (int64_t c = 0; c < channels; c++)
            for (int64_t t = 0; t < ms->taps; t++)
                ms->sums[c * ms->taps + t] /= s[c];
    }
    return MQ_OK;
}
