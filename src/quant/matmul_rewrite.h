/*
 * What the rewrites that replace a MatMul by a quantized form of it share (--dynamic in
 * dynamic.c, --weight-only in weight_only*.c): finding MatMuls whose weight B is a 2-D float
 * initializer, making initializers from bytes, integer attributes, the com.microsoft import,
 * and splicing a node's replacement in at its place so the graph stays in order.
 */
#ifndef MQ_QUANT_MATMUL_REWRITE_H
#define MQ_QUANT_MATMUL_REWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "quant/select.h"
#include "util/error.h"

/* The initializer of the graph named `name`, NULL when none. */
Onnx__TensorProto *mq_matmul_find_initializer(const Onnx__GraphProto *g, const char *name);

/*
 * Whether node is a selected MatMul of the main graph whose B is a 2-D float32 initializer
 * with at least `min_k` rows; *weight gets it.  *why (when not NULL) says why not.
 */
int mq_matmul_weight_site(const Onnx__GraphProto *g, const struct mq_selection *sel,
                          const Onnx__NodeProto *node, Onnx__TensorProto **weight,
                          const char **why);

/* A new initializer holding `bytes` bytes of raw data. */
int mq_matmul_add_raw(Onnx__GraphProto *g, const char *name, int dtype, int rank,
                      const int64_t *dims, const void *data, size_t bytes, struct mq_error *err);

/* Appends an integer attribute to a node. */
int mq_matmul_set_int_attr(Onnx__NodeProto *node, const char *name, int64_t value,
                           struct mq_error *err);
/* Appends an output name to a node. */
int mq_matmul_add_output(Onnx__NodeProto *node, const char *name, struct mq_error *err);
/* Sets a node's domain. */
int mq_matmul_set_domain(Onnx__NodeProto *node, const char *domain, struct mq_error *err);

/* The model imports `domain` at `version` at least. */
int mq_matmul_import_domain(Onnx__ModelProto *model, const char *domain, int64_t version,
                            struct mq_error *err);

/* How many nodes of the graph (subgraphs not counted) read tensor `name`. */
int mq_matmul_readers(const Onnx__GraphProto *g, const char *name);

/* A growing node list: the graph's new node order. */
struct mq_node_list {
    Onnx__NodeProto **items;
    size_t n;
};
int mq_node_list_push(struct mq_node_list *l, Onnx__NodeProto *node, struct mq_error *err);
/* Installs the list as the graph's nodes (the old array is freed, not its nodes). */
void mq_node_list_install(struct mq_node_list *l, Onnx__GraphProto *g);

/* The weight as a float [K, N] tensor. */
int mq_matmul_weight_load(const Onnx__TensorProto *w, struct mq_tensor *out,
                          struct mq_error *err);

/* Drops the float weight when no node reads it any more. */
void mq_matmul_drop_if_unread(Onnx__GraphProto *g, Onnx__TensorProto *w);

/* Ends a successful rewrite: installs the new node order, frees the n_old replaced nodes and drops
   each distinct weight of `weights` (NULL entries skipped) that no node reads any more (a weight
   several MatMuls read is listed several times and dropped once). */
void mq_matmul_commit(struct mq_node_list *l, Onnx__GraphProto *g, Onnx__NodeProto **old,
                      size_t n_old, Onnx__TensorProto **weights, size_t n_weights);

#endif
