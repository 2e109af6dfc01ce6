/*
 * The float16 conversion's decision: for every node of every graph, whether
 * it computes in float16, follows its inputs' precision or stays float32
 * (and why), from the op table (fp16_ops.h), the user's selection
 * (fp16_select.h), the target's kernels and the values beyond float16's
 * range; and which float values must stay exact float32.  Nothing in the
 * graph changes here but the node order (sorted topologically).
 */
#include <stdlib.h>
#include <string.h>

#include "model/tensor_proto.h"
#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"
#include "quant/fp16_ops.h"
#include "quant/fp16_state.h"

static Onnx__GraphProto *subgraph_attr(const Onnx__NodeProto *node, const char *name)
{
    const Onnx__AttributeProto *a = mq_node_attr(node, name);
    return a ? a->g : NULL;
}

/* Marks a float32 constant beyond float16's range as unsafe (and reports it). */
static int check_constant(struct fp16_conv *c, const Onnx__TensorProto *p, const char *name,
                          const char *graph, const char *what)
{
    if (!p->has_data_type || p->data_type != MQ_DTYPE_FLOAT)
        return MQ_OK;
    struct mq_tensor t = {0};
    if (mq_tensor_from_proto(p, name, &t, c->err)) {
        mq_error_prefix(c->err, "%s '%s': ", what, name);
        return MQ_ERR;
    }
    double m = mq_fp16_max_abs(&t, NULL);
    mq_tensor_free(&t);
    if (m > MQ_FP16_MAX &&
        (fp16_set(c->unsafe, name, 1) || mq_fp16_add_range(c, name, graph, what, m)))
        return fp16_oom(c);
    return MQ_OK;
}

static int keep(struct fp16_graph *gr, int i, int mode, char *reason)
{
    gr->mode[i] = mode;
    gr->reason[i] = reason;
    return reason ? 0 : -1;
}

/* Original types of a node's outputs, where the index could not tell them. */
static int infer_outputs(struct fp16_conv *c, const struct mq_graph_index *idx,
                         const Onnx__NodeProto *node, const struct mq_fp16_op *spec)
{
    const char *op = mq_str(node->op_type);
    int in_t = 0;
    for (size_t k = 0; spec && k < node->n_input && !in_t; k++)
        if (mq_graph_input_at(node, k) && mq_fp16_slot_in(spec->data_inputs, k))
            in_t = fp16_type_of(c, node->input[k]);
    for (size_t o = 0; o < node->n_output; o++) {
        const char *name = node->output[o];
        if (!name || !*name)
            continue;
        int t = mq_graph_elem_type(idx, name);
        if (!t && mq_node_is_onnx(node)) {
            if (spec && mq_fp16_slot_in(spec->t_outputs, o))
                t = in_t;
            else if (strcmp(op, "ConstantOfShape") == 0) {
                const Onnx__AttributeProto *a = mq_node_attr(node, "value");
                t = a && a->t && a->t->has_data_type ? a->t->data_type : MQ_DTYPE_FLOAT;
            } else if (strcmp(op, "If") == 0) {
                Onnx__GraphProto *b = subgraph_attr(node, "then_branch");
                t = b && o < b->n_output ? fp16_value_info_type(b->output[o]) : 0;
            } else if (strcmp(op, "Loop") == 0) {
                Onnx__GraphProto *b = subgraph_attr(node, "body");
                t = b && o + 1 < b->n_output ? fp16_value_info_type(b->output[o + 1]) : 0;
            } else if (strcmp(op, "Scan") == 0) {
                Onnx__GraphProto *b = subgraph_attr(node, "body");
                t = b && o < b->n_output ? fp16_value_info_type(b->output[o]) : 0;
            }
        }
        if (t && fp16_set(c->types, name, t))
            return -1;
    }
    return 0;
}

static int touches_float(const struct fp16_conv *c, const Onnx__NodeProto *node)
{
    for (size_t k = 0; k < node->n_input; k++)
        if (mq_graph_input_at(node, k) && fp16_type_of(c, node->input[k]) == MQ_DTYPE_FLOAT)
            return 1;
    for (size_t o = 0; o < node->n_output; o++)
        if (node->output[o] && *node->output[o] &&
            fp16_type_of(c, node->output[o]) == MQ_DTYPE_FLOAT)
            return 1;
    return 0;
}

static int decide_graph(struct fp16_conv *c, Onnx__GraphProto *g,
                        const struct mq_graph_index *parent, const char *path, int is_main,
                        const char *inherited, int depth);

static int decide_subgraphs(struct fp16_conv *c, const Onnx__NodeProto *node, const char *label,
                            const struct mq_graph_index *idx, const char *path,
                            const char *inherited, int depth)
{
    for (size_t a = 0; a < node->n_attribute; a++) {
        const Onnx__AttributeProto *attr = node->attribute[a];
        size_t n = (attr->g ? 1 : 0) + attr->n_graphs;
        for (size_t s = 0; s < n; s++) {
            Onnx__GraphProto *sub =
                attr->g && s == 0 ? attr->g : attr->graphs[s - (attr->g ? 1 : 0)];
            char *sub_path =
                mq_str_printf("%s%s%s/%s", path, *path ? "/" : "", label, mq_str(attr->name));
            if (!sub_path)
                return fp16_oom(c);
            int rc = decide_graph(c, sub, idx, sub_path, 0, inherited, depth + 1);
            free(sub_path);
            if (rc)
                return rc;
        }
    }
    return MQ_OK;
}

/* One node: its mode, the reason when it stays float32, what it marks unsafe or exact. */
static int decide_node(struct fp16_conv *c, struct fp16_graph *gr, const struct mq_graph_index *idx,
                       int i, const char *inherited, int *excluded)
{
    const Onnx__NodeProto *node = gr->g->node[i];
    const char *op = mq_str(node->op_type);
    int onnx = mq_node_is_onnx(node);
    const struct mq_fp16_op *spec = onnx ? mq_fp16_op_find(op) : NULL;
    if (infer_outputs(c, idx, node, spec))
        return fp16_oom(c);
    char *user = NULL;
    if (mq_fp16_selection_reason(&c->sel, node, &user))
        return fp16_oom(c);
    if (!user && inherited && !(user = mq_str_printf("inside excluded node %s", inherited)))
        return fp16_oom(c);
    *excluded = user != NULL;
    int rc = 0;
    if (mq_node_has_subgraph(node)) {
        gr->mode[i] = FP16_MODE_BOUNDARY;
        gr->reason[i] = user ? user : strdup("holds subgraphs: converted inside, its own inputs "
                                             "and outputs stay as declared");
        rc = gr->reason[i] ? 0 : -1;
    } else if (onnx && (strcmp(op, "Constant") == 0 || strcmp(op, "ConstantOfShape") == 0)) {
        gr->mode[i] = user ? FP16_MODE_KEEP_EXACT : FP16_MODE_CONST;
        gr->reason[i] = user;
        if (user)
            for (size_t o = 0; o < node->n_output && !rc; o++)
                rc = fp16_set(c->must32, node->output[o], 1);
    } else if (onnx && strcmp(op, "Cast") == 0) {
        gr->mode[i] = user ? FP16_MODE_KEEP_EXACT : FP16_MODE_CAST;
        gr->reason[i] = user;
    } else if (!touches_float(c, node)) {
        gr->mode[i] = FP16_MODE_NONE;
        free(user);
    } else if (user) {
        rc = keep(gr, i, FP16_MODE_KEEP_EXACT, user);
    } else if (!onnx) {
        rc = keep(gr, i, FP16_MODE_KEEP_EXACT,
                  mq_str_printf("op of domain '%s'", mq_str(node->domain)));
    } else if (!spec) {
        rc = keep(gr, i, c->o->ops == MQ_FP16_OPS_ORT_CPU ? FP16_MODE_KEEP : FP16_MODE_KEEP_EXACT,
                  c->o->ops == MQ_FP16_OPS_ORT_CPU
                      ? mq_str_printf("onnxruntime's CPU provider has no float16 %s kernel", op)
                      : mq_str_printf("%s is not known to run in float16", op));
    } else if (spec->kind == MQ_FP16_BLOCKED) {
        rc = keep(gr, i, FP16_MODE_KEEP_EXACT,
                  mq_str_printf("%s cannot take float16 (schema or dtype attribute)",
                                 op));
    } else if (c->o->ops == MQ_FP16_OPS_ORT_CPU && !mq_fp16_op_on_ort_cpu(spec, c->opset)) {
        rc = keep(gr, i, FP16_MODE_KEEP,
                  mq_str_printf("onnxruntime's CPU provider has no float16 %s kernel at opset %d",
                                 op, c->opset));
    } else {
        /* Every float value the node computes with must have a known type. */
        const char *unknown = NULL, *unsafe = NULL;
        for (size_t k = 0; k < node->n_input; k++) {
            const char *in = mq_graph_input_at(node, k);
            if (!in || !mq_fp16_slot_in(spec->data_inputs, k))
                continue;
            if (!fp16_type_of(c, in))
                unknown = in;
            if (fp16_get(c->unsafe, in))
                unsafe = in;
        }
        const char *produces_large = NULL;
        for (size_t o = 0; o < node->n_output; o++) {
            const char *out = node->output[o];
            if (!out || !*out || !mq_fp16_slot_in(spec->t_outputs, o))
                continue;
            if (!fp16_type_of(c, out))
                unknown = out;
            if (mq_strmap_get(c->observed, out) >= 0)
                produces_large = out;
        }
        if (unknown) {
            rc = keep(gr, i, FP16_MODE_KEEP_EXACT,
                      mq_str_printf("the type of '%s' is unknown", unknown));
        } else if (spec->kind == MQ_FP16_COMPUTE && unsafe) {
            rc = keep(gr, i, FP16_MODE_KEEP_EXACT,
                      mq_str_printf("input '%s' holds values beyond float16's range",
                                     unsafe));
        } else if (spec->kind == MQ_FP16_COMPUTE && produces_large) {
            int k = mq_strmap_get(c->observed, produces_large);
            rc = keep(gr, i, FP16_MODE_KEEP_EXACT,
                      mq_str_printf("output '%s' reached %g on the samples, "
                                     "beyond float16's range",
                                     produces_large, c->o->out_of_range_max[k]));
        } else {
            gr->mode[i] = spec->kind == MQ_FP16_NEUTRAL ? FP16_MODE_FOLLOW : FP16_MODE_CONVERT;
            /* Moving a large value keeps it large. */
            if (spec->kind == MQ_FP16_NEUTRAL && unsafe)
                for (size_t o = 0; o < node->n_output && !rc; o++)
                    if (mq_fp16_slot_in(spec->t_outputs, o))
                        rc = fp16_set(c->unsafe, node->output[o], 1);
        }
    }
    if (rc)
        return fp16_oom(c);
    /* Float inputs that must stay exact: those of exact-float32 nodes, and non-T slots. */
    for (size_t k = 0; k < node->n_input; k++) {
        const char *in = mq_graph_input_at(node, k);
        if (!in || fp16_type_of(c, in) != MQ_DTYPE_FLOAT)
            continue;
        int exact = gr->mode[i] == FP16_MODE_KEEP_EXACT ||
                    ((gr->mode[i] == FP16_MODE_CONVERT || gr->mode[i] == FP16_MODE_FOLLOW) &&
                     spec && !mq_fp16_slot_in(spec->data_inputs, k));
        if (exact && fp16_set(c->must32, in, 1))
            return fp16_oom(c);
    }
    return MQ_OK;
}

static int decide_graph(struct fp16_conv *c, Onnx__GraphProto *g,
                        const struct mq_graph_index *parent, const char *path, int is_main,
                        const char *inherited, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return mq_error_set(c->err, "subgraphs nested deeper than %d", MQ_MAX_SUBGRAPH_DEPTH);
    int rc = mq_graph_toposort(g, c->err);
    if (rc) {
        if (*path)
            mq_error_prefix(c->err, "subgraph %s: ", path);
        return rc;
    }
    struct mq_graph_index idx;
    if ((rc = mq_graph_index_build(g, parent, &idx, c->err)))
        return rc;
    struct fp16_graph *gr = NULL;
    if (c->n_graphs == c->cap_graphs) {
        int cap = c->cap_graphs ? c->cap_graphs * 2 : 4;
        struct fp16_graph *v = realloc(c->graphs, (size_t)cap * sizeof *v);
        if (!v) {
            mq_graph_index_free(&idx);
            return fp16_oom(c);
        }
        c->graphs = v;
        c->cap_graphs = cap;
    }
    gr = &c->graphs[c->n_graphs++];
    memset(gr, 0, sizeof *gr);
    gr->g = g;
    gr->is_main = is_main;
    gr->n_nodes = (int)g->n_node;
    size_t n = g->n_node ? g->n_node : 1;
    gr->path = strdup(path);
    gr->nodes = calloc(n, sizeof *gr->nodes);
    gr->mode = calloc(n, sizeof *gr->mode);
    gr->follow16 = calloc(n, sizeof *gr->follow16);
    gr->reason = calloc(n, sizeof *gr->reason);
    if (!gr->path || !gr->nodes || !gr->mode || !gr->follow16 || !gr->reason) {
        mq_graph_index_free(&idx);
        return fp16_oom(c);
    }
    int gi = c->n_graphs - 1;
    for (size_t i = 0; i < g->n_node; i++)
        gr->nodes[i] = g->node[i];

    /* Types of what the graph starts from, and constants beyond float16's range. */
    for (size_t i = 0; rc == MQ_OK && i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (t->has_data_type && fp16_set(c->types, mq_str(t->name), t->data_type))
            rc = fp16_oom(c);
        else
            rc = check_constant(c, t, mq_str(t->name), path, "initializer");
    }
    for (size_t i = 0; rc == MQ_OK && i < g->n_input; i++) {
        const char *name = mq_str(g->input[i]->name);
        int t = fp16_value_info_type(g->input[i]);
        if (t && !fp16_get(c->types, name) && fp16_set(c->types, name, t))
            rc = fp16_oom(c);
    }
    for (size_t o = 0; rc == MQ_OK && is_main && c->o->keep_io_types && o < g->n_output; o++)
        if (fp16_set(c->must32, mq_str(g->output[o]->name), 1))
            rc = fp16_oom(c);
    for (size_t i = 0; rc == MQ_OK && i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        /* The name the quantizer gives the node: its own, or "<op_type>#<index>". */
        const struct mq_node_choice *choice = mq_fp16_selection_find(&c->sel, node);
        if (!choice) {
            rc = mq_error_set(c->err, "node %zu of graph '%s' was not in the model at selection",
                              i, path);
            break;
        }
        const char *label = choice->name;
        const char *op = mq_str(node->op_type);
        if (mq_node_is_onnx(node) &&
            (strcmp(op, "Constant") == 0 || strcmp(op, "ConstantOfShape") == 0)) {
            const Onnx__AttributeProto *a = mq_node_attr(node, "value");
            if (a && a->t && node->n_output > 0)
                rc = check_constant(c, a->t, mq_str(node->output[0]), path, op);
        }
        int excluded = 0;
        if (rc == MQ_OK)
            rc = decide_node(c, &c->graphs[gi], &idx, (int)i, inherited, &excluded);
        if (rc == MQ_OK && c->graphs[gi].mode[i] == FP16_MODE_BOUNDARY) {
            /* Excluding a node that holds subgraphs leaves everything inside float32 too. */
            char *quoted = excluded && !inherited ? mq_str_printf("'%s'", label) : NULL;
            if (excluded && !inherited && !quoted)
                rc = fp16_oom(c);
            else
                rc = decide_subgraphs(c, node, label, &idx, path, quoted ? quoted : inherited,
                                      depth);
            free(quoted);
        }
    }
    mq_graph_index_free(&idx);
    return rc;
}

int mq_fp16_decide(struct fp16_conv *c)
{
    return decide_graph(c, c->model->graph, NULL, "", 1, NULL, 0);
}
