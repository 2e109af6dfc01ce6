/*
 * Pooling: MaxPool (with its optional Indices), AveragePool, LpPool, their
 * Global variants, and MaxUnpool.
 *
 * Windowed pools handle up to three spatial axes; 1-D and 2-D inputs run
 * as 3-D with leading axes of extent 1.  Before the loops, each axis gets a
 * table of where every output position's window starts and which kernel
 * taps land inside the input, so the inner loops carry no bounds checks.
 * float16 and bfloat16 run on float32 copies (interp/ops/widen.h).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/scratch.h"
#include "interp/ops/spatial.h"
#include "interp/ops/vector_loop.h"
#include "interp/ops/widen.h"

#define POOL_AXES 3

enum pool_kind { POOL_MAX, POOL_AVERAGE, POOL_LP };

struct pool_state {
    int kind;                 /* enum pool_kind */
    struct mq_spatial sp;
    int ceil_mode;
    int count_include_pad;
    int storage_order;        /* MaxPool Indices: 0 row-major, 1 column-major */
    double p;                 /* LpPool exponent */
};

/* The window geometry of one call, with leading axes of extent 1 up to POOL_AXES. */
struct pool_geom {
    int64_t planes;           /* N * C */
    int64_t in[POOL_AXES], out[POOL_AXES], dil[POOL_AXES];
    int64_t in_size, out_size;
    /* per axis and output position: first input coordinate, taps inside the input [lo, hi),
     * taps inside input plus padding */
    int64_t *start[POOL_AXES], *lo[POOL_AXES], *hi[POOL_AXES], *padded[POOL_AXES];
};

#define DEFINE_POOL_MAX(T, SFX, LOWEST)                                                          \
    static void pool_max_##SFX(const struct pool_geom *g, const T *x, T *y, int64_t *indices,    \
                               int column_major)                                                 \
    {                                                                                            \
        const int64_t D = g->in[0], H = g->in[1], W = g->in[2];                                  \
        for (int64_t pl = 0; pl < g->planes; pl++) {                                             \
            const T *xp = x + pl * g->in_size;                                                   \
            int64_t o = pl * g->out_size;                                                        \
            for (int64_t od = 0; od < g->out[0]; od++)                                           \
                for (int64_t oh = 0; oh < g->out[1]; oh++)                                       \
                    for (int64_t ow = 0; ow < g->out[2]; ow++, o++) {                            \
                        T best = LOWEST;                                                         \
                        int64_t bd = -1, bh = -1, bw = -1;                                       \
                        for (int64_t kd = g->lo[0][od]; kd < g->hi[0][od]; kd++) {               \
                            const int64_t id = g->start[0][od] + kd * g->dil[0];                 \
                            for (int64_t kh = g->lo[1][oh]; kh < g->hi[1][oh]; kh++) {           \
                                const int64_t ih = g->start[1][oh] + kh * g->dil[1];             \
                                const T *row = xp + (id * H + ih) * W;                           \
                                for (int64_t kw = g->lo[2][ow]; kw < g->hi[2][ow]; kw++) {       \
                                    const int64_t iw = g->start[2][ow] + kw * g->dil[2];         \
                                    if (row[iw] > best || bw < 0) {                              \
                                        best = row[iw];                                          \
                                        bd = id, bh = ih, bw = iw;                               \
                                    }                                                            \
                                }                                                                \
                            }                                                                    \
                        }                                                                        \
                        y[o] = best;                                                             \
                        if (indices)                                                             \
                            indices[o] = bw < 0 ? -1                                             \
                                         : pl * g->in_size +                                     \
                                               (column_major ? bd + D * (bh + H * bw)            \
                                                             : (bd * H + bh) * W + bw);          \
                    }                                                                            \
        }                                                                                        \
    }                                                                                            \
                                                                                                 \
    static void global_max_##SFX(const T *x, T *y, int64_t planes, int64_t size)                 \
    {                                                                                            \
        for (int64_t pl = 0; pl < planes; pl++) {                                                \
            const T *xp = x + pl * size;                                                         \
            T best = size > 0 ? xp[0] : LOWEST;                                                  \
            for (int64_t i = 1; i < size; i++)                                                   \
                best = xp[i] > best ? xp[i] : best;                                              \
            y[pl] = best;                                                                        \
        }                                                                                        \
    }

/*
 * Separable pooling for every case but MaxPool's Indices: for each output
 * row, the kernel's input rows are first folded into one line (max, sum, or
 * sum of |x|^p; contiguous, so it vectorises), then each output takes its
 * kw taps from that line.  The line holds the input columns at offset
 * pad_w and the neutral value (lowest, or 0) in the padding around them, so
 * neither pass checks bounds.
 */
#define DEFINE_POOL_SEPARABLE(T, SFX, LOWEST)                                                    \
    MQ_SIMD_CLONES                                                                               \
    static void fold_row_##SFX(T *restrict line, const T *restrict row, int64_t n, int kind,     \
                               double p, int first)                                              \
    {                                                                                            \
        if (kind == POOL_MAX) {                                                                  \
            if (first)                                                                           \
                memcpy(line, row, (size_t)n * sizeof(T));                                        \
            else                                                                                 \
                MQ_VECTOR_LOOP(i, n, line[i] = row[i] > line[i] ? row[i] : line[i]);             \
            return;                                                                              \
        }                                                                                        \
        if (first)                                                                               \
            memset(line, 0, (size_t)n * sizeof(T));                                              \
        if (kind == POOL_AVERAGE)                                                                \
            MQ_VECTOR_LOOP(i, n, line[i] += row[i]);                                             \
        else if (p == 2.0)                                                                       \
            MQ_VECTOR_LOOP(i, n, line[i] += row[i] * row[i]);                                    \
        else if (p == 1.0)                                                                       \
            MQ_VECTOR_LOOP(i, n, line[i] += row[i] < 0 ? -row[i] : row[i]);                      \
        else                                                                                     \
            for (int64_t i = 0; i < n; i++)                                                      \
                line[i] += (T)pow(fabs((double)row[i]), p);                                      \
    }                                                                                            \
                                                                                                 \
    /* y = a op b (first), else y = y op (a op b): two rows or taps per pass, MAX and AVERAGE */ \
    MQ_SIMD_CLONES                                                                               \
    static void pool_pair_##SFX(T *restrict y, const T *restrict a, const T *restrict b,         \
                                int64_t n, int kind, int first)                                  \
    {                                                                                            \
        if (kind == POOL_MAX) {                                                                  \
            if (first)                                                                           \
                MQ_VECTOR_LOOP(i, n, y[i] = b[i] > a[i] ? b[i] : a[i]);                          \
            else                                                                                 \
                MQ_VECTOR_LOOP(i, n, const T m = b[i] > a[i] ? b[i] : a[i];                      \
                               y[i] = m > y[i] ? m : y[i]);                                      \
        } else if (first) {                                                                      \
            MQ_VECTOR_LOOP(i, n, y[i] = a[i] + b[i]);                                            \
        } else {                                                                                 \
            MQ_VECTOR_LOOP(i, n, y[i] += a[i] + b[i]);                                           \
        }                                                                                        \
    }                                                                                            \
                                                                                                 \
    MQ_SIMD_CLONES                                                                               \
    static void pool_max_row_##SFX(T *restrict y, const T *restrict src, int64_t n)              \
    {                                                                                            \
        MQ_VECTOR_LOOP(i, n, y[i] = src[i] > y[i] ? src[i] : y[i]);                              \
    }                                                                                            \
                                                                                                 \
    MQ_SIMD_CLONES                                                                               \
    static void pool_add_row_##SFX(T *restrict y, const T *restrict src, int64_t n)              \
    {                                                                                            \
        MQ_VECTOR_LOOP(i, n, y[i] += src[i]);                                                    \
    }                                                                                            \
                                                                                                 \
    /* y[i] /= row_count * col_count[i]: the element count of each averaging window (exact     \
     * integers, so the product is the count itself) */                                          \
    MQ_SIMD_CLONES                                                                               \
    static void pool_divide_row_##SFX(T *restrict y, const T *restrict col_count, T row_count,   \
                                      int64_t n)                                                 \
    {                                                                                            \
        MQ_VECTOR_LOOP(i, n, y[i] = y[i] / (row_count * col_count[i]));                          \
    }                                                                                            \
                                                                                                 \
    static void pool_split2_##SFX(T *restrict even, T *restrict odd, const T *restrict src,      \
                                  int64_t n)                                                     \
    {                                                                                            \
        MQ_VECTOR_LOOP(j, n, even[j] = src[2 * j]; odd[j] = src[2 * j + 1]);                     \
    }                                                                                            \
                                                                                                 \
    static void pool_separable_##SFX(const struct pool_geom *g, const T *x, T *y, int kind,      \
                                     int include_pad, double p, T *line, int64_t line_len,       \
                                     T *phases, int64_t pad_w, int64_t stride_w,                 \
                                     int64_t kernel_w, T *col_count)                             \
    {                                                                                            \
        const int64_t H = g->in[1], W = g->in[2], dw = g->dil[2];                                \
        for (int64_t ow = 0; kind == POOL_AVERAGE && ow < g->out[2]; ow++)                       \
            col_count[ow] = (T)(include_pad ? g->padded[2][ow] : g->hi[2][ow] - g->lo[2][ow]);   \
        const T neutral = kind == POOL_MAX ? (T)(LOWEST) : (T)0;                                 \
        int64_t c1 = line_len - pad_w < W ? line_len - pad_w : W;                                \
        if (c1 < 0)                                                                              \
            c1 = 0;                                                                              \
        /* one element past the end: the even/odd split of an odd-length line reads it */        \
        for (int64_t i = 0; i <= line_len; i++)                                                  \
            line[i] = neutral;                                                                   \
        T *cols = line + pad_w;                                                                  \
        for (int64_t pl = 0; pl < g->planes; pl++) {                                             \
            const T *xp = x + pl * g->in_size;                                                   \
            T *yp = y + pl * g->out_size;                                                        \
            for (int64_t od = 0; od < g->out[0]; od++)                                           \
                for (int64_t oh = 0; oh < g->out[1]; oh++) {                                     \
                    int first = 1;                                                               \
                    /* max and sum fold rows two at a time; a row left over waits here */       \
                    const T *pending = NULL;                                                     \
                    const int paired = kind == POOL_MAX || kind == POOL_AVERAGE;                 \
                    for (int64_t kd = g->lo[0][od]; kd < g->hi[0][od]; kd++) {                   \
                        const int64_t id = g->start[0][od] + kd * g->dil[0];                     \
                        for (int64_t kh = g->lo[1][oh]; kh < g->hi[1][oh]; kh++) {               \
                            const int64_t ih = g->start[1][oh] + kh * g->dil[1];                 \
                            const T *row = xp + (id * H + ih) * W;                               \
                            if (paired && !pending) {                                            \
                                pending = row;                                                   \
                                continue;                                                        \
                            }                                                                    \
                            if (paired)                                                          \
                                pool_pair_##SFX(cols, pending, row, c1, kind, first);            \
                            else                                                                 \
                                fold_row_##SFX(cols, row, c1, kind, p, first);                   \
                            pending = NULL;                                                      \
                            first = 0;                                                           \
                        }                                                                        \
                    }                                                                            \
                    if (pending) {                                                               \
                        fold_row_##SFX(cols, pending, c1, kind, p, first);                       \
                        first = 0;                                                               \
                    }                                                                            \
                    if (first)                                                                   \
                        for (int64_t i = 0; i < c1; i++)                                         \
                            cols[i] = neutral;                                                   \
                    T *yrow = yp + (od * g->out[1] + oh) * g->out[2];                            \
                    const int64_t ow_n = g->out[2];                                              \
                    if (stride_w <= 2) {                                                         \
                        /* tap k of output i reads line[i * s + k * dw]: with s = 2, from the    \
                         * even/odd halves of the line, contiguous in i either way */            \
                        const int64_t half = (line_len + 1) / 2;                                 \
                        if (stride_w == 2)                                                       \
                            pool_split2_##SFX(phases, phases + half, line, half);                \
                        for (int64_t kw = 0; kw < kernel_w; kw++) {                              \
                            const int64_t t = kw * dw;                                           \
                            const T *src = stride_w == 1 ? line + t                              \
                                                         : phases + (t % 2) * half + t / 2;      \
                            if (kw + 1 < kernel_w) {                                             \
                                /* two taps in one pass */                                       \
                                const int64_t t1 = t + dw;                                       \
                                const T *src1 = stride_w == 1 ? line + t1                        \
                                                              : phases + (t1 % 2) * half + t1 / 2; \
                                pool_pair_##SFX(yrow, src, src1, ow_n,                           \
                                                kind == POOL_MAX ? POOL_MAX : POOL_AVERAGE,      \
                                                kw == 0);                                        \
                                kw++;                                                            \
                            } else if (kw == 0) {                                                \
                                memcpy(yrow, src, (size_t)ow_n * sizeof(T));                     \
                            } else if (kind == POOL_MAX) {                                       \
                                pool_max_row_##SFX(yrow, src, ow_n);                             \
                            } else {                                                             \
                                pool_add_row_##SFX(yrow, src, ow_n);                             \
                            }                                                                    \
                        }                                                                        \
                    } else {                                                                     \
                        for (int64_t ow = 0; ow < ow_n; ow++) {                                  \
                            const T *t = line + ow * stride_w;                                   \
                            T acc = t[0];                                                        \
                            for (int64_t kw = 1; kw < kernel_w; kw++) {                          \
                                if (kind == POOL_MAX)                                            \
                                    acc = t[kw * dw] > acc ? t[kw * dw] : acc;                   \
                                else                                                             \
                                    acc += t[kw * dw];                                           \
                            }                                                                    \
                            yrow[ow] = acc;                                                      \
                        }                                                                        \
                    }                                                                            \
                    if (kind == POOL_MAX)                                                        \
                        continue;                                                                \
                    const int64_t rows_valid = (g->hi[0][od] - g->lo[0][od]) *                   \
                                               (g->hi[1][oh] - g->lo[1][oh]);                    \
                    const int64_t rows_padded = g->padded[0][od] * g->padded[1][oh];             \
                    if (kind == POOL_AVERAGE) {                                                  \
                        pool_divide_row_##SFX(yrow, col_count,                                   \
                                              (T)(include_pad ? rows_padded : rows_valid), ow_n); \
                        continue;                                                                \
                    }                                                                            \
                    for (int64_t ow = 0; ow < ow_n; ow++) {                                      \
                        T sum = yrow[ow];                                                        \
                        yrow[ow] = p == 2.0   ? (T)sqrt((double)sum)                             \
                                   : p == 1.0 ? sum                                              \
                                              : (T)pow((double)sum, 1.0 / p);                    \
                    }                                                                            \
                }                                                                                \
        }                                                                                        \
    }

/* GlobalAveragePool and GlobalLpPool. */
#define DEFINE_GLOBAL_AVERAGE(T, SFX)                                                            \
    static void global_avg_##SFX(const T *x, T *y, int64_t planes, int64_t size, int kind,       \
                                 double p)                                                       \
    {                                                                                            \
        for (int64_t pl = 0; pl < planes; pl++) {                                                \
            const T *xp = x + pl * size;                                                         \
            /* eight independent partial sums let the compiler vectorise the reduction */        \
            T part[8] = {0};                                                                     \
            int64_t i = 0;                                                                       \
            if (kind == POOL_AVERAGE) {                                                          \
                for (; i + 8 <= size; i += 8)                                                    \
                    for (int j = 0; j < 8; j++)                                                  \
                        part[j] += xp[i + j];                                                    \
                for (; i < size; i++)                                                            \
                    part[0] += xp[i];                                                            \
            } else if (p == 2.0) {                                                               \
                for (; i + 8 <= size; i += 8)                                                    \
                    for (int j = 0; j < 8; j++)                                                  \
                        part[j] += xp[i + j] * xp[i + j];                                        \
                for (; i < size; i++)                                                            \
                    part[0] += xp[i] * xp[i];                                                    \
            } else {                                                                             \
                for (; i < size; i++)                                                            \
                    part[0] += (T)pow(fabs((double)xp[i]), p);                                   \
            }                                                                                    \
            T sum = ((part[0] + part[1]) + (part[2] + part[3])) +                                \
                    ((part[4] + part[5]) + (part[6] + part[7]));                                 \
            if (kind == POOL_AVERAGE)                                                            \
                y[pl] = sum / (T)size;                                                           \
            else                                                                                 \
                y[pl] = p == 2.0 ? (T)sqrt((double)sum) : (T)pow((double)sum, 1.0 / p);          \
        }                                                                                        \
    }

DEFINE_POOL_MAX(float, f32, -INFINITY)
DEFINE_POOL_MAX(double, f64, -INFINITY)
DEFINE_POOL_MAX(int8_t, i8, INT8_MIN)
DEFINE_POOL_MAX(uint8_t, u8, 0)
DEFINE_POOL_SEPARABLE(float, f32, -INFINITY)
DEFINE_POOL_SEPARABLE(double, f64, -INFINITY)
DEFINE_POOL_SEPARABLE(int8_t, i8, INT8_MIN)
DEFINE_POOL_SEPARABLE(uint8_t, u8, 0)
DEFINE_GLOBAL_AVERAGE(float, f32)
DEFINE_GLOBAL_AVERAGE(double, f64)

static void pool_destroy(void *state) { free(state); }

/* LpPool-1 and GlobalLpPool-1 have a float p, later versions an int; accept either. */
static double lp_exponent(const struct mq_kernel_node *node)
{
    const Onnx__AttributeProto *a = mq_attr_find(node, "p");
    if (!a)
        return 2.0;
    if (a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return (double)mq_attr_float(node, "p", 2.0f);
    return (double)mq_attr_int(node, "p", 2);
}

/* A zeroed state of this kind, owned by the node; NULL (err set) when out of memory. */
static struct pool_state *new_state(struct mq_kernel_node *node, int kind, struct mq_error *err)
{
    struct pool_state *s = calloc(1, sizeof *s);
    if (!s) {
        mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                      node->op_type);
        return NULL;
    }
    node->state = s;
    s->kind = kind;
    return s;
}

/* The window attributes (mq_spatial_parse, dilations allowed or not); kernel_shape is required. */
static int parse_window(struct mq_kernel_node *node, struct pool_state *s, int allow_dilations,
                        struct mq_error *err)
{
    if (mq_spatial_parse(node, &s->sp, allow_dilations, err))
        return MQ_ERR;
    if (s->sp.n_kernel < 0)
        return mq_error_set(err, "node '%s' (%s): attribute kernel_shape is required",
                            node->name, node->op_type);
    return MQ_OK;
}

/* The reduction each pooling operator applies over its window (or the whole spatial extent). */
static const struct {
    const char *op_type;
    enum pool_kind kind;
} pool_kinds[] = {
    {"MaxPool", POOL_MAX},           {"AveragePool", POOL_AVERAGE},       {"LpPool", POOL_LP},
    {"GlobalMaxPool", POOL_MAX},     {"GlobalAveragePool", POOL_AVERAGE}, {"GlobalLpPool", POOL_LP},
};

static int pool_kind_of(const struct mq_kernel_node *node)
{
    for (size_t i = 0; i < sizeof pool_kinds / sizeof *pool_kinds; i++)
        if (strcmp(pool_kinds[i].op_type, node->op_type) == 0)
            return pool_kinds[i].kind;
    return POOL_MAX; /* unreachable: the kernel table lists only the operators above */
}

static int pool_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct pool_state *s = new_state(node, pool_kind_of(node), err);
    if (!s)
        return MQ_ERR;
    if (parse_window(node, s, 1, err))
        return MQ_ERR;
    if (s->sp.n_kernel > POOL_AXES)
        return mq_error_set(err, "node '%s' (%s): pooling over %d spatial axes is not supported "
                            "(at most %d)", node->name, node->op_type, s->sp.n_kernel, POOL_AXES);
    s->ceil_mode = mq_attr_int(node, "ceil_mode", 0) != 0;
    s->count_include_pad = mq_attr_int(node, "count_include_pad", 0) != 0;
    s->storage_order = (int)mq_attr_int(node, "storage_order", 0);
    if (s->storage_order != 0 && s->storage_order != 1)
        return mq_error_set(err, "node '%s' (%s): storage_order %d must be 0 or 1", node->name,
                            node->op_type, s->storage_order);
    s->p = lp_exponent(node);
    if (s->kind == POOL_LP && !(s->p > 0.0))
        return mq_error_set(err, "node '%s' (%s): p = %g must be positive", node->name,
                            node->op_type, s->p);
    return MQ_OK;
}

static int check_pool_type(const struct mq_kernel_node *node, const struct mq_tensor *x,
                           int allow_int8, struct mq_error *err)
{
    if (x->dtype == MQ_DTYPE_FLOAT || x->dtype == MQ_DTYPE_DOUBLE)
        return MQ_OK;
    if (allow_int8 && (x->dtype == MQ_DTYPE_INT8 || x->dtype == MQ_DTYPE_UINT8))
        return MQ_OK;
    return mq_error_set(err, "node '%s' (%s): element type %s is not supported (float16, "
                        "bfloat16, float32, float64%s are)", node->name, node->op_type,
                        mq_dtype_name(x->dtype), allow_int8 ? ", int8, uint8" : "");
}

static int indices_wanted(const struct mq_kernel_node *node, int n_outputs)
{
    const Onnx__NodeProto *p = node->proto;
    return n_outputs > 1 && p->n_output > 1 && p->output[1] && p->output[1][0];
}

/* Input X of a pooling node, present and of a type its kind takes. */
static int pool_input(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                      int n_inputs, const struct mq_tensor **x, struct mq_error *err)
{
    const struct pool_state *s = node->state;
    *x = n_inputs > 0 ? inputs[0] : NULL;
    if (!*x)
        return mq_error_set(err, "node '%s' (%s): input X is required", node->name,
                            node->op_type);
    return check_pool_type(node, *x, s->kind == POOL_MAX, err);
}

static int pool_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                    const struct mq_tensor *const *inputs, int n_inputs,
                    struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, pool_run, 0, err);
    const struct pool_state *s = node->state;
    const struct mq_tensor *x;
    if (pool_input(node, inputs, n_inputs, &x, err))
        return MQ_ERR;
    char shape[128];
    int n = x->rank - 2;
    if (n < 1 || n != s->sp.n_kernel)
        return mq_error_set(err, "node '%s' (%s): input X has shape %s, expected rank %d "
                            "(N, C and one axis per kernel_shape value)", node->name,
                            node->op_type, mq_shape_format(x->rank, x->dims, shape, sizeof shape),
                            s->sp.n_kernel + 2);
    int64_t out[POOL_AXES], pb[POOL_AXES], pe[POOL_AXES], st[POOL_AXES], dl[POOL_AXES];
    if (mq_spatial_forward(node, &s->sp, n, x->dims + 2, s->sp.kernel, s->ceil_mode, out, pb, pe,
                           st, dl, err))
        return MQ_ERR;
    int64_t dims[MQ_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    memcpy(dims + 2, out, (size_t)n * sizeof out[0]);
    if (mq_tensor_alloc_uninit(&outputs[0], x->dtype, x->rank, dims, node->name, err))
        return MQ_ERR;
    int64_t *indices = NULL;
    if (s->kind == POOL_MAX && indices_wanted(node, n_outputs)) {
        if (mq_tensor_alloc_uninit(&outputs[1], MQ_DTYPE_INT64, x->rank, dims, node->name, err))
            return MQ_ERR;
        indices = outputs[1].data;
    }
    if (outputs[0].count == 0)
        return MQ_OK;

    /* Lift to POOL_AXES axes: leading axes of extent 1 with a 1-tap kernel. */
    struct pool_geom g;
    memset(&g, 0, sizeof g);
    int64_t kernel[POOL_AXES], stride[POOL_AXES], pad_b[POOL_AXES], pad_e[POOL_AXES];
    int lead = POOL_AXES - n;
    int64_t table_len = 0;
    for (int d = 0; d < POOL_AXES; d++) {
        int a = d - lead;
        g.in[d] = a >= 0 ? x->dims[a + 2] : 1;
        g.out[d] = a >= 0 ? out[a] : 1;
        g.dil[d] = a >= 0 ? dl[a] : 1;
        kernel[d] = a >= 0 ? s->sp.kernel[a] : 1;
        stride[d] = a >= 0 ? st[a] : 1;
        pad_b[d] = a >= 0 ? pb[a] : 0;
        pad_e[d] = a >= 0 ? pe[a] : 0;
        table_len += 4 * g.out[d];
    }
    g.planes = x->dims[0] * x->dims[1];
    g.in_size = g.in[0] * g.in[1] * g.in[2];
    g.out_size = g.out[0] * g.out[1] * g.out[2];
    int64_t *table = mq_scratch_alloc(node, table_len, sizeof(int64_t), err);
    if (!table)
        return MQ_ERR;
    int64_t *t = table;
    for (int d = 0; d < POOL_AXES; d++) {
        g.start[d] = t;
        g.lo[d] = t + g.out[d];
        g.hi[d] = t + 2 * g.out[d];
        g.padded[d] = t + 3 * g.out[d];
        t += 4 * g.out[d];
        for (int64_t o = 0; o < g.out[d]; o++) {
            int64_t start = o * stride[d] - pad_b[d], dil = g.dil[d];
            int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
            int64_t hi = g.in[d] - 1 - start < 0 ? 0 : (g.in[d] - 1 - start) / dil + 1;
            int64_t padded = g.in[d] + pad_e[d] - 1 - start < 0
                                 ? 0 : (g.in[d] + pad_e[d] - 1 - start) / dil + 1;
            if (hi > kernel[d])
                hi = kernel[d];
            if (lo > hi)
                lo = hi;
            if (padded > kernel[d])
                padded = kernel[d];
            g.start[d][o] = start;
            g.lo[d][o] = lo;
            g.hi[d][o] = hi;
            g.padded[d][o] = padded;
        }
    }
    int column_major = s->storage_order == 1;
    const void *xd = x->data;
    void *yd = outputs[0].data;
    if (indices) {
        switch (x->dtype) {
        case MQ_DTYPE_FLOAT: pool_max_f32(&g, xd, yd, indices, column_major); break;
        case MQ_DTYPE_DOUBLE: pool_max_f64(&g, xd, yd, indices, column_major); break;
        case MQ_DTYPE_INT8: pool_max_i8(&g, xd, yd, indices, column_major); break;
        default: pool_max_u8(&g, xd, yd, indices, column_major); break;
        }
        mq_scratch_free(table, table_len, sizeof(int64_t));
        return MQ_OK;
    }
    /* the folded line spans every column a window of the last output column reaches */
    int64_t kw = kernel[POOL_AXES - 1], sw = stride[POOL_AXES - 1];
    int64_t line_len = (g.out[2] - 1) * sw + (kw - 1) * g.dil[2] + 1;
    int64_t pad_w = pad_b[POOL_AXES - 1];
    size_t elem = mq_dtype_size(x->dtype);
    /* the folded line (plus one), then its even/odd halves for stride 2, then the averaging
       windows' column counts */
    int64_t scratch_len = 2 * line_len + 4 + g.out[2];
    char *line = mq_scratch_alloc(node, scratch_len, elem, err);
    if (!line) {
        mq_scratch_free(table, table_len, sizeof(int64_t));
        return MQ_ERR;
    }
    void *phases = line + (size_t)(line_len + 1) * elem;
    void *col_count = line + (size_t)(2 * line_len + 4) * elem;
    int kind = s->kind, inc = s->count_include_pad;
    switch (x->dtype) {
    case MQ_DTYPE_FLOAT:
        pool_separable_f32(&g, xd, yd, kind, inc, s->p, (float *)line, line_len, phases, pad_w,
                           sw, kw, col_count);
        break;
    case MQ_DTYPE_DOUBLE:
        pool_separable_f64(&g, xd, yd, kind, inc, s->p, (double *)line, line_len, phases, pad_w,
                           sw, kw, col_count);
        break;
    case MQ_DTYPE_INT8:
        pool_separable_i8(&g, xd, yd, kind, inc, s->p, (int8_t *)line, line_len, phases, pad_w,
                          sw, kw, col_count);
        break;
    default:
        pool_separable_u8(&g, xd, yd, kind, inc, s->p, (uint8_t *)line, line_len, phases, pad_w,
                          sw, kw, col_count);
        break;
    }
    mq_scratch_free(line, scratch_len, elem);
    mq_scratch_free(table, table_len, sizeof(int64_t));
    return MQ_OK;
}

/* Global pools keep no attributes but GlobalLpPool's p; the kind rides in the state. */
static int global_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct pool_state *s = new_state(node, pool_kind_of(node), err);
    if (!s)
        return MQ_ERR;
    s->p = lp_exponent(node);
    if (s->kind == POOL_LP && !(s->p > 0.0))
        return mq_error_set(err, "node '%s' (%s): p = %g must be positive", node->name,
                            node->op_type, s->p);
    return MQ_OK;
}

static int global_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, global_run, 0, err);
    const struct pool_state *s = node->state;
    const struct mq_tensor *x;
    if (pool_input(node, inputs, n_inputs, &x, err))
        return MQ_ERR;
    char shape[128];
    if (x->rank < 2)
        return mq_error_set(err, "node '%s' (%s): input X has shape %s, expected rank >= 2 (N, C, "
                            "spatial...)", node->name, node->op_type,
                            mq_shape_format(x->rank, x->dims, shape, sizeof shape));
    int64_t dims[MQ_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        dims[i] = i < 2 ? x->dims[i] : 1;
    if (mq_tensor_alloc_uninit(&outputs[0], x->dtype, x->rank, dims, node->name, err))
        return MQ_ERR;
    int64_t planes = x->dims[0] * x->dims[1];
    if (planes == 0)
        return MQ_OK;
    int64_t size = x->count / planes;
    void *y = outputs[0].data;
    switch (x->dtype) {
    case MQ_DTYPE_FLOAT:
        if (s->kind == POOL_MAX)
            global_max_f32(x->data, y, planes, size);
        else
            global_avg_f32(x->data, y, planes, size, s->kind, s->p);
        break;
    case MQ_DTYPE_DOUBLE:
        if (s->kind == POOL_MAX)
            global_max_f64(x->data, y, planes, size);
        else
            global_avg_f64(x->data, y, planes, size, s->kind, s->p);
        break;
    case MQ_DTYPE_INT8: global_max_i8(x->data, y, planes, size); break;
    default: global_max_u8(x->data, y, planes, size); break;
    }
    return MQ_OK;
}

static int maxunpool_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct pool_state *s = new_state(node, POOL_MAX, err);
    if (!s)
        return MQ_ERR;
    if (parse_window(node, s, 0, err))
        return MQ_ERR;
    return MQ_OK;
}

/*
 * The indices come from a MaxPool over the shape this op infers (flat over
 * N, C and the spatial axes).  An explicit output_shape only pads that shape
 * at the end of each axis, the way the ONNX backend tests expect, so an index
 * is decoded in the inferred shape and re-encoded in the requested one.
 */
static int maxunpool_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    const struct pool_state *s = node->state;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    const struct mq_tensor *ind = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *shape_in = n_inputs > 2 ? inputs[2] : NULL;
    char s1[128], s2[128];
    if (!x || !ind)
        return mq_error_set(err, "node '%s' (%s): inputs X and I are required", node->name,
                            node->op_type);
    size_t elem = mq_dtype_size(x->dtype);
    if (elem == 0)
        return mq_error_set(err, "node '%s' (%s): element type %s is not supported", node->name,
                            node->op_type, mq_dtype_name(x->dtype));
    if (ind->dtype != MQ_DTYPE_INT64 || !mq_shape_equal(x, ind))
        return mq_error_set(err, "node '%s' (%s): I must be int64 with the shape of X %s, got %s "
                            "%s", node->name, node->op_type,
                            mq_shape_format(x->rank, x->dims, s1, sizeof s1),
                            mq_dtype_name(ind->dtype),
                            mq_shape_format(ind->rank, ind->dims, s2, sizeof s2));
    int n = x->rank - 2;
    if (n < 1 || n != s->sp.n_kernel)
        return mq_error_set(err, "node '%s' (%s): input X has shape %s, expected rank %d",
                            node->name, node->op_type,
                            mq_shape_format(x->rank, x->dims, s1, sizeof s1), s->sp.n_kernel + 2);
    if (mq_spatial_check_rank(node, &s->sp, n, err))
        return MQ_ERR;
    int64_t inferred[MQ_MAX_RANK], dims[MQ_MAX_RANK];
    inferred[0] = x->dims[0];
    inferred[1] = x->dims[1];
    for (int i = 0; i < n; i++) {
        int64_t st = s->sp.n_strides > 0 ? s->sp.strides[i] : 1;
        int64_t pads = s->sp.n_pads > 0 ? s->sp.pads[i] + s->sp.pads[i + n] : 0;
        if (x->dims[i + 2] > INT32_MAX || st > INT32_MAX || s->sp.kernel[i] > INT32_MAX)
            return mq_error_set(err, "node '%s' (%s): spatial geometry is too large", node->name,
                                node->op_type);
        inferred[i + 2] = (x->dims[i + 2] - 1) * st + s->sp.kernel[i] - pads;
        if (inferred[i + 2] < 0)
            inferred[i + 2] = 0;
    }
    memcpy(dims, inferred, (size_t)x->rank * sizeof dims[0]);
    if (shape_in) {
        if (shape_in->rank != 1 || shape_in->dims[0] != x->rank ||
            (shape_in->dtype != MQ_DTYPE_INT64 && shape_in->dtype != MQ_DTYPE_INT32))
            return mq_error_set(err, "node '%s' (%s): output_shape must be a 1-D integer tensor "
                                "of %d values", node->name, node->op_type, x->rank);
        for (int i = 0; i < x->rank; i++) {
            dims[i] = mq_tensor_get_int64(shape_in, i);
            if (dims[i] < inferred[i] || (i < 2 && dims[i] != inferred[i]))
                return mq_error_set(err, "node '%s' (%s): output_shape %s is smaller than the "
                                    "unpooled shape %s", node->name, node->op_type,
                                    mq_shape_format(x->rank, dims, s1, sizeof s1),
                                    mq_shape_format(x->rank, inferred, s2, sizeof s2));
        }
    }
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, dims, node->name, err))
        return MQ_ERR;
    int64_t total = mq_dims_count(x->rank, inferred);
    int same = memcmp(dims, inferred, (size_t)x->rank * sizeof dims[0]) == 0;
    const int64_t *iv = ind->data;
    const char *src = x->data;
    char *dst = outputs[0].data;
    for (int64_t j = 0; j < x->count; j++) {
        int64_t idx = iv[j];
        if (idx < 0 || idx >= total)
            return mq_error_set(err, "node '%s' (%s): index %lld at position %lld is outside the "
                                "unpooled shape %s", node->name, node->op_type, (long long)idx,
                                (long long)j, mq_shape_format(x->rank, inferred, s1, sizeof s1));
        if (!same) {
            int64_t q = idx, pos = 0, mul = 1;
            for (int d = x->rank - 1; d >= 0; d--) {
                pos += (q % inferred[d]) * mul;
                q /= inferred[d];
                mul *= dims[d];
            }
            idx = pos;
        }
        memcpy(dst + (size_t)idx * elem, src + (size_t)j * elem, elem);
    }
    return MQ_OK;
}

/*
 * Versions: MaxPool-8 added Indices and storage_order, MaxPool-10 ceil_mode
 * and dilations, MaxPool-12 int8/uint8.  AveragePool-7 added
 * count_include_pad, -10 ceil_mode, -19 dilations.  LpPool-2 made p an int,
 * LpPool-18 added ceil_mode and dilations.  Attributes a version lacks are
 * simply absent from its nodes, so one parser serves all of them.
 */
const struct mq_kernel mq_kernels_pool[] = {
    {"", "MaxPool", 1, 7, pool_prepare, pool_run, pool_destroy},
    {"", "MaxPool", 8, 9, pool_prepare, pool_run, pool_destroy},
    {"", "MaxPool", 10, 10, pool_prepare, pool_run, pool_destroy},
    {"", "MaxPool", 11, 11, pool_prepare, pool_run, pool_destroy},
    {"", "MaxPool", 12, 0, pool_prepare, pool_run, pool_destroy},
    {"", "AveragePool", 1, 6, pool_prepare, pool_run, pool_destroy},
    {"", "AveragePool", 7, 9, pool_prepare, pool_run, pool_destroy},
    {"", "AveragePool", 10, 10, pool_prepare, pool_run, pool_destroy},
    {"", "AveragePool", 11, 18, pool_prepare, pool_run, pool_destroy},
    {"", "AveragePool", 19, 0, pool_prepare, pool_run, pool_destroy},
    {"", "LpPool", 1, 1, pool_prepare, pool_run, pool_destroy},
    {"", "LpPool", 2, 10, pool_prepare, pool_run, pool_destroy},
    {"", "LpPool", 11, 17, pool_prepare, pool_run, pool_destroy},
    {"", "LpPool", 18, 0, pool_prepare, pool_run, pool_destroy},
    {"", "GlobalMaxPool", 1, 0, global_prepare, global_run, pool_destroy},
    {"", "GlobalAveragePool", 1, 0, global_prepare, global_run, pool_destroy},
    {"", "GlobalLpPool", 1, 1, global_prepare, global_run, pool_destroy},
    {"", "GlobalLpPool", 2, 0, global_prepare, global_run, pool_destroy},
    {"", "MaxUnpool", 9, 10, maxunpool_prepare, maxunpool_run, pool_destroy},
    {"", "MaxUnpool", 11, 0, maxunpool_prepare, maxunpool_run, pool_destroy},
    {0},
};
