/*
 * Ops some exporters write where others write a simpler op with the same
 * result, rewritten into that op so that everything downstream (the
 * quantizer's op table, onnxruntime's fusions, which only match the simpler
 * op) sees one form: caffe2 and older converters write a residual addition as
 * Sum of two inputs, onnxruntime fuses only Add into QLinearAdd; a
 * one-input Sum, Mean, Max or Min is a copy.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/canonical_internal.h"
#include "util/strutil.h"

struct op_alias {
    const char *op;   /* the op as written (default domain) */
    size_t n_inputs;  /* with exactly this many inputs (all named) */
    const char *same; /* the op it is */
};

/*
 * Sum-6 and later broadcast like Add-7 and later (Sum-6 and Add-6 without
 * `broadcast` both need equal shapes); Sum-1's only attribute,
 * consumed_inputs, is a legacy hint with no effect on the result.
 */
static const struct op_alias aliases[] = {
    {"Sum", 2, "Add"},
    {"Sum", 1, "Identity"},
    {"Mean", 1, "Identity"},
    {"Max", 1, "Identity"},
    {"Min", 1, "Identity"},
};

int mq_graph_rewrite_alias(Onnx__NodeProto *node)
{
    if (node->domain && *node->domain && strcmp(node->domain, "ai.onnx") != 0)
        return 0;
    for (size_t a = 0; a < sizeof aliases / sizeof aliases[0]; a++) {
        if (strcmp(mq_str(node->op_type), aliases[a].op) != 0 || node->n_input != aliases[a].n_inputs)
            continue;
        for (size_t i = 0; i < node->n_input; i++)
            if (!*mq_str(node->input[i]))
                return 0;
        char *op = strdup(aliases[a].same);
        if (!op)
            return -1;
        free(node->op_type);
        node->op_type = op;
        for (size_t k = 0; k < node->n_attribute; k++)
            onnx__attribute_proto__free_unpacked(node->attribute[k], NULL);
        free(node->attribute);
        node->attribute = NULL;
        node->n_attribute = 0;
        return 1;
    }
    return 0;
}
