/* Node selection: the glob matcher, option lists, decisions and their errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant/select.h"
#include "quant_builder.h"
#include "util/glob.h"

START_TEST(test_glob)
{
    ck_assert(mq_glob_match("conv1", "conv1"));
    ck_assert(!mq_glob_match("conv1", "conv10"));
    ck_assert(mq_glob_match("conv*", "conv10"));
    ck_assert(mq_glob_match("*", ""));
    ck_assert(mq_glob_match("head/*", "head/a/b"));      /* '*' crosses '/' */
    ck_assert(!mq_glob_match("head/*", "heads/a"));
    ck_assert(mq_glob_match("*/conv?", "block1/conv3"));
    ck_assert(!mq_glob_match("*/conv?", "block1/conv"));
    ck_assert(mq_glob_match("a*b*c", "aXXbYYbZc"));
    ck_assert(!mq_glob_match("a*b*c", "aXXbYYbZ"));
    ck_assert(mq_glob_match("layer[0-2]", "layer1"));
    ck_assert(!mq_glob_match("layer[0-2]", "layer3"));
    ck_assert(mq_glob_match("layer[!0-2]", "layer3"));
    ck_assert(mq_glob_match("layer[^0-2]", "layer3"));
    ck_assert(mq_glob_match("x[]]y", "x]y"));
    ck_assert(mq_glob_match("a\\*b", "a*b"));
    ck_assert(!mq_glob_match("a\\*b", "aXb"));
    ck_assert(!mq_glob_match("a[b", "a[b"));              /* malformed never matches */
    /* Backtracking stays linear: this would take ages with naive recursion. */
    ck_assert(!mq_glob_match("*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    ck_assert(mq_glob_has_magic("a*") && mq_glob_has_magic("a[1]") && !mq_glob_has_magic("a/b"));
    struct mq_error err;
    ck_assert_int_eq(mq_glob_check("a[b", &err), MQ_ERR);
    ck_assert_int_eq(mq_glob_check("a\\", &err), MQ_ERR);
    ck_assert_int_eq(mq_glob_check("a[bc]*", &err), MQ_OK);
}
END_TEST

START_TEST(test_pattern_lists)
{
    struct mq_pattern_list l = {0};
    struct mq_error err;
    ck_assert_int_eq(mq_pattern_list_add(&l, "Conv,MatMul", "--op-types", &err), MQ_OK);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.items[1], "MatMul");
    ck_assert_int_eq(mq_pattern_list_add(&l, "Conv,,Gemm", "--op-types", &err), MQ_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "empty entry"));
    char path[] = "/tmp/mq-test-select-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "# nodes to keep float\nhead/a,b\r\n\nblock*\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char arg[64];
    snprintf(arg, sizeof arg, "@%s", path);
    ck_assert_int_eq(mq_pattern_list_add(&l, arg, "--exclude-nodes", &err), MQ_OK);
    ck_assert_int_eq(l.n, 4);
    ck_assert_str_eq(l.items[2], "head/a,b"); /* a file line is not split */
    ck_assert_str_eq(l.items[3], "block*");
    unlink(path);
    ck_assert_int_ne(mq_pattern_list_add(&l, "@/nonexistent/list.txt", "--exclude-nodes", &err),
                     MQ_OK);
    ck_assert_ptr_nonnull(strstr(err.message, "--exclude-nodes"));
    mq_pattern_list_free(&l);
}
END_TEST

/* conv1 -> relu1 -> pool -> fc (MatMul) -> softmax, plus an If with a Conv inside. */
static Onnx__ModelProto *sample_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    qb_node(g, "Conv", "block1/conv1", "x,w", "c1");
    qb_node(g, "Relu", "block1/relu1", "c1", "r1");
    qb_node(g, "MaxPool", "block1/pool", "r1", "p1");
    qb_node(g, "MatMul", "head/fc", "p1,wf", "f");
    qb_node(g, "Softmax", "head/softmax", "f", "y");
    qb_node(g, "Custom", NULL, "y", "z")->domain = strdup("com.example");
    Onnx__GraphProto *then_g = qb_graph("then");
    qb_node(then_g, "Conv", "branch/conv", "x,w", "t");
    Onnx__GraphProto *else_g = qb_graph("else");
    qb_node(else_g, "Identity", NULL, "x", "e");
    Onnx__NodeProto *iff = qb_node(g, "If", "cond", "flag", "o");
    qb_attr_graph(iff, "then_branch", then_g);
    qb_attr_graph(iff, "else_branch", else_g);
    return m;
}

static const struct mq_node_choice *choice_named(const struct mq_selection *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0)
            return &s->items[i];
    ck_abort_msg("no node '%s'", name);
    return NULL;
}

START_TEST(test_default_selection)
{
    Onnx__ModelProto *m = sample_model();
    struct mq_select_options o = {0};
    struct mq_selection s;
    struct mq_error err;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(s.n, 9);
    /* Model order, each subgraph right after the node holding it. */
    ck_assert_str_eq(s.items[0].name, "block1/conv1");
    ck_assert_str_eq(s.items[5].name, "Custom#5");
    ck_assert_str_eq(s.items[6].name, "cond");
    ck_assert_str_eq(s.items[7].name, "branch/conv");
    ck_assert_str_eq(s.items[7].graph, "cond/then_branch");
    ck_assert_str_eq(s.items[8].graph, "cond/else_branch");
    ck_assert_int_eq(choice_named(&s, "block1/conv1")->status, MQ_NODE_SELECTED);
    ck_assert_int_eq(choice_named(&s, "block1/relu1")->status, MQ_NODE_SELECTED);
    ck_assert_int_eq(choice_named(&s, "block1/pool")->status, MQ_NODE_SELECTED);
    ck_assert_int_eq(choice_named(&s, "branch/conv")->status, MQ_NODE_SELECTED);
    const struct mq_node_choice *sm = choice_named(&s, "head/softmax");
    ck_assert_int_eq(sm->status, MQ_NODE_SKIPPED);
    ck_assert_ptr_nonnull(strstr(sm->reason, "not a default op type"));
    ck_assert_ptr_nonnull(strstr(choice_named(&s, "Custom#5")->reason, "com.example"));
    ck_assert_ptr_nonnull(strstr(choice_named(&s, "cond")->reason, "not quantized"));
    ck_assert_ptr_eq(mq_selection_find(&s, m->graph->node[0]), &s.items[0]);
    mq_selection_free(&s);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* Add and Mul are default op types (islands decide where they stay); --exclude-op-types drops them. */
START_TEST(test_add_mul_default)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    qb_node(g, "Conv", "conv", "x,w", "c");
    qb_node(g, "Add", "add", "c,x", "a");
    qb_node(g, "Mul", "mul", "a,c", "y");
    struct mq_select_options o = {0};
    struct mq_selection s;
    struct mq_error err;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(choice_named(&s, "conv")->status, MQ_NODE_SELECTED);
    ck_assert_int_eq(choice_named(&s, "add")->status, MQ_NODE_SELECTED);
    ck_assert_int_eq(choice_named(&s, "mul")->status, MQ_NODE_SELECTED);
    mq_selection_free(&s);
    int n_add = 0, n_mul = 0;
    for (const char *const *d = mq_default_op_types(); *d; d++) {
        n_add += strcmp(*d, "Add") == 0;
        n_mul += strcmp(*d, "Mul") == 0;
    }
    ck_assert_int_eq(n_add, 1);
    ck_assert_int_eq(n_mul, 1);
    struct mq_pattern_list xops = {0};
    ck_assert_int_eq(mq_pattern_list_add(&xops, "Add,Mul", "--exclude-op-types", &err), MQ_OK);
    o.exclude_op_types = &xops;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(choice_named(&s, "add")->status, MQ_NODE_SKIPPED);
    ck_assert_int_eq(choice_named(&s, "mul")->status, MQ_NODE_SKIPPED);
    ck_assert_int_eq(choice_named(&s, "conv")->status, MQ_NODE_SELECTED);
    mq_selection_free(&s);
    mq_pattern_list_free(&xops);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* The local-maximum filter of a line detector: Mul(x, Cast(Equal(x, MaxPool(x)))) after a Conv.
   Every node on the path into the Equal stays float, with the decision named, unless
   --include-nodes names it; nodes off the path are untouched. */
START_TEST(test_decision_paths_stay_float)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    qb_node(g, "Conv", "backbone", "x,w0", "f");
    qb_node(g, "Conv", "head", "f,w1", "logits");
    qb_node(g, "Sigmoid", "sig", "logits", "p");
    qb_node(g, "MaxPool", "pool", "p", "pmax");
    qb_node(g, "Equal", "peak", "p,pmax", "is_max");
    qb_node(g, "Cast", "cast", "is_max", "keep");
    qb_node(g, "Mul", "filter", "p,keep", "scores");
    struct mq_select_options o = {0};
    o.float_decision_paths = 1;
    struct mq_selection s;
    struct mq_error err;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(choice_named(&s, "backbone")->status, MQ_NODE_SELECTED);
    const char *on_path[] = {"head", "pool"};
    for (int i = 0; i < 2; i++) {
        const struct mq_node_choice *c = choice_named(&s, on_path[i]);
        ck_assert_int_eq(c->status, MQ_NODE_SKIPPED);
        ck_assert_str_eq(c->reason, "feeds a discrete decision (Equal 'peak')");
    }
    mq_selection_free(&s);
    /* Named by --include-nodes: the user's word wins. */
    struct mq_pattern_list inc = {0};
    ck_assert_int_eq(mq_pattern_list_add(&inc, "backbone,head", "--include-nodes", &err), MQ_OK);
    o.include_nodes = &inc;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(choice_named(&s, "head")->status, MQ_NODE_SELECTED);
    mq_selection_free(&s);
    mq_pattern_list_free(&inc);
    /* Off (fp16, calibrate): the head is selected like any Conv. */
    o.include_nodes = NULL;
    o.float_decision_paths = 0;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(choice_named(&s, "head")->status, MQ_NODE_SELECTED);
    mq_selection_free(&s);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_explicit_selection)
{
    Onnx__ModelProto *m = sample_model();
    struct mq_pattern_list ops = {0}, xops = {0}, inc = {0}, exc = {0};
    struct mq_error err;
    ck_assert_int_eq(mq_pattern_list_add(&ops, "Conv,MatMul,Softmax,Relu", "--op-types", &err),
                     MQ_OK);
    ck_assert_int_eq(mq_pattern_list_add(&xops, "Relu", "--exclude-op-types", &err), MQ_OK);
    ck_assert_int_eq(mq_pattern_list_add(&exc, "head/s*", "--exclude-nodes", &err), MQ_OK);
    ck_assert_int_eq(mq_pattern_list_add(&inc, "block1/*,head/*", "--include-nodes", &err),
                     MQ_OK);
    struct mq_select_options o = {&ops, &xops, &inc, &exc, 0};
    struct mq_selection s;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(choice_named(&s, "block1/conv1")->status, MQ_NODE_SELECTED);
    ck_assert_int_eq(choice_named(&s, "head/fc")->status, MQ_NODE_SELECTED);
    ck_assert_ptr_nonnull(strstr(choice_named(&s, "block1/relu1")->reason, "--exclude-op-types"));
    ck_assert_ptr_nonnull(strstr(choice_named(&s, "block1/pool")->reason, "not in --op-types"));
    ck_assert_ptr_nonnull(strstr(choice_named(&s, "head/softmax")->reason, "'head/s*'"));
    ck_assert_ptr_nonnull(strstr(choice_named(&s, "branch/conv")->reason, "--include-nodes"));
    mq_selection_free(&s);
    /* Unnamed nodes answer to their display name. */
    mq_pattern_list_free(&inc);
    ck_assert_int_eq(mq_pattern_list_add(&inc, "Custom#5", "--include-nodes", &err), MQ_OK);
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    mq_selection_free(&s);
    mq_pattern_list_free(&ops);
    mq_pattern_list_free(&xops);
    mq_pattern_list_free(&inc);
    mq_pattern_list_free(&exc);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_selection_errors)
{
    Onnx__ModelProto *m = sample_model();
    struct mq_error err;
    struct mq_selection s;
    struct mq_pattern_list l = {0};
    struct mq_select_options o = {0};

    /* A typo in a node name. */
    mq_pattern_list_add(&l, "block1/conv", "--exclude-nodes", &err);
    o.exclude_nodes = &l;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_ERR_USAGE);
    ck_assert_str_eq(err.message, "--exclude-nodes: 'block1/conv' matches no node of the model");
    mq_pattern_list_free(&l);
    /* A pattern that matches nothing, and one that is malformed. */
    mq_pattern_list_add(&l, "tail/*", "--include-nodes", &err);
    o.exclude_nodes = NULL;
    o.include_nodes = &l;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "'tail/*' matches no node"));
    mq_pattern_list_free(&l);
    mq_pattern_list_add(&l, "block[1", "--include-nodes", &err);
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "without its ']'"));
    mq_pattern_list_free(&l);
    /* Op types: wrong case gets a hint, unknown ones the list. */
    o.include_nodes = NULL;
    mq_pattern_list_add(&l, "Conv,Matmul", "--op-types", &err);
    o.op_types = &l;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_ERR_USAGE);
    ck_assert_str_eq(err.message, "--op-types: unknown op type 'Matmul' (did you mean 'MatMul'?)");
    mq_pattern_list_free(&l);
    mq_pattern_list_add(&l, "LSTM", "--exclude-op-types", &err);
    o.op_types = NULL;
    o.exclude_op_types = &l;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "'LSTM' cannot be quantized (supported: Conv"));
    mq_pattern_list_free(&l);
    /* An exact name with glob characters in it still matches itself. */
    qb_node(m->graph, "Relu", "layer[0]", "o", "o2");
    mq_pattern_list_add(&l, "layer[0]", "--exclude-nodes", &err);
    o.exclude_op_types = NULL;
    o.exclude_nodes = &l;
    ck_assert_int_eq(mq_select_nodes(m, &o, &s, &err), MQ_OK);
    ck_assert_int_eq(choice_named(&s, "layer[0]")->status, MQ_NODE_SKIPPED);
    mq_selection_free(&s);
    mq_pattern_list_free(&l);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_select");
    TCase *tc = tcase_create("select");
    tcase_add_test(tc, test_glob);
    tcase_add_test(tc, test_pattern_lists);
    tcase_add_test(tc, test_default_selection);
    tcase_add_test(tc, test_add_mul_default);
    tcase_add_test(tc, test_explicit_selection);
    tcase_add_test(tc, test_selection_errors);
    tcase_add_test(tc, test_decision_paths_stay_float);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
