/*
 * Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp,
 * and ArgMax/ArgMin.
 *
 * Every element type is reduced in one of four working types: float (float32,
 * float16, bfloat16), double (float64, and integers where the result is not an
 * integer operation: L2, LogSum, LogSumExp), int64 (signed integers, the
 * narrower unsigned ones, bool) and uint64.  The input is converted once into
 * the working type when it differs, reduced, and converted to the output type.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "core/tensor.h"

enum reduce_op {
    RED_SUM,
    RED_MEAN,
    RED_MAX,
    RED_MIN,
    RED_PROD,
    RED_L1,
    RED_L2,
    RED_SUM_SQUARE,
    RED_LOG_SUM,
    RED_LOG_SUM_EXP,
};

/* What one pass over the input accumulates into each output element. */
enum pass_kind {
    PASS_SUM,
    PASS_PROD,
    PASS_MAX,
    PASS_MIN,
    PASS_ABS_SUM,
    PASS_SQUARE_SUM,
    PASS_EXP_SUM, /* sum of exp(x - shift[out]) */
};

enum work_type { WORK_FLOAT, WORK_DOUBLE, WORK_INT64, WORK_UINT64 };

struct reduce_state {
    enum reduce_op op;
    int keepdims;
    int noop_with_empty_axes;
    int axes_from_input;
    int n_axes;      /* -1: attribute absent */
    int64_t *axes;
};

struct arg_state {
    int is_max;
    int axis;        /* as written, normalised at run time */
    int keepdims;
    int select_last_index;
};

/*
 * The input shape compressed into alternating runs of kept and reduced axes
 * (size-1 axes dropped), so the innermost run can be a tight loop.
 */
struct reduce_geom {
    int n;                          /* number of runs */
    int64_t extent[MQ_MAX_RANK];
    int reduced[MQ_MAX_RANK];
    int64_t out_stride[MQ_MAX_RANK]; /* 0 for reduced runs */
    int64_t in_count;
    int64_t out_count;
    int64_t reduce_count;           /* elements folded into each output */
};

static void geom_build(struct reduce_geom *g, int rank, const int64_t *dims, const int *reduced)
{
    memset(g, 0, sizeof *g);
    g->in_count = 1;
    g->out_count = 1;
    g->reduce_count = 1;
    for (int i = 0; i < rank; i++) {
        g->in_count *= dims[i];
        if (reduced[i])
            g->reduce_count *= dims[i];
        else
            g->out_count *= dims[i];
        if (dims[i] == 1)
            continue;
        if (g->n > 0 && g->reduced[g->n - 1] == reduced[i]) {
            g->extent[g->n - 1] *= dims[i];
        } else {
            g->extent[g->n] = dims[i];
            g->reduced[g->n] = reduced[i];
            g->n++;
        }
    }
    if (g->n == 0) {
        g->extent[0] = 1;
        g->reduced[0] = 0;
        g->n = 1;
    }
    int64_t stride = 1;
    for (int i = g->n - 1; i >= 0; i--) {
        if (g->reduced[i]) {
            g->out_stride[i] = 0;
        } else {
            g->out_stride[i] = stride;
            stride *= g->extent[i];
        }
    }
}

/*
 * One generic reduction body per working type.  COMBINE(acc, x, s) folds x
 * into acc; s is the per-output shift (LogSumExp only).  The pass kind is
 * switched outside the loops.
 */
#define RED_LOOP(W, COMBINE)                                                                  \
    do {                                                                                      \
        int last = g->n - 1;                                                                  \
        int64_t inner = g->extent[last];                                                      \
        int64_t outer = inner ? g->in_count / inner : 0;                                      \
        int64_t idx[MQ_MAX_RANK] = {0};                                                       \
        int64_t out_off = 0;                                                                  \
        for (int64_t o = 0; o < outer; o++) {                                                 \
            const W *src = in + o * inner;                                                    \
            if (g->reduced[last]) {                                                           \
                W acc = out[out_off];                                                         \
                W s = shift ? shift[out_off] : (W)0;                                          \
                (void)s;                                                                      \
                for (int64_t j = 0; j < inner; j++)                                           \
                    acc = COMBINE(acc, src[j], s);                                            \
                out[out_off] = acc;                                                           \
            } else {                                                                          \
                W *dst = out + out_off;                                                       \
                const W *sh = shift ? shift + out_off : NULL;                                 \
                (void)sh;                                                                     \
                for (int64_t j = 0; j < inner; j++)                                           \
                    dst[j] = COMBINE(dst[j], src[j], (sh ? sh[j] : (W)0));                    \
            }                                                                                 \
            for (int d = last - 1; d >= 0; d--) {                                             \
                idx[d]++;                                                                     \
                out_off += g->out_stride[d];                                                  \
                if (idx[d] < g->extent[d])                                                    \
                    break;                                                                    \
                out_off -= idx[d] * g->out_stride[d];                                         \
                idx[d] = 0;                                                                   \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* NaN propagates through Max/Min as numpy does; the self-comparison folds away for integers. */
#define C_SUM(a, x, s) ((a) + (x))
#define C_PROD(a, x, s) ((a) * (x))
#define C_MAX(a, x, s) (((x) > (a) || (x) != (x)) ? (x) : (a))
#define C_MIN(a, x, s) (((x) < (a) || (x) != (x)) ? (x) : (a))
#define C_ABS(a, x, s) ((a) + ((x) < 0 ? -(x) : (x)))
#define C_SQ(a, x, s) ((a) + (x) * (x))

#define DEFINE_REDUCE_PASS(SUFFIX, W, EXP_SUM)                                                \
    static void reduce_pass_##SUFFIX(const struct reduce_geom *g, enum pass_kind kind,       \
                                     const W *in, W *out, const W *shift)                     \
    {                                                                                         \
        switch (kind) {                                                                       \
        case PASS_SUM: RED_LOOP(W, C_SUM); break;                                             \
        case PASS_PROD: RED_LOOP(W, C_PROD); break;                                           \
        case PASS_MAX: RED_LOOP(W, C_MAX); break;                                             \
        case PASS_MIN: RED_LOOP(W, C_MIN); break;                                             \
        case PASS_ABS_SUM: RED_LOOP(W, C_ABS); break;                                         \
        case PASS_SQUARE_SUM: RED_LOOP(W, C_SQ); break;                                       \
        case PASS_EXP_SUM: RED_LOOP(W, EXP_SUM); break;                                       \
        }                                                                                     \
    }

#define C_EXP_F(a, x, s) ((a) + expf((x) - (s)))
#define C_EXP_D(a, x, s) ((a) + exp((x) - (s)))
/* Exp-sums only run in float or double; integer inputs of LogSumExp work in double. */
#define C_EXP_I(a, x, s) ((a) + (x))

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wfloat-equal"
#endif
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wtautological-compare"
#pragma clang diagnostic ignored "-Wtautological-unsigned-zero-compare"
#endif
DEFINE_REDUCE_PASS(f32, float, C_EXP_F)
DEFINE_REDUCE_PASS(f64, double, C_EXP_D)
DEFINE_REDUCE_PASS(i64, int64_t, C_EXP_I)
DEFINE_REDUCE_PASS(u64, uint64_t, C_EXP_I)
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

static int work_dtype(enum work_type w)
{
    switch (w) {
    case WORK_FLOAT: return MQ_DTYPE_FLOAT;
    case WORK_DOUBLE: return MQ_DTYPE_DOUBLE;
    case WORK_INT64: return MQ_DTYPE_INT64;
    case WORK_UINT64: return MQ_DTYPE_UINT64;
    }
    return MQ_DTYPE_UNDEFINED;
}

static uint64_t double_to_u64(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)v;
}

/* Copies n elements of dtype `src_type` into dst, converting to the working type. */
#define CONVERT_FROM(DST_T, SRC_T)                                                            \
    do {                                                                                      \
        const SRC_T *s_ = (const SRC_T *)src;                                                 \
        for (int64_t i = 0; i < n; i++)                                                       \
            d_[i] = (DST_T)s_[i];                                                             \
    } while (0)

#define CONVERT_ANY(DST_T)                                                                    \
    do {                                                                                      \
        DST_T *d_ = (DST_T *)dst;                                                             \
        switch (src_type) {                                                                   \
        case MQ_DTYPE_FLOAT: CONVERT_FROM(DST_T, float); break;                               \
        case MQ_DTYPE_DOUBLE: CONVERT_FROM(DST_T, double); break;                             \
        case MQ_DTYPE_INT8: CONVERT_FROM(DST_T, int8_t); break;                               \
        case MQ_DTYPE_UINT8: CONVERT_FROM(DST_T, uint8_t); break;                             \
        case MQ_DTYPE_BOOL: CONVERT_FROM(DST_T, uint8_t); break;                              \
        case MQ_DTYPE_INT16: CONVERT_FROM(DST_T, int16_t); break;                             \
        case MQ_DTYPE_UINT16: CONVERT_FROM(DST_T, uint16_t); break;                           \
        case MQ_DTYPE_INT32: CONVERT_FROM(DST_T, int32_t); break;                             \
        case MQ_DTYPE_UINT32: CONVERT_FROM(DST_T, uint32_t); break;                           \
        case MQ_DTYPE_INT64: CONVERT_FROM(DST_T, int64_t); break;                             \
        case MQ_DTYPE_UINT64: CONVERT_FROM(DST_T, uint64_t); break;                           \
        case MQ_DTYPE_FLOAT16: {                                                              \
            const uint16_t *s_ = (const uint16_t *)src;                                       \
            for (int64_t i = 0; i < n; i++)                                                   \
                d_[i] = (DST_T)mq_half_to_float(s_[i]);                                       \
            break;                                                                            \
        }                                                                                     \
        case MQ_DTYPE_BFLOAT16: {                                                             \
            const uint16_t *s_ = (const uint16_t *)src;                                       \
            for (int64_t i = 0; i < n; i++)                                                   \
                d_[i] = (DST_T)mq_bfloat16_to_float(s_[i]);                                   \
            break;                                                                            \
        }                                                                                     \
        default: break;                                                                       \
        }                                                                                     \
    } while (0)

static void convert_to_work(enum work_type w, void *dst, int src_type, const void *src, int64_t n)
{
    switch (w) {
    case WORK_FLOAT: CONVERT_ANY(float); break;
    case WORK_DOUBLE: CONVERT_ANY(double); break;
    case WORK_INT64: CONVERT_ANY(int64_t); break;
    case WORK_UINT64: CONVERT_ANY(uint64_t); break;
    }
}

/* Working values into the output type; floating values reach integers by a saturating cast. */
#define STORE_INT(DST_T)                                                                      \
    do {                                                                                      \
        DST_T *d_ = (DST_T *)dst;                                                             \
        switch (w) {                                                                          \
        case WORK_FLOAT: {                                                                    \
            const float *s_ = src;                                                            \
            for (int64_t i = 0; i < n; i++)                                                   \
                d_[i] = (DST_T)mq_double_to_int64_sat(s_[i]);                                          \
            break;                                                                            \
        }                                                                                     \
        case WORK_DOUBLE: {                                                                   \
            const double *s_ = src;                                                           \
            for (int64_t i = 0; i < n; i++)                                                   \
                d_[i] = (DST_T)mq_double_to_int64_sat(s_[i]);                                          \
            break;                                                                            \
        }                                                                                     \
        case WORK_INT64: {                                                                    \
            const int64_t *s_ = src;                                                          \
            for (int64_t i = 0; i < n; i++)                                                   \
                d_[i] = (DST_T)s_[i];                                                         \
            break;                                                                            \
        }                                                                                     \
        case WORK_UINT64: {                                                                   \
            const uint64_t *s_ = src;                                                         \
            for (int64_t i = 0; i < n; i++)                                                   \
                d_[i] = (DST_T)s_[i];                                                         \
            break;                                                                            \
        }                                                                                     \
        }                                                                                     \
    } while (0)

/* float32 and float64 outputs are their own working type and never come here. */
static void store_from_work(int dst_type, void *dst, enum work_type w, const void *src, int64_t n)
{
    switch (dst_type) {
    case MQ_DTYPE_FLOAT16:
    case MQ_DTYPE_BFLOAT16: {
        /* Float16 and bfloat16 always reduce in float. */
        const float *s = src;
        uint16_t *d = dst;
        if (dst_type == MQ_DTYPE_FLOAT16)
            for (int64_t i = 0; i < n; i++)
                d[i] = mq_float_to_half(s[i]);
        else
            for (int64_t i = 0; i < n; i++)
                d[i] = mq_float_to_bfloat16(s[i]);
        break;
    }
    case MQ_DTYPE_UINT64:
        if (w == WORK_DOUBLE) {
            const double *s = src;
            uint64_t *d = dst;
            for (int64_t i = 0; i < n; i++)
                d[i] = double_to_u64(s[i]);
        } else {
            STORE_INT(uint64_t);
        }
        break;
    case MQ_DTYPE_INT64: STORE_INT(int64_t); break;
    case MQ_DTYPE_INT32: STORE_INT(int32_t); break;
    case MQ_DTYPE_UINT32: STORE_INT(uint32_t); break;
    case MQ_DTYPE_INT16: STORE_INT(int16_t); break;
    case MQ_DTYPE_UINT16: STORE_INT(uint16_t); break;
    case MQ_DTYPE_INT8: STORE_INT(int8_t); break;
    case MQ_DTYPE_UINT8: STORE_INT(uint8_t); break;
    case MQ_DTYPE_BOOL: {
        uint8_t *d = dst;
        if (w == WORK_INT64) {
            const int64_t *s = src;
            for (int64_t i = 0; i < n; i++)
                d[i] = s[i] != 0;
        } else {
            STORE_INT(uint8_t);
        }
        break;
    }
    default: break;
    }
}

static const char *const reduce_names[] = {
    [RED_SUM] = "ReduceSum",       [RED_MEAN] = "ReduceMean",
    [RED_MAX] = "ReduceMax",       [RED_MIN] = "ReduceMin",
    [RED_PROD] = "ReduceProd",     [RED_L1] = "ReduceL1",
    [RED_L2] = "ReduceL2",         [RED_SUM_SQUARE] = "ReduceSumSquare",
    [RED_LOG_SUM] = "ReduceLogSum", [RED_LOG_SUM_EXP] = "ReduceLogSumExp",
};

static int reduce_op_from_name(const char *name, enum reduce_op *op)
{
    for (size_t i = 0; i < sizeof reduce_names / sizeof reduce_names[0]; i++)
        if (strcmp(name, reduce_names[i]) == 0) {
            *op = (enum reduce_op)i;
            return 0;
        }
    return -1;
}

/* The working type for an input dtype under an op; -1 when the dtype is not reducible. */
static int choose_work(enum reduce_op op, int dtype)
{
    int real_valued = op == RED_L2 || op == RED_LOG_SUM || op == RED_LOG_SUM_EXP;
    switch (dtype) {
    case MQ_DTYPE_FLOAT:
    case MQ_DTYPE_FLOAT16:
    case MQ_DTYPE_BFLOAT16:
        return WORK_FLOAT;
    case MQ_DTYPE_DOUBLE:
        return WORK_DOUBLE;
    case MQ_DTYPE_BOOL:
        /* Only ReduceMax/ReduceMin define bool (opset 20). */
        return (op == RED_MAX || op == RED_MIN) ? WORK_INT64 : -1;
    case MQ_DTYPE_INT8:
    case MQ_DTYPE_UINT8:
    case MQ_DTYPE_INT16:
    case MQ_DTYPE_UINT16:
    case MQ_DTYPE_INT32:
    case MQ_DTYPE_UINT32:
    case MQ_DTYPE_INT64:
        return real_valued ? WORK_DOUBLE : WORK_INT64;
    case MQ_DTYPE_UINT64:
        return real_valued ? WORK_DOUBLE : WORK_UINT64;
    default:
        return -1;
    }
}

/* Identity of Max (lowest) and Min (highest) in the output type, as a working value. */
static void type_limits(int dtype, double *lo_d, double *hi_d, int64_t *lo_i, int64_t *hi_i,
                        uint64_t *hi_u)
{
    *lo_d = -INFINITY;
    *hi_d = INFINITY;
    *hi_u = UINT64_MAX;
    switch (dtype) {
    case MQ_DTYPE_INT8: *lo_i = INT8_MIN; *hi_i = INT8_MAX; break;
    case MQ_DTYPE_UINT8: *lo_i = 0; *hi_i = UINT8_MAX; break;
    case MQ_DTYPE_BOOL: *lo_i = 0; *hi_i = 1; break;
    case MQ_DTYPE_INT16: *lo_i = INT16_MIN; *hi_i = INT16_MAX; break;
    case MQ_DTYPE_UINT16: *lo_i = 0; *hi_i = UINT16_MAX; break;
    case MQ_DTYPE_INT32: *lo_i = INT32_MIN; *hi_i = INT32_MAX; break;
    case MQ_DTYPE_UINT32: *lo_i = 0; *hi_i = UINT32_MAX; break;
    default: *lo_i = INT64_MIN; *hi_i = INT64_MAX; break;
    }
}

static void work_fill(enum work_type w, void *buf, int64_t n, double vd, int64_t vi, uint64_t vu)
{
    switch (w) {
    case WORK_FLOAT: {
        float *b = buf;
        for (int64_t i = 0; i < n; i++)
            b[i] = (float)vd;
        break;
    }
    case WORK_DOUBLE: {
        double *b = buf;
        for (int64_t i = 0; i < n; i++)
            b[i] = vd;
        break;
    }
    case WORK_INT64: {
        int64_t *b = buf;
        for (int64_t i = 0; i < n; i++)
            b[i] = vi;
        break;
    }
    case WORK_UINT64: {
        uint64_t *b = buf;
        for (int64_t i = 0; i < n; i++)
            b[i] = vu;
        break;
    }
    }
}

static void run_pass(enum work_type w, const struct reduce_geom *g, enum pass_kind kind,
                     const void *in, void *out, const void *shift)
{
    switch (w) {
    case WORK_FLOAT: reduce_pass_f32(g, kind, in, out, shift); break;
    case WORK_DOUBLE: reduce_pass_f64(g, kind, in, out, shift); break;
    case WORK_INT64: reduce_pass_i64(g, kind, in, out, shift); break;
    case WORK_UINT64: reduce_pass_u64(g, kind, in, out, shift); break;
    }
}

/* Mean, L2, LogSum and LogSumExp finish each accumulated value. */
#define FINISH_FLOAT(W, SQRT, LOG)                                                            \
    do {                                                                                      \
        W *o_ = out;                                                                          \
        const W *s_ = shift;                                                                  \
        switch (op) {                                                                         \
        case RED_MEAN:                                                                        \
            for (int64_t i = 0; i < n; i++)                                                   \
                o_[i] = o_[i] / (W)count;                                                     \
            break;                                                                            \
        case RED_L2:                                                                          \
            for (int64_t i = 0; i < n; i++)                                                   \
                o_[i] = SQRT(o_[i]);                                                          \
            break;                                                                            \
        case RED_LOG_SUM:                                                                     \
            for (int64_t i = 0; i < n; i++)                                                   \
                o_[i] = LOG(o_[i]);                                                           \
            break;                                                                            \
        case RED_LOG_SUM_EXP:                                                                 \
            for (int64_t i = 0; i < n; i++)                                                   \
                o_[i] = LOG(o_[i]) + s_[i];                                                   \
            break;                                                                            \
        default: break;                                                                       \
        }                                                                                     \
    } while (0)

static void finish(enum work_type w, enum reduce_op op, void *out, const void *shift, int64_t n,
                   int64_t count)
{
    switch (w) {
    case WORK_FLOAT: FINISH_FLOAT(float, sqrtf, logf); break;
    case WORK_DOUBLE: FINISH_FLOAT(double, sqrt, log); break;
    case WORK_INT64:
        /* Integer mean truncates toward zero, as integer division does; empty sets give 0. */
        if (op == RED_MEAN && count > 0) {
            int64_t *o = out;
            for (int64_t i = 0; i < n; i++)
                o[i] /= count;
        }
        break;
    case WORK_UINT64:
        if (op == RED_MEAN && count > 0) {
            uint64_t *o = out;
            for (int64_t i = 0; i < n; i++)
                o[i] /= (uint64_t)count;
        }
        break;
    }
}

/* LogSumExp shifts by the max; an infinite or empty max shifts by 0 so no inf - inf appears. */
static void sanitize_shift(enum work_type w, void *shift, int64_t n)
{
    if (w == WORK_FLOAT) {
        float *s = shift;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(s[i]))
                s[i] = 0.0f;
    } else if (w == WORK_DOUBLE) {
        double *s = shift;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(s[i]))
                s[i] = 0.0;
    }
}

static void reduce_destroy(void *state)
{
    struct reduce_state *s = state;
    if (s)
        free(s->axes);
    free(s);
}

/* Opset from which a reduce op takes its axes as an input instead of an attribute. */
static int axes_input_since(enum reduce_op op)
{
    return op == RED_SUM ? 13 : 18;
}

static int reduce_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    enum reduce_op op;
    if (reduce_op_from_name(node->op_type, &op))
        return mq_error_set(err, "node '%s' (%s): not a reduce operator", node->name,
                            node->op_type);
    struct reduce_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    s->op = op;
    s->keepdims = mq_attr_int(node, "keepdims", 1) != 0;
    s->axes_from_input = node->opset >= axes_input_since(op);
    s->n_axes = -1;
    if (s->axes_from_input) {
        s->noop_with_empty_axes = mq_attr_int(node, "noop_with_empty_axes", 0) != 0;
        if (mq_attr_has(node, "axes")) {
            free(s);
            return mq_error_set(err, "node '%s' (%s): opset %d takes axes as an input, not an "
                                "attribute", node->name, node->op_type, node->opset);
        }
    } else {
        const int64_t *axes;
        int64_t n = mq_attr_ints(node, "axes", &axes);
        if (n > MQ_MAX_RANK) {
            free(s);
            return mq_error_set(err, "node '%s' (%s): %lld axes, more than the %d supported",
                                node->name, node->op_type, (long long)n, MQ_MAX_RANK);
        }
        if (n > 0) {
            s->axes = malloc((size_t)n * sizeof *s->axes);
            if (!s->axes) {
                free(s);
                return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory",
                                     node->name, node->op_type);
            }
            memcpy(s->axes, axes, (size_t)n * sizeof *s->axes);
        }
        s->n_axes = (int)n;
    }
    node->state = s;
    return MQ_OK;
}

/*
 * Marks the reduced axes.  noop_with_empty_axes reduces over no axis at all,
 * which still applies the op's element transform (ReduceSumSquare squares,
 * ReduceL1 takes |x|), as the spec asks.
 */
static int reduce_axes(const struct mq_kernel_node *node, const struct reduce_state *s,
                       const struct mq_tensor *data, const struct mq_tensor *axes_in,
                       int *reduced, struct mq_error *err)
{
    int64_t n = 0;
    const int64_t *list = NULL;
    if (s->axes_from_input) {
        if (axes_in) {
            if (axes_in->dtype != MQ_DTYPE_INT64)
                return mq_error_set(err, "node '%s' (%s): axes input has type %s, expected int64",
                                    node->name, node->op_type, mq_dtype_name(axes_in->dtype));
            if (axes_in->rank > 1)
                return mq_error_set(err, "node '%s' (%s): axes input has rank %d, expected 1",
                                    node->name, node->op_type, axes_in->rank);
            n = axes_in->count;
            list = axes_in->data;
        }
    } else if (s->n_axes > 0) {
        n = s->n_axes;
        list = s->axes;
    }
    for (int i = 0; i < data->rank; i++)
        reduced[i] = n == 0 && !s->noop_with_empty_axes;
    for (int64_t i = 0; i < n; i++) {
        int64_t a = list[i] < 0 ? list[i] + data->rank : list[i];
        if (a < 0 || a >= data->rank)
            return mq_error_set(err, "node '%s' (%s): axis %lld is outside [-%d, %d) for input "
                                "of rank %d", node->name, node->op_type, (long long)list[i],
                                data->rank, data->rank, data->rank);
        reduced[a] = 1;
    }
    return MQ_OK;
}

/* Reductions and ArgMin/ArgMax share one input contract: a 'data' tensor and an output. */
static int require_data(const struct mq_kernel_node *node, const struct mq_tensor *const *inputs,
                        int n_inputs, int n_outputs, const struct mq_tensor **data,
                        struct mq_error *err)
{
    *data = n_inputs > 0 ? inputs[0] : NULL;
    if (!*data)
        return mq_error_set(err, "node '%s' (%s): input 'data' is missing", node->name,
                            node->op_type);
    if (n_outputs < 1)
        return mq_error_set(err, "node '%s' (%s): no output", node->name, node->op_type);
    return MQ_OK;
}

static int reduce_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct reduce_state *s = node->state;
    const struct mq_tensor *data;
    if (require_data(node, inputs, n_inputs, n_outputs, &data, err))
        return MQ_ERR;
    int w = choose_work(s->op, data->dtype);
    if (w < 0)
        return mq_error_set(err, "node '%s' (%s): element type %s is not supported",
                            node->name, node->op_type, mq_dtype_name(data->dtype));
    int reduced[MQ_MAX_RANK] = {0};
    if (reduce_axes(node, s, data, n_inputs > 1 ? inputs[1] : NULL, reduced, err))
        return MQ_ERR;

    int64_t out_dims[MQ_MAX_RANK];
    int out_rank = 0;
    for (int i = 0; i < data->rank; i++) {
        if (!reduced[i])
            out_dims[out_rank++] = data->dims[i];
        else if (s->keepdims)
            out_dims[out_rank++] = 1;
    }
    if (mq_tensor_alloc(&outputs[0], data->dtype, out_rank, out_dims, node->name, err))
        return MQ_ERR;
    struct mq_tensor *out = &outputs[0];
    struct reduce_geom g;
    geom_build(&g, data->rank, data->dims, reduced);
    if (g.out_count == 0)
        return MQ_OK;

    enum work_type wt = (enum work_type)w;
    int wdtype = work_dtype(wt);
    struct mq_tensor in_work = {0}, out_work = {0}, shift = {0};
    const void *in_buf = data->data;
    void *out_buf = out->data;
    int rc = MQ_ERR;
    if (data->dtype != wdtype && g.in_count > 0) {
        if (mq_tensor_alloc(&in_work, wdtype, data->rank, data->dims, node->name, err))
            goto done;
        convert_to_work(wt, in_work.data, data->dtype, data->data, g.in_count);
        in_buf = in_work.data;
    }
    if (out->dtype != wdtype) {
        if (mq_tensor_alloc(&out_work, wdtype, out_rank, out_dims, node->name, err))
            goto done;
        out_buf = out_work.data;
    }
    double lo_d, hi_d;
    int64_t lo_i, hi_i;
    uint64_t hi_u;
    type_limits(data->dtype, &lo_d, &hi_d, &lo_i, &hi_i, &hi_u);

    enum pass_kind kind = PASS_SUM;
    switch (s->op) {
    case RED_SUM:
    case RED_MEAN:
    case RED_LOG_SUM: kind = PASS_SUM; break;
    case RED_PROD: kind = PASS_PROD; break;
    case RED_MAX: kind = PASS_MAX; break;
    case RED_MIN: kind = PASS_MIN; break;
    case RED_L1: kind = PASS_ABS_SUM; break;
    case RED_L2:
    case RED_SUM_SQUARE: kind = PASS_SQUARE_SUM; break;
    case RED_LOG_SUM_EXP: kind = PASS_EXP_SUM; break;
    }

    if (s->op == RED_LOG_SUM_EXP) {
        if (mq_tensor_alloc(&shift, wdtype, out_rank, out_dims, node->name, err))
            goto done;
        work_fill(wt, shift.data, g.out_count, lo_d, lo_i, 0);
        if (g.in_count > 0)
            run_pass(wt, &g, PASS_MAX, in_buf, shift.data, NULL);
        sanitize_shift(wt, shift.data, g.out_count);
    }
    if (kind == PASS_MAX)
        work_fill(wt, out_buf, g.out_count, lo_d, lo_i, 0);
    else if (kind == PASS_MIN)
        work_fill(wt, out_buf, g.out_count, hi_d, hi_i, hi_u);
    else if (kind == PASS_PROD)
        work_fill(wt, out_buf, g.out_count, 1.0, 1, 1);
    else
        work_fill(wt, out_buf, g.out_count, 0.0, 0, 0);
    if (g.in_count > 0)
        run_pass(wt, &g, kind, in_buf, out_buf, shift.data);
    finish(wt, s->op, out_buf, shift.data, g.out_count, g.reduce_count);
    if (out_buf != out->data)
        store_from_work(out->dtype, out->data, wt, out_buf, g.out_count);
    rc = MQ_OK;
done:
    mq_tensor_free(&in_work);
    mq_tensor_free(&out_work);
    mq_tensor_free(&shift);
    return rc;
}

/* ---- ArgMax / ArgMin ---------------------------------------------------------------- */

static int arg_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct arg_state *s = calloc(1, sizeof *s);
    if (!s)
        return mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                             node->op_type);
    s->is_max = strcmp(node->op_type, "ArgMax") == 0;
    int64_t axis = mq_attr_int(node, "axis", 0);
    if (axis < -MQ_MAX_RANK || axis >= MQ_MAX_RANK) {
        free(s);
        return mq_error_set(err, "node '%s' (%s): axis %lld is outside the supported ranks",
                            node->name, node->op_type, (long long)axis);
    }
    s->axis = (int)axis;
    s->keepdims = mq_attr_int(node, "keepdims", 1) != 0;
    /* select_last_index exists from opset 12; older nodes always pick the first. */
    s->select_last_index = node->opset >= 12 && mq_attr_int(node, "select_last_index", 0) != 0;
    node->state = s;
    return MQ_OK;
}

/*
 * One body per type: `best` holds the running extreme for each inner position,
 * the output the index.  NaN wins like numpy's argmax/argmin (first NaN, or
 * last with select_last_index).
 */
#define ARG_BODY(T)                                                                           \
    do {                                                                                      \
        const T *x = (const T *)src;                                                          \
        T *best = (T *)scratch;                                                               \
        for (int64_t o = 0; o < outer; o++) {                                                 \
            const T *base = x + o * axis_len * inner;                                         \
            int64_t *dst = idx + o * inner;                                                   \
            for (int64_t k = 0; k < inner; k++) {                                             \
                best[k] = base[k];                                                            \
                dst[k] = 0;                                                                   \
            }                                                                                 \
            for (int64_t j = 1; j < axis_len; j++) {                                          \
                const T *row = base + j * inner;                                              \
                for (int64_t k = 0; k < inner; k++) {                                         \
                    T v = row[k], b = best[k];                                                \
                    int take;                                                                 \
                    if (b != b)                                                               \
                        take = last && v != v;                                                \
                    else if (v != v)                                                          \
                        take = 1;                                                             \
                    else if (is_max)                                                          \
                        take = last ? v >= b : v > b;                                         \
                    else                                                                      \
                        take = last ? v <= b : v < b;                                         \
                    if (take) {                                                               \
                        best[k] = v;                                                          \
                        dst[k] = j;                                                           \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wfloat-equal"
#endif
static void arg_compute(int dtype, const void *src, void *scratch, int64_t *idx, int64_t outer,
                        int64_t axis_len, int64_t inner, int is_max, int last)
{
    switch (dtype) {
    case MQ_DTYPE_FLOAT: ARG_BODY(float); break;
    case MQ_DTYPE_DOUBLE: ARG_BODY(double); break;
    case MQ_DTYPE_INT8: ARG_BODY(int8_t); break;
    case MQ_DTYPE_UINT8: ARG_BODY(uint8_t); break;
    case MQ_DTYPE_INT16: ARG_BODY(int16_t); break;
    case MQ_DTYPE_UINT16: ARG_BODY(uint16_t); break;
    case MQ_DTYPE_INT32: ARG_BODY(int32_t); break;
    case MQ_DTYPE_UINT32: ARG_BODY(uint32_t); break;
    case MQ_DTYPE_INT64: ARG_BODY(int64_t); break;
    case MQ_DTYPE_UINT64: ARG_BODY(uint64_t); break;
    default: break;
    }
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

static int arg_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct arg_state *s = node->state;
    const struct mq_tensor *data;
    if (require_data(node, inputs, n_inputs, n_outputs, &data, err))
        return MQ_ERR;
    switch (data->dtype) {
    case MQ_DTYPE_FLOAT: case MQ_DTYPE_DOUBLE: case MQ_DTYPE_FLOAT16: case MQ_DTYPE_BFLOAT16:
    case MQ_DTYPE_INT8: case MQ_DTYPE_UINT8: case MQ_DTYPE_INT16: case MQ_DTYPE_UINT16:
    case MQ_DTYPE_INT32: case MQ_DTYPE_UINT32: case MQ_DTYPE_INT64: case MQ_DTYPE_UINT64:
        break;
    default:
        return mq_error_set(err, "node '%s' (%s): element type %s is not supported",
                            node->name, node->op_type, mq_dtype_name(data->dtype));
    }
    if (data->rank == 0)
        return mq_error_set(err, "node '%s' (%s): input is a scalar; it needs at least one axis",
                            node->name, node->op_type);
    int axis;
    if (mq_axis_normalize(node, s->axis, data->rank, &axis, err))
        return MQ_ERR;
    int64_t outer = 1, inner = 1, axis_len = data->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= data->dims[i];
    for (int i = axis + 1; i < data->rank; i++)
        inner *= data->dims[i];
    int64_t out_dims[MQ_MAX_RANK];
    int out_rank = 0;
    for (int i = 0; i < data->rank; i++) {
        if (i != axis)
            out_dims[out_rank++] = data->dims[i];
        else if (s->keepdims)
            out_dims[out_rank++] = 1;
    }
    if (axis_len == 0 && outer * inner > 0)
        return mq_error_set(err, "node '%s' (%s): axis %d has length 0; there is no index to "
                            "return", node->name, node->op_type, axis);
    if (mq_tensor_alloc(&outputs[0], MQ_DTYPE_INT64, out_rank, out_dims, node->name, err))
        return MQ_ERR;
    if (outputs[0].count == 0)
        return MQ_OK;

    struct mq_tensor conv = {0}, scratch = {0};
    const void *src = data->data;
    int dtype = data->dtype;
    int rc = MQ_ERR;
    if (dtype == MQ_DTYPE_FLOAT16 || dtype == MQ_DTYPE_BFLOAT16) {
        if (mq_tensor_alloc(&conv, MQ_DTYPE_FLOAT, data->rank, data->dims, node->name, err))
            goto done;
        convert_to_work(WORK_FLOAT, conv.data, dtype, data->data, data->count);
        src = conv.data;
        dtype = MQ_DTYPE_FLOAT;
    }
    if (mq_tensor_alloc(&scratch, dtype, 1, &inner, node->name, err))
        goto done;
    arg_compute(dtype, src, scratch.data, outputs[0].data, outer, axis_len, inner, s->is_max,
                s->select_last_index);
    rc = MQ_OK;
done:
    mq_tensor_free(&conv);
    mq_tensor_free(&scratch);
    return rc;
}

static void arg_destroy(void *state) { free(state); }

#define REDUCE_ATTR(NAME, UNTIL) {"", NAME, 1, UNTIL, reduce_prepare, reduce_run, reduce_destroy}
#define REDUCE_INPUT(NAME, SINCE) {"", NAME, SINCE, 0, reduce_prepare, reduce_run, reduce_destroy}

/*
 * Opset 11 allowed negative axes, 12/13/18/20 widened the type lists (all
 * accepted here); the signature changed when axes became an input: opset 13
 * for ReduceSum, 18 for the others.
 */
const struct mq_kernel mq_kernels_reduce[] = {
    REDUCE_ATTR("ReduceSum", 12),
    REDUCE_INPUT("ReduceSum", 13),
    REDUCE_ATTR("ReduceMean", 17),
    REDUCE_INPUT("ReduceMean", 18),
    REDUCE_ATTR("ReduceMax", 17),
    REDUCE_INPUT("ReduceMax", 18),
    REDUCE_ATTR("ReduceMin", 17),
    REDUCE_INPUT("ReduceMin", 18),
    REDUCE_ATTR("ReduceProd", 17),
    REDUCE_INPUT("ReduceProd", 18),
    REDUCE_ATTR("ReduceL1", 17),
    REDUCE_INPUT("ReduceL1", 18),
    REDUCE_ATTR("ReduceL2", 17),
    REDUCE_INPUT("ReduceL2", 18),
    REDUCE_ATTR("ReduceSumSquare", 17),
    REDUCE_INPUT("ReduceSumSquare", 18),
    REDUCE_ATTR("ReduceLogSum", 17),
    REDUCE_INPUT("ReduceLogSum", 18),
    REDUCE_ATTR("ReduceLogSumExp", 17),
    REDUCE_INPUT("ReduceLogSumExp", 18),
    /* select_last_index arrived in opset 12. */
    {"", "ArgMax", 1, 11, arg_prepare, arg_run, arg_destroy},
    {"", "ArgMax", 12, 0, arg_prepare, arg_run, arg_destroy},
    {"", "ArgMin", 1, 11, arg_prepare, arg_run, arg_destroy},
    {"", "ArgMin", 12, 0, arg_prepare, arg_run, arg_destroy},
    {0},
};
