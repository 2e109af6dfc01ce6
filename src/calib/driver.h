/*
 * The sample driver: the one loop that runs samples from disk through a built
 * plan, used by every pass that does (calibration, the quantizer's second
 * pass over the samples, the float16 range scan, the run command).
 *
 * It takes the samples of a source (calib/reader.h: one rule binds files to
 * graph inputs for every command), loads each into the plan's inputs, runs
 * the plan with the caller's observer and hands the outputs back.  With more
 * than one job, samples go to threads in order of index, each thread keeps
 * its own state (one `worker` pointer per thread, chosen by the caller) and
 * the caller merges those states in worker order once the pass is over.  The
 * memory cap of core/tensor.h applies to every tensor a sample allocates.
 *
 * A failing sample stops the pass: samples after it do not start, those
 * before it finish, and the error reported is that of the lowest-numbered
 * failing sample whatever the number of threads, prefixed with `label`.
 */
#ifndef MQ_CALIB_DRIVER_H
#define MQ_CALIB_DRIVER_H

#include <signal.h>
#include <stdint.h>

#include "calib/reader.h"
#include "interp/plan.h"
#include "util/error.h"

struct mq_calib_progress {
    int64_t done;          /* samples finished */
    int64_t total;
    double elapsed_s;
};

typedef void (*mq_calib_progress_fn)(void *user, const struct mq_calib_progress *progress);

/* Called with the loaded inputs of sample i, before the plan runs (graph inputs are fed, not
   produced: an observer of produced tensors never sees them). */
typedef int (*mq_sample_inputs_fn)(void *worker, int64_t i, const struct mq_tensor *inputs,
                                   int n_inputs, struct mq_error *err);
/* Called with the outputs of sample i after the last run of it; the driver frees them. */
typedef int (*mq_sample_done_fn)(void *worker, int64_t i, struct mq_tensor *outputs,
                                 int n_outputs, struct mq_error *err);

struct mq_sample_pass {
    const struct mq_plan *plan;
    const struct mq_calib_source *source;
    int jobs;                         /* threads; 0 means 1; see mq_sample_pass_jobs */
    void *const *workers;             /* mq_sample_pass_jobs(pass) pointers, one per thread */
    mq_sample_inputs_fn inputs;       /* each may be NULL */
    mq_tensor_observer_fn observe;    /* every tensor a node produces (plan.h) */
    mq_sample_done_fn done;
    /* When given, called with the loaded inputs of sample i in place of running the plan (which
       then only names the inputs the source loads; repeat, timed and done are not used): for
       passes that run something else on each sample, such as two models side by side. */
    mq_sample_inputs_fn run;
    /* Non-zero: `done` runs for sample 0, then 1, 2, ... one at a time (a thread whose sample
       finished early waits its turn), so sums the callbacks keep in shared state come out the
       same whatever the number of threads. */
    int done_in_order;
    /* Runs of each sample (timing); 0 means 1.  Only the last run's outputs reach `done`. */
    int64_t repeat;
    /* Receives the wall time of every run, in milliseconds, on the running thread. */
    void (*timed)(void *worker, double ms);
    /* Error prefix: "<label> <i> (<sample>): ", or "<sample>: " when NULL. */
    const char *label;
    /* Checked between samples: when it becomes non-zero the pass stops with
       MQ_ERR_INTERRUPTED.  NULL: never. */
    volatile sig_atomic_t *cancel;
    /* Called on the calling thread about 5 times a second, and once at the end. */
    mq_calib_progress_fn progress;
    void *progress_user;
};

/* The threads the pass will use: jobs, at most one per sample and at most 256, at least 1. */
int mq_sample_pass_jobs(const struct mq_sample_pass *pass);

/*
 * Runs every sample of pass->source.  *done receives the samples that
 * finished (all of them on success).
 */
int mq_sample_pass_run(const struct mq_sample_pass *pass, int64_t *done, struct mq_error *err);

/* mq_calib_source_open for the inputs of a built plan. */
int mq_calib_source_open_for_plan(const char *dir, const struct mq_plan *plan, int64_t limit,
                                  struct mq_calib_source **out, struct mq_error *err);
int mq_calib_source_open_for_plan_with(const char *dir, const struct mq_plan *plan,
                                       const struct mq_calib_open_options *options,
                                       struct mq_calib_source **out, struct mq_error *err);

#endif
