/*
 * The canonical graph: one form of a network whatever exporter wrote it.
 *
 * Run on a loaded model before anything is decided about it, in the main
 * graph and, recursively, in every subgraph (names of enclosing scopes
 * respected):
 *   - Constant nodes become initializers;
 *   - a node whose inputs are all constants is run through the interpreter's
 *     own kernel and its outputs become initializers (the folded value is
 *     exactly what the model computed); nondeterministic ops, nodes holding
 *     subgraphs and outputs over a size bound are left as they are;
 *   - ops written another way by some exporters become the op they are
 *     (Sum of two inputs -> Add, one-input Sum/Mean/Max/Min -> Identity);
 *   - Identity nodes are removed and their readers rewired;
 *   - an If whose condition is constant is replaced by the branch it takes;
 *   - initializers nobody reads are dropped (with their graph input entry
 *     when an old model lists them as inputs too).
 * The inputs a caller feeds and every graph output keep their names; an
 * output that turns out constant stays produced by a Constant node.  In a
 * model of IR version 3, which lists every initializer as a graph input, the
 * new initializers are listed too.  DequantizeLinear of a constant folds only
 * in a model without QuantizeLinear (stored compressed weights): in a QDQ
 * model it is the quantization itself.
 */
#ifndef MQ_GRAPH_CANONICAL_H
#define MQ_GRAPH_CANONICAL_H

#include <stdint.h>

#include "onnx.pb-c.h"
#include "util/error.h"

/* Default bound on the bytes one folded node may produce: above it the node stays. */
#define MQ_GRAPH_FOLD_MAX_BYTES ((uint64_t)64 << 20)

struct mq_graph_canonical_options {
    uint64_t fold_max_bytes; /* 0: MQ_GRAPH_FOLD_MAX_BYTES */
    /*
     * Nodes that make much more data than they read (ConstantOfShape, Expand,
     * Tile, Range of constants) stay nodes, since storing their output only
     * grows the file, unless this says every reader takes the output where
     * it wants a constant (the quantizer: a weight or bias it stores in int8).
     * Called with each reader and the input slot it reads the output in.
     */
    int (*wants_constant)(const Onnx__NodeProto *reader, size_t input, void *user);
    void *wants_constant_user;
};

/* What the pass changed, over all graphs. */
struct mq_graph_canonical_counts {
    int constants;            /* Constant nodes turned into initializers */
    int folded;               /* other nodes folded into initializers */
    int identities;           /* Identity nodes removed */
    int aliases;              /* nodes rewritten into the op they are (Sum of two -> Add) */
    int branches_inlined;     /* If nodes with a constant condition replaced by their branch */
    int initializers_dropped; /* initializers nobody read any more */
    int nodes_before, nodes_after; /* nodes in all graphs */
};

/*
 * Canonicalises the model in place.  `options` and `counts` may be NULL.
 * A node that cannot be folded (no kernel, a kernel error, too large) is
 * kept as it is: only running out of memory or a malformed graph fail.
 */
int mq_graph_canonicalize(Onnx__ModelProto *model, const struct mq_graph_canonical_options *options,
                          struct mq_graph_canonical_counts *counts, struct mq_error *err);

#endif
