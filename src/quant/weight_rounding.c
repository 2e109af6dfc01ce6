/*
 * GPTQ rounding of static quantization's weights (quant/weight_rounding.h): the pass that
 * measures each weight's input second moments, and the rounding itself.
 */
#include "quant/weight_rounding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/driver.h"
#include "interp/ops/vector_loop.h"
#include "interp/plan.h"
#include "quant/gptq.h"
#include "quant/graph.h"
#include "util/strmap.h"

/* Multiply-adds per sample and weight for the second moments; beyond, positions are sampled. */
#define WORK_PER_SAMPLE (1LL << 25)
/* Largest matrix per weight (doubles, all groups): beyond, the weight is rounded to nearest. */
#define MAX_CELLS (1LL << 23)
/* Rows beyond which the factor (cubic in the rows) costs more than it buys: rounded to nearest. */
#define MAX_ROWS 1024

enum site_kind { SITE_CONV, SITE_GEMM, SITE_MATMUL };

/*
 * One weight: its rows (what the layer sums over, per group) and columns (output channels
 * of the group).  The weight element of (group g, row r, column c) is at index_of().
 */
struct site {
    char *weight, *input;
    enum site_kind kind;
    int rank;
    int64_t dims[4], count;
    int64_t groups, rows, cols;     /* per group */
    int trans_a, trans_b;
    /* Conv: channels per group, kernel, strides, dilations, pads (1-D: height 1). */
    int64_t cg, kh, kw, sh, sw, dh, dw, pads[4];
    int auto_pad;                   /* 0 NOTSET, 1 VALID, 2 SAME_UPPER, 3 SAME_LOWER */
    double *h;                      /* groups x rows x rows; the GPTQ factors once finished */
    double *patch;                  /* rows: scratch */
    int64_t seen;
    int usable;
    /* The last integers handed out and the scales and zero points they were made with:
       the search rewrites the model again and again with the same ones. */
    float *last_scales, *last_w;
    int32_t *last_zps, *last_q;
    int last_n_ch;
};

struct mq_weight_rounding {
    struct site *sites;
    int n_sites;
    struct mq_strmap *by_weight;
    const struct mq_plan *plan;
};

static int oom(struct mq_error *err)
{
    return mq_error_code(err, MQ_ERR_MEMORY, "weight rounding: out of memory");
}

/* Conv geometry into s; 0 when this pass cannot describe it. */
static int describe_conv(const Onnx__NodeProto *node, struct site *s)
{
    int k = s->rank - 2;
    long long group = mq_node_attr_int(node, "group", 1);
    if (k < 1 || k > 2 || group < 1 || s->dims[0] % group)
        return 0;
    struct mq_conv_attrs ca;
    if (!mq_conv_attrs_read(node, k, &ca))
        return 0;
    int64_t kernel[2], *strides = ca.strides, *dil = ca.dilations, *pads = ca.pads;
    for (int d = 0; d < k; d++)
        kernel[d] = s->dims[2 + d];
    s->auto_pad = ca.auto_pad;
    /* 1-D as 2-D of height 1. */
    s->kh = k == 2 ? kernel[0] : 1;
    s->kw = kernel[k - 1];
    s->sh = k == 2 ? strides[0] : 1;
    s->sw = strides[k - 1];
    s->dh = k == 2 ? dil[0] : 1;
    s->dw = dil[k - 1];
    s->pads[0] = k == 2 ? pads[0] : 0;
    s->pads[1] = pads[k - 1];
    s->pads[2] = k == 2 ? pads[2] : 0;
    s->pads[3] = pads[2 * k - 1];
    s->cg = s->dims[1];
    s->groups = group;
    s->rows = s->cg * s->kh * s->kw;
    s->cols = s->dims[0] / group;
    return 1;
}

/* A site for node, when its weight is a float32 initializer this pass can describe. */
static int describe(const Onnx__NodeProto *node, const Onnx__TensorProto *w, struct site *s)
{
    const char *op = mq_str(node->op_type);
    s->kind = strcmp(op, "Conv") == 0 ? SITE_CONV : strcmp(op, "Gemm") == 0 ? SITE_GEMM
              : strcmp(op, "MatMul") == 0 ? SITE_MATMUL : -1;
    if ((int)s->kind < 0 || !w->has_data_type || w->data_type != MQ_DTYPE_FLOAT ||
        w->n_dims < 2 || w->n_dims > 4)
        return 0;
    s->rank = (int)w->n_dims;
    s->count = 1;
    for (int d = 0; d < s->rank; d++) {
        if (w->dims[d] <= 0)
            return 0;
        s->dims[d] = w->dims[d];
        s->count *= w->dims[d];
    }
    if (s->kind == SITE_CONV) {
        if (!describe_conv(node, s))
            return 0;
    } else {
        if (s->rank != 2)
            return 0;
        s->trans_a = s->kind == SITE_GEMM && mq_node_attr_int(node, "transA", 0) != 0;
        s->trans_b = s->kind == SITE_GEMM && mq_node_attr_int(node, "transB", 0) != 0;
        s->groups = 1;
        s->rows = s->dims[s->trans_b ? 1 : 0];
        s->cols = s->dims[s->trans_b ? 0 : 1];
    }
    return s->rows <= MAX_ROWS && s->rows <= MAX_CELLS / s->rows / s->groups;
}

static int64_t index_of(const struct site *s, int64_t g, int64_t r, int64_t c)
{
    if (s->kind == SITE_CONV)
        return (g * s->cols + c) * s->rows + r;
    return s->trans_b ? c * s->rows + r : r * s->cols + c;
}

/* The weight's output channel of column c of group g (its scale along the channel axis). */
static int64_t channel_of(const struct site *s, int64_t g, int64_t c)
{
    return g * s->cols + c;
}

static int channel_axis(const struct site *s)
{
    return s->kind == SITE_CONV ? 0 : s->trans_b ? 0 : 1;
}

static int collect_sites(struct mq_weight_rounding *r, const Onnx__GraphProto *g,
                         struct mq_error *err)
{
    struct mq_strmap *inits = mq_strmap_new(), *readers = mq_strmap_new();
    int rc = inits && readers ? MQ_OK : oom(err);
    for (size_t i = 0; rc == MQ_OK && i < g->n_initializer; i++)
        if (mq_strmap_put(inits, mq_str(g->initializer[i]->name), (int)i))
            rc = oom(err);
    /* How many node inputs read each initializer: a weight shared by two nodes is left alone. */
    for (size_t n = 0; rc == MQ_OK && n < g->n_node; n++)
        for (size_t j = 0; rc == MQ_OK && j < g->node[n]->n_input; j++) {
            const char *name = mq_str(g->node[n]->input[j]);
            int have = mq_strmap_get(readers, name);
            if (mq_strmap_get(inits, name) >= 0 && mq_strmap_put(readers, name, have < 0 ? 1 : have + 1))
                rc = oom(err);
        }
    r->sites = calloc(g->n_node + 1, sizeof *r->sites);
    if (rc == MQ_OK && !r->sites)
        rc = oom(err);
    for (size_t n = 0; rc == MQ_OK && n < g->n_node; n++) {
        const Onnx__NodeProto *node = g->node[n];
        if (node->n_input < 2)
            continue;
        const char *in = mq_str(node->input[0]), *wn = mq_str(node->input[1]);
        int wi = mq_strmap_get(inits, wn);
        if (!*in || wi < 0 || mq_strmap_get(inits, in) >= 0 || mq_strmap_get(readers, wn) != 1)
            continue;
        struct site *s = &r->sites[r->n_sites];
        memset(s, 0, sizeof *s);
        if (!describe(node, g->initializer[wi], s))
            continue;
        s->weight = strdup(wn);
        s->input = strdup(in);
        s->h = calloc((size_t)(s->groups * s->rows * s->rows), sizeof *s->h);
        s->patch = calloc((size_t)s->rows, sizeof *s->patch);
        if (!s->weight || !s->input || !s->h || !s->patch ||
            mq_strmap_put(r->by_weight, wn, r->n_sites)) {
            free(s->weight);
            free(s->input);
            free(s->h);
            free(s->patch);
            rc = oom(err);
            break;
        }
        s->usable = 1;
        r->n_sites++;
    }
    mq_strmap_free(inits);
    mq_strmap_free(readers);
    return rc;
}

/* Adds x x^T (upper triangle) to h [n, n]: the search's hottest loop, so compiled for AVX2
   too (each element's arithmetic is the same whichever runs: no reduction, no FMA). */
MQ_SIMD_CLONES static void add_outer(double *h, const double *x, int64_t n)
{
    for (int64_t a = 0; a < n; a++) {
        double xa = x[a];
        if (xa == 0.0)
            continue;
        double *row = h + a * n;
        for (int64_t b = a; b < n; b++)
            row[b] += xa * x[b];
    }
}

/* How many of `total` positions to visit so that one sample costs about WORK_PER_SAMPLE. */
static int64_t budget(const struct site *s, int64_t total)
{
    int64_t per = s->groups * (s->rows * (s->rows + 1) / 2);
    int64_t n = WORK_PER_SAMPLE / (per > 0 ? per : 1);
    if (n < 64)
        n = 64;
    return n < total ? n : total;
}

static void measure_conv(struct site *s, const struct mq_tensor *t)
{
    int spatial2 = s->rank == 4;
    if (t->rank != s->rank || t->dims[1] != s->cg * s->groups)
        return;
    int64_t n = t->dims[0], c = t->dims[1], ih = spatial2 ? t->dims[2] : 1,
            iw = t->dims[t->rank - 1], oh, ow, ph, pw;
    if (!mq_conv_output_dim(s->auto_pad, ih, s->kh, s->sh, s->dh, s->pads[0], s->pads[2], &oh,
                            &ph) ||
        !mq_conv_output_dim(s->auto_pad, iw, s->kw, s->sw, s->dw, s->pads[1], s->pads[3], &ow,
                            &pw))
        return;
    int64_t total = n * oh * ow, visit = budget(s, total);
    const float *x = t->data;
    for (int64_t v = 0; v < visit; v++) {
        int64_t p = visit == total ? v : v * total / visit;
        int64_t b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
        for (int64_t g = 0; g < s->groups; g++) {
            double *patch = s->patch;
            for (int64_t i = 0; i < s->cg; i++) {
                const float *plane = x + (b * c + g * s->cg + i) * ih * iw;
                for (int64_t ky = 0; ky < s->kh; ky++) {
                    int64_t y = oy * s->sh + ky * s->dh - ph;
                    for (int64_t kx = 0; kx < s->kw; kx++) {
                        int64_t xx = ox * s->sw + kx * s->dw - pw;
                        *patch++ = y >= 0 && y < ih && xx >= 0 && xx < iw ? plane[y * iw + xx] : 0.0;
                    }
                }
            }
            add_outer(s->h + g * s->rows * s->rows, s->patch, s->rows);
        }
    }
    s->seen += visit;
}

static void measure_rows(struct site *s, const struct mq_tensor *t)
{
    int64_t k = s->rows;
    const float *x = t->data;
    if (s->trans_a) {
        /* A [K, M]: column m is one input row. */
        if (t->rank != 2 || t->dims[0] != k)
            return;
        int64_t m = t->dims[1], visit = budget(s, m);
        for (int64_t v = 0; v < visit; v++) {
            int64_t col = visit == m ? v : v * m / visit;
            for (int64_t a = 0; a < k; a++)
                s->patch[a] = x[a * m + col];
            add_outer(s->h, s->patch, k);
        }
        s->seen += visit;
        return;
    }
    if (t->rank < 1 || t->dims[t->rank - 1] != k)
        return;
    int64_t total = t->count / k, visit = budget(s, total);
    for (int64_t v = 0; v < visit; v++) {
        int64_t row = visit == total ? v : v * total / visit;
        for (int64_t a = 0; a < k; a++)
            s->patch[a] = x[row * k + a];
        add_outer(s->h, s->patch, k);
    }
    s->seen += visit;
}

static int observe(struct mq_weight_rounding *r, const char *name, const struct mq_tensor *t)
{
    if (t->dtype != MQ_DTYPE_FLOAT || t->count == 0)
        return MQ_OK;
    /* Several nodes may read one tensor: every site is checked (the list is short). */
    for (int i = 0; i < r->n_sites; i++) {
        struct site *s = &r->sites[i];
        if (strcmp(s->input, name) != 0)
            continue;
        if (s->kind == SITE_CONV)
            measure_conv(s, t);
        else
            measure_rows(s, t);
    }
    return MQ_OK;
}

static int observe_produced(void *user, const struct mq_kernel_node *producer, const char *name,
                            const struct mq_tensor *value, struct mq_error *err)
{
    (void)producer;
    (void)err;
    return observe(user, name, value);
}

static int observe_inputs(void *user, int64_t sample, const struct mq_tensor *inputs,
                          int n_inputs, struct mq_error *err)
{
    struct mq_weight_rounding *r = user;
    (void)sample;
    (void)err;
    for (int k = 0; k < n_inputs; k++)
        observe(r, mq_str(mq_plan_input(r->plan, k)->name), &inputs[k]);
    return MQ_OK;
}

/* The second moments of each group become its GPTQ factor; a site without data is dropped. */
static int finish(struct mq_weight_rounding *r, struct mq_error *err)
{
    for (int i = 0; i < r->n_sites; i++) {
        struct site *s = &r->sites[i];
        free(s->patch);
        s->patch = NULL;
        int64_t n = s->rows;
        double *u = s->seen > 0 ? malloc((size_t)(n * n) * sizeof *u) : NULL;
        if (s->seen > 0 && !u)
            return oom(err);
        for (int64_t g = 0; s->seen > 0 && g < s->groups && s->usable; g++) {
            double *h = s->h + g * n * n;
            for (int64_t a = 0; a < n; a++)
                for (int64_t b = 0; b < a; b++)
                    h[a * n + b] = h[b * n + a];
            struct mq_error ignored;
            if (mq_gptq_factor(h, n, u, &ignored) == MQ_OK)
                memcpy(h, u, (size_t)(n * n) * sizeof *u);
            else
                s->usable = 0;   /* rounded to nearest */
        }
        free(u);
        if (s->seen == 0)
            s->usable = 0;
    }
    return MQ_OK;
}

int mq_weight_rounding_collect(const struct mq_plan *plan, const struct mq_calib_source *source,
                               const Onnx__ModelProto *model, struct mq_weight_rounding **out,
                               struct mq_error *err)
{
    *out = NULL;
    struct mq_weight_rounding *r = calloc(1, sizeof *r);
    if (!r)
        return oom(err);
    r->plan = plan;
    r->by_weight = mq_strmap_new();
    int rc = r->by_weight ? MQ_OK : oom(err);
    if (rc == MQ_OK && model->graph)
        rc = collect_sites(r, model->graph, err);
    void *workers[1] = {r};
    struct mq_sample_pass pass = {
        .plan = plan,
        .source = source,
        .jobs = 1,
        .workers = workers,
        .inputs = observe_inputs,
        .observe = observe_produced,
        .label = "weight rounding, sample",
    };
    int64_t done;
    if (rc == MQ_OK && r->n_sites)
        rc = mq_sample_pass_run(&pass, &done, err);
    if (rc == MQ_OK)
        rc = finish(r, err);
    if (rc) {
        mq_weight_rounding_free(r);
        return rc;
    }
    *out = r;
    return MQ_OK;
}

void mq_weight_rounding_free(struct mq_weight_rounding *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_sites; i++) {
        free(r->sites[i].weight);
        free(r->sites[i].input);
        free(r->sites[i].h);
        free(r->sites[i].patch);
        free(r->sites[i].last_scales);
        free(r->sites[i].last_w);
        free(r->sites[i].last_zps);
        free(r->sites[i].last_q);
    }
    free(r->sites);
    mq_strmap_free(r->by_weight);
    free(r);
}

int mq_weight_rounding_count(const struct mq_weight_rounding *r)
{
    int n = 0;
    for (int i = 0; r && i < r->n_sites; i++)
        n += r->sites[i].usable;
    return n;
}

int mq_weight_rounding_apply(const struct mq_weight_rounding *r, const char *name,
                             const struct mq_tensor *w, int axis, const float *scales,
                             const int32_t *zero_points, int n_ch, struct mq_qrange full,
                             int32_t *q)
{
    int i = r ? mq_strmap_get(r->by_weight, name) : -1;
    if (i < 0)
        return 0;
    const struct site *s = &r->sites[i];
    int same = s->usable && w->dtype == MQ_DTYPE_FLOAT && w->rank == s->rank &&
               w->count == s->count;
    for (int d = 0; same && d < s->rank; d++)
        same = w->dims[d] == s->dims[d];
    int64_t channels = s->groups * s->cols;
    if (!same || !(n_ch == 1 || (axis == channel_axis(s) && n_ch == channels)))
        return 0;
    /* The same values, scales and zero points as last time: the same integers. */
    struct site *memo = (struct site *)s;
    if (s->last_q && s->last_n_ch == n_ch &&
        memcmp(s->last_w, w->data, (size_t)s->count * sizeof *s->last_w) == 0 &&
        memcmp(s->last_scales, scales, (size_t)n_ch * sizeof *scales) == 0 &&
        memcmp(s->last_zps, zero_points, (size_t)n_ch * sizeof *zero_points) == 0) {
        memcpy(q, s->last_q, (size_t)s->count * sizeof *q);
        return 1;
    }
    int64_t rows = s->rows, cols = s->cols;
    double *wg = malloc((size_t)(rows * cols) * sizeof *wg);
    double *e = malloc((size_t)cols * sizeof *e);
    if (!wg || !e) {
        free(wg);
        free(e);
        return -1;
    }
    const float *x = w->data;
    for (int64_t g = 0; g < s->groups; g++) {
        const double *u = s->h + g * rows * rows;
        for (int64_t a = 0; a < rows; a++)
            for (int64_t c = 0; c < cols; c++)
                wg[a * cols + c] = x[index_of(s, g, a, c)];
        for (int64_t a = 0; a < rows; a++) {
            double d = u[a * rows + a];
            for (int64_t c = 0; c < cols; c++) {
                int64_t ch = n_ch > 1 ? channel_of(s, g, c) : 0;
                struct mq_qparams p = {scales[ch], zero_points[ch]};
                int32_t v = mq_quantize_value((float)wg[a * cols + c], p, full);
                q[index_of(s, g, a, c)] = v;
                e[c] = (wg[a * cols + c] - (double)mq_dequantize_value(v, p)) / d;
            }
            for (int64_t b = a + 1; b < rows; b++) {
                double f = u[b * rows + a];   /* U[a][b] */
                if (f == 0.0)
                    continue;
                double *row = wg + b * cols;
                for (int64_t c = 0; c < cols; c++)
                    row[c] -= e[c] * f;
            }
        }
    }
    free(wg);
    free(e);
    free(memo->last_scales);
    free(memo->last_w);
    free(memo->last_zps);
    free(memo->last_q);
    memo->last_scales = malloc((size_t)n_ch * sizeof *scales);
    memo->last_w = malloc((size_t)s->count * sizeof *memo->last_w);
    memo->last_zps = malloc((size_t)n_ch * sizeof *zero_points);
    memo->last_q = malloc((size_t)s->count * sizeof *q);
    if (!memo->last_scales || !memo->last_w || !memo->last_zps || !memo->last_q) {
        free(memo->last_scales);
        free(memo->last_w);
        free(memo->last_zps);
        free(memo->last_q);
        memo->last_scales = NULL;
        memo->last_w = NULL;
        memo->last_zps = NULL;
        memo->last_q = NULL;
        return 1;   /* no memo: the next call computes again */
    }
    memcpy(memo->last_scales, scales, (size_t)n_ch * sizeof *scales);
    memcpy(memo->last_w, w->data, (size_t)s->count * sizeof *memo->last_w);
    memcpy(memo->last_zps, zero_points, (size_t)n_ch * sizeof *zero_points);
    memcpy(memo->last_q, q, (size_t)s->count * sizeof *q);
    memo->last_n_ch = n_ch;
    return 1;
}
