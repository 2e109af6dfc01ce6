/*
 * Which nodes get quantized: op types (--op-types, --exclude-op-types) and
 * node names (--include-nodes, --exclude-nodes: exact names or glob
 * patterns).  Every node of the model, subgraphs included, comes out with
 * a decision and, when skipped, the reason.  A name or pattern that matches
 * no node, or an op type the quantizer does not know, is an error: a typo
 * must never pass silently.
 */
#ifndef MQ_SELECT_H
#define MQ_SELECT_H

#include "onnx.pb-c.h"
#include "quant/op_rules.h"
#include "util/error.h"

/* The op types selected when --op-types is not given (a NULL-terminated list). */
const char *const *mq_default_op_types(void);
/* Every supported op type (a NULL-terminated list). */
const char *const *mq_supported_op_types(void);

/* A list of names or patterns, owned. */
struct mq_pattern_list {
    char **items;
    int n;
};

/*
 * Appends the values of one command-line option: "a,b,c" is split at commas;
 * "@FILE" reads FILE, one entry a line (not split; blank lines and lines
 * starting with '#' are ignored).  `option` names the option in messages.
 */
int mq_pattern_list_add(struct mq_pattern_list *list, const char *arg, const char *option,
                     struct mq_error *err);
void mq_pattern_list_free(struct mq_pattern_list *list);

struct mq_select_options {
    const struct mq_pattern_list *op_types;         /* NULL or empty: mq_default_op_types() */
    const struct mq_pattern_list *exclude_op_types;
    const struct mq_pattern_list *include_nodes;    /* NULL or empty: every node */
    const struct mq_pattern_list *exclude_nodes;
    /* Nonzero: nodes on a path into a discrete decision (graph/decision.h) stay float unless
       --include-nodes names them (the quantizer sets it; fp16 and calibration do not). */
    int float_decision_paths;
};

enum mq_node_status {
    MQ_NODE_SKIPPED = 0,
    MQ_NODE_SELECTED,    /* chosen; the rewrite turns it into QUANTIZED, FOLDED or SKIPPED */
    MQ_NODE_QUANTIZED,
    MQ_NODE_FOLDED,      /* a Relu/Clip merged into the quantized op before it */
};

struct mq_node_choice {
    const Onnx__NodeProto *node;
    char *name;          /* the node's name, or "<op_type>#<k>" when it has none */
    char *op_type;       /* kept here: a folded node no longer exists after the rewrite */
    char *graph;         /* "" for the main graph, else "node/attribute" path of the subgraph */
    enum mq_node_status status;
    char *reason;        /* why skipped, or what was done; may be NULL */
    int integer_only;    /* every output an integer or bool tensor: shape arithmetic */
};

struct mq_selection {
    struct mq_node_choice *items; /* every node, main graph first, each subgraph after its node */
    int n;
    struct mq_strmap *by_node;    /* node pointer (as text) -> index */
};

int mq_select_nodes(const Onnx__ModelProto *model, const struct mq_select_options *options,
                    struct mq_selection *out, struct mq_error *err);
void mq_selection_free(struct mq_selection *sel);
/* The choice made for a node of the model; NULL when the node was not there at selection. */
struct mq_node_choice *mq_selection_find(const struct mq_selection *sel,
                                         const Onnx__NodeProto *node);
/* Replaces the status and reason (printf-style; fmt may be NULL for no reason). */
void mq_choice_set(struct mq_node_choice *choice, enum mq_node_status status, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

#endif
