/*
 * `onnx-monoquant IN.onnx OUT.onnx --calib DIR [options]`: select the nodes,
 * calibrate (or load saved ranges), rewrite the graph in QDQ form, and save
 * the model and the report only when every step succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib/calibrate.h"
#include "calib/driver.h"
#include "cli/cli.h"
#include "cli/quantize_weights.h"
#include "cli/sample_args.h"
#include "graph/canonical.h"
#include "interp/plan.h"
#include "core/tensor.h"
#include "model/model.h"
#include "quant/channel_pad.h"
#include "quant/prepare.h"
#include "quant/check.h"
#include "quant/fusion_guard.h"
#include "quant/opset.h"
#include "quant/ort_fusion.h"
#include "quant/params.h"
#include "quant/pool_conv.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "quant/shape_probe.h"
#include "quant/equalize_fold.h"
#include "quant/sample_stats.h"
#include "quant/target_search.h"
#include "quant/weight_rounding.h"
#include "report/html.h"
#include "report/divergence.h"
#include "report/report.h"
#include "util/fileio.h"
#include "util/text.h"

#include "cli/quantize_args.h"
int mq_cli_quantize(int argc, char **argv);


/*
 * The scheme needs a minimum opset (per-channel weights 13, 16/4-bit types
 * 21): older models are converted op by op, never relabelled.
 */
/* The opset the scheme needs (0: any) and why, for the prepare step's conversion. */
static int required_opset(const struct mq_quant_options *o, enum mq_fallback_type fallback,
                          const char **reason)
{
    int need = mq_quant_required_opset(o);
    *reason = mq_quant_required_opset_reason(o);
    if (mq_fallback_required_opset(fallback) > need) {
        need = mq_fallback_required_opset(fallback);
        *reason = "--fallback int16 needs 16-bit QuantizeLinear (opset 21)";
    }
    return need;
}

static uint64_t initializer_bytes(const Onnx__GraphProto *g, int depth)
{
    uint64_t total = 0;
    if (!g || depth > 64)
        return 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        total += onnx__tensor_proto__get_packed_size(g->initializer[i]);
    for (size_t n = 0; n < g->n_node; n++)
        for (size_t a = 0; a < g->node[n]->n_attribute; a++) {
            const Onnx__AttributeProto *attr = g->node[n]->attribute[a];
            total += initializer_bytes(attr->g, depth + 1);
            for (size_t k = 0; k < attr->n_graphs; k++)
                total += initializer_bytes(attr->graphs[k], depth + 1);
        }
    return total;
}

struct progress_state {
    int enabled, shown;
};

static void show_progress(void *user, const struct mq_calib_progress *p)
{
    struct progress_state *s = user;
    if (!s->enabled)
        return;
    fprintf(stderr, "\rcalibrating: %lld/%lld samples\033[K", (long long)p->done,
            (long long)p->total);
    fflush(stderr);
    s->shown = 1;
}

/* --jobs, else the CPU count: for calibration and the check alike. */
static int jobs_of(const struct mq_quantize_args *a)
{
    return a->calib_options.jobs > 0 ? a->calib_options.jobs : mq_calib_default_jobs();
}

/*
 * The float model's outputs, which calibration computes on every sample anyway, kept for the
 * check and the search when they run on the same samples (no --eval): they then run only the
 * quantized model.  Calibration runs the prepared graph (folded, padded, equalized or about to
 * be: exact rewrites), so its outputs are the input model's up to float rounding in the last bits.
 */
struct reference_fill {
    struct mq_divergence_cache *cache;
    int n_outputs;      /* the input model's graph outputs */
    int *from;          /* per input-model output, the calibration plan's output index */
    int *dtypes;        /* per input-model output, its declared type (0: not declared) */
};

static int keep_reference(void *user, int64_t sample, const struct mq_tensor *outputs,
                          int n_outputs, struct mq_error *err)
{
    (void)err;
    struct reference_fill *f = user;
    struct mq_tensor ordered[64];
    for (int k = 0; k < f->n_outputs; k++) {
        if (f->from[k] >= n_outputs)
            return MQ_OK;
        ordered[k] = outputs[f->from[k]];
        /* a type the prepare step changed: the float model computes something else there */
        if (f->dtypes[k] && f->dtypes[k] != ordered[k].dtype)
            return MQ_OK;
    }
    mq_divergence_cache_store(f->cache, sample, ordered, f->n_outputs);
    return MQ_OK;
}

/* Sets up `f` when every output of `fp32` is an output of the calibration plan; else leaves
   f->from NULL (no filling: the check runs the float model itself). */
static void reference_fill_setup(struct reference_fill *f, const struct mq_model *fp32,
                                 const struct mq_plan *plan, const struct mq_calib_source *source)
{
    const Onnx__GraphProto *g = fp32 ? fp32->proto->graph : NULL;
    if (!g || !f->cache || g->n_output == 0 || g->n_output > 64)
        return;
    int *from = calloc(g->n_output * 2, sizeof *from);
    if (!from)
        return;
    int *dtypes = from + g->n_output;
    for (size_t k = 0; k < g->n_output; k++) {
        from[k] = -1;
        dtypes[k] = mq_value_info_dtype(g->output[k]);
        for (int j = 0; j < mq_plan_output_count(plan); j++)
            if (strcmp(mq_str(mq_plan_output(plan, j)->name), mq_str(g->output[k]->name)) == 0)
                from[k] = j;
        if (from[k] < 0) {
            free(from);
            return;
        }
    }
    f->n_outputs = (int)g->n_output;
    f->from = from;
    f->dtypes = dtypes;
    mq_divergence_cache_prepare(f->cache, mq_calib_source_count(source), f->n_outputs);
}

/*
 * Ranges for the tensors to observe: calibration on the samples, or saved
 * files.  The one place that talks to calib/.  `reference` (may be NULL): the
 * float model whose outputs the calibration run keeps in `cache` on the way; `stats` (may be
 * NULL): the statistics the calibration run gathers on the way (quant/sample_stats.h).
 */
static int get_ranges(struct mq_quantize_args *a, struct mq_model *model,
                      char **names, int n_names, struct mq_quant_prepare_result *prep,
                      const struct mq_model *reference, struct mq_divergence_cache *cache,
                      struct mq_quant_stats *stats, struct mq_ranges *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    if (a->n_loads) {
        int rc = mq_ranges_load_all(a->loads, a->n_loads, out, err);
        /* A method or percentile other than the file's: derive the ranges again. */
        int other_method = a->method_name && out->method_id != a->calib_options.method;
        int other_percentile = a->calib_options.percentile > 0 &&
                               (a->method_name ? a->calib_options.method : out->method_id) ==
                                   MQ_CALIB_PERCENTILE &&
                               a->calib_options.percentile != out->percentile;
        if (!a->method_name)
            a->calib_options.method = out->method_id;
        if (rc == MQ_OK && (other_method || other_percentile)) {
            if (mq_calib_method_uses_histogram(a->calib_options.method) && !out->has_histograms)
                rc = mq_error_set(err, "--calibrate %s needs histograms, which '%s' does not "
                                  "hold (it was calibrated with %s)",
                                  mq_calib_method_name(a->calib_options.method),
                                  a->loads[0], out->method);
            else
                rc = mq_ranges_finalize(out, a->calib_options.method,
                                        a->calib_options.percentile,
                                        a->calib_options.symmetric,
                                        jobs_of(a), err);
        }
        if (rc)
            mq_ranges_free(out);
        return rc;
    }
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    struct mq_name_list list = {0};
    /* The plain plan: packed Conv weights would save 8-13 % of the calibration time on
       fastestdet and mlsd, but move values in their last bits, the ranges with them, and what
       the accuracy search decides (squeezenet's --target-sqnr 30 kept 7 int8 Convs of 26
       instead of 8). */
    int rc = mq_plan_build(model, &plan, err);
    if (rc == MQ_OK) {
        rc = mq_calib_source_open_for_plan_with(a->calib, plan, &(struct mq_calib_open_options){
            a->limit, 0, 0, &a->preprocess}, &source, err);
        char note[600];
        if (rc == MQ_OK && !a->quiet && (mq_cli_ignored_note(source, note, sizeof note), *note))
            mq_text_printf(stderr, "calibration data: %s\n", note + 2);
    }
    for (int i = 0; rc == MQ_OK && i < n_names; i++)
        rc = mq_name_list_add(&list, names[i], err);
    if (rc == MQ_OK) {
        mq_name_list_finish(&list);
        struct mq_calib_options options = a->calib_options;
        struct progress_state progress = {!a->quiet && isatty(STDERR_FILENO), 0};
        options.progress = show_progress;
        options.progress_user = &progress;
        struct reference_fill fill = {cache, 0, NULL, NULL};
        reference_fill_setup(&fill, reference, plan, source);
        if (fill.from) {
            options.outputs = keep_reference;
            options.outputs_user = &fill;
        }
        /* the equalization's measure, when the prepare step left it to this pass, and the
           statistics the rewrite wants besides the ranges (quant/sample_stats.h) */
        const struct mq_calib_extra *extras[2];
        options.n_extra = 0;
        if (prep && mq_quant_prepare_calib_extra(prep))
            extras[options.n_extra++] = mq_quant_prepare_calib_extra(prep);
        if (stats)
            extras[options.n_extra++] = mq_quant_stats_extra(stats)[0];
        options.extra = extras;
        rc = mq_calibrate(plan, source, &list, &options, out, err);
        /* then the graph equalized, and its rescaled tensors' ranges with it; the statistics
           of the same pass saw those tensors before equalizing and follow them */
        if (rc == MQ_OK && prep && stats)
            mq_quant_equalize_fold_follow(prep->equalize_pending, mq_quant_stats_rescale, stats);
        if (rc == MQ_OK && prep)
            rc = mq_quant_prepare_finish(model, prep, out, err);
        free(fill.from);
        if (progress.shown)
            fputs("\r\033[K", stderr);
    }
    /* What equalized the graph goes with its ranges: loading them makes the same graph again. */
    if (rc == MQ_OK && prep)
        rc = mq_ranges_merge_channel_maxima(out, &prep->channel_maxima, err);
    if (rc == MQ_OK && a->save_ranges)
        rc = mq_ranges_save(out, a->save_ranges, err);
    if (rc)
        mq_ranges_free(out);
    mq_name_list_free(&list);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    return rc;
}

/* Whether the quantizer wants statistics of the samples (quant/sample_stats.h). */
static int wants_stats(const struct mq_quantize_args *a)
{
    return a->calib && (a->quant.bias_correction || a->quant.min_sample_sqnr_db > 0.0);
}

/*
 * The statistics once the ranges are known.  Gathered by calibration (*out on entry): settled,
 * and a second pass over the samples only for the activations the SQNR floor leaves undecided.
 * Otherwise (ranges from a file) the whole second pass.  Nothing to do without samples
 * (--load-ranges alone) or when both rules are off.
 */
static int get_stats(const struct mq_quantize_args *a, const struct mq_model *model,
                     const struct mq_selection *sel, char **names, int n_names,
                     const struct mq_ranges *ranges, struct mq_quant_stats **out,
                     struct mq_error *err)
{
    int n_undecided = 0;
    if (*out) {
        int rc = mq_quant_stats_settle(*out, ranges, &a->quant, &n_undecided, err);
        if (rc || n_undecided == 0)
            return rc;
    }
    if (!*out && !wants_stats(a))
        return MQ_OK;
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    int rc = mq_plan_build_with_options(model, &MQ_PLAN_OBSERVED, &plan, err);
    if (rc == MQ_OK) {
        rc = mq_calib_source_open_for_plan_with(a->calib, plan, &(struct mq_calib_open_options){
            a->limit, 0, 0, &a->preprocess}, &source, err);
    }
    if (rc == MQ_OK && *out)
        rc = mq_quant_stats_measure_undecided(*out, plan, source, jobs_of(a), err);
    else if (rc == MQ_OK)
        rc = mq_quant_stats_collect(plan, source, model->proto, sel, names, n_names, ranges,
                                    &a->quant, jobs_of(a), out, err);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    return rc;
}

/* --weight-rounding gptq: the layer inputs' second moments on the samples (quant/weight_rounding.h). */
static int get_rounding(const struct mq_quantize_args *a, const struct mq_model *model,
                        struct mq_weight_rounding **out, struct mq_error *err)
{
    *out = NULL;
    /* Given, or unless told otherwise for the search to try. */
    int want = a->gptq_rounding == 1 ||
               (a->gptq_rounding < 0 && (a->target.has_sqnr || a->target.has_agreement));
    if (!a->calib || !want)
        return MQ_OK;
    struct mq_plan *plan = NULL;
    struct mq_calib_source *source = NULL;
    int rc = mq_plan_build(model, &plan, err);
    if (rc == MQ_OK)
        rc = mq_calib_source_open_for_plan_with(a->calib, plan, &(struct mq_calib_open_options){
            a->limit, 0, 0, &a->preprocess}, &source, err);
    if (rc == MQ_OK)
        rc = mq_weight_rounding_collect(plan, source, model->proto, out, err);
    mq_calib_source_free(source);
    mq_plan_free(plan);
    return rc;
}

/*
 * The samples the check and the search run on: --eval, else the calibration samples.  The
 * FP32 outputs on them are kept in `reference`, shared by the search and the final check.
 */
static struct mq_check_options eval_options(const struct mq_quantize_args *a,
                                            struct mq_divergence_cache *reference)
{
    struct mq_check_options o = {a->eval ? a->eval : a->calib,
                                 a->eval ? a->eval_limit : a->limit, 0, &a->preprocess,
                                 reference, jobs_of(a)};
    return o;
}

static void show_search_progress(void *user, const struct mq_target_progress *p)
{
    struct progress_state *s = user;
    if (!s->enabled)
        return;
    fprintf(stderr, "\rsearching: pass %d of at most %d (%s), %d nodes float\033[K", p->pass,
            p->max_passes, p->step, p->n_float);
    fflush(stderr);
    s->shown = 1;
}

/*
 * --target-sqnr / --target-agreement: the search (quant/target_search.h)
 * works on copies of the model as it is now, ready for the rewrite; its
 * fallback nodes then join the exclusions and `sel` is made again.
 */
static int run_search(const struct mq_quantize_args *a, struct mq_divergence_cache *reference,
                      const struct mq_model *model,
                      const struct mq_model *fp32, const struct mq_weight_rounding *other_rounding,
                      struct mq_selection *sel,
                      const struct mq_ranges *ranges, struct mq_target_search_result *out,
                      struct mq_error *err)
{
    size_t size = onnx__model_proto__get_packed_size(model->proto);
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory (%zu bytes for a copy of the "
                             "model)", size);
    onnx__model_proto__pack(model->proto, bytes);
    struct mq_select_options so = {&a->op_types, &a->exclude_op_types, &a->include_nodes,
                                   &a->exclude_nodes, 1};
    struct progress_state progress = {!a->quiet && isatty(STDERR_FILENO), 0};
    struct mq_target_search_options o = {bytes, size, model->dir, &so, ranges, &a->quant, fp32,
                                         eval_options(a, reference), a->target, a->fallback, other_rounding,
                                         show_search_progress, &progress};
    int rc = mq_target_search(&o, out, err);
    if (progress.shown)
        fputs("\r\033[K", stderr);
    free(bytes);
    if (rc || out->n_fallback == 0)
        return rc;
    struct mq_pattern_list exclusions = {0};
    rc = mq_target_exclusions(out, &a->exclude_nodes, &exclusions, err);
    if (rc == MQ_OK) {
        so.exclude_nodes = &exclusions;
        mq_selection_free(sel);
        rc = mq_select_nodes(model->proto, &so, sel, err);
    }
    for (int i = 0; rc == MQ_OK && i < sel->n; i++)
        for (int k = 0; k < out->n_fallback; k++)
            if (strcmp(sel->items[i].name, out->fallback[k].name) == 0)
                mq_choice_set(&sel->items[i], MQ_NODE_SKIPPED,
                              "left float by the accuracy search (--target-%s)",
                              a->target.has_sqnr ? "sqnr" : "agreement");
    mq_pattern_list_free(&exclusions);
    return rc;
}

/* --fallback int16 on the nodes the search left float (main graph). */
static int apply_fallback(const struct mq_selection *sel, const struct mq_target_search_result *search,
                          const struct mq_ranges *ranges, Onnx__ModelProto *model,
                          struct mq_error *err)
{
    Onnx__NodeProto **nodes = calloc((size_t)sel->n + 1, sizeof *nodes);
    int n = 0;
    if (!nodes)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int i = 0; i < sel->n; i++)
        for (int k = 0; k < search->n_fallback; k++)
            if (sel->items[i].node && !*sel->items[i].graph &&
                sel->items[i].status == MQ_NODE_SKIPPED &&
                strcmp(sel->items[i].name, search->fallback[k].name) == 0) {
                nodes[n++] = (Onnx__NodeProto *)sel->items[i].node;
                break;
            }
    int rc = mq_fallback_apply_int16(model, nodes, n, ranges, err);
    free(nodes);
    return rc;
}

/*
 * The check of the quantized model against FP32; the per-node attribution
 * (a slower pass) only when some output is below the warning threshold.
 */
static int run_check(const struct mq_quantize_args *a, struct mq_divergence_cache *reference,
                     const struct mq_model *fp32,
                     const Onnx__ModelProto *quantized, struct mq_check_result *out,
                     struct mq_error *err)
{
    struct mq_check_options o = eval_options(a, reference);
    int tty = !a->quiet && isatty(STDERR_FILENO);
    if (tty)
        fprintf(stderr, "\rchecking against FP32\033[K"), fflush(stderr);
    int rc = mq_check_models(fp32, quantized, &o, out, err);
    int warns = 0;
    for (int i = 0; rc == MQ_OK && i < out->compare.n_outputs; i++)
        warns |= mq_check_output_warns(out, i);
    if (rc == MQ_OK && warns) {
        /*
         * The nodes to blame come from the first MQ_CHECK_BLAME_SAMPLES samples: a ranking,
         * which a few samples settle, where the per-node pass keeps every tensor of both
         * models and costs several times a plain run.  The figures stay every sample's.
         */
        struct mq_check_result blame;
        o.attribution = 1;
        if (o.limit <= 0 || o.limit > MQ_CHECK_BLAME_SAMPLES)
            o.limit = MQ_CHECK_BLAME_SAMPLES;
        if (tty)
            fprintf(stderr, "\rchecking against FP32, per node\033[K"), fflush(stderr);
        rc = mq_check_models(fp32, quantized, &o, &blame, err);
        if (rc == MQ_OK) {
            out->attribution = 1;
            out->blame_samples = blame.compare.samples;
            out->compare.layers = blame.compare.layers;
            out->compare.n_layers = blame.compare.n_layers;
            out->compare.n_matched_names = blame.compare.n_matched_names;
            blame.compare.layers = NULL;
            blame.compare.n_layers = 0;
            mq_check_result_free(&blame);
        }
    }
    if (tty)
        fputs("\r\033[K", stderr);
    return rc;
}

/* Ranges from another model would leave everything float without a word: refuse them. */
static int check_ranges_match(const struct mq_ranges *ranges, char **names, int n,
                              const struct mq_quantize_args *a, struct mq_error *err)
{
    if (n == 0)
        return MQ_OK;
    for (int i = 0; i < n; i++)
        if (mq_ranges_find(ranges, names[i]))
            return MQ_OK;
    if (a->n_loads)
        return mq_error_set(err, "none of the %d tensors to quantize has a range in '%s' "
                            "(ranges of another model?)", n, a->loads[0]);
    return mq_error_set(err, "calibration produced no range for any of the %d tensors to "
                        "quantize", n);
}

/*
 * The HTML report, written to a temporary file that appears with the model.
 * The error along the network: `measured` when a per-layer comparison of
 * the quantized model against FP32 was already made on the samples in
 * `measured_on` (NULL: none), else, with samples, one is made here on them
 * (as `compare --per-layer`), bounded by --calib-limit.
 */
static int write_html(const struct mq_quantize_args *a, int argc, char **argv,
                      const struct mq_report *report, const struct mq_model *quantized,
                      const struct mq_divergence_result *measured, const char *measured_on,
                      struct mq_atomic_file *file, struct mq_error *err)
{
    struct mq_model *fp32 = NULL;
    struct mq_divergence_result cmp;
    memset(&cmp, 0, sizeof cmp);
    int have_cmp = 0, rc = MQ_OK;
    if (!measured && a->calib) {
        struct mq_divergence_options co = {a->calib, a->limit, 1, &a->preprocess, NULL,
                                           jobs_of(a)};
        int progress = !a->quiet && isatty(STDERR_FILENO);
        if (progress)
            fputs("\rcomparing with the float model for --html\033[K", stderr), fflush(stderr);
        rc = mq_model_load(a->in, &fp32, err);
        if (rc == MQ_OK)
            rc = mq_graph_canonicalize(fp32->proto, NULL, NULL, err);
        if (rc == MQ_OK)
            rc = mq_divergence_compare(fp32, quantized, &co, &cmp, err);
        if (progress)
            fputs("\r\033[K", stderr);
        if (rc)
            mq_error_prefix(err, "--html: comparing with the float model: ");
        have_cmp = rc == MQ_OK;
    }
    struct mq_html_report h = {0};
    h.command = "onnx-monoquant";
    h.args = argv + 1;
    h.n_args = argc - 1;
    h.quant = report;
    h.compare = measured ? measured : have_cmp ? &cmp : NULL;
    h.compare_per_layer = 1;
    h.compare_inputs = measured ? measured_on : a->calib;
    h.compare_note = "No samples to measure the error on: the ranges came from a file "
                     "(use --calib, or `compare --html`).";
    if (rc == MQ_OK)
        rc = mq_atomic_open(file, a->html, err);
    if (rc == MQ_OK && mq_html_write(file->fp, &h)) {
        mq_atomic_abort(file);
        rc = mq_error_set(err, "writing '%s' failed", a->html);
    }
    if (have_cmp)
        mq_divergence_result_free(&cmp);
    mq_model_free(fp32);
    return rc;
}

int mq_cli_quantize(int argc, char **argv)
{
    struct mq_quantize_args a;
    memset(&a, 0, sizeof a);
    int status = mq_quantize_args_parse(argc, argv, &a);
    if (status >= 0) {
        mq_quantize_args_free(&a);
        return status;
    }
    if (a.weights.dynamic || a.weights.weight_only) {
        /* Weight modes keep activations float, so a path into a discrete decision sees no
           activation rounding: nothing on it needs to stay float. */
        struct mq_select_options wso = {&a.op_types, &a.exclude_op_types, &a.include_nodes,
                                        &a.exclude_nodes, 0};
        status = mq_cli_quantize_weights(a.in, a.out, a.calib, a.limit, a.quant.per_channel,
                                         a.quiet, &wso, &a.weights, &a.save);
        mq_quantize_args_free(&a);
        return status;
    }
    struct mq_error err = {{0}};
    struct mq_model *model = NULL;
    struct mq_selection sel = {0};
    struct mq_ranges ranges = {0};
    struct mq_quant_result result = {0};
    struct mq_quant_prepare_result prep = {0};
    struct mq_quant_stats *stats = NULL;
    struct mq_weight_rounding *rounding = NULL;
    struct mq_model *fp32 = NULL;
    struct mq_check_result check;
    struct mq_target_search_result search;
    /* FP32 outputs on the samples, computed once for the search and the check. */
    struct mq_divergence_cache reference = {0};
    int have_check = 0, have_search = 0;
    memset(&check, 0, sizeof check);
    memset(&search, 0, sizeof search);
    char **names = NULL;
    int n_names = 0, have_ranges = 0, have_sel = 0, have_result = 0;
    struct mq_report report;
    memset(&report, 0, sizeof report);

    /* No output may land on the input or on another output, links included. */
    int rc = mq_path_check_distinct(a.in, a.out, &err);
    if (rc == MQ_OK && a.save_ranges)
        rc = mq_path_check_distinct(a.in, a.save_ranges, &err);
    if (rc == MQ_OK && a.save_ranges)
        rc = mq_path_check_distinct(a.out, a.save_ranges, &err);
    if (rc == MQ_OK && a.report)
        rc = mq_path_check_distinct(a.in, a.report, &err);
    if (rc == MQ_OK && a.report)
        rc = mq_path_check_distinct(a.out, a.report, &err);
    if (rc == MQ_OK && a.report && a.save_ranges)
        rc = mq_path_check_distinct(a.report, a.save_ranges, &err);
    for (int k = 0; rc == MQ_OK && a.html && k < 4; k++) {
        const char *other[4] = {a.in, a.out, a.report, a.save_ranges};
        if (other[k])
            rc = mq_path_check_distinct(other[k], a.html, &err);
    }
    if (rc == MQ_OK)
        rc = mq_model_load(a.in, &model, &err);
    if (rc == MQ_OK) {
        report.model_bytes_before = onnx__model_proto__get_packed_size(model->proto);
        report.weight_bytes_before = initializer_bytes(model->proto->graph, 0);
        report.opset_before = mq_model_proto_opset(model->proto, "");
        rc = mq_qdq_check_model(model->proto, &err);
    }
    /* Loaded ranges first: they say how the graph they describe was equalized. */
    if (rc == MQ_OK && a.n_loads) {
        rc = get_ranges(&a, model, NULL, 0, NULL, NULL, NULL, NULL, &ranges, &err);
        have_ranges = rc == MQ_OK;
    }
    /* Before selection and calibration: both see the graph that gets quantized. */
    if (rc == MQ_OK) {
        struct mq_calib_open_options open = {a.limit, 0, 0, &a.preprocess};
        struct mq_quant_prepare_options po = {have_ranges ? &ranges : NULL, a.calib, &open,
                                              a.split_hardswish, 0, NULL, 0, 0, 0, 0, 0};
        po.jobs = a.calib_options.jobs;
        /* measured in the calibration pass, whose ranges it can rescale (minmax) */
        po.fold_equalization = !mq_calib_method_uses_histogram(a.calib_options.method);
        po.min_opset = required_opset(&a.quant, a.fallback, &po.opset_reason);
        /*
         * onnxruntime's fast int8 Conv wants symmetric int8 weights and 4k input channels.
         * Not under --target-*: the search's pass-limited trajectory runs on node names and
         * attribution that the inserted Pad changes (squeezenet at 30 dB kept 7 instead of 10
         * of 26 Convs in int8), and a Conv it leaves float gains nothing from the Pad.
         */
        po.pad_channels = !a.no_channel_pad && strcmp(a.profile, "ort-cpu") == 0 &&
                          a.quant.weight_type == MQ_DTYPE_INT8 && a.quant.symmetric_weights &&
                          !a.target.has_sqnr && !a.target.has_agreement;
        /* Its HardSigmoid then runs on x's codes (quant/hardsigmoid_codes.h). */
        po.hardswish_as_hardsigmoid = a.hardswish_codes;
        rc = mq_quant_prepare_graph(model, &po, &prep, &err);
    }
    if (rc == MQ_OK) {
        struct mq_select_options so = {&a.op_types, &a.exclude_op_types, &a.include_nodes,
                                       &a.exclude_nodes, 1};
        rc = mq_select_nodes(model->proto, &so, &sel, &err);
        have_sel = rc == MQ_OK;
    }
    if (rc == MQ_OK)
        rc = mq_select_keep_fusions(model->proto, &sel, &err);
    if (rc == MQ_OK)
        rc = mq_qdq_tensors_to_observe(model->proto, &sel, &a.quant, &names, &n_names, &err);
    int want_check = !a.no_check && (a.eval || a.calib);
    int want_search = a.target.has_sqnr || a.target.has_agreement;
    /* The reference: the input as given, before any conversion.  Loaded before calibration,
       which keeps its outputs when the check runs on the calibration samples. */
    if (rc == MQ_OK && (want_check || want_search))
        rc = mq_model_load(a.in, &fp32, &err);
    if (rc == MQ_OK && !have_ranges) {
        int same_samples = !a.eval && a.preprocess.n_carry == 0;
        /* The statistics the quantizer wants come with calibration, on the same pass. */
        if (wants_stats(&a))
            rc = mq_quant_stats_prepare(model->proto, &sel, names, n_names, &a.quant, &stats,
                                        &err);
        if (rc == MQ_OK)
            rc = get_ranges(&a, model, names, n_names, &prep, same_samples ? fp32 : NULL,
                            &reference, stats, &ranges, &err);
        have_ranges = rc == MQ_OK;
    }
    /*
     * Shapes from one sample for the rewrite (which MatMul outputs may stay float), after the
     * list above: ranges are observed for those outputs either way, so ranges saved here serve
     * a later --load-ranges, which learns the shapes from zeros of the declared input shapes.
     */
    struct mq_shape_probe *probe = NULL;
    struct mq_opset_hints shapes = {0};
    if (rc == MQ_OK && mq_qdq_wants_shapes(model->proto)) {
        struct mq_calib_open_options open = {a.limit, 0, 0, &a.preprocess};
        rc = mq_shape_probe_run(model, a.calib, &open, &probe, &err);
        shapes = mq_shape_probe_hints(probe);
        a.quant.shapes = probe ? &shapes : NULL;
    }
    if (rc == MQ_OK)
        rc = check_ranges_match(&ranges, names, n_names, &a, &err);
    if (rc == MQ_OK)
        rc = get_stats(&a, model, &sel, names, n_names, &ranges, &stats, &err);
    if (rc == MQ_OK)
        rc = get_rounding(&a, model, &rounding, &err);
    if (rc == MQ_OK) {
        a.quant.stats = stats;
        a.quant.weight_rounding = a.gptq_rounding == 1 ? rounding : NULL;
    }
    if (rc == MQ_OK && want_search) {
        rc = run_search(&a, &reference, model, fp32, a.gptq_rounding < 0 ? rounding : NULL, &sel, &ranges,
                        &search, &err);
        have_search = rc == MQ_OK;
        if (have_search && search.uses_other_rounding)
            a.quant.weight_rounding = rounding;
    }
    if (rc == MQ_OK) {
        rc = mq_qdq_rewrite(model->proto, &sel, &ranges, &a.quant, &result, &err);
        have_result = rc == MQ_OK;
    }
    if (rc == MQ_OK && have_search && a.fallback == MQ_FALLBACK_INT16)
        rc = apply_fallback(&sel, &search, &ranges, model->proto, &err);
    int n_pads_integer = 0;
    if (rc == MQ_OK && prep.channels_padded)
        rc = mq_channel_pads_to_integer(model->proto, &n_pads_integer, &err);
    int n_pools_as_conv = 0;
    if (rc == MQ_OK && !a.no_pool_conv && strcmp(a.profile, "ort-cpu") == 0) {
        struct mq_calib_open_options open = {a.limit, 0, 0, &a.preprocess};
        rc = mq_pools_as_conv_learning_shapes(model, a.calib, &open, &n_pools_as_conv, &err);
    }
    struct mq_ort_fusions fusions = {0};
    int have_fusions = 0;
    if (rc == MQ_OK) {
        rc = mq_ort_fusions_predict(model->proto->graph, &fusions, &err);
        have_fusions = rc == MQ_OK;
    }
    if (rc == MQ_OK && want_check) {
        rc = run_check(&a, &reference, fp32, model->proto, &check, &err);
        have_check = rc == MQ_OK;
    }

    struct mq_atomic_file report_file = {0}, html_file = {0};
    int report_open = 0, html_open = 0;
    if (rc == MQ_OK) {
        const char *paths[1] = {a.calib};
        report.input_path = a.in;
        report.output_path = a.out;
        report.profile = a.profile;
        report.options = &a.quant;
        report.selection = &sel;
        report.result = &result;
        report.folds = &prep.batchnorm_folds;
        report.pads_folded = prep.pads_folded;
        report.hardswish_split = prep.hardswish_split;
        report.hardswish_as_hardsigmoid = prep.hardswish_as_hardsigmoid;
        report.channels_padded = prep.channels_padded;
        report.pools_as_conv = n_pools_as_conv;
        report.depthwise_padded = prep.depthwise_padded;
        report.shuffles_as_gather = prep.shuffles_as_gather;
        report.batchnorms_as_conv = prep.batchnorms_as_conv;
        report.means_as_pool = prep.means_as_pool;
        report.ranges_equalized = prep.pairs_equalized;
        report.ranges = &ranges;
        report.calibration_source = a.calib ? "calib" : "ranges";
        report.calibration_paths = a.calib ? paths : a.loads;
        report.n_calibration_paths = a.calib ? 1 : a.n_loads;
        report.opset_after = mq_model_proto_opset(model->proto, "");
        report.model_bytes_after = onnx__model_proto__get_packed_size(model->proto);
        report.weight_bytes_after = initializer_bytes(model->proto->graph, 0);
        report.check = have_check ? &check : NULL;
        report.check_skipped = a.no_check ? "--no-check"
                               : !want_check ? "no samples (--load-ranges without --eval)"
                                             : NULL;
        report.target = want_search ? &a.target : NULL;
        report.search = have_search ? &search : NULL;
        report.fallback = a.fallback;
        report.ort_fusions = have_fusions ? &fusions : NULL;
        /* The report goes to a temporary file first: it appears together with the model. */
        if (a.report) {
            rc = mq_atomic_open(&report_file, a.report, &err);
            report_open = rc == MQ_OK;
            if (rc == MQ_OK && mq_report_write_json(report_file.fp, &report))
                rc = mq_error_set(&err, "writing '%s' failed", a.report);
        }
        if (rc == MQ_OK && a.html)
            rc = write_html(&a, argc, argv, &report, model,
                            report.check && report.check->attribution ? &report.check->compare
                                                                      : NULL,
                            report.check ? report.check->eval_dir : NULL, &html_file, &err);
        html_open = rc == MQ_OK && a.html;
        if (rc == MQ_OK)
            rc = mq_model_save(model->proto, a.out, &a.save, &err);
        if (html_open) {
            if (rc == MQ_OK)
                rc = mq_atomic_commit(&html_file, &err);
            else
                mq_atomic_abort(&html_file);
        }
        if (report_open) {
            if (rc == MQ_OK)
                rc = mq_atomic_commit(&report_file, &err);
            else
                mq_atomic_abort(&report_file);
        }
        if (rc == MQ_OK && !a.quiet)
            mq_report_print_summary(stderr, &report);
        /* Even --quiet does not hide a broken output. */
        if (rc == MQ_OK && a.quiet)
            mq_report_print_warnings(stderr, &report);
    }
    if (have_result)
        mq_quant_result_free(&result);
    if (have_fusions)
        mq_ort_fusions_free(&fusions);
    if (have_check)
        mq_check_result_free(&check);
    if (have_search)
        mq_target_search_result_free(&search);
    mq_model_free(fp32);
    mq_divergence_cache_free(&reference);
    mq_quant_prepare_result_free(&prep);
    mq_shape_probe_free(probe);
    mq_quant_stats_free(stats);
    mq_weight_rounding_free(rounding);
    if (have_ranges)
        mq_ranges_free(&ranges);
    if (have_sel)
        mq_selection_free(&sel);
    mq_string_list_free(names, n_names);
    mq_model_free(model);
    mq_quantize_args_free(&a);
    return mq_cli_report(rc, &err);
}
