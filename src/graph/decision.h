/*
 * Tensors that feed a discrete decision: a comparison (Equal, Greater, Less,
 * ...), an ArgMax/ArgMin, a TopK or a NonMaxSuppression.  A small error on
 * such a path changes which element wins, which pixel survives a local-maximum
 * filter (Mul(x, Cast(Equal(x, MaxPool(x))))), which box is kept: a change no
 * SQNR figure shows.  The quantizer should leave these paths float.
 */
#ifndef MQ_GRAPH_DECISION_H
#define MQ_GRAPH_DECISION_H

#include "onnx.pb-c.h"
#include "util/error.h"

struct mq_graph_decision_paths {
    /*
     * Tensors on a path into a decision, walking back from each decision's
     * data inputs through the ops that carry values along (activations,
     * pooling, layout and elementwise ops) and stopping at the output of a
     * node that computes new values from weights (Conv, MatMul, Gemm, ...),
     * which is included, or at a graph input, a constant or an op outside
     * those families.  A decision whose path reaches a Shape or Size
     * compares shapes (integers) and is left out.  Each name once, in the
     * order found.
     */
    char **tensors;
    int n_tensors;
    /* Parallel to tensors: the decision each was found from, as "Equal 'name'" (the op type
       alone for a node without a name), for messages. */
    char **tensor_decisions;
    /* Nodes on those paths: the decisions and the ops walked through (not the weighted
       producers, whose inputs may stay quantized).  Names as in the model. */
    char **nodes;
    int n_nodes;
};

/*
 * Finds the decision paths of a graph and, each on its own, of its subgraphs
 * (paths do not cross scopes).  Nodes without a name are left out of `nodes`
 * (their tensors are still listed).  Free with mq_graph_decision_paths_free.
 */
int mq_graph_decision_inputs(const Onnx__GraphProto *graph, struct mq_graph_decision_paths *out,
                             struct mq_error *err);
void mq_graph_decision_paths_free(struct mq_graph_decision_paths *paths);

#endif
