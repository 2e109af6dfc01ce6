/*
 * The transformer building blocks of opset 23 besides Attention: RMSNormalization and
 * RotaryEmbedding.  Arithmetic is in double, results are stored in the input's type.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/kernel.h"
#include "interp/ops/as_double.h"
#include "interp/ops/shape_util.h"

/* Index into b (broadcast right-aligned to the shape of a) of a's element e. */
static int64_t broadcast_index(const struct mq_tensor *a, const struct mq_tensor *b, int64_t e)
{
    int64_t off = 0, stride = 1;
    for (int k = a->rank - 1, kb = b->rank - 1; k >= 0 && kb >= 0; k--, kb--) {
        int64_t c = e % a->dims[k];
        e /= a->dims[k];
        if (b->dims[kb] != 1)
            off += c * stride;
        stride *= b->dims[kb];
    }
    return off;
}

/* ---- RMSNormalization: Y = X / sqrt(mean(X^2 over axis..last) + epsilon) * scale ---- */

static int rms_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                   const struct mq_tensor *const *inputs, int n_inputs,
                   struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x, *scale;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &scale, err))
        return MQ_ERR;
    int axis;
    if (mq_axis_normalize(node, mq_attr_int(node, "axis", -1), x->rank, &axis, err))
        return MQ_ERR;
    double eps = mq_attr_float(node, "epsilon", 1e-5f);
    int64_t inner = 1;
    for (int k = axis; k < x->rank; k++)
        inner *= x->dims[k];
    if (scale->rank > x->rank)
        return ops_fail(node, err, "scale has rank %d, more than X's %d", scale->rank, x->rank);
    for (int k = 0; k < scale->rank; k++) {
        int64_t want = x->dims[x->rank - scale->rank + k];
        if (scale->dims[k] != 1 && scale->dims[k] != want)
            return ops_fail(node, err, "scale does not broadcast to X");
    }
    double *xv = mq_as_double_copy(x), *sv = mq_as_double_copy(scale);
    double *y = malloc(sizeof(double) * (size_t)(x->count + 1));
    int rc = MQ_ERR;
    if (!xv || !sv || !y) {
        ops_fail(node, err, "out of memory or unsupported type %s", mq_dtype_name(x->dtype));
        goto done;
    }
    for (int64_t start = 0; inner > 0 && start < x->count; start += inner) {
        double ss = 0;
        for (int64_t i = 0; i < inner; i++)
            ss += xv[start + i] * xv[start + i];
        double r = 1.0 / sqrt(ss / (double)inner + eps);
        for (int64_t i = 0; i < inner; i++)
            y[start + i] = xv[start + i] * r * sv[broadcast_index(x, scale, start + i)];
    }
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, x->rank, x->dims, err))
        goto done;
    mq_as_double_store(&outputs[0], y);
    rc = MQ_OK;
done:
    free(xv), free(sv), free(y);
    return rc;
}

/* ---- RotaryEmbedding -------------------------------------------------------------------- */

/*
 * X is [B, H, S, D] or [B, S, H*D] (num_heads splits it).  The first rotary_embedding_dim
 * (default D) values of each head are rotated as pairs (x1, x2) -> (cos x1 - sin x2,
 * sin x1 + cos x2): the two halves, or neighbours when interleaved.  cos/sin are
 * [B, S, R/2], or [max_pos, R/2] indexed by position_ids [B, S].
 */
static int rotary_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                      const struct mq_tensor *const *inputs, int n_inputs,
                      struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec, (void)n_outputs;
    const struct mq_tensor *x, *cosc, *sinc;
    if (ops_require(node, inputs, n_inputs, 0, &x, err) ||
        ops_require(node, inputs, n_inputs, 1, &cosc, err) ||
        ops_require(node, inputs, n_inputs, 2, &sinc, err))
        return MQ_ERR;
    const struct mq_tensor *pos = ops_input(inputs, n_inputs, 3);
    int interleaved = mq_attr_int(node, "interleaved", 0) != 0;
    int64_t heads = mq_attr_int(node, "num_heads", 0);
    int64_t B, S, H, D;
    int split = x->rank == 3;
    if (x->rank == 4) {
        B = x->dims[0], H = x->dims[1], S = x->dims[2], D = x->dims[3];
    } else if (split) {
        if (heads <= 0 || x->dims[2] % heads)
            return ops_fail(node, err, "3-D input needs num_heads dividing its width");
        B = x->dims[0], S = x->dims[1], H = heads, D = x->dims[2] / heads;
    } else {
        return ops_fail(node, err, "input has rank %d; 3 or 4 expected", x->rank);
    }
    int64_t R = mq_attr_int(node, "rotary_embedding_dim", 0);
    if (R == 0)
        R = D;
    if (R < 0 || R > D || R % 2)
        return ops_fail(node, err, "rotary_embedding_dim %lld must be even and at most %lld",
                        (long long)R, (long long)D);
    int64_t half = R / 2;
    if (cosc->dims[cosc->rank - 1] != half || sinc->count != cosc->count)
        return ops_fail(node, err, "cos/sin caches must end in %lld values", (long long)half);
    if (pos ? (cosc->rank != 2 || pos->count != B * S)
            : (cosc->rank != 3 || cosc->dims[0] != B || cosc->dims[1] != S))
        return ops_fail(node, err, "cos/sin caches do not match position_ids / [B, S, R/2]");
    double *xv = mq_as_double_copy(x), *cv = mq_as_double_copy(cosc), *sv = mq_as_double_copy(sinc);
    double *y = malloc(sizeof(double) * (size_t)(x->count + 1));
    int rc = MQ_ERR;
    if (!xv || !cv || !sv || !y) {
        ops_fail(node, err, "out of memory or unsupported type %s", mq_dtype_name(x->dtype));
        goto done;
    }
    memcpy(y, xv, sizeof(double) * (size_t)x->count);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            int64_t row = b * S + s;
            if (pos) {
                row = mq_tensor_get_int64(pos, b * S + s);
                if (row < 0 || row >= cosc->dims[0]) {
                    ops_fail(node, err, "position id %lld is outside the caches' %lld rows",
                             (long long)row, (long long)cosc->dims[0]);
                    goto done;
                }
            }
            const double *c = cv + row * half, *sn = sv + row * half;
            for (int64_t h = 0; h < H; h++) {
                int64_t base = split ? ((b * S + s) * H + h) * D : ((b * H + h) * S + s) * D;
                for (int64_t i = 0; i < half; i++) {
                    int64_t i1 = interleaved ? base + 2 * i : base + i;
                    int64_t i2 = interleaved ? base + 2 * i + 1 : base + half + i;
                    double x1 = xv[i1], x2 = xv[i2];
                    y[i1] = c[i] * x1 - sn[i] * x2;
                    y[i2] = sn[i] * x1 + c[i] * x2;
                }
            }
        }
    if (ops_alloc_uninit(node, &outputs[0], x->dtype, x->rank, x->dims, err))
        goto done;
    mq_as_double_store(&outputs[0], y);
    rc = MQ_OK;
done:
    free(xv), free(cv), free(sv), free(y);
    return rc;
}

const struct mq_kernel mq_kernels_transformer_norm[] = {
    {"", "RMSNormalization", 23, 0, NULL, rms_run, NULL},
    {"", "RotaryEmbedding", 23, 0, NULL, rotary_run, NULL},
    {0},
};
