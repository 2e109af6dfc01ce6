/* `onnx-monoquant simplify IN.onnx OUT.onnx [--external-data] [--quiet]`: the canonical graph. */
#include <stdio.h>

#include "cli/cli.h"
#include "graph/canonical.h"
#include "model/model.h"

int mq_cli_simplify(int argc, char **argv);

static const char simplify_help[] =
    "Usage: onnx-monoquant simplify IN.onnx OUT.onnx [options]\n"
    "\n"
    "Writes the graph every other command works on: Constant nodes become\n"
    "initializers, nodes whose inputs are all constant are computed once (by the\n"
    "interpreter's own kernels) and stored as initializers, Identity nodes are\n"
    "removed, and initializers nobody reads are dropped; in every subgraph too.\n"
    "Graph inputs and outputs keep their names; OUT computes what IN does.\n"
    "Random ops and results over 64 MiB are not folded. OUT may not be IN.\n"
    "\n"
    "  --external-data  store large initializers in OUT.data next to OUT\n"
    "  --quiet          no summary on stderr\n";

int mq_cli_simplify(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    int quiet = 0;
    struct mq_save_options save = {0};
    for (int i = 1; i < argc; i++) {
        if (mq_cli_flag(argv, i, "help")) {
            fputs(simplify_help, stdout);
            return MQ_EXIT_OK;
        } else if (mq_cli_flag(argv, i, "external-data")) {
            save.external_data = 1;
        } else if (mq_cli_flag(argv, i, "quiet")) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return mq_cli_usage_error("simplify", "unknown option '%s'", argv[i]);
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            return mq_cli_usage_error("simplify", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!in || !out)
        return mq_cli_usage_error("simplify", "needs IN.onnx and OUT.onnx");
    struct mq_error err = {{0}};
    struct mq_model *model = NULL;
    struct mq_graph_canonical_counts counts;
    int rc = mq_path_check_distinct(in, out, &err);
    if (rc == MQ_OK)
        rc = mq_model_load(in, &model, &err);
    if (rc == MQ_OK) {
        rc = mq_graph_canonicalize(model->proto, NULL, &counts, &err);
        if (rc)
            mq_error_prefix(&err, "%s: ", in);
    }
    if (rc == MQ_OK)
        rc = mq_model_save(model->proto, out, &save, &err);
    if (rc == MQ_OK && !quiet)
        fprintf(stderr, "simplified: nodes %d -> %d (%d Constant nodes to initializers, %d nodes "
                "folded, %d Identity nodes removed, %d If branches inlined, %d nodes written as "
                "the op they are), %d unused initializers dropped\n",
                counts.nodes_before, counts.nodes_after, counts.constants, counts.folded,
                counts.identities, counts.branches_inlined, counts.aliases,
                counts.initializers_dropped);
    mq_model_free(model);
    return mq_cli_report(rc, &err);
}
