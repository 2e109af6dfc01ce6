/*
 * Cross-layer equalization measured in the calibration pass (quant/equalize_fold.h): the
 * extra work that keeps each channel's extremes of the tensors between pairs, and the
 * equalization and range derivation after the pass.
 */
#include "quant/equalize_fold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/observer.h"
#include "core/tensor.h"
#include "quant/equalize.h"
#include "util/strmap.h"

/* One thread's extremes: lo[k][c], hi[k][c] for channel c of pair tensor k. */
struct fold_worker {
    const struct mq_quant_equalize_fold *fold;
    float **lo, **hi;
};

struct mq_quant_equalize_fold {
    struct mq_ranges pairs;       /* channel_maxima: the tensors between pairs, in graph order */
    struct mq_strmap *of_tensor;  /* tensor name -> index into pairs.channel_maxima */
    struct mq_calib_extra extra;
    int n_workers;
    struct fold_worker *workers;
    int keep_maxima; /* finish equalizes from the maxima given (mq_quant_equalize_fold_keep_maxima) */
    mq_quant_equalize_scales_fn follower; /* told each rescaled tensor (may be NULL) */
    void *follower_user;
};

static void worker_free(struct fold_worker *w, int n_tensors)
{
    for (int k = 0; k < n_tensors; k++) {
        free(w->lo ? w->lo[k] : NULL);
        free(w->hi ? w->hi[k] : NULL);
    }
    free(w->lo);
    free(w->hi);
}

static int worker_init(struct fold_worker *w, const struct mq_quant_equalize_fold *fold)
{
    int n = fold->pairs.n_channel_maxima;
    w->fold = fold;
    w->lo = calloc((size_t)n + 1, sizeof *w->lo);
    w->hi = calloc((size_t)n + 1, sizeof *w->hi);
    if (!w->lo || !w->hi)
        return -1;
    for (int k = 0; k < n; k++) {
        size_t c = (size_t)fold->pairs.channel_maxima[k].channels;
        w->lo[k] = malloc(c * sizeof **w->lo);
        w->hi[k] = malloc(c * sizeof **w->hi);
        if (!w->lo[k] || !w->hi[k])
            return -1;
        for (size_t ch = 0; ch < c; ch++) {
            w->lo[k][ch] = INFINITY;
            w->hi[k][ch] = -INFINITY;
        }
    }
    return 0;
}

static int fold_begin(void *user, int n_threads, void **workers, struct mq_error *err)
{
    struct mq_quant_equalize_fold *fold = user;
    int n = fold->pairs.n_channel_maxima;
    for (int t = 0; t < fold->n_workers; t++)
        worker_free(&fold->workers[t], n);
    free(fold->workers);
    fold->n_workers = 0;
    fold->workers = calloc((size_t)n_threads + 1, sizeof *fold->workers);
    if (!fold->workers)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
    for (int t = 0; t < n_threads; t++) {
        fold->n_workers = t + 1;
        if (worker_init(&fold->workers[t], fold))
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
        workers[t] = &fold->workers[t];
    }
    return MQ_OK;
}

/* The first zero of a row that holds one, as stored (-0 or +0). */
static float first_zero(const float *row, int64_t n)
{
    for (int64_t e = 0; e < n; e++)
        if (row[e] == 0.0f)
            return row[e];
    return 0.0f;
}

/*
 * Folds one row's finite values into the extremes *lo, *hi.  What the plain loop
 * (`l = x < l ? x : l` over the finite values, in order) gives, bit for bit: extremes do not
 * depend on order except for the sign of a zero, where the loop keeps the first zero met, or
 * the zero it held before the row.  The vector min/max does not say which zero it met, so a
 * zero extreme that replaces a non-zero one is looked up in the row.
 */
static void fold_row(const float *row, int64_t n, float *lo, float *hi)
{
    float l = *lo, h = *hi, row_lo, row_hi;
    if (mq_minmax_finite(row, n, &row_lo, &row_hi)) {
        if (row_lo < l)
            l = row_lo == 0.0f ? first_zero(row, n) : row_lo;
        if (row_hi > h)
            h = row_hi == 0.0f ? first_zero(row, n) : row_hi;
    } else {
        for (int64_t e = 0; e < n; e++) {
            float x = row[e];
            if (!isfinite(x))
                continue;
            l = x < l ? x : l;
            h = x > h ? x : h;
        }
    }
    *lo = l;
    *hi = h;
}

/* The extremes of each channel (axis 1) of a tensor between a pair, finite values only. */
static int fold_observe(void *worker, int64_t sample, const char *name,
                        const struct mq_tensor *value, struct mq_error *err)
{
    (void)sample;
    (void)err;
    struct fold_worker *w = worker;
    int k = mq_strmap_get(w->fold->of_tensor, name);
    if (k < 0)
        return MQ_OK;
    int64_t c = w->fold->pairs.channel_maxima[k].channels;
    if (value->dtype != MQ_DTYPE_FLOAT || value->rank < 2 || value->dims[1] != c)
        return MQ_OK;
    int64_t outer = value->dims[0];
    int64_t inner = outer > 0 && c > 0 ? value->count / (outer * c) : 0;
    const float *v = value->data;
    float *lo = w->lo[k], *hi = w->hi[k];
    for (int64_t n = 0; n < outer; n++)
        for (int64_t ch = 0; ch < c; ch++)
            fold_row(v + (n * c + ch) * inner, inner, &lo[ch], &hi[ch]);
    return MQ_OK;
}

int mq_quant_equalize_fold_new(struct mq_model *model, struct mq_quant_equalize_fold **out,
                               struct mq_error *err)
{
    *out = NULL;
    struct mq_quant_equalize_fold *fold = calloc(1, sizeof *fold);
    if (!fold)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
    int rc = mq_quant_equalize_pair_tensors(model, &fold->pairs, err);
    if (rc == MQ_OK && fold->pairs.n_channel_maxima && !(fold->of_tensor = mq_strmap_new()))
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
    for (int k = 0; rc == MQ_OK && k < fold->pairs.n_channel_maxima; k++)
        if (mq_strmap_put(fold->of_tensor, fold->pairs.channel_maxima[k].name, k))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory equalizing Conv ranges");
    if (rc != MQ_OK || !fold->pairs.n_channel_maxima) {
        mq_quant_equalize_fold_free(fold);
        return rc;
    }
    fold->extra.begin = fold_begin;
    fold->extra.observe = fold_observe;
    fold->extra.user = fold;
    *out = fold;
    return MQ_OK;
}

const struct mq_calib_extra *mq_quant_equalize_fold_extra(struct mq_quant_equalize_fold *fold)
{
    return &fold->extra;
}

int mq_quant_equalize_scaled_range(int64_t channels, const float *lo, const float *hi,
                                   const double *s, float *out_lo, float *out_hi)
{
    double l = INFINITY, h = -INFINITY;
    for (int64_t c = 0; c < channels; c++) {
        if (!(lo[c] <= hi[c]))
            continue;
        l = fmin(l, (double)lo[c] / s[c]);
        h = fmax(h, (double)hi[c] / s[c]);
    }
    if (!(l <= h))
        return 0;
    *out_lo = (float)l;
    *out_hi = (float)h;
    return 1;
}

/* After equalizing one pair: the range of its tensor between, from the merged extremes. */
struct derive {
    struct mq_quant_equalize_fold *fold;
    struct mq_ranges *ranges;
};

static int derive_range(void *user, const char *tensor, int64_t channels, const double *s,
                        struct mq_error *err)
{
    struct derive *d = user;
    int k = mq_strmap_get(d->fold->of_tensor, tensor);
    /* the ranges' own items (mq_ranges_find hands them out read-only) */
    struct mq_tensor_range *r = (struct mq_tensor_range *)mq_ranges_find(d->ranges, tensor);
    if (d->fold->follower && d->fold->follower(d->fold->follower_user, tensor, channels, s, err))
        return MQ_ERR;
    if (k < 0 || !r || r->count == 0 || !d->fold->n_workers ||
        d->fold->pairs.channel_maxima[k].channels != channels)
        return MQ_OK;
    const struct fold_worker *w = &d->fold->workers[0];
    float lo, hi;
    if (mq_quant_equalize_scaled_range(channels, w->lo[k], w->hi[k], s, &lo, &hi)) {
        r->observed_min = r->min = lo;
        r->observed_max = r->max = hi;
    }
    return MQ_OK;
}

void mq_quant_equalize_fold_follow(struct mq_quant_equalize_fold *fold,
                                   mq_quant_equalize_scales_fn fn, void *user)
{
    if (!fold)
        return;
    fold->follower = fn;
    fold->follower_user = user;
}

int mq_quant_equalize_fold_finish(struct mq_quant_equalize_fold *fold, struct mq_model *model,
                                  struct mq_ranges *ranges, struct mq_ranges *maxima,
                                  int *n_pairs, struct mq_error *err)
{
    if (n_pairs)
        *n_pairs = 0;
    int rc = MQ_OK;
    /* every thread's extremes into the first's (exact in any order) */
    for (int k = 0; k < fold->pairs.n_channel_maxima; k++) {
        struct mq_channel_maxima *m = &fold->pairs.channel_maxima[k];
        for (int64_t c = 0; c < m->channels; c++) {
            float lo = INFINITY, hi = -INFINITY;
            for (int t = 0; t < fold->n_workers; t++) {
                lo = fminf(lo, fold->workers[t].lo[k][c]);
                hi = fmaxf(hi, fold->workers[t].hi[k][c]);
            }
            if (fold->n_workers) {
                fold->workers[0].lo[k][c] = lo;
                fold->workers[0].hi[k][c] = hi;
            }
            /* the largest |value|, as mq_quant_equalize_measure has it: 0 when none */
            m->max[c] = lo <= hi ? fmax(fabs((double)lo), fabs((double)hi)) : 0.0;
        }
        if (!fold->keep_maxima && rc == MQ_OK)
            rc = mq_ranges_add_channel_maxima(maxima, m->name, m->channels, m->max, err);
    }
    struct derive d = {fold, ranges};
    if (rc == MQ_OK)
        rc = mq_quant_equalize_apply_with(model, maxima, n_pairs, derive_range, &d, err);
    return rc;
}

void mq_quant_equalize_fold_keep_maxima(struct mq_quant_equalize_fold *fold)
{
    fold->keep_maxima = 1;
}

void mq_quant_equalize_fold_free(struct mq_quant_equalize_fold *fold)
{
    if (!fold)
        return;
    for (int t = 0; t < fold->n_workers; t++)
        worker_free(&fold->workers[t], fold->pairs.n_channel_maxima);
    free(fold->workers);
    mq_strmap_free(fold->of_tensor);
    mq_ranges_free(&fold->pairs);
    free(fold);
}
