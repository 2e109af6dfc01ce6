/*
 * Small graph-editing helpers shared by the rewrites that change a model in
 * place (float16 conversion, dequantize): reading a node's input slot,
 * replacing an owned string, renaming every read of a tensor through
 * subgraphs, appending to repeated fields, and making single-input nodes
 * and their attributes.
 */
#ifndef MQ_QUANT_EDIT_H
#define MQ_QUANT_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

/* Subgraphs nested deeper than this are refused (a corrupt model cannot blow the stack). */
#define MQ_EDIT_MAX_DEPTH 32

/* A malloc'd formatted string, NULL when out of memory. */
char *mq_edit_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Input k of the node, NULL when absent or empty (an omitted optional input). */
const char *mq_edit_input(const Onnx__NodeProto *node, size_t k);

/* Replaces the owned string *slot by a copy of value; -1 when out of memory. */
int mq_edit_replace_string(char **slot, const char *value);

/*
 * Every read of `from` in g's nodes and in their subgraphs becomes `to`, and
 * so do the outputs of those subgraphs (g's own outputs stay).  -1 when out
 * of memory; subgraphs nested beyond MQ_EDIT_MAX_DEPTH are left alone.
 */
int mq_edit_rename_reads(Onnx__GraphProto *g, const char *from, const char *to);

/* A node of the default domain with one input and one output; NULL when out of memory. */
Onnx__NodeProto *mq_edit_make_node(const char *op_type, const char *name, const char *input,
                                   const char *output);

/* Appends a pointer to a protobuf-c repeated field; -1 when out of memory. */
int mq_edit_append(void ***array, size_t *n, void *item);

/* Appends an attribute to the node; -1 when out of memory. */
int mq_edit_add_int_attr(Onnx__NodeProto *node, const char *name, int64_t value);
int mq_edit_add_float_attr(Onnx__NodeProto *node, const char *name, float value);

#endif
