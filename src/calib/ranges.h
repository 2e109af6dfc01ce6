/*
 * The result of calibration: for each observed tensor, its float range, and
 * the observer state that produced it (so shards can be merged).  This is the
 * interface between calib/ and quant/.
 *
 * The state (observed extremes, counts, histograms) is the truth; min/max
 * are derived from it by mq_ranges_finalize for a chosen method.  Saved files
 * hold both (docs/ranges-format.md); loading keeps the state and derives
 * min/max again, so files calibrated on separate machines merge into exactly
 * the result of one run over all their samples.
 */
#ifndef MQ_RANGES_H
#define MQ_RANGES_H

#include <stdint.h>

#include "util/error.h"

struct mq_histogram; /* calib/histogram.h */

enum mq_calib_method {
    MQ_CALIB_MINMAX,
    MQ_CALIB_PERCENTILE,
    MQ_CALIB_ENTROPY,
    MQ_CALIB_MSE,
};

#define MQ_CALIB_DEFAULT_PERCENTILE 99.999

struct mq_tensor_range {
    char *name;          /* tensor name, unique across the main graph and its subgraphs */
    float min, max;      /* the range the chosen method selected (not clipped to include 0) */
    float observed_min, observed_max; /* the raw extremes seen */
    uint64_t count;      /* finite values seen */
    uint64_t nonfinite;  /* NaN and infinities seen, excluded from the range */
    uint64_t nan;        /* of nonfinite, the NaNs (the rest are +-inf) */
    uint64_t produced;   /* times the tensor was produced: once per sample, per loop iteration */
    struct mq_histogram *histogram; /* state of the histogram methods; NULL for minmax */
};

/*
 * The largest |value| of each channel (axis 1) of one tensor over the
 * samples, measured on the graph before the rewrites that depend on the data
 * (cross-layer equalization), in the calibration pass or one before it.  Kept with the ranges, so that a file
 * loaded later rewrites the graph exactly as it was when calibrated.
 */
struct mq_channel_maxima {
    char *name;
    int64_t channels;
    double *max;
};

struct mq_ranges {
    char *method;        /* "minmax", "percentile", "entropy", "mse" */
    uint64_t samples;    /* calibration samples that went into these ranges */
    int n;
    struct mq_tensor_range *items; /* sorted by name (strcmp) */
    enum mq_calib_method method_id;
    double percentile;   /* for "percentile" */
    int symmetric;       /* ranges chosen for a symmetric quantizer */
    int has_histograms;  /* every item with count > 0 has a histogram */
    int n_channel_maxima;
    struct mq_channel_maxima *channel_maxima; /* in the order added */
};

/*
 * Records the channel maxima of tensor `name`; when it already has some, the
 * larger of each channel is kept (merging shards).  A different channel count
 * for the same name is an error.
 */
int mq_ranges_add_channel_maxima(struct mq_ranges *ranges, const char *name, int64_t channels,
                                 const double *max, struct mq_error *err);
/* Adds every channel maxima of `from` to `into` as above. */
int mq_ranges_merge_channel_maxima(struct mq_ranges *into, const struct mq_ranges *from,
                                   struct mq_error *err);
const struct mq_channel_maxima *mq_ranges_find_channel_maxima(const struct mq_ranges *ranges,
                                                              const char *name);

/* Looks a tensor up by name; NULL when it was not observed. */
const struct mq_tensor_range *mq_ranges_find(const struct mq_ranges *ranges, const char *name);
void mq_ranges_free(struct mq_ranges *ranges);

/* "minmax" <-> MQ_CALIB_MINMAX ...; parse returns MQ_ERR for an unknown name. */
const char *mq_calib_method_name(enum mq_calib_method method);
int mq_calib_method_parse(const char *name, enum mq_calib_method *out);
int mq_calib_method_uses_histogram(enum mq_calib_method method);
/* Threads to use when the user gives none: the online CPUs (at least 1). */
int mq_calib_default_jobs(void);

/*
 * Derives every item's min/max from its state for `method` (histogram
 * methods need has_histograms), and records method, percentile, symmetric.
 * Items are independent: `jobs` threads share them (the result does not
 * depend on jobs).  percentile must lie in (0, 100] for MQ_CALIB_PERCENTILE.
 */
int mq_ranges_finalize(struct mq_ranges *ranges, enum mq_calib_method method, double percentile,
                       int symmetric, int jobs, struct mq_error *err);

/*
 * into += from: tensors matched by name (union), extremes and counts merged,
 * histograms added exactly, samples summed.  Both must agree on whether they
 * hold histograms.  into's min/max are stale afterwards: finalize again.
 */
int mq_ranges_merge(struct mq_ranges *into, const struct mq_ranges *from, struct mq_error *err);

/* Writes the state and the derived ranges as JSON, atomically. */
int mq_ranges_save(const struct mq_ranges *ranges, const char *path, struct mq_error *err);
/*
 * Reads a file written by mq_ranges_save (checked strictly: every count, the
 * histogram's consistency with the counts and extremes).  min/max are
 * re-derived with the method and percentile the file names.
 */
int mq_ranges_load(const char *path, struct mq_ranges *out, struct mq_error *err);
/*
 * Loads and merges several files (shards); finalizes with the method of the
 * first.  Merging is exact: the result does not depend on the files' order.
 */
int mq_ranges_load_all(const char *const *paths, int n, struct mq_ranges *out,
                       struct mq_error *err);

#endif
