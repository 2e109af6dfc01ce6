/*
 * The accuracy-driven search (quant/target_search.h): trials of the rewrite
 * with more nodes left float, each measured against the FP32 model.
 */
#include "quant/target_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/check_macs.h"
#include "quant/graph.h"
#include "report/metrics.h"

/*
 * Units re-quantized together in the last step.  Measured on the corpus
 * (int8 share of the multiply-accumulates, fastestdet/squeezenet/ultraface/
 * vit_mnist): 1 gives 27.9/49.2/92.3/71.9 %, 2 gives 24.9/53.8/93.4/70.8 %,
 * 4 gives 24.9/76.0/93.4/70.8 %, 8 gives 24.9/72.0/93.4/70.8 %.
 */
#define PRUNE_GROUP 4

/* One unit of the ranked list: nodes that go float together (a Conv and its folded Relu). */
struct unit {
    int *items;              /* indices into the base selection */
    int n;
    double node_sqnr_db;
    int64_t macs;
    int float_now;           /* in the current fallback set */
    int measured;
    double sqnr_if_quantized_db, agreement_if_quantized_pct;
};

struct base_node {
    char *name, *op_type, *output;
    enum mq_node_status status;
    enum mq_op_role role;
    int unit;                /* -1: not a candidate */
};

struct search {
    const struct mq_target_search_options *o;
    struct mq_quant_options quant;   /* the user's, with the rounding the search keeps */
    struct base_node *nodes;
    int n_nodes;
    struct unit *units;
    int n_units;
    struct mq_macs *macs;
    int passes;
    struct mq_divergence_cache reference; /* FP32 outputs, run once for all trials */
};

static void search_free(struct search *s)
{
    for (int i = 0; i < s->n_nodes; i++) {
        free(s->nodes[i].name);
        free(s->nodes[i].op_type);
        free(s->nodes[i].output);
    }
    free(s->nodes);
    for (int i = 0; i < s->n_units; i++)
        free(s->units[i].items);
    free(s->units);
    mq_check_macs_free(s->macs);
}

/* "a*b" -> "a\*b": a node name as a pattern that matches only itself. */
static char *escape_name(const char *name)
{
    size_t n = strlen(name);
    char *out = malloc(2 * n + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[]\\", name[i]))
            *p++ = '\\';
        *p++ = name[i];
    }
    *p = '\0';
    return out;
}

static int list_append(struct mq_pattern_list *l, const char *text)
{
    char **v = realloc(l->items, (size_t)(l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->items = v;
    if (!(l->items[l->n] = escape_name(text)))
        return -1;
    l->n++;
    return 0;
}

static int list_copy(struct mq_pattern_list *out, const struct mq_pattern_list *user)
{
    memset(out, 0, sizeof *out);
    if (!user || user->n == 0)
        return 0;
    out->items = calloc((size_t)user->n, sizeof *out->items);
    if (!out->items)
        return -1;
    for (int i = 0; i < user->n; i++) {
        if (!(out->items[i] = strdup(user->items[i])))
            return -1;
        out->n++;
    }
    return 0;
}

/* An output's SQNR less the target's multiple of its standard error. */
static double guarded_sqnr(const struct mq_target *t, const struct mq_check_result *r, int i)
{
    double se = t->stderr_multiple > 0 ? mq_error_stats_sqnr_stderr_db(&r->compare.outputs[i].stats)
                                        : 0.0;
    return mq_check_output_sqnr_db(r, i) - (se > 0 ? t->stderr_multiple * se : 0.0);
}

int mq_target_met(const struct mq_target *t, const struct mq_check_result *r)
{
    for (int i = 0; i < r->compare.n_outputs; i++) {
        if (t->has_sqnr && !(guarded_sqnr(t, r, i) >= t->sqnr_db))
            return 0;
        double agree = mq_check_output_agreement_pct(r, i);
        if (t->has_agreement && agree >= 0 && agree < t->agreement_pct)
            return 0;
    }
    return 1;
}

static double lowest_sqnr(const struct mq_check_result *r)
{
    double low = INFINITY;
    for (int i = 0; i < r->compare.n_outputs; i++)
        low = fmin(low, mq_check_output_sqnr_db(r, i));
    return low;
}

/* The lowest output SQNR's standard error. */
static double lowest_sqnr_stderr(const struct mq_check_result *r)
{
    double low = INFINITY, se = 0.0;
    for (int i = 0; i < r->compare.n_outputs; i++)
        if (mq_check_output_sqnr_db(r, i) < low) {
            low = mq_check_output_sqnr_db(r, i);
            se = mq_error_stats_sqnr_stderr_db(&r->compare.outputs[i].stats);
        }
    return se;
}

/*
 * How far a result is above the target (below: negative), the output furthest from it
 * deciding: dB for SQNR, percentage points for agreement, whichever is shorter.
 */
static double target_margin(const struct mq_target *t, const struct mq_check_result *r)
{
    double margin = INFINITY;
    for (int i = 0; i < r->compare.n_outputs; i++) {
        if (t->has_sqnr)
            margin = fmin(margin, guarded_sqnr(t, r, i) - t->sqnr_db);
        double a = mq_check_output_agreement_pct(r, i);
        if (t->has_agreement && a >= 0)
            margin = fmin(margin, a - t->agreement_pct);
    }
    return margin;
}

static double lowest_agreement(const struct mq_check_result *r)
{
    double low = -1;
    for (int i = 0; i < r->compare.n_outputs; i++) {
        double a = mq_check_output_agreement_pct(r, i);
        if (a >= 0 && (low < 0 || a < low))
            low = a;
    }
    return low;
}

static void progress(struct search *s, const char *step)
{
    if (!s->o->progress)
        return;
    int n_float = 0;
    for (int u = 0; u < s->n_units; u++)
        n_float += s->units[u].float_now ? s->units[u].n : 0;
    struct mq_target_progress p = {s->passes + 1, MQ_TARGET_MAX_PASSES, n_float, step};
    s->o->progress(s->o->progress_user, &p);
}

/* The float units' nodes, as the rewritten model holds them, get their fallback type. */
static int apply_fallback(struct search *s, Onnx__ModelProto *model, const struct mq_selection *sel,
                          struct mq_error *err)
{
    Onnx__NodeProto **nodes = calloc((size_t)sel->n + 1, sizeof *nodes);
    int n = 0;
    if (!nodes)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int i = 0; i < sel->n && i < s->n_nodes; i++) {
        int u = s->nodes[i].unit;
        /* Only main-graph nodes: the pairs go into the main graph. */
        if (u >= 0 && s->units[u].float_now && sel->items[i].node && !*sel->items[i].graph &&
            sel->items[i].status == MQ_NODE_SKIPPED)
            nodes[n++] = (Onnx__NodeProto *)sel->items[i].node;
    }
    int rc = mq_fallback_apply_int16(model, nodes, n, s->o->ranges, err);
    free(nodes);
    return rc;
}

/* Rewrites at most this often per trial while onnxruntime would quantize float nodes itself. */
#define MAX_REWRITES 4

/*
 * The float units whose weighted node onnxruntime would quantize by itself in this rewritten
 * model (quant/target_fallback.h) go back to int8: per channel, by us, rather than per tensor
 * by the runtime.  *changed says whether any did.
 */
static int unfloat_requantized(struct search *s, const Onnx__ModelProto *model,
                               const struct mq_selection *sel, int *changed, struct mq_error *err)
{
    Onnx__NodeProto **nodes = calloc((size_t)sel->n + 1, sizeof *nodes);
    int *units = calloc((size_t)sel->n + 1, sizeof *units);
    int *flag = calloc((size_t)sel->n + 1, sizeof *flag);
    int n = 0, rc = nodes && units && flag ? MQ_OK : mq_error_code(err, MQ_ERR_MEMORY,
                                                                    "out of memory");
    for (int i = 0; rc == MQ_OK && i < sel->n && i < s->n_nodes; i++) {
        int u = s->nodes[i].unit;
        if (u >= 0 && s->units[u].float_now && sel->items[i].node && !*sel->items[i].graph &&
            s->nodes[i].role == MQ_ROLE_WEIGHTED) {
            units[n] = u;
            nodes[n++] = (Onnx__NodeProto *)sel->items[i].node;
        }
    }
    if (rc == MQ_OK)
        rc = mq_fallback_requantized_by_runtime(model, nodes, n, flag, err);
    *changed = 0;
    for (int k = 0; rc == MQ_OK && k < n; k++)
        if (flag[k] && s->units[units[k]].float_now) {
            s->units[units[k]].float_now = 0;
            *changed = 1;
        }
    free(nodes);
    free(units);
    free(flag);
    return rc;
}

/*
 * One trial: the units marked float_now stay float, the rest is quantized as
 * the user asked; the result is measured on the samples.  With `base`, the
 * selection after the rewrite is kept in s->nodes (the first trial).  With
 * float fallback, units onnxruntime would quantize anyway are put back to
 * int8 first (float_now cleared), so what is measured is what runs there.
 */
static int trial(struct search *s, int attribution, int base, struct mq_check_result *out,
                 struct mq_error *err)
{
    const struct mq_target_search_options *o = s->o;
    struct mq_model *m = NULL;
    struct mq_selection sel = {0};
    struct mq_quant_result qr = {0};
    struct mq_pattern_list excl = {0};
    int have_sel = 0, have_qr = 0;
    int rc = MQ_OK;
    for (int round = 0; rc == MQ_OK; round++) {
        rc = list_copy(&excl, o->select->exclude_nodes) ? MQ_ERR_MEMORY : MQ_OK;
        for (int u = 0; rc == MQ_OK && u < s->n_units; u++)
            for (int k = 0; rc == MQ_OK && s->units[u].float_now && k < s->units[u].n; k++)
                if (list_append(&excl, s->nodes[s->units[u].items[k]].name))
                    rc = MQ_ERR_MEMORY;
        if (rc)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        if (rc == MQ_OK)
            rc = mq_model_load_buffer(o->prepared, o->prepared_size, o->model_dir,
                                      "the prepared model", &m, err);
        if (rc == MQ_OK) {
            struct mq_select_options so = *o->select;
            so.exclude_nodes = &excl;
            rc = mq_select_nodes(m->proto, &so, &sel, err);
            have_sel = rc == MQ_OK;
        }
        if (rc == MQ_OK && base) {
            s->nodes = calloc((size_t)sel.n + 1, sizeof *s->nodes);
            if (!s->nodes)
                rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            for (int i = 0; rc == MQ_OK && i < sel.n; i++) {
                struct base_node *b = &s->nodes[i];
                const Onnx__NodeProto *node = sel.items[i].node;
                s->n_nodes++;
                b->unit = -1;
                b->role = mq_op_role(sel.items[i].op_type);
                b->name = strdup(sel.items[i].name);
                b->op_type = strdup(sel.items[i].op_type);
                b->output = strdup(node && node->n_output > 0 ? mq_str(node->output[0]) : "");
                if (!b->name || !b->op_type || !b->output)
                    rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            }
        }
        if (rc == MQ_OK) {
            rc = mq_qdq_rewrite(m->proto, &sel, o->ranges, &s->quant, &qr, err);
            have_qr = rc == MQ_OK;
        }
        if (rc || base || o->fallback != MQ_FALLBACK_FLOAT || round + 1 >= MAX_REWRITES)
            break;
        int changed = 0;
        rc = unfloat_requantized(s, m->proto, &sel, &changed, err);
        if (rc || !changed)
            break;
        mq_quant_result_free(&qr);
        mq_selection_free(&sel);
        mq_model_free(m);
        mq_pattern_list_free(&excl);
        m = NULL;
        have_qr = have_sel = 0;
    }
    for (int i = 0; rc == MQ_OK && base && i < sel.n && i < s->n_nodes; i++)
        s->nodes[i].status = sel.items[i].status;
    if (rc == MQ_OK && !base && o->fallback == MQ_FALLBACK_INT16)
        rc = apply_fallback(s, m->proto, &sel, err);
    /* Without `out`: only the float units onnxruntime would quantize go back to int8. */
    if (rc == MQ_OK && out) {
        struct mq_check_options co = o->eval;
        co.attribution = attribution;
        /* The caller's cache when it shares one (with its own check), else the search's. */
        co.reference = o->eval.reference ? o->eval.reference : &s->reference;
        rc = mq_check_models(o->fp32, m->proto, &co, out, err);
        s->passes++;
    }
    if (have_qr)
        mq_quant_result_free(&qr);
    if (have_sel)
        mq_selection_free(&sel);
    mq_model_free(m);
    mq_pattern_list_free(&excl);
    return rc;
}

static int unit_add(struct search *s, struct unit *u, int node)
{
    int *v = realloc(u->items, (size_t)(u->n + 1) * sizeof *v);
    if (!v)
        return -1;
    u->items = v;
    u->items[u->n++] = node;
    s->nodes[node].unit = (int)(u - s->units);
    u->macs += mq_check_node_macs(s->macs, s->nodes[node].output);
    return 0;
}

static int is_candidate(const struct base_node *b)
{
    return b->unit < 0 && (b->status == MQ_NODE_QUANTIZED || b->status == MQ_NODE_FOLDED);
}

/*
 * The ranked list from the attribution of the all-int8 trial.  A layer's
 * node label is "conv+relu" when the error of a folded chain is charged to
 * its last tensor: every named part joins the unit.
 */
static int rank_units(struct search *s, const struct mq_check_result *r, struct mq_error *err)
{
    struct mq_strmap *by_name = mq_strmap_new(), *by_output = mq_strmap_new();
    int rc = by_name && by_output ? MQ_OK : MQ_ERR_MEMORY;
    for (int i = 0; rc == MQ_OK && i < s->n_nodes; i++) {
        if (mq_strmap_get(by_name, s->nodes[i].name) < 0 &&
            mq_strmap_put(by_name, s->nodes[i].name, i))
            rc = MQ_ERR_MEMORY;
        if (rc == MQ_OK && *s->nodes[i].output && mq_strmap_get(by_output, s->nodes[i].output) < 0 &&
            mq_strmap_put(by_output, s->nodes[i].output, i))
            rc = MQ_ERR_MEMORY;
    }
    s->units = calloc((size_t)s->n_nodes + 1, sizeof *s->units);
    if (!s->units)
        rc = MQ_ERR_MEMORY;
    for (int l = 0; rc == MQ_OK && l < r->compare.n_layers; l++) {
        const struct mq_divergence_layer *layer = &r->compare.layers[l];
        struct unit *u = &s->units[s->n_units];
        u->node_sqnr_db = layer->node_sqnr_db;
        char *label = strdup(layer->node ? layer->node : "");
        if (!label) {
            rc = MQ_ERR_MEMORY;
            break;
        }
        int whole = mq_strmap_get(by_name, label);
        if (whole >= 0) {
            if (is_candidate(&s->nodes[whole]) && unit_add(s, u, whole))
                rc = MQ_ERR_MEMORY;
        } else {
            for (char *part = label, *next; rc == MQ_OK && part; part = next) {
                next = strchr(part, '+');
                if (next)
                    *next++ = '\0';
                int i = mq_strmap_get(by_name, part);
                if (i >= 0 && is_candidate(&s->nodes[i]) && unit_add(s, u, i))
                    rc = MQ_ERR_MEMORY;
            }
        }
        free(label);
        /* An unnamed producer: found by the tensor it wrote. */
        int by_tensor = u->n == 0 ? mq_strmap_get(by_output, layer->tensor_a) : -1;
        if (rc == MQ_OK && by_tensor >= 0 && is_candidate(&s->nodes[by_tensor]) &&
            unit_add(s, u, by_tensor))
            rc = MQ_ERR_MEMORY;
        if (u->n)
            s->n_units++;
    }
    for (int i = 0; rc == MQ_OK && i < s->n_nodes; i++) {
        if (!is_candidate(&s->nodes[i]))
            continue;
        struct unit *u = &s->units[s->n_units++];
        u->node_sqnr_db = INFINITY;
        if (unit_add(s, u, i))
            rc = MQ_ERR_MEMORY;
    }
    mq_strmap_free(by_name);
    mq_strmap_free(by_output);
    return rc ? mq_error_code(err, MQ_ERR_MEMORY, "out of memory") : MQ_OK;
}

static void set_prefix(struct search *s, int k)
{
    for (int u = 0; u < s->n_units; u++)
        s->units[u].float_now = u < k;
}

/* The output furthest below the target, for the error message. */
static void describe_shortfall(const struct mq_target *t, const struct mq_check_result *r,
                               struct mq_error *err)
{
    int worst = 0;
    double worst_margin = INFINITY;
    int agreement = 0;
    for (int i = 0; i < r->compare.n_outputs; i++) {
        double m = t->has_sqnr ? mq_check_output_sqnr_db(r, i) - t->sqnr_db : INFINITY;
        double a = mq_check_output_agreement_pct(r, i);
        if (m < worst_margin) {
            worst_margin = m;
            worst = i;
            agreement = 0;
        }
        if (t->has_agreement && a >= 0 && a - t->agreement_pct < worst_margin) {
            worst_margin = a - t->agreement_pct;
            worst = i;
            agreement = 1;
        }
    }
    const char *name = r->compare.outputs[worst].name;
    if (agreement)
        mq_error_set(err, "--target-agreement %g is unreachable: output '%s' agrees on %.2f %% "
                     "of top-1 classes even with every node float", t->agreement_pct, name,
                     mq_check_output_agreement_pct(r, worst));
    else
        mq_error_set(err, "--target-sqnr %g is unreachable: output '%s' reaches %.2f dB even "
                     "with every node float", t->sqnr_db, name, mq_check_output_sqnr_db(r, worst));
}


static int fill_result(struct search *s, const struct mq_check_result *last,
                       struct mq_target_search_result *r, struct mq_error *err)
{
    r->passes = s->passes;
    r->reached_sqnr_db = lowest_sqnr(last);
    r->reached_agreement_pct = lowest_agreement(last);
    r->reached_sqnr_stderr_db = lowest_sqnr_stderr(last);
    r->uses_other_rounding = s->o->other_rounding &&
                             s->quant.weight_rounding == s->o->other_rounding;
    for (int i = 0; i < s->n_nodes; i++) {
        const struct base_node *b = &s->nodes[i];
        int64_t macs = b->role == MQ_ROLE_WEIGHTED ? mq_check_node_macs(s->macs, b->output) : 0;
        if (b->role != MQ_ROLE_WEIGHTED)
            continue;
        r->weighted_total++;
        r->macs_total += macs;
        if (b->status == MQ_NODE_QUANTIZED && !(b->unit >= 0 && s->units[b->unit].float_now)) {
            r->weighted_int8++;
            r->macs_int8 += macs;
        }
    }
    r->fallback = calloc((size_t)s->n_nodes + 1, sizeof *r->fallback);
    if (!r->fallback)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int u = 0; u < s->n_units; u++) {
        const struct unit *un = &s->units[u];
        for (int k = 0; un->float_now && k < un->n; k++) {
            const struct base_node *b = &s->nodes[un->items[k]];
            struct mq_fallback_node *f = &r->fallback[r->n_fallback++];
            f->name = strdup(b->name);
            f->op_type = strdup(b->op_type);
            if (!f->name || !f->op_type)
                return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
            f->node_sqnr_db = un->node_sqnr_db;
            f->measured = un->measured;
            f->sqnr_if_quantized_db = un->sqnr_if_quantized_db;
            f->agreement_if_quantized_pct = un->agreement_if_quantized_pct;
            f->macs = b->role == MQ_ROLE_WEIGHTED ? mq_check_node_macs(s->macs, b->output) : 0;
        }
    }
    return MQ_OK;
}

int mq_target_search(const struct mq_target_search_options *o,
                     struct mq_target_search_result *r, struct mq_error *err)
{
    memset(r, 0, sizeof *r);
    struct search s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.quant = *o->quant;
    struct mq_check_result cur, best;
    memset(&cur, 0, sizeof cur);
    memset(&best, 0, sizeof best);
    int have_best = 0;
    int rc = mq_check_count_macs(o->fp32, o->eval.eval_dir, o->eval.preprocess, &s.macs, err);

    /* 1. Everything int8, with the attribution that ranks the nodes. */
    if (rc == MQ_OK) {
        progress(&s, "measuring");
        rc = trial(&s, 1, 1, &best, err);
        have_best = rc == MQ_OK;
    }
    /*
     * The other rounding, kept when it brings the all-int8 model nearer the target as
     * measured (without the margin: a rounding fitted to these samples spreads their errors
     * differently, and on unseen samples GPTQ kept more of the pooled figure than the
     * spread here suggested: squeezenet 24.0 against 19.8 dB on eval/).
     */
    struct mq_target as_measured = o->target;
    as_measured.stderr_multiple = 0.0;
    if (rc == MQ_OK && o->other_rounding && !mq_target_met(&o->target, &best)) {
        s.quant.weight_rounding = o->other_rounding;
        progress(&s, "measuring");
        rc = trial(&s, 1, 0, &cur, err);
        if (rc == MQ_OK && target_margin(&as_measured, &cur) > target_margin(&as_measured, &best)) {
            mq_check_result_free(&best);
            best = cur;
        } else {
            s.quant.weight_rounding = o->quant->weight_rounding;
            if (rc == MQ_OK)
                mq_check_result_free(&cur);
        }
        memset(&cur, 0, sizeof cur);
    }
    if (rc == MQ_OK && o->target.has_agreement && lowest_agreement(&best) < 0)
        rc = mq_error_set(err, "--target-agreement: no output of the model looks like class "
                          "scores (a float [N, C] tensor, C >= 2)");
    if (rc == MQ_OK && mq_target_met(&o->target, &best)) {
        r->met_with_all_int8 = 1;
        rc = fill_result(&s, &best, r, err);
        goto out;
    }
    if (rc == MQ_OK)
        rc = rank_units(&s, &best, err);

    /* 2. Bisection: lo fails, hi meets (hi = every unit until a trial says otherwise). */
    int lo = 0, hi = s.n_units, hi_tested = 0;
    while (rc == MQ_OK && hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        set_prefix(&s, mid);
        progress(&s, "bisecting");
        rc = trial(&s, 0, 0, &cur, err);
        if (rc)
            break;
        if (mq_target_met(&o->target, &cur)) {
            hi = mid;
            hi_tested = 1;
            mq_check_result_free(&best);
            best = cur;
        } else {
            lo = mid;
            mq_check_result_free(&cur);
        }
        memset(&cur, 0, sizeof cur);
    }
    if (rc == MQ_OK && !hi_tested) {
        set_prefix(&s, hi);
        progress(&s, "bisecting");
        rc = trial(&s, 0, 0, &cur, err);
        if (rc == MQ_OK && !mq_target_met(&o->target, &cur))
            describe_shortfall(&o->target, &cur, err), rc = MQ_ERR;
        if (rc == MQ_OK) {
            mq_check_result_free(&best);
            best = cur;
        } else {
            mq_check_result_free(&cur);
        }
        memset(&cur, 0, sizeof cur);
    }

    /*
     * 3. Re-quantize what the prefix holds, the most arithmetic first, in
     * groups of PRUNE_GROUP units while passes remain; a group that breaks
     * the target is split in halves (first half first).  Units the target
     * does not need come back to int8 in fewer passes than one by one, and a
     * single unit's trial measures what quantizing it again would cost.
     */
    /* The state the prefix's trial measured: its units onnxruntime would quantize are int8. */
    if (rc == MQ_OK) {
        set_prefix(&s, hi);
        rc = trial(&s, 0, 0, NULL, err);
    }
    int *saved = rc == MQ_OK ? calloc((size_t)s.n_units + 1, sizeof *saved) : NULL;
    if (rc == MQ_OK && !saved)
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (rc == MQ_OK) {
        int n = 0;
        int *order = calloc((size_t)hi + 1, sizeof *order);
        int *stack = calloc(2 * (size_t)hi + 2, sizeof *stack);   /* (start, length) pairs */
        if (!order || !stack)
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        /* The last unit of the prefix is the one the bisection found needed. */
        for (int i = 0; rc == MQ_OK && i < hi - 1; i++)
            order[n++] = i;
        /* Insertion sort: stable, deterministic, and the lists are short. */
        for (int i = 1; rc == MQ_OK && i < n; i++)
            for (int j = i; j > 0 && s.units[order[j]].macs > s.units[order[j - 1]].macs; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        int top = 0;
        /* Groups of PRUNE_GROUP units in order (pushed last first: the stack pops the first). */
        for (int start = n > 0 ? ((n - 1) / PRUNE_GROUP) * PRUNE_GROUP : -1;
             rc == MQ_OK && start >= 0; start -= PRUNE_GROUP) {
            stack[top++] = start;
            stack[top++] = start + PRUNE_GROUP <= n ? PRUNE_GROUP : n - start;
        }
        while (rc == MQ_OK && top > 0 && s.passes < MQ_TARGET_MAX_PASSES) {
            int len = stack[--top], start = stack[--top];
            /* A trial may put more units back to int8: a failed one restores them all. */
            for (int u = 0; u < s.n_units; u++)
                saved[u] = s.units[u].float_now;
            if (!s.units[order[start]].float_now && len == 1)
                continue;   /* already int8: the runtime would quantize it */
            for (int i = start; i < start + len; i++)
                s.units[order[i]].float_now = 0;
            progress(&s, "re-quantizing");
            rc = trial(&s, 0, 0, &cur, err);
            if (rc)
                break;
            int met = mq_target_met(&o->target, &cur);
            if (len == 1) {
                struct unit *u = &s.units[order[start]];
                u->measured = 1;
                u->sqnr_if_quantized_db = lowest_sqnr(&cur);
                u->agreement_if_quantized_pct = lowest_agreement(&cur);
            }
            if (met) {
                mq_check_result_free(&best);
                best = cur;
            } else {
                for (int u = 0; u < s.n_units; u++)
                    s.units[u].float_now = saved[u];
                mq_check_result_free(&cur);
                if (len > 1) {
                    int half = len / 2;
                    stack[top++] = start + half;
                    stack[top++] = len - half;
                    stack[top++] = start;
                    stack[top++] = half;
                }
            }
            memset(&cur, 0, sizeof cur);
        }
        free(order);
        free(stack);
    }
    free(saved);
    if (rc == MQ_OK)
        rc = fill_result(&s, &best, r, err);
out:
    if (have_best)
        mq_check_result_free(&best);
    mq_divergence_cache_free(&s.reference);
    search_free(&s);
    if (rc)
        mq_target_search_result_free(r);
    return rc;
}

void mq_target_search_result_free(struct mq_target_search_result *r)
{
    for (int i = 0; i < r->n_fallback; i++) {
        free(r->fallback[i].name);
        free(r->fallback[i].op_type);
    }
    free(r->fallback);
    memset(r, 0, sizeof *r);
}

int mq_target_exclusions(const struct mq_target_search_result *r,
                         const struct mq_pattern_list *user, struct mq_pattern_list *out,
                         struct mq_error *err)
{
    int rc = list_copy(out, user);
    for (int i = 0; rc == 0 && i < r->n_fallback; i++)
        rc = list_append(out, r->fallback[i].name);
    if (rc) {
        mq_pattern_list_free(out);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    return MQ_OK;
}
