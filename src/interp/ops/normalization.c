/*
 * Normalization: BatchNormalization, InstanceNormalization,
 * LayerNormalization, GroupNormalization, LRN and MeanVarianceNormalization.
 *
 * Statistics (means, variances) accumulate in double, two passes, so a large
 * mean cannot swallow a small variance.  The per-element work is then an
 * affine map y = x * a + b with per-channel (or per-element) a and b in the
 * tensor's own type.  Parameters are read through mq_tensor_get_double, so
 * BatchNormalization-15's mixed parameter types need no extra code.
 * float16 and bfloat16 run on float32 copies (interp/ops/widen.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/fused.h"
#include "interp/ops/scratch.h"
#include "interp/ops/vector_loop.h"
#include "interp/ops/widen.h"

struct norm_state {
    double epsilon;
    double momentum;
    int training;             /* BatchNormalization-14+: training_mode */
    int spatial;              /* BatchNormalization before 9: 0 means per-activation parameters */
    int axis;                 /* LayerNormalization (unnormalised) */
    int stash_type;           /* LayerNormalization: dtype of Mean and InvStdDev */
    int64_t num_groups;       /* GroupNormalization */
    int64_t size;             /* LRN */
    double alpha, beta, bias; /* LRN */
    int n_axes;               /* MeanVarianceNormalization */
    int64_t axes[MQ_MAX_RANK];
};

/* y = x * a + b over `count` elements. */
#define DEFINE_NORM(T, SFX)                                                                      \
    MQ_SIMD_CLONES                                                                               \
    static void affine_##SFX(const T *restrict x, T *restrict y, int64_t count, T a, T b)        \
    {                                                                                            \
        MQ_VECTOR_LOOP(i, count, y[i] = x[i] * a + b);                                           \
    }                                                                                            \
                                                                                                 \
    /* the same, then Relu's x < 0 ? 0 : x (BatchNormalization fused with Relu) */               \
    MQ_SIMD_CLONES                                                                               \
    static void affine_relu_##SFX(const T *restrict x, T *restrict y, int64_t count, T a, T b)   \
    {                                                                                            \
        MQ_VECTOR_LOOP(i, count, const T v = x[i] * a + b; y[i] = v < 0 ? (T)0 : v);             \
    }                                                                                            \
                                                                                                 \
    static void moments_##SFX(const T *x, int64_t count, double *mean, double *var)              \
    {                                                                                            \
        double s = 0.0, q = 0.0;                                                                 \
        for (int64_t i = 0; i < count; i++)                                                      \
            s += (double)x[i];                                                                   \
        double m = count > 0 ? s / (double)count : 0.0;                                          \
        for (int64_t i = 0; i < count; i++) {                                                    \
            double d = (double)x[i] - m;                                                         \
            q += d * d;                                                                          \
        }                                                                                        \
        *mean = m;                                                                               \
        *var = count > 0 ? q / (double)count : 0.0;                                              \
    }                                                                                            \
                                                                                                 \
    /* mean and variance of channel c over the batch and the spatial axes */                     \
    static void channel_moments_##SFX(const T *x, int64_t batch, int64_t channels,               \
                                      int64_t size, int64_t c, double *mean, double *var)        \
    {                                                                                            \
        double s = 0.0, q = 0.0, m;                                                              \
        int64_t cnt = batch * size;                                                              \
        for (int64_t n = 0; n < batch; n++) {                                                    \
            const T *p = x + (n * channels + c) * size;                                          \
            for (int64_t i = 0; i < size; i++)                                                   \
                s += (double)p[i];                                                               \
        }                                                                                        \
        m = cnt ? s / (double)cnt : 0.0;                                                         \
        for (int64_t n = 0; n < batch; n++) {                                                    \
            const T *p = x + (n * channels + c) * size;                                          \
            for (int64_t i = 0; i < size; i++)                                                   \
                q += ((double)p[i] - m) * ((double)p[i] - m);                                    \
        }                                                                                        \
        *mean = m;                                                                               \
        *var = cnt ? q / (double)cnt : 0.0;                                                      \
    }                                                                                            \
                                                                                                 \
    /* y = ((x - mean) * inv) * scale[i] + bias[i] along one normalised row */                   \
    MQ_SIMD_CLONES                                                                               \
    static void scale_row_##SFX(const T *restrict x, T *restrict y, int64_t count, T mean,       \
                                T inv, const T *restrict scale, const T *restrict bias)          \
    {                                                                                            \
        if (bias)                                                                                \
            MQ_VECTOR_LOOP(i, count, y[i] = (x[i] - mean) * inv * scale[i] + bias[i]);           \
        else                                                                                     \
            MQ_VECTOR_LOOP(i, count, y[i] = (x[i] - mean) * inv * scale[i]);                     \
    }

DEFINE_NORM(float, f32)
DEFINE_NORM(double, f64)

static void norm_destroy(void *state) { free(state); }

static struct norm_state *new_state(struct mq_kernel_node *node, struct mq_error *err)
{
    struct norm_state *s = calloc(1, sizeof *s);
    if (!s) {
        mq_error_code(err, MQ_ERR_MEMORY, "node '%s' (%s): out of memory", node->name,
                      node->op_type);
        return NULL;
    }
    node->state = s;
    s->epsilon = mq_attr_float(node, "epsilon", 1e-5f);
    return s;
}

static int check_float_input(const struct mq_kernel_node *node, const struct mq_tensor *t,
                             const char *what, int min_rank, struct mq_error *err)
{
    char shape[128];
    if (!t)
        return mq_error_set(err, "node '%s' (%s): input %s is required", node->name,
                            node->op_type, what);
    if (t->dtype != MQ_DTYPE_FLOAT && t->dtype != MQ_DTYPE_DOUBLE)
        return mq_error_set(err, "node '%s' (%s): input %s has element type %s (float16, "
                            "bfloat16, float32 and float64 are supported)", node->name,
                            node->op_type, what, mq_dtype_name(t->dtype));
    if (t->rank < min_rank)
        return mq_error_set(err, "node '%s' (%s): input %s has shape %s, expected rank >= %d",
                            node->name, node->op_type, what,
                            mq_shape_format(t->rank, t->dims, shape, sizeof shape), min_rank);
    return MQ_OK;
}

/* A parameter tensor with exactly `count` elements of a float type. */
static int check_param(const struct mq_kernel_node *node, const struct mq_tensor *t,
                       const char *what, int64_t count, struct mq_error *err)
{
    char shape[128];
    if (!t)
        return mq_error_set(err, "node '%s' (%s): input %s is required", node->name,
                            node->op_type, what);
    if (!mq_dtype_is_float(t->dtype))
        return mq_error_set(err, "node '%s' (%s): input %s has element type %s, expected a float "
                            "type", node->name, node->op_type, what, mq_dtype_name(t->dtype));
    if (t->count != count)
        return mq_error_set(err, "node '%s' (%s): input %s has shape %s, expected %lld elements",
                            node->name, node->op_type, what,
                            mq_shape_format(t->rank, t->dims, shape, sizeof shape),
                            (long long)count);
    return MQ_OK;
}

static int output_named(const struct mq_kernel_node *node, int i)
{
    const Onnx__NodeProto *p = node->proto;
    return (size_t)i < p->n_output && p->output[i] && p->output[i][0];
}

/* Writes v into element i of a float32 or float64 tensor. */
static void put_real(struct mq_tensor *t, int64_t i, double v)
{
    if (t->dtype == MQ_DTYPE_DOUBLE)
        ((double *)t->data)[i] = v;
    else
        ((float *)t->data)[i] = (float)v;
}

/* ---- BatchNormalization ---------------------------------------------------------------- */

static int batchnorm_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct norm_state *s = new_state(node, err);
    if (!s)
        return MQ_ERR;
    s->momentum = mq_attr_float(node, "momentum", 0.9f);
    s->spatial = node->opset < 9 ? mq_attr_int(node, "spatial", 1) != 0 : 1;
    if (node->opset >= 14) {
        s->training = mq_attr_int(node, "training_mode", 0) != 0;
        return MQ_OK;
    }
    /* Before 14, training shows as is_test=0 (up to 6) or as the statistics outputs. */
    int wants_stats = 0;
    for (int i = 1; i < node->n_outputs; i++)
        wants_stats |= output_named(node, i);
    if (wants_stats)
        return mq_error_set(err, "node '%s' (%s): training outputs (mean, var, saved_mean, "
                            "saved_var) are not supported at opset %d; only inference is",
                            node->name, node->op_type, node->opset);
    return MQ_OK;
}

static int batchnorm_run_common(const struct mq_kernel_node *node,
                                const struct mq_tensor *const *inputs, int n_inputs,
                                struct mq_tensor *outputs, int n_outputs, int relu,
                                struct mq_error *err)
{
    const struct norm_state *s = node->state;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    if (check_float_input(node, x, "X", 2, err))
        return MQ_ERR;
    int64_t batch = x->dims[0], channels = x->dims[1];
    int64_t size = mq_dims_count(x->rank - 2, x->dims + 2);
    /* spatial=0 (before opset 9): a parameter per element of X[0]; [C] parameters still work */
    int per_element = !s->spatial && !s->training && n_inputs > 1 && inputs[1] &&
                      inputs[1]->count == channels * size && size != 1;
    int64_t pcount = per_element ? channels * size : channels;
    static const char *names[] = {"X", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++)
        if (check_param(node, i < n_inputs ? inputs[i] : NULL, names[i], pcount, err))
            return MQ_ERR;
    const struct mq_tensor *scale = inputs[1], *bias = inputs[2], *mean = inputs[3],
                           *var = inputs[4];
    if (mq_tensor_alloc_uninit(&outputs[0], x->dtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    double *stat = NULL;
    if (s->training) {
        /* batch statistics per channel, then the running averages of outputs 1 and 2 */
        stat = mq_scratch_alloc(node, 2 * channels, sizeof(double), err);
        if (!stat)
            return MQ_ERR;
        for (int64_t c = 0; c < channels; c++) {
            if (x->dtype == MQ_DTYPE_FLOAT)
                channel_moments_f32(x->data, batch, channels, size, c, &stat[c],
                                    &stat[channels + c]);
            else
                channel_moments_f64(x->data, batch, channels, size, c, &stat[c],
                                    &stat[channels + c]);
        }
        for (int o = 1; o < 3 && o < n_outputs; o++) {
            const struct mq_tensor *run = o == 1 ? mean : var;
            if (mq_tensor_alloc_uninit(&outputs[o], run->dtype, run->rank, run->dims, node->name,
                                       err)) {
                mq_scratch_free(stat, 2 * channels, sizeof(double));
                return MQ_ERR;
            }
            for (int64_t c = 0; c < channels; c++)
                put_real(&outputs[o], c,
                         mq_tensor_get_double(run, c) * s->momentum +
                             stat[(o - 1) * channels + c] * (1.0 - s->momentum));
        }
    }
    for (int64_t p = 0; p < pcount; p++) {
        double m = stat ? stat[p] : mq_tensor_get_double(mean, p);
        double v = stat ? stat[channels + p] : mq_tensor_get_double(var, p);
        double a = mq_tensor_get_double(scale, p) / sqrt(v + s->epsilon);
        double b = mq_tensor_get_double(bias, p) - m * a;
        int64_t run_len = per_element ? 1 : size;
        int64_t c = per_element ? p / size : p, inner = per_element ? p % size : 0;
        for (int64_t n = 0; n < batch; n++) {
            int64_t off = (n * channels + c) * size + inner;
            if (x->dtype == MQ_DTYPE_FLOAT)
                (relu ? affine_relu_f32 : affine_f32)((const float *)x->data + off,
                                                      (float *)outputs[0].data + off, run_len,
                                                      (float)a, (float)b);
            else
                (relu ? affine_relu_f64 : affine_f64)((const double *)x->data + off,
                                                      (double *)outputs[0].data + off, run_len,
                                                      a, b);
        }
    }
    if (stat)
        mq_scratch_free(stat, 2 * channels, sizeof(double));
    return MQ_OK;
}

static int batchnorm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, batchnorm_run, 0,
                            err);
    return batchnorm_run_common(node, inputs, n_inputs, outputs, n_outputs, 0, err);
}

static int batchnorm_relu_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, batchnorm_relu_run,
                            0, err);
    return batchnorm_run_common(node, inputs, n_inputs, outputs, n_outputs, 1, err);
}

/* ---- InstanceNormalization and GroupNormalization -------------------------------------- */

static int instancenorm_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    return new_state(node, err) ? MQ_OK : MQ_ERR;
}

static int groupnorm_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct norm_state *s = new_state(node, err);
    if (!s)
        return MQ_ERR;
    if (!mq_attr_has(node, "num_groups"))
        return mq_error_set(err, "node '%s' (%s): attribute num_groups is required", node->name,
                            node->op_type);
    s->num_groups = mq_attr_int(node, "num_groups", 1);
    if (s->num_groups < 1)
        return mq_error_set(err, "node '%s' (%s): num_groups %lld must be >= 1", node->name,
                            node->op_type, (long long)s->num_groups);
    return MQ_OK;
}

/*
 * Normalises groups of `per_group` channels of `size` elements each over all
 * their elements; InstanceNormalization is one channel per group.  Scale and
 * bias hold one value per channel, or one per group when per_group_params.
 */
static int group_normalize(const struct mq_kernel_node *node, const struct mq_tensor *x,
                           const struct mq_tensor *scale, const struct mq_tensor *bias,
                           int64_t groups, int per_group_params, double epsilon,
                           struct mq_tensor *y, struct mq_error *err)
{
    int64_t batch = x->dims[0], channels = x->dims[1];
    int64_t size = mq_dims_count(x->rank - 2, x->dims + 2);
    int64_t per_group = channels / groups;
    int64_t block = per_group * size;
    if (mq_tensor_alloc_uninit(y, x->dtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    for (int64_t n = 0; n < batch; n++) {
        for (int64_t g = 0; g < groups; g++) {
            int64_t off = (n * groups + g) * block;
            double mean, var;
            if (x->dtype == MQ_DTYPE_FLOAT)
                moments_f32((const float *)x->data + off, block, &mean, &var);
            else
                moments_f64((const double *)x->data + off, block, &mean, &var);
            double inv = 1.0 / sqrt(var + epsilon);
            for (int64_t j = 0; j < per_group; j++) {
                int64_t c = g * per_group + j, p = per_group_params ? g : c;
                double a = inv * mq_tensor_get_double(scale, p);
                double b = mq_tensor_get_double(bias, p) - mean * a;
                int64_t o = off + j * size;
                if (x->dtype == MQ_DTYPE_FLOAT)
                    affine_f32((const float *)x->data + o, (float *)y->data + o, size, (float)a,
                               (float)b);
                else
                    affine_f64((const double *)x->data + o, (double *)y->data + o, size, a, b);
            }
        }
    }
    return MQ_OK;
}

static int instancenorm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                            const struct mq_tensor *const *inputs, int n_inputs,
                            struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, instancenorm_run,
                            0, err);
    const struct norm_state *s = node->state;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    if (check_float_input(node, x, "input", 2, err))
        return MQ_ERR;
    int64_t channels = x->dims[1];
    if (check_param(node, n_inputs > 1 ? inputs[1] : NULL, "scale", channels, err) ||
        check_param(node, n_inputs > 2 ? inputs[2] : NULL, "B", channels, err))
        return MQ_ERR;
    if (channels == 0)
        return mq_tensor_alloc(&outputs[0], x->dtype, x->rank, x->dims, node->name, err);
    return group_normalize(node, x, inputs[1], inputs[2], channels, 0, s->epsilon, &outputs[0],
                           err);
}

static int groupnorm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, groupnorm_run, 0,
                            err);
    const struct norm_state *s = node->state;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    char shape[128];
    if (check_float_input(node, x, "X", 2, err))
        return MQ_ERR;
    int64_t channels = x->dims[1];
    if (channels % s->num_groups != 0)
        return mq_error_set(err, "node '%s' (%s): X has shape %s, whose %lld channels do not "
                            "divide into num_groups %lld", node->name, node->op_type,
                            mq_shape_format(x->rank, x->dims, shape, sizeof shape),
                            (long long)channels, (long long)s->num_groups);
    /* GroupNormalization-18 has one scale/bias per group; version 21 one per channel. */
    int per_group = node->opset < 21;
    int64_t pcount = per_group ? s->num_groups : channels;
    if (check_param(node, n_inputs > 1 ? inputs[1] : NULL, "scale", pcount, err) ||
        check_param(node, n_inputs > 2 ? inputs[2] : NULL, "bias", pcount, err))
        return MQ_ERR;
    return group_normalize(node, x, inputs[1], inputs[2], s->num_groups, per_group, s->epsilon,
                           &outputs[0], err);
}

/* ---- LayerNormalization ---------------------------------------------------------------- */

static int layernorm_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct norm_state *s = new_state(node, err);
    if (!s)
        return MQ_ERR;
    int64_t axis = mq_attr_int(node, "axis", -1);
    if (axis < -MQ_MAX_RANK || axis >= MQ_MAX_RANK)
        return mq_error_set(err, "node '%s' (%s): axis %lld is out of range", node->name,
                            node->op_type, (long long)axis);
    s->axis = (int)axis;
    s->stash_type = (int)mq_attr_int(node, "stash_type", MQ_DTYPE_FLOAT);
    if (!mq_dtype_is_float(s->stash_type))
        return mq_error_set(err, "node '%s' (%s): stash_type %d is not a float type",
                            node->name, node->op_type, s->stash_type);
    return MQ_OK;
}

/*
 * Expands a Scale or B tensor that broadcasts to the normalised shape
 * dims[0..n) into `count` values of the kernel's type.
 */
static int expand_param(const struct mq_kernel_node *node, const struct mq_tensor *p,
                        const char *what, int n, const int64_t *dims, int64_t count, int dtype,
                        void **out, struct mq_error *err)
{
    char s1[128], s2[128];
    if (!mq_dtype_is_float(p->dtype))
        return mq_error_set(err, "node '%s' (%s): input %s has element type %s, expected a float "
                            "type", node->name, node->op_type, what, mq_dtype_name(p->dtype));
    int ok = p->rank <= n;
    int64_t strides[MQ_MAX_RANK], step = 1;
    for (int i = n - 1; i >= 0; i--) {
        int pi = i - (n - p->rank);
        int64_t pd = pi >= 0 ? p->dims[pi] : 1;
        if (pd != dims[i] && pd != 1)
            ok = 0;
        strides[i] = pd == 1 ? 0 : step;
        step *= pd;
    }
    if (!ok)
        return mq_error_set(err, "node '%s' (%s): input %s has shape %s, which does not "
                            "broadcast to the normalised shape %s", node->name, node->op_type,
                            what, mq_shape_format(p->rank, p->dims, s1, sizeof s1),
                            mq_shape_format(n, dims, s2, sizeof s2));
    size_t elem = mq_dtype_size(dtype);
    void *buf = mq_scratch_alloc(node, count, elem, err);
    if (!buf)
        return MQ_ERR;
    int64_t idx[MQ_MAX_RANK] = {0}, src = 0;
    for (int64_t i = 0; i < count; i++) {
        double v = mq_tensor_get_double(p, src);
        if (dtype == MQ_DTYPE_DOUBLE)
            ((double *)buf)[i] = v;
        else
            ((float *)buf)[i] = (float)v;
        for (int d = n - 1; d >= 0; d--) {
            src += strides[d];
            if (++idx[d] < dims[d])
                break;
            src -= strides[d] * dims[d];
            idx[d] = 0;
        }
    }
    *out = buf;
    return MQ_OK;
}

static int layernorm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, layernorm_run,
                            0x6u, err);
    const struct norm_state *s = node->state;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    const struct mq_tensor *scale = n_inputs > 1 ? inputs[1] : NULL;
    const struct mq_tensor *bias = n_inputs > 2 ? inputs[2] : NULL;
    if (check_float_input(node, x, "X", 1, err))
        return MQ_ERR;
    if (!scale)
        return mq_error_set(err, "node '%s' (%s): input Scale is required", node->name,
                            node->op_type);
    int axis;
    if (mq_axis_normalize(node, s->axis, x->rank, &axis, err))
        return MQ_ERR;
    int n = x->rank - axis;
    int64_t rows = mq_dims_count(axis, x->dims);
    int64_t cols = mq_dims_count(n, x->dims + axis);
    size_t elem = mq_dtype_size(x->dtype);
    void *sc = NULL, *bi = NULL;
    int rc = MQ_ERR;
    if (expand_param(node, scale, "Scale", n, x->dims + axis, cols, x->dtype, &sc, err) ||
        (bias && expand_param(node, bias, "B", n, x->dims + axis, cols, x->dtype, &bi, err)))
        goto done;
    if (mq_tensor_alloc_uninit(&outputs[0], x->dtype, x->rank, x->dims, node->name, err))
        goto done;
    /* Mean and InvStdDev: X's leading axes, 1 for each normalised one, typed by stash_type. */
    int64_t sdims[MQ_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        sdims[i] = i < axis ? x->dims[i] : 1;
    for (int o = 1; o < 3 && o < n_outputs; o++)
        if (mq_tensor_alloc_uninit(&outputs[o], MQ_DTYPE_FLOAT, x->rank, sdims, node->name, err))
            goto done;
    for (int64_t r = 0; r < rows; r++) {
        double mean, var;
        int64_t off = r * cols;
        if (x->dtype == MQ_DTYPE_FLOAT)
            moments_f32((const float *)x->data + off, cols, &mean, &var);
        else
            moments_f64((const double *)x->data + off, cols, &mean, &var);
        double inv = 1.0 / sqrt(var + s->epsilon);
        if (x->dtype == MQ_DTYPE_FLOAT)
            scale_row_f32((const float *)x->data + off, (float *)outputs[0].data + off, cols,
                          (float)mean, (float)inv, sc, bi);
        else
            scale_row_f64((const double *)x->data + off, (double *)outputs[0].data + off, cols,
                          mean, inv, sc, bi);
        if (n_outputs > 1 && outputs[1].data)
            ((float *)outputs[1].data)[r] = (float)mean;
        if (n_outputs > 2 && outputs[2].data)
            ((float *)outputs[2].data)[r] = (float)inv;
    }
    rc = MQ_OK;
    for (int o = 1; o < 3 && o < n_outputs && rc == MQ_OK; o++)
        if (s->stash_type != MQ_DTYPE_FLOAT && outputs[o].dtype == MQ_DTYPE_FLOAT) {
            if (s->stash_type == MQ_DTYPE_DOUBLE) {
                struct mq_tensor wide;
                rc = mq_tensor_alloc(&wide, MQ_DTYPE_DOUBLE, x->rank, sdims, node->name, err);
                for (int64_t i = 0; rc == MQ_OK && i < wide.count; i++)
                    ((double *)wide.data)[i] = ((float *)outputs[o].data)[i];
                if (rc == MQ_OK) {
                    mq_tensor_free(&outputs[o]);
                    mq_tensor_move(&outputs[o], &wide);
                }
            } else {
                rc = mq_narrow_float(&outputs[o], s->stash_type, node->name, err);
            }
        }
done:
    if (sc)
        mq_scratch_free(sc, cols, elem);
    if (bi)
        mq_scratch_free(bi, cols, elem);
    return rc;
}

/* ---- LRN --------------------------------------------------------------------------------- */

static int lrn_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct norm_state *s = new_state(node, err);
    if (!s)
        return MQ_ERR;
    if (!mq_attr_has(node, "size"))
        return mq_error_set(err, "node '%s' (%s): attribute size is required", node->name,
                            node->op_type);
    s->size = mq_attr_int(node, "size", 1);
    if (s->size < 1)
        return mq_error_set(err, "node '%s' (%s): size %lld must be >= 1", node->name,
                            node->op_type, (long long)s->size);
    s->alpha = mq_attr_float(node, "alpha", 1e-4f);
    s->beta = mq_attr_float(node, "beta", 0.75f);
    s->bias = mq_attr_float(node, "bias", 1.0f);
    return MQ_OK;
}

#define DEFINE_LRN(T, SFX)                                                                       \
    static void lrn_##SFX(const T *x, T *y, int64_t batch, int64_t channels, int64_t size,       \
                          const struct norm_state *s, T *sum)                                    \
    {                                                                                            \
        const int64_t before = (s->size - 1) / 2, after = s->size - 1 - before;                  \
        const T scale = (T)(s->alpha / (double)s->size), bias = (T)s->bias;                      \
        const double beta = s->beta;                                                             \
        for (int64_t n = 0; n < batch; n++) {                                                    \
            const T *xn = x + n * channels * size;                                               \
            T *yn = y + n * channels * size;                                                     \
            for (int64_t c = 0; c < channels; c++) {                                             \
                int64_t c0 = c - before < 0 ? 0 : c - before;                                    \
                int64_t c1 = c + after >= channels ? channels - 1 : c + after;                   \
                memset(sum, 0, (size_t)size * sizeof(T));                                        \
                for (int64_t k = c0; k <= c1; k++) {                                             \
                    const T *xk = xn + k * size;                                                 \
                    for (int64_t i = 0; i < size; i++)                                           \
                        sum[i] += xk[i] * xk[i];                                                 \
                }                                                                                \
                const T *xc = xn + c * size;                                                     \
                T *yc = yn + c * size;                                                           \
                for (int64_t i = 0; i < size; i++)                                               \
                    yc[i] = xc[i] / (T)pow((double)(bias + scale * sum[i]), beta);               \
            }                                                                                    \
        }                                                                                        \
    }

DEFINE_LRN(float, f32)
DEFINE_LRN(double, f64)

static int lrn_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs, struct mq_tensor *outputs,
                   int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, lrn_run, 0, err);
    const struct norm_state *s = node->state;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    if (check_float_input(node, x, "X", 2, err))
        return MQ_ERR;
    if (mq_tensor_alloc_uninit(&outputs[0], x->dtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    int64_t size = mq_dims_count(x->rank - 2, x->dims + 2);
    size_t elem = mq_dtype_size(x->dtype);
    void *sum = mq_scratch_alloc(node, size, elem, err);
    if (!sum)
        return MQ_ERR;
    if (x->dtype == MQ_DTYPE_FLOAT)
        lrn_f32(x->data, outputs[0].data, x->dims[0], x->dims[1], size, s, sum);
    else
        lrn_f64(x->data, outputs[0].data, x->dims[0], x->dims[1], size, s, sum);
    mq_scratch_free(sum, size, elem);
    return MQ_OK;
}

/* ---- MeanVarianceNormalization ----------------------------------------------------------- */

static int mvn_prepare(struct mq_kernel_node *node, struct mq_error *err)
{
    struct norm_state *s = new_state(node, err);
    if (!s)
        return MQ_ERR;
    const int64_t *v = NULL;
    int64_t n = mq_attr_ints(node, "axes", &v);
    if (n < 0) {
        static const int64_t defaults[] = {0, 2, 3};
        s->n_axes = 3;
        memcpy(s->axes, defaults, sizeof defaults);
        return MQ_OK;
    }
    if (n > MQ_MAX_RANK)
        return mq_error_set(err, "node '%s' (%s): axes has %lld values", node->name,
                            node->op_type, (long long)n);
    s->n_axes = (int)n;
    memcpy(s->axes, v, (size_t)n * sizeof v[0]);
    return MQ_OK;
}

/*
 * Element i of X maps to statistic k through strides that are 0 on reduced
 * axes; pass 0 sums, pass 1 adds squared deviations, pass 2 writes Y.
 */
#define DEFINE_MVN(T, SFX)                                                                       \
    static void mvn_##SFX(const T *x, T *y, int rank, const int64_t *dims, int64_t count,        \
                          const int64_t *stat_strides, int64_t stat_count, double *stat)         \
    {                                                                                            \
        double *mean = stat, *m2 = stat + stat_count;                                            \
        const double group = (double)(count / stat_count);                                       \
        memset(stat, 0, (size_t)(2 * stat_count) * sizeof(double));                              \
        for (int pass = 0; pass < 3; pass++) {                                                   \
            int64_t idx[MQ_MAX_RANK] = {0}, k = 0;                                               \
            for (int64_t i = 0; i < count; i++) {                                                \
                double v = (double)x[i];                                                         \
                if (pass == 0)                                                                   \
                    mean[k] += v;                                                                \
                else if (pass == 1)                                                              \
                    m2[k] += (v - mean[k]) * (v - mean[k]);                                      \
                else                                                                             \
                    y[i] = (T)((v - mean[k]) / (sqrt(m2[k]) + 1e-9));                            \
                for (int d = rank - 1; d >= 0; d--) {                                            \
                    k += stat_strides[d];                                                        \
                    if (++idx[d] < dims[d])                                                      \
                        break;                                                                   \
                    k -= stat_strides[d] * dims[d];                                              \
                    idx[d] = 0;                                                                  \
                }                                                                                \
            }                                                                                    \
            for (int64_t j = 0; j < stat_count; j++) {                                           \
                if (pass == 0)                                                                   \
                    mean[j] /= group;                                                            \
                else if (pass == 1)                                                              \
                    m2[j] /= group;                                                              \
            }                                                                                    \
        }                                                                                        \
    }

DEFINE_MVN(float, f32)
DEFINE_MVN(double, f64)

/* Mean and variance over `axes`: the statistics have X's shape with those axes at 1. */
static int mvn_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs, struct mq_tensor *outputs,
                   int n_outputs, struct mq_error *err)
{
    if (mq_widen_needed(inputs, n_inputs))
        return mq_widen_run(node, exec, inputs, n_inputs, outputs, n_outputs, mvn_run, 0, err);
    const struct norm_state *s = node->state;
    const struct mq_tensor *x = n_inputs > 0 ? inputs[0] : NULL;
    if (check_float_input(node, x, "X", 0, err))
        return MQ_ERR;
    int reduced[MQ_MAX_RANK] = {0};
    for (int i = 0; i < s->n_axes; i++) {
        int a;
        if (mq_axis_normalize(node, s->axes[i], x->rank, &a, err))
            return MQ_ERR;
        if (reduced[a])
            return mq_error_set(err, "node '%s' (%s): axis %lld is listed twice", node->name,
                                node->op_type, (long long)s->axes[i]);
        reduced[a] = 1;
    }
    if (mq_tensor_alloc(&outputs[0], x->dtype, x->rank, x->dims, node->name, err))
        return MQ_ERR;
    if (x->count == 0)
        return MQ_OK;
    int64_t stat_strides[MQ_MAX_RANK], stat_count = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        stat_strides[i] = reduced[i] ? 0 : stat_count;
        stat_count *= reduced[i] ? 1 : x->dims[i];
    }
    double *stat = mq_scratch_alloc(node, 2 * stat_count, sizeof(double), err);
    if (!stat)
        return MQ_ERR;
    if (x->dtype == MQ_DTYPE_FLOAT)
        mvn_f32(x->data, outputs[0].data, x->rank, x->dims, x->count, stat_strides, stat_count,
                stat);
    else
        mvn_f64(x->data, outputs[0].data, x->rank, x->dims, x->count, stat_strides, stat_count,
                stat);
    mq_scratch_free(stat, 2 * stat_count, sizeof(double));
    return MQ_OK;
}

/*
 * BatchNormalization: 6 dropped consumed_inputs, 7 dropped is_test, 9
 * dropped spatial, 14 added training_mode with its two running outputs, 15
 * let scale/B and mean/var have their own types.  InstanceNormalization-6
 * and LRN-13, MVN-13 only changed attribute plumbing or type lists.
 * GroupNormalization-21 moved scale and bias from per group to per channel.
 */
const struct mq_kernel mq_kernels_normalization[] = {
    {"", "BatchNormalization", 1, 5, batchnorm_prepare, batchnorm_run, norm_destroy},
    {"", "BatchNormalization", 6, 6, batchnorm_prepare, batchnorm_run, norm_destroy},
    {"", "BatchNormalization", 7, 8, batchnorm_prepare, batchnorm_run, norm_destroy},
    {"", "BatchNormalization", 9, 13, batchnorm_prepare, batchnorm_run, norm_destroy},
    {"", "BatchNormalization", 14, 14, batchnorm_prepare, batchnorm_run, norm_destroy},
    {"", "BatchNormalization", 15, 0, batchnorm_prepare, batchnorm_run, norm_destroy},
    {"", "InstanceNormalization", 1, 5, instancenorm_prepare, instancenorm_run, norm_destroy},
    {"", "InstanceNormalization", 6, 0, instancenorm_prepare, instancenorm_run, norm_destroy},
    {"", "LayerNormalization", 17, 0, layernorm_prepare, layernorm_run, norm_destroy},
    {"", "GroupNormalization", 18, 20, groupnorm_prepare, groupnorm_run, norm_destroy},
    {"", "GroupNormalization", 21, 0, groupnorm_prepare, groupnorm_run, norm_destroy},
    {"", "LRN", 1, 12, lrn_prepare, lrn_run, norm_destroy},
    {"", "LRN", 13, 0, lrn_prepare, lrn_run, norm_destroy},
    {"", "MeanVarianceNormalization", 9, 12, mvn_prepare, mvn_run, norm_destroy},
    {"", "MeanVarianceNormalization", 13, 0, mvn_prepare, mvn_run, norm_destroy},
    {0},
};

const struct mq_kernel mq_kernel_batchnorm_relu = {"", "BatchNormalization", 1, 0,
                                                   batchnorm_prepare, batchnorm_relu_run,
                                                   norm_destroy};
