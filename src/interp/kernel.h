/*
 * The contract between the planner and an operator kernel.
 *
 * A kernel is found by (domain, op_type, opset version).  At plan time its
 * `prepare` validates the node's attributes and keeps what it parsed in
 * `node->state`; an unsupported attribute value is reported there, before any
 * sample runs.  At run time `run` reads its inputs, computes the output shapes
 * from the actual input shapes (real models have dynamic dimensions),
 * allocates each output with mq_tensor_alloc and fills it.
 *
 * `run` must be safe to call from several threads at once on the same node:
 * it may read node->state but never write it.
 */
#ifndef MQ_KERNEL_H
#define MQ_KERNEL_H

#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "util/error.h"

struct mq_exec;      /* per-run state, see interp/plan.h */
struct mq_plan;      /* a built graph, see interp/plan.h */

/*
 * An activation that a plan built with fusion runs as part of the op before it
 * (interp/fuse.c), on output 0, with the comparisons of the op absorbed, so that NaN and -0
 * come out as they would from it:
 *  MQ_FUSED_CLIP       Clip (or Relu: lo 0, hi +inf): hi < v ? hi : v of v = lo > y ? lo : y;
 *                      an absent bound is an infinity;
 *  MQ_FUSED_HARDSWISH  HardSwish: y * c, c = v > 1 ? 1 : v of v = y / 6 + 0.5 < 0 ? 0 : that.
 */
enum { MQ_FUSED_NONE, MQ_FUSED_CLIP, MQ_FUSED_HARDSWISH };
struct mq_fused_clamp {
    int kind;                  /* MQ_FUSED_*; 0: nothing absorbed */
    double lo, hi;             /* exact in the output's element type */
    int dtype;                 /* the bounds' element type; 0: Clip's attributes, any float type */
    const char *clip_name;     /* the node absorbed, for errors */
};

struct mq_kernel_node {
    const Onnx__NodeProto *proto;
    const char *name;        /* node name, or "<op_type>#<index>" when the model gives none */
    const char *op_type;
    const char *domain;      /* "" for ai.onnx */
    int opset;               /* version of the node's domain that the model imports */
    int n_inputs;            /* as written in the node, trailing "" included */
    int n_outputs;
    void *state;             /* owned by the kernel: set in prepare, freed by destroy */
    /* Graph attributes (If/Loop/Scan bodies), built by the planner in attribute order. */
    int n_subgraphs;
    struct mq_plan **subgraphs;
    const char **subgraph_names; /* attribute names: "then_branch", "body", ... */
    /* Set by fusion only (interp/fuse.c); the kernels of interp/ops/fused.h that apply it */
    struct mq_fused_clamp clamp;
};

/*
 * inputs[i] is NULL for an optional input that is absent ("" or beyond the
 * node's input list).  outputs[] arrive zeroed; the kernel allocates every
 * output it produces.  An output whose name is "" may still be allocated: the
 * runner frees it.
 */
typedef int (*mq_kernel_prepare_fn)(struct mq_kernel_node *node, struct mq_error *err);
typedef int (*mq_kernel_run_fn)(const struct mq_kernel_node *node, struct mq_exec *exec,
                                const struct mq_tensor *const *inputs, int n_inputs,
                                struct mq_tensor *outputs, int n_outputs, struct mq_error *err);
typedef void (*mq_kernel_destroy_fn)(void *state);

struct mq_kernel {
    const char *domain;      /* "" for ai.onnx, "com.microsoft", ... */
    const char *op_type;
    int since_version;       /* first opset version this entry handles */
    int until_version;       /* last one, inclusive; 0 means "up to the newest" */
    mq_kernel_prepare_fn prepare; /* may be NULL */
    mq_kernel_run_fn run;
    mq_kernel_destroy_fn destroy; /* may be NULL; called with node->state */
};

/* Each op family file exports one table, ended by an entry whose op_type is NULL. */
extern const struct mq_kernel mq_kernels_conv[];
extern const struct mq_kernel mq_kernels_conv_transpose[];
extern const struct mq_kernel mq_kernels_matmul[];
extern const struct mq_kernel mq_kernels_pool[];
extern const struct mq_kernel mq_kernels_normalization[];
extern const struct mq_kernel mq_kernels_elementwise[];
extern const struct mq_kernel mq_kernels_unary[];
extern const struct mq_kernel mq_kernels_softmax[];
extern const struct mq_kernel mq_kernels_reduce[];
extern const struct mq_kernel mq_kernels_reshape_views[];
extern const struct mq_kernel mq_kernels_layout[];
extern const struct mq_kernel mq_kernels_pad[];
extern const struct mq_kernel mq_kernels_selection[];
extern const struct mq_kernel mq_kernels_copy[];
extern const struct mq_kernel mq_kernels_generators[];
extern const struct mq_kernel mq_kernels_gather_scatter[];
extern const struct mq_kernel mq_kernels_resize[];
extern const struct mq_kernel mq_kernels_cast[];
extern const struct mq_kernel mq_kernels_control_flow[];
extern const struct mq_kernel mq_kernels_rnn[];
extern const struct mq_kernel mq_kernels_quantize_linear[];
extern const struct mq_kernel mq_kernels_integer_ops[];
extern const struct mq_kernel mq_kernels_misc[];
extern const struct mq_kernel mq_kernels_sorting[];
extern const struct mq_kernel mq_kernels_linalg[];
extern const struct mq_kernel mq_kernels_signal[];
extern const struct mq_kernel mq_kernels_sampling[];
/* onnxruntime's com.microsoft ops (contrib_*.c) */
extern const struct mq_kernel mq_kernels_contrib_gelu[];
extern const struct mq_kernel mq_kernels_contrib_norm[];
extern const struct mq_kernel mq_kernels_contrib_matmul[];
extern const struct mq_kernel mq_kernels_contrib_gather[];
extern const struct mq_kernel mq_kernels_contrib_attention[];
extern const struct mq_kernel mq_kernels_attention[];
extern const struct mq_kernel mq_kernels_transformer_norm[];
extern const struct mq_kernel mq_kernels_opset24_simple[];
extern const struct mq_kernel mq_kernels_grid_cache_ops[];
extern const struct mq_kernel mq_kernels_conv_im[];
extern const struct mq_kernel mq_kernels_sequence_state[];
extern const struct mq_kernel mq_kernels_tree_ensemble[];
extern const struct mq_kernel mq_kernels_image_decoder[];

/* Finds the kernel for a node; NULL when none handles that version. */
const struct mq_kernel *mq_registry_find(const char *domain, const char *op_type, int opset);
/* Calls fn for every registered kernel (for listings and tests). */
void mq_registry_each(void (*fn)(const struct mq_kernel *k, void *user), void *user);

#endif
