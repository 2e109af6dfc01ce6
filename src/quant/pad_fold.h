/*
 * A Pad that adds zeros on spatial axes, read only by a Conv or an
 * AveragePool, folded into the node's pads before selection and calibration
 * (the AveragePool then counts them: count_include_pad; pad_fold.c says why).
 */
#ifndef MQ_PAD_FOLD_H
#define MQ_PAD_FOLD_H

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * Folds every such Pad of the main graph (models without subgraphs only);
 * *n_folded gets how many.  Pads and constant-value initializers nothing else
 * reads are dropped.
 */
int mq_fold_pad_into_conv(Onnx__ModelProto *model, int *n_folded, struct mq_error *err);

#endif
