/*
 * ai.onnx.ml TreeEnsemble (opset 5): decision trees over the features of each row of X
 * [N, F], leaves adding their weight to a target, the trees' contributions aggregated by sum,
 * average, min or max.  Node comparisons: <=, <, >=, >, ==, != and set membership (the sets
 * listed in membership_values, NaN-separated, in node order); NaN features take the true
 * branch where nodes_missing_value_tracks_true says so.  Only post_transform NONE.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"
#include "model/tensor_proto.h"

enum { TE_LEQ, TE_LT, TE_GTE, TE_GT, TE_EQ, TE_NEQ, TE_MEMBER };
enum { TE_AVERAGE, TE_SUM, TE_MIN, TE_MAX };

/* A tensor attribute as doubles (*n values); NULL when absent or unreadable. */
static double *tensor_attr(const struct mq_kernel_node *node, const char *name, int64_t *n)
{
    *n = 0;
    const Onnx__TensorProto *p = mq_attr_tensor(node, name);
    struct mq_tensor t;
    if (!p || mq_tensor_from_proto(p, name, &t, NULL))
        return NULL;
    double *v = malloc(sizeof(double) * (size_t)(t.count + 1));
    if (v && mq_as_double_load(&t, v) == MQ_OK)
        *n = t.count;
    else {
        free(v);
        v = NULL;
    }
    mq_tensor_free(&t);
    return v;
}

struct te_model {
    int64_t n_nodes, n_leaves, n_trees, n_members;
    const int64_t *feature, *truenode, *falsenode, *trueleaf, *falseleaf, *target, *roots, *miss;
    double *splits, *modes, *weights, *members;
    int64_t *member_start; /* per node: first index into members, for TE_MEMBER nodes */
};

static int te_less_than(int64_t i, int64_t n) { return i >= 0 && i < n; }

/* Follows one tree from root for row x; the leaf index, or -1 when the structure is broken. */
static int64_t te_walk(const struct te_model *m, int64_t root, const double *x, int64_t F)
{
    int64_t at = root;
    int is_leaf = m->trueleaf[root] && m->falseleaf[root] &&
                  m->truenode[root] == m->falsenode[root];
    if (is_leaf)
        return te_less_than(m->truenode[root], m->n_leaves) ? m->truenode[root] : -1;
    for (int64_t steps = 0; steps <= m->n_nodes; steps++) {
        if (!te_less_than(at, m->n_nodes) || !te_less_than(m->feature[at], F))
            return -1;
        double v = x[m->feature[at]], s = m->splits ? m->splits[at] : 0.0;
        int mode = (int)m->modes[at], go;
        switch (mode) {
        case TE_LEQ: go = v <= s; break;
        case TE_LT: go = v < s; break;
        case TE_GTE: go = v >= s; break;
        case TE_GT: go = v > s; break;
        case TE_EQ: go = v == s; break;
        case TE_NEQ: go = v != s; break;
        default: {
            go = 0;
            for (int64_t k = m->member_start[at]; k < m->n_members && !isnan(m->members[k]); k++)
                if (m->members[k] == v)
                    go = 1;
        }
        }
        if (isnan(v) && m->miss && m->miss[at])
            go = 1;
        int leaf = go ? (int)m->trueleaf[at] : (int)m->falseleaf[at];
        int64_t next = go ? m->truenode[at] : m->falsenode[at];
        if (leaf)
            return te_less_than(next, m->n_leaves) ? next : -1;
        at = next;
    }
    return -1; /* a cycle */
}

static int tree_ensemble_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                             const struct mq_tensor *const *inputs, int n_inputs,
                             struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    if (x->rank != 2)
        return ops_fail(node, err, "X must be [N, F]");
    if (mq_attr_int(node, "post_transform", 0) != 0)
        return ops_fail(node, err, "post_transform %lld is not supported (only NONE)",
                        (long long)mq_attr_int(node, "post_transform", 0));
    int agg = (int)mq_attr_int(node, "aggregate_function", TE_SUM);
    int64_t n_targets = mq_attr_int(node, "n_targets", 0);
    struct te_model m = {0};
    int64_t n_splits, n_modes, n_weights, n_truel, n_falsel, n_tn, n_fn, n_targ, n_miss;
    m.n_nodes = mq_attr_ints(node, "nodes_featureids", &m.feature);
    n_tn = mq_attr_ints(node, "nodes_truenodeids", &m.truenode);
    n_fn = mq_attr_ints(node, "nodes_falsenodeids", &m.falsenode);
    n_truel = mq_attr_ints(node, "nodes_trueleafs", &m.trueleaf);
    n_falsel = mq_attr_ints(node, "nodes_falseleafs", &m.falseleaf);
    n_targ = mq_attr_ints(node, "leaf_targetids", &m.target);
    m.n_trees = mq_attr_ints(node, "tree_roots", &m.roots);
    n_miss = mq_attr_ints(node, "nodes_missing_value_tracks_true", &m.miss);
    m.splits = tensor_attr(node, "nodes_splits", &n_splits);
    m.modes = tensor_attr(node, "nodes_modes", &n_modes);
    m.weights = tensor_attr(node, "leaf_weights", &m.n_leaves);
    m.members = tensor_attr(node, "membership_values", &m.n_members);
    n_weights = m.n_leaves;
    double *xv = NULL, *y = NULL;
    int rc = MQ_ERR;
    if (m.n_nodes < 1 || n_tn != m.n_nodes || n_fn != m.n_nodes || n_truel != m.n_nodes ||
        n_falsel != m.n_nodes || n_modes != m.n_nodes || n_splits != m.n_nodes ||
        n_targ != n_weights || m.n_trees < 1 || n_targets < 1 ||
        (n_miss > 0 && n_miss != m.n_nodes) || agg < TE_AVERAGE || agg > TE_MAX) {
        ops_fail(node, err, "the tree attributes are missing or disagree in length");
        goto done;
    }
    if (n_miss <= 0)
        m.miss = NULL;
    m.member_start = calloc((size_t)m.n_nodes, sizeof(int64_t));
    if (!m.member_start)
        goto oom;
    for (int64_t i = 0, k = 0; i < m.n_nodes; i++)
        if ((int)m.modes[i] == TE_MEMBER) {
            m.member_start[i] = k;
            while (k < m.n_members && !isnan(m.members[k]))
                k++;
            k++; /* the NaN that ends this node's set */
        }
    int64_t N = x->dims[0], F = x->dims[1];
    xv = malloc(sizeof(double) * (size_t)(x->count + 1));
    y = malloc(sizeof(double) * (size_t)(N * n_targets + 1));
    if (!xv || !y || mq_as_double_load(x, xv))
        goto oom;
    double init = agg == TE_MIN ? INFINITY : agg == TE_MAX ? -INFINITY : 0.0;
    for (int64_t i = 0; i < N * n_targets; i++)
        y[i] = init;
    for (int64_t r = 0; r < N; r++)
        for (int64_t t = 0; t < m.n_trees; t++) {
            int64_t leaf = te_walk(&m, m.roots[t], xv + r * F, F);
            if (leaf < 0 || !te_less_than(m.target[leaf], n_targets)) {
                ops_fail(node, err, "tree %lld leads to a node or leaf that does not exist",
                         (long long)t);
                goto done;
            }
            double *o = y + r * n_targets + m.target[leaf], w = m.weights[leaf];
            if (agg == TE_SUM)
                *o += w;
            else if (agg == TE_AVERAGE)
                *o += w / (double)m.n_trees;
            else if (agg == TE_MIN)
                *o = w < *o ? w : *o;
            else
                *o = w > *o ? w : *o;
        }
    int64_t dims[2] = {N, n_targets};
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, 2, dims, err))
        goto done;
    mq_as_double_store(&outputs[0], y);
    rc = MQ_OK;
    goto done;
oom:
    ops_fail(node, err, "out of memory or unsupported type");
done:
    free(m.splits), free(m.modes), free(m.weights), free(m.members), free(m.member_start);
    free(xv), free(y);
    return rc;
}

const struct mq_kernel mq_kernels_tree_ensemble[] = {
    {"ai.onnx.ml", "TreeEnsemble", 5, 0, NULL, tree_ensemble_run, NULL},
    {0},
};
