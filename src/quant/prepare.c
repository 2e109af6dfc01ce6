/*
 * The graph to calibrate and quantize (quant/prepare.h): one sequence of
 * rewrites shared by quantize and calibrate.
 */
#include "quant/prepare.h"

#include <string.h>

#include "graph/edit.h"
#include "quant/channel_pad.h"
#include "quant/depthwise_pad.h"
#include "quant/batchnorm_conv.h"
#include "quant/equalize.h"
#include "quant/hardswish_split.h"
#include "quant/mean_pool.h"
#include "quant/opset.h"
#include "quant/op_rules.h"
#include "quant/pad_fold.h"
#include "quant/shape_probe.h"
#include "quant/shuffle_gather.h"

/* Inputs an op folded away before quantization reads as constants: BatchNormalization's
   scale, bias, mean and variance go into the Conv before it. */
static const struct {
    const char *op_type;
    size_t first, last;
} folded_constant_inputs[] = {
    {"BatchNormalization", 1, 4},
};

/*
 * For the canonical pass: a weight or bias the quantizer stores (in int8 or int32), or a
 * parameter a fold consumes, is worth folding even when a node makes it from far fewer bytes
 * (a ConstantOfShape or Expand weight): it must be a constant to be quantized at all.
 */
static int wants_constant(const Onnx__NodeProto *reader, size_t input, void *user)
{
    (void)user;
    if (!mq_node_is_onnx(reader))
        return 0;
    const char *op = mq_str(reader->op_type);
    const struct mq_op_rule *rule = mq_op_rule_find(op);
    if (rule && ((int)input == rule->weight_input || (int)input == rule->bias_input))
        return 1;
    for (size_t k = 0; k < sizeof folded_constant_inputs / sizeof folded_constant_inputs[0]; k++)
        if (strcmp(op, folded_constant_inputs[k].op_type) == 0 &&
            input >= folded_constant_inputs[k].first && input <= folded_constant_inputs[k].last)
            return 1;
    return 0;
}

/*
 * Shapes for the rewrites that need them (channel shuffles, BatchNormalizations as Convs,
 * spatial means as pools): one probe (quant/shape_probe.h: one calibration sample, or zeros of
 * the declared input shapes), run for the first rewrite that has a candidate and kept for the
 * others.  The rewrites before them keep the names of the tensors those look up.
 */
struct lazy_shapes {
    struct mq_model *model;
    const struct mq_quant_prepare_options *options;
    struct mq_shape_probe *probe;
    int ran;
};

static int shapes_get(struct lazy_shapes *l, struct mq_opset_hints *hints, struct mq_error *err)
{
    int rc = MQ_OK;
    if (!l->ran)
        rc = mq_shape_probe_run(l->model, l->options->calib_dir, l->options->open, &l->probe, err);
    l->ran = 1;
    *hints = mq_shape_probe_hints(l->probe);
    return rc;
}

/* The shape rewrites, each where the graph has a candidate. */
static int shape_rewrites(struct mq_model *model, const struct mq_quant_prepare_options *o,
                          struct mq_quant_prepare_result *out, struct mq_error *err)
{
    Onnx__ModelProto *proto = model->proto;
    struct lazy_shapes lazy = {model, o, NULL, 0};
    struct mq_opset_hints shapes;
    int rc = MQ_OK;
    if (mq_shuffle_candidates(proto) && (rc = shapes_get(&lazy, &shapes, err)) == MQ_OK)
        rc = mq_shuffles_as_gather(proto, &shapes, &out->shuffles_as_gather, err);
    if (rc == MQ_OK && mq_batchnorm_conv_candidates(proto) &&
        (rc = shapes_get(&lazy, &shapes, err)) == MQ_OK)
        rc = mq_batchnorms_as_conv(proto, &shapes, &out->batchnorms_as_conv, err);
    if (rc == MQ_OK && mq_mean_pool_candidates(proto) &&
        (rc = shapes_get(&lazy, &shapes, err)) == MQ_OK)
        rc = mq_means_as_pool(proto, &shapes, &out->means_as_pool, err);
    mq_shape_probe_free(lazy.probe);
    return rc;
}

int mq_quant_prepare_graph(struct mq_model *model, const struct mq_quant_prepare_options *options,
                           struct mq_quant_prepare_result *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    Onnx__ModelProto *proto = model->proto;
    struct mq_graph_canonical_options canonical = {0, wants_constant, NULL};
    int rc = mq_graph_canonicalize(proto, &canonical, &out->canonical, err);
    int have = rc == MQ_OK ? mq_model_proto_opset(proto, "") : 0;
    if (rc == MQ_OK && options->min_opset > 0 && have < options->min_opset) {
        /* Shapes from one sample for what old files do not declare (legacy broadcasting). */
        struct mq_shape_probe *probe = NULL;
        rc = mq_shape_probe_run(model, options->calib_dir, options->open, &probe, err);
        struct mq_opset_hints hints = mq_shape_probe_hints(probe);
        /* converting at all goes to 13 at least: per-axis QuantizeLinear, the int8 kernels */
        if (rc == MQ_OK)
            rc = mq_opset_convert(proto, options->min_opset < 13 ? 13 : options->min_opset,
                                  probe ? &hints : NULL, err);
        mq_shape_probe_free(probe);
        if (rc)
            mq_error_prefix(err, "the model imports opset %d but %s: ", have,
                            options->opset_reason ? options->opset_reason
                                                  : "the scheme needs more");
    }
    if (rc == MQ_OK)
        rc = mq_fold_batchnorm(proto, &out->batchnorm_folds, err);
    if (rc == MQ_OK)
        rc = mq_fold_pad_into_conv(proto, &out->pads_folded, err);
    if (rc == MQ_OK)
        rc = shape_rewrites(model, options, out, err);
    if (rc == MQ_OK && options->split_hardswish)
        rc = mq_split_hardswish(proto, &out->hardswish_split, err);
    if (rc == MQ_OK && options->hardswish_as_hardsigmoid)
        rc = mq_hardswish_as_hardsigmoid(proto, &out->hardswish_as_hardsigmoid, err);
    if (rc == MQ_OK && options->pad_channels)
        rc = mq_pad_conv_input_channels(proto, &out->channels_padded, err);
    if (rc == MQ_OK && !options->loaded && options->calib_dir && options->fold_equalization)
        rc = mq_quant_equalize_fold_new(model, &out->equalize_pending, err);
    /* a shard measures the maxima on all the samples still (the ranges come from its own) */
    int measure_here = !out->equalize_pending || options->fold_measure_all;
    if (rc == MQ_OK && options->loaded) {
        rc = mq_ranges_merge_channel_maxima(&out->channel_maxima, options->loaded, err);
    } else if (rc == MQ_OK && options->calib_dir && measure_here) {
        struct mq_calib_open_options open = {0};
        if (options->open)
            open = *options->open;
        open.shard_index = 0;
        open.shard_count = 0;
        rc = mq_quant_equalize_measure(model, options->calib_dir, &open,
                                       options->jobs > 0 ? options->jobs : mq_calib_default_jobs(),
                                       &out->channel_maxima, err);
    }
    if (rc == MQ_OK && out->equalize_pending) {
        /* measured in the calibration pass: equalized, then widened, in finish */
        if (options->fold_measure_all)
            mq_quant_equalize_fold_keep_maxima(out->equalize_pending);
        out->depthwise_pad_pending = options->pad_channels;
        return MQ_OK;
    }
    if (rc == MQ_OK)
        rc = mq_quant_equalize_apply(model, &out->channel_maxima, &out->pairs_equalized, err);
    /* after equalization, which measured and scaled the channels as they were */
    if (rc == MQ_OK && options->pad_channels)
        rc = mq_pad_depthwise_channels(proto, &out->depthwise_padded, err);
    return rc;
}

const struct mq_calib_extra *mq_quant_prepare_calib_extra(const struct mq_quant_prepare_result *r)
{
    return r->equalize_pending ? mq_quant_equalize_fold_extra(r->equalize_pending) : NULL;
}

int mq_quant_prepare_finish(struct mq_model *model, struct mq_quant_prepare_result *r,
                            struct mq_ranges *ranges, struct mq_error *err)
{
    if (!r->equalize_pending)
        return MQ_OK;
    int rc = mq_quant_equalize_fold_finish(r->equalize_pending, model, ranges, &r->channel_maxima,
                                           &r->pairs_equalized, err);
    mq_quant_equalize_fold_free(r->equalize_pending);
    r->equalize_pending = NULL;
    /* The zero channels it adds widen tensors calibration saw without them: their ranges
       still hold what they hold, and 0, which every quantized range includes. */
    if (rc == MQ_OK && r->depthwise_pad_pending)
        rc = mq_pad_depthwise_channels(model->proto, &r->depthwise_padded, err);
    r->depthwise_pad_pending = 0;
    return rc;
}

void mq_quant_prepare_result_free(struct mq_quant_prepare_result *r)
{
    mq_quant_equalize_fold_free(r->equalize_pending);
    mq_fold_result_free(&r->batchnorm_folds);
    mq_ranges_free(&r->channel_maxima);
}
