/*
 * Tensor shapes learned by running one calibration sample through the model
 * as it is (any opset the interpreter runs), for rewrites that need ranks the
 * file does not declare: converting an old opset's legacy broadcasting, where
 * exporters of that time wrote no value_info for intermediate tensors.
 */
#ifndef MQ_QUANT_SHAPE_PROBE_H
#define MQ_QUANT_SHAPE_PROBE_H

#include <stdint.h>

#include "calib/reader.h"
#include "model/model.h"
#include "quant/opset.h"
#include "util/error.h"

struct mq_shape_probe;

/*
 * Runs the first sample of calib_dir (read as `open` says; NULL: tensors only).
 * Without calib_dir (ranges loaded from a file), runs zeros of the shapes the
 * graph's inputs declare, when it fixes every dimension of every input: the
 * shapes of a network whose shapes do not depend on its values, the same as a
 * sample gives.  *out stays NULL (and MQ_OK) when it declares no such shapes or
 * the run on zeros fails: callers then do without shapes.
 */
int mq_shape_probe_run(const struct mq_model *model, const char *calib_dir,
                       const struct mq_calib_open_options *open, struct mq_shape_probe **out,
                       struct mq_error *err);
/* Hints for mq_opset_convert answering from the probe; valid while it lives. */
struct mq_opset_hints mq_shape_probe_hints(struct mq_shape_probe *probe);
void mq_shape_probe_free(struct mq_shape_probe *probe);

#endif
