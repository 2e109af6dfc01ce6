/*
 * The result of calibration: choosing ranges from observers (minmax, percentile, entropy, mse),
 * merging shards, saving and loading them (see ranges.h).
 */
#include "calib/ranges.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib/histogram.h"
#include "calib/ranges_channels.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/json_read.h"

#define RANGES_FORMAT "onnx-monoquant-ranges"
#define RANGES_VERSION 1
/* Saved ranges hold at most a few MB per thousand tensors; refuse anything absurd. */
#define RANGES_MAX_FILE_BYTES ((uint64_t)1 << 30)

/* ---- basics ---------------------------------------------------------------------------- */

static int compare_name(const void *key, const void *item)
{
    return strcmp((const char *)key, ((const struct mq_tensor_range *)item)->name);
}

const struct mq_tensor_range *mq_ranges_find(const struct mq_ranges *ranges, const char *name)
{
    if (!ranges || !ranges->items || !name)
        return NULL;
    return bsearch(name, ranges->items, (size_t)ranges->n, sizeof *ranges->items, compare_name);
}

static void range_free(struct mq_tensor_range *r)
{
    free(r->name);
    free(r->histogram);
    memset(r, 0, sizeof *r);
}

void mq_ranges_free(struct mq_ranges *ranges)
{
    if (!ranges)
        return;
    for (int i = 0; i < ranges->n; i++)
        range_free(&ranges->items[i]);
    free(ranges->items);
    free(ranges->method);
    mq_ranges_free_channel_maxima(ranges);
    memset(ranges, 0, sizeof *ranges);
}

static const char *const method_names[] = {"minmax", "percentile", "entropy", "mse"};

const char *mq_calib_method_name(enum mq_calib_method method)
{
    if ((unsigned)method < sizeof method_names / sizeof method_names[0])
        return method_names[method];
    return "unknown";
}

int mq_calib_method_parse(const char *name, enum mq_calib_method *out)
{
    for (unsigned i = 0; i < sizeof method_names / sizeof method_names[0]; i++)
        if (name && strcmp(name, method_names[i]) == 0) {
            *out = (enum mq_calib_method)i;
            return MQ_OK;
        }
    return MQ_ERR;
}

int mq_calib_method_uses_histogram(enum mq_calib_method method)
{
    return method != MQ_CALIB_MINMAX;
}

int mq_calib_default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (n > 1024 ? 1024 : (int)n) : 1;
}

/* ---- finalize -------------------------------------------------------------------------- */

struct finalize_job {
    struct mq_ranges *ranges;
    enum mq_calib_method method;
    double percentile;
    int symmetric;
    int first, step;
};

static void finalize_item(struct mq_tensor_range *r, enum mq_calib_method method,
                          double percentile, int symmetric)
{
    if (r->count == 0) {
        r->min = r->max = 0;
        return;
    }
    double omin = r->observed_min, omax = r->observed_max;
    double lo = omin, hi = omax;
    int rc = 0;
    if (r->histogram) {
        switch (method) {
        case MQ_CALIB_PERCENTILE:
            rc = mq_histogram_percentile(r->histogram, percentile, symmetric, &lo, &hi);
            break;
        case MQ_CALIB_ENTROPY: rc = mq_histogram_entropy(r->histogram, &lo, &hi); break;
        case MQ_CALIB_MSE:
            rc = mq_histogram_mse(r->histogram, omin, omax, symmetric, &lo, &hi);
            break;
        case MQ_CALIB_MINMAX: break;
        }
    }
    /* A threshold never widens what was seen (onnxruntime clamps the same way). */
    if (lo < omin)
        lo = omin;
    if (hi > omax)
        hi = omax;
    if (rc != 0 || lo > hi) {
        lo = omin;
        hi = omax;
    }
    r->min = (float)lo;
    r->max = (float)hi;
}

static void *finalize_thread(void *arg)
{
    struct finalize_job *job = arg;
    for (int i = job->first; i < job->ranges->n; i += job->step)
        finalize_item(&job->ranges->items[i], job->method, job->percentile, job->symmetric);
    return NULL;
}

int mq_ranges_finalize(struct mq_ranges *ranges, enum mq_calib_method method, double percentile,
                       int symmetric, int jobs, struct mq_error *err)
{
    if ((unsigned)method > (unsigned)MQ_CALIB_MSE)
        return mq_error_code(err, MQ_ERR_USAGE, "unknown calibration method %d", (int)method);
    if (method == MQ_CALIB_PERCENTILE && !(percentile > 0 && percentile <= 100))
        return mq_error_code(err, MQ_ERR_USAGE, "percentile %g is outside (0, 100]", percentile);
    if (mq_calib_method_uses_histogram(method) && !ranges->has_histograms)
        return mq_error_set(err, "the %s method needs histograms, but these ranges were "
                            "calibrated with %s (min/max only): calibrate again with "
                            "--calibrate %s", mq_calib_method_name(method),
                            ranges->method ? ranges->method : "minmax",
                            mq_calib_method_name(method));
    char *name = strdup(mq_calib_method_name(method));
    if (!name)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    free(ranges->method);
    ranges->method = name;
    ranges->method_id = method;
    ranges->percentile = method == MQ_CALIB_PERCENTILE ? percentile : 0;
    ranges->symmetric = symmetric;

    /* Threads only pay off where each item costs something (entropy: ~1M logs per tensor). */
    if (jobs < 1 || method == MQ_CALIB_MINMAX)
        jobs = 1;
    if (jobs > ranges->n)
        jobs = ranges->n > 0 ? ranges->n : 1;
    if (jobs > 64)
        jobs = 64;
    struct finalize_job work[64];
    pthread_t threads[64];
    int created[64] = {0};
    for (int t = 0; t < jobs; t++)
        work[t] = (struct finalize_job){ranges, method, percentile, symmetric, t, jobs};
    for (int t = 1; t < jobs; t++)
        created[t] = pthread_create(&threads[t], NULL, finalize_thread, &work[t]) == 0;
    finalize_thread(&work[0]);
    for (int t = 1; t < jobs; t++) {
        if (created[t])
            pthread_join(threads[t], NULL);
        else
            finalize_thread(&work[t]); /* no thread to be had: do its share here */
    }
    return MQ_OK;
}

/* ---- merge ----------------------------------------------------------------------------- */

static int copy_histogram(struct mq_histogram **dst, const struct mq_histogram *src,
                          struct mq_error *err)
{
    *dst = NULL;
    if (!src)
        return MQ_OK;
    *dst = malloc(sizeof **dst);
    if (!*dst)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory for a histogram");
    **dst = *src;
    return MQ_OK;
}

static int merge_item(struct mq_tensor_range *a, const struct mq_tensor_range *b,
                      struct mq_error *err)
{
    if (b->count) {
        if (a->count == 0) {
            a->observed_min = b->observed_min;
            a->observed_max = b->observed_max;
        } else {
            if (b->observed_min < a->observed_min)
                a->observed_min = b->observed_min;
            if (b->observed_max > a->observed_max)
                a->observed_max = b->observed_max;
        }
    }
    a->count += b->count;
    a->nonfinite += b->nonfinite;
    a->nan += b->nan;
    a->produced += b->produced;
    if (b->histogram) {
        if (!a->histogram)
            return copy_histogram(&a->histogram, b->histogram, err);
        mq_histogram_merge(a->histogram, b->histogram);
    }
    return MQ_OK;
}

int mq_ranges_merge(struct mq_ranges *into, const struct mq_ranges *from, struct mq_error *err)
{
    int into_empty = into->n == 0 && into->samples == 0 && !into->method;
    if (!into_empty && into->has_histograms != from->has_histograms)
        return mq_error_set(err, "cannot merge ranges with histograms (%s) and ranges without "
                            "(%s): calibrate every shard with the same --calibrate method",
                            into->has_histograms ? into->method : from->method,
                            into->has_histograms ? from->method : into->method);
    size_t cap = (size_t)into->n + (size_t)from->n;
    struct mq_tensor_range *out = calloc(cap ? cap : 1, sizeof *out);
    if (!out)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory merging ranges");
    int i = 0, j = 0, n = 0, rc = MQ_OK;
    while (rc == MQ_OK && (i < into->n || j < from->n)) {
        int c = i >= into->n ? 1 : j >= from->n ? -1
                                : strcmp(into->items[i].name, from->items[j].name);
        if (c <= 0) {
            out[n] = into->items[i];
            memset(&into->items[i], 0, sizeof into->items[i]); /* moved */
            i++;
            if (c == 0)
                rc = merge_item(&out[n], &from->items[j++], err);
        } else {
            const struct mq_tensor_range *b = &from->items[j++];
            out[n] = *b;
            out[n].histogram = NULL;
            out[n].name = strdup(b->name);
            if (!out[n].name)
                rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory merging ranges");
            else
                rc = copy_histogram(&out[n].histogram, b->histogram, err);
        }
        n++;
    }
    /* Whatever happened, into now owns the merged array (items moved out of the old one). */
    for (int k = i; k < into->n; k++)
        out[n++] = into->items[k];
    free(into->items);
    into->items = out;
    into->n = n;
    if (rc)
        return rc;
    if (into_empty) {
        into->method = from->method ? strdup(from->method) : NULL;
        if (from->method && !into->method)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        into->method_id = from->method_id;
        into->percentile = from->percentile;
        into->symmetric = from->symmetric;
        into->has_histograms = from->has_histograms;
    }
    into->samples += from->samples;
    return mq_ranges_merge_channel_maxima(into, from, err);
}

/* ---- save ------------------------------------------------------------------------------ */

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                                : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || (len == 2 && *p < 0xc2))
            return 0;
        for (int k = 1; k < len; k++)
            if ((p[k] & 0xc0) != 0x80)
                return 0;
        if (len == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
            return 0;
        if (len == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || p[0] > 0xf4 ||
                         (p[0] == 0xf4 && p[1] >= 0x90)))
            return 0;
        p += len;
    }
    return 1;
}

static void write_histogram(struct mq_json *j, const struct mq_histogram *h)
{
    int first = 0, last = MQ_HISTOGRAM_BINS - 1;
    while (first < MQ_HISTOGRAM_BINS && h->counts[first] == 0)
        first++;
    while (last >= first && h->counts[last] == 0)
        last--;
    mq_json_key(j, "histogram");
    mq_json_object_begin(j);
    mq_json_key_int(j, "exponent", h->exponent);
    mq_json_key_int(j, "offset", first < MQ_HISTOGRAM_BINS ? first : 0);
    mq_json_key(j, "counts");
    /* One line per histogram keeps the file readable. */
    int pretty = j->pretty;
    j->pretty = 0;
    mq_json_array_begin(j);
    for (int k = first; k <= last; k++)
        mq_json_uint(j, h->counts[k]);
    mq_json_array_end(j);
    j->pretty = pretty;
    mq_json_object_end(j);
}

int mq_ranges_save(const struct mq_ranges *ranges, const char *path, struct mq_error *err)
{
    for (int i = 0; i < ranges->n; i++)
        if (!valid_utf8(ranges->items[i].name))
            return mq_error_set(err, "%s: tensor name '%s' is not valid UTF-8 and cannot be "
                                "saved as JSON", path, ranges->items[i].name);
    struct mq_atomic_file f;
    if (mq_atomic_open(&f, path, err))
        return MQ_ERR;
    struct mq_json j;
    mq_json_init(&j, f.fp, 1);
    mq_json_object_begin(&j);
    mq_json_key(&j, "format");
    mq_json_string(&j, RANGES_FORMAT);
    mq_json_key_int(&j, "version", RANGES_VERSION);
    mq_json_key(&j, "method");
    mq_json_string(&j, ranges->method ? ranges->method : "minmax");
    if (ranges->method_id == MQ_CALIB_PERCENTILE) {
        mq_json_key_double(&j, "percentile", ranges->percentile);
    }
    mq_json_key_bool(&j, "symmetric", ranges->symmetric);
    mq_json_key_uint(&j, "samples", ranges->samples);
    if (ranges->has_histograms) {
        mq_json_key_int(&j, "histogram_bins", MQ_HISTOGRAM_BINS);
    }
    mq_json_key(&j, "tensors");
    mq_json_array_begin(&j);
    for (int i = 0; i < ranges->n; i++) {
        const struct mq_tensor_range *r = &ranges->items[i];
        mq_json_object_begin(&j);
        mq_json_key(&j, "name");
        mq_json_string(&j, r->name);
        const char *keys[4] = {"min", "max", "observed_min", "observed_max"};
        const float values[4] = {r->min, r->max, r->observed_min, r->observed_max};
        for (int k = 0; k < 4; k++) {
            mq_json_key(&j, keys[k]);
            if (r->count)
                mq_json_float(&j, values[k]);
            else
                mq_json_null(&j);
        }
        mq_json_key_uint(&j, "count", r->count);
        mq_json_key_uint(&j, "nan", r->nan);
        mq_json_key_uint(&j, "inf", r->nonfinite - r->nan);
        mq_json_key_uint(&j, "produced", r->produced);
        if (ranges->has_histograms && r->count && r->histogram)
            write_histogram(&j, r->histogram);
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    mq_ranges_write_channel_maxima(&j, ranges);
    mq_json_object_end(&j);
    if (j.failed) {
        mq_atomic_abort(&f);
        return mq_error_set(err, "%s: write failed", path);
    }
    return mq_atomic_commit(&f, err);
}

/* ---- load ------------------------------------------------------------------------------ */

struct loader {
    const char *path;
    struct mq_error *err;
};

static int bad(struct loader *l, const char *tensor, const char *fmt, const char *detail)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, detail);
    if (tensor)
        return mq_error_set(l->err, "%s: tensor '%.200s': %s", l->path, tensor, msg);
    return mq_error_set(l->err, "%s: %s", l->path, msg);
}

static int get_uint(struct loader *l, const struct mq_json_value *obj, const char *tensor,
                    const char *key, uint64_t *out)
{
    if (mq_json_to_uint64(mq_json_get(obj, key), out))
        return bad(l, tensor, "'%s' must be an unsigned integer", key);
    return MQ_OK;
}

static int bin_of(const struct mq_histogram *h, float x)
{
    double y = ldexp((double)x, 10 - h->exponent);
    int64_t f = (int64_t)y;
    if ((double)f > y)
        f--;
    return (int)(f + MQ_HISTOGRAM_HALF);
}

static int load_histogram(struct loader *l, const struct mq_json_value *hv,
                          struct mq_tensor_range *r)
{
    const char *t = r->name;
    if (!hv || hv->type != MQ_JSON_OBJECT)
        return bad(l, t, "%s", "'histogram' is missing (the file names a histogram method)");
    int64_t exponent;
    uint64_t offset;
    if (mq_json_to_int64(mq_json_get(hv, "exponent"), &exponent) ||
        exponent < MQ_HISTOGRAM_MIN_EXPONENT || exponent > MQ_HISTOGRAM_MAX_EXPONENT)
        return bad(l, t, "%s", "histogram 'exponent' must be an integer in [-126, 128]");
    float amax = fmaxf(-r->observed_min, r->observed_max);
    if (exponent != mq_histogram_exponent_for(amax))
        return bad(l, t, "%s", "histogram 'exponent' disagrees with the observed extremes");
    if (get_uint(l, hv, t, "offset", &offset))
        return MQ_ERR;
    const struct mq_json_value *counts = mq_json_get(hv, "counts");
    if (!counts || counts->type != MQ_JSON_ARRAY)
        return bad(l, t, "%s", "histogram 'counts' must be an array");
    if (offset > MQ_HISTOGRAM_BINS || counts->u.array.n > MQ_HISTOGRAM_BINS - offset)
        return bad(l, t, "%s", "histogram 'counts' run past the 2048 bins");
    r->histogram = malloc(sizeof *r->histogram);
    if (!r->histogram)
        return mq_error_code(l->err, MQ_ERR_MEMORY, "out of memory for a histogram");
    mq_histogram_init(r->histogram);
    r->histogram->exponent = (int)exponent;
    uint64_t sum = 0;
    for (size_t k = 0; k < counts->u.array.n; k++) {
        uint64_t c;
        if (mq_json_to_uint64(&counts->u.array.items[k], &c))
            return bad(l, t, "%s", "histogram counts must be unsigned integers");
        if (c > UINT64_MAX - sum)
            return bad(l, t, "%s", "histogram counts overflow");
        sum += c;
        r->histogram->counts[offset + k] = c;
    }
    if (sum != r->count)
        return bad(l, t, "%s", "histogram counts do not add up to 'count'");
    /* Every value lies between the extremes, and the extremes themselves were counted. */
    int lo = bin_of(r->histogram, r->observed_min), hi = bin_of(r->histogram, r->observed_max);
    for (int k = 0; k < MQ_HISTOGRAM_BINS; k++)
        if (r->histogram->counts[k] && (k < lo || k > hi))
            return bad(l, t, "%s", "histogram counts lie outside the observed extremes");
    if (!r->histogram->counts[lo] || !r->histogram->counts[hi])
        return bad(l, t, "%s", "histogram has no count where the observed extremes lie");
    return MQ_OK;
}

static int load_tensor(struct loader *l, const struct mq_json_value *tv, int has_histograms,
                       struct mq_tensor_range *r)
{
    if (tv->type != MQ_JSON_OBJECT)
        return bad(l, NULL, "%s", "'tensors' must hold objects");
    const struct mq_json_value *name = mq_json_get(tv, "name");
    if (!name || name->type != MQ_JSON_STRING || name->u.string.len == 0)
        return bad(l, NULL, "%s", "a tensor lacks a non-empty 'name'");
    r->name = strdup(name->u.string.chars);
    if (!r->name)
        return mq_error_code(l->err, MQ_ERR_MEMORY, "out of memory");
    const char *t = r->name;
    uint64_t inf;
    if (get_uint(l, tv, t, "count", &r->count) || get_uint(l, tv, t, "nan", &r->nan) ||
        get_uint(l, tv, t, "inf", &inf) || get_uint(l, tv, t, "produced", &r->produced))
        return MQ_ERR;
    if (inf > UINT64_MAX - r->nan)
        return bad(l, t, "%s", "'nan' + 'inf' overflow");
    r->nonfinite = r->nan + inf;
    if (r->count == 0) {
        r->observed_min = r->observed_max = 0;
        return MQ_OK;
    }
    if (mq_json_to_float(mq_json_get(tv, "observed_min"), &r->observed_min) ||
        mq_json_to_float(mq_json_get(tv, "observed_max"), &r->observed_max))
        return bad(l, t, "%s", "'observed_min' and 'observed_max' must be finite numbers "
                   "when 'count' is not 0");
    r->observed_min += 0.0f; /* -0 reads back as +0, as the observers record it */
    r->observed_max += 0.0f;
    if (r->observed_min > r->observed_max)
        return bad(l, t, "%s", "'observed_min' is greater than 'observed_max'");
    if (has_histograms)
        return load_histogram(l, mq_json_get(tv, "histogram"), r);
    return MQ_OK;
}

static int compare_range(const void *a, const void *b)
{
    return strcmp(((const struct mq_tensor_range *)a)->name,
                  ((const struct mq_tensor_range *)b)->name);
}

static int load_document(struct loader *l, const struct mq_json_value *root,
                         struct mq_ranges *out)
{
    if (root->type != MQ_JSON_OBJECT)
        return bad(l, NULL, "%s", "expected a JSON object");
    const struct mq_json_value *format = mq_json_get(root, "format");
    if (!format || format->type != MQ_JSON_STRING || strcmp(format->u.string.chars,
                                                            RANGES_FORMAT) != 0)
        return bad(l, NULL, "%s", "not a ranges file ('format' is not \"" RANGES_FORMAT "\")");
    int64_t version;
    if (mq_json_to_int64(mq_json_get(root, "version"), &version))
        return bad(l, NULL, "%s", "'version' must be an integer");
    if (version != RANGES_VERSION) {
        char v[32];
        snprintf(v, sizeof v, "%" PRId64, version);
        return bad(l, NULL, "ranges format version %s is not the version 1 this build reads", v);
    }
    const struct mq_json_value *method = mq_json_get(root, "method");
    if (!method || method->type != MQ_JSON_STRING ||
        mq_calib_method_parse(method->u.string.chars, &out->method_id))
        return bad(l, NULL, "%s", "'method' must be one of minmax, percentile, entropy, mse");
    out->method = strdup(method->u.string.chars);
    if (!out->method)
        return mq_error_code(l->err, MQ_ERR_MEMORY, "out of memory");
    if (out->method_id == MQ_CALIB_PERCENTILE) {
        if (mq_json_to_double(mq_json_get(root, "percentile"), &out->percentile) ||
            !(out->percentile > 0 && out->percentile <= 100))
            return bad(l, NULL, "%s", "'percentile' must be a number in (0, 100]");
    }
    const struct mq_json_value *sym = mq_json_get(root, "symmetric");
    if (sym && sym->type != MQ_JSON_BOOL)
        return bad(l, NULL, "%s", "'symmetric' must be true or false");
    out->symmetric = sym ? sym->u.boolean : 0;
    if (get_uint(l, root, NULL, "samples", &out->samples))
        return MQ_ERR;
    const struct mq_json_value *bins = mq_json_get(root, "histogram_bins");
    if (bins) {
        int64_t b;
        if (mq_json_to_int64(bins, &b) || b != MQ_HISTOGRAM_BINS)
            return bad(l, NULL, "%s", "'histogram_bins' must be 2048");
        out->has_histograms = 1;
    }
    if (mq_calib_method_uses_histogram(out->method_id) && !out->has_histograms)
        return bad(l, NULL, "'method' is %s but the file has no 'histogram_bins'",
                   out->method);
    const struct mq_json_value *tensors = mq_json_get(root, "tensors");
    if (!tensors || tensors->type != MQ_JSON_ARRAY)
        return bad(l, NULL, "%s", "'tensors' must be an array");
    if (tensors->u.array.n > INT32_MAX / 2)
        return bad(l, NULL, "%s", "too many tensors");
    out->items = calloc(tensors->u.array.n ? tensors->u.array.n : 1, sizeof *out->items);
    if (!out->items)
        return mq_error_code(l->err, MQ_ERR_MEMORY, "out of memory");
    for (size_t i = 0; i < tensors->u.array.n; i++) {
        out->n = (int)i + 1;
        if (load_tensor(l, &tensors->u.array.items[i], out->has_histograms, &out->items[i]))
            return MQ_ERR;
    }
    qsort(out->items, (size_t)out->n, sizeof *out->items, compare_range);
    for (int i = 1; i < out->n; i++)
        if (strcmp(out->items[i - 1].name, out->items[i].name) == 0)
            return bad(l, out->items[i].name, "%s", "appears twice");
    return mq_ranges_read_channel_maxima(root, l->path, out, l->err);
}

static int load_state(const char *path, struct mq_ranges *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    struct mq_json_doc doc;
    if (mq_json_parse_file(path, RANGES_MAX_FILE_BYTES, &doc, err))
        return MQ_ERR;
    struct loader l = {path, err};
    int rc = load_document(&l, &doc.root, out);
    mq_json_doc_free(&doc);
    if (rc)
        mq_ranges_free(out);
    return rc;
}

int mq_ranges_load(const char *path, struct mq_ranges *out, struct mq_error *err)
{
    if (load_state(path, out, err))
        return MQ_ERR;
    int rc = mq_ranges_finalize(out, out->method_id, out->percentile, out->symmetric,
                                mq_calib_default_jobs(), err);
    if (rc)
        mq_ranges_free(out);
    return rc;
}

int mq_ranges_load_all(const char *const *paths, int n, struct mq_ranges *out,
                       struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1)
        return mq_error_code(err, MQ_ERR_USAGE, "no ranges file to load");
    for (int i = 0; i < n; i++) {
        struct mq_ranges shard;
        if (load_state(paths[i], &shard, err)) {
            mq_ranges_free(out);
            return MQ_ERR;
        }
        int rc = MQ_OK;
        if (i > 0 && (shard.method_id != out->method_id || shard.symmetric != out->symmetric ||
                      shard.percentile != out->percentile))
            rc = mq_error_set(err, "%s was calibrated with %s%s, %s with %s%s: shards must use "
                              "the same method", paths[0], out->method,
                              out->symmetric ? " (symmetric)" : "", paths[i], shard.method,
                              shard.symmetric ? " (symmetric)" : "");
        if (rc == MQ_OK && mq_ranges_merge(out, &shard, err)) {
            mq_error_prefix(err, "%s: ", paths[i]);
            rc = MQ_ERR;
        }
        mq_ranges_free(&shard);
        if (rc) {
            mq_ranges_free(out);
            return rc;
        }
    }
    int rc = mq_ranges_finalize(out, out->method_id, out->percentile, out->symmetric,
                                mq_calib_default_jobs(), err);
    if (rc)
        mq_ranges_free(out);
    return rc;
}
