/*
 * What plans built for speed (mq_plan_build_with_options, interp/plan.h)
 * use besides the registry's kernels.
 *
 * Kernels that run an operator together with the Relu that follows it.  The
 * planner swaps one of these in for the producer's kernel after that kernel's
 * prepare has run, so each shares prepare, state and destroy with the plain
 * kernel of its op type; none is in the registry.  The Relu is Relu's own
 * x < 0 ? 0 : x (NaN stays NaN).
 */
#ifndef MQ_OPS_FUSED_H
#define MQ_OPS_FUSED_H

#include "interp/kernel.h"

extern const struct mq_kernel mq_kernel_conv_relu;      /* conv.c */
/* Conv + Add (+ Relu): input 3 is the Add's other operand, the residual */
extern const struct mq_kernel mq_kernel_conv_add;       /* conv.c */
extern const struct mq_kernel mq_kernel_conv_add_relu;  /* conv.c */
extern const struct mq_kernel mq_kernel_gemm_relu;      /* matmul.c */
extern const struct mq_kernel mq_kernel_batchnorm_relu; /* normalization.c */
extern const struct mq_kernel mq_kernel_add_relu;       /* elementwise.c */
extern const struct mq_kernel mq_kernel_sum_relu;       /* elementwise.c */

/*
 * Conv (+ Add of input 3) then the Clip or HardSwish described by node->clamp
 * (interp/kernel.h), applied to each block of output as it is written: the same floats as
 * that op after the Conv.
 */
extern const struct mq_kernel mq_kernel_conv_act;      /* conv.c */
extern const struct mq_kernel mq_kernel_conv_add_act;  /* conv.c */

/*
 * The activation of node->clamp over t in place, exactly as the absorbed Clip or HardSwish
 * computes it (unary.c): for a fused op whose kernel does not apply it (the runner calls it
 * after the step, for plan_step.clip_after), and for the float16 and bfloat16 paths of those
 * that do.  An element type the absorbed op would refuse (for Clip, other than its bounds';
 * not a float type) is an error naming it, as its own would be; mq_fused_act_check says so
 * alone.
 */
int mq_fused_act_apply(const struct mq_kernel_node *node, struct mq_tensor *t,
                       struct mq_error *err);
int mq_fused_act_check(const struct mq_kernel_node *node, int dtype, struct mq_error *err);

/*
 * QuantizeLinear and the DequantizeLinear that alone reads it with the same scale and zero
 * point, as one step giving the float values (quantize_linear.c): the simulated rounding of a
 * QDQ model's activation, without the 8-bit tensor between.
 */
extern const struct mq_kernel mq_kernel_quantize_dequantize;
/* The same storing its values over its input's buffer, for a step that alone reads the input
   (plan_step.view_of_input, interp/run.c hands the buffer over). */
extern const struct mq_kernel mq_kernel_quantize_dequantize_in_place;

/*
 * Reshape, Flatten, Squeeze and Unsqueeze returning a borrowed view of their
 * input's buffer instead of a copy (reshape_views.c), for steps whose input no
 * other step reads: the runner then hands the buffer to the output
 * (plan_step.view_of_input, interp/run.c).
 */
extern const struct mq_kernel mq_kernel_reshape_view;
extern const struct mq_kernel mq_kernel_flatten_view;
extern const struct mq_kernel mq_kernel_squeeze_view;
extern const struct mq_kernel mq_kernel_unsqueeze_view;

/*
 * Plan-time preparation of a Conv node (conv.c) whose W is the constant w:
 * packs float32 weights for interp/ops/conv_gemm.h into the node's state.
 * Does nothing for other types, depthwise convolutions, or CPUs without a
 * packed kernel.  The node uses the packing only while W is this tensor.
 */
int mq_conv_pack_weights(struct mq_kernel_node *node, const struct mq_tensor *w,
                         struct mq_error *err);

/*
 * Plan-time, for a Pad with zeros (+0) before a Conv node whose W is the constant w: when that
 * Conv takes the direct depthwise path whatever its input (4-D W of one input channel per
 * group, the path's bounds on kernel, strides and dilations; explicit pads only), adds the
 * Pad's spatial begin[2] and end[2] to its pads and returns 1: the path reads +0 for its own
 * padding, so every output is the same sum of the same products.  0 (nothing changed)
 * otherwise: the packed GEMM's summation could then depend on the geometry.
 */
int mq_conv_absorb_zero_pad(struct mq_kernel_node *node, const struct mq_tensor *w,
                            const int64_t *begin, const int64_t *end);

#endif
