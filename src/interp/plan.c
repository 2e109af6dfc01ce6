/*
 * Building a plan: names resolved (with outer scopes for subgraphs), nodes
 * put in topological order, kernels found and prepared, constants folded,
 * and the last reader of every value found so the runner can free it early.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/plan_internal.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "util/toposort.h"

/* Ops whose output differs between runs even on the same inputs: never folded. */
static const char *const nondeterministic_ops[] = {
    "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
    "Bernoulli", NULL,
};

int mq_plan_lookup(const struct mq_plan *plan, const char *name)
{
    return plan->names ? mq_strmap_get(plan->names, name) : -1;
}

/* Adds a value; returns its index, or -1 when out of memory. The name must not exist yet. */
int mq_plan_value_add(struct mq_plan *plan, const char *name)
{
    if (!plan->names && !(plan->names = mq_strmap_new()))
        return -1;
    if (plan->n_values == plan->cap_values) {
        int cap = plan->cap_values ? plan->cap_values * 2 : 64;
        struct plan_value *values = realloc(plan->values, (size_t)cap * sizeof *values);
        if (!values)
            return -1;
        plan->values = values;
        plan->cap_values = cap;
    }
    int v = plan->n_values;
    if (mq_strmap_put(plan->names, name, v))
        return -1;
    plan->n_values++;
    memset(&plan->values[v], 0, sizeof plan->values[v]);
    plan->values[v].name = name;
    plan->values[v].last_use = -1;
    return v;
}

/* Local value, else a new entry for a value of an enclosing scope, else -1 (not found) or -2. */
static int resolve_name(struct mq_plan *plan, const char *name)
{
    int v = mq_plan_lookup(plan, name);
    if (v >= 0)
        return v;
    int level = 1;
    for (const struct mq_plan *p = plan->parent; p; p = p->parent, level++) {
        int outer = mq_plan_lookup(p, name);
        if (outer >= 0) {
            v = mq_plan_value_add(plan, name);
            if (v < 0)
                return -2;
            plan->values[v].outer_level = level;
            plan->values[v].outer_index = outer;
            return v;
        }
    }
    return -1;
}

void mq_plan_step_release(struct plan_step *s)
{
    if (s->kernel && s->kernel->destroy && s->node.state)
        s->kernel->destroy(s->node.state);
    for (int i = 0; i < s->node.n_subgraphs; i++)
        mq_plan_free(s->node.subgraphs[i]);
    free(s->node.subgraphs);
    free(s->node.subgraph_names);
    free(s->inputs);
    free(s->outputs);
    free(s->free_after);
    free(s->owned_name);
    memset(s, 0, sizeof *s);
}

void mq_plan_free(struct mq_plan *plan)
{
    if (!plan)
        return;
    for (int i = 0; i < plan->n_steps; i++)
        mq_plan_step_release(&plan->steps[i]);
    free(plan->steps);
    for (int i = 0; i < plan->n_values; i++) {
        if (plan->values[i].is_constant)
            mq_tensor_free(&plan->values[i].constant);
        free(plan->values[i].owned_name);
    }
    free(plan->values);
    mq_strmap_free(plan->names);
    free(plan->input_values);
    free(plan->inputs);
    free(plan->output_values);
    free(plan->outputs);
    free(plan);
}

static int build_graph(const Onnx__ModelProto *model, const Onnx__GraphProto *graph,
                       const struct mq_plan *parent, int depth, int is_main,
                       const struct mq_plan_options *options, struct mq_plan **out,
                       struct mq_error *err);

/* Calls fn for each value of `plan` that subplans (at any depth) of `sub` read. */
static void mark_outer_uses(const struct mq_plan *sub, int level, int step_index,
                            struct mq_plan *plan, int *producer_dep, int *n_dep, int cap_dep,
                            const int *producer)
{
    for (int v = 0; v < sub->n_values; v++) {
        if (sub->values[v].outer_level != level)
            continue;
        int pv = sub->values[v].outer_index;
        if (step_index >= 0 && plan->values[pv].last_use < step_index)
            plan->values[pv].last_use = step_index;
        if (producer_dep && !plan->values[pv].outer_level && producer[pv] >= 0 && *n_dep < cap_dep)
            producer_dep[(*n_dep)++] = producer[pv];
    }
    for (int s = 0; s < sub->n_steps; s++)
        for (int g = 0; g < sub->steps[s].node.n_subgraphs; g++)
            mark_outer_uses(sub->steps[s].node.subgraphs[g], level + 1, step_index, plan,
                            producer_dep, n_dep, cap_dep, producer);
}

static int count_outer_uses(const struct mq_plan *sub, int level)
{
    int n = 0;
    for (int v = 0; v < sub->n_values; v++)
        n += sub->values[v].outer_level == level;
    for (int s = 0; s < sub->n_steps; s++)
        for (int g = 0; g < sub->steps[s].node.n_subgraphs; g++)
            n += count_outer_uses(sub->steps[s].node.subgraphs[g], level + 1);
    return n;
}

static int is_nondeterministic(const char *op)
{
    for (int i = 0; nondeterministic_ops[i]; i++)
        if (strcmp(op, nondeterministic_ops[i]) == 0)
            return 1;
    return 0;
}

/* Builds the plan of one node (kernel, subgraphs, value indices) into step. */
static int build_step(struct mq_plan *plan, const Onnx__NodeProto *np, int index,
                      struct plan_step *step, struct mq_error *err)
{
    struct mq_kernel_node *kn = &step->node;
    kn->proto = np;
    kn->op_type = np->op_type;
    kn->domain = mq_str(np->domain);
    if (np->name && *np->name) {
        kn->name = np->name;
    } else {
        size_t n = strlen(np->op_type) + 24;
        step->owned_name = malloc(n);
        if (!step->owned_name)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        snprintf(step->owned_name, n, "%s#%d", np->op_type, index);
        kn->name = step->owned_name;
    }
    kn->n_inputs = (int)np->n_input;
    kn->n_outputs = (int)np->n_output;
    int opset = mq_model_proto_opset(plan->model, kn->domain);
    if (opset < 0)
        return mq_error_set(err, "node '%s' (%s): domain '%s' is not in the model's opset imports",
                            kn->name, kn->op_type, *kn->domain ? kn->domain : "ai.onnx");
    kn->opset = opset;

    for (size_t a = 0; a < np->n_attribute; a++)
        kn->n_subgraphs += np->attribute[a]->g != NULL;
    if (kn->n_subgraphs) {
        kn->subgraphs = calloc((size_t)kn->n_subgraphs, sizeof *kn->subgraphs);
        kn->subgraph_names = calloc((size_t)kn->n_subgraphs, sizeof *kn->subgraph_names);
        if (!kn->subgraphs || !kn->subgraph_names)
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        int g = 0;
        for (size_t a = 0; a < np->n_attribute; a++) {
            const Onnx__AttributeProto *attr = np->attribute[a];
            if (!attr->g)
                continue;
            kn->subgraph_names[g] = mq_str(attr->name);
            struct mq_plan_options options = {plan->fuse, plan->pack_weights};
            if (build_graph(plan->model, attr->g, plan, plan->depth + 1, 0, &options,
                            &kn->subgraphs[g], err)) {
                mq_error_prefix(err, "node '%s' (%s), subgraph '%s': ", kn->name, kn->op_type,
                                mq_str(attr->name));
                return MQ_ERR;
            }
            g++;
        }
    }

    step->kernel = mq_registry_find(kn->domain, kn->op_type, opset);
    if (!step->kernel)
        return mq_error_set(err, "node '%s': operator %s (domain '%s', opset %d) is not supported",
                            kn->name, kn->op_type, *kn->domain ? kn->domain : "ai.onnx", opset);
    if (step->kernel->prepare && step->kernel->prepare(kn, err))
        return MQ_ERR;
    return MQ_OK;
}

static int fold_constants(struct mq_plan *plan, struct mq_error *err)
{
    struct mq_exec exec = {plan, NULL, NULL, NULL};
    int kept = 0;
    int rc = MQ_OK;
    exec.slots = calloc((size_t)plan->n_values, sizeof *exec.slots);
    if (!exec.slots)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int s = 0; s < plan->n_steps; s++) {
        struct plan_step *step = &plan->steps[s];
        int foldable = step->node.n_subgraphs == 0 && !is_nondeterministic(step->node.op_type);
        for (int i = 0; foldable && i < step->node.n_inputs; i++) {
            int v = step->inputs[i];
            if (v >= 0 && !plan->values[v].is_constant)
                foldable = 0;
        }
        if (foldable) {
            rc = mq_exec_step(&exec, step, err);
            if (rc)
                break;
            for (int o = 0; o < step->node.n_outputs; o++) {
                int v = step->outputs[o];
                if (v < 0)
                    continue;
                mq_tensor_move(&plan->values[v].constant, &exec.slots[v]);
                plan->values[v].is_constant = 1;
            }
            mq_plan_step_release(step);
            continue;
        }
        if (kept != s)
            plan->steps[kept] = *step;
        kept++;
    }
    for (int s = kept; s < plan->n_steps && rc == MQ_OK; s++)
        memset(&plan->steps[s], 0, sizeof plan->steps[s]);
    if (rc == MQ_OK)
        plan->n_steps = kept;
    for (int v = 0; v < plan->n_values; v++)
        mq_tensor_free(&exec.slots[v]);
    free(exec.slots);
    return rc;
}

static int compute_liveness(struct mq_plan *plan, struct mq_error *err)
{
    for (int v = 0; v < plan->n_values; v++)
        plan->values[v].last_use = -1;
    for (int s = 0; s < plan->n_steps; s++) {
        struct plan_step *step = &plan->steps[s];
        for (int i = 0; i < step->node.n_inputs; i++)
            if (step->inputs[i] >= 0)
                plan->values[step->inputs[i]].last_use = s;
        for (int g = 0; g < step->node.n_subgraphs; g++)
            mark_outer_uses(step->node.subgraphs[g], 1, s, plan, NULL, NULL, 0, NULL);
    }
    int *counts = calloc((size_t)(plan->n_steps + 1), sizeof *counts);
    if (!counts)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int v = 0; v < plan->n_values; v++) {
        const struct plan_value *pv = &plan->values[v];
        if (pv->last_use >= 0 && !pv->is_constant && !pv->is_graph_output && !pv->outer_level)
            counts[pv->last_use]++;
    }
    for (int s = 0; s < plan->n_steps; s++) {
        if (!counts[s])
            continue;
        plan->steps[s].free_after = malloc((size_t)counts[s] * sizeof(int));
        if (!plan->steps[s].free_after) {
            free(counts);
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        }
    }
    for (int v = 0; v < plan->n_values; v++) {
        const struct plan_value *pv = &plan->values[v];
        if (pv->last_use >= 0 && !pv->is_constant && !pv->is_graph_output && !pv->outer_level) {
            struct plan_step *s = &plan->steps[pv->last_use];
            s->free_after[s->n_free_after++] = v;
        }
    }
    free(counts);
    return MQ_OK;
}

static int build_graph(const Onnx__ModelProto *model, const Onnx__GraphProto *graph,
                       const struct mq_plan *parent, int depth, int is_main,
                       const struct mq_plan_options *options, struct mq_plan **out,
                       struct mq_error *err)
{
    *out = NULL;
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(err, "subgraphs nested deeper than %d levels", MQ_MAX_SUBGRAPH_DEPTH);
    struct mq_plan *plan = calloc(1, sizeof *plan);
    int *producer = NULL, *indegree = NULL, *order = NULL, **deps = NULL, *n_deps = NULL;
    struct plan_step *unordered = NULL;
    int n_nodes = (int)graph->n_node;
    int rc = MQ_ERR;
    if (!plan)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    plan->graph = graph;
    plan->model = model;
    plan->parent = parent;
    plan->depth = depth;
    plan->fuse = options && options->fuse;
    plan->pack_weights = options && options->pack_weights;

    /* Initializers first: they are constants (and defaults for graph inputs of the same name). */
    for (size_t i = 0; i < graph->n_initializer; i++) {
        const Onnx__TensorProto *t = graph->initializer[i];
        const char *name = mq_str(t->name);
        if (!*name) {
            rc = mq_error_set(err, "graph '%s': initializer %zu has no name", mq_str(graph->name),
                              i);
            goto fail;
        }
        if (mq_plan_lookup(plan, name) >= 0) {
            rc = mq_error_set(err, "graph '%s': initializer '%s' is defined twice",
                              mq_str(graph->name), name);
            goto fail;
        }
        int v = mq_plan_value_add(plan, name);
        if (v < 0)
            goto oom;
        if (mq_tensor_from_proto(t, name, &plan->values[v].constant, err))
            goto fail;
        plan->values[v].is_constant = 1;
    }
    plan->input_values = calloc(graph->n_input + 1, sizeof(int));
    plan->inputs = calloc(graph->n_input + 1, sizeof *plan->inputs);
    if (!plan->input_values || !plan->inputs)
        goto oom;
    for (size_t i = 0; i < graph->n_input; i++) {
        const char *name = mq_str(graph->input[i]->name);
        int v = mq_plan_lookup(plan, name);
        if (v >= 0 && is_main)
            continue; /* has an initializer: a constant with a default */
        if (v >= 0) {
            /* A subgraph's formal input shadows its initializer of the same name. */
            mq_tensor_free(&plan->values[v].constant);
            plan->values[v].is_constant = 0;
        } else {
            v = mq_plan_value_add(plan, name);
            if (v < 0)
                goto oom;
        }
        plan->input_values[plan->n_inputs] = v;
        plan->inputs[plan->n_inputs++] = graph->input[i];
    }

    /* Every node output is a value; each name has one producer. */
    producer = malloc(sizeof(int) * (size_t)(plan->n_values + n_nodes * 4 + 64));
    int producer_cap = plan->n_values + n_nodes * 4 + 64;
    if (!producer)
        goto oom;
    for (int v = 0; v < plan->n_values; v++)
        producer[v] = -1;
    for (int n = 0; n < n_nodes; n++) {
        const Onnx__NodeProto *np = graph->node[n];
        for (size_t o = 0; o < np->n_output; o++) {
            const char *name = mq_str(np->output[o]);
            if (!*name)
                continue;
            if (mq_plan_lookup(plan, name) >= 0) {
                rc = mq_error_set(err, "node '%s' (%s): output '%s' is already produced elsewhere "
                                  "in graph '%s'", mq_str(np->name), mq_str(np->op_type), name,
                                  mq_str(graph->name));
                goto fail;
            }
            int v = mq_plan_value_add(plan, name);
            if (v < 0)
                goto oom;
            if (v >= producer_cap) {
                int cap = producer_cap * 2 + v;
                int *p = realloc(producer, sizeof(int) * (size_t)cap);
                if (!p)
                    goto oom;
                producer = p;
                producer_cap = cap;
            }
            producer[v] = n;
        }
    }

    /* Steps in file order first: subgraphs need the full table of this scope's names. */
    unordered = calloc((size_t)n_nodes + 1, sizeof *unordered);
    deps = calloc((size_t)n_nodes + 1, sizeof *deps);
    n_deps = calloc((size_t)n_nodes + 1, sizeof *n_deps);
    indegree = calloc((size_t)n_nodes + 1, sizeof *indegree);
    order = malloc(sizeof(int) * ((size_t)n_nodes + 1));
    if (!unordered || !deps || !n_deps || !indegree || !order)
        goto oom;
    for (int n = 0; n < n_nodes; n++) {
        const Onnx__NodeProto *np = graph->node[n];
        struct plan_step *step = &unordered[n];
        if (build_step(plan, np, n, step, err))
            goto fail;
        step->inputs = malloc(sizeof(int) * (np->n_input + 1));
        step->outputs = malloc(sizeof(int) * (np->n_output + 1));
        if (!step->inputs || !step->outputs)
            goto oom;
        for (size_t o = 0; o < np->n_output; o++) {
            const char *name = mq_str(np->output[o]);
            step->outputs[o] = *name ? mq_plan_lookup(plan, name) : -1;
        }
        for (size_t i = 0; i < np->n_input; i++) {
            const char *name = mq_str(np->input[i]);
            if (!*name) {
                step->inputs[i] = -1;
                continue;
            }
            int v = resolve_name(plan, name);
            if (v == -2)
                goto oom;
            if (v < 0) {
                rc = mq_error_set(err, "node '%s' (%s): input '%s' is not produced by any node, "
                                  "graph input or initializer", step->node.name,
                                  step->node.op_type, name);
                goto fail;
            }
            step->inputs[i] = v;
        }
        int cap = (int)np->n_input;
        for (int g = 0; g < step->node.n_subgraphs; g++)
            cap += count_outer_uses(step->node.subgraphs[g], 1);
        deps[n] = malloc(sizeof(int) * (size_t)(cap + 1));
        if (!deps[n])
            goto oom;
        for (size_t i = 0; i < np->n_input; i++) {
            int v = step->inputs[i];
            if (v >= 0 && v < producer_cap && !plan->values[v].outer_level && producer[v] >= 0)
                deps[n][n_deps[n]++] = producer[v];
        }
        for (int g = 0; g < step->node.n_subgraphs; g++)
            mark_outer_uses(step->node.subgraphs[g], 1, -1, plan, deps[n], &n_deps[n], cap,
                            producer);
    }

    /* The earliest ready node in file order first; indegree marks what a cycle leaves. */
    int n_ordered = mq_toposort(n_nodes, deps, n_deps, order, indegree);
    if (n_ordered < 0)
        goto oom;
    if (n_ordered < n_nodes) {
        for (int n = 0; n < n_nodes; n++)
            if (indegree[n] > 0) {
                const Onnx__NodeProto *np = graph->node[n];
                rc = mq_error_set(err, "graph '%s' has a cycle through node '%s' (%s) and its "
                                  "output '%s'", mq_str(graph->name), unordered[n].node.name,
                                  mq_str(np->op_type), np->n_output ? mq_str(np->output[0]) : "");
                break;
            }
        goto fail;
    }
    plan->steps = calloc((size_t)n_nodes + 1, sizeof *plan->steps);
    if (!plan->steps)
        goto oom;
    for (int i = 0; i < n_nodes; i++) {
        plan->steps[i] = unordered[order[i]];
        memset(&unordered[order[i]], 0, sizeof unordered[0]);
    }
    plan->n_steps = n_nodes;

    /* Graph outputs. */
    plan->output_values = calloc(graph->n_output + 1, sizeof(int));
    plan->outputs = calloc(graph->n_output + 1, sizeof *plan->outputs);
    if (!plan->output_values || !plan->outputs)
        goto oom;
    for (size_t o = 0; o < graph->n_output; o++) {
        const char *name = mq_str(graph->output[o]->name);
        int v = resolve_name(plan, name);
        if (v == -2)
            goto oom;
        if (v < 0) {
            rc = mq_error_set(err, "graph '%s': output '%s' is not produced by any node, input or "
                              "initializer", mq_str(graph->name), name);
            goto fail;
        }
        plan->values[v].is_graph_output = 1;
        plan->output_values[o] = v;
        plan->outputs[o] = graph->output[o];
    }
    plan->n_outputs = (int)graph->n_output;

    if (fold_constants(plan, err))
        goto fail;
    if (plan->fuse && mq_plan_fuse(plan, err))
        goto fail;
    if (plan->pack_weights && mq_plan_pack_weights(plan, err))
        goto fail;
    if (compute_liveness(plan, err))
        goto fail;
    rc = MQ_OK;
    goto done;
oom:
    rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory building the plan");
fail:
    if (rc == MQ_OK)
        rc = MQ_ERR;
done:
    if (unordered) {
        for (int n = 0; n < n_nodes; n++)
            mq_plan_step_release(&unordered[n]);
        free(unordered);
    }
    if (deps)
        for (int n = 0; n < n_nodes; n++)
            free(deps[n]);
    free(deps);
    free(n_deps);
    free(indegree);
    free(order);
    free(producer);
    if (rc) {
        mq_plan_free(plan);
        return rc;
    }
    *out = plan;
    return MQ_OK;
}

int mq_plan_build_with_options(const struct mq_model *model,
                               const struct mq_plan_options *options, struct mq_plan **out,
                               struct mq_error *err)
{
    int rc = build_graph(model->proto, model->proto->graph, NULL, 0, 1, options, out, err);
    if (rc)
        mq_error_prefix(err, "%s: ", model->path);
    return rc;
}

int mq_plan_build(const struct mq_model *model, struct mq_plan **out, struct mq_error *err)
{
    return mq_plan_build_with_options(model, NULL, out, err);
}

static int each_constant(const struct mq_plan *plan, mq_constant_fn fn, void *user, int depth,
                         struct mq_error *err)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return MQ_OK;
    /* constants a fusion emptied (dtype 0) have no readers left */
    for (int v = 0; v < plan->n_values; v++)
        if (plan->values[v].is_constant && plan->values[v].constant.dtype &&
            fn(user, plan->values[v].name, &plan->values[v].constant, err))
            return MQ_ERR;
    for (int s = 0; s < plan->n_steps; s++)
        for (int g = 0; g < plan->steps[s].node.n_subgraphs; g++)
            if (each_constant(plan->steps[s].node.subgraphs[g], fn, user, depth + 1, err))
                return MQ_ERR;
    return MQ_OK;
}

int mq_plan_each_constant(const struct mq_plan *plan, mq_constant_fn fn, void *user,
                          struct mq_error *err)
{
    return each_constant(plan, fn, user, 0, err);
}

int mq_value_info_dtype(const Onnx__ValueInfoProto *info)
{
    if (!info || !info->type || info->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return 0;
    const Onnx__TypeProto__Tensor *t = info->type->tensor_type;
    return t->has_elem_type ? t->elem_type : 0;
}

int mq_plan_input_count(const struct mq_plan *plan) { return plan->n_inputs; }
const Onnx__ValueInfoProto *mq_plan_input(const struct mq_plan *plan, int i)
{
    return i >= 0 && i < plan->n_inputs ? plan->inputs[i] : NULL;
}
int mq_plan_output_count(const struct mq_plan *plan) { return plan->n_outputs; }
const Onnx__ValueInfoProto *mq_plan_output(const struct mq_plan *plan, int i)
{
    return i >= 0 && i < plan->n_outputs ? plan->outputs[i] : NULL;
}
int mq_subgraph_input_count(const struct mq_plan *subgraph) { return subgraph->n_inputs; }
int mq_subgraph_output_count(const struct mq_plan *subgraph) { return subgraph->n_outputs; }
