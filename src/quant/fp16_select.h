/*
 * The user's part of the float16 decision: --op-types, --exclude-op-types,
 * --include-nodes and --exclude-nodes, read with the quantizer's rules
 * (quant/select.h): every node, subgraphs included, gets the name the
 * quantizer gives it (its own, or "<op_type>#<index>" by its position in
 * its graph as stored); a node entry names a node by its exact name or as a
 * glob pattern; op types are exact names.  An entry that matches nothing is
 * an error.  Unlike the quantizer's, the op types may be any op of the model,
 * not only those the quantizer handles.
 */
#ifndef MQ_FP16_SELECT_H
#define MQ_FP16_SELECT_H

#include "onnx.pb-c.h"
#include "quant/fp16.h"
#include "quant/select.h"
#include "util/error.h"

struct mq_fp16_selection {
    struct mq_selection nodes;           /* every node with its name and graph path */
    const struct mq_fp16_options *options;
};

/* Walks the model and checks every entry of the options against it. */
int mq_fp16_select(const Onnx__ModelProto *model, const struct mq_fp16_options *options,
                   struct mq_fp16_selection *out, struct mq_error *err);
void mq_fp16_selection_free(struct mq_fp16_selection *sel);

/* The node's name and graph path; NULL for a node the model did not hold at selection. */
const struct mq_node_choice *mq_fp16_selection_find(const struct mq_fp16_selection *sel,
                                                    const Onnx__NodeProto *node);

/*
 * Why the options leave the node float32, malloc'd in *reason ("excluded by
 * --exclude-nodes 'head*'"), or NULL when they convert it.  -1 when out of memory.
 */
int mq_fp16_selection_reason(const struct mq_fp16_selection *sel, const Onnx__NodeProto *node,
                             char **reason);

#endif
