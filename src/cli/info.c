/* `onnx-monoquant info IN.onnx [--json]` */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/summary.h"
#include "util/json.h"
#include "util/text.h"

static const char info_help[] =
    "Usage: onnx-monoquant info IN.onnx [--json]\n"
    "\n"
    "Shows a model's IR version, opset imports, producer, graph inputs and outputs\n"
    "with their types and shapes (symbolic dimensions by name), node count per op\n"
    "type (main graph and subgraphs counted separately), initializer count and bytes.\n"
    "\n"
    "  --json   print the same as JSON on stdout\n";

/* "float32[N,3,224,224]" for a tensor type; other kinds by name. */
static void format_type(const Onnx__TypeProto *type, char *buf, size_t size)
{
    if (!type) {
        snprintf(buf, size, "(no type)");
        return;
    }
    switch (type->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE: {
        const Onnx__TypeProto__Tensor *t = type->tensor_type;
        size_t used = (size_t)snprintf(buf, size, "%s",
                                       mq_dtype_name(t->has_elem_type ? t->elem_type : 0));
        if (!t->shape) {
            if (used < size)
                snprintf(buf + used, size - used, "[unknown rank]");
            return;
        }
        if (used < size)
            used += (size_t)snprintf(buf + used, size - used, "[");
        for (size_t d = 0; d < t->shape->n_dim && used < size; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = t->shape->dim[d];
            const char *sep = d ? "," : "";
            if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, sep,
                                         dim->dim_value);
            else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
                used += (size_t)snprintf(buf + used, size - used, "%s%s", sep, dim->dim_param);
            else
                used += (size_t)snprintf(buf + used, size - used, "%s?", sep);
        }
        if (used < size)
            snprintf(buf + used, size - used, "]");
        return;
    }
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: snprintf(buf, size, "sequence"); return;
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: snprintf(buf, size, "map"); return;
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: snprintf(buf, size, "optional"); return;
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: snprintf(buf, size, "sparse_tensor"); return;
    default: snprintf(buf, size, "(unknown type)"); return;
    }
}

static int is_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(mq_str(g->initializer[i]->name), name) == 0)
            return 1;
    return 0;
}

static void json_value_infos(struct mq_json *j, const Onnx__GraphProto *g,
                             Onnx__ValueInfoProto **infos, size_t n)
{
    char type[1024];
    mq_json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        const Onnx__ValueInfoProto *v = infos[i];
        const Onnx__TypeProto *tp = v->type;
        mq_json_object_begin(j);
        mq_json_key(j, "name");
        mq_json_string(j, mq_str(v->name));
        format_type(tp, type, sizeof type);
        mq_json_key(j, "type");
        mq_json_string(j, type);
        if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
            const Onnx__TypeProto__Tensor *t = tp->tensor_type;
            mq_json_key(j, "elem_type");
            mq_json_string(j, mq_dtype_name(t->has_elem_type ? t->elem_type : 0));
            mq_json_key(j, "shape");
            if (!t->shape) {
                mq_json_null(j);
            } else {
                mq_json_array_begin(j);
                for (size_t d = 0; d < t->shape->n_dim; d++) {
                    const Onnx__TensorShapeProto__Dimension *dim = t->shape->dim[d];
                    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                        mq_json_int(j, dim->dim_value);
                    else if (dim->value_case ==
                             ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
                        mq_json_string(j, dim->dim_param);
                    else
                        mq_json_null(j);
                }
                mq_json_array_end(j);
            }
        }
        if (g) {
            mq_json_key_bool(j, "has_initializer", is_initializer(g, mq_str(v->name)));
        }
        mq_json_object_end(j);
    }
    mq_json_array_end(j);
}

static int print_json(const struct mq_model *m, const struct mq_model_summary *s)
{
    const Onnx__ModelProto *p = m->proto;
    struct mq_json j;
    mq_json_init(&j, stdout, 1);
    mq_json_object_begin(&j);
    mq_json_key(&j, "file");
    mq_json_string(&j, m->path);
    mq_json_key_int(&j, "ir_version", p->ir_version);
    mq_json_key(&j, "producer_name");
    mq_json_string(&j, mq_str(p->producer_name));
    mq_json_key(&j, "producer_version");
    mq_json_string(&j, mq_str(p->producer_version));
    mq_json_key(&j, "opset_import");
    mq_json_array_begin(&j);
    for (size_t i = 0; i < p->n_opset_import; i++) {
        mq_json_object_begin(&j);
        mq_json_key(&j, "domain");
        mq_json_string(&j, *mq_str(p->opset_import[i]->domain) ? p->opset_import[i]->domain
                                                                : "ai.onnx");
        mq_json_key_int(&j, "version", p->opset_import[i]->version);
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    mq_json_key(&j, "inputs");
    json_value_infos(&j, p->graph, p->graph->input, p->graph->n_input);
    mq_json_key(&j, "outputs");
    json_value_infos(&j, NULL, p->graph->output, p->graph->n_output);
    mq_json_key_int(&j, "nodes", s->nodes_main);
    mq_json_key_int(&j, "subgraph_nodes", s->nodes_subgraphs);
    mq_json_key_int(&j, "subgraphs", s->n_subgraphs);
    mq_json_key(&j, "op_types");
    mq_json_array_begin(&j);
    for (int i = 0; i < s->n_ops; i++) {
        mq_json_object_begin(&j);
        mq_json_key(&j, "op_type");
        mq_json_string(&j, s->ops[i].op_type);
        mq_json_key(&j, "domain");
        mq_json_string(&j, *s->ops[i].domain ? s->ops[i].domain : "ai.onnx");
        mq_json_key_int(&j, "main_graph", s->ops[i].main_graph);
        mq_json_key_int(&j, "subgraphs", s->ops[i].subgraphs);
        mq_json_object_end(&j);
    }
    mq_json_array_end(&j);
    mq_json_key_int(&j, "initializers", s->initializers);
    mq_json_key_uint(&j, "initializer_bytes", s->initializer_bytes);
    mq_json_object_end(&j);
    return j.failed || fflush(stdout) != 0;
}

static int print_text(const struct mq_model *m, const struct mq_model_summary *s)
{
    const Onnx__ModelProto *p = m->proto;
    char type[1024];
    mq_text_printf(stdout, "file: %s\n", m->path);
    mq_text_printf(stdout, "ir_version: %" PRId64 "\n", p->ir_version);
    mq_text_printf(stdout, "producer: %s %s\n", mq_str(p->producer_name),
                   mq_str(p->producer_version));
    mq_text_printf(stdout, "opset imports:");
    for (size_t i = 0; i < p->n_opset_import; i++)
        mq_text_printf(stdout, " %s=%" PRId64,
                       *mq_str(p->opset_import[i]->domain) ? p->opset_import[i]->domain
                                                           : "ai.onnx",
                       p->opset_import[i]->version);
    mq_text_printf(stdout, "\ninputs:\n");
    for (size_t i = 0; i < p->graph->n_input; i++) {
        const Onnx__ValueInfoProto *v = p->graph->input[i];
        format_type(v->type, type, sizeof type);
        mq_text_printf(stdout, "  %s: %s%s\n", mq_str(v->name), type,
                       is_initializer(p->graph, mq_str(v->name)) ? " (has initializer)" : "");
    }
    mq_text_printf(stdout, "outputs:\n");
    for (size_t i = 0; i < p->graph->n_output; i++) {
        const Onnx__ValueInfoProto *v = p->graph->output[i];
        format_type(v->type, type, sizeof type);
        mq_text_printf(stdout, "  %s: %s\n", mq_str(v->name), type);
    }
    mq_text_printf(stdout,
                   "nodes: %" PRId64 " in the main graph, %" PRId64 " in %" PRId64 " subgraphs\n",
                   s->nodes_main, s->nodes_subgraphs, s->n_subgraphs);
    for (int i = 0; i < s->n_ops; i++) {
        mq_text_printf(stdout, "  %-28s %6" PRId64, s->ops[i].op_type, s->ops[i].main_graph);
        if (s->ops[i].subgraphs)
            mq_text_printf(stdout, "  (+%" PRId64 " in subgraphs)", s->ops[i].subgraphs);
        if (*s->ops[i].domain)
            mq_text_printf(stdout, "  [%s]", s->ops[i].domain);
        mq_text_printf(stdout, "\n");
    }
    mq_text_printf(stdout, "initializers: %" PRId64 " (%" PRIu64 " bytes)\n", s->initializers,
                   s->initializer_bytes);
    return fflush(stdout) != 0 || ferror(stdout);
}

int mq_cli_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (mq_cli_flag(argv, i, "help")) {
            fputs(info_help, stdout);
            return MQ_EXIT_OK;
        } else if (mq_cli_flag(argv, i, "json")) {
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return mq_cli_usage_error("info", "unknown option '%s'", argv[i]);
        } else if (path) {
            return mq_cli_usage_error("info", "one model at a time ('%s' and '%s' given)", path,
                                      argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return mq_cli_usage_error("info", "missing IN.onnx");
    struct mq_error err = {{0}};
    struct mq_model *model;
    int rc = mq_model_load(path, &model, &err);
    if (rc)
        return mq_cli_report(rc, &err);
    struct mq_model_summary summary;
    rc = mq_model_summarize(model->proto, &summary, &err);
    if (rc) {
        mq_model_free(model);
        return mq_cli_report(rc, &err);
    }
    int write_failed = json ? print_json(model, &summary) : print_text(model, &summary);
    mq_model_summary_free(&summary);
    mq_model_free(model);
    if (write_failed) {
        fprintf(stderr, "onnx-monoquant: writing to stdout failed\n");
        return MQ_EXIT_FAILURE;
    }
    return MQ_EXIT_OK;
}
