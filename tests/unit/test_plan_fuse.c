/*
 * Plans built for speed (mq_plan_options: fuse, pack_weights) against plain
 * plans on the same models: the outputs must agree to float rounding, and
 * the fusions must actually happen (fewer steps).  The convolution sweep also
 * covers the packed GEMM's edges (rows and columns that do not fill a tile,
 * strides read through phase planes, groups, dilations, residuals).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "interp/ops/fused.h"
#include "interp/plan_internal.h"
#include "model_builder.h"
#include "op_harness.h"

static void attr_ints(Onnx__NodeProto *node, const char *name, int n, const int64_t *v)
{
    Onnx__AttributeProto *a = mb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_strdup(name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->has_type = 1;
    a->ints = mb_alloc((size_t)n * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)n * sizeof *v);
    a->n_ints = (size_t)n;
    mb_append((void ***)&node->attribute, &node->n_attribute, a);
}

static void attr_int(Onnx__NodeProto *node, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = mb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_strdup(name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_type = 1;
    a->i = v;
    a->has_i = 1;
    mb_append((void ***)&node->attribute, &node->n_attribute, a);
}

static unsigned seed = 12345;

/* Uniform in [lo, hi). */
static float frand(float lo, float hi)
{
    seed = seed * 1103515245u + 12345u;
    return lo + (hi - lo) * (float)((seed >> 8) & 0xffffff) / 16777216.0f;
}

static struct mq_tensor rand_f32(int rank, const int64_t *dims, float lo, float hi)
{
    struct mq_tensor t;
    struct mq_error err = {{0}};
    ck_assert(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, rank, dims, "test", &err) == MQ_OK);
    float *p = t.data;
    for (int64_t i = 0; i < t.count; i++)
        p[i] = frand(lo, hi);
    return t;
}

/* Runs proto with a plain plan and a fast one; every output must agree.  Returns fast steps. */
static int check_plans(Onnx__ModelProto *proto, const struct mq_tensor *inputs, int n_in,
                       int n_out, int *plain_steps)
{
    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *plain = NULL, *fast = NULL;
    struct mq_error err = {{0}};
    struct mq_plan_options options = {.fuse = 1, .pack_weights = 1};
    ck_assert_msg(mq_plan_build(&model, &plain, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK, "%s",
                  err.message);
    struct mq_tensor a[4] = {{0}}, b[4] = {{0}};
    ck_assert_msg(mq_plan_run(plain, inputs, n_in, a, n_out, NULL, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_msg(mq_plan_run(fast, inputs, n_in, b, n_out, NULL, &err) == MQ_OK, "%s",
                  err.message);
    for (int o = 0; o < n_out; o++) {
        ck_assert(mq_shape_equal(&a[o], &b[o]));
        const float *pa = a[o].data, *pb = b[o].data;
        double scale = 0, worst = 0;
        for (int64_t i = 0; i < a[o].count; i++)
            scale = fmax(scale, fabs(pa[i]));
        for (int64_t i = 0; i < a[o].count; i++)
            worst = fmax(worst, fabs((double)pa[i] - pb[i]));
        ck_assert_msg(worst <= 1e-5 * (scale + 1e-3), "output %d: max |plain - fast| %g, max "
                      "|plain| %g", o, worst, scale);
        mq_tensor_free(&a[o]);
        mq_tensor_free(&b[o]);
    }
    *plain_steps = plain->n_steps;
    int steps = fast->n_steps;
    mq_plan_free(plain);
    mq_plan_free(fast);
    return steps;
}

struct conv_case {
    int64_t n, c, m, h, w, kh, kw, stride, pad, dilation, group;
    int bias;
};

/*
 * x -> Conv -> BatchNormalization -> Mul [M,1,1] -> Add [1] -> (Add residual) -> Relu:
 * the fast plan is the Conv alone (plus the residual's producer).
 */
static void run_conv_case(const struct conv_case *k, int residual)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    const int64_t ekh = (k->kh - 1) * k->dilation + 1, ekw = (k->kw - 1) * k->dilation + 1;
    const int64_t oh = (k->h + 2 * k->pad - ekh) / k->stride + 1;
    const int64_t ow = (k->w + 2 * k->pad - ekw) / k->stride + 1;
    int64_t xdims[4] = {k->n, k->c, k->h, k->w};
    int64_t ydims[4] = {k->n, k->m, oh, ow};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, xdims);
    int64_t wdims[4] = {k->m, k->c / k->group, k->kh, k->kw}, mdims[1] = {k->m};
    mb_init(g, "w", rand_f32(4, wdims, -0.5f, 0.5f));
    if (k->bias)
        mb_init(g, "b", rand_f32(1, mdims, -1, 1));
    mb_init(g, "scale", rand_f32(1, mdims, 0.5f, 1.5f));
    mb_init(g, "shift", rand_f32(1, mdims, -1, 1));
    mb_init(g, "mean", rand_f32(1, mdims, -0.5f, 0.5f));
    mb_init(g, "var", rand_f32(1, mdims, 0.5f, 2));
    int64_t cdims[3] = {k->m, 1, 1}, one[1] = {1};
    mb_init(g, "k", rand_f32(3, cdims, 0.5f, 2));
    mb_init(g, "c", rand_f32(1, one, -0.5f, 0.5f));
    Onnx__NodeProto *conv = mb_node(g, "Conv", "conv", k->bias ? "x,w,b" : "x,w", "y0");
    attr_ints(conv, "kernel_shape", 2, (int64_t[]){k->kh, k->kw});
    attr_ints(conv, "strides", 2, (int64_t[]){k->stride, k->stride});
    attr_ints(conv, "pads", 4, (int64_t[]){k->pad, k->pad, k->pad, k->pad});
    attr_ints(conv, "dilations", 2, (int64_t[]){k->dilation, k->dilation});
    attr_int(conv, "group", k->group);
    mb_node(g, "BatchNormalization", "bn", "y0,scale,shift,mean,var", "y1");
    mb_node(g, "Mul", "mul", "y1,k", "y2");
    mb_node(g, "Add", "add", "c,y2", "y3");
    int n_in = 1;
    struct mq_tensor inputs[2] = {rand_f32(4, xdims, -1, 1), {0}};
    if (residual) {
        /* a residual from the graph inputs: full shape, or per channel (broadcast) */
        int64_t rdims[4] = {1, k->m, residual == 1 ? oh : 1, residual == 1 ? ow : 1};
        rdims[0] = residual == 1 ? k->n : 1;
        mb_input(g, "r", MQ_DTYPE_FLOAT, 4, rdims);
        inputs[1] = rand_f32(4, rdims, -1, 1);
        n_in = 2;
        mb_node(g, "Add", "residual", "r,y3", "y4");
        mb_node(g, "Relu", "relu", "y4", "y");
    } else {
        mb_node(g, "Relu", "relu", "y3", "y");
    }
    mb_output(g, "y", MQ_DTYPE_FLOAT, 4, ydims);
    int plain_steps, steps = check_plans(proto, inputs, n_in, 1, &plain_steps);
    ck_assert_int_eq(plain_steps, residual ? 6 : 5);
    ck_assert_int_eq(steps, 1);
    for (int i = 0; i < n_in; i++)
        mq_tensor_free(&inputs[i]);
    onnx__model_proto__free_unpacked(proto, NULL);
}

static const struct conv_case conv_cases[] = {
    /* n, c, m, h, w, kh, kw, stride, pad, dilation, group, bias */
    {1, 3, 8, 9, 9, 3, 3, 1, 1, 1, 1, 1},      /* same 3x3: B read from the image */
    {1, 16, 13, 7, 7, 3, 3, 1, 1, 1, 1, 0},    /* rows and columns short of a tile */
    {2, 5, 25, 12, 10, 3, 3, 1, 1, 1, 1, 1},   /* batch, two-and-a-bit row panels */
    {1, 3, 16, 20, 20, 7, 7, 2, 3, 1, 1, 0},   /* strided: phase planes */
    {1, 8, 12, 15, 15, 3, 3, 2, 1, 1, 1, 1},   /* odd size at stride 2 */
    {1, 8, 24, 14, 14, 1, 1, 2, 0, 1, 1, 1},   /* 1x1 at stride 2 */
    {1, 6, 10, 11, 11, 3, 3, 3, 1, 1, 1, 1},   /* stride 3 */
    {1, 4, 9, 12, 12, 3, 3, 1, 2, 2, 1, 1},    /* dilated */
    {1, 8, 12, 9, 9, 3, 3, 1, 1, 1, 2, 1},     /* grouped */
    {1, 40, 70, 6, 6, 1, 1, 1, 0, 1, 1, 1},    /* pointwise */
    {1, 300, 20, 5, 5, 3, 3, 1, 1, 1, 1, 1},   /* k = 2700: several k blocks */
    {1, 3, 8, 10, 10, 3, 3, 1, 0, 1, 1, 1},    /* valid padding: im2col */
    {1, 3, 16, 30, 30, 3, 3, 1, 0, 1, 1, 1},   /* valid padding, wide: row by row */
    {1, 3, 12, 59, 61, 7, 7, 2, 0, 1, 1, 0},   /* strided, planes wider than the output */
    {1, 2, 8, 26, 26, 3, 3, 1, 2, 1, 1, 1},    /* output wider than the input */
    {1, 4, 20, 40, 80, 5, 5, 3, 1, 2, 1, 1},   /* stride 3, dilated, row by row */
    {1, 3, 8, 10, 13, 5, 3, 2, 0, 1, 1, 0},    /* strided, too narrow for phase planes */
    {1, 8, 8, 40, 40, 3, 3, 1, 1, 1, 8, 1},    /* depthwise */
};

START_TEST(conv_chains_fuse_into_one_step)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        run_conv_case(&conv_cases[i], 0);
}
END_TEST

START_TEST(conv_absorbs_a_residual_add)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        run_conv_case(&conv_cases[i], 1);
        run_conv_case(&conv_cases[i], 2); /* broadcast residual: added after the GEMM */
    }
}
END_TEST

static void attr_float(Onnx__NodeProto *node, const char *name, float v)
{
    Onnx__AttributeProto *a = mb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_strdup(name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_type = 1;
    a->f = v;
    a->has_f = 1;
    mb_append((void ***)&node->attribute, &node->n_attribute, a);
}

static struct mq_tensor scalar_f32(float v)
{
    struct mq_tensor t;
    struct mq_error err = {{0}};
    ck_assert(mq_tensor_alloc(&t, MQ_DTYPE_FLOAT, 0, NULL, "test", &err) == MQ_OK);
    *(float *)t.data = v;
    return t;
}

/* Runs proto in a fused plan with packed weights: outputs into y; returns the plan's steps. */
static int run_fast(Onnx__ModelProto *proto, const struct mq_tensor *inputs, int n_in,
                    struct mq_tensor *y, int n_out)
{
    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *fast = NULL;
    struct mq_error err = {{0}};
    struct mq_plan_options options = {.fuse = 1, .pack_weights = 1};
    ck_assert_msg(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_msg(mq_plan_run(fast, inputs, n_in, y, n_out, NULL, &err) == MQ_OK, "%s",
                  err.message);
    int steps = fast->n_steps;
    mq_plan_free(fast);
    return steps;
}

/* The same bits, NaN and signed zeros included. */
static void assert_same_bits(const struct mq_tensor *a, const struct mq_tensor *b)
{
    ck_assert(mq_shape_equal(a, b));
    ck_assert_int_eq(a->dtype, b->dtype);
    const uint32_t *pa = a->data, *pb = b->data;
    for (int64_t i = 0; i < a->count; i++)
        ck_assert_msg(pa[i] == pb[i], "element %lld: %08x against Clip's %08x", (long long)i,
                      (unsigned)pa[i], (unsigned)pb[i]);
}

/*
 * Where the producer's output is also a graph output (`visible`), the Clip stays a step of
 * its own: the reference.  Otherwise it is fused away (one step less) and must give its bits.
 */
/* Clip bounds: inputs (opset 14), max alone, attributes (opset 6), min above max; and
   HardSwish instead (opset 14), which only Conv absorbs. */
enum clip_form { CLIP_INPUTS, CLIP_MAX_ONLY, CLIP_ATTRS, CLIP_CROSSED, N_CLIP_FORMS, HARDSWISH };

static void add_clip(Onnx__GraphProto *g, enum clip_form form, const char *x, const char *y)
{
    char inputs[64];
    if (form == HARDSWISH) {
        mb_node(g, "HardSwish", "clip", x, y);
        return;
    }
    if (form == CLIP_ATTRS) {
        Onnx__NodeProto *clip = mb_node(g, "Clip", "clip", x, y);
        attr_float(clip, "min", 0.0f);
        attr_float(clip, "max", 0.375f);
        return;
    }
    mb_init(g, "lo", scalar_f32(form == CLIP_CROSSED ? 0.5f : 0.0f));
    mb_init(g, "hi", scalar_f32(form == CLIP_CROSSED ? -0.25f : 0.375f));
    snprintf(inputs, sizeof inputs, form == CLIP_MAX_ONLY ? "%s,,hi" : "%s,lo,hi", x);
    mb_node(g, "Clip", "clip", inputs, y);
}

/*
 * x -> Conv -> (Add residual) -> Clip or HardSwish: in one step, the bits Clip (HardSwish)
 * gives after the same Conv (whose output, made a graph output, keeps the Clip apart), NaN
 * and infinities included.
 */
static void run_conv_clip_case(const struct conv_case *k, int residual, enum clip_form form)
{
    const int opset = form == CLIP_ATTRS ? 6 : 14;
    const int64_t ekh = (k->kh - 1) * k->dilation + 1, ekw = (k->kw - 1) * k->dilation + 1;
    const int64_t oh = (k->h + 2 * k->pad - ekh) / k->stride + 1;
    const int64_t ow = (k->w + 2 * k->pad - ekw) / k->stride + 1;
    int64_t xdims[4] = {k->n, k->c, k->h, k->w}, ydims[4] = {k->n, k->m, oh, ow};
    int64_t wdims[4] = {k->m, k->c / k->group, k->kh, k->kw}, mdims[1] = {k->m};
    int64_t rdims[4] = {residual == 1 ? k->n : 1, k->m, residual == 1 ? oh : 1,
                        residual == 1 ? ow : 1};
    struct mq_tensor inputs[2] = {rand_f32(4, xdims, -1, 1), {0}};
    float *xp = inputs[0].data;
    xp[inputs[0].count / 3] = NAN;
    xp[inputs[0].count / 2] = INFINITY;
    xp[inputs[0].count - 1] = -INFINITY;
    if (residual)
        inputs[1] = rand_f32(4, rdims, -0.5f, 0.5f);
    const int n_in = residual ? 2 : 1;
    struct mq_tensor y[2][2] = {{{0}}};
    int steps[2];
    unsigned start = seed;
    for (int visible = 0; visible < 2; visible++) {
        seed = start; /* the same weights in both models */
        Onnx__ModelProto *proto = mb_model(opset);
        Onnx__GraphProto *g = proto->graph;
        mb_input(g, "x", MQ_DTYPE_FLOAT, 4, xdims);
        mb_init(g, "w", rand_f32(4, wdims, -0.5f, 0.5f));
        if (k->bias)
            mb_init(g, "b", rand_f32(1, mdims, -0.5f, 0.5f));
        Onnx__NodeProto *conv = mb_node(g, "Conv", "conv", k->bias ? "x,w,b" : "x,w", "c");
        attr_ints(conv, "kernel_shape", 2, (int64_t[]){k->kh, k->kw});
        attr_ints(conv, "strides", 2, (int64_t[]){k->stride, k->stride});
        attr_ints(conv, "pads", 4, (int64_t[]){k->pad, k->pad, k->pad, k->pad});
        attr_ints(conv, "dilations", 2, (int64_t[]){k->dilation, k->dilation});
        attr_int(conv, "group", k->group);
        const char *clipped = "c";
        if (residual) {
            mb_input(g, "r", MQ_DTYPE_FLOAT, 4, rdims);
            mb_node(g, "Add", "residual", "c,r", "s");
            clipped = "s";
        }
        add_clip(g, form, clipped, "y");
        mb_output(g, "y", MQ_DTYPE_FLOAT, 4, ydims);
        if (visible)
            mb_output(g, clipped, MQ_DTYPE_FLOAT, 4, ydims);
        steps[visible] = run_fast(proto, inputs, n_in, y[visible], 1 + visible);
        onnx__model_proto__free_unpacked(proto, NULL);
    }
    ck_assert_int_eq(steps[0], 1);
    ck_assert_int_eq(steps[1], 2);
    assert_same_bits(&y[0][0], &y[1][0]);
    mq_tensor_free(&y[0][0]);
    mq_tensor_free(&y[1][0]);
    mq_tensor_free(&y[1][1]);
    for (int i = 0; i < n_in; i++)
        mq_tensor_free(&inputs[i]);
}

START_TEST(clip_and_hardswish_fuse_into_conv_bit_for_bit)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        for (int form = 0; form < N_CLIP_FORMS; form++)
            run_conv_clip_case(&conv_cases[i], 0, (enum clip_form)form);
        run_conv_clip_case(&conv_cases[i], 0, HARDSWISH);
    }
    /* with a residual Add between, of Y's shape (inside the GEMM) or broadcast (after it) */
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        run_conv_clip_case(&conv_cases[i], 1, CLIP_INPUTS);
        run_conv_clip_case(&conv_cases[i], 2, CLIP_MAX_ONLY);
        run_conv_clip_case(&conv_cases[i], 1, HARDSWISH);
        run_conv_clip_case(&conv_cases[i], 2, HARDSWISH);
    }
}
END_TEST

/*
 * Gemm, Add, Sum and BatchNormalization followed by Clip: the runner clips their output in
 * place, with Clip's bits: -0 stays -0 against a lower bound of +0, NaN stays NaN.
 */
START_TEST(clip_fuses_into_gemm_add_sum_and_batchnorm)
{
    const char *producers[] = {"Gemm", "Add", "Sum", "BatchNormalization"};
    int64_t dims[2] = {4, 6}, bdims[2] = {6, 6}, mdims[1] = {6};
    for (int form = 0; form < N_CLIP_FORMS; form++)
        for (int p = 0; p < 4; p++) {
            struct mq_tensor in[2] = {rand_f32(2, dims, -1, 1), rand_f32(2, dims, -1, 1)};
            float *a = in[0].data, *b = in[1].data;
            a[0] = b[0] = -0.0f; /* -0 + -0 = -0 */
            a[1] = NAN;
            a[2] = INFINITY;
            b[3] = -INFINITY;
            struct mq_tensor y[2][2] = {{{0}}};
            int steps[2];
            unsigned start = seed;
            for (int visible = 0; visible < 2; visible++) {
                seed = start;
                Onnx__ModelProto *proto = mb_model(form == CLIP_ATTRS ? 6 : 13);
                Onnx__GraphProto *g = proto->graph;
                mb_input(g, "a", MQ_DTYPE_FLOAT, 2, dims);
                mb_input(g, "b", MQ_DTYPE_FLOAT, 2, dims);
                if (p == 0) {
                    mb_init(g, "w", rand_f32(2, bdims, -1, 1));
                    mb_node(g, "Gemm", "op", "a,w", "s");
                } else if (p == 3) {
                    mb_init(g, "scale", rand_f32(1, mdims, 0.5f, 1.5f));
                    mb_init(g, "shift", rand_f32(1, mdims, -1, 1));
                    mb_init(g, "mean", rand_f32(1, mdims, -0.5f, 0.5f));
                    mb_init(g, "var", rand_f32(1, mdims, 0.5f, 2));
                    mb_node(g, "BatchNormalization", "op", "a,scale,shift,mean,var", "s");
                } else {
                    mb_node(g, producers[p], "op", "a,b", "s");
                }
                add_clip(g, (enum clip_form)form, "s", "y");
                mb_output(g, "y", MQ_DTYPE_FLOAT, 2, dims);
                if (visible)
                    mb_output(g, "s", MQ_DTYPE_FLOAT, 2, dims);
                steps[visible] = run_fast(proto, in, 2, y[visible], 1 + visible);
                onnx__model_proto__free_unpacked(proto, NULL);
            }
            ck_assert_msg(steps[0] == 1 && steps[1] == 2, "%s: %d and %d steps", producers[p],
                          steps[0], steps[1]);
            assert_same_bits(&y[0][0], &y[1][0]);
            if (p == 1 && form != CLIP_CROSSED)
                ck_assert(signbit(((float *)y[0][0].data)[0]) &&
                          isnan(((float *)y[0][0].data)[1]));
            mq_tensor_free(&y[0][0]);
            mq_tensor_free(&y[1][0]);
            mq_tensor_free(&y[1][1]);
            mq_tensor_free(&in[0]);
            mq_tensor_free(&in[1]);
        }
}
END_TEST

/* A bound computed at run time, or not a scalar, leaves the Clip a step of its own. */
START_TEST(clip_with_unknown_bounds_stays)
{
    for (int variant = 0; variant < 2; variant++) {
        Onnx__ModelProto *proto = mb_model(13);
        Onnx__GraphProto *g = proto->graph;
        int64_t dims[2] = {2, 3}, two[1] = {2};
        mb_input(g, "a", MQ_DTYPE_FLOAT, 2, dims);
        mb_input(g, "b", MQ_DTYPE_FLOAT, 2, dims);
        if (variant == 0)
            mb_input(g, "lo", MQ_DTYPE_FLOAT, 0, NULL);
        else
            mb_init(g, "lo", rand_f32(1, two, -1, 0));
        mb_node(g, "Add", "add", "a,b", "s");
        mb_node(g, "Clip", "clip", "s,lo", "y");
        mb_output(g, "y", MQ_DTYPE_FLOAT, 2, dims);
        struct mq_tensor in[3] = {rand_f32(2, dims, -1, 1), rand_f32(2, dims, -1, 1),
                                  scalar_f32(0.0f)};
        struct mq_model model = {proto, (char *)"test.onnx", NULL};
        struct mq_plan *fast = NULL;
        struct mq_error err = {{0}};
        struct mq_plan_options options = {.fuse = 1, .pack_weights = 1};
        ck_assert(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK);
        ck_assert_int_eq(fast->n_steps, 2);
        mq_plan_free(fast);
        for (int i = 0; i < 3; i++)
            mq_tensor_free(&in[i]);
        onnx__model_proto__free_unpacked(proto, NULL);
    }
}
END_TEST

/*
 * Pad of +0 (opset 13, inputs) over the spatial axes before a depthwise Conv: one step with
 * the padding the Conv's own, the same bits as the Pad then the Conv.  A Pad of -0 or 1, or
 * before a Conv that is not depthwise (whose GEMM may sum differently), stays.
 */
START_TEST(zero_pad_fuses_into_depthwise_conv)
{
    /* value, group (8: depthwise), expected fused */
    const struct {
        float value;
        int group, fused;
    } cases[] = {{0.0f, 8, 1}, {-0.0f, 8, 0}, {1.0f, 8, 0}, {0.0f, 1, 0}};
    int64_t xdims[4] = {1, 8, 13, 11}, pdims[1] = {8};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t wdims[4] = {8, 8 / cases[c].group, 3, 3};
        int64_t ydims[4] = {1, 8, 7, 6}; /* (13 + 1 + 2 - 3) / 2 + 1, (11 + 1 + 2 - 3) / 2 + 1 */
        struct mq_tensor x = rand_f32(4, xdims, -1, 1);
        struct mq_tensor y[2][2] = {{{0}}};
        int steps[2];
        unsigned start = seed;
        for (int visible = 0; visible < 2; visible++) {
            seed = start;
            Onnx__ModelProto *proto = mb_model(13);
            Onnx__GraphProto *g = proto->graph;
            mb_input(g, "x", MQ_DTYPE_FLOAT, 4, xdims);
            mb_init(g, "w", rand_f32(4, wdims, -1, 1));
            mb_init(g, "b", rand_f32(1, pdims, -1, 1));
            struct mq_tensor pads;
            struct mq_error err = {{0}};
            int64_t eight[1] = {8};
            ck_assert(mq_tensor_alloc(&pads, MQ_DTYPE_INT64, 1, eight, "pads", &err) == MQ_OK);
            memcpy(pads.data, (int64_t[]){0, 0, 1, 2, 0, 0, 2, 1}, 8 * sizeof(int64_t));
            mb_init(g, "pads", pads);
            mb_init(g, "value", scalar_f32(cases[c].value));
            mb_node(g, "Pad", "pad", "x,pads,value", "p");
            Onnx__NodeProto *conv = mb_node(g, "Conv", "conv", "p,w,b", "y");
            attr_ints(conv, "strides", 2, (int64_t[]){2, 2});
            attr_int(conv, "group", cases[c].group);
            mb_output(g, "y", MQ_DTYPE_FLOAT, 4, ydims);
            if (visible)
                mb_output(g, "p", MQ_DTYPE_FLOAT, 4, (int64_t[]){1, 8, 16, 14});
            steps[visible] = run_fast(proto, &x, 1, y[visible], 1 + visible);
            onnx__model_proto__free_unpacked(proto, NULL);
        }
        ck_assert_int_eq(steps[0], cases[c].fused ? 1 : 2);
        ck_assert_int_eq(steps[1], 2);
        assert_same_bits(&y[0][0], &y[1][0]);
        mq_tensor_free(&y[0][0]);
        mq_tensor_free(&y[1][0]);
        mq_tensor_free(&y[1][1]);
        mq_tensor_free(&x);
    }
}
END_TEST

/* A residual computed after the Conv cannot be fused into it; the other Conv takes the Add. */
START_TEST(residual_must_exist_before_the_conv)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    int64_t xdims[4] = {1, 4, 6, 6}, wdims[4] = {4, 4, 3, 3};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, xdims);
    mb_init(g, "w1", rand_f32(4, wdims, -1, 1));
    mb_init(g, "w2", rand_f32(4, wdims, -1, 1));
    Onnx__NodeProto *c1 = mb_node(g, "Conv", "c1", "x,w1", "a");
    attr_ints(c1, "pads", 4, (int64_t[]){1, 1, 1, 1});
    Onnx__NodeProto *c2 = mb_node(g, "Conv", "c2", "x,w2", "b");
    attr_ints(c2, "pads", 4, (int64_t[]){1, 1, 1, 1});
    mb_node(g, "Sum", "sum", "a,b", "s");
    mb_node(g, "Relu", "relu", "s", "y");
    mb_output(g, "y", MQ_DTYPE_FLOAT, 4, xdims);
    struct mq_tensor x = rand_f32(4, xdims, -1, 1);
    int plain_steps, steps = check_plans(proto, &x, 1, 1, &plain_steps);
    ck_assert_int_eq(plain_steps, 4);
    ck_assert_int_eq(steps, 2);
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

/* A Conv output that is also a graph output, or read twice, stays as it is. */
START_TEST(visible_tensors_are_not_fused_away)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    int64_t xdims[4] = {1, 3, 5, 5}, wdims[4] = {6, 3, 1, 1}, ydims[4] = {1, 6, 5, 5};
    int64_t mdims[1] = {6};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, xdims);
    mb_init(g, "w", rand_f32(4, wdims, -1, 1));
    mb_init(g, "scale", rand_f32(1, mdims, 0.5f, 1.5f));
    mb_init(g, "shift", rand_f32(1, mdims, -1, 1));
    mb_init(g, "mean", rand_f32(1, mdims, -0.5f, 0.5f));
    mb_init(g, "var", rand_f32(1, mdims, 0.5f, 2));
    mb_node(g, "Conv", "conv", "x,w", "c");
    mb_node(g, "BatchNormalization", "bn", "c,scale,shift,mean,var", "d");
    mb_node(g, "Relu", "r1", "d", "e");
    mb_node(g, "Relu", "r2", "d", "f");
    mb_output(g, "c", MQ_DTYPE_FLOAT, 4, ydims);
    mb_output(g, "e", MQ_DTYPE_FLOAT, 4, ydims);
    mb_output(g, "f", MQ_DTYPE_FLOAT, 4, ydims);
    struct mq_tensor x = rand_f32(4, xdims, -1, 1);
    int plain_steps, steps = check_plans(proto, &x, 1, 3, &plain_steps);
    ck_assert_int_eq(steps, plain_steps);
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

/* BN -> Mul -> Add -> Relu with constants per channel: one BN step, given the input's rank. */
START_TEST(batchnorm_absorbs_affine_and_relu)
{
    Onnx__ModelProto *proto = mb_model(9);
    Onnx__GraphProto *g = proto->graph;
    int64_t xdims[4] = {2, 5, 4, 3}, mdims[1] = {5}, cdims[3] = {5, 1, 1};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, xdims);
    mb_init(g, "scale", rand_f32(1, mdims, 0.5f, 1.5f));
    mb_init(g, "shift", rand_f32(1, mdims, -1, 1));
    mb_init(g, "mean", rand_f32(1, mdims, -0.5f, 0.5f));
    mb_init(g, "var", rand_f32(1, mdims, 0.5f, 2));
    mb_init(g, "k", rand_f32(3, cdims, -2, 2));
    mb_init(g, "c", rand_f32(3, cdims, -1, 1));
    mb_node(g, "BatchNormalization", "bn", "x,scale,shift,mean,var", "a");
    mb_node(g, "Mul", "mul", "a,k", "b");
    mb_node(g, "Add", "add", "b,c", "d");
    mb_node(g, "Relu", "relu", "d", "y");
    mb_output(g, "y", MQ_DTYPE_FLOAT, 4, xdims);
    struct mq_tensor x = rand_f32(4, xdims, -2, 2);
    int plain_steps, steps = check_plans(proto, &x, 1, 1, &plain_steps);
    ck_assert_int_eq(plain_steps, 4);
    ck_assert_int_eq(steps, 1);
    mq_tensor_free(&x);

    /* fed with another rank than declared: an error, not a wrong answer */
    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *fast = NULL;
    struct mq_error err = {{0}};
    struct mq_plan_options options = {.fuse = 1};
    ck_assert(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK);
    int64_t odd[3] = {5, 4, 3};
    struct mq_tensor x3 = rand_f32(3, odd, -1, 1), y = {0};
    ck_assert(mq_plan_run(fast, &x3, 1, &y, 1, NULL, &err) != MQ_OK);
    ck_assert_msg(strstr(err.message, "rank 3") && strstr(err.message, "bn"), "%s", err.message);
    mq_tensor_free(&x3);
    mq_plan_free(fast);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

/* Gemm, Add and Sum take the Relu after them. */
START_TEST(relu_fuses_into_gemm_add_and_sum)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    int64_t adims[2] = {3, 7}, bdims[2] = {7, 5}, ydims[2] = {3, 5};
    mb_input(g, "a", MQ_DTYPE_FLOAT, 2, adims);
    mb_input(g, "p", MQ_DTYPE_FLOAT, 2, ydims);
    mb_init(g, "b", rand_f32(2, bdims, -1, 1));
    mb_node(g, "Gemm", "gemm", "a,b", "g0");
    mb_node(g, "Relu", "r0", "g0", "g1");
    mb_node(g, "Add", "add", "g1,p", "g2");
    mb_node(g, "Relu", "r1", "g2", "g3");
    mb_node(g, "Sum", "sum", "g3,p", "g4");
    mb_node(g, "Relu", "r2", "g4", "y");
    mb_output(g, "y", MQ_DTYPE_FLOAT, 2, ydims);
    struct mq_tensor in[2] = {rand_f32(2, adims, -1, 1), rand_f32(2, ydims, -2, 1)};
    int plain_steps, steps = check_plans(proto, in, 2, 1, &plain_steps);
    ck_assert_int_eq(plain_steps, 6);
    ck_assert_int_eq(steps, 3);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

/*
 * QuantizeLinear -> DequantizeLinear pairs with one scale and zero point become one step giving
 * exactly the pair's values (uint8 and int8, ties and values beyond the range included); a pair
 * whose DequantizeLinear takes another scale, and one whose 8-bit tensor is a graph output,
 * stay two steps.
 */
START_TEST(quantize_dequantize_pairs_fuse_exactly)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    int64_t dims[2] = {4, 300}, none[1] = {0};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 2, dims);
    const float scales[2] = {0.05f, 0.02f};
    const uint8_t zu = 128;
    const int8_t zs = -3;
    mb_init_raw(g, "s", MQ_DTYPE_FLOAT, 0, none, &scales[0], sizeof(float));
    mb_init_raw(g, "s2", MQ_DTYPE_FLOAT, 0, none, &scales[1], sizeof(float));
    mb_init_raw(g, "zu", MQ_DTYPE_UINT8, 0, none, &zu, 1);
    mb_init_raw(g, "zs", MQ_DTYPE_INT8, 0, none, &zs, 1);
    mb_node(g, "QuantizeLinear", "q1", "x,s,zu", "q1");
    mb_node(g, "DequantizeLinear", "d1", "q1,s,zu", "y1");
    mb_node(g, "QuantizeLinear", "q2", "x,s2,zs", "q2");
    mb_node(g, "DequantizeLinear", "d2", "q2,s2,zs", "y2");
    mb_node(g, "QuantizeLinear", "q3", "x,s,zu", "q3");
    mb_node(g, "DequantizeLinear", "d3", "q3,s2,zu", "y3");
    mb_node(g, "QuantizeLinear", "q4", "x,s2,zu", "q4");
    mb_node(g, "DequantizeLinear", "d4", "q4,s2,zu", "y4");
    mb_output(g, "y1", MQ_DTYPE_FLOAT, 2, dims);
    mb_output(g, "y2", MQ_DTYPE_FLOAT, 2, dims);
    mb_output(g, "y3", MQ_DTYPE_FLOAT, 2, dims);
    mb_output(g, "y4", MQ_DTYPE_FLOAT, 2, dims);
    mb_output(g, "q4", MQ_DTYPE_UINT8, 2, dims);
    struct mq_tensor x = rand_f32(2, dims, -9, 9);
    float *xv = x.data;
    xv[0] = 0.025f;  /* a tie at scale 0.05: rounds to even */
    xv[1] = 0.075f;
    xv[2] = NAN;
    xv[3] = 1e9f;
    xv[4] = -1e9f;
    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *plain = NULL, *fast = NULL;
    struct mq_error err = {{0}};
    struct mq_plan_options options = {.fuse = 1, .pack_weights = 1};
    ck_assert_msg(mq_plan_build(&model, &plain, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_int_eq(plain->n_steps, 8);
    ck_assert_int_eq(fast->n_steps, 6); /* q1+d1 and q2+d2 fused */
    struct mq_tensor a[5] = {{0}}, b[5] = {{0}};
    ck_assert_msg(mq_plan_run(plain, &x, 1, a, 5, NULL, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mq_plan_run(fast, &x, 1, b, 5, NULL, &err) == MQ_OK, "%s", err.message);
    for (int o = 0; o < 5; o++) {
        ck_assert_int_eq(a[o].dtype, b[o].dtype);
        ck_assert(mq_shape_equal(&a[o], &b[o]));
        ck_assert_msg(memcmp(a[o].data, b[o].data,
                             (size_t)a[o].count * mq_dtype_size(a[o].dtype)) == 0,
                      "output %d differs", o);
        mq_tensor_free(&a[o]);
        mq_tensor_free(&b[o]);
    }
    mq_plan_free(plain);
    mq_plan_free(fast);
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

/*
 * The same per axis (one scale and zero point per channel of axis 1) and for 16 bits (opset
 * 21): the fused step gives the pair's values bit for bit, ties, NaN and infinities included.
 */
START_TEST(per_axis_quantize_dequantize_pairs_fuse_exactly)
{
    Onnx__ModelProto *proto = mb_model(21);
    Onnx__GraphProto *g = proto->graph;
    enum { C = 3 };
    int64_t dims[3] = {2, C, 41}, cdims[1] = {C};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 3, dims);
    const float scales[C] = {0.05f, 0.003f, 1.5f};
    const uint8_t zu[C] = {128, 0, 255};
    const int16_t zs[C] = {-300, 0, 7};
    mb_init_raw(g, "s", MQ_DTYPE_FLOAT, 1, cdims, scales, sizeof scales);
    mb_init_raw(g, "zu", MQ_DTYPE_UINT8, 1, cdims, zu, sizeof zu);
    mb_init_raw(g, "zs", MQ_DTYPE_INT16, 1, cdims, zs, sizeof zs);
    mb_node(g, "QuantizeLinear", "q1", "x,s,zu", "q1");
    mb_node(g, "DequantizeLinear", "d1", "q1,s,zu", "y1");
    mb_node(g, "QuantizeLinear", "q2", "x,s,zs", "q2");
    mb_node(g, "DequantizeLinear", "d2", "q2,s,zs", "y2");
    mb_output(g, "y1", MQ_DTYPE_FLOAT, 3, dims);
    mb_output(g, "y2", MQ_DTYPE_FLOAT, 3, dims);
    struct mq_tensor x = rand_f32(3, dims, -200, 200);
    float *xv = x.data;
    for (int i = 0; i < 2 * C * 41; i += 7) /* exact ties of each channel's scale */
        xv[i] = ((float)(i % 50) - 20.5f) * scales[(i / 41) % C];
    xv[1] = NAN;
    xv[2] = INFINITY;
    xv[43] = -INFINITY;
    xv[90] = 3e38f;
    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *plain = NULL, *fast = NULL;
    struct mq_error err = {{0}};
    struct mq_plan_options options = {.fuse = 1, .pack_weights = 1};
    ck_assert_msg(mq_plan_build(&model, &plain, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_int_eq(plain->n_steps, 4);
    ck_assert_int_eq(fast->n_steps, 2);
    struct mq_tensor a[2] = {{0}}, b[2] = {{0}};
    ck_assert_msg(mq_plan_run(plain, &x, 1, a, 2, NULL, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mq_plan_run(fast, &x, 1, b, 2, NULL, &err) == MQ_OK, "%s", err.message);
    for (int o = 0; o < 2; o++) {
        ck_assert_int_eq(b[o].dtype, MQ_DTYPE_FLOAT);
        ck_assert(mq_shape_equal(&a[o], &b[o]));
        ck_assert_msg(memcmp(a[o].data, b[o].data, (size_t)a[o].count * sizeof(float)) == 0,
                      "output %d differs", o);
        mq_tensor_free(&a[o]);
        mq_tensor_free(&b[o]);
    }
    mq_plan_free(plain);
    mq_plan_free(fast);
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

/*
 * A fused pair whose input only it reads (a Relu's output) stores its values over that input's
 * buffer; one whose input is also a graph output or another step's, or a fed input, does not; all give the pair's
 * values bit for bit, the runs repeated so that a buffer handed over is reused.
 */
START_TEST(quantize_dequantize_pairs_take_over_their_input)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    int64_t dims[2] = {3, 77}, none[1] = {0};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 2, dims);
    mb_input(g, "w", MQ_DTYPE_FLOAT, 2, dims);
    const float scale = 0.04f;
    const uint8_t zu = 7;
    mb_init_raw(g, "s", MQ_DTYPE_FLOAT, 0, none, &scale, sizeof scale);
    mb_init_raw(g, "zu", MQ_DTYPE_UINT8, 0, none, &zu, 1);
    mb_node(g, "Relu", "relu", "x", "r");
    mb_node(g, "QuantizeLinear", "q1", "r,s,zu", "q1");
    mb_node(g, "DequantizeLinear", "d1", "q1,s,zu", "y1");
    mb_node(g, "Neg", "neg", "x", "n");
    mb_node(g, "QuantizeLinear", "q2", "n,s,zu", "q2");
    mb_node(g, "DequantizeLinear", "d2", "q2,s,zu", "y2");
    mb_node(g, "QuantizeLinear", "q3", "w,s,zu", "q3");
    mb_node(g, "DequantizeLinear", "d3", "q3,s,zu", "y3");
    mb_output(g, "y1", MQ_DTYPE_FLOAT, 2, dims);
    mb_output(g, "y2", MQ_DTYPE_FLOAT, 2, dims);
    mb_output(g, "n", MQ_DTYPE_FLOAT, 2, dims);
    mb_output(g, "y3", MQ_DTYPE_FLOAT, 2, dims);
    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *plain = NULL, *fast = NULL;
    struct mq_error err = {{0}};
    struct mq_plan_options options = {.fuse = 1, .pack_weights = 1};
    ck_assert_msg(mq_plan_build(&model, &plain, &err) == MQ_OK, "%s", err.message);
    ck_assert_msg(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK, "%s",
                  err.message);
    ck_assert_int_eq(fast->n_steps, 5);
    int in_place = 0;
    for (int s = 0; s < fast->n_steps; s++) {
        int want = strcmp(fast->steps[s].node.name, "q1") == 0;
        in_place += want;
        ck_assert_msg((fast->steps[s].kernel == &mq_kernel_quantize_dequantize_in_place) == want,
                      "step %s", fast->steps[s].node.name);
        ck_assert_int_eq(fast->steps[s].view_of_input, want);
    }
    ck_assert_int_eq(in_place, 1);
    for (int run = 0; run < 3; run++) {
        struct mq_tensor x[2] = {rand_f32(2, dims, -9, 9), rand_f32(2, dims, -9, 9)};
        for (int i = 0; i < 2; i++) {
            float *xv = x[i].data;
            xv[0] = 0.02f * 3; /* a tie at scale 0.04 */
            xv[1] = NAN;
            xv[2] = INFINITY;
        }
        struct mq_tensor a[4] = {{0}}, b[4] = {{0}};
        ck_assert_msg(mq_plan_run(plain, x, 2, a, 4, NULL, &err) == MQ_OK, "%s", err.message);
        ck_assert_msg(mq_plan_run(fast, x, 2, b, 4, NULL, &err) == MQ_OK, "%s", err.message);
        for (int o = 0; o < 4; o++) {
            ck_assert(mq_shape_equal(&a[o], &b[o]));
            ck_assert_msg(memcmp(a[o].data, b[o].data, (size_t)a[o].count * sizeof(float)) == 0,
                          "output %d differs", o);
            mq_tensor_free(&a[o]);
            mq_tensor_free(&b[o]);
        }
        for (int i = 0; i < 2; i++) { /* the fed inputs are left alone */
            const float *xv = x[i].data;
            ck_assert(xv[0] == 0.02f * 3 && isnan(xv[1]) && xv[2] == INFINITY);
            mq_tensor_free(&x[i]);
        }
    }
    mq_plan_free(plain);
    mq_plan_free(fast);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

/* Two Convs sharing W each fold their own BN: the shared W is not changed for the other. */
START_TEST(shared_weights_fold_separately)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    int64_t xdims[4] = {1, 4, 5, 5}, wdims[4] = {4, 4, 3, 3}, mdims[1] = {4};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 4, xdims);
    mb_init(g, "w", rand_f32(4, wdims, -1, 1));
    const char *names[] = {"s1", "b1", "m1", "v1", "s2", "b2", "m2", "v2"};
    for (int i = 0; i < 8; i++)
        mb_init(g, names[i], rand_f32(1, mdims, i % 4 == 3 ? 0.5f : -1, 2));
    Onnx__NodeProto *c1 = mb_node(g, "Conv", "c1", "x,w", "a");
    attr_ints(c1, "pads", 4, (int64_t[]){1, 1, 1, 1});
    Onnx__NodeProto *c2 = mb_node(g, "Conv", "c2", "x,w", "b");
    attr_ints(c2, "pads", 4, (int64_t[]){1, 1, 1, 1});
    mb_node(g, "BatchNormalization", "bn1", "a,s1,b1,m1,v1", "y1");
    mb_node(g, "BatchNormalization", "bn2", "b,s2,b2,m2,v2", "y2");
    mb_output(g, "y1", MQ_DTYPE_FLOAT, 4, xdims);
    mb_output(g, "y2", MQ_DTYPE_FLOAT, 4, xdims);
    struct mq_tensor x = rand_f32(4, xdims, -1, 1);
    int plain_steps, steps = check_plans(proto, &x, 1, 2, &plain_steps);
    ck_assert_int_eq(plain_steps, 4);
    ck_assert_int_eq(steps, 2);
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

static struct mq_tensor i64_tensor(int n, const int64_t *v)
{
    struct mq_tensor t;
    struct mq_error err = {{0}};
    int64_t dims[1] = {n};
    ck_assert(mq_tensor_alloc(&t, MQ_DTYPE_INT64, 1, dims, "test", &err) == MQ_OK);
    memcpy(t.data, v, (size_t)n * sizeof *v);
    return t;
}

/* Reshapes become views of inputs that outlive them, and only of those. */
START_TEST(reshapes_view_their_input)
{
    Onnx__ModelProto *proto = mb_model(13);
    Onnx__GraphProto *g = proto->graph;
    int64_t xdims[3] = {2, 3, 4}, adims[2] = {6, 4}, ydims[1] = {24};
    mb_input(g, "x", MQ_DTYPE_FLOAT, 3, xdims);
    mb_init(g, "s1", i64_tensor(2, (int64_t[]){6, 4}));
    mb_init(g, "s2", i64_tensor(1, (int64_t[]){24}));
    mb_node(g, "Relu", "relu", "x", "r");
    mb_node(g, "Reshape", "only_reader", "r,s1", "a");      /* r read once: moved */
    Onnx__NodeProto *t = mb_node(g, "Transpose", "transpose", "a", "t");
    attr_ints(t, "perm", 2, (int64_t[]){1, 0});
    mb_node(g, "Reshape", "of_transpose", "t,s2", "y");     /* a graph output: moved */
    mb_node(g, "Flatten", "of_input", "x", "f");            /* fed input: a view */
    mb_node(g, "Relu", "relu2", "x", "q");
    mb_node(g, "Reshape", "shared", "q,s1", "b");           /* q read twice: copied */
    mb_node(g, "Neg", "neg", "q", "c");
    mb_output(g, "y", MQ_DTYPE_FLOAT, 1, ydims);
    mb_output(g, "f", MQ_DTYPE_FLOAT, 2, adims);
    mb_output(g, "b", MQ_DTYPE_FLOAT, 2, adims);
    mb_output(g, "c", MQ_DTYPE_FLOAT, 3, xdims);
    struct mq_tensor x = rand_f32(3, xdims, -1, 1);
    int plain_steps;
    check_plans(proto, &x, 1, 4, &plain_steps);

    struct mq_model model = {proto, (char *)"test.onnx", NULL};
    struct mq_plan *fast = NULL;
    struct mq_error err = {{0}};
    struct mq_plan_options options = {.fuse = 1};
    ck_assert(mq_plan_build_with_options(&model, &options, &fast, &err) == MQ_OK);
    const char *views[] = {"only_reader", "of_transpose", "of_input"};
    for (int s = 0; s < fast->n_steps; s++) {
        int expect = 0;
        for (int i = 0; i < 3; i++)
            expect |= strcmp(fast->steps[s].node.name, views[i]) == 0;
        ck_assert_msg(fast->steps[s].view_of_input == expect, "step %s",
                      fast->steps[s].node.name);
    }
    /* twice, so a buffer moved by the first run would show up freed in the second */
    for (int r = 0; r < 2; r++) {
        struct mq_tensor out[4] = {{0}};
        ck_assert_msg(mq_plan_run(fast, &x, 1, out, 4, NULL, &err) == MQ_OK, "%s", err.message);
        const float *px = x.data, *pf = out[1].data;
        for (int i = 0; i < 24; i++)
            ck_assert(pf[i] == px[i]);
        oh_free_all(out, 4);
    }
    mq_plan_free(fast);
    mq_tensor_free(&x);
    onnx__model_proto__free_unpacked(proto, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plan_fuse");
    TCase *tc = tcase_create("plan_fuse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, conv_chains_fuse_into_one_step);
    tcase_add_test(tc, conv_absorbs_a_residual_add);
    tcase_add_test(tc, residual_must_exist_before_the_conv);
    tcase_add_test(tc, visible_tensors_are_not_fused_away);
    tcase_add_test(tc, batchnorm_absorbs_affine_and_relu);
    tcase_add_test(tc, relu_fuses_into_gemm_add_and_sum);
    tcase_add_test(tc, shared_weights_fold_separately);
    tcase_add_test(tc, quantize_dequantize_pairs_fuse_exactly);
    tcase_add_test(tc, per_axis_quantize_dequantize_pairs_fuse_exactly);
    tcase_add_test(tc, quantize_dequantize_pairs_take_over_their_input);
    tcase_add_test(tc, reshapes_view_their_input);
    tcase_add_test(tc, clip_and_hardswish_fuse_into_conv_bit_for_bit);
    tcase_add_test(tc, clip_fuses_into_gemm_add_sum_and_batchnorm);
    tcase_add_test(tc, clip_with_unknown_bounds_stays);
    tcase_add_test(tc, zero_pad_fuses_into_depthwise_conv);
    return mq_check_run(s, tc);
}
