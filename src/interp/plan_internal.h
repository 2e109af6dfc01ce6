/* The plan's insides, shared by plan.c (building) and run.c (executing). */
#ifndef MQ_PLAN_INTERNAL_H
#define MQ_PLAN_INTERNAL_H

#include "interp/plan.h"
#include "util/strmap.h"

struct plan_value {
    const char *name;          /* points into the model proto, or is owned_name */
    char *owned_name;          /* a value the planner made (fused weights), else NULL */
    int is_constant;           /* initializer or folded at build time: lives in `constant` */
    struct mq_tensor constant;
    int outer_level;           /* > 0: lives in the scope that many levels up */
    int outer_index;           /* its value index there */
    int is_graph_output;
    int last_use;              /* last step reading it; -1 when none */
};

struct plan_step {
    struct mq_kernel_node node;
    const struct mq_kernel *kernel;
    int *inputs;               /* value index per node input, -1 when absent */
    int *outputs;              /* value index per node output, -1 for "" */
    int *free_after;           /* values whose last reader is this step */
    int n_free_after;
    char *owned_name;          /* generated node name, when the model gives none */
    /* > 0: a fusion (interp/fuse.c) assumed input 0 has this rank; the runner checks it */
    int fused_input_rank;
    /*
     * Output 0 is a view of input 0 (interp/fuse.c), which lives at least as long: a
     * constant, a fed input, an outer value, or a value only this step reads, whose
     * buffer the runner moves to the output.
     */
    int view_of_input;
    /* Output 0 gets node.clamp, a Clip fused after the op, from the runner (interp/fuse.c):
       for kernels that do not apply it themselves */
    int clip_after;
};

struct mq_plan {
    const Onnx__GraphProto *graph;
    const Onnx__ModelProto *model;
    const struct mq_plan *parent;
    int depth;
    /* mq_plan_options, for this graph and its subgraphs */
    int fuse;
    int pack_weights;

    struct plan_value *values;
    int n_values, cap_values;
    struct mq_strmap *names;   /* value name -> index into values */

    struct plan_step *steps;
    int n_steps;

    /* Fed inputs (main graph: inputs without initializer; subgraph: every formal input). */
    int n_inputs;
    int *input_values;
    const Onnx__ValueInfoProto **inputs;
    int n_outputs;
    int *output_values;
    const Onnx__ValueInfoProto **outputs;
};

struct mq_exec {
    const struct mq_plan *plan;
    struct mq_exec *parent;
    struct mq_tensor *slots;   /* one per value; constants stay in the plan */
    const struct mq_run_options *options;
};

int mq_plan_lookup(const struct mq_plan *plan, const char *name);
/* Adds a value (the name must be new and outlive the plan); its index, or -1 when out of memory. */
int mq_plan_value_add(struct mq_plan *plan, const char *name);
/* Frees what a step owns (kernel state, subgraphs, index arrays) and zeroes it. */
void mq_plan_step_release(struct plan_step *step);
/* Fuses operators of a built plan, before liveness (interp/fuse.c). */
int mq_plan_fuse(struct mq_plan *plan, struct mq_error *err);
/* Lets kernels prepare their constant weights (Conv packing, interp/fuse.c). */
int mq_plan_pack_weights(struct mq_plan *plan, struct mq_error *err);
/* Runs steps [0, n_steps) of an exec whose inputs are already in its slots. */
int mq_exec_steps(struct mq_exec *exec, struct mq_error *err);
/* Pointer to the tensor holding value v as seen from exec (constant, local or outer). */
const struct mq_tensor *mq_exec_value(const struct mq_exec *exec, int v);
/* Runs a single step (used by the planner to fold constants). */
int mq_exec_step(struct mq_exec *exec, const struct plan_step *step, struct mq_error *err);

#endif
