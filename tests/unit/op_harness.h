/*
 * Runs one operator through the real planner and runner, for kernel unit
 * tests: the node is wrapped in a one-node model whose graph inputs are
 * in0, in1, ... and outputs out0, out1, ...
 */
#ifndef MQ_OP_HARNESS_H
#define MQ_OP_HARNESS_H

#include <stdint.h>

#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "util/error.h"

/* A node with n_in inputs named in0.. and n_out outputs out0..; free with oh_node_free. */
Onnx__NodeProto *oh_node(const char *op_type, int n_in, int n_out);
void oh_node_free(Onnx__NodeProto *node);
/* Marks input i as omitted (its name becomes ""). */
void oh_omit_input(Onnx__NodeProto *node, int i);
void oh_attr_int(Onnx__NodeProto *node, const char *name, int64_t v);
void oh_attr_float(Onnx__NodeProto *node, const char *name, float v);
void oh_attr_string(Onnx__NodeProto *node, const char *name, const char *v);
void oh_attr_strings(Onnx__NodeProto *node, const char *name, int n, const char *const *v);
void oh_attr_ints(Onnx__NodeProto *node, const char *name, int n, const int64_t *v);
void oh_attr_floats(Onnx__NodeProto *node, const char *name, int n, const float *v);
/* The tensor is copied into a TensorProto attribute. */
void oh_attr_tensor(Onnx__NodeProto *node, const char *name, const struct mq_tensor *t);

/*
 * Runs the node at the given opset.  inputs[i] feeds in<i> (entries for
 * omitted inputs are ignored).  outputs[] must be zeroed; free each with
 * mq_tensor_free.  Returns 0 or a negative code with err filled (plan-time
 * and run-time errors both come back here).
 */
int oh_run(const Onnx__NodeProto *node, int opset, const struct mq_tensor *inputs, int n_in,
           struct mq_tensor *outputs, int n_out, struct mq_error *err);

/* Tensors owning a copy of the given values. */
struct mq_tensor oh_f32(int rank, const int64_t *dims, const float *values);
struct mq_tensor oh_i64(int rank, const int64_t *dims, const int64_t *values);
struct mq_tensor oh_i32(int rank, const int64_t *dims, const int32_t *values);
struct mq_tensor oh_u8(int rank, const int64_t *dims, const uint8_t *values);
struct mq_tensor oh_i8(int rank, const int64_t *dims, const int8_t *values);
struct mq_tensor oh_bool(int rank, const int64_t *dims, const uint8_t *values);
struct mq_tensor oh_typed(int dtype, int rank, const int64_t *dims, const void *values);

/* 0, 1, 2, ... in row-major order. */
struct mq_tensor oh_iota_f32(int rank, const int64_t *dims);
struct mq_tensor oh_iota_i64(int rank, const int64_t *dims);
/* Deterministic values in [-1, 1) from a caller-owned LCG state, so each suite keeps its
 * own sequence. */
float oh_rnd(uint32_t *state);
struct mq_tensor oh_random_f32(uint32_t *state, int rank, const int64_t *dims);

/* Frees n tensors; zeroed (never filled) ones are fine. */
void oh_free_all(struct mq_tensor *t, int n);

/*
 * Run-and-check shorthands.  "take_node" ones free the node, "take_all" ones
 * free the node and the inputs as well; the others leave both to the caller.
 * Failing runs may have at most OH_MAX_OUTPUTS outputs.
 */
#define OH_MAX_OUTPUTS 8
/* The run must succeed ("run failed: <message>" otherwise). */
void oh_run_ok(const Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
               struct mq_tensor *out, int n_out);
/* The run must fail; returns err->message, so err must outlive its use. */
const char *oh_run_fails(const Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                         int n_out, struct mq_error *err);
/* out[] needs no zeroing here. */
void oh_run_ok_take_node(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                         struct mq_tensor *out, int n_out);
void oh_run_ok_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                        struct mq_tensor *out, int n_out);
/* Runs a one-output node and returns that output. */
struct mq_tensor oh_run1_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in);
/* The run must fail with a message containing needle. */
void oh_run_fails_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                           int n_out, const char *needle);
/* As above, and the message must also name the node and its op type. */
void oh_expect_error_take_all(Onnx__NodeProto *node, int opset, struct mq_tensor *in, int n_in,
                              const char *needle);

/* Check assertions: same shape, and every element within atol + rtol*|expected|. */
#define OH_DIMS(...) ((const int64_t[]){__VA_ARGS__})
void oh_assert_f32(const struct mq_tensor *t, int rank, const int64_t *dims, const float *expected,
                   float atol, float rtol);
void oh_assert_i64(const struct mq_tensor *t, int rank, const int64_t *dims, const int64_t *expected);
void oh_assert_shape(const struct mq_tensor *t, int rank, const int64_t *dims);

#endif
