/* What the files of the canonicalisation pass share (graph/canonical*.c). */
#ifndef MQ_GRAPH_CANONICAL_INTERNAL_H
#define MQ_GRAPH_CANONICAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "util/error.h"

/*
 * Runs one node whose inputs are all constant through the interpreter: a
 * one-node graph whose initializers are `inputs` (named as the node reads
 * them) is planned, and the planner's constant folding runs the node's own
 * kernel.  On success outputs[o] holds a new TensorProto named after the
 * node's o-th output (NULL for an unnamed one) and 0 is returned.  Returns 1,
 * with outputs all NULL, when the node cannot be folded: no kernel, a kernel
 * error, or outputs larger than max_bytes together.  Negative only when out
 * of memory outside the interpreter.
 */
int mq_graph_fold_node(const Onnx__ModelProto *model, Onnx__NodeProto *node,
                       Onnx__TensorProto **inputs, size_t n_inputs, uint64_t max_bytes,
                       Onnx__TensorProto **outputs, struct mq_error *err);

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
