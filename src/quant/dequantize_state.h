/*
 * The state dequantize's steps share, and the steps themselves: folding
 * constant DequantizeLinear into float initializers (dequantize_weights.c),
 * removing activation Q/DQ pairs (dequantize_pairs.c), putting back the
 * activations the quantizer folded (dequantize_activations.c, which reads its
 * record), and dropping what only removed nodes used (dequantize_cleanup.c);
 * dequantize.c drives them graph by graph.  Internal to those files.
 */
#ifndef MQ_DEQUANTIZE_STATE_H
#define MQ_DEQUANTIZE_STATE_H

#include <string.h>

#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "quant/dequantize.h"
#include "quant/graph.h"
#include "util/error.h"

/* One entry of the quantizer's fold record (MQ_FOLDED_ACTIVATIONS_KEY). */
struct fold {
    char *op_type;   /* "Relu" or "Clip" */
    char *node;      /* the name the activation node had */
    double min, max; /* Clip bounds (infinite when absent) */
};

struct model_ctx {
    Onnx__ModelProto *model;
    const struct mq_dequantize_options *o;
    struct mq_dequantize_result *r;
    struct mq_names names;
    /* Names a node, initializer or graph input/output uses (value infos may name stale ones). */
    struct mq_strmap *live;
    /* The quantizer's record of folded activations, by tensor; NULL when the model has none. */
    struct mq_strmap *folds;
    struct fold *fold_v;
    int n_folds;
    /* Initializers a removed node read: dropped at the end when nothing else reads them. */
    char **candidates;
    int n_candidates, cap_candidates;
    struct mq_error *err;
};

struct graph_ctx {
    struct model_ctx *m;
    Onnx__GraphProto *g;
    const struct graph_ctx *parent;
    struct mq_strmap *producer;  /* tensor -> node index in g */
    struct mq_strmap *outputs;   /* graph outputs of g */
    struct mq_strmap *inputs;    /* graph inputs of g */
    int n_nodes;                 /* g->n_node before the rewrite: the size of the arrays below */
    int *removed;
    /* Nodes to place right after node i (restored Relu, Identity to a graph output). */
    Onnx__NodeProto ***after;
    int *n_after;
    /* Identical folded DequantizeLinear share one initializer: key -> index of its name. */
    struct mq_strmap *folded;
    char **folded_names;
    int n_folded, cap_folded;
};

/* ---- the steps ---- */

/* Folds DequantizeLinear node i of a constant into an initializer (dequantize_weights.c). */
int mq_dequantize_fold_weight(struct graph_ctx *gc, int i);
/* Quantized integers as int32 (dequantize_weights.c). */
int mq_dequantize_decode_ints(const Onnx__TensorProto *p, const char *what, struct mq_tensor *out,
                              struct mq_error *err);
/* Clip node i on a QuantizeLinear's codes, read by one DequantizeLinear (the quantizer's
   HardSigmoid on codes), back to a float HardSigmoid of the float input (dequantize_codes.c). */
int mq_dequantize_restore_hardsigmoid(struct graph_ctx *gc, int i);
/* Removes the pair of QuantizeLinear node i and its DequantizeLinear readers
   (dequantize_pairs.c). */
int mq_dequantize_remove_pair(struct graph_ctx *gc, int i);
/*
 * Puts back the activation the quantizer folded into the pair `q` quantizes t
 * with, when its record names t (or, without a record, when the pair clamps
 * at zero after an op that can go negative); the producer of t is live node
 * `producer` (dequantize_activations.c).
 */
int mq_dequantize_restore_activation(struct graph_ctx *gc, int producer,
                                     const Onnx__NodeProto *q, const char *t);
/* Reads the quantizer's fold record and removes it from the model (dequantize_activations.c). */
int mq_dequantize_read_record(struct model_ctx *m);
void mq_dequantize_record_free(struct model_ctx *m);
/* Every name a node, initializer or graph input of the model uses (dequantize_cleanup.c). */
int mq_dequantize_collect_live(struct mq_strmap *live, const Onnx__GraphProto *g);
/* Drops the initializers and value infos only removed nodes used (dequantize_cleanup.c). */
int mq_dequantize_cleanup(struct model_ctx *m);

/* ---- shared helpers (dequantize.c) ---- */

/* Appends to a counted array with a capacity; -1 when out of memory. */
int mq_dequantize_push(void ***array, int *n, int *cap, void *item);
/* Notes an initializer a removed node read (NULL: nothing); -1 when out of memory. */
int mq_dequantize_add_candidate(struct model_ctx *m, const char *name);
/* An initializer of the graph or of an enclosing one; NULL when there is none. */
Onnx__TensorProto *mq_dequantize_find_initializer(const struct graph_ctx *gc, const char *name);
/* Places a new node right after node i; -1 when out of memory. */
int mq_dequantize_place_after(struct graph_ctx *gc, int i, Onnx__NodeProto *node);

static inline int dequantize_oom(struct model_ctx *m)
{
    return mq_error_code(m->err, MQ_ERR_MEMORY, "out of memory dequantizing the model");
}

/* The node's name for messages: its own, else its op type. */
static inline const char *dequantize_node_label(const Onnx__NodeProto *node)
{
    return node->name && *node->name ? node->name : mq_str(node->op_type);
}

#endif
