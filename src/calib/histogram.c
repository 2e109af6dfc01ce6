/* The streaming histogram: order-free updates and exact merges (see histogram.h). */
#include "calib/histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mq_histogram_init(struct mq_histogram *h)
{
    h->exponent = MQ_HISTOGRAM_EMPTY;
    memset(h->counts, 0, sizeof h->counts);
}

int mq_histogram_exponent_for(float amax)
{
    int e = MQ_HISTOGRAM_MIN_EXPONENT;
    if (amax > 0 && isfinite(amax)) {
        /* amax = m * 2^ex with m in [0.5, 1): 2^ex is the smallest power of two above it. */
        int ex;
        frexp((double)amax, &ex);
        if (ex > e)
            e = ex;
    }
    return e;
}

/* floor(a / 2^d) for any sign of a. */
static int64_t floor_shift(int64_t a, int d)
{
    if (d >= 62)
        return a < 0 ? -1 : 0;
    int64_t div = (int64_t)1 << d;
    int64_t q = a / div;
    if (a % div != 0 && a < 0)
        q--;
    return q;
}

void mq_histogram_widen(struct mq_histogram *h, int exponent)
{
    if (h->exponent == MQ_HISTOGRAM_EMPTY) {
        h->exponent = exponent;
        return;
    }
    if (exponent <= h->exponent)
        return;
    int d = exponent - h->exponent;
    uint64_t merged[MQ_HISTOGRAM_BINS] = {0};
    /* Old bin k holds floor(y) = k - 1024; after d doublings it holds floor(y / 2^d). */
    for (int k = 0; k < MQ_HISTOGRAM_BINS; k++)
        if (h->counts[k])
            merged[MQ_HISTOGRAM_HALF + floor_shift(k - MQ_HISTOGRAM_HALF, d)] += h->counts[k];
    memcpy(h->counts, merged, sizeof merged);
    h->exponent = exponent;
}

void mq_histogram_add(struct mq_histogram *h, const float *x, int64_t n, float amax)
{
    mq_histogram_widen(h, mq_histogram_exponent_for(amax));
    /* scale = 1024 / R, a power of two: x * scale is exact in double for every float x. */
    const double scale = ldexp(1.0, 10 - h->exponent);
    uint64_t *counts = h->counts;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        double y = (double)v * scale;
        int64_t f = (int64_t)y; /* |y| < 1024: truncation is exact, floor fixes negatives */
        if ((double)f > y)
            f--;
        f += MQ_HISTOGRAM_HALF;
        /* Guards a caller whose amax understated the data; never hit with a correct amax. */
        if (f < 0)
            f = 0;
        else if (f >= MQ_HISTOGRAM_BINS)
            f = MQ_HISTOGRAM_BINS - 1;
        counts[f]++;
    }
}

void mq_histogram_merge(struct mq_histogram *into, const struct mq_histogram *from)
{
    if (from->exponent == MQ_HISTOGRAM_EMPTY)
        return;
    struct mq_histogram widened;
    const struct mq_histogram *src = from;
    if (into->exponent != MQ_HISTOGRAM_EMPTY && from->exponent < into->exponent) {
        widened = *from;
        mq_histogram_widen(&widened, into->exponent);
        src = &widened;
    } else {
        mq_histogram_widen(into, from->exponent);
    }
    for (int k = 0; k < MQ_HISTOGRAM_BINS; k++)
        into->counts[k] += src->counts[k];
}

uint64_t mq_histogram_total(const struct mq_histogram *h)
{
    uint64_t total = 0;
    for (int k = 0; k < MQ_HISTOGRAM_BINS; k++)
        total += h->counts[k];
    return total;
}

double mq_histogram_edge(const struct mq_histogram *h, int k)
{
    return ldexp((double)(k - MQ_HISTOGRAM_HALF), h->exponent - 10);
}

/* ---- percentile ------------------------------------------------------------------------ */

/*
 * First bin whose cumulative count reaches target and that holds data (so a
 * target of 0 gives the first non-empty bin); the last bin when none does.
 */
static int first_reaching(const uint64_t *counts, int n, double target)
{
    uint64_t cum = 0;
    for (int k = 0; k < n; k++) {
        cum += counts[k];
        if (counts[k] && (double)cum >= target)
            return k;
    }
    return n - 1;
}

int mq_histogram_percentile(const struct mq_histogram *h, double percentile, int symmetric,
                            double *lo, double *hi)
{
    uint64_t total = mq_histogram_total(h);
    if (total == 0 || h->exponent == MQ_HISTOGRAM_EMPTY)
        return -1;
    if (symmetric) {
        /* |x| histogram: bins 1024+k and 1023-k both hold |x| in about [k, k+1) widths. */
        uint64_t folded[MQ_HISTOGRAM_HALF];
        for (int k = 0; k < MQ_HISTOGRAM_HALF; k++)
            folded[k] = h->counts[MQ_HISTOGRAM_HALF + k] + h->counts[MQ_HISTOGRAM_HALF - 1 - k];
        int k = first_reaching(folded, MQ_HISTOGRAM_HALF, percentile / 100.0 * (double)total);
        double t = mq_histogram_edge(h, MQ_HISTOGRAM_HALF + k + 1);
        *lo = -t;
        *hi = t;
        return 0;
    }
    double cut = (100.0 - percentile) / 200.0;
    int left = first_reaching(h->counts, MQ_HISTOGRAM_BINS, cut * (double)total);
    int right = first_reaching(h->counts, MQ_HISTOGRAM_BINS, (1.0 - cut) * (double)total);
    *lo = mq_histogram_edge(h, left);
    *hi = mq_histogram_edge(h, right + 1);
    return 0;
}

/* ---- entropy --------------------------------------------------------------------------- */

#define QUANTIZED_BINS 128
#define SMOOTH_EPS 0.0001
/* log(c - eps1) is computed once per candidate for the counts below this (tails repeat them). */
#define SMALL_COUNTS 256
#define KL_TIE 1e-12

/*
 * KL(P || Q) of one candidate, as onnxruntime computes it with
 * smooth_distribution and scipy.stats.entropy, rearranged so that it costs
 * one pass and one log per non-empty bin:
 *   smoothing turns empty bins into eps and takes eps1 = eps * zeros / nonzeros
 *   from the others, so it keeps each sum: sum P = every count (the slice plus
 *   the outliers folded into its ends), sum Q = the counts of groups that hold
 *   some of P;
 *   Q is empty exactly where P is, or on a whole group, so an empty P bin
 *   meets an eps Q bin and adds 0;
 *   Q is constant over the non-empty bins of a group: one log per group;
 *   KL = sum(ps * (log ps - log qs)) / sum P + log(sum Q / sum P).
 * P's counts are integers >= 1 where non-empty and eps1 <= 0.0001 * 2048, so P
 * never smooths to a non-positive bin; Q can, and then the KL is infinite
 * (onnxruntime asserts there).
 */
struct entropy_tables {
    const uint64_t *hist;
    uint64_t prefix[MQ_HISTOGRAM_BINS + 1];   /* sum of hist[0..k) */
    int nonzero[MQ_HISTOGRAM_BINS + 1];       /* non-empty bins among hist[0..k) */
    double log_count[MQ_HISTOGRAM_BINS];     /* log(hist[k]) where hist[k] >= SMALL_COUNTS */
    double inv_count[MQ_HISTOGRAM_BINS];     /* 1 / hist[k] there */
    double log_value[SMALL_COUNTS];
    int log_stamp[SMALL_COUNTS];             /* the candidate each log_value belongs to */
    int candidate;
};

static double candidate_kl(struct entropy_tables *t, int start, int end)
{
    const uint64_t *hist = t->hist;
    const int n = end - start;
    const uint64_t total = t->prefix[MQ_HISTOGRAM_BINS];
    const double first = (double)(hist[start] + t->prefix[start]);
    const double last = (double)(hist[end - 1] + (total - t->prefix[end]));
    /* Ends that only the folded outliers make non-empty. */
    const int first_extra = hist[start] == 0 && first != 0;
    const int last_extra = hist[end - 1] == 0 && last != 0;
    int p_nonzero = t->nonzero[end] - t->nonzero[start] + first_extra + last_extra;
    if (p_nonzero == 0)
        return INFINITY;
    double eps1p = SMOOTH_EPS * (double)(n - p_nonzero) / (double)p_nonzero;

    int merged = n / QUANTIZED_BINS;
    double level[QUANTIZED_BINS];
    int q_nonzero = 0;
    double sum_q = 0, q_min = INFINITY;
    for (int j = 0; j < QUANTIZED_BINS; j++) {
        int a = start + j * merged, b = j == QUANTIZED_BINS - 1 ? end : a + merged;
        uint64_t sum = t->prefix[b] - t->prefix[a];
        int nonzero = t->nonzero[b] - t->nonzero[a] + (a == start && first_extra) +
                      (b == end && last_extra);
        level[j] = 0;
        if (nonzero && sum) {
            level[j] = (double)sum / nonzero;
            sum_q += (double)sum;
            q_nonzero += nonzero;
            if (level[j] < q_min)
                q_min = level[j];
        }
    }
    if (q_nonzero == 0)
        return INFINITY;
    double eps1q = SMOOTH_EPS * (double)(n - q_nonzero) / (double)q_nonzero;
    if (q_min - eps1q <= 0)
        return INFINITY;

    t->candidate++;
    const double log_eps = log(SMOOTH_EPS);
    double acc = 0;
    for (int j = 0; j < QUANTIZED_BINS; j++) {
        int a = start + j * merged, b = j == QUANTIZED_BINS - 1 ? end : a + merged;
        double log_q = level[j] > 0 ? log(level[j] - eps1q) : log_eps;
        for (int k = a; k < b; k++) {
            int end_bin = k == start || k == end - 1;
            double v = k == start ? first : k == end - 1 ? last : (double)hist[k];
            if (v == 0)
                continue;
            double ps = v - eps1p, log_p;
            if (end_bin) {
                log_p = log(ps);
            } else if (v < SMALL_COUNTS) { /* counts are whole numbers */
                int c = (int)v;
                if (t->log_stamp[c] != t->candidate) {
                    t->log_value[c] = log(ps);
                    t->log_stamp[c] = t->candidate;
                }
                log_p = t->log_value[c];
            } else {
                /* log(c - e) = log c + log(1 - x), x = e/c < 0.2/256: five terms of the
                   series reach double precision. */
                double x = eps1p * t->inv_count[k];
                log_p = t->log_count[k] -
                        x * (1 + x * (1.0 / 2 + x * (1.0 / 3 + x * (1.0 / 4 + x / 5))));
            }
            acc += ps * (log_p - log_q);
        }
    }
    return acc / (double)total + log(sum_q / (double)total);
}

int mq_histogram_entropy(const struct mq_histogram *h, double *lo, double *hi)
{
    if (h->exponent == MQ_HISTOGRAM_EMPTY || mq_histogram_total(h) == 0)
        return -1;
    struct entropy_tables *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->hist = h->counts;
    for (int k = 0; k < MQ_HISTOGRAM_BINS; k++) {
        t->prefix[k + 1] = t->prefix[k] + h->counts[k];
        t->nonzero[k + 1] = t->nonzero[k] + (h->counts[k] != 0);
        if (h->counts[k] >= SMALL_COUNTS) {
            t->log_count[k] = log((double)h->counts[k]);
            t->inv_count[k] = 1.0 / (double)h->counts[k];
        }
    }
    const int zero_bin = MQ_HISTOGRAM_BINS / 2;
    double best = INFINITY;
    int best_start = 0, best_end = MQ_HISTOGRAM_BINS;
    for (int i = QUANTIZED_BINS / 2; i <= zero_bin; i++) {
        int start = zero_bin - i;
        int end = zero_bin + i + 1 <= MQ_HISTOGRAM_BINS ? zero_bin + i + 1 : MQ_HISTOGRAM_BINS;
        double kl = candidate_kl(t, start, end);
        /* Rounding leaves ~1e-14 of noise in each KL; below KL_TIE candidates are equal and
           the first (narrowest) stays, as it would with exact arithmetic. */
        if (kl < best - KL_TIE) {
            best = kl;
            best_start = start;
            best_end = end;
        }
    }
    free(t);
    *lo = mq_histogram_edge(h, best_start);
    *hi = mq_histogram_edge(h, best_end);
    return 0;
}

/* ---- mse ------------------------------------------------------------------------------- */

/*
 * The fuzzers' coverage instrumentation traces every comparison; in this loop, run 2048 times
 * for each of up to 1024 thresholds, that tracing made a ranges file with histograms cost the
 * fuzzer 60 ms, so its 10 s did not get through the seed corpus.  The loop's branches say
 * nothing about the input's structure: it goes uninstrumented (clang only; no effect otherwise).
 */
#if defined(__clang__) && __clang_major__ >= 13
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

NO_COVERAGE static double quantization_error(const struct mq_histogram *h, double lo, double hi,
                                 int symmetric)
{
    /* The range the quantizer will use: zero included, mirrored when symmetric. */
    double qlo = lo < 0 ? lo : 0, qhi = hi > 0 ? hi : 0;
    double scale;
    if (symmetric) {
        double m = fmax(-qlo, qhi);
        qlo = -m;
        qhi = m;
        scale = 2 * m / 254.0;
    } else {
        scale = (qhi - qlo) / 255.0;
    }
    double inside = scale * scale / 12.0;
    double width = mq_histogram_edge(h, 1) - mq_histogram_edge(h, 0);
    double first = mq_histogram_edge(h, 0);
    double err = 0;
    for (int k = 0; k < MQ_HISTOGRAM_BINS; k++) {
        if (!h->counts[k])
            continue;
        double c = first + (k + 0.5) * width;
        double e = c < qlo ? (qlo - c) * (qlo - c) : c > qhi ? (c - qhi) * (c - qhi) : inside;
        err += (double)h->counts[k] * e;
    }
    return err;
}

/* (the loop above is inlined here: this goes uninstrumented too) */
NO_COVERAGE int mq_histogram_mse(const struct mq_histogram *h, double omin, double omax,
                                 int symmetric, double *lo, double *hi)
{
    if (mq_histogram_total(h) == 0 || h->exponent == MQ_HISTOGRAM_EMPTY)
        return -1;
    double width = mq_histogram_edge(h, 1) - mq_histogram_edge(h, 0);
    double extent = fmax(fabs(omin), fabs(omax));
    double best = INFINITY;
    *lo = omin;
    *hi = omax;
    for (int i = 1; i <= MQ_HISTOGRAM_HALF; i++) {
        double t = i * width;
        double a = fmax(-t, omin), b = fmin(t, omax);
        if (b < a) /* one-sided data the threshold does not reach yet */
            continue;
        double e = quantization_error(h, a, b, symmetric);
        if (e < best) {
            best = e;
            *lo = a;
            *hi = b;
        }
        if (t >= extent) /* wider thresholds give this same range */
            break;
    }
    return 0;
}
