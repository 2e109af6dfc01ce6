/* If, Loop and Scan: kernels that run subgraphs with the enclosing names visible. */
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/plan.h"

#define MAX_LOOP_ITERATIONS ((int64_t)1 << 40)

static const struct mq_plan *subgraph_named(const struct mq_kernel_node *node, const char *name)
{
    for (int i = 0; i < node->n_subgraphs; i++)
        if (strcmp(node->subgraph_names[i], name) == 0)
            return node->subgraphs[i];
    return NULL;
}

static int need_subgraph(struct mq_kernel_node *node, const char *name, struct mq_error *err)
{
    if (!subgraph_named(node, name))
        return mq_error_set(err, "node '%s' (%s): missing graph attribute '%s'", node->name,
                            node->op_type, name);
    return MQ_OK;
}

/* ---- If ---- */

static int if_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    if (need_subgraph(node, "then_branch", err) || need_subgraph(node, "else_branch", err))
        return MQ_ERR;
    for (int b = 0; b < 2; b++) {
        const struct mq_plan *g = subgraph_named(node, b ? "else_branch" : "then_branch");
        if (mq_subgraph_input_count(g) != 0)
            return mq_error_set(err, "node '%s' (If): branch graphs take no inputs", node->name);
        if (mq_subgraph_output_count(g) != node->n_outputs)
            return mq_error_set(err, "node '%s' (If): %s has %d outputs, the node %d", node->name,
                                b ? "else_branch" : "then_branch", mq_subgraph_output_count(g),
                                node->n_outputs);
    }
    return MQ_OK;
}

static int if_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                  const struct mq_tensor *const *in, int n_in, struct mq_tensor *out, int n_out,
                  struct mq_error *err)
{
    if (n_in < 1 || !in[0] || in[0]->count != 1)
        return mq_error_set(err, "node '%s' (If): cond must hold exactly one element", node->name);
    int cond = mq_tensor_get_double(in[0], 0) != 0;
    const struct mq_plan *branch = subgraph_named(node, cond ? "then_branch" : "else_branch");
    int rc = mq_exec_subgraph(exec, branch, NULL, 0, out, n_out, err);
    if (rc)
        mq_error_prefix(err, "node '%s' (If), %s: ", node->name,
                        cond ? "then_branch" : "else_branch");
    return rc;
}

/* ---- shared helpers for Loop and Scan ---- */

/* Copies slice `index` along `axis` of src into dst (which drops that axis). */
static int take_slice(const struct mq_tensor *src, int axis, int64_t index, struct mq_tensor *dst,
                      const char *what, struct mq_error *err)
{
    int64_t dims[MQ_MAX_RANK];
    int r = 0;
    for (int d = 0; d < src->rank; d++)
        if (d != axis)
            dims[r++] = src->dims[d];
    if (mq_tensor_alloc(dst, src->dtype, r, dims, what, err))
        return MQ_ERR;
    size_t elem = mq_dtype_size(src->dtype);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= src->dims[d];
    for (int d = axis + 1; d < src->rank; d++)
        inner *= src->dims[d];
    size_t run = (size_t)inner * elem;
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)dst->data + (size_t)o * run,
               (const char *)src->data + ((size_t)(o * src->dims[axis] + index)) * run, run);
    return MQ_OK;
}

/* Per-iteration values of a scan output, gathered until the stacked result is built. */
struct stack {
    struct mq_tensor *items;
    int64_t n, cap;
};

static int stack_push(struct stack *s, struct mq_tensor *t, const char *what, struct mq_error *err)
{
    if (s->n && (s->items[0].dtype != t->dtype || !mq_shape_equal(&s->items[0], t)))
        return mq_error_set(err, "%s: scan output changes shape or type between iterations", what);
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 16;
        struct mq_tensor *items = realloc(s->items, (size_t)cap * sizeof *items);
        if (!items)
            return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", what);
        s->items = items;
        s->cap = cap;
    }
    mq_tensor_move(&s->items[s->n++], t);
    return MQ_OK;
}

static void stack_free(struct stack *s)
{
    for (int64_t i = 0; i < s->n; i++)
        mq_tensor_free(&s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* Builds the stacked output with the iteration axis at `axis`, optionally reversed. */
static int stack_build(struct stack *s, int axis, int reverse, struct mq_tensor *out,
                       const char *what, struct mq_error *err)
{
    if (s->n == 0) {
        int64_t zero = 0;
        return mq_tensor_alloc(out, MQ_DTYPE_FLOAT, 1, &zero, what, err);
    }
    const struct mq_tensor *first = &s->items[0];
    if (axis < 0 || axis > first->rank || first->rank + 1 > MQ_MAX_RANK)
        return mq_error_set(err, "%s: scan output axis %d is out of range", what, axis);
    int64_t dims[MQ_MAX_RANK];
    int r = 0;
    for (int d = 0; d <= first->rank; d++)
        dims[r++] = d == axis ? s->n : first->dims[d < axis ? d : d - 1];
    if (mq_tensor_alloc(out, first->dtype, r, dims, what, err))
        return MQ_ERR;
    size_t elem = mq_dtype_size(first->dtype);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= first->dims[d];
    for (int d = axis; d < first->rank; d++)
        inner *= first->dims[d];
    size_t run = (size_t)inner * elem;
    for (int64_t i = 0; i < s->n; i++) {
        const struct mq_tensor *item = &s->items[reverse ? s->n - 1 - i : i];
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)out->data + ((size_t)(o * s->n + i)) * run,
                   (const char *)item->data + (size_t)o * run, run);
    }
    return MQ_OK;
}

/* ---- Loop ---- */

static int loop_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    if (need_subgraph(node, "body", err))
        return MQ_ERR;
    const struct mq_plan *body = subgraph_named(node, "body");
    int n_carried = node->n_inputs - 2;
    if (n_carried < 0)
        return mq_error_set(err, "node '%s' (Loop): needs inputs M and cond (either may be \"\")",
                            node->name);
    if (mq_subgraph_input_count(body) != n_carried + 2)
        return mq_error_set(err, "node '%s' (Loop): body takes %d inputs, expected %d", node->name,
                            mq_subgraph_input_count(body), n_carried + 2);
    if (mq_subgraph_output_count(body) < n_carried + 1 ||
        mq_subgraph_output_count(body) - 1 != node->n_outputs)
        return mq_error_set(err, "node '%s' (Loop): body has %d outputs for %d loop outputs",
                            node->name, mq_subgraph_output_count(body), node->n_outputs);
    return MQ_OK;
}

static int loop_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *in, int n_in, struct mq_tensor *out, int n_out,
                    struct mq_error *err)
{
    const struct mq_plan *body = subgraph_named(node, "body");
    int n_carried = n_in - 2;
    int n_scan = n_out - n_carried;
    int n_body_out = mq_subgraph_output_count(body);
    int64_t max_trips = MAX_LOOP_ITERATIONS;
    if (in[0]) {
        if (in[0]->count != 1)
            return mq_error_set(err, "node '%s' (Loop): M must be a scalar", node->name);
        max_trips = mq_tensor_get_int64(in[0], 0);
    }
    int cond = 1;
    if (in[1]) {
        if (in[1]->count != 1)
            return mq_error_set(err, "node '%s' (Loop): cond must be a scalar", node->name);
        cond = mq_tensor_get_double(in[1], 0) != 0;
    }
    if (!in[0] && !in[1])
        return mq_error_set(err, "node '%s' (Loop): neither M nor cond is given: the loop would "
                            "never end", node->name);
    int rc = MQ_OK;
    struct mq_tensor *carried = calloc((size_t)n_carried + 1, sizeof *carried);
    struct mq_tensor *body_out = calloc((size_t)n_body_out + 1, sizeof *body_out);
    const struct mq_tensor **body_in = calloc((size_t)n_carried + 3, sizeof *body_in);
    struct stack *scans = calloc((size_t)n_scan + 1, sizeof *scans);
    struct mq_tensor iter_t = {0}, cond_t = {0};
    if (!carried || !body_out || !body_in || !scans) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "node '%s': out of memory", node->name);
        goto out;
    }
    for (int c = 0; c < n_carried; c++) {
        if (!in[2 + c]) {
            rc = mq_error_set(err, "node '%s' (Loop): loop-carried input %d is missing",
                              node->name, c);
            goto out;
        }
        if ((rc = mq_tensor_copy(&carried[c], in[2 + c], node->name, err)))
            goto out;
    }
    if ((rc = mq_tensor_alloc(&iter_t, MQ_DTYPE_INT64, 0, NULL, node->name, err)) ||
        (rc = mq_tensor_alloc(&cond_t, MQ_DTYPE_BOOL, 0, NULL, node->name, err)))
        goto out;
    for (int64_t i = 0; i < max_trips && cond; i++) {
        *(int64_t *)iter_t.data = i;
        *(uint8_t *)cond_t.data = (uint8_t)cond;
        body_in[0] = &iter_t;
        body_in[1] = &cond_t;
        for (int c = 0; c < n_carried; c++)
            body_in[2 + c] = &carried[c];
        if ((rc = mq_exec_subgraph(exec, body, body_in, n_carried + 2, body_out, n_body_out,
                                   err))) {
            mq_error_prefix(err, "node '%s' (Loop), iteration %lld: ", node->name, (long long)i);
            goto out;
        }
        if (body_out[0].count != 1) {
            rc = mq_error_set(err, "node '%s' (Loop): body's cond output must be a scalar",
                              node->name);
            goto out;
        }
        cond = mq_tensor_get_double(&body_out[0], 0) != 0;
        mq_tensor_free(&body_out[0]);
        for (int c = 0; c < n_carried; c++) {
            mq_tensor_free(&carried[c]);
            mq_tensor_move(&carried[c], &body_out[1 + c]);
        }
        for (int s = 0; s < n_scan; s++)
            if ((rc = stack_push(&scans[s], &body_out[1 + n_carried + s], node->name, err)))
                goto out;
    }
    for (int c = 0; c < n_carried; c++)
        mq_tensor_move(&out[c], &carried[c]);
    for (int s = 0; s < n_scan && rc == MQ_OK; s++)
        rc = stack_build(&scans[s], 0, 0, &out[n_carried + s], node->name, err);
out:
    for (int c = 0; carried && c < n_carried; c++)
        mq_tensor_free(&carried[c]);
    for (int o = 0; body_out && o < n_body_out; o++)
        mq_tensor_free(&body_out[o]);
    for (int s = 0; scans && s < n_scan; s++)
        stack_free(&scans[s]);
    mq_tensor_free(&iter_t);
    mq_tensor_free(&cond_t);
    free(carried);
    free(body_out);
    free(body_in);
    free(scans);
    return rc;
}

/* ---- Scan (opset 9 and later) ---- */

struct scan_state {
    int n_state, n_scan_in, n_scan_out;
    int64_t *in_axes, *in_dirs, *out_axes, *out_dirs;
};

static void scan_destroy(void *p)
{
    struct scan_state *s = p;
    if (!s)
        return;
    free(s->in_axes);
    free(s->in_dirs);
    free(s->out_axes);
    free(s->out_dirs);
    free(s);
}

static int64_t *copy_ints(const struct mq_kernel_node *node, const char *name, int n)
{
    int64_t *out = calloc((size_t)n + 1, sizeof *out);
    if (!out)
        return NULL;
    const int64_t *v;
    int64_t k = mq_attr_ints(node, name, &v);
    for (int i = 0; i < n && i < k; i++)
        out[i] = v[i];
    return out;
}

/*
 * What every Scan version prepares alike: the body, num_scan_inputs and the
 * counts of states and scan outputs.  `lead` inputs come before the states
 * (Scan-8's sequence_lens).  The state is attached to the node.
 */
static int scan_state_new(struct mq_kernel_node *node, int lead, struct scan_state **out,
                          struct mq_error *err)
{
    if (need_subgraph(node, "body", err))
        return MQ_ERR;
    const struct mq_plan *body = subgraph_named(node, "body");
    int64_t m = mq_attr_int(node, "num_scan_inputs", -1);
    if (m < 1 || m > node->n_inputs - lead)
        return mq_error_set(err, "node '%s' (Scan): num_scan_inputs %lld is invalid", node->name,
                            (long long)m);
    struct scan_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    node->state = s;
    s->n_scan_in = (int)m;
    s->n_state = node->n_inputs - lead - s->n_scan_in;
    s->n_scan_out = node->n_outputs - s->n_state;
    if (s->n_state < 0 || s->n_scan_out < 0 ||
        mq_subgraph_input_count(body) != s->n_state + s->n_scan_in ||
        mq_subgraph_output_count(body) != node->n_outputs)
        return mq_error_set(err, "node '%s' (Scan): body inputs/outputs do not match the node",
                            node->name);
    *out = s;
    return MQ_OK;
}

static int scan_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct scan_state *s = NULL;
    if (scan_state_new(node, 0, &s, err))
        return MQ_ERR;
    s->in_axes = copy_ints(node, "scan_input_axes", s->n_scan_in);
    s->in_dirs = copy_ints(node, "scan_input_directions", s->n_scan_in);
    s->out_axes = copy_ints(node, "scan_output_axes", s->n_scan_out);
    s->out_dirs = copy_ints(node, "scan_output_directions", s->n_scan_out);
    if (!s->in_axes || !s->in_dirs || !s->out_axes || !s->out_dirs)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    return MQ_OK;
}

/*
 * One scan: `state` (n_state tensors) and scan inputs `xs` (n_scan_in, iterated
 * along axes[k]) through the body; final states and stacked scan outputs go to out.
 */
static int scan_core(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct scan_state *s, const struct mq_tensor *const *states,
                     const struct mq_tensor *const *xs, const int *axes, struct mq_tensor *out,
                     struct mq_error *err)
{
    const struct mq_plan *body = subgraph_named(node, "body");
    int n_in = s->n_state + s->n_scan_in, n_out = s->n_state + s->n_scan_out;
    int64_t length = -1;
    for (int k = 0; k < s->n_scan_in; k++) {
        if (length >= 0 && xs[k]->dims[axes[k]] != length)
            return mq_error_set(err, "node '%s' (Scan): scan inputs differ in length", node->name);
        length = xs[k]->dims[axes[k]];
    }
    int rc = MQ_OK;
    struct mq_tensor *state = calloc((size_t)s->n_state + 1, sizeof *state);
    struct mq_tensor *slices = calloc((size_t)s->n_scan_in + 1, sizeof *slices);
    struct mq_tensor *body_out = calloc((size_t)n_out + 1, sizeof *body_out);
    const struct mq_tensor **body_in = calloc((size_t)n_in + 1, sizeof *body_in);
    struct stack *scans = calloc((size_t)s->n_scan_out + 1, sizeof *scans);
    if (!state || !slices || !body_out || !body_in || !scans) {
        rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        goto out;
    }
    for (int c = 0; c < s->n_state; c++)
        if ((rc = mq_tensor_copy(&state[c], states[c], node->name, err)))
            goto out;
    for (int64_t t = 0; t < length; t++) {
        for (int k = 0; k < s->n_scan_in; k++) {
            int64_t index = s->in_dirs[k] ? length - 1 - t : t;
            mq_tensor_free(&slices[k]);
            if ((rc = take_slice(xs[k], axes[k], index, &slices[k], node->name, err)))
                goto out;
        }
        for (int c = 0; c < s->n_state; c++)
            body_in[c] = &state[c];
        for (int k = 0; k < s->n_scan_in; k++)
            body_in[s->n_state + k] = &slices[k];
        if ((rc = mq_exec_subgraph(exec, body, body_in, n_in, body_out, n_out, err))) {
            mq_error_prefix(err, "node '%s' (Scan), step %lld: ", node->name, (long long)t);
            goto out;
        }
        for (int c = 0; c < s->n_state; c++) {
            mq_tensor_free(&state[c]);
            mq_tensor_move(&state[c], &body_out[c]);
        }
        for (int k = 0; k < s->n_scan_out; k++)
            if ((rc = stack_push(&scans[k], &body_out[s->n_state + k], node->name, err)))
                goto out;
    }
    for (int c = 0; c < s->n_state; c++)
        mq_tensor_move(&out[c], &state[c]);
    for (int k = 0; k < s->n_scan_out && rc == MQ_OK; k++) {
        int rank = scans[k].n ? scans[k].items[0].rank + 1 : 1;
        int64_t axis = s->out_axes[k] < 0 ? s->out_axes[k] + rank : s->out_axes[k];
        rc = stack_build(&scans[k], (int)axis, (int)s->out_dirs[k], &out[s->n_state + k],
                         node->name, err);
    }
out:
    for (int c = 0; state && c < s->n_state; c++)
        mq_tensor_free(&state[c]);
    for (int k = 0; slices && k < s->n_scan_in; k++)
        mq_tensor_free(&slices[k]);
    for (int o = 0; body_out && o < n_out; o++)
        mq_tensor_free(&body_out[o]);
    for (int k = 0; scans && k < s->n_scan_out; k++)
        stack_free(&scans[k]);
    free(state);
    free(slices);
    free(body_out);
    free(body_in);
    free(scans);
    if (rc)
        for (int o = 0; o < n_out; o++)
            mq_tensor_free(&out[o]);
    return rc;
}

#define MAX_SCAN_TENSORS 64

static int scan_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *in, int n_in, struct mq_tensor *out, int n_out,
                    struct mq_error *err)
{
    const struct scan_state *s = node->state;
    int axes[MAX_SCAN_TENSORS];
    if (s->n_scan_in > MAX_SCAN_TENSORS)
        return mq_error_set(err, "node '%s' (Scan): too many scan inputs", node->name);
    for (int i = 0; i < n_in; i++)
        if (!in[i])
            return mq_error_set(err, "node '%s' (Scan): input %d is missing", node->name, i);
    for (int k = 0; k < s->n_scan_in; k++)
        if (mq_axis_normalize(node, s->in_axes[k], in[s->n_state + k]->rank, &axes[k], err))
            return MQ_ERR;
    return scan_core(node, exec, s, in, in + s->n_state, axes, out, err);
}

/* Scan-8: every input has a leading batch axis; each batch entry is scanned on its own. */
static int scan8_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct scan_state *s = NULL;
    if (scan_state_new(node, 1, &s, err))
        return MQ_ERR;
    s->in_axes = calloc((size_t)s->n_scan_in + 1, sizeof *s->in_axes);
    s->in_dirs = copy_ints(node, "directions", s->n_scan_in);
    s->out_axes = calloc((size_t)s->n_scan_out + 1, sizeof *s->out_axes);
    s->out_dirs = calloc((size_t)s->n_scan_out + 1, sizeof *s->out_dirs);
    if (!s->in_axes || !s->in_dirs || !s->out_axes || !s->out_dirs)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    return MQ_OK;
}

static int scan8_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                     const struct mq_tensor *const *in, int n_in, struct mq_tensor *out, int n_out,
                     struct mq_error *err)
{
    const struct scan_state *s = node->state;
    int n_tensors = s->n_state + s->n_scan_in;
    if (n_tensors > MAX_SCAN_TENSORS || n_out > MAX_SCAN_TENSORS)
        return mq_error_set(err, "node '%s' (Scan): too many inputs", node->name);
    int64_t batch = -1;
    for (int i = 1; i < n_in; i++) {
        if (!in[i] || in[i]->rank < 1)
            return mq_error_set(err, "node '%s' (Scan-8): input %d needs a batch axis", node->name,
                                i);
        if (batch >= 0 && in[i]->dims[0] != batch)
            return mq_error_set(err, "node '%s' (Scan-8): inputs differ in batch size", node->name);
        batch = in[i]->dims[0];
    }
    int axes[MAX_SCAN_TENSORS] = {0};
    struct mq_tensor per_in[MAX_SCAN_TENSORS], per_out[MAX_SCAN_TENSORS];
    const struct mq_tensor *ptrs[MAX_SCAN_TENSORS];
    struct stack *stacks = calloc((size_t)n_out + 1, sizeof *stacks);
    int rc = stacks ? MQ_OK : mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    memset(per_in, 0, sizeof per_in);
    memset(per_out, 0, sizeof per_out);
    for (int64_t b = 0; b < batch && rc == MQ_OK; b++) {
        if (in[0]) {
            int64_t len = mq_tensor_get_int64(in[0], b);
            for (int k = 0; k < s->n_scan_in && rc == MQ_OK; k++)
                if (len != in[1 + s->n_state + k]->dims[1])
                    rc = mq_error_set(err, "node '%s' (Scan-8): sequence_lens shorter than the "
                                      "scan inputs are not supported", node->name);
        }
        for (int i = 0; i < n_tensors && rc == MQ_OK; i++) {
            rc = take_slice(in[1 + i], 0, b, &per_in[i], node->name, err);
            ptrs[i] = &per_in[i];
        }
        if (rc == MQ_OK)
            rc = scan_core(node, exec, s, ptrs, ptrs + s->n_state, axes, per_out, err);
        for (int o = 0; o < n_out && rc == MQ_OK; o++)
            rc = stack_push(&stacks[o], &per_out[o], node->name, err);
        for (int i = 0; i < n_tensors; i++)
            mq_tensor_free(&per_in[i]);
        for (int o = 0; o < n_out; o++)
            mq_tensor_free(&per_out[o]);
    }
    for (int o = 0; o < n_out && rc == MQ_OK; o++)
        rc = stack_build(&stacks[o], 0, 0, &out[o], node->name, err);
    for (int o = 0; stacks && o < n_out; o++)
        stack_free(&stacks[o]);
    free(stacks);
    return rc;
}

const struct mq_kernel mq_kernels_control_flow[] = {
    {"", "If", 1, 0, if_prepare, if_run, NULL},
    {"", "Loop", 1, 0, loop_prepare, loop_run, NULL},
    {"", "Scan", 8, 8, scan8_prepare, scan8_run, scan_destroy},
    {"", "Scan", 9, 0, scan_prepare, scan_run, scan_destroy},
    {0},
};
