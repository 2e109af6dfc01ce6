/*
 * Editing an ONNX graph in place: appending to protobuf-c repeated fields,
 * making nodes and initializers, renaming the tensors nodes read and write,
 * and walking the subgraphs a node holds.  Every pass that rewrites a graph
 * uses these instead of its own copies.
 */
#ifndef MQ_GRAPH_EDIT_H
#define MQ_GRAPH_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

/* Appends a pointer to a protobuf-c repeated field: 0, or -1 when out of memory. */
int mq_graph_append_ptr(void ***array, size_t *n, void *item);

/* Input i of a node, NULL when absent or "" (an omitted optional input). */
const char *mq_graph_input_at(const Onnx__NodeProto *node, size_t i);

/*
 * Every input of the node named `from` reads `to` instead: 0, or -1 when out
 * of memory.  `from` must not point into the node's own strings.
 */
int mq_graph_node_rename_input(Onnx__NodeProto *node, const char *from, const char *to);
/* Every output of the node named `from` is written as `to` (same rules as above). */
int mq_graph_node_rename_output(Onnx__NodeProto *node, const char *from, const char *to);

/*
 * A new node with one output and an optional integer "axis" attribute
 * (axis < 0: none); NULL when out of memory.
 */
Onnx__NodeProto *mq_graph_new_node(const char *op_type, const char *name,
                                   const char *const *inputs, int n_inputs, const char *output,
                                   int axis);

/* A new tensor with this name and element type, no dims or data, in no graph; NULL when out of
   memory. */
Onnx__TensorProto *mq_graph_new_tensor(const char *name, int dtype);
/* A new raw-data initializer (no data yet) appended to the graph; NULL when out of memory. */
Onnx__TensorProto *mq_graph_add_initializer(Onnx__GraphProto *g, const char *name, int dtype,
                                            int rank, const int64_t *dims);
/* Takes an initializer out of the graph and frees it. */
void mq_graph_drop_initializer(Onnx__GraphProto *g, Onnx__TensorProto *t);

/* Drops the graph's initializers of this name and their graph-input entries (models of IR
   version 3 list every initializer among the inputs too). */
void mq_graph_drop_initializer_named(Onnx__GraphProto *g, const char *name);

/* Drops the graph's value infos of the given names (tensors a rewrite made vanish). */
void mq_graph_drop_value_infos(Onnx__GraphProto *g, char *const *names, int n);

/*
 * Whether every read of `from` in the subgraphs of `graph`'s nodes can be
 * renamed to `to` without `to` being captured by a name a subgraph defines.
 */
int mq_graph_rename_is_safe(const Onnx__GraphProto *graph, const char *from, const char *to);
/*
 * Renames every read of `from` in `graph`'s nodes and, where not shadowed, in
 * their subgraphs (node inputs and subgraph outputs).  0, or -1 when out of
 * memory.  Subgraphs nested beyond MQ_MAX_SUBGRAPH_DEPTH are left alone.
 * Defined in graph/rename.c.
 */
int mq_graph_rename_reads(Onnx__GraphProto *graph, const char *from, const char *to);

/* Whether a graph defines a name itself: an input, an initializer or a node output. */
int mq_graph_defines(const Onnx__GraphProto *graph, const char *name);

/* Lookups without an index (graph/lookup.c).  How many node inputs of g read `name`;
   *last_reader (may be NULL) gets the index of the last node reading it. */
int mq_graph_count_readers(const Onnx__GraphProto *g, const char *name, size_t *last_reader);
int mq_graph_is_output(const Onnx__GraphProto *g, const char *name);
int mq_graph_is_input(const Onnx__GraphProto *g, const char *name);
int mq_graph_is_initializer(const Onnx__GraphProto *g, const char *name);
/* g's initializer of this name (its index in *slot when slot is not NULL), or NULL. */
Onnx__TensorProto *mq_graph_initializer_named(const Onnx__GraphProto *g, const char *name,
                                              size_t *slot);
/* `base` + suffix, with a counter when g already defines that name; NULL when out of memory. */
char *mq_graph_fresh_name(const Onnx__GraphProto *g, const char *base, const char *suffix);

/* A node of the default domain with one input and one output; NULL when out of memory. */
Onnx__NodeProto *mq_graph_new_unary_node(const char *op_type, const char *name,
                                         const char *input, const char *output);

/* Appends an attribute to the node: 0, or -1 when out of memory. */
int mq_graph_add_int_attr(Onnx__NodeProto *node, const char *name, int64_t value);
int mq_graph_add_float_attr(Onnx__NodeProto *node, const char *name, float value);

/* Calls fn for every subgraph held by the node's attributes, in attribute order; stops at
   the first non-zero return and returns it. */
typedef int (*mq_graph_subgraph_fn)(Onnx__GraphProto *sub, const char *attr_name, void *user);
int mq_graph_each_subgraph(const Onnx__NodeProto *node, mq_graph_subgraph_fn fn, void *user);

/* Whether the node is in the default ONNX domain ("" or "ai.onnx"). */
int mq_node_is_onnx(const Onnx__NodeProto *node);
/* Whether the node is the default-domain op `op`. */
int mq_node_is_op(const Onnx__NodeProto *node, const char *op);
/* Whether any attribute of the node holds a subgraph. */
int mq_node_has_subgraph(const Onnx__NodeProto *node);

/* Removes node n from the graph and frees it. */
void mq_graph_remove_node(Onnx__GraphProto *g, size_t n);

/*
 * A graph input entry describing an initializer (type and shape), for models
 * of IR version 3, where every initializer must also be a graph input; NULL
 * when out of memory.
 */
Onnx__ValueInfoProto *mq_graph_input_entry(const Onnx__TensorProto *t);

/* A new Constant node producing `value` under its name (taking ownership of value, which
   is freed on failure); NULL when out of memory. */
Onnx__NodeProto *mq_graph_new_constant_node(Onnx__TensorProto *value, const char *node_name);

#endif
