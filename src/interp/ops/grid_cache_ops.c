/*
 * Index-moving operators of opsets 18-24 and two ai.onnx.ml ones: CenterCropPad (crop or
 * zero-pad each listed axis around its centre), TensorScatter (write an update into a
 * key/value cache at per-batch positions, linear or circular), AffineGrid (the sampling grid of
 * an affine transform, for GridSample), Binarizer and ArrayFeatureExtractor.  The copying ones
 * move bytes, so they take every element type.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"

/* ---- CenterCropPad ------------------------------------------------------------------------ */

static int center_crop_pad_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                               const struct mq_tensor *const *inputs, int n_inputs,
                               struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x, *shape;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &shape, err))
        return MQ_ERR;
    const int64_t *axes_attr;
    int64_t n_axes = mq_attr_ints(node, "axes", &axes_attr);
    if (n_axes < 0)
        n_axes = 0; /* absent: every axis */
    int64_t n = n_axes ? n_axes : x->rank;
    if (shape->count != n)
        return ops_fail(node, err, "shape has %lld values for %lld axes", (long long)shape->count,
                        (long long)n);
    int64_t out_dims[MQ_MAX_RANK], crop[MQ_MAX_RANK] = {0}, pad[MQ_MAX_RANK] = {0};
    memcpy(out_dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    for (int64_t k = 0; k < n; k++) {
        int a = (int)k;
        if (n_axes && mq_axis_normalize(node, axes_attr[k], x->rank, &a, err))
            return MQ_ERR;
        int64_t want = mq_tensor_get_int64(shape, k), dim = x->dims[a];
        if (want < 0)
            return ops_fail(node, err, "shape value %lld is negative", (long long)want);
        out_dims[a] = want;
        if (want < dim)
            crop[a] = (dim - want) / 2; /* the odd element goes at the end */
        else
            pad[a] = (want - dim) / 2;
    }
    if (ops_alloc(node, &outputs[0], x->dtype, x->rank, out_dims, err))
        return MQ_ERR;
    size_t es = mq_dtype_size(x->dtype);
    int64_t copy_dims[MQ_MAX_RANK], count = 1;
    for (int k = 0; k < x->rank; k++) {
        copy_dims[k] = x->dims[k] < out_dims[k] ? x->dims[k] : out_dims[k];
        count *= copy_dims[k];
    }
    for (int64_t e = 0; e < count; e++) {
        int64_t rem = e, src = 0, dst = 0, ss = 1, ds = 1;
        for (int k = x->rank - 1; k >= 0; k--) {
            int64_t c = rem % copy_dims[k];
            rem /= copy_dims[k];
            src += (c + crop[k]) * ss;
            dst += (c + pad[k]) * ds;
            ss *= x->dims[k];
            ds *= out_dims[k];
        }
        memcpy((char *)outputs[0].data + dst * es, (const char *)x->data + src * es, es);
    }
    return MQ_OK;
}

/* ---- TensorScatter ------------------------------------------------------------------------ */

static int tensor_scatter_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                              const struct mq_tensor *const *inputs, int n_inputs,
                              struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *cache, *update;
    if (ops_require(node, inputs, n_inputs, 0, &cache, err) ||
        ops_require(node, inputs, n_inputs, 1, &update, err))
        return MQ_ERR;
    const struct mq_tensor *idx = ops_input(inputs, n_inputs, 2);
    char buf[16];
    const char *mode = mq_attr_string(node, "mode", "linear", buf, sizeof buf);
    int circular = strcmp(mode, "circular") == 0;
    if (!circular && strcmp(mode, "linear") != 0)
        return ops_fail(node, err, "mode '%s' is not linear or circular", mode);
    int axis;
    if (mq_axis_normalize(node, mq_attr_int(node, "axis", -2), cache->rank, &axis, err))
        return MQ_ERR;
    if (axis == 0 || update->rank != cache->rank || update->dtype != cache->dtype)
        return ops_fail(node, err, "update must match the cache's rank and type, axis not 0");
    for (int k = 0; k < cache->rank; k++)
        if (k == axis ? update->dims[k] > cache->dims[k] : update->dims[k] != cache->dims[k])
            return ops_fail(node, err, "update's shape does not fit the cache on axis %d", k);
    if (idx && idx->count != cache->dims[0])
        return ops_fail(node, err, "write_indices needs one value per batch");
    if (mq_tensor_copy(&outputs[0], cache, node->name, err))
        return MQ_ERR;
    size_t es = mq_dtype_size(cache->dtype);
    int64_t max_len = cache->dims[axis], len = update->dims[axis];
    int64_t inner = 1, prefix = 1;
    for (int k = axis + 1; k < cache->rank; k++)
        inner *= cache->dims[k];
    for (int k = 1; k < axis; k++)
        prefix *= cache->dims[k];
    for (int64_t b = 0; b < cache->dims[0]; b++) {
        int64_t start = idx ? mq_tensor_get_int64(idx, b) : 0;
        for (int64_t p = 0; p < prefix; p++)
            for (int64_t s = 0; s < len; s++) {
                int64_t at = start + s;
                if (circular)
                    at = ((at % max_len) + max_len) % max_len;
                if (at < 0 || at >= max_len) {
                    mq_tensor_free(&outputs[0]);
                    return ops_fail(node, err, "write position %lld is outside the cache's %lld",
                                    (long long)at, (long long)max_len);
                }
                int64_t dst = ((b * prefix + p) * max_len + at) * inner;
                int64_t src = ((b * prefix + p) * len + s) * inner;
                memcpy((char *)outputs[0].data + dst * es, (const char *)update->data + src * es,
                       (size_t)inner * es);
            }
    }
    return MQ_OK;
}

/* ---- AffineGrid ------------------------------------------------------------------------- */

/* theta [N, 2, 3] or [N, 3, 4]; size [N, C, H, W] or [N, C, D, H, W]; grid [N, (D,) H, W, r]
   where point (x, y, (z)) of the unit grid maps to theta . (x, y, (z), 1). */
static int affine_grid_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                           const struct mq_tensor *const *inputs, int n_inputs,
                           struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *theta, *size;
    if (ops_require(node, inputs, n_inputs, 0, &theta, err) ||
        ops_require(node, inputs, n_inputs, 1, &size, err))
        return MQ_ERR;
    int align = mq_attr_int(node, "align_corners", 0) != 0;
    int r = (int)size->count - 2;
    if ((r != 2 && r != 3) || theta->rank != 3 || theta->dims[1] != r || theta->dims[2] != r + 1)
        return ops_fail(node, err, "theta must be [N, %d, %d] for a size of %lld values", r,
                        r + 1, (long long)size->count);
    int64_t N = mq_tensor_get_int64(size, 0), sp[3], dims[5];
    if (N != theta->dims[0])
        return ops_fail(node, err, "size's batch %lld is not theta's", (long long)N);
    dims[0] = N;
    int64_t points = 1;
    for (int d = 0; d < r; d++) {
        sp[d] = mq_tensor_get_int64(size, 2 + d);
        if (sp[d] < 1)
            return ops_fail(node, err, "spatial size %lld is not positive", (long long)sp[d]);
        dims[1 + d] = sp[d];
        points *= sp[d];
    }
    dims[1 + r] = r;
    double *th = malloc(sizeof(double) * (size_t)theta->count);
    double *g = malloc(sizeof(double) * (size_t)(N * points * r + 1));
    if (!th || !g || mq_as_double_load(theta, th)) {
        free(th), free(g);
        return ops_fail(node, err, "out of memory or unsupported type");
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < points; p++) {
            double c[4] = {0, 0, 0, 1}; /* x (innermost axis), y, z, 1 */
            int64_t rem = p;
            for (int d = r - 1; d >= 0; d--) {
                int64_t i = rem % sp[d];
                rem /= sp[d];
                double v = align ? (sp[d] > 1 ? -1.0 + 2.0 * (double)i / (double)(sp[d] - 1) : 0.0)
                                 : -1.0 + (2.0 * (double)i + 1.0) / (double)sp[d];
                c[r - 1 - d] = v;
            }
            c[r] = 1.0;
            for (int k = 0; k < r; k++) {
                double acc = 0;
                for (int j = 0; j <= r; j++)
                    acc += th[(n * r + k) * (r + 1) + j] * c[j];
                g[(n * points + p) * r + k] = acc;
            }
        }
    free(th);
    int rc = ops_alloc_uninit(node, &outputs[0], theta->dtype, r + 2, dims, err);
    if (rc == MQ_OK)
        mq_as_double_store(&outputs[0], g);
    free(g);
    return rc;
}

/* ---- ai.onnx.ml Binarizer and ArrayFeatureExtractor ---------------------------------- */

static int binarizer_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x;
    if (ops_require(node, inputs, n_inputs, 0, &x, err))
        return MQ_ERR;
    double threshold = mq_attr_float(node, "threshold", 0.0f);
    double *v = malloc(sizeof(double) * (size_t)(x->count + 1));
    if (!v || mq_as_double_load(x, v)) {
        free(v);
        return ops_fail(node, err, "out of memory or unsupported type");
    }
    for (int64_t i = 0; i < x->count; i++)
        v[i] = v[i] > threshold ? 1.0 : 0.0;
    int rc = ops_alloc_uninit(node, &outputs[0], x->dtype, x->rank, x->dims, err);
    if (rc == MQ_OK)
        mq_as_double_store(&outputs[0], v);
    free(v);
    return rc;
}

static int array_feature_extractor_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                                       const struct mq_tensor *const *inputs, int n_inputs,
                                       struct mq_tensor *outputs, int n_outputs,
                                       struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x, *idx;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &idx, err))
        return MQ_ERR;
    if (x->rank < 1)
        return ops_fail(node, err, "input X must have rank 1 or more");
    int64_t last = x->dims[x->rank - 1], rows = last ? x->count / last : 0, k = idx->count;
    int64_t dims[MQ_MAX_RANK];
    int rank = x->rank == 1 ? 2 : x->rank;
    if (x->rank == 1) {
        dims[0] = 1;
        dims[1] = k;
    } else {
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
        dims[rank - 1] = k;
    }
    for (int64_t j = 0; j < k; j++) {
        int64_t i = mq_tensor_get_int64(idx, j);
        if (i < 0 || i >= last)
            return ops_fail(node, err, "index %lld is outside 0..%lld", (long long)i,
                            (long long)last - 1);
    }
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, rank, dims, err))
        return MQ_ERR;
    size_t es = mq_dtype_size(x->dtype);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++)
            memcpy((char *)outputs[0].data + (r * k + j) * (int64_t)es,
                   (const char *)x->data + (r * last + mq_tensor_get_int64(idx, j)) * (int64_t)es,
                   es);
    return MQ_OK;
}

const struct mq_kernel mq_kernels_grid_cache_ops[] = {
    {"", "CenterCropPad", 18, 0, NULL, center_crop_pad_run, NULL},
    {"", "TensorScatter", 24, 0, NULL, tensor_scatter_run, NULL},
    {"", "AffineGrid", 20, 0, NULL, affine_grid_run, NULL},
    {"ai.onnx.ml", "Binarizer", 1, 0, NULL, binarizer_run, NULL},
    {"ai.onnx.ml", "ArrayFeatureExtractor", 1, 0, NULL, array_feature_extractor_run, NULL},
    {0},
};
