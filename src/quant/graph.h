/*
 * What the quantizer needs to know about one graph: who produces and who
 * consumes each tensor, which names are initializers, graph inputs and
 * outputs, each tensor's element type, and a stable topological order.
 * Plus the set of every name in a model, so that new names never collide.
 */
#ifndef MQ_QUANT_GRAPH_H
#define MQ_QUANT_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "graph/edit.h"
#include "onnx.pb-c.h"
#include "util/error.h"
#include "util/strmap.h"

/* ---- every name in a model ---- */
struct mq_names {
    struct mq_strmap *map;
};
/* Collects tensor and node names of the main graph and all subgraphs. */
int mq_names_collect(const Onnx__ModelProto *model, struct mq_names *names, struct mq_error *err);
void mq_names_free(struct mq_names *names);
/*
 * `base` if unused, else base_1, base_2, ...; the result is registered and
 * malloc'd (the caller owns it).  NULL when out of memory.
 */
char *mq_names_fresh(struct mq_names *names, const char *base);
int mq_names_add(struct mq_names *names, const char *name);

/* ---- one graph ---- */
struct mq_consumer {
    int node;       /* index into graph->node */
    int implicit;   /* used inside one of the node's subgraphs, not as a direct input */
};

struct mq_tensor_info {
    char *name;
    int producer;           /* node index, -1 when none (input, initializer, outer scope) */
    int initializer;        /* index into graph->initializer, -1 when none */
    int graph_input, graph_output;
    int elem_type;          /* ONNX TensorProto.DataType, 0 when unknown */
    struct mq_consumer *consumers;
    int n_consumers, cap_consumers;
};

struct mq_graph_index {
    Onnx__GraphProto *graph;
    const struct mq_graph_index *parent; /* enclosing graph, for outer-scope names */
    struct mq_tensor_info *tensors;
    int n_tensors, cap_tensors;
    struct mq_strmap *by_name;
};

/*
 * Reorders graph->node topologically, keeping the given order wherever the
 * dependencies allow (so a sorted graph is left as it is).  A node that holds
 * subgraphs depends on the outer names its subgraphs read.  Fails on a cycle
 * and on a tensor produced twice.
 */
int mq_graph_toposort(Onnx__GraphProto *graph, struct mq_error *err);

/* Builds the index of a graph (after sorting).  `parent` may be NULL. */
int mq_graph_index_build(Onnx__GraphProto *graph, const struct mq_graph_index *parent,
                         struct mq_graph_index *index, struct mq_error *err);
void mq_graph_index_free(struct mq_graph_index *index);

/* The entry of a name in this graph, or NULL. */
struct mq_tensor_info *mq_graph_tensor(const struct mq_graph_index *index, const char *name);
/* Registers a name (no producer, no consumers) if new; NULL when out of memory. */
struct mq_tensor_info *mq_graph_tensor_add(struct mq_graph_index *index, const char *name);
/* An initializer of this graph or of an enclosing one; NULL when there is none. */
Onnx__TensorProto *mq_graph_find_initializer(const struct mq_graph_index *index, const char *name);
/* Element type of a name here or in an enclosing graph; 0 when unknown. */
int mq_graph_elem_type(const struct mq_graph_index *index, const char *name);

/* Adds a consumer record (node `node` reads `name`). */
int mq_graph_add_consumer(struct mq_graph_index *index, const char *name, int node, int implicit);

/* Attribute helpers (NULL / fallback when absent). */
const Onnx__AttributeProto *mq_node_attr(const Onnx__NodeProto *node, const char *name);
long long mq_node_attr_int(const Onnx__NodeProto *node, const char *name, long long fallback);
float mq_node_attr_float(const Onnx__NodeProto *node, const char *name, float fallback);
/* A string attribute copied into buf ("" when absent). */
const char *mq_node_attr_string(const Onnx__NodeProto *node, const char *name, char *buf,
                                size_t size);

/* A Conv's geometry attributes, for up to MQ_CONV_MAX_SPATIAL spatial dims. */
#define MQ_CONV_MAX_SPATIAL 3
struct mq_conv_attrs {
    int64_t strides[MQ_CONV_MAX_SPATIAL], dilations[MQ_CONV_MAX_SPATIAL];
    int64_t pads[2 * MQ_CONV_MAX_SPATIAL]; /* the begins, then the ends */
    int auto_pad;                          /* 0 NOTSET, 1 VALID, 2 SAME_UPPER, 3 SAME_LOWER */
};

/* Reads strides and dilations (default 1), pads (default 0) and auto_pad for `spatial` dims:
   1, or 0 when one is malformed (wrong count, below its minimum, unknown auto_pad). */
int mq_conv_attrs_read(const Onnx__NodeProto *node, int spatial, struct mq_conv_attrs *out);

/* One spatial dim of a Conv: its output size and leading pad; 0 when the input is too small
   for the kernel. */
int mq_conv_output_dim(int auto_pad, int64_t in, int64_t kernel, int64_t stride,
                       int64_t dilation, int64_t pad_begin, int64_t pad_end, int64_t *out,
                       int64_t *pad);

/*
 * Adds to refs every name a node of g (or of its subgraphs) reads and every
 * name a graph returns: what must stay when unused initializers are dropped.
 * 0, or -1 when out of memory or nested deeper than MQ_MAX_SUBGRAPH_DEPTH.
 */
int mq_graph_collect_reads(const Onnx__GraphProto *g, struct mq_strmap *refs);

#endif
