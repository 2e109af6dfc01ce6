/*
 * The graph that gets calibrated and quantized, made from a loaded model the
 * same way by every command that observes or quantizes tensors (quantize,
 * calibrate), so that ranges one saves name and describe the tensors the
 * other quantizes: the canonical pass (weights made by expanding nodes such
 * as ConstantOfShape folded too: the quantizer stores them in int8), BatchNormalization,
 * a HardSigmoid's affine part (a Clip left) and Pad folded into the Conv before or after
 * them, channel shuffles written as one Gather and means over the spatial axes as
 * GlobalAveragePool (with shapes from one calibration sample, or without samples from zeros
 * of the declared input shapes),
 * optionally HardSwish split
 * into ops onnxruntime runs in int8 and Conv inputs padded to the channels its
 * fast int8 kernel takes, and cross-layer range equalization
 * measured on the calibration samples.
 */
#ifndef MQ_QUANT_PREPARE_H
#define MQ_QUANT_PREPARE_H

#include "calib/calibrate.h"
#include "calib/ranges.h"
#include "calib/reader.h"
#include "graph/canonical.h"
#include "model/model.h"
#include "quant/batchnorm_fold.h"
#include "quant/equalize_fold.h"
#include "util/error.h"

struct mq_quant_prepare_options {
    /* Ranges loaded from files: their channel maxima decide the equalization (the graph they
       were calibrated on is made again); NULL: measured on calib_dir. */
    const struct mq_ranges *loaded;
    /* Samples for equalization when nothing is loaded; NULL: nothing equalized. */
    const char *calib_dir;
    /* How they are read: limit and pre-processing; shards are ignored, since every shard of a
       sharded calibration must equalize the same way to describe the same graph. */
    const struct mq_calib_open_options *open;
    int split_hardswish;
    /* > 0: a model importing an older opset is converted after the canonical pass to this
       one (13 at least: what the quantization scheme needs), `opset_reason` saying why. */
    int min_opset;
    const char *opset_reason;
    /* Conv inputs padded to the channel count onnxruntime's fast int8 kernel takes
       (quant/channel_pad.h), depthwise Convs widened to it (quant/depthwise_pad.h). */
    int pad_channels;
    /* Threads measuring the equalization (the result does not depend on them); 0: the
       default of calib/calibrate.h. */
    int jobs;
    /* HardSwish behind a Conv written as x * HardSigmoid(x) (quant/hardswish_split.h), which
       the quantizer runs on x's codes (--hardswish-codes). */
    int hardswish_as_hardsigmoid;
    /* With calib_dir and nothing loaded: no pass of its own measuring the equalization; the
       calibration pass measures it (mq_quant_prepare_calib_extra) and mq_quant_prepare_finish
       equalizes after it (quant/equalize_fold.h; for minmax ranges only). */
    int fold_equalization;
    /* With fold_equalization, for a shard of a calibration: the maxima still measured on all
       the samples (every shard must equalize alike), the calibration pass giving the ranges
       of the graph before equalizing, so that shards merge into one run's ranges exactly. */
    int fold_measure_all;
};

struct mq_quant_prepare_result {
    struct mq_graph_canonical_counts canonical;
    struct mq_fold_result batchnorm_folds;
    int pads_folded;
    int shuffles_as_gather;
    int batchnorms_as_conv;   /* BatchNormalizations between int8 ops as depthwise 1x1 Convs */
    int means_as_pool;        /* spatial ReduceMeans as GlobalAveragePool */
    int hardswish_split;
    int hardswish_as_hardsigmoid;
    int channels_padded;
    int depthwise_padded;
    int pairs_equalized;
    /* The channel maxima equalization used (loaded or measured): saved with the ranges. */
    struct mq_ranges channel_maxima;
    /* Non-NULL: equalization, and the depthwise widening after it, wait for the calibration
       pass (fold_equalization above). */
    struct mq_quant_equalize_fold *equalize_pending;
    int depthwise_pad_pending;
};

int mq_quant_prepare_graph(struct mq_model *model, const struct mq_quant_prepare_options *options,
                           struct mq_quant_prepare_result *out, struct mq_error *err);
void mq_quant_prepare_result_free(struct mq_quant_prepare_result *r);

/* The calibration pass's extra work for what waits (NULL: nothing waits). */
const struct mq_calib_extra *mq_quant_prepare_calib_extra(const struct mq_quant_prepare_result *r);
/*
 * After calibrating the graph as prepared (with that extra work, minmax): the steps that
 * waited, on `model` and on `ranges` (the rescaled tensors' ranges; the channel maxima go
 * into r->channel_maxima).  Nothing when nothing waits.
 */
int mq_quant_prepare_finish(struct mq_model *model, struct mq_quant_prepare_result *r,
                            struct mq_ranges *ranges, struct mq_error *err);

#endif
