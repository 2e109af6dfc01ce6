/* What a quantization did, for people (text table) and for tools (JSON) (see report.h). */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/tensor.h"
#include "quant/params.h"
#include "quant/sample_stats.h"
#include "util/json.h"
#include "util/text.h"

static const char *status_name(enum mq_node_status s)
{
    switch (s) {
    case MQ_NODE_SKIPPED:
        return "skipped";
    case MQ_NODE_SELECTED:
        return "selected";
    case MQ_NODE_QUANTIZED:
        return "quantized";
    case MQ_NODE_FOLDED:
        return "folded";
    }
    return "?";
}

static const char *type_name(int dtype)
{
    const char *q = mq_qtype_name(dtype);
    return q ? q : mq_dtype_name(dtype);
}

struct counts {
    int nodes, quantized, folded, skipped;
};

static struct counts count_nodes(const struct mq_selection *sel)
{
    struct counts c = {0};
    for (int i = 0; i < sel->n; i++) {
        c.nodes++;
        switch (sel->items[i].status) {
        case MQ_NODE_QUANTIZED:
            c.quantized++;
            break;
        case MQ_NODE_FOLDED:
            c.folded++;
            break;
        default:
            c.skipped++;
            break;
        }
    }
    return c;
}

static void json_key_string(struct mq_json *j, const char *key, const char *value)
{
    mq_json_key(j, key);
    if (value)
        mq_json_string(j, value);
    else
        mq_json_null(j);
}

static void write_scheme(struct mq_json *j, const struct mq_report *r)
{
    const struct mq_quant_options *o = r->options;
    mq_json_key(j, "scheme");
    mq_json_object_begin(j);
    json_key_string(j, "profile", r->profile);
    json_key_string(j, "activation_type", type_name(o->activation_type));
    mq_json_key_bool(j, "activation_symmetric", o->symmetric_activations);
    json_key_string(j, "weight_type", type_name(o->weight_type));
    mq_json_key_bool(j, "weight_symmetric", o->symmetric_weights);
    mq_json_key_bool(j, "per_channel", o->per_channel);
    mq_json_key_bool(j, "reduce_range", o->reduce_range);
    mq_json_key_bool(j, "output_qdq", o->quantize_outputs);
    json_key_string(j, "bias_type", "int32");
    mq_json_object_end(j);
}

static void write_calibration(struct mq_json *j, const struct mq_report *r)
{
    mq_json_key(j, "calibration");
    mq_json_object_begin(j);
    json_key_string(j, "source", r->calibration_source);
    mq_json_key(j, "paths");
    mq_json_array_begin(j);
    for (int i = 0; i < r->n_calibration_paths; i++)
        mq_json_string(j, r->calibration_paths[i]);
    mq_json_array_end(j);
    json_key_string(j, "method", r->ranges ? r->ranges->method : NULL);
    if (r->ranges && r->ranges->method_id == MQ_CALIB_PERCENTILE) {
        mq_json_key_double(j, "percentile", r->ranges->percentile);
    }
    mq_json_key_uint(j, "samples", r->ranges ? r->ranges->samples : 0);
    mq_json_key_int(j, "tensors", r->ranges ? r->ranges->n : 0);
    uint64_t nonfinite = 0;
    int tensors_nonfinite = 0;
    for (int i = 0; r->ranges && i < r->ranges->n; i++) {
        nonfinite += r->ranges->items[i].nonfinite;
        tensors_nonfinite += r->ranges->items[i].nonfinite > 0;
    }
    mq_json_key_uint(j, "nonfinite_values", nonfinite);
    mq_json_key_int(j, "tensors_with_nonfinite", tensors_nonfinite);
    /* The second pass over the samples: bias correction and the quiet-sample check. */
    mq_json_key_bool(j, "statistics_pass", r->options->stats != NULL);
    mq_json_key_bool(j, "bias_correction", r->options->stats && r->options->bias_correction);
    json_key_string(j, "weight_rounding", r->options->weight_rounding ? "gptq" : "nearest");
    mq_json_key(j, "min_sample_sqnr_db");
    double floor_db = r->options->min_sample_sqnr_db;
    if (!r->options->stats || !(floor_db > 0.0))
        mq_json_null(j);
    else if (floor_db == nearbyint(floor_db) && floor_db < 1e9)
        mq_json_int(j, (int64_t)floor_db); /* "10", where %g would write 1e+01 */
    else
        mq_json_double(j, floor_db);
    mq_json_object_end(j);
}

static void write_sizes(struct mq_json *j, const struct mq_report *r)
{
    mq_json_key(j, "sizes");
    mq_json_object_begin(j);
    mq_json_key_uint(j, "model_bytes_before", r->model_bytes_before);
    mq_json_key_uint(j, "model_bytes_after", r->model_bytes_after);
    mq_json_key_uint(j, "initializer_bytes_before", r->weight_bytes_before);
    mq_json_key_uint(j, "initializer_bytes_after", r->weight_bytes_after);
    mq_json_key(j, "ratio");
    mq_json_double(j, r->model_bytes_before
                          ? (double)r->model_bytes_after / (double)r->model_bytes_before
                          : 0.0);
    mq_json_object_end(j);
}

static void write_nodes(struct mq_json *j, const struct mq_selection *sel)
{
    mq_json_key(j, "nodes");
    mq_json_array_begin(j);
    for (int i = 0; i < sel->n; i++) {
        const struct mq_node_choice *c = &sel->items[i];
        mq_json_object_begin(j);
        json_key_string(j, "name", c->name);
        json_key_string(j, "op_type", c->op_type);
        json_key_string(j, "graph", c->graph);
        json_key_string(j, "status", status_name(c->status));
        if (c->reason)
            json_key_string(j, "reason", c->reason);
        if (c->integer_only)
            mq_json_key_bool(j, "shape_arithmetic", 1);
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
}

/*
 * What onnxruntime's CPU provider makes of the quantized nodes (predicted
 * from its QDQ rules) and how many nodes compute on integers only.
 */
static void write_onnxruntime(struct mq_json *j, const struct mq_report *r)
{
    int shape_nodes = 0;
    for (int i = 0; i < r->selection->n; i++)
        shape_nodes += r->selection->items[i].integer_only &&
                       r->selection->items[i].status != MQ_NODE_QUANTIZED;
    mq_json_key(j, "onnxruntime");
    mq_json_object_begin(j);
    mq_json_key(j, "fusions");
    mq_json_array_begin(j);
    for (int i = 0; r->ort_fusions && i < r->ort_fusions->n; i++) {
        const struct mq_ort_fusion_count *f = &r->ort_fusions->items[i];
        mq_json_object_begin(j);
        json_key_string(j, "op_type", f->op_type);
        json_key_string(j, "kernel", f->kernel);
        mq_json_key_bool(j, "qdq_dropped", f->kernel == NULL);
        mq_json_key_int(j, "nodes", f->nodes);
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
    mq_json_key_int(j, "shape_arithmetic_nodes", shape_nodes);
    mq_json_object_end(j);
}

static void write_channels(struct mq_json *j, const struct mq_qtensor_record *t)
{
    int per_channel = t->axis >= 0;
    mq_json_key(j, "scale");
    if (per_channel) {
        mq_json_array_begin(j);
        for (int c = 0; c < t->n_channels; c++)
            mq_json_float(j, t->scales[c]);
        mq_json_array_end(j);
    } else {
        mq_json_float(j, t->scales[0]);
    }
    mq_json_key(j, "zero_point");
    if (per_channel) {
        mq_json_array_begin(j);
        for (int c = 0; c < t->n_channels; c++)
            mq_json_int(j, t->zero_points[c]);
        mq_json_array_end(j);
    } else {
        mq_json_int(j, t->zero_points[0]);
    }
}

static void write_tensor(struct mq_json *j, const struct mq_report *r,
                         const struct mq_qtensor_record *t)
{
    mq_json_object_begin(j);
    json_key_string(j, "name", t->name);
    json_key_string(j, "graph", t->graph);
    json_key_string(j, "role", mq_qtensor_role_name(t->role));
    json_key_string(j, "type", type_name(t->qtype));
    mq_json_key(j, "range");
    if (t->has_range) {
        mq_json_array_begin(j);
        mq_json_float(j, t->range_min);
        mq_json_float(j, t->range_max);
        mq_json_array_end(j);
    } else {
        mq_json_null(j);
    }
    mq_json_key(j, "axis");
    if (t->axis >= 0)
        mq_json_int(j, t->axis);
    else
        mq_json_null(j);
    if (t->n_channels > 0)
        write_channels(j, t);
    if (t->shared_with)
        json_key_string(j, "shared_with", t->shared_with);
    if (t->n_adjusted) {
        mq_json_key(j, "scale_enlarged_for_bias");
        mq_json_array_begin(j);
        for (int c = 0; c < t->n_adjusted; c++)
            mq_json_int(j, t->adjusted[c]);
        mq_json_array_end(j);
    }
    if (t->note)
        json_key_string(j, "note", t->note);
    int64_t worst_sample = 0;
    double worst = t->role == MQ_QT_ACTIVATION && r->options->stats
                       ? mq_quant_stats_worst_sqnr(r->options->stats, t->name, &worst_sample)
                       : NAN;
    if (!isnan(worst)) {
        mq_json_key_double(j, "worst_sample_sqnr_db", worst);
        mq_json_key_int(j, "worst_sample", worst_sample);
    }
    /* Not measured: decided by a floor no sample can fall below (quant/sqnr_bound.h). */
    double floor_db = t->role == MQ_QT_ACTIVATION && r->options->stats && isnan(worst)
                          ? mq_quant_stats_worst_sqnr_floor(r->options->stats, t->name,
                                                            &worst_sample)
                          : NAN;
    if (!isnan(floor_db)) {
        mq_json_key_double(j, "worst_sample_sqnr_db_at_least", floor_db);
        mq_json_key_int(j, "worst_sample", worst_sample);
    }
    const struct mq_tensor_range *cr =
        r->ranges && (t->role == MQ_QT_ACTIVATION) ? mq_ranges_find(r->ranges, t->name) : NULL;
    if (cr) {
        mq_json_key(j, "observed");
        mq_json_object_begin(j);
        mq_json_key_float(j, "min", cr->observed_min);
        mq_json_key_float(j, "max", cr->observed_max);
        mq_json_key_uint(j, "values", cr->count);
        mq_json_key_uint(j, "nonfinite", cr->nonfinite);
        mq_json_object_end(j);
    }
    mq_json_object_end(j);
}

/* ------------------------------------------------ accuracy check and search */

/* The node labels a warning names: the first ones of the attribution, worst first. */
static int blamed_nodes(const struct mq_check_result *c)
{
    if (!c->attribution)
        return 0;
    return c->compare.n_layers < MQ_CHECK_BLAME_NODES ? c->compare.n_layers
                                                      : MQ_CHECK_BLAME_NODES;
}

static void write_check(struct mq_json *j, const struct mq_report *r)
{
    mq_json_key(j, "check");
    if (!r->check) {
        mq_json_object_begin(j);
        json_key_string(j, "skipped", r->check_skipped ? r->check_skipped : "not run");
        mq_json_object_end(j);
        return;
    }
    const struct mq_check_result *c = r->check;
    mq_json_object_begin(j);
    json_key_string(j, "samples_path", c->eval_dir);
    mq_json_key_int(j, "samples", c->compare.samples);
    mq_json_key_double(j, "warn_below_sqnr_db", MQ_CHECK_WARN_SQNR_DB);
    mq_json_key(j, "outputs");
    mq_json_array_begin(j);
    for (int i = 0; i < c->compare.n_outputs; i++) {
        const struct mq_divergence_output *o = &c->compare.outputs[i];
        mq_json_object_begin(j);
        json_key_string(j, "name", o->name);
        mq_json_key_double(j, "sqnr_db", mq_check_output_sqnr_db(c, i));
        mq_json_key_double(j, "worst_sample_sqnr_db", o->stats.min_sample_sqnr_db);
        mq_json_key_double(j, "cosine", mq_error_stats_cosine(&o->stats));
        mq_json_key_double(j, "max_abs_error", o->stats.max_abs_error);
        mq_json_key_bool(j, "exact", o->stats.sum_err2 == 0 && o->stats.nonfinite_mismatch == 0);
        mq_json_key_bool(j, "class_scores", mq_check_output_agreement_pct(c, i) >= 0);
        mq_json_key(j, "top1_agreement_pct");
        double agree = mq_check_output_agreement_pct(c, i);
        if (agree >= 0)
            mq_json_double(j, agree);
        else
            mq_json_null(j);
        mq_json_key_bool(j, "warning", mq_check_output_warns(c, i));
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
    mq_json_key(j, "nodes_adding_most_error");
    mq_json_array_begin(j);
    for (int i = 0; i < blamed_nodes(c); i++) {
        const struct mq_divergence_layer *l = &c->compare.layers[i];
        mq_json_object_begin(j);
        json_key_string(j, "node", l->node ? l->node : "");
        json_key_string(j, "op_type", l->op_type ? l->op_type : "");
        json_key_string(j, "tensor", l->tensor_a);
        mq_json_key_double(j, "node_sqnr_db", l->node_sqnr_db);
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
    mq_json_key_int(j, "nodes_ranked_on_samples",
                    c->blame_samples > 0 ? c->blame_samples : c->compare.samples);
    mq_json_object_end(j);
}

static void write_search(struct mq_json *j, const struct mq_report *r)
{
    mq_json_key(j, "target_search");
    if (!r->target || !r->search) {
        mq_json_null(j);
        return;
    }
    const struct mq_target_search_result *s = r->search;
    mq_json_object_begin(j);
    mq_json_key(j, "target_sqnr_db");
    if (r->target->has_sqnr)
        mq_json_double(j, r->target->sqnr_db);
    else
        mq_json_null(j);
    mq_json_key(j, "target_agreement_pct");
    if (r->target->has_agreement)
        mq_json_double(j, r->target->agreement_pct);
    else
        mq_json_null(j);
    json_key_string(j, "fallback_type", r->fallback == MQ_FALLBACK_INT16 ? "int16" : "float");
    mq_json_key_bool(j, "met_with_all_int8", s->met_with_all_int8);
    mq_json_key_int(j, "passes", s->passes);
    mq_json_key_double(j, "reached_sqnr_db", s->reached_sqnr_db);
    mq_json_key_double(j, "reached_sqnr_stderr_db", s->reached_sqnr_stderr_db);
    mq_json_key_double(j, "stderr_multiple", r->target->stderr_multiple);
    mq_json_key(j, "reached_agreement_pct");
    if (s->reached_agreement_pct >= 0)
        mq_json_double(j, s->reached_agreement_pct);
    else
        mq_json_null(j);
    mq_json_key_int(j, "weighted_nodes", s->weighted_total);
    mq_json_key_int(j, "weighted_nodes_int8", s->weighted_int8);
    mq_json_key_int(j, "macs", s->macs_total);
    mq_json_key_int(j, "macs_int8", s->macs_int8);
    mq_json_key_double(j, "int8_mac_share",
                       s->macs_total ? (double)s->macs_int8 / (double)s->macs_total : 0.0);
    mq_json_key(j, "fallback");
    mq_json_array_begin(j);
    for (int i = 0; i < s->n_fallback; i++) {
        const struct mq_fallback_node *f = &s->fallback[i];
        mq_json_object_begin(j);
        json_key_string(j, "node", f->name);
        json_key_string(j, "op_type", f->op_type);
        mq_json_key_double(j, "node_sqnr_db", f->node_sqnr_db);
        mq_json_key(j, "sqnr_if_quantized_db");
        if (f->measured)
            mq_json_double(j, f->sqnr_if_quantized_db);
        else
            mq_json_null(j);
        mq_json_key(j, "agreement_if_quantized_pct");
        if (f->measured && f->agreement_if_quantized_pct >= 0)
            mq_json_double(j, f->agreement_if_quantized_pct);
        else
            mq_json_null(j);
        mq_json_key_int(j, "macs", f->macs);
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
    mq_json_object_end(j);
}

/*
 * The graph rewrites the report counts: each one's key in the JSON summary and its line in the
 * printed summary (shown when the count is not 0), in one table so the two cannot drift apart.
 */
enum { N_REWRITE_COUNTS = 11 };
struct rewrite_count {
    const char *key, *line;
    int n;
};

static void rewrite_counts(const struct mq_report *r, struct rewrite_count *rows)
{
    const struct rewrite_count table[N_REWRITE_COUNTS] = {
        {"pads_folded", "Pad folded into the Conv or AveragePool after it", r->pads_folded},
        {"hardswish_split", "HardSwish written as Add, Clip, Mul, Mul", r->hardswish_split},
        {"hardswish_as_hardsigmoid", "HardSwish written as x * HardSigmoid(x)",
         r->hardswish_as_hardsigmoid},
        {"hardsigmoid_codes", "HardSigmoid as a clamp of its input's codes (an integer Clip and "
         "a DequantizeLinear, no float HardSigmoid)", r->result->hardsigmoid_codes},
        {"channels_padded", "Conv input padded with zero channels to a multiple of 4 (the "
         "channel count onnxruntime's fast int8 kernel takes)", r->channels_padded},
        {"depthwise_padded", "depthwise Conv widened with zero channels to a multiple of 16 (the "
         "count onnxruntime's fast int8 depthwise kernel takes)", r->depthwise_padded},
        {"shuffles_as_gather", "channel shuffle (Reshape, Transpose, Reshape) written as one "
         "Gather of its channels", r->shuffles_as_gather},
        {"batchnorms_as_conv", "BatchNormalization written as a depthwise 1x1 Conv (onnxruntime "
         "has no integer BatchNormalization)", r->batchnorms_as_conv},
        {"means_as_pool", "ReduceMean over the spatial axes written as GlobalAveragePool "
         "(onnxruntime has no integer ReduceMean)", r->means_as_pool},
        {"pools_as_conv", "AveragePool written as the depthwise Conv that averages the same "
         "(onnxruntime's int8 pool is a scalar loop; --no-pool-conv keeps it)", r->pools_as_conv},
        {"ranges_equalized", "Conv outputs rescaled per channel so one scale fits their channels "
         "(cross-layer equalization)", r->ranges_equalized},
    };
    memcpy(rows, table, sizeof table);
}

int mq_report_write_json(FILE *out, const struct mq_report *r)
{
    struct mq_json j;
    mq_json_init(&j, out, 1);
    mq_json_object_begin(&j);
    json_key_string(&j, "tool", "onnx-monoquant");
    json_key_string(&j, "input", r->input_path);
    json_key_string(&j, "output", r->output_path);
    write_scheme(&j, r);
    mq_json_key(&j, "opset");
    mq_json_object_begin(&j);
    mq_json_key_int(&j, "before", r->opset_before);
    mq_json_key_int(&j, "after", r->opset_after);
    mq_json_object_end(&j);
    write_calibration(&j, r);
    write_sizes(&j, r);
    struct counts c = count_nodes(r->selection);
    mq_json_key(&j, "summary");
    mq_json_object_begin(&j);
    mq_json_key_int(&j, "nodes", c.nodes);
    mq_json_key_int(&j, "quantized", c.quantized);
    mq_json_key_int(&j, "folded", c.folded);
    mq_json_key_int(&j, "skipped", c.skipped);
    mq_json_key_int(&j, "quantized_tensors", r->result->n_tensors);
    mq_json_key_int(&j, "float_tensors", r->result->n_skipped);
    struct rewrite_count rewrites[N_REWRITE_COUNTS];
    rewrite_counts(r, rewrites);
    for (int k = 0; k < N_REWRITE_COUNTS; k++)
        mq_json_key_int(&j, rewrites[k].key, rewrites[k].n);
    mq_json_object_end(&j);
    write_check(&j, r);
    write_search(&j, r);
    write_onnxruntime(&j, r);
    write_nodes(&j, r->selection);
    mq_json_key(&j, "batchnorm_folded");
    mq_json_array_begin(&j);
    for (int i = 0; r->folds && i < r->folds->n; i++) {
        const struct mq_fold_record *f = &r->folds->items[i];
        mq_json_object_begin(&j);
        json_key_string(&j, "op_type", f->op_type);
        json_key_string(&j, "batchnorm", f->batchnorm);
        json_key_string(&j, "into", f->conv);
        json_key_string(&j, "graph", f->graph);
        mq_json_key_int(&j, "clip_left", f->clip_left);
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    mq_json_key(&j, "tensors");
    mq_json_array_begin(&j);
    for (int i = 0; i < r->result->n_tensors; i++)
        write_tensor(&j, r, &r->result->tensors[i]);
    mq_json_array_end(&j);
    mq_json_key(&j, "float_tensors");
    mq_json_array_begin(&j);
    for (int i = 0; i < r->result->n_skipped; i++) {
        const struct mq_skipped_tensor *s = &r->result->skipped[i];
        mq_json_object_begin(&j);
        json_key_string(&j, "name", s->name);
        json_key_string(&j, "graph", s->graph);
        json_key_string(&j, "reason", s->reason);
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    mq_json_object_end(&j);
    if (fputc('\n', out) == EOF)
        j.failed = 1;
    return j.failed ? -1 : 0;
}

/* ------------------------------------------------------------- summary */

static void human_bytes(uint64_t n, char *buf, size_t size)
{
    if (n >= (uint64_t)1 << 30)
        snprintf(buf, size, "%.2f GiB", (double)n / (double)((uint64_t)1 << 30));
    else if (n >= (uint64_t)1 << 20)
        snprintf(buf, size, "%.2f MiB", (double)n / (double)((uint64_t)1 << 20));
    else if (n >= 1024)
        snprintf(buf, size, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(buf, size, "%llu B", (unsigned long long)n);
}

#define SUMMARY_MAX_OPS 64
#define SUMMARY_MAX_REASONS 5
#define SUMMARY_MAX_FALLBACK 10

static void format_db(char *buf, size_t size, double db)
{
    if (isinf(db))
        snprintf(buf, size, "%s", db > 0 ? "inf" : "-inf");
    else
        snprintf(buf, size, "%.2f", db);
}

static void print_check(FILE *out, const struct mq_report *r)
{
    const struct mq_check_result *c = r->check;
    if (!c) {
        if (r->check_skipped)
            mq_text_printf(out, "  accuracy check: skipped (%s)\n", r->check_skipped);
        return;
    }
    mq_text_printf(out, "  accuracy against FP32 (interpreter, %lld samples of %s):\n",
            (long long)c->compare.samples, c->eval_dir);
    mq_text_printf(out, "  %-24s %9s %10s %12s  %s\n", "output", "sqnr_db", "cosine", "max_abs_err",
            "top1_agree");
    for (int i = 0; i < c->compare.n_outputs; i++) {
        const struct mq_divergence_output *o = &c->compare.outputs[i];
        char db[32], top1[32] = "-";
        format_db(db, sizeof db, mq_check_output_sqnr_db(c, i));
        double agree = mq_check_output_agreement_pct(c, i);
        if (agree >= 0)
            snprintf(top1, sizeof top1, "%.2f%%", agree);
        mq_text_printf(out, "  %-24s %9s %10.6f %12.4g  %s\n", o->name, db,
                mq_error_stats_cosine(&o->stats), o->stats.max_abs_error, top1);
    }
}

static void print_search(FILE *out, const struct mq_report *r)
{
    const struct mq_target_search_result *s = r->search;
    if (!r->target || !s)
        return;
    char target[96] = "", reached[96];
    if (r->target->has_sqnr)
        snprintf(target, sizeof target, "--target-sqnr %g", r->target->sqnr_db);
    if (r->target->has_agreement)
        snprintf(target + strlen(target), sizeof target - strlen(target), "%s--target-agreement %g",
                 r->target->has_sqnr ? " " : "", r->target->agreement_pct);
    format_db(reached, sizeof reached, s->reached_sqnr_db);
    mq_text_printf(out, "  accuracy search (%s): lowest output SQNR %s dB", target, reached);
    if (r->target->has_sqnr && s->reached_sqnr_stderr_db > 0)
        mq_text_printf(out, " (standard error %.2f dB over the samples; aimed %g of them above "
                       "the target)", s->reached_sqnr_stderr_db, r->target->stderr_multiple);
    if (s->reached_agreement_pct >= 0)
        mq_text_printf(out, ", lowest top-1 agreement %.2f%%", s->reached_agreement_pct);
    mq_text_printf(out, " after %d passes; %d nodes left %s\n", s->passes, s->n_fallback,
            r->fallback == MQ_FALLBACK_INT16 ? "out of int8 (16-bit activations)" : "float");
    mq_text_printf(out, "  int8: %d of %d Conv/ConvTranspose/Gemm/MatMul nodes, %.1f%% of their "
            "multiply-accumulates; weights rounded %s\n", s->weighted_int8, s->weighted_total,
            s->macs_total ? 100.0 * (double)s->macs_int8 / (double)s->macs_total : 0.0,
            r->options && r->options->weight_rounding ? "with GPTQ" : "to nearest");
    for (int i = 0; i < s->n_fallback && i < SUMMARY_MAX_FALLBACK; i++) {
        const struct mq_fallback_node *f = &s->fallback[i];
        char alone[32], again[32];
        format_db(alone, sizeof alone, f->node_sqnr_db);
        format_db(again, sizeof again, f->sqnr_if_quantized_db);
        mq_text_printf(out, "  float %s (%s): its error alone %s dB", f->name, f->op_type, alone);
        if (f->measured)
            mq_text_printf(out, "; quantized again, the output drops to %s dB", again);
        fputc('\n', out);
    }
    if (s->n_fallback > SUMMARY_MAX_FALLBACK)
        mq_text_printf(out, "  ... %d more float nodes (see --report)\n",
                s->n_fallback - SUMMARY_MAX_FALLBACK);
}

/* What onnxruntime's CPU provider runs the nodes of one op type as: "QLinearMatMul 24". */
static void print_ort_column(FILE *out, const struct mq_report *r, const char *op_type)
{
    int k = 0;
    for (int i = 0; r->ort_fusions && i < r->ort_fusions->n; i++) {
        const struct mq_ort_fusion_count *f = &r->ort_fusions->items[i];
        if (strcmp(f->op_type, op_type) != 0)
            continue;
        if (f->kernel)
            mq_text_printf(out, "%s%s %d", k++ ? ", " : "  ", f->kernel, f->nodes);
        else
            mq_text_printf(out, "%s8-bit %s %d", k++ ? ", " : "  ", f->op_type, f->nodes);
    }
}

/*
 * Op types in order of first appearance with their node counts and what
 * onnxruntime runs them as; the nodes that compute on integers only (shape
 * arithmetic) are not candidates for quantization and share one line.
 */
static void print_op_table(FILE *out, const struct mq_report *r)
{
    const struct mq_selection *sel = r->selection;
    const char *ops[SUMMARY_MAX_OPS], *shape_ops[SUMMARY_MAX_OPS];
    int q[SUMMARY_MAX_OPS], f[SUMMARY_MAX_OPS], s[SUMMARY_MAX_OPS], n_ops = 0, others = 0;
    int shape_n[SUMMARY_MAX_OPS], n_shape_ops = 0, shape_total = 0;
    for (int i = 0; i < sel->n; i++) {
        const struct mq_node_choice *ch = &sel->items[i];
        int shape = ch->integer_only && ch->status != MQ_NODE_QUANTIZED;
        const char **names = shape ? shape_ops : ops;
        int *n_names = shape ? &n_shape_ops : &n_ops;
        int k = 0;
        while (k < *n_names && strcmp(names[k], ch->op_type) != 0)
            k++;
        if (k == *n_names) {
            if (*n_names == SUMMARY_MAX_OPS) {
                others++;
                continue;
            }
            names[k] = ch->op_type;
            if (shape)
                shape_n[k] = 0;
            else
                q[k] = f[k] = s[k] = 0;
            (*n_names)++;
        }
        if (shape) {
            shape_n[k]++;
            shape_total++;
        } else if (ch->status == MQ_NODE_QUANTIZED) {
            q[k]++;
        } else if (ch->status == MQ_NODE_FOLDED) {
            f[k]++;
        } else {
            s[k]++;
        }
    }
    mq_text_printf(out, "  %-22s %9s %7s %8s%s\n", "op type", "quantized", "folded", "skipped",
                   r->ort_fusions ? "  onnxruntime CPU runs" : "");
    for (int k = 0; k < n_ops; k++) {
        mq_text_printf(out, "  %-22s %9d %7d %8d", ops[k], q[k], f[k], s[k]);
        print_ort_column(out, r, ops[k]);
        fputc('\n', out);
    }
    if (others)
        mq_text_printf(out, "  (%d nodes of further op types)\n", others);
    if (shape_total) {
        mq_text_printf(out, "  integer shape arithmetic, not quantized: %d nodes (", shape_total);
        for (int k = 0; k < n_shape_ops; k++)
            mq_text_printf(out, "%s%s %d", k ? ", " : "", shape_ops[k], shape_n[k]);
        mq_text_printf(out, ")\n");
    }
}

void mq_report_print_summary(FILE *out, const struct mq_report *r)
{
    const struct mq_selection *sel = r->selection;
    const struct mq_quant_options *o = r->options;
    struct counts c = count_nodes(sel);
    mq_text_printf(out,
                   "quantized %d of %d nodes (%d folded, %d skipped); %d tensors quantized, %d "
                   "left float\n", c.quantized, c.nodes, c.folded, c.skipped, r->result->n_tensors,
                   r->result->n_skipped);
    mq_text_printf(out, "  scheme: %s activations%s, %s weights %s%s, int32 biases (profile %s)\n",
                   type_name(o->activation_type), o->symmetric_activations ? " symmetric" : "",
                   type_name(o->weight_type), o->per_channel ? "per channel" : "per tensor",
                   o->reduce_range ? " (reduced range)" : "", r->profile);
    if (r->folds && r->folds->n) {
        int n_bn = 0, n_clip = 0;
        const char *clip_op = NULL; /* the op type of the folds that left a Clip, when one */
        for (int i = 0; i < r->folds->n; i++) {
            const struct mq_fold_record *f = &r->folds->items[i];
            n_bn += strcmp(f->op_type, "BatchNormalization") == 0;
            if (f->clip_left)
                clip_op = n_clip++ == 0 || (clip_op && strcmp(clip_op, f->op_type) == 0)
                              ? f->op_type
                              : NULL;
        }
        if (n_bn)
            mq_text_printf(out, "  %d BatchNormalization folded into the Conv or Gemm before it\n",
                           n_bn);
        if (r->folds->n > n_bn + n_clip)
            mq_text_printf(out, "  %d per-channel Mul/Add/Sub/Div by a constant folded into the "
                           "Conv or Gemm before it\n", r->folds->n - n_bn - n_clip);
        if (n_clip)
            mq_text_printf(out, "  %d %s folded into the Conv or Gemm before it (the affine part "
                           "in its weights, the clamp left as a Clip)\n", n_clip,
                           clip_op ? clip_op : "activations");
    }
    struct rewrite_count rewrites[N_REWRITE_COUNTS];
    rewrite_counts(r, rewrites);
    for (int k = 0; k < N_REWRITE_COUNTS; k++)
        if (rewrites[k].n)
            mq_text_printf(out, "  %d %s\n", rewrites[k].n, rewrites[k].line);
    print_op_table(out, r);
    char before[32], after[32];
    human_bytes(r->model_bytes_before, before, sizeof before);
    human_bytes(r->model_bytes_after, after, sizeof after);
    mq_text_printf(out, "  model size: %s -> %s", before, after);
    if (r->model_bytes_before)
        mq_text_printf(out, " (%.1f%%)", 100.0 * (double)r->model_bytes_after /
                                             (double)r->model_bytes_before);
    mq_text_printf(out, "\n");
    if (r->ranges)
        mq_text_printf(out, "  calibration: %s, %llu samples\n", r->ranges->method,
                       (unsigned long long)r->ranges->samples);
    if (!o->stats && (o->bias_correction || o->min_sample_sqnr_db > 0.0))
        mq_text_printf(out, "  no calibration samples to read again: biases not corrected, quiet "
                       "samples not checked (use --calib)\n");
    /* A few reasons, so a surprise is visible without opening the report. */
    int shown = 0, candidates = 0;
    for (int i = 0; i < sel->n; i++) {
        const struct mq_node_choice *ch = &sel->items[i];
        /*
         * Nodes left out by op type, and ops with no integer consumer, are
         * expected; the other reasons are news, and so is a quantized node
         * that kept some of its tensors float.
         */
        int skipped = ch->status == MQ_NODE_SKIPPED;
        int partly = ch->status == MQ_NODE_QUANTIZED && ch->reason &&
                     strstr(ch->reason, "stays float");
        if (!ch->reason || (!skipped && !partly) ||
            (skipped && (strstr(ch->reason, "not selected") ||
                         strstr(ch->reason, "is not quantized") ||
                         strstr(ch->reason, "accuracy search") ||
                         strstr(ch->reason, "reaches no quantized"))))
            continue;
        candidates++;
        if (shown < SUMMARY_MAX_REASONS) {
            mq_text_printf(out, "  %s %s (%s): %s\n", skipped ? "skipped" : "partly float",
                           ch->name,
                           ch->op_type, ch->reason);
            shown++;
        }
    }
    if (candidates > shown)
        mq_text_printf(out, "  ... %d more nodes with reasons (see --report)\n",
                       candidates - shown);
    print_check(out, r);
    print_search(out, r);
    mq_report_print_warnings(out, r);
}

int mq_report_print_warnings(FILE *out, const struct mq_report *r)
{
    const struct mq_check_result *c = r->check;
    int n = 0;
    for (int i = 0; c && i < c->compare.n_outputs; i++) {
        if (!mq_check_output_warns(c, i))
            continue;
        char db[32];
        format_db(db, sizeof db, mq_check_output_sqnr_db(c, i));
        mq_text_printf(out, "warning: output '%s' keeps %s dB SQNR against FP32 (below %g dB) on %lld "
                "samples", c->compare.outputs[i].name, db, MQ_CHECK_WARN_SQNR_DB,
                (long long)c->compare.samples);
        char ranked[64] = "";
        if (c->blame_samples > 0 && c->blame_samples < c->compare.samples)
            snprintf(ranked, sizeof ranked, " (on the first %lld)", (long long)c->blame_samples);
        for (int k = 0; k < blamed_nodes(c); k++) {
            const struct mq_divergence_layer *l = &c->compare.layers[k];
            format_db(db, sizeof db, l->node_sqnr_db);
            if (k == 0)
                mq_text_printf(out, "; nodes adding the most error%s: ", ranked);
            mq_text_printf(out, "%s%s (%s, adds noise at %s dB)", k ? ", " : "",
                           l->node ? l->node : "?", l->op_type ? l->op_type : "?", db);
        }
        mq_text_printf(out, "; try --target-sqnr or --exclude-nodes\n");
        n++;
    }
    return n;
}
