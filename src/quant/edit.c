/*
 * Small graph-editing helpers shared by the float16 conversion and
 * dequantize (see edit.h).
 */
#include "quant/edit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

char *mq_edit_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *mq_edit_input(const Onnx__NodeProto *node, size_t k)
{
    return k < node->n_input && node->input[k] && *node->input[k] ? node->input[k] : NULL;
}

int mq_edit_replace_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

static int rename_in_graph(Onnx__GraphProto *g, const char *from, const char *to, int nested,
                           int depth)
{
    if (!g || depth > MQ_EDIT_MAX_DEPTH)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *node = g->node[i];
        for (size_t k = 0; k < node->n_input; k++)
            if (node->input[k] && strcmp(node->input[k], from) == 0 &&
                mq_edit_replace_string(&node->input[k], to))
                return -1;
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            if (rename_in_graph(attr->g, from, to, 1, depth + 1))
                return -1;
            for (size_t s = 0; s < attr->n_graphs; s++)
                if (rename_in_graph(attr->graphs[s], from, to, 1, depth + 1))
                    return -1;
        }
    }
    /* A subgraph returning the value by name returns the renamed one. */
    if (nested)
        for (size_t o = 0; o < g->n_output; o++)
            if (strcmp(mq_str(g->output[o]->name), from) == 0 &&
                mq_edit_replace_string(&g->output[o]->name, to))
                return -1;
    return 0;
}

int mq_edit_rename_reads(Onnx__GraphProto *g, const char *from, const char *to)
{
    return rename_in_graph(g, from, to, 0, 0);
}

Onnx__NodeProto *mq_edit_make_node(const char *op_type, const char *name, const char *input,
                                   const char *output)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = strdup(op_type);
    n->name = strdup(name);
    n->input = calloc(1, sizeof *n->input);
    n->output = calloc(1, sizeof *n->output);
    if (n->input)
        n->n_input = 1;
    if (n->output)
        n->n_output = 1;
    if (!n->op_type || !n->name || !n->input || !n->output || !(n->input[0] = strdup(input)) ||
        !(n->output[0] = strdup(output))) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    return n;
}

int mq_edit_append(void ***array, size_t *n, void *item)
{
    void **v = realloc(*array, (*n + 1) * sizeof *v);
    if (!v)
        return -1;
    v[*n] = item;
    *array = v;
    (*n)++;
    return 0;
}

/* Appends a new attribute of the given type and name; NULL when out of memory. */
static Onnx__AttributeProto *add_attr(Onnx__NodeProto *node, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->type = type;
    a->has_type = 1;
    if (!a->name || mq_edit_append((void ***)&node->attribute, &node->n_attribute, a)) {
        onnx__attribute_proto__free_unpacked(a, NULL);
        return NULL;
    }
    return a;
}

int mq_edit_add_int_attr(Onnx__NodeProto *node, const char *name, int64_t value)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->i = value;
        a->has_i = 1;
    }
    return a ? 0 : -1;
}

int mq_edit_add_float_attr(Onnx__NodeProto *node, const char *name, float value)
{
    Onnx__AttributeProto *a = add_attr(node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->f = value;
        a->has_f = 1;
    }
    return a ? 0 : -1;
}
