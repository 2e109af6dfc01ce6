/*
 * Calibration over every real model in ../shared/models with its calib/ set
 * (skipped with a message where the corpus is absent): every sample runs,
 * every tensor to observe that the samples reach gets a finite range, and
 * two threads give exactly what one gives.
 *
 * MQ_CALIB_MODELS_LIMIT=N calibrates only the first N samples of each model
 * (the default runs them all).
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "calib/calibrate.h"
#include "calib/histogram.h"
#include "check_main.h"
#include "interp/plan.h"
#include "model/model.h"
#include "observe_names.h"

static struct mq_error err;

/* ../shared/models seen from the project root; tests run in the build folder, so go by
   this file's own path (meson gives it relative to the build folder, or absolute). */
static void models_dir(char out[1024])
{
    const size_t size = 1024;
    const char *env = getenv("MQ_SHARED_MODELS");
    if (env) {
        snprintf(out, size, "%s", env);
        return;
    }
    char here[512];
    snprintf(here, sizeof here, "%s", __FILE__);
    char *slash = strrchr(here, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(here, sizeof here, ".");
    snprintf(out, size, "%s/../../../shared/models", here);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void same_result(const struct mq_ranges *a, const struct mq_ranges *b)
{
    ck_assert_int_eq(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const struct mq_tensor_range *x = &a->items[i], *y = &b->items[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert(memcmp(&x->min, &y->min, 4) == 0 && memcmp(&x->max, &y->max, 4) == 0);
        ck_assert(x->count == y->count && x->produced == y->produced);
        if (x->histogram)
            ck_assert(x->histogram->exponent == y->histogram->exponent &&
                      memcmp(x->histogram->counts, y->histogram->counts,
                             sizeof x->histogram->counts) == 0);
    }
}

static void calibrate_model(const char *dir, int64_t limit)
{
    char path[1500];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    struct mq_model *model;
    struct mq_plan *plan;
    ck_assert_msg(mq_model_load(path, &model, &err) == 0, "%s", err.message);
    ck_assert_msg(mq_plan_build(model, &plan, &err) == 0, "%s", err.message);
    struct mq_name_list names = {0};
    observed_names(model->proto, &names);
    ck_assert_int_gt(names.n, 0);
    int n = mq_plan_input_count(plan);
    const Onnx__ValueInfoProto **inputs = calloc((size_t)n + 1, sizeof *inputs);
    for (int i = 0; i < n; i++)
        inputs[i] = mq_plan_input(plan, i);
    snprintf(path, sizeof path, "%s/calib", dir);
    struct mq_calib_source *src;
    ck_assert_msg(mq_calib_source_open(path, inputs, n, limit, &src, &err) == 0, "%s",
                  err.message);
    free(inputs);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct mq_calib_options o;
    mq_calib_options_init(&o);
    o.method = MQ_CALIB_ENTROPY;
    o.jobs = 1;
    struct mq_ranges one, two;
    struct mq_name_list integers = {0};
    o.not_float = &integers;
    ck_assert_msg(mq_calibrate(plan, src, &names, &o, &one, &err) == 0, "%s: %s", dir,
                  err.message);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o.jobs = 2;
    o.not_float = NULL;
    ck_assert_msg(mq_calibrate(plan, src, &names, &o, &two, &err) == 0, "%s", err.message);
    same_result(&one, &two);
    ck_assert_uint_eq(one.samples, (uint64_t)mq_calib_source_count(src));
    int reached = 0, empty = 0;
    for (int i = 0; i < one.n; i++) {
        const struct mq_tensor_range *t = &one.items[i];
        ck_assert_msg(t->nonfinite == 0, "%s: tensor '%s' has %llu finite and %llu other "
                      "values", dir, t->name, (unsigned long long)t->count,
                      (unsigned long long)t->nonfinite);
        if (t->count == 0) {
            /* Empty in every sample (paddleocr_det's 0-element constants): no range at all,
               recorded as produced with nothing seen. */
            ck_assert_msg(t->produced > 0 && t->min == 0 && t->max == 0 && t->observed_min == 0 &&
                              t->observed_max == 0, "%s: empty tensor '%s' got a range", dir,
                          t->name);
            empty++;
            continue;
        }
        ck_assert(isfinite(t->min) && isfinite(t->max) && t->min <= t->max);
        ck_assert(t->observed_min <= t->min && t->max <= t->observed_max);
        reached++;
    }
    /* What is not observed: integer tensors (shape arithmetic), or what an untaken branch
       holds (silero_vad's If). */
    for (int i = 0; i < names.n; i++)
        if (!mq_ranges_find(&one, names.names[i]))
            ck_assert_msg(mq_name_list_contains(&integers, names.names[i]) ||
                          strstr(dir, "silero") != NULL, "%s: '%s' never observed", dir,
                          names.names[i]);
    mq_name_list_free(&integers);
    fprintf(stderr, "  %s: %lld samples, %d of %d tensors observed (%d empty), %.2f s\n", dir,
            (long long)one.samples, reached, names.n, empty,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    mq_ranges_free(&one);
    mq_ranges_free(&two);
    mq_calib_source_free(src);
    mq_name_list_free(&names);
    mq_plan_free(plan);
    mq_model_free(model);
}

START_TEST(every_model_calibrates)
{
    char root[1024];
    models_dir(root);
    DIR *d = opendir(root);
    ck_assert_msg(d != NULL, "%s vanished", root);
    char *found[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        char calib[1400];
        struct stat st;
        snprintf(calib, sizeof calib, "%s/%s/calib", root, e->d_name);
        if (e->d_name[0] != '.' && stat(calib, &st) == 0 && S_ISDIR(st.st_mode))
            found[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(found, (size_t)n, sizeof *found, compare_names);
    ck_assert_int_gt(n, 0);
    const char *env = getenv("MQ_CALIB_MODELS_LIMIT");
    int64_t limit = env ? atoll(env) : 0;
    for (int i = 0; i < n; i++) {
        char dir[1400];
        snprintf(dir, sizeof dir, "%s/%s", root, found[i]);
        calibrate_model(dir, limit);
        free(found[i]);
    }
}
END_TEST

int main(void)
{
    /* Without the corpus there is nothing to test: skip (77), never a pass. */
    char root[1024];
    models_dir(root);
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "calib_models: %s not found, skipping the real-model corpus\n", root);
        return 77;
    }
    Suite *s = suite_create("calib_models");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, every_model_calibrates);
    return mq_check_run(s, tc);
}
