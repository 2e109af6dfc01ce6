/* Calibration: which tensors to observe, and the observers the sample driver feeds. */
#include "calib/calibrate.h"

#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"
#include "calib/observer.h"
#include "interp/plan.h"
#include "util/strmap.h"
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

/* ---- calibration: observers on every sample ------------------------------------------ */

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

/* What every thread reads. */
struct calibration {
    const struct mq_plan *plan;
    const struct mq_name_list *names;
    struct mq_strmap *index;
    struct folded *folded;
    int n_folded, cap_folded;
    unsigned char *folded_not_float; /* per name: a folded constant that is not float */
    int with_histogram;
    const struct mq_calib_options *options;
};

/* One thread's observers; merged in thread order once the samples are done. */
struct worker {
    struct calibration *c;
    struct mq_observer *observers; /* one per name */
    unsigned char *not_float;      /* per name: seen holding a non-float value */
    void **extra;                  /* this thread's state of each options->extra[k] */
    int64_t sample;                /* the sample running */
};

static int note_constant(void *user, const char *name, const struct mq_tensor *value,
                         struct mq_error *err)
{
    struct calibration *c = user;
    int index = mq_strmap_get(c->index, name);
    if (index < 0)
        return MQ_OK;
    if (!mq_dtype_is_float(value->dtype)) {
        c->folded_not_float[index] = 1;
        return MQ_OK;
    }
    for (int k = 0; k < c->n_folded; k++)
        if (c->folded[k].index == index)
            return MQ_OK;
    if (c->n_folded == c->cap_folded) {
        int cap = c->cap_folded ? c->cap_folded * 2 : 16;
        struct folded *bigger = realloc(c->folded, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        c->folded = bigger;
        c->cap_folded = cap;
    }
    c->folded[c->n_folded++] = (struct folded){index, value};
    return MQ_OK;
}

static int observe_value(struct worker *w, int index, const struct mq_tensor *t,
                         struct mq_error *err)
{
    struct mq_observer *o = &w->observers[index];
    if (w->c->with_histogram && !o->histogram) {
        /* Allocated on first sight: tensors a thread never sees cost it nothing. */
        o->histogram = malloc(sizeof *o->histogram);
        if (!o->histogram)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory for a histogram");
        mq_histogram_init(o->histogram);
    }
    if (mq_observer_add(o, t, err)) {
        mq_error_prefix(err, "tensor '%s': ", w->c->names->names[index]);
        return MQ_ERR;
    }
    return MQ_OK;
}

static int observe_produced(void *user, const struct mq_kernel_node *producer,
                            const char *name, const struct mq_tensor *value, struct mq_error *err)
{
    struct worker *w = user;
    const struct mq_calib_options *o = w->c->options;
    int index = mq_strmap_get(w->c->index, name);
    /* an extra reading the tensor anyway may take its min/max in the same pass */
    int ask = index >= 0 && value->dtype == MQ_DTYPE_FLOAT && !w->c->with_histogram;
    int filled = 0;
    struct mq_minmax given;
    mq_minmax_init(&given);
    for (int k = 0; k < o->n_extra && mq_dtype_is_float(value->dtype); k++) {
        const struct mq_calib_extra *x = o->extra[k];
        if (ask && x->observe_minmax) {
            ask = 0;
            if (x->observe_minmax(w->extra[k], w->sample, name, value, &given, &filled, err))
                return MQ_ERR;
        } else if (x->observe && x->observe(w->extra[k], w->sample, name, value, err)) {
            return MQ_ERR;
        }
    }
    if (index < 0)
        return MQ_OK;
    if (!mq_dtype_is_float(value->dtype)) {
        w->not_float[index] = 1;
        return MQ_OK;
    }
    if (filled) { /* what mq_observer_add would have added */
        mq_minmax_merge(&w->observers[index].minmax, &given);
        w->observers[index].produced++;
        return MQ_OK;
    }
    if (observe_value(w, index, value, err)) {
        if (producer)
            mq_error_prefix(err, "node '%s' (%s): ", producer->name, producer->op_type);
        return MQ_ERR;
    }
    return MQ_OK;
}

/* Before each run: the graph inputs fed from the sample and the folded constants. */
static int observe_inputs(void *user, int64_t sample, const struct mq_tensor *inputs,
                          int n_inputs, struct mq_error *err)
{
    struct worker *w = user;
    struct calibration *c = w->c;
    const struct mq_calib_options *o = c->options;
    w->sample = sample;
    int rc = MQ_OK;
    for (int e = 0; rc == MQ_OK && e < o->n_extra; e++)
        for (int k = 0; rc == MQ_OK && o->extra[e]->observe && k < n_inputs; k++)
            if (mq_dtype_is_float(inputs[k].dtype))
                rc = o->extra[e]->observe(w->extra[e], sample,
                                          mq_str(mq_plan_input(c->plan, k)->name), &inputs[k],
                                          err);
    for (int k = 0; rc == MQ_OK && k < n_inputs; k++) {
        int index = mq_strmap_get(c->index, mq_str(mq_plan_input(c->plan, k)->name));
        if (index >= 0 && mq_dtype_is_float(inputs[k].dtype))
            rc = observe_value(w, index, &inputs[k], err);
        else if (index >= 0)
            w->not_float[index] = 1;
    }
    for (int k = 0; rc == MQ_OK && k < c->n_folded; k++)
        rc = observe_value(w, c->folded[k].index, c->folded[k].value, err);
    return rc;
}

/* Hands a sample's outputs to the caller's hook (mq_calib_options.outputs). */
/* After each sample: the outputs hook, then the extra work's (in sample order when there is
   extra work). */
static int sample_finished(void *user, int64_t sample, struct mq_tensor *outputs, int n_outputs,
                           struct mq_error *err)
{
    struct worker *w = user;
    const struct mq_calib_options *o = w->c->options;
    if (o->outputs && o->outputs(o->outputs_user, sample, outputs, n_outputs, err))
        return MQ_ERR;
    for (int k = 0; k < o->n_extra; k++)
        if (o->extra[k]->sample_done && o->extra[k]->sample_done(w->extra[k], sample, err))
            return MQ_ERR;
    return MQ_OK;
}

/* Merges the workers' observers into ranges, in worker order (exact in any order). */
static int merge_workers(struct calibration *c, struct worker *workers, int jobs,
                         struct mq_ranges *out, struct mq_error *err)
{
    const struct mq_name_list *names = c->names;
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
        if (c->with_histogram && !r->histogram) {
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

    /* only a per-sample callback needs the samples' turns: an extra work that only observes
       does not make threads wait for one another */
    int in_order = 0;
    for (int k = 0; k < o.n_extra; k++)
        in_order |= o.extra[k]->sample_done != NULL;
    struct calibration c;
    memset(&c, 0, sizeof c);
    c.plan = plan;
    c.names = names;
    c.with_histogram = mq_calib_method_uses_histogram(o.method);
    c.options = &o;
    struct mq_sample_pass pass = {
        .plan = plan,
        .source = source,
        .jobs = o.jobs > 0 ? o.jobs : mq_calib_default_jobs(),
        .inputs = observe_inputs,
        .observe = observe_produced,
        .done = o.outputs || in_order ? sample_finished : NULL,
        .done_in_order = in_order,
        .label = "calibration sample",
        .cancel = o.cancel,
        .progress = o.progress,
        .progress_user = o.progress_user,
    };
    int jobs = mq_sample_pass_jobs(&pass);

    c.index = mq_strmap_new();
    int rc = c.index ? MQ_OK : mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int i = 0; rc == MQ_OK && i < names->n; i++)
        if (mq_strmap_put_new(c.index, names->names[i], i))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    c.folded_not_float = calloc(names->n > 0 ? (size_t)names->n : 1, 1);
    if (rc == MQ_OK && !c.folded_not_float)
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (rc == MQ_OK)
        rc = mq_plan_each_constant(plan, note_constant, &c, err);
    struct worker *workers = calloc((size_t)jobs, sizeof *workers);
    void **worker_ptrs = calloc((size_t)jobs, sizeof *worker_ptrs);
    if (rc == MQ_OK && (!workers || !worker_ptrs))
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int t = 0; rc == MQ_OK && t < jobs; t++) {
        workers[t].c = &c;
        worker_ptrs[t] = &workers[t];
        workers[t].observers = calloc(names->n > 0 ? (size_t)names->n : 1,
                                      sizeof *workers[t].observers);
        workers[t].not_float = calloc(names->n > 0 ? (size_t)names->n : 1, 1);
        if (!workers[t].observers || !workers[t].not_float)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        for (int i = 0; rc == MQ_OK && i < names->n; i++)
            mq_minmax_init(&workers[t].observers[i].minmax);
    }
    /* extra_workers[t * n_extra + k]: thread t's state of extra k */
    void **extra_workers =
        o.n_extra > 0 ? calloc((size_t)jobs * (size_t)o.n_extra, sizeof *extra_workers) : NULL;
    void **begun = o.n_extra > 0 ? calloc((size_t)jobs, sizeof *begun) : NULL;
    if (rc == MQ_OK && o.n_extra > 0 && (!extra_workers || !begun))
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int k = 0; rc == MQ_OK && k < o.n_extra; k++) {
        memset(begun, 0, (size_t)jobs * sizeof *begun);
        if (o.extra[k]->begin)
            rc = o.extra[k]->begin(o.extra[k]->user, jobs, begun, err);
        for (int t = 0; rc == MQ_OK && t < jobs; t++)
            extra_workers[t * o.n_extra + k] = begun[t];
    }
    for (int t = 0; rc == MQ_OK && o.n_extra > 0 && t < jobs; t++)
        workers[t].extra = &extra_workers[t * o.n_extra];
    free(begun);
    int64_t done = 0;
    if (rc == MQ_OK) {
        pass.workers = worker_ptrs;
        rc = mq_sample_pass_run(&pass, &done, err);
        if (rc == MQ_ERR_INTERRUPTED && strncmp(err->message, "interrupted", 11) == 0)
            mq_error_prefix(err, "calibration ");
    }
    if (rc == MQ_OK)
        rc = merge_workers(&c, workers, jobs, out, err);
    for (int i = 0; rc == MQ_OK && o.not_float && i < names->n; i++) {
        int seen = c.folded_not_float[i];
        for (int t = 0; t < jobs; t++)
            seen |= workers[t].not_float[i];
        if (seen)
            rc = mq_name_list_add(o.not_float, names->names[i], err);
    }
    if (o.not_float)
        mq_name_list_finish(o.not_float);
    if (rc == MQ_OK) {
        out->samples = (uint64_t)done;
        out->has_histograms = c.with_histogram;
        rc = mq_ranges_finalize(out, o.method, o.percentile, o.symmetric, jobs, err);
    }
    for (int t = 0; workers && t < jobs; t++) {
        for (int i = 0; workers[t].observers && i < names->n; i++)
            mq_observer_free(&workers[t].observers[i]);
        free(workers[t].observers);
        free(workers[t].not_float);
    }
    free(workers);
    free(worker_ptrs);
    free(extra_workers);
    free(c.folded);
    free(c.folded_not_float);
    mq_strmap_free(c.index);
    if (rc)
        mq_ranges_free(out);
    return rc;
}
