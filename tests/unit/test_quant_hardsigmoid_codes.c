/*
 * HardSigmoid as a Clip of its input's integer codes (quant/hardsigmoid_codes.h): the plan's
 * scale and zero points, the cases it declines, the nodes the QDQ rewrite writes, the
 * interpreter running the rewritten model (its output against HardSigmoid of the input's
 * dequantized codes), HardSwish written as x * HardSigmoid(x), and dequantize putting the
 * float HardSigmoid back.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/ranges.h"
#include "model/tensor_proto.h"
#include "quant/dequantize.h"
#include "quant/hardsigmoid_codes.h"
#include "quant/hardswish_split.h"
#include "quant/params.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "model_run.h"
#include "quant_builder.h"
#include "quant_run.h"

static const float sixth = 1.0f / 6.0f;

/* ------------------------------------------------------------------ the plan */

START_TEST(test_plan_hardswish_uint8)
{
    struct mq_qrange qr = mq_qrange_for(MQ_DTYPE_UINT8, 0, 0), full = mq_qrange_full(MQ_DTYPE_UINT8);
    struct mq_codes_plan p;
    char why[256] = "";
    /* Calibrated scale 16 / 255: k = floor(3 / (16 / 255)) = 47, the scale 3 / 47. */
    ck_assert_msg(mq_quant_codes_plan(sixth, 0.5f, -8.0f, 8.0f, qr, full, 0, &p, why, sizeof why),
                  "%s", why);
    ck_assert_int_eq(p.k, 47);
    ck_assert_float_eq(p.x.scale, (float)((0.5 / (double)sixth) / 47.0));
    ck_assert_int_eq(p.x.zero_point, 125); /* rint(8 / (3 / 47)) */
    ck_assert_int_eq(p.h.zero_point, 125 - 47);
    ck_assert_float_eq(p.h.scale, (float)((double)sixth * (double)p.x.scale));
    /* 0 at -3 (code 78), 1 at +3: 2k codes further. */
    ck_assert_int_eq(p.clip_lo, 78);
    ck_assert_int_eq(p.clip_hi, 78 + 94);
    ck_assert_int_eq(p.upper_rounded, 0);
    ck_assert_int_eq(p.widened, 0);
    ck_assert_float_eq(p.lo, -8.0f);
    /* The scale only grows (the calibrated range stays covered), by less than 1 / k. */
    ck_assert(p.x.scale >= 16.0f / 255.0f && p.x.scale < 16.0f / 255.0f * (1.0f + 1.0f / 47));
    /* The default HardSigmoid (0.2, 0.5): 2.5 / k, the upper clamp 2k codes above. */
    ck_assert(mq_quant_codes_plan(0.2f, 0.5f, -4.0f, 4.0f, qr, full, 0, &p, why, sizeof why));
    ck_assert_int_eq(p.k, (int)floor(2.5 / (8.0 / 255.0)));
    ck_assert_int_eq(p.clip_hi - p.clip_lo, 2 * p.k);
    /* beta 0.3, alpha 0.25: the upper clamp (1 - 0.3) / 0.25 = 2.8 is 7/3 k codes away. */
    ck_assert(mq_quant_codes_plan(0.25f, 0.3f, -6.0f, 6.0f, qr, full, 0, &p, why, sizeof why));
    ck_assert_int_eq(p.upper_rounded, p.k % 3 != 0);
    ck_assert_int_eq(p.clip_hi - p.clip_lo, (int)lrint(4.0 / 1.2 * p.k));
}
END_TEST

START_TEST(test_plan_widens_or_declines)
{
    struct mq_qrange qr = mq_qrange_for(MQ_DTYPE_UINT8, 0, 0), full = mq_qrange_full(MQ_DTYPE_UINT8);
    struct mq_codes_plan p;
    char why[256];
    /* [-2.7, 10] reaches -3 when 2 % wider: widened. */
    ck_assert_msg(mq_quant_codes_plan(sixth, 0.5f, -2.7f, 10.0f, qr, full, 0, &p, why, sizeof why),
                  "%s", why);
    ck_assert_int_eq(p.widened, 1);
    ck_assert_float_eq(p.lo, (float)-(0.5 / (double)sixth));
    ck_assert_int_eq(p.h.zero_point, 0);
    ck_assert_int_eq(p.clip_lo, 0);
    /* [-0.3, 0.37] never reaches -3: 4x wider, declined. */
    ck_assert(!mq_quant_codes_plan(sixth, 0.5f, -0.3f, 0.37f, qr, full, 0, &p, why, sizeof why));
    ck_assert_msg(strstr(why, "would have to reach -3") != NULL, "%s", why);
    /* [-3.1, 100]: fewer than 8 steps of the scale between -3 and 0. */
    ck_assert(!mq_quant_codes_plan(sixth, 0.5f, -3.1f, 100.0f, qr, full, 0, &p, why, sizeof why));
    ck_assert_msg(strstr(why, "at least 8 needed") != NULL, "%s", why);
    ck_assert(!mq_quant_codes_plan(-sixth, 0.5f, -8, 8, qr, full, 0, &p, why, sizeof why));
    ck_assert_msg(strstr(why, "not positive") != NULL, "%s", why);
    ck_assert(!mq_quant_codes_plan(sixth, 1.5f, -8, 8, qr, full, 0, &p, why, sizeof why));
    ck_assert_msg(strstr(why, "outside (0, 1)") != NULL, "%s", why);
}
END_TEST

START_TEST(test_plan_int8)
{
    struct mq_codes_plan p;
    char why[256];
    struct mq_qrange full = mq_qrange_full(MQ_DTYPE_INT8);
    /* Asymmetric int8: the codes and the zero points stay in [-128, 127]. */
    ck_assert(mq_quant_codes_plan(sixth, 0.5f, -8.0f, 8.0f, mq_qrange_for(MQ_DTYPE_INT8, 0, 0),
                                  full, 0, &p, why, sizeof why));
    ck_assert_int_eq(p.k, 47);
    ck_assert_int_eq(p.x.zero_point, -3); /* -128 + rint(8 / (3 / 47)) */
    ck_assert_int_eq(p.clip_lo, -3 - 47);
    ck_assert_int_eq(p.clip_hi, -3 + 47);
    /* Symmetric int8: zero point 0, so the output's is -k. */
    ck_assert(mq_quant_codes_plan(sixth, 0.5f, -8.0f, 6.0f, mq_qrange_for(MQ_DTYPE_INT8, 1, 0),
                                  full, 1, &p, why, sizeof why));
    ck_assert_int_eq(p.x.zero_point, 0);
    ck_assert_int_eq(p.k, (int)floor(3.0 / (16.0 / 254.0)));
    ck_assert_int_eq(p.h.zero_point, -p.k);
    ck_assert_int_eq(p.clip_hi, p.k);
}
END_TEST

/* --------------------------------------------------------------- the rewrite */

/* The rewrite with the given ranges, which must succeed. */
static void quantize_ok(Onnx__ModelProto *m, const struct range_spec *specs, int n,
                        const struct mq_quant_options *o, struct run *r)
{
    quantize(m, specs, n, o, r);
    ck_assert_msg(r->rc == MQ_OK, "%s", r->err.message);
}

static const Onnx__TensorProto *init_named(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    ck_abort_msg("no initializer '%s'", name);
    return NULL;
}

static double scalar_at(const Onnx__GraphProto *g, const char *name, int dtype)
{
    struct mq_tensor t;
    struct mq_error err;
    ck_assert_msg(mq_tensor_from_proto(init_named(g, name), name, &t, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_int_eq(t.dtype, dtype);
    ck_assert_int_eq((int)t.count, 1);
    double v = mq_tensor_get_double(&t, 0);
    mq_tensor_free(&t);
    return v;
}

static const Onnx__NodeProto *producer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t o = 0; o < g->node[i]->n_output; o++)
            if (strcmp(g->node[i]->output[o], name) == 0)
                return g->node[i];
    return NULL;
}

enum { N = 256 };

/*
 * x [1,1,1,N] -> HardSigmoid(1/6, 1/2) -> h (a graph output); Mul(x, h) -> y -> Conv 1x1 (weight
 * 1) -> out: a HardSwish feeding a Conv, so the HardSigmoid sits in an integer island.
 */
static Onnx__ModelProto *hardswish_model(void)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 1, N}, wd[4] = {1, 1, 1, 1};
    float w[1] = {1.0f};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, w);
    Onnx__NodeProto *hs = qb_node(g, "HardSigmoid", "hs", "x", "h");
    qb_attr_float(hs, "alpha", sixth);
    qb_attr_float(hs, "beta", 0.5f);
    qb_node(g, "Mul", "mul", "x,h", "y");
    qb_node(g, "Conv", "conv", "y,w", "out");
    qb_output(g, "h", 1);
    qb_output(g, "out", 1);
    return m;
}

static const struct range_spec hs_ranges[] = {
    {"x", -8.0f, 8.0f}, {"h", 0.0f, 1.0f}, {"y", -0.375f, 8.0f}, {"out", -0.375f, 8.0f}};

START_TEST(test_rewrite_nodes_and_interpreter)
{
    Onnx__ModelProto *m = hardswish_model();
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize_ok(m, hs_ranges, 4, &o, &r);
    const Onnx__GraphProto *g = m->graph;
    ck_assert_int_eq(r.res.hardsigmoid_codes, 1);
    /* The HardSigmoid is now a Clip of x's QuantizeLinear output. */
    const Onnx__NodeProto *clip = qb_node_named(g, "hs");
    ck_assert_ptr_nonnull(clip);
    ck_assert_str_eq(clip->op_type, "Clip");
    ck_assert_int_eq((int)clip->n_input, 3);
    ck_assert_int_eq((int)clip->n_attribute, 0);
    const Onnx__NodeProto *q = producer(g, clip->input[0]);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->op_type, "QuantizeLinear");
    ck_assert_str_eq(q->input[0], "x");
    double s_x = scalar_at(g, q->input[1], MQ_DTYPE_FLOAT);
    double z_x = scalar_at(g, q->input[2], MQ_DTYPE_UINT8);
    ck_assert_float_eq((float)s_x, (float)((0.5 / (double)sixth) / 47.0));
    ck_assert_int_eq((int)z_x, 125);
    ck_assert_int_eq((int)scalar_at(g, clip->input[1], MQ_DTYPE_UINT8), 78);
    ck_assert_int_eq((int)scalar_at(g, clip->input[2], MQ_DTYPE_UINT8), 172);
    /* A DequantizeLinear reads the codes as h: scale s / 6, zero point z - k. */
    const Onnx__NodeProto *dq = producer(g, "h");
    ck_assert_str_eq(dq->op_type, "DequantizeLinear");
    ck_assert_str_eq(dq->input[0], clip->output[0]);
    ck_assert_float_eq((float)scalar_at(g, dq->input[1], MQ_DTYPE_FLOAT),
                       (float)((double)sixth * (double)(float)s_x));
    ck_assert_int_eq((int)scalar_at(g, dq->input[2], MQ_DTYPE_UINT8), 78);
    /* No QuantizeLinear of h: it is never rounded onto a scale of its own. */
    for (size_t i = 0; i < g->n_node; i++)
        ck_assert(!(strcmp(g->node[i]->op_type, "QuantizeLinear") == 0 &&
                    strcmp(g->node[i]->input[0], "h") == 0));
    /* The report says what was done. */
    int found = 0;
    for (int i = 0; i < r.sel.n; i++)
        if (strcmp(r.sel.items[i].name, "hs") == 0) {
            found = 1;
            ck_assert_int_eq(r.sel.items[i].status, MQ_NODE_QUANTIZED);
            ck_assert_msg(strstr(r.sel.items[i].reason,
                                 "HardSigmoid as a clamp of its input's codes") != NULL,
                          "%s", r.sel.items[i].reason);
        }
    ck_assert(found);

    /* The interpreter: h is HardSigmoid of x's dequantized codes, on every code. */
    float xv[N];
    for (int i = 0; i < N; i++)
        xv[i] = -8.5f + 17.0f * (float)i / (float)(N - 1); /* every code, and both clamps */
    int64_t xd[4] = {1, 1, 1, N};
    struct mq_tensor x, out[2];
    struct mq_error err;
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, xd, "x", &err), MQ_OK);
    memcpy(x.data, xv, sizeof xv);
    mr_run(m, &x, 1, out, 2);
    struct mq_qparams px = {(float)s_x, (int32_t)z_x};
    const float *h = out[0].data;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        float xdq = mq_dequantize_value(mq_quantize_value(xv[i], px, mq_qrange_full(MQ_DTYPE_UINT8)), px);
        float v = sixth * xdq + 0.5f;
        float ref = v < 0 ? 0.0f : v > 1 ? 1.0f : v;
        double d = fabs((double)h[i] - (double)ref);
        worst = d > worst ? d : worst;
        /* Equal up to the float rounding of s/6 against 1/6 * s: two units in the last place. */
        ck_assert_msg(d <= 2.4e-7, "x %g: h %.9g, HardSigmoid(DQ(x_q)) %.9g", (double)xv[i],
                      (double)h[i], (double)ref);
    }
    ck_assert(worst <= 2.4e-7);
    mq_tensor_free(&out[0]);
    mq_tensor_free(&out[1]);
    mq_tensor_free(&x);

    /* dequantize gives the float HardSigmoid back, reading x. */
    struct mq_dequantize_result dr;
    ck_assert_msg(mq_dequantize(m, NULL, &dr, &err) == MQ_OK, "%s", err.message);
    ck_assert_int_eq(dr.hardsigmoids_restored, 1);
    const Onnx__NodeProto *back = producer(g, "h");
    ck_assert_str_eq(back->op_type, "HardSigmoid");
    ck_assert_str_eq(back->input[0], "x");
    for (size_t i = 0; i < g->n_node; i++)
        ck_assert_msg(strcmp(g->node[i]->op_type, "QuantizeLinear") != 0 &&
                      strcmp(g->node[i]->op_type, "Clip") != 0, "%s left", g->node[i]->op_type);
    float alpha = 0, beta = 0;
    for (size_t a = 0; a < back->n_attribute; a++) {
        if (strcmp(back->attribute[a]->name, "alpha") == 0)
            alpha = back->attribute[a]->f;
        if (strcmp(back->attribute[a]->name, "beta") == 0)
            beta = back->attribute[a]->f;
    }
    ck_assert(fabsf(alpha - sixth) <= 1e-7f);
    ck_assert(fabsf(beta - 0.5f) <= 1e-6f);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* The reason a node stays float, or fails the test. */
static const char *skipped_reason(const struct run *r, const char *node)
{
    for (int i = 0; i < r->sel.n; i++)
        if (strcmp(r->sel.items[i].name, node) == 0) {
            ck_assert_msg(r->sel.items[i].status == MQ_NODE_SKIPPED, "%s: status %d",
                          node, r->sel.items[i].status);
            return r->sel.items[i].reason;
        }
    ck_abort_msg("no node %s", node);
    return NULL;
}

START_TEST(test_rewrite_declined)
{
    /* x never reaches -3: the HardSigmoid stays float, h gets its own pair. */
    Onnx__ModelProto *m = hardswish_model();
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct range_spec narrow[4] = {{"x", -0.3f, 0.37f}, {"h", 0.45f, 0.57f}, {"y", -0.1f, 0.3f},
                                   {"out", -0.1f, 0.3f}};
    struct run r;
    quantize_ok(m, narrow, 4, &o, &r);
    ck_assert_int_eq(r.res.hardsigmoid_codes, 0);
    ck_assert_str_eq(qb_node_named(m->graph, "hs")->op_type, "HardSigmoid");
    ck_assert_msg(strstr(skipped_reason(&r, "hs"), "would have to reach -3") != NULL, "%s",
                  skipped_reason(&r, "hs"));
    ck_assert_str_eq(producer(m->graph, "h")->op_type, "DequantizeLinear");
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);

    /* The tensorrt profile quantizes inputs only: no output DequantizeLinear to write. */
    m = hardswish_model();
    o.activation_type = MQ_DTYPE_INT8;
    o.symmetric_activations = 1;
    o.quantize_outputs = 0;
    quantize_ok(m, hs_ranges, 4, &o, &r);
    ck_assert_str_eq(qb_node_named(m->graph, "hs")->op_type, "HardSigmoid");
    ck_assert(strstr(skipped_reason(&r, "hs"), "op inputs only") != NULL);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);

    /* 16-bit activations: onnxruntime's Clip has no such kernel. */
    m = hardswish_model();
    mq_quant_options_default(&o);
    o.activation_type = MQ_DTYPE_UINT16;
    m->opset_import[0]->version = 21;
    quantize_ok(m, hs_ranges, 4, &o, &r);
    ck_assert_str_eq(qb_node_named(m->graph, "hs")->op_type, "HardSigmoid");
    ck_assert(strstr(skipped_reason(&r, "hs"), "no uint16 kernel") != NULL);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/*
 * Two HardSigmoids of one x with different maps: x's scale serves the first only, the second
 * stays float and says why.  The first's output needs no calibrated range of its own.
 */
START_TEST(test_two_maps_one_input)
{
    Onnx__ModelProto *m = qb_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 1, N}, wd[4] = {1, 1, 1, 1};
    float w[1] = {1.0f};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, w);
    Onnx__NodeProto *hs = qb_node(g, "HardSigmoid", "hs", "x", "h");
    qb_attr_float(hs, "alpha", sixth);
    qb_attr_float(hs, "beta", 0.5f);
    qb_node(g, "HardSigmoid", "hs2", "x", "h2"); /* the default map, 0.2 and 0.5 */
    qb_node(g, "Mul", "mul", "x,h", "y");
    qb_node(g, "Mul", "mul2", "y,h2", "y2");
    qb_node(g, "Conv", "conv", "y2,w", "out");
    qb_output(g, "out", 1);
    struct range_spec ranges[] = {{"x", -8.0f, 8.0f}, {"h2", 0.0f, 1.0f}, {"y", -0.375f, 8.0f},
                                  {"y2", -0.2f, 8.0f}, {"out", -0.2f, 8.0f}};
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    struct run r;
    quantize_ok(m, ranges, 5, &o, &r);
    ck_assert_int_eq(r.res.hardsigmoid_codes, 1);
    ck_assert_str_eq(qb_node_named(g, "hs")->op_type, "Clip");
    ck_assert_str_eq(qb_node_named(g, "hs2")->op_type, "HardSigmoid");
    ck_assert_msg(strstr(skipped_reason(&r, "hs2"), "already chosen for another HardSigmoid"),
                  "%s", skipped_reason(&r, "hs2"));
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_rewrite_int8)
{
    Onnx__ModelProto *m = hardswish_model();
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    o.activation_type = MQ_DTYPE_INT8;
    struct run r;
    quantize_ok(m, hs_ranges, 4, &o, &r);
    const Onnx__GraphProto *g = m->graph;
    const Onnx__NodeProto *clip = qb_node_named(g, "hs");
    ck_assert_str_eq(clip->op_type, "Clip");
    ck_assert_int_eq((int)scalar_at(g, clip->input[1], MQ_DTYPE_INT8), -50);
    ck_assert_int_eq((int)scalar_at(g, clip->input[2], MQ_DTYPE_INT8), 44);
    ck_assert_int_eq((int)scalar_at(g, producer(g, "h")->input[2], MQ_DTYPE_INT8), -50);
    run_free(&r);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

/* HardSwish behind a Conv as Mul(x, HardSigmoid(x, 1/6, 1/2)): the same values in float. */
START_TEST(test_hardswish_as_hardsigmoid)
{
    Onnx__ModelProto *m = qb_model(14);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 1, 1, 16}, wd[4] = {1, 1, 1, 1};
    float w[1] = {1.0f};
    qb_input(g, "x", 1, 4, xd);
    qb_init_f32(g, "w", 4, wd, w);
    qb_node(g, "Conv", "conv", "x,w", "c");
    qb_node(g, "HardSwish", "hs", "c", "y");
    qb_node(g, "Conv", "conv2", "y,w", "out");
    qb_node(g, "HardSwish", "hs_input", "x", "z"); /* behind no Conv: stays */
    qb_output(g, "out", 1);
    qb_output(g, "z", 1);
    Onnx__ModelProto *orig = qb_copy_model(m);
    struct mq_error err;
    int n = -1;
    ck_assert_int_eq(mq_hardswish_as_hardsigmoid(m, &n, &err), MQ_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(qb_node_named(g, "hs"));
    ck_assert_str_eq(qb_node_named(g, "hs_input")->op_type, "HardSwish");
    ck_assert_str_eq(g->node[1]->op_type, "HardSigmoid");
    ck_assert_str_eq(g->node[1]->input[0], "c");
    ck_assert_str_eq(g->node[2]->op_type, "Mul");
    ck_assert_str_eq(g->node[2]->input[0], "c");
    ck_assert_str_eq(g->node[2]->input[1], g->node[1]->output[0]);
    ck_assert_str_eq(g->node[2]->output[0], "y");
    ck_assert_str_eq(g->node[3]->op_type, "Conv");
    float xv[16];
    for (int i = 0; i < 16; i++)
        xv[i] = (float)i - 8.0f;
    struct mq_tensor x, a[2], b[2];
    ck_assert_int_eq(mq_tensor_alloc(&x, MQ_DTYPE_FLOAT, 4, xd, "x", &err), MQ_OK);
    memcpy(x.data, xv, sizeof xv);
    mr_run(m, &x, 1, a, 2);
    mr_run(orig, &x, 1, b, 2);
    for (int k = 0; k < 2; k++) {
        const float *pa = a[k].data, *pb = b[k].data;
        for (int64_t i = 0; i < a[k].count; i++)
            ck_assert_msg(fabsf(pa[i] - pb[i]) <= 1e-6f * (1.0f + fabsf(pb[i])),
                          "output %d[%lld]: %g, HardSwish gives %g", k, (long long)i,
                          (double)pa[i], (double)pb[i]);
        mq_tensor_free(&a[k]);
        mq_tensor_free(&b[k]);
    }
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(orig, NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant_hardsigmoid_codes");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_plan_hardswish_uint8);
    tcase_add_test(tc, test_plan_widens_or_declines);
    tcase_add_test(tc, test_plan_int8);
    tcase_add_test(tc, test_rewrite_nodes_and_interpreter);
    tcase_add_test(tc, test_rewrite_declined);
    tcase_add_test(tc, test_two_maps_one_input);
    tcase_add_test(tc, test_rewrite_int8);
    tcase_add_test(tc, test_hardswish_as_hardsigmoid);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
