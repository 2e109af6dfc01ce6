/*
 * Internal to the QDQ rewrite (qdq*.c): the marks and bias jobs the passes
 * share, the per-model and per-graph context, and the passes' entry points.
 */
#ifndef MQ_QDQ_INTERNAL_H
#define MQ_QDQ_INTERNAL_H

#include <stdint.h>

#include "core/tensor.h"
#include "quant/graph.h"
#include "quant/op_rules.h"
#include "quant/params.h"
#include "quant/qdq.h"
#include "quant/sample_stats.h"

struct intvec {
    int *v;
    int n, cap;
};

struct nodevec {
    Onnx__NodeProto **v;
    int n, cap;
};

/* MK_CODES: a HardSigmoid's output, the clamped codes of share_from (hardsigmoid_codes.c). */
enum mark_kind { MK_ACTIVATION, MK_WEIGHT, MK_CONSTANT, MK_SHARED, MK_CODES };
enum mark_state { MS_PENDING, MS_DONE, MS_FAILED };

/* A tensor some selected node wants quantized, and what became of it. */
struct mark {
    char *name;
    enum mark_kind kind;
    int axis;                   /* weights per channel: the axis; -1 per tensor */
    char *share_from;           /* MK_SHARED: the tensor whose scale it reuses */
    enum mark_state state;
    char *reason;               /* MS_FAILED: why it stays float */
    /* results */
    char *scale_name, *zp_name, *dq_name;
    char *q_input;              /* what its QuantizeLinear reads (activations and shared) */
    char *q_output;             /* what its QuantizeLinear writes (activations and shared) */
    int qtype;
    int symmetric;
    struct mq_qrange qr;
    int n_ch;
    float *scales;
    int32_t *zps;
    float *ch_lo, *ch_hi;       /* weights: each channel's range (for bias adjustments) */
    int has_range;
    float lo, hi;
    Onnx__TensorProto *q_init, *scale_init, *zp_init; /* weights and constants */
    Onnx__NodeProto *dq_node;   /* weights and constants: their DequantizeLinear */
    int keep_zp;                /* read by a node whose fusion needs the zero-point input */
    struct intvec adjusted;     /* channels enlarged for an int32 bias */
    char *note;
    /*
     * A HardSigmoid clamps this activation's codes (hardsigmoid_codes.c): its map, which
     * decides the scale (beta / alpha over an integer codes_k), and codes_k once applied.
     */
    int has_codes_map;
    float codes_alpha, codes_beta;
    int codes_k;
};

struct bias_job {
    int node;
    char *bias, *input, *weight;
    float beta;
    int expect_len;             /* bias elements per-channel weights require; -1 any */
    int channel_mod;            /* bias channel c uses weight channel c % channel_mod */
    enum mark_state state;
    char *reason;
    /* results */
    int n_ch;
    float *scales;
    float *values;              /* beta * bias, decoded */
    int64_t count;
    int rank;
    int64_t dims[MQ_MAX_RANK];
    char *scale_name, *zp_name, *dq_name, *q_name;
    int clamped;
    int corrected;              /* bias correction applied */
    double max_shift;           /* its largest change to a value */
};

/* A Relu/Clip folded into the op before it, for the record dequantize reads. */
struct fold_note {
    char *tensor;               /* the activation's output, which the op before it now writes */
    char *op_type, *node;
    float lo, hi;               /* its bounds; infinite when absent */
};

struct cleanup_candidate {
    Onnx__GraphProto *graph;
    char *name;
};

struct model_ctx {
    Onnx__ModelProto *model;
    struct mq_selection *sel;
    const struct mq_ranges *ranges;
    const struct mq_quant_options *o;
    int opset;
    struct mq_names names;
    /* Ranges replaced before quantization (Softmax output, the input of a folded Relu). */
    struct mq_strmap *override_of;
    float (*overrides)[2];
    int n_overrides, cap_overrides;
    struct mq_quant_result *res;
    struct cleanup_candidate *cands;
    int n_cands, cap_cands;
    struct mq_strmap *cand_of;     /* "graph/name" of each candidate */
    struct mq_strmap *skipped_of;  /* "graph/name" of each skipped tensor reported */
    /* The fold record (MQ_FOLDED_ACTIVATIONS_KEY), one line per folded activation. */
    char *fold_record;
    size_t fold_record_len;
    /* Folded nodes, freed last: until then no new node can take their address. */
    struct nodevec graveyard;
    struct mq_error *err;
};

struct graph_ctx {
    struct model_ctx *m;
    Onnx__GraphProto *g;
    const char *path;
    struct mq_graph_index idx;
    struct mark *marks;
    int n_marks, cap_marks;
    struct mq_strmap *mark_of;
    struct bias_job *jobs;
    int n_jobs, cap_jobs;
    int n_nodes;
    char *removed;
    struct intvec *node_marks;
    struct intvec *node_jobs;
    char **node_notes;          /* per node: something to add to its report line */
    struct nodevec prologue;
    struct nodevec *after;
    char **vanished;            /* names no longer in the graph (folded outputs) */
    int n_vanished;
    struct fold_note *folds;
    int n_folds;
};

/* qdq_context.c */
int mq_qdq_intvec_push(struct intvec *iv, int x);
int mq_qdq_nodevec_push(struct nodevec *nv, Onnx__NodeProto *node);
void mq_qdq_nodevec_free_all(struct nodevec *nv);
/* Raw little-endian bytes of integer values of an ONNX type (4-bit packed two a byte). */
int mq_qdq_encode_ints(int dtype, const int32_t *q, int64_t n, ProtobufCBinaryData *out);
int mq_qdq_encode_floats(const float *v, int64_t n, ProtobufCBinaryData *out);
/* Sets the out-of-memory error and returns its code. */
int mq_qdq_oom(struct model_ctx *m);
/* A float initializer the rewrite replaced: dropped at the end if nothing reads it. */
int mq_qdq_add_candidate(struct model_ctx *m, Onnx__GraphProto *g, const char *name);
/* A range that replaces the calibrated one (Softmax output, the input of a folded Relu). */
int mq_qdq_set_override(struct model_ctx *m, const char *name, float lo, float hi);
/* The range to quantize a tensor with; 0 and a reason when there is none. */
int mq_qdq_get_range(const struct model_ctx *m, const char *name, float *lo, float *hi,
                     const char **why);
/* Whether the statistics pass says the activation stays float (the reason in *why). */
int mq_qdq_stats_reject(const struct model_ctx *m, const char *name, char **why);
/* The mark of a tensor of this graph, NULL when none. */
struct mark *mq_qdq_find_mark(const struct graph_ctx *gc, const char *name);
int mq_qdq_is_quantized(const struct graph_ctx *gc, const char *name);
/* The graph (this one or an enclosing one) that holds an initializer. */
Onnx__GraphProto *mq_qdq_initializer_owner(const struct mq_graph_index *index, const char *name);
/* A scalar float constant of this scope or above; 0 when it is not one. */
int mq_qdq_constant_scalar(const struct graph_ctx *gc, const char *name, float *out);
/* What the op table's predicates may ask about this graph. */
void mq_qdq_op_query(const struct graph_ctx *gc, struct mq_op_query *q);
/* An unused name base+suffix (malloc'd), NULL when out of memory. */
char *mq_qdq_fresh(struct graph_ctx *gc, const char *base, const char *suffix);
/* Every direct reader of `from` in this graph reads `to` instead. */
/*
 * Whether node k reads `tensor` as its data input and must keep reading it float: a node left
 * float whose op type says float_reads_float (op_rules.h) and whose output (directly or after
 * one Relu/Clip) a quantized node reads, or a float data-movement node (the shared role:
 * MaxPool, Reshape, ...) on the way to one.  Between a DequantizeLinear and a QuantizeLinear,
 * onnxruntime 1.30 would quantize its weights on its own terms (one scale per tensor), and it
 * moves a DequantizeLinear across the data-movement nodes first.
 */
int mq_qdq_float_reader(const struct graph_ctx *gc, int k, const char *tensor);
int mq_qdq_rename_consumers(struct graph_ctx *gc, const char *from, const char *to);
/* Queues a new node after its producer (-1: before every node). */
int mq_qdq_place(struct graph_ctx *gc, int producer, Onnx__NodeProto *node);
/* The mark stays float, with the reason. */
int mq_qdq_fail_mark(struct graph_ctx *gc, struct mark *mk, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* qdq_plan.c */
/* Marks a tensor for quantization on behalf of a node; the first mark decides how. */
int mq_qdq_mark_tensor(struct graph_ctx *gc, int node, const char *name, enum mark_kind kind,
                       int axis, const char *share_from);
/* Adds a remark to the node's report line. */
int mq_qdq_note_node(struct graph_ctx *gc, int node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Marks what a selected node quantizes, from its row of the op table. */
int mq_qdq_plan_node(struct graph_ctx *gc, int i);

/* qdq_activation_fold.c */
/* onnxruntime's range adjustments (fixed output ranges, foldable activations). */
int mq_qdq_adjust_ranges(struct graph_ctx *gc);
/* Folds a Relu/Clip into the op before it when exact; *folded says whether it did. */
int mq_qdq_try_fold(struct graph_ctx *gc, int i, int *folded);
/* Adds the graph's folds whose Q/DQ exists to m->fold_record (after quantizing). */
int mq_qdq_record_folds(struct graph_ctx *gc);
/* Writes m->fold_record into the model's metadata (replacing an older one). */
int mq_qdq_write_fold_record(struct model_ctx *m);
void mq_qdq_fold_notes_free(struct graph_ctx *gc);

/* qdq_islands.c */
int mq_qdq_is_selected(const struct mq_selection *sel, const Onnx__NodeProto *node);
/* Whether `reader` takes `name` as an input its op rule quantizes (a bias never is; an op
   without a rule: any input). */
int mq_qdq_reads_quantized(const Onnx__NodeProto *reader, const char *name);
/* Per node, whether it stays selected (it reaches an island start); malloc'd. */
char *mq_qdq_kept_nodes(const struct mq_graph_index *idx, const struct mq_selection *sel);
/* Selected nodes outside every island become skipped, with the reason. */
int mq_qdq_prune_islands(struct graph_ctx *gc);

/* qdq_emit.c */
/* A Q -> DQ pair on an activation; readers get the DQ output. */
int mq_qdq_insert_qdq(struct graph_ctx *gc, struct mark *mk);
int mq_qdq_alloc_channels(struct mark *mk, int n);
int mq_qdq_add_param_inits(struct graph_ctx *gc, struct mark *mk, int rank, const int64_t *dims);
/* Scale and zero point from the range, then the pair. */
int mq_qdq_quantize_activation(struct graph_ctx *gc, struct mark *mk);
/* The pair with the scale and zero point of the tensor it shares. */
int mq_qdq_quantize_shared(struct graph_ctx *gc, struct mark *mk);
/* Writes a mark's scales and zero points into its initializers. */
int mq_qdq_write_params(struct graph_ctx *gc, struct mark *mk);

/* hardsigmoid_codes.c */
/* Plans a HardSigmoid (codes role) as a Clip of its input's codes, or skips it with why. */
int mq_qdq_plan_codes(struct graph_ctx *gc, int i, const struct mq_op_rule *r);
/* An activation a HardSigmoid reads: *p and *lo become the constrained scale, zero point
   and range when the plan still holds (mk->codes_k set), else stay as they are. */
void mq_qdq_codes_constrain(struct mark *mk, float *lo, float hi, struct mq_qparams *p);
/* The HardSigmoid's output: its Clip and DequantizeLinear, or a plain Q/DQ pair (and the
   node float) when its input's scale could not be constrained. */
int mq_qdq_quantize_codes(struct graph_ctx *gc, struct mark *mk);

/* qdq_weights.c */
void mq_qdq_channel_layout(const struct mq_tensor *t, int axis, int64_t *channels, int64_t *inner);
int mq_qdq_decode_initializer(struct graph_ctx *gc, const char *name, struct mq_tensor *t);
/* A weight or constant: scales from its values, its DequantizeLinear. */
int mq_qdq_quantize_initializer(struct graph_ctx *gc, struct mark *mk);
/* Quantizes a weight with its final scales into its initializer. */
int mq_qdq_write_weight(struct graph_ctx *gc, struct mark *mk);
/* Every bias job: checked, weight scales enlarged, corrected, emitted. */
int mq_qdq_quantize_biases(struct graph_ctx *gc);

/* qdq_assemble.c */
/* The report's records of quantized and skipped tensors. */
int mq_qdq_add_records(struct graph_ctx *gc);
/* SELECTED nodes become QUANTIZED or SKIPPED. */
int mq_qdq_finalize_statuses(struct graph_ctx *gc);
/* The new node list (new nodes placed after their producers), sorted. */
int mq_qdq_assemble(struct graph_ctx *gc);
/* Replaced float initializers nothing reads any more are dropped. */
int mq_qdq_remove_unused(struct model_ctx *m);

#endif
