/* Tensors whose bytes live in a file beside the model (data_location = EXTERNAL). */
#ifndef MQ_EXTERNAL_H
#define MQ_EXTERNAL_H

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * Reads an external tensor's bytes into raw_data and marks it DEFAULT.  The
 * location must be a relative path that stays inside model_dir (no absolute
 * path, no "..", no symlink leading out); offset and length must lie inside
 * the file and agree with the tensor's dims.
 */
int mq_external_resolve(Onnx__TensorProto *tensor, const char *model_dir, struct mq_error *err);

#endif
