/* `onnx-monoquant compare A.onnx B.onnx --inputs DIR [--json FILE] [--per-layer] [--top N]` */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/sample_args.h"
#include "graph/canonical.h"
#include "cli/commands_tools.h"
#include "model/model.h"
#include "calib/ranges.h"
#include "report/divergence.h"
#include "report/html.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/text.h"

static const char compare_help[] =
    "Usage: onnx-monoquant compare A.onnx B.onnx --inputs DIR [options]\n"
    "\n"
    "Runs both models in the reference interpreter on the same samples and reports,\n"
    "per graph output, how far B is from A (A is the reference, usually the FP32\n"
    "model): SQNR in dB (signal over error power, pooled over all samples; the\n"
    "worst single sample too), cosine similarity, max abs error, and top-1\n"
    "agreement for outputs shaped like class scores [N, C].\n"
    "\n"
    "DIR holds samples as --calib takes them (test_data_set_N/input_K.pb folders,\n"
    "<input>.npy folders, .npz archives or stacked .npy files). Both models must\n"
    "have the same graph outputs; float16 inputs are fed converted.\n"
    "\n"
    "  --per-layer    also match intermediate tensors by name (seeing through\n"
    "                 QuantizeLinear/DequantizeLinear renames) and list the nodes\n"
    "                 that add the most error: candidates for --exclude-nodes\n"
    "  --top N        how many nodes --per-layer lists (default 10; all in JSON)\n"
    "  --limit N      use only the first N samples\n"
    "  --jobs N       threads (default: the CPU count; the figures do not depend on N)\n"
    "  --html FILE    write a self-contained page: per-output figures and the\n"
    "                 error along the network (implies the per-layer comparison)\n"
    "  --json FILE    write every figure as JSON (\"-\" for stdout); SQNR of an\n"
    "                 exact match is null there\n";

struct compare_args {
    const char *a, *b, *inputs, *json, *html;
    int per_layer;
    long long top, limit, jobs;
    struct mq_preprocess preprocess;
};

static void format_db(char *buf, size_t size, double db)
{
    if (isinf(db))
        snprintf(buf, size, "%s", db > 0 ? "inf" : "-inf");
    else
        snprintf(buf, size, "%.2f", db);
}

static void print_text(FILE *f, const struct compare_args *a, const struct mq_divergence_result *r)
{
    mq_text_printf(f, "A: %s\nB: %s\nsamples: %lld\n\n", a->a, a->b, (long long)r->samples);
    mq_text_printf(f, "%-28s %9s %10s %10s %12s  %s\n", "output", "sqnr_db", "worst_db", "cosine",
                   "max_abs_err", "top1_agree");
    for (int i = 0; i < r->n_outputs; i++) {
        const struct mq_divergence_output *o = &r->outputs[i];
        char sqnr[32], worst[32], top1[64] = "-";
        format_db(sqnr, sizeof sqnr, mq_error_stats_sqnr_db(&o->stats));
        format_db(worst, sizeof worst, o->stats.min_sample_sqnr_db);
        if (o->class_scores && o->top1.rows)
            snprintf(top1, sizeof top1, "%lld/%lld (%.2f%%)", (long long)o->top1.agree,
                     (long long)o->top1.rows, 100.0 * (double)o->top1.agree / (double)o->top1.rows);
        mq_text_printf(f, "%-28s %9s %10s %10.6f %12.4g  %s\n", o->name, sqnr, worst,
                       mq_error_stats_cosine(&o->stats), o->stats.max_abs_error, top1);
        if (o->stats.nonfinite_mismatch)
            mq_text_printf(f, "  %lld values are NaN or infinite on one side only\n",
                           (long long)o->stats.nonfinite_mismatch);
    }
    if (!a->per_layer)
        return;
    mq_text_printf(f,
                   "\nper layer: %d tensors compared (%d matched by name); nodes adding the most "
                   "error first\n", r->n_layers, r->n_matched_names);
    mq_text_printf(f, "%-32s %-18s %9s %9s %9s  %s\n", "node", "op", "in_db", "out_db", "node_db",
                   "tensor");
    for (int i = 0; i < r->n_layers && i < a->top; i++) {
        const struct mq_divergence_layer *l = &r->layers[i];
        char in[32], out[32], node[32];
        format_db(in, sizeof in, l->input_relative_noise > 0
                                     ? -10.0 * log10(l->input_relative_noise) : INFINITY);
        format_db(out, sizeof out, mq_error_stats_sqnr_db(&l->stats));
        format_db(node, sizeof node, l->node_sqnr_db);
        mq_text_printf(f, "%-32s %-18s %9s %9s %9s  %s", l->node ? l->node : "?",
                       l->op_type ? l->op_type : "?", in, out, node, l->tensor_a);
        if (strcmp(l->tensor_a, l->tensor_b) != 0)
            mq_text_printf(f, " (B: %s)", l->tensor_b);
        if (l->shape_mismatches)
            mq_text_printf(f, "  [shapes differ in %lld samples]", (long long)l->shape_mismatches);
        if (l->stats.nonfinite_mismatch)
            mq_text_printf(f, "  [%lld NaN/inf on one side]",
                           (long long)l->stats.nonfinite_mismatch);
        fputc('\n', f);
    }
    fputs("in_db: SQNR of the node's noisiest input; node_db: SQNR of the error the node\n"
          "adds on its own (lower is worse).\n", f);
}

static void json_stats(struct mq_json *j, const struct mq_error_stats *s)
{
    mq_json_key_double(j, "sqnr_db", mq_error_stats_sqnr_db(s));
    mq_json_key_double(j, "worst_sample_sqnr_db", s->min_sample_sqnr_db);
    mq_json_key_double(j, "cosine", mq_error_stats_cosine(s));
    mq_json_key_double(j, "max_abs_error", s->max_abs_error);
    mq_json_key_bool(j, "exact", s->sum_err2 == 0 && s->nonfinite_mismatch == 0);
    mq_json_key_int(j, "elements", s->elements);
    mq_json_key_int(j, "nonfinite_mismatches", s->nonfinite_mismatch);
}

static int write_json(FILE *f, const struct compare_args *a, const struct mq_divergence_result *r)
{
    struct mq_json j;
    mq_json_init(&j, f, 1);
    mq_json_object_begin(&j);
    mq_json_key(&j, "model_a");
    mq_json_string(&j, a->a);
    mq_json_key(&j, "model_b");
    mq_json_string(&j, a->b);
    mq_json_key(&j, "inputs");
    mq_json_string(&j, a->inputs);
    mq_json_key_int(&j, "samples", r->samples);
    mq_json_key(&j, "outputs");
    mq_json_array_begin(&j);
    for (int i = 0; i < r->n_outputs; i++) {
        const struct mq_divergence_output *o = &r->outputs[i];
        mq_json_object_begin(&j);
        mq_json_key(&j, "name");
        mq_json_string(&j, o->name);
        json_stats(&j, &o->stats);
        mq_json_key(&j, "top1_agreement");
        if (o->class_scores && o->top1.rows)
            mq_json_double(&j, (double)o->top1.agree / (double)o->top1.rows);
        else
            mq_json_null(&j);
        mq_json_key_int(&j, "top1_rows", o->class_scores ? o->top1.rows : 0);
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    if (a->per_layer) {
        mq_json_key(&j, "per_layer");
        mq_json_object_begin(&j);
        mq_json_key_int(&j, "matched_names", r->n_matched_names);
        mq_json_key(&j, "tensors");
        mq_json_array_begin(&j);
        for (int i = 0; i < r->n_layers; i++) {
            const struct mq_divergence_layer *l = &r->layers[i];
            mq_json_object_begin(&j);
            mq_json_key(&j, "tensor");
            mq_json_string(&j, l->tensor_a);
            mq_json_key(&j, "tensor_b");
            mq_json_string(&j, l->tensor_b);
            mq_json_key(&j, "node");
            mq_json_string(&j, l->node ? l->node : "");
            mq_json_key(&j, "op_type");
            mq_json_string(&j, l->op_type ? l->op_type : "");
            json_stats(&j, &l->stats);
            mq_json_key(&j, "input_sqnr_db");
            mq_json_double(&j, l->input_relative_noise > 0
                                   ? -10.0 * log10(l->input_relative_noise) : INFINITY);
            mq_json_key_double(&j, "node_sqnr_db", l->node_sqnr_db);
            mq_json_key_int(&j, "shape_mismatches", l->shape_mismatches);
            mq_json_object_end(&j);
        }
        mq_json_array_end(&j);
        mq_json_object_end(&j);
    }
    mq_json_object_end(&j);
    fputc('\n', f);
    return j.failed ? -1 : 0;
}

static int parse(int argc, char **argv, struct compare_args *a)
{
    memset(a, 0, sizeof *a);
    a->top = 10;
    mq_preprocess_init(&a->preprocess);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (mq_cli_flag(argv, i, "help")) {
            fputs(compare_help, stdout);
            fputs(mq_cli_preprocess_help, stdout);
            return MQ_EXIT_OK;
        } else if ((m = mq_cli_preprocess_option(argc, argv, &i, &a->preprocess, "compare"))) {
            if (m < 0)
                return MQ_EXIT_USAGE;
        } else if (mq_cli_flag(argv, i, "per-layer")) {
            a->per_layer = 1;
        } else if ((m = mq_cli_option(argc, argv, &i, "inputs", &v))) {
            if (m < 0)
                return mq_cli_usage_error("compare", "--inputs needs a folder");
            a->inputs = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "json", &v))) {
            if (m < 0)
                return mq_cli_usage_error("compare", "--json needs a file");
            a->json = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "html", &v))) {
            if (m < 0)
                return mq_cli_usage_error("compare", "--html needs a file");
            a->html = v;
        } else if ((m = mq_cli_option(argc, argv, &i, "top", &v))) {
            if (m < 0 || (a->top = mq_cli_parse_count(v)) < 1)
                return mq_cli_usage_error("compare", "--top needs a count from 1");
        } else if ((m = mq_cli_option(argc, argv, &i, "limit", &v))) {
            if (m < 0 || (a->limit = mq_cli_parse_count(v)) < 1)
                return mq_cli_usage_error("compare", "--limit needs a count from 1");
        } else if ((m = mq_cli_option(argc, argv, &i, "jobs", &v))) {
            if (m < 0 || (a->jobs = mq_cli_parse_count(v)) < 1 || a->jobs > 1024)
                return mq_cli_usage_error("compare", "--jobs takes a count from 1 to 1024");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return mq_cli_usage_error("compare", "unknown option '%s'", argv[i]);
        } else if (!a->a) {
            a->a = argv[i];
        } else if (!a->b) {
            a->b = argv[i];
        } else {
            return mq_cli_usage_error("compare", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!a->a || !a->b)
        return mq_cli_usage_error("compare", "needs two models, A.onnx and B.onnx");
    if (!a->inputs)
        return mq_cli_usage_error("compare", "missing --inputs DIR");
    if (a->json && (strcmp(a->json, a->a) == 0 || strcmp(a->json, a->b) == 0))
        return mq_cli_usage_error("compare", "--json must name a file other than the models");
    if (a->html && (strcmp(a->html, a->a) == 0 || strcmp(a->html, a->b) == 0 ||
                    (a->json && strcmp(a->html, a->json) == 0)))
        return mq_cli_usage_error("compare", "--html must name a file other than the models "
                                  "and --json");
    return -1;
}

int mq_cli_compare(int argc, char **argv)
{
    struct compare_args a;
    int status = parse(argc, argv, &a);
    if (status >= 0)
        return status;
    struct mq_error err = {{0}};
    struct mq_model *ma = NULL, *mb = NULL;
    struct mq_divergence_result r;
    memset(&r, 0, sizeof r);
    struct mq_divergence_options o = {a.inputs, a.limit, a.per_layer || a.html, &a.preprocess,
                                      NULL, a.jobs > 0 ? (int)a.jobs : mq_calib_default_jobs()};
    int rc = MQ_OK;
    if (a.html)
        rc = mq_path_check_distinct(a.a, a.html, &err);
    if (rc == MQ_OK && a.html)
        rc = mq_path_check_distinct(a.b, a.html, &err);
    if (rc == MQ_OK)
        rc = mq_model_load(a.a, &ma, &err);
    if (rc == MQ_OK)
        rc = mq_model_load(a.b, &mb, &err);
    if (rc == MQ_OK)
        rc = mq_graph_canonicalize(ma->proto, NULL, NULL, &err);
    if (rc == MQ_OK)
        rc = mq_graph_canonicalize(mb->proto, NULL, NULL, &err);
    if (rc == MQ_OK)
        rc = mq_divergence_compare(ma, mb, &o, &r, &err);
    if (rc == MQ_OK && r.samples == 0)
        rc = mq_error_set(&err, "%s: no samples", a.inputs);
    if (rc == MQ_OK && a.json) {
        if (strcmp(a.json, "-") == 0) {
            if (write_json(stdout, &a, &r))
                rc = mq_error_set(&err, "writing the JSON to stdout failed");
        } else {
            struct mq_atomic_file file;
            rc = mq_atomic_open(&file, a.json, &err);
            if (rc == MQ_OK) {
                if (write_json(file.fp, &a, &r)) {
                    mq_atomic_abort(&file);
                    rc = mq_error_set(&err, "writing '%s' failed", a.json);
                } else {
                    rc = mq_atomic_commit(&file, &err);
                }
            }
        }
    }
    if (rc == MQ_OK && a.html) {
        struct mq_html_report h = {0};
        h.command = "onnx-monoquant compare";
        h.args = argv + 1;
        h.n_args = argc - 1;
        h.model_a = a.a;
        h.model_b = a.b;
        h.compare = &r;
        h.compare_per_layer = 1;
        h.compare_inputs = a.inputs;
        rc = mq_html_save(a.html, &h, &err);
    }
    if (rc == MQ_OK && !(a.json && strcmp(a.json, "-") == 0))
        print_text(stdout, &a, &r);
    mq_divergence_result_free(&r);
    mq_model_free(ma);
    mq_model_free(mb);
    return mq_cli_report(rc, &err);
}
