/* The sample driver: samples from a source through a plan, on one or more threads. */
#include "calib/driver.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_JOBS 256

/* What the threads share, under `lock`. */
struct shared {
    const struct mq_sample_pass *pass;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int64_t next, done, total;
    int64_t turn;                /* done_in_order: the sample whose `done` may run next */
    int running;
    int interrupted;
    int64_t failed_at;           /* lowest failing sample; INT64_MAX while none */
    int failed_rc;
    struct mq_error failed_err;
};

struct thread {
    struct shared *shared;
    void *worker;
    struct mq_tensor *carried;   /* per graph input, the previous sample's output (--carry) */
    pthread_t id;
    int started;
};

/* The plan output that feeds graph input k from the previous sample, -1 when none. */
static int carry_output(const struct mq_sample_pass *p, int k)
{
    const char *name = mq_calib_source_carried_from(p->source, k);
    if (!name)
        return -1;
    for (int j = 0; j < mq_plan_output_count(p->plan); j++)
        if (strcmp(mq_str(mq_plan_output(p->plan, j)->name), name) == 0)
            return j;
    return -2;
}

static int carries(const struct mq_sample_pass *p)
{
    for (int k = 0; p->source && k < mq_plan_input_count(p->plan); k++)
        if (mq_calib_source_carried_from(p->source, k))
            return 1;
    return 0;
}

int mq_sample_pass_jobs(const struct mq_sample_pass *pass)
{
    int64_t total = pass->source ? mq_calib_source_count(pass->source) : 0;
    int jobs = pass->jobs > 0 && !carries(pass) ? pass->jobs : 1;
    if (jobs > total)
        jobs = total > 0 ? (int)total : 1;
    return jobs > MAX_JOBS ? MAX_JOBS : jobs;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A carried input takes the previous sample's output, unless sample i starts a stream. */
static int feed_carried(const struct mq_sample_pass *p, int64_t i, struct mq_tensor *inputs,
                        int n_inputs, struct mq_tensor *carried, struct mq_error *err)
{
    if (!carried || mq_calib_source_starts_stream(p->source, i))
        return MQ_OK;
    for (int k = 0; k < n_inputs; k++) {
        if (!carried[k].data && carried[k].count == 0)
            continue;
        if (carried[k].dtype != inputs[k].dtype || carried[k].count != inputs[k].count)
            return mq_error_set(err, "--carry: output '%s' (%s, %lld elements) cannot feed "
                                "input '%s' (%s, %lld elements)",
                                mq_calib_source_carried_from(p->source, k),
                                mq_dtype_name(carried[k].dtype), (long long)carried[k].count,
                                mq_str(mq_plan_input(p->plan, k)->name),
                                mq_dtype_name(inputs[k].dtype), (long long)inputs[k].count);
        memcpy(inputs[k].data, carried[k].data, mq_dtype_size(inputs[k].dtype) *
                                                    (size_t)inputs[k].count);
    }
    return MQ_OK;
}

/* Keeps the outputs the next sample's carried inputs take. */
static int keep_carried(const struct mq_sample_pass *p, const struct mq_tensor *outputs,
                        int n_inputs, struct mq_tensor *carried, struct mq_error *err)
{
    for (int k = 0; carried && k < n_inputs; k++) {
        int j = carry_output(p, k);
        if (j < 0)
            continue;
        mq_tensor_free(&carried[k]);
        if (mq_tensor_copy(&carried[k], &outputs[j], "carried state", err))
            return MQ_ERR;
    }
    return MQ_OK;
}

/*
 * done_in_order: waits until every sample before i has had its `done`; 0 then, or non-zero
 * when one of them failed (the pass is stopping, and i's result would be dropped anyway).
 */
static int wait_turn(struct shared *s, int64_t i)
{
    pthread_mutex_lock(&s->lock);
    while (s->turn < i && s->failed_at > s->turn)
        pthread_cond_wait(&s->changed, &s->lock);
    int abandoned = s->turn < i;
    pthread_mutex_unlock(&s->lock);
    return abandoned;
}

static void pass_turn(struct shared *s, int64_t i)
{
    pthread_mutex_lock(&s->lock);
    s->turn = i + 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static int run_sample(struct shared *s, void *worker, int64_t i,
                      struct mq_tensor *inputs, int n_inputs, struct mq_tensor *outputs,
                      int n_outputs, struct mq_tensor *carried, struct mq_error *err)
{
    const struct mq_sample_pass *p = s->pass;
    int rc = mq_calib_source_load(p->source, i, inputs, err);
    if (rc == MQ_OK)
        rc = feed_carried(p, i, inputs, n_inputs, carried, err);
    if (rc == MQ_OK && p->inputs)
        rc = p->inputs(worker, i, inputs, n_inputs, err);
    struct mq_run_options run = {p->observe, worker};
    int64_t repeat = p->run ? 0 : p->repeat > 0 ? p->repeat : 1;
    memset(outputs, 0, sizeof *outputs * (size_t)n_outputs);
    if (rc == MQ_OK && p->run)
        rc = p->run(worker, i, inputs, n_inputs, err);
    for (int64_t r = 0; rc == MQ_OK && r < repeat; r++) {
        for (int k = 0; k < n_outputs; k++)
            mq_tensor_free(&outputs[k]);
        double t0 = now_ms();
        rc = mq_plan_run(p->plan, inputs, n_inputs, outputs, n_outputs,
                         p->observe ? &run : NULL, err);
        if (p->timed)
            p->timed(worker, now_ms() - t0);
    }
    if (rc == MQ_OK)
        rc = p->run ? MQ_OK : keep_carried(p, outputs, n_inputs, carried, err);
    if (rc == MQ_OK && p->done && !p->run && p->done_in_order) {
        if (wait_turn(s, i))
            rc = mq_error_code(err, MQ_ERR_INTERRUPTED, "an earlier sample failed");
        else {
            rc = p->done(worker, i, outputs, n_outputs, err);
            /* A failure here is recorded before the turn passes: later samples abandon. */
            if (rc == MQ_OK)
                pass_turn(s, i);
        }
    } else if (rc == MQ_OK && p->done && !p->run) {
        rc = p->done(worker, i, outputs, n_outputs, err);
    }
    for (int k = 0; k < n_outputs; k++)
        mq_tensor_free(&outputs[k]);
    for (int k = 0; k < n_inputs; k++)
        mq_tensor_free(&inputs[k]);
    if (rc && p->label)
        mq_error_prefix(err, "%s %" PRId64 " (%s): ", p->label, i,
                        mq_calib_source_sample_name(p->source, i));
    else if (rc)
        mq_error_prefix(err, "%s: ", mq_calib_source_sample_name(p->source, i));
    return rc;
}

static void record_failure(struct shared *s, int64_t i, int rc, const struct mq_error *err)
{
    if (i < s->failed_at) {
        s->failed_at = i;
        s->failed_rc = rc;
        s->failed_err = *err;
    }
}

static void *thread_main(void *arg)
{
    struct thread *t = arg;
    struct shared *s = t->shared;
    const struct mq_sample_pass *p = s->pass;
    int n_inputs = mq_plan_input_count(p->plan), n_outputs = mq_plan_output_count(p->plan);
    struct mq_tensor *inputs = calloc((size_t)n_inputs + 1, sizeof *inputs);
    struct mq_tensor *outputs = calloc((size_t)n_outputs + 1, sizeof *outputs);
    struct mq_error err;
    pthread_mutex_lock(&s->lock);
    if (!inputs || !outputs) {
        mq_error_code(&err, MQ_ERR_MEMORY, "out of memory starting a sample thread");
        record_failure(s, -1, MQ_ERR_MEMORY, &err);
    }
    for (;;) {
        /* Past a failure no new sample starts; those before it still run, so the failure
           reported is the lowest-numbered one whatever the number of threads. */
        if (s->interrupted || s->next >= s->total || s->next > s->failed_at)
            break;
        if (p->cancel && *p->cancel) {
            s->interrupted = 1;
            break;
        }
        int64_t i = s->next++;
        pthread_mutex_unlock(&s->lock);
        int rc = run_sample(s, t->worker, i, inputs, n_inputs, outputs, n_outputs, t->carried,
                            &err);
        pthread_mutex_lock(&s->lock);
        if (rc)
            record_failure(s, i, rc, &err);
        else
            s->done++;
        pthread_cond_broadcast(&s->changed);
    }
    s->running--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
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

static void report_progress(const struct mq_sample_pass *p, int64_t done, int64_t total,
                            const struct timespec *start)
{
    if (!p->progress)
        return;
    struct mq_calib_progress progress = {done, total, seconds_since(start)};
    p->progress(p->progress_user, &progress);
}

/* Runs the threads and waits for them, reporting progress from this one. */
static void run_threads(struct shared *s, struct thread *threads, int jobs)
{
    const struct mq_sample_pass *p = s->pass;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (jobs == 1 && !p->progress) {
        /* Nothing to report meanwhile: the calling thread does the work. */
        s->running = 1;
        thread_main(&threads[0]);
        return;
    }
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0;
    size_t stack = 0;
    /* Kernels and nested subgraphs may recurse: give threads what a main thread gets. */
    if (have_attr && pthread_attr_getstacksize(&attr, &stack) == 0 && stack < ((size_t)8 << 20))
        pthread_attr_setstacksize(&attr, (size_t)8 << 20);
    pthread_mutex_lock(&s->lock);
    for (int t = 0; t < jobs; t++) {
        s->running++;
        threads[t].started = pthread_create(&threads[t].id, have_attr ? &attr : NULL,
                                            thread_main, &threads[t]) == 0;
        if (!threads[t].started)
            s->running--;
    }
    int any = s->running > 0;
    while (s->running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->changed, &s->lock, &until);
        int64_t done = s->done, total = s->total;
        pthread_mutex_unlock(&s->lock);
        report_progress(p, done, total, &start);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    if (have_attr)
        pthread_attr_destroy(&attr);
    if (!any) {
        /* Not one thread could start: run on this one. */
        s->running = 1;
        thread_main(&threads[0]);
    }
    for (int t = 0; t < jobs; t++)
        if (threads[t].started)
            pthread_join(threads[t].id, NULL);
    report_progress(p, s->done, s->total, &start);
}

int mq_sample_pass_run(const struct mq_sample_pass *pass, int64_t *done, struct mq_error *err)
{
    *done = 0;
    if (!pass->source)
        return mq_error_code(err, MQ_ERR_USAGE, "no samples given");
    int jobs = mq_sample_pass_jobs(pass);
    struct thread *threads = calloc((size_t)jobs, sizeof *threads);
    if (!threads)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    struct shared s;
    memset(&s, 0, sizeof s);
    s.pass = pass;
    s.total = mq_calib_source_count(pass->source);
    s.failed_at = INT64_MAX;
    for (int t = 0; t < jobs; t++) {
        threads[t].shared = &s;
        threads[t].worker = pass->workers ? pass->workers[t] : NULL;
    }
    int n_inputs = mq_plan_input_count(pass->plan);
    for (int k = 0; k < n_inputs; k++) {
        if (carry_output(pass, k) == -2) {
            free(threads);
            return mq_error_set(err, "--carry %s=%s: the model has no output '%s'",
                                mq_str(mq_plan_input(pass->plan, k)->name),
                                mq_calib_source_carried_from(pass->source, k),
                                mq_calib_source_carried_from(pass->source, k));
        }
    }
    if (carries(pass) && !(threads[0].carried = calloc((size_t)n_inputs, sizeof(struct mq_tensor)))) {
        free(threads);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.changed, NULL);
    run_threads(&s, threads, jobs);
    for (int k = 0; threads[0].carried && k < n_inputs; k++)
        mq_tensor_free(&threads[0].carried[k]);
    free(threads[0].carried);
    pthread_cond_destroy(&s.changed);
    pthread_mutex_destroy(&s.lock);
    free(threads);
    *done = s.done;
    if (s.failed_at != INT64_MAX) {
        *err = s.failed_err;
        return s.failed_rc;
    }
    if (s.interrupted || s.done < s.total)
        return mq_error_code(err, MQ_ERR_INTERRUPTED, "interrupted after %" PRId64 " of %" PRId64
                             " samples", s.done, s.total);
    return MQ_OK;
}

int mq_calib_source_open_for_plan(const char *dir, const struct mq_plan *plan, int64_t limit,
                                  struct mq_calib_source **out, struct mq_error *err)
{
    struct mq_calib_open_options options = {limit, 0, 0, NULL};
    return mq_calib_source_open_for_plan_with(dir, plan, &options, out, err);
}

int mq_calib_source_open_for_plan_with(const char *dir, const struct mq_plan *plan,
                                       const struct mq_calib_open_options *options,
                                       struct mq_calib_source **out, struct mq_error *err)
{
    *out = NULL;
    int n = mq_plan_input_count(plan);
    const Onnx__ValueInfoProto **inputs = calloc((size_t)n + 1, sizeof *inputs);
    if (!inputs)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int i = 0; i < n; i++)
        inputs[i] = mq_plan_input(plan, i);
    int rc = mq_calib_source_open_with(dir, inputs, n, options, out, err);
    free(inputs);
    return rc;
}
