/*
 * Folding one node whose inputs are all constant by running it through the
 * interpreter: the node alone in a graph whose initializers are its inputs is
 * planned, and the planner's own constant folding runs the node's kernel, so
 * the folded value is exactly what the model computes at run time.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/canonical_internal.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"

/* Scratch room the kernel may need besides its inputs and outputs (im2col, ...). */
#define FOLD_SCRATCH_BYTES ((uint64_t)16 << 20)
/*
 * A node that makes much more data than it reads (ConstantOfShape, Expand,
 * Tile, Range) stays a node: stored, its output would only grow the file.
 * Decompressing weights (Cast from float16, DequantizeLinear of int8 or
 * int4) grows them at most 8 times and folds.
 */
#define FOLD_EXPAND_FACTOR 8
#define FOLD_EXPAND_MIN_BYTES ((uint64_t)4 << 10)

struct collect {
    Onnx__NodeProto *node;
    Onnx__TensorProto **outputs;
    uint64_t max_bytes, bytes;
    int too_large;
};

static int take_output(void *user, const char *name, const struct mq_tensor *value,
                       struct mq_error *err)
{
    struct collect *c = user;
    for (size_t o = 0; o < c->node->n_output; o++) {
        if (c->outputs[o] || strcmp(mq_str(c->node->output[o]), name) != 0)
            continue;
        uint64_t bytes = (uint64_t)value->count * mq_dtype_size(value->dtype);
        c->bytes += bytes;
        if (c->bytes > c->max_bytes) {
            c->too_large = 1;
            return MQ_ERR; /* stops the walk; the caller keeps the node */
        }
        return mq_tensor_to_proto(value, name, &c->outputs[o], err);
    }
    return MQ_OK;
}

static void free_outputs(Onnx__NodeProto *node, Onnx__TensorProto **outputs)
{
    for (size_t o = 0; o < node->n_output; o++) {
        if (outputs[o])
            onnx__tensor_proto__free_unpacked(outputs[o], NULL);
        outputs[o] = NULL;
    }
}

int mq_graph_fold_node(const Onnx__ModelProto *model, Onnx__NodeProto *node,
                       Onnx__TensorProto **inputs, size_t n_inputs, uint64_t max_bytes,
                       const struct mq_graph_fold_expanding *expanding,
                       Onnx__TensorProto **outputs, struct mq_error *err)
{
    (void)err;
    for (size_t o = 0; o < node->n_output; o++)
        outputs[o] = NULL;

    Onnx__GraphProto graph;
    onnx__graph_proto__init(&graph);
    graph.name = "constant folding";
    Onnx__NodeProto *nodes[1] = {node};
    graph.n_node = 1;
    graph.node = nodes;
    graph.n_initializer = n_inputs;
    graph.initializer = inputs;
    Onnx__ModelProto one_node = *model;
    one_node.graph = &graph;
    struct mq_model holder = {&one_node, "constant folding", NULL};

    /*
     * Bound what the kernel may allocate, so that a ConstantOfShape or Expand
     * asked for gigabytes fails fast instead of materialising them: the cap is
     * the inputs (decoded by the planner), the outputs' bound and some scratch.
     */
    uint64_t input_bytes = 0;
    for (size_t i = 0; i < n_inputs; i++) {
        int64_t b = mq_tensor_proto_count(inputs[i]);
        if (b > 0)
            input_bytes += (uint64_t)b;
    }
    uint64_t old_limit = mq_memory_limit();
    uint64_t limit = mq_memory_in_use() + 2 * input_bytes + 2 * max_bytes + FOLD_SCRATCH_BYTES;
    if (old_limit == 0 || limit < old_limit)
        mq_memory_set_limit(limit);

    struct mq_error ignored = {{0}};
    struct mq_plan *plan = NULL;
    int rc = mq_plan_build(&holder, &plan, &ignored);
    struct collect c = {node, outputs, max_bytes, 0, 0};
    if (rc == MQ_OK)
        rc = mq_plan_each_constant(plan, take_output, &c, &ignored);
    mq_plan_free(plan);
    mq_memory_set_limit(old_limit);

    int complete = rc == MQ_OK;
    if (complete && c.bytes > FOLD_EXPAND_MIN_BYTES && c.bytes > FOLD_EXPAND_FACTOR * input_bytes &&
        !(expanding && expanding->allowed(node, expanding->user)))
        complete = 0;
    for (size_t o = 0; complete && o < node->n_output; o++)
        if (*mq_str(node->output[o]) && !outputs[o])
            complete = 0; /* the planner did not fold it (nondeterministic, ...) */
    if (!complete) {
        free_outputs(node, outputs);
        return 1;
    }
    return 0;
}
