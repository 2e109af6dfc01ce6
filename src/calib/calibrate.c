#include "calib/calibrate.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calib/observer.h"
#include "interp/plan.h"
/* Folded constants live in the plan's values; only the planner's own header lists them. */

/* ---- name lists ------------------------------------------------------------------------ */

int mq_name_list_add(struct mq_name_list *list, const char *name, struct mq_error *err)
{
    if (list->n == list->cap) {
        int cap = list->cap ? list->cap * 2 : 64;
        char **bigger = realloc(list->names, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory listing tensor names");
        list->names = bigger;
        list->cap = cap;
    }
    list->names[list->n] = strdup(name);
    if (!list->names[list->n])
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory listing tensor names");
    list->n++;
    return MQ_OK;
}

static int compare_string_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void mq_name_list_finish(struct mq_name_list *list)
{
    if (list->n < 2)
        return;
    qsort(list->names, (size_t)list->n, sizeof *list->names, compare_string_ptr);
    int kept = 1;
    for (int i = 1; i < list->n; i++) {
        if (strcmp(list->names[i], list->names[kept - 1]) == 0)
            free(list->names[i]);
        else
            list->names[kept++] = list->names[i];
    }
    list->n = kept;
}

int mq_name_list_contains(const struct mq_name_list *list, const char *name)
{
    return list->n > 0 && bsearch(&name, list->names, (size_t)list->n, sizeof *list->names,
                                  compare_string_ptr) != NULL;
}

void mq_name_list_free(struct mq_name_list *list)
{
    for (int i = 0; i < list->n; i++)
        free(list->names[i]);
    free(list->names);
    memset(list, 0, sizeof *list);
}

/* ---- a name -> index table ------------------------------------------------------------- */

struct name_table {
    int size;                 /* power of two, more than twice the entries */
    const char **keys;
    int *values;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int table_init(struct name_table *t, int entries)
{
    t->size = 16;
    while (t->size < entries * 2 + 1)
        t->size *= 2;
    t->keys = calloc((size_t)t->size, sizeof *t->keys);
    t->values = malloc((size_t)t->size * sizeof *t->values);
    return t->keys && t->values ? MQ_OK : MQ_ERR_MEMORY;
}

static void table_free(struct name_table *t)
{
    free(t->keys);
    free(t->values);
    memset(t, 0, sizeof *t);
}

/* Inserts name -> value unless name is present; returns the value the table holds for name. */
static int table_put(struct name_table *t, const char *name, int value)
{
    size_t mask = (size_t)t->size - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        if (!t->keys[i]) {
            t->keys[i] = name;
            t->values[i] = value;
            return value;
        }
        if (strcmp(t->keys[i], name) == 0)
            return t->values[i];
    }
}

static int table_get(const struct name_table *t, const char *name)
{
    if (!t->size)
        return -1;
    size_t mask = (size_t)t->size - 1;
    for (size_t i = hash_name(name) & mask; t->keys[i]; i = (i + 1) & mask)
        if (strcmp(t->keys[i], name) == 0)
            return t->values[i];
    return -1;
}

/* ---- collecting the names to observe --------------------------------------------------- */

/* What a scope knows of a name; KIND_UNKNOWN: declared there, type not given. */
enum { KIND_CONSTANT = 1, KIND_NOT_FLOAT = 2, KIND_FLOAT = 3, KIND_UNKNOWN = 4 };

struct scope {
    const struct scope *parent;
    struct name_table kinds;
};

static int declared_kind(const Onnx__ValueInfoProto *vi)
{
    const Onnx__TypeProto *t = vi->type;
    if (!t || t->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return 0;
    if (t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return KIND_NOT_FLOAT;
    if (!t->tensor_type->has_elem_type || t->tensor_type->elem_type == 0)
        return 0;
    return mq_dtype_is_float(t->tensor_type->elem_type) ? KIND_FLOAT : KIND_NOT_FLOAT;
}

/* The kind of a node's outputs when its op type alone says; 0 when it does not. */
static int node_output_kind(const Onnx__NodeProto *node)
{
    const char *op = mq_str(node->op_type);
    if (*mq_str(node->domain) && strcmp(mq_str(node->domain), "ai.onnx") != 0)
        return 0;
    if (strcmp(op, "Shape") == 0 || strcmp(op, "Size") == 0)
        return KIND_NOT_FLOAT;
    if (strcmp(op, "Constant") != 0 || node->n_attribute != 1)
        return 0;
    const Onnx__AttributeProto *a = node->attribute[0];
    const char *name = mq_str(a->name);
    if (strcmp(name, "value") == 0 && a->t && a->t->has_data_type)
        return mq_dtype_is_float(a->t->data_type) ? KIND_FLOAT : KIND_NOT_FLOAT;
    if (strcmp(name, "value_float") == 0 || strcmp(name, "value_floats") == 0)
        return KIND_FLOAT;
    if (strcmp(name, "value_int") == 0 || strcmp(name, "value_ints") == 0 ||
        strcmp(name, "value_string") == 0 || strcmp(name, "value_strings") == 0)
        return KIND_NOT_FLOAT;
    return 0;
}

static int scope_kind(const struct scope *s, const char *name)
{
    for (; s; s = s->parent) {
        int k = table_get(&s->kinds, name);
        if (k > 0)
            return k;
    }
    return 0;
}

static int collect_graph(const Onnx__GraphProto *g, const struct scope *parent, int depth,
                         mq_node_predicate_fn predicate, void *user, struct mq_name_list *out,
                         struct mq_error *err)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(err, "graph '%s': subgraphs nested deeper than %d", mq_str(g->name),
                            MQ_MAX_SUBGRAPH_DEPTH);
    struct scope s = {parent, {0}};
    size_t entries = g->n_input + g->n_output + g->n_value_info + g->n_initializer +
                     g->n_sparse_initializer;
    for (size_t n = 0; n < g->n_node && entries <= (size_t)INT32_MAX; n++)
        entries += g->node[n]->n_output;
    if (entries > (size_t)INT32_MAX / 4 || table_init(&s.kinds, (int)entries))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory collecting tensor names");
    /*
     * The first entry for a name wins.  In the main graph an input with an
     * initializer is a constant with a default, so initializers go first; in a
     * subgraph a formal input shadows an initializer, so inputs go first.
     */
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) == (depth == 0)) {
            for (size_t i = 0; i < g->n_initializer; i++)
                table_put(&s.kinds, mq_str(g->initializer[i]->name), KIND_CONSTANT);
            for (size_t i = 0; i < g->n_sparse_initializer; i++)
                if (g->sparse_initializer[i]->values)
                    table_put(&s.kinds, mq_str(g->sparse_initializer[i]->values->name),
                              KIND_CONSTANT);
        } else {
            for (size_t i = 0; i < g->n_input; i++) {
                int k = declared_kind(g->input[i]);
                table_put(&s.kinds, mq_str(g->input[i]->name), k ? k : KIND_UNKNOWN);
            }
        }
    }
    for (size_t i = 0; i < g->n_output; i++) {
        int k = declared_kind(g->output[i]);
        if (k)
            table_put(&s.kinds, mq_str(g->output[i]->name), k);
    }
    for (size_t i = 0; i < g->n_value_info; i++) {
        int k = declared_kind(g->value_info[i]);
        if (k)
            table_put(&s.kinds, mq_str(g->value_info[i]->name), k);
    }

    /* Outputs whose type the node itself fixes: Constant's value, Shape and Size's int64. */
    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        int k = node_output_kind(node);
        for (size_t o = 0; k && o < node->n_output; o++)
            table_put(&s.kinds, mq_str(node->output[o]), k);
    }

    int rc = MQ_OK;
    for (size_t n = 0; rc == MQ_OK && n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        if (predicate(user, node)) {
            for (size_t i = 0; rc == MQ_OK && i < node->n_input + node->n_output; i++) {
                const char *name = mq_str(i < node->n_input ? node->input[i]
                                                            : node->output[i - node->n_input]);
                int k = *name ? scope_kind(&s, name) : KIND_CONSTANT;
                if (k != KIND_CONSTANT && k != KIND_NOT_FLOAT)
                    rc = mq_name_list_add(out, name, err);
            }
        }
        for (size_t a = 0; rc == MQ_OK && a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (attr->g)
                rc = collect_graph(attr->g, &s, depth + 1, predicate, user, out, err);
            for (size_t k = 0; rc == MQ_OK && k < attr->n_graphs; k++)
                rc = collect_graph(attr->graphs[k], &s, depth + 1, predicate, user, out, err);
        }
    }
    table_free(&s.kinds);
    return rc;
}

int mq_calib_collect_names(const Onnx__GraphProto *graph, mq_node_predicate_fn predicate,
                           void *user, struct mq_name_list *out, struct mq_error *err)
{
    int rc = collect_graph(graph, NULL, 0, predicate, user, out, err);
    mq_name_list_finish(out);
    return rc;
}

/* ---- the driver ------------------------------------------------------------------------ */

void mq_calib_options_init(struct mq_calib_options *options)
{
    memset(options, 0, sizeof *options);
    options->method = MQ_CALIB_MINMAX;
    options->percentile = MQ_CALIB_DEFAULT_PERCENTILE;
}

/* A value the planner folded: observed once per sample, as if a node produced it. */
struct folded {
    int index;
    const struct mq_tensor *value;
};

struct driver {
    const struct mq_plan *plan;
    const struct mq_calib_source *source;
    const struct mq_name_list *names;
    struct name_table index;
    struct folded *folded;
    int n_folded, cap_folded;
    unsigned char *folded_not_float; /* per name: a folded constant that is not float */
    int with_histogram;
    volatile sig_atomic_t *cancel;

    pthread_mutex_t lock;
    pthread_cond_t changed;
    int64_t next, done, total;
    int running;
    int interrupted;
    int64_t failed_at;           /* lowest failing sample; INT64_MAX while none */
    int failed_rc;
    struct mq_error failed_err;
};

struct worker {
    struct driver *d;
    struct mq_observer *observers; /* one per name */
    unsigned char *not_float;      /* per name: seen holding a non-float value */
    pthread_t thread;
    int started;
};

static int note_constant(void *user, const char *name, const struct mq_tensor *value,
                         struct mq_error *err)
{
    struct driver *d = user;
    int index = table_get(&d->index, name);
    if (index < 0)
        return MQ_OK;
    if (!mq_dtype_is_float(value->dtype)) {
        d->folded_not_float[index] = 1;
        return MQ_OK;
    }
    for (int k = 0; k < d->n_folded; k++)
        if (d->folded[k].index == index)
            return MQ_OK;
    if (d->n_folded == d->cap_folded) {
        int cap = d->cap_folded ? d->cap_folded * 2 : 16;
        struct folded *bigger = realloc(d->folded, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        d->folded = bigger;
        d->cap_folded = cap;
    }
    d->folded[d->n_folded++] = (struct folded){index, value};
    return MQ_OK;
}

static int observe_value(struct worker *w, int index, const struct mq_tensor *t,
                         struct mq_error *err)
{
    struct mq_observer *o = &w->observers[index];
    if (w->d->with_histogram && !o->histogram) {
        /* Allocated on first sight: tensors a thread never sees cost it nothing. */
        o->histogram = malloc(sizeof *o->histogram);
        if (!o->histogram)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory for a histogram");
        mq_histogram_init(o->histogram);
    }
    if (mq_observer_add(o, t, err)) {
        mq_error_prefix(err, "tensor '%s': ", w->d->names->names[index]);
        return MQ_ERR;
    }
    return MQ_OK;
}

static int observe_produced(void *user, const struct mq_kernel_node *producer,
                            const char *name, const struct mq_tensor *value, struct mq_error *err)
{
    struct worker *w = user;
    int index = table_get(&w->d->index, name);
    if (index < 0)
        return MQ_OK;
    if (!mq_dtype_is_float(value->dtype)) {
        w->not_float[index] = 1;
        return MQ_OK;
    }
    if (observe_value(w, index, value, err)) {
        if (producer)
            mq_error_prefix(err, "node '%s' (%s): ", producer->name, producer->op_type);
        return MQ_ERR;
    }
    return MQ_OK;
}

static int run_sample(struct worker *w, int64_t i, struct mq_tensor *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    struct driver *d = w->d;
    int rc = mq_calib_source_load(d->source, i, inputs, err);
    for (int k = 0; rc == MQ_OK && k < n_inputs; k++) {
        int index = table_get(&d->index, mq_str(mq_plan_input(d->plan, k)->name));
        if (index >= 0 && mq_dtype_is_float(inputs[k].dtype))
            rc = observe_value(w, index, &inputs[k], err);
        else if (index >= 0)
            w->not_float[index] = 1;
    }
    for (int k = 0; rc == MQ_OK && k < d->n_folded; k++)
        rc = observe_value(w, d->folded[k].index, d->folded[k].value, err);
    if (rc == MQ_OK) {
        struct mq_run_options run = {observe_produced, w};
        memset(outputs, 0, sizeof *outputs * (size_t)n_outputs);
        rc = mq_plan_run(d->plan, inputs, n_inputs, outputs, n_outputs, &run, err);
        for (int k = 0; k < n_outputs; k++)
            mq_tensor_free(&outputs[k]);
    }
    for (int k = 0; k < n_inputs; k++)
        mq_tensor_free(&inputs[k]);
    if (rc)
        mq_error_prefix(err, "calibration sample %" PRId64 " (%s): ", i,
                        mq_calib_source_sample_name(d->source, i));
    return rc;
}

static void record_failure(struct driver *d, int64_t i, int rc, const struct mq_error *err)
{
    if (i < d->failed_at) {
        d->failed_at = i;
        d->failed_rc = rc;
        d->failed_err = *err;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct driver *d = w->d;
    int n_inputs = mq_plan_input_count(d->plan), n_outputs = mq_plan_output_count(d->plan);
    struct mq_tensor *inputs = calloc((size_t)n_inputs + 1, sizeof *inputs);
    struct mq_tensor *outputs = calloc((size_t)n_outputs + 1, sizeof *outputs);
    struct mq_error err;
    pthread_mutex_lock(&d->lock);
    if (!inputs || !outputs) {
        mq_error_code(&err, MQ_ERR_MEMORY, "out of memory starting a calibration thread");
        record_failure(d, -1, MQ_ERR_MEMORY, &err);
    }
    for (;;) {
        /* Past a failure no new sample starts; those before it still run, so the failure
           reported is the lowest-numbered one whatever the number of threads. */
        if (d->interrupted || d->next >= d->total || d->next > d->failed_at)
            break;
        if (d->cancel && *d->cancel) {
            d->interrupted = 1;
            break;
        }
        int64_t i = d->next++;
        pthread_mutex_unlock(&d->lock);
        int rc = run_sample(w, i, inputs, n_inputs, outputs, n_outputs, &err);
        pthread_mutex_lock(&d->lock);
        if (rc)
            record_failure(d, i, rc, &err);
        else
            d->done++;
        pthread_cond_broadcast(&d->changed);
    }
    d->running--;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
    free(inputs);
    free(outputs);
    return NULL;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) * 1e-9;
}

static void report_progress(const struct mq_calib_options *o, int64_t done, int64_t total,
                            const struct timespec *start)
{
    if (!o->progress)
        return;
    struct mq_calib_progress p = {done, total, seconds_since(start)};
    o->progress(o->progress_user, &p);
}

/* Runs the workers and waits for them, reporting progress from this thread. */
static void run_workers(struct driver *d, struct worker *workers, int jobs,
                        const struct mq_calib_options *o)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0;
    size_t stack = 0;
    /* Kernels and nested subgraphs may recurse: give threads what a main thread gets. */
    if (have_attr && pthread_attr_getstacksize(&attr, &stack) == 0 && stack < ((size_t)8 << 20))
        pthread_attr_setstacksize(&attr, (size_t)8 << 20);
    pthread_mutex_lock(&d->lock);
    for (int t = 0; t < jobs; t++) {
        d->running++;
        workers[t].started = pthread_create(&workers[t].thread, have_attr ? &attr : NULL,
                                            worker_main, &workers[t]) == 0;
        if (!workers[t].started)
            d->running--;
    }
    int any = d->running > 0;
    while (d->running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&d->changed, &d->lock, &until);
        int64_t done = d->done, total = d->total;
        pthread_mutex_unlock(&d->lock);
        report_progress(o, done, total, &start);
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    if (have_attr)
        pthread_attr_destroy(&attr);
    if (!any) {
        /* Not one thread could start: calibrate on this one. */
        d->running = 1;
        worker_main(&workers[0]);
    }
    for (int t = 0; t < jobs; t++)
        if (workers[t].started)
            pthread_join(workers[t].thread, NULL);
    report_progress(o, d->done, d->total, &start);
}

/* Merges the workers' observers into ranges: exact, whatever the order. */
static int merge_workers(struct driver *d, struct worker *workers, int jobs,
                         struct mq_ranges *out, struct mq_error *err)
{
    const struct mq_name_list *names = d->names;
    out->items = calloc(names->n > 0 ? (size_t)names->n : 1, sizeof *out->items);
    if (!out->items)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory merging observers");
    for (int i = 0; i < names->n; i++) {
        struct mq_observer total;
        if (mq_observer_init(&total, 0, err))
            return MQ_ERR_MEMORY;
        for (int t = 0; t < jobs; t++)
            if (mq_observer_merge(&total, &workers[t].observers[i], err)) {
                mq_observer_free(&total);
                return MQ_ERR_MEMORY;
            }
        if (total.produced == 0) {
            mq_observer_free(&total);
            continue;
        }
        struct mq_tensor_range *r = &out->items[out->n];
        r->name = strdup(names->names[i]);
        if (!r->name) {
            mq_observer_free(&total);
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        }
        out->n++;
        r->count = total.minmax.count;
        r->nan = total.minmax.nan;
        r->nonfinite = total.minmax.nan + total.minmax.inf;
        r->produced = total.produced;
        r->observed_min = r->count ? total.minmax.min : 0;
        r->observed_max = r->count ? total.minmax.max : 0;
        r->histogram = total.histogram;
        if (d->with_histogram && !r->histogram) {
            r->histogram = malloc(sizeof *r->histogram);
            if (!r->histogram)
                return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            mq_histogram_init(r->histogram);
        }
    }
    return MQ_OK;
}

int mq_calibrate(const struct mq_plan *plan, const struct mq_calib_source *source,
                 const struct mq_name_list *names, const struct mq_calib_options *options,
                 struct mq_ranges *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    struct mq_calib_options o;
    if (options)
        o = *options;
    else
        mq_calib_options_init(&o);
    if (o.percentile == 0)
        o.percentile = MQ_CALIB_DEFAULT_PERCENTILE;
    if ((unsigned)o.method > (unsigned)MQ_CALIB_MSE)
        return mq_error_code(err, MQ_ERR_USAGE, "unknown calibration method %d", (int)o.method);
    if (o.method == MQ_CALIB_PERCENTILE && !(o.percentile > 0 && o.percentile <= 100))
        return mq_error_code(err, MQ_ERR_USAGE, "--percentile %g is outside (0, 100]",
                             o.percentile);
    if (!source)
        return mq_error_code(err, MQ_ERR_USAGE, "no calibration samples given");
    for (int i = 1; i < names->n; i++)
        if (strcmp(names->names[i - 1], names->names[i]) >= 0)
            return mq_error_code(err, MQ_ERR_USAGE, "the names to observe are not sorted and "
                                 "unique (call mq_name_list_finish)");

    struct driver d;
    memset(&d, 0, sizeof d);
    d.plan = plan;
    d.source = source;
    d.names = names;
    d.with_histogram = mq_calib_method_uses_histogram(o.method);
    d.cancel = o.cancel;
    d.total = mq_calib_source_count(source);
    d.failed_at = INT64_MAX;
    int jobs = o.jobs > 0 ? o.jobs : mq_calib_default_jobs();
    if (jobs > d.total)
        jobs = d.total > 0 ? (int)d.total : 1;
    if (jobs > 256)
        jobs = 256;

    int rc = table_init(&d.index, names->n) ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory")
                                            : MQ_OK;
    for (int i = 0; rc == MQ_OK && i < names->n; i++)
        table_put(&d.index, names->names[i], i);
    d.folded_not_float = calloc(names->n > 0 ? (size_t)names->n : 1, 1);
    if (rc == MQ_OK && !d.folded_not_float)
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (rc == MQ_OK)
        rc = mq_plan_each_constant(plan, note_constant, &d, err);
    struct worker *workers = calloc((size_t)jobs, sizeof *workers);
    if (rc == MQ_OK && !workers)
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int t = 0; rc == MQ_OK && t < jobs; t++) {
        workers[t].d = &d;
        workers[t].observers = calloc(names->n > 0 ? (size_t)names->n : 1,
                                      sizeof *workers[t].observers);
        workers[t].not_float = calloc(names->n > 0 ? (size_t)names->n : 1, 1);
        if (!workers[t].observers || !workers[t].not_float)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        for (int i = 0; rc == MQ_OK && i < names->n; i++)
            mq_minmax_init(&workers[t].observers[i].minmax);
    }
    if (rc == MQ_OK) {
        pthread_mutex_init(&d.lock, NULL);
        pthread_cond_init(&d.changed, NULL);
        run_workers(&d, workers, jobs, &o);
        pthread_cond_destroy(&d.changed);
        pthread_mutex_destroy(&d.lock);
        if (d.failed_at != INT64_MAX) {
            *err = d.failed_err;
            rc = d.failed_rc;
        } else if (d.interrupted || d.done < d.total) {
            rc = mq_error_code(err, MQ_ERR_INTERRUPTED, "calibration interrupted after %" PRId64
                               " of %" PRId64 " samples", d.done, d.total);
        }
    }
    if (rc == MQ_OK)
        rc = merge_workers(&d, workers, jobs, out, err);
    for (int i = 0; rc == MQ_OK && o.not_float && i < names->n; i++) {
        int seen = d.folded_not_float[i];
        for (int t = 0; t < jobs; t++)
            seen |= workers[t].not_float[i];
        if (seen)
            rc = mq_name_list_add(o.not_float, names->names[i], err);
    }
    if (o.not_float)
        mq_name_list_finish(o.not_float);
    if (rc == MQ_OK) {
        out->samples = (uint64_t)d.done;
        out->has_histograms = d.with_histogram;
        rc = mq_ranges_finalize(out, o.method, o.percentile, o.symmetric, jobs, err);
    }
    for (int t = 0; workers && t < jobs; t++) {
        for (int i = 0; workers[t].observers && i < names->n; i++)
            mq_observer_free(&workers[t].observers[i]);
        free(workers[t].observers);
        free(workers[t].not_float);
    }
    free(workers);
    free(d.folded);
    free(d.folded_not_float);
    table_free(&d.index);
    if (rc)
        mq_ranges_free(out);
    return rc;
}
