/*
 * Recurrent layers: RNN, GRU, LSTM (forward, reverse, bidirectional).
 *
 * Each direction first projects the whole input sequence with one
 * cblas_sgemm (X * W^T, biases folded in), then walks the time steps: one
 * sgemm of the hidden state by R^T per step, then the gate arithmetic per
 * batch row.  With sequence_lens, batch row b runs only its first len[b]
 * steps (the reverse direction starts at step len[b] - 1); its Y rows past
 * that stay zero and its Y_h/Y_c are the state after its last step (the
 * initial state when len[b] is 0).
 *
 * Everything computes in float32; double, float16 and bfloat16 inputs are
 * converted on the way in and out.
 */
#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "core/tensor.h"

#define NODE_FMT "node '%s' (%s): "
#define NODE_ARGS node->name, node->op_type

enum cell_kind { CELL_RNN, CELL_GRU, CELL_LSTM };

enum act_kind {
    ACT_RELU,
    ACT_TANH,
    ACT_SIGMOID,
    ACT_AFFINE,
    ACT_LEAKY_RELU,
    ACT_THRESHOLDED_RELU,
    ACT_SCALED_TANH,
    ACT_HARD_SIGMOID,
    ACT_ELU,
    ACT_SOFTSIGN,
    ACT_SOFTPLUS,
};

struct activation {
    enum act_kind kind;
    float alpha, beta;
};

/* Names as the spec spells them; matched without regard to case, as onnxruntime does. */
static const struct {
    const char *name;
    enum act_kind kind;
    int uses_alpha, uses_beta;
    float alpha, beta; /* defaults of the corresponding ONNX operators */
} act_table[] = {
    {"Relu", ACT_RELU, 0, 0, 0.0f, 0.0f},
    {"Tanh", ACT_TANH, 0, 0, 0.0f, 0.0f},
    {"Sigmoid", ACT_SIGMOID, 0, 0, 0.0f, 0.0f},
    {"Affine", ACT_AFFINE, 1, 1, 1.0f, 0.0f},
    {"LeakyRelu", ACT_LEAKY_RELU, 1, 0, 0.01f, 0.0f},
    {"ThresholdedRelu", ACT_THRESHOLDED_RELU, 1, 0, 1.0f, 0.0f},
    {"ScaledTanh", ACT_SCALED_TANH, 1, 1, 1.0f, 1.0f},
    {"HardSigmoid", ACT_HARD_SIGMOID, 1, 1, 0.2f, 0.5f},
    {"Elu", ACT_ELU, 1, 0, 1.0f, 0.0f},
    {"Softsign", ACT_SOFTSIGN, 0, 0, 0.0f, 0.0f},
    {"Softplus", ACT_SOFTPLUS, 0, 0, 0.0f, 0.0f},
};

#define MAX_ACTS 3 /* per direction: LSTM's f, g, h */

struct rnn_state {
    enum cell_kind cell;
    int gates;             /* 1, 3 or 4 */
    int n_acts;            /* activations per direction: 1, 2 or 3 */
    int num_directions;
    int reverse;           /* direction == "reverse" */
    int layout;
    int64_t hidden_size;   /* -1: take it from R */
    int has_clip;
    float clip;
    int linear_before_reset;
    int input_forget;
    struct activation act[2][MAX_ACTS];
};

static int strieq(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int rnn_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct rnn_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, NODE_FMT "out of memory", NODE_ARGS);
    int rc = MQ_OK;
    static const enum act_kind defaults[3][MAX_ACTS] = {
        {ACT_TANH, ACT_TANH, ACT_TANH},
        {ACT_SIGMOID, ACT_TANH, ACT_TANH},
        {ACT_SIGMOID, ACT_TANH, ACT_TANH},
    };
    if (strcmp(node->op_type, "LSTM") == 0) {
        s->cell = CELL_LSTM;
        s->gates = 4;
        s->n_acts = 3;
    } else if (strcmp(node->op_type, "GRU") == 0) {
        s->cell = CELL_GRU;
        s->gates = 3;
        s->n_acts = 2;
    } else {
        s->cell = CELL_RNN;
        s->gates = 1;
        s->n_acts = 1;
    }
    char buf[32];
    const char *dir = mq_attr_string(node, "direction", "forward", buf, sizeof buf);
    if (strcmp(dir, "forward") == 0) {
        s->num_directions = 1;
    } else if (strcmp(dir, "reverse") == 0) {
        s->num_directions = 1;
        s->reverse = 1;
    } else if (strcmp(dir, "bidirectional") == 0) {
        s->num_directions = 2;
    } else {
        rc = mq_error_set(err, NODE_FMT "direction '%s' is not forward, reverse or "
                          "bidirectional", NODE_ARGS, dir);
        goto fail;
    }
    s->layout = node->opset >= 14 ? (int)mq_attr_int(node, "layout", 0) : 0;
    if (s->layout != 0 && s->layout != 1) {
        rc = mq_error_set(err, NODE_FMT "layout %d is not 0 or 1", NODE_ARGS, s->layout);
        goto fail;
    }
    s->hidden_size = mq_attr_int(node, "hidden_size", -1);
    if (mq_attr_has(node, "hidden_size") && s->hidden_size < 1) {
        rc = mq_error_set(err, NODE_FMT "hidden_size %lld must be >= 1", NODE_ARGS,
                          (long long)s->hidden_size);
        goto fail;
    }
    s->has_clip = mq_attr_has(node, "clip");
    s->clip = mq_attr_float(node, "clip", 0.0f);
    if (s->has_clip && !(s->clip > 0.0f)) {
        rc = mq_error_set(err, NODE_FMT "clip %g must be positive", NODE_ARGS, (double)s->clip);
        goto fail;
    }
    /* linear_before_reset arrived with GRU-3. */
    s->linear_before_reset = s->cell == CELL_GRU && node->opset >= 3 &&
                             mq_attr_int(node, "linear_before_reset", 0) != 0;
    s->input_forget = s->cell == CELL_LSTM && mq_attr_int(node, "input_forget", 0) != 0;

    const Onnx__AttributeProto *acts = mq_attr_find(node, "activations");
    if (acts && acts->has_type && acts->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS) {
        rc = mq_error_set(err, NODE_FMT "activations must be a list of strings", NODE_ARGS);
        goto fail;
    }
    const float *alphas = NULL, *betas = NULL;
    int64_t n_alpha = mq_attr_floats(node, "activation_alpha", &alphas);
    int64_t n_beta = mq_attr_floats(node, "activation_beta", &betas);
    int64_t ai = 0, bi = 0;
    size_t n_given = acts ? acts->n_strings : 0;
    int total = s->n_acts * s->num_directions;
    /* A bidirectional node may list one direction's functions; they apply to both. */
    if (n_given && n_given != (size_t)total &&
        !(s->num_directions == 2 && n_given == (size_t)s->n_acts)) {
        rc = mq_error_set(err, NODE_FMT "activations lists %zu functions, expected %d", NODE_ARGS,
                          n_given, total);
        goto fail;
    }
    for (int i = 0; i < total; i++) {
        int d = i / s->n_acts, k = i % s->n_acts;
        struct activation *a = &s->act[d][k];
        if (!n_given) {
            a->kind = defaults[s->cell][k];
            continue;
        }
        const ProtobufCBinaryData *name = &acts->strings[(size_t)i % n_given];
        size_t t;
        for (t = 0; t < sizeof act_table / sizeof act_table[0]; t++)
            if (strieq(act_table[t].name, (const char *)name->data, name->len))
                break;
        if (t == sizeof act_table / sizeof act_table[0]) {
            rc = mq_error_set(err, NODE_FMT "activation '%.*s' is not one the spec lists",
                              NODE_ARGS, (int)(name->len > 64 ? 64 : name->len),
                              (const char *)name->data);
            goto fail;
        }
        a->kind = act_table[t].kind;
        a->alpha = act_table[t].alpha;
        a->beta = act_table[t].beta;
        /* activation_alpha/beta are consumed in order by the functions that take them. */
        if (act_table[t].uses_alpha && ai < n_alpha)
            a->alpha = alphas[ai++];
        if (act_table[t].uses_beta && bi < n_beta)
            a->beta = betas[bi++];
    }
    node->state = s;
    return MQ_OK;
fail:
    free(s);
    return rc;
}

static void rnn_destroy(void *state) { free(state); }

/* Clip (when set) then the activation, over a whole gate vector: the switch stays outside. */
static void activate(const struct activation *a, int has_clip, float clip, float *v, int64_t n)
{
    if (has_clip)
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] < -clip ? -clip : (v[i] > clip ? clip : v[i]);
    float al = a->alpha, be = a->beta;
    switch (a->kind) {
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > 0.0f ? v[i] : 0.0f;
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            v[i] = tanhf(v[i]);
        break;
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            v[i] = 1.0f / (1.0f + expf(-v[i]));
        break;
    case ACT_AFFINE:
        for (int64_t i = 0; i < n; i++)
            v[i] = al * v[i] + be;
        break;
    case ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] >= 0.0f ? v[i] : al * v[i];
        break;
    case ACT_THRESHOLDED_RELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > al ? v[i] : 0.0f;
        break;
    case ACT_SCALED_TANH:
        for (int64_t i = 0; i < n; i++)
            v[i] = al * tanhf(be * v[i]);
        break;
    case ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float t = al * v[i] + be;
            v[i] = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
        }
        break;
    case ACT_ELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] >= 0.0f ? v[i] : al * (expf(v[i]) - 1.0f);
        break;
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] / (1.0f + fabsf(v[i]));
        break;
    case ACT_SOFTPLUS:
        /* log(1 + e^x) without overflowing for large x. */
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > 20.0f ? v[i] : log1pf(expf(v[i]));
        break;
    }
}

/* ---- tensors in and out ----------------------------------------------------------- */

static int is_rnn_float(int dtype)
{
    return dtype == MQ_DTYPE_FLOAT || dtype == MQ_DTYPE_DOUBLE || dtype == MQ_DTYPE_FLOAT16 ||
           dtype == MQ_DTYPE_BFLOAT16;
}

/* t as float32: its own data, or a converted copy in *scratch. */
static int float_view(const struct mq_kernel_node *node, const struct mq_tensor *t,
                      struct mq_tensor *scratch, const float **out, struct mq_error *err)
{
    if (t->dtype == MQ_DTYPE_FLOAT) {
        *out = t->data;
        return MQ_OK;
    }
    if (mq_tensor_alloc(scratch, MQ_DTYPE_FLOAT, t->rank, t->dims, node->name, err))
        return MQ_ERR;
    float *d = scratch->data;
    switch (t->dtype) {
    case MQ_DTYPE_DOUBLE: {
        const double *s = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = (float)s[i];
        break;
    }
    case MQ_DTYPE_FLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = mq_half_to_float(s[i]);
        break;
    }
    case MQ_DTYPE_BFLOAT16: {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->count; i++)
            d[i] = mq_bfloat16_to_float(s[i]);
        break;
    }
    default: break;
    }
    *out = d;
    return MQ_OK;
}

static void store_output(struct mq_tensor *out, const float *src)
{
    switch (out->dtype) {
    case MQ_DTYPE_DOUBLE: {
        double *d = out->data;
        for (int64_t i = 0; i < out->count; i++)
            d[i] = src[i];
        break;
    }
    case MQ_DTYPE_FLOAT16: {
        uint16_t *d = out->data;
        for (int64_t i = 0; i < out->count; i++)
            d[i] = mq_float_to_half(src[i]);
        break;
    }
    case MQ_DTYPE_BFLOAT16: {
        uint16_t *d = out->data;
        for (int64_t i = 0; i < out->count; i++)
            d[i] = mq_float_to_bfloat16(src[i]);
        break;
    }
    default: break;
    }
}

static int check_shape(const struct mq_kernel_node *node, const struct mq_tensor *t,
                       const char *what, int rank, const int64_t *dims, struct mq_error *err)
{
    char have[128], want[128];
    int ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = t->dims[i] == dims[i];
    if (!ok)
        return mq_error_set(err, NODE_FMT "input '%s' has shape %s, expected %s", NODE_ARGS, what,
                            mq_shape_format(t->rank, t->dims, have, sizeof have),
                            mq_shape_format(rank, dims, want, sizeof want));
    return MQ_OK;
}

/* ---- the recurrence ------------------------------------------------------------------ */

struct rnn_dims {
    /* steps, batch, input size (not `I`: complex.h defines it), hidden, gates, directions */
    int64_t S, B, isz, H, G, D;
    int layout;
};

/* Row of X (and of the projection) holding time t of batch b. */
static inline int64_t x_row(const struct rnn_dims *d, int64_t t, int64_t b)
{
    return d->layout == 0 ? t * d->B + b : b * d->S + t;
}

/* The time a sequence of length len reaches at this step (counted from its end when reverse);
   -1 when the sequence has ended. */
static inline int64_t step_time(int64_t len, int64_t step, int reverse)
{
    if (step >= len)
        return -1;
    return reverse ? len - 1 - step : step;
}

/* Offset of Y[t, dir, b, :] (layout 0) or Y[b, t, dir, :] (layout 1). */
static inline int64_t y_off(const struct rnn_dims *d, int64_t t, int64_t dir, int64_t b)
{
    return d->layout == 0 ? ((t * d->D + dir) * d->B + b) * d->H
                          : ((b * d->S + t) * d->D + dir) * d->H;
}

/* Offset of state [dir, b, :] (layout 0) or [b, dir, :] (layout 1). */
static inline int64_t state_off(const struct rnn_dims *d, int64_t dir, int64_t b)
{
    return d->layout == 0 ? (dir * d->B + b) * d->H : (b * d->D + dir) * d->H;
}

/* Inputs of one run as float, and where the outputs go. */
struct rnn_io {
    const float *X, *W, *R, *Bias, *init_h, *init_c, *P;
    const int64_t *lens;
    float *Y, *Y_h, *Y_c; /* NULL when not requested */
};

/* Scratch of one direction, sized by the caller. */
struct rnn_work {
    float *xw;    /* [S*B, G*H] input projection plus folded biases */
    float *hr;    /* [B, G*H] state times R^T */
    float *h, *c; /* [B, H] */
    float *tmp;   /* [B, H] GRU: r * h_prev */
    float *hrh;   /* [B, H] GRU: (r * h_prev) * Rh^T */
    float *bias;  /* [G*H] folded into xw */
    float *rbh;   /* [H] GRU with linear_before_reset: Rbh stays inside r * (...) */
};

static void sgemm_nt(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                     const float *b, int64_t ldb, float *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++)
            memset(c + i * ldc, 0, (size_t)n * sizeof *c);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a,
                (int)lda, b, (int)ldb, 0.0f, c, (int)ldc);
}

static void run_direction(const struct rnn_state *s, const struct rnn_dims *d, int dir,
                          int reverse, const struct rnn_io *io, const struct rnn_work *w)
{
    const int64_t H = d->H, G = d->G, GH = G * H, B = d->B;
    const float *W = io->W + dir * GH * d->isz;
    const float *R = io->R + dir * GH * H;
    const struct activation *act = s->act[dir];

    /* Biases: Wb + Rb folded into the projection, except GRU's Rbh under linear_before_reset. */
    for (int64_t i = 0; i < GH; i++) {
        float wb = io->Bias ? io->Bias[dir * 2 * GH + i] : 0.0f;
        float rb = io->Bias ? io->Bias[dir * 2 * GH + GH + i] : 0.0f;
        int keep_rb = s->linear_before_reset && i >= 2 * H;
        w->bias[i] = wb + (keep_rb ? 0.0f : rb);
        if (keep_rb)
            w->rbh[i - 2 * H] = rb;
    }
    sgemm_nt(d->S * B, GH, d->isz, io->X, d->isz, W, d->isz, w->xw, GH);
    for (int64_t r = 0; r < d->S * B; r++) {
        float *row = w->xw + r * GH;
        for (int64_t i = 0; i < GH; i++)
            row[i] += w->bias[i];
    }
    for (int64_t b = 0; b < B; b++) {
        for (int64_t j = 0; j < H; j++) {
            w->h[b * H + j] = io->init_h ? io->init_h[state_off(d, dir, b) + j] : 0.0f;
            if (s->cell == CELL_LSTM)
                w->c[b * H + j] = io->init_c ? io->init_c[state_off(d, dir, b) + j] : 0.0f;
        }
    }
    const float *P = io->P ? io->P + dir * 3 * H : NULL;
    int64_t max_len = 0;
    for (int64_t b = 0; b < B; b++)
        max_len = io->lens[b] > max_len ? io->lens[b] : max_len;

    for (int64_t step = 0; step < max_len; step++) {
        /* GRU without linear_before_reset multiplies by Rh only after the reset gate. */
        int64_t ncols = (s->cell == CELL_GRU && !s->linear_before_reset) ? 2 * H : GH;
        sgemm_nt(B, ncols, H, w->h, H, R, H, w->hr, GH);
        for (int64_t b = 0; b < B; b++) {
            int64_t t = step_time(io->lens[b], step, reverse);
            if (t < 0)
                continue;
            const float *xw = w->xw + x_row(d, t, b) * GH;
            float *g = w->hr + b * GH;
            float *h = w->h + b * H;
            if (s->cell == CELL_RNN) {
                for (int64_t j = 0; j < H; j++)
                    g[j] += xw[j];
                activate(&act[0], s->has_clip, s->clip, g, H);
                memcpy(h, g, (size_t)H * sizeof *h);
            } else if (s->cell == CELL_LSTM) {
                /* Gate blocks in W/R/B order: i, o, f, c. */
                float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
                float *c = w->c + b * H;
                for (int64_t j = 0; j < GH; j++)
                    g[j] += xw[j];
                if (P)
                    for (int64_t j = 0; j < H; j++) {
                        gi[j] += P[j] * c[j];
                        gf[j] += P[2 * H + j] * c[j];
                    }
                activate(&act[0], s->has_clip, s->clip, gi, H);
                if (s->input_forget)
                    for (int64_t j = 0; j < H; j++)
                        gf[j] = 1.0f - gi[j];
                else
                    activate(&act[0], s->has_clip, s->clip, gf, H);
                activate(&act[1], s->has_clip, s->clip, gc, H);
                for (int64_t j = 0; j < H; j++)
                    c[j] = gf[j] * c[j] + gi[j] * gc[j];
                if (P)
                    for (int64_t j = 0; j < H; j++)
                        go[j] += P[H + j] * c[j];
                activate(&act[0], s->has_clip, s->clip, go, H);
                /* h(C) goes through the scratch row so c keeps the raw cell state. */
                float *hc = w->tmp + b * H;
                memcpy(hc, c, (size_t)H * sizeof *hc);
                activate(&act[2], 0, 0.0f, hc, H);
                for (int64_t j = 0; j < H; j++)
                    h[j] = go[j] * hc[j];
            } else {
                /* Gate blocks z, r, h; z and r now, the candidate after the Rh product. */
                float *gz = g, *gr = g + H;
                for (int64_t j = 0; j < 2 * H; j++)
                    g[j] += xw[j];
                activate(&act[0], s->has_clip, s->clip, gz, 2 * H);
                if (!s->linear_before_reset) {
                    float *tmp = w->tmp + b * H;
                    for (int64_t j = 0; j < H; j++)
                        tmp[j] = gr[j] * h[j];
                    continue;
                }
                float *gh = g + 2 * H;
                for (int64_t j = 0; j < H; j++)
                    gh[j] = xw[2 * H + j] + gr[j] * (gh[j] + w->rbh[j]);
                activate(&act[1], s->has_clip, s->clip, gh, H);
                for (int64_t j = 0; j < H; j++)
                    h[j] = (1.0f - gz[j]) * gh[j] + gz[j] * h[j];
            }
            if (io->Y)
                memcpy(io->Y + y_off(d, t, dir, b), h, (size_t)H * sizeof *h);
        }
        if (s->cell != CELL_GRU || s->linear_before_reset)
            continue;
        sgemm_nt(B, H, H, w->tmp, H, R + 2 * H * H, H, w->hrh, H);
        for (int64_t b = 0; b < B; b++) {
            int64_t t = step_time(io->lens[b], step, reverse);
            if (t < 0)
                continue;
            const float *xw = w->xw + x_row(d, t, b) * GH;
            float *g = w->hr + b * GH;
            float *gz = g, *gh = g + 2 * H;
            float *h = w->h + b * H;
            const float *hrh = w->hrh + b * H;
            for (int64_t j = 0; j < H; j++)
                gh[j] = xw[2 * H + j] + hrh[j];
            activate(&act[1], s->has_clip, s->clip, gh, H);
            for (int64_t j = 0; j < H; j++)
                h[j] = (1.0f - gz[j]) * gh[j] + gz[j] * h[j];
            if (io->Y)
                memcpy(io->Y + y_off(d, t, dir, b), h, (size_t)H * sizeof *h);
        }
    }
    for (int64_t b = 0; b < B; b++) {
        if (io->Y_h)
            memcpy(io->Y_h + state_off(d, dir, b), w->h + b * H, (size_t)H * sizeof(float));
        if (io->Y_c)
            memcpy(io->Y_c + state_off(d, dir, b), w->c + b * H, (size_t)H * sizeof(float));
    }
}

static int output_wanted(const struct mq_kernel_node *node, int i, int n_outputs)
{
    return i < n_outputs && i < (int)node->proto->n_output &&
           mq_str(node->proto->output[i])[0] != '\0';
}

static int rnn_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct rnn_state *s = node->state;
    const struct mq_tensor *in[8] = {0};
    for (int i = 0; i < 8 && i < n_inputs; i++)
        in[i] = inputs[i];
    const struct mq_tensor *X = in[0], *W = in[1], *R = in[2], *Bt = in[3], *lens_t = in[4],
                           *h0 = in[5];
    const struct mq_tensor *c0 = s->cell == CELL_LSTM ? in[6] : NULL;
    const struct mq_tensor *P = s->cell == CELL_LSTM ? in[7] : NULL;
    if (!X || !W || !R)
        return mq_error_set(err, NODE_FMT "inputs X, W and R are required", NODE_ARGS);
    const struct mq_tensor *floats[] = {X, W, R, Bt, h0, c0, P};
    static const char *const names[] = {"X", "W", "R", "B", "initial_h", "initial_c", "P"};
    for (int i = 0; i < 7; i++) {
        if (!floats[i])
            continue;
        if (!is_rnn_float(floats[i]->dtype))
            return mq_error_set(err, NODE_FMT "input '%s' has type %s, expected a float type",
                                NODE_ARGS, names[i], mq_dtype_name(floats[i]->dtype));
        if (floats[i]->dtype != X->dtype)
            return mq_error_set(err, NODE_FMT "input '%s' has type %s but X has %s", NODE_ARGS,
                                names[i], mq_dtype_name(floats[i]->dtype),
                                mq_dtype_name(X->dtype));
    }
    char sh[128];
    if (X->rank != 3)
        return mq_error_set(err, NODE_FMT "input 'X' has shape %s, expected rank 3", NODE_ARGS,
                            mq_shape_format(X->rank, X->dims, sh, sizeof sh));
    if (R->rank != 3)
        return mq_error_set(err, NODE_FMT "input 'R' has shape %s, expected rank 3", NODE_ARGS,
                            mq_shape_format(R->rank, R->dims, sh, sizeof sh));
    struct rnn_dims d;
    d.layout = s->layout;
    d.S = s->layout == 0 ? X->dims[0] : X->dims[1];
    d.B = s->layout == 0 ? X->dims[1] : X->dims[0];
    d.isz = X->dims[2];
    d.H = s->hidden_size > 0 ? s->hidden_size : R->dims[2];
    d.G = s->gates;
    d.D = s->num_directions;
    if (d.H < 1)
        return mq_error_set(err, NODE_FMT "hidden size is 0", NODE_ARGS);
    if (d.H > INT32_MAX / d.G || d.isz > INT32_MAX || d.S * d.B > INT32_MAX)
        return mq_error_set(err, NODE_FMT "dimensions exceed the BLAS limit", NODE_ARGS);
    int64_t GH = d.G * d.H;
    if (check_shape(node, W, "W", 3, (const int64_t[]){d.D, GH, d.isz}, err) ||
        check_shape(node, R, "R", 3, (const int64_t[]){d.D, GH, d.H}, err) ||
        (Bt && check_shape(node, Bt, "B", 2, (const int64_t[]){d.D, 2 * GH}, err)) ||
        (P && check_shape(node, P, "P", 2, (const int64_t[]){d.D, 3 * d.H}, err)))
        return MQ_ERR;
    const int64_t state_dims[2][3] = {{d.D, d.B, d.H}, {d.B, d.D, d.H}};
    if ((h0 && check_shape(node, h0, "initial_h", 3, state_dims[d.layout], err)) ||
        (c0 && check_shape(node, c0, "initial_c", 3, state_dims[d.layout], err)))
        return MQ_ERR;
    if (lens_t) {
        if (lens_t->dtype != MQ_DTYPE_INT32 && lens_t->dtype != MQ_DTYPE_INT64)
            return mq_error_set(err, NODE_FMT "sequence_lens has type %s, expected int32",
                                NODE_ARGS, mq_dtype_name(lens_t->dtype));
        if (check_shape(node, lens_t, "sequence_lens", 1, (const int64_t[]){d.B}, err))
            return MQ_ERR;
    }

    int n_out = s->cell == CELL_LSTM ? 3 : 2;
    int want[3] = {0};
    for (int i = 0; i < n_out; i++)
        want[i] = output_wanted(node, i, n_outputs);
    int64_t y_dims[2][4] = {{d.S, d.D, d.B, d.H}, {d.B, d.S, d.D, d.H}};
    for (int i = 0; i < n_out; i++) {
        if (!want[i])
            continue;
        if (i == 0 ? mq_tensor_alloc(&outputs[0], X->dtype, 4, y_dims[d.layout], node->name, err)
                   : mq_tensor_alloc(&outputs[i], X->dtype, 3, state_dims[d.layout], node->name,
                                     err))
            return MQ_ERR;
    }

    struct mq_tensor conv[7] = {{0}}, lens = {0}, work = {0}, outf[3] = {{0}};
    const float *fp[7] = {0};
    struct rnn_io io = {0};
    int rc = MQ_ERR;
    for (int i = 0; i < 7; i++)
        if (floats[i] && float_view(node, floats[i], &conv[i], &fp[i], err))
            goto done;
    io.X = fp[0];
    io.W = fp[1];
    io.R = fp[2];
    io.Bias = fp[3];
    io.init_h = fp[4];
    io.init_c = fp[5];
    io.P = fp[6];
    if (mq_tensor_alloc(&lens, MQ_DTYPE_INT64, 1, &d.B, node->name, err))
        goto done;
    int64_t *lv = lens.data;
    for (int64_t b = 0; b < d.B; b++) {
        lv[b] = lens_t ? mq_tensor_get_int64(lens_t, b) : d.S;
        if (lv[b] < 0 || lv[b] > d.S) {
            rc = mq_error_set(err, NODE_FMT "sequence_lens[%lld] = %lld is outside [0, %lld]",
                              NODE_ARGS, (long long)b, (long long)lv[b], (long long)d.S);
            goto done;
        }
    }
    io.lens = lv;
    float **dst[3] = {&io.Y, &io.Y_h, &io.Y_c};
    for (int i = 0; i < n_out; i++) {
        if (!want[i])
            continue;
        if (X->dtype == MQ_DTYPE_FLOAT) {
            *dst[i] = outputs[i].data;
        } else {
            if (mq_tensor_alloc(&outf[i], MQ_DTYPE_FLOAT, outputs[i].rank, outputs[i].dims,
                                node->name, err))
                goto done;
            *dst[i] = outf[i].data;
        }
    }
    /* One scratch block: xw, hr, h, c, tmp, hrh, bias, rbh. */
    int64_t SB = d.S * d.B, BH = d.B * d.H;
    int64_t sizes[8] = {SB * GH, d.B * GH, BH, BH, BH, BH, GH, d.H};
    int64_t total = 0;
    for (int i = 0; i < 8; i++) {
        if (sizes[i] > (INT64_MAX / 8) - total) {
            rc = mq_error_set(err, NODE_FMT "scratch size overflows", NODE_ARGS);
            goto done;
        }
        total += sizes[i];
    }
    if (mq_tensor_alloc(&work, MQ_DTYPE_FLOAT, 1, &total, node->name, err))
        goto done;
    float *p = work.data;
    struct rnn_work wk;
    float **slots[8] = {&wk.xw, &wk.hr, &wk.h, &wk.c, &wk.tmp, &wk.hrh, &wk.bias, &wk.rbh};
    for (int i = 0; i < 8; i++) {
        *slots[i] = p;
        p += sizes[i];
    }
    for (int dir = 0; dir < d.D; dir++)
        run_direction(s, &d, dir, dir == 1 || s->reverse, &io, &wk);
    for (int i = 0; i < n_out; i++)
        if (want[i] && X->dtype != MQ_DTYPE_FLOAT)
            store_output(&outputs[i], outf[i].data);
    rc = MQ_OK;
done:
    for (int i = 0; i < 7; i++)
        mq_tensor_free(&conv[i]);
    for (int i = 0; i < 3; i++)
        mq_tensor_free(&outf[i]);
    mq_tensor_free(&lens);
    mq_tensor_free(&work);
    return rc;
}

/*
 * Version 1 had `output_sequence` (outputs are produced when named, so it is
 * not needed), 7 dropped it, 14 added `layout`, 22 added bfloat16 (all types
 * are accepted throughout).  GRU-3 added linear_before_reset.
 */
const struct mq_kernel mq_kernels_rnn[] = {
    {"", "RNN", 1, 6, rnn_prepare, rnn_run, rnn_destroy},
    {"", "RNN", 7, 13, rnn_prepare, rnn_run, rnn_destroy},
    {"", "RNN", 14, 0, rnn_prepare, rnn_run, rnn_destroy},
    {"", "GRU", 1, 2, rnn_prepare, rnn_run, rnn_destroy},
    {"", "GRU", 3, 6, rnn_prepare, rnn_run, rnn_destroy},
    {"", "GRU", 7, 13, rnn_prepare, rnn_run, rnn_destroy},
    {"", "GRU", 14, 0, rnn_prepare, rnn_run, rnn_destroy},
    {"", "LSTM", 1, 6, rnn_prepare, rnn_run, rnn_destroy},
    {"", "LSTM", 7, 13, rnn_prepare, rnn_run, rnn_destroy},
    {"", "LSTM", 14, 0, rnn_prepare, rnn_run, rnn_destroy},
    {0},
};
