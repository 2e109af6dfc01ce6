/*
 * The layer normalisations of onnxruntime's transformer optimiser:
 *   SkipLayerNormalization            LayerNorm(input + skip + bias) * gamma + beta
 *   SkipSimplifiedLayerNormalization  RMSNorm(input + skip + bias) * gamma
 *   SimplifiedLayerNormalization      RMSNorm(X) * scale over the axes from `axis` on
 *   EmbedLayerNormalization           LayerNorm(word[id] + position[p] + segment[seg])
 * Rows are normalised with statistics in double.  The optional outputs (mean, inv_std_var,
 * input_skip_bias_sum, mask_index, embedding_sum) are written when the node names them.
 */
#include <math.h>
#include <string.h>

#include "interp/attr.h"
#include "interp/ops/contrib_common.h"

static int output_named(const struct mq_kernel_node *node, int i)
{
    const Onnx__NodeProto *p = node->proto;
    return (size_t)i < p->n_output && p->output[i] && p->output[i][0];
}

/*
 * Normalises one row of `width` values: y = (x - mean) * inv * gamma + beta with mean 0 for
 * the RMS form.  Returns mean and the inverse standard deviation through the pointers.
 */
static void normalise_row(const float *x, float *y, int64_t width, int rms, double epsilon,
                          const float *gamma, const float *beta, float *mean_out,
                          float *inv_out)
{
    double mean = 0.0, var = 0.0;
    if (!rms) {
        for (int64_t i = 0; i < width; i++)
            mean += x[i];
        mean /= (double)width;
    }
    for (int64_t i = 0; i < width; i++)
        var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)width;
    double inv = 1.0 / sqrt(var + epsilon);
    for (int64_t i = 0; i < width; i++) {
        double v = ((double)x[i] - mean) * inv * (gamma ? gamma[i] : 1.0f);
        y[i] = (float)(v + (beta ? beta[i] : 0.0f));
    }
    *mean_out = (float)mean;
    *inv_out = (float)inv;
}

/* An optional statistics output of shape X's with the normalised axes set to 1. */
static int alloc_stat(const struct mq_kernel_node *node, const struct mq_tensor *x, int axis,
                      struct mq_tensor *out, struct mq_error *err)
{
    int64_t dims[MQ_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        dims[d] = d < axis ? x->dims[d] : 1;
    return mq_tensor_alloc(out, MQ_DTYPE_FLOAT, x->rank, dims, node->name, err);
}

static int check_vector(const struct mq_kernel_node *node, const struct mq_tensor *t,
                        const char *what, int64_t width, struct mq_error *err)
{
    if (t && t->count != width)
        return mq_error_set(err, "node '%s' (%s): %s has %lld elements, expected %lld",
                            node->name, node->op_type, what, (long long)t->count,
                            (long long)width);
    return MQ_OK;
}

/* ---- SkipLayerNormalization, SkipSimplifiedLayerNormalization --------------------------- */

static int skip_norm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                         const struct mq_tensor *const *inputs, int n_inputs,
                         struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    int rms = strcmp(node->op_type, "SkipSimplifiedLayerNormalization") == 0;
    const struct mq_tensor *x = mq_contrib_float_input(node, inputs, n_inputs, 0, 1, err);
    const struct mq_tensor *skip = x ? mq_contrib_float_input(node, inputs, n_inputs, 1, 1, err)
                                     : NULL;
    const struct mq_tensor *gamma =
        skip ? mq_contrib_float_input(node, inputs, n_inputs, 2, 1, err) : NULL;
    if (!gamma)
        return MQ_ERR;
    int bad = 0;
    const struct mq_tensor *beta =
        rms ? NULL : mq_contrib_optional_float(node, inputs, n_inputs, 3, &bad, err);
    const struct mq_tensor *bias =
        bad ? NULL : mq_contrib_optional_float(node, inputs, n_inputs, rms ? 3 : 4, &bad, err);
    if (bad)
        return MQ_ERR;
    int64_t width = mq_contrib_last_dim(x);
    if (check_vector(node, gamma, "gamma", width, err) ||
        check_vector(node, beta, "beta", width, err) ||
        check_vector(node, bias, "bias", width, err))
        return MQ_ERR;
    /* skip is input-shaped or a broadcast suffix of it ([1, S, H] or [S, H]) */
    if (skip->count == 0 || x->count % skip->count || mq_contrib_last_dim(skip) != width)
        return mq_error_set(err, "node '%s' (%s): skip's shape does not broadcast to input's",
                            node->name, node->op_type);
    float epsilon = mq_attr_float(node, "epsilon", 1e-12f);
    int axis = x->rank - 1;
    if (mq_tensor_alloc_uninit_like(&outputs[0], x, node->name, err))
        return MQ_ERR;
    struct mq_tensor *mean_out = n_outputs > 1 && output_named(node, 1) ? &outputs[1] : NULL;
    struct mq_tensor *inv_out = n_outputs > 2 && output_named(node, 2) ? &outputs[2] : NULL;
    struct mq_tensor *sum_out = n_outputs > 3 && output_named(node, 3) ? &outputs[3] : NULL;
    if ((mean_out && alloc_stat(node, x, axis, mean_out, err)) ||
        (inv_out && alloc_stat(node, x, axis, inv_out, err)) ||
        (sum_out && mq_tensor_alloc_uninit_like(sum_out, x, node->name, err)))
        return MQ_ERR;
    int64_t rows = width ? x->count / width : 0;
    struct mq_tensor scratch = {0};
    if (!sum_out && mq_tensor_alloc_uninit(&scratch, MQ_DTYPE_FLOAT, 1, &width, node->name, err))
        return MQ_ERR;
    const float *xs = x->data, *ss = skip->data, *bs = bias ? bias->data : NULL;
    for (int64_t r = 0; r < rows; r++) {
        float *sum = sum_out ? (float *)sum_out->data + r * width : scratch.data;
        const float *xr = xs + r * width, *sr = ss + (r * width) % skip->count;
        for (int64_t i = 0; i < width; i++)
            sum[i] = xr[i] + sr[i] + (bs ? bs[i] : 0.0f);
        float mean, inv;
        normalise_row(sum, (float *)outputs[0].data + r * width, width, rms, epsilon,
                      gamma->data, beta ? beta->data : NULL, &mean, &inv);
        if (mean_out)
            ((float *)mean_out->data)[r] = mean;
        if (inv_out)
            ((float *)inv_out->data)[r] = inv;
    }
    mq_tensor_free(&scratch);
    return MQ_OK;
}

/* ---- SimplifiedLayerNormalization ------------------------------------------------------- */

static int simplified_norm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                               const struct mq_tensor *const *inputs, int n_inputs,
                               struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
    const struct mq_tensor *x = mq_contrib_float_input(node, inputs, n_inputs, 0, 1, err);
    const struct mq_tensor *scale =
        x ? mq_contrib_float_input(node, inputs, n_inputs, 1, 0, err) : NULL;
    if (!scale)
        return MQ_ERR;
    int axis;
    if (mq_axis_normalize(node, mq_attr_int(node, "axis", -1), x->rank, &axis, err))
        return MQ_ERR;
    int64_t width = 1;
    for (int d = axis; d < x->rank; d++)
        width *= x->dims[d];
    if (check_vector(node, scale, "scale", width, err))
        return MQ_ERR;
    float epsilon = mq_attr_float(node, "epsilon", 1e-5f);
    if (mq_tensor_alloc_uninit_like(&outputs[0], x, node->name, err))
        return MQ_ERR;
    struct mq_tensor *inv_out = n_outputs > 1 && output_named(node, 1) ? &outputs[1] : NULL;
    if (inv_out && alloc_stat(node, x, axis, inv_out, err))
        return MQ_ERR;
    int64_t rows = width ? x->count / width : 0;
    for (int64_t r = 0; r < rows; r++) {
        float mean, inv;
        normalise_row((const float *)x->data + r * width, (float *)outputs[0].data + r * width,
                      width, 1, epsilon, scale->data, NULL, &mean, &inv);
        if (inv_out)
            ((float *)inv_out->data)[r] = inv;
    }
    return MQ_OK;
}

/* ---- EmbedLayerNormalization ------------------------------------------------------------ */

static int int32_input(const struct mq_kernel_node *node, const struct mq_tensor *t, int i,
                       int64_t count, struct mq_error *err)
{
    if (t && (t->dtype != MQ_DTYPE_INT32 || (count >= 0 && t->count != count)))
        return mq_error_set(err, "node '%s' (EmbedLayerNormalization): input %d must be int32 "
                            "with %lld elements", node->name, i, (long long)count);
    return MQ_OK;
}

static int embed_norm_run(const struct mq_kernel_node *node, struct mq_exec *exec,
                          const struct mq_tensor *const *inputs, int n_inputs,
                          struct mq_tensor *outputs, int n_outputs, struct mq_error *err)
{
    (void)exec;
#define IN(i) ((i) < n_inputs ? inputs[i] : NULL)
    const struct mq_tensor *ids = IN(0), *segment_ids = IN(1), *mask = IN(7), *pos_ids = IN(8);
    if (!ids || ids->rank != 2)
        return mq_error_set(err, "node '%s' (EmbedLayerNormalization): input_ids must be "
                            "[batch, sequence]", node->name);
    int64_t batch = ids->dims[0], seq = ids->dims[1];
    const struct mq_tensor *word = mq_contrib_float_input(node, inputs, n_inputs, 2, 2, err);
    const struct mq_tensor *pos = word ? mq_contrib_float_input(node, inputs, n_inputs, 3, 2, err)
                                       : NULL;
    const struct mq_tensor *gamma =
        pos ? mq_contrib_float_input(node, inputs, n_inputs, 5, 1, err) : NULL;
    const struct mq_tensor *beta =
        gamma ? mq_contrib_float_input(node, inputs, n_inputs, 6, 1, err) : NULL;
    if (!beta)
        return MQ_ERR;
    int bad = 0;
    const struct mq_tensor *segment = mq_contrib_optional_float(node, inputs, n_inputs, 4, &bad,
                                                                err);
    if (bad)
        return MQ_ERR;
    int64_t width = word->dims[1];
    if (int32_input(node, ids, 0, -1, err) || int32_input(node, segment_ids, 1, ids->count, err) ||
        int32_input(node, mask, 7, ids->count, err) ||
        (pos_ids && int32_input(node, pos_ids, 8, pos_ids->count == seq ? seq : ids->count, err)) ||
        check_vector(node, gamma, "gamma", width, err) ||
        check_vector(node, beta, "beta", width, err))
        return MQ_ERR;
    if (pos->dims[1] != width || (segment && (segment->rank != 2 || segment->dims[1] != width)))
        return mq_error_set(err, "node '%s' (EmbedLayerNormalization): embedding widths differ",
                            node->name);
    if (segment_ids && !segment)
        return mq_error_set(err, "node '%s' (EmbedLayerNormalization): segment_ids without "
                            "segment_embedding", node->name);
    int64_t dims[3] = {batch, seq, width};
    if (mq_tensor_alloc_uninit(&outputs[0], MQ_DTYPE_FLOAT, 3, dims, node->name, err))
        return MQ_ERR;
    struct mq_tensor *mask_out = n_outputs > 1 && output_named(node, 1) ? &outputs[1] : NULL;
    struct mq_tensor *sum_out = n_outputs > 2 && output_named(node, 2) ? &outputs[2] : NULL;
    if ((mask_out && mq_tensor_alloc(mask_out, MQ_DTYPE_INT32, 1, &batch, node->name, err)) ||
        (sum_out && mq_tensor_alloc_uninit(sum_out, MQ_DTYPE_FLOAT, 3, dims, node->name, err)))
        return MQ_ERR;
    struct mq_tensor scratch = {0};
    if (mq_tensor_alloc_uninit(&scratch, MQ_DTYPE_FLOAT, 1, &width, node->name, err))
        return MQ_ERR;
    float epsilon = mq_attr_float(node, "epsilon", 1e-12f);
    const int32_t *id = ids->data;
    for (int64_t r = 0; r < batch * seq; r++) {
        int64_t w = id[r], s = r % seq;
        int64_t p = pos_ids ? ((const int32_t *)pos_ids->data)[pos_ids->count == seq ? s : r] : s;
        int64_t g = segment_ids ? ((const int32_t *)segment_ids->data)[r] : 0;
        if (w < 0 || w >= word->dims[0] || p < 0 || p >= pos->dims[0] ||
            (segment && (g < 0 || g >= segment->dims[0]))) {
            mq_tensor_free(&scratch);
            return mq_error_set(err, "node '%s' (EmbedLayerNormalization): index out of range "
                                "at position %lld", node->name, (long long)r);
        }
        float *sum = sum_out ? (float *)sum_out->data + r * width : scratch.data;
        const float *wr = (const float *)word->data + w * width;
        const float *pr = (const float *)pos->data + p * width;
        const float *gr = segment ? (const float *)segment->data + g * width : NULL;
        for (int64_t i = 0; i < width; i++)
            sum[i] = wr[i] + pr[i] + (gr ? gr[i] : 0.0f);
        float mean, inv;
        normalise_row(sum, (float *)outputs[0].data + r * width, width, 0, epsilon, gamma->data,
                      beta->data, &mean, &inv);
    }
    mq_tensor_free(&scratch);
    if (mask_out && mask) {
        /* the number of ones in each row: the valid length of a right-padded sequence */
        const int32_t *m = mask->data;
        for (int64_t b = 0; b < batch; b++) {
            int32_t count = 0;
            for (int64_t s = 0; s < seq; s++)
                count += m[b * seq + s] == 1;
            ((int32_t *)mask_out->data)[b] = count;
        }
    }
    return MQ_OK;
#undef IN
}

const struct mq_kernel mq_kernels_contrib_norm[] = {
    {"com.microsoft", "SkipLayerNormalization", 1, 0, NULL, skip_norm_run, NULL},
    {"com.microsoft", "SkipSimplifiedLayerNormalization", 1, 0, NULL, skip_norm_run, NULL},
    /* onnxruntime registers SimplifiedLayerNormalization in the ONNX domain */
    {"", "SimplifiedLayerNormalization", 1, 0, NULL, simplified_norm_run, NULL},
    {"com.microsoft", "SimplifiedLayerNormalization", 1, 0, NULL, simplified_norm_run, NULL},
    {"com.microsoft", "EmbedLayerNormalization", 1, 0, NULL, embed_norm_run, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL},
};
