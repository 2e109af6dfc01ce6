/*
 * The calibration driver on a small model: what is observed (main graph,
 * If branches, folded constants, graph inputs), that the ranges are the true
 * extremes, that N threads and shards give exactly one run's result, and how
 * it stops (interruption, the lowest failing sample); and the sample pass
 * under it (every sample once on any number of threads, repeats, the lowest
 * failing sample named, a folder of input files as one sample).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/calibrate.h"
#include "calib/driver.h"
#include "calib/histogram.h"
#include "check_main.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "tmp_tree.h"
#include "util/fileio.h"

/*
 * Made with onnx 1.12 (opset 13):
 *   inputs x float [N,4], flag bool []; initializers W [4,3], B [3]
 *   mm = MatMul(x, W); y = Add(mm, B); r = Relu(y); c = Constant([2, -1, 0.5]); m = Mul(r, c)
 *   out = If(flag, then: one = Constant([1]); t_out = Add(m, one)
 *                  else: e_neg = Neg(m); e_out = Mul(e_neg, m))
 *   shp = Shape(x)
 *   W = [[1, -2, 0.5], [0.25, 1, -1], [-0.5, 0.75, 2], [1.5, -0.25, 0.125]], B = [0.1, -0.2, 0.3]
 */
static const unsigned char model_bytes[595] = {
    0x08, 0x07, 0x3a, 0xc8, 0x04, 0x0a, 0x16, 0x0a, 0x01, 0x78, 0x0a, 0x01,
    0x57, 0x12, 0x02, 0x6d, 0x6d, 0x1a, 0x02, 0x6d, 0x6d, 0x22, 0x06, 0x4d,
    0x61, 0x74, 0x4d, 0x75, 0x6c, 0x0a, 0x14, 0x0a, 0x02, 0x6d, 0x6d, 0x0a,
    0x01, 0x42, 0x12, 0x01, 0x79, 0x1a, 0x03, 0x61, 0x64, 0x64, 0x22, 0x03,
    0x41, 0x64, 0x64, 0x0a, 0x12, 0x0a, 0x01, 0x79, 0x12, 0x01, 0x72, 0x1a,
    0x04, 0x72, 0x65, 0x6c, 0x75, 0x22, 0x04, 0x52, 0x65, 0x6c, 0x75, 0x0a,
    0x39, 0x12, 0x01, 0x63, 0x1a, 0x05, 0x63, 0x6f, 0x6e, 0x73, 0x74, 0x22,
    0x08, 0x43, 0x6f, 0x6e, 0x73, 0x74, 0x61, 0x6e, 0x74, 0x2a, 0x23, 0x0a,
    0x05, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x2a, 0x17, 0x08, 0x03, 0x10, 0x01,
    0x42, 0x03, 0x63, 0x5f, 0x76, 0x4a, 0x0c, 0x00, 0x00, 0x00, 0x40, 0x00,
    0x00, 0x80, 0xbf, 0x00, 0x00, 0x00, 0x3f, 0xa0, 0x01, 0x04, 0x0a, 0x13,
    0x0a, 0x01, 0x72, 0x0a, 0x01, 0x63, 0x12, 0x01, 0x6d, 0x1a, 0x03, 0x6d,
    0x75, 0x6c, 0x22, 0x03, 0x4d, 0x75, 0x6c, 0x0a, 0xea, 0x01, 0x0a, 0x04,
    0x66, 0x6c, 0x61, 0x67, 0x12, 0x03, 0x6f, 0x75, 0x74, 0x1a, 0x02, 0x69,
    0x66, 0x22, 0x02, 0x49, 0x66, 0x2a, 0x5b, 0x0a, 0x0b, 0x65, 0x6c, 0x73,
    0x65, 0x5f, 0x62, 0x72, 0x61, 0x6e, 0x63, 0x68, 0x32, 0x49, 0x0a, 0x0f,
    0x0a, 0x01, 0x6d, 0x12, 0x05, 0x65, 0x5f, 0x6e, 0x65, 0x67, 0x22, 0x03,
    0x4e, 0x65, 0x67, 0x0a, 0x16, 0x0a, 0x05, 0x65, 0x5f, 0x6e, 0x65, 0x67,
    0x0a, 0x01, 0x6d, 0x12, 0x05, 0x65, 0x5f, 0x6f, 0x75, 0x74, 0x22, 0x03,
    0x4d, 0x75, 0x6c, 0x12, 0x04, 0x65, 0x6c, 0x73, 0x65, 0x62, 0x18, 0x0a,
    0x05, 0x65, 0x5f, 0x6f, 0x75, 0x74, 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x01,
    0x12, 0x09, 0x0a, 0x03, 0x12, 0x01, 0x4e, 0x0a, 0x02, 0x08, 0x03, 0xa0,
    0x01, 0x05, 0x2a, 0x78, 0x0a, 0x0b, 0x74, 0x68, 0x65, 0x6e, 0x5f, 0x62,
    0x72, 0x61, 0x6e, 0x63, 0x68, 0x32, 0x66, 0x0a, 0x2e, 0x12, 0x03, 0x6f,
    0x6e, 0x65, 0x22, 0x08, 0x43, 0x6f, 0x6e, 0x73, 0x74, 0x61, 0x6e, 0x74,
    0x2a, 0x1d, 0x0a, 0x05, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x2a, 0x11, 0x08,
    0x01, 0x10, 0x01, 0x42, 0x05, 0x6f, 0x6e, 0x65, 0x5f, 0x76, 0x4a, 0x04,
    0x00, 0x00, 0x80, 0x3f, 0xa0, 0x01, 0x04, 0x0a, 0x14, 0x0a, 0x01, 0x6d,
    0x0a, 0x03, 0x6f, 0x6e, 0x65, 0x12, 0x05, 0x74, 0x5f, 0x6f, 0x75, 0x74,
    0x22, 0x03, 0x41, 0x64, 0x64, 0x12, 0x04, 0x74, 0x68, 0x65, 0x6e, 0x62,
    0x18, 0x0a, 0x05, 0x74, 0x5f, 0x6f, 0x75, 0x74, 0x12, 0x0f, 0x0a, 0x0d,
    0x08, 0x01, 0x12, 0x09, 0x0a, 0x03, 0x12, 0x01, 0x4e, 0x0a, 0x02, 0x08,
    0x03, 0xa0, 0x01, 0x05, 0x0a, 0x16, 0x0a, 0x01, 0x78, 0x12, 0x03, 0x73,
    0x68, 0x70, 0x1a, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x05, 0x53,
    0x68, 0x61, 0x70, 0x65, 0x12, 0x0a, 0x63, 0x61, 0x6c, 0x69, 0x62, 0x5f,
    0x74, 0x65, 0x73, 0x74, 0x2a, 0x3b, 0x08, 0x04, 0x08, 0x03, 0x10, 0x01,
    0x42, 0x01, 0x57, 0x4a, 0x30, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00,
    0xc0, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x80,
    0x3f, 0x00, 0x00, 0x80, 0xbf, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x40,
    0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80,
    0xbe, 0x00, 0x00, 0x00, 0x3e, 0x2a, 0x15, 0x08, 0x03, 0x10, 0x01, 0x42,
    0x01, 0x42, 0x4a, 0x0c, 0xcd, 0xcc, 0xcc, 0x3d, 0xcd, 0xcc, 0x4c, 0xbe,
    0x9a, 0x99, 0x99, 0x3e, 0x5a, 0x14, 0x0a, 0x01, 0x78, 0x12, 0x0f, 0x0a,
    0x0d, 0x08, 0x01, 0x12, 0x09, 0x0a, 0x03, 0x12, 0x01, 0x4e, 0x0a, 0x02,
    0x08, 0x04, 0x5a, 0x0e, 0x0a, 0x04, 0x66, 0x6c, 0x61, 0x67, 0x12, 0x06,
    0x0a, 0x04, 0x08, 0x09, 0x12, 0x00, 0x62, 0x16, 0x0a, 0x03, 0x6f, 0x75,
    0x74, 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x01, 0x12, 0x09, 0x0a, 0x03, 0x12,
    0x01, 0x4e, 0x0a, 0x02, 0x08, 0x03, 0x62, 0x11, 0x0a, 0x03, 0x73, 0x68,
    0x70, 0x12, 0x0a, 0x0a, 0x08, 0x08, 0x07, 0x12, 0x04, 0x0a, 0x02, 0x08,
    0x02, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x0d,
};

static const float W[4][3] = {
    {1, -2, 0.5f}, {0.25f, 1, -1}, {-0.5f, 0.75f, 2}, {1.5f, -0.25f, 0.125f}};
static const float B[3] = {0.1f, -0.2f, 0.3f};
static const float C[3] = {2, -1, 0.5f};

enum { SAMPLES = 24, ROWS = 2 };

static struct mq_error err;
static struct mq_model *model;
static struct mq_plan *plan;
static char root[64];

static float x_value(int s, int i) { return 3.0f * sinf((float)(s * 8 + i) * 0.7f); }
static int flag_value(int s) { return s % 3 != 0; }

static void setup(void)
{
    ck_assert_int_eq(mq_model_load_buffer(model_bytes, sizeof model_bytes, NULL, "calib.onnx",
                                          &model, &err), 0);
    ck_assert_msg(mq_plan_build(model, &plan, &err) == 0, "%s", err.message);
    strcpy(root, "/tmp/mq-drv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
    mq_plan_free(plan);
    mq_model_free(model);
    tt_remove(root);
}

/* mq_tensor_write_pb syncs each file to disk; tests write many and need no durability. */
static void write_pb(const char *path, const struct mq_tensor *t, const char *name)
{
    Onnx__TensorProto *p;
    ck_assert_int_eq(mq_tensor_to_proto(t, name, &p, &err), 0);
    size_t size = onnx__tensor_proto__get_packed_size(p);
    uint8_t *buf = malloc(size);
    onnx__tensor_proto__pack(p, buf);
    onnx__tensor_proto__free_unpacked(p, NULL);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, size, f), size);
    fclose(f);
    free(buf);
}

static void write_sample(const char *dir, int s, int rows)
{
    char path[256];
    snprintf(path, sizeof path, "%s/test_data_set_%d", dir, s);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    struct mq_tensor x, flag;
    int64_t dims[2] = {rows, 4};
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 2, dims, "x", &err), 0);
    for (int i = 0; i < rows * 4; i++)
        ((float *)x.data)[i] = x_value(s, i % (ROWS * 4));
    ck_assert_int_eq(mq_tensor_alloc(&flag, MQ_DTYPE_BOOL, 0, NULL, "flag", &err), 0);
    ((uint8_t *)flag.data)[0] = (uint8_t)flag_value(s);
    snprintf(path, sizeof path, "%s/test_data_set_%d/input_0.pb", dir, s);
    write_pb(path, &x, "x");
    snprintf(path, sizeof path, "%s/test_data_set_%d/input_1.pb", dir, s);
    write_pb(path, &flag, "flag");
    mq_tensor_free(&x);
    mq_tensor_free(&flag);
}

/* Samples [first, last) into root/name. */
static const char *write_samples(const char *name, int first, int last)
{
    static char dirs[4][160];
    static int k;
    char *dir = dirs[k++ % 4];
    snprintf(dir, 160, "%s/%s", root, name);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (int s = first; s < last; s++)
        write_sample(dir, s, ROWS);
    return dir;
}

/* Every float tensor of the test model that is not a constant, the If's branches included: what
   calibration is asked to observe here (which tensors the quantizer asks for is quant's matter). */
static void collect(struct mq_name_list *names)
{
    static const char *const observed[] = {"c",  "e_neg", "e_out", "m", "mm",
                                           "one", "r",    "t_out", "x", "y"};
    memset(names, 0, sizeof *names);
    for (size_t i = 0; i < sizeof observed / sizeof *observed; i++)
        ck_assert_int_eq(mq_name_list_add(names, observed[i], &err), 0);
    mq_name_list_finish(names);
}

static struct mq_calib_source *open_source(const char *dir, int64_t limit)
{
    int n = mq_plan_input_count(plan);
    const Onnx__ValueInfoProto *inputs[4];
    for (int i = 0; i < n; i++)
        inputs[i] = mq_plan_input(plan, i);
    struct mq_calib_source *src;
    ck_assert_msg(mq_calib_source_open(dir, inputs, n, limit, &src, &err) == 0, "%s",
                  err.message);
    return src;
}

static void calibrate(const char *dir, enum mq_calib_method method, int jobs,
                      struct mq_ranges *out)
{
    struct mq_name_list names;
    collect(&names);
    struct mq_calib_source *src = open_source(dir, 0);
    struct mq_calib_options o;
    mq_calib_options_init(&o);
    o.method = method;
    o.jobs = jobs;
    ck_assert_msg(mq_calibrate(plan, src, &names, &o, out, &err) == 0, "%s", err.message);
    mq_calib_source_free(src);
    mq_name_list_free(&names);
}

static void assert_identical(const struct mq_ranges *a, const struct mq_ranges *b)
{
    ck_assert_int_eq(a->n, b->n);
    ck_assert_uint_eq(a->samples, b->samples);
    for (int i = 0; i < a->n; i++) {
        const struct mq_tensor_range *x = &a->items[i], *y = &b->items[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_msg(memcmp(&x->min, &y->min, 4) == 0 && memcmp(&x->max, &y->max, 4) == 0 &&
                      memcmp(&x->observed_min, &y->observed_min, 4) == 0 &&
                      memcmp(&x->observed_max, &y->observed_max, 4) == 0,
                      "tensor %s differs", x->name);
        ck_assert(x->count == y->count && x->produced == y->produced &&
                  x->nonfinite == y->nonfinite);
        ck_assert((x->histogram == NULL) == (y->histogram == NULL));
        if (x->histogram)
            ck_assert(x->histogram->exponent == y->histogram->exponent &&
                      memcmp(x->histogram->counts, y->histogram->counts,
                             sizeof x->histogram->counts) == 0);
    }
}

/* The true extremes, computed here in double and compared with a float tolerance. */
struct extremes {
    double lo, hi;
    int64_t count;
};

static void widen(struct extremes *e, double v)
{
    if (e->count == 0 || v < e->lo)
        e->lo = v;
    if (e->count == 0 || v > e->hi)
        e->hi = v;
    e->count++;
}

START_TEST(ranges_are_the_true_extremes)
{
    const char *dir = write_samples("all", 0, SAMPLES);
    uint64_t in_use = mq_memory_in_use(); /* the plan's constants */
    struct mq_ranges r;
    calibrate(dir, MQ_CALIB_MINMAX, 1, &r);
    ck_assert_uint_eq(r.samples, SAMPLES);
    ck_assert_str_eq(r.method, "minmax");
    struct extremes ex[6] = {{0}}; /* x, mm, y, r, m, t_out */
    struct extremes neg = {0}, eout = {0};
    int taken = 0;
    for (int s = 0; s < SAMPLES; s++) {
        taken += flag_value(s);
        for (int row = 0; row < ROWS; row++) {
            for (int j = 0; j < 4; j++)
                widen(&ex[0], x_value(s, row * 4 + j));
            for (int k = 0; k < 3; k++) {
                double mm = 0;
                for (int j = 0; j < 4; j++)
                    mm += (double)x_value(s, row * 4 + j) * W[j][k];
                double y = mm + B[k], rl = y > 0 ? y : 0, m = rl * C[k];
                widen(&ex[1], mm);
                widen(&ex[2], y);
                widen(&ex[3], rl);
                widen(&ex[4], m);
                if (flag_value(s)) {
                    widen(&ex[5], m + 1);
                } else {
                    widen(&neg, -m);
                    widen(&eout, -m * m);
                }
            }
        }
    }
    const char *names[6] = {"x", "mm", "y", "r", "m", "t_out"};
    for (int k = 0; k < 6; k++) {
        const struct mq_tensor_range *t = mq_ranges_find(&r, names[k]);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(fabs(t->min - ex[k].lo) < 1e-5 && fabs(t->max - ex[k].hi) < 1e-5,
                      "%s: [%g, %g] expected [%g, %g]", names[k], t->min, t->max, ex[k].lo,
                      ex[k].hi);
        ck_assert_uint_eq(t->count, (uint64_t)ex[k].count);
        ck_assert(t->observed_min == t->min && t->observed_max == t->max);
    }
    const struct mq_tensor_range *t = mq_ranges_find(&r, "t_out");
    ck_assert_uint_eq(t->produced, (uint64_t)taken);
    t = mq_ranges_find(&r, "e_out");
    ck_assert_uint_eq(t->produced, (uint64_t)(SAMPLES - taken));
    ck_assert(fabs(t->min - eout.lo) < 1e-5 && fabs(t->max - eout.hi) < 1e-5);
    t = mq_ranges_find(&r, "e_neg");
    ck_assert(fabs(t->min - neg.lo) < 1e-5 && fabs(t->max - neg.hi) < 1e-5);
    /* Folded constants are observed once per sample, as if produced. */
    t = mq_ranges_find(&r, "c");
    ck_assert_ptr_nonnull(t);
    ck_assert(t->min == -1.0f && t->max == 2.0f);
    ck_assert_uint_eq(t->produced, SAMPLES);
    ck_assert_uint_eq(t->count, 3 * SAMPLES);
    ck_assert_ptr_nonnull(mq_ranges_find(&r, "one"));
    ck_assert_ptr_null(mq_ranges_find(&r, "W"));
    mq_ranges_free(&r);
    ck_assert_uint_eq(mq_memory_in_use(), in_use); /* every sample's tensors freed */
}
END_TEST

START_TEST(any_number_of_threads_gives_one_result)
{
    const char *dir = write_samples("all", 0, SAMPLES);
    const enum mq_calib_method methods[4] = {MQ_CALIB_MINMAX, MQ_CALIB_PERCENTILE,
                                             MQ_CALIB_ENTROPY, MQ_CALIB_MSE};
    for (int m = 0; m < 4; m++) {
        struct mq_ranges one, many;
        calibrate(dir, methods[m], 1, &one);
        for (int jobs = 2; jobs <= 8; jobs += 3) {
            calibrate(dir, methods[m], jobs, &many);
            assert_identical(&one, &many);
            mq_ranges_free(&many);
        }
        for (int i = 0; i < one.n; i++) {
            const struct mq_tensor_range *t = &one.items[i];
            ck_assert(t->min >= t->observed_min && t->max <= t->observed_max);
            ck_assert((t->histogram != NULL) == (m != 0));
        }
        mq_ranges_free(&one);
    }
}
END_TEST

static char *slurp(const char *path)
{
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(mq_file_read(path, 1 << 26, &data, &size, &err), 0);
    char *s = realloc(data, size + 1);
    s[size] = '\0';
    return s;
}

START_TEST(shards_merge_bit_identically)
{
    const char *all = write_samples("all", 0, SAMPLES);
    const char *a = write_samples("a", 0, 7);
    const char *b = write_samples("b", 7, SAMPLES);
    char one_path[200], a_path[200], b_path[200], merged_path[200];
    snprintf(one_path, sizeof one_path, "%s/one.json", root);
    snprintf(a_path, sizeof a_path, "%s/a.json", root);
    snprintf(b_path, sizeof b_path, "%s/b.json", root);
    snprintf(merged_path, sizeof merged_path, "%s/merged.json", root);
    struct mq_ranges one, ra, rb, merged;
    calibrate(all, MQ_CALIB_ENTROPY, 3, &one);
    calibrate(a, MQ_CALIB_ENTROPY, 2, &ra);
    calibrate(b, MQ_CALIB_ENTROPY, 1, &rb);
    ck_assert_int_eq(mq_ranges_save(&one, one_path, &err), 0);
    ck_assert_int_eq(mq_ranges_save(&ra, a_path, &err), 0);
    ck_assert_int_eq(mq_ranges_save(&rb, b_path, &err), 0);
    const char *paths[2] = {b_path, a_path};
    ck_assert_int_eq(mq_ranges_load_all(paths, 2, &merged, &err), 0);
    assert_identical(&one, &merged);
    ck_assert_int_eq(mq_ranges_save(&merged, merged_path, &err), 0);
    char *x = slurp(one_path), *y = slurp(merged_path);
    ck_assert_str_eq(x, y);
    free(x);
    free(y);
    mq_ranges_free(&one);
    mq_ranges_free(&ra);
    mq_ranges_free(&rb);
    mq_ranges_free(&merged);
}
END_TEST

static void record_progress(void *user, const struct mq_calib_progress *p)
{
    struct mq_calib_progress *last = user;
    ck_assert(p->done >= last->done && p->done <= p->total);
    *last = *p;
}

START_TEST(reports_progress_and_stops_when_asked)
{
    const char *dir = write_samples("all", 0, SAMPLES);
    struct mq_name_list names;
    collect(&names);
    struct mq_calib_source *src = open_source(dir, 10);
    struct mq_calib_options o;
    mq_calib_options_init(&o);
    struct mq_calib_progress last = {0};
    o.progress = record_progress;
    o.progress_user = &last;
    o.jobs = 2;
    struct mq_ranges r;
    ck_assert_int_eq(mq_calibrate(plan, src, &names, &o, &r, &err), 0);
    ck_assert_int_eq(last.done, 10);
    ck_assert_int_eq(last.total, 10);
    ck_assert_uint_eq(r.samples, 10);
    mq_ranges_free(&r);
    volatile sig_atomic_t stop = 1;
    o.cancel = &stop;
    last.done = 0;
    ck_assert_int_eq(mq_calibrate(plan, src, &names, &o, &r, &err), MQ_ERR_INTERRUPTED);
    ck_assert(strstr(err.message, "interrupted after 0 of 10") != NULL);
    o.cancel = NULL;
    o.method = MQ_CALIB_PERCENTILE;
    o.percentile = 120;
    ck_assert_int_eq(mq_calibrate(plan, src, &names, &o, &r, &err), MQ_ERR_USAGE);
    mq_calib_source_free(src);
    mq_name_list_free(&names);
}
END_TEST

/* Each sample's outputs as the hook saw them: a checksum of every output's values. */
struct seen_outputs {
    pthread_mutex_t lock;
    int calls[SAMPLES];
    double sum[SAMPLES];
};

static double checksum(const struct mq_tensor *t, int n)
{
    double sum = 0.0;
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < t[k].count; i++)
            sum += (i + 1.0) * (k + 1.0) * mq_tensor_get_double(&t[k], i);
    return sum;
}

static int record_outputs(void *user, int64_t sample, const struct mq_tensor *outputs,
                          int n_outputs, struct mq_error *e)
{
    (void)e;
    struct seen_outputs *seen = user;
    ck_assert(sample >= 0 && sample < SAMPLES);
    ck_assert_int_eq(n_outputs, mq_plan_output_count(plan));
    double sum = checksum(outputs, n_outputs);
    pthread_mutex_lock(&seen->lock);
    seen->calls[sample]++;
    seen->sum[sample] = sum;
    pthread_mutex_unlock(&seen->lock);
    return MQ_OK;
}

/* The float model's outputs reach the caller once per sample, as a plain run computes them. */
START_TEST(hands_every_samples_outputs_to_the_caller)
{
    const char *dir = write_samples("all", 0, SAMPLES);
    struct mq_name_list names;
    collect(&names);
    struct mq_calib_source *src = open_source(dir, 0);
    int n_in = mq_plan_input_count(plan), n_out = mq_plan_output_count(plan);
    ck_assert(n_out > 0 && n_out <= 8 && n_in <= 4);
    for (int jobs = 1; jobs <= 3; jobs += 2) {
        struct seen_outputs seen;
        memset(&seen, 0, sizeof seen);
        pthread_mutex_init(&seen.lock, NULL);
        struct mq_calib_options o;
        mq_calib_options_init(&o);
        o.jobs = jobs;
        o.outputs = record_outputs;
        o.outputs_user = &seen;
        struct mq_ranges r;
        ck_assert_msg(mq_calibrate(plan, src, &names, &o, &r, &err) == 0, "%s", err.message);
        mq_ranges_free(&r);
        pthread_mutex_destroy(&seen.lock);
        for (int s = 0; s < SAMPLES; s++) {
            ck_assert_int_eq(seen.calls[s], 1);
            struct mq_tensor in[4], out[8];
            memset(in, 0, sizeof in);
            memset(out, 0, sizeof out);
            ck_assert_int_eq(mq_calib_source_load(src, s, in, &err), 0);
            ck_assert_msg(mq_plan_run(plan, in, n_in, out, n_out, NULL, &err) == 0, "%s",
                          err.message);
            ck_assert_msg(checksum(out, n_out) == seen.sum[s], "sample %d", s);
            for (int k = 0; k < n_in; k++)
                mq_tensor_free(&in[k]);
            for (int k = 0; k < n_out; k++)
                mq_tensor_free(&out[k]);
        }
    }
    mq_calib_source_free(src);
    mq_name_list_free(&names);
}
END_TEST

/* The extra work: every sample's tensors seen on its thread, sample_done in sample order. */
struct extra_state {
    int n_threads;
    int64_t next_done;       /* the sample sample_done must see next */
    int64_t seen[SAMPLES];   /* tensors observed per sample */
    int in_order;
};

static int extra_begin(void *user, int n_threads, void **workers, struct mq_error *e)
{
    (void)e;
    struct extra_state *st = user;
    st->n_threads = n_threads;
    for (int t = 0; t < n_threads; t++)
        workers[t] = st;
    return MQ_OK;
}

static int extra_observe(void *worker, int64_t sample, const char *name,
                         const struct mq_tensor *value, struct mq_error *e)
{
    (void)name, (void)e;
    struct extra_state *st = worker;
    ck_assert(sample >= 0 && sample < SAMPLES && mq_dtype_is_float(value->dtype));
    __atomic_fetch_add(&st->seen[sample], 1, __ATOMIC_RELAXED);
    return MQ_OK;
}

static int extra_done(void *worker, int64_t sample, struct mq_error *e)
{
    (void)e;
    struct extra_state *st = worker;
    st->in_order &= sample == st->next_done;
    st->next_done++;
    return MQ_OK;
}

START_TEST(runs_extra_work_on_every_sample_in_order)
{
    const char *dir = write_samples("all", 0, SAMPLES);
    struct mq_name_list names;
    collect(&names);
    struct mq_calib_source *src = open_source(dir, 0);
    int64_t first_run[SAMPLES];
    for (int jobs = 1; jobs <= 3; jobs += 2) {
        struct extra_state st;
        memset(&st, 0, sizeof st);
        st.in_order = 1;
        struct mq_calib_extra extra = {extra_begin, extra_observe, extra_done, &st, NULL};
        const struct mq_calib_extra *extras[1] = {&extra};
        struct mq_calib_options o;
        mq_calib_options_init(&o);
        o.jobs = jobs;
        o.extra = extras;
        o.n_extra = 1;
        struct mq_ranges r;
        ck_assert_msg(mq_calibrate(plan, src, &names, &o, &r, &err) == 0, "%s", err.message);
        mq_ranges_free(&r);
        ck_assert_int_eq(st.n_threads, jobs);
        ck_assert_int_eq(st.next_done, SAMPLES);
        ck_assert(st.in_order);
        /* each sample's tensors (an If takes one branch or the other), whatever the threads */
        for (int s = 0; s < SAMPLES; s++) {
            ck_assert_int_gt(st.seen[s], 0);
            if (jobs == 1)
                first_run[s] = st.seen[s];
            ck_assert_int_eq(st.seen[s], first_run[s]);
        }
    }
    mq_calib_source_free(src);
    mq_name_list_free(&names);
}
END_TEST

START_TEST(reports_the_lowest_failing_sample)
{
    char dir[200];
    snprintf(dir, sizeof dir, "%s/big", root);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (int s = 0; s < 16; s++)
        write_sample(dir, s, s == 5 || s == 11 ? 40000 : ROWS); /* 640 KB where others are 32 B */
    struct mq_name_list names;
    collect(&names);
    struct mq_calib_source *src = open_source(dir, 0);
    /* Samples 5 and 11 now pass the memory cap: whatever the threads, sample 5 is reported. */
    uint64_t cap = mq_memory_limit();
    mq_memory_set_limit(200000);
    for (int jobs = 1; jobs <= 4; jobs++) {
        for (int rep = 0; rep < 3; rep++) {
            struct mq_calib_options o;
            mq_calib_options_init(&o);
            o.jobs = jobs;
            struct mq_ranges r;
            ck_assert_int_ne(mq_calibrate(plan, src, &names, &o, &r, &err), 0);
            ck_assert_msg(strstr(err.message, "calibration sample 5 (") != NULL &&
                          strstr(err.message, "test_data_set_5") != NULL, "%s", err.message);
        }
    }
    mq_memory_set_limit(cap);
    mq_calib_source_free(src);
    mq_name_list_free(&names);
}
END_TEST

/* ---- the sample pass itself (calib/driver.h) ------------------------------------------ */

struct tally {
    int inputs_seen[32], done_seen[32];
    int runs;
    int produced;
    int fail_at[2];              /* samples whose done callback fails; -1 none */
};

static int tally_inputs(void *worker, int64_t i, const struct mq_tensor *inputs, int n_inputs,
                        struct mq_error *e)
{
    (void)e;
    struct tally *t = worker;
    ck_assert_int_eq(n_inputs, mq_plan_input_count(plan));
    ck_assert_int_eq(inputs[0].dtype, MQ_DTYPE_FLOAT);
    ck_assert_float_eq(((const float *)inputs[0].data)[1], x_value((int)i, 1));
    t->inputs_seen[i]++;
    return MQ_OK;
}

static int tally_produced(void *worker, const struct mq_kernel_node *producer, const char *name,
                          const struct mq_tensor *value, struct mq_error *e)
{
    (void)producer, (void)name, (void)value, (void)e;
    ((struct tally *)worker)->produced++;
    return MQ_OK;
}

static int tally_done(void *worker, int64_t i, struct mq_tensor *outputs, int n_outputs,
                      struct mq_error *e)
{
    struct tally *t = worker;
    ck_assert_int_eq(n_outputs, mq_plan_output_count(plan));
    ck_assert_ptr_nonnull(outputs[0].data);
    t->done_seen[i]++;
    if (i == t->fail_at[0] || i == t->fail_at[1])
        return mq_error_set(e, "refused by the test");
    return MQ_OK;
}

static void tally_time(void *worker, double ms)
{
    ck_assert(ms >= 0.0);
    ((struct tally *)worker)->runs++;
}

START_TEST(sample_pass_runs_every_sample_once_on_any_number_of_threads)
{
    const char *dir = write_samples("pass", 0, 12);
    struct mq_calib_source *src = open_source(dir, 0);
    for (int jobs = 1; jobs <= 5; jobs += 2) {
        struct tally tallies[8];
        void *workers[8];
        memset(tallies, 0, sizeof tallies);
        for (int t = 0; t < 8; t++) {
            tallies[t].fail_at[0] = tallies[t].fail_at[1] = -1;
            workers[t] = &tallies[t];
        }
        struct mq_sample_pass pass = {
            .plan = plan, .source = src, .jobs = jobs, .workers = workers,
            .inputs = tally_inputs, .observe = tally_produced, .done = tally_done,
            .repeat = 3, .timed = tally_time,
        };
        ck_assert_int_eq(mq_sample_pass_jobs(&pass), jobs);
        int64_t done = -1;
        ck_assert_msg(mq_sample_pass_run(&pass, &done, &err) == 0, "%s", err.message);
        ck_assert_int_eq(done, 12);
        int runs = 0, produced = 0;
        for (int i = 0; i < 12; i++) {
            int in = 0, out = 0;
            for (int t = 0; t < jobs; t++) {
                in += tallies[t].inputs_seen[i];
                out += tallies[t].done_seen[i];
            }
            ck_assert_int_eq(in, 1);
            ck_assert_int_eq(out, 1);
        }
        for (int t = 0; t < jobs; t++) {
            runs += tallies[t].runs;
            produced += tallies[t].produced;
        }
        ck_assert_int_eq(runs, 36); /* repeat 3: every run timed */
        ck_assert_int_gt(produced, 36);
    }
    /* More jobs than samples: one thread per sample. */
    struct mq_sample_pass many = {.plan = plan, .source = src, .jobs = 1000};
    ck_assert_int_eq(mq_sample_pass_jobs(&many), 12);
    mq_calib_source_free(src);
}
END_TEST

START_TEST(sample_pass_reports_the_lowest_failing_sample)
{
    const char *dir = write_samples("fail", 0, 16);
    struct mq_calib_source *src = open_source(dir, 0);
    for (int jobs = 1; jobs <= 4; jobs++) {
        struct tally tallies[4];
        void *workers[4];
        memset(tallies, 0, sizeof tallies);
        for (int t = 0; t < 4; t++) {
            tallies[t].fail_at[0] = 9;
            tallies[t].fail_at[1] = 4;
            workers[t] = &tallies[t];
        }
        struct mq_sample_pass pass = {
            .plan = plan, .source = src, .jobs = jobs, .workers = workers, .done = tally_done,
            .label = "test sample",
        };
        int64_t done;
        ck_assert_int_eq(mq_sample_pass_run(&pass, &done, &err), MQ_ERR);
        ck_assert_msg(strstr(err.message, "test sample 4 (") == err.message &&
                      strstr(err.message, "test_data_set_4): refused by the test") != NULL,
                      "%s", err.message);
        ck_assert_int_lt(done, 16);
        /* Every sample before the failure ran. */
        for (int i = 0; i < 4; i++) {
            int out = 0;
            for (int t = 0; t < jobs; t++)
                out += tallies[t].done_seen[i];
            ck_assert_int_eq(out, 1);
        }
        /* Without a label the message starts with the sample's path. */
        pass.label = NULL;
        ck_assert_int_eq(mq_sample_pass_run(&pass, &done, &err), MQ_ERR);
        ck_assert_msg(strncmp(err.message, dir, strlen(dir)) == 0 &&
                      strstr(err.message, "/test_data_set_4: refused") != NULL, "%s",
                      err.message);
    }
    mq_calib_source_free(src);
}
END_TEST

START_TEST(a_folder_of_input_files_is_one_sample)
{
    const char *dir = write_samples("one", 0, 1);
    char sample[200];
    snprintf(sample, sizeof sample, "%s/test_data_set_0", dir);
    struct mq_calib_source *src = open_source(sample, 0);
    ck_assert_int_eq(mq_calib_source_count(src), 1);
    ck_assert_int_eq(mq_calib_source_layout(src), MQ_CALIB_LAYOUT_PB_FOLDERS);
    ck_assert_str_eq(mq_calib_source_sample_name(src, 0), sample);
    struct mq_tensor inputs[2];
    ck_assert_msg(mq_calib_source_load(src, 0, inputs, &err) == 0, "%s", err.message);
    ck_assert_float_eq(((const float *)inputs[0].data)[2], x_value(0, 2));
    mq_tensor_free(&inputs[0]);
    mq_tensor_free(&inputs[1]);
    mq_calib_source_free(src);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib_driver");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ranges_are_the_true_extremes);
    tcase_add_test(tc, any_number_of_threads_gives_one_result);
    tcase_add_test(tc, shards_merge_bit_identically);
    tcase_add_test(tc, reports_progress_and_stops_when_asked);
    tcase_add_test(tc, reports_the_lowest_failing_sample);
    tcase_add_test(tc, hands_every_samples_outputs_to_the_caller);
    tcase_add_test(tc, runs_extra_work_on_every_sample_in_order);
    tcase_add_test(tc, sample_pass_runs_every_sample_once_on_any_number_of_threads);
    tcase_add_test(tc, sample_pass_reports_the_lowest_failing_sample);
    tcase_add_test(tc, a_folder_of_input_files_is_one_sample);
    return mq_check_run(s, tc);
}
