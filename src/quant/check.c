/*
 * The accuracy check after quantization (quant/check.h): a thin layer over
 * the model comparison of `compare`, run on a model held in memory.
 */
#include "quant/check.h"

#include <math.h>
#include <string.h>

int mq_check_models(const struct mq_model *fp32, const Onnx__ModelProto *quantized,
                    const struct mq_check_options *o, struct mq_check_result *r,
                    struct mq_error *err)
{
    memset(r, 0, sizeof *r);
    r->eval_dir = o->eval_dir;
    r->attribution = o->attribution;
    /* The quantized model has no file: a view of the proto, never freed through it. */
    char label[] = "the quantized model", dir[] = ".";
    struct mq_model view = {(Onnx__ModelProto *)quantized, label, dir};
    struct mq_divergence_options co = {o->eval_dir, o->limit, o->attribution, o->preprocess,
                                       o->reference, o->jobs};
    int rc = mq_divergence_compare(fp32, &view, &co, &r->compare, err);
    if (rc == MQ_OK && r->compare.samples == 0) {
        mq_divergence_result_free(&r->compare);
        rc = mq_error_set(err, "%s: no samples", o->eval_dir);
    }
    if (rc)
        mq_error_prefix(err, "checking the quantized model: ");
    return rc;
}

void mq_check_result_free(struct mq_check_result *r)
{
    mq_divergence_result_free(&r->compare);
    memset(r, 0, sizeof *r);
}

double mq_check_output_sqnr_db(const struct mq_check_result *r, int i)
{
    const struct mq_error_stats *s = &r->compare.outputs[i].stats;
    /* A value NaN or infinite on one side only is as bad as it gets. */
    if (s->nonfinite_mismatch)
        return -INFINITY;
    return mq_error_stats_sqnr_db(s);
}

double mq_check_output_agreement_pct(const struct mq_check_result *r, int i)
{
    const struct mq_divergence_output *o = &r->compare.outputs[i];
    if (!o->class_scores || o->top1.rows == 0)
        return -1;
    return 100.0 * (double)o->top1.agree / (double)o->top1.rows;
}

int mq_check_output_warns(const struct mq_check_result *r, int i)
{
    return mq_check_output_sqnr_db(r, i) < MQ_CHECK_WARN_SQNR_DB;
}
