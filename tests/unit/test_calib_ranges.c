/*
 * Saved ranges: the strict JSON reader under them, save/load round trips that
 * are bit-identical, and merges of shards that equal one run.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib/histogram.h"
#include "calib/observer.h"
#include "calib/ranges.h"
#include "check_main.h"
#include "util/fileio.h"
#include "util/json_read.h"

static struct mq_error err;

/* ---- the JSON reader ------------------------------------------------------------------- */

static int parse(const char *text, struct mq_json_doc *doc)
{
    return mq_json_parse(text, strlen(text), "t.json", doc, &err);
}

START_TEST(json_reads_values)
{
    struct mq_json_doc doc;
    ck_assert_int_eq(parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"\\u00e9\\ud83d\\ude00"
                           "\\n\\\"\", \"big\": 18446744073709551615, \"neg\": "
                           "-9223372036854775808, \"f\": 0.1}\n", &doc), 0);
    const struct mq_json_value *a = mq_json_get(&doc.root, "a");
    ck_assert_int_eq(a->type, MQ_JSON_ARRAY);
    ck_assert_uint_eq(a->u.array.n, 5);
    double d;
    ck_assert_int_eq(mq_json_to_double(&a->u.array.items[1], &d), 0);
    ck_assert(d == -2500.0);
    ck_assert_int_eq(a->u.array.items[2].type, MQ_JSON_BOOL);
    ck_assert_int_eq(a->u.array.items[4].type, MQ_JSON_NULL);
    uint64_t u;
    ck_assert_int_ne(mq_json_to_uint64(&a->u.array.items[1], &u), 0); /* not an integer */
    ck_assert_int_eq(mq_json_to_uint64(mq_json_get(&doc.root, "big"), &u), 0);
    ck_assert(u == UINT64_MAX);
    int64_t i;
    ck_assert_int_eq(mq_json_to_int64(mq_json_get(&doc.root, "neg"), &i), 0);
    ck_assert(i == INT64_MIN);
    ck_assert_int_ne(mq_json_to_int64(mq_json_get(&doc.root, "big"), &i), 0);
    float f;
    ck_assert_int_eq(mq_json_to_float(mq_json_get(&doc.root, "f"), &f), 0);
    ck_assert(f == 0.1f);
    const struct mq_json_value *s = mq_json_get(&doc.root, "s");
    ck_assert_str_eq(s->u.string.chars, "\xc3\xa9\xf0\x9f\x98\x80\n\"");
    ck_assert_ptr_null(mq_json_get(&doc.root, "missing"));
    mq_json_doc_free(&doc);
}
END_TEST

START_TEST(json_refuses_what_is_not_json)
{
    const char *bad[] = {
        "", "{", "[1,]", "{\"a\":1,}", "// c\n{}", "{\"a\":NaN}", "[01]", "[1.]", "[.5]",
        "[+1]", "[\"abc]", "[\"a\x01\"]", "[\"\xff\"]", "[\"\\ud800\"]", "[\"\\udc00x\"]",
        "[\"\\u0000\"]", "{\"a\":1,\"a\":2}", "{} {}", "[1 2]", "{a:1}", "['a']", "[tru]",
        "[\"\\x\"]", "[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]", "[1e]", "[-]",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct mq_json_doc doc;
        ck_assert_msg(parse(bad[k], &doc) != 0, "accepted '%s'", bad[k]);
        ck_assert(strstr(err.message, "t.json: line ") != NULL);
    }
    char deep[200];
    memset(deep, '[', 70);
    memset(deep + 70, ']', 70);
    deep[140] = '\0';
    struct mq_json_doc doc;
    ck_assert_int_ne(parse(deep, &doc), 0);
    ck_assert(strstr(err.message, "nested too deeply") != NULL);
    ck_assert_int_eq(parse("{\"x\":1}\n{", &doc) != 0, 1);
    ck_assert(strstr(err.message, "line 2, column 1") != NULL);
    /* Numbers out of range for what they are read as. */
    ck_assert_int_eq(parse("[18446744073709551616, 1e39, 1e309]", &doc), 0);
    uint64_t u;
    float f;
    double d;
    ck_assert_int_ne(mq_json_to_uint64(&doc.root.u.array.items[0], &u), 0);
    ck_assert_int_ne(mq_json_to_float(&doc.root.u.array.items[1], &f), 0);
    ck_assert_int_ne(mq_json_to_double(&doc.root.u.array.items[2], &d), 0);
    mq_json_doc_free(&doc);
}
END_TEST

/* Random corruption of a valid document never crashes the reader. */
START_TEST(json_survives_mutations)
{
    const char *seed = "{\"format\": \"x\", \"t\": [{\"n\": \"a\\u00e9\", \"v\": [1, 2.5e-3, "
                       "-0, null, true]}], \"k\": {\"z\": false}}";
    size_t n = strlen(seed);
    char buf[256];
    uint32_t state = 1;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, seed, n);
        for (int f = 0; f < 1 + iter % 3; f++) {
            state = state * 1103515245u + 12345u;
            buf[(state >> 8) % n] = (char)(state >> 20);
        }
        struct mq_json_doc doc;
        if (mq_json_parse(buf, n, "m", &doc, &err) == 0)
            mq_json_doc_free(&doc);
    }
}
END_TEST

/* ---- ranges ---------------------------------------------------------------------------- */

static char dir[64];

static const char *file(const char *name)
{
    static char buf[32][256]; /* a ring: results stay valid for the next 31 calls */
    static int k;
    k = (k + 1) % 32;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Values for tensor t of sample s: varied signs and magnitudes, some NaN. */
static void sample_values(int t, int s, float *x, int n)
{
    uint32_t state = (uint32_t)(t * 7919 + s * 104729 + 1);
    for (int i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        float v = ((float)(state >> 8) / (float)(1u << 24) - 0.3f) * (float)(1 + s % 5 + t);
        if (t == 1)
            v = fabsf(v); /* one-sided, like a Relu output */
        if (t == 2 && s == 3 && i == 5)
            v = NAN;
        x[i] = v;
    }
}

static const char *const tensor_names[3] = {"b/relu", "a/conv", "c\"quoted\\name"};

/* Ranges for samples [first, last) as calibration builds them. */
static void build(struct mq_ranges *r, int first, int last, int with_histogram)
{
    memset(r, 0, sizeof *r);
    r->items = calloc(3, sizeof *r->items);
    r->has_histograms = with_histogram;
    int order[3] = {1, 0, 2}; /* sorted by name */
    for (int k = 0; k < 3; k++) {
        int t = order[k];
        struct mq_observer o;
        mq_observer_init(&o, with_histogram, &err);
        for (int s = first; s < last; s++) {
            float x[64];
            sample_values(t, s, x, 64);
            struct mq_tensor v = {MQ_DTYPE_FLOAT, 1, {64}, 64, x, 1};
            mq_observer_add(&o, &v, &err);
        }
        struct mq_tensor_range *it = &r->items[r->n++];
        it->name = strdup(tensor_names[t]);
        it->count = o.minmax.count;
        it->nan = o.minmax.nan;
        it->nonfinite = o.minmax.nan + o.minmax.inf;
        it->produced = o.produced;
        it->observed_min = o.minmax.count ? o.minmax.min : 0;
        it->observed_max = o.minmax.count ? o.minmax.max : 0;
        it->histogram = o.histogram;
    }
    r->samples = (uint64_t)(last - first);
}

static char *slurp(const char *path)
{
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(mq_file_read(path, 1 << 26, &data, &size, &err), 0);
    char *s = realloc(data, size + 1);
    s[size] = '\0';
    return s;
}

static void assert_same_state(const struct mq_ranges *a, const struct mq_ranges *b)
{
    ck_assert_int_eq(a->n, b->n);
    ck_assert_uint_eq(a->samples, b->samples);
    for (int i = 0; i < a->n; i++) {
        const struct mq_tensor_range *x = &a->items[i], *y = &b->items[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert(memcmp(&x->min, &y->min, 4) == 0 && memcmp(&x->max, &y->max, 4) == 0);
        ck_assert(x->observed_min == y->observed_min && x->observed_max == y->observed_max);
        ck_assert(x->count == y->count && x->nonfinite == y->nonfinite && x->nan == y->nan);
        ck_assert(x->produced == y->produced);
        ck_assert((x->histogram == NULL) == (y->histogram == NULL));
        if (x->histogram) {
            ck_assert_int_eq(x->histogram->exponent, y->histogram->exponent);
            ck_assert(memcmp(x->histogram->counts, y->histogram->counts,
                             sizeof x->histogram->counts) == 0);
        }
    }
}

START_TEST(save_load_round_trip_is_exact)
{
    strcpy(dir, "/tmp/mq-ranges-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const enum mq_calib_method methods[4] = {MQ_CALIB_MINMAX, MQ_CALIB_PERCENTILE,
                                             MQ_CALIB_ENTROPY, MQ_CALIB_MSE};
    for (int m = 0; m < 4; m++) {
        struct mq_ranges r, back;
        build(&r, 0, 10, m != 0);
        ck_assert_int_eq(mq_ranges_finalize(&r, methods[m], 99.9, 0, 2, &err), 0);
        ck_assert_int_eq(mq_ranges_save(&r, file("a.json"), &err), 0);
        ck_assert_int_eq(mq_ranges_load(file("a.json"), &back, &err), 0);
        ck_assert_str_eq(back.method, mq_calib_method_name(methods[m]));
        assert_same_state(&r, &back);
        ck_assert_ptr_nonnull(mq_ranges_find(&back, "c\"quoted\\name"));
        ck_assert_ptr_null(mq_ranges_find(&back, "nope"));
        /* Saving what was loaded gives the same bytes. */
        ck_assert_int_eq(mq_ranges_save(&back, file("b.json"), &err), 0);
        char *x = slurp(file("a.json")), *y = slurp(file("b.json"));
        ck_assert_str_eq(x, y);
        free(x);
        free(y);
        mq_ranges_free(&r);
        mq_ranges_free(&back);
    }
    unlink(file("a.json"));
    unlink(file("b.json"));
    rmdir(dir);
}
END_TEST

START_TEST(shards_merge_into_one_run)
{
    strcpy(dir, "/tmp/mq-ranges-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int hist = 0; hist < 2; hist++) {
        enum mq_calib_method method = hist ? MQ_CALIB_ENTROPY : MQ_CALIB_MINMAX;
        struct mq_ranges one, a, b, c, merged;
        build(&one, 0, 12, hist);
        build(&a, 0, 5, hist);
        build(&b, 5, 7, hist);
        build(&c, 7, 12, hist);
        ck_assert_int_eq(mq_ranges_finalize(&one, method, 0, 0, 1, &err), 0);
        ck_assert_int_eq(mq_ranges_finalize(&a, method, 0, 0, 1, &err), 0);
        ck_assert_int_eq(mq_ranges_finalize(&b, method, 0, 0, 1, &err), 0);
        ck_assert_int_eq(mq_ranges_finalize(&c, method, 0, 0, 1, &err), 0);
        ck_assert_int_eq(mq_ranges_save(&one, file("one.json"), &err), 0);
        ck_assert_int_eq(mq_ranges_save(&a, file("a.json"), &err), 0);
        ck_assert_int_eq(mq_ranges_save(&b, file("b.json"), &err), 0);
        ck_assert_int_eq(mq_ranges_save(&c, file("c.json"), &err), 0);
        /* Any order of the shards gives the one-run file, byte for byte. */
        const char *orders[2][3] = {{file("a.json"), file("b.json"), file("c.json")},
                                    {file("c.json"), file("a.json"), file("b.json")}};
        for (int o = 0; o < 2; o++) {
            ck_assert_int_eq(mq_ranges_load_all(orders[o], 3, &merged, &err), 0);
            assert_same_state(&one, &merged);
            ck_assert_int_eq(mq_ranges_save(&merged, file("m.json"), &err), 0);
            char *x = slurp(file("one.json")), *y = slurp(file("m.json"));
            ck_assert_str_eq(x, y);
            free(x);
            free(y);
            mq_ranges_free(&merged);
        }
        mq_ranges_free(&one);
        mq_ranges_free(&a);
        mq_ranges_free(&b);
        mq_ranges_free(&c);
    }
    const char *names[] = {"one.json", "a.json", "b.json", "c.json", "m.json"};
    for (int i = 0; i < 5; i++)
        unlink(file(names[i]));
    rmdir(dir);
}
END_TEST

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void expect_load_error(const char *text, const char *needle)
{
    write_text(file("bad.json"), text);
    struct mq_ranges r;
    ck_assert_int_ne(mq_ranges_load(file("bad.json"), &r, &err), 0);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
}

#define HEAD "{\"format\": \"onnx-monoquant-ranges\", \"version\": 1, "

START_TEST(load_is_strict)
{
    strcpy(dir, "/tmp/mq-ranges-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    expect_load_error("{\"format\": \"other\"}", "not a ranges file");
    expect_load_error(HEAD "\"version\": 2}", "line 1"); /* duplicate key: the JSON layer */
    expect_load_error("{\"format\": \"onnx-monoquant-ranges\", \"version\": 2}",
                      "version 2 is not the version 1");
    expect_load_error(HEAD "\"method\": \"best\", \"samples\": 1, \"tensors\": []}",
                      "'method' must be one of");
    expect_load_error(HEAD "\"method\": \"entropy\", \"samples\": 1, \"tensors\": []}",
                      "no 'histogram_bins'");
    expect_load_error(HEAD "\"method\": \"percentile\", \"percentile\": 101, \"samples\": 1, "
                      "\"histogram_bins\": 2048, \"tensors\": []}", "'percentile' must be");
    expect_load_error(HEAD "\"method\": \"minmax\", \"samples\": -1, \"tensors\": []}",
                      "'samples' must be an unsigned integer");
    const char *t = HEAD "\"method\": \"minmax\", \"samples\": 1, \"tensors\": [";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s{\"name\": \"a\", \"count\": 1, \"nan\": 0, \"inf\": 0, "
             "\"produced\": 1, \"observed_min\": 2, \"observed_max\": 1}]}", t);
    expect_load_error(buf, "tensor 'a': 'observed_min' is greater");
    snprintf(buf, sizeof buf, "%s{\"name\": \"a\", \"count\": 1, \"nan\": 0, \"inf\": 0, "
             "\"produced\": 1, \"observed_min\": null, \"observed_max\": 1}]}", t);
    expect_load_error(buf, "must be finite numbers");
    snprintf(buf, sizeof buf, "%s{\"name\": \"a\", \"count\": 0, \"nan\": 0, \"inf\": 0, "
             "\"produced\": 1}, {\"name\": \"a\", \"count\": 0, \"nan\": 0, \"inf\": 0, "
             "\"produced\": 1}]}", t);
    expect_load_error(buf, "tensor 'a': appears twice");
    const char *h = HEAD "\"method\": \"entropy\", \"samples\": 1, \"histogram_bins\": 2048, "
                         "\"tensors\": [{\"name\": \"a\", \"count\": 3, \"nan\": 0, \"inf\": 0, "
                         "\"produced\": 1, \"observed_min\": -1, \"observed_max\": 1.5, ";
    snprintf(buf, sizeof buf, "%s\"histogram\": {\"exponent\": 1, \"offset\": 512, "
             "\"counts\": [1, 1]}}]}", h);
    expect_load_error(buf, "do not add up to 'count'");
    snprintf(buf, sizeof buf, "%s\"histogram\": {\"exponent\": 3, \"offset\": 512, "
             "\"counts\": [3]}}]}", h);
    expect_load_error(buf, "'exponent' disagrees");
    snprintf(buf, sizeof buf, "%s\"histogram\": {\"exponent\": 1, \"offset\": 2047, "
             "\"counts\": [1, 2]}}]}", h);
    expect_load_error(buf, "run past the 2048 bins");
    snprintf(buf, sizeof buf, "%s\"histogram\": {\"exponent\": 1, \"offset\": 100, "
             "\"counts\": [3]}}]}", h);
    expect_load_error(buf, "outside the observed extremes");
    snprintf(buf, sizeof buf, "%s\"histogram\": {\"exponent\": 1, \"offset\": 512, "
             "\"counts\": [2, 1]}}]}", h);
    expect_load_error(buf, "no count where the observed extremes lie");
    snprintf(buf, sizeof buf, "%s\"histogram\": {\"exponent\": 1, \"offset\": 512, "
             "\"counts\": [18446744073709551615, 1]}}]}", h);
    expect_load_error(buf, "overflow");
    snprintf(buf, sizeof buf, "%s\"x\": 0}]}", h);
    expect_load_error(buf, "'histogram' is missing");
    /* A valid one: -1 in bin 512, 1.5 in bin 1792 (R = 2, width 1/512). */
    snprintf(buf, sizeof buf, "%s\"histogram\": {\"exponent\": 1, \"offset\": 512, "
             "\"counts\": [2%s, 1]}}]}", h, ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0");
    write_text(file("bad.json"), buf);
    struct mq_ranges r;
    ck_assert_int_ne(mq_ranges_load(file("bad.json"), &r, &err), 0); /* 1.5 is not at 528 */
    char counts[8000];
    int n = snprintf(counts, sizeof counts, "2");
    for (int k = 513; k < 1792; k++)
        n += snprintf(counts + n, sizeof counts - (size_t)n, ", 0");
    snprintf(counts + n, sizeof counts - (size_t)n, ", 1");
    char *big = malloc(strlen(h) + strlen(counts) + 200);
    sprintf(big, "%s\"histogram\": {\"exponent\": 1, \"offset\": 512, \"counts\": [%s]}}]}", h,
            counts);
    write_text(file("good.json"), big);
    free(big);
    ck_assert_int_eq(mq_ranges_load(file("good.json"), &r, &err), 0);
    ck_assert(r.items[0].min >= -1.0f && r.items[0].max <= 1.5f);
    mq_ranges_free(&r);
    unlink(file("good.json"));
    unlink(file("bad.json"));
    rmdir(dir);
}
END_TEST

START_TEST(merge_refuses_mismatches)
{
    strcpy(dir, "/tmp/mq-ranges-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct mq_ranges a, b, m;
    build(&a, 0, 3, 0);
    build(&b, 3, 6, 1);
    ck_assert_int_eq(mq_ranges_finalize(&a, MQ_CALIB_MINMAX, 0, 0, 1, &err), 0);
    ck_assert_int_eq(mq_ranges_finalize(&b, MQ_CALIB_ENTROPY, 0, 0, 1, &err), 0);
    /* Minmax ranges cannot give a histogram method. */
    ck_assert_int_ne(mq_ranges_finalize(&a, MQ_CALIB_ENTROPY, 0, 0, 1, &err), 0);
    ck_assert(strstr(err.message, "needs histograms") != NULL);
    ck_assert_int_eq(mq_ranges_save(&a, file("a.json"), &err), 0);
    ck_assert_int_eq(mq_ranges_save(&b, file("b.json"), &err), 0);
    const char *paths[2] = {file("a.json"), file("b.json")};
    ck_assert_int_ne(mq_ranges_load_all(paths, 2, &m, &err), 0);
    ck_assert(strstr(err.message, "minmax") && strstr(err.message, "entropy"));
    ck_assert_int_ne(mq_ranges_merge(&a, &b, &err), 0);
    ck_assert(strstr(err.message, "histograms") != NULL);
    /* A histogram method's state serves another histogram method. */
    ck_assert_int_eq(mq_ranges_finalize(&b, MQ_CALIB_PERCENTILE, 99.0, 0, 1, &err), 0);
    ck_assert_int_eq(mq_ranges_finalize(&b, MQ_CALIB_MSE, 0, 1, 1, &err), 0);
    for (int i = 0; i < b.n; i++)
        ck_assert(b.items[i].min >= b.items[i].observed_min &&
                  b.items[i].max <= b.items[i].observed_max &&
                  b.items[i].min <= b.items[i].max);
    mq_ranges_free(&a);
    mq_ranges_free(&b);
    unlink(file("a.json"));
    unlink(file("b.json"));
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib_ranges");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, json_reads_values);
    tcase_add_test(tc, json_refuses_what_is_not_json);
    tcase_add_test(tc, json_survives_mutations);
    tcase_add_test(tc, save_load_round_trip_is_exact);
    tcase_add_test(tc, shards_merge_into_one_run);
    tcase_add_test(tc, load_is_strict);
    tcase_add_test(tc, merge_refuses_mismatches);
    return mq_check_run(s, tc);
}
