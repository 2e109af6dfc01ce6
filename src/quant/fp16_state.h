/*
 * The state the float16 conversion's two phases share: the decision
 * (fp16_decide.c: what each node does) and the rewrite (fp16_rewrite.c:
 * Casts, float16 initializers and value types), driven by fp16.c.  Internal
 * to those files.
 */
#ifndef MQ_FP16_STATE_H
#define MQ_FP16_STATE_H

#include <stdint.h>

#include "core/tensor.h"
#include "onnx.pb-c.h"
#include "quant/fp16.h"
#include "quant/fp16_select.h"
#include "quant/graph.h"
#include "util/error.h"

/* What the decision made of a node. */
enum fp16_mode {
    FP16_MODE_NONE,       /* touches no float32 value */
    FP16_MODE_CONVERT,
    FP16_MODE_FOLLOW,
    FP16_MODE_KEEP,       /* float32, casts around it; the reason is reported */
    FP16_MODE_KEEP_EXACT, /* float32 and its float inputs stay exact float32 (user, range, domain,
                             types) */
    FP16_MODE_BOUNDARY,   /* holds subgraphs: its own inputs and outputs stay as declared */
    FP16_MODE_CAST,
    FP16_MODE_CONST,
};

/* One graph (the main one or a subgraph) as decided. */
struct fp16_graph {
    Onnx__GraphProto *g;
    char *path;
    int is_main;
    int n_nodes;              /* as decided (before casts were added) */
    Onnx__NodeProto **nodes;  /* the decided nodes, to find them again after the rewrite */
    int *mode;                /* enum fp16_mode */
    int *follow16;
    char **reason;
};

struct fp16_conv {
    Onnx__ModelProto *model;
    const struct mq_fp16_options *o;
    struct mq_fp16_result *r;
    struct mq_error *err;
    int opset;
    struct mq_names names;
    struct mq_fp16_selection sel; /* the user's options, read with the quantizer's rules */
    struct mq_strmap *types;      /* original element type of every name */
    struct mq_strmap *storage;    /* element type after conversion */
    struct mq_strmap *unsafe;     /* values beyond float16's range */
    struct mq_strmap *must32;     /* read where exact float32 is needed */
    struct mq_strmap *observed;   /* activation name -> index in o->out_of_range */
    struct fp16_graph *graphs;    /* main graph first, each subgraph after the graph holding it */
    int n_graphs, cap_graphs;
};

/* Decides every graph of the model (fp16_decide.c). */
int mq_fp16_decide(struct fp16_conv *c);
/* Rewrites every decided graph (fp16_rewrite.c). */
int mq_fp16_rewrite(struct fp16_conv *c);

/* Largest finite |value| of a float tensor; counts in *flushed (may be NULL) the values float16
   flushes to zero. */
double mq_fp16_max_abs(const struct mq_tensor *t, int64_t *flushed);
/* Reports a value beyond float16's range; -1 when out of memory. */
int mq_fp16_add_range(struct fp16_conv *c, const char *name, const char *graph, const char *what,
                      double value);

static inline int fp16_oom(struct fp16_conv *c)
{
    return mq_error_code(c->err, MQ_ERR_MEMORY, "out of memory converting to float16");
}

/* A flag or type kept by name: 0 when absent. */
static inline int fp16_get(const struct mq_strmap *m, const char *name)
{
    int v = name && *name ? mq_strmap_get(m, name) : -1;
    return v < 0 ? 0 : v;
}

static inline int fp16_set(struct mq_strmap *m, const char *name, int v)
{
    return name && *name ? mq_strmap_put(m, name, v) : 0;
}

/* The original element type of a value; 0 when unknown. */
static inline int fp16_type_of(const struct fp16_conv *c, const char *name)
{
    return fp16_get(c->types, name);
}

/* The type a value has after conversion (its original one until decided). */
static inline int fp16_storage_of(const struct fp16_conv *c, const char *name)
{
    int s = fp16_get(c->storage, name);
    return s ? s : fp16_type_of(c, name);
}

static inline int fp16_is_float(int t)
{
    return t == MQ_DTYPE_FLOAT || t == MQ_DTYPE_FLOAT16;
}

/* The element type a tensor value info declares; 0 when none. */
static inline int fp16_value_info_type(const Onnx__ValueInfoProto *vi)
{
    if (vi && vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        vi->type->tensor_type && vi->type->tensor_type->has_elem_type)
        return vi->type->tensor_type->elem_type;
    return 0;
}

#endif
