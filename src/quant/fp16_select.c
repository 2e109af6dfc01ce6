/*
 * The float16 conversion's selection options read through the quantizer's
 * selection (quant/select.h).  mq_select_nodes walks the model, names every
 * node and checks the node entries; what select.h does not offer is here:
 * op types beyond the quantizer's own (float16 converts any op), and the
 * per-node answer without the quantizer's role and default op types.
 */
#include "quant/fp16_select.h"

#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "graph/edit.h"
#include "util/strutil.h"
#include "util/glob.h"

/* Every op-type entry must be the op type of a node of the model. */
static int check_op_types(const struct mq_selection *nodes, const struct mq_pattern_list *list,
                          const char *option, struct mq_error *err)
{
    for (int i = 0; list && i < list->n; i++) {
        const char *entry = list->items[i];
        int found = 0;
        for (int k = 0; k < nodes->n && !found; k++)
            found = strcmp(nodes->items[k].op_type, entry) == 0;
        if (!found)
            return mq_error_code(err, MQ_ERR_USAGE, "%s: '%s' matches no op type of the model%s",
                                 option, entry,
                                 mq_glob_has_magic(entry) ? " (op types are exact names, not "
                                                            "patterns)"
                                                          : "");
    }
    return MQ_OK;
}

int mq_fp16_select(const Onnx__ModelProto *model, const struct mq_fp16_options *options,
                   struct mq_fp16_selection *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    out->options = options;
    /* Only the node entries go to the quantizer's selection: its op types are its own. */
    struct mq_select_options by_name = {0};
    by_name.include_nodes = options->include_nodes;
    by_name.exclude_nodes = options->exclude_nodes;
    int rc = mq_select_nodes(model, &by_name, &out->nodes, err);
    if (rc == MQ_OK)
        rc = check_op_types(&out->nodes, options->op_types, "--op-types", err);
    if (rc == MQ_OK)
        rc = check_op_types(&out->nodes, options->exclude_op_types, "--exclude-op-types", err);
    if (rc)
        mq_fp16_selection_free(out);
    return rc;
}

void mq_fp16_selection_free(struct mq_fp16_selection *sel)
{
    mq_selection_free(&sel->nodes);
}

const struct mq_node_choice *mq_fp16_selection_find(const struct mq_fp16_selection *sel,
                                                    const Onnx__NodeProto *node)
{
    return mq_selection_find(&sel->nodes, node);
}

/* The first entry naming the node as the quantizer does: the exact name, or a glob pattern. */
static const char *entry_naming(const struct mq_pattern_list *list, const char *name)
{
    for (int i = 0; list && i < list->n; i++)
        if (strcmp(list->items[i], name) == 0 || mq_glob_match(list->items[i], name))
            return list->items[i];
    return NULL;
}

static int listed(const struct mq_pattern_list *list, const char *op_type)
{
    for (int i = 0; list && i < list->n; i++)
        if (strcmp(list->items[i], op_type) == 0)
            return 1;
    return 0;
}

int mq_fp16_selection_reason(const struct mq_fp16_selection *sel, const Onnx__NodeProto *node,
                             char **reason)
{
    const struct mq_fp16_options *o = sel->options;
    const struct mq_node_choice *choice = mq_fp16_selection_find(sel, node);
    const char *op = mq_str(node->op_type);
    /* Patterns match the node's own name, or the name it is given when it has none. */
    const char *name = *mq_str(node->name) ? node->name : choice ? choice->name : "";
    const char *hit = entry_naming(o->exclude_nodes, name);
    *reason = NULL;
    if (hit)
        *reason = mq_str_printf("excluded by --exclude-nodes '%s'", hit);
    else if (listed(o->exclude_op_types, op))
        *reason = mq_str_printf("excluded by --exclude-op-types '%s'", op);
    else if (o->op_types && o->op_types->n && !listed(o->op_types, op))
        *reason = strdup("op type not in --op-types");
    else if (o->include_nodes && o->include_nodes->n && !entry_naming(o->include_nodes, name))
        *reason = strdup("not in --include-nodes");
    else
        return 0;
    return *reason ? 0 : -1;
}
