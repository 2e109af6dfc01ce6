/*
 * Calibration: run samples through a built plan (the sample driver,
 * calib/driver.h) and observe the tensors that may be quantized, on N threads,
 * each with its own observers, merged at the end.  Merging is exact and
 * order-free, so the result is the same for any number of threads, and shards
 * merge into the result of one run.
 *
 * Which tensors: the caller decides and passes their names (the quantizer's
 * own list, mq_qdq_tensors_to_observe in quant/qdq.h, for the nodes quant/select
 * chooses).  Observed: tensors a node produces, graph inputs fed from the
 * samples, and values the planner folded into constants (observed once per
 * sample, as if produced).  Non-float tensors are never observed.
 */
#ifndef MQ_CALIBRATE_H
#define MQ_CALIBRATE_H

#include <signal.h>
#include <stdint.h>

#include "calib/driver.h"
#include "calib/observer.h"
#include "calib/ranges.h"
#include "calib/reader.h"
#include "onnx.pb-c.h"
#include "util/error.h"

struct mq_plan;

/* A sorted list of unique names. */
struct mq_name_list {
    int n, cap;
    char **names;
};

int mq_name_list_add(struct mq_name_list *list, const char *name, struct mq_error *err);
/* Sorts (strcmp) and drops duplicates. */
void mq_name_list_finish(struct mq_name_list *list);
int mq_name_list_contains(const struct mq_name_list *list, const char *name); /* after finish */
void mq_name_list_free(struct mq_name_list *list);

/*
 * More work on every sample of the calibration pass, for what needs only the float model's
 * tensors and so need not run the samples again (e.g. statistics the quantizer keeps besides
 * the ranges).  begin runs once before the samples with the number of threads and fills
 * workers[0 .. n_threads-1] with per-thread state; observe sees every float tensor a node
 * produces and every graph input fed, on the thread running that sample; sample_done runs after
 * each sample, in sample order (0, 1, 2, ...: a thread whose sample finished early waits its
 * turn), so sums kept in shared state come out the same whatever the number of threads.
 * Any callback may be NULL; a non-zero return stops calibration with that error.  The
 * per-thread states are the caller's: it frees them after mq_calibrate returns.
 */
struct mq_calib_extra {
    int (*begin)(void *user, int n_threads, void **workers, struct mq_error *err);
    int (*observe)(void *worker, int64_t sample, const char *name, const struct mq_tensor *value,
                   struct mq_error *err);
    int (*sample_done)(void *worker, int64_t sample, struct mq_error *err);
    void *user;
    /*
     * Optional, in place of observe for a float32 tensor whose range is kept as min/max only
     * (no histogram), which an extra reads anyway: it may give the tensor's min/max (what
     * mq_minmax_add gives on a fresh mq_minmax) in *minmax and set *filled, so the tensor is
     * read once for both; the calibrator reads it itself when *filled stays 0.  Asked of the
     * first extra that has it only.
     */
    int (*observe_minmax)(void *worker, int64_t sample, const char *name,
                          const struct mq_tensor *value, struct mq_minmax *minmax, int *filled,
                          struct mq_error *err);
};

struct mq_calib_options {
    enum mq_calib_method method;
    double percentile;     /* for MQ_CALIB_PERCENTILE; 0 means MQ_CALIB_DEFAULT_PERCENTILE */
    int symmetric;         /* choose ranges for a symmetric quantizer (percentile, mse) */
    int jobs;              /* threads; 0 means mq_calib_default_jobs() */
    /* Checked between samples: when it becomes non-zero, calibration stops with
       MQ_ERR_INTERRUPTED.  NULL: never. */
    volatile sig_atomic_t *cancel;
    /* Called on the calling thread about 5 times a second, and once at the end. */
    mq_calib_progress_fn progress;
    void *progress_user;
    /* Optional: receives (finished) the names to observe that turned out to hold no float
       values (integer shape arithmetic whose type the model does not declare). */
    struct mq_name_list *not_float;
    /* Optional: each sample's graph outputs, in the plan's output order, on the thread that
       ran it and in no particular sample order (the outputs are freed after the call): for
       keeping the float model's outputs, which calibration computes anyway. */
    int (*outputs)(void *user, int64_t sample, const struct mq_tensor *outputs, int n_outputs,
                   struct mq_error *err);
    void *outputs_user;
    /* Optional: more work on each sample (above), each of n_extra in turn. */
    const struct mq_calib_extra *const *extra;
    int n_extra;
};

void mq_calib_options_init(struct mq_calib_options *options);

/*
 * Runs every sample of `source` through `plan`, observing the tensors in
 * `names` (finished), and fills `out` with the merged state and the ranges
 * `options->method` selects (mq_ranges_free it).  Tensors never produced (an
 * untaken If branch) are absent from out.  A failing sample stops
 * calibration; the error names the lowest-numbered failing sample whatever
 * the number of threads.
 */
int mq_calibrate(const struct mq_plan *plan, const struct mq_calib_source *source,
                 const struct mq_name_list *names, const struct mq_calib_options *options,
                 struct mq_ranges *out, struct mq_error *err);

#endif
