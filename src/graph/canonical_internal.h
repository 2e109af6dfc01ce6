/* What the files of the canonicalisation pass share (graph/canonical*.c). */
#ifndef MQ_GRAPH_CANONICAL_INTERNAL_H
#define MQ_GRAPH_CANONICAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "util/error.h"

/* Whether a node that makes much more data than it reads may fold all the same. */
struct mq_graph_fold_expanding {
    int (*allowed)(const Onnx__NodeProto *node, void *user);
    void *user;
};

/*
 * Runs one node whose inputs are all constant through the interpreter: a
 * one-node graph whose initializers are `inputs` (named as the node reads
 * them) is planned, and the planner's constant folding runs the node's own
 * kernel.  On success outputs[o] holds a new TensorProto named after the
 * node's o-th output (NULL for an unnamed one) and 0 is returned.  Returns 1,
 * with outputs all NULL, when the node cannot be folded: no kernel, a kernel
 * error, or outputs larger than max_bytes together; also a node that makes
 * much more data than it reads, unless `expanding` (may be NULL) allows it.  Negative only when out
 * of memory outside the interpreter.
 */
int mq_graph_fold_node(const Onnx__ModelProto *model, Onnx__NodeProto *node,
                       Onnx__TensorProto **inputs, size_t n_inputs, uint64_t max_bytes,
                       const struct mq_graph_fold_expanding *expanding,
                       Onnx__TensorProto **outputs, struct mq_error *err);

/*
 * Rewrites node into the simpler op it is when an exporter wrote it another
 * way (Sum of two inputs is Add; a one-input Sum/Mean/Max/Min is Identity):
 * 1 when rewritten, 0 when not an alias, -1 when out of memory.
 */
int mq_graph_rewrite_alias(Onnx__NodeProto *node);

/*
 * Replaces the If node g->node[n] by the nodes and initializers of its then
 * (take_then) or else branch, the branch's outputs taking the If's output
 * names.  Declines (0) when a name the branch defines is already defined in g
 * or in the enclosing graphs `outer`, or the branch has formal inputs.  1 when
 * inlined, -1 when out of memory.
 */
int mq_graph_inline_if(Onnx__GraphProto *g, size_t n, int take_then,
                       const Onnx__GraphProto *const *outer, int n_outer);

#endif
