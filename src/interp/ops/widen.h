/*
 * float16 and bfloat16 support for kernels that compute in float32.
 *
 * A kernel written for float32 (and double) calls mq_widen_run when one of
 * its inputs is float16 or bfloat16: the helper converts those inputs to
 * float32 copies, runs the kernel again on them and converts the float32
 * outputs back to the element type of input 0.  Converting whole tensors
 * once keeps the kernels' inner loops free of per-element conversions.
 */
#ifndef MQ_OPS_WIDEN_H
#define MQ_OPS_WIDEN_H

#include "interp/kernel.h"

/* 1 when any present input is float16 or bfloat16. */
int mq_widen_needed(const struct mq_tensor *const *inputs, int n_inputs);

/*
 * Runs `run` on float32 copies of the float16/bfloat16 inputs.  Every float32
 * output is converted to input 0's element type when that is float16 or
 * bfloat16, except outputs whose bit is set in keep_mask (bit i = output i),
 * which stay as the kernel produced them.
 */
int mq_widen_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                 const struct mq_tensor *const *inputs, int n_inputs, struct mq_tensor *outputs,
                 int n_outputs, mq_kernel_run_fn run, unsigned keep_mask, struct mq_error *err);

/* Converts a float32 tensor in place of itself to float16 or bfloat16 (new buffer). */
int mq_narrow_float(struct mq_tensor *t, int dtype, const char *what, struct mq_error *err);

#endif
