/* Name lookups in one graph, without an index: who reads a tensor, whether a name is a graph
   input, output or initializer, and a name no node or initializer uses yet (graph/edit.h). */
#include "graph/edit.h"

#include <stdlib.h>
#include <string.h>

#include "util/strutil.h"

int mq_graph_count_readers(const Onnx__GraphProto *g, const char *name, size_t *last_reader)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (g->node[i]->input[k] && strcmp(g->node[i]->input[k], name) == 0) {
                n++;
                if (last_reader)
                    *last_reader = i;
            }
    return n;
}

int mq_graph_is_output(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && strcmp(g->output[i]->name, name) == 0)
            return 1;
    return 0;
}

int mq_graph_is_input(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && strcmp(g->input[i]->name, name) == 0)
            return 1;
    return 0;
}

Onnx__TensorProto *mq_graph_initializer_named(const Onnx__GraphProto *g, const char *name,
                                              size_t *slot)
{
    for (size_t i = 0; name && i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0) {
            if (slot)
                *slot = i;
            return g->initializer[i];
        }
    return NULL;
}

int mq_graph_is_initializer(const Onnx__GraphProto *g, const char *name)
{
    return mq_graph_initializer_named(g, name, NULL) != NULL;
}

char *mq_graph_fresh_name(const Onnx__GraphProto *g, const char *base, const char *suffix)
{
    char *name = mq_str_printf("%s%s", base, suffix);
    for (int k = 1; name && mq_graph_defines(g, name); k++) {
        free(name);
        name = mq_str_printf("%s%s_%d", base, suffix, k);
    }
    return name;
}
