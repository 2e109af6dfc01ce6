/*
 * The samples of a model comparison run through both models on worker
 * threads (calib/driver.h), each sample's statistics merged into the result
 * in sample order (see divergence_pass.h), and the cache of A's outputs
 * kept across comparisons.
 */
#include "report/divergence_pass.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"

/* ------------------------------------------------------- one sample's findings */

/* A pair A produced for the first time on a worker: its producer names it, and the first
   sample (in sample order) to see it places it in the order of layers. */
struct new_pair {
    int pair;
    char *node, *op_type;
};

struct new_tensor {
    char *name;
    struct mq_divergence_producer producer;
};

/* What one sample found, waiting for the samples before it to be merged. */
struct partial {
    struct mq_error_stats *outputs;   /* [n_outputs] */
    struct mq_top1_stats *top1;
    unsigned char *class_scores;      /* A's output looked like class scores */
    struct mq_error_stats *layers;    /* [n_pairs], per layer only */
    int64_t *shape_mismatches;
    struct new_pair *new_pairs;       /* in the order A produced them */
    int n_new_pairs, cap_new_pairs;
    struct new_tensor *new_tensors;
    int n_new_tensors, cap_new_tensors;
};

static void partial_free(struct partial *p)
{
    if (!p)
        return;
    free(p->outputs);
    free(p->top1);
    free(p->class_scores);
    free(p->layers);
    free(p->shape_mismatches);
    for (int i = 0; i < p->n_new_pairs; i++) {
        free(p->new_pairs[i].node);
        free(p->new_pairs[i].op_type);
    }
    free(p->new_pairs);
    for (int i = 0; i < p->n_new_tensors; i++) {
        free(p->new_tensors[i].name);
        mq_divergence_producer_free(&p->new_tensors[i].producer);
    }
    free(p->new_tensors);
    free(p);
}

static struct partial *partial_new(int n_outputs, int n_pairs)
{
    struct partial *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->outputs = calloc((size_t)n_outputs + 1, sizeof *p->outputs);
    p->top1 = calloc((size_t)n_outputs + 1, sizeof *p->top1);
    p->class_scores = calloc((size_t)n_outputs + 1, 1);
    p->layers = calloc((size_t)n_pairs + 1, sizeof *p->layers);
    p->shape_mismatches = calloc((size_t)n_pairs + 1, sizeof *p->shape_mismatches);
    if (!p->outputs || !p->top1 || !p->class_scores || !p->layers || !p->shape_mismatches) {
        partial_free(p);
        return NULL;
    }
    for (int i = 0; i < n_outputs; i++)
        mq_error_stats_init(&p->outputs[i]);
    for (int i = 0; i < n_pairs; i++)
        mq_error_stats_init(&p->layers[i]);
    return p;
}

static int note_new_pair(struct partial *p, int pair, const struct mq_kernel_node *producer)
{
    if (p->n_new_pairs == p->cap_new_pairs) {
        int cap = p->cap_new_pairs ? 2 * p->cap_new_pairs : 32;
        struct new_pair *v = realloc(p->new_pairs, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        p->new_pairs = v;
        p->cap_new_pairs = cap;
    }
    struct new_pair *n = &p->new_pairs[p->n_new_pairs];
    n->pair = pair;
    n->node = strdup(mq_str(producer->name));
    n->op_type = strdup(mq_str(producer->op_type));
    p->n_new_pairs++;
    return n->node && n->op_type ? 0 : -1;
}

static int note_new_tensor(struct partial *p, const char *name,
                           const struct mq_kernel_node *producer)
{
    if (p->n_new_tensors == p->cap_new_tensors) {
        int cap = p->cap_new_tensors ? 2 * p->cap_new_tensors : 64;
        struct new_tensor *v = realloc(p->new_tensors, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        p->new_tensors = v;
        p->cap_new_tensors = cap;
    }
    struct new_tensor *n = &p->new_tensors[p->n_new_tensors++];
    memset(n, 0, sizeof *n);
    struct mq_divergence_producer *t = &n->producer;
    n->name = strdup(name);
    t->node = strdup(mq_str(producer->name));
    t->op_type = strdup(mq_str(producer->op_type));
    if (!n->name || !t->node || !t->op_type)
        return -1;
    const Onnx__NodeProto *proto = producer->proto;
    if (!proto || proto->n_input == 0)
        return 0;
    t->inputs = calloc(proto->n_input, sizeof *t->inputs);
    if (!t->inputs)
        return -1;
    for (size_t k = 0; k < proto->n_input; k++) {
        if (!proto->input[k] || !*proto->input[k])
            continue;
        if (!(t->inputs[t->n_inputs] = strdup(proto->input[k])))
            return -1;
        t->n_inputs++;
    }
    return 0;
}

/* ------------------------------------------------------------ workers */

/* One worker's side of a pair, for the sample it runs. */
struct worker_pair {
    int seen_a, seen_b;      /* this sample */
    int known;               /* this worker saw A produce it before */
    struct mq_tensor copy;   /* A's value this sample, float32, until B produces its own */
    int have_copy;
    struct mq_error_stats stats;
    int64_t shape_mismatches;
};

struct shared;

struct worker {
    struct shared *shared;
    struct mq_tensor *in_b, *out_a, *out_b;
    struct worker_pair *pairs;         /* per layer */
    struct mq_strmap *seen_tensors;    /* tensors of A this worker saw produced */
    struct partial *current;
};

/* What the workers share; the fields after `lock` are under it. */
struct shared {
    const struct mq_divergence_pass *pass;
    int na_in, nb_in, na_out, nb_out, n_pairs;
    int64_t n_samples;
    struct mq_divergence_cache *cache;   /* NULL per layer */
    pthread_mutex_t lock;
    struct partial **pending;            /* [n_samples]: done, not merged yet */
    int64_t next_merge;
    int merge_failed;
};

static void worker_end_sample(struct worker *w)
{
    for (int i = 0; w->pairs && i < w->shared->n_pairs; i++) {
        struct worker_pair *p = &w->pairs[i];
        mq_tensor_free(&p->copy);
        p->have_copy = p->seen_a = p->seen_b = 0;
        mq_error_stats_init(&p->stats);
        p->shape_mismatches = 0;
    }
    struct shared *s = w->shared;
    for (int i = 0; i < s->na_out; i++)
        mq_tensor_free(&w->out_a[i]);
    for (int k = 0; k < s->nb_in; k++)
        mq_tensor_free(&w->in_b[k]);
    for (int k = 0; k < s->nb_out; k++)
        mq_tensor_free(&w->out_b[k]);
}

static void worker_free(struct worker *w)
{
    if (!w->shared)
        return;
    worker_end_sample(w);
    free(w->in_b);
    free(w->out_a);
    free(w->out_b);
    free(w->pairs);
    mq_strmap_free(w->seen_tensors);
    partial_free(w->current);
}

static int worker_init(struct worker *w, struct shared *s)
{
    memset(w, 0, sizeof *w);
    w->shared = s;
    w->in_b = calloc((size_t)s->nb_in + 1, sizeof *w->in_b);
    w->out_a = calloc((size_t)s->na_out + 1, sizeof *w->out_a);
    w->out_b = calloc((size_t)s->nb_out + 1, sizeof *w->out_b);
    if (!w->in_b || !w->out_a || !w->out_b)
        return -1;
    if (s->pass->pairs) {
        w->pairs = calloc((size_t)s->n_pairs + 1, sizeof *w->pairs);
        w->seen_tensors = mq_strmap_new();
        if (!w->pairs || !w->seen_tensors)
            return -1;
        for (int i = 0; i < s->n_pairs; i++)
            mq_error_stats_init(&w->pairs[i].stats);
    }
    return 0;
}

/* A float32 copy of a float value (float16 and double widened or narrowed). */
static int copy_as_float(struct mq_tensor *dst, const struct mq_tensor *src, const char *what,
                         struct mq_error *err)
{
    /* Every element is written below: no zero fill first. */
    if (mq_tensor_alloc_uninit(dst, MQ_DTYPE_FLOAT, src->rank, src->dims, what, err))
        return MQ_ERR;
    float *d = dst->data;
    if (src->dtype == MQ_DTYPE_FLOAT)
        memcpy(d, src->data, (size_t)src->count * sizeof *d);
    else
        for (int64_t i = 0; i < src->count; i++)
            d[i] = (float)mq_tensor_get_double(src, i);
    return MQ_OK;
}

static int observe_a(void *user, const struct mq_kernel_node *producer, const char *name,
                     const struct mq_tensor *value, struct mq_error *err)
{
    struct worker *w = user;
    if (!producer)
        return MQ_OK;
    if (mq_strmap_get(w->seen_tensors, name) < 0 &&
        (mq_strmap_put(w->seen_tensors, name, 0) || note_new_tensor(w->current, name, producer)))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int i = mq_strmap_get(w->shared->pass->pairs->by_a, name);
    if (i < 0)
        return MQ_OK;
    struct worker_pair *p = &w->pairs[i];
    if (p->seen_a)
        return MQ_OK;
    p->seen_a = 1;
    if (!p->known) {
        p->known = 1;
        if (note_new_pair(w->current, i, producer))
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    if (!mq_dtype_is_float(value->dtype) || value->dtype == MQ_DTYPE_BFLOAT16)
        return MQ_OK;
    if (copy_as_float(&p->copy, value, name, err))
        return MQ_ERR;
    p->have_copy = 1;
    return MQ_OK;
}

/*
 * The axis along which B holds more entries than A, all else equal: a tensor
 * the quantizer widened with zero channels (a depthwise Conv padded to the
 * count onnxruntime's fast kernel takes); -1 when the shapes differ otherwise.
 */
static int widened_axis(const struct mq_tensor *a, const struct mq_tensor *b)
{
    if (a->rank != b->rank)
        return -1;
    int axis = -1;
    for (int d = 0; d < a->rank; d++) {
        if (a->dims[d] == b->dims[d])
            continue;
        if (axis >= 0 || b->dims[d] < a->dims[d])
            return -1;
        axis = d;
    }
    return axis;
}

/* B's leading entries along `axis`, as many as A has, as float32: what A's tensor is compared
   with.  Read straight from B (no widened copy of all of B first). */
static int leading_entries(const struct mq_tensor *a, const struct mq_tensor *b, int axis,
                           struct mq_tensor *out, const char *what, struct mq_error *err)
{
    /* Every element is written below: no zero fill first. */
    if (mq_tensor_alloc_uninit(out, MQ_DTYPE_FLOAT, a->rank, a->dims, what, err))
        return MQ_ERR;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= a->dims[d];
    for (int d = axis + 1; d < a->rank; d++)
        inner *= a->dims[d];
    int64_t row = a->dims[axis] * inner, wide_row = b->dims[axis] * inner;
    float *dst = out->data;
    for (int64_t o = 0; o < outer; o++) {
        if (b->dtype == MQ_DTYPE_FLOAT) {
            memcpy(dst + o * row, (const float *)b->data + o * wide_row,
                   (size_t)row * sizeof *dst);
        } else {
            for (int64_t j = 0; j < row; j++)
                dst[o * row + j] = (float)mq_tensor_get_double(b, o * wide_row + j);
        }
    }
    return MQ_OK;
}

static int observe_b(void *user, const struct mq_kernel_node *producer, const char *name,
                     const struct mq_tensor *value, struct mq_error *err)
{
    (void)producer;
    struct worker *w = user;
    int i = mq_strmap_get(w->shared->pass->pairs->by_b, name);
    if (i < 0)
        return MQ_OK;
    struct worker_pair *p = &w->pairs[i];
    if (p->seen_b)
        return MQ_OK;
    p->seen_b = 1;
    if (!p->have_copy)
        return MQ_OK;
    int rc = MQ_OK;
    if (!mq_dtype_is_float(value->dtype)) {
        /* The other model holds something else under this name: not comparable. */
    } else if (!mq_shape_equal(&p->copy, value)) {
        int axis = widened_axis(&p->copy, value);
        struct mq_tensor lead;
        if (axis < 0) {
            p->shape_mismatches++;
        } else if ((rc = leading_entries(&p->copy, value, axis, &lead, name, err)) == MQ_OK) {
            rc = mq_error_stats_add(&p->stats, &p->copy, &lead, name, err);
            mq_tensor_free(&lead);
        }
    } else {
        rc = mq_error_stats_add(&p->stats, &p->copy, value, name, err);
    }
    mq_tensor_free(&p->copy);
    p->have_copy = 0;
    return rc;
}

/* ---------------------------------------------------------- merging in order */

static int merge_tensor(struct mq_divergence_pairs *c, struct new_tensor *n)
{
    if (mq_strmap_get(c->produced_by_name, n->name) >= 0)
        return 0;
    if (c->n_produced == c->cap_produced) {
        int cap = c->cap_produced ? c->cap_produced * 2 : 64;
        struct mq_divergence_producer *v = realloc(c->produced, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        c->produced = v;
        c->cap_produced = cap;
    }
    if (mq_strmap_put(c->produced_by_name, n->name, c->n_produced))
        return -1;
    c->produced[c->n_produced++] = n->producer;
    memset(&n->producer, 0, sizeof n->producer);
    return 0;
}

/* Adds sample p to the result: what one thread adding the samples in order would have done. */
static int merge(struct shared *s, struct partial *p)
{
    struct mq_divergence_result *r = s->pass->result;
    for (int i = 0; i < s->na_out; i++) {
        struct mq_divergence_output *oc = &r->outputs[i];
        mq_error_stats_merge(&oc->stats, &p->outputs[i]);
        if (oc->class_scores && p->class_scores[i]) {
            oc->top1.rows += p->top1[i].rows;
            oc->top1.agree += p->top1[i].agree;
        } else {
            oc->class_scores = 0;
        }
    }
    r->samples++;
    struct mq_divergence_pairs *c = s->pass->pairs;
    if (!c)
        return 0;
    for (int i = 0; i < p->n_new_tensors; i++)
        if (merge_tensor(c, &p->new_tensors[i]))
            return -1;
    for (int i = 0; i < p->n_new_pairs; i++) {
        struct new_pair *n = &p->new_pairs[i];
        struct mq_divergence_layer *l = &c->pairs[n->pair].layer;
        if (l->order >= 0)
            continue;
        l->order = c->next_order++;
        l->node = n->node;
        l->op_type = n->op_type;
        n->node = n->op_type = NULL;
    }
    for (int i = 0; i < c->n_pairs; i++) {
        mq_error_stats_merge(&c->pairs[i].layer.stats, &p->layers[i]);
        c->pairs[i].layer.shape_mismatches += p->shape_mismatches[i];
    }
    return 0;
}

/* Hands sample i over and merges every sample that is now next in line. */
static void submit(struct shared *s, int64_t i, struct partial *p)
{
    pthread_mutex_lock(&s->lock);
    s->pending[i] = p;
    while (s->next_merge < s->n_samples && s->pending[s->next_merge]) {
        struct partial *next = s->pending[s->next_merge];
        s->pending[s->next_merge++] = NULL;
        if (!s->merge_failed && merge(s, next))
            s->merge_failed = 1;
        partial_free(next);
    }
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------ the cache of A's outputs */

#define REFERENCE_CACHE_DEFAULT_BYTES ((size_t)256 << 20)

void mq_divergence_cache_free(struct mq_divergence_cache *cache)
{
    int64_t n = cache->n_samples * cache->n_outputs;
    for (int64_t i = 0; cache->outputs && i < n; i++)
        mq_tensor_free(&cache->outputs[i]);
    free(cache->outputs);
    free(cache->filled);
    memset(cache, 0, sizeof *cache);
}

/* Makes room for the index before the threads start, so they only ever touch their own
   samples' slots; a cache made for other samples is left alone (and not used). */
void mq_divergence_cache_prepare(struct mq_divergence_cache *cache, int64_t n_samples,
                                 int n_outputs)
{
    if (!cache || cache->filled)
        return;
    cache->outputs = calloc((size_t)(n_samples * n_outputs) + 1, sizeof *cache->outputs);
    cache->filled = calloc((size_t)n_samples + 1, 1);
    if (!cache->outputs || !cache->filled) {
        free(cache->outputs);
        free(cache->filled);
        cache->outputs = NULL;
        cache->filled = NULL;
        return;
    }
    cache->n_samples = n_samples;
    cache->n_outputs = n_outputs;
}

/* A's outputs for sample i when the cache holds them, else NULL. */
static const struct mq_tensor *reference_lookup(const struct shared *s, int64_t i)
{
    const struct mq_divergence_cache *cache = s->cache;
    if (!cache || !cache->filled || cache->n_samples != s->n_samples ||
        cache->n_outputs != s->na_out || !cache->filled[i])
        return NULL;
    return &cache->outputs[i * s->na_out];
}

/* Adds `need` to the bytes held when the total stays within the cap; 0 when it would not.
   Atomic: stores of different samples run on different threads. */
static int reserve_bytes(struct mq_divergence_cache *cache, size_t need)
{
    size_t cap = cache->max_bytes ? cache->max_bytes : REFERENCE_CACHE_DEFAULT_BYTES;
    size_t held = __atomic_load_n(&cache->bytes, __ATOMIC_RELAXED);
    do {
        if (held > cap || need > cap - held)
            return 0;
    } while (!__atomic_compare_exchange_n(&cache->bytes, &held, held + need, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return 1;
}

/* Keeps copies of A's outputs for sample i while they fit; a sample that does not fit is
   simply run again next time, so failing to store is never an error.  Which samples fit
   may depend on the threads' timing, never the figures: the cache holds what A computes. */
void mq_divergence_cache_store(struct mq_divergence_cache *cache, int64_t i,
                               const struct mq_tensor *outputs, int n)
{
    if (!cache || !cache->filled || i < 0 || i >= cache->n_samples || cache->n_outputs != n ||
        cache->filled[i])
        return;
    size_t need = 0;
    for (int k = 0; k < n; k++)
        need += (size_t)outputs[k].count * mq_dtype_size(outputs[k].dtype);
    if (!reserve_bytes(cache, need))
        return;
    struct mq_error ignored;
    struct mq_tensor *slot = &cache->outputs[i * n];
    for (int k = 0; k < n; k++)
        if (mq_tensor_copy(&slot[k], &outputs[k], "reference output", &ignored)) {
            for (int j = 0; j < k; j++)
                mq_tensor_free(&slot[j]);
            __atomic_fetch_sub(&cache->bytes, need, __ATOMIC_RELAXED);
            return;
        }
    cache->filled[i] = 1;
}

/* ------------------------------------------------------------- one sample */

/* Feeds A's input to B: a view, or a converted copy where B declares another float width. */
static int feed_b(const struct mq_tensor *src, const Onnx__ValueInfoProto *info,
                  struct mq_tensor *dst, struct mq_error *err)
{
    int want = mq_value_info_dtype(info);
    const char *name = mq_str(info->name);
    if (want == src->dtype || !want || !mq_dtype_is_float(want) || !mq_dtype_is_float(src->dtype)) {
        mq_tensor_view(dst, src);
        return MQ_OK;
    }
    if (mq_tensor_alloc(dst, want, src->rank, src->dims, name, err))
        return MQ_ERR;
    for (int64_t i = 0; i < src->count; i++) {
        double v = mq_tensor_get_double(src, i);
        switch (want) {
        case MQ_DTYPE_FLOAT: ((float *)dst->data)[i] = (float)v; break;
        case MQ_DTYPE_DOUBLE: ((double *)dst->data)[i] = v; break;
        case MQ_DTYPE_FLOAT16: ((uint16_t *)dst->data)[i] = mq_float_to_half((float)v); break;
        default: ((uint16_t *)dst->data)[i] = mq_float_to_bfloat16((float)v); break;
        }
    }
    return MQ_OK;
}

static int compare_outputs(struct shared *s, struct worker *w, const struct mq_tensor *ref,
                           struct mq_error *err)
{
    const struct mq_divergence_pass *pass = s->pass;
    struct partial *p = w->current;
    for (int i = 0; i < s->na_out; i++) {
        const char *name = pass->result->outputs[i].name;
        const struct mq_tensor *ta = ref ? &ref[i] : &w->out_a[i];
        const struct mq_tensor *tb = &w->out_b[pass->out_map[i]];
        int rc = mq_error_stats_add(&p->outputs[i], ta, tb, name, err);
        if (rc == MQ_OK && (p->class_scores[i] = (unsigned char)mq_looks_like_class_scores(ta)))
            rc = mq_top1_add(&p->top1[i], ta, tb, name, err);
        if (rc) {
            mq_error_prefix(err, "output ");
            return rc;
        }
    }
    return MQ_OK;
}

static int run_sample(void *user, int64_t i, const struct mq_tensor *in_a, int n_inputs,
                      struct mq_error *err)
{
    struct worker *w = user;
    struct shared *s = w->shared;
    const struct mq_divergence_pass *pass = s->pass;
    int per_layer = pass->pairs != NULL;
    (void)n_inputs;
    if (!(w->current = partial_new(s->na_out, s->n_pairs)))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    int rc = MQ_OK;
    for (int k = 0; rc == MQ_OK && k < s->nb_in; k++)
        rc = feed_b(&in_a[pass->in_map[k]], mq_plan_input(pass->b, k), &w->in_b[k], err);
    struct mq_run_options run_a = {observe_a, w}, run_b = {observe_b, w};
    const struct mq_tensor *ref = reference_lookup(s, i);
    if (rc == MQ_OK && !ref) {
        if ((rc = mq_plan_run(pass->a, in_a, s->na_in, w->out_a, s->na_out,
                              per_layer ? &run_a : NULL, err)))
            mq_error_prefix(err, "model A: ");
        else
            mq_divergence_cache_store(s->cache, i, w->out_a, s->na_out);
    }
    if (rc == MQ_OK && (rc = mq_plan_run(pass->b, w->in_b, s->nb_in, w->out_b, s->nb_out,
                                         per_layer ? &run_b : NULL, err)))
        mq_error_prefix(err, "model B: ");
    if (rc == MQ_OK)
        rc = compare_outputs(s, w, ref, err);
    for (int k = 0; rc == MQ_OK && per_layer && k < s->n_pairs; k++) {
        w->current->layers[k] = w->pairs[k].stats;
        w->current->shape_mismatches[k] = w->pairs[k].shape_mismatches;
    }
    worker_end_sample(w);
    if (rc == MQ_OK)
        submit(s, i, w->current);
    else
        partial_free(w->current);
    w->current = NULL;
    return rc;
}

int mq_divergence_pass_run(const struct mq_divergence_pass *pass, struct mq_error *err)
{
    const struct mq_divergence_options *o = pass->options;
    struct shared s;
    memset(&s, 0, sizeof s);
    s.pass = pass;
    s.na_in = mq_plan_input_count(pass->a);
    s.nb_in = mq_plan_input_count(pass->b);
    s.na_out = mq_plan_output_count(pass->a);
    s.nb_out = mq_plan_output_count(pass->b);
    s.n_pairs = pass->pairs ? pass->pairs->n_pairs : 0;
    s.n_samples = mq_calib_source_count(pass->source);
    s.cache = pass->pairs ? NULL : o->reference;
    mq_divergence_cache_prepare(s.cache, s.n_samples, s.na_out);
    struct mq_sample_pass sp = {.plan = pass->a, .source = pass->source, .jobs = o->jobs,
                                .run = run_sample};
    int jobs = mq_sample_pass_jobs(&sp);
    struct worker *workers = calloc((size_t)jobs, sizeof *workers);
    void **worker_ptrs = calloc((size_t)jobs, sizeof *worker_ptrs);
    s.pending = calloc((size_t)s.n_samples + 1, sizeof *s.pending);
    int rc = workers && worker_ptrs && s.pending ? MQ_OK : MQ_ERR_MEMORY;
    for (int t = 0; rc == MQ_OK && t < jobs; t++) {
        worker_ptrs[t] = &workers[t];
        if (worker_init(&workers[t], &s))
            rc = MQ_ERR_MEMORY;
    }
    if (rc) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    } else {
        pthread_mutex_init(&s.lock, NULL);
        sp.workers = worker_ptrs;
        int64_t done;
        rc = mq_sample_pass_run(&sp, &done, err);
        pthread_mutex_destroy(&s.lock);
        if (rc == MQ_OK && s.merge_failed)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    for (int t = 0; workers && t < jobs; t++)
        worker_free(&workers[t]);
    for (int64_t i = 0; s.pending && i < s.n_samples; i++)
        partial_free(s.pending[i]);
    free(s.pending);
    free(workers);
    free(worker_ptrs);
    return rc;
}
