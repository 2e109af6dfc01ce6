/*
 * `onnx-monoquant calibrate IN.onnx --calib DIR --save-ranges FILE.json`: run
 * the calibration samples through the interpreter and save the observed
 * ranges (and histograms) for `quantize --load-ranges`, or merge shards.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calib/calibrate.h"
#include "cli/sample_args.h"
#include "cli/cli.h"
#include "interp/plan.h"
#include "model/model.h"
#include "quant/prepare.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "util/fileio.h"
#include "util/text.h"

int mq_cli_calibrate(int argc, char **argv);

static const char calibrate_help[] =
    "Usage: onnx-monoquant calibrate IN.onnx --calib DIR --save-ranges FILE.json [options]\n"
    "       onnx-monoquant calibrate IN.onnx --load-ranges A.json --load-ranges B.json\n"
    "                                --save-ranges ALL.json\n"
    "\n"
    "Runs calibration samples through the reference interpreter and saves, for each\n"
    "tensor that may be quantized, its observed range and observer state\n"
    "(docs/ranges-format.md). Shards calibrated separately merge into exactly the\n"
    "result of one run over all their samples.\n"
    "\n"
    "  --calib DIR           samples: test_data_set_N/input_K.pb folders, folders of\n"
    "                        <input>.npy, .npz archives (numpy.savez), or one\n"
    "                        <input>.npy per input stacked along the first axis\n"
    "  --calibrate M         minmax (default), percentile, entropy or mse\n"
    "  --percentile P        for percentile: keep P percent (default 99.999)\n"
    "  --symmetric           choose ranges for a symmetric (int8) quantizer\n"
    "  --calib-limit N       use the first N samples (natural order)\n"
    "  --jobs N              threads (default: the number of cores); the result is\n"
    "                        the same for any N\n"
    "  --load-ranges FILE    merge a saved ranges file (repeatable); with --calib,\n"
    "                        the new samples are merged with it\n"
    "  --save-ranges FILE    where to write the ranges (JSON)\n"
    "  --op-types A,B,...    observe the tensors quantize would quantize for the nodes\n"
    "                        of these op types (default: those quantize selects); with\n"
    "  --exclude-op-types, --include-nodes, --exclude-nodes  as for quantize, so that\n"
    "                        calibrate observes exactly the nodes quantize will rewrite\n"
    "  --shard K/N           samples K, K+N, K+2N, ... only (after --calib-limit): N\n"
    "                        workers' ranges files merge into one run's result\n"
    "  --split-hardswish     observe the graph quantize --split-hardswish quantizes\n"
    "  --hardswish-codes     observe the graph quantize --hardswish-codes quantizes\n"
    "  --quiet               no progress line or summary\n";

static volatile sig_atomic_t interrupted;

/* First SIGINT/SIGTERM: stop after the samples in flight.  Second: leave at once. */
static void on_interrupt(int sig)
{
    if (interrupted) {
        mq_atomic_cleanup_all();
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = 1;
}

/*
 * The tensors to observe: quantize's own answer for this selection
 * (mq_qdq_tensors_to_observe), so calibrate and quantize agree by construction.
 */
static int tensors_to_observe(const Onnx__ModelProto *proto, const struct mq_selection *sel,
                              struct mq_name_list *out, struct mq_error *err)
{
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    char **names = NULL;
    int n = 0;
    int rc = mq_qdq_tensors_to_observe(proto, sel, &o, &names, &n, err);
    for (int i = 0; rc == MQ_OK && i < n; i++)
        rc = mq_name_list_add(out, names[i], err);
    mq_name_list_finish(out);
    mq_string_list_free(names, n);
    return rc;
}

/* The selection options quantize takes, in the order of the lists they fill. */
static const char *const selection_options[4] = {"--op-types", "--exclude-op-types",
                                                 "--include-nodes", "--exclude-nodes"};

/* 1 + the index of the selection option argv[*i] is (its value in *value), -1 when its
   value is missing, 0 when it is another argument. */
static int selection_option(int argc, char **argv, int *i, const char **value)
{
    for (int k = 0; k < 4; k++) {
        int m = mq_cli_option(argc, argv, i, selection_options[k] + 2, value);
        if (m)
            return m < 0 ? -1 : k + 1;
    }
    return 0;
}

struct progress_state {
    int enabled;
    int shown;
};

static void show_progress(void *user, const struct mq_calib_progress *p)
{
    struct progress_state *s = user;
    if (!s->enabled)
        return;
    double rate = p->elapsed_s > 0 ? (double)p->done / p->elapsed_s : 0;
    char left[32] = "";
    if (rate > 0 && p->done < p->total)
        snprintf(left, sizeof left, ", %.0f s left", (double)(p->total - p->done) / rate);
    fprintf(stderr, "\rcalibrating: %lld/%lld samples, %.1f samples/s%s\033[K",
            (long long)p->done, (long long)p->total, rate, left);
    fflush(stderr);
    s->shown = 1;
}

static void report_ranges(const struct mq_ranges *r, const struct mq_name_list *names,
                          const struct mq_name_list *not_float, int quiet)
{
    int nonfinite = 0;
    for (int i = 0; i < r->n; i++) {
        const struct mq_tensor_range *t = &r->items[i];
        if (!t->nonfinite && t->count)
            continue;
        if (++nonfinite > 10)
            continue;
        if (t->count == 0)
            mq_text_printf(stderr,
                           "onnx-monoquant: warning: tensor '%s' held no finite value (%llu "
                           "NaN, %llu infinite): it has no range\n", t->name,
                           (unsigned long long)t->nan, (unsigned long long)(t->nonfinite - t->nan));
        else
            mq_text_printf(stderr,
                           "onnx-monoquant: warning: tensor '%s': %llu NaN and %llu infinite "
                           "values excluded from its range\n", t->name, (unsigned long long)t->nan,
                           (unsigned long long)(t->nonfinite - t->nan));
    }
    if (nonfinite > 10)
        mq_text_printf(stderr,
                       "onnx-monoquant: warning: %d more tensors held NaN or infinite values "
                       "(see the saved file)\n", nonfinite - 10);
    if (quiet || !names)
        return;
    /* Integer tensors (shape arithmetic) are not news; float ones never produced are. */
#define UNREACHED(name) (!mq_ranges_find(r, name) && !mq_name_list_contains(not_float, name))
    int unreached = 0;
    for (int i = 0; i < names->n; i++)
        unreached += UNREACHED(names->names[i]);
    if (!unreached)
        return;
    mq_text_printf(stderr, "onnx-monoquant: note: %d of %d tensors to observe were never produced "
                   "(branches not taken, loops that did not run):", unreached, names->n);
    int shown = 0;
    for (int i = 0; i < names->n && shown < 8; i++)
        if (UNREACHED(names->names[i]))
            mq_text_printf(stderr, "%s '%s'", shown++ ? "," : "", names->names[i]);
#undef UNREACHED
    mq_text_printf(stderr, "%s\n", unreached > shown ? ", ..." : "");
}

int mq_cli_calibrate(int argc, char **argv)
{
    const char *in = NULL, *calib = NULL, *save = NULL, *method_name = NULL;
    struct mq_pattern_list op_types = {0}, exclude_op_types = {0}, include_nodes = {0},
                           exclude_nodes = {0};
    struct mq_pattern_list *lists[4] = {&op_types, &exclude_op_types, &include_nodes,
                                        &exclude_nodes};
    struct mq_error err = {{0}};
    const char **loads = calloc((size_t)argc + 1, sizeof *loads);
    int n_loads = 0, quiet = 0, symmetric_given = 0;
    struct mq_calib_options options;
    mq_calib_options_init(&options);
    long long limit = 0, shard_index = 0, shard_count = 0;
    int split_hardswish = 0, hardswish_codes = 0;
    struct mq_preprocess preprocess;
    mq_preprocess_init(&preprocess);
    if (!loads) {
        fprintf(stderr, "onnx-monoquant: out of memory\n");
        return MQ_EXIT_FAILURE;
    }
    int usage = 0;
    for (int i = 1; i < argc && !usage; i++) {
        const char *value = NULL;
        int m;
        if (mq_cli_flag(argv, i, "help")) {
            fputs(calibrate_help, stdout);
            fputs(mq_cli_preprocess_help, stdout);
            for (int k = 0; k < 4; k++)
                mq_pattern_list_free(lists[k]);
            free(loads);
            return MQ_EXIT_OK;
        } else if ((m = mq_cli_preprocess_option(argc, argv, &i, &preprocess, "calibrate"))) {
            if (m < 0)
                usage = MQ_EXIT_USAGE;
        } else if ((m = mq_cli_option(argc, argv, &i, "shard", &value))) {
            if (m < 0 || mq_cli_parse_shard(value, &shard_index, &shard_count))
                usage = mq_cli_usage_error("calibrate", "--shard takes K/N with 0 <= K < N");
        } else if (mq_cli_flag(argv, i, "quiet")) {
            quiet = 1;
        } else if (mq_cli_flag(argv, i, "split-hardswish")) {
            split_hardswish = 1;
        } else if (mq_cli_flag(argv, i, "hardswish-codes")) {
            hardswish_codes = 1;
        } else if (mq_cli_flag(argv, i, "symmetric")) {
            options.symmetric = 1;
            symmetric_given = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "calib", &value))) {
            if (m < 0)
                usage = mq_cli_usage_error("calibrate", "--calib needs a folder");
            calib = value;
        } else if ((m = mq_cli_option(argc, argv, &i, "calibrate", &value))) {
            if (m < 0 || mq_calib_method_parse(value, &options.method))
                usage = mq_cli_usage_error("calibrate", "--calibrate takes minmax, percentile, "
                                           "entropy or mse");
            method_name = value;
        } else if ((m = mq_cli_option(argc, argv, &i, "percentile", &value))) {
            char *end = NULL;
            options.percentile = m < 0 ? 0 : strtod(value, &end);
            if (m < 0 || end == value || *end || !(options.percentile > 0) ||
                options.percentile > 100)
                usage = mq_cli_usage_error("calibrate", "--percentile takes a number in "
                                           "(0, 100]");
        } else if ((m = mq_cli_option(argc, argv, &i, "calib-limit", &value))) {
            if (m < 0 || (limit = mq_cli_parse_count(value)) < 1)
                usage = mq_cli_usage_error("calibrate", "--calib-limit takes a count from 1");
        } else if ((m = mq_cli_option(argc, argv, &i, "jobs", &value))) {
            long long jobs = m < 0 ? -1 : mq_cli_parse_count(value);
            if (jobs < 1 || jobs > 1024)
                usage = mq_cli_usage_error("calibrate", "--jobs takes a count from 1 to 1024");
            options.jobs = (int)jobs;
        } else if ((m = mq_cli_option(argc, argv, &i, "save-ranges", &value))) {
            if (m < 0)
                usage = mq_cli_usage_error("calibrate", "--save-ranges needs a file");
            save = value;
        } else if ((m = mq_cli_option(argc, argv, &i, "load-ranges", &value))) {
            if (m < 0)
                usage = mq_cli_usage_error("calibrate", "--load-ranges needs a file");
            loads[n_loads++] = value;
        } else if ((m = selection_option(argc, argv, &i, &value)) != 0) {
            if (m < 0)
                usage = mq_cli_usage_error("calibrate", "%s needs a list", argv[i]);
            else if (mq_pattern_list_add(lists[m - 1], value, selection_options[m - 1], &err))
                usage = mq_cli_usage_error("calibrate", "%s", err.message);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage = mq_cli_usage_error("calibrate", "unknown option '%s'", argv[i]);
        } else if (!in) {
            in = argv[i];
        } else {
            usage = mq_cli_usage_error("calibrate", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!usage && !in)
        usage = mq_cli_usage_error("calibrate", "needs IN.onnx");
    if (!usage && !calib && !n_loads)
        usage = mq_cli_usage_error("calibrate", "needs --calib DIR or --load-ranges FILE");
    if (!usage && !save)
        usage = mq_cli_usage_error("calibrate", "needs --save-ranges FILE.json");
    if (usage) {
        for (int k = 0; k < 4; k++)
            mq_pattern_list_free(lists[k]);
        free(loads);
        return MQ_EXIT_USAGE;
    }

    struct mq_model *model = NULL;
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    struct mq_name_list names = {0}, not_float = {0};
    struct mq_ranges result = {0};
    struct mq_selection selection = {0};
    struct mq_select_options select = {&op_types, &exclude_op_types, &include_nodes,
                                       &exclude_nodes, 0};
    struct progress_state progress = {!quiet && isatty(STDERR_FILENO), 0};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = mq_path_check_distinct(in, save, &err);
    if (rc == MQ_OK)
        rc = mq_model_load(in, &model, &err);
    /* Loaded ranges first: they say how the graph they describe was equalized. */
    struct mq_ranges loaded = {0};
    int have_loaded = 0;
    if (rc == MQ_OK && n_loads) {
        rc = mq_ranges_load_all(loads, n_loads, &loaded, &err);
        have_loaded = rc == MQ_OK;
    }
    /*
     * The graph quantize calibrates and quantizes (quant/prepare.h), so that saved ranges name
     * and describe the tensors quantize observes; --split-hardswish and --hardswish-codes as
     * quantize's.
     */
    struct mq_quant_prepare_result prep = {0};
    if (rc == MQ_OK) {
        struct mq_calib_open_options open = {limit, 0, 0, &preprocess};
        /* quantize's channel pads (default scheme): their outputs are tensors it observes */
        struct mq_quant_prepare_options po = {have_loaded ? &loaded : NULL, calib, &open,
                                              split_hardswish, 0, NULL, 1, 0, hardswish_codes,
                                              0, 0};
        po.jobs = options.jobs;
        /* as quantize: measured in the calibration pass (a shard's maxima on all the samples
           still: each must equalize as all the samples say) */
        po.fold_equalization = !mq_calib_method_uses_histogram(options.method);
        po.fold_measure_all = shard_count > 0;
        rc = mq_quant_prepare_graph(model, &po, &prep, &err);
    }
    if (rc == MQ_OK)
        rc = mq_select_nodes(model->proto, &select, &selection, &err);
    if (rc == MQ_OK)
        rc = tensors_to_observe(model->proto, &selection, &names, &err);
    if (rc == MQ_OK && calib) {
        rc = mq_plan_build(model, &plan, &err);
        if (rc == MQ_OK)
        {
            struct mq_calib_open_options open = {limit, shard_index, shard_count, &preprocess};
            rc = mq_calib_source_open_for_plan_with(calib, plan, &open, &source, &err);
        }
    }
    if (rc == MQ_OK && calib) {
        struct sigaction sa, old_int, old_term;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        options.cancel = &interrupted;
        options.not_float = &not_float;
        options.progress = show_progress;
        options.progress_user = &progress;
        const struct mq_calib_extra *extras[1] = {mq_quant_prepare_calib_extra(&prep)};
        options.extra = extras;
        options.n_extra = extras[0] ? 1 : 0;
        rc = mq_calibrate(plan, source, &names, &options, &result, &err);
        if (rc == MQ_OK)
            rc = mq_quant_prepare_finish(model, &prep, &result, &err);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        if (progress.shown)
            fputs("\r\033[K", stderr);
    }
    if (rc == MQ_OK && have_loaded) {
        if (!calib) {
            result = loaded;
            memset(&loaded, 0, sizeof loaded); /* moved */
            if (!method_name)
                options.method = result.method_id;
            if (!method_name && options.method == MQ_CALIB_PERCENTILE)
                options.percentile = result.percentile;
            if (!symmetric_given)
                options.symmetric = result.symmetric;
        } else {
            rc = mq_ranges_merge(&result, &loaded, &err);
        }
        if (rc == MQ_OK)
            rc = mq_ranges_finalize(&result, options.method, options.percentile,
                                    options.symmetric, options.jobs > 0 ? options.jobs
                                                                        : mq_calib_default_jobs(),
                                    &err);
    } else if (rc == MQ_OK) {
        /* What equalized the graph goes with its ranges (loaded files carry theirs already). */
        rc = mq_ranges_merge_channel_maxima(&result, &prep.channel_maxima, &err);
    }
    if (rc == MQ_OK)
        rc = mq_ranges_save(&result, save, &err);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (rc == MQ_OK) {
        report_ranges(&result, calib ? &names : NULL, &not_float, quiet);
        double seconds = (double)(end.tv_sec - start.tv_sec) +
                         (double)(end.tv_nsec - start.tv_nsec) * 1e-9;
        if (!quiet)
        {
            char note[600];
            mq_cli_ignored_note(source, note, sizeof note);
            mq_text_printf(stderr, "%s %llu samples (%s%s%s) in %.2f s: %d tensors, saved to "
                           "%s\n", calib ? "calibrated" : "merged ranges of",
                           (unsigned long long)result.samples, result.method,
                           n_loads && calib ? ", with the loaded ranges" : "", note, seconds,
                           result.n, save);
        }
    }
    mq_ranges_free(&result);
    mq_ranges_free(&loaded);
    mq_quant_prepare_result_free(&prep);
    mq_name_list_free(&names);
    mq_name_list_free(&not_float);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    mq_model_free(model);
    mq_selection_free(&selection);
    for (int k = 0; k < 4; k++)
        mq_pattern_list_free(lists[k]);
    free(loads);
    return mq_cli_report(rc, &err);
}
