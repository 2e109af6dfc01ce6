/*
 * The result of calibration: for each observed tensor, its float range, and
 * the observer state that produced it (so shards can be merged).  This is the
 * interface between calib/ and quant/.
 */
#ifndef MQ_RANGES_H
#define MQ_RANGES_H

#include <stdint.h>

#include "util/error.h"

struct mq_tensor_range {
    char *name;          /* tensor name, unique across the main graph and its subgraphs */
    float min, max;      /* the range the chosen method selected (not clipped to include 0) */
    float observed_min, observed_max; /* the raw extremes seen */
    uint64_t count;      /* finite values seen */
    uint64_t nonfinite;  /* NaN and infinities seen, excluded from the range */
};

struct mq_ranges {
    char *method;        /* "minmax", "percentile", "entropy", "mse" */
    uint64_t samples;    /* calibration samples that went into these ranges */
    int n;
    struct mq_tensor_range *items; /* sorted by name */
};

/* Looks a tensor up by name; NULL when it was not observed. */
const struct mq_tensor_range *mq_ranges_find(const struct mq_ranges *ranges, const char *name);
void mq_ranges_free(struct mq_ranges *ranges);

#endif
