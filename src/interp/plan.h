/*
 * An execution plan: a graph compiled once (kernels found, attributes
 * checked, constants folded, liveness computed) and then run on any number
 * of samples, from any number of threads at once.
 */
#ifndef MQ_PLAN_H
#define MQ_PLAN_H

#include "core/limits.h"
#include "core/tensor.h"
#include "interp/kernel.h"
#include "util/error.h"

struct mq_model;

/* Builds the plan of the model's main graph and, recursively, every subgraph. */
int mq_plan_build(const struct mq_model *model, struct mq_plan **out, struct mq_error *err);

struct mq_plan_options {
    /*
     * Fuse operators for speed (interp/fuse.c): Conv absorbs a following
     * BatchNormalization and per-channel Mul/Add into its weights, Relu runs
     * inside Conv, Gemm, BatchNormalization, Add and Sum.  The tensors fused
     * away are never produced, so observers do not see them: calibration and
     * per-layer comparison must use plain plans.  Results differ from a plain
     * plan's by float rounding only.
     */
    int fuse;
    /*
     * Pack the constant weights of float32 Conv nodes once, for a GEMM that
     * also applies the bias and a fused Relu (interp/ops/conv_gemm.h).  Costs
     * a second copy of those weights; results differ from BLAS's by float
     * rounding only.
     */
    int pack_weights;
};

/*
 * The plan of the passes that observe every tensor after calibration (bias
 * correction's statistics, the per-node comparison): no fusion, so every
 * tensor is produced, and packed Conv weights, faster than BLAS.
 */
#define MQ_PLAN_OBSERVED ((struct mq_plan_options){.fuse = 0, .pack_weights = 1})

/* mq_plan_build with options; NULL options builds the plain plan. */
int mq_plan_build_with_options(const struct mq_model *model,
                               const struct mq_plan_options *options, struct mq_plan **out,
                               struct mq_error *err);
void mq_plan_free(struct mq_plan *plan);

/*
 * The graph inputs a caller feeds: graph inputs that have no initializer of
 * the same name.  Inputs that do have one are constants unless fed through
 * mq_plan_run's named inputs.
 */
int mq_plan_input_count(const struct mq_plan *plan);
const Onnx__ValueInfoProto *mq_plan_input(const struct mq_plan *plan, int i);
int mq_plan_output_count(const struct mq_plan *plan);
const Onnx__ValueInfoProto *mq_plan_output(const struct mq_plan *plan, int i);

/* Declared element type of a value info, 0 when it declares none. */
int mq_value_info_dtype(const Onnx__ValueInfoProto *info);

/*
 * Calls fn for every constant of the plan and its subgraphs: initializers and
 * values folded at build time, each with its name.  Stops at the first error.
 */
typedef int (*mq_constant_fn)(void *user, const char *name, const struct mq_tensor *value,
                              struct mq_error *err);
int mq_plan_each_constant(const struct mq_plan *plan, mq_constant_fn fn, void *user,
                          struct mq_error *err);

/*
 * Called for every tensor a node produces (main graph and subgraphs) before it
 * may be freed, and for the values a control-flow node feeds into a subgraph's
 * formal inputs (iteration counters, loop-carried state, scan slices): those
 * have producer NULL.
 */
typedef int (*mq_tensor_observer_fn)(void *user, const struct mq_kernel_node *producer,
                                     const char *tensor_name, const struct mq_tensor *value,
                                     struct mq_error *err);

struct mq_run_options {
    mq_tensor_observer_fn observe;  /* may be NULL */
    void *observe_user;
    /* Names of tensors to keep and return besides the graph outputs (compare --per-layer). */
};

/*
 * Runs one sample.  inputs[i] feeds mq_plan_input(plan, i).  outputs must
 * hold mq_plan_output_count(plan) zeroed tensors; the caller frees them.
 */
int mq_plan_run(const struct mq_plan *plan, const struct mq_tensor *inputs, int n_inputs,
                struct mq_tensor *outputs, int n_outputs, const struct mq_run_options *options,
                struct mq_error *err);

/*
 * For control-flow kernels: runs a subgraph with the names of the enclosing
 * scopes visible.  inputs[i] feeds the subgraph's i-th formal input (all of
 * them, initializers excepted); outputs receive its outputs in order.
 */
int mq_exec_subgraph(struct mq_exec *exec, const struct mq_plan *subgraph,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err);
int mq_subgraph_input_count(const struct mq_plan *subgraph);
int mq_subgraph_output_count(const struct mq_plan *subgraph);

#endif
