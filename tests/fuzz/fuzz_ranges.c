/*
 * libFuzzer target: a saved ranges file (--load-ranges, calibrate's shards):
 * the strict JSON reader on the bytes, then mq_ranges_load on them as a file,
 * as the commands read it.  A file that loads must save and load back to the
 * same state (channel maxima included), merge with itself into doubled counts and the same
 * channel maxima (or refuse an overflow), and give every range a scale and zero point or a message.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "calib/histogram.h"
#include "calib/ranges.h"
#include "fuzz_common.h"
#include "quant/params.h"
#include "util/json_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_same(const struct mq_ranges *a, const struct mq_ranges *b)
{
    if (a->n != b->n || a->samples != b->samples || a->method_id != b->method_id ||
        a->symmetric != b->symmetric || a->has_histograms != b->has_histograms)
        abort();
    for (int i = 0; i < a->n; i++) {
        const struct mq_tensor_range *x = &a->items[i], *y = &b->items[i];
        if (strcmp(x->name, y->name) != 0 || x->count != y->count ||
            x->nonfinite != y->nonfinite || x->nan != y->nan || x->produced != y->produced ||
            !same_float(x->observed_min, y->observed_min) ||
            !same_float(x->observed_max, y->observed_max) || !same_float(x->min, y->min) ||
            !same_float(x->max, y->max) || !x->histogram != !y->histogram)
            abort();
        if (x->histogram && (x->histogram->exponent != y->histogram->exponent ||
                             memcmp(x->histogram->counts, y->histogram->counts,
                                    sizeof x->histogram->counts) != 0))
            abort();
    }
}

/* Channel maxima: kept exactly by saving and by merging a file with itself. */
static void check_same_maxima(const struct mq_ranges *a, const struct mq_ranges *b)
{
    if (a->n_channel_maxima != b->n_channel_maxima)
        abort();
    for (int i = 0; i < a->n_channel_maxima; i++) {
        const struct mq_channel_maxima *x = &a->channel_maxima[i], *y = &b->channel_maxima[i];
        if (strcmp(x->name, y->name) != 0 || x->channels != y->channels ||
            memcmp(x->max, y->max, (size_t)x->channels * sizeof *x->max) != 0)
            abort();
    }
}

static void check_doubled(const struct mq_ranges *once, const struct mq_ranges *twice)
{
    if (once->n != twice->n || twice->samples != 2 * once->samples)
        abort();
    for (int i = 0; i < once->n; i++) {
        const struct mq_tensor_range *x = &once->items[i], *y = &twice->items[i];
        if (y->count != 2 * x->count || y->nan != 2 * x->nan || y->produced != 2 * x->produced ||
            !same_float(x->observed_min, y->observed_min) ||
            !same_float(x->observed_max, y->observed_max))
            abort();
    }
}

static void check_params(const struct mq_ranges *r)
{
    static const int types[] = {MQ_DTYPE_UINT8, MQ_DTYPE_INT8, MQ_DTYPE_INT16, MQ_DTYPE_UINT4};
    struct mq_error err;
    for (int i = 0; i < r->n; i++) {
        const struct mq_tensor_range *t = &r->items[i];
        if (!t->count)
            continue;
        if (!(t->min <= t->max) || !isfinite(t->min) || !isfinite(t->max))
            abort(); /* finalize promises a finite range inside the observed one */
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            for (int symmetric = 0; symmetric < 2; symmetric++) {
                struct mq_qparams p;
                struct mq_qrange q = mq_qrange_for(types[k], symmetric, 0);
                if (mq_qparams_compute(t->min, t->max, q, symmetric, &p, &err) != 0) {
                    if (!err.message[0])
                        abort();
                    continue;
                }
                if (!(p.scale > 0) || !isfinite(p.scale) || p.zero_point < q.qmin ||
                    p.zero_point > q.qmax)
                    abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_error err;
    struct mq_json_doc doc;
    if (mq_json_parse((const char *)data, size, "fuzz.json", &doc, &err) == 0)
        mq_json_doc_free(&doc);
    else if (!err.message[0])
        abort();

    char path[256];
    snprintf(path, sizeof path, "%s", fuzz_write_file("ranges.json", data, size));
    struct mq_ranges loaded;
    if (mq_ranges_load(path, &loaded, &err) != 0) {
        if (!err.message[0])
            abort();
        return 0;
    }
    check_params(&loaded);

    char saved[256];
    snprintf(saved, sizeof saved, "%s/saved.json", fuzz_dir_get());
    if (mq_ranges_save(&loaded, saved, &err) != 0)
        abort();
    struct mq_ranges back;
    if (mq_ranges_load(saved, &back, &err) != 0)
        abort(); /* a file we wrote ourselves must load */
    check_same(&loaded, &back);
    check_same_maxima(&loaded, &back);
    mq_ranges_free(&back);

    const char *twice[2] = {path, path};
    struct mq_ranges merged;
    if (mq_ranges_load_all(twice, 2, &merged, &err) == 0) {
        check_doubled(&loaded, &merged);
        check_same_maxima(&loaded, &merged);
        mq_ranges_free(&merged);
    } else if (!err.message[0]) {
        abort();
    }
    mq_ranges_free(&loaded);
    return 0;
}
