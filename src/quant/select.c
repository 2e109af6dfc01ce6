#include "quant/select.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph/decision.h"
#include "quant/graph.h"
#include "util/strutil.h"
#include "util/fileio.h"
#include "util/glob.h"

/* A node-list file is a list of names, not a model: a few MiB is plenty. */
#define NAME_FILE_MAX_BYTES ((uint64_t)16 << 20)

/* The op types come from the quantizer's table (op_rules.c), in its order. */
const char *const *mq_default_op_types(void)
{
    static const char *list[64];
    if (!list[0]) {
        int n, k = 0;
        const struct mq_op_rule *rules = mq_op_rules(&n);
        for (int i = 0; i < n && k < 63; i++)
            if (rules[i].by_default)
                list[k++] = rules[i].op_type;
        list[k] = NULL;
    }
    return list;
}

const char *const *mq_supported_op_types(void)
{
    static const char *list[64];
    if (!list[0]) {
        int n, k = 0;
        const struct mq_op_rule *rules = mq_op_rules(&n);
        for (int i = 0; i < n && k < 63; i++)
            list[k++] = rules[i].op_type;
        list[k] = NULL;
    }
    return list;
}

/* ------------------------------------------------------------ name lists */

static int list_push(struct mq_pattern_list *list, const char *s, size_t len)
{
    char **items = realloc(list->items, (size_t)(list->n + 1) * sizeof *items);
    if (!items)
        return -1;
    list->items = items;
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    list->items[list->n++] = copy;
    return 0;
}

int mq_pattern_list_add(struct mq_pattern_list *list, const char *arg, const char *option,
                     struct mq_error *err)
{
    if (arg[0] == '@') {
        uint8_t *data;
        size_t size;
        int rc = mq_file_read(arg + 1, NAME_FILE_MAX_BYTES, &data, &size, err);
        if (rc) {
            mq_error_prefix(err, "%s: ", option);
            return rc;
        }
        if (memchr(data, '\0', size)) {
            free(data);
            return mq_error_code(err, MQ_ERR_USAGE, "%s: '%s' is not a text file", option,
                                 arg + 1);
        }
        int added = 0;
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *line_end = nl ? nl : end;
            size_t len = (size_t)(line_end - p);
            if (len && p[len - 1] == '\r')
                len--;
            if (len && p[0] != '#') {
                if (list_push(list, p, len)) {
                    free(data);
                    return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
                }
                added++;
            }
            p = nl ? nl + 1 : end;
        }
        free(data);
        if (!added)
            return mq_error_code(err, MQ_ERR_USAGE, "%s: '%s' names nothing", option, arg + 1);
        return MQ_OK;
    }
    /* Checked whole first, so a bad argument adds nothing. */
    size_t len_arg = strlen(arg);
    if (len_arg == 0 || arg[0] == ',' || arg[len_arg - 1] == ',' || strstr(arg, ",,"))
        return mq_error_code(err, MQ_ERR_USAGE, "%s: empty entry in '%s'", option, arg);
    const char *p = arg;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0)
            return mq_error_code(err, MQ_ERR_USAGE, "%s: empty entry in '%s'", option, arg);
        if (list_push(list, p, len))
            return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
        if (!comma)
            break;
        p = comma + 1;
    }
    return MQ_OK;
}

void mq_pattern_list_free(struct mq_pattern_list *list)
{
    for (int i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

/* ------------------------------------------------------------- selection */

void mq_choice_set(struct mq_node_choice *choice, enum mq_node_status status, const char *fmt,
                   ...)
{
    choice->status = status;
    free(choice->reason);
    choice->reason = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        choice->reason = mq_str_vprintf(fmt, ap);
        va_end(ap);
    }
}

static int has_item(const struct mq_pattern_list *list, const char *s)
{
    for (int i = 0; list && i < list->n; i++)
        if (strcmp(list->items[i], s) == 0)
            return 1;
    return 0;
}

struct walk {
    struct mq_selection *sel;
    int cap;
    int depth;
    const char *graph_path;
};

static int add_choice(struct walk *w, const Onnx__NodeProto *node, int index)
{
    struct mq_selection *sel = w->sel;
    if (sel->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        struct mq_node_choice *items = realloc(sel->items, (size_t)cap * sizeof *items);
        if (!items)
            return -1;
        sel->items = items;
        w->cap = cap;
    }
    struct mq_node_choice *c = &sel->items[sel->n];
    memset(c, 0, sizeof *c);
    c->node = node;
    c->name = *mq_str(node->name) ? strdup(node->name)
                                  : mq_str_printf("%s#%d", mq_str(node->op_type), index);
    c->graph = strdup(w->graph_path);
    c->op_type = strdup(mq_str(node->op_type));
    if (!c->name || !c->graph || !c->op_type) {
        free(c->name);
        free(c->graph);
        free(c->op_type);
        return -1;
    }
    char key[32];
    snprintf(key, sizeof key, "%p", (const void *)node);
    if (mq_strmap_put(sel->by_node, key, sel->n)) {
        free(c->name);
        free(c->graph);
        free(c->op_type);
        return -1;
    }
    sel->n++;
    return 0;
}

static int walk_graph(struct walk *w, const Onnx__GraphProto *g);

struct sub_ctx {
    struct walk *w;
    const char *node_name;
};

static int walk_subgraph(Onnx__GraphProto *sub, const char *attr_name, void *user)
{
    struct sub_ctx *ctx = user;
    struct walk *w = ctx->w;
    char *path = *w->graph_path ? mq_str_printf("%s/%s/%s", w->graph_path, ctx->node_name, attr_name)
                                : mq_str_printf("%s/%s", ctx->node_name, attr_name);
    if (!path)
        return -1;
    const char *saved = w->graph_path;
    w->graph_path = path;
    w->depth++;
    int rc = w->depth > 64 ? -2 : walk_graph(w, sub);
    w->depth--;
    w->graph_path = saved;
    free(path);
    return rc;
}

static int walk_graph(struct walk *w, const Onnx__GraphProto *g)
{
    for (size_t i = 0; i < g->n_node; i++) {
        if (add_choice(w, g->node[i], (int)i))
            return -1;
        /* Copy the name: the array may move while the subgraphs are walked. */
        char *name = strdup(w->sel->items[w->sel->n - 1].name);
        if (!name)
            return -1;
        struct sub_ctx ctx = {w, name};
        int rc = mq_node_each_subgraph(g->node[i], walk_subgraph, &ctx);
        free(name);
        if (rc)
            return rc;
    }
    return 0;
}

/* A hint for a misspelt op type: the supported one that differs only in case. */
static const char *op_type_hint(const char *op)
{
    for (const char *const *t = mq_supported_op_types(); *t; t++)
        if (strcasecmp(*t, op) == 0)
            return *t;
    return NULL;
}

static int check_op_types(const struct mq_pattern_list *list, const char *option,
                          struct mq_error *err)
{
    for (int i = 0; list && i < list->n; i++) {
        const char *op = list->items[i];
        if (mq_op_role(op) != MQ_ROLE_NONE)
            continue;
        const char *hint = op_type_hint(op);
        if (hint)
            return mq_error_code(err, MQ_ERR_USAGE, "%s: unknown op type '%s' (did you mean '%s'?)",
                                 option, op, hint);
        char supported[1024] = "";
        for (const char *const *t = mq_supported_op_types(); *t; t++) {
            if (t != mq_supported_op_types())
                strncat(supported, ", ", sizeof supported - strlen(supported) - 1);
            strncat(supported, *t, sizeof supported - strlen(supported) - 1);
        }
        return mq_error_code(err, MQ_ERR_USAGE,
                             "%s: op type '%s' cannot be quantized (supported: %s)", option, op,
                             supported);
    }
    return MQ_OK;
}

/* The name patterns match against: the node's own name, or its display name when it has none. */
static const char *match_name(const struct mq_node_choice *c)
{
    return *mq_str(c->node->name) ? c->node->name : c->name;
}

static int entry_matches(const char *entry, const char *name)
{
    return strcmp(entry, name) == 0 || mq_glob_match(entry, name);
}

/* Every entry must match at least one node. */
static int check_entries_match(const struct mq_selection *sel, const struct mq_pattern_list *list,
                               const char *option, struct mq_error *err)
{
    for (int i = 0; list && i < list->n; i++) {
        const char *entry = list->items[i];
        int found = 0;
        for (int k = 0; k < sel->n && !found; k++)
            found = entry_matches(entry, match_name(&sel->items[k]));
        if (found)
            continue;
        struct mq_error perr = {{0}};
        if (mq_glob_has_magic(entry) && mq_glob_check(entry, &perr))
            return mq_error_code(err, MQ_ERR_USAGE, "%s: %s, and no node has that name", option,
                                 perr.message);
        return mq_error_code(err, MQ_ERR_USAGE, "%s: '%s' matches no node of the model", option,
                             entry);
    }
    return MQ_OK;
}

static const char *first_match(const struct mq_pattern_list *list, const char *name)
{
    for (int i = 0; list && i < list->n; i++)
        if (entry_matches(list->items[i], name))
            return list->items[i];
    return NULL;
}

/*
 * Nodes on a path into a discrete decision stay float: an error there moves which element
 * wins a comparison, an ArgMax or a local-maximum filter, a change that grows with no SQNR
 * figure to bound it.  A node is on a path when one of its outputs is (the carriers and the
 * weighted node that computes the value decided on); a node --include-nodes names is kept.
 */
static int keep_decision_paths_float(const Onnx__ModelProto *model,
                                     const struct mq_select_options *options,
                                     struct mq_selection *sel, struct mq_error *err)
{
    struct mq_graph_decision_paths paths;
    int rc = mq_graph_decision_inputs(model->graph, &paths, err);
    if (rc || paths.n_tensors == 0) {
        if (!rc)
            mq_graph_decision_paths_free(&paths);
        return rc;
    }
    struct mq_strmap *on_path = mq_strmap_new();
    if (!on_path) {
        mq_graph_decision_paths_free(&paths);
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    for (int i = 0; i < paths.n_tensors && !rc; i++)
        if (mq_strmap_get(on_path, paths.tensors[i]) < 0 &&
            mq_strmap_put(on_path, paths.tensors[i], i))
            rc = mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    for (int k = 0; k < sel->n && !rc; k++) {
        struct mq_node_choice *c = &sel->items[k];
        if (c->status != MQ_NODE_SELECTED || first_match(options->include_nodes, match_name(c)))
            continue;
        for (size_t o = 0; o < c->node->n_output; o++) {
            int t = mq_strmap_get(on_path, mq_str(c->node->output[o]));
            if (t >= 0) {
                mq_choice_set(c, MQ_NODE_SKIPPED, "feeds a discrete decision (%s)",
                              paths.tensor_decisions[t]);
                break;
            }
        }
    }
    mq_strmap_free(on_path);
    mq_graph_decision_paths_free(&paths);
    return rc;
}

int mq_select_nodes(const Onnx__ModelProto *model, const struct mq_select_options *options,
                    struct mq_selection *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_op_types(options->op_types, "--op-types", err);
    if (!rc)
        rc = check_op_types(options->exclude_op_types, "--exclude-op-types", err);
    if (rc)
        return rc;
    out->by_node = mq_strmap_new();
    if (!out->by_node)
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    struct walk w = {out, 0, 0, ""};
    rc = model->graph ? walk_graph(&w, model->graph) : 0;
    if (rc) {
        mq_selection_free(out);
        if (rc == -2)
            return mq_error_set(err, "subgraphs nest deeper than 64 levels");
        return mq_error_code(err, MQ_ERR_MEMORY, "out of memory");
    }
    rc = check_entries_match(out, options->include_nodes, "--include-nodes", err);
    if (!rc)
        rc = check_entries_match(out, options->exclude_nodes, "--exclude-nodes", err);
    if (rc) {
        mq_selection_free(out);
        return rc;
    }
    int explicit_types = options->op_types && options->op_types->n > 0;
    const char *const *defaults = mq_default_op_types();
    for (int k = 0; k < out->n; k++) {
        struct mq_node_choice *c = &out->items[k];
        const char *op = mq_str(c->node->op_type);
        const char *name = match_name(c);
        const char *hit;
        int wanted = 0;
        if (explicit_types) {
            wanted = has_item(options->op_types, op);
        } else {
            for (int d = 0; defaults[d] && !wanted; d++)
                wanted = strcmp(defaults[d], op) == 0;
        }
        if (!mq_node_is_onnx(c->node))
            mq_choice_set(c, MQ_NODE_SKIPPED, "domain '%s' is not quantized",
                          mq_str(c->node->domain));
        else if (mq_op_role(op) == MQ_ROLE_NONE)
            mq_choice_set(c, MQ_NODE_SKIPPED, "op type %s is not quantized", op);
        else if (!wanted)
            mq_choice_set(c, MQ_NODE_SKIPPED, "op type %s not selected (%s)", op,
                          explicit_types ? "not in --op-types" : "not a default op type");
        else if (has_item(options->exclude_op_types, op))
            mq_choice_set(c, MQ_NODE_SKIPPED, "op type %s excluded by --exclude-op-types", op);
        else if ((hit = first_match(options->exclude_nodes, name)))
            mq_choice_set(c, MQ_NODE_SKIPPED, "excluded by --exclude-nodes '%s'", hit);
        else if (options->include_nodes && options->include_nodes->n > 0 &&
                 !first_match(options->include_nodes, name))
            mq_choice_set(c, MQ_NODE_SKIPPED, "not named by --include-nodes");
        else
            mq_choice_set(c, MQ_NODE_SELECTED, NULL);
    }
    if (options->float_decision_paths && model->graph) {
        rc = keep_decision_paths_float(model, options, out, err);
        if (rc) {
            mq_selection_free(out);
            return rc;
        }
    }
    return MQ_OK;
}

void mq_selection_free(struct mq_selection *sel)
{
    for (int i = 0; i < sel->n; i++) {
        free(sel->items[i].name);
        free(sel->items[i].graph);
        free(sel->items[i].op_type);
        free(sel->items[i].reason);
    }
    free(sel->items);
    mq_strmap_free(sel->by_node);
    memset(sel, 0, sizeof *sel);
}

struct mq_node_choice *mq_selection_find(const struct mq_selection *sel,
                                         const Onnx__NodeProto *node)
{
    if (!sel->by_node)
        return NULL;
    char key[32];
    snprintf(key, sizeof key, "%p", (const void *)node);
    int i = mq_strmap_get(sel->by_node, key);
    return i >= 0 ? &sel->items[i] : NULL;
}
