/* What `info` shows about a model, gathered without printing (see summary.h). */
#include "model/summary.h"

#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/tensor.h"
#include "model/tensor_proto.h"

static int count_op(struct mq_model_summary *s, int *cap, const Onnx__NodeProto *n, int in_sub)
{
    const char *op = mq_str(n->op_type), *domain = mq_str(n->domain);
    for (int i = 0; i < s->n_ops; i++)
        if (strcmp(s->ops[i].op_type, op) == 0 && strcmp(s->ops[i].domain, domain) == 0) {
            if (in_sub)
                s->ops[i].subgraphs++;
            else
                s->ops[i].main_graph++;
            return 0;
        }
    if (s->n_ops == *cap) {
        int c = *cap ? *cap * 2 : 32;
        struct mq_op_count *ops = realloc(s->ops, (size_t)c * sizeof *ops);
        if (!ops)
            return -1;
        s->ops = ops;
        *cap = c;
    }
    s->ops[s->n_ops++] = (struct mq_op_count){op, domain, !in_sub, in_sub};
    return 0;
}

static uint64_t tensor_bytes(const Onnx__TensorProto *t)
{
    if (t->has_raw_data)
        return t->raw_data.len;
    int64_t count = mq_tensor_proto_count(t);
    size_t elem = mq_dtype_size(t->has_data_type ? t->data_type : 0);
    return count > 0 ? (uint64_t)count * (elem ? elem : 1) : 0;
}

static int walk(struct mq_model_summary *s, int *cap, const Onnx__GraphProto *g, int depth)
{
    if (depth > MQ_MAX_SUBGRAPH_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        s->initializers++;
        s->initializer_bytes += tensor_bytes(g->initializer[i]);
    }
    for (size_t n = 0; n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        if (count_op(s, cap, node, depth > 0))
            return -1;
        if (depth > 0)
            s->nodes_subgraphs++;
        else
            s->nodes_main++;
        for (size_t a = 0; a < node->n_attribute; a++) {
            const Onnx__AttributeProto *attr = node->attribute[a];
            if (attr->g) {
                s->n_subgraphs++;
                if (walk(s, cap, attr->g, depth + 1))
                    return -1;
            }
            for (size_t k = 0; k < attr->n_graphs; k++) {
                s->n_subgraphs++;
                if (walk(s, cap, attr->graphs[k], depth + 1))
                    return -1;
            }
        }
    }
    return 0;
}

static int compare_ops(const void *a, const void *b)
{
    const struct mq_op_count *x = a, *y = b;
    int c = strcmp(x->op_type, y->op_type);
    return c ? c : strcmp(x->domain, y->domain);
}

int mq_model_summarize(const Onnx__ModelProto *model, struct mq_model_summary *out,
                       struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    int cap = 0;
    if (walk(out, &cap, model->graph, 0)) {
        mq_model_summary_free(out);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    if (out->n_ops)
        qsort(out->ops, (size_t)out->n_ops, sizeof *out->ops, compare_ops);
    return MQ_OK;
}

void mq_model_summary_free(struct mq_model_summary *summary)
{
    free(summary->ops);
    memset(summary, 0, sizeof *summary);
}
