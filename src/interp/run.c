/* Running a plan on one sample: steps in order, each value freed after its last reader. */
#include <stdlib.h>
#include <string.h>

#include "interp/ops/fused.h"
#include "interp/plan_internal.h"

const struct mq_tensor *mq_exec_value(const struct mq_exec *exec, int v)
{
    for (;;) {
        const struct plan_value *pv = &exec->plan->values[v];
        if (pv->is_constant)
            return &pv->constant;
        if (!pv->outer_level)
            return &exec->slots[v];
        int level = pv->outer_level;
        v = pv->outer_index;
        while (level-- > 0 && exec->parent)
            exec = exec->parent;
    }
}

#define MAX_NODE_IO 64

int mq_exec_step(struct mq_exec *exec, const struct plan_step *step, struct mq_error *err)
{
    const struct mq_kernel_node *kn = &step->node;
    const struct mq_tensor *stack_inputs[MAX_NODE_IO];
    struct mq_tensor stack_outputs[MAX_NODE_IO];
    const struct mq_tensor **inputs = stack_inputs;
    struct mq_tensor *outputs = stack_outputs;
    int rc = MQ_OK;
    if (kn->n_inputs > MAX_NODE_IO)
        inputs = malloc(sizeof *inputs * (size_t)kn->n_inputs);
    if (kn->n_outputs > MAX_NODE_IO)
        outputs = malloc(sizeof *outputs * (size_t)kn->n_outputs);
    if (!inputs || !outputs) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "node '%s': out of memory", kn->name);
        goto out;
    }
    for (int i = 0; i < kn->n_inputs; i++) {
        int v = step->inputs[i];
        inputs[i] = v >= 0 ? mq_exec_value(exec, v) : NULL;
        if (inputs[i] && inputs[i]->dtype == 0) {
            rc = mq_error_set(err, "node '%s' (%s): input '%s' has no value (an optional output "
                              "that was not produced?)", kn->name, kn->op_type,
                              exec->plan->values[v].name);
            goto out;
        }
    }
    if (step->fused_input_rank > 0 && inputs[0] && inputs[0]->rank != step->fused_input_rank) {
        rc = mq_error_set(err, "node '%s' (%s): input '%s' has rank %d, but the model declares "
                          "rank %d, which the fused plan relies on", kn->name, kn->op_type,
                          exec->plan->values[step->inputs[0]].name, inputs[0]->rank,
                          step->fused_input_rank);
        goto out;
    }
    memset(outputs, 0, sizeof *outputs * (size_t)(kn->n_outputs ? kn->n_outputs : 1));
    rc = step->kernel->run(kn, exec, inputs, kn->n_inputs, outputs, kn->n_outputs, err);
    /* A node with no outputs (a hostile or broken model) still gets one zeroed slot, because
       kernels write outputs[0] unasked; nothing reads it, so free what landed there. */
    if (kn->n_outputs == 0)
        mq_tensor_free(&outputs[0]);
    if (rc) {
        for (int o = 0; o < kn->n_outputs; o++)
            mq_tensor_free(&outputs[o]);
        goto out;
    }
    /* a Clip fused into an op whose kernel does not apply it (interp/fuse.c): in place, on the
       op's own output (never a view: the fusion takes only ops that allocate theirs) */
    if (step->clip_after && kn->n_outputs > 0 && outputs[0].dtype) {
        rc = outputs[0].borrowed
                 ? mq_error_set(err, "node '%s' (%s): a fused Clip met a borrowed output",
                                kn->name, kn->op_type)
                 : mq_fused_act_apply(kn, &outputs[0], err);
        if (rc) {
            for (int o = 0; o < kn->n_outputs; o++)
                mq_tensor_free(&outputs[o]);
            goto out;
        }
    }
    if (step->view_of_input && kn->n_outputs > 0 && outputs[0].borrowed) {
        /* the view takes over a buffer that this run owns and nothing reads after this step */
        int v = step->inputs[0];
        const struct plan_value *pv = &exec->plan->values[v];
        struct mq_tensor *slot = pv->is_constant || pv->outer_level ? NULL : &exec->slots[v];
        if (slot && !slot->borrowed && slot->data == outputs[0].data) {
            outputs[0].borrowed = 0;
            memset(slot, 0, sizeof *slot);
        }
    }
    for (int o = 0; o < kn->n_outputs; o++) {
        int v = step->outputs[o];
        if (v < 0 || exec->plan->values[v].is_constant) {
            mq_tensor_free(&outputs[o]);
            continue;
        }
        mq_tensor_free(&exec->slots[v]);
        mq_tensor_move(&exec->slots[v], &outputs[o]);
        const struct mq_tensor *t = &exec->slots[v];
        if (t->dtype == 0)
            continue; /* an optional output the kernel chose not to produce */
        if (exec->options && exec->options->observe) {
            rc = exec->options->observe(exec->options->observe_user, kn,
                                        exec->plan->values[v].name, t, err);
            if (rc)
                goto out;
        }
    }
out:
    if (inputs != stack_inputs)
        free(inputs);
    if (outputs != stack_outputs)
        free(outputs);
    return rc;
}

int mq_exec_steps(struct mq_exec *exec, struct mq_error *err)
{
    const struct mq_plan *plan = exec->plan;
    for (int s = 0; s < plan->n_steps; s++) {
        const struct plan_step *step = &plan->steps[s];
        if (mq_exec_step(exec, step, err))
            return MQ_ERR;
        for (int f = 0; f < step->n_free_after; f++)
            mq_tensor_free(&exec->slots[step->free_after[f]]);
    }
    return MQ_OK;
}

/* Moves (or copies, when it is a constant or a fed input) value v into out. */
static int take_output(struct mq_exec *exec, int v, struct mq_tensor *out, struct mq_error *err)
{
    const struct plan_value *pv = &exec->plan->values[v];
    if (!pv->is_constant && !pv->outer_level && !exec->slots[v].borrowed) {
        if (exec->slots[v].dtype == 0)
            return mq_error_set(err, "graph output '%s' was not produced", pv->name);
        mq_tensor_move(out, &exec->slots[v]);
        return MQ_OK;
    }
    const struct mq_tensor *src = mq_exec_value(exec, v);
    if (src->dtype == 0)
        return mq_error_set(err, "graph output '%s' was not produced", pv->name);
    return mq_tensor_copy(out, src, pv->name, err);
}

static int run_exec(struct mq_exec *exec, const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct mq_plan *plan = exec->plan;
    int rc = MQ_OK;
    exec->slots = calloc((size_t)plan->n_values + 1, sizeof *exec->slots);
    if (!exec->slots)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    if (n_inputs != plan->n_inputs) {
        rc = mq_error_set(err, "graph '%s' takes %d inputs, %d given", mq_str(plan->graph->name),
                          plan->n_inputs, n_inputs);
        goto out;
    }
    if (n_outputs != plan->n_outputs) {
        rc = mq_error_set(err, "graph '%s' has %d outputs, %d requested", mq_str(plan->graph->name),
                          plan->n_outputs, n_outputs);
        goto out;
    }
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i] || inputs[i]->dtype == 0) {
            rc = mq_error_set(err, "graph input '%s' has no value",
                              plan->values[plan->input_values[i]].name);
            goto out;
        }
        mq_tensor_view(&exec->slots[plan->input_values[i]], inputs[i]);
        /* A subgraph's formal inputs come from its control-flow node, not from a node of
           the subgraph: observers see them here. */
        if (exec->parent && exec->options && exec->options->observe &&
            (rc = exec->options->observe(exec->options->observe_user, NULL,
                                         plan->values[plan->input_values[i]].name, inputs[i],
                                         err)))
            goto out;
    }
    rc = mq_exec_steps(exec, err);
    for (int o = 0; o < n_outputs && rc == MQ_OK; o++)
        rc = take_output(exec, plan->output_values[o], &outputs[o], err);
    if (rc)
        for (int o = 0; o < n_outputs; o++)
            mq_tensor_free(&outputs[o]);
out:
    for (int v = 0; v < plan->n_values; v++)
        mq_tensor_free(&exec->slots[v]);
    free(exec->slots);
    exec->slots = NULL;
    return rc;
}

int mq_plan_run(const struct mq_plan *plan, const struct mq_tensor *inputs, int n_inputs,
                struct mq_tensor *outputs, int n_outputs, const struct mq_run_options *options,
                struct mq_error *err)
{
    const struct mq_tensor *stack[MAX_NODE_IO] = {0};
    const struct mq_tensor **ptrs = stack;
    if (n_inputs > MAX_NODE_IO && !(ptrs = malloc(sizeof *ptrs * (size_t)n_inputs)))
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int i = 0; i < n_inputs; i++)
        ptrs[i] = &inputs[i];
    struct mq_exec exec = {plan, NULL, NULL, options};
    int rc = run_exec(&exec, ptrs, n_inputs, outputs, n_outputs, err);
    if (ptrs != stack)
        free(ptrs);
    return rc;
}

int mq_exec_subgraph(struct mq_exec *exec, const struct mq_plan *subgraph,
                     const struct mq_tensor *const *inputs, int n_inputs,
                     struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    struct mq_exec child = {subgraph, exec, NULL, exec->options};
    return run_exec(&child, inputs, n_inputs, outputs, n_outputs, err);
}
