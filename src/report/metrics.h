/*
 * How far one tensor is from a reference, accumulated over samples: what
 * `compare` reports per graph output and, with --per-layer, per tensor.
 *
 * Everything is a running sum, so a statistic over many samples costs the
 * memory of one: SQNR and cosine similarity are pooled over every element of
 * every sample (the same as computing them on the concatenation of all
 * samples, as onnxruntime's quantization debugger does).
 */
#ifndef MQ_METRICS_H
#define MQ_METRICS_H

#include <stdint.h>

#include "core/tensor.h"
#include "util/error.h"

struct mq_error_stats {
    double sum_ref2;          /* sum of reference^2 */
    double sum_test2;         /* sum of test^2 */
    double sum_dot;           /* sum of reference * test */
    double sum_err2;          /* sum of (test - reference)^2 */
    double max_abs_error;
    int64_t elements;         /* pairs that entered the sums (both finite) */
    int64_t nonfinite_equal;  /* NaN against NaN, or the same infinity on both sides */
    int64_t nonfinite_mismatch; /* NaN or infinity on one side only, or infinities that differ */
    int64_t samples;
    double min_sample_sqnr_db; /* worst single sample; +inf until one has an error */
    /* Per-sample sums of squares and products (r: a sample's sum ref^2, e: its sum err^2),
       for the standard error of the pooled SQNR. */
    double sum_sample_r2, sum_sample_e2, sum_sample_re;
};

void mq_error_stats_init(struct mq_error_stats *s);

/*
 * Adds one sample.  Both tensors must have the same shape; any numeric type
 * (float32, float16, bfloat16, double, integers, bool) is read as a double,
 * so a float16 model compares against a float32 one.  `what` names the
 * tensor in messages.  Two float32 tensors are summed in fixed lanes
 * (report/error_sums.h): the sums depend on the tensors only, not on the CPU.
 */
int mq_error_stats_add(struct mq_error_stats *s, const struct mq_tensor *reference,
                       const struct mq_tensor *test, const char *what, struct mq_error *err);

/*
 * into += from, for statistics gathered apart (one sample each on worker threads) and merged
 * in sample order: merging one-sample statistics in order gives the very sums, bit for bit,
 * that adding the samples one after the other does.
 */
void mq_error_stats_merge(struct mq_error_stats *into, const struct mq_error_stats *from);

/*
 * Signal to quantization noise ratio, 10*log10(sum ref^2 / sum err^2):
 * +inf when there is no error, -inf when the reference is all zeros but
 * the test is not.
 */
double mq_error_stats_sqnr_db(const struct mq_error_stats *s);
/* Cosine similarity of the two as flat vectors: 1 when both are zero, 0 when one is. */
double mq_error_stats_cosine(const struct mq_error_stats *s);
/* Noise power relative to signal power, sum err^2 / sum ref^2 (0 when exact). */
double mq_error_stats_relative_noise(const struct mq_error_stats *s);

/*
 * Standard error, in dB, of the pooled SQNR as an estimate over samples like these: the
 * pooled noise ratio R = sum e / sum r is a ratio estimator with variance
 * n / (n - 1) * sum (e_i - R r_i)^2 / (sum r_i)^2, carried to dB (10 / ln 10 * se(R) / R).
 * 0 with fewer than two samples or no error; +inf when the signal is zero.
 */
double mq_error_stats_sqnr_stderr_db(const struct mq_error_stats *s);

/* The SQNR of two sums as above; exposed for callers that keep their own sums. */
double mq_sqnr_db(double signal_power, double noise_power);

/*
 * Whether an output looks like class scores: a float tensor [N, C] or
 * [N, C, 1, ..., 1] with at least two classes.  Detector grids, images and
 * sequences do not qualify, so top-1 is only reported where it means something.
 */
int mq_looks_like_class_scores(const struct mq_tensor *t);

struct mq_top1_stats {
    int64_t rows;   /* batch items compared */
    int64_t agree;  /* rows whose arg max is the same on both sides */
};

/* Adds the rows of one sample; the first maximum wins ties, as numpy's argmax. */
int mq_top1_add(struct mq_top1_stats *s, const struct mq_tensor *reference,
                const struct mq_tensor *test, const char *what, struct mq_error *err);

#endif
