/*
 * How far one tensor is from a reference, accumulated over samples: SQNR, max/mean error, cosine
 * (see metrics.h).
 */
#include "report/metrics.h"

#include "report/error_sums.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mq_error_stats_init(struct mq_error_stats *s)
{
    memset(s, 0, sizeof *s);
    s->min_sample_sqnr_db = INFINITY;
}

double mq_sqnr_db(double signal_power, double noise_power)
{
    if (noise_power == 0)
        return INFINITY;
    if (signal_power == 0)
        return -INFINITY;
    return 10.0 * log10(signal_power / noise_power);
}

/* Reads elements [start, start + n) of t as doubles into out. */
static void read_block(const struct mq_tensor *t, int64_t start, int64_t n, double *out)
{
    if (t->dtype == MQ_DTYPE_FLOAT) {
        const float *p = (const float *)t->data + start;
        for (int64_t i = 0; i < n; i++)
            out[i] = p[i];
    } else if (t->dtype == MQ_DTYPE_FLOAT16) {
        const uint16_t *p = (const uint16_t *)t->data + start;
        for (int64_t i = 0; i < n; i++)
            out[i] = mq_half_to_float(p[i]);
    } else if (t->dtype == MQ_DTYPE_DOUBLE) {
        memcpy(out, (const double *)t->data + start, (size_t)n * sizeof *out);
    } else {
        for (int64_t i = 0; i < n; i++)
            out[i] = mq_tensor_get_double(t, start + i);
    }
}

static int readable(int dtype)
{
    return dtype != MQ_DTYPE_STRING && mq_dtype_size(dtype) > 0;
}

static int check_pair(const struct mq_tensor *reference, const struct mq_tensor *test,
                      const char *what, struct mq_error *err)
{
    char a[128], b[128];
    if (!readable(reference->dtype) || !readable(test->dtype))
        return mq_error_set(err, "'%s': cannot compare %s with %s", what,
                            mq_dtype_name(reference->dtype), mq_dtype_name(test->dtype));
    if (!mq_shape_equal(reference, test))
        return mq_error_set(err, "'%s': shapes differ: %s against %s", what,
                            mq_shape_format(reference->rank, reference->dims, a, sizeof a),
                            mq_shape_format(test->rank, test->dims, b, sizeof b));
    return MQ_OK;
}

#define BLOCK 1024

/* Any numeric pair, read as doubles a block at a time and summed one value after the other. */
static void sums_any(const struct mq_tensor *reference, const struct mq_tensor *test,
                     struct mq_error_sums *out)
{
    double ref[BLOCK], tst[BLOCK];
    double ref2 = 0, test2 = 0, dot = 0, err2 = 0, max_abs = 0;
    int64_t elements = 0, equal = 0, mismatch = 0;
    for (int64_t start = 0; start < reference->count; start += BLOCK) {
        int64_t n = reference->count - start < BLOCK ? reference->count - start : BLOCK;
        read_block(reference, start, n, ref);
        read_block(test, start, n, tst);
        for (int64_t i = 0; i < n; i++) {
            double r = ref[i], t = tst[i];
            if (!isfinite(r) || !isfinite(t)) {
                if ((isnan(r) && isnan(t)) || r == t)
                    equal++;
                else
                    mismatch++;
                continue;
            }
            double e = t - r;
            ref2 += r * r;
            test2 += t * t;
            dot += r * t;
            err2 += e * e;
            if (fabs(e) > max_abs)
                max_abs = fabs(e);
            elements++;
        }
    }
    *out = (struct mq_error_sums){ref2, test2, dot, err2, max_abs, elements, equal, mismatch};
}

int mq_error_stats_add(struct mq_error_stats *s, const struct mq_tensor *reference,
                       const struct mq_tensor *test, const char *what, struct mq_error *err)
{
    if (check_pair(reference, test, what, err))
        return MQ_ERR;
    /* Per-sample sums first, so the worst sample can be told apart from the pooled figure. */
    struct mq_error_sums sample;
    if (reference->dtype == MQ_DTYPE_FLOAT && test->dtype == MQ_DTYPE_FLOAT)
        mq_error_sums_f32((const float *)reference->data, (const float *)test->data,
                          reference->count, MQ_ERROR_SUMS_AUTO, &sample);
    else
        sums_any(reference, test, &sample);
    double ref2 = sample.ref2, err2 = sample.err2;
    s->sum_ref2 += ref2;
    s->sum_test2 += sample.test2;
    s->sum_dot += sample.dot;
    s->sum_err2 += err2;
    if (sample.max_abs_error > s->max_abs_error)
        s->max_abs_error = sample.max_abs_error;
    s->elements += sample.elements;
    s->nonfinite_equal += sample.nonfinite_equal;
    s->nonfinite_mismatch += sample.nonfinite_mismatch;
    s->samples++;
    s->sum_sample_r2 += ref2 * ref2;
    s->sum_sample_e2 += err2 * err2;
    s->sum_sample_re += ref2 * err2;
    double sample_sqnr = mq_sqnr_db(ref2, err2);
    if (sample_sqnr < s->min_sample_sqnr_db)
        s->min_sample_sqnr_db = sample_sqnr;
    return MQ_OK;
}

void mq_error_stats_merge(struct mq_error_stats *into, const struct mq_error_stats *from)
{
    if (from->samples == 0)
        return;
    into->sum_ref2 += from->sum_ref2;
    into->sum_test2 += from->sum_test2;
    into->sum_dot += from->sum_dot;
    into->sum_err2 += from->sum_err2;
    if (from->max_abs_error > into->max_abs_error)
        into->max_abs_error = from->max_abs_error;
    into->elements += from->elements;
    into->nonfinite_equal += from->nonfinite_equal;
    into->nonfinite_mismatch += from->nonfinite_mismatch;
    into->samples += from->samples;
    into->sum_sample_r2 += from->sum_sample_r2;
    into->sum_sample_e2 += from->sum_sample_e2;
    into->sum_sample_re += from->sum_sample_re;
    if (from->min_sample_sqnr_db < into->min_sample_sqnr_db)
        into->min_sample_sqnr_db = from->min_sample_sqnr_db;
}

double mq_error_stats_sqnr_db(const struct mq_error_stats *s)
{
    return mq_sqnr_db(s->sum_ref2, s->sum_err2);
}

double mq_error_stats_sqnr_stderr_db(const struct mq_error_stats *s)
{
    if (s->samples < 2 || s->sum_err2 == 0.0)
        return 0.0;
    if (s->sum_ref2 == 0.0)
        return INFINITY;
    double r = s->sum_err2 / s->sum_ref2;
    double d2 = s->sum_sample_e2 - 2.0 * r * s->sum_sample_re + r * r * s->sum_sample_r2;
    double n = (double)s->samples;
    double var = d2 > 0.0 ? n / (n - 1.0) * d2 / (s->sum_ref2 * s->sum_ref2) : 0.0;
    return 10.0 / log(10.0) * sqrt(var) / r;
}

double mq_error_stats_cosine(const struct mq_error_stats *s)
{
    if (s->sum_ref2 == 0 && s->sum_test2 == 0)
        return 1.0;
    if (s->sum_ref2 == 0 || s->sum_test2 == 0)
        return 0.0;
    return s->sum_dot / (sqrt(s->sum_ref2) * sqrt(s->sum_test2));
}

double mq_error_stats_relative_noise(const struct mq_error_stats *s)
{
    if (s->sum_err2 == 0)
        return 0.0;
    if (s->sum_ref2 == 0)
        return INFINITY;
    return s->sum_err2 / s->sum_ref2;
}

int mq_looks_like_class_scores(const struct mq_tensor *t)
{
    if (!mq_dtype_is_float(t->dtype) || t->rank < 2 || t->dims[1] < 2 || t->dims[0] < 1)
        return 0;
    for (int d = 2; d < t->rank; d++)
        if (t->dims[d] != 1)
            return 0;
    return 1;
}

/* Index of the first maximum of row r (NaN never wins). */
static int64_t row_argmax(const struct mq_tensor *t, int64_t r, int64_t classes)
{
    int64_t best = 0;
    double best_value = -INFINITY;
    int have = 0;
    for (int64_t c = 0; c < classes; c++) {
        double v = mq_tensor_get_double(t, r * classes + c);
        if (isnan(v))
            continue;
        if (!have || v > best_value) {
            best = c;
            best_value = v;
            have = 1;
        }
    }
    return best;
}

int mq_top1_add(struct mq_top1_stats *s, const struct mq_tensor *reference,
                const struct mq_tensor *test, const char *what, struct mq_error *err)
{
    if (check_pair(reference, test, what, err))
        return MQ_ERR;
    if (!mq_looks_like_class_scores(reference))
        return mq_error_set(err, "'%s': not class scores [N, C]", what);
    int64_t rows = reference->dims[0], classes = reference->count / rows;
    for (int64_t r = 0; r < rows; r++) {
        s->rows++;
        if (row_argmax(reference, r, classes) == row_argmax(test, r, classes))
            s->agree++;
    }
    return MQ_OK;
}
