/*
 * What the float16 conversion knows about each op type: whether it computes
 * (and so rounds in float16), only moves or compares values (and so follows
 * its inputs' precision), or cannot take float16 at all; which of its inputs
 * and outputs carry the float type it computes in (the others, such as
 * Resize's scales or LayerNormalization's statistics, stay float32 whatever
 * the data is); and the opsets in which onnxruntime's CPU provider has a
 * float16 kernel for it.  Adding an op is one row in fp16_ops.c.
 */
#ifndef MQ_FP16_OPS_H
#define MQ_FP16_OPS_H

#include <stddef.h>

enum mq_fp16_op_kind {
    MQ_FP16_COMPUTE,  /* rounds its result: runs in float16 when allowed */
    MQ_FP16_NEUTRAL,  /* moves, selects or compares values: follows its inputs' precision */
    MQ_FP16_BLOCKED,  /* its schema or meaning rules float16 out */
};

struct mq_fp16_op {
    const char *op;
    enum mq_fp16_op_kind kind;
    /* Slot masks: bit k is input (output) k; bit 31 stands for slot 31 and every later one. */
    unsigned data_inputs;  /* inputs of the float type T the node computes in */
    unsigned t_outputs;    /* outputs of type T */
    /* Opsets in which onnxruntime's CPU provider (x86-64, 1.30) has a float16 kernel:
       ort_since..ort_until inclusive (0: open end); ort_since 0: none at all. */
    int ort_since, ort_until;
};

/* The row of an ai.onnx op type; NULL for an op the table does not know. */
const struct mq_fp16_op *mq_fp16_op_find(const char *op_type);

/* Whether slot k is in the mask (slot 31 and later share bit 31). */
int mq_fp16_slot_in(unsigned mask, size_t k);

/* Whether onnxruntime's CPU provider runs the op in float16 at this ai.onnx opset. */
int mq_fp16_op_on_ort_cpu(const struct mq_fp16_op *op, int opset);

#endif
