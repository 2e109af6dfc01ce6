/*
 * `onnx-monoquant IN.onnx OUT.onnx --fp16 [options]`: float16 conversion.
 * Called by the quantize command's dispatcher with its argv unchanged.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"
#include "calib/reader.h"
#include "cli/sample_args.h"
#include "cli/cli.h"
#include "graph/canonical.h"
#include "cli/commands_tools.h"
#include "interp/plan.h"
#include "model/model.h"
#include "quant/fp16.h"
#include "quant/graph.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/text.h"

static const char fp16_help[] =
    "Usage: onnx-monoquant IN.onnx OUT.onnx --fp16 [options]\n"
    "\n"
    "Converts a float32 model to float16, without calibration: initializers,\n"
    "Constant values and the values between converted nodes become float16; graph\n"
    "inputs and outputs stay float32 through Cast nodes. Nodes the target cannot run\n"
    "in float16, nodes reading values beyond float16's range (|x| > 65504), and\n"
    "excluded nodes stay float32 behind Casts. Data-movement ops (Reshape, Concat,\n"
    "MaxPool, Relu, ...) follow their inputs' precision. Subgraphs are converted too.\n"
    "\n"
    "  --fp16-ops SET           ort-cpu (default): float16 only where onnxruntime's CPU\n"
    "                           provider has float16 kernels (elsewhere weights are\n"
    "                           stored float16 and cast up); all: every op float16 can\n"
    "                           express (for GPU runtimes)\n"
    "  --keep-io-types=false    graph inputs and outputs become float16 too\n"
    "  --calib DIR              also run the float32 model on these samples and keep\n"
    "                           float32 the nodes whose values exceed float16's range\n"
    "  --calib-limit N          use the first N samples\n"
    "\n"
    "Selection (a name or pattern that matches nothing is an error):\n"
    "  --op-types A,B,...       convert only these op types\n"
    "  --exclude-op-types A,... keep these op types float32\n"
    "  --include-nodes N,...    convert only these nodes (names or glob patterns;\n"
    "                           @FILE reads one per line)\n"
    "  --exclude-nodes N,...    keep these nodes float32 (a node holding subgraphs\n"
    "                           keeps everything inside float32 too)\n"
    "\n"
    "Output:\n"
    "  --report FILE.json       every node with its decision and reason\n"
    "  --external-data          store large initializers in OUT.data next to OUT\n"
    "  --quiet                  no summary\n";

static const char *const int8_only[] = {
    "load-ranges", "save-ranges", "calibrate", "percentile", "jobs", "profile",
    "activation-type", "weight-type", "per-tensor", "symmetric-activations", "reduce-range",
};

struct fp16_args {
    const char *in, *out, *report, *calib;
    long long limit;
    struct mq_preprocess preprocess; /* for --calib folders of images or WAV files */
    int quiet;
    struct mq_fp16_options options;
    struct mq_pattern_list lists[4];
    struct mq_save_options save;
};

static void args_free(struct fp16_args *a)
{
    for (int k = 0; k < 4; k++)
        mq_pattern_list_free(&a->lists[k]);
}

static int usage(const char *fmt, const char *detail)
{
    fprintf(stderr, "onnx-monoquant: ");
    mq_text_printf(stderr, fmt, detail);
    fprintf(stderr, "\nTry 'onnx-monoquant IN OUT --fp16 --help'.\n");
    return MQ_EXIT_USAGE;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, struct fp16_args *a)
{
    static const char *const list_options[4] = {"op-types", "exclude-op-types", "include-nodes",
                                                "exclude-nodes"};
    mq_fp16_options_default(&a->options);
    mq_preprocess_init(&a->preprocess);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m, matched = 0;
        if (mq_cli_flag(argv, i, "help")) {
            fputs(fp16_help, stdout);
            fputs(mq_cli_preprocess_help, stdout);
            return MQ_EXIT_OK;
        } else if ((m = mq_cli_preprocess_option(argc, argv, &i, &a->preprocess, "--fp16"))) {
            if (m < 0)
                return MQ_EXIT_USAGE;
        } else if (mq_cli_flag(argv, i, "fp16")) {
            continue;
        } else if (mq_cli_flag(argv, i, "quiet")) {
            a->quiet = 1;
        } else if (mq_cli_flag(argv, i, "external-data")) {
            a->save.external_data = 1;
        } else if (mq_cli_flag(argv, i, "keep-io-types")) {
            a->options.keep_io_types = 1;
        } else if (strncmp(argv[i], "--keep-io-types=", 16) == 0) {
            if (parse_bool(argv[i] + 16, &a->options.keep_io_types))
                return usage("%s takes true or false", "--keep-io-types");
        } else if ((m = mq_cli_option(argc, argv, &i, "fp16-ops", &v))) {
            if (m < 0 || (strcmp(v, "ort-cpu") != 0 && strcmp(v, "all") != 0))
                return usage("%s takes ort-cpu or all", "--fp16-ops");
            a->options.ops = strcmp(v, "all") == 0 ? MQ_FP16_OPS_ALL : MQ_FP16_OPS_ORT_CPU;
        } else if ((m = mq_cli_option(argc, argv, &i, "calib", &v))) {
            if (m < 0)
                return usage("%s needs a folder", "--calib");
            a->calib = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "calib-limit", &v))) {
            if (m < 0 || (a->limit = mq_cli_parse_count(v)) < 1)
                return usage("%s takes a count from 1", "--calib-limit");
        } else if ((m = mq_cli_option(argc, argv, &i, "report", &v))) {
            if (m < 0)
                return usage("%s needs a file", "--report");
            a->report = v;
        } else {
            for (int k = 0; k < 4 && !matched; k++) {
                if (!(m = mq_cli_option(argc, argv, &i, list_options[k], &v)))
                    continue;
                matched = 1;
                if (m < 0)
                    return usage("--%s needs a list", list_options[k]);
                struct mq_error err = {{0}};
                char option[32];
                snprintf(option, sizeof option, "--%s", list_options[k]);
                int rc = mq_pattern_list_add(&a->lists[k], v, option, &err);
                if (rc) {
                    mq_cli_print_error(&err);
                    return rc == MQ_ERR_MEMORY ? MQ_EXIT_FAILURE : MQ_EXIT_USAGE;
                }
            }
            if (matched)
                continue;
            for (size_t k = 0; k < sizeof int8_only / sizeof int8_only[0]; k++) {
                size_t n = strlen(int8_only[k]);
                if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, int8_only[k], n) == 0 &&
                    (argv[i][2 + n] == '\0' || argv[i][2 + n] == '='))
                    return usage("%s is an integer quantization option; it does not apply to "
                                 "--fp16", argv[i]);
            }
            if (argv[i][0] == '-' && argv[i][1])
                return usage("unknown option '%s'", argv[i]);
            if (!a->in)
                a->in = argv[i];
            else if (!a->out)
                a->out = argv[i];
            else
                return usage("unexpected argument '%s'", argv[i]);
        }
    }
    if (!a->in || !a->out)
        return usage("%s", "--fp16 needs IN.onnx and OUT.onnx");
    if (a->limit && !a->calib)
        return usage("%s", "--calib-limit goes with --calib");
    if (a->report && (strcmp(a->report, a->out) == 0 || strcmp(a->report, a->in) == 0))
        return usage("%s", "--report must name a file other than IN and OUT");
    a->options.op_types = &a->lists[0];
    a->options.exclude_op_types = &a->lists[1];
    a->options.include_nodes = &a->lists[2];
    a->options.exclude_nodes = &a->lists[3];
    return -1;
}

/* ------------------------------------------- activation ranges on samples */

struct range_table {
    struct mq_strmap *by_name;
    char **names;
    double *max;
    int n, cap;
};

/* Raises name's largest |value| to m (adding the name when new). */
static int range_note(struct range_table *t, const char *name, double m, struct mq_error *err)
{
    int k = mq_strmap_get(t->by_name, name);
    if (k < 0) {
        if (t->n == t->cap) {
            int cap = t->cap ? t->cap * 2 : 64;
            char **names = realloc(t->names, (size_t)cap * sizeof *names);
            if (names)
                t->names = names;
            double *max = realloc(t->max, (size_t)cap * sizeof *max);
            if (max)
                t->max = max;
            if (!names || !max)
                return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            t->cap = cap;
        }
        if (!(t->names[t->n] = strdup(name)) || mq_strmap_put(t->by_name, name, t->n))
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        t->max[t->n] = 0;
        k = t->n++;
    }
    if (m > t->max[k])
        t->max[k] = m;
    return MQ_OK;
}

static int observe_range(void *user, const struct mq_kernel_node *producer, const char *name,
                         const struct mq_tensor *value, struct mq_error *err)
{
    (void)producer;
    if (value->dtype != MQ_DTYPE_FLOAT)
        return MQ_OK;
    const float *v = value->data;
    float m = 0;
    for (int64_t i = 0; i < value->count; i++) {
        float a = fabsf(v[i]);
        if (a > m && a != INFINITY)
            m = a;
    }
    return range_note(user, name, m, err);
}

static void range_table_free(struct range_table *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    free(t->max);
    mq_strmap_free(t->by_name);
    memset(t, 0, sizeof *t);
}

/* Runs the float32 model on the samples; keeps the tensors beyond float16's range. */
static int find_large_activations(const struct fp16_args *a, const struct mq_model *model,
                                  struct range_table *large, struct mq_error *err)
{
    struct range_table all = {0};
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    memset(large, 0, sizeof *large);
    int rc = mq_plan_build(model, &plan, err);
    all.by_name = mq_strmap_new();
    large->by_name = mq_strmap_new();
    if (rc == MQ_OK && (!all.by_name || !large->by_name))
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (rc == MQ_OK)
        rc = mq_calib_source_open_for_plan_with(
            a->calib, plan, &(struct mq_calib_open_options){a->limit, 0, 0, &a->preprocess},
            &source, err);
    void *workers[1] = {&all};
    struct mq_sample_pass pass = {
        .plan = plan, .source = source, .jobs = 1, .workers = workers, .observe = observe_range,
    };
    int64_t done;
    if (rc == MQ_OK)
        rc = mq_sample_pass_run(&pass, &done, err);
    for (int i = 0; rc == MQ_OK && i < all.n; i++)
        if (all.max[i] > MQ_FP16_MAX)
            rc = range_note(large, all.names[i], all.max[i], err);
    range_table_free(&all);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    if (rc)
        range_table_free(large);
    return rc;
}

/* ---------------------------------------------------------------- output */

static void print_summary(FILE *f, const struct fp16_args *a, const struct mq_fp16_result *r)
{
    int converted = 0, follow16 = 0, follow32 = 0, kept = 0;
    for (int i = 0; i < r->n_nodes; i++) {
        const struct mq_fp16_node *n = &r->nodes[i];
        if (n->status == MQ_FP16_CONVERTED)
            converted++;
        else if (n->status == MQ_FP16_FOLLOWED)
            *(n->in_float16 ? &follow16 : &follow32) += 1;
        else
            kept++;
    }
    mq_text_printf(f, "float16 (%s ops, io types %s): %d nodes converted, %d follow their inputs "
                   "(%d in float16), %d kept float32\n",
                   a->options.ops == MQ_FP16_OPS_ALL ? "all" : "ort-cpu",
                   a->options.keep_io_types ? "kept float32" : "float16", converted,
                   follow16 + follow32, follow16, kept);
    mq_text_printf(f,
                   "  initializers: %d converted, %d kept float32; %d Constant values converted; "
                   "%d Casts inserted\n", r->initializers_converted, r->initializers_kept,
                   r->constants_converted, r->casts_inserted);
    mq_text_printf(f, "  float weights: %.1f KiB -> %.1f KiB\n",
                   (double)r->weight_bytes_before / 1024,
                   (double)r->weight_bytes_after / 1024);
    if (r->values_flushed_to_zero)
        mq_text_printf(f,
                       "  %lld nonzero weights are below float16's smallest value and became 0\n",
                       (long long)r->values_flushed_to_zero);
    for (int i = 0; i < r->n_ranges; i++)
        mq_text_printf(f, "  beyond float16's range, kept float32: %s '%s'%s%s (max |x| %g)\n",
                       r->ranges[i].what, r->ranges[i].name, *r->ranges[i].graph ? " in " : "",
                       r->ranges[i].graph, r->ranges[i].max_abs);
    /* Kept nodes grouped by op type and reason: one line each. */
    int shown = 0;
    for (int i = 0; i < r->n_nodes; i++) {
        const struct mq_fp16_node *n = &r->nodes[i];
        if (n->status != MQ_FP16_KEPT)
            continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = r->nodes[j].status == MQ_FP16_KEPT &&
                   strcmp(r->nodes[j].op_type, n->op_type) == 0 &&
                   strcmp(mq_str(r->nodes[j].reason), mq_str(n->reason)) == 0;
        if (seen)
            continue;
        int count = 0;
        for (int j = i; j < r->n_nodes; j++)
            count += r->nodes[j].status == MQ_FP16_KEPT &&
                     strcmp(r->nodes[j].op_type, n->op_type) == 0 &&
                     strcmp(mq_str(r->nodes[j].reason), mq_str(n->reason)) == 0;
        if (shown++ == 0)
            mq_text_printf(f, "  kept float32:\n");
        if (count == 1)
            mq_text_printf(f, "    %-20s '%s': %s\n", n->op_type, n->name, mq_str(n->reason));
        else
            mq_text_printf(f, "    %-20s %d nodes: %s\n", n->op_type, count, mq_str(n->reason));
    }
}

static int write_report(FILE *f, const struct fp16_args *a, const struct mq_fp16_result *r)
{
    struct mq_json j;
    mq_json_init(&j, f, 1);
    mq_json_object_begin(&j);
    mq_json_key(&j, "input");
    mq_json_string(&j, a->in);
    mq_json_key(&j, "output");
    mq_json_string(&j, a->out);
    mq_json_key(&j, "conversion");
    mq_json_string(&j, "float16");
    mq_json_key(&j, "fp16_ops");
    mq_json_string(&j, a->options.ops == MQ_FP16_OPS_ALL ? "all" : "ort-cpu");
    mq_json_key_bool(&j, "keep_io_types", a->options.keep_io_types);
    mq_json_key_int(&j, "initializers_converted", r->initializers_converted);
    mq_json_key_int(&j, "initializers_kept", r->initializers_kept);
    mq_json_key_int(&j, "constants_converted", r->constants_converted);
    mq_json_key_int(&j, "casts_inserted", r->casts_inserted);
    mq_json_key_int(&j, "values_flushed_to_zero", r->values_flushed_to_zero);
    mq_json_key_uint(&j, "weight_bytes_before", r->weight_bytes_before);
    mq_json_key_uint(&j, "weight_bytes_after", r->weight_bytes_after);
    mq_json_key(&j, "out_of_range");
    mq_json_array_begin(&j);
    for (int i = 0; i < r->n_ranges; i++) {
        mq_json_object_begin(&j);
        mq_json_key(&j, "name");
        mq_json_string(&j, r->ranges[i].name);
        mq_json_key(&j, "graph");
        mq_json_string(&j, r->ranges[i].graph);
        mq_json_key(&j, "kind");
        mq_json_string(&j, r->ranges[i].what);
        mq_json_key_double(&j, "max_abs", r->ranges[i].max_abs);
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    mq_json_key(&j, "nodes");
    mq_json_array_begin(&j);
    for (int i = 0; i < r->n_nodes; i++) {
        const struct mq_fp16_node *n = &r->nodes[i];
        mq_json_object_begin(&j);
        mq_json_key(&j, "name");
        mq_json_string(&j, n->name);
        mq_json_key(&j, "op_type");
        mq_json_string(&j, n->op_type);
        mq_json_key(&j, "graph");
        mq_json_string(&j, n->graph);
        mq_json_key(&j, "status");
        mq_json_string(&j, n->status == MQ_FP16_CONVERTED ? "converted"
                           : n->status == MQ_FP16_FOLLOWED ? "follows" : "kept");
        mq_json_key_bool(&j, "float16", n->status == MQ_FP16_CONVERTED || n->in_float16);
        if (n->reason) {
            mq_json_key(&j, "reason");
            mq_json_string(&j, n->reason);
        }
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    mq_json_object_end(&j);
    fputc('\n', f);
    return j.failed ? -1 : 0;
}

int mq_cli_fp16(int argc, char **argv)
{
    struct fp16_args a;
    memset(&a, 0, sizeof a);
    int status = parse(argc, argv, &a);
    if (status >= 0) {
        args_free(&a);
        return status;
    }
    struct mq_error err = {{0}};
    struct mq_model *model = NULL;
    struct mq_fp16_result r;
    struct range_table large = {0};
    memset(&r, 0, sizeof r);
    int have_result = 0;
    int rc = mq_path_check_distinct(a.in, a.out, &err);
    if (rc == MQ_OK)
        rc = mq_model_load(a.in, &model, &err);
    if (rc == MQ_OK)
        rc = mq_graph_canonicalize(model->proto, NULL, NULL, &err);
    if (rc == MQ_OK && a.calib)
        rc = find_large_activations(&a, model, &large, &err);
    if (rc == MQ_OK) {
        a.options.out_of_range = large.names;
        a.options.out_of_range_max = large.max;
        a.options.n_out_of_range = large.n;
        rc = mq_fp16_convert(model->proto, &a.options, &r, &err);
        have_result = rc == MQ_OK;
        if (rc)
            mq_error_prefix(&err, "%s: ", a.in);
    }
    struct mq_atomic_file report = {0};
    int report_open = 0;
    if (rc == MQ_OK && a.report) {
        rc = mq_atomic_open(&report, a.report, &err);
        report_open = rc == MQ_OK;
        if (rc == MQ_OK && write_report(report.fp, &a, &r))
            rc = mq_error_set(&err, "writing '%s' failed", a.report);
    }
    if (rc == MQ_OK)
        rc = mq_model_save(model->proto, a.out, &a.save, &err);
    if (report_open) {
        if (rc == MQ_OK)
            rc = mq_atomic_commit(&report, &err);
        else
            mq_atomic_abort(&report);
    }
    if (rc == MQ_OK && !a.quiet)
        print_summary(stderr, &a, &r);
    if (have_result)
        mq_fp16_result_free(&r);
    range_table_free(&large);
    mq_model_free(model);
    args_free(&a);
    return mq_cli_report(rc, &err);
}
