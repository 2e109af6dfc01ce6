/*
 * The data block of the HTML report: everything the page draws, as compact
 * JSON.  Big lists are arrays of arrays (a 5,000-node model stays a few
 * megabytes); histograms are reduced to DISPLAY_BINS bins over the observed
 * range.  The page's script (html_page.html) is the only reader: the two
 * change together.
 */
#include "report/html.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/histogram.h"
#include "core/tensor.h"
#include "quant/params.h"
#include "quant/sample_stats.h"
#include "util/json.h"

/* Bars per tensor histogram: enough to see tails, small enough for thousands of tensors. */
#define DISPLAY_BINS 64
/* Entropy and mse cut-offs cost a search over the histogram each: computed for the other
   methods only up to this many tensors, so a huge model's report stays quick. */
#define MAX_TENSORS_ALL_CUTOFFS 2000
/* A -inf SQNR (the reference is all zeros) is drawn at this floor; +inf is null. */
#define SQNR_FLOOR_DB -300.0

static void key_string(struct mq_json *j, const char *key, const char *value)
{
    mq_json_key(j, key);
    if (value)
        mq_json_string(j, value);
    else
        mq_json_null(j);
}

static void db_value(struct mq_json *j, double db)
{
    if (isinf(db) && db < 0)
        mq_json_double(j, SQNR_FLOOR_DB);
    else
        mq_json_double(j, db); /* +inf and NaN: null */
}

static const char *type_name(int dtype)
{
    const char *q = mq_qtype_name(dtype);
    return q ? q : mq_dtype_name(dtype);
}

/* Characters after which the shell would need quotes. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:@+%",
                     *p))
            return 1;
    return 0;
}

static int write_command(struct mq_json *j, const struct mq_html_report *r)
{
    size_t size = strlen(r->command) + 1;
    for (int i = 0; i < r->n_args; i++)
        size += 4 * strlen(r->args[i]) + 3;
    char *line = malloc(size);
    if (!line)
        return -1;
    char *p = line;
    p += sprintf(p, "%s", r->command);
    for (int i = 0; i < r->n_args; i++) {
        const char *a = r->args[i];
        *p++ = ' ';
        if (!needs_quotes(a)) {
            p += sprintf(p, "%s", a);
            continue;
        }
        *p++ = '\'';
        for (; *a; a++) {
            if (*a == '\'')
                p += sprintf(p, "'\\''");
            else
                *p++ = *a;
        }
        *p++ = '\'';
    }
    *p = '\0';
    key_string(j, "command", line);
    free(line);
    return 0;
}

/* ---------------------------------------------------------- quantization */

static void write_scheme(struct mq_json *j, const struct mq_report *q)
{
    const struct mq_quant_options *o = q->options;
    mq_json_key(j, "scheme");
    mq_json_object_begin(j);
    key_string(j, "profile", q->profile);
    key_string(j, "activation_type", type_name(o->activation_type));
    mq_json_key_bool(j, "activation_symmetric", o->symmetric_activations);
    key_string(j, "weight_type", type_name(o->weight_type));
    mq_json_key_bool(j, "per_channel", o->per_channel);
    mq_json_key_bool(j, "reduce_range", o->reduce_range);
    mq_json_object_end(j);

    mq_json_key(j, "sizes");
    mq_json_object_begin(j);
    mq_json_key_uint(j, "model_before", q->model_bytes_before);
    mq_json_key_uint(j, "model_after", q->model_bytes_after);
    mq_json_key_uint(j, "initializers_before", q->weight_bytes_before);
    mq_json_key_uint(j, "initializers_after", q->weight_bytes_after);
    mq_json_object_end(j);

    mq_json_key(j, "calibration");
    mq_json_object_begin(j);
    key_string(j, "method", q->ranges ? q->ranges->method : NULL);
    if (q->ranges && q->ranges->method_id == MQ_CALIB_PERCENTILE)
        mq_json_key_double(j, "percentile", q->ranges->percentile);
    mq_json_key_uint(j, "samples", q->ranges ? q->ranges->samples : 0);
    key_string(j, "source", q->calibration_source);
    mq_json_key(j, "paths");
    mq_json_array_begin(j);
    for (int i = 0; i < q->n_calibration_paths; i++)
        mq_json_string(j, q->calibration_paths[i]);
    mq_json_array_end(j);
    mq_json_object_end(j);
}

/*
 * The page's four classes: a node left float because it was not selected or
 * has nothing quantized around it is "float" (expected); one selected but
 * kept float for another reason is "skipped" (news).
 */
static const char *node_class(const struct mq_node_choice *c)
{
    if (c->status == MQ_NODE_QUANTIZED || c->status == MQ_NODE_SELECTED)
        return "quantized";
    if (c->status == MQ_NODE_FOLDED)
        return "folded";
    if (!c->reason || strstr(c->reason, "not selected") || strstr(c->reason, "is not quantized") ||
        strstr(c->reason, "reaches no quantized"))
        return "float";
    return "skipped";
}

static const char *const classes[] = {"quantized", "folded", "skipped", "float"};
#define N_CLASSES 4

struct op_count {
    const char *op;
    int count[N_CLASSES];
};

static int write_nodes(struct mq_json *j, const struct mq_selection *sel)
{
    int n_ops = 0;
    struct op_count *ops = calloc((size_t)sel->n + 1, sizeof *ops);
    if (!ops)
        return -1;
    mq_json_key(j, "nodes");
    mq_json_array_begin(j);
    for (int i = 0; i < sel->n; i++) {
        const struct mq_node_choice *c = &sel->items[i];
        const char *cls = node_class(c);
        mq_json_array_begin(j);
        mq_json_string(j, c->name);
        mq_json_string(j, c->op_type);
        mq_json_string(j, cls);
        mq_json_string(j, c->reason ? c->reason : "");
        mq_json_string(j, c->graph ? c->graph : "");
        mq_json_array_end(j);
        /* Op types in order of first appearance; few distinct ones, so a linear search. */
        int k = 0;
        while (k < n_ops && strcmp(ops[k].op, c->op_type) != 0)
            k++;
        if (k == n_ops)
            ops[n_ops++].op = c->op_type;
        for (int m = 0; m < N_CLASSES; m++)
            if (strcmp(cls, classes[m]) == 0)
                ops[k].count[m]++;
    }
    mq_json_array_end(j);
    mq_json_key(j, "ops");
    mq_json_array_begin(j);
    for (int k = 0; k < n_ops; k++) {
        mq_json_array_begin(j);
        mq_json_string(j, ops[k].op);
        for (int m = 0; m < N_CLASSES; m++)
            mq_json_int(j, ops[k].count[m]);
        mq_json_array_end(j);
    }
    mq_json_array_end(j);
    free(ops);
    return 0;
}

/* The histogram's counts gathered into DISPLAY_BINS bins over the observed extremes. */
static void write_histogram(struct mq_json *j, const struct mq_tensor_range *cr)
{
    const struct mq_histogram *h = cr->histogram;
    double lo = cr->observed_min, hi = cr->observed_max;
    if (!h || h->exponent == MQ_HISTOGRAM_EMPTY || !(hi > lo) || !isfinite(hi - lo))
        return;
    uint64_t bins[DISPLAY_BINS] = {0};
    double width = (hi - lo) / DISPLAY_BINS;
    for (int k = 0; k < MQ_HISTOGRAM_BINS; k++) {
        if (!h->counts[k])
            continue;
        double centre = 0.5 * (mq_histogram_edge(h, k) + mq_histogram_edge(h, k + 1));
        double at = floor((centre - lo) / width);
        int b = at < 0 ? 0 : at >= DISPLAY_BINS ? DISPLAY_BINS - 1 : (int)at;
        bins[b] += h->counts[k];
    }
    mq_json_key(j, "hist");
    mq_json_object_begin(j);
    mq_json_key_double(j, "lo", lo);
    mq_json_key_double(j, "hi", hi);
    mq_json_key(j, "counts");
    mq_json_array_begin(j);
    for (int b = 0; b < DISPLAY_BINS; b++)
        mq_json_uint(j, bins[b]);
    mq_json_array_end(j);
    mq_json_object_end(j);
}

static void write_cut(struct mq_json *j, const char *label, double lo, double hi,
                      const struct mq_tensor_range *cr)
{
    /* As calibration does: a histogram method's range never exceeds what was seen. */
    lo = fmax(lo, cr->observed_min);
    hi = fmin(hi, cr->observed_max);
    mq_json_array_begin(j);
    mq_json_string(j, label);
    mq_json_double(j, lo);
    mq_json_double(j, hi);
    mq_json_array_end(j);
}

/* The other methods' ranges, from the same histogram, to set the chosen one against. */
static void write_cutoffs(struct mq_json *j, const struct mq_ranges *ranges,
                          const struct mq_tensor_range *cr, int all)
{
    const struct mq_histogram *h = cr->histogram;
    if (!h || h->exponent == MQ_HISTOGRAM_EMPTY)
        return;
    enum mq_calib_method chosen = ranges->method_id;
    double lo, hi;
    char label[64];
    mq_json_key(j, "cuts");
    mq_json_array_begin(j);
    double p = chosen == MQ_CALIB_PERCENTILE ? 99.9 : MQ_CALIB_DEFAULT_PERCENTILE;
    if (chosen != MQ_CALIB_PERCENTILE || p != ranges->percentile) {
        if (mq_histogram_percentile(h, p, ranges->symmetric, &lo, &hi) == 0) {
            snprintf(label, sizeof label, "percentile %g", p);
            write_cut(j, label, lo, hi, cr);
        }
    }
    if (all && chosen != MQ_CALIB_ENTROPY && mq_histogram_entropy(h, &lo, &hi) == 0)
        write_cut(j, "entropy", lo, hi, cr);
    if (all && chosen != MQ_CALIB_MSE &&
        mq_histogram_mse(h, cr->observed_min, cr->observed_max, ranges->symmetric, &lo, &hi) == 0)
        write_cut(j, "mse", lo, hi, cr);
    mq_json_array_end(j);
}

static void write_params(struct mq_json *j, const struct mq_qtensor_record *t)
{
    if (t->n_channels <= 0)
        return;
    float smin = t->scales[0], smax = t->scales[0];
    int32_t zmin = t->zero_points[0], zmax = t->zero_points[0];
    for (int c = 1; c < t->n_channels; c++) {
        smin = fminf(smin, t->scales[c]);
        smax = fmaxf(smax, t->scales[c]);
        zmin = t->zero_points[c] < zmin ? t->zero_points[c] : zmin;
        zmax = t->zero_points[c] > zmax ? t->zero_points[c] : zmax;
    }
    mq_json_key(j, "scale");
    if (t->axis >= 0) {
        mq_json_array_begin(j);
        mq_json_float(j, smin);
        mq_json_float(j, smax);
        mq_json_array_end(j);
    } else {
        mq_json_float(j, smin);
    }
    mq_json_key(j, "zero_point");
    if (t->axis >= 0) {
        mq_json_array_begin(j);
        mq_json_int(j, zmin);
        mq_json_int(j, zmax);
        mq_json_array_end(j);
    } else {
        mq_json_int(j, zmin);
    }
    if (t->axis >= 0) {
        mq_json_key_int(j, "axis", t->axis);
        mq_json_key_int(j, "channels", t->n_channels);
    }
}

static void write_tensors(struct mq_json *j, const struct mq_report *q)
{
    const struct mq_quant_result *res = q->result;
    int all_cutoffs = res->n_tensors <= MAX_TENSORS_ALL_CUTOFFS;
    mq_json_key(j, "tensors");
    mq_json_array_begin(j);
    for (int i = 0; i < res->n_tensors; i++) {
        const struct mq_qtensor_record *t = &res->tensors[i];
        mq_json_object_begin(j);
        key_string(j, "name", t->name);
        key_string(j, "graph", t->graph);
        key_string(j, "role", mq_qtensor_role_name(t->role));
        key_string(j, "type", type_name(t->qtype));
        if (t->has_range) {
            mq_json_key(j, "range");
            mq_json_array_begin(j);
            mq_json_float(j, t->range_min);
            mq_json_float(j, t->range_max);
            mq_json_array_end(j);
        }
        write_params(j, t);
        if (t->shared_with)
            key_string(j, "shared_with", t->shared_with);
        if (t->note)
            key_string(j, "note", t->note);
        int64_t worst_sample = 0;
        double worst = t->role == MQ_QT_ACTIVATION && q->options->stats
                           ? mq_quant_stats_worst_sqnr(q->options->stats, t->name, &worst_sample)
                           : NAN;
        if (!isnan(worst)) {
            mq_json_key(j, "worst_db");
            db_value(j, worst);
        }
        double floor_db = t->role == MQ_QT_ACTIVATION && q->options->stats && isnan(worst)
                              ? mq_quant_stats_worst_sqnr_floor(q->options->stats, t->name, NULL)
                              : NAN;
        if (!isnan(floor_db)) {
            mq_json_key(j, "worst_db_at_least");
            db_value(j, floor_db);
        }
        const struct mq_tensor_range *cr =
            q->ranges && t->role == MQ_QT_ACTIVATION && !t->shared_with
                ? mq_ranges_find(q->ranges, t->name) : NULL;
        if (cr && cr->count) {
            mq_json_key(j, "obs");
            mq_json_array_begin(j);
            mq_json_float(j, cr->observed_min);
            mq_json_float(j, cr->observed_max);
            mq_json_array_end(j);
            write_histogram(j, cr);
            write_cutoffs(j, q->ranges, cr, all_cutoffs);
        }
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
}

/* ------------------------------------------------------------ comparison */

static int by_order(const void *x, const void *y)
{
    const struct mq_divergence_layer *a = *(const struct mq_divergence_layer *const *)x;
    const struct mq_divergence_layer *b = *(const struct mq_divergence_layer *const *)y;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int write_compare(struct mq_json *j, const struct mq_html_report *r)
{
    const struct mq_divergence_result *c = r->compare;
    mq_json_key(j, "outputs");
    mq_json_array_begin(j);
    for (int i = 0; c && i < c->n_outputs; i++) {
        const struct mq_divergence_output *o = &c->outputs[i];
        mq_json_object_begin(j);
        key_string(j, "name", o->name);
        mq_json_key(j, "sqnr_db");
        db_value(j, mq_error_stats_sqnr_db(&o->stats));
        mq_json_key(j, "worst_sample_sqnr_db");
        db_value(j, o->stats.min_sample_sqnr_db);
        mq_json_key_double(j, "cosine", mq_error_stats_cosine(&o->stats));
        mq_json_key_double(j, "max_abs_error", o->stats.max_abs_error);
        mq_json_key_bool(j, "exact", o->stats.sum_err2 == 0 && o->stats.nonfinite_mismatch == 0);
        if (o->class_scores && o->top1.rows) {
            mq_json_key_double(j, "top1", (double)o->top1.agree / (double)o->top1.rows);
            mq_json_key_int(j, "top1_rows", o->top1.rows);
        }
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
    if (!c || !r->compare_per_layer) {
        key_string(j, "error_note", r->compare_note ? r->compare_note
                                                    : "The per-layer error was not measured.");
        return 0;
    }
    const struct mq_divergence_layer **layers = calloc((size_t)c->n_layers + 1, sizeof *layers);
    if (!layers)
        return -1;
    for (int i = 0; i < c->n_layers; i++)
        layers[i] = &c->layers[i];
    qsort(layers, (size_t)c->n_layers, sizeof *layers, by_order);
    mq_json_key(j, "error");
    mq_json_object_begin(j);
    mq_json_key_int(j, "samples", c->samples);
    key_string(j, "inputs", r->compare_inputs);
    mq_json_key(j, "layers");
    mq_json_array_begin(j);
    for (int i = 0; i < c->n_layers; i++) {
        const struct mq_divergence_layer *l = layers[i];
        mq_json_array_begin(j);
        mq_json_int(j, l->order);
        mq_json_string(j, l->node ? l->node : "?");
        mq_json_string(j, l->op_type ? l->op_type : "?");
        mq_json_string(j, l->tensor_a);
        db_value(j, mq_error_stats_sqnr_db(&l->stats));
        db_value(j, l->node_sqnr_db);
        db_value(j, l->input_relative_noise > 0 ? -10.0 * log10(l->input_relative_noise)
                                                : INFINITY);
        mq_json_array_end(j);
    }
    mq_json_array_end(j);
    mq_json_object_end(j);
    free(layers);
    return 0;
}

int mq_html_write_data(FILE *out, const struct mq_html_report *r)
{
    const struct mq_report *q = r->quant;
    struct mq_json j;
    mq_json_init(&j, out, 0);
    mq_json_object_begin(&j);
    key_string(&j, "kind", q ? "quantize" : "compare");
    key_string(&j, "model", q ? q->input_path : r->model_a);
    key_string(&j, "output", q ? q->output_path : NULL);
    key_string(&j, "model_b", q ? q->output_path : r->model_b);
    int rc = write_command(&j, r);
    if (rc == 0 && q) {
        write_scheme(&j, q);
        int quantized = 0, folded = 0, nodes = q->selection->n;
        for (int i = 0; i < nodes; i++) {
            quantized += q->selection->items[i].status == MQ_NODE_QUANTIZED;
            folded += q->selection->items[i].status == MQ_NODE_FOLDED;
        }
        mq_json_key(&j, "summary");
        mq_json_object_begin(&j);
        mq_json_key_int(&j, "nodes", nodes);
        mq_json_key_int(&j, "quantized", quantized);
        mq_json_key_int(&j, "folded", folded);
        mq_json_key_int(&j, "skipped", nodes - quantized - folded);
        mq_json_key_int(&j, "quantized_tensors", q->result->n_tensors);
        mq_json_key_int(&j, "float_tensors", q->result->n_skipped);
        mq_json_object_end(&j);
        rc = write_nodes(&j, q->selection);
        if (rc == 0)
            write_tensors(&j, q);
    }
    if (rc == 0)
        rc = write_compare(&j, r);
    if (rc == 0 && r->n_checks) {
        mq_json_key(&j, "checks");
        mq_json_array_begin(&j);
        for (int i = 0; i < r->n_checks; i++) {
            const struct mq_html_check *k = &r->checks[i];
            mq_json_object_begin(&j);
            key_string(&j, "output", k->output);
            key_string(&j, "metric", k->metric);
            mq_json_key_double(&j, "value", k->value);
            mq_json_key_double(&j, "target", k->target); /* NaN: null */
            mq_json_key(&j, "pass");
            if (k->pass < 0)
                mq_json_null(&j);
            else
                mq_json_bool(&j, k->pass);
            mq_json_object_end(&j);
        }
        mq_json_array_end(&j);
    }
    mq_json_object_end(&j);
    return rc || j.failed ? -1 : 0;
}
