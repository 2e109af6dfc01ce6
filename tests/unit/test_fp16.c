#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "model_builder.h"
#include "op_harness.h"
#include "quant/fp16.h"

/* x[1,1,4,4] -> Conv(w, b) -> Relu -> y[1,2,2,2] */
static Onnx__ModelProto *conv_relu(int opset)
{
    Onnx__ModelProto *m = mb_model(opset);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, OH_DIMS(1, 1, 4, 4));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 4, OH_DIMS(1, 2, 2, 2));
    float w[18];
    for (int i = 0; i < 18; i++)
        w[i] = (float)(i % 7) * 0.25f - 0.7f;
    mb_init(g, "w", oh_f32(4, OH_DIMS(2, 1, 3, 3), w));
    mb_init(g, "b", oh_f32(1, OH_DIMS(2), (const float[]){0.5f, -0.25f}));
    mb_node(g, "Conv", "conv", "x,w,b", "c");
    mb_node(g, "Relu", "relu", "c", "y");
    return m;
}

static void run_conv_relu(Onnx__ModelProto *m, float *out)
{
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i * 0.1f - 0.8f;
    struct mq_tensor in = oh_f32(4, OH_DIMS(1, 1, 4, 4), x), y = {0};
    struct mq_error err;
    ck_assert_msg(mb_run(m, &in, 1, &y, 1, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(y.dtype, MQ_DTYPE_FLOAT);
    ck_assert_int_eq(y.count, 8);
    memcpy(out, y.data, 8 * sizeof *out);
    mq_tensor_free(&in);
    mq_tensor_free(&y);
}

static const struct mq_fp16_node *find(const struct mq_fp16_result *r, const char *name)
{
    for (int i = 0; i < r->n_nodes; i++)
        if (strcmp(r->nodes[i].name, name) == 0)
            return &r->nodes[i];
    return NULL;
}

static int convert(Onnx__ModelProto *m, const struct mq_fp16_options *o, struct mq_fp16_result *r,
                   struct mq_error *err)
{
    return mq_fp16_convert(m, o, r, err);
}

START_TEST(all_ops_converts_weights_and_casts_at_the_edges)
{
    Onnx__ModelProto *m = conv_relu(13);
    float want[8], got[8];
    run_conv_relu(m, want);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    struct mq_fp16_result r;
    struct mq_error err;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    Onnx__GraphProto *g = m->graph;
    ck_assert_int_eq(mb_find_init(g, "w")->data_type, MQ_DTYPE_FLOAT16);
    ck_assert_int_eq(mb_find_init(g, "b")->data_type, MQ_DTYPE_FLOAT16);
    /* x is cast down before the Conv, y cast up at the end; the interface stays float32. */
    ck_assert_int_eq(mb_count_op(g, "Cast"), 2);
    ck_assert_str_eq(mb_find_node(g, "conv")->input[0], "x_float16");
    ck_assert_str_eq(mb_producer(g, "x_float16")->name, "x_CastToFloat16");
    ck_assert_str_eq(mb_producer(g, "y")->op_type, "Cast");
    ck_assert_str_eq(mb_find_node(g, "relu")->output[0], "y_float16");
    ck_assert_int_eq(mb_elem_type(g->input[0]), MQ_DTYPE_FLOAT);
    ck_assert_int_eq(mb_elem_type(g->output[0]), MQ_DTYPE_FLOAT);
    ck_assert_int_eq(find(&r, "conv")->status, MQ_FP16_CONVERTED);
    ck_assert_int_eq(find(&r, "relu")->status, MQ_FP16_FOLLOWED);
    ck_assert(find(&r, "relu")->in_float16);
    ck_assert_int_eq(r.initializers_converted, 2);
    ck_assert_int_eq(r.casts_inserted, 2);
    run_conv_relu(m, got);
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(got[i], want[i], 2e-3f * (1 + fabsf(want[i])));
    mq_fp16_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(ort_cpu_keeps_conv_float32_with_float16_weights)
{
    Onnx__ModelProto *m = conv_relu(13);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    struct mq_fp16_result r;
    struct mq_error err;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    Onnx__GraphProto *g = m->graph;
    /* Weights stored float16 and cast up; the Conv and Relu run float32; x is not touched. */
    ck_assert_int_eq(mb_find_init(g, "w")->data_type, MQ_DTYPE_FLOAT16);
    Onnx__NodeProto *conv = mb_find_node(g, "conv");
    ck_assert_str_eq(conv->input[0], "x");
    ck_assert_str_eq(conv->input[1], "w_float32");
    ck_assert_str_eq(conv->input[2], "b_float32");
    ck_assert_str_eq(mb_find_node(g, "relu")->output[0], "y");
    const struct mq_fp16_node *n = find(&r, "conv");
    ck_assert_int_eq(n->status, MQ_FP16_KEPT);
    ck_assert_str_eq(n->reason, "onnxruntime's CPU provider has no float16 Conv kernel at opset 13");
    ck_assert_int_eq(find(&r, "relu")->status, MQ_FP16_KEPT);
    ck_assert_int_eq(r.casts_inserted, 2);
    mq_fp16_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(io_types_float16_on_request)
{
    Onnx__ModelProto *m = conv_relu(13);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    o.keep_io_types = 0;
    struct mq_fp16_result r;
    struct mq_error err;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(mb_elem_type(m->graph->input[0]), MQ_DTYPE_FLOAT16);
    ck_assert_int_eq(mb_elem_type(m->graph->output[0]), MQ_DTYPE_FLOAT16);
    ck_assert_int_eq(mb_count_op(m->graph, "Cast"), 0);
    mq_fp16_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(excluded_node_keeps_exact_weights)
{
    Onnx__ModelProto *m = conv_relu(13);
    struct mq_pattern_list exclude = {0};
    struct mq_error err;
    ck_assert_int_eq(mq_pattern_list_add(&exclude, "co*", "--exclude-nodes", &err), MQ_OK);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    o.exclude_nodes = &exclude;
    struct mq_fp16_result r;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(mb_find_init(m->graph, "w")->data_type, MQ_DTYPE_FLOAT);
    ck_assert_str_eq(find(&r, "conv")->reason, "excluded by --exclude-nodes 'co*'");
    /* The Relu after it follows its float32 input. */
    ck_assert_int_eq(find(&r, "relu")->status, MQ_FP16_FOLLOWED);
    ck_assert(!find(&r, "relu")->in_float16);
    ck_assert_int_eq(r.casts_inserted, 0);
    mq_fp16_result_free(&r);
    mq_pattern_list_free(&exclude);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(pattern_matching_nothing_is_a_usage_error)
{
    Onnx__ModelProto *m = conv_relu(13);
    struct mq_pattern_list types = {0};
    struct mq_error err;
    ck_assert_int_eq(mq_pattern_list_add(&types, "Conv,Cnov", "--exclude-op-types", &err), MQ_OK);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.exclude_op_types = &types;
    struct mq_fp16_result r;
    ck_assert_int_eq(convert(m, &o, &r, &err), MQ_ERR_USAGE);
    ck_assert_str_eq(err.message, "--exclude-op-types: 'Cnov' matches no op type of the model");
    mq_pattern_list_free(&types);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(constant_beyond_range_stays_float32)
{
    Onnx__ModelProto *m = mb_model(13);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_init(g, "big", oh_f32(1, OH_DIMS(2), (const float[]){1e5f, 1}));
    mb_init(g, "small", oh_f32(1, OH_DIMS(2), (const float[]){1e-9f, 2}));
    mb_node(g, "Mul", "scale", "x,big", "s");
    mb_node(g, "Mul", "again", "s,small", "y");
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    struct mq_fp16_result r;
    struct mq_error err;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(mb_find_init(g, "big")->data_type, MQ_DTYPE_FLOAT);
    ck_assert_int_eq(mb_find_init(g, "small")->data_type, MQ_DTYPE_FLOAT16);
    ck_assert_int_eq(r.n_ranges, 1);
    ck_assert_str_eq(r.ranges[0].name, "big");
    ck_assert_str_eq(r.ranges[0].what, "initializer");
    ck_assert_double_eq(r.ranges[0].max_abs, 1e5);
    ck_assert_int_eq(find(&r, "scale")->status, MQ_FP16_KEPT);
    ck_assert_str_eq(find(&r, "scale")->reason, "input 'big' holds values beyond float16's range");
    ck_assert_int_eq(find(&r, "again")->status, MQ_FP16_CONVERTED);
    ck_assert_int_eq(r.values_flushed_to_zero, 1);
    mq_fp16_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(activation_seen_beyond_range_keeps_its_nodes)
{
    Onnx__ModelProto *m = mb_model(13);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_init(g, "k", oh_f32(0, NULL, (const float[]){1000}));
    mb_node(g, "Mul", "up", "x,k", "big");
    mb_node(g, "Reshape", "move", "big,shape", "moved");
    mb_init(g, "shape", oh_i64(1, OH_DIMS(1), (const int64_t[]){2}));
    mb_node(g, "Div", "down", "moved,k", "y");
    char *names[1] = {(char *)"big"};
    double max[1] = {2e5};
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    o.out_of_range = names;
    o.out_of_range_max = max;
    o.n_out_of_range = 1;
    struct mq_fp16_result r;
    struct mq_error err;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(find(&r, "up")->status, MQ_FP16_KEPT);
    ck_assert_str_eq(find(&r, "up")->reason,
                     "output 'big' reached 200000 on the samples, beyond float16's range");
    /* Moving a large value keeps it large: the Div after the Reshape stays float32 too. */
    ck_assert(!find(&r, "move")->in_float16);
    ck_assert_int_eq(find(&r, "down")->status, MQ_FP16_KEPT);
    ck_assert_int_eq(r.n_ranges, 1);
    ck_assert_str_eq(r.ranges[0].what, "activation");
    mq_fp16_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(constants_casts_and_fixed_float_inputs)
{
    Onnx__ModelProto *m = mb_model(13);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, OH_DIMS(1, 1, 2, 2));
    mb_input(g, "n", MQ_DTYPE_INT64, 1, OH_DIMS(4));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 4, OH_DIMS(1, 1, 4, 4));
    mb_output(g, "z", MQ_DTYPE_FLOAT, 1, OH_DIMS(4));
    Onnx__NodeProto *c = mb_node(g, "Constant", "three", "", "k");
    oh_attr_floats(c, "value_floats", 1, (const float[]){3});
    mb_node(g, "Mul", "mul", "x,k", "m");
    mb_init(g, "scales", oh_f32(1, OH_DIMS(4), (const float[]){1, 1, 2, 2}));
    mb_node(g, "Resize", "up", "m,,scales", "y");
    Onnx__NodeProto *cast = mb_node(g, "Cast", "tofloat", "n", "nf");
    oh_attr_int(cast, "to", MQ_DTYPE_FLOAT);
    mb_node(g, "Sqrt", "root", "nf", "z");
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    struct mq_fp16_result r;
    struct mq_error err;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    /* value_floats became a float16 `value` tensor. */
    ck_assert_str_eq(c->attribute[0]->name, "value");
    ck_assert_int_eq(c->attribute[0]->t->data_type, MQ_DTYPE_FLOAT16);
    ck_assert_int_eq(r.constants_converted, 1);
    /* Resize's scales are float whatever the data is. */
    ck_assert_int_eq(mb_find_init(g, "scales")->data_type, MQ_DTYPE_FLOAT);
    ck_assert_str_eq(mb_find_node(g, "up")->input[2], "scales");
    /* Cast to float becomes Cast to float16 when what reads it is float16. */
    ck_assert_int_eq(cast->attribute[0]->i, MQ_DTYPE_FLOAT16);
    ck_assert_str_eq(mb_find_node(g, "root")->input[0], "nf");
    /* The model still runs and means the same. */
    struct mq_tensor in[2] = {oh_f32(4, OH_DIMS(1, 1, 2, 2), (const float[]){1, 2, 3, 4}),
                              oh_i64(1, OH_DIMS(4), (const int64_t[]){1, 4, 9, 16})};
    struct mq_tensor out[2] = {{0}, {0}};
    ck_assert_msg(mb_run(m, in, 2, out, 2, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(out[0].dtype, MQ_DTYPE_FLOAT);
    ck_assert_float_eq(((float *)out[0].data)[0], 3);
    ck_assert_float_eq(((float *)out[0].data)[15], 12);
    oh_assert_f32(&out[1], 1, OH_DIMS(4), (const float[]){1, 2, 3, 4}, 0, 0);
    for (int i = 0; i < 2; i++) {
        mq_tensor_free(&in[i]);
        mq_tensor_free(&out[i]);
    }
    mq_fp16_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(subgraph_converted_inside_with_its_interface_kept)
{
    Onnx__ModelProto *m = mb_model(13);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "c", MQ_DTYPE_BOOL, 0, NULL);
    mb_input(g, "x", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_init(g, "k", oh_f32(1, OH_DIMS(2), (const float[]){2, 3}));
    Onnx__GraphProto *then_g = mb_graph("then");
    mb_output(then_g, "t", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    mb_node(then_g, "Mul", "then_mul", "x,k", "t");
    Onnx__GraphProto *else_g = mb_graph("else");
    mb_output(else_g, "x", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
    Onnx__NodeProto *node = mb_node(g, "If", "branch", "c", "y");
    mb_attr_graph(node, "then_branch", then_g);
    mb_attr_graph(node, "else_branch", else_g);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    struct mq_fp16_result r;
    struct mq_error err;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(mb_find_init(g, "k")->data_type, MQ_DTYPE_FLOAT16);
    const struct mq_fp16_node *mul = find(&r, "then_mul");
    ck_assert_int_eq(mul->status, MQ_FP16_CONVERTED);
    ck_assert_str_eq(mul->graph, "branch/then_branch");
    ck_assert_int_eq(find(&r, "branch")->status, MQ_FP16_KEPT);
    /* Inside: x cast down, the result cast back up under the branch's own output. */
    ck_assert_int_eq(mb_count_op(then_g, "Cast"), 2);
    ck_assert_str_eq(mb_producer(then_g, "t")->op_type, "Cast");
    ck_assert_int_eq(mb_count_op(else_g, "Cast"), 0);
    for (int branch = 0; branch < 2; branch++) {
        uint8_t cond = (uint8_t)(branch == 0);
        struct mq_tensor in[2] = {oh_bool(0, NULL, &cond),
                                  oh_f32(1, OH_DIMS(2), (const float[]){1.5f, -2})};
        struct mq_tensor y = {0};
        ck_assert_msg(mb_run(m, in, 2, &y, 1, &err) == MQ_OK, "%s", err.message);
        oh_assert_f32(&y, 1, OH_DIMS(2),
                      branch == 0 ? (const float[]){3, -6} : (const float[]){1.5f, -2}, 0, 0);
        mq_tensor_free(&in[0]);
        mq_tensor_free(&in[1]);
        mq_tensor_free(&y);
    }
    mq_fp16_result_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(opset_decides_what_onnxruntime_runs)
{
    /* Clip has a float16 kernel in onnxruntime's CPU provider from opset 12 only. */
    for (int opset = 11; opset <= 12; opset++) {
        Onnx__ModelProto *m = mb_model(opset);
        Onnx__GraphProto *g = m->graph;
        mb_input(g, "x", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
        mb_output(g, "y", MQ_DTYPE_FLOAT, 1, OH_DIMS(2));
        mb_init(g, "lo", oh_f32(0, NULL, (const float[]){0}));
        mb_node(g, "Clip", "clip", "x,lo", "y");
        struct mq_fp16_options o;
        mq_fp16_options_default(&o);
        struct mq_fp16_result r;
        struct mq_error err;
        ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
        /* At 12 it may run float16, but follows its float32 input x: no Cast either way. */
        ck_assert_int_eq(find(&r, "clip")->status, opset == 11 ? MQ_FP16_KEPT : MQ_FP16_FOLLOWED);
        ck_assert_int_eq(mb_count_op(g, "Cast"), 1); /* lo, stored float16, cast up */
        mq_fp16_result_free(&r);
        onnx__model_proto__free_unpacked(m, NULL);
    }
}
END_TEST

/*
 * The selection options read names as the quantizer does (quant/select.c):
 * op types are exact names, a node entry is an exact name or a glob pattern,
 * and an unnamed node is "<op_type>#<index>" by its position as stored.
 */
START_TEST(op_types_are_exact_names_not_patterns)
{
    Onnx__ModelProto *m = conv_relu(13);
    struct mq_pattern_list types = {0};
    struct mq_error err;
    ck_assert_int_eq(mq_pattern_list_add(&types, "Con*", "--op-types", &err), MQ_OK);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.op_types = &types;
    struct mq_fp16_result r;
    ck_assert_int_eq(convert(m, &o, &r, &err), MQ_ERR_USAGE);
    ck_assert_str_eq(err.message, "--op-types: 'Con*' matches no op type of the model (op types "
                                  "are exact names, not patterns)");
    mq_pattern_list_free(&types);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(node_entry_names_a_node_exactly_even_with_glob_characters)
{
    Onnx__ModelProto *m = conv_relu(13);
    Onnx__NodeProto *conv = mb_find_node(m->graph, "conv");
    free(conv->name);
    conv->name = strdup("conv[1]");
    struct mq_pattern_list exclude = {0};
    struct mq_error err;
    /* As a pattern, "conv[1]" names only "conv1"; as an exact name, this node. */
    ck_assert_int_eq(mq_pattern_list_add(&exclude, "conv[1]", "--exclude-nodes", &err), MQ_OK);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    o.exclude_nodes = &exclude;
    struct mq_fp16_result r;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_str_eq(find(&r, "conv[1]")->reason, "excluded by --exclude-nodes 'conv[1]'");
    ck_assert_int_eq(find(&r, "relu")->status, MQ_FP16_FOLLOWED);
    mq_fp16_result_free(&r);
    mq_pattern_list_free(&exclude);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(unnamed_nodes_are_named_by_their_stored_position)
{
    /* conv_relu with unnamed nodes stored out of order: Relu first, then the Conv it reads. */
    Onnx__ModelProto *m = mb_model(13);
    Onnx__GraphProto *g = m->graph;
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, OH_DIMS(1, 1, 4, 4));
    mb_output(g, "y", MQ_DTYPE_FLOAT, 4, OH_DIMS(1, 2, 2, 2));
    float w[18] = {0};
    mb_init(g, "w", oh_f32(4, OH_DIMS(2, 1, 3, 3), w));
    mb_node(g, "Relu", "", "c", "y");
    mb_node(g, "Conv", "", "x,w", "c");
    struct mq_pattern_list exclude = {0};
    struct mq_error err;
    ck_assert_int_eq(mq_pattern_list_add(&exclude, "Conv#1", "--exclude-nodes", &err), MQ_OK);
    struct mq_fp16_options o;
    mq_fp16_options_default(&o);
    o.ops = MQ_FP16_OPS_ALL;
    o.exclude_nodes = &exclude;
    struct mq_fp16_result r;
    ck_assert_msg(convert(m, &o, &r, &err) == MQ_OK, "%s", err.message);
    ck_assert_ptr_nonnull(find(&r, "Relu#0"));
    ck_assert_str_eq(find(&r, "Conv#1")->reason, "excluded by --exclude-nodes 'Conv#1'");
    mq_fp16_result_free(&r);
    mq_pattern_list_free(&exclude);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fp16");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, all_ops_converts_weights_and_casts_at_the_edges);
    tcase_add_test(tc, ort_cpu_keeps_conv_float32_with_float16_weights);
    tcase_add_test(tc, io_types_float16_on_request);
    tcase_add_test(tc, excluded_node_keeps_exact_weights);
    tcase_add_test(tc, pattern_matching_nothing_is_a_usage_error);
    tcase_add_test(tc, op_types_are_exact_names_not_patterns);
    tcase_add_test(tc, node_entry_names_a_node_exactly_even_with_glob_characters);
    tcase_add_test(tc, unnamed_nodes_are_named_by_their_stored_position);
    tcase_add_test(tc, constant_beyond_range_stays_float32);
    tcase_add_test(tc, activation_seen_beyond_range_keeps_its_nodes);
    tcase_add_test(tc, constants_casts_and_fixed_float_inputs);
    tcase_add_test(tc, subgraph_converted_inside_with_its_interface_kept);
    tcase_add_test(tc, opset_decides_what_onnxruntime_runs);
    return mq_check_run(s, tc);
}
