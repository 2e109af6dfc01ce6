/*
 * Raising a model's ai.onnx opset for real: every node whose signature or
 * semantics changed between the model's opset and the target is rewritten
 * (attributes that became inputs, changed defaults, changed axis meaning).
 * An op that cannot be converted is named in the error; the opset import is
 * never relabelled without converting.
 */
#ifndef MQ_OPSET_H
#define MQ_OPSET_H

#include <stdint.h>

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * Optional knowledge of tensor shapes beyond the graph's value_info (e.g.
 * from running a sample): the rank, dims[] filled (MQ_MAX_RANK room, -1 for
 * an unknown dim), or -1 when unknown.
 */
struct mq_opset_hints {
    int (*shape_of)(void *user, const char *tensor_name, int64_t *dims);
    void *user;
};

/*
 * Converts the model in place to ai.onnx `target_opset` (>= 13).  A model
 * already at or above it is left alone.  On error the model may be half
 * converted: callers convert a copy or discard the model.
 */
int mq_opset_convert(Onnx__ModelProto *model, int target_opset, const struct mq_opset_hints *hints,
                     struct mq_error *err);

#endif
